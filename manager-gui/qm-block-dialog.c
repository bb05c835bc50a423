/* qm-block-dialog.c: attach and detach dom0's block devices to one qube
 *
 * The list is dom0's block devices (DomainDevices.ListAvailableDevices of dom0), each with the
 * qube it is attached to; Attach and Detach are DomainDevices.AttachDevice / DetachDevice of
 * the chosen qube, allowing interactive authorization. The list follows the devices as they come
 * and go (a disk plugged in, a loop device set up) and as they are attached anywhere.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "qm-block-dialog.h"
#include "qm-error.h"

#define DEVICES_INTERFACE "org.qubes_os.Admin1.DomainDevices"

enum
{
  COL_PORT_ID,
  COL_DEVICE,
  COL_DESCRIPTION,
  COL_SIZE,
  COL_ATTACHED,
};

enum
{
  RESPONSE_ATTACH = 1,
  RESPONSE_DETACH = 2,
};

struct _QmBlockDialog
{
  GtkDialog     parent_instance;

  QmClient     *client;
  gchar        *path;
  gchar        *name;
  GCancellable *cancellable;
  guint         signal_ids[4];
  guint         reload_id;
  gboolean      busy;

  GtkListStore *store;
  GtkWidget    *view;
  GtkWidget    *intro_label;
  GtkWidget    *status_label;
};

G_DEFINE_TYPE (QmBlockDialog, qm_block_dialog, GTK_TYPE_DIALOG)

static void reload (QmBlockDialog *self);

static void
show_status (QmBlockDialog *self,
             const gchar   *primary,
             const GError  *error)
{
  g_autofree gchar *text = error != NULL ? qm_error_describe (error) : NULL;
  g_autofree gchar *full = NULL;

  if (error != NULL && text == NULL)
    return;
  full = text != NULL ? g_strdup_printf ("%s\n%s", primary, text) : g_strdup (primary);
  gtk_label_set_text (GTK_LABEL (self->status_label), full);
  gtk_widget_set_visible (self->status_label, full[0] != '\0');
}

static gboolean
selected (QmBlockDialog *self,
          gchar        **out_port,
          gchar        **out_attached)
{
  GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view));
  GtkTreeIter iter;

  if (!gtk_tree_selection_get_selected (selection, NULL, &iter))
    return FALSE;
  gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, COL_PORT_ID, out_port, COL_ATTACHED,
                      out_attached, -1);
  return TRUE;
}

static void
update_buttons (QmBlockDialog *self)
{
  g_autofree gchar *port = NULL, *attached = NULL;
  QmObject *qube = qm_client_lookup_domain (self->client, self->path);
  const gchar *state = qube != NULL ? qm_object_get_string (qube, "Domain", "PowerState") : NULL;
  gboolean running = state != NULL && g_strcmp0 (state, "Halted") != 0;
  gboolean have = selected (self, &port, &attached);

  gtk_dialog_set_response_sensitive (GTK_DIALOG (self), RESPONSE_ATTACH,
                                     !self->busy && running && have && (attached == NULL || attached[0] == '\0'));
  gtk_dialog_set_response_sensitive (GTK_DIALOG (self), RESPONSE_DETACH,
                                     !self->busy && have && g_strcmp0 (attached, self->name) == 0);
}

/* ---- the list --------------------------------------------------------------------------- */

static void
list_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  QmBlockDialog *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);
  g_autofree gchar *keep_port = NULL, *keep_attached = NULL;
  GVariantIter *iter;
  const gchar *port, *devid;
  GVariant *items;

  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        show_status (self, _("dom0's block devices cannot be read."), error);
      g_object_unref (self);
      return;
    }
  /* the selection survives the refresh */
  selected (self, &keep_port, &keep_attached);
  gtk_list_store_clear (self->store);
  g_variant_get (reply, "(a(ssa(ss)))", &iter);
  while (g_variant_iter_next (iter, "(&s&s@a(ss))", &port, &devid, &items))
    {
      const gchar *key, *value, *name = NULL, *vendor = NULL, *attached = NULL;
      g_autofree gchar *device = g_strdup_printf ("dom0:%s", port);
      g_autofree gchar *description = NULL;
      GtkTreeIter row;
      GVariantIter it;

      g_variant_iter_init (&it, items);
      while (g_variant_iter_next (&it, "(&s&s)", &key, &value))
        {
          if (g_str_equal (key, "name"))
            name = value;
          else if (g_str_equal (key, "vendor"))
            vendor = value;
          else if (g_str_equal (key, "attachment"))
            attached = value;
        }
      description = vendor != NULL && name != NULL ? g_strdup_printf ("%s %s", vendor, name)
                                                   : g_strdup (name != NULL ? name : "");
      gtk_list_store_insert_with_values (self->store, &row, -1, COL_PORT_ID, port, COL_DEVICE, device,
                                         COL_DESCRIPTION, description, COL_SIZE, "",
                                         COL_ATTACHED, attached != NULL ? attached : "", -1);
      if (g_strcmp0 (port, keep_port) == 0)
        gtk_tree_selection_select_iter (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view)),
                                        &row);
      g_variant_unref (items);
    }
  g_variant_iter_free (iter);
  update_buttons (self);
  g_object_unref (self);
}

