#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Value constraints (upstream issue 10334, docs/daemon.md): dom0 limits the values a qube
calling through qrexec may give to a property of a qube. Enforced on SetProperty, ResetProperty
and Properties.Set, through the shim (source = the management qube) and over D-Bus with
SetCallerIdentity; Domain.GetAllowedValues tells a GUI what it may offer; dom0 is never
constrained; the files are re-read after a change."""

import os
import shutil
import sys
import tempfile
import time
import unittest

from gi.repository import Gio, GLib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_shim  # noqa: E402
from harness import domain_path  # noqa: E402

RULES = """\
# the managers may point the netvm of managed qubes at the approved netvms, or at nothing
@tag:managers  netvm           @tag:managed  @tag:net-ok sys-firewall @none
# ... and may only reset their default_dispvm
mgmt           default_dispvm  @anyvm        @default
# labels: literal values
mgmt           label           @type:AppVM   green blue
"""

DENIED = harness.ERROR_PREFIX + 'PermissionDenied'


class ConstraintTests(unittest.TestCase):
    def setUp(self):
        self.shim = test_shim.find_shim()
        self.tmp = tempfile.mkdtemp(prefix='qubesd-constraints-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.cdir = os.path.join(self.tmp, 'constraints.d')
        os.makedirs(self.cdir)
        self.write_rules('50-test.conf', RULES)
        policy_dir = os.path.join(self.tmp, 'policy.d')
        os.makedirs(os.path.join(policy_dir, 'include'))
        with open(os.path.join(policy_dir, '30-test.policy'), 'w') as f:
            f.write('admin.vm.List * @anyvm @anyvm allow\n'
                    'admin.vm.List * @anyvm @adminvm allow\n')
        private = os.path.join(self.tmp, 'private')
        self.d = harness.Daemon(test_shim.FIXTURE_XML,
                                extra_args=['--constraints-dir=' + self.cdir, '--policy-dir=' + policy_dir,
                                            '--private-socket=' + private])
        self.addCleanup(self.d.cleanup)
        os.makedirs(os.path.join(self.d.state_dir, 'vm-kernels', '1.0'), exist_ok=True)
        self.d.start()
        for name, tags, net in (('mgmt', ['managers'], False), ('work', ['managed'], False),
                                ('sys-net', ['net-ok'], True), ('sys-firewall', [], True),
                                ('sys-other', [], True), ('dvm', [], False)):
            self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', name, 'red', 'test-template', {}))
            for t in tags:
                self.d.domain(name, 'AddTag', 's', (t,))
            if net:
                self.d.set_property(name, 'provides_network', 'True')
        self.d.set_property('dvm', 'template_for_dispvms', 'True')
        self.door = test_shim.SocketDoor(self.shim, self.d, ['--private-socket=' + private])
        self.addCleanup(self.door.stop)
        self.mgmt = self.identity_connection('mgmt')

    def tearDown(self):
        if self.d.proc is not None:
            status = self.d.stop()
            self.assertEqual(status, 0, 'qubesd exited with status %s:\n%s' % (status, self.d.log_tail()))

    # --- helpers ----------------------------------------------------------------------------

    def write_rules(self, name, text):
        """Atomically, as the documentation recommends."""
        tmp = os.path.join(self.cdir, '.' + name + '.tmp')
        with open(tmp, 'w') as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.cdir, name))

    def identity_connection(self, qube):
        """A second bus connection that acts for qube (SetCallerIdentity: trusted uid only)."""
        conn = Gio.DBusConnection.new_for_address_sync(
            self.d.address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        conn.set_exit_on_close(False)
        self.addCleanup(conn.close_sync, None)
        saved, self.d.call_conn = self.d.call_conn, conn
        try:
            self.d.manager('SetCallerIdentity', 's', (qube,))
        finally:
            self.d.call_conn = saved
        return conn

    def as_conn(self, conn, func, *args):
        saved, self.d.call_conn = self.d.call_conn, conn
        try:
            return func(*args)
        finally:
            self.d.call_conn = saved

    def mgmt_call(self, qube, method, signature=None, args=()):
        return self.as_conn(self.mgmt, self.d.domain, qube, method, signature, args)

    def assert_denied(self, func, *args, message=None):
        try:
            func(*args)
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_name(e), DENIED, harness.dbus_error_message(e))
            if message:
                self.assertRegex(harness.dbus_error_message(e), message)
            return
        self.fail('the call succeeded, expected PermissionDenied')

    def value(self, qube, prop):
        return self.d.get_property(qube, prop)[2]

    def shim_set(self, source, qube, prop, value):
        return self.door.call(b'admin.vm.property.Set+%s %s name %s\x00%s'
                              % (prop.encode(), source.encode(), qube.encode(), value.encode()))

    def shim_reset(self, source, qube, prop):
        return self.door.call(b'admin.vm.property.Reset+%s %s name %s\x00'
                              % (prop.encode(), source.encode(), qube.encode()))

    # --- through the shim -------------------------------------------------------------------------

    def test_shim_allowed_and_refused(self):
        self.assertEqual(self.shim_set('mgmt', 'work', 'netvm', 'sys-net'), b'0\x00')
        self.assertEqual(self.value('work', 'netvm'), 'sys-net')
        self.assertEqual(self.shim_set('mgmt', 'work', 'netvm', 'sys-firewall'), b'0\x00')
        before = self.d.xml_bytes()
        reply = self.shim_set('mgmt', 'work', 'netvm', 'sys-other')
        exc, msg, _ = test_shim.parse_exception(reply)
        self.assertEqual(exc, 'PermissionDenied')
        self.assertIn("Setting netvm of work to 'sys-other' is not allowed by the value constraints for mgmt",
                      msg)
        self.assertEqual(self.d.xml_bytes(), before, 'a refused set changed qubes.xml')
        self.assertEqual(self.value('work', 'netvm'), 'sys-firewall')
        # @none
        self.assertEqual(self.shim_set('mgmt', 'work', 'netvm', ''), b'0\x00')
        self.assertEqual(self.value('work', 'netvm'), '')
        # reset is refused: the rule has no @default
        exc, msg, _ = test_shim.parse_exception(self.shim_reset('mgmt', 'work', 'netvm'))
        self.assertEqual(exc, 'PermissionDenied')
        self.assertIn('Resetting netvm of work', msg)
        # dom0 through the shim is not constrained
        self.assertEqual(self.shim_set('dom0', 'work', 'netvm', 'sys-other'), b'0\x00')
        self.assertEqual(self.shim_reset('dom0', 'work', 'netvm'), b'0\x00')
        # another qube is not a manager: no rule for it
        self.assertEqual(self.shim_set('test-vm1', 'work', 'netvm', 'sys-other'), b'0\x00')

    def test_shim_reset_only(self):
        self.d.set_property('work', 'default_dispvm', 'dvm')
        exc, _, _ = test_shim.parse_exception(self.shim_set('mgmt', 'work', 'default_dispvm', 'dvm'))
        self.assertEqual(exc, 'PermissionDenied')
        self.assertEqual(self.shim_reset('mgmt', 'work', 'default_dispvm'), b'0\x00')
        self.assertTrue(self.d.get_property('work', 'default_dispvm')[1], 'not reset')

    # --- over D-Bus with SetCallerIdentity ------------------------------------------------------

    def test_dbus_set_property(self):
        self.mgmt_call('work', 'SetProperty', 'ss', ('netvm', 'sys-net'))
        self.assertEqual(self.value('work', 'netvm'), 'sys-net')
        before = self.d.xml_bytes()
        self.assert_denied(self.mgmt_call, 'work', 'SetProperty', 'ss', ('netvm', 'sys-other'),
                           message=r"^Setting netvm of work to 'sys-other' is not allowed by the value "
                                   r"constraints for mgmt$")
        self.assert_denied(self.mgmt_call, 'work', 'ResetProperty', 's', ('netvm',),
                           message=r'^Resetting netvm of work')
        self.assertEqual(self.d.xml_bytes(), before)
        # a qube not tagged managed: no rule
        self.mgmt_call('test-vm1', 'SetProperty', 'ss', ('netvm', 'sys-other'))

    def test_dbus_properties_set(self):
        def pset(conn, qube, prop, variant):
            return self.as_conn(conn, self.d.call, domain_path(qube), harness.PROPS_IFACE, 'Set', 'ssv',
                                (harness.QUBESVM_IFACE, prop, variant))
        pset(self.mgmt, 'work', 'Netvm', GLib.Variant('o', domain_path('sys-net')))
        self.assertEqual(self.value('work', 'netvm'), 'sys-net')
        before = self.d.xml_bytes()
        self.assert_denied(pset, self.mgmt, 'work', 'Netvm', GLib.Variant('o', domain_path('sys-other')),
                           message='not allowed by the value constraints for mgmt')
        self.assertEqual(self.d.xml_bytes(), before)
        pset(self.mgmt, 'work', 'Netvm', GLib.Variant('o', '/'))  # @none
        self.assertEqual(self.value('work', 'netvm'), '')
        # labels: literal values, on the Domain interface
        label = lambda name: GLib.Variant('o', harness.label_path(name))  # noqa: E731
        self.as_conn(self.mgmt, self.d.call, domain_path('work'), harness.PROPS_IFACE, 'Set', 'ssv',
                     (harness.DOMAIN_IFACE, 'Label', label('green')))
        self.assertEqual(self.value('work', 'label'), 'green')
        self.assert_denied(self.as_conn, self.mgmt, self.d.call, domain_path('work'), harness.PROPS_IFACE,
                           'Set', 'ssv', (harness.DOMAIN_IFACE, 'Label', label('black')))
        self.assert_denied(self.mgmt_call, 'work', 'SetProperty', 'ss', ('label', 'purple'))
        self.mgmt_call('work', 'SetProperty', 'ss', ('label', 'blue'))

    def test_tag_expansion_follows_the_model(self):
        self.assert_denied(self.mgmt_call, 'work', 'SetProperty', 'ss', ('netvm', 'sys-other'))
        self.d.domain('sys-other', 'AddTag', 's', ('net-ok',))
        self.mgmt_call('work', 'SetProperty', 'ss', ('netvm', 'sys-other'))
        # the target: a qube that gains the tag managed becomes constrained
        self.mgmt_call('test-vm1', 'SetProperty', 'ss', ('netvm', 'sys-firewall'))
        self.d.domain('test-vm1', 'AddTag', 's', ('managed',))
        self.d.domain('sys-other', 'RemoveTag', 's', ('net-ok',))
        self.assert_denied(self.mgmt_call, 'test-vm1', 'SetProperty', 'ss', ('netvm', 'sys-other'))
        # the caller: without the tag managers, mgmt is no longer constrained for netvm
        self.d.domain('mgmt', 'RemoveTag', 's', ('managers',))
        self.mgmt_call('test-vm1', 'SetProperty', 'ss', ('netvm', 'sys-other'))

    def test_get_allowed_values(self):
        self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('netvm',)),
                         (True, ['', 'sys-firewall', 'sys-net']))
        self.d.domain('sys-other', 'AddTag', 's', ('net-ok',))
        self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('netvm',)),
                         (True, ['', 'sys-firewall', 'sys-net', 'sys-other']))
        self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('default_dispvm',)),
                         (True, ['@default']))
        self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('label',)),
                         (True, ['green', 'blue']))
        self.assertEqual(self.mgmt_call('test-vm1', 'GetAllowedValues', 's', ('netvm',)), (False, []))
        self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('vcpus',)), (False, []))
        # dom0 (a local caller without an identity) is never constrained
        self.assertEqual(self.d.domain('work', 'GetAllowedValues', 's', ('netvm',)), (False, []))
        try:
            self.mgmt_call('work', 'GetAllowedValues', 's', ('no_such',))
            self.fail('expected QubesNoSuchPropertyError')
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_name(e), harness.ERROR_PREFIX + 'QubesNoSuchPropertyError')

    def test_dom0_unconstrained(self):
        self.d.set_property('work', 'netvm', 'sys-other')
        self.d.domain('work', 'ResetProperty', 's', ('netvm',))
        self.d.set_property('work', 'default_dispvm', 'dvm')
        self.d.set_property('work', 'label', 'black')
        self.d.call(domain_path('work'), harness.PROPS_IFACE, 'Set', 'ssv',
                    (harness.QUBESVM_IFACE, 'Netvm', GLib.Variant('o', domain_path('sys-other'))))
        self.assertEqual(self.value('work', 'netvm'), 'sys-other')
        # global properties are never constrained, not even for a qube
        self.as_conn(self.mgmt, self.d.manager, 'SetProperty', 'ss', ('default_template', 'test-template'))

    def wait_until(self, func, what):
        deadline = time.monotonic() + 5
        while True:
            try:
                return func()
            except (AssertionError,) + harness.CallError:
                if time.monotonic() > deadline:
                    raise AssertionError('%s: not seen within 5 s:\n%s' % (what, self.d.log_tail()))
                time.sleep(0.05)

    def test_reload_after_edit(self):
        self.assert_denied(self.mgmt_call, 'work', 'SetProperty', 'ss', ('netvm', 'sys-other'))
        self.write_rules('50-test.conf', RULES.replace('sys-firewall @none', 'sys-firewall sys-other @none'))
        self.wait_until(lambda: self.mgmt_call('work', 'SetProperty', 'ss', ('netvm', 'sys-other')),
                        'the edited rule')
        self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('netvm',)),
                         (True, ['', 'sys-firewall', 'sys-net', 'sys-other']))
        # an earlier file wins: first matching rule decides
        self.write_rules('10-first.conf', 'mgmt netvm @anyvm sys-net\n')

        def only_sys_net():
            self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('netvm',)), (True, ['sys-net']))
        self.wait_until(only_sys_net, 'the new file')
        # removing the files lifts every constraint
        os.unlink(os.path.join(self.cdir, '10-first.conf'))
        os.unlink(os.path.join(self.cdir, '50-test.conf'))

        def unconstrained():
            self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('netvm',)), (False, []))
        self.wait_until(unconstrained, 'the removal')
        self.mgmt_call('work', 'ResetProperty', 's', ('netvm',))

    def test_errors_fail_closed(self):
        self.write_rules('60-broken.conf', 'mgmt netvm\n')

        def refused():
            self.assert_denied(self.mgmt_call, 'test-vm1', 'SetProperty', 'ss', ('vcpus', '2'),
                               message='value constraints cannot be read or have errors')
        self.wait_until(refused, 'the broken file')
        self.assertEqual(self.mgmt_call('work', 'GetAllowedValues', 's', ('netvm',)), (True, []))
        exc, _, _ = test_shim.parse_exception(self.shim_set('mgmt', 'test-vm1', 'vcpus', '2'))
        self.assertEqual(exc, 'PermissionDenied')
        # dom0 is not affected
        self.d.set_property('test-vm1', 'vcpus', '2')
        self.assertEqual(self.shim_set('dom0', 'test-vm1', 'vcpus', '3'), b'0\x00')
        self.assertIn('60-broken.conf:1: expected CALLER PROPERTY TARGET VALUE...', self.d.log_tail(200))
        # fixing it lifts the refusal
        self.write_rules('60-broken.conf', '# fixed\n')
        self.wait_until(lambda: self.mgmt_call('test-vm1', 'SetProperty', 'ss', ('vcpus', '2')), 'the fix')

    def test_syntax_errors_reported(self):
        bad = ['mgmt no_such_prop @anyvm x', '@tag:b@d netvm @anyvm sys-net', 'mgmt netvm @anyvm @bogus',
               'mgmt vcpus @anyvm @tag:x', '@none netvm @anyvm sys-net', 'mgmt netvm @type:Nope sys-net',
               'mgmt xid @anyvm 1']
        for i, line in enumerate(bad):
            self.write_rules('7%d-bad.conf' % i, line + '\n')
        self.wait_until(lambda: self.assert_denied(self.mgmt_call, 'test-vm1', 'SetProperty', 'ss',
                                                   ('vcpus', '2')), 'the broken files')
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            log = self.d.log_tail(400)
            if all('7%d-bad.conf:1:' % i in log for i in range(len(bad))):
                break
            time.sleep(0.05)
        for i in range(len(bad)):
            self.assertIn('7%d-bad.conf:1:' % i, log, bad[i])


if __name__ == '__main__':
    harness.main()
