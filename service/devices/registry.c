/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What backends expose and what is attached where: DeviceInfo, DeviceAttachment, the registry. */
#include "devices/devices.h"

#include "util/strv.h"

const char *const device_classes[] = { "block", "pci", NULL };

bool device_class_known(const char *devclass) {
        for (size_t i = 0; device_classes[i]; i++)
                if (streq(device_classes[i], devclass))
                        return true;
        return false;
}

static char *make_key(const char *devclass, const char *backend, const char *port_id) {
        char *k = NULL;
        if (asprintf(&k, "%s\n%s\n%s", devclass, backend, port_id) < 0)
                return NULL;
        return k;
}

DeviceInfo *device_info_new(const char *devclass, const char *backend, const char *port_id) {
        _cleanup_(device_info_freep) DeviceInfo *i = new0(DeviceInfo, 1);
        if (!i)
                return NULL;
        i->devclass = strdup(devclass);
        i->backend = strdup(backend);
        i->port_id = strdup(port_id);
        i->key = make_key(devclass, backend, port_id);
        i->interfaces = strdup(DEVICE_INTERFACE_UNKNOWN);
        i->data = new0(char *, 1);
        if (!i->devclass || !i->backend || !i->port_id || !i->key || !i->interfaces || !i->data)
                return NULL;
        return TAKE_PTR(i);
}

DeviceInfo *device_info_free(DeviceInfo *i) {
        if (!i)
                return NULL;
        free(i->key);
        free(i->devclass);
        free(i->backend);
        free(i->port_id);
        free(i->device_id);
        free(i->vendor);
        free(i->product);
        free(i->manufacturer);
        free(i->name);
        free(i->serial);
        free(i->interfaces);
        free(i->parent_port_id);
        free(i->parent_devclass);
        strv_free(i->data);
        free(i->syspath);
        free(i->devnode);
        free(i->sbdf);
        free(i);
        return NULL;
}

void device_info_array_free(DeviceInfo **a) {
        for (DeviceInfo **p = a; p && *p; p++)
                device_info_free(*p);
        free(a);
}

static bool strv_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);
        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

bool device_info_equal(const DeviceInfo *a, const DeviceInfo *b) {
        return streq_ptr(a->key, b->key) && streq_ptr(a->device_id, b->device_id) && streq_ptr(a->vendor, b->vendor) &&
               streq_ptr(a->product, b->product) && streq_ptr(a->manufacturer, b->manufacturer) &&
               streq_ptr(a->name, b->name) && streq_ptr(a->serial, b->serial) &&
               streq_ptr(a->interfaces, b->interfaces) && streq_ptr(a->parent_port_id, b->parent_port_id) &&
               streq_ptr(a->parent_devclass, b->parent_devclass) && strv_equal(a->data, b->data) &&
               streq_ptr(a->syspath, b->syspath) && streq_ptr(a->devnode, b->devnode) && streq_ptr(a->sbdf, b->sbdf) &&
               a->read_only == b->read_only && a->size == b->size;
}

char *device_info_description(const DeviceInfo *i) {
        const char *prod = i->product ?: i->name ?: i->serial;
        const char *vendor = i->vendor ?: i->manufacturer;
        char *s = NULL;
        int r;

        if (prod && vendor)
                r = asprintf(&s, "%s %s", vendor, prod);
        else if (prod)
                r = asprintf(&s, "%s", prod);
        else if (i->parent_port_id)
                r = asprintf(&s, "sub-device of %s:%s", i->backend, i->parent_port_id);
        else
                r = asprintf(&s, "unknown %s device%s%s", i->devclass, vendor ? " from " : "", strempty(vendor));
        return r < 0 ? NULL : s;
}

