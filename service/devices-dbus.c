/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Devices on the bus: the Device objects, the per-qube DomainDevices interface (the Admin API's
 * device methods, typed), dom0's discovery and hotplug, and the device events
 * (spec/devices.md; docs/dbus-api.md "Devices"). */
#include "devices-dbus.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <systemd/sd-device.h>

#include "auth.h"
#include "bus-error.h"
#include "bus-names.h"
#include "commit.h"
#include "devices-vmm.h"
#include "vmm.h"

#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* ---- paths and signals ----------------------------------------------------------------------- */

static void announce_object(Manager *m, const DeviceInfo *i, bool added) {
        _cleanup_free_ char *path = device_bus_path(i->devclass, i->backend, i->port_id);
        if (!path)
                return;
        if (added)
                manager_emit_object_added(m, path);
        else
                manager_emit_object_removed(m, path);
}

static void emit(Manager *m, Domain *d, const char *what, const char *devclass, const char *const *kv, size_t n) {
        _cleanup_free_ char *name = NULL;
        if (!d || asprintf(&name, "%s:%s", what, devclass) < 0)
                return;
        app_emit_eventv(m->app, d, name, kv, n);
}

static void emit_port(Manager *m, Domain *d, const char *what, const char *devclass, const char *backend,
                      const char *port_id) {
        _cleanup_free_ char *port = NULL;
        if (asprintf(&port, "%s:%s", backend, port_id) < 0)
                return;
        const char *kv[] = { "port", port };
        emit(m, d, what, devclass, kv, 2);
}

static void emit_device(Manager *m, Domain *d, const char *what, const char *devclass, const char *backend,
                        const char *port_id, const char *device_id, char *const *options, bool with_options) {
        _cleanup_free_ char *dev = device_ident_str(backend, port_id, device_id);
        _cleanup_free_ char *opts = with_options ? device_options_repr(options) : NULL;
        if (!dev || (with_options && !opts))
                return;
        const char *kv[] = { "device", dev, "options", opts };
        emit(m, d, what, devclass, kv, with_options ? 4 : 2);
}

/* ---- attachments -------------------------------------------------------------------------- */

/* Forget an attachment (the device went away, the qube stopped), announce its device. */
static void attachment_drop(Manager *m, DeviceAttachment *a, bool event) {
        DeviceInfo *i = device_registry_get(devices_registry(m), a->devclass, a->backend, a->port_id);
        if (event) {
                log_qube_info(a->frontend, "The %s device %s:%s attached to %s went away.", a->devclass, a->backend,
                              a->port_id, a->frontend);
                emit_port(m, app_get_domain(m->app, a->frontend), "device-detach", a->devclass, a->backend, a->port_id);
        }
        if (i)
                devices_announce(m, i, "AttachedTo", NULL);
        device_attachment_free(a);
}

static void detach_done_quiet(Manager *m, int error, const char *reason, void *userdata) {
        char *what = userdata;
        if (error < 0)
                log_debug("Detaching %s after it went away: %s", what, strempty(reason));
        free(what);
}

/* ---- discovery and hotplug ------------------------------------------------------------------ */

static int devices_attach_internal(Manager *m, Domain *d, const DeviceInfo *dev, char *const *options,
                                   sd_bus_message *msg, QError *e);

/* A device that just appeared goes to the running qube whose assignment names it most exactly
 * (port and identity, then port, then identity), as upstream's auto-attach. */
static void auto_attach(Manager *m, DeviceInfo *dev) {
        Domain *best = NULL;
        const DeviceAssignment *best_a = NULL;
        int best_score = 0;
        size_t i = 0;
        void *v;

        if (device_registry_attached_to(devices_registry(m), dev))
                return;
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                Domain *d = v;
                if (d->klass == QUBES_CLASS_ADMINVM || !domain_is_running(d))
                        continue;
                for (size_t k = 0; k < d->n_devices; k++) {
                        const DeviceAssignment *a = &d->devices[k];
                        int score;
                        if (!streq(a->mode, "auto-attach") && !streq(a->mode, "required"))
                                continue; /* ask-to-attach needs someone to ask: not here */
                        if (!device_assignment_matches(a, dev->devclass, dev->backend, dev->port_id, dev->device_id))
                                continue;
                        score = (streq(a->port_id, "*") ? 0 : 2) + (streq(a->identity, "*") ? 0 : 1);
                        if (score > best_score) {
                                best = d;
                                best_a = a;
                                best_score = score;
                        }
                }
        }
        if (!best)
                return;
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **opts = strv_copy(best_a->options);
        if (devices_attach_internal(m, best, dev, opts, NULL, &e) < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                log_qube_warning(best->name, "Cannot auto-attach %s:%s to %s: %s", dev->backend, dev->port_id,
                                 best->name, strempty(msg));
        }
}

static void apply_changes(Manager *m, const char *devclass, Domain *backend, DeviceChanges *c) {
        DeviceRegistry *reg = devices_registry(m);

        for (size_t k = 0; k < c->n_removed; k++) {
                DeviceInfo *i = c->removed[k];
                DeviceAttachment *a = device_registry_detach(reg, i->devclass, i->backend, i->port_id);
                if (a) {
                        /* gone from under its qube: reported detached; libvirt forgets it too */
                        char *what = NULL;
                        if (asprintf(&what, "%s:%s from %s", a->backend, a->port_id, a->frontend) >= 0 &&
                            devices_vmm_detach(m, a->frontend, a, detach_done_quiet, what) < 0)
                                free(what);
                        attachment_drop(m, a, true);
                }
                announce_object(m, i, false);
                emit_port(m, backend, "device-removed", devclass, i->backend, i->port_id);
        }
        for (size_t k = 0; k < c->n_changed; k++) {
                DeviceInfo *i = c->changed[k];
                devices_announce(m, i, "DeviceId", "Description", "Vendor", "Product", "Manufacturer", "Name", "Serial",
                                 "Interfaces", "ParentPortId", "ParentDeviceClass", "Data", "Size", "ReadOnly", NULL);
        }
        for (size_t k = 0; k < c->n_added; k++) {
                DeviceInfo *i = c->added[k];
                _cleanup_free_ char *dev = device_ident_str(i->backend, i->port_id, i->device_id);
                announce_object(m, i, true);
                if (dev) {
                        const char *kv[] = { "device", dev };
                        emit(m, backend, "device-added", devclass, kv, 2);
                }
        }
        if (c->n_added || c->n_removed || c->n_changed)
                emit(m, backend, "device-list-change", devclass, NULL, 0);
        for (size_t k = 0; k < c->n_added; k++)
                auto_attach(m, c->added[k]);
}

static void rescan(Manager *m, const char *devclass) {
        _cleanup_(device_changes_done) DeviceChanges c = {};
        DeviceInfo **now = NULL;
        size_t n = 0;
        int r;

        r = devices_discover(devclass, &now, &n);
        if (r < 0) {
                log_warning_errno(r, "Cannot list %s devices: %m", devclass);
                return;
        }
        r = device_registry_replace(devices_registry(m), devclass, "dom0", now, n, &c);
        device_info_array_free(now);
        if (r < 0) {
                log_warning_errno(r, "Cannot update the %s devices: %m", devclass);
                return;
        }
        apply_changes(m, devclass, app_dom0(m->app), &c);
}

