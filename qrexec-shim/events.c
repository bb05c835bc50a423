/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "shim.h"

#include <inttypes.h>
#include <string.h>

#include "util/log.h"

/* admin.Events: subscribe to qubesd's Event signals and relay them as event frames until the
 * client goes away. A slow client never slows qubesd down: its queue is bounded; when full, we
 * stop queuing and count what we drop, and once the queue drained we tell the client how many
 * events it missed and close the stream (it must resubscribe and reload its state). */

static void events_end_with_overflow(Call *c) {
        char n[32];

        c->match_slot = sd_bus_slot_unref(c->match_slot);
        c->owner_slot = sd_bus_slot_unref(c->owner_slot);
        snprintf(n, sizeof n, "%" PRIu64, c->dropped);
        call_reply_error(c, QERR_QUBES_EXCEPTION, "Event stream overflow: client too slow, %s events dropped", n);
}

void events_output_drained(Call *c) {
        if (c->overflowing && c->match_slot)
                events_end_with_overflow(c);
}

static void events_drop(Call *c, uint64_t n) {
        c->dropped += n;
        if (!c->overflowing) {
                c->overflowing = true;
                log_warning("admin.Events subscriber of %s too slow, dropping events", c->req.src);
        }
        if (client_pending(c->client) == 0)
                events_end_with_overflow(c);
}

static int on_event(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        StrBuf *o = &c->client->out;
        const char *subject, *name, *k, *v;
        uint64_t seq;
        size_t mark;
        int r;

        r = sd_bus_message_read(m, "tss", &seq, &subject, &name);
        if (r < 0) {
                log_debug_errno(r, "Ignoring malformed Event signal: %m");
                return 0;
        }

        /* A hole in the sequence of an unfiltered stream means the bus lost events for us. */
        if (c->check_gaps && c->have_seq && seq > c->last_seq + 1)
                events_drop(c, seq - c->last_seq - 1);
        if (!c->have_seq || seq > c->last_seq)
                c->last_seq = seq;
        c->have_seq = true;

        if (c->overflowing) {
                events_drop(c, 1);
                return 0;
        }

        mark = o->len;
        strbuf_append_n(o, "1\0", 2);
        strbuf_append(o, subject);
        strbuf_append_c(o, 0);
        strbuf_append(o, name);
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
                log_debug_errno(r, "Ignoring malformed Event signal: %m");
                return 0;
        }
        strbuf_append_c(o, 0);

        if (client_pending(c->client) > c->client->shim->event_queue_max) {
                o->len = mark;
                events_drop(c, 1);
                return 0;
        }
        client_flush(c->client);
        return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (!streq_ptr(old_owner, c->bus->owner))
                return 0;
        /* qubesd went away: the stream ends, as the socket of a stopped qubesd closes. */
        c->match_slot = sd_bus_slot_unref(c->match_slot);
        c->owner_slot = sd_bus_slot_unref(c->owner_slot);
        bus_entry_evict(c->bus);
        client_finish(c->client);
        return 0;
}

/* A SubscribeEvents made for one stream. It outlives the stream while its reply is awaited, so
 * that a subscription made for a stream that is gone already is ended too. */
struct EventSub {
        Call *call; /* NULL once the stream is gone */
        BusEntry *bus;
        char *scope; /* the SubscribeEvents argument: "" (every qube) or the destination */
        sd_bus_slot *slot;
        bool active; /* qubesd accepted it: UnsubscribeEvents when the stream ends */
};

static EventSub *event_sub_free(EventSub *sub) {
        if (!sub)
                return NULL;
        sd_bus_slot_unref(sub->slot);
        bus_entry_unref(sub->bus);
        free(sub->scope);
        free(sub);
        return NULL;
}

static void event_sub_end(EventSub *sub) {
        /* fire and forget: if qubesd is gone, so is the subscription */
        if (sub->active && sub->bus->state == BUS_READY && sd_bus_is_open(sub->bus->bus) > 0) {
                int r = sd_bus_call_method_async(sub->bus->bus, NULL, sub->bus->owner, ADMIN_PATH, MANAGER_IFACE,
                                                 "UnsubscribeEvents", NULL, NULL, "s", sub->scope);
                if (r < 0)
                        log_debug_errno(r, "Cannot end an event subscription: %m");
        }
        event_sub_free(sub);
}

