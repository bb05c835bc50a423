/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "device-protocol.h"

#include <ctype.h>

#include "util/strv.h"

/* ---- Python's text forms ----------------------------------------------------------------- */

char *py_str_repr(const char *s) {
        _cleanup_strbuf_ StrBuf b = {};
        char quote = '\'';

        if (strchr(s, '\'') && !strchr(s, '"'))
                quote = '"';
        strbuf_append_c(&b, quote);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == quote || *p == '\\') {
                        strbuf_append_c(&b, '\\');
                        strbuf_append_c(&b, (char) *p);
                } else if (*p == '\n')
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
        strbuf_append_c(&b, quote);
        return strbuf_steal(&b);
}

/* ---- character sets ----------------------------------------------------------------------- */

bool device_key_char_ok(unsigned char c) {
        return c && (isalnum(c) || strchr("!#$%&()*+,-./:;<>?@[\\]^_{|}~", c)) && c < 0x80;
}

bool device_value_char_ok(unsigned char c) {
        return c == ' ' || (c < 0x80 && ispunct(c)) || device_key_char_ok(c);
}

static int check_chars(const char *s, bool (*ok)(unsigned char), const char *what, QError *e) {
        bool bad[256] = {};
        bool any = false;

        /* 0xff stands for a NUL of the payload (device_parse_items): it cannot be there itself,
         * non-ASCII text never gets this far */
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (!ok(*p))
                        bad[*p == 0xff ? 0 : *p] = any = true;
        if (!any)
                return 0;

        /* upstream prints the set of offending characters: {'x', 'y'} (a set has no order; code
         * point order is as good as any and stable) */
        _cleanup_strbuf_ StrBuf set = {};
        bool first = true;
        strbuf_append_c(&set, '{');
        for (unsigned c = 0; c < 256; c++) {
                char one[2] = { (char) c, 0 };
                _cleanup_free_ char *r = NULL;
                if (!bad[c])
                        continue;
                r = c == 0 ? strdup("'\\x00'") : py_str_repr(one);
                if (!r)
                        return -ENOMEM;
                if (!first)
                        strbuf_append(&set, ", ");
                first = false;
                strbuf_append(&set, r);
        }
        strbuf_append_c(&set, '}');
        if (set.oom)
                return -ENOMEM;
        return qerror_set(e, QERR_PROTOCOL, "Invalid chars in property %s: %s", what, set.buf);
}

int device_check_key(const char *s, QError *e) {
        return check_chars(s, device_key_char_ok, "name", e);
}

int device_check_value(const char *s, QError *e) {
        return check_chars(s, device_value_char_ok, "value", e);
}

int device_append_item(StrBuf *b, const char *key, const char *value, QError *e) {
        int r = device_check_key(key, e);
        if (r < 0)
                return r;
        r = device_check_value(value, e);
        if (r < 0)
                return r;
        if (b->len > 0)
                strbuf_append_c(b, ' ');
        strbuf_append(b, key);
        strbuf_append(b, "='");
        for (const char *p = value; *p; p++) {
                if (*p == '\'')
                        strbuf_append_c(b, '\\');
                strbuf_append_c(b, *p);
        }
        strbuf_append_c(b, '\'');
        return b->oom ? -ENOMEM : 0;
}

/* ---- parsing -------------------------------------------------------------------------------- */

static bool py_space(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* \' -> ' */
static char *unescape_value(const char *p, size_t n) {
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (p[i] == '\\' && i + 1 < n && p[i + 1] == '\'') {
                        *o++ = '\'';
                        i++;
                } else
                        *o++ = p[i];
        }
        *o = 0;
        return out;
}

static const char *find_last(const char *start, const char *end, const char *needle) {
        size_t n = strlen(needle);
        if (end - start < (ptrdiff_t) n)
                return NULL;
        for (const char *p = end - n;; p--) {
                if (memcmp(p, needle, n) == 0)
                        return p;
                if (p == start)
                        return NULL;
        }
}

static const char *find_first(const char *start, const char *end, const char *needle) {
        size_t n = strlen(needle);
        for (const char *p = start; p + n <= end; p++)
                if (memcmp(p, needle, n) == 0)
                        return p;
        return NULL;
}

