/* qm-error.h: how the Qube Manager presents errors from qubesd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QM_ERROR_NOT_AUTHORIZED "org.qubes_os.Admin1.Error.NotAuthorized"
#define QM_ERROR_NOT_AUTHORIZED_DISMISSED "org.qubes_os.Admin1.Error.NotAuthorizedDismissed"

/* The text to show for an error, or NULL when nothing should be shown (the user dismissed the
 * authentication prompt, or the operation was cancelled). A refusal explains itself the first
 * time; later ones are short. */
gchar *qm_error_describe (const GError *error);

/* An error reply in the user's language. qubesd sends a client that called EnableErrorDetails
 * the body (message, format, fields): the format, one of the catalogue's, is translated and the
 * fields put in its %s in order. A reply with the message alone (Properties.Set/Get) is
 * translated when the catalogue has it as it is (a message without fields). Returns the message
 * itself when there is nothing to translate, else a new one with the body (text,) that GDBus
 * turns into the GError's message. Safe in GDBus' worker thread (a connection filter). */
GDBusMessage *qm_error_translate_reply (GDBusMessage *message);

/* A modal message about a failed action; silent when qm_error_describe() says so. */
void   qm_error_show     (GtkWindow    *parent,
                          const gchar  *primary,
                          const GError *error);

/* GTK 3 leaves the close button of an info bar (the "x" show-close-button adds) without an
 * accessible name: names it "Close". For every info bar that shows errors. */
void   qm_error_name_info_bar_close (GtkInfoBar *info_bar);

G_END_DECLS
