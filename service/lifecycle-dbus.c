/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lifecycle methods on the bus: a second vtable on org.qubes_os.Admin1.Domain (sd-bus
 * merges several vtables of one interface; ours has its own userdata), a second one on
 * org.qubes_os.Admin1.Manager (CreateDisposable, StartQubes, ShutdownQubes), and the Job
 * objects of the set operations. Every method replies when the operation has finished: the
 * call's message is kept (referenced) until then. */
#include <inttypes.h>

#include "auth.h"
#include "bus-error.h"
#include "commit.h"
#include "job-dbus.h"
#include "lifecycle-dbus.h"
#include "storage/storage.h"
#include "lifecycle.h"
#include "preload.h"

#include "util/log.h"
#include "util/strv.h"

static void reply_op(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        sd_bus_message *msg = userdata;
        int r;

        if (error < 0 && e && qerror_is_set(e))
                r = bus_reply_qerror(m, msg, e);
        else if (error < 0)
                r = sd_bus_reply_method_errno(msg, -error, NULL);
        else
                r = sd_bus_reply_method_return(msg, NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot reply to a lifecycle call for %s: %m", name);
        sd_bus_message_unref(msg);
}

typedef int (*SimpleLifecycleFn)(Manager *m, Domain *d, OpDoneFn done, void *userdata);

static int run_op(sd_bus_message *msg, Domain *d, SimpleLifecycleFn fn) {
        _cleanup_qerror_ QError denied = {};
        Manager *m = call_manager(msg);
        int r = auth_check(m, msg, AUTH_LIFECYCLE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        sd_bus_message_ref(msg);
        r = fn(m, d, reply_op, msg);
        if (r < 0) {
                sd_bus_message_unref(msg);
                return r;
        }
        return 1;
}

static int method_start(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return run_op(msg, userdata, lifecycle_start);
}
static int method_kill(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return run_op(msg, userdata, lifecycle_kill);
}
static int method_pause(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return run_op(msg, userdata, lifecycle_pause);
}
static int method_unpause(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return run_op(msg, userdata, lifecycle_unpause);
}
static int method_suspend(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return run_op(msg, userdata, lifecycle_suspend);
}
static int method_resume(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return run_op(msg, userdata, lifecycle_resume);
}
static int method_restart(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return run_op(msg, userdata, lifecycle_restart);
}

static int method_shutdown(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        int force, wait;
        int r = auth_check(m, msg, AUTH_LIFECYCLE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "bb", &force, &wait);
        if (r < 0)
                return r;
        sd_bus_message_ref(msg);
        r = lifecycle_shutdown(m, d, force, wait, reply_op, msg);
        if (r < 0) {
                sd_bus_message_unref(msg);
                return r;
        }
        return 1;
}

static void reply_console(Manager *m, const char *name, int error, const QError *e, const char *tty, void *userdata) {
        sd_bus_message *msg = userdata;
        int r;

        if (error < 0 && e && qerror_is_set(e))
                r = bus_reply_qerror(m, msg, e);
        else if (error < 0)
                r = sd_bus_reply_method_errno(msg, -error, NULL);
        else
                r = sd_bus_reply_method_return(msg, "s", strempty(tty));
        if (r < 0)
                log_debug_errno(r, "Cannot reply to GetConsole for %s: %m", name);
        sd_bus_message_unref(msg);
}

/* The console is a terminal into the qube: who may start and stop it may use it
 * (admin.vm.Console is a write method in upstream's policy). */
static int method_get_console(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        int r = auth_check(m, msg, AUTH_LIFECYCLE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        sd_bus_message_ref(msg);
        r = lifecycle_console(m, d, reply_console, msg);
        if (r < 0) {
                sd_bus_message_unref(msg);
                return r;
        }
        return 1;
}

static const sd_bus_vtable lifecycle_domain_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Start", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_start, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Shutdown", SD_BUS_ARGS("b", force, "b", wait), SD_BUS_NO_RESULT, method_shutdown,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Kill", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_kill, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Pause", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_pause, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Unpause", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_unpause,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Suspend", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_suspend,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Resume", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_resume, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Restart", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_restart,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetConsole", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", pty), method_get_console,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Stats", SD_BUS_ARGS("a(ss)", stats), 0),
        SD_BUS_VTABLE_END,
};

static int lifecycle_domain_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                                 sd_bus_error *error) {
        Manager *m = userdata;
        Domain *d = domain_of_bus_path(m->app, path);
        if (!d)
                return 0;
        *found = d;
        return 1;
}

