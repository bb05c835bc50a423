/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "file" driver (upstream's legacy driver): sparse images <vid>.img, a copy-on-write file
 * <vid>-cow.img for save_on_stop and snapshot volumes, one old revision <vid>-cow.img.old, imports
 * through <vid>-import.img. A snapshot volume shows its source's image as its path. Upstream
 * stacks device-mapper snapshots over these files when a qube runs; that happens in the block
 * scripts, not here. */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "storage/driver.h"

#include "storage/storage.h"
#include "util/log.h"
#include "util/strv.h"

/* the image a volume reads: its own, or its source's for a snapshot */
static const char *image_vid(const StorageVolume *v) {
        return v->snap_on_start ? v->source : v->vid;
}

static int file_setup(const char *dir_path, bool setup_check, QError *e) {
        static const char *const subdirs[] = { "appvms", "vm-templates" };

        if (mkdir(dir_path, 0755) < 0 && errno != EEXIST)
                return storage_errno_set(e, -errno, "Cannot create", dir_path, NULL, NULL);
        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir_path, subdirs[i]) < 0)
                        return -ENOMEM;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return storage_errno_set(e, -errno, "Cannot create", p, NULL, NULL);
        }
        return 0;
}

static int file_create(const StorageVolume *v, QError *e) {
        int r;
        if (v->snap_on_start)
                return 0;
        if (!v->vid || v->size == 0)
                return qerror_set(e, QERR_STORAGE_POOL, "Volume size must be > 0");
        /* An image already there belongs to no qube (qubes.xml is written after the files, so a
         * crash in between leaves it behind): the new qube starts from an empty one. */
        if (vol_exists(v->dir_path, v->vid, ".img"))
                log_notice("Replacing the leftover image of %s in pool %s.", v->vid, v->pool);
        r = vol_create_sparse(v->dir_path, v->vid, ".img", v->size);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot create", v->dir_path, v->vid, ".img");
        return 0;
}

static int file_remove(const StorageVolume *v, QError *e) {
        if (!v->vid)
                return 0;
        if (!v->snap_on_start)
                (void) vol_unlink(v->dir_path, v->vid, ".img");
        (void) vol_unlink(v->dir_path, v->vid, "-cow.img");
        (void) vol_unlink(v->dir_path, v->vid, "-cow.img.old");
        (void) vol_unlink(v->dir_path, v->vid, "-import.img");
        return 0;
}

static int file_commit(const StorageVolume *v, QError *e) {
        int r = 0;
        if (vol_exists(v->dir_path, v->vid, "-cow.img"))
                r = v->revisions_to_keep > 0 ? vol_rename(v->dir_path, v->vid, "-cow.img", "-cow.img.old")
                                             : vol_unlink(v->dir_path, v->vid, "-cow.img");
        if (r >= 0)
                r = vol_create_sparse(v->dir_path, v->vid, "-cow.img", v->size);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot commit", v->dir_path, v->vid, "-cow.img");
        return 0;
}

static int file_start(const StorageVolume *v, QError *e) {
        int r;
        if (!v->vid)
                return 0;
        if (!v->save_on_stop && !v->snap_on_start) {
                /* volatile: a fresh empty image at every start */
                r = vol_create_sparse(v->dir_path, v->vid, ".img", v->size);
                return r < 0 ? storage_errno_set(e, r, "Cannot create", v->dir_path, v->vid, ".img") : 0;
        }
        if (!v->save_on_stop)
                (void) vol_unlink(v->dir_path, v->vid, "-cow.img");
        if (!vol_exists(v->dir_path, v->vid, "-cow.img")) {
                r = vol_create_sparse(v->dir_path, v->vid, "-cow.img", v->size);
                if (r < 0)
                        return storage_errno_set(e, r, "Cannot create", v->dir_path, v->vid, "-cow.img");
        }
        if (!vol_exists(v->dir_path, image_vid(v), ".img")) {
                _cleanup_free_ char *p = vol_path_string(v->dir_path, image_vid(v), ".img");
                return qerror_set(e, QERR_STORAGE_POOL, "Missing image file: %s", p);
        }
        return 0;
}

static int file_stop(const StorageVolume *v, QError *e) {
        if (!v->vid)
                return 0;
        if (v->save_on_stop)
                return file_commit(v, e);
        if (v->snap_on_start)
                (void) vol_unlink(v->dir_path, v->vid, "-cow.img");
        else
                (void) vol_unlink(v->dir_path, v->vid, ".img");
        return 0;
}

static char *file_path(const StorageVolume *v) {
        return image_vid(v) ? vol_path_string(v->dir_path, image_vid(v), ".img") : NULL;
}

static uint64_t file_current_size(const StorageVolume *v) {
        struct stat st;
        if (image_vid(v) && vol_stat(v->dir_path, image_vid(v), ".img", &st) >= 0)
                return (uint64_t) st.st_size;
        return v->size;
}