/* Insert or replace (Python dict: a replaced key keeps its place). Takes key and value. */
static int items_put(char ***items, char *key, char *value) {
        char **l = *items;
        for (size_t i = 0; l && l[i] && l[i + 1]; i += 2)
                if (streq(l[i], key)) {
                        free(key);
                        free(l[i + 1]);
                        l[i + 1] = value;
                        return 0;
                }
        if (strv_consume(items, key) < 0) {
                free(value);
                return -ENOMEM;
        }
        if (strv_consume(items, value) < 0)
                return -ENOMEM;
        return 0;
}

int device_parse_items(const char *raw, size_t len, char ***ret, QError *e) {
        _cleanup_strv_free_ char **items = new0(char *, 1);
        _cleanup_free_ char *data = NULL;
        const char *start, *end, *p, *rest;
        _cleanup_free_ char *key = NULL;
        int r;

        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) raw[i] >= 0x80) {
                        char pos[32], byte[8];
                        snprintf(pos, sizeof pos, "%zu", i);
                        snprintf(byte, sizeof byte, "0x%02x", (unsigned char) raw[i]);
                        return qerror_set(
                                e, QERR_PROTOCOL,
                                "'ascii' codec can't decode byte %s in position %s: ordinal not in range(128)", byte,
                                pos);
                }
        /* A NUL is ASCII, and fails the checks as any control character: carry it as 0xff, which
         * the checks report as '\x00', so that C strings can hold the text. */
        data = malloc(len + 1);
        if (!data)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                data[i] = raw[i] ? raw[i] : (char) 0xff;
        data[len] = 0;
        start = data;
        end = data + len;
        while (start < end && py_space(*start))
                start++;
        while (end > start && py_space(end[-1]))
                end--;
        if (start == end) {
                *ret = TAKE_PTR(items);
                return 0;
        }

        /* the first key: everything before the first =' */
        p = find_first(start, end, "='");
        key = strndup(start, (size_t) ((p ?: end) - start));
        if (!key)
                return -ENOMEM;
        r = device_check_key(key, e);
        if (r < 0)
                return r;
        rest = p ? p + 2 : end;

        for (;;) {
                _cleanup_free_ char *value = NULL;
                const char *next = find_first(rest, end, "='");
                if (!next) {
                        /* the last value: the rest without its closing quote */
                        value = unescape_value(rest, end > rest ? (size_t) (end - rest - 1) : 0);
                        if (!value)
                                return -ENOMEM;
                        r = device_check_value(value, e);
                        if (r < 0)
                                return r;
                        r = items_put(&items, TAKE_PTR(key), TAKE_PTR(value));
                        if (r < 0)
                                return r;
                        break;
                }
                /* value' key=' : split the chunk at its last "' " */
                const char *sep = find_last(rest, next, "' ");
                _cleanup_free_ char *nkey = NULL;
                if (sep) {
                        value = unescape_value(rest, (size_t) (sep - rest));
                        nkey = strndup(sep + 2, (size_t) (next - sep - 2));
                } else {
                        value = strdup("");
                        nkey = strndup(rest, (size_t) (next - rest));
                }
                if (!value || !nkey)
                        return -ENOMEM;
                r = device_check_value(value, e);
                if (r < 0)
                        return r;
                r = items_put(&items, TAKE_PTR(key), TAKE_PTR(value));
                if (r < 0)
                        return r;
                r = device_check_key(nkey, e);
                if (r < 0)
                        return r;
                key = TAKE_PTR(nkey);
                rest = next + 2;
        }
        *ret = TAKE_PTR(items);
        return 0;
}

const char *device_items_get(char *const *items, const char *key) {
        for (size_t i = 0; items && items[i] && items[i + 1]; i += 2)
                if (streq(items[i], key))
                        return items[i + 1];
        return NULL;
}

/* ---- identities ----------------------------------------------------------------------------- */

void device_ident_done(DeviceIdent *d) {
        d->backend = mfree(d->backend);
        d->port_id = mfree(d->port_id);
        d->device_id = mfree(d->device_id);
}

/* Python's str.replace(old, new) for equal-length old and new. */
static void replace_all(char *s, const char *old, const char *new) {
        size_t n = strlen(old);
        for (char *p = strstr(s, old); p; p = strstr(p + n, old))
                memcpy(p, new, n);
}

