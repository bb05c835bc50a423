/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubes-admin-shim: the Admin API's two front doors onto qubesd's D-Bus interface.
 *
 *  - qrexec service: installed as /etc/qubes-rpc/admin.*; one process per call, the request
 *    comes from the QREXEC_* environment, argv and stdin, the reply goes to stdout.
 *  - socket: --listen PATH or --listen-fd (socket activation), the qubesd.sock protocol of
 *    spec/admin-api.md §1.2, one call per connection, any number of connections at once.
 *
 * Both feed the same request bytes to call_dispatch(), so they cannot disagree. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "shim.h"
#include "util/listener.h"
#include "util/log.h"
#include "util/version.h"

static Shim shim;
static int exit_status = 0;

/* ---- client output (both doors) ------------------------------------------------------ */

static int on_client_free_later(sd_event_source *s, void *userdata) {
        client_free(userdata);
        sd_event_source_unref(s);
        return 0;
}

/* The client went away or is done: free it outside of whatever callback we are in (a bus
 * callback may be running for its call). */
static void client_release(Client *cl) {
        if (cl->released)
                return;
        cl->released = true;
        if (cl->service_door) {
                sd_event_exit(shim.event, exit_status);
                return;
        }
        cl->io_in = sd_event_source_disable_unref(cl->io_in);
        if (sd_event_add_defer(shim.event, NULL, on_client_free_later, cl) < 0)
                log_oom(); /* leak rather than free under our feet */
}

size_t client_pending(const Client *cl) {
        return cl->out.len - cl->out_off;
}

static void client_update_events(Client *cl) {
        sd_event_source *s = cl->io_out ?: cl->io_in;
        uint32_t ev = 0;

        if (!s)
                return;
        if (!cl->got_eof && cl->io_in == s)
                ev |= EPOLLIN;
        if (client_pending(cl) > 0)
                ev |= EPOLLOUT;
        (void) sd_event_source_set_io_events(s, ev);
}

static void client_done(Client *cl) {
        if (!cl->service_door && cl->out_fd >= 0)
                (void) shutdown(cl->out_fd, SHUT_WR);
        client_release(cl);
}

void client_flush(Client *cl) {
        if (cl->released) {
                strbuf_reset(&cl->out);
                cl->out_off = 0;
                return;
        }
        while (client_pending(cl) > 0) {
                ssize_t n = write(cl->out_fd, cl->out.buf + cl->out_off, client_pending(cl));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                client_update_events(cl);
                                return;
                        }
                        /* EPIPE and friends: nobody listens any more */
                        cl->out_off = cl->out.len;
                        client_release(cl);
                        return;
                }
                cl->out_off += (size_t) n;
        }
        strbuf_reset(&cl->out);
        cl->out_off = 0;
        client_update_events(cl);
        if (cl->finishing)
                client_done(cl);
        else if (cl->call)
                events_output_drained(cl->call);
}

void client_write(Client *cl, const void *p, size_t n) {
        strbuf_append_n(&cl->out, p, n);
        client_flush(cl);
}

void client_finish(Client *cl) {
        if (cl->finishing)
                return;
        cl->finishing = true;
        if (cl->out.oom) {
                /* we could not build the reply: say nothing rather than half of it */
                strbuf_reset(&cl->out);
                cl->out_off = 0;
        }
        client_flush(cl);
}

void client_free(Client *cl) {
        if (!cl)
                return;
        call_free(cl->call);
        sd_event_source_disable_unref(cl->io_in);
        if (cl->io_out != cl->io_in)
                sd_event_source_disable_unref(cl->io_out);
        if (!cl->service_door && cl->out_fd >= 0)
                close(cl->out_fd);
        sd_event_source_disable_unref(cl->deadline);
        free(cl->req);
        strbuf_done(&cl->out);
        shim.n_clients--;
        if (!cl->service_door)
                listener_release(shim.listener);
        free(cl);
}