static void
reload (QmBlockDialog *self)
{
  GDBusConnection *connection = qm_client_get_connection (self->client);

  if (connection == NULL)
    return;
  g_dbus_connection_call (connection, QM_BUS_NAME, QM_DOMAIN_PATH_PREFIX "dom0", DEVICES_INTERFACE,
                          "ListAvailableDevices", g_variant_new ("(s)", "block"),
                          G_VARIANT_TYPE ("(a(ssa(ss)))"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->cancellable, list_done, g_object_ref (self));
}

static gboolean
reload_cb (gpointer user_data)
{
  QmBlockDialog *self = user_data;

  self->reload_id = 0;
  reload (self);
  return G_SOURCE_REMOVE;
}

/* A block device came, went, or was attached or detached anywhere: read again (once for a
 * burst). Administrators learn it from the broadcasts (InterfacesAdded/Removed, a device's
 * AttachedTo in PropertiesChanged; the client drops the Event copies that only repeat them),
 * other users from the Event copies. */
static void
on_signal (GDBusConnection *connection,
           const gchar     *sender_name,
           const gchar     *object_path,
           const gchar     *interface_name,
           const gchar     *signal_name,
           GVariant        *parameters,
           gpointer         user_data)
{
  QmBlockDialog *self = user_data;

  if (g_str_equal (signal_name, "PropertiesChanged"))
    {
      if (!g_str_has_prefix (object_path, QM_ROOT_PATH "/device/block/"))
        return;
    }
  else if (g_str_equal (signal_name, "Event"))
    {
      const gchar *name;

      if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(tssa(ss))")))
        return;
      g_variant_get_child (parameters, 2, "&s", &name);
      if (!g_str_has_prefix (name, "device-") || !g_str_has_suffix (name, ":block"))
        {
          /* the qube started or stopped: what may be done changes */
          update_buttons (self);
          return;
        }
    }
  if (self->reload_id == 0)
    self->reload_id = g_timeout_add (50, reload_cb, self);
}

/* ---- attach, detach ------------------------------------------------------------------------ */

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  QmBlockDialog *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);

  self->busy = FALSE;
  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        show_status (self, _("The device could not be attached or detached."), error);
    }
  else
    show_status (self, "", NULL);
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      update_buttons (self);
      reload (self);
    }
  g_object_unref (self);
}

static void
on_response (GtkDialog *dialog,
             gint       response)
{
  QmBlockDialog *self = QM_BLOCK_DIALOG (dialog);
  g_autofree gchar *port = NULL, *attached = NULL;

  if (response != RESPONSE_ATTACH && response != RESPONSE_DETACH)
    {
      gtk_widget_destroy (GTK_WIDGET (dialog));
      return;
    }
  if (!selected (self, &port, &attached) || self->busy)
    return;
  self->busy = TRUE;
  update_buttons (self);
  if (response == RESPONSE_ATTACH)
    qm_client_call (self->client, self->path, DEVICES_INTERFACE, "AttachDevice",
                    g_variant_new ("(ssss@a(ss)s)", "block", "dom0", port, "*",
                                   g_variant_new_array (G_VARIANT_TYPE ("(ss)"), NULL, 0), ""),
                    self->cancellable, call_done, g_object_ref (self));
  else
    qm_client_call (self->client, self->path, DEVICES_INTERFACE, "DetachDevice",
                    g_variant_new ("(sss)", "block", "dom0", port), self->cancellable, call_done,
                    g_object_ref (self));
}

/* ---- construction ---------------------------------------------------------------------- */

static void
add_column (QmBlockDialog *self,
            const gchar   *title,
            gint           column)
{
  GtkTreeViewColumn *col = gtk_tree_view_column_new_with_attributes (title,
                                                                     gtk_cell_renderer_text_new (),
                                                                     "text", column, NULL);

  gtk_tree_view_column_set_resizable (col, TRUE);
  gtk_tree_view_append_column (GTK_TREE_VIEW (self->view), col);
}

