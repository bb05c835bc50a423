/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubes-qrexec-run (also usable as qrexec-client-vm): make a qrexec call to dom0 locally, as a
 * qube would through qrexec-client-vm, without Xen (spec/qrexec-policy.md §5.3).
 *
 * The request is sanitised as qrexec-daemon does (§2.1), evaluated against the policy with
 * libqubes-policy (system information from qubesd over D-Bus, or a JSON file), and, when allowed
 * to dom0, the service is started the way qrexec-daemon starts a dom0 service (§2.2, §2.3): an
 * executable in the services directory with the QREXEC_* environment, or a UNIX socket that gets
 * the service descriptor and then the data. Exit codes are those of §2.5. */

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>

#include "policy/policy.h"
#include "system-info-bus.h"

#include "util/macros.h"
#include "util/strbuf.h"
#include "util/strv.h"
#include "util/version.h"

/* libqrexec's exit codes */
#define EXIT_PROBLEM 125
#define EXIT_REFUSED 126
#define EXIT_NOT_FOUND 127
#define EXIT_USAGE 2

#define MAX_TARGET_LEN 63
#define DEFAULT_SERVICES_DIR "/etc/qubes-rpc"

typedef struct Options {
        char *source;
        char **policy_dirs;
        char *compat_dir;
        char *system_info;
        char *bus_address;
        char **services_dirs;
        char *service_stderr; /* NULL: discard (as dom0 does); "inherit"; or a file */
        char *prefix_data;
        char *assume_yes_target;
        char *vm_services_dir;
        bool assume_yes;
        bool use_stdin_socket;
        int filter_stdout; /* -1: default (on if stdout is a TTY and no local program) */
        bool verbose;
} Options;

static Options arg = { .filter_stdout = -1 };
static const char *prog = "qrexec-client-vm";

static void options_done(Options *o) {
        free(o->source);
        strv_free(o->policy_dirs);
        free(o->compat_dir);
        free(o->system_info);
        free(o->bus_address);
        strv_free(o->services_dirs);
        free(o->service_stderr);
        free(o->prefix_data);
        free(o->assume_yes_target);
        free(o->vm_services_dir);
}

static void help(void) {
        printf("Usage: %s [OPTIONS] TARGET SERVICE[+ARG] [LOCAL_PROGRAM [ARGS...]]\n\n"
               "Make a qrexec call to dom0 as the qube SOURCE would with qrexec-client-vm: the\n"
               "policy is evaluated here, and an allowed call runs the dom0 service from the\n"
               "services directory (an executable, or a UNIX socket such as qubesd.sock).\n\n"
               "  --source=QUBE            the calling qube (default $QREXEC_SOURCE,\n"
               "                           $QUBES_RUNNER_SOURCE, else dom0)\n"
               "  --policy-dir=DIR         a policy directory (repeatable; default " QUBES_POLICY_RUN_DIR " and\n"
               "                           " QUBES_POLICY_DIR ")\n"
               "  --compat-dir=DIR         legacy policy files for !compat-4.0\n"
               "  --system-info=FILE       system info JSON instead of asking qubesd\n"
               "  --bus-address=ADDR       the bus where qubesd runs (default: the system bus)\n"
               "  --services-dir=DIR       where services are looked up (repeatable; default\n"
               "                           $QREXEC_SERVICE_PATH, else " DEFAULT_SERVICES_DIR ")\n"
               "  --service-stderr=WHERE   an executable service's stderr: 'null' (default, as\n"
               "                           dom0 never forwards it), 'inherit', or a file to append to\n"
               "  --vm-services-dir=DIR    dom0 calling a qube (SOURCE dom0, TARGET a qube, as\n"
               "                           qrexec-client -d; no policy): the qube's services are\n"
               "                           DIR/TARGET/SERVICE (default $QUBES_VM_SERVICES_DIR)\n"
               "  --assume-yes             answer an 'ask' rule with its default_target\n"
               "  --assume-yes-target=NAME answer an 'ask' rule with NAME (if it is a candidate)\n"
               "  -p, --prefix-data=DATA   send DATA before stdin\n"
               "  --use-stdin-socket       fd 0 is a socket used in both directions\n"
               "  -t, --filter-escape-chars-stdout / --no-filter-escape-chars-stdout\n"
               "                           replace non-printable bytes in the reply with '_'\n"
               "                           (default: on when stdout is a terminal)\n"
               "  --verbose                say why a call is refused\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n\n"
               "Accepted for compatibility and ignored: --buffer-size, -T and\n"
               "--[no-]filter-escape-chars-stderr, -a/--agent-socket, -s/--source-qube.\n\n"
               "Exit status: the service's (0 for a socket service), 126 request refused, 127\n"
               "service not found, 125 service could not be started or target not dom0, 2 usage.\n",
               prog);
}

