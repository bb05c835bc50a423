/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-property.h"

#include <inttypes.h>

#include "auth.h"
#include "bus-error.h"
#include "commit.h"
#include "constraints.h"
#include "manager.h"
#include "util/log.h"
#include "util/strbuf.h"

const char *prop_dbus_signature(const PropDef *p) {
        switch (p->type) {
        case PROP_INT:
                return "x";
        case PROP_BOOL:
                return "b";
        case PROP_VM:
        case PROP_LABEL:
                return "o";
        case PROP_FLOAT:
                return "d";
        default:
                return "s";
        }
}

int bus_append_string(sd_bus_message *m, const char *s) {
        unsigned char high = 0;
        size_t n = 0;
        char *space;

        for (; s[n]; n++)
                high |= (unsigned char) s[n];
        if (high & 0x80)
                return sd_bus_message_append_basic(m, 's', s);
        int r = sd_bus_message_append_string_space(m, n, &space);
        if (r < 0)
                return r;
        memcpy(space, s, n);
        return 0;
}

/* Every property read of every qube comes through here (some 16,000 for one
 * GetManagedObjects with 300 qubes): basic appends, no signature to parse. */
int bus_append_prop_value(sd_bus_message *reply, const PropDef *p, const PropValue *v, App *app) {
        const char *s = v->value;

        switch (p->type) {
        case PROP_INT: {
                int64_t x = s ? strtoll(s, NULL, 10) : 0;
                return sd_bus_message_append_basic(reply, 'x', &x);
        }
        case PROP_BOOL: {
                int b = s && streq(s, "True");
                return sd_bus_message_append_basic(reply, 'b', &b);
        }
        case PROP_FLOAT: {
                double x = s ? strtod(s, NULL) : 0.0;
                return sd_bus_message_append_basic(reply, 'd', &x);
        }
        case PROP_VM: {
                Domain *d = s ? app_get_domain(app, s) : NULL;
                char buf[256];
                const char *fast = d ? bus_path_encode_buf(QUBESD_DOMAIN_PREFIX, d->name, buf, sizeof buf) : "/";
                _cleanup_free_ char *path = fast ? NULL : domain_bus_path(d);
                return sd_bus_message_append_basic(reply, 'o', fast ?: path ?: "/");
        }
        case PROP_LABEL: {
                Label *l = s ? app_find_label(app, s) : NULL;
                char buf[256];
                const char *fast = l ? bus_path_encode_buf(QUBESD_LABEL_PREFIX, l->name, buf, sizeof buf) : "/";
                _cleanup_free_ char *path = fast ? NULL : label_bus_path(l);
                return sd_bus_message_append_basic(reply, 'o', fast ?: path ?: "/");
        }
        default:
                return bus_append_string(reply, strempty(s));
        }
}

int bus_read_prop_value(sd_bus_message *value, const PropDef *p, App *app, char **ret, sd_bus_error *error) {
        int r;

        switch (p->type) {
        case PROP_INT: {
                int64_t x;
                r = sd_bus_message_read(value, "x", &x);
                if (r < 0)
                        return r;
                return asprintf(ret, "%" PRIi64, x) < 0 ? -ENOMEM : 0;
        }
        case PROP_BOOL: {
                int b;
                r = sd_bus_message_read(value, "b", &b);
                if (r < 0)
                        return r;
                *ret = strdup(b ? "True" : "False");
                return *ret ? 0 : -ENOMEM;
        }
        case PROP_FLOAT: {
                double x;
                r = sd_bus_message_read(value, "d", &x);
                if (r < 0)
                        return r;
                return asprintf(ret, "%.17g", x) < 0 ? -ENOMEM : 0;
        }
        case PROP_VM:
        case PROP_LABEL: {
                const char *path;
                r = sd_bus_message_read(value, "o", &path);
                if (r < 0)
                        return r;
                if (streq(path, "/")) {
                        *ret = strdup("");
                        return *ret ? 0 : -ENOMEM;
                }
                r = sd_bus_path_decode(path, p->type == PROP_VM ? QUBESD_DOMAIN_PREFIX : QUBESD_LABEL_PREFIX, ret);
                if (r < 0)
                        return r;
                if (r == 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Not a %s object path: %s",
                                                 p->type == PROP_VM ? "qube" : "label", path);
                return 0;
        }
        default: {
                const char *s;
                r = sd_bus_message_read(value, "s", &s);
                if (r < 0)
                        return r;
                *ret = strdup(s);
                return *ret ? 0 : -ENOMEM;
        }
        }
}

