/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "shim.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qubes-names.h"
#include "util/strv.h"

/* ---- the generic handler: one D-Bus call, one formatted reply ------------------------------ */

static int append_lines(sd_bus_message *m, StrBuf *o) {
        const char *s;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
                strbuf_append(o, s);
                strbuf_append_c(o, '\n');
        }
        return r;
}

static void append_property(StrBuf *o, const char *type, int is_default, const char *value) {
        strbuf_append(o, is_default ? "default=True type=" : "default=False type=");
        strbuf_append(o, type);
        strbuf_append_c(o, ' ');
}

static int format_reply(Call *c, sd_bus_message *m, StrBuf *o) {
        const char *s, *t, *v, *name;
        int b, r, idx;
        uint64_t u1, u2, u3;

        switch (c->m->fmt) {
        case FMT_EMPTY:
                return 0;
        case FMT_STRING:
                r = sd_bus_message_read(m, "s", &s);
                if (r >= 0)
                        strbuf_append(o, s);
                return r;
        case FMT_LINES:
                return append_lines(m, o);
        case FMT_BOOL01:
                r = sd_bus_message_read(m, "b", &b);
                if (r >= 0)
                        strbuf_append_c(o, b ? '1' : '0');
                return r;
        case FMT_PROPERTY:
                r = sd_bus_message_read(m, "sbs", &t, &b, &v);
                if (r >= 0) {
                        /* not escaped: property.Get sends the value raw */
                        append_property(o, t, b, v);
                        strbuf_append(o, v);
                }
                return r;
        case FMT_BYTES: {
                const void *p;
                size_t n;
                r = sd_bus_message_read_array(m, 'y', &p, &n);
                if (r >= 0)
                        strbuf_append_n(o, p, n);
                return r;
        }
        case FMT_PROPERTY_DEF:
                r = sd_bus_message_read(m, "bss", &b, &t, &v);
                if (r >= 0 && b) {
                        /* no default: an empty body, as upstream */
                        strbuf_append(o, "type=");
                        strbuf_append(o, t);
                        strbuf_append_c(o, ' ');
                        strbuf_append(o, v);
                }
                return r;
        case FMT_LABEL_NAMES:
                r = sd_bus_message_enter_container(m, 'a', "(siso)");
                if (r < 0)
                        return r;
                while ((r = sd_bus_message_read(m, "(siso)", &name, &idx, &s, &t)) > 0) {
                        strbuf_append(o, name);
                        strbuf_append_c(o, '\n');
                }
                return r;
        case FMT_LABEL_COLOR:
                r = sd_bus_message_read(m, "osis", &t, &name, &idx, &s);
                if (r >= 0)
                        strbuf_append(o, s);
                return r;
        case FMT_LABEL_INDEX:
                r = sd_bus_message_read(m, "osis", &t, &name, &idx, &s);
                if (r >= 0)
                        strbuf_printf(o, "%i", idx);
                return r;
        case FMT_POOL_NAMES:
                r = sd_bus_message_enter_container(m, 'a', "(sso)");
                if (r < 0)
                        return r;
                while ((r = sd_bus_message_read(m, "(sso)", &name, &s, &t)) > 0) {
                        strbuf_append(o, name);
                        strbuf_append_c(o, '\n');
                }
                return r;
        case FMT_VOLUME_NAMES:
                r = sd_bus_message_enter_container(m, 'a', "(so)");
                if (r < 0)
                        return r;
                while ((r = sd_bus_message_read(m, "(so)", &name, &t)) > 0) {
                        strbuf_append(o, name);
                        strbuf_append_c(o, '\n');
                }
                return r;
        case FMT_POOL_DRIVERS:
                r = sd_bus_message_enter_container(m, 'a', "(sas)");
                if (r < 0)
                        return r;
                while ((r = sd_bus_message_enter_container(m, 'r', "sas")) > 0) {
                        r = sd_bus_message_read(m, "s", &name);
                        if (r < 0)
                                return r;
                        strbuf_append(o, name);
                        r = sd_bus_message_enter_container(m, 'a', "s");
                        if (r < 0)
                                return r;
                        while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
                                strbuf_append_c(o, ' ');
                                strbuf_append(o, s);
                        }
                        if (r < 0)
                                return r;
                        strbuf_append_c(o, '\n');
                        r = sd_bus_message_exit_container(m);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                }
                return r;
        case FMT_CURRENT_STATE:
                r = sd_bus_message_read(m, "ttts", &u1, &u2, &u3, &s);
                if (r >= 0)
                        strbuf_printf(o,
                                      "mem=%" PRIu64 " mem_static_max=%" PRIu64 " cputime=%" PRIu64 " power_state=%s",
                                      u1, u2, u3, s);
                return r;
        }
        return -EINVAL;
}

static int on_generic_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        size_t mark;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        mark = c->client->out.len;
        r = format_reply(c, m, call_reply_ok_begin(c));
        if (r < 0) {
                c->client->out.len = mark; /* drop the partial OK */
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        call_reply_end(c);
        return 0;
}

static const char *call_iface(const Call *c) {
        if (c->m->iface)
                return c->m->iface;
        return c->m->on_manager ? MANAGER_IFACE : DOMAIN_IFACE;
}

int call_generic_start(Call *c) {
        const Method *m = c->m;

        switch (m->args) {
        case ARGS_NONE:
                return call_method(c, c->path, call_iface(c), m->member, on_generic_reply, "");
        case ARGS_ARG:
                return call_method(c, c->path, call_iface(c), m->member, on_generic_reply, "s", c->req.arg);
        case ARGS_ARG_PAYLOAD:
                /* the check hook has made payload_copy a valid D-Bus string */
                return call_method(c, c->path, call_iface(c), m->member, on_generic_reply, "ss", c->req.arg,
                                   c->payload_copy ?: "");
        case ARGS_PAYLOAD:
                return call_method(c, c->path, call_iface(c), m->member, on_generic_reply, "s", c->payload_copy ?: "");
        }
        return -EINVAL;
}

/* Every byte, NULs included (strndup would stop at the first NUL, and the callers that replace
 * NULs would then read and write past the copy). */
static int copy_payload(Call *c) {
        c->payload_copy = malloc(c->req.payload_len + 1);
        if (!c->payload_copy)
                return -ENOMEM;
        memcpy(c->payload_copy, c->req.payload, c->req.payload_len);
        c->payload_copy[c->req.payload_len] = 0;
        return 0;
}

static bool payload_has_nul(const Call *c) {
        return memchr(c->req.payload, 0, c->req.payload_len) != NULL;
}

/* ---- admin.vm.List ------------------------------------------------------------------------ */

static int on_vm_list_exists(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;

        /* The qube exists but the listing left it out (policy filter): an empty list. */
        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        call_reply_ok_begin(c);
        call_reply_end(c);
        return 0;
}

