/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubesd's assembly: the Manager is built here part by part, each part started in order (the
 * model, the loop, the workers, the qrexec policy filter, the value constraints, change
 * notification, the bus and its object tree, the hypervisor, the private socket, and the bus
 * name last), and taken down in the reverse order. The one file that knows every part. */
#include "daemon.h"

#include <malloc.h>

#include <signal.h>
#include <systemd/sd-daemon.h>

#include "auth.h"
#include "backup-dbus.h"
#include "caller-filter.h"
#include "changes.h"
#include "commit.h"
#include "constraints.h"
#include "devices-dbus.h"
#include "firewall-dbus.h"
#include "job-dbus.h"
#include "journal.h"
#include "lifecycle.h"
#include "manager-dbus.h"
#include "preload.h"
#include "private-bus.h"
#include "storage-dbus.h"
#include "storage/storage.h"
#include "workers.h"
#include "util/fileio.h"
#include "util/log.h"

static int on_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *old, *new;

        if (sd_bus_message_read(msg, "sss", &name, &old, &new) < 0)
                return 0;
        if (name[0] == ':' && isempty(new)) {
                auth_forget_caller(m, name);
                caller_filter_forget(m, name);
        }
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        log_info("Received %s, exiting.", strsignal((int) si->ssi_signo));
        return sd_event_exit(m->event, 0);
}

