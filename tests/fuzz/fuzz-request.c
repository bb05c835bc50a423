/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: the Admin API request framing (request_parse, shared by both doors of the shim)
 * and the reply escaping of property.GetAll (strbuf_append_value_escaped, which qubesd uses).
 *
 * Checks beyond "no crash": every field the parser returns lies inside the buffer and is
 * NUL-terminated there, the payload is exactly the bytes after the first NUL, and escaping is
 * reversible (unescaping the output gives the input back, and the output has no newline). */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const char *f, const char *buf, size_t len, const char *what) {
        if (!f || f < buf || f >= buf + len) {
                fprintf(stderr, "fuzz-request: %s points outside the request\n", what);
                abort();
        }
        if (!memchr(f, 0, (size_t) (buf + len - f))) {
                fprintf(stderr, "fuzz-request: %s is not NUL-terminated inside the request\n", what);
                abort();
        }
}

static void check_escaping(const char *s) {
        _cleanup_strbuf_ StrBuf o = {};
        size_t j = 0, n = strlen(s);

        strbuf_append_value_escaped(&o, s);
        if (o.oom || o.len == 0) {
                if (!o.oom && n != 0) {
                        fprintf(stderr, "fuzz-request: escaping lost the text\n");
                        abort();
                }
                return;
        }
        if (memchr(o.buf, '\n', o.len)) {
                fprintf(stderr, "fuzz-request: escaped text contains a newline\n");
                abort();
        }
        /* unescape and compare with the original */
        for (size_t i = 0; i < o.len; i++, j++) {
                char c = o.buf[i];
                if (c == '\\') {
                        if (++i >= o.len) {
                                fprintf(stderr, "fuzz-request: escaped text ends with a lone backslash\n");
                                abort();
                        }
                        c = o.buf[i] == 'n' ? '\n' : o.buf[i] == '\\' ? '\\' : 0;
                        if (!c) {
                                fprintf(stderr, "fuzz-request: unknown escape \\%c\n", o.buf[i]);
                                abort();
                        }
                }
                if (j >= n || s[j] != c) {
                        fprintf(stderr, "fuzz-request: unescaping does not give the input back\n");
                        abort();
                }
        }
        if (j != n) {
                fprintf(stderr, "fuzz-request: unescaped text is shorter than the input\n");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *buf = NULL, *text = NULL;
        Request req = {};
        const char *nul;

        if (size > MAX_REQUEST_SIZE)
                return 0;
        /* An exact-size copy: ASan catches any read past the request. */
        buf = malloc(size ?: 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);

        if (request_parse(buf, size, &req) == 0) {
                nul = memchr(data, 0, size);
                if (!nul) {
                        fprintf(stderr, "fuzz-request: accepted a request without a NUL\n");
                        abort();
                }
                check_field(req.method, buf, size, "method");
                check_field(req.arg, buf, size, "argument");
                check_field(req.src, buf, size, "source");
                if (!streq(req.dest, "dom0"))
                        check_field(req.dest, buf, size, "destination");
                if (req.payload != buf + (nul - (const char *) data) + 1 ||
                    req.payload_len != size - (size_t) (nul - (const char *) data) - 1) {
                        fprintf(stderr, "fuzz-request: payload is not the bytes after the first NUL\n");
                        abort();
                }
                if (memcmp(req.payload, nul + 1, req.payload_len) != 0) {
                        fprintf(stderr, "fuzz-request: the parser modified the payload\n");
                        abort();
                }
                if (strchr(req.method, ' ') || strchr(req.method, '+') || strchr(req.src, ' ')) {
                        fprintf(stderr, "fuzz-request: method or source still contains a separator\n");
                        abort();
                }
                /* what the shim checks next (ignore the outcome; only memory safety counts) */
                QError e = {};
                (void) validate_ref(req.src, &e);
                qerror_done(&e);
                (void) validate_ref(req.dest, &e);
                qerror_done(&e);
                (void) bytes_are_ascii(req.payload, req.payload_len);
        }

        /* The escaping of GetAll values on the same bytes, as a C string. */
        text = strndup((const char *) data, size);
        if (text)
                check_escaping(text);
        return 0;
}
