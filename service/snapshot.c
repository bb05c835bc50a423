/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetManagedObjects, answered by qubesd itself instead of sd-bus's object manager.
 *
 * sd-bus builds the snapshot by walking every registered node: for each of the ~5,000 paths of
 * 1,000 qubes it looks up every prefix, calls every fallback vtable's find function (fifteen of
 * them below /domain), adds three empty standard interfaces, and calls each property's getter.
 * That cost 134 ms of qubesd's CPU at 1,000 qubes. Here the tree is walked once from its
 * description (bus-object.h): the enumerators give the paths, each path is matched only against
 * the object types whose prefix it has (their vtables, and which entries are carried, resolved
 * once per call; a qube's path decoded once for all its find functions), the interfaces of one
 * object are grouped, and the properties are the same getters' answers. What the snapshot
 * carries is decided in one place (snapshot_carries()): see "The snapshot" in docs/dbus-api.md. */
#include "snapshot.h"

#include <errno.h>
#include <string.h>

#include "bus-names.h"
#include "bus-property.h"
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

/* Whether the snapshot carries a property: every property of every object, except on a qube's
 * object, where only the Domain interface carries its values (name, class, label, power state,
 * features, tags, ...); its other interfaces are named with no value. The rest (the Qube
 * Manager's columns among them) is read on demand: Properties.GetAll per object, or
 * Manager.GetAllDomainProperties for every qube at once, and announced by PropertiesChanged like
 * every other. At 1,000 qubes a list's dozen values per qube cost 4-6 ms of qubesd's CPU per
 * call (see docs/dbus-api.md, "The snapshot"). */
static bool snapshot_carries(bool qube, const char *interface) {
        return !qube || streq(interface, QUBESD_IFACE_DOMAIN);
}

/* One object's interface in the snapshot: the properties of its vtable (those sd-bus would leave
 * out of GetAll, SD_BUS_VTABLE_PROPERTY_EXPLICIT, left out here too). */
static int append_properties(sd_bus *bus, sd_bus_message *reply, const char *path, const char *interface,
                             const sd_bus_vtable *vt, void *object, sd_bus_error *error) {
        int r;
        for (const sd_bus_vtable *v = vtable_next(vt, vt); v->type != _SD_BUS_VTABLE_END; v = vtable_next(vt, v)) {
                if ((v->type != _SD_BUS_VTABLE_PROPERTY && v->type != _SD_BUS_VTABLE_WRITABLE_PROPERTY) ||
                    v->flags & SD_BUS_VTABLE_PROPERTY_EXPLICIT)
                        continue;
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r < 0)
                        return r;
                r = bus_append_string(reply, v->x.property.member);
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

/* A fallback vtable of the tree, resolved once per snapshot: its object type's prefix, its
 * interface, its vtable and whether its values are carried on a qube's object (looked up once per
 * call rather than once per object: 15 of them are tried on each qube). */
typedef struct Candidate {
        const char *prefix;
        size_t prefix_len;
        const char *interface;
        const sd_bus_vtable *vtable;
        sd_bus_object_find_t find;
        bool values_on_qube; /* snapshot_carries() for a qube's object */
} Candidate;

typedef struct Candidates {
        Candidate c[MAX_IMPLEMENTATIONS];
        size_t n;
} Candidates;

static int candidates_of(Manager *m, const Flat *f, Candidates *ret) {
        ret->n = 0;
        for (size_t i = 0; i < f->n; i++) {
                const BusObjectImplementation *impl = f->impl[i];
                for (const BusVtable *bv = impl->fallback_vtables; bv && (bv->vtable || bv->build); bv++) {
                        const sd_bus_vtable *vt = bus_vtable_get(bv, &m->vtables);
                        if (!vt)
                                return -ENOMEM;
                        if (ret->n >= ELEMENTSOF(ret->c))
                                return -E2BIG;
                        Candidate *c = &ret->c[ret->n++];
                        c->prefix = impl->path;
                        c->prefix_len = strlen(impl->path);
                        c->interface = impl->interface;
                        c->vtable = vt;
                        c->find = bv->find;
                        c->values_on_qube = snapshot_carries(true, impl->interface);
                }
        }
        return 0;
}

typedef struct Found {
        const Candidate *c;
        void *object;
} Found;

static bool same_interface(const Found *a, const Found *b) {
        return a->c->interface == b->c->interface || streq(a->c->interface, b->c->interface);
}

static int append_object(Manager *m, sd_bus *bus, sd_bus_message *reply, const Candidates *cs, const char *path,
                         sd_bus_error *error) {
        Found found[MAX_IMPLEMENTATIONS];
        size_t n = 0;
        const char *rest = startswith(path, QUBESD_DOMAIN_PREFIX "/");
        bool qube = rest && !strchr(rest, '/');
        int r;

        /* the object types whose prefix this path is below, and what their find functions say
         * (neighbours share their prefix: compared once for the run of them) */
        const char *prefix = NULL;
        bool below = false;
        for (size_t i = 0; i < cs->n; i++) {
                const Candidate *c = &cs->c[i];
                void *object = NULL;
                if (c->prefix != prefix) {
                        prefix = c->prefix;
                        below = strncmp(path, prefix, c->prefix_len) == 0 && path[c->prefix_len] == '/';
                }
                if (!below)
                        continue;
                r = c->find(bus, path, c->interface, m, &object, error);
                if (r < 0)
                        return r;
                if (r == 0 || n >= MAX_IMPLEMENTATIONS)
                        continue;
                found[n++] = (Found){ c, object };
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
                        if (same_interface(&found[k], &found[i]))
                                first = false;
                if (!first)
                        continue;
                r = sd_bus_message_open_container(reply, 'e', "sa{sv}");
                if (r < 0)
                        return r;
                r = bus_append_string(reply, found[i].c->interface);
                if (r < 0)
                        return r;
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
                if (r < 0)
                        return r;
                for (size_t k = i; k < n; k++) {
                        if (!same_interface(&found[k], &found[i]) || (qube && !found[k].c->values_on_qube))
                                continue;
                        r = append_properties(bus, reply, path, found[k].c->interface, found[k].c->vtable,
                                              found[k].object, error);
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
        Candidates cs;
        int r;

        if (!isempty(sd_bus_message_get_signature(msg, true)))
                return sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_INVALID_ARGS, "Expected no parameters");
        flatten(&f, m->tree);
        r = candidates_of(m, &f, &cs);
        if (r < 0)
                return r;

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
                        /* the qube of a qube's path, decoded once for all the find functions */
                        domain_of_bus_path_remember(*p, domain_of_bus_path(m->app, *p));
                        r = append_object(m, bus, reply, &cs, *p, error);
                        domain_of_bus_path_remember(NULL, NULL);
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
