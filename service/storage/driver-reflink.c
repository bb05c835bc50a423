/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "file-reflink" driver: <vid>.img is the committed ("clean") image, <vid>-dirty.img the one
 * a running qube writes, <vid>-import.img an import in progress, and revisions are the files
 * <vid>.img.<N>@<YYYY-MM-DDTHH:MM:SS>Z with N = 1, 2, … (upstream's names, so an existing
 * /var/lib/qubes keeps working). Copies are FICLONE reflinks where the file system can, sparse
 * copies otherwise (only with setup_check=False on such a file system). */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "storage/driver.h"

#include "storage/storage.h"
#include "util/strv.h"

static int reflink_setup(const char *dir_path, bool setup_check, QError *e) {
        static const char *const subdirs[] = { "appvms", "vm-templates" };
        bool created = false;

        if (mkdir(dir_path, 0755) >= 0)
                created = true;
        else if (errno != EEXIST)
                return storage_errno_set(e, -errno, "Cannot create", dir_path, NULL, NULL);
        if (setup_check) {
                int r = reflink_supported(dir_path);
                if (r <= 0) {
                        if (created)
                                (void) rmdir(dir_path);
                        return qerror_set(e, QERR_STORAGE_POOL,
                                          "The filesystem for '%s' does not support reflinks. If you can live "
                                          "with VM startup delays and wasted disk space, pass the "
                                          "\"setup_check=no\" option.",
                                          dir_path);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir_path, subdirs[i]) < 0)
                        return -ENOMEM;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return storage_errno_set(e, -errno, "Cannot create", p, NULL, NULL);
        }
        return 0;
}

/* ---- revisions ---------------------------------------------------------------------------- */

typedef struct Revision {
        unsigned long number;
        char *suffix; /* ".img.<N>@<ts>Z" */
        char *id;     /* "<N>" */
} Revision;

static void revisions_free(Revision *r, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(r[i].suffix);
                free(r[i].id);
        }
        free(r);
}

static int cmp_revision(const void *a, const void *b) {
        const Revision *x = a, *y = b;
        return x->number < y->number ? -1 : x->number > y->number;
}

/* The revision files of v, sorted by number. */
static int list_revisions(const StorageVolume *v, Revision **ret, size_t *ret_n) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *prefix = NULL;
        Revision *list = NULL;
        size_t n = 0;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = vol_parent(v->dir_path, v->vid, ".img.", false, &dfd, &prefix);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                close(fd);
                return -errno;
        }
        struct dirent *de;
        size_t plen = strlen(prefix);
        while ((de = readdir(dir))) {
                const char *rest = startswith(de->d_name, prefix), *at;
                char *end;
                if (!rest || !(at = strchr(rest, '@')) || !endswith(de->d_name, "Z") || at == rest)
                        continue;
                if (rest[0] == '0' || !strchr("123456789", rest[0]))
                        continue;
                unsigned long num = strtoul(rest, &end, 10);
                if (end != at || strchr(at + 1, '~'))
                        continue; /* not a revision, or an incomplete copy */
                Revision *nl = realloc(list, sizeof(Revision) * (n + 1));
                if (!nl) {
                        closedir(dir);
                        revisions_free(list, n);
                        return -ENOMEM;
                }
                list = nl;
                list[n].number = num;
                list[n].suffix = NULL;
                list[n].id = strndup(rest, (size_t) (at - rest));
                if (asprintf(&list[n].suffix, ".img.%s", rest) < 0)
                        list[n].suffix = NULL;
                n++;
                if (!list[n - 1].id || !list[n - 1].suffix) {
                        closedir(dir);
                        revisions_free(list, n);
                        return -ENOMEM;
                }
        }
        (void) plen;
        closedir(dir);
        if (n > 0)
                qsort(list, n, sizeof(Revision), cmp_revision);
        *ret = list;
        *ret_n = n;
        return 0;
}

