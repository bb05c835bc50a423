/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* Open the transaction of a call that changes the model: its events wait for the save. */
void manager_begin(Manager *m);
/* The call made its change: answer it (an empty reply, or its error) after the next save, shared
 * with every other call of this loop iteration. */
int manager_commit_reply(Manager *m, sd_bus_message *msg);
/* Set up the group commit, hook it on a connection (a filter), take it down. */
int manager_commit_init(Manager *m);
int manager_commit_add_filter(Manager *m, sd_bus *bus);
void manager_commit_done(Manager *m);
/* Hand the heap's free memory back to the system a second from now (malloc_trim), once per
 * burst: after a large reply or a save at hundreds of qubes, glibc keeps what they freed. */
void manager_trim_later(Manager *m);
