/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tar, as much of it as Qubes backups use (spec/backup.md §4, §6).
 *
 * Writing: TarSource produces the tar stream of one file on demand (pull), with its exact length
 * known before the first byte: a regular file (POSIX ustar) or a sparse one (PAX with GNU sparse
 * format 1.0, as qubes' own tarwriter writes volumes), whose data extents come from
 * SEEK_DATA/SEEK_HOLE. Knowing the length first is what lets the backup writer put each
 * encrypted chunk straight into the outer archive without staging it.
 *
 * Reading: TarParser is a push parser (feed it bytes as they come) for what upstream's archives
 * hold: ustar and GNU headers, base-256 numbers, GNU long names, PAX records (path, size, GNU
 * sparse 0.0, 0.1 and 1.0) and old GNU sparse members ('S' with extension blocks). It hands a
 * member's real contents to its consumer, holes as hole() calls. Every bound is checked: a
 * hostile archive gets an error, never a crash or an unbounded allocation. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define TAR_BLOCK 512
#define TAR_END_SIZE (2 * TAR_BLOCK)

static inline uint64_t tar_padded(uint64_t n) {
        return (n + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

/* A POSIX ustar header of a regular file ('0'). name: at most 255 bytes (split into prefix and
 * name at a '/' when over 100). size: up to 8 GiB - 1 (larger sizes go in a PAX record; pass 0
 * here then). Returns 0 or -ENAMETOOLONG / -EFBIG. */
int tar_ustar_header(uint8_t block[TAR_BLOCK], const char *name, uint64_t size, unsigned mode, int64_t mtime,
                     char typeflag);

typedef struct TarSource TarSource;

/* The stream of a regular file read from fd (size bytes from offset 0; a file that turns out
 * shorter makes tar_source_read() fail with -ESTALE). */
int tar_source_new_file(int fd, const char *member, uint64_t size, int64_t mtime, TarSource **ret);
/* The same for bytes in memory (copied). */
int tar_source_new_buffer(const void *data, size_t n, const char *member, int64_t mtime, TarSource **ret);
/* A sparse file: PAX GNU.sparse 1.0 with the header name <dir>/GNUSparseFile.<id>/<base>, the
 * data extents of fd (at most max_extents; closer extents are merged to stay under it). fd -1:
 * a file of realsize bytes without data. */
int tar_source_new_sparse(int fd, const char *member, uint64_t realsize, int64_t mtime, unsigned id, size_t max_extents,
                          TarSource **ret);
/* Total length of the stream, end-of-archive blocks included. */
uint64_t tar_source_length(const TarSource *s);
/* Bytes of file data read so far (progress). */
uint64_t tar_source_data_read(const TarSource *s);
/* Data bytes the stream carries (for a sparse file, the extents only). */
uint64_t tar_source_data_size(const TarSource *s);
/* Up to n bytes of the stream; 0 at its end; -errno on a read error, -ESTALE when the file
 * ended early. */
ssize_t tar_source_read(TarSource *s, uint8_t *buf, size_t n);
/* The file it reads (-1: none, or bytes in memory). */
int tar_source_fd(const TarSource *s);
/* Up to n bytes of the stream from offset, without moving the position of tar_source_read():
 * several threads may each read their own part at once (the file through fd when not -1, their
 * own descriptor of the same file, else the source's). Counts in tar_source_data_read() too. */
ssize_t tar_source_pread(TarSource *s, uint8_t *buf, size_t n, uint64_t offset, int fd);
TarSource *tar_source_free(TarSource *s);

typedef struct TarMember {
        const char *name;
        char typeflag;   /* '0' for regular and sparse files */
        uint64_t size;   /* the file's real size (sparse: expanded) */
        uint64_t stored; /* bytes of its data the archive carries (without a sparse map) */
        bool sparse;
        unsigned mode;
        int64_t mtime;
} TarMember;

typedef struct TarParserCallbacks {
        /* A member starts. Return 0 to receive its contents, 1 to skip it, < 0 to stop. */
        int (*begin)(void *userdata, const TarMember *m);
        /* Contents in order: data bytes, and holes (n zero bytes) of sparse files. */
        int (*data)(void *userdata, const uint8_t *p, size_t n);
        int (*hole)(void *userdata, uint64_t n);
        /* The member's contents are complete. */
        int (*end)(void *userdata);
} TarParserCallbacks;

typedef struct TarParser TarParser;

/* ignore_zeros: like tar -i, zero blocks between members are skipped (the outer layer of a
 * backup is many archives one after the other); otherwise the first zero block ends it. */
int tar_parser_new(const TarParserCallbacks *cb, void *userdata, bool ignore_zeros, TarParser **ret);
/* Returns 0, a callback's negative value, or -EBADMSG with tar_parser_error() set. */
int tar_parser_feed(TarParser *p, const uint8_t *data, size_t n);
/* The input ended: -EBADMSG ("truncated") when inside a member. */
int tar_parser_finish(TarParser *p);
/* Whether the end-of-archive mark was seen (never with ignore_zeros). */
bool tar_parser_ended(const TarParser *p);
const char *tar_parser_error(const TarParser *p);
TarParser *tar_parser_free(TarParser *p);
