/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* admin.backup.*: Info and Cancel are one call each (rows in methods.c); Execute starts the
 * backup (Manager.StartBackup → a Job) and then waits for the Job's end (Job.Wait), so that it
 * needs no signals and works over qubesd's private socket too. Both calls go without a D-Bus
 * timeout: a backup takes as long as it takes. Every check and message is qubesd's. */
#include "shim.h"

#define JOB_IFACE "org.qubes_os.Admin1.Job"

static int on_wait_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        (void) call_reply_ok_begin(c);
        call_reply_end(c);
        return 0;
}

static int on_start_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const char *job;
        int r;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        r = sd_bus_message_read(m, "o", &job);
        if (r >= 0) {
                c->step = 1; /* a retry on a new connection would start a second backup */
                r = call_method(c, job, JOB_IFACE, "Wait", on_wait_reply, "");
        }
        if (r < 0)
                call_reply_dbus_error(c, NULL, r);
        return 0;
}

int backup_execute_start(Call *c) {
        return call_method(c, ADMIN_PATH, MANAGER_IFACE, "StartBackup", on_start_reply, "s", c->req.arg);
}