/* ---- StartQubes, ShutdownQubes: one Job for a set of qubes ---------------------------------- */

typedef enum ItemState { ITEM_PENDING, ITEM_RUNNING, ITEM_DONE } ItemState;

/* The items a batch begins in one loop iteration; the next ones begin in the iterations after,
 * so that the calls that came meanwhile are answered in between (20 starts begun at once kept
 * the loop 2-5 ms from any reader: bench-lifecycle). */
#define BATCH_ITEMS_PER_ITERATION 4

typedef struct Batch {
        unsigned n_ref; /* one while items are left, one per loop running items */
        Manager *manager;
        Job *job;
        bool shutdown, force;
        bool exiting; /* qubesd stops: what has not begun never will */
        char **qubes;
        ItemState *items;
        size_t n, n_done;
        sd_event_source *pump;    /* begins the next items in a later iteration */
        sd_event_source *on_exit; /* ends the items that never began */
} Batch;

typedef struct BatchItem {
        Batch *batch;
        size_t index;
} BatchItem;

static Batch *batch_unref(Batch *b) {
        if (!b || --b->n_ref > 0)
                return NULL;
        sd_event_source_disable_unref(b->pump);
        sd_event_source_disable_unref(b->on_exit);
        strv_free(b->qubes);
        free(b->items);
        free(b);
        return NULL;
}

static void batch_pump(Batch *b);

/* The batch is over when every item is: the job finishes and the batch goes. */
static void batch_item_done(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        BatchItem *it = userdata;
        Batch *b = it->batch;
        size_t i = it->index;

        free(it);
        if (b->items[i] == ITEM_DONE)
                return;
        b->items[i] = ITEM_DONE;
        b->n_done++;
        if (error < 0 && job_add_failure(b->job, b->qubes[i], e, error) < 0)
                log_oom();
        job_progress(b->job, b->n_done, b->n);
        if (b->n_done == b->n) {
                job_finish(b->job, NULL);
                batch_unref(b);
        } else if (b->shutdown)
                batch_pump(b);
}

/* Runs item i; may finish the batch (the caller holds a reference). */
static void batch_run_item(Batch *b, size_t i) {
        Manager *m = b->manager;
        Domain *d = app_get_domain(m->app, b->qubes[i]);
        BatchItem *it = new0(BatchItem, 1);
        int r;

        b->items[i] = ITEM_RUNNING;
        if (!it) {
                _cleanup_qerror_ QError e = {};
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Out of memory");
                b->items[i] = ITEM_DONE;
                (void) job_add_failure(b->job, b->qubes[i], &e, -ENOMEM);
                if (++b->n_done == b->n) {
                        job_finish(b->job, NULL);
                        batch_unref(b);
                }
                return;
        }
        it->batch = b;
        it->index = i;
        if (!d) {
                _cleanup_qerror_ QError e = {};
                qerror_set(&e, QERR_VM_NOT_FOUND, "No such domain: '%s'", b->qubes[i]);
                return batch_item_done(m, b->qubes[i], -ENOENT, &e, it);
        }
        if (!b->shutdown)
                r = lifecycle_start(m, d, batch_item_done, it);
        else if (!domain_is_running(d))
                return batch_item_done(m, d->name, 0, NULL, it); /* already off: nothing to do */
        else
                r = lifecycle_shutdown(m, d, b->force, true, batch_item_done, it);
        if (r < 0)
                batch_item_done(m, d->name, r, NULL, it);
}

static int on_pump(sd_event_source *s, void *userdata) {
        batch_pump(userdata);
        return 0;
}

/* qubesd stops (its loop exits): the items that have not begun end with the job; the running
 * ones are answered by lifecycle_done(). */
