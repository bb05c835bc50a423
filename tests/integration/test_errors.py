#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bad input gets the right error and changes nothing: not the value, not a byte of qubes.xml."""

import os
import sys
import unittest

from gi.repository import GLib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, domain_path, ERROR_PREFIX  # noqa: E402

INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs'

WATCHED = [('work', 'memory'), ('work', 'netvm'), ('work', 'label'), ('work', 'template'),
           ('work', 'autostart'), ('work', 'name'), ('work', 'qid'), ('sys-net', 'netvm')]


class TestBadInput(DaemonTestCase):
    QUBES_XML = harness.EXAMPLE_XML

    def setUp(self):
        super().setUp()
        self.before_xml = self.d.xml_bytes()
        self.before = {w: self.d.get_property(*w) for w in WATCHED}

    def assertNothingChanged(self, what):
        for w in WATCHED:
            self.assertEqual(self.d.get_property(*w), self.before[w],
                             '%s changed %s of %s' % (what, w[1], w[0]))
        self.assertEqual(self.d.xml_bytes(), self.before_xml, '%s changed qubes.xml' % what)

    def set_err(self, error, prop, value, message=None, qube='work'):
        self.assertDBusError(error, self.d.set_property, qube, prop, value, message=message)
        self.assertNothingChanged('SetProperty(%r, %r)' % (prop, value))

    def test_unknown_property(self):
        self.assertDBusError(ERROR_PREFIX + 'QubesNoSuchPropertyError', self.d.get_property,
                             'work', 'no-such', message=r"^Invalid property 'no-such' of work$")
        self.set_err(ERROR_PREFIX + 'QubesNoSuchPropertyError', 'no-such', '1',
                     message=r"Invalid property 'no-such' of work")
        self.assertDBusError(ERROR_PREFIX + 'QubesNoSuchPropertyError', self.d.domain,
                             'work', 'ResetProperty', 's', ('no-such',))
        # a property of another class
        self.assertDBusError(ERROR_PREFIX + 'QubesNoSuchPropertyError', self.d.get_property,
                             'work', 'dispid')
        self.assertDBusError(ERROR_PREFIX + 'QubesNoSuchPropertyError', self.d.manager,
                             'GetProperty', 's', ('no-such',))
        self.assertNothingChanged('unknown properties')

    def test_wrong_value_types(self):
        self.set_err(ERROR_PREFIX + 'QubesValueError', 'memory', 'abc',
                     message=r'^Failed to parse property value as int$')
        self.set_err(ERROR_PREFIX + 'QubesValueError', 'autostart', 'maybe',
                     message=r"^Invalid literal for boolean property: 'maybe'$")
        self.set_err(ERROR_PREFIX + 'QubesValueError', 'memory', '')
        self.set_err(ERROR_PREFIX + 'QubesValueError', 'memory', '12\u00e9')
        for bad in ('0', '-5'):
            try:
                self.d.set_property('work', 'memory', bad)
            except harness.CallError as e:
                self.assertTrue(harness.dbus_error_name(e).startswith(ERROR_PREFIX), str(e))
            else:
                self.fail('memory=%s was accepted' % bad)
            self.assertNothingChanged('memory=%s' % bad)

    def test_wrong_dbus_signatures(self):
        # GetProperty(i) instead of (s)
        self.assertDBusError(INVALID_ARGS, self.d.domain, 'work', 'GetProperty', 'i', (5,))
        # SetProperty(s) with a missing argument
        self.assertDBusError(INVALID_ARGS, self.d.domain, 'work', 'SetProperty', 's', ('memory',))
        # Properties.Set with a variant of the wrong type
        self.assertDBusError(INVALID_ARGS, self.d.call, domain_path('work'), harness.PROPS_IFACE, 'Set',
                             'ssv', (harness.QUBESVM_IFACE, 'Memory', GLib.Variant('s', '900')))
        self.assertNothingChanged('wrong signatures')

    def test_read_only_and_write_once(self):
        for prop, value in (('name', 'other'), ('qid', '77'), ('klass', 'TemplateVM'),
                            ('xid', '5'), ('uuid', '9dfafb72-1385-4334-bac3-6a7d75d5769d')):
            try:
                self.d.set_property('work', prop, value)
            except harness.CallError as e:
                self.assertIsNotNone(harness.dbus_error_name(e), str(e))
            else:
                self.fail('setting %s was accepted' % prop)
            self.assertNothingChanged('SetProperty(%s)' % prop)
        # a CONST D-Bus property cannot be written
        try:
            self.d.call(domain_path('work'), harness.PROPS_IFACE, 'Set', 'ssv',
                        (harness.DOMAIN_IFACE, 'Name', GLib.Variant('s', 'other')))
        except harness.CallError:
            pass
        else:
            self.fail('Properties.Set of Name was accepted')
        self.assertNothingChanged('Properties.Set(Name)')

    def test_invalid_names(self):
        for bad in ('.test', '-x', '0abc', 'a b', 'a/b', 'x' * 40, 'none', 'default'):
            try:
                self.d.set_property('work', 'netvm', bad)
            except harness.CallError as e:
                self.assertIn(harness.dbus_error_name(e),
                              (ERROR_PREFIX + 'QubesValueError', ERROR_PREFIX + 'QubesPropertyValueError'),
                              'netvm=%r: %s' % (bad, e))
            else:
                self.fail('netvm=%r was accepted' % bad)
            self.assertNothingChanged('netvm=%r' % bad)
        self.assertDBusError(ERROR_PREFIX + 'QubesValueError', self.d.manager, 'GetDomain', 's', ('.test',),
                             message=r'^VM name cannot start with hyphen, underscore, dot or numbers$')

    def test_dangling_references(self):
        self.set_err(ERROR_PREFIX + 'QubesPropertyValueError', 'netvm', 'no-such-vm',
                     message=r"^Can't set netvm to non-existing qube no-such-vm$")
        self.set_err(ERROR_PREFIX + 'QubesLabelNotFoundError', 'label', 'nolabel',
                     message=r'^Label does not exist: nolabel$')
        for prop in ('template', 'default_dispvm', 'guivm', 'audiovm'):
            try:
                self.d.set_property('work', prop, 'no-such-vm')
            except harness.CallError as e:
                self.assertTrue((harness.dbus_error_name(e) or '').startswith(ERROR_PREFIX),
                                '%s=no-such-vm: %s' % (prop, e))
            else:
                self.fail('%s=no-such-vm was accepted' % prop)
            self.assertNothingChanged('%s=no-such-vm' % prop)
        # a qube that does not provide network cannot be a netvm
        try:
            self.d.set_property('work', 'netvm', 'fedora-42')
        except harness.CallError:
            pass
        else:
            self.fail('netvm=fedora-42 (provides_network False) was accepted')
        self.assertNothingChanged('netvm=fedora-42')
        # a netvm loop
        try:
            self.d.set_property('sys-net', 'netvm', 'sys-net')
        except harness.CallError:
            pass
        else:
            self.fail('netvm loop sys-net -> sys-net was accepted')
        self.assertNothingChanged('netvm loop')

    def test_reset_netvm_to_a_loop(self):
        """Going back to the default netvm is checked like setting it: sys-net behind itself
        (default_netvm is sys-net) is refused, and nothing changes (found by test_hostile)."""
        self.d.manager('SetProperty', 'ss', ('default_netvm', 'sys-net'))
        self.d.set_property('sys-net', 'netvm', '')
        before = self.d.xml_bytes()
        self.assertDBusError(ERROR_PREFIX + 'QubesValueError', self.d.domain, 'sys-net', 'ResetProperty', 's',
                             ('netvm',), message=r'^Loops in network are unsupported$')
        self.assertEqual(self.d.xml_bytes(), before)
        self.assertEqual(self.d.get_property('sys-net', 'netvm'), ('vm', False, ''))
        # a qube that follows the default may go back to it
        self.d.set_property('work', 'netvm', 'sys-net')
        self.d.domain('work', 'ResetProperty', 's', ('netvm',))
        self.assertEqual(self.d.get_property('work', 'netvm'), ('vm', True, 'sys-net'))

    def test_reset_checked_like_a_set(self):
        """template_for_dispvms of a disposable template in use is refused as False both ways;
        resetting it was accepted and left a qubes.xml that no longer loads (test_hostile)."""
        # the disposable needs sys-net, whose required PCI device this machine lacks
        self.d.call(harness.domain_path('sys-net'), 'org.qubes_os.Admin1.DomainDevices', 'UnassignDevice', 'ssss',
                    ('pci', 'dom0', '00_14.3', '8086:a370::p028000'))
        self.d.manager('CreateDisposable', 's', ('default-dvm',))
        before = self.d.xml_bytes()
        for call in (('SetProperty', 'ss', ('template_for_dispvms', 'False')),
                     ('ResetProperty', 's', ('template_for_dispvms',))):
            self.assertDBusError(ERROR_PREFIX + 'QubesVMInUseError', self.d.domain, 'default-dvm', *call)
        self.assertEqual(self.d.xml_bytes(), before)
        self.d.restart()  # and qubes.xml still loads
        self.assertEqual(self.d.get_property('default-dvm', 'template_for_dispvms')[2], 'True')

    def test_kernel_names(self):
        """A kernel name is a volume id of the kernel pool: names it would refuse are refused
        when set (one made GetManagedObjects fail for every client: test_hostile)."""
        before = self.d.xml_bytes()
        for bad in ('a b', '..', '.', '@x', 'x' * 256):
            self.assertDBusError(ERROR_PREFIX + 'QubesPropertyValueError', self.d.set_property, 'work', 'kernel', bad)
            self.assertDBusError(ERROR_PREFIX + 'QubesPropertyValueError', self.d.manager, 'SetProperty', 'ss',
                                 ('default_kernel', bad))
        self.assertEqual(self.d.xml_bytes(), before)
        os.makedirs(os.path.join(self.d.state_dir, 'vm-kernels', '6.6.1-1.fc37'))
        self.d.set_property('work', 'kernel', '6.6.1-1.fc37')
        self.d.call(harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects')

    def test_kernel_not_installed(self):
        """Upstream's check: a kernel is one the kernel pool holds (a directory of its own)."""
        before = self.d.xml_bytes()
        for call in ((self.d.set_property, 'work', 'kernel', '9.9'),
                     (self.d.manager, 'SetProperty', 'ss', ('default_kernel', '9.9'))):
            self.assertDBusError(ERROR_PREFIX + 'QubesPropertyValueError', *call,
                                 message=r"^Kernel '9\.9' not installed$")
        self.assertEqual(self.d.xml_bytes(), before)
        os.makedirs(os.path.join(self.d.state_dir, 'vm-kernels', '9.9'))
        self.d.set_property('work', 'kernel', '9.9')
        self.d.manager('SetProperty', 'ss', ('default_kernel', '9.9'))
        self.assertEqual(self.d.get_property('work', 'kernel')[2], '9.9')

    def test_unknown_qube(self):
        self.assertDBusError(ERROR_PREFIX + 'QubesVMNotFoundError', self.d.manager, 'GetDomain', 's',
                             ('no-such-vm',), message=r"^No such domain: 'no-such-vm'$")
        self.assertDBusError(ERROR_PREFIX + 'QubesVMInvalidUUIDError', self.d.manager, 'GetDomain', 's',
                             ('uuid:1234',), message=r"^VM UUID is not valid: '1234'$")
        path = self.d.manager('GetDomain', 's', ('uuid:9dfafb72-1385-4334-bac3-6a7d75d5769c',))[0]
        self.assertEqual(path, domain_path('work'))
        # a method on a path of a qube that does not exist
        try:
            self.d.domain('no-such-vm', 'GetProperty', 's', ('memory',))
        except harness.CallError as e:
            self.assertIn(harness.dbus_error_name(e), (
                'org.freedesktop.DBus.Error.UnknownObject', 'org.freedesktop.DBus.Error.UnknownMethod',
                'org.freedesktop.DBus.Error.UnknownInterface', ERROR_PREFIX + 'QubesVMNotFoundError'), str(e))
        else:
            self.fail('a call on a missing qube succeeded')
        self.assertNothingChanged('unknown qube')

    def _no_such_property_reply(self):
        from gi.repository import Gio
        msg = Gio.DBusMessage.new_method_call(harness.BUS_NAME, domain_path('work'),
                                              harness.DOMAIN_IFACE, 'GetProperty')
        msg.set_body(GLib.Variant('(s)', ('no-such',)))
        reply = self.d.conn.send_message_with_reply_sync(msg, Gio.DBusSendMessageFlags.NONE, 10000, None)[0]
        self.assertEqual(reply.get_message_type(), Gio.DBusMessageType.ERROR)
        self.assertEqual(reply.get_error_name(), ERROR_PREFIX + 'QubesNoSuchPropertyError')
        return reply

    def test_error_body_plain(self):
        """A plain client gets the message as the only body item, which GDBus understands."""
        reply = self._no_such_property_reply()
        self.assertEqual(reply.get_signature(), 's')
        self.assertEqual(reply.get_body().unpack(), ("Invalid property 'no-such' of work",))

    def test_error_body_details(self):
        """After EnableErrorDetails the reply carries (message, format, fields) for translation."""
        self.d.manager('EnableErrorDetails')
        reply = self._no_such_property_reply()
        self.assertEqual(reply.get_signature(), 'ssas')
        message, fmt, fields = reply.get_body().unpack()
        self.assertEqual(message, "Invalid property 'no-such' of work")
        self.assertEqual(fmt.replace('%s', '{}').format(*fields).replace('%%', '%'), message,
                         'format %r with fields %r does not give the message' % (fmt, fields))


if __name__ == '__main__':
    harness.main()
