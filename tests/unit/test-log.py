#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""lib/util/log.c as journald and a terminal read it.

The helper (tests/unit/log-helper.c) logs a few lines. On a plain pipe (a terminal, a file) they
must read as text, without journald's "<N>" priority prefixes. With stderr as journald's stream
(JOURNAL_STREAM=<dev>:<ino> of stderr, as systemd sets it) they must reach journald as
structured entries: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, ERRNO, and QUBES_VM for a line about a
qube. journald is faked by a datagram socket at /run/systemd/journal/socket inside a private
mount namespace (unshare -m), so the machine's /run is untouched; needs root, skips otherwise.
Usage: test-log.py HELPER
"""

import os
import shutil
import socket
import subprocess
import sys
import unittest

HELPER = None
JOURNAL_DIR = '/run/systemd/journal'


def parse_native(datagram):
    """journald's native protocol: KEY=value lines, or KEY\\n<le64 size><value>\\n."""
    fields = {}
    i = 0
    while i < len(datagram):
        nl = datagram.index(b'\n', i)
        line = datagram[i:nl]
        if b'=' in line:
            k, v = line.split(b'=', 1)
            i = nl + 1
        else:
            k = line
            size = int.from_bytes(datagram[nl + 1:nl + 9], 'little')
            v = datagram[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
        fields[k.decode()] = v.decode()
    return fields


class Helper:
    def run_helper(self, journal_stream, extra=()):
        """Runs the helper with stderr on a pipe; journal_stream: None (unset), 'match' (stderr's
        device:inode) or 'other'. Returns its stderr text."""
        r, w = os.pipe()
        st = os.fstat(w)
        env = {k: v for k, v in os.environ.items() if k != 'JOURNAL_STREAM'}
        if journal_stream == 'match':
            env['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino)
        elif journal_stream == 'other':
            env['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino + 1)
        p = subprocess.Popen([HELPER] + list(extra), stderr=w, env=env)
        os.close(w)
        with os.fdopen(r, 'rb') as f:
            out = f.read().decode()
        self.assertEqual(p.wait(10), 0)
        return out


class LogTest(Helper, unittest.TestCase):
    def test_terminal_has_no_priority_prefix(self):
        out = self.run_helper(None)
        self.assertEqual(out, 'plain line 1\nStarting qube work\nCannot open /nowhere: No such file or directory\n'
                              'Refused an oversized request from sys-net\n')
        # a child whose stderr is not the journal's stream, though it inherited the variable
        self.assertEqual(self.run_helper('other'), out)
        debug = self.run_helper(None, ['--debug']).splitlines()
        self.assertEqual(len(debug), 5)
        self.assertRegex(debug[4], r'^debug line \(.*log-helper\.c:\d+ main\)$')

    @unittest.skipIf(os.geteuid() != 0 or not shutil.which('unshare'), 'needs root and unshare (a private /run)')
    def test_journal_gets_structured_fields(self):
        # the rest runs in a private mount namespace: see inner()
        r = subprocess.run(['unshare', '-m', '--propagation', 'private', sys.executable, __file__, HELPER, '--inner'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors='replace'))


class InnerJournalTest(Helper, unittest.TestCase):
    """Inside the private mount namespace: a fake journald at the real socket path."""

    def setUp(self):
        subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', '/run'], check=True)
        os.makedirs(JOURNAL_DIR)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(JOURNAL_DIR + '/socket')
        self.sock.setblocking(False)
        self.addCleanup(self.sock.close)

    def entries(self):
        got = []
        while True:
            try:
                got.append(parse_native(self.sock.recv(65536)))
            except BlockingIOError:
                return got

    def test_structured(self):
        out = self.run_helper('match')
        self.assertEqual(out, '', 'lines sent to journald are not printed as well')
        e = self.entries()
        self.assertEqual([x['MESSAGE'] for x in e],
                         ['plain line 1', 'Starting qube work', 'Cannot open /nowhere: No such file or directory',
                          'Refused an oversized request from sys-net'])
        self.assertEqual([x['PRIORITY'] for x in e], ['6', '6', '3', '5'])
        self.assertEqual([x.get('QUBES_VM') for x in e], [None, 'work', None, 'sys-net'])
        self.assertEqual(e[2]['ERRNO'], '2')
        self.assertNotIn('ERRNO', e[0])
        for x in e:
            self.assertEqual(x['SYSLOG_IDENTIFIER'], os.path.basename(HELPER))
            self.assertTrue(x['CODE_FILE'].endswith('log-helper.c'), x)
            self.assertEqual(x['CODE_FUNC'], 'main')

    def test_journald_gone_falls_back_to_prefixes(self):
        self.sock.close()
        os.unlink(JOURNAL_DIR + '/socket')
        out = self.run_helper('match')
        self.assertEqual(out.splitlines(), ['<6>plain line 1', '<6>Starting qube work',
                                            '<3>Cannot open /nowhere: No such file or directory',
                                            '<5>Refused an oversized request from sys-net'])


if __name__ == '__main__':
    HELPER = os.path.abspath(sys.argv[1])
    inner = len(sys.argv) > 2 and sys.argv[2] == '--inner'
    del sys.argv[1:3 if inner else 2]
    if inner:
        suite = unittest.TestLoader().loadTestsFromTestCase(InnerJournalTest)
        result = unittest.TextTestRunner(verbosity=2).run(suite)
        sys.exit(0 if result.wasSuccessful() else 1)
    suite = unittest.TestLoader().loadTestsFromTestCase(LogTest)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
