/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device assignments of a qube (qubes.xml <devices>) and its denied interfaces, with upstream's
 * checks, messages and events (spec/devices.md §4, §5, §9). */
#include "devices/devices.h"

#include "util/strbuf.h"
#include "util/strv.h"

static const char *backend_name(const DeviceAssignment *a) {
        return a->backend ?: "*";
}

bool device_assignment_matches(const DeviceAssignment *a, const char *devclass, const char *backend,
                               const char *port_id, const char *device_id) {
        if (!streq_ptr(a->devclass, devclass))
                return false;
        if (a->backend && !streq(a->backend, backend))
                return false;
        if (!streq(a->port_id, "*") && !streq(a->port_id, port_id))
                return false;
        if (!streq(a->identity, "*") && !streq(a->identity, device_id))
                return false;
        return true;
}

static ssize_t find_equal(Domain *d, const char *devclass, const char *backend, const char *port_id,
                          const char *device_id) {
        for (size_t i = 0; i < d->n_devices; i++) {
                DeviceAssignment *a = &d->devices[i];
                if (streq_ptr(a->devclass, devclass) && streq(backend_name(a), backend) && streq(a->port_id, port_id) &&
                    streq(a->identity, device_id))
                        return (ssize_t) i;
        }
        return -1;
}

DeviceAssignment *domain_device_assignment(Domain *d, const char *devclass, const char *backend, const char *port_id,
                                           const char *device_id) {
        ssize_t i = find_equal(d, devclass, backend, port_id, device_id);
        return i < 0 ? NULL : &d->devices[i];
}

void domain_devices_touch(Domain *d, const char *devclass) {
        if (strv_contains(d->device_classes, devclass))
                return;
        if (strv_extend(&d->device_classes, devclass) >= 0)
                domain_mark_changed(d);
}

char *device_options_repr(char *const *options) {
        _cleanup_strbuf_ StrBuf b = {};

        strbuf_append_c(&b, '{');
        for (size_t i = 0; options && options[i] && options[i + 1]; i += 2) {
                _cleanup_free_ char *k = py_str_repr(options[i]), *v = py_str_repr(options[i + 1]);
                if (!k || !v)
                        return NULL;
                if (i > 0)
                        strbuf_append(&b, ", ");
                strbuf_append(&b, k);
                strbuf_append(&b, ": ");
                strbuf_append(&b, v);
        }
        strbuf_append_c(&b, '}');
        return strbuf_steal(&b);
}

static void emit(Domain *d, const char *what, const char *devclass, const char *const *kv, size_t n) {
        _cleanup_free_ char *name = NULL;
        if (asprintf(&name, "%s:%s", what, devclass) < 0)
                return;
        app_emit_eventv(d->app, d, name, kv, n);
}

static void emit_device(Domain *d, const char *what, const DeviceAssignment *a, bool with_options) {
        _cleanup_free_ char *dev = device_ident_str(a->backend, a->port_id, a->identity);
        _cleanup_free_ char *opts = with_options ? device_options_repr(a->options) : NULL;
        if (!dev || (with_options && !opts))
                return;
        const char *kv[] = { "device", dev, "options", opts };
        emit(d, what, a->devclass, kv, with_options ? 4 : 2);
}

/* A KeyError subclass prints its message as Python's repr (spec §7). */
static int key_error(QError *e, QubesErrorCode code, const char *fmt, const char *a, const char *b, const char *c) {
        _cleanup_qerror_ QError plain = {};
        _cleanup_free_ char *text = NULL, *quoted = NULL;
        qerror_set(&plain, code, fmt, a, b, c);
        text = qerror_message(&plain);
        if (!text)
                return -ENOMEM;
        quoted = py_str_repr(text);
        if (!quoted)
                return -ENOMEM;
        return qerror_set(e, code, "%s", quoted);
}

