# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the Qube Manager's window tests share: finding its widgets through AT-SPI. Import after
gi.require_version('Atspi', '2.0') has succeeded (the tests skip without it)."""

import time

from gi.repository import Atspi, GLib


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
