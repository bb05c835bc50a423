#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Admin API through qubes-admin-shim at several sizes (50, 200 and 1,000 qubes by default).

For each size, on a private dbus-daemon with a generated qubes.xml:
  - qubesd start-up time (spawn to bus name owned) and RSS, over repeated starts;
  - through the socket door (bench-shim): admin.vm.property.Get, GetAll, admin.vm.List and durable
    admin.vm.property.Set, 1 and 8 clients, a fresh connection per call;
  - through the qrexec service door (bench-admin service): one call including the shim's
    process start;
  - admin.Events fan-out (bench-admin events): 20 subscribers through the socket door, events/s
    delivered while durable Sets run, none lost.
Every figure is a median with its spread; upstream's figures (shared/FACTS.md) are printed beside
where they exist. Run with Debian's /usr/bin/python3 (python3-gi); bench/run passes the paths.
"""

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import harness  # noqa: E402

_spec = importlib.util.spec_from_file_location('bench_dbus', os.path.join(HERE, 'bench-dbus.py'))
bench_dbus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_dbus)

# Upstream qubesd 4.4 (Python) on the same kind of machine, its own socket (shared/FACTS.md).
UPSTREAM = {
    'admin.vm.property.Get': {50: '0.28 ms'},
    'admin.vm.property.GetAll': {50: '0.66 ms'},
    'admin.vm.List': {50: '0.72 ms', 200: '2.1 ms'},
    'admin.vm.property.Set (durable)': {50: '6.5 ms', 200: '22.6 ms'},
    'start-up': {50: '0.5 s'},
    'RSS': {50: '57 MB'},
    'service admin.vm.List': {50: '143 ms qvm-ls end to end', 200: '358 ms qvm-ls end to end'},
}


def upstream(what, n):
    ref = UPSTREAM.get(what)
    if not ref:
        return ''
    if n in ref:
        return '   [upstream %s]' % ref[n]
    known = ', '.join('%s at %d' % (v, k) for k, v in sorted(ref.items()))
    return '   [upstream: %s; none at %d]' % (known, n)


def spread(values, unit, fmt='%.1f'):
    s = sorted(values)
    return ('median ' + fmt + ' %s  (min ' + fmt + ', max ' + fmt + ', %d runs)') % (
        statistics.median(s), unit, s[0], s[-1], len(s))


def rss_kib(pid):
    return bench_dbus.rss_kib(pid).get('VmRSS', 0)


def new_daemon(n):
    d = harness.Daemon()
    with open(d.xml_path, 'w') as f:
        f.write(bench_dbus.synthetic_xml(n).replace('dir_path="/var/lib/qubes', 'dir_path="' + d.state_dir))
    os.makedirs(os.path.join(d.state_dir, 'vm-kernels', '6.6.1-1.fc37'), exist_ok=True)
    # as installed: qubesd serves trusted clients (the shim) on its private socket too
    d.extra_args.append('--private-socket=' + os.path.join(d.dir, 'private'))
    d.start_bus()
    return d


def measure_startup(n, runs):
    times, rss = [], []
    for _ in range(runs):
        d = new_daemon(n)
        try:
            t0 = time.perf_counter()
            d.start()
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.05)
            rss.append(rss_kib(d.proc.pid) / 1024)
            d.stop()
        finally:
            d.cleanup()
    return times, rss


def start_shim(shim, d):
    path = os.path.join(d.dir, 'qubesd.sock')
    log = open(os.path.join(d.dir, 'shim.log'), 'ab')
    proc = subprocess.Popen([shim, '--listen', path, '--bus-address=' + d.address,
                             '--private-socket=' + os.path.join(d.dir, 'private')],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError('qubes-admin-shim did not listen on %s' % path)
        time.sleep(0.005)
    return proc, log, path


def run_and_annotate(cmd, n, timeout=900):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    for line in r.stdout.splitlines():
        m = re.match(r'\s+(\S.*?)\s{2,}', line)
        label = m.group(1).strip() if m else ''
        # upstream's figures are for one client at a time
        print(line + ('' if 'clients=' in line and 'clients=1 ' not in line else upstream(label, n)))
    return r.returncode


def bench_size(args, n):
    print('%d qubes' % n)
    times, rss = measure_startup(n, args.starts)
    print('  %-34s %s%s' % ('start-up (spawn to name owned)', spread(times, 'ms'), upstream('start-up', n)))
    print('  %-34s %s%s' % ('qubesd RSS after start-up', spread(rss, 'MiB'), upstream('RSS', n)))

    d = new_daemon(n)
    failures = 0
    shim_proc = log = None
    try:
        d.start()
        pid = d.proc.pid
        shim_proc, log, sock = start_shim(args.shim, d)
        qube = 'qube-%05d' % max(3, n // 2)
        print('  socket door (bench-shim: a connection per call, request, half-close, reply):')
        failures += run_and_annotate([args.bench_shim, '--socket', sock, '--calls', str(args.calls),
                                      '--qube', qube, '--set'], n) != 0
        print('  qrexec service door (bench-admin: process start, QREXEC_* env, stdin payload):')
        failures += run_and_annotate([args.bench_admin, 'service', '--shim', args.shim, '--bus', d.address,
                                      '--calls', str(args.service_calls), '--qube', qube], n) != 0
        failures += run_and_annotate([args.bench_admin, 'events', '--socket', sock, '--subscribers', '20',
                                      '--sets', str(args.event_sets), '--setters', '4', '--qube', qube], n) != 0
        print('  %-34s %.1f MiB after all the calls' % ('qubesd RSS', rss_kib(pid) / 1024))
        if d.stop() != 0:
            print('qubesd did not exit cleanly:\n' + d.log_tail(), file=sys.stderr)
            failures += 1
    finally:
        if shim_proc is not None:
            shim_proc.terminate()
            try:
                shim_proc.wait(10)
            except subprocess.TimeoutExpired:
                shim_proc.kill()
                shim_proc.wait()
            log.close()
        d.cleanup()
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--shim', required=True)
    ap.add_argument('--bench-shim', required=True)
    ap.add_argument('--bench-admin', required=True)
    ap.add_argument('--sizes', default='50,200,1000')
    ap.add_argument('--starts', type=int, default=7, help='repeated start-ups per size')
    ap.add_argument('--calls', type=int, default=2000, help='socket door calls per kind')
    ap.add_argument('--service-calls', type=int, default=100)
    ap.add_argument('--event-sets', type=int, default=400)
    args = ap.parse_args()
    os.environ['QUBESD'] = args.qubesd

    print('Admin API through qubes-admin-shim (private dbus-daemon; median and spread: p10/p90 of the '
          'calls, min/max of the runs)')
    failures = 0
    for n in (int(x) for x in args.sizes.split(',')):
        failures += bench_size(args, n)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
