/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backup-xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "util/macros.h"
#include "util/strv.h"

void bx_done(BxApp *a) {
        for (size_t i = 0; i < a->n; i++) {
                BxDomain *d = &a->domains[i];
                free(d->klass);
                free(d->name);
                free(d->label);
                free(d->template);
                strv_free(d->props);
                strv_free(d->features);
                strv_free(d->tags);
                strv_free(d->volumes);
                free(d->backup_path);
        }
        free(a->domains);
        strv_free(a->globals);
        *a = (BxApp){};
}

static bool named(xmlNodePtr n, const char *name) {
        return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *) name) == 0;
}

static xmlNodePtr child(xmlNodePtr n, const char *name) {
        for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
                if (named(c, name))
                        return c;
        return NULL;
}

/* The element's text ("" when it has none, like lxml's None for our purposes). */
static char *text_of(xmlNodePtr n) {
        xmlChar *t = xmlNodeGetContent(n);
        char *s = strdup(t ? (const char *) t : "");
        xmlFree(t);
        return s;
}

static char *attr(xmlNodePtr n, const char *name) {
        xmlChar *v = xmlGetProp(n, (const xmlChar *) name);
        char *s = v ? strdup((const char *) v) : NULL;
        xmlFree(v);
        return s;
}

/* name, value pairs: strv with an even number of entries */
static int pair_put(char ***l, const char *name, const char *value) {
        /* a name seen again replaces its value, as a Python dict */
        for (char **p = *l; p && p[0] && p[1]; p += 2)
                if (streq(p[0], name)) {
                        char *v = strdup(value);
                        if (!v)
                                return -ENOMEM;
                        free(p[1]);
                        p[1] = v;
                        return 0;
                }
        int r = strv_extend(l, name);
        if (r >= 0)
                r = strv_extend(l, value);
        return r;
}

static char *pair_take(char ***l, const char *name) {
        char **p = *l;
        for (size_t i = 0; p && p[i] && p[i + 1]; i += 2)
                if (streq(p[i], name)) {
                        char *v = p[i + 1];
                        free(p[i]);
                        memmove(p + i, p + i + 2, (strv_length(p + i + 2) + 1) * sizeof(char *));
                        return v;
                }
        return NULL;
}

static int fail(char **error, const char *msg) {
        *error = strdup(msg);
        return -EINVAL;
}

