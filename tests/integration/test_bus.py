#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a person with busctl sees: the object tree, introspection, properties that persist."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, domain_path, ROOT_PATH  # noqa: E402

DEMO_QUBES = ['dom0', 'debian-12-xfce', 'default-dvm', 'personal', 'sys-firewall', 'sys-net', 'work']


class TestBusctl(DaemonTestCase):
    QUBES_XML = harness.DEMO_XML

    def test_tree_lists_every_qube(self):
        out = self.d.busctl('tree', '--list', harness.BUS_NAME).stdout.split()
        self.assertIn(ROOT_PATH, out, 'busctl tree does not show the manager object')
        for name in DEMO_QUBES:
            self.assertIn(domain_path(name), out,
                          'busctl tree does not list %s (%s); it lists:\n%s'
                          % (name, domain_path(name), '\n'.join(out)))
        # the paths are escaped as sd_bus_path_encode() does
        self.assertIn('/org/qubes_os/Admin1/domain/sys_2dnet', out)
        self.assertIn('/org/qubes_os/Admin1/domain/dom0', out)

    def test_introspect_domain(self):
        out = self.d.busctl('introspect', harness.BUS_NAME, domain_path('work')).stdout
        for iface in ('org.qubes_os.Admin1.Domain', 'org.qubes_os.Admin1.QubesVM',
                      'org.qubes_os.Admin1.AppVM', 'org.freedesktop.DBus.Properties'):
            self.assertIn(iface, out, 'busctl introspect of work does not show %s:\n%s' % (iface, out))
        self.assertRegex(out, r'\.SetProperty\s+method\s+ss\s', 'no SetProperty(ss) method')
        self.assertRegex(out, r'\.Memory\s+property\s+x\s+800\s', 'Memory is not shown as x 800')
        dom0 = self.d.busctl('introspect', harness.BUS_NAME, domain_path('dom0')).stdout
        self.assertIn('org.qubes_os.Admin1.AdminVM', dom0)
        self.assertNotIn('org.qubes_os.Admin1.QubesVM', dom0, 'dom0 must not carry QubesVM')

    def test_introspect_manager(self):
        out = self.d.busctl('introspect', harness.BUS_NAME, ROOT_PATH).stdout
        self.assertIn('org.qubes_os.Admin1.Manager', out)
        self.assertIn('org.freedesktop.DBus.ObjectManager', out)

    def test_unknown_qube_has_no_object(self):
        r = self.d.busctl('introspect', harness.BUS_NAME, domain_path('no-such-qube'), check=False)
        self.assertNotIn('org.qubes_os.Admin1.Domain', r.stdout,
                         'a qube that does not exist has an object')

    def test_get_set_property_survives_restart(self):
        path = domain_path('work')
        get = ('get-property', harness.BUS_NAME, path, 'org.qubes_os.Admin1.QubesVM', 'Memory')
        self.assertEqual(self.d.busctl(*get).stdout.strip(), 'x 800')

        self.d.busctl('call', harness.BUS_NAME, path, 'org.qubes_os.Admin1.Domain',
                      'SetProperty', 'ss', 'memory', '1200')
        self.assertEqual(self.d.busctl(*get).stdout.strip(), 'x 1200')
        self.assertEqual(self.d.get_property('work', 'memory'), ('int', False, '1200'))

        self.d.restart()
        self.assertEqual(self.d.busctl(*get).stdout.strip(), 'x 1200',
                         'memory set with SetProperty did not survive a restart')

        # writing the D-Bus property is the same as SetProperty with its string form
        self.d.busctl('set-property', harness.BUS_NAME, path, 'org.qubes_os.Admin1.QubesVM',
                      'Memory', 'x', '900')
        self.assertEqual(self.d.get_property('work', 'memory'), ('int', False, '900'))
        self.d.restart()
        self.assertEqual(self.d.busctl(*get).stdout.strip(), 'x 900',
                         'memory set with Properties.Set did not survive a restart')
        root = harness.parse_xml_file(self.d.xml_path)
        self.assertEqual(harness.xml_domain_property(root, 'work', 'memory'), '900')

    def test_reference_property_is_object_path(self):
        out = self.d.busctl('get-property', harness.BUS_NAME, domain_path('sys-firewall'),
                            'org.qubes_os.Admin1.QubesVM', 'Netvm').stdout.strip()
        self.assertEqual(out, 'o "%s"' % domain_path('sys-net'))
        out = self.d.busctl('get-property', harness.BUS_NAME, domain_path('sys-net'),
                            'org.qubes_os.Admin1.QubesVM', 'Netvm').stdout.strip()
        self.assertEqual(out, 'o "/"', 'a None qube reference must read as /')
        out = self.d.busctl('get-property', harness.BUS_NAME, domain_path('work'),
                            'org.qubes_os.Admin1.Domain', 'Label').stdout.strip()
        self.assertEqual(out, 'o "%s"' % harness.label_path('blue'))

    def test_list_domains(self):
        doms = self.d.manager('ListDomains')[0]
        names = [d[0] for d in doms]
        self.assertEqual(names, DEMO_QUBES, 'ListDomains is not dom0 first then by name')
        for name, klass, state, uuid, path in doms:
            self.assertEqual(path, domain_path(name))
        self.assertEqual(doms[0][1:4], ('AdminVM', 'Running', '00000000-0000-0000-0000-000000000000'))


class TestFreshSystem(DaemonTestCase):
    """With no qubes.xml, qubesd creates a fresh system: dom0, the 8 labels, a saved file."""
    QUBES_XML = None

    def test_fresh(self):
        out = self.d.busctl('tree', '--list', harness.BUS_NAME).stdout.split()
        self.assertIn(domain_path('dom0'), out)
        labels = [l[0] for l in self.d.manager('ListLabels')[0]]
        self.assertEqual(labels, ['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black'])
        # a global property set on the Manager is saved and survives a restart
        self.d.manager('SetProperty', 'ss', ('default_qrexec_timeout', '70'))
        self.d.restart()
        self.assertTrue(os.path.exists(self.d.xml_path), 'no qubes.xml after a change')
        harness.parse_xml_file(self.d.xml_path)
        self.assertEqual(tuple(self.d.manager('GetProperty', 's', ('default_qrexec_timeout',))),
                         ('int', False, '70'))


if __name__ == '__main__':
    harness.main()
