/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-error.h"
#include "label-dbus.h"
#include "manager.h"
#include "util/log.h"
#include "util/strv.h"

static int label_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                      sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;
        int r = sd_bus_path_decode(path, QUBESD_LABEL_PREFIX, &name);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < m->app->n_labels; i++)
                if (streq(m->app->labels[i]->name, name)) {
                        *found = m->app->labels[i];
                        return 1;
                }
        return 0;
}

static int label_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = new0(char *, m->app->n_labels + 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->app->n_labels; i++) {
                l[i] = label_bus_path(m->app->labels[i]);
                if (!l[i])
                        return -ENOMEM;
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

static int property_get_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Label *l = userdata;
        return sd_bus_message_append(reply, "s", l->name);
}

static int property_get_index(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Label *l = userdata;
        return sd_bus_message_append(reply, "i", l->index);
}

static int property_get_color(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Label *l = userdata;
        return sd_bus_message_append(reply, "s", l->color);
}

static int property_get_icon(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Label *l = userdata;
        _cleanup_free_ char *icon = NULL;
        if (asprintf(&icon, "appvm-%s", l->name) < 0)
                return -ENOMEM;
        return sd_bus_message_append(reply, "s", icon);
}

static const sd_bus_vtable label_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Index", "i", property_get_index, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Color", "s", property_get_color, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Icon", "s", property_get_icon, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

const BusObjectImplementation label_object = {
        .path = QUBESD_LABEL_PREFIX,
        .interface = QUBESD_IFACE_LABEL,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = label_vtable, .find = label_find }),
        .node_enumerator = label_enumerate,
};
