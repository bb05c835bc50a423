/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Preloaded disposables (spec/console-preload.md §4.2): the fill of a disposable template up to
 * its maximum (create, start, pause, in the background), the hand-out on CreateDisposable, the
 * discarding of those that are outdated or too many, and upstream's events. Everything runs on
 * the loop. What the model announces is only noted in the listener; the work it calls for runs
 * from a deferred event source, never inside the model's change. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "preload.h"

#include "bus-error.h"
#include "lifecycle.h"
#include "storage/storage.h"
#include "vmm.h"

#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

#define DEFAULT_DELAY_S 3.0

typedef struct FillWaiter {
        sd_bus_message *msg;
        struct FillWaiter *next;
} FillWaiter;

/* A disposable template with preloads, or about to get them. */
typedef struct Tpl {
        Preload *preload;
        char *name;
        sd_event_source *timer; /* the next fill */
        char *reason;           /* domain-preload-dispvm-start to announce when it runs (NULL: none) */
        unsigned in_flight;     /* preloads being started and paused */
        FillWaiter *waiters;    /* CreateDisposable+preload calls waiting for the fill */
} Tpl;

/* A preloaded disposable while qubesd knows it. */
typedef struct Disp {
        char *name;
        char *template;
        bool in_flight; /* created, not yet started and paused */
        bool requested; /* being handed out */
        char *caller;
        sd_bus_message *msg; /* the CreateDisposable it goes to */
} Disp;

struct Preload {
        Manager *manager;
        Hashmap *templates;        /* name -> Tpl* */
        Hashmap *disps;            /* name -> Disp* */
        bool settled;              /* the hypervisor was tried once: fills may start qubes */
        struct Deferred *deferred; /* work noted by the listener, not yet done */
};

static Preload *preload_of(Manager *m) {
        return m->preload;
}

/* ---- bookkeeping ------------------------------------------------------------------------ */

static void disp_free(Disp *ds) {
        if (!ds)
                return;
        free(ds->name);
        free(ds->template);
        free(ds->caller);
        sd_bus_message_unref(ds->msg);
        free(ds);
}

static void disp_forget(Preload *p, const char *name) {
        Disp *ds = hashmap_remove(p->disps, name);
        disp_free(ds);
}

static Tpl *tpl_get(Preload *p, const char *name) {
        Tpl *t = hashmap_get(p->templates, name);
        if (t)
                return t;
        t = new0(Tpl, 1);
        if (!t)
                return NULL;
        t->preload = p;
        t->name = strdup(name);
        if (!t->name || hashmap_put(p->templates, t->name, t) < 0) {
                free(t->name);
                free(t);
                return NULL;
        }
        return t;
}

static void tpl_free(Tpl *t) {
        if (!t)
                return;
        sd_event_source_disable_unref(t->timer);
        while (t->waiters) {
                FillWaiter *w = t->waiters;
                t->waiters = w->next;
                sd_bus_message_unref(w->msg);
                free(w);
        }
        free(t->reason);
        free(t->name);
        free(t);
}

/* The CreateDisposable+preload calls waiting for t's fill: answered (with e when it failed). */
static void finish_waiters(Tpl *t, const QError *e) {
        Manager *m = t->preload->manager;
        FillWaiter *w = t->waiters;

        t->waiters = NULL;
        while (w) {
                FillWaiter *next = w->next;
                int r = e && qerror_is_set(e) ? bus_reply_qerror(m, w->msg, e)
                                              : sd_bus_reply_method_return(w->msg, NULL);
                if (r < 0)
                        log_debug_errno(r, "Cannot answer a preload request: %m");
                sd_bus_message_unref(w->msg);
                free(w);
                w = next;
        }
}

static void save(Manager *m) {
        _cleanup_qerror_ QError e = {};
        if (manager_save(m, &e) < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                log_warning("Preloaded disposables: cannot save qubes.xml: %s", strempty(msg));
        }
}

