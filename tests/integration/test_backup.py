# SPDX-License-Identifier: LGPL-2.1-or-later
"""Backups (issue 17, spec/backup.md): profiles and their errors, the Info table, the v4 archive
checked without our code (GNU tar, gzip/xz and the real `scrypt` tool), compression, a qube as
destination and as passphrase source (the qrexec runner), progress, one backup per profile,
cancel (no file left), running qubes (snapshot or refusal), the memory bound on a 1 GiB sparse
volume, admin.backup.* through both doors of the shim, and upstream's own qvm-backup and
qvm-backup-restore round trip. The shim's tests run twice (harness.over_each_route): the shim
calling qubesd through the bus, and through qubesd's private socket.

Environment: QUBESD, QUBES_BUILD_DIR (the shim and the runner), QUBES_SOURCE_DIR.
"""

import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ROOT_PATH, domain_path  # noqa: E402
from test_shim import find_shim, SocketDoor, service_call, parse_exception  # noqa: E402

E = harness.ERROR_PREFIX
JOB_IFACE = harness.IFACE + '.Job'
QVM = os.path.join(harness.SOURCE_DIR, '..', 'shared', 'qubesadmin', 'qvm')
CHUNK = 100 * 1024 * 1024


def find_runner():
    shim = find_shim()
    path = os.path.join(os.path.dirname(shim), 'runner', 'qubes-qrexec-run')
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest('no built qubes-qrexec-run next to the shim')
    return path


def need(*programs):
    for p in programs:
        if not shutil.which(p):
            raise unittest.SkipTest('%s is not installed' % p)


def write_volume(path, chunks):
    """Write (offset, bytes) pieces into an existing image file (what a qube would have written)."""
    with open(path, 'r+b') as f:
        for off, data in chunks:
            f.seek(off)
            f.write(data)


def data_extents(path):
    """The (start, end) ranges of a file that hold data (SEEK_DATA/SEEK_HOLE)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size, off, extents = os.fstat(fd).st_size, 0, []
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break  # only a hole left
            off = os.lseek(fd, start, os.SEEK_HOLE)
            extents.append((start, off))
        return extents
    finally:
        os.close(fd)


def same_contents(a, b):
    """Whether two (sparse) files hold the same bytes: every data range of either is compared
    with the other; what is a hole in both is zeros in both. A 2 GiB volume with a few MiB of
    data costs a few MiB of reading."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        for start, end in data_extents(a) + data_extents(b):
            fa.seek(start)
            fb.seek(start)
            while start < end:
                n = min(end - start, 1 << 20)
                if fa.read(n) != fb.read(n):
                    return False
                start += n
    return True


