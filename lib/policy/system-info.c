/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* System information (spec/qrexec-policy.md §3): every qube reachable by name and by uuid:. */

#include <fcntl.h>
#include <sys/stat.h>

#include "util/hashmap.h"
#include "json.h"
#include "policy-internal.h"
#include "util/strv.h"

/* The document is produced by qubesd and is a few hundred bytes per qube; anything bigger than
 * this is not a system-info document and must not make us allocate without bound. */
#define SYSTEM_INFO_MAX_SIZE (64u * 1024u * 1024u)

QubesDomain *qubes_domain_new(const char *name) {
        QubesDomain *d = new0(QubesDomain, 1);
        if (!d)
                return NULL;
        d->name = strdup(name);
        if (!d->name)
                return mfree(d);
        return d;
}

QubesDomain *qubes_domain_free(QubesDomain *d) {
        if (!d)
                return NULL;
        free(d->name);
        free(d->type);
        strv_free(d->tags);
        free(d->default_dispvm);
        free(d->icon);
        free(d->label);
        free(d->guivm);
        free(d->relayvm);
        free(d->transport_rpc);
        free(d->power_state);
        free(d->uuid);
        return mfree(d);
}

QubesSystemInfo *qubes_system_info_new(void) {
        QubesSystemInfo *si = new0(QubesSystemInfo, 1);
        if (!si)
                return NULL;
        si->by_key = hashmap_new();
        if (!si->by_key)
                return mfree(si);
        return si;
}

QubesSystemInfo *qubes_system_info_free(QubesSystemInfo *si) {
        if (!si)
                return NULL;
        for (size_t i = 0; i < si->n; i++)
                qubes_domain_free(si->domains[i]);
        free(si->domains);
        hashmap_free(si->by_key);
        strv_free(si->uuid_keys);
        return mfree(si);
}

int qubes_system_info_add(QubesSystemInfo *si, QubesDomain *d) {
        _cleanup_(qubes_domain_freep) QubesDomain *owned = d;
        _cleanup_free_ char *key = NULL;
        int r;

        if (!si || !d || isempty(d->name))
                return -EINVAL;
        if (hashmap_contains(si->by_key, d->name))
                return -EEXIST;
        if (d->uuid) {
                if (asprintf(&key, "uuid:%s", d->uuid) < 0)
                        return -ENOMEM;
                if (hashmap_contains(si->by_key, key))
                        return -EEXIST;
        }
        if (si->n == si->n_alloc) {
                size_t n = si->n_alloc ? si->n_alloc * 2 : 32;
                QubesDomain **a = realloc(si->domains, n * sizeof(QubesDomain *));
                if (!a)
                        return -ENOMEM;
                si->domains = a;
                si->n_alloc = n;
        }
        r = hashmap_put(si->by_key, d->name, d);
        if (r < 0)
                return r;
        if (key) {
                const char *k = key;
                r = strv_consume(&si->uuid_keys, TAKE_PTR(key));
                if (r >= 0)
                        r = hashmap_put(si->by_key, k, d);
                if (r < 0) {
                        hashmap_remove(si->by_key, d->name);
                        return r;
                }
        }
        si->domains[si->n++] = TAKE_PTR(owned);
        return 0;
}

const QubesDomain *qubes_system_info_lookup(const QubesSystemInfo *si, const char *name) {
        if (!si || !name)
                return NULL;
        return hashmap_get(si->by_key, name);
}

size_t qubes_system_info_size(const QubesSystemInfo *si) {
        return si ? si->n : 0;
}

const QubesDomain *qubes_system_info_get(const QubesSystemInfo *si, size_t i) {
        return si && i < si->n ? si->domains[i] : NULL;
}

/* Fields are optional (the evaluator treats a missing one as empty/false), but a field of the
 * wrong type is an error: it means the producer and this reader disagree about the format. */
static int get_string(const JsonValue *o, const char *key, bool nullable, char **ret, char **error) {
        const JsonValue *v = json_object_get(o, key);
        if (!v || (nullable && v->type == JSON_NULL))
                return 0;
        if (v->type != JSON_STRING) {
                if (asprintf(error, "field \"%s\" is a %s, expected a string%s", key, json_type_name(v->type),
                             nullable ? " or null" : "") < 0)
                        *error = NULL;
                return -EINVAL;
        }
        *ret = strdup(v->string);
        return *ret ? 0 : -ENOMEM;
}

static bool json_truthy(const JsonValue *v) {
        /* "internal" is a feature value: Python truthiness decides (null, false, 0, "" are false) */
        if (!v)
                return false;
        switch (v->type) {
        case JSON_NULL:
                return false;
        case JSON_BOOL:
                return v->boolean;
        case JSON_NUMBER:
                return v->number != 0;
        case JSON_STRING:
                return !isempty(v->string);
        default:
                return v->n > 0;
        }
}

