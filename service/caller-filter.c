/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "caller-filter.h"

#include <sys/inotify.h>

#include "auth.h"
#include "policy/policy.h"
#include "util/log.h"
#include "util/strv.h"

/* An event kept for a subscriber until polkit has said whether it sees the qube it is about. */
typedef struct PendingEvent {
        uint64_t seq;
        char *subject; /* NULL: a system event */
        char *about;   /* the qube it is about (subject, or the "vm" argument), or NULL */
        char *event;
        char **kv;
        size_t n_kv;
        struct PendingEvent *next;
} PendingEvent;

/* A local user's copies wait at most this many events for polkit; beyond, the subscription ends
 * (the peer sees the gap in the sequence numbers, and can subscribe again). */
#define PENDING_MAX 4096u

/* Subscriptions of one peer with the same qube and the same event names: the qube whose events
 * they ask for (NULL: every qube's, the admin.Events stream to dom0), the event names they take
 * (SubscribeEventNames; NULL: every event, SubscribeEvents), and how many are alive. */
typedef struct Scope {
        char *only;
        char **names; /* exact names, or a prefix ending in '*' */
        size_t n_names;
        unsigned n;
} Scope;

/* Subscriptions one peer may hold at once (the shim opens one per admin.Events stream of a
 * source qube; upstream opens one socket per stream). */
#define SCOPES_MAX 1024u

/* A peer's subscriptions. Each event goes to the peer once if any of its scopes admits it: the
 * caller (and so what the policy or polkit lets it see) is the connection's, the scope only
 * narrows to one qube and to some event names, and a client that holds several streams on one
 * connection tells them apart by object path (the shim's match rule for a stream to a qube names
 * that qube's path). The scopes stay in the order they were made (UnsubscribeEvents takes the
 * first that fits). */
typedef struct Subscriber {
        char *unique_name; /* key: the peer's unique name, or a private connection's description */
        sd_bus *bus;       /* the connection its copies go out on */
        char *caller;      /* the qube it acts for */
        Scope *scopes;
        size_t n_scopes;
        unsigned n_subscriptions;              /* the sum of the scopes' n */
        PendingEvent *pending, **pending_tail; /* local users: in order, held for polkit */
        size_t n_pending;
        bool overflow; /* too many held: the subscription ends */
} Subscriber;

struct CallerFilter {
        QubesPolicy *policy;  /* NULL until first needed, and after a change on disk */
        Hashmap *subscribers; /* unique name -> Subscriber* */
        unsigned n_subscriptions;
        sd_event_source **watches;
        size_t n_watches;
};

struct FilterContext {
        QubesPolicy *policy; /* borrowed */
        QubesSystemInfo *si;
        char *caller;
};

static CallerFilter *state(Manager *m) {
        return m->caller_filter;
}

static PendingEvent *pending_free(PendingEvent *p) {
        if (!p)
                return NULL;
        free(p->subject);
        free(p->about);
        free(p->event);
        for (size_t i = 0; i < p->n_kv; i++)
                free(p->kv[i]);
        free(p->kv);
        free(p);
        return NULL;
}

static void scope_done(Scope *sc) {
        free(sc->only);
        strv_free(sc->names);
        *sc = (Scope){};
}

static Subscriber *subscriber_free(Subscriber *s) {
        if (!s)
                return NULL;
        while (s->pending) {
                PendingEvent *p = s->pending;
                s->pending = p->next;
                pending_free(p);
        }
        sd_bus_unref(s->bus);
        free(s->unique_name);
        free(s->caller);
        for (size_t i = 0; i < s->n_scopes; i++)
                scope_done(&s->scopes[i]);
        free(s->scopes);
        free(s);
        return NULL;
}

static bool scope_takes_subject(const Scope *sc, const char *subject) {
        return !sc->only || (subject && streq(subject, sc->only));
}

