/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* qubes.xml (qubes-xml.c): upstream's schema, loaded with validate-then-adopt and saved durably.
 * Part of the model (model.h). */

#include "model/app.h"

/* Load app->xml_path. A missing file is not an error: returns 0 and leaves the app empty
 * (the caller then runs app_init_default). A malformed file is refused with a message naming
 * the line and what is wrong, in err (QubesException). */
int app_load(App *app, QError *err);
/* Save durably and atomically (temp file, fsync, rename, fsync dir) under lockf, refusing if
 * someone else modified the file since we read or wrote it. */
int app_save(App *app, QError *err);
/* Serialise to a string (used by app_save, tests and benchmarks). */
char *app_to_xml(App *app);
/* Parse from memory (tests, fuzzing); path is used in messages only. */
int app_load_from_memory(App *app, const char *data, size_t len, const char *path, QError *err);
