#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GUI test of the Qube Manager's Backup and Restore windows against a real qubesd on a private bus.

Runs itself again inside dbus-run-session (for the accessibility bus) and xvfb-run, and drives the
windows through AT-SPI. Checks: the Backup window lists the qubes checked as include_in_backups
says; choosing one qube, a destination, a passphrase and a profile name backs it up (the progress
bar ends at Done, the archive is there, the profile is saved, no temporary profile is left) and
the "Last backup" column of the qube fills in; a running backup is cancelled with the window's
button and leaves no file; the Restore window reads the archive (listing its qube) and restores
it after the qube was removed, with its bytes. Saves screenshots in --out-dir. Exit 77 = skipped.
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
MANAGER = 'org.qubes_os.Admin1.Manager'
DOMAIN = 'org.qubes_os.Admin1.Domain'


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--qube-manager', required=True)
    p.add_argument('--qubesd', required=True)
    p.add_argument('--runner', required=True)
    p.add_argument('--restore', required=True)
    p.add_argument('--qubes-xml', required=True)
    p.add_argument('--out-dir', required=True)
    return p.parse_args()


def reexec_under_display():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import qm_display
    qm_display.reexec_under_display(tools=('scrypt',))


try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import Bus, find, find_app, stop_processes, walk  # noqa: E402
except (ImportError, ValueError) as e:
    print(f'SKIP: python3-gi with gir1.2-atspi-2.0 is needed ({e})')
    sys.exit(SKIP)


def do_action(acc, wanted):
    for i in range(acc.get_n_actions()):
        if acc.get_action_name(i) == wanted:
            return acc.do_action(i)
    raise AssertionError(f'{acc.get_role_name()} {acc.get_name()!r} has no action {wanted}')


def screenshot(out_dir, name):
    path = os.path.join(out_dir, name)
    subprocess.run(['import', '-window', 'root', path], check=True)
    print(f'screenshot: {path}')


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.1)


def progress_text(dialog, name):
    bar = find(dialog, role='progress bar', name=name)
    # GTK gives a progress bar's text as its accessible description or value text
    for getter in ('get_description', 'get_name'):
        text = getattr(bar, getter)()
        if text and text != name:
            return text
    try:
        return bar.get_value_text() if hasattr(bar, 'get_value_text') else ''
    except Exception:
        return ''


def labels(dialog):
    return [a.get_name() for a in walk(dialog) if a.get_role_name() == 'label']


def table_rows(table):
    """[(checked, [cell texts])] of a table whose first column is a check box."""
    rows = []
    for r in range(table.get_n_rows()):
        toggle = table.get_accessible_at(r, 0)
        texts = [table.get_accessible_at(r, c).get_name() for c in range(1, table.get_n_columns())]
        rows.append((toggle.get_state_set().contains(Atspi.StateType.CHECKED), texts, toggle))
    return rows


def set_checked(table, wanted):
    """Check exactly the rows whose name is in wanted (clicking the toggles)."""
    for checked, texts, toggle in table_rows(table):
        if checked != (texts[0] in wanted):
            if os.environ.get('QM_TEST_DUMP'):
                print('DUMP actions', [toggle.get_action_name(i) for i in range(toggle.get_n_actions())])
            do_action(toggle, 'toggle')
            time.sleep(0.3)
            if os.environ.get('QM_TEST_DUMP'):
                print('DUMP after', [(c, t[0]) for c, t, _ in table_rows(table)])
    wait(lambda: all(c == (t[0] in wanted) for c, t, _ in table_rows(table)), 5, 'the check boxes')


def last_backup_cell(app, qube):
    table = find(app, role='tree table', name='Qubes')
    cols = [table.get_column_header(c).get_name() for c in range(table.get_n_columns())]
    for r in range(table.get_n_rows()):
        if table.get_accessible_at(r, cols.index('Name')).get_name() == qube:
            return table.get_accessible_at(r, cols.index('Last backup')).get_name()
    return None


def main():
    args = parse_args()
    if os.environ.get('QM_TEST_INNER') != '1':
        reexec_under_display()
    os.makedirs(args.out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='qm-backup-test-')
    procs = []
    try:
        run(args, tmp, procs)
    except BaseException:
        with open(f'{tmp}/qubesd.log', errors='replace') as f:
            print('qubesd log:\n' + f.read()[-3000:])
        raise
    finally:
        stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    print('PASS')


