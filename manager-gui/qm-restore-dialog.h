/* qm-restore-dialog.h: the Restore window
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_TYPE_RESTORE_DIALOG (qm_restore_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QmRestoreDialog, qm_restore_dialog, QM, RESTORE_DIALOG, GtkDialog)

QmRestoreDialog *qm_restore_dialog_new (GtkWindow *parent,
                                        QmClient  *client);

G_END_DECLS
