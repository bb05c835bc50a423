/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "linux-kernel" driver: a read-only directory of kernels, <dir_path>/<version>/ with
 * vmlinuz, initramfs and modules.img. A volume's vid is the qube's kernel version (one path
 * component); its path is <dir_path>/<version>/modules.img, or None without a kernel. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "storage/driver.h"

#include "storage/storage.h"
#include "util/strv.h"

static bool version_valid(const char *vid) {
        return vid && !strchr(vid, '/') && volume_vid_valid(vid);
}

/* "<version>/modules.img" as a vid-relative name. */
static char *modules_vid(const StorageVolume *v) {
        char *p = NULL;
        if (!version_valid(v->vid) || asprintf(&p, "%s/modules", v->vid) < 0)
                return NULL;
        return p;
}

static int kernel_setup(const char *dir_path, bool setup_check, QError *e) {
        return 0;
}

static int kernel_noop(const StorageVolume *v, QError *e) {
        return 0;
}

static int kernel_start(const StorageVolume *v, QError *e) {
        _cleanup_free_ char *m = modules_vid(v);
        if (!v->vid)
                return 0;
        if (!m || !vol_exists(v->dir_path, m, ".img")) {
                _cleanup_free_ char *p = vol_path_string(v->dir_path, v->vid, "/modules.img");
                return qerror_set(e, QERR_STORAGE_POOL, "Missing kernel modules: %s", p);
        }
        return 0;
}

static char *kernel_path(const StorageVolume *v) {
        return version_valid(v->vid) ? vol_path_string(v->dir_path, v->vid, "/modules.img") : NULL;
}

static uint64_t kernel_current_size(const StorageVolume *v) {
        _cleanup_free_ char *m = modules_vid(v);
        struct stat st;
        if (m && vol_stat(v->dir_path, m, ".img", &st) >= 0)
                return (uint64_t) st.st_size;
        return 0;
}

static uint64_t kernel_usage(const StorageVolume *v) {
        _cleanup_free_ char *m = modules_vid(v);
        struct stat st;
        if (m && vol_stat(v->dir_path, m, ".img", &st) >= 0)
                return st_usage(&st);
        return 0;
}

static void kernel_sizes(const StorageVolume *v, VolDirs *dirs, uint64_t *ret_size, uint64_t *ret_usage) {
        _cleanup_free_ char *m = modules_vid(v);
        struct stat st;
        if (m && vol_stat_in(dirs, v->dir_path, m, ".img", &st) >= 0) {
                *ret_size = (uint64_t) st.st_size;
                *ret_usage = st_usage(&st);
        } else
                *ret_size = *ret_usage = 0;
}

static int kernel_revisions(const StorageVolume *v, char ***ret) {
        *ret = new0(char *, 1);
        return *ret ? 0 : -ENOMEM;
}

static int kernel_revert(const StorageVolume *v, const char *revision, QError *e) {
        return qerror_set(e, QERR_STORAGE_POOL, "Cannot revert: kernel volume %s has no revisions", strempty(v->vid));
}

static int kernel_resize(const StorageVolume *v, uint64_t size, QError *e) {
        return qerror_set(e, QERR_STORAGE_POOL, "Cannot resize: %s is read-only", strempty(v->vid));
}

static int kernel_import_begin(const StorageVolume *v, uint64_t size, int *ret_fd, QError *e) {
        return qerror_set(e, QERR_STORAGE_POOL, "Cannot import_data: %s is read-only", strempty(v->vid));
}

static int kernel_import_end(const StorageVolume *v, bool success, QError *e) {
        return 0;
}

static int kernel_export_open(const StorageVolume *v, int *ret_fd, QError *e) {
        _cleanup_free_ char *m = modules_vid(v);
        int r = m ? vol_open(v->dir_path, m, ".img", O_RDONLY, ret_fd) : -ENOENT;
        if (r < 0)
                return storage_errno_set(e, r, "Cannot open", v->dir_path, strempty(v->vid), "/modules.img");
        return 0;
}

static int kernel_list_vids(const char *dir_path, char ***ret) {
        _cleanup_strv_free_ char **l = new0(char *, 1);
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (!l)
                return -ENOMEM;
        d = opendir(dir_path);
        if (!d) {
                *ret = TAKE_PTR(l);
                return errno == ENOENT ? 0 : -errno;
        }
        while ((de = readdir(d)))
                if (version_valid(de->d_name) && de->d_type == DT_DIR && (r = strv_extend(&l, de->d_name)) < 0)
                        break;
        closedir(d);
        if (r < 0)
                return r;
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

const StorageDriver storage_driver_kernel = {
        .name = "linux-kernel",
        .params = (const char *const[]){ "dir_path", NULL },
        .required = (const char *const[]){ "dir_path", NULL },
        .stored = (const char *const[]){ "dir_path", NULL },
        .max_revisions = -2,
        .has_is_outdated = false,
        .dir_pool = false,
        .pool_setup = kernel_setup,
        .create = kernel_noop,
        .remove = kernel_noop,
        .start = kernel_start,
        .stop = kernel_noop,
        .path = kernel_path,
        .current_size = kernel_current_size,
        .usage = kernel_usage,
        .sizes = kernel_sizes,
        .revisions = kernel_revisions,
        .revert = kernel_revert,
        .resize = kernel_resize,
        .import_begin = kernel_import_begin,
        .import_end = kernel_import_end,
        .export_open = kernel_export_open,
        .list_vids = kernel_list_vids,
};
