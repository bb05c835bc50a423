/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <malloc.h>
#include <sys/stat.h>

#include "config.h"
#include "daemon.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strv.h"
#include "util/version.h"

static void help(void) {
        printf("qubesd [OPTIONS...]\n\n"
               "The Qubes OS Admin API daemon: holds every qube and serves it on D-Bus as org.qubes_os.Admin1.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --system            Use the system bus (default)\n"
               "     --user              Use the session bus, a state dir under $XDG_DATA_HOME and test:///default\n"
               "     --bus-address=ADDR  Use the bus at ADDR\n"
               "     --state-dir=DIR     Where qubes.xml lives (default " QUBESD_DEFAULT_STATE_DIR ")\n"
               "     --libvirt-uri=URI   Hypervisor connection (default xen:///, or test:///default with --user)\n"
               "     --policy-dir=DIR    qrexec policy directory (repeatable; default /run/qubes/policy.d\n"
               "                         and /etc/qubes/policy.d)\n"
               "     --constraints-dir=DIR  Value constraints for qubes calling through qrexec (default\n"
               "                         " QUBESD_DEFAULT_CONSTRAINTS_DIR ")\n"
               "     --config-dir=DIR    Configuration: backup profiles in DIR/backup (default /etc/qubes)\n"
               "     --qrexec-runner=PATH  What makes qrexec calls into qubes (backups; default\n"
               "                         qubes-qrexec-run on PATH)\n"
               "     --private-socket=PATH  Direct connections for trusted clients (default with --system:\n"
               "                         " QUBESD_SYSTEM_PRIVATE_SOCKET "; \"\" for none)\n"
               "     --trusted-user=USER Also trust this user, a name or a uid (repeatable): it may\n"
               "                         act for a qube (the shim), use the private socket and skips\n"
               "                         polkit (--trusted-uid=UID is the same)\n"
               "     --private-socket-group=GROUP  The private socket's group (0660), so that a\n"
               "                         trusted user in it can connect (default: root only, 0600)\n"
               "     --init              Create a new system (labels, pools, dom0) when the state\n"
               "                         directory holds no qubes.xml; without it qubesd refuses to start\n"
               "     --private-max-connections=N  At most N private connections at once; more wait\n"
               "                         (default 1024)\n"
               "     --private-timeout=SECONDS  Drop a private connection that has not finished its\n"
               "                         handshake in this time (default 30)\n"
               "     --debug             Debug logging; errors carry a traceback\n");
}

