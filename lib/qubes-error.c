/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "qubes-error.h"

#include <execinfo.h>
#include <stdarg.h>

#include "util/strbuf.h"
#include "util/strv.h"

static const char *const class_names[_QERR_MAX] = {
#define X(code, name) [QERR_##code] = name,
        QUBES_ERRORS(X)
#undef X
};

static const char *const dbus_names[_QERR_MAX] = {
#define X(code, name) [QERR_##code] = QUBES_DBUS_ERROR_PREFIX name,
        QUBES_ERRORS(X)
#undef X
};

const char *qubes_error_class_name(QubesErrorCode code) {
        if (code <= QERR_NONE || code >= _QERR_MAX)
                return "QubesException";
        return class_names[code];
}

const char *qubes_error_dbus_name(QubesErrorCode code) {
        if (code <= QERR_NONE || code >= _QERR_MAX)
                return dbus_names[QERR_QUBES_EXCEPTION];
        return dbus_names[code];
}

const char *qubes_error_wire_name(QubesErrorCode code) {
        switch (code) {
        case QERR_NOT_AUTHORIZED:
        case QERR_NOT_AUTHORIZED_CAN_OBTAIN:
        case QERR_NOT_AUTHORIZED_DISMISSED:
                return "PermissionDenied";
        default:
                return qubes_error_class_name(code);
        }
}

QubesErrorCode qubes_error_from_dbus_name(const char *name) {
        const char *n = name ? startswith(name, QUBES_DBUS_ERROR_PREFIX) : NULL;
        if (!n)
                return QERR_NONE;
        for (int i = 1; i < _QERR_MAX; i++)
                if (streq(class_names[i], n))
                        return (QubesErrorCode) i;
        return QERR_NONE;
}

bool qubes_error_is_protocol(QubesErrorCode code) {
        switch (code) {
        case QERR_PROTOCOL:
        case QERR_UNRECOGNIZED_ASSIGNMENT_MODE:
        case QERR_VOLUME_COPY_TOKEN_NOT_FOUND:
        case QERR_INVALID_TAG:
        case QERR_INVALID_LABEL:
        case QERR_INVALID_LABEL_VALUE:
                return true;
        default:
                return false;
        }
}

bool qubes_error_is_permission(QubesErrorCode code) {
        return code == QERR_PERMISSION_DENIED || code == QERR_NOT_AUTHORIZED ||
               code == QERR_NOT_AUTHORIZED_CAN_OBTAIN || code == QERR_NOT_AUTHORIZED_DISMISSED;
}

static bool debug_tracebacks = false;

void qerror_set_debug(bool b) {
        debug_tracebacks = b;
}

static char *capture_traceback(void) {
        void *frames[32];
        int n = backtrace(frames, ELEMENTSOF(frames));
        _cleanup_free_ char **symbols = backtrace_symbols(frames, n);
        _cleanup_strbuf_ StrBuf b = {};

        if (!symbols)
                return NULL;
        strbuf_append(&b, "Traceback (most recent call first):\n");
        /* frame 0 and 1 are this function and qerror_setv */
        for (int i = 2; i < n; i++)
                strbuf_printf(&b, "  %s\n", symbols[i]);
        return strbuf_steal(&b);
}

int qerror_setv(QError *e, QubesErrorCode code, const char *format, const char *const *fields, size_t n) {
        if (!e)
                return -EINVAL;
        qerror_done(e);
        e->code = code;
        if (debug_tracebacks)
                e->traceback = capture_traceback();
        e->format = strdup(format);
        e->fields = calloc(n + 1, sizeof(char *));
        if (!e->format || !e->fields) {
                /* keep the class even if the text could not be stored */
                free(e->format);
                e->format = NULL;
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++)
                e->fields[i] = strdup(fields[i] ? fields[i] : "None");
        return -EINVAL;
}

int qerror_set(QError *e, QubesErrorCode code, const char *format, ...) {
        const char *fields[16];
        size_t n = 0;
        va_list ap;

        va_start(ap, format);
        for (const char *p = format; *p; p++) {
                if (*p != '%')
                        continue;
                p++;
                if (*p == 's' && n < ELEMENTSOF(fields))
                        fields[n++] = va_arg(ap, const char *);
                if (!*p)
                        break;
        }
        va_end(ap);
        return qerror_setv(e, code, format, fields, n);
}

void qerror_done(QError *e) {
        if (!e)
                return;
        free(e->format);
        strv_free(e->fields);
        free(e->traceback);
        *e = (QError){};
}

void qerror_move(QError *dst, QError *src) {
        qerror_done(dst);
        *dst = *src;
        *src = (QError){};
}

char *qerror_format_message(const char *format, char *const *fields) {
        _cleanup_strbuf_ StrBuf b = {};
        size_t i = 0;

        if (!format)
                return strdup("");
        for (const char *p = format; *p; p++) {
                if (*p != '%') {
                        strbuf_append_c(&b, *p);
                        continue;
                }
                if (p[1] == 's') {
                        const char *f = fields && fields[i] ? fields[i++] : "";
                        strbuf_append(&b, f);
                        p++;
                } else if (p[1] == '%') {
                        strbuf_append_c(&b, '%');
                        p++;
                } else
                        strbuf_append_c(&b, '%');
        }
        return strbuf_steal(&b);
}

char *qerror_message(const QError *e) {
        return qerror_format_message(e->format, e->fields);
}
