#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Qubes events as the Event signal, and coalesced PropertiesChanged (docs/dbus-api.md).

Every test runs twice (harness.over_each_route): the changes made through the bus (TestEvents_bus)
and over qubesd's private socket (TestEvents_private), as the shim makes them; the signals are
watched on the bus, where admin.Events reads them, either way."""

import os
import subprocess
import sys
import unittest

from gi.repository import GLib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, SignalCollector, domain_path  # noqa: E402


@harness.over_each_route
class TestEvents(DaemonTestCase):
    QUBES_XML = harness.EXAMPLE_XML

    def events(self, collector, prefix=''):
        return [s for s in collector.signals if s[2] == 'Event' and s[3][2].startswith(prefix)]

    def test_property_set_events(self):
        events = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event',
                                 path=domain_path('work'))
        self.addCleanup(events.close)
        seq_before = self.d.dbus_get(harness.ROOT_PATH, harness.MANAGER_IFACE, 'EventSequence')

        self.d.set_property('work', 'memory', '900')
        ok = events.wait_for(lambda s: any(e[3][2] == 'property-set:memory' for e in s))
        self.assertTrue(ok, 'no property-set:memory Event; got %r' % events.signals)

        mem = [e for e in events.signals if e[3][2].endswith(':memory')]
        names = [e[3][2] for e in mem]
        self.assertEqual(names, ['property-pre-set:memory', 'property-set:memory'],
                         'events for a memory change, in order')
        seqs = [e[3][0] for e in mem]
        self.assertGreater(seqs[0], seq_before, 'sequence did not increase past EventSequence')
        self.assertGreater(seqs[1], seqs[0], 'sequence numbers are not increasing')
        for path, iface, member, (seq, subject, name, args) in mem:
            self.assertEqual(path, domain_path('work'))
            self.assertEqual(subject, 'work')
            self.assertEqual(list(args), [('name', 'memory'), ('newvalue', '900'), ('oldvalue', '800')],
                             '%s keys and values (upstream wire order)' % name)
        seq_after = self.d.dbus_get(harness.ROOT_PATH, harness.MANAGER_IFACE, 'EventSequence')
        self.assertGreaterEqual(seq_after, seqs[1], 'EventSequence is behind the last event')

        # a second change continues the sequence without a gap
        self.d.set_property('work', 'memory', '1000')
        events.wait_for(lambda s: sum(e[3][2] == 'property-set:memory' for e in s) >= 2)
        mem = [e for e in events.signals if e[3][2].endswith(':memory')]
        self.assertEqual(len(mem), 4, 'two changes give four memory events: %r' % mem)
        all_seqs = [e[3][0] for e in events.signals]
        self.assertEqual(all_seqs, sorted(all_seqs), 'Event signals arrived out of sequence')
        self.assertEqual(len(set(all_seqs)), len(all_seqs), 'a sequence number was reused')
        self.assertEqual(list(mem[3][3][3]), [('name', 'memory'), ('newvalue', '1000'), ('oldvalue', '900')])

    def test_reset_events(self):
        events = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event',
                                 path=domain_path('work'))
        self.addCleanup(events.close)
        self.d.domain('work', 'ResetProperty', 's', ('memory',))
        # the last of the four (they leave together; on the private route the reply may come first)
        events.wait_for(lambda s: any(e[3][2] == 'property-del:memory' for e in s))
        names = [e[3][2] for e in events.signals]
        self.assertEqual(names, ['property-pre-reset:memory', 'property-pre-del:memory',
                                 'property-reset:memory', 'property-del:memory'],
                         'reset events (vector 7.2.15)')
        self.assertEqual(list(events.signals[0][3][3]), [('name', 'memory'), ('oldvalue', '800')])
        self.assertEqual(self.d.get_property('work', 'memory'), ('int', True, '400'))

    def test_no_events_on_failed_set(self):
        events = SignalCollector(self.d.conn, member='Event')
        self.addCleanup(events.close)
        with self.assertRaises(harness.CallError):
            self.d.set_property('work', 'memory', 'abc')
        events.pump(0.3)
        self.assertEqual([e for e in events.signals if 'memory' in e[3][2]], [],
                         'a refused value still emitted events')

    def test_properties_changed(self):
        changed = SignalCollector(self.d.conn, interface=harness.PROPS_IFACE, member='PropertiesChanged',
                                  path=domain_path('work'))
        self.addCleanup(changed.close)
        self.d.set_property('work', 'memory', '900')
        ok = changed.wait_for(lambda s: any('Memory' in e[3][1] for e in s))
        self.assertTrue(ok, 'no PropertiesChanged with Memory; got %r' % changed.signals)
        changed.pump(0.3)  # anything else that would come
        mem = [e for e in changed.signals if 'Memory' in e[3][1] or 'Memory' in e[3][2]]
        self.assertEqual(len(mem), 1, 'one SetProperty gave %d PropertiesChanged with Memory: %r'
                         % (len(mem), mem))
        iface, props, invalidated = mem[0][3]
        self.assertEqual(iface, harness.QUBESVM_IFACE)
        self.assertEqual(props['Memory'], 900)

        # several changes in one main-loop iteration of the daemon are one signal per object:
        # send a burst without waiting for replies, then count per interface
        changed.signals.clear()
        from gi.repository import Gio
        pending = []
        for v in ('1001', '1002', '1003', '1004', '1005'):
            self.d.call_conn.call(harness.BUS_NAME, domain_path('work'), harness.DOMAIN_IFACE, 'SetProperty',
                                  GLib.Variant('(ss)', ('memory', v)), None, Gio.DBusCallFlags.NONE, 10000,
                                  None, lambda c, r, p: p.append(c.call_finish(r)), pending)
        ok = changed.wait_for(lambda s: len(pending) == 5 and any(e[3][1].get('Memory') == 1005 for e in s))
        self.assertTrue(ok, 'final PropertiesChanged (Memory=1005) missing: %r' % changed.signals)
        changed.pump(0.2)
        mem = [e for e in changed.signals if 'Memory' in e[3][1]]
        self.assertLessEqual(len(mem), 5, 'more PropertiesChanged than changes: %r' % mem)
        self.assertEqual(mem[-1][3][1]['Memory'], 1005, 'the last PropertiesChanged is not the last value')

    def test_dependent_properties_changed(self):
        """Setting a qube reference to None is announced as the path /."""
        changed = SignalCollector(self.d.conn, interface=harness.PROPS_IFACE, member='PropertiesChanged',
                                  path=domain_path('work'))
        self.addCleanup(changed.close)
        self.d.set_property('work', 'netvm', '')
        ok = changed.wait_for(lambda s: any('Netvm' in e[3][1] for e in s))
        self.assertTrue(ok, 'no PropertiesChanged with Netvm: %r' % changed.signals)
        netvm = [e for e in changed.signals if 'Netvm' in e[3][1]][0]
        self.assertEqual(netvm[3][1]['Netvm'], '/')


    def test_notes_changed(self):
        """Notes are no property and no Qubes event: SetNotes is announced with NotesChanged on
        the qube, also when qvm-notes sets them through the shim; a refused SetNotes is not, and
        no other qube's is."""
        changed = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='NotesChanged')
        self.addCleanup(changed.close)

        def on(qube):
            return [s for s in changed.signals if s[0] == domain_path(qube)]

        self.d.domain('work', 'SetNotes', 's', ('shopping list',))
        self.assertTrue(changed.wait_for(lambda s: on('work')), 'no NotesChanged after SetNotes')
        self.assertEqual(on('work')[0][3], ())
        self.assertEqual(self.d.domain('work', 'GetNotes'), ('shopping list',))

        changed.signals.clear()
        self.assertDBusError(harness.ERROR_PREFIX + 'ProtocolError', self.d.domain, 'work', 'SetNotes', 's',
                             ('x' * 256001,))
        changed.pump(0.3)
        self.assertEqual(changed.signals, [], 'a refused SetNotes was announced')

        import test_devices  # noqa: E402 (upstream's qvm runner)
        import test_shim  # noqa: E402
        qvm = test_devices.find_qvm()
        door = test_shim.SocketDoor(test_shim.find_shim(), self.d)
        self.addCleanup(door.stop)
        r = subprocess.run(['/usr/bin/python3', qvm, 'qvm-notes', 'sys-net', '--set', 'from qvm-notes'],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, QUBESD_SOCKET=door.path))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(changed.wait_for(lambda s: on('sys-net')), 'no NotesChanged after qvm-notes --set')
        self.assertEqual(on('work'), [])
        self.assertEqual(self.d.domain('sys-net', 'GetNotes'), ('from qvm-notes',))


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
