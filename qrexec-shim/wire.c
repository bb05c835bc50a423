/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "shim.h"

#include <string.h>

#include "qubes-names.h"
#include "util/strv.h"

int request_parse(char *buf, size_t len, Request *ret) {
        char *nul, *f[4];
        size_t n = 0;

        /* The header is everything up to the first NUL; no NUL at all is a framing error. */
        nul = memchr(buf, 0, len);
        if (!nul)
                return -EBADMSG;

        /* At most four fields split on single spaces; the fourth keeps any further spaces. */
        f[n++] = buf;
        for (char *p = buf; p < nul && n < 4; p++)
                if (*p == ' ') {
                        *p = 0;
                        f[n++] = p + 1;
                }
        if (n < 4)
                return -EBADMSG;

        if (streq(f[2], "keyword")) {
                /* what qrexec writes for @adminvm; every other keyword is refused as upstream */
                if (!streq(f[3], "adminvm"))
                        return -EBADMSG;
                f[3] = (char *) "dom0";
        } else if (!streq(f[2], "name"))
                return -EBADMSG;

        *ret = (Request){
                .method = f[0],
                .src = f[1],
                .dest = f[3],
                .payload = nul + 1,
                .payload_len = len - (size_t) (nul + 1 - buf),
        };
        char *plus = strchr(f[0], '+');
        if (plus) {
                *plus = 0;
                ret->arg = plus + 1;
        } else
                ret->arg = nul; /* the empty string */
        return 0;
}

bool ref_is_uuid(const char *ref) {
        return startswith(ref, "uuid:") != NULL;
}

bool ref_is_dom0(const char *ref) {
        /* dom0 is the only AdminVM, and its UUID is all zeros */
        return streq(ref, "dom0") || streq(ref, "uuid:00000000-0000-0000-0000-000000000000");
}

int validate_ref(const char *ref, QError *e) {
        const char *u = startswith(ref, "uuid:");

        if (u) {
                if (!uuid_syntax_valid(u))
                        return qerror_set(e, QERR_VM_INVALID_UUID, "VM UUID is not valid: '%s'", u);
                return 0;
        }
        return validate_vm_name(ref, e);
}

bool bytes_are_ascii(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) p[i] >= 0x80)
                        return false;
        return true;
}

void wire_append_exception(StrBuf *o, QubesErrorCode code, const char *traceback, const char *format,
                           char *const *fields) {
        strbuf_append_n(o, "2\0", 2);
        strbuf_append(o, qubes_error_wire_name(code));
        strbuf_append_c(o, 0);
        strbuf_append(o, strempty(traceback));
        strbuf_append_c(o, 0);
        strbuf_append(o, strempty(format));
        strbuf_append_c(o, 0);
        STRV_FOREACH(f, fields) {
                strbuf_append(o, *f);
                strbuf_append_c(o, 0);
        }
}

void wire_append_qerror(StrBuf *o, const QError *e) {
        wire_append_exception(o, e->code, NULL, e->format ? e->format : "Out of memory", e->fields);
}
