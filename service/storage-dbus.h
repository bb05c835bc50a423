/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus-object.h"
#include "manager.h"

/* Pool and Volume objects, the Manager's pool and volume methods, the model's storage hooks. */
/* State and model hooks, once. */
int storage_dbus_init(Manager *m);
/* What outlives one loop iteration (the volume property memo): freed at exit. */
void storage_dbus_done(Manager *m);
/* The Manager's storage methods, the Pool objects and the Volume objects. */
extern const BusObjectImplementation storage_object;