static int on_vm_list(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *name, *klass, *state, *uuid, *path;
        bool all = c->dest_is_dom0, found = false;
        size_t mark;
        StrBuf *o;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        mark = c->client->out.len;
        o = call_reply_ok_begin(c);
        r = sd_bus_message_enter_container(m, 'a', "(sssso)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(sssso)", &name, &klass, &state, &uuid, &path)) > 0) {
                if (!all && !streq(path, c->path))
                        continue;
                found = true;
                /* pieces, not printf: this runs once per qube on every listing */
                strbuf_append(o, name);
                strbuf_append(o, " class=");
                strbuf_append(o, klass);
                strbuf_append(o, " state=");
                strbuf_append(o, state);
                strbuf_append(o, " uuid=");
                strbuf_append(o, uuid);
                strbuf_append_c(o, '\n');
        }
        if (r < 0) {
                c->client->out.len = mark;
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        if (!all && !found) {
                /* Not listed: either it does not exist (an error) or it is filtered out. */
                c->client->out.len = mark;
                c->step = 1;
                r = call_method(c, ADMIN_PATH, MANAGER_IFACE, "GetDomain", on_vm_list_exists, "s", c->req.dest);
                if (r < 0)
                        call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        call_reply_end(c);
        return 0;
}

static int on_vm_list_text(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const void *text;
        size_t size;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        /* bytes: not validated as UTF-8 again (qubesd's method_list_domains_text()) */
        r = sd_bus_message_read_array(m, 'y', &text, &size);
        if (r < 0) {
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        strbuf_append_n(call_reply_ok_begin(c), text, size);
        call_reply_end(c);
        return 0;
}

static int vm_list_start(Call *c) {
        /* everything the caller sees: qubesd has the text ready */
        if (c->dest_is_dom0)
                return call_method(c, ADMIN_PATH, MANAGER_IFACE, "ListDomainsText", on_vm_list_text, "");
        return call_method(c, ADMIN_PATH, MANAGER_IFACE, "ListDomains", on_vm_list, "");
}

/* ---- property.Set --------------------------------------------------------------------------- */

/* The value's bytes cannot travel as a D-Bus string (non-ASCII, NUL): upstream's message
 * depends on the property's type, so ask for it (this also reports an unknown property first,
 * as upstream does). */
static int on_property_type(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *type, *value;
        int is_default, r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "sbs", &type, &is_default, &value);
        if (r < 0) {
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        if (!bytes_are_ascii(c->req.payload, c->req.payload_len)) {
                if (streq(type, "vm"))
                        call_reply_error(c, QERR_VALUE, ""); /* upstream's VM sanitiser says nothing */
                else
                        call_reply_error(c, QERR_VALUE, "Non-ASCII bytes in property value");
                return 0;
        }
        /* ASCII with a NUL */
        if (streq(type, "int"))
                call_reply_error(c, QERR_VALUE, "Failed to parse property value as int");
        else if (streq(type, "bool")) {
                _cleanup_strbuf_ StrBuf b = {};
                for (size_t i = 0; i < c->req.payload_len; i++) {
                        unsigned char ch = (unsigned char) c->req.payload[i];
                        if (ch == '\'' || ch == '\\')
                                strbuf_printf(&b, "\\%c", ch);
                        else if (ch < 0x20 || ch == 0x7f)
                                strbuf_printf(&b, "\\x%02x", ch);
                        else
                                strbuf_append_c(&b, (char) ch);
                }
                call_reply_error(c, QERR_VALUE, "Invalid literal for boolean property: '%s'", strempty(b.buf));
        } else if (streq(type, "vm"))
                call_reply_error(c, QERR_VALUE, "VM name contains illegal characters");
        else
                call_reply_error(c, QERR_VALUE, "Invalid characters in property value");
        return 0;
}

static int property_set_start(Call *c) {
        if (!bytes_are_ascii(c->req.payload, c->req.payload_len) || payload_has_nul(c)) {
                c->step = 1;
                return call_method(c, c->path, call_iface(c), "GetProperty", on_property_type, "s", c->req.arg);
        }
        if (copy_payload(c) < 0)
                return -ENOMEM;
        return call_generic_start(c);
}

/* ---- features --------------------------------------------------------------------------- */

static int feature_set_check(Call *c, QError *e) {
        const char *name = c->req.arg;

        if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(name))
                return qerror_set(e, QERR_PROTOCOL, "feature name contains illegal characters");
        if (!bytes_are_ascii(c->req.payload, c->req.payload_len))
                return qerror_set(e, QERR_PROTOCOL, "Feature value contains non-ASCII characters");
        for (size_t i = 0; i < c->req.payload_len; i++)
                if (c->req.payload[i] < 0x20 || c->req.payload[i] > 0x7e)
                        return qerror_set(e, QERR_PROTOCOL, "%s value contains illegal characters", name);
        return copy_payload(c);
}

/* ---- notes ------------------------------------------------------------------------------ */

static const char *utf8_error(const unsigned char *p, size_t n, size_t *pos) {
        size_t i = 0;

        while (i < n) {
                unsigned char ch = p[i];
                size_t len;
                uint32_t cp, min;

                if (ch < 0x80) {
                        i++;
                        continue;
                }
                if ((ch & 0xe0) == 0xc0)
                        len = 2, cp = ch & 0x1f, min = 0x80;
                else if ((ch & 0xf0) == 0xe0)
                        len = 3, cp = ch & 0x0f, min = 0x800;
                else if ((ch & 0xf8) == 0xf0 && ch <= 0xf4)
                        len = 4, cp = ch & 0x07, min = 0x10000;
                else {
                        *pos = i;
                        return "invalid start byte";
                }
                if (i + len > n) {
                        *pos = i;
                        return "unexpected end of data";
                }
                for (size_t k = 1; k < len; k++) {
                        if ((p[i + k] & 0xc0) != 0x80) {
                                *pos = i;
                                return "invalid continuation byte";
                        }
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                        *pos = i;
                        return "invalid continuation byte";
                }
                i += len;
        }
        return NULL;
}

static int notes_set_check(Call *c, QError *e) {
        const char *why;
        size_t pos = 0;
        char num[32], byte[8];

        if (c->req.payload_len > 256000) {
                snprintf(num, sizeof num, "%zu", c->req.payload_len);
                return qerror_set(e, QERR_PROTOCOL, "Maximum note size is 256000 bytes (%s bytes received)", num);
        }
        why = utf8_error((const unsigned char *) c->req.payload, c->req.payload_len, &pos);
        if (why) {
                snprintf(num, sizeof num, "%zu", pos);
                snprintf(byte, sizeof byte, "0x%02x", (unsigned char) c->req.payload[pos]);
                return qerror_set(
                        e, QERR_PROTOCOL,
                        "Unable to sanitise qube notes: 'utf-8' codec can't decode byte %s in position %s: %s", byte,
                        num, why);
        }
        if (copy_payload(c) < 0)
                return -ENOMEM;
        /* NUL cannot cross D-Bus; upstream's sanitiser turns it (a control character) into '_' */
        for (size_t i = 0; i < c->req.payload_len; i++)
                if (c->payload_copy[i] == 0)
                        c->payload_copy[i] = '_';
        return 0;
}

static int notes_set_start(Call *c) {
        return call_method(c, c->path, DOMAIN_IFACE, "SetNotes", on_generic_reply, "s", c->payload_copy);
}

/* ---- firewall --------------------------------------------------------------------------- */

#define FIREWALL_IFACE "org.qubes_os.Admin1.Firewall"

/* The grammar is qubesd's (SetRulesText); only what cannot cross D-Bus is decided here: a byte
 * that is not ASCII, as upstream decodes the payload first, and NUL (ASCII, but not in a D-Bus
 * string), which fails every character check the same as \x01 does. */
static int firewall_set_check(Call *c, QError *e) {
        if (!bytes_are_ascii(c->req.payload, c->req.payload_len))
                return qerror_set(e, QERR_PROTOCOL, "Rules contains non-ASCII characters");
        if (copy_payload(c) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < c->req.payload_len; i++)
                if (c->payload_copy[i] == 0)
                        c->payload_copy[i] = '\x01';
        return 0;
}

/* ---- labels ---------------------------------------------------------------------------- */

static int label_create_check(Call *c, QError *e) {
        int r;

        r = validate_label_name(c->req.arg, true, e);
        if (r < 0)
                return r;
        if (c->req.payload_len > 0 && !bytes_are_ascii(c->req.payload, c->req.payload_len))
                return qerror_set(e, QERR_INVALID_LABEL_VALUE, "Label value must be encoded in ASCII");
        if (copy_payload(c) < 0)
                return -ENOMEM;
        /* a NUL is neither whitespace nor a hex digit: check a stand-in that fails the same way,
         * and keep the stand-in so that qubesd sees a valid D-Bus string */
        for (size_t i = 0; i < c->req.payload_len; i++)
                if (c->payload_copy[i] == 0)
                        c->payload_copy[i] = '\x01';
        return validate_label_color(c->payload_copy, e);
}

/* ---- admin.vm.Create.<class> / CreateInPool.<class> ----------------------------------- */

static bool is_create_in_pool(const Call *c) {
        return startswith(c->m->name, "admin.vm.CreateInPool.") != NULL;
}

/* Payload parsing and its error order (spec §2.3.5) that need no qubesd. */
static int create_check(Call *c, QError *e) {
        QubesClass klass = qubes_class_from_string(c->m->extra);
        bool allow_pool = is_create_in_pool(c), have_name = false, have_label = false;
        _cleanup_strv_free_ char **seen = NULL;
        char *p, *item;
        int r;

        if (!isempty(c->req.arg) && !qubes_class_has_template(klass))
                return qerror_set(e, QERR_PROTOCOL, "%s cannot be based on template", c->m->extra);
        if (!bytes_are_ascii(c->req.payload, c->req.payload_len))
                return qerror_set(e, QERR_PROTOCOL, "Parameters contains non-ASCII characters");
        if (copy_payload(c) < 0)
                return -ENOMEM;
        /* a NUL fails the name and label rules as any illegal character does */
        for (size_t i = 0; i < c->req.payload_len; i++)
                if (c->payload_copy[i] == 0)
                        c->payload_copy[i] = '\x01';

        for (p = c->payload_copy;;) {
                char *sp, *eq, *value;
                bool last;

                item = p;
                sp = strchr(item, ' ');
                last = !sp;
                if (sp) {
                        *sp = 0;
                        p = sp + 1;
                }
                eq = strchr(item, '=');
                if (!eq)
                        /* upstream fails here with a plain ValueError (an empty reply) */
                        return qerror_set(e, QERR_PROTOCOL,
                                          "Parameters must be key=value pairs separated by single spaces");
                *eq = 0;
                value = eq + 1;

                if (strv_contains(seen, item))
                        return qerror_set(e, QERR_PROTOCOL, "Options must be unique");
                if (strv_extend(&seen, item) < 0)
                        return -ENOMEM;

                if (streq(item, "name")) {
                        r = validate_vm_name(value, e);
                        if (r < 0)
                                return r;
                        if (free_and_strdup(&c->create_name, value) < 0)
                                return -ENOMEM;
                        have_name = true;
                } else if (streq(item, "label")) {
                        r = validate_label_name(value, true, e);
                        if (r < 0)
                                return r;
                        if (free_and_strdup(&c->create_label, value) < 0)
                                return -ENOMEM;
                        have_label = true;
                } else if (allow_pool && streq(item, "pool")) {
                        if (c->create_pool)
                                return qerror_set(e, QERR_PROTOCOL, "Option 'pool' must be unique");
                        if (free_and_strdup(&c->create_pool, value) < 0)
                                return -ENOMEM;
                } else if (allow_pool && startswith(item, "pool:")) {
                        const char *vol = item + 5;
                        if (!streq(vol, "root") && !streq(vol, "private") && !streq(vol, "volatile") &&
                            !streq(vol, "kernel"))
                                return qerror_set(e, QERR_PROTOCOL,
                                                  "Volume must be one of: root, private, volatile, kernel");
                        if (strv_extend(&c->create_pools, vol) < 0 || strv_extend(&c->create_pools, value) < 0)
                                return -ENOMEM;
                } else if (streq(item, "pool") || startswith(item, "pool:"))
                        return qerror_set(e, QERR_PROTOCOL, "Pool option specified but 'allow_pool' is False");
                else
                        return qerror_set(e, QERR_PROTOCOL, "Options does not match: name, label, pool, pool:");
                if (last)
                        break;
        }
        if (!have_name)
                return qerror_set(e, QERR_PROTOCOL, "Creation requested without key: name");
        if (!have_label)
                return qerror_set(e, QERR_PROTOCOL, "Creation requested without key: label");
        return 0;
}

static int on_create_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        call_reply_ok_begin(c);
        call_reply_end(c);
        return 0;
}

