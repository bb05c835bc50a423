/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "auth.h"
#include "backup-dbus.h"
#include "bus-error.h"
#include "bus-property.h"
#include "caller-filter.h"
#include "commit.h"
#include "config.h"
#include "devices-dbus.h"
#include "domain-dbus.h"
#include "firewall-dbus.h"
#include "job-dbus.h"
#include "label-dbus.h"
#include "lifecycle-dbus.h"
#include "manager-dbus.h"
#include "storage-dbus.h"
#include "storage/storage.h"
#include "manager.h"
#include "snapshot.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

static int global_get(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                      void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        _cleanup_(prop_value_done) PropValue v = {};
        const PropDef *p = global_prop_find_dbus(property);

        if (!p)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
        (void) app_property_get(m->app, p, &v, &e);
        return bus_append_prop_value(reply, p, &v, m->app);
}

static int global_set(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *value,
                      void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError e = {};
        const PropDef *p = global_prop_find_dbus(property);

        if (!p)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
        int r = property_write(userdata, sd_bus_get_current_message(bus), &(PropertyChange){ .p = p, .typed = value },
                               &e, error);
        if (r < 0)
                return qerror_is_set(&e) ? bus_set_qerror(error, &e) : r;
        return 1;
}

static int property_get_event_sequence(sd_bus *bus, const char *path, const char *interface, const char *property,
                                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "t", m->event_seq);
}

static int property_get_event_subscriptions(sd_bus *bus, const char *path, const char *interface, const char *property,
                                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", caller_filter_count(userdata));
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

#define PROPERTY_METHOD(fn)                                                                 \
        static int manager_##fn(sd_bus_message *msg, void *userdata, sd_bus_error *error) { \
                return bus_method_##fn(userdata, NULL, msg);                                \
        }
PROPERTY_METHOD(list_properties)
PROPERTY_METHOD(get_property)
PROPERTY_METHOD(get_all_properties)
PROPERTY_METHOD(get_all_properties_text)
PROPERTY_METHOD(get_property_default)
PROPERTY_METHOD(get_property_help)
PROPERTY_METHOD(set_property)
PROPERTY_METHOD(reset_property)

static int method_list_domains(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Domain **list = NULL;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */

        list = app_domains_sorted(m->app, NULL);
        if (!list)
                return -ENOMEM;
        /* a qube calling through qrexec sees what the policy lets it ask about (dom0: all) */
        FilterContext *filter = filter_context_new(m, auth_caller_qube(m, msg));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssso)");
        if (r < 0)
                return r;
        for (Domain **d = list; *d; d++) {
                if (!filter_domain_visible(filter, *d) || !auth_sees(m, msg, *d))
                        continue;
                _cleanup_free_ char *path = domain_bus_path(*d);
                if (!path) {
                        filter_context_free(filter);
                        return -ENOMEM;
                }
                r = sd_bus_message_append(reply, "(sssso)", (*d)->name, qubes_class_to_string((*d)->klass),
                                          strempty((*d)->power_state), (*d)->uuid, path);
                if (r < 0) {
                        filter_context_free(filter);
                        return r;
                }
        }
        filter_context_free(filter);
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int append_listing_line(StrBuf *b, const Domain *d) {
        /* pieces, not printf: this runs once per qube */
        strbuf_append(b, d->name);
        strbuf_append(b, " class=");
        strbuf_append(b, qubes_class_to_string(d->klass));
        strbuf_append(b, " state=");
        strbuf_append(b, strempty(d->power_state));
        strbuf_append(b, " uuid=");
        strbuf_append(b, d->uuid);
        strbuf_append_c(b, '\n');
        return b->oom ? -ENOMEM : 0;
}

/* admin.vm.List's text, built once for everyone who sees every qube (kept until a qube comes,
 * goes or changes power state: manager_listing_changed()), else for the caller. The shim sends
 * it as it is: one array to marshal instead of five strings per qube, and bytes (`ay`) rather
 * than an `s` because sd-bus validates every `s` as UTF-8 on both ends, which was half of each
 * side's CPU for the 78 KB of 1,000 qubes (the names in it are checked when they are set). */