int device_ident_from_qarg(const char *qarg, DeviceIdent *ret, QError *e) {
        const char *plus = strchr(qarg, '+');
        _cleanup_free_ char *backend = NULL, *rest = NULL, *port = NULL, *devid = NULL;
        char *colon;

        if (!plus)
                return qerror_set(e, QERR_PROTOCOL, "Device argument must be <backend>+<port_id>[+<device_id>], got %s",
                                  qarg);
        backend = strndup(qarg, (size_t) (plus - qarg));
        rest = strdup(plus + 1);
        if (!backend || !rest)
                return -ENOMEM;
        if (streq(backend, "_"))
                backend[0] = '*';
        for (char *c = rest; *c; c++)
                if (*c == '+')
                        *c = ':';
        colon = strchr(rest, ':');
        if (colon) {
                *colon = 0;
                devid = strdup(colon + 1);
        } else
                devid = strdup("");
        port = strdup(rest);
        if (!port || !devid)
                return -ENOMEM;
        if (streq(port, "_"))
                port[0] = '*';
        if (streq(devid, "_"))
                devid[0] = '*';
        replace_all(devid, DEVICE_INTERFACE_UNKNOWN_QARG, DEVICE_INTERFACE_UNKNOWN);
        if (isempty(devid) && free_and_strdup(&devid, "*") < 0)
                return -ENOMEM;
        ret->backend = TAKE_PTR(backend);
        ret->port_id = TAKE_PTR(port);
        ret->device_id = TAKE_PTR(devid);
        return 0;
}

char *device_ident_repr(const char *backend, const char *port_id, const char *device_id) {
        char *s = NULL;
        if (asprintf(&s, "%s+%s:%s", backend ?: "*", port_id ?: "*", device_id ?: "*") < 0)
                return NULL;
        return s;
}

char *device_ident_str(const char *backend, const char *port_id, const char *device_id) {
        char *s = NULL;
        if (asprintf(&s, "%s:%s:%s", backend ?: "*", port_id ?: "*", device_id ?: "*") < 0)
                return NULL;
        return s;
}

char *device_ident_qarg(const char *backend, const char *port_id, const char *device_id) {
        char *s = device_ident_repr(backend, port_id, device_id);
        if (!s)
                return NULL;
        for (char *c = s; *c; c++)
                if (*c == ':')
                        *c = '+';
        replace_all(s, DEVICE_INTERFACE_UNKNOWN, DEVICE_INTERFACE_UNKNOWN_QARG);
        for (char *c = s; *c; c++)
                if (*c == '*')
                        *c = '_';
        return s;
}

/* ---- modes and assignments -------------------------------------------------------------------- */

bool device_mode_assignable(const char *mode) {
        return mode && (streq(mode, "required") || streq(mode, "auto-attach") || streq(mode, "ask-to-attach"));
}

bool device_mode_valid(const char *mode) {
        return mode && (streq(mode, "manual") || device_mode_assignable(mode));
}

void device_assignment_data_done(DeviceAssignmentData *a) {
        a->device_id = mfree(a->device_id);
        a->mode = mfree(a->mode);
        a->frontend = mfree(a->frontend);
        a->options = strv_free(a->options);
}

