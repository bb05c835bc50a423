/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "auth.h"
#include "bus-util.h"
#include "constraints.h"
#include "manager.h"
#include "util/log.h"
#include "util/strv.h"

static const char *const class_interfaces[_QUBES_CLASS_MAX] = {
        [QUBES_CLASS_ADMINVM] = "org.qubes_os.Admin1.AdminVM",
        [QUBES_CLASS_APPVM] = "org.qubes_os.Admin1.AppVM",
        [QUBES_CLASS_DISPVM] = "org.qubes_os.Admin1.DispVM",
        [QUBES_CLASS_REMOTEVM] = "org.qubes_os.Admin1.RemoteVM",
        [QUBES_CLASS_STANDALONEVM] = "org.qubes_os.Admin1.StandaloneVM",
        [QUBES_CLASS_TEMPLATEVM] = "org.qubes_os.Admin1.TemplateVM",
};

const char *qubes_class_interface(QubesClass c) {
        return c >= 0 && c < _QUBES_CLASS_MAX ? class_interfaces[c] : NULL;
}

static bool class_is_local(QubesClass c) {
        return (1u << c) & CLASSES_QUBESVM;
}

const char *domain_prop_interface(const PropDef *p, QubesClass c) {
        if (p->classes == CLASSES_ALL)
                return QUBESD_IFACE_DOMAIN;
        if (class_is_local(c) && (p->classes & CLASSES_QUBESVM) == CLASSES_QUBESVM)
                return QUBESD_IFACE_QUBESVM;
        return class_interfaces[c];
}

static Manager *manager_of(Domain *d) {
        return d->app->event_userdata;
}

/* ---- typed properties ------------------------------------------------------------------- */

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        _cleanup_qerror_ QError e = {};
        _cleanup_(prop_value_done) PropValue v = {};
        const PropDef *p = domain_prop_find_dbus(d->klass, property);

        if (!p)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
        /* A default that cannot be computed (no template, no global) reads as None. */
        (void) domain_property_get(d, p, &v, &e);
        return bus_append_prop_value(reply, p, &v, d->app);
}

static int property_set(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *value, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = manager_of(d);
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *s = NULL;
        const PropDef *p = domain_prop_find_dbus(d->klass, property);
        int r;

        if (!p)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
        r = auth_check(m, sd_bus_get_current_message(bus), AUTH_CHANGE, d, &e);
        if (r <= 0) /* a property write cannot wait for an interactive answer */
                return r < 0 ? bus_set_qerror(error, &e)
                             : sd_bus_error_set(error, qubes_error_dbus_name(QERR_NOT_AUTHORIZED_CAN_OBTAIN),
                                                "Interactive authorization needed: use SetProperty");
        r = bus_read_prop_value(value, p, d->app, &s, error);
        if (r < 0)
                return r;
        r = constraints_check(m, sd_bus_get_current_message(bus), d, p->name, s, &e);
        if (r >= 0)
                r = domain_property_set(d, p->name, s, strlen(s), &e);
        if (r >= 0)
                r = manager_save(m, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_set_qerror(error, &e) : r;
        return 1;
}

static int property_get_power_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        return sd_bus_message_append(reply, "s", strempty(d->power_state));
}

