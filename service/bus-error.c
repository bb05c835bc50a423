/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-error.h"

#include "manager.h"

int bus_reply_qerror(Manager *m, sd_bus_message *call, const QError *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *msg = qerror_message(e);
        _cleanup_free_ char *full = NULL;
        int r;

        if (!msg)
                return -ENOMEM;
        if (m && m->config.debug && e->traceback) {
                if (asprintf(&full, "%s\n\n%s", msg, e->traceback) < 0)
                        return -ENOMEM;
        }
        sd_bus_error error = SD_BUS_ERROR_MAKE_CONST(qubes_error_dbus_name(e->code), full ?: msg);
        /* Only clients that asked get the longer body: GDBus turns any error whose body is not a
         * single string into "Error return with body of type …". */
        Caller *c = m ? manager_caller(m, call) : NULL;
        if (!c || !c->error_details)
                return sd_bus_reply_method_error(call, &error);
        r = sd_bus_message_new_method_error(call, &reply, &error);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "s", strempty(e->format));
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(reply, e->fields);
        if (r < 0)
                return r;
        r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        return 1;
}

int bus_set_qerror(sd_bus_error *error, const QError *e) {
        _cleanup_free_ char *msg = qerror_message(e);
        return sd_bus_error_set(error, qubes_error_dbus_name(e->code), msg ?: "Out of memory");
}
