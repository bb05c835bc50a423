/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one Job type: every long operation's object on the bus, its progress and its end. */
#include "job-dbus.h"

#include <inttypes.h>

#include "bus-error.h"
#include "manager.h"
#include "util/log.h"
#include "util/strv.h"

/* a finished job stays on the bus this long, so that a client that was slow to subscribe can
 * still read its outcome */
#define JOB_LINGER_USEC (300ULL * 1000000ULL)
/* progress is announced at most this often */
#define JOB_PROGRESS_USEC (250ULL * 1000ULL)

struct Job {
        Manager *manager;
        char *key; /* the number, in decimal: the key in Manager.jobs */
        char *path;
        char *operation, *caller;
        char **qubes;
        AuthAction action;
        bool bytes;
        JobCancelFn cancel;
        JobProgressFn progress_changed;
        void *userdata;
        const char *state; /* "running", "succeeded", "failed" */
        char **failures;   /* qube, error name, message, … */
        _Atomic uint64_t done, total;
        uint64_t announced_done, announced_total;
        sd_event_source *progress_timer, *linger;
};

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        sd_event_source_disable_unref(j->progress_timer);
        sd_event_source_disable_unref(j->linger);
        free(j->key);
        free(j->path);
        free(j->operation);
        free(j->caller);
        strv_free(j->qubes);
        strv_free(j->failures);
        free(j);
        return NULL;
}

const char *job_path(const Job *j) {
        return j->path;
}

_Atomic uint64_t *job_done_counter(Job *j) {
        return &j->done;
}

uint64_t job_done(const Job *j) {
        return atomic_load(&j->done);
}

uint64_t job_total(const Job *j) {
        return atomic_load(&j->total);
}

void job_progress(Job *j, uint64_t done, uint64_t total) {
        atomic_store(&j->total, total);
        atomic_store(&j->done, done);
}

static bool job_running(const Job *j) {
        return streq(j->state, "running");
}

/* Announce what changed since the last time. */
static void announce_progress(Job *j) {
        uint64_t done = atomic_load(&j->done), total = atomic_load(&j->total);

        if (done == j->announced_done && total == j->announced_total)
                return;
        j->announced_done = done;
        j->announced_total = total;
        if (j->bytes)
                manager_emit_properties_changed(j->manager, j->path, QUBESD_IFACE_JOB, "Progress", "BytesDone",
                                                "BytesTotal");
        else
                manager_emit_properties_changed(j->manager, j->path, QUBESD_IFACE_JOB, "Progress");
        if (j->progress_changed)
                j->progress_changed(j, j->userdata);
}

static int on_progress_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;
        announce_progress(j);
        (void) sd_event_source_set_time(s, usec + JOB_PROGRESS_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

int job_new(Manager *m, const JobSpec *spec, Job **ret) {
        Job *j = new0(Job, 1);
        uint64_t now;
        int r;

        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->action = spec->action;
        j->bytes = spec->bytes;
        j->cancel = spec->cancel;
        j->progress_changed = spec->progress_changed;
        j->userdata = spec->userdata;
        j->state = "running";
        j->operation = strdup(spec->operation);
        j->caller = strdup(strempty(spec->caller));
        j->qubes = spec->qubes ? strv_copy(spec->qubes) : new0(char *, 1);
        if (asprintf(&j->key, "%u", ++m->next_job) < 0)
                j->key = NULL;
        if (!j->operation || !j->caller || !j->qubes || !j->key ||
            sd_bus_path_encode(QUBESD_JOB_PREFIX, j->key, &j->path) < 0) {
                job_free(j);
                return -ENOMEM;
        }
        r = sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (r >= 0)
                r = sd_event_add_time(m->event, &j->progress_timer, CLOCK_MONOTONIC, now + JOB_PROGRESS_USEC, 0,
                                      on_progress_timer, j);
        if (r >= 0)
                r = hashmap_put(m->jobs, j->key, j);
        if (r < 0) {
                job_free(j);
                return r;
        }
        manager_emit_object_added(m, j->path);
        *ret = j;
        return 0;
}

int job_add_failure(Job *j, const char *qube, const QError *e, int error) {
        bool q = e && qerror_is_set(e);
        _cleanup_free_ char *msg = q ? qerror_message(e) : NULL;
        if (strv_extend(&j->failures, strempty(qube)) < 0 ||
            strv_extend(&j->failures, q ? qubes_error_dbus_name(e->code) : "org.freedesktop.DBus.Error.Failed") < 0 ||
            strv_extend(&j->failures, msg ?: strerror(error < 0 ? -error : EIO)) < 0)
                return -ENOMEM;
        return 0;
}

static int on_linger(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;
        Manager *m = j->manager;
        manager_emit_object_removed(m, j->path);
        hashmap_remove(m->jobs, j->key);
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

void job_finish(Job *j, const QError *e) {
        Manager *m = j->manager;
        uint64_t now;

        if (!job_running(j))
                return;
        if (e && qerror_is_set(e) && job_add_failure(j, j->qubes[0], e, 0) < 0)
                log_oom();
        j->state = j->failures || (e && qerror_is_set(e)) ? "failed" : "succeeded";
        j->progress_timer = sd_event_source_disable_unref(j->progress_timer);
        j->announced_done = atomic_load(&j->done);
        j->announced_total = atomic_load(&j->total);
        if (j->bytes)
                manager_emit_properties_changed(m, j->path, QUBESD_IFACE_JOB, "State", "Progress", "BytesDone",
                                                "BytesTotal");
        else
                manager_emit_properties_changed(m, j->path, QUBESD_IFACE_JOB, "State", "Progress");
        manager_send_everywhere(m, send_finished, j, "Finished");
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0 ||
            sd_event_add_time(m->event, &j->linger, CLOCK_MONOTONIC, now + JOB_LINGER_USEC, 0, on_linger, j) < 0)
                log_warning("Job %s stays until qubesd stops.", j->path);
}

void jobs_cancel_all(Manager *m) {
        size_t i = 0;
        void *v;

        while (hashmap_iterate(m->jobs, &i, NULL, &v)) {
                Job *j = v;
                if (job_running(j) && j->cancel)
                        j->cancel(j, j->userdata);
        }
}

void jobs_free(Manager *m) {
        size_t i = 0;
        void *v;

        while (hashmap_iterate(m->jobs, &i, NULL, &v))
                job_free(v);
        m->jobs = hashmap_free(m->jobs);
}

/* ---- the bus object ------------------------------------------------------------------------ */

/* A local user sees a job when they see every qube it is about (auth.c). */
static bool job_visible(Manager *m, sd_bus *bus, const Job *j) {
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        for (char **q = j->qubes; q && *q; q++)
                if (!auth_sees(m, msg, app_get_domain(m->app, *q)))
                        return false;
        return true;
}

static int job_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                    sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *key = NULL;
        int r = sd_bus_path_decode(path, QUBESD_JOB_PREFIX, &key);
        if (r <= 0)
                return r;
        Job *j = hashmap_get(m->jobs, key);
        if (!j || !job_visible(m, bus, j))
                return 0;
        *found = j;
        return 1;
}

