#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GUI test of the Qube Manager's devices against a real qubesd on a private bus (this machine's
real PCI devices; a loop device for the block part, which needs root and is skipped otherwise).

The Devices page of a qube's settings: a PCI device assigned with the Assign button, one assigned
elsewhere (over D-Bus) shown within a second, the strict-reset and permissive options changed by
their check boxes, the assignment removed. The Devices dialog of the main window: a loop device
attached to a running qube and detached with its buttons, and one attached over D-Bus shown
within a second. Runs itself inside dbus-run-session and xvfb-run, reads the windows through
AT-SPI, saves screenshots in --out-dir. Exit 77 = skipped.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

warnings.simplefilter('ignore', DeprecationWarning)

SKIP = 77
ROOT = '/org/qubes_os/Admin1'
DD = 'org.qubes_os.Admin1.DomainDevices'
DOMAIN = 'org.qubes_os.Admin1.Domain'


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--qube-manager', required=True)
    p.add_argument('--qubesd', required=True)
    p.add_argument('--qubes-xml', required=True)
    p.add_argument('--out-dir', required=True)
    return p.parse_args()


def reexec_under_display():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import qm_display
    qm_display.reexec_under_display()


try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi, GLib
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import Bus, find, find_app, stop_processes, walk  # noqa: E402
except (ImportError, ValueError) as e:
    print(f'SKIP: python3-gi with gir1.2-atspi-2.0 is needed ({e})')
    sys.exit(SKIP)


def do_action(acc, wanted):
    for i in range(acc.get_n_actions()):
        if acc.get_action_name(i) == wanted:
            return acc.do_action(i)
    raise AssertionError(f'{acc.get_role_name()} {acc.get_name()!r} has no action {wanted}: '
                         f'{[acc.get_action_name(i) for i in range(acc.get_n_actions())]}')


def rows(table):
    """The table as a list of {column title: text}."""
    cols = [table.get_column_header(c).get_name() for c in range(table.get_n_columns())]
    out = []
    for r in range(table.get_n_rows()):
        out.append({t: table.get_accessible_at(r, c).get_name() for c, t in enumerate(cols)})
    return out


