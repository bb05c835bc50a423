/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Backups on the bus (docs/dbus-api.md, "Backups").
 *
 * StartBackup(profile) loads the profile, plans the backup, asks a qube for the passphrase when
 * the profile says so, and replies with a Job once the writer thread runs; the Job reports
 * progress (bytes, and the backup-progress event once a second), can be cancelled, and ends with
 * Finished. Wait() on the Job replies when it is over (with its error if it failed): that is how
 * admin.backup.Execute, which blocks until the end, is served without signals. Everything slow
 * (measuring sizes, asking a qube, writing) runs off the loop (backup_task_run(), the writer's
 * thread); the loop only starts, reports and finishes. */
#include "backup-dbus.h"

#include <inttypes.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>

#include "auth.h"
#include "backup/plan.h"
#include "backup/profile.h"
#include "backup/writer.h"
#include "bus-util.h"
#include "vmm.h"

#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* Below the lifecycle jobs' prefix: sd-bus takes one vtable per member, path prefix and
 * interface, so until every job is one object type (issue 12) backups have a prefix of their
 * own: /org/qubes_os/Admin1/job/backup/<n>, numbered with the other jobs. */
#define QUBESD_JOB_PREFIX "/org/qubes_os/Admin1/job/backup"
#define QUBESD_IFACE_JOB "org.qubes_os.Admin1.Job"
#define JOB_LINGER_USEC (300ULL * 1000000ULL)
#define PROGRESS_INTERVAL_USEC (1000000ULL)

typedef struct BackupJob BackupJob;

typedef struct BackupManager {
        Manager *manager;
        Hashmap *running; /* profile -> BackupJob* (one backup per profile) */
        Hashmap *jobs;    /* job number -> BackupJob* (running and lingering) */
        unsigned n_tasks; /* Info and passphrase threads in flight */
} BackupManager;

struct BackupJob {
        BackupManager *bm;
        char *key, *path, *profile;
        char **qubes;
        BackupWriter *writer;
        const char *state; /* running, succeeded, failed */
        QError error;
        char *result;
        uint64_t last_reported;
        uint64_t final_done, final_total; /* the writer's figures, once it is gone */
        sd_event_source *done_source, *progress_source, *linger;
        sd_bus_message **waiters;
        size_t n_waiters;
};

static BackupManager *bm_of(Manager *m) {
        return m->backup;
}

/* ---- work off the loop ------------------------------------------------------------------------ */

/* The one place that runs backup work on a thread and comes back to the loop: work() on a
 * thread of its own, then done() on the loop. (It becomes a job of the common worker pool.) */
typedef struct BackupTask {
        Manager *manager;
        void (*work)(void *data);
        void (*done)(Manager *m, void *data);
        void *data;
        int fd;
        sd_event_source *source;
        pthread_t thread;
} BackupTask;

static void *task_thread(void *userdata) {
        BackupTask *t = userdata;
        uint64_t one = 1;
        t->work(t->data);
        (void) !write(t->fd, &one, sizeof one);
        return NULL;
}

static int task_finished(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BackupTask *t = userdata;
        Manager *m = t->manager;
        pthread_join(t->thread, NULL);
        sd_event_source_disable_unref(t->source);
        close(t->fd);
        bm_of(m)->n_tasks--;
        t->done(m, t->data);
        free(t);
        return 0;
}

static int backup_task_run(Manager *m, void (*work)(void *), void (*done)(Manager *, void *), void *data) {
        BackupTask *t = new0(BackupTask, 1);
        int r;
        if (!t)
                return -ENOMEM;
        *t = (BackupTask){ .manager = m, .work = work, .done = done, .data = data };
        t->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (t->fd < 0) {
                free(t);
                return -errno;
        }
        r = sd_event_add_io(m->event, &t->source, t->fd, EPOLLIN, task_finished, t);
        if (r >= 0) {
                r = -pthread_create(&t->thread, NULL, task_thread, t);
                if (r < 0)
                        sd_event_source_disable_unref(t->source);
        }
        if (r < 0) {
                close(t->fd);
                free(t);
                return r;
        }
        bm_of(m)->n_tasks++;
        return 0;
}

/* ---- jobs ------------------------------------------------------------------------------------ */

