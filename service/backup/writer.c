/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backup/writer.h"

#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "backup/backup-header.h"
#include "backup/child.h"
#include "backup/tar.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

#define BUF_SIZE (1u << 20)
/* extents of one volume's sparse map at most (the map then takes about 400 KiB) */
#define MAX_EXTENTS 16384
/* what of a qube's qubes.Backup error output we quote */
#define MAX_STDERR 1024

/* ---- the destination ------------------------------------------------------------------------ */

typedef struct Out {
        int fd;
        bool seekable;
        uint64_t offset;
        BackupWriter *w;
        const char *what; /* for messages: the file, or "VM <name>" */
} Out;

static bool cancelled(BackupWriter *w) {
        return atomic_load(&w->cancel);
}

static void report(BackupWriter *w, uint64_t done) {
        atomic_store(&w->bytes_done, done);
        if (w->progress)
                w->progress(w->progress_userdata, done, atomic_load(&w->bytes_total));
}

/* Wait until fd is ready for events, or the backup is cancelled. */
static int wait_fd(BackupWriter *w, int fd, short events) {
        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = w->cancel_fd, .events = POLLIN } };
                if (cancelled(w))
                        return -ECANCELED;
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[1].revents || cancelled(w))
                        return -ECANCELED;
                if (p[0].revents)
                        return 0;
        }
}

