# SPDX-License-Identifier: LGPL-2.1-or-later
"""qubes-backup-restore (issue 17): an archive built only with tar, gzip and the scrypt command in
upstream's layout, and archives qubesd made, restored through qubesd's D-Bus API (properties,
features, tags, notes, the volume's bytes, renaming on a name clash); a wrong passphrase, a
truncated and a tampered archive leave nothing behind.

Environment: QUBESD, QUBES_BUILD_DIR, QUBES_SOURCE_DIR.
"""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_backup import BackupTestCase, same_contents, write_volume  # noqa: E402

EXAMPLE_XML = os.path.join(harness.SOURCE_DIR, 'tests', 'data', 'example-qubes.xml')
VOLUME_SIZE = 3 * 1024 * 1024 + 4096


def find_restore():
    build = os.environ.get('QUBES_BUILD_DIR')
    dirs = [build] if build else []
    qubesd = os.environ.get('QUBESD')
    if qubesd:
        dirs.append(os.path.dirname(os.path.dirname(os.path.abspath(qubesd))))
    for d in dirs + [os.path.join(harness.SOURCE_DIR, b) for b in ('build', 'build-test')]:
        p = os.path.join(d, 'backup-restore', 'qubes-backup-restore')
        if os.access(p, os.X_OK):
            return p
    raise unittest.SkipTest('no built qubes-backup-restore')


def scrypt_enc(src, dst, passphrase):
    env = dict(os.environ, SCRYPT_PW=passphrase)
    subprocess.run(['scrypt', 'enc', '--logN', '10', '-r', '8', '-p', '1', '--passphrase', 'env:SCRYPT_PW',
                    src, dst], env=env, check=True)


def build_upstream_archive(workdir, archive, passphrase, volume_path):
    """A v4 backup made the way upstream's writer makes one, with nothing but tar, gzip, split and
    scrypt: the header and its encrypted twin, qubes.xml (upstream's own example store, the qube
    'work' marked as backed up in vm4/), and work's private.img archived by GNU tar --sparse
    (the old GNU sparse format, as upstream does for a file-pool volume), gzip'ed, in chunks."""
    backup_id = '20250101T120000-4242'
    tmp = os.path.join(workdir, 'tmp')
    os.makedirs(os.path.join(tmp, 'vm4'))
    with open(os.path.join(tmp, 'backup-header'), 'w') as f:
        f.write('version=4\nencrypted=True\ncompressed=True\ncompression-filter=gzip\nhmac-algorithm=scrypt\n'
                'backup-id=%s\n' % backup_id)
    scrypt_enc(os.path.join(tmp, 'backup-header'), os.path.join(tmp, 'backup-header.hmac'),
               'backup-header!' + passphrase)
    with open(EXAMPLE_XML) as f:
        xml = f.read()
    xml = xml.replace('<feature name="service.cups">1</feature>',
                      '<feature name="service.cups">1</feature>\n        <feature name="backup-content">1</feature>'
                      '\n        <feature name="backup-path">vm4/</feature>'
                      '\n        <feature name="backup-size">%d</feature>' % VOLUME_SIZE)
    src = os.path.join(workdir, 'src')
    os.makedirs(src)
    with open(os.path.join(src, 'qubes.xml'), 'w') as f:
        f.write(xml)

    def pack(directory, name, subdir, chunk_base):
        # upstream: tar -Pc --sparse -C DIR --dereference --xform=s:^NAME:SUBDIR\0: NAME, through the
        # compression filter, split into 100 MiB chunks, each encrypted with its own passphrase
        inner = os.path.join(workdir, 'inner')
        subprocess.run(['tar', '-Pc', '--sparse', '-C', directory, '--dereference',
                        '--xform=s:^%s:%s\\0:' % (name, subdir), '--use-compress-program=gzip', '-f', inner, name],
                       check=True)
        subprocess.run(['split', '-a', '3', '-d', '-b', '100M', inner, os.path.join(tmp, chunk_base + '.')],
                       check=True)
        chunks = sorted(c for c in os.listdir(os.path.join(tmp, os.path.dirname(chunk_base)))
                        if c.startswith(os.path.basename(chunk_base) + '.') and not c.endswith('.enc'))
        for c in chunks:
            rel = os.path.join(os.path.dirname(chunk_base), c)
            scrypt_enc(os.path.join(tmp, rel), os.path.join(tmp, rel + '.enc'),
                       '%s!%s!%s' % (backup_id, rel, passphrase))
            os.unlink(os.path.join(tmp, rel))
        return [os.path.join(os.path.dirname(chunk_base), c + '.enc') for c in chunks]

    members = ['backup-header', 'backup-header.hmac']
    members += pack(src, 'qubes.xml', '', 'qubes.xml')
    members += pack(os.path.dirname(volume_path), 'private.img', 'vm4/', 'vm4/private.img')
    # the outer layer: one POSIX tar per member, one after the other (tar -cO --posix)
    with open(archive, 'wb') as out:
        for m in members:
            subprocess.run(['tar', '-cO', '--posix', '-C', tmp, m], stdout=out, check=True)
    return members


