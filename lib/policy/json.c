/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "json.h"

#include <stdint.h>

#include "util/macros.h"
#include "util/strbuf.h"

/* Deep enough for any sane document, shallow enough that recursion cannot exhaust the stack. */
#define JSON_MAX_DEPTH 64

typedef struct Parser {
        const char *s;
        size_t len, pos;
        char *error;
        bool oom;
} Parser;

static void fail(Parser *p, const char *msg) {
        if (p->error || p->oom)
                return;
        if (asprintf(&p->error, "offset %zu: %s", p->pos, msg) < 0) {
                p->error = NULL;
                p->oom = true;
        }
}

JsonValue *json_free(JsonValue *v) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < v->n; i++) {
                json_free(v->items[i]);
                if (v->keys)
                        free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
        free(v->string);
        free(v);
        return NULL;
}

static void skip_ws(Parser *p) {
        while (p->pos < p->len &&
               (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\r' || p->s[p->pos] == '\n'))
                p->pos++;
}

static bool literal(Parser *p, const char *word) {
        size_t l = strlen(word);
        if (p->len - p->pos < l || memcmp(p->s + p->pos, word, l) != 0)
                return false;
        p->pos += l;
        return true;
}

static int hex4(Parser *p, uint32_t *ret) {
        uint32_t v = 0;
        if (p->len - p->pos < 4)
                return -EINVAL;
        for (int i = 0; i < 4; i++) {
                char c = p->s[p->pos++];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -EINVAL;
        }
        *ret = v;
        return 0;
}

static void append_utf8(StrBuf *b, uint32_t cp) {
        char out[4];
        size_t n;
        if (cp < 0x80) {
                out[0] = (char) cp;
                n = 1;
        } else if (cp < 0x800) {
                out[0] = (char) (0xC0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3F));
                n = 2;
        } else if (cp < 0x10000) {
                out[0] = (char) (0xE0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char) (0x80 | (cp & 0x3F));
                n = 3;
        } else {
                out[0] = (char) (0xF0 | (cp >> 18));
                out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
                out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
                out[3] = (char) (0x80 | (cp & 0x3F));
                n = 4;
        }
        strbuf_append_n(b, out, n);
}

/* Length of the valid UTF-8 sequence at s (at most avail bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
        uint32_t cp;
        size_t n;
        if (s[0] < 0x80)
                return 1;
        if ((s[0] & 0xE0) == 0xC0) {
                n = 2;
                cp = s[0] & 0x1F;
        } else if ((s[0] & 0xF0) == 0xE0) {
                n = 3;
                cp = s[0] & 0x0F;
        } else if ((s[0] & 0xF8) == 0xF0) {
                n = 4;
                cp = s[0] & 0x07;
        } else
                return 0;
        if (avail < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        /* overlong forms, surrogates and values beyond Unicode are not UTF-8 */
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
                return 0;
        return n;
}

static char *parse_string(Parser *p) {
        _cleanup_strbuf_ StrBuf b = {};

        /* the caller saw the opening quote */
        p->pos++;
        for (;;) {
                if (p->pos >= p->len) {
                        fail(p, "unterminated string");
                        return NULL;
                }
                unsigned char c = (unsigned char) p->s[p->pos];
                if (c == '"') {
                        p->pos++;
                        break;
                }
                if (c < 0x20) {
                        fail(p, "control character in string");
                        return NULL;
                }
                if (c != '\\') {
                        size_t n = utf8_seq((const unsigned char *) p->s + p->pos, p->len - p->pos);
                        if (n == 0) {
                                fail(p, "invalid UTF-8 in string");
                                return NULL;
                        }
                        strbuf_append_n(&b, p->s + p->pos, n);
                        p->pos += n;
                        continue;
                }
                p->pos++;
                if (p->pos >= p->len) {
                        fail(p, "unterminated string");
                        return NULL;
                }
                char e = p->s[p->pos++];
                switch (e) {
                case '"':
                        strbuf_append_c(&b, '"');
                        break;
                case '\\':
                        strbuf_append_c(&b, '\\');
                        break;
                case '/':
                        strbuf_append_c(&b, '/');
                        break;
                case 'b':
                        strbuf_append_c(&b, '\b');
                        break;
                case 'f':
                        strbuf_append_c(&b, '\f');
                        break;
                case 'n':
                        strbuf_append_c(&b, '\n');
                        break;
                case 'r':
                        strbuf_append_c(&b, '\r');
                        break;
                case 't':
                        strbuf_append_c(&b, '\t');
                        break;
                case 'u': {
                        uint32_t cp, lo;
                        if (hex4(p, &cp) < 0) {
                                fail(p, "invalid \\u escape");
                                return NULL;
                        }
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                                if (!literal(p, "\\u") || hex4(p, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
                                        fail(p, "unpaired surrogate in \\u escape");
                                        return NULL;
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                                fail(p, "unpaired surrogate in \\u escape");
                                return NULL;
                        }
                        /* names and tags are C strings: an embedded NUL would truncate them */
                        if (cp == 0) {
                                fail(p, "NUL character in string");
                                return NULL;
                        }
                        append_utf8(&b, cp);
                        break;
                }
                default:
                        fail(p, "invalid escape in string");
                        return NULL;
                }
        }
        char *s = strbuf_steal(&b);
        if (!s)
                p->oom = true;
        return s;
}

static bool parse_number(Parser *p, JsonValue *v) {
        size_t start = p->pos;
        const char *s = p->s;

        if (p->pos < p->len && s[p->pos] == '-')
                p->pos++;
        if (p->pos < p->len && s[p->pos] == '0')
                p->pos++;
        else if (p->pos < p->len && s[p->pos] >= '1' && s[p->pos] <= '9')
                while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
                        p->pos++;
        else
                return false;
        if (p->pos < p->len && s[p->pos] == '.') {
                p->pos++;
                if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9')
                        return false;
                while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
                        p->pos++;
        }
        if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
                p->pos++;
                if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-'))
                        p->pos++;
                if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9')
                        return false;
                while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
                        p->pos++;
        }
        v->string = strndup(s + start, p->pos - start);
        if (!v->string) {
                p->oom = true;
                return false;
        }
        v->number = strtod(v->string, NULL);
        return true;
}

