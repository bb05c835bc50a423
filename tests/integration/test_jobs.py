#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Jobs: a volume import is a Job (org.qubes_os.Admin1.Job) that a client can follow and cancel,
and long data copies never take the workers that libvirt calls need (qubesd runs at most two
copies at once; the rest wait their turn)."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, ROOT_PATH, bus_path_escape  # noqa: E402

from gi.repository import Gio, GLib  # noqa: E402

P = 'org.qubes_os.Admin1.'
VOLUME_IFACE = P + 'Volume'
JOB_IFACE = P + 'Job'
E = P + 'Error.'
MiB = 1 << 20
JOB_PREFIX = ROOT_PATH + '/job/'


def volume_path(qube, volume):
    return ROOT_PATH + '/domain/' + bus_path_escape(qube) + '/volume/' + bus_path_escape(volume)


class PendingImport:
    """ImportWithSize sent without waiting for its reply; data goes into .wfd."""

    def __init__(self, conn, qube, volume, size):
        rfd, self.wfd = os.pipe()
        fds = Gio.UnixFDList.new()
        idx = fds.append(rfd)
        msg = Gio.DBusMessage.new_method_call(harness.BUS_NAME, volume_path(qube, volume), VOLUME_IFACE,
                                              'ImportWithSize')
        msg.set_body(GLib.Variant('(hs)', (idx, str(size))))
        msg.set_unix_fd_list(fds)
        os.close(rfd)
        self.reply = None
        conn.send_message_with_reply(msg, Gio.DBusSendMessageFlags.NONE, 120000, None, self._done)

    def _done(self, conn, res):
        self.reply = conn.send_message_with_reply_finish(res)

    def close(self):
        if self.wfd is not None:
            os.close(self.wfd)
            self.wfd = None

    def error(self):
        if self.reply is None or self.reply.get_message_type() != Gio.DBusMessageType.ERROR:
            return None
        body = self.reply.get_body()
        return self.reply.get_error_name(), body.unpack()[0] if body is not None else ''


