/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Backups on the bus (docs/dbus-api.md, "Backups"): a second vtable on the Manager interface.
 *
 * StartBackup(profile) and ExecuteBackup(profile) load the profile and plan the backup on the
 * loop (the plan is a snapshot: the writer never touches the model), then run it as a Job whose
 * blocking part is on the workers (WORK_DATA): asking a qube for the passphrase when the profile
 * says so, measuring, writing (service/backup/writer.c). StartBackup replies with the Job at
 * once; ExecuteBackup replies when the backup is over, as admin.backup.Execute does (the shim
 * calls it), with the archive's name or the error. The Job counts bytes, announces the
 * backup-progress event with each progress announcement, and can be cancelled (Cancel(), or
 * CancelBackup(profile)). BackupInfo measures on a worker (WORK_CALL) and replies with the table.
 * One backup per profile at a time. The profile methods are qubesd's own (clients that cannot
 * write <config-dir>/backup). */
#include "backup-dbus.h"

#include <inttypes.h>

#include "auth.h"
#include "backup/plan.h"
#include "backup/profile.h"
#include "backup/writer.h"
#include "bus-error.h"
#include "commit.h"
#include "job-dbus.h"
#include "workers.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* backup-progress events at most this often (upstream's rate) */
#define BACKUP_EVENT_USEC (1000ULL * 1000ULL)

/* What backups keep between calls (Manager.backup). */
struct BackupManager {
        Hashmap *running; /* profile -> Backup* (one backup per profile) */
};

/* One backup, from its start to the done() of its work. */
typedef struct Backup {
        Manager *manager;
        char *profile;
        BackupWriter *writer;
        Job *job;
        sd_bus_message *call; /* ExecuteBackup: answered at the end; NULL for StartBackup */
        uint64_t announced;   /* the bytes the last backup-progress event told */
        uint64_t event_usec;  /* when it was sent (CLOCK_MONOTONIC), 0: never */
} Backup;

static Backup *backup_free(Backup *b) {
        if (!b)
                return NULL;
        backup_writer_free(b->writer);
        sd_bus_message_unref(b->call);
        free(b->profile);
        free(b);
        return NULL;
}

static const char *config_dir(Manager *m) {
        return m->config.config_dir ?: QUBESD_DEFAULT_CONFIG_DIR;
}

/* The authorization gate of every backup method: > 0 allowed, 0 held until polkit answers, < 0
 * refused (the error reply is sent). */
static int gate(Manager *m, sd_bus_message *msg) {
        _cleanup_qerror_ QError denied = {};
        int r = auth_check(m, msg, AUTH_BACKUP, NULL, &denied);
        if (r < 0) {
                r = bus_reply_qerror(m, msg, &denied);
                return r < 0 ? r : 0;
        }
        return r;
}

/* The checks of spec §1 after the generic ones (a name, without '/'), then the gate. Returns
 * > 0 to go on, 0 when the call is answered or held. */
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
        return gate(m, msg);
}

static char **runner_argv(Manager *m) {
        char **l = NULL;
        if (strv_extend(&l, m->config.qrexec_runner ?: QUBESD_DEFAULT_QREXEC_RUNNER) < 0)
                return NULL;
        return l;
}

/* ---- progress -------------------------------------------------------------------------------- */

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

/* From the writer's thread: the Job's figures. */
static void on_writer_progress(void *userdata, uint64_t done, uint64_t total) {
        Backup *b = userdata;
        job_progress(b->job, done, total);
}

/* The loop, with each progress announcement of the Job (at most every 250 ms): the
 * backup-progress event, in percent as upstream sends it, at most once a second and only when
 * the total is known (spec §5: so no event is promised for 100 %). */
static void announce_event(Backup *b) {
        Manager *m = b->manager;
        uint64_t done = job_done(b->job), total = job_total(b->job), now;
        char text[64];

        if (total == 0 || done == b->announced || sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0 ||
            (b->event_usec != 0 && now - b->event_usec < BACKUP_EVENT_USEC))
                return;
        b->announced = done;
        b->event_usec = now;
        format_float(100.0 * (double) done / (double) total, text, sizeof text);
        app_emit_event(m->app, NULL, "backup-progress", "backup_profile", b->profile, "progress", text);
}

static void on_job_progress(Job *j, void *userdata) {
        announce_event(userdata);
}

static void on_job_cancel(Job *j, void *userdata) {
        Backup *b = userdata;
        backup_writer_cancel(b->writer);
}

/* ---- the backup's work ------------------------------------------------------------------------ */