static int create_send(Call *c, const char *label) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        int r;

        r = sd_bus_message_new_method_call(c->bus->bus, &msg, c->bus->owner ?: ADMIN_BUS_NAME, ADMIN_PATH,
                                           MANAGER_IFACE, "CreateDomain");
        if (r < 0)
                return r;
        r = sd_bus_message_append(msg, "ssss", c->m->extra, c->create_name, label, c->req.arg);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(msg, 'a', "{ss}");
        if (r < 0)
                return r;
        if (c->create_pool) {
                r = sd_bus_message_append(msg, "{ss}", "pool", c->create_pool);
                if (r < 0)
                        return r;
        }
        for (char **p = c->create_pools; p && p[0] && p[1]; p += 2) {
                _cleanup_free_ char *key = NULL;
                if (asprintf(&key, "pool:%s", p[0]) < 0)
                        return -ENOMEM;
                r = sd_bus_message_append(msg, "{ss}", key, p[1]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(msg);
        if (r < 0)
                return r;
        c->slot = sd_bus_slot_unref(c->slot);
        return sd_bus_call_async(c->bus->bus, &c->slot, msg, on_create_reply, c, 0);
}

static int on_create_label(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *path, *name, *color;
        int idx, r;

        if (sd_bus_message_is_method_error(m, NULL) &&
            qubes_error_from_dbus_name(sd_bus_message_get_error(m)->name) == QERR_LABEL_NOT_FOUND) {
                /* upstream never stores an unknown label, so the required-key check fails first */
                c->slot = sd_bus_slot_unref(c->slot);
                call_reply_error(c, QERR_PROTOCOL, "Creation requested without key: label");
                return 0;
        }
        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "osis", &path, &name, &idx, &color);
        if (r >= 0) {
                c->step = 2;
                r = create_send(c, name);
        }
        if (r < 0)
                call_reply_dbus_error(c, NULL, r);
        return 0;
}