static BackupJob *job_free(BackupJob *j) {
        if (!j)
                return NULL;
        sd_event_source_disable_unref(j->done_source);
        sd_event_source_disable_unref(j->progress_source);
        sd_event_source_disable_unref(j->linger);
        backup_writer_free(j->writer);
        for (size_t i = 0; i < j->n_waiters; i++)
                sd_bus_message_unref(j->waiters[i]);
        free(j->waiters);
        qerror_done(&j->error);
        free(j->key);
        free(j->path);
        free(j->profile);
        strv_free(j->qubes);
        free(j->result);
        free(j);
        return NULL;
}

/* Python's repr() of a float: the shortest digits that read back as the same number, in fixed
 * notation from 1e-4 to 1e16 (with ".0" when whole), else as 1.5e-05. */
static void format_float(double v, char *buf, size_t size) {
        char e[64];
        int prec, exp10;
        for (prec = 0; prec < 17; prec++) {
                snprintf(e, sizeof e, "%.*e", prec, v);
                if (strtod(e, NULL) == v)
                        break;
        }
        exp10 = atoi(strchr(e, 'e') + 1);
        if (exp10 < -4 || exp10 >= 16) {
                snprintf(buf, size, "%s", e);
                return;
        }
        snprintf(buf, size, "%.*f", prec - exp10 > 0 ? prec - exp10 : 0, v);
        if (!strchr(buf, '.'))
                strncat(buf, ".0", size - strlen(buf) - 1);
}

static void job_report(BackupJob *j, bool event) {
        Manager *m = j->bm->manager;
        uint64_t done = atomic_load(&j->writer->bytes_done), total = atomic_load(&j->writer->bytes_total);

        if (done == j->last_reported)
                return;
        j->last_reported = done;
        (void) sd_bus_emit_properties_changed(m->bus, j->path, QUBESD_IFACE_JOB, "Progress", "BytesDone", "BytesTotal",
                                              NULL);
        if (event && total > 0) {
                char text[64];
                format_float(100.0 * (double) done / (double) total, text, sizeof text);
                app_emit_event(m->app, NULL, "backup-progress", "backup_profile", j->profile, "progress", text);
        }
}

static int on_progress(sd_event_source *s, uint64_t usec, void *userdata) {
        BackupJob *j = userdata;
        job_report(j, true);
        return sd_event_source_set_time(s, usec + PROGRESS_INTERVAL_USEC);
}

static int on_linger(sd_event_source *s, uint64_t usec, void *userdata) {
        BackupJob *j = userdata;
        BackupManager *bm = j->bm;
        (void) sd_bus_emit_object_removed(bm->manager->bus, j->path);
        hashmap_remove(bm->jobs, j->key);
        job_free(j);
        return 0;
}

static int reply_wait(BackupJob *j, sd_bus_message *msg) {
        Manager *m = j->bm->manager;
        if (streq(j->state, "succeeded"))
                return sd_bus_reply_method_return(msg, NULL);
        return bus_reply_qerror(m, msg, &j->error);
}

/* After success: each backed-up qube's backup_timestamp (upstream sets it, then saves). */
static void set_timestamps(BackupJob *j) {
        Manager *m = j->bm->manager;
        char now[32];
        bool changed = false;

        snprintf(now, sizeof now, "%" PRId64, (int64_t) time(NULL));
        for (size_t i = 0; i < j->writer->plan->n_qubes; i++) {
                _cleanup_qerror_ QError e = {};
                Domain *d = app_get_domain(m->app, j->writer->plan->qubes[i].name);
                if (!d || !domain_prop_find(d->klass, "backup_timestamp"))
                        continue;
                if (domain_property_set(d, "backup_timestamp", now, strlen(now), &e) >= 0)
                        changed = true;
        }
        if (changed) {
                _cleanup_qerror_ QError e = {};
                if (manager_save(m, &e) < 0) {
                        _cleanup_free_ char *msg = qerror_message(&e);
                        log_warning("Backup %s: cannot save the backup timestamps: %s", j->profile, strempty(msg));
                }
        }
}

