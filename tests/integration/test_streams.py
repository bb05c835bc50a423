#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One filter per stream (issue 13): several admin.Events streams of one source qube through the
shim's socket door each receive exactly what the qrexec policy allows for their own destination,
whatever the others ask for and whenever they end; each stream's subscription in qubesd ends
with it (Manager.EventSubscriptions counts them). Also SubscribeEvents/UnsubscribeEvents by a
D-Bus client holding several subscriptions on one connection."""

import os
import shutil
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_shim  # noqa: E402

from harness import GLib  # noqa: E402

MANAGER = 'org.qubes_os.Admin1.Manager'

# test-vm1 may see f1 about itself, f9 about the template, and "end" about both; nothing else
POLICY = """\
admin.Events +domain-feature-set_f1 test-vm1 test-vm1 allow
admin.Events +domain-feature-set_f9 test-vm1 test-template allow
admin.Events +domain-feature-set_end test-vm1 @anyvm allow
"""



def feature_set(qube, feature, value, old):
    kv = [('feature', feature), ('value', value)]
    return (qube, 'domain-feature-set:' + feature, kv + ([('oldvalue', old)] if old else []))


class Stream:
    def __init__(self, door, src, dest):
        self.sock = door.connect()
        self.sock.sendall(b'admin.Events+ %s name %s\x00' % (src.encode(), dest.encode()))
        self.sock.shutdown(socket.SHUT_WR)
        self.reader = test_shim.EventReader(lambda: self.sock.recv(65536))
        assert self.reader.frame() == ('', 'connection-established', [])

    def until(self, last):
        """The frames up to and including last (events of one connection arrive in order, so
        nothing sent before last can come after it)."""
        got = []
        while True:
            f = self.reader.frame()
            if f is None:
                raise AssertionError('stream ended; got %r' % got)
            got.append(f)
            if f == last:
                return got

    def close(self):
        self.sock.close()


@harness.over_each_route
class StreamScopeTests(unittest.TestCase):
    ROUTE = 'bus'

    def setUp(self):
        shim = test_shim.find_shim()
        self.tmp = tempfile.mkdtemp(prefix='qubesd-streams-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        policy_dir = os.path.join(self.tmp, 'policy.d')
        os.makedirs(os.path.join(policy_dir, 'include'))
        with open(os.path.join(policy_dir, '30-test.policy'), 'w') as f:
            f.write(POLICY)
        self.d = harness.Daemon(test_shim.FIXTURE_XML, extra_args=['--policy-dir=' + policy_dir],
                                route=self.ROUTE)
        self.addCleanup(self.d.cleanup)
        self.d.start()
        self.door = test_shim.SocketDoor(shim, self.d)
        self.addCleanup(self.door.stop)

    def subscriptions(self):
        return self.d.dbus_get(harness.ROOT_PATH, MANAGER, 'EventSubscriptions')

    def wait_subscriptions(self, n):
        deadline = time.monotonic() + 10
        while self.subscriptions() != n:
            if time.monotonic() > deadline:
                self.fail('EventSubscriptions is %d, not %d' % (self.subscriptions(), n))
            time.sleep(0.02)

    def fire(self, v):
        # v: '1' the first time, then '2', '3': each event says which value it replaced
        """Events about both qubes, some the policy allows test-vm1 to see and some not; returns
        what each kind of stream must get: (to dom0, to test-vm1, to test-template)."""
        for qube, feature in (('test-vm1', 'f1'), ('test-vm1', 'f2'), ('test-template', 'f9'),
                              ('test-template', 'f1'), ('test-template', 'end'), ('test-vm1', 'end')):
            self.d.domain(qube, 'SetFeature', 'ss', (feature, v))
        old = str(int(v) - 1) if v != '1' else None
        f1, f9 = feature_set('test-vm1', 'f1', v, old), feature_set('test-template', 'f9', v, old)
        end_vm1, end_tpl = feature_set('test-vm1', 'end', v, old), feature_set('test-template', 'end', v, old)
        return [f1, f9, end_tpl, end_vm1], [f1, end_vm1], [f9, end_tpl]

    def test_three_streams_of_one_source(self):
        # the sequence: to dom0, then to the source itself, then to another qube
        a = Stream(self.door, 'test-vm1', 'dom0')
        b = Stream(self.door, 'test-vm1', 'test-vm1')
        c = Stream(self.door, 'test-vm1', 'test-template')
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.addCleanup(c.close)
        self.assertEqual(self.subscriptions(), 3)
        to_a, to_b, to_c = self.fire('1')
        self.assertEqual(a.until(to_a[-1]), to_a, 'the stream to dom0')
        self.assertEqual(b.until(to_b[-1]), to_b, 'the stream to test-vm1')
        self.assertEqual(c.until(to_c[-1]), to_c, 'the stream to test-template')

        # closing one leaves the others as they were, and ends its subscription
        c.close()
        self.wait_subscriptions(2)
        to_a, to_b, _ = self.fire('2')
        self.assertEqual(a.until(to_a[-1]), to_a, 'the stream to dom0 after the third closed')
        self.assertEqual(b.until(to_b[-1]), to_b, 'the stream to test-vm1 after the third closed')

        a.close()
        self.wait_subscriptions(1)
        _, to_b, _ = self.fire('3')
        self.assertEqual(b.until(to_b[-1]), to_b, 'the stream to test-vm1 alone')
        b.close()
        self.wait_subscriptions(0)

    def test_stream_closed_at_once(self):
        # a stream that goes before its subscription is confirmed leaves none behind
        for _ in range(20):
            s = self.door.connect()
            s.sendall(b'admin.Events+ test-vm1 name test-template\x00')
            s.shutdown(socket.SHUT_WR)
            s.close()
        keep = Stream(self.door, 'test-vm1', 'test-vm1')
        self.addCleanup(keep.close)
        self.wait_subscriptions(1)
        _, to_b, _ = self.fire('1')
        self.assertEqual(keep.until(to_b[-1]), to_b)


class SubscriptionMethodTests(harness.DaemonTestCase):
    """SubscribeEvents twice on one connection: each subscription keeps its own scope."""

    QUBES_XML = test_shim.FIXTURE_XML

    def call(self, method, arg):
        return self.d.conn.call_sync(harness.BUS_NAME, harness.ROOT_PATH, MANAGER, method,
                                     GLib.Variant('(s)', (arg,)), None, harness.Gio.DBusCallFlags.NONE, 5000, None)

    def test_subscribe_twice_then_unsubscribe(self):
        count = lambda: self.d.dbus_get(harness.ROOT_PATH, MANAGER, 'EventSubscriptions')  # noqa: E731
        self.assertEqual(count(), 0)
        self.call('SubscribeEvents', 'test-vm1')
        self.call('SubscribeEvents', '')
        self.call('SubscribeEvents', '')
        self.assertEqual(count(), 3)
        self.call('UnsubscribeEvents', '')
        self.assertEqual(count(), 2)
        collector = harness.SignalCollector(self.d.conn, interface='org.qubes_os.Admin1.Subscription',
                                            member='Event')
        self.addCleanup(collector.close)
        # the one to every qube still holds: an event about the template reaches this connection
        self.d.domain('test-template', 'SetFeature', 'ss', ('f9', 'x'))
        self.assertTrue(collector.wait_for(lambda s: any(x[0] == harness.domain_path('test-template')
                                                          for x in s)), collector.signals)
        self.call('UnsubscribeEvents', '')
        self.assertEqual(count(), 1)
        self.assertDBusError('org.qubes_os.Admin1.Error.QubesException', self.call, 'UnsubscribeEvents', '')
        self.call('UnsubscribeEvents', 'test-vm1')
        self.assertEqual(count(), 0)


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
