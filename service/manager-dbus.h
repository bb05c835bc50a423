/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

/* Register the whole object tree, from the Manager at /org/qubes_os/Admin1 down, on a connection
 * (the bus, or a private connection): the one function that registers objects. */
int manager_dbus_register(Manager *m, sd_bus *bus);
