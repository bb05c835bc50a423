/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backup/tar.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util/macros.h"
#include "util/strbuf.h"

/* ---- headers ------------------------------------------------------------------------------ */

#define MIN_SIZE(a, b) ((uint64_t) (a) < (uint64_t) (b) ? (uint64_t) (a) : (uint64_t) (b))
#define USTAR_MAX_SIZE ((UINT64_C(1) << 33) - 1) /* 11 octal digits */

static void put_octal(uint8_t *field, size_t width, uint64_t v) {
        /* width - 1 digits and a NUL, as POSIX writers do */
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%0*" PRIo64, (int) (width - 1), v);
        memcpy(field, tmp, width - 1);
        field[width - 1] = 0;
}

static void put_checksum(uint8_t block[TAR_BLOCK]) {
        unsigned sum = 0;
        memset(block + 148, ' ', 8);
        for (size_t i = 0; i < TAR_BLOCK; i++)
                sum += block[i];
        char tmp[8];
        snprintf(tmp, sizeof tmp, "%06o", sum & 0777777);
        memcpy(block + 148, tmp, 6);
        block[154] = 0;
        block[155] = ' ';
}

int tar_ustar_header(uint8_t block[TAR_BLOCK], const char *name, uint64_t size, unsigned mode, int64_t mtime,
                     char typeflag) {
        size_t len = strlen(name);

        memset(block, 0, TAR_BLOCK);
        if (len <= 100)
                memcpy(block, name, len);
        else {
                /* split at a '/' so that prefix <= 155 and name <= 100 */
                const char *split = NULL;
                for (const char *p = name + len - 1; p > name; p--)
                        if (*p == '/' && (size_t) (p - name) <= 155 && len - (size_t) (p - name) - 1 <= 100 && p[1]) {
                                split = p;
                                break;
                        }
                if (!split)
                        return -ENAMETOOLONG;
                memcpy(block + 345, name, (size_t) (split - name));
                memcpy(block, split + 1, len - (size_t) (split - name) - 1);
        }
        if (size > USTAR_MAX_SIZE)
                return -EFBIG;
        put_octal(block + 100, 8, mode & 07777);
        put_octal(block + 108, 8, 0);
        put_octal(block + 116, 8, 0);
        put_octal(block + 124, 12, size);
        put_octal(block + 136, 12, mtime > 0 ? (uint64_t) mtime : 0);
        block[156] = (uint8_t) typeflag;
        memcpy(block + 257, "ustar", 6); /* with its NUL */
        memcpy(block + 263, "00", 2);
        memcpy(block + 265, "root", 4);
        memcpy(block + 297, "root", 4);
        put_checksum(block);
        return 0;
}

/* One PAX record "<len> <key>=<value>\n", where len counts the whole record. */
static void pax_record(StrBuf *b, const char *key, const char *value) {
        size_t body = strlen(key) + strlen(value) + 3; /* ' ', '=', '\n' */
        size_t digits = 1, total;
        for (;;) {
                total = body + digits;
                size_t d = 0;
                for (size_t t = total; t; t /= 10)
                        d++;
                if (d == digits)
                        break;
                digits = d;
        }
        strbuf_printf(b, "%zu %s=%s\n", total, key, value);
}

/* ---- sources --------------------------------------------------------------------------------- */

typedef struct Extent {
        uint64_t offset, length;
        uint64_t pos; /* where its bytes start in the member's data (tar_source_pread()) */
} Extent;

typedef enum SourcePhase { PHASE_HEAD, PHASE_DATA, PHASE_PAD, PHASE_END, PHASE_DONE } SourcePhase;

struct TarSource {
        int fd;        /* not owned; -1 for a buffer source */
        uint8_t *mem;  /* buffer source */
        uint8_t *head; /* headers (and the sparse map), ready to send */
        size_t head_len, head_off;
        Extent *extents;
        size_t n_extents, ext;
        uint64_t ext_off; /* within extents[ext] */
        uint64_t data_size;
        _Atomic uint64_t data_read;
        uint64_t pad_left, end_left;
        SourcePhase phase;
};

TarSource *tar_source_free(TarSource *s) {
        if (!s)
                return NULL;
        free(s->mem);
        free(s->head);
        free(s->extents);
        free(s);
        return NULL;
}

uint64_t tar_source_length(const TarSource *s) {
        return s->head_len + tar_padded(s->data_size) + TAR_END_SIZE;
}

uint64_t tar_source_data_read(const TarSource *s) {
        return s->data_read;
}

int tar_source_fd(const TarSource *s) {
        return s->mem ? -1 : s->fd;
}

uint64_t tar_source_data_size(const TarSource *s) {
        return s->data_size;
}

static TarSource *source_alloc(uint64_t data_size) {
        TarSource *s = new0(TarSource, 1);
        if (!s)
                return NULL;
        s->fd = -1;
        s->data_size = data_size;
        s->pad_left = tar_padded(data_size) - data_size;
        s->end_left = TAR_END_SIZE;
        return s;
}

