/* qm-settings-window.c: the settings of one qube
 *
 * The window reads the qube once (GetAllProperties, the Features property, GetNotes) and
 * applies only what the user changed, one call after another (SetProperty, ResetProperty,
 * SetFeature, RemoveFeature, SetNotes), each allowing interactive authorization. Failures are
 * collected in the info bar; the values are read again afterwards so the window shows what the
 * daemon holds.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-error.h"
#include "qm-settings-window.h"

#define DEFAULT_ID "\001default"

typedef enum
{
  KIND_CHECK,
  KIND_SPIN,
  KIND_ENTRY,
  KIND_COMBO_LABEL,
  KIND_COMBO_TEMPLATE,
  KIND_COMBO_NETVM,
  KIND_COMBO_DISPVM,
  KIND_COMBO_VIRT_MODE,
  KIND_INFO,               /* shown, never set (read-only or write-once) */
} PropKind;

typedef struct
{
  const gchar *name;
  const gchar *title;
  PropKind     kind;
  gboolean     advanced;
} PropDef;

static const PropDef prop_defs[] = {
  { "label", N_("_Label"), KIND_COMBO_LABEL, FALSE },
  { "template", N_("_Template"), KIND_COMBO_TEMPLATE, FALSE },
  { "netvm", N_("_Networking"), KIND_COMBO_NETVM, FALSE },
  { "include_in_backups", N_("Include in _backups by default"), KIND_CHECK, FALSE },
  { "autostart", N_("Start _automatically on boot"), KIND_CHECK, FALSE },
  { "memory", N_("Initial _memory (MiB)"), KIND_SPIN, TRUE },
  { "maxmem", N_("Ma_ximum memory (MiB)"), KIND_SPIN, TRUE },
  { "vcpus", N_("_Virtual CPUs"), KIND_SPIN, TRUE },
  { "kernel", N_("_Kernel"), KIND_ENTRY, TRUE },
  { "kernelopts", N_("Kernel _options"), KIND_ENTRY, TRUE },
  { "virt_mode", N_("Virtuali_zation mode"), KIND_COMBO_VIRT_MODE, TRUE },
  { "debug", N_("_Debug mode"), KIND_CHECK, TRUE },
  { "provides_network", N_("_Provides network access to other qubes"), KIND_CHECK, TRUE },
  { "template_for_dispvms", N_("Disposable _template (can start disposables)"), KIND_CHECK,
    TRUE },
  { "default_dispvm", N_("Default _disposable template"), KIND_COMBO_DISPVM, TRUE },
  { "name", N_("Name"), KIND_INFO, FALSE },
  { "klass", N_("Class"), KIND_INFO, FALSE },
  { "qid", N_("Qube ID"), KIND_INFO, TRUE },
  { "uuid", N_("UUID"), KIND_INFO, TRUE },
  { "visible_ip", N_("IP address"), KIND_INFO, TRUE },
  { "updateable", N_("Updateable"), KIND_INFO, TRUE },
};

/* Disk sizes on the Basic tab: Volume.Resize, growing only. */
static const struct
{
  const gchar *volume;
  const gchar *title;
} disk_defs[] = {
  { "private", N_("_Private storage (MiB)") },
  { "root", N_("S_ystem storage (MiB)") },
};

#define N_DISKS G_N_ELEMENTS (disk_defs)
#define MIB ((guint64) 1024 * 1024)

#define N_PROPS G_N_ELEMENTS (prop_defs)

typedef struct
{
  GtkWidget *widget;
  GtkWidget *label;
  gboolean   present;
  gboolean   is_default;
  gchar     *value;
} PropState;

typedef struct
{
  gchar    *method;
  GVariant *parameters;
  gchar    *what;
  gchar    *object_path;     /* NULL: the qube's */
  gchar    *interface_name;  /* NULL: Domain */
} Op;

typedef struct
{
  GtkWidget *spin;
  GtkWidget *label;
  gchar     *path;      /* the volume's object path, NULL when the qube has none */
  guint64    size;      /* bytes, as loaded */
} DiskState;

struct _QmSettingsWindow
{
  GtkWindow     parent_instance;

  QmClient     *client;
  gchar        *path;
  gchar        *name;
  GCancellable *cancellable;

  GtkWidget    *info_bar;
  GtkWidget    *info_label;
  GtkWidget    *notebook;
  GtkWidget    *apply_button;
  GtkWidget    *ok_button;
  PropState     props[N_PROPS];
  DiskState     disks[N_DISKS];

  GtkWidget    *services_box;
  GtkWidget    *service_entry;
  GHashTable   *services;          /* service name -> GtkCheckButton */
  GHashTable   *orig_features;     /* name -> value, as loaded */

  GtkListStore *features_store;
  GtkWidget    *features_view;

  GtkTextBuffer *notes;
  gchar        *orig_notes;

  GQueue        ops;
  GString      *errors;
  gboolean      close_when_done;
  guint         pending_loads;
};

G_DEFINE_TYPE (QmSettingsWindow, qm_settings_window, GTK_TYPE_WINDOW)