/* ---- socket door --------------------------------------------------------------------- */

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *cl = userdata;

        if ((revents & EPOLLIN) && !cl->got_eof) {
                for (;;) {
                        if (cl->req_alloc - cl->req_len < 4096) {
                                size_t na = cl->req_alloc ? cl->req_alloc * 2 : 8192;
                                char *p;
                                if (na > MAX_REQUEST_SIZE + 1)
                                        na = MAX_REQUEST_SIZE + 1;
                                if (na <= cl->req_len) {
                                        /* over the limit: abort, with nothing, as qubesd.sock */
                                        log_warning("request too long");
                                        client_release(cl);
                                        return 0;
                                }
                                p = realloc(cl->req, na);
                                if (!p) {
                                        client_release(cl);
                                        return 0;
                                }
                                cl->req = p;
                                cl->req_alloc = na;
                        }
                        ssize_t n = read(fd, cl->req + cl->req_len, cl->req_alloc - cl->req_len);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN)
                                        break;
                                client_release(cl);
                                return 0;
                        }
                        if (n == 0) {
                                cl->got_eof = true;
                                break;
                        }
                        cl->req_len += (size_t) n;
                        if (cl->req_len > MAX_REQUEST_SIZE) {
                                log_warning("request too long");
                                client_release(cl);
                                return 0;
                        }
                }
                if (cl->got_eof) {
                        cl->deadline = sd_event_source_disable_unref(cl->deadline);
                        client_update_events(cl);
                        char *req = TAKE_PTR(cl->req);
                        cl->req_alloc = 0;
                        call_dispatch(cl, req, cl->req_len);
                        return 0;
                }
        }
        if (revents & EPOLLOUT)
                client_flush(cl);
        if (revents & (EPOLLHUP | EPOLLERR)) {
                /* the client closed its end: stop whatever it asked for (an event stream) */
                client_release(cl);
        }
        return 0;
}

/* The request did not arrive in time: drop the connection without a word, as for a request
 * that is too long. One line a minute at most, however many go. */
static int on_client_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Client *cl = userdata;
        unsigned suppressed = 0;

        cl->deadline = sd_event_source_disable_unref(cl->deadline);
        if (cl->got_eof)
                return 0;
        shim.n_dropped_idle++;
        if (log_limit_ok(&shim.idle_log, shim.event, &suppressed))
                log_warning("Dropped a connection whose request did not arrive within %.1f s%s.",
                            (double) shim.request_timeout_usec / 1e6, log_limit_suffix(suppressed));
        client_release(cl);
        return 0;
}

static int on_accept(Listener *l, int cfd, void *userdata) {
        Client *cl = new0(Client, 1);
        if (!cl) {
                close(cfd);
                return -ENOMEM;
        }
        cl->shim = &shim;
        cl->in_fd = cl->out_fd = cfd;
        shim.n_clients++;
        /* from here on client_free() closes cfd and gives the listener its place back */
        if (sd_event_add_io(shim.event, &cl->io_in, cfd, EPOLLIN, on_client_io, cl) < 0 ||
            sd_event_add_time_relative(shim.event, &cl->deadline, CLOCK_MONOTONIC, shim.request_timeout_usec,
                                       100 * 1000, on_client_deadline, cl) < 0)
                client_free(cl);
        return 0;
}

static int listen_on_path(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        mode_t old;
        int r;

        if (strlen(path) >= sizeof sa.sun_path)
                return log_error_errno(ENAMETOOLONG, "Socket path too long: %s", path);
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket() failed: %m");

        /* As qubesd: an old socket file nobody listens on is replaced; a live one is not. */
        {
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
                        return log_error_errno(EADDRINUSE, "Someone already listens on %s", path);
        }
        (void) unlink(path);

        /* Bind under a temporary name and rename once listening: a client that sees the path
         * can connect at once (between bind and listen it would be refused). */
        struct sockaddr_un tmp = { .sun_family = AF_UNIX };
        if (snprintf(tmp.sun_path, sizeof tmp.sun_path, "%s.%d", path, (int) getpid()) >= (int) sizeof tmp.sun_path)
                return log_error_errno(ENAMETOOLONG, "Socket path too long: %s", path);
        (void) unlink(tmp.sun_path);
        old = umask(0007);
        r = bind(fd, (struct sockaddr *) &tmp, sizeof tmp);
        umask(old);
        if (r < 0)
                return log_error_errno(errno, "bind(%s) failed: %m", tmp.sun_path);
        if (listen(fd, SOMAXCONN) < 0 || rename(tmp.sun_path, path) < 0) {
                r = -errno;
                (void) unlink(tmp.sun_path);
                return log_error_errno(r, "Cannot listen on %s: %m", path);
        }
        return TAKE_FD(fd);
}

