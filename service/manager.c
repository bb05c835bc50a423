/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include <signal.h>
#include <systemd/sd-daemon.h>

#include "auth.h"
#include "caller-filter.h"
#include "constraints.h"
#include "job-dbus.h"
#include "manager-dbus.h"
#include "storage-dbus.h"
#include "workers.h"
#include "util/log.h"
#include "util/strv.h"

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

/* Like systemd's bus_foreach_bus(): the bus, then every private connection, unconditionally (a
 * peer-to-peer connection has no bus daemon to filter by match rules; its peer is trusted and
 * drops what it does not want). */
void manager_send_everywhere(Manager *m, BusSendFn send, void *userdata, const char *what) {
        int r;

        if (m->bus) {
                r = send(m->bus, userdata);
                if (r < 0)
                        log_debug_errno(r, "Cannot send %s on the bus: %m", what);
        }
        for (size_t i = 0; i < m->n_connections; i++) {
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

/* ---- coalesced PropertiesChanged -------------------------------------------------------- */

static DirtyObject *dirty_object_free(DirtyObject *o) {
        if (!o)
                return NULL;
        free(o->name);
        free(o->props);
        free(o);
        return NULL;
}

static void flush_domain(Manager *m, DirtyObject *o) {
        Domain *d = app_get_domain(m->app, o->name);
        /* one strv per interface: Domain, QubesVM, class interface */
        const char *ifaces[3] = { QUBESD_IFACE_DOMAIN, QUBESD_IFACE_QUBESVM, NULL };
        char **names[3] = {};

        if (!d)
                return; /* removed in the meantime: InterfacesRemoved said it all */
        _cleanup_free_ char *path = domain_bus_path(d);
        if (!path)
                return;
        ifaces[2] = qubes_class_interface(d->klass);
        for (size_t i = 0; i < n_domain_props; i++) {
                const PropDef *p = &domain_props[i];
                if (!o->props[i] || !(p->classes & (1u << d->klass)))
                        continue;
                if (p->flags & PROP_WRITE_ONCE)
                        continue; /* CONST */
                const char *iface = domain_prop_interface(p, d->klass);
                for (size_t k = 0; k < 3; k++)
                        if (streq(iface, ifaces[k])) {
                                (void) strv_extend(&names[k], p->dbus_name);
                                break;
                        }
        }
        if (o->features)
                (void) strv_extend(&names[0], "Features");
        if (o->tags)
                (void) strv_extend(&names[0], "Tags");
        if (o->power_state)
                (void) strv_extend(&names[0], "PowerState");
        for (size_t k = 0; k < 3; k++) {
                if (names[k])
                        manager_emit_properties_changed_strv(m, path, ifaces[k], names[k]);
                strv_free(names[k]);
        }
}

static void flush_manager(Manager *m, DirtyObject *o) {
        _cleanup_strv_free_ char **names = NULL;
        for (size_t i = 0; i < n_global_props; i++)
                if (o->props[i])
                        (void) strv_extend(&names, global_props[i].dbus_name);
        if (names)
                manager_emit_properties_changed_strv(m, QUBESD_ROOT_PATH, QUBESD_IFACE_MANAGER, names);
}

static int on_flush(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        size_t i = 0;
        void *v;

        while (hashmap_iterate(m->dirty, &i, NULL, &v)) {
                DirtyObject *o = v;
                if (o->name)
                        flush_domain(m, o);
                else
                        flush_manager(m, o);
        }
        /* Rebuild instead of removing while iterating. */
        i = 0;
        while (hashmap_iterate(m->dirty, &i, NULL, &v))
                dirty_object_free(v);
        hashmap_free(m->dirty);
        m->dirty = hashmap_new();
        return 0;
}

void manager_mark_dirty(Manager *m, const char *name, const PropDef *prop, bool features, bool tags) {
        const char *key = name ?: "";
        DirtyObject *o = hashmap_get(m->dirty, key);

        if (!o) {
                o = new0(DirtyObject, 1);
                if (!o)
                        return;
                o->props = calloc(name ? n_domain_props : n_global_props, 1);
                if (name)
                        o->name = strdup(name);
                if (!o->props || (name && !o->name) || hashmap_put(m->dirty, o->name ?: "", o) < 0) {
                        dirty_object_free(o);
                        return;
                }
        }
        if (prop)
                o->props[name ? domain_prop_index(prop) : global_prop_index(prop)] = 1;
        o->features |= features;
        o->tags |= tags;
        if (m->flush_source)
                (void) sd_event_source_set_enabled(m->flush_source, SD_EVENT_ONESHOT);
}

void manager_listing_changed(Manager *m) {
        m->listing = mfree(m->listing);
}

void manager_mark_power_state_dirty(Manager *m, const char *name) {
        manager_listing_changed(m);
        manager_mark_dirty(m, name, NULL, false, false);
        DirtyObject *o = hashmap_get(m->dirty, name);
        if (o)
                o->power_state = true;
}

/* Properties whose value is computed from another one: announce them together. */
static const struct {
        const char *prop;
        const char *dependents[10];
} dependencies[] = {
        { "label", { "icon" } },
        { "template_for_dispvms", { "icon" } },
        { "netvm",
          { "ip", "ip6", "visible_ip", "visible_ip6", "visible_gateway", "visible_gateway6", "visible_netmask",
            "dns" } },
        { "provides_network", { "gateway", "gateway6", "dns", "icon" } },
        { "kernel", { "kernelopts" } },
        { "memory", { "maxmem" } },
};

/* Globals that are the default of a qube property of the same meaning. */
static const struct {
        const char *global;
        const char *prop;
} global_defaults[] = {
        { "default_netvm", "netvm" },
        { "default_guivm", "guivm" },
        { "default_audiovm", "audiovm" },
        { "default_dispvm", "default_dispvm" },
        { "management_dispvm", "management_dispvm" },
        { "default_kernel", "kernel" },
        { "default_qrexec_timeout", "qrexec_timeout" },
        { "default_shutdown_timeout", "shutdown_timeout" },
};

static void mark_domain_prop(Manager *m, Domain *d, const char *name) {
        const PropDef *p = domain_prop_find(d->klass, name);
        if (!p)
                return;
        manager_mark_dirty(m, d->name, p, false, false);
        for (size_t i = 0; i < ELEMENTSOF(dependencies); i++)
                if (streq(dependencies[i].prop, name))
                        for (size_t k = 0; k < ELEMENTSOF(dependencies[i].dependents) && dependencies[i].dependents[k];
                             k++) {
                                const PropDef *q = domain_prop_find(d->klass, dependencies[i].dependents[k]);
                                if (q)
                                        manager_mark_dirty(m, d->name, q, false, false);
                        }
}

static bool inherits_from(Domain *d, Domain *ancestor) {
        /* bounded: a template chain is at most qube -> disposable template -> template */
        for (int depth = 0; d && depth < 8; depth++) {
                d = domain_template(d);
                if (d == ancestor)
                        return true;
        }
        return false;
}

/* A change of name on subject (NULL: global) can change the default of name on the qubes that
 * inherit it: through their template chain, or from the global of the same meaning. Only those
 * are announced, so that one change never becomes a storm of signals. */
static void mark_property_change(Manager *m, Domain *subject, const char *name) {
        const char *inherited = name;
        size_t i = 0;
        void *v;

        if (subject)
                mark_domain_prop(m, subject, name);
        else {
                const PropDef *g = global_prop_find(name);
                if (g)
                        manager_mark_dirty(m, NULL, g, false, false);
                inherited = NULL;
                for (size_t k = 0; k < ELEMENTSOF(global_defaults); k++)
                        if (streq(global_defaults[k].global, name))
                                inherited = global_defaults[k].prop;
                if (!inherited)
                        return;
        }
        /* Only templates (and disposable templates) pass values down their chain. */
        if (subject && subject->klass != QUBES_CLASS_TEMPLATEVM &&
            !domain_property_bool(subject, "template_for_dispvms"))
                return;
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                Domain *d = v;
                if (d == subject)
                        continue;
                const PropDef *p = domain_prop_find(d->klass, inherited);
                if (!p || d->props[domain_prop_index(p)].set)
                        continue;
                if (subject && !inherits_from(d, subject))
                        continue;
                mark_domain_prop(m, d, inherited);
        }
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

/* A qube's objects come and go together: the qube, and its volumes below it. */
static void emit_domain_objects(Manager *m, Domain *d, bool added) {
        _cleanup_free_ char *p = domain_bus_path(d);

        if (added && p)
                manager_emit_object_added(m, p);
        for (size_t i = 0; i < d->n_volumes; i++) {
                _cleanup_free_ char *v = volume_bus_path(d->name, d->volumes[i].name);
                if (v && added)
                        manager_emit_object_added(m, v);
                else if (v)
                        manager_emit_object_removed(m, v);
        }
        if (!added && p)
                manager_emit_object_removed(m, p);
}

typedef struct EventSignal {
        Domain *subject;
        const char *event;
        const char *const *kv;
        size_t n_kv;
        uint64_t seq;
} EventSignal;

static int send_event(sd_bus *bus, void *userdata) {
        EventSignal *e = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r = manager_new_event_signal(bus, e->subject, e->event, e->kv, e->n_kv, e->seq, NULL, &s);
        if (r < 0)
                return r;
        return sd_bus_send(bus, s, NULL);
}

void manager_on_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                      void *userdata) {
        Manager *m = userdata;
        const char *rest;

        if (!m->bus)
                return;

        /* InterfacesRemoved must be sent while the objects still exist: the qube's volumes, then
         * the qube. */
        if (!subject && streq(event, "domain-pre-delete") && n_kv >= 2) {
                Domain *d = app_get_domain(app, kv[1]);
                if (d)
                        emit_domain_objects(m, d, false);
        }

        EventSignal e = { subject, event, kv, n_kv, ++m->event_seq };
        manager_send_everywhere(m, send_event, &e, event);
        /* qubes calling through qrexec get their own, policy-filtered copy */
        caller_filter_deliver(m, subject, event, kv, n_kv, m->event_seq);
        if (!subject && (streq(event, "domain-add") || streq(event, "domain-delete")))
                manager_listing_changed(m);

        if ((rest = startswith(event, "property-set:")) || (rest = startswith(event, "property-reset:")))
                mark_property_change(m, subject, rest);
        else if (subject && (startswith(event, "domain-feature-set:") || startswith(event, "domain-feature-delete:")))
                manager_mark_dirty(m, subject->name, NULL, true, false);
        else if (subject && (startswith(event, "domain-tag-add:") || startswith(event, "domain-tag-delete:")))
                manager_mark_dirty(m, subject->name, NULL, false, true);
        else if (!subject && streq(event, "domain-add") && n_kv >= 2) {
                Domain *d = app_get_domain(app, kv[1]);
                if (d)
                        emit_domain_objects(m, d, true);
        }
}

int manager_save(Manager *m, QError *err) {
        int r = app_save(m->app, err);
        if (r < 0 && !qerror_is_set(err))
                return qerror_set(err, QERR_QUBES_EXCEPTION, "Failed to save qubes.xml: %s", strerror(-r));
        return r;
}

static int on_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *old, *new;

        if (sd_bus_message_read(msg, "sss", &name, &old, &new) < 0)
                return 0;
        if (name[0] == ':' && isempty(new)) {
                auth_forget_caller(m, name);
                caller_filter_forget(m, name);
        }
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        log_info("Received %s, exiting.", strsignal((int) si->ssi_signo));
        return sd_event_exit(m->event, 0);
}

