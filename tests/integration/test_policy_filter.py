#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Per-caller filtering (spec qrexec-policy.md §4, admin-api.md vector 7.2.16): a qube calling
through the shim sees in admin.vm.List and admin.Events only what the qrexec policy allows it to
ask about; dom0 sees everything. qubesd reads the policy from --policy-dir, and through the
shim's private socket as well as over the bus."""

import os
import shutil
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_shim  # noqa: E402

POLICY = """\
admin.vm.List * @anyvm @adminvm allow
admin.vm.List * @anyvm test-vm1 allow
admin.Events +domain-feature-set_f9 @anyvm test-vm1 allow
"""


class PolicyFilterTests(unittest.TestCase):
    def setUp(self):
        self.shim = test_shim.find_shim()
        self.tmp = tempfile.mkdtemp(prefix='qubesd-policy-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.policy_dir = os.path.join(self.tmp, 'policy.d')
        os.makedirs(os.path.join(self.policy_dir, 'include'))
        with open(os.path.join(self.policy_dir, '30-test.policy'), 'w') as f:
            f.write(POLICY)
        private = os.path.join(self.tmp, 'private')
        self.d = harness.Daemon(test_shim.FIXTURE_XML,
                                extra_args=['--policy-dir=' + self.policy_dir, '--private-socket=' + private])
        self.addCleanup(self.d.cleanup)
        self.d.start()
        self.door = test_shim.SocketDoor(self.shim, self.d, ['--private-socket=' + private])
        self.addCleanup(self.door.stop)

    def names(self, reply):
        self.assertTrue(reply.startswith(b'0\x00'), reply)
        return [line.split(' ')[0] for line in reply[2:].decode().splitlines()]

    def test_vm_list_filtered(self):
        self.assertEqual(self.names(self.door.call(b'admin.vm.List+ test-vm1 name dom0\x00')),
                         ['dom0', 'test-vm1'], 'test-template must be hidden from test-vm1')
        self.assertEqual(self.names(self.door.call(b'admin.vm.List+ dom0 name dom0\x00')),
                         ['dom0', 'test-template', 'test-vm1'], 'dom0 sees everything')

    def test_policy_change_is_seen(self):
        with open(os.path.join(self.policy_dir, '29-more.policy'), 'w') as f:
            f.write('admin.vm.List * test-vm1 test-template allow\n')
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            names = self.names(self.door.call(b'admin.vm.List+ test-vm1 name dom0\x00'))
            if 'test-template' in names:
                break
            time.sleep(0.05)
        self.assertEqual(names, ['dom0', 'test-template', 'test-vm1'])

    def test_events_filtered(self):
        s = self.door.connect()
        self.addCleanup(s.close)
        s.sendall(b'admin.Events+ test-vm1 name dom0\x00')
        s.shutdown(socket.SHUT_WR)
        reader = test_shim.EventReader(lambda: s.recv(65536))
        self.assertEqual(reader.frame(), ('', 'connection-established', []))
        self.d.domain('test-vm1', 'SetFeature', 'ss', ('f8', 'x'))
        self.d.domain('test-template', 'SetFeature', 'ss', ('f9', 'x'))
        self.d.domain('test-vm1', 'SetFeature', 'ss', ('f9', 'x'))
        self.assertEqual(reader.frame(), ('test-vm1', 'domain-feature-set:f9',
                                          [('feature', 'f9'), ('value', 'x')]))
        # nothing else may arrive: no pre-set, no f8, nothing about the template
        s.settimeout(0.5)
        try:
            extra = s.recv(65536)
        except socket.timeout:
            extra = b''
        self.assertEqual(extra, b'', 'events leaked past the policy: %r' % extra)


class MissingPolicyDirTests(unittest.TestCase):
    """A policy directory that does not exist holds no rules; it does not break the policy (as
    /run/qubes/policy.d, which is often absent)."""

    def test_missing_directory_is_no_rules(self):
        shim = test_shim.find_shim()
        tmp = tempfile.mkdtemp(prefix='qubesd-policy-')
        self.addCleanup(shutil.rmtree, tmp, True)
        policy_dir = os.path.join(tmp, 'policy.d')
        os.makedirs(policy_dir)
        with open(os.path.join(policy_dir, '30-test.policy'), 'w') as f:
            f.write(POLICY)
        missing = os.path.join(tmp, 'run-policy.d')
        d = harness.Daemon(test_shim.FIXTURE_XML,
                           extra_args=['--policy-dir=' + missing, '--policy-dir=' + policy_dir])
        self.addCleanup(d.cleanup)
        d.start()
        door = test_shim.SocketDoor(shim, d)
        self.addCleanup(door.stop)
        reply = door.call(b'admin.vm.List+ test-vm1 name dom0\x00')
        self.assertEqual([line.split(' ')[0] for line in reply[2:].decode().splitlines()], ['dom0', 'test-vm1'])
        self.assertEqual(d.stop(), 0)


if __name__ == '__main__':
    harness.main()