static int run_socket_door(int listen_fd) {
        int r;

        shim.buses = hashmap_new();
        if (!shim.buses)
                return log_oom();
        r = listener_new(shim.event, listen_fd, "the Admin API socket", shim.max_connections, on_accept, NULL,
                         &shim.listener);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the listening socket: %m");
        (void) sd_notify(false, "READY=1");
        r = sd_event_loop(shim.event);
        shim.listener = listener_free(shim.listener);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

/* ---- qrexec service door ------------------------------------------------------------- */

static int on_stdout_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *cl = userdata;

        if (revents & EPOLLOUT)
                client_flush(cl);
        if (revents & (EPOLLHUP | EPOLLERR))
                client_release(cl);
        return 0;
}

static int build_service_request(int argc, char *argv[], StrBuf *b, bool *ret_payload_on_stdin) {
        const char *full = getenv("QREXEC_SERVICE_FULL_NAME");
        const char *src = getenv("QREXEC_REMOTE_DOMAIN");
        const char *type = getenv("QREXEC_REQUESTED_TARGET_TYPE");
        const char *target = getenv("QREXEC_REQUESTED_TARGET");
        const char *keyword = getenv("QREXEC_REQUESTED_TARGET_KEYWORD");
        _cleanup_free_ char *self = strdup(argv[0]);
        const char *service, *arg = NULL;
        char *plus;

        if (!self)
                return -ENOMEM;
        /* the service name: the full name qrexec gives, else the name we were installed as */
        service = !isempty(full) ? full : basename(self);
        _cleanup_free_ char *svc = strdup(service);
        if (!svc)
                return -ENOMEM;
        plus = strchr(svc, '+');
        if (plus) {
                *plus = 0;
                arg = plus + 1;
        }
        if (argc > 1 && isempty(arg))
                arg = argv[1];
        if (!startswith(svc, "admin.")) {
                log_error("Not called as an admin.* qrexec service (got '%s'); use --listen for the socket.", svc);
                return -EINVAL;
        }
        if (isempty(src)) {
                log_error("QREXEC_REMOTE_DOMAIN is not set.");
                return -EINVAL;
        }
        /* the target: a name (or uuid:), or a keyword of which only adminvm reaches dom0 */
        if (streq_ptr(type, "keyword") || (!type && !target && keyword))
                strbuf_printf(b, "%s+%s %s keyword %s", svc, strempty(arg), src, strempty(keyword));
        else if (target)
                strbuf_printf(b, "%s+%s %s name %s", svc, strempty(arg), src, target);
        else {
                log_error("Neither QREXEC_REQUESTED_TARGET nor QREXEC_REQUESTED_TARGET_KEYWORD is set.");
                return -EINVAL;
        }
        strbuf_append_c(b, 0);

        /* a volume import streams stdin to qubesd as a file descriptor: never read it here */
        if (streq(svc, "admin.vm.volume.Import") || streq(svc, "admin.vm.volume.ImportWithSize")) {
                *ret_payload_on_stdin = true;
                return b->oom ? -ENOMEM : 0;
        }

        /* the payload: stdin until EOF, within the limit of qubesd.sock */
        for (;;) {
                char buf[16384];
                ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "Cannot read the payload: %m");
                }
                if (n == 0)
                        break;
                strbuf_append_n(b, buf, (size_t) n);
                if (b->len > MAX_REQUEST_SIZE)
                        return -E2BIG;
        }
        return b->oom ? -ENOMEM : 0;
}