class RestoreTestCase(BackupTestCase):
    def setUp(self):
        need_tools = ('tar', 'scrypt', 'gzip', 'split')
        for t in need_tools:
            if not shutil.which(t):
                raise unittest.SkipTest('%s is not installed' % t)
        self.restore_bin = find_restore()
        super().setUp()
        self.passfile = os.path.join(self.d.dir, 'pass')

    def restore(self, archive, passphrase, *args, qubes=()):
        with open(self.passfile, 'w') as f:
            f.write(passphrase + '\n')
        r = subprocess.run([self.restore_bin, '--bus-address=' + self.d.address, '--passphrase-file', self.passfile]
                           + list(args) + [archive] + list(qubes), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=600)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def names(self):
        return sorted(d[0] for d in self.d.manager('ListDomains')[0])


class UpstreamArchiveTests(RestoreTestCase):
    def make_volume(self):
        src = os.path.join(self.d.dir, 'upstream-vm')
        os.makedirs(src)
        path = os.path.join(src, 'private.img')
        with open(path, 'wb') as f:
            f.truncate(VOLUME_SIZE)
        write_volume(path, [(0, os.urandom(100000)), (2 * 1024 * 1024 + 5, b'in a sparse volume'),
                            (VOLUME_SIZE - 4, b'end!')])
        with open(path, 'rb') as f:
            return path, f.read()

    def test_restore_upstream_layout(self):
        path, data = self.make_volume()
        archive = os.path.join(self.d.dir, 'upstream.bin')
        members = build_upstream_archive(self.d.dir, archive, 'upstream ✓ pass', path)
        self.assertEqual(members, ['backup-header', 'backup-header.hmac', 'qubes.xml.000.enc',
                                   'vm4/private.img.000.enc'])
        before = self.names()

        code, out, err = self.restore(archive, 'upstream ✓ pass', '--list')
        self.assertEqual(code, 0, err)
        self.assertIn(" work | AppVM | fedora-42 | (default) |  blue | <-- Template change to 'debian-12-xfce' "
                      "<-- Will be renamed to 'work-1'\n", out)
        self.assertEqual(self.names(), before, '--list created something')

        code, out, err = self.restore(archive, 'upstream ✓ pass', '--verify-only')
        self.assertEqual(code, 0, out + err)
        self.assertEqual(self.names(), before)

        code, out, err = self.restore(archive, 'upstream ✓ pass')
        self.assertEqual(code, 0, out + err)
        self.assertIn('Restored work as work-1', out)
        self.assertEqual(self.names(), sorted(before + ['work-1']))
        self.assertEqual(self.d.get_property('work-1', 'label')[2], 'blue')
        self.assertEqual(self.d.get_property('work-1', 'memory')[2], '800')
        # fedora-42 is neither here nor in the backup: the default template
        self.assertEqual(self.d.get_property('work-1', 'template')[2], 'debian-12-xfce')
        self.assertEqual(self.d.domain('work-1', 'GetFeature', 's', ('service.cups',))[0], '1')
        self.assertIn('my-tag', self.d.domain('work-1', 'ListTags')[0])
        with open(os.path.join(self.qube_dir('work-1'), 'private.img'), 'rb') as f:
            self.assertEqual(f.read(), data)
        # sparse, as it came: the holes were not written
        st = os.stat(os.path.join(self.qube_dir('work-1'), 'private.img'))
        self.assertLess(st.st_blocks * 512, VOLUME_SIZE // 2)

    def test_damaged_archives_leave_nothing(self):
        path, data = self.make_volume()
        archive = os.path.join(self.d.dir, 'upstream.bin')
        build_upstream_archive(self.d.dir, archive, 'pw', path)
        before = self.names()

        code, out, err = self.restore(archive, 'not the passphrase')
        self.assertEqual(code, 1)
        self.assertIn('Is the password correct?', err)
        self.assertEqual(self.names(), before)

        with open(archive, 'rb') as f:
            whole = f.read()
        for name, damaged in (('truncated', whole[:len(whole) - 3000]),
                              ('tampered', whole[:-5000] + bytes([whole[-5000] ^ 1]) + whole[-4999:])):
            p = os.path.join(self.d.dir, name + '.bin')
            with open(p, 'wb') as f:
                f.write(damaged)
            code, out, err = self.restore(p, 'pw')
            self.assertEqual(code, 1, '%s: %s%s' % (name, out, err))
            self.assertIn('Nothing was restored: the qubes this run had created were removed again.', out, name)
            self.assertRegex(err, r'truncated|MAC|damaged', name)
            self.assertEqual(self.names(), before, name)


# Under QUBESD_WRAPPER (valgrind, some 30 times slower) the volumes are an eighth of their size:
# the code paths are the same, and the sizes matter in the ASan run.
SCALE = 8 if harness.UNDER_WRAPPER else 1


class OwnArchiveTests(RestoreTestCase):
    @unittest.skipIf(harness.UNDER_WRAPPER, 'restores a 2 GiB volume twice, its holes as zeros through the import: '
                     'minutes of qubesd\'s import loop under valgrind, which test_storage covers')
    def test_round_trip(self):
        d = self.create('keep', label='orange')
        chunks = [(0, os.urandom(150 << 20)), (300 << 20, b'beyond the first chunks')]
        write_volume(os.path.join(d, 'private.img'), chunks)
        volume = os.path.join(self.d.dir, 'keep-private.img')  # what it held, holes and all
        subprocess.run(['cp', '--sparse=always', os.path.join(d, 'private.img'), volume], check=True)
        self.d.set_property('keep', 'vcpus', '3')
        self.d.set_property('keep', 'netvm', 'sys-net')
        self.d.domain('keep', 'SetFeature', 'ss', ('gui', '1'))
        self.d.domain('keep', 'SetFeature', 'ss', ('empty-one', ''))
        self.d.domain('keep', 'AddTag', 's', ('backed-up',))
        self.d.domain('keep', 'SetNotes', 's', ('notes ✓\n',))
        rules = [{'action': 'drop', 'proto': 'tcp', 'dstports': '22', 'comment': 'no ssh'}, {'action': 'accept'}]
        self.d.call(harness.domain_path('keep'), harness.IFACE + '.Firewall', 'SetRules', 'aa{ss}', (rules,))
        self.profile('own', 'destination_vm: dom0\ndestination_path: %s/own.bin\ninclude: [keep, personal]\n'
                     'compression: false\npassphrase_text: pw\n' % self.out)
        # personal's private volume was never written: all holes, restored by size alone
        personal_private = harness.ROOT_PATH + '/domain/personal/volume/private'
        size = self.d.call(personal_private, 'org.freedesktop.DBus.Properties', 'Get', 'ss',
                           (harness.IFACE + '.Volume', 'Size'))[0]
        self.execute('own')
        archive = os.path.join(self.out, 'own.bin')
        for name in ('keep', 'personal'):
            self.d.domain(name, 'Remove')
        code, out, err = self.restore(archive, 'pw', '--progress')
        self.assertEqual(code, 0, out + err)
        self.assertIn('Restored keep\n', out)
        self.assertIn('Restored personal\n', out)
        self.assertRegex(err, r'Restoring from the archive\.\.\. 100%')
        self.assertEqual(self.d.get_property('keep', 'label')[2], 'orange')
        self.assertEqual(self.d.get_property('keep', 'vcpus')[2], '3')
        self.assertEqual(self.d.get_property('keep', 'netvm')[2], 'sys-net')
        self.assertEqual(self.d.domain('keep', 'GetFeature', 's', ('gui',))[0], '1')
        self.assertEqual(self.d.domain('keep', 'GetFeature', 's', ('empty-one',))[0], '')
        self.assertIn('backed-up', self.d.domain('keep', 'ListTags')[0])
        self.assertEqual(self.d.domain('keep', 'GetNotes')[0], 'notes ✓\n')
        self.assertEqual(self.d.dbus_get(harness.domain_path('keep'), harness.IFACE + '.Firewall', 'Rules'),
                         [{'action': 'drop', 'comment': 'no ssh', 'proto': 'tcp', 'dstports': '22'},
                          {'action': 'accept'}])
        self.assertTrue(same_contents(os.path.join(self.qube_dir('keep'), 'private.img'), volume))
        self.assertEqual(self.d.call(personal_private, 'org.freedesktop.DBus.Properties', 'Get', 'ss',
                                     (harness.IFACE + '.Volume', 'Size'))[0], size)
        # (jobs stay on the bus for five minutes: no import of personal's volumes ran)
        self.assertNotIn(('ImportWithSize', ['personal']),
                         [(p['Operation'], p['Qubes']) for p in map(self.job_props, self.all_jobs())])

        # again, with the names taken: renamed as upstream does, only what was asked for
        code, out, err = self.restore(archive, 'pw', qubes=['keep'])
        self.assertEqual(code, 0, out + err)
        self.assertIn('Restored keep as keep-1', out)
        self.assertNotIn('personal-1', self.names())
        code, out, err = self.restore(archive, 'pw', '--skip-conflicting')
        self.assertEqual(code, 3, out + err)
        self.assertIn('Skipped keep: a qube named keep exists already', out)

    def test_porcelain_and_cancel(self):
        """--porcelain is what the Qube Manager reads; SIGTERM stops a restore and removes what
        it had created."""
        import signal
        d = self.create('long')
        with open(os.path.join(d, 'private.img'), 'r+b') as f:
            block = os.urandom(1 << 20)
            for _ in range(400 // SCALE):
                f.write(block)
        self.profile('long', 'destination_vm: dom0\ndestination_path: %s/long.bin\ninclude: [long]\n'
                     'compression: false\npassphrase_text: pw\n' % self.out)
        self.execute('long')
        self.d.domain('long', 'Remove')
        before = self.names()
        with open(self.passfile, 'w') as f:
            f.write('pw\n')
        archive = os.path.join(self.out, 'long.bin')
        code, out, err = self.restore(archive, 'pw', '--porcelain', '--list')
        self.assertEqual(code, 0, err)
        self.assertEqual(out, 'qube\tlong\tAppVM\tdebian-12-xfce\tred\tlong\t-\n')
        p = subprocess.Popen([self.restore_bin, '--bus-address=' + self.d.address, '-p', self.passfile,
                              '--porcelain', archive], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in p.stdout:
            lines.append(line)
            if line.startswith('progress\t') and int(line.split('\t')[1]) >= 10:
                p.send_signal(signal.SIGTERM)
                break
        rest, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 1, err)
        self.assertIn('error\tcancelled\n', rest)
        self.assertEqual(self.names(), before)

    def test_a_chunk_from_another_backup(self):
        """Chunks are bound to their backup and name: one swapped in from another backup of
        the same qube with the same passphrase is refused, and nothing stays."""
        d = self.create('swap')
        write_volume(os.path.join(d, 'private.img'), [(0, b'first')])
        self.profile('s', 'destination_vm: dom0\ndestination_path: %s/s1.bin\ninclude: [swap]\n'
                     'compression: false\npassphrase_text: pw\n' % self.out)
        self.execute('s')
        import time
        time.sleep(1.1)  # another backup-id
        write_volume(os.path.join(d, 'private.img'), [(0, b'second')])
        self.profile('s', 'destination_vm: dom0\ndestination_path: %s/s2.bin\ninclude: [swap]\n'
                     'compression: false\npassphrase_text: pw\n' % self.out)
        self.execute('s')
        one = subprocess.run(['tar', '-i', '-t', '-R', '-f', os.path.join(self.out, 's1.bin')],
                             stdout=subprocess.PIPE, check=True).stdout.decode()
        # the byte offsets of vm<qid>/private.img.000.enc in each, from tar -R (block numbers)
        def block_of(path, member):
            out = subprocess.run(['tar', '-i', '-t', '-R', '-f', path], stdout=subprocess.PIPE,
                                 check=True).stdout.decode()
            for line in out.splitlines():
                m = re.match(r'block (\d+): (.*)$', line)
                if m and m.group(2) == member:
                    return int(m.group(1)) * 512
            raise AssertionError('%s not in %s: %s' % (member, path, one))
        member = 'vm%d/private.img.000.enc' % self.qid('swap')
        with open(os.path.join(self.out, 's1.bin'), 'rb') as f:
            a = f.read()
        with open(os.path.join(self.out, 's2.bin'), 'rb') as f:
            b = f.read()
        off_a, off_b = block_of(os.path.join(self.out, 's1.bin'), member), block_of(os.path.join(self.out, 's2.bin'), member)
        mixed = a[:off_a] + b[off_b:]
        p = os.path.join(self.d.dir, 'mixed.bin')
        with open(p, 'wb') as f:
            f.write(mixed)
        self.d.domain('swap', 'Remove')
        before = self.names()
        code, out, err = self.restore(p, 'pw')
        self.assertEqual(code, 1, out + err)
        self.assertIn('belongs to another backup', err)
        self.assertEqual(self.names(), before)


if __name__ == '__main__':
    harness.main()
