/* qm-clone-dialog.h: the dialog that clones a qube
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_TYPE_CLONE_DIALOG (qm_clone_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QmCloneDialog, qm_clone_dialog, QM, CLONE_DIALOG, GtkDialog)

/* NULL when the path is not a qube the client knows. */
QmCloneDialog *qm_clone_dialog_new (GtkWindow   *parent,
                                    QmClient    *client,
                                    const gchar *source_path);

G_END_DECLS
