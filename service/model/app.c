/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "model/app.h"

#include "model/model.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/strbuf.h"
#include "util/strv.h"

#define MAX_DEFAULT_LABEL 8
#define MAX_DISPID 10000
#define PRIVATE_IMG_SIZE "2147483648"
#define ROOT_IMG_SIZE "10737418240"
#define DISPVM_VOLATILE_SIZE "12884901888"

static const struct {
        const char *name;
        const char *color;
} default_labels[MAX_DEFAULT_LABEL] = {
        { "red", "0xcc0000" },  { "orange", "0xf57900" }, { "yellow", "0xedd400" }, { "green", "0x73d216" },
        { "gray", "0x555555" }, { "blue", "0x3465a4" },   { "purple", "0x75507b" }, { "black", "0x000000" },
};

/* Python's repr() of a str, for messages that upstream builds with {!r}: the quote character
 * is chosen the way Python does, so a name with a ' reads the same as upstream's. */
static char *py_repr(const char *s) {
        _cleanup_strbuf_ StrBuf b = {};
        char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';

        strbuf_append_c(&b, q);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '\\')
                        strbuf_append(&b, "\\\\");
                else if (*p == (unsigned char) q)
                        strbuf_printf(&b, "\\%c", q);
                else if (*p == '\n')
                        strbuf_append(&b, "\\n");
                else if (*p == '\r')
                        strbuf_append(&b, "\\r");
                else if (*p == '\t')
                        strbuf_append(&b, "\\t");
                else if (*p < 0x20 || *p == 0x7f)
                        strbuf_printf(&b, "\\x%02x", *p);
                else
                        strbuf_append_c(&b, (char) *p);
        }
        strbuf_append_c(&b, q);
        return strbuf_steal(&b);
}

static int qerror_set_repr(QError *err, QubesErrorCode code, const char *format, const char *value) {
        _cleanup_free_ char *r = py_repr(value);
        if (!r)
                return -ENOMEM;
        return qerror_set(err, code, format, r);
}

/* ---- app lifetime ------------------------------------------------------------------------ */

int app_new(const char *state_dir, App **ret) {
        App *app;

        app = new0(App, 1);
        if (!app)
                return -ENOMEM;
        app->durable_fd = -EBADF;

        app->state_dir = strdup(state_dir);
        app->domains = hashmap_new();
        app->domains_by_uuid = hashmap_new();
        app->by_qid = new0(Domain *, QUBES_MAX_QID + 1);
        app->props = new0(PropSlot, n_global_props);
        if (!app->state_dir || !app->domains || !app->domains_by_uuid || !app->by_qid || !app->props ||
            asprintf(&app->xml_path, "%s/qubes.xml", state_dir) < 0) {
                app->xml_path = NULL;
                app_free(app);
                return -ENOMEM;
        }

        long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page_size > 0)
                app->host_memory_mib = (uint64_t) pages * (uint64_t) page_size / (1024 * 1024);
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        app->host_cpus = cpus > 0 ? (unsigned) cpus : 1;

        *ret = app;
        return 0;
}

static Label *label_free(Label *l) {
        if (!l)
                return NULL;
        free(l->name);
        free(l->color);
        free(l);
        return NULL;
}

static Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        free(p->name);
        free(p->driver);
        strv_free(p->config);
        free(p);
        return NULL;
}

App *app_free(App *app) {
        if (!app)
                return NULL;

        if (app->by_qid)
                for (size_t i = 0; i <= QUBES_MAX_QID; i++)
                        domain_free(app->by_qid[i]);
        free(app->by_qid);
        free(app->sorted);
        hashmap_free(app->domains);
        hashmap_free(app->domains_by_uuid);

        for (size_t i = 0; i < app->n_labels; i++)
                label_free(app->labels[i]);
        free(app->labels);
        for (size_t i = 0; i < app->n_pools; i++)
                pool_free(app->pools[i]);
        free(app->pools);

        if (app->props)
                for (size_t i = 0; i < n_global_props; i++)
                        free(app->props[i].value);
        free(app->props);

        app_txn_done(app, false);
        for (size_t i = 0; i < app->n_removed; i++)
                domain_free(app->removed[i]);
        free(app->removed);
        if (app->durable_fd >= 0)
                close(app->durable_fd);
        free(app->durable_globals);
        free(app->listeners);
        free(app->state_dir);
        free(app->xml_path);
        free(app);
        return NULL;
}

static int global_store(App *app, const char *name, const char *value) {
        const PropDef *p = global_prop_find(name);
        if (!p)
                return -ENOENT;
        PropSlot *s = &app->props[global_prop_index(p)];
        int r = free_and_strdup(&s->value, value);
        if (r < 0)
                return r;
        s->set = true;
        return 0;
}

int app_init_default(App *app) {
        _cleanup_free_ char *kernels = NULL;
        Domain *dom0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(default_labels); i++) {
                r = app_add_label(app, (int) i + 1, default_labels[i].name, default_labels[i].color);
                if (r < 0 && r != -EEXIST)
                        return r;
        }

        if (!app_find_pool(app, "varlibqubes")) {
                char *const config[] = { (char *) "dir_path",
                                         app->state_dir,
                                         (char *) "revisions_to_keep",
                                         (char *) "1",
                                         (char *) "ephemeral_volatile",
                                         (char *) "False",
                                         NULL };
                r = app_add_pool(app, "varlibqubes", "file", config);
                if (r < 0)
                        return r;
        }
        if (!app_find_pool(app, "linux-kernel")) {
                if (asprintf(&kernels, "%s/vm-kernels", app->state_dir) < 0)
                        return -ENOMEM;
                char *const config[] = { (char *) "dir_path", kernels, NULL };
                r = app_add_pool(app, "linux-kernel", "linux-kernel", config);
                if (r < 0)
                        return r;
        }

        /* qubes-create sets this one explicitly, so it is saved like upstream's */
        r = global_store(app, "default_pool_kernel", "linux-kernel");
        if (r < 0)
                return r;

        dom0 = app_dom0(app);
        if (!dom0) {
                r = app_add_domain(app, QUBES_CLASS_ADMINVM, "dom0", 0, "00000000-0000-0000-0000-000000000000", &dom0);
                if (r < 0)
                        return r;
        }
        const PropDef *lp = domain_prop_find(QUBES_CLASS_ADMINVM, "label");
        if (lp && !domain_slot(dom0, lp)->set) {
                r = domain_property_store(dom0, lp, "black");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- lookups ----------------------------------------------------------------------------- */

Domain *app_get_domain(const App *app, const char *name) {
        return name ? hashmap_get(app->domains, name) : NULL;
}

Domain *app_get_domain_by_uuid(const App *app, const char *uuid) {
        return uuid ? hashmap_get(app->domains_by_uuid, uuid) : NULL;
}

Domain *app_get_domain_by_qid(const App *app, int64_t qid) {
        if (qid < 0 || qid > QUBES_MAX_QID)
                return NULL;
        return app->by_qid[qid];
}

Domain *app_dom0(const App *app) {
        return app->by_qid[0];
}

static bool uuid_is_valid_lower(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        }
        return true;
}

