# SPDX-License-Identifier: LGPL-2.1-or-later
"""How every window test runs: again, inside dbus-run-session (a session bus, and with it an
accessibility bus, of its own) and xvfb-run (a display of its own), with a runtime and a cache
directory of its own too. The accessibility bus's socket lives in $XDG_RUNTIME_DIR/at-spi (or
~/.cache/at-spi without it): two tests that shared it could reach each other's windows, or lose
their own bus when the other ended. No gi here: a test imports this before it knows it can run."""

import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def reexec_under_display(prefix=(), tools=()):
    """Runs the test again under its own buses and display, after prefix (e.g. unshare), and
    exits with its status; returns only in the inner run. Skips when a tool is missing."""
    if os.environ.get('QM_TEST_INNER') == '1':
        return
    for tool in ('xvfb-run', 'dbus-run-session', 'dbus-daemon', 'import') + tuple(tools):
        if shutil.which(tool) is None:
            print(f'SKIP: {tool} is not installed')
            sys.exit(SKIP)
    runtime = tempfile.mkdtemp(prefix='qm-test-runtime-')  # mode 0700, as XDG wants
    try:
        env = dict(os.environ, QM_TEST_INNER='1', XDG_RUNTIME_DIR=runtime,
                   XDG_CACHE_HOME=os.path.join(runtime, 'cache'))
        env.pop('NO_AT_BRIDGE', None)
        env.pop('DBUS_SESSION_BUS_ADDRESS', None)
        cmd = list(prefix) + ['dbus-run-session', '--', 'xvfb-run', '-a', '-s',
                              '-screen 0 1280x800x24', sys.executable] + sys.argv
        status = subprocess.call(cmd, env=env)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    sys.exit(status)


def run_window_test(args, prefix, run):
    """The whole of a window test: again under its own display (reexec_under_display), then
    run(args, tmp, procs) with a temporary directory and the list of processes it starts, both
    gone afterwards whatever happened; prints PASS and returns 0 when run returned."""
    reexec_under_display()
    os.makedirs(args.out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix)
    procs = []
    try:
        run(args, tmp, procs)
    finally:
        from qm_atspi import stop_processes
        stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    print('PASS')
    return 0
