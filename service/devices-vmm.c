/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Devices on the hypervisor: the <disk> and <hostdev> elements of a qube's libvirt XML (at start,
 * and for hot-plug with virDomainAttachDeviceFlags / DetachDeviceFlags in a worker), and the
 * options of upstream's block and PCI classes. Elements are built with libxml2, never pasted
 * from strings, so no value can leave its attribute. */
#include "devices-vmm.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdarg.h>

#include "bus-names.h"
#include "vmm.h"

#include "util/log.h"
#include "util/strv.h"

static xmlNodePtr child(xmlNodePtr parent, const char *name) {
        return xmlNewChild(parent, NULL, (const xmlChar *) name, NULL);
}

static void attr(xmlNodePtr node, const char *name, const char *value) {
        xmlNewProp(node, (const xmlChar *) name, (const xmlChar *) value);
}

/* ---- the state ------------------------------------------------------------------------------ */

void devices_announce(Manager *m, const DeviceInfo *i, const char *first, ...) {
        _cleanup_free_ char *path = device_bus_path(i->devclass, i->backend, i->port_id);
        _cleanup_strv_free_ char **names = NULL;
        va_list ap;

        if (!path)
                return;
        va_start(ap, first);
        for (const char *n = first; n; n = va_arg(ap, const char *))
                (void) strv_extend(&names, n);
        va_end(ap);
        manager_emit_properties_changed_strv(m, path, QUBESD_IFACE_DEVICE, names);
}

DevicesPending *devices_pending_take(Manager *m, const char *name) {
        return devices_of(m) ? hashmap_remove(devices_of(m)->pending, name) : NULL;
}

void devices_pending_free(DevicesPending *p) {
        if (!p)
                return;
        for (size_t k = 0; k < p->n; k++)
                device_attachment_free(p->att[k]);
        free(p->att);
        free(p->name);
        free(p);
}

int devices_start_pending(Manager *m, const char *name, DeviceAttachment **l, size_t n) {
        Devices *dv = devices_of(m);
        DevicesPending *p = new0(DevicesPending, 1);

        devices_pending_free(devices_pending_take(m, name));
        if (!p || !(p->name = strdup(name)) || !(p->att = new0(DeviceAttachment *, n + 1))) {
                devices_pending_free(p);
                for (size_t k = 0; k < n; k++)
                        device_attachment_free(l[k]);
                return -ENOMEM;
        }
        for (size_t k = 0; k < n; k++)
                p->att[p->n++] = l[k];
        if (hashmap_put(dv->pending, p->name, p) < 0) {
                devices_pending_free(p);
                return -ENOMEM;
        }
        return 0;
}

DeviceAttachment *devices_attachment_new(const char *frontend, const DeviceInfo *i, char *const *options) {
        _cleanup_(device_attachment_freep) DeviceAttachment *a = new0(DeviceAttachment, 1);
        if (!a)
                return NULL;
        a->frontend = strdup(frontend);
        a->devclass = strdup(i->devclass);
        a->backend = strdup(i->backend);
        a->port_id = strdup(i->port_id);
        a->device_id = strdup(i->device_id ?: DEVICE_ID_UNKNOWN);
        a->options = strv_copy(options ?: (char *[]){ NULL });
        a->node = strdup(streq(i->devclass, "pci") ? strempty(i->sbdf) : strempty(i->devnode));
        if (!a->frontend || !a->devclass || !a->backend || !a->port_id || !a->device_id || !a->options || !a->node)
                return NULL;
        return TAKE_PTR(a);
}

/* Record an attachment found in the live XML (no events), announce the device. */
static void record_attachment(Manager *m, const char *frontend, const DeviceInfo *dev, char *const *options) {
        DeviceAttachment *a = devices_attachment_new(frontend, dev, options);
        if (!a || device_registry_attach(devices_registry(m), a) < 0) {
                device_attachment_free(a);
                return;
        }
        log_qube_info(frontend, "%s has %s:%s attached (from its live XML).", frontend, dev->backend, dev->port_id);
        devices_announce(m, dev, "AttachedTo", NULL);
}

