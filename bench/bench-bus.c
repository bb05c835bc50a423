/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A C client of qubesd's bus (sd-bus): the snapshot a client loads at start-up
 * (GetManagedObjects), one qube's GetAll, and the floor of an sd-bus call through dbus-daemon
 * (Peer.Ping to qubesd) and of a unix-socket round trip (a connection to another process, one byte
 * there and back; and with a reply of admin.vm.List's size), in one run. With --pid, qubesd's CPU time per call from /proc (steadier than the round trip on a
 * busy machine). Prints one line per figure: median, p90, p99 and the count.
 *
 *   bench-bus --address unix:path=BUS [--pid PID] [--runs N] [--qube NAME] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define BUS_NAME "org.qubes_os.Admin1"
#define ROOT "/org/qubes_os/Admin1"

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(int pid) {
        char path[64], buf[1024];
        if (pid <= 0)
                return 0;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return 0;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        if (!p)
                return 0;
        unsigned long utime = 0, stime = 0;
        /* fields after the name: state(3) … utime(14) stime(15) */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
                return 0;
        return (utime + stime) * 1000.0 / sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void report(const char *what, double *s, size_t n, double cpu_total) {
        qsort(s, n, sizeof(double), cmp_double);
        printf("  %-34s median %8.3f ms   p90 %8.3f   p99 %8.3f   [%zu calls]", what, s[n / 2], s[n * 9 / 10],
               s[n * 99 / 100], n);
        if (cpu_total > 0)
                printf("   qubesd CPU %.2f ms/call", cpu_total / n);
        printf("\n");
}

typedef int (*CallFn)(sd_bus *bus, const char *arg, size_t *size);

static int call_managed_objects(sd_bus *bus, const char *arg, size_t *size) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, BUS_NAME, ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", &e,
                                   &reply, "");
        if (r < 0) {
                fprintf(stderr, "GetManagedObjects: %s\n", e.message ?: strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        if (size) {
                /* count the objects: what the client would walk */
                size_t n = 0;
                r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
                while (r > 0 && (r = sd_bus_message_skip(reply, "{oa{sa{sv}}}")) > 0)
                        n++;
                *size = n;
        }
        sd_bus_message_unref(reply);
        return 0;
}

static int call_get_all(sd_bus *bus, const char *path, size_t *size) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &e, &reply, "s",
                                   "org.qubes_os.Admin1.QubesVM");
        if (r < 0) {
                fprintf(stderr, "GetAll: %s\n", e.message ?: strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        sd_bus_message_unref(reply);
        return 0;
}

static int call_ping(sd_bus *bus, const char *arg, size_t *size) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, BUS_NAME, ROOT, "org.freedesktop.DBus.Peer", "Ping", &e, NULL, "");
        if (r < 0) {
                fprintf(stderr, "Ping: %s\n", e.message ?: strerror(-r));
                sd_bus_error_free(&e);
        }
        return r;
}

static int measure(sd_bus *bus, const char *what, CallFn fn, const char *arg, size_t runs, int pid) {
        double *s = calloc(runs, sizeof(double));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < 3; i++)
                if (fn(bus, arg, NULL) < 0) {
                        free(s);
                        return -EIO;
                }
        double c0 = cpu_ms(pid);
        for (size_t i = 0; i < runs; i++) {
                double t0 = now_ms();
                if (fn(bus, arg, NULL) < 0) {
                        free(s);
                        return -EIO;
                }
                s[i] = now_ms() - t0;
        }
        report(what, s, runs, cpu_ms(pid) - c0);
        free(s);
        return 0;
}

/* The floor of each round trip the socket door makes (client -> shim -> qubesd and back, a
 * connection per call): a connection to a unix socket that another process accepts, one byte
 * there and a reply of reply_size bytes back (1, or the size of admin.vm.List's answer, which
 * both round trips carry), closed. */
