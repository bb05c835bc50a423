#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The firewall's costs: SetRules (the durable write of firewall.xml, the event and
PropertiesChanged, the network filter call) and GetRulesText latency over D-Bus, and qubesd's
start-up with every qube's firewall.xml present against none, on a generated qubes.xml
(bench-dbus.py's). Starts its own private dbus-daemon and qubesd (QUBESD or --qubesd); times
include the Python client's own cost (about 0.05-0.1 ms a call)."""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import Daemon, domain_path  # noqa: E402
from importlib import import_module  # noqa: E402

bench_dbus = import_module('bench-dbus')
FW = 'org.qubes_os.Admin1.Firewall'
RULES = [{'action': 'accept', 'proto': 'tcp', 'dsthost': '10.%d.0.0/16' % i, 'dstports': '443'} for i in range(9)] + \
        [{'action': 'drop'}]


def start(qubes, with_files):
    d = Daemon()
    with open(d.xml_path, 'w') as f:
        f.write(bench_dbus.synthetic_xml(qubes).replace('dir_path="/var/lib/qubes', 'dir_path="' + d.state_dir))
    if with_files:
        xml = ('<firewall version="2">\n  <rules>\n' + ''.join(
            '    <rule>\n      <properties>\n        <property name="action">accept</property>\n'
            '        <property name="dsthost">10.%d.0.0/16</property>\n        <property name="proto">tcp</property>\n'
            '        <property name="dstports">443</property>\n      </properties>\n    </rule>\n' % i
            for i in range(10)) + '  </rules>\n</firewall>\n')
        for qid in range(3, qubes):
            p = os.path.join(d.state_dir, 'appvms', 'qube-%05d' % qid)
            os.makedirs(p, exist_ok=True)
            with open(os.path.join(p, 'firewall.xml'), 'w') as f:
                f.write(xml)
    d.start_bus()
    t0 = time.perf_counter()
    d.start()
    return d, (time.perf_counter() - t0) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--qubesd', default=os.environ.get('QUBESD'))
    ap.add_argument('--qubes', type=int, default=1000)
    ap.add_argument('--calls', type=int, default=500)
    ap.add_argument('--starts', type=int, default=3)
    args = ap.parse_args()
    if args.qubesd:
        os.environ['QUBESD'] = args.qubesd

    print('Firewall, %d qubes, qubesd %s' % (args.qubes, os.environ.get('QUBESD', '(default)')))
    for with_files in (False, True):
        times = []
        for _ in range(args.starts):
            d, t = start(args.qubes, with_files)
            times.append(t)
            rss = bench_dbus.rss_kib(d.proc.pid)['VmRSS'] / 1024.0
            d.stop()
            d.cleanup()
        print('  %-34s median %8.1f ms   RSS %.1f MiB   [%d starts]'
              % ('start-up, ' + ('a firewall.xml per qube' if with_files else 'no firewall.xml'),
                 sorted(times)[len(times) // 2], rss, len(times)))

    d, _ = start(args.qubes, False)
    try:
        path = domain_path('qube-%05d' % (args.qubes // 2))

        def set_rules():
            d.call(path, FW, 'SetRules', 'aa{ss}', (RULES,))

        def get_text():
            d.call(path, FW, 'GetRulesText')

        bench_dbus.report('SetRules (10 rules, durable)', bench_dbus.timed(set_rules, args.calls))
        bench_dbus.report('GetRulesText (10 rules)', bench_dbus.timed(get_text, args.calls))
    finally:
        d.stop()
        d.cleanup()


if __name__ == '__main__':
    main()
