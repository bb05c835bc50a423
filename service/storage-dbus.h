/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

#define QUBESD_POOL_PREFIX "/org/qubes_os/Admin1/pool"
#define QUBESD_IFACE_POOL "org.qubes_os.Admin1.Pool"
#define QUBESD_IFACE_VOLUME "org.qubes_os.Admin1.Volume"
/* Volume objects: QUBESD_DOMAIN_PREFIX/<qube>/volume/<volume>, each part sd_bus_path_encode()d. */
#define QUBESD_VOLUME_PATH_TEMPLATE "/org/qubes_os/Admin1/domain/%/volume/%"

/* Pool and Volume objects, the Manager's pool and volume methods, the model's storage hooks. */
/* State and model hooks, once. */
int storage_dbus_init(Manager *m);
/* What outlives one loop iteration (the volume property memo): freed at exit. */
void storage_dbus_done(Manager *m);
/* The Pool and Volume objects and the Manager's storage methods, on one connection. */
int storage_dbus_register(Manager *m, sd_bus *bus);
char *pool_bus_path(const char *name);
char *volume_bus_path(const char *qube, const char *volume);
