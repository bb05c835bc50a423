/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "auth.h"

#include <inttypes.h>
#include <limits.h>
#include <systemd/sd-login.h>
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
        char *cancel_id;     /* interactive queries: for CancelCheckAuthorization */
        char *subject;       /* the bus peer asked about */
        uint64_t generation; /* polkit's rules as of the question (see on_polkit_changed) */
        bool view;           /* a question about what the peer sees: a refusal is kept too */
} AuthQuery;

/* Bumped when polkit says its rules or actions changed: answers to questions asked before are
 * not kept (the calls waiting for them ask again). */
static uint64_t generation;

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
        free(q->subject);
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
        free(c->group);
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

/* Answers about what a user sees are shared by the connections of that user in the same login
 * session (see "what a local user sees" below): the group Caller of a peer, NULL for trusted
 * peers and peers not identified yet. */
static Caller *group_of(Manager *m, const Caller *c) {
        return c && c->group ? hashmap_get(m->callers, c->group) : NULL;
}

/* The start time of a process as polkit reads it (/proc/PID/stat, field 22: clock ticks since
 * boot), or 0. */
static uint64_t process_start_time(pid_t pid) {
        char path[STRLEN("/proc//stat") + 12], buf[1024];
        unsigned long long start = 0;
        _cleanup_fclose_ FILE *f = NULL;
        const char *p;

        (void) snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f || !fgets(buf, sizeof buf, f))
                return 0;
        /* after the command's closing parenthesis: state is field 3, start time field 22 */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                         &start) != 1)
                return 0;
        return start;
}

/* The peer's uid is known (from the bus) and pid (0: not known): the group it belongs to. The
 * session is the one polkit finds for the process (sd_pid_get_session); a process in no session
 * is grouped with the user's other processes in no session. */
static void caller_identify(Manager *m, Caller *c, uid_t uid, pid_t pid) {
        _cleanup_free_ char *session = NULL, *key = NULL;

        c->uid = uid;
        c->uid_known = true;
        if (c->group || auth_uid_trusted(m, uid) || c->unique_name[0] != ':')
                return;
        if (pid > 0) {
                c->pid = pid;
                c->start_time = process_start_time(pid);
        }
        if (pid <= 0 || sd_pid_get_session(pid, &session) < 0 || !session || strchr(session, '\n'))
                session = mfree(session);
        if (asprintf(&key, "view:%u:%s", (unsigned) uid, session ?: "-") < 0)
                return;
        Caller *g = caller_get(m, key, true);
        if (!g)
                return;
        g->n_peers++;
        c->group = TAKE_PTR(key);
}

static void verdicts_prune(Caller *c, size_t max);

/* A group whose peers all left keeps its answers while they hold (a user's next process finds
 * them); then it goes, at the next peer that leaves. */
static void groups_sweep(Manager *m) {
        _cleanup_free_ const char **keys = hashmap_sorted_keys(m->callers);
        for (const char **k = keys; k && *k; k++) {
                Caller *g = hashmap_get(m->callers, *k);
                if (!startswith(*k, "view:") || g->n_peers > 0 || hashmap_size(g->queries) > 0)
                        continue;
                verdicts_prune(g, SIZE_MAX);
                if (hashmap_size(g->verdicts) == 0)
                        caller_free(hashmap_remove(m->callers, *k));
        }
}

void auth_forget_caller(Manager *m, const char *unique_name) {
        Caller *c = hashmap_remove(m->callers, unique_name);
        Caller *g = group_of(m, c);

        if (g && --g->n_peers == 0)
                g->ahead = false;
        if (c && c->group)
                groups_sweep(m);
        caller_free(c);
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
                uid_t uid;
                pid_t pid = 0;
                r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID | SD_BUS_CREDS_AUGMENT, &creds);
                if (r < 0)
                        return r;
                r = sd_bus_creds_get_euid(creds, &uid);
                if (r < 0)
                        return r;
                (void) sd_bus_creds_get_pid(creds, &pid);
                caller_identify(m, c, uid, pid);
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

