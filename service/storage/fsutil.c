/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File helpers of the file-based drivers. Every name below a pool is reached with openat() one
 * component at a time, O_NOFOLLOW (or one openat2() with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
 * where the kernel has it), so a symlink planted anywhere under the pool (or a vid that slipped
 * through validation) cannot lead outside it. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "storage/fsutil.h"

#include "storage/storage.h"
#include "util/log.h"

uint64_t st_usage(const struct stat *st) {
        return (uint64_t) st->st_blocks * 512;
}

char *vol_path_string(const char *dir_path, const char *vid, const char *suffix) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s%s", dir_path, vid, strempty(suffix)) < 0)
                return NULL;
        return p;
}

/* The directory at the relative path sub below fd, in one openat2() that refuses every symlink
 * and any way out of fd; -ENOSYS (old kernel) or -EPERM (a seccomp filter that does not know the
 * call) when the caller must walk instead. */
static int open_beneath(int fd, const char *sub) {
        static atomic_bool unsupported;
        struct open_how how = {
                .flags = O_DIRECTORY | O_CLOEXEC | O_PATH | O_NOFOLLOW,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
        };
        if (atomic_load(&unsupported))
                return -ENOSYS;
        int nfd = (int) syscall(SYS_openat2, fd, sub, &how, sizeof how);
        if (nfd >= 0)
                return nfd;
        if (errno == ENOSYS || errno == EPERM) {
                atomic_store(&unsupported, true);
                return -ENOSYS;
        }
        return errno == ENOTDIR ? -ELOOP : -errno; /* as the walk below reports it */
}

int vol_parent(const char *dir_path, const char *vid, const char *suffix, bool mkdirs, int *ret_dirfd,
               char **ret_name) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *copy = NULL;
        char *p, *slash;

        if (!dir_path || !vid || !volume_vid_valid(vid))
                return -EINVAL;
        fd = open(dir_path, O_DIRECTORY | O_CLOEXEC | O_PATH);
        if (fd < 0)
                return -errno;
        copy = strdup(vid);
        if (!copy)
                return -ENOMEM;
        p = copy;
        slash = strrchr(copy, '/');
        if (slash && !mkdirs) {
                /* reading (the common case: every Size and Usage read): the whole way at once */
                *slash = 0;
                int nfd = open_beneath(fd, copy);
                *slash = '/';
                if (nfd != -ENOSYS) {
                        if (nfd < 0)
                                return nfd;
                        close(fd);
                        fd = nfd;
                        p = slash + 1;
                }
        }
        while ((slash = strchr(p, '/'))) {
                *slash = 0;
                int nfd = openat(fd, p, O_DIRECTORY | O_CLOEXEC | O_PATH | O_NOFOLLOW);
                if (nfd < 0 && errno == ENOENT && mkdirs) {
                        if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        nfd = openat(fd, p, O_DIRECTORY | O_CLOEXEC | O_PATH | O_NOFOLLOW);
                }
                if (nfd < 0)
                        return errno == ENOTDIR ? -ELOOP : -errno; /* a symlink is not a directory here */
                close(fd);
                fd = nfd;
                p = slash + 1;
        }
        if (asprintf(ret_name, "%s%s", p, strempty(suffix)) < 0)
                return -ENOMEM;
        *ret_dirfd = TAKE_FD(fd);
        return 0;
}

int vol_open(const char *dir_path, const char *vid, const char *suffix, int flags, int *ret_fd) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL;
        struct stat st;
        int r = vol_parent(dir_path, vid, suffix, false, &dfd, &name);
        if (r < 0)
                return r;
        int fd = openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADFD;
        }
        *ret_fd = fd;
        return 0;
}

int vol_stat(const char *dir_path, const char *vid, const char *suffix, struct stat *st) {
        return vol_stat_in(NULL, dir_path, vid, suffix, st);
}

void vol_dirs_done(VolDirs *c) {
        for (size_t i = 0; c && i < ELEMENTSOF(c->e); i++)
                if (c->e[i].dir_path) {
                        close(c->e[i].fd);
                        free(c->e[i].dir_path);
                        free(c->e[i].parent);
                }
        if (c)
                *c = (VolDirs){};
}