static JsonValue *parse_value(Parser *p, unsigned depth);

static bool push_item(Parser *p, JsonValue *v, JsonValue *item, char *key) {
        JsonValue **items = realloc(v->items, sizeof(JsonValue *) * (v->n + 1));
        if (!items)
                goto oom;
        v->items = items;
        if (v->type == JSON_OBJECT) {
                char **keys = realloc(v->keys, sizeof(char *) * (v->n + 1));
                if (!keys)
                        goto oom;
                v->keys = keys;
                v->keys[v->n] = key;
        }
        v->items[v->n++] = item;
        return true;
oom:
        p->oom = true;
        json_free(item);
        free(key);
        return false;
}

static JsonValue *parse_container(Parser *p, JsonValue *v, unsigned depth) {
        _cleanup_(json_freep) JsonValue *owned = v;
        bool object = v->type == JSON_OBJECT;
        char close = object ? '}' : ']';

        p->pos++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                return TAKE_PTR(owned);
        }
        for (;;) {
                _cleanup_free_ char *key = NULL;

                skip_ws(p);
                if (object) {
                        if (p->pos >= p->len || p->s[p->pos] != '"') {
                                fail(p, "expected a string key");
                                return NULL;
                        }
                        key = parse_string(p);
                        if (!key)
                                return NULL;
                        if (json_object_get(v, key)) {
                                fail(p, "duplicate key in object");
                                return NULL;
                        }
                        skip_ws(p);
                        if (p->pos >= p->len || p->s[p->pos] != ':') {
                                fail(p, "expected ':'");
                                return NULL;
                        }
                        p->pos++;
                }
                JsonValue *item = parse_value(p, depth + 1);
                if (!item)
                        return NULL;
                if (!push_item(p, v, item, TAKE_PTR(key)))
                        return NULL;
                skip_ws(p);
                if (p->pos < p->len && p->s[p->pos] == ',') {
                        p->pos++;
                        continue;
                }
                if (p->pos < p->len && p->s[p->pos] == close) {
                        p->pos++;
                        return TAKE_PTR(owned);
                }
                fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
                return NULL;
        }
}

static JsonValue *parse_value(Parser *p, unsigned depth) {
        JsonValue *v;

        if (depth > JSON_MAX_DEPTH) {
                fail(p, "nesting too deep");
                return NULL;
        }
        skip_ws(p);
        if (p->pos >= p->len) {
                fail(p, "unexpected end of input");
                return NULL;
        }
        v = new0(JsonValue, 1);
        if (!v) {
                p->oom = true;
                return NULL;
        }
        switch (p->s[p->pos]) {
        case '{':
                v->type = JSON_OBJECT;
                return parse_container(p, v, depth);
        case '[':
                v->type = JSON_ARRAY;
                return parse_container(p, v, depth);
        case '"':
                v->type = JSON_STRING;
                v->string = parse_string(p);
                if (!v->string)
                        return json_free(v);
                return v;
        case 't':
        case 'f':
                v->type = JSON_BOOL;
                v->boolean = p->s[p->pos] == 't';
                if (!literal(p, v->boolean ? "true" : "false"))
                        break;
                return v;
        case 'n':
                v->type = JSON_NULL;
                if (!literal(p, "null"))
                        break;
                return v;
        default:
                v->type = JSON_NUMBER;
                if (!parse_number(p, v))
                        break;
                return v;
        }
        fail(p, "invalid value");
        return json_free(v);
}

int json_parse(const char *text, size_t len, JsonValue **ret, char **error) {
        Parser p = { .s = text, .len = len };
        _cleanup_(json_freep) JsonValue *v = NULL;

        if (memchr(text, 0, len)) {
                p.pos = (size_t) ((const char *) memchr(text, 0, len) - text);
                fail(&p, "NUL byte in document");
        } else {
                v = parse_value(&p, 0);
                if (v) {
                        skip_ws(&p);
                        if (p.pos != p.len)
                                fail(&p, "trailing data after the document");
                }
        }
        if (p.oom) {
                free(p.error);
                return -ENOMEM;
        }
        if (p.error) {
                if (error)
                        *error = p.error;
                else
                        free(p.error);
                return -EINVAL;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

const JsonValue *json_object_get(const JsonValue *o, const char *key) {
        if (!o || o->type != JSON_OBJECT)
                return NULL;
        for (size_t i = 0; i < o->n; i++)
                if (streq(o->keys[i], key))
                        return o->items[i];
        return NULL;
}

const char *json_type_name(JsonType t) {
        static const char *const names[] = {
                [JSON_NULL] = "null",     [JSON_BOOL] = "boolean", [JSON_NUMBER] = "number",
                [JSON_STRING] = "string", [JSON_ARRAY] = "array",  [JSON_OBJECT] = "object",
        };
        return names[t];
}
