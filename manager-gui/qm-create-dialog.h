/* qm-create-dialog.h: the dialog that creates a qube
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_TYPE_CREATE_DIALOG (qm_create_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QmCreateDialog, qm_create_dialog, QM, CREATE_DIALOG, GtkDialog)

QmCreateDialog *qm_create_dialog_new (GtkWindow *parent,
                                      QmClient  *client);

G_END_DECLS
