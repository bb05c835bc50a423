/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reading a v4 backup archive as a stream (spec/backup.md §4, §6): the outer layer with a tar
 * parser that skips zero blocks (upstream's tar -i), the header checked against its encrypted
 * twin, qubes.xml, then every chunk decrypted with the passphrase bound to its backup and name
 * (lib/backup's scrypt container), chunks of one file checked to follow each other, the inner
 * stream through the decompressor (a child process) and a tar parser, and each file's contents
 * handed to a sink. Nothing the archive says takes effect before it is verified: a sink gets
 * finish(ok) only when every chunk of its file passed its MAC and the inner stream ended
 * cleanly, and must hold back what would commit before that. */

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>

#include "backup/backup-header.h"
#include "backup/tar.h"

typedef struct FileSink FileSink;
struct FileSink {
        /* a member of the file's inner tar: 0 to take it, 1 to skip it, < 0 to stop */
        int (*begin)(FileSink *s, const TarMember *m);
        int (*data)(FileSink *s, const uint8_t *p, size_t n);
        int (*hole)(FileSink *s, uint64_t n);
        int (*end)(FileSink *s);
        /* raw: the decompressed inner stream as it is (dom0's home goes to tar -x) */
        bool raw;
        int (*raw_data)(FileSink *s, const uint8_t *p, size_t n);
        /* the file is complete and verified (ok), or it is not and whatever began is undone */
        int (*finish)(FileSink *s, bool ok);
        /* after finish: the sink is no longer used (NULL: nothing to free) */
        void (*destroy)(FileSink *s);
        char *error; /* a sink's own failure (malloc'ed) */
};

typedef struct ReaderHandlers {
        /* The header and qubes.xml are verified. < 0 stops (RESTORE_STOP: a clean stop). */
        int (*metadata)(void *userdata, const BackupHeader *h, const char *qubes_xml, size_t len);
        /* An inner file begins ("vm4/private.img"): *ret its sink, or NULL to skip it unread. */
        int (*file_begin)(void *userdata, const char *base, FileSink **ret);
        /* Bytes of the archive read so far. */
        void (*progress)(void *userdata, uint64_t bytes);
} ReaderHandlers;

#define RESTORE_STOP (-ECANCELED)
/* Set by a signal handler: the reading stops at the next buffer with "cancelled". */
extern volatile sig_atomic_t reader_cancelled;

typedef struct ReaderOptions {
        const char *passphrase;
        const char *force_filter; /* decompress with this instead of the header's filter */
        bool verify_chunks_of_skipped; /* decrypt (and so check) files nobody takes (--verify-only) */
} ReaderOptions;

/* Read the whole archive from fd. Returns 0, RESTORE_STOP, or a negative error with *error. */
int reader_run(int fd, const ReaderOptions *opts, const ReaderHandlers *h, void *userdata, char **error);
