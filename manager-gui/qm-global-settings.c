/* qm-global-settings.c: the global settings of the system (qubes-prefs)
 *
 * The Manager's global properties, as upstream's Global Settings window offers them: the
 * default qubes (template, net qube, disposable templates, GUI and audio qubes), the update and
 * clock qubes, the default kernel (one of the installed ones, qm-storage.c), the default pools,
 * the timeouts, and whether qubes check for updates. Each row says what the setting means;
 * a setting with a default offers it first ("default (sys-firewall)", from GetPropertyDefault),
 * and a number can go back to its default. The window reads the values when it opens and after
 * each Apply (GetAllProperties, GetPropertyDefault of each, the pools and kernels); Apply makes
 * only the calls that change something (SetProperty, ResetProperty on the Manager), one after
 * another, each allowing interactive authorization, and collects the failures in the info bar.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <stdlib.h>

#include "qm-error.h"
#include "qm-global-settings.h"
#include "qm-settings-page.h"
#include "qm-storage.h"

#define DEFAULT_ID "\001default"
#define MANAGER_INTERFACE QM_INTERFACE_PREFIX "Manager"

typedef enum
{
  GLOBAL_QUBE,      /* a qube, or none */
  GLOBAL_KERNEL,    /* an installed kernel, or none */
  GLOBAL_POOL,      /* a pool */
  GLOBAL_SECONDS,   /* a number of seconds */
  GLOBAL_CHECK,     /* yes or no */
} GlobalKind;

/* Which qubes or pools a row offers, as upstream's window does. */
typedef enum
{
  OFFER_ANY,
  OFFER_NOT_TEMPLATE,     /* update and clock qube */
  OFFER_NETWORK,          /* provides network */
  OFFER_TEMPLATE,
  OFFER_DISPVM_TEMPLATE,  /* template for disposables */
  OFFER_IMAGE_POOL,       /* a pool for root, private, volatile */
  OFFER_KERNEL_POOL,      /* a linux-kernel pool */
} Offer;

typedef enum
{
  PAGE_QUBES,
  PAGE_STORAGE,
  PAGE_OTHER,
  N_PAGES
} Page;

typedef struct
{
  const gchar *name;    /* the Qubes property */
  GlobalKind   kind;
  Offer        offer;
  Page         page;
  const gchar *title;   /* N_(), with a mnemonic */
  const gchar *help;    /* N_() */
} GlobalDef;