int app_resolve_domain(const App *app, const char *ref, Domain **ret, QError *err) {
        const char *u = startswith(ref, "uuid:");
        Domain *d;
        int r;

        if (u) {
                if (strlen(ref) != 41 || !uuid_is_valid_lower(u))
                        return qerror_set_repr(err, QERR_VM_INVALID_UUID, "VM UUID is not valid: %s", u);
                d = app_get_domain_by_uuid(app, u);
        } else {
                r = validate_vm_name(ref, err);
                if (r < 0)
                        return r;
                d = app_get_domain(app, ref);
        }
        if (!d)
                return app_set_domain_not_found(err, ref);
        *ret = d;
        return 0;
}

int app_set_domain_not_found(QError *err, const char *ref) {
        return qerror_set_repr(err, QERR_VM_NOT_FOUND, "No such domain: %s", ref);
}

static Domain **newa_copy_domains(Domain *const *l, size_t n) {
        Domain **c = new0(Domain *, n + 1);
        if (c)
                memcpy(c, l, sizeof(Domain *) * n);
        return c;
}

static int cmp_domains(const void *a, const void *b) {
        const Domain *x = *(Domain *const *) a, *y = *(Domain *const *) b;
        if (x->klass == QUBES_CLASS_ADMINVM || y->klass == QUBES_CLASS_ADMINVM)
                return (y->klass == QUBES_CLASS_ADMINVM) - (x->klass == QUBES_CLASS_ADMINVM);
        return strcmp(x->name, y->name);
}

void app_domains_changed(App *app) {
        app->sorted = mfree(app->sorted);
}

Domain **app_domains_sorted(const App *app, size_t *ret_n) {
        size_t n = hashmap_size(app->domains), j = 0, i = 0;
        void *v;

        /* Listings are frequent and qubes come and go rarely: sort once, copy after. The cache
         * is not part of the app's value, hence the cast. */
        if (!app->sorted) {
                Domain **l = new0(Domain *, n + 1);
                if (!l)
                        return NULL;
                while (hashmap_iterate(app->domains, &i, NULL, &v))
                        l[j++] = v;
                l[j] = NULL;
                qsort(l, j, sizeof(Domain *), cmp_domains);
                ((App *) app)->sorted = l;
        }
        Domain **copy = newa_copy_domains(app->sorted, n);
        if (copy && ret_n)
                *ret_n = n;
        return copy;
}

/* ---- adding and creating domains --------------------------------------------------------- */

static int random_uuid(char ret[static 37]) {
        uint8_t b[16];
        size_t got = 0;

        while (got < sizeof b) {
                ssize_t k = getrandom(b + got, sizeof b - got, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) k;
        }
        b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

static void app_unregister_domain(App *app, Domain *d) {
        app_domains_changed(app);
        if (hashmap_get(app->domains, d->name) == d)
                hashmap_remove(app->domains, d->name);
        if (hashmap_get(app->domains_by_uuid, d->uuid) == d)
                hashmap_remove(app->domains_by_uuid, d->uuid);
        if (d->qid >= 0 && d->qid <= QUBES_MAX_QID && app->by_qid[d->qid] == d)
                app->by_qid[d->qid] = NULL;
}

void app_forget_domain(App *app, Domain *d) {
        app_unregister_domain(app, d);
}

int app_adopt_domain(App *app, Domain *d) {
        int r;

        if (hashmap_contains(app->domains, d->name) || app->by_qid[d->qid] ||
            hashmap_contains(app->domains_by_uuid, d->uuid))
                return -EEXIST;
        app_domains_changed(app);
        r = hashmap_put(app->domains, d->name, d);
        if (r < 0)
                return r;
        r = hashmap_put(app->domains_by_uuid, d->uuid, d);
        if (r < 0) {
                hashmap_remove(app->domains, d->name);
                return r;
        }
        app->by_qid[d->qid] = d;
        d->app = app;
        return 0;
}

int app_add_domain(App *app, QubesClass klass, const char *name, int64_t qid, const char *uuid, Domain **ret) {
        Domain *d;
        int r;

        if (klass < 0 || klass >= _QUBES_CLASS_MAX || !name || qid < 0 || qid > QUBES_MAX_QID)
                return -EINVAL;
        if (uuid) {
                /* accept upper case from old files, keep the canonical lower-case form */
                if (strlen(uuid) != 36)
                        return -EINVAL;
        }
        if (hashmap_contains(app->domains, name) || app->by_qid[qid])
                return -EEXIST;

        d = new0(Domain, 1);
        if (!d)
                return -ENOMEM;
        d->app = app;
        d->klass = klass;
        d->qid = qid;
        d->name = strdup(name);
        d->features = hashmap_new();
        d->tags = hashmap_new();
        if (!d->name || !d->features || !d->tags) {
                domain_free(d);
                return -ENOMEM;
        }

        if (uuid) {
                for (size_t i = 0; i < 36; i++)
                        d->uuid[i] = (char) tolower((unsigned char) uuid[i]);
                d->uuid[36] = 0;
                if (!uuid_is_valid_lower(d->uuid)) {
                        domain_free(d);
                        return -EINVAL;
                }
        } else {
                r = random_uuid(d->uuid);
                if (r < 0) {
                        domain_free(d);
                        return r;
                }
        }
        if (hashmap_contains(app->domains_by_uuid, d->uuid)) {
                domain_free(d);
                return -EEXIST;
        }

        if (klass != QUBES_CLASS_ADMINVM) {
                /* AdminVM has these as fixed defaults; every other class saves them */
                char qidbuf[32];
                snprintf(qidbuf, sizeof qidbuf, "%" PRId64, qid);
                const struct {
                        const char *name, *value;
                } ids[] = { { "name", name }, { "qid", qidbuf }, { "uuid", d->uuid } };
                for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                        const PropDef *p = domain_prop_find(klass, ids[i].name);
                        if (!p)
                                continue;
                        r = domain_property_store(d, p, ids[i].value);
                        if (r < 0) {
                                domain_free(d);
                                return r;
                        }
                }
        }
        d->power_state = klass == QUBES_CLASS_ADMINVM ? "Running" : "Halted";

        app_domains_changed(app);
        r = hashmap_put(app->domains, d->name, d);
        if (r < 0) {
                domain_free(d);
                return r;
        }
        r = hashmap_put(app->domains_by_uuid, d->uuid, d);
        if (r < 0) {
                hashmap_remove(app->domains, d->name);
                domain_free(d);
                return r;
        }
        app->by_qid[qid] = d;

        if (ret)
                *ret = d;
        return 0;
}