/* ---- request ------------------------------------------------------------------------------ */

static bool in_set(char c, const char *extra) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(extra, c);
}

/* qrexec-daemon's sanitize_name(): every byte outside the set becomes '_'. */
static void sanitize(char *s, const char *extra) {
        for (; *s; s++)
                if (!in_set(*s, extra))
                        *s = '_';
}

static bool valid_qube_name(const char *s) {
        if (isempty(s) || strlen(s) > 255)
                return false;
        for (; *s; s++)
                if (!in_set(*s, "_-.:"))
                        return false;
        return true;
}

static bool is_dom0ish(const char *t) {
        return streq_ptr(t, "dom0") || streq_ptr(t, "@adminvm") || streq_ptr(t, "uuid:" QUBES_POLICY_DOM0_UUID);
}

static void refuse(const char *why) {
        if (why && arg.verbose)
                fprintf(stderr, "%s: %s\n", prog, why);
        fputs("Request refused\n", stderr);
}

/* Evaluate the policy. Returns 0 with the final target (dom0-ish or not) and the requested
 * target to report to the service, or EXIT_REFUSED after printing the refusal. */
static int decide(const char *source, const char *target, const char *service, const char *argument, char **ret_target,
                  char **ret_requested) {
        _cleanup_free_ char *error = NULL;
        QubesSystemInfo *si = NULL;
        QubesPolicy *policy = NULL;
        QubesPolicyDecision *d = NULL;
        const char *final = NULL;
        int r, ret = EXIT_REFUSED;

        if (arg.system_info)
                r = qubes_system_info_load_file(arg.system_info, &si, &error);
        else
                r = qubes_system_info_from_bus(arg.bus_address, &si, &error);
        if (r < 0) {
                fprintf(stderr, "%s: system info: %s\n", prog, error ? error : strerror(-r));
                refuse(NULL);
                goto finish;
        }

        QubesPolicyConfig cfg = { .dirs = (const char *const *) arg.policy_dirs, .compat_dir = arg.compat_dir };
        r = qubes_policy_load(&cfg, &policy);
        if (r == -EINVAL) {
                /* a broken policy denies everything, as upstream; say why on request */
                if (arg.verbose)
                        STRV_FOREACH(e, qubes_policy_errors(policy))
                                fprintf(stderr, "%s: policy error: %s\n", prog, *e);
        } else if (r < 0) {
                fprintf(stderr, "%s: loading policy: %s\n", prog, strerror(-r));
                refuse(NULL);
                goto finish;
        }

        r = qubes_policy_evaluate(policy, si, source, target, service, argument, &d);
        if (r < 0) {
                fprintf(stderr, "%s: evaluating policy: %s\n", prog, strerror(-r));
                refuse(NULL);
                goto finish;
        }

        switch (d->result) {
        case QUBES_POLICY_DENY:
                refuse(d->reason);
                goto finish;
        case QUBES_POLICY_ASK:
                /* no GUI to ask: only a pre-given answer turns it into an allow */
                if (arg.assume_yes_target) {
                        if (!strv_contains(d->targets, arg.assume_yes_target)) {
                                refuse("--assume-yes-target is not among the targets the policy offers");
                                goto finish;
                        }
                        final = arg.assume_yes_target;
                } else if (arg.assume_yes && d->default_target)
                        final = d->default_target;
                else {
                        refuse("the policy says 'ask' and there is nobody to ask (see --assume-yes)");
                        goto finish;
                }
                break;
        case QUBES_POLICY_ALLOW:
                final = d->target;
                break;
        }

        *ret_target = strdup(final);
        *ret_requested = strdup(d->requested_target ?: (isempty(target) ? "@default" : target));
        if (!*ret_target || !*ret_requested) {
                fprintf(stderr, "%s: out of memory\n", prog);
                ret = 1;
                goto finish;
        }
        ret = 0;
finish:
        qubes_policy_decision_free(d);
        qubes_policy_free(policy);
        qubes_system_info_free(si);
        return ret;
}

