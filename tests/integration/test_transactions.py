#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Changes are transactions (docs/daemon.md, "Transactions and the group commit").

- On a full disk (a 400 KiB tmpfs filled to the last bytes) qubes.xml cannot be saved: a refused
  Remove leaves the qube listed with its private.img intact, also after kill -9 and a restart; a
  refused Set, feature, tag or Create sends no event and is never written later, not even by a
  later successful save.
- 8 clients calling SetProperty at once are all answered, and every answered value is durable.
- String properties are bounded: 1 MB is refused with QubesValueError over D-Bus and through
  upstream's qvm-prefs, and nothing changes.
- Start-up is safe: without qubes.xml and without --init qubesd exits non-zero with a clear
  message and writes nothing; with --init it creates a new system. A bad tag or a duplicate
  feature in qubes.xml is refused with file:line.
- Remove leaves no empty appvms/<name>/ directory."""

import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, SignalCollector  # noqa: E402

QUBES_EXC = 'org.qubes_os.Admin1.Error.QubesException'
VALUE_ERROR = 'org.qubes_os.Admin1.Error.QubesValueError'
MARKER = b'private data that must survive\n' * 128


def fill(path):
    """Fill the file system of path to the last byte; returns the filler's path."""
    filler = os.path.join(path, 'filler')
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b'\xaa' * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


class TestFullDisk(DaemonTestCase):
    """qubesd's state directory on a 400 KiB tmpfs."""

    QUBES_XML = None

    def setUp(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest('mounting a tmpfs needs root')
        self.d = harness.Daemon(None, route=self.ROUTE)
        self.addCleanup(self.d.cleanup)
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', self.d.state_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise unittest.SkipTest('cannot mount a tmpfs: %s' % r.stdout.decode())
        self.addCleanup(subprocess.run, ['umount', '-l', self.d.state_dir])
        self.d.seed(harness.DEMO_XML)
        self.d.start()
        # a qube with data of its own
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'victim', 'red', '', {}))
        self.private = os.path.join(self.d.state_dir, 'appvms', 'victim', 'private.img')
        with open(self.private, 'r+b') as f:
            f.write(MARKER)
        self.events = SignalCollector(self.d.conn, member='Event')
        self.addCleanup(self.events.close)
        self.filler = fill(self.d.state_dir)

    def free(self):
        os.unlink(self.filler)

    def event_names(self):
        self.events.pump(0.3)
        return [s[3][2] for s in self.events.signals]

    def restart_after_kill(self):
        self.d.kill9()
        self.d.start()

    def test_refused_remove_keeps_the_qube_and_its_data(self):
        self.assertDBusError(QUBES_EXC, self.d.domain, 'victim', 'Remove', message='qubes.xml')
        names = {row[0] for row in self.d.manager('ListDomains', reply_type='(a(sssso))')[0]}
        self.assertIn('victim', names, 'a refused Remove took the qube out of the listing')
        with open(self.private, 'rb') as f:
            self.assertEqual(f.read(len(MARKER)), MARKER, 'a refused Remove touched private.img')
        self.assertNotIn('domain-delete', self.event_names())
        self.assertNotIn('domain-pre-delete', self.event_names())
        # the qube still works as before
        self.assertEqual(self.d.get_property('victim', 'label')[2], 'red')

        self.restart_after_kill()
        names = {row[0] for row in self.d.manager('ListDomains', reply_type='(a(sssso))')[0]}
        self.assertIn('victim', names, 'after kill -9 the refused Remove took effect')
        with open(self.private, 'rb') as f:
            self.assertEqual(f.read(len(MARKER)), MARKER, 'private.img lost after kill -9')

        # with room again, Remove works and takes everything, the directory too
        self.free()
        self.d.domain('victim', 'Remove')
        self.assertFalse(os.path.exists(os.path.dirname(self.private)),
                         'Remove left %s' % os.path.dirname(self.private))

    def test_refused_changes_are_never_written(self):
        self.assertDBusError(QUBES_EXC, self.d.set_property, 'work', 'memory', '777')
        self.assertDBusError(QUBES_EXC, self.d.domain, 'work', 'SetFeature', 'ss', ('refused-feature', '1'))
        self.assertDBusError(QUBES_EXC, self.d.domain, 'work', 'AddTag', 's', ('refused-tag',))
        self.assertDBusError(QUBES_EXC, self.d.manager, 'CreateDomain', 'ssssa{ss}',
                             ('AppVM', 'refused-new', 'blue', '', {}))
        self.assertDBusError(QUBES_EXC, self.d.manager, 'CreateDisposable', 's', ('default-dvm',))
        # none of it is visible, and no event announced it
        self.assertNotEqual(self.d.get_property('work', 'memory')[2], '777')
        self.assertFalse(self.d.domain('work', 'HasTag', 's', ('refused-tag',))[0])
        names = {row[0] for row in self.d.manager('ListDomains', reply_type='(a(sssso))')[0]}
        self.assertNotIn('refused-new', names)
        self.assertEqual([n for n in names if n.startswith('disp')], [], 'a refused CreateDisposable left a qube')
        self.assertFalse(os.path.exists(os.path.join(self.d.state_dir, 'appvms', 'refused-new')),
                         'a refused Create left its files')
        self.assertEqual([n for n in os.listdir(os.path.join(self.d.state_dir, 'appvms')) if n.startswith('disp')],
                         [], 'a refused CreateDisposable left its files')
        seen = self.event_names()
        for name in ('property-set:memory', 'property-pre-set:memory', 'domain-feature-set:refused-feature',
                     'domain-tag-add:refused-tag', 'domain-add'):
            self.assertNotIn(name, seen, 'an event was sent for a refused change')

        # a later successful save does not write any of it
        self.free()
        self.d.set_property('work', 'vcpus', '3')
        self.restart_after_kill()
        root = harness.parse_xml_file(self.d.xml_path)
        self.assertEqual(harness.xml_domain_property(root, 'work', 'vcpus'), '3')
        self.assertNotEqual(harness.xml_domain_property(root, 'work', 'memory'), '777')
        self.assertNotEqual(self.d.get_property('work', 'memory')[2], '777')
        with open(self.d.xml_path, encoding='utf-8') as f:
            text = f.read()
        for word in ('refused-feature', 'refused-tag', 'refused-new'):
            self.assertNotIn(word, text, 'a refused change was written by a later save')
        names = {row[0] for row in self.d.manager('ListDomains', reply_type='(a(sssso))')[0]}
        self.assertNotIn('refused-new', names)


