/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Qube lifecycle with upstream's semantics (lifecycle.c): the operations, what libvirt reports
 * (it is vmm.c's listener), and the stats. */

#include "manager.h"

/* Connect to the hypervisor (vmm.c), with this file as the listener, and arm the stats. */
int lifecycle_init(Manager *m);
/* After the workers have stopped: every call still waiting for a start or a stop is answered,
 * then the connection goes. */
void lifecycle_done(Manager *m);

/* A finished start/shutdown/etc.: error < 0 with e set (or not, for a plain errno). Called
 * exactly once per operation, possibly before lifecycle_*() returns. */
typedef void (*OpDoneFn)(Manager *m, const char *name, int error, const QError *e, void *userdata);
int lifecycle_start(Manager *m, Domain *d, OpDoneFn done, void *userdata);
/* A start is in progress (the qube still shows Halted until it spawns). */
bool lifecycle_is_starting(Manager *m, const Domain *d);
int lifecycle_shutdown(Manager *m, Domain *d, bool force, bool wait, OpDoneFn done, void *userdata);
int lifecycle_kill(Manager *m, Domain *d, OpDoneFn done, void *userdata);
int lifecycle_pause(Manager *m, Domain *d, OpDoneFn done, void *userdata);
int lifecycle_unpause(Manager *m, Domain *d, OpDoneFn done, void *userdata);
int lifecycle_suspend(Manager *m, Domain *d, OpDoneFn done, void *userdata);
int lifecycle_resume(Manager *m, Domain *d, OpDoneFn done, void *userdata);
int lifecycle_restart(Manager *m, Domain *d, OpDoneFn done, void *userdata);

/* admin.vm.Console: the pty of the qube's console (upstream: the tty attribute of the live
 * domain XML's <console>, "" when there is none). QubesVMNotRunningError unless libvirt runs the
 * qube (paused counts); dom0 answers "". tty is NULL on error. */
typedef void (*ConsoleDoneFn)(Manager *m, const char *name, int error, const QError *e, const char *tty,
                              void *userdata);
int lifecycle_console(Manager *m, Domain *d, ConsoleDoneFn done, void *userdata);
