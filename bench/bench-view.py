#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a local user who sees only some qubes pays for it (issue 4): qubesd on a private system
bus with a real polkitd and the example rules (alice manages the qubes tagged managed-by-alice),
N generated qubes of which one in 30 is alice's. Prints the ListDomains round trip for alice
(first call of her first connection: one polkit question per qube; then from the kept answers;
then a second connection of hers), for carol (group qubes: one read-all question) and root.

Needs root, polkitd, setpriv and useradd (as tests/integration/test_polkit.py, whose set-up it
reuses); prints a line saying it skipped otherwise."""

import argparse
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))

# the client of test_polkit.py, timing each call
TIMED = '''
import json, sys, time
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib
conn = Gio.DBusConnection.new_for_address_sync(sys.argv[1],
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
out = []
for _ in range(int(sys.argv[2])):
    t = time.monotonic()
    r = conn.call_sync('org.qubes_os.Admin1', '/org/qubes_os/Admin1', 'org.qubes_os.Admin1.Manager',
                       'ListDomains', None, None, Gio.DBusCallFlags.NONE, 120000, None)
    out.append([(time.monotonic() - t) * 1000, len(r.unpack()[0])])
json.dump(out, sys.stdout)
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--qubes', type=int, default=300)
    args = ap.parse_args()
    os.environ['QUBESD'] = args.qubesd
    import test_polkit  # noqa: E402 (needs QUBESD set)

    report = []

    class Bench(test_polkit.PolkitTest):
        def test_view(self):
            for i in range(args.qubes):
                name = 'q%04d' % i
                self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', name, 'red', '', {}))
                if i % 30 == 0:
                    self.d.domain(name, 'AddTag', 's', ('managed-by-alice',))
            for user, label in (('alice', 'alice, 1st connection'), ('alice', 'alice, 2nd connection'),
                                ('carol', 'carol (group qubes)'), ('root', 'root')):
                r = subprocess.run(['setpriv', '--reuid=' + user, '--regid=' + user, '--init-groups',
                                    '/usr/bin/python3', '-c', TIMED, self.address, '3'],
                                   capture_output=True, text=True, timeout=600, check=True)
                calls = json.loads(r.stdout)
                report.append('  %-24s %s (sees %d qubes)' % (
                    label, '  '.join('%.1f' % ms for ms, _ in calls), calls[0][1]))

    result = unittest.TextTestRunner(stream=open(os.devnull, 'w')).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(Bench))
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
