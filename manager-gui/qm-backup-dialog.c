/* qm-backup-dialog.c: the Backup window
 *
 * The qubes to back up (checked as include_in_backups says, or as a saved profile says), where
 * to, the passphrase and compression. "Back Up" writes the settings as a profile through qubesd
 * (SaveBackupProfile: a saved one under the name given, else a temporary one that goes again
 * afterwards, as qvm-backup does), starts it (StartBackup), follows the job's BytesDone and
 * BytesTotal to fill the progress bar and learns its end from the job's Finished signal (watched
 * before the start, so that a backup that fails at once is not missed; State, polled with the
 * figures, for a user who receives no broadcasts). The Close button stops a running backup
 * (Job.Cancel). A saved profile with its passphrase can be run as it is.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "qm-backup-dialog.h"
#include "qm-error.h"

#define MANAGER_IFACE "org.qubes_os.Admin1.Manager"
#define JOB_IFACE "org.qubes_os.Admin1.Job"
#define POLL_MS 250

enum { COL_SELECTED, COL_NAME, COL_CLASS, COL_SIZE };

struct _QmBackupDialog
{
  GtkDialog     parent_instance;

  QmClient     *client;
  GCancellable *cancellable;

  GtkWidget    *info_bar;
  GtkWidget    *message_label;
  GtkWidget    *settings_grid;
  GtkWidget    *profile_combo;
  GtkListStore *qubes_store;
  GtkWidget    *qubes_view;
  GtkWidget    *destination_combo;
  GtkWidget    *path_entry;
  GtkWidget    *passphrase_entry;
  GtkWidget    *confirm_entry;
  GtkWidget    *compress_check;
  GtkWidget    *save_entry;
  GtkWidget    *progress_bar;
  GtkWidget    *status_label;
  GtkWidget    *close_button;
  GtkWidget    *backup_button;

  gboolean      busy;           /* a call or a backup is under way */
  gboolean      loaded_has_passphrase;
  gchar        *profile;        /* the profile being run */
  gboolean      temporary;      /* …and it goes when the run ends */
  gchar        *job;
  guint         poll_id;
  guint         finished_watch; /* the Job's Finished signals */
  GHashTable   *finished;       /* job path -> Finished parameters, seen before StartBackup replied */
};

G_DEFINE_TYPE (QmBackupDialog, qm_backup_dialog, GTK_TYPE_DIALOG)

static void
show_message (QmBackupDialog *self,
              GtkMessageType  type,
              const gchar    *primary,
              const GError   *error)
{
  g_autofree gchar *detail = error != NULL ? qm_error_describe (error) : NULL;
  g_autofree gchar *text = NULL;

  if (error != NULL && detail == NULL)
    return; /* the user dismissed an authentication prompt */
  text = detail != NULL ? g_strdup_printf ("%s\n%s", primary, detail) : g_strdup (primary);
  gtk_info_bar_set_message_type (GTK_INFO_BAR (self->info_bar), type);
  gtk_label_set_text (GTK_LABEL (self->message_label), text);
  gtk_widget_show (self->info_bar);
}

static gboolean
any_selected (QmBackupDialog *self)
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

/* A saved profile with its passphrase runs as it is when no passphrase is typed. */
static gboolean
runs_saved_profile (QmBackupDialog *self)
{
  const gchar *pass = gtk_entry_get_text (GTK_ENTRY (self->passphrase_entry));

  return self->loaded_has_passphrase && pass[0] == '\0'
         && gtk_combo_box_get_active (GTK_COMBO_BOX (self->profile_combo)) > 0;
}

