/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writing a v4 backup archive (spec/backup.md §4) as a stream, on a thread of its own.
 *
 * Per file: a tar stream (lib/backup TarSource; GNU tar for dom0's home) → the compression
 * filter (a child process) when compressing → 100 MiB chunks, each an scrypt container with its
 * own passphrase → the outer archive (one small ustar archive per chunk) → the destination (a
 * file in dom0, or a qube's qubes.Backup service through the qrexec runner). Without compression
 * the length of every chunk is known before its first byte, so the encrypted data goes straight
 * out; with compression, a chunk's size is written into its header afterwards (a file
 * destination) or the chunk is staged in an unnamed temporary file (a pipe). Memory use is a few
 * buffers of 1 MiB and the scrypt KDF's scratch, whatever the size of the volumes.
 *
 * A dom0 archive is written as an unnamed file (O_TMPFILE) in its directory and given its name
 * only once complete and on disk: a failed or cancelled backup leaves no file. Cancelling stops
 * the writer within one buffer, kills its children and their process groups. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backup/plan.h"
#include "qubes-error.h"

typedef struct BackupWriter {
        BackupPlan *plan;
        char *passphrase;
        size_t passphrase_len;
        char *backup_id;
        char **runner; /* the qrexec runner's command line (argv prefix): calls into qubes */
        /* progress, read by the loop */
        _Atomic uint64_t bytes_done;
        _Atomic uint64_t bytes_total;
        atomic_bool cancel;
        int cancel_fd; /* eventfd: wakes the writer's polls */
        /* outcome, valid once finished */
        int result; /* 0, -ECANCELED, or another negative error with error set */
        QError error;
        char *archive; /* where it went: the file in dom0, or "<qube>:<path>" */
        /* thread */
        pthread_t thread;
        bool started;
        int done_fd; /* eventfd written once when finished */
} BackupWriter;

/* Takes plan and passphrase. backup_id: "%Y%m%dT%H%M%S-<pid>" of now, made here. runner: argv
 * prefix of the qrexec runner (copied). */
int backup_writer_new(BackupPlan *plan, char *passphrase, size_t passphrase_len, char *const *runner,
                      BackupWriter **ret);
/* Start the thread; done_fd becomes readable when it has finished. */
int backup_writer_start(BackupWriter *w);
/* Run in the calling thread (tests, benchmarks). */
int backup_writer_run(BackupWriter *w);
/* Ask the writer to stop (any thread). */
void backup_writer_cancel(BackupWriter *w);
/* Joins the thread. */
BackupWriter *backup_writer_free(BackupWriter *w);

/* Ask a qube for a passphrase with its qubes.BackupPassphrase+<profile> service (blocking). */
int backup_ask_passphrase(char *const *runner, const char *qube, const char *profile, char **ret, size_t *ret_len,
                          QError *e);