int main(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SYSTEM,
                ARG_USER,
                ARG_BUS_ADDRESS,
                ARG_STATE_DIR,
                ARG_LIBVIRT_URI,
                ARG_DEBUG,
                ARG_POLICY_DIR,
                ARG_PRIVATE_SOCKET,
                ARG_TRUSTED_UID,
                ARG_CONSTRAINTS_DIR,
                ARG_PRIVATE_SOCKET_GROUP,
                ARG_CONFIG_DIR,
                ARG_QREXEC_RUNNER,
                ARG_INIT,
                ARG_PRIVATE_MAX_CONNECTIONS,
                ARG_PRIVATE_TIMEOUT,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "user", no_argument, NULL, ARG_USER },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "libvirt-uri", required_argument, NULL, ARG_LIBVIRT_URI },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { "policy-dir", required_argument, NULL, ARG_POLICY_DIR },
                { "private-socket", required_argument, NULL, ARG_PRIVATE_SOCKET },
                { "trusted-uid", required_argument, NULL, ARG_TRUSTED_UID },
                { "trusted-user", required_argument, NULL, ARG_TRUSTED_UID },
                { "private-socket-group", required_argument, NULL, ARG_PRIVATE_SOCKET_GROUP },
                { "constraints-dir", required_argument, NULL, ARG_CONSTRAINTS_DIR },
                { "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
                { "qrexec-runner", required_argument, NULL, ARG_QREXEC_RUNNER },
                { "init", no_argument, NULL, ARG_INIT },
                { "private-max-connections", required_argument, NULL, ARG_PRIVATE_MAX_CONNECTIONS },
                { "private-timeout", required_argument, NULL, ARG_PRIVATE_TIMEOUT },
                {},
        };
        ManagerConfig config = { .bus_kind = BUS_SYSTEM };
        _cleanup_free_ char *user_state = NULL;
        _cleanup_strv_free_ char **policy_dirs = NULL;
        _cleanup_free_ uid_t *trusted_uids = NULL;
        bool private_socket_set = false;
        _cleanup_(daemon_freep) Manager *m = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        return version_print("qubesd");
                case ARG_SYSTEM:
                        config.bus_kind = BUS_SYSTEM;
                        break;
                case ARG_USER:
                        config.bus_kind = BUS_USER;
                        break;
                case ARG_BUS_ADDRESS:
                        config.bus_kind = BUS_ADDRESS;
                        config.bus_address = optarg;
                        break;
                case ARG_STATE_DIR:
                        config.state_dir = optarg;
                        break;
                case ARG_LIBVIRT_URI:
                        config.libvirt_uri = optarg;
                        break;
                case ARG_DEBUG:
                        config.debug = true;
                        break;
                case ARG_POLICY_DIR:
                        if (strv_extend(&policy_dirs, optarg) < 0)
                                return log_oom(), 1;
                        break;
                case ARG_TRUSTED_UID: {
                        char *end;
                        errno = 0;
                        unsigned long u = strtoul(optarg, &end, 10);
                        if (errno || *end || end == optarg) {
                                /* a user name (the shim's own user of the unit) */
                                const struct passwd *pw = getpwnam(optarg);
                                u = pw ? pw->pw_uid : (unsigned long) (uid_t) -1;
                        }
                        if (u >= (unsigned long) (uid_t) -1) {
                                log_error("Unknown user or invalid uid for --trusted-user: %s", optarg);
                                return 2;
                        }
                        uid_t *l = realloc(trusted_uids, sizeof(uid_t) * (config.n_trusted_uids + 1));
                        if (!l)
                                return log_oom(), 1;
                        trusted_uids = l;
                        trusted_uids[config.n_trusted_uids++] = (uid_t) u;
                        config.trusted_uids = trusted_uids;
                        break;
                }
                case ARG_PRIVATE_SOCKET:
                        config.private_socket = isempty(optarg) ? NULL : optarg;
                        private_socket_set = true;
                        break;
                case ARG_CONSTRAINTS_DIR:
                        config.constraints_dir = optarg;
                        break;
                case ARG_PRIVATE_SOCKET_GROUP: {
                        const struct group *gr = getgrnam(optarg);
                        char *end;
                        errno = 0;
                        unsigned long g = gr ? gr->gr_gid : strtoul(optarg, &end, 10);
                        if (!gr && (errno || *end || end == optarg || g >= (unsigned long) (gid_t) -1)) {
                                log_error("Unknown group for --private-socket-group: %s", optarg);
                                return 2;
                        }
                        config.private_socket_gid = (gid_t) g;
                        break;
                }
                case ARG_CONFIG_DIR:
                        config.config_dir = optarg;
                        break;
                case ARG_QREXEC_RUNNER:
                        config.qrexec_runner = optarg;
                        break;
                case ARG_INIT:
                        config.init = true;
                        break;
                case ARG_PRIVATE_MAX_CONNECTIONS: {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (errno || *end || end == optarg || v == 0 || v > 1000000) {
                                log_error("Invalid --private-max-connections: %s", optarg);
                                return 2;
                        }
                        config.private_max_connections = (unsigned) v;
                        break;
                }
                case ARG_PRIVATE_TIMEOUT: {
                        char *end;
                        errno = 0;
                        double v = strtod(optarg, &end);
                        if (errno || *end || end == optarg || !(v > 0 && v <= 86400)) {
                                log_error("Invalid --private-timeout: %s", optarg);
                                return 2;
                        }
                        config.private_timeout_usec = (uint64_t) (v * 1e6);
                        break;
                }
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return 2;
        }

        /* Large blocks straight from mmap, and back to the system when freed: a backup's scrypt
         * KDF takes 16 MiB per chunk on changing threads, which glibc's sliding threshold would
         * otherwise keep in each thread's arena (docs/daemon.md, "Backups"). */
        (void) mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);

        if (config.debug) {
                log_set_max_level(LOG_DEBUG);
                qerror_set_debug(true);
        }
        if (!config.state_dir) {
                if (config.bus_kind == BUS_USER) {
                        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
                        if (!isempty(xdg))
                                r = asprintf(&user_state, "%s/qubesd", xdg);
                        else
                                r = asprintf(&user_state, "%s/.local/share/qubesd", home ?: "/");
                        if (r < 0)
                                return log_oom(), 1;
                        config.state_dir = user_state;
                } else
                        config.state_dir = QUBESD_DEFAULT_STATE_DIR;
        }
        config.policy_dirs = policy_dirs;
        if (!private_socket_set && config.bus_kind == BUS_SYSTEM) {
                (void) mkdir_p("/run/qubesd", 0700);
                config.private_socket = QUBESD_SYSTEM_PRIVATE_SOCKET;
        }
        if (!config.libvirt_uri)
                config.libvirt_uri = config.bus_kind == BUS_SYSTEM ? "xen:///" : "test:///default";

        /* nothing is written (not even the state directory) before qubesd holds its bus name:
         * daemon_new() */
        r = daemon_new(&config, &m);
        if (r < 0)
                return 1;
        r = daemon_run(m);
        return r < 0 ? 1 : 0;
}