static void
on_input_changed (QmBackupDialog *self)
{
  const gchar *pass = gtk_entry_get_text (GTK_ENTRY (self->passphrase_entry));
  const gchar *again = gtk_entry_get_text (GTK_ENTRY (self->confirm_entry));
  const gchar *path = gtk_entry_get_text (GTK_ENTRY (self->path_entry));
  gboolean ok = runs_saved_profile (self)
                || (pass[0] != '\0' && g_strcmp0 (pass, again) == 0 && path[0] != '\0'
                    && any_selected (self));

  gtk_widget_set_sensitive (self->backup_button, !self->busy && ok);
  gtk_widget_set_sensitive (self->settings_grid, !self->busy);
  gtk_button_set_label (GTK_BUTTON (self->close_button),
                        self->job != NULL ? _("_Cancel Backup") : _("_Close"));
}

static void
on_qube_toggled (QmBackupDialog        *self,
                 gchar                 *path,
                 GtkCellRendererToggle *renderer)
{
  GtkTreeIter iter;
  gboolean on;

  if (!gtk_tree_model_get_iter_from_string (GTK_TREE_MODEL (self->qubes_store), &iter, path))
    return;
  gtk_tree_model_get (GTK_TREE_MODEL (self->qubes_store), &iter, COL_SELECTED, &on, -1);
  gtk_list_store_set (self->qubes_store, &iter, COL_SELECTED, !on, -1);
  on_input_changed (self);
}

/* Enter or a double click on a row (and the check box's accessible action) toggles it. */
static void
on_row_activated (QmBackupDialog *self,
                  GtkTreePath       *path,
                  GtkTreeViewColumn *column,
                  GtkTreeView       *view)
{
  g_autofree gchar *text = gtk_tree_path_to_string (path);

  on_qube_toggled (self, text, NULL);
}

/* Check the qubes of a list, or (NULL) those with include_in_backups; dom0 only when named. */
static void
select_qubes (QmBackupDialog     *self,
              const gchar *const *names)
{
  GtkTreeIter iter;
  gboolean valid;

  for (valid = gtk_tree_model_get_iter_first (GTK_TREE_MODEL (self->qubes_store), &iter); valid;
       valid = gtk_tree_model_iter_next (GTK_TREE_MODEL (self->qubes_store), &iter))
    {
      g_autofree gchar *name = NULL;
      gboolean on;

      gtk_tree_model_get (GTK_TREE_MODEL (self->qubes_store), &iter, COL_NAME, &name, -1);
      if (names != NULL)
        on = g_strv_contains (names, name);
      else
        {
          QmObject *object = qm_client_lookup_domain_by_name (self->client, name);

          on = object != NULL && g_strcmp0 (name, "dom0") != 0
               && qm_object_get_boolean (object, "Domain", "IncludeInBackups");
        }
      gtk_list_store_set (self->qubes_store, &iter, COL_SELECTED, on, -1);
    }
}

static void
fill_qubes (QmBackupDialog *self)
{
  GList *domains = qm_client_get_domains (self->client), *l;
  GtkComboBoxText *dest = GTK_COMBO_BOX_TEXT (self->destination_combo);

  gtk_combo_box_text_append (dest, "dom0", _("dom0 (a file here)"));
  for (l = domains; l != NULL; l = l->next)
    {
      const gchar *name = qm_object_get_string (l->data, "Domain", "Name");
      const gchar *klass = qm_object_get_string (l->data, "Domain", "Klass");

      gtk_list_store_insert_with_values (self->qubes_store, NULL, -1, COL_SELECTED, FALSE,
                                         COL_NAME, name, COL_CLASS, klass, -1);
      if (g_strcmp0 (klass, "AdminVM") != 0)
        gtk_combo_box_text_append (dest, name, name);
    }
  g_list_free_full (domains, g_object_unref);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (dest), "dom0");
  select_qubes (self, NULL);
}

/* ---- profiles --------------------------------------------------------------------------------- */

static void
profiles_listed (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(QmBackupDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  g_autofree const gchar **names = NULL;

  if (reply == NULL || g_cancellable_is_cancelled (self->cancellable))
    return;
  g_variant_get (reply, "(^a&s)", &names);
  for (guint i = 0; names[i] != NULL; i++)
    /* qvm-backup's one-off runs are no profiles to offer */
    if (!g_str_has_prefix (names[i], "backup-run-") && !g_str_has_prefix (names[i], "qube-manager-run-"))
      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->profile_combo), names[i], names[i]);
}

