#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GUI test of the Firewall page of a qube's settings and of the clone dialog's copy of the
rules, against a real qubesd (issue 15).

Runs itself again inside dbus-run-session (for the accessibility bus) and xvfb-run. As a user
does it, through AT-SPI:
- the page shows work's rules: "limit" chosen, DNS and ICMP ticked, one row per other rule;
  it says when the qube has no net qube (the rules then do nothing), while that is the case;
- a rule added with the dialog (a network, a range of ports, an expiry, a comment) is in qubesd
  after Apply, in its place before the DNS, ICMP and final drop rules;
- what the dialog refuses (a host name with a space, a port out of range, a comment with a
  character qubesd refuses) is said in the dialog, which stays open, and nothing reaches qubesd;
- a rule added with the real qvm-firewall (upstream's client, through the shim's socket) shows
  in the open page within two seconds, without reopening it;
- with a change pending on the page, a change made elsewhere is announced, not shown over the
  user's, until they ask for it; while a rule dialog is open it waits until the dialog closes;
- "allow all" and back to "limit": qubesd holds the table's rules and a final accept, then the
  DNS and ICMP rules and a final drop again; ICMP off, a rule moved up and one removed; an empty table with "allow all" is qubesd's default
  (accept everything);
- a rule that expires counts down and leaves the open page when qubesd drops it;
- the clone dialog gives the clone the same rules;
- dom0's page says it has no firewall.
Saves screenshots in --out-dir. Exit 77 = skipped.
"""
import argparse
import os
import subprocess
import sys
import time
import warnings

warnings.simplefilter('ignore', DeprecationWarning)

try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi, GLib  # noqa: F401 (qm_session needs it loaded)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import find, find_app, walk  # noqa: E402
    import qm_session as S  # noqa: E402
except (ImportError, ValueError) as e:
    print(f'SKIP: python3-gi with gir1.2-atspi-2.0 is needed ({e})')
    sys.exit(77)

WORK = S.ROOT + '/domain/work'
FIREWALL = 'org.qubes_os.Admin1.Firewall'
COLUMNS = ('Action', 'Address', 'Port or service', 'Protocol', 'Expires', 'Comment')
DNS = {'action': 'accept', 'specialtarget': 'dns'}
ICMP = {'action': 'accept', 'proto': 'icmp'}
DROP = {'action': 'drop'}
ACCEPT = {'action': 'accept'}
UPDATES = {'action': 'accept', 'dsthost': 'qubes-os.org', 'proto': 'tcp', 'dstports': '443',
           'comment': 'Updates'}


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--qube-manager', required=True)
    p.add_argument('--qubesd', required=True)
    p.add_argument('--shim', required=True)
    p.add_argument('--qvm', help="upstream's qvm runner (../shared/qubesadmin/qvm)")
    p.add_argument('--qubes-xml', required=True)
    p.add_argument('--out-dir', required=True)
    p.add_argument('--locale-dir')
    return p.parse_args()


def rules(bus, path=WORK):
    return [dict(r) for r in bus.call(path, S.PROPERTIES, 'Get', '(ss)', (FIREWALL, 'Rules'))[0]]


def rows(table):
    """The rule table as shown: one tuple of the COLUMNS per row."""
    cols = [table.get_column_header(c).get_name() for c in range(table.get_n_columns())]
    assert tuple(cols) == COLUMNS, cols
    # read again while the table is being filled (a cell that went meanwhile)
    for _ in range(50):
        try:
            return [tuple(table.get_accessible_at(r, c).get_name() for c in range(len(cols)))
                    for r in range(table.get_n_rows())]
        except (AttributeError, GLib.Error):
            time.sleep(0.05)
    raise AssertionError('the rule table did not settle')


def click(window, name, role='push button'):
    acc = find(window, role=role, name=name)
    S.wait_until(lambda: S.sensitive(acc), f'{name} sensitive')
    S.do_action(acc, 'click')


def combo_choose(combo, text):
    menu = combo.get_child_at_index(0)
    items = [menu.get_child_at_index(i).get_name() for i in range(menu.get_child_count())]
    assert text in items, f'{text!r} not offered: {items}'
    combo.select_child(items.index(text))
    S.wait_until(lambda: combo.get_name() == text, f'{text!r} chosen')


def dialog_error(dialog):
    """The text of the dialog's error bar, or None while it is hidden."""
    try:
        for bar in walk(dialog):
            if bar.get_role_name() == 'info bar' and S.showing(bar):
                for acc in walk(bar):
                    if acc.get_role_name() == 'label' and acc.get_name():
                        return acc.get_name()
    except GLib.Error:
        assert False, 'the dialog closed: it took what it should have refused'
    return None


