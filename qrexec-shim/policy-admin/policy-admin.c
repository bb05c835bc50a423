/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubes-policy-admin: the policy.* qrexec services (spec/admin-api.md §2.6), installed as
 * /etc/qubes-rpc/policy.List, policy.Get, ... symlinks to this binary.
 *
 * The reply is raw bytes on stdout (no 0\0 / 2\0 framing). A refused request prints
 * "<ExceptionClass> <message>" on stderr and exits 1, an internal error exits 2. Every change is
 * checked against the whole policy as it would be after the change before it is written, and is
 * written atomically, under an exclusive lock on the policy directory. */

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "policy/policy-internal.h"

#include "util/fileio.h"
#include "util/macros.h"
#include "util/strbuf.h"
#include "util/strv.h"
#include "util/version.h"

#define MAX_PAYLOAD (16U * 1024 * 1024)
#define POLICY_SUFFIX ".policy"

#define EXIT_ERROR 1
#define EXIT_INTERNAL 2

static const char *policy_dir = QUBES_POLICY_DIR;
static char *include_dir;

/* A refusal: printed once, then the service exits 1. */
static int fail(const char *klass, const char *fmt, ...) _printf_(2, 3);
static int fail(const char *klass, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s ", klass);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        return -EXIT_ERROR;
}
#define admin_error(...) fail("PolicyAdminException", __VA_ARGS__)
#define token_error(...) fail("PolicyAdminTokenException", __VA_ARGS__)

static int internal_error(int r, const char *what) {
        fprintf(stderr, "Internal error: %s: %s", what, strerror(r < 0 ? -r : r));
        return -EXIT_INTERNAL;
}

