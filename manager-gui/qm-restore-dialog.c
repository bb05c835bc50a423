/* qm-restore-dialog.c: the Restore window
 *
 * Runs qubes-backup-restore, the same program a user runs in a terminal, on the Qube Manager's
 * bus with --porcelain: "Read" lists what the archive holds (after checking the passphrase),
 * "Restore" restores the qubes left checked, with the progress and the report of what was
 * restored, renamed or skipped and why. The passphrase goes to the program on its standard
 * input. Closing while it runs stops it (SIGTERM): it then removes what it had created.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <signal.h>

#include "qm-restore-dialog.h"

enum { COL_SELECTED, COL_NAME, COL_CLASS, COL_TEMPLATE, COL_RESULT, COL_SELECTABLE };

typedef enum { RUN_NONE, RUN_LIST, RUN_RESTORE } RunKind;

struct _QmRestoreDialog
{
  GtkDialog         parent_instance;

  QmClient         *client;
  GCancellable     *cancellable;

  GtkWidget        *info_bar;
  GtkWidget        *message_label;
  GtkWidget        *source_grid;
  GtkWidget        *archive_entry;
  GtkWidget        *passphrase_entry;
  GtkWidget        *read_button;
  GtkListStore     *qubes_store;
  GtkWidget        *skip_check;
  GtkWidget        *progress_bar;
  GtkWidget        *report_label;
  GtkWidget        *close_button;
  GtkWidget        *restore_button;

  RunKind           running;
  GSubprocess      *process;
  GDataInputStream *lines;
  GOutputStream    *errors;
  GString          *report;
  gchar            *last_error;
  gboolean          listed;
};

G_DEFINE_TYPE (QmRestoreDialog, qm_restore_dialog, GTK_TYPE_DIALOG)

static const gchar *
tool_path (void)
{
  const gchar *env = g_getenv ("QUBES_BACKUP_RESTORE");

  return env != NULL && env[0] != '\0' ? env : QM_BACKUP_RESTORE;
}

static void
show_message (QmRestoreDialog *self,
              GtkMessageType   type,
              const gchar     *text)
{
  gtk_info_bar_set_message_type (GTK_INFO_BAR (self->info_bar), type);
  gtk_label_set_text (GTK_LABEL (self->message_label), text);
  gtk_widget_show (self->info_bar);
}

static gboolean
any_selected (QmRestoreDialog *self)
{
  GtkTreeIter iter;
  gboolean valid, on;

  for (valid = gtk_tree_model_get_iter_first (GTK_TREE_MODEL (self->qubes_store), &iter); valid;
       valid = gtk_tree_model_iter_next (GTK_TREE_MODEL (self->qubes_store), &iter))
    {
      gtk_tree_model_get (GTK_TREE_MODEL (self->qubes_store), &iter, COL_SELECTED, &on, -1);
      if (on)
        return TRUE;
    }
  return FALSE;
}

static void
update_buttons (QmRestoreDialog *self)
{
  const gchar *archive = gtk_entry_get_text (GTK_ENTRY (self->archive_entry));
  const gchar *pass = gtk_entry_get_text (GTK_ENTRY (self->passphrase_entry));
  gboolean idle = self->running == RUN_NONE;

  gtk_widget_set_sensitive (self->read_button, idle && archive[0] != '\0' && pass[0] != '\0');
  gtk_widget_set_sensitive (self->restore_button, idle && self->listed && any_selected (self));
  gtk_widget_set_sensitive (self->source_grid, idle);
  gtk_widget_set_sensitive (self->skip_check, idle);
  gtk_button_set_label (GTK_BUTTON (self->close_button),
                        self->running == RUN_RESTORE ? _("_Cancel Restore") : _("_Close"));
}

static void
on_source_changed (QmRestoreDialog *self)
{
  if (self->listed)
    {
      gtk_list_store_clear (self->qubes_store);
      self->listed = FALSE;
    }
  update_buttons (self);
}

static void
on_qube_toggled (QmRestoreDialog       *self,
                 gchar                 *path,
                 GtkCellRendererToggle *renderer)
{
  GtkTreeIter iter;
  gboolean on;

  if (self->running != RUN_NONE
      || !gtk_tree_model_get_iter_from_string (GTK_TREE_MODEL (self->qubes_store), &iter, path))
    return;
  gtk_tree_model_get (GTK_TREE_MODEL (self->qubes_store), &iter, COL_SELECTED, &on, -1);
  gtk_list_store_set (self->qubes_store, &iter, COL_SELECTED, !on, -1);
  update_buttons (self);
}

/* Enter or a double click on a row (and the check box's accessible action) toggles it. */
static void
on_row_activated (QmRestoreDialog *self,
                  GtkTreePath       *path,
                  GtkTreeViewColumn *column,
                  GtkTreeView       *view)
{
  g_autofree gchar *text = gtk_tree_path_to_string (path);

  on_qube_toggled (self, text, NULL);
}