/* ---- service lookup (§2.2) ------------------------------------------------------------ */

typedef enum ServiceKind { SERVICE_EXEC, SERVICE_SOCKET } ServiceKind;

/* Returns 0 and the path, or an exit code (127 not found, 125 unusable). */
static int find_service(const char *full, const char *service, char **ret_path, ServiceKind *ret_kind) {
        const char *names[] = { full, service };
        _cleanup_free_ char *found = NULL;
        struct stat st;

        for (size_t n = 0; n < ELEMENTSOF(names) && !found; n++) {
                if (strlen(names[n]) > NAME_MAX)
                        continue;
                STRV_FOREACH(dir, arg.services_dirs) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", *dir, names[n]) < 0)
                                return 1;
                        if (lstat(p, &st) < 0) {
                                if (errno == ENOENT)
                                        continue;
                                fprintf(stderr, "%s: %s: %m\n", prog, p);
                                return EXIT_PROBLEM;
                        }
                        found = TAKE_PTR(p);
                        break;
                }
        }
        if (!found) {
                if (arg.verbose)
                        fprintf(stderr, "%s: service %s not found\n", prog, service);
                return EXIT_NOT_FOUND;
        }
        if (stat(found, &st) < 0) {
                fprintf(stderr, "%s: %s: %m\n", prog, found);
                return EXIT_PROBLEM;
        }
        if (S_ISSOCK(st.st_mode))
                *ret_kind = SERVICE_SOCKET;
        else if (S_ISREG(st.st_mode) && access(found, X_OK) == 0)
                *ret_kind = SERVICE_EXEC;
        else {
                fprintf(stderr, "%s: %s: neither an executable nor a socket\n", prog, found);
                return EXIT_PROBLEM;
        }
        *ret_path = TAKE_PTR(found);
        return 0;
}

/* ---- data pump ------------------------------------------------------------------------ */

typedef struct Pump {
        int local_in, local_out;   /* caller side (blocking fds) */
        int remote_in, remote_out; /* service side (non-blocking; the same fd for a socket) */
        bool remote_is_socket;
        char *buf; /* pending for remote_in */
        size_t len, off, alloc;
        bool filter;
} Pump;

static void filter_bytes(char *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) p[i];
                if ((c < 0x20 || c > 0x7e) && c != '\t' && c != '\n' && c != '\r' && c != '\b' && c != '\a')
                        p[i] = '_';
        }
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static void pump_close_remote_in(Pump *p) {
        if (p->remote_in < 0)
                return;
        if (p->remote_is_socket)
                (void) shutdown(p->remote_in, SHUT_WR);
        else
                close(p->remote_in);
        p->remote_in = -1;
}

/* Copy local_in → remote_in and remote_out → local_out until the service closes its output and
 * takes no more input: as over a vchan, the two directions end on their own (a service that
 * writes its stdin to a file, qubes.Backup, closes its output first and reads on). */
