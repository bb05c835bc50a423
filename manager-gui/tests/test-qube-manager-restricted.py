#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GUI test: the Qube Manager stays live for a user who gets none of qubesd's broadcasts.

On a private bus of type "system" whose policy includes data/org.qubes_os.Admin1.conf, only root
and the group "qubes" receive qubesd's broadcast signals. qubesd runs as root and trusts an
unprivileged user (--trusted-uid, so no polkit is needed and the user sees every qube); the
manager runs as that user under Xvfb, and is read through AT-SPI as that user. Changes made by
root (a property, a start, a new qube, a removal) must show in the window within a second: only
the Event copies that qubesd addresses to the manager after Manager.SubscribeEvents say that
they happened. The test also checks that the user really receives no broadcast.

The outer part runs as root (qubesd, the bus, the changes); the inner part runs as the user
under dbus-run-session and xvfb-run (the manager and the AT-SPI reader: the accessibility bus
belongs to the user) and asks the outer part for each change over its stdin/stdout. Exit 77 =
skipped (not root, or a tool missing).
"""
import argparse
import os
import pwd
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

warnings.simplefilter('ignore', DeprecationWarning)

SKIP = 77
USER = 'qm-test-viewer'
HERE = os.path.dirname(os.path.abspath(__file__))
QUBES_CONF = os.path.join(HERE, '..', '..', 'data', 'org.qubes_os.Admin1.conf')
ROOT = '/org/qubes_os/Admin1'
MANAGER = 'org.qubes_os.Admin1.Manager'
DOMAIN = 'org.qubes_os.Admin1.Domain'
# What the outer part writes before every line meant for the inner part, and the other way.
TAG = 'QMT '

# A bus of type system: the default policy of /usr/share/dbus-1/system.conf and qubesd's (which
# denies the broadcasts to anyone but root and the group "qubes"); the same as test_polkit's.
SYSTEM_BUS_CONF = os.path.join(HERE, '..', '..', 'tests', 'data', 'system-bus.conf.in')


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--qube-manager', required=True)
    p.add_argument('--qubesd', required=True)
    p.add_argument('--qubes-xml', required=True)
    p.add_argument('--out-dir', required=True)
    p.add_argument('--inner', metavar='BUS_ADDRESS', help=argparse.SUPPRESS)
    return p.parse_args()


def skip(why):
    print(f'SKIP: {why}')
    sys.exit(SKIP)


try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi, Gio, GLib
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import Bus, find, find_app, stop_processes  # noqa: E402 (after gi.require_version)
except (ImportError, ValueError) as e:
    skip(f'python3-gi with gir1.2-atspi-2.0 is needed ({e})')


# ---- outer part: root ---------------------------------------------------------------------

def ensure_user():
    """The unprivileged user, made if missing (as tests/integration/test_polkit.py does)."""
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(['useradd', '--no-create-home', '--user-group', '--shell',
                        '/usr/sbin/nologin', USER], check=True)
        entry = pwd.getpwnam(USER)
    groups = subprocess.run(['id', '-Gn', USER], capture_output=True, text=True,
                            check=True).stdout.split()
    if 'qubes' in groups:
        raise AssertionError(f'{USER} is in the group qubes: it would get the broadcasts')
    return entry


def outer(args):
    if os.geteuid() != 0:
        skip('needs root (a system bus policy, qubesd as root, the manager as another user)')
    for tool in ('xvfb-run', 'dbus-run-session', 'dbus-daemon', 'setpriv', 'useradd'):
        if shutil.which(tool) is None:
            skip(f'{tool} is not installed')
    entry = ensure_user()
    tmp = tempfile.mkdtemp(prefix='qm-restricted-')
    os.chmod(tmp, 0o755)
    procs = []
    try:
        run_outer(args, tmp, entry, procs)
    finally:
        stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    print('PASS')


def run_outer(args, tmp, entry, procs):
    state = f'{tmp}/state'
    os.makedirs(state)
    with open(args.qubes_xml) as f:
        xml = f.read().replace('/var/lib/qubes', state)
    with open(f'{state}/qubes.xml', 'w') as f:
        f.write(xml)
    for sub in ('appvms', 'vm-templates', 'vm-kernels', 'standalone'):
        os.makedirs(f'{state}/{sub}', exist_ok=True)
    # The user's own corner: home, runtime dir, settings.
    home = f'{tmp}/home'
    os.makedirs(home, mode=0o700)
    os.chown(home, entry.pw_uid, entry.pw_gid)

    address = f'unix:path={tmp}/bus'
    conf = f'{tmp}/system.conf'
    with open(conf, 'w') as f:
        with open(SYSTEM_BUS_CONF, encoding='utf-8') as t:
            f.write(t.read().format(address=address, qubes_conf=os.path.abspath(QUBES_CONF)))
    bus_proc = subprocess.Popen(['dbus-daemon', f'--config-file={conf}', '--nofork', '--nopidfile',
                                 '--print-address=1'], stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    procs.append(bus_proc)
    if not bus_proc.stdout.readline():
        raise AssertionError('the system dbus-daemon did not start')
    bus = Bus(address)
    qubesd = subprocess.Popen([args.qubesd, f'--bus-address={address}', f'--state-dir={state}',
                               '--libvirt-uri=test:///default', '--private-socket=',
                               f'--trusted-uid={entry.pw_uid}'],
                              stderr=open(f'{tmp}/qubesd.log', 'a'))
    procs.append(qubesd)
    deadline = time.monotonic() + 10
    while not bus.has_owner():
        assert qubesd.poll() is None, 'qubesd exited: ' + open(f'{tmp}/qubesd.log').read()[-2000:]
        assert time.monotonic() < deadline, 'qubesd did not appear'
        time.sleep(0.05)

    env = dict(os.environ, HOME=home, XDG_RUNTIME_DIR=home, XDG_CONFIG_HOME=f'{home}/config',
               GSETTINGS_BACKEND='memory', LANGUAGE='C', LC_ALL='C.UTF-8', USER=USER,
               LOGNAME=USER)
    for var in ('NO_AT_BRIDGE', 'DBUS_SESSION_BUS_ADDRESS', 'DISPLAY', 'XAUTHORITY'):
        env.pop(var, None)
    inner = subprocess.Popen(
        ['setpriv', f'--reuid={entry.pw_uid}', f'--regid={entry.pw_gid}', '--init-groups',
         'dbus-run-session', '--', 'xvfb-run', '-a', '-s', '-screen 0 1280x800x24',
         sys.executable, os.path.abspath(__file__), '--inner', address,
         '--qube-manager', args.qube_manager, '--qubesd', args.qubesd,
         '--qubes-xml', args.qubes_xml, '--out-dir', home],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=home)
    procs.append(inner)

    actions = {
        'netvm': lambda: bus.call(f'{ROOT}/domain/work', DOMAIN, 'SetProperty', '(ss)',
                                  ('netvm', '')),
        'start': lambda: bus.call(f'{ROOT}/domain/work', DOMAIN, 'Start'),
        'create': lambda: bus.call(ROOT, MANAGER, 'CreateDomain', '(ssssa{ss})',
                                   ('AppVM', 'made-by-root', 'orange', '', {})),
        'remove': lambda: bus.call(f'{ROOT}/domain/made_2dby_2droot', DOMAIN, 'Remove'),
        'firewall': lambda: bus.call(f'{ROOT}/domain/work', 'org.qubes_os.Admin1.Firewall',
                                     'SetRules', '(aa{ss})',
                                     ([{'action': 'drop', 'dsthost': '192.0.2.9',
                                        'comment': 'from root'}, {'action': 'accept'}],)),
    }
    result = None
    for line in inner.stdout:
        line = line.rstrip('\n')
        if not line.startswith(TAG):
            print(line)   # the inner part's own report, and whatever its children print
            continue
        words = line[len(TAG):].split()
        if words[0] == 'do':
            actions[words[1]]()
            inner.stdin.write(f'{TAG}done {words[1]}\n')
            inner.stdin.flush()
        elif words[0] in ('pass', 'fail', 'skip'):
            result = words[0]
    inner.wait(30)
    if result == 'skip':
        sys.exit(SKIP)
    if result != 'pass':
        raise AssertionError(f'the part run as {USER} did not pass (exit {inner.returncode})')


# ---- inner part: the user, under dbus-run-session and xvfb-run ----------------------------

def table_rows(table):
    """{qube name: {column title: cell text}} as the tree shows it."""
    cols = [table.get_column_header(c).get_name() for c in range(table.get_n_columns())]
    rows = {}
    for r in range(table.get_n_rows()):
        cells = {title: table.get_accessible_at(r, c) for c, title in enumerate(cols)}
        name = cells.get('Name')
        if name is not None:
            rows[name.get_name()] = {t: cell_text(a) for t, a in cells.items()}
    return rows


def cell_text(acc):
    """A cell's text; a cell of several renderers (icon and text) is the text of its parts."""
    if acc is None:
        return None
    parts = [acc.get_name()] + [acc.get_child_at_index(i).get_name()
                                for i in range(acc.get_child_count())]
    return ' '.join(p for p in parts if p)


