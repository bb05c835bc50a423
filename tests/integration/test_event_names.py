#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Manager.SubscribeEventNames (issue 18): a connection asks for only some event names and qubesd
sends it nothing else. Each connection below records every Subscription.Event message that reaches
it (a GDBus filter: what arrives, not what a match rule lets through), over the bus and over the
private socket. A plain SubscribeEvents('') on another connection is the reference stream."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_shim  # noqa: E402

from harness import Gio, GLib  # noqa: E402

MANAGER = 'org.qubes_os.Admin1.Manager'
SUBSCRIPTION = 'org.qubes_os.Admin1.Subscription'
QUBES_EXCEPTION = 'org.qubes_os.Admin1.Error.QubesException'


class Stream:
    """A connection of its own; .events: (sequence, subject, name) of every Subscription.Event
    that arrives on it, in arrival order."""

    def __init__(self, d):
        self.d = d
        self.conn = d.connect()
        self.events = []
        self.conn.add_filter(self._filter)

    def _filter(self, conn, msg, incoming):
        if (incoming and msg.get_message_type() == Gio.DBusMessageType.SIGNAL
                and msg.get_interface() == SUBSCRIPTION and msg.get_member() == 'Event'):
            seq, subject, name, _ = msg.get_body().unpack()
            self.events.append((seq, subject, name))
        return msg

    def call(self, method, signature, args):
        return self.d.call(harness.ROOT_PATH, MANAGER, method, signature, args, conn=self.conn)

    def wait_for_seq(self, seq, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e[0] >= seq for e in self.events):
                return True
            time.sleep(0.005)
        return False

    def close(self):
        try:
            self.conn.close_sync(None)
        except GLib.Error:
            pass


def matches(name, patterns):
    def one(p):
        return name.startswith(p[:-1]) if p.endswith('*') else name == p
    return (any(one(p) for p in patterns if not p.startswith('!'))
            and not any(one(p[1:]) for p in patterns if p.startswith('!')))