def shown(root, role, name):
    for acc in walk(root):
        if acc.get_role_name() == role and acc.get_name() == name and S.showing(acc):
            return acc
    return None


def fill_rule(app, address=None, proto=None, port=None, minutes=None, comment=None):
    """Opens Add…, fills the fields given; returns the dialog."""
    dialog = find(app, role='dialog', name='Add Firewall Rule')
    if proto is not None:
        combo_choose(find(dialog, role='combo box', name='TCP'), proto)
    if address is not None:
        find(dialog, role='text', name='Address:').set_text_contents(address)
    if port is not None:
        find(dialog, role='text', name='Port or service:').set_text_contents(port)
    if minutes is not None:
        click(dialog, 'Remove the rule after', role='check box')
        spin = find(dialog, role='spin button', name='Minutes until the rule is removed')
        S.wait_until(lambda: S.sensitive(spin), 'the minutes sensitive')
        spin.set_current_value(minutes)
    if comment is not None:
        find(dialog, role='text', name='Comment:').set_text_contents(comment)
    return dialog


def run_qvm(args, socket, *argv):
    env = dict(os.environ, QUBESD_SOCKET=socket)
    r = subprocess.run(['/usr/bin/python3', args.qvm] + list(argv), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert r.returncode == 0, f'{" ".join(argv)}: {r.stdout}{r.stderr}'
    return r.stdout


def main():
    args = parse_args()
    return S.run_window_test(args, 'qm-firewall-test-', run)


def open_firewall(app, table, qube):
    S.select_qube(table, qube)
    click(app, 'Settings')
    window = find(app, role='frame', name=f'{qube}: Settings')
    apply = find(window, role='push button', name='Apply')
    S.wait_until(lambda: S.sensitive(apply), f'the settings of {qube} read', 10)
    tab = find(window, role='page tab', name='Firewall')
    tab.get_parent().select_child(tab.get_index_in_parent())
    view = find(window, role='table', name='Firewall rules')
    return window, apply, view


def apply_and_wait(apply):
    S.do_action(apply, 'click')
    S.wait_until(lambda: S.sensitive(apply), 'Apply done and the rules read again', 10)


def run(args, tmp, procs):
    S.prepare_state(args, tmp)
    address, bus = S.start_bus(tmp, procs)
    S.start_qubesd(args, tmp, address, procs)
    try:
        rules(bus)
    except GLib.Error as e:
        print(f'SKIP: this qubesd has no Firewall interface ({e.message})')
        sys.exit(77)
    bus.call(WORK, FIREWALL, 'SetRules', '(aa{ss})', ([UPDATES, DNS, ICMP, DROP],))

    manager = subprocess.Popen([args.qube_manager, f'--bus-address={address}'],
                               env=S.manager_env(args, tmp, 'C'))
    procs.append(manager)
    app = find_app('qube-manager')
    table = find(app, role='tree table', name='Qubes')
    S.wait_until(lambda: S.row_of(table, 'work') is not None, 'work in the list', 10)

    # 1. what qubesd holds, as upstream's tab shows it
    window, apply, view = open_firewall(app, table, 'work')
    # the table and its buttons (the Devices page has a Remove button too)
    page = view.get_parent().get_parent()
    limit = find(window, role='radio button',
                 name='Limit outgoing Internet connections to the rules below')
    allow = find(window, role='radio button', name='Allow all outgoing Internet connections')
    dns = find(window, role='check box', name='Allow DNS queries')
    icmp = find(window, role='check box', name='Allow ICMP traffic')
    S.wait_until(lambda: rows(view), 'the rules shown')
    assert S.checked(limit) and not S.checked(allow)
    assert S.checked(dns) and S.checked(icmp)
    assert rows(view) == [('Allow', 'qubes-os.org', '443', 'TCP', '', 'Updates')], rows(view)
    print('the page shows work\'s rules:', rows(view))
    # without a net qube the rules do nothing: the page says so while it is the case
    note = 'This qube has no net qube: its rules take effect once it has one.'
    assert not shown(window, 'label', note)
    bus.call(WORK, S.DOMAIN, 'SetProperty', '(ss)', ('netvm', ''))
    S.wait_until(lambda: shown(window, 'label', note), 'the note of no net qube', 2)
    bus.call(WORK, S.DOMAIN, 'ResetProperty', '(s)', ('netvm',))
    S.wait_until(lambda: not shown(window, 'label', note), 'the note gone with the net qube', 2)

    # 2. what the dialog refuses is said there, and nothing is sent
    before = rules(bus)
    for fields, says in (({'address': 'not a host'}, 'is not an IP address, a network or a host name'),
                         ({'address': '10.0.0.0/33'}, 'must be at most 32'),
                         ({'port': '70000'}, 'is not a port'),
                         ({'port': '90-80'}, 'ends before it starts'),
                         ({'comment': 'ümlaut'}, 'may have only')):
        click(page, 'Add Rule…')
        dialog = fill_rule(app, **fields)
        click(dialog, 'OK')
        text = S.wait_until(lambda: dialog_error(dialog), f'the dialog refusing {fields}')
        assert says in text, (fields, text)
        assert S.showing(dialog), 'the dialog closed on bad input'
        click(dialog, 'Cancel')
        S.wait_until(lambda: not S.showing(dialog), 'the dialog closed')
    assert len(rows(view)) == 1, rows(view)
    apply_and_wait(apply)
    assert rules(bus) == before, rules(bus)
    print('the dialog refused bad input with a message; nothing was sent')

    # 3. a rule added with the dialog reaches qubesd after Apply, before DNS, ICMP and drop
    click(page, 'Add Rule…')
    dialog = fill_rule(app, address='10.1.2.0/24', port='8000-8080', minutes=30,
                       comment='build cache')
    S.screenshot(args.out_dir, 'qube-manager-firewall-rule-dialog.png')
    click(dialog, 'OK')
    S.wait_until(lambda: not S.showing(dialog), 'the dialog closed')
    now_shown = rows(view)
    assert len(now_shown) == 2 and now_shown[1][:4] == ('Allow', '10.1.2.0/24', '8000-8080',
                                                        'TCP'), now_shown
    assert now_shown[1][4] in ('in 30 min', 'in 29 min') and now_shown[1][5] == 'build cache', \
        now_shown
    now = time.time()
    apply_and_wait(apply)
    held = rules(bus)
    expire = int(held[1].pop('expire'))
    assert abs(expire - (now + 1800)) < 60, (expire, now)
    assert held == [UPDATES, {'action': 'accept', 'dsthost': '10.1.2.0/24', 'proto': 'tcp',
                              'dstports': '8000-8080', 'comment': 'build cache'},
                    DNS, ICMP, DROP], held
    print('a rule added with the dialog is in qubesd:', held[1])

    # 4. a change made with the real qvm-firewall shows in the open page
    if args.qvm and os.path.exists(args.qvm):
        socket = f'{tmp}/qubesd.sock'
        procs.append(subprocess.Popen([args.shim, '--listen', socket, f'--bus-address={address}'],
                                      stderr=open(f'{tmp}/shim.log', 'a')))
        S.wait_until(lambda: os.path.exists(socket), 'the shim listening')
        run_qvm(args, socket, 'qvm-firewall', 'work', 'add', '--before', '0', 'action=drop',
                'dsthost=192.0.2.7', 'comment=blocked by admin')
        how = 'qvm-firewall'
    else:
        bus.call(WORK, FIREWALL, 'SetRules', '(aa{ss})',
                 ([{'action': 'drop', 'dsthost': '192.0.2.7', 'comment': 'blocked by admin'}]
                  + rules(bus),))
        how = 'SetRules from another client (no qubesadmin client here)'
    t0 = time.monotonic()
    S.wait_until(lambda: rows(view) and rows(view)[0][:2] == ('Block', '192.0.2.7/32'),
                 f'the rule added by {how} in the open page', 2)
    print(f'a rule added by {how} showed in the open page in '
          f'{time.monotonic() - t0:.2f} s: {rows(view)[0]}')
    assert len(rows(view)) == 3 and S.checked(limit) and S.checked(dns) and S.checked(icmp)
    S.screenshot(args.out_dir, 'qube-manager-firewall-page.png')

    # 4b. with a change pending here, a change made elsewhere is announced, not shown over it
    S.do_action(icmp, 'click')
    S.wait_until(lambda: not S.checked(icmp), 'ICMP off')
    changed = rules(bus)
    changed[1] = dict(changed[1], dstports='8443')
    bus.call(WORK, FIREWALL, 'SetRules', '(aa{ss})', (changed,))
    show_new = S.wait_until(lambda: shown(window, 'push button', 'Show the New Rules'),
                            'the notice of a change made elsewhere', 2)
    assert not S.checked(icmp) and rows(view)[1][2] == '443', rows(view)
    S.do_action(show_new, 'click')
    S.wait_until(lambda: rows(view)[1][2] == '8443', 'the new rules shown')
    assert S.checked(icmp) and not S.showing(show_new)
    print('a change made elsewhere while one was pending here: announced, then shown')

    # 4c. while a rule dialog is open the rows stay; Cancel, and the change made meanwhile shows
    view.clear_selection()
    view.add_row_selection(1)
    click(page, 'Edit…')
    dialog = find(app, role='dialog', name='Edit Firewall Rule')
    changed = rules(bus)
    changed[1] = dict(changed[1], dstports='9443')
    bus.call(WORK, FIREWALL, 'SetRules', '(aa{ss})', (changed,))
    S.wait_until(lambda: shown(window, 'push button', 'Show the New Rules'),
                 'the notice while the dialog is open', 2)
    assert rows(view)[1][2] == '8443', rows(view)
    click(dialog, 'Cancel')
    S.wait_until(lambda: rows(view)[1][2] == '9443', 'the new rules once the dialog closed')
    assert not shown(window, 'push button', 'Show the New Rules')
    print('a change made while a rule dialog was open: shown once it closed')

    # 5. allow all and back: the table stays, the final rule follows the choice
    table_rules = rules(bus)[:3]
    S.do_action(allow, 'click')
    S.wait_until(lambda: not S.sensitive(dns), 'DNS greyed out under "allow all"')
    apply_and_wait(apply)
    assert rules(bus) == table_rules + [ACCEPT], rules(bus)
    S.wait_until(lambda: S.checked(allow), 'allow all shown after Apply')
    S.do_action(limit, 'click')
    apply_and_wait(apply)
    assert rules(bus) == table_rules + [DNS, ICMP, DROP], rules(bus)
    assert S.checked(limit) and S.checked(dns) and S.checked(icmp)
    # ICMP off, the last rule moved up (first match wins: order matters), the blocked host removed
    S.do_action(icmp, 'click')
    view.clear_selection()
    view.add_row_selection(2)
    click(page, 'Move Up')
    view.clear_selection()
    view.add_row_selection(0)
    click(page, 'Remove')
    apply_and_wait(apply)
    assert rules(bus) == [table_rules[2], table_rules[1], DNS, DROP], rules(bus)
    print('allow all, limit, ICMP off, a rule moved up and one removed: qubesd holds', rules(bus))
    # every rule removed and "allow all": what a qube without firewall.xml has
    for _ in range(len(rows(view))):
        view.clear_selection()
        view.add_row_selection(0)
        click(page, 'Remove')
    S.do_action(allow, 'click')
    apply_and_wait(apply)
    assert rules(bus) == [ACCEPT], rules(bus)
    print('an empty table with allow all: qubesd holds [accept]')

    # 5b. a rule that expires counts down in the open page, and goes when qubesd removes it
    soon = {'action': 'accept', 'dsthost': '192.0.2.1', 'expire': str(int(time.time()) + 3)}
    bus.call(WORK, FIREWALL, 'SetRules', '(aa{ss})', ([soon, ACCEPT],))
    S.wait_until(lambda: rows(view) and rows(view)[0][4] in ('in 3 s', 'in 2 s', 'in 1 s'),
                 'the rule that expires shown with its seconds left', 2)
    first = rows(view)[0][4]
    S.wait_until(lambda: not rows(view) or rows(view)[0][4] != first, 'the seconds counting down', 2)
    S.wait_until(lambda: rows(view) == [], 'the expired rule gone from the page', 6)
    assert rules(bus) == [ACCEPT], rules(bus)
    print(f'a rule expiring in 3 s showed {first!r}, counted down and went')

    # 6. the clone dialog copies the rules
    bus.call(WORK, FIREWALL, 'SetRules', '(aa{ss})', ([UPDATES, DNS, DROP],))
    click(window, 'Cancel')
    S.wait_until(lambda: not S.showing(window), 'the settings closed')
    S.select_qube(table, 'work')
    click(app, 'Clone')
    dialog = find(app, role='dialog', name='Clone Qube')
    find(dialog, role='text', name='Name of the clone').set_text_contents('work-fw')
    click(dialog, 'Clone')
    S.wait_until(lambda: not S.showing(dialog), 'the clone made', 60)
    clone = S.ROOT + '/domain/work_2dfw'
    assert rules(bus, clone) == rules(bus) == [UPDATES, DNS, DROP], (rules(bus, clone), rules(bus))
    print('the clone has the same rules:', rules(bus, clone))

    # 7. dom0 has no firewall: the page says so instead of offering rules
    S.select_qube(table, 'dom0')
    click(app, 'Settings')
    window = find(app, role='frame', name='dom0: Settings')
    tab = find(window, role='page tab', name='Firewall')
    tab.get_parent().select_child(tab.get_index_in_parent())
    S.wait_until(lambda: shown(window, 'label', 'dom0 has no firewall: it has no network.'),
                 "dom0's Firewall page saying it has none")
    assert not shown(window, 'table', 'Firewall rules')
    print("dom0's Firewall page says it has no firewall")
    assert manager.poll() is None, 'qube-manager exited'


if __name__ == '__main__':
    try:
        main()
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
