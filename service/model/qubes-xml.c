/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubes.xml: loading (with upstream's migrations and our strict checks) and writing in exactly
 * the layout upstream's writer produces (spec data-model.md §3). */

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "devices/devices.h"
#include "model/model.h"
#include "model/qubes-xml.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* Far above any real installation (1000 qubes take about 2 MiB), low enough that a corrupted
 * or hostile file cannot make us allocate without bound. */
#define QUBES_XML_MAX_SIZE (64u * 1024u * 1024u)

#define DOM0_UUID "00000000-0000-0000-0000-000000000000"

#if LIBXML_VERSION >= 21200
#define XMLERROR_CONST const
#else
#define XMLERROR_CONST
#endif

/* ---- small helpers -------------------------------------------------------------------------- */

static bool node_is(const xmlNode *n, const char *name) {
        return n && n->type == XML_ELEMENT_NODE && streq((const char *) n->name, name);
}

static xmlNode *next_element(xmlNode *n) {
        for (; n; n = n->next)
                if (n->type == XML_ELEMENT_NODE)
                        return n;
        return NULL;
}

#define FOREACH_CHILD_ELEMENT(c, parent) \
        for (xmlNode *c = next_element((parent)->children); c; c = next_element(c->next))

static xmlNode *child_element(xmlNode *parent, const char *name) {
        FOREACH_CHILD_ELEMENT(c, parent)
        if (node_is(c, name))
                return c;
        return NULL;
}

/* Attribute value, malloc'ed (libxml2 may use its own allocator, so copy). NULL when absent;
 * *oom is set on allocation failure. */
static char *node_attr(xmlNode *n, const char *name, bool *oom) {
        xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *) name);
        if (!v)
                return NULL;
        char *s = strdup((const char *) v);
        xmlFree(v);
        if (!s)
                *oom = true;
        return s;
}

/* The text of an element: its text and CDATA children, "" when empty. NULL only on OOM. */
static char *node_text(xmlNode *n) {
        _cleanup_strbuf_ StrBuf b = {};

        strbuf_append(&b, "");
        for (xmlNode *c = n->children; c; c = c->next)
                if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
                        strbuf_append(&b, (const char *) c->content);
        if (b.oom)
                return NULL;
        return strbuf_steal(&b);
}

static long node_line(xmlNode *n) {
        return n ? xmlGetLineNo(n) : 0;
}

static bool parse_int64(const char *s, int64_t *ret) {
        char *end;

        /* int() accepts surrounding whitespace and a sign; so do we, nothing more. */
        while (*s == ' ' || *s == '\t' || *s == '\n')
                s++;
        if (!*s)
                return false;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || end == s)
                return false;
        while (*end == ' ' || *end == '\t' || *end == '\n')
                end++;
        if (*end)
                return false;
        *ret = v;
        return true;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* What Python's uuid.UUID() accepts (braces, "urn:uuid:", hyphens anywhere), canonical out. */
static bool parse_uuid(const char *s, char ret[static 37]) {
        uint8_t bytes[16];
        size_t n = 0;
        const char *p;

        p = startswith(s, "urn:uuid:") ?: s;
        if (*p == '{')
                p++;
        for (; *p && *p != '}'; p++) {
                if (*p == '-')
                        continue;
                int h = hexval(p[0]);
                int l = p[1] ? hexval(p[1]) : -1;
                if (h < 0 || l < 0 || n >= 16)
                        return false;
                bytes[n++] = (uint8_t) (h << 4 | l);
                p++;
        }
        if (*p == '}' && p[1])
                return false;
        if (n != 16)
                return false;
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0], bytes[1],
                 bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9], bytes[10], bytes[11],
                 bytes[12], bytes[13], bytes[14], bytes[15]);
        return true;
}

