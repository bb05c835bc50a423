#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""CreateDisposable with and without a preloaded disposable, on a real QEMU guest.

qubesd on qemu:///system with a disposable template whose disposables boot the tiny CI guest
(scripts/ci-libvirt-setup: Debian's cloud kernel and a busybox initramfs that prints
QUBESD-GUEST-UP on its serial console). For each run it measures, from the CreateDisposable call:
  reply    the call's answer: the disposable runs (libvirt) and is the caller's;
  console  its console shows QUBESD-GUEST-UP (read from the pty GetConsole names).
once with preload-dispvm-max=0 (a fresh disposable each time) and once with 1 (the hand-out of a
paused one; the refill of each run is awaited before the next). Needs root and libvirtd; says why
and exits 0 when it cannot run.
"""

import argparse
import os
import select
import shutil
import statistics
import sys
import termios
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import harness  # noqa: E402
import test_qemu_guest  # noqa: E402

TPL = 'bench-dvm'


def wait(what, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError('timed out waiting for ' + what)
        time.sleep(0.02)


def feature(d, qube, name):
    try:
        return d.domain(qube, 'GetFeature', 's', (name,))[0]
    except harness.DBusError:
        return None


def console_marker(d, name, marker=b'QUBESD-GUEST-UP', timeout=120):
    pty = d.domain(name, 'GetConsole')[0]
    fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd, termios.TCSANOW)
        got = b''
        deadline = time.monotonic() + timeout
        while marker not in got:
            if time.monotonic() > deadline:
                raise RuntimeError('%s did not print %r' % (name, marker))
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                got += os.read(fd, 4096)
        return time.monotonic()
    finally:
        os.close(fd)


def ready_preload(d):
    def check():
        v = feature(d, TPL, 'preload-dispvm')
        names = v.split() if v else []
        if len(names) != 1:
            return None
        q = names[0]
        if d.dbus_get(harness.domain_path(q), harness.DOMAIN_IFACE, 'PowerState') != 'Paused':
            return None
        return q
    return wait('a paused preloaded disposable', check)


def run(d, runs, preload):
    reply, console = [], []
    d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '1' if preload else '0'))
    for _ in range(runs):
        if preload:
            ready_preload(d)
            time.sleep(0.5)  # let the paused guest settle: no boot work is timed by accident
        t0 = time.monotonic()
        name = d.manager('CreateDisposable', 's', (TPL,))[0]
        t1 = time.monotonic()
        t2 = console_marker(d, name)
        reply.append((t1 - t0) * 1000)
        console.append((t2 - t0) * 1000)
        d.domain(name, 'Kill')
    d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-max', '0'))
    return reply, console


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--runs', type=int, default=5)
    args = ap.parse_args()
    os.environ['QUBESD'] = args.qubesd
    why = test_qemu_guest.why_not_runnable()
    if why:
        print('preloaded disposables on QEMU: skipped (%s)' % why)
        return 0

    d = harness.Daemon(harness.DEMO_XML, ['--libvirt-uri=' + test_qemu_guest.URI])
    try:
        for p in (d.dir, d.state_dir):
            os.chmod(p, 0o755)
        kdir = os.path.join(d.state_dir, 'vm-kernels', 'ci')
        os.makedirs(kdir)
        for p in (os.path.dirname(kdir), kdir):
            os.chmod(p, 0o755)
        for f in ('vmlinuz', 'initramfs'):
            shutil.copy(os.path.join(test_qemu_guest.GUEST_DIR, f), os.path.join(kdir, f))
            os.chmod(os.path.join(kdir, f), 0o644)
        d.start()
        wait('the libvirt connection', lambda: 'Connected to libvirt' in d.log_tail(200), 30)
        d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', TPL, 'red', '', {}))
        for prop, value in (('netvm', ''), ('kernel', 'ci'), ('kernelopts', ''), ('memory', '256'),
                            ('vcpus', '1'), ('template_for_dispvms', 'True')):
            d.set_property(TPL, prop, value)
        for k in ('qrexec', 'supported-rpc.qubes.WaitForRunningSystem', 'supported-rpc.qubes.WaitForSession'):
            d.domain(TPL, 'SetFeature', 'ss', (k, '1'))
        d.domain(TPL, 'SetFeature', 'ss', ('preload-dispvm-delay', '0'))

        fresh = run(d, args.runs, False)
        pre = run(d, args.runs, True)
        print('CreateDisposable on QEMU (TCG, tiny guest), median of %d [min-max], ms:' % args.runs)
        for label, (rep, con) in (('fresh disposable', fresh), ('preloaded (paused)', pre)):
            print('  %-20s reply %7.1f [%.1f-%.1f]   console line %7.1f [%.1f-%.1f]'
                  % (label, statistics.median(rep), min(rep), max(rep),
                     statistics.median(con), min(con), max(con)))
    finally:
        if d.proc is not None:
            d.stop()
        d.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