static int view_ask_all(Manager *m, Caller *g, const char *subject, sd_bus *bus, Domain *only, AuthQuery **wait);

/* The peers of group g hear that answers came (subscribed events that waited can go now). */
static void view_answered(Manager *m, Caller *g) {
        _cleanup_free_ char **peers = NULL;
        size_t n = 0, i = 0;
        void *v;

        if (!m->view_answered)
                return;
        peers = new0(char *, g->n_peers + 1);
        if (!peers)
                return;
        while (n < g->n_peers && hashmap_iterate(m->callers, &i, NULL, &v)) {
                Caller *c = v;
                if (c->group && streq(c->group, g->unique_name))
                        peers[n++] = strdup(c->unique_name);
        }
        for (i = 0; i < n; i++) {
                if (peers[i])
                        m->view_answered(m, peers[i]);
                free(peers[i]);
        }
}

/* A peer of group g, for asking ahead on its behalf (NULL if none). */
static const char *group_peer(Manager *m, Caller *g) {
        size_t i = 0;
        void *v;
        while (hashmap_iterate(m->callers, &i, NULL, &v)) {
                Caller *c = v;
                if (c->group && streq(c->group, g->unique_name))
                        return c->unique_name;
        }
        return NULL;
}

/* Ask the next questions for a group being asked for ahead (up to its bound in flight). */
static void ahead_continue(Manager *m, Caller *g, const char *subject) {
        AuthQuery *wait = NULL;
        /* refilled by halves: each refill walks every qube (polkitd answers one question at a
         * time, so half the bound in flight keeps it busy) */
        if (!g->ahead || hashmap_size(g->queries) > QUERIES_PER_CALLER_MAX / 2)
                return;
        if (!subject || view_ask_all(m, g, subject, m->bus, NULL, &wait) >= 0)
                g->ahead = false; /* all known (or nobody left to ask for) */
}

/* A view question failed (polkit absent, or the peer asked about left): nothing is kept, the
 * calls of that peer get the error, those of the group's other peers ask with themselves as
 * the subject. */
