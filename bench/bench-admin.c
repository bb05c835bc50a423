/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Admin API benchmarks that bench-shim does not cover:
 *
 *   bench-admin service --shim PATH --bus ADDRESS [--calls N] [--qube NAME]
 *       The qrexec service door: every call starts qubes-admin-shim as qrexec-daemon would (argv[0]
 *       the service name, QREXEC_* environment, payload on stdin, reply on stdout) and waits for it
 *       to exit. Prints median and spread of the whole call, process start included.
 *
 *   bench-admin events --socket PATH [--subscribers K] [--sets N] [--setters J] [--qube NAME]
 *       admin.Events fan-out through the socket door: K subscribers, then N durable
 *       admin.vm.property.Set calls from J parallel clients. Every subscriber must receive every
 *       property-set event (none lost); prints the events delivered per second over all
 *       subscribers, from the first Set to the last delivery. Exits 1 if an event was lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void print_stats(const char *label, double *v, size_t n, const char *extra) {
        qsort(v, n, sizeof(double), cmp_double);
        printf("  %-34s median %7.3f ms  p10 %7.3f  p90 %7.3f  [%zu calls]%s\n", label, v[n / 2], v[n / 10],
               v[n * 9 / 10], n, extra ? extra : "");
}

/* ---- service door ---------------------------------------------------------------------- */

static int service_call(const char *shim, const char *bus, const char *method, const char *arg, const char *qube,
                        const char *payload) {
        char full[256], bus_env[512], name_env[300], arg_env[200], dest_env[200];
        int in[2], out[2], status;
        char buf[65536];
        ssize_t n;
        size_t got = 0;
        pid_t pid;
        posix_spawn_file_actions_t fa;

        snprintf(full, sizeof full, "%s%s%s", method, arg ? "+" : "", arg ? arg : "");
        snprintf(name_env, sizeof name_env, "QREXEC_SERVICE_FULL_NAME=%s", full);
        snprintf(arg_env, sizeof arg_env, "QREXEC_SERVICE_ARGUMENT=%s", arg ? arg : "");
        snprintf(dest_env, sizeof dest_env, "QREXEC_REQUESTED_TARGET=%s", qube);
        snprintf(bus_env, sizeof bus_env, "DBUS_SYSTEM_BUS_ADDRESS=%s", bus);
        char *envp[] = { name_env, arg_env, "QREXEC_REMOTE_DOMAIN=dom0", "QREXEC_REQUESTED_TARGET_TYPE=name",
                         /* this bench's qubesd, never another one's /run/qubesd/private */
                         dest_env, bus_env, "QUBESD_PRIVATE_SOCKET=", "PATH=/usr/bin:/bin", NULL };
        char argv0[300];
        snprintf(argv0, sizeof argv0, "/etc/qubes-rpc/%s", method);
        char *argv[] = { argv0, (char *) arg, NULL };
        if (!arg)
                argv[1] = NULL;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        int r = posix_spawn(&pid, shim, &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        if (r != 0) {
                close(in[1]);
                close(out[0]);
                return -r;
        }
        if (payload && write(in[1], payload, strlen(payload)) < 0)
                r = -errno;
        close(in[1]);
        while ((n = read(out[0], buf, sizeof buf)) > 0) {
                if (got == 0 && buf[0] != '0')
                        r = -EPROTO;
                got += (size_t) n;
        }
        close(out[0]);
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        if (r == 0 && (got < 2 || !WIFEXITED(status) || WEXITSTATUS(status) != 0))
                r = -EPROTO;
        return r;
}

static int run_service(const char *shim, const char *bus, const char *qube, int calls) {
        static const struct {
                const char *label, *method, *arg;
        } kinds[] = {
                { "service admin.vm.property.Get", "admin.vm.property.Get", "vcpus" },
                { "service admin.vm.List", "admin.vm.List", NULL },
        };
        int failures = 0;

        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                double *v = calloc((size_t) calls, sizeof(double));
                int fail = 0;
                if (!v)
                        return 1;
                for (int i = 0; i < 5; i++) /* warm-up: page cache, bus */
                        (void) service_call(shim, bus, kinds[k].method, kinds[k].arg, qube, "");
                for (int i = 0; i < calls; i++) {
                        double t = now_ms();
                        if (service_call(shim, bus, kinds[k].method, kinds[k].arg, kinds[k].arg ? qube : "dom0", "") <
                            0)
                                fail++;
                        v[i] = now_ms() - t;
                }
                print_stats(kinds[k].label, v, (size_t) calls, fail ? "  FAILURES" : "");
                failures += fail;
                free(v);
        }
        return failures ? 1 : 0;
}

/* ---- admin.Events fan-out ---------------------------------------------------------------- */

