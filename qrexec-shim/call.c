/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "shim.h"

#include <stdarg.h>
#include <string.h>

#include "util/log.h"
#include "util/strv.h"

/* ---- bus connections, one per source ----------------------------------------------------- */

BusEntry *bus_entry_ref(BusEntry *b) {
        if (b)
                b->n_ref++;
        return b;
}

/* Not inlined: gcc's -Wuse-after-free otherwise follows two unrefs of one entry (the last one
 * by a _cleanup_ hold that keeps it alive across a callback) and misreads the counting. */
__attribute__((noinline)) BusEntry *bus_entry_unref(BusEntry *b) {
        if (!b || --b->n_ref > 0)
                return NULL;
        sd_bus_slot_unref(b->slot);
        sd_bus_flush_close_unref(b->bus);
        free(b->source);
        free(b->key);
        free(b->owner);
        free(b);
        return NULL;
}

/* Forget a connection: the next call from that source opens a new one (and identifies again). */
void bus_entry_evict(BusEntry *b) {
        b->state = BUS_DEAD;
        if (b->cached) {
                b->cached = false;
                hashmap_remove(b->shim->buses, b->key);
                bus_entry_unref(b);
        }
}

static int bus_open(Shim *shim, bool direct, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (direct) {
                /* qubesd's private socket: the same objects without the bus daemon in between */
                _cleanup_free_ char *address = NULL;
                if (asprintf(&address, "unix:path=%s", shim->private_socket) < 0)
                        return -ENOMEM;
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, address);
                if (r < 0)
                        return r;
                r = sd_bus_start(bus);
        } else if (shim->bus_address) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, shim->bus_address);
                if (r < 0)
                        return r;
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_start(bus);
        } else if (shim->user_bus)
                r = sd_bus_open_user(&bus);
        else
                r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, shim->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static void call_resolve(Call *c);

static int on_identity_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusEntry *b = userdata;
        /* keeps b (and its bus) alive while this callback evicts it */
        _cleanup_(bus_entry_unrefp) _unused_ BusEntry *hold = bus_entry_ref(b);
        Call *list = b->waiting;

        b->slot = sd_bus_slot_unref(b->slot);
        b->waiting = NULL;

        if (sd_bus_message_is_method_error(m, NULL)) {
                /* Never call on a connection without its identity: qubesd would take us for dom0. */
                bus_entry_evict(b);
                while (list) {
                        Call *c = list;
                        list = c->next_waiting;
                        c->next_waiting = NULL;
                        call_reply_dbus_error(c, m, 0);
                }
                return 0;
        }

        /* Calls go to the unique name that accepted our identity: if qubesd restarts, they fail
         * instead of reaching a new instance that does not know who we are. */
        const char *sender = sd_bus_message_get_sender(m);
        if (free_and_strdup(&b->owner, sender ?: ADMIN_BUS_NAME) < 0) {
                bus_entry_evict(b);
                while (list) {
                        Call *c = list;
                        list = c->next_waiting;
                        c->next_waiting = NULL;
                        call_reply_dbus_error(c, NULL, -ENOMEM);
                }
                return 0;
        }
        b->state = BUS_READY;
        while (list) {
                Call *c = list;
                list = c->next_waiting;
                c->next_waiting = NULL;
                call_resolve(c);
        }
        return 0;
}

