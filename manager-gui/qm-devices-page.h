/* qm-devices-page.h: the Devices page of a qube's settings (its PCI assignments, live)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qm-settings-page.h"

G_BEGIN_DECLS

#define QM_TYPE_DEVICES_PAGE (qm_devices_page_get_type ())
G_DECLARE_FINAL_TYPE (QmDevicesPage, qm_devices_page, QM, DEVICES_PAGE, QmSettingsPage)

G_END_DECLS