static int out_write(Out *o, const void *data, size_t n) {
        const uint8_t *p = data;
        while (n > 0) {
                if (cancelled(o->w))
                        return -ECANCELED;
                ssize_t k = write(o->fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = wait_fd(o->w, o->fd, POLLOUT);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
                o->offset += (uint64_t) k;
        }
        return 0;
}

static int out_zeros(Out *o, size_t n) {
        static const uint8_t zeros[TAR_BLOCK * 2];
        while (n > 0) {
                size_t k = n < sizeof zeros ? n : sizeof zeros;
                int r = out_write(o, zeros, k);
                if (r < 0)
                        return r;
                n -= k;
        }
        return 0;
}

/* One member of the outer layer: a ustar archive of its own (header, data, padding, the two
 * end blocks), as upstream's `tar -cO --posix` per file. */
static int out_member(Out *o, const char *name, const void *data, size_t n) {
        uint8_t h[TAR_BLOCK];
        int r = tar_ustar_header(h, name, n, 0644, time(NULL), '0');
        if (r >= 0)
                r = out_write(o, h, sizeof h);
        if (r >= 0)
                r = out_write(o, data, n);
        if (r >= 0)
                r = out_zeros(o, (size_t) (tar_padded(n) - n) + TAR_END_SIZE);
        return r;
}

/* ---- chunks ---------------------------------------------------------------------------------- */

static int chunk_passphrase(BackupWriter *w, const char *base, unsigned index, StrBuf *ret) {
        strbuf_reset(ret);
        strbuf_printf(ret, "%s!%s.%03u!", w->backup_id, base, index);
        strbuf_append_n(ret, w->passphrase, w->passphrase_len);
        return ret->oom ? -ENOMEM : 0;
}

static int chunk_start(BackupWriter *w, const char *base, unsigned index, uint8_t header[SCRYPT_HEADER_SIZE],
                       ScryptStream **ret) {
        _cleanup_strbuf_ StrBuf pass = {};
        int r = chunk_passphrase(w, base, index, &pass);
        if (r < 0)
                return r;
        r = scrypt_enc_new(pass.buf, pass.len, &w->plan->kdf, header, ret);
        explicit_bzero(pass.buf, pass.len);
        return r;
}

static char *chunk_name(const char *base, unsigned index) {
        char *s = NULL;
        if (asprintf(&s, "%s.%03u.enc", base, index) < 0)
                return NULL;
        return s;
}

/* The KDF of the next chunk, derived on a thread of its own while the current chunk streams:
 * chunk names are known in advance, and scrypt takes as long as writing a good part of a chunk. */
typedef struct KeyAhead {
        BackupWriter *w;
        pthread_t thread;
        bool running;
        char *base;
        unsigned index;
        uint8_t header[SCRYPT_HEADER_SIZE];
        ScryptStream *enc;
        int result;
} KeyAhead;

static void *ahead_thread(void *userdata) {
        KeyAhead *k = userdata;
        k->result = chunk_start(k->w, k->base, k->index, k->header, &k->enc);
        return NULL;
}

static void ahead_start(KeyAhead *k, BackupWriter *w, const char *base, unsigned index) {
        if (k->running)
                return;
        free(k->base);
        k->base = strdup(base);
        k->index = index;
        k->w = w;
        k->enc = NULL;
        k->running = k->base && pthread_create(&k->thread, NULL, ahead_thread, k) == 0;
}

static void ahead_stop(KeyAhead *k) {
        if (k->running) {
                pthread_join(k->thread, NULL);
                k->running = false;
        }
        k->enc = scrypt_stream_free(k->enc);
        k->base = mfree(k->base);
}

/* The keys of a chunk: the ones derived ahead when they are for it, else derived now. */
static int chunk_keys(KeyAhead *k, BackupWriter *w, const char *base, unsigned index,
                      uint8_t header[SCRYPT_HEADER_SIZE], ScryptStream **ret) {
        if (k && k->running) {
                pthread_join(k->thread, NULL);
                k->running = false;
                if (k->result >= 0 && k->index == index && streq(k->base, base)) {
                        memcpy(header, k->header, SCRYPT_HEADER_SIZE);
                        *ret = TAKE_PTR(k->enc);
                        return 0;
                }
                k->enc = scrypt_stream_free(k->enc);
        }
        return chunk_start(w, base, index, header, ret);
}

/* Progress: what the current file read of its source, on top of the qubes already done. */
typedef struct Progress {
        BackupWriter *w;
        uint64_t base;  /* the sizes of the qubes done */
        uint64_t limit; /* base + this qube's size: what its bytes may count up to */
} Progress;

static void progress_set(Progress *p, uint64_t current) {
        uint64_t v = p->base + current;
        report(p->w, v < p->limit ? v : p->limit);
}

/* A file whose tar stream has a known length (no compression): every chunk's size is known
 * before it starts, so it goes out as it is encrypted. */
static int write_known(BackupWriter *w, Out *o, TarSource *src, const char *base, uint8_t *buf, Progress *prog,
                       uint64_t file_base) {
        _cleanup_(ahead_stop) KeyAhead ahead = {};
        uint64_t left = tar_source_length(src);

        for (unsigned index = 0;; index++) {
                _cleanup_free_ char *name = chunk_name(base, index);
                uint8_t header[SCRYPT_HEADER_SIZE], mac[SCRYPT_MAC_SIZE], th[TAR_BLOCK];
                ScryptStream *enc = NULL;
                uint64_t clen = left < BACKUP_CHUNK_SIZE ? left : BACKUP_CHUNK_SIZE;
                int r;

                if (!name)
                        return -ENOMEM;
                r = chunk_keys(&ahead, w, base, index, header, &enc);
                /* a full chunk has a next one (maybe empty): its keys meanwhile */
                if (r >= 0 && clen == BACKUP_CHUNK_SIZE)
                        ahead_start(&ahead, w, base, index + 1);
                if (r >= 0)
                        r = tar_ustar_header(th, name, clen + SCRYPT_OVERHEAD, 0644, time(NULL), '0');
                if (r >= 0)
                        r = out_write(o, th, sizeof th);
                if (r >= 0)
                        r = out_write(o, header, sizeof header);
                for (uint64_t done = 0; r >= 0 && done < clen;) {
                        size_t want = clen - done < BUF_SIZE ? (size_t) (clen - done) : BUF_SIZE;
                        ssize_t k = tar_source_read(src, buf, want);
                        if (k < 0)
                                r = (int) k;
                        else if (k == 0)
                                r = -EIO; /* cannot happen: the length was known */
                        else {
                                r = scrypt_enc_update(enc, buf, (size_t) k);
                                if (r >= 0)
                                        r = out_write(o, buf, (size_t) k);
                                done += (uint64_t) k;
                                progress_set(prog, file_base + tar_source_data_read(src));
                        }
                }
                if (r >= 0)
                        r = scrypt_enc_final(enc, mac);
                scrypt_stream_free(enc);
                if (r >= 0)
                        r = out_write(o, mac, sizeof mac);
                if (r >= 0)
                        r = out_zeros(o, (size_t) (tar_padded(clen + SCRYPT_OVERHEAD) - (clen + SCRYPT_OVERHEAD)) +
                                                 TAR_END_SIZE);
                if (r < 0)
                        return r;
                left -= clen;
                /* a stream of exactly n chunks ends with an empty one, as upstream's */
                if (clen < BACKUP_CHUNK_SIZE)
                        return 0;
        }
}

/* ---- chunks side by side: a file in dom0 without compression ---------------------------------- */

/* Where the time of a sequential writer goes (bench/bench-backup.py, perf): copying every byte
 * into the page cache (write()) cost more than the AES-CTR and the HMAC together, and the HMAC
 * of a chunk is sequential. But each 100 MiB chunk has its own keys and MAC, and without
 * compression the place of every chunk in the archive is known before the first byte: so
 * workers (one per core, at most PAR_MAX_WORKERS) each take the next chunk, read, encrypt and MAC
 * it into aligned buffers, and write it in place with O_DIRECT (no copy, and a backup does not
 * flush the page cache of the whole machine). Each worker has two buffers and a thread of its
 * own that writes one while the worker fills the other: a worker that waited for the disk itself
 * would, on a busy machine, then also wait for a core after each write. The KDFs take turns: one
 * scrypt scratch at a time bounds the memory. */
#define PAR_BUF_SIZE (1u << 20)
#define PAR_MAX_WORKERS 4
/* the bytes of one chunk in the outer archive: its ustar header, the scrypt container padded,
 * the two end blocks */
#define PAR_REGION(clen) (TAR_BLOCK + tar_padded((clen) + SCRYPT_OVERHEAD) + TAR_END_SIZE)

typedef struct ParFile {
        BackupWriter *w;
        TarSource *src;
        const char *base;
        int fd;             /* the archive, buffered */
        int direct_fd;      /* the same file opened with O_DIRECT, or -1 */
        atomic_bool direct; /* until the file system refused an O_DIRECT write */
        uint64_t start;     /* where the file's first chunk goes in the archive */
        uint64_t length;    /* of the file's tar stream */
        unsigned n_chunks;
        atomic_uint next;
        atomic_int result; /* the first error of a worker */
        pthread_mutex_t kdf_lock, progress_lock;
        Progress *prog;
        uint64_t file_base;
} ParFile;

typedef struct ParWorker {
        ParFile *f;
        pthread_t thread, io_thread;
        bool started, io_started;
        uint8_t *bufs[2]; /* PAR_BUF_SIZE each, page-aligned: one is filled while the other is written */
        unsigned cur;     /* the one to fill */
        int src_fd;       /* our own descriptor of the volume (its own read-ahead), or -1 */
        /* the write in flight, by io_thread */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        const uint8_t *io_buf;
        size_t io_n;
        uint64_t io_off;
        bool io_busy, io_quit;
        int io_result;
} ParWorker;

static int par_write(ParFile *f, const uint8_t *buf, size_t n, uint64_t off) {
        while (n > 0) {
                bool direct = f->direct_fd >= 0 && atomic_load(&f->direct);
                ssize_t k = pwrite(direct ? f->direct_fd : f->fd, buf, n, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (direct && errno == EINVAL) {
                                /* an alignment this file system does not take: the page cache then */
                                atomic_store(&f->direct, false);
                                continue;
                        }
                        return -errno;
                }
                buf += k;
                n -= (size_t) k;
                off += (uint64_t) k;
        }
        return 0;
}

static void *par_io_thread(void *userdata) {
        ParWorker *pw = userdata;

        pthread_mutex_lock(&pw->lock);
        for (;;) {
                while (!pw->io_busy && !pw->io_quit)
                        pthread_cond_wait(&pw->cond, &pw->lock);
                if (!pw->io_busy)
                        break;
                const uint8_t *buf = pw->io_buf;
                size_t n = pw->io_n;
                uint64_t off = pw->io_off;
                pthread_mutex_unlock(&pw->lock);
                int r = par_write(pw->f, buf, n, off);
                pthread_mutex_lock(&pw->lock);
                if (r < 0 && pw->io_result >= 0)
                        pw->io_result = r;
                pw->io_busy = false;
                pthread_cond_broadcast(&pw->cond);
        }
        pthread_mutex_unlock(&pw->lock);
        return NULL;
}

/* The write in flight is done: how it went (and of those before). */
static int par_io_wait(ParWorker *pw) {
        int r;
        pthread_mutex_lock(&pw->lock);
        while (pw->io_busy)
                pthread_cond_wait(&pw->cond, &pw->lock);
        r = pw->io_result;
        pthread_mutex_unlock(&pw->lock);
        return r;
}

/* The buffer just filled goes to the disk; the other one is free to fill once the write before
 * is done. */
static int par_io_submit(ParWorker *pw, size_t n, uint64_t off) {
        int r = par_io_wait(pw);
        if (r < 0)
                return r;
        if (!pw->io_started)
                return par_write(pw->f, pw->bufs[pw->cur], n, off);
        pthread_mutex_lock(&pw->lock);
        pw->io_buf = pw->bufs[pw->cur];
        pw->io_n = n;
        pw->io_off = off;
        pw->io_busy = true;
        pthread_cond_broadcast(&pw->cond);
        pthread_mutex_unlock(&pw->lock);
        pw->cur ^= 1;
        return 0;
}

static int par_chunk(ParWorker *pw, unsigned index) {
        ParFile *f = pw->f;
        uint64_t from = (uint64_t) index * BACKUP_CHUNK_SIZE;
        uint64_t clen = f->length - from < BACKUP_CHUNK_SIZE ? f->length - from : BACKUP_CHUNK_SIZE;
        uint64_t at = f->start + (uint64_t) index * PAR_REGION(BACKUP_CHUNK_SIZE), size = PAR_REGION(clen);
        uint8_t head[TAR_BLOCK + SCRYPT_HEADER_SIZE], mac[SCRYPT_MAC_SIZE];
        uint64_t data_end = sizeof head + clen, mac_end = data_end + SCRYPT_MAC_SIZE;
        _cleanup_free_ char *name = chunk_name(f->base, index);
        ScryptStream *enc = NULL;
        bool mac_done = false;
        int r;

        if (!name)
                return -ENOMEM;
        pthread_mutex_lock(&f->kdf_lock);
        r = cancelled(f->w) ? -ECANCELED : chunk_start(f->w, f->base, index, head + TAR_BLOCK, &enc);
        pthread_mutex_unlock(&f->kdf_lock);
        if (r >= 0)
                r = tar_ustar_header(head, name, clen + SCRYPT_OVERHEAD, 0644, time(NULL), '0');
        for (uint64_t pos = 0; r >= 0 && pos < size;) {
                size_t n = size - pos < PAR_BUF_SIZE ? (size_t) (size - pos) : PAR_BUF_SIZE;
                uint64_t p = pos, end = pos + n;
                uint8_t *buf = pw->bufs[pw->cur];

                if (cancelled(f->w) || atomic_load(&f->result) < 0) {
                        r = -ECANCELED;
                        break;
                }
                if (p < sizeof head) {
                        size_t k = (size_t) ((end < sizeof head ? end : sizeof head) - p);
                        memcpy(buf + (p - pos), head + p, k);
                        p += k;
                }
                if (p < end && p < data_end) {
                        size_t k = (size_t) ((end < data_end ? end : data_end) - p);
                        ssize_t got =
                                tar_source_pread(f->src, buf + (p - pos), k, from + (p - sizeof head), pw->src_fd);
                        if (got >= 0 && (size_t) got != k)
                                got = -EIO; /* cannot happen: the length was known */
                        r = got < 0 ? (int) got : scrypt_enc_update(enc, buf + (p - pos), k);
                        if (r < 0)
                                break;
                        p += k;
                        pthread_mutex_lock(&f->progress_lock);
                        progress_set(f->prog, f->file_base + tar_source_data_read(f->src));
                        pthread_mutex_unlock(&f->progress_lock);
                }
                if (p < end) {
                        if (!mac_done) {
                                r = scrypt_enc_final(enc, mac);
                                if (r < 0)
                                        break;
                                mac_done = true;
                        }
                        if (p < mac_end) {
                                size_t k = (size_t) ((end < mac_end ? end : mac_end) - p);
                                memcpy(buf + (p - pos), mac + (p - data_end), k);
                                p += k;
                        }
                        memset(buf + (p - pos), 0, (size_t) (end - p));
                }
                r = par_io_submit(pw, n, at + pos);
                pos += n;
        }
        scrypt_stream_free(enc);
        return r;
}

static void par_fail(ParFile *f, int r) {
        /* the first failure; a worker that stopped for it does not hide it */
        int expected = 0;
        atomic_compare_exchange_strong(&f->result, &expected, r);
}

static void *par_worker(void *userdata) {
        ParWorker *pw = userdata;
        ParFile *f = pw->f;

        for (;;) {
                unsigned index = atomic_fetch_add(&f->next, 1);
                if (index >= f->n_chunks || atomic_load(&f->result) < 0)
                        break;
                int r = par_chunk(pw, index);
                if (r < 0) {
                        par_fail(f, r);
                        break;
                }
        }
        /* its last write too */
        int r = par_io_wait(pw);
        if (r < 0)
                par_fail(f, r);
        return NULL;
}

static unsigned par_workers(unsigned n_chunks) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned n = cpus < 1 ? 1 : cpus > PAR_MAX_WORKERS ? PAR_MAX_WORKERS : (unsigned) cpus;
        return n < n_chunks ? n : n_chunks;
}

