/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Volumes of qubes: the volume config of the model (qubes.xml's <volume> attributes) resolved
 * with its pool and driver into a self-contained StorageVolume; the admin.vm.volume.* rules; a
 * qube created and removed with its data; the start/stop steps of the lifecycle code. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/volume.h"

#include "storage/storage.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

static bool attr_true(const VolumeConfig *vc, const char *key) {
        return streq_ptr(volume_config_get(vc, key), "True");
}

void storage_volume_done(StorageVolume *v) {
        free(v->domain);
        free(v->name);
        free(v->pool);
        free(v->dir_path);
        free(v->vid);
        free(v->source);
        *v = (StorageVolume){};
}

int storage_volume_copy(const StorageVolume *src, StorageVolume *dst) {
        *dst = *src;
        dst->domain = strdup(src->domain);
        dst->name = strdup(src->name);
        dst->pool = strdup(src->pool);
        dst->dir_path = src->dir_path ? strdup(src->dir_path) : NULL;
        dst->vid = src->vid ? strdup(src->vid) : NULL;
        dst->source = src->source ? strdup(src->source) : NULL;
        if (!dst->domain || !dst->name || !dst->pool || (src->dir_path && !dst->dir_path) || (src->vid && !dst->vid) ||
            (src->source && !dst->source)) {
                storage_volume_done(dst);
                return -ENOMEM;
        }
        return 0;
}

/* The vid of a snapshot's source: the volume of the same name up the template chain that has
 * no source itself (upstream's resolution for snap_on_start without an explicit source). */
static const char *resolve_source(Domain *d, const char *name) {
        Domain *t = domain_template(d);
        for (size_t guard = 0; t && guard <= QUBES_MAX_QID; guard++) {
                const VolumeConfig *vc = domain_volume_config(t, name);
                if (vc && !volume_config_get(vc, "source"))
                        return volume_config_get(vc, "vid");
                t = domain_template(t);
        }
        return NULL;
}

int storage_volume_get(App *app, Domain *d, const char *name, StorageVolume *ret, QError *e) {
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        const VolumeConfig *vc = domain_volume_config(d, name);
        const char *s;
        Pool *p;

        if (!vc)
                return qerror_set(e, QERR_VOLUME_NOT_FOUND, "No such volume of %s: %s", d->name, name);
        s = volume_config_get(vc, "pool");
        p = app_find_pool(app, s);
        if (!p)
                return qerror_set(e, QERR_POOL_NOT_FOUND, "No such storage pool: %s", strempty(s));
        v.driver = storage_driver_find(p->driver);
        if (!v.driver)
                return qerror_set(e, QERR_STORAGE_POOL, "Storage driver %s is not supported", p->driver);
        v.domain = strdup(d->name);
        v.name = strdup(name);
        v.pool = strdup(p->name);
        s = pool_config_get(p, "dir_path");
        v.dir_path = s ? strdup(s) : NULL;
        if (!v.domain || !v.name || !v.pool || (s && !v.dir_path))
                return -ENOMEM;
        if (!v.dir_path)
                return qerror_set(e, QERR_STORAGE_POOL, "Pool %s has no dir_path", p->name);

        if (v.driver == &storage_driver_kernel) {
                /* the kernel volume follows the qube's kernel property */
                v.vid = domain_property_string(d, "kernel");
                if (v.vid && !*v.vid)
                        v.vid = mfree(v.vid);
        } else if ((s = volume_config_get(vc, "vid"))) {
                v.vid = strdup(s);
                if (!v.vid)
                        return -ENOMEM;
        } else if (asprintf(&v.vid, "%s/%s/%s", d->klass == QUBES_CLASS_TEMPLATEVM ? "vm-templates" : "appvms", d->name,
                            name) < 0)
                return -ENOMEM;
        if (v.vid && !volume_vid_valid(v.vid))
                return qerror_set(e, QERR_STORAGE_POOL, "Refusing volume id outside of its pool: %s", v.vid);

        v.rw = attr_true(vc, "rw");
        v.save_on_stop = attr_true(vc, "save_on_stop");
        v.snap_on_start = attr_true(vc, "snap_on_start");
        if (v.snap_on_start) {
                s = volume_config_get(vc, "source") ?: resolve_source(d, name);
                if (s) {
                        if (!volume_vid_valid(s))
                                return qerror_set(e, QERR_STORAGE_POOL, "Refusing volume id outside of its pool: %s",
                                                  s);
                        v.source = strdup(s);
                        if (!v.source)
                                return -ENOMEM;
                }
        }
        s = volume_config_get(vc, "size");
        v.size = s ? strtoull(s, NULL, 10) : 0;
        s = volume_config_get(vc, "revisions_to_keep");
        if (s)
                v.revisions_to_keep = strtoll(s, NULL, 10);
        else if (v.driver->max_revisions == -2 || (v.driver == &storage_driver_file && !v.save_on_stop))
                v.revisions_to_keep = 0;
        else
                v.revisions_to_keep = strtoll(pool_config_get(p, "revisions_to_keep") ?: "1", NULL, 10);
        s = volume_config_get(vc, "ephemeral");
        if (s)
                v.ephemeral = streq(s, "True");
        else
                v.ephemeral = !v.snap_on_start && !v.save_on_stop && v.rw &&
                              streq_ptr(pool_config_get(p, "ephemeral_volatile"), "True");
        *ret = v;
        v = (StorageVolume){};
        return 0;
}

static const char *word(bool b) {
        return b ? "True" : "False";
}

void storage_volume_sizes(const StorageVolume *v, VolDirs *dirs, uint64_t *ret_size, uint64_t *ret_usage) {
        if (v->driver->sizes) {
                v->driver->sizes(v, dirs, ret_size, ret_usage);
                return;
        }
        *ret_size = v->driver->current_size(v);
        *ret_usage = v->driver->usage(v);
}

char *storage_volume_info(const StorageVolume *v) {
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_free_ char *path = v->driver->path(v);
        uint64_t size, usage;

        storage_volume_sizes(v, NULL, &size, &usage);
        strbuf_printf(&b, "pool=%s\nvid=%s\nsize=%" PRIu64 "\nusage=%" PRIu64 "\nrw=%s\nsource=%s\npath=%s\n", v->pool,
                      strempty(v->vid), size, usage, word(v->rw), strempty(v->source), strempty(path));
        strbuf_printf(&b, "save_on_stop=%s\nsnap_on_start=%s\nrevisions_to_keep=%" PRId64 "\nephemeral=%s\n",
                      word(v->save_on_stop), word(v->snap_on_start), v->revisions_to_keep, word(v->ephemeral));
        if (v->driver->has_is_outdated && v->driver->is_outdated)
                strbuf_printf(&b, "is_outdated=%s\n", word(v->driver->is_outdated(v)));
        if (b.oom)
                return NULL;
        return strbuf_steal(&b);
}

int storage_volume_list_revisions(const StorageVolume *v, char ***ret) {
        return v->driver->revisions(v, ret);
}

static int not_halted(Domain *d, QError *e) {
        return qerror_set(e, QERR_VM_NOT_HALTED, "Domain is not powered off: '%s'", d->name);
}

int storage_volume_set_revisions_to_keep(App *app, Domain *d, const char *vol, const char *value, QError *e) {
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        int64_t n;
        char buf[32];
        int r = storage_volume_get(app, d, vol, &v, e);
        if (r < 0)
                return r;
        r = storage_validate_number(value, "revisions to keep", true, &n, e);
        if (r < 0)
                return r;
        if (n < -1)
                return qerror_set(e, QERR_VALUE, "Invalid revisions_to_keep value: %s", value);
        if (v.driver->max_revisions == -2 && n != 0)
                return qerror_set(e, QERR_VALUE, "Volumes of driver %s keep no revisions", v.driver->name);
        if (n > v.driver->max_revisions)
                return qerror_set(e, QERR_NOT_IMPLEMENTED, "FileVolume supports maximum 1 volume revision to keep");
        if (n == -1 && (v.snap_on_start || !v.save_on_stop))
                return qerror_set(e, QERR_VALUE,
                                  "revisions_to_keep=-1 needs save_on_stop=True and snap_on_start=False");
        if ((n == -1) != (v.revisions_to_keep == -1) && domain_is_running(d))
                return not_halted(d, e);
        snprintf(buf, sizeof buf, "%" PRId64, n);
        return volume_config_set(domain_volume_config(d, vol), "revisions_to_keep", buf);
}

int storage_volume_set_rw(App *app, Domain *d, const char *vol, const char *value, QError *e) {
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        int r = storage_volume_get(app, d, vol, &v, e);
        if (r < 0)
                return r;
        int b = parse_bool_word(value);
        if (b < 0)
                return qerror_set(e, QERR_PROTOCOL, "Payload is not boolean ASCII");
        if (domain_is_running(d))
                return not_halted(d, e);
        if (b && v.driver == &storage_driver_kernel)
                return qerror_set(e, QERR_VALUE, "Volumes of driver %s are read-only", v.driver->name);
        return volume_config_set(domain_volume_config(d, vol), "rw", word(b));
}

int storage_volume_set_ephemeral(App *app, Domain *d, const char *vol, const char *value, QError *e) {
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        int r = storage_volume_get(app, d, vol, &v, e);
        if (r < 0)
                return r;
        int b = parse_bool_word(value);
        if (b < 0)
                return qerror_set(e, QERR_PROTOCOL, "Payload is not boolean ASCII");
        if (b && (v.snap_on_start || v.save_on_stop || !v.rw))
                return qerror_set(e, QERR_VALUE, "Only a volatile read-write volume can be ephemeral");
        return volume_config_set(domain_volume_config(d, vol), "ephemeral", word(b));
}

int storage_volume_resize(App *app, Domain *d, const char *vol, const char *value, QError *e) {
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        uint64_t size, cur;
        char buf[32];
        int r = storage_volume_get(app, d, vol, &v, e);
        if (r < 0)
                return r;
        r = storage_parse_size(value, "volume size", &size, e);
        if (r < 0)
                return r;
        if (!v.rw)
                return qerror_set(e, QERR_STORAGE_POOL, "Cannot resize: %s is read-only", strempty(v.vid));
        cur = v.driver->current_size(&v);
        if (size < cur) {
                char a[32], b[32];
                snprintf(a, sizeof a, "%" PRIu64, size);
                snprintf(b, sizeof b, "%" PRIu64, cur);
                return qerror_set(e, QERR_STORAGE_POOL,
                                  "For your own safety, shrinking of %s is disabled (%s < %s). If you really know "
                                  "what you are doing, use \"truncate\" manually.",
                                  strempty(v.vid), a, b);
        }
        r = v.driver->resize(&v, size, e);
        if (r < 0)
                return r;
        snprintf(buf, sizeof buf, "%" PRIu64, size);
        return volume_config_set(domain_volume_config(d, vol), "size", buf);
}

/* ---- qubes with their data ---------------------------------------------------------------- */

static int create_volumes(App *app, Domain *d, QError *e) {
        size_t i;
        int r = 0;

        for (i = 0; i < d->n_volumes; i++) {
                _cleanup_(storage_volume_donep) StorageVolume v = {};
                r = storage_volume_get(app, d, d->volumes[i].name, &v, e);
                if (r >= 0)
                        r = v.driver->create(&v, e);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                return 0;
        /* undo: nothing of a qube that does not come to exist stays on disk */
        while (i-- > 0) {
                _cleanup_(storage_volume_donep) StorageVolume v = {};
                if (storage_volume_get(app, d, d->volumes[i].name, &v, NULL) >= 0)
                        (void) v.driver->remove(&v, NULL);
        }
        return r;
}

/* A qube's volumes resolved while it is there, so that its data can be deleted once it is not
 * (a volume that does not resolve, say its pool is gone, has no data to delete). */
static int resolve_volumes(App *app, Domain *d, StorageVolume **ret, size_t *ret_n) {
        StorageVolume *vols = new0(StorageVolume, d->n_volumes + 1);
        size_t n = 0;

        if (!vols)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_volumes; i++) {
                _cleanup_qerror_ QError ve = {};
                if (storage_volume_get(app, d, d->volumes[i].name, &vols[n], &ve) >= 0)
                        n++;
                else {
                        _cleanup_free_ char *m = qerror_message(&ve);
                        log_warning("Removing volume %s of %s: %s", d->volumes[i].name, d->name, strempty(m));
                }
        }
        *ret = vols;
        *ret_n = n;
        return 0;
}

/* Delete a qube's data and its directory (notes.txt, firewall.xml, the empty appvms/<name>/). Returns how
 * many things were left behind (each logged). */
static unsigned delete_data(const char *name, const char *dir, StorageVolume *vols, size_t n) {
        _cleanup_free_ char *notes = NULL;
        unsigned left = 0;

        for (size_t i = 0; i < n; i++) {
                _cleanup_qerror_ QError ve = {};
                if (vols[i].driver->remove(&vols[i], &ve) < 0) {
                        _cleanup_free_ char *m = qerror_message(&ve);
                        log_qube_warning(name, "Removing volume %s of %s: %s", vols[i].name, name, strempty(m));
                        left++;
                }
        }
        if (!dir)
                return left;
        static const char *const files[] = { "notes.txt", "firewall.xml" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                notes = mfree(notes);
                if (asprintf(&notes, "%s/%s", dir, files[i]) >= 0 && unlink(notes) < 0 && errno != ENOENT) {
                        log_qube_warning(name, "Cannot remove %s: %m", notes);
                        left++;
                }
        }
        if (rmdir(dir) < 0 && errno != ENOENT) {
                log_qube_warning(name, "Cannot remove the directory %s of removed qube %s: %m", dir, name);
                left++;
        }
        return left;
}

/* ---- what a removal left behind ------------------------------------------------------------ */

static char *leftovers_path(App *app) {
        char *p = NULL;
        return asprintf(&p, "%s/removed-qubes.leftovers", app->state_dir) < 0 ? NULL : p;
}

void storage_note_leftovers(App *app, const char *name) {
        _cleanup_free_ char *path = leftovers_path(app);
        _cleanup_close_ int fd = -EBADF;

        if (!path)
                return;
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || dprintf(fd, "%s\n", name) < 0 || fsync(fd) < 0)
                log_warning_errno(errno, "Cannot note the leftovers of %s in %s: %m", name, path);
        else
                log_qube_warning(name, "The leftovers of %s are removed at the next start.", name);
}