@harness.over_each_route
class EventNamesTests(harness.DaemonTestCase):
    QUBES_XML = test_shim.FIXTURE_XML

    def stream(self):
        s = Stream(self.d)
        self.addCleanup(s.close)
        return s

    def count(self):
        return self.d.dbus_get(harness.ROOT_PATH, MANAGER, 'EventSubscriptions')

    def act(self):
        """Events of several names about two qubes and the system; returns the sequence number of
        the last one (a marker every stream below asks for)."""
        self.d.domain('test-vm1', 'SetFeature', 'ss', ('f1', 'a'))
        self.d.set_property('test-vm1', 'label', 'blue')
        self.d.domain('test-template', 'SetFeature', 'ss', ('g1', 'b'))
        self.d.domain('test-template', 'SetFeature', 'ss', ('f2', 'c'))
        self.d.set_property('test-vm1', 'label', 'green')
        self.d.domain('test-vm1', 'RemoveFeature', 's', ('f1',))
        self.d.manager('SetProperty', 'ss', ('default_kernel', ''))
        self.d.domain('test-template', 'SetFeature', 'ss', ('marker', 'end'))
        return self.d.dbus_get(harness.ROOT_PATH, MANAGER, 'EventSequence')

    def test_only_the_names_asked_for_in_order(self):
        full = self.stream()
        names = self.stream()
        full.call('SubscribeEvents', 's', ('',))
        wanted = ['domain-feature-set:f*', '!domain-feature-set:f2', 'property-set:label',
                  'domain-feature-set:marker', '!domain-feature-delete:*']
        names.call('SubscribeEventNames', 'sas', ('', wanted))
        self.assertEqual(self.count(), 2)
        last = self.act()
        self.assertTrue(full.wait_for_seq(last), full.events)
        self.assertTrue(names.wait_for_seq(last), names.events)
        time.sleep(0.1)  # nothing more may come
        expected = [e for e in full.events if matches(e[2], wanted)]
        # the reference stream holds the others too: the filter had something to drop
        self.assertTrue(any(not matches(e[2], wanted) for e in full.events), full.events)
        self.assertIn(('test-vm1', 'property-set:label'), [(e[1], e[2]) for e in expected])
        self.assertIn(('test-vm1', 'domain-feature-set:f1'), [(e[1], e[2]) for e in expected])
        # the exception wins over the prefix that takes it
        self.assertIn('domain-feature-set:f2', [e[2] for e in full.events])
        self.assertNotIn('domain-feature-set:f2', [e[2] for e in names.events])
        self.assertEqual(names.events, expected)
        seqs = [e[0] for e in names.events]
        self.assertEqual(seqs, sorted(set(seqs)), 'not in sequence order, or twice')

    def test_mixed_subscriptions_one_copy_each(self):
        full = self.stream()
        mixed = self.stream()
        full.call('SubscribeEvents', 's', ('',))
        mixed.call('SubscribeEvents', 's', ('test-vm1',))
        mixed.call('SubscribeEventNames', 'sas', ('', ['domain-feature-set:*']))
        # overlaps the one above, names in another order and twice: the same events, once
        mixed.call('SubscribeEventNames', 'sas', ('', ['domain-feature-set:marker', 'domain-feature-set:f*',
                                                       'domain-feature-set:f*']))
        mixed.call('SubscribeEventNames', 'sas', ('test-template', ['property-set:*']))
        self.assertEqual(self.count(), 5)
        last = self.act()
        self.assertTrue(full.wait_for_seq(last), full.events)
        self.assertTrue(mixed.wait_for_seq(last), mixed.events)
        time.sleep(0.1)

        def wanted(e):
            return e[1] == 'test-vm1' or e[2].startswith('domain-feature-set:')

        self.assertEqual(mixed.events, [e for e in full.events if wanted(e)])
        self.assertTrue(any(not wanted(e) for e in full.events), full.events)

        # UnsubscribeEvents('') ends the first made for every qube: the domain-feature-set:* one;
        # f* and marker still come, g1 no longer
        mixed.call('UnsubscribeEvents', 's', ('',))
        self.assertEqual(self.count(), 4)
        del mixed.events[:]
        del full.events[:]
        last = self.act()
        self.assertTrue(full.wait_for_seq(last), full.events)
        self.assertTrue(mixed.wait_for_seq(last), mixed.events)
        time.sleep(0.1)

        def wanted2(e):
            return e[1] == 'test-vm1' or matches(e[2], ['domain-feature-set:f*', 'domain-feature-set:marker'])

        self.assertEqual(mixed.events, [e for e in full.events if wanted2(e)])
        self.assertNotIn('domain-feature-set:g1', [e[2] for e in mixed.events])
        mixed.call('UnsubscribeEvents', 's', ('test-vm1',))
        mixed.call('UnsubscribeEvents', 's', ('',))
        mixed.call('UnsubscribeEvents', 's', ('test-template',))
        self.assertEqual(self.count(), 1)
        self.assertDBusError(QUBES_EXCEPTION, mixed.call, 'UnsubscribeEvents', 's', ('',))

    def test_unsubscribe_takes_the_unfiltered_one_first(self):
        """A client that narrows its stream (the Qube Manager, once broadcasts come): every event
        before, only the named ones after, none lost or doubled in between."""
        s = self.stream()
        full = self.stream()
        full.call('SubscribeEvents', 's', ('',))
        s.call('SubscribeEvents', 's', ('',))
        s.call('SubscribeEventNames', 'sas', ('', ['property-set:*']))
        s.call('UnsubscribeEvents', 's', ('',))
        self.assertEqual(self.count(), 2)
        last = self.act()
        self.assertTrue(full.wait_for_seq(last), full.events)
        time.sleep(0.2)
        self.assertEqual(s.events, [e for e in full.events if e[2].startswith('property-set:')])
        self.assertEqual(len(s.events), 3, s.events)  # label twice, default_kernel

    def test_bad_names_refused(self):
        s = self.stream()
        bad = [
            ([], 'No event names'),
            ([''], 'empty'),
            (['property set'], 'Invalid event name'),
            (['property-*:label'], 'Invalid event name'),
            (['caf\u00e9'], 'Invalid event name'),
            (['a' * 257], 'Event name number 1 is empty or longer than 256 characters'),
            (['ok', ''], 'Event name number 2 is empty'),
            (['e%d' % i for i in range(65)], r'Too many event names: 65 \(at most 64\)'),
            (['ok', 'tab\there'], 'Invalid event name'),
            (['ok', '!'], 'Event name number 2 is empty'),
            (['!property-set:*'], r"Only exceptions \('!'\)"),
            (['property!set'], 'Invalid event name'),
            (['!!property-set:x', 'x'], 'Invalid event name'),
        ]
        for names, message in bad:
            with self.subTest(names=names[:3]):
                self.assertDBusError(QUBES_EXCEPTION, s.call, 'SubscribeEventNames', 'sas', ('', names),
                                     message=message)
        self.assertDBusError('org.qubes_os.Admin1.Error.QubesVMNotFoundError', s.call, 'SubscribeEventNames',
                             'sas', ('no-such-qube', ['property-set:*']))
        # nothing subscribed: no events reach the connection
        self.assertEqual(self.count(), 0)
        last = self.act()
        full = self.stream()
        full.call('SubscribeEvents', 's', ('',))
        self.d.domain('test-vm1', 'SetFeature', 'ss', ('after', 'x'))
        self.assertTrue(full.wait_for_seq(last + 1), full.events)
        time.sleep(0.1)
        self.assertEqual(s.events, [])
        # the longest and the most names allowed are taken
        s.call('SubscribeEventNames', 'sas', ('', ['a' * 256] + ['e%d' % i for i in range(63)]))
        self.assertEqual(self.count(), 2)
        self.assertTrue(self.d.proc.poll() is None)


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