static void pump_run(Pump *p) {
        char chunk[65536];
        bool out_done = false;

        for (;;) {
                struct pollfd fds[3];
                int n = 0, i_local = -1, i_rin = -1, i_rout = -1;

                if (p->remote_in >= 0 && p->off >= p->len && p->local_in < 0)
                        pump_close_remote_in(p); /* all sent and no more to come */
                if (out_done && p->remote_in < 0)
                        return;

                if (!out_done) {
                        fds[n] = (struct pollfd){ .fd = p->remote_out, .events = POLLIN };
                        i_rout = n++;
                }
                if (p->remote_in >= 0 && p->off < p->len) {
                        fds[n] = (struct pollfd){ .fd = p->remote_in, .events = POLLOUT };
                        i_rin = n++;
                } else if (p->remote_in >= 0 && p->local_in >= 0) {
                        fds[n] = (struct pollfd){ .fd = p->local_in, .events = POLLIN };
                        i_local = n++;
                }
                if (poll(fds, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "%s: poll: %m\n", prog);
                        return;
                }

                if (i_local >= 0 && fds[i_local].revents) {
                        ssize_t k = read(p->local_in, chunk, sizeof chunk);
                        if (k < 0 && errno != EINTR && errno != EAGAIN)
                                k = 0;
                        if (k == 0)
                                p->local_in = -1; /* EOF: half-close once flushed */
                        else if (k > 0) {
                                if ((size_t) k > p->alloc) {
                                        char *nb = realloc(p->buf, (size_t) k);
                                        if (!nb) {
                                                fprintf(stderr, "%s: out of memory\n", prog);
                                                return;
                                        }
                                        p->buf = nb;
                                        p->alloc = (size_t) k;
                                }
                                memcpy(p->buf, chunk, (size_t) k);
                                p->len = (size_t) k;
                                p->off = 0;
                        }
                }
                if (i_rin >= 0 && fds[i_rin].revents) {
                        ssize_t k = write(p->remote_in, p->buf + p->off, p->len - p->off);
                        if (k > 0)
                                p->off += (size_t) k;
                        else if (k < 0 && errno != EINTR && errno != EAGAIN) {
                                /* the service does not want more input */
                                p->off = p->len = 0;
                                p->local_in = -1;
                                pump_close_remote_in(p);
                        }
                }
                if (i_rout >= 0 && fds[i_rout].revents) {
                        ssize_t k = read(p->remote_out, chunk, sizeof chunk);
                        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (k <= 0) {
                                /* the service's output is done; a socket service is done */
                                out_done = true;
                                if (p->remote_is_socket || p->remote_in < 0)
                                        return;
                                continue;
                        }
                        if (p->local_out >= 0) {
                                if (p->filter)
                                        filter_bytes(chunk, (size_t) k);
                                if (write_all(p->local_out, chunk, (size_t) k) < 0)
                                        p->local_out = -1; /* nobody reads: drain and discard */
                        }
                }
        }
}

static int set_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

static int exit_status_of(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return EXIT_PROBLEM;
}

static int wait_for(pid_t pid) {
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return EXIT_PROBLEM;
        return exit_status_of(status);
}

/* ---- service start (§2.3, §2.2) ------------------------------------------------------- */

static int connect_socket_service(const char *path, const char *header, size_t header_len) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof sa.sun_path) {
                fprintf(stderr, "%s: socket path too long: %s\n", prog, path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;
                fprintf(stderr, "%s: cannot connect to %s: %m\n", prog, path);
                return r;
        }
        /* the service descriptor, NUL included */
        if (write_all(fd, header, header_len) < 0) {
                int r = -errno;
                fprintf(stderr, "%s: cannot write to %s: %m\n", prog, path);
                return r;
        }
        return TAKE_FD(fd);
}

/* The environment of §2.3: ours without QREXEC* (but QREXEC_SERVICE_PATH and QREXEC_AGENT_PID),
 * plus the call's variables. */
static char **service_environment(const char *source, const char *full, const char *argument, const char *type,
                                  const char *reqtarget) {
        _cleanup_strv_free_ char **env = NULL;
        extern char **environ;

        for (char **e = environ; e && *e; e++) {
                if (startswith(*e, "QREXEC") && !startswith(*e, "QREXEC_SERVICE_PATH=") &&
                    !startswith(*e, "QREXEC_AGENT_PID="))
                        continue;
                if (strv_extend(&env, *e) < 0)
                        return NULL;
        }

        _cleanup_strbuf_ StrBuf b = {};
#define ADD(fmt, ...)                                      \
        do {                                               \
                strbuf_reset(&b);                          \
                strbuf_printf(&b, fmt, __VA_ARGS__);       \
                if (b.oom || strv_extend(&env, b.buf) < 0) \
                        return NULL;                       \
        } while (0)
        ADD("QREXEC_REMOTE_DOMAIN=%s", source);
        ADD("QREXEC_SERVICE_FULL_NAME=%s", full);
        ADD("QREXEC_SERVICE_ARGUMENT=%s", argument);
        ADD("QREXEC_REQUESTED_TARGET_TYPE=%s", type);
        if (streq(type, "keyword"))
                ADD("QREXEC_REQUESTED_TARGET_KEYWORD=%s", reqtarget);
        else
                ADD("QREXEC_REQUESTED_TARGET=%s", reqtarget);
#undef ADD
        return TAKE_PTR(env);
}