/* Empty a directory of a removed qube (its files only: a qube's directories hold no others)
 * and remove it. */
static void remove_qube_dir(const char *name, const char *parent, const char *sub) {
        _cleanup_free_ char *path = NULL;
        struct dirent *de;
        DIR *dir;

        if (!parent || asprintf(&path, "%s/%s/%s", parent, sub, name) < 0)
                return;
        dir = opendir(path);
        if (!dir)
                return;
        while ((de = readdir(dir))) {
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
                        continue;
                if (unlinkat(dirfd(dir), de->d_name, 0) < 0)
                        log_qube_warning(name, "Cannot remove %s/%s: %m", path, de->d_name);
        }
        closedir(dir);
        if (rmdir(path) < 0)
                log_qube_warning(name, "Cannot remove %s: %m", path);
        else
                log_qube_info(name, "Removed %s, left behind when %s was removed.", path, name);
}

void storage_cleanup_leftovers(App *app) {
        _cleanup_free_ char *path = leftovers_path(app), *data = NULL;
        size_t len = 0;
        char *save = NULL;

        if (!path || read_file(path, &data, &len) < 0)
                return;
        for (char *name = strtok_r(data, "\n", &save); name; name = strtok_r(NULL, "\n", &save)) {
                if (validate_vm_name(name, NULL) < 0 || app_get_domain(app, name))
                        continue; /* a qube of that name exists again: its files are its own */
                remove_qube_dir(name, app->state_dir, "appvms");
                remove_qube_dir(name, app->state_dir, "vm-templates");
                for (size_t i = 0; i < app->n_pools; i++) {
                        const Pool *p = app->pools[i];
                        if (!streq(p->driver, "file") && !streq(p->driver, "file-reflink"))
                                continue;
                        const char *dir = pool_config_get(p, "dir_path");
                        if (dir && !streq(dir, app->state_dir)) {
                                remove_qube_dir(name, dir, "appvms");
                                remove_qube_dir(name, dir, "vm-templates");
                        }
                }
        }
        if (unlink(path) < 0)
                log_warning_errno(errno, "Cannot remove %s: %m", path);
}