static int bus_entry_new(Shim *shim, const char *source, bool events, BusEntry **ret) {
        _cleanup_(bus_entry_unrefp) BusEntry *b = NULL;
        int r;

        b = new0(BusEntry, 1);
        if (!b)
                return -ENOMEM;
        b->n_ref = 1;
        b->shim = shim;
        b->state = BUS_IDENTIFYING;
        b->source = strdup(source);
        if (!b->source)
                return -ENOMEM;
        b->direct = !events && shim->private_socket;
        if (asprintf(&b->key, "%s%s", events ? "events:" : "", source) < 0) {
                b->key = NULL;
                return -ENOMEM;
        }
        r = bus_open(shim, b->direct, &b->bus);
        if (r < 0 && b->direct && shim->private_socket_guessed && (r == -ECONNREFUSED || r == -ENOENT)) {
                /* the default socket is left over from a qubesd that is gone: take the bus */
                log_debug_errno(r, "Cannot connect to %s, using the bus: %m", shim->private_socket);
                b->direct = false;
                r = bus_open(shim, false, &b->bus);
        }
        if (r < 0)
                return r;
        r = sd_bus_call_method_async(b->bus, &b->slot, ADMIN_BUS_NAME, ADMIN_PATH, MANAGER_IFACE, "SetCallerIdentity",
                                     on_identity_reply, b, "s", source);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

/* The connection for this source: from the cache, or a new one. Returns a new reference.
 * Event streams need the bus (signals); calls use the private socket when there is one. */
static int bus_entry_get(Shim *shim, const char *source, bool events, BusEntry **ret) {
        _cleanup_free_ char *key = NULL;
        BusEntry *b;
        int r;

        if (asprintf(&key, "%s%s", events ? "events:" : "", source) < 0)
                return -ENOMEM;
        b = shim->buses ? hashmap_get(shim->buses, key) : NULL;
        if (b && (b->state == BUS_DEAD || !sd_bus_is_open(b->bus))) {
                bus_entry_evict(b);
                b = NULL;
        }
        if (b) {
                *ret = bus_entry_ref(b);
                return 0;
        }
        r = bus_entry_new(shim, source, events, &b);
        if (r < 0)
                return r;
        if (shim->buses && hashmap_put(shim->buses, b->key, b) >= 0)
                b->cached = true, bus_entry_ref(b);
        *ret = b;
        return 0;
}

/* ---- replies ------------------------------------------------------------------------------ */

StrBuf *call_reply_ok_begin(Call *c) {
        strbuf_append_n(&c->client->out, "0\0", 2);
        return &c->client->out;
}

void call_reply_end(Call *c) {
        client_finish(c->client);
}

void call_reply_qerror(Call *c, const QError *e) {
        wire_append_qerror(&c->client->out, e);
        client_finish(c->client);
}

void call_reply_error(Call *c, QubesErrorCode code, const char *format, ...) {
        const char *fields[8];
        _cleanup_strv_free_ char **f = NULL;
        size_t n = 0;
        va_list ap;

        va_start(ap, format);
        for (const char *p = strchr(format, '%'); p; p = strchr(p + 2, '%')) {
                if (p[1] == 's' && n < ELEMENTSOF(fields))
                        fields[n++] = va_arg(ap, const char *);
                if (!p[1])
                        break;
        }
        va_end(ap);
        for (size_t i = 0; i < n; i++)
                (void) strv_extend(&f, strempty(fields[i]));
        wire_append_exception(&c->client->out, code, NULL, format, f);
        client_finish(c->client);
}

/* Literal text as a %-format without fields. */
static char *escape_percent(const char *s) {
        _cleanup_strbuf_ StrBuf b = {};
        for (; *s; s++) {
                if (*s == '%')
                        strbuf_append_c(&b, '%');
                strbuf_append_c(&b, *s);
        }
        return strbuf_steal(&b);
}

static bool call_targets_domain(const Call *c) {
        return c->path && startswith(c->path, ADMIN_DOMAIN_PREFIX "/");
}

void call_reply_dbus_error(Call *c, sd_bus_message *m, int r) {
        const sd_bus_error *be = m ? sd_bus_message_get_error(m) : NULL;
        const char *name = be ? be->name : NULL;
        const char *message = NULL, *format = NULL;
        _cleanup_strv_free_ char **fields = NULL;
        _cleanup_free_ char *rendered = NULL, *fmt = NULL;
        const char *traceback = NULL;
        QubesErrorCode code;

        if (!be) {
                _cleanup_free_ char *text = NULL;
                if (asprintf(&text, "qubesd is not reachable: %s", strerror(r < 0 ? -r : EIO)) < 0)
                        text = NULL;
                fmt = escape_percent(strempty(text));
                wire_append_exception(&c->client->out, QERR_QUBES_EXCEPTION, NULL, fmt ?: "", NULL);
                client_finish(c->client);
                return;
        }

        /* A qube that does not exist has no object: say it as qubesd.sock would. */
        if (call_targets_domain(c) && (sd_bus_error_has_name(be, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                                       sd_bus_error_has_name(be, SD_BUS_ERROR_UNKNOWN_METHOD) ||
                                       sd_bus_error_has_name(be, SD_BUS_ERROR_UNKNOWN_INTERFACE))) {
                call_reply_error(c, QERR_VM_NOT_FOUND, "No such domain: '%s'", c->req.dest);
                return;
        }

        code = qubes_error_from_dbus_name(name);
        if (code == QERR_NONE) {
                /* Not a Qubes error (the bus, a timeout, a daemon bug): keep the text, but never an
                 * empty reply, which clients could only report as "Got empty response". */
                _cleanup_free_ char *text = NULL;
                if (asprintf(&text, "%s: %s", strempty(name), strempty(be->message)) < 0)
                        text = NULL;
                fmt = escape_percent(strempty(text));
                wire_append_exception(&c->client->out, QERR_QUBES_EXCEPTION, NULL, fmt ?: "", NULL);
                client_finish(c->client);
                return;
        }

        (void) sd_bus_message_rewind(m, true);
        if (sd_bus_message_read(m, "ss", &message, &format) >= 0 && sd_bus_message_read_strv(m, &fields) >= 0) {
                /* With --debug qubesd appends "\n\n<traceback>" to the message: put it where
                 * qubesd.sock puts a traceback. */
                rendered = qerror_format_message(format, fields);
                if (rendered && message) {
                        const char *rest = startswith(message, rendered);
                        if (rest && startswith(rest, "\n\n"))
                                traceback = rest + 2;
                }
                wire_append_exception(&c->client->out, code, traceback, format, fields);
        } else {
                /* An error without the (s, s, as) body: its message is the text. */
                fmt = escape_percent(strempty(be->message));
                wire_append_exception(&c->client->out, code, NULL, fmt ?: "", NULL);
        }
        client_finish(c->client);
}

bool call_handle_error(Call *c, sd_bus_message *m, sd_bus_error *ret_error) {
        if (!sd_bus_message_is_method_error(m, NULL))
                return false;
        c->slot = sd_bus_slot_unref(c->slot);

        /* qubesd went away (restart): the identity is gone with it, so retry once on a fresh
         * connection, which identifies itself again. */
        const sd_bus_error *be = sd_bus_message_get_error(m);
        if (!c->retried && c->step == 0 &&
            (sd_bus_error_has_name(be, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
             sd_bus_error_has_name(be, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
             sd_bus_error_has_name(be, SD_BUS_ERROR_NO_REPLY) ||
             sd_bus_error_has_name(be, SD_BUS_ERROR_DISCONNECTED))) {
                BusEntry *b = c->bus;
                Shim *shim = b->shim;
                int r;

                c->retried = true;
                bus_entry_evict(b);
                c->bus = bus_entry_unref(b);
                r = bus_entry_get(shim, c->req.src, c->m->signals, &c->bus);
                if (r >= 0) {
                        if (c->bus->state == BUS_READY)
                                call_resolve(c);
                        else {
                                c->next_waiting = c->bus->waiting;
                                c->bus->waiting = c;
                        }
                        return true;
                }
        }
        call_reply_dbus_error(c, m, 0);
        return true;
}

int call_method(Call *c, const char *path, const char *iface, const char *member, sd_bus_message_handler_t cb,
                const char *types, ...) {
        va_list ap;
        int r;

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;

        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_new_method_call(c->bus->bus, &msg, c->bus->owner ?: ADMIN_BUS_NAME, path, iface, member);
        if (r < 0)
                return r;
        if (!isempty(types)) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        /* UINT64_MAX: no timeout (a start or a data copy takes as long as it takes, as upstream) */
        return sd_bus_call_async(c->bus->bus, &c->slot, msg, cb, c, c->m && c->m->no_timeout ? UINT64_MAX : 0);
}

/* ---- the request ----------------------------------------------------------------------- */

Call *call_free(Call *c) {
        if (!c)
                return NULL;
        /* unlink from a connection still waiting for its identity */
        if (c->bus) {
                for (Call **p = &c->bus->waiting; *p; p = &(*p)->next_waiting)
                        if (*p == c) {
                                *p = c->next_waiting;
                                break;
                        }
        }
        events_call_free(c);
        sd_bus_slot_unref(c->slot);
        sd_bus_slot_unref(c->match_slot);
        sd_bus_slot_unref(c->owner_slot);
        bus_entry_unref(c->bus);
        free(c->header);
        free(c->payload_copy);
        free(c->path);
        free(c->create_name);
        free(c->create_label);
        free(c->create_pool);
        strv_free(c->create_pools);
        device_ident_done(&c->dev_ident);
        device_assignment_data_done(&c->dev_assign);
        free(c);
        return NULL;
}

void call_run(Call *c) {
        int r;

        r = c->m->start ? c->m->start(c) : call_generic_start(c);
        if (r < 0)
                call_reply_dbus_error(c, NULL, r);
}

static int on_get_domain(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *path;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "o", &path);
        if (r < 0) {
                call_reply_dbus_error(c, NULL, r);
                return 0;
        }
        /* the Manager methods keep the Manager's path */
        if (!c->m->on_manager && free_and_strdup(&c->path, path) < 0) {
                call_reply_dbus_error(c, NULL, -ENOMEM);
                return 0;
        }
        call_run(c);
        return 0;
}

/* The bus is ready: turn a uuid: destination into its object (one extra call; names map to
 * paths locally, and dom0's all-zero UUID needs no lookup either). */
static void call_resolve(Call *c) {
        int r;

        if (ref_is_uuid(c->req.dest) && !ref_is_dom0(c->req.dest)) {
                r = call_method(c, ADMIN_PATH, MANAGER_IFACE, "GetDomain", on_get_domain, "s", c->req.dest);
                if (r < 0)
                        call_reply_dbus_error(c, NULL, r);
                return;
        }
        call_run(c);
}

static int path_of_dest(Call *c) {
        if (c->m->on_manager)
                c->path = strdup(ADMIN_PATH);
        else if (ref_is_dom0(c->req.dest))
                c->path = strdup(ADMIN_DOMAIN_PREFIX "/dom0");
        else if (ref_is_uuid(c->req.dest))
                return 0; /* resolved by call_resolve() */
        else {
                /* qube names never change, so the path is known without asking */
                int r = sd_bus_path_encode(ADMIN_DOMAIN_PREFIX, c->req.dest, &c->path);
                if (r < 0)
                        return r;
        }
        return c->path ? 0 : -ENOMEM;
}

/* s cut to size, with '?' for every byte that is not printable ASCII: what a log may show of a
 * caller's bytes. */
static const char *printable(char *buf, size_t size, const char *s) {
        size_t n = 0;
        for (; *s && n < size - 1; s++)
                buf[n++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
        buf[n] = '\0';
        return buf;
}

/* The generic checks of spec §1.4 that need nothing but the request. Returns 0 when the call
 * may go on, else it has replied. */
static int call_check_locally(Call *c) {
        _cleanup_qerror_ QError e = {};
        const Method *m;

        if (validate_ref(c->req.src, &e) < 0 || validate_ref(c->req.dest, &e) < 0) {
                call_reply_qerror(c, &e);
                return -EINVAL;
        }
        /* upstream decodes these as ASCII and answers nothing when it fails: say why instead */
        if (!bytes_are_ascii(c->req.method, strlen(c->req.method)) ||
            !bytes_are_ascii(c->req.arg, strlen(c->req.arg))) {
                call_reply_error(c, QERR_PROTOCOL, "Method name and argument must be ASCII");
                return -EINVAL;
        }
        m = method_find(c->req.method);
        if (!m) {
                call_reply_error(c, QERR_PROTOCOL, "no such method: '%s'", c->req.method);
                return -EINVAL;
        }
        c->m = m;
        c->dest_is_dom0 = ref_is_dom0(c->req.dest);

        if (m->payload == RULE_REQ && c->req.payload_len == 0) {
                call_reply_error(c, QERR_PROTOCOL, "expected payload");
                return -EINVAL;
        }
        if (m->payload == RULE_NO && c->req.payload_len > 0) {
                call_reply_error(c, QERR_PROTOCOL, "unexpected payload");
                return -EINVAL;
        }
        if (m->arg == RULE_REQ && isempty(c->req.arg)) {
                call_reply_error(c, QERR_PROTOCOL, "expected an argument");
                return -EINVAL;
        }
        if (m->arg == RULE_NO && !isempty(c->req.arg)) {
                call_reply_error(c, QERR_PROTOCOL, "unexpected argument");
                return -EINVAL;
        }
        if (m->dest == DEST_DOM0 && !c->dest_is_dom0) {
                call_reply_error(c, QERR_PROTOCOL, "expected destination to be AdminVM");
                return -EINVAL;
        }
        if (m->dest == DEST_VM && c->dest_is_dom0) {
                call_reply_error(c, QERR_PROTOCOL, "expected destination to not be AdminVM");
                return -EINVAL;
        }
        if (m->check && m->check(c, &e) < 0) {
                if (qerror_is_set(&e))
                        call_reply_qerror(c, &e);
                else
                        call_reply_dbus_error(c, NULL, -ENOMEM);
                return -EINVAL;
        }
        return 0;
}

void call_dispatch(Client *client, char *req_buf, size_t len) {
        Call *c;
        int r;

        c = new0(Call, 1);
        if (!c) {
                free(req_buf);
                client_finish(client); /* nothing we can say */
                return;
        }
        c->client = client;
        client->call = c;
        c->header = req_buf;

        if (request_parse(req_buf, len, &c->req) < 0) {
                /* framing error: an empty reply, as qubesd.sock */
                client_finish(client);
                return;
        }
        if (call_check_locally(c) < 0) {
                /* refused before qubesd saw it: malformed or not a method (a probe, or a broken
                 * client); journald can tell which qube sends them */
                char method[65], src[32];
                log_qube_notice(printable(src, sizeof src, c->req.src), "Refused a malformed call %s from %s.",
                                printable(method, sizeof method, c->req.method), src);
                return;
        }

        r = path_of_dest(c);
        if (r < 0) {
                call_reply_dbus_error(c, NULL, r);
                return;
        }
        r = bus_entry_get(client->shim, c->req.src, c->m->signals, &c->bus);
        if (r < 0) {
                log_warning_errno(r, "Cannot connect to the bus: %m");
                call_reply_dbus_error(c, NULL, r);
                return;
        }
        if (c->bus->state == BUS_READY)
                call_resolve(c);
        else {
                c->next_waiting = c->bus->waiting;
                c->bus->waiting = c;
        }
}
