/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lifecycle methods on the bus: a second vtable on org.qubes_os.Admin1.Domain (sd-bus
 * merges several vtables of one interface; ours has its own userdata), a second one on
 * org.qubes_os.Admin1.Manager (CreateDisposable, StartQubes, ShutdownQubes), and the Job
 * objects of the set operations. Every method replies when the operation has finished: the
 * call's message is kept (referenced) until then. */
#include <inttypes.h>

#include "auth.h"
#include "bus-error.h"
#include "lifecycle-dbus.h"
#include "vmm.h"

#include "util/log.h"
#include "util/strv.h"

/* a finished job stays on the bus this long, so that a client that was slow to subscribe
 * can still read its outcome */
#define JOB_LINGER_USEC (300ULL * 1000000ULL)

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

/* ---- jobs ------------------------------------------------------------------------------- */

typedef enum JobItemState { ITEM_PENDING, ITEM_RUNNING, ITEM_DONE } JobItemState;

typedef struct Job {
        Manager *manager;
        unsigned id;
        char *key; /* decimal id */
        char *path;
        const char *operation; /* "StartQubes", "ShutdownQubes" */
        char **qubes;
        JobItemState *items;
        size_t n, n_done;
        bool force;
        const char *state; /* "running", "succeeded", "failed" */
        char **failures;   /* qube, error name, message, … */
        sd_event_source *linger;
} Job;

typedef struct JobItemRef {
        Job *job;
        size_t index;
} JobItemRef;

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        sd_event_source_disable_unref(j->linger);
        free(j->key);
        free(j->path);
        strv_free(j->qubes);
        free(j->items);
        strv_free(j->failures);
        free(j);
        return NULL;
}

static int on_job_linger(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;
        Manager *m = j->manager;
        manager_emit_object_removed(m, j->path);
        hashmap_remove(vmm_of(m)->jobs, j->key);
        j->linger = sd_event_source_disable_unref(j->linger);
        job_free(j);
        return 0;
}

static int send_finished(sd_bus *bus, void *userdata) {
        Job *j = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        int r = sd_bus_message_new_signal(bus, &sig, j->path, QUBESD_IFACE_JOB, "Finished");
        if (r >= 0)
                r = sd_bus_message_append(sig, "s", j->state);
        if (r >= 0)
                r = sd_bus_message_open_container(sig, 'a', "(sss)");
        for (char **f = j->failures; r >= 0 && f && f[0] && f[1] && f[2]; f += 3)
                r = sd_bus_message_append(sig, "(sss)", f[0], f[1], f[2]);
        if (r >= 0)
                r = sd_bus_message_close_container(sig);
        if (r >= 0)
                r = sd_bus_send(bus, sig, NULL);
        return r;
}

static void job_finish(Job *j) {
        Manager *m = j->manager;
        uint64_t now;

        j->state = j->failures ? "failed" : "succeeded";
        manager_emit_properties_changed(m, j->path, QUBESD_IFACE_JOB, "State", "Progress");
        manager_send_everywhere(m, send_finished, j, "Finished");
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) >= 0)
                (void) sd_event_add_time(m->event, &j->linger, CLOCK_MONOTONIC, now + JOB_LINGER_USEC, 0, on_job_linger,
                                         j);
}

static void job_pump_shutdown(Job *j);

static void job_item_done(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        JobItemRef *ref = userdata;
        Job *j = ref->job;
        size_t i = ref->index;

        free(ref);
        if (j->items[i] == ITEM_DONE)
                return;
        j->items[i] = ITEM_DONE;
        j->n_done++;
        if (error < 0) {
                _cleanup_free_ char *msg = e ? qerror_message(e) : NULL;
                (void) strv_extend(&j->failures, j->qubes[i]);
                (void) strv_extend(&j->failures, e && qerror_is_set(e) ? qubes_error_dbus_name(e->code)
                                                                       : "org.freedesktop.DBus.Error.Failed");
                (void) strv_extend(&j->failures, msg ?: strerror(-error));
        }
        manager_emit_properties_changed(m, j->path, QUBESD_IFACE_JOB, "Progress");
        if (j->n_done == j->n)
                job_finish(j);
        else if (streq(j->operation, "ShutdownQubes"))
                job_pump_shutdown(j);
}

