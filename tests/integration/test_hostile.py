#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hostile local caller: bad input gets a clear error of the right Qubes exception type and
changes nothing, and the daemon stays up.

test_randomized_calls introspects qubesd's objects (the Manager, qubes of every class, labels,
pools, volumes, a job, and paths of objects that do not exist) and calls every method it finds
with argument sets generated from the method's in-signature (seeded: the same seed gives the same
calls), from a plain connection, one with error details and one acting for a qube; then a burst
of calls without waiting for the replies, and a caller that disconnects with its calls pending.
Every reply must come within CALL_TIMEOUT_S, every error must be a Qubes error (with a message;
the (s, s, as) body on connections with error details) or a protocol-level D-Bus error (never
Failed, NoMemory, System.Error.* or a bare errno text), a wrong signature gets InvalidArgs, and
after every round qubesd must be alive, its listings (GetManagedObjects, GetAllDomainProperties,
volume Info, ...) must answer and qubes.xml must parse. At the end qubesd restarts on its state.

test_refused_calls_change_nothing sends batches of calls that must all be refused (invalid
property values on every property, invalid tags, features, qubes, labels, pools, volume
arguments, wrong D-Bus signatures on every method, objects that do not exist, a qube caller
outside its value constraints) and checks the error types, that qubes.xml keeps every byte after
each call, that a snapshot of the whole state read over the bus is the same after the batch, and
that qubesd starts again on its state at the end.

TestScenarios holds short scripted cases that the randomized run found. KNOWN_FAILURES lists what
qubesd still gets wrong: printed at every run, not failing it, until fixed and removed.

QUBES_HOSTILE_ITERATIONS sets the number of randomized rounds (run longer by hand),
QUBES_HOSTILE_SEED the seed.
"""

import os
import random
import re
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (DaemonTestCase, ERROR_PREFIX, ROOT_PATH, bus_path_escape,  # noqa: E402
                     domain_path, label_path)

from gi.repository import Gio, GLib  # noqa: E402

# Rounds of the randomized run; each round calls every method of every object once. Under
# QUBESD_WRAPPER (valgrind, some 30 times slower) one round.
ITERATIONS = 6
ITERATIONS_UNDER_WRAPPER = 1
SEED = 0x51ED
CALL_TIMEOUT_S = 10
GHOST_CALLS_PER_ROUND = 60
# calls of TestScenarios and of the races, shorter: a known hang costs this much each time
SCENARIO_TIMEOUT_S = 3
SLOWDOWN_UNDER_WRAPPER = 12  # the timeouts are this many times longer under QUBESD_WRAPPER
BURST_CALLS = 300
VANISHING_CALLS = 80

if os.environ.get('QUBES_HOSTILE_ITERATIONS'):
    ITERATIONS = int(os.environ['QUBES_HOSTILE_ITERATIONS'])
elif harness.UNDER_WRAPPER:
    ITERATIONS = ITERATIONS_UNDER_WRAPPER
SEED = int(os.environ.get('QUBES_HOSTILE_SEED', str(SEED)), 0)
if harness.UNDER_WRAPPER:
    CALL_TIMEOUT_S *= SLOWDOWN_UNDER_WRAPPER
    SCENARIO_TIMEOUT_S *= SLOWDOWN_UNDER_WRAPPER


# Findings this test knows about, printed (never silently skipped) without failing the test.
# Remove an entry when qubesd is fixed (of a held-back call, the test says when it no longer
# shows). Each entry:
#   method     interface.Method of the call
#   match      a regular expression searched in the call as Call.describe() prints it, and in
#              the finding's text; or a function of the Call
#   hold_back  the call is not sent in the randomized run (what it does would spoil the rest),
#              and in a refused batch it is sent on its own after the batches
#   trigger    not a finding itself: a call that leads to one; the randomized run leaves it out
KNOWN_FAILURES = []

DBUS_ERROR = 'org.freedesktop.DBus.Error.'
INVALID_ARGS = DBUS_ERROR + 'InvalidArgs'
# Protocol-level errors a hostile call may get; NoMemory, Failed and System.Error.* are not here.
PROTOCOL_ERRORS = frozenset(DBUS_ERROR + n for n in (
    'InvalidArgs', 'UnknownMethod', 'UnknownObject', 'UnknownInterface', 'UnknownProperty',
    'AccessDenied', 'PropertyReadOnly'))
# Interfaces sd-bus implements itself: it reads the arguments it needs and ignores the rest,
# so a wrong signature may get any protocol-level error there, or even an answer (not Set).
SD_BUS_INTERFACES = frozenset('org.freedesktop.DBus.' + n for n in (
    'Peer', 'Introspectable', 'Properties', 'ObjectManager'))
# What sd-bus puts in an error made from a bare negative errno: strerror() text.
ERRNO_TEXTS = frozenset(os.strerror(n) for n in range(1, 134)) - {''}

MANAGER = harness.MANAGER_IFACE
DOMAIN = harness.DOMAIN_IFACE
VOLUME = harness.IFACE + '.Volume'
POOL = harness.IFACE + '.Pool'
PROPS = harness.PROPS_IFACE

INT_LIMITS = {'y': (0, 255), 'n': (-2**15, 2**15 - 1), 'q': (0, 2**16 - 1), 'i': (-2**31, 2**31 - 1),
              'u': (0, 2**32 - 1), 'x': (-2**63, 2**63 - 1), 't': (0, 2**64 - 1)}
INT_SPECIALS = (0, 1, -1, 2**31 - 1, 2**31, -2**31, 2**32 - 1, 2**32, 2**63 - 1, -2**63, 2**64 - 1)

SIXTY_FOUR_KIB = 'A' * 65536
ONE_MIB = 'x' * (1 << 20)
GENERAL_STRINGS = [
    '', ' ', '  leading', 'trailing  ', '\t', '\n', '\r\n', 'line\nbreak', '\x01', 'a\x01b',
    '\x1b[31mred', '\x7f', '\x1f\x1e', 'tab\there', '\u00a0', '\u202eevil', 'zero\u200bwidth',
    '\ufeffbom', 'a\u0301', 'é', '日本語', '\U0001f600', '\u2028', 'Ω' * 300, 'x' * 255, 'x' * 256,
    'x' * 4097, '../', '/', 'a/b', '..', '.', '../../etc/passwd', '/etc/passwd', 'work/../dom0',
    '%s%s%s%n', '%x%x', '{}', '$(id)', "'; DROP", '<a>&amp;</a>', ']]>', '"quoted"', '\\', '*',
    '@anyvm', '@default', '@none', '@adminvm', '@tag:x', 'uuid:', 'uuid:zzz', '0', '-1',
    '2147483648', '9223372036854775807', '9223372036854775808', '18446744073709551615',
    '18446744073709551616', '-9223372036854775809', '1e9', '0x10', '007', '+5', '1.5', 'NaN',
    'inf', '١٢', 'True', 'False', 'true', '1', 'yes', 'maybe', 'None', 'none', 'default',
]
NUMBERS = ['0', '-1', '1', '2', '01', '2147483647', '2147483648', '4294967296', '9223372036854775807',
           '9223372036854775808', '18446744073709551615', '99999999999999999999', '1e9', '0x10',
           '+5', '-0', '1.5', '', ' 5', '5 ', '١', '1048576', '1073741824', '10737418240']
BOOLS = ['True', 'False', 'true', 'false', '1', '0', 'yes', 'no', 'on', 'off', 'maybe', '', '2', 'TRUE ']
COLORS = ['0xcc0000', '0x123456', '#ff0000', '0x12345', '0x1234567', '0xgggggg', 'red', '', ' 0xabcdef ',
          '0XABCDEF', 'éééééééé', '0x', '0x\n12345']
OPTION_KEYS = ['pool', 'pool:root', 'pool:private', 'pool:volatile', 'pool:kernel', 'pool:nope', 'bogus', '',
               'label', 'template']
CONFIG_KEYS = ['name', 'dir_path', 'revisions_to_keep', 'ephemeral_volatile', 'setup_check', 'driver', '',
               'bogus']
FEATURES = ['gui', 'service.cups', 'service.x', 'service.' + 'x' * 49, 'app-dispvm.x', 'qrexec',
            'supported-service.x', 'os', 'hostile-feature', 'a.b-c_d', 'no-such-feature', 'x' * 255,
            'x' * 256]
TAGS = ['hostile-tag', 'created-by-dom0', 'created-by-work', 'disp-created-by-dom0', 'audiovm-dom0',
        'guivm-dom0', 'a', 'x' * 255, 'x' * 256, 'no-such-tag', 'a.b', 'a b', '']
REVISIONS = ['', 'nope', '../../etc', '1', 'latest', '1700000000-back', 'x' * 200]
TOKENS = ['', 'x' * 32, 'A' * 33, '../' * 11, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345']
VOLUMES = ['root', 'private', 'volatile', 'kernel', 'nope', '../private', '']
CLASSES_EXTRA = ['', 'NoSuchVM', 'appvm', 'Domain', '../AppVM', 'QubesVM', 'BaseVM']
QUBE_NAMES_EXTRA = ['no-such-vm', 'hostile-new', 'hostile-new2', 'h' * 31, 'h' * 32, '.test', '-x', '0abc',
                    'a b', 'a/b', 'none', 'default', 'Dom0', 'dom0 ', 'disp0', 'disp9999',
                    'uuid:9dfafb72-1385-4334-bac3-6a7d75d5769c', 'uuid:00000000-0000-0000-0000-000000000000',
                    'uuid:not-a-uuid']
LABELS_EXTRA = ['nolabel', 'label-1', 'label-99', '1', '99', '0', '-1', 'x' * 65, 'hostile-new-label']
POOLS_EXTRA = ['nopool', 'hostile-new-pool', '../varlibqubes', 'x' * 65]
DRIVERS_EXTRA = ['', 'nosuch', '../file', 'file\n', 'lvm_thin', 'zfs', 'FILE']

# Remove is called only on these (dom0 must refuse; the victim is made again each round): the
# other qubes stay for the whole run.
REMOVABLE_QUBES = ('dom0', 'hostile-victim')
VICTIM = 'hostile-victim'
# one of every class: AdminVM, AppVM, TemplateVM, DispVM, StandaloneVM, RemoteVM
FUZZED_QUBES = ('dom0', 'work', 'sys-net', 'fedora-42', 'default-dvm', 'disp1234', 'hostile-sa', 'hostile-remote',
                VICTIM)
QUBE_CALLER = 'work'  # the identity of the connection that acts for a qube

POLICY = """\
admin.vm.List * work work allow
admin.vm.List * work sys-net allow
admin.vm.List * work hostile-victim allow
admin.Events * work work allow
"""
CONSTRAINTS = """\
work netvm @anyvm sys-net @none
work label @anyvm red
work vcpus @anyvm 1 2
"""


class DaemonDown(Exception):
    """qubesd exited or stopped answering: the run ends there (the finding says why)."""


def split_signature(sig):
    """The complete types of a D-Bus signature: 'sa{ss}(ii)' -> ['s', 'a{ss}', '(ii)']."""
    out, i = [], 0
    while i < len(sig):
        j = _end_of_type(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _end_of_type(sig, i):
    c = sig[i]
    if c == 'a':
        return _end_of_type(sig, i + 1)
    if c in '({':
        close = ')' if c == '(' else '}'
        j = i + 1
        while sig[j] != close:
            j = _end_of_type(sig, j)
        return j + 1
    return i + 1


def qubes_error_names():
    """The Qubes exception classes of lib/qubes-error.h (the one table of them)."""
    with open(os.path.join(harness.SOURCE_DIR, 'lib', 'qubes-error.h'), encoding='utf-8') as f:
        names = re.findall(r'X\(\s*\w+\s*,\s*"(\w+)"\s*\)', f.read())
    if len(names) < 10:
        raise AssertionError('cannot read the error table of lib/qubes-error.h')
    return frozenset(ERROR_PREFIX + n for n in names)


def shorten(value, n=60):
    """A short repr of an argument for a report."""
    if isinstance(value, str):
        if len(value) > n:
            return '%r...(%d chars)' % (value[:n // 2], len(value))
        return repr(value)
    if isinstance(value, dict):
        return '{' + ', '.join('%s: %s' % (shorten(k, 20), shorten(v, 20)) for k, v in list(value.items())[:4]) + \
            (', ...%d' % len(value) if len(value) > 4 else '') + '}'
    if isinstance(value, (list, tuple)):
        inner = ', '.join(shorten(v, 20) for v in value[:4]) + (', ...%d' % len(value) if len(value) > 4 else '')
        return ('(%s)' if isinstance(value, tuple) else '[%s]') % inner
    if isinstance(value, GLib.Variant):
        return '<%s %s>' % (value.get_type_string(), shorten(value.unpack(), 30))
    return repr(value)


def substitute(fmt, fields):
    """The message of an error with details: fmt's %s replaced by the fields, %% by %."""
    out, it, i = [], iter(fields), 0
    while i < len(fmt):
        if fmt[i] == '%' and i + 1 < len(fmt) and fmt[i + 1] in 's%':
            out.append(next(it, '') if fmt[i + 1] == 's' else '%')
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return ''.join(out)