void events_call_free(Call *c) {
        EventSub *sub = c->event_sub;
        if (!sub)
                return;
        c->event_sub = NULL;
        sub->call = NULL;
        if (!sub->slot)
                event_sub_end(sub); /* else on_subscribed() ends it */
}

static void events_established(Call *c) {
        /* Only now are we sure not to miss anything: tell the client. */
        client_write(c->client, "1\0\0connection-established\0\0", STRLEN("1\0\0connection-established\0\0"));
}

static int on_subscribed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EventSub *sub = userdata;
        Call *c = sub->call;

        sub->slot = sd_bus_slot_unref(sub->slot);
        sub->active = !sd_bus_message_is_method_error(m, NULL);
        if (!c) {
                event_sub_end(sub);
                return 0;
        }
        if (sd_bus_message_is_method_error(m, NULL)) {
                c->match_slot = sd_bus_slot_unref(c->match_slot);
                call_reply_dbus_error(c, m, 0);
                return 0;
        }
        events_established(c);
        return 0;
}

static int on_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;

        if (sd_bus_message_is_method_error(m, NULL)) {
                c->match_slot = sd_bus_slot_unref(c->match_slot);
                call_reply_dbus_error(c, m, 0);
                return 0;
        }
        if (ref_is_dom0(c->req.src)) {
                events_established(c);
                return 0;
        }
        /* Another qube sees only what the qrexec policy allows (spec qrexec-policy.md §4):
         * qubesd sends it its own filtered copy of each event, addressed to this connection. */
        EventSub *sub = new0(EventSub, 1);
        int r = -ENOMEM;
        if (sub) {
                sub->call = c;
                sub->bus = bus_entry_ref(c->bus);
                sub->scope = strdup(c->dest_is_dom0 ? "" : c->req.dest);
                c->event_sub = sub;
                r = sub->scope ? sd_bus_call_method_async(c->bus->bus, &sub->slot, c->bus->owner, ADMIN_PATH,
                                                          MANAGER_IFACE, "SubscribeEvents", on_subscribed, sub, "s",
                                                          sub->scope)
                               : -ENOMEM;
        }
        if (r < 0) {
                c->match_slot = sd_bus_slot_unref(c->match_slot);
                call_reply_dbus_error(c, NULL, r);
        }
        return 0;
}

static int events_subscribe(Call *c) {
        _cleanup_free_ char *match = NULL;
        int r;

        c->check_gaps = c->dest_is_dom0 && ref_is_dom0(c->req.src);
        if (!ref_is_dom0(c->req.src)) {
                const char *me = NULL;
                r = sd_bus_get_unique_name(c->bus->bus, &me);
                if (r < 0)
                        return r;
                /* only the copies addressed to us, never the unfiltered broadcast; the connection
                 * is shared by the source's streams and gets the copies any of them asked for, so a
                 * stream to one qube takes that qube's path only */
                if (c->dest_is_dom0)
                        r = asprintf(
                                &match,
                                "type='signal',sender='%s',member='Event',destination='%s',path_namespace='" ADMIN_PATH
                                "'",
                                c->bus->owner, me);
                else
                        r = asprintf(&match, "type='signal',sender='%s',member='Event',destination='%s',path='%s'",
                                     c->bus->owner, me, c->path);
        } else if (c->dest_is_dom0)
                r = asprintf(&match, "type='signal',sender='%s',member='Event',path_namespace='" ADMIN_PATH "'",
                             c->bus->owner);
        else
                r = asprintf(&match, "type='signal',sender='%s',member='Event',interface='" DOMAIN_IFACE "',path='%s'",
                             c->bus->owner, c->path);
        if (r < 0)
                return -ENOMEM;
        r = sd_bus_add_match_async(c->bus->bus, &c->owner_slot,
                                   "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                   "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                   "arg0='" ADMIN_BUS_NAME "'",
                                   on_owner_changed, NULL, c);
        if (r < 0)
                return r;
        return sd_bus_add_match_async(c->bus->bus, &c->match_slot, match, on_event, on_match_installed, c);
}

static int on_dest_exists(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        c->step = 1;
        r = events_subscribe(c);
        if (r < 0)
                call_reply_dbus_error(c, NULL, r);
        return 0;
}

int events_start(Call *c) {
        /* A match rule on a path that has no object would wait forever: check the qube first. */
        if (!c->dest_is_dom0)
                return call_method(c, ADMIN_PATH, MANAGER_IFACE, "GetDomain", on_dest_exists, "s", c->req.dest);
        return events_subscribe(c);
}
