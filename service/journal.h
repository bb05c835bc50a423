/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the journal hears of the model (journal.c): a listener on the App that writes one line
 * for every qube created, removed, started, stopped, paused, cloned or imported, tagged with
 * QUBES_VM= (lib/util/log.h), so that `journalctl -u qubesd QUBES_VM=work` tells a qube's
 * story as upstream's qubes.log does. */

#include "manager.h"

int journal_init(Manager *m);