/* ---- options -------------------------------------------------------------------------------- */

/* Frontend device names in upstream's order of preference: xvdi … xvdz, then xvde … xvdh (xvda
 * to xvdd are a qube's own disks). */
static bool frontend_dev_used(Manager *m, const char *frontend, const char *dev) {
        size_t n = 0;
        _cleanup_free_ DeviceAttachment **l = device_registry_attached(devices_registry(m), frontend, "block", &n);
        for (size_t i = 0; l && i < n; i++)
                if (streq_ptr(device_items_get(l[i]->options, "frontend-dev"), dev))
                        return true;
        return false;
}

static char *free_frontend_dev(Manager *m, const char *frontend, char *const *also_used) {
        const char *order = "ijklmnopqrstuvwxyzefgh";
        for (const char *c = order; *c; c++) {
                char dev[8];
                snprintf(dev, sizeof dev, "xvd%c", *c);
                if (!frontend_dev_used(m, frontend, dev) && !strv_contains(also_used, dev))
                        return strdup(dev);
        }
        return NULL;
}

static bool frontend_dev_valid(const char *v) {
        const char *rest = startswith(v, "xvd") ?: startswith(v, "sd");
        size_t n = rest ? strlen(rest) : 0;
        if (!rest || n < 1 || n > 3)
                return false;
        for (const char *c = rest; *c; c++)
                if (*c < 'a' || *c > 'z')
                        return false;
        return true;
}

static int options_put(char ***l, const char *k, const char *v) {
        for (char **kv = *l; kv && kv[0] && kv[1]; kv += 2)
                if (streq(kv[0], k))
                        return free_and_strdup(&kv[1], v);
        if (strv_extend(l, k) < 0 || strv_extend(l, v) < 0)
                return -ENOMEM;
        return 0;
}

int devices_block_options(Manager *m, Domain *frontend, const DeviceInfo *dev, char *const *options, char ***ret,
                          QError *e) {
        _cleanup_strv_free_ char **l = new0(char *, 1);
        char *const *kv;
        int r;

        if (!l)
                return -ENOMEM;
        for (kv = options; kv && kv[0] && kv[1]; kv += 2) {
                const char *k = kv[0], *v = kv[1];
                if (streq(k, "frontend-dev")) {
                        if (!frontend_dev_valid(v))
                                return qerror_set(e, QERR_VALUE, "Invalid frontend-dev option value: %s", v);
                        r = options_put(&l, k, v);
                } else if (streq(k, "read-only")) {
                        int b = parse_bool_word(v);
                        if (b < 0)
                                return qerror_set(e, QERR_VALUE, "Invalid literal for boolean property: %s", v);
                        r = options_put(&l, k, b ? "yes" : "no");
                } else if (streq(k, "devtype")) {
                        if (!streq(v, "disk") && !streq(v, "cdrom"))
                                return qerror_set(e, QERR_VALUE,
                                                  "devtype option can only have 'disk' or 'cdrom' value");
                        r = options_put(&l, k, v);
                } else
                        return qerror_set(e, QERR_VALUE, "Unsupported option %s", k);
                if (r < 0)
                        return r;
        }
        const char *ro = device_items_get(l, "read-only");
        if (!ro) {
                r = options_put(&l, "read-only", dev->read_only ? "yes" : "no");
                if (r < 0)
                        return r;
                ro = device_items_get(l, "read-only");
        }
        if (streq(ro, "no") && dev->read_only)
                return qerror_set(e, QERR_VALUE, "This device can be attached only read-only");
        if (!device_items_get(l, "frontend-dev")) {
                _cleanup_free_ char *fd = free_frontend_dev(m, frontend->name, NULL);
                if (!fd)
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "No free frontend device name left in %s",
                                          frontend->name);
                r = options_put(&l, "frontend-dev", fd);
                if (r < 0)
                        return r;
        } else if (frontend_dev_used(m, frontend->name, device_items_get(l, "frontend-dev")))
                return qerror_set(e, QERR_VALUE, "Frontend device %s is in use in %s",
                                  device_items_get(l, "frontend-dev"), frontend->name);
        *ret = TAKE_PTR(l);
        return 0;
}