int storage_create_domain(App *app, const CreateParams *params, Domain **ret, QError *e) {
        return storage_create_domain_with(app, params, NULL, NULL, ret, e);
}

int storage_create_domain_with(App *app, const CreateParams *params, StoragePrepareFn prepare, void *userdata,
                               Domain **ret, QError *e) {
        _cleanup_free_ char *name = NULL, *dir = NULL;
        StorageVolume *vols = NULL;
        size_t n = 0;
        Domain *d;
        int r;

        app_txn_begin(app);
        r = app_create_domain_begin(app, params, &d, e);
        if (r < 0)
                return r;
        /* the data last, so that no earlier failure leaves any behind; the qube is announced
         * only once it is whole */
        r = create_volumes(app, d, e);
        if (r < 0) {
                app_create_domain_abort(app, d);
                return r;
        }
        name = strdup(d->name);
        dir = domain_dir(d);
        r = name && dir ? resolve_volumes(app, d, &vols, &n) : -ENOMEM;
        if (r < 0) {
                app_create_domain_abort(app, d);
                return r;
        }
        if (prepare && (r = prepare(d, userdata, e)) < 0) {
                app_create_domain_abort(app, d);
                (void) delete_data(name, dir, vols, n);
                storage_volumes_free(vols, n);
                return r;
        }
        app_create_domain_commit(app, d);
        /* files made, then saved: a failed save takes the qube back out, and its files */
        r = app_commit(app, e);
        if (r < 0) {
                (void) delete_data(name, dir, vols, n);
                storage_volumes_free(vols, n);
                return r;
        }
        storage_volumes_free(vols, n);
        if (ret)
                *ret = app_get_domain(app, name);
        return 0;
}

