/* qm-qube-store.c: one row per qube, updated by diffing so that selection survives
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-qube-store.h"

#define PLACEHOLDER "\u2014" /* em dash: a running qube whose first Stats signal is to come */

static GQuark
index_quark (void)
{
  return g_quark_from_static_string ("qm-qube-store-index");
}

static GHashTable *
store_index (GtkListStore *store)
{
  return g_object_get_qdata (G_OBJECT (store), index_quark ());
}

static GQuark
notes_shown_quark (void)
{
  return g_quark_from_static_string ("qm-qube-store-notes-shown");
}

void
qm_qube_store_set_notes_shown (GtkListStore *store,
                               gboolean      shown)
{
  g_object_set_qdata (G_OBJECT (store), notes_shown_quark (), GINT_TO_POINTER (shown));
}

GtkListStore *
qm_qube_store_new (void)
{
  GtkListStore *store;
  GType types[QM_N_COLUMNS];
  guint i;

  for (i = 0; i < QM_N_COLUMNS; i++)
    types[i] = G_TYPE_STRING;
  types[QM_COL_LABEL_PIXBUF] = GDK_TYPE_PIXBUF;
  types[QM_COL_LABEL_INDEX] = G_TYPE_INT;
  types[QM_COL_STATE_ORDER] = G_TYPE_INT;
  types[QM_COL_INTERNAL] = G_TYPE_BOOLEAN;
  types[QM_COL_INCLUDE_IN_BACKUPS] = G_TYPE_BOOLEAN;
  types[QM_COL_LAST_BACKUP_TS] = G_TYPE_INT64;
  types[QM_COL_TEMPLATE_FOR_DISPVMS] = G_TYPE_BOOLEAN;
  types[QM_COL_PROVIDES_NETWORK] = G_TYPE_BOOLEAN;
  types[QM_COL_DISK_BYTES] = G_TYPE_INT64;
  types[QM_COL_CPU_PERCENT] = G_TYPE_INT;
  types[QM_COL_MEMORY_KB] = G_TYPE_INT64;

  store = gtk_list_store_newv (QM_N_COLUMNS, types);
  /* GtkListStore iters persist while the row exists: path -> GtkTreeIter */
  g_object_set_qdata_full (G_OBJECT (store), index_quark (),
                           g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free),
                           (GDestroyNotify) g_hash_table_unref);
  return store;
}

gboolean
qm_qube_store_lookup (GtkListStore *store,
                      const gchar  *object_path,
                      GtkTreeIter  *iter)
{
  GtkTreeIter *found = g_hash_table_lookup (store_index (store), object_path);

  if (found == NULL)
    return FALSE;
  if (iter != NULL)
    *iter = *found;
  return TRUE;
}

gchar *
qm_format_timestamp (gint64 timestamp)
{
  g_autoptr(GDateTime) dt = NULL;

  if (timestamp <= 0)
    return g_strdup ("");
  dt = g_date_time_new_from_unix_local (timestamp);
  if (dt == NULL)
    return g_strdup ("");
  return g_date_time_format (dt, "%Y-%m-%d %H:%M");
}

const gchar *
qm_power_state_text (const gchar *power_state)
{
  static const struct
  {
    const gchar *state;
    const gchar *text;
  } states[] = {
    { "Halted", N_("Halted") },
    { "Transient", N_("Starting") },
    { "Running", N_("Running") },
    { "Paused", N_("Paused") },
    { "Suspended", N_("Suspended") },
    { "Halting", N_("Shutting down") },
    { "Dying", N_("Dying") },
    { "Crashed", N_("Crashed") },
    { "NA", N_("Unknown") },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (states); i++)
    if (g_strcmp0 (states[i].state, power_state) == 0)
      return _(states[i].text);
  return power_state != NULL ? power_state : "";
}

