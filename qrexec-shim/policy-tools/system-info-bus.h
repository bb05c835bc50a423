/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "policy/policy.h"

/* The system information from qubesd (Manager.GetSystemInfo) on the bus at address, or on the
 * system bus when address is NULL. For the tools; the library itself stays free of sd-bus. On
 * failure *error says why (malloc'ed, may be NULL on OOM). */
int qubes_system_info_from_bus(const char *address, QubesSystemInfo **ret, char **error);
