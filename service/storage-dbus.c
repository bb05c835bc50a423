/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* D-Bus objects of storage: Pool objects (/org/qubes_os/Admin1/pool/<pool>), Volume objects
 * (/org/qubes_os/Admin1/domain/<qube>/volume/<volume>, a fallback vtable on the domain prefix
 * whose find function accepts only paths of that form, so the Domain fallback there (one path
 * component) and this one never claim each other's objects), and a second vtable on the
 * Manager interface for the pool and volume lookups. Data moves in worker threads (job.c); the
 * reply to Import, CloneTo, Clear and Revert is sent when the worker is done. */
#include <fcntl.h>
#include <inttypes.h>

#include "auth.h"
#include "bus-error.h"
#include "commit.h"
#include "job-dbus.h"
#include "workers.h"
#include "storage-dbus.h"
#include "snapshot.h"
#include "storage/storage.h"
#include "util/log.h"
#include "util/strv.h"

#define MAX_CLONE_TOKENS 1024

typedef struct CloneToken {
        char token[STORAGE_TOKEN_LEN + 1]; /* key */
        char *qube, *volume;
} CloneToken;

/* A data operation on a volume (Import, ImportWithSize, CloneTo, Clear, Revert): the copy runs
 * on the worker pool (WORK_DATA), clients follow it as a Job and as the volume's Import*
 * properties, and the call is answered when it is over. One per volume at a time. */
typedef struct VolumeTask {
        Manager *manager;
        char *key; /* "<qube>/<volume>" */
        char *qube, *volume;
        StorageDataOp *op;
        Job *job;
        sd_bus_message *call;
        bool set_size;
        char *clone_source; /* "<qube>:<volume>" of a CloneTo */
} VolumeTask;

/* What storage keeps between calls (Manager.storage). */
struct StorageBus {
        Hashmap *tokens; /* token -> CloneToken* */
        Hashmap *tasks;  /* "<qube>/<volume>" -> VolumeTask* */
};

static char *task_key(const char *qube, const char *volume) {
        char *k = NULL;
        return asprintf(&k, "%s/%s", qube, volume) < 0 ? NULL : k;
}

static VolumeTask *volume_task(Manager *m, const char *qube, const char *volume) {
        _cleanup_free_ char *k = task_key(qube, volume);
        return k ? hashmap_get(m->storage->tasks, k) : NULL;
}

/* ---- change notification ---------------------------------------------------------------- */

static void volume_changed(Manager *m, const char *qube, const char *volume, const char *pool) {
        _cleanup_free_ char *path = volume_bus_path(qube, volume);
        if (path)
                manager_emit_properties_changed(m, path, QUBESD_IFACE_VOLUME, "Size", "Usage", "Rw", "RevisionsToKeep",
                                                "Ephemeral", "IsOutdated", "Path", "ImportInProgress",
                                                "ImportBytesDone", "ImportBytesTotal");
        _cleanup_free_ char *pp = pool ? pool_bus_path(pool) : NULL;
        if (pp)
                manager_emit_properties_changed(m, pp, QUBESD_IFACE_POOL, "Usage");
}

static void volume_changed_d(Manager *m, Domain *d, const char *volume) {
        VolumeConfig *vc = domain_volume_config(d, volume);
        volume_changed(m, d->name, volume, vc ? volume_config_get(vc, "pool") : NULL);
}

static void pool_changed(Manager *m, const Pool *p) {
        _cleanup_free_ char *pp = pool_bus_path(p->name);
        if (pp)
                manager_emit_properties_changed(m, pp, QUBESD_IFACE_POOL, "RevisionsToKeep", "EphemeralVolatile",
                                                "Usage");
}

/* A qube goes: its data operations have no destination any more. */
static void on_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv, void *userdata) {
        Manager *m = userdata;
        Domain *d = NULL;

        /* sent at the commit, when the qube is already out of the app */
        if (!subject && n_kv >= 2 && streq(event, "domain-pre-delete"))
                d = app_get_domain(app, kv[1]) ?: app_get_domain_removed(app, kv[1]);

        for (size_t i = 0; d && i < d->n_volumes; i++) {
                VolumeTask *t = volume_task(m, d->name, d->volumes[i].name);
                if (t)
                        t->op->cancel = true;
        }
}

/* ---- common ----------------------------------------------------------------------------- */

