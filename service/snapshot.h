/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "bus-object.h"

/* The callback on the root object (manager-dbus.c): answers
 * org.freedesktop.DBus.ObjectManager.GetManagedObjects, passes everything else on. */
int snapshot_object_callback(sd_bus_message *msg, void *userdata, sd_bus_error *error);
