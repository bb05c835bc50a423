/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "reader.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>

#include "backup/child.h"
#include "backup/scrypt-file.h"
#include "util/macros.h"
#include "util/strbuf.h"

#define READ_SIZE (1u << 20)
#define MAX_HEADER 65536
#define MAX_HMAC 4096               /* upstream's HMAC_MAX_SIZE */
#define MAX_QUBES_XML (64u << 20)
#define MIN(a, b) ((a) < (b) ? (a) : (b))

volatile sig_atomic_t reader_cancelled;

typedef enum Phase { PH_HEADER, PH_HMAC, PH_QUBES_XML, PH_DATA } Phase;

/* ---- the inner stream of one file ------------------------------------------------------------- */

typedef struct Inner {
        char *base;
        FileSink *sink;
        Child dec;
        bool compressed;
        TarParser *tar;
        bool taking; /* the current tar member goes to the sink */
        char **error;
} Inner;

static int ifail(char **error, const char *fmt, ...) _printf_(2, 3);
static int ifail(char **error, const char *fmt, ...) {
        va_list ap;
        if (*error)
                return -EBADMSG; /* the first cause wins */
        va_start(ap, fmt);
        if (vasprintf(error, fmt, ap) < 0)
                *error = NULL;
        va_end(ap);
        return -EBADMSG;
}

static int in_begin(void *u, const TarMember *m) {
        Inner *in = u;
        /* upstream extracts the member of the file's own name (tar -x NAME); others are ignored */
        if (!streq(m->name, in->base) || m->typeflag != '0') {
                in->taking = false;
                return 1;
        }
        in->taking = true;
        int r = in->sink->begin ? in->sink->begin(in->sink, m) : 1;
        if (r < 0)
                return r;
        in->taking = r == 0;
        return r;
}

static int in_data(void *u, const uint8_t *p, size_t n) {
        Inner *in = u;
        return in->taking && in->sink->data ? in->sink->data(in->sink, p, n) : 0;
}

static int in_hole(void *u, uint64_t n) {
        Inner *in = u;
        return in->taking && in->sink->hole ? in->sink->hole(in->sink, n) : 0;
}

static int in_end(void *u) {
        Inner *in = u;
        int r = in->taking && in->sink->end ? in->sink->end(in->sink) : 0;
        in->taking = false;
        return r;
}

static const TarParserCallbacks inner_cb = { in_begin, in_data, in_hole, in_end };

/* Decompressed (or plain) bytes of the inner stream. */
static int inner_out(Inner *in, const uint8_t *p, size_t n) {
        if (in->sink->raw)
                return in->sink->raw_data ? in->sink->raw_data(in->sink, p, n) : 0;
        int r = tar_parser_feed(in->tar, p, n);
        if (r == -EBADMSG)
                return ifail(in->error, "%s: %s", in->base, tar_parser_error(in->tar));
        return r;
}