static int connect_bus(Manager *m) {
        int r;

        switch (m->config.bus_kind) {
        case BUS_SYSTEM:
                r = sd_bus_open_system_with_description(&m->bus, "qubesd");
                break;
        case BUS_USER:
                r = sd_bus_open_user_with_description(&m->bus, "qubesd");
                break;
        default:
                r = sd_bus_new(&m->bus);
                if (r < 0)
                        return r;
                (void) sd_bus_set_description(m->bus, "qubesd");
                r = sd_bus_set_address(m->bus, m->config.bus_address);
                if (r < 0)
                        return r;
                r = sd_bus_set_bus_client(m->bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_start(m->bus);
        }
        if (r < 0)
                return r;
        return sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
}

int manager_new(const ManagerConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_qerror_ QError e = {};
        int r;

        m = new0(Manager, 1);
        if (!m)
                return log_oom();
        m->config = *config;
        m->own_uid = geteuid();
        m->callers = hashmap_new();
        m->dirty = hashmap_new();
        m->jobs = hashmap_new();
        if (!m->callers || !m->dirty || !m->jobs)
                return log_oom();

        r = app_new(config->state_dir, &m->app);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the model: %m");
        r = app_load(m->app, &e);
        if (r < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                log_error("Refusing to start: %s", msg ?: "cannot load qubes.xml");
                return r;
        }
        if (!m->app->xml_loaded) {
                log_info("No %s yet: creating a fresh system (labels, pools, dom0).", m->app->xml_path);
                r = app_init_default(m->app);
                if (r < 0)
                        return log_error_errno(r, "Failed to initialise the model: %m");
                r = app_save(m->app, &e);
                if (r < 0) {
                        _cleanup_free_ char *msg = qerror_message(&e);
                        log_error("Cannot write %s: %s", m->app->xml_path, msg ?: strerror(-r));
                        return r;
                }
        }
        r = app_add_listener(m->app, manager_on_event, m);
        if (r < 0)
                return log_oom();

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        (void) sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);

        r = workers_new(m->event, &m->workers);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the worker threads: %m");
        r = caller_filter_init(m);
        if (r < 0)
                return r;
        r = constraints_init(m);
        if (r < 0)
                return r;

        r = sd_event_add_defer(m->event, &m->flush_source, on_flush, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up change notification: %m");
        (void) sd_event_source_set_enabled(m->flush_source, SD_EVENT_OFF);
        /* Same priority as the bus: runs right after the handler that made the changes (all of
         * one iteration's changes coalesce) and cannot be starved by a busy bus. */
        (void) sd_event_source_set_priority(m->flush_source, SD_EVENT_PRIORITY_NORMAL);

        r = connect_bus(m);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the bus: %m");

        r = storage_dbus_init(m);
        if (r < 0)
                return r;
        r = manager_dbus_register(m, m->bus);
        if (r < 0)
                return r;
        r = auth_add_view_filter(m);
        if (r < 0)
                return r;
        r = vmm_init(m);
        if (r < 0)
                return r;

        r = sd_bus_match_signal_async(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch bus peers: %m");

        if (m->config.private_socket) {
                r = private_bus_listen(m, m->config.private_socket);
                if (r < 0)
                        return r;
        }

        /* Objects first, then the name: a client that sees the name finds everything. */
        r = sd_bus_request_name(m->bus, QUBESD_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire the bus name %s: %m", QUBESD_BUS_NAME);

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* long work is asked to stop, then the workers finish what they have (each done() runs,
         * with everything still in place) */
        jobs_cancel_all(m);
        workers_stop(m->workers);
        vmm_free(m);
        private_bus_done(m);
        caller_filter_done(m);
        constraints_done(m);
        storage_dbus_done(m);
        sd_event_source_unref(m->flush_source);
        if (m->bus)
                sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        size_t i = 0;
        void *v;
        while (hashmap_iterate(m->callers, &i, NULL, &v))
                caller_free(v);
        hashmap_free(m->callers);
        i = 0;
        while (hashmap_iterate(m->dirty, &i, NULL, &v))
                dirty_object_free(v);
        hashmap_free(m->dirty);
        jobs_free(m);
        m->workers = workers_free(m->workers);
        free(m->listing);
        app_free(m->app);
        bus_vtable_cache_done(&m->vtables);
        free(m->connections);
        free(m);
        return NULL;
}

int manager_run(Manager *m) {
        (void) sd_notify(false, "READY=1\nSTATUS=Serving the Qubes Admin API.");
        log_info("qubesd ready: %zu qubes, state in %s.", hashmap_size(m->app->domains), m->app->state_dir);
        int r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        return r;
}
