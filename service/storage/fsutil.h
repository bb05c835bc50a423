/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* File helpers shared by the drivers (fsutil.c): every file below a pool reached one component at
 * a time without following symlinks. Part of storage (storage.h). */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "qubes-error.h"

typedef struct VolDirs VolDirs;

/* Open the directory that holds "<vid><suffix>" below dir_path (creating the intermediate
 * directories if mkdirs), without following any symlink. *ret_name is the last component plus
 * suffix. */
int vol_parent(const char *dir_path, const char *vid, const char *suffix, bool mkdirs, int *ret_dirfd, char **ret_name);
/* Open "<vid><suffix>" (O_NOFOLLOW; a regular file only). */
int vol_open(const char *dir_path, const char *vid, const char *suffix, int flags, int *ret_fd);
int vol_stat(const char *dir_path, const char *vid, const char *suffix, struct stat *st);
/* Directories below pools kept open for a burst of reads on one thread: the Size and Usage of
 * every volume in one D-Bus reply (the files of one qube share a directory). Each vol_stat_in()
 * still reads the file now; only the way to its directory is reused, so keep a VolDirs for one
 * burst only (a directory renamed meanwhile is still read where it was). Zero-initialised;
 * vol_dirs_done() closes them. */
struct VolDirs {
        struct {
                char *dir_path, *parent; /* the pool's directory, the vid up to its last '/'; NULL: free */
                int fd;
                uint64_t used;
        } e[8];
        uint64_t clock;
};
void vol_dirs_done(VolDirs *c);
/* vol_stat() through c (NULL: nothing kept). */
int vol_stat_in(VolDirs *c, const char *dir_path, const char *vid, const char *suffix, struct stat *st);
bool vol_exists(const char *dir_path, const char *vid, const char *suffix);
int vol_unlink(const char *dir_path, const char *vid, const char *suffix);
int vol_rename(const char *dir_path, const char *vid, const char *from_suffix, const char *to_suffix);
/* A new sparse file of size bytes, via a temporary name and rename (replaces any old file). */
int vol_create_sparse(const char *dir_path, const char *vid, const char *suffix, uint64_t size);
/* Copy src to dst (a reflink when the filesystem can, else a sparse copy), via a temporary
 * name and rename. Blocking. */
int vol_copy(const char *dir_path, const char *src_vid, const char *src_suffix, const char *vid, const char *suffix);
/* FICLONE, else a sparse copy of in_fd's size (copy_file_range over the data extents).
 * progress (may be NULL) counts bytes done; cancel (may be NULL) stops it with -ECANCELED. */
int fd_copy_sparse(int in_fd, int out_fd, _Atomic uint64_t *progress, atomic_bool *cancel);
/* Whether the filesystem of dir supports reflinks (a FICLONE between two temporary files). */
int reflink_supported(const char *dir);
char *vol_path_string(const char *dir_path, const char *vid, const char *suffix);
uint64_t st_usage(const struct stat *st);
int storage_errno_set(QError *e, int r, const char *what, const char *dir_path, const char *vid, const char *suffix);
