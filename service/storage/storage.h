/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Storage (service/storage/): above the model, below the daemon. driver.h is the contract every
 * driver implements (StorageVolume, StorageDriver); pool.h, volume.h, fsutil.h and data-op.h
 * declare what their files define. */

#include "storage/data-op.h"
#include "storage/fsutil.h"
#include "storage/pool.h"
#include "storage/driver.h"
#include "storage/volume.h"
