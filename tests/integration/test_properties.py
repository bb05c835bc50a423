#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GetProperty/GetAllProperties on qubes loaded from tests/data/example-qubes.xml (a file upstream
4.4 loads) give upstream's values (spec/props-by-class.txt samples), in Admin API order
(spec/admin-api.md vector 7.2.12)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, domain_path, label_path  # noqa: E402

SKIP = object()  # value depends on the host (maxmem: upstream could not read it offline)

# (name, type word, is_default, value) of the AppVM 'work' in example-qubes.xml, in
# property.GetAll order (vector 7.2.12). Values from upstream's samples; the uuid is the file's.
WORK_EXPECTED = [
    ('autostart', 'bool', True, 'False'),
    ('backup_timestamp', 'int', True, ''),
    ('debug', 'bool', True, 'False'),
    ('default_user', 'str', True, 'user'),
    ('devices_denied', 'str', True, ''),
    ('dns', 'str', True, '10.139.1.1 10.139.1.2'),
    ('gateway', 'str', True, ''),
    ('gateway6', 'str', True, ''),
    ('icon', 'str', True, 'appvm-blue'),
    ('include_in_backups', 'bool', True, 'True'),
    ('installed_by_rpm', 'bool', True, 'False'),
    ('ip', 'str', True, '10.137.0.4'),
    ('ip6', 'str', True, ''),
    ('kernel', 'str', True, '6.6.1-1.fc37'),
    ('keyboard_layout', 'str', True, 'us++'),
    ('klass', 'str', True, 'AppVM'),
    ('label', 'label', False, 'blue'),
    ('mac', 'str', True, '00:16:3e:5e:6c:00'),
    ('maxmem', 'int', True, SKIP),
    ('memory', 'int', False, '800'),
    ('name', 'str', False, 'work'),
    ('provides_network', 'bool', True, 'False'),
    ('qid', 'int', False, '4'),
    ('qrexec_timeout', 'int', True, '60'),
    ('shutdown_timeout', 'int', True, '60'),
    ('start_time', 'str', True, ''),
    ('stubdom_mem', 'int', True, ''),
    ('stubdom_uuid', 'str', True, ''),
    ('stubdom_xid', 'int', True, '-1'),
    ('template_for_dispvms', 'bool', True, 'False'),
    ('updateable', 'bool', True, 'False'),
    ('uuid', 'str', False, '9dfafb72-1385-4334-bac3-6a7d75d5769c'),
    ('vcpus', 'int', True, '2'),
    ('virt_mode', 'str', True, 'pvh'),
    ('visible_gateway', 'str', True, '10.137.0.2'),
    ('visible_gateway6', 'str', True, ''),
    ('visible_ip', 'str', True, '10.137.0.4'),
    ('visible_ip6', 'str', True, ''),
    ('visible_netmask', 'str', True, '255.255.255.255'),
    ('xid', 'int', True, '-1'),
    ('audiovm', 'vm', True, 'dom0'),
    ('bootmode', 'str', True, 'default'),
    ('default_dispvm', 'vm', True, 'default-dvm'),
    ('guivm', 'vm', True, 'dom0'),
    ('kernelopts', 'str', True, 'swiotlb=2048'),
    ('management_dispvm', 'vm', True, ''),
    ('netvm', 'vm', True, 'sys-net'),
    ('template', 'vm', False, 'fedora-42'),
]

# A few values of the DispVM disp1234 and the template (upstream samples).
DISP_EXPECTED = {
    'dispid': ('int', False, '1234'),
    'icon': ('str', True, 'dispvm-red'),
    'ip': ('str', True, '10.138.4.218'),
    'memory': ('int', True, '400'),
    'template': ('vm', False, 'default-dvm'),
    'netvm': ('vm', True, 'sys-net'),
    'klass': ('str', True, 'DispVM'),
    'auto_cleanup': ('bool', True, 'False'),
}

