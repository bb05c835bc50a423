#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the real tools see: upstream's qvm-* tools (../shared/qubesadmin, unmodified) against
qubesd through the shim's socket door, on tests/data/example-qubes.xml (a file upstream 4.4
loads) and libvirt's test driver, run through a fixed script of read, change, lifecycle and
error commands (tests/integration/data/qvm-compat.txt). Each command's exit status, standard
output and, where it says something, standard error are compared with what upstream prints on
the same qubes.xml and the same libvirt node (written down from the spec and upstream's code;
a line "differs:" marks the few places where qubesd answers differently on purpose, listed in
docs/compatibility.md, with upstream's output beside ours).

File format, one entry per command, in order:
  $ ARGS...            the command (shell quoting)
  = RC                 its exit status
  > LINE               a line of standard output (">~ REGEX": a line matching REGEX)
  2> LINE              a line of standard error (none given: not compared; "2>~ REGEX" as above)
  differs: WHY         qubesd answers differently on purpose; upstream's would be:
  u= RC / u> / u2>     upstream's status, output, error
  unverified: WHY      the message is qubesd's; the spec and the upstream code at hand do not
                       say upstream's text (status and exception class are upstream's)
Paths under the test's state directory are written as /var/lib/qubes.

  test_qvm_compat.py --print   runs the script and prints what the tools said, in this format.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_shim  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, 'data', 'qvm-compat.txt')
BATCH = os.path.join(HERE, 'qvm-batch.py')
QVM = os.environ.get('QUBESADMIN_QVM') or os.path.join(
    os.path.dirname(harness.SOURCE_DIR.rstrip('/')), 'shared', 'qubesadmin', 'qvm')


class Entry:
    def __init__(self, argv, line):
        self.argv = argv
        self.line = line
        self.rc = None
        self.out = []
        self.err = None
        self.differs = None
        self.unverified = None
        self.upstream = {'rc': None, 'out': [], 'err': []}


def parse(path):
    entries = []
    with open(path, encoding='utf-8') as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip('\n')
            if not line or line.startswith('#'):
                continue
            if line.startswith('$ '):
                entries.append(Entry(shlex.split(line[2:]), n))
                continue
            e = entries[-1]
            if line.startswith('= '):
                e.rc = int(line[2:])
            elif line.startswith('>~ ') or line == '>~':
                e.out.append(('re', line[3:]))
            elif line.startswith('> ') or line == '>':
                e.out.append(('eq', line[2:]))
            elif line.startswith('2>~ ') or line == '2>~':
                e.err = (e.err or []) + [('re', line[4:])]
            elif line.startswith('2> ') or line == '2>':
                e.err = (e.err or []) + [('eq', line[3:])]
            elif line.startswith('differs: '):
                e.differs = line[len('differs: '):]
            elif line.startswith('unverified: '):
                e.unverified = line[len('unverified: '):]
            elif line.startswith('u= '):
                e.upstream['rc'] = int(line[3:])
            elif line.startswith('u> ') or line == 'u>':
                e.upstream['out'].append(line[3:])
            elif line.startswith('u2> ') or line == 'u2>':
                e.upstream['err'].append(line[4:])
            else:
                raise ValueError('%s:%d: cannot read %r' % (path, n, line))
    return entries


def normalise(text, state_dir):
    return text.replace(state_dir, '/var/lib/qubes')


