#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reads while 20 qubes start at once (upstream issue 10773: qubesd froze while qubes started).

qubesd with a generated qubes.xml on libvirt's test:///default driver; 20 qubes are started with
one StartQubes job and shut down again with one ShutdownQubes job, round after round for a few
seconds, while a separate client on its own connection calls GetProperty and ListDomains back to
back. Prints the latency of those reads while the qubes start and while they stop (p50, p99, max
and the number of reads: enough for a p99) and how long the rounds took.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import harness  # noqa: E402
from gi.repository import Gio, GLib  # noqa: E402

_spec = importlib.util.spec_from_file_location('bench_dbus', os.path.join(HERE, 'bench-dbus.py'))
bench_dbus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_dbus)


def wait_job(d, path, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = d.conn.call_sync(harness.BUS_NAME, path, 'org.freedesktop.DBus.Properties', 'Get',
                                 GLib.Variant('(ss)', ('org.qubes_os.Admin1.Job', 'State')), None,
                                 Gio.DBusCallFlags.NONE, 10000, None).unpack()[0]
        if state not in ('running', 'queued', 'pending'):
            return state
        time.sleep(0.01)
    raise RuntimeError('job %s did not finish' % path)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--qubes', type=int, default=50)
    ap.add_argument('--rounds', type=int, default=5, help='at least this many rounds …')
    ap.add_argument('--seconds', type=float, default=8, help='… and at least this long')
    args = ap.parse_args()
    os.environ['QUBESD'] = args.qubesd

    d = harness.Daemon()
    try:
        with open(d.xml_path, 'w') as f:
            f.write(bench_dbus.synthetic_xml(args.qubes).replace('dir_path="/var/lib/qubes',
                                                                 'dir_path="' + d.state_dir))
        os.makedirs(os.path.join(d.state_dir, 'vm-kernels', '6.6.1-1.fc37'), exist_ok=True)
        d.start()
        listed = [row[0] for row in d.manager('ListDomains')[0]]
        names = [n for n in listed if n != 'dom0'][:20]
        target = names[len(names) // 2]
        for n in names:  # no netvm: the starts are the 20 qubes themselves
            d.domain(n, 'SetProperty', 'ss', ('netvm', ''))

        conn = Gio.DBusConnection.new_for_address_sync(
            d.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        samples = {}
        window = {'phase': None, 'stop': False}

        def measure():
            path = harness.domain_path(target)
            while not window['stop']:
                phase = window['phase']
                t = time.perf_counter()
                conn.call_sync(harness.BUS_NAME, path, harness.DOMAIN_IFACE, 'GetProperty',
                               GLib.Variant('(s)', ('memory',)), None, Gio.DBusCallFlags.NONE, 10000, None)
                t1 = time.perf_counter()
                conn.call_sync(harness.BUS_NAME, harness.ROOT_PATH, harness.MANAGER_IFACE, 'ListDomains',
                               None, None, Gio.DBusCallFlags.NONE, 10000, None)
                t2 = time.perf_counter()
                # a read counts for a phase only if the phase held from its start to its end
                if phase and window['phase'] == phase:
                    samples.setdefault((phase, 'get'), []).append((t1 - t) * 1000)
                    samples.setdefault((phase, 'list'), []).append((t2 - t1) * 1000)

        th = threading.Thread(target=measure)
        th.start()
        rounds = {'start': [], 'stop': []}
        try:
            # the same reads with nothing starting: what the machine itself adds
            window['phase'] = 'idle'
            time.sleep(min(3.0, args.seconds / 2))
            window['phase'] = None
            t_begin = time.monotonic()
            while len(rounds['start']) < args.rounds or time.monotonic() - t_begin < args.seconds:
                t0 = time.perf_counter()
                window['phase'] = 'start'
                state = wait_job(d, d.manager('StartQubes', 'as', (names,))[0])
                window['phase'] = None
                rounds['start'].append((time.perf_counter() - t0) * 1000)
                if state != 'succeeded':
                    raise RuntimeError('StartQubes: %s' % state)
                t0 = time.perf_counter()
                window['phase'] = 'stop'
                wait_job(d, d.manager('ShutdownQubes', 'asb', (names, False))[0])
                window['phase'] = None
                rounds['stop'].append((time.perf_counter() - t0) * 1000)
        finally:
            window['stop'] = True
            th.join()
            conn.close_sync(None)
        print('Reads while 20 qubes start, and while they stop (%d qubes, libvirt test driver, %d rounds: '
              'StartQubes median %.0f ms, ShutdownQubes median %.0f ms; a D-Bus client on its own connection, '
              'GDBus from Python)' % (args.qubes, len(rounds['start']), statistics.median(rounds['start']),
                                      statistics.median(rounds['stop'])))
        for phase in ('idle', 'start', 'stop'):
            for key, label in (('get', 'GetProperty'), ('list', 'ListDomains (%d qubes)' % len(listed))):
                v = samples.get((phase, key), [])
                what = '%s while they %s' % (label, phase) if phase != 'idle' else '%s, nothing starting' % label
                if not v:
                    print('  %-40s no read during the %ss' % (what, phase))
                    continue
                print('  %-40s p50 %7.3f ms   p99 %7.3f   max %7.3f   (%d reads)   [target: p99 within 2 ms]'
                      % (what, statistics.median(v), pct(v, 0.99), max(v), len(v)))
        d.stop()
    finally:
        d.cleanup()


if __name__ == '__main__':
    main()
