/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backup/plan.h"

#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

static void file_done(BackupFile *f) {
        free(f->name);
        free(f->path);
        storage_volume_done(&f->volume);
}

static void qube_done(BackupQube *q) {
        free(q->name);
        free(q->subdir);
        for (size_t i = 0; i < q->n_files; i++)
                file_done(&q->files[i]);
        free(q->files);
}

BackupPlan *backup_plan_free(BackupPlan *plan) {
        if (!plan)
                return NULL;
        free(plan->profile);
        for (size_t i = 0; i < plan->n_qubes; i++)
                qube_done(&plan->qubes[i]);
        free(plan->qubes);
        strv_free(plan->not_selected);
        free(plan->destination_vm);
        free(plan->destination_path);
        free(plan->filter);
        free(plan->state_dir);
        free(plan->store_xml);
        free(plan);
        return NULL;
}

static bool has_tag(const void *qube, const char *tag) {
        return domain_has_tag(qube, tag);
}

static bool matches_any(char **entries, Domain *d) {
        STRV_FOREACH(e, entries)
                if (backup_entry_matches(*e, d->name, qubes_class_to_string(d->klass), has_tag, d))
                        return true;
        return false;
}

static int add_file(BackupQube *q, BackupFileKind kind, const char *name, const char *path, BackupFile **ret) {
        BackupFile *l = realloc(q->files, (q->n_files + 1) * sizeof(BackupFile));
        if (!l)
                return -ENOMEM;
        q->files = l;
        BackupFile *f = &l[q->n_files];
        *f = (BackupFile){ .kind = kind };
        f->name = strdup(name);
        f->path = path ? strdup(path) : NULL;
        if (!f->name || (path && !f->path)) {
                file_done(f);
                return -ENOMEM;
        }
        q->n_files++;
        if (ret)
                *ret = f;
        return 0;
}

/* A qube's files in archive order (§4.4): save_on_stop volumes, firewall.xml, notes.txt; the
 * file "empty" when there is none of those. */
static int plan_qube_files(App *app, Domain *d, BackupQube *q, QError *e) {
        _cleanup_free_ char *dir = domain_dir(d);
        int r;

        if (!dir)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_volumes; i++) {
                _cleanup_(storage_volume_donep) StorageVolume v = {};
                _cleanup_free_ char *name = NULL;
                BackupFile *f;

                r = storage_volume_get(app, d, d->volumes[i].name, &v, e);
                if (r < 0)
                        return r;
                if (!v.save_on_stop)
                        continue;
                if (q->running && v.revisions_to_keep == -1)
                        q->snapshots_disabled = true;
                if (asprintf(&name, "%s.img", v.name) < 0)
                        return -ENOMEM;
                r = add_file(q, BACKUP_FILE_VOLUME, name, NULL, &f);
                if (r < 0)
                        return r;
                f->volume = v;
                v = (StorageVolume){};
        }
        static const char *const extra[] = { "firewall.xml", "notes.txt" };
        for (size_t i = 0; i < ELEMENTSOF(extra); i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;
                if (asprintf(&path, "%s/%s", dir, extra[i]) < 0)
                        return -ENOMEM;
                if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                r = add_file(q, BACKUP_FILE_PLAIN, extra[i], path, NULL);
                if (r < 0)
                        return r;
        }
        if (q->n_files == 0)
                return add_file(q, BACKUP_FILE_EMPTY, "empty", NULL, NULL);
        return 0;
}

static int plan_add_qube(App *app, BackupPlan *plan, Domain *d, QError *e) {
        BackupQube *l = realloc(plan->qubes, (plan->n_qubes + 1) * sizeof(BackupQube));
        if (!l)
                return -ENOMEM;
        plan->qubes = l;
        BackupQube *q = &l[plan->n_qubes];
        *q = (BackupQube){ .qid = d->qid };
        plan->n_qubes++;
        q->name = strdup(d->name);
        if (!q->name)
                return -ENOMEM;
        q->is_dom0 = d->klass == QUBES_CLASS_ADMINVM;
        q->is_template = d->klass == QUBES_CLASS_TEMPLATEVM;
        q->updateable = domain_prop_find(d->klass, "updateable") && domain_property_bool(d, "updateable");
        if (q->is_dom0) {
                /* the home directory is found when measuring (a user database lookup may block) */
                q->subdir = strdup("dom0-home/");
                return q->subdir ? add_file(q, BACKUP_FILE_HOME, "", NULL, NULL) : -ENOMEM;
        }
        q->running = domain_is_running(d);
        if (asprintf(&q->subdir, "vm%" PRId64 "/", d->qid) < 0) {
                q->subdir = NULL;
                return -ENOMEM;
        }
        return plan_qube_files(app, d, q, e);
}