static const gchar *
power_state_icon (const gchar *power_state, gint *order)
{
  static const struct
  {
    const gchar *state;
    const gchar *icon;
  } icons[] = {
    { "Running", "media-playback-start" },
    { "Transient", "media-seek-forward" },
    { "Paused", "media-playback-pause" },
    { "Suspended", "media-playback-pause" },
    { "Halting", "media-seek-backward" },
    { "Dying", "media-seek-backward" },
    { "Crashed", "dialog-error" },
    { "Halted", "media-playback-stop" },
    { "NA", "dialog-question" },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (icons); i++)
    if (g_strcmp0 (icons[i].state, power_state) == 0)
      {
        *order = (gint) i;
        return icons[i].icon;
      }
  *order = G_N_ELEMENTS (icons);
  return "dialog-question";
}

GdkPixbuf *
qm_label_swatch (const gchar *color)
{
  static GHashTable *cache;
  GdkPixbuf *pixbuf;
  guint64 rgb;

  if (color == NULL)
    return NULL;
  if (cache == NULL)
    cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  pixbuf = g_hash_table_lookup (cache, color);
  if (pixbuf != NULL)
    return pixbuf;

  rgb = g_ascii_strtoull (g_str_has_prefix (color, "0x") ? color + 2
                          : g_str_has_prefix (color, "#") ? color + 1 : color, NULL, 16);
  pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, 16, 16);
  gdk_pixbuf_fill (pixbuf, (guint32) ((rgb & 0xffffff) << 8 | 0xff));
  g_hash_table_insert (cache, g_strdup (color), pixbuf);
  return pixbuf;
}

static const gchar *
feature (GVariant    *features,
         const gchar *name)
{
  const gchar *value = NULL;

  if (features == NULL || !g_variant_lookup (features, name, "&s", &value))
    return NULL;
  return value;
}

static gchar *
tags_text (GVariant *tags)
{
  g_autofree const gchar **strv = tags != NULL ? g_variant_get_strv (tags, NULL) : NULL;

  return strv != NULL ? g_strjoinv (", ", (gchar **) strv) : g_strdup ("");
}

/* Qubes reads a feature as a boolean the way Python does: present and non-empty. */
static gboolean
feature_bool (GVariant    *features,
              const gchar *name)
{
  const gchar *value = feature (features, name);

  return value != NULL && value[0] != '\0';
}

static gchar *
qube_reference (QmClient    *client,
                const gchar *path,
                const gchar *property,
                const gchar *proxy_value)
{
  gboolean is_default;
  const gchar *value;

  if (!qm_client_get_property_info (client, path, property, &is_default, &value))
    {
      const gchar *name = qm_client_domain_name (client, proxy_value);

      return g_strdup (name != NULL ? name : "");
    }
  if (is_default)
    {
      /* TRANSLATORS: a property at its default value, e.g. "default (sys-firewall)" */
      return g_strdup_printf (_("default (%s)"), value[0] != '\0' ? value : _("none"));
    }
  return g_strdup (value[0] != '\0' ? value : _("none"));
}

typedef struct
{
  gint   columns[QM_N_COLUMNS];
  GValue values[QM_N_COLUMNS];
  gint   n;
} Row;

static void
row_set_string (Row         *row,
                gint         column,
                const gchar *value)
{
  g_value_init (&row->values[row->n], G_TYPE_STRING);
  g_value_set_string (&row->values[row->n], value);
  row->columns[row->n++] = column;
}

static void
row_take_string (Row   *row,
                 gint   column,
                 gchar *value)
{
  g_value_init (&row->values[row->n], G_TYPE_STRING);
  g_value_take_string (&row->values[row->n], value);
  row->columns[row->n++] = column;
}

static void
row_set_int (Row  *row,
             gint  column,
             gint  value)
{
  g_value_init (&row->values[row->n], G_TYPE_INT);
  g_value_set_int (&row->values[row->n], value);
  row->columns[row->n++] = column;
}

static void
row_set_int64 (Row    *row,
               gint    column,
               gint64  value)
{
  g_value_init (&row->values[row->n], G_TYPE_INT64);
  g_value_set_int64 (&row->values[row->n], value);
  row->columns[row->n++] = column;
}

