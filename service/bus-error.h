/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Error replies: one D-Bus error name per Qubes exception class (lib/qubes-error.h). */

#include <systemd/sd-bus.h>

#include "qubes-error.h"

typedef struct Manager Manager;

/* Send an error reply for a Qubes error: name org.qubes_os.Admin1.Error.<Class>, and for callers
 * who asked for it (SetCallerIdentity, EnableErrorDetails) the body (s message, s format, as
 * fields). With --debug the message carries the traceback after a blank line. Returns 1 (the
 * call is handled) or a negative error. m may be NULL (message only). */
int bus_reply_qerror(Manager *m, sd_bus_message *call, const QError *e);
/* Convert a QError to an sd_bus_error (property setters, which cannot send a body). */
int bus_set_qerror(sd_bus_error *error, const QError *e);
/* The reply to a handler's failure r: the Qubes error e when it is set, else r for sd-bus to
 * answer (a plain errno). */
static inline int bus_reply_failure(Manager *m, sd_bus_message *call, int r, const QError *e) {
        return qerror_is_set(e) ? bus_reply_qerror(m, call, e) : r;
}
