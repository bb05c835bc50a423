/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus-object.h"

/* Qubes: /org/qubes_os/Admin1/domain/<name> (Domain, QubesVM and the class interfaces). */
extern const BusObjectImplementation domain_object;