static int reflink_revisions(const StorageVolume *v, char ***ret) {
        Revision *list;
        size_t n;
        *ret = new0(char *, 1);
        if (!*ret)
                return -ENOMEM;
        if (!v->vid)
                return 0;
        int r = list_revisions(v, &list, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = strv_extend(ret, list[i].id);
        revisions_free(list, n);
        return r;
}

/* Keep a copy of the clean image as the next revision (nothing when revisions_to_keep is 0). */
static int add_revision(const StorageVolume *v) {
        struct stat st;
        Revision *list;
        size_t n;
        char ts[32], suffix[96];
        int r;

        if (v->revisions_to_keep == 0)
                return 0;
        r = vol_stat(v->dir_path, v->vid, ".img", &st);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = list_revisions(v, &list, &n);
        if (r < 0)
                return r;
        unsigned long next = n > 0 ? list[n - 1].number + 1 : 1;
        revisions_free(list, n);
        time_t t = st.st_ctim.tv_sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(suffix, sizeof suffix, ".img.%lu@%sZ", next, ts);
        return vol_copy(v->dir_path, v->vid, ".img", v->vid, suffix);
}

static int prune_revisions(const StorageVolume *v, int64_t keep) {
        Revision *list;
        size_t n;
        int r = list_revisions(v, &list, &n);
        if (r < 0)
                return r;
        if (keep < 0)
                keep = 0;
        for (size_t i = 0; i + (size_t) keep < n; i++)
                (void) vol_unlink(v->dir_path, v->vid, list[i].suffix);
        revisions_free(list, n);
        return 0;
}

static int commit(const StorageVolume *v, const char *from_suffix) {
        int r = add_revision(v);
        if (r >= 0)
                r = prune_revisions(v, v->revisions_to_keep);
        if (r >= 0)
                r = vol_rename(v->dir_path, v->vid, from_suffix, ".img");
        return r;
}

/* ---- volumes ------------------------------------------------------------------------------ */

static int reflink_create(const StorageVolume *v, QError *e) {
        if (!v->save_on_stop || v->snap_on_start)
                return 0;
        if (!v->vid || v->size == 0)
                return qerror_set(e, QERR_STORAGE_POOL, "Volume size must be > 0");
        int r = vol_create_sparse(v->dir_path, v->vid, ".img", v->size);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot create", v->dir_path, v->vid, ".img");
        return 0;
}

static void remove_incomplete(const StorageVolume *v) {
        (void) vol_unlink(v->dir_path, v->vid, "-import.img");
}

static int reflink_remove(const StorageVolume *v, QError *e) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL;

        if (!v->vid)
                return 0;
        remove_incomplete(v);
        (void) prune_revisions(v, 0);
        (void) vol_unlink(v->dir_path, v->vid, ".img");
        (void) vol_unlink(v->dir_path, v->vid, "-dirty.img");
        /* the qube's directory goes when it is empty */
        if (strchr(v->vid, '/')) {
                _cleanup_free_ char *dir = strndup(v->vid, (size_t) (strrchr(v->vid, '/') - v->vid));
                if (dir && vol_parent(v->dir_path, dir, NULL, false, &dfd, &name) >= 0)
                        (void) unlinkat(dfd, name, AT_REMOVEDIR);
        }
        return 0;
}

static bool is_dirty(const StorageVolume *v) {
        return v->save_on_stop && vol_exists(v->dir_path, v->vid, "-dirty.img");
}

static int reflink_start(const StorageVolume *v, QError *e) {
        int r = 0;
        if (!v->vid)
                return 0;
        remove_incomplete(v);
        if (is_dirty(v))
                return 0; /* not cleanly stopped: the qube goes on with its dirty image */
        if (v->snap_on_start) {
                if (!v->source)
                        return qerror_set(e, QERR_STORAGE_POOL, "Volume %s has no source", v->vid);
                r = vol_copy(v->dir_path, v->source, ".img", v->vid, ".img");
                if (r < 0)
                        return storage_errno_set(e, r, "Cannot snapshot", v->dir_path, v->source, ".img");
        }
        if (v->snap_on_start || v->save_on_stop)
                r = vol_copy(v->dir_path, v->vid, ".img", v->vid, "-dirty.img");
        else
                r = vol_create_sparse(v->dir_path, v->vid, "-dirty.img", v->size);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot start", v->dir_path, v->vid, "-dirty.img");
        return 0;
}

static int reflink_stop(const StorageVolume *v, QError *e) {
        if (!v->vid)
                return 0;
        if (v->save_on_stop) {
                if (!vol_exists(v->dir_path, v->vid, "-dirty.img"))
                        return 0;
                int r = commit(v, "-dirty.img");
                return r < 0 ? storage_errno_set(e, r, "Cannot commit", v->dir_path, v->vid, "-dirty.img") : 0;
        }
        (void) vol_unlink(v->dir_path, v->vid, "-dirty.img");
        (void) vol_unlink(v->dir_path, v->vid, ".img");
        return 0;
}

static char *reflink_path(const StorageVolume *v) {
        return v->vid ? vol_path_string(v->dir_path, v->vid, "-dirty.img") : NULL;
}

static uint64_t reflink_current_size(const StorageVolume *v) {
        struct stat st;
        if (v->vid &&
            (vol_stat(v->dir_path, v->vid, "-dirty.img", &st) >= 0 || vol_stat(v->dir_path, v->vid, ".img", &st) >= 0))
                return (uint64_t) st.st_size;
        return v->size;
}

static uint64_t reflink_usage(const StorageVolume *v) {
        struct stat st;
        if (v->vid &&
            (vol_stat(v->dir_path, v->vid, "-dirty.img", &st) >= 0 || vol_stat(v->dir_path, v->vid, ".img", &st) >= 0))
                return st_usage(&st);
        return 0;
}

static void reflink_sizes(const StorageVolume *v, VolDirs *dirs, uint64_t *ret_size, uint64_t *ret_usage) {
        struct stat st;
        if (v->vid && (vol_stat_in(dirs, v->dir_path, v->vid, "-dirty.img", &st) >= 0 ||
                       vol_stat_in(dirs, v->dir_path, v->vid, ".img", &st) >= 0)) {
                *ret_size = (uint64_t) st.st_size;
                *ret_usage = st_usage(&st);
        } else {
                *ret_size = v->size;
                *ret_usage = 0;
        }
}