static int inner_drain(Inner *in, bool block) {
        static uint8_t buf[65536];
        for (;;) {
                ssize_t k = read(in->dec.out_fd, buf, sizeof buf);
                if (k > 0) {
                        int r = inner_out(in, buf, (size_t) k);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (k == 0)
                        return 1; /* EOF */
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                if (!block)
                        return 0;
                struct pollfd pf = { .fd = in->dec.out_fd, .events = POLLIN };
                (void) poll(&pf, 1, -1);
        }
}

static int inner_feed(Inner *in, const uint8_t *p, size_t n) {
        if (!in->compressed)
                return inner_out(in, p, n);
        while (n > 0) {
                struct pollfd pf[2] = { { .fd = in->dec.in_fd, .events = POLLOUT },
                                        { .fd = in->dec.out_fd, .events = POLLIN } };
                if (poll(pf, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (pf[1].revents) {
                        int r = inner_drain(in, false);
                        if (r < 0)
                                return r;
                        if (r == 1)
                                return ifail(in->error, "%s: the decompressor stopped early", in->base);
                }
                if (pf[0].revents) {
                        ssize_t k = write(in->dec.in_fd, p, n);
                        if (k < 0 && errno != EAGAIN && errno != EINTR)
                                return ifail(in->error, "%s: the decompressor failed (%s)", in->base, strerror(errno));
                        if (k > 0)
                                p += k, n -= (size_t) k;
                }
        }
        return 0;
}

static int inner_new(const char *base, const char *filter, FileSink *sink, char **error, Inner **ret) {
        Inner *in = new0(Inner, 1);
        int r;
        if (!in)
                return -ENOMEM;
        in->dec = CHILD_NULL;
        in->error = error;
        in->sink = sink;
        in->base = strdup(base);
        if (!in->base) {
                free(in);
                return -ENOMEM;
        }
        r = tar_parser_new(&inner_cb, in, false, &in->tar);
        if (r >= 0 && filter) {
                char *argv[] = { (char *) filter, (char *) "-d", NULL };
                in->compressed = true;
                r = child_spawn(argv, NULL, CHILD_PIPE, CHILD_PIPE, CHILD_NULL_FD, true, &in->dec);
                if (r < 0)
                        r = ifail(error, "cannot start the decompressor %s: %s", filter, strerror(-r));
        }
        if (r < 0) {
                tar_parser_free(in->tar);
                free(in->base);
                free(in);
                return r;
        }
        *ret = in;
        return 0;
}

/* The stream is over: the decompressor's end, the tar's end. 0 when all is well. */
static int inner_finish(Inner *in) {
        int r = 0;
        if (in->compressed) {
                child_close_stdin(&in->dec);
                r = inner_drain(in, true);
                int status = child_wait(&in->dec);
                if (r >= 0 && status != 0)
                        r = ifail(in->error, "%s: the decompressor failed (exit status %d)", in->base, status);
        }
        if (r >= 0 && !in->sink->raw && tar_parser_finish(in->tar) < 0)
                r = ifail(in->error, "%s: %s", in->base, tar_parser_error(in->tar));
        return r < 0 ? r : 0;
}

static Inner *inner_free(Inner *in) {
        if (!in)
                return NULL;
        child_kill(&in->dec);
        tar_parser_free(in->tar);
        free(in->base);
        free(in);
        return NULL;
}

/* ---- the outer layer ----------------------------------------------------------------------------- */

typedef struct Reader {
        const ReaderOptions *opts;
        const ReaderHandlers *h;
        void *userdata;
        char **error;
        Phase phase;
        BackupHeader header;
        StrBuf header_text, hmac, xml;
        FileSink xml_sink;
        /* the current member */
        char *member;
        uint64_t size, done;
        bool skip;
        uint8_t scrypt_header[SCRYPT_HEADER_SIZE];
        uint8_t mac[SCRYPT_MAC_SIZE];
        ScryptStream *dec;
        /* the current file */
        Inner *inner;
        char *base;
        unsigned chunk;
        bool base_skipped;
        uint8_t *buf;
} Reader;

static int fail(Reader *r, const char *fmt, ...) _printf_(2, 3);
static int fail(Reader *r, const char *fmt, ...) {
        va_list ap;
        if (*r->error)
                return -EBADMSG;
        va_start(ap, fmt);
        if (vasprintf(r->error, fmt, ap) < 0)
                *r->error = NULL;
        va_end(ap);
        return -EBADMSG;
}

static int xml_data(FileSink *s, const uint8_t *p, size_t n) {
        Reader *r = (Reader *) ((char *) s - offsetof(Reader, xml_sink));
        if (r->xml.len + n > MAX_QUBES_XML)
                return fail(r, "the backup's qubes.xml is larger than %u MiB", MAX_QUBES_XML >> 20);
        strbuf_append_n(&r->xml, (const char *) p, n);
        return r->xml.oom ? -ENOMEM : 0;
}

static int xml_begin(FileSink *s, const TarMember *m) {
        return 0;
}

/* The file in progress is complete: verified, so its sink may make it take effect. */
static int end_file(Reader *r, bool ok) {
        int ret = 0;
        if (r->inner) {
                if (ok)
                        ret = inner_finish(r->inner);
                FileSink *sink = r->inner->sink;
                r->inner = inner_free(r->inner);
                if (sink->finish) {
                        int k = sink->finish(sink, ok && ret >= 0);
                        if (ret >= 0 && k < 0) {
                                ret = k;
                                if (sink->error)
                                        (void) fail(r, "%s", sink->error);
                        }
                }
                if (sink->error && !*r->error)
                        (void) fail(r, "%s", sink->error);
                if (sink->destroy)
                        sink->destroy(sink);
        }
        r->base = mfree(r->base);
        r->base_skipped = false;
        return ret;
}

static char *chunk_passphrase(Reader *r, const char *name_without_enc) {
        char *p = NULL;
        if (asprintf(&p, "%s!%s!%s", r->header.backup_id, name_without_enc, r->opts->passphrase) < 0)
                return NULL;
        return p;
}

static int outer_begin(void *u, const TarMember *m) {
        Reader *r = u;
        r->member = mfree(r->member);
        r->member = strdup(m->name);
        if (!r->member)
                return -ENOMEM;
        r->size = m->size;
        r->done = 0;
        r->skip = false;
        if (m->typeflag != '0')
                return fail(r, "unexpected member in the archive: %s (not a regular file)", m->name);

        switch (r->phase) {
        case PH_HEADER:
                if (!streq(m->name, "backup-header"))
                        return fail(r, "this is not a Qubes backup (v3 or v4): it starts with %s, not backup-header",
                                    m->name);
                if (m->size > MAX_HEADER)
                        return fail(r, "backup-header is too large");
                return 0;
        case PH_HMAC:
                if (!streq(m->name, "backup-header.hmac"))
                        return fail(r, "expected backup-header.hmac after backup-header, found %s", m->name);
                if (m->size > MAX_HMAC)
                        return fail(r, "HMAC file backup-header.hmac too large");
                return 0;
        case PH_QUBES_XML:
                if (!streq(m->name, "qubes.xml.000.enc"))
                        return fail(r, "expected qubes.xml.000.enc after the header, found %s", m->name);
                break;
        case PH_DATA:
                break;
        }

        /* a chunk: <base>.NNN.enc */
        if (!endswith(m->name, ".enc"))
                return fail(r, "Invalid file extension found in archive: %s", m->name);
        _cleanup_free_ char *stem = strndup(m->name, strlen(m->name) - 4);
        if (!stem)
                return -ENOMEM;
        char *dot = strrchr(stem, '.');
        char *end = NULL;
        unsigned long num = dot ? strtoul(dot + 1, &end, 10) : 0;
        if (!dot || !end || *end || end == dot + 1 || dot + 1 + 3 > end || num > 99999)
                return fail(r, "unexpected member in the archive: %s", m->name);
        *dot = 0;
        const char *base = stem;
        if (r->phase == PH_DATA && streq(base, "qubes.xml"))
                return 1; /* further parts of qubes.xml: upstream reads only the first */
        if (!r->base || !streq(r->base, base)) {
                int k = end_file(r, true);
                if (k < 0)
                        return k;
                if (num != 0)
                        return fail(r, "Unexpected file in archive: %s, expected %s.000.enc", m->name, base);
                r->base = strdup(base);
                r->chunk = 0;
                if (!r->base)
                        return -ENOMEM;
                FileSink *sink = NULL;
                if (r->phase == PH_QUBES_XML)
                        sink = &r->xml_sink;
                else {
                        k = r->h->file_begin(r->userdata, base, &sink);
                        if (k < 0)
                                return k;
                }
                if (!sink) {
                        r->base_skipped = true;
                        if (!r->opts->verify_chunks_of_skipped)
                                return 1;
                        static FileSink verify_only = {};
                        sink = &verify_only;
                }
                const char *filter = NULL;
                if (r->header.compressed)
                        filter = r->opts->force_filter ?: r->header.compression_filter ?: BACKUP_DEFAULT_FILTER;
                k = inner_new(base, filter, sink, r->error, &r->inner);
                if (k < 0)
                        return k;
        } else {
                if (num != r->chunk + 1)
                        return fail(r, "Unexpected file in archive: %s, expected %s.%03u.enc", m->name, base,
                                    r->chunk + 1);
                r->chunk = (unsigned) num;
                if (r->base_skipped && !r->inner)
                        return 1;
        }
        if (m->size < SCRYPT_OVERHEAD)
                return fail(r, "%s is truncated (%" PRIu64 " bytes)", m->name, m->size);
        return 0;
}

static int outer_data(void *u, const uint8_t *p, size_t n) {
        Reader *r = u;
        int k;

        if (r->phase == PH_HEADER || r->phase == PH_HMAC) {
                StrBuf *b = r->phase == PH_HEADER ? &r->header_text : &r->hmac;
                strbuf_append_n(b, (const char *) p, n);
                r->done += n;
                return b->oom ? -ENOMEM : 0;
        }
        while (n > 0) {
                uint64_t data_len = r->size - SCRYPT_OVERHEAD;
                if (r->done < SCRYPT_HEADER_SIZE) {
                        size_t take = MIN(n, (size_t) (SCRYPT_HEADER_SIZE - r->done));
                        memcpy(r->scrypt_header + r->done, p, take);
                        r->done += take;
                        p += take;
                        n -= take;
                        if (r->done == SCRYPT_HEADER_SIZE) {
                                _cleanup_free_ char *stem = strndup(r->member, strlen(r->member) - 4);
                                _cleanup_free_ char *pass = stem ? chunk_passphrase(r, stem) : NULL;
                                if (!pass)
                                        return -ENOMEM;
                                ScryptDecError e = scrypt_dec_new(pass, strlen(pass), r->scrypt_header,
                                                                  scrypt_max_memory(), &r->dec);
                                explicit_bzero(pass, strlen(pass));
                                if (e == SCRYPT_DEC_BAD_PASSWORD)
                                        return fail(r,
                                                    "%s does not decrypt: it belongs to another backup, was "
                                                    "renamed, or the passphrase is wrong",
                                                    r->member);
                                if (e != SCRYPT_DEC_OK)
                                        return fail(r, "%s: %s", r->member, scrypt_dec_error_string(e));
                        }
                        continue;
                }
                if (r->done < SCRYPT_HEADER_SIZE + data_len) {
                        size_t take = (size_t) MIN((uint64_t) n, SCRYPT_HEADER_SIZE + data_len - r->done);
                        size_t chunk = MIN(take, (size_t) READ_SIZE);
                        memcpy(r->buf, p, chunk);
                        if (scrypt_dec_update(r->dec, r->buf, chunk) < 0)
                                return -EIO;
                        k = inner_feed(r->inner, r->buf, chunk);
                        if (k < 0)
                                return k;
                        r->done += chunk;
                        p += chunk;
                        n -= chunk;
                        continue;
                }
                size_t off = (size_t) (r->done - SCRYPT_HEADER_SIZE - data_len);
                size_t take = MIN(n, SCRYPT_MAC_SIZE - off);
                memcpy(r->mac + off, p, take);
                r->done += take;
                p += take;
                n -= take;
        }
        return 0;
}

static int outer_end(void *u) {
        Reader *r = u;
        int k;

        switch (r->phase) {
        case PH_HEADER:
                r->phase = PH_HMAC;
                return 0;
        case PH_HMAC: {
                _cleanup_free_ char *pass = NULL;
                uint8_t *plain = NULL;
                size_t plain_len = 0;
                if (asprintf(&pass, "backup-header!%s", r->opts->passphrase) < 0)
                        return -ENOMEM;
                ScryptDecError e = scrypt_decrypt_buffer(pass, strlen(pass), (uint8_t *) r->hmac.buf ?: (uint8_t *) "",
                                                         r->hmac.len, scrypt_max_memory(), &plain, &plain_len);
                explicit_bzero(pass, strlen(pass));
                if (e == SCRYPT_DEC_BAD_PASSWORD)
                        return fail(r, "Corrupted backup header (hmac verification failed). Is the password correct?");
                if (e != SCRYPT_DEC_OK)
                        return fail(r, "Corrupted backup header: backup-header.hmac: %s", scrypt_dec_error_string(e));
                bool same = plain_len == r->header_text.len && memcmp(plain, r->header_text.buf ?: "", plain_len) == 0;
                free(plain);
                if (!same)
                        return fail(r, "Invalid hmac on backup-header");
                _cleanup_free_ char *err = NULL;
                if (backup_header_parse(r->header_text.buf ?: "", r->header_text.len, &r->header, &err) < 0)
                        return fail(r, "%s", err ?: "invalid backup header");
                if (r->header.version != 4)
                        return fail(r, "Backup format version %d is not supported (only 4, Qubes 4.x)",
                                    r->header.version);
                r->phase = PH_QUBES_XML;
                return 0;
        }
        default:
                break;
        }
        if (!r->dec)
                return 0; /* a skipped chunk */
        ScryptDecError e = scrypt_dec_final(r->dec, r->mac);
        r->dec = scrypt_stream_free(r->dec);
        if (e != SCRYPT_DEC_OK)
                return fail(r, "%s: %s", r->member, scrypt_dec_error_string(e));
        if (r->phase == PH_QUBES_XML) {
                k = end_file(r, true);
                if (k < 0)
                        return k;
                r->phase = PH_DATA;
                return r->h->metadata(r->userdata, &r->header, r->xml.buf ?: "", r->xml.len);
        }
        return 0;
}

static const TarParserCallbacks outer_cb = { outer_begin, outer_data, NULL, outer_end };

int reader_run(int fd, const ReaderOptions *opts, const ReaderHandlers *h, void *userdata, char **error) {
        Reader r = { .opts = opts, .h = h, .userdata = userdata, .error = error };
        TarParser *outer = NULL;
        uint64_t total = 0;
        sigset_t mask;
        int k;

        *error = NULL;
        sigemptyset(&mask);
        sigaddset(&mask, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        r.xml_sink = (FileSink){ .begin = xml_begin, .data = xml_data };
        r.buf = malloc(READ_SIZE);
        _cleanup_free_ uint8_t *in = malloc(READ_SIZE);
        if (!r.buf || !in)
                return -ENOMEM;
        k = tar_parser_new(&outer_cb, &r, true, &outer);
        while (k >= 0) {
                if (reader_cancelled) {
                        k = fail(&r, "cancelled");
                        break;
                }
                ssize_t n = read(fd, in, READ_SIZE);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        k = fail(&r, "cannot read the archive: %s", strerror(errno));
                        break;
                }
                if (n == 0) {
                        k = tar_parser_finish(outer);
                        if (k < 0)
                                k = fail(&r, "the archive is truncated (%s)", tar_parser_error(outer));
                        break;
                }
                total += (uint64_t) n;
                k = tar_parser_feed(outer, in, (size_t) n);
                if (k == -EBADMSG && !*error)
                        k = fail(&r, "the archive is damaged: %s", tar_parser_error(outer));
                if (h->progress)
                        h->progress(userdata, total);
        }
        if (reader_cancelled && k < 0) {
                /* whatever stopped first, it stopped because it was asked to */
                free(*error);
                *error = NULL;
                k = fail(&r, "cancelled");
        }
        if (k >= 0 && r.phase != PH_DATA)
                k = fail(&r, r.phase == PH_HEADER ? "this is not a Qubes backup: no backup-header"
                                                  : "the archive is truncated: it ends before qubes.xml");
        if (k >= 0)
                k = end_file(&r, true);
        else
                (void) end_file(&r, false);
        tar_parser_free(outer);
        scrypt_stream_free(r.dec);
        backup_header_done(&r.header);
        strbuf_done(&r.header_text);
        strbuf_done(&r.hmac);
        strbuf_done(&r.xml);
        free(r.member);
        free(r.base);
        free(r.buf);
        if (k == RESTORE_STOP) {
                *error = mfree(*error);
                return RESTORE_STOP;
        }
        if (k < 0 && !*error)
                (void) fail(&r, "%s", strerror(-k));
        return k < 0 ? k : 0;
}
