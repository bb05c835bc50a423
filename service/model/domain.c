/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "model/domain.h"

#include "model/firewall.h"
#include "model/model.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>

#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* Bounds that upstream does not have (see docs/compatibility.md). */
#define FEATURE_NAME_MAX 255
#define FEATURE_VALUE_MAX 65536
#define FEATURES_MAX 4096

#define NOTES_MAX_SIZE 256000

static Feature *feature_free(Feature *f) {
        if (!f)
                return NULL;
        free(f->name);
        free(f->value);
        free(f);
        return NULL;
}

void device_assignment_done(DeviceAssignment *a) {
        free(a->devclass);
        free(a->backend);
        free(a->port_id);
        free(a->mode);
        free(a->identity);
        strv_free(a->options);
}

Domain *domain_free(Domain *d) {
        size_t i = 0;
        void *v;

        if (!d)
                return NULL;

        for (int k = __builtin_popcountll(d->props_present) - 1; k >= 0; k--) {
                free(d->props[k]->value);
                free(d->props[k]);
        }
        free(d->props);

        while (hashmap_iterate(d->features, &i, NULL, &v))
                feature_free(v);
        hashmap_free(d->features);
        i = 0;
        while (hashmap_iterate(d->tags, &i, NULL, &v))
                free(v);
        hashmap_free(d->tags);

        for (size_t k = 0; k < d->n_volumes; k++) {
                free(d->volumes[k].name);
                free(d->volumes[k].attrs); /* packed: one allocation */
        }
        free(d->volumes);
        for (size_t k = 0; k < d->n_devices; k++)
                device_assignment_done(&d->devices[k]);
        free(d->devices);
        strv_free(d->device_classes);

        firewall_free(d->firewall);
        free(d->name);
        free(d);
        return NULL;
}

/* ---- properties -------------------------------------------------------------------------- */

/* Position of index i in d->props: the slots present below it. */
static unsigned slot_pos(const Domain *d, size_t i) {
        return (unsigned) __builtin_popcountll(d->props_present & ((UINT64_C(1) << i) - 1));
}

const PropSlot *domain_slot(const Domain *d, const PropDef *p) {
        static const PropSlot unset = {};
        size_t i = domain_prop_index(p);
        if (!(d->props_present & (UINT64_C(1) << i)))
                return &unset;
        return d->props[slot_pos(d, i)];
}

PropSlot *domain_slot_make(Domain *d, const PropDef *p) {
        size_t i = domain_prop_index(p);
        unsigned pos = slot_pos(d, i), n = (unsigned) __builtin_popcountll(d->props_present);
        PropSlot **a, *s;

        if (d->props_present & (UINT64_C(1) << i))
                return d->props[pos];
        s = new0(PropSlot, 1);
        a = s ? reallocarray(d->props, n + 1, sizeof(PropSlot *)) : NULL;
        if (!a) {
                free(s);
                return NULL;
        }
        memmove(a + pos + 1, a + pos, (n - pos) * sizeof(PropSlot *));
        a[pos] = s;
        d->props = a;
        d->props_present |= UINT64_C(1) << i;
        return s;
}

int domain_property_get(Domain *d, const PropDef *p, PropValue *ret, QError *err) {
        return prop_read(d, p, domain_slot(d, p), ret, err);
}

int domain_property_get_default(Domain *d, const PropDef *p, PropValue *ret, QError *err) {
        return prop_read(d, p, NULL, ret, err);
}

int domain_property_store(Domain *d, const PropDef *p, const char *value) {
        PropSlot *s = domain_slot_make(d, p);
        if (!s)
                return -ENOMEM;
        int r = free_and_strdup(&s->value, value);
        if (r < 0)
                return r;
        s->set = true;
        domain_mark_changed(d);
        return 0;
}

/* Event keys as upstream's property events: name, [newvalue], [oldvalue] (left out when
 * there was no previous value at all; a None value is sent as NULL). */
static void emit_property_event(Domain *d, const char *kind, const char *name, const char *newvalue, bool with_new,
                                const PropValue *old) {
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
        app_emit_eventv(d->app, d, ev, kv, n);
}