static void
on_browse (QmRestoreDialog *self)
{
  g_autoptr(GtkFileChooserNative) chooser =
    gtk_file_chooser_native_new (_("Choose a Backup"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                 _("_Open"), _("_Cancel"));

  if (gtk_native_dialog_run (GTK_NATIVE_DIALOG (chooser)) == GTK_RESPONSE_ACCEPT)
    {
      g_autofree gchar *file = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));

      if (file != NULL)
        gtk_entry_set_text (GTK_ENTRY (self->archive_entry), file);
    }
}

/* ---- the program's output ------------------------------------------------------------------ */

static gboolean
find_row (QmRestoreDialog *self,
          const gchar     *name,
          GtkTreeIter     *iter)
{
  gboolean valid;

  for (valid = gtk_tree_model_get_iter_first (GTK_TREE_MODEL (self->qubes_store), iter); valid;
       valid = gtk_tree_model_iter_next (GTK_TREE_MODEL (self->qubes_store), iter))
    {
      g_autofree gchar *n = NULL;

      gtk_tree_model_get (GTK_TREE_MODEL (self->qubes_store), iter, COL_NAME, &n, -1);
      if (g_strcmp0 (n, name) == 0)
        return TRUE;
    }
  return FALSE;
}

static void
handle_line (QmRestoreDialog *self,
             const gchar     *line)
{
  g_auto(GStrv) f = g_strsplit (line, "\t", -1);
  guint n = g_strv_length (f);
  GtkTreeIter iter;

  if (n == 7 && g_str_equal (f[0], "qube"))
    {
      gboolean ok = g_str_equal (f[6], "-");
      g_autofree gchar *result = NULL;

      if (!ok)
        result = g_strdup_printf (_("Not restored: %s"), f[6]);
      else if (!g_str_equal (f[5], f[1]))
        result = g_strdup_printf (_("Will be restored as %s"), f[5]);
      else
        result = g_strdup ("");
      /* a restore run lists its qubes again first: the rows are there already */
      if (self->running == RUN_RESTORE)
        {
          if (find_row (self, f[1], &iter))
            gtk_list_store_set (self->qubes_store, &iter, COL_RESULT, result, -1);
          return;
        }
      gtk_list_store_insert_with_values (self->qubes_store, NULL, -1, COL_SELECTED, ok, COL_NAME, f[1],
                                         COL_CLASS, f[2], COL_TEMPLATE, g_str_equal (f[3], "-") ? "" : f[3],
                                         COL_RESULT, result, COL_SELECTABLE, ok, -1);
    }
  else if (n == 2 && g_str_equal (f[0], "home"))
    {
      if (self->running == RUN_RESTORE)
        return;
      gboolean ok = g_str_equal (f[1], "restore");

      gtk_list_store_insert_with_values (self->qubes_store, NULL, -1, COL_SELECTED, FALSE, COL_NAME, "dom0",
                                         COL_CLASS, _("its home directory"), COL_TEMPLATE, "",
                                         COL_RESULT, ok ? _("Into a new folder in your home") : f[1],
                                         COL_SELECTABLE, ok, -1);
    }
  else if (n == 2 && g_str_equal (f[0], "progress"))
    {
      gdouble pct = g_ascii_strtod (f[1], NULL);
      g_autofree gchar *text = g_strdup_printf (_("%.0f %%"), pct);

      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar), CLAMP (pct / 100.0, 0.0, 1.0));
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), text);
    }
  else if (n == 3 && g_str_equal (f[0], "restored"))
    {
      g_autofree gchar *text = g_str_equal (f[1], f[2]) ? g_strdup (_("Restored"))
                                                        : g_strdup_printf (_("Restored as %s"), f[2]);
      if (find_row (self, f[1], &iter))
        gtk_list_store_set (self->qubes_store, &iter, COL_RESULT, text, -1);
    }
  else if (n == 3 && g_str_equal (f[0], "skipped"))
    {
      g_autofree gchar *text = g_strdup_printf (_("Skipped: %s"), f[2]);

      if (find_row (self, f[1], &iter))
        gtk_list_store_set (self->qubes_store, &iter, COL_RESULT, text, -1);
      g_string_append_printf (self->report, "%s: %s\n", f[1], text);
    }
  else if (n == 2 && g_str_equal (f[0], "warning"))
    g_string_append_printf (self->report, _("Not restored: %s\n"), f[1]);
  else if (n == 2 && g_str_equal (f[0], "error"))
    {
      g_free (self->last_error);
      self->last_error = g_strdup (f[1]);
    }
}

static void read_next_line (QmRestoreDialog *self);

