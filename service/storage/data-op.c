/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The storage operations that move volume data (import, clone, clear, revert), as blocking
 * functions for a worker thread (the daemon's pool runs them: storage-dbus.c). An operation owns
 * snapshots of everything it touches (StorageVolume, file descriptors), never the model. */
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>

#include "storage/data-op.h"

#include "storage/storage.h"
#include "util/log.h"

StorageDataOp *storage_data_op_new(StorageDataOpKind kind, const StorageVolume *v) {
        StorageDataOp *j = new0(StorageDataOp, 1);
        if (!j)
                return NULL;
        j->kind = kind;
        j->in_fd = j->out_fd = -EBADF;
        j->progress = &j->done;
        if (storage_volume_copy(v, &j->vol) < 0) {
                free(j);
                return NULL;
        }
        return j;
}

StorageDataOp *storage_data_op_free(StorageDataOp *j) {
        if (!j)
                return NULL;
        storage_volume_done(&j->vol);
        free(j->revision);
        if (j->in_fd >= 0)
                close(j->in_fd);
        if (j->out_fd >= 0)
                close(j->out_fd);
        qerror_done(&j->error);
        free(j);
        return NULL;
}

static bool all_zero(const uint8_t *p, size_t n) {
        return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Wait until fd is readable, checking for cancellation every 200 ms. */
static int wait_readable(StorageDataOp *j) {
        for (;;) {
                if (j->cancel)
                        return -ECANCELED;
                struct pollfd p = { .fd = j->in_fd, .events = POLLIN };
                int r = poll(&p, 1, 200);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

/* Exactly j->size bytes from in_fd into out_fd (already of that size and sparse, so runs of
 * zeros are skipped), then the end of the data must follow. */
static int import_copy(StorageDataOp *j) {
        const size_t bufsize = 1 << 20;
        _cleanup_free_ uint8_t *buf = malloc(bufsize);
        uint64_t off = 0;
        char got[32], want[32];

        if (!buf)
                return -ENOMEM;
        while (off < j->size) {
                size_t chunk = j->size - off < bufsize ? (size_t) (j->size - off) : bufsize;
                int r = wait_readable(j);
                if (r < 0)
                        return r;
                ssize_t n = read(j->in_fd, buf, chunk);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (n == 0) {
                        snprintf(got, sizeof got, "%" PRIu64, off);
                        snprintf(want, sizeof want, "%" PRIu64, j->size);
                        return qerror_set(&j->error, QERR_QUBES_EXCEPTION,
                                          "Data import failed: not enough data (%s of %s bytes)", got, want);
                }
                if (!all_zero(buf, (size_t) n)) {
                        size_t w = 0;
                        while (w < (size_t) n) {
                                ssize_t k = pwrite(j->out_fd, buf + w, (size_t) n - w, (off_t) (off + w));
                                if (k < 0 && errno != EINTR)
                                        return -errno;
                                if (k > 0)
                                        w += (size_t) k;
                        }
                }
                off += (uint64_t) n;
                atomic_store(j->progress, off);
        }
        for (;;) {
                uint8_t extra;
                int r = wait_readable(j);
                if (r < 0)
                        return r;
                ssize_t n = read(j->in_fd, &extra, 1);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return -errno;
                if (n > 0)
                        return qerror_set(&j->error, QERR_QUBES_EXCEPTION,
                                          "Data import failed: more data than the announced size");
                break;
        }
        if (fdatasync(j->out_fd) < 0)
                return -errno;
        return 0;
}

static int op_body(StorageDataOp *j) {
        int r = 0;

        switch (j->kind) {
        case STORAGE_OP_REVERT:
                return j->vol.driver->revert(&j->vol, j->revision, &j->error);
        case STORAGE_OP_IMPORT:
                r = import_copy(j);
                break;
        case STORAGE_OP_CLONE:
                r = fd_copy_sparse(j->in_fd, j->out_fd, j->progress, &j->cancel);
                if (r >= 0 && fdatasync(j->out_fd) < 0)
                        r = -errno;
                break;
        case STORAGE_OP_CLEAR:
                break;
        }
        if (j->out_fd >= 0) {
                close(j->out_fd);
                j->out_fd = -EBADF;
        }
        if (r < 0 && !qerror_is_set(&j->error)) {
                char buf[64];
                qerror_set(&j->error, QERR_QUBES_EXCEPTION, "Data import failed: %s",
                           r == -ECANCELED ? "cancelled" : strerror_r(-r, buf, sizeof buf));
        }
        QError end = {};
        int k = j->vol.driver->import_end(&j->vol, r >= 0, &end);
        if (r >= 0 && k < 0) {
                r = k;
                qerror_move(&j->error, &end);
        }
        qerror_done(&end);
        return r;
}

int storage_data_op_run(StorageDataOp *j) {
        j->result = op_body(j);
        if (j->result < 0 && !qerror_is_set(&j->error)) {
                char buf[64];
                qerror_set(&j->error, QERR_STORAGE_POOL, "Storage operation failed: %s",
                           strerror_r(-j->result, buf, sizeof buf));
        }
        return j->result;
}