static int on_rescan(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        Devices *dv = devices_of(m);
        for (int k = 0; k < _DEVICES_CLASS_MAX; k++)
                if (dv->rescan[k]) {
                        dv->rescan[k] = false;
                        rescan(m, device_classes[k]);
                }
        return 0;
}

static void schedule_rescan(Devices *dv, const char *subsystem) {
        if (streq_ptr(subsystem, "block"))
                dv->rescan[DEVICES_CLASS_BLOCK] = true;
        else if (streq_ptr(subsystem, "pci"))
                dv->rescan[DEVICES_CLASS_PCI] = true;
        else
                return;
        /* one rescan per loop iteration, however many uevents came in it */
        (void) sd_event_source_set_enabled(dv->rescan_source, SD_EVENT_ONESHOT);
}

/* The kernel's own uevents (no udevd): "ACTION@DEVPATH\0KEY=VALUE\0…" on NETLINK_KOBJECT_UEVENT. */
static int on_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Devices *dv = userdata;
        char buf[8192];

        for (;;) {
                struct sockaddr_nl sa = {};
                struct iovec iov = { buf, sizeof buf - 1 };
                char cbuf[CMSG_SPACE(sizeof(struct ucred))];
                struct msghdr mh = {
                        .msg_name = &sa,
                        .msg_namelen = sizeof sa,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf,
                };
                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == ENOBUFS) {
                                /* lost some: look at everything again */
                                dv->rescan[DEVICES_CLASS_BLOCK] = dv->rescan[DEVICES_CLASS_PCI] = true;
                                (void) sd_event_source_set_enabled(dv->rescan_source, SD_EVENT_ONESHOT);
                                continue;
                        }
                        break;
                }
                /* only the kernel (pid 0 in the multicast group) speaks here */
                if (sa.nl_pid != 0 || n == 0)
                        continue;
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
                    ((struct ucred *) CMSG_DATA(cm))->uid != 0)
                        continue;
                buf[n] = 0;
                for (const char *p = buf; p < buf + n; p += strlen(p) + 1) {
                        const char *sub = startswith(p, "SUBSYSTEM=");
                        if (sub)
                                schedule_rescan(dv, sub);
                }
        }
        return 0;
}

static int on_udev(sd_device_monitor *mon, sd_device *d, void *userdata) {
        const char *sub = NULL;
        (void) sd_device_get_subsystem(d, &sub);
        schedule_rescan(userdata, sub);
        return 0;
}

/* A mount or unmount changes what may be offered: /proc/self/mountinfo signals it (POLLPRI). */
static int on_mountinfo(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        schedule_rescan(userdata, "block");
        return 0;
}

static int hotplug_start(Manager *m) {
        Devices *dv = devices_of(m);
        int r;

        r = sd_event_add_defer(m->event, &dv->rescan_source, on_rescan, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(dv->rescan_source, SD_EVENT_OFF);

        if (access("/run/udev/control", F_OK) == 0) {
                r = sd_device_monitor_new(&dv->monitor);
                if (r >= 0)
                        r = sd_device_monitor_filter_add_match_subsystem_devtype(dv->monitor, "block", NULL);
                if (r >= 0)
                        r = sd_device_monitor_filter_add_match_subsystem_devtype(dv->monitor, "pci", NULL);
                if (r >= 0)
                        r = sd_device_monitor_attach_event(dv->monitor, m->event);
                if (r >= 0)
                        r = sd_device_monitor_start(dv->monitor, on_udev, dv);
                if (r >= 0) {
                        log_debug("Devices: following udev's events.");
                        goto mounts;
                }
                log_warning_errno(r, "Cannot follow udev's device events, using the kernel's: %m");
                dv->monitor = sd_device_monitor_unref(dv->monitor);
        }
        {
                int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
                struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 /* the kernel's */ };
                int on = 1;
                if (fd < 0)
                        return log_warning_errno(-errno, "Cannot follow device events: %m"), 0;
                (void) setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
                if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                        r = -errno;
                        close(fd);
                        return log_warning_errno(r, "Cannot follow device events (no hotplug): %m"), 0;
                }
                r = sd_event_add_io(m->event, &dv->uevent_source, fd, EPOLLIN, on_uevent, dv);
                if (r < 0) {
                        close(fd);
                        return r;
                }
                (void) sd_event_source_set_io_fd_own(dv->uevent_source, true);
        }
mounts : {
        int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                r = sd_event_add_io(m->event, &dv->mountinfo_source, fd, EPOLLPRI, on_mountinfo, dv);
                if (r < 0)
                        close(fd);
                else
                        (void) sd_event_source_set_io_fd_own(dv->mountinfo_source, true);
        }
}
        return 0;
}

static void on_model_event(App *app, Domain *d, const char *event, const char *const *kv, size_t n_kv, void *userdata);

int devices_dbus_init(Manager *m) {
        Devices *dv = new0(Devices, 1);
        int r;

        if (!dv)
                return log_oom();
        m->devices = dv;
        dv->pending = hashmap_new();
        dv->in_flight = hashmap_new();
        r = device_registry_new(&dv->reg);
        if (r < 0 || !dv->pending || !dv->in_flight || app_add_listener(m->app, on_model_event, m) < 0)
                return log_oom();
        /* the events first: nothing that happens while the first list is made is lost */
        r = hotplug_start(m);
        if (r < 0)
                return log_error_errno(r, "Cannot set up device hotplug: %m");
        for (size_t k = 0; device_classes[k]; k++) {
                DeviceInfo **now = NULL;
                size_t n = 0;
                _cleanup_(device_changes_done) DeviceChanges c = {};
                r = devices_discover(device_classes[k], &now, &n);
                if (r < 0) {
                        log_warning_errno(r, "Cannot list %s devices: %m", device_classes[k]);
                        continue;
                }
                r = device_registry_replace(dv->reg, device_classes[k], "dom0", now, n, &c);
                device_info_array_free(now);
                if (r < 0)
                        return log_oom();
                log_debug("%zu %s devices on dom0.", c.n_added, device_classes[k]);
        }
        return 0;
}

void devices_dbus_done(Manager *m) {
        Devices *dv = devices_of(m);
        size_t i = 0;
        void *v;

        if (!dv)
                return;
        app_remove_listener(m->app, on_model_event, m);
        sd_device_monitor_unref(dv->monitor);
        sd_event_source_disable_unref(dv->uevent_source);
        sd_event_source_disable_unref(dv->mountinfo_source);
        sd_event_source_disable_unref(dv->rescan_source);
        while (hashmap_iterate(dv->pending, &i, NULL, &v))
                devices_pending_free(v);
        hashmap_free(dv->pending);
        i = 0;
        while (hashmap_iterate(dv->in_flight, &i, NULL, &v))
                free(v);
        hashmap_free(dv->in_flight);
        strv_free(dv->started);
        device_registry_free(dv->reg);
        devices_discover_done();
        free(dv);
        m->devices = NULL;
}

/* ---- a qube starts and stops ---------------------------------------------------------------- */

static void backend_stopped(Manager *m, Domain *d);

/* The model's listener: a qube's start (what its XML had is attached), its stop (nothing is
 * attached), a change of its denied interfaces. */
