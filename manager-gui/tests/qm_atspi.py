# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the Qube Manager's window tests share: finding its widgets through AT-SPI, and calling
qubesd on the test's bus, stopping what a test started. Import after gi.require_version('Atspi', '2.0') has succeeded (the tests
skip without it)."""

import subprocess
import time

from gi.repository import Atspi, Gio, GLib


def walk(acc, depth=0):
    if acc is None or depth > 40:
        return
    yield acc
    for i in range(acc.get_child_count()):
        yield from walk(acc.get_child_at_index(i), depth + 1)


def find(root, role=None, name=None, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for acc in walk(root):
            try:
                if ((role is None or acc.get_role_name() == role)
                        and (name is None or acc.get_name() == name)):
                    return acc
            except GLib.Error:
                continue
        time.sleep(0.2)
    raise AssertionError(f'no accessible {role!r} named {name!r}')


def find_app(name, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desktop = Atspi.get_desktop(0)
        for i in range(desktop.get_child_count()):
            app = desktop.get_child_at_index(i)
            if app is not None and app.get_name() == name:
                return app
        time.sleep(0.2)
    raise AssertionError(f'application {name} not on the accessibility bus')


class Bus:
    """A connection to the test's bus, as root or as the window's user."""

    def __init__(self, address):
        self.conn = Gio.DBusConnection.new_for_address_sync(
            address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

    def call(self, path, iface, method, sig=None, args=(), dest='org.qubes_os.Admin1'):
        params = GLib.Variant(sig, args) if sig else None
        return self.conn.call_sync(dest, path, iface, method, params, None,
                                   Gio.DBusCallFlags.NONE, 10000, None).unpack()

    def has_owner(self, name='org.qubes_os.Admin1'):
        return self.call('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'NameHasOwner', '(s)',
                         (name,), dest='org.freedesktop.DBus')[0]


def stop_processes(procs):
    """Terminate what a test started, the last started first."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
