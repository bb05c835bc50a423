#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Real guests: qubesd on qemu:///system boots a tiny Linux guest (Debian's cloud kernel and a
busybox initramfs) under QEMU TCG, waits for its serial console line, shuts it down, times out
a shutdown the guest ignores, notices a guest destroyed behind its back, and kills another.
Devices: a loop device hot-plugged into a running guest and out again (libvirt's live XML), one
deleted while attached kept until it is detached, a PCI attach refused with libvirt's reason.

Needs root, libvirtd with the QEMU driver, and the guest files. On Debian 12:

    sudo scripts/ci-libvirt-setup

which does, in short:

    apt-get install -y --no-install-recommends libvirt-daemon-system libvirt-daemon-driver-qemu \\
            libvirt-clients qemu-system-x86 busybox-static
    apt-get download <the linux-image-*-cloud-amd64 package that linux-image-cloud-amd64 depends
            on, found with apt-cache depends>; dpkg -x it; copy boot/vmlinuz-* to the guest dir
    build an initramfs: busybox as /init, packed with `busybox cpio -o -H newc` | gzip
    mkdir -p /var/log/libvirt; virtlogd -d; libvirtd -d

(do not create /etc/libvirt/qemu.conf before installing libvirt-daemon-system: dpkg stops at a
conffile prompt). The guest files are looked for in $QUBES_GUEST_DIR, default
/var/lib/qubesd-ci/guest (vmlinuz, initramfs). Without all of this the test is skipped with the
reason. Guests are type='qemu' (TCG): /dev/kvm exists on the CI machines but KVM guests hang.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Daemon, SignalCollector, domain_path  # noqa: E402

URI = 'qemu:///system'
GUEST_DIR = os.environ.get('QUBES_GUEST_DIR', '/var/lib/qubesd-ci/guest')
BOOT_TIMEOUT = float(os.environ.get('QUBES_GUEST_BOOT_TIMEOUT', '90'))
E = harness.ERROR_PREFIX


def why_not_runnable():
    if os.geteuid() != 0:
        return 'needs root (qemu:///system)'
    for tool in ('libvirtd', 'virsh', 'qemu-system-x86_64'):
        if not shutil.which(tool) and not os.path.exists('/usr/sbin/' + tool):
            return '%s is not installed: run scripts/ci-libvirt-setup' % tool
    for f in ('vmlinuz', 'initramfs'):
        if not os.path.exists(os.path.join(GUEST_DIR, f)):
            return 'no guest %s in %s: run scripts/ci-libvirt-setup' % (f, GUEST_DIR)
    r = subprocess.run(['virsh', '-c', URI, 'version'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    if r.returncode != 0:
        return 'libvirtd is not running (%s): run scripts/ci-libvirt-setup' % r.stderr.strip()
    return None


class TestQemuGuest(unittest.TestCase):
    assertDBusError = harness.DaemonTestCase.assertDBusError
    @classmethod
    def setUpClass(cls):
        reason = why_not_runnable()
        if reason:
            raise unittest.SkipTest(reason)

    def setUp(self):
        self.d = Daemon(harness.DEMO_XML, ['--libvirt-uri=' + URI])
        self.addCleanup(self.d.cleanup)
        self.names = []
        self.addCleanup(self.destroy_leftovers)
        # QEMU runs as libvirt-qemu: the kernel and the state dir must be reachable for it
        for p in (self.d.dir, self.d.state_dir):
            os.chmod(p, 0o755)
        kdir = os.path.join(self.d.state_dir, 'vm-kernels', 'ci')
        os.makedirs(kdir)
        os.chmod(os.path.dirname(kdir), 0o755)
        os.chmod(kdir, 0o755)
        for f in ('vmlinuz', 'initramfs'):
            shutil.copy(os.path.join(GUEST_DIR, f), os.path.join(kdir, f))
            os.chmod(os.path.join(kdir, f), 0o644)
        self.d.start()
        deadline = time.monotonic() + 30
        while 'Connected to libvirt' not in self.d.log_tail(200):
            self.assertLess(time.monotonic(), deadline, 'qubesd did not connect to %s:\n%s'
                            % (URI, self.d.log_tail()))
            time.sleep(0.05)
        self.events = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(self.events.close)

    def tearDown(self):
        if self.d.proc is not None:
            self.assertEqual(self.d.stop(), 0, self.d.log_tail())

    def destroy_leftovers(self):
        for n in self.names:
            subprocess.run(['virsh', '-c', URI, 'destroy', n], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)

    def make_guest(self, suffix, kernelopts=''):
        name = 'qci%d-%s' % (os.getpid() % 100000, suffix)
        self.names.append(name)
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', name, 'green', '', {}))
        self.d.set_property(name, 'netvm', '')
        self.d.set_property(name, 'kernel', 'ci')
        self.d.set_property(name, 'kernelopts', kernelopts)
        self.d.set_property(name, 'memory', '256')
        self.d.set_property(name, 'maxmem', '0')
        self.d.set_property(name, 'vcpus', '1')
        return name

    def console_log(self, name):
        return os.path.join(self.d.state_dir, 'vm-logs', name + '-console.log')

    def wait_console(self, name, marker, timeout=BOOT_TIMEOUT):
        t0 = time.monotonic()
        path = self.console_log(name)
        while time.monotonic() - t0 < timeout:
            try:
                with open(path, errors='replace') as f:
                    if marker in f.read():
                        return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.05)
        try:
            with open(path, errors='replace') as f:
                tail = f.read()[-2000:]
        except OSError as e:
            tail = str(e)
        self.fail('%s did not print %r within %.0f s; console:\n%s\nqubesd:\n%s'
                  % (name, marker, timeout, tail, self.d.log_tail()))

    def state(self, name):
        return self.d.dbus_get(domain_path(name), harness.DOMAIN_IFACE, 'PowerState')

    def names_of(self, name):
        self.events.pump(0.05)
        return [s[3][2] for s in self.events.signals if s[2] == 'Event' and s[3][1] == name]

    def reset_events(self):
        self.events.pump(0.05)  # what is already queued belongs to before
        self.events.signals.clear()

    def wait_state(self, name, want, timeout=30):
        deadline = time.monotonic() + timeout
        while self.state(name) != want:
            self.assertLess(time.monotonic(), deadline, '%s is %s, not %s' % (name, self.state(name), want))
            time.sleep(0.05)

    def test_boot_shutdown_and_kill(self):
        a = self.make_guest('a', 'qubesd_test_poweroff=8')
        t0 = time.monotonic()
        self.d.domain(a, 'Start')
        started = time.monotonic() - t0
        self.assertEqual(self.state(a), 'Running')
        booted = self.wait_console(a, 'QUBESD-GUEST-UP')
        sys.stderr.write('\n%s: Start replied in %.2f s, console line %.2f s later\n' % (a, started, booted))
        with open(self.console_log(a), errors='replace') as f:
            self.assertIn('console=ttyS0', f.read())
        mem, _, cputime, ps = self.d.domain(a, 'GetCurrentState')
        self.assertEqual((mem, ps), (256 * 1024, 'Running'))
        self.assertGreater(int(self.d.get_property(a, 'xid')[2]), 0)

        # busybox ignores the ACPI request; the guest powers itself off a few seconds later, and
        # Shutdown(wait) replies once libvirt has reported the stop
        self.d.domain(a, 'Shutdown', 'bb', (False, True))
        self.assertEqual(self.state(a), 'Halted')
        ev = self.names_of(a)
        self.assertEqual(ev[-6:], ['domain-pre-shutdown', 'domain-stopped', 'property-reset:xid',
                                   'property-reset:stubdom_xid', 'property-reset:start_time', 'domain-shutdown'])

        b = self.make_guest('b')
        self.d.set_property(b, 'shutdown_timeout', '2')
        self.d.domain(b, 'Start')
        self.wait_console(b, 'QUBESD-GUEST-UP')
        # a guest that ignores the request: the wait ends with upstream's timeout error
        self.reset_events()
        try:
            self.d.domain(b, 'Shutdown', 'bb', (False, True))
            self.fail('Shutdown of a guest that ignores ACPI did not time out')
        except harness.DBusError as e:
            self.assertEqual(e.name, E + 'QubesVMShutdownTimeoutError')
            self.assertEqual(e.message, "Domain shutdown timed out: '%s'" % b)
        self.assertIn('domain-shutdown-failed', self.names_of(b))
        self.assertEqual(self.state(b), 'Running')

        # destroyed behind qubesd's back: the libvirt event updates the state
        self.reset_events()
        subprocess.run(['virsh', '-c', URI, 'destroy', b], check=True, stdout=subprocess.DEVNULL, timeout=30)
        self.wait_state(b, 'Halted')
        deadline = time.monotonic() + 10
        while 'domain-shutdown' not in self.names_of(b):
            self.assertLess(time.monotonic(), deadline, 'no domain-shutdown after an outside destroy')
            time.sleep(0.05)

        # and killed through the API
        self.d.domain(b, 'Start')
        self.wait_console(b, 'QUBESD-GUEST-UP')
        self.reset_events()
        self.d.domain(b, 'Kill')
        self.assertEqual(self.state(b), 'Halted')
        self.assertEqual(self.names_of(b), ['domain-stopped', 'property-reset:xid', 'property-reset:stubdom_xid',
                                            'property-reset:start_time', 'domain-shutdown'])
        r = subprocess.run(['virsh', '-c', URI, 'domstate', b], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        self.assertNotIn('running', r.stdout, 'libvirt still runs %s' % b)
        self.assertDBusError_kill_halted(b)

    def read_until(self, fd, marker, timeout=BOOT_TIMEOUT):
        """Bytes read from fd until marker appears (or the time is up)."""
        import select
        got = b''
        deadline = time.monotonic() + timeout
        while marker not in got and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                got += chunk
        return got

    def test_console(self):
        """admin.vm.Console: the pty of the running guest's serial console shows what the guest
        prints; through the qrexec service script too (socat to the pty, one user at a time)."""
        import termios
        import tty
        c = self.make_guest('c')
        self.assertDBusError(E + 'QubesVMNotRunningError', self.d.domain, c, 'GetConsole',
                             message=r"^Domain not running \(either powered off or paused\): '%s'$" % c)
        self.d.domain(c, 'Start')
        pty = self.d.domain(c, 'GetConsole')[0]
        self.assertRegex(pty, r'^/dev/pts/[0-9]+$')
        fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd, termios.TCSANOW)
            out = self.read_until(fd, b'QUBESD-GUEST-UP')
        finally:
            os.close(fd)
        self.assertIn(b'QUBESD-GUEST-UP', out, 'the console pty showed:\n%r' % out[-2000:])
        self.d.domain(c, 'Kill')

        # the qrexec door: the script asks the shim, then connects its stdin/stdout to the pty
        script = os.path.join(os.environ.get('QUBES_BUILD_DIR', os.path.join(harness.SOURCE_DIR, 'build')),
                              'data', 'admin.vm.Console')
        shim = os.path.join(os.path.dirname(os.path.dirname(script)), 'qrexec-shim', 'qubes-admin-shim')
        if not (os.path.exists(script) and os.path.exists(shim) and shutil.which('socat')):
            self.skipTest('needs QUBES_BUILD_DIR with the shim and the script, and socat')
        env = self.d.shim_env()
        env.update(QREXEC_REMOTE_DOMAIN='dom0', QREXEC_REQUESTED_TARGET=c, QREXEC_REQUESTED_TARGET_TYPE='name',
                   QUBES_ADMIN_SHIM=shim, QUBES_CONSOLE_LOCK_DIR=self.d.dir)
        halted = subprocess.run(['sh', script], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                timeout=60)
        self.assertEqual(halted.returncode, 1)
        # the shim's exception reply: format and fields (docs/compatibility.md)
        self.assertEqual(halted.stdout, b"2\0QubesVMNotRunningError\0\0Domain not running (either powered off or "
                         b"paused): %%s\0'%s'\0" % c.encode())
        self.d.domain(c, 'Start')
        first = subprocess.Popen(['sh', script], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            out = self.read_until(first.stdout.fileno(), b'QUBESD-GUEST-UP')
            self.assertIn(b'QUBESD-GUEST-UP', out, 'the qrexec console showed:\n%r' % out[-2000:])
            second = subprocess.run(['sh', script], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    timeout=60)
            self.assertEqual(second.returncode, 200, 'a second console user waits for nobody')
        finally:
            first.kill()
            first.wait()
        self.d.domain(c, 'Kill')

    def live_xml(self, name):
        return subprocess.run(['virsh', '-c', URI, 'dumpxml', name], stdout=subprocess.PIPE, text=True,
                              check=True, timeout=30).stdout

    def wait_xml(self, name, predicate, what, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            xml = self.live_xml(name)
            if predicate(xml):
                return xml
            self.assertLess(time.monotonic(), deadline, '%s; live XML:\n%s' % (what, xml))
            time.sleep(0.1)

    def test_devices(self):
        """A loop device hot-plugged into the running guest (libvirt's live XML) and unplugged; one
        deleted while attached stays the guest's until detached, then goes; a PCI attach refused
        with libvirt's reason (no IOMMU here), leaving nothing behind."""
        if not os.path.exists('/dev/loop-control'):
            self.skipTest('no loop devices')
        dd = 'org.qubes_os.Admin1.DomainDevices'
        g = self.make_guest('dev')
        self.d.set_property(g, 'virt_mode', 'hvm')
        self.d.domain(g, 'Start')
        self.wait_console(g, 'QUBESD-GUEST-UP')
        img = os.path.join(self.d.dir, 'hotplug.img')
        with open(img, 'wb') as f:
            f.truncate(8 << 20)
        node = subprocess.run(['losetup', '-f', '--show', img], stdout=subprocess.PIPE, text=True,
                              check=True).stdout.strip()
        self.addCleanup(subprocess.run, ['losetup', '-d', node], stderr=subprocess.DEVNULL)
        port = os.path.basename(node)
        deadline = time.monotonic() + 10
        while port not in [p for p, _, _ in self.d.call(domain_path('dom0'), dd, 'ListAvailableDevices', 's',
                                                          ('block',))[0]]:
            self.assertLess(time.monotonic(), deadline, '%s not listed' % port)
            time.sleep(0.05)

        self.d.call(domain_path(g), dd, 'AttachDevice', 'ssssa(ss)s', ('block', 'dom0', port, '*', [], ''))
        xml = self.live_xml(g)
        self.assertIn("<source dev='%s'" % node, xml)
        self.assertIn("<target dev='vdi' bus='virtio'/>", xml)
        self.assertEqual([a[:4] for a in self.d.call(domain_path(g), dd, 'ListAttachedDevices', 's', ('block',))[0]],
                         [('dom0', port, ':' + port[4:], 'manual')])
        # qubesd restarts while the guest runs: the live XML says what it has
        self.d.restart()
        deadline = time.monotonic() + 30
        while not self.d.call(domain_path(g), dd, 'ListAttachedDevices', 's', ('block',))[0]:
            self.assertLess(time.monotonic(), deadline, 'the attachment was not found again:\n' + self.d.log_tail())
            time.sleep(0.05)
        self.assertEqual(self.d.call(domain_path(g), dd, 'ListAttachedDevices', 's', ('block',))[0],
                         [('dom0', port, ':' + port[4:], 'manual', g, [('read-only', 'no'), ('frontend-dev', 'xvdi')])])
        self.assertEqual(self.d.dbus_get(harness.device_path('block', 'dom0', port), 'org.qubes_os.Admin1.Device',
                                         'AttachedTo'), domain_path(g))
        self.events = SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(self.events.close)
        self.d.call(domain_path(g), dd, 'DetachDevice', 'sss', ('block', 'dom0', port))
        self.wait_xml(g, lambda x: node not in x, 'still in the guest after DetachDevice')

        # deleted while the guest holds it: the kernel only marks it (autoclear) and keeps it for
        # the guest, which keeps using it; once detached, the kernel clears it and it goes
        self.d.call(domain_path(g), dd, 'AttachDevice', 'ssssa(ss)s', ('block', 'dom0', port, '*',
                                                                      [('read-only', 'yes')], ''))
        self.assertIn('<readonly/>', self.live_xml(g))
        subprocess.run(['losetup', '-d', node], check=True)
        time.sleep(0.5)
        self.assertIn(node, self.live_xml(g))
        self.assertEqual(len(self.d.call(domain_path(g), dd, 'ListAttachedDevices', 's', ('block',))[0]), 1)
        self.reset_events()
        self.d.call(domain_path(g), dd, 'DetachDevice', 'sss', ('block', 'dom0', port))
        self.wait_xml(g, lambda x: node not in x, 'still in the guest after DetachDevice')
        deadline = time.monotonic() + 10
        while port in [p for p, _, _ in self.d.call(domain_path('dom0'), dd, 'ListAvailableDevices', 's',
                                                     ('block',))[0]]:
            self.assertLess(time.monotonic(), deadline, 'the deleted %s is still listed' % port)
            time.sleep(0.05)
        self.assertIn('device-removed:block', self.names_of('dom0'))

        # PCI: libvirt refuses (no IOMMU, no VFIO); the qube has no <hostdev> afterwards
        pci = harness.first_pci_port()
        try:
            self.d.call(domain_path(g), dd, 'AttachDevice', 'ssssa(ss)s', ('pci', 'dom0', pci, '*', [], ''))
            self.fail('a PCI attach succeeded on a host without IOMMU')
        except harness.DBusError as e:
            self.assertEqual(e.name, E + 'QubesException')
            self.assertRegex(e.message, r'^Failed to attach pci device dom0:%s:\S+ to %s: \S' % (re.escape(pci), g))
            sys.stderr.write('\nPCI attach refused: %s\n' % e.message)
        self.assertNotIn('<hostdev', self.live_xml(g))
        self.assertEqual(self.d.call(domain_path(g), dd, 'ListAttachedDevices', 's', ('pci',))[0], [])
        self.d.domain(g, 'Kill')

    def assertDBusError_kill_halted(self, name):
        try:
            self.d.domain(name, 'Kill')
        except harness.DBusError as e:
            self.assertEqual(e.name, E + 'QubesVMNotStartedError')
            self.assertEqual(e.message, "Domain is powered off: '%s'" % name)
            return
        self.fail('Kill of a halted qube succeeded')


if __name__ == '__main__':
    harness.main()
