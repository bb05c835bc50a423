# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the window tests of the global settings, the logs, the list's details and the
translations share: the test's own display and accessibility bus, a private bus with qubesd on a
copy of tests/data/example-qubes.xml (pools, installed kernels and volume images in the test's
directory), qube-manager in a chosen language, and the AT-SPI steps a user takes. Import after
gi.require_version('Atspi', '2.0') has succeeded (the tests skip without it)."""

import argparse
import os
import subprocess
import time

from gi.repository import Atspi, GLib

import qm_display
from qm_display import run_window_test  # noqa: F401 (the tests call S.run_window_test)
from qm_atspi import Bus, find, walk

SKIP = 77
ROOT = '/org/qubes_os/Admin1'
MANAGER = 'org.qubes_os.Admin1.Manager'
DOMAIN = 'org.qubes_os.Admin1.Domain'
VOLUME = 'org.qubes_os.Admin1.Volume'
PROPERTIES = 'org.freedesktop.DBus.Properties'
# the kernels "installed" in the test's linux-kernel pool (directories named after versions)
KERNELS = ('5.15.160-1.fc37', '6.6.1-1.fc37', '6.12.9-1.fc41')


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--qube-manager', required=True)
    p.add_argument('--qubesd', required=True)
    p.add_argument('--qubes-xml', required=True)
    p.add_argument('--out-dir', required=True)
    p.add_argument('--locale-dir', help='the built translations (<build>/po)')
    return p.parse_args()


def reexec_under_display(prefix=()):
    """Runs the test again under its own buses, display and runtime directory (qm_display), after
    prefix (e.g. unshare); returns only in the inner run."""
    qm_display.reexec_under_display(prefix)


def wait_until(predicate, what, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.1)


def prepare_state(args, tmp):
    """qubes.xml from the example (without sys-net's PCI device), its pools under tmp/state, three
    kernels installed, and work's private image with a little data in it."""
    state = f'{tmp}/state'
    os.makedirs(state)
    with open(args.qubes_xml) as f:
        xml = f.read().replace('/var/lib/qubes', state)
    # sys-net's required PCI device (a Wi-Fi card at 00_14.3) is not on this machine: a start of
    # sys-net, or of a qube that uses it, would fail as upstream's does
    xml = xml.replace('<device backend-domain="dom0" id="00_14.3" mode="required" '
                      'identity="8086:a370::p028000"><option name="no-strict-reset">True</option></device>', '')
    with open(f'{state}/qubes.xml', 'w') as f:
        f.write(xml)
    for sub in ('appvms', 'vm-templates', 'standalone'):
        os.makedirs(f'{state}/{sub}', exist_ok=True)
    for version in KERNELS:
        os.makedirs(f'{state}/vm-kernels/{version}')
        for name in ('vmlinuz', 'initramfs'):
            with open(f'{state}/vm-kernels/{version}/{name}', 'wb') as f:
                f.write(b'\0' * 4096)
    os.makedirs(f'{state}/appvms/work')
    with open(f'{state}/appvms/work/private.img', 'wb') as f:
        f.write(os.urandom(1 << 20))
        f.truncate(2 << 30)
    return state


def start_bus(tmp, procs):
    address = f'unix:path={tmp}/bus'
    # dbus-daemon prints its address once it listens
    daemon = subprocess.Popen(['dbus-daemon', '--session', f'--address={address}', '--nofork',
                               '--nopidfile', '--print-address=1'],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(daemon)
    daemon.stdout.readline()
    return address, Bus(address)


def libvirt_connections(log):
    try:
        with open(log, 'rb') as f:
            return f.read().count(b'Connected to libvirt at ')
    except OSError:
        return 0


def start_qubesd(args, tmp, address, procs, **popen):
    log = f'{tmp}/qubesd.log'
    own_log = 'stderr' not in popen
    popen.setdefault('stderr', open(log, 'a'))
    before = libvirt_connections(log)
    p = subprocess.Popen([args.qubesd, f'--bus-address={address}', f'--state-dir={tmp}/state',
                          '--libvirt-uri=test:///default'], **popen)
    procs.append(p)
    bus = Bus(address)
    wait_until(bus.has_owner, 'qubesd on the bus', 10)
    # it connects to libvirt just after: the host's figures (Maxmem) are libvirt's node from then
    # on, /proc/meminfo's before, and the tests expect the test driver's
    if own_log:
        wait_until(lambda: libvirt_connections(log) > before, 'qubesd connected to libvirt', 10)
    return p


def manager_env(args, tmp, language):
    """The manager's environment: its own settings, and English (C) or German (de) from the
    build's catalogue."""
    env = dict(os.environ, XDG_CONFIG_HOME=f'{tmp}/config', GSETTINGS_BACKEND='memory',
               LANGUAGE=language, LC_ALL='C.UTF-8')
    if args.locale_dir:
        env['QUBE_MANAGER_LOCALEDIR'] = args.locale_dir
    return env


def do_action(acc, wanted):
    for i in range(acc.get_n_actions()):
        if acc.get_action_name(i) == wanted:
            return acc.do_action(i)
    raise AssertionError(f'{acc.get_role_name()} {acc.get_name()!r} has no action {wanted}')


def sensitive(acc):
    return acc.get_state_set().contains(Atspi.StateType.SENSITIVE)


def showing(acc):
    try:
        return acc.get_state_set().contains(Atspi.StateType.SHOWING)
    except GLib.Error:
        return False


def checked(acc):
    return acc.get_state_set().contains(Atspi.StateType.CHECKED)


def table_cells(table):
    """[(column titles)], {(row, title): accessible} of a tree view as shown."""
    cols = [table.get_column_header(c).get_name() for c in range(table.get_n_columns())]
    cells = {}
    for r in range(table.get_n_rows()):
        for c, title in enumerate(cols):
            cells[(r, title)] = table.get_accessible_at(r, c)
    return cols, cells


def cell(table, name, column, name_column='Name'):
    """The text of a qube's cell in the list, or None when the qube is not shown."""
    cols, cells = table_cells(table)
    for (r, title), acc in cells.items():
        if title == name_column and acc.get_name() == name:
            return cells[(r, column)].get_name()
    return None


def row_of(table, name, name_column='Name'):
    cols = [table.get_column_header(c).get_name() for c in range(table.get_n_columns())]
    for r in range(table.get_n_rows()):
        if table.get_accessible_at(r, cols.index(name_column)).get_name() == name:
            return r
    return None


def names(table):
    cols, cells = table_cells(table)
    return sorted(acc.get_name() for (r, title), acc in cells.items() if title == 'Name')


def select_qube(table, name):
    try:
        r = wait_until(lambda: row_of(table, name) is not None, f'{name} in the list', 10)
    except AssertionError as e:
        raise AssertionError(f'{e}; the list shows {names(table)}')
    r = row_of(table, name)
    table.clear_selection()
    table.add_row_selection(r)


def labelled(window, title, timeout=5):
    """What the label titled title labels (its mnemonic widget), through the LABEL_FOR
    relation, as a screen reader finds it."""
    label = find(window, role='label', name=title, timeout=timeout)
    for relation in label.get_relation_set():
        if relation.get_relation_type() == Atspi.RelationType.LABEL_FOR:
            return relation.get_target(0)
    raise AssertionError(f'the label {title!r} labels nothing')


def menu_item(app, *path):
    """Activates a menu item of the window's menu bar, e.g. ('System', 'Global Settings')."""
    acc = find(app, role='menu bar')
    for name in path:
        acc = find(acc, name=name)
        # each menu opened as a user opens it: an item of a menu never shown has no window
        do_action(acc, 'click')


def screenshot(out_dir, name):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    subprocess.run(['import', '-window', 'root', path], check=True)
    print(f'screenshot: {path}')


def texts(root, roles=('label', 'push button', 'check box', 'radio button', 'page tab',
                       'menu item', 'menu', 'table column header', 'toggle button',
                       'frame', 'dialog', 'alert')):
    """The names of the widgets that carry the window's own words."""
    found = set()
    for acc in walk(root):
        try:
            if acc.get_role_name() in roles and acc.get_name():
                found.add(acc.get_name())
        except GLib.Error:
            continue
    return found
