#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The firewall enforced by the real libvirtd (qemu:///system, whose nwfilter driver the test
driver lacks): qubesd defines one network filter per qube, qubes-fw-<name>, with the qube's uuid,
its rules in order and a final drop; it is redefined when the rules change or expire, defined
again when qubesd starts, and undefined when the qube is removed. Read back with virsh
nwfilter-dumpxml. Needs root and libvirtd (scripts/ci-libvirt-setup); skipped otherwise, with the
reason. Runs under the system-test lock (it uses the machine's libvirtd)."""

import os
import shutil
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Daemon, domain_path  # noqa: E402

URI = 'qemu:///system'
FW = 'org.qubes_os.Admin1.Firewall'


def why_not_runnable():
    if os.geteuid() != 0:
        return 'needs root (qemu:///system)'
    if not shutil.which('virsh'):
        return 'virsh is not installed: run scripts/ci-libvirt-setup'
    r = subprocess.run(['virsh', '-c', URI, 'nwfilter-list'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    if r.returncode != 0:
        return 'libvirtd with network filters is not running (%s): run scripts/ci-libvirt-setup' % r.stderr.strip()
    return None


def virsh(*args, check=True):
    return subprocess.run(['virsh', '-c', URI] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=30, check=check)


class TestFirewallLibvirt(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = why_not_runnable()
        if reason:
            raise unittest.SkipTest(reason)

    def setUp(self):
        self.d = Daemon(harness.DEMO_XML, ['--libvirt-uri=' + URI])
        self.addCleanup(self.d.cleanup)
        self.addCleanup(self.undefine_ours)
        self.d.start()

    def undefine_ours(self):
        if self.d.proc is not None:
            self.d.stop()
        for name in ('work', 'personal', 'fwtemp', 'sys-net', 'sys-firewall', 'default-dvm', 'debian-12-xfce'):
            virsh('nwfilter-undefine', 'qubes-fw-' + name, check=False)

    def filter_xml(self, qube, timeout=10):
        """The filter as libvirt has it, once it exists (qubesd defines it on a worker)."""
        deadline = time.monotonic() + timeout
        while True:
            r = virsh('nwfilter-dumpxml', 'qubes-fw-' + qube, check=False)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(r.returncode, 0, r.stderr)
        return ET.fromstring(r.stdout)

    @staticmethod
    def rules_of(root):
        out = []
        for rule in root.findall('rule'):
            (el,) = list(rule)
            out.append((rule.get('action'), rule.get('direction'), el.tag, dict(el.attrib)))
        return out

    def wait_rules(self, qube, want, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            got = self.rules_of(self.filter_xml(qube))
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def set_rules(self, qube, rules):
        self.d.call(domain_path(qube), FW, 'SetRules', 'aa{ss}', (rules,))

    FINAL = [('drop', 'out', 'all', {}), ('drop', 'out', 'all-ipv6', {})]

    def test_filter_defined_and_read_back(self):
        uuid = self.d.get_property('work', 'uuid')[2]
        # defined at start: a qube without rules accepts everything
        root = self.filter_xml('work')
        self.assertEqual(root.get('name'), 'qubes-fw-work')
        self.assertEqual(root.findtext('uuid'), uuid)
        self.assertEqual(self.rules_of(root), [('accept', 'out', 'all', {}), ('accept', 'out', 'all-ipv6', {})]
                         + self.FINAL)
        # the rules in order, then the drop of everything else
        self.set_rules('work', [
            {'action': 'accept', 'proto': 'tcp', 'dsthost': '192.168.0.0/24', 'dstports': '443'},
            {'action': 'drop', 'dst6': '2001:db8::/32', 'proto': 'udp', 'dstports': '1000-2000'},
            {'action': 'accept', 'proto': 'icmp', 'icmptype': '8'},
            {'action': 'accept', 'specialtarget': 'dns'},
        ])
        want = [
            ('accept', 'out', 'tcp', {'dstipaddr': '192.168.0.0', 'dstipmask': '24', 'dstportstart': '443',
                                      'dstportend': '443'}),
            ('drop', 'out', 'udp-ipv6', {'dstipaddr': '2001:db8::', 'dstipmask': '32', 'dstportstart': '1000',
                                         'dstportend': '2000'}),
            ('accept', 'out', 'icmp', {'type': '8'}),
            ('accept', 'out', 'icmpv6', {'type': '8'}),
            ('accept', 'out', 'udp', {'dstipaddr': '10.139.1.1', 'dstipmask': '32', 'dstportstart': '53',
                                      'dstportend': '53'}),
            ('accept', 'out', 'tcp', {'dstipaddr': '10.139.1.1', 'dstipmask': '32', 'dstportstart': '53',
                                      'dstportend': '53'}),
            ('accept', 'out', 'udp', {'dstipaddr': '10.139.1.2', 'dstipmask': '32', 'dstportstart': '53',
                                      'dstportend': '53'}),
            ('accept', 'out', 'tcp', {'dstipaddr': '10.139.1.2', 'dstipmask': '32', 'dstportstart': '53',
                                      'dstportend': '53'}),
        ] + self.FINAL
        self.assertEqual(self.wait_rules('work', want), want)
        # a rule that expires goes from the filter too
        self.set_rules('work', [{'action': 'accept', 'proto': 'tcp', 'dstports': '22',
                                 'expire': str(int(time.time()) + 3)}, {'action': 'drop'}])
        drop = [('drop', 'out', 'all', {}), ('drop', 'out', 'all-ipv6', {})] + self.FINAL
        ssh = [('accept', 'out', 'tcp', {'dstportstart': '22', 'dstportend': '22'}),
               ('accept', 'out', 'tcp-ipv6', {'dstportstart': '22', 'dstportend': '22'})]
        self.assertEqual(self.wait_rules('work', ssh + drop, timeout=2), ssh + drop)
        self.assertEqual(self.wait_rules('work', drop, timeout=10), drop)

    def test_rules_set_in_a_row_end_as_the_last(self):
        """Rules set many times in a row: the filter ends with the last ones (the updates of one
        qube reach libvirtd one after another, never an older one last)."""
        ssh = [{'action': 'accept', 'proto': 'tcp', 'dstports': '22'}, {'action': 'drop'}]
        web = [{'action': 'accept', 'proto': 'tcp', 'dstports': '443'}, {'action': 'drop'}]
        for i in range(30):
            self.set_rules('work', ssh if i % 2 else web)
        want = [('accept', 'out', 'tcp', {'dstportstart': '22', 'dstportend': '22'}),
                ('accept', 'out', 'tcp-ipv6', {'dstportstart': '22', 'dstportend': '22'}),
                ('drop', 'out', 'all', {}), ('drop', 'out', 'all-ipv6', {})] + self.FINAL
        self.assertEqual(self.wait_rules('work', want), want)
        time.sleep(1)  # nothing older arrives after it
        self.assertEqual(self.rules_of(self.filter_xml('work')), want)

    def test_restart_and_remove(self):
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'fwtemp', 'red', '', {}))
        self.set_rules('fwtemp', [{'action': 'drop'}])
        want = [('drop', 'out', 'all', {}), ('drop', 'out', 'all-ipv6', {})] + self.FINAL
        self.assertEqual(self.wait_rules('fwtemp', want), want)
        # gone from libvirt behind qubesd's back: defined again when qubesd starts
        virsh('nwfilter-undefine', 'qubes-fw-fwtemp')
        self.d.restart()
        self.assertEqual(self.wait_rules('fwtemp', want), want)
        # removed with the qube
        self.d.domain('fwtemp', 'Remove')
        deadline = time.monotonic() + 10
        while virsh('nwfilter-dumpxml', 'qubes-fw-fwtemp', check=False).returncode == 0:
            self.assertLess(time.monotonic(), deadline, 'qubes-fw-fwtemp still defined after Remove')
            time.sleep(0.1)


if __name__ == '__main__':
    unittest.main(verbosity=2)