static void
row_set_boolean (Row      *row,
                 gint      column,
                 gboolean  value)
{
  g_value_init (&row->values[row->n], G_TYPE_BOOLEAN);
  g_value_set_boolean (&row->values[row->n], value);
  row->columns[row->n++] = column;
}

static void
row_set_object (Row     *row,
                gint     column,
                gpointer value)
{
  g_value_init (&row->values[row->n], GDK_TYPE_PIXBUF);
  g_value_set_object (&row->values[row->n], value);
  row->columns[row->n++] = column;
}

static void
compute_row (QmClient *client,
             QmObject *object,
             gboolean  notes_shown,
             Row      *row)
{
  gboolean qubes_vm = qm_object_has_interface (object, "QubesVM");
  const gchar *path = qm_object_get_path (object);
  QmObject *label = qm_client_lookup_label (client,
                                            qm_object_get_string (object, "Domain", "Label"));
  GVariant *features = qm_object_get_value (object, "Domain", "Features",
                                            G_VARIANT_TYPE ("a{ss}"));
  GVariant *tags = qm_object_get_value (object, "Domain", "Tags", G_VARIANT_TYPE_STRING_ARRAY);
  const gchar *power = qm_object_get_string (object, "Domain", "PowerState");
  gint64 backup_timestamp = qm_object_get_int64 (object, "QubesVM", "BackupTimestamp");
  const gchar *template_path = NULL;
  GString *state_text;
  const gchar *badge = NULL;
  guint64 disk_bytes = 0, memory_kb = 0;
  gdouble cpu_usage = 0;
  gint order;

  memset (row, 0, sizeof *row);
  row_set_string (row, QM_COL_PATH, path);
  row_set_object (row, QM_COL_LABEL_PIXBUF,
                  label != NULL ? qm_label_swatch (qm_object_get_string (label, "Label", "Color"))
                                : NULL);
  row_set_string (row, QM_COL_LABEL_NAME,
                  label != NULL ? qm_object_get_string (label, "Label", "Name") : "");
  row_set_int (row, QM_COL_LABEL_INDEX,
               label != NULL ? qm_object_get_int32 (label, "Label", "Index") : 0);
  row_set_string (row, QM_COL_NAME, qm_object_get_string (object, "Domain", "Name"));
  row_set_string (row, QM_COL_POWER_STATE, power);
  row_set_string (row, QM_COL_STATE_ICON, power_state_icon (power, &order));

  state_text = g_string_new (qm_power_state_text (power));
  if (feature_bool (features, "updates-available"))
    {
      g_string_append_printf (state_text, " \u00b7 %s", _("updates available"));
      badge = "software-update-available";
    }
  if (feature_bool (features, "prohibit-start"))
    {
      g_string_append_printf (state_text, " \u00b7 %s", _("start prohibited"));
      badge = "changes-prevent";
    }
  row_take_string (row, QM_COL_STATE_TEXT, g_string_free (state_text, FALSE));
  row_set_int (row, QM_COL_STATE_ORDER, order);
  row_set_string (row, QM_COL_BADGE_ICON, badge);

  row_set_string (row, QM_COL_CLASS, qm_object_get_string (object, "Domain", "Klass"));
  if (qm_object_has_interface (object, "AppVM"))
    template_path = qm_object_get_string (object, "AppVM", "Template");
  else if (qm_object_has_interface (object, "DispVM"))
    template_path = qm_object_get_string (object, "DispVM", "Template");
  row_set_string (row, QM_COL_TEMPLATE, qm_client_domain_name (client, template_path));

  row_take_string (row, QM_COL_NETVM,
                   qubes_vm ? qube_reference (client, path, "netvm",
                                              qm_object_get_string (object, "QubesVM", "Netvm"))
                            : g_strdup (""));
  if (qm_client_get_disk_usage (client, path, &disk_bytes))
    {
      /* binary units, as the memory and upstream's Qube Manager: MiB and GiB, never MB */
      row_take_string (row, QM_COL_DISK, g_format_size_full (disk_bytes,
                                                             G_FORMAT_SIZE_IEC_UNITS));
      row_set_int64 (row, QM_COL_DISK_BYTES, (gint64) disk_bytes);
    }
  else
    {
      row_set_string (row, QM_COL_DISK, "");
      row_set_int64 (row, QM_COL_DISK_BYTES, -1);
    }
  if (g_strcmp0 (power, "Running") != 0 && g_strcmp0 (power, "Paused") != 0)
    {
      row_set_string (row, QM_COL_CPU, "");
      row_set_string (row, QM_COL_MEMORY, "");
      row_set_int (row, QM_COL_CPU_PERCENT, -1);
      row_set_int64 (row, QM_COL_MEMORY_KB, -1);
    }
  else if (qm_client_get_stats (client, path, &cpu_usage, &memory_kb))
    {
      /* TRANSLATORS: CPU usage of a qube, in percent of its virtual CPUs */
      row_take_string (row, QM_COL_CPU, g_strdup_printf (_("%.0f %%"), cpu_usage));
      row_take_string (row, QM_COL_MEMORY, g_format_size_full (memory_kb * 1024,
                                                               G_FORMAT_SIZE_IEC_UNITS));
      row_set_int (row, QM_COL_CPU_PERCENT, (gint) (cpu_usage + 0.5));
      row_set_int64 (row, QM_COL_MEMORY_KB, (gint64) memory_kb);
    }
  else
    {
      row_set_string (row, QM_COL_CPU, PLACEHOLDER);
      row_set_string (row, QM_COL_MEMORY, PLACEHOLDER);
      row_set_int (row, QM_COL_CPU_PERCENT, 0);
      row_set_int64 (row, QM_COL_MEMORY_KB, 0);
    }
  row_set_boolean (row, QM_COL_INTERNAL, feature_bool (features, "internal"));
  row_set_string (row, QM_COL_IP,
                  qubes_vm ? qm_object_get_string (object, "QubesVM", "Ip") : "");
  row_set_boolean (row, QM_COL_INCLUDE_IN_BACKUPS,
                   qm_object_get_boolean (object, "Domain", "IncludeInBackups"));
  row_take_string (row, QM_COL_LAST_BACKUP, qm_format_timestamp (backup_timestamp));
  row_set_int64 (row, QM_COL_LAST_BACKUP_TS, backup_timestamp);
  row_take_string (row, QM_COL_DEFAULT_DISPVM,
                   qubes_vm ? qube_reference (client, path, "default_dispvm",
                                              qm_object_get_string (object, "QubesVM",
                                                                    "DefaultDispvm"))
                            : g_strdup (""));
  row_set_boolean (row, QM_COL_TEMPLATE_FOR_DISPVMS,
                   qm_object_get_boolean (object, "AppVM", "TemplateForDispvms")
                   || qm_object_get_boolean (object, "StandaloneVM", "TemplateForDispvms"));
  row_set_string (row, QM_COL_VIRT_MODE,
                  qubes_vm ? qm_object_get_string (object, "QubesVM", "VirtMode") : "");
  row_take_string (row, QM_COL_TAGS, tags_text (tags));
  row_set_boolean (row, QM_COL_PROVIDES_NETWORK,
                   qm_object_get_boolean (object, "QubesVM", "ProvidesNetwork"));
  {
    const gchar *netvm = NULL;

    if (qubes_vm && !qm_client_get_property_info (client, path, "netvm", NULL, &netvm))
      netvm = qm_client_domain_name (client, qm_object_get_string (object, "QubesVM", "Netvm"));
    row_set_string (row, QM_COL_NETVM_NAME, netvm != NULL ? netvm : "");
  }
  {
    const gchar *notes = notes_shown ? qm_client_get_notes (client, path) : NULL;

    row_set_string (row, QM_COL_NOTES, notes != NULL ? notes : "");
  }
}