/* After success: each backed-up qube's backup_timestamp (upstream sets it, then saves). */
static void set_timestamps(Backup *b) {
        Manager *m = b->manager;
        const BackupPlan *plan = b->writer->plan;
        char now[32];
        bool changed = false;

        snprintf(now, sizeof now, "%" PRId64, (int64_t) time(NULL));
        manager_begin(m); /* the events follow the save (manager_save, or the commit source) */
        for (size_t i = 0; i < plan->n_qubes; i++) {
                _cleanup_qerror_ QError e = {};
                Domain *d = app_get_domain(m->app, plan->qubes[i].name);
                if (!d || !domain_prop_find(d->klass, "backup_timestamp"))
                        continue;
                if (domain_property_set(d, "backup_timestamp", now, strlen(now), &e) >= 0)
                        changed = true;
        }
        if (changed) {
                _cleanup_qerror_ QError e = {};
                if (manager_save(m, &e) < 0) {
                        _cleanup_free_ char *msg = qerror_message(&e);
                        log_warning("Backup %s: cannot save the backup timestamps: %s", b->profile, strempty(msg));
                }
        }
}

static void backup_work(void *data) {
        Backup *b = data;
        (void) backup_writer_run(b->writer);
}

static void backup_done(void *data) {
        Backup *b = data;
        Manager *m = b->manager;
        BackupWriter *w = b->writer;

        hashmap_remove(m->backup->running, b->profile);
        if (w->result >= 0) {
                /* the last figures, unless an event went out less than a second ago */
                announce_event(b);
                set_timestamps(b);
                log_info("Backup %s written to %s.", b->profile, strempty(w->archive));
                /* each qube's story in the journal (QUBES_VM=) */
                for (size_t i = 0; i < w->plan->n_qubes; i++)
                        log_qube_info(w->plan->qubes[i].name, "Backed up %s to %s (profile %s).",
                                      w->plan->qubes[i].name, strempty(w->archive), b->profile);
                job_finish(b->job, NULL);
                if (b->call)
                        (void) sd_bus_reply_method_return(b->call, "s", strempty(w->archive));
        } else {
                _cleanup_free_ char *msg = qerror_message(&w->error);
                log_info("Backup %s: %s", b->profile, strempty(msg));
                /* the failure is the backup's, not one qube's: no qube in it */
                if (job_add_failure(b->job, "", &w->error, 0) < 0)
                        job_finish(b->job, &w->error);
                else
                        job_finish(b->job, NULL);
                if (b->call)
                        (void) bus_reply_qerror(m, b->call, &w->error);
        }
        backup_free(b);
}

/* StartBackup and ExecuteBackup. */
static int start_backup(sd_bus_message *msg, bool wait) {
        Manager *m = call_manager(msg);
        _cleanup_(backup_profile_done) BackupProfile p = {};
        _cleanup_(backup_plan_freep) BackupPlan *plan = NULL;
        _cleanup_strv_free_ char **runner = NULL, **qubes = NULL;
        _cleanup_qerror_ QError e = {};
        Backup *b = NULL;
        const char *name;
        int r;

        r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = backup_profile_load(config_dir(m), name, &p, &e);
        if (r >= 0)
                r = backup_plan_new(m->app, &p, true, &plan, &e);
        if (r < 0)
                return bus_reply_failure(m, msg, r, &e);
        /* after loading, so that a broken profile reports its own error first (spec §1); a qube
         * that tells the passphrase is asked once the backup runs (docs/compatibility.md) */
        if (hashmap_get(m->backup->running, name)) {
                qerror_set(&e, QERR_BACKUP_ALREADY_RUNNING, "Backup already running");
                return bus_reply_qerror(m, msg, &e);
        }
        for (size_t i = 0; i < plan->n_qubes; i++)
                if (strv_extend(&qubes, plan->qubes[i].name) < 0)
                        return -ENOMEM;
        runner = runner_argv(m);
        b = new0(Backup, 1);
        if (!runner || !b || !(b->profile = strdup(name))) {
                backup_free(b);
                return -ENOMEM;
        }
        b->manager = m;
        r = backup_writer_new(plan, p.has_passphrase_text ? p.passphrase_text : NULL, p.passphrase_len, p.passphrase_vm,
                              runner, &b->writer);
        if (r < 0) {
                backup_free(b);
                return r;
        }
        TAKE_PTR(plan);
        if (p.has_passphrase_text)
                p.passphrase_text = NULL; /* the writer has it */
        b->writer->progress = on_writer_progress;
        b->writer->progress_userdata = b;
        r = job_new(m,
                    &(JobSpec){
                            .operation = sd_bus_message_get_member(msg),
                            .caller = auth_caller_qube(m, msg),
                            .qubes = qubes,
                            .action = AUTH_BACKUP,
                            .bytes = true,
                            .cancel = on_job_cancel,
                            .progress_changed = on_job_progress,
                            .userdata = b,
                    },
                    &b->job);
        if (r < 0) {
                backup_free(b);
                return r;
        }
        r = hashmap_put(m->backup->running, b->profile, b);
        if (r >= 0) {
                r = workers_submit(m->workers, WORK_DATA, backup_work, backup_done, b);
                if (r < 0)
                        hashmap_remove(m->backup->running, b->profile);
        }
        if (r < 0) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Backup failed: %s", strerror(-r));
                job_finish(b->job, &e);
                backup_free(b);
                return bus_reply_qerror(m, msg, &e);
        }
        log_info("Backup %s started (%s, %zu qubes).", b->profile, job_path(b->job), strv_length(qubes));
        if (wait) {
                b->call = sd_bus_message_ref(msg);
                return 1;
        }
        return sd_bus_reply_method_return(msg, "o", job_path(b->job));
}

