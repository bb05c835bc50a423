/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Devices in the model (spec/devices.md): what backends expose (DeviceInfo, in a registry), what
 * is attached to running qubes right now (DeviceAttachment), and what qubes.xml keeps (the
 * assignments, Domain.devices). Nothing here knows D-Bus or libvirt: the bus side
 * (devices-dbus.c) and the hypervisor side (devices-vmm.c) call these functions and turn their
 * results into replies, events and libvirt XML. Every change of an assignment is reported as
 * upstream's event to the model's listeners (app_emit_eventv). */

#include <stdint.h>

#include "device-protocol.h"
#include "model/model.h"
#include "util/hashmap.h"

/* The device classes this qubesd serves, in admin.deviceclass.List order. */
extern const char *const device_classes[];
bool device_class_known(const char *devclass);

/* One device a backend exposes now (upstream's DeviceInfo). NULL strings are "unknown". */
typedef struct DeviceInfo {
        char *key; /* "<class>\n<backend>\n<port>": the registry's key */
        char *devclass;
        char *backend;
        char *port_id;
        char *device_id;
        char *vendor, *product, *manufacturer, *name, *serial;
        char *interfaces; /* the codes, concatenated (never NULL) */
        char *parent_port_id, *parent_devclass;
        char **data; /* extra data: key, value, … (the wire's _key items), never NULL */
        /* how qubesd reaches it (devices of dom0) */
        char *syspath;
        char *devnode; /* block: /dev/loop0 */
        char *sbdf;    /* pci: 0000:00:14.0 */
        bool read_only;
        uint64_t size; /* block: bytes */
} DeviceInfo;

DeviceInfo *device_info_new(const char *devclass, const char *backend, const char *port_id);
DeviceInfo *device_info_free(DeviceInfo *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceInfo *, device_info_free);
/* Whether two descriptions of one port say the same (every field). */
bool device_info_equal(const DeviceInfo *a, const DeviceInfo *b);
/* A human-readable description ("Intel Corporation 82371SB PIIX3 ISA", "loop0: /var/tmp/a.img"). */
char *device_info_description(const DeviceInfo *i);
/* The Available line's items after port_id:device_id (spec §3 order), for the wire or D-Bus:
 * key, value, …: device_id, port_id, devclass, backend_domain, the known names, attachment (when
 * attached_to is given), interfaces, parent, _data. */
int device_info_items(const DeviceInfo *i, const char *attached_to, char ***ret);

/* One device attached to a running qube (what upstream's class extension reports). */
typedef struct DeviceAttachment {
        char *frontend;
        char *devclass, *backend, *port_id, *device_id;
        char **options; /* as the class reports them: read-only, frontend-dev, devtype… */
        char *node;     /* how the hypervisor knows it: a block device node, a PCI SBDF */
} DeviceAttachment;
DeviceAttachment *device_attachment_free(DeviceAttachment *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceAttachment *, device_attachment_free);

/* What the backends expose and what is attached, for every class. */
typedef struct DeviceRegistry {
        Hashmap *devices;       /* key -> DeviceInfo* (insertion order) */
        DeviceAttachment **att; /* every attachment, in the order they were made */
        size_t n_att;
} DeviceRegistry;

int device_registry_new(DeviceRegistry **ret);
DeviceRegistry *device_registry_free(DeviceRegistry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceRegistry *, device_registry_free);
DeviceInfo *device_registry_get(const DeviceRegistry *r, const char *devclass, const char *backend,
                                const char *port_id);
/* The devices of one backend and class, sorted by port (NULL-terminated, free() the array). */
DeviceInfo **device_registry_list(const DeviceRegistry *r, const char *devclass, const char *backend);

/* The difference between what a backend exposes now and what the registry holds. */
typedef struct DeviceChanges {
        DeviceInfo **added; /* now in the registry */
        size_t n_added;
        DeviceInfo **removed; /* taken out of the registry: owned by the changes, freed with them */
        size_t n_removed;
        DeviceInfo **changed; /* in the registry, updated in place */
        size_t n_changed;
} DeviceChanges;
void device_changes_done(DeviceChanges *c);
/* Replace the devices of (class, backend) by now (whose entries it takes; the array is emptied):
 * entries of a port that exists already update that device in place. */
int device_registry_replace(DeviceRegistry *r, const char *devclass, const char *backend, DeviceInfo **now,
                            size_t n_now, DeviceChanges *ret);

/* Attachments. */
DeviceAttachment *device_registry_attachment(const DeviceRegistry *r, const char *devclass, const char *backend,
                                             const char *port_id);
