/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Devices at run time, on the floor of the hypervisor (docs/daemon.md, "Devices"): the state
 * qubesd keeps of devices (Manager.devices: the registry of what backends expose and what is
 * attached, what a starting qube's XML holds), and what reaches libvirt: <disk>/<hostdev> in a
 * starting qube's XML (domain-xml.c), hot-plug and unplug on a running one (vmm_submit, the
 * worker pool), and after (re)connecting what the running qubes hold (lifecycle.c). The bus side
 * (the Device objects, DomainDevices, discovery and hotplug) is devices-dbus.c, above. */

#include <libxml/tree.h>
#include <systemd/sd-device.h>
#include <systemd/sd-event.h>

#include "devices/devices.h"
#include "manager.h"

/* Every device class this qubesd serves has a discovery of its own on dom0. */
enum { DEVICES_CLASS_BLOCK, DEVICES_CLASS_PCI, _DEVICES_CLASS_MAX };

/* What a start put in a qube's libvirt XML: attached once the qube runs. */
typedef struct DevicesPending {
        char *name; /* the starting qube (key) */
        DeviceAttachment **att;
        size_t n;
} DevicesPending;

struct Devices {
        DeviceRegistry *reg;
        /* hotplug (devices-dbus.c): udevd's monitor where it runs, else the kernel's uevents */
        sd_device_monitor *monitor;
        sd_event_source *uevent_source;
        sd_event_source *mountinfo_source;
        sd_event_source *rescan_source;
        bool rescan[_DEVICES_CLASS_MAX];
        Hashmap *pending;   /* qube name -> DevicesPending* */
        Hashmap *in_flight; /* device key -> the key itself: an attach or detach in progress */
        char **started;     /* qubes whose devices are announced at domain-start */
};

static inline Devices *devices_of(Manager *m) {
        return m->devices;
}
static inline DeviceRegistry *devices_registry(Manager *m) {
        return m->devices ? m->devices->reg : NULL;
}

/* PropertiesChanged of a device object (NULL-terminated property names). */
void devices_announce(Manager *m, const DeviceInfo *i, const char *first, ...);

/* domain-xml.c: the devices a starting qube gets in its libvirt XML (required and auto-attach
 * assignments); a required device that is not there fails the start with err set. */
int devices_domain_xml(Manager *m, Domain *d, const char *driver, xmlNodePtr devices, QError *err);
/* What devices_domain_xml() put in a qube's XML (takes the attachments), and taking it back when
 * the qube runs (or not). */
int devices_start_pending(Manager *m, const char *name, DeviceAttachment **l, size_t n);
DevicesPending *devices_pending_take(Manager *m, const char *name);
void devices_pending_free(DevicesPending *p);

/* An attachment of dev to frontend with options (NULL on OOM). */
DeviceAttachment *devices_attachment_new(const char *frontend, const DeviceInfo *dev, char *const *options);

/* After qubesd (re)connected to libvirt (lifecycle.c): what the running qubes' live XML holds of
 * dom0's devices is recorded as attached, without events (qubesd may have restarted while they
 * ran). */
void devices_vmm_resync(Manager *m);

/* The options of a block attach, checked and completed as upstream's class does (frontend-dev,
 * read-only, devtype). *ret: the options to use, in a stable order. */
int devices_block_options(Manager *m, Domain *frontend, const DeviceInfo *dev, char *const *options, char ***ret,
                          QError *e);
/* PCI: the options are no-strict-reset and permissive. */
int devices_pci_options(char *const *options, char ***ret, QError *e);

/* Hot-plug dev into the running frontend (libvirt, in a worker); done() runs on the loop with
 * error < 0 and libvirt's reason on failure. The test driver cannot hot-plug: a block device is
 * recorded as attached without libvirt (docs/daemon.md). */
typedef void (*DeviceOpDone)(Manager *m, int error, const char *reason, void *userdata);
int devices_vmm_attach(Manager *m, Domain *frontend, const DeviceInfo *dev, char *const *options, DeviceOpDone done,
                       void *userdata);
int devices_vmm_detach(Manager *m, const char *frontend, const DeviceAttachment *a, DeviceOpDone done, void *userdata);