static int reply_listing(sd_bus_message *msg, const char *text) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', text, strlen(text));
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_domains_text(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_free_ Domain **list = NULL;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */

        FilterContext *filter = filter_context_new(m, auth_caller_qube(m, msg));
        bool everyone = !filter && auth_sees_all(m, msg);
        if (everyone && m->listing) {
                filter_context_free(filter);
                return reply_listing(msg, m->listing);
        }
        list = app_domains_sorted(m->app, NULL);
        if (!list) {
                filter_context_free(filter);
                return -ENOMEM;
        }
        for (Domain **d = list; r >= 0 && *d; d++)
                if (filter_domain_visible(filter, *d) && auth_sees(m, msg, *d))
                        r = append_listing_line(&b, *d);
        filter_context_free(filter);
        if (r < 0)
                return r;
        if (everyone) {
                m->listing = b.buf ? strbuf_steal(&b) : strdup("");
                if (!m->listing)
                        return -ENOMEM;
                return reply_listing(msg, m->listing);
        }
        return reply_listing(msg, strempty(b.buf));
}

/* A GetDomainProperties call names at most this many properties (there are 55 qube properties;
 * a name repeated or that no class has counts too). */
#define DOMAIN_PROPERTIES_NAMES_MAX 256

/* GetAllDomainProperties (with_names false) and GetDomainProperties(as names): every qube's
 * GetAllProperties result in one reply, so that a client listing many qubes makes one round
 * trip instead of one per qube, or only the named properties of each (a name no class has
 * matches nothing). Visibility as in ListDomains. */
static int domain_properties(sd_bus_message *msg, Manager *m, bool with_names) {
        _cleanup_qerror_ QError denied = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Domain **list = NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ uint8_t *only = NULL;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */

        if (with_names) {
                r = sd_bus_message_read_strv(msg, &names);
                if (r < 0)
                        return r;
                if (strv_length(names) > DOMAIN_PROPERTIES_NAMES_MAX) {
                        _cleanup_qerror_ QError e = {};
                        qerror_set(&e, QERR_VALUE, "Too many property names (at most %d)", DOMAIN_PROPERTIES_NAMES_MAX);
                        return bus_reply_qerror(m, msg, &e);
                }
                only = new0(uint8_t, n_domain_props);
                if (!only)
                        return -ENOMEM;
                for (size_t i = 0; i < n_domain_props; i++)
                        only[i] = strv_contains(names, domain_props[i].name);
        }
        list = app_domains_sorted(m->app, NULL);
        if (!list)
                return -ENOMEM;
        FilterContext *filter = filter_context_new(m, auth_caller_qube(m, msg));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sa(ssbs)}");
        for (Domain **d = list; r >= 0 && *d; d++) {
                if (!filter_domain_visible(filter, *d) || !auth_sees(m, msg, *d))
                        continue;
                r = sd_bus_message_open_container(reply, 'e', "sa(ssbs)");
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 's', (*d)->name);
                if (r >= 0)
                        r = bus_append_properties(reply, m, *d, only);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        filter_context_free(filter);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_all_domain_properties(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return domain_properties(msg, userdata, false);
}

static int method_get_domain_properties(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return domain_properties(msg, userdata, true);
}

static int method_get_domain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *ref;
        Domain *d;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &ref);
        if (r < 0)
                return r;
        if (auth_resolve_domain(m, msg, ref, &d, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        _cleanup_free_ char *path = domain_bus_path(d);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "o", path);
}