static const GlobalDef global_defs[] = {
  { "default_template", GLOBAL_QUBE, OFFER_TEMPLATE, PAGE_QUBES, N_("Default te_mplate"),
    N_("New qubes are based on it unless another template is chosen.") },
  { "default_netvm", GLOBAL_QUBE, OFFER_NETWORK, PAGE_QUBES, N_("Default _net qube"),
    N_("Qubes that do not choose their own reach the network through it.") },
  { "default_dispvm", GLOBAL_QUBE, OFFER_DISPVM_TEMPLATE, PAGE_QUBES,
    N_("Default _disposable template"),
    N_("The disposables of qubes that do not choose their own start from it.") },
  { "management_dispvm", GLOBAL_QUBE, OFFER_DISPVM_TEMPLATE, PAGE_QUBES,
    N_("Management disposable template"),
    N_("Disposables for the management of qubes (Salt) start from it, unless a qube chooses "
       "its own.") },
  { "default_guivm", GLOBAL_QUBE, OFFER_NOT_TEMPLATE, PAGE_QUBES, N_("Default _GUI qube"),
    N_("It shows the windows of qubes that do not choose their own.") },
  { "default_audiovm", GLOBAL_QUBE, OFFER_NOT_TEMPLATE, PAGE_QUBES, N_("Default audio qu_be"),
    N_("It plays the sound of qubes that do not choose their own.") },
  { "default_kernel", GLOBAL_KERNEL, OFFER_ANY, PAGE_QUBES, N_("Default _kernel"),
    N_("The kernel dom0 provides to qubes that do not choose their own; with none they boot "
       "the kernel installed in them.") },
  { "updatevm", GLOBAL_QUBE, OFFER_NOT_TEMPLATE, PAGE_QUBES, N_("_Update qube of dom0"),
    N_("dom0 and the templates download their updates through it.") },
  { "clockvm", GLOBAL_QUBE, OFFER_NOT_TEMPLATE, PAGE_QUBES, N_("C_lock qube"),
    N_("It sets the clock of the whole system from the network.") },
  { "default_pool", GLOBAL_POOL, OFFER_IMAGE_POOL, PAGE_STORAGE, N_("Default _pool"),
    N_("New volumes go to this pool, unless a pool below is set for their kind.") },
  { "default_pool_root", GLOBAL_POOL, OFFER_IMAGE_POOL, PAGE_STORAGE,
    N_("Pool for s_ystem volumes"),
    N_("The system (root) volumes of new templates and standalone qubes.") },
  { "default_pool_private", GLOBAL_POOL, OFFER_IMAGE_POOL, PAGE_STORAGE,
    N_("Pool for p_rivate volumes"),
    N_("The private volumes of new qubes: their own data, kept across restarts.") },
  { "default_pool_volatile", GLOBAL_POOL, OFFER_IMAGE_POOL, PAGE_STORAGE,
    N_("Pool for _volatile volumes"),
    N_("Swap and temporary data of new qubes, emptied at every start.") },
  { "default_pool_kernel", GLOBAL_POOL, OFFER_KERNEL_POOL, PAGE_STORAGE,
    N_("Pool for _kernel volumes"),
    N_("Where the kernels dom0 provides to qubes are kept.") },
  { "default_qrexec_timeout", GLOBAL_SECONDS, OFFER_ANY, PAGE_OTHER, N_("Q_rexec timeout (s)"),
    N_("How long a qube may take after it starts to answer qrexec calls, unless it says "
       "otherwise.") },
  { "default_shutdown_timeout", GLOBAL_SECONDS, OFFER_ANY, PAGE_OTHER,
    N_("S_hutdown timeout (s)"),
    N_("How long a clean shutdown may take before it counts as failed, unless the qube says "
       "otherwise.") },
  { "stats_interval", GLOBAL_SECONDS, OFFER_ANY, PAGE_OTHER,
    N_("_Interval of memory and CPU reports (s)"),
    N_("How often the memory and CPU use of running qubes is reported to this window.") },
  { "check_updates_vm", GLOBAL_CHECK, OFFER_ANY, PAGE_OTHER,
    N_("Check for _updates in qubes by default"),
    N_("Qubes look for software updates and report them, unless told otherwise.") },
};

#define N_GLOBALS G_N_ELEMENTS (global_defs)

typedef struct
{
  GtkWidget *title;        /* NULL for a check box */
  GtkWidget *widget;
  GtkWidget *reset;        /* numbers: back to the default */
  GtkWidget *help;
  gboolean   present;      /* qubesd has the property */
  gboolean   is_default;
  gboolean   has_default;
  gboolean   reset_wanted; /* the number was set back to its default, not changed since */
  gchar     *value;
  gchar     *default_value;
  gchar     *shown_id;     /* the combo box's row as loaded */
} GlobalRow;

struct _QmGlobalSettings
{
  GtkWindow        parent_instance;

  QmClient        *client;
  GCancellable    *cancellable;

  /* template children */
  GtkWidget       *info_bar;
  GtkWidget       *info_label;
  GtkWidget       *notebook;
  GtkWidget       *apply_button;
  GtkWidget       *ok_button;
  GtkWidget       *grids[N_PAGES];

  GlobalRow        rows[N_GLOBALS];
  QmStorage       *storage;
  guint            pending_loads;
  gchar           *load_error;
  QmSettingsCalls *calls;
  GString         *errors;
  gboolean         close_when_done;
};

G_DEFINE_TYPE (QmGlobalSettings, qm_global_settings, GTK_TYPE_WINDOW)

static void load (QmGlobalSettings *self);

static void
show_message (QmGlobalSettings *self,
              const gchar      *text)
{
  gtk_label_set_text (GTK_LABEL (self->info_label), text);
  gtk_widget_set_visible (self->info_bar, text != NULL && text[0] != '\0');
}

static void
set_busy (QmGlobalSettings *self,
          gboolean          busy)
{
  gtk_widget_set_sensitive (self->notebook, !busy);
  gtk_widget_set_sensitive (self->apply_button, !busy);
  gtk_widget_set_sensitive (self->ok_button, !busy);
}

static void
on_info_bar_response (GtkInfoBar       *info_bar,
                      gint              response,
                      QmGlobalSettings *self)
{
  gtk_widget_hide (GTK_WIDGET (info_bar));
}

