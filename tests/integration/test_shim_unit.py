#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The shipped units, as systemd would run them.

* `systemd-analyze security --offline=yes` on the built qubesd.service and
  qubes-admin-shim.service: both "OK" or better (< 5.0); the tables are printed.
* The shim under its unit's user, not root: the users of the built sysusers.d file are created
  with systemd-sysusers; qubesd runs with the unit's ExecStart options on a private *system* bus
  (the installed busconfig); the shim runs as the unit's User=/Group= with the listening socket
  handed over as systemd does it (LISTEN_FDS, the .socket unit's group and mode). Upstream's
  qvm-ls and an admin.Events stream go through it; qubesd sees it as trusted (events of every
  qube, an identity per qube). Without qubesd's trust the same shim gets nothing.
* The qrexec service door as qrexec runs it: root, /etc/qubes-rpc/admin.* with QREXEC_*.

Changes the system's users (systemd-sysusers): run it under flock /tmp/qubesd-system-tests.lock
with the other tests that do. Needs root; skips otherwise.
"""

import configparser
import grp
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_shim  # noqa: E402
from harness import SystemBusDaemon  # noqa: E402

BUILD = os.environ.get('QUBES_BUILD_DIR') or os.path.join(harness.SOURCE_DIR, 'build')
QUBESD_UNIT = os.path.join(BUILD, 'data', 'qubesd.service')
SHIM_UNIT = os.path.join(BUILD, 'qrexec-shim', 'qubes-admin-shim.service')
SHIM_SOCKET_UNIT = os.path.join(BUILD, 'qrexec-shim', 'qubes-admin-shim.socket')
SYSUSERS = os.path.join(harness.SOURCE_DIR, 'data', 'sysusers.d', 'qubesd.conf')
QVM = os.path.join(os.path.dirname(harness.SOURCE_DIR), 'shared', 'qubesadmin', 'qvm')
LEVELS_OK = ('OK', 'SAFE', 'PERFECT')


def unit(path):
    """The unit's settings: {section: {key: [values]}} (a key may repeat)."""
    out = {}
    section = None
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('['):
                section = out.setdefault(line.strip('[]'), {})
            else:
                k, _, v = line.partition('=')
                section.setdefault(k.strip(), []).append(v.strip())
    return out


class SecurityTest(unittest.TestCase):
    def test_exposure_ok_or_better(self):
        tool = shutil.which('systemd-analyze')
        if not tool:
            self.skipTest('systemd-analyze is not installed')
        for path in (QUBESD_UNIT, SHIM_UNIT):
            if not os.path.exists(path):
                self.skipTest('%s is not built' % path)
            r = subprocess.run([tool, 'security', '--offline=yes', '--no-pager', path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            text = r.stdout.decode(errors='replace')
            if 'Unknown command verb' in text or 'unrecognized option' in text:
                self.skipTest('this systemd-analyze cannot assess a unit file offline: ' + text.strip()[:200])
            print(text, flush=True)
            m = re.search(r'Overall exposure level for \S+: ([0-9.]+) (\w+)', text)
            self.assertIsNotNone(m, text)
            self.assertIn(m.group(2), LEVELS_OK, '%s: %s %s' % (os.path.basename(path), m.group(1), m.group(2)))
            self.assertLess(float(m.group(1)), 5.0)


@unittest.skipIf(os.geteuid() != 0, 'needs root (users, a system bus, setpriv)')
class ShimUnitUserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ('systemd-sysusers', 'setpriv', 'dbus-daemon'):
            if not shutil.which(tool):
                raise unittest.SkipTest(tool + ' is not available')
        for path in (QUBESD_UNIT, SHIM_UNIT, SHIM_SOCKET_UNIT):
            if not os.path.exists(path):
                raise unittest.SkipTest('%s is not built' % path)
        cls.shim = test_shim.find_shim()
        # the users and groups exactly as the package creates them
        subprocess.run(['systemd-sysusers', SYSUSERS], check=True, stdout=subprocess.DEVNULL)
        svc = unit(SHIM_UNIT)['Service']
        cls.user, cls.group = svc['User'][0], svc['Group'][0]
        cls.uid, cls.gid = pwd.getpwnam(cls.user).pw_uid, grp.getgrnam(cls.group).gr_gid
        sock = unit(SHIM_SOCKET_UNIT)['Socket']
        cls.socket_group = grp.getgrnam(sock['SocketGroup'][0]).gr_gid
        cls.socket_mode = int(sock['SocketMode'][0], 8)
        # qubesd's options from its unit (the binary is the built one)
        argv = shlex.split(unit(QUBESD_UNIT)['Service']['ExecStart'][0])
        cls.qubesd_options = argv[1:]

        cls.dir = tempfile.mkdtemp(prefix='qubesd-unit-')
        os.chmod(cls.dir, 0o755)  # the shim's user reaches the sockets in it
        cls.bus, cls.address, cls.bus_conn = harness.start_system_bus(cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.bus_conn.close_sync(None)
        harness.stop_process(cls.bus, 10)
        if not os.environ.get('QUBES_TEST_KEEP'):
            shutil.rmtree(cls.dir, ignore_errors=True)

    def start(self, qubesd_options):
        self.private = os.path.join(self.dir, 'private')
        self.d = SystemBusDaemon(self.address, harness.DEMO_XML,
                                 extra_args=qubesd_options + ['--private-socket=' + self.private])
        self.addCleanup(self.d.cleanup)
        self.d.start()
        self.addCleanup(self.d.stop)
        st = os.stat(self.private)
        return st

    def start_shim(self):
        """The shim as systemd starts it from the .socket and .service units."""
        self.sock_path = os.path.join(self.dir, 'qubesd.sock')
        if os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(self.sock_path)
        os.chown(self.sock_path, 0, self.socket_group)
        os.chmod(self.sock_path, self.socket_mode)
        lsock.listen(64)
        self.addCleanup(lsock.close)
        env = {k: v for k, v in os.environ.items() if not k.startswith(('QREXEC', 'LISTEN_', 'NOTIFY'))}
        env.update(DBUS_SYSTEM_BUS_ADDRESS=self.address, QUBESD_PRIVATE_SOCKET=self.private)
        log = open(os.path.join(self.dir, 'shim.log'), 'ab')
        self.addCleanup(log.close)
        # fd 3 and LISTEN_PID as sd_listen_fds() wants them; setpriv keeps the pid
        script = ('export LISTEN_FDS=1 LISTEN_PID=$$; exec setpriv --reuid=%d --regid=%d --init-groups '
                  '--inh-caps=-all --bounding-set=-all --no-new-privs -- "$0" --listen-fd 3<&%d'
                  % (self.uid, self.gid, lsock.fileno()))
        proc = subprocess.Popen(['bash', '-c', script, self.shim], env=env, pass_fds=(lsock.fileno(),),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.addCleanup(stop)
        time.sleep(0.2)
        self.assertIsNone(proc.poll(), 'the shim exited: ' + self.shim_log())
        with open('/proc/%d/status' % proc.pid) as f:
            status = f.read()
        self.assertRegex(status, r'\nUid:\t%d\t%d\t%d\t%d\n' % ((self.uid,) * 4))
        self.assertRegex(status, r'\nCapEff:\t0+\n')
        return proc

    def shim_log(self):
        with open(os.path.join(self.dir, 'shim.log'), 'rb') as f:
            return f.read().decode(errors='replace')[-3000:]

    def door_call(self, request):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(self.sock_path)
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        out = b''
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
        return out

    def test_socket_door_as_the_units_user(self):
        st = self.start(self.qubesd_options)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (0, self.gid, 0o660),
                         'the private socket is given to the shim by group')
        self.start_shim()

        # dom0's tools through the door: upstream's qvm-ls, else the raw call
        if os.access(QVM, os.X_OK):
            r = subprocess.run([QVM, 'qvm-ls', '--raw-list'], env=dict(os.environ, QUBESD_SOCKET=self.sock_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors='replace') + self.shim_log())
            self.assertIn('work', r.stdout.decode().split())
        reply = self.door_call(b'admin.vm.List+ dom0 name dom0\x00')
        self.assertTrue(reply.startswith(b'0\x00'), reply)
        self.assertIn(b'\nwork class=AppVM', reply)

        # a qube's identity (SetCallerIdentity: trusted users only) and a change through the door
        reply = self.door_call(b'admin.vm.property.Get+label work name work\x00')
        self.assertEqual(reply, b'0\x00default=False type=label blue')

        # events come over the bus: broadcasts reach the shim's user (group qubes)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(self.sock_path)
        self.addCleanup(s.close)
        s.sendall(b'admin.Events+ dom0 name dom0\x00')
        s.shutdown(socket.SHUT_WR)
        reader = test_shim.EventReader(lambda: s.recv(65536))
        self.assertEqual(reader.frame(), ('', 'connection-established', []))
        self.assertEqual(self.door_call(b'admin.vm.feature.Set+unit-test dom0 name work\x00on'), b'0\x00')
        while True:
            f = reader.frame()
            if f[1] == 'domain-feature-set:unit-test':
                break
        self.assertEqual(f[0], 'work')

    def test_untrusted_shim_user_gets_nothing(self):
        # qubesd without the unit's --trusted-user: the private socket is refused to the shim,
        # and so is an identity on the bus
        self.start(['--private-socket-group=' + self.group])
        self.start_shim()
        reply = self.door_call(b'admin.vm.List+ dom0 name dom0\x00')
        self.assertFalse(reply.startswith(b'0\x00'), reply)
        self.assertIn('Refused a private connection from uid %d' % self.uid, self.d.log_tail())

    def test_service_door_as_qrexec_runs_it(self):
        self.start(self.qubesd_options)
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env.update(DBUS_SYSTEM_BUS_ADDRESS=self.address, QUBESD_PRIVATE_SOCKET=self.private,
                   QREXEC_REMOTE_DOMAIN='dom0', QREXEC_SERVICE_FULL_NAME='admin.vm.List+',
                   QREXEC_REQUESTED_TARGET_TYPE='name', QREXEC_REQUESTED_TARGET='dom0')
        r = subprocess.run(['/etc/qubes-rpc/admin.vm.List'], executable=self.shim, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(b'0\x00'), r.stdout)
        self.assertIn(b'\nwork class=AppVM', r.stdout)


if __name__ == '__main__':
    harness.main()