static char *join(char **l) {
        _cleanup_strbuf_ StrBuf b = {};
        STRV_FOREACH(n, l) {
                if (b.len)
                        strbuf_append_c(&b, ' ');
                strbuf_append(&b, *n);
        }
        if (b.oom)
                return NULL;
        return b.buf ? strbuf_steal(&b) : strdup("");
}

/* Write tpl's preload-dispvm list (the feature is left alone when nothing changes). */
static void set_list(Domain *tpl, char **l) {
        _cleanup_free_ char *v = join(l);
        _cleanup_qerror_ QError e = {};

        if (!v || streq_ptr(domain_feature_get(tpl, "preload-dispvm"), v))
                return;
        if (!domain_feature_get(tpl, "preload-dispvm") && isempty(v))
                return;
        if (domain_feature_set(tpl, "preload-dispvm", v, &e) < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                log_warning("Cannot update preload-dispvm of %s: %s", tpl->name, strempty(msg));
        }
}

static void announce_is_preload(Manager *m, const char *name) {
        Domain *d = app_get_domain(m->app, name);
        if (d)
                app_emit_event(m->app, d, "property-reset:is_preload", "name", "is_preload");
}

static void remove_from_list(Manager *m, Domain *tpl, const char *name) {
        _cleanup_strv_free_ char **l = dispvm_preload_list(tpl);
        size_t k = 0;

        if (!l || !strv_contains(l, name))
                return;
        for (size_t i = 0; l[i]; i++) {
                if (streq(l[i], name))
                        free(l[i]);
                else
                        l[k++] = l[i];
        }
        l[k] = NULL;
        set_list(tpl, l);
        announce_is_preload(m, name);
}

static void killed(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        if (error < 0)
                log_debug("Discarding preloaded disposable %s: kill failed", name);
}

/* A preloaded disposable goes: off the list, then killed (auto_cleanup removes it when it has
 * stopped) or, when it does not run, removed at once. */
static void discard(Manager *m, Domain *tpl, const char *name_) {
        _cleanup_free_ char *name = strdup(name_); /* name_ may be the Disp's, forgotten below */
        Domain *d = name ? app_get_domain(m->app, name) : NULL;
        _cleanup_qerror_ QError e = {};

        if (!name)
                return (void) log_oom();

        if (tpl)
                remove_from_list(m, tpl, name);
        disp_forget(preload_of(m), name);
        if (!d || d->klass != QUBES_CLASS_DISPVM)
                return;
        log_info("Discarding preloaded disposable %s.", name);
        if (domain_is_running(d)) {
                if (lifecycle_kill(m, d, killed, NULL) < 0)
                        log_oom();
        } else if (storage_remove_domain(m->app, d, &e) < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                log_warning("Cannot remove preloaded disposable %s: %s", name, strempty(msg));
        }
}

/* ---- the delay -------------------------------------------------------------------------- */

/* preload-dispvm-delay of the template, else dom0's, else 3 s (as text, and its value). */
static const char *delay_text(Domain *tpl) {
        const char *v = domain_feature_get(tpl, "preload-dispvm-delay");
        Domain *dom0 = app_dom0(tpl->app);
        if (!v && dom0)
                v = domain_feature_get(dom0, "preload-dispvm-delay");
        return v;
}

static double delay_of(Domain *tpl) {
        const char *v = delay_text(tpl);
        char *end;
        double d;

        if (isempty(v))
                return DEFAULT_DELAY_S;
        d = strtod(v, &end);
        return *end || !isfinite(d) ? DEFAULT_DELAY_S : d;
}

/* ---- the fill --------------------------------------------------------------------------- */

static void schedule(Tpl *t, double delay_s, const char *reason);

static void on_paused(Manager *m, const char *name, int error, const QError *e, void *userdata);
static void hand_out(Manager *m, Disp *ds);

static void in_flight_over(Manager *m, Tpl *t) {
        if (t->in_flight > 0)
                t->in_flight--;
        if (t->in_flight == 0)
                finish_waiters(t, NULL);
}