/* ---- showing the values ------------------------------------------------------------------ */

static gboolean
qube_offered (QmObject *qube,
              Offer     offer)
{
  const gchar *klass = qm_object_get_string (qube, "Domain", "Klass");

  switch (offer)
    {
    case OFFER_NOT_TEMPLATE:
      return g_strcmp0 (klass, "TemplateVM") != 0;
    case OFFER_NETWORK:
      return qm_object_get_boolean (qube, "QubesVM", "ProvidesNetwork");
    case OFFER_TEMPLATE:
      return g_strcmp0 (klass, "TemplateVM") == 0;
    case OFFER_DISPVM_TEMPLATE:
      return qm_object_get_boolean (qube, "AppVM", "TemplateForDispvms")
             || qm_object_get_boolean (qube, "StandaloneVM", "TemplateForDispvms");
    case OFFER_ANY:
    default:
      return TRUE;
    }
}

/* The choices of a combo box: the default first (when the property has one), none (but for a
 * pool), then the qubes, kernels or pools that fit; and the current value if it is not among
 * them. */
static void
fill_combo (QmGlobalSettings *self,
            guint             index)
{
  const GlobalDef *def = &global_defs[index];
  GlobalRow *row = &self->rows[index];
  GtkComboBoxText *combo = GTK_COMBO_BOX_TEXT (row->widget);
  guint i;

  gtk_combo_box_text_remove_all (combo);
  if (row->has_default)
    {
      const gchar *value = row->default_value != NULL ? row->default_value : "";
      g_autofree gchar *text = NULL;

      /* TRANSLATORS: a setting at its default value, e.g. "default (sys-firewall)" */
      text = g_strdup_printf (_("default (%s)"), value[0] != '\0' ? value : _("none"));
      gtk_combo_box_text_append (combo, DEFAULT_ID, text);
    }
  if (def->kind != GLOBAL_POOL)
    gtk_combo_box_text_append (combo, "", _("none"));

  if (def->kind == GLOBAL_QUBE)
    {
      GList *domains = qm_client_get_domains (self->client), *l;

      for (l = domains; l != NULL; l = l->next)
        if (qube_offered (l->data, def->offer))
          {
            const gchar *name = qm_object_get_string (l->data, "Domain", "Name");

            gtk_combo_box_text_append (combo, name, name);
          }
      g_list_free_full (domains, g_object_unref);
    }
  else if (def->kind == GLOBAL_KERNEL && self->storage != NULL)
    {
      for (i = 0; i < self->storage->kernels->len; i++)
        gtk_combo_box_text_append (combo, self->storage->kernels->pdata[i],
                                   self->storage->kernels->pdata[i]);
    }
  else if (def->kind == GLOBAL_POOL && self->storage != NULL)
    {
      for (i = 0; i < self->storage->pools->len; i++)
        {
          const QmPool *pool = self->storage->pools->pdata[i];

          if (qm_pool_holds_images (pool) == (def->offer == OFFER_IMAGE_POOL))
            gtk_combo_box_text_append (combo, pool->name, pool->name);
        }
    }

  g_free (row->shown_id);
  row->shown_id = g_strdup (row->is_default && row->has_default ? DEFAULT_ID
                            : row->value != NULL ? row->value : "");
  if (!gtk_combo_box_set_active_id (GTK_COMBO_BOX (combo), row->shown_id))
    {
      gtk_combo_box_text_append (combo, row->shown_id, row->shown_id);
      gtk_combo_box_set_active_id (GTK_COMBO_BOX (combo), row->shown_id);
    }
}

static void
show_row (QmGlobalSettings *self,
          guint             index)
{
  const GlobalDef *def = &global_defs[index];
  GlobalRow *row = &self->rows[index];
  const gchar *value = row->value != NULL ? row->value : "";

  gtk_widget_set_sensitive (row->widget, row->present);
  if (row->title != NULL)
    gtk_widget_set_sensitive (row->title, row->present);
  if (!row->present)
    return;

  switch (def->kind)
    {
    case GLOBAL_QUBE:
    case GLOBAL_KERNEL:
    case GLOBAL_POOL:
      fill_combo (self, index);
      break;
    case GLOBAL_SECONDS:
      {
        g_autofree gchar *tip = NULL;

        gtk_spin_button_set_value (GTK_SPIN_BUTTON (row->widget), g_ascii_strtod (value, NULL));
        row->reset_wanted = FALSE;
        gtk_widget_set_visible (row->reset, row->has_default);
        gtk_widget_set_sensitive (row->reset, row->has_default && !row->is_default);
        /* TRANSLATORS: %s is the default value of a setting, in seconds */
        tip = g_strdup_printf (_("Back to the default: %s s"),
                               row->default_value != NULL ? row->default_value : "");
        gtk_widget_set_tooltip_text (row->reset, tip);
        break;
      }
    case GLOBAL_CHECK:
    default:
      gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (row->widget),
                                    g_ascii_strcasecmp (value, "True") == 0);
      break;
    }
}