static int open_service_stderr(void) {
        if (!arg.service_stderr || streq(arg.service_stderr, "null"))
                return open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (streq(arg.service_stderr, "inherit"))
                return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        return open(arg.service_stderr, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* Start the executable service with pipes for stdin and stdout. */
static int spawn_service(const char *path, const char *argument, char **env, int *ret_in, int *ret_out,
                         pid_t *ret_pid) {
        int in[2], out[2];
        _cleanup_close_ int errfd = open_service_stderr();
        pid_t pid;

        if (errfd < 0) {
                fprintf(stderr, "%s: service stderr: %m\n", prog);
                return -errno;
        }
        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                close(in[0]);
                close(in[1]);
                return -errno;
        }
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(in[0]);
                close(in[1]);
                close(out[0]);
                close(out[1]);
                return r;
        }
        if (pid == 0) {
                char *argv[] = { (char *) path, isempty(argument) ? NULL : (char *) argument, NULL };
                (void) signal(SIGPIPE, SIG_DFL);
                if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0 || dup2(errfd, STDERR_FILENO) < 0)
                        _exit(EXIT_PROBLEM);
                execve(path, argv, env);
                _exit(EXIT_PROBLEM);
        }
        close(in[0]);
        close(out[1]);
        *ret_in = in[1];
        *ret_out = out[0];
        *ret_pid = pid;
        return 0;
}

/* LOCAL_PROGRAM: its stdout feeds the service, the service's output goes to its stdin. It gets
 * SAVED_FD_0 and SAVED_FD_1 (dups of our stdin and stdout), as with qrexec-client-vm. */
static int spawn_local(char **argv, int *ret_in, int *ret_out, pid_t *ret_pid) {
        int to_prog[2], from_prog[2];
        pid_t pid;

        if (pipe2(to_prog, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(from_prog, O_CLOEXEC) < 0) {
                close(to_prog[0]);
                close(to_prog[1]);
                return -errno;
        }
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(to_prog[0]);
                close(to_prog[1]);
                close(from_prog[0]);
                close(from_prog[1]);
                return r;
        }
        if (pid == 0) {
                char buf[32];
                int s0 = dup(STDIN_FILENO), s1 = dup(STDOUT_FILENO);
                (void) signal(SIGPIPE, SIG_DFL);
                if (s0 >= 0) {
                        snprintf(buf, sizeof buf, "%d", s0);
                        setenv("SAVED_FD_0", buf, 1);
                }
                if (s1 >= 0) {
                        snprintf(buf, sizeof buf, "%d", s1);
                        setenv("SAVED_FD_1", buf, 1);
                }
                if (getenv("PASS_LOCAL_STDERR")) {
                        int s2 = dup(STDERR_FILENO);
                        if (s2 >= 0) {
                                snprintf(buf, sizeof buf, "%d", s2);
                                setenv("SAVED_FD_2", buf, 1);
                        }
                }
                if (dup2(to_prog[0], STDIN_FILENO) < 0 || dup2(from_prog[1], STDOUT_FILENO) < 0)
                        _exit(EXIT_PROBLEM);
                execvp(argv[0], argv);
                fprintf(stderr, "%s: cannot execute %s: %m\n", prog, argv[0]);
                _exit(EXIT_NOT_FOUND);
        }
        close(to_prog[0]);
        close(from_prog[1]);
        *ret_in = from_prog[0];
        *ret_out = to_prog[1];
        *ret_pid = pid;
        return 0;
}

