/* qm-create-dialog.c: the dialog that creates a qube
 *
 * CreateDomain (in the pool chosen, or the default one), then SetProperty netvm when the user
 * chose something else than the default. The dialog stays open (with the error in its info bar)
 * when either call fails. Once the qube is made, its settings open if the user asked: the
 * parent window's action "open-settings" (qm-window.c) waits until the list knows the qube.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "qm-create-dialog.h"
#include "qm-error.h"
#include "qm-qube-store.h"
#include "qm-storage.h"

#define NETVM_DEFAULT "\001default"
#define POOL_DEFAULT "\001default"

struct _QmCreateDialog
{
  GtkDialog     parent_instance;

  QmClient     *client;
  GCancellable *cancellable;
  gboolean      busy;

  GtkWidget    *info_bar;
  GtkWidget    *error_label;
  GtkWidget    *name_entry;
  GtkWidget    *class_combo;
  GtkWidget    *label_combo;
  GtkWidget    *template_combo;
  GtkWidget    *netvm_combo;
  GtkWidget    *pool_combo;
  GtkWidget    *open_settings_check;
  GtkWidget    *create_button;
};

G_DEFINE_TYPE (QmCreateDialog, qm_create_dialog, GTK_TYPE_DIALOG)

static void
show_error (QmCreateDialog *self,
            const gchar    *primary,
            const GError   *error)
{
  g_autofree gchar *text = qm_error_describe (error);

  if (text == NULL)
    return;
  if (primary != NULL)
    {
      gchar *full = g_strdup_printf ("%s\n%s", primary, text);

      g_free (text);
      text = full;
    }
  gtk_label_set_text (GTK_LABEL (self->error_label), text);
  gtk_widget_show (self->info_bar);
}

static void
on_input_changed (QmCreateDialog *self)
{
  const gchar *name = gtk_entry_get_text (GTK_ENTRY (self->name_entry));

  gtk_widget_set_sensitive (self->create_button, !self->busy && name[0] != '\0');
}

static void
fill_templates (QmCreateDialog *self)
{
  const gchar *klass = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->class_combo));
  GtkComboBoxText *combo = GTK_COMBO_BOX_TEXT (self->template_combo);
  GList *domains, *l;
  gboolean want_dispvm_template = g_strcmp0 (klass, "DispVM") == 0;
  gboolean none = g_strcmp0 (klass, "TemplateVM") == 0;

  gtk_combo_box_text_remove_all (combo);
  gtk_combo_box_text_append (combo, "", _("(default)"));
  domains = none ? NULL : qm_client_get_domains (self->client);
  for (l = domains; l != NULL; l = l->next)
    {
      const gchar *name = qm_object_get_string (l->data, "Domain", "Name");

      if (want_dispvm_template
          ? qm_object_get_boolean (l->data, "AppVM", "TemplateForDispvms")
          : g_strcmp0 (qm_object_get_string (l->data, "Domain", "Klass"), "TemplateVM") == 0)
        gtk_combo_box_text_append (combo, name, name);
    }
  g_list_free_full (domains, g_object_unref);
  gtk_combo_box_set_active (GTK_COMBO_BOX (combo), 0);
  gtk_widget_set_sensitive (self->template_combo, !none);
}

static void
on_class_changed (QmCreateDialog *self)
{
  fill_templates (self);
}

static void
fill_labels_and_netvms (QmCreateDialog *self)
{
  g_autoptr(GtkListStore) labels = gtk_list_store_new (2, GDK_TYPE_PIXBUF, G_TYPE_STRING);
  GtkComboBoxText *netvm = GTK_COMBO_BOX_TEXT (self->netvm_combo);
  GList *list, *l;
  QmObject *manager;
  const gchar *default_netvm = NULL;
  g_autofree gchar *default_text = NULL;

  list = qm_client_get_labels (self->client);
  for (l = list; l != NULL; l = l->next)
    gtk_list_store_insert_with_values (labels, NULL, -1,
                                       0, qm_label_swatch (qm_object_get_string (l->data, "Label",
                                                                                 "Color")),
                                       1, qm_object_get_string (l->data, "Label", "Name"), -1);
  g_list_free_full (list, g_object_unref);
  gtk_combo_box_set_model (GTK_COMBO_BOX (self->label_combo), GTK_TREE_MODEL (labels));
  if (!gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->label_combo), "red"))
    gtk_combo_box_set_active (GTK_COMBO_BOX (self->label_combo), 0);

  /* The default netvm as the daemon reports it: the global property default_netvm. */
  manager = qm_client_get_manager (self->client);
  if (manager != NULL)
    default_netvm = qm_client_domain_name (self->client,
                                           qm_object_get_string (manager, "Manager",
                                                                 "DefaultNetvm"));
  default_text = g_strdup_printf (_("default (%s)"),
                                  default_netvm != NULL ? default_netvm : _("none"));
  gtk_combo_box_text_append (netvm, NETVM_DEFAULT, default_text);
  gtk_combo_box_text_append (netvm, "", _("none"));
  list = qm_client_get_domains (self->client);
  for (l = list; l != NULL; l = l->next)
    {
      if (qm_object_get_boolean (l->data, "QubesVM", "ProvidesNetwork"))
        {
          const gchar *name = qm_object_get_string (l->data, "Domain", "Name");

          gtk_combo_box_text_append (netvm, name, name);
        }
    }
  g_list_free_full (list, g_object_unref);
  gtk_combo_box_set_active (GTK_COMBO_BOX (netvm), 0);
}

