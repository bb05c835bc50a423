/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Preloaded disposables (preload.c, spec/console-preload.md §4): each disposable template keeps
 * up to its preload-dispvm-max disposables created, started and paused in the background, marked
 * internal and listed in its preload-dispvm feature; CreateDisposable hands one out at once
 * (unpaused, marked used) and another is preloaded after preload-dispvm-delay. Outdated ones go
 * when their template changes. The model's part (counts, checks) is model/dispvm.c; this file
 * hears the model (app_add_listener()) and drives lifecycle.c and storage. */

#include "manager.h"

int preload_init(Manager *m);
void preload_done(Manager *m);

/* CreateDisposable of tpl for caller: hand out a preloaded disposable. Returns 1 when one was
 * taken (msg, referenced here, is answered later with (s name, o path)), 0 when there is none
 * (create a fresh one), negative on OOM. */
int preload_request(Manager *m, Domain *tpl, const char *caller, sd_bus_message *msg);

/* CreateDisposable+preload: announce domain-preload-dispvm-start ("autostart was requested") and
 * fill tpl up to its maximum; msg is answered (empty) once the fill is over, or with the error
 * when tpl cannot host preloaded disposables. Returns 1, or negative on OOM. */
int preload_autostart(Manager *m, Domain *tpl, sd_bus_message *msg);
