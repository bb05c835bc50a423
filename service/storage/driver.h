/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Storage: pool drivers (file, file-reflink, linux-kernel), volumes of qubes, and the blocking
 * data operations that the daemon runs on its worker threads (data-op.c). This header is the
 * contract every driver-*.c implements (StorageDriver, on a StorageVolume). Nothing here knows D-Bus;
 * like the model, every user-caused failure fills a QError with the upstream exception class
 * and message.
 *
 * Threading: functions taking an App or a Domain run on the event loop. A StorageVolume is a
 * self-contained snapshot (owned strings, no pointers into the model), so the driver operations
 * on it may run in a worker thread while the loop goes on; functions documented "blocking" copy
 * data and must run in a worker (never on the loop).
 *
 * Safety: every vid is validated (volume_vid_valid) before it is used to build a name, and every
 * file is opened with openat() one path component at a time below the pool's directory, with
 * O_NOFOLLOW: no vid, revision or kernel version can name anything outside the pool. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "model/model.h"
#include "storage/fsutil.h"

/* Upper bound of any volume size we accept (1 EiB): far above real disks, far below overflow. */
#define STORAGE_MAX_SIZE (UINT64_C(1) << 60)
#define STORAGE_TOKEN_LEN 32

typedef struct StorageDriver StorageDriver;

typedef struct StorageVolume {
        char *domain;   /* qube name */
        char *name;     /* root, private, … */
        char *pool;     /* pool name */
        char *dir_path; /* the pool's directory */
        const StorageDriver *driver;
        char *vid;    /* NULL for a kernel volume with kernel=None */
        char *source; /* vid of the source volume (snap_on_start), or NULL */
        bool rw, save_on_stop, snap_on_start;
        bool ephemeral; /* effective value (explicit, else the pool's ephemeral_volatile for volatile volumes) */
        int64_t revisions_to_keep;
        uint64_t size; /* configured size (0 when none) */
} StorageVolume;

struct StorageDriver {
        const char *name;
        const char *const *params;   /* constructor parameters, ListDrivers order */
        const char *const *required; /* parameters without a default */
        const char *const *stored;   /* config keys saved in qubes.xml, in order (besides name, driver) */
        int64_t max_revisions;       /* upper bound of revisions_to_keep; -2 = the driver has none */
        bool has_is_outdated;
        bool dir_pool; /* has dir_path, size and usage of its filesystem */

        /* Pool set-up on admin.pool.Add (create directories, check features). */
        int (*pool_setup)(const char *dir_path, bool setup_check, QError *e);
        /* Volume life. All may block briefly (file creation, unlink) unless noted. */
        int (*create)(const StorageVolume *v, QError *e);
        int (*remove)(const StorageVolume *v, QError *e);
        int (*start)(const StorageVolume *v, QError *e); /* blocking */
        int (*stop)(const StorageVolume *v, QError *e);  /* blocking */
        /* Info: path (malloc'ed, NULL for None), size, usage (bytes on disk), is_outdated. */
        char *(*path)(const StorageVolume *v);
        uint64_t (*current_size)(const StorageVolume *v);
        uint64_t (*usage)(const StorageVolume *v);
        bool (*is_outdated)(const StorageVolume *v);
        /* current_size and usage together, each file read once (NULL: the two calls); dirs as
         * for vol_stat_in() (may be NULL). */
        void (*sizes)(const StorageVolume *v, VolDirs *dirs, uint64_t *ret_size, uint64_t *ret_usage);
        /* Revision ids, oldest first (malloc'ed strv, maybe empty). */
        int (*revisions)(const StorageVolume *v, char ***ret);
        int (*revert)(const StorageVolume *v, const char *revision, QError *e); /* blocking */
        int (*resize)(const StorageVolume *v, uint64_t size, QError *e);
        /* Import: begin creates the import image of size bytes and returns it opened for
         * writing; end commits it (blocking: may copy a revision) or throws it away. */
        int (*import_begin)(const StorageVolume *v, uint64_t size, int *ret_fd, QError *e);
        int (*import_end)(const StorageVolume *v, bool success, QError *e);
        /* The committed image, opened for reading (clone source). */
        int (*export_open)(const StorageVolume *v, int *ret_fd, QError *e);
        /* The pool's volume ids (admin.pool.volume.List), or NULL to use the qubes' configs. */
        int (*list_vids)(const char *dir_path, char ***ret);
};
