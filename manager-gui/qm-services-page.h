/* qm-services-page.h: the Services page of a qube's settings (its service.* features)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qm-settings-page.h"

G_BEGIN_DECLS

#define QM_TYPE_SERVICES_PAGE (qm_services_page_get_type ())
G_DECLARE_FINAL_TYPE (QmServicesPage, qm_services_page, QM, SERVICES_PAGE, QmSettingsPage)

G_END_DECLS
