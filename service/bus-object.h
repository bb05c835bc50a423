/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The object tree as data (after systemd's BusObjectImplementation): each *-dbus.c exports one
 * constant description of what it serves, and one call registers a description with all its
 * children on a connection. The bus connection and every private connection register the same
 * root (manager-dbus.c), so every door serves the same objects; nothing registers objects
 * anywhere else.
 *
 * Declaring an object type (say service/foo-dbus.c, objects /org/qubes_os/Admin1/foo/<name>):
 *
 *         static const sd_bus_vtable foo_vtable[] = { SD_BUS_VTABLE_START(0), …, SD_BUS_VTABLE_END };
 *
 *         const BusObjectImplementation foo_object = {
 *                 .path = "/org/qubes_os/Admin1/foo",
 *                 .interface = "org.qubes_os.Admin1.Foo",
 *                 .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = foo_vtable, .find = foo_find }),
 *                 .node_enumerator = foo_enumerate,
 *         };
 *
 * then add &foo_object to the children of manager_object (manager-dbus.c). The userdata of every
 * registration is the Manager: find functions and enumerators get it as their userdata, handlers
 * get what find returned (or the Manager, on a plain object) and reach the Manager with
 * bus_manager(). */

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Builds a vtable once per daemon (it is derived from a table, e.g. model/props.c); the result
 * is malloc'ed and kept in the BusVtableCache until the daemon ends. */
typedef sd_bus_vtable *(*BusVtableBuilder)(void);

typedef struct BusVtable {
        const sd_bus_vtable *vtable; /* a constant table, or NULL and … */
        BusVtableBuilder build;      /* … one built at start-up */
        sd_bus_object_find_t find;   /* fallback vtables only: the object of a path below .path, or 0 */
} BusVtable;

typedef struct BusObjectImplementation BusObjectImplementation;
struct BusObjectImplementation {
        const char *path;                         /* the object, or the prefix of the objects of a fallback vtable */
        const char *interface;                    /* what the vtables implement */
        const BusVtable *vtables;                 /* on the object at path; {}-terminated */
        const BusVtable *fallback_vtables;        /* on each object below path that find accepts; {}-terminated */
        sd_bus_node_enumerator_t node_enumerator; /* the objects below path (busctl tree, GetManagedObjects) */
        bool manager;                             /* org.freedesktop.DBus.ObjectManager at path */
        /* Messages to the object at path, before its vtables (sd_bus_add_object): a standard
         * method qubesd answers itself (GetManagedObjects, snapshot.c); returns 0 for the rest. */
        sd_bus_message_handler_t callback;
        sd_bus_message_handler_t fallback_callback; /* the same, for the objects below path */
        /* The objects of node_enumerator are left out of the root's GetManagedObjects and listed
         * by a GetManagedObjects on the object above them (snapshot.c): a qube's volumes. */
        bool on_demand;
        /* Object types below this one, and further interfaces or vtables other files add. */
        const BusObjectImplementation *const *children;
};

#define BUS_VTABLES(...) ((const BusVtable[]){ __VA_ARGS__, {} })
#define BUS_FALLBACK_VTABLES(...) ((const BusVtable[]){ __VA_ARGS__, {} })
#define BUS_IMPLEMENTATIONS(...) ((const BusObjectImplementation *const[]){ __VA_ARGS__, NULL })

/* The vtables built at start-up, shared by every connection they are registered on. */
typedef struct BusVtableCache {
        struct {
                BusVtableBuilder build;
                sd_bus_vtable *vtable;
        } * entries;
        size_t n;
} BusVtableCache;
void bus_vtable_cache_done(BusVtableCache *c);
/* The vtable of v: the constant one, or the one built once and kept in cache (NULL: no memory). */
const sd_bus_vtable *bus_vtable_get(const BusVtable *v, BusVtableCache *cache);

/* Register impl and its children on bus; userdata is given to every registration. */
int bus_add_implementation(sd_bus *bus, const BusObjectImplementation *impl, void *userdata, BusVtableCache *cache);

/* The userdata of the registration whose handler, getter, find function or enumerator runs now
 * (sd-bus's current slot): the Manager, also where the handler's own userdata is the object that
 * find returned. NULL outside such a callback. */
static inline void *bus_registration_userdata(sd_bus *bus) {
        sd_bus_slot *slot = sd_bus_get_current_slot(bus);
        return slot ? sd_bus_slot_get_userdata(slot) : NULL;
}