static void on_started(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        Preload *p = preload_of(m);
        Disp *ds = p ? hashmap_get(p->disps, name) : NULL;
        Domain *d = app_get_domain(m->app, name);
        Tpl *t;

        if (!ds)
                return;
        t = hashmap_get(p->templates, ds->template);
        if (error < 0 || !d) {
                _cleanup_free_ char *msg = e ? qerror_message(e) : NULL;
                Domain *tpl = app_get_domain(m->app, ds->template);
                log_warning("Preloaded disposable %s of %s did not start: %s", name, ds->template,
                            msg ?: strerror(-error));
                discard(m, tpl, name);
                save(m);
                if (t)
                        in_flight_over(m, t);
                return;
        }
        if (lifecycle_pause(m, d, on_paused, NULL) < 0) {
                log_oom();
                discard(m, app_get_domain(m->app, ds->template), name);
                if (t)
                        in_flight_over(m, t);
        }
}

static void on_paused(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        Preload *p = preload_of(m);
        Disp *ds = p ? hashmap_get(p->disps, name) : NULL;
        Domain *d = app_get_domain(m->app, name);
        Tpl *t;

        if (!ds)
                return;
        t = hashmap_get(p->templates, ds->template);
        if (error < 0 || !d) {
                _cleanup_free_ char *msg = e ? qerror_message(e) : NULL;
                log_warning("Preloaded disposable %s could not be paused: %s", name, msg ?: strerror(-error));
                discard(m, app_get_domain(m->app, ds->template), name);
        } else {
                /* ready: started, paused, waiting for a caller */
                ds->in_flight = false;
                (void) domain_feature_set(d, "preload-dispvm-completed", "1", NULL);
                (void) domain_feature_set(d, "preload-dispvm-in-progress", "", NULL);
        }
        save(m);
        if (t)
                in_flight_over(m, t);
}

/* One new preloaded disposable of tpl: created with its data, listed, marked internal, started;
 * on_started() pauses it. */
static void create_one(Manager *m, Tpl *t, Domain *tpl) {
        _cleanup_free_ char *label = domain_property_string(tpl, "label");
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **l = NULL;
        Domain *d = NULL;
        Disp *ds;
        int r;

        CreateParams params = {
                .klass = QUBES_CLASS_DISPVM,
                .label = label,
                .template_name = tpl->name,
        };
        r = storage_create_domain(m->app, &params, &d, &e);
        if (r >= 0)
                r = domain_property_set(d, "auto_cleanup", "True", 4, &e);
        if (r >= 0)
                r = domain_feature_set(d, "preload-dispvm-in-progress", "1", &e);
        if (r >= 0) {
                l = dispvm_preload_list(tpl);
                r = l ? strv_extend(&l, d->name) : -ENOMEM;
        }
        if (r >= 0) {
                _cleanup_free_ char *v = join(l);
                r = v ? domain_feature_set(tpl, "preload-dispvm", v, &e) : -ENOMEM;
        }
        if (r >= 0)
                r = domain_feature_set(d, "internal", "1", &e);
        if (r < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                _cleanup_qerror_ QError rm = {};
                log_warning("Cannot preload a disposable of %s: %s", tpl->name, msg ?: strerror(-r));
                if (d) {
                        remove_from_list(m, tpl, d->name);
                        (void) storage_remove_domain(m->app, d, &rm);
                }
                return;
        }
        announce_is_preload(m, d->name);
        save(m);

        ds = new0(Disp, 1);
        if (!ds || !(ds->name = strdup(d->name)) || !(ds->template = strdup(tpl->name)) ||
            hashmap_put(preload_of(m)->disps, ds->name, ds) < 0) {
                disp_free(ds);
                log_oom();
                return;
        }
        ds->in_flight = true;
        t->in_flight++;
        log_info("Preloading disposable %s of %s.", d->name, tpl->name);
        if (lifecycle_start(m, d, on_started, NULL) < 0) {
                log_oom();
                discard(m, tpl, ds->name);
                in_flight_over(m, t);
        }
}

typedef struct MemoryCheck {
        char *name;
        int64_t want;
} MemoryCheck;

/* Upstream's limit: (available - preload-dispvm-threshold of dom0) / the template's memory. The
 * hypervisor's free memory (virNodeGetFreeMemory) stands for qmemman's available memory. */
