/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logs a fixed set of lines through lib/util/log.c, for tests/unit/test-log.py, which runs it
 * with stderr on a terminal-like pipe, and as journald's stream, with a fake journald. */

#include "util/log.h"

int main(int argc, char *argv[]) {
        if (argc > 1 && streq(argv[1], "--debug"))
                log_set_max_level(LOG_DEBUG);
        log_info("plain line %d", 1);
        log_qube_info("work", "Starting qube %s", "work");
        log_error_errno(ENOENT, "Cannot open %s: %m", "/nowhere");
        log_qube_notice("sys-net", "Refused an oversized request from %s", "sys-net");
        log_debug("debug line");
        return 0;
}
