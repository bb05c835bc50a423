/* qm-global-settings.h: the global settings of the system (qubes-prefs)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_TYPE_GLOBAL_SETTINGS (qm_global_settings_get_type ())
G_DECLARE_FINAL_TYPE (QmGlobalSettings, qm_global_settings, QM, GLOBAL_SETTINGS, GtkWindow)

QmGlobalSettings *qm_global_settings_new (GtkWindow *parent,
                                          QmClient  *client);

G_END_DECLS