int backup_plan_new(App *app, const BackupProfile *p, bool for_execute, BackupPlan **ret, QError *e) {
        _cleanup_(backup_plan_freep) BackupPlan *plan = NULL;
        Domain *dest = NULL, *dom0 = NULL;
        size_t i = 0;
        void *v;
        int r;

        dest = app_get_domain(app, p->destination_vm);
        if (!dest)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Invalid destination_vm specified in backup profile");
        if (for_execute) {
                if (!p->has_passphrase_text && p->passphrase_vm && !app_get_domain(app, p->passphrase_vm))
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Invalid backup profile - invalid passphrase_vm");
                r = backup_profile_check_passphrase(p, e);
                if (r < 0)
                        return r;
        }

        plan = new0(BackupPlan, 1);
        if (!plan)
                return -ENOMEM;
        plan->profile = strdup(p->name);
        plan->destination_vm = dest->klass == QUBES_CLASS_ADMINVM ? NULL : strdup(dest->name);
        plan->destination_path = strdup(p->destination_path);
        plan->filter = strdup(p->compression_filter);
        plan->state_dir = strdup(app->state_dir);
        if (!plan->profile || (dest->klass != QUBES_CLASS_ADMINVM && !plan->destination_vm) ||
            !plan->destination_path || !plan->filter || !plan->state_dir)
                return -ENOMEM;
        plan->compressed = p->compressed;
        plan->kdf = (ScryptParams){ p->scrypt_log_n ?: SCRYPT_DEFAULT_LOG_N, SCRYPT_DEFAULT_R, SCRYPT_DEFAULT_P };

        /* selection: included (or every qube with include_in_backups) minus excluded; dom0 only
         * when named or matched, and last */
        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                Domain *d = v;
                bool in;
                if (p->include_default)
                        in = d->klass != QUBES_CLASS_ADMINVM && domain_property_bool(d, "include_in_backups");
                else
                        in = matches_any(p->include, d);
                if (in && matches_any(p->exclude, d))
                        in = false;
                if (!in) {
                        r = strv_extend(&plan->not_selected, d->name);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (d->klass == QUBES_CLASS_ADMINVM) {
                        dom0 = d;
                        continue;
                }
                r = plan_add_qube(app, plan, d, e);
                if (r < 0)
                        return r;
        }
        if (dom0) {
                r = plan_add_qube(app, plan, dom0, e);
                if (r < 0)
                        return r;
        }
        if (plan->not_selected)
                strv_sort(plan->not_selected);
        else {
                plan->not_selected = new0(char *, 1);
                if (!plan->not_selected)
                        return -ENOMEM;
        }

        if (for_execute) {
                plan->store_xml = app_to_xml(app);
                if (!plan->store_xml)
                        return -ENOMEM;
                plan->store_xml_len = strlen(plan->store_xml);
        }
        *ret = TAKE_PTR(plan);
        return 0;
}

/* ---- measuring (a worker) -------------------------------------------------------------- */

/* upstream's get_disk_usage(): blocks allocated, a directory's tree included (not following
 * symlinks) */
static _Thread_local uint64_t walk_total;

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        walk_total += (uint64_t) st->st_blocks * 512;
        return 0;
}

static uint64_t disk_usage(const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return 0;
        if (!S_ISDIR(st.st_mode))
                return (uint64_t) st.st_blocks * 512;
        walk_total = 0;
        (void) nftw(path, walk_one, 16, FTW_PHYS);
        return walk_total;
}

/* dom0's home: the first member of the group qubes (as upstream). */
static int dom0_home(char **ret_user, char **ret_dir, QError *e) {
        char buf[16384];
        struct group grp, *g = NULL;
        struct passwd pw, *u = NULL;

        if (getgrnam_r("qubes", &grp, buf, sizeof buf, &g) != 0 || !g || !g->gr_mem || !g->gr_mem[0])
                return qerror_set(e, QERR_QUBES_EXCEPTION,
                                  "Cannot back up dom0: its home is that of the first member of the group 'qubes', "
                                  "and that group has no member here");
        *ret_user = strdup(g->gr_mem[0]);
        if (!*ret_user)
                return -ENOMEM;
        if (getpwnam_r(*ret_user, &pw, buf, sizeof buf, &u) != 0 || !u || isempty(u->pw_dir))
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot back up dom0: no home directory for user %s",
                                  *ret_user);
        *ret_dir = strdup(u->pw_dir);
        return *ret_dir ? 0 : -ENOMEM;
}

