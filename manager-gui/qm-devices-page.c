/* qm-devices-page.c: the Devices page of a qube's settings
 *
 * The qube's PCI assignments (DomainDevices.ListAssignedDevices) with their mode and the two
 * options upstream's Qube Manager offers, strict reset (no-strict-reset when off) and
 * permissive (the check boxes under the list act on the selected assignment); dom0's PCI
 * devices not assigned yet to choose from (ListAvailableDevices). Every change is one call at
 * once (AssignDevice, UnassignDevice; an option is changed by assigning again), each allowing
 * interactive authorization, as in upstream's Devices tab: Apply has nothing to add. The page
 * follows the qube's device events and dom0's device list, so it shows what qubesd holds
 * whoever changed it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "qm-devices-page.h"
#include "qm-error.h"

#define DEVICES_INTERFACE "org.qubes_os.Admin1.DomainDevices"

enum
{
  COL_PORT,
  COL_DESCRIPTION,
  COL_MODE,
  COL_STRICT_RESET,
  COL_PERMISSIVE,
  COL_BACKEND,
  COL_PORT_ID,
  COL_DEVICE_ID,
};

struct _QmDevicesPage
{
  QmSettingsPage parent_instance;

  QmClient     *client; /* from the window, at the first load */
  gchar        *path;
  gchar        *name;
  GCancellable *cancellable;
  GDBusConnection *connection; /* the events' */
  guint         event_ids[4];
  guint         reload_id;
  GHashTable   *descriptions; /* port id -> description of dom0's PCI devices */
  GHashTable   *device_ids;   /* port id -> device id */

  GtkListStore *assigned_store;
  GtkWidget    *assigned_view;
  GtkWidget    *available_combo;
  GtkWidget    *assign_button;
  GtkWidget    *remove_button;
  GtkWidget    *strict_check;
  GtkWidget    *permissive_check;
  GtkWidget    *status_label;
  gboolean      updating; /* the check boxes are being set from the selection */
  gboolean      loading;  /* the window waits for qm_settings_page_loaded () */
};

G_DEFINE_TYPE (QmDevicesPage, qm_devices_page, QM_TYPE_SETTINGS_PAGE)

static void reload (QmDevicesPage *self);

static void
show_status (QmDevicesPage *self,
             const gchar   *primary,
             const GError  *error)
{
  g_autofree gchar *text = error != NULL ? qm_error_describe (error) : NULL;
  g_autofree gchar *full = NULL;

  if (error != NULL && text == NULL)
    return;
  full = text != NULL ? g_strdup_printf ("%s\n%s", primary, text) : g_strdup (primary);
  gtk_label_set_text (GTK_LABEL (self->status_label), full != NULL ? full : "");
  gtk_widget_set_visible (self->status_label, full != NULL && full[0] != '\0');
}

/* A read asked for by the window (qm_devices_page_load) ended. */
static void
end_load (QmDevicesPage *self,
          const gchar   *error_message)
{
  if (!self->loading)
    return;
  self->loading = FALSE;
  qm_settings_page_loaded (QM_SETTINGS_PAGE (self), error_message);
}

static gboolean
selected_row (QmDevicesPage *self,
              GtkTreeIter   *iter)
{
  GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->assigned_view));

  return gtk_tree_selection_get_selected (selection, NULL, iter);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* The description of a device from its Admin API items: vendor and product, or its name. */
static gchar *
describe (GVariant *items)
{
  const gchar *vendor = NULL, *product = NULL, *name = NULL, *key, *value;
  GVariantIter iter;

  g_variant_iter_init (&iter, items);
  while (g_variant_iter_next (&iter, "(&s&s)", &key, &value))
    {
      if (g_str_equal (key, "vendor"))
        vendor = value;
      else if (g_str_equal (key, "product"))
        product = value;
      else if (g_str_equal (key, "name"))
        name = value;
    }
  if (vendor != NULL && product != NULL)
    return g_strdup_printf ("%s %s", vendor, product);
  return g_strdup (product != NULL ? product : name != NULL ? name : vendor != NULL ? vendor : "");
}