static void on_model_event(App *app, Domain *d, const char *event, const char *const *kv, size_t n_kv, void *userdata) {
        Manager *m = userdata;
        Devices *dv = devices_of(m);
        DeviceRegistry *reg;

        if (!dv || !d)
                return;
        reg = dv->reg;
        if (streq(event, "property-set:devices_denied") || streq(event, "property-reset:devices_denied")) {
                _cleanup_free_ char *path = domain_bus_path(d);
                if (path)
                        manager_emit_properties_changed(m, path, QUBESD_IFACE_DOMAIN_DEVICES, "DeniedInterfaces");
        } else if (startswith(event, "device-assign:") || startswith(event, "device-unassign:") ||
                   startswith(event, "device-assignment-changed:")) {
                _cleanup_free_ char *path = domain_bus_path(d);
                if (path)
                        manager_emit_properties_changed(m, path, QUBESD_IFACE_DOMAIN_DEVICES, "AssignedDevices");
        } else if (streq(event, "domain-spawn")) {
                /* it runs with what its XML had: those are attached now */
                DevicesPending *p = devices_pending_take(m, d->name);
                if (!p)
                        return;
                for (size_t k = 0; k < p->n; k++) {
                        DeviceAttachment *a = TAKE_PTR(p->att[k]);
                        DeviceInfo *i = device_registry_get(reg, a->devclass, a->backend, a->port_id);
                        if (device_registry_attach(reg, a) < 0) {
                                device_attachment_free(a);
                                continue;
                        }
                        if (i)
                                devices_announce(m, i, "AttachedTo", NULL);
                }
                devices_pending_free(p);
                (void) strv_extend(&dv->started, d->name);
        } else if (streq(event, "domain-start")) {
                /* announced once the qube is up, as upstream's auto-attach does */
                if (!strv_contains(dv->started, d->name))
                        return;
                _cleanup_strv_free_ char **rest = NULL;
                STRV_FOREACH(n, dv->started)
                        if (!streq(*n, d->name))
                                (void) strv_extend(&rest, *n);
                strv_free(dv->started);
                dv->started = TAKE_PTR(rest);
                size_t n = 0;
                _cleanup_free_ DeviceAttachment **l = device_registry_attached(reg, d->name, NULL, &n);
                for (size_t k = 0; l && k < n; k++)
                        emit_device(m, d, "device-attach", l[k]->devclass, l[k]->backend, l[k]->port_id,
                                    l[k]->device_id, l[k]->options, true);
        } else if (streq(event, "domain-start-failed") || streq(event, "domain-pre-delete")) {
                devices_pending_free(devices_pending_take(m, d->name));
        } else if (streq(event, "domain-shutdown")) {
                /* a stopped qube has nothing attached: no events, as upstream (Attached is empty) */
                DeviceAttachment *a;
                size_t n = 0;
                _cleanup_free_ DeviceAttachment **l = device_registry_attached(reg, d->name, NULL, &n);
                for (size_t k = 0; l && k < n; k++)
                        if ((a = device_registry_detach(reg, l[k]->devclass, l[k]->backend, l[k]->port_id)))
                                attachment_drop(m, a, false);
                devices_pending_free(devices_pending_take(m, d->name));
                backend_stopped(m, d);
        }
}

/* ---- checks of what a caller gives ----------------------------------------------------------- */

static int reply_error(Manager *m, sd_bus_message *msg, QError *e) {
        int r = bus_reply_qerror(m, msg, e);
        return r < 0 ? r : 1;
}

static int check_class(const char *devclass, QError *e) {
        if (!device_class_known(devclass))
                return qerror_set(e, QERR_PROTOCOL, "No such device class: %s", devclass);
        return 0;
}

/* A value the Admin API's lines cannot carry back: =' inside, or = at the end (its closing quote
 * makes one); upstream's grammar has no escape for them (tests/fuzz/fuzz-device-payload.c). */
static int check_round_trip(const char *v, QError *e) {
        if (strstr(v, "='") || endswith(v, "="))
                return qerror_set(e, QERR_PROTOCOL, "A device value cannot hold =' or end in =: %s", v);
        return 0;
}

static int check_field(const char *what, const char *v, QError *e) {
        if (isempty(v))
                return qerror_set(e, QERR_PROTOCOL, "The %s must not be empty", what);
        if (strlen(v) > DEVICE_MAX_FIELD)
                return qerror_set(e, QERR_PROTOCOL, "The %s is longer than 1024 characters", what);
        int r = device_check_value(v, e);
        return r < 0 ? r : check_round_trip(v, e);
}