static void load (QmSettingsWindow *self);

static void
op_free (Op *op)
{
  g_free (op->method);
  if (op->parameters != NULL)
    g_variant_unref (op->parameters);
  g_free (op->what);
  g_free (op->object_path);
  g_free (op->interface_name);
  g_free (op);
}

static void
show_message (QmSettingsWindow *self,
              const gchar      *text)
{
  gtk_label_set_text (GTK_LABEL (self->info_label), text);
  gtk_widget_set_visible (self->info_bar, text != NULL && text[0] != '\0');
}

static void
set_busy (QmSettingsWindow *self,
          gboolean          busy)
{
  gtk_widget_set_sensitive (self->notebook, !busy);
  gtk_widget_set_sensitive (self->apply_button, !busy);
  gtk_widget_set_sensitive (self->ok_button, !busy);
}

/* ---- building the pages ---------------------------------------------------------------- */

static GtkWidget *
make_grid (void)
{
  GtkWidget *grid = gtk_grid_new ();

  gtk_grid_set_row_spacing (GTK_GRID (grid), 8);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  gtk_container_set_border_width (GTK_CONTAINER (grid), 12);
  return grid;
}

static GtkWidget *
make_prop_widget (QmSettingsWindow *self,
                  guint             index)
{
  const PropDef *def = &prop_defs[index];

  switch (def->kind)
    {
    case KIND_CHECK:
      return gtk_check_button_new_with_mnemonic (_(def->title));
    case KIND_SPIN:
      {
        GtkWidget *spin = gtk_spin_button_new_with_range (0, g_str_equal (def->name, "vcpus")
                                                             ? 128 : 1024 * 1024, 1);

        gtk_spin_button_set_digits (GTK_SPIN_BUTTON (spin), 0);
        return spin;
      }
    case KIND_ENTRY:
      return gtk_entry_new ();
    case KIND_INFO:
      {
        GtkWidget *entry = gtk_entry_new ();

        gtk_editable_set_editable (GTK_EDITABLE (entry), FALSE);
        gtk_widget_set_can_focus (entry, TRUE);
        atk_object_set_name (gtk_widget_get_accessible (entry), _(def->title));
        return entry;
      }
    case KIND_COMBO_LABEL:
      {
        GtkWidget *combo = gtk_combo_box_text_new ();
        GList *labels = qm_client_get_labels (self->client), *l;

        for (l = labels; l != NULL; l = l->next)
          {
            const gchar *name = qm_object_get_string (l->data, "Label", "Name");

            gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (combo), name, name);
          }
        g_list_free_full (labels, g_object_unref);
        return combo;
      }
    default:
      return gtk_combo_box_text_new ();
    }
}

static void
fill_qube_combo (QmSettingsWindow *self,
                 guint             index)
{
  PropState *state = &self->props[index];
  GtkComboBoxText *combo = GTK_COMBO_BOX_TEXT (state->widget);
  PropKind kind = prop_defs[index].kind;
  QmObject *me = qm_client_lookup_domain (self->client, self->path);
  gboolean dispvm_child = me != NULL && qm_object_has_interface (me, "DispVM");
  GList *domains, *l;

  gtk_combo_box_text_remove_all (combo);
  if (kind == KIND_COMBO_VIRT_MODE)
    {
      gtk_combo_box_text_append (combo, DEFAULT_ID, _("default"));
      gtk_combo_box_text_append (combo, "pvh", "PVH");
      gtk_combo_box_text_append (combo, "hvm", "HVM");
      gtk_combo_box_text_append (combo, "pv", "PV");
      return;
    }
  if (kind != KIND_COMBO_TEMPLATE)
    {
      gtk_combo_box_text_append (combo, DEFAULT_ID, _("default"));
      gtk_combo_box_text_append (combo, "", _("none"));
    }

  domains = qm_client_get_domains (self->client);
  for (l = domains; l != NULL; l = l->next)
    {
      const gchar *name = qm_object_get_string (l->data, "Domain", "Name");
      gboolean dispvm_template
        = qm_object_get_boolean (l->data, "AppVM", "TemplateForDispvms")
          || qm_object_get_boolean (l->data, "StandaloneVM", "TemplateForDispvms");
      gboolean fits;

      if (g_strcmp0 (name, self->name) == 0)
        continue;
      switch (kind)
        {
        case KIND_COMBO_TEMPLATE:
          fits = dispvm_child ? dispvm_template
                              : g_strcmp0 (qm_object_get_string (l->data, "Domain", "Klass"),
                                           "TemplateVM") == 0;
          break;
        case KIND_COMBO_NETVM:
          fits = qm_object_get_boolean (l->data, "QubesVM", "ProvidesNetwork");
          break;
        case KIND_COMBO_DISPVM:
          fits = dispvm_template;
          break;
        default:
          fits = FALSE;
          break;
        }
      if (fits)
        gtk_combo_box_text_append (combo, name, name);
    }
  g_list_free_full (domains, g_object_unref);
}