/* The file's chunks by several workers at once, written in place; the archive's offset moves
 * past them at the end. */
static int write_parallel(BackupWriter *w, Out *o, int direct_fd, TarSource *src, const char *base, Progress *prog,
                          uint64_t file_base) {
        uint64_t length = tar_source_length(src);
        ParFile f = {
                .w = w,
                .src = src,
                .base = base,
                .fd = o->fd,
                .direct_fd = direct_fd,
                .direct = direct_fd >= 0,
                .start = o->offset,
                .length = length,
                .n_chunks = (unsigned) (length / BACKUP_CHUNK_SIZE + 1), /* n full ones end with an empty one */
                .prog = prog,
                .file_base = file_base,
        };
        ParWorker workers[PAR_MAX_WORKERS] = {};
        unsigned n = par_workers(f.n_chunks);
        uint64_t end = f.start + (f.n_chunks - 1) * PAR_REGION(BACKUP_CHUNK_SIZE) +
                       PAR_REGION(length - (uint64_t) (f.n_chunks - 1) * BACKUP_CHUNK_SIZE);
        int r = 0;

        /* the file's space in one piece, rather than in the order two workers happen to write
         * (best effort: a file system without fallocate() gets the writes as they come) */
        (void) fallocate(o->fd, 0, (off_t) o->offset, (off_t) (end - o->offset));
        pthread_mutex_init(&f.kdf_lock, NULL);
        pthread_mutex_init(&f.progress_lock, NULL);
        for (unsigned i = 0; i < n; i++) {
                char proc[64];
                ParWorker *pw = &workers[i];
                *pw = (ParWorker){ .f = &f, .src_fd = -1 };
                pthread_mutex_init(&pw->lock, NULL);
                pthread_cond_init(&pw->cond, NULL);
                pw->bufs[0] = mmap(NULL, 2 * PAR_BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (pw->bufs[0] == MAP_FAILED) {
                        pw->bufs[0] = NULL;
                        r = -ENOMEM;
                        n = i + 1;
                        break;
                }
                pw->bufs[1] = pw->bufs[0] + PAR_BUF_SIZE;
                /* without its thread, a worker writes itself */
                pw->io_started = pthread_create(&pw->io_thread, NULL, par_io_thread, pw) == 0;
                if (tar_source_fd(src) >= 0) {
                        snprintf(proc, sizeof proc, "/proc/self/fd/%d", tar_source_fd(src));
                        pw->src_fd = open(proc, O_RDONLY | O_CLOEXEC);
                        if (pw->src_fd >= 0)
                                (void) posix_fadvise(pw->src_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
                }
        }
        /* the first worker is this thread */
        for (unsigned i = 1; r >= 0 && i < n; i++)
                workers[i].started = pthread_create(&workers[i].thread, NULL, par_worker, &workers[i]) == 0;
        if (r >= 0)
                par_worker(&workers[0]);
        for (unsigned i = 0; i < n; i++) {
                ParWorker *pw = &workers[i];
                if (pw->started)
                        pthread_join(pw->thread, NULL);
                if (pw->io_started) {
                        pthread_mutex_lock(&pw->lock);
                        pw->io_quit = true;
                        pthread_cond_broadcast(&pw->cond);
                        pthread_mutex_unlock(&pw->lock);
                        pthread_join(pw->io_thread, NULL);
                }
                pthread_mutex_destroy(&pw->lock);
                pthread_cond_destroy(&pw->cond);
                if (pw->bufs[0])
                        munmap(pw->bufs[0], 2 * PAR_BUF_SIZE);
                if (pw->src_fd >= 0)
                        close(pw->src_fd);
        }
        pthread_mutex_destroy(&f.kdf_lock);
        pthread_mutex_destroy(&f.progress_lock);
        if (r >= 0)
                r = atomic_load(&f.result);
        if (r >= 0 && cancelled(w))
                r = -ECANCELED;
        if (r < 0)
                return r;
        if (lseek(o->fd, (off_t) end, SEEK_SET) < 0)
                return -errno;
        o->offset = end;
        return 0;
}

/* Chunks of a stream whose length shows only at its end (compressed, or GNU tar's). */
typedef struct Chunker {
        BackupWriter *w;
        Out *o;
        const char *base;
        unsigned index;
        ScryptStream *enc;
        uint64_t in_chunk; /* plaintext bytes in the current chunk */
        uint64_t header_off;
        int stage_fd; /* a pipe destination: the chunk waits here until its size is known */
        uint8_t *copy_buf;
} Chunker;

static int chunker_begin(Chunker *c) {
        uint8_t header[SCRYPT_HEADER_SIZE], th[TAR_BLOCK] = {};
        int r = chunk_start(c->w, c->base, c->index, header, &c->enc);
        if (r < 0)
                return r;
        c->in_chunk = 0;
        if (c->stage_fd >= 0) {
                if (ftruncate(c->stage_fd, 0) < 0 || lseek(c->stage_fd, 0, SEEK_SET) < 0)
                        return -errno;
                Out stage = { .fd = c->stage_fd, .w = c->w };
                return out_write(&stage, header, sizeof header);
        }
        /* a file: the tar header is written again once the size is known */
        c->header_off = c->o->offset;
        r = out_write(c->o, th, sizeof th);
        if (r >= 0)
                r = out_write(c->o, header, sizeof header);
        return r;
}

static int chunker_end(Chunker *c) {
        uint8_t mac[SCRYPT_MAC_SIZE], th[TAR_BLOCK];
        uint64_t size = c->in_chunk + SCRYPT_OVERHEAD;
        _cleanup_free_ char *name = chunk_name(c->base, c->index);
        int r;

        if (!name)
                return -ENOMEM;
        r = scrypt_enc_final(c->enc, mac);
        c->enc = scrypt_stream_free(c->enc);
        if (r < 0)
                return r;
        r = tar_ustar_header(th, name, size, 0644, time(NULL), '0');
        if (r < 0)
                return r;
        if (c->stage_fd >= 0) {
                Out stage = { .fd = c->stage_fd, .w = c->w };
                r = out_write(&stage, mac, sizeof mac);
                if (r >= 0)
                        r = out_write(c->o, th, sizeof th);
                if (r >= 0 && lseek(c->stage_fd, 0, SEEK_SET) < 0)
                        r = -errno;
                for (uint64_t done = 0; r >= 0 && done < size;) {
                        ssize_t k = read(c->stage_fd, c->copy_buf, BUF_SIZE);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                r = k < 0 ? -errno : -EIO;
                                break;
                        }
                        r = out_write(c->o, c->copy_buf, (size_t) k);
                        done += (uint64_t) k;
                }
        } else {
                r = out_write(c->o, mac, sizeof mac);
                if (r >= 0 && pwrite(c->o->fd, th, sizeof th, (off_t) c->header_off) != (ssize_t) sizeof th)
                        r = -errno ?: -EIO;
        }
        if (r >= 0)
                r = out_zeros(c->o, (size_t) (tar_padded(size) - size) + TAR_END_SIZE);
        return r;
}

static int chunker_feed(Chunker *c, uint8_t *data, size_t n) {
        while (n > 0) {
                size_t k = BACKUP_CHUNK_SIZE - c->in_chunk < n ? (size_t) (BACKUP_CHUNK_SIZE - c->in_chunk) : n;
                int r = scrypt_enc_update(c->enc, data, k);
                if (r >= 0) {
                        if (c->stage_fd >= 0) {
                                Out stage = { .fd = c->stage_fd, .w = c->w };
                                r = out_write(&stage, data, k);
                        } else
                                r = out_write(c->o, data, k);
                }
                if (r < 0)
                        return r;
                c->in_chunk += k;
                data += k;
                n -= k;
                if (c->in_chunk == BACKUP_CHUNK_SIZE) {
                        r = chunker_end(c);
                        if (r < 0)
                                return r;
                        c->index++;
                        r = chunker_begin(c);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static void chunker_done(Chunker *c) {
        c->enc = scrypt_stream_free(c->enc);
}

/* Where an unknown-length chunk waits when the destination cannot seek. */
static int stage_open(BackupWriter *w) {
        int fd = open(w->plan->state_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0)
                fd = open("/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        return fd < 0 ? -errno : fd;
}

/* The program run for the compression filter: gzip is pigz where it is installed. pigz writes
 * the same format (one gzip member; `gzip -d`, which upstream's restore runs, reads it) on every
 * core, where gzip keeps one busy and the backup waits for it. Any other filter is itself. */
static const char *filter_program(const char *filter) {
        _cleanup_free_ char *path = strdup(getenv("PATH") ?: "/usr/bin:/bin");
        char *save = NULL;

        if (!streq(filter, "gzip") || !path)
                return filter;
        /* as posix_spawnp() will look it up */
        for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *full = NULL;
                if (asprintf(&full, "%s/pigz", dir) >= 0 && access(full, X_OK) == 0)
                        return "pigz";
        }
        return filter;
}

static char *filter_failed(const char *filter, int status) {
        char *s = NULL;
        if (asprintf(&s, "the compression filter %s failed (exit status %d)", filter, status) < 0)
                return NULL;
        return s;
}

/* Read a child's stdout into the chunker until EOF. */
static int drain_into(BackupWriter *w, Chunker *c, int fd, uint8_t *buf, Progress *prog, uint64_t *count) {
        for (;;) {
                ssize_t k = read(fd, buf, BUF_SIZE);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = wait_fd(w, fd, POLLIN);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return -errno;
                }
                if (k == 0)
                        return 0;
                *count += (uint64_t) k;
                if (prog)
                        progress_set(prog, *count);
                int r = chunker_feed(c, buf, (size_t) k);
                if (r < 0)
                        return r;
        }
}

/* Our tar stream through the compression filter, into chunks. */
static int pump_filter(BackupWriter *w, Chunker *c, TarSource *src, Child *filter, uint8_t *in_buf, uint8_t *out_buf,
                       Progress *prog, uint64_t file_base) {
        size_t in_len = 0, in_off = 0;
        bool src_done = false;

        for (;;) {
                struct pollfd p[3];
                int n = 0, i_in = -1, i_out;
                if (cancelled(w))
                        return -ECANCELED;
                if (!src_done && in_off == in_len) {
                        ssize_t k = tar_source_read(src, in_buf, BUF_SIZE);
                        if (k < 0)
                                return (int) k;
                        if (k == 0) {
                                src_done = true;
                                child_close_stdin(filter);
                        }
                        in_len = (size_t) (k > 0 ? k : 0);
                        in_off = 0;
                        progress_set(prog, file_base + tar_source_data_read(src));
                }
                p[n] = (struct pollfd){ .fd = filter->out_fd, .events = POLLIN };
                i_out = n++;
                if (in_off < in_len) {
                        p[n] = (struct pollfd){ .fd = filter->in_fd, .events = POLLOUT };
                        i_in = n++;
                }
                p[n++] = (struct pollfd){ .fd = w->cancel_fd, .events = POLLIN };
                if (poll(p, (nfds_t) n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[n - 1].revents)
                        return -ECANCELED;
                if (i_in >= 0 && p[i_in].revents) {
                        ssize_t k = write(filter->in_fd, in_buf + in_off, in_len - in_off);
                        if (k > 0)
                                in_off += (size_t) k;
                        else if (k < 0 && errno != EAGAIN && errno != EINTR)
                                return -EPIPE; /* the filter stopped reading: its status says why */
                }
                if (p[i_out].revents) {
                        ssize_t k = read(filter->out_fd, out_buf, BUF_SIZE);
                        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (k < 0)
                                return -errno;
                        if (k == 0)
                                return src_done && in_off == in_len ? 0 : -EPIPE;
                        int r = chunker_feed(c, out_buf, (size_t) k);
                        if (r < 0)
                                return r;
                }
        }
}

/* ---- the writer ----------------------------------------------------------------------------------- */

typedef struct Run {
        BackupWriter *w;
        Out out;
        uint8_t *buf, *buf2;
        int stage_fd;
        int direct_fd; /* the dom0 file again, with O_DIRECT (-1: none) */
        Child dest;    /* the runner writing to a qube's qubes.Backup */
        int dest_err_fd;
        /* a dom0 file */
        int dir_fd;
        char *final_name; /* in dir_fd */
        char *final_path;
        char *visible_tmp; /* when O_TMPFILE was not available */
        Child filter, tar;
} Run;

static int fail_write(Run *run, int r, QError *e) {
        if (r >= 0 || r == -ECANCELED || qerror_is_set(e))
                return r;
        if (run->w->plan->destination_vm)
                return r; /* the runner's status and stderr say more: see finish_qube() */
        return qerror_set(e, QERR_QUBES_EXCEPTION, "Failed to write the backup to %s: %s", strempty(run->final_path),
                          strerror(-r));
}

/* One file of the archive: its tar stream, maybe compressed, in chunks. */
static int write_file(Run *run, TarSource *src, const char *base, Progress *prog, uint64_t file_base, QError *e) {
        BackupWriter *w = run->w;
        Chunker c = { .w = w, .o = &run->out, .base = base, .stage_fd = -1, .copy_buf = run->buf2 };
        int r, status;

        if (!w->plan->compressed) {
                if (run->out.seekable && tar_source_length(src) >= BACKUP_CHUNK_SIZE)
                        r = write_parallel(w, &run->out, run->direct_fd, src, base, prog, file_base);
                else
                        r = write_known(w, &run->out, src, base, run->buf, prog, file_base);
                goto done;
        }
        if (!run->out.seekable) {
                if (run->stage_fd < 0) {
                        run->stage_fd = stage_open(w);
                        if (run->stage_fd < 0)
                                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot create a temporary file: %s",
                                                  strerror(-run->stage_fd));
                }
                c.stage_fd = run->stage_fd;
        }
        char *argv[] = { (char *) filter_program(w->plan->filter), NULL };
        r = child_spawn(argv, NULL, CHILD_PIPE, CHILD_PIPE, CHILD_NULL_FD, true, &run->filter);
        if (r < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot start the compression filter %s: %s",
                                  w->plan->filter, strerror(-r));
        /* 1 MiB pipes, not 64 KiB: a sixteenth of the wake-ups for us and the filter (best effort) */
        (void) fcntl(run->filter.in_fd, F_SETPIPE_SZ, BUF_SIZE);
        (void) fcntl(run->filter.out_fd, F_SETPIPE_SZ, BUF_SIZE);
        r = chunker_begin(&c);
        if (r >= 0)
                r = pump_filter(w, &c, src, &run->filter, run->buf, run->buf2 + BUF_SIZE, prog, file_base);
        if (r < 0 && r != -EPIPE) {
                child_kill(&run->filter);
                chunker_done(&c);
                goto done;
        }
        status = child_wait(&run->filter);
        if (status != 0 || r == -EPIPE) {
                chunker_done(&c);
                _cleanup_free_ char *msg = filter_failed(w->plan->filter, status);
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Backup failed: %s", strempty(msg));
        }
        r = chunker_end(&c);
        chunker_done(&c);
done:
        if (r == -ESTALE)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "%s changed while it was being backed up", base);
        return fail_write(run, r, e);
}

/* dom0's home, archived by GNU tar as upstream does (-Pc --sparse, not dereferencing). */
static int write_home(Run *run, const BackupFile *f, const char *base, Progress *prog, QError *e) {
        BackupWriter *w = run->w;
        Chunker c = { .w = w, .o = &run->out, .base = base, .stage_fd = -1, .copy_buf = run->buf2 };
        _cleanup_free_ char *dir = strdup(f->path), *name = strdup(f->path), *xform = NULL, *compress = NULL;
        uint64_t count = 0;
        int r, status;

        if (!dir || !name)
                return -ENOMEM;
        const char *parent = dirname(dir), *leaf = basename(name);
        if (asprintf(&xform, "--xform=s:^%s:dom0-home/\\0:", leaf) < 0 ||
            asprintf(&compress, "--use-compress-program=%s", filter_program(w->plan->filter)) < 0)
                return -ENOMEM;
        char *argv[] = { (char *) "tar",
                         (char *) "-Pc",
                         (char *) "--sparse",
                         (char *) "-C",
                         (char *) parent,
                         xform,
                         w->plan->compressed ? compress : (char *) leaf,
                         w->plan->compressed ? (char *) leaf : NULL,
                         NULL };
        if (!run->out.seekable) {
                if (run->stage_fd < 0) {
                        run->stage_fd = stage_open(w);
                        if (run->stage_fd < 0)
                                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot create a temporary file: %s",
                                                  strerror(-run->stage_fd));
                }
                c.stage_fd = run->stage_fd;
        }
        r = child_spawn(argv, NULL, CHILD_NULL_FD, CHILD_PIPE, CHILD_NULL_FD, true, &run->tar);
        if (r < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot start tar: %s", strerror(-r));
        r = chunker_begin(&c);
        if (r >= 0)
                r = drain_into(w, &c, run->tar.out_fd, run->buf, prog, &count);
        if (r < 0) {
                child_kill(&run->tar);
                chunker_done(&c);
                return fail_write(run, r, e);
        }
        status = child_wait(&run->tar);
        /* 1: some files changed while tar read them (a home in use); more is an error */
        if (status > 1) {
                chunker_done(&c);
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Backup failed: tar of %s exited with status %s", f->path,
                                  status == 2 ? "2" : "an error");
        }
        r = chunker_end(&c);
        chunker_done(&c);
        return fail_write(run, r, e);
}

static int open_destination(Run *run, QError *e) {
        BackupWriter *w = run->w;
        BackupPlan *plan = w->plan;
        struct stat st;
        int r;

        if (plan->destination_vm) {
                _cleanup_strv_free_ char **argv = strv_copy(w->runner);
                _cleanup_free_ char *line = NULL;
                if (!argv || strv_extend(&argv, "--source=dom0") < 0 ||
                    strv_extend(&argv, "--service-stderr=inherit") < 0 ||
                    strv_extend(&argv, plan->destination_vm) < 0 || strv_extend(&argv, "qubes.Backup") < 0)
                        return -ENOMEM;
                run->dest_err_fd = memfd_create("backup-stderr", MFD_CLOEXEC);
                if (run->dest_err_fd < 0)
                        return -errno;
                r = child_spawn(argv, NULL, CHILD_PIPE, CHILD_NULL_FD, run->dest_err_fd, true, &run->dest);
                if (r < 0)
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot start %s: %s", argv[0], strerror(-r));
                run->out = (Out){ .fd = run->dest.in_fd, .w = w };
                /* the service reads the path first: one line, CR and LF removed */
                _cleanup_strbuf_ StrBuf b = {};
                for (const char *p = plan->destination_path; *p; p++)
                        if (*p != '\r' && *p != '\n')
                                strbuf_append_c(&b, *p);
                strbuf_append_c(&b, '\n');
                if (b.oom)
                        return -ENOMEM;
                r = out_write(&run->out, b.buf, b.len);
                run->out.offset = 0;
                if (asprintf(&w->archive, "%s:%s", plan->destination_vm, plan->destination_path) < 0)
                        w->archive = NULL;
                return r < 0 && r != -ECANCELED ? 0 : r; /* a failing service is reported at the end */
        }

        /* dom0: a directory gets qubes-<local time>; anything else is the file itself */
        _cleanup_free_ char *dir = NULL;
        if (stat(plan->destination_path, &st) == 0 && S_ISDIR(st.st_mode)) {
                char stamp[64];
                time_t now = time(NULL);
                struct tm tm;
                strftime(stamp, sizeof stamp, "qubes-%Y-%m-%dT%H%M%S", localtime_r(&now, &tm));
                dir = strdup(plan->destination_path);
                run->final_name = strdup(stamp);
                if (asprintf(&run->final_path, "%s/%s", plan->destination_path, stamp) < 0)
                        run->final_path = NULL;
        } else {
                const char *slash = strrchr(plan->destination_path, '/');
                /* os.path.dirname(): "" without a slash, which never exists */
                dir = slash ? strndup(plan->destination_path,
                                      slash == plan->destination_path ? 1 : (size_t) (slash - plan->destination_path))
                            : strdup("");
                if (!dir)
                        return -ENOMEM;
                if (isempty(dir) || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || !slash[1])
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "ERROR: the backup directory for %s does not exists",
                                          plan->destination_path);
                run->final_name = strdup(slash + 1);
                run->final_path = strdup(plan->destination_path);
        }
        if (!dir || !run->final_name || !run->final_path)
                return -ENOMEM;
        run->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (run->dir_fd < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "ERROR: the backup directory for %s does not exists",
                                  plan->destination_path);
        /* unnamed until complete: a failure or a cancel leaves nothing */
        int fd = openat(run->dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) {
                char tmpl[] = ".qubes-backup-XXXXXX";
                _cleanup_free_ char *full = NULL;
                if (asprintf(&full, "%s/%s", dir, tmpl) < 0)
                        return -ENOMEM;
                fd = mkostemp(full, O_CLOEXEC);
                if (fd < 0)
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot create the backup in %s: %s", dir,
                                          strerror(errno));
                run->visible_tmp = TAKE_PTR(full);
        }
        run->out = (Out){ .fd = fd, .seekable = true, .w = w };
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        run->direct_fd = open(run->visible_tmp ?: proc, O_WRONLY | O_DIRECT | O_CLOEXEC);
        w->archive = strdup(run->final_path);
        return w->archive ? 0 : -ENOMEM;
}