# Global properties (alphabetical: all load stage 3) with the example's values.
GLOBAL_EXPECTED = [
    ('check_updates_vm', 'bool', True, 'True'),
    ('clockvm', 'vm', False, 'sys-net'),
    ('default_audiovm', 'vm', True, 'dom0'),
    ('default_dispvm', 'vm', False, 'default-dvm'),
    ('default_guivm', 'vm', True, 'dom0'),
    ('default_kernel', 'str', False, '6.6.1-1.fc37'),
    ('default_netvm', 'vm', False, 'sys-net'),
    ('default_pool', 'str', True, 'varlibqubes'),
    ('default_pool_kernel', 'str', False, 'linux-kernel'),
    ('default_pool_private', 'str', True, 'varlibqubes'),
    ('default_pool_root', 'str', True, 'varlibqubes'),
    ('default_pool_volatile', 'str', True, 'varlibqubes'),
    ('default_qrexec_timeout', 'int', True, '60'),
    ('default_shutdown_timeout', 'int', True, '60'),
    ('default_template', 'vm', False, 'fedora-42'),
    ('management_dispvm', 'vm', True, ''),
    ('maxmem', 'int', True, SKIP),
    ('no_cpus', 'int', True, SKIP),
    ('stats_interval', 'int', True, '3'),
    ('updatevm', 'vm', False, 'sys-net'),
]


