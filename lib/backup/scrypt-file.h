/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The scrypt container of Tarsnap's `scrypt enc` (format version 0), which every encrypted
 * member of a Qubes v4 backup is (spec/data-model.md §7.3):
 *
 *   0   6  "scrypt"          16  32  salt                 96       X  data, AES-256-CTR
 *   6   1  0 (version)       48  16  SHA-256(0..47)[0..16] 96+X    32  HMAC-SHA256(0..96+X)
 *   7   1  log2 N            64  32  HMAC-SHA256(0..63)
 *   8   4  r (big-endian)
 *   12  4  p (big-endian)
 *
 * with [AES key ‖ HMAC key] = scrypt(passphrase, salt, N, r, p, 64). Everything here is
 * libcrypto (EVP_PBE_scrypt, EVP_aes_256_ctr, EVP_MAC HMAC, SHA-256); nothing is hand-written.
 *
 * Both directions stream: the caller feeds the data in pieces of any size, so that neither a
 * whole file nor a whole chunk is ever in memory. The decoder needs the data length in advance
 * (the container's size minus 128, known from the tar header around it) so that it can tell
 * the trailing MAC from the data. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRYPT_HEADER_SIZE 96
#define SCRYPT_MAC_SIZE 32
#define SCRYPT_OVERHEAD (SCRYPT_HEADER_SIZE + SCRYPT_MAC_SIZE)

typedef struct ScryptParams {
        unsigned log_n; /* N = 2^log_n */
        uint32_t r, p;
} ScryptParams;

/* What qubesd writes unless a profile says otherwise (docs/daemon.md, "Backup"): the scrypt
 * paper's parameters for interactive use, 16 MiB and some 50 ms per chunk. */
#define SCRYPT_DEFAULT_LOG_N 14
#define SCRYPT_DEFAULT_R 8
#define SCRYPT_DEFAULT_P 1
/* Bounds of what we accept when writing (a profile) and reading (an archive). Reading takes any
 * parameters the machine can compute, as `scrypt dec -f` does; the memory is bounded by
 * scrypt_max_memory(). */
#define SCRYPT_MIN_LOG_N 10
#define SCRYPT_MAX_LOG_N 30

typedef struct ScryptStream ScryptStream;

/* Memory the KDF needs for these parameters (bytes), as OpenSSL counts it. */
uint64_t scrypt_memory_needed(const ScryptParams *p);
/* Half of the physical memory: the most a decoder lets the KDF take. */
uint64_t scrypt_max_memory(void);

/* Encrypting: derives the keys (the slow part: the scrypt KDF) with a fresh random salt, writes
 * the 96-byte header. Returns 0, -ENOMEM, -EINVAL (parameters) or -EIO (libcrypto). */
int scrypt_enc_new(const void *pass, size_t pass_len, const ScryptParams *params, uint8_t header[SCRYPT_HEADER_SIZE],
                   ScryptStream **ret);
/* Encrypt n bytes in place (any n, any number of calls). */
int scrypt_enc_update(ScryptStream *s, uint8_t *buf, size_t n);
/* The trailing MAC. The stream may be freed afterwards. */
int scrypt_enc_final(ScryptStream *s, uint8_t mac[SCRYPT_MAC_SIZE]);

typedef enum ScryptDecError {
        SCRYPT_DEC_OK = 0,
        SCRYPT_DEC_NOT_SCRYPT,   /* magic or version wrong, or the header checksum: not a container */
        SCRYPT_DEC_PARAMS,       /* N, r or p out of range, or more memory than scrypt_max_memory() */
        SCRYPT_DEC_BAD_PASSWORD, /* the header's MAC: wrong passphrase (or a passphrase bound to another name) */
        SCRYPT_DEC_BAD_MAC,      /* the data's MAC: tampered or truncated */
        SCRYPT_DEC_INTERNAL,     /* libcrypto or memory */
} ScryptDecError;
const char *scrypt_dec_error_string(ScryptDecError e);

/* Decrypting: checks the header and derives the keys. */
ScryptDecError scrypt_dec_new(const void *pass, size_t pass_len, const uint8_t header[SCRYPT_HEADER_SIZE],
                              uint64_t max_memory, ScryptStream **ret);
/* Decrypt n bytes of data in place. The plaintext is not authentic until scrypt_dec_final()
 * said so: hold back what must not take effect before. */
int scrypt_dec_update(ScryptStream *s, uint8_t *buf, size_t n);
ScryptDecError scrypt_dec_final(ScryptStream *s, const uint8_t mac[SCRYPT_MAC_SIZE]);

/* The parameters of a header (no checks). */
void scrypt_header_params(const uint8_t header[SCRYPT_HEADER_SIZE], ScryptParams *ret);

ScryptStream *scrypt_stream_free(ScryptStream *s);

/* Whole buffers at once (small files: the backup header). */
int scrypt_encrypt_buffer(const void *pass, size_t pass_len, const ScryptParams *params, const void *data, size_t n,
                          uint8_t **ret, size_t *ret_len);
ScryptDecError scrypt_decrypt_buffer(const void *pass, size_t pass_len, const uint8_t *data, size_t n,
                                     uint64_t max_memory, uint8_t **ret, size_t *ret_len);