static void view_failed(AuthQuery *q) {
        _cleanup_qerror_ QError e = {};
        qerror_set(&e, QERR_NOT_AUTHORIZED, "Access denied: the authorization service cannot be asked");
        for (size_t i = 0; i < q->n_held; i++) {
                sd_bus_message *msg = q->held[i];
                const char *sender = sd_bus_message_get_sender(msg);
                if (sender && q->subject && !streq(sender, q->subject) && sd_bus_message_rewind(msg, true) >= 0 &&
                    sd_bus_enqueue_for_read(q->bus, msg) >= 0)
                        continue;
                (void) bus_reply_qerror(q->m, msg, &e);
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
        Manager *m = q->m;
        _cleanup_free_ char *subject = strdup(q->subject);
        if (q->generation != generation && !q->cancel_id) {
                /* asked under rules that changed since: the waiting calls ask again */
                release_held(q);
                query_free(q);
                if (c->ahead)
                        ahead_continue(m, c, subject);
                return 0;
        }
        if (q->view && err) {
                view_failed(q);
                query_free(q);
                c->ahead = false;
                return 0;
        }
        r = verdict_store(m, c, q->key, authorized, code, message, (unsigned) q->n_held, q->view);
        if (r < 0) {
                log_oom();
                for (size_t i = 0; i < q->n_held; i++)
                        (void) sd_bus_reply_method_errno(q->held[i], ENOMEM, NULL);
        } else
                release_held(q);
        bool view = q->view;
        query_free(q);
        if (view) {
                ahead_continue(m, c, subject);
                view_answered(m, c);
        }
        return 0;
}

/* A question about subject (a bus peer's unique name), kept in c (the peer's own Caller, or the
 * group for what it sees). */
static int query_start(Manager *m, Caller *c, const char *subject, sd_bus *bus, bool interactive, AuthAction action,
                       Domain *d, const char *tags, const char *key, bool view, AuthQuery **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        Caller *peer = view ? caller_get(m, subject, false) : NULL;
        AuthQuery *q;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, POLKIT_SERVICE, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r < 0)
                return r;
        if (peer && peer->uid_known && peer->pid > 0 && peer->start_time > 0)
                /* What a group sees: the peer's process, which polkitd checks against /proc
                 * (the pid, its start time and owner must match) without asking the bus who
                 * the name is, a round trip or two per question it answers one by one: a
                 * restricted user's first listing of 307 qubes 1.30-1.37 s -> 0.51-0.52 s (bench-view).
                 * Its user and session, all a group's answers depend on, are the bus name's. */
                r = sd_bus_message_append(call, "(sa{sv})s", "unix-process", 3, "pid", "u", (uint32_t) peer->pid,
                                          "start-time", "t", peer->start_time, "uid", "i", (int32_t) peer->uid,
                                          action_ids[action]);
        else
                r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s", subject,
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
        q->generation = generation;
        q->key = strdup(key);
        q->subject = strdup(subject);
        if (!q->key || !q->subject) {
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
        /* so does one about what the peer's group sees (same user, same session: the same
         * non-interactive question to polkit), a refusal only for a call that allows no interaction */
        v = group_of(m, c) ? hashmap_get(group_of(m, c)->verdicts, interactive ? other : key) : NULL;
        if (v && v->expires > now_usec() && (v->allowed || !interactive))
                return verdict_apply(v, e);

        if (!call_can_wait(msg))
                return 0;

        q = hashmap_get(c->queries, key);
        if (!q) {
                if (hashmap_size(c->queries) >= QUERIES_PER_CALLER_MAX || m->auth_queries >= QUERIES_MAX)
                        return qerror_set(e, QERR_NOT_AUTHORIZED,
                                          "Access denied: too many authorization requests in flight");
                r = query_start(m, c, c->unique_name, sd_bus_message_get_bus(msg), interactive, action, d, tags, key,
                                false, &q);
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
 * group: the peers of one uid in one login session (caller_identify), which polkit answers alike
 * as long as no rule looks at the process itself (docs/daemon.md gives the argument). They are
 * asked ahead, when a peer of the group appears on the bus (on_peer_appeared) or is found there
 * at start (on_names_listed), and dropped when polkit says its rules changed (on_polkit_changed).
 * A change of tags is a new question. A user who may not read at all is not shown anything and
 * is refused by the methods themselves. */

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

/* The answer to a non-interactive question about what group g sees, or -ENOENT with *wait set
 * to the query that will bring it (started here if needed, about subject, one of g's peers), or
 * -EBUSY when no more queries may start now. */
static int view_ask(Manager *m, Caller *g, const char *subject, sd_bus *bus, AuthAction action, Domain *d,
                    AuthQuery **wait) {
        _cleanup_free_ char *tags = tags_string(d);
        _cleanup_free_ char *key = tags ? verdict_key(action, d, tags, false) : NULL;
        AuthQuery *q;
        int r;

        if (!key)
                return -ENOMEM;
        r = verdict_peek(g, key);
        if (r >= 0)
                return r;
        /* An answer that aged still serves (one listing more) while the question is asked again
         * in the background: a user's listing of hundreds of qubes waits for polkit only the
         * first time. (Only what is seen; every action is still asked about afresh.) */
        AuthVerdict *old = hashmap_get(g->verdicts, key);
        q = hashmap_get(g->queries, key);
        if (!q) {
                if (hashmap_size(g->queries) >= QUERIES_PER_CALLER_MAX || m->auth_queries >= QUERIES_MAX)
                        return old ? old->allowed : -EBUSY;
                r = query_start(m, g, subject, bus, false, action, d, tags, key, true, &q);
                if (r < 0)
                        return r;
        }
        q->view = true;
        if (old)
                return old->allowed;
        *wait = q;
        return -ENOENT;
}

/* What the group sees, asked in the order that needs the fewest questions: may it read at all
 * (no: nothing more), may it read everything (yes: nothing more), and only then each qube. */
static int view_ask_all(Manager *m, Caller *g, const char *subject, sd_bus *bus, Domain *only, AuthQuery **wait) {
        bool pending = false;
        int r;

        r = view_ask(m, g, subject, bus, AUTH_READ, NULL, wait);
        if (r <= 0)
                return r;
        r = view_ask(m, g, subject, bus, AUTH_READ_ALL, NULL, wait);
        if (r != 0)
                return r;
        if (only)
                return view_ask(m, g, subject, bus, AUTH_READ, only, wait);
        size_t i = 0;
        void *v;
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                r = view_ask(m, g, subject, bus, AUTH_READ, v, wait);
                if (r == -ENOENT || r == -EBUSY)
                        pending = true;
                else if (r < 0)
                        return r;
        }
        return pending ? -ENOENT : 1;
}

/* A restricted peer appeared on the bus, or called: if nothing is known or being asked about
 * what its group sees, ask now, in the background, so that its first listing finds the answers
 * (or most of them). Asked about this peer (its bus name is polkit's subject). */
static void ask_ahead(Manager *m, Caller *c) {
        Caller *g = group_of(m, c);
        if (!g || g->ahead || hashmap_size(g->verdicts) > 0 || hashmap_size(g->queries) > 0)
                return;
        g->ahead = true;
        ahead_continue(m, g, c->unique_name);
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
        c = caller_get(m, sd_bus_message_get_sender(msg), false);
        Caller *g = group_of(m, c);
        if (!g)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: the caller could not be identified");
        r = view_ask_all(m, g, c->unique_name, sd_bus_message_get_bus(msg), d, &wait);
        if (r >= 0)
                return 1;
        if (r == -ENOENT && !d)
                /* a listing waits for many answers: the group's questions go on being asked as
                 * answers come (the listing runs again only when the one it waits on is in) */
                g->ahead = true;
        if (r != -ENOENT && r != -EBUSY) {
                log_warning_errno(r, "Cannot ask polkit: %m");
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: the authorization service cannot be asked");
        }
        if (!wait) {
                /* the limit on queries in flight is reached: wait for one of this peer's */
                size_t i = 0;
                void *v;
                if (hashmap_iterate(g->queries, &i, NULL, &v))
                        wait = v;
        }
        if (!wait)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: too many authorization requests in flight");
        if (g->n_held >= HELD_PER_CALLER_MAX)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: too many calls waiting for authorization");
        r = query_hold(wait, msg);
        if (r < 0)
                return qerror_set(e, QERR_NOT_AUTHORIZED, "Access denied: out of memory");
        return 0;
}

/* Like verdict_peek on c's group, but an aged answer counts (view_ask has asked again in the
 * background). */
static int verdict_peek_any(Manager *m, Caller *c, const char *key) {
        Caller *g = group_of(m, c);
        AuthVerdict *v = g ? hashmap_get(g->verdicts, key) : NULL;
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
        Caller *g = group_of(m, c);
        if (!g)
                return -ENOENT;
        r = d ? view_ask_all(m, g, c->unique_name, m->bus, d, &wait)
              : view_ask(m, g, c->unique_name, m->bus, AUTH_READ, NULL, &wait);
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
        "ListDomains",     "ListDomainsText",     "GetAllDomainProperties", "GetDomainProperties",
        "SubscribeEvents", "SubscribeEventNames", "GetSystemInfo",          "GetDomain",
        "StartQubes",      "ShutdownQubes",       "CreateDisposable",       "ListVolumes",
        "GetVolume",
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

typedef struct PeerLookup {
        Manager *m;
        char name[];
} PeerLookup;

static int on_peer_credentials(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PeerLookup *p = userdata;
        Manager *m = p->m;
        uint32_t uid = UINT32_MAX, pid = 0;
        const char *key;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL))
                return 0; /* gone already */
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0 && (streq(key, "UnixUserID") || streq(key, "ProcessID")))
                        r = sd_bus_message_read(reply, "v", "u", streq(key, "UnixUserID") ? &uid : &pid);
                else if (r >= 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0 || uid == UINT32_MAX || auth_uid_trusted(m, uid))
                return 0;
        /* The reply comes before the bus says the peer left: the Caller is forgotten then. */
        Caller *c = caller_get(m, p->name, true);
        if (!c)
                return 0;
        if (!c->uid_known)
                caller_identify(m, c, uid, (pid_t) pid);
        ask_ahead(m, c);
        return 0;
}