class TestGroupCommit(DaemonTestCase):
    CLIENTS = 8
    CALLS = 40

    def test_concurrent_sets_are_all_durable(self):
        names = ['g%d' % i for i in range(self.CLIENTS)]
        for n in names:
            self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', n, 'red', '', {}))
        errors = []
        last = {}

        def client(name):
            conn = self.d.connect()
            try:
                for k in range(1, self.CALLS + 1):
                    self.d.call(harness.domain_path(name), harness.DOMAIN_IFACE, 'SetProperty', 'ss',
                                ('memory', str(400 + k)), conn=conn)
                    last[name] = str(400 + k)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append('%s: %s' % (name, e))
            finally:
                conn.close_sync(None)

        threads = [threading.Thread(target=client, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(last), self.CLIENTS, 'not every client was answered')
        # every answered value is in qubes.xml: a crash now loses nothing
        self.d.kill9()
        root = harness.parse_xml_file(self.d.xml_path)
        for n in names:
            self.assertEqual(harness.xml_domain_property(root, n, 'memory'), last[n])
        self.d.start()
        for n in names:
            self.assertEqual(self.d.get_property(n, 'memory')[2], last[n])

    def test_reader_never_sees_a_change_before_its_save(self):
        # a Set sent without waiting, then at once a Get on another connection: whenever the Get
        # sees the new value, qubes.xml already holds it (the group's save runs before any call
        # that does not join it)
        from gi.repository import Gio, GLib
        writer = self.d.connect()
        reader = self.d.connect()
        self.addCleanup(writer.close_sync, None)
        self.addCleanup(reader.close_sync, None)
        seen_new = 0
        for k in range(60):
            value = str(500 + k)
            done = []
            writer.call(harness.BUS_NAME if self.d.route == 'bus' else None, harness.domain_path('work'),
                        harness.DOMAIN_IFACE, 'SetProperty', GLib.Variant('(ss)', ('memory', value)), None,
                        Gio.DBusCallFlags.NONE, 20000, None, lambda c, res: done.append(c.call_finish(res)))
            writer.flush_sync(None)
            got = self.d.call(harness.domain_path('work'), harness.DOMAIN_IFACE, 'GetProperty', 's',
                              ('memory',), conn=reader)[2]
            on_disk = harness.xml_domain_property(harness.parse_xml_file(self.d.xml_path), 'work', 'memory')
            if got == value:
                seen_new += 1
                self.assertEqual(on_disk, value, 'a reader saw memory=%s before it was saved' % value)
            deadline = time.monotonic() + 20
            while not done and time.monotonic() < deadline:
                SignalCollector.pump(0.005)
            self.assertTrue(done, 'SetProperty was not answered')
        sys.stderr.write('the reader saw the new value at once %d times of 60\n' % seen_new)


class TestRemove(DaemonTestCase):
    def test_remove_takes_the_directory_and_announces_the_objects(self):
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'gone', 'red', '', {}))
        qdir = os.path.join(self.d.state_dir, 'appvms', 'gone')
        self.d.domain('gone', 'SetNotes', 's', ('some notes',))
        self.assertTrue(os.path.isdir(qdir))
        om = SignalCollector(self.d.conn, interface='org.freedesktop.DBus.ObjectManager')
        self.addCleanup(om.close)
        self.d.domain('gone', 'Remove')
        self.assertFalse(os.path.exists(qdir), 'Remove left %s: %s' % (qdir, os.listdir(qdir) if
                                                                     os.path.isdir(qdir) else ''))
        # announced after the save, with the interfaces the objects had
        path = harness.domain_path('gone')
        self.assertTrue(om.wait_for(lambda s: any(x[2] == 'InterfacesRemoved' and x[3][0] == path for x in s)))
        ifaces = [x[3][1] for x in om.signals if x[2] == 'InterfacesRemoved' and x[3][0] == path][0]
        self.assertIn(harness.DOMAIN_IFACE, ifaces)
        vols = [x[3][1] for x in om.signals if x[2] == 'InterfacesRemoved' and x[3][0].startswith(path + '/volume/')]
        self.assertTrue(vols and all(harness.IFACE + '.Volume' in v for v in vols), vols)


