/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bottom of the bus layer: what every part uses of the Manager. Signals go out on every
 * connection from here, qubes.xml is saved from here, and the peer behind a call is found here. */
#include "manager.h"

#include "bus-error.h"
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

/* More waiting calls than this are not gathered: the save runs at once. */
#define COMMIT_GROUP_MAX 256

int manager_save(Manager *m, QError *err) {
        return app_commit(m->app, err);
}

void manager_begin(Manager *m) {
        app_txn_begin(m->app);
        if (m->commit_source)
                (void) sd_event_source_set_enabled(m->commit_source, SD_EVENT_ONESHOT);
}

/* app_commit() tells us how the save went: every waiting call gets its answer. */
static void on_committed(App *app, int r, const QError *err, void *userdata) {
        Manager *m = userdata;
        sd_bus_message **l = m->awaiting;
        size_t n = m->n_awaiting;

        m->awaiting = NULL;
        m->n_awaiting = m->alloc_awaiting = 0;
        for (size_t i = 0; i < n; i++) {
                int k = r >= 0 ? sd_bus_reply_method_return(l[i], NULL) : bus_reply_qerror(m, l[i], err);
                if (k < 0)
                        log_debug_errno(k, "Cannot answer a call after the save: %m");
                sd_bus_message_unref(l[i]);
        }
        free(l);
}

static void commit_now(Manager *m) {
        _cleanup_qerror_ QError e = {};

        if (m->n_awaiting > 0) {
                (void) app_commit(m->app, &e);
                return;
        }
        /* a call opened a transaction and did not save (it failed): what it changed goes */
        if (m->app->txn_open || m->app->n_removed > 0) {
                if ((m->app->txn_changed || m->app->n_removed > 0) && app_has_uncommitted(m->app))
                        app_rollback(m->app);
                else
                        app_txn_done(m->app, true);
        }
}

static int on_commit(sd_event_source *s, void *userdata) {
        commit_now(userdata);
        return 0;
}

int manager_commit_reply(Manager *m, sd_bus_message *msg) {
        if (m->n_awaiting == m->alloc_awaiting) {
                size_t na = m->alloc_awaiting ? m->alloc_awaiting * 2 : 16;
                sd_bus_message **l = reallocarray(m->awaiting, na, sizeof(sd_bus_message *));
                if (!l) {
                        _cleanup_qerror_ QError e = {};
                        int r = manager_save(m, &e);
                        return r < 0 ? bus_reply_qerror(m, msg, &e) : sd_bus_reply_method_return(msg, NULL);
                }
                m->awaiting = l;
                m->alloc_awaiting = na;
        }
        m->awaiting[m->n_awaiting++] = sd_bus_message_ref(msg);
        if (m->n_awaiting >= COMMIT_GROUP_MAX)
                commit_now(m);
        else if (m->commit_source)
                (void) sd_event_source_set_enabled(m->commit_source, SD_EVENT_ONESHOT);
        return 1;
}

/* The writes that join a group; any other call first waits for the group's save, so what it
 * reads is durable. */
static bool joins_group(sd_bus_message *msg) {
        static const char *const members[] = {
                "SetProperty", "ResetProperty", "SetFeature", "RemoveFeature", "AddTag", "RemoveTag",
        };
        const char *member = sd_bus_message_get_member(msg);
        const char *iface = sd_bus_message_get_interface(msg);

        if (!member || !iface || !startswith(iface, QUBESD_BUS_NAME))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(members); i++)
                if (streq(member, members[i]))
                        return true;
        return false;
}

static int commit_filter(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        if (m->n_awaiting > 0 && sd_bus_message_is_method_call(msg, NULL, NULL) > 0 && !joins_group(msg))
                commit_now(m);
        return 0;
}

int manager_commit_add_filter(Manager *m, sd_bus *bus) {
        return sd_bus_add_filter(bus, NULL, commit_filter, m);
}

int manager_commit_init(Manager *m) {
        int r = sd_event_add_defer(m->event, &m->commit_source, on_commit, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the group commit: %m");
        (void) sd_event_source_set_enabled(m->commit_source, SD_EVENT_OFF);
        /* below the connections: every call that has arrived is handled before the save */
        (void) sd_event_source_set_priority(m->commit_source, SD_EVENT_PRIORITY_NORMAL + 10);
        m->app->committed = on_committed;
        m->app->committed_userdata = m;
        return 0;
}

void manager_commit_done(Manager *m) {
        if (m->n_awaiting > 0)
                commit_now(m);
        m->commit_source = sd_event_source_disable_unref(m->commit_source);
        if (m->app) {
                m->app->committed = NULL;
                m->app->committed_userdata = NULL;
        }
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
