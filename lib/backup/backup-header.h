/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The `backup-header` member of a Qubes backup (spec/backup.md §4.2, §6): one key=value per
 * line. The writer emits exactly what upstream's v4 writer does; the parser applies upstream
 * restore's rules (qubesadmin/backup/restore.py, BackupHeader) with its messages. */

#include <stdbool.h>
#include <stddef.h>

#define BACKUP_CHUNK_SIZE (UINT64_C(100) * 1024 * 1024)
#define BACKUP_DEFAULT_FILTER "gzip"

typedef struct BackupHeader {
        int version;               /* 0: absent */
        int encrypted, compressed; /* -1: absent */
        char *compression_filter;
        char *hmac_algorithm;
        char *crypto_algorithm;
        char *backup_id;
} BackupHeader;

void backup_header_done(BackupHeader *h);

/* The v4 header text (malloc'ed): version, encrypted, compressed, compression-filter,
 * hmac-algorithm=scrypt, backup-id, in that order. NULL on OOM. */
char *backup_header_format(bool compressed, const char *filter, const char *backup_id);

/* Parse and validate. On failure *error is the message upstream's restore gives (malloc'ed)
 * and -EINVAL is returned. A compression filter must be gzip, bzip2, xz, or an installed lzma,
 * pbzip2, pigz, zstd or zstdmt. */
int backup_header_parse(const char *data, size_t n, BackupHeader *ret, char **error);

/* Whether a program is on PATH (an installed optional filter). */
bool backup_program_installed(const char *name);
/* A backup-id / compression-filter value: [A-Za-z0-9-]*. */
bool backup_header_value_valid(const char *s);