def run(args, tmp, procs):
    for d in ('state', 'config', 'etc/backup', 'out'):
        os.makedirs(f'{tmp}/{d}')
    with open(args.qubes_xml) as f:
        xml = f.read().replace('/var/lib/qubes', f'{tmp}/state')
    with open(f'{tmp}/state/qubes.xml', 'w') as f:
        f.write(xml)
    address = f'unix:path={tmp}/bus'
    procs.append(subprocess.Popen(['dbus-daemon', '--session', f'--address={address}',
                                   '--nofork', '--nopidfile']))
    wait(lambda: os.path.exists(f'{tmp}/bus'), 5, 'the bus')
    bus = Bus(address)
    procs.append(subprocess.Popen([args.qubesd, f'--bus-address={address}', f'--state-dir={tmp}/state',
                                   '--libvirt-uri=test:///default', f'--config-dir={tmp}/etc',
                                   f'--qrexec-runner={args.runner}'],
                                  stderr=open(f'{tmp}/qubesd.log', 'a')))
    wait(bus.has_owner, 15, 'qubesd')

    # a qube with data to back up, one not included by default, one big one to cancel
    bus.call(ROOT, MANAGER, 'CreateDomain', '(ssssa{ss})', ('AppVM', 'guibk', 'purple', '', {}))
    data = os.urandom(300 * 1024) + b'the end'
    with open(f'{tmp}/state/appvms/guibk/private.img', 'r+b') as f:
        f.write(data)
    with open(f'{tmp}/state/appvms/guibk/private.img', 'rb') as f:
        volume = f.read()
    bus.call(f'{ROOT}/domain/work', DOMAIN, 'SetProperty', '(ss)', ('include_in_backups', 'False'))
    bus.call(ROOT, MANAGER, 'CreateDomain', '(ssssa{ss})', ('AppVM', 'guibig', 'red', '', {}))
    with open(f'{tmp}/state/appvms/guibig/private.img', 'r+b') as f:
        block = os.urandom(1 << 20)
        for _ in range(400):
            f.write(block)

    env = dict(os.environ, XDG_CONFIG_HOME=f'{tmp}/config', GSETTINGS_BACKEND='memory',
               LANGUAGE='C', LC_ALL='C.UTF-8', QUBES_BACKUP_RESTORE=args.restore, HOME=tmp)
    manager = subprocess.Popen([args.qube_manager, f'--bus-address={address}'], env=env)
    procs.append(manager)
    app = find_app('qube-manager')
    find(app, role='tree table', name='Qubes', timeout=20)

    # 1. the Backup window: include_in_backups decides what is checked
    do_action(find(app, role='push button', name='Back Up'), 'click')
    dialog = find(app, role='dialog', name='Back Up Qubes')
    if os.environ.get('QM_TEST_DUMP'):
        for a in walk(dialog):
            print('DUMP', a.get_role_name(), repr(a.get_name()))
    table = find(dialog, role='table', name='Qubes to back up')
    rows = wait(lambda: table_rows(table) if table.get_n_rows() >= 6 else None, 10, 'the qubes in the list')
    checked = {t[0] for c, t, _ in rows if c}
    assert 'guibk' in checked and 'guibig' in checked, checked
    assert 'work' not in checked and 'dom0' not in checked, checked

    # 2. back up one qube, saving the settings as a profile
    set_checked(table, {'guibk'})
    find(dialog, role='text', name='Backup path').set_text_contents(f'{tmp}/out')
    find(dialog, role='password text', name='Passphrase').set_text_contents('gui ✓ pass')
    find(dialog, role='password text', name='Passphrase again').set_text_contents('gui ✓ pass')
    find(dialog, role='text', name='Save as profile').set_text_contents('from-the-gui')
    button = find(dialog, role='push button', name='Back Up')
    wait(lambda: button.get_state_set().contains(Atspi.StateType.SENSITIVE), 5, 'Back Up to be sensitive')
    screenshot(args.out_dir, 'qube-manager-backup-dialog.png')
    do_action(button, 'click')
    wait(lambda: any((l or '').startswith('The backup is complete') for l in labels(dialog)), 120,
         'the end of the backup: ' + ' / '.join(filter(None, labels(dialog))))
    screenshot(args.out_dir, 'qube-manager-backup-done.png')
    archives = os.listdir(f'{tmp}/out')
    assert len(archives) == 1 and archives[0].startswith('qubes-'), archives
    profiles = sorted(os.listdir(f'{tmp}/etc/backup'))
    assert profiles == ['from-the-gui.conf'], profiles
    with open(f'{tmp}/etc/backup/from-the-gui.conf') as f:
        assert 'include:\n- guibk\n' in f.read()
    # the "Last backup" column follows backup_timestamp
    stamp = wait(lambda: last_backup_cell(app, 'guibk'), 5, 'the Last backup column of guibk')
    print('Last backup of guibk:', stamp)

    # 2b. a backup that fails at once (its directory is missing): the job's error is shown
    find(dialog, role='text', name='Save as profile').set_text_contents('')
    find(dialog, role='text', name='Backup path').set_text_contents(f'{tmp}/nowhere/x.bin')
    do_action(button, 'click')
    wait(lambda: any('the backup directory for' in (l or '') for l in labels(dialog)), 30,
         'the error of the failed backup: ' + ' / '.join(filter(None, labels(dialog))))
    assert any((l or '').startswith('The backup failed') for l in labels(dialog)), labels(dialog)
    assert sorted(os.listdir(f'{tmp}/etc/backup')) == ['from-the-gui.conf'], 'the run profile stays'

    # 3. cancel a running backup with the window's button: no file stays
    set_checked(table, {'guibig'})
    find(dialog, role='text', name='Save as profile').set_text_contents('')
    find(dialog, role='text', name='Backup path').set_text_contents(f'{tmp}/out/big.bin')
    find(dialog, role='check box', name='Compress the backup').do_action(0)  # off: a long, steady run
    do_action(button, 'click')
    cancel = find(dialog, role='push button', name='Cancel Backup')
    def backup_jobs():
        nodes = [p for p in bus.call(f'{ROOT}/job', 'org.freedesktop.DBus.Introspectable',
                                     'Introspect')[0].split('"') if p.startswith('_')]
        return [f'{ROOT}/job/{n}' for n in nodes
                if bus.call(f'{ROOT}/job/{n}', 'org.freedesktop.DBus.Properties', 'Get', '(ss)',
                            ('org.qubes_os.Admin1.Job', 'State'))[0] == 'running']
    job = wait(backup_jobs, 10, 'the job')[-1]
    wait(lambda: bus.call(job, 'org.freedesktop.DBus.Properties', 'Get', '(ss)',
                          ('org.qubes_os.Admin1.Job', 'BytesDone'))[0] > 0, 30, 'progress')
    screenshot(args.out_dir, 'qube-manager-backup-running.png')
    do_action(cancel, 'click')
    wait(lambda: find(dialog, role='push button', name='Close', timeout=1), 20, 'the Close button again')
    assert not os.path.exists(f'{tmp}/out/big.bin'), 'a cancelled backup left its file'
    assert sorted(os.listdir(f'{tmp}/etc/backup')) == ['from-the-gui.conf'], os.listdir(f'{tmp}/etc/backup')
    do_action(find(dialog, role='push button', name='Close'), 'click')

    # 4. the Restore window: read the archive, restore the qube after it was removed
    bus.call(f'{ROOT}/domain/guibk', DOMAIN, 'Remove')
    do_action(find(app, role='push button', name='Restore'), 'click')
    rdialog = find(app, role='dialog', name='Restore Qubes')
    find(rdialog, role='text', name='Backup file').set_text_contents(f'{tmp}/out/{archives[0]}')
    find(rdialog, role='password text', name='Passphrase').set_text_contents('gui ✓ pass')
    read = find(rdialog, role='push button', name='Read')
    wait(lambda: read.get_state_set().contains(Atspi.StateType.SENSITIVE), 5, 'Read to be sensitive')
    do_action(read, 'click')
    rtable = find(rdialog, role='table', name='Qubes in the backup')
    rows = wait(lambda: table_rows(rtable) if rtable.get_n_rows() else None, 60,
                'the qubes of the archive: ' + ' / '.join(filter(None, labels(rdialog))))
    assert [t[0] for c, t, _ in rows] == ['guibk'], rows
    assert rows[0][0], 'guibk is not checked'
    screenshot(args.out_dir, 'qube-manager-restore-dialog.png')
    restore = find(rdialog, role='push button', name='Restore')
    wait(lambda: restore.get_state_set().contains(Atspi.StateType.SENSITIVE), 5, 'Restore to be sensitive')
    do_action(restore, 'click')
    wait(lambda: 'Restored' in [t[-1] for c, t, _ in table_rows(rtable)], 120,
         'the restore: ' + ' / '.join(filter(None, labels(rdialog))))
    screenshot(args.out_dir, 'qube-manager-restore-done.png')
    assert [t[0] for c, t, _ in table_rows(rtable)] == ['guibk'], table_rows(rtable)
    names = [d[0] for d in bus.call(ROOT, MANAGER, 'ListDomains')[0]]
    assert 'guibk' in names, names
    with open(f'{tmp}/state/appvms/guibk/private.img', 'rb') as f:
        assert f.read() == volume, 'the restored volume differs'
    label = bus.call(f'{ROOT}/domain/guibk', DOMAIN, 'GetProperty', '(s)', ('label',))[2]
    assert label == 'purple', label

    # a wrong passphrase: the window says so, nothing is listed
    find(rdialog, role='password text', name='Passphrase').set_text_contents('wrong')
    do_action(read, 'click')
    wait(lambda: any('Is the password correct' in (l or '') for l in labels(rdialog)), 60,
         'the wrong passphrase message: ' + ' / '.join(filter(None, labels(rdialog))))
    assert rtable.get_n_rows() == 0
    print('Backup and Restore windows: OK')


if __name__ == '__main__':
    main()
