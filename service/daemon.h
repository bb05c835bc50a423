/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* Build the daemon from its configuration: load qubes.xml, start every part, register the
 * object tree, take the bus name. Logs why when it fails. */
int daemon_new(const ManagerConfig *config, Manager **ret);
/* Stop every part in the reverse order; accepts NULL. */
Manager *daemon_free(Manager *m);
/* Serve until SIGTERM or SIGINT. */
int daemon_run(Manager *m);

DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, daemon_free);
