/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The driver table, pools (admin.pool.*) and the validation rules shared by every storage call. */
#include <ctype.h>
#include <inttypes.h>
#include <sys/random.h>
#include <sys/statvfs.h>

#include "storage/pool.h"

#include "storage/storage.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

const StorageDriver *const storage_drivers[] = {
        &storage_driver_file,
        &storage_driver_reflink,
        &storage_driver_kernel,
        NULL,
};

const StorageDriver *storage_driver_find(const char *name) {
        for (size_t i = 0; name && storage_drivers[i]; i++)
                if (streq(storage_drivers[i]->name, name))
                        return storage_drivers[i];
        return NULL;
}

static bool in_list(const char *const *l, const char *s) {
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

/* ---- validation ------------------------------------------------------------------------- */

static const char SAFE_SET[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";

int storage_validate_number(const char *s, const char *name, bool allow_negative, int64_t *ret, QError *e) {
        char cap[64];
        const char *digits = s;
        bool neg = false;

        snprintf(cap, sizeof cap, "%s", name);
        cap[0] = (char) toupper((unsigned char) cap[0]);
        if (allow_negative && digits[0] == '-') {
                digits++;
                neg = true;
        }
        if (!*digits || strspn(digits, "0123456789") != strlen(digits))
                return qerror_set(e, QERR_PROTOCOL, "%s contains non ASCII digits", cap);
        if (strlen(digits) > 19)
                return qerror_set(e, QERR_PROTOCOL, "%s is bigger than 19 decimal digits", cap);
        if (digits[0] == '0' && digits[1])
                return qerror_set(e, QERR_PROTOCOL, "%s contains spurious leading zeros", cap);
        errno = 0;
        unsigned long long v = strtoull(digits, NULL, 10);
        if (errno == ERANGE || v > (unsigned long long) INT64_MAX)
                return qerror_set(e, QERR_VALUE, "%s is too large", cap);
        if (ret)
                *ret = neg ? -(int64_t) v : (int64_t) v;
        return 0;
}

int storage_parse_size(const char *s, const char *name, uint64_t *ret, QError *e) {
        int64_t v;
        int r = storage_validate_number(s, name, false, &v, e);
        if (r < 0)
                return r;
        if ((uint64_t) v > STORAGE_MAX_SIZE) {
                char cap[64];
                snprintf(cap, sizeof cap, "%s", name);
                cap[0] = (char) toupper((unsigned char) cap[0]);
                char max[32];
                snprintf(max, sizeof max, "%" PRIu64, STORAGE_MAX_SIZE);
                return qerror_set(e, QERR_VALUE, "%s is larger than the maximum of %s bytes", cap, max);
        }
        *ret = (uint64_t) v;
        return 0;
}

bool storage_pool_name_valid(const char *name) {
        return name && *name && strlen(name) <= 200 && strspn(name, SAFE_SET) == strlen(name);
}

bool storage_revision_valid(const char *rev) {
        return rev && *rev && strlen(rev) <= 200 &&
               strspn(rev, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.-") == strlen(rev);
}

static const char TOKEN_CHARS[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

bool storage_token_valid(const char *token) {
        return token && strlen(token) == STORAGE_TOKEN_LEN && strspn(token, TOKEN_CHARS) == STORAGE_TOKEN_LEN;
}

int storage_token_new(char ret[STORAGE_TOKEN_LEN + 1]) {
        size_t k = 0;
        while (k < STORAGE_TOKEN_LEN) {
                uint8_t buf[64];
                ssize_t n = getrandom(buf, sizeof buf, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                /* rejection sampling keeps every character equally likely */
                for (ssize_t i = 0; i < n && k < STORAGE_TOKEN_LEN; i++)
                        if (buf[i] < 248)
                                ret[k++] = TOKEN_CHARS[buf[i] % 62];
        }
        ret[k] = 0;
        return 0;
}

/* ---- pools ------------------------------------------------------------------------------ */

const char *pool_config_get(const Pool *p, const char *key) {
        for (char **a = p ? p->config : NULL; a && a[0] && a[1]; a += 2)
                if (streq(a[0], key))
                        return a[1];
        return NULL;
}

int pool_config_set(Pool *p, const char *key, const char *value) {
        for (char **a = p->config; a && a[0] && a[1]; a += 2)
                if (streq(a[0], key))
                        return free_and_strdup(&a[1], value);
        char **l = p->config;
        size_t n = strv_length(l);
        char *k = strdup(key), *v = strdup(value);
        char **nl = realloc(l, sizeof(char *) * (n + 3));
        if (!k || !v || !nl) {
                free(k);
                free(v);
                if (nl)
                        p->config = nl;
                return -ENOMEM;
        }
        nl[n] = k;
        nl[n + 1] = v;
        nl[n + 2] = NULL;
        p->config = nl;
        return 0;
}

static int check_revisions(const StorageDriver *drv, int64_t v, bool pool_level, QError *e) {
        if (v < -1)
                return qerror_set(e, QERR_PROTOCOL, "Value can't be lower than -1");
        if (drv->max_revisions == -2)
                return qerror_set(e, QERR_VALUE, "Pools of driver %s keep no revisions", drv->name);
        if (v > drv->max_revisions)
                return qerror_set(e, QERR_NOT_IMPLEMENTED,
                                  pool_level ? "FilePool supports maximum 1 volume revision to keep"
                                             : "FileVolume supports maximum 1 volume revision to keep");
        return 0;
}

int storage_pool_add(App *app, const char *driver, char *const *config, Pool **ret, QError *e) {
        const StorageDriver *drv = storage_driver_find(driver);
        const char *name = NULL, *dir_path = NULL, *rev = NULL, *eph = NULL, *setup_check = NULL;
        _cleanup_strv_free_ char **stored = NULL;
        _cleanup_free_ char *missing = NULL;
        int64_t revisions = 1;
        bool check = true;
        int r;

        if (!drv)
                return qerror_set(e, QERR_PERMISSION_DENIED, "Argument not in 'available drivers'");
        for (char *const *a = config; a && a[0] && a[1]; a += 2)
                for (char *const *b = config; b != a; b += 2)
                        if (streq(a[0], b[0]))
                                return qerror_set(e, QERR_PROTOCOL, "Options must be unique");
        for (char *const *a = config; a && a[0] && a[1]; a += 2)
                if (streq(a[0], "name"))
                        name = a[1];
        if (!name)
                return qerror_set(e, QERR_PROTOCOL, "Pool configuration must contain key: name");
        if (!storage_pool_name_valid(name))
                return qerror_set(e, QERR_PROTOCOL, "Pool name must be in safe set: %s", SAFE_SET);
        /* not an upstream rule: a pool is a D-Bus object listed to every client (as labels) */
        if (strlen(name) > 64)
                return qerror_set(e, QERR_PROTOCOL, "Pool name must be at most 64 characters");
        for (char *const *a = config; a && a[0] && a[1]; a += 2)
                if (!streq(a[0], "name") && !in_list(drv->params, a[0]))
                        return qerror_set(e, QERR_PROTOCOL, "Unexpected driver options found");
        for (const char *const *req = drv->required; req && *req; req++) {
                bool found = false;
                for (char *const *a = config; a && a[0] && a[1]; a += 2)
                        found = found || streq(a[0], *req);
                if (!found) {
                        char *n = NULL;
                        if (asprintf(&n, "%s%s%s", strempty(missing), missing ? " " : "", *req) < 0)
                                return -ENOMEM;
                        free(missing);
                        missing = n;
                }
        }
        if (missing)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "missing required driver options: %s", missing);

        for (char *const *a = config; a && a[0] && a[1]; a += 2) {
                if (streq(a[0], "dir_path"))
                        dir_path = a[1];
                else if (streq(a[0], "revisions_to_keep"))
                        rev = a[1];
                else if (streq(a[0], "ephemeral_volatile"))
                        eph = a[1];
                else if (streq(a[0], "setup_check"))
                        setup_check = a[1];
        }
        if (!dir_path || dir_path[0] != '/' || strlen(dir_path) >= 4096 || strpbrk(dir_path, "\n\r\t"))
                return qerror_set(e, QERR_VALUE, "dir_path must be an absolute path: %s", strempty(dir_path));
        if (rev) {
                r = storage_validate_number(rev, "revisions to keep", true, &revisions, e);
                if (r < 0)
                        return r;
                r = check_revisions(drv, revisions, true, e);
                if (r < 0)
                        return r;
        }
        if (eph && parse_bool_word(eph) < 0)
                return qerror_set(e, QERR_VALUE, "Invalid literal for boolean value: %s", eph);
        if (setup_check) {
                r = parse_bool_word(setup_check);
                if (r < 0)
                        return qerror_set(e, QERR_VALUE, "Invalid literal for boolean value: %s", setup_check);
                check = r;
        }
        if (app_find_pool(app, name))
                return qerror_set(e, QERR_POOL_IN_USE, "Storage pool is in use: '%s'", name);

        /* strip a trailing slash, as upstream's normpath does */
        _cleanup_free_ char *dir = strdup(dir_path);
        if (!dir)
                return -ENOMEM;
        for (size_t l = strlen(dir); l > 1 && dir[l - 1] == '/'; l--)
                dir[l - 1] = 0;

        r = drv->pool_setup(dir, check, e);
        if (r < 0)
                return r;

        char revbuf[32];
        snprintf(revbuf, sizeof revbuf, "%" PRId64, revisions);
        for (const char *const *k = drv->stored; *k; k++) {
                const char *v = streq(*k, "dir_path")            ? dir
                                : streq(*k, "revisions_to_keep") ? revbuf
                                : streq(*k, "ephemeral_volatile")
                                        ? (eph && parse_bool_word(eph) == 1 ? "True" : "False")
                                        : NULL;
                if (v && (strv_extend(&stored, *k) < 0 || strv_extend(&stored, v) < 0))
                        return -ENOMEM;
        }
        r = app_add_pool(app, name, drv->name, stored);
        if (r < 0)
                return r;
        app_emit_event(app, NULL, "pool-add", "pool", name);
        if (ret)
                *ret = app_find_pool(app, name);
        return 0;
}

bool storage_pool_in_use(App *app, const Pool *p) {
        size_t i = 0;
        void *v;

        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                Domain *d = v;
                for (size_t k = 0; k < d->n_volumes; k++)
                        if (streq_ptr(volume_config_get(&d->volumes[k], "pool"), p->name))
                                return true;
        }
        for (size_t k = 0; k < n_global_props; k++) {
                const PropDef *g = &global_props[k];
                PropValue pv = {};
                bool used;
                if (!startswith(g->name, "default_pool"))
                        continue;
                if (app_property_get(app, g, &pv, NULL) < 0)
                        continue;
                used = streq_ptr(pv.value, p->name);
                prop_value_done(&pv);
                if (used)
                        return true;
        }
        return false;
}

int storage_pool_remove(App *app, const char *name, QError *e) {
        Pool *p = app_find_pool(app, name);
        _cleanup_free_ char *n = NULL;

        if (!p)
                return qerror_set(e, QERR_POOL_NOT_FOUND, "No such storage pool: %s", name);
        if (storage_pool_in_use(app, p))
                return qerror_set(e, QERR_POOL_IN_USE, "Storage pool is in use: '%s'", name);
        n = strdup(name);
        if (!n)
                return -ENOMEM;
        app_emit_event(app, NULL, "pool-pre-delete", "pool", n);
        int r = app_remove_pool(app, n);
        if (r < 0)
                return r;
        app_emit_event(app, NULL, "pool-delete", "pool", n);
        return 0;
}

int storage_pool_set_revisions_to_keep(App *app, Pool *p, const char *value, QError *e) {
        const StorageDriver *drv = storage_driver_find(p->driver);
        int64_t v;
        char buf[32];
        int r = storage_validate_number(value, "revisions to keep", true, &v, e);
        if (r < 0)
                return r;
        if (v < -1)
                return qerror_set(e, QERR_PROTOCOL, "Value can't be lower than -1");
        if (!drv)
                return qerror_set(e, QERR_STORAGE_POOL, "Storage driver %s is not supported", p->driver);
        r = check_revisions(drv, v, true, e);
        if (r < 0)
                return r;
        snprintf(buf, sizeof buf, "%" PRId64, v);
        return pool_config_set(p, "revisions_to_keep", buf);
}

int storage_pool_set_ephemeral_volatile(App *app, Pool *p, const char *value, QError *e) {
        const StorageDriver *drv = storage_driver_find(p->driver);
        int b = parse_bool_word(value);
        if (b < 0)
                return qerror_set(e, QERR_PROTOCOL, "Payload is not boolean ASCII");
        if (!drv || !in_list(drv->params, "ephemeral_volatile"))
                return qerror_set(e, QERR_VALUE, "Pools of driver %s have no ephemeral_volatile", p->driver);
        return pool_config_set(p, "ephemeral_volatile", b ? "True" : "False");
}

bool storage_pool_size_usage(const Pool *p, uint64_t *size, uint64_t *usage) {
        const StorageDriver *drv = storage_driver_find(p->driver);
        const char *dir = pool_config_get(p, "dir_path");
        struct statvfs s;

        if (!drv || !drv->dir_pool || !dir || statvfs(dir, &s) < 0)
                return false;
        *size = (uint64_t) s.f_frsize * s.f_blocks;
        *usage = (uint64_t) s.f_frsize * (s.f_blocks - s.f_bfree);
        return true;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* A directory as upstream's os.path.realpath() gives it: symlinks resolved where they exist (a
 * directory that is not there yet is taken as written, trailing slashes stripped). */
static char *real_dir(const char *dir) {
        char *r = realpath(dir, NULL);
        if (r || errno == ENOMEM)
                return r;
        r = strdup(dir);
        for (size_t l = r ? strlen(r) : 0; l > 1 && r[l - 1] == '/'; l--)
                r[l - 1] = 0;
        return r;
}

/* Upstream's included_in (search_pool_containing_dir): the first other pool, in qubes.xml order,
 * with a directory that is this pool's or holds it. */
static const Pool *included_in(App *app, const Pool *p) {
        const char *dir = pool_config_get(p, "dir_path");
        _cleanup_free_ char *mine = dir ? real_dir(dir) : NULL;

        for (size_t i = 0; mine && i < app->n_pools; i++) {
                const Pool *o = app->pools[i];
                const char *od = pool_config_get(o, "dir_path");
                _cleanup_free_ char *theirs = NULL;
                size_t l;

                if (o == p || !od || !(theirs = real_dir(od)))
                        continue;
                l = strlen(theirs);
                if (streq(theirs, "/") || (strncmp(mine, theirs, l) == 0 && (mine[l] == '/' || mine[l] == 0)))
                        return o;
        }
        return NULL;
}

void storage_pools_setup(App *app) {
        for (size_t i = 0; i < app->n_pools; i++) {
                const Pool *p = app->pools[i];
                const StorageDriver *drv = storage_driver_find(p->driver);
                const char *dir = pool_config_get(p, "dir_path");
                _cleanup_qerror_ QError e = {};

                /* the reflink check belongs to admin.pool.Add: a pool that passed it keeps working */
                if (drv && dir && drv->pool_setup(dir, false, &e) < 0) {
                        _cleanup_free_ char *msg = qerror_message(&e);
                        log_warning("Cannot set up storage pool %s at %s: %s", p->name, dir, strempty(msg));
                }
        }
}

char *storage_pool_info(App *app, const Pool *p) {
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_free_ char **lines = NULL;
        size_t n = 0, cap = strv_length(p->config) / 2 + 3;
        uint64_t size, usage;
        const StorageDriver *drv = storage_driver_find(p->driver);

        lines = new0(char *, cap);
        if (!lines)
                return NULL;
        if (asprintf(&lines[n++], "name=%s", p->name) < 0 || asprintf(&lines[n++], "driver=%s", p->driver) < 0)
                goto oom;
        for (char **a = p->config; a && a[0] && a[1]; a += 2)
                if (asprintf(&lines[n++], "%s=%s", a[0], a[1]) < 0)
                        goto oom;
        qsort(lines, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n; i++)
                strbuf_printf(&b, "%s\n", lines[i]);
        if (storage_pool_size_usage(p, &size, &usage))
                strbuf_printf(&b, "size=%" PRIu64 "\nusage=%" PRIu64 "\n", size, usage);
        if (drv && pool_config_get(p, "dir_path")) {
                const Pool *in = included_in(app, p);
                if (in)
                        strbuf_printf(&b, "included_in=%s\n", in->name);
        }
        for (size_t i = 0; i < n; i++)
                free(lines[i]);
        if (b.oom)
                return NULL;
        return strbuf_steal(&b);
oom:
        for (size_t i = 0; i < n; i++)
                free(lines[i]);
        return NULL;
}

char *storage_pool_usage_details(const Pool *p) {
        uint64_t size, usage;
        char *s = NULL;
        if (!storage_pool_size_usage(p, &size, &usage))
                return strdup("");
        if (asprintf(&s, "data_size=%" PRIu64 "\ndata_usage=%" PRIu64 "\n", size, usage) < 0)
                return NULL;
        return s;
}

int storage_pool_list_vids(App *app, const Pool *p, char ***ret) {
        const StorageDriver *drv = storage_driver_find(p->driver);
        _cleanup_strv_free_ char **l = new0(char *, 1);
        size_t i = 0;
        void *v;

        if (drv && drv->list_vids)
                return drv->list_vids(pool_config_get(p, "dir_path"), ret);
        if (!l)
                return -ENOMEM;
        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                Domain *d = v;
                for (size_t k = 0; k < d->n_volumes; k++) {
                        const char *vid = volume_config_get(&d->volumes[k], "vid");
                        if (vid && streq_ptr(volume_config_get(&d->volumes[k], "pool"), p->name) &&
                            !strv_contains(l, vid) && strv_extend(&l, vid) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}
