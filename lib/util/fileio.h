/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "util/macros.h"

/* Write data to path durably and atomically: a temporary file "<path>~XXXXXX" in the same
 * directory, fchmod(mode), fsync, rename over path, fsync of the directory. A crash at any
 * instant leaves either the old or the new file. Returns 0 or -errno. */
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
/* The same; on success *ret_fd is the written file's descriptor (read-write, close-on-exec): it
 * keeps reading what was written even after the path is replaced or removed. */
int write_file_atomic_keep(const char *path, const char *data, size_t len, mode_t mode, int *ret_fd);
/* Reads a whole file (NUL-terminated, length in *ret_len if non-NULL). */
int read_file(const char *path, char **ret, size_t *ret_len);
/* The same for an open file, read from its start with pread() (its offset is not moved);
 * -EFBIG past max bytes. */
int read_fd_from_start(int fd, size_t max, char **ret, size_t *ret_len);
/* mkdir -p with the given mode. */
int mkdir_p(const char *path, mode_t mode);