static int create_start(Call *c) {
        /* The label must exist before anything else is reported (spec §2.3.5): ask first. */
        return call_method(c, ADMIN_PATH, MANAGER_IFACE, "LookupLabel", on_create_label, "s", c->create_label);
}

/* ---- storage: pools and volumes --------------------------------------------------------- */

static int sanitized_copy(Call *c, const char *p, size_t n);

static bool is_error(sd_bus_message *m, QubesErrorCode code) {
        return sd_bus_message_is_method_error(m, NULL) &&
               qubes_error_from_dbus_name(sd_bus_message_get_error(m)->name) == code;
}

/* A payload value for qubesd as a D-Bus string: NUL and non-ASCII bytes (which no number,
 * boolean word, revision or token may contain) become \x01, which fails the same checks the
 * same way. strip: upstream strips ASCII whitespace first (Resize, Revert, CloneTo). */
static int payload_value(Call *c, bool strip) {
        const char *p = c->req.payload;
        size_t n = c->req.payload_len;

        if (strip) {
                while (n > 0 && strchr(" \t\n\r\v\f", p[0]) && p[0])
                        p++, n--;
                while (n > 0 && strchr(" \t\n\r\v\f", p[n - 1]) && p[n - 1])
                        n--;
        }
        return sanitized_copy(c, p, n);
}

static int value_check(Call *c, QError *e) {
        return payload_value(c, false);
}

static int value_strip_check(Call *c, QError *e) {
        return payload_value(c, true);
}

static int on_pool_path(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *path;
        int r;

        if (is_error(m, QERR_POOL_NOT_FOUND)) {
                c->slot = sd_bus_slot_unref(c->slot);
                /* upstream's enforce_arg: PermissionDenied, so that nobody can probe for pools */
                call_reply_error(c, QERR_PERMISSION_DENIED, "Argument not in 'pools'");
                return 0;
        }
        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = free_and_strdup(&c->path, path);
        if (r >= 0) {
                c->step = 1;
                r = call_generic_start(c);
        }
        if (r < 0)
                call_reply_dbus_error(c, NULL, r);
        return 0;
}

/* admin.pool.*+<pool>: the pool's object first, then the generic call on it */
static int pool_start(Call *c) {
        return call_method(c, ADMIN_PATH, MANAGER_IFACE, "GetPool", on_pool_path, "s", c->req.arg);
}

/* admin.pool.Add+<driver>: payload lines key=value, split at the first '=' (Python's
 * splitlines: \n, \r, \r\n, \v, \f, \x1c, \x1d, \x1e end a line). */
static bool is_line_end(char ch) {
        return ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' || ch == '\x1c' || ch == '\x1d' || ch == '\x1e';
}

static const char *pool_add_parse(Call *c, char ***ret) {
        _cleanup_strv_free_ char **kv = NULL;
        const char *p = c->req.payload, *end = p + c->req.payload_len;

        /* upstream decodes the payload as ASCII (a failure there is an empty reply) */
        if (!bytes_are_ascii(p, c->req.payload_len) || memchr(p, 0, c->req.payload_len))
                return "Pool configuration must be ASCII";
        while (p < end) {
                const char *e = p, *eq;
                while (e < end && !is_line_end(*e))
                        e++;
                eq = memchr(p, '=', (size_t) (e - p));
                if (!eq)
                        return "Options must be separated by equal sign";
                char *k = strndup(p, (size_t) (eq - p)), *v = strndup(eq + 1, (size_t) (e - eq - 1));
                if (!k || !v || strv_consume(&kv, k) < 0 || strv_consume(&kv, v) < 0) {
                        free(k);
                        free(v);
                        return "";
                }
                if (e < end && *e == '\r' && e + 1 < end && e[1] == '\n')
                        e++;
                p = e + 1;
        }
        *ret = TAKE_PTR(kv);
        return NULL;
}

static int on_pool_add_drivers(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        _cleanup_strv_free_ char **kv = NULL;
        const char *name, *why;
        bool known = false;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_enter_container(m, 'a', "(sas)");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "sas")) > 0) {
                r = sd_bus_message_read(m, "s", &name);
                if (r >= 0 && streq(name, c->req.arg))
                        known = true;
                if (r >= 0)
                        r = sd_bus_message_skip(m, "as");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r < 0) {
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        if (!known) {
                call_reply_error(c, QERR_PERMISSION_DENIED, "Argument not in 'available drivers'");
                return 0;
        }
        why = pool_add_parse(c, &kv);
        if (isempty(why))
                call_reply_dbus_error(c, NULL, -ENOMEM);
        else
                call_reply_error(c, QERR_PROTOCOL, "%s", why);
        return 0;
}

static int pool_add_start(Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_strv_free_ char **kv = NULL;
        int r;

        if (pool_add_parse(c, &kv))
                /* upstream checks the driver before the payload: ask for the drivers, then say
                 * which of the two is wrong */
                return call_method(c, ADMIN_PATH, MANAGER_IFACE, "ListPoolDrivers", on_pool_add_drivers, "");

        r = sd_bus_message_new_method_call(c->bus->bus, &msg, c->bus->owner ?: ADMIN_BUS_NAME, ADMIN_PATH,
                                           MANAGER_IFACE, "AddPool");
        if (r < 0)
                return r;
        r = sd_bus_message_append(msg, "s", c->req.arg);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(msg, 'a', "(ss)");
        if (r < 0)
                return r;
        for (char **p = kv; p && p[0] && p[1]; p += 2) {
                r = sd_bus_message_append(msg, "(ss)", p[0], p[1]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(msg);
        if (r < 0)
                return r;
        c->slot = sd_bus_slot_unref(c->slot);
        return sd_bus_call_async(c->bus->bus, &c->slot, msg, on_generic_reply, c, 0);
}

/* admin.vm.volume.ImportWithSize: the first payload line is the size, read as upstream's
 * script does (qubesd-query --single-line --max-bytes=21); the data follows it. */
#define IMPORT_SIZE_MAX 21

static int import_size_from(Call *c, const char *p, size_t n) {
        return sanitized_copy(c, p, n);
}

static int sanitized_copy(Call *c, const char *p, size_t n) {
        c->payload_copy = malloc(n + 1);
        if (!c->payload_copy)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) p[i];
                c->payload_copy[i] = ch == 0 || ch >= 0x80 ? '\x01' : (char) ch;
        }
        c->payload_copy[n] = 0;
        return 0;
}

