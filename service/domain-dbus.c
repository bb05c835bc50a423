/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "domain-dbus.h"

#include <inttypes.h>

#include "auth.h"
#include "bus-error.h"
#include "bus-property.h"
#include "caller-filter.h"
#include "commit.h"
#include "constraints.h"
#include "lifecycle.h"
#include "manager.h"
#include "storage/storage.h"
#include "vmm.h"
#include "util/log.h"
#include "util/strv.h"

static bool class_is_local(QubesClass c) {
        return (1u << c) & CLASSES_QUBESVM;
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
        /* A value set on the qube is appended where it is stored (what domain_property_get()
         * would copy): a snapshot reads some 30,000 values at 1,000 qubes. */
        const PropSlot *s = domain_slot(d, p);
        if (s->set)
                return bus_append_prop_value(reply, p, &(PropValue){ .has_value = true, .value = s->value }, d->app);
        /* A default that cannot be computed (no template, no global) reads as None. */
        (void) domain_property_get(d, p, &v, &e);
        return bus_append_prop_value(reply, p, &v, d->app);
}

static int property_set(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *value, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError e = {};
        Domain *d = userdata;
        const PropDef *p = domain_prop_find_dbus(d->klass, property);

        if (!p)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
        int r = property_write(bus_manager(bus), sd_bus_get_current_message(bus),
                               &(PropertyChange){ .d = d, .p = p, .typed = value }, &e, error);
        if (r < 0)
                return qerror_is_set(&e) ? bus_set_qerror(error, &e) : r;
        return 1;
}

static int property_get_power_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        return bus_append_string(reply, strempty(d->power_state));
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
                /* basic appends: no format string to parse for each of 1,000 qubes' features */
                r = sd_bus_message_open_container(reply, 'e', "ss");
                if (r >= 0)
                        r = bus_append_string(reply, f->name);
                if (r >= 0)
                        r = bus_append_string(reply, f->value);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
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
        int r = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; r >= 0 && tags[i]; i++)
                r = bus_append_string(reply, tags[i]);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* ---- methods ---------------------------------------------------------------------------- */

/* A change made (r >= 0) is answered after the group's save (manager.c). */
static int reply_after_commit(Manager *m, sd_bus_message *msg, int r, QError *e) {
        if (r < 0)
                return qerror_is_set(e) ? bus_reply_qerror(m, msg, e) : r;
        return manager_commit_reply(m, msg);
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
                return bus_method_##fn(call_manager(msg), d, msg);                         \
        }
PROPERTY_METHOD(list_properties)
PROPERTY_METHOD(get_property)
PROPERTY_METHOD(get_all_properties)
PROPERTY_METHOD(get_all_properties_text)
PROPERTY_METHOD(get_property_default)
PROPERTY_METHOD(get_property_help)
PROPERTY_METHOD(set_property)
PROPERTY_METHOD(reset_property)

