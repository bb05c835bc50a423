/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writing a v4 backup archive (spec/backup.md §4) as a stream: backup_writer_run() blocks from
 * the first byte to the last, on a worker thread of the daemon (or a test's own thread).
 *
 * Per file: a tar stream (lib/backup TarSource; GNU tar for dom0's home) → the compression
 * filter (a child process) when compressing → 100 MiB chunks, each an scrypt container with its
 * own passphrase → the outer archive (one small ustar archive per chunk) → the destination (a
 * file in dom0, or a qube's qubes.Backup service through the qrexec runner). Without compression
 * the length of every chunk is known before its first byte, so the encrypted data goes straight
 * out, and into a file in dom0 a file of several chunks is encrypted by one worker per core, each
 * writing its chunks in place (O_DIRECT where the file system takes it); with compression, a
 * chunk's size is written into its header afterwards (a file destination) or the chunk is staged
 * in an unnamed temporary file (a pipe). Memory use is a few buffers of 1 or 2 MiB and the scrypt
 * KDF's scratch, whatever the size of the volumes.
 *
 * A dom0 archive is written as an unnamed file (O_TMPFILE) in its directory and given its name
 * only once complete and on disk: a failed or cancelled backup leaves no file. Cancelling stops
 * the writer within one buffer (or while it waits for a qube to tell the passphrase), kills its
 * children and their process groups. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backup/plan.h"
#include "qubes-error.h"

/* Progress, from the writer's thread: done of total bytes (the sizes of the Info table). */
typedef void (*BackupProgressFn)(void *userdata, uint64_t done, uint64_t total);

typedef struct BackupWriter {
        BackupPlan *plan;
        char *passphrase; /* NULL: asked from passphrase_vm first */
        size_t passphrase_len;
        char *passphrase_vm;
        char *backup_id;
        char **runner; /* the qrexec runner's command line (argv prefix): calls into qubes */
        /* progress */
        _Atomic uint64_t bytes_done;
        _Atomic uint64_t bytes_total;
        BackupProgressFn progress; /* told of each change (NULL: none) */
        void *progress_userdata;
        atomic_bool cancel;
        int cancel_fd; /* eventfd: wakes the writer's polls */
        /* outcome, valid once finished */
        int result; /* 0, -ECANCELED, or another negative error with error set */
        QError error;
        char *archive; /* where it went: the file in dom0, or "<qube>:<path>" */
} BackupWriter;

/* Takes plan and passphrase; passphrase NULL: backup_writer_run() asks passphrase_vm first.
 * backup_id: "%Y%m%dT%H%M%S-<pid>" of now, made here. runner: argv prefix of the qrexec runner
 * (copied). */
int backup_writer_new(BackupPlan *plan, char *passphrase, size_t passphrase_len, const char *passphrase_vm,
                      char *const *runner, BackupWriter **ret);
/* The whole backup, in the calling thread (blocking; SIGPIPE stays blocked in that thread: a
 * reader that goes away is an EPIPE). Returns and leaves in result 0, -ECANCELED or an error
 * (then error is set). */
int backup_writer_run(BackupWriter *w);
/* Ask the writer to stop (any thread). */
void backup_writer_cancel(BackupWriter *w);
/* After backup_writer_run() has returned, or instead of it. */
BackupWriter *backup_writer_free(BackupWriter *w);

/* Ask a qube for a passphrase with its qubes.BackupPassphrase+<profile> service (blocking; gives
 * up with -ECANCELED when cancel_fd, if not -1, becomes readable). */
int backup_ask_passphrase(char *const *runner, const char *qube, const char *profile, int cancel_fd, char **ret,
                          size_t *ret_len, QError *e);