static int property_get_features(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        size_t i = 0;
        void *v;
        int r = sd_bus_message_open_container(reply, 'a', "{ss}");
        if (r < 0)
                return r;
        while (hashmap_iterate(d->features, &i, NULL, &v)) {
                Feature *f = v;
                r = sd_bus_message_append(reply, "{ss}", f->name, f->value);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_tags(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        _cleanup_free_ const char **tags = domain_tags_sorted(d);
        if (!tags)
                return -ENOMEM;
        return sd_bus_message_append_strv(reply, (char **) tags);
}

/* ---- methods ---------------------------------------------------------------------------- */

/* Runs the authorization gate; returns 1 to continue, 0 when the call has been answered (an
 * error reply, or pending authorization), negative on failure. */
static int gate(Manager *m, sd_bus_message *msg, AuthAction action, Domain *d) {
        return bus_gate(m, msg, action, d);
}

static int reply_result(Manager *m, sd_bus_message *msg, int r, QError *e, bool save) {
        if (r >= 0 && save)
                r = manager_save(m, e);
        if (r < 0)
                return qerror_is_set(e) ? bus_reply_qerror(m, msg, e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

#define PROPERTY_METHOD(fn)                                                                \
        static int domain_##fn(sd_bus_message *msg, void *userdata, sd_bus_error *error) { \
                Domain *d = userdata;                                                      \
                return bus_method_##fn(manager_of(d), d, msg);                             \
        }
PROPERTY_METHOD(list_properties)
PROPERTY_METHOD(get_property)
PROPERTY_METHOD(get_all_properties)
PROPERTY_METHOD(get_property_default)
PROPERTY_METHOD(get_property_help)
PROPERTY_METHOD(set_property)
PROPERTY_METHOD(reset_property)

static int method_list_features(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        size_t i = 0;
        const char *k;
        int r = gate(manager_of(d), msg, AUTH_READ, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        while (hashmap_iterate(d->features, &i, &k, NULL)) {
                r = sd_bus_message_append_basic(reply, 's', k);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int feature_lookup(sd_bus_message *msg, Domain *d, int how) {
        Manager *m = manager_of(d);
        _cleanup_qerror_ QError e = {};
        const char *name, *value = NULL;
        int r = gate(m, msg, AUTH_READ, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (how < 0) {
                value = domain_feature_get(d, name);
                if (!value)
                        qerror_set(&e, QERR_FEATURE_NOT_FOUND, "Feature not set for domain %s: %s", d->name, name);
        } else
                (void) domain_feature_check(d, name, (FeatureCheck) how, &value, &e);
        if (qerror_is_set(&e))
                return bus_reply_qerror(m, msg, &e);
        return sd_bus_reply_method_return(msg, "s", strempty(value));
}

static int method_get_feature(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_lookup(msg, userdata, -1);
}
static int method_check_feature_with_template(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_lookup(msg, userdata, FEATURE_CHECK_TEMPLATE);
}
static int method_check_feature_with_netvm(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_lookup(msg, userdata, FEATURE_CHECK_NETVM);
}
static int method_check_feature_with_adminvm(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_lookup(msg, userdata, FEATURE_CHECK_ADMINVM);
}
static int method_check_feature_with_template_and_adminvm(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_lookup(msg, userdata, FEATURE_CHECK_TEMPLATE_AND_ADMINVM);
}

/* Features that no caller may change through the API, not even dom0 (upstream's AdminExtension). */
static bool feature_prohibited(const char *name) {
        static const char *const prohibited[] = {
                "deferred-netvm-original",
                "preload-dispvm",
                "preload-dispvm-completed",
                "preload-dispvm-in-progress",
        };
        for (size_t i = 0; i < ELEMENTSOF(prohibited); i++)
                if (streq(name, prohibited[i]))
                        return true;
        return false;
}

static int feature_change(sd_bus_message *msg, Domain *d, bool remove) {
        Manager *m = manager_of(d);
        _cleanup_qerror_ QError e = {};
        const char *name, *value = NULL;
        int r = gate(m, msg, AUTH_CHANGE, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */

        r = remove ? sd_bus_message_read(msg, "s", &name) : sd_bus_message_read(msg, "ss", &name, &value);
        if (r < 0)
                return r;
        if (feature_prohibited(name)) {
                qerror_set(&e, QERR_PERMISSION_DENIED,
                           "changing this feature is prohibited by qubes.ext.admin.AdminExtension");
                return bus_reply_qerror(m, msg, &e);
        }
        r = remove ? domain_feature_remove(d, name, &e) : domain_feature_set(d, name, value, &e);
        return reply_result(m, msg, r, &e, true);
}

static int method_set_feature(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_change(msg, userdata, false);
}
static int method_remove_feature(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_change(msg, userdata, true);
}

static int method_list_tags(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        int r = gate(manager_of(d), msg, AUTH_READ, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */
        _cleanup_free_ const char **tags = domain_tags_sorted(d);
        if (!tags)
                return -ENOMEM;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(reply, (char **) tags);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_has_tag(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = manager_of(d);
        _cleanup_qerror_ QError e = {};
        const char *tag;
        int r = gate(m, msg, AUTH_READ, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &tag);
        if (r < 0)
                return r;
        if (validate_tag(tag, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        return sd_bus_reply_method_return(msg, "b", (int) domain_has_tag(d, tag));
}

static int tag_change(sd_bus_message *msg, Domain *d, bool remove) {
        Manager *m = manager_of(d);
        _cleanup_qerror_ QError e = {};
        const char *tag;
        int r = gate(m, msg, AUTH_CHANGE, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &tag);
        if (r < 0)
                return r;
        if (validate_tag(tag, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        if (startswith(tag, "created-by-") && !streq(auth_caller_qube(m, msg), "dom0")) {
                qerror_set(&e, QERR_PERMISSION_DENIED,
                           "changing this tag is prohibited by qubes.ext.admin.AdminExtension");
                return bus_reply_qerror(m, msg, &e);
        }
        r = remove ? domain_tag_remove(d, tag, &e) : domain_tag_add(d, tag, &e);
        return reply_result(m, msg, r, &e, true);
}

static int method_add_tag(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return tag_change(msg, userdata, false);
}
static int method_remove_tag(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return tag_change(msg, userdata, true);
}

static int method_get_notes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = manager_of(d);
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *notes = NULL;
        int r = gate(m, msg, AUTH_READ, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */
        r = domain_notes_get(d, &notes, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, "s", strempty(notes));
}

static int method_set_notes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = manager_of(d);
        _cleanup_qerror_ QError e = {};
        const char *notes;
        int r = gate(m, msg, AUTH_CHANGE, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &notes);
        if (r < 0)
                return r;
        r = domain_notes_set(d, notes, strlen(notes), &e);
        return reply_result(m, msg, r, &e, false);
}

static int method_remove(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = manager_of(d);
        _cleanup_qerror_ QError e = {};
        int r = gate(m, msg, AUTH_CREATE_REMOVE, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */
        r = app_remove_domain(m->app, d, &e);
        return reply_result(m, msg, r, &e, true);
}

static int method_get_current_state(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        uint64_t mem, mem_max, cputime;
        int r = gate(manager_of(d), msg, AUTH_READ, d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered, or held until polkit answers */
        /* cached figures, refreshed by workers on lifecycle events and stats: never blocks */
        vmm_current_state(manager_of(d), d, &mem, &mem_max, &cputime);
        return sd_bus_reply_method_return(msg, "ttts", mem, mem_max, cputime, strempty(d->power_state));
}

static const sd_bus_vtable domain_extra[] = {
        SD_BUS_PROPERTY("PowerState", "s", property_get_power_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Features", "a{ss}", property_get_features, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Tags", "as", property_get_tags, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        PROPERTY_METHODS_VTABLE(domain),
        SD_BUS_METHOD_WITH_ARGS("ListFeatures", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", names), method_list_features, 0),
        SD_BUS_METHOD_WITH_ARGS("GetFeature", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", value), method_get_feature, 0),
        SD_BUS_METHOD_WITH_ARGS("CheckFeatureWithTemplate", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", value),
                                method_check_feature_with_template, 0),
        SD_BUS_METHOD_WITH_ARGS("CheckFeatureWithNetvm", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", value),
                                method_check_feature_with_netvm, 0),
        SD_BUS_METHOD_WITH_ARGS("CheckFeatureWithAdminVM", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", value),
                                method_check_feature_with_adminvm, 0),
        SD_BUS_METHOD_WITH_ARGS("CheckFeatureWithTemplateAndAdminVM", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", value),
                                method_check_feature_with_template_and_adminvm, 0),
        SD_BUS_METHOD_WITH_ARGS("SetFeature", SD_BUS_ARGS("s", name, "s", value), SD_BUS_NO_RESULT, method_set_feature,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveFeature", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_remove_feature,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListTags", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", tags), method_list_tags, 0),
        SD_BUS_METHOD_WITH_ARGS("HasTag", SD_BUS_ARGS("s", tag), SD_BUS_RESULT("b", present), method_has_tag, 0),
        SD_BUS_METHOD_WITH_ARGS("AddTag", SD_BUS_ARGS("s", tag), SD_BUS_NO_RESULT, method_add_tag,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveTag", SD_BUS_ARGS("s", tag), SD_BUS_NO_RESULT, method_remove_tag,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetNotes", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", notes), method_get_notes, 0),
        SD_BUS_METHOD_WITH_ARGS("SetNotes", SD_BUS_ARGS("s", notes), SD_BUS_NO_RESULT, method_set_notes,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_remove, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCurrentState", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("t", mem_kib, "t", mem_static_max_kib, "t", cputime, "s", power_state),
                                method_get_current_state, 0),
        SD_BUS_METHOD_WITH_ARGS("GetAllowedValues", SD_BUS_ARGS("s", property),
                                SD_BUS_RESULT("b", constrained, "as", values), constraints_method_get_allowed_values,
                                0),
        EVENT_SIGNAL_VTABLE,
};

/* ---- object lookup ---------------------------------------------------------------------- */

/* Which qubes an interface applies to: -1 = every qube, -2 = the local classes (QubesVM),
 * otherwise one class. */
typedef struct InterfaceScope {
        Manager *manager;
        int scope;
} InterfaceScope;

static InterfaceScope scopes[_QUBES_CLASS_MAX + 2];

static int domain_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        InterfaceScope *s = userdata;
        Domain *d = domain_of_bus_path(s->manager->app, path);
        if (!d)
                return 0;
        if (s->scope == -2 && !class_is_local(d->klass))
                return 0;
        if (s->scope >= 0 && (int) d->klass != s->scope)
                return 0;
        *found = d;
        return 1;
}

static int domain_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = NULL;
        size_t n = hashmap_size(m->app->domains), k = 0, i = 0;
        void *v;

        sd_bus_message *msg = sd_bus_get_current_message(bus);
        l = new0(char *, n + 1);
        if (!l)
                return -ENOMEM;
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                if (!auth_sees(m, msg, v))
                        continue;
                l[k] = domain_bus_path(v);
                if (!l[k])
                        return -ENOMEM;
                k++;
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

static size_t collect(const PropDef **out, bool (*want)(const PropDef *p, int c), int c) {
        size_t n = 0;
        for (size_t i = 0; i < n_domain_props; i++)
                if (want(&domain_props[i], c))
                        out[n++] = &domain_props[i];
        return n;
}

static bool want_domain(const PropDef *p, int c) {
        return p->classes == CLASSES_ALL;
}
static bool want_qubesvm(const PropDef *p, int c) {
        return p->classes != CLASSES_ALL && (p->classes & CLASSES_QUBESVM) == CLASSES_QUBESVM;
}
static bool want_class(const PropDef *p, int c) {
        return (p->classes & (1u << c)) && streq(domain_prop_interface(p, (QubesClass) c), class_interfaces[c]);
}

int domain_dbus_register(Manager *m, sd_bus *bus) {
        _cleanup_free_ const PropDef **props = new0(const PropDef *, n_domain_props + 1);
        size_t n, slot = 0;
        int r;

        if (!props)
                return log_oom();

        struct {
                const char *iface;
                bool (*want)(const PropDef *p, int c);
                int scope;
                const sd_bus_vtable *extra;
                size_t n_extra;
        } ifaces[_QUBES_CLASS_MAX + 2] = {
                { QUBESD_IFACE_DOMAIN, want_domain, -1, domain_extra, ELEMENTSOF(domain_extra) },
                { QUBESD_IFACE_QUBESVM, want_qubesvm, -2, NULL, 0 },
        };
        for (int c = 0; c < _QUBES_CLASS_MAX; c++)
                ifaces[2 + c] = (typeof(ifaces[0])){ class_interfaces[c], want_class, c, NULL, 0 };

        for (size_t k = 0; k < ELEMENTSOF(ifaces); k++) {
                /* built once, shared by every connection the objects are registered on */
                sd_bus_vtable *vt = m->vtables[slot];
                if (!vt) {
                        n = collect(props, ifaces[k].want, ifaces[k].scope);
                        vt = bus_build_property_vtable(props, n, property_get, property_set, ifaces[k].extra,
                                                       ifaces[k].n_extra);
                        if (!vt)
                                return log_oom();
                        m->vtables[slot] = vt;
                }
                slot++;
                scopes[k] = (InterfaceScope){ m, ifaces[k].scope };
                r = sd_bus_add_fallback_vtable(bus, NULL, QUBESD_DOMAIN_PREFIX, ifaces[k].iface, vt, domain_find,
                                               &scopes[k]);
                if (r < 0)
                        return log_error_errno(r, "Failed to register %s: %m", ifaces[k].iface);
        }
        r = sd_bus_add_node_enumerator(bus, NULL, QUBESD_DOMAIN_PREFIX, domain_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the qube enumerator: %m");
        return 0;
}