class Method:
    def __init__(self, path, iface, name, in_types, in_names, out_sig, kind):
        self.path = path
        self.iface = iface
        self.name = name
        self.in_types = in_types
        self.in_names = in_names
        self.in_sig = ''.join(in_types)
        self.out_sig = out_sig
        self.kind = kind  # which object: manager, domain:<name>, label, pool, volume, job, ghost, node

    @property
    def label(self):
        return '%s.%s' % (self.iface.rsplit('.', 1)[-1], self.name)

    def __repr__(self):
        return '%s %s(%s)' % (self.path, self.label, self.in_sig)


class Outcome:
    """The result of one call: kind is 'ok', 'error', 'timeout' or 'transport'."""

    def __init__(self, kind, name=None, message='', body=(), signature='', seconds=0.0):
        self.kind = kind
        self.name = name
        self.message = message
        self.body = body
        self.signature = signature
        self.seconds = seconds

    def __str__(self):
        if self.kind == 'ok':
            return 'succeeded (%s)' % self.signature
        if self.kind == 'error':
            return '%s: %s' % (self.name, shorten(self.message, 160))
        return '%s: %s' % (self.kind, self.message)


class Call:
    """One prepared call: its method, arguments, the descriptors it carries, its connection."""

    def __init__(self, method, sig, args, conn_kind='plain', wrong_signature=False, iface=None, path=None):
        self.method = method
        self.sig = sig
        self.args = list(args)
        self.conn_kind = conn_kind
        self.wrong_signature = wrong_signature
        self.iface = method.iface if iface is None else iface
        self.path = method.path if path is None else path
        self.fds = []  # our copies, closed after the call
        self.expect_error = wrong_signature or method.kind == 'ghost'
        self.expect_ok = False  # a listing that must work whatever the state
        self.expected = None  # a set of error names the call must get, if known
        self.timeout_s = None  # CALL_TIMEOUT_S unless set

    def add_fd(self, fd):
        self.fds.append(fd)
        return len(self.fds) - 1

    def close_fds(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []

    def message(self):
        msg = Gio.DBusMessage.new_method_call(harness.BUS_NAME, self.path, self.iface, self.method.name)
        if self.sig:
            # an argument may come as a ready GLib.Variant (a dict with a key twice, say)
            msg.set_body(GLib.Variant.new_tuple(*[
                a if isinstance(a, GLib.Variant) and t != 'v' else GLib.Variant(t, a)
                for t, a in zip(split_signature(self.sig), self.args)]))
        if self.fds:
            fdl = Gio.UnixFDList.new()
            for fd in self.fds:
                fdl.append(fd)
            msg.set_unix_fd_list(fdl)
        msg.set_flags(Gio.DBusMessageFlags.NO_AUTO_START)
        return msg

    def describe(self):
        args = ', '.join(shorten(a) for a in self.args)
        extra = ' [wrong signature (%s)]' % self.sig if self.wrong_signature else ''
        conn = '' if self.conn_kind == 'plain' else ' [%s connection]' % self.conn_kind
        return '%s %s.%s(%s)%s%s' % (self.path, self.iface, self.method.name, args, extra, conn)


def outcome_of_reply(reply, seconds):
    body = reply.get_body()
    values = body.unpack() if body is not None else ()
    sig = reply.get_signature() or ''
    if reply.get_message_type() == Gio.DBusMessageType.ERROR:
        message = values[0] if values and isinstance(values[0], str) else ''
        return Outcome('error', reply.get_error_name(), message, values, sig, seconds)
    return Outcome('ok', body=values, signature=sig, seconds=seconds)


def outcome_of_glib_error(e, seconds):
    if e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
        return Outcome('timeout', message='no reply within %.0f s' % seconds, seconds=seconds)
    return Outcome('transport', message=str(e), seconds=seconds)


def send_sync(conn, call, timeout_s=None):
    timeout_s = timeout_s or call.timeout_s or CALL_TIMEOUT_S
    t0 = time.monotonic()
    try:
        msg = call.message()
        reply, _ = conn.send_message_with_reply_sync(msg, Gio.DBusSendMessageFlags.NONE,
                                                     int(timeout_s * 1000), None)
        return outcome_of_reply(reply, time.monotonic() - t0)
    except GLib.Error as e:
        return outcome_of_glib_error(e, time.monotonic() - t0)
    finally:
        call.close_fds()


def connect(address):
    conn = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    conn.set_exit_on_close(False)
    return conn


class World:
    """What the generator draws names from, read from qubesd over the bus."""

    def __init__(self, d, scratch):
        self.scratch = scratch
        doms = d.manager('ListDomains')[0]
        self.qubes = [x[0] for x in doms] + QUBE_NAMES_EXTRA + ['uuid:' + x[3] for x in doms[:2]]
        self.classes = list(d.manager('ListClasses')[0]) + CLASSES_EXTRA
        self.labels = [x[0] for x in d.manager('ListLabels')[0]] + LABELS_EXTRA
        self.pools = [x[0] for x in d.manager('ListPools')[0]] + POOLS_EXTRA
        self.drivers = [x[0] for x in d.manager('ListPoolDrivers')[0]] + DRIVERS_EXTRA
        self.props = sorted(set(d.manager('ListProperties')[0]) | set(d.domain('work', 'ListProperties')[0]) |
                            set(d.domain('dom0', 'ListProperties')[0])) + \
            ['no_such_property', 'dispid', 'Name', 'name ', '']
        self.features = list(d.domain('work', 'ListFeatures')[0]) + FEATURES
        self.tags = list(d.domain('work', 'ListTags')[0]) + TAGS
        self.paths = ['/', ROOT_PATH, ROOT_PATH + '/domain', domain_path('no-such-vm'), label_path('nolabel'),
                      '/org/freedesktop/DBus'] + [x[4] for x in doms] + \
            [x[3] for x in d.manager('ListLabels')[0]] + [x[2] for x in d.manager('ListPools')[0]]
        self.interfaces = [PROPS, 'no.such.Interface', '', 'org.qubes_os.Admin1', harness.IFACE + '.Job']
        self.dbus_props = ['Name', 'Netvm', 'Label', 'Memory', 'Version', 'Nope', '', 'name']
        self.dirs = [os.path.join(scratch, 'pool-a'), os.path.join(scratch, 'pool-b') + '/',
                     os.path.join(scratch, 'deep', '..', 'pool-c'), 'relative/dir', '../escape', '',
                     '/dev/null', '/dev/null/sub', os.path.join(scratch, 'x\ny'), '/' + 'x' * 5000,
                     os.path.join(scratch, 'x' * 300)]

    def strings_for(self, method, arg):
        """The names that make sense for argument `arg` of `method` (besides GENERAL_STRINGS); in
        a dict or a list of pairs, arg is '<argument>.key' for a key and '<argument>.<key>' for
        its value."""
        if 'Feature' in method and arg == 'name':
            return self.features
        if arg == 'property_name':
            return self.dbus_props
        if arg in ('name', 'property') and ('Propert' in method or method == 'GetAllowedValues'):
            return self.props
        if method in ('CreateLabel', 'RemoveLabel', 'LookupLabel') or arg == 'label':
            return self.labels if arg in ('name', 'ref', 'label') else COLORS
        if method in ('GetPool', 'RemovePool') or arg == 'config.name':
            return self.pools
        if arg == 'config.dir_path':
            return self.dirs
        if arg in ('config.revisions_to_keep', 'config.ephemeral_volatile', 'config.setup_check'):
            return NUMBERS + BOOLS
        if arg == 'config.key':
            return CONFIG_KEYS
        if arg == 'options.key':
            return OPTION_KEYS
        if arg.startswith('options.'):
            return self.pools
        if arg == 'driver':
            return self.drivers
        if arg == 'class':
            return self.classes
        if arg == 'tag':
            return self.tags
        if arg in ('ref', 'qube', 'template', 'names', 'name'):
            return self.qubes + (self.labels if method == 'GetVolume' else [])
        if arg == 'volume':
            return VOLUMES
        if arg in ('value', 'size'):
            return NUMBERS + BOOLS + self.qubes[:8] + self.labels[:4] + self.pools[:3]
        if arg == 'revision':
            return REVISIONS
        if arg == 'token':
            return TOKENS
        if arg == 'interface_name':
            return self.interfaces
        return []


class Generator:
    """Arguments from a signature, drawn with a seeded random.Random."""

    def __init__(self, rng, world):
        self.rng = rng
        self.world = world
        self.fd_sources = 0

    def count(self):
        if self.rng.random() < 0.02:
            # arrays of arrays stay small, and so do their strings: 1000 x 1000 elements of up
            # to 1 MiB would be a message no bus carries (the sender is cut off), not a test of qubesd
            return 1000 if not getattr(self, 'nested', 0) else 20
        return self.rng.choice((0, 0, 1, 1, 2, 3, 5, 8, 20, 100))

    def string(self, method, arg):
        r = self.rng.random()
        if r < 0.004 and getattr(self, 'nested', 0) < 2:
            return ONE_MIB
        if r < 0.03 and getattr(self, 'nested', 0) < 2:
            return SIXTY_FOUR_KIB
        names = self.world.strings_for(method, arg)
        if names and self.rng.random() < 0.65:
            return self.rng.choice(names)
        return self.rng.choice(GENERAL_STRINGS)

    def integer(self, code):
        lo, hi = INT_LIMITS[code]
        if self.rng.random() < 0.7:
            v = self.rng.choice(INT_SPECIALS)
        else:
            v = self.rng.randint(lo, hi)
        return min(max(v, lo), hi)

    def fd(self, call):
        """A descriptor for an 'h' argument: nothing endless, nothing that blocks forever. Now and
        then an index past the descriptors sent, or one more descriptor than the arguments name."""
        r = self.rng.random()
        if r < 0.05:
            return len(call.fds) + 3
        if r < 0.1:
            call.add_fd(os.open('/dev/null', os.O_RDONLY))
        kind = self.rng.choice(('null', 'file', 'pipe', 'dir', 'write-end'))
        if kind == 'null':
            return call.add_fd(os.open('/dev/null', os.O_RDONLY))
        if kind == 'file':
            self.fd_sources += 1
            path = os.path.join(self.world.scratch, 'fd-src-%d' % self.fd_sources)
            with open(path, 'wb') as f:
                f.write(self.rng.randbytes(self.rng.choice((0, 1, 511, 4096, 65536))))
            fd = os.open(path, os.O_RDONLY)
            os.unlink(path)
            return call.add_fd(fd)
        if kind == 'dir':
            return call.add_fd(os.open(self.world.scratch, os.O_RDONLY | os.O_DIRECTORY))
        r, w = os.pipe()
        if kind == 'write-end':
            os.close(r)
            return call.add_fd(w)
        os.write(w, self.rng.randbytes(self.rng.choice((0, 100, 4096))))
        os.close(w)
        return call.add_fd(r)

    def value(self, t, call, method, arg):
        c = t[0]
        if c == 's':
            return self.string(method, arg)
        if c == 'o':
            return self.rng.choice(self.world.paths)
        if c == 'g':
            return self.rng.choice(('', 's', 'a{sv}', 'x', '(ii)'))
        if c in INT_LIMITS:
            return self.integer(c)
        if c == 'b':
            return self.rng.random() < 0.5
        if c == 'd':
            return self.rng.choice((0.0, -1.0, 1e308, -1e308, float('nan'), float('inf'), 5e-324, 0.5))
        if c == 'h':
            return self.fd(call)
        if c == 'v':
            if self.rng.random() < 0.03:  # variants in variants, near the 64 levels D-Bus allows
                v = GLib.Variant('s', 'deep')
                for _ in range(self.rng.choice((10, 30, 60))):
                    v = GLib.Variant('v', v)
                return v
            vt = self.rng.choice(('s', 'x', 'b', 'o', 'd', 'i', 't', 'as', 'a{sv}', '(ss)'))
            if vt == 'a{sv}':
                return GLib.Variant(vt, {self.string(method, arg): GLib.Variant('s', self.string(method, arg))
                                         for _ in range(self.count())})
            return GLib.Variant(vt, self.value(vt, call, method, arg))
        if t.startswith('a{'):
            kt, vt = split_signature(t[2:-1])
            out = {}
            n = self.count()
            self.nested = getattr(self, 'nested', 0) + 1
            try:
                for _ in range(n):
                    k = self.value(kt, call, method, arg + '.key')
                    out[k] = self.value(vt, call, method, arg + '.' + (k if isinstance(k, str) else 'value'))
            finally:
                self.nested -= 1
            return out
        if c == 'a':
            n = self.count()
            self.nested = getattr(self, 'nested', 0) + 1
            try:
                return [self.value(t[1:], call, method, arg) for _ in range(n)]
            finally:
                self.nested -= 1
        if c == '(':
            parts = split_signature(t[1:-1])
            if parts == ['s', 's']:  # a (key, value) pair: the value fits the key
                k = self.value('s', call, method, arg + '.key')
                return (k, self.value('s', call, method, arg + '.' + k))
            return tuple(self.value(p, call, method, arg) for p in parts)
        raise AssertionError('no generator for D-Bus type %r' % t)

    def args(self, m, call):
        return [self.value(t, call, m.name, n) for t, n in zip(m.in_types, m.in_names)]

    def wrong_signatures(self, m):
        """(signature, args) pairs that do not match m's in-signature."""
        out = []
        if m.in_sig:
            out.append(('', []))
            first = m.in_types[0]
            if first == 's':
                out.append(('x' + m.in_sig[1:], None))
            else:
                out.append(('s' + m.in_sig[len(first):], None))
            if len(m.in_types) > 1:
                out.append((''.join(m.in_types[:-1]), None))
        else:
            out.append(('x', None))
        out.append((m.in_sig + 's', None))
        return out


class HostileTestCase(DaemonTestCase):
    QUBES_XML = harness.EXAMPLE_XML

    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix='qubesd-hostile-')
        self.addCleanup(shutil.rmtree, self.scratch, True)
        policy_dir = os.path.join(self.scratch, 'policy.d')
        constraints_dir = os.path.join(self.scratch, 'constraints.d')
        os.makedirs(policy_dir)
        os.makedirs(constraints_dir)
        with open(os.path.join(policy_dir, '30-hostile.policy'), 'w', encoding='utf-8') as f:
            f.write(POLICY)
        with open(os.path.join(constraints_dir, '30-hostile.conf'), 'w', encoding='utf-8') as f:
            f.write(CONSTRAINTS)
        self.EXTRA_ARGS = ('--policy-dir=' + policy_dir, '--constraints-dir=' + constraints_dir)
        super().setUp()
        # sys-net's required PCI device (example-qubes.xml) is not on this machine, and a start
        # needs it, as upstream's does: the qubes that start here use sys-net
        self.d.call(domain_path('sys-net'), 'org.qubes_os.Admin1.DomainDevices', 'UnassignDevice', 'ssss',
                    ('pci', 'dom0', '00_14.3', '8086:a370::p028000'))
        self.error_names = qubes_error_names()
        self.findings = []
        self.known = {}  # (KNOWN_FAILURES index, kind) -> [first text, count]
        self.recent = []  # the last calls, for a crash report
        self.conns = {}
        self.address = self.d.address
        self.stats = {}  # error name -> how many calls got it ('' for a reply)
        self.lenient = set()  # sd-bus methods that answered a wrong signature
        self.held_back = set()  # calls of the randomized run left out as KNOWN_FAILURES
        self.calls = 0

    def tearDown(self):
        self.close_conns()
        super().tearDown()

    def close_conns(self):
        for conn in self.conns.values():
            try:
                conn.close_sync(None)
            except GLib.Error:
                pass
        self.conns = {}

    # --- connections --------------------------------------------------------------------------

    def conn(self, kind):
        """'plain' (harness's), 'details' (EnableErrorDetails) or 'qube' (acting for QUBE_CALLER)."""
        if kind == 'plain':
            return self.d.conn
        conn = self.conns.get(kind)
        if conn is None or conn.is_closed():
            conn = connect(self.address)
            if kind == 'details':
                self.plain_call(conn, ROOT_PATH, MANAGER, 'EnableErrorDetails')
            else:
                self.plain_call(conn, ROOT_PATH, MANAGER, 'SetCallerIdentity', 's', (QUBE_CALLER,))
            self.conns[kind] = conn
        return conn

    def plain_call(self, conn, path, iface, method, sig=None, args=()):
        m = Method(path, iface, method, split_signature(sig or ''), [], None, 'setup')
        out = send_sync(conn, Call(m, sig, args))
        if out.kind != 'ok':
            raise AssertionError('%s.%s on %s: %s' % (iface, method, path, out))
        return out.body

    # --- introspection ------------------------------------------------------------------------

    def introspect(self, path, kind):
        """The methods and properties of the object at path, from its Introspect XML."""
        root = ET.fromstring(self.d.introspect(path))
        methods, props = [], {}
        for iface in root.findall('interface'):
            iname = iface.get('name')
            for m in iface.findall('method'):
                ins = [(a.get('type'), a.get('name') or 'arg%d' % i)
                       for i, a in enumerate(m.findall('arg')) if a.get('direction', 'in') == 'in']
                out = ''.join(a.get('type') for a in m.findall('arg') if a.get('direction') == 'out')
                methods.append(Method(path, iname, m.get('name'), [t for t, _ in ins], [n for _, n in ins],
                                      out, kind))
            for p in iface.findall('property'):
                props.setdefault(iname, []).append((p.get('name'), p.get('type'), p.get('access')))
        return methods, props

    @staticmethod
    def contract():
        """The interfaces of dbus-interfaces/*.xml and (interface, method) for all their methods."""
        ifaces, methods = set(), set()
        for fn in sorted(os.listdir(harness.INTERFACES_DIR)):
            if not fn.endswith('.xml'):
                continue
            root = ET.parse(os.path.join(harness.INTERFACES_DIR, fn)).getroot()
            for iface in root.findall('interface'):
                ifaces.add(iface.get('name'))
                for m in iface.findall('method'):
                    methods.add((iface.get('name'), m.get('name')))
        return ifaces, methods

    # --- the state around the calls -----------------------------------------------------------

    def set_up_world(self):
        """Objects of every kind, some of them this test's own to break."""
        self.d.manager('CreateDomain', 'ssssa{ss}', ('StandaloneVM', 'hostile-sa', 'red', '', {}))
        self.d.manager('CreateDomain', 'ssssa{ss}', ('RemoteVM', 'hostile-remote', 'purple', '', {}))
        self.ensure_victim()
        self.d.manager('CreateLabel', 'ss', ('hostile-label', '0x123456'))
        self.d.manager('AddPool', 'sa(ss)', ('file', [('name', 'hostile-pool'),
                                                      ('dir_path', os.path.join(self.scratch, 'pool'))]))
        self.d.domain('work', 'SetFeature', 'ss', ('hostile-feature', 'v'))
        self.d.domain('work', 'AddTag', 's', ('hostile-tag',))
        self.d.domain(VICTIM, 'SetFeature', 'ss', ('service.x', '1'))
        self.job_path = self.d.manager('StartQubes', 'as', ([],))[0]

    def ensure_victim(self):
        names = [x[0] for x in self.d.manager('ListDomains')[0]]
        if VICTIM not in names:
            self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', VICTIM, 'green', 'fedora-42', {}))

    def objects(self):
        """(path, kind) of every object the run calls, and of objects that do not exist."""
        qubes = FUZZED_QUBES
        pool = lambda n: ROOT_PATH + '/pool/' + bus_path_escape(n)  # noqa: E731
        volume = lambda q, v: domain_path(q) + '/volume/' + bus_path_escape(v)  # noqa: E731
        objs = [(ROOT_PATH, 'manager')]
        objs += [(domain_path(q), 'domain:' + q) for q in qubes]
        objs += [(label_path(n), 'label') for n in ('red', 'hostile-label')]
        objs += [(pool(n), 'pool') for n in ('varlibqubes', 'linux-kernel', 'hostile-pool')]
        objs += [(volume(q, v), 'volume') for q, v in (('hostile-sa', 'private'), ('hostile-sa', 'root'),
                                                       ('hostile-sa', 'kernel'), ('work', 'private'),
                                                       ('work', 'volatile'))]
        objs += [(self.job_path, 'job'), (ROOT_PATH + '/domain', 'node'), ('/', 'node'),
                 (ROOT_PATH + '/label', 'node')]
        # devices: this machine's first PCI device (its Device object has properties only)
        objs += [(harness.device_path('pci', 'dom0', harness.first_pci_port()), 'device'),
                 (ROOT_PATH + '/device', 'node')]
        return objs

    def ghost_paths(self):
        """Objects that do not exist, with the kind of object whose methods are sent there."""
        return [(domain_path('no-such-vm'), 'domain'), (domain_path('work') + '/volume/nope', 'volume'),
                (label_path('nolabel'), 'label'), (ROOT_PATH + '/pool/nopool', 'pool'),
                (ROOT_PATH + '/job/_39_39_39', 'job'), (ROOT_PATH + '/domain/work/x', 'domain'),
                (ROOT_PATH + '/Admin1', 'manager'), (ROOT_PATH + '/device/pci/dom0/nope', 'device')]

    def snapshot(self):
        """The state as the bus shows it, without what changes by itself (xid, times, power)."""
        volatile = {'xid', 'start_time', 'stubdom_xid'}
        snap = {}
        for name, props in sorted(self.d.manager('GetAllDomainProperties')[0].items()):
            snap['props:' + name] = [p for p in props if p[0] not in volatile]
            snap['features:' + name] = [(f, self.d.domain(name, 'GetFeature', 's', (f,))[0])
                                        for f in self.d.domain(name, 'ListFeatures')[0]]
            snap['tags:' + name] = self.d.domain(name, 'ListTags')[0]
            snap['notes:' + name] = self.d.domain(name, 'GetNotes')[0]
            snap['volumes:' + name] = self.d.manager('ListVolumes', 's', (name,))[0]
        for path, kind in self.objects():
            if kind == 'volume':  # usage changes by itself only for a running qube: left out all the same
                info = self.d.call(path, VOLUME, 'Info')[0]
                snap['volume:' + path] = [line for line in info.splitlines() if not line.startswith('usage=')]
        snap['global'] = self.d.manager('GetAllProperties')[0]
        snap['labels'] = self.d.manager('ListLabels')[0]
        snap['pools'] = self.d.manager('ListPools')[0]
        return snap

    # --- judging ------------------------------------------------------------------------------

    def judge(self, call, out):
        """What is wrong with this outcome (None if nothing)."""
        if out.kind in ('timeout', 'transport'):
            return out.kind + ': ' + out.message
        if out.kind == 'ok':
            self.stats[''] = self.stats.get('', 0) + 1
        if out.seconds > CALL_TIMEOUT_S:
            return 'reply after %.1f s' % out.seconds
        if out.kind == 'ok':
            if call.wrong_signature and call.iface in SD_BUS_INTERFACES and call.method.name != 'Set':
                self.lenient.add('%s.%s' % (call.iface, call.method.name))
                return None
            if call.expect_error:
                return 'accepted (an error was due): replied (%s) %s' % (out.signature, shorten(out.body, 100))
            if call.method.out_sig is not None and out.signature != call.method.out_sig:
                return 'reply signature (%s), introspection says (%s)' % (out.signature, call.method.out_sig)
            return None
        name = out.name or ''
        self.stats[name] = self.stats.get(name, 0) + 1
        if call.expect_ok:
            return 'failed (a listing must always answer): %s' % out
        if call.wrong_signature:
            if name == INVALID_ARGS or (call.iface in SD_BUS_INTERFACES and name in PROTOCOL_ERRORS):
                return None
            return 'wrong signature answered with %s, not InvalidArgs' % out
        if call.expected is not None and name not in call.expected:
            return 'expected %s, got %s' % (' or '.join(sorted(n.rsplit('.', 1)[-1] for n in call.expected)), out)
        if name in self.error_names:
            return self.judge_qubes_error(call, out)
        if name in PROTOCOL_ERRORS:
            if out.message.strip().rstrip('.') in ERRNO_TEXTS and not call.wrong_signature:
                return 'unhandled errno (%s)' % out
            return None
        return 'error outside the Qubes and protocol namespaces (%s)' % out

    def judge_qubes_error(self, call, out):
        # docs/dbus-api.md: Properties.Set errors carry the message alone, on any connection (sd-bus
        # makes the replies of its own interfaces: Properties.Get and GetAll, GetManagedObjects too)
        if call.conn_kind in ('plain', 'throwaway') or call.iface in SD_BUS_INTERFACES:
            if out.signature != 's':
                return 'Qubes error body (%s), a plain client gets (s): %s' % (out.signature, out)
        elif out.signature != 'ssas':
            return 'Qubes error body (%s), a details client gets (ssas): %s' % (out.signature, out)
        elif substitute(out.body[1], out.body[2]) != out.message:
            return 'details do not make the message: %r %% %r != %r' % (out.body[1], out.body[2], out.message)
        if not out.message.strip() and not self.upstream_empty_message(call, out):
            return 'Qubes error without a message (%s)' % out.name
        if out.message.strip().rstrip('.') in ERRNO_TEXTS:
            return 'bare errno text in a Qubes error (%s)' % out
        return None

    @staticmethod
    def known_failure(call, text, held_back=False):
        """The entry of KNOWN_FAILURES this call (with this text) matches, or None: with
        held_back, the entries whose calls are held back; else the findings."""
        for entry in KNOWN_FAILURES:
            if entry['method'] != '%s.%s' % (call.iface, call.method.name):
                continue
            match = entry['match']
            if not (match(call) if callable(match) else re.search(match, text)):
                continue
            if held_back and (entry.get('hold_back') or entry.get('trigger')):
                return entry
            if not held_back and not entry.get('trigger'):
                return entry
        return None

    @staticmethod
    def upstream_empty_message(call, out):
        """spec/admin-api.md 2.3.2: a qube property set to a non-ASCII name gets QubesValueError
        with no message upstream, and qubesd says the same."""
        if out.name != ERROR_PREFIX + 'QubesValueError':
            return False
        if call.method.name == 'SetProperty' and len(call.args) == 2:
            value = call.args[1]
        elif call.method.name == 'Set' and len(call.args) == 3 and isinstance(call.args[2], GLib.Variant):
            value = call.args[2].unpack()
        else:
            return False
        return isinstance(value, str) and not value.isascii()

    def record(self, call, problem, kind='bad reply'):
        text = '%s: %s -> %s' % (kind, call.describe(), problem)
        entry = self.known_failure(call, text)
        if entry:
            key = (KNOWN_FAILURES.index(entry), kind)
            self.known.setdefault(key, [text, 0])[1] += 1
            return
        key = (kind, call.iface, call.method.name, re.sub(r"'.*", '', problem)[:80])
        for f in self.findings:
            if f['key'] == key:
                f['count'] += 1
                return
        self.findings.append({'key': key, 'text': text, 'count': 1, 'log': self.d.log_tail(8)})

    def alive(self):
        """Whether qubesd runs and answers ListDomains; records a finding if not."""
        if self.d.proc is None or self.d.proc.poll() is not None:
            status = self.d.proc.returncode if self.d.proc else None
            recent = '\n    '.join(c.describe() for c in self.recent[-12:])
            self.findings.append({'key': ('crash',), 'count': 1, 'log': self.d.log_tail(40),
                                  'text': 'crash: qubesd exited with status %s; the last calls:\n    %s'
                                          % (status, recent)})
            return False
        m = Method(ROOT_PATH, MANAGER, 'ListDomains', [], [], 'a(sssso)', 'manager')
        out = send_sync(self.d.conn, Call(m, None, ()))
        if out.kind != 'ok':
            recent = '\n    '.join(c.describe() for c in self.recent[-12:])
            self.findings.append({'key': ('stuck',), 'count': 1, 'log': self.d.log_tail(20),
                                  'text': 'qubesd runs but ListDomains got %s; the last calls:\n    %s'
                                          % (out, recent)})
            return False
        return True

    def check_up(self):
        """After a batch: qubesd runs, answers, its listings work, and its qubes.xml parses."""
        if not self.alive():
            raise DaemonDown()
        listings = [(ROOT_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects', '', ())]
        listings += [(ROOT_PATH, MANAGER, name, '', ())
                     for name in ('GetAllDomainProperties', 'ListLabels', 'ListPools', 'GetAllProperties')]
        existing = {x[0] for x in self.d.manager('ListDomains')[0]}
        for qube in FUZZED_QUBES:
            if qube not in existing:
                continue
            listings.append((domain_path(qube), DOMAIN, 'GetAllProperties', '', ()))
            for _, path in self.d.manager('ListVolumes', 's', (qube,))[0]:
                listings.append((path, VOLUME, 'Info', '', ()))
        for path, iface, name, sig, args in listings:
            call = Call(Method(path, iface, name, [], [], None, 'listing'), sig, args)
            call.expect_ok = True
            self.run_call(call)
        harness.parse_xml_file(self.d.xml_path)

    def report(self):
        top = sorted(self.stats.items(), key=lambda x: -x[1])
        sys.stderr.write('replies: %s\n' % ', '.join('%s %d' % (n.rsplit('.', 1)[-1] or 'success', c)
                                                       for n, c in top))
        if self.lenient:
            sys.stderr.write('sd-bus answered a wrong signature (left alone): %s\n' % ' '.join(sorted(self.lenient)))
        for text in sorted(self.held_back):
            sys.stderr.write('KNOWN FAILURE (not sent in the randomized run): %s\n' % shorten(text, 200))
        for text, count in self.known.values():
            sys.stderr.write('KNOWN FAILURE (still there): %s%s\n' % (shorten(text, 400),
                                                                     ' (x%d)' % count if count > 1 else ''))
        if not self.findings:
            return
        lines = ['%d finding(s):' % len(self.findings)]
        for f in self.findings:
            lines.append('- %s%s' % (f['text'], ' (x%d)' % f['count'] if f['count'] > 1 else ''))
            lines.append('  qubesd log:\n    ' + f['log'].replace('\n', '\n    '))
        self.fail('\n'.join(lines))

    # --- calling ------------------------------------------------------------------------------

    def run_call(self, call, conn=None):
        self.recent.append(call)
        del self.recent[:-50]
        out = send_sync(conn or self.conn(call.conn_kind), call)
        problem = self.judge(call, out)
        if problem:
            self.record(call, problem)
        if out.kind != 'ok' and out.name not in self.error_names and out.name not in PROTOCOL_ERRORS:
            # a timeout or a lost connection: is qubesd still there and answering?
            if not self.alive():
                raise DaemonDown()
        return out

    def prepare(self, gen, m, conn_kind):
        """A call of m with generated arguments, with the care some methods need (None: skip)."""
        call = Call(m, m.in_sig, [], conn_kind)
        if m.iface == PROPS and m.name in ('Set', 'Get') and self.props_of.get(m.path) and gen.rng.random() < 0.7:
            iface, props = gen.rng.choice(sorted(self.props_of[m.path].items()))
            name, ptype, _ = gen.rng.choice(props)
            call.args = [iface, name]
            if m.name == 'Set':
                vt = ptype if gen.rng.random() < 0.7 else gen.rng.choice(('s', 'x', 'b', 'o', 'd'))
                call.args.append(GLib.Variant(vt, gen.value(vt, call, m.name, 'value')))
        else:
            call.args = gen.args(m, call)
        if m.iface == DOMAIN and m.name == 'Remove' and m.kind.startswith('domain:'):
            qube = m.kind.split(':', 1)[1]
            if qube not in REMOVABLE_QUBES:
                call.close_fds()
                return None
            if qube == 'dom0':
                call.expect_error = True
        if self.known_failure(call, call.describe(), held_back=True):
            self.held_back.add(call.describe())
            call.close_fds()
            return None
        if m.iface == MANAGER and m.name in ('SetCallerIdentity', 'EnableErrorDetails'):
            call.conn_kind = 'throwaway'  # they change how qubesd treats the connection
        if m.iface == MANAGER and m.name == 'AddPool':
            # qubesd runs as root here: a pool may only be made inside this test's directory
            safe = []
            for k, v in call.args[1]:
                if k == 'dir_path' and v.startswith('/') and v != '/dev/null' and \
                        not v.startswith(('/dev/null/', '/' + 'x' * 100)) and \
                        not os.path.normpath(v).startswith(self.scratch + '/'):
                    v = os.path.join(self.scratch, 'pool-' + bus_path_escape(v)[:100])
                safe.append((k, v))
            call.args[1] = safe
        return call

    def send_all(self, calls, what):
        """Sends the calls at once, on the plain connection, and judges the replies together."""
        pending = {}
        ctx = GLib.MainContext.default()

        def done(conn, res, i):
            call, t0 = pending.pop(i)
            try:
                out = outcome_of_reply(conn.send_message_with_reply_finish(res), time.monotonic() - t0)
            except GLib.Error as e:
                out = outcome_of_glib_error(e, time.monotonic() - t0)
            problem = self.judge(call, out)
            if problem:
                self.record(call, problem, what)

        for i, call in enumerate(calls):
            pending[i] = (call, time.monotonic())
            self.recent.append(call)
            self.d.conn.send_message_with_reply(call.message(), Gio.DBusSendMessageFlags.NONE,
                                                int((call.timeout_s or CALL_TIMEOUT_S) * 1000), None, done, i)
            call.close_fds()
        deadline = time.monotonic() + CALL_TIMEOUT_S + 5
        while pending and time.monotonic() < deadline:
            if not ctx.iteration(False):
                time.sleep(0.001)
        for call, _ in pending.values():
            self.record(call, 'no reply', what)
        self.calls += len(calls)
        self.check_up()

    def send(self, call):
        if call.conn_kind == 'throwaway':
            conn = connect(self.address)
            try:
                return self.run_call(call, conn)
            finally:
                conn.close_sync(None)
        return self.run_call(call)


class TestHostile(HostileTestCase):
    """Every method of every object, with arguments drawn from its signature."""

    def discover(self):
        self.methods, self.props_of = [], {}
        for path, kind in self.objects():
            methods, props = self.introspect(path, kind)
            self.methods += methods
            self.props_of[path] = props
        by_kind = {}
        for m in self.methods:
            if m.iface.startswith(harness.IFACE):
                by_kind.setdefault(m.kind.split(':')[0], {})[(m.iface, m.name)] = m
        self.ghosts = []
        for path, kind in self.ghost_paths():
            for m in by_kind.get(kind, {}).values():
                self.ghosts.append(Method(path, m.iface, m.name, m.in_types, m.in_names, m.out_sig, 'ghost'))
        ifaces, methods = self.contract()
        seen = {i for props in self.props_of.values() for i in props} | {m.iface for m in self.methods}
        self.assertEqual(sorted(ifaces - seen), [], 'interfaces of dbus-interfaces/ that no object of this test has')
        missing = sorted('%s.%s' % x for x in methods - {(m.iface, m.name) for m in self.methods})
        self.assertEqual(missing, [], 'methods of dbus-interfaces/ that no object of this test has')

    def test_randomized_calls(self):
        t0 = time.monotonic()
        self.set_up_world()
        self.discover()
        gen = Generator(random.Random(SEED), World(self.d, self.scratch))
        self.skipped = 0
        try:
            for _ in range(ITERATIONS):
                self.round(gen)
            self.burst(gen, self.methods + self.ghosts)
            self.races()
            self.vanishing_caller(gen, self.methods + self.ghosts)
            self.restart_keeps_state()
        except DaemonDown:
            pass
        sys.stderr.write('%d objects (+%d that do not exist), %d methods, %d calls in %d rounds '
                         '(%d left out: Remove of qubes the run needs, KNOWN_FAILURES), seed %#x, %.1f s\n'
                         % (len(self.objects()), len(self.ghost_paths()),
                            len({(m.iface, m.name) for m in self.methods}), self.calls, ITERATIONS, self.skipped,
                            SEED, time.monotonic() - t0))
        self.report()

    def round(self, gen):
        """Every method of every object once, and some on objects that are not there."""
        self.ensure_victim()
        order = self.methods + gen.rng.sample(self.ghosts, min(len(self.ghosts), GHOST_CALLS_PER_ROUND))
        gen.rng.shuffle(order)
        for m in order:
            r = gen.rng.random()
            call = self.prepare(gen, m, 'plain' if r < 0.8 else 'details' if r < 0.9 else 'qube')
            if call is None:
                self.skipped += 1
                continue
            self.send(call)
            self.calls += 1
            if self.d.proc.poll() is not None:
                break
        self.check_up()

    def burst(self, gen, targets):
        """BURST_CALLS random calls sent at once, the replies awaited together."""
        calls = []
        for _ in range(BURST_CALLS):
            call = self.prepare(gen, gen.rng.choice(targets), 'plain')
            if call is not None and call.conn_kind != 'plain':
                call.close_fds()
            elif call is not None:
                calls.append(call)
        self.send_all(calls, 'in a burst')

    def races(self):
        """Calls that contend for one qube, label or pool, sent at once: each gets an answer in
        time, and what is left is consistent (check_up, and the restart at the end)."""
        def c(path, iface, name, sig='', args=()):
            call = Call(Method(path, iface, name, split_signature(sig), [], None, 'race'), sig, args)
            call.timeout_s = SCENARIO_TIMEOUT_S
            return call

        race = 'hostile-race'
        create = c(ROOT_PATH, MANAGER, 'CreateDomain', 'ssssa{ss}', ('AppVM', race, 'red', 'fedora-42', {}))
        groups = [
            # a qube made, started, changed and removed at once
            [create, c(domain_path(race), DOMAIN, 'Start'), c(domain_path(race), DOMAIN, 'Remove'),
             c(ROOT_PATH, MANAGER, 'CreateDomain', 'ssssa{ss}', ('AppVM', race, 'blue', 'fedora-42', {})),
             c(domain_path(race), DOMAIN, 'SetProperty', 'ss', ('netvm', '')),
             c(domain_path(race), DOMAIN, 'Kill'), c(domain_path(race), DOMAIN, 'Remove')],
            # the victim's whole lifecycle at once
            [c(domain_path(VICTIM), DOMAIN, n, sig, args) for n, sig, args in (
                ('Start', '', ()), ('Pause', '', ()), ('Remove', '', ()), ('Restart', '', ()),
                ('Shutdown', 'bb', (True, True)), ('Kill', '', ()), ('SetProperty', 'ss', ('template', 'fedora-42')),
                ('Start', '', ()), ('Suspend', '', ()), ('Resume', '', ()), ('Unpause', '', ()))],
            # a label and a pool made, used and removed at once
            [c(ROOT_PATH, MANAGER, 'CreateLabel', 'ss', ('hostile-race-label', '0x010203')),
             c(ROOT_PATH, MANAGER, 'CreateLabel', 'ss', ('hostile-race-label', '0x030201')),
             c(ROOT_PATH, MANAGER, 'CreateDomain', 'ssssa{ss}', ('AppVM', race + '2', 'hostile-race-label', '', {})),
             c(ROOT_PATH, MANAGER, 'RemoveLabel', 's', ('hostile-race-label',)),
             c(ROOT_PATH, MANAGER, 'AddPool', 'sa(ss)',
               ('file', [('name', 'hostile-race-pool'), ('dir_path', os.path.join(self.scratch, 'race-pool'))])),
             c(ROOT_PATH, MANAGER, 'CreateDomain', 'ssssa{ss}',
               ('StandaloneVM', race + '3', 'red', '', {'pool': 'hostile-race-pool'})),
             c(ROOT_PATH, MANAGER, 'RemovePool', 's', ('hostile-race-pool',)),
             c(domain_path(race + '3'), DOMAIN, 'Remove'), c(domain_path(race + '2'), DOMAIN, 'Remove')],
            # disposables and jobs over everything
            [c(ROOT_PATH, MANAGER, 'CreateDisposable', 's', ('default-dvm',)) for _ in range(3)] +
            [c(ROOT_PATH, MANAGER, 'StartQubes', 'as', (list(FUZZED_QUBES),)),
             c(ROOT_PATH, MANAGER, 'ShutdownQubes', 'asb', (list(FUZZED_QUBES), True)),
             c(ROOT_PATH, MANAGER, 'StartQubes', 'as', (['work', 'work', 'sys-net'],))],
        ]
        for group in groups:
            self.send_all(group, 'in a race')
        self.ensure_victim()

    def vanishing_caller(self, gen, targets):
        """A caller that sends calls (long ones too) and disconnects before the replies."""
        conn = connect(self.address)
        slow = [m for m in self.methods if m.name in ('Start', 'Shutdown', 'Restart', 'CreateDisposable',
                                                       'StartQubes', 'ShutdownQubes', 'Import',
                                                       'ImportWithSize', 'CreateDomain')]
        n = 0
        held = []
        for i in range(VANISHING_CALLS):
            m = gen.rng.choice(slow if i % 2 else targets)
            call = self.prepare(gen, m, 'plain')
            if call is None or call.conn_kind != 'plain':
                if call:
                    call.close_fds()
                continue
            if m.name == 'Import' and i % 4 == 1:
                # an import whose data never comes while its caller is there
                call.close_fds()
                r, w = os.pipe()
                held.append(w)
                call.args = [call.add_fd(r)]
            self.recent.append(call)
            conn.send_message(call.message(), Gio.DBusSendMessageFlags.NONE)
            call.close_fds()
            n += 1
        conn.flush_sync(None)
        conn.close_sync(None)
        time.sleep(0.3)
        for w in held:
            os.close(w)
        self.calls += n
        self.check_up()

    def restart_keeps_state(self):
        """qubes.xml loads again, with the qubes, labels and pools qubesd had."""
        def state():
            doms = sorted(x[0] for x in self.d.manager('ListDomains')[0]
                          if not x[0].startswith('disp') or x[0] == 'disp1234')
            return doms, self.d.manager('ListLabels')[0], [p[0] for p in self.d.manager('ListPools')[0]]
        before = state()
        try:
            self.d.restart()
        except AssertionError as e:
            self.findings.append({'key': ('restart',), 'count': 1, 'log': self.d.log_tail(30),
                                  'text': 'qubesd does not come up again on its own state: %s' % e})
            return
        after = state()
        if after != before:
            self.findings.append({'key': ('restart state',), 'count': 1, 'log': self.d.log_tail(10),
                                  'text': 'the restart changed the qubes, labels or pools: %s -> %s'
                                          % (shorten(before, 300), shorten(after, 300))})


class TestRefused(HostileTestCase):
    """Batches of calls that must all be refused: state unchanged, every byte of qubes.xml."""

    def must_fail(self, what, calls):
        """Sends calls that must all fail (with one of call.expected, where set); nothing may change."""
        snap = self.snapshot()
        xml = self.d.xml_bytes()
        for call in calls:
            call.expect_error = True
            entry = self.known_failure(call, call.describe(), held_back=True)
            if entry and entry.get('hold_back'):
                self.deferred.append((what, call))
                continue
            out = self.send(call)
            now = self.d.xml_bytes()
            if now != xml:
                self.record(call, 'qubes.xml changed (%s)' % out, 'state change in "%s"' % what)
                xml = now
            if self.d.proc.poll() is not None:
                raise DaemonDown()
        if not self.alive():
            raise DaemonDown()
        after = self.snapshot()
        for k in sorted(set(snap) | set(after)):
            if snap.get(k) != after.get(k):
                self.findings.append({'key': ('snapshot', what, k), 'count': 1, 'log': self.d.log_tail(8),
                                      'text': 'state change in "%s": %s was %s, is %s'
                                              % (what, k, shorten(snap.get(k), 200), shorten(after.get(k), 200))})
        self.calls_sent += len(calls)

    def restart_loads(self):
        """After the refused batches qubesd starts again on its state."""
        try:
            self.d.restart()
        except AssertionError as e:
            self.findings.append({'key': ('restart',), 'count': 1, 'log': self.d.log_tail(20),
                                  'text': 'qubesd does not start again after the refused batches: %s' % e})
            raise DaemonDown()
        self.close_conns()  # their identity and error details belonged to the old qubesd

    def run_deferred(self):
        """The refused-batch calls of KNOWN_FAILURES, each alone: is the finding still there?"""
        for what, call in self.deferred:
            xml = self.d.xml_bytes()
            conn = connect(self.address) if call.conn_kind == 'throwaway' else self.conn(call.conn_kind)
            out = send_sync(conn, call)
            if call.conn_kind == 'throwaway':
                conn.close_sync(None)
            if out.kind == 'ok' or self.d.xml_bytes() != xml:
                text = 'in "%s": %s -> %s%s' % (what, call.describe(), out,
                                                ', qubes.xml changed' if self.d.xml_bytes() != xml else '')
                self.known[('deferred', text)] = [text, 1]
            else:
                sys.stderr.write('KNOWN FAILURE no longer seen (remove it from KNOWN_FAILURES): %s -> %s\n'
                                 % (call.describe(), out))

    def mcall(self, path, iface, name, sig, args, conn_kind='plain', expected=None):
        m = Method(path, iface, name, split_signature(sig), [], None, 'refused')
        c = Call(m, sig, args, conn_kind)
        if expected:
            c.expected = {ERROR_PREFIX + e for e in expected}
        return c

    def test_refused_calls_change_nothing(self):
        t0 = time.monotonic()
        self.calls_sent = 0
        self.deferred = []
        self.set_up_world()
        qubes = FUZZED_QUBES
        try:
            self.batch_properties(qubes)
            self.batch_tags_features(qubes)
            self.batch_create(qubes)
            self.batch_labels_pools()
            self.batch_volumes()
            self.batch_lifecycle(qubes)
            self.batch_wrong_signatures(self.objects())
            self.batch_qube_caller()
            self.restart_loads()
            self.run_deferred()
            self.check_up()
        except DaemonDown:
            pass
        sys.stderr.write('%d calls that must be refused, %.1f s\n' % (self.calls_sent, time.monotonic() - t0))
        self.report()

    # property values no property of that Qubes type may take
    BAD_BY_TYPE = {
        'int': ['abc', '', '1.5', '0x10', '1e3', '-', '99999999999999999999999', '12\u00e9'],
        'bool': ['maybe', '2', '', 'yes please', 'Tru'],
        'vm': ['no-such-vm', '../work', 'a/b', 'work\n', 'x' * 40, '.hidden', 'uuid:zzz'],
        'label': ['nolabel', 'label-99', '../red', 'red\n', 'x' * 100],
    }
    # str properties with a rule; the others (kernelopts, default_user, ...) take any string
    BAD_STR = {
        'mac': ['zz', '00:16:3e:5e:6c', '00:16:3e:5e:6c:00:00', 'gg:16:3e:5e:6c:00'],
        'virt_mode': ['bogus', '', 'PVH ', 'x' * 1000],
        'kernel': ['a/b', '../6.6.1-1.fc37', '/', 'a b', '..', '@x', 'k' * 256],
        'default_kernel': ['a/b', '../x', '/', 'a b', '..', '@x', 'k' * 256],
        'ip': ['999.1.1.1', 'a.b.c.d', '10.137.0.4/24', '1.2.3'],
        'ip6': ['zz::zz', '1.2.3.4', ':::', 'fd09::1::2'],
        'default_pool': ['nopool', '../varlibqubes'],
        'default_pool_root': ['nopool'],
        'default_pool_private': ['nopool'],
        'default_pool_volatile': ['nopool'],
        'default_pool_kernel': ['nopool'],
        'default_user': ['a b', '\u00e9', '../x', 'user\n'],
        'keyboard_layout': ['us', 'us+', 'us+++', '\u00e9++', '1++', 'us+\n+', 'us+a b+'],
        'devices_denied': ['abc', 'x000000', 'b00000G', 'u12345', 'b000000u00000'],
    }

    def batch_properties(self, qubes):
        calls = []
        untested = set()
        for q in qubes:
            path = domain_path(q)
            rw = {}
            for iface, props in self.introspect(path, 'domain')[1].items():
                for name, ptype, access in props:
                    rw[re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()] = access == 'readwrite'
            for name, ptype, _, _ in self.d.domain(q, 'GetAllProperties')[0]:
                calls += self.bad_property_calls(path, DOMAIN, name, ptype, rw.get(name, False), untested)
            calls.append(self.mcall(path, DOMAIN, 'SetProperty', 'ss', ('no_such_property', '1'),
                                    expected={'QubesNoSuchPropertyError'}))
            calls.append(self.mcall(path, DOMAIN, 'ResetProperty', 's', ('no_such_property',),
                                    expected={'QubesNoSuchPropertyError'}))
            for name in ('name', 'qid', 'uuid'):  # write-once (klass may be reset: it is a no-op)
                calls.append(self.mcall(path, DOMAIN, 'ResetProperty', 's', (name,)))
            for iface, props in self.introspect(path, 'domain')[1].items():
                for name, ptype, access in props:
                    calls += self.bad_dbus_set_calls(path, iface, name, ptype, access)
            calls.append(self.mcall(path, PROPS, 'Set', 'ssv', ('no.such.Interface', 'Name', GLib.Variant('s', 'x'))))
            if q == 'sys-net':  # its default netvm would be itself: a loop
                calls.append(self.mcall(path, DOMAIN, 'ResetProperty', 's', ('netvm',),
                                        expected={'QubesPropertyValueError', 'QubesValueError'}))
            if q == 'default-dvm':  # the default (False) while disp1234 is based on it
                calls.append(self.mcall(path, DOMAIN, 'ResetProperty', 's', ('template_for_dispvms',),
                                        expected={'QubesVMInUseError'}))
            calls.append(self.mcall(path, PROPS, 'Set', 'ssv', (DOMAIN, 'NoSuch', GLib.Variant('s', 'x'))))
        for name, ptype, _, _ in self.d.manager('GetAllProperties')[0]:
            calls += self.bad_property_calls(ROOT_PATH, MANAGER, name, ptype, True, untested)
        calls.append(self.mcall(ROOT_PATH, MANAGER, 'SetProperty', 'ss', ('no_such_property', '1'),
                                expected={'QubesNoSuchPropertyError'}))
        for iface, props in self.introspect(ROOT_PATH, 'manager')[1].items():
            for name, ptype, access in props:
                calls += self.bad_dbus_set_calls(ROOT_PATH, iface, name, ptype, access)
        self.must_fail('invalid property values', calls)
        if untested:
            sys.stderr.write('str properties that take any string (not in the refused batch): %s\n'
                             % ' '.join(sorted(untested)))

    def bad_property_calls(self, path, iface, name, ptype, writable, untested):
        if not writable:
            values = ['x', '', '1']
        elif ptype in self.BAD_BY_TYPE:
            values = self.BAD_BY_TYPE[ptype]
        else:
            values = self.BAD_STR.get(name)
            if values is None:
                untested.add(name)
                return []
        return [self.mcall(path, iface, 'SetProperty', 'ss', (name, v)) for v in values]

    def bad_dbus_set_calls(self, path, iface, name, ptype, access):
        wrong = {'s': GLib.Variant('x', 5), 'x': GLib.Variant('s', '5'), 'b': GLib.Variant('s', 'True'),
                 'o': GLib.Variant('s', 'sys-net'), 'i': GLib.Variant('s', '1'), 't': GLib.Variant('x', 1),
                 'd': GLib.Variant('s', '1.0'), 'as': GLib.Variant('s', 'x')}.get(ptype, GLib.Variant('u', 1))
        calls = [self.mcall(path, PROPS, 'Set', 'ssv', (iface, name, wrong))]
        if access != 'readwrite':
            calls.append(self.mcall(path, PROPS, 'Set', 'ssv', (iface, name, GLib.Variant(ptype, self.some(ptype)))))
        elif ptype == 'o':
            bad = ['/no/such/object', ROOT_PATH, ROOT_PATH + '/pool/varlibqubes',
                   domain_path('work') + '/volume/private']
            bad += [domain_path('work'), label_path('nolabel')] if name == 'Label' else \
                [domain_path('no-such-vm'), label_path('red')]
            for p in bad:
                calls.append(self.mcall(path, PROPS, 'Set', 'ssv', (iface, name, GLib.Variant('o', p))))
        return calls

    @staticmethod
    def some(ptype):
        if ptype.startswith('a{'):
            return {}
        if ptype.startswith('a'):
            return []
        if ptype.startswith('('):
            return tuple(TestRefused.some(t) for t in split_signature(ptype[1:-1]))
        return {'s': 'x', 'o': '/', 'g': '', 'b': True, 'd': 1.0}.get(ptype, 1)

    def batch_tags_features(self, qubes):
        calls = []
        for q in qubes:
            path = domain_path(q)
            for tag in ('', 'a b', 'x/y', '\n', 'é', 'x' * 256, 'a.b', '../', 'tag\x01', ONE_MIB):
                calls.append(self.mcall(path, DOMAIN, 'AddTag', 's', (tag,), expected={'QubesInvalidTagError'}))
                calls.append(self.mcall(path, DOMAIN, 'RemoveTag', 's', (tag,),
                                        expected={'QubesInvalidTagError', 'QubesTagNotFoundError'}))
            calls.append(self.mcall(path, DOMAIN, 'RemoveTag', 's', ('no-such-tag',),
                                    expected={'QubesTagNotFoundError'}))
            for name in ('', 'a b', 'a/b', 'é', 'x' * 256, '\n', 'a\x01', '../x', SIXTY_FOUR_KIB):
                calls.append(self.mcall(path, DOMAIN, 'SetFeature', 'ss', (name, '1'), expected={'ProtocolError'}))
            for value in ('\n', '\x01', 'é', 'x' * 65537, ONE_MIB, '\x7f'):
                calls.append(self.mcall(path, DOMAIN, 'SetFeature', 'ss', ('hostile-feature', value),
                                        expected={'ProtocolError'}))
            calls.append(self.mcall(path, DOMAIN, 'SetFeature', 'ss', ('service.' + 'x' * 49, '1'),
                                    expected={'QubesValueError'}))
            calls.append(self.mcall(path, DOMAIN, 'RemoveFeature', 's', ('no-such-feature',),
                                    expected={'QubesFeatureNotFoundError'}))
            calls.append(self.mcall(path, DOMAIN, 'SetNotes', 's', ('x' * 256001,), expected={'ProtocolError'}))
            calls.append(self.mcall(path, DOMAIN, 'SetNotes', 's', (ONE_MIB,), expected={'ProtocolError'}))
        self.must_fail('invalid tags, features and notes', calls)

    def batch_create(self, qubes):
        calls = []

        def create(klass='AppVM', name='hostile-new', label='red', template='fedora-42', options=None,
                   expected=None):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'CreateDomain', 'ssssa{ss}',
                                    (klass, name, label, template, options or {}), expected=expected))
        for klass in ('', 'NoSuchVM', 'appvm', 'AdminVM', '../AppVM', 'Domain', 'x' * 1000, 'AppVM\n'):
            create(klass=klass)
        for name in ('', 'dom0', 'work', 'fedora-42', '.x', '-x', '_x', '0abc', 'a b', 'a/b', '../x', 'x' * 32,
                     'none', 'default', 'é', 'x\n', ONE_MIB, 'disp\x01'):
            create(name=name)
        for label in ('', 'nolabel', 'label-99', '../red', 'x' * 100, '#ff0000'):
            create(label=label)
        for template in ('no-such-vm', 'work', 'dom0', 'sys-net', '../fedora-42', 'x' * 40):
            create(template=template)
        create(klass='StandaloneVM', template='no-such-vm')
        for options in ({'pool': 'nopool'}, {'bogus': 'x'}, {'pool:nope': 'varlibqubes'},
                        {'pool:private': 'nopool'}, {'pool': '../varlibqubes'}, {'': ''},
                        {'pool': 'varlibqubes', 'pool:root': 'varlibqubes'}):
            create(options=options)
        # a dict with a key twice (D-Bus allows it; a Python dict cannot say it)
        for pairs in ((('pool', 'varlibqubes'), ('pool', 'varlibqubes')),
                      (('pool:private', 'varlibqubes'), ('pool:private', 'nopool'))):
            create(options=GLib.Variant.new_array(GLib.VariantType('{ss}'), [
                GLib.Variant.new_dict_entry(GLib.Variant('s', k), GLib.Variant('s', v)) for k, v in pairs]))
        self.must_fail('invalid CreateDomain', calls)
        # nothing of the refused qubes was left on disk either
        self.assertFalse(os.path.exists(os.path.join(self.d.state_dir, 'appvms', 'hostile-new')),
                         'a refused CreateDomain left its directory')

    def batch_labels_pools(self):
        calls = []
        for name in ('', 'a b', '123', 'x' * 65, 'é', 'red', 'hostile-label', '../x', 'a/b', '\n'):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'CreateLabel', 'ss', (name, '0x123456'),
                                    expected={'QubesInvalidLabelError', 'QubesLabelInUseError'}))
        for color in ('', '0x12345', '#ff0000', '0x1234567', '0xgggggg', 'éééééééé', '0x', 'red', ONE_MIB):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'CreateLabel', 'ss', ('hostile-new-label', color),
                                    expected={'QubesInvalidLabelValueError'}))
        for name in ('red', 'nolabel', '', '../red', 'blue'):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'RemoveLabel', 's', (name,)))
        pool_dir = os.path.join(self.scratch, 'refused-pool')
        for driver in ('', 'nosuch', '../file', 'file\n', 'FILE', 'x' * 1000):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'AddPool', 'sa(ss)',
                                    (driver, [('name', 'p'), ('dir_path', pool_dir)]),
                                    expected={'PermissionDenied'}))
        for config in ([], [('name', 'p')], [('name', 'p'), ('name', 'q'), ('dir_path', pool_dir)],
                       [('name', '../p'), ('dir_path', pool_dir)], [('name', ''), ('dir_path', pool_dir)],
                       [('name', 'x' * 65), ('dir_path', pool_dir)], [('name', 'p'), ('dir_path', 'rel')],
                       [('name', 'p'), ('dir_path', '')], [('name', 'p'), ('dir_path', pool_dir + '\n')],
                       [('name', 'p'), ('dir_path', pool_dir), ('bogus', '1')],
                       [('name', 'p'), ('dir_path', pool_dir), ('revisions_to_keep', '-2')],
                       [('name', 'p'), ('dir_path', pool_dir), ('revisions_to_keep', 'x')],
                       [('name', 'p'), ('dir_path', pool_dir), ('revisions_to_keep', '99999999999999999999')],
                       [('name', 'p'), ('dir_path', pool_dir), ('ephemeral_volatile', 'maybe')],
                       [('name', 'varlibqubes'), ('dir_path', pool_dir)],
                       [('name', 'p'), ('dir_path', '/dev/null')]):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'AddPool', 'sa(ss)', ('file', config)))
        for name in ('varlibqubes', 'linux-kernel', 'nopool', '', '../varlibqubes'):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'RemovePool', 's', (name,)))
        self.must_fail('invalid labels and pools', calls)
        self.assertFalse(os.path.exists(pool_dir), 'a refused AddPool made its directory')

    def batch_volumes(self):
        calls = []
        vol = domain_path('hostile-sa') + '/volume/private'
        kernel = domain_path('hostile-sa') + '/volume/kernel'
        pool = ROOT_PATH + '/pool/varlibqubes'
        for size in ('', '01', '-5', '+5', '1e9', '99999999999999999999', '9223372036854775807', '1024', '0',
                     'x', '١٠٠'):
            calls.append(self.mcall(vol, VOLUME, 'Resize', 's', (size,)))
        for rev in ('', '../../etc', 'nope', 'x' * 1000, '/'):
            calls.append(self.mcall(vol, VOLUME, 'Revert', 's', (rev,)))
        for method in ('SetRw', 'SetEphemeral'):
            for v in ('maybe', '', '2', 'x' * 1000):
                calls.append(self.mcall(vol, VOLUME, method, 's', (v,)))
        for v in ('1x', '-2', '', '99999999999999999999', '5'):
            calls.append(self.mcall(vol, VOLUME, 'SetRevisionsToKeep', 's', (v,)))
            calls.append(self.mcall(pool, POOL, 'SetRevisionsToKeep', 's', (v,)))
        for v in ('maybe', '', '2'):
            calls.append(self.mcall(pool, POOL, 'SetEphemeralVolatile', 's', (v,)))
        for token in ('', 'x' * 32, '../' * 11, 'A' * 33, ONE_MIB):
            calls.append(self.mcall(vol, VOLUME, 'CloneTo', 's', (token,),
                                    expected={'QubesVolumeCopyTokenNotFoundError'}))
        calls.append(self.mcall(vol, VOLUME, 'CancelImport', '', ()))
        calls.append(self.mcall(kernel, VOLUME, 'Resize', 's', ('1073741824',)))
        for q, v in (('hostile-sa', '../private'), ('hostile-sa', '/etc/passwd'), ('hostile-sa', ''),
                     ('no-such-vm', 'private'), ('', 'private')):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'GetVolume', 'ss', (q, v)))
        self.must_fail('invalid volume and pool arguments', calls)

    def batch_lifecycle(self, qubes):
        calls = [self.mcall(domain_path('dom0'), DOMAIN, 'Remove', '', (), expected={'QubesVMInUseError'})]
        for name in ('fedora-42', 'sys-net', 'default-dvm'):
            calls.append(self.mcall(domain_path(name), DOMAIN, 'Remove', '', (), expected={'QubesVMInUseError'}))
        for method in ('Kill', 'Pause', 'Unpause', 'Suspend', 'Resume'):
            calls.append(self.mcall(domain_path('work'), DOMAIN, method, '', ()))
            calls.append(self.mcall(domain_path('dom0'), DOMAIN, method, '', ()))
        calls.append(self.mcall(domain_path('dom0'), DOMAIN, 'Shutdown', 'bb', (True, False)))
        calls.append(self.mcall(domain_path('dom0'), DOMAIN, 'Start', '', ()))
        for names in (['no-such-vm'], ['', 'work'], ['x' * 1000], ['work', 'work\n']):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'StartQubes', 'as', (names,)))
        for template in ('no-such-vm', 'work', 'dom0', '../x'):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'CreateDisposable', 's', (template,)))
        for ref in ('', 'no-such-vm', 'uuid:zzz', ONE_MIB):
            calls.append(self.mcall(ROOT_PATH, MANAGER, 'SetCallerIdentity', 's', (ref,), conn_kind='throwaway'))
        self.must_fail('refused removals and lifecycle calls', calls)

    def batch_wrong_signatures(self, objects):
        gen = Generator(random.Random(SEED + 1), World(self.d, self.scratch))
        calls = []
        for path, kind in objects:
            methods, _ = self.introspect(path, kind)
            for m in methods:
                names = m.in_names + ['extra'] * 3
                for sig, args in gen.wrong_signatures(m):
                    c = Call(m, sig, [], 'plain', wrong_signature=True)
                    c.args = args if args is not None else \
                        [gen.value(t, c, m.name, n) for t, n in zip(split_signature(sig), names)]
                    calls.append(c)
                if not m.iface.startswith(harness.IFACE):
                    continue
                # the method on an interface the object does not have, and on an object that is not there
                c = Call(m, m.in_sig, [], 'plain', iface=harness.IFACE + '.NoSuch')
                c.args = gen.args(m, c)
                c.expected = {DBUS_ERROR + 'UnknownMethod', DBUS_ERROR + 'UnknownInterface'}
                calls.append(c)
                ghost = Method(path.rstrip('/') + '/no_2dsuch_2dchild', m.iface, m.name, m.in_types, m.in_names,
                               m.out_sig, 'ghost')
                c = Call(ghost, m.in_sig, [])
                c.args = gen.args(ghost, c)
                c.expected = {DBUS_ERROR + 'UnknownObject', DBUS_ERROR + 'UnknownMethod'}
                calls.append(c)
        self.must_fail('wrong signatures and missing objects', calls)

    def batch_qube_caller(self):
        path = domain_path('work')
        calls = []
        for value in ('sys-firewall', 'work', 'fedora-42', 'dom0', 'no-such-vm'):
            calls.append(self.mcall(path, DOMAIN, 'SetProperty', 'ss', ('netvm', value), conn_kind='qube'))
        for value in ('blue', 'black', 'nolabel'):
            calls.append(self.mcall(path, DOMAIN, 'SetProperty', 'ss', ('label', value), conn_kind='qube'))
        for value in ('3', '0', '-1', '01', 'x'):
            calls.append(self.mcall(path, DOMAIN, 'SetProperty', 'ss', ('vcpus', value), conn_kind='qube'))
        calls.append(self.mcall(path, DOMAIN, 'ResetProperty', 's', ('netvm',), conn_kind='qube'))
        calls.append(self.mcall(path, PROPS, 'Set', 'ssv', (harness.QUBESVM_IFACE, 'Netvm',
                                                            GLib.Variant('o', domain_path('fedora-42'))),
                                conn_kind='qube'))
        calls.append(self.mcall(ROOT_PATH, MANAGER, 'SetCallerIdentity', 's', ('sys-net',), conn_kind='qube'))
        self.must_fail('a qube caller outside its constraints', calls)