static void
assigned_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  QmDevicesPage *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);
  g_autoptr(GHashTable) assigned = NULL;
  g_autofree gchar *keep = NULL;
  GVariantIter *iter;
  const gchar *backend, *port, *devid, *mode, *frontend;
  GVariant *options;

  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          show_status (self, _("The qube's devices cannot be read."), error);
          end_load (self, NULL);
        }
      g_object_unref (self);
      return;
    }
  assigned = g_hash_table_new (g_str_hash, g_str_equal);
  /* the selection survives the refresh (the same device, even with new options) */
  {
    GtkTreeIter sel;
    if (selected_row (self, &sel))
      gtk_tree_model_get (GTK_TREE_MODEL (self->assigned_store), &sel, COL_PORT, &keep, -1);
  }
  gtk_list_store_clear (self->assigned_store);
  g_variant_get (reply, "(a(sssssa(ss)))", &iter);
  while (g_variant_iter_next (iter, "(&s&s&s&s&s@a(ss))", &backend, &port, &devid, &mode,
                              &frontend, &options))
    {
      g_autofree gchar *label = g_strdup_printf ("%s:%s", backend, port);
      const gchar *description = g_hash_table_lookup (self->descriptions, port);
      gboolean strict = TRUE, permissive = FALSE;
      const gchar *key, *value;
      GVariantIter oi;

      g_variant_iter_init (&oi, options);
      while (g_variant_iter_next (&oi, "(&s&s)", &key, &value))
        {
          if (g_str_equal (key, "no-strict-reset"))
            strict = !g_str_equal (value, "True");
          else if (g_str_equal (key, "permissive"))
            permissive = g_str_equal (value, "True");
        }
      GtkTreeIter row;

      gtk_list_store_insert_with_values (self->assigned_store, &row, -1,
                                         COL_PORT, label,
                                         COL_DESCRIPTION,
                                         description != NULL ? description : _("(not on this host)"),
                                         COL_MODE, mode,
                                         COL_STRICT_RESET, strict,
                                         COL_PERMISSIVE, permissive,
                                         COL_BACKEND, backend,
                                         COL_PORT_ID, port,
                                         COL_DEVICE_ID, devid,
                                         -1);
      if (g_strcmp0 (label, keep) == 0)
        gtk_tree_selection_select_iter (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->assigned_view)),
                                        &row);
      if (g_str_equal (backend, "dom0"))
        g_hash_table_add (assigned, (gpointer) g_intern_string (port));
      g_variant_unref (options);
    }
  g_variant_iter_free (iter);

  /* what is left to choose from: dom0's devices not assigned yet */
  gtk_combo_box_text_remove_all (GTK_COMBO_BOX_TEXT (self->available_combo));
  {
    g_autoptr(GList) ports = g_list_sort (g_hash_table_get_keys (self->descriptions),
                                          (GCompareFunc) g_strcmp0);
    for (GList *l = ports; l != NULL; l = l->next)
      {
        g_autofree gchar *text = NULL;

        if (g_hash_table_contains (assigned, g_intern_string (l->data)))
          continue;
        text = g_strdup_printf ("dom0:%s  %s", (const gchar *) l->data,
                                (const gchar *) g_hash_table_lookup (self->descriptions, l->data));
        gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->available_combo), l->data, text);
      }
  }
  gtk_combo_box_set_active (GTK_COMBO_BOX (self->available_combo), 0);
  gtk_widget_set_sensitive (self->assign_button,
                            gtk_combo_box_get_active (GTK_COMBO_BOX (self->available_combo)) >= 0);
  end_load (self, NULL);
  g_object_unref (self);
}

