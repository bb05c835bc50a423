# SPDX-License-Identifier: LGPL-2.1-or-later
"""qubes-admin-shim against a real qubesd on a private bus, through both of its doors.

* tests/vectors/*.vec are replayed through the socket door (--listen on a temporary path) and
  through the qrexec service door (the binary exec'ed as /etc/qubes-rpc/<method> with the
  QREXEC_* environment qrexec-daemon gives a dom0 service);
* admin.Events streams, the request size limit, many connections at once, and identity per
  source are tested directly.

Every test class runs twice (harness.over_each_route): the shim calling qubesd through the bus
(CLASS_bus) and over qubesd's private socket (CLASS_private: `qubesd --private-socket`, the shim
with --private-socket, or QUBESD_PRIVATE_SOCKET for the service door), as installed.

Environment: QUBESD (the daemon), QUBES_ADMIN_SHIM (the shim; default:
$QUBES_BUILD_DIR/qrexec-shim/qubes-admin-shim), QUBES_SOURCE_DIR.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

VECTORS_DIR = os.path.join(harness.SOURCE_DIR, 'tests', 'vectors')
FIXTURE_XML = os.path.join(VECTORS_DIR, 'fixture-qubes.xml')
MAX_REQUEST = 65536


def find_shim():
    path = os.environ.get('QUBES_ADMIN_SHIM')
    if path:
        return path
    dirs = []
    if os.environ.get('QUBES_BUILD_DIR'):
        dirs.append(os.environ['QUBES_BUILD_DIR'])
    qubesd = os.environ.get('QUBESD')
    if qubesd:
        dirs.append(os.path.dirname(os.path.dirname(os.path.abspath(qubesd))))
    for build in ('build', 'build-test', 'builddir'):
        dirs.append(os.path.join(harness.SOURCE_DIR, build))
    for d in dirs:
        candidate = os.path.join(d, 'qrexec-shim', 'qubes-admin-shim')
        if os.access(candidate, os.X_OK):
            return candidate
    raise unittest.SkipTest('QUBES_ADMIN_SHIM is not set and no built qubes-admin-shim was found')


# --- vectors -------------------------------------------------------------------------------

def unescape(text):
    """C-style escapes to bytes: \\0 is always one NUL (never octal), \\xNN one byte."""
    out = bytearray()
    i = 0
    raw = text.encode('utf-8')
    while i < len(raw):
        c = raw[i]
        if c != 0x5c or i + 1 >= len(raw):
            out.append(c)
            i += 1
            continue
        n = chr(raw[i + 1])
        if n == '0':
            out.append(0)
            i += 2
        elif n == 'n':
            out.append(10)
            i += 2
        elif n == 't':
            out.append(9)
            i += 2
        elif n == '\\':
            out.append(0x5c)
            i += 2
        elif n == 'x':
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        else:
            raise ValueError('bad escape \\%s in %r' % (n, text))
    return bytes(out)


class Vector:
    def __init__(self, path, lineno, request, reply, flags, note):
        self.path = path
        self.lineno = lineno
        self.request = request
        self.reply = reply
        self.flags = flags
        self.note = note

    def where(self):
        return '%s:%d' % (os.path.basename(self.path), self.lineno)


def load_vectors(path):
    vectors = []
    flags = set()
    note = None
    request = None
    req_line = 0
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if not line.strip() or line.startswith('#'):
                continue
            if line.startswith('!'):
                word, _, rest = line[1:].partition(' ')
                flags.add(word)
                if word == 'differs':
                    note = rest
                continue
            if line.startswith('> '):
                request = unescape(line[2:])
                req_line = lineno
            elif line.startswith('< ') or line == '<':
                if request is None:
                    raise ValueError('%s:%d: reply without request' % (path, lineno))
                vectors.append(Vector(path, req_line, request, unescape(line[2:]), flags, note))
                request = None
                flags = set()
                note = None
            else:
                raise ValueError('%s:%d: cannot parse %r' % (path, lineno, line))
    return vectors


def reply_pattern(expected):
    """A regex for an OK/event reply with <UUID> and <*> placeholders."""
    parts = re.split(rb'(<UUID>|<\*>)', expected)
    rx = b''
    for p in parts:
        if p == b'<UUID>':
            rx += rb'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
        elif p == b'<*>':
            rx += rb'.*?'
        else:
            rx += re.escape(p)
    return re.compile(rx, re.DOTALL)


def parse_exception(data):
    """(class, message as a qubesadmin client renders it, traceback) of a 2\\0 reply."""
    assert data.startswith(b'2\x00'), data
    assert data.endswith(b'\x00'), 'exception frame must end with NUL: %r' % data
    _, exc_type, tb, fmt, rest = data.split(b'\x00', 4)
    fields = rest.split(b'\x00')[:-1]
    fmt = fmt.decode()
    args = tuple(f.decode() for f in fields)
    # qubesadmin: message_format % args (a format without fields is used as is when it has
    # no % at all; with %% it must be rendered)
    message = fmt % args if (args or '%' in fmt) else fmt
    return exc_type.decode(), message, tb.decode()


def check_reply(test, vector, got, door):
    where = '%s (%s door): %r' % (vector.where(), door, vector.request)
    exp = vector.reply
    if exp.startswith(b'2\x00'):
        test.assertTrue(got.startswith(b'2\x00'), '%s: expected an exception, got %r' % (where, got))
        e_type, e_msg, _ = parse_exception(exp)
        g_type, g_msg, _ = parse_exception(got)
        test.assertEqual((g_type, g_msg), (e_type, e_msg), where)
    else:
        test.assertRegex(got, reply_pattern(exp), where)


# --- the two doors ---------------------------------------------------------------------------

class SocketDoor:
    """The shim's socket door (--listen), calling daemon by its route (extra_args may override)."""

    def __init__(self, shim, daemon, extra_args=()):
        self.path = os.path.join(daemon.dir, 'qubesd.sock')
        self.log = open(os.path.join(daemon.dir, 'shim.log'), 'ab')
        self.proc = subprocess.Popen(
            [shim, '--listen', self.path] + daemon.shim_args() + list(extra_args),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=daemon.shim_env())
        deadline = time.monotonic() + 10
        while not os.path.exists(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError('qubes-admin-shim did not listen on %s' % self.path)
            time.sleep(0.005)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(self.path)
        return s

    def call(self, request):
        s = self.connect()
        try:
            try:
                s.sendall(request)
                s.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
            out = b''
            while True:
                try:
                    d = s.recv(65536)
                except ConnectionResetError:
                    break
                if not d:
                    break
                out += d
            return out
        finally:
            s.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def service_invocation(shim, daemon, request):
    """argv, env and stdin of the qrexec service that qrexec-daemon would start for request,
    calling daemon by its route."""
    header, _, payload = request.partition(b'\x00')
    meth_arg, src, dtype, dest = header.decode().split(' ', 3)
    method, plus, arg = meth_arg.partition('+')
    env = daemon.shim_env()
    env.update({
        'QREXEC_SERVICE_FULL_NAME': method + '+' + arg,
        'QREXEC_SERVICE_ARGUMENT': arg,
        'QREXEC_REMOTE_DOMAIN': src,
        'QREXEC_REQUESTED_TARGET_TYPE': dtype,
    })
    if dtype == 'keyword':
        env['QREXEC_REQUESTED_TARGET_KEYWORD'] = dest
    else:
        env['QREXEC_REQUESTED_TARGET'] = dest
    argv = ['/etc/qubes-rpc/' + method] + ([arg] if arg else [])
    return argv, env, payload


def service_call(shim, daemon, request, timeout=20):
    argv, env, payload = service_invocation(shim, daemon, request)
    r = subprocess.run(argv, executable=shim, env=env, input=payload, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


# What a shim still asks qubesd on the bus when its calls take the private socket: on the event
# streams' connection its identity, the qube it follows, the subscription and (admin.vm.Stats)
# the qube's current state; and the runner's system information.
BUS_ON_PRIVATE_ROUTE = {'SetCallerIdentity', 'GetDomain', 'SubscribeEvents', 'GetCurrentState', 'GetSystemInfo'}


def watch_the_route(test):
    """On the private route, fail the test at its end if a call of the shim crossed the bus."""
    if test.ROUTE != 'private':
        return
    monitor = harness.BusMonitor(test.d.address)
    test.addCleanup(monitor.close)

    def check():
        crossed = [c for c in monitor.settle() if c[1] not in BUS_ON_PRIVATE_ROUTE]
        test.assertEqual(crossed, [], 'calls that took the bus instead of the private socket')
    test.route_check = check


class ShimTestCase(unittest.TestCase):
    ROUTE = 'bus'  # set by harness.over_each_route

    def setUp(self):
        self.shim = find_shim()
        self.d = harness.Daemon(FIXTURE_XML, route=self.ROUTE)
        self.addCleanup(self.d.cleanup)
        os.makedirs(os.path.join(self.d.state_dir, 'vm-kernels', '1.0'), exist_ok=True)
        self.d.start()
        self.door = None
        self.route_check = None
        watch_the_route(self)

    def socket_door(self, extra_args=()):
        self.door = SocketDoor(self.shim, self.d, extra_args)
        self.addCleanup(self.door.stop)
        return self.door

    def tearDown(self):
        if self.route_check:
            self.route_check()
        if self.d.proc is not None:
            status = self.d.stop()
            self.assertEqual(status, 0, 'qubesd exited with status %s:\n%s'
                             % (status, self.d.log_tail()))


# --- vector tests (generated per file and door) --------------------------------------------

@harness.over_each_route
class VectorTests(ShimTestCase):
    def run_vectors(self, path, door):
        vectors = load_vectors(path)
        self.assertTrue(vectors, path)
        sock = self.socket_door() if door == 'socket' else None
        # every vector is checked and each mismatch reported (one may follow from another)
        for v in vectors:
            if ('service' if door == 'socket' else 'socket') in v.flags:
                continue
            with self.subTest(v.where()):
                if door == 'socket':
                    got = sock.call(v.request)
                else:
                    status, got, err = service_call(self.shim, self.d, v.request)
                    self.assertEqual(status, 0, '%s: exit status %d: %s' % (v.where(), status,
                                                                             err.decode(errors='replace')))
                check_reply(self, v, got, door)


def _add_vector_tests():
    for name in sorted(os.listdir(VECTORS_DIR)):
        if not name.endswith('.vec'):
            continue
        path = os.path.join(VECTORS_DIR, name)
        for door in ('socket', 'service'):
            def test(self, path=path, door=door):
                self.run_vectors(path, door)
            test.__name__ = 'test_%s_%s' % (name[:-4], door)
            if door == 'service':
                # qubesd gets the same requests through either door (only the shim differs, and it
                # is not what memcheck watches): under valgrind, once is enough
                test = unittest.skipIf(harness.UNDER_WRAPPER, 'the socket door sends qubesd the same '
                                       'requests; qubesd runs under QUBESD_WRAPPER')(test)
            setattr(VectorTests, test.__name__, test)


_add_vector_tests()


# --- admin.Events -----------------------------------------------------------------------------

class EventReader:
    """Splits an event stream into frames (each 1\\0 ... \\0\\0 or one 2\\0 exception)."""

    def __init__(self, read):
        self.read = read
        self.buf = b''

    def frame(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            f = self._take()
            if f is not None:
                return f
            if time.monotonic() > deadline:
                raise AssertionError('no complete event frame within %ds; have %r' % (timeout, self.buf))
            d = self.read()
            if not d:
                if self.buf and not self.buf.startswith(b'2\x00'):
                    raise AssertionError('stream ended inside a frame: %r' % self.buf)
                return None
            self.buf += d

    def _take(self):
        b = self.buf
        if b.startswith(b'2\x00'):
            # type, traceback, format, then fields: complete when the stream ends
            return None
        if not b.startswith(b'1\x00'):
            if b:
                raise AssertionError('not an event frame: %r' % b)
            return None
        # subject \0 name \0 (key \0 value \0)* \0
        parts = b[2:].split(b'\x00')
        # find the terminating empty key after subject and name
        pos = 2
        fields = []
        i = 0
        while True:
            end = b.find(b'\x00', pos)
            if end < 0:
                return None
            field = b[pos:end]
            pos = end + 1
            if i >= 2 and (i - 2) % 2 == 0 and field == b'':
                break
            fields.append(field)
            i += 1
        del parts
        self.buf = b[pos:]
        subject, name = fields[0].decode(), fields[1].decode()
        kv = [(fields[j].decode(), fields[j + 1].decode()) for j in range(2, len(fields), 2)]
        return subject, name, kv


@harness.over_each_route
class EventsTests(ShimTestCase):
    def events_socket(self, dest='dom0', src='dom0'):
        door = self.socket_door()
        s = door.connect()
        s.sendall(('admin.Events+ %s name %s\x00' % (src, dest)).encode())
        s.shutdown(socket.SHUT_WR)
        self.addCleanup(s.close)
        return EventReader(lambda: s.recv(65536)), s

    def test_socket_stream(self):
        reader, _ = self.events_socket()
        self.assertEqual(reader.frame(), ('', 'connection-established', []))
        self.d.set_property('test-vm1', 'vcpus', '4')
        self.d.domain('test-vm1', 'SetFeature', 'ss', ('evfeat', 'v1'))
        self.d.domain('test-vm1', 'AddTag', 's', ('evtag',))
        frames = []
        while not frames or frames[-1][1] != 'domain-tag-add:evtag':
            frames.append(reader.frame())
        self.assertIn(('test-vm1', 'property-pre-set:vcpus',
                       [('name', 'vcpus'), ('newvalue', '4'), ('oldvalue', '2')]), frames)
        i = frames.index(('test-vm1', 'property-set:vcpus',
                          [('name', 'vcpus'), ('newvalue', '4'), ('oldvalue', '2')]))
        self.assertEqual(frames[i - 1][1], 'property-pre-set:vcpus')
        self.assertIn(('test-vm1', 'domain-feature-set:evfeat',
                       [('feature', 'evfeat'), ('value', 'v1')]), frames)
        self.assertIn(('test-vm1', 'domain-tag-add:evtag', [('tag', 'evtag')]), frames)

    def test_socket_stream_global_and_bytes(self):
        reader, s = self.events_socket()
        # exact bytes of the first frame
        first = b''
        while len(first) < len(b'1\x00\x00connection-established\x00\x00'):
            first += s.recv(len(b'1\x00\x00connection-established\x00\x00') - len(first))
        self.assertEqual(first, b'1\x00\x00connection-established\x00\x00')
        self.d.manager('SetProperty', 'ss', ('stats_interval', '7'))
        while True:
            f = reader.frame()
            if f[1] == 'property-set:stats_interval':
                break
        self.assertEqual(f[0], '')
        self.assertEqual(f[2][:2], [('name', 'stats_interval'), ('newvalue', '7')])

    def test_socket_stream_one_qube(self):
        reader, _ = self.events_socket(dest='test-vm1')
        self.assertEqual(reader.frame(), ('', 'connection-established', []))
        self.d.domain('test-template', 'SetFeature', 'ss', ('other', 'x'))
        self.d.domain('test-vm1', 'SetFeature', 'ss', ('mine', 'y'))
        while True:
            f = reader.frame()
            self.assertEqual(f[0], 'test-vm1', f)
            if f[1] == 'domain-feature-set:mine':
                break

    def test_socket_stream_no_such_qube(self):
        door = self.socket_door()
        got = door.call(b'admin.Events+ dom0 name no-such\x00')
        self.assertEqual(parse_exception(got)[:2], ('QubesVMNotFoundError', "No such domain: 'no-such'"))

    def test_service_stream(self):
        argv, env, _ = service_invocation(self.shim, self.d, b'admin.Events+ dom0 keyword adminvm\x00')
        p = subprocess.Popen(argv, executable=self.shim, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(p.stderr.close)
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        fd = p.stdout.fileno()
        reader = EventReader(lambda: os.read(fd, 65536))
        self.assertEqual(reader.frame(), ('', 'connection-established', []))
        self.d.set_property('test-vm1', 'vcpus', '3')
        while True:
            f = reader.frame()
            if f[1] == 'property-set:vcpus':
                break
        self.assertEqual(f, ('test-vm1', 'property-set:vcpus',
                             [('name', 'vcpus'), ('newvalue', '3'), ('oldvalue', '2')]))
        # the caller goes away: the service ends
        p.stdout.close()
        self.d.set_property('test-vm1', 'vcpus', '5')
        p.wait(10)

    def test_slow_reader_overflow(self):
        # a small queue so that the test need not produce megabytes of events
        door = self.socket_door(['--event-queue-max=4096'])
        s = door.connect()
        # the stream of test-vm1 alone: dom0's would also carry the host's device events (a loop
        # device another program makes), which this count must not depend on
        s.sendall(b'admin.Events+ dom0 name test-vm1\x00')
        s.shutdown(socket.SHUT_WR)
        self.addCleanup(s.close)
        reader = EventReader(lambda: s.recv(65536))
        self.assertEqual(reader.frame(), ('', 'connection-established', []))
        # do not read: fill the socket buffers and the shim's queue
        value = 'v' * 2000
        for i in range(400):
            self.d.domain('test-vm1', 'SetFeature', 'ss', ('f%d' % i, value))
        # the shim keeps serving others meanwhile
        self.assertEqual(door.call(b'admin.vm.feature.Get+f0 dom0 name test-vm1\x00'),
                         b'0\x00' + value.encode())
        names = []
        while True:
            f = reader.frame()
            if f is None:
                break
            names.append(f[1])
        self.assertTrue(reader.buf.startswith(b'2\x00'), reader.buf[:200])
        exc_type, message, _ = parse_exception(reader.buf)
        self.assertEqual(exc_type, 'QubesException')
        m = re.fullmatch(r'Event stream overflow: client too slow, (\d+) events dropped', message)
        self.assertTrue(m, message)
        # none was delivered twice, and every event was either delivered or counted
        self.assertEqual(len(names), len(set(names)), names)
        self.assertEqual(len(names) + int(m.group(1)), 800)

    def test_client_goes_away(self):
        reader, s = self.events_socket()
        self.assertEqual(reader.frame(), ('', 'connection-established', []))
        s.close()
        # the shim keeps serving
        self.d.set_property('test-vm1', 'vcpus', '4')
        self.assertEqual(self.door.call(b'admin.vm.property.Get+vcpus dom0 name test-vm1\x00'),
                         b'0\x00default=False type=int 4')


# --- the socket door itself -----------------------------------------------------------------

@harness.over_each_route
class SocketDoorTests(ShimTestCase):
    def test_size_limit(self):
        door = self.socket_door()
        head = b'admin.vm.notes.Set dom0 name test-vm1\x00'
        ok = head + b'x' * (MAX_REQUEST - len(head))
        self.assertEqual(door.call(ok), b'0\x00')
        self.assertEqual(door.call(ok + b'x'), b'')

    def test_malformed_calls_are_noticed(self):
        # a notice in the log (journald: QUBES_VM=<source>), with the caller's bytes made printable
        door = self.socket_door()
        self.assertTrue(door.call(b'admin.no\x1b[2Jsuch dom0 name dom0\x00').startswith(b'2\x00ProtocolError\x00'))
        self.assertEqual(door.call(b'admin.vm.List dom0 name dom0\x00')[:2], b'0\x00')
        door.stop()
        with open(door.log.name, encoding='utf-8', errors='replace') as f:
            log = f.read()
        self.assertIn('Refused a malformed call admin.no?[2Jsuch from dom0.', log)
        self.assertEqual(log.count('Refused a malformed call'), 1, log)

    def test_request_in_pieces(self):
        door = self.socket_door()
        s = door.connect()
        s.sendall(b'admin.vm.property.Get+vcpus')
        time.sleep(0.05)
        s.sendall(b' dom0 name test-vm1\x00')
        s.shutdown(socket.SHUT_WR)
        out = b''
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
        s.close()
        self.assertEqual(out, b'0\x00default=True type=int 2')

    def test_many_connections(self):
        door = self.socket_door()
        results = {}

        def worker(i):
            src = ('dom0', 'test-vm1', 'test-template')[i % 3]
            results[i] = door.call(('admin.vm.property.Get+qid %s name test-vm1\x00' % src).encode())

        # hold some connections open without finishing them: others must still be served
        idle = [door.connect() for _ in range(20)]
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for s in idle:
            s.close()
        self.assertEqual(len(results), 60)
        for i, r in results.items():
            self.assertEqual(r, b'0\x00default=False type=int 2', i)

    def test_identity_per_source(self):
        door = self.socket_door()
        denied = door.call(b'admin.vm.tag.Set+created-by-x test-vm1 name test-vm1\x00')
        self.assertEqual(parse_exception(denied)[0], 'PermissionDenied')
        # the same shim, another source: dom0 may
        self.assertEqual(door.call(b'admin.vm.tag.Set+created-by-x dom0 name test-vm1\x00'), b'0\x00')
        denied = door.call(b'admin.vm.tag.Remove+created-by-x test-vm1 name test-vm1\x00')
        self.assertEqual(parse_exception(denied)[0], 'PermissionDenied')

    def test_qubesd_restart(self):
        door = self.socket_door()
        q = b'admin.vm.property.Get+qid test-vm1 name test-vm1\x00'
        self.assertEqual(door.call(q), b'0\x00default=False type=int 2')
        self.d.restart()
        # the cached connection's identity died with qubesd: a new one is made
        self.assertEqual(door.call(q), b'0\x00default=False type=int 2')
        denied = door.call(b'admin.vm.tag.Set+created-by-x test-vm1 name test-vm1\x00')
        self.assertEqual(parse_exception(denied)[0], 'PermissionDenied')


@harness.over_each_route
class ServiceDoorTests(ShimTestCase):
    def test_argv0_and_argv1(self):
        # older spelling: no QREXEC_SERVICE_FULL_NAME, the argument in argv[1]
        env = self.d.shim_env()
        env.update({'QREXEC_REMOTE_DOMAIN': 'dom0', 'QREXEC_REQUESTED_TARGET': 'test-vm1'})
        r = subprocess.run(['/etc/qubes-rpc/admin.vm.property.Get', 'vcpus'], executable=self.shim,
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=20)
        self.assertEqual((r.returncode, r.stdout), (0, b'0\x00default=True type=int 2'))

    def test_keyword_other_than_adminvm(self):
        argv, env, payload = service_invocation(self.shim, self.d, b'admin.vm.List+ dom0 keyword default\x00')
        r = subprocess.run(argv, executable=self.shim, env=env, input=payload, stdout=subprocess.PIPE,
                           timeout=20)
        self.assertEqual((r.returncode, r.stdout), (0, b''))

    def test_payload_too_long(self):
        argv, env, _ = service_invocation(self.shim, self.d, b'admin.vm.notes.Set+ dom0 name test-vm1\x00')
        r = subprocess.run(argv, executable=self.shim, env=env, input=b'x' * MAX_REQUEST,
                           stdout=subprocess.PIPE, timeout=20)
        self.assertEqual(r.stdout, b'')


@harness.over_each_route
class ImportTests(ShimTestCase):
    """admin.vm.volume.Import*: the service door streams stdin to qubesd (no 64 KiB limit, no
    buffering); the socket door hands qubesd the payload."""

    def volume_info(self, door):
        got = door.call(b'admin.vm.volume.Info+private dom0 name test-vm1\x00')
        self.assertTrue(got.startswith(b'0\x00'), got)
        return dict(line.split('=', 1) for line in got[2:].decode().splitlines())

    def test_service_door_streams_large_import(self):
        size = 3 * 1024 * 1024 + 17
        data = bytes(range(256)) * (size // 256) + b'x' * (size % 256)
        req = b'admin.vm.volume.ImportWithSize+private dom0 name test-vm1\x00' + str(size).encode() + b'\n' + data
        status, got, err = service_call(self.shim, self.d, req, timeout=60)
        self.assertEqual((status, got), (0, b'0\x00'), err)
        info = self.volume_info(self.socket_door())
        self.assertEqual(info['size'], str(size))
        with open(info['path'], 'rb') as f:
            self.assertEqual(f.read(), data)
        # Import: exactly the current size, then the end
        status, got, err = service_call(self.shim, self.d,
                                        b'admin.vm.volume.Import+private dom0 name test-vm1\x00' + data[::-1])
        self.assertEqual((status, got), (0, b'0\x00'), err)
        with open(info['path'], 'rb') as f:
            self.assertEqual(f.read(), data[::-1])
        status, got, err = service_call(self.shim, self.d,
                                        b'admin.vm.volume.Import+private dom0 name test-vm1\x00' + data + b'!')
        self.assertEqual(status, 0, err)
        self.assertTrue(got.startswith(b'2\x00QubesException\x00'), got)
        with open(info['path'], 'rb') as f:
            self.assertEqual(f.read(), data[::-1])

    def test_socket_door_import(self):
        door = self.socket_door()
        data = b'\x00\xffdata\n' * 1000
        got = door.call(b'admin.vm.volume.ImportWithSize+private dom0 name test-vm1\x00'
                        + str(len(data)).encode() + b'\n' + data)
        self.assertEqual(got, b'0\x00')
        info = self.volume_info(door)
        self.assertEqual(info['size'], str(len(data)))
        with open(info['path'], 'rb') as f:
            self.assertEqual(f.read(), data)


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