static gboolean
values_equal (const GValue *a,
              const GValue *b)
{
  switch (G_VALUE_TYPE (a))
    {
    case G_TYPE_STRING:
      return g_strcmp0 (g_value_get_string (a), g_value_get_string (b)) == 0;
    case G_TYPE_INT:
      return g_value_get_int (a) == g_value_get_int (b);
    case G_TYPE_INT64:
      return g_value_get_int64 (a) == g_value_get_int64 (b);
    case G_TYPE_BOOLEAN:
      return !g_value_get_boolean (a) == !g_value_get_boolean (b);
    default:
      return g_value_get_object (a) == g_value_get_object (b);
    }
}

/* Adds the qube's row, or changes the columns that differ. */
static void
update_row (GtkListStore *store,
            GHashTable   *index,
            QmClient     *client,
            QmObject     *object)
{
  Row row;
  GtkTreeIter *iter;
  gint i;

  compute_row (client, object,
               GPOINTER_TO_INT (g_object_get_qdata (G_OBJECT (store), notes_shown_quark ())),
               &row);
  iter = g_hash_table_lookup (index, g_value_get_string (&row.values[0]));
  if (iter == NULL)
    {
      GtkTreeIter new_iter;

      gtk_list_store_insert_with_valuesv (store, &new_iter, -1, row.columns, row.values, row.n);
      g_hash_table_insert (index, g_value_dup_string (&row.values[0]),
                           g_memdup2 (&new_iter, sizeof new_iter));
    }
  else
    {
      gint changed_columns[QM_N_COLUMNS];
      GValue changed_values[QM_N_COLUMNS];
      gint n_changed = 0;

      for (i = 1; i < row.n; i++)
        {
          GValue current = G_VALUE_INIT;

          gtk_tree_model_get_value (GTK_TREE_MODEL (store), iter, row.columns[i], &current);
          if (!values_equal (&current, &row.values[i]))
            {
              changed_columns[n_changed] = row.columns[i];
              changed_values[n_changed] = row.values[i];
              n_changed++;
            }
          g_value_unset (&current);
        }
      if (n_changed > 0)
        gtk_list_store_set_valuesv (store, iter, changed_columns, changed_values, n_changed);
    }
  for (i = 0; i < row.n; i++)
    g_value_unset (&row.values[i]);
}