static int run_service_door(int argc, char *argv[]) {
        _cleanup_strbuf_ StrBuf req = {};
        Client *cl;
        bool payload_on_stdin = false;
        int r, flags;

        r = build_service_request(argc, argv, &req, &payload_on_stdin);
        if (r == -E2BIG) {
                /* over the limit: nothing, as qubesd.sock answers */
                log_warning("request too long");
                return 0;
        }
        if (r < 0)
                return r;

        cl = new0(Client, 1);
        if (!cl)
                return log_oom();
        shim.n_clients++;
        cl->shim = &shim;
        cl->service_door = true;
        cl->payload_on_stdin = payload_on_stdin;
        cl->in_fd = -EBADF;
        cl->out_fd = STDOUT_FILENO;
        cl->got_eof = true;
        /* Poll stdout when we can (a pipe or socket from qrexec), so that an event stream to a
         * slow reader does not block the bus; a regular file is written synchronously. */
        r = sd_event_add_io(shim.event, &cl->io_out, STDOUT_FILENO, 0, on_stdout_io, cl);
        if (r >= 0) {
                flags = fcntl(STDOUT_FILENO, F_GETFL);
                if (flags >= 0)
                        (void) fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK);
        } else
                cl->blocking = true;

        size_t len = req.len;
        call_dispatch(cl, strbuf_steal(&req), len);
        r = sd_event_loop(shim.event);
        client_free(cl);
        return r < 0 ? r : 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static void help(void) {
        printf("%s [OPTIONS…]\n\n"
               "Serve the Qubes Admin API by calling qubesd over D-Bus.\n\n"
               "Without options it runs as the qrexec service named by QREXEC_SERVICE_FULL_NAME\n"
               "or its own file name (/etc/qubes-rpc/admin.*).\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --listen=PATH       Serve the qubesd.sock protocol on this socket\n"
               "     --listen-fd         Serve it on the socket passed by systemd\n"
               "     --bus-address=ADDR  Talk to qubesd on this bus (default: the system bus)\n"
               "     --user              Talk to qubesd on the session bus\n"
               "     --private-socket=PATH  Make calls over qubesd's direct socket (default: the\n"
               "                         bus; QUBESD_PRIVATE_SOCKET also sets it)\n"
               "     --list-methods      List the Admin API methods served\n"
               "     --event-queue-max=BYTES  Per admin.Events subscriber (default 4 MiB)\n"
               "     --max-connections=N Socket: at most N connections at once; more wait (default\n"
               "                         1024, or fewer when the descriptor limit is lower)\n"
               "     --request-timeout=SECONDS  Socket: drop a connection whose request has not\n"
               "                         arrived in this time (default 30)\n",
               program_invocation_short_name);
}