static int write_out(const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(STDOUT_FILENO, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return internal_error(errno, "writing the reply");
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* ---- paths ---------------------------------------------------------------------------- */

/* ^[\w-]+$ (ASCII: qrexec arguments are ASCII) and, after following symlinks, directly inside
 * dir. *ret is the path in dir (not the resolved one: a symlinked file is replaced in place). */
static int get_path(const char *arg, bool include, char **ret) {
        const char *dir = include ? include_dir : policy_dir;
        _cleanup_free_ char *path = NULL, *real = NULL, *real_dir = NULL;

        if (isempty(arg))
                return admin_error("Expecting a file name, got none");
        for (const char *c = arg; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                      *c == '-'))
                        return admin_error("Expecting a path inside %s", dir);
        if (asprintf(&path, "%s/%s%s", dir, arg, include ? "" : POLICY_SUFFIX) < 0)
                return internal_error(ENOMEM, "path");

        real = realpath(path, NULL);
        if (real) {
                _cleanup_free_ char *parent = strdup(real);
                char *slash;

                real_dir = realpath(dir, NULL);
                if (!parent || !real_dir)
                        return internal_error(parent ? errno : ENOMEM, "resolving the policy directory");
                slash = strrchr(parent, '/');
                if (slash)
                        *slash = 0;
                if (!streq(parent, real_dir))
                        return admin_error("Expecting a path inside %s", dir);
        } else if (errno != ENOENT)
                return internal_error(errno, path);
        *ret = TAKE_PTR(path);
        return 0;
}

static bool is_file(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- validation ----------------------------------------------------------------------- */

static int rm_rf(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;

        if (d) {
                while ((de = readdir(d))) {
                        _cleanup_free_ char *p = NULL;
                        struct stat st;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (asprintf(&p, "%s/%s", path, de->d_name) < 0)
                                break;
                        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                                rm_rf(p);
                        else
                                (void) unlink(p);
                }
                closedir(d);
        }
        return rmdir(path) < 0 ? -errno : 0;
}

/* Mirror src into dst with symlinks, but the entry called skip (NULL: none); "include" is
 * mirrored one level deeper when descend. */
static int mirror_dir(const char *src, const char *dst, const char *skip, bool descend, const char *skip_include) {
        DIR *d = opendir(src);
        struct dirent *de;
        int r = 0;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *from = NULL, *to = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (skip && streq(de->d_name, skip))
                        continue;
                if (asprintf(&from, "%s/%s", src, de->d_name) < 0 || asprintf(&to, "%s/%s", dst, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (descend && streq(de->d_name, "include") && stat(from, &st) == 0 && S_ISDIR(st.st_mode)) {
                        if (mkdir(to, 0755) < 0) {
                                r = -errno;
                                break;
                        }
                        r = mirror_dir(from, to, skip_include, false, NULL);
                        if (r < 0)
                                break;
                        continue;
                }
                if (symlink(from, to) < 0) {
                        r = -errno;
                        break;
                }
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        return r;
}

/* Replace every occurrence of from in s by to (for messages). */
static char *replace_all(const char *s, const char *from, const char *to) {
        _cleanup_strbuf_ StrBuf b = {};
        size_t n = strlen(from);
        const char *p;

        while ((p = strstr(s, from))) {
                strbuf_append_n(&b, s, (size_t) (p - s));
                strbuf_append(&b, to);
                s = p + n;
        }
        strbuf_append(&b, s);
        return strbuf_steal(&b);
}

/* Would the policy still load without errors with the file name (in include/ when include)
 * holding content (NULL: removed)? Returns 0, or a refusal. */
static int validate(const char *name, bool include, const char *content) {
        _cleanup_free_ char *shadow = NULL, *file = NULL, *shadow_include = NULL;
        const char *tmp = getenv("TMPDIR");
        QubesPolicy *policy = NULL;
        int r, ret = 0;

        /* the file on its own first: gives the plainest message for a syntax error */
        if (!include && content) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", policy_dir, name) < 0)
                        return internal_error(ENOMEM, "validation");
                r = qubes_policy_load_string(content, path, policy_dir, &policy);
                if (r == -EINVAL) {
                        char *const *errors = qubes_policy_errors(policy);
                        ret = admin_error("Policy change validation failed: %s",
                                          errors && errors[0] ? errors[0] : "invalid policy");
                }
                policy = qubes_policy_free(policy);
                if (r < 0)
                        return r == -EINVAL ? ret : internal_error(r, "validation");
        }

        /* then the whole policy as it would be: a mirror of the directory with the change */
        if (asprintf(&shadow, "%s/qubes-policy-admin.XXXXXX", isempty(tmp) ? "/tmp" : tmp) < 0)
                return internal_error(ENOMEM, "validation");
        if (!mkdtemp(shadow))
                return internal_error(errno, "creating a directory for validation");
        r = mirror_dir(policy_dir, shadow, include ? NULL : name, true, include ? name : NULL);
        if (r >= 0 && include) {
                if (asprintf(&shadow_include, "%s/include", shadow) < 0)
                        r = -ENOMEM;
                else if (mkdir(shadow_include, 0755) < 0 && errno != EEXIST)
                        r = -errno;
        }
        if (r >= 0 && content) {
                if (asprintf(&file, "%s/%s%s", shadow, include ? "include/" : "", name) < 0)
                        r = -ENOMEM;
                else
                        r = write_file_atomic(file, content, strlen(content), 0644);
        }
        if (r < 0) {
                ret = internal_error(r, "preparing validation");
                goto finish;
        }

        const char *dirs[] = { shadow, NULL };
        QubesPolicyConfig cfg = { .dirs = dirs };
        r = qubes_policy_load(&cfg, &policy);
        if (r == -EINVAL) {
                char *const *errors = qubes_policy_errors(policy);
                _cleanup_free_ char *msg =
                        replace_all(errors && errors[0] ? errors[0] : "invalid policy", shadow, policy_dir);
                ret = admin_error("Policy change validation failed: %s", msg ?: "invalid policy");
        } else if (r < 0)
                ret = internal_error(r, "validation");
finish:
        qubes_policy_free(policy);
        (void) rm_rf(shadow);
        return ret;
}

/* ---- tokens --------------------------------------------------------------------------- */

static int read_whole(const char *path, char **ret, size_t *ret_len) {
        int r = read_file(path, ret, ret_len);
        if (r < 0)
                return internal_error(r, path);
        return 0;
}

/* The lowercase hex SHA-256 of data, NUL-terminated: libcrypto's EVP. */
static int sha256_hex(const void *data, size_t len, char out[65]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
                return internal_error(EIO, "computing SHA-256");
        for (unsigned i = 0; i < n; i++) {
                out[2 * i] = hex[md[i] >> 4];
                out[2 * i + 1] = hex[md[i] & 15];
        }
        out[2 * n] = 0;
        return 0;
}

static int compute_token(const char *path, char ret[7 + 65]) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;

        r = read_whole(path, &data, &len);
        if (r < 0)
                return r;
        memcpy(ret, "sha256:", 7);
        return sha256_hex(data, len, ret + 7);
}

static int check_token(const char *token, size_t len, const char *path) {
        struct stat st;
        bool exists = lstat(path, &st) == 0;
        char current[7 + 65];
        int r;

        if (len == 3 && memcmp(token, "any", 3) == 0)
                return 0;
        if (len == 3 && memcmp(token, "new", 3) == 0) {
                if (exists)
                        return token_error("File exists but token is 'new'");
                return 0;
        }
        if (len < 7 || memcmp(token, "sha256:", 7) != 0)
                return admin_error("Unrecognized token");
        if (!exists)
                return token_error("File doesn't exist, but token isn't 'new'");
        r = compute_token(path, current);
        if (r < 0)
                return r;
        if (len != strlen(current) || memcmp(token, current, len) != 0)
                return token_error("Token mismatch");
        return 0;
}

/* ---- methods -------------------------------------------------------------------------- */

typedef struct Request {
        const char *arg;
        const char *payload;
        size_t payload_len;
} Request;

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int do_list(bool include) {
        const char *dir = include ? include_dir : policy_dir;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_strbuf_ StrBuf out = {};
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d) {
                if (errno == ENOENT)
                        return 0;
                return internal_error(errno, dir);
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *full = NULL, *name = NULL;
                if (asprintf(&full, "%s/%s", dir, de->d_name) < 0)
                        break;
                if (!is_file(full))
                        continue;
                if (include)
                        name = strdup(de->d_name);
                else if (endswith(de->d_name, POLICY_SUFFIX))
                        name = strndup(de->d_name, strlen(de->d_name) - STRLEN(POLICY_SUFFIX));
                else
                        continue;
                if (!name || strv_consume(&names, TAKE_PTR(name)) < 0) {
                        closedir(d);
                        return internal_error(ENOMEM, "listing");
                }
        }
        closedir(d);
        if (names)
                qsort(names, strv_length(names), sizeof(char *), cmp_str);
        STRV_FOREACH(n, names) {
                strbuf_append(&out, *n);
                strbuf_append_c(&out, '\n');
        }
        if (out.oom)
                return internal_error(ENOMEM, "listing");
        return write_out(out.buf ?: "", out.len);
}

static int do_get(const Request *req, bool include) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        char token[65];
        size_t len;
        int r;

        r = get_path(req->arg, include, &path);
        if (r < 0)
                return r;
        if (!is_file(path))
                return admin_error("Not found: %s", path);
        r = read_whole(path, &data, &len);
        if (r < 0)
                return r;
        r = sha256_hex(data, len, token);
        if (r >= 0)
                r = write_out("sha256:", 7);
        if (r >= 0)
                r = write_out(token, 64);
        if (r >= 0)
                r = write_out("\n", 1);
        if (r >= 0)
                r = write_out(data, len);
        return r;
}

