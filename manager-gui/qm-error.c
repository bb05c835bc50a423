/* qm-error.c: how the Qube Manager presents errors from qubesd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-error.h"

/* The format's %s replaced by the fields in order ("%%" is "%"), or NULL when the format has
 * not exactly as many %s as there are fields (a broken translation). */
static gchar *
fill_format (const gchar        *format,
             const gchar *const *fields)
{
  g_autoptr(GString) text = g_string_new (NULL);
  guint n_fields = fields != NULL ? g_strv_length ((gchar **) fields) : 0;
  guint i = 0;
  const gchar *p;

  for (p = format; *p != '\0'; p++)
    {
      if (p[0] == '%' && p[1] == 's')
        {
          if (i >= n_fields)
            return NULL;
          g_string_append (text, fields[i++]);
          p++;
        }
      else if (p[0] == '%' && p[1] == '%')
        {
          g_string_append_c (text, '%');
          p++;
        }
      else
        g_string_append_c (text, *p);
    }
  if (i != n_fields)
    return NULL;
  return g_string_free (g_steal_pointer (&text), FALSE);
}

GDBusMessage *
qm_error_translate_reply (GDBusMessage *message)
{
  GVariant *body = g_dbus_message_get_body (message);
  const gchar *name = g_dbus_message_get_error_name (message);
  g_autofree gchar *text = NULL;
  g_autofree const gchar **fields = NULL;
  const gchar *original, *format;
  GDBusMessage *copy;

  if (g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_ERROR || body == NULL
      || name == NULL || !g_str_has_prefix (name, "org.qubes_os.Admin1."))
    return message;
  if (g_variant_is_of_type (body, G_VARIANT_TYPE ("(ssas)")))
    {
      g_variant_get (body, "(&s&s^a&s)", &original, &format, &fields);
      if (*format != '\0')
        text = fill_format (g_dgettext (GETTEXT_PACKAGE, format), fields);
      if (text == NULL)
        text = g_strdup (original);
    }
  else if (g_variant_is_of_type (body, G_VARIANT_TYPE ("(s)")))
    {
      g_variant_get (body, "(&s)", &original);
      if (*original == '\0' || strchr (original, '%') != NULL
          || g_dgettext (GETTEXT_PACKAGE, original) == original)
        return message;
      text = g_strdup (g_dgettext (GETTEXT_PACKAGE, original));
    }
  else
    return message;

  copy = g_dbus_message_copy (message, NULL);
  if (copy == NULL)
    return message;
  g_dbus_message_set_body (copy, g_variant_new ("(s)", text));
  g_object_unref (message);
  return copy;
}

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