/* The frontend a device is attached to, or NULL. */
const char *device_registry_attached_to(const DeviceRegistry *r, const DeviceInfo *i);
/* Takes a. */
int device_registry_attach(DeviceRegistry *r, DeviceAttachment *a);
/* Takes the attachment out (returned; NULL when there is none). */
DeviceAttachment *device_registry_detach(DeviceRegistry *r, const char *devclass, const char *backend,
                                         const char *port_id);
/* The attachments of a frontend for one class (NULL: every class), made order; free() the array. */
DeviceAttachment **device_registry_attached(const DeviceRegistry *r, const char *frontend, const char *devclass,
                                            size_t *ret_n);

/* ---- assignments (qubes.xml) ---------------------------------------------------------------- */

/* Whether an assignment names this device (its port and identity, '*' matching anything). */
bool device_assignment_matches(const DeviceAssignment *a, const char *devclass, const char *backend,
                               const char *port_id, const char *device_id);
/* The stored assignment equal to (backend, port, identity) of that class ('*' matches '*' only). */
DeviceAssignment *domain_device_assignment(Domain *d, const char *devclass, const char *backend, const char *port_id,
                                           const char *device_id);
/* The class is used on d (upstream's device manager creates its collection): qubes.xml gets its
 * <devices> element from now on. */
void domain_devices_touch(Domain *d, const char *devclass);

/* admin.vm.device.<class>.Assign: a stored assignment, upstream's checks and events
 * (device-pre-assign, device-assign). record_frontend: the assignment lists this qube as its
 * frontend (Admin API payloads without frontend_domain leave it out until the next load).
 * The caller saves qubes.xml, and calls domain_device_unassign_undo() if that fails. */
int domain_device_assign(Domain *d, const char *devclass, const char *backend, const char *port_id,
                         const char *device_id, const char *mode, char *const *options, bool record_frontend,
                         QError *e);
/* After the save: device-assign for the assignment just made. */
void domain_device_assign_commit(Domain *d);
/* Take back the last assignment (the save failed): no event. */
void domain_device_assign_undo(Domain *d);
/* Unassign: DeviceNotAssigned when no stored assignment is equal. Removes it (*ret, to put back
 * with domain_device_restore() if the save fails) and emits device-unassign after the caller
 * saved: see domain_device_unassign_commit(). */
int domain_device_unassign(Domain *d, const char *devclass, const char *backend, const char *port_id,
                           const char *device_id, DeviceAssignment *ret, size_t *ret_index, QError *e);
void domain_device_restore(Domain *d, DeviceAssignment *a, size_t index);
void domain_device_unassign_commit(Domain *d, DeviceAssignment *a);
/* Set.assignment: QubesValueError when none is equal; *changed says whether the mode changed
 * (events device-pre-assign and device-assignment-changed then, after *old_mode is kept for an
 * undo). */
int domain_device_set_mode(Domain *d, const char *devclass, const char *backend, const char *port_id,
                           const char *device_id, const char *mode, char **ret_old_mode, QError *e);
void domain_device_set_mode_commit(Domain *d, const char *devclass, const char *backend, const char *port_id,
                                   const char *device_id);
void domain_device_set_mode_undo(Domain *d, const char *devclass, const char *backend, const char *port_id,
                                 const char *device_id, const char *old_mode);

/* devices_denied: add or remove codes (the payload's, already split). Returns 1 when the value
 * changed (the caller saves), 0 when not. Events as property-set:devices_denied. */
int domain_devices_deny(Domain *d, char *const *codes, QError *e);
int domain_devices_allow(Domain *d, char *const *codes, bool all, QError *e);

/* Python's repr of an options dict: {} or {'k': 'v', …}. */
char *device_options_repr(char *const *options);

/* ---- discovery (discover.c): dom0's own devices -------------------------------------------- */

/* The PCI path (port_id) of a device given by its SBDF (0000:00:14.0), from sysfs: 00_14.0,
 * 00_1c.0-00_00.0 behind a bridge. NULL when there is no such device. */
char *pci_sbdf_to_path(const char *sbdf);
/* The SBDF of a PCI path on this host, or NULL. */
char *pci_path_to_sbdf(const char *path);
/* qubes.xml from before port paths: "00:14.0" / "00_14.0" as a path where this host can tell. */
char *pci_port_from_legacy(const char *id);

/* Enumerate dom0's devices of one class (pci, block) with sd-device. *ret is NULL-terminated. */
int devices_discover(const char *devclass, DeviceInfo ***ret, size_t *ret_n);
/* Free a NULL-terminated array of DeviceInfo and the array. */
void device_info_array_free(DeviceInfo **a);
/* Close the PCI name database (at exit, for leak checkers). */
void devices_discover_done(void);