static void job_finish(BackupJob *j) {
        BackupManager *bm = j->bm;
        Manager *m = bm->manager;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        uint64_t now;
        int r;

        j->progress_source = sd_event_source_disable_unref(j->progress_source);
        j->done_source = sd_event_source_disable_unref(j->done_source);
        if (j->writer->result >= 0) {
                /* a last report, so that a client sees 100 % before Finished */
                job_report(j, true);
                set_timestamps(j);
                j->state = "succeeded";
                j->result = TAKE_PTR(j->writer->archive);
                log_info("Backup %s written to %s.", j->profile, strempty(j->result));
        } else {
                j->state = "failed";
                qerror_move(&j->error, &j->writer->error);
                _cleanup_free_ char *msg = qerror_message(&j->error);
                log_info("Backup %s: %s", j->profile, strempty(msg));
        }
        hashmap_remove(bm->running, j->profile);
        /* the thread is over: its memory and children go now, not in five minutes */
        j->final_done = atomic_load(&j->writer->bytes_done);
        j->final_total = atomic_load(&j->writer->bytes_total);
        j->writer = backup_writer_free(j->writer);

        (void) sd_bus_emit_properties_changed(m->bus, j->path, QUBESD_IFACE_JOB, "State", "Result", NULL);
        r = sd_bus_message_new_signal(m->bus, &sig, j->path, QUBESD_IFACE_JOB, "Finished");
        if (r >= 0)
                r = sd_bus_message_append(sig, "s", j->state);
        if (r >= 0)
                r = sd_bus_message_open_container(sig, 'a', "(sss)");
        if (r >= 0 && qerror_is_set(&j->error)) {
                _cleanup_free_ char *msg = qerror_message(&j->error);
                r = sd_bus_message_append(sig, "(sss)", j->profile, qubes_error_dbus_name(j->error.code),
                                          strempty(msg));
        }
        if (r >= 0)
                r = sd_bus_message_close_container(sig);
        if (r >= 0)
                r = sd_bus_send(m->bus, sig, NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot send Finished for %s: %m", j->path);
        for (size_t i = 0; i < j->n_waiters; i++) {
                (void) reply_wait(j, j->waiters[i]);
                sd_bus_message_unref(j->waiters[i]);
        }
        j->waiters = mfree(j->waiters);
        j->n_waiters = 0;
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) >= 0)
                (void) sd_event_add_time(m->event, &j->linger, CLOCK_MONOTONIC, now + JOB_LINGER_USEC, 0, on_linger, j);
}

static int on_writer_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BackupJob *j = userdata;
        uint64_t v;
        (void) !read(fd, &v, sizeof v);
        job_finish(j);
        return 0;
}

typedef struct Figures {
        uint64_t done, total;
} Figures;

static Figures job_figures(const BackupJob *j) {
        if (j->writer)
                return (Figures){ atomic_load(&j->writer->bytes_done), atomic_load(&j->writer->bytes_total) };
        return (Figures){ j->final_done, j->final_total };
}

/* ---- job properties and methods ------------------------------------------------------------------ */

static bool job_visible(Manager *m, sd_bus *bus, const BackupJob *j) {
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        STRV_FOREACH(q, j->qubes)
                if (!auth_sees(m, msg, app_get_domain(m->app, *q)))
                        return false;
        return true;
}

static int job_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                    sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *key = NULL;
        BackupManager *bm = bm_of(m);
        int r = sd_bus_path_decode(path, QUBESD_JOB_PREFIX, &key);
        if (r <= 0 || !bm)
                return r;
        BackupJob *j = hashmap_get(bm->jobs, key);
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
        if (bm_of(m))
                while (hashmap_iterate(bm_of(m)->jobs, &i, NULL, &v))
                        if (job_visible(m, bus, v) && strv_extend(&l, ((BackupJob *) v)->path) < 0)
                                return -ENOMEM;
        *nodes = TAKE_PTR(l);
        return 1;
}

static int get_operation(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", "Backup");
}

static int get_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BackupJob *j = userdata;
        Figures f = job_figures(j);
        double v = streq(j->state, "succeeded") ? 1.0 : f.total ? (double) f.done / (double) f.total : 0.0;
        return sd_bus_message_append(reply, "d", v > 1.0 ? 1.0 : v);
}

static int get_qubes(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                     void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_strv(reply, ((BackupJob *) userdata)->qubes);
}

static int get_state(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                     void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", ((BackupJob *) userdata)->state);
}

