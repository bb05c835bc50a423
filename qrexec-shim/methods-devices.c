/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* admin.vm.device.<class>.* and admin.vm.device.denied.* (spec/devices.md): the qrexec argument
 * and the payload are parsed with lib/device-protocol.c (the same code qubesd checks D-Bus input
 * with), the work is qubesd's DomainDevices interface, and the replies are upstream's lines:
 * key='value' items with its quoting, sorted by their first token. */
#include "shim.h"

#include "device-protocol.h"
#include "util/strv.h"

#define DOMAIN_DEVICES_IFACE "org.qubes_os.Admin1.DomainDevices"

static const char *devclass_of(const Call *c) {
        return c->m->extra;
}

/* ---- replies: lines sorted by their first token ----------------------------------------------- */

typedef struct Line {
        char *key;
        char *text;
} Line;

static int cmp_line(const void *a, const void *b) {
        return strcmp(((const Line *) a)->key, ((const Line *) b)->key);
}

typedef struct Lines {
        Line *l;
        size_t n;
} Lines;

static void lines_done(Lines *ls) {
        for (size_t i = 0; i < ls->n; i++) {
                free(ls->l[i].key);
                free(ls->l[i].text);
        }
        free(ls->l);
}

static int lines_add(Lines *ls, char *key, char *text) {
        Line *n = realloc(ls->l, (ls->n + 1) * sizeof(Line));
        if (!n) {
                free(key);
                free(text);
                return -ENOMEM;
        }
        ls->l = n;
        ls->l[ls->n++] = (Line){ key, text };
        return 0;
}

static void reply_lines(Call *c, Lines *ls) {
        StrBuf *o;
        qsort(ls->l, ls->n, sizeof(Line), cmp_line);
        o = call_reply_ok_begin(c);
        for (size_t i = 0; i < ls->n; i++) {
                strbuf_append(o, ls->l[i].key);
                strbuf_append_c(o, ' ');
                strbuf_append(o, ls->l[i].text);
                strbuf_append_c(o, '\n');
        }
        call_reply_end(c);
}

/* Read a(ss) into key, value, … */
static int read_pairs(sd_bus_message *m, char ***ret) {
        _cleanup_strv_free_ char **l = new0(char *, 1);
        const char *k, *v;
        int r;

        if (!l)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "(ss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ss)", &k, &v)) > 0)
                if (strv_extend(&l, k) < 0 || strv_extend(&l, v) < 0)
                        return -ENOMEM;
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

/* Serialise items; a character the protocol cannot carry fails as upstream's writer does. */
static int serialise(char *const *items, char **ret, QError *e) {
        _cleanup_strbuf_ StrBuf b = {};
        for (char *const *kv = items; kv && kv[0] && kv[1]; kv += 2) {
                int r = device_append_item(&b, kv[0], kv[1], e);
                if (r < 0)
                        return r;
        }
        *ret = b.buf ? strbuf_steal(&b) : strdup("");
        return *ret ? 0 : -ENOMEM;
}

/* ---- Available ----------------------------------------------------------------------------- */

static int on_available(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        _cleanup_(lines_done) Lines ls = {};
        _cleanup_qerror_ QError e = {};
        const char *port, *devid;
        size_t matches = 0;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_enter_container(m, 'a', "(ssa(ss))");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "ssa(ss)")) > 0) {
                _cleanup_strv_free_ char **items = NULL;
                char *key = NULL, *text = NULL;
                r = sd_bus_message_read(m, "ss", &port, &devid);
                if (r >= 0)
                        r = read_pairs(m, &items);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        break;
                if (!isempty(c->req.arg) && !streq(port, c->req.arg))
                        continue;
                matches++;
                if (asprintf(&key, "%s:%s", port, devid) < 0)
                        return call_reply_dbus_error(c, NULL, -ENOMEM), 0;
                r = serialise(items, &text, &e);
                if (r < 0) {
                        free(key);
                        if (qerror_is_set(&e))
                                return call_reply_qerror(c, &e), 0;
                        break;
                }
                r = lines_add(&ls, key, text);
        }
        if (r < 0)
                return call_reply_dbus_error(c, NULL, r), 0;
        /* a port shown twice: upstream's bare DeviceNotFound(), an empty message */
        if (!isempty(c->req.arg) && matches > 1)
                return call_reply_error(c, QERR_DEVICE_NOT_FOUND, ""), 0;
        reply_lines(c, &ls);
        return 0;
}

int device_available_start(Call *c) {
        return call_method(c, c->path, DOMAIN_DEVICES_IFACE, "ListAvailableDevices", on_available, "s", devclass_of(c));
}

/* ---- Assigned, Attached ------------------------------------------------------------------------ */

static int list_check(Call *c, QError *e) {
        /* the filter is <backend>+<port_id>; upstream fails on anything else (an empty reply) */
        if (!isempty(c->req.arg) && !strchr(c->req.arg, '+'))
                return qerror_set(e, QERR_PROTOCOL, "Device argument must be <backend>+<port_id>, got %s", c->req.arg);
        return 0;
}

