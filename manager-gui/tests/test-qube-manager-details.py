#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GUI test of what the Qube Manager shows and offers beyond the bare list, against a real qubesd.

Runs itself again inside dbus-run-session (for the accessibility bus) and xvfb-run. Checks, as a
user sees them through AT-SPI:
- the Notes column shows the first line of a qube's notes; the search finds a qube by its notes;
  notes set over D-Bus show within 2 s (NotesChanged);
  notes written in the settings window show in the list after Apply;
- sizes are in binary units (bytes, KiB, MiB, GiB), the same as the memory, never kB or GB;
- the disk usage of a qube that starts is read again: data written to its private image while
  the window is open shows within seconds of the start;
- a qube's settings show the name, the class and the other identity values as read-only text,
  not fields, and Updateable as Yes or No, not True or False;
- the kernel is chosen among the installed kernels (the linux-kernel pool's volumes), with
  "default (...)" and "none"; choosing one sets it, choosing the default resets it;
- the New Qube dialog offers the pools that can hold a qube (not the kernel pool), creates the
  qube's volumes in the pool chosen, and opens the new qube's settings when asked to.
Saves screenshots in --out-dir. Exit 77 = skipped.
"""
import os
import re
import subprocess
import sys
import time
import warnings

warnings.simplefilter('ignore', DeprecationWarning)

try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi  # noqa: F401 (qm_session needs it loaded)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import find, find_app, walk  # noqa: E402
    import qm_session as S  # noqa: E402
except (ImportError, ValueError) as e:
    print(f'SKIP: python3-gi with gir1.2-atspi-2.0 is needed ({e})')
    sys.exit(77)

WORK = S.ROOT + '/domain/work'
UNITS = {'bytes': 1, 'KiB': 1 << 10, 'MiB': 1 << 20, 'GiB': 1 << 30, 'TiB': 1 << 40}


def size_of(text):
    """The bytes a size as the list shows it means; fails on any other unit."""
    # (g_format_size puts a no-break space between the figure and the unit)
    m = re.fullmatch(r'([0-9.]+)[ \u00a0](bytes|KiB|MiB|GiB|TiB)', text or '')
    assert m, f'not a size in binary units: {text!r}'
    return float(m.group(1)) * UNITS[m.group(2)]


def disk_usage(bus, qube):
    total = 0
    for _, path in bus.call(S.ROOT, S.MANAGER, 'ListVolumes', '(s)', (qube,))[0]:
        total += bus.call(path, S.PROPERTIES, 'Get', '(ss)', (S.VOLUME, 'Usage'))[0]
    return total


def combo_items(combo):
    """The rows of a GtkComboBox (its popup menu's items)."""
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


def open_settings(app, table, qube):
    S.select_qube(table, qube)
    button = find(app, role='push button', name='Settings')
    S.wait_until(lambda: S.sensitive(button), 'Settings sensitive')
    S.do_action(button, 'click')
    window = find(app, role='frame', name=f'{qube}: Settings')
    apply = find(window, role='push button', name='Apply')
    S.wait_until(lambda: S.sensitive(apply), f'the settings of {qube} read', 10)
    return window, apply


def page(window, name):
    tabs = find(window, role='page tab list')
    names = [tabs.get_child_at_index(i).get_name() for i in range(tabs.get_child_count())]
    tabs.select_child(names.index(name))


def main():
    args = S.parse_args()
    return S.run_window_test(args, 'qm-details-test-', run)


def run(args, tmp, procs):
    state = S.prepare_state(args, tmp)
    address, bus = S.start_bus(tmp, procs)
    S.start_qubesd(args, tmp, address, procs)
    bus.call(WORK, S.DOMAIN, 'SetNotes', '(s)', ('\n   Banking only  \nno browsing\n',))
    # a second file pool, which the New Qube dialog must offer
    os.makedirs(f'{tmp}/alt')
    bus.call(S.ROOT, S.MANAGER, 'AddPool', '(sa(ss))',
             ('file', [('name', 'alt'), ('dir_path', f'{tmp}/alt')]))

    manager = subprocess.Popen([args.qube_manager, f'--bus-address={address}'],
                               env=S.manager_env(args, tmp, 'C'))
    procs.append(manager)
    app = find_app('qube-manager')
    table = find(app, role='tree table', name='Qubes')
    S.wait_until(lambda: S.row_of(table, 'work') is not None, 'work in the list', 10)

    # 1. Notes: the first line that is not blank, without its spaces
    assert 'Notes' in S.table_cells(table)[0], S.table_cells(table)[0]
    S.wait_until(lambda: S.cell(table, 'work', 'Notes') == 'Banking only',
                 f'the notes of work in the list (shows {S.cell(table, "work", "Notes")!r})')
    assert S.cell(table, 'sys-net', 'Notes') == '', S.cell(table, 'sys-net', 'Notes')
    search = find(app, role='text', name='Search')
    search.set_text_contents('banking')
    S.wait_until(lambda: S.row_of(table, 'sys-net') is None and S.row_of(table, 'work') is not None,
                 'the search to find work by its notes')
    search.set_text_contents('')
    S.wait_until(lambda: S.row_of(table, 'sys-net') is not None, 'the whole list again')
    print('Notes column: work shows "Banking only"; the search finds it by its notes')
    # notes set elsewhere (qvm-notes, another window) show as soon as qubesd says they changed
    bus.call(WORK, S.DOMAIN, 'SetNotes', '(s)', ('Shopping\n',))
    S.wait_until(lambda: S.cell(table, 'work', 'Notes') == 'Shopping',
                 f'notes set over D-Bus in the list (shows {S.cell(table, "work", "Notes")!r})', 2)
    print('notes set over D-Bus show in the list (NotesChanged)')

    # 2. binary units everywhere: work's 1 MiB of data, the others' nothing
    S.wait_until(lambda: S.cell(table, 'work', 'Disk usage') == '1.0\u00a0MiB',
                 f'work\'s disk usage (shows {S.cell(table, "work", "Disk usage")!r})')
    for qube in ('default-dvm', 'fedora-42', 'sys-net', 'work'):
        size_of(S.cell(table, qube, 'Disk usage'))
    print('disk usage in binary units:', {q: S.cell(table, q, 'Disk usage')
                                         for q in ('work', 'fedora-42')})

    # 3. the usage follows what the qube wrote, once it starts
    with open(f'{state}/appvms/work/private.img', 'r+b') as f:
        f.seek(64 << 20)
        f.write(os.urandom(3 << 20))
    S.select_qube(table, 'work')
    start = find(app, role='push button', name='Start')
    S.wait_until(lambda: S.sensitive(start), 'Start sensitive')
    S.do_action(start, 'click')
    S.wait_until(lambda: bus.call(WORK, S.PROPERTIES, 'Get', '(ss)', (S.DOMAIN, 'PowerState'))[0]
                 == 'Running', 'work running')
    expected = disk_usage(bus, 'work')
    assert expected >= 4 << 20, expected
    S.wait_until(lambda: abs(size_of(S.cell(table, 'work', 'Disk usage')) - expected)
                 < 0.05 * expected,
                 f'the new disk usage of work ({expected} bytes; shows '
                 f'{S.cell(table, "work", "Disk usage")!r})', 5)
    print('after the start, work shows', S.cell(table, 'work', 'Disk usage'))
    kill = find(app, role='push button', name='Kill')
    S.do_action(kill, 'click')
    confirm = find(app, role='alert', timeout=5)
    S.do_action(find(confirm, role='push button', name='Kill'), 'click')
    S.wait_until(lambda: bus.call(WORK, S.PROPERTIES, 'Get', '(ss)', (S.DOMAIN, 'PowerState'))[0]
                 == 'Halted', 'work halted', 10)

    # 4. the identity is text, not fields; Updateable says Yes or No
    window, apply = open_settings(app, table, 'work')
    for title, value in (('Name', 'work'), ('Class', 'AppVM'), ('Qube ID', None),
                         ('Updateable', 'No')):
        acc = S.labelled(window, title)
        assert acc.get_role_name() == 'label', (title, acc.get_role_name())
        assert not acc.get_state_set().contains(Atspi.StateType.EDITABLE), title
        if value is not None:
            assert acc.get_name() == value, (title, acc.get_name())
    print('work: Name, Class, Qube ID and Updateable are read-only text; Updateable: No')

    # 5. the kernel: the installed ones, the default, none
    page(window, 'Advanced')
    kernel = S.labelled(window, 'Kernel')
    items = combo_items(kernel)
    assert items == ['default (6.6.1-1.fc37)', 'none'] + list(S.KERNELS), items
    S.screenshot(args.out_dir, 'qube-manager-settings-kernel.png')
    choose(kernel, '6.12.9-1.fc41')
    S.do_action(apply, 'click')
    S.wait_until(lambda: not S.sensitive(apply), 'Apply working', 2)
    S.wait_until(lambda: S.sensitive(apply), 'Apply done', 10)
    _, is_default, value = bus.call(WORK, S.DOMAIN, 'GetProperty', '(s)', ('kernel',))
    assert (value, is_default) == ('6.12.9-1.fc41', False), (value, is_default)
    kernel = S.labelled(window, 'Kernel')
    assert combo_items(kernel)[0] == 'default (6.6.1-1.fc37)', combo_items(kernel)
    choose(kernel, 'default (6.6.1-1.fc37)')
    S.do_action(apply, 'click')
    S.wait_until(lambda: not S.sensitive(apply), 'Apply working', 2)
    S.wait_until(lambda: S.sensitive(apply), 'Apply done', 10)
    _, is_default, value = bus.call(WORK, S.DOMAIN, 'GetProperty', '(s)', ('kernel',))
    assert (value, is_default) == ('6.6.1-1.fc37', True), (value, is_default)
    print('kernel chooser: set 6.12.9-1.fc41, then back to the default')

    # ... and the notes written here show in the list
    page(window, 'Notes')
    find(window, role='text', name='Notes').set_text_contents('Tax papers\nand more')
    S.do_action(find(window, role='push button', name='OK'), 'click')
    S.wait_until(lambda: not S.showing(window), 'the settings window closed', 10)
    S.wait_until(lambda: S.cell(table, 'work', 'Notes') == 'Tax papers',
                 'the new notes of work in the list', 3)
    print('notes written in the settings show in the list')

    # the template's Updateable
    window, apply = open_settings(app, table, 'fedora-42')
    page(window, 'Advanced')
    assert S.labelled(window, 'Updateable').get_name() == 'Yes'
    S.do_action(find(window, role='push button', name='Cancel'), 'click')

    # 6. New Qube: the pools that can hold it; its settings open after it is made
    S.do_action(find(app, role='push button', name='New'), 'click')
    dialog = find(app, role='dialog', name='New Qube')
    find(dialog, role='text', name='Name').set_text_contents('made-in-alt')
    pool = S.labelled(dialog, 'Storage pool')
    S.wait_until(lambda: 'alt' in combo_items(pool), 'the pools listed')
    assert combo_items(pool) == ['default (varlibqubes)', 'varlibqubes', 'alt'], combo_items(pool)
    choose(pool, 'alt')
    also = find(dialog, role='check box', name='Open the settings after creating the qube')
    assert not S.checked(also)
    S.do_action(also, 'click')
    S.screenshot(args.out_dir, 'qube-manager-create-pool.png')
    S.do_action(find(dialog, role='push button', name='Create'), 'click')
    window = find(app, role='frame', name='made-in-alt: Settings', timeout=10)
    pools = {name: bus.call(path, S.PROPERTIES, 'Get', '(ss)', (S.VOLUME, 'Pool'))[0]
             for name, path in bus.call(S.ROOT, S.MANAGER, 'ListVolumes', '(s)',
                                        ('made-in-alt',))[0]}
    assert pools['private'] == 'alt' and pools['volatile'] == 'alt', pools
    assert os.path.exists(f'{tmp}/alt/appvms/made-in-alt'), os.listdir(f'{tmp}/alt')
    print('New Qube made made-in-alt in the pool alt and opened its settings:', pools)
    assert manager.poll() is None, 'qube-manager exited'


if __name__ == '__main__':
    try:
        main()
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
