#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A 1 GiB backup: throughput, qubesd's CPU time and memory.

qubesd (a release build) on a private bus with one qube whose private volume holds 1 GiB of data
(incompressible, the worst case for the filter), backed up to a file in dom0 with compression off,
then with gzip (the default: pigz runs it where it is installed), then a 1 GiB sparse volume with
128 MiB of data. For each: seconds, MB/s of volume data, qubesd's own CPU seconds (user + system:
what the machine's load does not change much), the archive's size, and qubesd's peak RSS (VmHWM,
reset before each case) against its RSS before. The disk's own speed is measured in the same run,
for reference: 1 GiB written by dd through the page cache with an fsync, and with O_DIRECT (how
the writer writes an uncompressed archive in dom0); with compression off the backup should come
close to them.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import harness  # noqa: E402

GIB = 1 << 30


def rss(pid, field):
    with open('/proc/%d/status' % pid) as f:
        return int(re.search(r'%s:\s+(\d+) kB' % field, f.read()).group(1)) / 1024.0


def disk_speed(directory, flags):
    path = os.path.join(directory, 'dd.bin')
    t0 = time.monotonic()
    subprocess.run(['dd', 'if=/dev/zero', 'of=' + path, 'bs=2M', 'count=512'] + flags,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    t = time.monotonic() - t0
    os.unlink(path)
    return GIB / t / 1e6


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class RssSampler:
    """VmRSS every 5 ms while a backup runs: what qubesd holds most of the time, beside the peak
    (VmHWM), which includes the scrypt KDF's 16 MiB for the few tens of ms of each derivation."""

    def __init__(self, pid):
        self.pid, self.samples, self.stop = pid, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(0.005):
            self.samples.append(rss(self.pid, 'VmRSS'))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def median(self):
        s = sorted(self.samples)
        return s[len(s) // 2] if s else float('nan')


def filter_alone(program, path):
    """The compression filter by itself on the same volume, to /dev/null: the floor of a compressed
    backup on this machine."""
    subprocess.run(['sync'])
    t0 = time.monotonic()
    with open(path, 'rb') as src:
        subprocess.run([program, '-c'], stdin=src, stdout=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0


def reset_peak(pid):
    """VmHWM starts again from the current RSS (Linux 4.0+)."""
    try:
        with open('/proc/%d/clear_refs' % pid, 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def fill(path, sparse):
    block = os.urandom(1 << 20)
    with open(path, 'r+b') as f:
        f.truncate(GIB)
        step = (8 << 20) if sparse else (1 << 20)
        for off in range(0, GIB, step):
            f.seek(off)
            f.write(block)
        f.flush()
        os.fsync(f.fileno())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--runner', required=True)
    ap.add_argument('--runs', type=int, default=2)
    args = ap.parse_args()
    os.environ['QUBESD'] = args.qubesd

    d = harness.Daemon(harness.DEMO_XML)
    conf = os.path.join(d.dir, 'etc')
    out = os.path.join(d.dir, 'out')
    os.makedirs(os.path.join(conf, 'backup'))
    os.makedirs(out)
    d.extra_args += ['--config-dir=' + conf, '--qrexec-runner=' + args.runner]
    try:
        d.start()
        pid = d.proc.pid
        print('Backup of a 1 GiB volume to a file in dom0 (%s), best of %d runs:' % (
            os.path.realpath(out), args.runs))
        print('  the disk itself (dd, 1 GiB): %.0f MB/s through the page cache with fsync, %.0f MB/s with O_DIRECT'
              % (disk_speed(out, ['conv=fsync']), disk_speed(out, ['oflag=direct', 'conv=fsync'])))
        for name, sparse in (('full', False), ('sparse', True)):
            d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', name, 'red', '', {}))
            fill(os.path.join(d.state_dir, 'appvms', name, 'private.img'), sparse)
        idle = rss(pid, 'VmRSS')
        print('  qubesd RSS before: %.1f MiB' % idle)
        gzip = 'pigz' if shutil.which('pigz') else 'gzip'
        cases = [('compression off', 'full', 'false', GIB),
                 ('gzip (default, by %s)' % gzip, 'full', 'true', GIB),
                 ('sparse, 128 MiB data, off', 'sparse', 'false', GIB // 8)]
        for label, qube, compression, data in cases:
            best = None
            per_case = reset_peak(pid)
            for i in range(args.runs):
                target = os.path.join(out, 'b.bin')
                with open(os.path.join(conf, 'backup', 'b.conf'), 'w') as f:
                    f.write('destination_vm: dom0\ndestination_path: %s\ninclude: [%s]\ncompression: %s\n'
                            'passphrase_text: bench\n' % (target, qube, compression))
                subprocess.run(['sync'])
                c0 = cpu_seconds(pid)
                t0 = time.monotonic()
                with RssSampler(pid) as sampler:
                    d.call(harness.ROOT_PATH, harness.MANAGER_IFACE, 'ExecuteBackup', 's', ('b',),
                           timeout_ms=3600 * 1000)
                t = time.monotonic() - t0
                cpu = cpu_seconds(pid) - c0
                size = os.path.getsize(target)
                os.unlink(target)
                if best is None or t < best[0]:
                    best = (t, size, cpu, sampler.median())
            t, size, cpu, during = best
            print('  %-26s %6.2f s  %5.0f MB/s of data  qubesd CPU %5.2f s  archive %5.0f MiB  RSS during %.1f MiB (median), peak %.1f MiB%s' % (
                label, t, data / t / 1e6, cpu, size / 1048576.0, during, rss(pid, 'VmHWM'),
                '' if per_case else ' (so far)'))
            if compression == 'true':
                alone = filter_alone(gzip, os.path.join(d.state_dir, 'appvms', qube, 'private.img'))
                print('  %-26s %6.2f s  %5.0f MB/s of data  (the floor of a compressed backup here)' % (
                    '%s -c alone, same volume' % gzip, alone, data / alone / 1e6))
        print('  (the peak RSS includes the scrypt KDF\'s 16 MiB while a chunk\'s keys are derived, one at a time, and'
              ' two 1 MiB buffers per worker; it does not grow with the volume)')
    finally:
        d.stop()
        d.cleanup()


if __name__ == '__main__':
    main()