static void
build_property_page (QmSettingsWindow *self,
                     gboolean          advanced,
                     const gchar      *title)
{
  GtkWidget *grid = make_grid ();
  gint row = 0;
  guint i;

  for (i = 0; i < N_PROPS; i++)
    {
      PropState *state = &self->props[i];

      if (prop_defs[i].advanced != advanced)
        continue;
      state->widget = make_prop_widget (self, i);
      gtk_widget_set_hexpand (state->widget, TRUE);
      if (prop_defs[i].kind == KIND_CHECK)
        gtk_grid_attach (GTK_GRID (grid), state->widget, 0, row, 2, 1);
      else
        {
          state->label = gtk_label_new_with_mnemonic (_(prop_defs[i].title));
          gtk_label_set_mnemonic_widget (GTK_LABEL (state->label), state->widget);
          gtk_label_set_xalign (GTK_LABEL (state->label), 1.0);
          gtk_grid_attach (GTK_GRID (grid), state->label, 0, row, 1, 1);
          gtk_grid_attach (GTK_GRID (grid), state->widget, 1, row, 1, 1);
        }
      row++;
    }
  for (i = 0; !advanced && i < N_DISKS; i++)
    {
      DiskState *disk = &self->disks[i];

      disk->spin = gtk_spin_button_new_with_range (0, (gdouble) (G_GUINT64_CONSTANT (1) << 40),
                                                   1024);
      gtk_spin_button_set_digits (GTK_SPIN_BUTTON (disk->spin), 0);
      gtk_widget_set_hexpand (disk->spin, TRUE);
      disk->label = gtk_label_new_with_mnemonic (_(disk_defs[i].title));
      gtk_label_set_mnemonic_widget (GTK_LABEL (disk->label), disk->spin);
      atk_object_set_name (gtk_widget_get_accessible (disk->spin),
                           gtk_label_get_text (GTK_LABEL (disk->label)));
      gtk_label_set_xalign (GTK_LABEL (disk->label), 1.0);
      gtk_grid_attach (GTK_GRID (grid), disk->label, 0, row, 1, 1);
      gtk_grid_attach (GTK_GRID (grid), disk->spin, 1, row, 1, 1);
      row++;
    }
  gtk_notebook_append_page (GTK_NOTEBOOK (self->notebook), grid,
                            gtk_label_new_with_mnemonic (title));
}

static void
add_service_row (QmSettingsWindow *self,
                 const gchar      *service,
                 gboolean          enabled)
{
  GtkWidget *check;

  check = g_hash_table_lookup (self->services, service);
  if (check == NULL)
    {
      check = gtk_check_button_new_with_label (service);
      gtk_container_add (GTK_CONTAINER (self->services_box), check);
      gtk_widget_show (check);
      g_hash_table_insert (self->services, g_strdup (service), check);
    }
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (check), enabled);
}

static void
on_add_service (QmSettingsWindow *self)
{
  const gchar *service = gtk_entry_get_text (GTK_ENTRY (self->service_entry));

  if (service[0] == '\0')
    return;
  add_service_row (self, service, TRUE);
  gtk_entry_set_text (GTK_ENTRY (self->service_entry), "");
}

static void
build_services_page (QmSettingsWindow *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *intro, *scrolled, *row, *button;

  gtk_container_set_border_width (GTK_CONTAINER (box), 12);
  intro = gtk_label_new (_("Services run inside the qube when their box is ticked (features "
                           "named service.NAME)."));
  gtk_label_set_line_wrap (GTK_LABEL (intro), TRUE);
  gtk_label_set_xalign (GTK_LABEL (intro), 0.0);
  gtk_container_add (GTK_CONTAINER (box), intro);

  scrolled = gtk_scrolled_window_new (NULL, NULL);
  gtk_widget_set_vexpand (scrolled, TRUE);
  self->services_box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_container_add (GTK_CONTAINER (scrolled), self->services_box);
  gtk_container_add (GTK_CONTAINER (box), scrolled);

  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->service_entry = gtk_entry_new ();
  gtk_entry_set_placeholder_text (GTK_ENTRY (self->service_entry), _("Service name"));
  atk_object_set_name (gtk_widget_get_accessible (self->service_entry), _("Service name"));
  g_signal_connect_swapped (self->service_entry, "activate", G_CALLBACK (on_add_service), self);
  gtk_box_pack_start (GTK_BOX (row), self->service_entry, TRUE, TRUE, 0);
  button = gtk_button_new_with_mnemonic (_("_Add service"));
  g_signal_connect_swapped (button, "clicked", G_CALLBACK (on_add_service), self);
  gtk_box_pack_start (GTK_BOX (row), button, FALSE, FALSE, 0);
  gtk_container_add (GTK_CONTAINER (box), row);

  gtk_notebook_append_page (GTK_NOTEBOOK (self->notebook), box,
                            gtk_label_new_with_mnemonic (_("_Services")));
}