static int reply(Manager *m, sd_bus_message *msg, int r, QError *e, bool save) {
        if (r >= 0 && save)
                r = manager_save(m, e);
        if (r < 0)
                return qerror_is_set(e) ? bus_reply_qerror(m, msg, e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int reply_error(Manager *m, sd_bus_message *msg, QubesErrorCode code, const char *format, const char *a,
                       const char *b) {
        _cleanup_qerror_ QError e = {};
        qerror_set(&e, code, format, a, b);
        return bus_reply_qerror(m, msg, &e);
}

/* The volume name of a volume object path (the qube is the userdata the find function gave). */
static int path_volume(const char *path, char **ret_volume) {
        _cleanup_free_ char *q = NULL;
        int r = sd_bus_path_decode_many(path, QUBESD_VOLUME_PATH_TEMPLATE, &q, ret_volume);
        return r <= 0 ? -ENXIO : 0;
}

/* ---- Volume objects --------------------------------------------------------------------- */

static int volume_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *q = NULL, *v = NULL;
        if (sd_bus_path_decode_many(path, QUBESD_VOLUME_PATH_TEMPLATE, &q, &v) <= 0)
                return 0;
        Domain *d = app_get_domain_announced(m->app, q);
        if (!d || !domain_volume_config(d, v))
                return 0;
        *found = d;
        return 1;
}

static int volume_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = new0(char *, 1);
        size_t i = 0;
        void *v;

        if (!l)
                return -ENOMEM;
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                Domain *d = v;
                if (!auth_sees(m, msg, d))
                        continue; /* only the volumes of the qubes the caller sees */
                for (size_t k = 0; k < d->n_volumes; k++) {
                        char *p = volume_bus_path(d->name, d->volumes[k].name);
                        if (!p || strv_consume(&l, p) < 0)
                                return -ENOMEM;
                }
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

/* Resolve the volume of a call; replies with the error itself (returns 0) when it fails. */
static int msg_volume(Manager *m, sd_bus_message *msg, Domain *d, char **ret_name, StorageVolume *ret) {
        _cleanup_qerror_ QError e = {};
        int r = path_volume(sd_bus_message_get_path(msg), ret_name);
        if (r < 0)
                return r;
        r = storage_volume_get(m->app, d, *ret_name, ret, &e);
        if (r < 0) {
                if (!qerror_is_set(&e))
                        return r;
                r = bus_reply_qerror(m, msg, &e);
                return r < 0 ? r : 0;
        }
        return 1;
}

/* sd-bus reads properties one getter call at a time: 17 for one volume's GetAll, for each of the
 * ~1,200 volumes of GetManagedObjects with 300 qubes. What they show is resolved once per object
 * and reply: the getters that fill one message run back to back on the loop, with no model
 * change in between. The memo holds a reference to that message, so no later message can take
 * its address, and lets it go at the next loop iteration. Nothing outlives the reply: the next
 * message resolves again and reads Size and Usage from disk again (each file once per reply;
 * the directories on the way are opened once per reply too). */
static struct {
        sd_bus_message *msg; /* the message being filled (a reference); NULL when empty */
        VolDirs dirs;
        sd_event_source *release;
        /* the object last read in msg */
        char *path;
        Domain *d;
        char *name;
        int r; /* of storage_volume_get(): 0, or < 0 with error set */
        QError error;
        StorageVolume v;
        VolumeTask *task;
        bool have_sizes;
        uint64_t size, usage;
} memo;

static void volume_memo_forget_object(void) {
        memo.path = mfree(memo.path);
        memo.name = mfree(memo.name);
        memo.d = NULL;
        memo.r = 0;
        qerror_done(&memo.error);
        storage_volume_done(&memo.v);
        memo.task = NULL;
        memo.have_sizes = false;
}

static void volume_memo_clear(void) {
        volume_memo_forget_object();
        vol_dirs_done(&memo.dirs);
        memo.msg = sd_bus_message_unref(memo.msg);
}

static int on_memo_release(sd_event_source *s, void *userdata) {
        volume_memo_clear();
        return 0;
}

/* The volume behind path for a getter filling msg: from the memo, or resolved now. */
static int volume_memo_get(Manager *m, sd_bus_message *msg, const char *path, Domain *d) {
        int r;

        if (memo.msg == msg && memo.d == d && streq_ptr(memo.path, path))
                return 0;
        if (memo.msg != msg) {
                volume_memo_clear();
                if (!memo.release) {
                        r = sd_event_add_defer(m->event, &memo.release, on_memo_release, NULL);
                        if (r < 0)
                                return r;
                        (void) sd_event_source_set_description(memo.release, "volume-property-memo");
                }
                r = sd_event_source_set_enabled(memo.release, SD_EVENT_ONESHOT);
                if (r < 0)
                        return r;
                memo.msg = sd_bus_message_ref(msg);
        } else
                volume_memo_forget_object();

        memo.path = strdup(path);
        if (!memo.path)
                return -ENOMEM;
        r = path_volume(path, &memo.name);
        if (r < 0) {
                volume_memo_forget_object();
                return r;
        }
        memo.r = storage_volume_get(d->app, d, memo.name, &memo.v, &memo.error);
        if (memo.r < 0 && !qerror_is_set(&memo.error)) {
                r = memo.r;
                volume_memo_forget_object();
                return r;
        }
        memo.task = volume_task(m, d->name, memo.name);
        memo.d = d;
        return 0;
}

static int append_bool(sd_bus_message *m, bool b) {
        int x = b;
        return sd_bus_message_append_basic(m, 'b', &x);
}

static int append_u64(sd_bus_message *m, uint64_t x) {
        return sd_bus_message_append_basic(m, 't', &x);
}

static int volume_property(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply_msg, void *userdata, sd_bus_error *error) {
        int r = volume_memo_get(bus_manager(bus), reply_msg, path, userdata);
        if (r < 0)
                return r;
        VolumeTask *t = memo.task;
        const StorageVolume *v = &memo.v;

        if (streq(property, "Name"))
                return sd_bus_message_append_basic(reply_msg, 's', memo.name);
        if (streq(property, "Domain")) {
                _cleanup_free_ char *p = domain_bus_path(memo.d);
                return sd_bus_message_append_basic(reply_msg, 'o', p ?: "/");
        }
        if (streq(property, "ImportInProgress"))
                return append_bool(reply_msg, t != NULL);
        if (streq(property, "ImportBytesDone"))
                return append_u64(reply_msg, t ? job_done(t->job) : 0);
        if (streq(property, "ImportBytesTotal"))
                return append_u64(reply_msg, t ? t->op->size : 0);

        if (memo.r < 0)
                return bus_set_qerror(error, &memo.error);
        if (streq(property, "Pool"))
                return sd_bus_message_append_basic(reply_msg, 's', v->pool);
        if (streq(property, "Vid"))
                return sd_bus_message_append_basic(reply_msg, 's', strempty(v->vid));
        if (streq(property, "Size") || streq(property, "Usage")) {
                if (!memo.have_sizes) {
                        storage_volume_sizes(v, &memo.dirs, &memo.size, &memo.usage);
                        memo.have_sizes = true;
                }
                return append_u64(reply_msg, streq(property, "Size") ? memo.size : memo.usage);
        }
        if (streq(property, "Rw"))
                return append_bool(reply_msg, v->rw);
        if (streq(property, "Source"))
                return sd_bus_message_append_basic(reply_msg, 's', strempty(v->source));
        if (streq(property, "Path")) {
                _cleanup_free_ char *p = v->driver->path(v);
                return sd_bus_message_append_basic(reply_msg, 's', strempty(p));
        }
        if (streq(property, "SaveOnStop"))
                return append_bool(reply_msg, v->save_on_stop);
        if (streq(property, "SnapOnStart"))
                return append_bool(reply_msg, v->snap_on_start);
        if (streq(property, "RevisionsToKeep"))
                return sd_bus_message_append_basic(reply_msg, 'x', &v->revisions_to_keep);
        if (streq(property, "Ephemeral"))
                return append_bool(reply_msg, v->ephemeral);
        if (streq(property, "IsOutdated"))
                return append_bool(reply_msg, v->driver->is_outdated && v->driver->is_outdated(v));
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
}

static int method_volume_info(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        _cleanup_free_ char *name = NULL, *info = NULL;
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = msg_volume(m, msg, d, &name, &v);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        info = storage_volume_info(&v);
        if (!info)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", info);
}

static int method_list_snapshots(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        _cleanup_free_ char *name = NULL;
        _cleanup_strv_free_ char **revs = NULL;
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *rep = NULL;
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = msg_volume(m, msg, d, &name, &v);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        r = storage_volume_list_revisions(&v, &revs);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &rep);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(rep, revs);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, rep, NULL);
}

