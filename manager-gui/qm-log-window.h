/* qm-log-window.h: the journal entries about one qube
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QM_TYPE_LOG_WINDOW (qm_log_window_get_type ())
G_DECLARE_FINAL_TYPE (QmLogWindow, qm_log_window, QM, LOG_WINDOW, GtkWindow)

QmLogWindow *qm_log_window_new (GtkWindow   *parent,
                                const gchar *qube);

G_END_DECLS