/* ---- main ----------------------------------------------------------------------------- */

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_SOURCE = 0x100,
                ARG_POLICY_DIR,
                ARG_COMPAT_DIR,
                ARG_SYSTEM_INFO,
                ARG_BUS_ADDRESS,
                ARG_SERVICES_DIR,
                ARG_SERVICE_STDERR,
                ARG_ASSUME_YES,
                ARG_ASSUME_YES_TARGET,
                ARG_USE_STDIN_SOCKET,
                ARG_NO_FILTER_STDOUT,
                ARG_NO_FILTER_STDERR,
                ARG_BUFFER_SIZE,
                ARG_VERBOSE,
                ARG_VERSION,
                ARG_VM_SERVICES_DIR,
        };
        static const struct option options[] = {
                { "source", required_argument, NULL, ARG_SOURCE },
                { "policy-dir", required_argument, NULL, ARG_POLICY_DIR },
                { "compat-dir", required_argument, NULL, ARG_COMPAT_DIR },
                { "system-info", required_argument, NULL, ARG_SYSTEM_INFO },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "services-dir", required_argument, NULL, ARG_SERVICES_DIR },
                { "service-stderr", required_argument, NULL, ARG_SERVICE_STDERR },
                { "assume-yes", no_argument, NULL, ARG_ASSUME_YES },
                { "assume-yes-target", required_argument, NULL, ARG_ASSUME_YES_TARGET },
                { "prefix-data", required_argument, NULL, 'p' },
                { "use-stdin-socket", no_argument, NULL, ARG_USE_STDIN_SOCKET },
                { "filter-escape-chars-stdout", no_argument, NULL, 't' },
                { "filter-escape-chars-stderr", no_argument, NULL, 'T' },
                { "no-filter-escape-chars-stdout", no_argument, NULL, ARG_NO_FILTER_STDOUT },
                { "no-filter-escape-chars-stderr", no_argument, NULL, ARG_NO_FILTER_STDERR },
                { "buffer-size", required_argument, NULL, ARG_BUFFER_SIZE },
                { "agent-socket", required_argument, NULL, 'a' },
                { "source-qube", required_argument, NULL, 's' },
                { "verbose", no_argument, NULL, ARG_VERBOSE },
                { "vm-services-dir", required_argument, NULL, ARG_VM_SERVICES_DIR },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

#define SET(field, value)                                   \
        do {                                                \
                if (free_and_strdup(&arg.field, value) < 0) \
                        return -ENOMEM;                     \
        } while (0)
        /* '+': stop at the first non-option, as qrexec-client-vm (LOCAL_PROGRAM has its own) */
        while ((c = getopt_long(argc, argv, "+p:tTa:s:h", options, NULL)) >= 0)
                switch (c) {
                case ARG_SOURCE:
                        SET(source, optarg);
                        break;
                case ARG_POLICY_DIR:
                        if (strv_extend(&arg.policy_dirs, optarg) < 0)
                                return -ENOMEM;
                        break;
                case ARG_COMPAT_DIR:
                        SET(compat_dir, optarg);
                        break;
                case ARG_SYSTEM_INFO:
                        SET(system_info, optarg);
                        break;
                case ARG_BUS_ADDRESS:
                        SET(bus_address, optarg);
                        break;
                case ARG_SERVICES_DIR:
                        if (strv_extend(&arg.services_dirs, optarg) < 0)
                                return -ENOMEM;
                        break;
                case ARG_SERVICE_STDERR:
                        SET(service_stderr, optarg);
                        break;
                case ARG_ASSUME_YES:
                        arg.assume_yes = true;
                        break;
                case ARG_ASSUME_YES_TARGET:
                        SET(assume_yes_target, optarg);
                        break;
                case 'p':
                        SET(prefix_data, optarg);
                        break;
                case ARG_USE_STDIN_SOCKET:
                        arg.use_stdin_socket = true;
                        break;
                case 't':
                        arg.filter_stdout = 1;
                        break;
                case ARG_NO_FILTER_STDOUT:
                        arg.filter_stdout = 0;
                        break;
                case 'T':
                case ARG_NO_FILTER_STDERR:
                case ARG_BUFFER_SIZE:
                case 'a':
                case 's':
                        break; /* dom0 services' stderr never reaches the caller; no vchan; no relay */
                case ARG_VERBOSE:
                        arg.verbose = true;
                        break;
                case ARG_VM_SERVICES_DIR:
                        SET(vm_services_dir, optarg);
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        (void) version_print(prog);
                        return 0;
                default:
                        return -EINVAL;
                }