static const VolumeConfig *volume_find(const Domain *d, const char *name) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_volumes; i++)
                if (streq(d->volumes[i].name, name))
                        return &d->volumes[i];
        return NULL;
}

static const char *volume_attr(const VolumeConfig *v, const char *key) {
        if (!v)
                return NULL;
        for (char **a = v->attrs; a && a[0] && a[1]; a += 2)
                if (streq(a[0], key))
                        return a[1];
        return NULL;
}

static const char *pool_config(const Pool *p, const char *key) {
        if (!p)
                return NULL;
        for (char **a = p->config; a && a[0] && a[1]; a += 2)
                if (streq(a[0], key))
                        return a[1];
        return NULL;
}

static const char *requested_pool(const CreateParams *params, const char *volume) {
        for (char **a = params->volume_pools; a && a[0] && a[1]; a += 2)
                if (streq(a[0], volume))
                        return a[1];
        return NULL;
}

/* The pool of a new non-snapshot volume: pool:<volume>=, then pool=, then the global default
 * for that volume. */
static char *volume_pool(App *app, const CreateParams *params, const char *volume, bool movable) {
        const char *r = requested_pool(params, volume);
        if (r)
                return strdup(r);
        if (movable && params->pool)
                return strdup(params->pool);

        char prop[64];
        snprintf(prop, sizeof prop, "default_pool_%s", volume);
        const PropDef *p = global_prop_find(prop);
        PropValue v = {};
        if (p && app_property_get(app, p, &v, NULL) >= 0 && v.value)
                return v.value;
        prop_value_done(&v);
        return strdup("varlibqubes");
}

static int volume_add(Domain *d, const char *name, char **attrs) {
        char **packed = volume_attrs_pack(attrs);
        strv_free(attrs);
        if (!packed)
                return -ENOMEM;
        VolumeConfig *n = realloc(d->volumes, sizeof(VolumeConfig) * (d->n_volumes + 1));
        if (!n) {
                free(packed);
                return -ENOMEM;
        }
        d->volumes = n;
        d->volumes[d->n_volumes].name = strdup(name);
        if (!d->volumes[d->n_volumes].name) {
                free(packed);
                return -ENOMEM;
        }
        d->volumes[d->n_volumes++].attrs = packed;
        domain_mark_changed(d);
        return 0;
}

/* Builds one volume's attributes in upstream's XML attribute order. */
static int volume_build(Domain *d, const char *name, const char *pool, const char *vid, const char *revisions, bool rw,
                        bool save_on_stop, bool snap_on_start, const char *ephemeral, const char *size,
                        const char *source) {
        _cleanup_strv_free_ char **a = NULL;
        const char *kv[] = {
                "pool",
                pool,
                "vid",
                vid,
                "revisions_to_keep",
                revisions,
                "rw",
                rw ? "True" : "False",
                "save_on_stop",
                save_on_stop ? "True" : "False",
                "snap_on_start",
                snap_on_start ? "True" : "False",
                "ephemeral",
                ephemeral,
                "size",
                size,
                "source",
                source,
        };

        for (size_t i = 0; i < ELEMENTSOF(kv); i += 2) {
                if (!kv[i + 1])
                        continue;
                if (strv_extend(&a, kv[i]) < 0 || strv_extend(&a, kv[i + 1]) < 0)
                        return -ENOMEM;
        }
        return volume_add(d, name, TAKE_PTR(a));
}

static const char *pool_revisions(const App *app, const char *pool) {
        const char *r = pool_config(app_find_pool(app, pool), "revisions_to_keep");
        return r ?: "1";
}

/* The volume that a snapshot of 'volume' of d starts from: follow template links until a
 * volume without a source (upstream resolves snap_on_start sources the same way). */
static const VolumeConfig *volume_origin(Domain *d, const char *volume, Domain **ret_owner) {
        for (size_t guard = 0; d && guard <= QUBES_MAX_QID; guard++) {
                const VolumeConfig *v = volume_find(d, volume);
                if (v && !volume_attr(v, "source")) {
                        *ret_owner = d;
                        return v;
                }
                d = domain_template(d);
        }
        *ret_owner = NULL;
        return NULL;
}

