/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: qubes.xml parsing (app_load_from_memory, the code the daemon runs at start-up).
 * Any input must be accepted or refused cleanly. An accepted file is serialised, the result is
 * loaded into a second app and serialised again: the two serialisations must be identical
 * (loading what we wrote gives back the same state). */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail, const char *a, const char *b) {
        fprintf(stderr, "fuzz-qubes-xml: %s%s%s\n", what, detail ? ": " : "", detail ?: "");
        if (a)
                fprintf(stderr, "--- first serialisation ---\n%s\n", a);
        if (b)
                fprintf(stderr, "--- second serialisation ---\n%s\n", b);
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_app_free_ App *app = NULL, *again = NULL;
        _cleanup_qerror_ QError err = {};
        _cleanup_free_ char *first = NULL, *second = NULL, *msg = NULL;

        if (size > 1024 * 1024) /* the format allows 64 MiB; large inputs only slow the search */
                return 0;
        if (app_new("/nonexistent/qubes-fuzz", &app) < 0)
                abort();
        if (app_load_from_memory(app, (const char *) data, size, "fuzz.xml", &err) < 0)
                return 0;

        first = app_to_xml(app);
        if (!first)
                abort();

        if (app_new("/nonexistent/qubes-fuzz", &again) < 0)
                abort();
        if (app_load_from_memory(again, first, strlen(first), "fuzz-reload.xml", &err) < 0) {
                msg = qerror_message(&err);
                fail("our own serialisation does not load", msg, first, NULL);
        }
        second = app_to_xml(again);
        if (!second)
                abort();
        if (strcmp(first, second) != 0)
                fail("serialise(load(serialise(x))) differs from serialise(x)", NULL, first, second);
        return 0;
}
