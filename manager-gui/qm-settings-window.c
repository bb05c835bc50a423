/* qm-settings-window.c: the settings of one qube
 *
 * The window (qm-settings-window.ui) reads the qube once when it opens and again after each
 * Apply: its properties (GetAllProperties) and disk sizes here, on the Basic and Advanced
 * pages, and whatever every other page shows, each a QmSettingsPage of its own
 * (qm-settings-page.h: Services, Features, Notes, Devices, Firewall). The kernel is chosen among the volumes of
 * the linux-kernel pools (qm-storage.c); what cannot be changed (name, class, ids) is shown as
 * text, not in fields. Apply makes only the calls that change
 * something (SetProperty, ResetProperty, Volume.Resize, then each page's), one after another,
 * each allowing interactive authorization. Failures are collected in the info bar; the values
 * are read again afterwards so the window shows what the daemon holds.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-devices-page.h"
#include "qm-error.h"
#include "qm-features-page.h"
#include "qm-firewall-page.h"
#include "qm-notes-page.h"
#include "qm-services-page.h"
#include "qm-settings-page.h"
#include "qm-settings-window.h"
#include "qm-storage.h"

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
  KIND_COMBO_KERNEL,       /* the kernels of the linux-kernel pools */
  KIND_INFO,               /* shown, never set (read-only or write-once): a label */
} PropKind;

/* The combo boxes whose first row is the property's default. */
#define HAS_DEFAULT_ROW(kind) ((kind) >= KIND_COMBO_NETVM && (kind) <= KIND_COMBO_KERNEL)

/* A property on the Basic or Advanced page: its widget (and, but for check boxes, its title)
 * in qm-settings-window.ui. */
typedef struct
{
  const gchar *name;
  PropKind     kind;
  const gchar *widget_id;
  const gchar *title_id;
} PropDef;

static const PropDef prop_defs[] = {
  { "label", KIND_COMBO_LABEL, "label_widget", "label_title" },
  { "template", KIND_COMBO_TEMPLATE, "template_widget", "template_title" },
  { "netvm", KIND_COMBO_NETVM, "netvm_widget", "netvm_title" },
  { "include_in_backups", KIND_CHECK, "include_in_backups_widget", NULL },
  { "autostart", KIND_CHECK, "autostart_widget", NULL },
  { "memory", KIND_SPIN, "memory_widget", "memory_title" },
  { "maxmem", KIND_SPIN, "maxmem_widget", "maxmem_title" },
  { "vcpus", KIND_SPIN, "vcpus_widget", "vcpus_title" },
  { "kernel", KIND_COMBO_KERNEL, "kernel_widget", "kernel_title" },
  { "kernelopts", KIND_ENTRY, "kernelopts_widget", "kernelopts_title" },
  { "virt_mode", KIND_COMBO_VIRT_MODE, "virt_mode_widget", "virt_mode_title" },
  { "debug", KIND_CHECK, "debug_widget", NULL },
  { "provides_network", KIND_CHECK, "provides_network_widget", NULL },
  { "template_for_dispvms", KIND_CHECK, "template_for_dispvms_widget", NULL },
  { "default_dispvm", KIND_COMBO_DISPVM, "default_dispvm_widget", "default_dispvm_title" },
  { "name", KIND_INFO, "name_widget", "name_title" },
  { "klass", KIND_INFO, "klass_widget", "klass_title" },
  { "qid", KIND_INFO, "qid_widget", "qid_title" },
  { "uuid", KIND_INFO, "uuid_widget", "uuid_title" },
  { "visible_ip", KIND_INFO, "visible_ip_widget", "visible_ip_title" },
  { "updateable", KIND_INFO, "updateable_widget", "updateable_title" },
};

/* Disk sizes on the Basic tab: Volume.Resize, growing only. */
static const struct
{
  const gchar *volume;
  const gchar *widget_id;
  const gchar *title_id;
} disk_defs[] = {
  { "private", "private_widget", "private_title" },
  { "root", "root_widget", "root_title" },
};

#define N_DISKS G_N_ELEMENTS (disk_defs)
#define MIB ((guint64) 1024 * 1024)

#define N_PROPS G_N_ELEMENTS (prop_defs)