/* name: an exact event name, or a prefix ending in '*' */
static bool name_matches(const char *name, const char *event) {
        size_t len = strlen(name);
        return len > 0 && name[len - 1] == '*' ? strncmp(event, name, len - 1) == 0 : streq(event, name);
}

/* Taken when one of the names takes it and none of the exceptions ("!name") does. */
static bool scope_takes_event(const Scope *sc, const char *event) {
        bool taken = false;

        if (!sc->names)
                return true;
        for (size_t i = 0; i < sc->n_names; i++) {
                const char *n = sc->names[i];
                if (n[0] == '!') {
                        if (name_matches(n + 1, event))
                                return false;
                } else if (!taken)
                        taken = name_matches(n, event);
        }
        return taken;
}

/* Whether one of s's scopes admits an event whose subject is subject (NULL: a system event)
 * named event (NULL: any, for the copies of other signals). */
static bool subscriber_wants(const Subscriber *s, const char *subject, const char *event) {
        for (size_t i = 0; i < s->n_scopes; i++)
                if (scope_takes_subject(&s->scopes[i], subject) && (!event || scope_takes_event(&s->scopes[i], event)))
                        return true;
        return false;
}

/* Ends the peer's subscriptions (it left, or overflowed). */
static void subscriber_drop(CallerFilter *st, Subscriber *s) {
        if (!s)
                return;
        st->n_subscriptions -= s->n_subscriptions;
        subscriber_free(hashmap_remove(st->subscribers, s->unique_name));
}

static int on_policy_changed(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        Manager *m = userdata;
        CallerFilter *st = state(m);
        if (st && st->policy) {
                log_debug("qrexec policy changed on disk: re-reading it at the next filtered call.");
                st->policy = qubes_policy_free(st->policy);
        }
        return 0;
}

static const char *const default_policy_dirs[] = { "/run/qubes/policy.d", "/etc/qubes/policy.d", NULL };

static const char *const *policy_dirs(Manager *m) {
        return m->config.policy_dirs && m->config.policy_dirs[0] ? (const char *const *) m->config.policy_dirs
                                                                 : default_policy_dirs;
}

int caller_filter_init(Manager *m) {
        CallerFilter *st = new0(CallerFilter, 1);
        if (!st)
                return log_oom();
        st->subscribers = hashmap_new();
        if (!st->subscribers) {
                free(st);
                return log_oom();
        }
        m->caller_filter = st;

        /* Watch the directories and their include/ subdirectories; a missing one is not watched
         * (it holds no rules: lib/policy reads it as empty). */
        for (const char *const *d = policy_dirs(m); *d; d++)
                for (int inc = 0; inc < 2; inc++) {
                        _cleanup_free_ char *path = NULL;
                        if (asprintf(&path, "%s%s", *d, inc ? "/include" : "") < 0)
                                return log_oom();
                        sd_event_source **w = realloc(st->watches, sizeof(*w) * (st->n_watches + 1));
                        if (!w)
                                return log_oom();
                        st->watches = w;
                        if (sd_event_add_inotify(m->event, &st->watches[st->n_watches], path,
                                                 IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                                                         IN_ATTRIB | IN_DELETE_SELF,
                                                 on_policy_changed, m) >= 0)
                                st->n_watches++;
                }
        return 0;
}

void caller_filter_done(Manager *m) {
        CallerFilter *st = state(m);
        size_t i = 0;
        void *v;

        if (!st)
                return;
        qubes_policy_free(st->policy);
        while (hashmap_iterate(st->subscribers, &i, NULL, &v))
                subscriber_free(v);
        hashmap_free(st->subscribers);
        for (size_t k = 0; k < st->n_watches; k++)
                sd_event_source_unref(st->watches[k]);
        free(st->watches);
        free(st);
        m->caller_filter = NULL;
}