static int domain_from_json(const char *name, const JsonValue *o, QubesDomain **ret, char **error) {
        _cleanup_(qubes_domain_freep) QubesDomain *d = NULL;
        const JsonValue *v;
        int r;

        if (o->type != JSON_OBJECT) {
                if (asprintf(error, "qube %s: not an object", name) < 0)
                        *error = NULL;
                return -EINVAL;
        }
        d = qubes_domain_new(name);
        if (!d)
                return -ENOMEM;

        _cleanup_free_ char *e = NULL;
        if ((r = get_string(o, "type", false, &d->type, &e)) < 0 ||
            (r = get_string(o, "default_dispvm", true, &d->default_dispvm, &e)) < 0 ||
            (r = get_string(o, "icon", true, &d->icon, &e)) < 0 ||
            (r = get_string(o, "label", true, &d->label, &e)) < 0 ||
            (r = get_string(o, "guivm", true, &d->guivm, &e)) < 0 ||
            (r = get_string(o, "relayvm", true, &d->relayvm, &e)) < 0 ||
            (r = get_string(o, "transport_rpc", true, &d->transport_rpc, &e)) < 0 ||
            (r = get_string(o, "power_state", true, &d->power_state, &e)) < 0 ||
            (r = get_string(o, "uuid", true, &d->uuid, &e)) < 0)
                goto fail;

        v = json_object_get(o, "template_for_dispvms");
        if (v && v->type != JSON_NULL) {
                if (v->type != JSON_BOOL) {
                        r = asprintf(&e, "field \"template_for_dispvms\" is a %s, expected a boolean",
                                     json_type_name(v->type)) < 0
                                    ? -ENOMEM
                                    : -EINVAL;
                        goto fail;
                }
                d->template_for_dispvms = v->boolean;
        }

        d->internal = json_truthy(json_object_get(o, "internal"));

        v = json_object_get(o, "tags");
        if (v && v->type != JSON_NULL) {
                if (v->type != JSON_ARRAY) {
                        r = asprintf(&e, "field \"tags\" is a %s, expected an array", json_type_name(v->type)) < 0
                                    ? -ENOMEM
                                    : -EINVAL;
                        goto fail;
                }
                for (size_t i = 0; i < v->n; i++) {
                        if (v->items[i]->type != JSON_STRING) {
                                r = asprintf(&e, "tag %zu is a %s, expected a string", i,
                                             json_type_name(v->items[i]->type)) < 0
                                            ? -ENOMEM
                                            : -EINVAL;
                                goto fail;
                        }
                        r = strv_extend(&d->tags, v->items[i]->string);
                        if (r < 0)
                                return r;
                }
        }

        *ret = TAKE_PTR(d);
        return 0;
fail:
        if (r == -EINVAL && error) {
                if (asprintf(error, "qube %s: %s", name, strempty(e)) < 0)
                        *error = NULL;
        }
        return r;
}

int qubes_system_info_from_json(const char *json, size_t len, QubesSystemInfo **ret, char **error) {
        _cleanup_(json_freep) JsonValue *root = NULL;
        _cleanup_(qubes_system_info_freep) QubesSystemInfo *si = NULL;
        char *dummy = NULL;
        const JsonValue *domains;
        int r;

        if (!error)
                error = &dummy;
        *error = NULL;

        r = json_parse(json, len, &root, error);
        if (r < 0)
                return r;
        domains = json_object_get(root, "domains");
        if (!domains || domains->type != JSON_OBJECT) {
                *error = strdup("no \"domains\" object in the document");
                free(dummy);
                return -EINVAL;
        }
        si = qubes_system_info_new();
        if (!si)
                return -ENOMEM;
        for (size_t i = 0; i < domains->n; i++) {
                QubesDomain *d = NULL;

                r = domain_from_json(domains->keys[i], domains->items[i], &d, error);
                if (r < 0)
                        goto fail;
                r = qubes_system_info_add(si, d);
                if (r == -EEXIST) {
                        if (asprintf(error, "qube %s: duplicate uuid", domains->keys[i]) < 0)
                                *error = NULL;
                        r = -EINVAL;
                }
                if (r < 0)
                        goto fail;
        }
        *ret = TAKE_PTR(si);
        return 0;
fail:
        if (error == &dummy)
                free(dummy);
        return r;
}

int qubes_system_info_load_file(const char *path, QubesSystemInfo **ret, char **error) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, alloc = 0;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        for (;;) {
                if (alloc - len < 4096) {
                        if (alloc >= SYSTEM_INFO_MAX_SIZE)
                                return -EFBIG;
                        alloc = alloc ? alloc * 2 : 16384;
                        char *n = realloc(buf, alloc);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                }
                size_t k = fread(buf + len, 1, alloc - len, f);
                len += k;
                if (k == 0) {
                        if (ferror(f))
                                return -EIO;
                        break;
                }
        }
        return qubes_system_info_from_json(buf ? buf : "", len, ret, error);
}
