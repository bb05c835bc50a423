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

# Upstream qubesd 4.4 (Python) on these machines, its own socket, a C client with one connection
# per call, the same generated stores (shared/FACTS.md): p50 per size, the same unit of work.
UPSTREAM = {
    ('admin.vm.property.Get', 1): {50: '0.22 ms', 200: '0.45 ms', 1000: '1.52 ms'},
    ('admin.vm.property.GetAll', 1): {50: '0.58 ms', 200: '1.03 ms', 1000: '3.57 ms'},
    ('admin.vm.List', 1): {50: '0.65 ms', 200: '2.03 ms', 1000: '10.1 ms'},
    ('admin.vm.property.Set (durable)', 1): {50: '6.4 ms', 200: '23.2 ms', 1000: '120 ms'},
    ('admin.vm.property.Get', 8): {50: '5,500 calls/s', 200: '2,600 calls/s', 1000: '632 calls/s'},
    ('admin.vm.property.Set (durable)', 8): {50: '150 calls/s', 200: '40 calls/s', 1000: '8.1 calls/s'},
    ('start-up', 0): {50: '378 ms', 200: '1,104 ms', 1000: '13,985 ms'},
    ('RSS / PSS', 0): {50: '56.1 / 39.3 MiB', 200: '59.8 / 43.1 MiB', 1000: '89.5 / 71.2 MiB'},
    ('admin.Events fan-out', 0): {50: '5,200 events/s', 200: '1,540 events/s', 1000: '297 events/s'},
    ('real qvm-ls, whole process', 0): {50: '141 ms', 200: '386 ms', 1000: '4,381 ms'},
}


def upstream(what, n, clients=0):
    ref = UPSTREAM.get((what, clients))
    if not ref or n not in ref:
        return ''
    return '   [upstream %s]' % ref[n]


def spread(values, unit, fmt='%.1f'):
    s = sorted(values)
    return ('median ' + fmt + ' %s  (min ' + fmt + ', max ' + fmt + ', %d runs)') % (
        statistics.median(s), unit, s[0], s[-1], len(s))


def rss_kib(pid):
    return bench_dbus.rss_kib(pid).get('VmRSS', 0)


def smaps_mib(pid):
    """Rss, Pss and Anonymous (the private memory that grows with the qubes) in MiB; Pss_File (the
    share of file-backed pages: mostly the libraries' clean text) and Pss_Anon; Uss (Private_Clean +
    Private_Dirty: what ending qubesd would give back)."""
    out = {'Pss_File': 0, 'Pss_Anon': 0}
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            if key in ('Rss', 'Pss', 'Anonymous', 'Pss_File', 'Pss_Anon', 'Private_Clean', 'Private_Dirty'):
                out[key] = int(value.split()[0]) / 1024
    out['Uss'] = out.get('Private_Clean', 0) + out.get('Private_Dirty', 0)
    return out


