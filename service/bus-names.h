/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The names qubesd's objects go by on D-Bus: the bus name, object paths (each variable part
 * escaped with sd_bus_path_encode) and interface names, and the interface that carries each
 * property of a qube. The contract is dbus-interfaces/; docs/dbus-api.md summarises it. */

#include "model/model.h"

#define QUBESD_BUS_NAME "org.qubes_os.Admin1"

#define QUBESD_ROOT_PATH "/org/qubes_os/Admin1"
#define QUBESD_DOMAIN_PREFIX "/org/qubes_os/Admin1/domain"
#define QUBESD_LABEL_PREFIX "/org/qubes_os/Admin1/label"
#define QUBESD_POOL_PREFIX "/org/qubes_os/Admin1/pool"
#define QUBESD_JOB_PREFIX "/org/qubes_os/Admin1/job"
/* Volume objects: QUBESD_DOMAIN_PREFIX/<qube>/volume/<volume>, each part sd_bus_path_encode()d. */
#define QUBESD_VOLUME_PATH_TEMPLATE "/org/qubes_os/Admin1/domain/%/volume/%"
/* Device objects: QUBESD_DEVICE_PREFIX/<class>/<backend>/<port>, each part sd_bus_path_encode()d. */
#define QUBESD_DEVICE_PREFIX "/org/qubes_os/Admin1/device"
#define QUBESD_DEVICE_PATH_TEMPLATE "/org/qubes_os/Admin1/device/%/%/%"

#define QUBESD_IFACE_MANAGER "org.qubes_os.Admin1.Manager"
#define QUBESD_IFACE_DOMAIN "org.qubes_os.Admin1.Domain"
#define QUBESD_IFACE_QUBESVM "org.qubes_os.Admin1.QubesVM"
#define QUBESD_IFACE_LABEL "org.qubes_os.Admin1.Label"
#define QUBESD_IFACE_POOL "org.qubes_os.Admin1.Pool"
#define QUBESD_IFACE_VOLUME "org.qubes_os.Admin1.Volume"
#define QUBESD_IFACE_JOB "org.qubes_os.Admin1.Job"
#define QUBESD_IFACE_DEVICE "org.qubes_os.Admin1.Device"
#define QUBESD_IFACE_DOMAIN_DEVICES "org.qubes_os.Admin1.DomainDevices"
#define QUBESD_IFACE_FIREWALL "org.qubes_os.Admin1.Firewall"
/* The interface of the Event copies addressed to one subscriber (Manager.SubscribeEvents): not a
 * broadcast, so the bus policy can let everyone receive these and only administrators the rest. */
#define QUBESD_IFACE_SUBSCRIPTION "org.qubes_os.Admin1.Subscription"

/* Object paths (malloc'ed; NULL when out of memory). */
char *domain_bus_path(const Domain *d);
char *label_bus_path(const Label *l);
char *pool_bus_path(const char *name);
char *volume_bus_path(const char *qube, const char *volume);
char *device_bus_path(const char *devclass, const char *backend, const char *port_id);
/* prefix/<name escaped as sd_bus_path_encode() does> written into buf; NULL when it does not fit
 * (then use the allocating functions above). */
const char *bus_path_encode_buf(const char *prefix, const char *name, char *buf, size_t size);
/* The qube whose object path is path (exactly; not a sub-object), or NULL. */
Domain *domain_of_bus_path(App *app, const char *path);
/* For the time one object of a snapshot is built (snapshot.c), the answer for that very string
 * (the same pointer): its fifteen find functions then decode the path once, not fifteen times.
 * NULL path: forget it. */
void domain_of_bus_path_remember(const char *path, Domain *d);
/* The qube whose object or sub-object (a volume) path is path, or NULL. */
Domain *domain_of_bus_subpath(App *app, const char *path);

/* The class interface of qubes of class c ("org.qubes_os.Admin1.AppVM"). */
const char *qubes_class_interface(QubesClass c);
/* The class whose interface is name, or -1. */
int qubes_class_of_interface(const char *name);
/* The interface that carries property p on a qube of class c: Domain (every class has it),
 * QubesVM (every local class has it) or the class interface. */
const char *domain_prop_interface(const PropDef *p, QubesClass c);
