/* qm-backup-dialog.h: the Backup window
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_TYPE_BACKUP_DIALOG (qm_backup_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QmBackupDialog, qm_backup_dialog, QM, BACKUP_DIALOG, GtkDialog)

QmBackupDialog *qm_backup_dialog_new (GtkWindow *parent,
                                      QmClient  *client);

G_END_DECLS