static int connect_bus(Manager *m) {
        int r;

        switch (m->config.bus_kind) {
        case BUS_SYSTEM:
                r = sd_bus_open_system_with_description(&m->bus, "qubesd");
                break;
        case BUS_USER:
                r = sd_bus_open_user_with_description(&m->bus, "qubesd");
                break;
        case BUS_FD:
                r = sd_bus_new(&m->bus);
                if (r < 0)
                        return r;
                (void) sd_bus_set_description(m->bus, "qubesd");
                r = sd_bus_set_fd(m->bus, m->config.bus_fd, m->config.bus_fd);
                if (r < 0)
                        return r;
                r = sd_bus_start(m->bus);
                break;
        default:
                r = sd_bus_new(&m->bus);
                if (r < 0)
                        return r;
                (void) sd_bus_set_description(m->bus, "qubesd");
                r = sd_bus_set_address(m->bus, m->config.bus_address);
                if (r < 0)
                        return r;
                r = sd_bus_set_bus_client(m->bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_start(m->bus);
        }
        if (r < 0)
                return r;
        return sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
}

int daemon_new(const ManagerConfig *config, Manager **ret) {
        _cleanup_(daemon_freep) Manager *m = NULL;
        _cleanup_qerror_ QError e = {};
        int r;

        /* The large buffers (qubes.xml as a save builds it and reads back the durable one, a
         * snapshot's body, the listing: 1-2 MB each at 1,000 qubes) are mapped on their own and
         * unmapped when freed. By default glibc raises this threshold to the size of the first
         * such buffer freed, after which they come from the heap and their memory stays there
         * (3 MiB more after twenty durable Sets at 1,000 qubes). */
        (void) mallopt(M_MMAP_THRESHOLD, 256 * 1024);

        m = new0(Manager, 1);
        if (!m)
                return log_oom();
        m->config = *config;
        m->own_uid = geteuid();
        m->callers = hashmap_new();
        m->jobs = hashmap_new();
        if (!m->callers || !m->jobs)
                return log_oom();

        r = app_new(config->state_dir, &m->app);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the model: %m");
        r = app_load(m->app, &e);
        if (r < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                log_error("Refusing to start: %s", msg ?: "cannot load qubes.xml");
                return r;
        }
        if (!m->app->xml_loaded) {
                /* an unmounted or lost /var/lib/qubes must not become an empty new system */
                if (!config->init) {
                        log_error("Refusing to start: %s does not exist. Is the state directory mounted? "
                                  "To create a new system, start qubesd once with --init.",
                                  m->app->xml_path);
                        return -ENOENT;
                }
                /* in memory only: written once the bus name is ours */
                r = app_init_default(m->app);
                if (r < 0)
                        return log_error_errno(r, "Failed to initialise the model: %m");
        }
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        (void) sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);

        r = workers_new(m->event, &m->workers);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the worker threads: %m");
        r = caller_filter_init(m);
        if (r < 0)
                return r;
        m->view_answered = caller_filter_flush;
        r = constraints_init(m);
        if (r < 0)
                return r;

        r = changes_init(m);
        if (r < 0)
                return r;
        r = manager_commit_init(m);
        if (r < 0)
                return r;
        r = journal_init(m);
        if (r < 0)
                return r;

        r = connect_bus(m);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the bus: %m");

        r = storage_dbus_init(m);
        if (r < 0)
                return r;
        r = devices_dbus_init(m);
        if (r < 0)
                return r;
        r = backup_dbus_init(m);
        if (r < 0)
                return r;
        r = firewall_dbus_init(m);
        if (r < 0)
                return r;
        r = manager_dbus_register(m, m->bus);
        if (r < 0)
                return r;
        r = auth_add_view_filter(m);
        if (r < 0)
                return r;
        r = preload_init(m);
        if (r < 0)
                return r;
        r = lifecycle_init(m);
        if (r < 0)
                return r;

        r = sd_bus_match_signal_async(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch bus peers: %m");

        if (m->config.private_socket) {
                r = private_bus_listen(m, m->config.private_socket);
                if (r < 0)
                        return r;
        }

        /* Loading qubes.xml (libxml2's tree, the parse's buffers) leaves freed memory all over
         * the heap: hand it back before serving. */
        (void) malloc_trim(0);

        /* Objects first, then the name: a client that sees the name finds everything. */
        r = m->config.bus_kind == BUS_FD ? 0 : sd_bus_request_name(m->bus, QUBESD_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire the bus name %s: %m", QUBESD_BUS_NAME);

        /* Only now, the only qubesd of this bus, do we write. */
        if (!m->app->xml_loaded) {
                log_info("No %s yet (--init): creating a new system (labels, pools, dom0).", m->app->xml_path);
                r = mkdir_p(m->app->state_dir, 0750);
                if (r < 0)
                        return log_error_errno(r, "Cannot create the state directory %s: %m", m->app->state_dir);
                r = app_save(m->app, &e);
                if (r < 0) {
                        _cleanup_free_ char *msg = qerror_message(&e);
                        log_error("Cannot write %s: %s", m->app->xml_path, msg ?: strerror(-r));
                        return r;
                }
        }
        storage_pools_setup(m->app);
        storage_cleanup_leftovers(m->app);

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *daemon_free(Manager *m) {
        if (!m)
                return NULL;
        /* long work is asked to stop, then the workers finish what they have (each done() runs,
         * with everything still in place) */
        jobs_cancel_all(m);
        workers_stop(m->workers);
        /* before the lifecycle answers what waits: preloads being started are simply left */
        manager_commit_done(m);
        preload_done(m);
        lifecycle_done(m);
        private_bus_done(m);
        caller_filter_done(m);
        constraints_done(m);
        storage_dbus_done(m);
        devices_dbus_done(m);
        backup_dbus_done(m);
        firewall_dbus_done(m);
        changes_done(m);
        if (m->bus)
                sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        size_t i = 0;
        void *v;
        while (hashmap_iterate(m->callers, &i, NULL, &v))
                caller_free(v);
        hashmap_free(m->callers);
        jobs_free(m);
        m->workers = workers_free(m->workers);
        free(m->listing);
        hashmap_free(m->filter_calls);
        app_free(m->app);
        bus_vtable_cache_done(&m->vtables);
        free(m->connections);
        free(m);
        return NULL;
}

int daemon_run(Manager *m) {
        (void) sd_notify(false, "READY=1\nSTATUS=Serving the Qubes Admin API.");
        log_info("qubesd ready: %zu qubes, state in %s.", hashmap_size(m->app->domains), m->app->state_dir);
        int r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        return r;
}