static int get_bytes(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                     void *userdata, sd_bus_error *error) {
        BackupJob *j = userdata;
        Figures f = job_figures(j);
        return sd_bus_message_append(reply, "t", streq(property, "BytesDone") ? f.done : f.total);
}

static int get_result(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                      void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", strempty(((BackupJob *) userdata)->result));
}

static int method_job_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BackupJob *j = userdata;
        Manager *m = j->bm->manager;
        int r = bus_gate(m, msg, AUTH_BACKUP, NULL);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (j->writer)
                backup_writer_cancel(j->writer);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_job_wait(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BackupJob *j = userdata;
        if (!streq(j->state, "running"))
                return reply_wait(j, msg);
        sd_bus_message **l = realloc(j->waiters, (j->n_waiters + 1) * sizeof(sd_bus_message *));
        if (!l)
                return -ENOMEM;
        j->waiters = l;
        j->waiters[j->n_waiters++] = sd_bus_message_ref(msg);
        return 1;
}

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Operation", "s", get_operation, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Progress", "d", get_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Qubes", "as", get_qubes, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesDone", "t", get_bytes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesTotal", "t", get_bytes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Result", "s", get_result, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_job_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Wait", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_job_wait, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Finished", SD_BUS_ARGS("s", state, "a(sss)", failures), 0),
        SD_BUS_VTABLE_END,
};

/* ---- the Manager's methods --------------------------------------------------------------------------- */

/* The checks of spec §1 after the generic ones: a name, without '/'. */
static int read_profile_name(Manager *m, sd_bus_message *msg, const char **ret) {
        _cleanup_qerror_ QError e = {};
        int r = sd_bus_message_read(msg, "s", ret);
        if (r < 0)
                return r;
        if (isempty(*ret))
                qerror_set(&e, QERR_PROTOCOL, "expected an argument");
        else if (strchr(*ret, '/'))
                qerror_set(&e, QERR_PROTOCOL, "Backup profile ID must not contain forward slash character");
        if (qerror_is_set(&e)) {
                r = bus_reply_qerror(m, msg, &e);
                return r < 0 ? r : 0;
        }
        return bus_gate(m, msg, AUTH_BACKUP, NULL);
}

static char **runner_argv(Manager *m) {
        char **l = NULL;
        if (strv_extend(&l, m->config.qrexec_runner ?: QUBESD_DEFAULT_QREXEC_RUNNER) < 0)
                return NULL;
        return l;
}

/* BackupInfo: plan, measure on a thread, reply with the table. */
typedef struct InfoCall {
        sd_bus_message *msg;
        BackupPlan *plan;
        QError error;
        char *summary;
} InfoCall;

static void info_work(void *data) {
        InfoCall *c = data;
        if (backup_plan_measure(c->plan, &c->error) >= 0)
                c->summary = backup_plan_summary(c->plan);
}

static void info_done(Manager *m, void *data) {
        InfoCall *c = data;
        if (qerror_is_set(&c->error))
                (void) bus_reply_qerror(m, c->msg, &c->error);
        else if (!c->summary)
                (void) sd_bus_reply_method_errno(c->msg, ENOMEM, NULL);
        else
                (void) sd_bus_reply_method_return(c->msg, "s", c->summary);
        sd_bus_message_unref(c->msg);
        backup_plan_free(c->plan);
        qerror_done(&c->error);
        free(c->summary);
        free(c);
}

