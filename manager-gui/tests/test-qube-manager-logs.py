#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GUI test of a qube's Logs window: the journal entries about it (QUBES_VM=<qube>).

Needs root: it runs in a private mount namespace (unshare -m) with tmpfs over /run/systemd,
/run/log and /var/log/journal and a real systemd-journald of its own there, so the machine's
journal is untouched; then inside dbus-run-session and xvfb-run like the other window tests.
Checks, through AT-SPI:
- with qubesd outside journald (its standard error to a file, as the demo runs it) the window
  says that qubesd's messages are not in this journal, instead of an empty list;
- with qubesd under journald (standard error on journald's stream, JOURNAL_STREAM set, as its
  unit runs it), the window lists the entries about that qube, with the fields qubesd writes
  (lib/util/log.c: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=qubesd, QUBES_VM), and not the entries
  about another qube; an entry written while it is open appears within a second; a qube with no
  entry yet is said to have none.
Exit 77 = skipped.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings

warnings.simplefilter('ignore', DeprecationWarning)

SKIP = 77
JOURNAL = '/run/systemd/journal'


def in_namespace():
    """A journald of our own in a private mount namespace; returns its process."""
    for target in ('/run/systemd', '/run/log', '/var/log/journal'):
        os.makedirs(target, exist_ok=True)
        subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', target], check=True)
    journald = subprocess.Popen(['/lib/systemd/systemd-journald'], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (os.path.exists(f'{JOURNAL}/socket') and os.path.exists(f'{JOURNAL}/stdout')):
        assert time.monotonic() < deadline, 'journald did not start'
        time.sleep(0.05)
    return journald


if os.environ.get('QM_LOGS_NS') != '1':
    if os.geteuid() != 0 or shutil.which('unshare') is None \
            or not os.access('/lib/systemd/systemd-journald', os.X_OK):
        print('SKIP: needs root, unshare and systemd-journald (a journal of its own)')
        sys.exit(SKIP)
    env = dict(os.environ, QM_LOGS_NS='1')
    sys.exit(subprocess.call(['unshare', '-m', '--propagation', 'private', sys.executable]
                             + sys.argv, env=env))

try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi  # noqa: F401
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import find, find_app, walk  # noqa: E402
    import qm_session as S  # noqa: E402
except (ImportError, ValueError) as e:
    print(f'SKIP: python3-gi with gir1.2-atspi-2.0 is needed ({e})')
    sys.exit(SKIP)


def log_as_qubesd(qube, message, priority=6):
    """An entry with the fields qubesd's log_qube_*() write (lib/util/log.c)."""
    fields = [f'MESSAGE={message}', f'PRIORITY={priority}', 'SYSLOG_IDENTIFIER=qubesd',
              'CODE_FILE=../service/lifecycle.c', 'CODE_FUNC=qube_start', f'QUBES_VM={qube}']
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(('\n'.join(fields) + '\n').encode(), f'{JOURNAL}/socket')


def journal_stream(identifier):
    """A connection to journald's stream, as systemd gives a unit's standard error, and the
    JOURNAL_STREAM value that says so."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(f'{JOURNAL}/stdout')
    # identifier, unit, priority, level prefix, forward to syslog, kmsg, console
    s.sendall(f'{identifier}\n\n6\n1\n0\n0\n0\n'.encode())
    st = os.fstat(s.fileno())
    return s, f'{st.st_dev}:{st.st_ino}'


def open_logs(app, table, qube):
    S.select_qube(table, qube)
    S.menu_item(app, 'Qube', 'Logs')
    window = find(app, role='frame', name=f'{qube}: Logs')
    return window, find(window, role='table', name='Journal entries')


def entries(view):
    return [(view.get_accessible_at(r, 1).get_name(), view.get_accessible_at(r, 2).get_name())
            for r in range(view.get_n_rows())]


def info(window):
    return ' '.join(a.get_name() for a in walk(window)
                    if a.get_role_name() == 'label' and S.showing(a) and a.get_name())


def close(window):
    S.do_action(find(window, role='push button', name='Close'), 'click')
    S.wait_until(lambda: not S.showing(window), 'the Logs window closed')


def main():
    args = S.parse_args()
    if os.environ.get('QM_TEST_INNER') != '1':
        journald = in_namespace()
        try:
            S.reexec_under_display()
        finally:
            journald.terminate()
            journald.wait(5)
    return S.run_window_test(args, 'qm-logs-test-', run)


def run(args, tmp, procs):
    S.prepare_state(args, tmp)
    address, bus = S.start_bus(tmp, procs)
    # as the demo runs it: standard error to a file, nothing in the journal
    qubesd = S.start_qubesd(args, tmp, address, procs)

    manager = subprocess.Popen([args.qube_manager, f'--bus-address={address}'],
                               env=S.manager_env(args, tmp, 'C'))
    procs.append(manager)
    app = find_app('qube-manager')
    table = find(app, role='tree table', name='Qubes')
    S.wait_until(lambda: S.row_of(table, 'work') is not None, 'the list', 10)

    # 1. qubesd outside journald: the window says so
    window, view = open_logs(app, table, 'work')
    text = S.wait_until(lambda: info(window), 'the window\'s explanation')
    assert 'not in the journal of this system' in text, text
    assert entries(view) == [], entries(view)
    S.screenshot(args.out_dir, 'qube-manager-logs-no-journald.png')
    close(window)
    print('without journald: "qubesd\'s messages are not in the journal of this system"')

    # 2. qubesd under journald, as its unit runs it
    qubesd.terminate()
    qubesd.wait(10)
    stream, value = journal_stream('qubesd')
    S.start_qubesd(args, tmp, address, procs, stderr=stream.fileno(),
                   env=dict(os.environ, JOURNAL_STREAM=value))
    stream.close()
    S.wait_until(lambda: S.row_of(table, 'work') is not None, 'the list again', 10)
    log_as_qubesd('work', 'Starting qube work')
    log_as_qubesd('sys-net', 'Refused an oversized request from sys-net', 5)
    time.sleep(0.3)   # journald writes what it received in order; the window reads the files

    window, view = open_logs(app, table, 'work')
    S.wait_until(lambda: entries(view), 'the entries about work')
    assert entries(view) == [('info', 'Starting qube work')], entries(view)
    assert 'not in the journal' not in info(window), info(window)

    # an entry written while the window is open shows within a second
    before = time.monotonic()
    log_as_qubesd('work', 'Shutdown of work took longer than 60 s', 4)
    S.wait_until(lambda: len(entries(view)) == 2, 'the new entry about work', 1)
    print(f'new entry shown after {(time.monotonic() - before) * 1000:.0f} ms')
    assert entries(view)[1] == ('warning', 'Shutdown of work took longer than 60 s'), \
        entries(view)
    S.screenshot(args.out_dir, 'qube-manager-logs.png')
    close(window)
    print('under journald: work\'s entries and only those, followed while open')

    # 3. a qube with no entry yet
    window, view = open_logs(app, table, 'default-dvm')
    text = S.wait_until(lambda: info(window), 'the window\'s explanation')
    assert 'no entries about default-dvm' in text, text
    assert entries(view) == []
    close(window)
    assert manager.poll() is None, 'qube-manager exited'


if __name__ == '__main__':
    try:
        main()
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
