/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bottom of the bus layer: what every part uses of the Manager. Signals go out on every
 * connection from here, qubes.xml is saved from here, and the peer behind a call is found here. */
#include "manager.h"

#include "util/log.h"

/* ---- signals on every connection ------------------------------------------------------- */

int manager_add_connection(Manager *m, sd_bus *bus) {
        sd_bus **l = realloc(m->connections, sizeof(sd_bus *) * (m->n_connections + 1));
        if (!l)
                return -ENOMEM;
        m->connections = l;
        m->connections[m->n_connections++] = bus;
        return 0;
}

void manager_remove_connection(Manager *m, sd_bus *bus) {
        for (size_t i = 0; i < m->n_connections; i++)
                if (m->connections[i] == bus) {
                        memmove(m->connections + i, m->connections + i + 1,
                                sizeof(sd_bus *) * (m->n_connections - i - 1));
                        m->n_connections--;
                        return;
                }
}

/* A private connection gets the broadcasts unless it has declared whom it acts for
 * (SetCallerIdentity): such a proxy (the shim) takes its events from SubscribeEvents, filtered
 * for the qube it acts for, as a bus client gets no broadcasts without match rules. */
static bool wants_broadcasts(Manager *m, sd_bus *bus) {
        const char *key = NULL;
        Caller *c;

        if (sd_bus_get_description(bus, &key) < 0 || !key)
                return true;
        c = hashmap_get(m->callers, key);
        return !c || !c->qube;
}

/* Like systemd's bus_foreach_bus(): the bus, then every private connection that listens (a
 * peer-to-peer connection has no bus daemon to filter by match rules: its trusted peer drops what
 * it does not want). */
void manager_send_everywhere(Manager *m, BusSendFn send, void *userdata, const char *what) {
        int r;

        if (m->bus) {
                r = send(m->bus, userdata);
                if (r < 0)
                        log_debug_errno(r, "Cannot send %s on the bus: %m", what);
        }
        for (size_t i = 0; i < m->n_connections; i++) {
                if (!wants_broadcasts(m, m->connections[i]))
                        continue;
                r = send(m->connections[i], userdata);
                if (r < 0)
                        log_debug_errno(r, "Cannot send %s on a private connection: %m", what);
        }
}

typedef struct PropertiesChanged {
        const char *path, *interface;
        char **names;
} PropertiesChanged;

static int send_properties_changed(sd_bus *bus, void *userdata) {
        PropertiesChanged *c = userdata;
        return sd_bus_emit_properties_changed_strv(bus, c->path, c->interface, c->names);
}

void manager_emit_properties_changed_strv(Manager *m, const char *path, const char *interface, char **names) {
        PropertiesChanged c = { path, interface, names };
        manager_send_everywhere(m, send_properties_changed, &c, "PropertiesChanged");
}

static int send_object_added(sd_bus *bus, void *userdata) {
        return sd_bus_emit_object_added(bus, userdata);
}

static int send_object_removed(sd_bus *bus, void *userdata) {
        return sd_bus_emit_object_removed(bus, userdata);
}

void manager_emit_object_added(Manager *m, const char *path) {
        manager_send_everywhere(m, send_object_added, (void *) path, "InterfacesAdded");
}

void manager_emit_object_removed(Manager *m, const char *path) {
        manager_send_everywhere(m, send_object_removed, (void *) path, "InterfacesRemoved");
}

int manager_new_event_signal(sd_bus *bus, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                             uint64_t seq, const char *destination, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        _cleanup_free_ char *path = subject ? domain_bus_path(subject) : NULL;
        int r;

        if (subject && !path)
                return -ENOMEM;
        r = sd_bus_message_new_signal(bus, &s, path ?: QUBESD_ROOT_PATH,
                                      destination ? QUBESD_IFACE_SUBSCRIPTION
                                      : subject   ? QUBESD_IFACE_DOMAIN
                                                  : QUBESD_IFACE_MANAGER,
                                      "Event");
        if (r >= 0 && destination && sd_bus_is_bus_client(bus) > 0)
                r = sd_bus_message_set_destination(s, destination);
        if (r < 0)
                return r;
        r = sd_bus_message_append(s, "tss", seq, subject ? subject->name : "", event);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(s, 'a', "(ss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i + 1 < n_kv; i += 2) {
                r = sd_bus_message_append(s, "(ss)", kv[i], kv[i + 1] ?: "None");
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- transactions and the group commit ---------------------------------------------------- */

int manager_save(Manager *m, QError *err) {
        return app_commit(m->app, err);
}

void manager_listing_changed(Manager *m) {
        m->listing = mfree(m->listing);
}

/* A caller is a bus peer: its unique name, or on a private (peer-to-peer) connection, which has
 * no names, that connection's description. */
const char *manager_caller_key(sd_bus_message *msg) {
        const char *key = sd_bus_message_get_sender(msg);
        if (!key)
                (void) sd_bus_get_description(sd_bus_message_get_bus(msg), &key);
        return key;
}

Caller *manager_caller(Manager *m, sd_bus_message *msg) {
        const char *key = manager_caller_key(msg);
        return key ? hashmap_get(m->callers, key) : NULL;
}