static int method_backup_info(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(backup_profile_done) BackupProfile p = {};
        _cleanup_qerror_ QError e = {};
        BackupPlan *plan = NULL;
        const char *name;
        int r;

        r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = backup_profile_load(m->config.config_dir ?: QUBESD_DEFAULT_CONFIG_DIR, name, &p, &e);
        if (r >= 0)
                r = backup_plan_new(m->app, &p, false, &plan, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        InfoCall *c = new0(InfoCall, 1);
        if (!c) {
                backup_plan_free(plan);
                return -ENOMEM;
        }
        c->msg = sd_bus_message_ref(msg);
        c->plan = plan;
        r = backup_task_run(m, info_work, info_done, c);
        if (r < 0) {
                sd_bus_message_unref(c->msg);
                backup_plan_free(plan);
                free(c);
                return r;
        }
        return 1;
}

/* StartBackup, after the passphrase is known. */
static int start_job(Manager *m, sd_bus_message *msg, BackupPlan *plan, char *pass, size_t pass_len) {
        BackupManager *bm = bm_of(m);
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **runner = runner_argv(m);
        BackupJob *j = NULL;
        uint64_t now;
        int r;

        if (hashmap_get(bm->running, plan->profile)) {
                backup_plan_free(plan);
                explicit_bzero(pass, pass_len);
                free(pass);
                qerror_set(&e, QERR_BACKUP_ALREADY_RUNNING, "Backup already running");
                return bus_reply_qerror(m, msg, &e);
        }
        j = new0(BackupJob, 1);
        if (!j || !runner) {
                backup_plan_free(plan);
                free(pass);
                free(j);
                return -ENOMEM;
        }
        j->bm = bm;
        j->state = "running";
        j->profile = strdup(plan->profile);
        for (size_t i = 0; i < plan->n_qubes; i++)
                if (strv_extend(&j->qubes, plan->qubes[i].name) < 0)
                        r = -ENOMEM;
        if (!j->qubes)
                j->qubes = new0(char *, 1);
        r = backup_writer_new(plan, pass, pass_len, runner, &j->writer);
        if (r < 0) {
                backup_plan_free(plan);
                free(pass);
                job_free(j);
                return r;
        }
        if (asprintf(&j->key, "%u", ++vmm_of(m)->next_job) < 0)
                j->key = NULL;
        if (!j->profile || !j->qubes || !j->key || sd_bus_path_encode(QUBESD_JOB_PREFIX, j->key, &j->path) < 0 ||
            hashmap_put(bm->jobs, j->key, j) < 0) {
                job_free(j);
                return -ENOMEM;
        }
        r = sd_event_add_io(m->event, &j->done_source, j->writer->done_fd, EPOLLIN, on_writer_done, j);
        if (r >= 0 && sd_event_now(m->event, CLOCK_MONOTONIC, &now) >= 0)
                r = sd_event_add_time(m->event, &j->progress_source, CLOCK_MONOTONIC, now + PROGRESS_INTERVAL_USEC, 0,
                                      on_progress, j);
        if (r >= 0)
                r = hashmap_put(bm->running, j->profile, j);
        if (r >= 0)
                r = backup_writer_start(j->writer);
        if (r < 0) {
                hashmap_remove(bm->running, j->profile);
                hashmap_remove(bm->jobs, j->key);
                job_free(j);
                return r;
        }
        log_info("Backup %s started (%s, %zu qubes).", j->profile, j->path, strv_length(j->qubes));
        (void) sd_bus_emit_object_added(m->bus, j->path);
        return sd_bus_reply_method_return(msg, "o", j->path);
}

typedef struct PassCall {
        sd_bus_message *msg;
        BackupPlan *plan;
        char **runner;
        char *qube;
        char *pass;
        size_t pass_len;
        QError error;
} PassCall;

static void pass_work(void *data) {
        PassCall *c = data;
        (void) backup_ask_passphrase(c->runner, c->qube, c->plan->profile, &c->pass, &c->pass_len, &c->error);
}

static void pass_done(Manager *m, void *data) {
        PassCall *c = data;
        int r;
        if (qerror_is_set(&c->error)) {
                (void) bus_reply_qerror(m, c->msg, &c->error);
                backup_plan_free(c->plan);
        } else {
                r = start_job(m, c->msg, c->plan, c->pass, c->pass_len);
                if (r < 0)
                        (void) sd_bus_reply_method_errno(c->msg, -r, NULL);
                c->pass = NULL;
        }
        sd_bus_message_unref(c->msg);
        strv_free(c->runner);
        free(c->qube);
        free(c->pass);
        qerror_done(&c->error);
        free(c);
}

static int method_start_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(backup_profile_done) BackupProfile p = {};
        _cleanup_qerror_ QError e = {};
        BackupPlan *plan = NULL;
        const char *name;
        int r;

        r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = backup_profile_load(m->config.config_dir ?: QUBESD_DEFAULT_CONFIG_DIR, name, &p, &e);
        if (r >= 0)
                r = backup_plan_new(m->app, &p, true, &plan, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;

        if (p.has_passphrase_text) {
                char *pass = TAKE_PTR(p.passphrase_text);
                return start_job(m, msg, plan, pass, p.passphrase_len);
        }
        /* a qube tells the passphrase: ask it on a thread (the runner may take its time) */
        PassCall *c = new0(PassCall, 1);
        if (!c) {
                backup_plan_free(plan);
                return -ENOMEM;
        }
        c->msg = sd_bus_message_ref(msg);
        c->plan = plan;
        c->runner = runner_argv(m);
        c->qube = strdup(p.passphrase_vm);
        if (!c->runner || !c->qube || (r = backup_task_run(m, pass_work, pass_done, c)) < 0) {
                sd_bus_message_unref(c->msg);
                backup_plan_free(plan);
                strv_free(c->runner);
                free(c->qube);
                free(c);
                return r < 0 ? r : -ENOMEM;
        }
        return 1;
}

static int method_cancel_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *name;
        int r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        BackupJob *j = hashmap_get(bm_of(m)->running, name);
        if (!j) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Backup operation not running");
                return bus_reply_qerror(m, msg, &e);
        }
        backup_writer_cancel(j->writer);
        return sd_bus_reply_method_return(msg, NULL);
}