static void job_run_item(Job *j, size_t i) {
        Manager *m = j->manager;
        Domain *d = app_get_domain(m->app, j->qubes[i]);
        JobItemRef *ref = new0(JobItemRef, 1);
        int r;

        j->items[i] = ITEM_RUNNING;
        if (!ref) {
                j->items[i] = ITEM_DONE;
                j->n_done++;
                return;
        }
        ref->job = j;
        ref->index = i;
        if (!d) {
                _cleanup_qerror_ QError e = {};
                qerror_set(&e, QERR_VM_NOT_FOUND, "No such domain: '%s'", j->qubes[i]);
                return job_item_done(m, j->qubes[i], -ENOENT, &e, ref);
        }
        if (streq(j->operation, "StartQubes"))
                r = lifecycle_start(m, d, job_item_done, ref);
        else if (!domain_is_running(d))
                return job_item_done(m, d->name, 0, NULL, ref); /* already off: nothing to do */
        else
                r = lifecycle_shutdown(m, d, j->force, true, job_item_done, ref);
        if (r < 0)
                job_item_done(m, d->name, r, NULL, ref);
}

/* A qube goes down only once no running qube of the set still uses it as its netvm: clients
 * first, then their netvms (reverse dependency order). */
static void job_pump_shutdown(Job *j) {
        Manager *m = j->manager;
        bool started = false, busy = false;

        for (size_t i = 0; i < j->n; i++) {
                if (j->items[i] != ITEM_PENDING)
                        continue;
                bool blocked = false;
                for (size_t k = 0; k < j->n && !blocked; k++) {
                        if (k == i || j->items[k] == ITEM_DONE)
                                continue;
                        Domain *client = app_get_domain(m->app, j->qubes[k]);
                        if (client && domain_is_running(client) && domain_netvm(client) &&
                            streq(domain_netvm(client)->name, j->qubes[i]))
                                blocked = true;
                }
                if (blocked)
                        continue;
                started = true;
                job_run_item(j, i);
                if (j->n_done == j->n)
                        return; /* job_item_done finished (and may have freed nothing yet) the job */
        }
        for (size_t i = 0; i < j->n; i++)
                if (j->items[i] == ITEM_RUNNING)
                        busy = true;
        if (!started && !busy)
                /* only a loop could block every qube; break it rather than hang */
                for (size_t i = 0; i < j->n; i++)
                        if (j->items[i] == ITEM_PENDING)
                                job_run_item(j, i);
}

static int job_new(Manager *m, const char *operation, char **qubes, bool force, Job **ret) {
        Vmm *v = vmm_of(m);
        Job *j = new0(Job, 1);
        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->id = ++v->next_job;
        j->operation = operation;
        j->force = force;
        j->state = "running";
        j->qubes = strv_copy(qubes);
        j->n = strv_length(qubes);
        j->items = new0(JobItemState, j->n);
        if (asprintf(&j->key, "%u", j->id) < 0)
                j->key = NULL;
        if (!j->qubes || !j->items || !j->key || sd_bus_path_encode(QUBESD_JOB_PREFIX, j->key, &j->path) < 0 ||
            hashmap_put(v->jobs, j->key, j) < 0) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

/* A local user sees a job when they see every qube it is about (auth.c). */
static bool job_visible(Manager *m, sd_bus *bus, const Job *j) {
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        for (char **q = j->qubes; q && *q; q++) {
                Domain *d = app_get_domain(m->app, *q);
                if (!auth_sees(m, msg, d))
                        return false;
        }
        return true;
}

static int job_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                    sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *key = NULL;
        int r = sd_bus_path_decode(path, QUBESD_JOB_PREFIX, &key);
        if (r <= 0)
                return r;
        Job *j = hashmap_get(vmm_of(m)->jobs, key);
        if (!j || !job_visible(m, bus, j))
                return 0;
        *found = j;
        return 1;
}

