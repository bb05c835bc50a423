/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Qubes data model: the app (global properties, labels, pools), its domains (qubes) with
 * properties, features, tags, notes, device assignments and volume config. This layer knows
 * nothing of D-Bus or of storage: it validates, mutates, and reports every change as a Qubes event
 * to the listeners on the App (app_add_listener()), with upstream's event names and keys (spec/admin-api.md §4). Persistence is in
 * qubes-xml.c. All functions return 0 (or a positive value where documented) on success and a
 * negative errno-style value on failure; when a QError* is given, a failure that a user caused
 * fills it with the Qubes exception class and the upstream message. */

#include "model/app.h"
#include "model/dispvm.h"
#include "model/domain.h"
#include "model/props.h"
#include "model/qubes-xml.h"
#include "model/system-info.h"
