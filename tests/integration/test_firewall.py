#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The per-qube firewall (spec/firewall.md): org.qubes_os.Admin1.Firewall over D-Bus (Rules with
PropertiesChanged, SetRules, the text forms, Reload), firewall.xml on disk (upstream's layout,
written only when the rules change, R3 files converted on load, removed with the qube), rules
that expire on their own, and what a user types: upstream's qvm-firewall (list, add, del, reset,
--reload) and qvm-clone, which copies the rules, through the shim. Each class once per route to
qubesd (the bus, and qubesd's private socket: harness.over_each_route). The Admin API's bytes and
every grammar error are tests/vectors/firewall.vec."""

import os
import re
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, SignalCollector, domain_path  # noqa: E402
import test_shim  # noqa: E402

E = harness.ERROR_PREFIX
FW = 'org.qubes_os.Admin1.Firewall'
PROPS = 'org.freedesktop.DBus.Properties'

XML_EVERY_FIELD = '''<firewall version="2">
  <rules>
    <rule>
      <properties>
        <property name="action">accept</property>
        <property name="comment">Web, site</property>
        <property name="expire">4102444800</property>
        <property name="dsthost">192.168.0.0/24</property>
        <property name="proto">tcp</property>
        <property name="dstports">443</property>
      </properties>
    </rule>
    <rule>
      <properties>
        <property name="action">drop</property>
        <property name="dsthost">2001:db8::1/128</property>
        <property name="proto">icmp</property>
        <property name="icmptype">8</property>
      </properties>
    </rule>
    <rule>
      <properties>
        <property name="action">accept</property>
        <property name="proto">udp</property>
        <property name="specialtarget">dns</property>
      </properties>
    </rule>
  </rules>
</firewall>
'''

EVERY_FIELD = [
    {'action': 'accept', 'proto': 'tcp', 'dsthost': '192.168.0.0/24', 'dstports': '443',
     'expire': '4102444800', 'comment': 'Web, site'},
    {'action': 'drop', 'dst6': '2001:db8::1', 'proto': 'icmp', 'icmptype': '008'},
    {'action': 'accept', 'specialtarget': 'dns', 'proto': 'udp'},
]
EVERY_FIELD_STORED = [
    {'action': 'accept', 'comment': 'Web, site', 'expire': '4102444800', 'dsthost': '192.168.0.0/24',
     'proto': 'tcp', 'dstports': '443'},
    {'action': 'drop', 'dsthost': '2001:db8::1/128', 'proto': 'icmp', 'icmptype': '8'},
    {'action': 'accept', 'proto': 'udp', 'specialtarget': 'dns'},
]
EVERY_FIELD_TEXT = ('action=accept expire=4102444800 dst4=192.168.0.0/24 proto=tcp dstports=443-443 '
                    'comment=Web, site\n'
                    'action=drop dst6=2001:db8::1/128 proto=icmp icmptype=8\n'
                    'action=accept proto=udp specialtarget=dns\n')


class FirewallTestCase(DaemonTestCase):
    def fw_file(self, qube):
        return os.path.join(self.d.state_dir, 'appvms', qube, 'firewall.xml')

    def rules(self, qube):
        return self.d.dbus_get(domain_path(qube), FW, 'Rules')

    def fw(self, qube, method, signature=None, args=()):
        return self.d.call(domain_path(qube), FW, method, signature, args)

    def set_rules(self, qube, rules):
        return self.fw(qube, 'SetRules', 'aa{ss}', (rules,))

    @staticmethod
    def firewall_events(collector, qube):
        collector.pump(0.05)
        return [s for s in collector.signals
                if s[2] == 'Event' and s[3][1] == qube and s[3][2] == 'firewall-changed']


@harness.over_each_route
class TestFirewallBus(FirewallTestCase):
    """The interface a D-Bus client (the Qube Manager) uses."""

    def test_default_accepts_everything(self):
        self.assertEqual(self.rules('work'), [{'action': 'accept'}])
        self.assertEqual(self.fw('work', 'GetRulesText'), ('action=accept\n',))
        # reading writes nothing
        self.assertFalse(os.path.exists(self.fw_file('work')))

    def test_dom0_has_no_firewall(self):
        introspected = self.d.introspect(domain_path('dom0'))
        self.assertNotIn(FW, introspected)
        self.assertIn(FW, self.d.introspect(domain_path('work')))
        with self.assertRaises(harness.CallError):
            self.fw('dom0', 'GetRulesText')

    def test_set_rules(self):
        changes = SignalCollector(self.d.conn, interface=PROPS, member='PropertiesChanged',
                                  path=domain_path('work'))
        events = SignalCollector(self.d.conn, member='Event', path=domain_path('work'))
        self.addCleanup(changes.close)
        self.addCleanup(events.close)
        self.set_rules('work', EVERY_FIELD)
        self.assertEqual(self.rules('work'), EVERY_FIELD_STORED)
        self.assertEqual(self.fw('work', 'GetRulesText'), (EVERY_FIELD_TEXT,))
        # upstream's layout byte for byte, mode 0664
        with open(self.fw_file('work'), encoding='utf-8') as f:
            self.assertEqual(f.read(), XML_EVERY_FIELD)
        self.assertEqual(stat.S_IMODE(os.stat(self.fw_file('work')).st_mode), 0o664)
        # the new list travels in PropertiesChanged, and firewall-changed goes out once
        self.assertTrue(changes.wait_for(lambda sig: any(
            s[3][0] == FW and 'Rules' in s[3][1] for s in sig)), changes.signals)
        sent = [s[3][1]['Rules'] for s in changes.signals if s[3][0] == FW]
        self.assertEqual(sent[-1], EVERY_FIELD_STORED)
        self.assertTrue(events.wait_for(lambda sig: self.firewall_events(events, 'work')))
        self.assertEqual(len(self.firewall_events(events, 'work')), 1)
        # another qube's rules are its own
        self.assertEqual(self.rules('personal'), [{'action': 'accept'}])

    def test_text_form(self):
        self.fw('work', 'SetRulesText', 's', ('action=drop proto=tcp dstports=22 comment=no ssh\naction=accept\n',))
        self.assertEqual(self.rules('work'), [
            {'action': 'drop', 'comment': 'no ssh', 'proto': 'tcp', 'dstports': '22'}, {'action': 'accept'}])
        self.assertEqual(self.fw('work', 'GetRulesText'),
                         ('action=drop proto=tcp dstports=22-22 comment=no ssh\naction=accept\n',))

    def test_bad_rules_change_nothing(self):
        self.set_rules('work', EVERY_FIELD)
        before = os.stat(self.fw_file('work'))
        events = SignalCollector(self.d.conn, member='Event', path=domain_path('work'))
        self.addCleanup(events.close)
        bad = [
            ([{'proto': 'tcp'}], "Required property 'action'"),
            ([{'action': 'accept', 'dstports': '80'}], "dstports valid only for 'tcp' and 'udp' protocols"),
            ([{'action': 'accept'}, {'action': 'accept', 'proto': 'tcp', 'icmptype': '8'}],
             "icmptype valid only for 'icmp' protocol"),
            ([{'action': 'allow'}], '^allow$'),
            ([{'action': 'accept', 'colour': 'red'}], 'Unknown firewall option'),
            ([{'action': 'accept', 'dsthost': '10.0.0.0/33'}], 'netmask for IPv4 must be <= 32'),
            ([{'action': 'accept', 'proto': 'tcp', 'dstports': '70000'}], 'Ports out of range'),
            ([{'action': 'accept', 'comment': 'a <b>'}], 'strange characters comment'),
            ([{'action': 'accept', 'dst4': '1.2.3.4', 'dsthost': 'a.b'}], "Option 'dsthost' already set"),
            ([], 'at least one rule'),
        ]
        for rules, message in bad:
            with self.subTest(rules=rules):
                self.assertDBusError(E + 'QubesValueError', self.set_rules, 'work', rules, message=message)
        for text, name, message in [
                ('action=accept comment=\u0105', 'ProtocolError', 'non-ASCII'),
                ('', 'ProtocolError', 'expected payload'),
                ('action=accept\n\n', 'QubesValueError', 'no'),
                ('action=accept proto=tcp dstports=1-2-3', 'QubesValueError', 'too many values')]:
            with self.subTest(text=text):
                self.assertDBusError(E + name, self.fw, 'work', 'SetRulesText', 's', (text,), message=message)
        self.assertEqual(self.rules('work'), EVERY_FIELD_STORED)
        after = os.stat(self.fw_file('work'))
        self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns))
        self.assertEqual(self.firewall_events(events, 'work'), [])
        # the daemon is still there
        self.assertEqual(self.d.get_property('work', 'label'), self.d.get_property('work', 'label'))

    def test_reload(self):
        self.set_rules('work', [{'action': 'drop'}])
        before = os.stat(self.fw_file('work'))
        events = SignalCollector(self.d.conn, member='Event', path=domain_path('work'))
        self.addCleanup(events.close)
        time.sleep(0.02)
        self.fw('work', 'Reload')
        self.assertTrue(events.wait_for(lambda sig: self.firewall_events(events, 'work')))
        events.pump(0.3)
        self.assertEqual(len(self.firewall_events(events, 'work')), 1)
        after = os.stat(self.fw_file('work'))
        self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns))

    def test_expiry(self):
        """A rule expiring 2 s from now goes by itself: event, file rewritten, Rules announced."""
        changes = SignalCollector(self.d.conn, interface=PROPS, member='PropertiesChanged',
                                  path=domain_path('work'))
        events = SignalCollector(self.d.conn, member='Event', path=domain_path('work'))
        self.addCleanup(changes.close)
        self.addCleanup(events.close)
        expire = str(int(time.time()) + 2)
        self.set_rules('work', [{'action': 'accept', 'proto': 'tcp', 'dstports': '443', 'expire': expire},
                                {'action': 'drop'}])
        self.assertIn('expire', open(self.fw_file('work'), encoding='utf-8').read())
        self.assertTrue(events.wait_for(lambda sig: len(self.firewall_events(events, 'work')) >= 1))
        started = time.monotonic()
        self.assertTrue(events.wait_for(lambda sig: len(self.firewall_events(events, 'work')) >= 2, timeout=6),
                        'no firewall-changed when the rule expired')
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(self.rules('work'), [{'action': 'drop'}])
        self.assertEqual(self.fw('work', 'GetRulesText'), ('action=drop\n',))
        with open(self.fw_file('work'), encoding='utf-8') as f:
            text = f.read()
        self.assertNotIn('expire', text)
        self.assertIn('<property name="action">drop</property>', text)
        self.assertTrue(changes.wait_for(lambda sig: any(
            s[3][0] == FW and s[3][1].get('Rules') == [{'action': 'drop'}] for s in sig)), changes.signals)

    def test_survives_restart(self):
        self.set_rules('work', EVERY_FIELD)
        self.d.restart()
        self.assertEqual(self.rules('work'), EVERY_FIELD_STORED)

    def test_remove_takes_the_file(self):
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'fwgone', 'red', '', {}))
        self.set_rules('fwgone', [{'action': 'drop'}])
        self.assertTrue(os.path.exists(self.fw_file('fwgone')))
        self.d.domain('fwgone', 'Remove')
        self.assertFalse(os.path.exists(self.fw_file('fwgone')))


R3_FILE = '''<QubesFirewallRules policy="deny" dns="allow" icmp="deny" yumProxy="allow">
  <rule address="192.168.1.0" netmask="24" proto="tcp" port="80" toport="81"/>
  <rule address="10.0.0.1" proto="any"/>
  <rule address="1.2.3.4" port="443" expire="4102444800"/>
</QubesFirewallRules>
'''


class TestFirewallLoad(FirewallTestCase):
    """Files found at start: the R3 format converted, an unknown version refused (drop all)."""

    def setUp(self):
        self.d = harness.Daemon(self.QUBES_XML)
        self.addCleanup(self.d.cleanup)
        for qube, text in (('work', R3_FILE), ('personal', '<firewall version="3"><rules/></firewall>')):
            os.makedirs(os.path.join(self.d.state_dir, 'appvms', qube), exist_ok=True)
            with open(os.path.join(self.d.state_dir, 'appvms', qube, 'firewall.xml'), 'w') as f:
                f.write(text)
        self.d.start()

    def test_r3_converted(self):
        self.assertEqual(self.fw('work', 'GetRulesText'), (
            'action=accept specialtarget=dns\n'
            'action=drop proto=icmp\n'
            'action=accept dst4=192.168.1.0/24 proto=tcp dstports=80-81\n'
            'action=accept dst4=10.0.0.1/32\n'
            'action=accept expire=4102444800 dst4=1.2.3.4/32 proto=tcp dstports=443-443\n',))

    def test_unknown_version_drops_everything(self):
        self.assertEqual(self.rules('personal'), [])
        self.assertEqual(self.fw('personal', 'GetRulesText'), ('',))
        self.assertIn('Unsupported firewall.xml version: 3', self.d.log_tail())


def find_qvm():
    path = os.environ.get('QUBESADMIN_QVM') or os.path.join(harness.SOURCE_DIR, '..', 'shared', 'qubesadmin', 'qvm')
    if not os.path.exists(path):
        raise unittest.SkipTest('upstream qubesadmin client not found (set QUBESADMIN_QVM)')
    return path


@harness.over_each_route
class TestFirewallQvmTools(FirewallTestCase):
    """What a user types: upstream's qvm-firewall and qvm-clone through the shim."""

    def setUp(self):
        self.qvm_path = find_qvm()
        super().setUp()
        self.door = test_shim.SocketDoor(test_shim.find_shim(), self.d)
        self.addCleanup(self.door.stop)
        # qvm-clone runs dom0's qvm-appmenus (the desktop's menus, not part of qubesd) as the
        # first user of the group qubes: a stand-in that does nothing, where that user can run it
        self.bin = tempfile.mkdtemp(prefix='qubesd-fw-bin-')
        self.addCleanup(lambda: subprocess.run(['rm', '-rf', self.bin]))
        os.chmod(self.bin, 0o755)
        with open(os.path.join(self.bin, 'qvm-appmenus'), 'w') as f:
            f.write('#!/bin/sh\nexit 0\n')
        os.chmod(os.path.join(self.bin, 'qvm-appmenus'), 0o755)

    def qvm(self, *args, ok=True):
        env = dict(os.environ, QUBESD_SOCKET=self.door.path, PATH=self.bin + ':' + os.environ.get('PATH', ''))
        r = subprocess.run(['/usr/bin/python3', self.qvm_path] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=120)
        if ok:
            self.assertEqual(r.returncode, 0, '%s: %s%s' % (' '.join(args), r.stdout, r.stderr))
        return r

    @staticmethod
    def table(out):
        return [re.split(r'\s{2,}', line.strip()) for line in out.splitlines() if line.strip()]

    HEADER = ['NO', 'ACTION', 'HOST', 'PROTOCOL', 'PORT(S)', 'SPECIAL TARGET', 'ICMP TYPE', 'EXPIRE', 'COMMENT']

    def test_list_add_del_reset(self):
        self.assertEqual(self.table(self.qvm('qvm-firewall', 'work').stdout),
                         [self.HEADER, ['0', 'accept', '-', '-', '-', '-', '-', '-', '-']])
        self.qvm('qvm-firewall', 'work', 'add', 'accept', 'dsthost=qubes-os.org', 'proto=tcp', 'dstports=443')
        self.qvm('qvm-firewall', 'work', 'add', '--before', '0', 'drop', 'dst4=10.0.0.0/8', 'comment=no lan')
        self.qvm('qvm-firewall', 'work', 'add', 'accept', 'proto=icmp', 'icmptype=8', 'expire=+3600')
        rows = self.table(self.qvm('qvm-firewall', 'work', 'list').stdout)
        self.assertEqual(rows[0], self.HEADER)
        self.assertEqual(rows[1], ['0', 'drop', '10.0.0.0/8', '-', '-', '-', '-', '-', 'no lan'])
        self.assertEqual(rows[2], ['0', 'accept', '-', '-', '-', '-', '-', '-', '-'][:0] +
                         ['1', 'accept', '-', '-', '-', '-', '-', '-', '-'])
        self.assertEqual(rows[3], ['2', 'accept', 'qubes-os.org', 'tcp', '443', '-', '-', '-', '-'])
        self.assertEqual(rows[4][:7], ['3', 'accept', '-', 'icmp', '-', '-', '8'])
        self.assertRegex(rows[4][7], r'^\+3[56]\d\ds$')
        # what qubesd keeps
        self.assertEqual(self.rules('work')[:3], [
            {'action': 'drop', 'comment': 'no lan', 'dsthost': '10.0.0.0/8'},
            {'action': 'accept'},
            {'action': 'accept', 'dsthost': 'qubes-os.org', 'proto': 'tcp', 'dstports': '443'}])
        # del by number, then by rule
        self.qvm('qvm-firewall', 'work', 'del', '--rule-no', '1')
        self.qvm('qvm-firewall', 'work', 'del', 'drop', 'dst4=10.0.0.0/8', 'comment=no lan')
        rows = self.table(self.qvm('qvm-firewall', 'work').stdout)
        self.assertEqual([r[:5] for r in rows[1:]], [['0', 'accept', 'qubes-os.org', 'tcp', '443'],
                                                     ['1', 'accept', '-', 'icmp', '-']])
        # a bad rule: qvm-firewall fails, nothing changes
        before = self.rules('work')
        r = self.qvm('qvm-firewall', 'work', 'add', 'accept', 'proto=tcp', 'dstports=65536', ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('Ports out of range', r.stderr)
        self.assertEqual(self.rules('work'), before)
        # reset: accept everything again
        self.qvm('qvm-firewall', 'work', 'reset')
        self.assertEqual(self.rules('work'), [{'action': 'accept'}])
        self.assertEqual(self.table(self.qvm('qvm-firewall', 'work').stdout)[1:],
                         [['0', 'accept', '-', '-', '-', '-', '-', '-', '-']])

    def test_reload(self):
        events = SignalCollector(self.d.conn, member='Event', path=domain_path('work'))
        self.addCleanup(events.close)
        self.qvm('qvm-firewall', '--reload', 'work', 'list')
        self.assertTrue(events.wait_for(lambda sig: self.firewall_events(events, 'work')))
        self.assertFalse(os.path.exists(self.fw_file('work')))

    def test_clone_carries_the_rules(self):
        self.qvm('qvm-create', '--label', 'red', 'fwsrc')
        self.qvm('qvm-firewall', 'fwsrc', 'add', '--before', '0', 'drop', 'dsthost=example.com')
        self.qvm('qvm-firewall', 'fwsrc', 'del', '--rule-no', '1')
        self.qvm('qvm-clone', 'fwsrc', 'work-copy')
        self.assertEqual(self.rules('work-copy'), [{'action': 'drop', 'dsthost': 'example.com'}])
        with open(self.fw_file('fwsrc'), encoding='utf-8') as a, open(self.fw_file('work-copy'), encoding='utf-8') as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(self.table(self.qvm('qvm-firewall', 'work-copy').stdout)[1:],
                         [['0', 'drop', 'example.com', '-', '-', '-', '-', '-', '-']])
        # and qvm-remove takes the file with the qube
        self.qvm('qvm-remove', '-f', 'work-copy')
        self.assertFalse(os.path.exists(self.fw_file('work-copy')))


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
