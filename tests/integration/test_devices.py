#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Devices (spec/devices.md) on this machine's real sysfs: dom0's PCI devices as objects, loop
devices made with losetup appearing and vanishing without polling, assignments kept in
qubes.xml, attach and detach on a running qube (libvirt's test driver: recorded, docs/daemon.md),
a device deleted underneath reported detached, a PCI attach refused with libvirt's reason, and
required devices at start. Over D-Bus, through both doors of the shim, and with upstream's real
qvm-device / qvm-block / qvm-pci; every class once per route to qubesd (the bus, and qubesd's
private socket: harness.over_each_route).

Loop devices need root and /dev/loop-control: those tests skip with the reason otherwise. The
qvm-* tests need upstream's client in ../shared/qubesadmin (or $QUBESADMIN_QVM)."""

import os
import re
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, SignalCollector, domain_path, device_path  # noqa: E402
import test_shim  # noqa: E402

E = harness.ERROR_PREFIX
DD = 'org.qubes_os.Admin1.DomainDevices'
DEV = 'org.qubes_os.Admin1.Device'
OM = 'org.freedesktop.DBus.ObjectManager'


def loop_unavailable():
    if os.geteuid() != 0:
        return 'loop devices need root'
    if not os.path.exists('/dev/loop-control'):
        return 'no /dev/loop-control'
    return None


class Loop:
    """A loop device over a small file of our own (other users' loop devices are left alone)."""

    def __init__(self, directory, name='disk.img', size=4 << 20):
        self.file = os.path.join(directory, name)
        with open(self.file, 'wb') as f:
            f.truncate(size)
        r = subprocess.run(['losetup', '-f', '--show', self.file], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        if r.returncode != 0:
            raise unittest.SkipTest('losetup failed: %s' % r.stderr.strip())
        self.node = r.stdout.strip()
        self.port = os.path.basename(self.node)
        self.number = re.sub(r'^loop', '', self.port)
        self.device_id = ':' + self.number
        self.attached = True

    def delete(self):
        if self.attached:
            subprocess.run(['losetup', '-d', self.node], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
            self.attached = False


def items_of(line):
    """The key='value' items of an Admin API line, as (key, value) pairs in order."""
    return [(k, v.replace("\\'", "'")) for k, v in re.findall(r"(\S+?)='((?:[^'\\]|\\')*)'", line)]


class DevicesTestCase(DaemonTestCase):
    def dd(self, qube, method, signature=None, args=()):
        return self.d.call(domain_path(qube), DD, method, signature, args)

    def events_of(self, collector, qube=None, prefix='device-'):
        collector.pump(0.05)
        out = [(s[3][1], s[3][2], dict(s[3][3])) for s in collector.signals if s[2] == 'Event']
        return [e for e in out if e[1].startswith(prefix) and (qube is None or e[0] == qube)]

    @staticmethod
    def reset(collector):
        collector.pump(0.05)  # what is queued belongs to before
        collector.signals.clear()

    def loop(self, name='disk.img'):
        reason = loop_unavailable()
        if reason:
            self.skipTest(reason)
        lp = Loop(self.d.dir, name)
        self.addCleanup(lp.delete)
        return lp

    def wait_object(self, path, present=True, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            objs = self.d.call(harness.ROOT_PATH, OM, 'GetManagedObjects')[0]
            if (path in objs) == present:
                return objs.get(path)
            self.assertLess(time.monotonic(), deadline, '%s did not %s' % (path, 'appear' if present else 'go'))
            time.sleep(0.02)

    def xml_devices(self, qube):
        root = harness.parse_xml_file(self.d.xml_path)
        for dom in root.iter('domain'):
            names = [p.text for p in dom.iter('property') if p.get('name') == 'name']
            if (names and names[0] == qube) or (not names and qube == 'dom0'):
                return dom.findall('devices')
        raise AssertionError('no %s in qubes.xml' % qube)


@harness.over_each_route
class TestDevicesBus(DevicesTestCase):
    def test_pci_objects(self):
        """Every PCI device of this machine is an object with upstream's identity forms."""
        sysfs = sorted(os.listdir('/sys/bus/pci/devices'))
        objs = self.d.call(harness.ROOT_PATH, OM, 'GetManagedObjects')[0]
        devs = {p: o[DEV] for p, o in objs.items() if p.startswith(harness.ROOT_PATH + '/device/pci/')}
        self.assertEqual(len(devs), len(sysfs), sorted(devs))
        self.assertEqual(sorted(d['Data']['sbdf'] for d in devs.values()), sysfs)
        for path, d in devs.items():
            self.assertEqual(path, device_path('pci', 'dom0', d['PortId']))
            self.assertEqual((d['DeviceClass'], d['BackendName'], d['Backend']), ('pci', 'dom0', domain_path('dom0')))
            with open('/sys/bus/pci/devices/%s/vendor' % d['Data']['sbdf']) as f:
                vendor = f.read().strip()[2:]
            with open('/sys/bus/pci/devices/%s/class' % d['Data']['sbdf']) as f:
                klass = f.read().strip()[2:]
            self.assertRegex(d['PortId'], r'^([0-9a-f]{4}_)?[0-9a-f]{2}_[0-9a-f]{2}\.[0-7](-[0-9a-f]{2}_[0-9a-f]{2}\.[0-7])*$')
            self.assertEqual(d['Interfaces'], 'p' + klass)
            self.assertRegex(d['DeviceId'], '^%s:[0-9a-f]{4}::p%s$' % (vendor, klass))
            self.assertEqual(d['AttachedTo'], '/')
        # the same through the listing method, in port order
        listed = self.dd('dom0', 'ListAvailableDevices', 's', ('pci',))[0]
        self.assertEqual([p for p, _, _ in listed], sorted(d['PortId'] for d in devs.values()))
        port, devid, items = listed[0]
        self.assertEqual([k for k, _ in items][:4], ['device_id', 'port_id', 'devclass', 'backend_domain'])
        self.assertEqual(items[-1], ('_sbdf', devs[device_path('pci', 'dom0', port)]['Data']['sbdf']))
        self.assertDBusError(E + 'ProtocolError', self.dd, 'dom0', 'ListAvailableDevices', 's', ('usb',),
                             message='^No such device class: usb$')

    def test_loop_hotplug(self):
        """losetup -f makes a device object and events; losetup -d takes them away (no polling)."""
        om = SignalCollector(self.d.conn, interface=OM)
        ev = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(om.close)
        self.addCleanup(ev.close)
        lp = self.loop()
        path = device_path('block', 'dom0', lp.port)
        self.assertTrue(om.wait_for(lambda s: any(x[2] == 'InterfacesAdded' and x[3][0] == path for x in s)),
                        'no InterfacesAdded for %s' % path)
        props = self.d.dbus_get_all(path, DEV)
        self.assertEqual((props['PortId'], props['DeviceId'], props['Name'], props['Node']),
                         (lp.port, lp.device_id, lp.file, lp.node))
        self.assertEqual((props['Size'], props['ReadOnly'], props['Interfaces']), (4 << 20, False, 'b******'))
        self.assertTrue(ev.wait_for(lambda s: any(x[3][2] == 'device-list-change:block' for x in s)))
        names = [(q, n, a) for q, n, a in self.events_of(ev)]
        self.assertIn(('dom0', 'device-added:block', {'device': 'dom0:%s:%s' % (lp.port, lp.device_id)}), names)
        listed = dict((p, items) for p, _, items in self.dd('dom0', 'ListAvailableDevices', 's', ('block',))[0])
        self.assertIn(('name', lp.file), listed[lp.port])

        self.reset(ev)
        lp.delete()
        self.assertTrue(om.wait_for(lambda s: any(x[2] == 'InterfacesRemoved' and x[3][0] == path for x in s)),
                        'no InterfacesRemoved for %s' % path)
        self.assertTrue(ev.wait_for(lambda s: any(x[3][2] == 'device-removed:block' for x in s)))
        self.assertIn(('dom0', 'device-removed:block', {'port': 'dom0:' + lp.port}), self.events_of(ev))
        self.assertNotIn(lp.port, [p for p, _, _ in self.dd('dom0', 'ListAvailableDevices', 's', ('block',))[0]])

    def test_assignments_persist(self):
        """Assign, set the mode, unassign: events, qubes.xml as upstream lays it out, a restart."""
        ev = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(ev.close)
        self.dd('work', 'AssignDevice', 'sssssa(ss)s',
                ('block', 'dom0', 'sdz', ':None', 'auto-attach', [('read-only', 'yes')], 'work'))
        self.dd('work', 'AssignDevice', 'sssssa(ss)s', ('pci', 'dom0', '00_1f.6', '*', 'required', [], ''))
        self.assertEqual(self.events_of(ev, 'work'), [
            ('work', 'device-pre-assign:block', {'device': 'dom0:sdz::None', 'options': "{'read-only': 'yes'}"}),
            ('work', 'device-assign:block', {'device': 'dom0:sdz::None', 'options': "{'read-only': 'yes'}"}),
            ('work', 'device-pre-assign:pci', {'device': 'dom0:00_1f.6:*', 'options': '{}'}),
            ('work', 'device-assign:pci', {'device': 'dom0:00_1f.6:*', 'options': '{}'}),
        ])
        self.assertEqual(self.dd('work', 'ListAssignedDevices', 's', ('block',))[0],
                         [('dom0', 'sdz', ':None', 'auto-attach', 'work', [('read-only', 'yes')])])
        # a PCI device makes the qube hvm by default
        self.assertEqual(self.d.get_property('work', 'virt_mode')[1:], (True, 'hvm'))
        self.assertDBusError(E + 'DeviceAlreadyAssigned', self.dd, 'work', 'AssignDevice', 'sssssa(ss)s',
                             ('block', 'dom0', 'sdz', ':None', 'required', [], 'work'),
                             message="^'block device dom0:sdz::None already assigned to work'$")
        self.assertDBusError(E + 'QubesValueError', self.dd, 'work', 'AssignDevice', 'sssssa(ss)s',
                             ('block', 'dom0', 'sdy', '*', 'manual', [], 'work'),
                             message='^Only auto-attachable devices can be assigned.$')
        self.assertDBusError(E + 'QubesVMNotFoundError', self.dd, 'work', 'AssignDevice', 'sssssa(ss)s',
                             ('block', 'nosuch', 'sdy', '*', 'required', [], 'work'))
        self.assertDBusError(E + 'ProtocolError', self.dd, 'work', 'AssignDevice', 'sssssa(ss)s',
                             ('block', 'dom0', 'sd y', '*', 'required', [('a', 'new\nline')], 'work'))

        # qubes.xml: the classes in the order first used, then volume-config
        devices = self.xml_devices('work')
        self.assertEqual([d.get('class') for d in devices], ['block', 'pci'])
        dev = devices[0].find('device')
        self.assertEqual(list(dev.attrib.items()), [('backend-domain', 'dom0'), ('id', 'sdz'),
                                                   ('mode', 'auto-attach'), ('identity', ':None')])
        self.assertEqual([(o.get('name'), o.text) for o in dev.findall('option')], [('read-only', 'yes')])
        with open(self.d.xml_path) as f:
            text = f.read()
        self.assertIn('      <devices class="block">\n        <device backend-domain="dom0" id="sdz" '
                      'mode="auto-attach" identity=":None">\n          <option name="read-only">yes</option>\n'
                      '        </device>\n      </devices>\n      <devices class="pci">\n', text)

        self.reset(ev)
        self.dd('work', 'SetDeviceAssignmentMode', 'sssss', ('block', 'dom0', 'sdz', ':None', 'required'))
        self.dd('work', 'SetDeviceAssignmentMode', 'sssss', ('block', 'dom0', 'sdz', ':None', 'required'))
        self.assertEqual([e[1] for e in self.events_of(ev, 'work')],
                         ['device-pre-assign:block', 'device-assignment-changed:block'])
        self.assertDBusError(E + 'QubesUnrecognizedDeviceAssignmentMode', self.dd, 'work', 'SetDeviceAssignmentMode',
                             'sssss', ('block', 'dom0', 'sdz', ':None', 'manual'))

        # the same after a restart (and the pci one, whose frontend was not recorded, has one now)
        self.d.restart()
        self.assertEqual(self.dd('work', 'ListAssignedDevices', 's', ('block',))[0],
                         [('dom0', 'sdz', ':None', 'required', 'work', [('read-only', 'yes')])])
        self.assertEqual(self.dd('work', 'ListAssignedDevices', 's', ('pci',))[0],
                         [('dom0', '00_1f.6', '*', 'required', 'work', [])])
        ev2 = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(ev2.close)
        self.dd('work', 'UnassignDevice', 'ssss', ('block', 'dom0', 'sdz', ':None'))
        self.assertEqual(self.events_of(ev2, 'work'),
                         [('work', 'device-unassign:block', {'device': 'dom0:sdz::None'})])
        self.assertDBusError(E + 'DeviceNotAssigned', self.dd, 'work', 'UnassignDevice', 'ssss',
                             ('block', 'dom0', 'sdz', ':None'))
        self.assertEqual(self.dd('work', 'ListAssignedDevices', 's', ('block',))[0], [])
        # an element of the class stays (upstream writes the classes it used, even empty)
        self.assertEqual([d.get('class') for d in self.xml_devices('work')], ['block', 'pci'])
        self.assertEqual(len(self.xml_devices('work')[0]), 0)

    def test_attach_detach(self):
        """Attach to a running qube, listed and announced; detach; a deleted loop is detached."""
        lp = self.loop()
        path = device_path('block', 'dom0', lp.port)
        self.wait_object(path)
        self.assertDBusError(E + 'QubesVMNotRunningError', self.dd, 'personal', 'AttachDevice', 'ssssa(ss)s',
                             ('block', 'dom0', lp.port, '*', [], ''),
                             message=r'^VM not running, cannot attach device, do you mean `assign`\?$')
        self.d.domain('personal', 'Start')
        # the class's options: checked before anything happens
        self.assertDBusError(E + 'QubesValueError', self.dd, 'personal', 'AttachDevice', 'ssssa(ss)s',
                             ('block', 'dom0', lp.port, '*', [('mode', 'x')], ''), message='^Unsupported option mode$')
        self.assertDBusError(E + 'QubesValueError', self.dd, 'personal', 'AttachDevice', 'ssssa(ss)s',
                             ('block', 'dom0', lp.port, '*', [('frontend-dev', 'hda')], ''),
                             message='^Invalid frontend-dev option value: hda$')
        ev = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(ev.close)
        self.dd('personal', 'AttachDevice', 'ssssa(ss)s', ('block', 'dom0', lp.port, '*', [('read-only', 'yes')], ''))
        dev = 'dom0:%s:%s' % (lp.port, lp.device_id)
        opts = "{'read-only': 'yes', 'frontend-dev': 'xvdi'}"
        self.assertEqual(self.events_of(ev, 'personal'), [
            ('personal', 'device-pre-attach:block', {'device': dev, 'options': "{'read-only': 'yes'}"}),
            ('personal', 'device-attach:block', {'device': dev, 'options': opts}),
        ])
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('block',))[0],
                         [('dom0', lp.port, lp.device_id, 'manual', 'personal',
                           [('read-only', 'yes'), ('frontend-dev', 'xvdi')])])
        self.assertEqual(self.d.dbus_get(path, DEV, 'AttachedTo'), domain_path('personal'))
        # once only, and to one qube
        self.assertDBusError(E + 'DeviceAlreadyAttached', self.dd, 'personal', 'AttachDevice', 'ssssa(ss)s',
                             ('block', 'dom0', lp.port, '*', [], ''),
                             message="^'block device %s already attached to personal'$" % dev)
        self.assertDBusError(E + 'ProtocolError', self.dd, 'personal', 'AttachDevice', 'ssssa(ss)s',
                             ('block', 'dom0', 'loop255', '*', [], ''),
                             message='^block device not recognized in loop255 port.$')
        self.assertDBusError(E + 'ProtocolError', self.dd, 'personal', 'AttachDevice', 'ssssa(ss)s',
                             ('block', 'dom0', lp.port, ':999', [], ''),
                             message='^Cannot attach ambiguous block device.$')

        self.reset(ev)
        self.dd('personal', 'DetachDevice', 'sss', ('block', 'dom0', lp.port))
        self.assertEqual(self.events_of(ev, 'personal'), [
            ('personal', 'device-pre-detach:block', {'port': 'dom0:' + lp.port}),
            ('personal', 'device-detach:block', {'port': 'dom0:' + lp.port}),
        ])
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('block',))[0], [])
        self.assertEqual(self.d.dbus_get(path, DEV, 'AttachedTo'), '/')
        self.assertDBusError(E + 'DeviceNotAssigned', self.dd, 'personal', 'DetachDevice', 'sss',
                             ('block', 'dom0', lp.port), message="^'block device %s not attached to personal'$" % lp.port)

        # a device deleted while attached is reported detached
        self.dd('personal', 'AttachDevice', 'ssssa(ss)s', ('block', 'dom0', lp.port, lp.device_id, [], ''))
        self.reset(ev)
        lp.delete()
        self.assertTrue(ev.wait_for(lambda s: any(x[3][2] == 'device-detach:block' for x in s)),
                        'no device-detach after losetup -d:\n' + self.d.log_tail())
        self.assertEqual(self.events_of(ev, 'personal'),
                         [('personal', 'device-detach:block', {'port': 'dom0:' + lp.port})])
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('block',))[0], [])
        self.wait_object(path, present=False)
        # the qube's story in the log (journalctl QUBES_VM=personal)
        port = 'dom0:' + lp.port
        self.assertEqual([line for line in self.d.log_tail(400).splitlines() if port in line], [
            'Attached the block device %s to personal.' % port,
            'Detached the block device %s from personal.' % port,
            'Attached the block device %s to personal.' % port,
            'The block device %s attached to personal went away.' % port,
        ])

    def test_auto_attach_on_hotplug(self):
        """A device that appears goes to the running qube whose assignment names it."""
        reason = loop_unavailable()
        if reason:
            self.skipTest(reason)
        node = subprocess.run(['losetup', '-f'], stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
        port = os.path.basename(node)
        self.d.domain('personal', 'Start')
        devid = ':' + port[4:]
        # the exact identity: Attached then shows the assignment itself (one with '*' is not
        # equal to the device, and shows as manual, as upstream)
        self.dd('personal', 'AssignDevice', 'sssssa(ss)s',
                ('block', 'dom0', port, devid, 'auto-attach', [], 'personal'))
        ev = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(ev.close)
        img = os.path.join(self.d.dir, 'auto.img')
        with open(img, 'wb') as f:
            f.truncate(1 << 20)
        r = subprocess.run(['losetup', node, img], stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            self.skipTest('%s was taken meanwhile: %s' % (node, r.stderr.strip()))
        self.addCleanup(subprocess.run, ['losetup', '-d', node], stderr=subprocess.DEVNULL)
        self.assertTrue(ev.wait_for(lambda s: any(x[3][1] == 'personal' and x[3][2] == 'device-attach:block'
                                                  for x in s)), 'not attached:\n' + self.d.log_tail())
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('block',))[0],
                         [('dom0', port, devid, 'auto-attach', 'personal', [])])

    def test_pci_attach_refused(self):
        """No IOMMU here (and no hot-plug in the test driver): a clean refusal with libvirt's reason."""
        port = harness.first_pci_port()
        self.d.set_property('personal', 'virt_mode', 'hvm')
        self.d.domain('personal', 'Start')
        ev = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(ev.close)
        for _ in range(2):  # nothing half-done stays behind: the second try fails the same way
            e = self.assertDBusError(E + 'QubesException', self.dd, 'personal', 'AttachDevice', 'ssssa(ss)s',
                                     ('pci', 'dom0', port, '*', [], ''))
            self.assertRegex(harness.dbus_error_message(e),
                             r"^Failed to attach pci device dom0:%s:\S+ to personal: .*not supported"
                             % re.escape(port))
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('pci',))[0], [])
        self.assertEqual([e[1] for e in self.events_of(ev, 'personal')], ['device-pre-attach:pci'] * 2)
        self.assertEqual(self.d.dbus_get(device_path('pci', 'dom0', port), DEV, 'AttachedTo'), '/')
        # pvh qubes cannot have PCI devices at all
        self.d.set_property('work', 'virt_mode', 'pvh')
        self.assertDBusError(E + 'QubesException', self.dd, 'work', 'AssignDevice', 'sssssa(ss)s',
                             ('pci', 'dom0', port, '*', 'required', [], ''),
                             message="^Can't assign PCI device to VM in pvh mode$")

    def test_required_at_start(self):
        """A required device must be there for the start; it is attached from the start on."""
        self.dd('personal', 'AssignDevice', 'sssssa(ss)s', ('pci', 'dom0', '7f_1f.7', '*', 'required', [], 'personal'))
        self.assertDBusError(E + 'QubesException', self.d.domain, 'personal', 'Start',
                             message=r'^Start failed: required pci device dom0:7f_1f\.7:\* is not available$')
        self.assertEqual(self.d.dbus_get(domain_path('personal'), harness.DOMAIN_IFACE, 'PowerState'), 'Halted')
        self.dd('personal', 'UnassignDevice', 'ssss', ('pci', 'dom0', '7f_1f.7', '*'))
        lp = self.loop()
        self.wait_object(device_path('block', 'dom0', lp.port))
        self.dd('personal', 'AssignDevice', 'sssssa(ss)s',
                ('block', 'dom0', lp.port, lp.device_id, 'required', [('frontend-dev', 'xvdk')], 'personal'))
        ev = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(ev.close)
        self.d.domain('personal', 'Start')
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('block',))[0],
                         [('dom0', lp.port, lp.device_id, 'required', 'personal', [('frontend-dev', 'xvdk')])])
        names = [e[1] for e in self.events_of(ev, 'personal', prefix='')]
        self.assertLess(names.index('domain-start'), names.index('device-attach:block'))
        self.assertDBusError(E + 'QubesVMNotHaltedError', self.dd, 'personal', 'DetachDevice', 'sss',
                             ('block', 'dom0', lp.port))
        # stopped: nothing is attached any more
        self.d.domain('personal', 'Kill')
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('block',))[0], [])
        self.assertEqual(self.d.dbus_get(device_path('block', 'dom0', lp.port), DEV, 'AttachedTo'), '/')

    def test_other_backend(self):
        """A running qube publishes its block devices (QubesDB's layout); they are listed as
        upstream lists them, go when it stops, and need Xen to be attached."""
        self.assertDBusError(E + 'QubesVMNotRunningError', self.dd, 'sys-net', 'PublishDevices', 'sa(sstbs)',
                             ('block', []))
        self.d.domain('sys-net', 'Start')
        ev = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(ev.close)
        self.dd('sys-net', 'PublishDevices', 'sa(sstbs)', ('block', [
            ('sda', 'QEMU HARDDISK (sda)', 1048576, False, ''),
            ('sda1', 'part\none', 4096, True, 'sda'),
            ('Not_Allowed', 'skipped', 0, False, ''),
        ]))
        listed = self.dd('sys-net', 'ListAvailableDevices', 's', ('block',))[0]
        self.assertEqual([(p, i) for p, i, _ in listed], [('sda', ':None'), ('sda1', ':None:1')])
        self.assertEqual(listed[1][2], [('device_id', ':None:1'), ('port_id', 'sda1'), ('devclass', 'block'),
                                        ('backend_domain', 'sys-net'), ('name', 'part_one'),
                                        ('interfaces', 'b******'), ('parent_port_id', 'sda'),
                                        ('parent_devclass', 'block')])
        props = self.d.dbus_get_all(device_path('block', 'sys-net', 'sda1'), DEV)
        self.assertEqual((props['Backend'], props['Size'], props['ReadOnly']),
                         (domain_path('sys-net'), 4096, True))
        names = [(q, n) for q, n, _ in self.events_of(ev)]
        self.assertEqual(names, [('sys-net', 'device-added:block'), ('sys-net', 'device-added:block'),
                                 ('sys-net', 'device-list-change:block')])
        # libvirt's test driver (and QEMU) cannot hand one qube's disk to another
        self.d.domain('personal', 'Start')
        self.assertDBusError(E + 'QubesException', self.dd, 'personal', 'AttachDevice', 'ssssa(ss)s',
                             ('block', 'sys-net', 'sda', '*', [], ''),
                             message=r'^Devices exposed by sys-net cannot be attached on this hypervisor \(test\)')
        # only the qube itself (or dom0) publishes for it
        other = harness.Gio.DBusConnection.new_for_address_sync(
            self.d.address, harness.Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            harness.Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.addCleanup(other.close_sync, None)
        other.call_sync(harness.BUS_NAME, harness.ROOT_PATH, harness.MANAGER_IFACE, 'SetCallerIdentity',
                        harness.GLib.Variant('(s)', ('work',)), None, 0, 10000, None)
        try:
            other.call_sync(harness.BUS_NAME, domain_path('sys-net'), DD, 'PublishDevices',
                            harness.GLib.Variant('(sa(sstbs))', ('block', [])), None, 0, 10000, None)
            self.fail('work published for sys-net')
        except harness.GLib.Error as e:
            self.assertEqual(harness.dbus_error_name(e), E + 'PermissionDenied')
        self.assertEqual(len(self.dd('sys-net', 'ListAvailableDevices', 's', ('block',))[0]), 2)
        # stopped: gone
        self.reset(ev)
        self.d.domain('sys-net', 'Kill')
        self.assertEqual(self.dd('sys-net', 'ListAvailableDevices', 's', ('block',))[0], [])
        self.assertIn(('sys-net', 'device-removed:block', {'port': 'sys-net:sda1'}), self.events_of(ev))

    def test_denied(self):
        props = SignalCollector(self.d.conn, interface='org.freedesktop.DBus.Properties')
        self.addCleanup(props.close)
        self.dd('work', 'AddDeniedInterfaces', 's', ('u030101p0c0330',))
        self.assertEqual(self.d.dbus_get(domain_path('work'), DD, 'DeniedInterfaces'), ['p0c0330', 'u030101'])
        self.assertEqual(self.d.get_property('work', 'devices_denied'), ('str', False, 'p0c0330u030101'))
        self.assertTrue(props.wait_for(lambda s: any(x[3][0] == DD and 'DeniedInterfaces' in x[3][2] for x in s)))
        self.assertDBusError(E + 'ProtocolError', self.dd, 'work', 'AddDeniedInterfaces', 's', ('b******b******',),
                             message='^Duplicated device interfaces in payload.$')
        self.assertDBusError(E + 'ProtocolError', self.dd, 'work', 'AddDeniedInterfaces', 's', ('\u00e9abcdef',))
        self.dd('work', 'RemoveDeniedInterfaces', 's', ('all',))
        self.assertEqual(self.d.dbus_get(domain_path('work'), DD, 'DeniedInterfaces'), [])


@harness.over_each_route
class TestDevicesShim(DevicesTestCase):
    """The Admin API through both doors, with a loop device of this machine."""

    def setUp(self):
        super().setUp()
        self.shim = test_shim.find_shim()
        self.door = test_shim.SocketDoor(self.shim, self.d)
        self.addCleanup(self.door.stop)

    def both(self, request):
        """The reply through the socket door and the qrexec service door (they must agree)."""
        sock = self.door.call(request)
        status, svc, err = test_shim.service_call(self.shim, self.d, request)
        self.assertEqual(status, 0, err)
        self.assertEqual(sock, svc, 'the doors disagree on %r' % request)
        return sock

    def test_loop_through_both_doors(self):
        lp = self.loop('shim disk.img')
        self.wait_object(device_path('block', 'dom0', lp.port))
        reply = self.both(b'admin.vm.device.block.Available+%s dom0 name dom0\0' % lp.port.encode())
        want = ("0\0%s:%s device_id='%s' port_id='%s' devclass='block' backend_domain='dom0' name='%s' "
                "interfaces='b******'\n" % (lp.port, lp.device_id, lp.device_id, lp.port, lp.file))
        self.assertEqual(reply, want.encode())

        self.assertEqual(self.door.call(b'admin.vm.Start dom0 name personal\0'), b'0\0')
        qarg = 'dom0+%s+%s' % (lp.port, lp.device_id.replace(':', '+'))
        payload = ("device_id='%s' port_id='%s' devclass='block' backend_domain='dom0' mode='manual' "
                   "frontend_domain='personal' _read-only='yes'" % (lp.device_id, lp.port))
        self.assertEqual(self.door.call(('admin.vm.device.block.Attach+%s dom0 name personal\0%s'
                                         % (qarg, payload)).encode()), b'0\0')
        attached = ("0\0dom0+%s:%s device_id='%s' port_id='%s' devclass='block' backend_domain='dom0' "
                    "mode='manual' frontend_domain='personal' _read-only='yes' _frontend-dev='xvdi'\n"
                    % (lp.port, lp.device_id, lp.device_id, lp.port)).encode()
        self.assertEqual(self.both(b'admin.vm.device.block.Attached dom0 name personal\0'), attached)
        self.assertEqual(self.both(('admin.vm.device.block.Attached+dom0+%s dom0 name personal\0'
                                    % lp.port).encode()), attached)
        avail = self.both(b'admin.vm.device.block.Available+%s dom0 name dom0\0' % lp.port.encode())
        self.assertIn(b" attachment='personal' interfaces='b******'", avail)
        # through the service door this time
        status, out, err = test_shim.service_call(
            self.shim, self.d, ('admin.vm.device.block.Detach+%s dom0 name personal\0' % qarg).encode())
        self.assertEqual((status, out), (0, b'0\0'), err)
        self.assertEqual(self.both(b'admin.vm.device.block.Attached dom0 name personal\0'), b'0\0')


def find_qvm():
    path = os.environ.get('QUBESADMIN_QVM') or os.path.join(harness.SOURCE_DIR, '..', 'shared', 'qubesadmin', 'qvm')
    if not os.path.exists(path):
        raise unittest.SkipTest('upstream qubesadmin client not found (set QUBESADMIN_QVM)')
    return path


@harness.over_each_route
class TestDevicesQvmTools(DevicesTestCase):
    """What a user types: upstream's qvm-device, qvm-pci and qvm-block through the shim."""

    def setUp(self):
        self.qvm_path = find_qvm()
        super().setUp()
        self.door = test_shim.SocketDoor(test_shim.find_shim(), self.d)
        self.addCleanup(self.door.stop)

    # qvm-pci and qvm-block are upstream's qvm_device.main installed under those names (it reads
    # the class from its own name); the runner knows tools by module: start them as installed
    ALIASES = ('qvm-pci', 'qvm-block')
    ALIAS_RUNNER = (
        'import importlib.machinery, importlib.util, sys\n'
        'loader = importlib.machinery.SourceFileLoader("qvm_runner", sys.argv[1])\n'
        'runner = importlib.util.module_from_spec(importlib.util.spec_from_loader("qvm_runner", loader))\n'
        'loader.exec_module(runner)\n'
        'sys.argv = sys.argv[2:]\n'
        'import qubesadmin.tools.qvm_device as tool\n'
        'sys.exit(tool.main())\n')

    def qvm(self, *args, ok=True):
        env = dict(os.environ, QUBESD_SOCKET=self.door.path)
        if args[0] in self.ALIASES:
            cmd = ['/usr/bin/python3', '-c', self.ALIAS_RUNNER, self.qvm_path] + list(args)
        else:
            cmd = ['/usr/bin/python3', self.qvm_path] + list(args)
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
        if ok:
            self.assertEqual(r.returncode, 0, '%s: %s%s' % (' '.join(args), r.stdout, r.stderr))
        return r

    def rows(self, out):
        return [re.split(r'\s{2,}', line.strip()) for line in out.splitlines() if line.strip()]

    def test_pci_list_and_assign(self):
        port = harness.first_pci_port()
        out = self.qvm('qvm-device', 'pci', 'list').stdout
        rows = self.rows(out)
        self.assertEqual(len(rows), len(os.listdir('/sys/bus/pci/devices')), out)
        self.assertIn('dom0:' + port, [r[0] for r in rows])
        self.assertEqual(self.qvm('qvm-pci').stdout, out)
        # assign (qvm-pci assign is --required for PCI) and see it in --assignments
        self.qvm('qvm-pci', 'assign', '--required', 'work', 'dom0:' + port)
        out = self.qvm('qvm-device', 'pci', 'list', '--assignments').stdout
        self.assertTrue(any(r[0] == 'dom0:' + port and r[-1] == '*work (required)' for r in self.rows(out)), out)
        self.assertEqual(self.dd('work', 'ListAssignedDevices', 's', ('pci',))[0][0][:4],
                         ('dom0', port, self.d.dbus_get(device_path('pci', 'dom0', port), DEV, 'DeviceId'),
                          'required'))
        self.qvm('qvm-device', 'pci', 'unassign', 'work', 'dom0:' + port)
        self.assertEqual(self.dd('work', 'ListAssignedDevices', 's', ('pci',))[0], [])
        # upstream's client refuses a manual PCI attach itself
        r = self.qvm('qvm-pci', 'attach', 'work', 'dom0:' + port, ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('PCI devices cannot be attached manually', r.stderr)

    def test_block_attach_detach(self):
        lp = self.loop('qvm disk.img')
        self.wait_object(device_path('block', 'dom0', lp.port))
        out = self.qvm('qvm-block').stdout
        row = [r for r in self.rows(out) if r[0] == 'dom0:' + lp.port]
        self.assertEqual(len(row), 1, out)
        self.assertIn(os.path.basename(lp.file), row[0][1])
        self.d.domain('personal', 'Start')
        self.qvm('qvm-block', 'attach', '--ro', 'personal', 'dom0:' + lp.port)
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('block',))[0],
                         [('dom0', lp.port, lp.device_id, 'manual', 'personal',
                           [('read-only', 'yes'), ('frontend-dev', 'xvdi')])])
        out = self.qvm('qvm-block', 'list').stdout
        row = [r for r in self.rows(out) if r[0] == 'dom0:' + lp.port][0]
        self.assertEqual(row[-1], 'personal (attached: read-only=yes, frontend-dev=xvdi)')
        self.qvm('qvm-device', 'block', 'detach', 'personal', 'dom0:' + lp.port)
        self.assertEqual(self.dd('personal', 'ListAttachedDevices', 's', ('block',))[0], [])
        # a persistent assignment, shown with its mode
        self.qvm('qvm-device', 'block', 'assign', 'work', 'dom0:' + lp.port)
        out = self.qvm('qvm-device', 'block', 'list', '--assignments').stdout
        self.assertTrue(any(r[0] == 'dom0:' + lp.port and r[-1] == '*work (auto-attach)'
                            for r in self.rows(out)), out)
        self.qvm('qvm-device', 'block', 'unassign', 'work', 'dom0:' + lp.port)
        self.assertEqual(self.dd('work', 'ListAssignedDevices', 's', ('block',))[0], [])


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