static void socket_floor(size_t runs, size_t reply_size, const char *label) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/bench-bus-XXXXXX";
        if (!mkdtemp(dir))
                return;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s", dir);
        int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0 || bind(l, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(l, 16) < 0) {
                if (l >= 0)
                        close(l);
                rmdir(dir);
                return;
        }
        char *reply = calloc(reply_size, 1);
        pid_t child = reply ? fork() : -1;
        if (child == 0) {
                for (;;) {
                        char c;
                        int fd = accept(l, NULL, NULL);
                        if (fd < 0)
                                _exit(0);
                        if (read(fd, &c, 1) == 1)
                                for (size_t off = 0; off < reply_size;) {
                                        ssize_t n = write(fd, reply + off, reply_size - off);
                                        if (n <= 0)
                                                break;
                                        off += (size_t) n;
                                }
                        close(fd);
                }
        }
        double *s = child > 0 ? calloc(runs, sizeof(double)) : NULL;
        size_t done = 0;
        for (; s && done < runs; done++) {
                char c = 'x';
                size_t got = 0;
                double t0 = now_ms();
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || write(fd, &c, 1) != 1) {
                        if (fd >= 0)
                                close(fd);
                        break;
                }
                while (got < reply_size) {
                        ssize_t n = read(fd, reply, reply_size - got);
                        if (n <= 0)
                                break;
                        got += (size_t) n;
                }
                close(fd);
                if (got < reply_size)
                        break;
                s[done] = now_ms() - t0;
        }
        if (child > 0) {
                kill(child, SIGTERM);
                (void) waitpid(child, NULL, 0);
        }
        close(l);
        unlink(sa.sun_path);
        rmdir(dir);
        if (s && done > 0)
                report(label, s, done, 0);
        free(s);
        free(reply);
}

/* The size of admin.vm.List's answer for dom0 (ListDomainsText), for its floor. */
static size_t listing_size(sd_bus *bus) {
        sd_bus_message *reply = NULL;
        const void *p;
        size_t n = 0;
        if (sd_bus_call_method(bus, BUS_NAME, ROOT, "org.qubes_os.Admin1.Manager", "ListDomainsText", NULL, &reply,
                               "") < 0 ||
            sd_bus_message_read_array(reply, 'y', &p, &n) < 0)
                n = 0;
        sd_bus_message_unref(reply);
        return n;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "address", required_argument, NULL, 'a' }, { "pid", required_argument, NULL, 'p' },
                { "runs", required_argument, NULL, 'n' },    { "qube", required_argument, NULL, 'q' },
                { "floors", no_argument, NULL, 'f' },        {},
        };
        const char *address = NULL, *qube = NULL;
        size_t runs = 30;
        int pid = 0, c, floors = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        address = optarg;
                        break;
                case 'p':
                        pid = atoi(optarg);
                        break;
                case 'n':
                        runs = strtoul(optarg, NULL, 10);
                        break;
                case 'q':
                        qube = optarg;
                        break;
                case 'f':
                        floors = 1;
                        break;
                default:
                        return 2;
                }
        if (!address || runs < 1) {
                fprintf(stderr, "usage: %s --address ADDRESS [--pid PID] [--runs N] [--qube NAME] [--floors]\n",
                        argv[0]);
                return 2;
        }

        sd_bus *bus = NULL;
        int r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to %s: %s\n", address, strerror(-r));
                return 1;
        }

        size_t objects = 0;
        if (call_managed_objects(bus, NULL, &objects) < 0)
                return 1;
        printf("  C client (sd-bus) through dbus-daemon; snapshot of %zu objects\n", objects);
        if (floors) {
                if (measure(bus, "sd-bus call via dbus-daemon (floor)", call_ping, NULL, runs * 20, pid) < 0)
                        return 1;
                socket_floor(runs * 20, 1, "unix-socket round trip (floor)");
                size_t n = listing_size(bus);
                if (n > 0) {
                        char label[64];
                        snprintf(label, sizeof label, "same, %zu-byte reply (vm.List)", n);
                        socket_floor(runs * 20, n, label);
                }
        }
        if (measure(bus, "GetManagedObjects", call_managed_objects, NULL, runs, pid) < 0)
                return 1;
        if (qube) {
                char *path = NULL;
                if (sd_bus_path_encode(ROOT "/domain", qube, &path) < 0)
                        return 1;
                r = measure(bus, "GetAll QubesVM (one qube)", call_get_all, path, runs * 20, pid);
                free(path);
                if (r < 0)
                        return 1;
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}