static void
profile_loaded (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(QmBackupDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  g_autoptr(GVariant) settings = NULL;
  g_autofree const gchar **include = NULL;
  const gchar *s;
  gboolean has_pass = FALSE;

  if (g_cancellable_is_cancelled (self->cancellable))
    return;
  self->busy = FALSE;
  if (reply == NULL)
    {
      show_message (self, GTK_MESSAGE_ERROR, _("Cannot read the profile"), error);
      on_input_changed (self);
      return;
    }
  settings = g_variant_get_child_value (reply, 0);
  if (g_variant_lookup (settings, "destination_vm", "&s", &s)
      && !gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->destination_combo), s))
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->destination_combo), "dom0");
  if (g_variant_lookup (settings, "destination_path", "&s", &s))
    gtk_entry_set_text (GTK_ENTRY (self->path_entry), s);
  if (g_variant_lookup (settings, "compression", "&s", &s))
    gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->compress_check), g_strcmp0 (s, "false") != 0);
  g_variant_lookup (settings, "include", "^a&s", &include);
  select_qubes (self, include);
  g_variant_lookup (settings, "has_passphrase_text", "b", &has_pass);
  self->loaded_has_passphrase = has_pass;
  gtk_entry_set_placeholder_text (GTK_ENTRY (self->passphrase_entry),
                                  has_pass ? _("the profile's own (type one to change it)") : NULL);
  gtk_entry_set_text (GTK_ENTRY (self->passphrase_entry), "");
  gtk_entry_set_text (GTK_ENTRY (self->confirm_entry), "");
  on_input_changed (self);
}

static void
on_profile_changed (QmBackupDialog *self)
{
  const gchar *name = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->profile_combo));

  self->loaded_has_passphrase = FALSE;
  if (name == NULL || name[0] == '\0')
    {
      gtk_entry_set_placeholder_text (GTK_ENTRY (self->passphrase_entry), NULL);
      select_qubes (self, NULL);
      on_input_changed (self);
      return;
    }
  gtk_entry_set_text (GTK_ENTRY (self->save_entry), "");
  self->busy = TRUE;
  on_input_changed (self);
  qm_client_call (self->client, QM_ROOT_PATH, MANAGER_IFACE, "GetBackupProfile",
                  g_variant_new ("(s)", name), self->cancellable, profile_loaded, g_object_ref (self));
}

/* ---- running ---------------------------------------------------------------------------------- */

static void
forget_profile (QmBackupDialog *self)
{
  if (self->temporary && self->profile != NULL)
    qm_client_call (self->client, QM_ROOT_PATH, MANAGER_IFACE, "RemoveBackupProfile",
                    g_variant_new ("(s)", self->profile), NULL, NULL, NULL);
  g_clear_pointer (&self->profile, g_free);
  self->temporary = FALSE;
}

static void
unwatch_finished (QmBackupDialog *self)
{
  if (self->finished_watch != 0 && self->client != NULL)
    g_dbus_connection_signal_unsubscribe (qm_client_get_connection (self->client), self->finished_watch);
  self->finished_watch = 0;
  g_hash_table_remove_all (self->finished);
}

static void
finish_run (QmBackupDialog *self)
{
  if (self->poll_id != 0)
    {
      g_source_remove (self->poll_id);
      self->poll_id = 0;
    }
  unwatch_finished (self);
  g_clear_pointer (&self->job, g_free);
  forget_profile (self);
  self->busy = FALSE;
  on_input_changed (self);
}

static void
show_figures (QmBackupDialog *self,
              guint64         done,
              guint64         total)
{
  g_autofree gchar *d = g_format_size (done);
  g_autofree gchar *t = g_format_size (total);
  g_autofree gchar *text = NULL;

  if (total == 0)
    {
      gtk_progress_bar_pulse (GTK_PROGRESS_BAR (self->progress_bar));
      return;
    }
  text = g_strdup_printf (_("%s of %s"), d, t);
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar),
                                 MIN (1.0, (gdouble) done / (gdouble) total));
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), text);
}