static int job_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = NULL;
        size_t i = 0;
        void *val;

        while (hashmap_iterate(vmm_of(m)->jobs, &i, NULL, &val))
                if (job_visible(m, bus, val) && strv_extend(&l, ((Job *) val)->path) < 0)
                        return -ENOMEM;
        *nodes = TAKE_PTR(l);
        return 1;
}

static int job_get_operation(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", ((Job *) userdata)->operation);
}

static int job_get_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "d", j->n ? (double) j->n_done / (double) j->n : 1.0);
}

static int job_get_qubes(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_strv(reply, ((Job *) userdata)->qubes);
}

static int job_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", ((Job *) userdata)->state);
}

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Operation", "s", job_get_operation, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Progress", "d", job_get_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Qubes", "as", job_get_qubes, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", job_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_SIGNAL_WITH_ARGS("Finished", SD_BUS_ARGS("s", state, "a(sss)", failures), 0),
        SD_BUS_VTABLE_END,
};

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

static int start_job(sd_bus_message *msg, Manager *m, const char *operation, bool force) {
        _cleanup_strv_free_ char **names = NULL;
        Job *j;
        int r = read_qubes(m, msg, &names);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        if (!names) {
                /* an empty set: a job that is done at once */
                names = new0(char *, 1);
                if (!names)
                        return -ENOMEM;
        }
        r = job_new(m, operation, names, force, &j);
        if (r < 0)
                return r;
        manager_emit_object_added(m, j->path);
        r = sd_bus_reply_method_return(msg, "o", j->path);
        if (r < 0)
                return r;
        if (j->n == 0)
                job_finish(j);
        else if (streq(operation, "StartQubes"))
                /* all at once: each start brings up its netvm chain first and waits for a start
                 * of the same qube already in progress, so the dependency order holds */
                for (size_t i = 0; i < j->n && j->n_done < j->n; i++)
                        job_run_item(j, i);
        else
                job_pump_shutdown(j);
        return 1;
}

static int method_start_qubes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return start_job(msg, userdata, "StartQubes", false);
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
        return start_job(msg, userdata, "ShutdownQubes", force);
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
                if (d && !domain_is_running(d) && app_remove_domain(m->app, d, &rm) >= 0)
                        (void) manager_save(m, &rm);
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

        label = domain_property_string(tpl, "label");
        CreateParams p = {
                .klass = QUBES_CLASS_DISPVM,
                .label = label,
                .template_name = tpl->name,
                .creator = caller,
        };
        r = app_create_domain(m->app, &p, &d, &e);
        if (r >= 0)
                r = domain_property_set(d, "auto_cleanup", "True", 4, &e);
        if (r >= 0 && asprintf(&tag, "disp-created-by-%s", caller) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = domain_tag_add(d, tag, &e);
        if (r >= 0)
                r = manager_save(m, &e);
        if (r < 0) {
                _cleanup_qerror_ QError rm = {};
                if (d)
                        (void) app_remove_domain(m->app, d, &rm);
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        }

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

static const sd_bus_vtable lifecycle_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CreateDisposable", SD_BUS_ARGS("s", template), SD_BUS_RESULT("s", name, "o", path),
                                method_create_disposable, SD_BUS_VTABLE_UNPRIVILEGED),
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

static const BusObjectImplementation job_object = {
        .path = QUBESD_JOB_PREFIX,
        .interface = QUBESD_IFACE_JOB,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = job_vtable, .find = job_find }),
        .node_enumerator = job_enumerate,
};

/* A second vtable on org.qubes_os.Admin1.Manager and on org.qubes_os.Admin1.Domain (sd-bus
 * merges the vtables of one interface), and the Job objects. */
const BusObjectImplementation lifecycle_object = {
        .path = QUBESD_ROOT_PATH,
        .interface = QUBESD_IFACE_MANAGER,
        .vtables = BUS_VTABLES({ .vtable = lifecycle_manager_vtable }),
        .children = BUS_IMPLEMENTATIONS(&lifecycle_domain_object, &job_object),
};

void lifecycle_dbus_free(Manager *m) {
        Vmm *v = vmm_of(m);
        size_t i = 0;
        void *val;

        while (hashmap_iterate(v->jobs, &i, NULL, &val))
                job_free(val);
}
