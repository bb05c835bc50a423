/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetManagedObjects, answered by qubesd itself instead of sd-bus's object manager.
 *
 * sd-bus builds the snapshot by walking every registered node: for each of the ~5,000 paths of
 * 1,000 qubes it looks up every prefix, calls every fallback vtable's find function (fifteen of
 * them below /domain), adds three empty standard interfaces, and calls each property's getter.
 * That cost 134 ms of qubesd's CPU at 1,000 qubes. Here the tree is walked once from its
 * description (bus-object.h): the enumerators give the paths, each path is matched only against
 * the object types whose prefix it has, the interfaces of one object are grouped, and the
 * properties are the same getters' answers. What the snapshot carries is decided in one place
 * (snapshot_carries()): see "The snapshot" in docs/dbus-api.md. */
#include "snapshot.h"

#include <errno.h>
#include <string.h>

#include "bus-names.h"
#include "commit.h"
#include "manager.h"
#include "util/log.h"
#include "util/macros.h"
#include "util/strv.h"

#define MAX_IMPLEMENTATIONS 64

typedef struct Flat {
        const BusObjectImplementation *impl[MAX_IMPLEMENTATIONS];
        size_t n;
} Flat;

static void flatten(Flat *f, const BusObjectImplementation *impl) {
        if (f->n < MAX_IMPLEMENTATIONS)
                f->impl[f->n++] = impl;
        for (size_t i = 0; impl->children && impl->children[i]; i++)
                flatten(f, impl->children[i]);
}

static const sd_bus_vtable *vtable_next(const sd_bus_vtable *start, const sd_bus_vtable *v) {
        return (const sd_bus_vtable *) ((const uint8_t *) v + start->x.start.element_size);
}

/* What a list of qubes shows, beyond the Domain interface (name, class, label, power state,
 * features, tags, …): the Qube Manager's columns and the references it follows; and the
 * firewall's rules (Firewall.Rules, usually one rule), which a client copying a qube must not
 * find missing. */
static const char *const qube_list_properties[] = {
        "Netvm",           "Template",      "TemplateForDispvms", "Ip",    "VirtMode", "ProvidesNetwork",
        "BackupTimestamp", "DefaultDispvm", "ManagementDispvm",   "Guivm", "Audiovm",  "Rules",
};

/* Whether the snapshot carries a property: every property of every object, except on a qube's
 * object, where the interfaces other than Domain carry only what a list shows; the rest (40 of
 * an AppVM's 53 values, the devices) is read on demand with
 * Properties.Get/GetAll, and announced by PropertiesChanged like every other. At 1,000 qubes the
 * whole of it cost 36 ms of qubesd's CPU per call (see docs/dbus-api.md, "The snapshot"). */
static bool snapshot_carries(bool qube, const char *interface, const char *member) {
        if (!qube || streq(interface, QUBESD_IFACE_DOMAIN))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(qube_list_properties); i++)
                if (streq(qube_list_properties[i], member))
                        return true;
        return false;
}

/* Which entries of a vtable the snapshot carries, worked out once per vtable, interface and kind
 * of object (a string comparison per property and qube cost more than the rest of the walk). */
#define MAX_CARRIED 256
typedef struct Carried {
        const sd_bus_vtable *vtable;
        const char *interface;
        bool qube;
        size_t n;                /* entries after the start */
        bool entry[MAX_CARRIED]; /* the property at that entry is carried */
} Carried;

static const Carried *carried_of(const sd_bus_vtable *vt, const char *interface, bool qube) {
        static Carried cache[32];
        static size_t n_cache;
        size_t k = 0;

        for (size_t i = 0; i < n_cache; i++)
                if (cache[i].vtable == vt && cache[i].interface == interface && cache[i].qube == qube)
                        return &cache[i];
        if (n_cache >= ELEMENTSOF(cache))
                return NULL;
        Carried *c = &cache[n_cache];
        *c = (Carried){ .vtable = vt, .interface = interface, .qube = qube };
        for (const sd_bus_vtable *v = vtable_next(vt, vt); v->type != _SD_BUS_VTABLE_END; v = vtable_next(vt, v), k++) {
                if (k >= MAX_CARRIED)
                        return NULL;
                c->entry[k] = (v->type == _SD_BUS_VTABLE_PROPERTY || v->type == _SD_BUS_VTABLE_WRITABLE_PROPERTY) &&
                              !(v->flags & SD_BUS_VTABLE_PROPERTY_EXPLICIT) &&
                              snapshot_carries(qube, interface, v->x.property.member);
        }
        c->n = k;
        n_cache++;
        return c;
}

/* One object's interface in the snapshot: the properties of its vtables that the snapshot
 * carries (those sd-bus would leave out of GetAll, SD_BUS_VTABLE_PROPERTY_EXPLICIT, left out
 * here too). */
