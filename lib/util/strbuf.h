/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>

#include "util/macros.h"

/* A growable byte buffer, always NUL-terminated (the NUL is not counted in len). An allocation
 * failure sets 'oom' and makes every later append a no-op, so callers check once at the end. */
typedef struct StrBuf {
        char *buf;
        size_t len, alloc;
        bool oom;
} StrBuf;

void strbuf_append(StrBuf *b, const char *s);
void strbuf_append_n(StrBuf *b, const char *s, size_t n);
void strbuf_append_c(StrBuf *b, char c);
void strbuf_printf(StrBuf *b, const char *fmt, ...) _printf_(2, 3);
void strbuf_vprintf(StrBuf *b, const char *fmt, va_list ap) _printf_(2, 0);
/* XML text/attribute escaping of &, <, >, " and ' (and control characters as numeric refs). */
void strbuf_append_xml_escaped(StrBuf *b, const char *s);
/* A property value as admin.*.property.GetAll writes it on its one line: "\\" for a backslash and
 * "\n" for a newline, the rest as it is. */
void strbuf_append_value_escaped(StrBuf *b, const char *s);
void strbuf_reset(StrBuf *b);
/* Returns the string (caller frees) or NULL on OOM; the StrBuf is emptied. */
char *strbuf_steal(StrBuf *b);
void strbuf_done(StrBuf *b);
#define _cleanup_strbuf_ _cleanup_(strbuf_done)
