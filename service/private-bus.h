/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* The private socket (private-bus.c): direct D-Bus connections for trusted local clients. */
int private_bus_listen(Manager *m, const char *path);
void private_bus_done(Manager *m);
