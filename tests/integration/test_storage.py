#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Storage over D-Bus: pools, volumes created with their qube, Info, import through a file
descriptor (sha256 after import and after revert), clone tokens, and hostile arguments.

Every test runs twice (harness.over_each_route): through the bus (TestStorage_bus) and over
qubesd's private socket (TestStorage_private), file descriptors included."""

import hashlib
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTestCase, ROOT_PATH, bus_path_escape  # noqa: E402

from gi.repository import Gio, GLib  # noqa: E402

P = 'org.qubes_os.Admin1.'
VOLUME_IFACE = P + 'Volume'
POOL_IFACE = P + 'Pool'
E = P + 'Error.'
MiB = 1 << 20


def volume_path(qube, volume):
    return ROOT_PATH + '/domain/' + bus_path_escape(qube) + '/volume/' + bus_path_escape(volume)


def pool_path(name):
    return ROOT_PATH + '/pool/' + bus_path_escape(name)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(MiB), b''):
            h.update(chunk)
    return h.hexdigest()


@harness.over_each_route
class TestStorage(DaemonTestCase):
    QUBES_XML = harness.DEMO_XML

    # --- helpers ------------------------------------------------------------------------------

    def vol(self, qube, volume, method, signature=None, args=()):
        return self.d.call(volume_path(qube, volume), VOLUME_IFACE, method, signature, args)

    def create(self, name, klass='StandaloneVM', pool=None):
        opts = {'pool': pool} if pool else {}
        return self.d.manager('CreateDomain', 'ssssa{ss}', (klass, name, 'red', '', opts))[0]

    def add_reflink_pool(self, name='rp'):
        path = os.path.join(self.d.dir, 'pool-' + name)
        self.d.manager('AddPool', 'sa(ss)', ('file-reflink', [('name', name), ('dir_path', path),
                                                              ('setup_check', 'False')]))
        return path

    def import_data(self, qube, volume, data, size=None, via_pipe=True):
        """Import bytes through a pipe fed by a thread (or a file); returns the call's result."""
        if via_pipe:
            rfd, wfd = os.pipe()

            def feed():
                try:
                    with os.fdopen(wfd, 'wb') as w:
                        w.write(data)
                except BrokenPipeError:
                    pass
            t = threading.Thread(target=feed)
            t.start()
        else:
            path = os.path.join(self.d.dir, 'import-src')
            with open(path, 'wb') as f:
                f.write(data)
            rfd = os.open(path, os.O_RDONLY)
            t = None
        try:
            fds = Gio.UnixFDList.new()
            idx = fds.append(rfd)
            msg = Gio.DBusMessage.new_method_call(harness.BUS_NAME, volume_path(qube, volume), VOLUME_IFACE,
                                                  'ImportWithSize' if size is not None else 'Import')
            if size is not None:
                msg.set_body(GLib.Variant('(hs)', (idx, size)))
            else:
                msg.set_body(GLib.Variant('(h)', (idx,)))
            msg.set_unix_fd_list(fds)
            os.close(rfd)
            reply, _ = self.d.call_conn.send_message_with_reply_sync(msg, Gio.DBusSendMessageFlags.NONE, 60000,
                                                                     None)
        finally:
            if t:
                t.join()
        if reply.get_message_type() == Gio.DBusMessageType.ERROR:
            body = reply.get_body()
            values = body.unpack() if body is not None else ()
            raise harness.DBusError(reply.get_error_name(), values[0] if values else '', values)
        return reply

    # --- pools --------------------------------------------------------------------------------

    def test_pool_directory_made_at_start(self):
        """A pool in qubes.xml whose directory does not exist yet: qubesd makes it when it starts,
        as upstream's setup_pools() does, so Info has the filesystem's size and usage (and the
        qubes' subdirectories are there for the first volume)."""
        self.d.stop()
        pool_dir = os.path.join(self.d.dir, 'later-pool')
        with open(self.d.xml_path, encoding='utf-8') as f:
            text = f.read()
        text = text.replace('</pools>', '<pool name="later" dir_path="%s" driver="file" revisions_to_keep="1" '
                            'ephemeral_volatile="False"/>\n</pools>' % pool_dir)
        with open(self.d.xml_path, 'w', encoding='utf-8') as f:
            f.write(text)
        self.d.start()
        # qubesd owns its name a moment before it has set the pools up; its first answer comes after
        info = self.d.call(pool_path('later'), POOL_IFACE, 'Info')[0].splitlines()
        for sub in ('', 'appvms', 'vm-templates'):
            self.assertTrue(os.path.isdir(os.path.join(pool_dir, sub)), sub)
        self.assertEqual(info[:5], ['dir_path=' + pool_dir, 'driver=file', 'ephemeral_volatile=False',
                                    'name=later', 'revisions_to_keep=1'])
        self.assertRegex(info[5], r'^size=[1-9][0-9]*$')
        self.assertRegex(info[6], r'^usage=[0-9]+$')
        self.assertEqual(info[7:], [])  # not inside another pool's directory

    def test_pools(self):
        pools = self.d.manager('ListPools')[0]
        self.assertEqual([p[0] for p in pools], ['varlibqubes', 'linux-kernel'])
        self.assertEqual(pools[0][2], pool_path('varlibqubes'))
        drivers = dict(self.d.manager('ListPoolDrivers')[0])
        self.assertEqual(drivers['file'], ['revisions_to_keep', 'dir_path', 'ephemeral_volatile'])
        self.assertEqual(drivers['file-reflink'],
                         ['revisions_to_keep', 'dir_path', 'setup_check', 'ephemeral_volatile'])
        self.assertEqual(drivers['linux-kernel'], ['dir_path'])
        info = self.d.call(pool_path('varlibqubes'), POOL_IFACE, 'Info')[0]
        lines = info.splitlines()
        self.assertEqual(lines[:5], ['dir_path=' + self.d.state_dir, 'driver=file', 'ephemeral_volatile=False',
                                     'name=varlibqubes', 'revisions_to_keep=1'])
        self.assertTrue(lines[5].startswith('size=') and lines[6].startswith('usage='), info)
        kinfo = self.d.call(pool_path('linux-kernel'), POOL_IFACE, 'Info')[0]
        # the kernel pool's directory lies inside varlibqubes': upstream says so
        self.assertEqual(kinfo, 'dir_path=%s/vm-kernels\ndriver=linux-kernel\nname=linux-kernel\n'
                         'included_in=varlibqubes\n' % self.d.state_dir)

        self.assertDBusError(E + 'QubesPoolNotFoundError', self.d.manager, 'GetPool', 's', ('nope',))
        self.assertDBusError(E + 'ProtocolError', self.d.manager, 'AddPool', 'sa(ss)',
                             ('file', [('name', 'a'), ('name', 'b')]), message='Options must be unique')
        self.assertDBusError(E + 'ProtocolError', self.d.manager, 'AddPool', 'sa(ss)',
                             ('file', [('name', '../x'), ('dir_path', '/tmp/x')]),
                             message='Pool name must be in safe set')
        self.assertDBusError(E + 'ProtocolError', self.d.manager, 'AddPool', 'sa(ss)',
                             ('file', [('name', 'x'), ('dir_path', '/tmp/x'), ('bogus', '1')]),
                             message='Unexpected driver options found')
        self.assertDBusError(E + 'QubesException', self.d.manager, 'AddPool', 'sa(ss)',
                             ('file', [('name', 'x')]), message='missing required driver options: dir_path')
        self.assertDBusError(E + 'QubesPoolInUseError', self.d.manager, 'AddPool', 'sa(ss)',
                             ('file', [('name', 'varlibqubes'), ('dir_path', '/tmp/x')]))
        self.assertDBusError(E + 'PermissionDenied', self.d.manager, 'AddPool', 'sa(ss)',
                             ('nosuch', [('name', 'x')]), message="Argument not in 'available drivers'")

        # file-reflink with its set-up check: refused where the file system cannot reflink
        path = os.path.join(self.d.dir, 'checked')
        try:
            self.d.manager('AddPool', 'sa(ss)', ('file-reflink', [('name', 'checked'), ('dir_path', path)]))
            sys.stderr.write('(reflink supported here)\n')
        except harness.CallError as e:
            self.assertEqual(harness.dbus_error_name(e), E + 'StoragePoolException')
            self.assertIn('does not support reflinks', harness.dbus_error_message(e))
        self.add_reflink_pool('rp')
        self.assertIn('rp', [p[0] for p in self.d.manager('ListPools')[0]])
        self.d.call(pool_path('rp'), POOL_IFACE, 'SetRevisionsToKeep', 's', ('3',))
        self.assertEqual(self.d.dbus_get(pool_path('rp'), POOL_IFACE, 'RevisionsToKeep'), 3)
        self.assertDBusError(E + 'ProtocolError', self.d.call, pool_path('rp'), POOL_IFACE, 'SetRevisionsToKeep',
                             's', ('-2',), message="Value can't be lower than -1")
        self.assertDBusError(E + 'ProtocolError', self.d.call, pool_path('rp'), POOL_IFACE,
                             'SetEphemeralVolatile', 's', ('maybe',), message='Payload is not boolean ASCII')
        self.assertDBusError(E + 'QubesPoolInUseError', self.d.manager, 'RemovePool', 's', ('varlibqubes',))
        # persisted
        self.d.restart()
        self.assertIn('rp', [p[0] for p in self.d.manager('ListPools')[0]])
        self.d.manager('RemovePool', 's', ('rp',))
        self.assertNotIn(b'name="rp"', self.d.xml_bytes())

    # --- volumes ------------------------------------------------------------------------------

    def test_create_volumes_and_info(self):
        self.create('sa')
        base = os.path.join(self.d.state_dir, 'appvms', 'sa')
        self.assertEqual(os.path.getsize(os.path.join(base, 'private.img')), 2147483648)
        self.assertEqual(os.path.getsize(os.path.join(base, 'root.img')), 10737418240)
        vols = self.d.manager('ListVolumes', 's', ('sa',))[0]
        self.assertEqual([v[0] for v in vols], ['root', 'private', 'volatile', 'kernel'])
        self.assertEqual(vols[1][1], volume_path('sa', 'private'))
        info = self.vol('sa', 'private', 'Info')[0]
        self.assertEqual(info, 'pool=varlibqubes\nvid=appvms/sa/private\nsize=2147483648\nusage=0\nrw=True\n'
                               'source=\npath=%s/private.img\nsave_on_stop=True\nsnap_on_start=False\n'
                               'revisions_to_keep=1\nephemeral=False\nis_outdated=False\n' % base)
        self.assertEqual(self.d.dbus_get(volume_path('sa', 'private'), VOLUME_IFACE, 'Size'), 2147483648)
        # the fields (qube, volume) let the Admin API shim say "Argument not in 'sa volumes'"
        self.d.manager('EnableErrorDetails')
        e = self.assertDBusError(E + 'QubesVolumeNotFoundError', self.d.manager, 'GetVolume', 'ss', ('sa', 'nope'))
        self.assertEqual(list(e.body[2]), ['sa', 'nope'])
        # the qube's removal takes its files along
        self.d.domain('sa', 'Remove')
        self.assertFalse(os.path.exists(os.path.join(base, 'private.img')))

    def test_import_revert_clone(self):
        self.add_reflink_pool('rp')
        self.create('sb', pool='rp')
        img = os.path.join(self.d.dir, 'pool-rp', 'appvms', 'sb', 'private.img')
        first = os.urandom(64 * MiB)
        second = os.urandom(64 * MiB)
        collector = harness.SignalCollector(self.d.conn, interface='org.freedesktop.DBus.Properties',
                                            member='PropertiesChanged', path=volume_path('sb', 'private'))
        self.import_data('sb', 'private', first, size=str(len(first)))
        self.assertEqual(sha256_file(img), hashlib.sha256(first).hexdigest())
        self.assertEqual(os.path.getsize(img), 64 * MiB)
        self.assertTrue(collector.wait_for(lambda s: any('Usage' in x[3][1] for x in s)),
                        'no PropertiesChanged(Usage) after the import')
        self.assertGreaterEqual(self.d.dbus_get(volume_path('sb', 'private'), VOLUME_IFACE, 'Usage'), 60 * MiB)
        self.import_data('sb', 'private', second)  # Import: exactly the current size
        self.assertEqual(sha256_file(img), hashlib.sha256(second).hexdigest())
        revs = self.vol('sb', 'private', 'ListSnapshots')[0]
        self.assertEqual(len(revs), 1, revs)  # revisions_to_keep=1
        self.vol('sb', 'private', 'Revert', 's', (revs[-1],))
        self.assertEqual(sha256_file(img), hashlib.sha256(first).hexdigest())

        # a wrong amount of data fails and leaves the volume as it was
        self.assertDBusError(E + 'QubesException', self.import_data, 'sb', 'private', b'x' * MiB,
                             message='Data import failed')
        self.assertDBusError(E + 'QubesException', self.import_data, 'sb', 'private', b'x' * (MiB + 1),
                             str(MiB), message='Data import failed')
        self.assertEqual(sha256_file(img), hashlib.sha256(first).hexdigest())
        self.assertFalse(os.path.exists(img.replace('.img', '-import.img')))

        # clone with a one-time token
        self.create('sc', pool='rp')
        token = self.vol('sb', 'private', 'CloneFrom')[0]
        self.assertRegex(token, r'^[A-Za-z0-9]{32}$')
        self.vol('sc', 'private', 'CloneTo', 's', (token,))
        img_c = os.path.join(self.d.dir, 'pool-rp', 'appvms', 'sc', 'private.img')
        self.assertEqual(sha256_file(img_c), hashlib.sha256(first).hexdigest())
        self.assertDBusError(E + 'QubesVolumeCopyTokenNotFoundError', self.vol, 'sc', 'private', 'CloneTo', 's',
                             (token,), message='Token to clone volume of qube was not found')

    def test_hostile_arguments(self):
        self.create('sa')
        before = self.vol('sa', 'private', 'Info')[0]
        xml_before = self.d.xml_bytes()
        for size, msg in (('01', 'Volume size contains spurious leading zeros'),
                          ('-5', 'Volume size contains non ASCII digits'),
                          ('+5', 'Volume size contains non ASCII digits'),
                          ('1e9', 'Volume size contains non ASCII digits'),
                          ('99999999999999999999', 'Volume size is bigger than 19 decimal digits')):
            self.assertDBusError(E + 'ProtocolError', self.vol, 'sa', 'private', 'Resize', 's', (size,),
                                 message=msg)
        self.assertDBusError(E + 'QubesValueError', self.vol, 'sa', 'private', 'Resize', 's',
                             ('9223372036854775807',), message='larger than the maximum')
        self.assertDBusError(E + 'StoragePoolException', self.vol, 'sa', 'private', 'Resize', 's', ('1024',),
                             message='For your own safety')
        self.assertDBusError(E + 'ProtocolError', self.vol, 'sa', 'private', 'Revert', 's', ('../../etc',),
                             message='Revision name must be in safe set')
        self.assertDBusError(E + 'QubesVolumeRevisionNotFoundError', self.vol, 'sa', 'private', 'Revert', 's',
                             ('nope',))
        for token in ('', 'x' * 32, '../' * 11, 'A' * 33):
            self.assertDBusError(E + 'QubesVolumeCopyTokenNotFoundError', self.vol, 'sa', 'private', 'CloneTo',
                                 's', (token,))
        for vol in ('../private', '/etc/passwd', 'private/../root'):
            self.assertDBusError(E + 'QubesVolumeNotFoundError', self.d.manager, 'GetVolume', 'ss', ('sa', vol))
        self.assertDBusError(E + 'ProtocolError', self.vol, 'sa', 'private', 'SetRw', 's', ('maybe',))
        self.assertDBusError(E + 'ProtocolError', self.vol, 'sa', 'private', 'SetRevisionsToKeep', 's', ('1x',))
        self.assertDBusError(E + 'QubesNotImplementedError', self.vol, 'sa', 'private', 'SetRevisionsToKeep',
                             's', ('5',))
        # a pool whose directory would be relative, or whose name escapes
        self.assertDBusError(E + 'QubesValueError', self.d.manager, 'AddPool', 'sa(ss)',
                             ('file', [('name', 'rel'), ('dir_path', '../x')]))
        self.assertEqual(self.vol('sa', 'private', 'Info')[0], before)
        self.assertEqual(self.d.xml_bytes(), xml_before)
        # a kernel vid from a hostile qubes.xml never leaves the kernel directory
        self.d.set_property('sa', 'kernel', '')
        info = self.vol('sa', 'kernel', 'Info')[0]
        self.assertIn('vid=\n', info)
        self.assertIn('path=\n', info)


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