/* ---- loading ----------------------------------------------------------------------------- */

static void
load_done (QmGlobalSettings *self)
{
  guint i;

  if (--self->pending_loads > 0)
    return;
  for (i = 0; i < N_GLOBALS; i++)
    show_row (self, i);
  show_message (self, self->load_error);
  g_clear_pointer (&self->load_error, g_free);
  set_busy (self, FALSE);
}

static void
load_failed (QmGlobalSettings *self,
             const GError     *error)
{
  g_autofree gchar *text = qm_error_describe (error);

  if (text != NULL && self->load_error == NULL)
    self->load_error = g_steal_pointer (&text);
}

static gint
def_index (const gchar *name)
{
  guint i;

  for (i = 0; i < N_GLOBALS; i++)
    if (g_str_equal (global_defs[i].name, name))
      return (gint) i;
  return -1;
}

static void
properties_loaded (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  QmGlobalSettings *self = QM_GLOBAL_SETTINGS (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);
  g_autoptr(GVariantIter) iter = NULL;
  const gchar *name, *value;
  gboolean is_default;
  guint i;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  for (i = 0; i < N_GLOBALS; i++)
    {
      self->rows[i].present = FALSE;
      g_clear_pointer (&self->rows[i].value, g_free);
    }
  if (reply == NULL)
    load_failed (self, error);
  else
    {
      g_variant_get (reply, "(a(ssbs))", &iter);
      while (g_variant_iter_next (iter, "(&s&sb&s)", &name, NULL, &is_default, &value))
        {
          gint index = def_index (name);

          if (index < 0)
            continue;
          self->rows[index].present = TRUE;
          self->rows[index].is_default = is_default;
          self->rows[index].value = g_strdup (value);
        }
    }
  load_done (self);
  g_object_unref (self);
}

typedef struct
{
  QmGlobalSettings *self;
  guint             index;
} DefaultRead;

static void
default_read (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  DefaultRead *read = user_data;
  QmGlobalSettings *self = read->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);

  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      GlobalRow *row = &self->rows[read->index];
      const gchar *value = NULL;

      g_clear_pointer (&row->default_value, g_free);
      row->has_default = FALSE;
      if (reply != NULL)
        {
          g_variant_get (reply, "(b&s&s)", &row->has_default, NULL, &value);
          row->default_value = row->has_default ? g_strdup (value) : NULL;
        }
      load_done (self);
    }
  g_object_unref (self);
  g_free (read);
}

