/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the bus hears of the model (changes.c): a listener on the App that sends every Qubes
 * event as an Event signal (and the filtered copies of subscribers), announces a qube's objects
 * coming and going, and coalesces property changes into one PropertiesChanged per object and
 * interface per loop iteration. */

#include "manager.h"

int changes_init(Manager *m);
void changes_done(Manager *m);

/* Mark properties for the coalesced PropertiesChanged. name is a qube name or NULL for the
 * Manager; prop NULL means only features/tags flags. */
void changes_mark_dirty(Manager *m, const char *name, const PropDef *prop, bool features, bool tags);
/* A qube's PowerState changed (it is no Qubes event): PropertiesChanged, and the cached listing
 * of ListDomainsText goes. */
void changes_mark_power_state(Manager *m, const char *name);
