/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/strbuf.h"

static bool grow(StrBuf *b, size_t extra) {
        if (b->oom)
                return false;
        if (b->len + extra + 1 <= b->alloc)
                return true;
        size_t n = b->alloc ? b->alloc : 64;
        while (n < b->len + extra + 1)
                n *= 2;
        char *p = realloc(b->buf, n);
        if (!p) {
                b->oom = true;
                return false;
        }
        b->buf = p;
        b->alloc = n;
        return true;
}

void strbuf_append_n(StrBuf *b, const char *s, size_t n) {
        if (!grow(b, n))
                return;
        memcpy(b->buf + b->len, s, n);
        b->len += n;
        b->buf[b->len] = 0;
}

void strbuf_append(StrBuf *b, const char *s) {
        strbuf_append_n(b, s, strlen(s));
}

void strbuf_append_c(StrBuf *b, char c) {
        strbuf_append_n(b, &c, 1);
}

void strbuf_vprintf(StrBuf *b, const char *fmt, va_list ap) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0 || !grow(b, (size_t) n))
                return;
        vsnprintf(b->buf + b->len, (size_t) n + 1, fmt, ap);
        b->len += (size_t) n;
}

void strbuf_printf(StrBuf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        strbuf_vprintf(b, fmt, ap);
        va_end(ap);
}

void strbuf_append_value_escaped(StrBuf *b, const char *s) {
        for (; *s; s++) {
                if (*s == '\\')
                        strbuf_append_n(b, "\\\\", 2);
                else if (*s == '\n')
                        strbuf_append_n(b, "\\n", 2);
                else
                        strbuf_append_c(b, *s);
        }
}

void strbuf_append_xml_escaped(StrBuf *b, const char *s) {
        const char *run = s;
        for (; *s; s++) {
                const char *rep = NULL;
                char tmp[8];
                switch (*s) {
                case '&':
                        rep = "&amp;";
                        break;
                case '<':
                        rep = "&lt;";
                        break;
                case '>':
                        rep = "&gt;";
                        break;
                case '"':
                        rep = "&quot;";
                        break;
                case '\'':
                        rep = "&apos;";
                        break;
                default:
                        if ((unsigned char) *s < 0x20 && *s != '\n' && *s != '\t') {
                                snprintf(tmp, sizeof tmp, "&#%d;", *s);
                                rep = tmp;
                        } else if (*s == '\n' || *s == '\t') {
                                /* keep newlines and tabs in text verbatim */
                        }
                }
                if (!rep)
                        continue;
                strbuf_append_n(b, run, (size_t) (s - run));
                strbuf_append(b, rep);
                run = s + 1;
        }
        strbuf_append_n(b, run, (size_t) (s - run));
}

void strbuf_reset(StrBuf *b) {
        b->len = 0;
        if (b->buf)
                b->buf[0] = 0;
}

char *strbuf_steal(StrBuf *b) {
        if (b->oom) {
                strbuf_done(b);
                return NULL;
        }
        char *r = b->buf ? b->buf : strdup("");
        *b = (StrBuf){};
        return r;
}

void strbuf_done(StrBuf *b) {
        free(b->buf);
        *b = (StrBuf){};
}