static void
storage_loaded (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  QmGlobalSettings *self = QM_GLOBAL_SETTINGS (user_data);
  g_autoptr(GError) error = NULL;
  QmStorage *storage = qm_storage_load_finish (result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  g_clear_pointer (&self->storage, qm_storage_free);
  self->storage = storage;
  if (storage == NULL)
    load_failed (self, error);
  load_done (self);
  g_object_unref (self);
}

/* The values, their defaults, the pools and kernels: busy until all have answered. */
static void
load (QmGlobalSettings *self)
{
  GDBusConnection *connection = qm_client_get_connection (self->client);
  guint i;

  set_busy (self, TRUE);
  self->pending_loads = 2 + N_GLOBALS;
  g_dbus_connection_call (connection, QM_BUS_NAME, QM_ROOT_PATH, MANAGER_INTERFACE,
                          "GetAllProperties", NULL, G_VARIANT_TYPE ("(a(ssbs))"),
                          G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, properties_loaded,
                          g_object_ref (self));
  for (i = 0; i < N_GLOBALS; i++)
    {
      DefaultRead *read = g_new0 (DefaultRead, 1);

      read->self = g_object_ref (self);
      read->index = i;
      g_dbus_connection_call (connection, QM_BUS_NAME, QM_ROOT_PATH, MANAGER_INTERFACE,
                              "GetPropertyDefault", g_variant_new ("(s)", global_defs[i].name),
                              G_VARIANT_TYPE ("(bss)"), G_DBUS_CALL_FLAGS_NONE, -1,
                              self->cancellable, default_read, read);
    }
  qm_storage_load_async (self->client, self->cancellable, storage_loaded, g_object_ref (self));
}

/* ---- applying ---------------------------------------------------------------------------- */

static void
queue_call (QmGlobalSettings *self,
            guint             index,
            const gchar      *value)
{
  g_autofree gchar *what = g_strdup_printf (_("Cannot change %s"), global_defs[index].name);

  if (value == NULL)
    qm_settings_calls_add (self->calls, QM_ROOT_PATH, MANAGER_INTERFACE, "ResetProperty",
                           g_variant_new ("(s)", global_defs[index].name), what);
  else
    qm_settings_calls_add (self->calls, QM_ROOT_PATH, MANAGER_INTERFACE, "SetProperty",
                           g_variant_new ("(ss)", global_defs[index].name, value), what);
}

static void
queue_calls (QmGlobalSettings *self)
{
  guint i;

  for (i = 0; i < N_GLOBALS; i++)
    {
      GlobalRow *row = &self->rows[i];

      if (!row->present)
        continue;
      switch (global_defs[i].kind)
        {
        case GLOBAL_QUBE:
        case GLOBAL_KERNEL:
        case GLOBAL_POOL:
          {
            const gchar *id = gtk_combo_box_get_active_id (GTK_COMBO_BOX (row->widget));

            if (id == NULL || g_strcmp0 (id, row->shown_id) == 0)
              continue;
            queue_call (self, i, g_str_equal (id, DEFAULT_ID) ? NULL : id);
            break;
          }
        case GLOBAL_SECONDS:
          {
            gint seconds = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (row->widget));
            g_autofree gchar *value = g_strdup_printf ("%d", seconds);

            if (row->reset_wanted)
              {
                if (!row->is_default)
                  queue_call (self, i, NULL);
              }
            else if (g_strcmp0 (value, row->value) != 0)
              queue_call (self, i, value);
            break;
          }
        case GLOBAL_CHECK:
        default:
          {
            gboolean active = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (row->widget));

            if (active != (g_ascii_strcasecmp (row->value, "True") == 0))
              queue_call (self, i, active ? "True" : "False");
            break;
          }
        }
    }
}

static void run_next_call (QmGlobalSettings *self);

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  QmGlobalSettings *self = QM_GLOBAL_SETTINGS (user_data);
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
  run_next_call (self);
  g_object_unref (self);
}

static void
run_next_call (QmGlobalSettings *self)
{
  QmSettingsCall *call = qm_settings_calls_peek (self->calls);

  if (call != NULL)
    {
      qm_client_call (self->client, call->object_path, call->interface_name, call->method,
                      call->parameters != NULL ? g_variant_ref (call->parameters) : NULL,
                      self->cancellable, call_done, g_object_ref (self));
      return;
    }
  if (self->errors->len > 0)
    {
      self->close_when_done = FALSE;
      self->load_error = g_strdup (self->errors->str);
    }
  if (self->close_when_done)
    {
      gtk_widget_destroy (GTK_WIDGET (self));
      return;
    }
  /* The values as qubesd holds them now; the failures stay in the info bar. */
  load (self);
}

static void
apply (QmGlobalSettings *self,
       gboolean          close_when_done)
{
  if (!qm_settings_calls_is_empty (self->calls))
    return;
  queue_calls (self);
  g_string_truncate (self->errors, 0);
  show_message (self, NULL);
  self->close_when_done = close_when_done;
  set_busy (self, TRUE);
  run_next_call (self);
}

static void
on_apply (QmGlobalSettings *self)
{
  apply (self, FALSE);
}

static void
on_ok (QmGlobalSettings *self)
{
  apply (self, TRUE);
}

static void
on_cancel (QmGlobalSettings *self)
{
  gtk_widget_destroy (GTK_WIDGET (self));
}