class TestLeftovers(DaemonTestCase):
    def test_what_a_remove_could_not_delete_goes_at_the_next_start(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest('chattr +i needs root')
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'stuck', 'red', '', {}))
        qdir = os.path.join(self.d.state_dir, 'appvms', 'stuck')
        stuck = os.path.join(qdir, 'private.img')
        if subprocess.run(['chattr', '+i', stuck], stderr=subprocess.DEVNULL).returncode != 0:
            raise unittest.SkipTest('chattr +i does not work here')
        self.addCleanup(subprocess.run, ['chattr', '-i', stuck], stderr=subprocess.DEVNULL)
        # the qube goes (qubes.xml without it is durable); its data could not
        self.d.domain('stuck', 'Remove')
        names = {row[0] for row in self.d.manager('ListDomains', reply_type='(a(sssso))')[0]}
        self.assertNotIn('stuck', names)
        self.assertTrue(os.path.exists(stuck))
        with open(os.path.join(self.d.state_dir, 'removed-qubes.leftovers')) as f:
            self.assertEqual(f.read(), 'stuck\n')
        self.assertIn('stuck', self.d.log_tail())
        # once it can be deleted, the next start does it
        subprocess.run(['chattr', '-i', stuck], check=True)
        self.d.restart()
        self.d.manager('ListDomains')  # answered once start-up (which cleans up) is over
        self.assertFalse(os.path.exists(qdir), 'the leftovers of a removed qube are still there')
        self.assertFalse(os.path.exists(os.path.join(self.d.state_dir, 'removed-qubes.leftovers')), self.d.log_tail())