typedef int (*SetFunc)(App *app, Domain *d, const char *vol, const char *value, QError *e);

static int volume_set(Manager *m, sd_bus_message *msg, Domain *d, SetFunc f, bool refuse_busy) {
        _cleanup_qerror_ QError denied = {};
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *name = NULL;
        const char *value;
        int r = auth_check(m, msg, AUTH_STORAGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &value);
        if (r < 0)
                return r;
        r = path_volume(sd_bus_message_get_path(msg), &name);
        if (r < 0)
                return r;
        if (refuse_busy && volume_task(m, d->name, name))
                return reply_error(m, msg, QERR_STORAGE_POOL, "Volume %s of %s is busy with an import", name, d->name);
        manager_begin(m);
        r = f(m->app, d, name, value, &e);
        if (r >= 0)
                r = manager_save(m, &e);
        if (r >= 0)
                volume_changed_d(m, d, name);
        return reply(m, msg, r, &e, false);
}

static int method_set_revisions_to_keep(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return volume_set(call_manager(msg), msg, userdata, storage_volume_set_revisions_to_keep, false);
}
static int method_set_rw(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return volume_set(call_manager(msg), msg, userdata, storage_volume_set_rw, false);
}
static int method_set_ephemeral(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return volume_set(call_manager(msg), msg, userdata, storage_volume_set_ephemeral, false);
}
static int method_resize(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return volume_set(call_manager(msg), msg, userdata, storage_volume_resize, true);
}

/* ---- data operations ------------------------------------------------------------------ */

static VolumeTask *volume_task_free(VolumeTask *t) {
        if (!t)
                return NULL;
        storage_data_op_free(t->op);
        sd_bus_message_unref(t->call);
        free(t->key);
        free(t->qube);
        free(t->volume);
        free(t->clone_source);
        free(t);
        return NULL;
}

static void task_cancel(Job *j, void *userdata) {
        VolumeTask *t = userdata;
        t->op->cancel = true;
}

static void task_progress_changed(Job *j, void *userdata) {
        VolumeTask *t = userdata;
        Manager *m = t->manager;
        _cleanup_free_ char *path = volume_bus_path(t->qube, t->volume);
        if (path)
                manager_emit_properties_changed(m, path, QUBESD_IFACE_VOLUME, "ImportBytesDone");
}

static void task_work(void *userdata) {
        VolumeTask *t = userdata;
        (void) storage_data_op_run(t->op);
}