static int random_uuid(char ret[static 37]) {
        uint8_t b[16];
        size_t got = 0;

        while (got < sizeof(b)) {
                ssize_t k = getrandom(b + got, sizeof(b) - got, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) k;
        }
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        snprintf(ret, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

static char *globals_to_xml(App *app);
static int app_mark_durable(App *app, int fd);

/* Where a qube's element is in a text app_save() writes. */
typedef struct DomainSpan {
        Domain *d;
        uint32_t off, len;
} DomainSpan;
static char *app_to_xml_spans(App *app, DomainSpan **ret_spans, size_t *ret_n);

/* ---- loading -------------------------------------------------------------------------------- */

/* A VM reference seen in the file, checked once every qube exists. */
typedef struct PendingRef {
        Domain *domain; /* NULL for a global property */
        const PropDef *prop;
        long line;
} PendingRef;

typedef struct DomainNode {
        Domain *domain;
        xmlNode *node;
} DomainNode;

typedef struct LoadContext {
        App *app; /* the temporary App being filled */
        const char *path;
        QError *err;
        PendingRef *refs;
        size_t n_refs, alloc_refs;
        DomainNode *doms;
        size_t n_doms, alloc_doms;
        const char *data; /* the document, for lines libxml2 does not record */
        size_t len;
        char *default_fw_netvm; /* legacy global, migrated then dropped */
        bool have_default_fw_netvm;
} LoadContext;

static void load_context_done(LoadContext *c) {
        free(c->refs);
        free(c->doms);
        free(c->default_fw_netvm);
}

/* Refuse the file: "<path>:<line>: <what>". fmt may only use "%s", each taking a const char*. */
static int load_fail(LoadContext *c, long line, const char *fmt, ...) {
        _cleanup_free_ char *full = NULL;
        const char *fields[16];
        char linebuf[32];
        size_t n = 0;
        va_list ap;

        snprintf(linebuf, sizeof(linebuf), "%ld", line);
        fields[n++] = c->path;
        fields[n++] = linebuf;
        va_start(ap, fmt);
        for (const char *p = fmt; (p = strstr(p, "%s")); p += 2)
                if (n < ELEMENTSOF(fields))
                        fields[n++] = va_arg(ap, const char *);
        va_end(ap);

        if (asprintf(&full, "%%s:%%s: %s", fmt) < 0)
                return -ENOMEM;
        qerror_setv(c->err, QERR_QUBES_EXCEPTION, full, fields, n);
        return -EINVAL;
}

static int add_ref(LoadContext *c, Domain *d, const PropDef *p, long line) {
        if (c->n_refs == c->alloc_refs) {
                size_t na = c->alloc_refs ? c->alloc_refs * 2 : 64;
                PendingRef *n = realloc(c->refs, na * sizeof(PendingRef));
                if (!n)
                        return -ENOMEM;
                c->refs = n;
                c->alloc_refs = na;
        }
        c->refs[c->n_refs++] = (PendingRef){ .domain = d, .prop = p, .line = line };
        return 0;
}

static int add_domain_node(LoadContext *c, Domain *d, xmlNode *node) {
        if (c->n_doms == c->alloc_doms) {
                size_t na = c->alloc_doms ? c->alloc_doms * 2 : 64;
                DomainNode *n = realloc(c->doms, na * sizeof(DomainNode));
                if (!n)
                        return -ENOMEM;
                c->doms = n;
                c->alloc_doms = na;
        }
        c->doms[c->n_doms++] = (DomainNode){ .domain = d, .node = node };
        return 0;
}

static const PropSlot *domain_slot_named(Domain *d, const char *name) {
        const PropDef *p = domain_prop_find(d->klass, name);
        return p ? domain_slot(d, p) : NULL;
}

static bool domain_slot_true(Domain *d, const char *name) {
        const PropSlot *s = domain_slot_named(d, name);
        return s && s->set && streq_ptr(s->value, "True");
}

static PropSlot *global_slot(App *app, const char *name) {
        const PropDef *p = global_prop_find(name);
        return p ? &app->props[global_prop_index(p)] : NULL;
}

static int global_store(App *app, const PropDef *p, const char *value) {
        PropSlot *s = &app->props[global_prop_index(p)];
        int r = free_and_strdup(&s->value, value);
        if (r < 0)
                return r;
        s->set = true;
        return 0;
}

/* The value of a <property>: a non-empty ref= wins over the text, as upstream's
 * "node.get('ref') or node.text". */
static char *property_raw_value(xmlNode *n, bool *oom) {
        char *ref = node_attr(n, "ref", oom);
        if (ref && *ref)
                return ref;
        free(ref);
        if (*oom)
                return NULL;
        char *t = node_text(n);
        if (!t)
                *oom = true;
        return t;
}

/* Turn a raw file value into the canonical stored value (NULL = None). */
static int canonical_value(LoadContext *c, xmlNode *n, const PropDef *p, const char *raw, char **ret) {
        _cleanup_qerror_ QError e = {};
        int r;

        if (p->type == PROP_LABEL) {
                Label *l = app_find_label(c->app, raw);
                if (!l)
                        return load_fail(c, node_line(n), "property '%s': no such label '%s'", p->name, raw);
                *ret = strdup(l->name);
                return *ret ? 0 : -ENOMEM;
        }

        r = prop_sanitize(p, raw, strlen(raw), ret, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                return load_fail(c, node_line(n), "invalid value '%s' for property '%s': %s", raw, p->name,
                                 msg ?: "invalid value");
        }
        return 0;
}

static int load_labels(LoadContext *c, xmlNode *labels) {
        FOREACH_CHILD_ELEMENT(n, labels) {
                _cleanup_free_ char *id = NULL, *color = NULL, *name = NULL;
                bool oom = false;
                int64_t index;
                const char *num;
                int r;

                if (!node_is(n, "label"))
                        continue;
                id = node_attr(n, "id", &oom);
                color = node_attr(n, "color", &oom);
                name = node_text(n);
                if (oom || !name)
                        return -ENOMEM;
                if (!id)
                        return load_fail(c, node_line(n), "label without id");
                num = startswith(id, "label-");
                if (!num || !parse_int64(num, &index) || index <= 0 || index > INT_MAX)
                        return load_fail(c, node_line(n), "invalid label id '%s'", id);
                if (!color)
                        return load_fail(c, node_line(n), "label '%s' without color", name);
                if (isempty(name))
                        return load_fail(c, node_line(n), "label '%s' without a name", id);
                for (size_t i = 0; i < c->app->n_labels; i++) {
                        if (c->app->labels[i]->index == (int) index)
                                return load_fail(c, node_line(n), "duplicate label id '%s'", id);
                        if (streq(c->app->labels[i]->name, name))
                                return load_fail(c, node_line(n), "duplicate label name '%s'", name);
                }
                /* Migration: the old gray was not quite gray. */
                if (streq(color, "0x555753")) {
                        r = free_and_strdup(&color, "0x555555");
                        if (r < 0)
                                return r;
                }
                r = app_add_label(c->app, (int) index, name, color);
                if (r < 0)
                        return r == -ENOMEM ? r : load_fail(c, node_line(n), "cannot add label '%s'", name);
        }
        return 0;
}

static int load_pools(LoadContext *c, xmlNode *pools) {
        FOREACH_CHILD_ELEMENT(n, pools) {
                _cleanup_free_ char *name = NULL, *driver = NULL;
                _cleanup_strv_free_ char **config = NULL;
                bool oom = false;
                int r;

                if (!node_is(n, "pool"))
                        continue;
                name = node_attr(n, "name", &oom);
                driver = node_attr(n, "driver", &oom);
                if (oom)
                        return -ENOMEM;
                if (isempty(name))
                        return load_fail(c, node_line(n), "pool without name");
                if (isempty(driver))
                        return load_fail(c, node_line(n), "pool '%s' without driver", name);
                if (app_find_pool(c->app, name))
                        return load_fail(c, node_line(n), "duplicate pool '%s'", name);
                for (xmlAttr *a = n->properties; a; a = a->next) {
                        const char *k = (const char *) a->name;
                        if (streq(k, "name") || streq(k, "driver"))
                                continue;
                        char *v = node_attr(n, k, &oom);
                        if (oom || strv_extend(&config, k) < 0 || strv_consume(&config, v ?: strdup("")) < 0)
                                return -ENOMEM;
                }
                if (!config) {
                        config = new0(char *, 1);
                        if (!config)
                                return -ENOMEM;
                }
                r = app_add_pool(c->app, name, driver, config);
                if (r < 0)
                        return r == -ENOMEM ? r : load_fail(c, node_line(n), "cannot add pool '%s'", name);
        }
        return 0;
}

static int load_features(LoadContext *c, Domain *d, xmlNode *features) {
        FOREACH_CHILD_ELEMENT(n, features) {
                _cleanup_free_ char *name = NULL, *value = NULL;
                bool oom = false;

                if (!node_is(n, "feature"))
                        continue;
                name = node_attr(n, "name", &oom);
                value = node_text(n);
                if (oom || !value)
                        return -ENOMEM;
                if (isempty(name))
                        return load_fail(c, node_line(n), "feature without name in qube '%s'", d->name);
                /* a later duplicate must not silently win (nor an earlier one) */
                if (domain_feature_get(d, name))
                        return load_fail(c, node_line(n), "duplicate feature '%s' in qube '%s'", name, d->name);
                if (domain_feature_store(d, name, value) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int load_tags(LoadContext *c, Domain *d, xmlNode *tags) {
        FOREACH_CHILD_ELEMENT(n, tags) {
                _cleanup_free_ char *name = NULL;
                bool oom = false;

                if (!node_is(n, "tag"))
                        continue;
                name = node_attr(n, "name", &oom);
                if (oom)
                        return -ENOMEM;
                if (isempty(name))
                        return load_fail(c, node_line(n), "tag without name in qube '%s'", d->name);
                if (validate_tag(name, NULL) < 0)
                        return load_fail(c, node_line(n), "invalid tag '%s' in qube '%s'", name, d->name);
                if (domain_has_tag(d, name))
                        continue;
                if (domain_tag_store(d, name) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int load_volumes(LoadContext *c, Domain *d, xmlNode *volumes) {
        FOREACH_CHILD_ELEMENT(n, volumes) {
                _cleanup_free_ char *name = NULL;
                _cleanup_strv_free_ char **attrs = NULL;
                _cleanup_free_ char **kept = NULL; /* attrs packed */
                bool oom = false;
                VolumeConfig *v = NULL;

                if (!node_is(n, "volume"))
                        continue;
                name = node_attr(n, "name", &oom);
                if (oom)
                        return -ENOMEM;
                if (isempty(name))
                        return load_fail(c, node_line(n), "volume without name in qube '%s'", d->name);
                for (xmlAttr *a = n->properties; a; a = a->next) {
                        const char *k = (const char *) a->name;
                        if (streq(k, "name"))
                                continue;
                        char *val = node_attr(n, k, &oom);
                        if (oom || strv_extend(&attrs, k) < 0 || strv_consume(&attrs, val ?: strdup("")) < 0)
                                return -ENOMEM;
                }
                kept = volume_attrs_pack(attrs);
                if (!kept)
                        return -ENOMEM;
                /* A repeated volume replaces the earlier one (upstream keeps a dict). */
                for (size_t i = 0; i < d->n_volumes; i++)
                        if (streq(d->volumes[i].name, name))
                                v = &d->volumes[i];
                if (v) {
                        free(v->attrs);
                        v->attrs = TAKE_PTR(kept);
                        continue;
                }
                VolumeConfig *nv = realloc(d->volumes, (d->n_volumes + 1) * sizeof(VolumeConfig));
                if (!nv)
                        return -ENOMEM;
                d->volumes = nv;
                d->volumes[d->n_volumes++] = (VolumeConfig){
                        .name = TAKE_PTR(name),
                        .attrs = TAKE_PTR(kept),
                };
        }
        return 0;
}

/* Name, qid and uuid are needed to create the object, before the other properties. */
static int prescan_identity(xmlNode *props, char **name, char **qid, char **uuid) {
        if (!props)
                return 0;
        FOREACH_CHILD_ELEMENT(n, props) {
                _cleanup_free_ char *pname = NULL;
                bool oom = false;
                char **target;

                if (!node_is(n, "property"))
                        continue;
                pname = node_attr(n, "name", &oom);
                if (oom)
                        return -ENOMEM;
                if (!pname)
                        continue;
                if (streq(pname, "name"))
                        target = name;
                else if (streq(pname, "qid"))
                        target = qid;
                else if (streq(pname, "uuid"))
                        target = uuid;
                else
                        continue;
                free(*target);
                *target = property_raw_value(n, &oom);
                if (oom)
                        return -ENOMEM;
        }
        return 0;
}

static int load_domain_properties(LoadContext *c, Domain *d, xmlNode *props) {
        const PropDef *virt_mode = domain_prop_find(d->klass, "virt_mode");
        const PropDef *tfd = domain_prop_find(d->klass, "template_for_dispvms");
        _cleanup_free_ char *legacy_hvm = NULL, *legacy_dispvm_allowed = NULL;
        long hvm_line = 0, dispvm_allowed_line = 0;
        int r;

        if (!props)
                return 0;

        FOREACH_CHILD_ELEMENT(n, props) {
                _cleanup_free_ char *pname = NULL, *raw = NULL, *value = NULL;
                const PropDef *p;
                bool oom = false;

                if (!node_is(n, "property"))
                        continue;
                pname = node_attr(n, "name", &oom);
                if (oom)
                        return -ENOMEM;
                if (isempty(pname))
                        return load_fail(c, node_line(n), "property without name in qube '%s'", d->name);
                raw = property_raw_value(n, &oom);
                if (oom)
                        return -ENOMEM;

                p = domain_prop_find(d->klass, pname);
                /* Legacy names (R3/R4.0), migrated below unless the new property is also there. */
                if (!p && streq(pname, "hvm") && virt_mode) {
                        free(legacy_hvm);
                        legacy_hvm = TAKE_PTR(raw);
                        hvm_line = node_line(n);
                        continue;
                }
                if (!p && streq(pname, "dispvm_allowed")) {
                        free(legacy_dispvm_allowed);
                        legacy_dispvm_allowed = TAKE_PTR(raw);
                        dispvm_allowed_line = node_line(n);
                        continue;
                }
                if (!p)
                        return load_fail(c, node_line(n), "property '%s' is not valid for class %s", pname,
                                         qubes_class_to_string(d->klass));
                if (p->flags & PROP_STATELESS)
                        return load_fail(c, node_line(n), "property '%s' is computed and cannot be stored", pname);

                r = canonical_value(c, n, p, raw, &value);
                if (r < 0)
                        return r;
                if (domain_property_store(d, p, value) < 0)
                        return -ENOMEM;
                if (p->type == PROP_VM && value) {
                        r = add_ref(c, d, p, node_line(n));
                        if (r < 0)
                                return r;
                }
        }

        if (legacy_hvm && !domain_slot(d, virt_mode)->set) {
                int b = parse_bool_word(legacy_hvm);
                if (b < 0)
                        return load_fail(c, hvm_line, "invalid value '%s' for property '%s'", legacy_hvm, "hvm");
                if (domain_property_store(d, virt_mode, b ? "hvm" : "pv") < 0)
                        return -ENOMEM;
        }
        if (legacy_dispvm_allowed && tfd && !domain_slot(d, tfd)->set) {
                int b = parse_bool_word(legacy_dispvm_allowed);
                if (b < 0)
                        return load_fail(c, dispvm_allowed_line, "invalid value '%s' for property '%s'",
                                         legacy_dispvm_allowed, "dispvm_allowed");
                if (domain_property_store(d, tfd, b ? "True" : "False") < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int load_domain(LoadContext *c, xmlNode *n) {
        _cleanup_free_ char *klass_s = NULL, *id = NULL, *name = NULL, *qid_s = NULL, *uuid_s = NULL;
        _cleanup_qerror_ QError e = {};
        xmlNode *props, *sub;
        QubesClass klass;
        char uuid[37];
        bool oom = false, generated_uuid = false;
        int64_t qid;
        Domain *d, *other;
        long line = node_line(n);
        int r;

        klass_s = node_attr(n, "class", &oom);
        id = node_attr(n, "id", &oom);
        if (oom)
                return -ENOMEM;
        if (isempty(klass_s))
                return load_fail(c, line, "domain without class");
        klass = qubes_class_from_string(klass_s);
        if (klass < 0)
                return load_fail(c, line, "unknown class '%s'", klass_s);

        props = child_element(n, "properties");
        r = prescan_identity(props, &name, &qid_s, &uuid_s);
        if (r < 0)
                return r;

        if (klass == QUBES_CLASS_ADMINVM) {
                if (name && !streq(name, "dom0"))
                        return load_fail(c, line, "the AdminVM must be named dom0, not '%s'", name);
                if (qid_s && (!parse_int64(qid_s, &qid) || qid != 0))
                        return load_fail(c, line, "the AdminVM must have qid 0, not '%s'", qid_s);
                if (uuid_s && !streq(uuid_s, DOM0_UUID))
                        return load_fail(c, line, "the AdminVM must have uuid %s, not '%s'", DOM0_UUID, uuid_s);
                if (!name) {
                        name = strdup("dom0");
                        if (!name)
                                return -ENOMEM;
                }
                qid = 0;
                strcpy(uuid, DOM0_UUID);
        } else {
                if (!name)
                        return load_fail(c, line, "domain without name");
                if (qid_s) {
                        if (!parse_int64(qid_s, &qid))
                                return load_fail(c, line, "invalid qid '%s' of qube '%s'", qid_s, name);
                } else {
                        /* Upstream always writes the qid property; id="domain-N" is a fallback. */
                        const char *num = id ? startswith(id, "domain-") : NULL;
                        if (!num || !parse_int64(num, &qid))
                                return load_fail(c, line, "qube '%s' has no qid", name);
                }
                if (qid <= 0 || qid > QUBES_MAX_QID) {
                        char q[32];
                        snprintf(q, sizeof(q), "%" PRId64, qid);
                        return load_fail(c, line, "qid %s of qube '%s' is out of range (1..10000)", q, name);
                }
                if (uuid_s) {
                        if (!parse_uuid(uuid_s, uuid))
                                return load_fail(c, line, "invalid uuid '%s' of qube '%s'", uuid_s, name);
                } else {
                        /* As upstream: a qube without uuid gets a random one, saved from now on. */
                        r = random_uuid(uuid);
                        if (r < 0)
                                return r;
                        generated_uuid = true;
                }
        }

        if (validate_vm_name(name, &e) < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                return load_fail(c, line, "invalid qube name '%s': %s", name, msg ?: "invalid name");
        }
        if (app_get_domain(c->app, name))
                return load_fail(c, line, "duplicate qube name '%s'", name);
        other = app_get_domain_by_qid(c->app, qid);
        if (other) {
                char q[32];
                snprintf(q, sizeof(q), "%" PRId64, qid);
                return load_fail(c, line, "duplicate qid %s (qubes '%s' and '%s')", q, other->name, name);
        }
        other = app_get_domain_by_uuid(c->app, uuid);
        if (other)
                return load_fail(c, line, "duplicate uuid %s (qubes '%s' and '%s')", uuid, other->name, name);

        r = app_add_domain(c->app, klass, name, qid, uuid, &d);
        if (r < 0)
                return r == -ENOMEM ? r : load_fail(c, line, "cannot add qube '%s'", name);

        r = load_domain_properties(c, d, props);
        if (r < 0)
                return r;
        if (generated_uuid) {
                const PropDef *p = domain_prop_find(klass, "uuid");
                if (p && domain_property_store(d, p, uuid) < 0)
                        return -ENOMEM;
        }

        sub = child_element(n, "features");
        if (sub) {
                r = load_features(c, d, sub);
                if (r < 0)
                        return r;
        }
        sub = child_element(n, "tags");
        if (sub) {
                r = load_tags(c, d, sub);
                if (r < 0)
                        return r;
        }
        /* Only QubesVM classes have storage; anything else in the file is ignored, as upstream. */
        sub = child_element(n, "volume-config");
        if (sub && (CLASSES_QUBESVM & (1u << klass))) {
                r = load_volumes(c, d, sub);
                if (r < 0)
                        return r;
        }
        /* Devices need every backend qube, so they come later. */
        return add_domain_node(c, d, n);
}

static int ensure_dom0(LoadContext *c) {
        const PropDef *p;
        Domain *d;
        Label *black;
        int r;

        if (app_get_domain_by_qid(c->app, 0))
                return 0;
        if (app_get_domain(c->app, "dom0"))
                return load_fail(c, 0, "a qube named dom0 exists but is not the AdminVM");
        r = app_add_domain(c->app, QUBES_CLASS_ADMINVM, "dom0", 0, DOM0_UUID, &d);
        if (r < 0)
                return r;
        black = app_find_label(c->app, "black");
        p = domain_prop_find(QUBES_CLASS_ADMINVM, "label");
        if (black && p && domain_property_store(d, p, black->name) < 0)
                return -ENOMEM;
        return 0;
}

static int load_global_properties(LoadContext *c, xmlNode *props) {
        int r;

        FOREACH_CHILD_ELEMENT(n, props) {
                _cleanup_free_ char *pname = NULL, *raw = NULL, *value = NULL;
                const PropDef *p;
                bool oom = false;

                if (!node_is(n, "property"))
                        continue;
                pname = node_attr(n, "name", &oom);
                if (oom)
                        return -ENOMEM;
                if (isempty(pname))
                        return load_fail(c, node_line(n), "global property without name");
                raw = property_raw_value(n, &oom);
                if (oom)
                        return -ENOMEM;
                if (streq(pname, "default_fw_netvm")) {
                        free(c->default_fw_netvm);
                        c->default_fw_netvm = TAKE_PTR(raw);
                        c->have_default_fw_netvm = true;
                        continue;
                }
                p = global_prop_find(pname);
                if (!p)
                        return load_fail(c, node_line(n), "global property '%s' is not valid", pname);
                if (p->flags & PROP_STATELESS)
                        return load_fail(c, node_line(n), "property '%s' is computed and cannot be stored", pname);
                r = canonical_value(c, n, p, raw, &value);
                if (r < 0)
                        return r;
                if (p->type == PROP_POOL && value && !app_find_pool(c->app, value))
                        return load_fail(c, node_line(n), "global property '%s': no such pool '%s'", pname, value);
                if (global_store(c->app, p, value) < 0)
                        return -ENOMEM;
                if (p->type == PROP_VM && value) {
                        r = add_ref(c, NULL, p, node_line(n));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int load_devices(LoadContext *c, Domain *d, xmlNode *devices) {
        _cleanup_free_ char *devclass = NULL;
        bool oom = false;

        devclass = node_attr(devices, "class", &oom);
        if (oom)
                return -ENOMEM;
        if (isempty(devclass))
                return load_fail(c, node_line(devices), "devices without class in qube '%s'", d->name);
        if (!strv_contains(d->device_classes, devclass) && strv_extend(&d->device_classes, devclass) < 0)
                return -ENOMEM;

        FOREACH_CHILD_ELEMENT(n, devices) {
                _cleanup_free_ char *backend = NULL, *port = NULL, *mode = NULL, *required = NULL, *identity = NULL;
                _cleanup_strv_free_ char **options = NULL;
                const char *effective_mode;
                DeviceAssignment *na;

                if (!node_is(n, "device"))
                        continue;
                backend = node_attr(n, "backend-domain", &oom);
                port = node_attr(n, "id", &oom);
                mode = node_attr(n, "mode", &oom);
                required = node_attr(n, "required", &oom);
                identity = node_attr(n, "identity", &oom);
                if (oom)
                        return -ENOMEM;
                /* devices: no backend-domain is an assignment of any backend; no id, any port */
                if (isempty(backend))
                        backend = mfree(backend);
                if (isempty(port) && free_and_strdup(&port, "*") < 0)
                        return -ENOMEM;
                /* devices: ids from before PCI paths ("00:14.0") become paths (spec §6) */
                if (streq(devclass, "pci")) {
                        char *path = pci_port_from_legacy(port);
                        if (path) {
                                free(port);
                                port = path;
                        }
                }

                FOREACH_CHILD_ELEMENT(o, n) {
                        _cleanup_free_ char *oname = NULL, *ovalue = NULL;

                        if (!node_is(o, "option"))
                                continue;
                        oname = node_attr(o, "name", &oom);
                        ovalue = node_text(o);
                        if (oom || !ovalue)
                                return -ENOMEM;
                        if (isempty(oname))
                                return load_fail(c, node_line(o), "device option without name in qube '%s'", d->name);
                        /* Legacy: the identity once travelled as an option, which wins. */
                        if (streq(oname, "identity")) {
                                free(identity);
                                identity = TAKE_PTR(ovalue);
                                continue;
                        }
                        if (strv_extend(&options, oname) < 0 || strv_extend(&options, ovalue) < 0)
                                return -ENOMEM;
                }

                /* Legacy required= wins over mode=; no mode at all meant required. */
                if (required) {
                        int b = parse_bool_word(required);
                        if (b < 0) {
                                log_warning("%s:%ld: skipping device %s:%s of qube '%s': invalid required='%s'",
                                            c->path, node_line(n), strempty(backend), port, d->name, required);
                                continue;
                        }
                        effective_mode = b ? "required" : "auto-attach";
                } else
                        effective_mode = mode ?: "required";
                if (!streq(effective_mode, "required") && !streq(effective_mode, "auto-attach") &&
                    !streq(effective_mode, "ask-to-attach")) {
                        log_warning("%s:%ld: skipping device %s:%s of qube '%s': unrecognised mode '%s'", c->path,
                                    node_line(n), strempty(backend), port, d->name, effective_mode);
                        continue;
                }
                if (backend && !app_get_domain(c->app, backend)) {
                        log_warning("%s:%ld: skipping device %s:%s of qube '%s': no such backend qube", c->path,
                                    node_line(n), backend, port, d->name);
                        continue;
                }
                if (!options) {
                        options = new0(char *, 1);
                        if (!options)
                                return -ENOMEM;
                }

                na = realloc(d->devices, (d->n_devices + 1) * sizeof(DeviceAssignment));
                if (!na)
                        return -ENOMEM;
                d->devices = na;
                DeviceAssignment a = {
                        .devclass = strdup(devclass),
                        .backend = TAKE_PTR(backend),
                        .port_id = TAKE_PTR(port),
                        .mode = strdup(effective_mode),
                        .identity = identity ? TAKE_PTR(identity) : strdup("*"),
                        .options = TAKE_PTR(options),
                };
                if (!a.devclass || !a.mode || !a.identity) {
                        free(a.devclass);
                        free(a.backend);
                        free(a.port_id);
                        free(a.mode);
                        free(a.identity);
                        strv_free(a.options);
                        return -ENOMEM;
                }
                d->devices[d->n_devices++] = a;
        }
        return 0;
}

static const PropSlot *ref_slot(LoadContext *c, const PendingRef *ref) {
        if (ref->domain)
                return domain_slot(ref->domain, ref->prop);
        return &c->app->props[global_prop_index(ref->prop)];
}

static const char *ref_holder(const PendingRef *ref) {
        return ref->domain ? ref->domain->name : "(global)";
}

/* Upstream drops default_fw_netvm; qubes that provide network and used that default get it as
 * an explicit netvm, so nothing changes behaviour. */
static int migrate_default_fw_netvm(LoadContext *c) {
        PropSlot *dn;
        Domain *fw, *def = NULL;

        if (!c->have_default_fw_netvm || isempty(c->default_fw_netvm))
                return 0;
        fw = app_get_domain(c->app, c->default_fw_netvm);
        if (!fw)
                return 0; /* upstream ignores a dangling value */
        dn = global_slot(c->app, "default_netvm");
        if (dn && dn->set && dn->value) {
                def = app_get_domain(c->app, dn->value);
                if (!def)
                        return 0;
        }
        if (def == fw)
                return 0;
        for (size_t i = 0; i < c->n_doms; i++) {
                Domain *d = c->doms[i].domain;
                const PropDef *p = domain_prop_find(d->klass, "netvm");
                if (!p || domain_slot(d, p)->set || !domain_slot_true(d, "provides_network"))
                        continue;
                if (domain_property_store(d, p, fw->name) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int check_references(LoadContext *c) {
        for (size_t i = 0; i < c->n_refs; i++) {
                const PendingRef *ref = &c->refs[i];
                const PropSlot *s = ref_slot(c, ref);
                const char *pname = ref->prop->name;
                Domain *t;

                if (!s->set || !s->value)
                        continue;
                t = app_get_domain(c->app, s->value);
                if (!t)
                        return load_fail(c, ref->line, "property '%s' of %s refers to a missing qube '%s'", pname,
                                         ref_holder(ref), s->value);
                if (streq(pname, "template") && ref->domain) {
                        if (ref->domain->klass == QUBES_CLASS_APPVM && t->klass != QUBES_CLASS_TEMPLATEVM)
                                return load_fail(c, ref->line, "template '%s' of qube '%s' is not a TemplateVM",
                                                 t->name, ref->domain->name);
                        if (ref->domain->klass == QUBES_CLASS_DISPVM && !domain_slot_true(t, "template_for_dispvms"))
                                return load_fail(c, ref->line,
                                                 "template '%s' of qube '%s' is not a disposable template", t->name,
                                                 ref->domain->name);
                }
                if (streq(pname, "default_template") && !ref->domain && t->klass != QUBES_CLASS_TEMPLATEVM)
                        return load_fail(c, ref->line, "default_template '%s' is not a TemplateVM", t->name);
                if (streq(pname, "netvm") && ref->domain && !domain_slot_true(t, "provides_network"))
                        return load_fail(c, ref->line, "netvm '%s' of qube '%s' does not provide network", t->name,
                                         ref->domain->name);
        }
        return 0;
}

/* Upstream blanks default_dispvm/management_dispvm pointing at a qube that is not a disposable
 * template (explicitly None from then on). */
static int blank_bad_dispvm_refs(LoadContext *c) {
        static const char *const names[] = { "default_dispvm", "management_dispvm" };

        for (size_t k = 0; k < ELEMENTSOF(names); k++) {
                const PropDef *gp = global_prop_find(names[k]);
                PropSlot *gs = gp ? &c->app->props[global_prop_index(gp)] : NULL;
                if (gs && gs->set && gs->value) {
                        Domain *t = app_get_domain(c->app, gs->value);
                        if (!t || !domain_slot_true(t, "template_for_dispvms")) {
                                log_info("%s: global %s '%s' is not a disposable template, reset to None", c->path,
                                         names[k], gs->value);
                                if (global_store(c->app, gp, NULL) < 0)
                                        return -ENOMEM;
                        }
                }
                for (size_t i = 0; i < c->n_doms; i++) {
                        Domain *d = c->doms[i].domain;
                        const PropDef *p = domain_prop_find(d->klass, names[k]);
                        const PropSlot *s = p ? domain_slot(d, p) : NULL;
                        if (!s || !s->set || !s->value)
                                continue;
                        Domain *t = app_get_domain(c->app, s->value);
                        if (t && domain_slot_true(t, "template_for_dispvms"))
                                continue;
                        log_info("%s: %s of qube '%s' ('%s') is not a disposable template, reset to None", c->path,
                                 names[k], d->name, s->value);
                        if (domain_property_store(d, p, NULL) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

/* The netvm a qube uses, following the defaults (TemplateVM: None; DispVM: its template's). */
static Domain *effective_netvm(LoadContext *c, Domain *d, unsigned depth) {
        const PropDef *p = domain_prop_find(d->klass, "netvm");
        const PropSlot *s;
        PropSlot *g;

        if (!p || depth > 8)
                return NULL;
        s = domain_slot(d, p);
        if (s->set)
                return s->value ? app_get_domain(c->app, s->value) : NULL;
        if (d->klass == QUBES_CLASS_TEMPLATEVM)
                return NULL;
        if (d->klass == QUBES_CLASS_DISPVM) {
                const PropSlot *t = domain_slot_named(d, "template");
                Domain *tmpl = t && t->set && t->value ? app_get_domain(c->app, t->value) : NULL;
                return tmpl ? effective_netvm(c, tmpl, depth + 1) : NULL;
        }
        g = global_slot(c->app, "default_netvm");
        return g && g->set && g->value ? app_get_domain(c->app, g->value) : NULL;
}

/* A loop would hang every walk along the chain; upstream breaks it by an explicit None. */
static int break_netvm_loops(LoadContext *c) {
        for (size_t i = 0; i < c->n_doms; i++) {
                Domain *d = c->doms[i].domain;
                const PropDef *p = domain_prop_find(d->klass, "netvm");
                Domain *cur;
                size_t steps = 0;

                if (!p)
                        continue;
                for (cur = effective_netvm(c, d, 0); cur && cur != d && steps <= c->n_doms; steps++)
                        cur = effective_netvm(c, cur, 0);
                if (cur != d)
                        continue;
                log_warning("%s: netvm loop through qube '%s', setting its netvm to None", c->path, d->name);
                if (domain_property_store(d, p, NULL) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int load_document(LoadContext *c, xmlDoc *doc) {
        xmlNode *root = xmlDocGetRootElement(doc), *sub;
        int r;

        if (doc->intSubset || doc->extSubset) {
                /* DTD nodes carry no line: find it in the text. */
                const char *at = memmem(c->data, c->len, "<!DOCTYPE", STRLEN("<!DOCTYPE"));
                long line = 1;
                for (const char *p = c->data; at && p < at; p++)
                        line += *p == '\n';
                return load_fail(c, line, "document type declarations are not allowed");
        }
        if (!node_is(root, "qubes"))
                return load_fail(c, node_line(root), "the root element is not <qubes>");

        /* Stage 1: labels and pools. */
        sub = child_element(root, "labels");
        if (sub && (r = load_labels(c, sub)) < 0)
                return r;
        sub = child_element(root, "pools");
        if (sub && (r = load_pools(c, sub)) < 0)
                return r;

        /* Stage 2 and 4 in one go: our stores do not depend on each other; references are
         * checked once everything is there. */
        sub = child_element(root, "domains");
        if (sub) {
                FOREACH_CHILD_ELEMENT(n, sub) {
                        if (!node_is(n, "domain"))
                                continue;
                        r = load_domain(c, n);
                        if (r < 0)
                                return r;
                }
        }
        r = ensure_dom0(c);
        if (r < 0)
                return r;

        /* Stage 3: global properties. */
        sub = child_element(root, "properties");
        if (sub && (r = load_global_properties(c, sub)) < 0)
                return r;

        for (size_t i = 0; i < c->n_doms; i++) {
                FOREACH_CHILD_ELEMENT(n, c->doms[i].node) {
                        if (!node_is(n, "devices"))
                                continue;
                        r = load_devices(c, c->doms[i].domain, n);
                        if (r < 0)
                                return r;
                }
        }

        /* Stage 5: migrations and checks. */
        r = migrate_default_fw_netvm(c);
        if (r < 0)
                return r;
        r = check_references(c);
        if (r < 0)
                return r;
        r = blank_bad_dispvm_refs(c);
        if (r < 0)
                return r;
        return break_netvm_loops(c);
}

typedef struct ParseError {
        bool set;
        int line;
        char *message;
} ParseError;

static void parse_error_handler(void *userdata, XMLERROR_CONST xmlError *error) {
        ParseError *pe = userdata;

        if (pe->set || !error || error->level < XML_ERR_ERROR)
                return;
        pe->set = true;
        pe->line = error->line;
        if (error->message) {
                pe->message = strdup(error->message);
                if (pe->message) {
                        size_t l = strlen(pe->message);
                        while (l > 0 && (pe->message[l - 1] == '\n' || pe->message[l - 1] == ' '))
                                pe->message[--l] = 0;
                }
        }
}

/* Move everything that qubes.xml describes from one App to the other (both directions), so
 * that a failed load leaves the target untouched and a good one replaces it at once. */
static void app_swap_content(App *a, App *b) {
#define SWAP(x, y)                   \
        do {                         \
                typeof(x) _t_ = (x); \
                (x) = (y);           \
                (y) = _t_;           \
        } while (0)
        app_domains_changed(a);
        app_domains_changed(b);
        SWAP(a->domains, b->domains);
        SWAP(a->domains_by_uuid, b->domains_by_uuid);
        SWAP(a->by_qid, b->by_qid);
        SWAP(a->labels, b->labels);
        SWAP(a->n_labels, b->n_labels);
        SWAP(a->pools, b->pools);
        SWAP(a->n_pools, b->n_pools);
        SWAP(a->props, b->props);
#undef SWAP
        for (App *x = a; x; x = x == a ? b : NULL) {
                size_t i = 0;
                const char *k;
                void *v;
                if (!x->domains)
                        continue;
                while (hashmap_iterate(x->domains, &i, &k, &v))
                        ((Domain *) v)->app = x;
        }
}

int app_load_from_memory(App *app, const char *data, size_t len, const char *path, QError *err) {
        _cleanup_(load_context_done) LoadContext c = {
                .path = path ?: "qubes.xml",
                .err = err,
                .data = data,
                .len = len,
        };
        _cleanup_app_free_ App *tmp = NULL;
        ParseError pe = {};
        xmlDoc *doc;
        int r, options;

        if (len > QUBES_XML_MAX_SIZE)
                return load_fail(&c, 0, "the file is larger than 64 MiB");

        /* No network, no DTD loading, no entity substitution (XML_PARSE_NOENT stays off). */
        options = XML_PARSE_NONET | XML_PARSE_NOWARNING;
#if LIBXML_VERSION >= 20900
        options |= XML_PARSE_BIG_LINES;
#endif
        xmlSetStructuredErrorFunc(&pe, parse_error_handler);
        doc = xmlReadMemory(data, (int) len, c.path, NULL, options);
        xmlSetStructuredErrorFunc(NULL, NULL);
        if (!doc || pe.set) {
                char line[32];
                /* libxml2 refuses an empty buffer without reporting anything */
                snprintf(line, sizeof(line), "%d", pe.line > 0 ? pe.line : 1);
                r = qerror_set(err, QERR_QUBES_EXCEPTION, "%s:%s: %s", c.path, line,
                               pe.message ?: (len == 0 ? "the document is empty" : "not a well-formed XML document"));
                free(pe.message);
                xmlFreeDoc(doc);
                return r;
        }

        r = app_new(app->state_dir, &tmp);
        if (r < 0) {
                xmlFreeDoc(doc);
                return r;
        }
        c.app = tmp;
        r = load_document(&c, doc);
        xmlFreeDoc(doc);
        if (r < 0) {
                if (r == -ENOMEM && !qerror_is_set(err))
                        qerror_set(err, QERR_QUBES_EXCEPTION, "%s: out of memory", c.path);
                return r;
        }

        /* tmp now holds the old content and frees it. */
        app_swap_content(app, tmp);
        return 0;
}

static bool same_file(int fd, const char *path) {
        struct stat a, b;

        if (fstat(fd, &a) < 0 || stat(path, &b) < 0)
                return false;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Open and lock qubes.xml, retrying when it was replaced while we waited for the lock (a
 * writer renames a new file over it; holding a lock on the old inode protects nothing).
 * Returns the fd, -ENOENT when there is no file, or another -errno. */
static int open_locked(const char *path, bool *locked) {
        for (unsigned attempt = 0; attempt < 100; attempt++) {
                int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
                *locked = true;
                if (fd < 0 && errno == EACCES) {
                        /* Read-only access (tools, tests as a user): nothing to serialise with. */
                        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                        *locked = false;
                }
                if (fd < 0)
                        return -errno;
                if (*locked && lockf(fd, F_LOCK, 0) < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                if (same_file(fd, path))
                        return fd;
                close(fd);
        }
        return -EBUSY;
}

static int read_fd_limited(int fd, size_t limit, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, alloc = 0;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_size > limit)
                return -EFBIG;
        alloc = (size_t) st.st_size + 1;
        buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= alloc) {
                        if (alloc > limit + 1)
                                return -EFBIG;
                        char *n = realloc(buf, alloc * 2);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        alloc *= 2;
                }
                ssize_t k = read(fd, buf + len, alloc - len - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        if (len > limit)
                return -EFBIG;
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static void remove_stale_temp_files(const char *xml_path) {
        _cleanup_free_ char *dir = strdup(xml_path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!slash)
                return;
        *slash = 0;
        const char *base = slash + 1;
        size_t blen = strlen(base);
        DIR *d = opendir(*dir ? dir : "/");
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                /* exactly "<base>~XXXXXX", as write_file_atomic() names them */
                if (strncmp(de->d_name, base, blen) != 0 || de->d_name[blen] != '~' ||
                    strlen(de->d_name + blen + 1) != 6)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        log_info("Removed %s/%s, left by an interrupted save.", dir, de->d_name);
        }
        closedir(d);
}

int app_load(App *app, QError *err) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        struct stat st;
        size_t len = 0;
        bool locked;
        int r;

        if (!app->xml_path)
                return -EINVAL;

        fd = open_locked(app->xml_path, &locked);
        if (fd == -ENOENT) {
                app->xml_loaded = false;
                return 0;
        }
        if (fd < 0) {
                qerror_set(err, QERR_QUBES_EXCEPTION, "%s: cannot open: %s", app->xml_path, strerror(-fd));
                return fd;
        }

        r = read_fd_limited(fd, QUBES_XML_MAX_SIZE, &data, &len);
        if (r == -EFBIG)
                return qerror_set(err, QERR_QUBES_EXCEPTION, "%s: the file is larger than 64 MiB", app->xml_path);
        if (r < 0) {
                qerror_set(err, QERR_QUBES_EXCEPTION, "%s: cannot read: %s", app->xml_path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0)
                return -errno;

        r = app_load_from_memory(app, data, len, app->xml_path, err);
        if (r < 0)
                return r;
        app->xml_mtime = st.st_mtim;
        app->xml_loaded = true;
        /* While we hold the lock nobody is writing: a temporary file left now is from a writer
         * killed between create and rename, and only wastes space. */
        remove_stale_temp_files(app->xml_path);
        /* A second descriptor of what was read is what a rollback reads back. Closing the
         * previous one (perhaps of this inode) drops the lock, as closing fd does: done last. */
        int keep = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (keep < 0)
                return -errno;
        return app_mark_durable(app, keep);
}

/* ---- transactions ------------------------------------------------------------------------ */

/* fd (taken) is open on what qubes.xml now holds: a rollback returns there. */
static int app_mark_durable(App *app, int fd) {
        char *g = globals_to_xml(app);
        if (!g) {
                close(fd);
                return -ENOMEM;
        }
        if (app->durable_fd >= 0)
                close(app->durable_fd);
        app->durable_fd = fd;
        free(app->durable_globals);
        app->durable_globals = g;
        size_t i = 0;
        void *v;
        while (hashmap_iterate(app->domains, &i, NULL, &v)) {
                ((Domain *) v)->changed = false;
                ((Domain *) v)->xml_len = 0; /* a save then says where each element is */
        }
        return 0;
}

bool app_has_uncommitted(App *app) {
        _cleanup_free_ char *g = NULL;
        size_t i = 0;
        void *v;

        if (app->n_removed > 0)
                return true;
        while (hashmap_iterate(app->domains, &i, NULL, &v))
                if (((Domain *) v)->changed)
                        return true;
        g = globals_to_xml(app);
        return !g || !streq_ptr(g, app->durable_globals);
}

/* What qubes.xml holds of a qube goes back to its durable form; what only runs in memory (the
 * runtime slots: xid, start_time, …; power state; the bus layer's userdata) stays. */
static int domain_swap_content(Domain *d, Domain *t) {
#define SWAP(x, y)                   \
        do {                         \
                typeof(x) _t_ = (x); \
                (x) = (y);           \
                (y) = _t_;           \
        } while (0)
        /* The saved slots either qube has: first each gets the other's (empty), which may fail
         * and changes nothing a reader sees, then their contents swap, which cannot fail. */
        uint64_t both = d->props_present | t->props_present;
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n_domain_props; i++) {
                        if ((domain_props[i].flags & PROP_STATELESS) || !(both & (UINT64_C(1) << i)))
                                continue;
                        PropSlot *a = domain_slot_make(d, &domain_props[i]);
                        PropSlot *b = domain_slot_make(t, &domain_props[i]);
                        if (!a || !b)
                                return -ENOMEM;
                        if (pass == 1)
                                SWAP(*a, *b);
                }
        SWAP(d->features, t->features);
        SWAP(d->tags, t->tags);
        SWAP(d->volumes, t->volumes);
        SWAP(d->n_volumes, t->n_volumes);
        SWAP(d->devices, t->devices);
        SWAP(d->n_devices, t->n_devices);
        SWAP(d->device_classes, t->device_classes);
#undef SWAP
        d->xml_len = 0;
        return 0;
}

static bool same_qube(const Domain *a, const Domain *b) {
        return a->klass == b->klass && a->qid == b->qid && streq(a->name, b->name);
}

void app_rollback(App *app) {
        _cleanup_qerror_ QError e = {};
        _cleanup_app_free_ App *tmp = NULL;
        _cleanup_free_ char *g = NULL, *durable = NULL;
        _cleanup_free_ Domain **current = NULL;
        size_t n = 0, i = 0, len = 0;
        void *v;
        int r;

        /* the events of the refused transaction are never sent */
        app_txn_done(app, false);
        if (app->durable_fd < 0) {
                log_error("qubes.xml was never saved: the changes since start-up stay in memory.");
                return;
        }
        /* The text is read back from the file as it was made durable (the descriptor kept from
         * then), not from the path: a save that renamed its file but then failed (the directory's
         * fsync) has not replaced it, and neither has another writer. */
        r = read_fd_from_start(app->durable_fd, QUBES_XML_MAX_SIZE, &durable, &len);
        if (r < 0) {
                log_error("Cannot read back the saved qubes.xml: %s; the changes stay in memory.", strerror(-r));
                return;
        }
        r = app_new(app->state_dir, &tmp);
        if (r >= 0)
                r = app_load_from_memory(tmp, durable, len, app->xml_path, &e);
        durable = mfree(durable);
        if (r < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                log_error("Cannot return to the saved qubes.xml: %s", msg ?: strerror(-r));
                return;
        }

        /* the qubes removed since: the same objects come back */
        for (size_t k = app->n_removed; k > 0; k--) {
                Domain *d = app->removed[k - 1];
                Domain *t = app_get_domain(tmp, d->name);
                if (!t || !same_qube(d, t) || app_adopt_domain(app, d) < 0)
                        domain_free(d);
        }
        app->removed = mfree(app->removed);
        app->n_removed = 0;

        /* the qubes there now: created since (gone), changed since (their saved content back) */
        current = new0(Domain *, hashmap_size(app->domains) + 1);
        if (!current) {
                log_oom();
                return;
        }
        while (hashmap_iterate(app->domains, &i, NULL, &v))
                current[n++] = v;
        for (size_t k = 0; k < n; k++) {
                Domain *d = current[k];
                Domain *t = app_get_domain(tmp, d->name);
                if (!t || !same_qube(d, t)) {
                        app_forget_domain(app, d);
                        domain_free(d);
                        continue;
                }
                if (d->changed && domain_swap_content(d, t) < 0) {
                        /* it keeps what was refused, and the next save writes it */
                        log_oom();
                        continue;
                }
                d->changed = false;
        }
        /* the qubes that were saved but are not here (removed outside a transaction) */
        free(current);
        current = new0(Domain *, hashmap_size(tmp->domains) + 1);
        if (!current) {
                log_oom();
                return;
        }
        n = i = 0;
        while (hashmap_iterate(tmp->domains, &i, NULL, &v))
                if (!app_get_domain(app, ((Domain *) v)->name))
                        current[n++] = v;
        for (size_t k = 0; k < n; k++) {
                app_forget_domain(tmp, current[k]);
                if (app_adopt_domain(app, current[k]) < 0)
                        domain_free(current[k]);
                else
                        current[k]->changed = false;
        }

        /* labels, pools, global properties */
        g = globals_to_xml(app);
        if (!g || !streq_ptr(g, app->durable_globals)) {
#define SWAP(x, y)                   \
        do {                         \
                typeof(x) _t_ = (x); \
                (x) = (y);           \
                (y) = _t_;           \
        } while (0)
                SWAP(app->labels, tmp->labels);
                SWAP(app->n_labels, tmp->n_labels);
                SWAP(app->pools, tmp->pools);
                SWAP(app->n_pools, tmp->n_pools);
                SWAP(app->props, tmp->props);
#undef SWAP
        }
        app_domains_changed(app);
        log_info("Returned to the saved qubes.xml.");
}

int app_commit(App *app, QError *err) {
        _cleanup_qerror_ QError own = {};
        int r;

        if (!err)
                err = &own;
        r = app_save(app, err);
        if (r < 0) {
                if (!qerror_is_set(err))
                        qerror_set(err, QERR_QUBES_EXCEPTION, "Failed to save qubes.xml: %s", strerror(-r));
                app_rollback(app);
        } else
                app_txn_done(app, true);
        if (app->committed)
                app->committed(app, r, err, app->committed_userdata);
        return r;
}

static void chown_to_qubes_group(const char *path) {
        struct group grbuf, *gr = NULL;
        char buf[4096];

        if (geteuid() != 0)
                return;
        if (getgrnam_r("qubes", &grbuf, buf, sizeof(buf), &gr) != 0 || !gr)
                return;
        if (chown(path, (uid_t) -1, gr->gr_gid) < 0)
                log_debug_errno(errno, "Cannot chown %s to group qubes: %m", path);
}

int app_save(App *app, QError *err) {
        _cleanup_free_ char *xml = NULL;
        _cleanup_free_ DomainSpan *spans = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t n_spans = 0;
        bool locked = false;
        int r;

        if (!app->xml_path)
                return -EINVAL;
        xml = app_to_xml_spans(app, &spans, &n_spans);
        if (!xml) {
                qerror_set(err, QERR_QUBES_EXCEPTION, "Out of memory");
                return -ENOMEM;
        }

        fd = open_locked(app->xml_path, &locked);
        if (fd < 0 && fd != -ENOENT) {
                qerror_set(err, QERR_QUBES_EXCEPTION, "%s: cannot open: %s", app->xml_path, strerror(-fd));
                return fd;
        }
        if (fd >= 0 && (app->xml_mtime.tv_sec != 0 || app->xml_mtime.tv_nsec != 0)) {
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (st.st_mtim.tv_sec != app->xml_mtime.tv_sec || st.st_mtim.tv_nsec != app->xml_mtime.tv_nsec)
                        return qerror_set(err, QERR_QUBES_EXCEPTION, "Someone else modified qubes.xml in the meantime");
        }

        int written = -EBADF;
        r = write_file_atomic_keep(app->xml_path, xml, strlen(xml), 0660, &written);
        xml = mfree(xml); /* what was written is read back from the file if ever needed */
        if (r < 0) {
                qerror_set(err, QERR_QUBES_EXCEPTION, "%s: cannot write: %s", app->xml_path, strerror(-r));
                return r;
        }
        chown_to_qubes_group(app->xml_path);
        if (fstat(written, &st) < 0) {
                r = -errno;
                close(written);
                qerror_set(err, QERR_QUBES_EXCEPTION, "%s: cannot stat: %s", app->xml_path, strerror(-r));
                return r;
        }
        app->xml_mtime = st.st_mtim;
        app->xml_loaded = true;
        r = app_mark_durable(app, written);
        if (r < 0) {
                qerror_set(err, QERR_QUBES_EXCEPTION, "Out of memory");
                return r;
        }
        /* the file durable_fd now reads is this text: each qube's element is there */
        for (size_t i = 0; i < n_spans; i++)
                if (spans[i].d) {
                        spans[i].d->xml_off = spans[i].off;
                        spans[i].d->xml_len = spans[i].len;
                }
        /* The lock on the old inode is held until here, so a reader that waited for it sees the
         * new file when it re-checks the path. */
        return 0;
}

/* ---- writing -------------------------------------------------------------------------------- */

/* Escaping exactly as libxml2's serializer (what upstream's lxml writes): text escapes &, <, >
 * and CR; attributes also " and TAB/LF/CR as character references. Characters that XML 1.0
 * cannot carry at all are dropped so that the file always loads again. */
static void append_escaped(StrBuf *b, const char *s, bool attribute) {
        const char *run = s;

        for (const char *p = s;; p++) {
                const char *rep = NULL;
                unsigned char ch = (unsigned char) *p;
                bool drop = false;

                if (ch == 0)
                        break;
                switch (ch) {
                case '&':
                        rep = "&amp;";
                        break;
                case '<':
                        rep = "&lt;";
                        break;
                case '>':
                        rep = "&gt;";
                        break;
                case '\r':
                        rep = "&#13;";
                        break;
                case '"':
                        rep = attribute ? "&quot;" : NULL;
                        break;
                case '\n':
                        rep = attribute ? "&#10;" : NULL;
                        break;
                case '\t':
                        rep = attribute ? "&#9;" : NULL;
                        break;
                default:
                        drop = ch < 0x20;
                }
                if (!rep && !drop)
                        continue;
                strbuf_append_n(b, run, (size_t) (p - run));
                if (rep)
                        strbuf_append(b, rep);
                run = p + 1;
        }
        strbuf_append(b, run);
}

static void indent(StrBuf *b, unsigned level) {
        for (unsigned i = 0; i < level; i++)
                strbuf_append(b, "  ");
}

static void append_attr(StrBuf *b, const char *name, const char *value) {
        strbuf_append_c(b, ' ');
        strbuf_append(b, name);
        strbuf_append(b, "=\"");
        append_escaped(b, strempty(value), true);
        strbuf_append_c(b, '"');
}

/* <elem name="key">text</elem>; an empty text keeps the end tag, as lxml writes text=''. */
static void append_named_text(StrBuf *b, unsigned level, const char *elem, const char *key, const char *text) {
        indent(b, level);
        strbuf_printf(b, "<%s", elem);
        append_attr(b, "name", key);
        strbuf_append_c(b, '>');
        append_escaped(b, strempty(text), false);
        strbuf_printf(b, "</%s>\n", elem);
}

/* Upstream writes a pool as its driver's config dict: name, the location keys (dir_path;
 * volume_group, thin_pool; container), driver, then the tunables (revisions_to_keep,
 * ephemeral_volatile, …; conf_id for callback pools). Pool.config holds the attributes other
 * than name/driver in file order; we write them in that canonical order whatever order the file
 * had (as upstream itself rewrites it), and keys we do not know keep their relative order among
 * the location keys. For every file upstream wrote this is byte-for-byte its own order. */
static const char *const pool_location_keys[] = { "dir_path", "volume_group", "thin_pool", "container", NULL };
static const char *const pool_tunable_keys[] = {
        "revisions_to_keep", "setup_check", "ephemeral_volatile", "snap_on_start_forensics", "conf_id", NULL,
};

static bool key_in(const char *k, const char *const *list) {
        for (; *list; list++)
                if (streq(k, *list))
                        return true;
        return false;
}

static void write_pool_keys(StrBuf *b, const Pool *p, const char *const *order) {
        for (; *order; order++)
                for (char **kv = p->config; kv && kv[0] && kv[1]; kv += 2)
                        if (streq(kv[0], *order))
                                append_attr(b, kv[0], kv[1]);
}

static void write_pool(StrBuf *b, const Pool *p) {
        indent(b, 2);
        strbuf_append(b, "<pool");
        append_attr(b, "name", p->name);
        write_pool_keys(b, p, pool_location_keys);
        for (char **kv = p->config; kv && kv[0] && kv[1]; kv += 2)
                if (!key_in(kv[0], pool_location_keys) && !key_in(kv[0], pool_tunable_keys))
                        append_attr(b, kv[0], kv[1]);
        append_attr(b, "driver", p->driver);
        write_pool_keys(b, p, pool_tunable_keys);
        strbuf_append(b, "/>\n");
}

static void write_device(StrBuf *b, const DeviceAssignment *a) {
        indent(b, 4);
        strbuf_append(b, "<device");
        if (a->backend) /* devices: an assignment of any backend has none */
                append_attr(b, "backend-domain", a->backend);
        append_attr(b, "id", a->port_id);
        append_attr(b, "mode", a->mode);
        append_attr(b, "identity", a->identity ?: "*");
        if (!a->options || !a->options[0]) {
                strbuf_append(b, "/>\n");
                return;
        }
        strbuf_append(b, ">\n");
        for (char **kv = a->options; kv[0] && kv[1]; kv += 2)
                append_named_text(b, 5, "option", kv[0], kv[1]);
        indent(b, 4);
        strbuf_append(b, "</device>\n");
}

static void write_devices_of_class(StrBuf *b, const Domain *d, const char *devclass) {
        bool any = false;

        indent(b, 3);
        strbuf_append(b, "<devices");
        append_attr(b, "class", devclass);
        for (size_t i = 0; i < d->n_devices; i++) {
                if (!streq_ptr(d->devices[i].devclass, devclass))
                        continue;
                if (!any)
                        strbuf_append(b, ">\n");
                any = true;
                write_device(b, &d->devices[i]);
        }
        if (any) {
                indent(b, 3);
                strbuf_append(b, "</devices>\n");
        } else
                strbuf_append(b, "/>\n");
}

static void write_devices(StrBuf *b, const Domain *d) {
        /* First the classes the file had (kept even when empty), then any class that gained
         * an assignment since, in order of first appearance. */
        STRV_FOREACH(cls, d->device_classes)
                write_devices_of_class(b, d, *cls);
        for (size_t i = 0; i < d->n_devices; i++) {
                const char *cls = d->devices[i].devclass;
                bool seen = strv_contains(d->device_classes, cls);
                for (size_t j = 0; j < i && !seen; j++)
                        seen = streq_ptr(d->devices[j].devclass, cls);
                if (!seen && cls)
                        write_devices_of_class(b, d, cls);
        }
}

static void write_domain_uncached(StrBuf *b, Domain *d) {
        const PropDef *const *props = domain_props_of_class(d->klass);
        bool any;

        indent(b, 2);
        strbuf_printf(b, "<domain id=\"domain-%" PRId64 "\"", d->qid);
        append_attr(b, "class", qubes_class_to_string(d->klass));
        strbuf_append(b, ">\n");

        any = false;
        for (const PropDef *const *p = props; p && *p; p++) {
                const PropSlot *s = domain_slot(d, *p);
                if (!s->set || ((*p)->flags & PROP_STATELESS))
                        continue;
                if (!any) {
                        indent(b, 3);
                        strbuf_append(b, "<properties>\n");
                }
                any = true;
                append_named_text(b, 4, "property", (*p)->name, s->value);
        }
        indent(b, 3);
        strbuf_append(b, any ? "</properties>\n" : "<properties/>\n");

        if (hashmap_size(d->features) == 0) {
                indent(b, 3);
                strbuf_append(b, "<features/>\n");
        } else {
                size_t i = 0;
                const char *k;
                void *v;
                indent(b, 3);
                strbuf_append(b, "<features>\n");
                while (hashmap_iterate(d->features, &i, &k, &v))
                        append_named_text(b, 4, "feature", ((Feature *) v)->name, ((Feature *) v)->value);
                indent(b, 3);
                strbuf_append(b, "</features>\n");
        }

        /* Upstream writes its tag set in hash order; we keep insertion order, which is
         * deterministic and leaves a loaded file's order as it was. */
        if (hashmap_size(d->tags) == 0) {
                indent(b, 3);
                strbuf_append(b, "<tags/>\n");
        } else {
                size_t i = 0;
                const char *k;
                void *v;
                indent(b, 3);
                strbuf_append(b, "<tags>\n");
                while (hashmap_iterate(d->tags, &i, &k, &v)) {
                        indent(b, 4);
                        strbuf_append(b, "<tag");
                        append_attr(b, "name", k);
                        strbuf_append(b, "/>\n");
                }
                indent(b, 3);
                strbuf_append(b, "</tags>\n");
        }

        write_devices(b, d);

        if (CLASSES_QUBESVM & (1u << d->klass)) {
                indent(b, 3);
                if (d->n_volumes == 0)
                        strbuf_append(b, "<volume-config/>\n");
                else {
                        strbuf_append(b, "<volume-config>\n");
                        for (size_t i = 0; i < d->n_volumes; i++) {
                                indent(b, 4);
                                strbuf_append(b, "<volume");
                                append_attr(b, "name", d->volumes[i].name);
                                for (char **kv = d->volumes[i].attrs; kv && kv[0] && kv[1]; kv += 2)
                                        append_attr(b, kv[0], kv[1]);
                                strbuf_append(b, "/>\n");
                        }
                        indent(b, 3);
                        strbuf_append(b, "</volume-config>\n");
                }
        }

        indent(b, 2);
        strbuf_append(b, "</domain>\n");
}

/* A qube's element changes only when the qube does (domain_mark_changed), so a save after one
 * change re-serialises one qube and copies the others from the durable file, read back whole
 * (page cache) through App.durable_fd: what makes a durable Set cheap with hundreds of qubes,
 * without keeping a second copy of qubes.xml in memory (1.4 KiB a qube). */
static void write_domain(StrBuf *b, Domain *d, const char *durable, size_t durable_len) {
        if (durable && d->xml_len > 0 && (size_t) d->xml_off + d->xml_len <= durable_len &&
            durable[d->xml_off + d->xml_len - 1] == '\n')
                strbuf_append_n(b, durable + d->xml_off, d->xml_len);
        else
                write_domain_uncached(b, d);
}

static void write_globals(StrBuf *b, App *app) {
        const PropDef *const *globals;
        bool any;

        indent(b, 1);
        if (app->n_labels == 0)
                strbuf_append(b, "<labels/>\n");
        else {
                strbuf_append(b, "<labels>\n");
                for (size_t i = 0; i < app->n_labels; i++) {
                        const Label *l = app->labels[i];
                        indent(b, 2);
                        strbuf_printf(b, "<label id=\"label-%d\"", l->index);
                        append_attr(b, "color", l->color);
                        strbuf_append_c(b, '>');
                        append_escaped(b, l->name, false);
                        strbuf_append(b, "</label>\n");
                }
                indent(b, 1);
                strbuf_append(b, "</labels>\n");
        }

        indent(b, 1);
        if (app->n_pools == 0)
                strbuf_append(b, "<pools/>\n");
        else {
                strbuf_append(b, "<pools>\n");
                for (size_t i = 0; i < app->n_pools; i++)
                        write_pool(b, app->pools[i]);
                indent(b, 1);
                strbuf_append(b, "</pools>\n");
        }

        any = false;
        globals = global_props_ordered();
        for (const PropDef *const *p = globals; p && *p; p++) {
                const PropSlot *s = &app->props[global_prop_index(*p)];
                if (!s->set || ((*p)->flags & PROP_STATELESS))
                        continue;
                if (!any) {
                        indent(b, 1);
                        strbuf_append(b, "<properties>\n");
                }
                any = true;
                append_named_text(b, 2, "property", (*p)->name, s->value);
        }
        indent(b, 1);
        strbuf_append(b, any ? "</properties>\n" : "<properties/>\n");
}

/* The global part (labels, pools, properties) as app_to_xml() writes it. */
static char *globals_to_xml(App *app) {
        _cleanup_strbuf_ StrBuf b = {};
        write_globals(&b, app);
        return b.oom ? NULL : strbuf_steal(&b);
}

/* spans (optional): where each qube's element is in the text, for app_save() to keep once the
 * text is durable (*ret_spans, *ret_n; free()). */
static char *app_to_xml_spans(App *app, DomainSpan **ret_spans, size_t *ret_n) {
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_free_ Domain **domains = NULL;
        _cleanup_free_ char *durable = NULL;
        _cleanup_free_ DomainSpan *spans = NULL;
        size_t n = 0, durable_len = 0;
        bool known = false;

        strbuf_append(&b, "<qubes>\n");
        write_globals(&b, app);

        domains = app_domains_sorted(app, &n);
        if (!domains)
                return NULL;
        for (size_t i = 0; i < n && !known; i++)
                known = domains[i]->xml_len > 0;
        /* unreadable: every element is written afresh */
        if (known && app->durable_fd >= 0 &&
            read_fd_from_start(app->durable_fd, QUBES_XML_MAX_SIZE, &durable, &durable_len) < 0)
                durable = NULL;
        if (ret_spans) {
                spans = new0(DomainSpan, n + 1);
                if (!spans)
                        return NULL;
        }
        indent(&b, 1);
        if (n == 0)
                strbuf_append(&b, "<domains/>\n");
        else {
                strbuf_append(&b, "<domains>\n");
                for (size_t i = 0; i < n; i++) {
                        size_t start = b.len;
                        write_domain(&b, domains[i], durable, durable_len);
                        if (spans && b.len - start <= UINT32_MAX && start <= UINT32_MAX)
                                spans[i] = (DomainSpan){ domains[i], (uint32_t) start, (uint32_t) (b.len - start) };
                }
                indent(&b, 1);
                strbuf_append(&b, "</domains>\n");
        }

        strbuf_append(&b, "</qubes>\n");
        if (b.oom)
                return NULL;
        if (ret_spans) {
                *ret_spans = TAKE_PTR(spans);
                *ret_n = n;
        }
        return strbuf_steal(&b);
}

char *app_to_xml(App *app) {
        return app_to_xml_spans(app, NULL, NULL);
}