static int on_batch_exit(sd_event_source *s, void *userdata) {
        Batch *b = userdata;
        _cleanup_qerror_ QError e = {};

        qerror_set(&e, QERR_QUBES_EXCEPTION, "qubesd is shutting down");
        b->exiting = true;
        b->n_ref++;
        for (size_t i = 0; i < b->n && b->n_done < b->n; i++) {
                if (b->items[i] != ITEM_PENDING)
                        continue;
                BatchItem *it = new0(BatchItem, 1);
                if (!it)
                        break;
                it->batch = b;
                it->index = i;
                batch_item_done(b->manager, b->qubes[i], -ECANCELED, &e, it);
        }
        batch_unref(b);
        return 0;
}

/* The rest in a later loop iteration. */
static void batch_pump_later(Batch *b) {
        sd_event *event = b->manager->event;
        int r = 0;

        if (!b->on_exit && sd_event_add_exit(event, &b->on_exit, on_batch_exit, b) < 0)
                log_oom();
        if (!b->pump) {
                r = sd_event_add_defer(event, &b->pump, on_pump, b);
                if (r >= 0)
                        (void) sd_event_source_set_description(b->pump, "batch-pump");
        }
        if (r >= 0)
                r = sd_event_source_set_enabled(b->pump, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Cannot continue %s later: %m", job_path(b->job));
}

/* Begins the items that may begin, BATCH_ITEMS_PER_ITERATION of them, the rest later. Starts
 * all may begin: each start brings up its netvm chain first and waits for a start of the same
 * qube already in progress, so the dependency order holds. A qube goes down only once no running
 * qube of the set still uses it as its netvm: clients first, then their netvms (reverse
 * dependency order). */
static void batch_pump(Batch *b) {
        Manager *m = b->manager;
        bool started = false, busy = false;
        size_t n = b->n, begun = 0;

        if (b->exiting)
                return;
        b->n_ref++;
        for (size_t i = 0; i < n && b->n_done < n; i++) {
                if (b->items[i] != ITEM_PENDING)
                        continue;
                bool blocked = false;
                for (size_t k = 0; b->shutdown && k < n && !blocked; k++) {
                        if (k == i || b->items[k] == ITEM_DONE)
                                continue;
                        Domain *client = app_get_domain(m->app, b->qubes[k]);
                        if (client && domain_is_running(client) && domain_netvm(client) &&
                            streq(domain_netvm(client)->name, b->qubes[i]))
                                blocked = true;
                }
                if (blocked)
                        continue;
                started = true;
                if (begun++ == BATCH_ITEMS_PER_ITERATION) {
                        batch_pump_later(b);
                        break;
                }
                batch_run_item(b, i);
        }
        for (size_t i = 0; i < n; i++)
                if (b->items[i] == ITEM_RUNNING)
                        busy = true;
        if (!started && !busy)
                /* only a loop could block every qube; break it rather than hang */
                for (size_t i = 0; i < n && b->n_done < n; i++)
                        if (b->items[i] == ITEM_PENDING)
                                batch_run_item(b, i);
        batch_unref(b);
}

/* ---- Manager methods -------------------------------------------------------------------- */

static int read_qubes(Manager *m, sd_bus_message *msg, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_qerror_ QError e = {};
        int r = sd_bus_message_read_strv(msg, &names);
        if (r < 0)
                return r;
        for (char **n = names; n && *n; n++) {
                Domain *d;
                if (auth_resolve_domain(m, msg, *n, &d, &e) < 0) {
                        r = bus_reply_qerror(m, msg, &e);
                        return r < 0 ? r : 0;
                }
                /* by name from here on (a uuid: reference resolves once) */
                free(*n);
                *n = strdup(d->name);
                if (!*n)
                        return -ENOMEM;
                r = auth_check(m, msg, AUTH_LIFECYCLE, d, &e);
                if (r < 0) {
                        r = bus_reply_qerror(m, msg, &e);
                        return r < 0 ? r : 0; /* refused */
                }
                if (r == 0)
                        return 0; /* held until polkit answers */
        }
        /* one operation per qube, even when named twice */
        _cleanup_strv_free_ char **uniq = NULL;
        for (char **n = names; n && *n; n++)
                if (!strv_contains(uniq, *n) && strv_extend(&uniq, *n) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(uniq);
        return 1;
}

static int start_batch(sd_bus_message *msg, Manager *m, bool shutdown, bool force) {
        _cleanup_strv_free_ char **names = NULL;
        Batch *b;
        int r = read_qubes(m, msg, &names);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        if (!names) {
                /* an empty set: a job that is done at once */
                names = new0(char *, 1);
                if (!names)
                        return -ENOMEM;
        }
        b = new0(Batch, 1);
        if (!b)
                return -ENOMEM;
        b->n_ref = 1;
        b->manager = m;
        b->shutdown = shutdown;
        b->force = force;
        b->n = strv_length(names);
        b->items = new0(ItemState, b->n);
        b->qubes = TAKE_PTR(names);
        if (!b->items) {
                batch_unref(b);
                return -ENOMEM;
        }
        r = job_new(m,
                    &(JobSpec){
                            .operation = shutdown ? "ShutdownQubes" : "StartQubes",
                            .caller = auth_caller_qube(m, msg),
                            .qubes = b->qubes,
                            .action = AUTH_LIFECYCLE,
                    },
                    &b->job);
        if (r < 0) {
                batch_unref(b);
                return r;
        }
        job_progress(b->job, 0, b->n);
        r = sd_bus_reply_method_return(msg, "o", job_path(b->job));
        if (r < 0)
                log_debug_errno(r, "Cannot reply with %s: %m", job_path(b->job));
        if (b->n == 0) {
                job_finish(b->job, NULL);
                batch_unref(b);
        } else
                batch_pump(b);
        return 1;
}

static int method_start_qubes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return start_batch(msg, userdata, false, false);
}

static int method_shutdown_qubes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_strv_free_ char **names = NULL;
        int force;
        /* read the flag after the names: start_job reads the names itself */
        int r = sd_bus_message_skip(msg, "as");
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "b", &force);
        if (r < 0)
                return r;
        r = sd_bus_message_rewind(msg, true);
        if (r < 0)
                return r;
        return start_batch(msg, userdata, true, force);
}