class QvmCompat:
    """qubesd on example-qubes.xml with the shim's socket door; run() sends argvs to qvm-batch."""

    def __init__(self):
        self.d = harness.Daemon(harness.EXAMPLE_XML)
        # the kernel of the example is installed in the kernel pool (upstream checks it)
        os.makedirs(os.path.join(self.d.state_dir, 'vm-kernels', '6.6.1-1.fc37'))
        self.d.start()
        deadline = time.monotonic() + 10
        while 'Connected to libvirt' not in self.d.log_tail(200):
            if time.monotonic() > deadline:
                raise AssertionError('qubesd did not connect to libvirt:\n' + self.d.log_tail())
            time.sleep(0.01)
        self.door = test_shim.SocketDoor(test_shim.find_shim(), self.d)

    def run(self, argvs):
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env.update(QUBESD_SOCKET=self.door.path, QUBESADMIN_QVM=QVM, LC_ALL='C.UTF-8', COLUMNS='200')
        r = subprocess.run(['/usr/bin/python3', BATCH], input=json.dumps(argvs).encode(), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if r.returncode != 0:
            raise AssertionError('qvm-batch failed:\n' + r.stderr.decode(errors='replace'))
        return json.loads(r.stdout)

    def close(self):
        self.door.proc.terminate()
        self.door.proc.wait()
        self.door.log.close()
        if self.d.proc is not None:
            status = self.d.stop()
            if status != 0:
                raise AssertionError('qubesd exited with %s:\n%s' % (status, self.d.log_tail()))
        self.d.cleanup()


@unittest.skipUnless(os.access(QVM, os.X_OK), 'upstream client not found at ' + QVM)
class TestQvmCompat(unittest.TestCase):
    def test_script(self):
        entries = parse(SCRIPT)
        self.assertGreater(len(entries), 100)
        c = QvmCompat()
        try:
            t0 = time.monotonic()
            results = c.run([e.argv for e in entries])
            elapsed = time.monotonic() - t0
            failures = []
            for e, r in zip(entries, results):
                out = normalise(r['stdout'], c.d.state_dir).splitlines()
                err = normalise(r['stderr'], c.d.state_dir).splitlines()
                problems = []
                if r['rc'] != e.rc:
                    problems.append('status %d, want %d' % (r['rc'], e.rc))
                # trailing blanks (qvm-prefs pads empty values) are not part of what is compared
                if len(out) != len(e.out) or any(
                        (got.rstrip() != want.rstrip()) if kind == 'eq' else not re.fullmatch(want, got.rstrip())
                        for got, (kind, want) in zip(out, e.out)):
                    problems.append('output:\n    ' + '\n    '.join(out) + '\n  want:\n    ' +
                                    '\n    '.join(w for _, w in e.out))
                if e.err is not None and (len(err) != len(e.err) or any(
                        (got.rstrip() != want.rstrip()) if kind == 'eq' else not re.fullmatch(want, got.rstrip())
                        for got, (kind, want) in zip(err, e.err))):
                    problems.append('error:\n    ' + '\n    '.join(err) + '\n  want:\n    ' +
                                    '\n    '.join(w for _, w in e.err))
                if problems:
                    failures.append('line %d: %s\n  %s' % (e.line, shlex.join(e.argv), '\n  '.join(problems)))
            differ = sum(1 for e in entries if e.differs)
            unverified = sum(1 for e in entries if e.unverified)
            sys.stderr.write('\n%d commands in %.1f s: %d print what upstream prints, %d differ on purpose '
                             '(docs/compatibility.md), %d with a message the spec does not give\n'
                             % (len(entries), elapsed, len(entries) - differ, differ, unverified))
            self.assertEqual(failures, [], '\n\n'.join(failures))
        finally:
            c.close()


def print_script():
    entries = parse(SCRIPT)
    c = QvmCompat()
    try:
        for e, r in zip(entries, c.run([e.argv for e in entries])):
            print('$ ' + shlex.join(e.argv))
            print('= %d' % r['rc'])
            for line in normalise(r['stdout'], c.d.state_dir).splitlines():
                print(('> ' + line).rstrip() if line.strip() else '>')
            for line in normalise(r['stderr'], c.d.state_dir).splitlines():
                print(('2> ' + line) if line else '2>')
    finally:
        c.close()


if __name__ == '__main__':
    if sys.argv[1:] == ['--print']:
        print_script()
    else:
        harness.main()
