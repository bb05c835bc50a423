/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the bus hears of the model: the listener of model events that turns each Qubes event into
 * an Event signal (and the subscribers' copies), a qube coming or going into InterfacesAdded/
 * Removed for its objects, and property changes into one coalesced PropertiesChanged per object
 * and interface per loop iteration. */
#include "changes.h"

#include "caller-filter.h"
#include "util/log.h"
#include "util/strv.h"

/* Pending PropertiesChanged for one object, flushed once per loop iteration. */
typedef struct DirtyObject {
        char *name;     /* qube name, or NULL for the Manager */
        uint8_t *props; /* one flag per domain_props[] / global_props[] entry */
        bool features, tags;
        bool power_state; /* PowerState (lifecycle) */
} DirtyObject;

struct Changes {
        Hashmap *dirty; /* qube name or "" -> DirtyObject* */
        sd_event_source *flush;
};

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

        while (hashmap_iterate(m->changes->dirty, &i, NULL, &v)) {
                DirtyObject *o = v;
                if (o->name)
                        flush_domain(m, o);
                else
                        flush_manager(m, o);
        }
        /* Rebuild instead of removing while iterating. */
        i = 0;
        while (hashmap_iterate(m->changes->dirty, &i, NULL, &v))
                dirty_object_free(v);
        hashmap_free(m->changes->dirty);
        m->changes->dirty = hashmap_new();
        return 0;
}

void changes_mark_dirty(Manager *m, const char *name, const PropDef *prop, bool features, bool tags) {
        const char *key = name ?: "";
        DirtyObject *o = hashmap_get(m->changes->dirty, key);

        if (!o) {
                o = new0(DirtyObject, 1);
                if (!o)
                        return;
                o->props = calloc(name ? n_domain_props : n_global_props, 1);
                if (name)
                        o->name = strdup(name);
                if (!o->props || (name && !o->name) || hashmap_put(m->changes->dirty, o->name ?: "", o) < 0) {
                        dirty_object_free(o);
                        return;
                }
        }
        if (prop)
                o->props[name ? domain_prop_index(prop) : global_prop_index(prop)] = 1;
        o->features |= features;
        o->tags |= tags;
        if (m->changes->flush)
                (void) sd_event_source_set_enabled(m->changes->flush, SD_EVENT_ONESHOT);
}

void changes_mark_power_state(Manager *m, const char *name) {
        manager_listing_changed(m);
        changes_mark_dirty(m, name, NULL, false, false);
        DirtyObject *o = hashmap_get(m->changes->dirty, name);
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
        changes_mark_dirty(m, d->name, p, false, false);
        for (size_t i = 0; i < ELEMENTSOF(dependencies); i++)
                if (streq(dependencies[i].prop, name))
                        for (size_t k = 0; k < ELEMENTSOF(dependencies[i].dependents) && dependencies[i].dependents[k];
                             k++) {
                                const PropDef *q = domain_prop_find(d->klass, dependencies[i].dependents[k]);
                                if (q)
                                        changes_mark_dirty(m, d->name, q, false, false);
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
                        changes_mark_dirty(m, NULL, g, false, false);
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
                if (!p || domain_slot(d, p)->set)
                        continue;
                if (subject && !inherits_from(d, subject))
                        continue;
                mark_domain_prop(m, d, inherited);
        }
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

static void on_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv, void *userdata) {
        Manager *m = userdata;
        const char *rest;

        if (!m->bus)
                return;

        /* InterfacesRemoved must be sent while the objects still exist: the qube's volumes, then
         * the qube. */
        if (!subject && streq(event, "domain-pre-delete") && n_kv >= 2) {
                /* sent at the commit (a transaction): the qube is already out of the app */
                Domain *d = app_get_domain(app, kv[1]) ?: app_get_domain_removed(app, kv[1]);
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
                changes_mark_dirty(m, subject->name, NULL, true, false);
        else if (subject && (startswith(event, "domain-tag-add:") || startswith(event, "domain-tag-delete:")))
                changes_mark_dirty(m, subject->name, NULL, false, true);
        else if (!subject && streq(event, "domain-add") && n_kv >= 2) {
                Domain *d = app_get_domain(app, kv[1]);
                if (d)
                        emit_domain_objects(m, d, true);
        }
}

int changes_init(Manager *m) {
        Changes *c = new0(Changes, 1);
        int r;

        if (!c)
                return log_oom();
        m->changes = c;
        c->dirty = hashmap_new();
        if (!c->dirty)
                return log_oom();
        r = sd_event_add_defer(m->event, &c->flush, on_flush, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up change notification: %m");
        (void) sd_event_source_set_enabled(c->flush, SD_EVENT_OFF);
        /* Same priority as the bus: runs right after the handler that made the changes (all of
         * one iteration's changes coalesce) and cannot be starved by a busy bus. */
        (void) sd_event_source_set_priority(c->flush, SD_EVENT_PRIORITY_NORMAL);
        r = app_add_listener(m->app, on_event, m);
        if (r < 0)
                return log_oom();
        return 0;
}

void changes_done(Manager *m) {
        Changes *c = m->changes;
        size_t i = 0;
        void *v;

        if (!c)
                return;
        app_remove_listener(m->app, on_event, m);
        sd_event_source_disable_unref(c->flush);
        while (hashmap_iterate(c->dirty, &i, NULL, &v))
                dirty_object_free(v);
        hashmap_free(c->dirty);
        m->changes = mfree(c);
}