/* The header of a plain member: one ustar block, or a PAX block first when the size does not
 * fit. */
static int plain_header(TarSource *s, const char *member, uint64_t size, int64_t mtime) {
        _cleanup_strbuf_ StrBuf recs = {};
        int r;

        if (size > USTAR_MAX_SIZE) {
                char num[32];
                snprintf(num, sizeof num, "%" PRIu64, size);
                pax_record(&recs, "size", num);
        }
        if (recs.oom)
                return -ENOMEM;
        s->head_len = (recs.len ? TAR_BLOCK + tar_padded(recs.len) : 0) + TAR_BLOCK;
        s->head = calloc(1, s->head_len);
        if (!s->head)
                return -ENOMEM;
        uint8_t *p = s->head;
        if (recs.len) {
                r = tar_ustar_header(p, "././@PaxHeader", recs.len, 0644, mtime, 'x');
                if (r < 0)
                        return r;
                memcpy(p + TAR_BLOCK, recs.buf, recs.len);
                p += TAR_BLOCK + tar_padded(recs.len);
        }
        return tar_ustar_header(p, member, size > USTAR_MAX_SIZE ? 0 : size, 0644, mtime, '0');
}

int tar_source_new_file(int fd, const char *member, uint64_t size, int64_t mtime, TarSource **ret) {
        TarSource *s = source_alloc(size);
        int r;
        if (!s)
                return -ENOMEM;
        s->fd = fd;
        s->extents = new0(Extent, 1);
        if (!s->extents) {
                tar_source_free(s);
                return -ENOMEM;
        }
        s->extents[0] = (Extent){ 0, size, 0 };
        s->n_extents = size > 0;
        r = plain_header(s, member, size, mtime);
        if (r < 0) {
                tar_source_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int tar_source_new_buffer(const void *data, size_t n, const char *member, int64_t mtime, TarSource **ret) {
        TarSource *s = NULL;
        int r = tar_source_new_file(-1, member, n, mtime, &s);
        if (r < 0)
                return r;
        s->mem = malloc(n ?: 1);
        if (!s->mem) {
                tar_source_free(s);
                return -ENOMEM;
        }
        memcpy(s->mem, data, n);
        *ret = s;
        return 0;
}

/* The data extents of fd below size, extents closer than gap merged. Returns the count, or
 * -E2BIG when there would be more than max. */
static ssize_t scan_extents(int fd, uint64_t size, uint64_t gap, size_t max, Extent *out) {
        uint64_t off = 0;
        size_t n = 0;

        while (off < size) {
                off_t d = lseek(fd, (off_t) off, SEEK_DATA);
                if (d < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole up to EOF */
                        if (errno != EINVAL && errno != EOPNOTSUPP)
                                return -errno;
                        /* no hole support: the rest is data */
                        d = (off_t) off;
                }
                if ((uint64_t) d >= size)
                        break;
                off_t h = lseek(fd, d, SEEK_HOLE);
                if (h < 0 || (uint64_t) h > size || h <= d)
                        h = (off_t) size;
                if (n > 0 && (uint64_t) d - (out[n - 1].offset + out[n - 1].length) <= gap)
                        out[n - 1].length = (uint64_t) h - out[n - 1].offset;
                else {
                        if (n == max)
                                return -E2BIG;
                        out[n++] = (Extent){ (uint64_t) d, (uint64_t) (h - d), 0 };
                }
                off = (uint64_t) h;
        }
        return (ssize_t) n;
}

int tar_source_new_sparse(int fd, const char *member, uint64_t realsize, int64_t mtime, unsigned id, size_t max_extents,
                          TarSource **ret) {
        _cleanup_free_ Extent *ext = NULL;
        _cleanup_strbuf_ StrBuf map = {}, recs = {};
        _cleanup_free_ char *header_name = NULL;
        uint64_t data = 0, gap = 0;
        ssize_t n;
        int r;

        if (max_extents < 1)
                max_extents = 1;
        ext = new0(Extent, max_extents);
        if (!ext)
                return -ENOMEM;
        if (fd < 0)
                n = 0; /* no data at all: one hole */
        else {
                while ((n = scan_extents(fd, realsize, gap, max_extents, ext)) == -E2BIG)
                        gap = gap ? gap * 2 : 64 * 1024;
                if (n < 0)
                        return (int) n;
        }

        /* the map (GNU sparse 1.0): count, then offset and size per line, NUL-padded; it always
         * ends with an entry reaching the end of the file */
        bool tail = n == 0 || ext[n - 1].offset + ext[n - 1].length < realsize;
        strbuf_printf(&map, "%zu\n", (size_t) n + tail);
        for (ssize_t i = 0; i < n; i++) {
                strbuf_printf(&map, "%" PRIu64 "\n%" PRIu64 "\n", ext[i].offset, ext[i].length);
                data += ext[i].length;
        }
        if (tail)
                strbuf_printf(&map, "%" PRIu64 "\n0\n", realsize);

        const char *slash = strrchr(member, '/');
        if (slash)
                r = asprintf(&header_name, "%.*s/GNUSparseFile.%u/%s", (int) (slash - member), member, id, slash + 1);
        else
                r = asprintf(&header_name, "./GNUSparseFile.%u/%s", id, member);
        if (r < 0)
                return -ENOMEM;

        uint64_t stored = tar_padded(map.len) + data;
        char num[32];
        pax_record(&recs, "GNU.sparse.major", "1");
        pax_record(&recs, "GNU.sparse.minor", "0");
        pax_record(&recs, "GNU.sparse.name", member);
        snprintf(num, sizeof num, "%" PRIu64, realsize);
        pax_record(&recs, "GNU.sparse.realsize", num);
        if (stored > USTAR_MAX_SIZE) {
                snprintf(num, sizeof num, "%" PRIu64, stored);
                pax_record(&recs, "size", num);
        }
        if (map.oom || recs.oom)
                return -ENOMEM;

        TarSource *s = source_alloc(data);
        if (!s)
                return -ENOMEM;
        s->fd = fd;
        s->head_len = TAR_BLOCK + tar_padded(recs.len) + TAR_BLOCK + tar_padded(map.len);
        s->head = calloc(1, s->head_len);
        if (!s->head) {
                tar_source_free(s);
                return -ENOMEM;
        }
        uint8_t *p = s->head;
        r = tar_ustar_header(p, "././@PaxHeader", recs.len, 0644, mtime, 'x');
        if (r >= 0) {
                memcpy(p + TAR_BLOCK, recs.buf, recs.len);
                p += TAR_BLOCK + tar_padded(recs.len);
                r = tar_ustar_header(p, header_name, stored > USTAR_MAX_SIZE ? 0 : stored, 0644, mtime, '0');
        }
        if (r < 0) {
                tar_source_free(s);
                return r;
        }
        p += TAR_BLOCK;
        memcpy(p, map.buf, map.len);
        s->extents = TAKE_PTR(ext);
        s->n_extents = (size_t) n;
        uint64_t pos = 0;
        for (size_t i = 0; i < s->n_extents; i++) {
                s->extents[i].pos = pos;
                pos += s->extents[i].length;
        }
        *ret = s;
        return 0;
}

ssize_t tar_source_read(TarSource *s, uint8_t *buf, size_t n) {
        size_t done = 0;

        while (done < n) {
                size_t want = n - done;
                switch (s->phase) {
                case PHASE_HEAD: {
                        size_t k = MIN_SIZE(want, s->head_len - s->head_off);
                        memcpy(buf + done, s->head + s->head_off, k);
                        s->head_off += k;
                        done += k;
                        if (s->head_off == s->head_len)
                                s->phase = PHASE_DATA;
                        break;
                }
                case PHASE_DATA: {
                        if (s->ext >= s->n_extents) {
                                s->phase = PHASE_PAD;
                                break;
                        }
                        Extent *e = &s->extents[s->ext];
                        uint64_t left = e->length - s->ext_off;
                        size_t k = (size_t) (left < want ? left : want);
                        if (s->mem)
                                memcpy(buf + done, s->mem + e->offset + s->ext_off, k);
                        else {
                                ssize_t got = pread(s->fd, buf + done, k, (off_t) (e->offset + s->ext_off));
                                if (got < 0) {
                                        if (errno == EINTR)
                                                continue;
                                        return -errno;
                                }
                                if (got == 0)
                                        return -ESTALE; /* the file got shorter than announced */
                                k = (size_t) got;
                        }
                        s->ext_off += k;
                        s->data_read += k;
                        done += k;
                        if (s->ext_off == e->length) {
                                s->ext++;
                                s->ext_off = 0;
                        }
                        break;
                }
                case PHASE_PAD: {
                        size_t k = (size_t) MIN_SIZE(want, s->pad_left);
                        memset(buf + done, 0, k);
                        s->pad_left -= k;
                        done += k;
                        if (s->pad_left == 0)
                                s->phase = PHASE_END;
                        break;
                }
                case PHASE_END: {
                        size_t k = (size_t) MIN_SIZE(want, s->end_left);
                        memset(buf + done, 0, k);
                        s->end_left -= k;
                        done += k;
                        if (s->end_left == 0)
                                s->phase = PHASE_DONE;
                        break;
                }
                case PHASE_DONE:
                        return (ssize_t) done;
                }
        }
        return (ssize_t) done;
}

/* The extent holding byte pos of the data (pos < data_size). */
static const Extent *extent_at(const TarSource *s, uint64_t pos) {
        size_t lo = 0, hi = s->n_extents;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (s->extents[mid].pos <= pos)
                        lo = mid;
                else
                        hi = mid;
        }
        return &s->extents[lo];
}

ssize_t tar_source_pread(TarSource *s, uint8_t *buf, size_t n, uint64_t offset, int fd) {
        uint64_t data_start = s->head_len, pad_start = data_start + s->data_size, length = tar_source_length(s);
        size_t done = 0;

        if (fd < 0)
                fd = s->fd;
        while (done < n && offset < length) {
                size_t want = n - done, k;
                if (offset < data_start) {
                        k = (size_t) MIN_SIZE(want, data_start - offset);
                        memcpy(buf + done, s->head + offset, k);
                } else if (offset < pad_start) {
                        uint64_t pos = offset - data_start;
                        const Extent *e = extent_at(s, pos);
                        uint64_t in_ext = pos - e->pos;
                        k = (size_t) MIN_SIZE(want, e->length - in_ext);
                        if (s->mem)
                                memcpy(buf + done, s->mem + e->offset + in_ext, k);
                        else {
                                ssize_t got = pread(fd, buf + done, k, (off_t) (e->offset + in_ext));
                                if (got < 0) {
                                        if (errno == EINTR)
                                                continue;
                                        return -errno;
                                }
                                if (got == 0)
                                        return -ESTALE;
                                k = (size_t) got;
                        }
                        s->data_read += k;
                } else {
                        k = (size_t) MIN_SIZE(want, length - offset);
                        memset(buf + done, 0, k);
                }
                done += k;
                offset += k;
        }
        return (ssize_t) done;
}

/* ---- the parser ----------------------------------------------------------------------------- */

#define MAX_EXT_SIZE (1024 * 1024)    /* a PAX header or a GNU long name */
#define MAX_SPARSE_ENTRIES (1u << 20) /* 16 MiB of map */
#define MAX_MAP_TEXT (64u * 1024 * 1024)

typedef enum ParserState {
        ST_HEADER,  /* collecting a 512-byte header */
        ST_EXT,     /* the payload of 'x', 'g', 'L' or 'K' */
        ST_GNU_EXT, /* extension blocks of an old GNU sparse header */
        ST_MAP10,   /* the map at the start of a GNU sparse 1.0 member */
        ST_DATA,    /* a member's stored data */
        ST_SKIP,    /* bytes to pass over (padding, skipped members) */
        ST_END,     /* after the end-of-archive mark */
} ParserState;

struct TarParser {
        TarParserCallbacks cb;
        void *userdata;
        bool ignore_zeros, ended;
        char *error;
        ParserState st;
        uint8_t block[TAR_BLOCK];
        size_t block_fill;
        /* ST_EXT / ST_MAP10 accumulation */
        uint8_t *acc;
        size_t acc_len, acc_alloc;
        uint64_t ext_size, ext_left; /* payload size and what is left of it, padding included */
        char ext_type;
        /* what the PAX and long-name headers say about the next member */
        char *next_path, *long_name, *sparse_name;
        bool has_size, has_realsize, sparse_pax;
        uint64_t pax_size, realsize;
        int sparse_major, sparse_minor;
        Extent *map;
        size_t map_n, map_alloc;
        bool pending_offset; /* GNU sparse 0.0: an offset waits for its numbytes */
        /* the current member */
        TarMember m;
        char *name;
        bool deliver, sparse10;
        uint64_t stored_left; /* stored bytes of the member still to come */
        uint64_t pad_after;
        size_t seg;
        uint64_t seg_off, pos; /* within map[seg]; position in the real file */
        uint64_t skip_left;
};

TarParser *tar_parser_free(TarParser *p) {
        if (!p)
                return NULL;
        free(p->error);
        free(p->acc);
        free(p->next_path);
        free(p->long_name);
        free(p->sparse_name);
        free(p->map);
        free(p->name);
        free(p);
        return NULL;
}

int tar_parser_new(const TarParserCallbacks *cb, void *userdata, bool ignore_zeros, TarParser **ret) {
        TarParser *p = new0(TarParser, 1);
        if (!p)
                return -ENOMEM;
        p->cb = *cb;
        p->userdata = userdata;
        p->ignore_zeros = ignore_zeros;
        p->sparse_major = p->sparse_minor = -1;
        *ret = p;
        return 0;
}

const char *tar_parser_error(const TarParser *p) {
        return p->error ?: "malformed tar stream";
}

bool tar_parser_ended(const TarParser *p) {
        return p->ended;
}

static int bad(TarParser *p, const char *fmt, ...) _printf_(2, 3);
static int bad(TarParser *p, const char *fmt, ...) {
        va_list ap;
        free(p->error);
        va_start(ap, fmt);
        if (vasprintf(&p->error, fmt, ap) < 0)
                p->error = NULL;
        va_end(ap);
        return -EBADMSG;
}

static void reset_next(TarParser *p) {
        p->next_path = mfree(p->next_path);
        p->long_name = mfree(p->long_name);
        p->sparse_name = mfree(p->sparse_name);
        p->has_size = p->has_realsize = p->sparse_pax = p->pending_offset = false;
        p->sparse_major = p->sparse_minor = -1;
        p->map_n = 0;
}

/* A numeric field: octal (spaces and NULs around it), or base-256 when the high bit is set. */
static int parse_number(const uint8_t *f, size_t width, uint64_t *ret) {
        uint64_t v = 0;
        if (f[0] & 0x80) {
                if (f[0] & 0x40)
                        return -EINVAL; /* negative */
                v = f[0] & 0x3f;
                for (size_t i = 1; i < width; i++) {
                        if (v >> 56)
                                return -EOVERFLOW;
                        v = v << 8 | f[i];
                }
                *ret = v;
                return 0;
        }
        size_t i = 0;
        while (i < width && f[i] == ' ')
                i++;
        bool any = false;
        for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
                if (v >> 61)
                        return -EOVERFLOW;
                v = v * 8 + (uint64_t) (f[i] - '0');
                any = true;
        }
        for (; i < width; i++)
                if (f[i] != ' ' && f[i] != 0)
                        return -EINVAL;
        *ret = any ? v : 0;
        return 0;
}

