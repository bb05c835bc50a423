#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""D-Bus benchmarks of qubesd with many qubes: property read latency, GetManagedObjects, RSS.

Starts its own private dbus-daemon and qubesd (QUBESD or --qubesd) on a generated qubes.xml.
Times include the client's own cost (GDBus from Python, about 0.05-0.1 ms a call), so they are an
upper bound of what a C client sees. Run with Debian's /usr/bin/python3 (python3-gi)."""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import harness  # noqa: E402
from harness import Daemon, domain_path  # noqa: E402
from gi.repository import Gio, GLib  # noqa: E402

LABELS = ['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black']
COLORS = ['0xcc0000', '0xf57900', '0xedd400', '0x73d216', '0x555555', '0x3465a4', '0x75507b', '0x000000']


def synthetic_xml(n):
    out = ['<qubes>\n  <labels>\n']
    for i, (name, color) in enumerate(zip(LABELS, COLORS), 1):
        out.append('    <label id="label-%d" color="%s">%s</label>\n' % (i, color, name))
    out.append('  </labels>\n  <pools>\n'
               '    <pool name="varlibqubes" dir_path="/var/lib/qubes" driver="file" revisions_to_keep="1" ephemeral_volatile="False"/>\n'
               '    <pool name="linux-kernel" dir_path="/var/lib/qubes/vm-kernels" driver="linux-kernel"/>\n'
               '  </pools>\n  <properties>\n'
               '    <property name="default_kernel">6.6.1-1.fc37</property>\n'
               '    <property name="default_netvm">sys-net</property>\n'
               '    <property name="default_template">tpl</property>\n'
               '  </properties>\n  <domains>\n'
               '    <domain id="domain-0" class="AdminVM">\n      <properties>\n'
               '        <property name="label">black</property>\n      </properties>\n'
               '      <features/>\n      <tags/>\n    </domain>\n')
    for qid in range(1, n):
        name = {1: 'tpl', 2: 'sys-net'}.get(qid, 'qube-%05d' % qid)
        klass = 'TemplateVM' if qid == 1 else 'AppVM'
        d = 'vm-templates' if qid == 1 else 'appvms'
        props = [('label', LABELS[qid % 8]), ('memory', str(400 + qid % 7 * 100)), ('name', name)]
        if qid == 2:
            props.append(('provides_network', 'True'))
        props += [('qid', str(qid)), ('uuid', '%08x-1111-4222-8333-%012d' % ((qid * 2654435761) & 0xffffffff, qid))]
        if qid == 2:
            props.append(('netvm', ''))
        if qid != 1:
            props.append(('template', 'tpl'))
        out.append('    <domain id="domain-%d" class="%s">\n      <properties>\n' % (qid, klass))
        out.extend('        <property name="%s">%s</property>\n' % kv for kv in props)
        out.append('      </properties>\n      <features>\n'
                   '        <feature name="service.cups">%d</feature>\n        <feature name="gui">1</feature>\n'
                   '      </features>\n      <tags>\n        <tag name="audiovm-dom0"/>\n'
                   '        <tag name="guivm-dom0"/>\n        <tag name="group-%d"/>\n      </tags>\n'
                   '      <volume-config>\n' % (qid % 2, qid % 10))
        if qid == 1:
            out.append('        <volume name="root" pool="varlibqubes" vid="%s/%s/root" revisions_to_keep="1" rw="True" save_on_stop="True" snap_on_start="False" size="10737418240"/>\n' % (d, name))
        else:
            out.append('        <volume name="root" pool="varlibqubes" vid="%s/%s/root" revisions_to_keep="0" rw="True" save_on_stop="False" snap_on_start="True" size="10737418240" source="vm-templates/tpl/root"/>\n' % (d, name))
        out.append('        <volume name="private" pool="varlibqubes" vid="%s/%s/private" revisions_to_keep="1" rw="True" save_on_stop="True" snap_on_start="False" size="2147483648"/>\n'
                   '        <volume name="volatile" pool="varlibqubes" vid="%s/%s/volatile" revisions_to_keep="0" rw="True" save_on_stop="False" snap_on_start="False" size="10737418240"/>\n'
                   '        <volume name="kernel" pool="linux-kernel" vid="6.6.1-1.fc37" revisions_to_keep="0" rw="False" save_on_stop="False" snap_on_start="False"/>\n'
                   '      </volume-config>\n    </domain>\n' % (d, name, d, name))
    out.append('  </domains>\n</qubes>\n')
    return ''.join(out)


