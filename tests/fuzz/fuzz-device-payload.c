/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/device-protocol.c on hostile input: an Admin API device argument (up to the first newline)
 * and an Assign/Attach payload (the rest), the key='value' parser alone, and the interface code
 * lists of admin.vm.device.denied.*. Whatever parses must write back and parse to the same items
 * (the writer and the parser agree; but for a value holding =' or ending in =, which the grammar
 * cannot carry), and
 * nothing may crash or leak. */
#include <stdint.h>

#include "device-protocol.h"
#include "util/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *) data, *nl = memchr(text, '\n', size);
        size_t arg_len = nl ? (size_t) (nl - text) : size;
        _cleanup_free_ char *arg = strndup(text, arg_len);
        const char *payload = nl ? nl + 1 : text + size;
        size_t payload_len = size - (size_t) (payload - text);
        _cleanup_(device_ident_done) DeviceIdent ident = {};
        _cleanup_(device_assignment_data_done) DeviceAssignmentData a = {};
        _cleanup_strv_free_ char **items = NULL, **again = NULL, **codes = NULL;
        _cleanup_free_ char *canon = NULL, *payload_str = NULL;
        _cleanup_strbuf_ StrBuf b = {};
        QError e = {};

        if (!arg)
                return 0;
        if (device_ident_from_qarg(arg, &ident, &e) >= 0) {
                _cleanup_free_ char *q = device_ident_qarg(ident.backend, ident.port_id, ident.device_id);
                (void) q;
                (void) device_assignment_parse(payload, payload_len, "block", &ident, &a, &e);
        }
        qerror_done(&e);

        if (device_parse_items(text, size, &items, &e) >= 0) {
                /* a value holding =', or ending in = (its closing quote makes one), cannot come
                 * back: upstream's grammar has no escape for it */
                for (size_t i = 0; items[i] && items[i + 1]; i += 2)
                        if (strstr(items[i + 1], "='") || endswith(items[i + 1], "="))
                                return 0;
                for (size_t i = 0; items[i] && items[i + 1]; i += 2)
                        if (device_append_item(&b, items[i], items[i + 1], &e) < 0)
                                abort(); /* what the parser accepted, the writer must accept */
                if (b.oom)
                        return 0;
                if (device_parse_items(strempty(b.buf), b.len, &again, &e) < 0)
                        abort();
                if (strv_length(items) != strv_length(again))
                        abort();
                for (size_t i = 0; items[i]; i++)
                        if (!streq(items[i], again[i]))
                                abort();
        }
        qerror_done(&e);

        payload_str = strndup(text, size);
        if (payload_str) {
                (void) device_denied_canonical(payload_str, &canon, &e);
                qerror_done(&e);
                (void) device_interfaces_split_payload(payload_str, &codes, &e);
                qerror_done(&e);
        }
        return 0;
}