class TestJobs(DaemonTestCase):
    QUBES_XML = harness.DEMO_XML

    def setUp(self):
        super().setUp()
        self.added = harness.SignalCollector(self.d.conn, interface='org.freedesktop.DBus.ObjectManager',
                                             member='InterfacesAdded', path=ROOT_PATH)
        self.addCleanup(self.added.close)
        self.imports = []
        self.addCleanup(self.close_imports)

    def close_imports(self):
        for i in self.imports:
            i.close()

    def start_import(self, qube, volume, size):
        i = PendingImport(self.d.conn, qube, volume, size)
        self.imports.append(i)
        return i

    def job_paths(self):
        return [s[3][0] for s in self.added.signals if s[3][0].startswith(JOB_PREFIX)]

    def wait_jobs(self, n):
        self.assertTrue(self.added.wait_for(lambda s: len(self.job_paths()) >= n, timeout=10),
                        'expected %d jobs, saw %s' % (n, self.job_paths()))
        return self.job_paths()

    def job(self, path, prop):
        return self.d.dbus_get(path, JOB_IFACE, prop)

    def wait(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            harness.SignalCollector.pump(0.02)
            if predicate():
                return True
        return predicate()

    def test_import_is_a_job_that_can_be_cancelled(self):
        size_before = self.d.dbus_get(volume_path('work', 'private'), VOLUME_IFACE, 'Size')
        imp = self.start_import('work', 'private', 8 * MiB)
        path = self.wait_jobs(1)[0]
        props = self.d.dbus_get_all(path, JOB_IFACE)
        self.assertEqual(props['Operation'], 'ImportWithSize')
        self.assertEqual(props['Caller'], 'dom0')
        self.assertEqual(props['Qubes'], ['work'])
        self.assertEqual(props['BytesTotal'], 8 * MiB)
        self.assertTrue(props['Cancelable'])
        self.assertEqual(props['State'], 'running')
        self.assertTrue(self.d.dbus_get(volume_path('work', 'private'), VOLUME_IFACE, 'ImportInProgress'))

        # progress: bytes, announced as PropertiesChanged on the job
        changed = harness.SignalCollector(self.d.conn, interface='org.freedesktop.DBus.Properties',
                                          member='PropertiesChanged', path=path)
        self.addCleanup(changed.close)
        feeder = threading.Thread(target=os.write, args=(imp.wfd, b'\1' * MiB))
        feeder.start()
        self.assertTrue(changed.wait_for(lambda s: any(x[3][1].get('BytesDone', 0) >= MiB for x in s)),
                        'no PropertiesChanged(BytesDone) on the job')
        feeder.join()
        self.assertAlmostEqual(self.job(path, 'Progress'), 1 / 8)

        finished = harness.SignalCollector(self.d.conn, interface=JOB_IFACE, member='Finished', path=path)
        self.addCleanup(finished.close)
        self.d.call(path, JOB_IFACE, 'Cancel')
        self.assertTrue(self.wait(lambda: imp.reply is not None), 'the cancelled import was not answered')
        name, message = imp.error()
        self.assertEqual(name, E + 'QubesException')
        self.assertIn('cancelled', message)
        self.assertTrue(finished.wait_for(lambda s: len(s) == 1))
        state, failures = finished.signals[0][3]
        self.assertEqual(state, 'failed')
        self.assertEqual([(q, n) for q, n, _ in failures], [('work', E + 'QubesException')])
        self.assertEqual(self.job(path, 'State'), 'failed')
        self.assertDBusError(E + 'QubesException', self.d.call, path, JOB_IFACE, 'Cancel', message='has finished')
        # the volume is as it was
        self.assertEqual(self.d.dbus_get(volume_path('work', 'private'), VOLUME_IFACE, 'Size'), size_before)
        self.assertFalse(self.d.dbus_get(volume_path('work', 'private'), VOLUME_IFACE, 'ImportInProgress'))

    def test_lifecycle_jobs_cannot_be_cancelled(self):
        path = self.d.manager('StartQubes', 'as', (['sys-net'],))[0]
        self.assertEqual(self.job(path, 'Caller'), 'dom0')
        self.assertFalse(self.job(path, 'Cancelable'))
        self.assertEqual(self.job(path, 'BytesTotal'), 0)
        self.assertTrue(self.wait(lambda: self.job(path, 'State') != 'running'))
        self.assertEqual(self.job(path, 'State'), 'succeeded')
        self.assertDBusError(E + 'QubesNotImplementedError', self.d.call, path, JOB_IFACE, 'Cancel')

    def test_data_copies_leave_room_for_libvirt(self):
        # six imports that wait for data: more than there are worker threads
        for name in ('ja', 'jb', 'jc'):
            self.d.manager('CreateDomain', 'ssssa{ss}', ('StandaloneVM', name, 'red', '', {}))
        for name in ('ja', 'jb', 'jc'):
            for volume in ('root', 'private'):
                self.start_import(name, volume, MiB)
        paths = self.wait_jobs(6)
        for i in self.imports:
            os.write(i.wfd, b'\1' * 65536)  # fits in the pipe: never blocks

        def running():
            return sum(1 for p in paths if self.job(p, 'BytesDone') > 0)
        self.assertTrue(self.wait(lambda: running() == 2), 'expected two copies at work, saw %d' % running())
        harness.SignalCollector.pump(0.5)
        self.assertEqual(running(), 2, 'at most two copies run at once; the others wait their turn')

        # libvirt calls still have their workers: a start (with its netvm chain) goes through
        t0 = time.monotonic()
        self.d.domain('work', 'Start')
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(self.d.dbus_get(harness.domain_path('work'), P + 'Domain', 'PowerState'), 'Running')

        # the data ends short: every import fails, the waiting ones when their turn comes
        self.close_imports()
        self.assertTrue(self.wait(lambda: all(i.reply is not None for i in self.imports), timeout=30),
                        'not every import was answered')
        for i in self.imports:
            self.assertEqual(i.error()[0], E + 'QubesException')
            self.assertIn('not enough data', i.error()[1])
        self.assertTrue(self.wait(lambda: all(self.job(p, 'State') == 'failed' for p in paths)))


if __name__ == '__main__':
    harness.main()
