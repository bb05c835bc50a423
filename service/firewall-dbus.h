/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The per-qube firewall on the bus (docs/daemon.md, "Firewall"): the
 * org.qubes_os.Admin1.Firewall interface on every qube but dom0, the rules kept in memory and in
 * <vm dir>/firewall.xml, the expiry timer, the firewall-changed event, and the libvirt network
 * filter that enforces the rules (firewall-vmm.c). The grammar is model/firewall.c. */

#include "bus-object.h"
#include "manager.h"
#include "model/firewall.h"

typedef struct FirewallState FirewallState;

/* Loads every qube's firewall.xml, arms the expiry timer, listens to the model (a qube that
 * goes takes its filter with it); before the object tree is registered. */
int firewall_dbus_init(Manager *m);
void firewall_dbus_done(Manager *m);

/* A qube's rules (loaded on first use; NULL only when out of memory). */
const Firewall *firewall_of(Manager *m, Domain *d);
/* Replace a qube's rules (taken over): written durably first, then in memory, then
 * firewall-changed, PropertiesChanged and the filter. On failure nothing changed. */
int firewall_replace(Manager *m, Domain *d, Firewall *fw, QError *e);

/* The Firewall interface on every qube but dom0 (a child of manager_object). */
extern const BusObjectImplementation firewall_object;