int domain_property_set(Domain *d, const char *name, const char *raw, size_t len, QError *err) {
        _cleanup_free_ char *sanitised = NULL, *canonical = NULL;
        _cleanup_(prop_value_done) PropValue old = {};
        const PropDef *p = domain_prop_find(d->klass, name);
        PropSlot *s;
        int r;

        if (!p)
                return qerror_set(err, QERR_NO_SUCH_PROPERTY, "Invalid property '%s' of %s", name, d->name);
        r = prop_sanitize(p, raw, len, &sanitised, err);
        if (r < 0)
                return r;
        if (p->flags & (PROP_READONLY | PROP_STATELESS))
                return qerror_set(err, QERR_PROPERTY_VALUE, "property '%s' on %s instance cannot be set", p->name,
                                  qubes_class_to_string(d->klass));
        /* upstream answers this with an empty reply (AttributeError); we say why */
        if ((p->flags & PROP_WRITE_ONCE) && domain_slot(d, p)->set)
                return qerror_set(err, QERR_PROPERTY_VALUE, "property '%s' is write-once and already set", p->name);
        if (p->check) {
                r = p->check(d, p, sanitised, &canonical, err);
                if (r < 0)
                        return r;
        } else
                canonical = TAKE_PTR(sanitised);
        s = domain_slot_make(d, p);
        if (!s)
                return qerror_set(err, QERR_QUBES_EXCEPTION, "Out of memory");

        r = domain_property_get(d, p, &old, NULL);
        if (r < 0)
                old = (PropValue){};

        emit_property_event(d, "pre-set", p->name, canonical, true, &old);
        free(s->value);
        s->value = TAKE_PTR(canonical);
        s->set = true;
        emit_property_event(d, "set", p->name, s->value, true, &old);
        if (p->changed)
                p->changed(d, p, old.has_value ? old.value : NULL, s->value);
        return 0;
}

int domain_property_reset(Domain *d, const char *name, QError *err) {
        _cleanup_(prop_value_done) PropValue old = {}, now = {};
        const PropDef *p = domain_prop_find(d->klass, name);
        PropSlot *s;
        int r;

        if (!p)
                return qerror_set(err, QERR_NO_SUCH_PROPERTY, "Invalid property '%s' of %s", name, d->name);
        if (p->flags & PROP_WRITE_ONCE)
                return qerror_set(err, QERR_PROPERTY_VALUE, "property '%s' is write-once and already set", p->name);
        if (p->flags & PROP_NO_RESET)
                return qerror_set(err, QERR_VALUE, "Cannot unset %s", p->name);
        /* nothing to forget: no events, as nothing changed */
        if (!domain_slot(d, p)->set)
                return 0;
        s = domain_slot_make(d, p); /* there: a set slot */
        /* Going back to the default is a change like any other for the properties other qubes
         * depend on (upstream checks these resets as a set to the default): a netvm must not put
         * the qube behind itself; provides_network and template_for_dispvms must not go False
         * while qubes use them (qubes.xml would no longer load: found by test_hostile). */
        static const char *const checked_on_reset[] = { "netvm", "provides_network", "template_for_dispvms", NULL };
        if (strv_contains((char **) checked_on_reset, p->name) && p->check && p->get_default) {
                _cleanup_free_ char *dflt = NULL, *canonical = NULL;
                r = p->get_default(d, p, &dflt, err);
                if (r < 0 && r != -ENOENT)
                        return r;
                r = p->check(d, p, r == -ENOENT ? NULL : dflt, &canonical, err);
                if (r < 0)
                        return r;
        }

        r = domain_property_get(d, p, &old, NULL);
        if (r < 0)
                old = (PropValue){};
        emit_property_event(d, "pre-reset", p->name, NULL, false, &old);
        emit_property_event(d, "pre-del", p->name, NULL, false, &old);
        s->set = false;
        s->value = mfree(s->value);
        emit_property_event(d, "reset", p->name, NULL, false, &old);
        emit_property_event(d, "del", p->name, NULL, false, &old);
        if (p->changed) {
                r = domain_property_get(d, p, &now, NULL);
                p->changed(d, p, old.has_value ? old.value : NULL, r >= 0 && now.has_value ? now.value : NULL);
        }
        return 0;
}

char *domain_property_string(Domain *d, const char *name) {
        const PropDef *p = domain_prop_find(d->klass, name);
        PropValue v = {};

        if (!p || domain_property_get(d, p, &v, NULL) < 0)
                return NULL;
        return v.value;
}