static void
on_feature_edited (GtkCellRendererText *renderer,
                   gchar               *path_string,
                   gchar               *new_text,
                   gpointer             user_data)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (user_data);
  gint column = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (renderer), "qm-column"));
  GtkTreeIter iter;

  if (gtk_tree_model_get_iter_from_string (GTK_TREE_MODEL (self->features_store), &iter,
                                           path_string))
    gtk_list_store_set (self->features_store, &iter, column, new_text, -1);
}

static void
on_add_feature (QmSettingsWindow *self)
{
  GtkTreeIter iter;
  g_autoptr(GtkTreePath) path = NULL;

  gtk_list_store_insert_with_values (self->features_store, &iter, -1, 0, "", 1, "", -1);
  path = gtk_tree_model_get_path (GTK_TREE_MODEL (self->features_store), &iter);
  gtk_tree_view_set_cursor (GTK_TREE_VIEW (self->features_view), path,
                            gtk_tree_view_get_column (GTK_TREE_VIEW (self->features_view), 0),
                            TRUE);
}

static void
on_remove_feature (QmSettingsWindow *self)
{
  GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->features_view));
  GtkTreeIter iter;

  if (gtk_tree_selection_get_selected (selection, NULL, &iter))
    gtk_list_store_remove (self->features_store, &iter);
}

static void
build_features_page (QmSettingsWindow *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *scrolled, *row, *button;
  const gchar *titles[] = { N_("Feature"), N_("Value") };
  guint i;

  gtk_container_set_border_width (GTK_CONTAINER (box), 12);
  self->features_store = gtk_list_store_new (2, G_TYPE_STRING, G_TYPE_STRING);
  self->features_view = gtk_tree_view_new_with_model (GTK_TREE_MODEL (self->features_store));
  atk_object_set_name (gtk_widget_get_accessible (self->features_view), _("Features"));
  for (i = 0; i < G_N_ELEMENTS (titles); i++)
    {
      GtkCellRenderer *renderer = gtk_cell_renderer_text_new ();
      GtkTreeViewColumn *column;

      g_object_set (renderer, "editable", TRUE, NULL);
      g_object_set_data (G_OBJECT (renderer), "qm-column", GINT_TO_POINTER (i));
      g_signal_connect (renderer, "edited", G_CALLBACK (on_feature_edited), self);
      column = gtk_tree_view_column_new_with_attributes (_(titles[i]), renderer, "text", i, NULL);
      gtk_tree_view_column_set_resizable (column, TRUE);
      gtk_tree_view_column_set_expand (column, TRUE);
      gtk_tree_view_append_column (GTK_TREE_VIEW (self->features_view), column);
    }
  scrolled = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (scrolled), GTK_SHADOW_IN);
  gtk_widget_set_vexpand (scrolled, TRUE);
  gtk_container_add (GTK_CONTAINER (scrolled), self->features_view);
  gtk_container_add (GTK_CONTAINER (box), scrolled);

  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  button = gtk_button_new_with_mnemonic (_("_Add feature"));
  g_signal_connect_swapped (button, "clicked", G_CALLBACK (on_add_feature), self);
  gtk_box_pack_start (GTK_BOX (row), button, FALSE, FALSE, 0);
  button = gtk_button_new_with_mnemonic (_("_Remove feature"));
  g_signal_connect_swapped (button, "clicked", G_CALLBACK (on_remove_feature), self);
  gtk_box_pack_start (GTK_BOX (row), button, FALSE, FALSE, 0);
  gtk_container_add (GTK_CONTAINER (box), row);

  gtk_notebook_append_page (GTK_NOTEBOOK (self->notebook), box,
                            gtk_label_new_with_mnemonic (_("_Features")));
}

static void
build_notes_page (QmSettingsWindow *self)
{
  GtkWidget *scrolled = gtk_scrolled_window_new (NULL, NULL);
  GtkWidget *view = gtk_text_view_new ();

  gtk_container_set_border_width (GTK_CONTAINER (scrolled), 12);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (scrolled), GTK_SHADOW_IN);
  gtk_text_view_set_wrap_mode (GTK_TEXT_VIEW (view), GTK_WRAP_WORD_CHAR);
  atk_object_set_name (gtk_widget_get_accessible (view), _("Notes"));
  self->notes = gtk_text_view_get_buffer (GTK_TEXT_VIEW (view));
  gtk_container_add (GTK_CONTAINER (scrolled), view);
  gtk_notebook_append_page (GTK_NOTEBOOK (self->notebook), scrolled,
                            gtk_label_new_with_mnemonic (_("N_otes")));
}

/* ---- loading --------------------------------------------------------------------------- */

static void
load_done (QmSettingsWindow *self)
{
  if (--self->pending_loads == 0)
    set_busy (self, FALSE);
}