def rss_kib(pid):
    vals = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(('VmRSS:', 'VmHWM:')):
                k, v = line.split(':')
                vals[k] = int(v.split()[0])
    return vals


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def report(what, samples):
    s = sorted(samples)
    q = lambda p: s[min(len(s) - 1, int(p * (len(s) - 1) + 0.5))]  # noqa: E731
    print('  %-34s median %8.3f ms   p10 %8.3f   p90 %8.3f   p99 %8.3f   [%d runs]'
          % (what, statistics.median(s), q(0.10), q(0.90), q(0.99), len(s)))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--qubesd', default=os.environ.get('QUBESD'))
    ap.add_argument('--qubes', type=int, default=1000)
    ap.add_argument('--calls', type=int, default=2000)
    args = ap.parse_args()
    if args.qubesd:
        os.environ['QUBESD'] = args.qubesd

    d = Daemon()
    try:
        with open(d.xml_path, 'w') as f:
            f.write(synthetic_xml(args.qubes).replace('dir_path="/var/lib/qubes', 'dir_path="' + d.state_dir))
        d.start_bus()
        t0 = time.perf_counter()
        d.start()
        startup = (time.perf_counter() - t0) * 1000
        pid = d.proc.pid
        rss0 = rss_kib(pid)

        print('D-Bus (private dbus-daemon, client GDBus from Python), %d qubes, qubesd %s'
              % (args.qubes, d.qubesd))
        print('  %-34s %8.1f ms (spawn to bus name owned)' % ('start-up', startup))
        target = 'qube-%05d' % (args.qubes // 2)
        path = domain_path(target)
        conn = d.conn

        def get_memory():
            conn.call_sync(harness.BUS_NAME, path, harness.PROPS_IFACE, 'Get',
                           GLib.Variant('(ss)', (harness.QUBESVM_IFACE, 'Memory')), None,
                           Gio.DBusCallFlags.NONE, 10000, None)

        def get_property():
            conn.call_sync(harness.BUS_NAME, path, harness.DOMAIN_IFACE, 'GetProperty',
                           GLib.Variant('(s)', ('netvm',)), None, Gio.DBusCallFlags.NONE, 10000, None)

        def get_all():
            conn.call_sync(harness.BUS_NAME, path, harness.DOMAIN_IFACE, 'GetAllProperties',
                           None, None, Gio.DBusCallFlags.NONE, 10000, None)

        def ping():
            conn.call_sync(harness.BUS_NAME, harness.ROOT_PATH, 'org.freedesktop.DBus.Peer', 'Ping',
                           None, None, Gio.DBusCallFlags.NONE, 10000, None)

        def managed_objects():
            conn.call_sync(harness.BUS_NAME, harness.ROOT_PATH, 'org.freedesktop.DBus.ObjectManager',
                           'GetManagedObjects', None, None, Gio.DBusCallFlags.NONE, 60000, None)

        def list_domains():
            conn.call_sync(harness.BUS_NAME, harness.ROOT_PATH, harness.MANAGER_IFACE, 'ListDomains',
                           None, None, Gio.DBusCallFlags.NONE, 60000, None)

        counter = iter(range(10 ** 9))

        def set_property():
            conn.call_sync(harness.BUS_NAME, path, harness.DOMAIN_IFACE, 'SetProperty',
                           GLib.Variant('(ss)', ('memory', str(500 + next(counter) % 1000))), None,
                           Gio.DBusCallFlags.NONE, 10000, None)

        for fn in (ping, get_memory, get_property):
            timed(fn, 50)  # warm-up
        report('Peer.Ping (round-trip floor)', timed(ping, args.calls))
        report('Properties.Get Memory', timed(get_memory, args.calls))
        report('GetProperty netvm', timed(get_property, args.calls))
        report('GetAllProperties', timed(get_all, max(100, args.calls // 10)))
        report('ListDomains', timed(list_domains, 20))
        report('GetManagedObjects', timed(managed_objects, 10))
        report('SetProperty memory (durable)', timed(set_property, 200))
        rss1 = rss_kib(pid)
        print('  %-34s %8.1f MiB after start-up, %.1f MiB after the calls (peak %.1f MiB)'
              % ('qubesd RSS', rss0.get('VmRSS', 0) / 1024, rss1.get('VmRSS', 0) / 1024,
                 rss1.get('VmHWM', 0) / 1024))
        status = d.stop()
        if status != 0:
            print('qubesd exited with status %s:\n%s' % (status, d.log_tail()), file=sys.stderr)
            return 1
    finally:
        d.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