static int import_check(Call *c, QError *e) {
        bool with_size = streq(c->m->name, "admin.vm.volume.ImportWithSize");

        if (c->client->payload_on_stdin) {
                char line[IMPORT_SIZE_MAX];
                size_t n = 0;

                if (!with_size)
                        return 0;
                /* byte by byte: not one byte of the data may be taken from stdin */
                while (n < sizeof line) {
                        char ch;
                        ssize_t k = read(STDIN_FILENO, &ch, 1);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno == EAGAIN) {
                                struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
                                (void) poll(&pfd, 1, -1);
                                continue;
                        }
                        if (k <= 0 || ch == '\n')
                                break;
                        line[n++] = ch;
                }
                return import_size_from(c, line, n);
        }

        c->data = c->req.payload;
        c->data_len = c->req.payload_len;
        if (with_size) {
                size_t lim = c->req.payload_len < IMPORT_SIZE_MAX ? c->req.payload_len : IMPORT_SIZE_MAX;
                const char *nl = memchr(c->req.payload, '\n', lim);
                size_t n = nl ? (size_t) (nl - c->req.payload) : lim;
                c->data = c->req.payload + n + (nl ? 1 : 0);
                c->data_len = c->req.payload_len - n - (nl ? 1 : 0);
                return import_size_from(c, c->req.payload, n);
        }
        return 0;
}

static int import_send(Call *c) {
        bool with_size = streq(c->m->name, "admin.vm.volume.ImportWithSize");
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (c->client->payload_on_stdin)
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else {
                /* the data is in memory: hand qubesd a file of it */
                fd = memfd_create("qubes-admin-shim-import", MFD_CLOEXEC);
                if (fd >= 0) {
                        size_t off = 0;
                        while (off < c->data_len) {
                                ssize_t k = write(fd, c->data + off, c->data_len - off);
                                if (k < 0 && errno == EINTR)
                                        continue;
                                if (k < 0)
                                        return -errno;
                                off += (size_t) k;
                        }
                        if (lseek(fd, 0, SEEK_SET) < 0)
                                return -errno;
                }
        }
        if (fd < 0)
                return -errno;
        if (with_size)
                r = call_method(c, c->path, VOLUME_IFACE, "ImportWithSize", on_generic_reply, "hs", fd,
                                c->payload_copy ?: "");
        else
                r = call_method(c, c->path, VOLUME_IFACE, "Import", on_generic_reply, "h", fd);
        return r; /* sd-bus holds its own copy of the descriptor */
}

static int on_volume_path(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *path;
        int r;

        if (is_error(m, QERR_VOLUME_NOT_FOUND)) {
                _cleanup_strv_free_ char **fields = NULL;
                const char *message, *format;

                c->slot = sd_bus_slot_unref(c->slot);
                (void) sd_bus_message_rewind(m, true);
                if (sd_bus_message_read(m, "ss", &message, &format) < 0 || sd_bus_message_read_strv(m, &fields) < 0 ||
                    strv_length(fields) < 1)
                        fields = NULL;
                /* upstream's enforce_arg, with the qube's name */
                call_reply_error(c, QERR_PERMISSION_DENIED, "Argument not in '%s volumes'",
                                 fields ? fields[0] : c->req.dest);
                return 0;
        }
        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = free_and_strdup(&c->path, path);
        if (r >= 0) {
                c->step = 1;
                r = startswith(c->m->name, "admin.vm.volume.Import") ? import_send(c) : call_generic_start(c);
        }
        if (r < 0)
                call_reply_dbus_error(c, NULL, r);
        return 0;
}

/* admin.vm.volume.*+<volume>: the volume's object first, then the call on it */
static int volume_start(Call *c) {
        return call_method(c, ADMIN_PATH, MANAGER_IFACE, "GetVolume", on_volume_path, "ss", c->req.dest, c->req.arg);
}

static int volume_list_start(Call *c) {
        return call_method(c, ADMIN_PATH, MANAGER_IFACE, "ListVolumes", on_generic_reply, "s", c->req.dest);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int shutdown_parse(const char *arg, int *force, int *wait) {
        const char *p = arg;

        *force = *wait = false;
        if (isempty(arg))
                return 0;
        for (;;) {
                size_t n = strcspn(p, "+");
                if (n == 5 && startswith(p, "force"))
                        *force = true;
                else if (n == 4 && startswith(p, "wait"))
                        *wait = true;
                else
                        return -EINVAL;
                if (!p[n])
                        return 0;
                p += n + 1;
        }
}

static int shutdown_check(Call *c, QError *e) {
        int force, wait;

        if (shutdown_parse(c->req.arg, &force, &wait) < 0)
                return qerror_set(e, QERR_PROTOCOL, "Argument must match: force, wait");
        return 0;
}

static int shutdown_start(Call *c) {
        int force, wait;

        (void) shutdown_parse(c->req.arg, &force, &wait);
        return call_method(c, c->path, DOMAIN_IFACE, "Shutdown", on_generic_reply, "bb", force, wait);
}

static int create_disposable_check(Call *c, QError *e) {
        if (!streq(c->req.arg, "") && !streq(c->req.arg, "preload"))
                return qerror_set(e, QERR_PERMISSION_DENIED, "Argument not in \"'', 'preload'\"");
        if (c->req.payload_len > 0 && !(c->req.payload_len == 4 && memcmp(c->req.payload, "uuid", 4) == 0))
                return qerror_set(e, QERR_PROTOCOL, "Invalid payload, expected empty string or 'uuid'");
        return 0;
}

static int on_disposable_uuid(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *type, *value;
        int is_default, r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "sbs", &type, &is_default, &value);
        if (r < 0) {
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        strbuf_printf(call_reply_ok_begin(c), "uuid:%s", value);
        call_reply_end(c);
        return 0;
}

static int on_disposable(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *name, *path;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "so", &name, &path);
        if (r < 0) {
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        if (c->req.payload_len > 0) {
                /* payload "uuid": answer uuid:<uuid> */
                c->step = 2;
                r = call_method(c, path, DOMAIN_IFACE, "GetProperty", on_disposable_uuid, "s", "uuid");
                if (r < 0)
                        call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        strbuf_append(call_reply_ok_begin(c), name);
        call_reply_end(c);
        return 0;
}

static int on_preloaded(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        call_reply_ok_begin(c);
        call_reply_end(c);
        return 0;
}

static int create_disposable_start(Call *c) {
        /* dest dom0: the caller's default_dispvm (qubesd picks it for ""), else the dest itself */
        const char *tpl = c->dest_is_dom0 ? "" : c->req.dest;

        if (streq(c->req.arg, "preload"))
                return call_method(c, ADMIN_PATH, MANAGER_IFACE, "PreloadDisposables", on_preloaded, "s", tpl);
        return call_method(c, ADMIN_PATH, MANAGER_IFACE, "CreateDisposable", on_disposable, "s", tpl);
}

/* ---- admin.vm.Stats ------------------------------------------------------------------------ */

static int on_stats(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        StrBuf *o = &c->client->out;
        _cleanup_free_ char *name = NULL;
        const char *k, *v;
        size_t mark = o->len;
        int r;

        r = sd_bus_path_decode(sd_bus_message_get_path(m), ADMIN_DOMAIN_PREFIX, &name);
        if (r <= 0)
                return 0;
        strbuf_append_n(o, "1\0", 2);
        strbuf_append(o, name);
        strbuf_append_c(o, 0);
        strbuf_append(o, "vm-stats");
        strbuf_append_c(o, 0);
        r = sd_bus_message_enter_container(m, 'a', "(ss)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(ss)", &k, &v)) > 0) {
                strbuf_append(o, k);
                strbuf_append_c(o, 0);
                strbuf_append(o, v);
                strbuf_append_c(o, 0);
        }
        if (r < 0) {
                o->len = mark;
                return 0;
        }
        strbuf_append_c(o, 0);
        if (client_pending(c->client) > c->client->shim->event_queue_max) {
                o->len = mark; /* a slow reader misses samples: the next ones replace them */
                return 0;
        }
        client_flush(c->client);
        return 0;
}

