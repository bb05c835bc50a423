/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: the qrexec policy.d language (qubes_policy_load_string, the parser qubesd and
 * qubes-policy-query use), then evaluation of a few fixed requests against the demo system
 * information, whether or not the policy parsed. Any input must be accepted or refused with
 * messages; an invalid policy must deny everything. !include paths resolve in data/policy.d. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static QubesSystemInfo *system_info(void) {
        static QubesSystemInfo *si;
        static bool loaded;
        char *error = NULL;

        if (!loaded) {
                loaded = true;
                if (qubes_system_info_load_file(FUZZ_SYSTEM_INFO, &si, &error) < 0) {
                        fprintf(stderr, "fuzz-policy: %s: %s\n", FUZZ_SYSTEM_INFO, error ? error : "cannot load");
                        abort();
                }
                free(error);
        }
        return si;
}

static const char *const requests[][4] = {
        /* source, target, service, argument */
        { "sys-net", "dom0", "admin.vm.List", "+" },
        { "work", "@default", "test.Service", "+argument" },
        { "work", "@dispvm", "qubes.OpenInVM", "+" },
        { "fedora-41-dvm", "@adminvm", "admin.vm.property.Get", "+netvm" },
        { "work", "uuid:00000000-0000-0000-0000-000000000000", "admin.Events", "+domain-add" },
        { "sys-net", "@dispvm:fedora-41-dvm", "qubes.Filecopy", "+" },
        { "no-such-vm", "sys-net", "qubes.Gpg", "+x" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        QubesPolicy *p = NULL;
        char *text;
        int r;

        if (size > 256 * 1024)
                return 0;
        text = strndup((const char *) data, size); /* the API takes a C string */
        if (!text)
                return 0;
        r = qubes_policy_load_string(text, "30-fuzz.policy", FUZZ_POLICY_DIR, &p);
        free(text);
        if (r < 0 && r != -EINVAL)
                return 0; /* out of memory */
        if (!p) {
                fprintf(stderr, "fuzz-policy: load returned %d without a policy\n", r);
                abort();
        }
        bool valid = qubes_policy_is_valid(p);
        char *const *errors = qubes_policy_errors(p);
        if (!errors || (valid != (errors[0] == NULL)) || (valid != (r == 0))) {
                fprintf(stderr, "fuzz-policy: validity, status and error list disagree\n");
                abort();
        }
        (void) qubes_policy_n_rules(p);

        QubesSystemInfo *si = system_info();
        for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
                QubesPolicyDecision *d = NULL;
                if (qubes_policy_evaluate(p, si, requests[i][0], requests[i][1], requests[i][2], requests[i][3], &d) <
                    0)
                        continue;
                if (!d || !d->reason) {
                        fprintf(stderr, "fuzz-policy: a decision without a reason\n");
                        abort();
                }
                if (!valid && d->result != QUBES_POLICY_DENY) {
                        fprintf(stderr, "fuzz-policy: an invalid policy did not deny\n");
                        abort();
                }
                if (d->result == QUBES_POLICY_ALLOW && !d->target) {
                        fprintf(stderr, "fuzz-policy: allow without a target\n");
                        abort();
                }
                qubes_policy_decision_free(d);
                (void) qubes_policy_check(p, si, requests[i][0], requests[i][1], requests[i][2], requests[i][3]);
        }
        (void) qubes_policy_vm_list_allowed(p, si, "work", "sys-net", NULL);
        (void) qubes_policy_event_allowed(p, si, "work", "domain-add", "sys-net");
        qubes_policy_free(p);
        return 0;
}
