/* qm-settings-window.h: the settings of one qube
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_TYPE_SETTINGS_WINDOW (qm_settings_window_get_type ())
G_DECLARE_FINAL_TYPE (QmSettingsWindow, qm_settings_window, QM, SETTINGS_WINDOW, GtkWindow)

/* NULL when the path is not a qube the client knows. */
QmSettingsWindow *qm_settings_window_new (GtkWindow   *parent,
                                          QmClient    *client,
                                          const gchar *object_path);

G_END_DECLS
