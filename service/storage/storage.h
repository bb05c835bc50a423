/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Storage: pool drivers (file, file-reflink, linux-kernel), volumes of qubes, and the blocking
 * data operations that the daemon runs on its worker threads (data-op.c). Nothing here knows D-Bus;
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

/* Upper bound of any volume size we accept (1 EiB): far above real disks, far below overflow. */
#define STORAGE_MAX_SIZE (UINT64_C(1) << 60)
#define STORAGE_TOKEN_LEN 32

typedef struct StorageDriver StorageDriver;
typedef struct VolDirs VolDirs;

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

/* ---- drivers and pools (pool.c) ---------------------------------------------------------- */

extern const StorageDriver storage_driver_file;
extern const StorageDriver storage_driver_reflink;
extern const StorageDriver storage_driver_kernel;
/* NULL-terminated, ListDrivers order. */
extern const StorageDriver *const storage_drivers[];
const StorageDriver *storage_driver_find(const char *name);

const char *pool_config_get(const Pool *p, const char *key);
int pool_config_set(Pool *p, const char *key, const char *value);

/* admin.pool.Add: config is key, value, … (NULL-terminated, in the caller's order, name
 * included). Validates (upstream messages), sets the pool up, adds it, emits pool-add. */
int storage_pool_add(App *app, const char *driver, char *const *config, Pool **ret, QError *e);
/* admin.pool.Remove: QubesPoolNotFoundError, QubesPoolInUseError; emits pool-pre-delete, pool-delete. */
int storage_pool_remove(App *app, const char *name, QError *e);
bool storage_pool_in_use(App *app, const Pool *p);
/* admin.pool.Set.*: the Admin API string forms. */
int storage_pool_set_revisions_to_keep(App *app, Pool *p, const char *value, QError *e);
int storage_pool_set_ephemeral_volatile(App *app, Pool *p, const char *value, QError *e);
/* admin.pool.Info and UsageDetails text (key=value\n lines). */
char *storage_pool_info(App *app, const Pool *p);
char *storage_pool_usage_details(const Pool *p);
/* Filesystem figures of a dir pool; false when not known. */
bool storage_pool_size_usage(const Pool *p, uint64_t *size, uint64_t *usage);
/* admin.pool.volume.List */
int storage_pool_list_vids(App *app, const Pool *p, char ***ret);

/* ---- validation (pool.c) ----------------------------------------------------------------- */

/* Upstream validate_number: digits (optional '-' when allow_negative), at most 19 digits, no
 * spurious leading zero. name is the lower-case field name ("volume size"); messages are
 * ProtocolError "<Name> contains non ASCII digits" etc. */
int storage_validate_number(const char *s, const char *name, bool allow_negative, int64_t *ret, QError *e);
/* A size: validate_number, then at most STORAGE_MAX_SIZE (QubesValueError). */
int storage_parse_size(const char *s, const char *name, uint64_t *ret, QError *e);
bool storage_pool_name_valid(const char *name);
bool storage_revision_valid(const char *rev);
bool storage_token_valid(const char *token);
/* 32 characters of [A-Za-z0-9] from getrandom(). */
int storage_token_new(char ret[STORAGE_TOKEN_LEN + 1]);

/* ---- volumes (volume.c) ------------------------------------------------------------------ */

/* Resolve a qube's volume: QubesVolumeNotFoundError, QubesPoolNotFoundError. */
int storage_volume_get(App *app, Domain *d, const char *name, StorageVolume *ret, QError *e);
void storage_volume_done(StorageVolume *v);
int storage_volume_copy(const StorageVolume *src, StorageVolume *dst);

/* The driver's current_size and usage, read from disk now (every call); dirs as for
 * vol_stat_in() (may be NULL). */
void storage_volume_sizes(const StorageVolume *v, VolDirs *dirs, uint64_t *ret_size, uint64_t *ret_usage);
/* admin.vm.volume.Info text (data-model.md 5.4, exact order). */
char *storage_volume_info(const StorageVolume *v);
int storage_volume_list_revisions(const StorageVolume *v, char ***ret);
/* The Admin API Set/Revert/Resize on the model (the qube on the loop). Each validates the
 * string form as upstream does and saves nothing (the caller saves qubes.xml). */
int storage_volume_set_revisions_to_keep(App *app, Domain *d, const char *vol, const char *value, QError *e);
int storage_volume_set_rw(App *app, Domain *d, const char *vol, const char *value, QError *e);
int storage_volume_set_ephemeral(App *app, Domain *d, const char *vol, const char *value, QError *e);
int storage_volume_resize(App *app, Domain *d, const char *vol, const char *value, QError *e);

/* A qube with its data (admin.vm.Create, CreateDisposable): app_create_domain(), and the data
 * of every volume made before the qube is announced (domain-add); a failure leaves neither. */
int storage_create_domain(App *app, const CreateParams *params, Domain **ret, QError *e);
/* A qube and its data (admin.vm.Remove): app_remove_domain() (its checks and events), then the
 * data of every volume is deleted. d is freed when it succeeds. */
int storage_remove_domain(App *app, Domain *d, QError *e);

/* Start/stop hooks for the lifecycle code. storage_domain_volumes() takes a snapshot of every
 * volume of d (on the loop); storage_volumes_start() prepares them for a start (snapshot on
 * start: reflink/copy of the source, a fresh volatile image, the running copy of save_on_stop
 * volumes) and storage_volumes_stop() commits save_on_stop volumes (keeping revisions_to_keep
 * old revisions, the oldest pruned) and discards the rest. Both are blocking: call them from a
 * worker thread. A failed start undoes the volumes already started. */
int storage_domain_volumes(App *app, Domain *d, StorageVolume **ret, size_t *ret_n, QError *e);
int storage_volumes_start(StorageVolume *v, size_t n, QError *e);
int storage_volumes_stop(StorageVolume *v, size_t n, QError *e);
void storage_volumes_free(StorageVolume *v, size_t n);

/* ---- file helpers shared by the drivers (fsutil.c) ---------------------------------------- */

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

/* ---- data operations (data-op.c) --------------------------------------------------------- */

typedef enum StorageDataOpKind {
        STORAGE_OP_IMPORT, /* exactly size bytes from in_fd into out_fd, then import_end */
        STORAGE_OP_CLONE,  /* in_fd (committed source image) into out_fd, then import_end */
        STORAGE_OP_CLEAR,  /* nothing to copy: import_end(true) of the empty image */
        STORAGE_OP_REVERT, /* driver revert(revision) */
} StorageDataOpKind;

/* One blocking operation on a volume's data, for a worker thread: set it up on the loop, run it
 * on a worker with storage_data_op_run(), read its result on the loop. */
typedef struct StorageDataOp {
        StorageDataOpKind kind;
        StorageVolume vol;
        char *revision;
        int in_fd, out_fd;
        uint64_t size;
        _Atomic uint64_t done;
        _Atomic uint64_t *progress; /* the bytes done are counted here (default: &done) */
        atomic_bool cancel;         /* set from another thread: the operation stops with -ECANCELED */
        int result;                 /* 0 or negative errno, once run */
        QError error;
        void *userdata;
} StorageDataOp;

StorageDataOp *storage_data_op_new(StorageDataOpKind kind, const StorageVolume *v);
/* Blocking: run it in the calling thread (a worker; tests). Returns result. */
int storage_data_op_run(StorageDataOp *j);
StorageDataOp *storage_data_op_free(StorageDataOp *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(StorageDataOp *, storage_data_op_free);

static inline void storage_volume_donep(StorageVolume *v) {
        storage_volume_done(v);
}