static bool valid_utf8(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s, *end = p + n;

        while (p < end) {
                int k;
                uint32_t c;
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if ((*p & 0xe0) == 0xc0)
                        k = 1, c = *p & 0x1f;
                else if ((*p & 0xf0) == 0xe0)
                        k = 2, c = *p & 0x0f;
                else if ((*p & 0xf8) == 0xf0)
                        k = 3, c = *p & 0x07;
                else
                        return false;
                if (end - p <= k)
                        return false;
                for (int i = 1; i <= k; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        c = c << 6 | (p[i] & 0x3f);
                }
                if ((k == 1 && c < 0x80) || (k == 2 && c < 0x800) || (k == 3 && (c < 0x10000 || c > 0x10ffff)) ||
                    (c >= 0xd800 && c <= 0xdfff))
                        return false;
                p += k + 1;
        }
        return true;
}

static int do_replace(const Request *req, bool include) {
        _cleanup_free_ char *path = NULL, *content = NULL;
        const char *nl;
        struct stat st;
        mode_t mode = 0644;
        size_t len;
        int r;

        r = get_path(req->arg, include, &path);
        if (r < 0)
                return r;
        nl = memchr(req->payload, '\n', req->payload_len);
        if (!nl)
                return admin_error("Payload needs to include first line with token");
        r = check_token(req->payload, (size_t) (nl - req->payload), path);
        if (r < 0)
                return r;

        len = req->payload_len - (size_t) (nl + 1 - req->payload);
        if (memchr(nl + 1, 0, len) || !valid_utf8(nl + 1, len))
                return admin_error("Policy change validation failed: the content is not UTF-8 text");
        content = strndup(nl + 1, len);
        if (!content)
                return internal_error(ENOMEM, "replace");
        r = validate(strrchr(path, '/') + 1, include, content);
        if (r < 0)
                return r;

        if (include && mkdir(include_dir, 0755) < 0 && errno != EEXIST)
                return internal_error(errno, include_dir);
        if (stat(path, &st) == 0)
                mode = st.st_mode & 07777;
        /* a temporary file next to it, fsync, rename, fsync of the directory */
        r = write_file_atomic(path, content, len, mode);
        if (r < 0)
                return internal_error(r, path);
        return 0;
}