/* The pools that can hold a qube's images, after "default (varlibqubes)". */
static void
storage_loaded (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  QmCreateDialog *self = QM_CREATE_DIALOG (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(QmStorage) storage = qm_storage_load_finish (result, &error);
  guint i;

  if (storage != NULL)
    for (i = 0; i < storage->pools->len; i++)
      {
        const QmPool *pool = storage->pools->pdata[i];

        if (qm_pool_holds_images (pool))
          gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->pool_combo), pool->name,
                                     pool->name);
      }
  g_object_unref (self);
}

static void
fill_pools (QmCreateDialog *self)
{
  QmObject *manager = qm_client_get_manager (self->client);
  const gchar *default_pool = manager != NULL ? qm_object_get_string (manager, "Manager",
                                                                      "DefaultPool") : NULL;
  g_autofree gchar *text = g_strdup_printf (_("default (%s)"),
                                            default_pool != NULL && default_pool[0] != '\0'
                                            ? default_pool : _("none"));

  gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->pool_combo), POOL_DEFAULT, text);
  gtk_combo_box_set_active (GTK_COMBO_BOX (self->pool_combo), 0);
  qm_storage_load_async (self->client, self->cancellable, storage_loaded, g_object_ref (self));
}

static void
set_busy (QmCreateDialog *self,
          gboolean        busy)
{
  self->busy = busy;
  on_input_changed (self);
}

typedef struct
{
  QmCreateDialog *self;
  gchar          *name;
  gchar          *netvm;
  gchar          *path;           /* the new qube's, once created */
  gboolean        open_settings;
} CreateData;

static void
create_data_free (CreateData *data)
{
  g_object_unref (data->self);
  g_free (data->name);
  g_free (data->netvm);
  g_free (data->path);
  g_free (data);
}

/* The qube exists: the dialog goes, and the qube's settings come if the user asked. */
static void
created (CreateData *data)
{
  GtkWindow *parent = gtk_window_get_transient_for (GTK_WINDOW (data->self));

  if (data->open_settings && G_IS_ACTION_GROUP (parent)
      && g_action_group_has_action (G_ACTION_GROUP (parent), "open-settings"))
    g_action_group_activate_action (G_ACTION_GROUP (parent), "open-settings",
                                    g_variant_new_object_path (data->path));
  gtk_widget_destroy (GTK_WIDGET (data->self));
}

static void
netvm_set (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  CreateData *data = user_data;
  QmCreateDialog *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);

  if (g_cancellable_is_cancelled (self->cancellable))
    goto out;
  set_busy (self, FALSE);
  if (reply == NULL)
    {
      g_autofree gchar *primary = g_strdup_printf (_("The qube %s was created, but its "
                                                     "networking could not be set."),
                                                   data->name);

      qm_error_show (gtk_window_get_transient_for (GTK_WINDOW (self)), primary, error);
    }
  created (data);
out:
  create_data_free (data);
}

static void
domain_created (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  CreateData *data = user_data;
  QmCreateDialog *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  const gchar *path;

  if (g_cancellable_is_cancelled (self->cancellable))
    {
      create_data_free (data);
      return;
    }
  if (reply == NULL)
    {
      set_busy (self, FALSE);
      show_error (self, _("Cannot create the qube"), error);
      create_data_free (data);
      return;
    }
  g_variant_get (reply, "(&o)", &path);
  data->path = g_strdup (path);
  if (g_strcmp0 (data->netvm, NETVM_DEFAULT) == 0)
    {
      created (data);
      create_data_free (data);
      return;
    }
  qm_client_call (self->client, path, "org.qubes_os.Admin1.Domain", "SetProperty",
                  g_variant_new ("(ss)", "netvm", data->netvm), self->cancellable, netvm_set,
                  data);
}