static int on_assignments(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        _cleanup_(lines_done) Lines ls = {};
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *want_backend = NULL;
        const char *want_port = NULL;
        const char *backend, *port, *devid, *mode, *frontend;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        if (!isempty(c->req.arg)) {
                const char *plus = strchr(c->req.arg, '+');
                want_backend = strndup(c->req.arg, (size_t) (plus - c->req.arg));
                want_port = plus + 1;
                if (!want_backend)
                        return call_reply_dbus_error(c, NULL, -ENOMEM), 0;
        }
        r = sd_bus_message_enter_container(m, 'a', "(sssssa(ss))");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "sssssa(ss)")) > 0) {
                _cleanup_strv_free_ char **options = NULL, **items = NULL;
                char *key, *text = NULL;
                r = sd_bus_message_read(m, "sssss", &backend, &port, &devid, &mode, &frontend);
                if (r >= 0)
                        r = read_pairs(m, &options);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        break;
                if (want_backend && (!streq(backend, want_backend) || !streq(port, want_port)))
                        continue;
                /* device_id, port_id, devclass, backend_domain, mode, frontend_domain, options */
                if (strv_extend(&items, "device_id") < 0 || strv_extend(&items, devid) < 0 ||
                    strv_extend(&items, "port_id") < 0 || strv_extend(&items, port) < 0 ||
                    strv_extend(&items, "devclass") < 0 || strv_extend(&items, devclass_of(c)) < 0 ||
                    strv_extend(&items, "backend_domain") < 0 || strv_extend(&items, backend) < 0 ||
                    strv_extend(&items, "mode") < 0 || strv_extend(&items, mode) < 0)
                        return call_reply_dbus_error(c, NULL, -ENOMEM), 0;
                if (!isempty(frontend) &&
                    (strv_extend(&items, "frontend_domain") < 0 || strv_extend(&items, frontend) < 0))
                        return call_reply_dbus_error(c, NULL, -ENOMEM), 0;
                for (char **kv = options; kv && kv[0] && kv[1]; kv += 2) {
                        _cleanup_free_ char *k = NULL;
                        if (asprintf(&k, "_%s", kv[0]) < 0 || strv_extend(&items, k) < 0 ||
                            strv_extend(&items, kv[1]) < 0)
                                return call_reply_dbus_error(c, NULL, -ENOMEM), 0;
                }
                key = device_ident_repr(backend, port, devid);
                if (!key)
                        return call_reply_dbus_error(c, NULL, -ENOMEM), 0;
                r = serialise(items, &text, &e);
                if (r < 0) {
                        free(key);
                        if (qerror_is_set(&e))
                                return call_reply_qerror(c, &e), 0;
                        break;
                }
                r = lines_add(&ls, key, text);
        }
        if (r < 0)
                return call_reply_dbus_error(c, NULL, r), 0;
        reply_lines(c, &ls);
        return 0;
}

int device_assigned_check(Call *c, QError *e) {
        return list_check(c, e);
}

int device_assigned_start(Call *c) {
        return call_method(c, c->path, DOMAIN_DEVICES_IFACE, "ListAssignedDevices", on_assignments, "s",
                           devclass_of(c));
}

int device_attached_start(Call *c) {
        return call_method(c, c->path, DOMAIN_DEVICES_IFACE, "ListAttachedDevices", on_assignments, "s",
                           devclass_of(c));
}

/* ---- Assign, Attach ------------------------------------------------------------------------------ */

int device_ident_check(Call *c, QError *e) {
        return device_ident_from_qarg(c->req.arg, &c->dev_ident, e);
}

int device_assign_check(Call *c, QError *e) {
        int r = device_ident_from_qarg(c->req.arg, &c->dev_ident, e);
        if (r < 0)
                return r;
        /* every failure of the payload is a ProtocolError with upstream's message */
        return device_assignment_parse(c->req.payload, c->req.payload_len, devclass_of(c), &c->dev_ident,
                                       &c->dev_assign, e);
}

static int append_options(sd_bus_message *msg, char *const *options) {
        int r = sd_bus_message_open_container(msg, 'a', "(ss)");
        for (char *const *kv = options; r >= 0 && kv && kv[0] && kv[1]; kv += 2)
                r = sd_bus_message_append(msg, "(ss)", kv[0], kv[1]);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        return r;
}

static int on_done(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        call_reply_ok_begin(c);
        call_reply_end(c);
        return 0;
}

static int send_assignment(Call *c, const char *member) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        bool assign = streq(member, "AssignDevice");
        int r;

        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_new_method_call(c->bus->bus, &msg, c->bus->owner ?: ADMIN_BUS_NAME, c->path,
                                           DOMAIN_DEVICES_IFACE, member);
        if (r < 0)
                return r;
        r = sd_bus_message_append(msg, "ssss", devclass_of(c), c->dev_ident.backend, c->dev_ident.port_id,
                                  c->dev_assign.device_id);
        if (r >= 0 && assign)
                r = sd_bus_message_append(msg, "s", c->dev_assign.mode);
        if (r >= 0)
                r = append_options(msg, c->dev_assign.options);
        if (r >= 0)
                r = sd_bus_message_append(msg, "s", strempty(c->dev_assign.frontend));
        if (r < 0)
                return r;
        return sd_bus_call_async(c->bus->bus, &c->slot, msg, on_done, c, c->m->no_timeout ? UINT64_MAX : 0);
}