/* The archive is complete: on disk, then under its name. */
static int finish_file(Run *run, QError *e) {
        _cleanup_free_ char *proc = NULL, *tmpname = NULL;
        int r;

        if (fsync(run->out.fd) < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Failed to write the backup to %s: %s", run->final_path,
                                  strerror(errno));
        if (run->visible_tmp) {
                if (rename(run->visible_tmp, run->final_path) < 0)
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot name the backup %s: %s", run->final_path,
                                          strerror(errno));
                run->visible_tmp = mfree(run->visible_tmp);
        } else {
                if (asprintf(&proc, "/proc/self/fd/%d", run->out.fd) < 0)
                        return -ENOMEM;
                r = linkat(AT_FDCWD, proc, run->dir_fd, run->final_name, AT_SYMLINK_FOLLOW);
                if (r < 0 && errno == EEXIST) {
                        /* an existing file is replaced, as upstream's open(…, 'wb') does */
                        for (int i = 0; i < 100 && r < 0 && (i == 0 || errno == EEXIST); i++) {
                                free(tmpname);
                                if (asprintf(&tmpname, ".%s.%08x", run->final_name, (unsigned) random()) < 0)
                                        return -ENOMEM;
                                r = linkat(AT_FDCWD, proc, run->dir_fd, tmpname, AT_SYMLINK_FOLLOW);
                        }
                        if (r >= 0 && renameat(run->dir_fd, tmpname, run->dir_fd, run->final_name) < 0) {
                                (void) unlinkat(run->dir_fd, tmpname, 0);
                                r = -1;
                        }
                }
                if (r < 0)
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot name the backup %s: %s", run->final_path,
                                          strerror(errno));
        }
        (void) fsync(run->dir_fd);
        return 0;
}