/* The directory of vid kept in c, or -1. */
static int dirs_find(VolDirs *c, const char *dir_path, const char *vid, size_t plen) {
        for (size_t i = 0; c && i < ELEMENTSOF(c->e); i++)
                if (c->e[i].dir_path && streq(c->e[i].dir_path, dir_path) && strlen(c->e[i].parent) == plen &&
                    memcmp(c->e[i].parent, vid, plen) == 0) {
                        c->e[i].used = ++c->clock;
                        return c->e[i].fd;
                }
        return -1;
}

/* Keep fd in c, in place of the least recently used; false (fd not taken) when out of memory.
 * (The template's and the kernel's directories stay while each qube's own comes and goes.) */
static bool dirs_add(VolDirs *c, const char *dir_path, const char *vid, size_t plen, int fd) {
        char *dp = strdup(dir_path), *pp = strndup(vid, plen);
        size_t k = 0;

        if (!dp || !pp) {
                free(dp);
                free(pp);
                return false;
        }
        for (size_t i = 1; i < ELEMENTSOF(c->e); i++)
                if (c->e[i].used < c->e[k].used)
                        k = i;
        if (c->e[k].dir_path) {
                close(c->e[k].fd);
                free(c->e[k].dir_path);
                free(c->e[k].parent);
        }
        c->e[k].dir_path = dp;
        c->e[k].parent = pp;
        c->e[k].fd = fd;
        c->e[k].used = ++c->clock;
        return true;
}

int vol_stat_in(VolDirs *c, const char *dir_path, const char *vid, const char *suffix, struct stat *st) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL;
        int fd, r;

        if (!dir_path || !vid || !volume_vid_valid(vid))
                return -EINVAL;
        const char *slash = strrchr(vid, '/');
        size_t plen = slash ? (size_t) (slash - vid) : 0;
        fd = dirs_find(c, dir_path, vid, plen);
        if (fd >= 0) {
                if (asprintf(&name, "%s%s", slash ? slash + 1 : vid, strempty(suffix)) < 0)
                        return -ENOMEM;
        } else {
                r = vol_parent(dir_path, vid, suffix, false, &dfd, &name);
                if (r < 0)
                        return r;
                fd = dfd;
                if (c && dirs_add(c, dir_path, vid, plen, fd))
                        dfd = -EBADF; /* c has it now */
        }
        if (fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return S_ISREG(st->st_mode) ? 0 : -EBADFD;
}

bool vol_exists(const char *dir_path, const char *vid, const char *suffix) {
        struct stat st;
        return vol_stat(dir_path, vid, suffix, &st) >= 0;
}

int vol_unlink(const char *dir_path, const char *vid, const char *suffix) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL;
        int r = vol_parent(dir_path, vid, suffix, false, &dfd, &name);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int vol_rename(const char *dir_path, const char *vid, const char *from_suffix, const char *to_suffix) {
        _cleanup_close_ int dfd = -EBADF, wfd = -EBADF;
        _cleanup_free_ char *from = NULL, *to = NULL, *last = NULL;
        int r = vol_parent(dir_path, vid, from_suffix, false, &dfd, &from);
        if (r < 0)
                return r;
        const char *slash = strrchr(vid, '/');
        if (asprintf(&to, "%s%s", slash ? slash + 1 : vid, strempty(to_suffix)) < 0)
                return -ENOMEM;
        if (renameat(dfd, from, dfd, to) < 0)
                return -errno;
        /* the rename is durable before we report it */
        wfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (wfd >= 0)
                (void) fsync(wfd);
        return 0;
}

/* A temporary file next to "<vid><suffix>", replaced over it by commit_tmp(). */
static int open_tmp(const char *dir_path, const char *vid, const char *suffix, int *ret_dfd, char **ret_name,
                    char **ret_tmp, int *ret_fd) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *name = NULL, *tmp = NULL;
        int r = vol_parent(dir_path, vid, suffix, true, &dfd, &name);
        if (r < 0)
                return r;
        for (int attempt = 0; attempt < 100; attempt++) {
                uint32_t x;
                if (getentropy(&x, sizeof x) < 0)
                        return -errno;
                free(tmp);
                if (asprintf(&tmp, "%s~%08" PRIx32, name, x) < 0)
                        return -ENOMEM;
                int fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0664);
                if (fd >= 0) {
                        *ret_fd = fd;
                        *ret_dfd = TAKE_FD(dfd);
                        *ret_name = TAKE_PTR(name);
                        *ret_tmp = TAKE_PTR(tmp);
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

static int commit_tmp(int dfd, const char *tmp, const char *name, int fd, int r) {
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dfd, tmp, 0);
                return r;
        }
        _cleanup_close_ int wfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (wfd >= 0)
                (void) fsync(wfd);
        return 0;
}