/* On the loop, once the worker is done: commit what belongs to the model, answer the call. */
static void task_done(void *userdata) {
        VolumeTask *t = userdata;
        Manager *m = t->manager;
        StorageDataOp *op = t->op;
        _cleanup_qerror_ QError e = {};
        Domain *d;
        int r;

        hashmap_remove(m->storage->tasks, t->key);
        d = app_get_domain(m->app, t->qube);
        VolumeConfig *vc = d ? domain_volume_config(d, t->volume) : NULL;
        r = op->result;
        if (r < 0)
                qerror_move(&e, &op->error);
        if (!vc) {
                /* the qube went away meanwhile: whatever the worker committed goes with it */
                if (r >= 0)
                        (void) op->vol.driver->remove(&op->vol, NULL);
                qerror_done(&e);
                r = qerror_set(&e, QERR_QUBES_EXCEPTION, "Qube %s was removed during the operation", t->qube);
        } else if (op->kind != STORAGE_OP_REVERT) {
                if (r >= 0 && t->set_size) {
                        char buf[32];
                        snprintf(buf, sizeof buf, "%" PRIu64, op->size);
                        manager_begin(m);
                        r = volume_config_set(vc, "size", buf);
                        if (r >= 0)
                                r = manager_save(m, &e);
                }
                if (op->kind == STORAGE_OP_CLONE && r >= 0)
                        app_emit_event(m->app, d, "domain-import-volume", "name", t->volume, "source", t->clone_source);
                app_emit_event(m->app, d, "domain-volume-import-end", "volume", t->volume, "success",
                               r >= 0 ? "True" : "False");
        }
        if (d)
                volume_changed_d(m, d, t->volume);
        if (r < 0 && !qerror_is_set(&e))
                qerror_set(&e, QERR_STORAGE_POOL, "Storage operation failed: %s", strerror(-r));
        job_finish(t->job, r < 0 ? &e : NULL);
        t->job = NULL;
        if (r < 0)
                (void) bus_reply_qerror(m, t->call, &e);
        else
                (void) sd_bus_reply_method_return(t->call, NULL);
        volume_task_free(t);
}

/* Runs op for the call msg on the volume name of d, as a Job; takes op. Replies later. */
static int start_task(Manager *m, sd_bus_message *msg, Domain *d, const char *name, StorageDataOp *op, bool set_size,
                      const char *clone_source) {
        VolumeTask *t = new0(VolumeTask, 1);
        int r;

        if (!t) {
                (void) op->vol.driver->import_end(&op->vol, false, NULL);
                storage_data_op_free(op);
                return -ENOMEM;
        }
        t->manager = m;
        t->op = op;
        t->call = sd_bus_message_ref(msg);
        t->set_size = set_size;
        t->key = task_key(d->name, name);
        t->qube = strdup(d->name);
        t->volume = strdup(name);
        t->clone_source = clone_source ? strdup(clone_source) : NULL;
        if (!t->key || !t->qube || !t->volume || (clone_source && !t->clone_source)) {
                r = -ENOMEM;
                goto fail;
        }
        r = job_new(m,
                    &(JobSpec){
                            .operation = sd_bus_message_get_member(msg),
                            .caller = auth_caller_qube(m, msg),
                            .qubes = (char *[]){ t->qube, NULL },
                            .action = AUTH_STORAGE,
                            .bytes = true,
                            .cancel = op->kind == STORAGE_OP_REVERT ? NULL : task_cancel,
                            .progress_changed = task_progress_changed,
                            .userdata = t,
                    },
                    &t->job);
        if (r < 0)
                goto fail;
        op->progress = job_done_counter(t->job);
        job_progress(t->job, 0, op->size);
        r = hashmap_put(m->storage->tasks, t->key, t);
        if (r >= 0) {
                r = workers_submit(m->workers, WORK_DATA, task_work, task_done, t);
                if (r < 0)
                        hashmap_remove(m->storage->tasks, t->key);
        }
        if (r < 0) {
                _cleanup_qerror_ QError e = {};
                qerror_set(&e, QERR_STORAGE_POOL, "Storage operation failed: %s", strerror(-r));
                job_finish(t->job, &e);
                t->job = NULL;
                goto fail;
        }
        volume_changed_d(m, d, name);
        return 1;
fail:
        /* nothing ran: the import image (if any) goes */
        (void) op->vol.driver->import_end(&op->vol, false, NULL);
        volume_task_free(t);
        return r;
}

/* Common checks of the data-changing calls: halted qube, no other job on the volume. */
static int check_idle(Manager *m, sd_bus_message *msg, Domain *d, const char *name) {
        if (domain_is_running(d)) {
                _cleanup_qerror_ QError e = {};
                qerror_set(&e, QERR_VM_NOT_HALTED, "Domain is not powered off: '%s'", d->name);
                int r = bus_reply_qerror(m, msg, &e);
                return r < 0 ? r : 0;
        }
        if (volume_task(m, d->name, name)) {
                int r = reply_error(m, msg, QERR_STORAGE_POOL, "Volume %s of %s is busy with an import", name, d->name);
                return r < 0 ? r : 0;
        }
        return 1;
}

static int do_import(Manager *m, sd_bus_message *msg, Domain *d, bool with_size) {
        _cleanup_qerror_ QError denied = {};
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *name = NULL;
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        _cleanup_(storage_data_op_freep) StorageDataOp *j = NULL;
        const char *size_s = NULL;
        uint64_t size;
        int fd, r;

        r = auth_check(m, msg, AUTH_STORAGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = with_size ? sd_bus_message_read(msg, "hs", &fd, &size_s) : sd_bus_message_read(msg, "h", &fd);
        if (r == -EBADMSG)
                /* a descriptor index past those the message carries (found by test_hostile) */
                return sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_INVALID_ARGS,
                                                  "The file descriptor argument names none the message carries");
        if (r < 0)
                return r;
        r = msg_volume(m, msg, d, &name, &v);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        r = check_idle(m, msg, d, name);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        if (with_size) {
                r = storage_parse_size(size_s, "size of new data", &size, &e);
                if (r < 0)
                        return bus_reply_qerror(m, msg, &e);
        } else
                size = v.driver->current_size(&v);

        j = storage_data_op_new(STORAGE_OP_IMPORT, &v);
        if (!j)
                return -ENOMEM;
        j->size = size;
        j->in_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (j->in_fd < 0)
                return -errno;
        r = v.driver->import_begin(&v, size, &j->out_fd, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, size);
        app_emit_event(m->app, d, "domain-volume-import-begin", "volume", name, "size", buf);
        return start_task(m, msg, d, name, TAKE_PTR(j), with_size, NULL);
}

