#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Preloaded disposables (spec/console-preload.md §4) on libvirt's test driver: preload-dispvm-max
on a disposable template fills it with started-then-paused disposables (internal, listed in
preload-dispvm); CreateDisposable hands one out at once and another is preloaded; the checks
before the features are set; dom0's global maximum; outdated and excess ones discarded; an
unpause by someone else uses one; CreateDisposable+preload through the shim's socket door.
"""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, SignalCollector, domain_path, ERROR_PREFIX as E  # noqa: E402

TPL = 'default-dvm'  # a disposable template of the demo, its TemplateVM is debian-12-xfce
SUPPORT = (('qrexec', '1'), ('supported-rpc.qubes.WaitForRunningSystem', '1'),
           ('supported-rpc.qubes.WaitForSession', '1'))


class TestPreload(DaemonTestCase):
    QUBES_XML = harness.DEMO_XML

    def setUp(self):
        super().setUp()
        self.events = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(self.events.close)
        deadline = time.monotonic() + 10
        while 'Connected to libvirt' not in self.d.log_tail(200):
            self.assertLess(time.monotonic(), deadline, 'qubesd did not connect to libvirt')
            time.sleep(0.01)
        for k, v in SUPPORT:
            self.d.domain('debian-12-xfce', 'SetFeature', 'ss', (k, v))
        # refill at once after a hand-out (the default waits 3 s)
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-delay', '0'))

    # --- helpers ------------------------------------------------------------------------------

    def feature(self, qube, name):
        try:
            return self.d.domain(qube, 'GetFeature', 's', (name,))[0]
        except harness.DBusError as e:
            if e.name != E + 'QubesFeatureNotFoundError':
                raise
            return None

    def preloads(self):
        v = self.feature(TPL, 'preload-dispvm')
        return v.split() if v else []

    def state(self, qube):
        return self.d.dbus_get(domain_path(qube), harness.DOMAIN_IFACE, 'PowerState')

    def qubes(self):
        return {r[0] for r in self.d.manager('ListDomains')[0]}

    def wait_for(self, what, predicate, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            self.events.pump(0.02)
            value = predicate()
            if value:
                return value
            self.assertLess(time.monotonic(), deadline, 'timed out waiting for ' + what)

    def ready(self, n):
        """n preloads, every one paused and completed."""
        def check():
            names = self.preloads()
            if len(names) != n:
                return None
            for q in names:
                if q not in self.qubes() or self.state(q) != 'Paused' \
                        or self.feature(q, 'preload-dispvm-completed') != '1':
                    return None
            return (names,)
        return self.wait_for('%d paused preloaded disposables' % n, check)[0]

    def taken(self, subject=None, name=None):
        out = [(s[3][1], s[3][2], dict(s[3][3])) for s in self.events.signals if s[2] == 'Event']
        return [e for e in out if (subject is None or e[0] == subject) and (name is None or e[1] == name)]

    # --- tests --------------------------------------------------------------------------------

    def test_fill_and_hand_out(self):
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '2'))
        names = self.ready(2)
        start = self.taken(TPL, 'domain-preload-dispvm-start')
        self.assertEqual(start[0][2], {'reason': "local feature was set to '2'"})
        for q in names:
            self.assertEqual(self.feature(q, 'internal'), '1')
            self.assertEqual(self.feature(q, 'preload-dispvm-in-progress'), '')
            self.assertEqual(self.d.get_property(q, 'is_preload')[2], 'True')
            self.assertEqual(self.d.get_property(q, 'auto_cleanup')[2], 'True')
            self.assertEqual(self.d.get_property(q, 'template')[2], TPL)
            seq = self.wait_for('the events of ' + q,
                                lambda: 'domain-paused' in [n for _, n, _ in self.taken(q)] and
                                [n for _, n, _ in self.taken(q)])
            self.assertLess(seq.index('domain-start'), seq.index('domain-paused'), seq)

        self.events.signals.clear()
        t0 = time.monotonic()
        got, path = self.d.manager('CreateDisposable', 's', (TPL,))
        handed = time.monotonic() - t0
        self.assertEqual(got, names[0], 'the first preloaded disposable is handed out')
        self.assertEqual(path, domain_path(got))
        self.assertEqual(self.state(got), 'Running')
        self.assertIsNone(self.feature(got, 'internal'))
        self.assertIsNone(self.feature(got, 'preload-dispvm-in-progress'))
        self.assertEqual(self.d.get_property(got, 'is_preload')[2], 'False')
        tags = self.d.domain(got, 'ListTags')[0]
        self.assertIn('created-by-dom0', tags)
        self.assertIn('disp-created-by-dom0', tags)
        self.assertNotIn(got, self.preloads())
        used = self.wait_for('domain-preload-dispvm-used', lambda: self.taken(TPL, 'domain-preload-dispvm-used'))
        self.assertEqual(used[0][2], {'dispvm': got, 'delay': '0'})
        self.assertIn('domain-unpaused', [n for _, n, _ in self.taken(got)])
        sys.stderr.write('\nCreateDisposable with a preload ready: %.1f ms\n' % (handed * 1000))

        # another one comes to take its place
        again = self.ready(2)
        self.assertEqual(again[0], names[1])
        self.assertNotIn(got, again)
        # qubes.xml knows them
        xml = self.d.xml_bytes().decode()
        self.assertIn('<feature name="preload-dispvm">%s</feature>' % ' '.join(again), xml)

        # the used one is an ordinary disposable: it goes when it stops
        self.d.domain(got, 'Kill')
        self.wait_for('the used disposable removed', lambda: got not in self.qubes())

    def test_checks_before_set(self):
        before = self.d.xml_bytes()
        # personal is no disposable template and its template announces nothing: the checks
        # look at the qube (and its templates)
        self.d.domain('debian-12-xfce', 'RemoveFeature', 's', ('qrexec',))
        self.assertDBusError(E + 'QubesValueError', self.d.domain, TPL, 'SetFeature', 'ss',
                             ('preload-dispvm-max', '1'), message=r'^Qube does not support qrexec$')
        self.d.domain('debian-12-xfce', 'SetFeature', 'ss', ('qrexec', '1'))
        self.d.domain('debian-12-xfce', 'RemoveFeature', 's', ('supported-rpc.qubes.WaitForSession',))
        self.d.domain('debian-12-xfce', 'RemoveFeature', 's', ('supported-rpc.qubes.WaitForRunningSystem',))
        self.assertDBusError(E + 'QubesValueError', self.d.domain, TPL, 'SetFeature', 'ss',
                             ('preload-dispvm-max', '1'),
                             message=r"^Qube does not support the RPC\(s\) "
                                     r"'qubes.WaitForRunningSystem, qubes.WaitForSession'$")
        for k, v in SUPPORT:
            self.d.domain('debian-12-xfce', 'SetFeature', 'ss', (k, v))
        for bad in ('x', '-1', '1.5', ' 1'):
            self.assertDBusError(E + 'QubesValueError', self.d.domain, TPL, 'SetFeature', 'ss',
                                 ('preload-dispvm-max', bad),
                                 message=r'^Invalid preload-dispvm-max value: not a digit$')
        # the list is qubesd's: no caller may change it (upstream's AdminExtension)
        self.assertDBusError(E + 'PermissionDenied', self.d.domain, TPL, 'SetFeature', 'ss',
                             ('preload-dispvm', 'work personal'),
                             message=r'^changing this feature is prohibited by qubes.ext.admin.AdminExtension$')
        self.assertDBusError(E + 'QubesValueError', self.d.domain, TPL, 'SetFeature', 'ss',
                             ('preload-dispvm-delay', 'soon'),
                             message=r'^Invalid preload-dispvm-delay value: not an integer or float$')
        self.assertDBusError(E + 'QubesValueError', self.d.domain, 'dom0', 'SetFeature', 'ss',
                             ('preload-dispvm-threshold', '1k'),
                             message=r'^Invalid preload-dispvm-threshold value: not a digit$')
        # the support features were set and removed again: everything else is as it was
        after = self.d.xml_bytes()
        self.assertNotIn(b'"preload-dispvm-max"', after)
        self.assertNotIn(b'"preload-dispvm"', after)
        self.assertEqual(before.count(b'<domain '), after.count(b'<domain '))
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '1'))
        self.ready(1)

    def test_lower_max_and_delete(self):
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '3'))
        names = self.ready(3)
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '1'))
        kept = self.ready(1)
        self.assertEqual(kept, names[:1], 'the last ones go')
        for q in names[1:]:
            self.wait_for('%s removed' % q, lambda q=q: q not in self.qubes())
        self.d.domain(TPL, 'RemoveFeature', 's', ('preload-dispvm-max',))
        self.ready(0)
        self.wait_for('%s removed' % names[0], lambda: names[0] not in self.qubes())

    def test_global_maximum(self):
        # dom0's preload-dispvm-max is for the global default_dispvm (default-dvm in the demo),
        # even 0, over the template's own
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '2'))
        self.ready(2)
        self.events.signals.clear()
        self.d.domain('dom0', 'SetFeature', 'ss', ('preload-dispvm-max', '1'))
        self.ready(1)
        start = self.wait_for('domain-preload-dispvm-start', lambda: self.taken(TPL, 'domain-preload-dispvm-start'))
        self.assertEqual(start[0][2], {'reason': "global feature was set to '1'"})
        self.d.domain('dom0', 'SetFeature', 'ss', ('preload-dispvm-max', '0'))
        self.ready(0)
        # the local value no longer decides while dom0's applies
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '3'))
        self.events.pump(0.3)
        self.assertEqual(self.preloads(), [])
        # default_dispvm elsewhere: the template's own maximum again
        self.d.manager('SetProperty', 'ss', ('default_dispvm', ''))
        self.ready(3)

    def test_outdated_discarded(self):
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '1'))
        old = self.ready(1)[0]
        self.assertNotEqual(self.d.get_property(old, 'memory')[2], '512')
        self.d.set_property(TPL, 'memory', '512')
        self.wait_for('the outdated preload replaced', lambda: self.preloads() and self.preloads()[0] != old)
        new = self.ready(1)[0]
        self.assertEqual(self.d.get_property(new, 'memory')[2], '512')
        self.wait_for('%s removed' % old, lambda: old not in self.qubes())

    def test_unpause_uses_it(self):
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '1'))
        q = self.ready(1)[0]
        self.events.signals.clear()
        self.d.domain(q, 'Unpause')
        self.wait_for('%s off the list' % q, lambda: q not in self.preloads())
        self.assertIsNone(self.feature(q, 'internal'))
        used = self.wait_for('domain-preload-dispvm-used', lambda: self.taken(TPL, 'domain-preload-dispvm-used'))
        self.assertEqual(used[0][2], {'dispvm': q, 'delay': '0'})
        self.assertNotEqual(self.ready(1)[0], q)

    def test_create_disposable_preload_through_the_shim(self):
        """admin.vm.CreateDisposable+preload: domain-preload-dispvm-start, the fill, an empty reply
        once the preloaded disposables are ready; a template without support is refused."""
        shim = os.path.join(os.environ.get('QUBES_BUILD_DIR', ''), 'qrexec-shim', 'qubes-admin-shim')
        if not os.access(shim, os.X_OK):
            self.skipTest('needs QUBES_BUILD_DIR with the shim')
        self.d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '2'))
        for q in self.ready(2):
            self.d.domain(q, 'Kill')  # a preload that goes leaves the list; nothing refills at once
        self.ready(0)
        env = self.d.shim_env()
        env.update(QREXEC_REMOTE_DOMAIN='dom0', QREXEC_SERVICE_FULL_NAME='admin.vm.CreateDisposable+preload',
                   QREXEC_REQUESTED_TARGET_TYPE='name', QREXEC_REQUESTED_TARGET=TPL)
        self.events.signals.clear()
        r = subprocess.run([shim], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=60)
        self.assertEqual(r.stdout, b'0\0')
        self.assertEqual(len(self.preloads()), 2, 'ready when the call answers')
        for q in self.preloads():
            self.assertEqual(self.state(q), 'Paused')
        start = self.wait_for('domain-preload-dispvm-start', lambda: self.taken(TPL, 'domain-preload-dispvm-start'))
        self.assertEqual(start[0][2], {'reason': 'autostart was requested'})
        # no template_for_dispvms check on this path (as upstream), only the support one
        self.d.domain('work', 'SetFeature', 'ss', ('qrexec', ''))
        env['QREXEC_REQUESTED_TARGET'] = 'work'
        r = subprocess.run([shim], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=60)
        self.assertEqual(r.stdout, b'2\0QubesValueError\0\0Qube does not support qrexec\0')


if __name__ == '__main__':
    harness.main()