static void
show_property (QmSettingsWindow *self,
               guint             index)
{
  PropState *state = &self->props[index];
  const gchar *value = state->value != NULL ? state->value : "";

  gboolean writable = qm_property_is_writable (prop_defs[index].name);

  /* What the caller may not set is shown, not offered: info fields stay readable (and
   * selectable), the other kinds are greyed out. */
  gtk_widget_set_sensitive (state->widget, state->present
                                           && (writable || prop_defs[index].kind == KIND_INFO));
  if (state->label != NULL)
    gtk_widget_set_sensitive (state->label, state->present);
  if (!writable && prop_defs[index].kind != KIND_INFO)
    gtk_widget_set_tooltip_text (state->widget, _("This property cannot be changed."));
  if (!state->present)
    return;

  switch (prop_defs[index].kind)
    {
    case KIND_CHECK:
      gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (state->widget),
                                    g_ascii_strcasecmp (value, "True") == 0);
      break;
    case KIND_SPIN:
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (state->widget),
                                 g_ascii_strtod (value, NULL));
      break;
    case KIND_ENTRY:
    case KIND_INFO:
      gtk_entry_set_text (GTK_ENTRY (state->widget), value);
      break;
    case KIND_COMBO_LABEL:
      gtk_combo_box_set_active_id (GTK_COMBO_BOX (state->widget), value);
      break;
    case KIND_COMBO_TEMPLATE:
      fill_qube_combo (self, index);
      if (!gtk_combo_box_set_active_id (GTK_COMBO_BOX (state->widget), value))
        {
          gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (state->widget), value, value);
          gtk_combo_box_set_active_id (GTK_COMBO_BOX (state->widget), value);
        }
      break;
    default:
      {
        g_autofree gchar *text = NULL;

        fill_qube_combo (self, index);
        /* The first row is the default: say what it currently is. */
        text = g_strdup_printf (_("default (%s)"), state->is_default
                                ? (value[0] != '\0' ? value : _("none")) : _("as configured"));
        gtk_combo_box_text_remove (GTK_COMBO_BOX_TEXT (state->widget), 0);
        gtk_combo_box_text_prepend (GTK_COMBO_BOX_TEXT (state->widget), DEFAULT_ID, text);
        if (state->is_default)
          gtk_combo_box_set_active_id (GTK_COMBO_BOX (state->widget), DEFAULT_ID);
        else if (!gtk_combo_box_set_active_id (GTK_COMBO_BOX (state->widget), value))
          {
            gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (state->widget), value, value);
            gtk_combo_box_set_active_id (GTK_COMBO_BOX (state->widget), value);
          }
        break;
      }
    }
}

static void
properties_loaded (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);
  g_autoptr(GVariantIter) iter = NULL;
  const gchar *name, *type, *value;
  gboolean is_default;
  guint i;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  if (reply == NULL)
    {
      g_autofree gchar *text = qm_error_describe (error);

      show_message (self, text);
    }
  else
    {
      for (i = 0; i < N_PROPS; i++)
        {
          self->props[i].present = FALSE;
          g_clear_pointer (&self->props[i].value, g_free);
        }
      g_variant_get (reply, "(a(ssbs))", &iter);
      while (g_variant_iter_next (iter, "(&s&sb&s)", &name, &type, &is_default, &value))
        for (i = 0; i < N_PROPS; i++)
          if (g_str_equal (name, prop_defs[i].name))
            {
              self->props[i].present = TRUE;
              self->props[i].is_default = is_default;
              self->props[i].value = g_strdup (value);
            }
      for (i = 0; i < N_PROPS; i++)
        show_property (self, i);
    }
  load_done (self);
  g_object_unref (self);
}

static void
notes_loaded (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (user_data);
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
    g_variant_get (reply, "(s)", &self->orig_notes);
  else
    self->orig_notes = g_strdup ("");
  gtk_text_buffer_set_text (self->notes, self->orig_notes, -1);
  load_done (self);
  g_object_unref (self);
}

static void
load_features (QmSettingsWindow *self)
{
  QmObject *object = qm_client_lookup_domain (self->client, self->path);
  GVariant *features = object != NULL ? qm_object_get_value (object, "Domain", "Features",
                                                             G_VARIANT_TYPE ("a{ss}"))
                                      : NULL;
  GHashTableIter hiter;
  gpointer check;
  GVariantIter iter;
  const gchar *name, *value;

  g_hash_table_remove_all (self->orig_features);
  gtk_list_store_clear (self->features_store);
  g_hash_table_iter_init (&hiter, self->services);
  while (g_hash_table_iter_next (&hiter, NULL, &check))
    gtk_widget_destroy (check);
  g_hash_table_remove_all (self->services);
  if (features == NULL)
    return;

  g_variant_iter_init (&iter, features);
  while (g_variant_iter_next (&iter, "{&s&s}", &name, &value))
    {
      g_hash_table_insert (self->orig_features, g_strdup (name), g_strdup (value));
      if (g_str_has_prefix (name, "service."))
        add_service_row (self, name + strlen ("service."), value[0] != '\0');
      else
        gtk_list_store_insert_with_values (self->features_store, NULL, -1, 0, name, 1, value,
                                           -1);
    }
}

/* Sizes from the Volume objects; a disk can only grow, so its current size is the minimum. A
 * snapshot of its template's (an AppVM's root) follows the template: shown, not editable. */