static int do_remove(const Request *req, bool include) {
        _cleanup_free_ char *path = NULL, *dir = NULL;
        size_t len = req->payload_len;
        int r;

        r = get_path(req->arg, include, &path);
        if (r < 0)
                return r;
        if (len > 0 && req->payload[len - 1] == '\n')
                len--;
        r = check_token(req->payload, len, path);
        if (r < 0)
                return r;
        if (!is_file(path))
                return admin_error("Not found: %s", path);
        r = validate(strrchr(path, '/') + 1, include, NULL);
        if (r < 0)
                return r;
        if (unlink(path) < 0)
                return internal_error(errno, path);
        _cleanup_close_ int dfd = open(include ? include_dir : policy_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);
        return 0;
}

static int do_get_files(const Request *req) {
        const char *dirs[] = { policy_dir, NULL };
        QubesPolicyConfig cfg = { .dirs = dirs };
        _cleanup_strv_free_ char **files = NULL;
        _cleanup_strbuf_ StrBuf out = {};
        _cleanup_free_ char *prefix = NULL;
        QubesPolicy *policy = NULL;
        int r;

        if (isempty(req->arg))
                return admin_error("Service cannot be empty.");
        if (strchr(req->arg, '+'))
                return admin_error("Service '%s' contains invalid characters: '+'", req->arg);

        r = qubes_policy_load(&cfg, &policy);
        if (r == -EINVAL) {
                char *const *errors = qubes_policy_errors(policy);
                r = admin_error("Policy is invalid: %s", errors && errors[0] ? errors[0] : "?");
                qubes_policy_free(policy);
                return r;
        }
        if (r < 0)
                return internal_error(r, "loading the policy");
        if (asprintf(&prefix, "%s/", policy_dir) < 0) {
                qubes_policy_free(policy);
                return internal_error(ENOMEM, "GetFiles");
        }

        for (size_t i = 0; i < policy->n_rules; i++) {
                const Rule *rule = &policy->rules[i];
                _cleanup_free_ char *name = NULL;

                if (rule->service && !streq(rule->service, req->arg))
                        continue;
                if (startswith(rule->file, prefix)) {
                        /* inside the policy directory: the file's stem */
                        const char *base = strrchr(rule->file, '/') + 1;
                        const char *dot = strrchr(base, '.');
                        name = dot && dot != base ? strndup(base, (size_t) (dot - base)) : strdup(base);
                } else
                        name = strdup(rule->file);
                if (!name) {
                        r = -ENOMEM;
                        break;
                }
                if (!strv_contains(files, name) && strv_consume(&files, TAKE_PTR(name)) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        qubes_policy_free(policy);
        if (r < 0)
                return internal_error(r, "GetFiles");
        STRV_FOREACH(f, files) {
                strbuf_append(&out, *f);
                strbuf_append_c(&out, '\n');
        }
        if (out.oom)
                return internal_error(ENOMEM, "GetFiles");
        return write_out(out.buf ?: "", out.len);
}

typedef enum { M_LIST, M_GET, M_REPLACE, M_REMOVE, M_GET_FILES } MethodKind;

static const struct {
        const char *name;
        MethodKind kind;
        bool include;
        bool no_arg, no_payload;
} methods[] = {
        { "policy.List", M_LIST, false, true, true },
        { "policy.Get", M_GET, false, false, true },
        { "policy.Replace", M_REPLACE, false, false, false },
        { "policy.Remove", M_REMOVE, false, false, false },
        { "policy.GetFiles", M_GET_FILES, false, false, true },
        { "policy.include.List", M_LIST, true, true, true },
        { "policy.include.Get", M_GET, true, false, true },
        { "policy.include.Replace", M_REPLACE, true, false, false },
        { "policy.include.Remove", M_REMOVE, true, false, false },
};

static int handle(const char *service, const Request *req) {
        _cleanup_close_ int lock = -EBADF;
        size_t i;

        for (i = 0; i < ELEMENTSOF(methods); i++)
                if (streq(methods[i].name, service))
                        break;
        if (i == ELEMENTSOF(methods))
                return admin_error("unrecognized method: %s", service);
        for (const char *c = req->arg; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      strchr("+-._", *c)))
                        return admin_error("Invalid characters in the argument");
        if (methods[i].no_arg && !isempty(req->arg))
                return admin_error("Unexpected argument");
        if (methods[i].no_payload && req->payload_len > 0)
                return admin_error("Unexpected payload");

        /* one change at a time, and no reader sees half of one */
        lock = open(policy_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lock < 0)
                return internal_error(errno, policy_dir);
        while (flock(lock, LOCK_EX) < 0)
                if (errno != EINTR)
                        return internal_error(errno, "locking the policy directory");

        switch (methods[i].kind) {
        case M_LIST:
                return do_list(methods[i].include);
        case M_GET:
                return do_get(req, methods[i].include);
        case M_REPLACE:
                return do_replace(req, methods[i].include);
        case M_REMOVE:
                return do_remove(req, methods[i].include);
        case M_GET_FILES:
                return do_get_files(req);
        }
        return internal_error(EINVAL, "method");
}

static void help(void) {
        printf("Usage: /etc/qubes-rpc/policy.METHOD [ARG]   (a qrexec service)\n"
               "       QREXEC_SERVICE_FULL_NAME=policy.METHOD+ARG qubes-policy-admin [--policy-dir=DIR]\n\n"
               "The qrexec policy admin API: policy.List, policy.Get, policy.Replace,\n"
               "policy.Remove, policy.GetFiles and policy.include.List/Get/Replace/Remove.\n"
               "The method comes from QREXEC_SERVICE_FULL_NAME (else the name this program was\n"
               "called as), the argument from it (else ARG), the payload from stdin.\n\n"
               "  --policy-dir=DIR  the policy directory (default $QREXEC_POLICY_DIR, else\n"
               "                    " QUBES_POLICY_DIR ")\n"
               "  -h, --help        show this help\n"
               "      --version     show the version\n\n"
               "--help and --version are options only when no QREXEC_* variable is set (a\n"
               "qrexec call always has them); otherwise they are the service's argument.\n\n"
               "Exit status: 0 done, 1 refused (\"<ExceptionClass> <message>\" on stderr),\n"
               "2 internal error.\n");
}

static int read_payload(char **ret, size_t *ret_len) {
        _cleanup_strbuf_ StrBuf b = {};
        char buf[65536];

        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EBADF)
                                break;
                        return internal_error(errno, "reading the payload");
                }
                if (n == 0)
                        break;
                strbuf_append_n(&b, buf, (size_t) n);
                if (b.len > MAX_PAYLOAD)
                        return admin_error("Payload too large");
        }
        if (b.oom)
                return internal_error(ENOMEM, "reading the payload");
        *ret_len = b.len;
        *ret = strbuf_steal(&b);
        return *ret ? 0 : internal_error(ENOMEM, "reading the payload");
}