static void
on_reset_clicked (GtkButton        *button,
                  QmGlobalSettings *self)
{
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "qm-index"));
  GlobalRow *row = &self->rows[index];

  gtk_spin_button_set_value (GTK_SPIN_BUTTON (row->widget),
                             g_ascii_strtod (row->default_value != NULL ? row->default_value
                                                                        : "0", NULL));
  row->reset_wanted = TRUE;
  gtk_widget_set_sensitive (GTK_WIDGET (button), FALSE);
}

static void
on_seconds_changed (GtkSpinButton    *spin,
                    QmGlobalSettings *self)
{
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (spin), "qm-index"));
  GlobalRow *row = &self->rows[index];
  gint seconds = gtk_spin_button_get_value_as_int (spin);

  /* A number typed after the reset is the user's own. */
  if (row->reset_wanted && row->default_value != NULL
      && seconds != (gint) g_ascii_strtoll (row->default_value, NULL, 10))
    row->reset_wanted = FALSE;
  if (!row->reset_wanted)
    gtk_widget_set_sensitive (row->reset, row->has_default);
}

/* ---- construction ------------------------------------------------------------------------ */

/* One row per setting, in the grid of its page: the title, the setting, and under the setting
 * what it means (also the setting's accessible description). */
static void
build_rows (QmGlobalSettings *self)
{
  guint lines[N_PAGES] = { 0 };
  guint i;

  for (i = 0; i < N_GLOBALS; i++)
    {
      const GlobalDef *def = &global_defs[i];
      GlobalRow *row = &self->rows[i];
      GtkGrid *grid = GTK_GRID (self->grids[def->page]);
      guint line = lines[def->page];
      g_autofree gchar *plain = NULL;
      PangoAttrList *attributes;

      switch (def->kind)
        {
        case GLOBAL_CHECK:
          row->widget = gtk_check_button_new_with_mnemonic (_(def->title));
          gtk_grid_attach (grid, row->widget, 0, (gint) line, 3, 1);
          break;
        case GLOBAL_SECONDS:
          row->widget = gtk_spin_button_new_with_range (1, G_MAXINT32, 1);
          gtk_spin_button_set_numeric (GTK_SPIN_BUTTON (row->widget), TRUE);
          gtk_widget_set_hexpand (row->widget, TRUE);
          g_object_set_data (G_OBJECT (row->widget), "qm-index", GUINT_TO_POINTER (i));
          g_signal_connect (row->widget, "value-changed", G_CALLBACK (on_seconds_changed),
                            self);
          gtk_grid_attach (grid, row->widget, 1, (gint) line, 1, 1);
          row->reset = gtk_button_new_with_label (_("Default"));
          g_object_set_data (G_OBJECT (row->reset), "qm-index", GUINT_TO_POINTER (i));
          g_signal_connect (row->reset, "clicked", G_CALLBACK (on_reset_clicked), self);
          gtk_grid_attach (grid, row->reset, 2, (gint) line, 1, 1);
          break;
        case GLOBAL_QUBE:
        case GLOBAL_KERNEL:
        case GLOBAL_POOL:
        default:
          row->widget = gtk_combo_box_text_new ();
          gtk_widget_set_hexpand (row->widget, TRUE);
          gtk_grid_attach (grid, row->widget, 1, (gint) line, 2, 1);
          break;
        }
      if (def->kind != GLOBAL_CHECK)
        {
          row->title = gtk_label_new_with_mnemonic (_(def->title));
          gtk_label_set_xalign (GTK_LABEL (row->title), 1.0);
          gtk_label_set_mnemonic_widget (GTK_LABEL (row->title), row->widget);
          gtk_grid_attach (grid, row->title, 0, (gint) line, 1, 1);
          /* a spin button is named after its title (GTK 3 names it after nothing); a combo
           * box says the value chosen, labelled by its title */
          if (def->kind == GLOBAL_SECONDS)
            atk_object_set_name (gtk_widget_get_accessible (row->widget),
                                 gtk_label_get_text (GTK_LABEL (row->title)));
        }
      if (row->reset != NULL)
        {
          /* TRANSLATORS: the accessible name of a button that sets a setting back to its
           * default; %s is the setting's title */
          plain = g_strdup_printf (_("%s: default"), gtk_label_get_text (GTK_LABEL (row->title)));
          atk_object_set_name (gtk_widget_get_accessible (row->reset), plain);
        }
      atk_object_set_description (gtk_widget_get_accessible (row->widget), _(def->help));

      row->help = gtk_label_new (_(def->help));
      gtk_label_set_xalign (GTK_LABEL (row->help), 0.0);
      gtk_label_set_line_wrap (GTK_LABEL (row->help), TRUE);
      gtk_label_set_max_width_chars (GTK_LABEL (row->help), 70);
      gtk_widget_set_margin_bottom (row->help, 6);
      attributes = pango_attr_list_new ();
      pango_attr_list_insert (attributes, pango_attr_scale_new (PANGO_SCALE_SMALL));
      gtk_label_set_attributes (GTK_LABEL (row->help), attributes);
      pango_attr_list_unref (attributes);
      gtk_style_context_add_class (gtk_widget_get_style_context (row->help), "dim-label");
      gtk_grid_attach (grid, row->help, def->kind == GLOBAL_CHECK ? 0 : 1, (gint) line + 1,
                       def->kind == GLOBAL_CHECK ? 3 : 2, 1);
      lines[def->page] += 2;
    }
  for (i = 0; i < N_PAGES; i++)
    gtk_widget_show_all (self->grids[i]);
}

