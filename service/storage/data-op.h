/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One blocking operation on a volume's data, for a worker thread (data-op.c). Part of storage
 * (storage.h). */

#include "storage/driver.h"

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
