/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus-object.h"

/* Labels: /org/qubes_os/Admin1/label/<name>. */
extern const BusObjectImplementation label_object;