typedef struct DispCall {
        sd_bus_message *msg;
        char *name;
} DispCall;

static void disp_started(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        DispCall *c = userdata;
        Domain *d = app_get_domain(m->app, c->name);

        if (error < 0) {
                _cleanup_qerror_ QError rm = {};
                /* nothing of a disposable that never ran may stay behind */
                if (d && !domain_is_running(d))
                        (void) storage_remove_domain(m->app, d, &rm);
                reply_op(m, name, error, e, c->msg);
        } else {
                _cleanup_free_ char *path = d ? domain_bus_path(d) : NULL;
                if (path)
                        (void) sd_bus_reply_method_return(c->msg, "so", c->name, path);
                else
                        (void) sd_bus_reply_method_errno(c->msg, ENOENT, NULL);
                sd_bus_message_unref(c->msg);
        }
        free(c->name);
        free(c);
}

/* What makes a new qube a disposable of its caller (in the creation's transaction). */
static int prepare_disposable(Domain *d, void *userdata, QError *e) {
        int r = domain_property_set(d, "auto_cleanup", "True", 4, e);
        return r < 0 ? r : domain_tag_add(d, userdata, e);
}

static int method_create_disposable(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {}, denied = {};
        _cleanup_free_ char *dflt = NULL, *label = NULL, *tag = NULL;
        const char *ref, *caller;
        Domain *tpl = NULL, *d = NULL;
        DispCall *c;
        int r;

        r = sd_bus_message_read(msg, "s", &ref);
        if (r < 0)
                return r;
        caller = auth_caller_qube(m, msg);
        if (isempty(ref)) {
                /* upstream with dest dom0: the caller's default_dispvm */
                Domain *src = app_get_domain(m->app, caller);
                if (src && domain_prop_find(src->klass, "default_dispvm"))
                        dflt = domain_property_string(src, "default_dispvm");
                if (!dflt) {
                        qerror_set(&e, QERR_QUBES_EXCEPTION, "No default disposable template for %s", caller);
                        return bus_reply_qerror(m, msg, &e);
                }
                ref = dflt;
        }
        if (auth_resolve_domain(m, msg, ref, &tpl, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        r = auth_check(m, msg, AUTH_CREATE_REMOVE, tpl, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = auth_check(m, msg, AUTH_LIFECYCLE, tpl, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */

        /* a preloaded one is handed out at once when there is one */
        r = preload_request(m, tpl, caller, msg);
        if (r != 0)
                return r < 0 ? r : 1;

        label = domain_property_string(tpl, "label");
        CreateParams p = {
                .klass = QUBES_CLASS_DISPVM,
                .label = label,
                .template_name = tpl->name,
                .creator = caller,
        };
        if (asprintf(&tag, "disp-created-by-%s", caller) < 0)
                return -ENOMEM;
        /* one transaction: the qube with its auto_cleanup and tag, or nothing */
        r = storage_create_domain_with(m->app, &p, prepare_disposable, tag, &d, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;

        c = new0(DispCall, 1);
        if (!c)
                return -ENOMEM;
        c->msg = sd_bus_message_ref(msg);
        c->name = strdup(d->name);
        if (!c->name) {
                sd_bus_message_unref(c->msg);
                free(c);
                return -ENOMEM;
        }
        r = lifecycle_start(m, d, disp_started, c);
        if (r < 0) {
                sd_bus_message_unref(c->msg);
                free(c->name);
                free(c);
                return r;
        }
        return 1;
}

/* admin.vm.CreateDisposable+preload: fill the template's preloaded disposables; the reply comes
 * once they are started (upstream checks no template_for_dispvms on this path). */
static int method_preload_disposables(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {}, denied = {};
        _cleanup_free_ char *dflt = NULL;
        const char *ref, *caller;
        Domain *tpl = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &ref);
        if (r < 0)
                return r;
        caller = auth_caller_qube(m, msg);
        if (isempty(ref)) {
                Domain *src = app_get_domain(m->app, caller);
                if (src && domain_prop_find(src->klass, "default_dispvm"))
                        dflt = domain_property_string(src, "default_dispvm");
                if (!dflt) {
                        qerror_set(&e, QERR_QUBES_EXCEPTION, "No default disposable template for %s", caller);
                        return bus_reply_qerror(m, msg, &e);
                }
                ref = dflt;
        }
        if (auth_resolve_domain(m, msg, ref, &tpl, &e) < 0)
                return bus_reply_qerror(m, msg, &e);
        r = auth_check(m, msg, AUTH_CREATE_REMOVE, tpl, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = auth_check(m, msg, AUTH_LIFECYCLE, tpl, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        return preload_autostart(m, tpl, msg);
}

static const sd_bus_vtable lifecycle_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CreateDisposable", SD_BUS_ARGS("s", template), SD_BUS_RESULT("s", name, "o", path),
                                method_create_disposable, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PreloadDisposables", SD_BUS_ARGS("s", template), SD_BUS_NO_RESULT,
                                method_preload_disposables, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartQubes", SD_BUS_ARGS("as", names), SD_BUS_RESULT("o", job), method_start_qubes,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ShutdownQubes", SD_BUS_ARGS("as", names, "b", force), SD_BUS_RESULT("o", job),
                                method_shutdown_qubes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static const BusObjectImplementation lifecycle_domain_object = {
        .path = QUBESD_DOMAIN_PREFIX,
        .interface = QUBESD_IFACE_DOMAIN,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = lifecycle_domain_vtable, .find = lifecycle_domain_find }),
};

/* A second vtable on org.qubes_os.Admin1.Manager and on org.qubes_os.Admin1.Domain (sd-bus
 * merges the vtables of one interface), and the Job objects. */
const BusObjectImplementation lifecycle_object = {
        .path = QUBESD_ROOT_PATH,
        .interface = QUBESD_IFACE_MANAGER,
        .vtables = BUS_VTABLES({ .vtable = lifecycle_manager_vtable }),
        .children = BUS_IMPLEMENTATIONS(&lifecycle_domain_object),
};
