/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* admin.backup.*: Info and Cancel are one call each (rows in methods.c); Execute is one call too
 * (Manager.ExecuteBackup, which replies when the backup is over, without a D-Bus timeout), but
 * never retried on a new connection: if qubesd went away during a backup, the backup went with
 * it, and starting it again behind the caller's back is not what Execute asked for. Every check
 * and message is qubesd's. */
#include "shim.h"

static int on_execute_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;

        if (call_handle_error(c, m, ret_error))
                return 0;
        c->slot = sd_bus_slot_unref(c->slot);
        (void) call_reply_ok_begin(c); /* empty, as upstream: the archive's name is for D-Bus clients */
        call_reply_end(c);
        return 0;
}

int backup_execute_start(Call *c) {
        c->step = 1;
        return call_method(c, ADMIN_PATH, MANAGER_IFACE, "ExecuteBackup", on_execute_reply, "s", c->req.arg);
}