typedef struct
{
  GtkWidget *widget;   /* template child */
  GtkWidget *label;    /* template child; NULL for a check box */
  gboolean   present;
  gboolean   is_default;
  gboolean   is_bool;        /* its Qubes type is bool */
  gchar     *value;
  gchar     *default_value;  /* what a reset gives, when not at the default; NULL: unknown */
} PropState;

typedef struct
{
  GtkWidget *spin;     /* template child */
  GtkWidget *label;    /* template child */
  gchar     *path;     /* the volume's object path, NULL when the qube has none */
  guint64    size;     /* bytes, as loaded */
} DiskState;

struct _QmSettingsWindow
{
  GtkWindow        parent_instance;

  QmClient        *client;
  gchar           *path;
  gchar           *name;
  GCancellable    *cancellable;

  /* template children */
  GtkWidget       *info_bar;
  GtkWidget       *info_label;
  GtkWidget       *notebook;
  GtkWidget       *apply_button;
  GtkWidget       *ok_button;
  PropState        props[N_PROPS];
  DiskState        disks[N_DISKS];
  GPtrArray       *kernels;        /* the installed kernels; NULL until listed */
  gboolean         props_loaded;

  GList           *pages;          /* the notebook's QmSettingsPages, in its order */
  QmSettingsCalls *calls;          /* what Apply still has to call */
  GString         *errors;
  gboolean         close_when_done;
  guint            pending_loads;
};

G_DEFINE_TYPE (QmSettingsWindow, qm_settings_window, GTK_TYPE_WINDOW)

static void load (QmSettingsWindow *self);

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

static void
on_info_bar_response (GtkInfoBar       *info_bar,
                      gint              response,
                      QmSettingsWindow *self)
{
  gtk_widget_hide (GTK_WIDGET (info_bar));
}

/* ---- the properties -------------------------------------------------------------------- */

static void
fill_labels (QmSettingsWindow *self,
             GtkWidget        *combo)
{
  GList *labels = qm_client_get_labels (self->client), *l;

  for (l = labels; l != NULL; l = l->next)
    {
      const gchar *name = qm_object_get_string (l->data, "Label", "Name");

      gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (combo), name, name);
    }
  g_list_free_full (labels, g_object_unref);
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
  if (kind == KIND_COMBO_KERNEL)
    {
      guint i;

      for (i = 0; self->kernels != NULL && i < self->kernels->len; i++)
        gtk_combo_box_text_append (combo, self->kernels->pdata[i], self->kernels->pdata[i]);
      return;
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
  if (prop_defs[index].kind == KIND_INFO && !state->present)
    gtk_label_set_text (GTK_LABEL (state->widget), "");
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
      gtk_entry_set_text (GTK_ENTRY (state->widget), value);
      break;
    case KIND_INFO:
      /* a boolean reads as a word, as upstream's settings show "Installed by package" */
      gtk_label_set_text (GTK_LABEL (state->widget),
                          !state->is_bool ? value
                          : g_ascii_strcasecmp (value, "True") == 0 ? _("Yes") : _("No"));
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

        const gchar *default_value = state->is_default ? value : state->default_value;

        fill_qube_combo (self, index);
        /* The first row is the default: say what it is. */
        text = g_strdup_printf (_("default (%s)"), default_value == NULL ? "\u2026"
                                : default_value[0] != '\0' ? default_value : _("none"));
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

typedef struct
{
  QmSettingsWindow *self;
  guint             index;
} DefaultRead;

static void
default_read (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  DefaultRead *read = user_data;
  QmSettingsWindow *self = read->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);

  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      PropState *state = &self->props[read->index];
      gboolean has_default;
      const gchar *value;

      if (reply != NULL)
        {
          g_variant_get (reply, "(b&s&s)", &has_default, NULL, &value);
          g_free (state->default_value);
          state->default_value = g_strdup (has_default ? value : "");
        }
      show_property (self, read->index);
      load_done (self);
    }
  g_object_unref (self);
  g_free (read);
}

