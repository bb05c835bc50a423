#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""polkit for local callers: a private *system* bus, a real polkitd on it, qubesd as root, and
real unprivileged users (created with useradd) calling through setpriv.

Users (created if missing, left in place): alice (the example rule: manages the qubes tagged
managed-by-alice), bob (no rights; one test rule offers him authentication for lifecycle
actions), carol (member of the group "qubes"), dave (a test rule: reads the system and the
qubes tagged managed-by-dave). While the test runs, the actions file and the
rules are installed into the system's polkit directories, and removed (or restored) afterwards.

Needs root and polkitd (/usr/lib/polkit-1/polkitd, Debian package polkitd); skips without.
"""

import json
import os
import pwd
import grp
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

POLKITD = '/usr/lib/polkit-1/polkitd'
ACTIONS_DIR = '/usr/share/polkit-1/actions'
SHARE_RULES_DIR = '/usr/share/polkit-1/rules.d'
ETC_RULES_DIR = '/etc/polkit-1/rules.d'
POLKIT_SRC = os.path.join(harness.SOURCE_DIR, 'polkit')
ERR = harness.ERROR_PREFIX
NOT_AUTHORIZED = ERR + 'NotAuthorized'
CAN_OBTAIN = ERR + 'NotAuthorizedCanObtain'
VM_NOT_FOUND = ERR + 'QubesVMNotFoundError'
# a qube a user may not read does not exist for them
UNKNOWN_OBJECT = 'org.freedesktop.DBus.Error.UnknownObject'

# what only this test adds: bob may authenticate for lifecycle actions (is_challenge)
TEST_RULES = '''// installed by qubesd's tests/integration/test_polkit.py for the duration of the test
polkit.addRule(function(action, subject) {
    if (subject.user === "bob" && action.id === "org.qubes_os.admin.lifecycle")
        return polkit.Result.AUTH_ADMIN;
    if (subject.user === "dave" && action.id === "org.qubes_os.admin.read")
        return !action.lookup("qube") || (action.lookup("tags") || "").split(" ").indexOf("managed-by-dave") >= 0
            ? polkit.Result.YES : polkit.Result.NO;
    return polkit.Result.NOT_HANDLED;
});
'''

# what test_rules_change_takes_effect adds and removes while qubesd runs: alice may read personal
# (it runs before the example rule, which would refuse)
EXTRA_RULES_FILE = '/etc/polkit-1/rules.d/30-qubesd-test-extra.rules'
EXTRA_RULES = '''// installed by qubesd's tests/integration/test_polkit.py for a moment
polkit.addRule(function(action, subject) {
    if (subject.user === "alice" && action.id === "org.qubes_os.admin.read" && action.lookup("qube") === "personal")
        return polkit.Result.YES;
    return polkit.Result.NOT_HANDLED;
});
'''

# Run as another user: a process on the bus that calls nothing (as the peers of a login session,
# which come long before a listing); prints "ready", leaves when its stdin closes.
PRESENT = r'''
import sys
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio
conn = Gio.DBusConnection.new_for_address_sync(sys.argv[1],
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
print('ready', flush=True)
sys.stdin.read()
'''

# Run as another user: reads [[path, iface, method, signature, args], ...] as JSON on stdin,
# sends them all at once (parallel) or one after the other, and prints one result per call.
CLIENT = r'''
import json, sys
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib
address, mode = sys.argv[1], sys.argv[2]
parallel = mode in ('parallel', 'leave')
calls = json.load(sys.stdin)
conn = Gio.DBusConnection.new_for_address_sync(address,
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)
results = [None] * len(calls)
def message(c):
    path, iface, method, sig, args = c[:5]
    m = Gio.DBusMessage.new_method_call('org.qubes_os.Admin1', path, iface, method)
    if len(c) > 5 and c[5] == 'interactive':
        m.set_flags(Gio.DBusMessageFlags.ALLOW_INTERACTIVE_AUTHORIZATION)
    if sig == 'ssv':  # a variant travels as [signature, value]
        args = [args[0], args[1], GLib.Variant(*args[2])]
    if sig is not None:
        m.set_body(GLib.Variant('(' + sig + ')', tuple(args)))
    return m
def result(reply):
    body = reply.get_body()
    values = body.unpack() if body is not None else ()
    if reply.get_message_type() == Gio.DBusMessageType.ERROR:
        return {'error': reply.get_error_name(),
                'message': values[0] if values and isinstance(values[0], str) else ''}
    return {'error': None, 'value': list(values)}
if parallel:
    loop = GLib.MainLoop()
    left = [len(calls)]
    def done(conn, res, i):
        results[i] = result(conn.send_message_with_reply_finish(res))
        left[0] -= 1
        if not left[0]:
            loop.quit()
    for i, c in enumerate(calls):
        conn.send_message_with_reply(message(c), Gio.DBusSendMessageFlags.NONE, 120000, None, done, i)
    if mode == 'leave':  # gone before any answer
        conn.flush_sync(None)
        sys.exit(0)
    if calls:
        loop.run()
else:
    for i, c in enumerate(calls):
        reply, _ = conn.send_message_with_reply_sync(message(c), Gio.DBusSendMessageFlags.NONE, 120000, None)
        results[i] = result(reply)
json.dump(results, sys.stdout)
'''


# Run as another user: subscribes to everything qubesd sends it (broadcasts the bus lets through,
# and the copies SubscribeEvents addresses to it), prints "ready", and stops when an Event carries
# newvalue=<stop> (or after 60 s); prints the signals as JSON.
SUBSCRIBER = r'''
import json, sys
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib
address, stop = sys.argv[1], sys.argv[2]
conn = Gio.DBusConnection.new_for_address_sync(address,
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)
got = []
loop = GLib.MainLoop()
def on_signal(conn, sender, path, iface, member, params):
    entry = {'interface': iface, 'member': member, 'path': path}
    if member == 'Event':
        seq, subject, event, kwargs = params.unpack()
        entry.update(seq=seq, subject=subject, event=event, kwargs=dict(kwargs))
        if dict(kwargs).get('newvalue') == stop:
            GLib.timeout_add(500, loop.quit)
    got.append(entry)
conn.signal_subscribe('org.qubes_os.Admin1', None, None, None, None, Gio.DBusSignalFlags.NONE, on_signal)
conn.call_sync('org.qubes_os.Admin1', '/org/qubes_os/Admin1', 'org.qubes_os.Admin1.Manager', 'SubscribeEvents',
               GLib.Variant('(s)', ('',)), None, Gio.DBusCallFlags.NONE, 60000, None)
print('ready', flush=True)
GLib.timeout_add_seconds(60, loop.quit)
loop.run()
json.dump(got, sys.stdout)
'''

def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ensure_user(name, groups=()):
    try:
        pwd.getpwnam(name)
    except KeyError:
        run('useradd', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', name)
    for g in groups:
        if name not in grp.getgrnam(g).gr_mem:
            run('usermod', '--append', '--groups', g, name)


def built_actions_file():
    build = os.environ.get('QUBES_BUILD_DIR')
    if build:
        path = os.path.join(build, 'polkit', 'org.qubes_os.admin.policy')
        if os.path.exists(path):
            return path
    return os.path.join(POLKIT_SRC, 'org.qubes_os.admin.policy.in')


class PolkitTest(unittest.TestCase):
    installed = []  # (path, previous content or None)

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest('needs root (users, polkit directories, a system bus)')
        if not os.access(POLKITD, os.X_OK):
            raise unittest.SkipTest('polkitd is not installed (Debian package polkitd)')
        for tool in ('setpriv', 'useradd', 'dbus-daemon'):
            if not shutil.which(tool):
                raise unittest.SkipTest(tool + ' is not available')
        try:
            pwd.getpwnam('polkitd')
        except KeyError:
            raise unittest.SkipTest('there is no polkitd user')
        harness.find_qubesd()

        run('groupadd', '--force', 'qubes')
        ensure_user('alice')
        ensure_user('bob')
        ensure_user('carol', groups=('qubes',))
        ensure_user('dave')

        cls.dir = tempfile.mkdtemp(prefix='qubesd-polkit-')
        os.chmod(cls.dir, 0o755)  # the users must reach the bus socket
        cls.procs = []
        try:
            cls.install(os.path.join(ACTIONS_DIR, 'org.qubes_os.admin.policy'), built_actions_file())
            cls.install(os.path.join(SHARE_RULES_DIR, '50-qubes.rules'),
                        os.path.join(POLKIT_SRC, '50-qubes.rules'))
            cls.install(os.path.join(ETC_RULES_DIR, '50-qubes-managed-by.rules'),
                        os.path.join(POLKIT_SRC, 'examples', '50-qubes-managed-by.rules'))
            cls.install(os.path.join(ETC_RULES_DIR, '40-qubesd-test.rules'), None, TEST_RULES)
            cls.start_system_bus()
            cls.start_polkitd()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def install(cls, dest, src, text=None):
        if text is None:
            with open(src, encoding='utf-8') as f:
                text = f.read()
        previous = None
        if os.path.exists(dest):
            with open(dest, encoding='utf-8') as f:
                previous = f.read()
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        cls.installed.append((dest, previous))
        with open(dest, 'w', encoding='utf-8') as f:
            f.write(text)
        os.chmod(dest, 0o644)

    @classmethod
    def start_system_bus(cls):
        bus, cls.address, cls.conn = harness.start_system_bus(cls.dir)
        cls.procs.append(bus)

    @classmethod
    def start_polkitd(cls):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=cls.address)
        cls.polkit_log = open(os.path.join(cls.dir, 'polkitd.log'), 'wb')
        # started as root, it becomes the user polkitd itself (whom its bus policy lets own the name)
        proc = subprocess.Popen([POLKITD, '--no-debug'],
                                env=env, stdout=cls.polkit_log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        cls.procs.append(proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if cls.has_owner('org.freedesktop.PolicyKit1'):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError('polkitd did not come up:\n' + cls.polkit_log_text())

    @classmethod
    def polkit_log_text(cls):
        with open(os.path.join(cls.dir, 'polkitd.log'), 'rb') as f:
            return f.read().decode(errors='replace')[-4000:]

    @classmethod
    def has_owner(cls, name):
        return harness.name_has_owner(cls.conn, name)

    @classmethod
    def tearDownClass(cls):
        for proc in reversed(getattr(cls, 'procs', [])):
            harness.stop_process(proc)
        if getattr(cls, 'polkit_log', None):
            cls.polkit_log.close()
        for dest, previous in reversed(cls.installed):
            if previous is None:
                try:
                    os.unlink(dest)
                except FileNotFoundError:
                    pass
            else:
                with open(dest, 'w', encoding='utf-8') as f:
                    f.write(previous)
        cls.installed = []
        if getattr(cls, 'dir', None):
            if os.environ.get('QUBES_TEST_KEEP'):
                sys.stderr.write('kept %s\n' % cls.dir)
            else:
                shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.d = harness.SystemBusDaemon(self.address, harness.DEMO_XML)
        self.addCleanup(self.d.cleanup)
        self.d.start()

    def tearDown(self):
        status = self.d.stop()
        self.assertEqual(status, 0, 'qubesd exited with status %s:\n%s' % (status, self.d.log_tail()))

    # --- helpers ----------------------------------------------------------------------------

    def as_user(self, user, calls, parallel=False, leave=False):
        """Make calls as user; returns one {'error': name or None, ...} per call. parallel: all
        sent at once; leave: sent at once and the caller leaves the bus without waiting."""
        calls = [list(c) for c in calls]
        r = subprocess.run(['setpriv', '--reuid=' + user, '--regid=' + user, '--init-groups',
                            '/usr/bin/python3', '-c', CLIENT, self.address,
                            'leave' if leave else 'parallel' if parallel else 'sequential'],
                           input=json.dumps(calls), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=300 if harness.UNDER_WRAPPER else 60)
        if r.returncode != 0:
            raise AssertionError('client as %s failed: %s' % (user, r.stderr))
        return None if leave else json.loads(r.stdout)

    def one(self, user, call):
        return self.as_user(user, [call])[0]

    def subscriber(self, user, stop):
        """A client of user that collects signals until an Event with newvalue=stop; call
        .collect() on the result after making changes."""
        proc = subprocess.Popen(['setpriv', '--reuid=' + user, '--regid=' + user, '--init-groups',
                                 '/usr/bin/python3', '-c', SUBSCRIBER, self.address, stop],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        line = proc.stdout.readline()
        if line.strip() != 'ready':
            proc.kill()
            raise AssertionError('subscriber %s did not start: %s' % (user, proc.stderr.read()))

        def collect():
            out, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise AssertionError('subscriber %s failed: %s' % (user, err))
            return json.loads(out)
        proc.collect = collect
        return proc

    def present(self, user):
        """A process of user on the bus that calls nothing (qubesd asks polkit ahead for it)."""
        proc = subprocess.Popen(['setpriv', '--reuid=' + user, '--regid=' + user, '--init-groups',
                                 '/usr/bin/python3', '-c', PRESENT, self.address],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def leave():
            proc.stdin.close()
            proc.wait(timeout=30)
            proc.stdout.close()
        self.addCleanup(lambda: proc.poll() is None and leave())
        self.assertEqual(proc.stdout.readline().strip(), 'ready')
        return proc

    def names(self, user):
        """The names ListDomains gives user, and the qubes of GetManagedObjects, asked at once."""
        res = self.as_user(user, [self.manager_call('ListDomains'),
                                  (harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects',
                                   None, [])], parallel=True)
        for r in res:
            self.assertAllowed(r, user)
        listed = sorted(row[0] for row in res[0]['value'][0])
        prefix = harness.ROOT_PATH + '/domain/'
        objects = sorted(p[len(prefix):] for p in res[1]['value'][0] if p.startswith(prefix) and
                         '/' not in p[len(prefix):])
        self.assertEqual([harness.bus_path_escape(n) for n in listed], objects, user)
        return listed

    def polkit_changes(self, change):
        """Run change (a change of polkit's rules) and wait until polkitd says so (Changed)."""
        got = []
        sid = self.conn.signal_subscribe('org.freedesktop.PolicyKit1', 'org.freedesktop.PolicyKit1.Authority',
                                         'Changed', '/org/freedesktop/PolicyKit1/Authority', None,
                                         Gio.DBusSignalFlags.NONE, lambda *a: got.append(1))
        try:
            self.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                                'GetId', None, None, Gio.DBusCallFlags.NONE, 5000, None)  # match in place
            change()
            ctx = GLib.MainContext.default()
            deadline = time.monotonic() + 30
            while not got and time.monotonic() < deadline:
                if not ctx.iteration(False):
                    time.sleep(0.01)
            time.sleep(0.3)  # polkitd may say it twice (a file written is created, then changed)
            while ctx.iteration(False):
                pass
        finally:
            self.conn.signal_unsubscribe(sid)
        self.assertTrue(got, 'polkitd did not announce the change of its rules')

    @staticmethod
    def domain_call(name, method, sig=None, args=()):
        return (harness.domain_path(name), harness.DOMAIN_IFACE, method, sig, list(args))

    @staticmethod
    def manager_call(method, sig=None, args=()):
        return (harness.ROOT_PATH, harness.MANAGER_IFACE, method, sig, list(args))

    def set_prop(self, name, prop, value):
        return self.domain_call(name, 'SetProperty', 'ss', (prop, value))

    def assertAllowed(self, res, what=''):
        self.assertIsNone(res['error'], '%s refused: %s: %s\n%s' % (
            what, res.get('error'), res.get('message'), self.d.log_tail()))

    def assertRefused(self, res, name=NOT_AUTHORIZED, what=''):
        self.assertEqual(res['error'], name, '%s: expected %s, got %r' % (what, name, res))

    # --- tests ------------------------------------------------------------------------------

    def actions_in(self, locale):
        """{action id: (description, message)} of qubesd's actions as polkitd hands them to a
        client in that locale (EnumerateActions, what pkaction shows; an authentication agent
        registers its session's locale the same way)."""
        from gi.repository import Gio, GLib
        conn = Gio.DBusConnection.new_for_address_sync(
            self.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        try:
            reply = conn.call_sync('org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority',
                                   'org.freedesktop.PolicyKit1.Authority', 'EnumerateActions',
                                   GLib.Variant('(s)', (locale,)), None, Gio.DBusCallFlags.NONE,
                                   10000, None).unpack()[0]
        finally:
            conn.close_sync(None)
        return {a[0]: (a[1], a[2]) for a in reply if a[0].startswith('org.qubes_os.admin.')}

    def test_prompts_in_german(self):
        """In a German session every action's description and prompt message is German, the
        catalogue's text (po/de.po); otherwise English."""
        sys.path.insert(0, os.path.join(harness.SOURCE_DIR, 'po'))
        catalogue = __import__('check-catalogue').read_po(
            os.path.join(harness.SOURCE_DIR, 'po', 'de.po'))
        german = {msgid: strs[0] for (_, msgid, _), (_, strs) in catalogue.items()}
        english, deutsch = self.actions_in('C.UTF-8'), self.actions_in('de_DE.UTF-8')
        self.assertGreaterEqual(len(english), 10, english)
        self.assertEqual(set(english), set(deutsch))
        for action, texts in english.items():
            for en, de in zip(texts, deutsch[action]):
                self.assertTrue(en, action)
                self.assertIn(en, german, '%s: %r is not in po/de.po' % (action, en))
                self.assertEqual(de, german[en], action)
                self.assertNotEqual(de, en, action)

    def test_user_without_rights_changes_nothing(self):
        before = self.d.xml_bytes()
        calls = [
            self.set_prop('work', 'qrexec_timeout', '77'),
            self.domain_call('work', 'ResetProperty', 's', ('label',)),
            self.domain_call('work', 'SetFeature', 'ss', ('x', 'y')),
            self.domain_call('work', 'AddTag', 's', ('bobs',)),
            self.domain_call('work', 'RemoveTag', 's', ('audiovm-dom0',)),
            self.manager_call('CreateDomain', 'ssssa{ss}', ('AppVM', 'bobvm', 'red', '', {})),
            self.domain_call('personal', 'Remove'),
            self.manager_call('SetProperty', 'ss', ('default_netvm', '')),
            # reading needs a rule too (org.qubes_os.admin.read defaults to no)
            self.domain_call('work', 'GetProperty', 's', ('label',)),
            self.manager_call('ListDomains'),
        ]
        for call, res in zip(calls, self.as_user('bob', calls)):
            self.assertRefused(res, what='bob: ' + call[2])
        self.assertEqual(self.d.xml_bytes(), before)
        self.assertEqual(self.d.get_property('work', 'qrexec_timeout')[1], True)
        self.assertNotIn('bobvm', str(self.d.manager('ListDomains')))

    def test_challenge_is_can_obtain(self):
        # a rule that asks bob to authenticate: without an agent the call says so
        res = self.one('bob', self.domain_call('work', 'Pause'))
        self.assertRefused(res, CAN_OBTAIN, 'bob: Pause')

    def test_interactive_without_agent(self):
        # bob allows a prompt but has no authentication agent: polkit answers at once, and the
        # held call with it
        start = time.monotonic()
        res = self.one('bob', self.domain_call('work', 'Pause') + ('interactive',))
        self.assertIn(res['error'], (NOT_AUTHORIZED, CAN_OBTAIN), res)
        if not harness.UNDER_WRAPPER:
            self.assertLess(time.monotonic() - start, 20)

    def test_group_qubes_may_do_everything(self):
        res = self.as_user('carol', [
            self.set_prop('work', 'qrexec_timeout', '71'),
            self.domain_call('work', 'AddTag', 's', ('carols',)),
            self.manager_call('ListDomains'),
        ])
        for r in res:
            self.assertAllowed(r, 'carol')
        self.assertEqual(self.d.get_property('work', 'qrexec_timeout'), ('int', False, '71'))

    def test_managed_by_tag(self):
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        res = self.as_user('alice', [
            self.set_prop('work', 'qrexec_timeout', '72'),
            self.set_prop('personal', 'qrexec_timeout', '73'),
            self.manager_call('ListDomains'),
            self.manager_call('CreateDomain', 'ssssa{ss}', ('AppVM', 'alicevm', 'red', '', {})),
            self.domain_call('personal', 'SetFeature', 'ss', ('x', 'y')),
        ])
        self.assertAllowed(res[0], 'alice on work')
        self.assertRefused(res[1], UNKNOWN_OBJECT, 'alice on personal')
        self.assertAllowed(res[2], 'alice: ListDomains')
        self.assertRefused(res[3], what='alice: CreateDomain')
        self.assertRefused(res[4], UNKNOWN_OBJECT, 'alice: SetFeature on personal')
        self.assertEqual(self.d.get_property('work', 'qrexec_timeout'), ('int', False, '72'))
        self.assertEqual(self.d.get_property('personal', 'qrexec_timeout')[1], True)

        # the verdict is for those tags: without the tag, the next call is refused
        self.d.domain('work', 'RemoveTag', 's', ('managed-by-alice',))
        self.assertRefused(self.one('alice', self.set_prop('work', 'qrexec_timeout', '74')),
                           UNKNOWN_OBJECT, 'alice on work without the tag')
        self.assertEqual(self.d.get_property('work', 'qrexec_timeout'), ('int', False, '72'))

    def test_alice_sees_only_her_qubes(self):
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        personal = harness.domain_path('personal')
        res = self.as_user('alice', [
            self.manager_call('ListDomains'),
            (harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects', None, []),
            self.domain_call('personal', 'GetProperty', 's', ('label',)),
            (personal, harness.PROPS_IFACE, 'GetAll', 's', [harness.DOMAIN_IFACE]),
            (personal, 'org.freedesktop.DBus.Introspectable', 'Introspect', None, []),
            self.manager_call('GetDomain', 's', ('personal',)),
            self.manager_call('SubscribeEvents', 's', ('personal',)),
            self.manager_call('GetSystemInfo'),
            (harness.ROOT_PATH + '/domain', 'org.freedesktop.DBus.Introspectable', 'Introspect', None, []),
            self.manager_call('GetAllDomainProperties'),
            self.domain_call('work', 'GetProperty', 's', ('label',)),
            self.manager_call('StartQubes', 'as', (['personal'],)),
            self.manager_call('CreateDisposable', 's', ('personal',)),
            (harness.domain_path('work'), 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects', None, []),
            (personal, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects', None, []),
            self.manager_call('GetDomainProperties', 'as', (['label', 'netvm'],)),
        ])
        for r in (res[0], res[1], res[8], res[9], res[10], res[15]):
            self.assertAllowed(r, 'alice')
        self.assertEqual([row[0] for row in res[0]['value'][0]], ['work'])
        qube_paths = [p for p in res[1]['value'][0] if p.startswith(harness.ROOT_PATH + '/domain/')]
        self.assertEqual(qube_paths, [harness.domain_path('work')])
        # the volumes of a qube are in its own snapshot, for those who see it
        self.assertAllowed(res[13], 'alice')
        volumes = list(res[13]['value'][0])
        self.assertIn(harness.domain_path('work') + '/volume/private', volumes)
        for p in volumes:
            self.assertTrue(p.startswith(harness.domain_path('work') + '/volume/'), p)
        self.assertRefused(res[14], UNKNOWN_OBJECT, 'alice: GetManagedObjects of personal')
        self.assertTrue(any('/label/' in p for p in res[1]['value'][0]), 'labels are for everyone who reads')
        for r, what in ((res[2], 'GetProperty'), (res[3], 'GetAll'), (res[4], 'Introspect')):
            self.assertRefused(r, UNKNOWN_OBJECT, 'alice: %s on personal' % what)
        self.assertRefused(res[5], VM_NOT_FOUND, 'alice: GetDomain personal')
        self.assertRefused(res[6], VM_NOT_FOUND, 'alice: SubscribeEvents personal')
        self.assertRefused(res[7], NOT_AUTHORIZED, 'alice: GetSystemInfo')
        self.assertRefused(res[11], VM_NOT_FOUND, 'alice: StartQubes personal')
        self.assertRefused(res[12], VM_NOT_FOUND, 'alice: CreateDisposable from personal')
        self.assertIn('<node name="%s"/>' % harness.bus_path_escape('work'), res[8]['value'][0])
        self.assertNotIn('"%s"' % harness.bus_path_escape('personal'), res[8]['value'][0])
        self.assertEqual(list(res[9]['value'][0]), ['work'])
        self.assertEqual(list(res[15]['value'][0]), ['work'])

        # carol (group qubes) sees everything; bob, who may not read, sees nothing
        names = [row[0] for row in self.one('carol', self.manager_call('ListDomains'))['value'][0]]
        self.assertEqual(names, [row[0] for row in self.d.manager('ListDomains')[0]])
        bob = self.one('bob', (harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects',
                               None, []))
        self.assertFalse([p for p in bob['value'][0] if '/domain/' in p], bob)

        # volumes: hers only, by qube and by pool
        pool = harness.ROOT_PATH + '/pool/varlibqubes'
        res = self.as_user('alice', [self.manager_call('ListVolumes', 's', ('work',)),
                                     self.manager_call('ListVolumes', 's', ('personal',)),
                                     self.manager_call('GetVolume', 'ss', ('personal', 'private')),
                                     (pool, 'org.qubes_os.Admin1.Pool', 'ListVolumes', None, [])])
        self.assertAllowed(res[0], 'alice: ListVolumes work')
        self.assertIn('private', [v[0] for v in res[0]['value'][0]])
        self.assertRefused(res[1], VM_NOT_FOUND, 'alice: ListVolumes personal')
        self.assertRefused(res[2], VM_NOT_FOUND, 'alice: GetVolume personal')
        self.assertAllowed(res[3], 'alice: Pool.ListVolumes')
        all_vids = self.d.call(pool, 'org.qubes_os.Admin1.Pool', 'ListVolumes')[0]
        self.assertTrue([v for v in all_vids if 'personal' in v], all_vids)
        self.assertTrue(res[3]['value'][0], 'alice sees the volumes of work')
        self.assertTrue(set(res[3]['value'][0]) <= set(all_vids))
        self.assertEqual([v for v in res[3]['value'][0] if '/work/' not in v], [])

        # jobs: alice sees hers (about her qubes), not one about a qube she does not see
        other_job = self.d.manager('StartQubes', 'as', (['personal'],))[0]
        res = self.as_user('alice', [self.manager_call('StartQubes', 'as', (['work'],))])
        self.assertAllowed(res[0], 'alice: StartQubes work')
        job_props = (harness.PROPS_IFACE, 'Get', 'ss', ['org.qubes_os.Admin1.Job', 'Qubes'])
        res = self.as_user('alice', [(res[0]['value'][0],) + job_props, (other_job,) + job_props])
        self.assertAllowed(res[0], 'alice: her job')
        self.assertEqual(res[0]['value'][0], ['work'])
        self.assertRefused(res[1], UNKNOWN_OBJECT, 'alice: the job about personal')

        # when the tag goes, so does the qube (a new question to polkit, not the kept answer)
        self.d.domain('work', 'RemoveTag', 's', ('managed-by-alice',))
        self.assertEqual(self.one('alice', self.manager_call('ListDomains'))['value'][0], [])

    def test_alice_gets_only_the_events_she_may_see(self):
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        alice = self.subscriber('alice', '43')
        carol = self.subscriber('carol', '43')
        self.d.manager('SetProperty', 'ss', ('stats_interval', '1'))  # about no qube: for all readers
        stats = harness.SignalCollector(self.d.conn, interface=harness.DOMAIN_IFACE, member='Stats')
        self.addCleanup(stats.close)
        self.d.domain('work', 'Start')  # alice's: its Stats reach her as copies
        self.assertTrue(stats.wait_for(lambda s: any(x[0] == harness.domain_path('work') for x in s), timeout=10),
                        'no Stats for work within 10 s')
        self.d.set_property('work', 'qrexec_timeout', '41')
        self.d.set_property('personal', 'qrexec_timeout', '42')
        # personal becomes alice's: its events reach her from then on, in order; work stops being
        # hers: she hears of that, and of nothing after
        self.d.domain('personal', 'AddTag', 's', ('managed-by-alice',))
        self.d.domain('work', 'RemoveTag', 's', ('managed-by-alice',))
        self.d.set_property('work', 'qrexec_timeout', '44')
        self.d.set_property('personal', 'qrexec_timeout', '43')
        got_alice, got_carol = alice.collect(), carol.collect()

        # alice: only copies addressed to her, nothing about personal before it was hers
        self.assertTrue(got_alice)
        self.assertEqual({(g['interface'], g['member']) for g in got_alice},
                         {('org.qubes_os.Admin1.Subscription', 'Event'),
                          ('org.qubes_os.Admin1.Subscription', 'Stats')})
        events = [g for g in got_alice if g['member'] == 'Event']
        seen = [(g['subject'], g['kwargs'].get('newvalue')) for g in events
                if g['event'] == 'property-set:qrexec_timeout']
        self.assertEqual(seen, [('work', '41'), ('personal', '43')])
        self.assertIn(('', 'property-set:stats_interval'), [(g['subject'], g['event']) for g in events])
        self.assertIn(('work', 'domain-tag-delete:managed-by-alice'), [(g['subject'], g['event']) for g in events])
        self.assertFalse([g for g in events if g['subject'] not in ('', 'work', 'personal')], events)
        seqs = [g['seq'] for g in events]
        self.assertEqual(seqs, sorted(seqs))
        self.assertIn(harness.domain_path('work'), [g['path'] for g in got_alice if g['member'] == 'Stats'])

        # carol: the broadcasts, everything; no copies of Stats (she gets the broadcasts)
        values = [(g['subject'], g['kwargs'].get('newvalue')) for g in got_carol
                  if g['member'] == 'Event' and g['interface'] == harness.DOMAIN_IFACE
                  and g['event'] == 'property-set:qrexec_timeout']
        self.assertEqual(values, [('work', '41'), ('personal', '42'), ('work', '44'), ('personal', '43')])
        self.assertIn(harness.domain_path('personal'),
                      [g['path'] for g in got_carol if g['member'] == 'PropertiesChanged'])
        self.assertIn((harness.DOMAIN_IFACE, 'Stats'), [(g['interface'], g['member']) for g in got_carol])
        self.assertNotIn(('org.qubes_os.Admin1.Subscription', 'Stats'),
                         [(g['interface'], g['member']) for g in got_carol])

    def test_root_is_always_allowed(self):
        self.d.set_property('personal', 'qrexec_timeout', '75')
        self.assertEqual(self.d.get_property('personal', 'qrexec_timeout'), ('int', False, '75'))
        self.assertAllowed(self.one('root', self.set_prop('work', 'qrexec_timeout', '76')), 'root')

    def test_many_waiting_calls_all_answered(self):
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        calls = []
        for i in range(40):
            calls.append(self.set_prop('work', 'qrexec_timeout', str(100 + i)))
            calls.append(self.set_prop('personal', 'qrexec_timeout', str(100 + i)))
        res = self.as_user('alice', calls, parallel=True)
        for i, r in enumerate(res):
            if i % 2:
                self.assertIn(r['error'], (UNKNOWN_OBJECT, NOT_AUTHORIZED), 'alice on personal (parallel)')
            elif r['error'] is not None:
                # a caller may have at most 64 calls waiting for polkit: the rest are refused
                self.assertRefused(r, what='alice on work (parallel)')
                self.assertIn('too many', r['message'])
        self.assertIsNone(res[0]['error'], res[0])
        self.assertIsNone(res[60]['error'], res[60])
        self.assertEqual(self.d.get_property('personal', 'qrexec_timeout')[1], True)

    def test_caller_leaves_while_waiting(self):
        # the held calls and the queries go with the caller; the daemon carries on (and, under
        # ASan, frees everything at exit)
        calls = [self.set_prop('work', 'qrexec_timeout', str(200 + i)) for i in range(20)]
        for _ in range(5):
            self.as_user('carol', calls, leave=True)
        self.d.set_property('work', 'qrexec_timeout', '99')
        self.assertEqual(self.d.get_property('work', 'qrexec_timeout'), ('int', False, '99'))
        self.assertAllowed(self.one('carol', self.set_prop('work', 'qrexec_timeout', '98')), 'carol')

    def test_trusted_uid(self):
        """--trusted-uid: that user may act for a qube (as the shim does) and needs no polkit;
        anyone else may not declare an identity."""
        refused = self.one('bob', self.manager_call('SetCallerIdentity', 's', ('work',)))
        self.assertRefused(refused, what='SetCallerIdentity by an untrusted user')
        self.d.stop()
        bob = pwd.getpwnam('bob').pw_uid
        self.d = harness.SystemBusDaemon(self.address, harness.DEMO_XML, extra_args=['--trusted-uid=%d' % bob])
        self.addCleanup(self.d.cleanup)
        self.d.start()
        res = self.as_user('bob', [self.manager_call('SetCallerIdentity', 's', ('work',)),
                                   self.set_prop('personal', 'qrexec_timeout', '61')])
        self.assertAllowed(res[0], 'SetCallerIdentity by a trusted user')
        self.assertAllowed(res[1], 'SetProperty by a trusted user')
        self.assertEqual(self.d.get_property('personal', 'qrexec_timeout')[2], '61')

    def test_properties_set_cannot_wait(self):
        iface = harness.QUBESVM_IFACE
        # Properties.Set cannot hold the call for polkit: without a verdict at hand it points to
        # SetProperty; after a SetProperty for the same qube the verdict is cached and it works.
        client_set = (harness.domain_path('work'), harness.PROPS_IFACE, 'Set', 'ssv',
                      [iface, 'QrexecTimeout', ['x', 90]])
        res = self.as_user('carol', [client_set, self.set_prop('work', 'qrexec_timeout', '81'), client_set])
        self.assertRefused(res[0], CAN_OBTAIN, 'carol: Properties.Set first')
        self.assertAllowed(res[1], 'carol: SetProperty')
        self.assertAllowed(res[2], 'carol: Properties.Set after SetProperty')


    # --- asked ahead, kept per user and session (issue 18) -----------------------------------

    def many_qubes(self, n, every, tag):
        """n more qubes, one in every tagged with tag; returns the names of those tagged."""
        tagged = []
        for i in range(n):
            name = 'x%03d' % i
            self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', name, 'red', '', {}))
            if i % every == 0:
                self.d.domain(name, 'AddTag', 's', (tag,))
                tagged.append(name)
        return tagged

    def test_first_listing_is_exact_while_asked_ahead(self):
        """alice's first listing comes while qubesd is still asking polkit ahead for her: it waits
        for what it needs and lists exactly her qubes, no fewer, no more; so do the next ones."""
        tagged = self.many_qubes(150, 5, 'managed-by-alice')
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        mine = sorted(tagged + ['work'])
        self.present('alice')  # her session's process: the asking starts now
        self.assertEqual(self.names('alice'), mine)
        self.assertEqual(self.names('alice'), mine)
        # a qube of hers created now is a new question, asked before the next listing
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'later', 'red', '', {}))
        self.d.domain('later', 'AddTag', 's', ('managed-by-alice',))
        self.assertEqual(self.names('alice'), sorted(mine + ['later']))
        # carol (read-all) sees everything, bob (no read) nothing
        self.assertEqual(len(self.names('carol')), len(self.d.manager('ListDomains')[0]))
        self.assertRefused(self.one('bob', self.manager_call('ListDomains')), what='bob: ListDomains')

    def test_answers_of_one_user_never_serve_another(self):
        """Answers asked ahead for alice (processes of hers on the bus) are not applied to dave,
        and his not to her, whoever asked first; each lists exactly their own qubes."""
        alices = self.many_qubes(30, 3, 'managed-by-alice')
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        self.d.domain('personal', 'AddTag', 's', ('managed-by-dave',))
        self.present('alice')
        self.present('dave')
        time.sleep(1)  # the asking ahead for both has had time to finish (or most of it)
        for _ in range(2):
            self.assertEqual(self.names('dave'), ['personal'])
            self.assertEqual(self.names('alice'), sorted(alices + ['work']))
        # a user whose answers are not kept at all (bob, no rights) is refused, not served theirs
        self.assertRefused(self.one('bob', self.manager_call('ListDomains')), what='bob: ListDomains')
        self.assertRefused(self.one('bob', self.domain_call('work', 'GetProperty', 's', ('label',))),
                           what='bob: GetProperty on alice\'s work')

    def test_restart_under_present_users(self):
        """qubesd started while alice and dave are already on the bus (it asks ahead for the peers
        it finds): each lists exactly their qubes."""
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        self.d.domain('personal', 'AddTag', 's', ('managed-by-dave',))
        self.present('alice')
        self.present('dave')
        status = self.d.stop()
        self.assertEqual(status, 0, self.d.log_tail())
        self.d = harness.SystemBusDaemon(self.address, harness.DEMO_XML)
        self.addCleanup(self.d.cleanup)
        self.d.start()
        for tag, name in (('managed-by-alice', 'work'), ('managed-by-dave', 'personal')):
            self.d.domain(name, 'AddTag', 's', (tag,))
        self.assertEqual(self.names('dave'), ['personal'])
        self.assertEqual(self.names('alice'), ['work'])

    def test_rules_change_takes_effect(self):
        """A change of polkit's rules (polkitd announces it with Changed) counts from the next call:
        the answers qubesd kept for alice (asked ahead, 30 s) are not used any more."""
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        self.present('alice')
        self.assertEqual(self.names('alice'), ['work'])
        self.assertRefused(self.one('alice', self.set_prop('personal', 'qrexec_timeout', '66')),
                           UNKNOWN_OBJECT, 'alice on personal before the rule')

        def add():
            with open(EXTRA_RULES_FILE, 'w', encoding='utf-8') as f:
                f.write(EXTRA_RULES)
            os.chmod(EXTRA_RULES_FILE, 0o644)
        self.addCleanup(lambda: os.path.exists(EXTRA_RULES_FILE) and os.unlink(EXTRA_RULES_FILE))
        self.polkit_changes(add)
        self.assertEqual(self.names('alice'), ['personal', 'work'])
        self.assertEqual(self.one('alice', self.domain_call('personal', 'GetProperty', 's', ('label',)))['error'],
                         None)

        self.polkit_changes(lambda: os.unlink(EXTRA_RULES_FILE))
        self.assertEqual(self.names('alice'), ['work'])
        self.assertRefused(self.one('alice', self.domain_call('personal', 'GetProperty', 's', ('label',))),
                           UNKNOWN_OBJECT, 'alice on personal after the rule went')

    def test_polkitd_restart_counts_as_a_change(self):
        """polkitd restarted with other rules (it says no Changed then): the answers kept for alice
        are not used any more."""
        self.d.domain('work', 'AddTag', 's', ('managed-by-alice',))
        self.present('alice')
        self.assertEqual(self.names('alice'), ['work'])
        polkitd = [p for p in self.procs if p.args[0] == POLKITD][-1]
        harness.stop_process(polkitd)
        self.procs.remove(polkitd)
        with open(EXTRA_RULES_FILE, 'w', encoding='utf-8') as f:
            f.write(EXTRA_RULES)
        os.chmod(EXTRA_RULES_FILE, 0o644)
        self.addCleanup(lambda: os.path.exists(EXTRA_RULES_FILE) and os.unlink(EXTRA_RULES_FILE))
        type(self).start_polkitd()
        self.assertEqual(self.names('alice'), ['personal', 'work'])


if __name__ == '__main__':
    harness.main()
