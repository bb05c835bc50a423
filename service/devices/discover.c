/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dom0's own devices, as spec/devices.md §8 derives them on a host without Xen: PCI devices and
 * block devices (disks, partitions, loop devices) enumerated with sd-device, PCI names from the
 * pci.ids database through libpci (which also asks udev's hwdb where there is one), PCI ports in
 * upstream's path form. Works with or without udevd: sd-device reads sysfs and the uevent files
 * itself; only the udev database's extra properties are missing without it. */
#include <ctype.h>
#include <dirent.h>
#include <pci/pci.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <systemd/sd-device.h>

#include "devices/devices.h"
#include "util/log.h"
#include "util/strv.h"

/* ---- PCI paths ------------------------------------------------------------------------------ */

static bool parse_sbdf(const char *s, unsigned *seg, unsigned *bus, unsigned *dev, unsigned *fn) {
        int n = 0;
        if (sscanf(s, "%4x:%2x:%2x.%1x%n", seg, bus, dev, fn, &n) != 4 || (size_t) n != strlen(s))
                return false;
        return *dev < 32 && *fn < 8;
}

static int secondary_bus(const char *syspath, unsigned *ret) {
        _cleanup_(sd_device_unrefp) sd_device *d = NULL;
        const char *v;
        int r = sd_device_new_from_syspath(&d, syspath);
        if (r < 0)
                return r;
        r = sd_device_get_sysattr_value(d, "secondary_bus_number", &v);
        if (r < 0)
                return r;
        *ret = (unsigned) strtoul(v, NULL, 10);
        return 0;
}

char *pci_sbdf_to_path(const char *sbdf) {
        _cleanup_(sd_device_unrefp) sd_device *d = NULL;
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_free_ char *prefix = NULL;
        const char *syspath, *p;
        unsigned seg, bus, dev, fn, pseg, pbus, pdev, pfn;
        bool first = true;

        if (!parse_sbdf(sbdf, &seg, &bus, &dev, &fn))
                return NULL;
        if (sd_device_new_from_subsystem_sysname(&d, "pci", sbdf) < 0 || sd_device_get_syspath(d, &syspath) < 0)
                return NULL;
        /* /sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0: every component after the root is
         * one hop, the last one the device itself */
        p = strstr(syspath, "/pci");
        if (!p)
                return NULL;
        p = strchr(p + 1, '/');
        while (p && *p == '/') {
                const char *end = strchr(p + 1, '/');
                _cleanup_free_ char *comp = strndup(p + 1, end ? (size_t) (end - p - 1) : strlen(p + 1));
                if (!comp)
                        return NULL;
                if (!parse_sbdf(comp, &pseg, &pbus, &pdev, &pfn))
                        break; /* not a PCI device (a child object of the device): done */
                if (first) {
                        if (pseg != 0)
                                strbuf_printf(&b, "%04x_", pseg);
                        strbuf_printf(&b, "%02x_%02x.%x", pbus, pdev, pfn);
                } else {
                        unsigned sec = 0;
                        _cleanup_free_ char *bridge = strndup(syspath, (size_t) (p - syspath));
                        if (!bridge || secondary_bus(bridge, &sec) < 0)
                                return NULL;
                        strbuf_printf(&b, "-%02x_%02x.%x", (pbus - sec) & 0xff, pdev, pfn);
                }
                first = false;
                p = end;
        }
        if (first || b.oom)
                return NULL;
        return strbuf_steal(&b);
}

char *pci_path_to_sbdf(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        unsigned seg = 0, bus = 0, dev = 0, fn = 0;
        char *save = NULL, *hop;
        char sbdf[32] = "";
        bool first = true;

        if (!copy)
                return NULL;
        for (hop = strtok_r(copy, "-", &save); hop; hop = strtok_r(NULL, "-", &save)) {
                unsigned b, d, f;
                int n = 0;
                if (first) {
                        unsigned s;
                        if (sscanf(hop, "%4x_%2x_%2x.%1x%n", &s, &b, &d, &f, &n) == 4 && (size_t) n == strlen(hop))
                                seg = s;
                        else if (n = 0, sscanf(hop, "%2x_%2x.%1x%n", &b, &d, &f, &n) != 3 || (size_t) n != strlen(hop))
                                return NULL;
                        bus = b;
                } else {
                        /* the bus is relative to the previous bridge's secondary bus */
                        _cleanup_(sd_device_unrefp) sd_device *bridge = NULL;
                        const char *bp;
                        unsigned sec = 0;
                        if (sscanf(hop, "%2x_%2x.%1x%n", &b, &d, &f, &n) != 3 || (size_t) n != strlen(hop))
                                return NULL;
                        if (sd_device_new_from_subsystem_sysname(&bridge, "pci", sbdf) < 0 ||
                            sd_device_get_syspath(bridge, &bp) < 0 || secondary_bus(bp, &sec) < 0)
                                return NULL;
                        bus = (b + sec) & 0xff;
                }
                if (d >= 32 || f >= 8)
                        return NULL;
                dev = d;
                fn = f;
                snprintf(sbdf, sizeof sbdf, "%04x:%02x:%02x.%x", seg, bus, dev, fn);
                first = false;
        }
        return first ? NULL : strdup(sbdf);
}

char *pci_port_from_legacy(const char *id) {
        unsigned bus, dev, fn;
        char sep;
        int n = 0;
        char sbdf[32], *path;

        if (sscanf(id, "%2x%c%2x.%1x%n", &bus, &sep, &dev, &fn, &n) != 4 || (size_t) n != strlen(id) ||
            (sep != ':' && sep != '_') || strlen(id) != 7)
                return NULL;
        snprintf(sbdf, sizeof sbdf, "0000:%02x:%02x.%x", bus, dev, fn);
        path = pci_sbdf_to_path(sbdf);
        if (path && streq(path, id)) {
                free(path);
                return NULL;
        }
        if (path)
                return path;
        if (sep == '_')
                return NULL;
        /* not on this host: the path a device on a root bus would have */
        char *s = NULL;
        if (asprintf(&s, "%02x_%02x.%x", bus, dev, fn) < 0)
                return NULL;
        return s;
}

/* ---- names ---------------------------------------------------------------------------------- */

static struct pci_access *pci_names;
static bool pci_names_failed;

static void pci_names_error(char *msg, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void pci_names_error(char *msg, ...) {
        /* libpci calls this for what it cannot survive (out of memory): neither can we */
        va_list ap;
        va_start(ap, msg);
        vfprintf(stderr, msg, ap);
        va_end(ap);
        fputc('\n', stderr);
        abort();
}

static void pci_names_warning(char *msg, ...) {
        static bool logged;
        va_list ap;
        char buf[256];
        va_start(ap, msg);
        vsnprintf(buf, sizeof buf, msg, ap);
        va_end(ap);
        if (!logged) /* once: the database is read once */
                log_info("PCI names: %s", buf);
        logged = true;
}

static void pci_names_debug(char *msg, ...) {
}

static char *pci_name(int flags, unsigned vendor, unsigned device) {
        char buf[256], *n;

        if (!pci_names && !pci_names_failed) {
                pci_names = pci_alloc();
                if (!pci_names) {
                        pci_names_failed = true;
                        return NULL;
                }
                pci_names->error = pci_names_error;
                pci_names->warning = pci_names_warning;
                pci_names->debug = pci_names_debug;
        }
        if (!pci_names)
                return NULL;
        n = pci_lookup_name(pci_names, buf, sizeof buf, flags | PCI_LOOKUP_NO_NUMBERS, vendor, device);
        return n ? strdup(n) : NULL;
}

void devices_discover_done(void) {
        if (pci_names)
                pci_cleanup(pci_names);
        pci_names = NULL;
}

/* A value that the protocol can carry: characters outside its set become '_'. */
static char *sanitize_value(const char *s) {
        char *out = strdup(s);
        if (!out)
                return NULL;
        for (char *c = out; *c; c++)
                if (!device_value_char_ok((unsigned char) *c))
                        *c = '_';
        /* sysfs pads model names with spaces */
        for (size_t n = strlen(out); n > 0 && out[n - 1] == ' '; n--)
                out[n - 1] = 0;
        return out;
}

/* Upstream keeps block descriptions to letters, digits and ()+,-.:=_/ and space. */
static char *sanitize_desc(const char *s) {
        char *out = sanitize_value(s);
        if (!out)
                return NULL;
        for (char *c = out; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("()+,-.:=_/ ", *c))
                        *c = '_';
        return out;
}

/* [A-Za-z0-9._-], others '_' (upstream's sanitising of PCI ids). */
static void sanitize_id(char *s) {
        for (char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("._-", *c))
                        *c = '_';
}

static int data_add(DeviceInfo *i, const char *k, const char *v) {
        if (strv_extend(&i->data, k) < 0 || strv_extend(&i->data, v) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- PCI ------------------------------------------------------------------------------------- */

static int pci_info(sd_device *d, DeviceInfo **ret) {
        const char *sysname, *syspath, *v;
        _cleanup_free_ char *path = NULL, *vid = NULL, *pid = NULL;
        _cleanup_(device_info_freep) DeviceInfo *i = NULL;
        unsigned vendor = 0, device = 0, klass = 0;

        if (sd_device_get_sysname(d, &sysname) < 0 || sd_device_get_syspath(d, &syspath) < 0)
                return 0;
        path = pci_sbdf_to_path(sysname);
        if (!path)
                return 0;
        if (sd_device_get_sysattr_value(d, "vendor", &v) >= 0)
                vendor = (unsigned) strtoul(v, NULL, 16);
        if (sd_device_get_sysattr_value(d, "device", &v) >= 0)
                device = (unsigned) strtoul(v, NULL, 16);
        if (sd_device_get_sysattr_value(d, "class", &v) >= 0)
                klass = (unsigned) strtoul(v, NULL, 16);

        i = device_info_new("pci", "dom0", path);
        if (!i)
                return -ENOMEM;
        if (asprintf(&vid, "%04x", vendor) < 0 || asprintf(&pid, "%04x", device) < 0)
                return -ENOMEM;
        sanitize_id(vid);
        sanitize_id(pid);
        free(i->interfaces);
        if (asprintf(&i->interfaces, "p%06x", klass & 0xffffff) < 0) {
                i->interfaces = NULL;
                return -ENOMEM;
        }
        if (asprintf(&i->device_id, "%s:%s::%s", vid, pid, i->interfaces) < 0) {
                i->device_id = NULL;
                return -ENOMEM;
        }
        _cleanup_free_ char *vname = pci_name(PCI_LOOKUP_VENDOR, vendor, 0);
        _cleanup_free_ char *pname = pci_name(PCI_LOOKUP_DEVICE, vendor, device);
        if (vname && !(i->vendor = sanitize_value(vname)))
                return -ENOMEM;
        if (pname && !(i->product = sanitize_value(pname)))
                return -ENOMEM;
        i->syspath = strdup(syspath);
        i->sbdf = strdup(sysname);
        if (!i->syspath || !i->sbdf || data_add(i, "sbdf", sysname) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(i);
        return 1;
}

/* ---- block ------------------------------------------------------------------------------------ */

typedef struct InUse {
        dev_t *mounted;
        size_t n_mounted;
        char **swaps; /* device nodes */
} InUse;

static void in_use_done(InUse *u) {
        free(u->mounted);
        strv_free(u->swaps);
}

static void in_use_load(InUse *u) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];

        while (f && fgets(line, sizeof line, f)) {
                unsigned maj, min;
                /* id parent major:minor root mountpoint … */
                if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2)
                        continue;
                dev_t *n = realloc(u->mounted, (u->n_mounted + 1) * sizeof(dev_t));
                if (!n)
                        break;
                u->mounted = n;
                u->mounted[u->n_mounted++] = makedev(maj, min);
        }
        _cleanup_fclose_ FILE *s = fopen("/proc/swaps", "re");
        bool header = true;
        while (s && fgets(line, sizeof line, s)) {
                char *sp = strpbrk(line, " \t");
                if (header) {
                        header = false;
                        continue;
                }
                if (sp)
                        *sp = 0;
                (void) strv_extend(&u->swaps, line);
        }
}

static bool has_holders(const char *syspath) {
        _cleanup_free_ char *p = NULL;
        DIR *dir;
        struct dirent *de;
        bool any = false;

        if (asprintf(&p, "%s/holders", syspath) < 0)
                return true;
        dir = opendir(p);
        if (!dir)
                return false;
        while (!any && (de = readdir(dir)))
                any = de->d_name[0] != '.';
        closedir(dir);
        return any;
}

/* Mounted, a swap area, or held by another block device (device-mapper, md, …): not offered. */
static bool device_in_use(const InUse *u, sd_device *d) {
        const char *syspath, *devname;
        dev_t devnum;

        if (sd_device_get_devnum(d, &devnum) >= 0)
                for (size_t k = 0; k < u->n_mounted; k++)
                        if (u->mounted[k] == devnum)
                                return true;
        if (sd_device_get_devname(d, &devname) >= 0 && strv_contains(u->swaps, devname))
                return true;
        return sd_device_get_syspath(d, &syspath) >= 0 && has_holders(syspath);
}

static bool block_name_ok(const char *name) {
        size_t n = strlen(name);
        if (n < 1 || n > 12)
                return false;
        for (const char *c = name; *c; c++)
                if (!islower((unsigned char) *c) && !isdigit((unsigned char) *c) && *c != '-')
                        return false;
        return true;
}

/* The trailing number of a kernel name, or "None" (upstream prints Python's None). */
static const char *trailing_number(const char *name) {
        const char *p = name + strlen(name);
        while (p > name && isdigit((unsigned char) p[-1]))
                p--;
        return *p ? p : "None";
}

static char *attr_trimmed(sd_device *d, const char *attr) {
        const char *v;
        if (sd_device_get_sysattr_value(d, attr, &v) < 0 || isempty(v))
                return NULL;
        char *s = sanitize_value(v);
        if (s && !*s)
                s = mfree(s);
        return s;
}

static int block_info(sd_device *d, const InUse *u, DeviceInfo **ret) {
        const char *sysname, *syspath, *devtype = NULL, *v, *devname = NULL;
        _cleanup_(device_info_freep) DeviceInfo *i = NULL;
        sd_device *parent = NULL;
        uint64_t sectors = 0;

        if (sd_device_get_sysname(d, &sysname) < 0 || sd_device_get_syspath(d, &syspath) < 0)
                return 0;
        if (!block_name_ok(sysname))
                return 0;
        (void) sd_device_get_devtype(d, &devtype);
        (void) sd_device_get_devname(d, &devname);
        if (sd_device_get_sysattr_value(d, "size", &v) >= 0)
                sectors = strtoull(v, NULL, 10);
        /* an empty drive, a loop device without a file */
        if (sectors == 0 || !devname)
                return 0;
        if (device_in_use(u, d))
                return 0;
        bool partition = streq_ptr(devtype, "partition");
        if (partition && sd_device_get_parent_with_subsystem_devtype(d, "block", "disk", &parent) < 0)
                parent = NULL;

        i = device_info_new("block", "dom0", sysname);
        if (!i)
                return -ENOMEM;
        i->size = sectors * 512;
        i->read_only = sd_device_get_sysattr_value(d, "ro", &v) >= 0 && streq(v, "1");
        i->syspath = strdup(syspath);
        i->devnode = strdup(devname);
        free(i->interfaces);
        i->interfaces = strdup("b******");
        if (!i->syspath || !i->devnode || !i->interfaces)
                return -ENOMEM;

        const char *parent_name = NULL;
        _cleanup_free_ char *parent_id = NULL;
        if (parent && sd_device_get_sysname(parent, &parent_name) >= 0 && block_name_ok(parent_name)) {
                /* the disk's own identity comes first: <parent id>:<number> */
                if (asprintf(&parent_id, ":%s", trailing_number(parent_name)) < 0)
                        return -ENOMEM;
                i->parent_port_id = strdup(parent_name);
                i->parent_devclass = strdup("block");
                if (!i->parent_port_id || !i->parent_devclass)
                        return -ENOMEM;
        }
        if (asprintf(&i->device_id, "%s:%s", strempty(parent_id), trailing_number(sysname)) < 0) {
                i->device_id = NULL;
                return -ENOMEM;
        }

        if (startswith(sysname, "loop")) {
                /* a loop device is its file */
                if (sd_device_get_sysattr_value(d, "loop/backing_file", &v) >= 0 && !isempty(v) &&
                    !(i->name = sanitize_desc(v)))
                        return -ENOMEM;
        } else if (partition) {
                if (sd_device_get_property_value(d, "PARTNAME", &v) >= 0 && !isempty(v) &&
                    !(i->name = sanitize_desc(v)))
                        return -ENOMEM;
        } else {
                i->vendor = attr_trimmed(d, "device/vendor");
                i->name = attr_trimmed(d, "device/model");
                i->serial = attr_trimmed(d, "serial") ?: attr_trimmed(d, "device/serial");
        }
        *ret = TAKE_PTR(i);
        return 1;
}

/* ---- enumeration ---------------------------------------------------------------------------- */

int devices_discover(const char *devclass, DeviceInfo ***ret, size_t *ret_n) {
        _cleanup_(sd_device_enumerator_unrefp) sd_device_enumerator *e = NULL;
        _cleanup_(in_use_done) InUse u = {};
        DeviceInfo **l = new0(DeviceInfo *, 1);
        size_t n = 0;
        bool pci = streq(devclass, "pci");
        int r;

        if (!l)
                return -ENOMEM;
        r = sd_device_enumerator_new(&e);
        if (r >= 0)
                r = sd_device_enumerator_add_match_subsystem(e, pci ? "pci" : "block", true);
        if (r >= 0)
                r = sd_device_enumerator_allow_uninitialized(e); /* no udevd: nothing is "initialized" */
        if (r < 0) {
                free(l);
                return r;
        }
        if (!pci)
                in_use_load(&u);

        /* a disk with a partition in use is in use itself */
        _cleanup_strv_free_ char **busy_disks = NULL;
        if (!pci)
                for (sd_device *d = sd_device_enumerator_get_device_first(e); d;
                     d = sd_device_enumerator_get_device_next(e)) {
                        const char *devtype, *pname;
                        sd_device *parent;
                        if (sd_device_get_devtype(d, &devtype) < 0 || !streq(devtype, "partition"))
                                continue;
                        if (!device_in_use(&u, d))
                                continue;
                        if (sd_device_get_parent_with_subsystem_devtype(d, "block", "disk", &parent) >= 0 &&
                            sd_device_get_sysname(parent, &pname) >= 0)
                                (void) strv_extend(&busy_disks, pname);
                }

        for (sd_device *d = sd_device_enumerator_get_device_first(e); d; d = sd_device_enumerator_get_device_next(e)) {
                DeviceInfo *i = NULL;
                const char *sysname;
                if (!pci && sd_device_get_sysname(d, &sysname) >= 0) {
                        /* the disk, and its other partitions too: it is the system's */
                        const char *devtype, *pname;
                        sd_device *parent;
                        if (strv_contains(busy_disks, sysname))
                                continue;
                        if (sd_device_get_devtype(d, &devtype) >= 0 && streq(devtype, "partition") &&
                            sd_device_get_parent_with_subsystem_devtype(d, "block", "disk", &parent) >= 0 &&
                            sd_device_get_sysname(parent, &pname) >= 0 && strv_contains(busy_disks, pname))
                                continue;
                }
                r = pci ? pci_info(d, &i) : block_info(d, &u, &i);
                if (r < 0) {
                        device_info_array_free(l);
                        return r;
                }
                if (r == 0)
                        continue;
                DeviceInfo **nl = realloc(l, (n + 2) * sizeof(DeviceInfo *));
                if (!nl) {
                        device_info_free(i);
                        device_info_array_free(l);
                        return -ENOMEM;
                }
                l = nl;
                l[n++] = i;
                l[n] = NULL;
        }
        /* pci.ids, parsed, is a few MiB of the heap: read again at the next PCI scan (a
         * hotplug), not kept for the daemon's lifetime */
        if (pci && pci_names)
                pci_free_name_list(pci_names);
        *ret = l;
        if (ret_n)
                *ret_n = n;
        return 0;
}
