/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Latency of Admin API calls through a qubesd.sock-protocol socket (the shim's socket door, or
 * upstream qubesd's own socket): each call is a fresh connection, the request, a half-close and
 * the reply read to EOF, as qubesadmin does. Prints median and spread per call kind.
 *
 *   bench-shim --socket PATH [--calls N] [--clients K] [--qube NAME] [--set | --set-only]
 * (--set-only: only the durable Set, N calls per client, 1 and 8 clients; bench-groupcommit)
 */
#include <getopt.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "util/macros.h"

typedef struct Job {
        const char *socket;
        const char *request;
        size_t request_len;
        int calls;
        double *samples; /* ms */
        int failures;
} Job;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int one_call(const char *path, const char *req, size_t len) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char buf[65536];
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        size_t got = 0;

        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        if (write(fd, req, len) != (ssize_t) len)
                return -EIO;
        shutdown(fd, SHUT_WR);
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                if (got == 0 && buf[0] != '0')
                        return -EPROTO;
                got += (size_t) n;
        }
        return got >= 2 ? 0 : -EPROTO;
}

static void *run_job(void *p) {
        Job *j = p;
        for (int i = 0; i < j->calls; i++) {
                double t = now_ms();
                if (one_call(j->socket, j->request, j->request_len) < 0)
                        j->failures++;
                j->samples[i] = now_ms() - t;
        }
        return NULL;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void measure(const char *label, const char *socket_path, const char *req, size_t len, int calls, int clients) {
        Job jobs[64];
        pthread_t threads[64];
        double *all = calloc((size_t) calls * clients, sizeof(double));
        int failures = 0;

        if (!all)
                return;
        double t0 = now_ms();
        for (int k = 0; k < clients; k++) {
                jobs[k] = (Job){ socket_path, req, len, calls, all + (size_t) k * calls, 0 };
                pthread_create(&threads[k], NULL, run_job, &jobs[k]);
        }
        for (int k = 0; k < clients; k++) {
                pthread_join(threads[k], NULL);
                failures += jobs[k].failures;
        }
        double wall = now_ms() - t0;
        size_t n = (size_t) calls * clients;
        qsort(all, n, sizeof(double), cmp_double);
        printf("  %-34s clients=%-2d median %7.3f ms  p10 %7.3f  p90 %7.3f  (%.0f calls/s%s)\n", label, clients,
               all[n / 2], all[n / 10], all[n * 9 / 10], n / (wall / 1e3), failures ? ", FAILURES" : "");
        if (failures)
                printf("    %d of %zu calls failed\n", failures, n);
        free(all);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' }, { "calls", required_argument, NULL, 'n' },
                { "qube", required_argument, NULL, 'q' },   { "set", no_argument, NULL, 'S' },
                { "set-only", no_argument, NULL, 'O' },     {},
        };
        const char *sock = NULL, *qube = "work";
        int calls = 2000, c;
        bool with_set = false, set_only = false;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        sock = optarg;
                        break;
                case 'n':
                        calls = atoi(optarg);
                        break;
                case 'q':
                        qube = optarg;
                        break;
                case 'S':
                        with_set = true;
                        break;
                case 'O':
                        set_only = true;
                        break;
                default:
                        return 2;
                }
        if (!sock || calls <= 0) {
                fprintf(stderr, "usage: bench-shim --socket PATH [--calls N] [--qube NAME] [--set]\n");
                return 2;
        }

        char get[256], getall[256], list[256], set[256];
        int lg = snprintf(get, sizeof get, "admin.vm.property.Get+vcpus dom0 name %s", qube) + 1;
        int la = snprintf(getall, sizeof getall, "admin.vm.property.GetAll+ dom0 name %s", qube) + 1;
        int ll = snprintf(list, sizeof list, "admin.vm.List+ dom0 name dom0") + 1;
        int ls = snprintf(set, sizeof set, "admin.vm.property.Set+vcpus dom0 name %s%c3", qube, 0);

        if (set_only) {
                for (int clients = 1; clients <= 8; clients += 7)
                        measure("admin.vm.property.Set (durable)", sock, set, (size_t) ls, calls, clients);
                return 0;
        }
        for (int clients = 1; clients <= 8; clients += 7) {
                int per = clients == 1 ? calls : calls / clients;
                measure("admin.vm.property.Get", sock, get, (size_t) lg, per, clients);
                measure("admin.vm.property.GetAll", sock, getall, (size_t) la, per, clients);
                measure("admin.vm.List", sock, list, (size_t) ll, per, clients);
                if (with_set)
                        measure("admin.vm.property.Set (durable)", sock, set, (size_t) ls, per / 4 ?: 1, clients);
        }
        return 0;
}
