#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""scripts/demo as a user runs it: its qrexec door shows a qube what the demo's policy allows,
and its qubes have disk images, so their disk usage is not 0 bytes.

The demo gives qubesd its own policy directory (the shipped default admin policy and one grant:
"work" may read itself and "personal") and prints a qrexec-client-vm for qubes. Through it,
upstream's qvm-ls run as the qube "work" lists dom0, personal and work; "personal", which the
policy grants nothing, is refused. The printed backup lines work as pasted (qvm-backup with the
demo's profile through the shim, qubes-backup-restore --list of the archive). Runs the demo on the build under test (QUBES_BUILD_DIR) with
its state and runtime directories in a temporary directory.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

QVM = os.path.join(os.path.dirname(harness.SOURCE_DIR), 'shared', 'qubesadmin', 'qvm')


class DemoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = os.environ.get('QUBES_BUILD_DIR')
        if not build:
            raise unittest.SkipTest('QUBES_BUILD_DIR is not set')
        cls.tmp = tempfile.mkdtemp(prefix='qubesd-demo-test-')
        env = dict(os.environ, XDG_DATA_HOME=os.path.join(cls.tmp, 'data'), XDG_RUNTIME_DIR=cls.tmp,
                   QUBESD_DEMO_BUILD_DIR=build)
        cls.out_path = os.path.join(cls.tmp, 'demo.out')
        cls.out = open(cls.out_path, 'wb')
        cls.proc = subprocess.Popen(['bash', os.path.join(harness.SOURCE_DIR, 'scripts', 'demo')], env=env,
                                    stdout=cls.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        deadline = time.monotonic() + 120
        cls.client = None
        while time.monotonic() < deadline and cls.proc.poll() is None:
            m = re.search(r'QREXEC_SOURCE=work (\S+/qrexec-client-vm) dom0 admin.vm.List', cls.text())
            if m:
                cls.client = m.group(1)
                break
            time.sleep(0.1)
        if not cls.client:
            text = cls.text()
            cls.tearDownClass()
            raise AssertionError('the demo did not come up:\n' + text[-3000:])

    @classmethod
    def text(cls):
        with open(cls.out_path, 'rb') as f:
            return f.read().decode(errors='replace')

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)  # the demo stops what it started
            try:
                cls.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(cls.proc.pid, signal.SIGKILL)
                cls.proc.wait()
        cls.out.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, source, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env['QREXEC_SOURCE'] = source
        return subprocess.run([self.client] + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60)

    def test_vm_list_through_the_qrexec_door(self):
        r = self.call('work', 'dom0', 'admin.vm.List')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(b'0\x00'), r.stdout)
        names = [line.split(' ')[0] for line in r.stdout[2:].decode().splitlines()]
        self.assertEqual(names, ['dom0', 'personal', 'work'])
        r = self.call('personal', 'dom0', 'admin.vm.List')
        self.assertEqual(r.returncode, 126, 'the policy grants personal nothing: Request refused')

    def busctl(self, *args):
        address = re.search(r'DBUS address: (\S+)', self.text()).group(1)
        r = subprocess.run(['busctl', f'--address={address}'] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors='replace'))
        return r.stdout.decode().split()

    def test_disk_usage_is_what_lies_on_disk(self):
        # the demo's volumes exist as sparse images with some data: their usage is not 0 bytes
        usage = {}
        for qube, volume in (('work', 'private'), ('personal', 'private'),
                             ('debian_2d12_2dxfce', 'root')):
            out = self.busctl('get-property', 'org.qubes_os.Admin1',
                              f'/org/qubes_os/Admin1/domain/{qube}/volume/{volume}',
                              'org.qubes_os.Admin1.Volume', 'Usage')
            usage[qube] = int(out[1])
        self.assertTrue(all(u >= 1 << 20 for u in usage.values()), usage)
        self.assertGreater(usage['debian_2d12_2dxfce'], usage['work'])
        self.assertNotEqual(usage['work'], usage['personal'])
        # and the kernel the qubes name is installed: the kernel choosers list it
        out = self.busctl('call', 'org.qubes_os.Admin1', '/org/qubes_os/Admin1/pool/linux_2dkernel',
                          'org.qubes_os.Admin1.Pool', 'ListVolumes')
        self.assertEqual(out, ['as', '1', '"6.1.0-qubes"'])

    @unittest.skipUnless(os.access(QVM, os.X_OK), 'upstream client not found at ' + QVM)
    def test_qvm_ls_as_a_qube(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env.update(QREXEC_SOURCE='work', QUBESADMIN_TRANSPORT='qrexec', QREXEC_CLIENT_VM=self.client)
        r = subprocess.run([QVM, 'qvm-ls', '--raw-list'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors='replace'))
        self.assertEqual(sorted(r.stdout.decode().split()), ['dom0', 'personal', 'work'])
        r = subprocess.run([QVM, 'qvm-ls', '--fields', 'NAME,CLASS,TEMPLATE'], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors='replace'))
        rows = [line.split() for line in r.stdout.decode().splitlines()[1:]]
        self.assertIn(['work', 'AppVM', 'debian-12-xfce'], rows)
        env['QREXEC_SOURCE'] = 'sys-net'
        r = subprocess.run([QVM, 'qvm-ls', '--raw-list'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'Request refused', r.stderr)

    @unittest.skipUnless(os.access(QVM, os.X_OK), 'upstream client not found at ' + QVM)
    def test_qvm_backup_hint(self):
        """The printed backup lines, pasted: upstream's qvm-backup runs the demo's profile
        through the shim, and qubes-backup-restore lists what the archive holds."""
        text = self.text()
        m = re.search(r'QUBESD_SOCKET=(\S+) (\S+/qvm) qvm-backup --profile demo --yes', text)
        self.assertIsNotNone(m, 'no qvm-backup line in the demo output')
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env['QUBESD_SOCKET'] = m.group(1)
        r = subprocess.run([m.group(2), 'qvm-backup', '--profile', 'demo', '--yes'], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors='replace') + r.stderr.decode(errors='replace'))
        self.assertIn('work |', r.stdout.decode())
        m = re.search(r'echo demo \| (\S+) (--bus-address=\S+) --passphrase-file=- \\\n\s+--list "\$\(ls -t (\S+)/qubes-\*',
                      text)
        self.assertIsNotNone(m, 'no qubes-backup-restore line in the demo output')
        archives = [os.path.join(m.group(3), f) for f in os.listdir(m.group(3))]
        self.assertEqual(len(archives), 1, archives)
        r = subprocess.run([m.group(1), m.group(2), '--passphrase-file=-', '--list', archives[0]], input=b'demo\n',
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors='replace'))
        self.assertIn('work', r.stdout.decode())
        self.assertIn('personal', r.stdout.decode())

    @unittest.skipUnless(os.access(QVM, os.X_OK), 'upstream client not found at ' + QVM)
    def test_qvm_firewall_hint(self):
        """The printed firewall lines, pasted: upstream's qvm-firewall adds a rule through the
        shim and lists it."""
        text = self.text()
        add = re.search(r'QUBESD_SOCKET=(\S+) (\S+/qvm) (qvm-firewall work add [^\n]+)', text)
        lst = re.search(r'QUBESD_SOCKET=\S+ \S+/qvm (qvm-firewall work list)', text)
        self.assertIsNotNone(add, 'no qvm-firewall line in the demo output')
        self.assertIsNotNone(lst, 'no qvm-firewall list line in the demo output')
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env['QUBESD_SOCKET'] = add.group(1)
        for line in (add.group(3), lst.group(1)):
            r = subprocess.run([add.group(2)] + line.split(), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout.decode(errors='replace') + r.stderr.decode(errors='replace'))
        rows = [re.split(r'\s{2,}', row.strip()) for row in r.stdout.decode().splitlines()[1:]]
        self.assertIn(['1', 'accept', 'qubes-os.org', 'tcp', '443', '-', '-', '-', '-'], rows)


    @unittest.skipUnless(os.access(QVM, os.X_OK), 'upstream client not found at ' + QVM)
    def test_qvm_start_and_shutdown_hint(self):
        """The printed start/stop lines, pasted: upstream's qvm-start starts work (and its net
        qubes), qvm-ls --running lists them, qvm-shutdown --wait halts work again."""
        text = self.text()
        lines = {}
        for tool in ('qvm-start work', 'qvm-ls --running', 'qvm-shutdown --wait work'):
            m = re.search(r'QUBESD_SOCKET=(\S+) (\S+/qvm) (%s)\n' % re.escape(tool), text)
            self.assertIsNotNone(m, 'no "%s" line in the demo output' % tool)
            lines[tool] = m
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env['QUBESD_SOCKET'] = lines['qvm-start work'].group(1)
        qvm = lines['qvm-start work'].group(2)

        def run(args):
            r = subprocess.run([qvm] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(r.returncode, 0, ' '.join(args) + ': ' + r.stdout.decode(errors='replace') +
                             r.stderr.decode(errors='replace'))
            return r.stdout.decode()

        run(lines['qvm-start work'].group(3).split())
        running = run(lines['qvm-ls --running'].group(3).split())
        rows = {row.split()[0]: row.split() for row in running.splitlines()[1:] if row.strip()}
        for name in ('work', 'sys-firewall', 'sys-net'):
            self.assertIn(name, rows, running)
            self.assertIn('Running', rows[name], running)
        run(lines['qvm-shutdown --wait work'].group(3).split())
        self.assertNotIn('work', run(['qvm-ls', '--running', '--raw-list']).split())

if __name__ == '__main__':
    harness.main()