static bool reflink_is_outdated(const StorageVolume *v) {
        struct stat src, own;
        if (!v->snap_on_start || !v->vid || !v->source)
                return false;
        if (vol_stat(v->dir_path, v->source, ".img", &src) < 0 || vol_stat(v->dir_path, v->vid, ".img", &own) < 0)
                return false;
        return src.st_mtim.tv_sec > own.st_mtim.tv_sec ||
               (src.st_mtim.tv_sec == own.st_mtim.tv_sec && src.st_mtim.tv_nsec > own.st_mtim.tv_nsec);
}

static int reflink_revert(const StorageVolume *v, const char *revision, QError *e) {
        Revision *list;
        size_t n;
        _cleanup_free_ char *suffix = NULL;
        int r;

        if (is_dirty(v))
                return qerror_set(e, QERR_STORAGE_POOL, "Cannot revert: %s is not cleanly stopped", v->vid);
        r = list_revisions(v, &list, &n);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot list revisions of", v->dir_path, v->vid, ".img");
        for (size_t i = 0; i < n; i++)
                if (revision ? streq(list[i].id, revision) : i == n - 1)
                        suffix = strdup(list[i].suffix);
        revisions_free(list, n);
        if (!suffix)
                return qerror_set(e, QERR_VOLUME_REVISION_NOT_FOUND, "Revision not found: %s", strempty(revision));
        r = add_revision(v);
        if (r >= 0)
                r = vol_rename(v->dir_path, v->vid, suffix, ".img");
        if (r < 0)
                return storage_errno_set(e, r, "Cannot revert", v->dir_path, v->vid, ".img");
        return 0;
}

static int reflink_resize(const StorageVolume *v, uint64_t size, QError *e) {
        static const char *const suffixes[] = { "-dirty.img", ".img" };
        if (!v->rw)
                return qerror_set(e, QERR_STORAGE_POOL, "Cannot resize: %s is read-only", v->vid);
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                _cleanup_close_ int fd = -EBADF;
                int r = vol_open(v->dir_path, v->vid, suffixes[i], O_WRONLY, &fd);
                if (r == -ENOENT)
                        continue;
                if (r >= 0 && (ftruncate(fd, (off_t) size) < 0 || fsync(fd) < 0))
                        r = -errno;
                if (r < 0)
                        return storage_errno_set(e, r, "Cannot resize", v->dir_path, v->vid, suffixes[i]);
                break;
        }
        return 0;
}

static int reflink_import_begin(const StorageVolume *v, uint64_t size, int *ret_fd, QError *e) {
        if (!v->save_on_stop)
                return qerror_set(e, QERR_STORAGE_POOL, "Cannot import_data: %s is not save_on_stop", v->vid);
        int r = vol_create_sparse(v->dir_path, v->vid, "-import.img", size);
        if (r >= 0)
                r = vol_open(v->dir_path, v->vid, "-import.img", O_WRONLY, ret_fd);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot create", v->dir_path, v->vid, "-import.img");
        return 0;
}

static int reflink_import_end(const StorageVolume *v, bool success, QError *e) {
        if (!success)
                return vol_unlink(v->dir_path, v->vid, "-import.img");
        int r = commit(v, "-import.img");
        if (r < 0)
                return storage_errno_set(e, r, "Cannot commit", v->dir_path, v->vid, "-import.img");
        return 0;
}

static int reflink_export_open(const StorageVolume *v, int *ret_fd, QError *e) {
        if (!v->save_on_stop)
                return qerror_set(e, QERR_STORAGE_POOL, "Cannot export: %s is not save_on_stop", v->vid);
        int r = vol_open(v->dir_path, v->vid, ".img", O_RDONLY, ret_fd);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot open", v->dir_path, v->vid, ".img");
        return 0;
}

const StorageDriver storage_driver_reflink = {
        .name = "file-reflink",
        .params = (const char *const[]){ "revisions_to_keep", "dir_path", "setup_check", "ephemeral_volatile", NULL },
        .required = (const char *const[]){ "dir_path", NULL },
        .stored = (const char *const[]){ "dir_path", "revisions_to_keep", "ephemeral_volatile", NULL },
        .max_revisions = INT64_MAX,
        .has_is_outdated = true,
        .dir_pool = true,
        .pool_setup = reflink_setup,
        .create = reflink_create,
        .remove = reflink_remove,
        .start = reflink_start,
        .stop = reflink_stop,
        .path = reflink_path,
        .current_size = reflink_current_size,
        .usage = reflink_usage,
        .sizes = reflink_sizes,
        .is_outdated = reflink_is_outdated,
        .revisions = reflink_revisions,
        .revert = reflink_revert,
        .resize = reflink_resize,
        .import_begin = reflink_import_begin,
        .import_end = reflink_import_end,
        .export_open = reflink_export_open,
};
