/* qm-notes-page.c: the Notes page of a qube's settings
 *
 * The smallest page, and the model for new ones: it reads from qubesd (GetNotes) when the
 * window asks, and on Apply adds SetNotes when the text changed. What it reads (after an Apply
 * too) it hands to the client, for the list's Notes column.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "qm-notes-page.h"

struct _QmNotesPage
{
  QmSettingsPage  parent_instance;

  GtkTextBuffer  *notes;      /* template child */
  gchar          *orig_notes; /* as read */
};

G_DEFINE_TYPE (QmNotesPage, qm_notes_page, QM_TYPE_SETTINGS_PAGE)

static void
notes_read (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  QmNotesPage *self = QM_NOTES_PAGE (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  g_clear_pointer (&self->orig_notes, g_free);
  if (reply != NULL)
    {
      g_variant_get (reply, "(s)", &self->orig_notes);
      /* The list's Notes column learns no other way: qubesd announces no change of notes. */
      qm_client_set_notes (qm_settings_page_get_client (QM_SETTINGS_PAGE (self)),
                           qm_settings_page_get_qube_path (QM_SETTINGS_PAGE (self)),
                           self->orig_notes);
    }
  else
    self->orig_notes = g_strdup ("");
  gtk_text_buffer_set_text (self->notes, self->orig_notes, -1);
  qm_settings_page_loaded (QM_SETTINGS_PAGE (self), NULL);
  g_object_unref (self);
}

static void
qm_notes_page_load (QmSettingsPage *page)
{
  QmClient *client = qm_settings_page_get_client (page);

  g_dbus_connection_call (qm_client_get_connection (client), QM_BUS_NAME,
                          qm_settings_page_get_qube_path (page), "org.qubes_os.Admin1.Domain",
                          "GetNotes", NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1,
                          qm_settings_page_get_cancellable (page), notes_read,
                          g_object_ref (page));
}

static void
qm_notes_page_apply (QmSettingsPage  *page,
                     QmSettingsCalls *calls)
{
  QmNotesPage *self = QM_NOTES_PAGE (page);
  g_autofree gchar *notes = NULL;
  GtkTextIter start, end;

  gtk_text_buffer_get_bounds (self->notes, &start, &end);
  notes = gtk_text_buffer_get_text (self->notes, &start, &end, FALSE);
  if (g_strcmp0 (notes, self->orig_notes) != 0)
    qm_settings_calls_add (calls, NULL, NULL, "SetNotes", g_variant_new ("(s)", notes),
                           _("Cannot save the notes"));
}

static void
qm_notes_page_finalize (GObject *object)
{
  QmNotesPage *self = QM_NOTES_PAGE (object);

  g_free (self->orig_notes);
  G_OBJECT_CLASS (qm_notes_page_parent_class)->finalize (object);
}

static void
qm_notes_page_init (QmNotesPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

static void
qm_notes_page_class_init (QmNotesPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  QmSettingsPageClass *page_class = QM_SETTINGS_PAGE_CLASS (klass);

  object_class->finalize = qm_notes_page_finalize;
  page_class->load = qm_notes_page_load;
  page_class->apply = qm_notes_page_apply;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-notes-page.ui");
  gtk_widget_class_bind_template_child (widget_class, QmNotesPage, notes);
}