GtkWidget *
qm_block_dialog_new (GtkWindow   *parent,
                     QmClient    *client,
                     const gchar *domain_path)
{
  QmBlockDialog *self;
  GDBusConnection *connection = qm_client_get_connection (client);
  const gchar *name = qm_client_domain_name (client, domain_path);
  g_autofree gchar *title = NULL, *intro = NULL;

  if (name == NULL)
    return NULL;
  self = g_object_new (QM_TYPE_BLOCK_DIALOG, "use-header-bar", FALSE, NULL);
  self->client = g_object_ref (client);
  self->path = g_strdup (domain_path);
  self->name = g_strdup (name);
  /* TRANSLATORS: window title, %s is the qube's name */
  title = g_strdup_printf (_("%s: Block Devices"), name);
  gtk_window_set_title (GTK_WINDOW (self), title);
  gtk_window_set_transient_for (GTK_WINDOW (self), parent);
  /* TRANSLATORS: %s is the qube's name */
  intro = g_strdup_printf (_("dom0's disks, partitions and loop devices. An attached device is "
                             "used by that qube only; %s must be running to get one."),
                           name);
  gtk_label_set_text (GTK_LABEL (self->intro_label), intro);
  add_column (self, _("Device"), COL_DEVICE);
  add_column (self, _("Description"), COL_DESCRIPTION);
  add_column (self, _("Attached to"), COL_ATTACHED);
  gtk_dialog_add_button (GTK_DIALOG (self), _("_Detach"), RESPONSE_DETACH);
  gtk_dialog_add_button (GTK_DIALOG (self), _("_Attach"), RESPONSE_ATTACH);
  gtk_dialog_add_button (GTK_DIALOG (self), _("_Close"), GTK_RESPONSE_CLOSE);
  g_signal_connect (self, "response", G_CALLBACK (on_response), NULL);
  g_signal_connect_swapped (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->view)), "changed",
                            G_CALLBACK (update_buttons), self);
  g_signal_connect_object (client, "changed", G_CALLBACK (update_buttons), self,
                           G_CONNECT_SWAPPED);
  if (connection != NULL)
    {
      self->signal_ids[0] = g_dbus_connection_signal_subscribe (
          connection, QM_BUS_NAME, "org.qubes_os.Admin1.Subscription", "Event", NULL, NULL,
          G_DBUS_SIGNAL_FLAGS_NONE, on_signal, self, NULL);
      self->signal_ids[1] = g_dbus_connection_signal_subscribe (
          connection, QM_BUS_NAME, "org.qubes_os.Admin1.Domain", "Event", NULL, NULL,
          G_DBUS_SIGNAL_FLAGS_NONE, on_signal, self, NULL);
      self->signal_ids[2] = g_dbus_connection_signal_subscribe (
          connection, QM_BUS_NAME, "org.freedesktop.DBus.ObjectManager", NULL, QM_ROOT_PATH, NULL,
          G_DBUS_SIGNAL_FLAGS_NONE, on_signal, self, NULL);
      self->signal_ids[3] = g_dbus_connection_signal_subscribe (
          connection, QM_BUS_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged", NULL,
          "org.qubes_os.Admin1.Device", G_DBUS_SIGNAL_FLAGS_NONE, on_signal, self, NULL);
    }
  update_buttons (self);
  reload (self);
  return GTK_WIDGET (self);
}

static void
qm_block_dialog_dispose (GObject *object)
{
  QmBlockDialog *self = QM_BLOCK_DIALOG (object);
  GDBusConnection *connection = self->client != NULL ? qm_client_get_connection (self->client) : NULL;

  g_cancellable_cancel (self->cancellable);
  for (guint i = 0; i < G_N_ELEMENTS (self->signal_ids); i++)
    if (self->signal_ids[i] != 0 && connection != NULL)
      g_dbus_connection_signal_unsubscribe (connection, self->signal_ids[i]);
  memset (self->signal_ids, 0, sizeof self->signal_ids);
  if (self->reload_id != 0)
    g_source_remove (self->reload_id);
  self->reload_id = 0;
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_block_dialog_parent_class)->dispose (object);
}

static void
qm_block_dialog_finalize (GObject *object)
{
  QmBlockDialog *self = QM_BLOCK_DIALOG (object);

  g_clear_object (&self->cancellable);
  g_free (self->path);
  g_free (self->name);
  G_OBJECT_CLASS (qm_block_dialog_parent_class)->finalize (object);
}

static void
qm_block_dialog_init (QmBlockDialog *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();
}

static void
qm_block_dialog_class_init (QmBlockDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qm_block_dialog_dispose;
  object_class->finalize = qm_block_dialog_finalize;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-block-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, QmBlockDialog, store);
  gtk_widget_class_bind_template_child (widget_class, QmBlockDialog, view);
  gtk_widget_class_bind_template_child (widget_class, QmBlockDialog, intro_label);
  gtk_widget_class_bind_template_child (widget_class, QmBlockDialog, status_label);
}