int device_info_items(const DeviceInfo *i, const char *attached_to, char ***ret) {
        _cleanup_strv_free_ char **l = new0(char *, 1);
        const struct {
                const char *key, *value;
        } names[] = {
                { "vendor", i->vendor }, { "product", i->product }, { "manufacturer", i->manufacturer },
                { "name", i->name },     { "serial", i->serial },
        };
        int r = 0;

#define ADD(k, v)                                                         \
        do {                                                              \
                if (strv_extend(&l, (k)) < 0 || strv_extend(&l, (v)) < 0) \
                        return -ENOMEM;                                   \
        } while (0)
        if (!l)
                return -ENOMEM;
        ADD("device_id", i->device_id ?: DEVICE_ID_UNKNOWN);
        ADD("port_id", i->port_id);
        ADD("devclass", i->devclass);
        ADD("backend_domain", i->backend);
        /* upstream sends the known ones in a set's order, which clients do not rely on */
        for (size_t k = 0; k < ELEMENTSOF(names); k++)
                if (names[k].value && !streq(names[k].value, "unknown"))
                        ADD(names[k].key, names[k].value);
        if (attached_to)
                ADD("attachment", attached_to);
        ADD("interfaces", isempty(i->interfaces) ? DEVICE_INTERFACE_UNKNOWN : i->interfaces);
        if (i->parent_port_id) {
                ADD("parent_port_id", i->parent_port_id);
                ADD("parent_devclass", i->parent_devclass ?: i->devclass);
        }
        for (char **kv = i->data; kv && kv[0] && kv[1]; kv += 2) {
                _cleanup_free_ char *k = NULL;
                if (asprintf(&k, "_%s", kv[0]) < 0)
                        return -ENOMEM;
                ADD(k, kv[1]);
        }
#undef ADD
        *ret = TAKE_PTR(l);
        return r;
}

/* ---- attachments -------------------------------------------------------------------------- */

DeviceAttachment *device_attachment_free(DeviceAttachment *a) {
        if (!a)
                return NULL;
        free(a->frontend);
        free(a->devclass);
        free(a->backend);
        free(a->port_id);
        free(a->device_id);
        strv_free(a->options);
        free(a->node);
        free(a);
        return NULL;
}

/* ---- the registry ----------------------------------------------------------------------------- */

