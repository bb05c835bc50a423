/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubes-policy-query: evaluate one qrexec request against policy.d and print the decision in
 * the policy daemon's key=value format (spec/qrexec-policy.md §1.10), result= first. */

#include <getopt.h>
#include <systemd/sd-bus.h>

#include "policy/policy.h"
#include "system-info-bus.h"

#include "util/macros.h"
#include "util/strv.h"
#include "util/version.h"

static void help(void) {
        printf("Usage: qubes-policy-query [OPTIONS] SOURCE TARGET SERVICE[+ARG]\n\n"
               "Evaluate a qrexec request and print the decision (result=allow|deny|ask).\n\n"
               "  --policy-dir=DIR     a policy directory (repeatable; first wins on equal names;\n"
               "                       default " QUBES_POLICY_RUN_DIR " and " QUBES_POLICY_DIR ")\n"
               "  --compat-dir=DIR     legacy files for !compat-4.0 (default " QUBES_POLICY_COMPAT_DIR ")\n"
               "  --system-info=FILE   system info JSON; without it qubesd is asked over D-Bus\n"
               "  --bus-address=ADDR   the bus where qubesd runs (default: the system bus)\n"
               "  -v, --verbose        also print notify=, rule= and reason=\n"
               "  -h, --help           show this help\n"
               "      --version        show the version\n\n"
               "Exit status: 0 when a decision was printed (whatever it is), 1 on a setup error\n"
               "(the decision printed is then result=deny), 2 on a usage error.\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_POLICY_DIR = 0x100, ARG_COMPAT_DIR, ARG_SYSTEM_INFO, ARG_BUS_ADDRESS, ARG_VERSION };
        static const struct option options[] = {
                { "policy-dir", required_argument, NULL, ARG_POLICY_DIR },
                { "compat-dir", required_argument, NULL, ARG_COMPAT_DIR },
                { "system-info", required_argument, NULL, ARG_SYSTEM_INFO },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        _cleanup_strv_free_ char **dirs = NULL;
        const char *compat_dir = NULL, *system_info = NULL, *bus_address = NULL;
        _cleanup_free_ char *service = NULL, *argument = NULL, *error = NULL;
        QubesSystemInfo *si = NULL;
        QubesPolicy *policy = NULL;
        QubesPolicyDecision *d = NULL;
        bool verbose = false;
        int c, r, ret = 0;

        while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0)
                switch (c) {
                case ARG_POLICY_DIR:
                        if (strv_extend(&dirs, optarg) < 0)
                                return 1;
                        break;
                case ARG_COMPAT_DIR:
                        compat_dir = optarg;
                        break;
                case ARG_SYSTEM_INFO:
                        system_info = optarg;
                        break;
                case ARG_BUS_ADDRESS:
                        bus_address = optarg;
                        break;
                case 'v':
                        verbose = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        return version_print("qubes-policy-query");
                default:
                        return 2;
                }
        if (argc - optind != 3) {
                fprintf(stderr, "qubes-policy-query: expected SOURCE TARGET SERVICE[+ARG]\n");
                return 2;
        }
        if (qubes_policy_split_call(argv[optind + 2], &service, &argument) < 0)
                return 1;

        if (system_info)
                r = qubes_system_info_load_file(system_info, &si, &error);
        else
                r = qubes_system_info_from_bus(bus_address, &si, &error);
        if (r < 0) {
                fprintf(stderr, "qubes-policy-query: system info: %s\n", error ? error : strerror(-r));
                ret = 1;
        }

        QubesPolicyConfig cfg = { .dirs = (const char *const *) dirs, .compat_dir = compat_dir };
        r = qubes_policy_load(&cfg, &policy);
        if (r == -EINVAL) {
                STRV_FOREACH(e, qubes_policy_errors(policy))
                        fprintf(stderr, "qubes-policy-query: %s\n", *e);
                ret = 1;
        } else if (r < 0) {
                fprintf(stderr, "qubes-policy-query: loading policy: %s\n", strerror(-r));
                ret = 1;
        }

        r = qubes_policy_evaluate(policy, si, argv[optind], argv[optind + 1], service, argument, &d);
        if (r < 0) {
                fprintf(stderr, "qubes-policy-query: %s\n", strerror(-r));
                printf("result=deny\n");
                ret = 1;
        } else
                qubes_policy_decision_print(d, stdout, verbose);

        qubes_policy_decision_free(d);
        qubes_policy_free(policy);
        qubes_system_info_free(si);
        if (fflush(stdout) != 0)
                ret = 1;
        return ret;
}