def durable_write_ms(directory, size, runs=50):
    """The floor of a durable save: a file of that size written, fsynced, renamed over the old one,
    and the directory fsynced (what app_save() does), median of runs."""
    data = b'x' * size
    path = os.path.join(directory, 'floor.xml')
    times = []
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            fd = os.open(path + '.new', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(path + '.new', path)
            os.fsync(dfd)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(dfd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return statistics.median(times)


LIBVIRT_URI = None
LIBVIRTD_SOCKET = '/run/libvirt/libvirt-sock'


def new_daemon(n, uri=None):
    d = harness.Daemon()
    if uri or LIBVIRT_URI:
        # the last --libvirt-uri counts (harness.Daemon.command())
        d.extra_args.append('--libvirt-uri=' + (uri or LIBVIRT_URI))
    with open(d.xml_path, 'w') as f:
        f.write(bench_dbus.synthetic_xml(n).replace('dir_path="/var/lib/qubes', 'dir_path="' + d.state_dir))
    os.makedirs(os.path.join(d.state_dir, 'vm-kernels', '6.6.1-1.fc37'), exist_ok=True)
    # as installed: qubesd serves trusted clients (the shim) on its private socket too
    d.extra_args.append('--private-socket=' + os.path.join(d.dir, 'private'))
    d.start_bus()
    return d


def measure_startup(n, runs, uri=None):
    times, mem = [], []
    for _ in range(runs):
        d = new_daemon(n, uri)
        try:
            t0 = time.perf_counter()
            d.start()
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.05)
            mem.append(smaps_mib(d.proc.pid))
            d.stop()
        finally:
            d.cleanup()
    return times, mem


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


def run_and_annotate(cmd, n, timeout=900, floor=None, list_floor=None):
    """Runs a bench client and prints its lines with upstream's figure beside each; with floor
    (the unix-socket round trip), each one-client line of the socket door also says how many
    times the floor of its two round trips (client -> shim -> qubesd) it takes; vm.List against
    two round trips carrying its reply (list_floor) when that was measured. Returns the exit
    status and the lines."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    for line in r.stdout.splitlines():
        m = re.match(r'\s+(\S.*?)\s{2,}', line)
        label = m.group(1).strip() if m else ''
        c = re.search(r'clients=(\d+)', line)
        extra = ''
        p50 = re.search(r'median\s+([0-9.]+) ms', line)
        if floor and c and c.group(1) == '1' and p50 and 'Set' not in label:
            if list_floor and label.endswith('vm.List'):
                extra = '   (%.1fx the floor of two round trips carrying its reply)' % (
                    float(p50.group(1)) / (2 * list_floor))
            else:
                extra = '   (%.1fx the floor of two round trips)' % (float(p50.group(1)) / (2 * floor))
        print(line + extra + upstream(label, n, int(c.group(1)) if c else 0))
    return r.returncode, r.stdout


def bench_size(args, n):
    print('%d qubes' % n)
    times, mem = measure_startup(n, args.starts)
    print('  %-34s %s%s' % ('start-up (spawn to name owned)', spread(times, 'ms'), upstream('start-up', n)))
    rss = statistics.median(m['Rss'] for m in mem)
    pss = statistics.median(m['Pss'] for m in mem)
    anon = statistics.median(m['Anonymous'] for m in mem)
    print('  %-34s %.1f / %.1f MiB (median of %d starts)%s' % ('qubesd RSS / PSS after start-up', rss, pss, len(mem),
                                                              upstream('RSS / PSS', n)))
    print('  %-34s %.1f MiB' % ('qubesd private (anonymous) memory', anon))
    print('  %-34s %.1f MiB file-backed (libraries, mostly clean text) + %.1f MiB anonymous; USS (private) %.1f MiB'
          % ('qubesd PSS, split', statistics.median(m['Pss_File'] for m in mem),
             statistics.median(m['Pss_Anon'] for m in mem), statistics.median(m['Uss'] for m in mem)))
    # On a real dom0 qubesd is a client of libvirtd, which maps the same libraries. Measured when a
    # libvirtd runs here (scripts/ci-libvirt-setup): it barely lowers qubesd's PSS (16.7 -> 16.5 MiB
    # at 1,000 qubes on a quiet machine), because PSS shares pages, not libraries, and libvirtd
    # touches other pages of them than a client does. Another qubesd running beside it (a test)
    # shares its pages: the file-backed part fell from 10.4 to 4.0-6.5 MiB that way, so measure
    # with nothing else of qubesd's running.
    if not LIBVIRT_URI and os.path.exists(LIBVIRTD_SOCKET):
        _, mem2 = measure_startup(n, args.starts, 'qemu:///system')
        print('  %-34s %.1f / %.1f MiB: %.1f MiB file-backed + %.1f MiB anonymous; USS %.1f MiB%s'
              % ('same, client of libvirtd (qemu:///)', statistics.median(m['Rss'] for m in mem2),
                 statistics.median(m['Pss'] for m in mem2), statistics.median(m['Pss_File'] for m in mem2),
                 statistics.median(m['Pss_Anon'] for m in mem2), statistics.median(m['Uss'] for m in mem2),
                 upstream('RSS / PSS', n)))
    return_anon = anon

    d = new_daemon(n)
    failures = 0
    shim_proc = log = None
    try:
        d.start()
        pid = d.proc.pid
        shim_proc, log, sock = start_shim(args.shim, d)
        qube = 'qube-%05d' % max(3, n // 2)
        floor = list_floor = None
        xml_size = os.path.getsize(d.xml_path)
        print('  floors (measured now): durable write of a %d KiB file (qubes.xml\'s size) %.3f ms; and below, a '
              'unix-socket round trip between two processes and an sd-bus call through dbus-daemon'
              % (xml_size // 1024, durable_write_ms(d.state_dir, xml_size)))
        if args.bench_bus:
            print('  D-Bus (bench-bus, a C client):')
            rc, out = run_and_annotate([args.bench_bus, '--address', d.address, '--pid', str(pid), '--floors',
                                        '--runs', str(max(10, args.calls // 100)), '--qube', qube], n)
            failures += rc != 0
            m = re.search(r'unix-socket round trip \(floor\)\s+median\s+([0-9.]+) ms', out)
            floor = float(m.group(1)) if m else None
            m = re.search(r'same, \d+-byte reply \(vm.List\)\s+median\s+([0-9.]+) ms', out)
            list_floor = float(m.group(1)) if m else None
        print('  socket door (bench-shim: a connection per call, request, half-close, reply):')
        failures += run_and_annotate([args.bench_shim, '--socket', sock, '--calls', str(args.calls),
                                      '--qube', qube, '--set'], n, floor=floor, list_floor=list_floor)[0] != 0
        qvm = os.path.join(HERE, '..', '..', 'shared', 'qubesadmin', 'qvm')
        if os.path.exists(qvm):
            runs = []
            env = dict(os.environ, QUBESD_SOCKET=sock)
            for _ in range(max(3, args.starts)):
                t0 = time.perf_counter()
                r = subprocess.run([qvm, 'qvm-ls'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   timeout=300)
                runs.append((time.perf_counter() - t0) * 1000)
                if r.returncode != 0:
                    print('  qvm-ls failed: %s' % r.stderr.decode(errors='replace').strip()[-300:])
                    failures += 1
                    break
            print('  %-34s %s%s' % ('real qvm-ls, whole process', spread(runs, 'ms'),
                                     upstream('real qvm-ls, whole process', n)))
        print('  qrexec service door (bench-admin: process start, QREXEC_* env, stdin payload):')
        failures += run_and_annotate([args.bench_admin, 'service', '--shim', args.shim, '--bus', d.address,
                                      '--calls', str(args.service_calls), '--qube', qube], n)[0] != 0
        failures += run_and_annotate([args.bench_admin, 'events', '--socket', sock, '--subscribers', '20',
                                      '--sets', str(args.event_sets), '--setters', '4', '--qube', qube], n)[0] != 0
        after = smaps_mib(pid)
        print('  %-34s %.1f / %.1f MiB after all the calls' % ('qubesd RSS / PSS', after['Rss'], after['Pss']))
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
    return failures, return_anon


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--shim', required=True)
    ap.add_argument('--bench-shim', required=True)
    ap.add_argument('--bench-admin', required=True)
    ap.add_argument('--bench-bus', help='the C D-Bus client (GetManagedObjects and the floors)')
    ap.add_argument('--sizes', default='50,200,1000')
    ap.add_argument('--starts', type=int, default=7, help='repeated start-ups per size')
    ap.add_argument('--libvirt-uri', help='libvirt for qubesd (default test:///default, the driver inside '
                    'qubesd; qemu:///system is a real dom0\'s topology, a client of libvirtd)')
    ap.add_argument('--calls', type=int, default=2000, help='socket door calls per kind')
    ap.add_argument('--service-calls', type=int, default=100)
    ap.add_argument('--event-sets', type=int, default=400)
    args = ap.parse_args()
    global LIBVIRT_URI
    LIBVIRT_URI = args.libvirt_uri
    os.environ['QUBESD'] = args.qubesd

    print('Admin API through qubes-admin-shim (private dbus-daemon; median and spread: p10/p90 of the '
          'calls, min/max of the runs)')
    failures = 0
    anon = {}
    for n in (int(x) for x in args.sizes.split(',')):
        f, anon[n] = bench_size(args, n)
        failures += f
    sizes = sorted(anon)
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        print('private memory per qube (model, cached XML, bus objects): %.1f KiB '
              '(qubesd\'s anonymous memory after start-up, %d to %d qubes)'
              % ((anon[hi] - anon[lo]) * 1024 / (hi - lo), lo, hi))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