@harness.over_each_route
class TestStringBounds(DaemonTestCase):
    def test_one_megabyte_refused(self):
        before = self.d.xml_bytes()
        self.assertDBusError(VALUE_ERROR, self.d.set_property, 'work', 'default_user', 'u' * (1 << 20),
                             message='too long')
        self.assertDBusError(VALUE_ERROR, self.d.call, harness.ROOT_PATH, harness.MANAGER_IFACE, 'SetProperty',
                             'ss', ('default_kernel', 'k' * (1 << 20)), message='too long')
        self.assertEqual(self.d.xml_bytes(), before, 'a refused value changed qubes.xml')
        self.assertEqual(self.d.get_property('work', 'default_user')[2], 'user')
        # the bound itself is allowed
        self.d.set_property('work', 'default_user', 'u' * 1024)
        self.assertDBusError(VALUE_ERROR, self.d.set_property, 'work', 'default_user', 'u' * 1025)


class TestStringBoundsQvm(DaemonTestCase):
    def setUp(self):
        from test_devices import find_qvm
        import test_shim
        self.qvm_path = find_qvm()
        super().setUp()
        self.door = test_shim.SocketDoor(test_shim.find_shim(), self.d)
        self.addCleanup(self.door.stop)

    def test_qvm_prefs_refuses_a_long_value(self):
        before = self.d.xml_bytes()
        # 1 MB cannot be one argument on Linux (MAX_ARG_STRLEN is 128 KiB) nor one request to the
        # shim (64 KiB at most): 60,000 bytes, far above the bound, is what qvm-prefs can send
        env = dict(os.environ, QUBESD_SOCKET=self.door.path)
        r = subprocess.run(['/usr/bin/python3', self.qvm_path, 'qvm-prefs', 'work', 'default_user', 'u' * 60000],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('too long', r.stderr)
        self.assertEqual(self.d.xml_bytes(), before)
        r = subprocess.run(['/usr/bin/python3', self.qvm_path, 'qvm-prefs', 'work', 'default_user'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
        self.assertEqual(r.stdout.strip(), 'user')


class TestStartUp(unittest.TestCase):
    def run_qubesd(self, d, timeout=20):
        r = subprocess.run(d.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env=dict(os.environ, **d.env))
        return r.returncode, r.stdout.decode(errors='replace')

    def test_missing_qubes_xml_without_init(self):
        d = harness.Daemon(None)
        self.addCleanup(d.cleanup)
        d.init = False
        d.start_bus()
        rc, out = self.run_qubesd(d)
        self.assertNotEqual(rc, 0)
        self.assertIn('qubes.xml does not exist', out)
        self.assertIn('--init', out)
        self.assertEqual(os.listdir(d.state_dir), [], 'qubesd wrote into the state directory')
        # a state directory that is not there (not mounted) is not created either
        os.rmdir(d.state_dir)
        rc, out = self.run_qubesd(d)
        self.assertNotEqual(rc, 0)
        self.assertFalse(os.path.exists(d.state_dir), 'qubesd created the state directory')

    def test_init_creates_a_new_system(self):
        d = harness.Daemon(None)
        self.addCleanup(d.cleanup)
        d.start()
        names = {row[0] for row in d.manager('ListDomains', reply_type='(a(sssso))')[0]}
        self.assertEqual(names, {'dom0'})
        self.assertTrue(os.path.exists(d.xml_path))
        d.stop()

    def refused_with_line(self, xml, expect):
        d = harness.Daemon(None)
        self.addCleanup(d.cleanup)
        with open(d.xml_path, 'w', encoding='utf-8') as f:
            f.write(xml)
        d.start_bus()
        rc, out = self.run_qubesd(d)
        self.assertNotEqual(rc, 0)
        self.assertRegex(out, expect)

    def test_bad_tag_and_duplicate_feature(self):
        with open(harness.DEMO_XML, encoding='utf-8') as f:
            text = f.read()
        lines = text.split('\n')
        i = next(k for k, line in enumerate(lines) if '<features>' in line)
        bad_tag = '\n'.join(lines[:i] + ['      <tags><tag name="../x y"/></tags>'] + lines[i:])
        self.refused_with_line(bad_tag, r"qubes\.xml:%d: invalid tag '\.\./x y'" % (i + 1))
        dup = '\n'.join(lines[:i + 1] + ['        <feature name="dup">1</feature>',
                                         '        <feature name="dup">2</feature>'] + lines[i + 1:])
        self.refused_with_line(dup, r"qubes\.xml:%d: duplicate feature 'dup'" % (i + 3))


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