static int on_stats_match(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;

        if (sd_bus_message_is_method_error(m, NULL)) {
                c->match_slot = sd_bus_slot_unref(c->match_slot);
                call_reply_dbus_error(c, m, 0);
                return 0;
        }
        client_write(c->client, "1\0\0connection-established\0\0", STRLEN("1\0\0connection-established\0\0"));
        return 0;
}

static int stats_subscribe(Call *c) {
        _cleanup_free_ char *match = NULL;
        int r;

        if (c->dest_is_dom0)
                r = asprintf(&match,
                             "type='signal',sender='%s',interface='" DOMAIN_IFACE "',member='Stats',"
                             "path_namespace='" ADMIN_DOMAIN_PREFIX "'",
                             c->bus->owner);
        else
                r = asprintf(&match, "type='signal',sender='%s',interface='" DOMAIN_IFACE "',member='Stats',path='%s'",
                             c->bus->owner, c->path);
        if (r < 0)
                return -ENOMEM;
        return sd_bus_add_match_async(c->bus->bus, &c->match_slot, match, on_stats, on_stats_match, c);
}

static int on_stats_state(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        uint64_t mem, max, cpu;
        const char *state;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "ttts", &mem, &max, &cpu, &state);
        if (r < 0) {
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        if (streq(state, "Halted")) {
                /* upstream: connection-established, then the error of the first sample */
                _cleanup_free_ char *name = NULL, *quoted = NULL;
                client_write(c->client, "1\0\0connection-established\0\0", STRLEN("1\0\0connection-established\0\0"));
                if (sd_bus_path_decode(c->path, ADMIN_DOMAIN_PREFIX, &name) <= 0)
                        name = NULL;
                if (asprintf(&quoted, "'%s'", name ?: c->req.dest) < 0)
                        quoted = NULL;
                /* as qubesd words it: the quoted name is the field */
                call_reply_error(c, QERR_VM_NOT_RUNNING, "Domain not running (either powered off or paused): %s",
                                 quoted);
                return 0;
        }
        c->step = 1;
        r = stats_subscribe(c);
        if (r < 0)
                call_reply_dbus_error(c, NULL, r);
        return 0;
}

static int stats_start(Call *c) {
        if (c->dest_is_dom0)
                return stats_subscribe(c);
        /* a qube that is not running has no stats (and a missing one no object): ask first */
        return call_method(c, c->path, DOMAIN_IFACE, "GetCurrentState", on_stats_state, "");
}

/* ---- the table -------------------------------------------------------------------------- */

#define M(n, d, a, p, ...) \
        { .name = n, .dest = d, .arg = a, .payload = p, __VA_ARGS__ }
#define CREATE(klass)                                                                                            \
        M("admin.vm.Create." klass, DEST_DOM0, RULE_OPT, RULE_OPT, .check = create_check, .start = create_start, \
          .extra = klass),                                                                                       \
                M("admin.vm.CreateInPool." klass, DEST_DOM0, RULE_OPT, RULE_OPT, .check = create_check,          \
                  .start = create_start, .extra = klass)
#define PROPERTY_METHODS(prefix, d, mgr)                                                                             \
        M(prefix ".List", d, RULE_NO, RULE_NO, .on_manager = mgr, .member = "ListProperties", .args = ARGS_NONE,     \
          .fmt = FMT_LINES),                                                                                         \
                M(prefix ".Get", d, RULE_REQ, RULE_NO, .on_manager = mgr, .member = "GetProperty", .args = ARGS_ARG, \
                  .fmt = FMT_PROPERTY),                                                                              \
                M(prefix ".GetAll", d, RULE_NO, RULE_NO, .on_manager = mgr, .member = "GetAllPropertiesText",        \
                  .args = ARGS_NONE, .fmt = FMT_BYTES),                                                              \
                M(prefix ".GetDefault", d, RULE_REQ, RULE_NO, .on_manager = mgr, .member = "GetPropertyDefault",     \
                  .args = ARGS_ARG, .fmt = FMT_PROPERTY_DEF),                                                        \
                M(prefix ".Help", d, RULE_REQ, RULE_NO, .on_manager = mgr, .member = "GetPropertyHelp",              \
                  .args = ARGS_ARG, .fmt = FMT_STRING),                                                              \
                M(prefix ".Set", d, RULE_REQ, RULE_OPT, .on_manager = mgr, .member = "SetProperty",                  \
                  .start = property_set_start, .args = ARGS_ARG_PAYLOAD, .fmt = FMT_EMPTY),                          \
                M(prefix ".Reset", d, RULE_REQ, RULE_NO, .on_manager = mgr, .member = "ResetProperty",               \
                  .args = ARGS_ARG, .fmt = FMT_EMPTY)

/* admin.vm.device.<class>.*: the argument and payload rules of spec/devices.md §1 */
#define DEVICE_METHODS(cls)                                                                                        \
        M("admin.vm.device." cls ".Available", DEST_ANY, RULE_OPT, RULE_NO, .start = device_available_start,       \
          .extra = cls),                                                                                           \
                M("admin.vm.device." cls ".Assigned", DEST_ANY, RULE_OPT, RULE_NO, .check = device_assigned_check, \
                  .start = device_assigned_start, .extra = cls),                                                   \
                M("admin.vm.device." cls ".Attached", DEST_ANY, RULE_OPT, RULE_NO, .check = device_assigned_check, \
                  .start = device_attached_start, .extra = cls),                                                   \
                M("admin.vm.device." cls ".Assign", DEST_ANY, RULE_REQ, RULE_REQ, .check = device_assign_check,    \
                  .start = device_assign_start, .member = "AssignDevice", .extra = cls),                           \
                M("admin.vm.device." cls ".Unassign", DEST_ANY, RULE_REQ, RULE_NO, .check = device_ident_check,    \
                  .start = device_unassign_start, .extra = cls),                                                   \
                M("admin.vm.device." cls ".Attach", DEST_ANY, RULE_REQ, RULE_OPT, .check = device_assign_check,    \
                  .start = device_attach_start, .member = "AttachDevice", .no_timeout = true, .extra = cls),       \
                M("admin.vm.device." cls ".Detach", DEST_ANY, RULE_REQ, RULE_NO, .check = device_ident_check,      \
                  .start = device_detach_start, .no_timeout = true, .extra = cls),                                 \
                M("admin.vm.device." cls ".Set.assignment", DEST_ANY, RULE_REQ, RULE_REQ,                          \
                  .check = device_set_mode_check, .start = device_set_mode_start, .extra = cls)

