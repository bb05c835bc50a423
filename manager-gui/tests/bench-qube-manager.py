#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Start-up time of qube-manager with many qubes: a private dbus-daemon and qubesd on the
synthetic qubes.xml of bench/bench-dbus.py, then `qube-manager --bench` under Xvfb, several runs.
Prints the median first-paint-ms and full-list-ms.

  bench-qube-manager.py --qube-manager BUILD/manager-gui/qube-manager --qubesd BUILD/service/qubesd
                        [--qubes 300] [--runs 5]
"""
import argparse
import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def synthetic_xml(n):
    spec = importlib.util.spec_from_file_location(
        'bench_dbus', os.path.join(HERE, '..', '..', 'bench', 'bench-dbus.py'))
    sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'integration'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_xml(n)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--qube-manager', required=True)
    p.add_argument('--qubesd', required=True)
    p.add_argument('--qubes', type=int, default=300)
    p.add_argument('--runs', type=int, default=5)
    args = p.parse_args()
    for tool in ('xvfb-run', 'dbus-daemon'):
        if shutil.which(tool) is None:
            print(f'SKIP: {tool} is not installed')
            return 77

    tmp = tempfile.mkdtemp(prefix='qm-bench-')
    procs = []
    try:
        os.makedirs(f'{tmp}/state')
        with open(f'{tmp}/state/qubes.xml', 'w') as f:
            f.write(synthetic_xml(args.qubes).replace('/var/lib/qubes', f'{tmp}/state'))
        address = f'unix:path={tmp}/bus'
        daemon = subprocess.Popen(['dbus-daemon', '--session', f'--address={address}',
                                   '--nofork', '--nopidfile', '--print-address=1'],
                                  stdout=subprocess.PIPE, text=True)
        procs.append(daemon)
        daemon.stdout.readline()  # printed once it listens
        procs.append(subprocess.Popen([args.qubesd, f'--bus-address={address}',
                                       f'--state-dir={tmp}/state',
                                       '--libvirt-uri=test:///default'],
                                      stderr=open(f'{tmp}/qubesd.log', 'w')))
        time.sleep(1.5)
        env = dict(os.environ, XDG_CONFIG_HOME=f'{tmp}/config', GSETTINGS_BACKEND='memory',
                   NO_AT_BRIDGE='1', LC_ALL='C.UTF-8')
        figures = {}
        for _ in range(args.runs):
            # its own process group: a run that hangs takes its Xvfb along when it is ended
            run = subprocess.Popen(['xvfb-run', '-a', '-s', '-screen 0 1280x800x24']
                                   + os.environ.get('QM_BENCH_WRAPPER', '').split()
                                   + [args.qube_manager, f'--bus-address={address}', '--bench'],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, start_new_session=True)
            try:
                out = run.communicate(timeout=60)[0]
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                out = run.communicate()[0]
            for line in out.splitlines():
                key, _, value = line.partition('\t')
                figures.setdefault(key, []).append(float(value))
        for key, values in figures.items():
            print(f'{key}\tmedian {statistics.median(values):.1f}\t'
                  f'all {" ".join(f"{v:.0f}" for v in values)}')
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