/* The job is over: state "succeeded" or "failed"; failures (a(sss): qube, error name, message)
 * when the Finished signal told them, else NULL. */
static void
job_ended (QmBackupDialog *self,
           const gchar    *state,
           GVariant       *failures)
{
  const gchar *name = NULL, *message = NULL;
  gboolean cancelled;

  if (g_strcmp0 (state, "succeeded") == 0)
    {
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar), 1.0);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), _("Done"));
      gtk_label_set_text (GTK_LABEL (self->status_label), _("The backup is complete."));
      finish_run (self);
      return;
    }
  if (failures != NULL && g_variant_n_children (failures) > 0)
    g_variant_get_child (failures, 0, "(&s&s&s)", NULL, &name, &message);
  cancelled = name != NULL && g_str_has_suffix (name, ".BackupCancelledError");
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar),
                             cancelled ? _("Cancelled") : _("Failed"));
  gtk_label_set_text (GTK_LABEL (self->status_label), "");
  if (!cancelled)
    {
      g_autoptr(GError) error = name != NULL ? g_dbus_error_new_for_dbus_error (name, message) : NULL;

      show_message (self, GTK_MESSAGE_ERROR, _("The backup failed"), error);
    }
  finish_run (self);
}

static void
on_finished (GDBusConnection *connection,
             const gchar     *sender,
             const gchar     *object_path,
             const gchar     *interface,
             const gchar     *signal,
             GVariant        *parameters,
             gpointer         user_data)
{
  QmBackupDialog *self = user_data;
  g_autoptr(GVariant) failures = NULL;
  const gchar *state;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa(sss))")))
    return;
  if (self->job == NULL)
    {
      /* StartBackup has not replied yet: this may be ours */
      g_hash_table_replace (self->finished, g_strdup (object_path), g_variant_ref (parameters));
      return;
    }
  if (g_strcmp0 (object_path, self->job) != 0)
    return;
  g_variant_get (parameters, "(&s@a(sss))", &state, &failures);
  job_ended (self, state, failures);
}

static void
job_polled (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(QmBackupDialog) self = user_data;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, NULL);
  g_autoptr(GVariant) props = NULL;
  guint64 done = 0, total = 0;
  const gchar *state = NULL;

  if (reply == NULL || self->job == NULL || g_cancellable_is_cancelled (self->cancellable))
    return;
  props = g_variant_get_child_value (reply, 0);
  g_variant_lookup (props, "BytesDone", "t", &done);
  g_variant_lookup (props, "BytesTotal", "t", &total);
  g_variant_lookup (props, "State", "&s", &state);
  show_figures (self, done, total);
  /* over, and no Finished came before this reply (qubesd sends it first): a user who receives
   * no broadcasts */
  if (state != NULL && g_strcmp0 (state, "running") != 0)
    job_ended (self, state, NULL);
}

static gboolean
poll_job (gpointer user_data)
{
  QmBackupDialog *self = user_data;

  g_dbus_connection_call (qm_client_get_connection (self->client), QM_BUS_NAME, self->job,
                          "org.freedesktop.DBus.Properties", "GetAll", g_variant_new ("(s)", JOB_IFACE),
                          G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 5000, self->cancellable,
                          job_polled, g_object_ref (self));
  return G_SOURCE_CONTINUE;
}