/* ---- profiles (not upstream: clients that cannot write /etc/qubes/backup) --------------------- */

static const char *config_dir(Manager *m) {
        return m->config.config_dir ?: QUBESD_DEFAULT_CONFIG_DIR;
}

static int method_list_profiles(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_qerror_ QError e = {};
        int r = bus_gate(m, msg, AUTH_BACKUP, NULL);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = backup_profile_list(config_dir(m), &l);
        if (r < 0) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Cannot list the backup profiles: %s", strerror(-r));
                return bus_reply_qerror(m, msg, &e);
        }
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append_strv(reply, l);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

static int append_entry_s(sd_bus_message *reply, const char *key, const char *value) {
        return sd_bus_message_append(reply, "{sv}", key, "s", value);
}

static int method_get_profile(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(backup_profile_done) BackupProfile p = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_qerror_ QError e = {};
        const char *name;
        int r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = backup_profile_load(config_dir(m), name, &p, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = append_entry_s(reply, "destination_vm", p.destination_vm);
        if (r >= 0)
                r = append_entry_s(reply, "destination_path", p.destination_path);
        if (r >= 0 && !p.include_default) {
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", "include");
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(reply, p.include);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0) {
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", "exclude");
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(reply, p.exclude);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = append_entry_s(reply, "compression",
                                   !p.compressed                         ? "false"
                                   : streq(p.compression_filter, "gzip") ? "true"
                                                                         : p.compression_filter);
        if (r >= 0 && p.passphrase_vm)
                r = append_entry_s(reply, "passphrase_vm", p.passphrase_vm);
        /* the passphrase itself stays in the file */
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "has_passphrase_text", "b", (int) p.has_passphrase_text);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

static int read_strv_variant(sd_bus_message *msg, char ***ret) {
        int r = sd_bus_message_enter_container(msg, 'v', "as");
        if (r <= 0)
                return r < 0 ? r : -EINVAL;
        r = sd_bus_message_read_strv(msg, ret);
        if (r >= 0)
                r = sd_bus_message_exit_container(msg);
        if (r >= 0 && !*ret)
                *ret = new0(char *, 1);
        return r < 0 ? r : *ret ? 0 : -ENOMEM;
}

static int read_string_variant(sd_bus_message *msg, char **ret) {
        const char *s;
        int r = sd_bus_message_read(msg, "v", "s", &s);
        if (r < 0)
                return r;
        return free_and_strdup(ret, s);
}

static int method_save_profile(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(backup_profile_done) BackupProfile p = { .compressed = true, .include_default = true };
        _cleanup_qerror_ QError e = {};
        const char *name, *key;
        int r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        p.name = strdup(name);
        if (!p.name)
                return -ENOMEM;
        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "destination_vm"))
                        r = read_string_variant(msg, &p.destination_vm);
                else if (streq(key, "destination_path"))
                        r = read_string_variant(msg, &p.destination_path);
                else if (streq(key, "include")) {
                        r = read_strv_variant(msg, &p.include);
                        p.include_default = false;
                } else if (streq(key, "exclude"))
                        r = read_strv_variant(msg, &p.exclude);
                else if (streq(key, "compression")) {
                        _cleanup_free_ char *c = NULL;
                        r = read_string_variant(msg, &c);
                        if (r >= 0) {
                                p.compressed = !streq(c, "false");
                                r = free_and_strdup(&p.compression_filter, streq(c, "true") ? "gzip" : c);
                        }
                } else if (streq(key, "passphrase_text")) {
                        r = read_string_variant(msg, &p.passphrase_text);
                        p.has_passphrase_text = r >= 0;
                        if (r >= 0)
                                p.passphrase_len = strlen(p.passphrase_text);
                } else if (streq(key, "passphrase_vm"))
                        r = read_string_variant(msg, &p.passphrase_vm);
                else {
                        qerror_set(&e, QERR_QUBES_EXCEPTION, "Unknown backup profile setting: %s", key);
                        return bus_reply_qerror(m, msg, &e);
                }
                if (r == -ENXIO || r == -EINVAL) {
                        qerror_set(&e, QERR_QUBES_EXCEPTION, "Backup profile setting %s has the wrong type", key);
                        return bus_reply_qerror(m, msg, &e);
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!p.destination_vm || !p.destination_path) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Invalid backup profile - missing '%s'",
                           !p.destination_vm ? "destination_vm" : "destination_path");
                return bus_reply_qerror(m, msg, &e);
        }
        if (!p.compression_filter && !(p.compression_filter = strdup("gzip")))
                return -ENOMEM;
        r = backup_profile_save(config_dir(m), &p, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        log_info("Backup profile %s saved.", name);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_remove_profile(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_qerror_ QError e = {};
        const char *name;
        int r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (hashmap_get(bm_of(m)->running, name)) {
                qerror_set(&e, QERR_BACKUP_ALREADY_RUNNING, "Backup already running");
                return bus_reply_qerror(m, msg, &e);
        }
        r = backup_profile_remove(config_dir(m), name, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

static const sd_bus_vtable backup_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("StartBackup", SD_BUS_ARGS("s", profile), SD_BUS_RESULT("o", job), method_start_backup,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("BackupInfo", SD_BUS_ARGS("s", profile), SD_BUS_RESULT("s", summary),
                                method_backup_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelBackup", SD_BUS_ARGS("s", profile), SD_BUS_NO_RESULT, method_cancel_backup,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListBackupProfiles", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", profiles),
                                method_list_profiles, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetBackupProfile", SD_BUS_ARGS("s", profile), SD_BUS_RESULT("a{sv}", settings),
                                method_get_profile, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SaveBackupProfile", SD_BUS_ARGS("s", profile, "a{sv}", settings), SD_BUS_NO_RESULT,
                                method_save_profile, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveBackupProfile", SD_BUS_ARGS("s", profile), SD_BUS_NO_RESULT,
                                method_remove_profile, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int backup_dbus_register(Manager *m, sd_bus *bus) {
        int r;

        if (!m->backup) {
                BackupManager *bm = new0(BackupManager, 1);
                if (!bm)
                        return log_oom();
                bm->manager = m;
                bm->running = hashmap_new();
                bm->jobs = hashmap_new();
                if (!bm->running || !bm->jobs) {
                        hashmap_free(bm->running);
                        hashmap_free(bm->jobs);
                        free(bm);
                        return log_oom();
                }
                m->backup = bm;
        }
        /* the slots live as long as the connection */
        r = sd_bus_add_object_vtable(bus, NULL, QUBESD_ROOT_PATH, QUBESD_IFACE_MANAGER, backup_manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the backup methods: %m");
        r = sd_bus_add_fallback_vtable(bus, NULL, QUBESD_JOB_PREFIX, QUBESD_IFACE_JOB, job_vtable, job_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the backup jobs: %m");
        r = sd_bus_add_node_enumerator(bus, NULL, QUBESD_JOB_PREFIX, job_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the backup job enumerator: %m");
        return 0;
}

void backup_dbus_done(Manager *m) {
        BackupManager *bm = bm_of(m);
        size_t i = 0;
        void *v;

        if (!bm)
                return;
        /* a backup still running is cancelled: its writer leaves no file behind */
        while (hashmap_iterate(bm->jobs, &i, NULL, &v))
                job_free(v);
        hashmap_free(bm->jobs);
        hashmap_free(bm->running);
        if (bm->n_tasks)
                log_debug("%u backup tasks still running at exit.", bm->n_tasks);
        free(bm);
        m->backup = NULL;
}