/* ---- the property methods shared by the Manager (global properties) and qubes ---------- */

static const PropDef *holder_find(Domain *d, const char *name) {
        return d ? domain_prop_find(d->klass, name) : global_prop_find(name);
}

static const PropDef *const *holder_props(Domain *d) {
        return d ? domain_props_of_class(d->klass) : global_props_ordered();
}

static int holder_get(Manager *m, Domain *d, const PropDef *p, PropValue *v, QError *e) {
        return d ? domain_property_get(d, p, v, e) : app_property_get(m->app, p, v, e);
}

static int no_such_property(Manager *m, Domain *d, sd_bus_message *msg, const char *name) {
        _cleanup_qerror_ QError e = {};
        /* upstream prints str(holder): the qube's name, or the app object (as the model does) */
        qerror_set(&e, QERR_NO_SUCH_PROPERTY, "Invalid property '%s' of %s", name,
                   d ? d->name : "<qubes.app.Qubes object>");
        return bus_reply_qerror(m, msg, &e);
}

/* 0: go on; 1: answered (refused), or held until polkit answers; negative: failed */
static int check_read(Manager *m, Domain *d, sd_bus_message *msg) {
        _cleanup_qerror_ QError e = {};
        int r = auth_check(m, msg, AUTH_READ, d, &e);
        if (r < 0)
                return bus_reply_qerror(m, msg, &e);
        return r == 0 ? 1 : 0;
}