Domain *domain_property_vm(Domain *d, const char *name) {
        _cleanup_free_ char *v = domain_property_string(d, name);
        return v ? app_get_domain(d->app, v) : NULL;
}

bool domain_property_bool(Domain *d, const char *name) {
        _cleanup_free_ char *v = domain_property_string(d, name);
        return v && parse_bool_word(v) == 1;
}

int64_t domain_property_int(Domain *d, const char *name, int64_t fallback) {
        _cleanup_free_ char *v = domain_property_string(d, name);
        char *end;
        long long x;

        if (isempty(v))
                return fallback;
        errno = 0;
        x = strtoll(v, &end, 10);
        if (errno != 0 || *end)
                return fallback;
        return (int64_t) x;
}

Domain *domain_template(Domain *d) {
        if (!qubes_class_has_template(d->klass))
                return NULL;
        return domain_property_vm(d, "template");
}

Domain *domain_netvm(Domain *d) {
        if (!domain_prop_find(d->klass, "netvm"))
                return NULL;
        return domain_property_vm(d, "netvm");
}

bool domain_is_running(const Domain *d) {
        return d->power_state && !streq(d->power_state, "Halted");
}

/* ---- features ---------------------------------------------------------------------------- */

const char *domain_feature_get(Domain *d, const char *name) {
        Feature *f = hashmap_get(d->features, name);
        return f ? f->value : NULL;
}

void domain_mark_changed(Domain *d) {
        d->changed = true;
        if (d->app && d->app->txn_open)
                d->app->txn_changed = true;
        d->xml_len = 0;
}

static int feature_put(Domain *d, const char *name, const char *value) {
        Feature *f = hashmap_get(d->features, name);
        int r;

        domain_mark_changed(d);
        if (f)
                return free_and_strdup(&f->value, value);

        f = new0(Feature, 1);
        if (!f)
                return -ENOMEM;
        f->name = strdup(name);
        f->value = strdup(value);
        if (!f->name || !f->value) {
                feature_free(f);
                return -ENOMEM;
        }
        r = hashmap_put(d->features, f->name, f);
        if (r < 0)
                feature_free(f);
        return r;
}

int domain_feature_store(Domain *d, const char *name, const char *value) {
        return feature_put(d, name, value ?: "");
}

/* What upstream's services extension refuses in its domain-feature-pre-set handler: these
 * names become QubesDB paths /qubes-service/<name>. */
static int check_service_feature(const char *name, QError *err) {
        const char *service = startswith(name, "service.");

        if (!service)
                return 0;
        if (!*service)
                return qerror_set(err, QERR_VALUE, "Service name cannot be empty");
        if (strchr(service, '/'))
                return qerror_set(err, QERR_VALUE, "Service name cannot contain a slash");
        if (streq(service, ".") || streq(service, ".."))
                return qerror_set(err, QERR_VALUE, "Service name cannot be \".\" or \"..\"");
        if (strlen(service) > 48 && !startswith(service, "app-dispvm."))
                return qerror_set(err, QERR_VALUE, "Service name must not exceed 48 bytes");
        return 0;
}

int domain_feature_set(Domain *d, const char *name, const char *value, QError *err) {
        _cleanup_free_ char *pre = NULL, *post = NULL, *oldvalue = NULL;
        const char *old;
        int r;

        if (isempty(name) ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(name))
                return qerror_set(err, QERR_PROTOCOL, "feature name contains illegal characters");
        for (const unsigned char *c = (const unsigned char *) value; *c; c++)
                if (*c < 0x20 || *c > 0x7e)
                        return qerror_set(err, QERR_PROTOCOL, "%s value contains illegal characters", name);
        /* Not upstream rules (the Admin API's 64 KiB request bounds them there): features travel
         * in every snapshot of the qube, so a D-Bus caller may not make them unboundedly big. */
        if (strlen(name) > FEATURE_NAME_MAX)
                return qerror_set(err, QERR_PROTOCOL, "feature name longer than 255 characters");
        if (strlen(value) > FEATURE_VALUE_MAX)
                return qerror_set(err, QERR_PROTOCOL, "%s value longer than 65536 characters", name);
        if (!domain_feature_get(d, name) && hashmap_size(d->features) >= FEATURES_MAX)
                return qerror_set(err, QERR_PROTOCOL, "too many features on %s (at most 4096)", d->name);
        r = check_service_feature(name, err);
        if (r < 0)
                return r;
        r = dispvm_feature_check(d, name, value, err);
        if (r < 0)
                return r;

        old = domain_feature_get(d, name);
        if (old) {
                oldvalue = strdup(old);
                if (!oldvalue)
                        return -ENOMEM;
        }
        if (asprintf(&pre, "domain-feature-pre-set:%s", name) < 0 || asprintf(&post, "domain-feature-set:%s", name) < 0)
                return -ENOMEM;

        const char *kv[] = { "feature", name, "value", value, "oldvalue", oldvalue };
        size_t n = oldvalue ? 6 : 4;

        app_emit_eventv(d->app, d, pre, kv, n);
        r = feature_put(d, name, value);
        if (r < 0)
                return r;
        app_emit_eventv(d->app, d, post, kv, n);
        return 0;
}