class TestExampleProperties(DaemonTestCase):
    QUBES_XML = harness.EXAMPLE_XML

    def compare(self, got, expected, what):
        got_names = [g[0] for g in got]
        exp_names = [e[0] for e in expected]
        self.assertEqual(got_names, exp_names, '%s: property names or order differ' % what)
        for g, e in zip(got, expected):
            g = tuple(g)
            if e[3] is SKIP:
                self.assertEqual(g[:3], e[:3], '%s: %s' % (what, e[0]))
                self.assertRegex(g[3], r'^[0-9]+$', '%s: %s is not a number' % (what, e[0]))
            else:
                self.assertEqual(g, e, '%s: property %s' % (what, e[0]))

    def test_list_properties_order(self):
        names = list(self.d.domain('work', 'ListProperties')[0])
        self.assertEqual(names, [e[0] for e in WORK_EXPECTED],
                         'ListProperties of an AppVM is not in Admin API order (vector 7.2.12)')

    def test_get_all_properties_appvm(self):
        got = self.d.domain('work', 'GetAllProperties')[0]
        self.compare(got, WORK_EXPECTED, 'GetAllProperties of work')

    def test_get_all_properties_text(self):
        """GetAllPropertiesText (admin.*.property.GetAll's payload, written by qubesd) says what
        GetAllProperties says, line for line, for every qube and the Manager; a backslash in a
        value is doubled."""
        def lines(props):
            return ''.join('%s default=%s type=%s %s\n' % (n, 'True' if d else 'False', t,
                                                            v.replace('\\', '\\\\').replace('\n', '\\n'))
                           for n, t, d, v in props)

        self.d.domain('work', 'SetProperty', 'ss', ('kernelopts', 'quiet x=a\\b'))
        for row in self.d.manager('ListDomains')[0]:
            text = bytes(self.d.domain(row[0], 'GetAllPropertiesText')[0]).decode()
            self.assertEqual(text, lines(self.d.domain(row[0], 'GetAllProperties')[0]), row[0])
        self.assertIn('\nkernelopts default=False type=str quiet x=a\\\\b\n',
                      bytes(self.d.domain('work', 'GetAllPropertiesText')[0]).decode())
        self.assertEqual(bytes(self.d.manager('GetAllPropertiesText')[0]).decode(),
                         lines(self.d.manager('GetAllProperties')[0]))

    def test_get_property_each(self):
        for name, typ, is_default, value in WORK_EXPECTED:
            got = self.d.get_property('work', name)
            if value is SKIP:
                self.assertEqual(got[:2], (typ, is_default), name)
            else:
                self.assertEqual(got, (typ, is_default, value), 'GetProperty %s of work' % name)

    def test_dispvm(self):
        for name, exp in DISP_EXPECTED.items():
            self.assertEqual(self.d.get_property('disp1234', name), exp, 'GetProperty %s of disp1234' % name)

    def test_template_and_dom0(self):
        self.assertEqual(self.d.get_property('fedora-42', 'klass'), ('str', True, 'TemplateVM'))
        self.assertEqual(self.d.get_property('fedora-42', 'label'), ('label', False, 'black'))
        self.assertEqual(self.d.get_property('dom0', 'qid'), ('int', True, '0'))
        self.assertEqual(self.d.get_property('dom0', 'uuid'),
                         ('str', True, '00000000-0000-0000-0000-000000000000'))
        self.assertEqual(self.d.get_property('dom0', 'icon'), ('str', True, 'adminvm-black'))
        self.assertEqual(self.d.get_property('dom0', 'default_dispvm'), ('vm', True, 'default-dvm'))
        self.assertEqual(self.d.get_property('sys-net', 'netvm'), ('vm', False, ''),
                         'netvm explicitly set to None reads default=False with an empty value')
        self.assertEqual(self.d.get_property('sys-net', 'provides_network'), ('bool', False, 'True'))

    def test_global_properties(self):
        got = self.d.manager('GetAllProperties')[0]
        self.compare(got, GLOBAL_EXPECTED, 'Manager GetAllProperties')
        names = list(self.d.manager('ListProperties')[0])
        self.assertEqual(names, [e[0] for e in GLOBAL_EXPECTED])

    def test_get_property_default(self):
        has_default, _, value = self.d.domain('work', 'GetPropertyDefault', 's', ('template',))
        self.assertEqual((has_default, value), (False, ''), 'template has no default (vector 7.2.6)')
        self.assertEqual(tuple(self.d.domain('work', 'GetPropertyDefault', 's', ('vcpus',))),
                         (True, 'int', '2'))
        self.assertEqual(tuple(self.d.domain('work', 'GetPropertyDefault', 's', ('memory',))),
                         (True, 'int', '400'))

    def test_help(self):
        text = self.d.domain('work', 'GetPropertyHelp', 's', ('label',))[0]
        self.assertTrue(text.strip(), 'label has no help text')

    def test_dbus_properties_match(self):
        path = domain_path('work')
        qvm = self.d.dbus_get_all(path, harness.QUBESVM_IFACE)
        self.assertEqual(qvm['Memory'], 800)
        self.assertEqual(qvm['Vcpus'], 2)
        self.assertEqual(qvm['Netvm'], domain_path('sys-net'))
        self.assertEqual(qvm['ManagementDispvm'], '/')
        self.assertEqual(qvm['Ip'], '10.137.0.4')
        self.assertIs(qvm['Autostart'], False)
        self.assertEqual(qvm['BackupTimestamp'], 0, 'an int None reads 0 on D-Bus')
        dom = self.d.dbus_get_all(path, harness.DOMAIN_IFACE)
        self.assertEqual(dom['Name'], 'work')
        self.assertEqual(dom['Qid'], 4)
        self.assertEqual(dom['Uuid'], '9dfafb72-1385-4334-bac3-6a7d75d5769c')
        self.assertEqual(dom['Klass'], 'AppVM')
        self.assertEqual(dom['Label'], label_path('blue'))
        self.assertEqual(dom['Icon'], 'appvm-blue')
        self.assertIs(dom['IncludeInBackups'], True)
        self.assertEqual(dom['PowerState'], 'Halted')
        self.assertEqual(self.d.dbus_get(path, 'org.qubes_os.Admin1.AppVM', 'Template'),
                         domain_path('fedora-42'))
        self.assertEqual(self.d.dbus_get(domain_path('disp1234'), 'org.qubes_os.Admin1.DispVM', 'Dispid'),
                         1234)

    def test_get_managed_objects(self):
        objs = self.d.call(harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager',
                           'GetManagedObjects')[0]
        for name in ('dom0', 'fedora-42', 'sys-net', 'default-dvm', 'work', 'disp1234'):
            self.assertIn(domain_path(name), objs, 'GetManagedObjects lacks %s' % name)
        work = objs[domain_path('work')]
        self.assertEqual(work[harness.DOMAIN_IFACE]['Name'], 'work')
        # a qube's Domain interface is in the snapshot, its others named and read on demand
        # (docs/dbus-api.md, "The snapshot")
        self.assertEqual(work[harness.QUBESVM_IFACE], {})
        everything = self.d.dbus_get_all(domain_path('work'), harness.QUBESVM_IFACE)
        self.assertEqual(everything['Netvm'], domain_path('sys-net'))
        self.assertEqual(everything['Memory'], 800)


if __name__ == '__main__':
    harness.main()