int devices_pci_options(char *const *options, char ***ret, QError *e) {
        _cleanup_strv_free_ char **l = new0(char *, 1);
        if (!l)
                return -ENOMEM;
        for (char *const *kv = options; kv && kv[0] && kv[1]; kv += 2) {
                if (!streq(kv[0], "no-strict-reset") && !streq(kv[0], "permissive"))
                        return qerror_set(e, QERR_VALUE, "Unsupported option %s", kv[0]);
                if (options_put(&l, kv[0], kv[1]) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- elements ----------------------------------------------------------------------------- */

/* <disk type='block'>: a dom0 device node; Xen names another backend qube with <backenddomain>. */
static xmlNodePtr block_disk(xmlNodePtr parent, const char *driver, const char *node, const char *backend,
                             char *const *options) {
        const char *fdev = device_items_get(options, "frontend-dev");
        const char *devtype = device_items_get(options, "devtype") ?: "disk";
        bool ro = streq_ptr(device_items_get(options, "read-only"), "yes");
        bool xen = streq(driver, "xen");
        xmlNodePtr disk = parent ? child(parent, "disk") : xmlNewNode(NULL, (const xmlChar *) "disk");
        xmlNodePtr n;

        attr(disk, "type", "block");
        attr(disk, "device", devtype);
        n = child(disk, "driver");
        if (xen)
                attr(n, "name", "phy");
        else {
                attr(n, "name", "qemu");
                attr(n, "type", "raw");
        }
        n = child(disk, "source");
        attr(n, "dev", node);
        n = child(disk, "target");
        if (xen)
                attr(n, "dev", fdev);
        else if (startswith(fdev, "sd") || streq(devtype, "cdrom")) {
                /* QEMU: SCSI for sd* and CD-ROMs (virtio-blk has no CD-ROM) */
                _cleanup_free_ char *t = NULL;
                if (asprintf(&t, "sd%s", startswith(fdev, "sd") ?: fdev + 3) >= 0)
                        attr(n, "dev", t);
                attr(n, "bus", "scsi");
        } else {
                /* QEMU: xvdX is the guest's vdX on virtio */
                _cleanup_free_ char *t = NULL;
                if (asprintf(&t, "vd%s", fdev + 3) >= 0)
                        attr(n, "dev", t);
                attr(n, "bus", "virtio");
        }
        if (ro)
                child(disk, "readonly");
        if (xen && backend && !streq(backend, "dom0")) {
                n = child(disk, "backenddomain");
                attr(n, "name", backend);
        }
        return disk;
}

static xmlNodePtr pci_hostdev(xmlNodePtr parent, const char *driver, const char *sbdf, char *const *options) {
        unsigned seg = 0, bus = 0, slot = 0, fn = 0;
        char buf[16];
        xmlNodePtr h = parent ? child(parent, "hostdev") : xmlNewNode(NULL, (const xmlChar *) "hostdev");
        xmlNodePtr src, a;

        (void) sscanf(sbdf, "%x:%x:%x.%x", &seg, &bus, &slot, &fn);
        attr(h, "mode", "subsystem");
        attr(h, "type", "pci");
        /* managed: libvirt binds the device to the pass-through driver (VFIO, or pciback on Xen)
         * and back; it refuses when the host cannot pass devices through (no IOMMU) */
        attr(h, "managed", "yes");
        src = child(h, "source");
        if (streq(driver, "xen") && streq_ptr(device_items_get(options, "permissive"), "True"))
                attr(src, "writeFiltering", "no");
        a = child(src, "address");
        snprintf(buf, sizeof buf, "0x%04x", seg);
        attr(a, "domain", buf);
        snprintf(buf, sizeof buf, "0x%02x", bus);
        attr(a, "bus", buf);
        snprintf(buf, sizeof buf, "0x%02x", slot);
        attr(a, "slot", buf);
        snprintf(buf, sizeof buf, "0x%x", fn);
        attr(a, "function", buf);
        return h;
}

static char *node_to_string(xmlNodePtr n) {
        xmlBufferPtr b = xmlBufferCreate();
        char *s = NULL;
        if (b && xmlNodeDump(b, NULL, n, 0, 0) >= 0)
                s = strdup((const char *) xmlBufferContent(b));
        xmlBufferFree(b);
        return s;
}

static const char *driver_of(Manager *m) {
        return vmm_of(m)->driver ?: "qemu";
}

/* ---- hot-plug ------------------------------------------------------------------------------- */

typedef struct DeviceJob {
        char *domain; /* libvirt name */
        char *xml;
        bool detach;
        int error;
        char *reason;
        DeviceOpDone done;
        void *userdata;
} DeviceJob;

static void job_free(DeviceJob *j) {
        free(j->domain);
        free(j->xml);
        free(j->reason);
        free(j);
}

static void job_work(virConnectPtr conn, void *data) {
        DeviceJob *j = data;
        virDomainPtr dom;
        int r;

        if (!conn) {
                j->error = -ENOTCONN;
                j->reason = strdup("no connection to the hypervisor");
                return;
        }
        dom = virDomainLookupByName(conn, j->domain);
        if (!dom) {
                j->error = -ENOENT;
                j->reason = vmm_last_error();
                return;
        }
        if (j->detach)
                r = virDomainDetachDeviceFlags(dom, j->xml, VIR_DOMAIN_AFFECT_LIVE);
        else
                r = virDomainAttachDeviceFlags(dom, j->xml, VIR_DOMAIN_AFFECT_LIVE);
        if (r < 0) {
                j->error = -EIO;
                j->reason = vmm_last_error();
        }
        virDomainFree(dom);
}

static void job_done(Manager *m, void *data) {
        DeviceJob *j = data;
        j->done(m, j->error, j->reason, j->userdata);
        job_free(j);
}

static int submit(Manager *m, const char *domain, xmlNodePtr node, bool detach, DeviceOpDone done, void *userdata) {
        DeviceJob *j = new0(DeviceJob, 1);
        if (!j)
                return -ENOMEM;
        j->domain = strdup(domain);
        j->xml = node_to_string(node);
        j->detach = detach;
        j->done = done;
        j->userdata = userdata;
        if (!j->domain || !j->xml || vmm_submit(m, job_work, job_done, j) < 0) {
                job_free(j);
                return -ENOMEM;
        }
        return 0;
}

/* libvirt's test driver has no device hot-plug: what a test qube "gets" is only recorded. */
static bool simulated(Manager *m, const char *devclass) {
        return streq(driver_of(m), "test") && streq(devclass, "block");
}

int devices_vmm_attach(Manager *m, Domain *frontend, const DeviceInfo *dev, char *const *options, DeviceOpDone done,
                       void *userdata) {
        xmlNodePtr n;
        int r;

        if (simulated(m, dev->devclass)) {
                done(m, 0, NULL, userdata);
                return 0;
        }
        if (streq(dev->devclass, "block"))
                n = block_disk(NULL, driver_of(m), dev->devnode, dev->backend, options);
        else
                n = pci_hostdev(NULL, driver_of(m), dev->sbdf, options);
        if (!n)
                return -ENOMEM;
        r = submit(m, vmm_libvirt_name(frontend), n, false, done, userdata);
        xmlFreeNode(n);
        return r;
}

int devices_vmm_detach(Manager *m, const char *frontend, const DeviceAttachment *a, DeviceOpDone done, void *userdata) {
        xmlNodePtr n;
        int r;

        if (simulated(m, a->devclass) || !a->node) {
                done(m, 0, NULL, userdata);
                return 0;
        }
        if (streq(a->devclass, "block"))
                n = block_disk(NULL, driver_of(m), a->node, a->backend, a->options);
        else
                n = pci_hostdev(NULL, driver_of(m), a->node, a->options);
        if (!n)
                return -ENOMEM;
        r = submit(m, frontend, n, true, done, userdata);
        xmlFreeNode(n);
        return r;
}

/* ---- the domain XML at start ------------------------------------------------------------------ */

/* Elements a start adds for one assignment's device (dev), with options checked as an attach
 * would; the attachment to record once the qube runs goes to *ret. */
static int add_one(Manager *m, Domain *d, const char *driver, xmlNodePtr devices, const DeviceAssignment *a,
                   const DeviceInfo *dev, char **used, DeviceAttachment **ret, QError *e) {
        _cleanup_strv_free_ char **opts = NULL;
        _cleanup_(device_attachment_freep) DeviceAttachment *att = new0(DeviceAttachment, 1);
        int r;

        if (!att)
                return -ENOMEM;
        if (streq(dev->devclass, "block")) {
                r = devices_block_options(m, d, dev, a->options, &opts, e);
                if (r < 0)
                        return r;
                /* several devices in one start: each its own frontend name */
                const char *fd = device_items_get(opts, "frontend-dev");
                if (strv_contains(used, fd)) {
                        _cleanup_free_ char *other = free_frontend_dev(m, d->name, used);
                        if (!other)
                                return qerror_set(e, QERR_QUBES_EXCEPTION, "No free frontend device name left in %s",
                                                  d->name);
                        r = options_put(&opts, "frontend-dev", other);
                        if (r < 0)
                                return r;
                }
                block_disk(devices, driver, dev->devnode, dev->backend, opts);
                att->node = strdup(dev->devnode);
        } else {
                r = devices_pci_options(a->options, &opts, e);
                if (r < 0)
                        return r;
                pci_hostdev(devices, driver, dev->sbdf, opts);
                att->node = strdup(dev->sbdf);
        }
        att->frontend = strdup(d->name);
        att->devclass = strdup(dev->devclass);
        att->backend = strdup(dev->backend);
        att->port_id = strdup(dev->port_id);
        att->device_id = strdup(dev->device_id ?: DEVICE_ID_UNKNOWN);
        att->options = TAKE_PTR(opts);
        if (!att->node || !att->frontend || !att->devclass || !att->backend || !att->port_id || !att->device_id)
                return -ENOMEM;
        *ret = TAKE_PTR(att);
        return 0;
}

/* The devices an assignment names that are present now (most specific first is the caller's
 * business): a port, or every port showing that identity. */
static size_t matching_devices(Manager *m, const DeviceAssignment *a, DeviceInfo **out, size_t max) {
        DeviceRegistry *reg = devices_registry(m);
        size_t n = 0;

        if (!streq(a->port_id, "*") && a->backend) {
                DeviceInfo *i = device_registry_get(reg, a->devclass, a->backend, a->port_id);
                if (i && (streq(a->identity, "*") || streq_ptr(i->device_id, a->identity)) && max > 0)
                        out[n++] = i;
                return n;
        }
        _cleanup_free_ DeviceInfo **l = device_registry_list(reg, a->devclass, a->backend);
        for (size_t k = 0; l && l[k] && n < max; k++)
                if (device_assignment_matches(a, l[k]->devclass, l[k]->backend, l[k]->port_id, l[k]->device_id))
                        out[n++] = l[k];
        return n;
}

int devices_domain_xml(Manager *m, Domain *d, const char *driver, xmlNodePtr devices, QError *err) {
        DeviceRegistry *reg = devices_registry(m);
        _cleanup_strv_free_ char **used = NULL;
        DeviceAttachment **planned = NULL;
        size_t n_planned = 0;
        int r = 0;

        if (!reg)
                return 0;
        /* upstream's libvirt template reads both classes of every starting qube */
        domain_devices_touch(d, "pci");
        domain_devices_touch(d, "block");

        for (size_t k = 0; k < d->n_devices && r >= 0; k++) {
                const DeviceAssignment *a = &d->devices[k];
                DeviceInfo *found[2];
                size_t n;

                if (!device_class_known(a->devclass) || streq(a->mode, "ask-to-attach"))
                        continue; /* ask-to-attach asks first: there is nobody to ask at start */
                n = matching_devices(m, a, found, 2);
                bool required = streq(a->mode, "required");
                if (n == 0 || n > 1) {
                        if (!required)
                                continue;
                        _cleanup_free_ char *dev = device_ident_str(a->backend, a->port_id, a->identity);
                        r = qerror_set(err, QERR_QUBES_EXCEPTION,
                                       n == 0 ? "Start failed: required %s device %s is not available"
                                              : "Start failed: required %s device %s is ambiguous",
                                       a->devclass, dev ?: a->port_id);
                        break;
                }
                const char *elsewhere = device_registry_attached_to(reg, found[0]);
                bool mine = false;
                for (size_t p = 0; p < n_planned; p++)
                        mine = mine || (streq(planned[p]->devclass, found[0]->devclass) &&
                                        streq(planned[p]->backend, found[0]->backend) &&
                                        streq(planned[p]->port_id, found[0]->port_id));
                if (mine)
                        continue; /* two assignments naming one device: attached once */
                if (elsewhere) {
                        if (!required)
                                continue;
                        _cleanup_free_ char *dev =
                                device_ident_str(found[0]->backend, found[0]->port_id, found[0]->device_id);
                        r = qerror_set(err, QERR_QUBES_EXCEPTION,
                                       "Start failed: required %s device %s is attached to %s", a->devclass,
                                       dev ?: found[0]->port_id, elsewhere);
                        break;
                }
                DeviceAttachment *att = NULL;
                QError e = {};
                r = add_one(m, d, driver, devices, a, found[0], used, &att, &e);
                if (r < 0) {
                        if (required || !qerror_is_set(&e)) {
                                _cleanup_free_ char *msg = qerror_message(&e);
                                qerror_done(&e);
                                if (!msg)
                                        break;
                                r = qerror_set(err, QERR_QUBES_EXCEPTION, "Start failed: %s", msg);
                                break;
                        }
                        /* an auto-attach device whose options do not fit: the qube starts without it */
                        _cleanup_free_ char *msg = qerror_message(&e);
                        log_qube_warning(d->name, "Not attaching %s:%s to %s at start: %s", found[0]->backend,
                                         found[0]->port_id, d->name, strempty(msg));
                        qerror_done(&e);
                        r = 0;
                        continue;
                }
                DeviceAttachment **np = realloc(planned, (n_planned + 1) * sizeof(DeviceAttachment *));
                if (!np) {
                        device_attachment_free(att);
                        r = -ENOMEM;
                        break;
                }
                planned = np;
                planned[n_planned++] = att;
                const char *fd = device_items_get(att->options, "frontend-dev");
                if (fd && strv_extend(&used, fd) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0)
                r = devices_start_pending(m, d->name, planned, n_planned);
        else
                for (size_t p = 0; p < n_planned; p++)
                        device_attachment_free(planned[p]);
        free(planned);
        return r;
}

/* ---- after (re)connecting: what the running qubes have ------------------------------------------ */

typedef struct ResyncReq {
        char **names; /* qube names */
        char **xml;   /* their live XML (NULL where it could not be read) */
        size_t n;
} ResyncReq;

static void resync_work(virConnectPtr conn, void *data) {
        ResyncReq *q = data;
        for (size_t k = 0; conn && k < q->n; k++) {
                virDomainPtr dom = virDomainLookupByName(conn, q->names[k]);
                if (!dom)
                        continue;
                q->xml[k] = virDomainGetXMLDesc(dom, 0);
                virDomainFree(dom);
        }
}

static char *prop(xmlNodePtr n, const char *name) {
        xmlChar *v = xmlGetProp(n, (const xmlChar *) name);
        char *s = v ? strdup((const char *) v) : NULL;
        xmlFree(v);
        return s;
}

static xmlNodePtr first_child(xmlNodePtr n, const char *name) {
        for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && streq((const char *) c->name, name))
                        return c;
        return NULL;
}

/* The devices of dom0 that one qube's live XML holds. */
static void resync_one(Manager *m, const char *name, const char *xml) {
        DeviceRegistry *reg = devices_registry(m);
        xmlDocPtr doc = xmlReadMemory(xml, (int) strlen(xml), "live.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
        xmlNodePtr devices = doc ? first_child(xmlDocGetRootElement(doc), "devices") : NULL;

        for (xmlNodePtr c = devices ? devices->children : NULL; c; c = c->next) {
                _cleanup_strv_free_ char **opts = new0(char *, 1);
                DeviceInfo *found = NULL;
                if (c->type != XML_ELEMENT_NODE || !opts)
                        continue;
                if (streq((const char *) c->name, "disk")) {
                        _cleanup_free_ char *type = prop(c, "type"), *device = prop(c, "device");
                        _cleanup_free_ char *src = prop(first_child(c, "source"), "dev");
                        _cleanup_free_ char *target = prop(first_child(c, "target"), "dev");
                        if (!streq_ptr(type, "block") || !src || !target)
                                continue;
                        _cleanup_free_ DeviceInfo **l = device_registry_list(reg, "block", "dom0");
                        for (size_t k = 0; l && l[k] && !found; k++)
                                if (streq_ptr(l[k]->devnode, src))
                                        found = l[k];
                        if (!found)
                                continue;
                        /* QEMU's vdX is the qube's xvdX */
                        _cleanup_free_ char *fdev = NULL;
                        if (startswith(target, "vd") && asprintf(&fdev, "xvd%s", target + 2) < 0)
                                continue;
                        (void) options_put(&opts, "read-only", first_child(c, "readonly") ? "yes" : "no");
                        (void) options_put(&opts, "frontend-dev", fdev ?: target);
                        if (device && !streq(device, "disk"))
                                (void) options_put(&opts, "devtype", device);
                } else if (streq((const char *) c->name, "hostdev")) {
                        xmlNodePtr a = first_child(first_child(c, "source"), "address");
                        _cleanup_free_ char *type = prop(c, "type"), *dm = prop(a, "domain"), *bus = prop(a, "bus"),
                                            *slot = prop(a, "slot"), *fn = prop(a, "function");
                        char sbdf[32];
                        if (!streq_ptr(type, "pci") || !dm || !bus || !slot || !fn)
                                continue;
                        snprintf(sbdf, sizeof sbdf, "%04lx:%02lx:%02lx.%lx", strtoul(dm, NULL, 16),
                                 strtoul(bus, NULL, 16), strtoul(slot, NULL, 16), strtoul(fn, NULL, 16));
                        _cleanup_free_ DeviceInfo **l = device_registry_list(reg, "pci", "dom0");
                        for (size_t k = 0; l && l[k] && !found; k++)
                                if (streq_ptr(l[k]->sbdf, sbdf))
                                        found = l[k];
                        if (!found)
                                continue;
                } else
                        continue;
                if (device_registry_attached_to(reg, found))
                        continue;
                record_attachment(m, name, found, opts);
        }
        xmlFreeDoc(doc);
}

static void resync_done(Manager *m, void *data) {
        ResyncReq *q = data;
        for (size_t k = 0; k < q->n; k++) {
                Domain *d = app_get_domain(m->app, q->names[k]);
                if (d && q->xml[k] && domain_is_running(d))
                        resync_one(m, d->name, q->xml[k]);
                free(q->xml[k]);
        }
        strv_free(q->names);
        free(q->xml);
        free(q);
}

void devices_vmm_resync(Manager *m) {
        ResyncReq *q;
        size_t i = 0;
        void *v;

        if (!devices_registry(m))
                return;
        q = new0(ResyncReq, 1);
        if (!q)
                return;
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                Domain *d = v;
                if (d->klass == QUBES_CLASS_ADMINVM || !domain_is_running(d))
                        continue;
                if (strv_extend(&q->names, d->name) < 0)
                        break;
                q->n++;
        }
        q->xml = new0(char *, q->n + 1);
        if (q->n == 0 || !q->xml || vmm_submit(m, resync_work, resync_done, q) < 0) {
                strv_free(q->names);
                free(q->xml);
                free(q);
        }
}