static int copy_assignment(DeviceAssignment *out, const char *devclass, const char *backend, const char *port_id,
                           const char *device_id, const char *mode, char *const *options) {
        *out = (DeviceAssignment){
                .devclass = strdup(devclass),
                .backend = backend && !streq(backend, "*") ? strdup(backend) : NULL,
                .port_id = strdup(port_id),
                .mode = strdup(mode),
                .identity = strdup(device_id),
                .options = options ? strv_copy(options) : new0(char *, 1),
        };
        if (!out->devclass || !out->port_id || !out->mode || !out->identity || !out->options ||
            (backend && !streq(backend, "*") && !out->backend)) {
                device_assignment_done(out);
                return -ENOMEM;
        }
        return 0;
}

int domain_device_assign(Domain *d, const char *devclass, const char *backend, const char *port_id,
                         const char *device_id, const char *mode, char *const *options, bool record_frontend,
                         QError *e) {
        DeviceAssignment a, *na;
        int r;

        if (!device_mode_assignable(mode))
                return qerror_set(e, QERR_VALUE, "Only auto-attachable devices can be assigned.");
        if (streq(backend, "*") && streq(port_id, "*") && streq(device_id, "*"))
                return qerror_set(e, QERR_VALUE, "Cannot assign any device from any port of any qube");
        if (find_equal(d, devclass, backend, port_id, device_id) >= 0) {
                _cleanup_free_ char *dev = device_ident_str(backend, port_id, device_id);
                if (!dev)
                        return -ENOMEM;
                return key_error(e, QERR_DEVICE_ALREADY_ASSIGNED, "%s device %s already assigned to %s", devclass, dev,
                                 d->name);
        }
        if (d->n_devices >= DEVICE_MAX_ASSIGNMENTS)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "A qube can have at most 1024 device assignments");
        if (streq(devclass, "pci")) {
                /* a qube whose virt_mode is pvh by default turns hvm with its first PCI device */
                const PropDef *p = domain_prop_find(d->klass, "virt_mode");
                if (p && domain_slot(d, p)->set && streq_ptr(domain_slot(d, p)->value, "pvh"))
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Can't assign PCI device to VM in pvh mode");
        }
        r = copy_assignment(&a, devclass, backend, port_id, device_id, mode, options);
        if (r < 0)
                return r;
        a.no_frontend = !record_frontend;

        emit_device(d, "device-pre-assign", &a, true);
        na = realloc(d->devices, (d->n_devices + 1) * sizeof(DeviceAssignment));
        if (!na) {
                device_assignment_done(&a);
                return -ENOMEM;
        }
        d->devices = na;
        d->devices[d->n_devices++] = a;
        domain_devices_touch(d, devclass);
        domain_mark_changed(d);
        return 0;
}

void domain_device_assign_commit(Domain *d) {
        if (d->n_devices > 0)
                emit_device(d, "device-assign", &d->devices[d->n_devices - 1], true);
}

void domain_device_assign_undo(Domain *d) {
        if (d->n_devices == 0)
                return;
        device_assignment_done(&d->devices[--d->n_devices]);
        domain_mark_changed(d);
}

int domain_device_unassign(Domain *d, const char *devclass, const char *backend, const char *port_id,
                           const char *device_id, DeviceAssignment *ret, size_t *ret_index, QError *e) {
        ssize_t i = find_equal(d, devclass, backend, port_id, device_id);

        if (i < 0) {
                _cleanup_free_ char *dev = device_ident_str(backend, port_id, device_id);
                if (!dev)
                        return -ENOMEM;
                return key_error(e, QERR_DEVICE_NOT_ASSIGNED, "%s device %s not assigned to %s", devclass, dev,
                                 d->name);
        }
        *ret = d->devices[i];
        *ret_index = (size_t) i;
        memmove(d->devices + i, d->devices + i + 1, (d->n_devices - (size_t) i - 1) * sizeof(DeviceAssignment));
        d->n_devices--;
        domain_devices_touch(d, devclass);
        domain_mark_changed(d);
        return 0;
}

void domain_device_restore(Domain *d, DeviceAssignment *a, size_t index) {
        DeviceAssignment *na = realloc(d->devices, (d->n_devices + 1) * sizeof(DeviceAssignment));
        if (!na) {
                device_assignment_done(a);
                return;
        }
        d->devices = na;
        if (index > d->n_devices)
                index = d->n_devices;
        memmove(d->devices + index + 1, d->devices + index, (d->n_devices - index) * sizeof(DeviceAssignment));
        d->devices[index] = *a;
        d->n_devices++;
        *a = (DeviceAssignment){};
        domain_mark_changed(d);
}