int device_assignment_parse(const char *payload, size_t len, const char *devclass, const DeviceIdent *expected,
                            DeviceAssignmentData *ret, QError *e) {
        _cleanup_strv_free_ char **items = NULL, **options = new0(char *, 1);
        _cleanup_(device_assignment_data_done) DeviceAssignmentData a = {};
        const char *v;
        int r;

        if (!options)
                return -ENOMEM;
        r = device_parse_items(payload, len, &items, e);
        if (r < 0)
                return r;

        /* the order of upstream's checks: backend, port, class, identity */
        v = device_items_get(items, "backend_domain");
        if (v && !streq(v, expected->backend))
                return qerror_set(e, QERR_PROTOCOL, "Got device exposed by %swhen expected devices from %s.", v,
                                  expected->backend);
        v = device_items_get(items, "port_id");
        if (v && !streq(v, expected->port_id))
                return qerror_set(e, QERR_PROTOCOL, "Got device from port: %s when expected port: %s.", v,
                                  expected->port_id);
        v = device_items_get(items, "devclass");
        if (v && !streq(v, devclass))
                return qerror_set(e, QERR_PROTOCOL, "Got %s device when expected %s.", v, devclass);
        v = device_items_get(items, "device_id");
        if (!streq(expected->device_id, "*") && v && !streq(v, expected->device_id))
                return qerror_set(e, QERR_PROTOCOL, "Unrecognized device identity '%s' expected '%s'", v,
                                  expected->device_id);
        a.device_id = strdup(v ?: expected->device_id);
        if (!a.device_id)
                return -ENOMEM;

        /* what is left is passed to DeviceAssignment(**properties): an unknown keyword fails */
        for (size_t i = 0; items[i] && items[i + 1]; i += 2) {
                const char *k = items[i];
                if (k[0] == '_') {
                        /* an option (a later one of the same name has already replaced it) */
                        char *ok = strdup(k + 1), *ov = strdup(items[i + 1]);
                        if (!ok || !ov) {
                                free(ok);
                                free(ov);
                                return -ENOMEM;
                        }
                        r = items_put(&options, ok, ov);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (streq(k, "backend_domain") || streq(k, "port_id") || streq(k, "devclass") ||
                    streq(k, "device_id") || streq(k, "mode") || streq(k, "frontend_domain") || streq(k, "device") ||
                    streq(k, "port") || streq(k, "options"))
                        continue;
                return qerror_set(e, QERR_PROTOCOL,
                                  "DeviceAssignment.__init__() got an unexpected keyword argument '%s'", k);
        }

        v = device_items_get(items, "mode") ?: "manual";
        if (!device_mode_valid(v)) {
                _cleanup_free_ char *rv = py_str_repr(v);
                if (!rv)
                        return -ENOMEM;
                return qerror_set(e, QERR_PROTOCOL, "%s is not a valid AssignmentMode", rv);
        }
        a.mode = strdup(v);
        v = device_items_get(items, "frontend_domain");
        if (v && streq(expected->backend, "*"))
                return qerror_set(e, QERR_PROTOCOL, "Cannot determine backend domain");
        if (v && !(a.frontend = strdup(v)))
                return -ENOMEM;
        if (!a.mode)
                return -ENOMEM;
        a.options = TAKE_PTR(options);
        *ret = a;
        a = (DeviceAssignmentData){};
        return 0;
}

/* ---- interface codes ---------------------------------------------------------------------------- */

bool device_interface_code_valid(const char *code) {
        if (strlen(code) != 7 || !strchr("bump*", code[0]) || !code[0])
                return false;
        for (int i = 1; i < 7; i++)
                if (!strchr("0123456789abcdef*", code[i]) || !code[i])
                        return false;
        return true;
}

static int length_error(const char *codes, QError *e) {
        _cleanup_free_ char *r = py_str_repr(codes);
        char n[32];
        if (!r)
                return -ENOMEM;
        snprintf(n, sizeof n, "%zu", strlen(codes));
        return qerror_set(e, QERR_VALUE, "Invalid length of interfaces=%s (is %s, expected multiple of 7)", r, n);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int device_denied_canonical(const char *codes, char **ret, QError *e) {
        size_t len = strlen(codes), n = len / 7;
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_strbuf_ StrBuf b = {};

        if (len % 7 != 0)
                return length_error(codes, e);
        l = new0(char *, n + 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(l[i] = strndup(codes + i * 7, 7)))
                        return -ENOMEM;
        qsort(l, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && streq(l[i], l[i - 1]))
                        continue;
                if (!device_interface_code_valid(l[i]))
                        return qerror_set(e, QERR_PROPERTY_VALUE, "%s", DEVICE_DENIED_FORMAT_ERROR);
                strbuf_append(&b, l[i]);
        }
        if (b.oom)
                return -ENOMEM;
        *ret = b.buf ? strbuf_steal(&b) : strdup("");
        return *ret ? 0 : -ENOMEM;
}

int device_interfaces_split_payload(const char *payload, char ***ret, QError *e) {
        size_t len = strlen(payload);
        _cleanup_strv_free_ char **l = new0(char *, 1);

        if (!l)
                return -ENOMEM;
        if (len % 7 != 0)
                return length_error(payload, e);
        for (size_t i = 0; i < len; i += 7) {
                _cleanup_free_ char *c = strndup(payload + i, 7);
                if (!c)
                        return -ENOMEM;
                if (strv_contains(l, c))
                        return qerror_set(e, QERR_PROTOCOL, "Duplicated device interfaces in payload.");
                if (strv_consume(&l, TAKE_PTR(c)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