static int method_list_features(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        size_t i = 0;
        const char *k;
        Manager *m = call_manager(msg);
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */

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
        _cleanup_qerror_ QError denied = {};
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *name, *value = NULL;
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */

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
        _cleanup_qerror_ QError denied = {};
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *name, *value = NULL;
        int r = auth_check(m, msg, AUTH_CHANGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */

        r = remove ? sd_bus_message_read(msg, "s", &name) : sd_bus_message_read(msg, "ss", &name, &value);
        if (r < 0)
                return r;
        if (feature_prohibited(name)) {
                qerror_set(&e, QERR_PERMISSION_DENIED,
                           "changing this feature is prohibited by qubes.ext.admin.AdminExtension");
                return bus_reply_qerror(m, msg, &e);
        }
        manager_begin(m);
        r = remove ? domain_feature_remove(d, name, &e) : domain_feature_set(d, name, value, &e);
        return reply_after_commit(m, msg, r, &e);
}

static int method_set_feature(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_change(msg, userdata, false);
}
static int method_remove_feature(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return feature_change(msg, userdata, true);
}

static int method_list_tags(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
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
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *tag;
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &tag);
        if (r < 0)
                return r;
        if (validate_tag(tag, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        return sd_bus_reply_method_return(msg, "b", (int) domain_has_tag(d, tag));
}

static int tag_change(sd_bus_message *msg, Domain *d, bool remove) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *tag;
        int r = auth_check(m, msg, AUTH_CHANGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
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
        manager_begin(m);
        r = remove ? domain_tag_remove(d, tag, &e) : domain_tag_add(d, tag, &e);
        return reply_after_commit(m, msg, r, &e);
}

static int method_add_tag(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return tag_change(msg, userdata, false);
}
static int method_remove_tag(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return tag_change(msg, userdata, true);
}

static int method_get_notes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *notes = NULL;
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = domain_notes_get(d, &notes, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, "s", strempty(notes));
}

/* NotesChanged: after every successful SetNotes (notes are not a property and no Qubes event
 * tells of them), on the bus, the private connections that get broadcasts, and a copy on the
 * Subscription interface for each local subscriber who may read the qube but gets no
 * broadcasts. Not an Admin API event: the shim forwards Event signals only. */
typedef struct NotesSignal {
        const char *path, *dest;
} NotesSignal;

static int send_notes_changed(sd_bus *bus, void *userdata) {
        NotesSignal *s = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        int r = sd_bus_message_new_signal(bus, &sig, s->path, s->dest ? QUBESD_IFACE_SUBSCRIPTION : QUBESD_IFACE_DOMAIN,
                                          "NotesChanged");
        if (r >= 0 && s->dest && sd_bus_is_bus_client(bus) > 0)
                r = sd_bus_message_set_destination(sig, s->dest);
        if (r >= 0)
                r = sd_bus_send(bus, sig, NULL);
        return r;
}

static int send_notes_changed_copy(sd_bus *bus, const char *destination, void *userdata) {
        NotesSignal copy = *(NotesSignal *) userdata;
        copy.dest = destination;
        return send_notes_changed(bus, &copy);
}

static void emit_notes_changed(Manager *m, Domain *d) {
        _cleanup_free_ char *path = domain_bus_path(d);
        if (!path)
                return;
        NotesSignal sig = { path, NULL };
        manager_send_everywhere(m, send_notes_changed, &sig, "NotesChanged");
        caller_filter_send_copies(m, d, send_notes_changed_copy, &sig);
}

static int method_set_notes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *notes;
        int r = auth_check(m, msg, AUTH_CHANGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &notes);
        if (r < 0)
                return r;
        r = domain_notes_set(d, notes, strlen(notes), &e);
        if (r >= 0)
                emit_notes_changed(m, d);
        return reply_result(m, msg, r, &e, false);
}

static int method_remove(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        int r = auth_check(m, msg, AUTH_CREATE_REMOVE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        /* Halted until it spawns, but starting: upstream's Remove waits for the start (the
         * startup lock) and then finds it running; removing it under the start would leave a
         * libvirt domain without a qube (found by test_hostile: Start and Remove sent at once) */
        if (lifecycle_is_starting(m, d)) {
                qerror_set(&e, QERR_VM_NOT_HALTED, "Domain is not powered off: '%s'", d->name);
                return bus_reply_qerror(m, msg, &e);
        }
        /* a transaction of its own: the data goes only once qubes.xml without the qube is durable */
        r = storage_remove_domain(m->app, d, &e);
        return reply_result(m, msg, r, &e, false);
}

static int method_get_current_state(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        uint64_t mem, mem_max, cputime;
        Manager *m = call_manager(msg);
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        /* cached figures, refreshed by workers on lifecycle events and stats: never blocks */
        vmm_current_state(m, d, &mem, &mem_max, &cputime);
        return sd_bus_reply_method_return(msg, "ttts", mem, mem_max, cputime, strempty(d->power_state));
}

static int method_get_allowed_values(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {}, e = {};
        _cleanup_strv_free_ char **values = NULL;
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        const char *name;
        bool constrained;
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!domain_prop_find(d->klass, name)) {
                qerror_set(&e, QERR_NO_SUCH_PROPERTY, "Invalid property '%s' of %s", name, d->name);
                return bus_reply_qerror(m, msg, &e);
        }
        r = constraints_allowed_values(m, msg, d, name, &constrained, &values);
        if (r < 0)
                return r;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "b", (int) constrained);
        if (r >= 0)
                r = sd_bus_message_append_strv(reply, values);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
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
        SD_BUS_SIGNAL("NotesChanged", "", 0),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_remove, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCurrentState", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("t", mem_kib, "t", mem_static_max_kib, "t", cputime, "s", power_state),
                                method_get_current_state, 0),
        SD_BUS_METHOD_WITH_ARGS("GetAllowedValues", SD_BUS_ARGS("s", property),
                                SD_BUS_RESULT("b", constrained, "as", values), method_get_allowed_values, 0),
        EVENT_SIGNAL_VTABLE,
};