static void on_free_memory(Manager *m, uint64_t bytes, void *userdata) {
        MemoryCheck *mc = userdata;
        Preload *p = preload_of(m);
        Tpl *t = p ? hashmap_get(p->templates, mc->name) : NULL;
        Domain *tpl = app_get_domain(m->app, mc->name);
        int64_t want = mc->want;

        if (t && tpl) {
                Domain *dom0 = app_dom0(m->app);
                const char *th = dom0 ? domain_feature_get(dom0, "preload-dispvm-threshold") : NULL;
                uint64_t threshold = isempty(th) ? 0 : strtoull(th, NULL, 10) << 20;
                uint64_t per = (uint64_t) domain_property_int(tpl, "memory", 400) << 20;
                if (bytes > 0 && per > 0) {
                        int64_t fits = bytes > threshold ? (int64_t) ((bytes - threshold) / per) : 0;
                        if (fits < want) {
                                log_info("Preloading %" PRIi64 " of %" PRIi64 " disposables of %s: memory.", fits, want,
                                         tpl->name);
                                want = fits;
                        }
                }
                for (int64_t i = 0; i < want; i++)
                        create_one(m, t, tpl);
        }
        if (t)
                in_flight_over(m, t);
        free(mc->name);
        free(mc);
}

/* Upstream's fill: vanished names off the list, outdated and excess preloads discarded, then as
 * many new ones as the maximum allows. */
static void fill_or_tidy(Tpl *t, bool create) {
        Manager *m = t->preload->manager;
        Domain *tpl = app_get_domain(m->app, t->name);
        _cleanup_strv_free_ char **l = NULL, **keep = NULL, **drop = NULL;
        _cleanup_qerror_ QError e = {};
        int64_t max, want;
        bool changed = false;

        if (!tpl) {
                if (create)
                        finish_waiters(t, NULL);
                return;
        }
        if (create && t->reason) {
                _cleanup_free_ char *reason = TAKE_PTR(t->reason);
                app_emit_event(m->app, tpl, "domain-preload-dispvm-start", "reason", reason);
        }
        max = dispvm_preload_max(tpl);
        l = dispvm_preload_list(tpl);
        keep = new0(char *, 1);
        drop = new0(char *, 1);
        if (!l || !keep || !drop)
                return (void) log_oom();
        STRV_FOREACH(n, l) {
                Domain *d = app_get_domain(m->app, *n);
                Disp *ds = hashmap_get(t->preload->disps, *n);
                bool ok = d && d->klass == QUBES_CLASS_DISPVM && domain_template(d) == tpl && ds;

                if (ok && !ds->requested && dispvm_preload_outdated(d, tpl)) {
                        log_info("Preloaded disposable %s is outdated.", *n);
                        if (strv_extend(&drop, *n) < 0)
                                return (void) log_oom();
                        ok = false;
                } else if (!ok && d && d->klass == QUBES_CLASS_DISPVM && domain_template(d) == tpl) {
                        /* listed but not ours (left from before qubesd started): not usable */
                        if (strv_extend(&drop, *n) < 0)
                                return (void) log_oom();
                }
                if (ok && strv_extend(&keep, *n) < 0)
                        return (void) log_oom();
                changed |= !ok;
        }
        /* too many: the last ones go (never one being handed out) */
        for (size_t n = strv_length(keep); (int64_t) n > max && n > 0; n--) {
                Disp *ds = hashmap_get(t->preload->disps, keep[n - 1]);
                if (ds && ds->requested)
                        continue;
                if (strv_extend(&drop, keep[n - 1]) < 0)
                        return (void) log_oom();
                free(keep[n - 1]);
                memmove(keep + n - 1, keep + n, (strv_length(keep + n) + 1) * sizeof(char *));
                changed = true;
        }
        if (changed) {
                set_list(tpl, keep);
                STRV_FOREACH(n, l)
                        if (!strv_contains(keep, *n))
                                announce_is_preload(m, *n);
        }
        STRV_FOREACH(n, drop)
                discard(m, NULL, *n);

        want = create ? max - (int64_t) strv_length(keep) : 0;
        if (want > 0) {
                if (!t->preload->settled) {
                        /* the hypervisor is being reached: the fill comes when it is */
                } else if (dispvm_preload_supported(tpl, &e) < 0) {
                        _cleanup_free_ char *msg = qerror_message(&e);
                        log_warning("Cannot preload disposables of %s: %s", tpl->name, strempty(msg));
                        finish_waiters(t, &e);
                        want = 0;
                } else if (m->app->memory_balancing) {
                        /* on Xen, as upstream with qmemman: no more than free memory allows */
                        MemoryCheck *mc = new0(MemoryCheck, 1);
                        if (mc && (mc->name = strdup(t->name))) {
                                mc->want = want;
                                t->in_flight++; /* the fill is not over until the answer */
                                if (vmm_free_memory(m, on_free_memory, mc) < 0) {
                                        t->in_flight--;
                                        free(mc->name);
                                        free(mc);
                                        log_oom();
                                }
                        } else {
                                free(mc);
                                log_oom();
                        }
                } else
                        for (int64_t i = 0; i < want; i++)
                                create_one(m, t, tpl);
        }
        if (changed || want > 0)
                save(m);
        if (create && t->in_flight == 0)
                finish_waiters(t, NULL);
}