/* What "default" means for a combo box whose property is set: a reset gives that. */
static void
read_default (QmSettingsWindow *self,
              guint             index)
{
  DefaultRead *read = g_new0 (DefaultRead, 1);

  read->self = g_object_ref (self);
  read->index = index;
  self->pending_loads++;
  g_dbus_connection_call (qm_client_get_connection (self->client), QM_BUS_NAME, self->path,
                          "org.qubes_os.Admin1.Domain", "GetPropertyDefault",
                          g_variant_new ("(s)", prop_defs[index].name),
                          G_VARIANT_TYPE ("(bss)"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->cancellable, default_read, read);
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
          g_clear_pointer (&self->props[i].default_value, g_free);
        }
      g_variant_get (reply, "(a(ssbs))", &iter);
      while (g_variant_iter_next (iter, "(&s&sb&s)", &name, &type, &is_default, &value))
        for (i = 0; i < N_PROPS; i++)
          if (g_str_equal (name, prop_defs[i].name))
            {
              self->props[i].present = TRUE;
              self->props[i].is_default = is_default;
              self->props[i].is_bool = g_str_equal (type, "bool");
              self->props[i].value = g_strdup (value);
            }
      self->props_loaded = TRUE;
      for (i = 0; i < N_PROPS; i++)
        {
          show_property (self, i);
          if (self->props[i].present && !self->props[i].is_default
              && HAS_DEFAULT_ROW (prop_defs[i].kind))
            read_default (self, i);
        }
    }
  load_done (self);
  g_object_unref (self);
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
      g_autofree gchar *bytes = NULL;
      g_autofree gchar *what = NULL;
      guint64 wanted;

      if (disk->path == NULL || !gtk_widget_get_sensitive (disk->spin))
        continue;
      wanted = (guint64) gtk_spin_button_get_value (GTK_SPIN_BUTTON (disk->spin)) * MIB;
      if (wanted <= disk->size)
        continue;
      bytes = g_strdup_printf ("%" G_GUINT64_FORMAT, wanted);
      what = g_strdup_printf (_("Cannot resize the volume %s"), disk_defs[i].volume);
      qm_settings_calls_add (self->calls, disk->path, "org.qubes_os.Admin1.Volume", "Resize",
                             g_variant_new ("(s)", bytes), what);
    }
}

static void
on_page_loaded (QmSettingsPage   *page,
                const gchar      *error_message,
                QmSettingsWindow *self)
{
  if (error_message != NULL)
    show_message (self, error_message);
  load_done (self);
}

static void
storage_loaded (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(QmStorage) storage = qm_storage_load_finish (result, &error);
  guint i;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  g_clear_pointer (&self->kernels, g_ptr_array_unref);
  /* Without the list (a user who may not read the pools), the kernel is still shown. */
  self->kernels = storage != NULL ? g_ptr_array_ref (storage->kernels)
                                  : g_ptr_array_new_with_free_func (g_free);
  for (i = 0; self->props_loaded && i < N_PROPS; i++)
    if (prop_defs[i].kind == KIND_COMBO_KERNEL)
      show_property (self, i);
  load_done (self);
  g_object_unref (self);
}

/* The properties and disks here, the installed kernels, and every page: the window is busy
 * until all have answered. */
static void
load (QmSettingsWindow *self)
{
  GList *l;

  set_busy (self, TRUE);
  load_disks (self);
  self->props_loaded = FALSE;
  self->pending_loads = 2 + g_list_length (self->pages);
  qm_storage_load_async (self->client, self->cancellable, storage_loaded, g_object_ref (self));
  g_dbus_connection_call (qm_client_get_connection (self->client), QM_BUS_NAME, self->path,
                          "org.qubes_os.Admin1.Domain", "GetAllProperties", NULL,
                          G_VARIANT_TYPE ("(a(ssbs))"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->cancellable, properties_loaded, g_object_ref (self));
  for (l = self->pages; l != NULL; l = l->next)
    qm_settings_page_load (l->data);
}

/* ---- applying -------------------------------------------------------------------------- */

static void
queue_op (QmSettingsWindow *self,
          const gchar      *method,
          GVariant         *parameters,
          const gchar      *what)
{
  qm_settings_calls_add (self->calls, NULL, NULL, method, parameters, what);
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
               || (state->is_default && HAS_DEFAULT_ROW (prop_defs[i].kind)))
        /* A combo with a default row: choosing the value explicitly pins it. */
        queue_op (self, "SetProperty", g_variant_new ("(ss)", name, value), what);
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
  QmSettingsCall *call = qm_settings_calls_peek (self->calls);

  /* Cancelled: the window is gone, and with it the calls (dispose). */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || call == NULL)
    {
      g_object_unref (self);
      return;
    }
  if (reply == NULL)
    {
      g_autofree gchar *text = qm_error_describe (error);

      if (text != NULL)
        g_string_append_printf (self->errors, "%s%s: %s", self->errors->len > 0 ? "\n" : "",
                                call->what, text);
      else
        /* The user dismissed the authentication prompt: nothing else is attempted. */
        qm_settings_calls_clear (self->calls);
    }
  qm_settings_calls_pop (self->calls);
  run_next_op (self);
  g_object_unref (self);
}