def scrypt_dec(src, dst, passphrase):
    env = dict(os.environ, SCRYPT_PW=passphrase)
    r = subprocess.run(['scrypt', 'dec', '--passphrase', 'env:SCRYPT_PW', src, dst], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.returncode, r.stderr.decode(errors='replace')


class Archive:
    """An archive unpacked with GNU tar (-i: the outer layer is many small archives) and every
    member decrypted with the scrypt command-line tool: nothing of our code is involved."""

    def __init__(self, test, path, passphrase, workdir):
        self.test = test
        self.dir = workdir
        os.makedirs(workdir)
        listing = subprocess.run(['tar', '-i', '-x', '-v', '-f', path, '-C', workdir],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        self.members = listing.stdout.decode().split()
        with open(os.path.join(workdir, 'backup-header'), 'rb') as f:
            self.header_bytes = f.read()
        self.header = dict(line.split('=', 1) for line in self.header_bytes.decode().splitlines())
        code, err = scrypt_dec(os.path.join(workdir, 'backup-header.hmac'),
                               os.path.join(workdir, 'header.dec'), 'backup-header!' + passphrase)
        test.assertEqual(code, 0, 'backup-header.hmac does not decrypt: ' + err)
        with open(os.path.join(workdir, 'header.dec'), 'rb') as f:
            test.assertEqual(f.read(), self.header_bytes, 'the .hmac is not the header encrypted')
        self.passphrase = passphrase
        self.plain = {}  # base name -> concatenated plaintext of its chunks

        chunks = {}
        for m in self.members:
            if not m.endswith('.enc'):
                continue
            base, num = m[:-4].rsplit('.', 1)
            chunks.setdefault(base, []).append(num)
        for base, nums in chunks.items():
            test.assertEqual(nums, ['%03d' % i for i in range(len(nums))], 'chunks of ' + base)
            data = b''
            for num in nums:
                enc = os.path.join(workdir, '%s.%s.enc' % (base, num))
                out = enc[:-4]
                code, err = scrypt_dec(enc, out, '%s!%s.%s!%s' % (self.header['backup-id'], base, num,
                                                                  passphrase))
                test.assertEqual(code, 0, 'chunk %s.%s does not decrypt: %s' % (base, num, err))
                with open(out, 'rb') as f:
                    data += f.read()
            self.plain[base] = data
        self.chunk_counts = {b: len(n) for b, n in chunks.items()}

    def extract(self, base):
        """The member of base's inner tar (its one member), extracted by GNU tar into a file of its
        own (holes stay holes: a 2 GiB volume is not read into memory); its path."""
        inner = os.path.join(self.dir, 'inner.tar')
        with open(inner, 'wb') as f:
            f.write(self.plain[base])
        out = os.path.join(self.dir, 'extracted-' + base.replace('/', '-'))
        os.makedirs(out)
        cmd = ['tar', '-x', '-f', inner, '-C', out]
        if self.header['compressed'] == 'True':
            cmd.insert(1, '--use-compress-program=' + self.header['compression-filter'])
        r = subprocess.run(cmd + [base], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.test.assertEqual(r.returncode, 0, r.stderr.decode())
        return os.path.join(out, base)

    def untar(self, base, member=None):
        """The contents of the inner tar of base (its one member), with GNU tar."""
        inner = os.path.join(self.dir, 'inner.tar')
        with open(inner, 'wb') as f:
            f.write(self.plain[base])
        cmd = ['tar', '-x', '-O', '-f', inner]
        if self.header['compressed'] == 'True':
            cmd.insert(1, '--use-compress-program=' + self.header['compression-filter'])
        r = subprocess.run(cmd + [member or base], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.test.assertEqual(r.returncode, 0, r.stderr.decode())
        return r.stdout

    def listing(self, base):
        inner = os.path.join(self.dir, 'inner.tar')
        with open(inner, 'wb') as f:
            f.write(self.plain[base])
        cmd = ['tar', '-t', '-v', '-v', '-f', inner]
        if self.header['compressed'] == 'True':
            cmd.insert(1, '--use-compress-program=' + self.header['compression-filter'])
        return subprocess.run(cmd, stdout=subprocess.PIPE, check=True).stdout.decode()


class BackupTestCase(unittest.TestCase):
    QUBES_XML = harness.DEMO_XML
    EXTRA_ENV = {}
    ROUTE = 'bus'  # the shim's route to qubesd; set by harness.over_each_route

    def setUp(self):
        need('tar', 'scrypt')
        self.runner = find_runner()
        self.d = harness.Daemon(self.QUBES_XML, route=self.ROUTE)
        self.addCleanup(self.d.cleanup)
        self.conf = os.path.join(self.d.dir, 'etc-qubes')
        self.out = os.path.join(self.d.dir, 'out')
        self.vmsvc = os.path.join(self.d.dir, 'vm-services')
        for d in (os.path.join(self.conf, 'backup'), self.out, self.vmsvc):
            os.makedirs(d)
        self.d.extra_args += ['--config-dir=' + self.conf, '--qrexec-runner=' + self.runner]
        saved = dict(os.environ)
        os.environ['QUBES_VM_SERVICES_DIR'] = self.vmsvc
        os.environ.update(self.EXTRA_ENV)
        try:
            self.d.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def tearDown(self):
        if self.d.proc is not None:
            status = self.d.stop()
            self.assertEqual(status, 0, 'qubesd exited with status %s:\n%s' % (status, self.d.log_tail()))

    # --- helpers ------------------------------------------------------------------------------

    def profile(self, name, text):
        if harness.UNDER_WRAPPER and 'scrypt_logn' not in text:
            # the KDF's memory-hard loop is what valgrind slows most (16 MiB at logN 14, seconds
            # each): 1 MiB under the wrapper; restore reads any N (the ASan run keeps 14)
            text += 'scrypt_logn: 10\n'
        with open(os.path.join(self.conf, 'backup', name + '.conf'), 'w', encoding='utf-8') as f:
            f.write(text)

    def create(self, name, klass='AppVM', label='red', options=None):
        self.d.manager('CreateDomain', 'ssssa{ss}', (klass, name, label, '', options or {}))
        return self.qube_dir(name)

    def qube_dir(self, name):
        return os.path.join(self.d.state_dir, 'appvms', name)

    def qid(self, name):
        return int(self.d.get_property(name, 'qid')[2])

    def start_backup(self, profile):
        return self.d.manager('StartBackup', 's', (profile,))[0]

    def wait(self, job, timeout=600):
        """The job's properties once it is over."""
        deadline = time.monotonic() + timeout
        while True:
            props = self.job_props(job)
            if props['State'] != 'running':
                return props
            self.assertLess(time.monotonic(), deadline, 'the backup did not end')
            time.sleep(0.05)

    def execute(self, profile):
        """ExecuteBackup: the archive's name, or the backup's error (a CallError)."""
        return self.d.call(ROOT_PATH, harness.MANAGER_IFACE, 'ExecuteBackup', 's', (profile,),
                           timeout_ms=600000)[0]

    def all_jobs(self):
        """The paths of the jobs on the bus now (running, or finished in the last five minutes)."""
        nodes = [p for p in self.d.introspect(ROOT_PATH + '/job').split('"') if p.startswith('_')]
        return [ROOT_PATH + '/job/' + n for n in nodes]

    def jobs(self, operation):
        """The paths of the jobs of one operation on the bus now."""
        return [p for p in self.all_jobs() if self.job_props(p)['Operation'] == operation]

    def job_props(self, job):
        return self.d.dbus_get_all(job, JOB_IFACE)

    def info(self, profile):
        return self.d.manager('BackupInfo', 's', (profile,))[0]

    def only_file(self):
        files = os.listdir(self.out)
        self.assertEqual(len(files), 1, files)
        return os.path.join(self.out, files[0])


# --- profiles and Info -------------------------------------------------------------------------

class ProfileTests(BackupTestCase):
    def check(self, method, profile, error, message):
        self.assertDBusError(E + error, self.d.manager, method, 's', (profile,), message=message)

    def assertDBusError(self, name, func, *args, message=None, **kwargs):
        try:
            func(*args, **kwargs)
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_name(e), name, harness.dbus_error_message(e))
            if message is not None:
                self.assertEqual(harness.dbus_error_message(e), message)
            return
        self.fail('expected %s' % name)

    def test_errors(self):
        for method in ('StartBackup', 'BackupInfo'):
            self.check(method, 'nope', 'QubesBackupProfileNotFoundError', 'Backup profile does not exist: nope')
            self.check(method, 'a/b', 'ProtocolError', 'Backup profile ID must not contain forward slash character')
            self.check(method, '', 'ProtocolError', 'expected an argument')
        cases = [
            ('destination_path: /x\ninclude: null\n', "Invalid backup profile - missing 'destination_vm'"),
            ('destination_vm: dom0\ninclude: null\n', "Invalid backup profile - missing 'destination_path'"),
            ('destination_vm: dom0\ndestination_path: /x\n', "Invalid backup profile - missing 'include'"),
            ('destination_vm: nosuch\ndestination_path: /x\ninclude: null\n',
             'Invalid destination_vm specified in backup profile'),
            ('[1, 2]\n', 'Invalid backup profile - the file must hold a mapping of keys to values'),
            ('destination_vm: dom0\ndestination_path: /x\ninclude: [\n',
             None),
        ]
        for text, message in cases:
            self.profile('bad', text)
            for method in ('StartBackup', 'BackupInfo'):
                try:
                    self.d.manager(method, 's', ('bad',))
                except harness.CallError as e:
                    self.assertEqual(harness.dbus_error_name(e), E + 'QubesException', text)
                    if message:
                        self.assertEqual(harness.dbus_error_message(e), message, text)
                    else:
                        self.assertRegex(harness.dbus_error_message(e), r'^Invalid backup profile - not valid YAML')
                else:
                    self.fail('accepted: %r' % text)
        # Info skips the passphrase; Execute needs one
        self.profile('nopass', 'destination_vm: dom0\ndestination_path: %s\ninclude: [work]\n' % self.out)
        self.assertIn('work', self.info('nopass'))
        self.check('StartBackup', 'nopass', 'QubesException',
                   'Invalid backup profile - you need to specify passphrase_text or passphrase_vm')
        self.profile('badvm', 'destination_vm: dom0\ndestination_path: %s\ninclude: [work]\n'
                     'passphrase_vm: nosuch\n' % self.out)
        self.check('StartBackup', 'badvm', 'QubesException', 'Invalid backup profile - invalid passphrase_vm')
        # a dom0 path whose directory does not exist: before anything is written
        self.profile('nodir', 'destination_vm: dom0\ndestination_path: /nonexistent/dir/file\ninclude: [work]\n'
                     'passphrase_text: x\n')
        try:
            self.execute('nodir')
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_message(e),
                             'ERROR: the backup directory for /nonexistent/dir/file does not exists')
        else:
            self.fail('a backup into a missing directory succeeded')
        self.assertEqual(os.listdir(self.out), [])

    def test_info_table(self):
        self.create('alpha')
        write_volume(os.path.join(self.qube_dir('alpha'), 'private.img'), [(0, b'x' * 1536 * 1024)])
        self.profile('one', 'destination_vm: dom0\ndestination_path: /tmp\ninclude: [alpha]\n')
        expected = (
            '------------------+--------------+--------------+\n'
            '               VM |         type |         size |\n'
            '------------------+--------------+--------------+\n'
            '            alpha |           VM |      1.5 MiB |\n'
            '------------------+--------------+--------------+\n'
            '      Total size: |                     1.5 MiB |\n'
            '------------------+--------------+--------------+\n'
            'VMs not selected for backup:\n'
            ' - debian-12-xfce\n - default-dvm\n - dom0\n - personal\n - sys-firewall\n - sys-net\n'
            ' - work\n')
        self.assertEqual(self.info('one'), expected)
        # @tag:, @type:, the old $ spelling, exclude; a template is "Template VM"; the qubes that
        # are not selected are sorted; every qube selected still prints the list's head
        self.d.domain('work', 'AddTag', 's', ('keep',))
        self.profile('sel', 'destination_vm: dom0\ndestination_path: /tmp\n'
                     'include: ["@tag:keep", "$type:TemplateVM", personal]\nexclude: [personal]\n')
        info = self.info('sel')
        rows = [line.split('|')[0].strip() for line in info.splitlines()[3:5]]
        self.assertEqual(sorted(rows), ['debian-12-xfce', 'work'])
        self.assertIn('  debian-12-xfce |  Template VM |', info)
        self.assertIn('            work |           VM |            0 |', info)
        self.assertTrue(info.endswith(' - personal\n - sys-firewall\n - sys-net\n'), info)
        everything = 'include: [%s]\n' % ', '.join(
            ['alpha', 'debian-12-xfce', 'default-dvm', 'dom0', 'personal', 'sys-firewall', 'sys-net', 'work'])
        self.profile('all', 'destination_vm: dom0\ndestination_path: /tmp\n' + everything +
                     'exclude: [dom0]\n')
        self.assertTrue(self.info('all').endswith('VMs not selected for backup:\n - dom0\n'))

    def test_profiles_over_dbus(self):
        """SaveBackupProfile writes what qvm-backup would (PyYAML reads back the same values),
        mode 0600; GetBackupProfile never returns the passphrase; List and Remove."""
        from gi.repository import GLib
        settings = {'destination_vm': GLib.Variant('s', 'dom0'),
                    'destination_path': GLib.Variant('s', self.out),
                    'include': GLib.Variant('as', ['work', 'true', '@tag:keep', '$type:AppVM']),
                    'exclude': GLib.Variant('as', ['personal']),
                    'compression': GLib.Variant('s', 'xz'),
                    'passphrase_text': GLib.Variant('s', "yes: it's 123")}
        self.d.manager('SaveBackupProfile', 'sa{sv}', ('from-gui', settings))
        path = os.path.join(self.conf, 'backup', 'from-gui.conf')
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            text = f.read()
        self.assertEqual(text.splitlines()[0], 'compression: xz')
        try:
            import yaml
        except ImportError:
            yaml = None
        if yaml:
            self.assertEqual(yaml.safe_load(text), {
                'compression': 'xz', 'destination_path': self.out, 'destination_vm': 'dom0',
                'exclude': ['personal'], 'include': ['work', 'true', '@tag:keep', '$type:AppVM'],
                'passphrase_text': "yes: it's 123"})
        got = self.d.manager('GetBackupProfile', 's', ('from-gui',))[0]
        self.assertEqual(got, {'destination_vm': 'dom0', 'destination_path': self.out,
                               'include': ['work', 'true', '@tag:keep', '@type:AppVM'], 'exclude': ['personal'],
                               'compression': 'xz', 'has_passphrase_text': True})
        self.assertIn('from-gui', self.d.manager('ListBackupProfiles')[0])
        # include absent: include: null; compression false
        self.d.manager('SaveBackupProfile', 'sa{sv}', ('defaults', {
            'destination_vm': GLib.Variant('s', 'dom0'), 'destination_path': GLib.Variant('s', '/tmp'),
            'compression': GLib.Variant('s', 'false'), 'passphrase_vm': GLib.Variant('s', 'work')}))
        with open(os.path.join(self.conf, 'backup', 'defaults.conf')) as f:
            self.assertEqual(f.read(), 'compression: false\ndestination_path: /tmp\ndestination_vm: dom0\n'
                                       'include: null\npassphrase_vm: work\n')
        self.assertNotIn('include', self.d.manager('GetBackupProfile', 's', ('defaults',))[0])
        for name, args, err in (
                ('.hidden', {'destination_vm': GLib.Variant('s', 'dom0'), 'destination_path': GLib.Variant('s', '/')},
                 'QubesException'),
                ('x', {'destination_vm': GLib.Variant('s', 'dom0')}, 'QubesException'),
                ('x', {'destination_vm': GLib.Variant('u', 1), 'destination_path': GLib.Variant('s', '/')},
                 'QubesException'),
                ('x', {'nonsense': GLib.Variant('s', '1')}, 'QubesException'),
                ('a/b', {}, 'ProtocolError')):
            self.assertDBusError(E + err, self.d.manager, 'SaveBackupProfile', 'sa{sv}', (name, args))
        self.d.manager('RemoveBackupProfile', 's', ('from-gui',))
        self.assertFalse(os.path.exists(path))
        self.assertDBusError(E + 'QubesBackupProfileNotFoundError', self.d.manager, 'RemoveBackupProfile', 's',
                             ('from-gui',), message='Backup profile does not exist: from-gui')

    def test_info_default_selection(self):
        """include: null is every qube with include_in_backups (dom0 only when named)."""
        self.profile('def', 'destination_vm: dom0\ndestination_path: /tmp\ninclude: null\n')
        self.d.set_property('work', 'include_in_backups', 'False')
        info = self.info('def')
        names = [line.split('|')[0].strip() for line in info.splitlines()
                 if line.count('|') == 3 and not line.startswith(' ' * 11 + 'VM')]
        self.assertNotIn('work', names)
        self.assertNotIn('dom0', names)
        self.assertIn('personal', names)
        self.assertIn(' - work\n', info)


# --- the archive --------------------------------------------------------------------------------

class ArchiveTests(BackupTestCase):
    def make_qube(self, name):
        d = self.create(name, label='green')
        data = [(0, os.urandom(300 * 1024)), (5 * 1024 * 1024 + 7, b'middle of the volume'),
                (64 * 1024 * 1024 - 3, b'end')]
        write_volume(os.path.join(d, 'private.img'), data)
        self.d.domain(name, 'SetNotes', 's', ('notes of %s\nsecond line ✓' % name,))
        with open(os.path.join(d, 'firewall.xml'), 'w') as f:
            f.write('<firewall version="2"><rules/></firewall>\n')
        return os.path.join(d, 'private.img')

    def check_archive(self, path, passphrase, name, volume, compressed, filt='gzip'):
        a = Archive(self, path, passphrase, os.path.join(self.d.dir, 'unpacked-' + os.path.basename(path)))
        qid = self.qid(name)
        sub = 'vm%d/' % qid
        self.assertEqual(a.members, ['backup-header', 'backup-header.hmac', 'qubes.xml.000.enc',
                                     sub + 'private.img.000.enc', sub + 'firewall.xml.000.enc',
                                     sub + 'notes.txt.000.enc'])
        self.assertEqual(list(a.header), ['version', 'encrypted', 'compressed', 'compression-filter',
                                          'hmac-algorithm', 'backup-id'])
        self.assertEqual(a.header['version'], '4')
        self.assertEqual(a.header['encrypted'], 'True')
        self.assertEqual(a.header['compressed'], 'True' if compressed else 'False')
        self.assertEqual(a.header['compression-filter'], filt)
        self.assertEqual(a.header['hmac-algorithm'], 'scrypt')
        self.assertRegex(a.header['backup-id'], r'^\d{8}T\d{6}-\d+$')
        # volume: the image's path (a 2 GiB sparse file, never read whole)
        extracted = a.extract(sub + 'private.img')
        self.assertTrue(same_contents(extracted, volume), 'the volume differs')
        self.assertRegex(a.listing(sub + 'private.img'), r'^[^ ]+ [^ ]+/[^ ]+ +%d .* %sprivate.img\n$'
                         % (os.path.getsize(volume), sub))
        self.assertEqual(a.untar(sub + 'notes.txt').decode(), 'notes of %s\nsecond line ✓' % name)
        self.assertEqual(a.untar(sub + 'firewall.xml'), b'<firewall version="2"><rules/></firewall>\n')
        xml = a.untar('qubes.xml').decode()
        root = harness.ET.fromstring(xml)
        for d in root.iter('domain'):
            feats = {f.get('name'): f.text or '' for f in d.iter('feature')}
            props = {p.get('name'): p.text for p in d.iter('property')}
            if props.get('name') == name:
                self.assertEqual(feats['backup-content'], '1')
                self.assertEqual(feats['backup-path'], sub)
                size = 0
                for f in ('private.img', 'private-cow.img', 'firewall.xml', 'notes.txt'):
                    p = os.path.join(self.qube_dir(name), f)
                    size += os.stat(p).st_blocks * 512 if os.path.exists(p) else 0
                self.assertEqual(int(feats['backup-size']), size)
            else:
                self.assertEqual(feats.get('backup-content'), '', props.get('name'))
                self.assertNotIn('backup-path', feats)
        return a

    def test_archive_uncompressed(self):
        volume = self.make_qube('alpha')
        self.profile('p', 'destination_vm: dom0\ndestination_path: %s\ninclude: [alpha]\ncompression: false\n'
                     'passphrase_text: "correct horse ✓"\n' % self.out)
        job = self.start_backup('p')
        props = self.wait(job)
        path = self.only_file()
        self.assertRegex(os.path.basename(path), r'^qubes-\d{4}-\d\d-\d\dT\d{6}$')
        self.assertEqual(props['State'], 'succeeded')
        self.assertEqual(props['Operation'], 'StartBackup')
        self.assertEqual(props['Caller'], 'dom0')
        self.assertEqual(props['Cancelable'], True)
        self.assertEqual(props['Qubes'], ['alpha'])
        self.assertEqual(props['BytesDone'], props['BytesTotal'])
        self.assertEqual(props['Progress'], 1.0)
        self.check_archive(path, 'correct horse ✓', 'alpha', volume, False)
        # the wrong passphrase does not open it
        code, _ = scrypt_dec(os.path.join(self.d.dir, 'unpacked-alpha', 'backup-header.hmac'),
                             os.path.join(self.d.dir, 'x'), 'backup-header!wrong')
        self.assertNotEqual(code, 0)
        # the qube's story in the journal (plain text here: qubesd's stderr is a file)
        with open(self.d.log_path, errors='replace') as f:
            self.assertIn('Backed up alpha to %s (profile p).' % path, f.read())
        # success sets backup_timestamp (saved)
        ts = int(self.d.get_property('alpha', 'backup_timestamp')[2])
        self.assertLess(abs(ts - time.time()), 120)
        self.assertEqual(harness.xml_domain_property(harness.parse_xml_file(self.d.xml_path), 'alpha',
                                                     'backup_timestamp'), str(ts))

    def test_archive_gzip_and_xz(self):
        volume = self.make_qube('beta')
        self.profile('gz', 'destination_vm: dom0\ndestination_path: %s/gz.bin\ninclude: [beta]\n'
                     'passphrase_text: pw\n' % self.out)
        # ExecuteBackup answers with the archive's name
        self.assertEqual(self.execute('gz'), os.path.join(self.out, 'gz.bin'))
        self.check_archive(os.path.join(self.out, 'gz.bin'), 'pw', 'beta', volume, True)
        if shutil.which('xz'):
            self.profile('xz', 'destination_vm: dom0\ndestination_path: %s/xz.bin\ninclude: [beta]\n'
                         'compression: xz\npassphrase_text: pw\n' % self.out)
            self.execute('xz')
            self.check_archive(os.path.join(self.out, 'xz.bin'), 'pw', 'beta', volume, True, 'xz')
        # an existing file is replaced
        before = sorted(os.listdir(self.out))
        self.execute('gz')
        self.assertEqual(sorted(os.listdir(self.out)), before)
        # a filter that fails: an error, and no file
        self.profile('bad', 'destination_vm: dom0\ndestination_path: %s/bad.bin\ninclude: [beta]\n'
                     'compression: "false"\npassphrase_text: pw\n' % self.out)
        self.assertRaises(harness.DBusError, self.execute, 'bad')
        self.assertNotIn('bad.bin', os.listdir(self.out))

    def test_exact_multiple_of_a_chunk(self):
        """A tar stream of exactly 100 MiB ends with an empty chunk, as upstream's."""
        self.create('exact')
        name = 'vm%d/private.img' % self.qid('exact')
        # our stream: PAX header block + records, ustar block, the one-entry map block, data, end
        for size in range(CHUNK - 8192, CHUNK, 512):
            recs = ''
            for key, value in (('GNU.sparse.major', '1'), ('GNU.sparse.minor', '0'), ('GNU.sparse.name', name),
                               ('GNU.sparse.realsize', str(size))):
                body = len(key) + len(value) + 3
                n = body + len(str(body))
                n = body + len(str(n))
                recs += '%d %s=%s\n' % (n, key, value)
            total = 512 + -(-len(recs) // 512) * 512 + 512 + 512 + size + 1024
            if total == CHUNK:
                break
        else:
            self.fail('no size gives exactly one chunk')
        path = os.path.join(self.qube_dir('exact'), 'private.img')
        with open(path, 'r+b') as f:
            f.truncate(size)
            block = os.urandom(1 << 20)
            for off in range(0, size, 1 << 20):
                f.write(block[:min(1 << 20, size - off)])
        self.profile('x', 'destination_vm: dom0\ndestination_path: %s/x.bin\ninclude: [exact]\n'
                     'compression: false\npassphrase_text: pw\n' % self.out)
        self.execute('x')
        a = Archive(self, os.path.join(self.out, 'x.bin'), 'pw', os.path.join(self.d.dir, 'unpacked'))
        self.assertEqual(a.chunk_counts[name], 2)
        self.assertEqual(os.path.getsize(os.path.join(a.dir, name + '.001')), 0)
        self.assertEqual(len(a.plain[name]), CHUNK)
        with open(path, 'rb') as f:
            self.assertEqual(a.untar(name), f.read())

    def test_chunks_side_by_side(self):
        """Without compression a dom0 archive's chunks are encrypted by several workers at once and
        written in place: each must land where a sequential writer puts it, in order, whole, and
        every byte of the volume must come back, whichever worker wrote it."""
        d = self.create('wide')
        path = os.path.join(d, 'private.img')
        # data in every chunk and across their borders, each MiB different, holes between
        data = [(i << 20, os.urandom(1 << 20)) for i in range(0, 96)]
        data += [(97 << 20, os.urandom(5 << 20) + b'x' * 4093)]  # crosses the first chunk's end
        data += [(i << 20, os.urandom(1 << 20)) for i in range(110, 215)]
        data += [(300 << 20, b'the last words')]
        write_volume(path, data)
        self.d.domain('wide', 'SetNotes', 's', ('wide notes',))
        with open(os.path.join(d, 'firewall.xml'), 'w') as f:
            f.write('<firewall version="2"><rules/></firewall>\n')
        self.profile('w', 'destination_vm: dom0\ndestination_path: %s/w.bin\ninclude: [wide]\n'
                     'compression: false\npassphrase_text: pw\n' % self.out)
        self.execute('w')
        a = Archive(self, os.path.join(self.out, 'w.bin'), 'pw', os.path.join(self.d.dir, 'unpacked'))
        sub = 'vm%d/' % self.qid('wide')
        # the outer layer to the byte (tar -i would forgive a stray zero block): one small archive
        # after the other, each a header, its data, padding and two zero blocks, to the file's end
        with open(os.path.join(self.out, 'w.bin'), 'rb') as f:
            names, off, end = [], 0, os.path.getsize(os.path.join(self.out, 'w.bin'))
            while off < end:
                f.seek(off)
                h = f.read(512)
                names.append((h[345:500].rstrip(b'\0') + b'/' if h[345] else b'') + h[:100].rstrip(b'\0'))
                size = int(h[124:136].rstrip(b'\0 '), 8)
                f.seek(off + 512 + -(-size // 512) * 512)
                self.assertEqual(f.read(1024), bytes(1024), 'the end blocks of ' + names[-1].decode())
                off += 512 + -(-size // 512) * 512 + 1024
            self.assertEqual(off, end)
            self.assertEqual([n.decode() for n in names], a.members)
        self.assertEqual(a.members, ['backup-header', 'backup-header.hmac', 'qubes.xml.000.enc'] +
                         [sub + 'private.img.%03d.enc' % i for i in range(3)] +
                         [sub + 'firewall.xml.000.enc', sub + 'notes.txt.000.enc'])
        self.assertEqual([len(a.plain[sub + 'private.img']) // CHUNK, a.chunk_counts[sub + 'private.img']], [2, 3])
        self.assertTrue(same_contents(a.extract(sub + 'private.img'), path), 'the volume differs')

    def test_qube_destination_and_passphrase_vm(self):
        volume = self.make_qube('gamma')
        svc = os.path.join(self.vmsvc, 'gamma')
        os.makedirs(svc)
        sink = os.path.join(self.out, 'from-qube')
        with open(os.path.join(svc, 'qubes.Backup'), 'w') as f:
            f.write('#!/bin/sh\nread -r path\nprintf "%%s" "$path" > %s.path\nexec cat > %s\n' % (sink, sink))
        with open(os.path.join(svc, 'qubes.BackupPassphrase+vmp'), 'w') as f:
            f.write('#!/bin/sh\nprintf "  secret from gamma \\n"\n')
        for n in os.listdir(svc):
            os.chmod(os.path.join(svc, n), 0o755)
        self.profile('vmp', 'destination_vm: gamma\ndestination_path: "some/where\\r\\n"\ninclude: [gamma]\n'
                     'passphrase_vm: gamma\n')
        self.execute('vmp')
        with open(sink + '.path') as f:
            self.assertEqual(f.read(), 'some/where')
        self.check_archive(sink, 'secret from gamma', 'gamma', volume, True)

        # the qube's service fails: its words are in the error
        with open(os.path.join(svc, 'qubes.Backup'), 'w') as f:
            f.write('#!/bin/sh\necho "no space left in the qube" >&2\nexit 3\n')
        try:
            self.execute('vmp')
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_message(e),
                             'Writing backup to VM gamma failed: no space left in the qube\n')
        else:
            self.fail('a failing qubes.Backup went unnoticed')

        # passphrase errors: a newline inside, a failing service
        with open(os.path.join(svc, 'qubes.BackupPassphrase+vmp'), 'w') as f:
            f.write('#!/bin/sh\nprintf "two\\nlines\\n"\n')
        try:
            self.execute('vmp')
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_name(e), E + 'ProtocolError')
            self.assertEqual(harness.dbus_error_message(e), 'Passphrase must not contain newline character')
        else:
            self.fail('a passphrase with a newline was taken')
        with open(os.path.join(svc, 'qubes.BackupPassphrase+vmp'), 'w') as f:
            f.write('#!/bin/sh\nexit 1\n')
        try:
            self.execute('vmp')
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_message(e), "Failed to retrieve passphrase from 'gamma' VM")
        else:
            self.fail('a failing passphrase service went unnoticed')


# --- running it ---------------------------------------------------------------------------------

# Under QUBESD_WRAPPER (valgrind, some 30 times slower) the large volumes are an eighth: 128 MiB
# still spans two chunks, which is what the code paths need; the 1 GiB bounds are the ASan run's.
SCALE = 8 if harness.UNDER_WRAPPER else 1
BIG = (1 << 30) // SCALE
# "promptly" there: every step of qubesd (and a call's whole path through the shim) is slower too
SLOW = 4 if harness.UNDER_WRAPPER else 1


class RunTests(BackupTestCase):
    def big_qube(self, name, sparse):
        d = self.create(name)
        path = os.path.join(d, 'private.img')
        block = os.urandom(1 << 20)
        with open(path, 'r+b') as f:
            f.truncate(BIG)
            step = 8 << 20 if sparse else 1 << 20
            for off in range(0, BIG, step):
                f.seek(off)
                f.write(block)
        return path

    def test_progress_and_one_per_profile(self):
        d = self.create('big')
        with open(os.path.join(d, 'private.img'), 'r+b') as f:
            block = os.urandom(1 << 20)
            for _ in range(300 // SCALE):
                f.write(block)
        self.profile('big', 'destination_vm: dom0\ndestination_path: %s/big.bin\ninclude: [big]\n'
                     'compression: false\npassphrase_text: pw\n' % self.out)
        events = harness.SignalCollector(self.d.conn, harness.MANAGER_IFACE, 'Event', ROOT_PATH)
        t0 = time.monotonic()
        job = self.start_backup('big')
        try:
            self.d.manager('StartBackup', 's', ('big',))
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_name(e), E + 'BackupAlreadyRunningError')
            self.assertEqual(harness.dbus_error_message(e), 'Backup already running')
        else:
            self.fail('a second backup of one profile started')
        self.wait(job)
        elapsed = time.monotonic() - t0
        events.pump(0.2)
        progress = [dict(s[3][3]) for s in events.signals if s[3][2] == 'backup-progress']
        self.assertTrue(progress, 'no backup-progress event')
        # at most one a second (spec §5)
        self.assertLessEqual(len(progress), int(elapsed) + 1, '%d events in %.1f s' % (len(progress), elapsed))
        for p in progress:
            self.assertEqual(p['backup_profile'], 'big')
            # Python's repr() of a float, as upstream sends it
            self.assertRegex(p['progress'], r'^(\d+\.\d+|\d(\.\d+)?e-\d\d)$')
            self.assertEqual(repr(float(p['progress'])), p['progress'])
        values = [float(p['progress']) for p in progress]
        self.assertEqual(values, sorted(values))
        self.assertLessEqual(values[-1], 100.0)
        # a finished profile may run again
        self.execute('big')

    def test_cancel_leaves_nothing(self):
        self.big_qube('big', sparse=False)
        self.profile('big', 'destination_vm: dom0\ndestination_path: %s\ninclude: [big]\n'
                     'compression: false\npassphrase_text: pw\n' % self.out)
        finished = harness.SignalCollector(self.d.conn, JOB_IFACE, 'Finished')
        job = self.start_backup('big')
        deadline = time.monotonic() + 60
        while self.job_props(job)['BytesDone'] == 0:
            self.assertLess(time.monotonic(), deadline, 'no progress')
            time.sleep(0.05)
        t0 = time.monotonic()
        self.d.manager('CancelBackup', 's', ('big',))
        self.assertLess(time.monotonic() - t0, 1.0 * SLOW, 'CancelBackup did not return promptly')
        self.assertEqual(self.wait(job)['State'], 'failed')
        self.assertLess(time.monotonic() - t0, 5.0 * SLOW, 'the backup took long to stop')
        self.assertEqual(os.listdir(self.out), [], 'a cancelled backup left a file')
        self.assertTrue(finished.wait_for(lambda s: any(x[0] == job for x in s)))
        sig = [x for x in finished.signals if x[0] == job][0]
        self.assertEqual(sig[3][0], 'failed')
        self.assertEqual(sig[3][1], [('', E + 'BackupCancelledError', 'Backup cancelled')])
        # nothing runs any more: Cancel says so; the timestamp was not set
        self.assertRaises(harness.DBusError, self.d.manager, 'CancelBackup', 's', ('big',))
        self.assertEqual(self.d.get_property('big', 'backup_timestamp')[1], True)
        # Job.Cancel works the same, with compression and through a pipe to a qube
        svc = os.path.join(self.vmsvc, 'big')
        os.makedirs(svc)
        with open(os.path.join(svc, 'qubes.Backup'), 'w') as f:
            f.write('#!/bin/sh\nread -r path\nexec cat > /dev/null\n')
        os.chmod(os.path.join(svc, 'qubes.Backup'), 0o755)
        self.profile('pipe', 'destination_vm: big\ndestination_path: x\ninclude: [big]\npassphrase_text: pw\n')
        job = self.start_backup('pipe')
        while self.job_props(job)['BytesDone'] == 0:
            time.sleep(0.05)
        self.d.call(job, JOB_IFACE, 'Cancel')
        self.assertEqual(self.wait(job)['State'], 'failed')
        self.assertEqual(self.children(), [], 'children left behind')

    def test_cancel_while_asking_the_passphrase(self):
        """The passphrase qube is asked once the backup runs, as part of its job: a cancel while
        someone is still typing stops the question (the runner and the service go too)."""
        self.create('vault')
        svc = os.path.join(self.vmsvc, 'vault')
        os.makedirs(svc)
        with open(os.path.join(svc, 'qubes.BackupPassphrase+slow'), 'w') as f:
            f.write('#!/bin/sh\nexec sleep 57\n')
        os.chmod(os.path.join(svc, 'qubes.BackupPassphrase+slow'), 0o755)
        self.profile('slow', 'destination_vm: dom0\ndestination_path: %s\ninclude: [vault]\n'
                     'passphrase_vm: vault\n' % self.out)
        job = self.start_backup('slow')
        deadline = time.monotonic() + 20
        while not any('sleep 57' in line for line in self.descendants()):
            self.assertLess(time.monotonic(), deadline, 'the passphrase service did not start')
            time.sleep(0.05)
        self.assertEqual(self.job_props(job)['State'], 'running')
        t0 = time.monotonic()
        self.d.manager('CancelBackup', 's', ('slow',))
        self.assertEqual(self.wait(job, timeout=10)['State'], 'failed')
        self.assertLess(time.monotonic() - t0, 3.0 * SLOW, 'the question went on after the cancel')
        self.assertEqual(os.listdir(self.out), [])
        self.assertEqual(self.descendants(), [], 'the runner or the service is left')

    def descendants(self):
        """Every process below qubesd."""
        out = subprocess.run(['ps', '-e', '-o', 'pid=,ppid=,args='], stdout=subprocess.PIPE).stdout.decode()
        procs = [line.split(None, 2) for line in out.splitlines() if line.strip()]
        pids, found = {str(self.d.proc.pid)}, []
        grew = True
        while grew:
            grew = False
            for p in procs:
                if len(p) == 3 and p[1] in pids and p[0] not in pids:
                    pids.add(p[0])
                    found.append(p[2])
                    grew = True
        return found

    def children(self):
        out = subprocess.run(['ps', '-o', 'pid=,args=', '--ppid', str(self.d.proc.pid)], stdout=subprocess.PIPE)
        return [line for line in out.stdout.decode().splitlines() if line.strip()]

    def test_running_qubes(self):
        """A running qube's volume comes from a snapshot; where its pool cannot make one, the
        backup is refused before anything is written."""
        pool_dir = os.path.join(self.d.dir, 'reflink-pool')
        self.d.manager('AddPool', 'sa(ss)', ('file-reflink', [('name', 'rl'), ('dir_path', pool_dir),
                                                              ('setup_check', 'False')]))
        self.create('snap', klass='StandaloneVM', options={'pool': 'rl'})
        vol = os.path.join(pool_dir, 'appvms', 'snap', 'private.img')
        # more than a chunk: the workers that encrypt chunks side by side read the snapshot too
        write_volume(vol, [(0, b'before the start'), (1 << 20, os.urandom(1 << 20) * 110)])
        before = os.path.join(self.d.dir, 'snap-before.img')
        subprocess.run(['cp', '--sparse=always', vol, before], check=True)
        self.d.domain('snap', 'Start')
        self.d.domain('personal', 'Start')
        self.profile('snap', 'destination_vm: dom0\ndestination_path: %s/snap.bin\ninclude: [snap]\n'
                     'passphrase_text: pw\n' % self.out)
        self.profile('personal', 'destination_vm: dom0\ndestination_path: %s/p.bin\ninclude: [personal]\n'
                     'passphrase_text: pw\n' % self.out)
        self.assertIn(' <-- The VM is running, backup will contain its state from before its start!\n',
                      self.info('snap'))
        self.execute('snap')
        a = Archive(self, os.path.join(self.out, 'snap.bin'), 'pw', os.path.join(self.d.dir, 'u'))
        sub = 'vm%d/' % self.qid('snap')
        extracted = a.extract(sub + 'private.img')
        with open(extracted, 'rb') as f:
            self.assertEqual(f.read(16), b'before the start')
        self.assertEqual(a.chunk_counts[sub + 'private.img'], 2)
        self.assertTrue(same_contents(extracted, before), 'the volume differs')
        self.assertIn(sub + 'root.img.000.enc', a.members)
        self.assertIn(' <-- The VM is running and private volume snapshots are disabled. Backup will fail!\n',
                      self.info('personal'))
        try:
            self.execute('personal')
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_name(e), E + 'QubesVMNotHaltedError')
            self.assertEqual(harness.dbus_error_message(e), "Domain is not powered off: 'personal'")
        else:
            self.fail('a running qube without snapshots was backed up')
        self.assertEqual(os.listdir(self.out), ['snap.bin'])


@unittest.skipIf(harness.UNDER_WRAPPER, 'measures qubesd itself')
class MemoryTests(BackupTestCase):
    # AddressSanitizer keeps freed memory in quarantine (256 MiB): without it, reuse shows as it
    # is in a normal build
    EXTRA_ENV = {'ASAN_OPTIONS': os.environ.get('ASAN_OPTIONS', '') + ':quarantine_size_mb=0'}

    def test_memory_bound(self):
        """A 1 GiB sparse volume costs qubesd no more memory than a small one."""
        def hwm():
            with open('/proc/%d/status' % self.d.proc.pid) as f:
                return int(re.search(r'VmHWM:\s+(\d+) kB', f.read()).group(1))
        small = self.create('small')
        write_volume(os.path.join(small, 'private.img'), [(0, os.urandom(4 << 20))])
        RunTests.big_qube(self, 'sparse', sparse=True)
        for name in ('small', 'sparse'):
            self.profile(name, 'destination_vm: dom0\ndestination_path: %s/%s.bin\ninclude: [%s]\n'
                         'compression: false\npassphrase_text: pw\n' % (self.out, name, name))
        self.execute('small')
        before = hwm()
        self.execute('sparse')
        after = hwm()
        self.assertLess(after - before, 8 * 1024, 'peak RSS grew by %d KiB for a 1 GiB volume' % (after - before))
        self.assertGreater(os.path.getsize(os.path.join(self.out, 'sparse.bin')), 128 << 20)


# --- the Admin API ------------------------------------------------------------------------------

@harness.over_each_route
class ShimTests(BackupTestCase):
    def setUp(self):
        super().setUp()
        self.shim = find_shim()
        self.door = SocketDoor(self.shim, self.d)
        self.addCleanup(self.door.stop)

    def both(self, request):
        got = self.door.call(request)
        status, via_service, err = service_call(self.shim, self.d, request, timeout=300)
        self.assertEqual(status, 0, err)
        self.assertEqual(got, via_service, request)
        return got

    def test_wire(self):
        self.create('alpha')
        self.profile('p', 'destination_vm: dom0\ndestination_path: %s\ninclude: [alpha]\n'
                     'passphrase_text: pw\n' % self.out)
        exc = [
            (b'admin.backup.Info dom0 name dom0\x00', 'ProtocolError', 'expected an argument'),
            (b'admin.backup.Execute dom0 name dom0\x00', 'ProtocolError', 'expected an argument'),
            (b'admin.backup.Cancel+p dom0 name work\x00', 'ProtocolError', 'expected destination to be AdminVM'),
            (b'admin.backup.Info+p dom0 name dom0\x00x', 'ProtocolError', 'unexpected payload'),
            (b'admin.backup.Info+nope dom0 name dom0\x00', 'QubesBackupProfileNotFoundError',
             'Backup profile does not exist: nope'),
            (b'admin.backup.Cancel+p dom0 name dom0\x00', 'QubesException', 'Backup operation not running'),
        ]
        for request, cls, message in exc:
            got = self.both(request)
            self.assertEqual(parse_exception(got)[:2], (cls, message), request)
        # '/' cannot reach the service door through qrexec's argument rules; the socket door
        got = self.door.call(b'admin.backup.Info+a/b dom0 name dom0\x00')
        self.assertEqual(parse_exception(got)[:2],
                         ('ProtocolError', 'Backup profile ID must not contain forward slash character'))
        info = self.both(b'admin.backup.Info+p dom0 name dom0\x00')
        self.assertEqual(info, b'0\x00' + self.info('p').encode())
        self.assertEqual(self.both(b'admin.backup.Execute+p dom0 name dom0\x00'), b'0\x00')
        self.assertTrue(os.listdir(self.out))

    def test_cancel_through_the_shim(self):
        """admin.backup.Cancel during a 1 GiB backup returns at once; Execute then answers
        BackupCancelledError and no partial archive is left."""
        d = self.create('big')
        with open(os.path.join(d, 'private.img'), 'r+b') as f:
            block = os.urandom(1 << 20)
            for _ in range(BIG >> 20):
                f.write(block)
        self.profile('big', 'destination_vm: dom0\ndestination_path: %s\ninclude: [big]\ncompression: false\n'
                     'passphrase_text: pw\n' % self.out)
        result = {}

        def execute():
            result['reply'] = self.door.call(b'admin.backup.Execute+big dom0 name dom0\x00')
        t = threading.Thread(target=execute)
        t.start()
        deadline = time.monotonic() + 60
        while True:
            jobs = self.jobs('ExecuteBackup')
            if jobs and self.job_props(jobs[0])['BytesDone'] > 0:
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        t0 = time.monotonic()
        status, reply, err = service_call(self.shim, self.d, b'admin.backup.Cancel+big dom0 name dom0\x00')
        self.assertEqual(reply, b'0\x00')
        self.assertLess(time.monotonic() - t0, 2.0 * SLOW, 'admin.backup.Cancel did not return promptly')
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual(parse_exception(result['reply'])[:2], ('BackupCancelledError', 'Backup cancelled'))
        self.assertEqual(os.listdir(self.out), [])


@harness.over_each_route
class UpstreamClientTests(BackupTestCase):
    """The real qvm-backup and qvm-backup-restore (qubesadmin 4.4) through the shim."""

    def setUp(self):
        if not os.path.exists(QVM):
            raise unittest.SkipTest('no ../shared/qubesadmin')
        super().setUp()
        self.shim = find_shim()
        self.door = SocketDoor(self.shim, self.d)
        self.addCleanup(self.door.stop)
        self.services = os.path.join(self.d.dir, 'rpc')
        os.makedirs(self.services)
        for m in ('admin.vm.volume.Import', 'admin.vm.volume.ImportWithSize'):
            os.symlink(self.shim, os.path.join(self.services, m))
        # the shim as a qrexec service (the Import calls) reaches this qubesd by the route, never
        # a /run/qubesd/private another test may have made meanwhile
        self.env = dict(self.d.shim_env(), QUBESD_SOCKET=self.door.path, QREXEC_SERVICES_DIR=self.services,
                        HOME=self.d.dir)

    def qvm(self, *args, input=None, check=True):
        r = subprocess.run(['/usr/bin/python3', QVM] + list(args), env=self.env, input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if check and r.returncode != 0:
            self.fail('%s failed (%d):\n%s%s' % (' '.join(args), r.returncode, r.stdout.decode(),
                                                 r.stderr.decode()))
        return r

    @unittest.skipIf(harness.UNDER_WRAPPER, 'upstream restore imports the 2 GiB volume in full, zeros and all: '
                     'minutes of qubesd\'s import loop under valgrind, which test_storage covers')
    def test_backup_and_restore(self):
        d = self.create('work2', label='purple')
        data = [(0, os.urandom(200 * 1024)), (40 << 20, b'far away in the volume')]
        write_volume(os.path.join(d, 'private.img'), data)
        volume = os.path.join(self.d.dir, 'work2-private.img')  # what it held, holes and all
        subprocess.run(['cp', '--sparse=always', os.path.join(d, 'private.img'), volume], check=True)
        self.d.set_property('work2', 'memory', '555')
        self.d.set_property('work2', 'netvm', '')
        self.d.domain('work2', 'SetFeature', 'ss', ('service.cups', '1'))
        self.d.domain('work2', 'AddTag', 's', ('my-tag',))
        self.d.domain('work2', 'SetNotes', 's', ('remember me',))
        self.profile('qvm', 'destination_vm: dom0\ndestination_path: %s/qvm.bin\ninclude: [work2]\n'
                     'passphrase_text: upstream pw\n' % self.out)
        r = self.qvm('qvm-backup', '--profile', 'qvm', '--yes')
        self.assertIn('work2 |', r.stdout.decode())
        archive = os.path.join(self.out, 'qvm.bin')
        self.assertTrue(os.path.exists(archive))
        self.assertTrue(self.d.get_property('work2', 'backup_timestamp')[2])

        passfile = os.path.join(self.d.dir, 'pass')
        with open(passfile, 'w') as f:
            f.write('upstream pw\n')
        r = self.qvm('qvm-backup-restore', '--verify-only', '--passphrase-file', passfile, archive)
        self.assertIn('work2', r.stdout.decode() + r.stderr.decode())

        self.d.domain('work2', 'Remove')
        r = self.qvm('qvm-backup-restore', '--passphrase-file', passfile, archive)
        log = r.stdout.decode() + r.stderr.decode()
        self.assertNotIn('Error', log)
        self.assertNotIn('Failed', log)
        self.assertEqual(self.d.get_property('work2', 'label')[2], 'purple')
        self.assertEqual(self.d.get_property('work2', 'memory')[2], '555')
        self.assertEqual(self.d.get_property('work2', 'netvm')[1:], (False, ''))
        self.assertEqual(self.d.domain('work2', 'GetFeature', 's', ('service.cups',))[0], '1')
        self.assertIn('my-tag', self.d.domain('work2', 'ListTags')[0])
        self.assertEqual(self.d.domain('work2', 'GetNotes')[0], 'remember me')
        self.assertTrue(same_contents(os.path.join(self.qube_dir('work2'), 'private.img'), volume))
        # the backup-* features stay in the archive
        self.assertRaises(harness.DBusError, self.d.domain, 'work2', 'GetFeature', 's', ('backup-content',))

        # a wrong passphrase: upstream says so, and nothing is restored
        with open(passfile, 'w') as f:
            f.write('wrong\n')
        r = self.qvm('qvm-backup-restore', '--passphrase-file', passfile, archive, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('Is the password correct', r.stderr.decode())

    def test_qvm_backup_writes_its_profile(self):
        """qvm-backup without --profile writes a profile, asks Info, rewrites it with the
        passphrase and runs Execute (its profile directory pointed at ours)."""
        self.create('work3')
        code = ('import runpy, sys; g = runpy.run_path(%r, run_name="qvm"); '
                'import qubesadmin.tools.qvm_backup as q; q.backup_profile_dir = %r; '
                'sys.exit(q.main(["--yes", "--passphrase-file", "-", %r, "work3"]))'
                % (QVM, os.path.join(self.conf, 'backup'), self.out))
        r = subprocess.run(['/usr/bin/python3', '-c', code], env=self.env, input=b'typed pw\n',
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        self.assertIn('work3 |', r.stdout.decode())
        path = self.only_file()
        self.assertEqual(os.listdir(os.path.join(self.conf, 'backup')), [], 'the run profile stays')
        a = Archive(self, path, 'typed pw', os.path.join(self.d.dir, 'u'))
        self.assertEqual(a.header['compressed'], 'True')


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