static int method_start_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return start_backup(msg, false);
}

static int method_execute_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return start_backup(msg, true);
}

static int method_cancel_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *name;
        int r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        Backup *b = hashmap_get(m->backup->running, name);
        if (!b) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Backup operation not running");
                return bus_reply_qerror(m, msg, &e);
        }
        backup_writer_cancel(b->writer);
        return sd_bus_reply_method_return(msg, NULL);
}

/* ---- BackupInfo: plan, measure on a worker, reply with the table ------------------------------ */

typedef struct InfoCall {
        Manager *manager;
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

static void info_done(void *data) {
        InfoCall *c = data;
        if (qerror_is_set(&c->error))
                (void) bus_reply_qerror(c->manager, c->msg, &c->error);
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
        Manager *m = call_manager(msg);
        _cleanup_(backup_profile_done) BackupProfile p = {};
        _cleanup_qerror_ QError e = {};
        BackupPlan *plan = NULL;
        const char *name;
        int r;

        r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = backup_profile_load(config_dir(m), name, &p, &e);
        if (r >= 0)
                r = backup_plan_new(m->app, &p, false, &plan, &e);
        if (r < 0)
                return bus_reply_failure(m, msg, r, &e);
        InfoCall *c = new0(InfoCall, 1);
        if (!c) {
                backup_plan_free(plan);
                return -ENOMEM;
        }
        c->manager = m;
        c->msg = sd_bus_message_ref(msg);
        c->plan = plan;
        r = workers_submit(m->workers, WORK_CALL, info_work, info_done, c);
        if (r < 0) {
                sd_bus_message_unref(c->msg);
                backup_plan_free(plan);
                free(c);
                return r;
        }
        return 1;
}

/* ---- profiles (not upstream: clients that cannot write /etc/qubes/backup) --------------------- */

static int method_list_profiles(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_qerror_ QError e = {};
        int r = gate(m, msg);
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
        Manager *m = call_manager(msg);
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
        Manager *m = call_manager(msg);
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
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *name;
        int r = read_profile_name(m, msg, &name);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (hashmap_get(m->backup->running, name)) {
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
        SD_BUS_METHOD_WITH_ARGS("ExecuteBackup", SD_BUS_ARGS("s", profile), SD_BUS_RESULT("s", archive),
                                method_execute_backup, SD_BUS_VTABLE_UNPRIVILEGED),
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

const BusObjectImplementation backup_object = {
        .path = QUBESD_ROOT_PATH,
        .interface = QUBESD_IFACE_MANAGER,
        .vtables = BUS_VTABLES({ .vtable = backup_manager_vtable }),
};

int backup_dbus_init(Manager *m) {
        BackupManager *bm = new0(BackupManager, 1);
        if (!bm)
                return log_oom();
        m->backup = bm;
        bm->running = hashmap_new();
        if (!bm->running)
                return log_oom();
        return 0;
}

void backup_dbus_done(Manager *m) {
        BackupManager *bm = m->backup;
        if (!bm)
                return;
        /* the backups ended with the workers (jobs_cancel_all() stopped them, their done() freed
         * them); none is left */
        if (hashmap_size(bm->running) > 0)
                log_warning("%zu backups still registered at exit.", hashmap_size(bm->running));
        hashmap_free(bm->running);
        m->backup = mfree(bm);
}