static int sock_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int sock_call(const char *path, const char *req, size_t len) {
        char buf[4096];
        ssize_t n;
        size_t got = 0;
        int r = 0, fd = sock_connect(path);

        if (fd < 0)
                return fd;
        if (write(fd, req, len) != (ssize_t) len)
                r = -EIO;
        shutdown(fd, SHUT_WR);
        while ((n = read(fd, buf, sizeof buf)) > 0) {
                if (got == 0 && buf[0] != '0')
                        r = -EPROTO;
                got += (size_t) n;
        }
        close(fd);
        return r ? r : got >= 2 ? 0 : -EPROTO;
}

typedef struct Subscriber {
        int fd;
        char *buf;
        size_t len, alloc;
        long frames;   /* event frames after connection-established */
        long matching; /* property-set:<prop> frames */
        bool established;
        bool closed;
} Subscriber;

typedef struct Setter {
        const char *socket, *qube;
        int first, count, failures;
} Setter;

static const char *event_prop = "qrexec_timeout";

static void *run_setter(void *p) {
        Setter *s = p;
        char req[256];
        for (int i = 0; i < s->count; i++) {
                /* always a new value, so every Set is a change */
                int len = snprintf(req, sizeof req, "admin.vm.property.Set+%s dom0 name %s%c%d", event_prop, s->qube, 0,
                                   1000 + s->first + i);
                if (sock_call(s->socket, req, (size_t) len) < 0)
                        s->failures++;
        }
        return NULL;
}

/* Frames are 1\0 subject \0 name \0 (key \0 value \0)* \0. */
static void consume(Subscriber *s, const char *match) {
        size_t pos = 0;
        for (;;) {
                const char *b = s->buf + pos, *end = s->buf + s->len;
                if (end - b < 2)
                        break;
                if (b[0] != '1' || b[1] != 0) {
                        fprintf(stderr, "bench-admin: not an event frame\n");
                        exit(1);
                }
                const char *p = b + 2, *fields[3] = {};
                int nf = 0;
                bool complete = false;
                while (p < end) {
                        const char *nul = memchr(p, 0, (size_t) (end - p));
                        if (!nul)
                                break;
                        if (nf >= 2 && nf % 2 == 0 && nul == p) { /* empty key: end of frame */
                                p = nul + 1;
                                complete = true;
                                break;
                        }
                        if (nf < 3)
                                fields[nf] = p;
                        nf++;
                        p = nul + 1;
                }
                if (!complete)
                        break;
                if (!s->established) {
                        if (strcmp(fields[1], "connection-established") == 0)
                                s->established = true;
                } else {
                        s->frames++;
                        if (strcmp(fields[1], match) == 0)
                                s->matching++;
                }
                pos = (size_t) (p - s->buf);
        }
        memmove(s->buf, s->buf + pos, s->len - pos);
        s->len -= pos;
}

