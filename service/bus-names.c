/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-names.h"

#include <systemd/sd-bus.h>

char *domain_bus_path(const Domain *d) {
        char *p = NULL;
        return sd_bus_path_encode(QUBESD_DOMAIN_PREFIX, d->name, &p) < 0 ? NULL : p;
}

char *label_bus_path(const Label *l) {
        char *p = NULL;
        return sd_bus_path_encode(QUBESD_LABEL_PREFIX, l->name, &p) < 0 ? NULL : p;
}

char *pool_bus_path(const char *name) {
        char *p = NULL;
        return sd_bus_path_encode(QUBESD_POOL_PREFIX, name, &p) < 0 ? NULL : p;
}

char *volume_bus_path(const char *qube, const char *volume) {
        char *p = NULL;
        return sd_bus_path_encode_many(&p, QUBESD_VOLUME_PATH_TEMPLATE, qube, volume) < 0 ? NULL : p;
}

char *device_bus_path(const char *devclass, const char *backend, const char *port_id) {
        char *p = NULL;
        return sd_bus_path_encode_many(&p, QUBESD_DEVICE_PATH_TEMPLATE, devclass, backend, port_id) < 0 ? NULL : p;
}

const char *bus_path_encode_buf(const char *prefix, const char *name, char *buf, size_t size) {
        static const char hex[] = "0123456789abcdef";
        size_t k = strlen(prefix);

        /* sd_bus_path_encode()'s escaping without its allocation: every reference to a qube or a
         * label in a snapshot (Netvm, Template, Label, …) comes here. Everything but [A-Za-z],
         * and [0-9] after the first character, becomes _XX; the empty name is "_". */
        if (k + 2 + 3 * strlen(name) > size)
                return NULL;
        memcpy(buf, prefix, k);
        buf[k++] = '/';
        if (!*name)
                buf[k++] = '_';
        for (const char *c = name; *c; c++) {
                unsigned char ch = (unsigned char) *c;
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (c > name && ch >= '0' && ch <= '9'))
                        buf[k++] = (char) ch;
                else {
                        buf[k++] = '_';
                        buf[k++] = hex[ch >> 4];
                        buf[k++] = hex[ch & 15];
                }
        }
        buf[k] = 0;
        return buf;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static struct {
        const char *path;
        Domain *d;
} remembered;

void domain_of_bus_path_remember(const char *path, Domain *d) {
        remembered.path = path;
        remembered.d = d;
}

Domain *domain_of_bus_path(App *app, const char *path) {
        if (path && path == remembered.path)
                return remembered.d;
        const char *rest = startswith(path, QUBESD_DOMAIN_PREFIX "/");
        _cleanup_free_ char *name = NULL;

        /* a volume's path (…/domain/<qube>/volume/<name>) is not a qube's: no decoding needed */
        if (!rest || !*rest || strchr(rest, '/'))
                return NULL;
        /* sd_bus_path_decode()'s unescaping without its allocation: every call on a qube's
         * object and every interface of it in a snapshot comes here */
        char buf[128];
        size_t k = 0;
        for (const char *c = rest; *c && k + 1 < sizeof buf; k++) {
                int hi, lo;
                if (c[0] == '_' && c[1] && c[2] && (hi = unhex(c[1])) >= 0 && (lo = unhex(c[2])) >= 0) {
                        buf[k] = (char) (hi << 4 | lo);
                        c += 3;
                } else
                        buf[k] = *c++;
        }
        if (k + 1 < sizeof buf) {
                buf[k] = 0;
                if (streq(rest, "_"))
                        buf[0] = 0; /* the empty name */
                return app_get_domain_announced(app, buf);
        }
        if (sd_bus_path_decode(path, QUBESD_DOMAIN_PREFIX, &name) <= 0)
                return NULL;
        return app_get_domain_announced(app, name);
}

Domain *domain_of_bus_subpath(App *app, const char *path) {
        const char *rest = startswith(path, QUBESD_DOMAIN_PREFIX "/");
        _cleanup_free_ char *node = NULL;

        if (!rest || !*rest)
                return NULL;
        node = strndup(path, (size_t) (rest - path) + strcspn(rest, "/"));
        return node ? domain_of_bus_path(app, node) : NULL;
}

static const char *const class_interfaces[_QUBES_CLASS_MAX] = {
        [QUBES_CLASS_ADMINVM] = "org.qubes_os.Admin1.AdminVM",
        [QUBES_CLASS_APPVM] = "org.qubes_os.Admin1.AppVM",
        [QUBES_CLASS_DISPVM] = "org.qubes_os.Admin1.DispVM",
        [QUBES_CLASS_REMOTEVM] = "org.qubes_os.Admin1.RemoteVM",
        [QUBES_CLASS_STANDALONEVM] = "org.qubes_os.Admin1.StandaloneVM",
        [QUBES_CLASS_TEMPLATEVM] = "org.qubes_os.Admin1.TemplateVM",
};

const char *qubes_class_interface(QubesClass c) {
        return c >= 0 && c < _QUBES_CLASS_MAX ? class_interfaces[c] : NULL;
}

int qubes_class_of_interface(const char *name) {
        for (int c = 0; c < _QUBES_CLASS_MAX; c++)
                if (streq(class_interfaces[c], name))
                        return c;
        return -1;
}

const char *domain_prop_interface(const PropDef *p, QubesClass c) {
        if (p->classes == CLASSES_ALL)
                return QUBESD_IFACE_DOMAIN;
        if (((1u << c) & CLASSES_QUBESVM) && (p->classes & CLASSES_QUBESVM) == CLASSES_QUBESVM)
                return QUBESD_IFACE_QUBESVM;
        return class_interfaces[c];
}