static QubesPolicy *current_policy(Manager *m) {
        CallerFilter *st = state(m);
        if (!st)
                return NULL;
        if (!st->policy) {
                QubesPolicyConfig cfg = { .dirs = policy_dirs(m) };
                int r = qubes_policy_load(&cfg, &st->policy);
                if (r == -EINVAL && st->policy) {
                        char *const *errors = qubes_policy_errors(st->policy);
                        log_warning("The qrexec policy has errors; qubes other than dom0 see nothing: %s",
                                    errors && errors[0] ? errors[0] : "?");
                } else if (r < 0)
                        log_warning_errno(r, "Cannot load the qrexec policy: %m");
        }
        return st->policy;
}

static char *label_color(Domain *d) {
        _cleanup_free_ char *label = domain_property_string(d, "label");
        Label *l = label ? app_find_label(d->app, label) : NULL;
        return l ? strdup(l->color) : NULL;
}

/* The policy's view of the system (qrexec-policy.md §3), built from the model. */
static QubesSystemInfo *system_info(App *app) {
        QubesSystemInfo *si = qubes_system_info_new();
        size_t i = 0;
        void *v;

        if (!si)
                return NULL;
        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                Domain *d = v;
                QubesDomain *q = qubes_domain_new(d->name);
                if (!q)
                        return qubes_system_info_free(si);
                const char **tags = domain_tags_sorted(d);
                q->tags = tags ? strv_copy((char *const *) tags) : NULL;
                free(tags);
                q->type = strdup(qubes_class_to_string(d->klass));
                q->template_for_dispvms = domain_property_bool(d, "template_for_dispvms");
                q->default_dispvm = domain_property_string(d, "default_dispvm");
                q->icon = domain_property_string(d, "icon");
                q->label = label_color(d);
                q->guivm = domain_property_string(d, "guivm");
                q->relayvm = domain_property_string(d, "relayvm");
                q->transport_rpc = domain_property_string(d, "transport_rpc");
                const char *internal = domain_feature_get(d, "internal");
                q->internal = internal && *internal;
                bool always_running = d->klass == QUBES_CLASS_ADMINVM || d->klass == QUBES_CLASS_REMOTEVM;
                q->power_state = strdup(always_running ? "Running" : strempty(d->power_state));
                q->uuid = strdup(d->uuid);
                if (!q->type || !q->power_state || !q->uuid) {
                        qubes_domain_free(q);
                        return qubes_system_info_free(si);
                }
                if (qubes_system_info_add(si, q) < 0)
                        return qubes_system_info_free(si);
        }
        return si;
}

FilterContext *filter_context_new(Manager *m, const char *caller) {
        if (!caller || streq(caller, "dom0"))
                return NULL;
        FilterContext *f = new0(FilterContext, 1);
        if (!f)
                return NULL;
        f->policy = current_policy(m);
        f->si = system_info(m->app);
        f->caller = strdup(caller);
        return f;
}

FilterContext *filter_context_free(FilterContext *f) {
        if (!f)
                return NULL;
        qubes_system_info_free(f->si);
        free(f->caller);
        free(f);
        return NULL;
}

bool filter_domain_visible(FilterContext *f, const Domain *d) {
        if (!f)
                return true;
        /* fail closed: no policy, no system info, no caller → nothing to see */
        if (!f->policy || !f->si || !f->caller)
                return false;
        return qubes_policy_vm_list_allowed(f->policy, f->si, f->caller, d->name, NULL);
}

