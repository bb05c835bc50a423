/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "system-info-bus.h"

int qubes_system_info_from_bus(const char *address, QubesSystemInfo **ret, char **error) {
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *json;
        int r;

        if (address) {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else
                r = sd_bus_open_system(&bus);
        if (r < 0) {
                if (asprintf(error, "cannot connect to the bus: %s", strerror(-r)) < 0)
                        *error = NULL;
                goto finish;
        }
        r = sd_bus_call_method(bus, "org.qubes_os.Admin1", "/org/qubes_os/Admin1", "org.qubes_os.Admin1.Manager",
                               "GetSystemInfo", &e, &reply, "");
        if (r < 0) {
                if (asprintf(error, "GetSystemInfo failed: %s", e.message ? e.message : strerror(-r)) < 0)
                        *error = NULL;
                goto finish;
        }
        r = sd_bus_message_read(reply, "s", &json);
        if (r < 0) {
                if (asprintf(error, "GetSystemInfo: bad reply: %s", strerror(-r)) < 0)
                        *error = NULL;
                goto finish;
        }
        r = qubes_system_info_from_json(json, strlen(json), ret, error);
finish:
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return r;
}
