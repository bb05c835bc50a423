/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "auth.h"

#include <inttypes.h>
#include <limits.h>
#include <time.h>

#include "bus-error.h"
#include "util/log.h"
#include "util/strbuf.h"

/* Who may do what:
 *
 *  - root and the daemon's own user: everything, without asking anyone (the fast path; the
 *    qrexec shim is one of them, and the identity it declares is then checked by the qrexec
 *    policy and the per-caller rules, not here);
 *  - any other local user on the bus: polkit, one action per kind of operation, with the
 *    qube's name and tags as details so that rules can hand a user the qubes tagged for them;
 *  - an untrusted peer on a direct connection (no bus name, so no polkit subject): refused.
 *
 * Polkit is asked asynchronously, in the way systemd does it: the first run of a method finds no
 * verdict, sends CheckAuthorization, keeps a reference to the call and returns 0 ("answered
 * later") before touching any state. When polkit answers, the verdict is cached for the peer
 * and the call is put back into the bus's read queue (sd_bus_enqueue_for_read), so the handler
 * runs again from the start and this time finds the verdict. Handlers must therefore call the
 * gate before changing anything, which they do. */

#define POLKIT_SERVICE "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_FLAG_ALLOW_USER_INTERACTION 1u

/* An allowed verdict holds this long for the same peer, action, qube and tags (a change of
 * tags is a different key); a refusal only serves the calls that waited for it, and at most
 * REFUSAL_USEC (a caller that retries, perhaps now allowing interaction, asks again). */
#define ALLOWED_USEC (30ULL * 1000000ULL)
#define REFUSAL_USEC (5ULL * 1000000ULL)
#define INTERACTIVE_TIMEOUT_USEC (300ULL * 1000000ULL)

/* Bounds on what one peer, and everyone, can make the daemon hold. */
#define QUERIES_PER_CALLER_MAX 16u
#define HELD_PER_CALLER_MAX 64u
#define QUERIES_MAX 256u
#define VERDICTS_PER_CALLER_MAX 512u /* plus two per qube: what a user sees needs one per qube */

static const char *const action_ids[_AUTH_ACTION_MAX] = {
        [AUTH_READ] = "org.qubes_os.admin.read",         [AUTH_LIFECYCLE] = "org.qubes_os.admin.lifecycle",
        [AUTH_CHANGE] = "org.qubes_os.admin.change",     [AUTH_CREATE_REMOVE] = "org.qubes_os.admin.create-remove",
        [AUTH_STORAGE] = "org.qubes_os.admin.storage",   [AUTH_DEVICES] = "org.qubes_os.admin.devices",
        [AUTH_FIREWALL] = "org.qubes_os.admin.firewall", [AUTH_BACKUP] = "org.qubes_os.admin.backup",
        [AUTH_POLICY] = "org.qubes_os.admin.policy",     [AUTH_READ_ALL] = "org.qubes_os.admin.read-all",
};

const char *auth_action_id(AuthAction action) {
        return action >= 0 && action < _AUTH_ACTION_MAX ? action_ids[action] : NULL;
}

typedef struct AuthVerdict {
        char *key;
        QubesErrorCode error; /* meaningful when !allowed */
        bool allowed;
        char *message; /* for a refusal */
        uint64_t expires;
        unsigned uses; /* a refusal: calls still to be answered with it */
} AuthVerdict;

typedef struct AuthQuery {
        char *key;
        Manager *m;
        Caller *caller;
        sd_bus *bus;
        sd_bus_slot *slot;
        sd_bus_message **held;
        size_t n_held;
        char *cancel_id; /* interactive queries: for CancelCheckAuthorization */
        bool view;       /* a question about what the peer sees: a refusal is kept too */
} AuthQuery;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static AuthVerdict *verdict_free(AuthVerdict *v) {
        if (!v)
                return NULL;
        free(v->key);
        free(v->message);
        free(v);
        return NULL;
}

static void verdicts_clear(Caller *c) {
        size_t i = 0;
        void *v;
        while (hashmap_iterate(c->verdicts, &i, NULL, &v))
                verdict_free(v);
        c->verdicts = hashmap_free(c->verdicts);
}

