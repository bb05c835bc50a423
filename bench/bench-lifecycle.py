#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reads while 20 qubes start at once, and while they stop (upstream issue 10773: qubesd froze
while qubes started).

qubesd with a generated qubes.xml on libvirt's test:///default driver (or, with --qemu N, N real
QEMU guests on qemu:///system: the tiny CI guest of scripts/ci-libvirt-setup), and the shim's
socket door on qubesd's private socket. 20 qubes (N) start with one StartQubes job and stop with
one ShutdownQubes job (for QEMU a Kill of each at once: the tiny guest has no ACPI shutdown), round
after round, while one reader calls back to back:
  door Get     admin.vm.property.Get through the socket door (a connection per call, as qubesadmin);
  D-Bus Get    org.freedesktop.DBus.Properties.Get of a Domain property, on its own bus connection.
Phases alternate in the same minutes: nothing starting, the starts, nothing starting, the stops.
So the machine's own noise (other processes) is measured beside what the starts add. For each
phase it prints p50, p99, max and the number of reads, and qubesd's CPU time (from /proc) per
phase second. With --high, qubesd's loop thread, dbus-daemon, the shim and the reader run at
nice -10 (qubesd's workers as they are): the scheduler seldom lets the other processes of this
machine in front of them, so what remains is mostly what qubesd does (SCHED_FIFO was tried: it
made p50 and max worse, FIFO threads do not share a core). --loop (needs perf) times qubesd's
side: each dispatch of its loop, from epoll_wait's return to its next call, by phase: how long a
call that arrives meanwhile waits before qubesd reads it. --monitor counts the signals qubesd
sends on the bus for one start and one stop of the 20 (a bus monitor).
"""

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import statistics
import subprocess
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

TICK = os.sysconf('SC_CLK_TCK')


def cpu_ms(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / TICK


def wait_job(conn, path, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = conn.call_sync(harness.BUS_NAME, path, 'org.freedesktop.DBus.Properties', 'Get',
                               GLib.Variant('(ss)', ('org.qubes_os.Admin1.Job', 'State')), None,
                               Gio.DBusCallFlags.NONE, 10000, None).unpack()[0]
        if state not in ('running', 'queued', 'pending'):
            return state
        time.sleep(0.01)
    raise RuntimeError('job %s did not finish' % path)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def door_call(path, request):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        got = b''
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    finally:
        s.close()
    if not got.startswith(b'0\x00'):
        raise RuntimeError('socket door: %r' % got[:200])


def start_shim(shim, d, private):
    path = os.path.join(d.dir, 'door.sock')
    log = open(os.path.join(d.dir, 'shim.log'), 'ab')
    proc = subprocess.Popen([shim, '--listen', path, '--bus-address=' + d.address, '--private-socket=' + private],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError('qubes-admin-shim did not listen on %s' % path)
        time.sleep(0.01)
    return proc, log, path


def raise_priority(pid, threads=True):
    """nice -10 for pid (a thread id: that thread only) or, with threads, each of its threads."""
    tids = [int(t) for t in os.listdir('/proc/%d/task' % pid)] if threads else [pid]
    for tid in tids:
        os.setpriority(os.PRIO_PROCESS, tid, -10)


class SignalCounter:
    """A bus monitor (BecomeMonitor) that counts the signals qubesd sends, by interface.member."""

    def __init__(self, address, sender):
        self.counts = {}
        self.lock = threading.Lock()
        self.conn = harness.become_monitor(address, ["type='signal',sender='%s'" % sender], self._filter)

    def _filter(self, conn, msg, incoming):
        if incoming and msg.get_message_type() == Gio.DBusMessageType.SIGNAL:
            key = '%s.%s' % (msg.get_interface().rsplit('.', 1)[-1], msg.get_member())
            if msg.get_member() == 'PropertiesChanged':
                key += '(%s)' % msg.get_body().unpack()[0].rsplit('.', 1)[-1]
            with self.lock:
                self.counts[key] = self.counts.get(key, 0) + 1
            return None
        return msg

    def take(self):
        time.sleep(0.3)
        with self.lock:
            c, self.counts = self.counts, {}
        return c

    def close(self):
        try:
            self.conn.close_sync(None)
        except GLib.Error:
            pass


def setup_qemu(d, n):
    import test_qemu_guest
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
    deadline = time.monotonic() + 30
    while 'Connected to libvirt' not in d.log_tail(200):
        if time.monotonic() > deadline:
            raise RuntimeError('no libvirt connection')
        time.sleep(0.05)
    names = []
    for i in range(n):
        name = 'bench-guest-%d' % i
        d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', name, 'red', '', {}))
        for prop, value in (('netvm', ''), ('kernel', 'ci'), ('kernelopts', ''), ('memory', '192'),
                            ('vcpus', '1')):
            d.set_property(name, prop, value)
        names.append(name)
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--qubesd', required=True)
    ap.add_argument('--shim', help='qubes-admin-shim (default: beside qubesd)')
    ap.add_argument('--qubes', type=int, default=50)
    ap.add_argument('--rounds', type=int, default=5, help='at least this many rounds …')
    ap.add_argument('--seconds', type=float, default=8, help='… and at least this long')
    ap.add_argument('--high', action='store_true',
                    help="qubesd's loop thread, dbus-daemon, the shim and the reader at nice -10")
    ap.add_argument('--qemu', type=int, default=0, metavar='N', help='N real QEMU guests (qemu:///system)')
    ap.add_argument('--monitor', action='store_true', help='count the signals of one start and one stop')
    ap.add_argument('--loop', action='store_true', help="time each dispatch of qubesd's loop (perf)")
    args = ap.parse_args()
    os.environ['QUBESD'] = args.qubesd
    shim = args.shim or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.qubesd))),
                                     'qrexec-shim', 'qubes-admin-shim')
    if args.qemu:
        import test_qemu_guest
        why = test_qemu_guest.why_not_runnable()
        if why:
            print('reads while QEMU guests start: skipped (%s)' % why)
            return 0

    d = harness.Daemon(harness.DEMO_XML if args.qemu else None,
                       ['--libvirt-uri=qemu:///system'] if args.qemu else [])
    private = os.path.join(d.dir, 'private')
    d.extra_args.append('--private-socket=' + private)
    shim_proc = log = counter = None
    names = []
    try:
        if args.qemu:
            names = setup_qemu(d, args.qemu)
            kind = '%d real QEMU guests (qemu:///system, TCG)' % args.qemu
        else:
            with open(d.xml_path, 'w') as f:
                f.write(bench_dbus.synthetic_xml(args.qubes).replace('dir_path="/var/lib/qubes',
                                                                     'dir_path="' + d.state_dir))
            os.makedirs(os.path.join(d.state_dir, 'vm-kernels', '6.6.1-1.fc37'), exist_ok=True)
            d.start()
            listed = [row[0] for row in d.manager('ListDomains')[0]]
            names = [n for n in listed if n != 'dom0'][:20]
            for n in names:  # no netvm: the starts are the 20 qubes themselves
                d.domain(n, 'SetProperty', 'ss', ('netvm', ''))
            kind = '20 of %d qubes, libvirt test driver' % args.qubes
        target = names[len(names) // 2]
        shim_proc, log, door = start_shim(shim, d, private)
        ctl = Gio.DBusConnection.new_for_address_sync(
            d.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        conn = Gio.DBusConnection.new_for_address_sync(
            d.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        request = b'admin.vm.property.Get+memory dom0 name ' + target.encode() + b'\x00'
        samples = {}
        window = {'phase': None, 'stop': False}

        def measure():
            path = harness.domain_path(target)
            args_get = GLib.Variant('(ss)', ('org.qubes_os.Admin1.QubesVM', 'Memory'))
            while not window['stop']:
                phase = window['phase']
                t = time.perf_counter()
                door_call(door, request)
                t1 = time.perf_counter()
                conn.call_sync(harness.BUS_NAME, path, 'org.freedesktop.DBus.Properties', 'Get', args_get, None,
                               Gio.DBusCallFlags.NONE, 10000, None)
                t2 = time.perf_counter()
                # a read counts for a phase only if the phase held from its start to its end
                if phase and window['phase'] == phase:
                    samples.setdefault((phase, 'door'), []).append((t1 - t) * 1000)
                    samples.setdefault((phase, 'dbus'), []).append((t2 - t1) * 1000)

        def start_all():
            return wait_job(ctl, ctl.call_sync(harness.BUS_NAME, harness.ROOT_PATH, harness.MANAGER_IFACE,
                                               'StartQubes', GLib.Variant('(as)', (names,)), None,
                                               Gio.DBusCallFlags.NONE, 60000, None).unpack()[0])

        def stop_all():
            if args.qemu:  # the tiny guest has no ACPI shutdown: kill, one call each, all at once
                pending = []
                for n in names:
                    pending.append(ctl.call(harness.BUS_NAME, harness.domain_path(n), harness.DOMAIN_IFACE, 'Kill',
                                            None, None, Gio.DBusCallFlags.NONE, 60000, None, None, None))
                while any(ctl.call_sync(harness.BUS_NAME, harness.domain_path(n), 'org.freedesktop.DBus.Properties',
                                        'Get', GLib.Variant('(ss)', (harness.DOMAIN_IFACE, 'PowerState')), None,
                                        Gio.DBusCallFlags.NONE, 10000, None).unpack()[0] != 'Halted' for n in names):
                    time.sleep(0.01)
                return 'succeeded'
            return wait_job(ctl, ctl.call_sync(harness.BUS_NAME, harness.ROOT_PATH, harness.MANAGER_IFACE,
                                               'ShutdownQubes', GLib.Variant('(asb)', (names, False)), None,
                                               Gio.DBusCallFlags.NONE, 60000, None).unpack()[0])

        # one round first: the worker threads exist before the measure (and before --rt)
        start_all()
        stop_all()
        if args.high:
            # qubesd's loop thread only: its workers stay as qubesd made them
            raise_priority(d.proc.pid, threads=False)
            for pid in (d.bus_proc.pid, shim_proc.pid, os.getpid()):
                raise_priority(pid)
        cpu = {}
        secs = {}

        intervals = []  # (monotonic start, end, phase): the loop's dispatches by phase

        def phase(name, fn):
            c0, t0 = cpu_ms(d.proc.pid), time.perf_counter()
            m0 = time.monotonic()
            window['phase'] = name
            r = fn()
            window['phase'] = None
            intervals.append((m0, time.monotonic(), name))
            dt = time.perf_counter() - t0
            cpu[name] = cpu.get(name, 0) + cpu_ms(d.proc.pid) - c0
            secs[name] = secs.get(name, 0) + dt
            return r, dt

        perf = None
        if args.loop and shutil.which('perf'):
            perf_data = os.path.join(d.dir, 'loop.perf')
            perf = subprocess.Popen(['perf', 'record', '-q', '-k', 'CLOCK_MONOTONIC', '-e',
                                     'syscalls:sys_enter_epoll_wait', '-e', 'syscalls:sys_exit_epoll_wait',
                                     '-t', str(d.proc.pid), '-o', perf_data],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        th = threading.Thread(target=measure)
        th.start()
        rounds = {'start': [], 'stop': []}
        try:
            t_begin = time.monotonic()
            while len(rounds['start']) < args.rounds or time.monotonic() - t_begin < args.seconds:
                # the same reads with nothing starting, as long as the phase that follows
                last = rounds['start'][-1] if rounds['start'] else 0.05
                phase('idle', lambda: time.sleep(last))
                state, dt = phase('start', start_all)
                rounds['start'].append(dt)
                if state != 'succeeded':
                    raise RuntimeError('StartQubes: %s\n%s' % (state, d.log_tail()))
                if args.qemu:
                    time.sleep(1)  # the guests boot: not part of either phase
                phase('idle', lambda: time.sleep(dt))
                state, dt = phase('stop', stop_all)
                rounds['stop'].append(dt)
        finally:
            window['stop'] = True
            th.join()
            conn.close_sync(None)
        dispatches = {}
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
            out = subprocess.run(['perf', 'script', '-i', perf_data, '-F', 'time,event'], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True).stdout
            begun = None
            for line in out.splitlines():
                f = line.split()
                if len(f) < 2:
                    continue
                t = float(f[0].rstrip(':'))
                if 'sys_exit_epoll_wait' in f[1]:
                    begun = t
                elif begun is not None:
                    for a, b, name in intervals:
                        if a <= begun < b:
                            dispatches.setdefault(name, []).append((t - begun) * 1000)
                            break
                    begun = None
        if args.monitor:
            owner = d.name_owner()
            counter = SignalCounter(d.address, owner)
            start_all()
            started = counter.take()
            stop_all()
            stopped = counter.take()
        print('Reads while %s start and stop (%d rounds: StartQubes median %.0f ms, %s median %.0f ms; '
              'one reader, Python; %s)' % (kind, len(rounds['start']), statistics.median(rounds['start']) * 1000,
                                          'Kill' if args.qemu else 'ShutdownQubes',
                                          statistics.median(rounds['stop']) * 1000,
                                          'nice -10: qubesd\'s loop, dbus-daemon, shim, reader' if args.high
                                          else 'normal priority'))
        for ph in ('idle', 'start', 'stop'):
            print('  %-5s qubesd CPU %5.1f ms per second of the phase (%.1f s)'
                  % (ph if ph != 'idle' else 'none', cpu.get(ph, 0) / max(secs.get(ph, 1), 1e-9), secs.get(ph, 0)))
            for key, label in (('door', 'door property.Get'), ('dbus', 'D-Bus Properties.Get')):
                v = samples.get((ph, key), [])
                what = '%s, %s' % (label, {'idle': 'nothing starting', 'start': 'while they start',
                                           'stop': 'while they stop'}[ph])
                if not v:
                    print('    %-44s no read' % what)
                    continue
                print('    %-44s p50 %6.3f ms  p99 %7.3f  max %8.3f  (%d reads)' %
                      (what, statistics.median(v), pct(v, 0.99), max(v), len(v)))
        if args.loop and not perf:
            print("  qubesd's loop: not timed (no perf)")
        for ph in ('idle', 'start', 'stop') if perf else ():
            v = sorted(dispatches.get(ph, [0]))
            print("  qubesd's loop, %-16s one dispatch p50 %6.3f ms  p99 %6.3f  p99.9 %6.3f  max %7.3f  "
                  "(%d dispatches, %d over 1 ms)" % ({'idle': 'nothing starting:', 'start': 'while they start:',
                                                      'stop': 'while they stop:'}[ph], v[len(v) // 2],
                                                     pct(v, 0.99), pct(v, 0.999), v[-1], len(v),
                                                     sum(1 for x in v if x > 1)))
        if args.monitor:
            for label, c in (('one start of the %d' % len(names), started), ('one stop of the %d' % len(names),
                                                                            stopped)):
                print('  signals qubesd sent on the bus for %s: %d (%s)' % (
                    label, sum(c.values()), ', '.join('%s %d' % kv for kv in sorted(c.items()))))
        d.stop()
    finally:
        if counter:
            counter.close()
        if shim_proc is not None:
            shim_proc.terminate()
            try:
                shim_proc.wait(10)
            except subprocess.TimeoutExpired:
                shim_proc.kill()
                shim_proc.wait()
            log.close()
        if args.qemu and d.proc is not None:
            d.stop()
        d.cleanup()
        for n in names if args.qemu else ():  # a run that failed half-way leaves no guest behind
            subprocess.run(['virsh', '-c', 'qemu:///system', 'destroy', n], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
    return 0


if __name__ == '__main__':
    sys.exit(main())