int main(int argc, char *argv[]) {
        const char *full = getenv("QREXEC_SERVICE_FULL_NAME");
        _cleanup_free_ char *service = NULL, *payload = NULL, *dir_copy = NULL;
        _cleanup_strv_free_ char **args = NULL;
        const char *arg = "", *env_dir = getenv("QREXEC_POLICY_DIR");
        /* A qrexec call has its QREXEC_* environment; a human at a shell does not. */
        bool human = !full && !getenv("QREXEC_REMOTE_DOMAIN");
        size_t payload_len = 0;
        int r;

        if (!isempty(env_dir))
                policy_dir = env_dir;
        /* Options only in a form a qrexec argument cannot take ('=' and '/' are sanitised away);
         * everything else is the argument, which may start with '-'. */
        for (int i = 1; i < argc; i++) {
                const char *v = startswith(argv[i], "--policy-dir=");
                if (v)
                        policy_dir = v;
                else if (human && (streq(argv[i], "-h") || streq(argv[i], "--help"))) {
                        help();
                        return 0;
                } else if (human && streq(argv[i], "--version"))
                        return version_print("qubes-policy-admin");
                else if (strv_extend(&args, argv[i]) < 0)
                        return EXIT_INTERNAL;
        }
        /* "DIR/" and "DIR" are the same directory; rule file names start with "DIR/" */
        dir_copy = strdup(policy_dir);
        if (!dir_copy)
                return EXIT_INTERNAL;
        for (size_t n = strlen(dir_copy); n > 1 && dir_copy[n - 1] == '/'; n--)
                dir_copy[n - 1] = 0;
        policy_dir = dir_copy;
        if (asprintf(&include_dir, "%s/include", policy_dir) < 0)
                return EXIT_INTERNAL;

        if (!isempty(full)) {
                const char *plus = strchr(full, '+');
                service = plus ? strndup(full, (size_t) (plus - full)) : strdup(full);
                if (plus)
                        arg = plus + 1;
        } else {
                /* the older spelling: the service from our name, the argument in argv[1] */
                const char *slash = strrchr(argv[0], '/');
                service = strdup(slash ? slash + 1 : argv[0]);
                if (args && args[0])
                        arg = args[0];
        }
        if (!service)
                return EXIT_INTERNAL;
        if (human && !startswith(service, "policy.")) {
                fprintf(stderr, "%s: a qrexec service: run it as /etc/qubes-rpc/policy.METHOD (see --help)\n",
                        program_invocation_short_name);
                return EXIT_INTERNAL;
        }

        r = read_payload(&payload, &payload_len);
        if (r >= 0)
                r = handle(service, &(Request){ .arg = arg, .payload = payload, .payload_len = payload_len });
        free(include_dir);
        /* as upstream, the error message has no trailing newline */
        return r < 0 ? -r : 0;
}
