/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* caller-filter.c: per-caller filtering of listings and events for qubes calling through qrexec (spec
 * qrexec-policy.md §4): a qube other than dom0 sees in admin.vm.List and admin.Events only what
 * the qrexec policy would allow it to ask about. The policy is parsed once and re-read when a
 * file in the policy directories changes. */

int caller_filter_init(Manager *m);
void caller_filter_done(Manager *m);

typedef struct FilterContext FilterContext;
/* A snapshot for one listing: NULL when caller sees everything (dom0). */
FilterContext *filter_context_new(Manager *m, const char *caller);
FilterContext *filter_context_free(FilterContext *f);
bool filter_domain_visible(FilterContext *f, const Domain *d);

/* Manager.SubscribeEvents: unicast, filtered Event signals for the calling peer, on its
 * connection (the bus, or a private connection). Each call adds one subscription with its own
 * scope (only: one qube's events, NULL: all; names: Manager.SubscribeEventNames' event names,
 * each exact or a prefix ending in '*', or an exception "!name" / "!prefix*" that no name
 * overrides; NULL: every event); UnsubscribeEvents ends one with the same qube (-ENOENT: none):
 * one without names if there is one, else the first made, leaving the peer's others as they
 * were; all end when the peer leaves. */
#define EVENT_NAMES_MAX 64u
#define EVENT_NAME_MAX 256u
int caller_filter_subscribe(Manager *m, sd_bus_message *msg, const char *caller, const char *only, char *const *names,
                            QError *e);
int caller_filter_unsubscribe(Manager *m, sd_bus_message *msg, const char *only);
/* Subscriptions alive, all peers together (Manager.EventSubscriptions). */
unsigned caller_filter_count(Manager *m);
/* Called for every event after the broadcast: delivers it to each subscriber allowed to see it. */
void caller_filter_deliver(Manager *m, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                           uint64_t seq);
void caller_filter_forget(Manager *m, const char *unique_name);
/* Copies of d's other signals (Stats) for the local users subscribed with SubscribeEvents who
 * see d but get no broadcasts (auth.c): send() builds and sends one on the subscriber's
 * connection, addressed to destination. */
typedef int (*SubscriberSendFn)(sd_bus *bus, const char *destination, void *userdata);
void caller_filter_send_copies(Manager *m, Domain *d, SubscriberSendFn send, void *userdata);
/* polkit answered a question about what unique_name sees: send its events that waited. */
void caller_filter_flush(Manager *m, const char *unique_name);
