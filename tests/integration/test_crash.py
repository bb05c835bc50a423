#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Crash safety: qubesd killed with SIGKILL at random instants during a stream of SetProperty calls,
and during a stream of Manager.CreateDomain / Domain.Remove calls. After every restart qubes.xml
parses and holds the last acknowledged value or the one in flight; every acknowledged create and
remove is reflected (only the call in flight may or may not be)."""

import os
import random
import sys
import threading
import time
import unittest

from gi.repository import GLib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase  # noqa: E402

N_SETS = int(os.environ.get('QUBES_CRASH_SETS', '1000'))
KILL_PROBABILITY = 0.03  # about 30 kills over 1000 sets
N_CREATE_REMOVE = int(os.environ.get('QUBES_CRASH_CREATES', '500'))
CREATE_KILL_PROBABILITY = 0.08  # about 40 kills over 500 creates and removes


def xml_domain_names(root):
    names = set()
    for d in root.iter('domain'):
        if d.get('class') == 'AdminVM':
            names.add('dom0')
            continue
        props = d.find('properties')
        for p in (props.findall('property') if props is not None else ()):
            if p.get('name') == 'name':
                names.add(p.text or '')
    return names


class TestCrashSafety(DaemonTestCase):
    QUBES_XML = harness.DEMO_XML

    def check_state(self, acked, in_flight, kills):
        root = harness.parse_xml_file(self.d.xml_path)
        saved = harness.xml_domain_property(root, 'work', 'memory')
        allowed = {str(acked)} | ({str(in_flight)} if in_flight is not None else set())
        self.assertIn(saved, allowed,
                      'after kill %d: qubes.xml has memory=%s; last acknowledged %s, in flight %s'
                      % (kills, saved, acked, in_flight))
        typ, is_default, live = self.d.get_property('work', 'memory')
        self.assertEqual(live, saved, 'after kill %d: the daemon reads memory=%s but qubes.xml has %s'
                         % (kills, live, saved))
        return int(saved)

    def recover(self, timer, acked, in_flight, kills):
        """qubesd was killed by our timer: reap it, restart, check the state."""
        if timer is None:
            raise AssertionError('qubesd died without being killed (status %s):\n%s'
                                 % (self.d.proc.poll(), self.d.log_tail()))
        timer.join()
        self.d.proc.wait(timeout=10)
        self.d.proc = None
        self.d.log.close()
        self.d.wait_name_gone()
        self.d.start()
        return self.check_state(acked, in_flight, kills)

    def test_kill9_during_sets(self):
        rnd = random.Random(os.environ.get('QUBES_TEST_SEED', str(time.time())))
        acked = 800
        kills = 0
        timer = None
        i = 1
        t0 = time.monotonic()
        while i <= N_SETS:
            if timer is None and rnd.random() < KILL_PROBABILITY:
                # kill at an instant unrelated to the call boundaries: during this call or one of
                # the next few, or between them
                proc = self.d.proc
                timer = threading.Timer(rnd.uniform(0, 0.01), lambda p=proc: p.kill())
                timer.start()
            try:
                self.d.set_property('work', 'memory', str(i))
            except harness.CallError as e:
                if self.d.proc.poll() is None and (timer is None or timer.is_alive()):
                    raise AssertionError('SetProperty memory=%d failed with qubesd alive: %s\n%s'
                                         % (i, e, self.d.log_tail()))
                kills += 1
                acked = self.recover(timer, acked, i, kills)
                timer = None
                if acked == i:
                    i += 1
                continue
            acked = i
            i += 1
            if timer is not None and not timer.is_alive():
                # the kill landed after the reply or between calls
                kills += 1
                acked = self.recover(timer, acked, None, kills)
                timer = None
        if timer is not None:
            timer.join()
            kills += 1
            self.recover(timer, acked, None, kills)
        self.assertEqual(self.d.get_property('work', 'memory'), ('int', False, str(N_SETS)))
        self.d.restart()
        self.assertEqual(self.d.get_property('work', 'memory'), ('int', False, str(N_SETS)))
        root = harness.parse_xml_file(self.d.xml_path)
        self.assertEqual(harness.xml_domain_property(root, 'work', 'memory'), str(N_SETS))
        leftovers = [f for f in os.listdir(self.d.state_dir) if f.startswith('qubes.xml~')]
        sys.stderr.write('%d sets, %d kills, %.1f s; temporary files left by kills: %d\n'
                         % (N_SETS, kills, time.monotonic() - t0, len(leftovers)))
        self.assertGreater(kills, 0, 'the test never killed qubesd')

    # --- creates and removes -------------------------------------------------------------------

    def check_domains(self, present, in_flight, kills):
        """qubes.xml and the live daemon hold exactly the acknowledged set of qubes, give or take
        the call in flight; returns the set actually there (in_flight resolved)."""
        root = harness.parse_xml_file(self.d.xml_path)
        saved = xml_domain_names(root)
        live = {row[0] for row in self.d.manager('ListDomains', reply_type='(a(sssso))')[0]}
        self.assertEqual(live, saved, 'after kill %d: the daemon lists %s but qubes.xml has %s'
                         % (kills, sorted(live ^ saved), sorted(saved ^ live)))
        allowed = [set(present)]
        if in_flight is not None:
            op, name = in_flight
            allowed.append(present | {name} if op == 'create' else present - {name})
        self.assertIn(saved, allowed,
                      'after kill %d: qubes.xml qubes differ from the acknowledged set: missing %s, '
                      'unexpected %s (in flight: %s)'
                      % (kills, sorted(present - saved), sorted(saved - present), in_flight))
        return saved

    def recover_domains(self, timer, present, in_flight, kills):
        if timer is None:
            raise AssertionError('qubesd died without being killed (status %s):\n%s'
                                 % (self.d.proc.poll(), self.d.log_tail()))
        timer.join()
        self.d.proc.wait(timeout=10)
        self.d.proc = None
        self.d.log.close()
        self.d.wait_name_gone()
        self.d.start()
        return self.check_domains(present, in_flight, kills)

    def test_kill9_during_creates_and_removes(self):
        rnd = random.Random(os.environ.get('QUBES_TEST_SEED', str(time.time())))
        base = self.check_domains(xml_domain_names(harness.parse_xml_file(self.d.xml_path)), None, 0)
        present = set(base)
        created = []  # ours, in creation order, still present (acknowledged)
        kills = creates = removes = during_call = 0
        timer = None
        serial = 0
        pending = None  # the next operation, retried after a kill until it is acknowledged
        t0 = time.monotonic()
        for _ in range(N_CREATE_REMOVE):
            if pending is None:
                # mostly creates while few exist, then as many removes as creates
                if created and (len(created) > 12 or rnd.random() < 0.45):
                    pending = ('remove', created[rnd.randrange(len(created))])
                else:
                    serial += 1
                    pending = ('create', 'crash-%d' % serial)
            op, name = pending
            if timer is None and rnd.random() < CREATE_KILL_PROBABILITY:
                proc = self.d.proc
                timer = threading.Timer(rnd.uniform(0, 0.015), lambda p=proc: p.kill())
                timer.start()
            try:
                if op == 'create':
                    self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', name, 'red', '', {}))
                else:
                    self.d.domain(name, 'Remove')
            except harness.CallError as e:
                if self.d.proc.poll() is None and (timer is None or timer.is_alive()):
                    raise AssertionError('%s %s failed with qubesd alive: %s\n%s'
                                         % (op, name, e, self.d.log_tail()))
                kills += 1
                during_call += 1
                present = self.recover_domains(timer, present, pending, kills)
                timer = None
                if (name in present) == (op == 'create'):
                    # the call in flight was saved before the kill: it is done
                    if op == 'create':
                        created.append(name)
                        creates += 1
                    else:
                        created.remove(name)
                        removes += 1
                    pending = None
                continue
            # acknowledged
            if op == 'create':
                present.add(name)
                created.append(name)
                creates += 1
            else:
                present.discard(name)
                created.remove(name)
                removes += 1
            pending = None
            if timer is not None and not timer.is_alive():
                kills += 1
                present = self.recover_domains(timer, present, None, kills)
                timer = None
        if timer is not None:
            timer.join()
            kills += 1
            present = self.recover_domains(timer, present, None, kills)
        self.d.restart()
        self.assertEqual(self.check_domains(present, None, kills), present)
        self.assertEqual(present, base | set(created))
        sys.stderr.write('%d creates, %d removes acknowledged, %d kills (%d during a call), %.1f s\n'
                         % (creates, removes, kills, during_call, time.monotonic() - t0))
        self.assertGreater(kills, 0, 'the test never killed qubesd')
        self.assertGreater(creates, 0)
        self.assertGreater(removes, 0)


if __name__ == '__main__':
    harness.main()
