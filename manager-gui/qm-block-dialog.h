/* qm-block-dialog.h: attach and detach dom0's block devices to one qube
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_TYPE_BLOCK_DIALOG (qm_block_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QmBlockDialog, qm_block_dialog, QM, BLOCK_DIALOG, GtkDialog)

/* NULL when the path is not a qube the client knows. */
GtkWidget *qm_block_dialog_new (GtkWindow   *parent,
                                QmClient    *client,
                                const gchar *domain_path);

G_END_DECLS