/* A qube's qubes.Backup: the end of our data, then its status. */
static int finish_qube(Run *run, int r, QError *e) {
        BackupWriter *w = run->w;
        char err[MAX_STDERR + 1] = {};

        child_close_stdin(&run->dest);
        if (r == -ECANCELED || cancelled(w)) {
                child_kill(&run->dest);
                return -ECANCELED;
        }
        int status = child_wait(&run->dest);
        if (status == 0 && r >= 0)
                return 0;
        if (qerror_is_set(e))
                return r;
        ssize_t k = pread(run->dest_err_fd, err, MAX_STDERR, 0);
        /* what a qube wrote must not garble a terminal: printable ASCII and newlines only */
        for (ssize_t i = 0; i < k; i++)
                if ((err[i] < 0x20 && err[i] != '\n' && err[i] != '\t') || err[i] >= 0x7f)
                        err[i] = '_';
        return qerror_set(e, QERR_QUBES_EXCEPTION, "Writing backup to VM %s failed: %s", w->plan->destination_vm,
                          k > 0 ? err : (status ? "the service failed" : strerror(-r)));
}

static void run_cleanup(Run *run) {
        child_kill(&run->filter);
        child_kill(&run->tar);
        if (run->dest.pid > 0)
                child_kill(&run->dest);
        if (run->out.fd >= 0 && !run->w->plan->destination_vm)
                close(run->out.fd);
        if (run->visible_tmp)
                (void) unlink(run->visible_tmp);
        if (run->dir_fd >= 0)
                close(run->dir_fd);
        if (run->stage_fd >= 0)
                close(run->stage_fd);
        if (run->direct_fd >= 0)
                close(run->direct_fd);
        if (run->dest_err_fd >= 0)
                close(run->dest_err_fd);
        free(run->final_name);
        free(run->final_path);
        free(run->visible_tmp);
        free(run->buf);
        free(run->buf2);
}