static void
run_next_op (QmSettingsWindow *self)
{
  QmSettingsCall *call = qm_settings_calls_peek (self->calls);

  if (call != NULL)
    {
      qm_client_call (self->client, call->object_path != NULL ? call->object_path : self->path,
                      call->interface_name != NULL ? call->interface_name
                                                   : "org.qubes_os.Admin1.Domain",
                      call->method,
                      call->parameters != NULL ? g_variant_ref (call->parameters) : NULL,
                      self->cancellable, op_done, g_object_ref (self));
      return;
    }

  /* qubesd announces no change of notes: the list reads the qube's again */
  qm_client_refresh_notes (self->client, self->path);
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
  GList *l;

  if (!qm_settings_calls_is_empty (self->calls))
    return;
  queue_property_ops (self);
  queue_disk_ops (self);
  for (l = self->pages; l != NULL; l = l->next)
    qm_settings_page_apply (l->data, self->calls);

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

static void
on_cancel (QmSettingsWindow *self)
{
  gtk_widget_destroy (GTK_WIDGET (self));
}

/* ---- construction ---------------------------------------------------------------------- */

QmSettingsWindow *
qm_settings_window_new (GtkWindow   *parent,
                        QmClient    *client,
                        const gchar *object_path)
{
  QmObject *object = qm_client_lookup_domain (client, object_path);
  QmSettingsWindow *self;
  g_autofree gchar *title = NULL;
  GList *l;

  if (object == NULL)
    return NULL;
  self = g_object_new (QM_TYPE_SETTINGS_WINDOW, "transient-for", parent, NULL);
  self->client = g_object_ref (client);
  self->path = g_strdup (object_path);
  self->name = g_strdup (qm_object_get_string (object, "Domain", "Name"));
  /* TRANSLATORS: window title, %s is the qube's name */
  title = g_strdup_printf (_("%s: Settings"), self->name);
  gtk_window_set_title (GTK_WINDOW (self), title);

  for (guint i = 0; i < N_PROPS; i++)
    if (prop_defs[i].kind == KIND_COMBO_LABEL)
      fill_labels (self, self->props[i].widget);
  for (l = self->pages; l != NULL; l = l->next)
    qm_settings_page_set_qube (l->data, client, object_path);
  load (self);
  return self;
}

static void
qm_settings_window_dispose (GObject *object)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (object);

  g_cancellable_cancel (self->cancellable);
  qm_settings_calls_clear (self->calls);
  g_clear_pointer (&self->pages, g_list_free);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_settings_window_parent_class)->dispose (object);
}

static void
qm_settings_window_finalize (GObject *object)
{
  QmSettingsWindow *self = QM_SETTINGS_WINDOW (object);
  guint i;

  for (i = 0; i < N_PROPS; i++)
    {
      g_free (self->props[i].value);
      g_free (self->props[i].default_value);
    }
  g_clear_pointer (&self->kernels, g_ptr_array_unref);
  for (i = 0; i < N_DISKS; i++)
    g_free (self->disks[i].path);
  g_clear_object (&self->cancellable);
  qm_settings_calls_free (self->calls);
  g_string_free (self->errors, TRUE);
  g_free (self->path);
  g_free (self->name);
  G_OBJECT_CLASS (qm_settings_window_parent_class)->finalize (object);
}