class TestScenarios(HostileTestCase):
    """Short scripted cases the randomized run found; each call must be answered in time."""

    def step(self, qube, method, sig='', args=(), timeout_s=SCENARIO_TIMEOUT_S):
        m = Method(domain_path(qube), DOMAIN, method, split_signature(sig), [], None, 'scenario')
        call = Call(m, sig, args)
        call.timeout_s = timeout_s
        return self.run_call(call)

    def test_scenarios(self):
        try:
            # Start and Remove at once: both answer, whichever wins
            self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'hostile-race', 'red', 'fedora-42', {}))
            calls = []
            for method in ('Start', 'Remove'):
                calls.append(Call(Method(domain_path('hostile-race'), DOMAIN, method, [], [], None, 'scenario'),
                                  '', ()))
                calls[-1].timeout_s = SCENARIO_TIMEOUT_S
            self.send_all(calls, 'at once')
            # a disposable with auto_cleanup goes when it stops: Restart must still answer
            name = self.d.manager('CreateDisposable', 's', ('default-dvm',))[0]
            self.step(name, 'Restart')
            self.d.set_property('disp1234', 'auto_cleanup', 'True')
            self.step('disp1234', 'Start')
            self.step('disp1234', 'Restart')
            self.check_up()
            # a kernel name the kernel pool refuses as a volume id: accepted or not, the listings
            # and the creation of a qube must keep working
            for target, prop in (('work', 'kernel'), (None, 'default_kernel')):
                for value in ('a b', '@x', '..', 'k' * 256):
                    if target:
                        self.step(target, 'SetProperty', 'ss', (prop, value))
                    else:
                        self.send(Call(Method(ROOT_PATH, MANAGER, 'SetProperty', ['s', 's'], [], None, 'scenario'),
                                       'ss', (prop, value)))
                    self.check_up()
                    call = Call(Method(ROOT_PATH, MANAGER, 'CreateDomain', [], [], None, 'scenario'), 'ssssa{ss}',
                                ('AppVM', 'hostile-k', 'red', 'fedora-42', {}))
                    call.expect_ok = True
                    if self.run_call(call).kind == 'ok':
                        self.d.domain('hostile-k', 'Remove')
            self.check_up()
        except DaemonDown:
            pass
        self.report()


if __name__ == '__main__':
    harness.main()
