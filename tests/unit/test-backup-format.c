/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/backup: the scrypt container (round trips, wrong passphrase, tampering, truncation, and the
 * real `scrypt` tool decrypting ours and we decrypting its), tar streams (our writer read back by
 * our parser and by GNU tar, GNU tar's own sparse formats read by our parser, hostile input),
 * and the backup header (upstream restore's rules and messages). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "backup/backup-header.h"
#include "backup/scrypt-file.h"
#include "backup/tar.h"
#include "util/fileio.h"
#include "util/strbuf.h"

static int failures;
static char tmpdir[] = "/tmp/test-backup-format.XXXXXX";

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

static const ScryptParams fast = { 10, 8, 1 };

static char *path_in_tmp(const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", tmpdir, name) < 0)
                abort();
        return p;
}

static int run(const char *cmd) {
        int s = system(cmd);
        return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

static bool have(const char *prog) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
        return run(cmd) == 0;
}

/* ---- scrypt ----------------------------------------------------------------------------------- */

static void test_scrypt_roundtrip(void) {
        static const char pass[] = "backup-id!vm1/private.img.000!secret";
        uint8_t header[SCRYPT_HEADER_SIZE], mac[SCRYPT_MAC_SIZE];
        uint8_t data[10000], orig[sizeof data];
        ScryptStream *s = NULL;

        for (size_t i = 0; i < sizeof data; i++)
                data[i] = orig[i] = (uint8_t) (i * 7 + 3);
        CHECK(scrypt_enc_new(pass, strlen(pass), &fast, header, &s) == 0);
        /* pieces of odd sizes: the stream does not care */
        CHECK(scrypt_enc_update(s, data, 1) == 0);
        CHECK(scrypt_enc_update(s, data + 1, 4095) == 0);
        CHECK(scrypt_enc_update(s, data + 4096, sizeof data - 4096) == 0);
        CHECK(scrypt_enc_final(s, mac) == 0);
        scrypt_stream_free(s);
        CHECK(memcmp(data, orig, sizeof data) != 0);
        CHECK(memcmp(header, "scrypt\0", 7) == 0 && header[7] == 10);

        ScryptParams got;
        scrypt_header_params(header, &got);
        CHECK(got.log_n == 10 && got.r == 8 && got.p == 1);

        s = NULL;
        CHECK(scrypt_dec_new(pass, strlen(pass), header, scrypt_max_memory(), &s) == SCRYPT_DEC_OK);
        uint8_t copy[sizeof data];
        memcpy(copy, data, sizeof data);
        CHECK(scrypt_dec_update(s, copy, 77) == 0);
        CHECK(scrypt_dec_update(s, copy + 77, sizeof copy - 77) == 0);
        CHECK(scrypt_dec_final(s, mac) == SCRYPT_DEC_OK);
        CHECK(memcmp(copy, orig, sizeof orig) == 0);
        scrypt_stream_free(s);

        /* wrong passphrase: the header says so before any data */
        s = NULL;
        CHECK(scrypt_dec_new("nope", 4, header, scrypt_max_memory(), &s) == SCRYPT_DEC_BAD_PASSWORD);
        CHECK(!s);

        /* one flipped bit in the data: the MAC */
        s = NULL;
        memcpy(copy, data, sizeof data);
        copy[5000] ^= 1;
        CHECK(scrypt_dec_new(pass, strlen(pass), header, scrypt_max_memory(), &s) == SCRYPT_DEC_OK);
        CHECK(scrypt_dec_update(s, copy, sizeof copy) == 0);
        CHECK(scrypt_dec_final(s, mac) == SCRYPT_DEC_BAD_MAC);
        scrypt_stream_free(s);

        /* a flipped bit in the salt: the header checksum no longer matches */
        header[20] ^= 1;
        CHECK(scrypt_dec_new(pass, strlen(pass), header, scrypt_max_memory(), &s) == SCRYPT_DEC_NOT_SCRYPT);
        header[20] ^= 1;
        /* parameters beyond what we let the KDF take */
        CHECK(scrypt_dec_new(pass, strlen(pass), header, 1024, &s) == SCRYPT_DEC_PARAMS);

        /* whole buffers; an empty plaintext is valid (the last chunk of an exact multiple) */
        uint8_t *enc = NULL, *dec = NULL;
        size_t enc_len = 0, dec_len = 1;
        CHECK(scrypt_encrypt_buffer("p", 1, &fast, "", 0, &enc, &enc_len) == 0);
        CHECK(enc_len == SCRYPT_OVERHEAD);
        CHECK(scrypt_decrypt_buffer("p", 1, enc, enc_len, scrypt_max_memory(), &dec, &dec_len) == SCRYPT_DEC_OK);
        CHECK(dec_len == 0);
        free(dec);
        /* truncated by one byte */
        CHECK(scrypt_decrypt_buffer("p", 1, enc, enc_len - 1, scrypt_max_memory(), &dec, &dec_len) ==
              SCRYPT_DEC_BAD_MAC);
        free(enc);
}

/* The real scrypt tool reads what we write and writes what we read. */
static void test_scrypt_cli(void) {
        if (!have("scrypt")) {
                fprintf(stderr, "skipping the scrypt CLI checks: no scrypt program\n");
                return;
        }
        _cleanup_free_ char *plain = path_in_tmp("plain"), *enc = path_in_tmp("ours.enc"),
                            *out = path_in_tmp("cli.out"), *enc2 = path_in_tmp("cli.enc");
        _cleanup_strbuf_ StrBuf data = {};
        for (int i = 0; i < 20000; i++)
                strbuf_printf(&data, "line %d of the plaintext\n", i);
        CHECK(write_file_atomic(plain, data.buf, data.len, 0600) == 0);

        uint8_t *e = NULL;
        size_t elen = 0;
        const char *pass = "20250101T120000-42!vm3/private.img.000!correct horse ✓";
        CHECK(scrypt_encrypt_buffer(pass, strlen(pass), &fast, data.buf, data.len, &e, &elen) == 0);
        CHECK(write_file_atomic(enc, (char *) e, elen, 0600) == 0);
        free(e);

        setenv("TEST_PASS", pass, 1);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "scrypt dec --passphrase env:TEST_PASS %s %s", enc, out);
        CHECK(run(cmd) == 0);
        _cleanup_free_ char *back = NULL;
        size_t back_len = 0;
        CHECK(read_file(out, &back, &back_len) == 0);
        CHECK(back && back_len == data.len && memcmp(back, data.buf, data.len) == 0);

        snprintf(cmd, sizeof cmd, "scrypt dec --passphrase env:TEST_WRONG %s %s 2>/dev/null", enc, out);
        setenv("TEST_WRONG", "wrong", 1);
        CHECK(run(cmd) != 0);

        snprintf(cmd, sizeof cmd, "scrypt enc --logN 10 -r 8 -p 1 --passphrase env:TEST_PASS %s %s", plain, enc2);
        CHECK(run(cmd) == 0);
        _cleanup_free_ char *cli = NULL;
        size_t cli_len = 0;
        CHECK(read_file(enc2, &cli, &cli_len) == 0);
        uint8_t *d = NULL;
        size_t dlen = 0;
        CHECK(scrypt_decrypt_buffer(pass, strlen(pass), (uint8_t *) cli, cli_len, scrypt_max_memory(), &d, &dlen) ==
              SCRYPT_DEC_OK);
        CHECK(d && dlen == data.len && memcmp(d, data.buf, dlen) == 0);
        free(d);
}

/* ---- tar ------------------------------------------------------------------------------------- */

typedef struct Collected {
        StrBuf names;
        StrBuf content; /* of the last member, holes as zeros */
        uint64_t sizes[16];
        uint64_t stored[16];
        bool sparse[16];
        int n;
        bool skip_all;
} Collected;

static int c_begin(void *u, const TarMember *m) {
        Collected *c = u;
        strbuf_printf(&c->names, "%s;", m->name);
        if (c->n < 16) {
                c->sizes[c->n] = m->size;
                c->stored[c->n] = m->stored;
                c->sparse[c->n] = m->sparse;
        }
        c->n++;
        strbuf_reset(&c->content);
        return c->skip_all ? 1 : 0;
}
static int c_data(void *u, const uint8_t *p, size_t n) {
        strbuf_append_n(&((Collected *) u)->content, (const char *) p, n);
        return 0;
}
static int c_hole(void *u, uint64_t n) {
        Collected *c = u;
        for (uint64_t i = 0; i < n; i++)
                strbuf_append_c(&c->content, 0);
        return 0;
}
static const TarParserCallbacks collect_cb = { c_begin, c_data, c_hole, NULL };

/* Parse a whole buffer in pieces of `step` bytes. */
static int parse_all(const uint8_t *buf, size_t n, size_t step, bool ignore_zeros, Collected *c) {
        TarParser *p = NULL;
        int r = tar_parser_new(&collect_cb, c, ignore_zeros, &p);
        for (size_t i = 0; r >= 0 && i < n; i += step)
                r = tar_parser_feed(p, buf + i, n - i < step ? n - i : step);
        if (r >= 0)
                r = tar_parser_finish(p);
        if (r < 0)
                fprintf(stderr, "  parser: %s\n", tar_parser_error(p));
        tar_parser_free(p);
        return r;
}

static void collected_done(Collected *c) {
        strbuf_done(&c->names);
        strbuf_done(&c->content);
}

static uint8_t *source_all(TarSource *s, size_t *len) {
        uint64_t total = tar_source_length(s);
        uint8_t *buf = malloc(total + 1);
        size_t done = 0;
        ssize_t k;
        while ((k = tar_source_read(s, buf + done, 4099)) > 0)
                done += (size_t) k;
        CHECK(k == 0);
        CHECK(done == total);
        *len = done;
        return buf;
}

/* A sparse file of 5 MiB: data at 0, 1 MiB + 10, and at the very end. */
static int make_sparse(const char *path, char *expect, size_t size) {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        memset(expect, 0, size);
        CHECK(fd >= 0 && ftruncate(fd, (off_t) size) == 0);
        static const struct {
                size_t off;
                const char *text;
        } parts[] = { { 0, "start of the volume" }, { 1048586, "in the middle" }, { 5 * 1048576 - 3, "end" } };
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                CHECK(pwrite(fd, parts[i].text, strlen(parts[i].text), (off_t) parts[i].off) ==
                      (ssize_t) strlen(parts[i].text));
                memcpy(expect + parts[i].off, parts[i].text, strlen(parts[i].text));
        }
        return fd;
}