class Outer:
    """Asks the outer part (root) to change something, over stdin/stdout."""

    def __init__(self):
        self.replies = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in sys.stdin:
            if line.startswith(TAG):
                self.replies.put(line[len(TAG):].split())

    def do(self, action):
        print(f'{TAG}do {action}', flush=True)
        reply = self.replies.get(timeout=20)
        assert reply == ['done', action], reply


class BroadcastWatch:
    """This user's own connection, with a match rule for all that qubesd broadcasts: the bus
    policy must let none of it through (else the test would not test the Subscription path)."""

    def __init__(self, address):
        self.conn = Gio.DBusConnection.new_for_address_sync(
            address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.received = []
        self.conn.signal_subscribe('org.qubes_os.Admin1', None, None, None, None,
                                   Gio.DBusSignalFlags.NONE, self._on_signal)

    def _on_signal(self, conn, sender, path, iface, member, params):
        self.received.append((path, iface, member))

    def pump(self):
        ctx = GLib.MainContext.default()
        while ctx.iteration(False):
            pass


def wait_row(table, name, predicate, timeout, what):
    """Polls the tree through AT-SPI until predicate(row or None) holds; returns the time."""
    deadline = time.monotonic() + timeout
    rows = {}
    while True:
        try:
            rows = table_rows(table)
        except GLib.Error:
            pass   # a row went away while it was read: read again
        else:
            if predicate(rows.get(name)):
                return time.monotonic()
        if time.monotonic() >= deadline:
            raise AssertionError(f'{what}: not shown within {timeout} s '
                                 f'(the window shows {rows.get(name)})')
        time.sleep(0.02)


def inner(args):
    address = args.inner
    outer_part = Outer()
    watch = BroadcastWatch(address)
    env = dict(os.environ)
    manager = subprocess.Popen([args.qube_manager, f'--bus-address={address}'], env=env)
    try:
        app = find_app('qube-manager')
        table = find(app, role='tree table', name='Qubes')
        expected = {'dom0', 'default-dvm', 'disp1234', 'fedora-42', 'sys-net', 'work'}
        deadline = time.monotonic() + 20
        while True:
            try:
                rows = table_rows(table)
            except GLib.Error:
                rows = {}
            if set(rows) == expected:
                break
            assert time.monotonic() < deadline, f'the list: {sorted(rows)}'
            time.sleep(0.1)
        assert rows['work']['NetVM'] == 'default (sys-net)', rows['work']
        print(f'as {pwd.getpwuid(os.getuid()).pw_name}: AT-SPI sees', sorted(expected))

        # a property changed by root
        before = time.monotonic()
        outer_part.do('netvm')
        seen = wait_row(table, 'work', lambda r: r and r['NetVM'] == 'none', 1.0,
                        'the netvm of work set to none')
        print(f'property change shown after {(seen - before) * 1000:.0f} ms')

        # a qube started by root
        before = time.monotonic()
        outer_part.do('start')
        seen = wait_row(table, 'work', lambda r: r and r['State'].startswith('Running'), 1.0,
                        'work Running')
        print(f'start shown after {(seen - before) * 1000:.0f} ms')

        # a qube made by root appears, and goes when root removes it
        before = time.monotonic()
        outer_part.do('create')
        seen = wait_row(table, 'made-by-root', lambda r: r is not None, 1.0,
                        'the qube made by root')
        print(f'new qube shown after {(seen - before) * 1000:.0f} ms')
        before = time.monotonic()
        outer_part.do('remove')
        seen = wait_row(table, 'made-by-root', lambda r: r is None, 1.0,
                        'the removal of made-by-root')
        print(f'removal shown after {(seen - before) * 1000:.0f} ms')

        # the rules of work changed by root, in work's open Firewall page (the firewall-changed
        # event copy is all this user learns)
        cols = [table.get_column_header(c).get_name() for c in range(table.get_n_columns())]
        r = [i for i in range(table.get_n_rows())
             if table.get_accessible_at(i, cols.index('Name')).get_name() == 'work'][0]
        table.clear_selection()
        table.add_row_selection(r)
        settings = find(app, role='push button', name='Settings')
        deadline = time.monotonic() + 5
        while not settings.get_state_set().contains(Atspi.StateType.SENSITIVE):
            assert time.monotonic() < deadline, 'Settings not sensitive'
            time.sleep(0.05)
        for i in range(settings.get_n_actions()):
            if settings.get_action_name(i) == 'click':
                settings.do_action(i)
        window = find(app, role='frame', name='work: Settings')
        tab = find(window, role='page tab', name='Firewall')
        tab.get_parent().select_child(tab.get_index_in_parent())
        rules = find(window, role='table', name='Firewall rules')

        def firewall_rows():
            try:
                return [rules.get_accessible_at(i, 1).get_name() for i in range(rules.get_n_rows())]
            except (AttributeError, GLib.Error):
                return None
        time.sleep(0.5)   # read
        assert firewall_rows() == [], firewall_rows()
        before = time.monotonic()
        outer_part.do('firewall')
        deadline = time.monotonic() + 2
        while firewall_rows() != ['192.0.2.9/32']:
            assert time.monotonic() < deadline, f'the rules set by root: {firewall_rows()}'
            time.sleep(0.02)
        print(f'firewall change shown after {(time.monotonic() - before) * 1000:.0f} ms')

        watch.pump()
        assert not watch.received, f'broadcasts reached {USER}: {watch.received[:5]}'
        assert manager.poll() is None, 'qube-manager exited'
    finally:
        if manager.poll() is None:
            manager.terminate()
            manager.wait(10)


def main():
    args = parse_args()
    if args.inner is None:
        outer(args)
        return
    try:
        inner(args)
    except AssertionError as e:
        print(f'FAIL: {e}', flush=True)
        print(f'{TAG}fail', flush=True)
        sys.exit(1)
    print(f'{TAG}pass', flush=True)


if __name__ == '__main__':
    try:
        main()
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