int device_registry_new(DeviceRegistry **ret) {
        DeviceRegistry *r = new0(DeviceRegistry, 1);
        if (!r)
                return -ENOMEM;
        r->devices = hashmap_new();
        if (!r->devices) {
                free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

DeviceRegistry *device_registry_free(DeviceRegistry *r) {
        size_t i = 0;
        void *v;

        if (!r)
                return NULL;
        while (hashmap_iterate(r->devices, &i, NULL, &v))
                device_info_free(v);
        hashmap_free(r->devices);
        for (size_t k = 0; k < r->n_att; k++)
                device_attachment_free(r->att[k]);
        free(r->att);
        free(r);
        return NULL;
}

DeviceInfo *device_registry_get(const DeviceRegistry *r, const char *devclass, const char *backend,
                                const char *port_id) {
        _cleanup_free_ char *k = make_key(devclass, backend, port_id);
        return k ? hashmap_get(r->devices, k) : NULL;
}

static int cmp_port(const void *a, const void *b) {
        const DeviceInfo *x = *(DeviceInfo *const *) a, *y = *(DeviceInfo *const *) b;
        int c = strcmp(x->backend, y->backend);
        return c ? c : strcmp(x->port_id, y->port_id);
}

DeviceInfo **device_registry_list(const DeviceRegistry *r, const char *devclass, const char *backend) {
        DeviceInfo **l = new0(DeviceInfo *, hashmap_size(r->devices) + 1);
        size_t i = 0, n = 0;
        void *v;

        if (!l)
                return NULL;
        while (hashmap_iterate(r->devices, &i, NULL, &v)) {
                DeviceInfo *d = v;
                if ((!devclass || streq(d->devclass, devclass)) && (!backend || streq(d->backend, backend)))
                        l[n++] = d;
        }
        qsort(l, n, sizeof(DeviceInfo *), cmp_port);
        return l;
}

void device_changes_done(DeviceChanges *c) {
        for (size_t i = 0; i < c->n_removed; i++)
                device_info_free(c->removed[i]);
        free(c->added);
        free(c->removed);
        free(c->changed);
        *c = (DeviceChanges){};
}

/* Move the fields of src into dst (the same port), freeing dst's old ones. */
static void device_info_move(DeviceInfo *dst, DeviceInfo *src) {
        DeviceInfo old = *dst;
        *dst = *src;
        /* keep dst's key (the registry holds it), give src the old fields to free */
        dst->key = old.key;
        old.key = src->key;
        *src = old;
}

int device_registry_replace(DeviceRegistry *r, const char *devclass, const char *backend, DeviceInfo **now,
                            size_t n_now, DeviceChanges *ret) {
        _cleanup_(device_changes_done) DeviceChanges c = {};
        size_t total = hashmap_size(r->devices) + n_now + 1;
        size_t i = 0;
        void *v;

        c.added = new0(DeviceInfo *, total);
        c.removed = new0(DeviceInfo *, total);
        c.changed = new0(DeviceInfo *, total);
        if (!c.added || !c.removed || !c.changed)
                return -ENOMEM;

        /* gone: in the registry, not in now */
        _cleanup_free_ DeviceInfo **gone = new0(DeviceInfo *, total);
        size_t n_gone = 0;
        if (!gone)
                return -ENOMEM;
        while (hashmap_iterate(r->devices, &i, NULL, &v)) {
                DeviceInfo *d = v;
                bool still = false;
                if (!streq(d->devclass, devclass) || !streq(d->backend, backend))
                        continue;
                for (size_t k = 0; k < n_now && !still; k++)
                        still = now[k] && streq(now[k]->key, d->key);
                if (!still)
                        gone[n_gone++] = d;
        }
        for (size_t k = 0; k < n_gone; k++) {
                hashmap_remove(r->devices, gone[k]->key);
                c.removed[c.n_removed++] = gone[k];
        }

        for (size_t k = 0; k < n_now; k++) {
                DeviceInfo *d = now[k], *old;
                if (!d)
                        continue;
                old = hashmap_get(r->devices, d->key);
                if (old) {
                        if (!device_info_equal(old, d)) {
                                device_info_move(old, d);
                                c.changed[c.n_changed++] = old;
                        }
                        device_info_free(d);
                } else if (hashmap_put(r->devices, d->key, d) < 0) {
                        /* out of memory: what could not be added is dropped, the rest reported */
                        device_info_free(d);
                        continue;
                } else
                        c.added[c.n_added++] = d;
                now[k] = NULL;
        }
        *ret = c;
        c = (DeviceChanges){};
        return 0;
}

DeviceAttachment *device_registry_attachment(const DeviceRegistry *r, const char *devclass, const char *backend,
                                             const char *port_id) {
        for (size_t k = 0; k < r->n_att; k++) {
                DeviceAttachment *a = r->att[k];
                if (streq(a->devclass, devclass) && streq(a->backend, backend) && streq(a->port_id, port_id))
                        return a;
        }
        return NULL;
}

const char *device_registry_attached_to(const DeviceRegistry *r, const DeviceInfo *i) {
        DeviceAttachment *a = device_registry_attachment(r, i->devclass, i->backend, i->port_id);
        return a ? a->frontend : NULL;
}

int device_registry_attach(DeviceRegistry *r, DeviceAttachment *a) {
        DeviceAttachment **n = realloc(r->att, (r->n_att + 1) * sizeof(DeviceAttachment *));
        if (!n)
                return -ENOMEM;
        r->att = n;
        r->att[r->n_att++] = a;
        return 0;
}

DeviceAttachment *device_registry_detach(DeviceRegistry *r, const char *devclass, const char *backend,
                                         const char *port_id) {
        for (size_t k = 0; k < r->n_att; k++) {
                DeviceAttachment *a = r->att[k];
                if (streq(a->devclass, devclass) && streq(a->backend, backend) && streq(a->port_id, port_id)) {
                        memmove(r->att + k, r->att + k + 1, (r->n_att - k - 1) * sizeof(DeviceAttachment *));
                        r->n_att--;
                        return a;
                }
        }
        return NULL;
}

DeviceAttachment **device_registry_attached(const DeviceRegistry *r, const char *frontend, const char *devclass,
                                            size_t *ret_n) {
        DeviceAttachment **l = new0(DeviceAttachment *, r->n_att + 1);
        size_t n = 0;
        if (!l)
                return NULL;
        for (size_t k = 0; k < r->n_att; k++) {
                DeviceAttachment *a = r->att[k];
                if ((!frontend || streq(a->frontend, frontend)) && (!devclass || streq(a->devclass, devclass)))
                        l[n++] = a;
        }
        if (ret_n)
                *ret_n = n;
        return l;
}
