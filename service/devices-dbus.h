/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Devices on the bus (docs/daemon.md, "Devices"): the Device objects
 * (/org/qubes_os/Admin1/device/<class>/<backend>/<port>), the per-qube
 * org.qubes_os.Admin1.DomainDevices interface, dom0's discovery and hotplug (sd-device; the
 * kernel's uevents where no udevd runs) and the device events. What reaches libvirt, and the
 * state both sides share, is devices-vmm.h. */

#include "bus-object.h"
#include "manager.h"

/* The state, the first lists of dom0's devices, hotplug, and the model listener (a qube's start
 * and stop); before the object tree is registered. */
int devices_dbus_init(Manager *m);
void devices_dbus_done(Manager *m);

/* The Device objects and the DomainDevices interface on every qube (a child of manager_object). */
extern const BusObjectImplementation devices_object;