static void fill(Tpl *t) {
        fill_or_tidy(t, true);
}

/* Names that went off the list, and what is outdated or too many; nothing new. */
static void tidy(Tpl *t) {
        fill_or_tidy(t, false);
}

static int on_fill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Tpl *t = userdata;
        t->timer = sd_event_source_disable_unref(t->timer);
        fill(t);
        return 0;
}

/* A fill of t after delay_s seconds (at once for 0; an earlier one already due stays), announced
 * with reason as domain-preload-dispvm-start when it runs. */
static void schedule(Tpl *t, double delay_s, const char *reason) {
        Manager *m = t->preload->manager;
        uint64_t now, when;

        if (reason) {
                free(t->reason);
                t->reason = strdup(reason);
        }
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        when = now + (uint64_t) ((delay_s > 0 ? delay_s : 0) * 1e6);
        if (t->timer) {
                uint64_t armed;
                if (sd_event_source_get_time(t->timer, &armed) >= 0 && armed <= when)
                        return;
                (void) sd_event_source_set_time(t->timer, when);
                return;
        }
        if (sd_event_add_time(m->event, &t->timer, CLOCK_MONOTONIC, when, 0, on_fill_timer, t) < 0)
                log_oom();
}

static void schedule_name(Preload *p, const char *name, double delay_s, const char *reason) {
        Tpl *t = tpl_get(p, name);
        if (t)
                schedule(t, delay_s, reason);
        else
                log_oom();
}

/* ---- hand-out ---------------------------------------------------------------------------- */

/* Upstream marks a preloaded disposable used when it is handed out or unpaused by anyone: off
 * the list, no longer internal (unless its template is), tagged for the caller, then
 * domain-preload-dispvm-used and a refill after preload-dispvm-delay. */
static void mark_used(Manager *m, Domain *d, Domain *tpl, const char *caller) {
        _cleanup_free_ char *delay = NULL;
        double delay_s = delay_of(tpl);

        remove_from_list(m, tpl, d->name);
        if (domain_feature_get(d, "internal") && isempty(domain_feature_get(tpl, "internal")))
                (void) domain_feature_remove(d, "internal", NULL);
        if (domain_feature_get(d, "preload-dispvm-in-progress"))
                (void) domain_feature_remove(d, "preload-dispvm-in-progress", NULL);
        if (caller) {
                _cleanup_free_ char *c = NULL, *dc = NULL;
                if (asprintf(&c, "created-by-%s", caller) >= 0)
                        (void) domain_tag_add(d, c, NULL);
                if (asprintf(&dc, "disp-created-by-%s", caller) >= 0)
                        (void) domain_tag_add(d, dc, NULL);
        }
        save(m);
        disp_forget(preload_of(m), d->name);
        delay = strdup(delay_text(tpl) ?: "3");
        app_emit_event(m->app, tpl, "domain-preload-dispvm-used", "dispvm", d->name, "delay", delay ?: "3");
        /* a negative delay: no refill while some remain */
        _cleanup_strv_free_ char **left = dispvm_preload_list(tpl);
        if (delay_s >= 0 || strv_length(left) == 0)
                schedule_name(preload_of(m), tpl->name, delay_s, NULL);
}