int domain_feature_remove(Domain *d, const char *name, QError *err) {
        _cleanup_free_ char *pre = NULL, *post = NULL, *key = NULL;
        Feature *f = hashmap_get(d->features, name);

        if (!f)
                return qerror_set(err, QERR_FEATURE_NOT_FOUND, "Feature not set for domain %s: %s", d->name, name);
        key = strdup(name);
        if (!key || asprintf(&pre, "domain-feature-pre-delete:%s", name) < 0 ||
            asprintf(&post, "domain-feature-delete:%s", name) < 0)
                return -ENOMEM;

        app_emit_event(d->app, d, pre, "feature", key);
        feature_free(hashmap_remove(d->features, key));
        app_emit_event(d->app, d, post, "feature", key);
        return 0;
}

int domain_feature_check(Domain *d, const char *name, FeatureCheck how, const char **ret, QError *err) {
        const char *v = NULL;
        Domain *cur = d;

        /* template and netvm links can form loops in a hand-edited file: walk at most as many
         * steps as there are qubes */
        if (how == FEATURE_CHECK_ADMINVM)
                v = domain_feature_get(d, name);
        else
                for (size_t guard = 0; cur && !v && guard <= hashmap_size(d->app->domains); guard++) {
                        v = domain_feature_get(cur, name);
                        cur = how == FEATURE_CHECK_NETVM ? domain_netvm(cur) : domain_template(cur);
                }

        if (!v && (how == FEATURE_CHECK_ADMINVM || how == FEATURE_CHECK_TEMPLATE_AND_ADMINVM)) {
                Domain *dom0 = app_dom0(d->app);
                if (dom0)
                        v = domain_feature_get(dom0, name);
        }
        if (!v)
                return qerror_set(err, QERR_FEATURE_NOT_FOUND, "Feature not set for domain %s: %s", d->name, name);
        *ret = v;
        return 0;
}

/* ---- tags -------------------------------------------------------------------------------- */

bool domain_has_tag(const Domain *d, const char *tag) {
        return hashmap_contains(d->tags, tag);
}

int domain_tag_store(Domain *d, const char *tag) {
        char *t;
        int r;

        domain_mark_changed(d);
        if (hashmap_contains(d->tags, tag))
                return 0;
        t = strdup(tag);
        if (!t)
                return -ENOMEM;
        r = hashmap_put(d->tags, t, t);
        if (r < 0)
                free(t);
        return r;
}

int domain_tag_add(Domain *d, const char *tag, QError *err) {
        _cleanup_free_ char *ev = NULL;
        int r;

        r = validate_tag(tag, err);
        if (r < 0)
                return r;
        if (hashmap_contains(d->tags, tag))
                return 0;
        if (asprintf(&ev, "domain-tag-add:%s", tag) < 0)
                return -ENOMEM;
        r = domain_tag_store(d, tag);
        if (r < 0)
                return r;
        app_emit_event(d->app, d, ev, "tag", tag);
        return 0;
}

int domain_tag_remove(Domain *d, const char *tag, QError *err) {
        _cleanup_free_ char *ev = NULL, *t = NULL;

        if (!hashmap_contains(d->tags, tag))
                return qerror_set(err, QERR_TAG_NOT_FOUND, "Tag not set for domain %s: %s", d->name, tag);
        if (asprintf(&ev, "domain-tag-delete:%s", tag) < 0)
                return -ENOMEM;
        t = hashmap_remove(d->tags, tag);
        app_emit_event(d->app, d, ev, "tag", t);
        return 0;
}

const char **domain_tags_sorted(const Domain *d) {
        return hashmap_sorted_keys(d->tags);
}

