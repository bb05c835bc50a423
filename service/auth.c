/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "auth.h"

#include "util/log.h"

/* Until polkit lands (the authorization issue), the rule is: everyone may read; root and the
 * daemon's own user may change things. The shape of the gate — one function, called before any
 * state is touched, able to answer "later" — is what polkit needs. */

Caller *caller_free(Caller *c) {
        if (!c)
                return NULL;
        free(c->unique_name);
        free(c->qube);
        free(c);
        return NULL;
}

static Caller *caller_get(Manager *m, const char *sender, bool create) {
        Caller *c = hashmap_get(m->callers, sender);
        if (c || !create)
                return c;
        c = new0(Caller, 1);
        if (!c)
                return NULL;
        c->unique_name = strdup(sender);
        if (!c->unique_name || hashmap_put(m->callers, c->unique_name, c) < 0)
                return caller_free(c);
        return c;
}

/* A caller is a bus peer: its unique name, or on a private (peer-to-peer) connection, which has
 * no names, that connection's description. */
static const char *caller_key(sd_bus_message *msg) {
        const char *key = sd_bus_message_get_sender(msg);
        if (!key)
                (void) sd_bus_get_description(sd_bus_message_get_bus(msg), &key);
        return key;
}

void auth_forget_caller(Manager *m, const char *unique_name) {
        caller_free(hashmap_remove(m->callers, unique_name));
}

static int sender_uid(Manager *m, sd_bus_message *msg, uid_t *ret) {
        const char *sender = sd_bus_message_get_sender(msg);
        Caller *c;
        int r;

        if (!sender) {
                /* a direct (peer-to-peer) connection has no sender: it is whoever opened it */
                _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
                r = sd_bus_get_owner_creds(sd_bus_message_get_bus(msg), SD_BUS_CREDS_EUID, &creds);
                if (r < 0)
                        return r;
                return sd_bus_creds_get_euid(creds, ret);
        }
        c = caller_get(m, sender, true);
        if (!c)
                return -ENOMEM;
        if (!c->uid_known) {
                /* Asked once per peer and cached until the peer leaves the bus (NameOwnerChanged). */
                _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
                r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
                if (r < 0)
                        return r;
                r = sd_bus_creds_get_euid(creds, &c->uid);
                if (r < 0)
                        return r;
                c->uid_known = true;
        }
        *ret = c->uid;
        return 0;
}

static bool uid_trusted(Manager *m, uid_t uid) {
        return uid == 0 || uid == m->own_uid;
}

int auth_check(Manager *m, sd_bus_message *msg, AuthAction action, Domain *d, QError *e) {
        uid_t uid;
        int r;

        if (action == AUTH_READ)
                return 1;
        r = sender_uid(m, msg, &uid);
        if (r < 0) {
                log_warning_errno(r, "Cannot determine the caller's user: %m");
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: the caller could not be identified");
        }
        if (uid_trusted(m, uid))
                return 1;
        return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied");
}

bool auth_caller_wants_error_details(Manager *m, sd_bus_message *msg) {
        const char *sender = caller_key(msg);
        Caller *c = sender ? caller_get(m, sender, false) : NULL;
        return c && c->error_details;
}

int auth_enable_error_details(Manager *m, sd_bus_message *msg) {
        const char *sender = caller_key(msg);
        Caller *c = sender ? caller_get(m, sender, true) : NULL;
        if (!c)
                return sender ? -ENOMEM : -EINVAL;
        c->error_details = true;
        return 0;
}

const char *auth_caller_qube(Manager *m, sd_bus_message *msg) {
        const char *sender = caller_key(msg);
        Caller *c = sender ? caller_get(m, sender, false) : NULL;
        return c && c->qube ? c->qube : "dom0";
}

int auth_set_caller_identity(Manager *m, sd_bus_message *msg, const char *qube, QError *e) {
        const char *sender = caller_key(msg);
        Domain *d;
        uid_t uid;
        int r;

        r = sender_uid(m, msg, &uid);
        if (r < 0 || !uid_trusted(m, uid))
                return qerror_set(e, QERR_NOT_AUTHORIZED,
                                  "Access denied: only a trusted user may act on behalf of a qube");
        if (!sender)
                return qerror_set(e, QERR_PROTOCOL, "A caller identity needs an identifiable connection");
        r = app_resolve_domain(m->app, qube, &d, e);
        if (r < 0)
                return r;
        Caller *c = caller_get(m, sender, true);
        if (!c)
                return -ENOMEM;
        if (c->qube)
                return qerror_set(e, QERR_PROTOCOL, "The caller identity of this connection is already set");
        c->qube = strdup(d->name);
        c->error_details = true;
        return c->qube ? 0 : -ENOMEM;
}
