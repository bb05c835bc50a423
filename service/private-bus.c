/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A direct (peer-to-peer) D-Bus socket for trusted local clients, like systemd's
 * /run/systemd/private: the same objects as on the bus, without the bus daemon's two extra hops.
 * Every method, property and signal the bus serves is served here too: the same object tree is
 * registered on each connection, and every signal is sent on each (manager_send_everywhere()).
 * qubes-admin-shim uses it for calls. The socket is 0700 (umask 0077), or 0660 with
 * --private-socket-group (how a shim running as its own user reaches it), and every peer's uid is
 * checked: only root, our own user and the --trusted-user users are served. */
#include <inttypes.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-id128.h>

#include "private-bus.h"

#include "auth.h"
#include "caller-filter.h"
#include "manager-dbus.h"
#include "util/listener.h"
#include "util/log.h"

struct PrivateBus {
        struct PrivateConnection *connections;
        Listener *listener;
        int fd;
        char *path;
        uint64_t counter;
        LogLimit slow_log;
};

typedef struct PrivateConnection {
        Manager *manager;
        sd_bus *bus;
        sd_event_source *cleanup;
        sd_event_source *starting; /* until the connection runs: see on_starting() */
        sd_event_source *deadline; /* until the connection runs: the handshake's time is bounded */
        char description[32];
        struct PrivateConnection *next;
} PrivateConnection;

static PrivateConnection *connection_free(PrivateConnection *c) {
        if (!c)
                return NULL;
        auth_forget_caller(c->manager, c->description);
        caller_filter_forget(c->manager, c->description);
        manager_remove_connection(c->manager, c->bus);
        sd_event_source_disable_unref(c->starting);
        sd_event_source_disable_unref(c->deadline);
        sd_event_source_unref(c->cleanup);
        /* flushing a connection still in its handshake would wait for the handshake (sd-bus
         * runs it to the end, blocking): only a running one has replies worth flushing */
        if (c->bus && sd_bus_is_ready(c->bus) > 0)
                sd_bus_flush_close_unref(c->bus);
        else
                sd_bus_close_unref(c->bus);
        if (c->manager->private_bus)
                listener_release(c->manager->private_bus->listener);
        free(c);
        return NULL;
}

static void connection_unlink(PrivateConnection *c) {
        for (PrivateConnection **p = &c->manager->private_bus->connections; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
}

static int on_cleanup(sd_event_source *s, void *userdata) {
        PrivateConnection *c = userdata;
        connection_unlink(c);
        connection_free(c);
        return 0;
}

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        PrivateConnection *c = userdata;
        log_debug("Private connection %s closed.", c->description);
        /* not from inside the bus's own dispatch: free it on the next loop iteration */
        if (!c->cleanup)
                (void) sd_event_add_defer(c->manager->event, &c->cleanup, on_cleanup, c);
        return 0;
}

/* sd-bus (252) does not look again at what it read together with the client's BEGIN until more
 * input comes, so a client that sends its first call right behind BEGIN (GDBus, libdbus) may wait
 * for its answer until it gives up. After every loop iteration, until the connection runs and
 * nothing is left over, process it once more. */
static int on_starting(sd_event_source *s, void *userdata) {
        PrivateConnection *c = userdata;
        int r;

        do
                r = sd_bus_process(c->bus, NULL);
        while (r > 0);
        if (r < 0 || sd_bus_is_ready(c->bus) > 0) {
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                c->deadline = sd_event_source_disable_unref(c->deadline);
        }
        return 0;
}

/* A peer that has not finished the handshake in time goes (it holds a descriptor and a place
 * among the connections). One line a minute at most. */
static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        PrivateConnection *c = userdata;
        PrivateBus *p = c->manager->private_bus;
        unsigned suppressed = 0;

        c->deadline = sd_event_source_disable_unref(c->deadline);
        if (sd_bus_is_ready(c->bus) > 0)
                return 0;
        if (log_limit_ok(&p->slow_log, c->manager->event, &suppressed))
                log_warning("Dropped private connection %s: no handshake within %.1f s%s.", c->description,
                            (double) c->manager->config.private_timeout_usec / 1e6, log_limit_suffix(suppressed));
        if (!c->cleanup)
                (void) sd_event_add_defer(c->manager->event, &c->cleanup, on_cleanup, c);
        return 0;
}

