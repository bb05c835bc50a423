/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Qubes properties on D-Bus, for the Manager (global properties, d == NULL) and qubes alike:
 * their typed D-Bus form, the vtables derived from the property table (model/props.c), the
 * property methods (ListProperties, GetProperty, …) and the one sequence that changes a
 * property. */

#include <systemd/sd-bus.h>

#include "model/model.h"

typedef struct Manager Manager;

/* D-Bus signature of a property's typed representation. */
const char *prop_dbus_signature(const PropDef *p);
/* Append a string as sd_bus_message_append_basic(m, 's', s) does. One of ASCII only (names,
 * and nearly every value) is copied in without sd-bus's UTF-8 check, which makes a function call
 * per character (some 400,000 of them in a snapshot of 1,000 qubes); any other goes through
 * sd-bus and its check. */
int bus_append_string(sd_bus_message *m, const char *s);
/* Append a property value (Admin API string form, NULL = None) in its D-Bus type. */
int bus_append_prop_value(sd_bus_message *reply, const PropDef *p, const PropValue *v, App *app);
/* Read a typed D-Bus property value and give its Admin API string form. */
int bus_read_prop_value(sd_bus_message *value, const PropDef *p, App *app, char **ret, sd_bus_error *error);

/* A change of one property: of qube d, or a global one when d is NULL. */
typedef struct PropertyChange {
        Domain *d;
        const char *name;      /* the Qubes name (SetProperty, ResetProperty), looked up after authorization; or */
        const PropDef *p;      /* the property itself (Properties.Set) */
        const char *value;     /* the new value in its Admin API string form; NULL (and no typed): reset */
        sd_bus_message *typed; /* Properties.Set: the new value in its D-Bus type, read after authorization */
} PropertyChange;

/* The one sequence that changes a property (Domain and Manager SetProperty and ResetProperty,
 * org.freedesktop.DBus.Properties.Set): authorize (AUTH_CHANGE), read the value, check the value
 * constraints, set or reset it in the model, save qubes.xml. Returns 1 when done; 0 when the call
 * waits for polkit (it runs again from the start when the answer comes; a Properties.Set, which
 * cannot wait, is refused instead); a negative error with e set (reply with it), or with error
 * set (an invalid typed value), or neither (a plain errno). */
int property_write(Manager *m, sd_bus_message *msg, const PropertyChange *c, QError *e, sd_bus_error *error);

/* The property methods, for the Manager (d == NULL) and qubes. */
int bus_method_list_properties(Manager *m, Domain *d, sd_bus_message *msg);
int bus_method_get_property(Manager *m, Domain *d, sd_bus_message *msg);
int bus_method_get_all_properties(Manager *m, Domain *d, sd_bus_message *msg);
/* admin.*.property.GetAll's payload as bytes (GetAllPropertiesText) */
int bus_method_get_all_properties_text(Manager *m, Domain *d, sd_bus_message *msg);
/* Append the a(ssbs) array GetAllProperties replies with, for one holder (d == NULL: global). */
int bus_append_all_properties(sd_bus_message *reply, Manager *m, Domain *d);
/* The same, only the properties whose flag in only (one per domain_props[] entry) is set; NULL:
 * all. */
int bus_append_properties(sd_bus_message *reply, Manager *m, Domain *d, const uint8_t *only);
int bus_method_get_property_default(Manager *m, Domain *d, sd_bus_message *msg);
int bus_method_get_property_help(Manager *m, Domain *d, sd_bus_message *msg);
int bus_method_set_property(Manager *m, Domain *d, sd_bus_message *msg);
int bus_method_reset_property(Manager *m, Domain *d, sd_bus_message *msg);

#define PROPERTY_METHODS_VTABLE(prefix)                                                                               \
        SD_BUS_METHOD_WITH_ARGS("ListProperties", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", names),                         \
                                prefix##_list_properties, 0),                                                         \
                SD_BUS_METHOD_WITH_ARGS("GetProperty", SD_BUS_ARGS("s", name),                                        \
                                        SD_BUS_RESULT("s", type, "b", is_default, "s", value), prefix##_get_property, \
                                        0),                                                                           \
                SD_BUS_METHOD_WITH_ARGS("GetAllProperties", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssbs)", properties),     \
                                        prefix##_get_all_properties, 0),                                              \
                SD_BUS_METHOD_WITH_ARGS("GetAllPropertiesText", SD_BUS_NO_ARGS, SD_BUS_RESULT("ay", text),            \
                                        prefix##_get_all_properties_text, 0),                                         \
                SD_BUS_METHOD_WITH_ARGS("GetPropertyDefault", SD_BUS_ARGS("s", name),                                 \
                                        SD_BUS_RESULT("b", has_default, "s", type, "s", value),                       \
                                        prefix##_get_property_default, 0),                                            \
                SD_BUS_METHOD_WITH_ARGS("GetPropertyHelp", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", help),          \
                                        prefix##_get_property_help, 0),                                               \
                SD_BUS_METHOD_WITH_ARGS("SetProperty", SD_BUS_ARGS("s", name, "s", value), SD_BUS_NO_RESULT,          \
                                        prefix##_set_property, SD_BUS_VTABLE_UNPRIVILEGED),                           \
                SD_BUS_METHOD_WITH_ARGS("ResetProperty", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,                    \
                                        prefix##_reset_property, SD_BUS_VTABLE_UNPRIVILEGED)

/* Build a vtable of typed properties (plus extra entries, then END). Writable unless the
 * property is write-once (CONST), stateless or read-only. Free with free(). */
sd_bus_vtable *bus_build_property_vtable(const PropDef *const *props, size_t n_props, sd_bus_property_get_t get,
                                         sd_bus_property_set_t set, const sd_bus_vtable *extra, size_t n_extra);
