#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The snapshot a client loads at start-up (docs/dbus-api.md, "The snapshot"): the root's
GetManagedObjects carries every object but the qubes' volumes, each qube with its Domain
interface whole and its other interfaces named, with no value (read on demand: Properties.GetAll,
or Manager.GetAllDomainProperties for every qube); a qube's own GetManagedObjects carries its
volumes. Every value in a snapshot is the value Properties.Get gives, and a change is in the next
snapshot (qubesd builds it per call: nothing cached goes stale). Over the bus and over the private
socket."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, ROOT_PATH, domain_path  # noqa: E402

OM = 'org.freedesktop.DBus.ObjectManager'
P = 'org.qubes_os.Admin1.'
ALL_CLASSES_XML = os.path.join(harness.TEST_DATA_DIR, 'all-classes.xml')
# what the Domain interface of every qube carries, named here so that a value missing from both
# the snapshot and Properties.GetAll (a getter dropped) is noticed too
DOMAIN_PROPERTIES = {'Name', 'Qid', 'Uuid', 'Klass', 'Label', 'Icon', 'IncludeInBackups', 'PowerState',
                     'Features', 'Tags'}


@harness.over_each_route
class TestSnapshot(DaemonTestCase):
    QUBES_XML = ALL_CLASSES_XML

    def snapshot(self, path=ROOT_PATH):
        return self.d.call(path, OM, 'GetManagedObjects', reply_type='(a{oa{sa{sv}}})')[0]

    def qubes(self):
        return [name for name, *_ in self.d.manager('ListDomains')[0]]

    def test_what_it_carries(self):
        objs = self.snapshot()
        names = self.qubes()
        self.assertGreaterEqual(len(names), 6)
        for name in names:
            path = domain_path(name)
            self.assertIn(path, objs, 'the snapshot lacks %s' % name)
            ifaces = objs[path]
            # every interface of the qube, named (introspection has the same ones)
            live = {i for i in ifaces}
            self.assertIn(P + 'Domain', live)
            self.assertIn(P + 'DomainDevices', live)
            # the Domain interface whole
            self.assertEqual(ifaces[P + 'Domain'], self.d.dbus_get_all(path, P + 'Domain'), name)
            self.assertLessEqual(DOMAIN_PROPERTIES, set(ifaces[P + 'Domain']), name)
            # the others named, empty: their values are read on demand, and are there
            for iface, props in ifaces.items():
                if iface == P + 'Domain':
                    continue
                self.assertEqual(props, {}, '%s %s' % (name, iface))
            if ifaces[P + 'Domain']['Klass'] in ('AppVM', 'TemplateVM', 'StandaloneVM', 'DispVM'):
                self.assertIn(P + 'QubesVM', live, name)
                self.assertIn('Netvm', self.d.dbus_get_all(path, P + 'QubesVM'), name)
        # the qubes' volumes are not in the root's snapshot …
        self.assertFalse([p for p in objs if '/volume/' in p])
        # … labels, pools and devices are, whole
        for path in (harness.label_path('red'), ROOT_PATH + '/pool/varlibqubes'):
            self.assertIn(path, objs)
            for iface, props in objs[path].items():
                everything = self.d.dbus_get_all(path, iface)
                if iface == P + 'Pool':  # the file system's figures move as other programs write
                    props, everything = dict(props, Usage=0, Size=0), dict(everything, Usage=0, Size=0)
                self.assertEqual(props, everything, path)
        self.assertTrue([p for p in objs if p.startswith(ROOT_PATH + '/device/')])
        # the standard interfaces every object has are not listed as empty entries
        self.assertFalse([p for p, i in objs.items() if 'org.freedesktop.DBus.Properties' in i])

    def test_volumes_of_a_qube(self):
        work = domain_path('work')
        objs = self.snapshot(work)
        names = sorted(p.rsplit('/', 1)[1] for p in objs)
        self.assertEqual(names, sorted(v[0] for v in self.d.manager('ListVolumes', 's', ('work',))[0]))
        self.assertIn(work + '/volume/private', objs)
        for path, ifaces in objs.items():
            self.assertEqual(list(ifaces), [P + 'Volume'])
            self.assertEqual(ifaces[P + 'Volume'], self.d.dbus_get_all(path, P + 'Volume'), path)
        # dom0 has none
        self.assertEqual(self.snapshot(domain_path('dom0')), {})

    def test_bad_calls(self):
        self.assertDBusError('org.freedesktop.DBus.Error.InvalidArgs', self.d.call, ROOT_PATH, OM,
                             'GetManagedObjects', 's', ('x',))
        self.assertDBusError('org.freedesktop.DBus.Error.UnknownObject', self.d.call, domain_path('no-such-qube'),
                             OM, 'GetManagedObjects')
        self.assertDBusError('org.freedesktop.DBus.Error.UnknownMethod', self.d.call,
                             domain_path('work') + '/volume/private', OM, 'GetManagedObjects')
        self.assertIn(domain_path('work'), self.snapshot())  # still serving

    def test_named_properties_of_every_qube(self):
        # GetDomainProperties: GetAllDomainProperties' rows of the named properties, in its order;
        # a name no qube has matches nothing, a class without one leaves it out
        everything = self.d.manager('GetAllDomainProperties')[0]
        names = ['netvm', 'template', 'label', 'no_such_property', 'virt_mode']
        some = self.d.manager('GetDomainProperties', 'as', (names,))[0]
        self.assertEqual(sorted(some), sorted(everything))
        for qube, rows in everything.items():
            self.assertEqual(some[qube], [row for row in rows if row[0] in names], qube)
        self.assertIn('template', [row[0] for row in some['work']])
        self.assertNotIn('template', [row[0] for row in some['dom0']])
        # a value as it changes
        self.d.domain('work', 'SetProperty', 'ss', ('virt_mode', 'pv'))
        rows = dict((r[0], r[1:]) for r in self.d.manager('GetDomainProperties', 'as', (['virt_mode'],))[0]['work'])
        self.assertEqual(rows, {'virt_mode': ('str', False, 'pv')})
        self.assertEqual(self.d.manager('GetDomainProperties', 'as', ([],))[0],
                         {qube: [] for qube in everything})
        self.assertDBusError(harness.ERROR_PREFIX + 'QubesValueError', self.d.manager, 'GetDomainProperties',
                             'as', (['label'] * 257,))
        self.assertIn('work', self.d.manager('GetDomainProperties', 'as', (['label'] * 256,))[0])

    def test_a_change_is_in_the_next_snapshot(self):
        work = domain_path('work')
        before = self.snapshot()
        self.assertNotIn('snapshot-test', before[work][P + 'Domain']['Tags'])
        self.d.domain('work', 'AddTag', 's', ('snapshot-test',))
        self.d.domain('work', 'SetFeature', 'ss', ('snapshot-feature', '1'))
        self.d.set_property('work', 'label', 'blue')
        after = self.snapshot()
        self.assertIn('snapshot-test', after[work][P + 'Domain']['Tags'])
        self.assertEqual(after[work][P + 'Domain']['Features'].get('snapshot-feature'), '1')
        self.assertEqual(after[work][P + 'Domain']['Label'], harness.label_path('blue'))

        # a qube created is there with its volumes; a qube removed is gone
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'snap-new', 'red', 'fedora-42', {}))
        new = domain_path('snap-new')
        self.assertIn(new, self.snapshot())
        self.assertIn(new + '/volume/private', self.snapshot(new))
        self.d.domain('snap-new', 'Remove')
        self.assertNotIn(new, self.snapshot())
        self.assertDBusError('org.freedesktop.DBus.Error.UnknownObject', self.d.call, new, OM, 'GetManagedObjects')

        # a label created is there
        self.d.manager('CreateLabel', 'ss', ('snap-label', '0x123456'))
        self.assertIn(harness.label_path('snap-label'), self.snapshot())

        # references to names that need escaping in a path are the paths the objects go by
        self.d.manager('CreateDomain', 'ssssa{ss}', ('AppVM', 'net-2.x_y', 'red', 'fedora-42', {}))
        self.d.set_property('net-2.x_y', 'provides_network', 'True')
        self.d.set_property('work', 'netvm', 'net-2.x_y')
        self.d.set_property('work', 'label', 'snap-label')
        after = self.snapshot()
        netvm = self.d.dbus_get_all(work, P + 'QubesVM')['Netvm']
        self.assertEqual(netvm, domain_path('net-2.x_y'))
        self.assertIn(netvm, after)
        self.assertEqual(after[work][P + 'QubesVM'], {})
        self.assertEqual(after[work][P + 'Domain']['Label'], harness.label_path('snap-label'))
        self.assertIn(after[work][P + 'Domain']['Label'], after)

    def test_strings_beyond_ascii(self):
        """A string of ASCII goes in without sd-bus's UTF-8 check (bus_append_string()), any other
        through it: both come out as they went in, in the snapshot as in Properties.Get. The API
        takes ASCII feature values only; a qubes.xml may hold others."""
        work = domain_path('work')
        values = {'snap-ascii': 'plain value 1', 'snap-utf8': '\u017c\u00f3\u0142w \u2603 \U0001f600',
                  'snap-empty': ''}
        self.d.domain('work', 'SetFeature', 'ss', ('snap-ascii', values['snap-ascii']))
        self.d.domain('work', 'SetFeature', 'ss', ('snap-empty', ''))
        self.d.domain('work', 'AddTag', 's', ('snap-tag',))
        self.d.restart()  # after a save of qubes.xml: the feature is added there
        self.d.stop()
        with open(self.d.xml_path, encoding='utf-8') as f:
            xml = f.read()
        marker = '<feature name="snap-ascii">'
        self.assertIn(marker, xml)
        with open(self.d.xml_path, 'w', encoding='utf-8') as f:
            f.write(xml.replace(marker, '<feature name="snap-utf8">%s</feature>%s' % (values['snap-utf8'], marker), 1))
        self.d.start()
        domain = self.snapshot()[work][P + 'Domain']
        for name, value in values.items():
            self.assertEqual(domain['Features'].get(name), value, name)
        self.assertEqual(domain['Features'], self.d.dbus_get_all(work, P + 'Domain')['Features'])
        self.assertIn('snap-tag', domain['Tags'])
        self.assertEqual(domain['Tags'], sorted(domain['Tags']))
        self.assertEqual(domain['PowerState'], 'Halted')
        self.assertEqual(domain['Name'], 'work')

load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