static void
process_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(QmRestoreDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  RunKind kind = self->running;
  gint status = -1;
  g_autofree gchar *stderr_text = NULL;

  if (!g_subprocess_wait_finish (G_SUBPROCESS (source), result, &error)
      || g_cancellable_is_cancelled (self->cancellable))
    return;
  if (g_subprocess_get_if_exited (self->process))
    status = g_subprocess_get_exit_status (self->process);
  if (self->errors != NULL)
    /* what the program said on stderr so far (the splice may still be finishing) */
    stderr_text = g_strndup (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (self->errors)),
                             g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (self->errors)));
  g_clear_object (&self->process);
  g_clear_object (&self->lines);
  g_clear_object (&self->errors);
  self->running = RUN_NONE;

  if (status != 0 && status != 3)
    {
      const gchar *why = self->last_error;
      g_autofree gchar *text = NULL;

      if (why == NULL && stderr_text != NULL)
        why = g_strstrip (stderr_text);
      if (why == NULL || why[0] == '\0')
        why = status < 0 ? _("the program was stopped") : _("no reason given");
      text = g_strdup_printf (kind == RUN_LIST ? _("Cannot read the backup: %s")
                                               : _("Nothing was restored: %s"), why);
      show_message (self, GTK_MESSAGE_ERROR, text);
      if (kind == RUN_LIST)
        gtk_list_store_clear (self->qubes_store);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar),
                                 kind == RUN_LIST ? _("Not started") : _("Failed"));
    }
  else if (kind == RUN_LIST)
    {
      self->listed = TRUE;
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), _("Ready to restore"));
    }
  else
    {
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar), 1.0);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), _("Done"));
      if (self->report->len > 0)
        show_message (self, GTK_MESSAGE_WARNING, _("Restored, except what the report below lists."));
      self->listed = FALSE; /* to restore again, read the archive again */
    }
  gtk_label_set_text (GTK_LABEL (self->report_label), self->report->str);
  update_buttons (self);
}

static void
line_read (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(QmRestoreDialog) self = user_data;
  g_autofree gchar *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result,
                                                                      NULL, NULL);

  if (g_cancellable_is_cancelled (self->cancellable) || self->process == NULL)
    return;
  if (line == NULL)
    {
      g_subprocess_wait_async (self->process, self->cancellable, process_done, g_object_ref (self));
      return;
    }
  handle_line (self, line);
  read_next_line (self);
}

static void
read_next_line (QmRestoreDialog *self)
{
  g_data_input_stream_read_line_async (self->lines, G_PRIORITY_DEFAULT, self->cancellable, line_read,
                                       g_object_ref (self));
}

static void
run_tool (QmRestoreDialog *self,
          RunKind          kind,
          GPtrArray       *extra)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *pass = NULL;
  GOutputStream *in;

  g_ptr_array_add (argv, g_strdup (tool_path ()));
  g_ptr_array_add (argv, qm_client_get_bus_option (self->client));
  g_ptr_array_add (argv, g_strdup ("--porcelain"));
  g_ptr_array_add (argv, g_strdup ("--passphrase-file=-"));
  if (kind == RUN_LIST)
    g_ptr_array_add (argv, g_strdup ("--list"));
  else if (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->skip_check)))
    g_ptr_array_add (argv, g_strdup ("--skip-conflicting"));
  g_ptr_array_add (argv, g_strdup ("--"));
  g_ptr_array_add (argv, g_strdup (gtk_entry_get_text (GTK_ENTRY (self->archive_entry))));
  for (guint i = 0; extra != NULL && i < extra->len; i++)
    g_ptr_array_add (argv, g_strdup (extra->pdata[i]));
  g_ptr_array_add (argv, NULL);

  gtk_widget_hide (self->info_bar);
  g_free (self->last_error);
  self->last_error = NULL;
  g_string_truncate (self->report, 0);
  gtk_label_set_text (GTK_LABEL (self->report_label), "");
  self->process = g_subprocess_newv ((const gchar *const *) argv->pdata,
                                     G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                     | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                     &error);
  if (self->process == NULL)
    {
      g_autofree gchar *text = g_strdup_printf (_("Cannot run %s: %s"), tool_path (), error->message);

      show_message (self, GTK_MESSAGE_ERROR, text);
      return;
    }
  self->running = kind;
  in = g_subprocess_get_stdin_pipe (self->process);
  pass = g_strdup_printf ("%s\n", gtk_entry_get_text (GTK_ENTRY (self->passphrase_entry)));
  (void) g_output_stream_write_all (in, pass, strlen (pass), NULL, NULL, NULL);
  memset (pass, 0, strlen (pass));
  g_output_stream_close (in, NULL, NULL);
  self->lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (self->process));
  self->errors = g_memory_output_stream_new_resizable ();
  g_output_stream_splice_async (self->errors, g_subprocess_get_stderr_pipe (self->process),
                                G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, G_PRIORITY_DEFAULT, self->cancellable,
                                NULL, NULL);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar), 0.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar),
                             kind == RUN_LIST ? _("Reading the backup…") : _("Restoring…"));
  update_buttons (self);
  read_next_line (self);
}