static void
available_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  QmDevicesPage *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);
  GVariantIter *iter;
  const gchar *port, *devid;
  GVariant *items;

  if (reply != NULL)
    {
      g_hash_table_remove_all (self->descriptions);
      g_hash_table_remove_all (self->device_ids);
      g_variant_get (reply, "(a(ssa(ss)))", &iter);
      while (g_variant_iter_next (iter, "(&s&s@a(ss))", &port, &devid, &items))
        {
          g_hash_table_insert (self->descriptions, g_strdup (port), describe (items));
          g_hash_table_insert (self->device_ids, g_strdup (port), g_strdup (devid));
          g_variant_unref (items);
        }
      g_variant_iter_free (iter);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  /* then the qube's own list, which names some of them */
  g_dbus_connection_call (qm_client_get_connection (self->client), QM_BUS_NAME, self->path,
                          DEVICES_INTERFACE, "ListAssignedDevices", g_variant_new ("(s)", "pci"),
                          G_VARIANT_TYPE ("(a(sssssa(ss)))"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->cancellable, assigned_done, self);
}

static void
reload (QmDevicesPage *self)
{
  GDBusConnection *connection = qm_client_get_connection (self->client);

  if (connection == NULL)
    {
      end_load (self, NULL);
      return;
    }
  g_dbus_connection_call (connection, QM_BUS_NAME, QM_DOMAIN_PATH_PREFIX "dom0", DEVICES_INTERFACE,
                          "ListAvailableDevices", g_variant_new ("(s)", "pci"),
                          G_VARIANT_TYPE ("(a(ssa(ss)))"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->cancellable, available_done, g_object_ref (self));
}

static gboolean
reload_cb (gpointer user_data)
{
  QmDevicesPage *self = user_data;

  self->reload_id = 0;
  reload (self);
  return G_SOURCE_REMOVE;
}

/* The qube's PCI assignments changed, or dom0's PCI devices: read again (once for a burst).
 * Administrators learn it from the broadcasts (the qube's AssignedDevices in PropertiesChanged,
 * InterfacesAdded/Removed of devices; the client drops the Event copies that only repeat them),
 * other users from the Event copies. */
static void
on_event (GDBusConnection *connection,
          const gchar     *sender_name,
          const gchar     *object_path,
          const gchar     *interface_name,
          const gchar     *signal_name,
          GVariant        *parameters,
          gpointer         user_data)
{
  QmDevicesPage *self = user_data;
  const gchar *name;

  if (g_str_equal (signal_name, "PropertiesChanged") || g_str_has_prefix (signal_name, "Interfaces"))
    {
      if (g_str_equal (signal_name, "PropertiesChanged") && g_strcmp0 (object_path, self->path) != 0)
        return;
      if (self->reload_id == 0)
        self->reload_id = g_timeout_add (50, reload_cb, self);
      return;
    }
  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(tssa(ss))")))
    return;
  if (g_strcmp0 (object_path, self->path) != 0
      && g_strcmp0 (object_path, QM_DOMAIN_PATH_PREFIX "dom0") != 0)
    return;
  g_variant_get_child (parameters, 2, "&s", &name);
  if (!g_str_has_prefix (name, "device-") || !g_str_has_suffix (name, ":pci"))
    return;
  if (self->reload_id == 0)
    self->reload_id = g_timeout_add (50, reload_cb, self);
}

/* ---- changing -------------------------------------------------------------------------- */

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  QmDevicesPage *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);

  if (reply == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    show_status (self, _("The change was refused."), error);
  else if (reply != NULL)
    show_status (self, "", NULL);
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    reload (self);
  g_object_unref (self);
}

static GVariant *
assign_parameters (const gchar *port,
                   const gchar *devid,
                   gboolean     strict,
                   gboolean     permissive,
                   const gchar *frontend)
{
  GVariantBuilder options;

  g_variant_builder_init (&options, G_VARIANT_TYPE ("a(ss)"));
  if (!strict)
    g_variant_builder_add (&options, "(ss)", "no-strict-reset", "True");
  if (permissive)
    g_variant_builder_add (&options, "(ss)", "permissive", "True");
  return g_variant_new ("(sssssa(ss)s)", "pci", "dom0", port, devid, "required", &options, frontend);
}

static void
on_assign_clicked (QmDevicesPage *self)
{
  const gchar *port = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->available_combo));
  const gchar *devid = port != NULL ? g_hash_table_lookup (self->device_ids, port) : NULL;

  if (port == NULL || devid == NULL)
    return;
  qm_client_call (self->client, self->path, DEVICES_INTERFACE, "AssignDevice",
                  assign_parameters (port, devid, TRUE, FALSE, self->name), self->cancellable,
                  call_done, g_object_ref (self));
}


static void
on_remove_clicked (QmDevicesPage *self)
{
  g_autofree gchar *backend = NULL, *port = NULL, *devid = NULL;
  GtkTreeIter iter;

  if (!selected_row (self, &iter))
    return;
  gtk_tree_model_get (GTK_TREE_MODEL (self->assigned_store), &iter, COL_BACKEND, &backend,
                      COL_PORT_ID, &port, COL_DEVICE_ID, &devid, -1);
  qm_client_call (self->client, self->path, DEVICES_INTERFACE, "UnassignDevice",
                  g_variant_new ("(ssss)", "pci", backend, port, devid), self->cancellable,
                  call_done, g_object_ref (self));
}

