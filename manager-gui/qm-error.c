/* qm-error.c: how the Qube Manager presents errors from qubesd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "qm-error.h"

gchar *
qm_error_describe (const GError *error)
{
  static gboolean explained;
  g_autofree gchar *remote = NULL;
  g_autoptr(GError) copy = NULL;

  if (error == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return NULL;

  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, QM_ERROR_NOT_AUTHORIZED_DISMISSED) == 0)
    return NULL;
  if (g_strcmp0 (remote, QM_ERROR_NOT_AUTHORIZED) == 0)
    {
      if (explained)
        return g_strdup (_("Not authorized."));
      explained = TRUE;
      return g_strdup (_("You are not allowed to do this. The Qubes service asks the system "
                         "(polkit) whether your account may manage qubes; ask an administrator "
                         "to add you to the qubes group or to write a polkit rule for you."));
    }

  copy = g_error_copy (error);
  g_dbus_error_strip_remote_error (copy);
  return g_strdup (copy->message);
}

void
qm_error_show (GtkWindow    *parent,
               const gchar  *primary,
               const GError *error)
{
  g_autofree gchar *text = qm_error_describe (error);
  GtkWidget *dialog;

  if (text == NULL)
    return;
  dialog = gtk_message_dialog_new (parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                   GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", primary);
  gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s", text);
  g_signal_connect (dialog, "response", G_CALLBACK (gtk_widget_destroy), NULL);
  gtk_widget_show (dialog);
}

void
qm_error_name_info_bar_close (GtkInfoBar *info_bar)
{
  GtkWidget *content = gtk_info_bar_get_content_area (info_bar);
  GtkWidget *parent = gtk_widget_get_parent (content);
  GList *children, *l;

  /* The button is private: the content area's sibling (GTK 3.10 to 3.24). */
  if (!GTK_IS_CONTAINER (parent))
    return;
  children = gtk_container_get_children (GTK_CONTAINER (parent));
  for (l = children; l != NULL; l = l->next)
    if (GTK_IS_BUTTON (l->data))
      atk_object_set_name (gtk_widget_get_accessible (l->data), _("Close"));
  g_list_free (children);
}