static int create_volumes(App *app, Domain *d, Domain *tpl, const CreateParams *params) {
        _cleanup_free_ char *vid_root = NULL, *vid_private = NULL, *vid_volatile = NULL, *kernel = NULL,
                            *pool_private = NULL, *pool_volatile = NULL, *pool_root = NULL, *pool_kernel = NULL;
        const char *prefix = d->klass == QUBES_CLASS_TEMPLATEVM ? "vm-templates" : "appvms";
        int r;

        if (asprintf(&vid_root, "%s/%s/root", prefix, d->name) < 0 ||
            asprintf(&vid_private, "%s/%s/private", prefix, d->name) < 0 ||
            asprintf(&vid_volatile, "%s/%s/volatile", prefix, d->name) < 0)
                return -ENOMEM;

        kernel = domain_property_string(d, "kernel");
        if (kernel && !*kernel)
                kernel = mfree(kernel);

        if (d->klass == QUBES_CLASS_DISPVM) {
                /* A disposable takes pools, rw and explicit ephemeral from its template's volumes. */
                const VolumeConfig *tv;
                Domain *owner;
                const VolumeConfig *origin = volume_origin(tpl, "root", &owner);
                const char *tpool;

                tv = volume_find(tpl, "root");
                tpool = volume_attr(origin, "pool") ?: volume_attr(tv, "pool");
                pool_root = tpool ? strdup(tpool) : volume_pool(app, params, "root", false);
                if (!pool_root)
                        return -ENOMEM;
                r = volume_build(d, "root", pool_root, vid_root, "0", !streq_ptr(volume_attr(tv, "rw"), "False"), false,
                                 true, volume_attr(tv, "ephemeral"), volume_attr(origin, "size") ?: ROOT_IMG_SIZE,
                                 volume_attr(origin, "vid"));
                if (r < 0)
                        return r;

                tv = volume_find(tpl, "private");
                tpool = volume_attr(tv, "pool");
                pool_private = tpool ? strdup(tpool) : volume_pool(app, params, "private", false);
                if (!pool_private)
                        return -ENOMEM;
                r = volume_build(d, "private", pool_private, vid_private, "0",
                                 !streq_ptr(volume_attr(tv, "rw"), "False"), false, true, volume_attr(tv, "ephemeral"),
                                 volume_attr(tv, "size") ?: PRIVATE_IMG_SIZE, volume_attr(tv, "vid"));
                if (r < 0)
                        return r;

                tv = volume_find(tpl, "volatile");
                tpool = volume_attr(tv, "pool");
                pool_volatile = tpool ? strdup(tpool) : volume_pool(app, params, "volatile", true);
                if (!pool_volatile)
                        return -ENOMEM;
                r = volume_build(d, "volatile", pool_volatile, vid_volatile, "0",
                                 !streq_ptr(volume_attr(tv, "rw"), "False"), false, false, volume_attr(tv, "ephemeral"),
                                 DISPVM_VOLATILE_SIZE, NULL);
                if (r < 0)
                        return r;

                tv = volume_find(tpl, "kernel");
                tpool = volume_attr(tv, "pool");
                pool_kernel = strdup(tpool ?: requested_pool(params, "kernel") ?: "linux-kernel");
        } else {
                if (d->klass == QUBES_CLASS_APPVM) {
                        Domain *owner;
                        const VolumeConfig *origin = volume_origin(tpl, "root", &owner);
                        const char *tpool = volume_attr(origin, "pool");

                        /* a snapshot stays in the pool of its origin */
                        pool_root = tpool ? strdup(tpool) : volume_pool(app, params, "root", false);
                        if (!pool_root)
                                return -ENOMEM;
                        r = volume_build(d, "root", pool_root, vid_root, "0", true, false, true, NULL,
                                         volume_attr(origin, "size") ?: ROOT_IMG_SIZE, volume_attr(origin, "vid"));
                } else {
                        pool_root = volume_pool(app, params, "root", true);
                        if (!pool_root)
                                return -ENOMEM;
                        r = volume_build(d, "root", pool_root, vid_root, pool_revisions(app, pool_root), true, true,
                                         false, NULL, ROOT_IMG_SIZE, NULL);
                }
                if (r < 0)
                        return r;

                pool_private = volume_pool(app, params, "private", true);
                if (!pool_private)
                        return -ENOMEM;
                r = volume_build(d, "private", pool_private, vid_private, pool_revisions(app, pool_private), true, true,
                                 false, NULL, PRIVATE_IMG_SIZE, NULL);
                if (r < 0)
                        return r;

                pool_volatile = volume_pool(app, params, "volatile", true);
                if (!pool_volatile)
                        return -ENOMEM;
                r = volume_build(d, "volatile", pool_volatile, vid_volatile, "0", true, false, false, NULL,
                                 ROOT_IMG_SIZE, NULL);
                if (r < 0)
                        return r;

                /* read-only, so pool= does not move it */
                pool_kernel = strdup(requested_pool(params, "kernel") ?: "linux-kernel");
        }
        if (!pool_kernel)
                return -ENOMEM;
        r = volume_build(d, "kernel", pool_kernel, kernel, "0", false, false, false, NULL, NULL, NULL);
        if (r < 0)
                return r;

        /* Extra volumes of the template come along, without their vid. */
        if (tpl)
                for (size_t i = 0; i < tpl->n_volumes; i++) {
                        const VolumeConfig *v = &tpl->volumes[i];
                        _cleanup_strv_free_ char **a = NULL;

                        if (volume_find(d, v->name))
                                continue;
                        for (char **kv = v->attrs; kv && kv[0] && kv[1]; kv += 2) {
                                if (streq(kv[0], "vid"))
                                        continue;
                                if (strv_extend(&a, kv[0]) < 0 || strv_extend(&a, kv[1]) < 0)
                                        return -ENOMEM;
                        }
                        r = volume_add(d, v->name, TAKE_PTR(a));
                        if (r < 0)
                                return r;
                }
        return 0;
}

static int64_t unused_qid(const App *app) {
        for (int64_t i = 1; i < QUBES_MAX_QID; i++)
                if (!app->by_qid[i])
                        return i;
        return -1;
}

static bool dispid_used(const App *app, int64_t dispid) {
        size_t i = 0;
        void *v;
        char buf[32];

        snprintf(buf, sizeof buf, "%" PRId64, dispid);
        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                Domain *d = v;
                const PropDef *p = domain_prop_find(d->klass, "dispid");
                if (!p)
                        continue;
                const PropSlot *s = domain_slot(d, p);
                if (s->set && streq_ptr(s->value, buf))
                        return true;
        }
        return false;
}

static int64_t unused_dispid(const App *app) {
        /* as upstream: a bounded number of random draws, not a scan, so ids are not predictable */
        for (int tries = 0; tries < 100; tries++) {
                uint32_t x;
                if (getrandom(&x, sizeof x, 0) != sizeof x)
                        continue;
                int64_t id = (int64_t) (x % MAX_DISPID);
                if (!dispid_used(app, id))
                        return id;
        }
        return -1;
}

/* A disposable starts with what its template has explicitly set, as upstream's DispVM does. */
static int dispvm_copy_from_template(Domain *d, Domain *tpl) {
        const PropDef *const *props = domain_props_of_class(d->klass);
        size_t i = 0;
        const char *k;
        void *v;
        int r;

        for (; props && *props; props++) {
                const PropDef *p = *props, *tp;
                if (p->flags & (PROP_NO_CLONE | PROP_STATELESS | PROP_WRITE_ONCE | PROP_READONLY))
                        continue;
                if (streq(p->name, "template") || domain_slot(d, p)->set)
                        continue;
                tp = domain_prop_find(tpl->klass, p->name);
                if (!tp || !domain_slot(tpl, tp)->set)
                        continue;
                r = domain_property_store(d, p, domain_slot(tpl, tp)->value);
                if (r < 0)
                        return r;
        }

        while (hashmap_iterate(tpl->features, &i, &k, &v)) {
                Feature *f = v;
                if (startswith(k, "preload-dispvm"))
                        continue;
                r = domain_feature_store(d, f->name, f->value);
                if (r < 0)
                        return r;
        }

        const char **tags = domain_tags_sorted(tpl);
        if (!tags)
                return -ENOMEM;
        for (const char **t = tags; *t; t++) {
                r = domain_tag_add(d, *t, NULL);
                if (r < 0) {
                        free(tags);
                        return r;
                }
        }
        free(tags);
        return 0;
}