static int append_properties(sd_bus *bus, sd_bus_message *reply, const char *path, const char *interface,
                             const sd_bus_vtable *vt, void *object, sd_bus_error *error) {
        const char *rest = startswith(path, QUBESD_DOMAIN_PREFIX "/");
        bool qube = rest && !strchr(rest, '/');
        const Carried *c = carried_of(vt, interface, qube);
        size_t k = 0;
        int r;
        for (const sd_bus_vtable *v = vtable_next(vt, vt); v->type != _SD_BUS_VTABLE_END; v = vtable_next(vt, v), k++) {
                if (c ? !c->entry[k]
                      : (v->type != _SD_BUS_VTABLE_PROPERTY && v->type != _SD_BUS_VTABLE_WRITABLE_PROPERTY) ||
                                    v->flags & SD_BUS_VTABLE_PROPERTY_EXPLICIT ||
                                    !snapshot_carries(qube, interface, v->x.property.member))
                        continue;
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r < 0)
                        return r;
                r = sd_bus_message_append_basic(reply, 's', v->x.property.member);
                if (r < 0)
                        return r;
                r = sd_bus_message_open_container(reply, 'v', v->x.property.signature);
                if (r < 0)
                        return r;
                r = v->x.property.get(bus, path, interface, v->x.property.member, reply,
                                      (uint8_t *) object + v->x.property.offset, error);
                if (r < 0)
                        return r;
                if (sd_bus_error_is_set(error))
                        return -sd_bus_error_get_errno(error);
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        return 0;
}

typedef struct Found {
        const char *interface;
        const sd_bus_vtable *vtable;
        void *object;
} Found;

static int append_object(Manager *m, sd_bus *bus, sd_bus_message *reply, const Flat *f, const char *path,
                         sd_bus_error *error) {
        Found found[MAX_IMPLEMENTATIONS];
        size_t n = 0;
        int r;

        /* the object types whose prefix this path is below, and what their find functions say */
        for (size_t i = 0; i < f->n; i++) {
                const BusObjectImplementation *impl = f->impl[i];
                const char *rest = startswith(path, impl->path);
                if (!impl->fallback_vtables || !rest || rest[0] != '/')
                        continue;
                for (const BusVtable *bv = impl->fallback_vtables; bv->vtable || bv->build; bv++) {
                        void *object = NULL;
                        const sd_bus_vtable *vt = bus_vtable_get(bv, &m->vtables);
                        if (!vt)
                                return -ENOMEM;
                        r = bv->find(bus, path, impl->interface, m, &object, error);
                        if (r < 0)
                                return r;
                        if (r == 0 || n >= MAX_IMPLEMENTATIONS)
                                continue;
                        found[n++] = (Found){ impl->interface, vt, object };
                }
        }
        if (n == 0)
                return 0;

        r = sd_bus_message_open_container(reply, 'e', "oa{sa{sv}}");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(reply, 'o', path);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        /* one entry per interface, with the properties of all its vtables */
        for (size_t i = 0; i < n; i++) {
                bool first = true;
                for (size_t k = 0; k < i && first; k++)
                        if (streq(found[k].interface, found[i].interface))
                                first = false;
                if (!first)
                        continue;
                r = sd_bus_message_open_container(reply, 'e', "sa{sv}");
                if (r < 0)
                        return r;
                r = sd_bus_message_append_basic(reply, 's', found[i].interface);
                if (r < 0)
                        return r;
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
                if (r < 0)
                        return r;
                for (size_t k = i; k < n; k++) {
                        if (!streq(found[k].interface, found[i].interface))
                                continue;
                        r = append_properties(bus, reply, path, found[k].interface, found[k].vtable, found[k].object,
                                              error);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* A snapshot of hundreds of qubes (1 MB at 1,000) is built in many small steps: once it is
 * sent, the freed heap goes back to the system a moment later (manager_trim_later()). */
#define TRIM_AFTER_OBJECTS 200

/* The objects below path: at the root every object type's but those kept for on demand, at a
 * qube's path the on-demand objects below it (its volumes). */
static int reply_managed_objects(Manager *m, sd_bus_message *msg, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus *bus = sd_bus_message_get_bus(msg);
        const char *path = sd_bus_message_get_path(msg);
        bool root = streq(path, QUBESD_ROOT_PATH);
        size_t len = strlen(path), objects = 0;
        Flat f = {};
        int r;

        if (!isempty(sd_bus_message_get_signature(msg, true)))
                return sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_INVALID_ARGS, "Expected no parameters");
        flatten(&f, m->tree);

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < f.n; i++) {
                const BusObjectImplementation *impl = f.impl[i];
                _cleanup_strv_free_ char **nodes = NULL;

                if (!impl->node_enumerator || impl->on_demand == root)
                        continue;
                r = impl->node_enumerator(bus, impl->path, m, &nodes, error);
                if (r < 0)
                        return r;
                for (char **p = nodes; p && *p; p++) {
                        if (!root && (strncmp(*p, path, len) != 0 || (*p)[len] != '/'))
                                continue;
                        r = append_object(m, bus, reply, &f, *p, error);
                        if (r < 0)
                                return r;
                        objects++;
                }
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        r = sd_bus_send(NULL, reply, NULL);
        if (r >= 0 && objects >= TRIM_AFTER_OBJECTS)
                manager_trim_later(m);
        return r;
}

int snapshot_object_callback(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *path = sd_bus_message_get_path(msg);

        if (!sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"))
                return 0; /* everything else: sd-bus and the vtables */
        /* below the root, only a qube's path has objects of its own (found as the view filter
         * allowed: a qube the caller does not see was answered UnknownObject before this) */
        if (!streq(path, QUBESD_ROOT_PATH) && !domain_of_bus_path(m->app, path)) {
                const char *rest = startswith(path, QUBESD_DOMAIN_PREFIX "/");
                if (!rest || strchr(rest, '/'))
                        return 0; /* a volume's path, or none: sd-bus answers */
                /* no such qube: as its other methods answer */
                return sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_UNKNOWN_OBJECT, "Unknown object '%s'.", path);
        }
        int r = reply_managed_objects(userdata, msg, error);
        if (r < 0 && !sd_bus_error_is_set(error))
                return sd_bus_error_set_errno(error, r);
        return r < 0 ? r : 1;
}