/* An option is part of the assignment: changing one is unassigning and assigning again. */
typedef struct
{
  QmDevicesPage *page;
  GVariant      *assign;
} Reassign;

static void
reassign_unassigned (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Reassign *r = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);

  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          show_status (r->page, _("The change was refused."), error);
          reload (r->page);
        }
      g_variant_unref (r->assign);
      g_object_unref (r->page);
    }
  else
    qm_client_call (r->page->client, r->page->path, DEVICES_INTERFACE, "AssignDevice", r->assign,
                    r->page->cancellable, call_done, r->page);
  g_free (r);
}

static void
on_option_toggled (QmDevicesPage *self)
{
  g_autofree gchar *backend = NULL, *port = NULL, *devid = NULL;
  gboolean strict, permissive;
  GtkTreeIter iter;
  Reassign *r;

  if (self->updating || !selected_row (self, &iter))
    return;
  gtk_tree_model_get (GTK_TREE_MODEL (self->assigned_store), &iter, COL_BACKEND, &backend,
                      COL_PORT_ID, &port, COL_DEVICE_ID, &devid, -1);
  strict = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->strict_check));
  permissive = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->permissive_check));
  r = g_new0 (Reassign, 1);
  r->page = g_object_ref (self);
  r->assign = g_variant_ref_sink (assign_parameters (port, devid, strict, permissive, self->name));
  qm_client_call (self->client, self->path, DEVICES_INTERFACE, "UnassignDevice",
                  g_variant_new ("(ssss)", "pci", backend, port, devid), self->cancellable,
                  reassign_unassigned, r);
}

static void
on_selection_changed (QmDevicesPage *self)
{
  GtkTreeIter iter;
  gboolean have = selected_row (self, &iter), strict = TRUE, permissive = FALSE;

  if (have)
    gtk_tree_model_get (GTK_TREE_MODEL (self->assigned_store), &iter, COL_STRICT_RESET, &strict,
                        COL_PERMISSIVE, &permissive, -1);
  self->updating = TRUE;
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->strict_check), strict);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->permissive_check), permissive);
  self->updating = FALSE;
  gtk_widget_set_sensitive (self->remove_button, have);
  gtk_widget_set_sensitive (self->strict_check, have);
  gtk_widget_set_sensitive (self->permissive_check, have);
}

/* ---- construction ---------------------------------------------------------------------- */

static void
add_text_column (QmDevicesPage *self,
                 const gchar   *title,
                 gint           column)
{
  GtkCellRenderer *cell = gtk_cell_renderer_text_new ();
  GtkTreeViewColumn *col = gtk_tree_view_column_new_with_attributes (title, cell, "text", column,
                                                                     NULL);

  if (column == COL_DESCRIPTION)
    {
      /* the long one gives way, so that the options stay in view */
      g_object_set (cell, "ellipsize", PANGO_ELLIPSIZE_END, NULL);
      gtk_tree_view_column_set_expand (col, TRUE);
    }
  gtk_tree_view_column_set_resizable (col, TRUE);
  gtk_tree_view_append_column (GTK_TREE_VIEW (self->assigned_view), col);
}

static void
add_toggle_column (QmDevicesPage *self,
                   const gchar   *title,
                   gint           column)
{
  GtkCellRenderer *cell = gtk_cell_renderer_toggle_new ();

  /* shown here, changed with the check boxes under the list */
  g_object_set (cell, "activatable", FALSE, NULL);
  gtk_tree_view_append_column (GTK_TREE_VIEW (self->assigned_view),
                               gtk_tree_view_column_new_with_attributes (title, cell, "active",
                                                                         column, NULL));
}

/* The window's load, at opening and after each Apply: the first one also starts following the
 * qube's events. */