/* The query leaves its caller's map; held calls get no answer (used when the peer is gone or
 * the daemon stops). */
static AuthQuery *query_free(AuthQuery *q) {
        if (!q)
                return NULL;
        if (q->slot && q->cancel_id) {
                /* an interactive prompt may be on screen for a peer that no longer waits */
                (void) sd_bus_call_method_async(q->bus, NULL, POLKIT_SERVICE, POLKIT_PATH, POLKIT_INTERFACE,
                                                "CancelCheckAuthorization", NULL, NULL, "s", q->cancel_id);
        }
        sd_bus_slot_unref(q->slot);
        for (size_t i = 0; i < q->n_held; i++)
                sd_bus_message_unref(q->held[i]);
        if (q->caller)
                q->caller->n_held -= q->n_held;
        if (q->m)
                q->m->auth_queries--;
        free(q->held);
        free(q->cancel_id);
        sd_bus_unref(q->bus);
        free(q->key);
        free(q);
        return NULL;
}

Caller *caller_free(Caller *c) {
        if (!c)
                return NULL;
        size_t i = 0;
        void *v;
        while (hashmap_iterate(c->queries, &i, NULL, &v)) {
                AuthQuery *q = v;
                query_free(q);
        }
        hashmap_free(c->queries);
        verdicts_clear(c);
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

/* Answers about what a user sees are shared by all that user's connections (a Caller keyed
 * "uid:N", holding only verdicts): a new client of the same user finds them. */
static Caller *uid_caller(Manager *m, const Caller *c, bool create) {
        char key[32];
        if (!c || !c->uid_known)
                return NULL;
        snprintf(key, sizeof key, "uid:%u", (unsigned) c->uid);
        return caller_get(m, key, create);
}

void auth_forget_caller(Manager *m, const char *unique_name) {
        caller_free(hashmap_remove(m->callers, unique_name));
}

static int sender_uid(Manager *m, sd_bus_message *msg, uid_t *ret) {
        const char *sender = sd_bus_message_get_sender(msg);
        Caller *c;
        int r;

        if (!sender) {
                /* a direct (peer-to-peer) connection has no sender: it is whoever opened it, and
                 * its description stands for it (its subscriptions need the uid later) */
                _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
                r = sd_bus_get_owner_creds(sd_bus_message_get_bus(msg), SD_BUS_CREDS_EUID, &creds);
                if (r < 0)
                        return r;
                r = sd_bus_creds_get_euid(creds, ret);
                if (r < 0)
                        return r;
                c = caller_get(m, manager_caller_key(msg), true);
                if (c) {
                        c->uid = *ret;
                        c->uid_known = true;
                }
                return 0;
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

bool auth_uid_trusted(Manager *m, uid_t uid) {
        if (uid == 0 || uid == m->own_uid)
                return true;
        for (size_t i = 0; i < m->config.n_trusted_uids; i++)
                if (m->config.trusted_uids[i] == uid)
                        return true;
        return false;
}

/* ---- verdicts --------------------------------------------------------------------------- */

static char *tags_string(Domain *d) {
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_free_ const char **tags = NULL;

        if (!d)
                return strdup("");
        tags = domain_tags_sorted(d);
        if (!tags)
                return NULL;
        for (const char **t = tags; *t; t++) {
                if (t != tags)
                        strbuf_append_c(&b, ' ');
                strbuf_append(&b, *t);
        }
        if (b.oom)
                return NULL;
        return b.buf ? strbuf_steal(&b) : strdup("");
}

/* Tags and qube names cannot hold a newline, so the key is unambiguous. */
static char *verdict_key(AuthAction action, Domain *d, const char *tags, bool interactive) {
        char *k = NULL;
        if (asprintf(&k, "%s\n%s\n%s\n%c", action_ids[action], d ? d->name : "", tags, interactive ? 'i' : '-') < 0)
                return NULL;
        return k;
}

/* A usable verdict for key (NULL if none); a refusal is used up as it is read. */
static AuthVerdict *verdict_take(Caller *c, const char *key) {
        AuthVerdict *v = hashmap_get(c->verdicts, key);
        if (!v)
                return NULL;
        if (v->expires <= now_usec() || (!v->allowed && v->uses == 0)) {
                verdict_free(hashmap_remove(c->verdicts, key));
                return NULL;
        }
        if (!v->allowed)
                v->uses--;
        return v;
}

static size_t verdicts_max(Manager *m) {
        return VERDICTS_PER_CALLER_MAX + 2 * hashmap_size(m->app->domains);
}

static void verdicts_prune(Caller *c, size_t max) {
        uint64_t now = now_usec();
        _cleanup_free_ const char **keys = hashmap_sorted_keys(c->verdicts);

        if (!keys) {
                verdicts_clear(c);
                return;
        }
        for (const char **k = keys; *k; k++) {
                AuthVerdict *v = hashmap_get(c->verdicts, *k);
                if (v->expires <= now || (!v->allowed && v->uses == 0))
                        verdict_free(hashmap_remove(c->verdicts, *k));
        }
        if (hashmap_size(c->verdicts) >= max)
                verdicts_clear(c);
}

/* lasting: a refusal is kept as long as an allowance (answers about what a peer sees: asked
 * without interaction, so asking again would give the same answer) */
static int verdict_store(Manager *m, Caller *c, const char *key, bool allowed, QubesErrorCode error,
                         const char *message, unsigned uses, bool lasting) {
        AuthVerdict *v;

        if (!c->verdicts) {
                c->verdicts = hashmap_new();
                if (!c->verdicts)
                        return -ENOMEM;
        }
        verdict_free(hashmap_remove(c->verdicts, key));
        if (hashmap_size(c->verdicts) >= verdicts_max(m))
                verdicts_prune(c, verdicts_max(m));
        if (!c->verdicts) {
                c->verdicts = hashmap_new();
                if (!c->verdicts)
                        return -ENOMEM;
        }
        v = new0(AuthVerdict, 1);
        if (!v)
                return -ENOMEM;
        v->key = strdup(key);
        v->message = message ? strdup(message) : NULL;
        v->allowed = allowed;
        v->error = error;
        v->uses = lasting ? UINT_MAX : uses;
        v->expires = now_usec() + (allowed || lasting ? ALLOWED_USEC : REFUSAL_USEC);
        if (!v->key || (message && !v->message) || hashmap_put(c->verdicts, v->key, v) < 0) {
                verdict_free(v);
                return -ENOMEM;
        }
        return 0;
}

static int verdict_apply(const AuthVerdict *v, QError *e) {
        if (v->allowed)
                return 1;
        return qerror_set(e, v->error, "%s", v->message ?: "Access denied");
}

/* ---- the polkit query ------------------------------------------------------------------- */

static void release_held(AuthQuery *q) {
        for (size_t i = 0; i < q->n_held; i++) {
                sd_bus_message *msg = q->held[i];
                /* the handler runs again from its first argument and finds the verdict */
                int r = sd_bus_message_rewind(msg, true);
                if (r >= 0)
                        r = sd_bus_enqueue_for_read(q->bus, msg);
                if (r < 0) {
                        log_warning_errno(r, "Cannot resume a call after its authorization: %m");
                        (void) sd_bus_reply_method_errno(msg, -r, NULL);
                }
        }
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AuthQuery *q = userdata;
        Caller *c = q->caller;
        const sd_bus_error *err = sd_bus_message_get_error(reply);
        QubesErrorCode code = QERR_NOT_AUTHORIZED;
        const char *message = "Access denied";
        int authorized = 0, challenge = 0;
        bool dismissed = false;
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        if (err) {
                log_warning("polkit did not answer for %s (%s): %s: %s", c->unique_name, q->key, err->name,
                            strempty(err->message));
                message = "Access denied: the authorization service is not available";
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r >= 0)
                        r = sd_bus_message_enter_container(reply, 'a', "{ss}");
                if (r >= 0) {
                        const char *k, *val;
                        while ((r = sd_bus_message_read(reply, "{ss}", &k, &val)) > 0)
                                if (streq(k, "polkit.dismissed") && streq(val, "true"))
                                        dismissed = true;
                }
                if (r < 0) {
                        log_warning_errno(r, "Cannot parse polkit's answer: %m");
                        authorized = 0;
                        message = "Access denied: the authorization service gave an unreadable answer";
                } else if (!authorized && dismissed) {
                        code = QERR_NOT_AUTHORIZED_DISMISSED;
                        message = "Access denied: the authentication request was dismissed";
                } else if (!authorized && challenge) {
                        code = QERR_NOT_AUTHORIZED_CAN_OBTAIN;
                        message = "Interactive authentication required";
                }
        }

        /* The query leaves the map first: the verdict store and the re-runs see it gone. */
        hashmap_remove(c->queries, q->key);
        r = verdict_store(q->m, c, q->key, authorized, code, message, (unsigned) q->n_held, q->view);
        Caller *u = q->view && r >= 0 ? uid_caller(q->m, c, true) : NULL;
        if (u)
                r = verdict_store(q->m, u, q->key, authorized, code, message, 0, true);
        if (r < 0) {
                log_oom();
                for (size_t i = 0; i < q->n_held; i++)
                        (void) sd_bus_reply_method_errno(q->held[i], ENOMEM, NULL);
        } else
                release_held(q);
        Manager *m = q->m;
        _cleanup_free_ char *peer = q->view ? strdup(c->unique_name) : NULL;
        query_free(q);
        /* subscribed events that waited for this answer can go now */
        if (peer && m->view_answered)
                m->view_answered(m, peer);
        return 0;
}

static int query_start(Manager *m, Caller *c, sd_bus *bus, bool interactive, AuthAction action, Domain *d,
                       const char *tags, const char *key, AuthQuery **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        AuthQuery *q;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, POLKIT_SERVICE, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s", c->unique_name,
                                  action_ids[action]);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(call, 'a', "{ss}");
        if (r < 0)
                return r;
        if (d) {
                r = sd_bus_message_append(call, "{ss}{ss}", "qube", d->name, "tags", tags);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(call);
        if (r < 0)
                return r;

        q = new0(AuthQuery, 1);
        if (!q)
                return -ENOMEM;
        q->m = m;
        m->auth_queries++;
        q->bus = sd_bus_ref(bus);
        q->key = strdup(key);
        if (!q->key) {
                query_free(q);
                return -ENOMEM;
        }
        if (interactive && asprintf(&q->cancel_id, "qubesd-%" PRIu64, ++m->auth_counter) < 0) {
                q->cancel_id = NULL;
                query_free(q);
                return -ENOMEM;
        }
        r = sd_bus_message_append(call, "us", interactive ? POLKIT_FLAG_ALLOW_USER_INTERACTION : 0u,
                                  strempty(q->cancel_id));
        if (r >= 0)
                r = sd_bus_call_async(bus, &q->slot, call, on_polkit_reply, q,
                                      interactive ? INTERACTIVE_TIMEOUT_USEC : 0);
        if (r < 0) {
                query_free(q);
                return r;
        }
        if (!c->queries) {
                c->queries = hashmap_new();
                if (!c->queries) {
                        query_free(q);
                        return -ENOMEM;
                }
        }
        if (hashmap_put(c->queries, q->key, q) < 0) {
                query_free(q);
                return -ENOMEM;
        }
        q->caller = c;
        *ret = q;
        return 0;
}

static int query_hold(AuthQuery *q, sd_bus_message *msg) {
        sd_bus_message **h = realloc(q->held, (q->n_held + 1) * sizeof(*h));
        if (!h)
                return -ENOMEM;
        q->held = h;
        q->held[q->n_held++] = sd_bus_message_ref(msg);
        q->caller->n_held++;
        return 0;
}

/* Properties.Set is answered by sd-bus as soon as the setter returns: such a call cannot wait. */
static bool call_can_wait(sd_bus_message *msg) {
        return !sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Properties", "Set");
}

static int ask_polkit(Manager *m, sd_bus_message *msg, AuthAction action, Domain *d, QError *e) {
        const char *sender = sd_bus_message_get_sender(msg);
        bool interactive = sd_bus_message_get_allow_interactive_authorization(msg) > 0;
        _cleanup_free_ char *tags = NULL, *key = NULL, *other = NULL;
        AuthVerdict *v;
        AuthQuery *q;
        Caller *c;
        int r;

        c = caller_get(m, sender, true);
        tags = tags_string(d);
        key = tags ? verdict_key(action, d, tags, interactive) : NULL;
        other = tags ? verdict_key(action, d, tags, !interactive) : NULL;
        if (!c || !key || !other)
                return -ENOMEM;

        v = verdict_take(c, key);
        if (v)
                return verdict_apply(v, e);
        /* an answer given with or without interaction allowed serves both, if it allows */
        v = hashmap_get(c->verdicts, other);
        if (v && v->allowed && v->expires > now_usec())
                return 1;

        if (!call_can_wait(msg))
                return 0;

        q = hashmap_get(c->queries, key);
        if (!q) {
                if (hashmap_size(c->queries) >= QUERIES_PER_CALLER_MAX || m->auth_queries >= QUERIES_MAX)
                        return qerror_set(e, QERR_NOT_AUTHORIZED,
                                          "Access denied: too many authorization requests in flight");
                r = query_start(m, c, sd_bus_message_get_bus(msg), interactive, action, d, tags, key, &q);
                if (r < 0) {
                        log_warning_errno(r, "Cannot ask polkit: %m");
                        return qerror_set(e, QERR_NOT_AUTHORIZED,
                                          "Access denied: the authorization service cannot be asked");
                }
        } else if (c->n_held >= HELD_PER_CALLER_MAX)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: too many calls waiting for authorization");
        r = query_hold(q, msg);
        if (r < 0) {
                if (q->n_held == 0) {
                        hashmap_remove(c->queries, q->key);
                        query_free(q);
                }
                return r;
        }
        return 0;
}

int auth_check(Manager *m, sd_bus_message *msg, AuthAction action, Domain *d, QError *e) {
        uid_t uid;
        int r;

        if (action < 0 || action >= _AUTH_ACTION_MAX)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied");
        r = sender_uid(m, msg, &uid);
        if (r < 0) {
                log_warning_errno(r, "Cannot determine the caller's user: %m");
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: the caller could not be identified");
        }
        if (auth_uid_trusted(m, uid))
                return 1;
        if (!sd_bus_message_get_sender(msg))
                /* a direct connection has no bus name for polkit to look at */
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied");
        r = ask_polkit(m, msg, action, d, e);
        if (r == -ENOMEM)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: out of memory");
        return r;
}

int auth_enable_error_details(Manager *m, sd_bus_message *msg) {
        const char *sender = manager_caller_key(msg);
        Caller *c = sender ? caller_get(m, sender, true) : NULL;
        if (!c)
                return sender ? -ENOMEM : -EINVAL;
        c->error_details = true;
        return 0;
}

const char *auth_caller_qube(Manager *m, sd_bus_message *msg) {
        const char *sender = manager_caller_key(msg);
        Caller *c = sender ? caller_get(m, sender, false) : NULL;
        return c && c->qube ? c->qube : "dom0";
}

int auth_set_caller_identity(Manager *m, sd_bus_message *msg, const char *qube, QError *e) {
        const char *sender = manager_caller_key(msg);
        Domain *d;
        uid_t uid;
        int r;

        r = sender_uid(m, msg, &uid);
        if (r < 0 || !auth_uid_trusted(m, uid))
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

/* ---- what a local user sees ------------------------------------------------------------------
 *
 * Root, the daemon's own user and the trusted uids see every qube (the qrexec identities they
 * declare are filtered by caller-filter.c). Any other local user on the bus sees a qube when
 * polkit lets them read it: org.qubes_os.admin.read-all answers for every qube at once (the
 * shipped rules grant it to root and the group "qubes"); without it, org.qubes_os.admin.read is
 * asked per qube, with the details qube= and tags=, before the listing is answered. A qube the
 * user does not see is absent from listings, GetManagedObjects, Introspect and subscribed events,
 * and its objects answer UnknownObject. The answers (refusals too) are kept ALLOWED_USEC per
 * peer; a change of tags is a new question. A user who may not read at all is not shown
 * anything and is refused by the methods themselves. */

static int peer_restricted(Manager *m, sd_bus_message *msg) {
        uid_t uid;
        int r;

        if (!sd_bus_message_get_sender(msg))
                return 0; /* direct connections: trusted peers only (private-bus.c) */
        r = sender_uid(m, msg, &uid);
        if (r < 0)
                return r;
        return !auth_uid_trusted(m, uid);
}

/* 1 allowed, 0 refused, -ENOENT not known (or no longer) */
static int verdict_peek(Caller *c, const char *key) {
        AuthVerdict *v = c ? hashmap_get(c->verdicts, key) : NULL;
        if (!v || v->expires <= now_usec())
                return -ENOENT;
        return v->allowed;
}

/* The answer to a non-interactive question, or -ENOENT with *wait set to the query that will
 * bring it (started here if needed), or -EBUSY when no more queries may start now. */
static int view_ask(Manager *m, Caller *c, sd_bus *bus, AuthAction action, Domain *d, AuthQuery **wait) {
        _cleanup_free_ char *tags = tags_string(d);
        _cleanup_free_ char *key = tags ? verdict_key(action, d, tags, false) : NULL;
        AuthQuery *q;
        int r;

        if (!key)
                return -ENOMEM;
        Caller *u = uid_caller(m, c, false);
        r = verdict_peek(c, key);
        if (r < 0)
                r = verdict_peek(u, key);
        if (r >= 0)
                return r;
        /* An answer that aged still serves (one listing more) while the question is asked again
         * in the background: a user's listing of hundreds of qubes waits for polkit only the
         * first time. (Only what is seen; every action is still asked about afresh.) */
        AuthVerdict *old = hashmap_get(c->verdicts, key) ?: (u ? hashmap_get(u->verdicts, key) : NULL);
        q = hashmap_get(c->queries, key);
        if (!q) {
                if (hashmap_size(c->queries) >= QUERIES_PER_CALLER_MAX || m->auth_queries >= QUERIES_MAX)
                        return old ? old->allowed : -EBUSY;
                r = query_start(m, c, bus, false, action, d, tags, key, &q);
                if (r < 0)
                        return r;
        }
        q->view = true;
        if (old)
                return old->allowed;
        *wait = q;
        return -ENOENT;
}

static int view_ask_all(Manager *m, Caller *c, sd_bus *bus, Domain *only, AuthQuery **wait) {
        bool pending = false;
        int r;

        /* someone who may not read at all sees nothing: no question per qube */
        r = view_ask(m, c, bus, AUTH_READ, NULL, wait);
        if (r <= 0)
                return r;
        r = view_ask(m, c, bus, AUTH_READ_ALL, NULL, wait);
        if (r != 0)
                return r;
        if (only)
                return view_ask(m, c, bus, AUTH_READ, only, wait);
        size_t i = 0;
        void *v;
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                r = view_ask(m, c, bus, AUTH_READ, v, wait);
                if (r == -ENOENT || r == -EBUSY)
                        pending = true;
                else if (r < 0)
                        return r;
        }
        return pending ? -ENOENT : 1;
}

int auth_view_prepare(Manager *m, sd_bus_message *msg, Domain *d, QError *e) {
        AuthQuery *wait = NULL;
        Caller *c;
        int r;

        r = peer_restricted(m, msg);
        if (r < 0)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: the caller could not be identified");
        if (r == 0)
                return 1;
        c = caller_get(m, sd_bus_message_get_sender(msg), true);
        if (!c)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: out of memory");
        r = view_ask_all(m, c, sd_bus_message_get_bus(msg), d, &wait);
        if (r >= 0)
                return 1;
        if (r != -ENOENT && r != -EBUSY) {
                log_warning_errno(r, "Cannot ask polkit: %m");
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: the authorization service cannot be asked");
        }
        if (!wait) {
                /* the limit on queries in flight is reached: wait for one of this peer's */
                size_t i = 0;
                void *v;
                if (hashmap_iterate(c->queries, &i, NULL, &v))
                        wait = v;
        }
        if (!wait)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: too many authorization requests in flight");
        if (c->n_held >= HELD_PER_CALLER_MAX)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: too many calls waiting for authorization");
        r = query_hold(wait, msg);
        if (r < 0)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: out of memory");
        return 0;
}

/* Like verdict_peek, but an aged answer counts (view_ask has asked again in the background). */
static int verdict_peek_any(Manager *m, Caller *c, const char *key) {
        AuthVerdict *v = c ? hashmap_get(c->verdicts, key) : NULL;
        Caller *u = v ? NULL : uid_caller(m, c, false);
        if (u)
                v = hashmap_get(u->verdicts, key);
        return v ? v->allowed : -ENOENT;
}

static int peer_sees(Manager *m, Caller *c, Domain *d) {
        _cleanup_free_ char *tags = NULL, *key = NULL;
        int r;

        key = verdict_key(AUTH_READ, NULL, "", false);
        r = key ? verdict_peek_any(m, c, key) : -ENOMEM;
        if (r <= 0)
                return r;
        free(key);
        key = verdict_key(AUTH_READ_ALL, NULL, "", false);
        r = key ? verdict_peek_any(m, c, key) : -ENOMEM;
        if (r != 0 || !d)
                return r;
        free(key);
        tags = tags_string(d);
        key = tags ? verdict_key(AUTH_READ, d, tags, false) : NULL;
        return key ? verdict_peek_any(m, c, key) : -ENOMEM;
}

bool auth_sees(Manager *m, sd_bus_message *msg, Domain *d) {
        if (!msg || peer_restricted(m, msg) == 0)
                return true;
        return peer_sees(m, caller_get(m, sd_bus_message_get_sender(msg), false), d) > 0;
}

bool auth_sees_all(Manager *m, sd_bus_message *msg) {
        if (!msg || peer_restricted(m, msg) == 0)
                return true;
        return peer_sees(m, caller_get(m, sd_bus_message_get_sender(msg), false), NULL) > 0;
}

int auth_may_read(Manager *m, sd_bus_message *msg) {
        _cleanup_free_ char *key = NULL;
        if (!msg || peer_restricted(m, msg) == 0)
                return 1;
        key = verdict_key(AUTH_READ, NULL, "", false);
        return key ? verdict_peek_any(m, caller_get(m, sd_bus_message_get_sender(msg), false), key) : -ENOMEM;
}

int auth_peer_sees(Manager *m, const char *unique_name, Domain *d) {
        Caller *c = caller_get(m, unique_name, false);
        AuthQuery *wait = NULL;
        int r;

        if (!c || !c->uid_known)
                return 0;
        if (auth_uid_trusted(m, c->uid))
                return 1;
        /* not known (a new qube, new tags): asked in the background; aged: the old answer, and
         * asked again. A system event needs only leave to read the system. */
        r = d ? view_ask_all(m, c, m->bus, d, &wait) : view_ask(m, c, m->bus, AUTH_READ, NULL, &wait);
        return r == -EBUSY ? -ENOENT : r;
}

/* Subscribers who get no broadcast copies of what they see: local users who do not see every
 * qube (the bus policy lets only root and the group qubes, who do, receive broadcasts). */
bool auth_peer_needs_copies(Manager *m, const char *unique_name, Domain *d) {
        Caller *c = caller_get(m, unique_name, false);

        if (!c || !c->uid_known || auth_uid_trusted(m, c->uid))
                return false;
        return peer_sees(m, c, NULL) == 0 && peer_sees(m, c, d) > 0;
}

/* Manager methods that list qubes or take qube names: what the caller sees is asked about first. */
static const char *const manager_listings[] = {
        "ListDomains", "ListDomainsText", "GetAllDomainProperties", "SubscribeEvents", "GetSystemInfo", "GetDomain",
        "StartQubes",  "ShutdownQubes",   "CreateDisposable",       "ListVolumes",     "GetVolume",
};

static bool is_listing(sd_bus_message *msg, const char *path) {
        if (streq(path, QUBESD_ROOT_PATH)) {
                if (sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"))
                        return true;
                for (size_t i = 0; i < ELEMENTSOF(manager_listings); i++)
                        if (sd_bus_message_is_method_call(msg, QUBESD_IFACE_MANAGER, manager_listings[i]))
                                return true;
                return false;
        }
        /* a pool's volumes are listed by their qubes' visibility (storage-dbus.c) */
        if (startswith(path, QUBESD_ROOT_PATH "/pool/"))
                return sd_bus_message_is_method_call(msg, "org.qubes_os.Admin1.Pool", "ListVolumes");
        /* a job is seen by who sees all its qubes (lifecycle-dbus.c) */
        if (startswith(path, QUBESD_ROOT_PATH "/job"))
                return true;
        /* a device is seen by who sees its backend qube (devices-dbus.c) */
        if (startswith(path, QUBESD_ROOT_PATH "/device"))
                return true;
        return streq(path, QUBESD_DOMAIN_PREFIX) &&
               sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Introspectable", "Introspect");
}

static int view_filter(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *path = sd_bus_message_get_path(msg);
        Domain *d = NULL;
        int r;

        uint8_t type = 0;
        if (sd_bus_message_get_type(msg, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL || !path ||
            !startswith(path, QUBESD_ROOT_PATH) || peer_restricted(m, msg) == 0)
                return 0;
        if (!is_listing(msg, path)) {
                d = domain_of_bus_subpath(m->app, path);
                if (!d)
                        return 0;
        }
        r = auth_view_prepare(m, msg, d, &e);
        if (r < 0)
                return bus_reply_qerror(m, msg, &e), 1;
        if (r == 0)
                return 1; /* held: comes back through this filter when polkit has answered */
        if (!d || auth_sees(m, msg, d))
                return 0;
        if (auth_may_read(m, msg) > 0) {
                /* the qube exists only for those who see it */
                (void) sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_UNKNOWN_OBJECT, "Unknown object '%s'.", path);
                return 1;
        }
        /* Someone who may not read at all: the qube's methods refuse with the right error; its
         * properties and interfaces, which sd-bus answers without asking us, are refused here. */
        if (sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Properties", "Get") ||
            sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Properties", "GetAll") ||
            sd_bus_message_is_method_call(msg, "org.freedesktop.DBus.Introspectable", "Introspect")) {
                qerror_set(&e, QERR_NOT_AUTHORIZED, "Access denied");
                return bus_reply_qerror(m, msg, &e), 1;
        }
        return 0;
}

int auth_add_view_filter(Manager *m) {
        return sd_bus_add_filter(m->bus, NULL, view_filter, m);
}

int auth_resolve_domain(Manager *m, sd_bus_message *msg, const char *ref, Domain **ret, QError *e) {
        Domain *d;
        int r = app_resolve_domain(m->app, ref, &d, e);
        if (r < 0)
                return r;
        if (!auth_sees(m, msg, d))
                return app_set_domain_not_found(e, ref);
        *ret = d;
        return 0;
}

int auth_peer_saw(Manager *m, const char *unique_name, const char *name) {
        Caller *c = caller_get(m, unique_name, false);
        _cleanup_free_ char *prefix = NULL;
        size_t i = 0;
        void *v;
        int r;

        if (!c || !c->uid_known)
                return 0;
        if (auth_uid_trusted(m, c->uid))
                return 1;
        r = peer_sees(m, c, NULL); /* read, then read-all */
        if (r != 0)
                return r == -ENOENT ? 0 : r;
        if (asprintf(&prefix, "%s\n%s\n", action_ids[AUTH_READ], name) < 0)
                return -ENOMEM;
        for (Caller *k = c; k; k = k == c ? uid_caller(m, c, false) : NULL)
                for (i = 0; hashmap_iterate(k->verdicts, &i, NULL, &v);) {
                        AuthVerdict *verdict = v;
                        if (verdict->allowed && startswith(verdict->key, prefix))
                                return 1;
                }
        return 0;
}
