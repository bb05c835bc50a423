/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* System information (spec/qrexec-policy.md §3): every qube reachable by name and by uuid:. */

#include <fcntl.h>
#include <sys/stat.h>

#include <jansson.h>

#include "util/hashmap.h"
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
static const char *json_kind(const json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "object";
        case JSON_ARRAY:
                return "array";
        case JSON_STRING:
                return "string";
        case JSON_INTEGER:
        case JSON_REAL:
                return "number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "boolean";
        default:
                return "null";
        }
}

static int get_string(const json_t *o, const char *key, bool nullable, char **ret, char **error) {
        const json_t *v = json_object_get(o, key);
        if (!v || (nullable && json_is_null(v)))
                return 0;
        if (!json_is_string(v)) {
                if (asprintf(error, "field \"%s\" is a %s, expected a string%s", key, json_kind(v),
                             nullable ? " or null" : "") < 0)
                        *error = NULL;
                return -EINVAL;
        }
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static bool json_truthy(const json_t *v) {
        /* "internal" is a feature value: Python truthiness decides (null, false, 0, "" are false) */
        if (!v)
                return false;
        switch (json_typeof(v)) {
        case JSON_NULL:
        case JSON_FALSE:
                return false;
        case JSON_TRUE:
                return true;
        case JSON_INTEGER:
        case JSON_REAL:
                return json_number_value(v) != 0;
        case JSON_STRING:
                return json_string_length(v) > 0;
        case JSON_ARRAY:
                return json_array_size(v) > 0;
        default:
                return json_object_size(v) > 0;
        }
}

static int domain_from_json(const char *name, const json_t *o, QubesDomain **ret, char **error) {
        _cleanup_(qubes_domain_freep) QubesDomain *d = NULL;
        const json_t *v;
        int r;

        if (!json_is_object(o)) {
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
        if (v && !json_is_null(v)) {
                if (!json_is_boolean(v)) {
                        r = asprintf(&e, "field \"template_for_dispvms\" is a %s, expected a boolean", json_kind(v)) < 0
                                    ? -ENOMEM
                                    : -EINVAL;
                        goto fail;
                }
                d->template_for_dispvms = json_is_true(v);
        }

        d->internal = json_truthy(json_object_get(o, "internal"));

        v = json_object_get(o, "tags");
        if (v && !json_is_null(v)) {
                size_t i;
                const json_t *tag;

                if (!json_is_array(v)) {
                        r = asprintf(&e, "field \"tags\" is a %s, expected an array", json_kind(v)) < 0 ? -ENOMEM
                                                                                                        : -EINVAL;
                        goto fail;
                }
                json_array_foreach(v, i, tag) {
                        if (!json_is_string(tag)) {
                                r = asprintf(&e, "tag %zu is a %s, expected a string", i, json_kind(tag)) < 0 ? -ENOMEM
                                                                                                              : -EINVAL;
                                goto fail;
                        }
                        r = strv_extend(&d->tags, json_string_value(tag));
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
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_(qubes_system_info_freep) QubesSystemInfo *si = NULL;
        char *dummy = NULL;
        const json_t *domains, *value;
        const char *name;
        json_error_t jerr;
        int r;

        if (!error)
                error = &dummy;
        *error = NULL;

        /* RFC 8259 strictly (no NUL in strings, no lone surrogates, valid UTF-8, nothing after
         * the document), and duplicate keys refused: the document crosses a trust boundary and
         * a later duplicate must not silently win. Numbers as doubles: an integer beyond 64 bits in a
         * field we do not read is no reason to refuse the document. */
        root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
        if (!root) {
                r = json_error_code(&jerr) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
                if (r == -EINVAL && asprintf(error, "offset %i: %s", jerr.position, jerr.text) < 0)
                        *error = NULL;
                goto fail;
        }
        domains = json_object_get(root, "domains");
        if (!json_is_object(domains)) {
                *error = strdup("no \"domains\" object in the document");
                r = -EINVAL;
                goto fail;
        }
        si = qubes_system_info_new();
        if (!si)
                return -ENOMEM;
        json_object_foreach((json_t *) domains, name, value) {
                QubesDomain *d = NULL;

                r = domain_from_json(name, value, &d, error);
                if (r < 0)
                        goto fail;
                r = qubes_system_info_add(si, d);
                if (r == -EEXIST) {
                        if (asprintf(error, "qube %s: duplicate uuid", name) < 0)
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
