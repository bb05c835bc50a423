/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

/* Value constraints (upstream issue 10334): dom0 says, in the *.conf files of the constraints
 * directory, which values a qube calling through qrexec may give to a property of a qube
 * ("sys-gui may set the netvm of the qubes tagged managed to sys-firewall or none"). Format:
 * data/constraints.d/README and docs/daemon.md. dom0 and local callers are never constrained;
 * global properties neither. The files are read at start and again after a change in the
 * directory (inotify). */

int constraints_init(Manager *m);
void constraints_done(Manager *m);

/* May the caller of msg give property of d the value (NULL: reset to default)? Returns 0 when
 * allowed (no rule, dom0, a global property when d is NULL), else -EPERM with e filled
 * (PermissionDenied). */
int constraints_check(Manager *m, sd_bus_message *msg, Domain *d, const char *property, const char *value, QError *e);

/* Domain.GetAllowedValues: whether the caller of msg is constrained in what it may give to
 * property of d, and the values it may give now (qube names expanded against the model and
 * limited to those the caller sees in its listings, "" for None, "@default" for a reset). */
int constraints_allowed_values(Manager *m, sd_bus_message *msg, Domain *d, const char *property, bool *ret_constrained,
                               char ***ret_values);