int main(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_LISTEN,
                ARG_LISTEN_FD,
                ARG_BUS_ADDRESS,
                ARG_USER,
                ARG_LIST_METHODS,
                ARG_EVENT_QUEUE_MAX,
                ARG_PRIVATE_SOCKET,
                ARG_MAX_CONNECTIONS,
                ARG_REQUEST_TIMEOUT,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "listen-fd", no_argument, NULL, ARG_LISTEN_FD },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "user", no_argument, NULL, ARG_USER },
                { "private-socket", required_argument, NULL, ARG_PRIVATE_SOCKET },
                { "list-methods", no_argument, NULL, ARG_LIST_METHODS },
                { "event-queue-max", required_argument, NULL, ARG_EVENT_QUEUE_MAX },
                { "max-connections", required_argument, NULL, ARG_MAX_CONNECTIONS },
                { "request-timeout", required_argument, NULL, ARG_REQUEST_TIMEOUT },
                {},
        };
        const char *listen_path = NULL;
        bool listen_fd = false, service = true;
        int c, r, fd = -EBADF;

        /* Each admin.vm.List at 1,000 qubes holds about 80 KB twice (sd-bus' buffer of
         * qubesd's answer, the reply to the client), freed when the call ends. With glibc's
         * defaults the freed top of the heap went back to the kernel after each call and the
         * next call faulted it in again: 96,000 page faults in a run of 6,000 socket-door calls
         * (bench-shim; the shim's CPU over the run 4.2-4.6 s). Up to 1 MiB of free heap is kept
         * instead, and buffers under 512 KiB come from the heap: 85 faults in the same run (CPU
         * 3.3-3.9 s; two runs each on a shared machine). */
        (void) mallopt(M_MMAP_THRESHOLD, 512 * 1024);
        (void) mallopt(M_TRIM_THRESHOLD, 1024 * 1024);

        /* qrexec may hand us an argument that starts with '-': options are only parsed when we
         * do not run as a qrexec service */
        if (argc > 1 && startswith(argv[1], "--") && !getenv("QREXEC_SERVICE_FULL_NAME") &&
            !getenv("QREXEC_REMOTE_DOMAIN"))
                service = false;
        if (argc > 1 && (streq(argv[1], "-h") || streq(argv[1], "--help")))
                service = false;

        if (!service) {
                while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                        switch (c) {
                        case 'h':
                                help();
                                return 0;
                        case ARG_VERSION:
                                return version_print("qubes-admin-shim");
                        case ARG_LISTEN:
                                listen_path = optarg;
                                break;
                        case ARG_LISTEN_FD:
                                listen_fd = true;
                                break;
                        case ARG_BUS_ADDRESS:
                                shim.bus_address = optarg;
                                break;
                        case ARG_USER:
                                shim.user_bus = true;
                                break;
                        case ARG_PRIVATE_SOCKET:
                                shim.private_socket = optarg;
                                break;
                        case ARG_EVENT_QUEUE_MAX: {
                                char *end;
                                errno = 0;
                                unsigned long long v = strtoull(optarg, &end, 10);
                                if (errno || *end || v == 0)
                                        return log_error("Invalid --event-queue-max: %s", optarg), 2;
                                shim.event_queue_max = (size_t) v;
                                break;
                        }
                        case ARG_MAX_CONNECTIONS: {
                                char *end;
                                errno = 0;
                                unsigned long v = strtoul(optarg, &end, 10);
                                if (errno || *end || end == optarg || v == 0 || v > 1000000)
                                        return log_error("Invalid --max-connections: %s", optarg), 2;
                                shim.max_connections = (unsigned) v;
                                break;
                        }
                        case ARG_REQUEST_TIMEOUT: {
                                char *end;
                                errno = 0;
                                double v = strtod(optarg, &end);
                                if (errno || *end || end == optarg || !(v > 0 && v <= 86400))
                                        return log_error("Invalid --request-timeout: %s", optarg), 2;
                                shim.request_timeout_usec = (uint64_t) (v * 1e6);
                                break;
                        }
                        case ARG_LIST_METHODS: {
                                size_t i = 0;
                                for (const Method *m; (m = method_next(&i));)
                                        puts(m->name);
                                return 0;
                        }
                        default:
                                return 2;
                        }
        }

        /* Calls take qubesd's private socket when told to, or by default next to the system bus. */
        if (!shim.private_socket)
                shim.private_socket = getenv("QUBESD_PRIVATE_SOCKET");
        if (!shim.private_socket && !shim.bus_address && !shim.user_bus &&
            access(QUBESD_SYSTEM_PRIVATE_SOCKET, W_OK) == 0) {
                shim.private_socket = (char *) QUBESD_SYSTEM_PRIVATE_SOCKET;
                shim.private_socket_guessed = true;
        }
        if (isempty(shim.private_socket))
                shim.private_socket = NULL;

        if (shim.event_queue_max == 0)
                shim.event_queue_max = EVENT_QUEUE_MAX;
        if (shim.request_timeout_usec == 0)
                shim.request_timeout_usec = REQUEST_TIMEOUT_USEC;
        if (shim.max_connections == 0) {
                /* leave room for the bus connections and whatever the libraries open */
                struct rlimit rl;
                shim.max_connections = MAX_CONNECTIONS;
                if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY &&
                    rl.rlim_cur < (rlim_t) MAX_CONNECTIONS + 64)
                        shim.max_connections = rl.rlim_cur > 128 ? (unsigned) rl.rlim_cur - 64 : 64;
        }
        (void) signal(SIGPIPE, SIG_IGN);
        r = sd_event_default(&shim.event);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate the event loop: %m"), 1;

        if (!listen_path && !listen_fd) {
                r = run_service_door(argc, argv);
                sd_event_unref(shim.event);
                return r < 0 ? 1 : exit_status;
        }

        if (listen_fd) {
                r = sd_listen_fds(true);
                if (r < 0)
                        return log_error_errno(r, "sd_listen_fds() failed: %m"), 1;
                if (r != 1)
                        return log_error("Expected exactly one socket from systemd, got %i.", r), 1;
                fd = SD_LISTEN_FDS_START;
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        } else {
                fd = listen_on_path(listen_path);
                if (fd < 0)
                        return 1;
        }

        /* SIGTERM/SIGINT end the loop cleanly */
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        (void) sigprocmask(SIG_BLOCK, &ss, NULL);
        (void) sd_event_add_signal(shim.event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(shim.event, NULL, SIGINT, NULL, NULL);

        r = run_socket_door(fd);
        close(fd);
        if (listen_path)
                (void) unlink(listen_path);
        sd_event_unref(shim.event);
        return r < 0 ? 1 : 0;
}
