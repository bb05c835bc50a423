#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A malformed qubes.xml: qubesd refuses to start, exits non-zero with a message naming the line,
and leaves the file exactly as it was."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Daemon  # noqa: E402

with open(harness.EXAMPLE_XML, encoding='utf-8') as f:
    EXAMPLE = f.read()
LINES = EXAMPLE.split('\n')


def line_of(text, needle, start=0):
    """1-based number of the first line at or after `start` that contains needle."""
    for i, line in enumerate(text.split('\n')[start:], start + 1):
        if needle in line:
            return i
    raise ValueError(needle)


def replace_line(lineno, new):
    lines = list(LINES)
    lines[lineno - 1] = new
    return '\n'.join(lines)


WORK_MEMORY = line_of(EXAMPLE, '<property name="memory">800</property>')
WORK_DOMAIN = line_of(EXAMPLE, '<domain id="domain-4" class="AppVM">')
WORK_QID = line_of(EXAMPLE, '<property name="qid">4</property>')
WORK_LABEL = WORK_MEMORY - 1

CASES = {
    # name: (file text, lines the message may name: the bad line or its <domain> element)
    'unclosed element': (replace_line(WORK_MEMORY, '        <property name="memory">800</propert>'),
                         (WORK_MEMORY,)),
    'truncated file': ('\n'.join(LINES[:WORK_MEMORY]) + '\n', None),
    'unknown class': (replace_line(WORK_DOMAIN, '    <domain id="domain-4" class="FooVM">'), (WORK_DOMAIN,)),
    'property not of this class': (
        replace_line(WORK_MEMORY, '        <property name="dispid">12</property>'), (WORK_MEMORY, WORK_DOMAIN)),
    'unknown property': (replace_line(WORK_MEMORY, '        <property name="no_such">1</property>'),
                         (WORK_MEMORY, WORK_DOMAIN)),
    'bad int': (replace_line(WORK_MEMORY, '        <property name="memory">eight hundred</property>'),
                (WORK_MEMORY, WORK_DOMAIN)),
    'duplicate qid': (replace_line(WORK_QID, '        <property name="qid">2</property>'), (WORK_QID, WORK_DOMAIN)),
    'unknown label': (replace_line(WORK_LABEL, '        <property name="label">mauve</property>'),
                      (WORK_LABEL, WORK_DOMAIN)),
    'not xml': ('this is not xml\n', (1,)),
}


class TestMalformed(unittest.TestCase):
    def run_case(self, name, text, line):
        d = Daemon()
        self.addCleanup(d.cleanup)
        with open(d.xml_path, 'w', encoding='utf-8') as f:
            f.write(text)
        before = os.stat(d.xml_path)
        before_bytes = d.xml_bytes()
        proc = d.spawn()
        try:
            status = proc.wait(timeout=30)
        except Exception:
            proc.kill()
            proc.wait()
            self.fail('%s: qubesd did not exit within 30 s (it should refuse the file)' % name)
        d.proc = None
        d.log.close()
        log = d.log_tail(200)
        self.assertNotEqual(status, 0, '%s: qubesd exited 0 on a malformed qubes.xml:\n%s' % (name, log))
        self.assertGreater(status, 0, '%s: qubesd died of signal %d instead of exiting:\n%s'
                           % (name, -status, log))
        self.assertIn('qubes.xml', log, '%s: the message does not name the file:\n%s' % (name, log))
        if line is not None:
            pattern = '|'.join(r':%d\b|line %d\b' % (n, n) for n in line)
            self.assertRegex(log, pattern, '%s: the message does not name line %s:\n%s'
                             % (name, ' or '.join(map(str, line)), log))
        self.assertEqual(d.xml_bytes(), before_bytes, '%s: qubes.xml was changed' % name)
        after = os.stat(d.xml_path)
        self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns),
                         '%s: qubes.xml was rewritten' % name)
        leftovers = [f for f in os.listdir(d.state_dir) if f.startswith('qubes.xml') and f != 'qubes.xml']
        self.assertEqual(leftovers, [], '%s: files left in the state dir: %s' % (name, leftovers))
        self.assertIsNone(d.name_owner(), '%s: the bus name is still owned' % name)


def make_test(name, text, line):
    def test(self):
        self.run_case(name, text, line)
    return test


for case_name, (case_text, case_line) in CASES.items():
    setattr(TestMalformed, 'test_' + re.sub(r'\W+', '_', case_name), make_test(case_name, case_text, case_line))


class TestWellFormedBaseline(unittest.TestCase):
    def test_example_loads(self):
        """The unmodified example starts fine, so the failures above are about the changes."""
        d = Daemon(harness.EXAMPLE_XML)
        self.addCleanup(d.cleanup)
        d.start()
        self.assertEqual(d.stop(), 0)


if __name__ == '__main__':
    harness.main()
