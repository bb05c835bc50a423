/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

/* Kinds of operation; each is one polkit action (org.qubes_os.admin.<kind>, polkit/). */
typedef enum AuthAction {
        AUTH_READ,
        AUTH_LIFECYCLE,
        AUTH_CHANGE,
        AUTH_CREATE_REMOVE,
        AUTH_STORAGE,
        AUTH_DEVICES,
        AUTH_FIREWALL,
        AUTH_BACKUP,
        AUTH_POLICY,
        AUTH_READ_ALL, /* see every qube: listings need no question per qube */
        _AUTH_ACTION_MAX,
} AuthAction;

/* The polkit action id of a kind of operation ("org.qubes_os.admin.change"). */
const char *auth_action_id(AuthAction action);

/* The one authorization gate every method goes through: may the sender of msg do action on d
 * (NULL = the system as a whole)? Returns 1 when allowed, 0 when the answer will come later
 * (polkit is being asked; the call is held and put back into the bus's read queue when the
 * answer comes, so the handler runs again from the start: call this before touching any state),
 * or a negative error with e filled (one of the three NotAuthorized errors).
 * Root and the daemon's own user are allowed without asking; other local users are asked
 * about through polkit with details qube= and tags= (d's name and space-separated tags).
 * A Properties.Set call cannot wait: it gets a cached verdict, or 0 without any query (the
 * setter then refuses with NotAuthorizedCanObtain, pointing to SetProperty). */
int auth_check(Manager *m, sd_bus_message *msg, AuthAction action, Domain *d, QError *e);

/* The qube on whose behalf the sender acts: the identity it declared, else "dom0" (local
 * callers are dom0 users). Never NULL. */
const char *auth_caller_qube(Manager *m, sd_bus_message *msg);
/* SetCallerIdentity. */
int auth_set_caller_identity(Manager *m, sd_bus_message *msg, const char *qube, QError *e);
int auth_enable_error_details(Manager *m, sd_bus_message *msg);
/* Root, the daemon's own user, and the users given with --trusted-uid: they never ask polkit,
 * may declare a caller identity (the shim) and may use the private socket. */
bool auth_uid_trusted(Manager *m, uid_t uid);
/* What a local user sees (auth.c explains): make sure the answers that decide it are known for
 * d, or for every qube when d is NULL. 1: known (or the sender sees everything); 0: msg is held
 * and put back into the read queue when more answers come; negative with e set on failure. */
int auth_view_prepare(Manager *m, sd_bus_message *msg, Domain *d, QError *e);
/* Whether the sender of msg sees d (false while not known; d NULL, a qube that is gone: only who
 * sees everything). msg NULL: true. */
bool auth_sees(Manager *m, sd_bus_message *msg, Domain *d);
/* Whether the sender of msg sees every qube (read-all). */
bool auth_sees_all(Manager *m, sd_bus_message *msg);
/* Whether the sender of msg may read at all: 1 yes, 0 no, -ENOENT not known yet. */
int auth_may_read(Manager *m, sd_bus_message *msg);
/* For events to a subscribed peer: 1 sees d (d NULL: may read the system, for events about no
 * qube), 0 does not, -ENOENT not known yet (asked now; caller_filter_flush() runs when the
 * answer comes). */
int auth_peer_sees(Manager *m, const char *unique_name, Domain *d);
/* Whether the peer sees d but not every qube, and so gets no broadcasts of d's Stats (the bus
 * policy) and needs unicast copies. */
bool auth_peer_needs_copies(Manager *m, const char *unique_name, Domain *d);
/* app_resolve_domain() for a qube named by the sender: one it does not see does not exist. */
int auth_resolve_domain(Manager *m, sd_bus_message *msg, const char *ref, Domain **ret, QError *e);
/* For an event about a qube that is gone: whether the peer saw a qube of that name (a kept
 * answer, whatever its tags then were). */
int auth_peer_saw(Manager *m, const char *unique_name, const char *name);
/* The bus filter that applies the above to calls on the bus before they are dispatched. */
int auth_add_view_filter(Manager *m);
/* Forget a bus peer that went away. */
void auth_forget_caller(Manager *m, const char *unique_name);
Caller *caller_free(Caller *c);