static void
qm_create_dialog_response (GtkDialog *dialog,
                           gint       response)
{
  QmCreateDialog *self = QM_CREATE_DIALOG (dialog);
  const gchar *name, *klass, *label, *template_name, *netvm, *pool;
  GVariantBuilder options;
  CreateData *data;

  if (response != GTK_RESPONSE_OK)
    {
      gtk_widget_destroy (GTK_WIDGET (dialog));
      return;
    }
  if (self->busy)
    return;

  name = gtk_entry_get_text (GTK_ENTRY (self->name_entry));
  klass = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->class_combo));
  label = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->label_combo));
  template_name = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->template_combo));
  netvm = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->netvm_combo));
  pool = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->pool_combo));
  if (name[0] == '\0' || klass == NULL || label == NULL)
    return;

  gtk_widget_hide (self->info_bar);
  set_busy (self, TRUE);
  data = g_new0 (CreateData, 1);
  data->self = g_object_ref (self);
  data->name = g_strdup (name);
  data->netvm = g_strdup (netvm != NULL ? netvm : NETVM_DEFAULT);
  data->open_settings
    = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->open_settings_check));
  g_variant_builder_init (&options, G_VARIANT_TYPE ("a{ss}"));
  /* every volume of the qube in that pool (its snapshots follow their template's) */
  if (pool != NULL && g_strcmp0 (pool, POOL_DEFAULT) != 0)
    g_variant_builder_add (&options, "{ss}", "pool", pool);
  qm_client_call (self->client, QM_ROOT_PATH, "org.qubes_os.Admin1.Manager", "CreateDomain",
                  g_variant_new ("(ssssa{ss})", klass, name, label,
                                 template_name != NULL ? template_name : "", &options),
                  self->cancellable, domain_created, data);
}

QmCreateDialog *
qm_create_dialog_new (GtkWindow *parent,
                      QmClient  *client)
{
  QmCreateDialog *self = g_object_new (QM_TYPE_CREATE_DIALOG, "transient-for", parent, NULL);

  self->client = g_object_ref (client);
  fill_labels_and_netvms (self);
  fill_templates (self);
  fill_pools (self);
  return self;
}

static void
qm_create_dialog_dispose (GObject *object)
{
  QmCreateDialog *self = QM_CREATE_DIALOG (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_create_dialog_parent_class)->dispose (object);
}

static void
qm_create_dialog_finalize (GObject *object)
{
  QmCreateDialog *self = QM_CREATE_DIALOG (object);

  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (qm_create_dialog_parent_class)->finalize (object);
}

static void
qm_create_dialog_init (QmCreateDialog *self)
{
  GtkCellRenderer *renderer;

  self->cancellable = g_cancellable_new ();
  gtk_widget_init_template (GTK_WIDGET (self));
  qm_error_name_info_bar_close (GTK_INFO_BAR (self->info_bar));

  renderer = gtk_cell_renderer_pixbuf_new ();
  gtk_cell_layout_pack_start (GTK_CELL_LAYOUT (self->label_combo), renderer, FALSE);
  gtk_cell_layout_add_attribute (GTK_CELL_LAYOUT (self->label_combo), renderer, "pixbuf", 0);
  renderer = gtk_cell_renderer_text_new ();
  gtk_cell_layout_pack_start (GTK_CELL_LAYOUT (self->label_combo), renderer, TRUE);
  gtk_cell_layout_add_attribute (GTK_CELL_LAYOUT (self->label_combo), renderer, "text", 1);
}

static void
qm_create_dialog_class_init (QmCreateDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkDialogClass *dialog_class = GTK_DIALOG_CLASS (klass);

  object_class->dispose = qm_create_dialog_dispose;
  object_class->finalize = qm_create_dialog_finalize;
  dialog_class->response = qm_create_dialog_response;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-create-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, info_bar);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, error_label);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, name_entry);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, class_combo);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, label_combo);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, template_combo);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, netvm_combo);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, pool_combo);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, open_settings_check);
  gtk_widget_class_bind_template_child (widget_class, QmCreateDialog, create_button);
  gtk_widget_class_bind_template_callback (widget_class, on_input_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_class_changed);
}