int storage_remove_domain(App *app, Domain *d, QError *e) {
        _cleanup_free_ char *name = strdup(d->name), *dir = domain_dir(d);
        StorageVolume *vols = NULL;
        size_t n = 0;
        int r;

        if (!name || !dir)
                return -ENOMEM;
        r = resolve_volumes(app, d, &vols, &n);
        if (r < 0)
                return r;
        app_txn_begin(app);
        r = app_remove_domain(app, d, e);
        /* the data goes only once qubes.xml without the qube is durable: a refused save brings
         * the qube back with everything it had */
        if (r >= 0)
                r = app_commit(app, e);
        if (r >= 0 && delete_data(name, dir, vols, n) > 0)
                storage_note_leftovers(app, name);
        storage_volumes_free(vols, n);
        return r;
}

int storage_domain_volumes(App *app, Domain *d, StorageVolume **ret, size_t *ret_n, QError *e) {
        StorageVolume *l = new0(StorageVolume, d->n_volumes);
        size_t n = 0;
        if (!l)
                return -ENOMEM;
        for (; n < d->n_volumes; n++) {
                int r = storage_volume_get(app, d, d->volumes[n].name, &l[n], e);
                if (r < 0) {
                        storage_volumes_free(l, n);
                        return r;
                }
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

int storage_volumes_start(StorageVolume *v, size_t n, QError *e) {
        size_t i;
        int r = 0;
        for (i = 0; i < n; i++) {
                r = v[i].driver->start(&v[i], e);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                return 0;
        /* undo what was set up; save_on_stop volumes keep their running image, which the next
         * start reuses (as after an unclean stop) rather than committing half a start */
        while (i-- > 0)
                if (!v[i].save_on_stop)
                        (void) v[i].driver->stop(&v[i], NULL);
        return r;
}

int storage_volumes_stop(StorageVolume *v, size_t n, QError *e) {
        int ret = 0;
        for (size_t i = 0; i < n; i++) {
                QError tmp = {};
                int r = v[i].driver->stop(&v[i], ret < 0 ? &tmp : e);
                if (r < 0 && ret >= 0)
                        ret = r; /* go on: the other volumes still want their commit */
                qerror_done(&tmp);
        }
        return ret;
}

void storage_volumes_free(StorageVolume *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                storage_volume_done(&v[i]);
        free(v);
}