int vol_create_sparse(const char *dir_path, const char *vid, const char *suffix, uint64_t size) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *name = NULL, *tmp = NULL;
        int r = open_tmp(dir_path, vid, suffix, &dfd, &name, &tmp, &fd);
        if (r < 0)
                return r;
        r = size > STORAGE_MAX_SIZE ? -EFBIG : 0;
        if (r >= 0 && ftruncate(fd, (off_t) size) < 0)
                r = -errno;
        return commit_tmp(dfd, tmp, name, fd, r);
}

int fd_copy_sparse(int in_fd, int out_fd, _Atomic uint64_t *progress, atomic_bool *cancel) {
        struct stat st;

        if (fstat(in_fd, &st) < 0)
                return -errno;
        if (ioctl(out_fd, FICLONE, in_fd) >= 0) {
                if (progress)
                        *progress = (uint64_t) st.st_size;
                return 0;
        }
        if (ftruncate(out_fd, st.st_size) < 0)
                return -errno;
        off_t pos = 0;
        while (pos < st.st_size) {
                if (cancel && *cancel)
                        return -ECANCELED;
                off_t data = lseek(in_fd, pos, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole is left */
                        return -errno;
                }
                off_t hole = lseek(in_fd, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                /* at most 16 MiB per call so that cancel and progress stay responsive */
                off_t end = hole - data > (16 << 20) ? data + (16 << 20) : hole;
                off_t in_off = data, out_off = data;
                while (in_off < end) {
                        ssize_t n = copy_file_range(in_fd, &in_off, out_fd, &out_off, (size_t) (end - in_off), 0);
                        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
                                /* plain copy for file systems without copy_file_range */
                                char buf[65536];
                                size_t want =
                                        (size_t) (end - in_off) < sizeof buf ? (size_t) (end - in_off) : sizeof buf;
                                n = pread(in_fd, buf, want, in_off);
                                if (n > 0 && pwrite(out_fd, buf, (size_t) n, out_off) != n)
                                        return errno ? -errno : -EIO;
                                if (n > 0) {
                                        in_off += n;
                                        out_off += n;
                                }
                        }
                        if (n < 0)
                                return -errno;
                        if (n == 0)
                                return -EIO; /* the source shrank under us */
                }
                pos = end;
                if (progress)
                        *progress = (uint64_t) pos;
        }
        if (progress)
                *progress = (uint64_t) st.st_size;
        return 0;
}

int vol_copy(const char *dir_path, const char *src_vid, const char *src_suffix, const char *vid, const char *suffix) {
        _cleanup_close_ int in = -EBADF, dfd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *name = NULL, *tmp = NULL;
        int r = vol_open(dir_path, src_vid, src_suffix, O_RDONLY, &in);
        if (r < 0)
                return r;
        r = open_tmp(dir_path, vid, suffix, &dfd, &name, &tmp, &fd);
        if (r < 0)
                return r;
        r = fd_copy_sparse(in, fd, NULL, NULL);
        return commit_tmp(dfd, tmp, name, fd, r);
}

int reflink_supported(const char *dir) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;

        a = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        b = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (a < 0 || b < 0)
                return -errno;
        /* no empty source: a file system could clone that without supporting reflinks */
        if (write(a, "foo", 3) != 3)
                return -EIO;
        return ioctl(b, FICLONE, a) >= 0;
}

int storage_errno_set(QError *e, int r, const char *what, const char *dir_path, const char *vid, const char *suffix) {
        _cleanup_free_ char *path = vid ? vol_path_string(dir_path, vid, suffix) : NULL;
        char buf[64];
        const char *msg = r == -ELOOP ? "refusing to follow a symlink" : strerror_r(-r, buf, sizeof buf);
        qerror_set(e, QERR_STORAGE_POOL, "%s %s: %s", what, path ?: strempty(dir_path), msg);
        return r;
}