int backup_plan_measure(BackupPlan *plan, QError *e) {
        int r;

        plan->total = 0;
        for (size_t i = 0; i < plan->n_qubes; i++) {
                BackupQube *q = &plan->qubes[i];
                q->size = 0;
                for (size_t k = 0; k < q->n_files; k++) {
                        BackupFile *f = &q->files[k];
                        uint64_t size, usage;
                        switch (f->kind) {
                        case BACKUP_FILE_VOLUME:
                                storage_volume_sizes(&f->volume, NULL, &size, &usage);
                                f->size = usage;
                                if (q->running && !backup_volume_can_snapshot(&f->volume))
                                        q->cannot_snapshot = true;
                                break;
                        case BACKUP_FILE_PLAIN:
                                f->size = disk_usage(f->path);
                                break;
                        case BACKUP_FILE_EMPTY:
                                f->size = 0;
                                break;
                        case BACKUP_FILE_HOME:
                                if (!f->path) {
                                        _cleanup_free_ char *user = NULL, *dir = NULL;
                                        r = dom0_home(&user, &dir, e);
                                        if (r < 0)
                                                return r;
                                        free(f->name);
                                        f->name = TAKE_PTR(user);
                                        f->path = TAKE_PTR(dir);
                                }
                                f->size = disk_usage(f->path);
                                break;
                        }
                        q->size += f->size;
                }
                plan->total += q->size;
        }
        plan->measured = true;
        return 0;
}

/* ---- Info --------------------------------------------------------------------------------- */

char *backup_size_to_human(uint64_t size) {
        static const char *const units[] = { "KiB", "MiB", "GiB" };
        char *s = NULL;
        if (size < 1024) {
                if (asprintf(&s, "%" PRIu64, size) < 0)
                        return NULL;
                return s;
        }
        double v = (double) size / 1024.0;
        size_t u = 0;
        /* Python: round(x, 1), then str(); "%.1f" rounds the same way (correctly, half to even on
         * the exact binary value) */
        if (size >= 1024 * 1024)
                v = (double) size / (1024.0 * 1024), u = 1;
        if (size >= 1024 * 1024 * 1024)
                v = (double) size / (1024.0 * 1024 * 1024), u = 2;
        if (asprintf(&s, "%.1f %s", v, units[u]) < 0)
                return NULL;
        return s;
}

static void cell(StrBuf *b, const char *text, int width) {
        strbuf_printf(b, "%*s |", width + 1, text);
}

static void rule(StrBuf *b) {
        /* "{0:-^W}-+" with W = width + 1, for widths 16, 12, 12 */
        static const int widths[] = { 16, 12, 12 };
        for (size_t i = 0; i < ELEMENTSOF(widths); i++) {
                for (int k = 0; k < widths[i] + 2; k++)
                        strbuf_append_c(b, '-');
                strbuf_append_c(b, '+');
        }
        strbuf_append_c(b, '\n');
}

char *backup_plan_summary(const BackupPlan *plan) {
        _cleanup_strbuf_ StrBuf b = {};

        rule(&b);
        cell(&b, "VM", 16);
        cell(&b, "type", 12);
        cell(&b, "size", 12);
        strbuf_append_c(&b, '\n');
        rule(&b);
        for (size_t i = 0; i < plan->n_qubes; i++) {
                const BackupQube *q = &plan->qubes[i];
                _cleanup_free_ char *size = backup_size_to_human(q->size);
                cell(&b, q->name, 16);
                cell(&b,
                     q->is_dom0       ? "User home"
                     : q->is_template ? "Template VM"
                     : q->updateable  ? "VM + Sys"
                                      : "VM",
                     12);
                cell(&b, strempty(size), 12);
                if (!q->is_dom0 && q->running) {
                        if (q->snapshots_disabled || q->cannot_snapshot)
                                strbuf_append(&b, " <-- The VM is running and private volume snapshots are disabled. "
                                                  "Backup will fail!");
                        else
                                strbuf_append(&b, " <-- The VM is running, backup will contain its state from before "
                                                  "its start!");
                }
                strbuf_append_c(&b, '\n');
        }
        rule(&b);
        _cleanup_free_ char *total = backup_size_to_human(plan->total);
        cell(&b, "Total size:", 16);
        cell(&b, strempty(total), 12 + 1 + 2 + 12);
        strbuf_append_c(&b, '\n');
        rule(&b);
        strbuf_append(&b, "VMs not selected for backup:\n - ");
        STRV_FOREACH(n, plan->not_selected) {
                if (n != plan->not_selected)
                        strbuf_append(&b, "\n - ");
                strbuf_append(&b, *n);
        }
        strbuf_append_c(&b, '\n');
        return b.oom ? NULL : strbuf_steal(&b);
}