/* The payload named a frontend_domain: upstream looks it up, and a name that is not a qube's
 * fails the payload (a KeyError, so the message is the quoted name). */
static int on_frontend(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        int r;

        c->slot = sd_bus_slot_unref(c->slot);
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *be = sd_bus_message_get_error(m);
                if (qubes_error_from_dbus_name(be->name) == QERR_NONE)
                        return call_reply_dbus_error(c, m, 0), 0;
                _cleanup_free_ char *q = py_str_repr(c->dev_assign.frontend);
                call_reply_error(c, QERR_PROTOCOL, "%s", q ?: "");
                return 0;
        }
        c->step = 2;
        r = send_assignment(c, c->m->member);
        if (r < 0)
                call_reply_dbus_error(c, NULL, r);
        return 0;
}

static int start_assignment(Call *c) {
        const char *f = c->dev_assign.frontend;
        /* the destination's own name needs no look-up (a missing destination fails the call) */
        if (f && !streq(f, c->req.dest)) {
                c->step = 1;
                return call_method(c, ADMIN_PATH, MANAGER_IFACE, "GetDomain", on_frontend, "s", f);
        }
        return send_assignment(c, c->m->member);
}

int device_assign_start(Call *c) {
        return start_assignment(c);
}

int device_attach_start(Call *c) {
        return start_assignment(c);
}

/* ---- Unassign, Detach, Set.assignment ----------------------------------------------------------- */

int device_unassign_start(Call *c) {
        return call_method(c, c->path, DOMAIN_DEVICES_IFACE, "UnassignDevice", on_done, "ssss", devclass_of(c),
                           c->dev_ident.backend, c->dev_ident.port_id, c->dev_ident.device_id);
}

int device_detach_start(Call *c) {
        return call_method(c, c->path, DOMAIN_DEVICES_IFACE, "DetachDevice", on_done, "sss", devclass_of(c),
                           c->dev_ident.backend, c->dev_ident.port_id);
}

int device_set_mode_check(Call *c, QError *e) {
        static const char *const modes[] = { "required", "ask-to-attach", "auto-attach" };
        bool ok = false;
        /* the payload first, byte for byte (no newline), then the argument */
        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                ok = ok || (c->req.payload_len == strlen(modes[i]) &&
                            memcmp(c->req.payload, modes[i], c->req.payload_len) == 0);
        if (!ok)
                return qerror_set(e, QERR_UNRECOGNIZED_ASSIGNMENT_MODE, "Invalid assignment mode");
        c->payload_copy = strndup(c->req.payload, c->req.payload_len);
        if (!c->payload_copy)
                return -ENOMEM;
        return device_ident_from_qarg(c->req.arg, &c->dev_ident, e);
}

int device_set_mode_start(Call *c) {
        return call_method(c, c->path, DOMAIN_DEVICES_IFACE, "SetDeviceAssignmentMode", on_done, "sssss",
                           devclass_of(c), c->dev_ident.backend, c->dev_ident.port_id, c->dev_ident.device_id,
                           c->payload_copy);
}

/* ---- denied --------------------------------------------------------------------------------- */

static int on_denied(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        _cleanup_strv_free_ char **codes = NULL;
        StrBuf *o;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_enter_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &codes);
        if (r < 0)
                return call_reply_dbus_error(c, NULL, r), 0;
        /* joined by newlines, none at the end */
        o = call_reply_ok_begin(c);
        STRV_FOREACH(code, codes) {
                if (code != codes)
                        strbuf_append_c(o, '\n');
                strbuf_append(o, *code);
        }
        call_reply_end(c);
        return 0;
}

int device_denied_list_start(Call *c) {
        return call_method(c, c->path, "org.freedesktop.DBus.Properties", "Get", on_denied, "ss", DOMAIN_DEVICES_IFACE,
                           "DeniedInterfaces");
}

int device_denied_check(Call *c, QError *e) {
        if (!bytes_are_ascii(c->req.payload, c->req.payload_len))
                return qerror_set(e, QERR_PROTOCOL, "Device interface contains non-ASCII characters");
        c->payload_copy = malloc(c->req.payload_len + 1);
        if (!c->payload_copy)
                return -ENOMEM;
        /* a NUL is no code character: carried as one that fails the same way */
        for (size_t i = 0; i < c->req.payload_len; i++)
                c->payload_copy[i] = c->req.payload[i] ? c->req.payload[i] : '\x01';
        c->payload_copy[c->req.payload_len] = 0;
        return 0;
}

int device_denied_start(Call *c) {
        return call_method(c, c->path, DOMAIN_DEVICES_IFACE, c->m->member, on_done, "s", c->payload_copy);
}
