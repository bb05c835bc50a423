#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Qube Manager with 300 qubes (the synthetic qubes.xml of bench/bench-dbus.py): what a user
changes elsewhere while the window is still loading the list ends up shown, and the list stays
sorted by name as qubes come and change.

Before the window starts, qube-00012's default_dispvm is set to none; while it loads (its
GetAllDomainProperties answer is read in slices), qube-00010's label and qube-00011's netvm (set
to none, reset to its default) change again and again;
once the list is complete (--self-test prints END loaded) every row shows the last value set,
within a second. Then two qubes are made over D-Bus, w-10 and w-9: the tree read through AT-SPI
lists the names in natural order (w-9 before w-10), and still does after a label change, and
after grouping by label (each label's header in label order, every qube under one) and back.
Last, the window having seen broadcasts asks qubesd for the property events alone: a qube started
and stopped shows Running then Halted, and a label set after shows, while a bus monitor sees no
Event copy but property ones reach the window (and the label's does). The template column, which
the snapshot does not carry, is in the first complete list, and follows two changes of a qube's
template. The IP and virt mode columns (the qube's QubesVM interface, whose PropertiesChanged the
window does not take) follow the qube's netvm, its template's virt_mode and the default netvm.
Runs itself again under its own buses and display (qm_display). Exit 77 = skipped.
"""
import argparse
import importlib.util
import os
import queue
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qm_display  # noqa: E402

SKIP = 77
QUBES = 300
ROOT = '/org/qubes_os/Admin1'
MANAGER = 'org.qubes_os.Admin1.Manager'
DOMAIN = 'org.qubes_os.Admin1.Domain'
LABELS = ('red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black')


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--qube-manager', required=True)
    p.add_argument('--qubesd', required=True)
    p.add_argument('--out-dir', required=True)
    return p.parse_args()


def synthetic_xml(n):
    spec = importlib.util.spec_from_file_location(
        'bench_dbus', os.path.join(HERE, '..', '..', 'bench', 'bench-dbus.py'))
    sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'integration'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_xml(n)


class Manager:
    """qube-manager --self-test: its ROW lines, read by a thread."""

    def __init__(self, binary, address, env):
        self.proc = subprocess.Popen([binary, f'--bus-address={address}', '--self-test'],
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.lines = queue.Queue()
        self.rows = {}
        self.first_rows = {}
        self.loaded = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip('\n'))

    def pump(self, timeout=0.0):
        """Reads what the manager printed, waiting up to timeout for a first line."""
        try:
            line = self.lines.get(timeout=timeout) if timeout > 0 else self.lines.get_nowait()
        except queue.Empty:
            return
        while True:
            if line.startswith('ROW\t'):
                fields = line.split('\t')
                self.rows[fields[1]] = dict(f.split('=', 1) for f in fields[2:])
            elif line.startswith('END\tloaded'):
                if not self.loaded:
                    self.first_rows = {name: dict(row) for name, row in self.rows.items()}
                self.loaded = True
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return

    def wait_row(self, name, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not (name in self.rows and predicate(self.rows[name])):
            assert time.monotonic() < deadline, f'timed out waiting for {what}: {self.rows.get(name)}'
            self.pump(0.1)


def name_column(table):
    for c in range(table.get_n_columns()):
        if table.get_column_header(c).get_name() == 'Name':
            return c
    raise AssertionError('no Name column')


def shown_names(table):
    c = name_column(table)
    return [table.get_accessible_at(r, c).get_name() for r in range(table.get_n_rows())]


def natural_key(name):
    import re
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


class EventCopies:
    """A bus monitor: the names of the Subscription.Event copies addressed to one connection."""

    def __init__(self, address, destination):
        from gi.repository import Gio, GLib
        self.destination = destination
        self.names = []
        self.conn = Gio.DBusConnection.new_for_address_sync(
            address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.conn.add_filter(self._filter)
        self.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                            'org.freedesktop.DBus.Monitoring', 'BecomeMonitor',
                            GLib.Variant('(asu)', ([f"type='signal',interface='{MANAGER[:-7]}"
                                                    f"Subscription',destination='{destination}'"],
                                                   0)), None, Gio.DBusCallFlags.NONE, 5000, None)

    def _filter(self, conn, msg, incoming):
        if not incoming or msg.get_destination() == conn.get_unique_name():
            return msg
        if msg.get_member() == 'Event' and msg.get_destination() == self.destination:
            self.names.append(msg.get_body().unpack()[2])
        return None


def window_name(bus, pid):
    """The unique name of the window's connection (its process id)."""
    for name in bus.call('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'ListNames',
                         dest='org.freedesktop.DBus')[0]:
        if name.startswith(':') and bus.call(
                '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'GetConnectionUnixProcessID',
                '(s)', (name,), dest='org.freedesktop.DBus')[0] == pid:
            return name
    raise AssertionError('the window has no connection to the bus')


def run(args, tmp, procs):
    from qm_atspi import Bus, find, find_app

    state = f'{tmp}/state'
    os.makedirs(f'{state}/vm-kernels/6.6.1-1.fc37')
    with open(f'{state}/qubes.xml', 'w') as f:
        f.write(synthetic_xml(QUBES).replace('/var/lib/qubes', state))
    address = f'unix:path={tmp}/bus'
    daemon = subprocess.Popen(['dbus-daemon', '--session', f'--address={address}', '--nofork',
                               '--nopidfile', '--print-address=1'],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(daemon)
    daemon.stdout.readline()
    procs.append(subprocess.Popen([args.qubesd, f'--bus-address={address}',
                                   f'--state-dir={state}', '--libvirt-uri=test:///default'],
                                  stderr=open(f'{tmp}/qubesd.log', 'w')))
    bus = Bus(address)
    deadline = time.monotonic() + 20
    while not bus.has_owner():
        assert time.monotonic() < deadline, 'qubesd did not appear'
        time.sleep(0.05)

    env = dict(os.environ, XDG_CONFIG_HOME=f'{tmp}/config', GSETTINGS_BACKEND='memory',
               LANGUAGE='C', LC_ALL='C.UTF-8')
    manager = Manager(args.qube_manager, address, env)
    procs.append(manager.proc)

    # 1. changes made while the window loads
    q10, q11, q12 = (f'{ROOT}/domain/qube_2d{n:05d}' for n in (10, 11, 12))
    bus.call(q12, DOMAIN, 'SetProperty', '(ss)', ('default_dispvm', ''))
    changes, last_label, last_netvm = 0, None, None
    deadline = time.monotonic() + 60
    while not manager.loaded:
        assert time.monotonic() < deadline, 'the list never completed'
        last_label = LABELS[changes % len(LABELS)]
        bus.call(q10, DOMAIN, 'SetProperty', '(ss)', ('label', last_label))
        # netvm, which D-Bus properties cannot say is at its default: the window reads it
        # from the start-up's GetAllDomainProperties, then from GetAllProperties of the qube
        if changes % 2:
            bus.call(q11, DOMAIN, 'ResetProperty', '(s)', ('netvm',))
            last_netvm = 'default (sys-net)'
        else:
            bus.call(q11, DOMAIN, 'SetProperty', '(ss)', ('netvm', ''))
            last_netvm = 'none'
        changes += 1
        manager.pump(0.01)
    print(f'{changes} label and netvm changes while the list loaded; the last: {last_label}, '
          f'{last_netvm}')
    manager.wait_row('qube-00010', lambda r: r['label'] == last_label, 1.0, 'the last label')
    manager.wait_row('qube-00011', lambda r: r['netvm'] == last_netvm, 1.0, 'the last netvm')
    manager.wait_row('qube-00012', lambda r: r['default_dispvm'] == 'none', 1.0,
                     'default_dispvm none')
    manager.wait_row('qube-00013', lambda r: r['netvm'] == 'default (sys-net)', 1.0,
                     'a netvm at its default')
    manager.pump()
    assert len(manager.rows) == QUBES, len(manager.rows)
    # the template column, which the snapshot does not carry (a qube's Domain interface alone):
    # the window takes it from the GetAllDomainProperties answer, and shows it in the first
    # complete list already
    wrong = [(n, r['template']) for n, r in manager.first_rows.items()
             if r['class'] == 'AppVM' and r['template'] != 'tpl']
    assert len(manager.first_rows) == QUBES and not wrong, (len(manager.first_rows), wrong[:5])
    # ... as the IP and virt mode columns (the window asks qubesd for the properties it shows,
    # GetDomainProperties, not for all)
    wrong = [(n, r['ip'], r['virt_mode']) for n, r in manager.first_rows.items()
             if r['class'] == 'AppVM' and ((not r['ip'] and r['netvm'] != 'none')
                                           or r['virt_mode'] != 'pvh')]
    assert not wrong, wrong[:5]
    print(f'the first complete list: {len(manager.first_rows)} rows, every AppVM with its template, '
          'IP and virt mode')

    # 2. sorted by name, numbers as numbers, as qubes come and change
    for name in ('w-10', 'w-9'):
        bus.call(ROOT, MANAGER, 'CreateDomain', '(ssssa{ss})', ('AppVM', name, 'red', '', {}))
    manager.wait_row('w-9', lambda r: True, 2.0, 'the new qube w-9')
    app = find_app('qube-manager')
    table = find(app, role='tree table', name='Qubes')
    deadline = time.monotonic() + 5
    while True:
        names = shown_names(table)
        if 'w-9' in names and 'w-10' in names:
            break
        assert time.monotonic() < deadline, 'w-9 and w-10 not in the tree'
        time.sleep(0.2)
    assert names == sorted(names, key=natural_key), names[:5] + names[-5:]
    assert names.index('w-9') < names.index('w-10'), names[-5:]
    bus.call(f'{ROOT}/domain/w_2d10', DOMAIN, 'SetProperty', '(ss)', ('label', 'blue'))
    manager.wait_row('w-10', lambda r: r['label'] == 'blue', 1.0, 'the label of w-10')
    names = shown_names(table)
    assert names == sorted(names, key=natural_key), names[-5:]
    print(f'{len(names)} rows in natural order by name')
    subprocess.run(['import', '-window', 'root', os.path.join(args.out_dir,
                                                              'qube-manager-scale.png')],
                   check=False)

    # 3. grouped by label (the rows made again, in a new view): every qube under its label,
    # then flat again and still in order
    group_combo = find(app, role='combo box', name='Group by')
    group_combo.select_child(3)   # Label
    deadline = time.monotonic() + 10
    while True:
        names = shown_names(table)
        headers = [n for n in names if n in LABELS]
        if len(headers) == len(LABELS):
            break
        assert time.monotonic() < deadline, f'no label groups: {names[:10]}'
        time.sleep(0.2)
    assert len(names) == len(LABELS) + QUBES + 2, len(names)
    assert headers == sorted(headers, key=LABELS.index), headers
    group_combo.select_child(0)   # No grouping
    deadline = time.monotonic() + 10
    while True:
        names = shown_names(table)
        if not any(n in LABELS for n in names):
            break
        assert time.monotonic() < deadline, 'still grouped'
        time.sleep(0.2)
    assert len(names) == QUBES + 2 and names == sorted(names, key=natural_key), names[:5]
    print('grouped by label and back, still in order')

    # 4. after broadcasts, only property events: the state still shows, and a label set after
    copies = EventCopies(address, window_name(bus, manager.proc.pid))
    q20 = 'qube-00020'
    bus.call(ROOT, MANAGER, 'StartQubes', '(as)', ([q20],))
    manager.wait_row(q20, lambda r: r['state'] == 'Running', 5.0, 'qube-00020 running')
    bus.call(ROOT, MANAGER, 'ShutdownQubes', '(asb)', ([q20], True))
    manager.wait_row(q20, lambda r: r['state'] == 'Halted', 5.0, 'qube-00020 halted')
    bus.call(f'{ROOT}/domain/qube_2d00020', DOMAIN, 'SetProperty', '(ss)', ('label', 'purple'))
    manager.wait_row(q20, lambda r: r['label'] == 'purple', 1.0, 'the label of qube-00020')
    deadline = time.monotonic() + 2
    while 'property-set:label' not in copies.names:
        assert time.monotonic() < deadline, f'no property-set:label copy seen: {copies.names}'
        time.sleep(0.05)
    others = [n for n in copies.names if not n.startswith('property-')
              or n.split(':', 1)[1] in ('xid', 'stubdom_xid', 'start_time')]
    assert not others, f'events the window does not need reached it: {others}'
    print(f'a start and a stop shown; Event copies to the window: {copies.names}')

    # 5. list columns that come from outside the snapshot change as they are set: a template
    # and a netvm other than the default (the NETVM column's name shows through the template's)
    bus.call(ROOT, MANAGER, 'CreateDomain', '(ssssa{ss})', ('TemplateVM', 'tpl-2', 'black', '', {}))
    q14 = f'{ROOT}/domain/qube_2d00014'
    bus.call(q14, DOMAIN, 'SetProperty', '(ss)', ('template', 'tpl-2'))
    manager.wait_row('qube-00014', lambda r: r['template'] == 'tpl-2', 1.0, 'the template tpl-2')
    bus.call(q14, DOMAIN, 'SetProperty', '(ss)', ('template', 'tpl'))
    manager.wait_row('qube-00014', lambda r: r['template'] == 'tpl', 1.0, 'the template tpl again')
    print('a template set twice shown')

    # 6. the IP and the virt mode, values of a qube's QubesVM interface, whose PropertiesChanged
    # (sent at every start and stop) the window does not take: they follow the qube's own netvm,
    # its template's virt_mode (inherited: no event about the qube itself) and a global default
    ip14, ip13 = manager.first_rows['qube-00014']['ip'], manager.first_rows['qube-00013']['ip']
    assert ip14 and ip13 and manager.rows['qube-00014']['virt_mode'] == 'pvh', manager.rows['qube-00014']
    bus.call(q14, DOMAIN, 'SetProperty', '(ss)', ('netvm', ''))
    manager.wait_row('qube-00014', lambda r: r['netvm'] == 'none' and r['ip'] == '', 1.0,
                     'no netvm, no IP')
    bus.call(q14, DOMAIN, 'ResetProperty', '(s)', ('netvm',))
    manager.wait_row('qube-00014', lambda r: r['ip'] == ip14, 1.0, 'the IP again')
    tpl = f'{ROOT}/domain/tpl'
    bus.call(tpl, DOMAIN, 'SetProperty', '(ss)', ('virt_mode', 'pv'))
    for name in ('qube-00014', f'qube-{QUBES - 1:05d}'):
        manager.wait_row(name, lambda r: r['virt_mode'] == 'pv', 1.0, "the template's virt mode")
    bus.call(tpl, DOMAIN, 'ResetProperty', '(s)', ('virt_mode',))
    manager.wait_row('qube-00014', lambda r: r['virt_mode'] == 'pvh', 1.0, 'the default virt mode')
    bus.call(ROOT, MANAGER, 'SetProperty', '(ss)', ('default_netvm', ''))
    manager.wait_row('qube-00013', lambda r: r['ip'] == '', 1.0, 'no IP without a default netvm')
    bus.call(ROOT, MANAGER, 'SetProperty', '(ss)', ('default_netvm', 'sys-net'))
    manager.wait_row('qube-00013', lambda r: r['ip'] == ip13, 1.0, 'the IP with the default netvm')
    print(f'IP and virt mode follow the netvm, the template and the global default ({ip14}, {ip13})')


def main():
    args = parse_args()
    try:
        import gi
        gi.require_version('Atspi', '2.0')
        from gi.repository import Atspi  # noqa: F401
    except (ImportError, ValueError) as e:
        print(f'SKIP: {e}')
        return SKIP
    return qm_display.run_window_test(args, 'qm-test-', run)


if __name__ == '__main__':
    sys.exit(main())
