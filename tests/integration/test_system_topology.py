#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The installed topology, end to end, driven by the real upstream qvm-* tools.

* a private *system* bus with the installed busconfig (harness.start_system_bus:
  data/org.qubes_os.Admin1.conf), found through DBUS_SYSTEM_BUS_ADDRESS;
* qubesd as systemd starts it from data/qubesd.service.in: no bus option (the system bus), its
  default private socket /run/qubesd/private, NOTIFY_SOCKET (Type=notify: READY=1 is awaited),
  UMask=0007, /run/qubesd made as RuntimeDirectory= does. Only what would leave the test's
  sandbox is moved: the state directory, the hypervisor (test:///default) and the qrexec policy
  directory (data/policy.d, as installed, plus one management qube's grant);
* the shim's service door as qrexec runs /etc/qubes-rpc/admin.*: the services directory is made
  by scripts/install-rpc-links (what `meson install` runs), qubes-qrexec-run is the
  qrexec-client-vm of the management qube `mgmt` and execs the shim as root with the QREXEC_*
  environment qrexec-daemon gives (docs/qrexec.md), no option and no QUBESD_PRIVATE_SOCKET: the
  shim finds /run/qubesd/private by itself, and the bus for admin.Events;
* the shim's socket door as qubes-admin-shim.socket starts it (`--listen-fd`, no other option),
  for dom0's tools.

Through them: qvm-start of a qube with its netvm chain (the netvms start first), qvm-pause,
qvm-unpause, qvm-shutdown --wait, qvm-kill, qvm-ls --running / --paused after each step, and a
disposable made by the client library (admin.vm.CreateDisposable).

Needs root (it uses /run/qubesd, as installed) and the upstream client
(../shared/qubesadmin/qvm, or QUBESADMIN_QVM); skips without. Run by hand under the system-tests
lock: flock /tmp/qubesd-system-tests.lock /usr/bin/python3 tests/integration/test_system_topology.py
(concurrent runs of this test are serialised by its own lock on /run/lock as well).
"""

import errno
import fcntl
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_runner  # noqa: E402
import test_shim  # noqa: E402

RUNTIME_DIR = '/run/qubesd'
PRIVATE_SOCKET = RUNTIME_DIR + '/private'
TOPOLOGY_LOCK = '/run/lock/qubesd-test-system-topology.lock'
POLICY_SRC = os.path.join(harness.SOURCE_DIR, 'data', 'policy.d')
INSTALL_RPC_LINKS = os.path.join(harness.SOURCE_DIR, 'scripts', 'install-rpc-links')
TOOL_TIMEOUT = 300 if harness.UNDER_WRAPPER else 60

# what an administrator adds to give a management qube the whole Admin API (the include files
# say how); both -ro files include their -rwx file
MGMT_GRANT = '''
mgmt @adminvm allow,target=dom0
mgmt @anyvm allow,target=dom0
'''


def find_qvm():
    path = os.environ.get('QUBESADMIN_QVM') or os.path.join(
        os.path.dirname(harness.SOURCE_DIR.rstrip('/')), 'shared', 'qubesadmin', 'qvm')
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest('the upstream client is not there (%s; QUBESADMIN_QVM)' % path)
    return path


def socket_is_live(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def take_topology_lock():
    """One run at a time on this machine: /run/qubesd/private is a fixed path. Returns the open
    lock file (closing it releases the lock)."""
    os.makedirs(os.path.dirname(TOPOLOGY_LOCK), exist_ok=True)
    lock = open(TOPOLOGY_LOCK, 'w')
    deadline = time.monotonic() + 600
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                lock.close()
                raise
            time.sleep(0.2)


class SystemdStartedQubesd(harness.SystemBusDaemon):
    """qubesd as data/qubesd.service.in starts it, on a system bus that is already running; the
    test's own calls (.call_conn) go over /run/qubesd/private, its signals come from the bus."""

    def __init__(self, bus_address, state_xml, policy_dir):
        super().__init__(bus_address, state_xml, route='private')
        self.private_socket = PRIVATE_SOCKET  # its default with the system bus
        self.policy_dir = policy_dir
        self.notify_path = os.path.join(self.dir, 'notify')
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.env = {'DBUS_SYSTEM_BUS_ADDRESS': bus_address, 'NOTIFY_SOCKET': self.notify_path}

    def command(self):
        # ExecStart=@sbindir@/qubesd: no option. These three keep it off the machine's state.
        wrapper = shlex.split(os.environ.get('QUBESD_WRAPPER', ''))
        # --init: the first start of a new system (qubesd refuses to start without qubes.xml)
        return wrapper + [self.qubesd, '--state-dir=' + self.state_dir, '--libvirt-uri=test:///default',
                          '--policy-dir=' + self.policy_dir, '--init']

    def spawn(self):
        old = os.umask(0o007)  # UMask=0007
        try:
            return super().spawn()
        finally:
            os.umask(old)

    def start(self, timeout=harness.START_TIMEOUT):
        """Start and wait for READY=1, as systemd does before it starts what is ordered after."""
        self.spawn()
        self.notify.settimeout(0.1)
        deadline = time.monotonic() + timeout
        messages = []
        while not any('READY=1' in m.split('\n') for m in messages):
            if self.proc.poll() is not None:
                raise AssertionError('qubesd exited with status %s before READY=1:\n%s'
                                     % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError('no READY=1 from qubesd within %.0f s:\n%s' % (timeout, self.log_tail()))
            try:
                messages.append(self.notify.recv(4096).decode())
            except socket.timeout:
                pass
        self.notify_messages = messages
        self._connect_calls()
        return self

    def cleanup(self):
        super().cleanup()
        self.notify.close()


class SystemTopologyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest('needs root: the installed topology uses /run/qubesd and a root shim')
        for tool in ('dbus-daemon', 'systemd-socket-activate'):
            if not shutil.which(tool):
                raise unittest.SkipTest(tool + ' is not available')
        harness.find_qubesd()
        cls.qvm_path = find_qvm()
        cls.shim = test_shim.find_shim()
        cls.runner = test_runner.find_build_binary('QUBES_QREXEC_RUN', 'qrexec-shim', 'runner', 'qubes-qrexec-run')

        cls.lock = take_topology_lock()
        cls.procs = []
        cls.made_runtime_dir = False
        try:
            if socket_is_live(PRIVATE_SOCKET):
                raise unittest.SkipTest('a qubesd already serves %s on this machine' % PRIVATE_SOCKET)
            if not os.path.isdir(RUNTIME_DIR):
                os.mkdir(RUNTIME_DIR, 0o755)  # RuntimeDirectory=qubesd, RuntimeDirectoryMode=0755
                cls.made_runtime_dir = True
            cls.dir = tempfile.mkdtemp(prefix='qubesd-topology-')
            bus, cls.address, cls.conn = harness.start_system_bus(cls.dir)
            cls.procs.append(bus)
            cls.make_policy()
            cls.make_services()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def make_policy(cls):
        cls.policy_dir = os.path.join(cls.dir, 'policy.d')
        shutil.copytree(POLICY_SRC, cls.policy_dir)
        for name in ('admin-local-rwx', 'admin-global-rwx'):
            with open(os.path.join(cls.policy_dir, 'include', name), 'a', encoding='utf-8') as f:
                f.write(MGMT_GRANT)

    @classmethod
    def make_services(cls):
        # /etc/qubes-rpc/admin.* as `meson install` makes them: the shim's method table
        cls.rpc_dir = os.path.join(cls.dir, 'qubes-rpc')
        env = {k: v for k, v in os.environ.items() if k != 'DESTDIR'}
        subprocess.run(['sh', INSTALL_RPC_LINKS, cls.shim, cls.rpc_dir, cls.shim], env=env, check=True,
                       timeout=60)
        # the management qube's qrexec-client-vm
        cls.client_vm = os.path.join(cls.dir, 'qrexec-client-vm')
        with open(cls.client_vm, 'w', encoding='utf-8') as f:
            f.write('#!/bin/sh\nexec %s --source=mgmt --policy-dir=%s --services-dir=%s "$@"\n'
                    % (cls.runner, cls.policy_dir, cls.rpc_dir))
        os.chmod(cls.client_vm, 0o755)

    @classmethod
    def tearDownClass(cls):
        for proc in reversed(getattr(cls, 'procs', [])):
            harness.stop_process(proc)
        if getattr(cls, 'dir', None):
            if os.environ.get('QUBES_TEST_KEEP'):
                sys.stderr.write('kept %s\n' % cls.dir)
            else:
                shutil.rmtree(cls.dir, ignore_errors=True)
        # a qubesd killed by a failed test leaves its socket (a clean stop removes it: tearDown)
        if getattr(cls, 'started', False) and os.path.exists(PRIVATE_SOCKET) and not socket_is_live(PRIVATE_SOCKET):
            os.unlink(PRIVATE_SOCKET)
        if cls.made_runtime_dir:
            try:
                os.rmdir(RUNTIME_DIR)
            except OSError as e:
                sys.stderr.write('%s left behind: %s\n' % (RUNTIME_DIR, e))
        cls.lock.close()

    def setUp(self):
        self.d = SystemdStartedQubesd(self.address, harness.DEMO_XML, self.policy_dir)
        self.addCleanup(self.d.cleanup)
        type(self).started = True
        self.d.start()
        # what systemd's ordering promises the units after qubesd.service
        self.assertTrue(harness.name_has_owner(self.conn, harness.BUS_NAME), 'READY=1 before the name')
        st = os.stat(PRIVATE_SOCKET)  # listening: .call_conn is connected to it
        self.assertTrue(stat.S_ISSOCK(st.st_mode), 'READY=1 before %s listens' % PRIVATE_SOCKET)
        self.assertEqual(st.st_mode & 0o077, 0, 'only root may connect to %s' % PRIVATE_SOCKET)
        # the management qube (made by dom0: root, over the private socket)
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'mgmt', 'black', '', {}))
        self.d.set_property('mgmt', 'netvm', '')
        self.events = harness.SignalCollector(self.conn, interface=harness.DOMAIN_IFACE, member='Event')
        self.addCleanup(self.events.close)
        self.monitor = harness.BusMonitor(self.address)
        self.addCleanup(self.monitor.close)
        # the libvirt connection opens in a worker after READY=1
        deadline = time.monotonic() + 10
        while 'Connected to libvirt' not in self.d.log_tail(200):
            self.assertLess(time.monotonic(), deadline, 'qubesd did not connect to libvirt:\n' + self.d.log_tail())
            time.sleep(0.01)

    def tearDown(self):
        status = self.d.stop()
        self.assertEqual(status, 0, 'qubesd exited with status %s:\n%s' % (status, self.d.log_tail()))
        self.assertFalse(os.path.exists(PRIVATE_SOCKET), 'qubesd left %s behind' % PRIVATE_SOCKET)

    def assert_over_the_private_socket(self, *members, bus_too=()):
        """The shims made these calls over /run/qubesd/private: none of them crossed the bus
        (which still carries what bus_too names, e.g. the runner's GetSystemInfo)."""
        seen = self.monitor.settle()
        for member in bus_too:
            self.assertIn(member, [m for _, m in seen], 'the bus monitor saw no %s: %r' % (member, seen))
        crossed = [c for c in seen if c[1] in members]
        self.assertEqual(crossed, [], 'calls that took the bus instead of %s' % PRIVATE_SOCKET)

    # --- the management qube's tools: qrexec, the service door --------------------------------

    def tool_env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('QREXEC') and k not in ('QUBESD_PRIVATE_SOCKET', 'QUBESD_SOCKET')}
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.address
        env['QUBESADMIN_TRANSPORT'] = 'qrexec'
        env['QREXEC_CLIENT_VM'] = self.client_vm
        return env

    def qvm(self, *args, env=None):
        r = subprocess.run([self.qvm_path] + list(args), env=env or self.tool_env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=TOOL_TIMEOUT)
        self.assertEqual(r.returncode, 0, '%s failed (%d):\n%s%s\nqubesd:\n%s'
                         % (' '.join(args), r.returncode, r.stdout, r.stderr, self.d.log_tail(20)))
        return r.stdout

    def listed(self, *filters, env=None):
        return set(self.qvm('qvm-ls', '--raw-list', *filters, env=env).split())

    def domain_events(self, name):
        """(subject, ...) of the domain Event signals named name so far, in order."""
        self.events.pump(0.05)
        return [s[3][1] for s in self.events.signals if s[3][2] == name]

    def test_lifecycle_of_a_qube_with_its_netvm_chain(self):
        chain = {'sys-net', 'sys-firewall', 'work'}
        before = self.listed('--running')
        self.assertFalse(chain & before, before)
        self.assertIn('mgmt', self.listed(), 'qvm-ls must list the qubes mgmt may see')

        self.qvm('qvm-start', 'work')
        self.assertEqual([q for q in self.domain_events('domain-start') if q in chain],
                         ['sys-net', 'sys-firewall', 'work'], 'the netvm chain starts first')
        self.assertEqual(self.listed('--running'), before | chain)

        self.qvm('qvm-pause', 'work')
        self.assertEqual(self.listed('--running'), before | {'sys-net', 'sys-firewall'})
        self.assertEqual(self.listed('--paused'), {'work'})

        self.qvm('qvm-unpause', 'work')
        self.assertEqual(self.listed('--running'), before | chain)
        self.assertEqual(self.listed('--paused'), set())

        # --wait follows admin.Events (the bus) until domain-shutdown
        self.qvm('qvm-shutdown', '--wait', 'work')
        self.assertIn('work', self.domain_events('domain-shutdown'))
        self.assertEqual(self.listed('--running'), before | {'sys-net', 'sys-firewall'})

        self.qvm('qvm-kill', 'sys-firewall', 'sys-net')
        self.assertEqual(self.listed('--running'), before)
        self.assertEqual(self.d.get_property('sys-net', 'xid')[2], '-1')
        # admin.vm.property.GetAll, whose payload qubesd writes (GetAllPropertiesText)
        prefs = self.qvm('qvm-prefs', 'work')
        self.assertRegex(prefs, r'(?m)^netvm\s+[-D]\s+sys-firewall\s*$')
        self.assertRegex(prefs, r'(?m)^name\s+[-D]\s+work\s*$')
        self.assert_over_the_private_socket('Start', 'Pause', 'Unpause', 'Shutdown', 'Kill', 'ListDomainsText',
                                            'GetAllDomainProperties', 'GetProperty', 'GetAllPropertiesText',
                                            bus_too=['GetSystemInfo'])

    def test_disposable(self):
        # what qvm-run --dispvm does before it runs anything: admin.vm.CreateDisposable, then
        # admin.vm.Start of the new qube
        script = ('import sys; sys.path.insert(0, %r)\n'
                  'import qubesadmin.app, qubesadmin.config, qubesadmin.vm\n'
                  'qubesadmin.config.QREXEC_CLIENT_VM = %r\n'
                  'app = qubesadmin.app.QubesRemote()\n'
                  'disp = qubesadmin.vm.DispVM.from_appvm(app, "default-dvm")\n'
                  'disp.start()\n'
                  'print(disp.name)\n'
                  % (os.path.join(os.path.dirname(self.qvm_path), 'client'), self.client_vm))
        r = subprocess.run(['/usr/bin/python3', '-c', script], env=self.tool_env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=TOOL_TIMEOUT)
        self.assertEqual(r.returncode, 0, 'CreateDisposable failed:\n%s%s' % (r.stdout, r.stderr))
        name = r.stdout.strip()
        self.assertRegex(name, r'^disp\d+$')
        self.assertIn(name, self.listed('--running'))
        self.assertIn('created-by-mgmt', self.d.domain(name, 'ListTags')[0])

        self.qvm('qvm-kill', name)
        deadline = time.monotonic() + 10
        while name in self.listed():
            self.assertLess(time.monotonic(), deadline, '%s not removed after it stopped' % name)
            time.sleep(0.1)
        self.assert_over_the_private_socket('CreateDisposable', 'Start', 'Kill', bus_too=['GetSystemInfo'])

    # --- dom0's tools: qubesd.sock, the socket door ---------------------------------------------

    def test_dom0_tools_through_the_socket_unit(self):
        # qubes-admin-shim.socket + qubes-admin-shim.service: ExecStart=... --listen-fd, in the
        # environment a unit has (systemd-socket-activate passes only LISTEN_* and -E)
        path = os.path.join(self.d.dir, 'qubesd.sock')
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC') and k != 'QUBESD_PRIVATE_SOCKET'}
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.address
        log = open(os.path.join(self.d.dir, 'shim.log'), 'ab')
        self.addCleanup(log.close)
        shim = subprocess.Popen(['systemd-socket-activate', '--listen=' + path, '-E', 'DBUS_SYSTEM_BUS_ADDRESS',
                                 self.shim, '--listen-fd'],
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(harness.stop_process, shim)
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            self.assertIsNone(shim.poll(), 'the socket door did not start')
            self.assertLess(time.monotonic(), deadline, 'the socket door did not listen on ' + path)
            time.sleep(0.01)
        dom0 = dict(env, QUBESD_SOCKET=path, QUBESADMIN_TRANSPORT='socket')

        self.assertNotIn('personal', self.listed('--running', env=dom0))
        self.qvm('qvm-start', 'personal', env=dom0)
        self.assertIn('personal', self.listed('--running', env=dom0))
        self.qvm('qvm-kill', 'personal', env=dom0)
        self.assertNotIn('personal', self.listed('--running', env=dom0))
        self.assert_over_the_private_socket('Start', 'Kill', 'ListDomainsText', 'GetAllDomainProperties',
                                            'GetProperty')



class StalePrivateSocketTest(unittest.TestCase):
    """A /run/qubesd/private that nobody serves any more (a qubesd killed with -9 leaves it) does
    not break the service door: the shim, which takes that socket only because it exists, calls
    over the system bus instead of failing every call."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest('needs root: /run/qubesd')
        self.lock = take_topology_lock()
        self.addCleanup(self.lock.close)
        if socket_is_live(PRIVATE_SOCKET):
            self.skipTest('a qubesd already serves %s on this machine' % PRIVATE_SOCKET)
        if not os.path.isdir(RUNTIME_DIR):
            os.mkdir(RUNTIME_DIR, 0o755)
            self.addCleanup(os.rmdir, RUNTIME_DIR)
        if os.path.exists(PRIVATE_SOCKET):
            os.unlink(PRIVATE_SOCKET)
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(PRIVATE_SOCKET)  # bound, never listened on, closed: what a killed qubesd leaves
        stale.close()
        self.addCleanup(os.unlink, PRIVATE_SOCKET)
        self.d = harness.Daemon(harness.DEMO_XML)  # on its own bus, no private socket
        self.addCleanup(self.d.cleanup)
        self.d.start()
        self.addCleanup(self.d.stop)

    def test_the_shim_takes_the_bus(self):
        argv, env, payload = test_shim.service_invocation(None, self.d, b'admin.vm.List dom0 name dom0\0')
        del env['QUBESD_PRIVATE_SOCKET']  # as /etc/qubes-rpc runs it: the default
        r = subprocess.run(argv, executable=test_shim.find_shim(), env=env, input=payload,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertTrue(r.stdout.startswith(b'0\0dom0 class=AdminVM state=Running'),
                        'admin.vm.List with a stale %s: %r %r' % (PRIVATE_SOCKET, r.stdout[:200], r.stderr[-500:]))

if __name__ == '__main__':
    harness.main()