static void hand_out(Manager *m, Disp *ds) {
        Domain *d = app_get_domain(m->app, ds->name);
        Domain *tpl = app_get_domain(m->app, ds->template);
        sd_bus_message *msg = TAKE_PTR(ds->msg);
        _cleanup_free_ char *caller = TAKE_PTR(ds->caller);
        _cleanup_free_ char *path = NULL;
        int r;

        if (!d || !tpl) {
                r = sd_bus_reply_method_errno(msg, ENOENT, NULL);
        } else {
                mark_used(m, d, tpl, caller); /* forgets ds */
                path = domain_bus_path(d);
                r = path ? sd_bus_reply_method_return(msg, "so", d->name, path) : -ENOMEM;
        }
        if (r < 0)
                log_debug_errno(r, "Cannot answer CreateDisposable: %m");
        sd_bus_message_unref(msg);
}

static void on_request_unpaused(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        Preload *p = preload_of(m);
        Disp *ds = p ? hashmap_get(p->disps, name) : NULL;

        if (!ds)
                return;
        if (error < 0) {
                sd_bus_message *msg = TAKE_PTR(ds->msg);
                if (e && qerror_is_set(e))
                        (void) bus_reply_qerror(m, msg, e);
                else
                        (void) sd_bus_reply_method_errno(msg, -error, NULL);
                sd_bus_message_unref(msg);
                discard(m, app_get_domain(m->app, ds->template), name);
                save(m);
                return;
        }
        hand_out(m, ds);
}

int preload_request(Manager *m, Domain *tpl, const char *caller, sd_bus_message *msg) {
        Preload *p = preload_of(m);
        _cleanup_strv_free_ char **l = NULL;
        bool dropped = false;

        if (!p || !dispvm_is_template(tpl))
                return 0;
        l = dispvm_preload_list(tpl);
        if (!l)
                return -ENOMEM;
        STRV_FOREACH(n, l) {
                Domain *d = app_get_domain(m->app, *n);
                Disp *ds = hashmap_get(p->disps, *n);

                /* a preload still starting is left to finish: a fresh disposable is as quick */
                if (!d || !ds || ds->requested || ds->in_flight || !streq_ptr(d->power_state, "Paused"))
                        continue;
                if (dispvm_preload_outdated(d, tpl)) {
                        discard(m, tpl, *n);
                        dropped = true;
                        continue;
                }
                ds->requested = true;
                ds->caller = strdup(strempty(caller));
                ds->msg = sd_bus_message_ref(msg);
                if (!ds->caller || lifecycle_unpause(m, d, on_request_unpaused, NULL) < 0) {
                        ds->requested = false;
                        ds->msg = sd_bus_message_unref(ds->msg);
                        return -ENOMEM;
                }
                log_info("Handing out preloaded disposable %s of %s to %s.", *n, tpl->name, strempty(caller));
                return 1;
        }
        if (dropped) {
                save(m);
                schedule_name(p, tpl->name, 0, NULL);
        }
        return 0;
}