int bus_method_list_properties(Manager *m, Domain *d, sd_bus_message *msg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = check_read(m, d, msg);
        if (r != 0)
                return r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (const PropDef *const *p = holder_props(d); *p; p++) {
                r = sd_bus_message_append_basic(reply, 's', (*p)->name);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_method_get_property(Manager *m, Domain *d, sd_bus_message *msg) {
        _cleanup_qerror_ QError e = {};
        _cleanup_(prop_value_done) PropValue v = {};
        const char *name;
        int r = check_read(m, d, msg);
        if (r != 0)
                return r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        const PropDef *p = holder_find(d, name);
        if (!p)
                return no_such_property(m, d, msg, name);
        r = holder_get(m, d, p, &v, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, "sbs", prop_type_word(p), (int) v.is_default, strempty(v.value));
}

/* A property as GetAll lists it: a default that cannot be computed reads as "no value" (at its
 * default, empty), as upstream's GetAll does for an AttributeError; anything else is a real
 * failure (negative). */
static int listed_get(Manager *m, Domain *d, const PropDef *p, PropValue *v) {
        _cleanup_qerror_ QError e = {};
        int r = holder_get(m, d, p, v, &e);

        if (r < 0 && !qerror_is_set(&e))
                return r;
        if (r < 0) {
                prop_value_done(v);
                *v = (PropValue){ .is_default = true };
        }
        return 0;
}

int bus_append_properties(sd_bus_message *reply, Manager *m, Domain *d, const uint8_t *only) {
        int r = sd_bus_message_open_container(reply, 'a', "(ssbs)");
        if (r < 0)
                return r;
        for (const PropDef *const *p = holder_props(d); *p; p++) {
                _cleanup_(prop_value_done) PropValue v = {};

                if (only && !only[domain_prop_index(*p)])
                        continue;
                r = listed_get(m, d, *p, &v);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(ssbs)", (*p)->name, prop_type_word(*p), (int) v.is_default,
                                                  strempty(v.value));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

int bus_append_all_properties(sd_bus_message *reply, Manager *m, Domain *d) {
        return bus_append_properties(reply, m, d, NULL);
}

/* admin.*.property.GetAll's payload, written here rather than by the shim from the a(ssbs) of
 * GetAllProperties: one array of bytes to marshal and read instead of 4 values and a structure
 * per property (about 50 of them), which cost the two of them more CPU than the rest of the
 * call. Same values and order as bus_append_all_properties(). */
int bus_method_get_all_properties_text(Manager *m, Domain *d, sd_bus_message *msg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strbuf_ StrBuf b = {};
        int r = check_read(m, d, msg);
        if (r != 0)
                return r;

        for (const PropDef *const *p = holder_props(d); *p; p++) {
                _cleanup_(prop_value_done) PropValue v = {};

                r = listed_get(m, d, *p, &v);
                if (r < 0)
                        return r;
                strbuf_append(&b, (*p)->name);
                strbuf_append(&b, v.is_default ? " default=True type=" : " default=False type=");
                strbuf_append(&b, prop_type_word(*p));
                strbuf_append_c(&b, ' ');
                strbuf_append_value_escaped(&b, strempty(v.value));
                strbuf_append_c(&b, '\n');
        }
        if (b.oom)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', strempty(b.buf), b.len);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_method_get_all_properties(Manager *m, Domain *d, sd_bus_message *msg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = check_read(m, d, msg);
        if (r != 0)
                return r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = bus_append_all_properties(reply, m, d);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_method_get_property_default(Manager *m, Domain *d, sd_bus_message *msg) {
        _cleanup_qerror_ QError e = {};
        _cleanup_(prop_value_done) PropValue v = {};
        const char *name;
        int r = check_read(m, d, msg);
        if (r != 0)
                return r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        const PropDef *p = holder_find(d, name);
        if (!p)
                return no_such_property(m, d, msg, name);
        r = d ? domain_property_get_default(d, p, &v, &e) : app_property_get_default(m->app, p, &v, &e);
        if (r < 0) {
                if (qerror_is_set(&e))
                        return bus_reply_qerror(m, msg, &e);
                return r;
        }
        return sd_bus_reply_method_return(msg, "bss", (int) v.has_value, prop_type_word(p), strempty(v.value));
}

int bus_method_get_property_help(Manager *m, Domain *d, sd_bus_message *msg) {
        const char *name;
        int r = check_read(m, d, msg);
        if (r != 0)
                return r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        const PropDef *p = holder_find(d, name);
        if (!p)
                return no_such_property(m, d, msg, name);
        return sd_bus_reply_method_return(msg, "s", strempty(p->help));
}

int property_write(Manager *m, sd_bus_message *msg, const PropertyChange *c, QError *e, sd_bus_error *error) {
        _cleanup_free_ char *typed = NULL;
        const char *value = c->value;
        const PropDef *p = c->p;
        Domain *d = c->d;
        int r;

        /* authorize */
        r = auth_check(m, msg, AUTH_CHANGE, d, e);
        if (r < 0)
                return r;
        if (r == 0) {
                if (!c->typed)
                        return 0; /* held: runs again when polkit has answered */
                /* Properties.Set is answered when the setter returns: it cannot wait */
                return qerror_set(e, QERR_NOT_AUTHORIZED_CAN_OBTAIN,
                                  "Interactive authorization needed: use SetProperty");
        }
        if (!p) {
                p = holder_find(d, c->name);
                if (!p)
                        /* upstream prints str(holder): the qube's name, or the app object */
                        return qerror_set(e, QERR_NO_SUCH_PROPERTY, "Invalid property '%s' of %s", c->name,
                                          d ? d->name : "<qubes.app.Qubes object>");
        }

        /* read the value */
        if (c->typed) {
                r = bus_read_prop_value(c->typed, p, m->app, &typed, error);
                if (r < 0)
                        return r;
                value = typed;
        }

        /* check it against the value constraints, set it, save */
        r = constraints_check(m, msg, d, p->name, value, e);
        if (r < 0)
                return r;
        manager_begin(m);
        if (!value)
                r = d ? domain_property_reset(d, p->name, e) : app_property_reset(m->app, p->name, e);
        else
                r = d ? domain_property_set(d, p->name, value, strlen(value), e)
                      : app_property_set(m->app, p->name, value, strlen(value), e);
        if (r < 0)
                return r;
        /* Properties.Set is answered when the setter returns: it saves now; the methods join
         * the group commit (write_method) */
        if (c->typed) {
                r = manager_save(m, e);
                if (r < 0)
                        return r;
        }
        return 1;
}

static int write_method(Manager *m, Domain *d, sd_bus_message *msg, bool reset) {
        _cleanup_qerror_ QError e = {};
        const char *name, *value = NULL;
        int r;

        r = reset ? sd_bus_message_read(msg, "s", &name) : sd_bus_message_read(msg, "ss", &name, &value);
        if (r < 0)
                return r;
        r = property_write(m, msg, &(PropertyChange){ .d = d, .name = name, .value = value }, &e, NULL);
        if (r < 0)
                return bus_reply_failure(m, msg, r, &e);
        if (r == 0)
                return 1; /* held until polkit answers */
        return manager_commit_reply(m, msg);
}

int bus_method_set_property(Manager *m, Domain *d, sd_bus_message *msg) {
        return write_method(m, d, msg, false);
}

int bus_method_reset_property(Manager *m, Domain *d, sd_bus_message *msg) {
        return write_method(m, d, msg, true);
}

sd_bus_vtable *bus_build_property_vtable(const PropDef *const *props, size_t n_props, sd_bus_property_get_t get,
                                         sd_bus_property_set_t set, const sd_bus_vtable *extra, size_t n_extra) {
        sd_bus_vtable *v = calloc(n_props + n_extra + 2, sizeof(sd_bus_vtable));
        size_t k = 0;

        if (!v)
                return NULL;
        /* The busconfig lets everyone send and every method authorizes through auth_check(). */
        v[k++] = (sd_bus_vtable) SD_BUS_VTABLE_START(SD_BUS_VTABLE_UNPRIVILEGED);
        for (size_t i = 0; i < n_props; i++) {
                const PropDef *p = props[i];
                const char *sig = prop_dbus_signature(p);
                if (p->flags & PROP_WRITE_ONCE || streq(p->name, "klass"))
                        v[k++] = (sd_bus_vtable) SD_BUS_PROPERTY(p->dbus_name, sig, get, 0,
                                                                 SD_BUS_VTABLE_PROPERTY_CONST);
                else if (p->flags & (PROP_STATELESS | PROP_READONLY))
                        v[k++] = (sd_bus_vtable) SD_BUS_PROPERTY(p->dbus_name, sig, get, 0,
                                                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE);
                else
                        v[k++] = (sd_bus_vtable) SD_BUS_WRITABLE_PROPERTY(p->dbus_name, sig, get, set, 0,
                                                                          SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE |
                                                                                  SD_BUS_VTABLE_UNPRIVILEGED);
        }
        for (size_t i = 0; i < n_extra; i++) {
                v[k] = extra[i];
                /* sd-bus refuses members without this flag to callers lacking CAP_SYS_ADMIN;
                 * here the daemon itself decides (auth_check), as the busconfig lets everyone send. */
                if (v[k].type == _SD_BUS_VTABLE_METHOD || v[k].type == _SD_BUS_VTABLE_WRITABLE_PROPERTY)
                        v[k].flags |= SD_BUS_VTABLE_UNPRIVILEGED;
                k++;
        }
        v[k++] = (sd_bus_vtable) SD_BUS_VTABLE_END;
        return v;
}
