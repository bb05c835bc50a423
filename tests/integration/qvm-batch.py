#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run many of upstream's qvm-* tools (../shared/qubesadmin, unmodified) quickly.

Reads a JSON list of argument vectors (["qvm-prefs", "work"], …) on stdin and writes a JSON list
of {"rc", "stdout", "stderr"} on stdout. The client is imported once; every command then runs
in a process of its own (forked, the tool's module imported there), as `qvm TOOL ARGS` would run
it, with its own stdout, stderr and exit status: one interpreter start instead of one per
command. Transport and socket as for
the `qvm` runner (QUBESD_SOCKET).
"""

import importlib
import io
import json
import os
import sys
import tempfile

QVM = os.environ.get('QUBESADMIN_QVM') or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'qubesadmin', 'qvm')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(QVM)), 'client'))

import qubesadmin  # noqa: E402
import qubesadmin.app  # noqa: E402
import qubesadmin.config  # noqa: E402

if os.environ.get('QUBESD_SOCKET'):
    qubesadmin.config.QUBESD_SOCKET = os.environ['QUBESD_SOCKET']
qubesadmin.Qubes = qubesadmin.app.QubesLocal


def run(argv, tmp):
    tool = argv[0]
    out_path, err_path = os.path.join(tmp, 'out'), os.path.join(tmp, 'err')
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # imported here, after argv is the tool's: a parser built at import takes its name
            sys.argv = list(argv)
            module = importlib.import_module('qubesadmin.tools.' + tool.replace('-', '_'))
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, 'wb', closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, 'wb', closefd=False), write_through=True)
            sys.stdin = open(os.devnull)
            try:
                code = module.main()
            except SystemExit as e:
                code = e.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                sys.stderr.write('%s\n' % code)
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException as e:  # noqa: B902 (the child must never return)
            try:
                sys.stderr.write('qvm-batch: %r\n' % e)
                sys.stderr.flush()
            except BaseException:
                pass
        finally:
            os._exit(code if isinstance(code, int) else 1)
    _, status = os.waitpid(pid, 0)
    with open(out_path, encoding='utf-8', errors='replace') as f:
        stdout = f.read()
    with open(err_path, encoding='utf-8', errors='replace') as f:
        stderr = f.read()
    return {'rc': os.waitstatus_to_exitcode(status), 'stdout': stdout, 'stderr': stderr}


def main():
    commands = json.load(sys.stdin)
    with tempfile.TemporaryDirectory(prefix='qvm-batch-') as tmp:
        results = [run(argv, tmp) for argv in commands]
    json.dump(results, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main())