static bool pump(Subscriber *subs, int k, const char *match, int timeout_ms) {
        struct pollfd pfd[256];
        int n = 0;
        for (int i = 0; i < k; i++)
                if (!subs[i].closed)
                        pfd[n++] = (struct pollfd){ .fd = subs[i].fd, .events = POLLIN };
        if (n == 0 || poll(pfd, (nfds_t) n, timeout_ms) <= 0)
                return false;
        for (int j = 0; j < n; j++) {
                if (!(pfd[j].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                Subscriber *s = NULL;
                for (int i = 0; i < k; i++)
                        if (subs[i].fd == pfd[j].fd)
                                s = &subs[i];
                if (s->alloc - s->len < 65536) {
                        s->alloc = s->alloc * 2 + 65536;
                        s->buf = realloc(s->buf, s->alloc);
                        if (!s->buf)
                                exit(1);
                }
                ssize_t r = read(s->fd, s->buf + s->len, s->alloc - s->len);
                if (r <= 0) {
                        s->closed = true;
                        continue;
                }
                s->len += (size_t) r;
                consume(s, match);
        }
        return true;
}

static int run_events(const char *sock, const char *qube, int k, int sets, int setters) {
        Subscriber *subs = calloc((size_t) k, sizeof(Subscriber));
        Setter st[64];
        pthread_t th[64];
        char match[128], req[256];
        int len;

        snprintf(match, sizeof match, "property-set:%s", event_prop);
        len = snprintf(req, sizeof req, "admin.Events dom0 name dom0%c", 0);
        for (int i = 0; i < k; i++) {
                subs[i].fd = sock_connect(sock);
                if (subs[i].fd < 0 || write(subs[i].fd, req, (size_t) len) != len) {
                        fprintf(stderr, "bench-admin: cannot subscribe: %s\n", strerror(-subs[i].fd));
                        return 1;
                }
                shutdown(subs[i].fd, SHUT_WR);
        }
        /* every subscriber is registered once it has its connection-established frame */
        double deadline = now_ms() + 20000;
        for (;;) {
                int ready = 0;
                for (int i = 0; i < k; i++)
                        ready += subs[i].established;
                if (ready == k)
                        break;
                if (now_ms() > deadline) {
                        fprintf(stderr, "bench-admin: only %d of %d subscribers established\n", ready, k);
                        return 1;
                }
                pump(subs, k, match, 100);
        }

        double t0 = now_ms();
        int per = sets / setters, failures = 0;
        for (int j = 0; j < setters; j++) {
                st[j] = (Setter){ sock, qube, j * per, j == setters - 1 ? sets - j * per : per, 0 };
                pthread_create(&th[j], NULL, run_setter, &st[j]);
        }
        /* deliveries are read while the setters run */
        double last_delivery = t0, sets_done = 0;
        bool joined = false;
        deadline = 0;
        for (;;) {
                long have = 0;
                for (int i = 0; i < k; i++)
                        have += subs[i].matching;
                if (have >= (long) k * sets)
                        break;
                if (joined && now_ms() > deadline)
                        break;
                if (pump(subs, k, match, 50))
                        last_delivery = now_ms();
                if (!joined) {
                        /* cheap check whether the setters are all done */
                        bool all = true;
                        for (int j = 0; j < setters; j++) {
                                if (st[j].count < 0)
                                        continue; /* joined already */
                                if (pthread_tryjoin_np(th[j], NULL) == 0)
                                        st[j].count = -1;
                                else
                                        all = false;
                        }
                        if (all) {
                                joined = true;
                                sets_done = now_ms();
                                deadline = sets_done + 10000;
                        }
                }
        }
        if (!joined)
                for (int j = 0; j < setters; j++)
                        if (st[j].count >= 0)
                                pthread_join(th[j], NULL);
        if (!sets_done)
                sets_done = now_ms();
        for (int j = 0; j < setters; j++)
                failures += st[j].failures;

        long delivered = 0, matching = 0, min_match = -1, max_match = 0;
        for (int i = 0; i < k; i++) {
                delivered += subs[i].frames;
                matching += subs[i].matching;
                if (min_match < 0 || subs[i].matching < min_match)
                        min_match = subs[i].matching;
                if (subs[i].matching > max_match)
                        max_match = subs[i].matching;
                close(subs[i].fd);
                free(subs[i].buf);
        }
        free(subs);
        double secs = (last_delivery - t0) / 1e3;
        long lost = (long) k * sets - matching;
        printf("  %-34s %d subscribers, %d Sets from %d clients in %.2f s: %ld events delivered, %.0f events/s "
               "delivered, %ld lost (each subscriber got %ld..%ld of %d property-set)%s\n",
               "admin.Events fan-out", k, sets, setters, (sets_done - t0) / 1e3, delivered,
               secs > 0 ? delivered / secs : 0.0, lost < 0 ? 0 : lost, min_match, max_match, sets,
               failures ? ", Set FAILURES" : "");
        return lost != 0 || failures ? 1 : 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "shim", required_argument, NULL, 'x' },
                { "bus", required_argument, NULL, 'b' },
                { "socket", required_argument, NULL, 's' },
                { "calls", required_argument, NULL, 'n' },
                { "qube", required_argument, NULL, 'q' },
                { "subscribers", required_argument, NULL, 'k' },
                { "sets", required_argument, NULL, 'N' },
                { "setters", required_argument, NULL, 'j' },
                {},
        };
        const char *shim = NULL, *bus = NULL, *sock = NULL, *qube = "work";
        int calls = 100, subscribers = 20, sets = 200, setters = 4, c;

        if (argc < 2)
                goto usage;
        const char *mode = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'x':
                        shim = optarg;
                        break;
                case 'b':
                        bus = optarg;
                        break;
                case 's':
                        sock = optarg;
                        break;
                case 'n':
                        calls = atoi(optarg);
                        break;
                case 'q':
                        qube = optarg;
                        break;
                case 'k':
                        subscribers = atoi(optarg);
                        break;
                case 'N':
                        sets = atoi(optarg);
                        break;
                case 'j':
                        setters = atoi(optarg);
                        break;
                default:
                        goto usage;
                }
        if (strcmp(mode, "service") == 0 && shim && bus && calls > 0)
                return run_service(shim, bus, qube, calls);
        if (strcmp(mode, "events") == 0 && sock && subscribers > 0 && subscribers <= 256 && sets > 0 && setters > 0 &&
            setters <= 64 && sets >= setters)
                return run_events(sock, qube, subscribers, sets, setters);
usage:
        fprintf(stderr, "usage: bench-admin service --shim PATH --bus ADDRESS [--calls N] [--qube NAME]\n"
                        "       bench-admin events --socket PATH [--subscribers K] [--sets N] [--setters J] "
                        "[--qube NAME]\n");
        return 2;
}