static void
backup_started (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(QmBackupDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  GVariant *early;

  if (g_cancellable_is_cancelled (self->cancellable))
    return;
  if (reply == NULL)
    {
      show_message (self, GTK_MESSAGE_ERROR, _("The backup cannot start"), error);
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), _("Not started"));
      finish_run (self);
      return;
    }
  g_variant_get (reply, "(o)", &self->job);
  early = g_hash_table_lookup (self->finished, self->job);
  if (early != NULL)
    {
      g_autoptr(GVariant) failures = NULL;
      const gchar *state;

      g_variant_get (early, "(&s@a(sss))", &state, &failures);
      job_ended (self, state, failures);
      return;
    }
  g_hash_table_remove_all (self->finished);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), _("Backing up…"));
  gtk_label_set_text (GTK_LABEL (self->status_label), "");
  self->poll_id = g_timeout_add (POLL_MS, poll_job, self);
  on_input_changed (self);
}

static void
start_profile (QmBackupDialog *self)
{
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress_bar), 0.0);
  gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress_bar), _("Starting…"));
  /* before the start, so that the end of a backup that fails at once is seen */
  if (self->finished_watch == 0)
    self->finished_watch = g_dbus_connection_signal_subscribe (
      qm_client_get_connection (self->client), QM_BUS_NAME, JOB_IFACE, "Finished", NULL, NULL,
      G_DBUS_SIGNAL_FLAGS_NONE, on_finished, self, NULL);
  qm_client_call (self->client, QM_ROOT_PATH, MANAGER_IFACE, "StartBackup",
                  g_variant_new ("(s)", self->profile), self->cancellable, backup_started,
                  g_object_ref (self));
}

static void
profile_saved (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(QmBackupDialog) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);

  if (g_cancellable_is_cancelled (self->cancellable))
    return;
  if (reply == NULL)
    {
      self->temporary = FALSE;
      show_message (self, GTK_MESSAGE_ERROR, _("Cannot save the backup settings"), error);
      finish_run (self);
      return;
    }
  start_profile (self);
}

static GVariant *
settings_variant (QmBackupDialog *self)
{
  GVariantBuilder b, include;
  GtkTreeIter iter;
  gboolean valid;
  const gchar *dest = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->destination_combo));

  g_variant_builder_init (&include, G_VARIANT_TYPE ("as"));
  for (valid = gtk_tree_model_get_iter_first (GTK_TREE_MODEL (self->qubes_store), &iter); valid;
       valid = gtk_tree_model_iter_next (GTK_TREE_MODEL (self->qubes_store), &iter))
    {
      g_autofree gchar *name = NULL;
      gboolean on;

      gtk_tree_model_get (GTK_TREE_MODEL (self->qubes_store), &iter, COL_SELECTED, &on, COL_NAME, &name, -1);
      if (on)
        g_variant_builder_add (&include, "s", name);
    }
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "destination_vm", g_variant_new_string (dest != NULL ? dest : "dom0"));
  g_variant_builder_add (&b, "{sv}", "destination_path",
                         g_variant_new_string (gtk_entry_get_text (GTK_ENTRY (self->path_entry))));
  g_variant_builder_add (&b, "{sv}", "include", g_variant_builder_end (&include));
  g_variant_builder_add (&b, "{sv}", "compression",
                         g_variant_new_string (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->compress_check))
                                               ? "true" : "false"));
  g_variant_builder_add (&b, "{sv}", "passphrase_text",
                         g_variant_new_string (gtk_entry_get_text (GTK_ENTRY (self->passphrase_entry))));
  return g_variant_builder_end (&b);
}

static void
start_backup (QmBackupDialog *self)
{
  const gchar *save = gtk_entry_get_text (GTK_ENTRY (self->save_entry));
  static guint counter;

  gtk_widget_hide (self->info_bar);
  self->busy = TRUE;
  on_input_changed (self);
  if (runs_saved_profile (self))
    {
      self->profile = g_strdup (gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->profile_combo)));
      self->temporary = FALSE;
      start_profile (self);
      return;
    }
  if (save[0] != '\0')
    {
      self->profile = g_strdup (save);
      self->temporary = FALSE;
    }
  else
    {
      self->profile = g_strdup_printf ("qube-manager-run-%d-%u", (gint) getpid (), ++counter);
      self->temporary = TRUE;
    }
  qm_client_call (self->client, QM_ROOT_PATH, MANAGER_IFACE, "SaveBackupProfile",
                  g_variant_new ("(s@a{sv})", self->profile, settings_variant (self)), self->cancellable,
                  profile_saved, g_object_ref (self));
}