/* ---- object lookup ---------------------------------------------------------------------- */

/* The Domain interface: every qube. */
static int domain_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        Manager *m = userdata;
        Domain *d = domain_of_bus_path(m->app, path);
        if (!d)
                return 0;
        *found = d;
        return 1;
}

/* The QubesVM interface: the local classes. */
static int qubesvm_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                        sd_bus_error *error) {
        Manager *m = userdata;
        Domain *d = domain_of_bus_path(m->app, path);
        if (!d || !class_is_local(d->klass))
                return 0;
        *found = d;
        return 1;
}

/* A class interface: the qubes of that class. */
static int class_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                      sd_bus_error *error) {
        Manager *m = userdata;
        Domain *d = domain_of_bus_path(m->app, path);
        if (!d || (int) d->klass != qubes_class_of_interface(interface))
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

/* ---- the vtables, derived from the property table (model/props.c) ------------------------- */

/* The typed properties of one interface: those whose domain_prop_interface() is that interface
 * for the classes given (any one of them decides: the table puts a property on one interface). */
static sd_bus_vtable *build_interface_vtable(const char *iface, uint32_t classes, const sd_bus_vtable *extra,
                                             size_t n_extra) {
        _cleanup_free_ const PropDef **props = new0(const PropDef *, n_domain_props + 1);
        size_t n = 0;

        if (!props)
                return NULL;
        for (size_t i = 0; i < n_domain_props; i++) {
                const PropDef *p = &domain_props[i];
                for (int c = 0; c < _QUBES_CLASS_MAX; c++)
                        if ((classes & p->classes & (1u << c)) &&
                            streq(domain_prop_interface(p, (QubesClass) c), iface)) {
                                props[n++] = p;
                                break;
                        }
        }
        return bus_build_property_vtable(props, n, property_get, property_set, extra, n_extra);
}

static sd_bus_vtable *build_domain_vtable(void) {
        return build_interface_vtable(QUBESD_IFACE_DOMAIN, CLASSES_ALL, domain_extra, ELEMENTSOF(domain_extra));
}

static sd_bus_vtable *build_qubesvm_vtable(void) {
        return build_interface_vtable(QUBESD_IFACE_QUBESVM, CLASSES_QUBESVM, NULL, 0);
}

/* One interface per class, for the properties only that class has (AppVM, TemplateVM, …). */
#define CLASS_OBJECT(c, name)                                                                                     \
        static sd_bus_vtable *build_##name##_vtable(void) {                                                       \
                return build_interface_vtable("org.qubes_os.Admin1." #name, CLASS_BIT(c), NULL, 0);               \
        }                                                                                                         \
        static const BusObjectImplementation name##_object = {                                                    \
                .path = QUBESD_DOMAIN_PREFIX,                                                                     \
                .interface = "org.qubes_os.Admin1." #name,                                                        \
                .fallback_vtables = BUS_FALLBACK_VTABLES({ .build = build_##name##_vtable, .find = class_find }), \
        }
CLASS_OBJECT(ADMINVM, AdminVM);
CLASS_OBJECT(APPVM, AppVM);
CLASS_OBJECT(DISPVM, DispVM);
CLASS_OBJECT(REMOTEVM, RemoteVM);
CLASS_OBJECT(STANDALONEVM, StandaloneVM);
CLASS_OBJECT(TEMPLATEVM, TemplateVM);

static const BusObjectImplementation qubesvm_object = {
        .path = QUBESD_DOMAIN_PREFIX,
        .interface = QUBESD_IFACE_QUBESVM,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .build = build_qubesvm_vtable, .find = qubesvm_find }),
};

/* Qubes: /org/qubes_os/Admin1/domain/<name>, the Domain interface (properties every class has,
 * features, tags, notes, …), QubesVM for the local classes, and one interface per class. */
const BusObjectImplementation domain_object = {
        .path = QUBESD_DOMAIN_PREFIX,
        .interface = QUBESD_IFACE_DOMAIN,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .build = build_domain_vtable, .find = domain_find }),
        .node_enumerator = domain_enumerate,
        .children = BUS_IMPLEMENTATIONS(&qubesvm_object, &AdminVM_object, &AppVM_object, &DispVM_object,
                                        &RemoteVM_object, &StandaloneVM_object, &TemplateVM_object),
};