/* Who is this peer on the bus? (A user's session brings peers to the system bus long before a
 * listing: their answers are asked for ahead.) */
static void peer_lookup(Manager *m, const char *name) {
        const char *own = NULL;
        sd_bus_slot *slot = NULL;
        int r;

        if (name[0] != ':' || (sd_bus_get_unique_name(m->bus, &own) >= 0 && streq(name, own)) ||
            hashmap_get(m->callers, name))
                return;
        PeerLookup *p = malloc(sizeof(PeerLookup) + strlen(name) + 1);
        if (!p)
                return;
        p->m = m;
        strcpy(p->name, name);
        r = sd_bus_call_method_async(m->bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetConnectionCredentials", on_peer_credentials, p, "s",
                                     name);
        if (r < 0) {
                free(p);
                return;
        }
        (void) sd_bus_slot_set_destroy_callback(slot, free);
        (void) sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
}

static int on_polkit_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error);

static int on_peer_appeared(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        const char *name, *old, *new;
        if (sd_bus_message_read(msg, "sss", &name, &old, &new) < 0 || isempty(new))
                return 0;
        if (streq(name, POLKIT_SERVICE))
                /* a polkitd that (re)starts has read its rules afresh without saying Changed */
                return on_polkit_changed(msg, userdata, ret_error);
        if (isempty(old))
                peer_lookup(userdata, name);
        return 0;
}