static void
qm_settings_window_init (QmSettingsWindow *self)
{
  GList *children, *l;
  guint i;

  self->cancellable = g_cancellable_new ();
  self->calls = qm_settings_calls_new ();
  self->errors = g_string_new (NULL);
  gtk_widget_init_template (GTK_WIDGET (self));
  qm_error_name_info_bar_close (GTK_INFO_BAR (self->info_bar));

  /* Fields are named after their titles (GTK 3 names them after nothing); check boxes have
   * their own label, combo boxes say the value chosen, and the read-only values are labels
   * that say themselves, labelled by their titles (mnemonic-widget). */
  for (i = 0; i < N_PROPS; i++)
    if (prop_defs[i].kind == KIND_SPIN || prop_defs[i].kind == KIND_ENTRY)
      atk_object_set_name (gtk_widget_get_accessible (self->props[i].widget),
                           gtk_label_get_text (GTK_LABEL (self->props[i].label)));
  for (i = 0; i < N_DISKS; i++)
    atk_object_set_name (gtk_widget_get_accessible (self->disks[i].spin),
                         gtk_label_get_text (GTK_LABEL (self->disks[i].label)));

  children = gtk_container_get_children (GTK_CONTAINER (self->notebook));
  for (l = children; l != NULL; l = l->next)
    if (QM_IS_SETTINGS_PAGE (l->data))
      {
        self->pages = g_list_append (self->pages, l->data);
        g_signal_connect_object (l->data, "loaded", G_CALLBACK (on_page_loaded), self, 0);
      }
  g_list_free (children);
}

static void
qm_settings_window_class_init (QmSettingsWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  guint i;

  object_class->dispose = qm_settings_window_dispose;
  object_class->finalize = qm_settings_window_finalize;

  /* The pages qm-settings-window.ui places in the notebook. */
  g_type_ensure (QM_TYPE_SERVICES_PAGE);
  g_type_ensure (QM_TYPE_FEATURES_PAGE);
  g_type_ensure (QM_TYPE_NOTES_PAGE);
  g_type_ensure (QM_TYPE_DEVICES_PAGE);
  g_type_ensure (QM_TYPE_FIREWALL_PAGE);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-settings-window.ui");
  gtk_widget_class_bind_template_child (widget_class, QmSettingsWindow, info_bar);
  gtk_widget_class_bind_template_child (widget_class, QmSettingsWindow, info_label);
  gtk_widget_class_bind_template_child (widget_class, QmSettingsWindow, notebook);
  gtk_widget_class_bind_template_child (widget_class, QmSettingsWindow, apply_button);
  gtk_widget_class_bind_template_child (widget_class, QmSettingsWindow, ok_button);
  for (i = 0; i < N_PROPS; i++)
    {
      gssize state = G_STRUCT_OFFSET (QmSettingsWindow, props) + i * sizeof (PropState);

      gtk_widget_class_bind_template_child_full (widget_class, prop_defs[i].widget_id, FALSE,
                                                 state + G_STRUCT_OFFSET (PropState, widget));
      if (prop_defs[i].title_id != NULL)
        gtk_widget_class_bind_template_child_full (widget_class, prop_defs[i].title_id, FALSE,
                                                   state + G_STRUCT_OFFSET (PropState, label));
    }
  for (i = 0; i < N_DISKS; i++)
    {
      gssize state = G_STRUCT_OFFSET (QmSettingsWindow, disks) + i * sizeof (DiskState);

      gtk_widget_class_bind_template_child_full (widget_class, disk_defs[i].widget_id, FALSE,
                                                 state + G_STRUCT_OFFSET (DiskState, spin));
      gtk_widget_class_bind_template_child_full (widget_class, disk_defs[i].title_id, FALSE,
                                                 state + G_STRUCT_OFFSET (DiskState, label));
    }
  gtk_widget_class_bind_template_callback (widget_class, on_info_bar_response);
  gtk_widget_class_bind_template_callback (widget_class, on_cancel);
  gtk_widget_class_bind_template_callback (widget_class, on_apply);
  gtk_widget_class_bind_template_callback (widget_class, on_ok);
}