#undef SET
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ char *target = NULL, *call = NULL, *service = NULL, *argument = NULL, *full = NULL;
        _cleanup_free_ char *final = NULL, *requested = NULL, *path = NULL, *header = NULL;
        _cleanup_strv_free_ char **env = NULL;
        char **local_argv = NULL;
        const char *type, *reqtarget, *source;
        ServiceKind kind;
        Pump p = { .local_in = STDIN_FILENO, .local_out = STDOUT_FILENO, .remote_in = -1, .remote_out = -1 };
        pid_t service_pid = 0, local_pid = 0;
        int r, ret;

        if (argv[0] && *argv[0]) {
                const char *slash = strrchr(argv[0], '/');
                prog = slash ? slash + 1 : argv[0];
        }
        (void) signal(SIGPIPE, SIG_IGN);

        r = parse_argv(argc, argv);
        if (r == -ENOMEM) {
                fprintf(stderr, "%s: out of memory\n", prog);
                ret = 1;
                goto finish;
        }
        if (r <= 0) {
                ret = r == 0 ? 0 : EXIT_USAGE;
                goto finish;
        }
        if (argc - optind < 2) {
                fprintf(stderr, "%s: expected TARGET SERVICE[+ARG] [LOCAL_PROGRAM [ARGS...]]\n", prog);
                ret = EXIT_USAGE;
                goto finish;
        }
        if (argc - optind > 2) {
                local_argv = argv + optind + 2;
                if (arg.use_stdin_socket) {
                        fprintf(stderr, "%s: --use-stdin-socket and LOCAL_PROGRAM are mutually exclusive\n", prog);
                        ret = EXIT_USAGE;
                        goto finish;
                }
        }

        /* who calls: trusted local configuration, not sanitised but checked */
        source = arg.source;
        if (!source)
                source = getenv("QREXEC_SOURCE");
        if (isempty(source))
                source = getenv("QUBES_RUNNER_SOURCE");
        if (isempty(source))
                source = "dom0";
        if (!valid_qube_name(source)) {
                fprintf(stderr, "%s: invalid source qube: %s\n", prog, source);
                ret = EXIT_USAGE;
                goto finish;
        }

        if (!arg.services_dirs) {
                const char *sp = getenv("QREXEC_SERVICE_PATH");
                if (!isempty(sp)) {
                        _cleanup_free_ char *copy = strdup(sp);
                        char *save = NULL;
                        if (!copy) {
                                ret = 1;
                                goto finish;
                        }
                        for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
                                if (strv_extend(&arg.services_dirs, t) < 0) {
                                        ret = 1;
                                        goto finish;
                                }
                }
                if (!arg.services_dirs && strv_extend(&arg.services_dirs, DEFAULT_SERVICES_DIR) < 0) {
                        ret = 1;
                        goto finish;
                }
        }

        /* the request as qrexec-daemon sanitises it (§2.1, §5.1) */
        target = strndup(argv[optind], MAX_TARGET_LEN);
        call = strdup(argv[optind + 1]);
        if (!target || !call) {
                ret = 1;
                goto finish;
        }
        for (char *t = target; *t; t++)
                if (*t == '$')
                        *t = '@';
        sanitize(target, "_-.@:");
        sanitize(call, "_-.+");
        if (isempty(call) || call[0] == '+') {
                refuse("empty service name");
                ret = EXIT_REFUSED;
                goto finish;
        }
        if (qubes_policy_split_call(call, &service, &argument) < 0) {
                ret = 1;
                goto finish;
        }
        if (asprintf(&full, "%s%s", service, argument) < 0) {
                ret = 1;
                goto finish;
        }

        if (streq(source, "dom0") && !is_dom0ish(target) && target[0] != '@') {
                /* dom0 calling a qube (qrexec-client -d): no policy; the qube's services are a
                 * directory of their own, since there is no qrexec agent here */
                const char *dir = arg.vm_services_dir ?: getenv("QUBES_VM_SERVICES_DIR");
                _cleanup_free_ char *qdir = NULL;
                if (isempty(dir)) {
                        fprintf(stderr,
                                "%s: dom0 calls %s in %s, but no qube services are set up here "
                                "(--vm-services-dir or $QUBES_VM_SERVICES_DIR)\n",
                                prog, full, target);
                        ret = EXIT_PROBLEM;
                        goto finish;
                }
                if (!valid_qube_name(target) || strchr(target, '/') || streq(target, ".") || streq(target, "..")) {
                        fprintf(stderr, "%s: invalid target qube: %s\n", prog, target);
                        ret = EXIT_USAGE;
                        goto finish;
                }
                if (asprintf(&qdir, "%s/%s", dir, target) < 0 || !(final = strdup(target)) ||
                    !(requested = strdup(target))) {
                        ret = 1;
                        goto finish;
                }
                strv_free(arg.services_dirs);
                arg.services_dirs = NULL;
                if (strv_extend(&arg.services_dirs, qdir) < 0) {
                        ret = 1;
                        goto finish;
                }
        } else {
                ret = decide(source, target, service, argument, &final, &requested);
                if (ret != 0)
                        goto finish;
                if (!is_dom0ish(final)) {
                        fprintf(stderr, "%s: the policy sends %s to %s; only calls to dom0 are supported here\n", prog,
                                full, final);
                        ret = EXIT_PROBLEM;
                        goto finish;
                }
        }

        /* what the service is told about the target: the requested one, '@' → keyword (§2.1) */
        if (requested[0] == '@') {
                type = "keyword";
                reqtarget = requested + 1;
        } else {
                type = "name";
                reqtarget = requested;
        }

        ret = find_service(full, service, &path, &kind);
        if (ret != 0)
                goto finish;

        if (kind == SERVICE_SOCKET) {
                int len = asprintf(&header, "%s %s %s %s", full, source, type, reqtarget);
                if (len < 0) {
                        ret = 1;
                        goto finish;
                }
                r = connect_socket_service(path, header, (size_t) len + 1);
                if (r < 0) {
                        ret = EXIT_PROBLEM;
                        goto finish;
                }
                p.remote_in = p.remote_out = r;
                p.remote_is_socket = true;
        } else {
                env = service_environment(source, full, argument + 1, type, reqtarget);
                if (!env) {
                        ret = 1;
                        goto finish;
                }
                r = spawn_service(path, argument + 1, env, &p.remote_in, &p.remote_out, &service_pid);
                if (r < 0) {
                        fprintf(stderr, "%s: cannot start %s: %s\n", prog, path, strerror(-r));
                        ret = EXIT_PROBLEM;
                        goto finish;
                }
        }
        (void) set_nonblock(p.remote_in);

        if (local_argv) {
                r = spawn_local(local_argv, &p.local_in, &p.local_out, &local_pid);
                if (r < 0) {
                        fprintf(stderr, "%s: cannot start %s: %s\n", prog, local_argv[0], strerror(-r));
                        ret = 1;
                        goto finish;
                }
        } else if (arg.use_stdin_socket)
                p.local_out = STDIN_FILENO;

        p.filter = arg.filter_stdout >= 0 ? arg.filter_stdout : (!local_argv && isatty(STDOUT_FILENO));
        if (arg.prefix_data) {
                p.buf = strdup(arg.prefix_data);
                if (!p.buf) {
                        ret = 1;
                        goto finish;
                }
                p.len = p.alloc = strlen(p.buf);
        }

        pump_run(&p);

        /* the service's output ended: tell the local program, then collect the statuses */
        pump_close_remote_in(&p);
        if (p.remote_out >= 0)
                close(p.remote_out);
        if (p.remote_is_socket)
                p.remote_in = p.remote_out = -1;
        if (local_argv) {
                if (p.local_out >= 0)
                        close(p.local_out);
                if (p.local_in >= 0)
                        close(p.local_in);
        }
        ret = 0;
        if (service_pid > 0)
                ret = wait_for(service_pid);
        if (local_pid > 0)
                ret = wait_for(local_pid);
finish:
        free(p.buf);
        options_done(&arg);
        if (fflush(stdout) != 0 && ret == 0)
                ret = 1;
        return ret;
}