static int parse_decimal(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

static bool block_is_zero(const uint8_t *b) {
        for (size_t i = 0; i < TAR_BLOCK; i++)
                if (b[i])
                        return false;
        return true;
}

static bool checksum_ok(const uint8_t *b) {
        uint64_t want;
        unsigned long usum = 0;
        long ssum = 0;
        if (parse_number(b + 148, 8, &want) < 0)
                return false;
        for (size_t i = 0; i < TAR_BLOCK; i++) {
                uint8_t c = (i >= 148 && i < 156) ? ' ' : b[i];
                usum += c;
                ssum += (signed char) c;
        }
        return want == usum || (int64_t) want == ssum;
}

static int map_add(TarParser *p, uint64_t off, uint64_t len) {
        if (p->map_n >= MAX_SPARSE_ENTRIES)
                return bad(p, "sparse map with more than %u entries", MAX_SPARSE_ENTRIES);
        if (p->map_n == p->map_alloc) {
                size_t na = p->map_alloc ? p->map_alloc * 2 : 16;
                Extent *m = realloc(p->map, na * sizeof(Extent));
                if (!m)
                        return -ENOMEM;
                p->map = m;
                p->map_alloc = na;
        }
        p->map[p->map_n++] = (Extent){ off, len };
        return 0;
}

/* The PAX records of an 'x' header. */
static int parse_pax(TarParser *p, const char *data, size_t n) {
        size_t i = 0;
        while (i < n) {
                size_t j = i;
                uint64_t len = 0;
                while (j < n && data[j] >= '0' && data[j] <= '9') {
                        len = len * 10 + (uint64_t) (data[j] - '0');
                        if (len > n)
                                return bad(p, "PAX record longer than its header");
                        j++;
                }
                if (j == i || j >= n || data[j] != ' ' || len < 5 || i + len > n || data[i + len - 1] != '\n')
                        return bad(p, "malformed PAX record");
                const char *kv = data + j + 1, *end = data + i + len - 1;
                const char *eq = memchr(kv, '=', (size_t) (end - kv));
                if (!eq)
                        return bad(p, "PAX record without '='");
                _cleanup_free_ char *key = strndup(kv, (size_t) (eq - kv));
                _cleanup_free_ char *value = strndup(eq + 1, (size_t) (end - eq - 1));
                if (!key || !value)
                        return -ENOMEM;
                if (strlen(value) != (size_t) (end - eq - 1))
                        return bad(p, "NUL in PAX record %s", key);
                uint64_t v;
                int r = 0;
                if (streq(key, "path")) {
                        free(p->next_path);
                        p->next_path = TAKE_PTR(value);
                } else if (streq(key, "size")) {
                        if (parse_decimal(value, &p->pax_size) < 0)
                                return bad(p, "bad PAX size");
                        p->has_size = true;
                } else if (streq(key, "GNU.sparse.name")) {
                        free(p->sparse_name);
                        p->sparse_name = TAKE_PTR(value);
                } else if (streq(key, "GNU.sparse.realsize") || streq(key, "GNU.sparse.size")) {
                        if (parse_decimal(value, &p->realsize) < 0)
                                return bad(p, "bad GNU.sparse size");
                        p->has_realsize = p->sparse_pax = true;
                } else if (streq(key, "GNU.sparse.major") || streq(key, "GNU.sparse.minor")) {
                        if (parse_decimal(value, &v) < 0 || v > 10)
                                return bad(p, "bad %s", key);
                        if (streq(key, "GNU.sparse.major"))
                                p->sparse_major = (int) v;
                        else
                                p->sparse_minor = (int) v;
                        p->sparse_pax = true;
                } else if (streq(key, "GNU.sparse.map")) {
                        /* 0.1: offset,size,offset,size… */
                        char *save = NULL, *tok;
                        uint64_t off = 0;
                        bool have_off = false;
                        p->map_n = 0;
                        for (tok = strtok_r(value, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                                if (parse_decimal(tok, &v) < 0)
                                        return bad(p, "bad GNU.sparse.map");
                                if (!have_off)
                                        off = v, have_off = true;
                                else {
                                        r = map_add(p, off, v);
                                        have_off = false;
                                }
                                if (r < 0)
                                        return r;
                        }
                        if (have_off)
                                return bad(p, "odd GNU.sparse.map");
                        p->sparse_pax = true;
                } else if (streq(key, "GNU.sparse.offset")) {
                        /* 0.0: offset and numbytes records in turn */
                        if (parse_decimal(value, &v) < 0 || p->pending_offset)
                                return bad(p, "bad GNU.sparse.offset");
                        r = map_add(p, v, 0);
                        p->pending_offset = true;
                        p->sparse_pax = true;
                } else if (streq(key, "GNU.sparse.numbytes")) {
                        if (parse_decimal(value, &v) < 0 || !p->pending_offset)
                                return bad(p, "bad GNU.sparse.numbytes");
                        p->map[p->map_n - 1].length = v;
                        p->pending_offset = false;
                }
                if (r < 0)
                        return r;
                i += len;
        }
        return 0;
}

/* The map's entries must go forward and stay within the file. */
static int check_map(TarParser *p, uint64_t stored) {
        uint64_t end = 0, sum = 0;
        for (size_t i = 0; i < p->map_n; i++) {
                Extent *e = &p->map[i];
                if (e->offset < end || e->length > UINT64_MAX - e->offset || e->offset + e->length > p->m.size)
                        return bad(p, "sparse map of %s out of order or beyond its size", p->name);
                end = e->offset + e->length;
                sum += e->length;
        }
        if (sum != stored)
                return bad(p, "sparse map of %s does not match its data (%" PRIu64 " of %" PRIu64 " bytes)", p->name,
                           sum, stored);
        return 0;
}

static int start_data(TarParser *p);
static int finish_member(TarParser *p);
static int announce_member(TarParser *p);

/* The payload of an extended header is complete. */
static int on_ext_done(TarParser *p) {
        p->st = ST_HEADER;
        switch (p->ext_type) {
        case 'x':
                return p->acc_len ? parse_pax(p, (const char *) p->acc, p->acc_len) : 0;
        case 'L':
                free(p->long_name);
                p->long_name = p->acc_len ? strndup((const char *) p->acc, p->acc_len) : strdup("");
                return p->long_name ? 0 : -ENOMEM;
        default:
                return 0; /* 'g' (global PAX) and 'K' (long link names) say nothing we use */
        }
}

static int acc_append(TarParser *p, const uint8_t *d, size_t n, size_t limit);
static int acc_append(TarParser *p, const uint8_t *d, size_t n, size_t limit) {
        if (p->acc_len + n > limit)
                return bad(p, "tar header data over %zu bytes", limit);
        if (p->acc_len + n > p->acc_alloc) {
                size_t na = p->acc_alloc ? p->acc_alloc : 4096;
                while (na < p->acc_len + n)
                        na *= 2;
                uint8_t *a = realloc(p->acc, na + 1);
                if (!a)
                        return -ENOMEM;
                p->acc = a;
                p->acc_alloc = na;
        }
        memcpy(p->acc + p->acc_len, d, n);
        p->acc_len += n;
        return 0;
}

/* A complete header block. */
static int on_header(TarParser *p) {
        const uint8_t *b = p->block;
        uint64_t size;
        char type;
        int r;

        if (block_is_zero(b)) {
                if (p->ignore_zeros)
                        return 0;
                p->ended = true;
                p->st = ST_END;
                return 0;
        }
        if (!checksum_ok(b))
                return bad(p, "tar header checksum mismatch");
        if (parse_number(b + 124, 12, &size) < 0)
                return bad(p, "bad size in tar header");
        type = (char) b[156];

        if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
                if (size > MAX_EXT_SIZE)
                        return bad(p, "tar extended header of %" PRIu64 " bytes", size);
                p->ext_type = type;
                p->ext_size = size;
                p->ext_left = tar_padded(size);
                p->acc_len = 0;
                if (!p->ext_left)
                        return on_ext_done(p);
                p->st = ST_EXT;
                return 0;
        }

        /* a member: its name */
        free(p->name);
        if (p->long_name)
                p->name = strdup(p->long_name);
        else if (p->next_path)
                p->name = strdup(p->next_path);
        else {
                char name[101] = {}, prefix[156] = {};
                memcpy(name, b, 100);
                if (memcmp(b + 257, "ustar", 6) == 0) /* POSIX: prefix field */
                        memcpy(prefix, b + 345, 155);
                if (prefix[0])
                        r = asprintf(&p->name, "%s/%s", prefix, name);
                else
                        r = (p->name = strdup(name)) ? 0 : -1;
                if (r < 0)
                        p->name = NULL;
        }
        if (!p->name)
                return -ENOMEM;

        uint64_t mtime = 0, mode = 0;
        (void) parse_number(b + 136, 12, &mtime);
        (void) parse_number(b + 100, 8, &mode);
        if (p->has_size)
                size = p->pax_size;
        p->m = (TarMember){ .typeflag = type == 0 || type == '7' ? '0' : type,
                            .size = size,
                            .stored = size,
                            .mode = (unsigned) mode,
                            .mtime = (int64_t) mtime };
        p->sparse10 = false;

        if (type == 'S') {
                /* old GNU sparse: 4 entries here, more in extension blocks */
                uint64_t realsize;
                p->map_n = 0;
                if (parse_number(b + 483, 12, &realsize) < 0)
                        return bad(p, "bad real size in GNU sparse header");
                for (int i = 0; i < 4; i++) {
                        uint64_t off, len;
                        if (parse_number(b + 386 + i * 24, 12, &off) < 0 ||
                            parse_number(b + 386 + i * 24 + 12, 12, &len) < 0)
                                return bad(p, "bad GNU sparse entry");
                        if (off == 0 && len == 0 && b[386 + i * 24] == 0)
                                break;
                        r = map_add(p, off, len);
                        if (r < 0)
                                return r;
                }
                p->m.typeflag = '0';
                p->m.sparse = true;
                p->m.size = realsize;
                if (b[482]) {
                        p->st = ST_GNU_EXT;
                        return 0;
                }
        } else if (p->sparse_pax && p->m.typeflag == '0') {
                p->m.sparse = true;
                if (!p->has_realsize)
                        return bad(p, "GNU sparse member without its real size");
                p->m.size = p->realsize;
                if (p->sparse_name) {
                        free(p->name);
                        p->name = strdup(p->sparse_name);
                        if (!p->name)
                                return -ENOMEM;
                }
                if (p->sparse_major == 1)
                        p->sparse10 = true;
                else if (p->pending_offset)
                        return bad(p, "GNU.sparse.offset without numbytes");
        }
        return start_data(p);
}

/* The header (and its extensions) are complete: tell the consumer. */
static int start_data(TarParser *p) {
        int r;

        p->m.name = p->name;
        if (p->m.sparse && !p->sparse10) {
                r = check_map(p, p->m.stored);
                if (r < 0)
                        return r;
        }
        p->pad_after = tar_padded(p->m.stored) - p->m.stored;
        p->stored_left = p->m.stored;
        p->seg = 0;
        p->seg_off = 0;
        p->pos = 0;
        if (p->sparse10) {
                /* the map is the start of the data: the consumer hears of the member once it is
                 * read, with stored then the data bytes alone */
                p->acc_len = 0;
                p->st = ST_MAP10;
                return 0;
        }
        return announce_member(p);
}

/* Tell the consumer of the member; then its data, or skip it. */
static int announce_member(TarParser *p) {
        int r = p->cb.begin ? p->cb.begin(p->userdata, &p->m) : 1;
        if (r < 0)
                return r;
        p->deliver = r == 0;
        if (!p->deliver) {
                p->skip_left = p->stored_left + p->pad_after;
                p->st = p->skip_left ? ST_SKIP : ST_HEADER;
                reset_next(p);
                return 0;
        }
        p->st = ST_DATA;
        if (p->stored_left == 0)
                return finish_member(p);
        return 0;
}

static int finish_member(TarParser *p) {
        int r;
        if (p->m.sparse && p->pos < p->m.size && p->cb.hole) {
                r = p->cb.hole(p->userdata, p->m.size - p->pos);
                if (r < 0)
                        return r;
                p->pos = p->m.size;
        }
        if (p->cb.end) {
                r = p->cb.end(p->userdata);
                if (r < 0)
                        return r;
        }
        reset_next(p);
        p->skip_left = p->pad_after;
        p->st = p->skip_left ? ST_SKIP : ST_HEADER;
        return 0;
}

/* Try to read the sparse 1.0 map from what has been collected; 1 when complete. */
static int parse_map10(TarParser *p) {
        uint64_t nums_needed = UINT64_MAX, count = 0, v = 0, off = 0;
        uint64_t got = 0;
        bool in_num = false;

        p->map_n = 0;
        for (size_t i = 0; i < p->acc_len; i++) {
                uint8_t c = p->acc[i];
                if (c >= '0' && c <= '9') {
                        if (v > (UINT64_MAX - 9) / 10)
                                return bad(p, "sparse map number too large");
                        v = v * 10 + (uint64_t) (c - '0');
                        in_num = true;
                } else if (c == '\n' && in_num) {
                        if (got == 0) {
                                if (v > MAX_SPARSE_ENTRIES)
                                        return bad(p, "sparse map with %" PRIu64 " entries", v);
                                count = v;
                                nums_needed = 1 + 2 * count;
                        } else if (got % 2 == 1)
                                off = v;
                        else {
                                int r = map_add(p, off, v);
                                if (r < 0)
                                        return r;
                        }
                        got++;
                        v = 0;
                        in_num = false;
                        if (got == nums_needed)
                                return 1;
                } else
                        return bad(p, "malformed sparse map");
        }
        return 0;
}

static int feed_data(TarParser *p, const uint8_t *d, size_t n, size_t *used) {
        size_t k = 0;
        int r;

        *used = 0;
        while (k < n && p->stored_left > 0) {
                size_t take = (size_t) MIN_SIZE(n - k, p->stored_left);
                if (p->m.sparse) {
                        while (p->seg < p->map_n && p->seg_off == p->map[p->seg].length) {
                                p->seg++;
                                p->seg_off = 0;
                        }
                        if (p->seg >= p->map_n)
                                return bad(p, "data of %s beyond its sparse map", p->name);
                        Extent *e = &p->map[p->seg];
                        uint64_t at = e->offset + p->seg_off;
                        if (p->pos < at) {
                                if (p->cb.hole) {
                                        r = p->cb.hole(p->userdata, at - p->pos);
                                        if (r < 0)
                                                return r;
                                }
                                p->pos = at;
                        }
                        take = (size_t) MIN_SIZE(take, e->length - p->seg_off);
                        p->seg_off += take;
                }
                if (p->cb.data) {
                        r = p->cb.data(p->userdata, d + k, take);
                        if (r < 0)
                                return r;
                }
                p->pos += take;
                p->stored_left -= take;
                k += take;
        }
        *used = k;
        if (p->stored_left == 0)
                return finish_member(p);
        return 0;
}

int tar_parser_feed(TarParser *p, const uint8_t *data, size_t n) {
        int r;

        while (n > 0) {
                size_t k;
                switch (p->st) {
                case ST_HEADER:
                case ST_GNU_EXT:
                        k = MIN_SIZE(n, TAR_BLOCK - p->block_fill);
                        memcpy(p->block + p->block_fill, data, k);
                        p->block_fill += k;
                        data += k;
                        n -= k;
                        if (p->block_fill < TAR_BLOCK)
                                break;
                        p->block_fill = 0;
                        if (p->st == ST_HEADER)
                                r = on_header(p);
                        else {
                                for (int i = 0; i < 21; i++) {
                                        uint64_t off, len;
                                        const uint8_t *f = p->block + i * 24;
                                        if (f[0] == 0)
                                                break;
                                        if (parse_number(f, 12, &off) < 0 || parse_number(f + 12, 12, &len) < 0)
                                                return bad(p, "bad GNU sparse extension entry");
                                        r = map_add(p, off, len);
                                        if (r < 0)
                                                return r;
                                }
                                r = p->block[504] ? 0 : start_data(p);
                        }
                        if (r < 0)
                                return r;
                        break;
                case ST_EXT: {
                        k = MIN_SIZE(n, p->ext_left);
                        uint64_t consumed = tar_padded(p->ext_size) - p->ext_left;
                        if (consumed < p->ext_size) {
                                size_t want = (size_t) MIN_SIZE(k, p->ext_size - consumed);
                                r = acc_append(p, data, want, MAX_EXT_SIZE);
                                if (r < 0)
                                        return r;
                        }
                        p->ext_left -= k;
                        data += k;
                        n -= k;
                        if (p->ext_left == 0) {
                                r = on_ext_done(p);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
                case ST_MAP10: {
                        /* the map is whole 512-byte blocks at the start of the data */
                        if (p->stored_left < TAR_BLOCK)
                                return bad(p, "sparse map of %s longer than its member", p->name);
                        size_t in_block = p->acc_len % TAR_BLOCK;
                        k = MIN_SIZE(n, TAR_BLOCK - in_block);
                        r = acc_append(p, data, k, MAX_MAP_TEXT);
                        if (r < 0)
                                return r;
                        data += k;
                        n -= k;
                        if (p->acc_len % TAR_BLOCK != 0)
                                break;
                        p->stored_left -= TAR_BLOCK;
                        r = parse_map10(p);
                        if (r < 0)
                                return r;
                        if (r == 1) {
                                r = check_map(p, p->stored_left);
                                if (r < 0)
                                        return r;
                                p->m.stored = p->stored_left;
                                r = announce_member(p);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
                case ST_DATA:
                        r = feed_data(p, data, n, &k);
                        if (r < 0)
                                return r;
                        data += k;
                        n -= k;
                        break;
                case ST_SKIP:
                        k = MIN_SIZE(n, p->skip_left);
                        p->skip_left -= k;
                        data += k;
                        n -= k;
                        if (p->skip_left == 0)
                                p->st = ST_HEADER;
                        break;
                case ST_END:
                        return 0;
                }
        }
        return 0;
}

int tar_parser_finish(TarParser *p) {
        if (p->st == ST_END || (p->st == ST_HEADER && p->block_fill == 0 && !p->long_name && !p->next_path))
                return 0;
        return bad(p, "the tar stream ends inside %s", p->name && p->st != ST_HEADER ? p->name : "a header");
}