static int add_auto_tag(Domain *d, const char *prop, const char *prefix) {
        _cleanup_free_ char *target = NULL, *tag = NULL;

        if (!domain_prop_find(d->klass, prop))
                return 0;
        target = domain_property_string(d, prop);
        if (!target)
                return 0;
        if (asprintf(&tag, "%s-%s", prefix, target) < 0)
                return -ENOMEM;
        return domain_tag_add(d, tag, NULL);
}

int app_create_domain_begin(App *app, const CreateParams *params, Domain **ret, QError *err) {
        _cleanup_free_ char *dispname = NULL, *tplname_default = NULL, *creator_tag = NULL;
        const char *klass_name = qubes_class_to_string(params->klass);
        const char *name = params->name, *tplname = NULL;
        Domain *tpl = NULL, *d = NULL;
        Label *label;
        int64_t qid, dispid = -1;
        int r;

        if (params->klass < 0 || params->klass >= _QUBES_CLASS_MAX || params->klass == QUBES_CLASS_ADMINVM)
                return qerror_set(err, QERR_VALUE, "Cannot create a qube of class %s", strempty(klass_name));
        if (name) {
                r = validate_vm_name(name, err);
                if (r < 0)
                        return r;
        } else if (params->klass != QUBES_CLASS_DISPVM)
                return qerror_set(err, QERR_PROTOCOL, "Creation requested without key: name");
        if (params->template_name && !qubes_class_has_template(params->klass))
                return qerror_set(err, QERR_PROTOCOL, "%s cannot be based on template", klass_name);
        if (params->creator) {
                if (asprintf(&creator_tag, "created-by-%s", params->creator) < 0)
                        return -ENOMEM;
                r = validate_tag(creator_tag, err);
                if (r < 0)
                        return r;
        }

        /* The order below is upstream's: none of these may tell a caller more than its
         * permission allowed before the permission check, which the caller did already. */
        if (name && app_get_domain(app, name))
                return qerror_set(err, QERR_VM_ALREADY_EXISTS, "Qube already exists: %s", name);

        if (qubes_class_has_template(params->klass)) {
                tplname = params->template_name;
                if (!tplname) {
                        const PropDef *gp = global_prop_find(params->klass == QUBES_CLASS_DISPVM ? "default_dispvm"
                                                                                                 : "default_template");
                        PropValue v = {};
                        if (gp && app_property_get(app, gp, &v, NULL) >= 0)
                                tplname_default = TAKE_PTR(v.value);
                        prop_value_done(&v);
                        tplname = tplname_default;
                }
                if (!tplname)
                        return qerror_set(err, QERR_VALUE,
                                          "Template for the qube not specified, nor default template set.");
                tpl = app_get_domain(app, tplname);
                if (!tpl)
                        return qerror_set_repr(err, QERR_VM_NOT_FOUND, "No such domain: %s", tplname);
                if (params->klass == QUBES_CLASS_APPVM && tpl->klass != QUBES_CLASS_TEMPLATEVM) {
                        _cleanup_free_ char *rn = py_repr(tpl->name);
                        if (!rn)
                                return -ENOMEM;
                        return qerror_set(err, QERR_VALUE, "wrong VM class: domains[%s] is of type %s and not %s", rn,
                                          qubes_class_to_string(tpl->klass), "TemplateVM");
                }
                if (params->klass == QUBES_CLASS_DISPVM && (!domain_prop_find(tpl->klass, "template_for_dispvms") ||
                                                            !domain_property_bool(tpl, "template_for_dispvms")))
                        return qerror_set(err, QERR_QUBES_EXCEPTION,
                                          "Refusing to create disposable out of app qube which has "
                                          "template_for_dispvms=False");
        }

        label = app_find_label(app, strempty(params->label));
        if (!label)
                return qerror_set(err, QERR_LABEL_NOT_FOUND, "Label does not exist: %s", strempty(params->label));

        if (params->pool && !app_find_pool(app, params->pool))
                return qerror_set(err, QERR_QUBES_EXCEPTION, "Unknown storage pool %s", params->pool);
        for (char **a = params->volume_pools; a && a[0] && a[1]; a += 2)
                if (!app_find_pool(app, a[1]))
                        return qerror_set(err, QERR_QUBES_EXCEPTION, "Unknown storage pool %s", a[1]);

        qid = unused_qid(app);
        if (qid < 0)
                return qerror_set(err, QERR_QUBES_EXCEPTION, "Cannot find unused qid!");
        if (params->klass == QUBES_CLASS_DISPVM) {
                dispid = unused_dispid(app);
                if (dispid < 0)
                        return qerror_set(err, QERR_QUBES_EXCEPTION, "Cannot find unused dispid!");
                if (!name) {
                        if (asprintf(&dispname, "disp%" PRId64, dispid) < 0)
                                return -ENOMEM;
                        name = dispname;
                        if (app_get_domain(app, name))
                                return qerror_set(err, QERR_VM_ALREADY_EXISTS, "Qube already exists: %s", name);
                }
        }

        r = app_add_domain(app, params->klass, name, qid, NULL, &d);
        if (r < 0)
                return r;

        const PropDef *p = domain_prop_find(d->klass, "label");
        r = p ? domain_property_store(d, p, label->name) : 0;
        if (r >= 0 && tpl) {
                p = domain_prop_find(d->klass, "template");
                r = p ? domain_property_store(d, p, tpl->name) : 0;
        }
        if (r >= 0 && dispid >= 0) {
                char buf[32];
                snprintf(buf, sizeof buf, "%" PRId64, dispid);
                p = domain_prop_find(d->klass, "dispid");
                r = p ? domain_property_store(d, p, buf) : 0;
        }
        if (r >= 0 && d->klass == QUBES_CLASS_DISPVM)
                r = dispvm_copy_from_template(d, tpl);
        if (r >= 0 && d->klass != QUBES_CLASS_REMOTEVM)
                r = create_volumes(app, d, tpl, params);
        if (r >= 0 && creator_tag)
                r = domain_tag_add(d, creator_tag, NULL);
        if (r >= 0)
                r = add_auto_tag(d, "guivm", "guivm");
        if (r >= 0)
                r = add_auto_tag(d, "audiovm", "audiovm");
        if (r >= 0) {
                const PropDef *cu = global_prop_find("check_updates_vm");
                PropValue v = {};
                if (cu && app_property_get(app, cu, &v, NULL) >= 0 && v.value && parse_bool_word(v.value) == 0)
                        r = domain_feature_store(d, "check-updates", "");
                prop_value_done(&v);
        }
        if (r < 0) {
                /* nothing announced the qube yet, so it can vanish quietly */
                app_unregister_domain(app, d);
                domain_free(d);
                return r;
        }

        *ret = d;
        return 0;
}