static int check_options(char *const *options, QError *e) {
        size_t n = 0;
        for (char *const *kv = options; kv && kv[0] && kv[1]; kv += 2, n++) {
                int r;
                if (n >= 64)
                        return qerror_set(e, QERR_PROTOCOL, "At most 64 options");
                if (strlen(kv[0]) > DEVICE_MAX_FIELD || strlen(kv[1]) > DEVICE_MAX_FIELD)
                        return qerror_set(e, QERR_PROTOCOL, "An option is longer than 1024 characters");
                /* on the wire an option is _<name> */
                _cleanup_free_ char *k = NULL;
                if (asprintf(&k, "_%s", kv[0]) < 0)
                        return -ENOMEM;
                r = device_check_key(k, e);
                if (r < 0)
                        return r;
                r = device_check_value(kv[1], e);
                if (r < 0)
                        return r;
                r = check_round_trip(kv[1], e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The backend a caller names: an existing qube, or "*" (any) where allowed. */
static int check_backend(Manager *m, sd_bus_message *msg, const char *backend, bool any_ok, QError *e) {
        Domain *b;
        if (any_ok && streq(backend, "*"))
                return 0;
        return auth_resolve_domain(m, msg, backend, &b, e) < 0 ? -EINVAL : 0;
}

/* The frontend an Admin API payload named: "" none, else this very qube. */
static int check_frontend(Manager *m, sd_bus_message *msg, Domain *d, const char *frontend, QError *e) {
        Domain *f;
        if (isempty(frontend))
                return 0;
        if (auth_resolve_domain(m, msg, frontend, &f, e) < 0)
                return -EINVAL;
        if (f != d)
                return qerror_set(e, QERR_VALUE, "The frontend %s is not %s", frontend, d->name);
        return 0;
}

static int read_options(sd_bus_message *msg, char ***ret) {
        _cleanup_strv_free_ char **l = new0(char *, 1);
        const char *k, *v;
        int r;

        if (!l)
                return -ENOMEM;
        r = sd_bus_message_enter_container(msg, 'a', "(ss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(msg, "(ss)", &k, &v)) > 0) {
                /* a later option of the same name wins, in the first one's place */
                bool found = false;
                for (char **kv = l; kv[0] && kv[1]; kv += 2)
                        if (streq(kv[0], k)) {
                                found = true;
                                if (free_and_strdup(&kv[1], v) < 0)
                                        return -ENOMEM;
                        }
                if (!found && (strv_extend(&l, k) < 0 || strv_extend(&l, v) < 0))
                        return -ENOMEM;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static int append_pairs(sd_bus_message *reply, char *const *kv) {
        int r = sd_bus_message_open_container(reply, 'a', "(ss)");
        if (r < 0)
                return r;
        for (; kv && kv[0] && kv[1]; kv += 2) {
                r = sd_bus_message_append(reply, "(ss)", kv[0], kv[1]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* ---- Device objects -------------------------------------------------------------------------- */

static int device_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *c = NULL, *b = NULL, *p = NULL;
        DeviceInfo *i;

        if (!devices_registry(m) || sd_bus_path_decode_many(path, QUBESD_DEVICE_PREFIX "/%/%/%", &c, &b, &p) <= 0)
                return 0;
        i = device_registry_get(devices_registry(m), c, b, p);
        if (!i || !auth_sees(m, sd_bus_get_current_message(bus), app_get_domain(m->app, i->backend)))
                return 0;
        *found = i;
        return 1;
}

static int device_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = new0(char *, 1);
        size_t i = 0;
        void *v;

        if (!l)
                return -ENOMEM;
        if (devices_registry(m))
                while (hashmap_iterate(devices_registry(m)->devices, &i, NULL, &v)) {
                        DeviceInfo *d = v;
                        if (!auth_sees(m, sd_bus_get_current_message(bus), app_get_domain(m->app, d->backend)))
                                continue;
                        char *p = device_bus_path(d->devclass, d->backend, d->port_id);
                        if (!p || strv_consume(&l, p) < 0)
                                return -ENOMEM;
                }
        *nodes = TAKE_PTR(l);
        return 1;
}

#define STRING_PROPERTY(fn, expr)                                                                 \
        static int fn(sd_bus *bus, const char *path, const char *interface, const char *property, \
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {               \
                const DeviceInfo *i = userdata;                                                   \
                return sd_bus_message_append_basic(reply, 's', strempty(expr));                   \
        }
STRING_PROPERTY(get_class, i->devclass)
STRING_PROPERTY(get_backend_name, i->backend)
STRING_PROPERTY(get_port, i->port_id)
STRING_PROPERTY(get_device_id, i->device_id ?: DEVICE_ID_UNKNOWN)
STRING_PROPERTY(get_vendor, i->vendor)
STRING_PROPERTY(get_product, i->product)
STRING_PROPERTY(get_manufacturer, i->manufacturer)
STRING_PROPERTY(get_name, i->name)
STRING_PROPERTY(get_serial, i->serial)
STRING_PROPERTY(get_interfaces, i->interfaces)
STRING_PROPERTY(get_parent_port, i->parent_port_id)
STRING_PROPERTY(get_parent_class, i->parent_port_id ? (i->parent_devclass ?: i->devclass) : NULL)
STRING_PROPERTY(get_node, i->devnode ?: i->sbdf)

static int get_description(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *s = device_info_description(userdata);
        if (!s)
                return -ENOMEM;
        return sd_bus_message_append_basic(reply, 's', s);
}

static int get_backend(sd_bus *bus, const char *path, const char *interface, const char *property,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const DeviceInfo *i = userdata;
        Manager *m = bus_manager(bus);
        Domain *d = m ? app_get_domain(m->app, i->backend) : NULL;
        _cleanup_free_ char *p = d ? domain_bus_path(d) : NULL;
        return sd_bus_message_append_basic(reply, 'o', p ?: "/");
}

static int get_attached_to(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const DeviceInfo *i = userdata;
        Manager *m = bus_manager(bus);
        const char *f = m ? device_registry_attached_to(devices_registry(m), i) : NULL;
        Domain *d = f ? app_get_domain(m->app, f) : NULL;
        _cleanup_free_ char *p = d ? domain_bus_path(d) : NULL;
        return sd_bus_message_append_basic(reply, 'o', p ?: "/");
}

static int get_data(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                    void *userdata, sd_bus_error *error) {
        const DeviceInfo *i = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "{ss}");
        if (r < 0)
                return r;
        for (char **kv = i->data; kv && kv[0] && kv[1]; kv += 2) {
                r = sd_bus_message_append(reply, "{ss}", kv[0], kv[1]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int get_size(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                    void *userdata, sd_bus_error *error) {
        const DeviceInfo *i = userdata;
        return sd_bus_message_append_basic(reply, 't', &i->size);
}

static int get_read_only(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const DeviceInfo *i = userdata;
        int b = i->read_only;
        return sd_bus_message_append_basic(reply, 'b', &b);
}

static const sd_bus_vtable device_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("DeviceClass", "s", get_class, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Backend", "o", get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BackendName", "s", get_backend_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PortId", "s", get_port, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DeviceId", "s", get_device_id, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Description", "s", get_description, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Vendor", "s", get_vendor, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Product", "s", get_product, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Manufacturer", "s", get_manufacturer, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Name", "s", get_name, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Serial", "s", get_serial, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Interfaces", "s", get_interfaces, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ParentPortId", "s", get_parent_port, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ParentDeviceClass", "s", get_parent_class, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Data", "a{ss}", get_data, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Node", "s", get_node, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Size", "t", get_size, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ReadOnly", "b", get_read_only, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("AttachedTo", "o", get_attached_to, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

/* ---- DomainDevices: listings ------------------------------------------------------------------ */

/* The gate and the class of a call; 1 to go on, else the call is answered (or held until polkit
 * answers). */
static int begin(Manager *m, sd_bus_message *msg, Domain *d, AuthAction action, const char **ret_class) {
        _cleanup_qerror_ QError e = {};
        const char *devclass;
        int r = auth_check(m, msg, action, d, &e);
        if (r < 0)
                return reply_error(m, msg, &e) < 0 ? -EIO : 0; /* refused */
        if (r == 0)
                return 0; /* held */
        r = sd_bus_message_read(msg, "s", &devclass);
        if (r < 0)
                return r;
        if (check_class(devclass, &e) < 0)
                return reply_error(m, msg, &e) < 0 ? -EIO : 0;
        /* upstream's device manager makes the class's collection on first use (qubes.xml) */
        domain_devices_touch(d, devclass);
        *ret_class = devclass;
        return 1;
}

static int method_list_available(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *devclass;
        int r = begin(m, msg, d, AUTH_READ, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        _cleanup_free_ DeviceInfo **l = device_registry_list(devices_registry(m), devclass, d->name);
        if (!l)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssa(ss))");
        if (r < 0)
                return r;
        for (size_t k = 0; l[k]; k++) {
                _cleanup_strv_free_ char **items = NULL;
                r = device_info_items(l[k], device_registry_attached_to(devices_registry(m), l[k]), &items);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'r', "ssa(ss)");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ss", l[k]->port_id, l[k]->device_id ?: DEVICE_ID_UNKNOWN);
                if (r >= 0)
                        r = append_pairs(reply, items);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int append_assignment(sd_bus_message *reply, const char *backend, const char *port_id, const char *device_id,
                             const char *mode, const char *frontend, char *const *options) {
        int r = sd_bus_message_open_container(reply, 'r', "sssssa(ss)");
        if (r >= 0)
                r = sd_bus_message_append(reply, "sssss", backend, port_id, device_id, mode, frontend);
        if (r >= 0)
                r = append_pairs(reply, options);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int method_list_assigned(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *devclass;
        int r = begin(m, msg, d, AUTH_READ, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssssa(ss))");
        for (size_t k = 0; r >= 0 && k < d->n_devices; k++) {
                const DeviceAssignment *a = &d->devices[k];
                if (!streq_ptr(a->devclass, devclass))
                        continue;
                r = append_assignment(reply, a->backend ?: "*", a->port_id, a->identity, a->mode,
                                      a->no_frontend ? "" : d->name, a->options);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_attached(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *devclass;
        size_t n = 0;
        int r = begin(m, msg, d, AUTH_READ, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        _cleanup_free_ DeviceAttachment **l = device_registry_attached(devices_registry(m), d->name, devclass, &n);
        if (!l)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssssa(ss))");
        for (size_t k = 0; r >= 0 && k < n; k++) {
                const DeviceAttachment *a = l[k];
                /* the stored assignment of this very device, or a manual one with what is in use */
                const DeviceAssignment *s = domain_device_assignment(d, devclass, a->backend, a->port_id, a->device_id);
                if (s)
                        r = append_assignment(reply, a->backend, a->port_id, a->device_id, s->mode, d->name,
                                              s->options);
                else
                        r = append_assignment(reply, a->backend, a->port_id, a->device_id, "manual", d->name,
                                              a->options);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- DomainDevices: assignments -------------------------------------------------------------- */

static int method_assign(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **options = NULL;
        const char *devclass, *backend, *port_id, *device_id, *mode, *frontend;
        int r = begin(m, msg, d, AUTH_DEVICES, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(msg, "ssss", &backend, &port_id, &device_id, &mode);
        if (r >= 0)
                r = read_options(msg, &options);
        if (r >= 0)
                r = sd_bus_message_read(msg, "s", &frontend);
        if (r < 0)
                return r;
        if (check_backend(m, msg, backend, true, &e) < 0 || check_field("port", port_id, &e) < 0 ||
            check_field("device identity", device_id, &e) < 0 || check_options(options, &e) < 0 ||
            check_frontend(m, msg, d, frontend, &e) < 0)
                return reply_error(m, msg, &e);
        if (!device_mode_valid(mode)) {
                qerror_set(&e, QERR_UNRECOGNIZED_ASSIGNMENT_MODE, "Invalid assignment mode");
                return reply_error(m, msg, &e);
        }
        /* upstream's block class keeps read-only as yes or no */
        for (char **kv = options; streq(devclass, "block") && kv && kv[0] && kv[1]; kv += 2)
                if (streq(kv[0], "read-only") && parse_bool_word(kv[1]) >= 0 &&
                    free_and_strdup(&kv[1], parse_bool_word(kv[1]) ? "yes" : "no") < 0)
                        return -ENOMEM;
        manager_begin(m);
        r = domain_device_assign(d, devclass, backend, port_id, device_id, mode, options, !isempty(frontend), &e);
        if (r >= 0) {
                /* a failed save has returned the model to qubes.xml (the transaction) */
                r = manager_save(m, &e);
                if (r >= 0)
                        domain_device_assign_commit(d);
        }
        if (r < 0)
                return qerror_is_set(&e) ? reply_error(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_unassign(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *devclass, *backend, *port_id, *device_id;
        DeviceAssignment taken = {};
        size_t index = 0;
        int r = begin(m, msg, d, AUTH_DEVICES, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(msg, "sss", &backend, &port_id, &device_id);
        if (r < 0)
                return r;
        if (check_backend(m, msg, backend, true, &e) < 0)
                return reply_error(m, msg, &e);
        manager_begin(m);
        r = domain_device_unassign(d, devclass, backend, port_id, device_id, &taken, &index, &e);
        if (r >= 0) {
                r = manager_save(m, &e);
                if (r < 0) /* the model is back as qubes.xml has it (the transaction) */
                        device_assignment_done(&taken);
                else
                        domain_device_unassign_commit(d, &taken);
        }
        if (r < 0)
                return qerror_is_set(&e) ? reply_error(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_set_mode(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *old = NULL;
        const char *devclass, *backend, *port_id, *device_id, *mode;
        int r = begin(m, msg, d, AUTH_DEVICES, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(msg, "ssss", &backend, &port_id, &device_id, &mode);
        if (r < 0)
                return r;
        if (!device_mode_assignable(mode)) {
                qerror_set(&e, QERR_UNRECOGNIZED_ASSIGNMENT_MODE, "Invalid assignment mode");
                return reply_error(m, msg, &e);
        }
        if (check_backend(m, msg, backend, true, &e) < 0)
                return reply_error(m, msg, &e);
        manager_begin(m);
        r = domain_device_set_mode(d, devclass, backend, port_id, device_id, mode, &old, &e);
        /* upstream saves even when nothing changed; a failed save has returned the model to
         * qubes.xml (the transaction) */
        if (r >= 0) {
                r = manager_save(m, &e);
                if (r < 0)
                        old = mfree(old);
                else if (old)
                        domain_device_set_mode_commit(d, devclass, backend, port_id, device_id);
        }
        if (r < 0)
                return qerror_is_set(&e) ? reply_error(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

/* ---- DomainDevices: attach and detach --------------------------------------------------------- */

typedef struct AttachCall {
        Manager *m;
        sd_bus_message *msg; /* NULL: an auto-attach */
        char *frontend;
        char *key; /* the device's registry key (in_flight) */
        DeviceAttachment *att;
        bool detach;
} AttachCall;

static void attach_call_free(AttachCall *c) {
        Devices *dv = devices_of(c->m);
        if (c->key && dv) {
                char *k = hashmap_remove(dv->in_flight, c->key);
                free(k);
        }
        sd_bus_message_unref(c->msg);
        free(c->frontend);
        free(c->key);
        device_attachment_free(c->att);
        free(c);
}

static void finish(AttachCall *c, const QError *e) {
        int r = 0;
        if (c->msg)
                r = e ? bus_reply_qerror(c->m, c->msg, e) : sd_bus_reply_method_return(c->msg, NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot reply to a device call: %m");
        attach_call_free(c);
}

static void on_attached(Manager *m, int error, const char *reason, void *userdata) {
        AttachCall *c = userdata;
        DeviceAttachment *a = c->att;
        Domain *d = app_get_domain(m->app, c->frontend);
        DeviceInfo *i = device_registry_get(devices_registry(m), a->devclass, a->backend, a->port_id);
        _cleanup_qerror_ QError e = {};

        if (error >= 0 && (!d || !domain_is_running(d))) {
                /* stopped in the meantime: nothing is attached to it */
                qerror_set(&e, QERR_VM_NOT_RUNNING, "VM not running, cannot attach device, do you mean `assign`?");
                return finish(c, &e);
        }
        if (error < 0) {
                _cleanup_free_ char *dev = device_ident_str(a->backend, a->port_id, a->device_id);
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Failed to attach %s device %s to %s: %s", a->devclass,
                           dev ?: a->port_id, c->frontend, strempty(reason));
                log_qube_warning(c->frontend, "Cannot attach %s:%s to %s: %s", a->backend, a->port_id, c->frontend,
                                 strempty(reason));
                return finish(c, &e);
        }
        if (!i) {
                /* it went away while libvirt attached it: what libvirt holds goes too */
                char *what = NULL;
                if (asprintf(&what, "%s:%s from %s", a->backend, a->port_id, a->frontend) >= 0 &&
                    devices_vmm_detach(m, a->frontend, a, detach_done_quiet, what) < 0)
                        free(what);
                _cleanup_free_ char *dev = device_ident_str(a->backend, a->port_id, a->device_id);
                qerror_set(&e, QERR_QUBES_EXCEPTION, "%s device %s went away while it was attached", a->devclass,
                           dev ?: a->port_id);
                return finish(c, &e);
        }
        if (device_registry_attach(devices_registry(m), a) < 0) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Out of memory");
                return finish(c, &e);
        }
        c->att = NULL;
        log_qube_info(d->name, "Attached the %s device %s:%s to %s.", a->devclass, a->backend, a->port_id, d->name);
        devices_announce(m, i, "AttachedTo", NULL);
        emit_device(m, d, "device-attach", a->devclass, a->backend, a->port_id, a->device_id, a->options, true);
        finish(c, NULL);
}

static int in_flight_add(Manager *m, const char *key, QError *e) {
        Devices *dv = devices_of(m);
        char *k;
        if (hashmap_contains(dv->in_flight, key))
                return qerror_set(e, QERR_QUBES_EXCEPTION, "The device is being attached or detached right now");
        k = strdup(key);
        if (!k || hashmap_put(dv->in_flight, k, k) < 0) {
                free(k);
                return -ENOMEM;
        }
        return 0;
}

static int devices_attach_internal(Manager *m, Domain *d, const DeviceInfo *dev, char *const *options,
                                   sd_bus_message *msg, QError *e) {
        _cleanup_strv_free_ char **opts = NULL;
        const char *elsewhere = device_registry_attached_to(devices_registry(m), dev);
        _cleanup_free_ char *str = device_ident_str(dev->backend, dev->port_id, dev->device_id);
        AttachCall *c;
        int r;

        if (!str)
                return -ENOMEM;
        if (elsewhere) {
                _cleanup_qerror_ QError plain = {};
                _cleanup_free_ char *text = NULL, *quoted = NULL;
                qerror_set(&plain, QERR_DEVICE_ALREADY_ATTACHED, "%s device %s already attached to %s", dev->devclass,
                           str, elsewhere);
                text = qerror_message(&plain);
                quoted = text ? py_str_repr(text) : NULL;
                if (!quoted)
                        return -ENOMEM;
                return qerror_set(e, QERR_DEVICE_ALREADY_ATTACHED, "%s", quoted);
        }
        if (streq(dev->devclass, "block")) {
                Domain *b = app_get_domain(m->app, dev->backend);
                r = devices_block_options(m, d, dev, options, &opts, e);
                if (r < 0)
                        return r;
                if (!b || !domain_is_running(b))
                        return qerror_set(e, QERR_VM_NOT_RUNNING,
                                          "Domain %s needs to be running to attach device from it", dev->backend);
                /* another qube's disk reaches a frontend through Xen's block backend only */
                if (b->klass != QUBES_CLASS_ADMINVM && !streq_ptr(vmm_of(m)->driver, "xen"))
                        return qerror_set(e, QERR_QUBES_EXCEPTION,
                                          "Devices exposed by %s cannot be attached on this hypervisor (%s): only "
                                          "Xen connects one qube's disk to another",
                                          dev->backend, strempty(vmm_of(m)->driver));
        } else {
                _cleanup_free_ char *vm = domain_property_string(d, "virt_mode");
                r = devices_pci_options(options, &opts, e);
                if (r < 0)
                        return r;
                if (streq_ptr(vm, "pvh"))
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Can't attach PCI device to VM in pvh mode");
                if (!dev->sbdf)
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "PCI device %s is not on this host", str);
        }
        r = in_flight_add(m, dev->key, e);
        if (r < 0)
                return r;

        c = new0(AttachCall, 1);
        if (!c) {
                free(hashmap_remove(devices_of(m)->in_flight, dev->key));
                return -ENOMEM;
        }
        c->m = m;
        c->msg = sd_bus_message_ref(msg);
        c->frontend = strdup(d->name);
        c->key = strdup(dev->key);
        c->att = devices_attachment_new(d->name, dev, opts);
        if (!c->frontend || !c->key || !c->att) {
                attach_call_free(c);
                return -ENOMEM;
        }
        /* upstream: device-pre-attach with the options as given, device-attach with what the
         * class made of them */
        emit_device(m, d, "device-pre-attach", dev->devclass, dev->backend, dev->port_id, dev->device_id, options,
                    true);
        r = devices_vmm_attach(m, d, dev, opts, on_attached, c);
        if (r < 0) {
                attach_call_free(c);
                return r;
        }
        return 1;
}

/* The device an Attach names (spec §4): its port, or the one port that shows the identity. */
static DeviceInfo *attach_target(Manager *m, const char *devclass, const char *backend, const char *port_id,
                                 const char *device_id, QError *e) {
        DeviceRegistry *reg = devices_registry(m);
        DeviceInfo *found = NULL;
        size_t n = 0;

        if (!streq(port_id, "*") && !streq(backend, "*")) {
                DeviceInfo *i = device_registry_get(reg, devclass, backend, port_id);
                if (!i) {
                        qerror_set(e, QERR_PROTOCOL, "%s device not recognized in %s port.", devclass, port_id);
                        return NULL;
                }
                if (streq(device_id, "*") || streq_ptr(i->device_id, device_id))
                        return i;
        }
        if (!streq(device_id, "*") && !streq(device_id, DEVICE_ID_UNKNOWN)) {
                _cleanup_free_ DeviceInfo **l =
                        device_registry_list(reg, devclass, streq(backend, "*") ? NULL : backend);
                for (size_t k = 0; l && l[k]; k++)
                        if (streq_ptr(l[k]->device_id, device_id)) {
                                found = l[k];
                                n++;
                        }
        }
        if (n != 1) {
                qerror_set(e, QERR_PROTOCOL, "Cannot attach ambiguous %s device.", devclass);
                return NULL;
        }
        return found;
}

static int method_attach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **options = NULL;
        const char *devclass, *backend, *port_id, *device_id, *frontend;
        DeviceInfo *dev;
        int r = begin(m, msg, d, AUTH_DEVICES, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(msg, "sss", &backend, &port_id, &device_id);
        if (r >= 0)
                r = read_options(msg, &options);
        if (r >= 0)
                r = sd_bus_message_read(msg, "s", &frontend);
        if (r < 0)
                return r;
        if (check_backend(m, msg, backend, true, &e) < 0 || check_field("port", port_id, &e) < 0 ||
            check_field("device identity", device_id, &e) < 0 || check_options(options, &e) < 0 ||
            check_frontend(m, msg, d, frontend, &e) < 0)
                return reply_error(m, msg, &e);
        if (!domain_is_running(d)) {
                qerror_set(&e, QERR_VM_NOT_RUNNING, "VM not running, cannot attach device, do you mean `assign`?");
                return reply_error(m, msg, &e);
        }
        if (d->klass == QUBES_CLASS_ADMINVM) {
                qerror_set(&e, QERR_VALUE, "Devices cannot be attached to dom0");
                return reply_error(m, msg, &e);
        }
        dev = attach_target(m, devclass, backend, port_id, device_id, &e);
        if (!dev)
                return reply_error(m, msg, &e);
        if (device_registry_attachment(devices_registry(m), devclass, dev->backend, dev->port_id)) {
                const char *to = device_registry_attached_to(devices_registry(m), dev);
                if (streq_ptr(to, d->name)) {
                        _cleanup_qerror_ QError plain = {};
                        _cleanup_free_ char *str = device_ident_str(dev->backend, dev->port_id, dev->device_id);
                        _cleanup_free_ char *text = NULL, *quoted = NULL;
                        qerror_set(&plain, QERR_DEVICE_ALREADY_ATTACHED, "%s device %s already attached to %s",
                                   devclass, str, d->name);
                        text = qerror_message(&plain);
                        quoted = text ? py_str_repr(text) : NULL;
                        if (!quoted)
                                return -ENOMEM;
                        qerror_set(&e, QERR_DEVICE_ALREADY_ATTACHED, "%s", quoted);
                        return reply_error(m, msg, &e);
                }
        }
        r = devices_attach_internal(m, d, dev, options, msg, &e);
        if (r < 0)
                return qerror_is_set(&e) ? reply_error(m, msg, &e) : r;
        return 1; /* answered when libvirt is done */
}

static void on_detached(Manager *m, int error, const char *reason, void *userdata) {
        AttachCall *c = userdata;
        DeviceAttachment *a = c->att;
        _cleanup_qerror_ QError e = {};

        if (error < 0) {
                /* still attached: put it back */
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Failed to detach %s device %s:%s from %s: %s", a->devclass,
                           a->backend, a->port_id, c->frontend, strempty(reason));
                if (device_registry_attach(devices_registry(m), a) >= 0)
                        c->att = NULL;
                return finish(c, &e);
        }
        Domain *d = app_get_domain(m->app, c->frontend);
        log_qube_info(c->frontend, "Detached the %s device %s:%s from %s.", a->devclass, a->backend, a->port_id,
                      c->frontend);
        emit_port(m, d, "device-detach", a->devclass, a->backend, a->port_id);
        attachment_drop(m, TAKE_PTR(c->att), false);
        finish(c, NULL);
}

static int method_detach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        const char *devclass, *backend, *port_id;
        DeviceAttachment *a;
        int r = begin(m, msg, d, AUTH_DEVICES, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(msg, "ss", &backend, &port_id);
        if (r < 0)
                return r;
        a = device_registry_attachment(devices_registry(m), devclass, backend, port_id);
        if (!a || !streq(a->frontend, d->name)) {
                _cleanup_qerror_ QError plain = {};
                _cleanup_free_ char *text = NULL, *quoted = NULL;
                qerror_set(&plain, QERR_DEVICE_NOT_ASSIGNED, "%s device %s not attached to %s", devclass, port_id,
                           d->name);
                text = qerror_message(&plain);
                quoted = text ? py_str_repr(text) : NULL;
                if (!quoted)
                        return -ENOMEM;
                qerror_set(&e, QERR_DEVICE_NOT_ASSIGNED, "%s", quoted);
                return reply_error(m, msg, &e);
        }
        for (size_t k = 0; k < d->n_devices; k++)
                if (streq(d->devices[k].mode, "required") &&
                    device_assignment_matches(&d->devices[k], devclass, a->backend, a->port_id, a->device_id) &&
                    domain_is_running(d)) {
                        qerror_set(&e, QERR_VM_NOT_HALTED,
                                   "Can not detach a required device from a non halted qube. You need to unassign "
                                   "device first.");
                        return reply_error(m, msg, &e);
                }
        _cleanup_free_ char *key = NULL;
        if (asprintf(&key, "%s\n%s\n%s", devclass, backend, port_id) < 0)
                return -ENOMEM;
        r = in_flight_add(m, key, &e);
        if (r < 0)
                return qerror_is_set(&e) ? reply_error(m, msg, &e) : r;

        AttachCall *c = new0(AttachCall, 1);
        if (!c) {
                free(hashmap_remove(devices_of(m)->in_flight, key));
                return -ENOMEM;
        }
        c->m = m;
        c->msg = sd_bus_message_ref(msg);
        c->frontend = strdup(d->name);
        c->key = TAKE_PTR(key);
        c->detach = true;
        if (!c->frontend) {
                attach_call_free(c);
                return -ENOMEM;
        }
        emit_port(m, d, "device-pre-detach", devclass, backend, port_id);
        c->att = device_registry_detach(devices_registry(m), devclass, backend, port_id);
        r = devices_vmm_detach(m, d->name, c->att, on_detached, c);
        if (r < 0) {
                if (c->att && device_registry_attach(devices_registry(m), c->att) >= 0)
                        c->att = NULL;
                attach_call_free(c);
                return r;
        }
        return 1;
}

/* ---- DomainDevices: what a backend qube exposes ------------------------------------------------ */

/* The most devices one backend qube may publish per class. */
#define MAX_PUBLISHED 256

static bool block_name_ok(const char *n) {
        size_t len = strlen(n);
        if (len < 1 || len > 12)
                return false;
        for (const char *c = n; *c; c++)
                if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9') && *c != '-')
                        return false;
        return true;
}

/* Upstream keeps block descriptions to letters, digits and ()+,-.:=_/ and space. */
static char *safe_desc(const char *s) {
        char *out = strndup(s, 255);
        if (!out)
                return NULL;
        for (char *c = out; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      strchr("()+,-.:=_/ ", *c)))
                        *c = '_';
        return out;
}

static const char *trailing_number(const char *name) {
        const char *p = name + strlen(name);
        while (p > name && p[-1] >= '0' && p[-1] <= '9')
                p--;
        return *p ? p : "None";
}

/* A backend qube's block devices, what its agent writes to QubesDB on Xen
 * (/qubes-block-devices/<port>/{desc,size,mode,parent}) as one typed record each: the agent (or
 * whatever relays for it) replaces the whole list. docs/daemon.md, "Devices of other qubes". */
static int method_publish(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        _cleanup_(device_changes_done) DeviceChanges c = {};
        DeviceInfo **now = NULL;
        size_t n = 0;
        const char *devclass, *port;
        int r = begin(m, msg, d, AUTH_DEVICES, &devclass);
        if (r <= 0)
                return r < 0 ? r : 1;

        const char *caller = auth_caller_qube(m, msg);
        if (!streq(caller, "dom0") && !streq(caller, d->name)) {
                qerror_set(&e, QERR_PERMISSION_DENIED, "Only %s itself may publish its devices", d->name);
                return reply_error(m, msg, &e);
        }
        if (!streq(devclass, "block") || d->klass == QUBES_CLASS_ADMINVM) {
                qerror_set(&e, QERR_VALUE,
                           d->klass == QUBES_CLASS_ADMINVM ? "dom0's devices are found by qubesd itself"
                                                           : "Only block devices are published by their backend qube");
                return reply_error(m, msg, &e);
        }
        if (!domain_is_running(d)) {
                qerror_set(&e, QERR_VM_NOT_RUNNING, "%s is not running: it exposes no devices", d->name);
                return reply_error(m, msg, &e);
        }
        now = new0(DeviceInfo *, MAX_PUBLISHED + 1);
        if (!now)
                return -ENOMEM;
        r = sd_bus_message_enter_container(msg, 'a', "(sstbs)");
        while (r >= 0) {
                const char *desc, *parent;
                uint64_t size;
                int read_only;
                r = sd_bus_message_read(msg, "(sstbs)", &port, &desc, &size, &read_only, &parent);
                if (r <= 0)
                        break;
                if (n >= MAX_PUBLISHED) {
                        qerror_set(&e, QERR_QUBES_EXCEPTION, "A qube may publish at most 256 devices");
                        r = -E2BIG;
                        break;
                }
                if (!block_name_ok(port)) {
                        /* upstream skips such names, with a log line */
                        log_qube_warning(d->name, "%s published a device name that is not allowed (%s): skipped",
                                         d->name, port);
                        continue;
                }
                DeviceInfo *i = device_info_new("block", d->name, port);
                if (!i) {
                        r = -ENOMEM;
                        break;
                }
                now[n++] = i;
                free(i->interfaces);
                i->interfaces = strdup("b******");
                i->name = isempty(desc) ? NULL : safe_desc(desc);
                i->size = size;
                i->read_only = read_only;
                if (block_name_ok(parent)) {
                        i->parent_port_id = strdup(parent);
                        i->parent_devclass = strdup("block");
                }
                _cleanup_free_ char *parent_id = NULL;
                if (i->parent_port_id && asprintf(&parent_id, ":%s", trailing_number(parent)) < 0)
                        parent_id = NULL;
                if (asprintf(&i->device_id, "%s:%s", strempty(parent_id), trailing_number(port)) < 0)
                        i->device_id = NULL;
                if (!i->interfaces || !i->device_id || (!isempty(desc) && !i->name)) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(msg);
        if (r < 0) {
                device_info_array_free(now);
                return qerror_is_set(&e) ? reply_error(m, msg, &e) : r;
        }
        r = device_registry_replace(devices_registry(m), "block", d->name, now, n, &c);
        device_info_array_free(now);
        if (r < 0)
                return r;
        apply_changes(m, "block", d, &c);
        return sd_bus_reply_method_return(msg, NULL);
}

/* A backend qube stopped: what it exposed is gone. */
static void backend_stopped(Manager *m, Domain *d) {
        _cleanup_(device_changes_done) DeviceChanges c = {};
        if (d->klass == QUBES_CLASS_ADMINVM)
                return;
        if (device_registry_replace(devices_registry(m), "block", d->name, NULL, 0, &c) >= 0)
                apply_changes(m, "block", d, &c);
}

/* ---- DomainDevices: denied interfaces --------------------------------------------------------- */

static int denied_change(sd_bus_message *msg, Domain *d, bool add) {
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError e = {};
        _cleanup_strv_free_ char **codes = NULL;
        const char *payload;
        int r = auth_check(m, msg, AUTH_DEVICES, d, &e);
        if (r <= 0)
                return r < 0 ? reply_error(m, msg, &e) : 1; /* refused, or held until polkit answers */

        r = sd_bus_message_read(msg, "s", &payload);
        if (r < 0)
                return r;
        for (const char *p = payload; *p; p++)
                if ((unsigned char) *p >= 0x80) {
                        qerror_set(&e, QERR_PROTOCOL, "Device interface contains non-ASCII characters");
                        return reply_error(m, msg, &e);
                }
        bool all = !add && streq(payload, "all");
        if (!all && device_interfaces_split_payload(payload, &codes, &e) < 0)
                return qerror_is_set(&e) ? reply_error(m, msg, &e) : -ENOMEM;
        manager_begin(m);
        r = add ? domain_devices_deny(d, codes, &e) : domain_devices_allow(d, codes, all, &e);
        if (r > 0)
                r = manager_save(m, &e);
        if (r < 0)
                return qerror_is_set(&e) ? reply_error(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_deny(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return denied_change(msg, userdata, true);
}

static int method_allow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return denied_change(msg, userdata, false);
}

static int get_denied(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                      void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        _cleanup_free_ char *v = domain_property_string(d, "devices_denied");
        int r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; v && i + 7 <= strlen(v); i += 7) {
                char code[8];
                memcpy(code, v + i, 7);
                code[7] = 0;
                r = sd_bus_message_append_basic(reply, 's', code);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int get_assigned(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(ssssssa(ss))");
        for (size_t k = 0; r >= 0 && k < d->n_devices; k++) {
                const DeviceAssignment *a = &d->devices[k];
                r = sd_bus_message_open_container(reply, 'r', "ssssssa(ss)");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ssssss", a->devclass, a->backend ?: "*", a->port_id,
                                                  a->identity, a->mode, a->no_frontend ? "" : d->name);
                if (r >= 0)
                        r = append_pairs(reply, a->options);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static const sd_bus_vtable domain_devices_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("DeniedInterfaces", "as", get_denied, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY("AssignedDevices", "a(ssssssa(ss))", get_assigned, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_METHOD_WITH_ARGS("ListAvailableDevices", SD_BUS_ARGS("s", devclass),
                                SD_BUS_RESULT("a(ssa(ss))", devices), method_list_available, 0),
        SD_BUS_METHOD_WITH_ARGS("ListAssignedDevices", SD_BUS_ARGS("s", devclass),
                                SD_BUS_RESULT("a(sssssa(ss))", assignments), method_list_assigned, 0),
        SD_BUS_METHOD_WITH_ARGS("ListAttachedDevices", SD_BUS_ARGS("s", devclass),
                                SD_BUS_RESULT("a(sssssa(ss))", attachments), method_list_attached, 0),
        SD_BUS_METHOD_WITH_ARGS("AssignDevice",
                                SD_BUS_ARGS("s", devclass, "s", backend, "s", port_id, "s", device_id, "s", mode,
                                            "a(ss)", options, "s", frontend),
                                SD_BUS_NO_RESULT, method_assign, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UnassignDevice",
                                SD_BUS_ARGS("s", devclass, "s", backend, "s", port_id, "s", device_id),
                                SD_BUS_NO_RESULT, method_unassign, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetDeviceAssignmentMode",
                                SD_BUS_ARGS("s", devclass, "s", backend, "s", port_id, "s", device_id, "s", mode),
                                SD_BUS_NO_RESULT, method_set_mode, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "AttachDevice",
                SD_BUS_ARGS("s", devclass, "s", backend, "s", port_id, "s", device_id, "a(ss)", options, "s", frontend),
                SD_BUS_NO_RESULT, method_attach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DetachDevice", SD_BUS_ARGS("s", devclass, "s", backend, "s", port_id),
                                SD_BUS_NO_RESULT, method_detach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PublishDevices", SD_BUS_ARGS("s", devclass, "a(sstbs)", devices), SD_BUS_NO_RESULT,
                                method_publish, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AddDeniedInterfaces", SD_BUS_ARGS("s", interfaces), SD_BUS_NO_RESULT, method_deny,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveDeniedInterfaces", SD_BUS_ARGS("s", interfaces), SD_BUS_NO_RESULT, method_allow,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int domain_devices_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                               sd_bus_error *error) {
        Manager *m = userdata;
        Domain *d = domain_of_bus_path(m->app, path);
        if (!d)
                return 0;
        *found = d;
        return 1;
}

/* ---- the object types ----------------------------------------------------------------------- */

static const BusObjectImplementation device_object = {
        .path = QUBESD_DEVICE_PREFIX,
        .interface = QUBESD_IFACE_DEVICE,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = device_vtable, .find = device_find }),
        .node_enumerator = device_enumerate,
};

static const BusObjectImplementation domain_devices_object = {
        .path = QUBESD_DOMAIN_PREFIX,
        .interface = QUBESD_IFACE_DOMAIN_DEVICES,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = domain_devices_vtable, .find = domain_devices_find }),
};

/* Nothing at the root of its own: the Device objects and the qubes' DomainDevices interface. */
const BusObjectImplementation devices_object = {
        .path = QUBESD_ROOT_PATH,
        .interface = QUBESD_IFACE_MANAGER,
        .children = BUS_IMPLEMENTATIONS(&device_object, &domain_devices_object),
};
