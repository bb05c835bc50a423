#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The contract: for every object type, the daemon's live introspection has exactly the methods,
signals and properties (names, argument names and signatures, access) of dbus-interfaces/*.xml.
Annotations and documentation are ignored.

The contract is checked through the bus (TestIntrospection_bus) and over qubesd's private socket
(TestIntrospection_private), and TestPrivateSocketShowsTheBus compares the two directly: the
Manager, a qube of every class, a label, a pool, a volume and a Job show over the private socket
every interface, member and child node the bus shows, with the same property values."""

import os
import sys
import time
import unittest
import xml.etree.ElementTree as ET

from gi.repository import GLib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, domain_path, label_path, ROOT_PATH  # noqa: E402

ALL_CLASSES_XML = os.path.join(harness.TEST_DATA_DIR, 'all-classes.xml')
P = 'org.qubes_os.Admin1.'

# object -> the org.qubes_os.Admin1.* interfaces it must carry (docs/dbus-api.md)
OBJECTS = {
    ROOT_PATH: ['Manager'],
    domain_path('dom0'): ['Domain', 'AdminVM', 'DomainDevices'],
    domain_path('work'): ['Domain', 'QubesVM', 'AppVM', 'DomainDevices', 'Firewall'],
    domain_path('disp1234'): ['Domain', 'QubesVM', 'DispVM', 'DomainDevices', 'Firewall'],
    domain_path('standalone1'): ['Domain', 'QubesVM', 'StandaloneVM', 'DomainDevices', 'Firewall'],
    domain_path('fedora-42'): ['Domain', 'QubesVM', 'TemplateVM', 'DomainDevices', 'Firewall'],
    domain_path('remote1'): ['Domain', 'RemoteVM', 'DomainDevices', 'Firewall'],
    label_path('red'): ['Label'],
    ROOT_PATH + '/pool/varlibqubes': ['Pool'],
    # a device every machine has: its first PCI device (devices-dbus.c)
    ROOT_PATH + '/device/pci/dom0/' + harness.bus_path_escape(harness.first_pci_port()): ['Device'],
    domain_path('work') + '/volume/private': ['Volume'],
}
STANDARD = {'org.freedesktop.DBus.Peer', 'org.freedesktop.DBus.Introspectable',
            'org.freedesktop.DBus.Properties', 'org.freedesktop.DBus.ObjectManager'}


def members(iface_el):
    """{('method'|'signal'|'property', name): description} of an <interface> element."""
    out = {}
    for m in iface_el.findall('method'):
        args = tuple((a.get('direction', 'in'), a.get('type'), a.get('name'))
                     for a in m.findall('arg'))
        out[('method', m.get('name'))] = args
    for s in iface_el.findall('signal'):
        args = tuple((a.get('type'), a.get('name')) for a in s.findall('arg'))
        out[('signal', s.get('name'))] = args
    for p in iface_el.findall('property'):
        out[('property', p.get('name'))] = (p.get('type'), p.get('access'))
    return out


def contract(short):
    path = os.path.join(harness.INTERFACES_DIR, P + short + '.xml')
    root = ET.parse(path).getroot()
    found = [i for i in root.iter('interface') if i.get('name') == P + short]
    assert len(found) == 1, '%s defines interface %s %d times' % (path, P + short, len(found))
    return members(found[0])


@harness.over_each_route
class TestIntrospection(DaemonTestCase):
    QUBES_XML = ALL_CLASSES_XML

    def live(self, path):
        root = ET.fromstring(self.d.introspect(path))
        return {i.get('name'): members(i) for i in root.findall('interface')}

    def test_contract_files_exist(self):
        for short in ('Manager', 'Domain', 'QubesVM', 'AdminVM', 'AppVM', 'DispVM', 'StandaloneVM',
                      'TemplateVM', 'RemoteVM', 'Label', 'Pool', 'Volume', 'Device', 'DomainDevices',
                      'Firewall'):
            path = os.path.join(harness.INTERFACES_DIR, P + short + '.xml')
            self.assertTrue(os.path.exists(path), 'missing contract file %s' % path)
            ET.parse(path)

    def test_live_matches_contract(self):
        problems = []
        for path, shorts in OBJECTS.items():
            live = self.live(path)
            ours = {n for n in live if n.startswith(P)}
            want = {P + s for s in shorts}
            if ours != want:
                problems.append('%s: interfaces %s, expected %s' % (path, sorted(ours), sorted(want)))
            others = set(live) - ours - STANDARD
            if others:
                problems.append('%s: unexpected interfaces %s' % (path, sorted(others)))
            for short in shorts:
                if P + short not in live:
                    continue
                got, exp = live[P + short], contract(short)
                for key in sorted(set(got) | set(exp)):
                    if key not in exp:
                        problems.append('%s %s: %s %s is live but not in the contract: %r'
                                        % (path, short, key[0], key[1], got[key]))
                    elif key not in got:
                        problems.append('%s %s: %s %s of the contract is missing: %r'
                                        % (path, short, key[0], key[1], exp[key]))
                    elif got[key] != exp[key]:
                        problems.append('%s %s: %s %s differs: live %r, contract %r'
                                        % (path, short, key[0], key[1], got[key], exp[key]))
        if problems:
            self.fail('live introspection differs from dbus-interfaces/ (%d problems):\n  %s'
                      % (len(problems), '\n  '.join(problems)))

    def test_object_manager(self):
        live = self.live(ROOT_PATH)
        self.assertIn('org.freedesktop.DBus.ObjectManager', live)
        objs = self.d.call(ROOT_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects')[0]
        # a qube's volumes are in the qube's own GetManagedObjects, not the root's
        objs.update(self.d.call(domain_path('work'), 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects')[0])
        for path, shorts in OBJECTS.items():
            if path == ROOT_PATH:
                continue
            self.assertIn(path, objs, 'GetManagedObjects lacks %s' % path)
            got = {n for n in objs[path] if n.startswith(P)}
            self.assertEqual(got, {P + s for s in shorts}, path)

    def test_properties_readable(self):
        """Every property the contract lists reads with its declared type (GetAll per interface)."""
        for path, shorts in OBJECTS.items():
            for short in shorts:
                exp = {k[1]: v for k, v in contract(short).items() if k[0] == 'property'}
                if not exp:
                    continue
                reply = self.d.call_conn.call_sync(harness.BUS_NAME, path, harness.PROPS_IFACE, 'GetAll',
                                                   GLib.Variant('(s)', (P + short,)), None, 0, 10000, None)
                values = reply.get_child_value(0)
                got = {}
                for i in range(values.n_children()):
                    entry = values.get_child_value(i)
                    got[entry.get_child_value(0).get_string()] = \
                        entry.get_child_value(1).get_variant().get_type_string()
                readable = {n for n, (t, a) in exp.items() if a in ('read', 'readwrite')}
                self.assertEqual(set(got), readable, '%s %s: GetAll names' % (path, short))
                for n in readable:
                    self.assertEqual(got[n], exp[n][0], '%s %s.%s type' % (path, short, n))


class TestPrivateSocketShowsTheBus(DaemonTestCase):
    """The private socket (what the shim calls in the installed topology) serves the tree the bus
    serves: compared object by object, not only against the contract files."""

    QUBES_XML = ALL_CLASSES_XML
    ROUTE = 'private'

    def tree(self, conn, path):
        """({interface: members}, [child nodes]) of path, introspected on conn."""
        root = ET.fromstring(self.d.introspect(path, conn=conn))
        return ({i.get('name'): members(i) for i in root.findall('interface')},
                sorted(n.get('name') for n in root.findall('node')))

    def a_job(self):
        """A Job object: a StartQubes batch asked for on the bus (it stays a while after it ends)."""
        deadline = time.monotonic() + 10
        while 'Connected to libvirt' not in self.d.log_tail(200):
            self.assertLess(time.monotonic(), deadline, 'qubesd did not connect to libvirt')
            time.sleep(0.01)
        return self.d.call(ROOT_PATH, harness.MANAGER_IFACE, 'StartQubes', 'as', (['work'],),
                           conn=self.d.conn)[0]

    def test_every_member_the_bus_shows(self):
        paths = list(OBJECTS) + [self.a_job()]
        problems = []
        for path in paths:
            bus_ifaces, bus_nodes = self.tree(self.d.conn, path)
            try:
                priv_ifaces, priv_nodes = self.tree(self.d.call_conn, path)
            except harness.CallError as e:
                problems.append('%s: cannot introspect over the private socket: %s'
                                % (path, harness.dbus_error_message(e)))
                continue
            for iface, bus_members in sorted(bus_ifaces.items()):
                if iface not in priv_ifaces:
                    problems.append('%s: interface %s is missing' % (path, iface))
                    continue
                for key in sorted(set(bus_members) - set(priv_ifaces[iface])):
                    problems.append('%s %s: %s %s is missing' % (path, iface, key[0], key[1]))
                for key in sorted(set(bus_members) & set(priv_ifaces[iface])):
                    if bus_members[key] != priv_ifaces[iface][key]:
                        problems.append('%s %s: %s %s differs: private %r, bus %r'
                                        % (path, iface, key[0], key[1], priv_ifaces[iface][key], bus_members[key]))
            for iface in sorted(set(priv_ifaces) - set(bus_ifaces)):
                problems.append('%s: interface %s only over the private socket' % (path, iface))
            if priv_nodes != bus_nodes:
                problems.append('%s: child nodes %s, on the bus %s' % (path, priv_nodes, bus_nodes))
        if problems:
            self.fail('the private socket does not show what the bus shows (%d problems):\n  %s'
                      % (len(problems), '\n  '.join(problems)))

    # figures of the host's file system, read live: they may move between the two reads
    LIVE = {('Pool', 'Size'), ('Pool', 'Usage'), ('Volume', 'Usage')}

    def test_same_property_values(self):
        for path, shorts in OBJECTS.items():
            for short in shorts:
                on_bus = self.d.call(path, harness.PROPS_IFACE, 'GetAll', 's', (P + short,), conn=self.d.conn)[0]
                private = self.d.call(path, harness.PROPS_IFACE, 'GetAll', 's', (P + short,))[0]
                self.assertEqual(set(private), set(on_bus), '%s %s: property names' % (path, short))
                for name in on_bus:
                    if (short, name) not in self.LIVE:
                        self.assertEqual(private[name], on_bus[name], '%s %s.%s' % (path, short, name))


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
