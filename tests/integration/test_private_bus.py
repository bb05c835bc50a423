#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""qubesd's private socket is a second door to the same object tree: the lifecycle methods, the
Job objects and the signals are there as on the bus. A peer that declared whom it acts for (the
shim, with SetCallerIdentity) gets its events from SubscribeEvents instead of every broadcast."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, ROOT_PATH, domain_path  # noqa: E402

from gi.repository import Gio, GLib  # noqa: E402

P = 'org.qubes_os.Admin1.'


class PrivateConnection:
    """A direct (peer-to-peer) connection to qubesd's private socket, with its own signals."""

    def __init__(self, path):
        self.conn = Gio.DBusConnection.new_for_address_sync(
            'unix:path=' + path, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT, None, None)
        self.conn.set_exit_on_close(False)
        self.signals = []
        # no bus daemon: every signal qubesd sends on this connection arrives
        self.conn.signal_subscribe(None, None, None, None, None, Gio.DBusSignalFlags.NONE, self._on_signal)

    def _on_signal(self, conn, sender, path, iface, member, params):
        self.signals.append((path, iface, member, params.unpack()))

    def call(self, path, iface, method, signature=None, args=()):
        body = GLib.Variant('(' + signature + ')', tuple(args)) if signature else None
        return self.conn.call_sync(None, path, iface, method, body, None, Gio.DBusCallFlags.NONE, 30000,
                                   None).unpack()

    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            harness.SignalCollector.pump(0.01)
            if predicate(self.signals):
                return True
        return predicate(self.signals)

    def members(self, iface):
        return [(s[0], s[2]) for s in self.signals if s[1] == iface]

    def close(self):
        if not self.conn.is_closed():
            self.conn.close_sync(None)


class TestPrivateBus(DaemonTestCase):
    QUBES_XML = harness.DEMO_XML

    def setUp(self):
        self.d = harness.Daemon(self.QUBES_XML)
        self.addCleanup(self.d.cleanup)
        self.socket = os.path.join(self.d.dir, 'private')
        self.d.extra_args.append('--private-socket=' + self.socket)
        self.d.start()

    def connect(self):
        c = PrivateConnection(self.socket)
        self.addCleanup(c.close)
        return c

    def test_a_call_right_behind_the_handshake_is_answered(self):
        # GDBus and libdbus send their first call in the same write as BEGIN; sd-bus reads it
        # with the handshake and must not leave it in its buffer
        call = Gio.DBusMessage.new_method_call(None, ROOT_PATH, P + 'Manager', 'ListDomainsText')
        call.set_serial(1)
        blob = call.to_blob(Gio.DBusCapabilityFlags.NONE)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.connect(self.socket)
        s.sendall(b'\0AUTH EXTERNAL ' + str(os.geteuid()).encode().hex().encode() + b'\r\nBEGIN\r\n' + blob)
        s.settimeout(5)
        data = b''
        deadline = time.monotonic() + 5
        while b'dom0 class=AdminVM' not in data and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        self.assertTrue(data.startswith(b'OK '), data[:40])
        self.assertIn(b'dom0 class=AdminVM', data, 'the call sent with BEGIN was not answered')

    def test_lifecycle_and_jobs_through_the_private_socket(self):
        c = self.connect()
        c.call(domain_path('work'), P + 'Domain', 'Start')
        state = c.call(domain_path('work'), 'org.freedesktop.DBus.Properties', 'Get', 'ss',
                       (P + 'Domain', 'PowerState'))[0]
        self.assertEqual(state, 'Running')
        job = c.call(ROOT_PATH, P + 'Manager', 'ShutdownQubes', 'asb', (['work'], False))[0]
        self.assertTrue(c.wait_for(lambda s: (job, 'Finished') in c.members(P + 'Job')),
                        'no Finished of %s on the private connection' % job)
        self.assertEqual(c.call(job, 'org.freedesktop.DBus.Properties', 'Get', 'ss', (P + 'Job', 'State'))[0],
                         'succeeded')

    def test_signals_reach_a_private_connection(self):
        c = self.connect()
        self.d.set_property('work', 'label', 'green')  # through the bus
        self.assertTrue(c.wait_for(lambda s: (domain_path('work'), 'Event') in c.members(P + 'Domain')),
                        'no Event on the private connection: %s' % c.signals)
        self.assertTrue(c.wait_for(lambda s: any(x[0] == domain_path('work') and x[2] == 'PropertiesChanged'
                                                 and 'Label' in x[3][1] for x in s)))
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'newcomer', 'red', '', {}))
        self.assertTrue(c.wait_for(lambda s: any(x[2] == 'InterfacesAdded' and x[3][0] == domain_path('newcomer')
                                                 for x in s)))

    def test_a_proxy_gets_its_subscription_not_the_broadcasts(self):
        # what qubesd announces once libvirt has answered (the host figures: global maxmem,
        # no_cpus) is a broadcast to every connection still without an identity: let it pass
        deadline = time.monotonic() + 10
        while 'Connected to libvirt' not in self.d.log_tail(200):
            self.assertLess(time.monotonic(), deadline, 'qubesd did not connect to libvirt')
            time.sleep(0.01)
        harness.SignalCollector.pump(0.05)
        plain = self.connect()
        proxy = self.connect()
        proxy.call(ROOT_PATH, P + 'Manager', 'SetCallerIdentity', 's', ('dom0',))
        self.d.set_property('work', 'label', 'green')
        self.assertTrue(plain.wait_for(lambda s: (domain_path('work'), 'Event') in plain.members(P + 'Domain')))
        harness.SignalCollector.pump(0.3)
        self.assertEqual(proxy.signals, [], 'a connection acting for a qube got broadcasts')

        seq = proxy.call(ROOT_PATH, P + 'Manager', 'SubscribeEvents', 's', ('',))[0]
        self.d.set_property('work', 'label', 'blue')
        self.assertTrue(proxy.wait_for(lambda s: any(x[1] == P + 'Subscription' and x[2] == 'Event' and
                                                     x[3][0] > seq and x[3][2] == 'property-set:label'
                                                     for x in s)),
                        'no subscribed Event on the proxy: %s' % proxy.signals)
        self.assertEqual(proxy.members(P + 'Domain'), [])


if __name__ == '__main__':
    harness.main()