void app_create_domain_commit(App *app, Domain *d) {
        app_emit_event(app, NULL, "domain-add", "vm", d->name);
}

static void drop_queued_for(App *app, Domain *d);

void app_create_domain_abort(App *app, Domain *d) {
        /* nothing announced the qube yet, so it can vanish quietly (with what waits about it) */
        drop_queued_for(app, d);
        app_unregister_domain(app, d);
        domain_free(d);
}

int app_create_domain(App *app, const CreateParams *params, Domain **ret, QError *err) {
        Domain *d;
        int r = app_create_domain_begin(app, params, &d, err);
        if (r < 0)
                return r;
        app_create_domain_commit(app, d);
        if (ret)
                *ret = d;
        return 0;
}

/* ---- removing domains -------------------------------------------------------------------- */

static int qerror_in_use(QError *err, const Domain *d) {
        return qerror_set_repr(err, QERR_VM_IN_USE,
                               "Domain is in use: %s;  see 'journalctl -u qubesd -e' in dom0 for details", d->name);
}

static bool domain_is_preload(Domain *d) {
        return domain_prop_find(d->klass, "is_preload") && domain_property_bool(d, "is_preload");
}

int app_remove_domain(App *app, Domain *d, QError *err) {
        _cleanup_free_ char *name = NULL, *dir = NULL;
        size_t i = 0;
        void *v;

        if (d->klass == QUBES_CLASS_ADMINVM)
                return qerror_set_repr(err, QERR_VM_IN_USE, "%s cannot be removed", d->name);
        if (domain_is_running(d))
                return qerror_set_repr(err, QERR_VM_NOT_HALTED, "Domain is not powered off: %s", d->name);
        if (domain_prop_find(d->klass, "installed_by_rpm") && domain_property_bool(d, "installed_by_rpm"))
                return qerror_set(err, QERR_VM_IN_USE, "VM installed by package manager: %s", d->name);

        /* Globals count by their effective value, qubes only by what is explicitly set (a
         * default derives from a global or a template, which are checked themselves). */
        for (size_t k = 0; k < n_global_props; k++) {
                const PropDef *p = &global_props[k];
                PropValue pv = {};
                bool used;

                if (p->type != PROP_VM)
                        continue;
                if (app_property_get(app, p, &pv, NULL) < 0)
                        continue;
                used = pv.value && streq(pv.value, d->name);
                prop_value_done(&pv);
                if (used)
                        return qerror_in_use(err, d);
        }
        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                Domain *o = v;
                if (o == d)
                        continue;
                bool preload = domain_is_preload(o);
                const PropDef *const *props = domain_props_of_class(o->klass);
                for (; props && *props; props++) {
                        const PropDef *p = *props;
                        const PropSlot *s = domain_slot(o, p);
                        if (p->type != PROP_VM || !s->set || !streq_ptr(s->value, d->name))
                                continue;
                        /* a preloaded disposable goes away with its template */
                        if (preload && (streq(p->name, "template") || streq(p->name, "default_dispvm") ||
                                        streq(p->name, "management_dispvm")))
                                continue;
                        return qerror_in_use(err, d);
                }
        }

        _cleanup_strbuf_ StrBuf ports = {};
        i = 0;
        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                Domain *o = v;
                if (o == d)
                        continue;
                for (size_t k = 0; k < o->n_devices; k++)
                        if (streq_ptr(o->devices[k].backend, d->name)) {
                                if (ports.len > 0)
                                        strbuf_append(&ports, ", ");
                                strbuf_append(&ports, strempty(o->devices[k].port_id));
                        }
        }
        if (ports.oom)
                return -ENOMEM;
        if (ports.len > 0 && d->klass != QUBES_CLASS_REMOTEVM)
                return qerror_set(err, QERR_VM_IN_USE, "VM has devices assigned to other VMs: %s", ports.buf);

        name = strdup(d->name);
        dir = domain_dir(d);
        if (!name || !dir)
                return -ENOMEM;

        app_emit_event(app, NULL, "domain-pre-delete", "vm", name);
        app_unregister_domain(app, d);

        static const char *const reset_globals[] = {
                "default_guivm", "default_netvm", "clockvm", "updatevm", "default_template",
        };
        for (size_t k = 0; k < ELEMENTSOF(reset_globals); k++) {
                const PropDef *p = global_prop_find(reset_globals[k]);
                if (!p)
                        continue;
                PropSlot *s = &app->props[global_prop_index(p)];
                if (s->set && streq_ptr(s->value, name))
                        (void) app_property_reset(app, p->name, NULL);
        }

        app_emit_event(app, NULL, "domain-delete", "vm", name);
        /* kept until the commit: a rollback brings the same qube back, and the queued events
         * still name it; its notes go with its directory once qubes.xml without it is durable
         * (storage_remove_domain) */
        Domain **l = reallocarray(app->removed, app->n_removed + 1, sizeof(Domain *));
        if (!l) {
                domain_free(d);
                return 0;
        }
        app->removed = l;
        app->removed[app->n_removed++] = d;
        return 0;
}

/* ---- labels ------------------------------------------------------------------------------ */

static Label *label_by_index(const App *app, long index) {
        for (size_t i = 0; i < app->n_labels; i++)
                if (app->labels[i]->index == index)
                        return app->labels[i];
        return NULL;
}

static bool parse_index(const char *s, long *ret) {
        char *end;
        long v;

        /* Python's int(): surrounding whitespace and a sign are fine */
        while (isspace((unsigned char) *s))
                s++;
        if (!*s)
                return false;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || !isdigit((unsigned char) end[-1]))
                return false;
        while (isspace((unsigned char) *end))
                end++;
        if (*end)
                return false;
        *ret = v;
        return true;
}

Label *app_find_label(const App *app, const char *name_or_index) {
        const char *n = startswith(name_or_index, "label-");
        long index;

        if (n && parse_index(n, &index) && isdigit((unsigned char) *n))
                return label_by_index(app, index);
        for (size_t i = 0; i < app->n_labels; i++)
                if (streq(app->labels[i]->name, name_or_index))
                        return app->labels[i];
        if (parse_index(name_or_index, &index))
                return label_by_index(app, index);
        return NULL;
}

