#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The snapshot a client loads at start-up: GetManagedObjects (and Properties.GetAll of one qube
and one volume) with many qubes whose volumes have image files, so that Size and Usage read the
disk as on a real system.

Reports the round trip (client included: GDBus from Python) and, steadier on a busy machine, the
CPU time qubesd spent per call (from /proc). With --compare OTHER, a second qubesd (another build)
runs beside the first on its own bus, calls alternate between the two in the same sitting, and
the replies must be the same bytes (the pool's filesystem figures aside: other processes move
them). With --bench-bus, the C client (bench/bench-bus: sd-bus, no Python in the round trip) makes
the GetManagedObjects calls instead, alternating between the builds in rounds. --composition
prints what the reply carries: objects, interfaces and values by kind of object and D-Bus type.
Run with Debian's /usr/bin/python3 (python3-gi)."""

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
from gi.repository import Gio, GLib  # noqa: E402

_spec = importlib.util.spec_from_file_location('bench_dbus', os.path.join(HERE, 'bench-dbus.py'))
bench_dbus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_dbus)

KERNEL = '6.6.1-1.fc37'
VOLUME_IFACE = 'org.qubes_os.Admin1.Volume'


def qube_name(qid):
    return {1: 'tpl', 2: 'sys-net'}.get(qid, 'qube-%05d' % qid)


def write_images(state_dir, n):
    """Sparse images with a few blocks of data, as bench_dbus.synthetic_xml's volumes name them."""
    kdir = os.path.join(state_dir, 'vm-kernels', KERNEL)
    os.makedirs(kdir, exist_ok=True)
    with open(os.path.join(kdir, 'modules.img'), 'wb') as f:
        f.write(b'k' * 70000)
    for qid in range(1, n):
        d = os.path.join(state_dir, 'vm-templates' if qid == 1 else 'appvms', qube_name(qid))
        os.makedirs(d, exist_ok=True)
        files = {'private.img': 4096 * (qid % 5 + 1), 'private-cow.img': 8192}
        if qid == 1:
            files['root.img'] = 12288
        elif qid % 3 == 0:
            files['root-cow.img'] = 4096
            files['volatile.img'] = 4096
        for name, data in files.items():
            with open(os.path.join(d, name), 'wb') as f:
                f.truncate(1 << 30)
                f.write(b'x' * data)


def cpu_seconds(pid):
    fields = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def mask_pool_figures(v):
    """The text of a reply with the file pool's filesystem Size and Usage replaced."""
    return re.sub(r"('Name': <'varlibqubes'>.*?'Size': <uint64 )\d+(>, 'Usage': <uint64 )\d+", r'\1N\2N',
                  v.print_(True), count=1)


def composition(reply):
    """Lines telling what a GetManagedObjects reply carries, by kind of object (the path's form)."""
    kinds = {}
    for path, ifaces in reply.unpack()[0].items():
        rest = path[len(harness.ROOT_PATH) + 1:].split('/')
        kind = rest[0] + ('' if len(rest) == 1 else '/' + '/'.join('*' for _ in rest[1:]))
        k = kinds.setdefault(kind, {'objects': 0, 'interfaces': 0, 'values': 0, 'types': {}})
        k['objects'] += 1
        k['interfaces'] += len(ifaces)
        for props in ifaces.values():
            k['values'] += len(props)
    # the types, from the variants themselves (unpack() loses them)
    v = reply.get_child_value(0)
    for i in range(v.n_children()):
        e = v.get_child_value(i)
        path = e.get_child_value(0).get_string()
        rest = path[len(harness.ROOT_PATH) + 1:].split('/')
        kind = rest[0] + ('' if len(rest) == 1 else '/' + '/'.join('*' for _ in rest[1:]))
        ifaces = e.get_child_value(1)
        for j in range(ifaces.n_children()):
            props = ifaces.get_child_value(j).get_child_value(1)
            for m in range(props.n_children()):
                t = props.get_child_value(m).get_child_value(1).get_variant().get_type_string()
                kinds[kind]['types'][t] = kinds[kind]['types'].get(t, 0) + 1
    out = []
    for kind, k in sorted(kinds.items()):
        out.append('  %-24s %5d objects %6d interfaces %7d values: %s' % (
            kind, k['objects'], k['interfaces'], k['values'],
            ' '.join('%s %d' % kv for kv in sorted(k['types'].items(), key=lambda kv: -kv[1]))))
    return out


def bench_bus_round(bench_bus, t, runs):
    """One run of the C client against t: (round trip median ms, qubesd CPU ms per call, dbus-daemon CPU ms
    per call). bench-bus makes four calls more than runs (one to count the objects, three to warm up): the
    bus's figure counts them."""
    bus0 = cpu_seconds(t.d.bus_proc.pid)
    out = subprocess.run([bench_bus, '--address', t.d.address, '--pid', str(t.d.proc.pid), '--runs', str(runs)],
                         check=True, capture_output=True, text=True).stdout
    bus = (cpu_seconds(t.d.bus_proc.pid) - bus0) * 1000 / (runs + 4)
    m = re.search(r'GetManagedObjects\s+median\s+([\d.]+) ms.*qubesd CPU ([\d.]+) ms/call', out)
    if not m:
        raise RuntimeError('bench-bus printed no figure:\n' + out)
    return float(m.group(1)), float(m.group(2)), bus