static uint64_t file_usage(const StorageVolume *v) {
        struct stat st;
        uint64_t u = 0;
        if (!v->vid)
                return 0;
        if ((v->save_on_stop || v->snap_on_start) && vol_stat(v->dir_path, v->vid, "-cow.img", &st) >= 0)
                u += st_usage(&st);
        if ((v->save_on_stop || !v->snap_on_start) && vol_stat(v->dir_path, v->vid, ".img", &st) >= 0)
                u += st_usage(&st);
        return u;
}

static void file_sizes(const StorageVolume *v, VolDirs *dirs, uint64_t *ret_size, uint64_t *ret_usage) {
        struct stat st;
        uint64_t own = 0; /* usage of the volume's own image, when that image also gave the size */

        *ret_size = v->size;
        if (image_vid(v) && vol_stat_in(dirs, v->dir_path, image_vid(v), ".img", &st) >= 0) {
                *ret_size = (uint64_t) st.st_size;
                if (!v->snap_on_start)
                        own = st_usage(&st);
        }
        *ret_usage = 0;
        if (!v->vid)
                return;
        if ((v->save_on_stop || v->snap_on_start) && vol_stat_in(dirs, v->dir_path, v->vid, "-cow.img", &st) >= 0)
                *ret_usage += st_usage(&st);
        if (!v->snap_on_start)
                *ret_usage += own; /* the image_vid() stat above: same file */
        else if (v->save_on_stop && vol_stat_in(dirs, v->dir_path, v->vid, ".img", &st) >= 0)
                *ret_usage += st_usage(&st);
}

static bool file_is_outdated(const StorageVolume *v) {
        return false; /* as upstream: the file driver cannot tell */
}

static int file_revisions(const StorageVolume *v, char ***ret) {
        *ret = new0(char *, 1);
        if (!*ret)
                return -ENOMEM;
        if (v->vid && vol_exists(v->dir_path, v->vid, "-cow.img.old"))
                return strv_extend(ret, "old");
        return 0;
}

static int file_revert(const StorageVolume *v, const char *revision, QError *e) {
        return qerror_set(e, QERR_NOT_IMPLEMENTED, "Volume %s has revert() not implemented", v->vid);
}

static int file_resize(const StorageVolume *v, uint64_t size, QError *e) {
        _cleanup_close_ int fd = -EBADF;
        if (!v->rw)
                return qerror_set(e, QERR_STORAGE_POOL, "Can not resize readonly volume %s", v->vid);
        int r = vol_open(v->dir_path, image_vid(v), ".img", O_WRONLY, &fd);
        if (r == -ENOENT)
                return 0; /* nothing on disk yet: the configured size is all there is */
        if (r >= 0 && ftruncate(fd, (off_t) size) < 0)
                r = -errno;
        if (r < 0)
                return storage_errno_set(e, r, "Cannot resize", v->dir_path, image_vid(v), ".img");
        return 0;
}

static int file_import_begin(const StorageVolume *v, uint64_t size, int *ret_fd, QError *e) {
        if (!v->save_on_stop)
                return qerror_set(e, QERR_STORAGE_POOL, "Can not import into save_on_stop=False volume %s", v->vid);
        int r = vol_create_sparse(v->dir_path, v->vid, "-import.img", size);
        if (r >= 0)
                r = vol_open(v->dir_path, v->vid, "-import.img", O_WRONLY, ret_fd);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot create", v->dir_path, v->vid, "-import.img");
        return 0;
}

static int file_import_end(const StorageVolume *v, bool success, QError *e) {
        int r;
        if (!success)
                return vol_unlink(v->dir_path, v->vid, "-import.img");
        r = vol_rename(v->dir_path, v->vid, "-import.img", ".img");
        if (r < 0)
                return storage_errno_set(e, r, "Cannot commit", v->dir_path, v->vid, "-import.img");
        return 0;
}

static int file_export_open(const StorageVolume *v, int *ret_fd, QError *e) {
        if (v->snap_on_start)
                return qerror_set(e, QERR_STORAGE_POOL, "Can not import snapshot volume %s", v->vid);
        int r = vol_open(v->dir_path, v->vid, ".img", O_RDONLY, ret_fd);
        if (r < 0)
                return storage_errno_set(e, r, "Cannot open", v->dir_path, v->vid, ".img");
        return 0;
}

const StorageDriver storage_driver_file = {
        .name = "file",
        .params = (const char *const[]){ "revisions_to_keep", "dir_path", "ephemeral_volatile", NULL },
        .required = (const char *const[]){ "dir_path", NULL },
        .stored = (const char *const[]){ "dir_path", "revisions_to_keep", "ephemeral_volatile", NULL },
        .max_revisions = 1,
        .has_is_outdated = true,
        .dir_pool = true,
        .pool_setup = file_setup,
        .create = file_create,
        .remove = file_remove,
        .start = file_start,
        .stop = file_stop,
        .path = file_path,
        .current_size = file_current_size,
        .usage = file_usage,
        .is_outdated = file_is_outdated,
        .sizes = file_sizes,
        .revisions = file_revisions,
        .revert = file_revert,
        .resize = file_resize,
        .import_begin = file_import_begin,
        .import_end = file_import_end,
        .export_open = file_export_open,
};
