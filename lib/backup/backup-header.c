/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backup/backup-header.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util/macros.h"
#include "util/strbuf.h"

static const char *const known_filters[] = { "gzip", "bzip2", "xz", NULL };
static const char *const optional_filters[] = { "lzma", "pbzip2", "pigz", "zstd", "zstdmt", NULL };
/* hmac-algorithm: v4 writes scrypt; older versions name an openssl digest */
static const char *const known_digests[] = { "scrypt", "sha1",     "sha224",   "sha256", "sha384",     "sha512",
                                             "md5",    "sha3-256", "sha3-512", "sm3",    "blake2b512", NULL };

void backup_header_done(BackupHeader *h) {
        free(h->compression_filter);
        free(h->hmac_algorithm);
        free(h->crypto_algorithm);
        free(h->backup_id);
        *h = (BackupHeader){};
}

char *backup_header_format(bool compressed, const char *filter, const char *backup_id) {
        char *s = NULL;
        if (asprintf(&s,
                     "version=4\nencrypted=True\ncompressed=%s\ncompression-filter=%s\nhmac-algorithm=scrypt\n"
                     "backup-id=%s\n",
                     compressed ? "True" : "False", filter, backup_id) < 0)
                return NULL;
        return s;
}

bool backup_header_value_valid(const char *s) {
        for (; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
                        return false;
        return true;
}

bool backup_program_installed(const char *name) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = strdup(isempty(path) ? "/usr/local/bin:/usr/bin:/bin" : path);
        char *save = NULL;

        if (!copy || strchr(name, '/'))
                return false;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *p = NULL;
                struct stat st;
                if (asprintf(&p, "%s/%s", dir, name) < 0)
                        return false;
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0)
                        return true;
        }
        return false;
}

static bool in_list(const char *const *list, const char *s) {
        for (; *list; list++)
                if (streq(*list, s))
                        return true;
        return false;
}

static int fail(char **error, const char *fmt, ...) _printf_(2, 3);
static int fail(char **error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(error, fmt, ap) < 0)
                *error = NULL;
        va_end(ap);
        return -EINVAL;
}

/* Python's str.splitlines() terminators for ASCII text. */
static bool is_line_break(char c) {
        return c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\x1c' || c == '\x1d' || c == '\x1e';
}

static bool is_py_space(char c) {
        return c == ' ' || c == '\t' || is_line_break(c) || c == '\x1f';
}

static bool parse_bool(const char *v) {
        return strcasecmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0;
}

int backup_header_parse(const char *data, size_t n, BackupHeader *ret, char **error) {
        BackupHeader h = { .encrypted = -1, .compressed = -1 };
        bool seen[7] = {};
        static const char *const keys[] = { "version",          "encrypted",      "compressed", "compression-filter",
                                            "crypto-algorithm", "hmac-algorithm", "backup-id" };
        size_t i = 0;
        int r;

        *error = NULL;
        for (size_t k = 0; k < n; k++)
                if ((unsigned char) data[k] >= 0x80 || data[k] == 0) {
                        r = fail(error, "Non-ASCII characters in backup header");
                        goto finish;
                }

        while (i < n) {
                size_t start = i, end;
                while (i < n && !is_line_break(data[i]))
                        i++;
                end = i;
                if (i < n && data[i] == '\r' && i + 1 < n && data[i + 1] == '\n')
                        i++;
                if (i < n)
                        i++;

                size_t eq = 0;
                for (size_t k = start; k < end; k++)
                        eq += data[k] == '=';
                if (eq != 1) {
                        r = fail(error, "Invalid backup header");
                        goto finish;
                }
                while (start < end && is_py_space(data[start]))
                        start++;
                while (end > start && is_py_space(data[end - 1]))
                        end--;
                _cleanup_free_ char *line = strndup(data + start, end - start);
                if (!line) {
                        r = -ENOMEM;
                        goto finish;
                }
                char *value = strchr(line, '=');
                *value++ = 0;
                const char *key = line;
                if (!backup_header_value_valid(key)) {
                        r = fail(error, "Invalid backup header (key)");
                        goto finish;
                }
                size_t idx;
                for (idx = 0; idx < ELEMENTSOF(keys); idx++)
                        if (streq(keys[idx], key))
                                break;
                if (idx == ELEMENTSOF(keys))
                        continue; /* unknown keys are ignored */
                if (seen[idx]) {
                        r = fail(error, "Duplicated header line: %s", key);
                        goto finish;
                }
                seen[idx] = true;
                if (!backup_header_value_valid(value)) {
                        r = fail(error, "Invalid backup header (value)");
                        goto finish;
                }
                switch (idx) {
                case 0: {
                        char *e;
                        errno = 0;
                        long v = strtol(value, &e, 10);
                        if (errno || *e || e == value || v < 1 || v > 4) {
                                r = fail(error, "Invalid value for header: %s", key);
                                goto finish;
                        }
                        h.version = (int) v;
                        break;
                }
                case 1:
                        h.encrypted = parse_bool(value);
                        break;
                case 2:
                        h.compressed = parse_bool(value);
                        break;
                case 3:
                        if (!in_list(known_filters, value) &&
                            !(in_list(optional_filters, value) && backup_program_installed(value))) {
                                if (in_list(optional_filters, value))
                                        r = fail(error,
                                                 "Optional '%s' compression filter is not installed. Install it and "
                                                 "retry.",
                                                 value);
                                else
                                        r = fail(error,
                                                 "Unusual compression filter '%s' found. Use "
                                                 "--compression-filter=%s to use it anyway.",
                                                 value, value);
                                goto finish;
                        }
                        h.compression_filter = strdup(value);
                        break;
                case 4:
                        h.crypto_algorithm = strdup(value);
                        break;
                case 5: {
                        _cleanup_free_ char *lower = strdup(value);
                        if (!lower) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        for (char *p = lower; *p; p++)
                                if (*p >= 'A' && *p <= 'Z')
                                        *p = (char) (*p - 'A' + 'a');
                        if (!in_list(known_digests, lower)) {
                                r = fail(error, "Invalid value for header: %s", key);
                                goto finish;
                        }
                        h.hmac_algorithm = strdup(value);
                        break;
                }
                case 6:
                        if (value[0] == '-' || value[0] == 0) {
                                r = fail(error, "Invalid value for header: %s", key);
                                goto finish;
                        }
                        h.backup_id = strdup(value);
                        break;
                }
        }

        if (h.version >= 2 && h.version <= 4) {
                if (h.encrypted < 0 || h.compressed < 0 || !h.hmac_algorithm) {
                        r = fail(error, "Backup header lack '%s' info",
                                 h.encrypted < 0    ? "encrypted"
                                 : h.compressed < 0 ? "compressed"
                                                    : "hmac_algorithm");
                        goto finish;
                }
                if (h.encrypted && h.version < 4 && !h.crypto_algorithm) {
                        r = fail(error, "Backup header lack 'crypto_algorithm' info");
                        goto finish;
                }
                if (h.version >= 3 && h.compressed && !h.compression_filter) {
                        r = fail(error, "Backup header lack 'compression_filter' info");
                        goto finish;
                }
                if (h.version >= 4 && !h.backup_id) {
                        r = fail(error, "Backup header lack 'backup_id' info");
                        goto finish;
                }
        } else if (h.version != 1) {
                r = fail(error, "Unsupported backup version %s", h.version ? "invalid" : "None");
                goto finish;
        }
        *ret = h;
        return 0;
finish:
        backup_header_done(&h);
        if (r == -ENOMEM)
                *error = strdup("Out of memory");
        return r;
}
