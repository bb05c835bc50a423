/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "auth.h"
#include "manager.h"
#include "model/model.h"
#include "qubes-error.h"

/* Send an error reply for a Qubes error: name org.qubes_os.Admin1.Error.<Class>, body
 * (s message, s format, as fields). With --debug the message carries the traceback after a
 * blank line. Returns 1 (the call is handled) or a negative error. */
int bus_reply_qerror(Manager *m, sd_bus_message *call, const QError *e);
/* Convert a QError to an sd_bus_error (for property setters, which cannot send a body). */
int bus_set_qerror(sd_bus_error *error, const QError *e);

/* The authorization gate for a method handler: 1 to go on; 0 when the call has been answered
 * (an error reply) or is held until polkit answers (the handler then returns 1 to sd-bus); a
 * negative error otherwise. */
int bus_gate(Manager *m, sd_bus_message *msg, AuthAction action, Domain *d);

/* D-Bus signature of a property's typed representation. */
const char *prop_dbus_signature(const PropDef *p);
/* Append a property value (Admin API string form, NULL = None) in its D-Bus type. */
int bus_append_prop_value(sd_bus_message *reply, const PropDef *p, const PropValue *v, App *app);
/* Read a typed D-Bus property value and give its Admin API string form. */
int bus_read_prop_value(sd_bus_message *value, const PropDef *p, App *app, char **ret, sd_bus_error *error);

/* Common property methods for the Manager (d == NULL) and qubes. */
int bus_method_list_properties(Manager *m, Domain *d, sd_bus_message *msg);
int bus_method_get_property(Manager *m, Domain *d, sd_bus_message *msg);
int bus_method_get_all_properties(Manager *m, Domain *d, sd_bus_message *msg);
/* Append the a(ssbs) array GetAllProperties replies with, for one holder (d == NULL: global). */
int bus_append_all_properties(sd_bus_message *reply, Manager *m, Domain *d);
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
                SD_BUS_METHOD_WITH_ARGS("GetPropertyDefault", SD_BUS_ARGS("s", name),                                 \
                                        SD_BUS_RESULT("b", has_default, "s", type, "s", value),                       \
                                        prefix##_get_property_default, 0),                                            \
                SD_BUS_METHOD_WITH_ARGS("GetPropertyHelp", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", help),          \
                                        prefix##_get_property_help, 0),                                               \
                SD_BUS_METHOD_WITH_ARGS("SetProperty", SD_BUS_ARGS("s", name, "s", value), SD_BUS_NO_RESULT,          \
                                        prefix##_set_property, SD_BUS_VTABLE_UNPRIVILEGED),                           \
                SD_BUS_METHOD_WITH_ARGS("ResetProperty", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,                    \
                                        prefix##_reset_property, SD_BUS_VTABLE_UNPRIVILEGED)

/* The "Event" signal, shared by the Manager and Domain interfaces. */
#define EVENT_SIGNAL_VTABLE \
        SD_BUS_SIGNAL_WITH_ARGS("Event", SD_BUS_ARGS("t", sequence, "s", subject, "s", name, "a(ss)", arguments), 0)

/* Build a vtable of typed properties (plus extra entries, then END). Writable unless the
 * property is write-once (CONST), stateless or read-only. Free with free(). */
sd_bus_vtable *bus_build_property_vtable(const PropDef *const *props, size_t n_props, sd_bus_property_get_t get,
                                         sd_bus_property_set_t set, const sd_bus_vtable *extra, size_t n_extra);
