/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus-object.h"

/* The lifecycle methods of qubes (Start, Shutdown, …) and of the Manager (CreateDisposable,
 * StartQubes, ShutdownQubes), and the Job objects of the set operations. */
extern const BusObjectImplementation lifecycle_object;
