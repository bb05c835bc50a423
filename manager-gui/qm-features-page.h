/* qm-features-page.h: the Features page of a qube's settings (features but service.*)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qm-settings-page.h"

G_BEGIN_DECLS

#define QM_TYPE_FEATURES_PAGE (qm_features_page_get_type ())
G_DECLARE_FINAL_TYPE (QmFeaturesPage, qm_features_page, QM, FEATURES_PAGE, QmSettingsPage)

G_END_DECLS
