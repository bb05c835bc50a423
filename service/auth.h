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
/* Whether the sender asked for error replies with format and fields (SetCallerIdentity or
 * EnableErrorDetails). Plain D-Bus clients (GDBus expects a single string) get the message only. */
bool auth_caller_wants_error_details(Manager *m, sd_bus_message *msg);
int auth_enable_error_details(Manager *m, sd_bus_message *msg);
/* Root, the daemon's own user, and the users given with --trusted-uid: they never ask polkit,
 * may declare a caller identity (the shim) and may use the private socket. */
bool auth_uid_trusted(Manager *m, uid_t uid);
/* Forget a bus peer that went away. */
void auth_forget_caller(Manager *m, const char *unique_name);
Caller *caller_free(Caller *c);