QmGlobalSettings *
qm_global_settings_new (GtkWindow *parent,
                        QmClient  *client)
{
  QmGlobalSettings *self = g_object_new (QM_TYPE_GLOBAL_SETTINGS, "transient-for", parent, NULL);

  self->client = g_object_ref (client);
  load (self);
  return self;
}

static void
qm_global_settings_dispose (GObject *object)
{
  QmGlobalSettings *self = QM_GLOBAL_SETTINGS (object);

  g_cancellable_cancel (self->cancellable);
  qm_settings_calls_clear (self->calls);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_global_settings_parent_class)->dispose (object);
}

static void
qm_global_settings_finalize (GObject *object)
{
  QmGlobalSettings *self = QM_GLOBAL_SETTINGS (object);
  guint i;

  for (i = 0; i < N_GLOBALS; i++)
    {
      g_free (self->rows[i].value);
      g_free (self->rows[i].default_value);
      g_free (self->rows[i].shown_id);
    }
  qm_storage_free (self->storage);
  g_free (self->load_error);
  g_clear_object (&self->cancellable);
  qm_settings_calls_free (self->calls);
  g_string_free (self->errors, TRUE);
  G_OBJECT_CLASS (qm_global_settings_parent_class)->finalize (object);
}

static void
qm_global_settings_init (QmGlobalSettings *self)
{
  self->cancellable = g_cancellable_new ();
  self->calls = qm_settings_calls_new ();
  self->errors = g_string_new (NULL);
  gtk_widget_init_template (GTK_WIDGET (self));
  qm_error_name_info_bar_close (GTK_INFO_BAR (self->info_bar));
  build_rows (self);
}

static void
qm_global_settings_class_init (QmGlobalSettingsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qm_global_settings_dispose;
  object_class->finalize = qm_global_settings_finalize;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-global-settings.ui");
  gtk_widget_class_bind_template_child (widget_class, QmGlobalSettings, info_bar);
  gtk_widget_class_bind_template_child (widget_class, QmGlobalSettings, info_label);
  gtk_widget_class_bind_template_child (widget_class, QmGlobalSettings, notebook);
  gtk_widget_class_bind_template_child (widget_class, QmGlobalSettings, apply_button);
  gtk_widget_class_bind_template_child (widget_class, QmGlobalSettings, ok_button);
  gtk_widget_class_bind_template_child_full (widget_class, "qubes_grid", FALSE,
                                             G_STRUCT_OFFSET (QmGlobalSettings, grids)
                                             + PAGE_QUBES * sizeof (GtkWidget *));
  gtk_widget_class_bind_template_child_full (widget_class, "storage_grid", FALSE,
                                             G_STRUCT_OFFSET (QmGlobalSettings, grids)
                                             + PAGE_STORAGE * sizeof (GtkWidget *));
  gtk_widget_class_bind_template_child_full (widget_class, "other_grid", FALSE,
                                             G_STRUCT_OFFSET (QmGlobalSettings, grids)
                                             + PAGE_OTHER * sizeof (GtkWidget *));
  gtk_widget_class_bind_template_callback (widget_class, on_info_bar_response);
  gtk_widget_class_bind_template_callback (widget_class, on_cancel);
  gtk_widget_class_bind_template_callback (widget_class, on_apply);
  gtk_widget_class_bind_template_callback (widget_class, on_ok);
}