static const char *peer_key(sd_bus_message *msg) {
        const char *sender = sd_bus_message_get_sender(msg);
        /* a private connection has no names: its description stands for the peer (auth.c) */
        if (!sender)
                (void) sd_bus_get_description(sd_bus_message_get_bus(msg), &sender);
        return sender;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int check_event_names(char *const *names, QError *e) {
        size_t n = strv_length(names);
        char count[32], most[32];

        if (n == 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "No event names given");
        if (n > EVENT_NAMES_MAX) {
                snprintf(count, sizeof(count), "%zu", n);
                snprintf(most, sizeof(most), "%u", EVENT_NAMES_MAX);
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Too many event names: %s (at most %s)", count, most);
        }
        bool any_taken = false;
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(names[i]);
                bool except = names[i][0] == '!';
                any_taken = any_taken || !except;
                if (len == (size_t) except || len > EVENT_NAME_MAX) {
                        snprintf(count, sizeof(count), "%zu", i + 1);
                        snprintf(most, sizeof(most), "%u", EVENT_NAME_MAX);
                        return qerror_set(e, QERR_QUBES_EXCEPTION,
                                          "Event name number %s is empty or longer than %s characters", count, most);
                }
                for (size_t k = except; k < len; k++) {
                        unsigned char c = (unsigned char) names[i][k];
                        if (c <= ' ' || c >= 0x7f || (c == '*' && k + 1 != len) || c == '!')
                                return qerror_set(e, QERR_QUBES_EXCEPTION,
                                                  "Invalid event name '%s': printable ASCII without spaces, "
                                                  "'*' only at the end, '!' only at the start",
                                                  names[i]);
                }
        }
        if (!any_taken)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Only exceptions ('!') among the event names");
        return 0;
}

/* The names sorted, each once: two calls with the same names in another order make one scope. */
static char **names_normalized(char *const *names) {
        char **l = strv_copy(names);
        size_t n = strv_length(l), k = 0;

        if (!l)
                return NULL;
        qsort(l, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n; i++) {
                if (k > 0 && streq(l[k - 1], l[i]))
                        free(l[i]);
                else
                        l[k++] = l[i];
        }
        l[k] = NULL;
        return l;
}

static bool names_equal(char *const *a, char *const *b) {
        if (!a || !b)
                return !a && !b;
        for (; *a && *b; a++, b++)
                if (!streq(*a, *b))
                        return false;
        return !*a && !*b;
}

int caller_filter_subscribe(Manager *m, sd_bus_message *msg, const char *caller, const char *only, char *const *names,
                            QError *e) {
        CallerFilter *st = state(m);
        const char *sender = peer_key(msg);
        _cleanup_strv_free_ char **sorted = NULL;
        Subscriber *s;
        Scope *scope = NULL;

        if (!st || !sender)
                return -EINVAL;
        if (names) {
                if (check_event_names(names, e) < 0)
                        return -EINVAL;
                sorted = names_normalized(names);
                if (!sorted)
                        return -ENOMEM;
        }
        s = hashmap_get(st->subscribers, sender);
        if (!s) {
                s = new0(Subscriber, 1);
                if (!s)
                        return -ENOMEM;
                s->bus = sd_bus_ref(sd_bus_message_get_bus(msg));
                s->unique_name = strdup(sender);
                s->caller = strdup(caller);
                if (!s->unique_name || !s->caller || hashmap_put(st->subscribers, s->unique_name, s) < 0) {
                        subscriber_free(s);
                        return -ENOMEM;
                }
        } else if (free_and_strdup(&s->caller, caller) < 0)
                return -ENOMEM;
        if (s->n_subscriptions >= SCOPES_MAX)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Too many event subscriptions on this connection");
        for (size_t i = 0; i < s->n_scopes && !scope; i++)
                if (streq_ptr(s->scopes[i].only, only) && names_equal(s->scopes[i].names, sorted))
                        scope = &s->scopes[i];
        if (!scope) {
                Scope *a = realloc(s->scopes, sizeof(*a) * (s->n_scopes + 1));
                if (!a)
                        return -ENOMEM;
                s->scopes = a;
                scope = &a[s->n_scopes];
                *scope = (Scope){};
                if (only && !(scope->only = strdup(only)))
                        return -ENOMEM;
                scope->names = TAKE_PTR(sorted);
                scope->n_names = strv_length(scope->names);
                s->n_scopes++;
        }
        scope->n++;
        s->n_subscriptions++;
        st->n_subscriptions++;
        return 0;
}

