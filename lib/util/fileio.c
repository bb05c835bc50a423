/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/fileio.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode) {
        return write_file_atomic_keep(path, data, len, mode, NULL);
}

int write_file_atomic_keep(const char *path, const char *data, size_t len, mode_t mode, int *ret_fd) {
        _cleanup_free_ char *tmp = NULL, *dircopy = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;

        if (asprintf(&tmp, "%s~XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;

        for (size_t off = 0; off < len;) {
                ssize_t n = write(fd, data + off, len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        unlink(tmp);
                        return r;
                }
                off += (size_t) n;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }

        dircopy = strdup(path);
        if (!dircopy)
                return -ENOMEM;
        dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The whole of fd (NUL-terminated): from where it stands with read(), or from its start with
 * pread() (positional: the descriptor's offset is left alone, for one kept and shared); more than
 * max bytes is -EFBIG. */
static int read_all(int fd, bool positional, size_t max, char **ret, size_t *ret_len) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        size_t alloc = st.st_size > 0 ? (size_t) st.st_size + 1 : 4096, len = 0;
        _cleanup_free_ char *buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= alloc) {
                        /* full at the size fstat() gave: grow only if there is more */
                        char c;
                        ssize_t k = positional ? pread(fd, &c, 1, (off_t) len) : read(fd, &c, 1);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return -errno;
                        if (k == 0)
                                break;
                        if (len >= max)
                                return -EFBIG;
                        char *n = realloc(buf, alloc * 2);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        alloc *= 2;
                        buf[len++] = c;
                        continue;
                }
                ssize_t k = positional ? pread(fd, buf + len, alloc - len - 1, (off_t) len)
                                       : read(fd, buf + len, alloc - len - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        if (len > max)
                return -EFBIG;
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int read_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return read_all(fd, false, SIZE_MAX, ret, ret_len);
}

int read_fd_from_start(int fd, size_t max, char **ret, size_t *ret_len) {
        return read_all(fd, true, max, ret, ret_len);
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}
