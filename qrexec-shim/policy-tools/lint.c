/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubes-policy-lint: parse every policy file as the evaluator would and print each error as
 * FILE:LINE: message. A single error makes the whole policy deny everything, hence exit 1. */

#include <getopt.h>

#include "policy/policy.h"

#include "util/macros.h"
#include "util/strv.h"
#include "util/version.h"

static void help(void) {
        printf("Usage: qubes-policy-lint [OPTIONS]\n\n"
               "Check the qrexec policy files; print every error with file and line.\n\n"
               "  --policy-dir=DIR   a policy directory (repeatable; default " QUBES_POLICY_RUN_DIR "\n"
               "                     and " QUBES_POLICY_DIR ")\n"
               "  --compat-dir=DIR   legacy files for !compat-4.0 (default " QUBES_POLICY_COMPAT_DIR ")\n"
               "  -q, --quiet        print nothing when the policy is valid\n"
               "  -h, --help         show this help\n"
               "      --version      show the version\n\n"
               "Exit status: 0 valid, 1 errors found, 2 usage error.\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_POLICY_DIR = 0x100, ARG_COMPAT_DIR, ARG_VERSION };
        static const struct option options[] = {
                { "policy-dir", required_argument, NULL, ARG_POLICY_DIR },
                { "compat-dir", required_argument, NULL, ARG_COMPAT_DIR },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        _cleanup_strv_free_ char **dirs = NULL;
        const char *compat_dir = NULL;
        QubesPolicy *policy = NULL;
        bool quiet = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "qh", options, NULL)) >= 0)
                switch (c) {
                case ARG_POLICY_DIR:
                        if (strv_extend(&dirs, optarg) < 0)
                                return 1;
                        break;
                case ARG_COMPAT_DIR:
                        compat_dir = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        return version_print("qubes-policy-lint");
                default:
                        return 2;
                }
        if (optind != argc) {
                fprintf(stderr, "qubes-policy-lint: unexpected argument: %s\n", argv[optind]);
                return 2;
        }

        QubesPolicyConfig cfg = { .dirs = (const char *const *) dirs, .compat_dir = compat_dir };
        r = qubes_policy_load(&cfg, &policy);
        if (r < 0 && r != -EINVAL) {
                fprintf(stderr, "qubes-policy-lint: %s\n", strerror(-r));
                return 1;
        }
        STRV_FOREACH(e, qubes_policy_errors(policy))
                printf("%s\n", *e);
        if (r == 0 && !quiet)
                printf("OK: %zu rules\n", qubes_policy_n_rules(policy));
        qubes_policy_free(policy);
        return r == 0 ? 0 : 1;
}