static int write_archive(Run *run, QError *e) {
        BackupWriter *w = run->w;
        BackupPlan *plan = w->plan;
        _cleanup_free_ char *header = NULL, *xml = NULL;
        _cleanup_free_ uint8_t *hmac = NULL;
        _cleanup_strbuf_ StrBuf pass = {};
        size_t hmac_len = 0, xml_len = 0;
        int r;

        /* every refusal comes before anything is written */
        for (size_t i = 0; i < plan->n_qubes; i++)
                if (plan->qubes[i].running && (plan->qubes[i].snapshots_disabled || plan->qubes[i].cannot_snapshot))
                        return qerror_set(e, QERR_VM_NOT_HALTED, "Domain is not powered off: '%s'",
                                          plan->qubes[i].name);
        r = backup_plan_archive_xml(plan, &xml, &xml_len, e);
        if (r < 0)
                return r;

        r = open_destination(run, e);
        if (r < 0)
                return r;

        header = backup_header_format(plan->compressed, plan->filter, w->backup_id);
        strbuf_append(&pass, "backup-header!");
        strbuf_append_n(&pass, w->passphrase, w->passphrase_len);
        if (!header || pass.oom)
                return -ENOMEM;
        r = scrypt_encrypt_buffer(pass.buf, pass.len, &plan->kdf, header, strlen(header), &hmac, &hmac_len);
        explicit_bzero(pass.buf, pass.len);
        if (r < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Failed to encrypt the backup header: %s", strerror(-r));
        r = out_member(&run->out, "backup-header", header, strlen(header));
        if (r >= 0)
                r = out_member(&run->out, "backup-header.hmac", hmac, hmac_len);
        if (r < 0)
                return fail_write(run, r, e);

        Progress prog = { .w = w, .base = 0, .limit = 0 };
        TarSource *src = NULL;
        r = tar_source_new_buffer(xml, xml_len, "qubes.xml", time(NULL), &src);
        if (r < 0)
                return r;
        if (!plan->compressed && tar_source_length(src) >= BACKUP_CHUNK_SIZE)
                r = qerror_set(e, QERR_QUBES_EXCEPTION, "qubes.xml is too large for one chunk of a backup");
        else
                r = write_file(run, src, "qubes.xml", &prog, 0, e);
        tar_source_free(src);
        if (r < 0)
                return r;

        uint64_t done = 0;
        for (size_t i = 0; i < plan->n_qubes; i++) {
                BackupQube *q = &plan->qubes[i];
                uint64_t file_base = 0;
                prog = (Progress){ .w = w, .base = done, .limit = done + q->size };
                for (size_t k = 0; k < q->n_files; k++) {
                        BackupFile *f = &q->files[k];
                        _cleanup_free_ char *base = NULL, *member = NULL;
                        _cleanup_close_ int fd = -EBADF;
                        struct stat st;

                        if (cancelled(w))
                                return -ECANCELED;
                        if (asprintf(&base, "%s%s", q->subdir, f->name) < 0)
                                return -ENOMEM;
                        if (f->kind == BACKUP_FILE_HOME) {
                                r = write_home(run, f, base, &prog, e);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        src = NULL;
                        switch (f->kind) {
                        case BACKUP_FILE_VOLUME:
                                r = backup_volume_open(&f->volume, q->running, &fd, e);
                                if (r < 0)
                                        return r;
                                if (fd < 0)
                                        st = (struct stat){ .st_size = (off_t) f->volume.size, .st_mtime = time(NULL) };
                                else if (fstat(fd, &st) < 0)
                                        return -errno;
                                r = tar_source_new_sparse(fd, base, (uint64_t) st.st_size, st.st_mtime,
                                                          (unsigned) getpid(), MAX_EXTENTS, &src);
                                break;
                        case BACKUP_FILE_PLAIN:
                                fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                                if (fd < 0 || fstat(fd, &st) < 0)
                                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot read %s: %s", f->path,
                                                          strerror(errno));
                                r = tar_source_new_file(fd, base, (uint64_t) st.st_size, st.st_mtime, &src);
                                break;
                        default:
                                r = tar_source_new_buffer("", 0, base, time(NULL), &src);
                                break;
                        }
                        if (r < 0)
                                return r;
                        r = write_file(run, src, base, &prog, file_base, e);
                        file_base += tar_source_data_read(src);
                        tar_source_free(src);
                        if (r < 0)
                                return r;
                }
                done += q->size;
                report(w, done);
        }

        if (plan->destination_vm)
                return finish_qube(run, 0, e);
        return finish_file(run, e);
}

int backup_writer_run(BackupWriter *w) {
        Run run = { .w = w,
                    .stage_fd = -1,
                    .direct_fd = -1,
                    .dir_fd = -1,
                    .dest_err_fd = -1,
                    .filter = CHILD_NULL,
                    .tar = CHILD_NULL,
                    .dest = CHILD_NULL };
        sigset_t mask;
        int r;

        /* a reader that went away is an EPIPE for us, never a signal for the daemon */
        sigemptyset(&mask);
        sigaddset(&mask, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);

        run.out.fd = -1;
        run.buf = malloc(BUF_SIZE);
        run.buf2 = malloc(2 * BUF_SIZE); /* a chunk copy buffer, and the filter's output */
        if (!run.buf || !run.buf2) {
                r = -ENOMEM;
                goto finish;
        }
        if (!w->passphrase) {
                r = backup_ask_passphrase(w->runner, w->passphrase_vm, w->plan->profile, w->cancel_fd, &w->passphrase,
                                          &w->passphrase_len, &w->error);
                if (r < 0)
                        goto finish;
        }
        if (!w->plan->measured) {
                r = backup_plan_measure(w->plan, &w->error);
                if (r < 0)
                        goto finish;
        }
        atomic_store(&w->bytes_total, w->plan->total);
        report(w, 0);
        r = write_archive(&run, &w->error);
        if (r < 0 && w->plan->destination_vm && run.dest.pid > 0)
                r = finish_qube(&run, r, &w->error);
finish:
        if (cancelled(w) && r < 0)
                r = -ECANCELED;
        if (r < 0) {
                w->archive = mfree(w->archive);
                if (r == -ECANCELED) {
                        qerror_done(&w->error);
                        qerror_set(&w->error, QERR_BACKUP_CANCELLED, "Backup cancelled");
                } else if (!qerror_is_set(&w->error))
                        qerror_set(&w->error, QERR_QUBES_EXCEPTION, "Backup failed: %s", strerror(-r));
        }
        run_cleanup(&run);
        w->result = r < 0 ? r : 0;
        return w->result;
}

int backup_writer_new(BackupPlan *plan, char *passphrase, size_t passphrase_len, const char *passphrase_vm,
                      char *const *runner, BackupWriter **ret) {
        BackupWriter *w = new0(BackupWriter, 1);
        char stamp[64];
        time_t now = time(NULL);
        struct tm tm;

        if (!w)
                return -ENOMEM;
        w->cancel_fd = -1;
        w->plan = plan;
        w->passphrase = passphrase;
        w->passphrase_len = passphrase_len;
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", localtime_r(&now, &tm));
        if (asprintf(&w->backup_id, "%s-%d", stamp, (int) getpid()) < 0)
                w->backup_id = NULL;
        w->runner = strv_copy(runner);
        w->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!passphrase)
                w->passphrase_vm = strdup(strempty(passphrase_vm));
        if (!w->backup_id || !w->runner || w->cancel_fd < 0 || (!passphrase && !w->passphrase_vm)) {
                w->plan = NULL; /* the caller keeps what it gave on failure */
                w->passphrase = NULL;
                backup_writer_free(w);
                return -ENOMEM;
        }
        *ret = w;
        return 0;
}