int caller_filter_unsubscribe(Manager *m, sd_bus_message *msg, const char *only) {
        CallerFilter *st = state(m);
        const char *sender = peer_key(msg);
        Subscriber *s = st && sender ? hashmap_get(st->subscribers, sender) : NULL;
        size_t found = SIZE_MAX;

        /* one made by SubscribeEvents first, else the first made by SubscribeEventNames */
        for (size_t i = 0; s && i < s->n_scopes && found == SIZE_MAX; i++)
                if (streq_ptr(s->scopes[i].only, only) && !s->scopes[i].names)
                        found = i;
        for (size_t i = 0; s && i < s->n_scopes && found == SIZE_MAX; i++)
                if (streq_ptr(s->scopes[i].only, only))
                        found = i;
        if (found == SIZE_MAX)
                return -ENOENT;
        st->n_subscriptions--;
        s->n_subscriptions--;
        if (--s->scopes[found].n == 0) {
                scope_done(&s->scopes[found]);
                memmove(s->scopes + found, s->scopes + found + 1, sizeof(Scope) * (s->n_scopes - found - 1));
                s->n_scopes--;
        }
        if (s->n_subscriptions == 0)
                subscriber_free(hashmap_remove(st->subscribers, s->unique_name));
        return 0;
}

unsigned caller_filter_count(Manager *m) {
        CallerFilter *st = state(m);
        return st ? st->n_subscriptions : 0;
}

void caller_filter_forget(Manager *m, const char *unique_name) {
        CallerFilter *st = state(m);
        if (st)
                subscriber_drop(st, hashmap_get(st->subscribers, unique_name));
}

static int send_unicast(Subscriber *sub, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                        uint64_t seq) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r = manager_new_event_signal(sub->bus, subject, event, kv, n_kv, seq, sub->unique_name, &s);
        if (r < 0)
                return r;
        return sd_bus_send(sub->bus, s, NULL);
}

static int pending_add(Subscriber *s, Domain *subject, const char *about, const char *event, const char *const *kv,
                       size_t n_kv, uint64_t seq) {
        PendingEvent *p = new0(PendingEvent, 1);
        if (!p)
                return -ENOMEM;
        p->seq = seq;
        p->subject = subject ? strdup(subject->name) : NULL;
        p->about = about ? strdup(about) : NULL;
        p->event = strdup(event);
        p->kv = new0(char *, n_kv + 1);
        if ((subject && !p->subject) || (about && !p->about) || !p->event || !p->kv) {
                pending_free(p);
                return -ENOMEM;
        }
        for (; p->n_kv < n_kv; p->n_kv++)
                if (kv[p->n_kv] && !(p->kv[p->n_kv] = strdup(kv[p->n_kv]))) {
                        pending_free(p);
                        return -ENOMEM;
                }
        if (!s->pending_tail)
                s->pending_tail = &s->pending;
        *s->pending_tail = p;
        s->pending_tail = &p->next;
        s->n_pending++;
        return 0;
}

/* Whether a local user's subscriber sees an event about the qube named about: 1, 0, or -ENOENT
 * while polkit is being asked. A qube that is gone is judged by the verdicts still kept for its
 * name (none: not seen). */
static int subscriber_sees(Manager *m, Subscriber *s, const char *about, const char *event) {
        if (!about)
                return auth_peer_sees(m, s->unique_name, NULL);
        Domain *d = app_get_domain(m->app, about);
        if (!d)
                return auth_peer_saw(m, s->unique_name, about);
        int r = auth_peer_sees(m, s->unique_name, d);
        /* The tag that made the qube theirs went: they saw it until now, and this event is how
         * they learn that it left their view. */
        if (r == 0 && startswith(event, "domain-tag-delete:"))
                r = auth_peer_saw(m, s->unique_name, about);
        return r;
}

