#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GUI test of the Global Settings window (System > Global Settings), against a real qubesd.

Runs itself again inside dbus-run-session (for the accessibility bus) and xvfb-run. The window
must name every button and field, and show the global properties as qubesd holds them, each
setting with what it means, a setting at its default as "default (...)"; the kernels offered
are the installed ones, the net qubes those that provide network. Then, as a user would: a few settings changed, one number set
back to its default, Apply, and qubesd must hold exactly that, nothing else changed; a change
qubesd refuses (the qube chosen was removed meanwhile) is reported in the window, which stays
open, while the others are made; OK with nothing changed makes no call. Exit 77 = skipped.
"""
import os
import subprocess
import sys
import time
import warnings

warnings.simplefilter('ignore', DeprecationWarning)

try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi  # noqa: F401
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import find, find_app, walk  # noqa: E402
    import qm_session as S  # noqa: E402
except (ImportError, ValueError) as e:
    print(f'SKIP: python3-gi with gir1.2-atspi-2.0 is needed ({e})')
    sys.exit(77)


def combo_items(combo):
    menu = combo.get_child_at_index(0)
    return [menu.get_child_at_index(i).get_name() for i in range(menu.get_child_count())]


def choose(combo, text):
    items = combo_items(combo)
    assert text in items, f'{text!r} not offered: {items}'
    combo.select_child(items.index(text))
    wait_until_shown = time.monotonic() + 2
    while combo.get_name() != text:
        assert time.monotonic() < wait_until_shown, f'{text!r} not chosen: {combo.get_name()!r}'
        time.sleep(0.05)


def shown(combo):
    """The row a combo box shows (its name: the value chosen)."""
    return combo.get_name()


def page(window, name):
    tabs = find(window, role='page tab list')
    names = [tabs.get_child_at_index(i).get_name() for i in range(tabs.get_child_count())]
    tabs.select_child(names.index(name))


def props(bus):
    return {name: (is_default, value) for name, _, is_default, value
            in bus.call(S.ROOT, S.MANAGER, 'GetAllProperties')[0]}


def open_window(app):
    S.menu_item(app, 'System', 'Global Settings')
    window = find(app, role='frame', name='Global Settings')
    ok = find(window, role='push button', name='OK')
    S.wait_until(lambda: S.sensitive(ok), 'the global settings read', 10)
    return window


def apply_and_wait(window):
    apply = find(window, role='push button', name='Apply')
    S.do_action(apply, 'click')
    S.wait_until(lambda: not S.sensitive(apply), 'Apply working', 2)
    S.wait_until(lambda: S.sensitive(apply), 'Apply done and the values read again', 10)


def main():
    args = S.parse_args()
    return S.run_window_test(args, 'qm-global-test-', run)


def run(args, tmp, procs):
    S.prepare_state(args, tmp)
    address, bus = S.start_bus(tmp, procs)
    S.start_qubesd(args, tmp, address, procs)
    # a second network provider, chosen below and removed before Apply
    bus.call(S.ROOT, S.MANAGER, 'CreateDomain', '(ssssa{ss})',
             ('AppVM', 'sys-vpn', 'green', '', {}))
    bus.call(S.ROOT + '/domain/sys_2dvpn', S.DOMAIN, 'SetProperty', '(ss)',
             ('provides_network', 'True'))
    before = props(bus)

    manager = subprocess.Popen([args.qube_manager, f'--bus-address={address}'],
                               env=S.manager_env(args, tmp, 'C'))
    procs.append(manager)
    app = find_app('qube-manager')
    table = find(app, role='tree table', name='Qubes')
    S.wait_until(lambda: S.row_of(table, 'work') is not None, 'the list', 10)
    window = open_window(app)

    # every button and field has a name
    unnamed = [a.get_role_name() for a in walk(window)
               if a.get_role_name() in ('push button', 'spin button', 'text', 'check box',
                                        'combo box') and not a.get_name()]
    assert not unnamed, f'without an accessible name: {unnamed}'

    # what qubesd holds, and what each setting means
    netvm = S.labelled(window, 'Default net qube')
    assert shown(netvm) == 'sys-net', shown(netvm)
    assert combo_items(netvm) == ['default (none)', 'none', 'sys-net', 'sys-vpn'], \
        combo_items(netvm)
    assert netvm.get_description().startswith('Qubes that do not choose their own'), \
        netvm.get_description()
    find(window, role='label',
         name='Qubes that do not choose their own reach the network through it.')
    guivm = S.labelled(window, 'Default GUI qube')
    assert shown(guivm) == 'default (dom0)', shown(guivm)
    kernel = S.labelled(window, 'Default kernel')
    assert combo_items(kernel) == ['none'] + list(S.KERNELS), combo_items(kernel)
    assert shown(kernel) == '6.6.1-1.fc37', shown(kernel)
    template = S.labelled(window, 'Default template')
    assert 'fedora-42' in combo_items(template) and 'work' not in combo_items(template)
    S.screenshot(args.out_dir, 'qube-manager-global-settings.png')
    page(window, 'Storage')
    pool = S.labelled(window, 'Default pool')
    assert shown(pool) == 'default (varlibqubes)', shown(pool)
    assert combo_items(S.labelled(window, 'Pool for kernel volumes')) == \
        ['default (varlibqubes)', 'linux-kernel'], \
        combo_items(S.labelled(window, 'Pool for kernel volumes'))
    page(window, 'Timeouts and updates')
    qrexec = S.labelled(window, 'Qrexec timeout (s)')
    assert qrexec.get_current_value() == 60, qrexec.get_current_value()
    reset = find(window, role='push button', name='Qrexec timeout (s): default')
    assert not S.sensitive(reset), 'reset offered for a value at its default'
    updates = find(window, role='check box', name='Check for updates in qubes by default')
    assert S.checked(updates)
    print('the window shows what qubesd holds, with defaults and help')

    # changes: kernel, GUI qube, qrexec timeout, updates off, and the net qube sys-vpn
    page(window, 'Qubes')
    choose(kernel, '6.12.9-1.fc41')
    choose(guivm, 'sys-net')
    choose(netvm, 'sys-vpn')
    page(window, 'Timeouts and updates')
    qrexec.set_current_value(90)
    S.do_action(updates, 'click')
    S.screenshot(args.out_dir, 'qube-manager-global-settings-changed.png')
    # sys-vpn goes before Apply: that change is refused, the others are made
    bus.call(S.ROOT + '/domain/sys_2dvpn', S.DOMAIN, 'Remove')
    apply_and_wait(window)
    info = [a.get_name() for a in walk(window) if a.get_role_name() == 'label'
            and a.get_name().startswith('Cannot change default_netvm')]
    assert info, 'the refused change is not reported'
    print('reported:', info[0])
    after = props(bus)
    expected = dict(before)
    expected.update({'default_kernel': (False, '6.12.9-1.fc41'),
                     'default_guivm': (False, 'sys-net'),
                     'default_qrexec_timeout': (False, '90'),
                     'check_updates_vm': (False, 'False')})
    assert after == expected, {k: (before.get(k), after.get(k)) for k in after
                               if after.get(k) != expected.get(k)}
    assert S.showing(window), 'the window closed after a failure'
    print('Apply set default_kernel, default_guivm, default_qrexec_timeout, check_updates_vm')

    # back to the defaults: the timeout with its button, the GUI qube with "default (dom0)"
    page(window, 'Timeouts and updates')
    reset = find(window, role='push button', name='Qrexec timeout (s): default')
    S.wait_until(lambda: S.sensitive(reset), 'reset offered for a value set')
    S.do_action(reset, 'click')
    assert S.labelled(window, 'Qrexec timeout (s)').get_current_value() == 60
    page(window, 'Qubes')
    choose(S.labelled(window, 'Default GUI qube'), 'default (dom0)')
    apply_and_wait(window)
    after = props(bus)
    assert after['default_qrexec_timeout'] == (True, '60'), after['default_qrexec_timeout']
    assert after['default_guivm'] == (True, 'dom0'), after['default_guivm']
    print('the qrexec timeout and the GUI qube are back at their defaults')

    # OK with nothing changed: no call, the window closes
    bus.call(S.ROOT, S.MANAGER, 'SetProperty', '(ss)', ('stats_interval', '7'))
    S.do_action(find(window, role='push button', name='OK'), 'click')
    S.wait_until(lambda: not S.showing(window), 'the window closed')
    assert props(bus)['stats_interval'] == (False, '7'), 'OK wrote stats_interval'
    print('OK with nothing changed closed the window without a call')
    assert manager.poll() is None, 'qube-manager exited'


if __name__ == '__main__':
    try:
        main()
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