static void
qm_backup_dialog_response (GtkDialog *dialog,
                           gint       response)
{
  QmBackupDialog *self = QM_BACKUP_DIALOG (dialog);

  if (response == GTK_RESPONSE_OK)
    {
      if (!self->busy)
        start_backup (self);
      return;
    }
  if (self->job != NULL)
    {
      /* the button says Cancel Backup while one runs */
      qm_client_call (self->client, self->job, JOB_IFACE, "Cancel", NULL, NULL, NULL, NULL);
      return;
    }
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

static gboolean
qm_backup_dialog_delete (GtkWidget   *widget,
                         GdkEventAny *event)
{
  QmBackupDialog *self = QM_BACKUP_DIALOG (widget);

  /* closing the window does not stop a backup by surprise: it asks for the button */
  if (self->job != NULL)
    {
      show_message (self, GTK_MESSAGE_WARNING, _("A backup is running: cancel it first."), NULL);
      return GDK_EVENT_STOP;
    }
  return GDK_EVENT_PROPAGATE;
}

QmBackupDialog *
qm_backup_dialog_new (GtkWindow *parent,
                      QmClient  *client)
{
  QmBackupDialog *self = g_object_new (QM_TYPE_BACKUP_DIALOG, "transient-for", parent, NULL);

  self->client = g_object_ref (client);
  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->profile_combo), "", _("(new settings)"));
  gtk_combo_box_set_active (GTK_COMBO_BOX (self->profile_combo), 0);
  fill_qubes (self);
  on_input_changed (self);
  qm_client_call (self->client, QM_ROOT_PATH, MANAGER_IFACE, "ListBackupProfiles", NULL,
                  self->cancellable, profiles_listed, g_object_ref (self));
  return self;
}

static void
qm_backup_dialog_dispose (GObject *object)
{
  QmBackupDialog *self = QM_BACKUP_DIALOG (object);

  if (self->poll_id != 0)
    {
      g_source_remove (self->poll_id);
      self->poll_id = 0;
    }
  unwatch_finished (self);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_backup_dialog_parent_class)->dispose (object);
}

static void
qm_backup_dialog_finalize (GObject *object)
{
  QmBackupDialog *self = QM_BACKUP_DIALOG (object);

  g_clear_object (&self->cancellable);
  g_hash_table_unref (self->finished);
  g_free (self->profile);
  g_free (self->job);
  G_OBJECT_CLASS (qm_backup_dialog_parent_class)->finalize (object);
}

static void
qm_backup_dialog_init (QmBackupDialog *self)
{
  self->cancellable = g_cancellable_new ();
  self->finished = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
  gtk_widget_init_template (GTK_WIDGET (self));
}

static void
qm_backup_dialog_class_init (QmBackupDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkDialogClass *dialog_class = GTK_DIALOG_CLASS (klass);

  object_class->dispose = qm_backup_dialog_dispose;
  object_class->finalize = qm_backup_dialog_finalize;
  dialog_class->response = qm_backup_dialog_response;
  widget_class->delete_event = qm_backup_dialog_delete;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-backup-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, info_bar);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, message_label);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, settings_grid);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, profile_combo);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, qubes_store);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, qubes_view);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, destination_combo);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, path_entry);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, passphrase_entry);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, confirm_entry);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, compress_check);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, save_entry);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, status_label);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, close_button);
  gtk_widget_class_bind_template_child (widget_class, QmBackupDialog, backup_button);
  gtk_widget_class_bind_template_callback (widget_class, on_input_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_qube_toggled);
  gtk_widget_class_bind_template_callback (widget_class, on_row_activated);
  gtk_widget_class_bind_template_callback (widget_class, on_profile_changed);
}