static int method_list_classes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *names[_QUBES_CLASS_MAX + 1] = {};
        for (int c = 0; c < _QUBES_CLASS_MAX; c++)
                names[c] = qubes_class_to_string((QubesClass) c);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(reply, (char **) names);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_create_domain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **volume_pools = NULL;
        const char *klass, *name, *label, *template, *key, *value;
        CreateParams params = {};
        Domain *d;
        int r = auth_check(m, msg, AUTH_CREATE_REMOVE, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */

        r = sd_bus_message_read(msg, "ssss", &klass, &name, &label, &template);
        if (r < 0)
                return r;
        params.klass = qubes_class_from_string(klass);
        if (params.klass < 0) {
                qerror_set(&e, QERR_PROTOCOL, "No such VM class: '%s'", klass);
                return bus_reply_qerror(m, msg, &e);
        }
        params.name = name;
        params.label = label;
        params.template_name = isempty(template) ? NULL : template;
        params.creator = auth_caller_qube(m, msg);

        r = sd_bus_message_enter_container(msg, 'a', "{ss}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(msg, "{ss}", &key, &value)) > 0) {
                const char *vol = startswith(key, "pool:");
                if (streq(key, "pool")) {
                        if (params.pool) {
                                qerror_set(&e, QERR_PROTOCOL, "Option 'pool' must be unique");
                                return bus_reply_qerror(m, msg, &e);
                        }
                        params.pool = value;
                } else if (vol) {
                        static const char *const volumes[] = { "root", "private", "volatile", "kernel", NULL };
                        if (!strv_contains((char **) volumes, vol)) {
                                qerror_set(&e, QERR_PROTOCOL, "Volume must be one of: root, private, volatile, kernel");
                                return bus_reply_qerror(m, msg, &e);
                        }
                        for (size_t i = 0; volume_pools && volume_pools[i]; i += 2)
                                if (streq(volume_pools[i], vol)) {
                                        qerror_set(&e, QERR_PROTOCOL, "Options must be unique");
                                        return bus_reply_qerror(m, msg, &e);
                                }
                        if (strv_extend(&volume_pools, vol) < 0 || strv_extend(&volume_pools, value) < 0)
                                return -ENOMEM;
                } else {
                        qerror_set(&e, QERR_PROTOCOL, "Options does not match: name, label, pool, pool:");
                        return bus_reply_qerror(m, msg, &e);
                }
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        if (params.pool && volume_pools) {
                qerror_set(&e, QERR_PROTOCOL, "Conflicting options specified: 'pool=', 'pool:volume='");
                return bus_reply_qerror(m, msg, &e);
        }
        params.volume_pools = volume_pools;

        /* a transaction of its own: the files, then the durable save (storage_create_domain) */
        r = storage_create_domain(m->app, &params, &d, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        _cleanup_free_ char *path = domain_bus_path(d);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "o", path);
}

static int method_list_labels(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(siso)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->app->n_labels; i++) {
                Label *l = m->app->labels[i];
                _cleanup_free_ char *path = label_bus_path(l);
                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "(siso)", l->name, l->index, l->color, path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_lookup_label(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *ref;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &ref);
        if (r < 0)
                return r;
        if (validate_label_name(ref, false, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        Label *l = app_find_label(m->app, ref);
        if (!l) {
                qerror_set(&e, QERR_LABEL_NOT_FOUND, "Label does not exist: %s", ref);
                return bus_reply_qerror(m, msg, &e);
        }
        _cleanup_free_ char *path = label_bus_path(l);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "osis", path, l->name, l->index, l->color);
}

static int method_create_label(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *name, *color;
        Label *l;
        int r = auth_check(m, msg, AUTH_CHANGE, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "ss", &name, &color);
        if (r < 0)
                return r;
        manager_begin(m);
        r = app_create_label(m->app, name, color, &l, &e);
        if (r >= 0)
                r = manager_save(m, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        _cleanup_free_ char *path = label_bus_path(l);
        if (!path)
                return -ENOMEM;
        manager_emit_object_added(m, path);
        return sd_bus_reply_method_return(msg, "o", path);
}

static int method_remove_label(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *name;
        int r = auth_check(m, msg, AUTH_CHANGE, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        Label *l = app_find_label(m->app, name);
        _cleanup_free_ char *path = l ? label_bus_path(l) : NULL;
        manager_begin(m);
        r = app_remove_label(m->app, name, &e);
        if (r >= 0)
                r = manager_save(m, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        /* gone once qubes.xml without it is durable */
        if (path)
                manager_emit_object_removed(m, path);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_list_device_classes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        /* The classes upstream's core provides; usb and mic come with their device backends. */
        return sd_bus_reply_method_return(msg, "as", 2, "block", "pci");
}

static int method_get_system_info(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = userdata;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        if (!auth_sees_all(m, msg)) {
                /* the system information names every qube */
                _cleanup_qerror_ QError e = {};
                qerror_set(&e, QERR_NOT_AUTHORIZED, "Access denied: the system information lists every qube");
                return bus_reply_qerror(m, msg, &e);
        }
        _cleanup_free_ char *json = app_system_info_json(m->app);
        if (!json)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", json);
}

/* SubscribeEvents(s qube) and SubscribeEventNames(s qube, as names): names NULL for every event. */
static int subscribe_events(sd_bus_message *msg, Manager *m, bool with_names) {
        _cleanup_qerror_ QError denied = {};
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **names = NULL;
        const char *only;
        Domain *d = NULL;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &only);
        if (r < 0)
                return r;
        if (with_names) {
                r = sd_bus_message_read_strv(msg, &names);
                if (r < 0)
                        return r;
                /* sd-bus reads an empty array as NULL, which would mean every event: an empty
                 * list instead, which caller_filter_subscribe() refuses */
                if (!names && !(names = new0(char *, 1)))
                        return -ENOMEM;
        }
        if (!isempty(only) && auth_resolve_domain(m, msg, only, &d, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        r = caller_filter_subscribe(m, msg, auth_caller_qube(m, msg), d ? d->name : NULL, names, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, "t", m->event_seq);
}

static int method_subscribe_events(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return subscribe_events(msg, userdata, false);
}

static int method_subscribe_event_names(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return subscribe_events(msg, userdata, true);
}

static int method_unsubscribe_events(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *only;
        Domain *d = NULL;
        int r = sd_bus_message_read(msg, "s", &only);
        if (r < 0)
                return r;
        /* the name SubscribeEvents stored (a uuid: reference resolves to it); a qube that is gone
         * since is named as given */
        if (!isempty(only)) {
                _cleanup_qerror_ QError ignored = {};
                if (app_resolve_domain(m->app, only, &d, &ignored) < 0)
                        d = NULL;
        }
        r = caller_filter_unsubscribe(m, msg, isempty(only) ? NULL : d ? d->name : only);
        if (r == -ENOENT) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "No event subscription for '%s' on this connection", only);
                return bus_reply_qerror(m, msg, &e);
        }
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_enable_error_details(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int r = auth_enable_error_details(userdata, msg);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_set_caller_identity(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *qube;
        int r = sd_bus_message_read(msg, "s", &qube);
        if (r < 0)
                return r;
        r = auth_set_caller_identity(m, msg, qube, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

static const sd_bus_vtable manager_extra[] = {
        SD_BUS_PROPERTY("EventSequence", "t", property_get_event_sequence, 0, 0),
        SD_BUS_PROPERTY("EventSubscriptions", "u", property_get_event_subscriptions, 0, 0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        PROPERTY_METHODS_VTABLE(manager),
        SD_BUS_METHOD_WITH_ARGS("ListDomains", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sssso)", domains), method_list_domains,
                                0),
        SD_BUS_METHOD_WITH_ARGS("ListDomainsText", SD_BUS_NO_ARGS, SD_BUS_RESULT("ay", listing),
                                method_list_domains_text, 0),
        SD_BUS_METHOD_WITH_ARGS("GetAllDomainProperties", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sa(ssbs)}", domains),
                                method_get_all_domain_properties, 0),
        SD_BUS_METHOD_WITH_ARGS("GetDomainProperties", SD_BUS_ARGS("as", names), SD_BUS_RESULT("a{sa(ssbs)}", domains),
                                method_get_domain_properties, 0),
        SD_BUS_METHOD_WITH_ARGS("GetDomain", SD_BUS_ARGS("s", ref), SD_BUS_RESULT("o", domain), method_get_domain, 0),
        SD_BUS_METHOD_WITH_ARGS("ListClasses", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", classes), method_list_classes, 0),
        SD_BUS_METHOD_WITH_ARGS("CreateDomain",
                                SD_BUS_ARGS("s", class, "s", name, "s", label, "s", template, "a{ss}", options),
                                SD_BUS_RESULT("o", domain), method_create_domain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListLabels", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(siso)", labels), method_list_labels, 0),
        SD_BUS_METHOD_WITH_ARGS("LookupLabel", SD_BUS_ARGS("s", ref),
                                SD_BUS_RESULT("o", label, "s", name, "i", index, "s", color), method_lookup_label, 0),
        SD_BUS_METHOD_WITH_ARGS("CreateLabel", SD_BUS_ARGS("s", name, "s", color), SD_BUS_RESULT("o", label),
                                method_create_label, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveLabel", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_remove_label,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListDeviceClasses", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", classes),
                                method_list_device_classes, 0),
        SD_BUS_METHOD_WITH_ARGS("GetSystemInfo", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_get_system_info, 0),
        SD_BUS_METHOD_WITH_ARGS("SubscribeEvents", SD_BUS_ARGS("s", qube), SD_BUS_RESULT("t", sequence),
                                method_subscribe_events, 0),
        SD_BUS_METHOD_WITH_ARGS("SubscribeEventNames", SD_BUS_ARGS("s", qube, "as", names),
                                SD_BUS_RESULT("t", sequence), method_subscribe_event_names, 0),
        SD_BUS_METHOD_WITH_ARGS("UnsubscribeEvents", SD_BUS_ARGS("s", qube), SD_BUS_NO_RESULT,
                                method_unsubscribe_events, 0),
        SD_BUS_METHOD_WITH_ARGS("EnableErrorDetails", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_enable_error_details, 0),
        SD_BUS_METHOD_WITH_ARGS("SetCallerIdentity", SD_BUS_ARGS("s", qube), SD_BUS_NO_RESULT,
                                method_set_caller_identity, SD_BUS_VTABLE_UNPRIVILEGED),
        EVENT_SIGNAL_VTABLE,
};

static sd_bus_vtable *build_manager_vtable(void) {
        const PropDef *const *globals = global_props_ordered();
        size_t n = 0;
        while (globals[n])
                n++;
        return bus_build_property_vtable(globals, n, global_get, global_set, manager_extra, ELEMENTSOF(manager_extra));
}

/* The root of the tree: the Manager (its properties and methods, and the methods lifecycle,
 * storage and backups add to it), the ObjectManager, and every object type below it. */
static const BusObjectImplementation manager_object = {
        .path = QUBESD_ROOT_PATH,
        .interface = QUBESD_IFACE_MANAGER,
        .vtables = BUS_VTABLES({ .build = build_manager_vtable }),
        .manager = true,
        .callback = snapshot_object_callback,
        .children = BUS_IMPLEMENTATIONS(&domain_object, &label_object, &storage_object, &lifecycle_object, &job_object,
                                        &devices_object, &backup_object, &firewall_object),
};

int manager_dbus_register(Manager *m, sd_bus *bus) {
        m->tree = &manager_object;
        int r = bus_add_implementation(bus, &manager_object, m, &m->vtables);
        if (r < 0)
                return r;
        /* the group commit: a call that does not join it waits for its save (manager.c) */
        return manager_commit_add_filter(m, bus);
}