int app_create_label(App *app, const char *name, const char *color, Label **ret, QError *err) {
        _cleanup_free_ char *c = NULL;
        int r, index = MAX_DEFAULT_LABEL;

        r = validate_label_name(name, true, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < app->n_labels; i++)
                if (streq(app->labels[i]->name, name))
                        return qerror_set_repr(err, QERR_LABEL_IN_USE, "Label is still in use: %s", name);
        r = validate_label_color(color, err);
        if (r < 0)
                return r;

        /* Upstream keeps the raw payload bytes; we keep the validated form (docs). */
        c = label_color_strip(color);
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < app->n_labels; i++)
                if (app->labels[i]->index > index)
                        index = app->labels[i]->index;
        index++;

        r = app_add_label(app, index, name, c);
        if (r < 0)
                return r;
        if (ret)
                *ret = label_by_index(app, index);
        return 0;
}

int app_remove_label(App *app, const char *name, QError *err) {
        Label *l;
        size_t i = 0, k;
        void *v;
        int r;

        r = validate_label_name(name, false, err);
        if (r < 0)
                return r;
        l = app_find_label(app, name);
        if (!l)
                return qerror_set(err, QERR_LABEL_NOT_FOUND, "Label does not exist: %s", name);
        if (l->index <= MAX_DEFAULT_LABEL)
                return qerror_set(err, QERR_PROTOCOL, "Can only remove custom labels");

        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                Domain *d = v;
                const PropDef *p = domain_prop_find(d->klass, "label");
                if (!p)
                        continue;
                const PropSlot *s = domain_slot(d, p);
                if (s->set && s->value && app_find_label(app, s->value) == l)
                        return qerror_set_repr(err, QERR_LABEL_IN_USE, "Label is still in use: %s", l->name);
        }

        for (k = 0; k < app->n_labels && app->labels[k] != l; k++)
                ;
        memmove(app->labels + k, app->labels + k + 1, sizeof(Label *) * (app->n_labels - k - 1));
        app->n_labels--;
        label_free(l);
        return 0;
}

int app_add_label(App *app, int index, const char *name, const char *color) {
        Label *l, **n;
        size_t pos;

        for (size_t i = 0; i < app->n_labels; i++)
                if (app->labels[i]->index == index || streq(app->labels[i]->name, name))
                        return -EEXIST;

        l = new0(Label, 1);
        if (!l)
                return -ENOMEM;
        l->index = index;
        l->name = strdup(name);
        l->color = strdup(color);
        n = realloc(app->labels, sizeof(Label *) * (app->n_labels + 1));
        if (!l->name || !l->color || !n) {
                if (n)
                        app->labels = n;
                label_free(l);
                return -ENOMEM;
        }
        app->labels = n;
        for (pos = app->n_labels; pos > 0 && app->labels[pos - 1]->index > index; pos--)
                app->labels[pos] = app->labels[pos - 1];
        app->labels[pos] = l;
        app->n_labels++;
        return 0;
}

/* ---- pools ------------------------------------------------------------------------------- */

Pool *app_find_pool(const App *app, const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < app->n_pools; i++)
                if (streq(app->pools[i]->name, name))
                        return app->pools[i];
        return NULL;
}

int app_add_pool(App *app, const char *name, const char *driver, char *const *config) {
        Pool *p, **n;

        if (app_find_pool(app, name))
                return -EEXIST;
        p = new0(Pool, 1);
        if (!p)
                return -ENOMEM;
        p->name = strdup(name);
        p->driver = strdup(driver);
        p->config = config ? strv_copy(config) : new0(char *, 1);
        n = realloc(app->pools, sizeof(Pool *) * (app->n_pools + 1));
        if (!p->name || !p->driver || !p->config || !n) {
                if (n)
                        app->pools = n;
                pool_free(p);
                return -ENOMEM;
        }
        app->pools = n;
        app->pools[app->n_pools++] = p;
        return 0;
}

int app_remove_pool(App *app, const char *name) {
        for (size_t i = 0; i < app->n_pools; i++)
                if (streq(app->pools[i]->name, name)) {
                        pool_free(app->pools[i]);
                        memmove(app->pools + i, app->pools + i + 1, sizeof(Pool *) * (app->n_pools - i - 1));
                        app->n_pools--;
                        return 0;
                }
        return -ENOENT;
}

/* ---- global properties ------------------------------------------------------------------- */

int app_property_get(App *app, const PropDef *p, PropValue *ret, QError *err) {
        return prop_read(app, p, &app->props[global_prop_index(p)], ret, err);
}

int app_property_get_default(App *app, const PropDef *p, PropValue *ret, QError *err) {
        return prop_read(app, p, NULL, ret, err);
}

/* str() of upstream's app object, which error messages about globals print. Upstream's text
 * carries a heap address; ours leaves it out rather than tell a caller where our heap is. */
static void app_holder_str(const App *app, char *buf, size_t size) {
        snprintf(buf, size, "<qubes.app.Qubes object>");
}

static void emit_property_event(App *app, Domain *subject, const char *kind, const char *name, const char *newvalue,
                                bool with_new, const PropValue *old) {
        _cleanup_free_ char *ev = NULL;
        const char *kv[6];
        size_t n = 0;

        if (asprintf(&ev, "property-%s:%s", kind, name) < 0)
                return;
        kv[n++] = "name";
        kv[n++] = name;
        if (with_new) {
                kv[n++] = "newvalue";
                kv[n++] = newvalue;
        }
        if (old->has_value) {
                kv[n++] = "oldvalue";
                kv[n++] = old->value;
        }
        app_emit_eventv(app, subject, ev, kv, n);
}

int app_property_set(App *app, const char *name, const char *raw, size_t len, QError *err) {
        _cleanup_free_ char *sanitised = NULL, *canonical = NULL;
        _cleanup_(prop_value_done) PropValue old = {};
        const PropDef *p = global_prop_find(name);
        char holder[64];
        int r;

        if (!p) {
                app_holder_str(app, holder, sizeof holder);
                return qerror_set(err, QERR_NO_SUCH_PROPERTY, "Invalid property '%s' of %s", name, holder);
        }
        r = prop_sanitize(p, raw, len, &sanitised, err);
        if (r < 0)
                return r;
        if (p->flags & (PROP_READONLY | PROP_STATELESS))
                return qerror_set(err, QERR_PROPERTY_VALUE, "property '%s' on %s instance cannot be set", p->name,
                                  "Qubes");
        if ((p->flags & PROP_WRITE_ONCE) && app->props[global_prop_index(p)].set)
                return qerror_set(err, QERR_PROPERTY_VALUE, "property '%s' is write-once and already set", p->name);
        if (p->check) {
                r = p->check(app, p, sanitised, &canonical, err);
                if (r < 0)
                        return r;
        } else
                canonical = TAKE_PTR(sanitised);

        r = app_property_get(app, p, &old, NULL);
        if (r < 0)
                old = (PropValue){};

        emit_property_event(app, NULL, "pre-set", p->name, canonical, true, &old);
        PropSlot *s = &app->props[global_prop_index(p)];
        free(s->value);
        s->value = TAKE_PTR(canonical);
        s->set = true;
        emit_property_event(app, NULL, "set", p->name, s->value, true, &old);
        if (p->changed)
                p->changed(app, p, old.has_value ? old.value : NULL, s->value);
        return 0;
}