static void
on_read (QmRestoreDialog *self)
{
  if (self->running != RUN_NONE || !gtk_widget_get_sensitive (self->read_button))
    return;
  gtk_list_store_clear (self->qubes_store);
  self->listed = FALSE;
  run_tool (self, RUN_LIST, NULL);
}

static void
start_restore (QmRestoreDialog *self)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GtkTreeIter iter;
  gboolean valid;

  for (valid = gtk_tree_model_get_iter_first (GTK_TREE_MODEL (self->qubes_store), &iter); valid;
       valid = gtk_tree_model_iter_next (GTK_TREE_MODEL (self->qubes_store), &iter))
    {
      gchar *name = NULL;
      gboolean on;

      gtk_tree_model_get (GTK_TREE_MODEL (self->qubes_store), &iter, COL_SELECTED, &on, COL_NAME, &name, -1);
      if (on)
        g_ptr_array_add (names, name);
      else
        g_free (name);
    }
  if (names->len == 0)
    return;
  run_tool (self, RUN_RESTORE, names);
}

static void
qm_restore_dialog_response (GtkDialog *dialog,
                            gint       response)
{
  QmRestoreDialog *self = QM_RESTORE_DIALOG (dialog);

  if (response == GTK_RESPONSE_OK)
    {
      if (self->running == RUN_NONE && self->listed)
        start_restore (self);
      return;
    }
  if (self->process != NULL)
    {
      /* the program stops and removes what it had made */
      g_subprocess_send_signal (self->process, SIGTERM);
      return;
    }
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

static gboolean
qm_restore_dialog_delete (GtkWidget   *widget,
                          GdkEventAny *event)
{
  QmRestoreDialog *self = QM_RESTORE_DIALOG (widget);

  if (self->process != NULL)
    {
      show_message (self, GTK_MESSAGE_WARNING, _("A restore is running: cancel it first."));
      return GDK_EVENT_STOP;
    }
  return GDK_EVENT_PROPAGATE;
}

QmRestoreDialog *
qm_restore_dialog_new (GtkWindow *parent,
                       QmClient  *client)
{
  QmRestoreDialog *self = g_object_new (QM_TYPE_RESTORE_DIALOG, "transient-for", parent, NULL);

  self->client = g_object_ref (client);
  update_buttons (self);
  return self;
}

static void
qm_restore_dialog_dispose (GObject *object)
{
  QmRestoreDialog *self = QM_RESTORE_DIALOG (object);

  g_cancellable_cancel (self->cancellable);
  if (self->process != NULL)
    g_subprocess_send_signal (self->process, SIGTERM);
  g_clear_object (&self->process);
  g_clear_object (&self->lines);
  g_clear_object (&self->errors);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_restore_dialog_parent_class)->dispose (object);
}

static void
qm_restore_dialog_finalize (GObject *object)
{
  QmRestoreDialog *self = QM_RESTORE_DIALOG (object);

  g_clear_object (&self->cancellable);
  g_string_free (self->report, TRUE);
  g_free (self->last_error);
  G_OBJECT_CLASS (qm_restore_dialog_parent_class)->finalize (object);
}

static void
qm_restore_dialog_init (QmRestoreDialog *self)
{
  self->cancellable = g_cancellable_new ();
  self->report = g_string_new (NULL);
  gtk_widget_init_template (GTK_WIDGET (self));
}

static void
qm_restore_dialog_class_init (QmRestoreDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkDialogClass *dialog_class = GTK_DIALOG_CLASS (klass);

  object_class->dispose = qm_restore_dialog_dispose;
  object_class->finalize = qm_restore_dialog_finalize;
  dialog_class->response = qm_restore_dialog_response;
  widget_class->delete_event = qm_restore_dialog_delete;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-restore-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, info_bar);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, message_label);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, source_grid);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, archive_entry);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, passphrase_entry);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, read_button);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, qubes_store);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, skip_check);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, report_label);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, close_button);
  gtk_widget_class_bind_template_child (widget_class, QmRestoreDialog, restore_button);
  gtk_widget_class_bind_template_callback (widget_class, on_source_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_qube_toggled);
  gtk_widget_class_bind_template_callback (widget_class, on_row_activated);
  gtk_widget_class_bind_template_callback (widget_class, on_browse);
  gtk_widget_class_bind_template_callback (widget_class, on_read);
}