void domain_device_unassign_commit(Domain *d, DeviceAssignment *a) {
        emit_device(d, "device-unassign", a, false);
        device_assignment_done(a);
        *a = (DeviceAssignment){};
}

int domain_device_set_mode(Domain *d, const char *devclass, const char *backend, const char *port_id,
                           const char *device_id, const char *mode, char **ret_old_mode, QError *e) {
        ssize_t i = find_equal(d, devclass, backend, port_id, device_id);
        DeviceAssignment *a;
        char *m;

        *ret_old_mode = NULL;
        if (i < 0) {
                _cleanup_free_ char *dev = device_ident_str(backend, port_id, device_id);
                if (!dev)
                        return -ENOMEM;
                return qerror_set(e, QERR_VALUE, "Device %s not assigned to %s", dev, d->name);
        }
        a = &d->devices[i];
        domain_devices_touch(d, devclass);
        if (streq(a->mode, mode))
                return 0;
        m = strdup(mode);
        if (!m)
                return -ENOMEM;
        emit_device(d, "device-pre-assign", a, true);
        *ret_old_mode = a->mode;
        a->mode = m;
        domain_mark_changed(d);
        return 0;
}

void domain_device_set_mode_commit(Domain *d, const char *devclass, const char *backend, const char *port_id,
                                   const char *device_id) {
        DeviceAssignment *a = domain_device_assignment(d, devclass, backend, port_id, device_id);
        if (a)
                emit_device(d, "device-assignment-changed", a, false);
}

void domain_device_set_mode_undo(Domain *d, const char *devclass, const char *backend, const char *port_id,
                                 const char *device_id, const char *old_mode) {
        DeviceAssignment *a = domain_device_assignment(d, devclass, backend, port_id, device_id);
        if (!a || !old_mode)
                return;
        if (free_and_strdup(&a->mode, old_mode) >= 0)
                domain_mark_changed(d);
}

/* ---- devices_denied ------------------------------------------------------------------------- */

static int set_denied(Domain *d, const char *value, QError *e) {
        const PropDef *p = domain_prop_find(d->klass, "devices_denied");
        _cleanup_(prop_value_done) PropValue old = {};
        _cleanup_free_ char *canon = NULL;
        int r;

        if (!p)
                return qerror_set(e, QERR_NO_SUCH_PROPERTY, "Invalid property 'devices_denied' of %s", d->name);
        r = domain_property_get(d, p, &old, e);
        if (r < 0)
                return r;
        /* what the setter would make of it: unchanged means nothing to save */
        r = device_denied_canonical(value, &canon, e);
        if (r < 0)
                return r;
        if (streq(strempty(old.value), canon))
                return 0;
        r = domain_property_set(d, "devices_denied", canon, strlen(canon), e);
        return r < 0 ? r : 1;
}

static char *current_denied(Domain *d) {
        char *v = domain_property_string(d, "devices_denied");
        return v ?: strdup("");
}

int domain_devices_deny(Domain *d, char *const *codes, QError *e) {
        _cleanup_free_ char *cur = current_denied(d);
        _cleanup_strbuf_ StrBuf b = {};

        if (!cur)
                return -ENOMEM;
        strbuf_append(&b, cur);
        STRV_FOREACH(c, codes)
                strbuf_append(&b, *c);
        if (b.oom)
                return -ENOMEM;
        /* the setter sorts, de-duplicates and checks */
        return set_denied(d, strempty(b.buf), e);
}

int domain_devices_allow(Domain *d, char *const *codes, bool all, QError *e) {
        _cleanup_free_ char *cur = current_denied(d);
        _cleanup_strbuf_ StrBuf b = {};

        if (!cur)
                return -ENOMEM;
        if (!all)
                for (size_t i = 0; i + 7 <= strlen(cur); i += 7) {
                        char code[8];
                        memcpy(code, cur + i, 7);
                        code[7] = 0;
                        if (!strv_contains(codes, code))
                                strbuf_append(&b, code);
                }
        if (b.oom)
                return -ENOMEM;
        return set_denied(d, strempty(b.buf), e);
}
