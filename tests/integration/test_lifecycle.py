#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Qube lifecycle on libvirt's test driver (test:///default, in qubesd's own process): Start,
Shutdown, Kill, Pause, Unpause, Suspend, Resume, Restart with upstream's event sequences and
exceptions (spec/admin-api.md 2.2, 3.1, 4.2), PowerState and GetCurrentState, disposables,
Jobs, the Stats signal, and the loop staying responsive while many qubes start at once.

Every test runs twice (harness.over_each_route): the calls through the bus (TestLifecycle_bus)
and over qubesd's private socket (TestLifecycle_private), where the shim makes them in the
installed topology; the signals are watched on the bus either way."""

import os
import statistics
import sys
import time
import unittest

from gi.repository import Gio, GLib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, SignalCollector, domain_path  # noqa: E402

E = harness.ERROR_PREFIX
JOB_IFACE = 'org.qubes_os.Admin1.Job'

START_SEQUENCE = [
    ('domain-pre-start', [('start_guid', 'True'), ('mem_required', 'None')]),
    ('domain-pre-spawn', [('start_guid', 'True')]),
    ('property-reset:xid', [('name', 'xid')]),
    ('property-reset:stubdom_xid', [('name', 'stubdom_xid')]),
    ('property-reset:start_time', [('name', 'start_time')]),
    ('domain-spawn', [('start_guid', 'True')]),
    ('domain-start', [('start_guid', 'True')]),
]
STOP_SEQUENCE = [
    ('domain-stopped', []),
    ('property-reset:xid', [('name', 'xid')]),
    ('property-reset:stubdom_xid', [('name', 'stubdom_xid')]),
    ('property-reset:start_time', [('name', 'start_time')]),
    ('domain-shutdown', []),
]


@harness.over_each_route
class TestLifecycle(DaemonTestCase):
    QUBES_XML = harness.DEMO_XML  # sys-net <- sys-firewall <- work, default-dvm (disposable template)

    def setUp(self):
        super().setUp()
        self.events = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(self.events.close)
        self.wait_connected()

    def wait_connected(self):
        # the libvirt connection opens in a worker after the name is owned
        deadline = time.monotonic() + 10
        while 'Connected to libvirt' not in self.d.log_tail(200):
            if time.monotonic() > deadline:
                self.fail('qubesd did not connect to libvirt:\n' + self.d.log_tail())
            time.sleep(0.01)

    def take(self, qube=None):
        """The Event signals so far as (subject, name, args), then forget them."""
        self.events.pump(0.05)
        out = [(s[3][1], s[3][2], list(s[3][3])) for s in self.events.signals if s[2] == 'Event']
        self.events.signals.clear()
        # dom0's device events follow the host (a loop device another test or program makes or
        # removes), not these tests
        out = [e for e in out if not (e[0] == 'dom0' and e[1].startswith('device-'))]
        if qube is not None:
            out = [e for e in out if e[0] == qube]
        return out

    def state(self, qube):
        return self.d.dbus_get(domain_path(qube), harness.DOMAIN_IFACE, 'PowerState')

    def test_start_shutdown_sequence(self):
        self.d.domain('personal', 'Start')
        # the reply comes after domain-start: the whole sequence is there already
        ev = self.take('personal')
        self.assertEqual([(n, a) for _, n, a in ev], START_SEQUENCE)
        self.assertEqual(self.state('personal'), 'Running')
        ls = {r[0]: r[2] for r in self.d.manager('ListDomains')[0]}
        self.assertEqual(ls['personal'], 'Running')
        xid = self.d.get_property('personal', 'xid')
        self.assertEqual(xid[0], 'int')
        self.assertGreater(int(xid[2]), 0, 'xid while running: %r' % (xid,))
        self.assertGreater(float(self.d.get_property('personal', 'start_time')[2]), 1e9)
        mem, mem_max, cputime, ps = self.d.domain('personal', 'GetCurrentState')
        self.assertEqual(ps, 'Running')
        memory = int(self.d.get_property('personal', 'memory')[2])
        self.assertEqual(mem, memory * 1024, 'memory (KiB) of a running qube')
        self.assertGreaterEqual(mem_max, mem)

        # Start of a running qube does nothing, as upstream
        self.d.domain('personal', 'Start')
        self.assertEqual(self.take('personal'), [])

        self.d.domain('personal', 'Shutdown', 'bb', (False, True))
        ev = self.take('personal')
        self.assertEqual([(n, a) for _, n, a in ev], [('domain-pre-shutdown', [('force', 'False')])] + STOP_SEQUENCE)
        self.assertEqual(self.state('personal'), 'Halted')
        self.assertEqual(self.d.get_property('personal', 'xid')[2], '-1')
        self.assertEqual(self.d.domain('personal', 'GetCurrentState'), (0, 0, 0, 'Halted'))

    def test_netvm_chain_first(self):
        self.d.domain('work', 'Start')
        ev = self.take()
        starts = [s for s, n, _ in ev if n == 'domain-start']
        self.assertEqual(starts, ['sys-net', 'sys-firewall', 'work'], 'netvm chain starts first')
        pre = [s for s, n, _ in ev if n == 'domain-pre-start']
        self.assertEqual(pre, ['work', 'sys-firewall', 'sys-net'], 'domain-pre-start is fired before the netvm starts')
        for q in ('sys-net', 'sys-firewall', 'work'):
            self.assertEqual(self.state(q), 'Running')

    def test_netvm_in_use(self):
        """Upstream refuses to shut down a netvm while qubes that use it run (paused ones too),
        unless forced: QubesVMInUseError naming them, domain-shutdown-failed, the qube stays up."""
        self.d.domain('work', 'Start')
        self.d.set_property('personal', 'netvm', 'sys-firewall')
        self.d.domain('personal', 'Start')
        self.d.domain('personal', 'Pause')
        self.take()
        msg = r'^There are other VMs connected to this VM: personal, work$'
        self.assertDBusError(E + 'QubesVMInUseError', self.d.domain, 'sys-firewall', 'Shutdown', 'bb',
                             (False, True), message=msg)
        self.assertEqual([(n, a) for _, n, a in self.take('sys-firewall')],
                         [('domain-pre-shutdown', [('force', 'False')]),
                          ('domain-shutdown-failed', [('reason', 'There are other VMs connected to this VM: '
                                                                 'personal, work')])])
        self.assertEqual(self.state('sys-firewall'), 'Running')
        # sys-net's client (sys-firewall) runs too; Restart goes through the same check
        self.assertDBusError(E + 'QubesVMInUseError', self.d.domain, 'sys-net', 'Restart',
                             message=r'^There are other VMs connected to this VM: sys-firewall$')
        self.d.domain('work', 'Kill')
        self.d.domain('personal', 'Kill')
        self.d.domain('sys-firewall', 'Shutdown', 'bb', (False, True))
        self.assertEqual(self.state('sys-firewall'), 'Halted')
        # force: down even with a client running
        self.d.domain('work', 'Start')
        self.d.domain('sys-firewall', 'Shutdown', 'bb', (True, True))
        self.assertEqual(self.state('sys-firewall'), 'Halted')
        self.assertEqual(self.state('work'), 'Running')

    def test_pause_unpause_kill(self):
        self.d.domain('personal', 'Start')
        self.take()
        self.d.domain('personal', 'Pause')
        self.assertEqual([n for _, n, _ in self.take('personal')], ['domain-pre-paused', 'domain-paused'])
        self.assertEqual(self.state('personal'), 'Paused')
        self.assertDBusError(E + 'QubesVMNotPausedError', self.d.domain, 'work', 'Unpause',
                             message=r"^Domain is not paused: 'work'$")
        self.d.domain('personal', 'Unpause')
        self.assertEqual([n for _, n, _ in self.take('personal')], ['domain-pre-unpaused', 'domain-unpaused'])
        self.assertEqual(self.state('personal'), 'Running')
        self.assertDBusError(E + 'QubesVMNotPausedError', self.d.domain, 'personal', 'Unpause',
                             message=r"^Domain is not paused: 'personal'$")

        self.d.domain('personal', 'Kill')
        self.assertEqual([(n, a) for _, n, a in self.take('personal')], STOP_SEQUENCE)
        self.assertEqual(self.state('personal'), 'Halted')

    def test_the_log_tells_each_qubes_story(self):
        # what `journalctl -u qubesd QUBES_VM=…` shows (the QUBES_VM field itself: test-log)
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'diary', 'red', 'debian-12-xfce', {}))
        self.d.set_property('diary', 'netvm', '')
        self.d.domain('diary', 'Start')
        self.d.domain('diary', 'Pause')
        self.d.domain('diary', 'Unpause')
        self.d.domain('diary', 'Shutdown', 'bb', (False, True))
        self.d.domain('diary', 'Start')
        self.d.domain('diary', 'Kill')
        self.d.domain('diary', 'Remove')
        lines = [line for line in self.d.log_tail(400).splitlines() if 'diary' in line]
        self.assertEqual(lines, [
            'Created AppVM diary from debian-12-xfce.',
            'Starting diary.', 'diary is running.',
            'diary is paused.', 'diary is running again.',
            'Shutting down diary.', 'diary has halted.',
            'Starting diary.', 'diary is running.',
            'Killing diary.', 'diary has halted.',
            'Removed diary.',
        ])

    def test_listing_text_follows_the_qubes(self):
        """ListDomainsText (admin.vm.List's payload, kept between calls) is current after a start,
        a pause, a kill, a new qube and a removal."""
        def expected():
            return ''.join('%s class=%s state=%s uuid=%s\n' % row[:4] for row in self.d.manager('ListDomains')[0])

        def text():
            return bytes(self.d.manager('ListDomainsText')[0]).decode()

        self.assertEqual(text(), expected())
        self.assertIn('\npersonal class=AppVM state=Halted ', text())
        self.d.domain('personal', 'Start')
        self.assertIn('\npersonal class=AppVM state=Running ', text())
        self.d.domain('personal', 'Pause')
        self.assertIn('\npersonal class=AppVM state=Paused ', text())
        self.d.domain('personal', 'Kill')
        self.assertIn('\npersonal class=AppVM state=Halted ', text())
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'listed', 'red', '', {}))
        self.assertIn('\nlisted class=AppVM state=Halted ', text())
        self.assertEqual(text(), expected())
        self.d.domain('listed', 'Remove')
        self.assertNotIn('listed', text())
        self.assertEqual(text(), expected())

    def test_errors_when_halted(self):
        self.assertDBusError(E + 'QubesVMNotStartedError', self.d.domain, 'work', 'Kill',
                             message=r"^Domain is powered off: 'work'$")
        self.assertDBusError(E + 'QubesVMNotStartedError', self.d.domain, 'work', 'Shutdown', 'bb', (False, False),
                             message=r"^Domain is powered off: 'work'$")
        self.assertDBusError(E + 'QubesVMNotRunningError', self.d.domain, 'work', 'Pause',
                             message=r"^Domain not running \(either powered off or paused\): 'work'$")
        self.assertDBusError(E + 'QubesVMNotRunningError', self.d.domain, 'work', 'Suspend')
        self.assertDBusError(E + 'QubesVMNotPausedError', self.d.domain, 'work', 'Unpause')
        self.assertDBusError(E + 'QubesVMNotHaltedError', self.d.domain, 'dom0', 'Start',
                             message=r"^Domain is not powered off: 'dom0'$")
        self.assertEqual(self.take(), [], 'refused calls emit no events')

    def test_prohibit_start(self):
        self.d.domain('personal', 'SetFeature', 'ss', ('prohibit-start', 'under forensics'))
        self.take()
        self.assertDBusError(E + 'QubesException', self.d.domain, 'personal', 'Start',
                             message=r'prohibited.*under forensics')
        ev = self.take('personal')
        self.assertEqual([n for _, n, _ in ev], ['domain-start-failed'])
        self.assertIn('under forensics', dict(ev[0][2])['reason'])
        self.assertEqual(self.state('personal'), 'Halted')

    def test_too_many_vcpus(self):
        """Any positive vcpus is accepted, as upstream; a start with more than a qube can have is
        refused at once (the test driver allocated 2^31 vcpus until qubesd was killed for memory:
        found by test_hostile)."""
        self.d.set_property('personal', 'vcpus', '2147483648')
        self.assertDBusError(E + 'QubesException', self.d.domain, 'personal', 'Start',
                             message=r'^Start failed: vcpus is 2147483648, more than a qube can have \(4096\)$')
        self.assertEqual(self.state('personal'), 'Halted')
        self.d.set_property('personal', 'vcpus', '2')
        self.d.domain('personal', 'Start')
        self.assertEqual(self.state('personal'), 'Running')

    def test_start_and_remove_together(self):
        """Remove sent right after Start, while the start brings up the netvm first: both calls
        are answered (the Start waited forever: found by test_hostile)."""
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'racer', 'red', '', {}))
        self.d.set_property('racer', 'netvm', 'sys-firewall')
        loop = GLib.MainLoop()
        results = {}

        def done(conn, res, key):
            try:
                conn.call_finish(res)
                results[key] = 'ok'
            except GLib.Error as e:
                results[key] = Gio.DBusError.get_remote_error(e)
            if len(results) == 2:
                loop.quit()

        for method in ('Start', 'Remove'):
            self.d.call_conn.call(harness.BUS_NAME, domain_path('racer'), harness.DOMAIN_IFACE, method, None, None,
                                  Gio.DBusCallFlags.NONE, 30000, None, done, method)
        GLib.timeout_add_seconds(20, loop.quit)
        loop.run()
        self.assertEqual(sorted(results), ['Remove', 'Start'], 'unanswered: %r' % results)

    def test_power_state_properties_changed(self):
        changes = SignalCollector(self.d.conn, interface='org.freedesktop.DBus.Properties',
                                  member='PropertiesChanged', path=domain_path('personal'))
        self.addCleanup(changes.close)
        self.d.domain('personal', 'Start')
        ok = changes.wait_for(lambda s: any('PowerState' in x[3][1] and x[3][1]['PowerState'] == 'Running'
                                            for x in s))
        self.assertTrue(ok, 'no PropertiesChanged with PowerState=Running: %r' % changes.signals)

    def test_suspend_resume_restart(self):
        self.d.domain('personal', 'Start')
        self.d.domain('personal', 'Suspend')
        self.assertIn(self.state('personal'), ('Suspended', 'Paused'))
        self.d.domain('personal', 'Resume')
        self.assertEqual(self.state('personal'), 'Running')
        self.take()
        xid_before = self.d.get_property('personal', 'xid')[2]
        self.d.domain('personal', 'Restart')
        names = [n for _, n, _ in self.take('personal')]
        self.assertEqual(names[:6], ['domain-pre-shutdown'] + [n for n, _ in STOP_SEQUENCE])
        self.assertEqual(names[6:], [n for n, _ in START_SEQUENCE])
        self.assertEqual(self.state('personal'), 'Running')
        self.assertNotEqual(self.d.get_property('personal', 'xid')[2], xid_before)

    def test_create_disposable(self):
        name, path = self.d.manager('CreateDisposable', 's', ('default-dvm',))
        self.assertRegex(name, r'^disp\d+$')
        self.assertEqual(path, domain_path(name))
        self.assertEqual(self.state(name), 'Running')
        tags = self.d.domain(name, 'ListTags')[0]
        self.assertIn('created-by-dom0', tags)
        self.assertIn('disp-created-by-dom0', tags)
        self.assertEqual(self.d.get_property(name, 'auto_cleanup')[2], 'True')
        self.assertEqual(self.d.get_property(name, 'template')[2], 'default-dvm')
        # it would be removed when it stops: a restart is refused, at once (found by test_hostile)
        self.assertDBusError(E + 'QubesVMError', self.d.domain, name, 'Restart',
                             message=r'^Cannot restart a disposable that is removed when it stops')
        self.assertEqual(self.state(name), 'Running')
        self.take()
        self.d.domain(name, 'Shutdown', 'bb', (False, True))
        # removed after its shutdown
        deadline = time.monotonic() + 5
        while name in [r[0] for r in self.d.manager('ListDomains')[0]]:
            self.assertLess(time.monotonic(), deadline, 'disposable %s not removed after shutdown' % name)
            time.sleep(0.01)
        self.assertDBusError(E + 'QubesException', self.d.manager, 'CreateDisposable', 's', ('work',),
                             message='template_for_dispvms=False')

    def wait_job(self, path, timeout=20):
        deadline = time.monotonic() + timeout
        while self.d.dbus_get(path, JOB_IFACE, 'State') == 'running':
            self.assertLess(time.monotonic(), deadline, 'job %s did not finish' % path)
            time.sleep(0.01)
        return self.d.dbus_get(path, JOB_IFACE, 'State')

    def test_jobs(self):
        finished = SignalCollector(self.d.conn, interface=JOB_IFACE, member='Finished')
        self.addCleanup(finished.close)
        job = self.d.manager('StartQubes', 'as', (['work', 'personal', 'sys-net'],))[0]
        self.assertTrue(job.startswith(harness.ROOT_PATH + '/job/'), job)
        self.assertEqual(self.wait_job(job), 'succeeded')
        self.assertEqual(self.d.dbus_get(job, JOB_IFACE, 'Progress'), 1.0)
        self.assertEqual(self.d.dbus_get(job, JOB_IFACE, 'Operation'), 'StartQubes')
        self.assertEqual(list(self.d.dbus_get(job, JOB_IFACE, 'Qubes')), ['work', 'personal', 'sys-net'])
        self.assertTrue(finished.wait_for(lambda s: any(x[0] == job for x in s)))
        for q in ('work', 'personal', 'sys-net', 'sys-firewall'):
            self.assertEqual(self.state(q), 'Running')
        self.take()

        job = self.d.manager('ShutdownQubes', 'asb', (['sys-net', 'sys-firewall', 'work', 'personal'], False))[0]
        self.assertEqual(self.wait_job(job), 'succeeded')
        ev = self.take()
        order = [s for s, n, _ in ev if n == 'domain-shutdown']
        self.assertLess(order.index('work'), order.index('sys-firewall'), order)
        self.assertLess(order.index('sys-firewall'), order.index('sys-net'), order)
        pre_net = [i for i, (s, n, _) in enumerate(ev) if s == 'sys-net' and n == 'domain-pre-shutdown'][0]
        fw_down = [i for i, (s, n, _) in enumerate(ev) if s == 'sys-firewall' and n == 'domain-shutdown'][0]
        self.assertLess(fw_down, pre_net, 'sys-net was asked to shut down before its client stopped')

        job = self.d.manager('StartQubes', 'as', (['personal'],))[0]
        self.d.domain('personal', 'SetFeature', 'ss', ('prohibit-start', 'no'))
        self.wait_job(job)  # may have succeeded before the feature was set
        self.d.domain('personal', 'Kill')
        job = self.d.manager('StartQubes', 'as', (['personal'],))[0]
        self.assertEqual(self.wait_job(job), 'failed')
        self.assertDBusError(E + 'QubesVMNotFoundError', self.d.manager, 'StartQubes', 'as', (['nonexistent'],))

    def test_stats_signal(self):
        self.d.manager('SetProperty', 'ss', ('stats_interval', '1'))
        stats = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Stats')
        self.addCleanup(stats.close)
        self.d.domain('personal', 'Start')
        self.assertTrue(stats.wait_for(lambda s: any(x[0] == domain_path('personal') for x in s), timeout=8),
                        'no Stats signal within 8 s')
        sig = [x for x in stats.signals if x[0] == domain_path('personal')][0]
        keys = [k for k, _ in sig[3][0]]
        self.assertEqual(keys, ['memory_kb', 'memory_assigned_total', 'memory_assigned_usable',
                                'memory_with_swap_used', 'cpu_time', 'cpu_usage', 'online_vcpus'])
        for k, v in sig[3][0]:
            self.assertRegex(v, r'^\d+$', k)
        self.assertFalse([x for x in stats.signals if x[0] == domain_path('work')], 'Stats for a halted qube')

    def test_stop_while_a_batch_begins(self):
        """StartQubes begins a few qubes per loop iteration: qubesd stopping in the middle ends
        the job (the qubes that had not begun never do) and exits cleanly, nothing leaked (ASan)."""
        names = ['batch-%02d' % i for i in range(60)]
        for n in names:
            self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', n, 'blue', '', {}))
            self.d.set_property(n, 'netvm', '')
        job = self.d.manager('StartQubes', 'as', (names,))[0]
        self.assertTrue(job.startswith(harness.ROOT_PATH + '/job/'), job)
        status = self.d.stop()
        self.assertEqual(status, 0, 'qubesd exited with status %s:\n%s' % (status, self.d.log_tail()))
        self.d.start()
        # nothing runs after a restart of qubesd on the test driver's fresh state
        self.assertEqual(self.state(names[-1]), 'Halted')

    @harness.timing_sensitive
    def test_responsive_while_20_start(self):
        """While 20 qubes start at once (three rounds of StartQubes), another client's
        GetProperty and ListDomains keep answering: libvirt runs in workers, never on the loop."""
        names = ['many-%02d' % i for i in range(20)]
        for n in names:
            self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', n, 'blue', '', {}))
            self.d.set_property(n, 'netvm', '')
        self.events.close()  # this test measures the daemon, not the collector

        # the measuring client: its own connection (by the route), its own thread
        conn = self.d.connect()
        samples = {'get': [], 'list': []}
        window = {'on': False, 'stop': False}

        def measure():
            path = domain_path('many-07')
            while not window['stop']:
                t = time.monotonic()
                conn.call_sync(harness.BUS_NAME, path, harness.DOMAIN_IFACE, 'GetProperty',
                               GLib.Variant('(s)', ('memory',)), None, Gio.DBusCallFlags.NONE, 10000, None)
                t1 = time.monotonic()
                conn.call_sync(harness.BUS_NAME, harness.ROOT_PATH, harness.MANAGER_IFACE, 'ListDomains',
                               None, None, Gio.DBusCallFlags.NONE, 10000, None)
                t2 = time.monotonic()
                if window['on']:
                    samples['get'].append(t1 - t)
                    samples['list'].append(t2 - t1)

        import threading
        th = threading.Thread(target=measure)
        th.start()
        durations = []
        try:
            for _ in range(3):
                t0 = time.monotonic()
                window['on'] = True
                job = self.d.manager('StartQubes', 'as', (names,))[0]
                self.assertEqual(self.wait_job(job), 'succeeded')
                window['on'] = False
                durations.append(time.monotonic() - t0)
                for n in names:
                    self.assertEqual(self.state(n), 'Running')
                job = self.d.manager('ShutdownQubes', 'asb', (names, False))[0]
                self.assertEqual(self.wait_job(job), 'succeeded')
        finally:
            window['stop'] = True
            th.join()
            conn.close_sync(None)
        lat_g = [x * 1000 for x in samples['get']]
        lat_l = [x * 1000 for x in samples['list']]
        if not lat_g:
            self.skipTest('the starts finished before a single measurement')
        sys.stderr.write('\n3 x 20 starts (%s ms); meanwhile %d GetProperty: median %.2f ms, max %.2f ms; '
                         '%d ListDomains (27 qubes): median %.2f ms, max %.2f ms\n'
                         % ('/'.join('%.0f' % (d * 1000) for d in durations), len(lat_g),
                            statistics.median(lat_g), max(lat_g), len(lat_l), statistics.median(lat_l),
                            max(lat_l)))
        # Speed is the benchmark's business (bench/run prints it); on a shared, sanitised CI
        # machine the test asserts only what a user would call frozen.
        self.assertLess(statistics.median(lat_g), 100, 'GetProperty median while starting')
        self.assertLess(statistics.median(lat_l), 100, 'ListDomains median while starting')
        self.assertLess(max(lat_g), 2000, 'GetProperty worst case while starting: the loop was blocked')


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