/* ---- notes ------------------------------------------------------------------------------- */

char *domain_dir(const Domain *d) {
        char *p;

        if (asprintf(&p, "%s/%s/%s", d->app->state_dir, d->klass == QUBES_CLASS_TEMPLATEVM ? "vm-templates" : "appvms",
                     d->name) < 0)
                return NULL;
        return p;
}

static int notes_path(const Domain *d, char **ret_dir, char **ret_path) {
        _cleanup_free_ char *dir = domain_dir(d);
        char *path;

        if (!dir || asprintf(&path, "%s/notes.txt", dir) < 0)
                return -ENOMEM;
        *ret_path = path;
        if (ret_dir)
                *ret_dir = TAKE_PTR(dir);
        return 0;
}

int domain_notes_get(Domain *d, char **ret, QError *err) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = notes_path(d, NULL, &path);
        if (r < 0)
                return r;
        r = read_file(path, ret, NULL);
        if (r == -ENOENT) {
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0)
                return qerror_set(err, QERR_QUBES_EXCEPTION, "Unable to read qube notes: %s", strerror(-r));
        return 0;
}

/* Decodes one UTF-8 sequence as strictly as Python's decoder (no overlong forms, no
 * surrogates, nothing above U+10FFFF). Returns its length, or 0 with *why set. */
static size_t utf8_decode(const unsigned char *s, size_t left, uint32_t *ret, const char **why) {
        uint32_t c;
        size_t n;

        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2, c = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3, c = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4, c = s[0] & 0x07;
        else {
                *why = "invalid start byte";
                return 0;
        }
        for (size_t i = 1; i < n; i++) {
                if (i >= left) {
                        *why = "unexpected end of data";
                        return 0;
                }
                unsigned char lo = 0x80, hi = 0xbf;
                if (i == 1 && s[0] == 0xe0)
                        lo = 0xa0;
                else if (i == 1 && s[0] == 0xed)
                        hi = 0x9f;
                else if (i == 1 && s[0] == 0xf0)
                        lo = 0x90;
                else if (i == 1 && s[0] == 0xf4)
                        hi = 0x8f;
                if (s[i] < lo || s[i] > hi) {
                        *why = "invalid continuation byte";
                        return 0;
                }
                c = (c << 6) | (s[i] & 0x3f);
        }
        *ret = c;
        return n;
}

/* The code points that must not reach a terminal or a GUI as they are: controls (but tab
 * and newline), bidirectional and zero-width formatting, BOM, noncharacters. */
static bool code_point_safe_for_display(uint32_t c) {
        if (c == '\t' || c == '\n')
                return true;
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
                return false;
        if ((c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff)
                return false;
        if (c >= 0xd800 && c <= 0xdfff)
                return false;
        if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) == 0xfffe)
                return false;
        return true;
}

int domain_notes_set(Domain *d, const char *text, size_t len, QError *err) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        _cleanup_strbuf_ StrBuf b = {};
        const unsigned char *s = (const unsigned char *) text;
        char lenbuf[32];
        int r;

        if (len > NOTES_MAX_SIZE) {
                snprintf(lenbuf, sizeof lenbuf, "%zu", len);
                return qerror_set(err, QERR_PROTOCOL, "Maximum note size is 256000 bytes (%s bytes received)", lenbuf);
        }

        for (size_t i = 0; i < len;) {
                const char *why = NULL;
                uint32_t c;
                size_t n = utf8_decode(s + i, len - i, &c, &why);

                if (n == 0) {
                        char detail[128];
                        /* worded as Python's UnicodeDecodeError, which upstream prints */
                        snprintf(detail, sizeof detail, "'utf-8' codec can't decode byte 0x%02x in position %zu: %s",
                                 s[i], i, why);
                        return qerror_set(err, QERR_PROTOCOL, "Unable to sanitise qube notes: %s", detail);
                }
                if (code_point_safe_for_display(c))
                        strbuf_append_n(&b, (const char *) s + i, n);
                else
                        strbuf_append_c(&b, '_');
                i += n;
        }
        if (b.oom)
                return -ENOMEM;

        r = notes_path(d, &dir, &path);
        if (r < 0)
                return r;
        r = mkdir_p(dir, 0775);
        if (r < 0)
                return qerror_set(err, QERR_QUBES_EXCEPTION, "Unable to write qube notes: %s", strerror(-r));
        r = write_file_atomic(path, b.buf ?: "", b.len, 0664);
        if (r < 0)
                return qerror_set(err, QERR_QUBES_EXCEPTION, "Unable to write qube notes: %s", strerror(-r));
        return 0;
}