int bx_parse(const char *data, size_t len, BxApp *ret, char **error) {
        _cleanup_strv_free_ char **labels = NULL; /* id, name, name, name … */
        BxApp a = {};
        xmlDocPtr doc;
        xmlNodePtr root, n;
        int r = 0;

        *error = NULL;
        if (len > INT32_MAX)
                return fail(error, "qubes.xml is too large");
        doc = xmlReadMemory(data, (int) len, "qubes.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
                                                                     XML_PARSE_NOWARNING);
        if (!doc)
                return fail(error, "the backup's qubes.xml is not well-formed XML");
        root = xmlDocGetRootElement(doc);
        if (!root || !named(root, "qubes")) {
                r = fail(error, "the backup's qubes.xml has no <qubes> element");
                goto finish;
        }
        n = child(root, "labels");
        if (!n) {
                r = fail(error, "the backup's qubes.xml has no <labels>");
                goto finish;
        }
        for (xmlNodePtr l = n->children; l; l = l->next) {
                if (!named(l, "label"))
                        continue;
                _cleanup_free_ char *id = attr(l, "id"), *name = text_of(l);
                if (!id || !name || pair_put(&labels, id, name) < 0 || pair_put(&labels, name, name) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
        }
        n = child(root, "properties");
        for (xmlNodePtr p = n ? n->children : NULL; p; p = p->next) {
                if (!named(p, "property"))
                        continue;
                _cleanup_free_ char *name = attr(p, "name"), *value = text_of(p);
                if (name && value && pair_put(&a.globals, name, value) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
        }
        n = child(root, "domains");
        for (xmlNodePtr dn = n ? n->children : NULL; dn; dn = dn->next) {
                if (!named(dn, "domain"))
                        continue;
                BxDomain *l = realloc(a.domains, (a.n + 1) * sizeof(BxDomain));
                if (!l) {
                        r = -ENOMEM;
                        goto finish;
                }
                a.domains = l;
                BxDomain *d = &a.domains[a.n++];
                *d = (BxDomain){};
                d->klass = attr(dn, "class");
                if (!d->klass) {
                        r = fail(error, "a qube of the backup's qubes.xml has no class");
                        goto finish;
                }
                for (xmlNodePtr p = child(child(dn, "properties"), "property"); p; p = p->next) {
                        if (!named(p, "property"))
                                continue;
                        _cleanup_free_ char *name = attr(p, "name"), *value = text_of(p);
                        if (name && value && pair_put(&d->props, name, value) < 0) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
                for (xmlNodePtr f = child(child(dn, "features"), "feature"); f; f = f->next) {
                        if (!named(f, "feature"))
                                continue;
                        _cleanup_free_ char *name = attr(f, "name"), *value = text_of(f);
                        if (name && value && pair_put(&d->features, name, value) < 0) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
                for (xmlNodePtr t = child(child(dn, "tags"), "tag"); t; t = t->next) {
                        _cleanup_free_ char *name = named(t, "tag") ? attr(t, "name") : NULL;
                        if (name && strv_extend(&d->tags, name) < 0) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
                for (xmlNodePtr dv = dn->children; dv; dv = dv->next)
                        if (named(dv, "devices"))
                                for (xmlNodePtr x = dv->children; x; x = x->next)
                                        d->n_devices += named(x, "device");
                for (xmlNodePtr v = child(child(dn, "volume-config"), "volume"); v; v = v->next) {
                        if (!named(v, "volume"))
                                continue;
                        _cleanup_free_ char *name = attr(v, "name"), *sos = attr(v, "save_on_stop");
                        if (name && streq_ptr(sos, "True") && strv_extend(&d->volumes, name) < 0) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }

                /* what core3.py takes out of the properties */
                if (streq(d->klass, "AdminVM")) {
                        d->name = strdup("dom0");
                        free(pair_take(&d->props, "name"));
                } else
                        d->name = pair_take(&d->props, "name");
                if (!d->name) {
                        r = fail(error, "a qube of the backup's qubes.xml has no name");
                        goto finish;
                }
                _cleanup_free_ char *label = pair_take(&d->props, "label");
                for (char **p = labels; label && p && p[0] && p[1]; p += 2)
                        if (streq(p[0], label)) {
                                d->label = strdup(p[1]);
                                break;
                        }
                if (!d->label && !streq(d->klass, "AdminVM")) {
                        r = fail(error, "a qube of the backup's qubes.xml has a label that is not in its <labels>");
                        goto finish;
                }
                d->template = pair_take(&d->props, "template");
                free(pair_take(&d->props, "uuid"));
                free(pair_take(&d->props, "qid"));
                _cleanup_free_ char *content = pair_take(&d->features, "backup-content");
                _cleanup_free_ char *path = pair_take(&d->features, "backup-path");
                _cleanup_free_ char *size = pair_take(&d->features, "backup-size");
                if (content && content[0]) { /* Python truth of a string */
                        d->included = path != NULL;
                        d->backup_path = TAKE_PTR(path);
                        d->backup_size = size ? strtoull(size, NULL, 10) : 0;
                }
        }
        *ret = a;
        a = (BxApp){};
finish:
        bx_done(&a);
        xmlFreeDoc(doc);
        return r;
}

BxDomain *bx_find(const BxApp *a, const char *name) {
        for (size_t i = 0; i < a->n; i++)
                if (streq(a->domains[i].name, name))
                        return &a->domains[i];
        return NULL;
}

const char *bx_prop(const BxDomain *d, const char *name) {
        for (char **p = d->props; p && p[0] && p[1]; p += 2)
                if (streq(p[0], name))
                        return p[1];
        return NULL;
}

bool bx_has_prop(const BxDomain *d, const char *name) {
        return bx_prop(d, name) != NULL;
}

const char *bx_global(const BxApp *a, const char *name) {
        for (char **p = a->globals; p && p[0] && p[1]; p += 2)
                if (streq(p[0], name))
                        return p[1];
        return NULL;
}

void bx_firewall_free(char ***rules) {
        for (size_t i = 0; rules && rules[i]; i++)
                strv_free(rules[i]);
        free(rules);
}

static bool is_element(const xmlNode *n, const char *name) {
        return n->type == XML_ELEMENT_NODE && strcmp((const char *) n->name, name) == 0;
}

int bx_parse_firewall(const char *data, size_t len, char ****ret, char **error) {
        char ***rules = NULL;
        size_t n = 0;
        xmlDoc *doc;
        xmlNode *root;
        xmlChar *version;
        int r = -EINVAL;

        if (len > INT32_MAX) {
                *error = strdup("firewall.xml is too large");
                return -EINVAL;
        }
        doc = xmlReadMemory(data, (int) len, "firewall.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        root = doc ? xmlDocGetRootElement(doc) : NULL;
        if (!root || !is_element(root, "firewall")) {
                *error = strdup("firewall.xml is not a firewall document");
                goto out;
        }
        version = xmlGetProp(root, (const xmlChar *) "version");
        if (!version || strcmp((const char *) version, "2") != 0) {
                if (asprintf(error, "firewall.xml version %s is not supported",
                             version ? (const char *) version : "1") < 0)
                        *error = NULL;
                xmlFree(version);
                goto out;
        }
        xmlFree(version);
        rules = new0(char **, 1);
        if (!rules)
                goto oom;
        for (xmlNode *rs = root->children; rs; rs = rs->next) {
                if (!is_element(rs, "rules"))
                        continue;
                for (xmlNode *rule = rs->children; rule; rule = rule->next) {
                        char **kv = new0(char *, 1), ***grown;
                        if (!kv)
                                goto oom;
                        if (!is_element(rule, "rule")) {
                                free(kv);
                                continue;
                        }
                        for (xmlNode *ps = rule->children; ps; ps = ps->next) {
                                if (!is_element(ps, "properties"))
                                        continue;
                                for (xmlNode *p = ps->children; p; p = p->next) {
                                        if (!is_element(p, "property"))
                                                continue;
                                        xmlChar *name = xmlGetProp(p, (const xmlChar *) "name");
                                        xmlChar *text = xmlNodeGetContent(p);
                                        int k = name && text && strv_extend(&kv, (const char *) name) >= 0 &&
                                                                strv_extend(&kv, (const char *) text) >= 0
                                                        ? 0
                                                        : -ENOMEM;
                                        xmlFree(name);
                                        xmlFree(text);
                                        if (k < 0) {
                                                strv_free(kv);
                                                goto oom;
                                        }
                                }
                        }
                        grown = reallocarray(rules, n + 2, sizeof *rules);
                        if (!grown) {
                                strv_free(kv);
                                goto oom;
                        }
                        rules = grown;
                        rules[n++] = kv;
                        rules[n] = NULL;
                }
        }
        *ret = rules;
        rules = NULL;
        r = 0;
        goto out;
oom:
        *error = NULL;
        r = -ENOMEM;
out:
        bx_firewall_free(rules);
        xmlFreeDoc(doc);
        return r;
}