static int method_import(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return do_import(call_manager(msg), msg, userdata, false);
}
static int method_import_with_size(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return do_import(call_manager(msg), msg, userdata, true);
}

static int method_cancel_import(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        _cleanup_free_ char *name = NULL;
        int r = auth_check(m, msg, AUTH_STORAGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = path_volume(sd_bus_message_get_path(msg), &name);
        if (r < 0)
                return r;
        VolumeTask *t = volume_task(m, d->name, name);
        if (!t || t->op->kind == STORAGE_OP_REVERT)
                return reply_error(m, msg, QERR_QUBES_EXCEPTION, "No import in progress on volume %s of %s", name,
                                   d->name);
        t->op->cancel = true;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_clear(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *name = NULL;
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        _cleanup_(storage_data_op_freep) StorageDataOp *j = NULL;
        int r = auth_check(m, msg, AUTH_STORAGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = msg_volume(m, msg, d, &name, &v);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        r = check_idle(m, msg, d, name);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        j = storage_data_op_new(STORAGE_OP_CLEAR, &v);
        if (!j)
                return -ENOMEM;
        j->size = v.driver->current_size(&v);
        r = v.driver->import_begin(&v, j->size, &j->out_fd, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, j->size);
        app_emit_event(m->app, d, "domain-volume-import-begin", "volume", name, "size", buf);
        return start_task(m, msg, d, name, TAKE_PTR(j), false, NULL);
}

static int method_revert(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        _cleanup_free_ char *name = NULL;
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        _cleanup_(storage_data_op_freep) StorageDataOp *j = NULL;
        _cleanup_strv_free_ char **revs = NULL;
        const char *rev;
        int r = auth_check(m, msg, AUTH_STORAGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &rev);
        if (r < 0)
                return r;
        if (!storage_revision_valid(rev))
                return reply_error(m, msg, QERR_PROTOCOL, "Revision name must be in safe set: %s",
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.-", NULL);
        r = msg_volume(m, msg, d, &name, &v);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        r = check_idle(m, msg, d, name);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        r = storage_volume_list_revisions(&v, &revs);
        if (r < 0)
                return r;
        if (!strv_contains(revs, rev))
                return reply_error(m, msg, QERR_VOLUME_REVISION_NOT_FOUND, "Revision not found: %s", rev, NULL);
        j = storage_data_op_new(STORAGE_OP_REVERT, &v);
        if (!j)
                return -ENOMEM;
        j->revision = strdup(rev);
        if (!j->revision)
                return -ENOMEM;
        return start_task(m, msg, d, name, TAKE_PTR(j), false, NULL);
}

static CloneToken *clone_token_free(CloneToken *t) {
        if (t) {
                free(t->qube);
                free(t->volume);
                free(t);
        }
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(CloneToken *, clone_token_free);

static int method_clone_from(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        _cleanup_free_ char *name = NULL;
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        int r = auth_check(m, msg, AUTH_STORAGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = msg_volume(m, msg, d, &name, &v);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        CloneToken *t = new0(CloneToken, 1);
        if (!t)
                return -ENOMEM;
        t->qube = strdup(d->name);
        t->volume = strdup(name);
        r = storage_token_new(t->token);
        if (r < 0 || !t->qube || !t->volume || hashmap_put(m->storage->tokens, t->token, t) < 0) {
                clone_token_free(t);
                return r < 0 ? r : -ENOMEM;
        }
        /* tokens live in memory only; the oldest go when too many are outstanding */
        while (hashmap_size(m->storage->tokens) > MAX_CLONE_TOKENS) {
                size_t i = 0;
                const char *k;
                if (!hashmap_iterate(m->storage->tokens, &i, &k, NULL))
                        break;
                clone_token_free(hashmap_remove(m->storage->tokens, k));
        }
        return sd_bus_reply_method_return(msg, "s", t->token);
}

static int method_clone_to(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        Domain *d = userdata;
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *name = NULL, *source = NULL;
        _cleanup_(storage_volume_donep) StorageVolume v = {}, src = {};
        _cleanup_(storage_data_op_freep) StorageDataOp *j = NULL;
        _cleanup_close_ int in = -EBADF;
        const char *token;
        CloneToken *t;
        int r = auth_check(m, msg, AUTH_STORAGE, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &token);
        if (r < 0)
                return r;
        r = msg_volume(m, msg, d, &name, &v);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        t = storage_token_valid(token) ? hashmap_get(m->storage->tokens, token) : NULL;
        if (!t)
                return reply_error(m, msg, QERR_VOLUME_COPY_TOKEN_NOT_FOUND,
                                   "Token to clone volume of qube was not found", NULL, NULL);
        r = check_idle(m, msg, d, name);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        /* single use, whatever happens next */
        hashmap_remove(m->storage->tokens, t->token);
        _cleanup_(clone_token_freep) CloneToken *used = t;
        Domain *sd = app_get_domain(m->app, used->qube);
        if (!sd)
                return reply_error(m, msg, QERR_VOLUME_NOT_FOUND, "No such volume of %s: %s", used->qube, used->volume);
        r = storage_volume_get(m->app, sd, used->volume, &src, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        if (!v.save_on_stop)
                return sd_bus_reply_method_return(msg, NULL); /* as upstream: nothing to keep */
        r = src.driver->export_open(&src, &in, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        struct stat st;
        if (fstat(in, &st) < 0)
                return -errno;
        j = storage_data_op_new(STORAGE_OP_CLONE, &v);
        if (!j)
                return -ENOMEM;
        j->size = (uint64_t) st.st_size;
        j->in_fd = TAKE_FD(in);
        r = v.driver->import_begin(&v, j->size, &j->out_fd, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        if (asprintf(&source, "%s:%s", used->qube, used->volume) < 0)
                return -ENOMEM;
        return start_task(m, msg, d, name, TAKE_PTR(j), true, source);
}

#define VOLUME_PROP(name, sig, flags) SD_BUS_PROPERTY(name, sig, volume_property, 0, flags)
#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE

static const sd_bus_vtable volume_vtable[] = {
        SD_BUS_VTABLE_START(0),
        VOLUME_PROP("Name", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        VOLUME_PROP("Domain", "o", SD_BUS_VTABLE_PROPERTY_CONST),
        VOLUME_PROP("Pool", "s", CHANGES),
        VOLUME_PROP("Vid", "s", CHANGES),
        VOLUME_PROP("Size", "t", CHANGES),
        VOLUME_PROP("Usage", "t", CHANGES),
        VOLUME_PROP("Rw", "b", CHANGES),
        VOLUME_PROP("Source", "s", CHANGES),
        VOLUME_PROP("Path", "s", CHANGES),
        VOLUME_PROP("SaveOnStop", "b", CHANGES),
        VOLUME_PROP("SnapOnStart", "b", CHANGES),
        VOLUME_PROP("RevisionsToKeep", "x", CHANGES),
        VOLUME_PROP("Ephemeral", "b", CHANGES),
        VOLUME_PROP("IsOutdated", "b", CHANGES),
        VOLUME_PROP("ImportInProgress", "b", CHANGES),
        VOLUME_PROP("ImportBytesDone", "t", CHANGES),
        VOLUME_PROP("ImportBytesTotal", "t", CHANGES),
        SD_BUS_METHOD_WITH_ARGS("Info", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", info), method_volume_info,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListSnapshots", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", revisions), method_list_snapshots,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Revert", SD_BUS_ARGS("s", revision), SD_BUS_NO_RESULT, method_revert,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Resize", SD_BUS_ARGS("s", size), SD_BUS_NO_RESULT, method_resize,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Clear", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_clear, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetRevisionsToKeep", SD_BUS_ARGS("s", value), SD_BUS_NO_RESULT,
                                method_set_revisions_to_keep, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetRw", SD_BUS_ARGS("s", value), SD_BUS_NO_RESULT, method_set_rw,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetEphemeral", SD_BUS_ARGS("s", value), SD_BUS_NO_RESULT, method_set_ephemeral,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Import", SD_BUS_ARGS("h", data), SD_BUS_NO_RESULT, method_import,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportWithSize", SD_BUS_ARGS("h", data, "s", size), SD_BUS_NO_RESULT,
                                method_import_with_size, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelImport", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel_import,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CloneFrom", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", token), method_clone_from,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CloneTo", SD_BUS_ARGS("s", token), SD_BUS_NO_RESULT, method_clone_to,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- Pool objects ----------------------------------------------------------------------- */

static int pool_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                     sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;
        int r = sd_bus_path_decode(path, QUBESD_POOL_PREFIX, &name);
        if (r <= 0)
                return r;
        Pool *p = app_find_pool(m->app, name);
        if (!p)
                return 0;
        *found = p;
        return 1;
}

static int pool_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = new0(char *, m->app->n_pools + 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->app->n_pools; i++) {
                l[i] = pool_bus_path(m->app->pools[i]->name);
                if (!l[i])
                        return -ENOMEM;
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

static int pool_property(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply_msg, void *userdata, sd_bus_error *error) {
        Pool *p = userdata;
        uint64_t size = 0, usage = 0;

        if (streq(property, "Name"))
                return sd_bus_message_append(reply_msg, "s", p->name);
        if (streq(property, "Driver"))
                return sd_bus_message_append(reply_msg, "s", p->driver);
        if (streq(property, "DirPath"))
                return sd_bus_message_append(reply_msg, "s", strempty(pool_config_get(p, "dir_path")));
        if (streq(property, "RevisionsToKeep")) {
                const char *s = pool_config_get(p, "revisions_to_keep");
                return sd_bus_message_append(reply_msg, "x", (int64_t) (s ? strtoll(s, NULL, 10) : 0));
        }
        if (streq(property, "EphemeralVolatile"))
                return sd_bus_message_append(reply_msg, "b",
                                             (int) streq_ptr(pool_config_get(p, "ephemeral_volatile"), "True"));
        (void) storage_pool_size_usage(p, &size, &usage);
        if (streq(property, "Size"))
                return sd_bus_message_append(reply_msg, "t", size);
        if (streq(property, "Usage"))
                return sd_bus_message_append(reply_msg, "t", usage);
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
}

static int method_pool_info(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        _cleanup_free_ char *info = storage_pool_info(m->app, userdata);
        if (!info)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", info);
}

static int method_pool_usage_details(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        _cleanup_free_ char *info = storage_pool_usage_details(userdata);
        if (!info)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", info);
}

static int vids_seen(Manager *m, sd_bus_message *msg, const Pool *p, char ***l) {
        _cleanup_strv_free_ char **seen = new0(char *, 1);
        size_t i = 0;
        void *v;

        if (!seen)
                return -ENOMEM;
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                Domain *d = v;
                if (!auth_sees(m, msg, d))
                        continue;
                for (size_t k = 0; k < d->n_volumes; k++) {
                        _cleanup_(storage_volume_donep) StorageVolume vol = {};
                        _cleanup_qerror_ QError e = {};
                        if (storage_volume_get(m->app, d, d->volumes[k].name, &vol, &e) < 0 || !vol.vid ||
                            !streq_ptr(vol.pool, p->name) || !strv_contains(*l, vol.vid) ||
                            strv_contains(seen, vol.vid))
                                continue;
                        if (strv_extend(&seen, vol.vid) < 0)
                                return -ENOMEM;
                }
        }
        strv_free(*l);
        *l = TAKE_PTR(seen);
        return 0;
}

static int method_pool_list_volumes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *rep = NULL;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = storage_pool_list_vids(m->app, userdata, &l);
        if (r < 0)
                return r;
        if (!auth_sees_all(m, msg)) {
                /* a local user who does not see every qube: the volumes of those they see */
                r = vids_seen(m, msg, userdata, &l);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_new_method_return(msg, &rep);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(rep, l);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, rep, NULL);
}

static int pool_set(Manager *m, sd_bus_message *msg, Pool *p, int (*f)(App *, Pool *, const char *, QError *)) {
        _cleanup_qerror_ QError denied = {};
        _cleanup_qerror_ QError e = {};
        const char *value;
        int r = auth_check(m, msg, AUTH_STORAGE, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &value);
        if (r < 0)
                return r;
        manager_begin(m);
        r = f(m->app, p, value, &e);
        if (r >= 0)
                r = manager_save(m, &e);
        if (r >= 0)
                pool_changed(m, p);
        return reply(m, msg, r, &e, false);
}

static int method_pool_set_revisions(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return pool_set(call_manager(msg), msg, userdata, storage_pool_set_revisions_to_keep);
}
static int method_pool_set_ephemeral(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return pool_set(call_manager(msg), msg, userdata, storage_pool_set_ephemeral_volatile);
}

#define POOL_PROP(name, sig, flags) SD_BUS_PROPERTY(name, sig, pool_property, 0, flags)

static const sd_bus_vtable pool_vtable[] = {
        SD_BUS_VTABLE_START(0),
        POOL_PROP("Name", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        POOL_PROP("Driver", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        POOL_PROP("DirPath", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        POOL_PROP("RevisionsToKeep", "x", CHANGES),
        POOL_PROP("EphemeralVolatile", "b", CHANGES),
        POOL_PROP("Size", "t", CHANGES),
        POOL_PROP("Usage", "t", CHANGES),
        SD_BUS_METHOD_WITH_ARGS("Info", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", info), method_pool_info,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UsageDetails", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", details), method_pool_usage_details,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListVolumes", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", vids), method_pool_list_volumes,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetRevisionsToKeep", SD_BUS_ARGS("s", value), SD_BUS_NO_RESULT,
                                method_pool_set_revisions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetEphemeralVolatile", SD_BUS_ARGS("s", value), SD_BUS_NO_RESULT,
                                method_pool_set_ephemeral, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- Manager methods -------------------------------------------------------------------- */

static int method_list_pools(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *rep = NULL;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_new_method_return(msg, &rep);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(rep, 'a', "(sso)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->app->n_pools; i++) {
                Pool *p = m->app->pools[i];
                _cleanup_free_ char *path = pool_bus_path(p->name);
                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(rep, "(sso)", p->name, p->driver, path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(rep);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, rep, NULL);
}

static int method_list_pool_drivers(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *rep = NULL;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_new_method_return(msg, &rep);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(rep, 'a', "(sas)");
        if (r < 0)
                return r;
        for (size_t i = 0; storage_drivers[i]; i++) {
                r = sd_bus_message_open_container(rep, 'r', "sas");
                if (r >= 0)
                        r = sd_bus_message_append(rep, "s", storage_drivers[i]->name);
                if (r >= 0)
                        r = sd_bus_message_append_strv(rep, (char **) storage_drivers[i]->params);
                if (r >= 0)
                        r = sd_bus_message_close_container(rep);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(rep);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, rep, NULL);
}

static int method_get_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        const char *name;
        int r = auth_check(m, msg, AUTH_READ, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!app_find_pool(m->app, name))
                return reply_error(m, msg, QERR_POOL_NOT_FOUND, "No such storage pool: %s", name, NULL);
        _cleanup_free_ char *path = pool_bus_path(name);
        return path ? sd_bus_reply_method_return(msg, "o", path) : -ENOMEM;
}

static int method_add_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **config = new0(char *, 1);
        const char *driver, *k, *v;
        Pool *p;
        int r = auth_check(m, msg, AUTH_STORAGE, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        if (!config)
                return -ENOMEM;
        r = sd_bus_message_read(msg, "s", &driver);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(msg, 'a', "(ss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(msg, "(ss)", &k, &v)) > 0)
                if (strv_extend(&config, k) < 0 || strv_extend(&config, v) < 0)
                        return -ENOMEM;
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        manager_begin(m);
        r = storage_pool_add(m->app, driver, config, &p, &e);
        if (r >= 0)
                r = manager_save(m, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        _cleanup_free_ char *path = pool_bus_path(p->name);
        if (!path)
                return -ENOMEM;
        manager_emit_object_added(m, path);
        return sd_bus_reply_method_return(msg, "o", path);
}

static int method_remove_pool(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        _cleanup_qerror_ QError e = {};
        const char *name;
        int r = auth_check(m, msg, AUTH_STORAGE, NULL, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        Pool *p = app_find_pool(m->app, name);
        _cleanup_free_ char *path = pool_bus_path(name);
        if (!path)
                return -ENOMEM;
        if (p && !storage_pool_in_use(m->app, p))
                manager_emit_object_removed(m, path); /* while it still exists */
        manager_begin(m);
        r = storage_pool_remove(m->app, name, &e);
        return reply(m, msg, r, &e, true);
}

static int lookup_domain(Manager *m, sd_bus_message *msg, const char *ref, Domain **ret) {
        _cleanup_qerror_ QError e = {};
        int r = auth_resolve_domain(m, msg, ref, ret, &e);
        if (r < 0) {
                if (!qerror_is_set(&e))
                        return r;
                r = bus_reply_qerror(m, msg, &e);
                return r < 0 ? r : 0;
        }
        return 1;
}

static int method_list_volumes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *rep = NULL;
        const char *ref;
        Domain *d;
        int r = sd_bus_message_read(msg, "s", &ref);
        if (r < 0)
                return r;
        r = lookup_domain(m, msg, ref, &d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = sd_bus_message_new_method_return(msg, &rep);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(rep, 'a', "(so)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < d->n_volumes; i++) {
                _cleanup_free_ char *path = volume_bus_path(d->name, d->volumes[i].name);
                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(rep, "(so)", d->volumes[i].name, path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(rep);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, rep, NULL);
}

static int method_get_volume(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        const char *ref, *vol;
        Domain *d;
        int r = sd_bus_message_read(msg, "ss", &ref, &vol);
        if (r < 0)
                return r;
        r = lookup_domain(m, msg, ref, &d);
        if (r <= 0)
                return r < 0 ? r : 1; /* answered */
        r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        if (!domain_volume_config(d, vol))
                return reply_error(m, msg, QERR_VOLUME_NOT_FOUND, "No such volume of %s: %s", d->name, vol);
        _cleanup_free_ char *path = volume_bus_path(d->name, vol);
        return path ? sd_bus_reply_method_return(msg, "o", path) : -ENOMEM;
}

static const sd_bus_vtable manager_storage_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("ListPools", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sso)", pools), method_list_pools,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListPoolDrivers", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sas)", drivers),
                                method_list_pool_drivers, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPool", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", pool), method_get_pool,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AddPool", SD_BUS_ARGS("s", driver, "a(ss)", config), SD_BUS_RESULT("o", pool),
                                method_add_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemovePool", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_remove_pool,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListVolumes", SD_BUS_ARGS("s", qube), SD_BUS_RESULT("a(so)", volumes),
                                method_list_volumes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetVolume", SD_BUS_ARGS("s", qube, "s", volume), SD_BUS_RESULT("o", path),
                                method_get_volume, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int storage_dbus_init(Manager *m) {
        StorageBus *st = new0(StorageBus, 1);
        if (!st)
                return log_oom();
        m->storage = st;
        st->tokens = hashmap_new();
        st->tasks = hashmap_new();
        if (!st->tokens || !st->tasks || app_add_listener(m->app, on_event, m) < 0)
                return log_oom();
        return 0;
}

void storage_dbus_done(Manager *m) {
        StorageBus *st = m->storage;
        size_t i = 0;
        void *v;

        volume_memo_clear();
        memo.release = sd_event_source_disable_unref(memo.release);
        if (!st)
                return;
        app_remove_listener(m->app, on_event, m);
        /* the tasks finished with the workers (their done() freed them) */
        while (hashmap_iterate(st->tokens, &i, NULL, &v))
                clone_token_free(v);
        hashmap_free(st->tokens);
        hashmap_free(st->tasks);
        m->storage = mfree(st);
}

static const BusObjectImplementation pool_object = {
        .path = QUBESD_POOL_PREFIX,
        .interface = QUBESD_IFACE_POOL,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = pool_vtable, .find = pool_find }),
        .node_enumerator = pool_enumerate,
};

/* A second fallback below the qubes' prefix: volume_find accepts only the three-component form
 * (…/domain/<qube>/volume/<volume>), domain_find only one component, so neither claims the
 * other's objects. */
static const BusObjectImplementation volume_object = {
        .path = QUBESD_DOMAIN_PREFIX,
        .interface = QUBESD_IFACE_VOLUME,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = volume_vtable, .find = volume_find }),
        .node_enumerator = volume_enumerate,
        /* not in the root's GetManagedObjects, but in the qube's: docs/dbus-api.md, "The snapshot" */
        .on_demand = true,
        .fallback_callback = snapshot_object_callback,
};

const BusObjectImplementation storage_object = {
        .path = QUBESD_ROOT_PATH,
        .interface = QUBESD_IFACE_MANAGER,
        .vtables = BUS_VTABLES({ .vtable = manager_storage_vtable }),
        .children = BUS_IMPLEMENTATIONS(&pool_object, &volume_object),
};