bool volume_vid_valid(const char *vid) {
        const char *p = vid;
        if (!vid || !*vid || strlen(vid) > 1024 || vid[0] == '/')
                return false;
        for (;;) {
                size_t n = strcspn(p, "/");
                if (n == 0 || n > 200)
                        return false; /* empty component ("//", trailing '/') or too long */
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!isascii((unsigned char) p[i]) || !(isalnum((unsigned char) p[i]) || strchr("_.+-", p[i])))
                                return false;
                if (!p[n])
                        return true;
                p += n + 1;
        }
}

/* ---- volume config ----------------------------------------------------------------------- */

VolumeConfig *domain_volume_config(Domain *d, const char *name) {
        for (size_t i = 0; d && name && i < d->n_volumes; i++)
                if (streq(d->volumes[i].name, name))
                        return &d->volumes[i];
        return NULL;
}

const char *volume_config_get(const VolumeConfig *vc, const char *key) {
        for (char **a = vc ? vc->attrs : NULL; a && a[0] && a[1]; a += 2)
                if (streq(a[0], key))
                        return a[1];
        return NULL;
}

/* upstream's XML attribute order; unknown keys keep their place after these */
static const char *const attr_order[] = {
        "pool", "vid", "revisions_to_keep", "rw", "save_on_stop", "snap_on_start", "ephemeral", "size", "source",
};

static size_t attr_rank(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(attr_order); i++)
                if (streq(attr_order[i], key))
                        return i;
        return ELEMENTSOF(attr_order);
}

/* Words most volumes' attributes are made of: pointed to, not copied (a key is always one). */
static const char *const attr_words[] = {
        "pool",
        "vid",
        "revisions_to_keep",
        "rw",
        "save_on_stop",
        "snap_on_start",
        "ephemeral",
        "size",
        "source",
        "True",
        "False",
        "0",
        "1",
        "2",
        "varlibqubes",
        "linux-kernel",
};

static const char *attr_word(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(attr_words); i++)
                if (streq(attr_words[i], s))
                        return attr_words[i];
        return NULL;
}

char **volume_attrs_pack(char *const *strv) {
        size_t n = 0, bytes = 0;
        for (; strv && strv[n]; n++)
                if (!attr_word(strv[n]))
                        bytes += strlen(strv[n]) + 1;
        /* the array and every string in one allocation: a qube's four volumes have some 30
         * attributes, which as separate strings cost more in malloc's headers than in text */
        char **a = malloc(sizeof(char *) * (n + 1) + bytes);
        if (!a)
                return NULL;
        char *t = (char *) (a + n + 1);
        for (size_t i = 0; i < n; i++) {
                const char *w = attr_word(strv[i]);
                if (w) {
                        a[i] = (char *) w; /* never written through: volume_config_set() packs again */
                        continue;
                }
                size_t l = strlen(strv[i]) + 1;
                a[i] = memcpy(t, strv[i], l);
                t += l;
        }
        a[n] = NULL;
        return a;
}

int volume_config_set(VolumeConfig *vc, const char *key, const char *value) {
        size_t n = strv_length(vc->attrs), pos = n, k = 0;
        bool replace = false;
        for (size_t i = 0; i + 1 < n; i += 2)
                if (streq(vc->attrs[i], key)) {
                        pos = i;
                        replace = true;
                        break;
                }
        if (!replace)
                for (size_t i = 0; i + 1 < n; i += 2)
                        if (attr_rank(vc->attrs[i]) > attr_rank(key)) {
                                pos = i;
                                break;
                        }
        /* the packed array is built again with the pair in its place */
        _cleanup_free_ const char **l = new0(const char *, n + 3);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < pos; i++)
                l[k++] = vc->attrs[i];
        l[k++] = key;
        l[k++] = value;
        for (size_t i = pos + (replace ? 2 : 0); i < n; i++)
                l[k++] = vc->attrs[i];
        char **packed = volume_attrs_pack((char *const *) l);
        if (!packed)
                return -ENOMEM;
        free(vc->attrs);
        vc->attrs = packed;
        return 0;
}