/* Send what no longer waits for polkit, in order. */
static void subscriber_flush(Manager *m, Subscriber *s) {
        while (s->pending) {
                PendingEvent *p = s->pending;
                int r = subscriber_sees(m, s, p->about, p->event);
                if (r == -ENOENT)
                        return;
                if (r > 0) {
                        Domain *subject = p->subject ? app_get_domain(m->app, p->subject) : NULL;
                        if (!p->subject || subject)
                                r = send_unicast(s, subject, p->event, (const char *const *) p->kv, p->n_kv, p->seq);
                        if (r < 0)
                                log_debug_errno(r, "Cannot deliver %s to %s: %m", p->event, s->unique_name);
                }
                s->pending = p->next;
                if (!s->pending)
                        s->pending_tail = &s->pending;
                s->n_pending--;
                pending_free(p);
        }
}

void caller_filter_send_copies(Manager *m, Domain *d, SubscriberSendFn send, void *userdata) {
        CallerFilter *st = state(m);
        size_t i = 0;
        void *v;

        if (!st)
                return;
        while (hashmap_iterate(st->subscribers, &i, NULL, &v)) {
                Subscriber *s = v;
                if (!streq(s->caller, "dom0") || !subscriber_wants(s, d->name, NULL) ||
                    !auth_peer_needs_copies(m, s->unique_name, d))
                        continue;
                int r = send(s->bus, s->unique_name, userdata);
                if (r < 0)
                        log_debug_errno(r, "Cannot send a copy about %s to %s: %m", d->name, s->unique_name);
        }
}

void caller_filter_flush(Manager *m, const char *unique_name) {
        CallerFilter *st = state(m);
        Subscriber *s = st ? hashmap_get(st->subscribers, unique_name) : NULL;
        if (s)
                subscriber_flush(m, s);
}

void caller_filter_deliver(Manager *m, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                           uint64_t seq) {
        CallerFilter *st = state(m);
        QubesSystemInfo *si = NULL;
        size_t i = 0;
        void *v;

        if (!st || hashmap_size(st->subscribers) == 0)
                return;
        /* The qube an event is about: its subject, or for system events the "vm" argument. */
        const char *about = subject ? subject->name : NULL;
        for (size_t k = 0; !about && k + 1 < n_kv; k += 2)
                if (streq(kv[k], "vm"))
                        about = kv[k + 1];

        while (hashmap_iterate(st->subscribers, &i, NULL, &v)) {
                Subscriber *s = v;
                if (!subscriber_wants(s, subject ? subject->name : NULL, event))
                        continue;
                if (!streq(s->caller, "dom0")) {
                        QubesPolicy *p = current_policy(m);
                        if (!si)
                                si = system_info(m->app);
                        if (!p || !si || !qubes_policy_event_allowed(p, si, s->caller, event, about))
                                continue;
                } else {
                        /* a local user sees the events of the qubes polkit lets them read */
                        int r = s->pending ? -ENOENT : subscriber_sees(m, s, about, event);
                        if (r == 0)
                                continue;
                        if (r == -ENOENT) {
                                if (s->n_pending >= PENDING_MAX ||
                                    pending_add(s, subject, about, event, kv, n_kv, seq) < 0)
                                        s->overflow = true;
                                continue;
                        }
                }
                int r = send_unicast(s, subject, event, kv, n_kv, seq);
                if (r < 0)
                        log_debug_errno(r, "Cannot deliver %s to %s: %m", event, s->unique_name);
        }
        qubes_system_info_free(si);

        /* after the loop: removing from the map while iterating it would skip entries */
        for (bool again = true; again;) {
                again = false;
                i = 0;
                while (hashmap_iterate(st->subscribers, &i, NULL, &v)) {
                        Subscriber *s = v;
                        if (!s->overflow)
                                continue;
                        log_warning("Ending the event subscription of %s: too many events wait for polkit.",
                                    s->unique_name);
                        subscriber_drop(st, s);
                        again = true;
                        break;
                }
        }
}