int preload_autostart(Manager *m, Domain *tpl, sd_bus_message *msg) {
        Preload *p = preload_of(m);
        _cleanup_qerror_ QError e = {};
        FillWaiter *w, **end;
        Tpl *t;

        if (dispvm_preload_supported(tpl, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        t = p ? tpl_get(p, tpl->name) : NULL;
        w = new0(FillWaiter, 1);
        if (!t || !w) {
                free(w);
                return -ENOMEM;
        }
        w->msg = sd_bus_message_ref(msg);
        for (end = &t->waiters; *end; end = &(*end)->next)
                ;
        *end = w;
        schedule(t, 0, "autostart was requested");
        return 1;
}

/* ---- what the model says ------------------------------------------------------------------ */

typedef enum Work {
        WORK_FILL,          /* the maximum or the template changed */
        WORK_TIDY,          /* a preload went: off the list, nothing new (a start that keeps failing
                             * would otherwise preload for ever) */
        WORK_UNPAUSED,      /* a preload was unpaused by someone: it is used */
        WORK_GLOBAL_CHANGE, /* dom0's preload-dispvm-max or the global default_dispvm */
} Work;

typedef struct Deferred {
        Preload *preload;
        Work work;
        char *name;
        char *reason;
        sd_event_source *source;
        struct Deferred *next;
} Deferred;

static void deferred_free(Deferred *w) {
        Deferred **pp;
        for (pp = &w->preload->deferred; *pp && *pp != w; pp = &(*pp)->next)
                ;
        if (*pp)
                *pp = w->next;
        sd_event_source_disable_unref(w->source);
        free(w->name);
        free(w->reason);
        free(w);
}

static int on_deferred(sd_event_source *s, void *userdata) {
        Deferred *w = userdata;
        Preload *p = w->preload;
        Manager *m = p->manager;

        switch (w->work) {
        case WORK_FILL:
                schedule_name(p, w->name, 0, w->reason);
                break;
        case WORK_TIDY: {
                Tpl *t = hashmap_get(p->templates, w->name);
                if (t)
                        tidy(t);
                break;
        }
        case WORK_UNPAUSED: {
                Disp *ds = hashmap_get(p->disps, w->name);
                Domain *d = app_get_domain(m->app, w->name);
                Domain *tpl = ds ? app_get_domain(m->app, ds->template) : NULL;
                if (ds && !ds->requested && !ds->in_flight && d && tpl && streq_ptr(d->power_state, "Running"))
                        mark_used(m, d, tpl, NULL);
                break;
        }
        case WORK_GLOBAL_CHANGE: {
                /* the global default_dispvm, old and new: each keeps what now applies to it */
                const PropDef *gp = global_prop_find("default_dispvm");
                PropValue v = {};
                if (gp && app_property_get(m->app, gp, &v, NULL) >= 0 && v.has_value && v.value)
                        schedule_name(p, v.value, 0, w->reason);
                prop_value_done(&v);
                if (w->name)
                        schedule_name(p, w->name, 0, NULL);
                break;
        }
        }
        deferred_free(w);
        return 0;
}

static void defer(Preload *p, Work work, const char *name, const char *reason) {
        Deferred *w = new0(Deferred, 1);
        if (!w)
                return (void) log_oom();
        w->preload = p;
        w->work = work;
        w->name = name ? strdup(name) : NULL;
        w->reason = reason ? strdup(reason) : NULL;
        w->next = p->deferred;
        p->deferred = w;
        if ((name && !w->name) || (reason && !w->reason) ||
            sd_event_add_defer(p->manager->event, &w->source, on_deferred, w) < 0) {
                deferred_free(w);
                log_oom();
        }
}

static const char *kv_get(const char *const *kv, size_t n_kv, const char *key) {
        for (size_t i = 0; i + 1 < n_kv; i += 2)
                if (streq(kv[i], key))
                        return kv[i + 1];
        return NULL;
}

static void on_model_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                           void *userdata) {
        Preload *p = userdata;
        const char *prop;

        if (!subject) {
                const char *vm = kv_get(kv, n_kv, "vm");
                if (streq(event, "domain-delete") && vm) {
                        Disp *ds = hashmap_get(p->disps, vm);
                        /* gone (killed, stopped, removed): off its template's list */
                        if (ds)
                                defer(p, WORK_TIDY, ds->template, NULL);
                        disp_forget(p, vm);
                } else if (streq(event, "property-set:default_dispvm") ||
                           streq(event, "property-reset:default_dispvm")) {
                        Domain *dom0 = app_dom0(app);
                        if (dom0 && domain_feature_get(dom0, "preload-dispvm-max"))
                                defer(p, WORK_GLOBAL_CHANGE, kv_get(kv, n_kv, "oldvalue"), NULL);
                }
                return;
        }
        if (streq(event, "domain-feature-set:preload-dispvm-max") ||
            streq(event, "domain-feature-delete:preload-dispvm-max")) {
                bool set = startswith(event, "domain-feature-set:");
                const char *value = kv_get(kv, n_kv, "value"), *old = kv_get(kv, n_kv, "oldvalue");
                _cleanup_free_ char *reason = NULL;

                if (set && streq_ptr(value, old))
                        return;
                if (subject->klass == QUBES_CLASS_ADMINVM) {
                        if (set && asprintf(&reason, "global feature was set to '%s'", strempty(value)) < 0)
                                return (void) log_oom();
                        defer(p, WORK_GLOBAL_CHANGE, NULL, reason);
                        return;
                }
                if (!dispvm_is_template(subject) || dispvm_preload_global_applies(subject))
                        return;
                if (set && asprintf(&reason, "local feature was set to '%s'", strempty(value)) < 0)
                        return (void) log_oom();
                defer(p, WORK_FILL, subject->name, reason);
                return;
        }
        if (streq(event, "domain-unpaused")) {
                if (hashmap_get(p->disps, subject->name))
                        defer(p, WORK_UNPAUSED, subject->name, NULL);
                return;
        }
        /* a template's own change may make its preloads outdated (or no longer wanted) */
        prop = startswith(event, "property-set:");
        if (!prop)
                prop = startswith(event, "property-reset:");
        if (prop && !startswith(prop, "xid") && !startswith(prop, "start_time") && !streq(prop, "stubdom_xid") &&
            !streq(prop, "icon") && hashmap_get(p->templates, subject->name))
                defer(p, WORK_FILL, subject->name, NULL);
}

/* ---- start and end ------------------------------------------------------------------------ */

/* Preloads in qubes.xml come from before qubesd started: they cannot be handed out (their state
 * is unknown) and go; then every template fills, as upstream's qubes-preload-dispvm service
 * asks at boot. */
static void on_hypervisor_settled(Manager *m) {
        Preload *p = preload_of(m);
        _cleanup_free_ Domain **all = NULL;

        if (!p)
                return;
        p->settled = true;
        all = app_domains_sorted(m->app, NULL);
        if (!all)
                return (void) log_oom();
        for (Domain **d = all; *d; d++) {
                _cleanup_strv_free_ char **l = NULL;
                if (!dispvm_is_template(*d))
                        continue;
                l = dispvm_preload_list(*d);
                if (strv_length(l) > 0 || dispvm_preload_max(*d) > 0)
                        schedule_name(p, (*d)->name, 0, dispvm_preload_max(*d) > 0 ? "autostart was requested" : NULL);
        }
}

int preload_init(Manager *m) {
        Preload *p = new0(Preload, 1);
        int r;

        if (!p)
                return log_oom();
        p->manager = m;
        p->templates = hashmap_new();
        p->disps = hashmap_new();
        if (!p->templates || !p->disps) {
                hashmap_free(p->templates);
                hashmap_free(p->disps);
                free(p);
                return log_oom();
        }
        r = app_add_listener(m->app, on_model_event, p);
        if (r < 0) {
                hashmap_free(p->templates);
                hashmap_free(p->disps);
                free(p);
                return log_oom();
        }
        m->preload = p;
        m->hypervisor_settled = on_hypervisor_settled;
        return 0;
}

void preload_done(Manager *m) {
        Preload *p = preload_of(m);
        size_t i = 0;
        void *v;

        if (!p)
                return;
        app_remove_listener(m->app, on_model_event, p);
        m->hypervisor_settled = NULL;
        while (p->deferred)
                deferred_free(p->deferred);
        while (hashmap_iterate(p->templates, &i, NULL, &v))
                tpl_free(v);
        hashmap_free(p->templates);
        i = 0;
        while (hashmap_iterate(p->disps, &i, NULL, &v))
                disp_free(v);
        hashmap_free(p->disps);
        free(p);
        m->preload = NULL;
}