void backup_writer_cancel(BackupWriter *w) {
        uint64_t one = 1;
        atomic_store(&w->cancel, true);
        (void) !write(w->cancel_fd, &one, sizeof one);
}

BackupWriter *backup_writer_free(BackupWriter *w) {
        if (!w)
                return NULL;
        backup_plan_free(w->plan);
        if (w->passphrase) {
                explicit_bzero(w->passphrase, w->passphrase_len);
                free(w->passphrase);
        }
        free(w->passphrase_vm);
        free(w->backup_id);
        strv_free(w->runner);
        if (w->cancel_fd >= 0)
                close(w->cancel_fd);
        qerror_done(&w->error);
        free(w->archive);
        free(w);
        return NULL;
}

/* ---- passphrase from a qube ------------------------------------------------------------------------ */

int backup_ask_passphrase(char *const *runner, const char *qube, const char *profile, int cancel_fd, char **ret,
                          size_t *ret_len, QError *e) {
        _cleanup_strv_free_ char **argv = strv_copy(runner);
        _cleanup_free_ char *service = NULL;
        _cleanup_strbuf_ StrBuf out = {};
        Child c = CHILD_NULL;
        bool stopped = false;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        if (asprintf(&service, "qubes.BackupPassphrase+%s", profile) < 0)
                return -ENOMEM;
        if (!argv || strv_extend(&argv, "--source=dom0") < 0 || strv_extend(&argv, qube) < 0 ||
            strv_extend(&argv, service) < 0)
                return -ENOMEM;
        r = child_spawn(argv, NULL, CHILD_NULL_FD, CHILD_PIPE, CHILD_NULL_FD, false, &c);
        while (r >= 0) {
                /* a person may be typing it: wait as long as it takes, or until cancelled */
                struct pollfd p[2] = { { .fd = c.out_fd, .events = POLLIN }, { .fd = cancel_fd, .events = POLLIN } };
                char buf[4096];
                if (poll(p, cancel_fd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        stopped = true;
                        break;
                }
                if (cancel_fd >= 0 && p[1].revents) {
                        child_kill(&c);
                        if (out.buf)
                                explicit_bzero(out.buf, out.len);
                        return -ECANCELED;
                }
                ssize_t k = read(c.out_fd, buf, sizeof buf);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k <= 0)
                        break;
                /* a passphrase is no novel: stop reading at 64 KiB */
                if (out.len + (size_t) k > 65536) {
                        stopped = true;
                        explicit_bzero(buf, sizeof buf);
                        break;
                }
                strbuf_append_n(&out, buf, (size_t) k);
                explicit_bzero(buf, sizeof buf);
        }
        int status = r >= 0 ? (stopped || out.oom ? (child_kill(&c), 1) : child_wait(&c)) : 1;
        if (status != 0 || out.oom) {
                if (out.buf)
                        explicit_bzero(out.buf, out.len);
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Failed to retrieve passphrase from '%s' VM", qube);
        }
        r = backup_passphrase_from_service(out.buf ?: "", out.len, ret, ret_len, e);
        if (out.buf)
                explicit_bzero(out.buf, out.len);
        return r;
}