static void
qm_devices_page_load (QmSettingsPage *page)
{
  QmDevicesPage *self = QM_DEVICES_PAGE (page);
  static const gchar *const interfaces[] = { "org.qubes_os.Admin1.Subscription",
                                             "org.qubes_os.Admin1.Domain" };

  if (self->client == NULL)
    {
      self->client = g_object_ref (qm_settings_page_get_client (page));
      self->path = g_strdup (qm_settings_page_get_qube_path (page));
      self->name = g_strdup (qm_client_domain_name (self->client, self->path));
      if (self->name == NULL)
        self->name = g_strdup ("");
      self->cancellable = g_object_ref (qm_settings_page_get_cancellable (page));
      self->connection = qm_client_get_connection (self->client);
      if (self->connection != NULL)
        g_object_ref (self->connection);

      /* the qube's device events, and dom0's (its PCI list); the client has subscribed to the
       * events addressed to this connection, and the broadcasts come to an administrator */
      for (guint i = 0; self->connection != NULL && i < G_N_ELEMENTS (interfaces); i++)
        self->event_ids[i] = g_dbus_connection_signal_subscribe (
            self->connection, QM_BUS_NAME, interfaces[i], "Event", NULL, NULL,
            G_DBUS_SIGNAL_FLAGS_NONE, on_event, self, NULL);
      if (self->connection != NULL)
        {
          self->event_ids[2] = g_dbus_connection_signal_subscribe (
              self->connection, QM_BUS_NAME, "org.freedesktop.DBus.Properties",
              "PropertiesChanged", self->path, DEVICES_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE,
              on_event, self, NULL);
          self->event_ids[3] = g_dbus_connection_signal_subscribe (
              self->connection, QM_BUS_NAME, "org.freedesktop.DBus.ObjectManager", NULL,
              QM_ROOT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_event, self, NULL);
        }
    }
  if (self->loading)
    {
      /* one read is already on its way: it ends this load too */
      return;
    }
  self->loading = TRUE;
  reload (self);
}

static void
qm_devices_page_dispose (GObject *object)
{
  QmDevicesPage *self = QM_DEVICES_PAGE (object);

  g_cancellable_cancel (self->cancellable);
  for (guint i = 0; i < G_N_ELEMENTS (self->event_ids); i++)
    if (self->event_ids[i] != 0)
      g_dbus_connection_signal_unsubscribe (self->connection, self->event_ids[i]);
  memset (self->event_ids, 0, sizeof self->event_ids);
  g_clear_object (&self->connection);
  if (self->reload_id != 0)
    g_source_remove (self->reload_id);
  self->reload_id = 0;
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_devices_page_parent_class)->dispose (object);
}

static void
qm_devices_page_finalize (GObject *object)
{
  QmDevicesPage *self = QM_DEVICES_PAGE (object);

  g_clear_object (&self->cancellable);
  g_hash_table_unref (self->descriptions);
  g_hash_table_unref (self->device_ids);
  g_free (self->path);
  g_free (self->name);
  G_OBJECT_CLASS (qm_devices_page_parent_class)->finalize (object);
}

static void
qm_devices_page_init (QmDevicesPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  add_text_column (self, _("Device"), COL_PORT);
  add_text_column (self, _("Description"), COL_DESCRIPTION);
  add_text_column (self, _("Mode"), COL_MODE);
  add_toggle_column (self, _("Strict reset"), COL_STRICT_RESET);
  add_toggle_column (self, _("Permissive"), COL_PERMISSIVE);
  g_signal_connect_swapped (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->assigned_view)),
                            "changed", G_CALLBACK (on_selection_changed), self);
  on_selection_changed (self);
  gtk_widget_set_sensitive (self->assign_button, FALSE);
  self->descriptions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->device_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static void
qm_devices_page_class_init (QmDevicesPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  QmSettingsPageClass *page_class = QM_SETTINGS_PAGE_CLASS (klass);

  object_class->dispose = qm_devices_page_dispose;
  object_class->finalize = qm_devices_page_finalize;
  /* no apply: every change was made at once */
  page_class->load = qm_devices_page_load;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-devices-page.ui");
  gtk_widget_class_bind_template_child (widget_class, QmDevicesPage, assigned_store);
  gtk_widget_class_bind_template_child (widget_class, QmDevicesPage, assigned_view);
  gtk_widget_class_bind_template_child (widget_class, QmDevicesPage, available_combo);
  gtk_widget_class_bind_template_child (widget_class, QmDevicesPage, assign_button);
  gtk_widget_class_bind_template_child (widget_class, QmDevicesPage, remove_button);
  gtk_widget_class_bind_template_child (widget_class, QmDevicesPage, strict_check);
  gtk_widget_class_bind_template_child (widget_class, QmDevicesPage, permissive_check);
  gtk_widget_class_bind_template_child (widget_class, QmDevicesPage, status_label);
  gtk_widget_class_bind_template_callback (widget_class, on_assign_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_remove_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_option_toggled);
}
