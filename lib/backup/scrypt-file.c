/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backup/scrypt-file.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/macros.h"

#define SALT_SIZE 32
#define KEY_SIZE 64

struct ScryptStream {
        EVP_CIPHER_CTX *cipher;
        EVP_MAC_CTX *mac;
        bool decrypting;
};

ScryptStream *scrypt_stream_free(ScryptStream *s) {
        if (!s)
                return NULL;
        EVP_CIPHER_CTX_free(s->cipher);
        EVP_MAC_CTX_free(s->mac);
        free(s);
        return NULL;
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

uint64_t scrypt_memory_needed(const ScryptParams *p) {
        /* OpenSSL's count: B = 128 r p, V = 128 r (N + 2), plus the small X/Y block */
        uint64_t n = UINT64_C(1) << p->log_n;
        return 128 * (uint64_t) p->r * (n + 2) + 128 * (uint64_t) p->r * p->p + 256 * (uint64_t) p->r;
}

uint64_t scrypt_max_memory(void) {
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
        if (pages <= 0 || size <= 0)
                return UINT64_C(1) << 30;
        return (uint64_t) pages * (uint64_t) size / 2;
}

static bool params_valid(const ScryptParams *p) {
        /* the KDF's own limits: r p < 2^30, N a power of two > 1 */
        return p->log_n >= 1 && p->log_n <= SCRYPT_MAX_LOG_N && p->r >= 1 && p->p >= 1 &&
               (uint64_t) p->r * p->p < (UINT64_C(1) << 30);
}

/* key = scrypt(pass, salt), then the AES-256-CTR context (key[0..32], counter 0) and the
 * HMAC-SHA256 context (key[32..64]) fed with the header's first 64 bytes. */
static int stream_new(const void *pass, size_t pass_len, const uint8_t salt[SALT_SIZE], const ScryptParams *params,
                      uint64_t max_memory, bool decrypting, ScryptStream **ret) {
        static const uint8_t iv[16] = {};
        uint8_t key[KEY_SIZE];
        ScryptStream *s;
        EVP_MAC *mac;
        int r = -EIO;

        s = new0(ScryptStream, 1);
        if (!s)
                return -ENOMEM;
        s->decrypting = decrypting;
        if (EVP_PBE_scrypt(pass, pass_len, salt, SALT_SIZE, UINT64_C(1) << params->log_n, params->r, params->p,
                           max_memory, key, sizeof key) != 1)
                goto fail;

        s->cipher = EVP_CIPHER_CTX_new();
        if (!s->cipher)
                goto fail;
        if (EVP_CipherInit_ex(s->cipher, EVP_aes_256_ctr(), NULL, key, iv, decrypting ? 0 : 1) != 1)
                goto fail;

        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (!mac)
                goto fail;
        s->mac = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac);
        if (!s->mac)
                goto fail;
        OSSL_PARAM mp[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        if (EVP_MAC_init(s->mac, key + 32, 32, mp) != 1)
                goto fail;
        OPENSSL_cleanse(key, sizeof key);
        *ret = s;
        return 0;
fail:
        OPENSSL_cleanse(key, sizeof key);
        scrypt_stream_free(s);
        return r;
}

/* HMAC of what the context has seen so far, without disturbing it (the header's MAC is taken
 * at byte 64 and the same HMAC goes on over the whole file). */
static int mac_peek(EVP_MAC_CTX *ctx, uint8_t out[32]) {
        EVP_MAC_CTX *copy = EVP_MAC_CTX_dup(ctx);
        size_t len = 0;
        int ok;
        if (!copy)
                return -ENOMEM;
        ok = EVP_MAC_final(copy, out, &len, 32) == 1 && len == 32;
        EVP_MAC_CTX_free(copy);
        return ok ? 0 : -EIO;
}

static int sha256_16(const uint8_t *data, size_t n, uint8_t out[16]) {
        uint8_t md[32];
        unsigned len = 0;
        if (EVP_Digest(data, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
                return -EIO;
        memcpy(out, md, 16);
        return 0;
}

int scrypt_enc_new(const void *pass, size_t pass_len, const ScryptParams *params, uint8_t header[SCRYPT_HEADER_SIZE],
                   ScryptStream **ret) {
        ScryptStream *s = NULL;
        uint8_t salt[SALT_SIZE];
        int r;

        if (!params_valid(params))
                return -EINVAL;
        if (RAND_bytes(salt, sizeof salt) != 1)
                return -EIO;
        r = stream_new(pass, pass_len, salt, params, scrypt_memory_needed(params) + (UINT64_C(1) << 20), false, &s);
        if (r < 0)
                return r;

        memcpy(header, "scrypt", 6);
        header[6] = 0;
        header[7] = (uint8_t) params->log_n;
        put_be32(header + 8, params->r);
        put_be32(header + 12, params->p);
        memcpy(header + 16, salt, SALT_SIZE);
        r = sha256_16(header, 48, header + 48);
        if (r >= 0 && EVP_MAC_update(s->mac, header, 64) != 1)
                r = -EIO;
        if (r >= 0)
                r = mac_peek(s->mac, header + 64);
        if (r >= 0 && EVP_MAC_update(s->mac, header + 64, 32) != 1)
                r = -EIO;
        if (r < 0) {
                scrypt_stream_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

/* EVP_CipherUpdate takes an int length: feed large buffers in pieces. */
static int cipher_in_place(EVP_CIPHER_CTX *c, uint8_t *buf, size_t n) {
        while (n > 0) {
                int piece = n > (1u << 30) ? (1 << 30) : (int) n, out = 0;
                if (EVP_CipherUpdate(c, buf, &out, buf, piece) != 1 || out != piece)
                        return -EIO;
                buf += piece;
                n -= (size_t) piece;
        }
        return 0;
}

int scrypt_enc_update(ScryptStream *s, uint8_t *buf, size_t n) {
        int r = cipher_in_place(s->cipher, buf, n);
        if (r < 0)
                return r;
        return EVP_MAC_update(s->mac, buf, n) == 1 ? 0 : -EIO;
}

int scrypt_enc_final(ScryptStream *s, uint8_t mac[SCRYPT_MAC_SIZE]) {
        size_t len = 0;
        return EVP_MAC_final(s->mac, mac, &len, SCRYPT_MAC_SIZE) == 1 && len == SCRYPT_MAC_SIZE ? 0 : -EIO;
}

const char *scrypt_dec_error_string(ScryptDecError e) {
        switch (e) {
        case SCRYPT_DEC_OK:
                return "success";
        case SCRYPT_DEC_NOT_SCRYPT:
                return "not a scrypt-encrypted file";
        case SCRYPT_DEC_PARAMS:
                return "scrypt parameters out of range, or needing more memory than this machine may give";
        case SCRYPT_DEC_BAD_PASSWORD:
                return "wrong passphrase";
        case SCRYPT_DEC_BAD_MAC:
                return "the data does not match its MAC (tampered or truncated)";
        case SCRYPT_DEC_INTERNAL:
                break;
        }
        return "internal error";
}

void scrypt_header_params(const uint8_t header[SCRYPT_HEADER_SIZE], ScryptParams *ret) {
        ret->log_n = header[7];
        ret->r = get_be32(header + 8);
        ret->p = get_be32(header + 12);
}

ScryptDecError scrypt_dec_new(const void *pass, size_t pass_len, const uint8_t header[SCRYPT_HEADER_SIZE],
                              uint64_t max_memory, ScryptStream **ret) {
        ScryptStream *s = NULL;
        ScryptParams params;
        uint8_t sum[16], mac[32];

        if (memcmp(header, "scrypt", 6) != 0 || header[6] != 0)
                return SCRYPT_DEC_NOT_SCRYPT;
        if (sha256_16(header, 48, sum) < 0)
                return SCRYPT_DEC_INTERNAL;
        if (CRYPTO_memcmp(sum, header + 48, 16) != 0)
                return SCRYPT_DEC_NOT_SCRYPT;
        scrypt_header_params(header, &params);
        if (!params_valid(&params) || scrypt_memory_needed(&params) > max_memory)
                return SCRYPT_DEC_PARAMS;
        if (stream_new(pass, pass_len, header + 16, &params, scrypt_memory_needed(&params) + (UINT64_C(1) << 20), true,
                       &s) < 0)
                return SCRYPT_DEC_INTERNAL;
        if (EVP_MAC_update(s->mac, header, 64) != 1 || mac_peek(s->mac, mac) < 0) {
                scrypt_stream_free(s);
                return SCRYPT_DEC_INTERNAL;
        }
        if (CRYPTO_memcmp(mac, header + 64, 32) != 0) {
                scrypt_stream_free(s);
                return SCRYPT_DEC_BAD_PASSWORD;
        }
        if (EVP_MAC_update(s->mac, header + 64, 32) != 1) {
                scrypt_stream_free(s);
                return SCRYPT_DEC_INTERNAL;
        }
        *ret = s;
        return SCRYPT_DEC_OK;
}

int scrypt_dec_update(ScryptStream *s, uint8_t *buf, size_t n) {
        if (EVP_MAC_update(s->mac, buf, n) != 1)
                return -EIO;
        return cipher_in_place(s->cipher, buf, n);
}

ScryptDecError scrypt_dec_final(ScryptStream *s, const uint8_t mac[SCRYPT_MAC_SIZE]) {
        uint8_t got[SCRYPT_MAC_SIZE];
        size_t len = 0;
        if (EVP_MAC_final(s->mac, got, &len, sizeof got) != 1 || len != sizeof got)
                return SCRYPT_DEC_INTERNAL;
        return CRYPTO_memcmp(got, mac, sizeof got) == 0 ? SCRYPT_DEC_OK : SCRYPT_DEC_BAD_MAC;
}

int scrypt_encrypt_buffer(const void *pass, size_t pass_len, const ScryptParams *params, const void *data, size_t n,
                          uint8_t **ret, size_t *ret_len) {
        ScryptStream *s = NULL;
        uint8_t *out;
        int r;

        if (n > SIZE_MAX - SCRYPT_OVERHEAD)
                return -EFBIG;
        out = malloc(n + SCRYPT_OVERHEAD);
        if (!out)
                return -ENOMEM;
        r = scrypt_enc_new(pass, pass_len, params, out, &s);
        if (r >= 0) {
                memcpy(out + SCRYPT_HEADER_SIZE, data, n);
                r = scrypt_enc_update(s, out + SCRYPT_HEADER_SIZE, n);
        }
        if (r >= 0)
                r = scrypt_enc_final(s, out + SCRYPT_HEADER_SIZE + n);
        scrypt_stream_free(s);
        if (r < 0) {
                free(out);
                return r;
        }
        *ret = out;
        *ret_len = n + SCRYPT_OVERHEAD;
        return 0;
}

ScryptDecError scrypt_decrypt_buffer(const void *pass, size_t pass_len, const uint8_t *data, size_t n,
                                     uint64_t max_memory, uint8_t **ret, size_t *ret_len) {
        ScryptStream *s = NULL;
        ScryptDecError e;
        uint8_t *out;
        size_t len;

        if (n < SCRYPT_OVERHEAD)
                return n < SCRYPT_HEADER_SIZE ? SCRYPT_DEC_NOT_SCRYPT : SCRYPT_DEC_BAD_MAC;
        e = scrypt_dec_new(pass, pass_len, data, max_memory, &s);
        if (e != SCRYPT_DEC_OK)
                return e;
        len = n - SCRYPT_OVERHEAD;
        out = malloc(len + 1);
        if (!out) {
                scrypt_stream_free(s);
                return SCRYPT_DEC_INTERNAL;
        }
        memcpy(out, data + SCRYPT_HEADER_SIZE, len);
        if (scrypt_dec_update(s, out, len) < 0)
                e = SCRYPT_DEC_INTERNAL;
        else
                e = scrypt_dec_final(s, data + SCRYPT_HEADER_SIZE + len);
        scrypt_stream_free(s);
        if (e != SCRYPT_DEC_OK) {
                OPENSSL_cleanse(out, len);
                free(out);
                return e;
        }
        out[len] = 0;
        *ret = out;
        *ret_len = len;
        return SCRYPT_DEC_OK;
}