/* The peers already on the bus when qubesd starts (a restart under logged-in users). */
static int on_names_listed(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const char *name;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL))
                return 0;
        r = sd_bus_message_enter_container(reply, 'a', "s");
        while (r > 0 && (r = sd_bus_message_read(reply, "s", &name)) > 0)
                peer_lookup(userdata, name);
        return 0;
}

/* polkit's rules or actions changed: every answer kept may be wrong now. All are dropped (what
 * peers may do and what they see); questions in flight are answered but not kept (their calls
 * ask again); the groups that had answers about what they see are asked again at once. */
static int on_polkit_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        size_t i = 0, n = 0;
        void *v;

        generation++;
        log_info("polkit's authorizations changed: the kept answers are dropped");
        _cleanup_free_ char **again = new0(char *, hashmap_size(m->callers) + 1);
        while (hashmap_iterate(m->callers, &i, NULL, &v)) {
                Caller *c = v;
                bool viewed = c->n_peers > 0 && (hashmap_size(c->verdicts) > 0 || c->ahead);
                verdicts_clear(c);
                c->ahead = false;
                if (viewed && again)
                        again[n++] = strdup(c->unique_name);
        }
        for (i = 0; i < n; i++) {
                Caller *g = again[i] ? hashmap_get(m->callers, again[i]) : NULL;
                const char *peer = g ? group_peer(m, g) : NULL;
                if (peer) {
                        g->ahead = true;
                        ahead_continue(m, g, peer);
                }
                free(again[i]);
        }
        return 0;
}

int auth_add_view_filter(Manager *m) {
        int r = sd_bus_add_filter(m->bus, NULL, view_filter, m);
        if (r < 0)
                return r;
        r = sd_bus_match_signal_async(m->bus, NULL, POLKIT_SERVICE, POLKIT_PATH, POLKIT_INTERFACE, "Changed",
                                      on_polkit_changed, NULL, m);
        if (r < 0)
                return r;
        r = sd_bus_match_signal_async(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_peer_appeared, NULL, m);
        if (r < 0 || m->config.bus_kind == BUS_FD)
                return r;
        return sd_bus_call_method_async(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "ListNames", on_names_listed, m, "");
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
        Caller *g = group_of(m, c);
        for (i = 0; g && hashmap_iterate(g->verdicts, &i, NULL, &v);) {
                AuthVerdict *verdict = v;
                if (verdict->allowed && startswith(verdict->key, prefix))
                        return 1;
        }
        return 0;
}