static void test_tar_writer(void) {
        const size_t size = 5 * 1048576;
        _cleanup_free_ char *vol = path_in_tmp("private.img"), *tarball = path_in_tmp("ours.tar");
        _cleanup_free_ char *expect = malloc(size);
        int fd = make_sparse(vol, expect, size);
        TarSource *s = NULL;
        size_t len = 0;

        CHECK(tar_source_new_sparse(fd, "vm4/private.img", size, 1700000000, 1234, 64, &s) == 0);
        CHECK(tar_source_data_size(s) < size / 2);
        _cleanup_free_ uint8_t *buf = source_all(s, &len);
        CHECK(tar_source_data_read(s) == tar_source_data_size(s));
        uint64_t data_size = tar_source_data_size(s);
        tar_source_free(s);
        CHECK(len % TAR_BLOCK == 0);

        Collected c = {};
        for (size_t step = 1; step <= 65536; step *= 37) {
                collected_done(&c);
                c = (Collected){};
                CHECK(parse_all(buf, len, step, false, &c) == 0);
                CHECK(c.names.buf && streq(c.names.buf, "vm4/private.img;"));
                CHECK(c.sizes[0] == size && c.sparse[0]);
                /* stored: the data alone, without the map (restore: an all-holes volume) */
                CHECK(c.stored[0] == data_size);
                CHECK(c.content.len == size && memcmp(c.content.buf, expect, size) == 0);
        }
        collected_done(&c);

        /* a volume never written: a sparse member without data */
        {
                _cleanup_free_ char *empty = path_in_tmp("never-written.img");
                int efd = open(empty, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                CHECK(efd >= 0 && ftruncate(efd, (off_t) size) == 0);
                CHECK(tar_source_new_sparse(efd, "vm4/private.img", size, 0, 1, 64, &s) == 0);
                size_t elen = 0;
                _cleanup_free_ uint8_t *ebuf = source_all(s, &elen);
                tar_source_free(s);
                close(efd);
                c = (Collected){};
                CHECK(parse_all(ebuf, elen, 4096, false, &c) == 0);
                CHECK(c.sparse[0] && c.sizes[0] == size && c.stored[0] == 0 && c.content.len == size);
                collected_done(&c);
        }

        /* GNU tar reads it too: name, size and bytes (what upstream's restore runs) */
        if (have("tar")) {
                CHECK(write_file_atomic(tarball, (char *) buf, len, 0600) == 0);
                char cmd[1024];
                snprintf(cmd, sizeof cmd,
                         "cd %s && tar -xf ours.tar && cmp -s private.img vm4/private.img && "
                         "tar -tvvf ours.tar | grep -Eq '^[^ ]+ [^ ]+/[^ ]+ +%zu .* vm4/private.img$'",
                         tmpdir, size);
                CHECK(run(cmd) == 0);
        }

        /* a tiny extent budget merges extents but the contents stay the same */
        CHECK(tar_source_new_sparse(fd, "vm4/private.img", size, 0, 1, 1, &s) == 0);
        free(buf);
        buf = source_all(s, &len);
        tar_source_free(s);
        c = (Collected){};
        CHECK(parse_all(buf, len, 8192, false, &c) == 0);
        CHECK(c.content.len == size && memcmp(c.content.buf, expect, size) == 0);
        collected_done(&c);

        /* a file that shrinks under the writer is an error, not a short archive */
        CHECK(tar_source_new_sparse(fd, "vm4/private.img", size, 0, 1, 64, &s) == 0);
        CHECK(ftruncate(fd, 1000) == 0);
        uint8_t tmp[65536];
        ssize_t k;
        while ((k = tar_source_read(s, tmp, sizeof tmp)) > 0)
                ;
        CHECK(k == -ESTALE);
        tar_source_free(s);
        close(fd);

        /* a plain member from memory, and an empty one */
        CHECK(tar_source_new_buffer("<qubes/>\n", 9, "qubes.xml", 0, &s) == 0);
        free(buf);
        buf = source_all(s, &len);
        CHECK(len == 3 * TAR_BLOCK + TAR_END_SIZE - TAR_BLOCK);
        tar_source_free(s);
        c = (Collected){};
        CHECK(parse_all(buf, len, 100, false, &c) == 0);
        CHECK(streq(c.names.buf, "qubes.xml;") && c.content.len == 9 && !c.sparse[0]);
        collected_done(&c);
        CHECK(tar_source_new_buffer("", 0, "vm7/empty", 0, &s) == 0);
        CHECK(tar_source_length(s) == TAR_BLOCK + TAR_END_SIZE);
        tar_source_free(s);
}

/* tar_source_pread(): any piece at any offset is the sequential stream's, through the source's
 * descriptor or another one of the same file; reads past the end stop there. */
static void test_tar_pread(void) {
        const size_t size = 5 * 1048576;
        _cleanup_free_ char *vol = path_in_tmp("pread.img");
        _cleanup_free_ char *expect = malloc(size);
        int fd = make_sparse(vol, expect, size), other = open(vol, O_RDONLY | O_CLOEXEC);
        TarSource *s = NULL;
        size_t len = 0;

        for (size_t budget = 1; budget <= 64; budget *= 64) {
                CHECK(tar_source_new_sparse(fd, "vm4/private.img", size, 0, 1, budget, &s) == 0);
                _cleanup_free_ uint8_t *seq = source_all(s, &len);
                tar_source_free(s);
                CHECK(tar_source_new_sparse(fd, "vm4/private.img", size, 0, 1, budget, &s) == 0);
                _cleanup_free_ uint8_t *piece = malloc(len);
                uint64_t seed = 12345;
                for (int i = 0; i < 2000; i++) {
                        seed = seed * 6364136223846793005u + 1442695040888963407u;
                        size_t off = (size_t) (seed >> 33) % len, n = (size_t) (seed >> 13) % 70000;
                        ssize_t k = tar_source_pread(s, piece, n, off, i % 2 ? other : -1);
                        size_t want = n < len - off ? n : len - off;
                        CHECK(k == (ssize_t) want);
                        if (k != (ssize_t) want || memcmp(piece, seq + off, want) != 0) {
                                fprintf(stderr, "tar_source_pread(%zu, %zu) differs from the stream\n", off, n);
                                failures++;
                                break;
                        }
                }
                CHECK(tar_source_pread(s, piece, 10, len, -1) == 0);
                tar_source_free(s);
        }
        /* a file that shrank: -ESTALE where the data is gone */
        CHECK(tar_source_new_sparse(fd, "vm4/private.img", size, 0, 1, 64, &s) == 0);
        CHECK(ftruncate(fd, 1000) == 0);
        uint8_t tmp[4096];
        CHECK(tar_source_pread(s, tmp, sizeof tmp, tar_source_length(s) - TAR_END_SIZE - sizeof tmp, -1) == -ESTALE);
        tar_source_free(s);
        close(other);
        close(fd);
}

/* What GNU tar writes, in each of its sparse formats, comes out right. */
static void test_tar_gnu_formats(void) {
        if (!have("tar")) {
                fprintf(stderr, "skipping the GNU tar checks: no tar program\n");
                return;
        }
        const size_t size = 5 * 1048576;
        _cleanup_free_ char *dir = path_in_tmp("src"), *vol = NULL, *expect = malloc(size);
        CHECK(mkdir(dir, 0700) == 0);
        vol = path_in_tmp("src/private.img");
        close(make_sparse(vol, expect, size));
        _cleanup_free_ char *notes = path_in_tmp("src/notes.txt");
        CHECK(write_file_atomic(notes, "hello\n", 6, 0644) == 0);

        static const char *const variants[] = {
                "--format=gnu", /* old GNU sparse ('S') */
                "--format=posix --sparse-version=0.0",
                "--format=posix --sparse-version=0.1",
                "--format=posix --sparse-version=1.0",
        };
        for (size_t v = 0; v < ELEMENTSOF(variants); v++) {
                char cmd[2048];
                _cleanup_free_ char *out = path_in_tmp("gnu.tar");
                /* upstream's inner layer: -Pc --sparse with the name moved under vm4/ */
                snprintf(cmd, sizeof cmd,
                         "tar -Pc --sparse %s -C %s --xform='s:^private.img:vm4/\\0:' -f %s private.img notes.txt",
                         variants[v], dir, out);
                CHECK(run(cmd) == 0);
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                CHECK(read_file(out, &data, &len) == 0);
                Collected c = {};
                CHECK(parse_all((uint8_t *) data, len, 1000, false, &c) == 0);
                if (!c.names.buf || !streq(c.names.buf, "vm4/private.img;notes.txt;"))
                        fprintf(stderr, "  %s: members %s\n", variants[v], strempty(c.names.buf));
                CHECK(c.names.buf && streq(c.names.buf, "vm4/private.img;notes.txt;"));
                CHECK(c.sizes[0] == size && c.sparse[0]);
                CHECK(c.content.len == 6 && memcmp(c.content.buf, "hello\n", 6) == 0);
                collected_done(&c);

                /* the sparse member alone, checked byte for byte */
                c = (Collected){};
                c.skip_all = false;
                snprintf(cmd, sizeof cmd, "tar -Pc --sparse %s -C %s -f %s private.img", variants[v], dir, out);
                CHECK(run(cmd) == 0);
                free(data);
                data = NULL;
                CHECK(read_file(out, &data, &len) == 0);
                CHECK(parse_all((uint8_t *) data, len, 4096, false, &c) == 0);
                CHECK(c.content.len == size && memcmp(c.content.buf, expect, size) == 0);
                collected_done(&c);
        }
}

static void test_tar_hostile(void) {
        uint8_t block[3 * TAR_BLOCK] = {};
        Collected c = {};

        /* a header with a broken checksum */
        CHECK(tar_ustar_header(block, "x", 5, 0644, 0, '0') == 0);
        block[0] = 'y';
        CHECK(parse_all(block, sizeof block, 512, false, &c) == -EBADMSG);
        collected_done(&c);

        /* a member that says 1 MiB and stops after a block */
        c = (Collected){};
        CHECK(tar_ustar_header(block, "x", 1 << 20, 0644, 0, '0') == 0);
        CHECK(parse_all(block, 2 * TAR_BLOCK, 512, false, &c) == -EBADMSG);
        collected_done(&c);

        /* a PAX header that claims to be huge */
        c = (Collected){};
        CHECK(tar_ustar_header(block, "p", 1 << 30, 0644, 0, 'x') == 0);
        CHECK(parse_all(block, sizeof block, 512, false, &c) == -EBADMSG);
        collected_done(&c);

        /* a sparse map going backwards */
        c = (Collected){};
        const char *recs = "22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n27 GNU.sparse.realsize=100\n";
        uint8_t t[6 * TAR_BLOCK] = {};
        CHECK(tar_ustar_header(t, "h", strlen(recs), 0644, 0, 'x') == 0);
        memcpy(t + TAR_BLOCK, recs, strlen(recs));
        CHECK(tar_ustar_header(t + 2 * TAR_BLOCK, "s", TAR_BLOCK + 20, 0644, 0, '0') == 0);
        memcpy(t + 3 * TAR_BLOCK, "2\n50\n10\n10\n10\n", 14);
        CHECK(parse_all(t, sizeof t, 512, false, &c) == -EBADMSG);
        collected_done(&c);

        /* a tar -i reader skips zero blocks between archives; a plain one stops at the first */
        uint8_t two[4 * TAR_BLOCK + TAR_END_SIZE] = {};
        CHECK(tar_ustar_header(two, "a", 1, 0644, 0, '0') == 0);
        two[TAR_BLOCK] = 'A';
        CHECK(tar_ustar_header(two + 2 * TAR_BLOCK + TAR_END_SIZE, "b", 1, 0644, 0, '0') == 0);
        two[3 * TAR_BLOCK + TAR_END_SIZE] = 'B';
        c = (Collected){};
        CHECK(parse_all(two, 4 * TAR_BLOCK + TAR_END_SIZE, 512, true, &c) == 0);
        CHECK(streq(c.names.buf, "a;b;"));
        collected_done(&c);
        c = (Collected){};
        CHECK(parse_all(two, 4 * TAR_BLOCK + TAR_END_SIZE, 512, false, &c) == 0);
        CHECK(streq(c.names.buf, "a;"));
        collected_done(&c);
}

/* ---- header ------------------------------------------------------------------------------------ */

static void check_header(const char *text, const char *want_error) {
        BackupHeader h = {};
        _cleanup_free_ char *err = NULL;
        int r = backup_header_parse(text, strlen(text), &h, &err);
        if (want_error) {
                if (r >= 0 || !err || !streq(err, want_error)) {
                        fprintf(stderr, "header %s: got %d \"%s\", want \"%s\"\n", text, r, strempty(err), want_error);
                        failures++;
                }
        } else if (r < 0) {
                fprintf(stderr, "header %s: refused: %s\n", text, strempty(err));
                failures++;
        }
        backup_header_done(&h);
}

static void test_header(void) {
        _cleanup_free_ char *text = backup_header_format(false, "gzip", "20250101T120000-4242");
        CHECK(streq(text, "version=4\nencrypted=True\ncompressed=False\ncompression-filter=gzip\n"
                          "hmac-algorithm=scrypt\nbackup-id=20250101T120000-4242\n"));
        BackupHeader h = {};
        _cleanup_free_ char *err = NULL;
        CHECK(backup_header_parse(text, strlen(text), &h, &err) == 0);
        CHECK(h.version == 4 && h.encrypted == 1 && h.compressed == 0 && streq(h.compression_filter, "gzip") &&
              streq(h.backup_id, "20250101T120000-4242"));
        backup_header_done(&h);

        check_header("version=4\nencrypted=yes\ncompressed=0\nhmac-algorithm=SCRYPT\nbackup-id=x\nfoo=bar\n", NULL);
        check_header("version=4\r\nencrypted=1\r\ncompressed=TRUE\r\ncompression-filter=xz\r\nhmac-algorithm=scrypt\r\n"
                     "backup-id=abc\r\n",
                     NULL);
        check_header("version=4\nencrypted=True\ncompressed=True\nhmac-algorithm=scrypt\nbackup-id=x\n",
                     "Backup header lack 'compression_filter' info");
        check_header("version=4\nencrypted=True\ncompressed=False\nhmac-algorithm=scrypt\n",
                     "Backup header lack 'backup_id' info");
        check_header("version=5\n", "Invalid value for header: version");
        check_header("version=4\nversion=4\n", "Duplicated header line: version");
        check_header("version=4\nbackup-id=a b\n", "Invalid backup header (value)");
        check_header("ver sion=4\n", "Invalid backup header (key)");
        check_header("version==4\n", "Invalid backup header");
        check_header("version\n", "Invalid backup header");
        check_header("version=4\nbackup-id=-x\n", "Invalid value for header: backup-id");
        check_header("version=4\ncompression-filter=rot13\n",
                     "Unusual compression filter 'rot13' found. Use --compression-filter=rot13 to use it anyway.");
        check_header("version=4\nhmac-algorithm=rot13\n", "Invalid value for header: hmac-algorithm");
        check_header("encrypted=True\n", "Unsupported backup version None");
        check_header("version=4\nbackup-id=\xc3\xa9\n", "Non-ASCII characters in backup header");
}

int main(void) {
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        test_scrypt_roundtrip();
        test_scrypt_cli();
        test_tar_writer();
        test_tar_pread();
        test_tar_gnu_formats();
        test_tar_hostile();
        test_header();
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        (void) run(cmd);
        if (failures) {
                fprintf(stderr, "%d checks failed\n", failures);
                return 1;
        }
        printf("all checks passed\n");
        return 0;
}
