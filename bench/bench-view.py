#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a local user who sees only some qubes pays for it (issues 4 and 18): qubesd on a private
system bus with a real polkitd and the example rules (alice manages the qubes tagged
managed-by-alice), N generated qubes of which one in 30 is alice's. Prints the ListDomains round
trip for alice (first call of her first connection, nothing of hers on the bus before: one polkit
question per qube; then from the kept answers; then a second connection of hers), for carol (group
qubes: one read-all question) and root; then, each on a fresh qubesd, alice's first listing when
a process of hers (as her login session's) came onto the bus some time before it.

Each row also gives the polkit questions (CheckAuthorization calls on the bus, counted by a
dbus-monitor) asked while that first call ran, and since the user's first process appeared, and
qubesd's CPU time (from /proc) over the row.

Needs root, polkitd, dbus-monitor, setpriv and useradd (as tests/integration/test_polkit.py, whose
set-up it reuses); prints a line saying it skipped otherwise."""

import argparse
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))

# the client of test_polkit.py, timing each call (wall-clock start and end, for the monitor)
TIMED = '''
import json, sys, time
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib
conn = Gio.DBusConnection.new_for_address_sync(sys.argv[1],
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
out = []
for _ in range(int(sys.argv[2])):
    w, t = time.time(), time.monotonic()
    r = conn.call_sync('org.qubes_os.Admin1', '/org/qubes_os/Admin1', 'org.qubes_os.Admin1.Manager',
                       'ListDomains', None, None, Gio.DBusCallFlags.NONE, 120000, None)
    out.append([(time.monotonic() - t) * 1000, len(r.unpack()[0]), w, time.time()])
json.dump(out, sys.stdout)
'''

# a process of the user on the bus (as the peers of a login session are), doing nothing
PRESENT = '''
import sys, time
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio
conn = Gio.DBusConnection.new_for_address_sync(sys.argv[1],
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
print('ready', flush=True)
sys.stdin.read()
'''


def as_user(user):
    return ['setpriv', '--reuid=' + user, '--regid=' + user, '--init-groups', '/usr/bin/python3', '-c']


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--qubes', type=int, default=300)
    ap.add_argument('--ahead', type=float, nargs='*', default=[2.0, 0.3],
                    help='seconds between the user\'s first process on the bus and the listing')
    args = ap.parse_args()
    os.environ['QUBESD'] = args.qubesd
    import test_polkit  # noqa: E402 (needs QUBESD set)

    report = []

    class Bench(test_polkit.PolkitTest):
        def setUp(self):
            super().setUp()
            self.monitor = subprocess.Popen(['dbus-monitor', '--address', self.address, '--profile',
                                             "type='method_call',member='CheckAuthorization'"],
                                            stdout=subprocess.PIPE, text=True)
            self.addCleanup(self.monitor.kill)
            time.sleep(0.3)
            for i in range(args.qubes):
                name = 'q%04d' % i
                self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', name, 'red', '', {}))
                if i % 30 == 0:
                    self.d.domain(name, 'AddTag', 's', ('managed-by-alice',))

        def questions(self):
            """The times of the CheckAuthorization calls seen so far."""
            time.sleep(0.3)
            self.monitor.terminate()
            out, _ = self.monitor.communicate(timeout=30)
            return [float(line.split('\t')[1]) for line in out.splitlines() if line.startswith('mc\t')]

        def cpu(self):
            with open('/proc/%d/stat' % self.d.proc.pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf('SC_CLK_TCK')

        def timed(self, user, since=None, cpu=None):
            since = since or time.time()
            cpu = self.cpu() if cpu is None else cpu
            r = subprocess.run(as_user(user) + [TIMED, self.address, '3'],
                               capture_output=True, text=True, timeout=600, check=True)
            return since, json.loads(r.stdout), self.cpu() - cpu

        def row(self, label, since, calls, cpu, asked):
            first = calls[0]
            during = sum(1 for t in asked if first[2] <= t <= first[3])
            before = sum(1 for t in asked if since <= t < first[2])
            report.append('  %-34s %s (sees %d qubes; polkit questions during the 1st call %d, before it %d;'
                          ' qubesd CPU %.0f ms)' % (label, '  '.join('%.1f' % ms for ms, *_ in calls), first[1],
                                                     during, before, cpu))

        def test_view(self):
            rows = []
            for user, label in (('alice', 'alice, 1st connection'), ('alice', 'alice, 2nd connection'),
                                ('carol', 'carol (group qubes)'), ('root', 'root')):
                rows.append((label,) + self.timed(user))
            asked = self.questions()
            for label, since, calls, cpu in rows:
                self.row(label, since, calls, cpu, asked)

        def ahead(self, delay):
            since, cpu = time.time(), self.cpu()
            present = subprocess.Popen(as_user('alice') + [PRESENT, self.address],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.addCleanup(present.kill)
            self.assertEqual(present.stdout.readline().strip(), 'ready')
            time.sleep(delay)
            _, calls, cpu = self.timed('alice', since, cpu)
            present.stdin.close()
            present.wait(timeout=30)
            present.stdout.close()
            self.row('alice, %.1f s after her 1st process' % delay, since, calls, cpu, self.questions())

    for delay in args.ahead:
        setattr(Bench, 'test_ahead_%d' % int(delay * 1000), lambda self, d=delay: self.ahead(d))
    tests = ['test_view'] + ['test_ahead_%d' % int(d * 1000) for d in args.ahead]
    result = unittest.TextTestRunner(stream=open(os.devnull, 'w')).run(
        unittest.TestSuite([Bench(t) for t in tests]))
    if result.skipped:
        print('What a restricted local user pays: skipped (%s)' % result.skipped[0][1])
        return 0
    if not result.wasSuccessful():
        for _, tb in result.errors + result.failures:
            print(tb, file=sys.stderr)
        return 1
    print('What a restricted local user pays: ListDomains with %d qubes, 3 calls per connection, ms'
          % (args.qubes + 7))
    print('\n'.join(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
