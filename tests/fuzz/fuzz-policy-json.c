/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: the system information JSON parser of the policy library
 * (qubes_system_info_from_json): refused cleanly with a message, or every qube it returns can be
 * looked up again by its name. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        QubesSystemInfo *si = NULL;
        char *error = NULL;

        if (size > 1024 * 1024)
                return 0;
        if (qubes_system_info_from_json((const char *) data, size, &si, &error) < 0) {
                free(error);
                if (si) {
                        fprintf(stderr, "fuzz-policy-json: a result on failure\n");
                        abort();
                }
                return 0;
        }
        free(error);
        for (size_t i = 0; i < qubes_system_info_size(si); i++) {
                const QubesDomain *d = qubes_system_info_get(si, i);
                if (!d || !d->name) {
                        fprintf(stderr, "fuzz-policy-json: qube %zu has no name\n", i);
                        abort();
                }
                if (strncmp(d->name, "uuid:", 5) == 0) /* looked up as a UUID */
                        continue;
                if (qubes_system_info_lookup(si, d->name) != d) {
                        fprintf(stderr, "fuzz-policy-json: qube %zu cannot be looked up by its name\n", i);
                        abort();
                }
        }
        qubes_system_info_free(si);
        return 0;
}
