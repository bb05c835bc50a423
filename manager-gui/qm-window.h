/* qm-window.h: the Qube Manager's main window
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_TYPE_WINDOW (qm_window_get_type ())
G_DECLARE_FINAL_TYPE (QmWindow, qm_window, QM, WINDOW, GtkApplicationWindow)

QmWindow     *qm_window_new       (GtkApplication *application,
                                   QmClient       *client);
GtkListStore *qm_window_get_store (QmWindow       *self);
QmClient     *qm_window_get_client (QmWindow      *self);
/* The GMenu of the application menu bar (built once, shared by every window). */
GMenuModel   *qm_window_build_menubar (void);

G_END_DECLS