static int on_accept(Listener *l, int fd, void *userdata) {
        Manager *m = userdata;
        _cleanup_close_ int cfd = fd;
        struct ucred cred;
        socklen_t len = sizeof cred;
        sd_id128_t id;
        int r;

        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || !auth_uid_trusted(m, cred.uid)) {
                log_warning("Refused a private connection from uid %d.", len ? (int) cred.uid : -1);
                return -EPERM;
        }

        PrivateConnection *c = new0(PrivateConnection, 1);
        if (!c)
                return log_oom();
        c->manager = m; /* from here on connection_free() gives the listener its place back */
        snprintf(c->description, sizeof c->description, "private-%" PRIu64, ++m->private_bus->counter);
        r = sd_bus_new(&c->bus);
        if (r >= 0)
                r = sd_bus_set_fd(c->bus, cfd, cfd);
        if (r >= 0) {
                cfd = -EBADF; /* owned by the bus now */
                (void) sd_id128_randomize(&id);
                r = sd_bus_set_server(c->bus, 1, id);
        }
        if (r >= 0)
                r = sd_bus_set_description(c->bus, c->description);
        if (r >= 0)
                r = sd_bus_negotiate_fds(c->bus, true);
        if (r >= 0)
                r = sd_bus_start(c->bus);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_event_add_post(m->event, &c->starting, on_starting, c);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &c->deadline, CLOCK_MONOTONIC, m->config.private_timeout_usec,
                                               100 * 1000, on_deadline, c);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, NULL, NULL, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                        "Disconnected", on_disconnected, c);
        if (r >= 0)
                r = manager_dbus_register(m, c->bus);
        if (r >= 0)
                r = manager_add_connection(m, c->bus);
        if (r < 0) {
                log_warning_errno(r, "Failed to set up a private connection: %m");
                connection_free(c);
                return 0;
        }
        c->next = m->private_bus->connections;
        m->private_bus->connections = c;
        log_debug("Private connection %s from uid %u.", c->description, (unsigned) cred.uid);
        return 0;
}

int private_bus_listen(Manager *m, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        int r;

        m->private_bus = new0(PrivateBus, 1);
        if (!m->private_bus)
                return log_oom();
        m->private_bus->fd = -EBADF;
        if (m->config.private_max_connections == 0)
                m->config.private_max_connections = QUBESD_PRIVATE_MAX_CONNECTIONS;
        if (m->config.private_timeout_usec == 0)
                m->config.private_timeout_usec = QUBESD_PRIVATE_TIMEOUT_USEC;
        if (strlen(path) >= sizeof sa.sun_path)
                return log_error_errno(ENAMETOOLONG, "Private socket path too long: %s", path);
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket(): %m");
        (void) unlink(path);
        mode_t old = umask(0077);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0)
                return log_error_errno(errno, "Cannot bind %s: %m", path);
        if (m->config.private_socket_gid != 0 &&
            (chown(path, (uid_t) -1, m->config.private_socket_gid) < 0 || chmod(path, 0660) < 0))
                return log_error_errno(errno, "Cannot give %s to group %u: %m", path,
                                       (unsigned) m->config.private_socket_gid);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "listen(): %m");
        r = listener_new(m->event, fd, path, m->config.private_max_connections, on_accept, m,
                         &m->private_bus->listener);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s: %m", path);
        m->private_bus->fd = TAKE_FD(fd);
        m->private_bus->path = strdup(path);
        log_debug("Private connections on %s.", path);
        return 0;
}

void private_bus_done(Manager *m) {
        PrivateBus *p = m->private_bus;
        if (!p)
                return;
        PrivateConnection *c = p->connections;
        while (c) {
                PrivateConnection *next = c->next;
                connection_free(c);
                c = next;
        }
        p->listener = listener_free(p->listener);
        if (p->fd >= 0)
                close(p->fd);
        if (p->path) {
                (void) unlink(p->path);
                free(p->path);
        }
        m->private_bus = mfree(p);
}