class Target:
    def __init__(self, qubesd, n):
        os.environ['QUBESD'] = qubesd
        self.qubesd = qubesd
        self.d = harness.Daemon()
        with open(self.d.xml_path, 'w') as f:
            f.write(bench_dbus.synthetic_xml(n).replace('dir_path="/var/lib/qubes', 'dir_path="' + self.d.state_dir))
        write_images(self.d.state_dir, n)
        self.d.start()
        self.samples = {}
        self.cpu = {}

    def call(self, path, iface, method, args=None):
        return self.d.conn.call_sync(harness.BUS_NAME, path, iface, method, args, None,
                                     Gio.DBusCallFlags.NONE, 60000, None)

    def timed(self, what, fn):
        c0 = cpu_seconds(self.d.proc.pid)
        t0 = time.perf_counter()
        r = fn(self)
        self.samples.setdefault(what, []).append((time.perf_counter() - t0) * 1000)
        self.cpu.setdefault(what, []).append((cpu_seconds(self.d.proc.pid) - c0) * 1000)
        return r

    def text(self, v):
        return mask_pool_figures(v).replace(self.d.state_dir, '@STATE@')

    def close(self):
        status = self.d.stop()
        if status != 0:
            print('%s exited with status %s:\n%s' % (self.qubesd, status, self.d.log_tail()), file=sys.stderr)
        self.d.cleanup()
        return status


def c_client_calls(args, targets, calls):
    """GetManagedObjects from the C client, the builds alternating in rounds."""
    texts = [t.text(calls['GetManagedObjects'](t)) for t in targets]
    if len(set(texts)) > 1:
        print('GetManagedObjects: the two builds answer differently', file=sys.stderr)
        return 1
    figures = {t.qubesd: [] for t in targets}
    for _ in range(args.rounds):
        for t in targets:
            figures[t.qubesd].append(bench_bus_round(args.bench_bus, t, args.runs))
    print('%d qubes, GetManagedObjects from the C client (bench-bus), %d rounds of %d calls, builds '
          'alternating' % (args.qubes, args.rounds, args.runs))
    for q, f in figures.items():
        wall = sorted(x[0] for x in f)
        cpu = sorted(x[1] for x in f)
        bus = sorted(x[2] for x in f)
        print('  %s\n    round trip median of rounds %7.2f ms (min %.2f, max %.2f)   qubesd CPU %6.2f '
              'ms/call (min %.2f, max %.2f)   dbus-daemon CPU %6.2f ms/call'
              % (q, statistics.median(wall), wall[0], wall[-1], statistics.median(cpu), cpu[0], cpu[-1],
                 statistics.median(bus)))
    if args.compare:
        print('replies identical between the two builds (pool filesystem figures aside)')
    return 0


def gdbus_calls(args, targets, calls):
    """The three calls from GDBus, the builds alternating call by call."""
    for what, fn in calls.items():
        runs = args.runs if what == 'GetManagedObjects' else args.runs * 20
        texts = [t.text(fn(t)) for t in targets]  # warm-up, and the answers to compare
        if len(set(texts)) > 1:
            print('%s: the two builds answer differently' % what, file=sys.stderr)
            return 1
        for _ in range(runs):
            for t in targets:
                t.timed(what, fn)
    reply = targets[0].call(harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects')
    print('%d qubes, %d objects, %d bytes of GetManagedObjects reply (private dbus-daemon, client GDBus '
          'from Python)' % (args.qubes, reply.get_child_value(0).n_children(), reply.get_size()))
    for t in targets:
        print(t.qubesd)
        for what in calls:
            s = sorted(t.samples[what])
            print('  %-28s round trip median %8.2f ms  p10 %8.2f  p90 %8.2f   qubesd CPU %7.2f ms/call'
                  % (what, statistics.median(s), s[len(s) // 10], s[len(s) * 9 // 10],
                     sum(t.cpu[what]) / len(t.cpu[what])))
    if args.compare:
        print('replies identical between the two builds (pool filesystem figures aside)')
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--qubesd', default=os.environ.get('QUBESD'))
    ap.add_argument('--compare', metavar='OTHER_QUBESD', help='a second build, run alternately with the first')
    ap.add_argument('--qubes', type=int, default=300)
    ap.add_argument('--runs', type=int, default=30)
    ap.add_argument('--bench-bus', help='the C client (build/bench/bench-bus): it makes the GetManagedObjects calls')
    ap.add_argument('--rounds', type=int, default=10, help='with --bench-bus: rounds of --runs calls per build')
    ap.add_argument('--composition', action='store_true', help='print what the snapshot carries')
    args = ap.parse_args()
    if not args.qubesd:
        ap.error('--qubesd (or QUBESD) is required')

    targets = []
    rc = 1
    try:
        for q in [args.qubesd] + ([args.compare] if args.compare else []):
            targets.append(Target(q, args.qubes))
        qube = harness.domain_path(qube_name(args.qubes // 2))
        volume = qube + '/volume/private'
        calls = {
            'GetManagedObjects': lambda t: t.call(harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager',
                                                  'GetManagedObjects'),
            'GetAll QubesVM (one qube)': lambda t: t.call(qube, harness.PROPS_IFACE, 'GetAll',
                                                          GLib.Variant('(s)', (harness.QUBESVM_IFACE,))),
            'GetAll Volume (one volume)': lambda t: t.call(volume, harness.PROPS_IFACE, 'GetAll',
                                                           GLib.Variant('(s)', (VOLUME_IFACE,))),
        }
        if args.composition:
            reply = targets[0].call(harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects')
            print('What the snapshot carries at %d qubes (%d bytes):' % (args.qubes, reply.get_size()))
            print('\n'.join(composition(reply)))
        rc = (c_client_calls if args.bench_bus else gdbus_calls)(args, targets, calls)
    finally:
        failed = [t for t in targets if t.close() != 0]
    return 1 if failed else rc


if __name__ == '__main__':
    sys.exit(main())