static void
load_disks (QmSettingsWindow *self)
{
  guint i;

  for (i = 0; i < N_DISKS; i++)
    {
      DiskState *disk = &self->disks[i];
      QmObject *volume = qm_client_lookup_volume (self->client, self->path, disk_defs[i].volume);
      gboolean snap_on_start;
      guint64 mib;

      g_clear_pointer (&disk->path, g_free);
      gtk_widget_set_visible (disk->spin, volume != NULL);
      gtk_widget_set_visible (disk->label, volume != NULL);
      if (volume == NULL)
        continue;
      disk->path = g_strdup (qm_object_get_path (volume));
      disk->size = qm_object_get_uint64 (volume, "Volume", "Size");
      snap_on_start = qm_object_get_boolean (volume, "Volume", "SnapOnStart");
      mib = (disk->size + MIB - 1) / MIB;
      gtk_spin_button_set_range (GTK_SPIN_BUTTON (disk->spin), (gdouble) mib,
                                 (gdouble) (G_GUINT64_CONSTANT (1) << 40));
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (disk->spin), (gdouble) mib);
      gtk_widget_set_sensitive (disk->spin, !snap_on_start);
      gtk_widget_set_tooltip_text (disk->spin, snap_on_start
                                   ? _("A snapshot of the template's: resize the template's.")
                                   : _("Disks can only grow."));
    }
}

static void
queue_disk_ops (QmSettingsWindow *self)
{
  guint i;

  for (i = 0; i < N_DISKS; i++)
    {
      DiskState *disk = &self->disks[i];
      guint64 wanted;
      Op *op;

      if (disk->path == NULL || !gtk_widget_get_sensitive (disk->spin))
        continue;
      wanted = (guint64) gtk_spin_button_get_value (GTK_SPIN_BUTTON (disk->spin)) * MIB;
      if (wanted <= disk->size)
        continue;
      op = g_new0 (Op, 1);
      op->method = g_strdup ("Resize");
      {
        g_autofree gchar *bytes = g_strdup_printf ("%" G_GUINT64_FORMAT, wanted);

        op->parameters = g_variant_ref_sink (g_variant_new ("(s)", bytes));
      }
      op->what = g_strdup_printf (_("Cannot resize the volume %s"), disk_defs[i].volume);
      op->object_path = g_strdup (disk->path);
      op->interface_name = g_strdup ("org.qubes_os.Admin1.Volume");
      g_queue_push_tail (&self->ops, op);
    }
}

static void
load (QmSettingsWindow *self)
{
  GDBusConnection *connection = qm_client_get_connection (self->client);

  set_busy (self, TRUE);
  load_features (self);
  load_disks (self);
  self->pending_loads = 2;
  g_dbus_connection_call (connection, QM_BUS_NAME, self->path, "org.qubes_os.Admin1.Domain",
                          "GetAllProperties", NULL, G_VARIANT_TYPE ("(a(ssbs))"),
                          G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, properties_loaded,
                          g_object_ref (self));
  g_dbus_connection_call (connection, QM_BUS_NAME, self->path, "org.qubes_os.Admin1.Domain",
                          "GetNotes", NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->cancellable, notes_loaded, g_object_ref (self));
}

/* ---- applying -------------------------------------------------------------------------- */

static void
queue_op (QmSettingsWindow *self,
          const gchar      *method,
          GVariant         *parameters,
          const gchar      *what)
{
  Op *op = g_new0 (Op, 1);

  op->method = g_strdup (method);
  op->parameters = parameters != NULL ? g_variant_ref_sink (parameters) : NULL;
  op->what = g_strdup (what);
  g_queue_push_tail (&self->ops, op);
}

static void
queue_property_ops (QmSettingsWindow *self)
{
  guint i;

  for (i = 0; i < N_PROPS; i++)
    {
      PropState *state = &self->props[i];
      const gchar *name = prop_defs[i].name;
      g_autofree gchar *value = NULL;
      g_autofree gchar *what = NULL;
      gboolean reset = FALSE;

      if (!state->present || prop_defs[i].kind == KIND_INFO || !qm_property_is_writable (name))
        continue;
      switch (prop_defs[i].kind)
        {
        case KIND_CHECK:
          value = g_strdup (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (state->widget))
                            ? "True" : "False");
          break;
        case KIND_SPIN:
          {
            gint number = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (state->widget));

            if (state->value != NULL && g_ascii_strtoll (state->value, NULL, 10) == number)
              continue;
            value = g_strdup_printf ("%d", number);
            break;
          }
        case KIND_ENTRY:
          value = g_strdup (gtk_entry_get_text (GTK_ENTRY (state->widget)));
          break;
        default:
          value = g_strdup (gtk_combo_box_get_active_id (GTK_COMBO_BOX (state->widget)));
          if (value == NULL)
            continue;
          reset = g_str_equal (value, DEFAULT_ID);
          break;
        }

      what = g_strdup_printf (_("Cannot change %s"), name);
      if (reset)
        {
          if (!state->is_default)
            queue_op (self, "ResetProperty", g_variant_new ("(s)", name), what);
        }
      else if (g_strcmp0 (value, state->value) != 0
               || (state->is_default && prop_defs[i].kind >= KIND_COMBO_NETVM))
        /* A combo with a default row: choosing the value explicitly pins it. */
        queue_op (self, "SetProperty", g_variant_new ("(ss)", name, value), what);
    }
}

