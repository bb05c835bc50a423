#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Durable admin.vm.property.Set with 1 and 8 concurrent clients: the group commit.

For 50 and 1,000 qubes (generated qubes.xml, private dbus-daemon, the shim's socket door with
qubesd's private socket, as installed), bench-shim --set-only sends N durable Sets per client
(a fresh connection per call) with 1 and then 8 clients. Printed beside:
  - the fsync floor measured in the same run, in the same directory: writing a file of
    qubes.xml's size, fsync, rename over it, fsync of the directory (what one save costs), and so
    the most calls/s that one save per call could reach;
  - upstream's figures (shared/FACTS.md): 8 clients 150 calls/s at 50 qubes, 8.1 at 1000.
Run with Debian's /usr/bin/python3 (python3-gi); bench/run passes the paths.
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import harness  # noqa: E402,F401

_spec = importlib.util.spec_from_file_location('bench_sizes', os.path.join(HERE, 'bench-sizes.py'))
bench_sizes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_sizes)

UPSTREAM_8 = {50: 150, 200: 40, 1000: 8.1}  # calls/s, 8 concurrent Set clients (FACTS.md)


def fsync_floor(directory, size, runs=50):
    """Median ms of one durable write of `size` bytes, as app_save does it."""
    data = b'x' * size
    target = os.path.join(directory, 'floor.xml')
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    times = []
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            tmp = target + '~'
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, target)
            os.fsync(dfd)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(dfd)
        try:
            os.unlink(target)
        except OSError:
            pass
    return statistics.median(times)


def bench(args, n):
    d = bench_sizes.new_daemon(n)
    d.init = False  # qubes.xml is there: runs an older qubesd (without --init) as well
    shim = log = None
    failures = 0
    try:
        d.start()
        shim, log, sock = bench_sizes.start_shim(args.shim, d)
        size = os.path.getsize(d.xml_path)
        floor = fsync_floor(d.state_dir, size)
        print('%d qubes (qubes.xml %.0f KB)' % (n, size / 1000))
        print('  %-34s median %.3f ms: one save per call could give at most %.0f calls/s'
              % ('fsync floor (write, fsync, rename, fsync dir)', floor, 1000 / floor))
        qube = 'qube-%05d' % max(3, n // 2)
        r = subprocess.run([args.bench_shim, '--socket', sock, '--calls', str(args.calls), '--qube', qube,
                            '--set-only'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        for line in r.stdout.splitlines():
            extra = ''
            if 'clients=8' in line and n in UPSTREAM_8:
                extra = '   [upstream %s calls/s]' % UPSTREAM_8[n]
            print(line + extra)
        failures += r.returncode != 0 or 'FAILURES' in r.stdout
        if d.stop() != 0:
            print('qubesd did not exit cleanly:\n' + d.log_tail(), file=sys.stderr)
            failures += 1
    finally:
        if shim is not None:
            shim.terminate()
            shim.wait(10)
            log.close()
        d.cleanup()
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--shim', required=True)
    ap.add_argument('--bench-shim', required=True)
    ap.add_argument('--calls', type=int, default=200, help='durable Sets per client')
    ap.add_argument('--sizes', default='50,1000')
    args = ap.parse_args()
    os.environ['QUBESD'] = args.qubesd
    print('durable admin.vm.property.Set, 1 and 8 clients, through the socket door (group commit)')
    failures = 0
    for n in (int(x) for x in args.sizes.split(',')):
        failures += bench(args, n)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