def wait_until(predicate, timeout, what):
    """Poll predicate; a table read while the window rebuilds it (GLib.Error) is tried again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (GLib.Error, IndexError, TypeError):
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f'timed out: {what}'
        time.sleep(0.05)


def wait_sensitive(acc, what, timeout=5):
    wait_until(lambda: acc.get_state_set().contains(Atspi.StateType.SENSITIVE), timeout,
               f'{what} sensitive')


def screenshot(out_dir, name):
    path = os.path.join(out_dir, name)
    subprocess.run(['import', '-window', 'root', path], check=True)
    print(f'screenshot: {path}')


def row_of(table, column, text):
    for r, row in enumerate(rows(table)):
        if row.get(column) == text:
            return r
    return None


def main():
    args = parse_args()
    if os.environ.get('QM_TEST_INNER') != '1':
        reexec_under_display()
    os.makedirs(args.out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='qm-devices-')
    procs, loops = [], []
    try:
        run(args, tmp, procs, loops)
    finally:
        stop_processes(procs)
        for node in loops:
            subprocess.run(['losetup', '-d', node], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
    print('PASS')


def run(args, tmp, procs, loops):
    os.makedirs(f'{tmp}/state')
    with open(args.qubes_xml) as f:
        xml = f.read().replace('/var/lib/qubes', f'{tmp}/state')
    with open(f'{tmp}/state/qubes.xml', 'w') as f:
        f.write(xml)
    address = f'unix:path={tmp}/bus'
    procs.append(subprocess.Popen(['dbus-daemon', '--session', f'--address={address}', '--nofork',
                                   '--nopidfile']))
    wait_until(lambda: os.path.exists(f'{tmp}/bus'), 5, 'the bus')
    bus = Bus(address)
    procs.append(subprocess.Popen([args.qubesd, f'--bus-address={address}', f'--state-dir={tmp}/state',
                                   '--libvirt-uri=test:///default'], stderr=open(f'{tmp}/qubesd.log', 'a')))
    wait_until(bus.has_owner, 10, 'qubesd on the bus')
    env = dict(os.environ, XDG_CONFIG_HOME=f'{tmp}/config', GSETTINGS_BACKEND='memory', LANGUAGE='C',
               LC_ALL='C.UTF-8')
    procs.append(subprocess.Popen([args.qube_manager, f'--bus-address={address}'], env=env,
                                  stdout=subprocess.DEVNULL))
    work = f'{ROOT}/domain/work'
    pci = [p for p, _, _ in bus.call(f'{ROOT}/domain/dom0', DD, 'ListAvailableDevices', '(s)', ('pci',))[0]]
    assert len(pci) >= 2, pci

    app = find_app('qube-manager')
    table = find(app, role='tree table', name='Qubes')
    r = wait_until(lambda: row_of(table, 'Name', 'work'), 20, 'work in the list')
    table.add_row_selection(r)

    # 1. the Devices page of work's settings
    settings = find(app, role='push button', name='Settings')
    wait_sensitive(settings, 'Settings')
    do_action(settings, 'click')
    window = find(app, role='frame', name='work: Settings')
    tab = find(window, role='page tab', name='Devices')
    tab.get_parent().select_child(tab.get_index_in_parent())  # page tabs have no action; their list selects
    assigned = find(window, role='table', name='Assigned PCI devices')
    assign = find(window, role='push button', name='Assign')
    wait_sensitive(assign, 'Assign')
    do_action(assign, 'click')
    got = wait_until(lambda: bus.call(work, DD, 'ListAssignedDevices', '(s)', ('pci',))[0], 5,
                     'the assignment made with Assign')
    assert got[0][0:2] == ('dom0', pci[0]) and got[0][3] == 'required' and got[0][4] == 'work', got
    wait_until(lambda: rows(assigned) and rows(assigned)[0]['Device'] == f'dom0:{pci[0]}', 2,
               'the new assignment on the page')
    assert rows(assigned)[0]['Mode'] == 'required', rows(assigned)
    print('assigned', pci[0], 'with the Assign button')

    # made elsewhere: shown within a second
    before = time.monotonic()
    bus.call(work, DD, 'AssignDevice', '(sssssa(ss)s)', ('pci', 'dom0', pci[1], '*', 'required', [], 'work'))
    wait_until(lambda: row_of(assigned, 'Device', f'dom0:{pci[1]}') is not None, 1.0,
               'an assignment made over D-Bus on the page')
    print(f'an assignment made over D-Bus shown after {(time.monotonic() - before) * 1000:.0f} ms')

    # the options of the selected assignment: strict reset off, then permissive on
    def options_of(port):
        for a in bus.call(work, DD, 'ListAssignedDevices', '(s)', ('pci',))[0]:
            if a[1] == port:
                return dict(a[5])
        return None

    def select(port):
        r = wait_until(lambda: row_of(assigned, 'Device', f'dom0:{port}') is not None and
                       row_of(assigned, 'Device', f'dom0:{port}') + 1, 2, f'the row of {port}') - 1
        assigned.clear_selection()
        assigned.add_row_selection(r)
    select(pci[0])
    strict = find(window, role='check box', name='Strict reset')
    wait_sensitive(strict, 'Strict reset')
    assert strict.get_state_set().contains(Atspi.StateType.CHECKED), 'strict reset is the default'
    do_action(strict, 'click')
    wait_until(lambda: options_of(pci[0]) == {'no-strict-reset': 'True'}, 5, 'no-strict-reset stored')
    select(pci[0])
    permissive = find(window, role='check box', name='Permissive')
    wait_sensitive(permissive, 'Permissive')
    wait_until(lambda: not strict.get_state_set().contains(Atspi.StateType.CHECKED), 2,
               'the page showing strict reset off')
    do_action(permissive, 'click')
    wait_until(lambda: options_of(pci[0]) == {'no-strict-reset': 'True', 'permissive': 'True'}, 5,
               'permissive stored')
    time.sleep(0.3)
    screenshot(args.out_dir, 'qube-manager-devices-page.png')

    # Apply adds no call for the page (its changes were made at once) and the window, which
    # reads every page again, is usable once the page has read its lists
    stored = sorted(bus.call(work, DD, 'ListAssignedDevices', '(s)', ('pci',))[0])
    apply = find(window, role='push button', name='Apply')
    do_action(apply, 'click')
    wait_sensitive(apply, 'Apply after the reload')
    wait_sensitive(strict, 'the page after the reload')
    assert sorted(bus.call(work, DD, 'ListAssignedDevices', '(s)', ('pci',))[0]) == stored
    assert {r['Device'] for r in rows(assigned)} == {f'dom0:{pci[0]}', f'dom0:{pci[1]}'}, rows(assigned)
    print('Apply left the assignments as they were')

    # removed with the Remove button
    select(pci[0])
    remove = find(window, role='push button', name='Remove')
    wait_sensitive(remove, 'Remove')
    do_action(remove, 'click')
    wait_until(lambda: options_of(pci[0]) is None, 5, 'the assignment removed')
    wait_until(lambda: row_of(assigned, 'Device', f'dom0:{pci[0]}') is None, 2, 'the row gone')
    print('options changed and the assignment removed from the page')
    do_action(find(window, role='push button', name='Cancel'), 'click')

    # 2. the block devices dialog (a loop device of our own: root only)
    if os.geteuid() != 0 or not os.path.exists('/dev/loop-control'):
        print('SKIP part: the block devices dialog needs root for a loop device')
        return
    img = f'{tmp}/gui.img'
    with open(img, 'wb') as f:
        f.truncate(1 << 20)
    node = subprocess.run(['losetup', '-f', '--show', img], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()
    loops.append(node)
    port = os.path.basename(node)
    # work needs sys-net, whose required PCI device (example-qubes.xml) this machine lacks
    bus.call(f'{ROOT}/domain/sys_2dnet', DD, 'UnassignDevice', '(ssss)',
             ('pci', 'dom0', '00_14.3', '8086:a370::p028000'))
    bus.call(work, DOMAIN, 'Start')
    r = wait_until(lambda: row_of(table, 'Name', 'work'), 5, 'work in the list')
    table.clear_selection()
    table.add_row_selection(r)
    devices = find(app, role='push button', name='Devices')
    wait_sensitive(devices, 'Devices')
    do_action(devices, 'click')
    dialog = find(app, role='dialog', name='work: Block Devices')
    blocks = find(dialog, role='table', name='Block devices')
    r = wait_until(lambda: row_of(blocks, 'Device', f'dom0:{port}') is not None and
                   row_of(blocks, 'Device', f'dom0:{port}') + 1, 5, 'the loop device in the dialog') - 1
    blocks.add_row_selection(r)
    attach = find(dialog, role='push button', name='Attach')
    wait_sensitive(attach, 'Attach')
    do_action(attach, 'click')
    wait_until(lambda: bus.call(work, DD, 'ListAttachedDevices', '(s)', ('block',))[0], 5, 'attached')
    wait_until(lambda: rows(blocks)[row_of(blocks, 'Device', f'dom0:{port}')]['Attached to'] == 'work',
               2, 'shown attached to work')
    time.sleep(0.3)
    screenshot(args.out_dir, 'qube-manager-block-devices.png')
    detach = find(dialog, role='push button', name='Detach')
    wait_sensitive(detach, 'Detach')
    do_action(detach, 'click')
    wait_until(lambda: not bus.call(work, DD, 'ListAttachedDevices', '(s)', ('block',))[0], 5, 'detached')
    wait_until(lambda: rows(blocks)[row_of(blocks, 'Device', f'dom0:{port}')]['Attached to'] == '',
               2, 'shown detached')
    # attached elsewhere (over D-Bus): the dialog follows within a second
    before = time.monotonic()
    bus.call(work, DD, 'AttachDevice', '(ssssa(ss)s)', ('block', 'dom0', port, '*', [], ''))
    wait_until(lambda: rows(blocks)[row_of(blocks, 'Device', f'dom0:{port}')]['Attached to'] == 'work',
               1.0, 'an attachment made over D-Bus in the dialog')
    print(f'block attach/detach with the dialog; an outside attach shown after '
          f'{(time.monotonic() - before) * 1000:.0f} ms')


if __name__ == '__main__':
    main()