static void
queue_feature_ops (QmSettingsWindow *self)
{
  g_autoptr(GHashTable) wanted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  GtkTreeModel *model = GTK_TREE_MODEL (self->features_store);
  GHashTableIter hiter;
  gpointer key, value;
  GtkTreeIter iter;
  gboolean valid;

  for (valid = gtk_tree_model_get_iter_first (model, &iter); valid;
       valid = gtk_tree_model_iter_next (model, &iter))
    {
      gchar *name, *val;

      gtk_tree_model_get (model, &iter, 0, &name, 1, &val, -1);
      if (name == NULL || name[0] == '\0')
        {
          g_free (name);
          g_free (val);
          continue;
        }
      g_hash_table_insert (wanted, name, val != NULL ? val : g_strdup (""));
    }
  g_hash_table_iter_init (&hiter, self->services);
  while (g_hash_table_iter_next (&hiter, &key, &value))
    g_hash_table_insert (wanted, g_strconcat ("service.", key, NULL),
                         g_strdup (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (value))
                                   ? "1" : ""));

  g_hash_table_iter_init (&hiter, self->orig_features);
  while (g_hash_table_iter_next (&hiter, &key, NULL))
    if (!g_hash_table_contains (wanted, key))
      {
        g_autofree gchar *what = g_strdup_printf (_("Cannot remove the feature %s"),
                                                  (gchar *) key);

        queue_op (self, "RemoveFeature", g_variant_new ("(s)", key), what);
      }
  g_hash_table_iter_init (&hiter, wanted);
  while (g_hash_table_iter_next (&hiter, &key, &value))
    {
      const gchar *orig = g_hash_table_lookup (self->orig_features, key);

      if (orig == NULL || g_strcmp0 (orig, value) != 0)
        {
          g_autofree gchar *what = g_strdup_printf (_("Cannot set the feature %s"),
                                                    (gchar *) key);

          queue_op (self, "SetFeature", g_variant_new ("(ss)", key, value), what);
        }
    }
}

static void run_next_op (QmSettingsWindow *self);

static void
op_done (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  Op *op = g_queue_pop_head (&self->ops);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      op_free (op);
      g_object_unref (self);
      return;
    }
  if (reply == NULL)
    {
      g_autofree gchar *text = qm_error_describe (error);

      if (text != NULL)
        g_string_append_printf (self->errors, "%s%s: %s", self->errors->len > 0 ? "\n" : "",
                                op->what, text);
      else
        /* The user dismissed the authentication prompt: nothing else is attempted. */
        g_queue_clear_full (&self->ops, (GDestroyNotify) op_free);
    }
  op_free (op);
  run_next_op (self);
  g_object_unref (self);
}

static void
run_next_op (QmSettingsWindow *self)
{
  Op *op = g_queue_peek_head (&self->ops);

  if (op != NULL)
    {
      qm_client_call (self->client, op->object_path != NULL ? op->object_path : self->path,
                      op->interface_name != NULL ? op->interface_name
                                                 : "org.qubes_os.Admin1.Domain",
                      op->method,
                      op->parameters != NULL ? g_variant_ref (op->parameters) : NULL,
                      self->cancellable, op_done, g_object_ref (self));
      return;
    }

  if (self->errors->len > 0)
    {
      show_message (self, self->errors->str);
      self->close_when_done = FALSE;
    }
  else
    show_message (self, NULL);
  if (self->close_when_done)
    {
      gtk_widget_destroy (GTK_WIDGET (self));
      return;
    }
  load (self);
}

static void
apply (QmSettingsWindow *self,
       gboolean          close_when_done)
{
  GtkTextIter start, end;
  g_autofree gchar *notes = NULL;

  if (!g_queue_is_empty (&self->ops))
    return;
  queue_property_ops (self);
  queue_feature_ops (self);
  queue_disk_ops (self);
  gtk_text_buffer_get_bounds (self->notes, &start, &end);
  notes = gtk_text_buffer_get_text (self->notes, &start, &end, FALSE);
  if (g_strcmp0 (notes, self->orig_notes) != 0)
    queue_op (self, "SetNotes", g_variant_new ("(s)", notes), _("Cannot save the notes"));

  g_string_truncate (self->errors, 0);
  self->close_when_done = close_when_done;
  set_busy (self, TRUE);
  run_next_op (self);
}

static void
on_apply (QmSettingsWindow *self)
{
  apply (self, FALSE);
}

static void
on_ok (QmSettingsWindow *self)
{
  apply (self, TRUE);
}

/* ---- construction ---------------------------------------------------------------------- */