static int job_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = NULL;
        size_t i = 0;
        void *v;

        while (hashmap_iterate(m->jobs, &i, NULL, &v))
                if (job_visible(m, bus, v) && strv_extend(&l, ((Job *) v)->path) < 0)
                        return -ENOMEM;
        *nodes = TAKE_PTR(l);
        return 1;
}

static int job_property(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        uint64_t done = atomic_load(&j->done), total = atomic_load(&j->total);

        if (streq(property, "Operation"))
                return sd_bus_message_append(reply, "s", j->operation);
        if (streq(property, "Caller"))
                return sd_bus_message_append(reply, "s", j->caller);
        if (streq(property, "Qubes"))
                return sd_bus_message_append_strv(reply, j->qubes);
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", j->state);
        if (streq(property, "Cancelable"))
                return sd_bus_message_append(reply, "b", (int) (j->cancel != NULL));
        if (streq(property, "Progress"))
                return sd_bus_message_append(reply, "d",
                                             total            ? (double) done / (double) total
                                             : job_running(j) ? 0.0
                                                              : 1.0);
        if (streq(property, "BytesDone"))
                return sd_bus_message_append(reply, "t", j->bytes ? done : 0);
        if (streq(property, "BytesTotal"))
                return sd_bus_message_append(reply, "t", j->bytes ? total : 0);
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_qerror_ QError denied = {}, e = {};
        Manager *m = call_manager(msg);
        Job *j = userdata;
        int r;

        /* the caller needs what starting the operation needed, on each of its qubes */
        for (char **q = j->qubes; q && *q; q++) {
                r = auth_check(m, msg, j->action, app_get_domain(m->app, *q), &denied);
                if (r <= 0)
                        return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held */
        }
        if (!j->cancel) {
                qerror_set(&e, QERR_NOT_IMPLEMENTED, "Job %s (%s) cannot be cancelled", j->key, j->operation);
                return bus_reply_qerror(m, msg, &e);
        }
        if (!job_running(j)) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Job %s (%s) has finished", j->key, j->operation);
                return bus_reply_qerror(m, msg, &e);
        }
        j->cancel(j, j->userdata);
        return sd_bus_reply_method_return(msg, NULL);
}

#define JOB_PROPERTY(name, sig, flags) SD_BUS_PROPERTY(name, sig, job_property, 0, flags)

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        JOB_PROPERTY("Operation", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        JOB_PROPERTY("Caller", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        JOB_PROPERTY("Progress", "d", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        JOB_PROPERTY("BytesDone", "t", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        JOB_PROPERTY("BytesTotal", "t", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        JOB_PROPERTY("Qubes", "as", SD_BUS_VTABLE_PROPERTY_CONST),
        JOB_PROPERTY("State", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        JOB_PROPERTY("Cancelable", "b", SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Finished", SD_BUS_ARGS("s", state, "a(sss)", failures), 0),
        SD_BUS_VTABLE_END,
};

const BusObjectImplementation job_object = {
        .path = QUBESD_JOB_PREFIX,
        .interface = QUBESD_IFACE_JOB,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = job_vtable, .find = job_find }),
        .node_enumerator = job_enumerate,
};
