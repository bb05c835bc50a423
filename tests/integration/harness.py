# SPDX-License-Identifier: LGPL-2.1-or-later
"""Test harness for qubesd: a private dbus-daemon and a qubesd on it, in a temporary directory.

Run with Debian's /usr/bin/python3 (python3-gi). Environment:
  QUBESD            path of the qubesd binary (meson sets it; default: build dirs are searched)
  QUBES_SOURCE_DIR  the source tree (default: two levels above this file)
  QUBES_TEST_KEEP   if set, temporary directories are kept for inspection
  QUBESD_WRAPPER    a command line qubesd is run under, e.g. "valgrind --error-exitcode=99"
                    (scripts/valgrind-check); split like a shell would, without expansion
  QUBES_TEST_ROUTES the routes @over_each_route runs (comma-separated; default bus,private)

Routes. A client reaches qubesd by one of two routes: through the bus daemon ('bus'), or over
qubesd's private socket ('private', `qubesd --private-socket`), the direct connection the shim
makes its calls on in the installed topology. `Daemon(route=...)` starts qubesd for either; a
test class decorated with @over_each_route runs once per route, as CLASS_bus and CLASS_private
(the route is in every test's name), when its module says `load_tests = harness.load_tests`.
"""

import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import gi

gi.require_version('Gio', '2.0')
gi.require_version('GLib', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = 'org.qubes_os.Admin1'
ROOT_PATH = '/org/qubes_os/Admin1'
IFACE = 'org.qubes_os.Admin1'
MANAGER_IFACE = IFACE + '.Manager'
DOMAIN_IFACE = IFACE + '.Domain'
QUBESVM_IFACE = IFACE + '.QubesVM'
LABEL_IFACE = IFACE + '.Label'
ERROR_PREFIX = IFACE + '.Error.'
PROPS_IFACE = 'org.freedesktop.DBus.Properties'

SOURCE_DIR = os.environ.get('QUBES_SOURCE_DIR') or os.path.abspath(
    os.path.join(os.path.dirname(__file__), '..', '..'))
DEMO_XML = os.path.join(SOURCE_DIR, 'data', 'demo-qubes.xml')
EXAMPLE_XML = os.path.join(SOURCE_DIR, 'tests', 'data', 'example-qubes.xml')
INTERFACES_DIR = os.path.join(SOURCE_DIR, 'dbus-interfaces')
TEST_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
# A bus of type system: the default policy of /usr/share/dbus-1/system.conf, the policies of
# /usr/share/dbus-1/system.d (polkitd's) and qubesd's installed busconfig
SYSTEM_BUS_CONF = os.path.join(SOURCE_DIR, 'tests', 'data', 'system-bus.conf.in')
ADMIN_BUSCONFIG = os.path.join(SOURCE_DIR, 'data', 'org.qubes_os.Admin1.conf')

START_TIMEOUT = float(os.environ.get('QUBESD_START_TIMEOUT', '30'))
# qubesd runs under a wrapper (valgrind: some 30 times slower): latency bounds do not hold
UNDER_WRAPPER = bool(os.environ.get('QUBESD_WRAPPER'))
timing_sensitive = unittest.skipIf(UNDER_WRAPPER, 'latency bound; qubesd runs under QUBESD_WRAPPER')
CALL_TIMEOUT_MS = 30000
ROUTES = ('bus', 'private')
TEST_ROUTES = [r for r in os.environ.get('QUBES_TEST_ROUTES', ','.join(ROUTES)).split(',') if r]
for _r in TEST_ROUTES:
    if _r not in ROUTES:
        raise SystemExit('QUBES_TEST_ROUTES: unknown route %r (routes: %s)' % (_r, ', '.join(ROUTES)))


def find_qubesd():
    path = os.environ.get('QUBESD')
    if path:
        return path
    for build in ('build', 'build-test', 'builddir'):
        candidate = os.path.join(SOURCE_DIR, build, 'service', 'qubesd')
        if os.access(candidate, os.X_OK):
            return candidate
    raise unittest.SkipTest('QUBESD is not set and no built qubesd was found')


def domain_path(name):
    """The object path of a qube, escaped as sd_bus_path_encode() does."""
    return ROOT_PATH + '/domain/' + bus_path_escape(name)


def first_pci_port():
    """The PCI path (devices' port_id) of this machine's first PCI device on a root bus."""
    names = sorted(n for n in os.listdir('/sys/bus/pci/devices'))
    for sbdf in names:
        parts = os.path.realpath('/sys/bus/pci/devices/' + sbdf).split('/')
        if len(parts) >= 2 and parts[-2].startswith('pci'):
            seg, bus, devfn = sbdf.split(':')
            return ('' if seg == '0000' else seg + '_') + bus + '_' + devfn
    raise unittest.SkipTest('no PCI device on a root bus')


def device_path(devclass, backend, port):
    """The object path of a device (sd_bus_path_encode_many of each component)."""
    return '/'.join([ROOT_PATH, 'device', bus_path_escape(devclass), bus_path_escape(backend),
                     bus_path_escape(port)])


def label_path(name):
    return ROOT_PATH + '/label/' + bus_path_escape(name)


def bus_path_escape(s):
    if s == '':
        return '_'
    out = []
    for i, ch in enumerate(s.encode()):
        c = chr(ch)
        if (c.isascii() and c.isalpha()) or (c.isdigit() and i > 0):
            out.append(c)
        else:
            out.append('_%02x' % ch)
    return ''.join(out)


class DBusError(Exception):
    """An error reply: name, message (the first string of the body) and the whole body."""

    def __init__(self, name, message, body=()):
        super().__init__('%s: %s' % (name, message))
        self.name = name
        self.message = message
        self.body = tuple(body)


# what a failed call raises: an error reply, or a GLib error (timeout, disconnection)
CallError = (DBusError, GLib.Error)


def dbus_error_name(exc):
    """The D-Bus error name of a failed call (or None)."""
    if isinstance(exc, DBusError):
        return exc.name
    if isinstance(exc, GLib.Error) and Gio.DBusError.is_remote_error(exc):
        return Gio.DBusError.get_remote_error(exc)
    return None


def dbus_error_message(exc):
    if isinstance(exc, DBusError):
        return exc.message
    if isinstance(exc, GLib.Error) and Gio.DBusError.is_remote_error(exc):
        copy = exc.copy()
        Gio.DBusError.strip_remote_error(copy)
        return copy.message
    return str(exc)


def parse_xml_file(path):
    """Parse qubes.xml; raises an AssertionError with the reason if it does not parse."""
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        raise AssertionError('%s does not parse: %s' % (path, e)) from e


def xml_domain_property(root, domain, prop):
    """The text of <property name=prop> of the named domain in a parsed qubes.xml, or None."""
    for d in root.iter('domain'):
        props = d.find('properties')
        if props is None:
            continue
        name = None
        value = None
        found = False
        for p in props.findall('property'):
            if p.get('name') == 'name':
                name = p.text or ''
            if p.get('name') == prop:
                value = p.text or ''
                found = True
        if name is None and d.get('class') == 'AdminVM':
            name = 'dom0'
        if name == domain:
            return value if found else None
    raise AssertionError('qube %r is not in qubes.xml' % domain)


# The daemons not cleaned up yet: when a test fails, their logs go to stderr (meson's
# --print-errorlogs shows them in CI), before the test's clean-ups delete them.
_LIVE_DAEMONS = []


def _print_live_logs(test):
    for d in list(_LIVE_DAEMONS):
        sys.stderr.write('--- qubesd log of %s (%s), last 80 lines, at the failure ---\n%s\n--- end ---\n'
                         % (test, d.dir, d.log_tail(80)))


def _hook_result(method, failed):
    original = getattr(unittest.TestResult, method)

    def hooked(self, test, *args):
        if failed(*args):
            _print_live_logs(test)
        return original(self, test, *args)
    setattr(unittest.TestResult, method, hooked)


# Python 3.11 reports a failure as it happens, while the test's daemon still runs (a subtest's
# with its error, None when it passed)
_hook_result('addFailure', lambda err: True)
_hook_result('addError', lambda err: True)
_hook_result('addSubTest', lambda subtest, err: err is not None)


class Daemon:
    """A private bus and a qubesd on it. Use start(), then .call_conn for calls (the route's
    connection: the bus, or qubesd's private socket) and .conn for the bus itself (signals, names);
    stop() or cleanup() at the end."""

    def __init__(self, qubes_xml=None, extra_args=(), substitute_pool_dir=True, route='bus'):
        if route not in ROUTES:
            raise ValueError('route must be one of %s, not %r' % (ROUTES, route))
        self.qubesd = find_qubesd()
        self.route = route
        self.dir = tempfile.mkdtemp(prefix='qubesd-test-')
        self.bus_path = os.path.join(self.dir, 'bus')
        self.address = 'unix:path=' + self.bus_path
        self.state_dir = os.path.join(self.dir, 'state')
        self.xml_path = os.path.join(self.state_dir, 'qubes.xml')
        self.log_path = os.path.join(self.dir, 'qubesd.log')
        self.extra_args = list(extra_args)
        self.init = True  # --init: a state dir without qubes.xml becomes a new system
        self.private_socket = os.path.join(self.dir, 'private') if route == 'private' else None
        self.env = {}  # added to qubesd's environment
        self.bus_proc = None
        self.proc = None
        self.conn = None
        self.call_conn = None
        self.starts = 0
        _LIVE_DAEMONS.append(self)
        os.makedirs(self.state_dir)
        if qubes_xml is not None:
            self.seed(qubes_xml, substitute_pool_dir)

    # --- set-up -----------------------------------------------------------------------------

    def seed(self, src, substitute_pool_dir=True):
        """Copy a qubes.xml into the state dir (pool paths moved from /var/lib/qubes to it)."""
        with open(src, encoding='utf-8') as f:
            text = f.read()
        if substitute_pool_dir:
            text = text.replace('dir_path="/var/lib/qubes', 'dir_path="' + self.state_dir)
        with open(self.xml_path, 'w', encoding='utf-8') as f:
            f.write(text)

    def start_bus(self):
        if self.bus_proc:
            return
        self.bus_proc = subprocess.Popen(
            ['dbus-daemon', '--session', '--nofork', '--nopidfile',
             '--address=' + self.address, '--print-address=1'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self.bus_proc.stdout.readline().decode().strip()
        if not line:
            err = self.bus_proc.stderr.read().decode()
            raise RuntimeError('dbus-daemon did not start: ' + err)
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        self.conn.set_exit_on_close(False)

    def command(self):
        wrapper = shlex.split(os.environ.get('QUBESD_WRAPPER', ''))
        private = ['--private-socket=' + self.private_socket] if self.private_socket else []
        init = ['--init'] if self.init else []
        return wrapper + [self.qubesd, '--bus-address=' + self.address, '--state-dir=' + self.state_dir,
                '--libvirt-uri=test:///default'] + init + private + self.extra_args

    def connect(self):
        """A new client connection by the route: to the bus, or straight to the private socket
        (peer to peer: no bus name, no signals from the bus)."""
        if self.route == 'private':
            conn = Gio.DBusConnection.new_for_address_sync(
                'unix:path=' + self.private_socket, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT, None, None)
        else:
            conn = Gio.DBusConnection.new_for_address_sync(
                self.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
                Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        conn.set_exit_on_close(False)
        if self.route == 'private':
            self._prime(conn)
        return conn

    @staticmethod
    def _prime(conn):
        """Get a first reply on a new private connection. A message that reaches qubesd in the
        same read as the client's BEGIN was left unprocessed by the server side of sd-bus
        (libsystemd 252) until the next bytes arrived on that connection; GDBus sends its first
        message right after BEGIN, so its first call could hang (libdbus's almost always). sd-bus
        clients (the shim) never were affected. qubesd handles it since branch house's 782f44e
        (tested there by test_private_bus); until then a Ping that times out here is answered
        once the next one arrives, and after it the first Ping is simply answered."""
        wait_ms = 25
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                conn.call_sync(None, '/', 'org.freedesktop.DBus.Peer', 'Ping', None, None,
                               Gio.DBusCallFlags.NONE, wait_ms, None)
                return
            except GLib.Error as e:
                if not e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
                    raise
            wait_ms = min(wait_ms * 2, 5000)
        raise AssertionError('no reply to Peer.Ping on a new private connection')

    def _connect_calls(self):
        self._close_calls()
        self.call_conn = self.connect() if self.route == 'private' else self.conn

    def _close_calls(self):
        if self.call_conn is not None and self.call_conn is not self.conn:
            try:
                self.call_conn.close_sync(None)
            except GLib.Error:
                pass
        self.call_conn = None

    # --- the shim, by the same route ----------------------------------------------------------

    def shim_args(self):
        """Options of a qubes-admin-shim (--listen) that calls this qubesd by the route."""
        args = ['--bus-address=' + self.address]
        if self.private_socket:
            args.append('--private-socket=' + self.private_socket)
        return args

    def shim_env(self, base=None):
        """The environment of a shim run as a qrexec service (or started by a runner) for this
        qubesd: the bus as the system bus, QUBESD_PRIVATE_SOCKET by the route (empty: the bus,
        even when a /run/qubesd/private exists on this machine), no QREXEC_* variables."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith('QREXEC')}
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.address
        env['QUBESD_PRIVATE_SOCKET'] = self.private_socket or ''
        return env

    def spawn(self):
        """Start qubesd without waiting for it (it may be expected to fail)."""
        self.start_bus()
        self.log = open(self.log_path, 'ab')
        self.log.write(b'--- start %d ---\n' % self.starts)
        self.log.flush()
        self.starts += 1
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=dict(os.environ, **self.env))
        return self.proc

    def name_owner(self):
        try:
            reply = self.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                        'org.freedesktop.DBus', 'GetNameOwner',
                                        GLib.Variant('(s)', (BUS_NAME,)), GLib.VariantType('(s)'),
                                        Gio.DBusCallFlags.NONE, 5000, None)
            return reply.unpack()[0]
        except GLib.Error:
            return None

    def start(self, timeout=START_TIMEOUT):
        """Start qubesd and wait until it owns the bus name."""
        old_owner = self.name_owner() if self.conn else None
        connected_before = self._libvirt_connections()
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owner = self.name_owner()
            if owner and owner != old_owner:
                # the private socket listens before the name is requested
                self._connect_calls()
                self._wait_libvirt(connected_before)
                return self
            if self.proc.poll() is not None:
                raise AssertionError('qubesd exited with status %s before owning %s:\n%s'
                                     % (self.proc.returncode, BUS_NAME, self.log_tail()))
            time.sleep(0.01)
        raise AssertionError('qubesd did not own %s within %.0f s:\n%s'
                             % (BUS_NAME, timeout, self.log_tail()))

    def _libvirt_connections(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().count(b'Connected to libvirt at ')
        except OSError:
            return 0

    def _wait_libvirt(self, before, timeout=5):
        """qubesd connects to libvirt in the background once it serves; the host's figures
        (Manager.Maxmem and what follows from it) are libvirt's node from then on, /proc/meminfo's
        before. Tests compare values read at different moments: they start once it is connected
        (or after a few seconds, for a libvirt that cannot be reached)."""
        uris = [a for a in self.command() if a.startswith('--libvirt-uri=')]
        if uris[-1:] != ['--libvirt-uri=test:///default']:
            return
        deadline = time.monotonic() + timeout * (20 if UNDER_WRAPPER else 1)
        while self._libvirt_connections() <= before and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return
            time.sleep(0.005)

    def wait_name_gone(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.name_owner():
                return
            time.sleep(0.005)
        raise AssertionError('%s still owned %.0f s after qubesd ended' % (BUS_NAME, timeout))

    # --- stopping -----------------------------------------------------------------------------

    def stop(self, timeout=20):
        """SIGTERM qubesd and wait; returns its exit status (None if it was not running)."""
        if not self.proc:
            return None
        self._close_calls()
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError('qubesd did not exit within %d s of SIGTERM:\n%s'
                                     % (timeout, self.log_tail()))
        self.log.close()
        if self.conn:
            self.wait_name_gone()
        return proc.returncode

    def kill9(self):
        """SIGKILL qubesd (a crash at whatever instant it is in)."""
        if not self.proc:
            return
        self._close_calls()
        proc, self.proc = self.proc, None
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        self.log.close()
        self.wait_name_gone()

    def restart(self):
        status = self.stop()
        if status not in (None, 0):
            raise AssertionError('qubesd exited with status %s on SIGTERM:\n%s'
                                 % (status, self.log_tail()))
        return self.start()

    def cleanup(self):
        if self in _LIVE_DAEMONS:
            _LIVE_DAEMONS.remove(self)
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self._close_calls()
        if self.conn:
            try:
                self.conn.close_sync(None)
            except GLib.Error:
                pass
            self.conn = None
        if self.bus_proc:
            self.bus_proc.terminate()
            try:
                self.bus_proc.wait(5)
            except subprocess.TimeoutExpired:
                self.bus_proc.kill()
                self.bus_proc.wait()
            for f in (self.bus_proc.stdout, self.bus_proc.stderr):
                f.close()
            self.bus_proc = None
        if os.environ.get('QUBES_TEST_KEEP'):
            sys.stderr.write('kept %s\n' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, 'rb') as f:
                lines = f.read().decode(errors='replace').splitlines()
        except OSError:
            return '(no log)'
        return '\n'.join(lines[-n:])

    # --- calls --------------------------------------------------------------------------------

    def call(self, path, iface, method, signature=None, args=(), reply_type=None,
             timeout_ms=CALL_TIMEOUT_MS, conn=None):
        """A method call (on conn, default .call_conn); returns the reply body as a tuple, raises
        DBusError on an error reply. (GDBus's call_sync() keeps the error message only when the
        body is exactly (s).)"""
        msg = Gio.DBusMessage.new_method_call(BUS_NAME, path, iface, method)
        if signature is not None:
            msg.set_body(GLib.Variant('(' + signature + ')', tuple(args)))
        msg.set_flags(Gio.DBusMessageFlags.NO_AUTO_START)
        reply, _ = (conn or self.call_conn).send_message_with_reply_sync(msg, Gio.DBusSendMessageFlags.NONE,
                                                                         timeout_ms, None)
        body = reply.get_body()
        if reply.get_message_type() == Gio.DBusMessageType.ERROR:
            values = body.unpack() if body is not None else ()
            message = values[0] if values and isinstance(values[0], str) else ''
            raise DBusError(reply.get_error_name(), message, values)
        if reply_type is not None:
            got = '(' + (reply.get_signature() or '') + ')'
            if got != reply_type:
                raise AssertionError('%s.%s replied %s, expected %s' % (iface, method, got, reply_type))
        return body.unpack() if body is not None else ()

    def manager(self, method, signature=None, args=(), reply_type=None):
        return self.call(ROOT_PATH, MANAGER_IFACE, method, signature, args, reply_type)

    def domain(self, name, method, signature=None, args=(), reply_type=None):
        return self.call(domain_path(name), DOMAIN_IFACE, method, signature, args, reply_type)

    def get_property(self, name, prop):
        """GetProperty on a qube: (type, is_default, value)."""
        return tuple(self.domain(name, 'GetProperty', 's', (prop,)))

    def set_property(self, name, prop, value):
        self.domain(name, 'SetProperty', 'ss', (prop, value))

    def dbus_get(self, path, iface, prop):
        return self.call(path, PROPS_IFACE, 'Get', 'ss', (iface, prop))[0]

    def dbus_get_all(self, path, iface):
        return self.call(path, PROPS_IFACE, 'GetAll', 's', (iface,))[0]

    def introspect(self, path, conn=None):
        return self.call(path, 'org.freedesktop.DBus.Introspectable', 'Introspect', conn=conn)[0]

    def busctl(self, *args, check=True):
        cmd = ['busctl', '--address=' + self.address, '--no-pager'] + list(args)
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        if check and r.returncode != 0:
            raise AssertionError('%s failed (%d): %s%s' % (' '.join(cmd), r.returncode,
                                                           r.stdout, r.stderr))
        return r

    def xml_bytes(self):
        with open(self.xml_path, 'rb') as f:
            return f.read()


def start_system_bus(directory):
    """A private system bus (SYSTEM_BUS_CONF) on DIRECTORY/system_bus_socket: programs find it
    through DBUS_SYSTEM_BUS_ADDRESS. Returns (dbus-daemon process, address, connection); stop it
    with stop_process()."""
    address = 'unix:path=' + os.path.join(directory, 'system_bus_socket')
    conf = os.path.join(directory, 'system.conf')
    with open(SYSTEM_BUS_CONF, encoding='utf-8') as t:
        template = t.read()
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(template.format(address=address, qubes_conf=ADMIN_BUSCONFIG))
    bus = subprocess.Popen(['dbus-daemon', '--config-file=' + conf, '--nofork', '--nopidfile',
                            '--print-address=1'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if not bus.stdout.readline():
        err = bus.stderr.read().decode()
        stop_process(bus)
        raise AssertionError('the system dbus-daemon did not start: ' + err)
    conn = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    conn.set_exit_on_close(False)
    return bus, address, conn


def stop_process(proc, timeout=5):
    """SIGTERM, then SIGKILL after timeout; closes its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f:
            f.close()


def name_has_owner(conn, name):
    reply = conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                           'NameHasOwner', GLib.Variant('(s)', (name,)), GLib.VariantType('(b)'),
                           Gio.DBusCallFlags.NONE, 5000, None)
    return reply.unpack()[0]


class SystemBusDaemon(Daemon):
    """qubesd (--bus-address) on a bus that is already running, e.g. a start_system_bus()."""

    def __init__(self, address, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address

    def start_bus(self):
        if self.conn:
            return
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        self.conn.set_exit_on_close(False)



def become_monitor(address, rules, message_filter):
    """A new connection to the bus at address that becomes a monitor
    (org.freedesktop.DBus.Monitoring.BecomeMonitor: the bus's own user, or root on a system bus)
    of the messages matching rules (a list of match rules; empty: every message), each handed to
    message_filter(conn, msg, incoming) in GDBus's worker thread. Returns the connection."""
    conn = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    conn.set_exit_on_close(False)
    conn.add_filter(message_filter)
    conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.Monitoring',
                   'BecomeMonitor', GLib.Variant('(asu)', (rules, 0)), None, Gio.DBusCallFlags.NONE, 5000, None)
    return conn

class BusMonitor:
    """Every method call to qubesd that crosses a bus (org.freedesktop.DBus.Monitoring.BecomeMonitor:
    the bus's own user, or root on a system bus), as (interface, member) in .calls."""

    def __init__(self, address):
        self.calls = []
        self.conn = become_monitor(address, ["type='method_call',destination='%s'" % BUS_NAME], self._filter)

    def _filter(self, conn, msg, incoming):
        # runs in GDBus's worker thread; a monitor must never answer, so the calls it sees go no
        # further (GDBus would reply to them)
        if incoming and msg.get_message_type() == Gio.DBusMessageType.METHOD_CALL:
            self.calls.append((msg.get_interface(), msg.get_member()))
            return None
        return msg

    def settle(self):
        """The calls so far, once the bus has delivered what it had (a round trip on another
        connection is not enough: the monitor has its own queue; a short wait is)."""
        SignalCollector.pump(0.05)
        return list(self.calls)

    def close(self):
        try:
            self.conn.close_sync(None)
        except GLib.Error:
            pass


class SignalCollector:
    """Collects signals matching a filter, dispatched by iterating the default main context."""

    def __init__(self, conn, interface=None, member=None, path=None, sender=BUS_NAME):
        self.conn = conn
        self.signals = []
        self.id = conn.signal_subscribe(sender, interface, member, path, None,
                                        Gio.DBusSignalFlags.NONE, self._on_signal)
        # make sure the match rule is installed before the test acts
        conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                       'GetId', None, None, Gio.DBusCallFlags.NONE, 5000, None)
        self.pump(0.05)

    def _on_signal(self, conn, sender, path, iface, member, params):
        self.signals.append((path, iface, member, params.unpack()))

    @staticmethod
    def pump(seconds):
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + seconds
        while True:
            while ctx.pending():
                ctx.iteration(False)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.002)

    def wait_for(self, predicate, timeout=5.0):
        """Pump until predicate(self.signals) is true; returns whether it became true."""
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while ctx.pending():
                ctx.iteration(False)
            if predicate(self.signals):
                return True
            time.sleep(0.002)
        return predicate(self.signals)

    def close(self):
        if self.id is not None:
            self.conn.signal_unsubscribe(self.id)
            self.id = None


class DaemonTestCase(unittest.TestCase):
    """A fresh private bus and qubesd per test method. Subclasses set QUBES_XML (None = empty);
    ROUTE is set by @over_each_route."""

    QUBES_XML = DEMO_XML
    EXTRA_ARGS = ()
    ROUTE = 'bus'

    def setUp(self):
        self.d = Daemon(self.QUBES_XML, self.EXTRA_ARGS, route=self.ROUTE)
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def tearDown(self):
        if self.d.proc is not None:
            status = self.d.stop()
            self.assertEqual(status, 0, 'qubesd exited with status %s on SIGTERM:\n%s'
                             % (status, self.d.log_tail()))

    def assertDBusError(self, name, func, *args, message=None, **kwargs):
        """func(*args) must fail with the D-Bus error `name` (and message matching a regex)."""
        try:
            func(*args, **kwargs)
        except CallError as e:
            got = dbus_error_name(e)
            self.assertEqual(got, name, 'expected error %s, got %s: %s'
                             % (name, got, dbus_error_message(e)))
            if message is not None:
                self.assertRegex(dbus_error_message(e), message)
            return e
        self.fail('expected error %s, but the call succeeded' % name)


def over_each_route(cls):
    """Class decorator: the test class runs once per route to qubesd, as CLASS_bus and
    CLASS_private (ROUTE set) in the class's module (only the routes of QUBES_TEST_ROUTES). The
    class itself is a template that load_tests leaves out; its tests use ROUTE (DaemonTestCase
    passes it to Daemon)."""
    module = sys.modules[cls.__module__]
    cls._route_template = True
    for route in TEST_ROUTES:
        name = '%s_%s' % (cls.__name__, route)
        variant = type(name, (cls,), {'ROUTE': route, '_route_template': False,
                                      '__module__': cls.__module__, '__qualname__': name,
                                      '__doc__': cls.__doc__})
        setattr(module, name, variant)
    return cls


def load_tests(loader, tests, pattern):
    """unittest's load_tests protocol: every test of the module but those of route templates.
    A test module that uses @over_each_route says `load_tests = harness.load_tests`."""
    suite = unittest.TestSuite()

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            elif not type(t).__dict__.get('_route_template'):
                suite.addTest(t)
    walk(tests)
    return suite


def main():
    random.seed(os.environ.get('QUBES_TEST_SEED', str(time.time())))
    unittest.main(verbosity=2)


def strip_ws(s):
    return re.sub(r'\s+', ' ', s).strip()