/* Method name → destination rule, argument rule, payload rule, handler. Later issues
 * (lifecycle, storage, devices, firewall, backup, stats) add their rows here. */
static const Method methods[] = {
        M("admin.vmclass.List", DEST_DOM0, RULE_NO, RULE_NO, .on_manager = true, .member = "ListClasses",
          .fmt = FMT_LINES),
        M("admin.deviceclass.List", DEST_DOM0, RULE_NO, RULE_NO, .on_manager = true, .member = "ListDeviceClasses",
          .fmt = FMT_LINES),
        M("admin.vm.List", DEST_ANY, RULE_NO, RULE_NO, .start = vm_list_start),
        CREATE("AppVM"),
        CREATE("DispVM"),
        CREATE("StandaloneVM"),
        CREATE("TemplateVM"),
        CREATE("RemoteVM"),
        CREATE("AdminVM"),
        M("admin.vm.Remove", DEST_ANY, RULE_NO, RULE_NO, .member = "Remove", .fmt = FMT_EMPTY),
        M("admin.vm.CurrentState", DEST_ANY, RULE_NO, RULE_NO, .member = "GetCurrentState", .fmt = FMT_CURRENT_STATE),

        M("admin.label.List", DEST_DOM0, RULE_NO, RULE_NO, .on_manager = true, .member = "ListLabels",
          .fmt = FMT_LABEL_NAMES),
        M("admin.label.Get", DEST_DOM0, RULE_REQ, RULE_NO, .on_manager = true, .member = "LookupLabel",
          .args = ARGS_ARG, .fmt = FMT_LABEL_COLOR),
        M("admin.label.Index", DEST_DOM0, RULE_REQ, RULE_NO, .on_manager = true, .member = "LookupLabel",
          .args = ARGS_ARG, .fmt = FMT_LABEL_INDEX),
        M("admin.label.Create", DEST_DOM0, RULE_REQ, RULE_REQ, .on_manager = true, .member = "CreateLabel",
          .check = label_create_check, .args = ARGS_ARG_PAYLOAD, .fmt = FMT_EMPTY),
        M("admin.label.Remove", DEST_DOM0, RULE_REQ, RULE_NO, .on_manager = true, .member = "RemoveLabel",
          .args = ARGS_ARG, .fmt = FMT_EMPTY),

        PROPERTY_METHODS("admin.property", DEST_DOM0, true),
        PROPERTY_METHODS("admin.vm.property", DEST_ANY, false),

        M("admin.vm.feature.List", DEST_ANY, RULE_NO, RULE_NO, .member = "ListFeatures", .fmt = FMT_LINES),
        M("admin.vm.feature.Get", DEST_ANY, RULE_REQ, RULE_NO, .member = "GetFeature", .args = ARGS_ARG,
          .fmt = FMT_STRING),
        M("admin.vm.feature.CheckWithTemplate", DEST_ANY, RULE_REQ, RULE_NO, .member = "CheckFeatureWithTemplate",
          .args = ARGS_ARG, .fmt = FMT_STRING),
        M("admin.vm.feature.CheckWithNetvm", DEST_ANY, RULE_REQ, RULE_NO, .member = "CheckFeatureWithNetvm",
          .args = ARGS_ARG, .fmt = FMT_STRING),
        M("admin.vm.feature.CheckWithAdminVM", DEST_ANY, RULE_REQ, RULE_NO, .member = "CheckFeatureWithAdminVM",
          .args = ARGS_ARG, .fmt = FMT_STRING),
        M("admin.vm.feature.CheckWithTemplateAndAdminVM", DEST_ANY, RULE_REQ, RULE_NO,
          .member = "CheckFeatureWithTemplateAndAdminVM", .args = ARGS_ARG, .fmt = FMT_STRING),
        M("admin.vm.feature.Set", DEST_ANY, RULE_REQ, RULE_OPT, .check = feature_set_check, .member = "SetFeature",
          .args = ARGS_ARG_PAYLOAD, .fmt = FMT_EMPTY),
        M("admin.vm.feature.Remove", DEST_ANY, RULE_REQ, RULE_NO, .member = "RemoveFeature", .args = ARGS_ARG,
          .fmt = FMT_EMPTY),

        M("admin.vm.tag.List", DEST_ANY, RULE_NO, RULE_NO, .member = "ListTags", .fmt = FMT_LINES),
        M("admin.vm.tag.Get", DEST_ANY, RULE_REQ, RULE_NO, .member = "HasTag", .args = ARGS_ARG, .fmt = FMT_BOOL01),
        M("admin.vm.tag.Set", DEST_ANY, RULE_REQ, RULE_NO, .member = "AddTag", .args = ARGS_ARG, .fmt = FMT_EMPTY),
        M("admin.vm.tag.Remove", DEST_ANY, RULE_REQ, RULE_NO, .member = "RemoveTag", .args = ARGS_ARG,
          .fmt = FMT_EMPTY),

        M("admin.vm.notes.Get", DEST_VM, RULE_NO, RULE_NO, .member = "GetNotes", .fmt = FMT_STRING),
        M("admin.vm.notes.Set", DEST_VM, RULE_NO, RULE_REQ, .check = notes_set_check, .start = notes_set_start,
          .fmt = FMT_EMPTY),

        M("admin.vm.firewall.Get", DEST_VM, RULE_NO, RULE_NO, .iface = FIREWALL_IFACE, .member = "GetRulesText",
          .fmt = FMT_STRING),
        M("admin.vm.firewall.Set", DEST_VM, RULE_NO, RULE_REQ, .check = firewall_set_check, .iface = FIREWALL_IFACE,
          .member = "SetRulesText", .args = ARGS_PAYLOAD, .fmt = FMT_EMPTY),
        M("admin.vm.firewall.Reload", DEST_VM, RULE_NO, RULE_NO, .iface = FIREWALL_IFACE, .member = "Reload",
          .fmt = FMT_EMPTY),

        M("admin.vm.Start", DEST_ANY, RULE_NO, RULE_NO, .member = "Start", .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.Shutdown", DEST_ANY, RULE_OPT, RULE_NO, .check = shutdown_check, .start = shutdown_start,
          .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.Pause", DEST_ANY, RULE_NO, RULE_NO, .member = "Pause", .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.Unpause", DEST_ANY, RULE_NO, RULE_NO, .member = "Unpause", .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.Suspend", DEST_ANY, RULE_NO, RULE_NO, .member = "Suspend", .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.Resume", DEST_ANY, RULE_NO, RULE_NO, .member = "Resume", .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.Kill", DEST_ANY, RULE_NO, RULE_NO, .member = "Kill", .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.CreateDisposable", DEST_ANY, RULE_OPT, RULE_OPT, .check = create_disposable_check,
          .start = create_disposable_start, .no_timeout = true),
        M("admin.vm.Stats", DEST_ANY, RULE_NO, RULE_NO, .start = stats_start, .signals = true),
        /* the pty's path, no newline; the qrexec door is a script around it (data/qubes-rpc) */
        M("admin.vm.Console", DEST_ANY, RULE_NO, RULE_NO, .member = "GetConsole", .fmt = FMT_STRING),

        M("admin.pool.List", DEST_DOM0, RULE_NO, RULE_NO, .on_manager = true, .member = "ListPools",
          .fmt = FMT_POOL_NAMES),
        M("admin.pool.ListDrivers", DEST_DOM0, RULE_NO, RULE_NO, .on_manager = true, .member = "ListPoolDrivers",
          .fmt = FMT_POOL_DRIVERS),
        M("admin.pool.Info", DEST_DOM0, RULE_REQ, RULE_NO, .start = pool_start, .iface = POOL_IFACE, .member = "Info",
          .fmt = FMT_STRING),
        M("admin.pool.UsageDetails", DEST_DOM0, RULE_REQ, RULE_NO, .start = pool_start, .iface = POOL_IFACE,
          .member = "UsageDetails", .fmt = FMT_STRING),
        M("admin.pool.Add", DEST_DOM0, RULE_REQ, RULE_REQ, .start = pool_add_start, .fmt = FMT_EMPTY),
        M("admin.pool.Remove", DEST_DOM0, RULE_REQ, RULE_NO, .on_manager = true, .member = "RemovePool",
          .args = ARGS_ARG, .fmt = FMT_EMPTY),
        M("admin.pool.volume.List", DEST_DOM0, RULE_REQ, RULE_NO, .start = pool_start, .iface = POOL_IFACE,
          .member = "ListVolumes", .fmt = FMT_LINES),
        M("admin.pool.Set.revisions_to_keep", DEST_DOM0, RULE_REQ, RULE_REQ, .check = value_check, .start = pool_start,
          .iface = POOL_IFACE, .member = "SetRevisionsToKeep", .args = ARGS_PAYLOAD, .fmt = FMT_EMPTY),
        M("admin.pool.Set.ephemeral_volatile", DEST_DOM0, RULE_REQ, RULE_REQ, .check = value_check, .start = pool_start,
          .iface = POOL_IFACE, .member = "SetEphemeralVolatile", .args = ARGS_PAYLOAD, .fmt = FMT_EMPTY),

        M("admin.vm.volume.List", DEST_ANY, RULE_NO, RULE_NO, .start = volume_list_start, .fmt = FMT_VOLUME_NAMES),
        M("admin.vm.volume.Info", DEST_ANY, RULE_REQ, RULE_NO, .start = volume_start, .iface = VOLUME_IFACE,
          .member = "Info", .fmt = FMT_STRING),
        M("admin.vm.volume.ListSnapshots", DEST_ANY, RULE_REQ, RULE_NO, .start = volume_start, .iface = VOLUME_IFACE,
          .member = "ListSnapshots", .fmt = FMT_LINES),
        M("admin.vm.volume.Revert", DEST_ANY, RULE_REQ, RULE_REQ, .check = value_strip_check, .start = volume_start,
          .iface = VOLUME_IFACE, .member = "Revert", .args = ARGS_PAYLOAD, .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.volume.CloneFrom", DEST_ANY, RULE_REQ, RULE_NO, .start = volume_start, .iface = VOLUME_IFACE,
          .member = "CloneFrom", .fmt = FMT_STRING),
        M("admin.vm.volume.CloneTo", DEST_ANY, RULE_REQ, RULE_REQ, .check = value_strip_check, .start = volume_start,
          .iface = VOLUME_IFACE, .member = "CloneTo", .args = ARGS_PAYLOAD, .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.volume.Resize", DEST_ANY, RULE_REQ, RULE_REQ, .check = value_strip_check, .start = volume_start,
          .iface = VOLUME_IFACE, .member = "Resize", .args = ARGS_PAYLOAD, .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.volume.Clear", DEST_ANY, RULE_REQ, RULE_NO, .start = volume_start, .iface = VOLUME_IFACE,
          .member = "Clear", .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.volume.Set.revisions_to_keep", DEST_ANY, RULE_REQ, RULE_REQ, .check = value_check,
          .start = volume_start, .iface = VOLUME_IFACE, .member = "SetRevisionsToKeep", .args = ARGS_PAYLOAD,
          .fmt = FMT_EMPTY),
        M("admin.vm.volume.Set.rw", DEST_ANY, RULE_REQ, RULE_REQ, .check = value_check, .start = volume_start,
          .iface = VOLUME_IFACE, .member = "SetRw", .args = ARGS_PAYLOAD, .fmt = FMT_EMPTY),
        M("admin.vm.volume.Set.ephemeral", DEST_ANY, RULE_REQ, RULE_REQ, .check = value_check, .start = volume_start,
          .iface = VOLUME_IFACE, .member = "SetEphemeral", .args = ARGS_PAYLOAD, .fmt = FMT_EMPTY),
        M("admin.vm.volume.Import", DEST_ANY, RULE_REQ, RULE_OPT, .check = import_check, .start = volume_start,
          .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.vm.volume.ImportWithSize", DEST_ANY, RULE_REQ, RULE_OPT, .check = import_check, .start = volume_start,
          .no_timeout = true, .fmt = FMT_EMPTY),

        DEVICE_METHODS("block"),
        DEVICE_METHODS("pci"),
        M("admin.vm.device.denied.List", DEST_ANY, RULE_NO, RULE_NO, .start = device_denied_list_start),
        M("admin.vm.device.denied.Add", DEST_ANY, RULE_NO, RULE_OPT, .check = device_denied_check,
          .start = device_denied_start, .member = "AddDeniedInterfaces"),
        M("admin.vm.device.denied.Remove", DEST_ANY, RULE_NO, RULE_OPT, .check = device_denied_check,
          .start = device_denied_start, .member = "RemoveDeniedInterfaces"),

        M("admin.Events", DEST_ANY, RULE_NO, RULE_NO, .start = events_start, .signals = true),

        M("admin.backup.Execute", DEST_DOM0, RULE_REQ, RULE_NO, .on_manager = true, .start = backup_execute_start,
          .no_timeout = true, .fmt = FMT_EMPTY),
        M("admin.backup.Info", DEST_DOM0, RULE_REQ, RULE_NO, .on_manager = true, .member = "BackupInfo",
          .args = ARGS_ARG, .no_timeout = true, .fmt = FMT_STRING),
        M("admin.backup.Cancel", DEST_DOM0, RULE_REQ, RULE_NO, .on_manager = true, .member = "CancelBackup",
          .args = ARGS_ARG, .fmt = FMT_EMPTY),
};

const Method *method_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (streq(methods[i].name, name))
                        return &methods[i];
        return NULL;
}

const Method *method_next(size_t *i) {
        if (*i >= ELEMENTSOF(methods))
                return NULL;
        return &methods[(*i)++];
}