int app_property_reset(App *app, const char *name, QError *err) {
        _cleanup_(prop_value_done) PropValue old = {}, now = {};
        const PropDef *p = global_prop_find(name);
        char holder[64];
        PropSlot *s;
        int r;

        if (!p) {
                app_holder_str(app, holder, sizeof holder);
                return qerror_set(err, QERR_NO_SUCH_PROPERTY, "Invalid property '%s' of %s", name, holder);
        }
        s = &app->props[global_prop_index(p)];
        if (p->flags & PROP_WRITE_ONCE)
                return qerror_set(err, QERR_PROPERTY_VALUE, "property '%s' is write-once and already set", p->name);
        if (p->flags & PROP_NO_RESET)
                return qerror_set(err, QERR_VALUE, "Cannot unset %s", p->name);
        /* nothing to forget: no events, as nothing changed */
        if (!s->set)
                return 0;

        r = app_property_get(app, p, &old, NULL);
        if (r < 0)
                old = (PropValue){};
        emit_property_event(app, NULL, "pre-reset", p->name, NULL, false, &old);
        emit_property_event(app, NULL, "pre-del", p->name, NULL, false, &old);
        s->set = false;
        s->value = mfree(s->value);
        emit_property_event(app, NULL, "reset", p->name, NULL, false, &old);
        emit_property_event(app, NULL, "del", p->name, NULL, false, &old);
        if (p->changed) {
                r = app_property_get(app, p, &now, NULL);
                p->changed(app, p, old.has_value ? old.value : NULL, r >= 0 && now.has_value ? now.value : NULL);
        }
        return 0;
}

/* ---- transactions ------------------------------------------------------------------------ */

typedef struct QueuedEvent {
        Domain *subject; /* alive until the commit (removed qubes wait in App.removed) */
        char *event;
        char **kv; /* n_kv strings, NULL values kept */
        size_t n_kv;
} QueuedEvent;

static void queued_event_done(QueuedEvent *q) {
        free(q->event);
        for (size_t i = 0; i < q->n_kv; i++)
                free(q->kv[i]);
        free(q->kv);
}

static void dispatch(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv) {
        for (size_t i = 0; i < app->n_listeners; i++)
                app->listeners[i].fn(app, subject, event, kv, n_kv, app->listeners[i].userdata);
}

static int queue_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv) {
        QueuedEvent q = { .subject = subject, .n_kv = n_kv };

        if (app->n_queued == app->alloc_queued) {
                size_t na = app->alloc_queued ? app->alloc_queued * 2 : 16;
                QueuedEvent *l = reallocarray(app->queued, na, sizeof(QueuedEvent));
                if (!l)
                        return -ENOMEM;
                app->queued = l;
                app->alloc_queued = na;
        }
        q.event = strdup(event);
        q.kv = new0(char *, n_kv + 1);
        if (!q.event || !q.kv) {
                queued_event_done(&q);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_kv; i++)
                if (kv[i] && !(q.kv[i] = strdup(kv[i]))) {
                        queued_event_done(&q);
                        return -ENOMEM;
                }
        app->queued[app->n_queued++] = q;
        return 0;
}

static void drop_queued_for(App *app, Domain *d) {
        size_t k = 0;
        for (size_t i = 0; i < app->n_queued; i++)
                if (app->queued[i].subject == d)
                        queued_event_done(&app->queued[i]);
                else
                        app->queued[k++] = app->queued[i];
        app->n_queued = k;
}

void app_txn_begin(App *app) {
        app->txn_open = true;
}

void app_txn_done(App *app, bool committed) {
        QueuedEvent *q = app->queued;
        size_t n = app->n_queued;

        /* listeners may change the model again: their events are not part of this transaction */
        app->txn_open = false;
        app->txn_changed = false;
        if (!q && !committed)
                return;
        app->queued = NULL;
        app->n_queued = app->alloc_queued = 0;
        app->dispatching = committed;
        for (size_t i = 0; i < n; i++) {
                if (committed)
                        dispatch(app, q[i].subject, q[i].event, (const char *const *) q[i].kv, q[i].n_kv);
                queued_event_done(&q[i]);
        }
        app->dispatching = false;
        free(q);
        if (committed) {
                size_t i = 0;
                void *v;
                while (hashmap_iterate(app->domains, &i, NULL, &v))
                        ((Domain *) v)->changed = false;
                for (size_t k = 0; k < app->n_removed; k++)
                        domain_free(app->removed[k]);
                app->removed = mfree(app->removed);
                app->n_removed = 0;
        }
}

Domain *app_get_domain_announced(const App *app, const char *name) {
        Domain *d = app_get_domain(app, name);
        return d || !app->dispatching ? d : app_get_domain_removed(app, name);
}

Domain *app_get_domain_removed(const App *app, const char *name) {
        for (size_t i = app->n_removed; i > 0; i--)
                if (streq(app->removed[i - 1]->name, name))
                        return app->removed[i - 1];
        return NULL;
}

void app_emit_eventv(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv) {
        /* every change made through the API is announced on its qube: its saved form is stale */
        if (subject)
                domain_mark_changed(subject);
        if (app->txn_open) {
                app->txn_changed = true;
                if (queue_event(app, subject, event, kv, n_kv) >= 0)
                        return;
        }
        dispatch(app, subject, event, kv, n_kv);
}

int app_add_listener(App *app, AppEventCallback fn, void *userdata) {
        AppListener *l = realloc(app->listeners, sizeof(AppListener) * (app->n_listeners + 1));
        if (!l)
                return -ENOMEM;
        app->listeners = l;
        app->listeners[app->n_listeners++] = (AppListener){ fn, userdata };
        return 0;
}

void app_remove_listener(App *app, AppEventCallback fn, void *userdata) {
        for (size_t i = 0; i < app->n_listeners; i++)
                if (app->listeners[i].fn == fn && app->listeners[i].userdata == userdata) {
                        memmove(app->listeners + i, app->listeners + i + 1,
                                sizeof(AppListener) * (app->n_listeners - i - 1));
                        app->n_listeners--;
                        return;
                }
}