QmSettingsWindow *
qm_settings_window_new (GtkWindow   *parent,
                        QmClient    *client,
                        const gchar *object_path)
{
  QmObject *object = qm_client_lookup_domain (client, object_path);
  QmSettingsWindow *self;
  GtkWidget *vbox, *buttons, *button, *content;
  g_autofree gchar *title = NULL;

  if (object == NULL)
    return NULL;
  self = g_object_new (QM_TYPE_SETTINGS_WINDOW, NULL);
  self->client = g_object_ref (client);
  self->path = g_strdup (object_path);
  self->name = g_strdup (qm_object_get_string (object, "Domain", "Name"));
  /* TRANSLATORS: window title, %s is the qube's name */
  title = g_strdup_printf (_("%s: Settings"), self->name);
  gtk_window_set_title (GTK_WINDOW (self), title);
  gtk_window_set_transient_for (GTK_WINDOW (self), parent);
  gtk_window_set_destroy_with_parent (GTK_WINDOW (self), TRUE);
  gtk_window_set_default_size (GTK_WINDOW (self), 560, 480);

  vbox = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_container_add (GTK_CONTAINER (self), vbox);
  self->info_bar = gtk_info_bar_new ();
  gtk_info_bar_set_message_type (GTK_INFO_BAR (self->info_bar), GTK_MESSAGE_ERROR);
  gtk_info_bar_set_show_close_button (GTK_INFO_BAR (self->info_bar), TRUE);
  g_signal_connect (self->info_bar, "response", G_CALLBACK (gtk_widget_hide), NULL);
  self->info_label = gtk_label_new (NULL);
  gtk_label_set_line_wrap (GTK_LABEL (self->info_label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (self->info_label), 0.0);
  content = gtk_info_bar_get_content_area (GTK_INFO_BAR (self->info_bar));
  gtk_container_add (GTK_CONTAINER (content), self->info_label);
  gtk_container_add (GTK_CONTAINER (vbox), self->info_bar);

  self->notebook = gtk_notebook_new ();
  gtk_widget_set_vexpand (self->notebook, TRUE);
  gtk_container_add (GTK_CONTAINER (vbox), self->notebook);
  build_property_page (self, FALSE, _("_Basic"));
  build_property_page (self, TRUE, _("_Advanced"));
  build_services_page (self);
  build_features_page (self);
  build_notes_page (self);

  buttons = gtk_button_box_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_button_box_set_layout (GTK_BUTTON_BOX (buttons), GTK_BUTTONBOX_END);
  gtk_box_set_spacing (GTK_BOX (buttons), 6);
  gtk_container_set_border_width (GTK_CONTAINER (buttons), 12);
  button = gtk_button_new_with_mnemonic (_("_Cancel"));
  g_signal_connect_swapped (button, "clicked", G_CALLBACK (gtk_widget_destroy), self);
  gtk_container_add (GTK_CONTAINER (buttons), button);
  self->apply_button = gtk_button_new_with_mnemonic (_("_Apply"));
  g_signal_connect_swapped (self->apply_button, "clicked", G_CALLBACK (on_apply), self);
  gtk_container_add (GTK_CONTAINER (buttons), self->apply_button);
  self->ok_button = gtk_button_new_with_mnemonic (_("_OK"));
  gtk_style_context_add_class (gtk_widget_get_style_context (self->ok_button),
                               GTK_STYLE_CLASS_SUGGESTED_ACTION);
  g_signal_connect_swapped (self->ok_button, "clicked", G_CALLBACK (on_ok), self);
  gtk_container_add (GTK_CONTAINER (buttons), self->ok_button);
  gtk_container_add (GTK_CONTAINER (vbox), buttons);

  gtk_widget_show_all (vbox);
  gtk_widget_hide (self->info_bar);
  load (self);
  return self;
}

static void
qm_settings_window_dispose (GObject *object)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (object);

  g_cancellable_cancel (self->cancellable);
  g_queue_clear_full (&self->ops, (GDestroyNotify) op_free);
  g_clear_object (&self->client);
  g_clear_object (&self->features_store);
  G_OBJECT_CLASS (qm_settings_window_parent_class)->dispose (object);
}

static void
qm_settings_window_finalize (GObject *object)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (object);
  guint i;

  for (i = 0; i < N_PROPS; i++)
    g_free (self->props[i].value);
  for (i = 0; i < N_DISKS; i++)
    g_free (self->disks[i].path);
  g_clear_object (&self->cancellable);
  g_hash_table_unref (self->services);
  g_hash_table_unref (self->orig_features);
  g_string_free (self->errors, TRUE);
  g_free (self->orig_notes);
  g_free (self->path);
  g_free (self->name);
  G_OBJECT_CLASS (qm_settings_window_parent_class)->finalize (object);
}

static void
qm_settings_window_init (QmSettingsWindow *self)
{
  self->cancellable = g_cancellable_new ();
  self->services = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->orig_features = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->errors = g_string_new (NULL);
  g_queue_init (&self->ops);
}

static void
qm_settings_window_class_init (QmSettingsWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qm_settings_window_dispose;
  object_class->finalize = qm_settings_window_finalize;
}
