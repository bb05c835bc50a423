/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt domain XML of a qube, built with libxml2 (never by pasting strings, so a value
 * can never break out of its element). Upstream Qubes renders a Jinja template for Xen; here
 * one builder serves the three drivers we run on:
 *   test  - libvirt's in-process test driver (tests, demo): type 'test'
 *   qemu  - real guests under QEMU: type 'qemu' (TCG; a KVM guest hangs on the CI machines)
 *   xen   - real Qubes: type 'xen', os type from virt_mode
 * The domain is transient: created at Start with virDomainCreateXML, gone when it stops. */
#include "domain-xml.h"

#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <sys/stat.h>

#include "devices-vmm.h"

static xmlNodePtr child(xmlNodePtr parent, const char *name, const char *text) {
        return xmlNewTextChild(parent, NULL, (const xmlChar *) name, (const xmlChar *) text);
}

static void attr(xmlNodePtr node, const char *name, const char *value) {
        xmlNewProp(node, (const xmlChar *) name, (const xmlChar *) value);
}

static bool file_exists(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Where the storage work will add <disk> elements (root, private, volatile, kernel modules):
 * until then a qube boots from its kernel and initramfs alone. Its assigned devices come here. */
static int add_disks(Manager *m, Domain *d, const char *driver, xmlNodePtr devices, QError *err) {
        return devices_domain_xml(m, d, driver, devices, err);
}

static void add_console(Manager *m, Domain *d, const char *driver, xmlNodePtr devices) {
        xmlNodePtr serial, console, target;

        if (streq(driver, "xen")) {
                console = child(devices, "console", NULL);
                attr(console, "type", "pty");
                target = child(console, "target", NULL);
                attr(target, "type", "xen");
                attr(target, "port", "0");
                return;
        }
        /* A pty (admin.vm.Console reads its path from the live XML) that also logs to a file,
         * so that the guest's console output can be read after the fact. */
        serial = child(devices, "serial", NULL);
        attr(serial, "type", "pty");
        if (streq(driver, "qemu")) {
                _cleanup_free_ char *log = NULL;
                if (asprintf(&log, "%s/vm-logs/%s-console.log", d->app->state_dir, d->name) >= 0) {
                        xmlNodePtr l = child(serial, "log", NULL);
                        attr(l, "file", log);
                        attr(l, "append", "off");
                }
        }
        target = child(serial, "target", NULL);
        attr(target, "port", "0");
        console = child(devices, "console", NULL);
        attr(console, "type", "pty");
        target = child(console, "target", NULL);
        attr(target, "type", "serial");
        attr(target, "port", "0");
}

char *domain_libvirt_xml(Manager *m, Domain *d, const char *driver, QError *err) {
        _cleanup_free_ char *kernel = domain_property_string(d, "kernel");
        _cleanup_free_ char *kernelopts = domain_property_string(d, "kernelopts");
        _cleanup_free_ char *virt_mode = domain_property_string(d, "virt_mode");
        int64_t memory = domain_property_int(d, "memory", 400);
        int64_t maxmem = domain_property_int(d, "maxmem", 0);
        int64_t vcpus = domain_property_int(d, "vcpus", 2);
        char buf[64];
        xmlDocPtr doc;
        xmlNodePtr root, os, type, devices, features;
        xmlChar *out = NULL;
        int len = 0;
        char *ret = NULL;

        if (memory <= 0)
                memory = 400;
        if (vcpus <= 0)
                vcpus = 1;
        /* Balancing (maxmem > memory) needs a balloon the guest drives: only on Xen. */
        if (!streq(driver, "xen") || maxmem < memory)
                maxmem = memory;

        doc = xmlNewDoc((const xmlChar *) "1.0");
        if (!doc)
                return NULL;
        root = xmlNewNode(NULL, (const xmlChar *) "domain");
        xmlDocSetRootElement(doc, root);
        attr(root, "type", streq(driver, "test") ? "test" : streq(driver, "xen") ? "xen" : "qemu");
        child(root, "name", d->name);
        child(root, "uuid", d->uuid);
        snprintf(buf, sizeof buf, "%" PRId64, maxmem);
        attr(child(root, "memory", buf), "unit", "MiB");
        snprintf(buf, sizeof buf, "%" PRId64, memory);
        attr(child(root, "currentMemory", buf), "unit", "MiB");
        snprintf(buf, sizeof buf, "%" PRId64, vcpus);
        attr(child(root, "vcpu", buf), "placement", "static");

        os = child(root, "os", NULL);
        if (streq(driver, "xen")) {
                const char *vm = virt_mode ?: "pvh";
                type = child(os, "type", streq(vm, "hvm") ? "hvm" : streq(vm, "pv") ? "linux" : "xenpvh");
        } else {
                type = child(os, "type", "hvm");
                attr(type, "arch", "x86_64");
                if (streq(driver, "qemu"))
                        attr(type, "machine", "pc");
        }
        if (!isempty(kernel)) {
                _cleanup_free_ char *dir = NULL, *vmlinuz = NULL, *initramfs = NULL, *cmdline = NULL;
                if (asprintf(&dir, "%s/vm-kernels/%s", d->app->state_dir, kernel) < 0 ||
                    asprintf(&vmlinuz, "%s/vmlinuz", dir) < 0 || asprintf(&initramfs, "%s/initramfs", dir) < 0)
                        goto finish;
                child(os, "kernel", vmlinuz);
                if (file_exists(initramfs))
                        child(os, "initrd", initramfs);
                /* the root device as each platform names its first disk; the storage work
                 * attaches it there */
                if (asprintf(&cmdline, "%s%s%s",
                             streq(driver, "xen") ? "root=/dev/mapper/dmroot ro nomodeset console=hvc0 "
                                                    "rd_NO_PLYMOUTH rd.plymouth.disable clocksource=tsc "
                                                    "xen_scrub_pages=0"
                                                  : "root=/dev/vda ro console=ttyS0",
                             isempty(kernelopts) ? "" : " ", strempty(kernelopts)) < 0)
                        goto finish;
                child(os, "cmdline", cmdline);
        } else if (!streq(driver, "xen")) {
                xmlNodePtr boot = child(os, "boot", NULL);
                attr(boot, "dev", "hd");
        }

        features = child(root, "features", NULL);
        if (!streq(driver, "test")) {
                child(features, "acpi", NULL);
                child(features, "apic", NULL);
        }
        if (streq(driver, "xen"))
                child(features, "pae", NULL);

        /* A stopped qube is gone from libvirt (transient): nothing to clean up, and a reboot
         * goes through Start again like upstream. */
        child(root, "on_poweroff", "destroy");
        child(root, "on_reboot", "destroy");
        child(root, "on_crash", "destroy");

        devices = child(root, "devices", NULL);
        if (add_disks(m, d, driver, devices, err) < 0)
                goto finish;
        add_console(m, d, driver, devices);
        if (streq(driver, "qemu")) {
                /* no graphics, no default USB controller or balloon surprises */
                xmlNodePtr mb = child(devices, "memballoon", NULL);
                attr(mb, "model", "none");
        }

        xmlDocDumpFormatMemoryEnc(doc, &out, &len, "UTF-8", 1);
        if (out)
                ret = strndup((const char *) out, (size_t) len);
finish:
        xmlFree(out);
        xmlFreeDoc(doc);
        return ret;
}

char *domain_xml_console_tty(const char *xml) {
        xmlDocPtr doc;
        xmlXPathContextPtr ctx = NULL;
        xmlXPathObjectPtr obj = NULL;
        char *ret = NULL;

        /* libvirt's own XML: no network, no entities, no DTD */
        doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc)
                return NULL;
        ctx = xmlXPathNewContext(doc);
        if (ctx)
                obj = xmlXPathEvalExpression((const xmlChar *) "string(/domain/devices/console/@tty)", ctx);
        if (obj && obj->type == XPATH_STRING)
                ret = strdup(obj->stringval ? (const char *) obj->stringval : "");
        xmlXPathFreeObject(obj);
        xmlXPathFreeContext(ctx);
        xmlFreeDoc(doc);
        return ret;
}
