#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GUI test of a qube's settings window: what each page applies, against a real qubesd.

Runs itself again inside dbus-run-session (for the accessibility bus) and xvfb-run, like
test-qube-manager.py. Opens work's settings through AT-SPI and, on the pages that are widgets of
their own (QmSettingsPage: Services, Features, Notes) and on the window's own Advanced page,
changes one thing each: a service added and one ticked off, a feature removed, the notes
written, the memory raised; then Apply, and checks over D-Bus that qubesd holds exactly that
(and nothing else changed), that the window reads the values again (the new service is still
ticked, the removed feature is gone from the list), and that OK with nothing changed closes
the window without a call; and that every button and field of the window has an accessible
name. Exit 77 = skipped.
"""
import argparse
import os
import subprocess
import sys
import time
import warnings

warnings.simplefilter('ignore', DeprecationWarning)

SKIP = 77
ROOT = '/org/qubes_os/Admin1'
WORK = ROOT + '/domain/work'
DOMAIN = 'org.qubes_os.Admin1.Domain'


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--qube-manager', required=True)
    p.add_argument('--qubesd', required=True)
    p.add_argument('--qubes-xml', required=True)
    p.add_argument('--out-dir', required=True)
    return p.parse_args()


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qm_display  # noqa: E402 (no gi: imported before the test knows it can run)


try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi, GLib
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import Bus, find, find_app, walk  # noqa: E402
except (ImportError, ValueError) as e:
    print(f'SKIP: python3-gi with gir1.2-atspi-2.0 is needed ({e})')
    sys.exit(SKIP)


def do_action(acc, wanted):
    for i in range(acc.get_n_actions()):
        if acc.get_action_name(i) == wanted:
            return acc.do_action(i)
    raise AssertionError(f'{acc.get_role_name()} {acc.get_name()!r} has no action {wanted}')


def wait_until(predicate, what, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.1)


def sensitive(acc):
    return acc.get_state_set().contains(Atspi.StateType.SENSITIVE)


def showing(acc):
    try:
        return acc.get_state_set().contains(Atspi.StateType.SHOWING)
    except GLib.Error:
        return False


def row_of(table, name):
    cols = [table.get_column_header(c).get_name() for c in range(table.get_n_columns())]
    for r in range(table.get_n_rows()):
        if table.get_accessible_at(r, cols.index('Name')).get_name() == name:
            return r
    return None


def features(bus):
    return {name: bus.call(WORK, DOMAIN, 'GetFeature', '(s)', (name,))[0]
            for name in bus.call(WORK, DOMAIN, 'ListFeatures')[0]}


def main():
    return qm_display.run_window_test(parse_args(), 'qm-settings-test-', run)


def run(args, tmp, procs):
    os.makedirs(f'{tmp}/state')
    with open(args.qubes_xml) as f:
        xml = f.read().replace('/var/lib/qubes', f'{tmp}/state')
    with open(f'{tmp}/state/qubes.xml', 'w') as f:
        f.write(xml)
    address = f'unix:path={tmp}/bus'
    procs.append(subprocess.Popen(['dbus-daemon', '--session', f'--address={address}',
                                   '--nofork', '--nopidfile', '--print-address'],
                                  stdout=subprocess.PIPE))
    procs[-1].stdout.readline()   # printed once it listens
    bus = Bus(address)
    procs.append(subprocess.Popen([args.qubesd, f'--bus-address={address}',
                                   f'--state-dir={tmp}/state', '--libvirt-uri=test:///default'],
                                  stderr=open(f'{tmp}/qubesd.log', 'a')))
    wait_until(bus.has_owner, 'qubesd on the bus', 10)

    bus.call(WORK, DOMAIN, 'SetFeature', '(ss)', ('service.cups', '1'))
    bus.call(WORK, DOMAIN, 'SetFeature', '(ss)', ('gui-allow-fullscreen', '1'))
    bus.call(WORK, DOMAIN, 'SetFeature', '(ss)', ('os', 'Linux'))
    before = features(bus)
    memory = int(bus.call(WORK, DOMAIN, 'GetProperty', '(s)', ('memory',))[2])

    env = dict(os.environ, XDG_CONFIG_HOME=f'{tmp}/config', GSETTINGS_BACKEND='memory',
               LANGUAGE='C', LC_ALL='C.UTF-8')
    manager = subprocess.Popen([args.qube_manager, f'--bus-address={address}'], env=env)
    procs.append(manager)
    app = find_app('qube-manager')
    table = find(app, role='tree table', name='Qubes')
    r = wait_until(lambda: row_of(table, 'work'), 'work in the list', 10)
    table.add_row_selection(r)
    settings = find(app, role='push button', name='Settings')
    wait_until(lambda: sensitive(settings), 'Settings sensitive')
    do_action(settings, 'click')
    window = find(app, role='frame', name='work: Settings')
    apply = find(window, role='push button', name='Apply')
    wait_until(lambda: sensitive(apply), 'the settings read')

    # every button and field has a name (the info bar's close button had none)
    unnamed = [a.get_role_name() for a in walk(window)
               if a.get_role_name() in ('push button', 'spin button', 'text', 'check box')
               and not a.get_name()]
    assert not unnamed, f'without an accessible name: {unnamed}'

    # Services: cups is ticked (service.cups=1); tick it off, add "crond"
    cups = find(window, role='check box', name='cups')
    assert cups.get_state_set().contains(Atspi.StateType.CHECKED)
    do_action(cups, 'click')
    entry = find(window, role='text', name='Service name')
    entry.set_text_contents('crond')
    do_action(entry, 'activate')
    crond = find(window, role='check box', name='crond')
    assert crond.get_state_set().contains(Atspi.StateType.CHECKED)

    # Features: remove gui-allow-fullscreen, keep os
    ftable = find(window, role='table', name='Features')
    names = [ftable.get_accessible_at(i, 0).get_name() for i in range(ftable.get_n_rows())]
    assert sorted(names) == ['gui-allow-fullscreen', 'os'], names
    ftable.add_row_selection(names.index('gui-allow-fullscreen'))
    do_action(find(window, role='push button', name='Remove feature'), 'click')

    # Notes
    find(window, role='text', name='Notes').set_text_contents('kept for the audit')

    # Advanced: the memory, a property of the window's own page
    spin = [a for a in walk(window) if a.get_role_name() == 'spin button'
            and a.get_current_value() == memory]
    assert spin, f'no spin button showing the memory {memory}'
    spin[0].set_current_value(memory + 100)

    subprocess.run(['import', '-window', 'root', os.path.join(args.out_dir,
                                                              'qube-manager-settings-pages.png')])
    do_action(apply, 'click')
    wait_until(lambda: not sensitive(apply), 'Apply working', 2)
    wait_until(lambda: sensitive(apply), 'Apply done and the values read again', 10)

    after = features(bus)
    expected = dict(before)
    expected['service.cups'] = ''
    expected['service.crond'] = '1'
    del expected['gui-allow-fullscreen']
    assert after == expected, (before, after)
    assert bus.call(WORK, DOMAIN, 'GetNotes')[0] == 'kept for the audit'
    _, is_default, value = bus.call(WORK, DOMAIN, 'GetProperty', '(s)', ('memory',))
    assert int(value) == memory + 100 and not is_default, (value, is_default)
    print('Apply set service.cups=, service.crond=1, removed gui-allow-fullscreen, '
          'wrote the notes and memory', memory + 100)

    # the window shows what qubesd holds now
    crond = find(window, role='check box', name='crond')
    assert crond.get_state_set().contains(Atspi.StateType.CHECKED)
    assert not find(window, role='check box', name='cups').get_state_set().contains(
        Atspi.StateType.CHECKED)
    names = [ftable.get_accessible_at(i, 0).get_name() for i in range(ftable.get_n_rows())]
    assert names == ['os'], names

    # OK with nothing changed: no call, the window closes
    bus.call(WORK, DOMAIN, 'SetNotes', '(s)', ('changed elsewhere',))
    do_action(find(window, role='push button', name='OK'), 'click')
    wait_until(lambda: not showing(window), 'the window closed')
    assert bus.call(WORK, DOMAIN, 'GetNotes')[0] == 'changed elsewhere', 'OK wrote the notes'
    assert features(bus) == expected
    print('OK with nothing changed closed the window without a call')
    assert manager.poll() is None, 'qube-manager exited'


if __name__ == '__main__':
    try:
        main()
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