/* ---- the archive's qubes.xml --------------------------------------------------------------- */

int backup_plan_archive_xml(const BackupPlan *plan, char **ret, size_t *ret_len, QError *e) {
        _cleanup_app_free_ App *copy = NULL;
        size_t i = 0;
        void *v;
        int r;

        if (!plan->store_xml)
                return -EINVAL;
        r = app_new(plan->state_dir, &copy);
        if (r < 0)
                return r;
        r = app_load_from_memory(copy, plan->store_xml, plan->store_xml_len, "qubes.xml", e);
        if (r < 0)
                return r;
        while (hashmap_iterate(copy->domains, &i, NULL, &v)) {
                r = domain_feature_store(v, "backup-content", "");
                if (r < 0)
                        return r;
        }
        for (size_t k = 0; k < plan->n_qubes; k++) {
                const BackupQube *q = &plan->qubes[k];
                Domain *d = app_get_domain_by_qid(copy, q->qid);
                char size[32];
                _cleanup_free_ char *path = NULL;
                if (!d)
                        continue; /* gone meanwhile: nothing of it is in the archive either */
                if (q->is_dom0) {
                        if (asprintf(&path, "dom0-home/%s", q->n_files ? q->files[0].name : "") < 0)
                                return -ENOMEM;
                } else if (!(path = strdup(q->subdir)))
                        return -ENOMEM;
                snprintf(size, sizeof size, "%" PRIu64, q->size);
                r = domain_feature_store(d, "backup-content", "1");
                if (r >= 0)
                        r = domain_feature_store(d, "backup-path", path);
                if (r >= 0)
                        r = domain_feature_store(d, "backup-size", size);
                if (r < 0)
                        return r;
                /* preloaded disposables are no state to restore; only their number is */
                _cleanup_strv_free_ char **drop = NULL;
                size_t j = 0;
                void *fv;
                while (hashmap_iterate(d->features, &j, NULL, &fv)) {
                        Feature *f = fv;
                        if (startswith(f->name, "preload-dispvm") && !streq(f->name, "preload-dispvm-max") &&
                            strv_extend(&drop, f->name) < 0)
                                return -ENOMEM;
                }
                STRV_FOREACH(name, drop) {
                        _cleanup_qerror_ QError ignored = {};
                        (void) domain_feature_remove(d, *name, &ignored);
                }
        }
        *ret = app_to_xml(copy);
        if (!*ret)
                return -ENOMEM;
        *ret_len = strlen(*ret);
        return 0;
}

/* ---- volumes ------------------------------------------------------------------------------------ */

/* A reflink copy of fd in the pool's directory that disappears with its descriptor. */
static int reflink_snapshot(const StorageVolume *v, int fd) {
        _cleanup_close_ int snap = open(v->dir_path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (snap < 0)
                return -errno;
        if (ioctl(snap, FICLONE, fd) < 0)
                return -errno;
        return TAKE_FD(snap);
}

int backup_volume_open(const StorageVolume *v, bool running, int *ret_fd, QError *e) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!v->driver->export_open)
                return qerror_set(e, QERR_STORAGE_POOL, "Volume %s of %s cannot be read for a backup", v->name,
                                  v->domain);
        r = v->driver->export_open(v, &fd, e);
        if (r == -ENOENT) {
                /* never written (a qube from a seeded qubes.xml): an empty volume of its size */
                qerror_done(e);
                *ret_fd = -1;
                return 0;
        }
        if (r < 0)
                return r;
        if (running && v->driver != &storage_driver_reflink) {
                /* the file driver's running qube writes its image in place (upstream's
                 * device-mapper origin): only a reflink copy holds still */
                int snap = reflink_snapshot(v, fd);
                if (snap < 0)
                        return qerror_set(e, QERR_VM_NOT_HALTED,
                                          "Domain is not powered off: '%s' (pool %s cannot make a snapshot of its "
                                          "volume %s; shut the qube down to back it up)",
                                          v->domain, v->pool, v->name);
                close(fd);
                fd = snap;
        }
        /* file-reflink: a running qube writes <vid>-dirty.img and every commit, import or revert
         * replaces the image by rename, so the open image stays as it was */
        *ret_fd = TAKE_FD(fd);
        return 0;
}

bool backup_volume_can_snapshot(const StorageVolume *v) {
        if (v->driver == &storage_driver_reflink)
                return true;
        return reflink_supported(v->dir_path) > 0;
}