static void
remove_row (GtkListStore *store,
            GHashTable   *index,
            const gchar  *path)
{
  GtkTreeIter *iter = g_hash_table_lookup (index, path);

  if (iter == NULL)
    return;
  gtk_list_store_remove (store, iter);
  g_hash_table_remove (index, path);
}

void
qm_qube_store_update (GtkListStore *store,
                      QmClient     *client,
                      GHashTable   *changed)
{
  GHashTable *index = store_index (store);
  g_autoptr(GHashTable) seen = NULL;
  g_autoptr(GPtrArray) gone = NULL;
  GList *domains, *l;
  GHashTableIter hiter;
  gpointer key;
  guint i;

  /* Only the rows said to have changed: while qubes start and stop that is a few of hundreds. */
  if (changed != NULL)
    {
      g_hash_table_iter_init (&hiter, changed);
      while (g_hash_table_iter_next (&hiter, &key, NULL))
        {
          QmObject *object = qm_client_lookup_domain (client, key);

          if (object != NULL)
            update_row (store, index, client, object);
          else
            remove_row (store, index, key);
        }
      return;
    }

  seen = g_hash_table_new (g_str_hash, g_str_equal);
  domains = qm_client_get_domains (client);
  for (l = domains; l != NULL; l = l->next)
    {
      update_row (store, index, client, l->data);
      g_hash_table_add (seen, (gpointer) qm_object_get_path (l->data));
    }

  gone = g_ptr_array_new_with_free_func (g_free);
  g_hash_table_iter_init (&hiter, index);
  while (g_hash_table_iter_next (&hiter, &key, NULL))
    if (!g_hash_table_contains (seen, key))
      g_ptr_array_add (gone, g_strdup (key));
  for (i = 0; i < gone->len; i++)
    remove_row (store, index, gone->pdata[i]);
  g_list_free_full (domains, g_object_unref);
}
