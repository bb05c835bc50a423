/* qm-window.c: the Qube Manager's main window
 *
 * The window is shown before anything is known about qubesd and fills in as the client reports
 * changes (coalesced; see qm-client.c). The list is a GtkListStore diffed in place
 * (qm-qube-store.c), mirrored (diffed too) into a GtkTreeStore that adds the group headers of
 * View > Group by, under a filter and a sort model, so selection, folding and scroll position
 * survive every update.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-clone-dialog.h"
#include "qm-create-dialog.h"
#include "qm-error.h"
#include "qm-prefs.h"
#include "qm-qube-store.h"
#include "qm-settings-window.h"
#include "qm-window.h"

typedef enum
{
  SORT_TEXT,
  SORT_INT,
  SORT_INT64,
  SORT_BOOL,
} SortKind;

typedef struct
{
  const gchar *id;
  const gchar *title;
  gint         sort_column;
  SortKind     sort_kind;
  gint         text_column; /* what the search entry matches, -1 for none */
  gint         shown_column; /* what the cell shows when it is neither: 0 for none */
} ColumnDef;

static const ColumnDef column_defs[] = {
  { "label", N_("Label"), QM_COL_LABEL_INDEX, SORT_INT, QM_COL_LABEL_NAME },
  { "name", N_("Name"), QM_COL_NAME, SORT_TEXT, QM_COL_NAME },
  { "state", N_("State"), QM_COL_STATE_ORDER, SORT_INT, QM_COL_STATE_TEXT },
  { "class", N_("Class"), QM_COL_CLASS, SORT_TEXT, QM_COL_CLASS },
  { "template", N_("Template"), QM_COL_TEMPLATE, SORT_TEXT, QM_COL_TEMPLATE },
  { "netvm", N_("NetVM"), QM_COL_NETVM, SORT_TEXT, QM_COL_NETVM },
  { "disk", N_("Disk usage"), QM_COL_DISK_BYTES, SORT_INT64, -1, QM_COL_DISK },
  { "cpu", N_("CPU"), QM_COL_CPU_PERCENT, SORT_INT, -1, QM_COL_CPU },
  { "memory", N_("Memory"), QM_COL_MEMORY_KB, SORT_INT64, -1, QM_COL_MEMORY },
  { "internal", N_("Internal"), QM_COL_INTERNAL, SORT_BOOL, -1 },
  { "ip", N_("IP"), QM_COL_IP, SORT_TEXT, QM_COL_IP },
  { "include-in-backups", N_("Include in backups"), QM_COL_INCLUDE_IN_BACKUPS, SORT_BOOL, -1 },
  { "last-backup", N_("Last backup"), QM_COL_LAST_BACKUP_TS, SORT_INT64, QM_COL_LAST_BACKUP },
  { "default-dispvm", N_("Default disposable template"), QM_COL_DEFAULT_DISPVM, SORT_TEXT,
    QM_COL_DEFAULT_DISPVM },
  { "template-for-dispvms", N_("Disposable template"), QM_COL_TEMPLATE_FOR_DISPVMS, SORT_BOOL,
    -1 },
  { "virt-mode", N_("Virt mode"), QM_COL_VIRT_MODE, SORT_TEXT, QM_COL_VIRT_MODE },
  { "tags", N_("Tags"), QM_COL_TAGS, SORT_TEXT, QM_COL_TAGS },
};

#define N_VIEW_COLUMNS G_N_ELEMENTS (column_defs)

static const struct
{
  const gchar *id;
  const gchar *title;
} filter_defs[] = {
  { "all", N_("All qubes") },
  { "running", N_("Running") },
  { "halted", N_("Halted") },
  { "network", N_("Network providers") },
  { "templates", N_("Templates") },
  { "standalones", N_("Standalones") },
  { "user", N_("User qubes") },
};

static const struct
{
  const gchar *action;
  const gchar *method;
  const gchar *label;
  const gchar *icon;
} lifecycle_defs[] = {
  { "start", "Start", N_("_Start"), "media-playback-start" },
  { "shutdown", "Shutdown", N_("Shut _down"), "system-shutdown" },
  { "restart", "Restart", N_("Res_tart"), "view-refresh" },
  { "pause", "Pause", N_("_Pause"), "media-playback-pause" },
  { "kill", "Kill", N_("_Kill"), "process-stop" },
};

#define PAUSE_INDEX 3

/* The view store has the store's columns and these. */
enum
{
  VIEW_COL_IS_GROUP = QM_N_COLUMNS, /* b: a group's header row */
  VIEW_COL_IS_QUBE,                 /* b: a qube's row */
  VIEW_COL_GROUP_KEY,               /* s */
  VIEW_COL_GROUP_ORDER,             /* i: headers sort by this, then by name */
  VIEW_N_COLUMNS
};

static const struct
{
  const gchar *id;
  const gchar *title;
} group_defs[] = {
  { "none", N_("No grouping") },
  { "template", N_("Template") },
  { "netvm", N_("NetVM") },
  { "label", N_("Label") },
  { "tag", N_("Tag") },
};

struct _QmWindow
{
  GtkApplicationWindow parent_instance;

  QmClient            *client;
  GCancellable        *cancellable;
  GtkListStore        *store;
  GtkTreeStore        *view_store;   /* what the tree shows: the store's rows, grouped */
  GtkTreeModel        *filter_model;
  GtkTreeModel        *sort_model;
  GHashTable          *view_rows;    /* object path -> GPtrArray of ViewEntry */
  GHashTable          *groups;       /* group key -> GtkTreeIter (header row) */
  GHashTable          *collapsed;    /* keys of the groups the user folded */
  gchar               *group_by;
  gboolean             synced;       /* the store holds every row the client had */

  GtkWidget           *stack;
  GtkWidget           *tree_view;
  GtkWidget           *search_entry;
  GtkWidget           *filter_combo;
  GtkWidget           *group_combo;
  GtkWidget           *status_label;
  GtkWidget           *message_title;
  GtkWidget           *message_body;
  GtkWidget           *lifecycle_buttons[G_N_ELEMENTS (lifecycle_defs)];
  GtkTreeViewColumn   *columns[N_VIEW_COLUMNS];

  gchar               *search_casefold;
  gchar               *filter;
  gboolean             show_internal;
  GHashTable          *settings_windows; /* object path -> QmSettingsWindow */
};

G_DEFINE_TYPE (QmWindow, qm_window, GTK_TYPE_APPLICATION_WINDOW)

/* ---- selection ------------------------------------------------------------------------- */

/* Several rows can be selected; settings and removal act on one, the lifecycle on all. */
typedef struct
{
  gchar *path;
  gchar *name;
  gchar *klass;
  gchar *power;
} Selected;

static void
selected_free (gpointer data)
{
  Selected *sel = data;

  g_free (sel->path);
  g_free (sel->name);
  g_free (sel->klass);
  g_free (sel->power);
  g_free (sel);
}

static GPtrArray *
selected_qubes (QmWindow *self)
{
  GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->tree_view));
  GPtrArray *result = g_ptr_array_new_with_free_func (selected_free);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GList *rows, *l;

  rows = gtk_tree_selection_get_selected_rows (selection, NULL);
  for (l = rows; l != NULL; l = l->next)
    {
      GtkTreeIter iter;
      Selected *sel;

      if (!gtk_tree_model_get_iter (self->sort_model, &iter, l->data))
        continue;
      sel = g_new0 (Selected, 1);
      gtk_tree_model_get (self->sort_model, &iter, QM_COL_PATH, &sel->path, QM_COL_NAME,
                          &sel->name, QM_COL_CLASS, &sel->klass, QM_COL_POWER_STATE, &sel->power,
                          -1);
      /* Headers are not qubes; a qube under several tags is selected once. */
      if (sel->path == NULL || !g_hash_table_add (seen, g_strdup (sel->path)))
        {
          selected_free (sel);
          continue;
        }
      g_ptr_array_add (result, sel);
    }
  g_list_free_full (rows, (GDestroyNotify) gtk_tree_path_free);
  return result;
}

static gchar *
selected_path (QmWindow *self)
{
  g_autoptr(GPtrArray) selection = selected_qubes (self);

  return selection->len == 1 ? g_strdup (((Selected *) selection->pdata[0])->path) : NULL;
}

static gboolean
is_halted (const Selected *sel)
{
  return g_strcmp0 (sel->power, "Halted") == 0;
}

static gboolean
is_admin (const Selected *sel)
{
  return g_strcmp0 (sel->klass, "AdminVM") == 0;
}

/* What a lifecycle action does to one selected qube: its method, or NULL to leave it alone.
 * Pause unpauses instead when any selected qube is paused. */
static const gchar *
lifecycle_method (const gchar    *action,
                  const Selected *sel,
                  gboolean        any_paused)
{
  if (is_admin (sel))
    return NULL;
  if (g_str_equal (action, "start"))
    return is_halted (sel) ? "Start" : NULL;
  if (g_str_equal (action, "pause"))
    {
      if (any_paused)
        return g_strcmp0 (sel->power, "Paused") == 0 ? "Unpause" : NULL;
      return g_strcmp0 (sel->power, "Running") == 0 ? "Pause" : NULL;
    }
  if (is_halted (sel))
    return NULL;
  if (g_str_equal (action, "shutdown"))
    return "Shutdown";
  if (g_str_equal (action, "restart"))
    return "Restart";
  if (g_str_equal (action, "kill"))
    return "Kill";
  return NULL;
}

static gboolean
any_paused (GPtrArray *selection)
{
  guint i;

  for (i = 0; i < selection->len; i++)
    if (g_strcmp0 (((Selected *) selection->pdata[i])->power, "Paused") == 0)
      return TRUE;
  return FALSE;
}

static void
enable_action (QmWindow    *self,
               const gchar *name,
               gboolean     enabled)
{
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), name);

  g_simple_action_set_enabled (G_SIMPLE_ACTION (action), enabled);
}

static void
update_actions (QmWindow *self)
{
  g_autoptr(GPtrArray) selection = selected_qubes (self);
  gboolean ready = qm_client_get_state (self->client) == QM_CLIENT_STATE_READY;
  gboolean lifecycle = ready && qm_client_has_lifecycle (self->client);
  gboolean one = selection->len == 1;
  gboolean paused = any_paused (selection);
  guint i, j;

  enable_action (self, "create", ready);
  enable_action (self, "remove", ready && one && !is_admin (selection->pdata[0]));
  enable_action (self, "settings", ready && one);
  enable_action (self, "clone", ready && one && !is_admin (selection->pdata[0])
                                && g_strcmp0 (((Selected *) selection->pdata[0])->klass,
                                              "DispVM") != 0);

  for (i = 0; i < G_N_ELEMENTS (lifecycle_defs); i++)
    {
      gboolean enabled = FALSE;

      for (j = 0; lifecycle && !enabled && j < selection->len; j++)
        enabled = lifecycle_method (lifecycle_defs[i].action, selection->pdata[j], paused) != NULL;
      enable_action (self, lifecycle_defs[i].action, enabled);
      gtk_widget_set_tooltip_text (self->lifecycle_buttons[i],
                                   lifecycle || !ready ? NULL
                                   : _("Needs the lifecycle service, which this qubesd does not "
                                       "offer yet"));
    }
  gtk_tool_button_set_label (GTK_TOOL_BUTTON (self->lifecycle_buttons[PAUSE_INDEX]),
                             paused ? _("_Unpause") : _(lifecycle_defs[PAUSE_INDEX].label));
}

/* ---- grouping -------------------------------------------------------------------------- */

/* The tree shows view_store: a copy of the store's rows, flat or under one header row per group,
 * kept in step by sync_view() after every update of the store (a diff too, so that rows, and with
 * them selection and folding, survive). A qube with several tags has one row under each. */

typedef struct
{
  gchar       *key;   /* NULL: at the top level, no grouping */
  GtkTreeIter  iter;
} ViewEntry;

typedef struct
{
  gchar     *key;
  gchar     *title;
  gint       order;
  GdkPixbuf *pixbuf;
} GroupKey;

static void
view_entry_free (gpointer data)
{
  ViewEntry *entry = data;

  g_free (entry->key);
  g_free (entry);
}

static void
group_key_free (gpointer data)
{
  GroupKey *key = data;

  g_free (key->key);
  g_free (key->title);
  g_clear_object (&key->pixbuf);
  g_free (key);
}

static void
add_group_key (GPtrArray   *keys,
               const gchar *key,
               const gchar *title,
               gint         order,
               GdkPixbuf   *pixbuf)
{
  GroupKey *group = g_new0 (GroupKey, 1);

  group->key = g_strdup (key);
  group->title = g_strdup (title);
  group->order = order;
  group->pixbuf = pixbuf != NULL ? g_object_ref (pixbuf) : NULL;
  g_ptr_array_add (keys, group);
}

/* The groups a row of the store belongs to. The "no ..." groups have the key "" and come last. */
static GPtrArray *
row_group_keys (QmWindow     *self,
                GtkTreeModel *model,
                GtkTreeIter  *iter)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func (group_key_free);
  const gchar *by = self->group_by;
  g_autofree gchar *value = NULL;

  if (g_strcmp0 (by, "template") == 0 || g_strcmp0 (by, "netvm") == 0)
    {
      gboolean template = g_str_equal (by, "template");

      gtk_tree_model_get (model, iter, template ? QM_COL_TEMPLATE : QM_COL_NETVM_NAME, &value, -1);
      if (value != NULL && value[0] != '\0')
        add_group_key (keys, value, value, 0, NULL);
      else
        add_group_key (keys, "", template ? _("No template") : _("No network"), 1, NULL);
    }
  else if (g_strcmp0 (by, "label") == 0)
    {
      g_autoptr(GdkPixbuf) pixbuf = NULL;
      gint index = 0;

      gtk_tree_model_get (model, iter, QM_COL_LABEL_NAME, &value, QM_COL_LABEL_INDEX, &index,
                          QM_COL_LABEL_PIXBUF, &pixbuf, -1);
      add_group_key (keys, value != NULL ? value : "", value != NULL ? value : "", index, pixbuf);
    }
  else if (g_strcmp0 (by, "tag") == 0)
    {
      g_auto(GStrv) tags = NULL;
      guint i;

      gtk_tree_model_get (model, iter, QM_COL_TAGS, &value, -1);
      tags = g_strsplit (value != NULL ? value : "", ", ", -1);
      for (i = 0; tags[i] != NULL; i++)
        if (tags[i][0] != '\0')
          add_group_key (keys, tags[i], tags[i], 0, NULL);
      if (keys->len == 0)
        add_group_key (keys, "", _("No tags"), 1, NULL);
    }
  else
    add_group_key (keys, NULL, NULL, 0, NULL);
  return keys;
}

static gboolean
same_keys (GPtrArray *entries,
           GPtrArray *keys)
{
  guint i;

  if (entries->len != keys->len)
    return FALSE;
  for (i = 0; i < keys->len; i++)
    if (g_strcmp0 (((ViewEntry *) entries->pdata[i])->key, ((GroupKey *) keys->pdata[i])->key)
        != 0)
      return FALSE;
  return TRUE;
}

static gboolean
view_values_equal (const GValue *a,
                   const GValue *b)
{
  if (G_VALUE_TYPE (a) == G_TYPE_STRING)
    return g_strcmp0 (g_value_get_string (a), g_value_get_string (b)) == 0;
  if (G_VALUE_TYPE (a) == G_TYPE_INT)
    return g_value_get_int (a) == g_value_get_int (b);
  if (G_VALUE_TYPE (a) == G_TYPE_INT64)
    return g_value_get_int64 (a) == g_value_get_int64 (b);
  if (G_VALUE_TYPE (a) == G_TYPE_BOOLEAN)
    return !g_value_get_boolean (a) == !g_value_get_boolean (b);
  return g_value_get_object (a) == g_value_get_object (b);
}

/* Copies a row of the store into a row of the view store: only what differs. */
static void
copy_row (QmWindow    *self,
          GtkTreeIter *src,
          GtkTreeIter *dest,
          gboolean     is_new)
{
  gint columns[VIEW_N_COLUMNS];
  GValue values[VIEW_N_COLUMNS];
  gint n = 0, i;

  memset (values, 0, sizeof values);
  for (i = 0; i < QM_N_COLUMNS; i++)
    {
      GValue current = G_VALUE_INIT;

      gtk_tree_model_get_value (GTK_TREE_MODEL (self->store), src, i, &values[n]);
      if (!is_new)
        {
          gtk_tree_model_get_value (GTK_TREE_MODEL (self->view_store), dest, i, &current);
          if (view_values_equal (&current, &values[n]))
            {
              g_value_unset (&current);
              g_value_unset (&values[n]);
              continue;
            }
          g_value_unset (&current);
        }
      columns[n++] = i;
    }
  if (is_new)
    {
      g_value_init (&values[n], G_TYPE_BOOLEAN);
      g_value_set_boolean (&values[n], TRUE);
      columns[n++] = VIEW_COL_IS_QUBE;
    }
  if (n > 0)
    gtk_tree_store_set_valuesv (self->view_store, dest, columns, values, n);
  for (i = 0; i < n; i++)
    g_value_unset (&values[i]);
}

static GtkTreeIter *
ensure_group (QmWindow *self,
              GroupKey *key)
{
  GtkTreeIter *header = g_hash_table_lookup (self->groups, key->key);
  GtkTreeIter iter;

  if (header != NULL)
    return header;
  gtk_tree_store_insert_with_values (self->view_store, &iter, NULL, -1,
                                     QM_COL_NAME, key->title,
                                     QM_COL_LABEL_PIXBUF, key->pixbuf,
                                     QM_COL_LABEL_INDEX, key->order,
                                     QM_COL_DISK_BYTES, (gint64) -1,
                                     QM_COL_CPU_PERCENT, -1,
                                     QM_COL_MEMORY_KB, (gint64) -1,
                                     VIEW_COL_IS_GROUP, TRUE,
                                     VIEW_COL_GROUP_KEY, key->key,
                                     VIEW_COL_GROUP_ORDER, key->order,
                                     -1);
  header = g_memdup2 (&iter, sizeof iter);
  g_hash_table_insert (self->groups, g_strdup (key->key), header);
  return header;
}

static void
touch_group (GHashTable  *touched,
             const gchar *key)
{
  if (key != NULL)
    g_hash_table_add (touched, g_strdup (key));
}

static void expand_groups (QmWindow *self);

/* Removes the view rows of the qube at path. */
static void
forget_view_rows (QmWindow    *self,
                  const gchar *path,
                  GHashTable  *touched)
{
  GPtrArray *entries = g_hash_table_lookup (self->view_rows, path);
  guint i;

  for (i = 0; entries != NULL && i < entries->len; i++)
    {
      ViewEntry *entry = entries->pdata[i];

      gtk_tree_store_remove (self->view_store, &entry->iter);
      touch_group (touched, entry->key);
    }
  g_hash_table_remove (self->view_rows, path);
}

/* Brings the view rows of the qube at path in line with its row iter of the store. */
static void
sync_view_row (QmWindow    *self,
               const gchar *path,
               GtkTreeIter *iter,
               GHashTable  *touched)
{
  GtkTreeModel *src = GTK_TREE_MODEL (self->store);
  g_autoptr(GPtrArray) keys = row_group_keys (self, src, iter);
  GPtrArray *entries = g_hash_table_lookup (self->view_rows, path);
  guint i;

  if (entries != NULL && same_keys (entries, keys))
    {
      for (i = 0; i < entries->len; i++)
        {
          ViewEntry *entry = entries->pdata[i];

          copy_row (self, iter, &entry->iter, FALSE);
          touch_group (touched, entry->key);
        }
      return;
    }
  forget_view_rows (self, path, touched);
  entries = g_ptr_array_new_with_free_func (view_entry_free);
  for (i = 0; i < keys->len; i++)
    {
      GroupKey *group = keys->pdata[i];
      ViewEntry *entry = g_new0 (ViewEntry, 1);

      entry->key = g_strdup (group->key);
      gtk_tree_store_insert (self->view_store, &entry->iter,
                             group->key != NULL ? ensure_group (self, group) : NULL, -1);
      copy_row (self, iter, &entry->iter, TRUE);
      touch_group (touched, entry->key);
      g_ptr_array_add (entries, entry);
    }
  g_hash_table_insert (self->view_rows, g_strdup (path), entries);
}

/* Brings the view in line with the store: the rows of the qubes whose paths are in changed, or
 * all rows when it is NULL. */
static void
sync_view (QmWindow   *self,
           GHashTable *changed)
{
  GtkTreeModel *src = GTK_TREE_MODEL (self->store);
  g_autoptr(GHashTable) touched = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter hiter;
  gpointer key, value;
  GtkTreeIter iter;
  gboolean valid;

  if (changed != NULL)
    {
      g_hash_table_iter_init (&hiter, changed);
      while (g_hash_table_iter_next (&hiter, &key, NULL))
        {
          if (qm_qube_store_lookup (self->store, key, &iter))
            sync_view_row (self, key, &iter, touched);
          else
            forget_view_rows (self, key, touched);
        }
    }
  else
    {
      g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
      guint i;

      for (valid = gtk_tree_model_get_iter_first (src, &iter); valid;
           valid = gtk_tree_model_iter_next (src, &iter))
        {
          gchar *path = NULL;

          gtk_tree_model_get (src, &iter, QM_COL_PATH, &path, -1);
          if (path == NULL)
            continue;
          g_hash_table_add (seen, path);
          sync_view_row (self, path, &iter, touched);
        }
      g_hash_table_iter_init (&hiter, self->view_rows);
      while (g_hash_table_iter_next (&hiter, &key, &value))
        if (!g_hash_table_contains (seen, key))
          g_ptr_array_add (gone, g_strdup (key));
      for (i = 0; i < gone->len; i++)
        forget_view_rows (self, gone->pdata[i], touched);
    }

  /* Headers: gone when empty; else their count, and a row-changed so that the filter asks
   * again whether they have a child to show. */
  g_hash_table_iter_init (&hiter, touched);
  while (g_hash_table_iter_next (&hiter, &key, NULL))
    {
      GtkTreeIter *header = g_hash_table_lookup (self->groups, key);
      g_autofree gchar *count = NULL;
      g_autofree gchar *old = NULL;
      gint n;

      if (header == NULL)
        continue;
      n = gtk_tree_model_iter_n_children (GTK_TREE_MODEL (self->view_store), header);
      if (n == 0)
        {
          gtk_tree_store_remove (self->view_store, header);
          g_hash_table_remove (self->groups, key);
          continue;
        }
      count = g_strdup_printf (ngettext ("%d qube", "%d qubes", n), n);
      gtk_tree_model_get (GTK_TREE_MODEL (self->view_store), header, QM_COL_STATE_TEXT, &old, -1);
      if (g_strcmp0 (old, count) != 0)
        gtk_tree_store_set (self->view_store, header, QM_COL_STATE_TEXT, count, -1);
      else
        {
          g_autoptr(GtkTreePath) tree_path =
            gtk_tree_model_get_path (GTK_TREE_MODEL (self->view_store), header);

          gtk_tree_model_row_changed (GTK_TREE_MODEL (self->view_store), tree_path, header);
        }
    }
  expand_groups (self);
}

/* Unfolds every header the user did not fold. */
static void
expand_groups (QmWindow *self)
{
  GtkTreeIter iter;
  gboolean valid;

  if (self->tree_view == NULL || g_strcmp0 (self->group_by, "none") == 0)
    return;
  for (valid = gtk_tree_model_get_iter_first (self->sort_model, &iter); valid;
       valid = gtk_tree_model_iter_next (self->sort_model, &iter))
    {
      g_autofree gchar *key = NULL;
      g_autoptr(GtkTreePath) path = NULL;
      gboolean is_group = FALSE;

      gtk_tree_model_get (self->sort_model, &iter, VIEW_COL_IS_GROUP, &is_group,
                          VIEW_COL_GROUP_KEY, &key, -1);
      if (!is_group || g_hash_table_contains (self->collapsed, key))
        continue;
      path = gtk_tree_model_get_path (self->sort_model, &iter);
      if (!gtk_tree_view_row_expanded (GTK_TREE_VIEW (self->tree_view), path))
        gtk_tree_view_expand_row (GTK_TREE_VIEW (self->tree_view), path, FALSE);
    }
}

static void
on_row_folded (GtkTreeView *view,
               GtkTreeIter *iter,
               GtkTreePath *path,
               gpointer     user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autofree gchar *key = NULL;
  GtkTreeIter it = *iter;

  gtk_tree_model_get (self->sort_model, &it, VIEW_COL_GROUP_KEY, &key, -1);
  if (key == NULL)
    return;
  if (gtk_tree_view_row_expanded (view, path))
    g_hash_table_remove (self->collapsed, key);
  else
    g_hash_table_add (self->collapsed, g_steal_pointer (&key));
}

static gboolean
select_qubes_only (GtkTreeSelection *selection,
                   GtkTreeModel     *model,
                   GtkTreePath      *path,
                   gboolean          selected,
                   gpointer          user_data)
{
  GtkTreeIter iter;
  gboolean is_group = FALSE;

  if (gtk_tree_model_get_iter (model, &iter, path))
    gtk_tree_model_get (model, &iter, VIEW_COL_IS_GROUP, &is_group, -1);
  return !is_group;
}

/* Regroups from scratch; the selected qubes stay selected. */
static void
regroup (QmWindow *self)
{
  g_autoptr(GPtrArray) selection = selected_qubes (self);
  GtkTreeSelection *tree_selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->tree_view));
  guint i, j;

  gtk_tree_view_set_show_expanders (GTK_TREE_VIEW (self->tree_view),
                                    g_strcmp0 (self->group_by, "none") != 0);
  g_hash_table_remove_all (self->view_rows);
  g_hash_table_remove_all (self->groups);
  gtk_tree_store_clear (self->view_store);
  sync_view (self, NULL);
  for (i = 0; i < selection->len; i++)
    {
      GPtrArray *entries = g_hash_table_lookup (self->view_rows,
                                                ((Selected *) selection->pdata[i])->path);

      for (j = 0; entries != NULL && j < entries->len; j++)
        {
          GtkTreeIter filter_iter, sort_iter;
          ViewEntry *entry = entries->pdata[j];

          if (gtk_tree_model_filter_convert_child_iter_to_iter (
                GTK_TREE_MODEL_FILTER (self->filter_model), &filter_iter, &entry->iter))
            {
              gtk_tree_model_sort_convert_child_iter_to_iter (GTK_TREE_MODEL_SORT (self->sort_model),
                                                              &sort_iter, &filter_iter);
              gtk_tree_selection_select_iter (tree_selection, &sort_iter);
            }
        }
    }
}

static void
change_group_by (GSimpleAction *action,
                 GVariant      *state,
                 gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *by = g_variant_get_string (state, NULL);
  guint i;
  gboolean known = FALSE;

  for (i = 0; i < G_N_ELEMENTS (group_defs); i++)
    known |= g_str_equal (group_defs[i].id, by);
  if (!known || g_strcmp0 (self->group_by, by) == 0)
    return;
  g_free (self->group_by);
  self->group_by = g_strdup (by);
  g_simple_action_set_state (action, state);
  qm_prefs_set_string ("group-by", by);
  if (self->group_combo != NULL)
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->group_combo), by);
  regroup (self);
}

static void
on_group_combo_changed (GtkComboBox *combo,
                        gpointer     user_data)
{
  const gchar *id = gtk_combo_box_get_active_id (combo);

  if (id != NULL)
    g_action_group_change_action_state (G_ACTION_GROUP (user_data), "group-by",
                                        g_variant_new_string (id));
}

/* ---- state of the client --------------------------------------------------------------- */

/* Qubes the filter lets through, each once however many groups it is in. */
static gint
count_shown (QmWindow *self)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GtkTreeIter iter, child;
  gboolean valid, more;

  for (valid = gtk_tree_model_get_iter_first (self->filter_model, &iter); valid;
       valid = gtk_tree_model_iter_next (self->filter_model, &iter))
    {
      gchar *path = NULL;

      gtk_tree_model_get (self->filter_model, &iter, QM_COL_PATH, &path, -1);
      if (path != NULL)
        g_hash_table_add (seen, path);
      for (more = gtk_tree_model_iter_children (self->filter_model, &child, &iter); more;
           more = gtk_tree_model_iter_next (self->filter_model, &child))
        {
          path = NULL;
          gtk_tree_model_get (self->filter_model, &child, QM_COL_PATH, &path, -1);
          if (path != NULL)
            g_hash_table_add (seen, path);
        }
    }
  return (gint) g_hash_table_size (seen);
}

static void
update_status (QmWindow *self)
{
  gint total = gtk_tree_model_iter_n_children (GTK_TREE_MODEL (self->store), NULL);
  gint shown = count_shown (self);
  g_autofree gchar *text = NULL;

  if (qm_client_get_state (self->client) == QM_CLIENT_STATE_ABSENT)
    text = g_strdup (_("qubesd is not running"));
  else if (qm_client_get_state (self->client) == QM_CLIENT_STATE_NO_BUS)
    text = g_strdup (_("No bus"));
  else if (qm_client_get_state (self->client) != QM_CLIENT_STATE_READY)
    text = g_strdup (_("Connecting to the Qubes service\u2026"));
  else if (!qm_client_is_loaded (self->client))
    text = g_strdup_printf (ngettext ("Loading\u2026 %d qube so far", "Loading\u2026 %d qubes so far",
                                      total), total);
  else
    /* TRANSLATORS: "5 of 12 qubes shown" */
    text = g_strdup_printf (ngettext ("%d of %d qube shown", "%d of %d qubes shown", total),
                            shown, total);
  gtk_label_set_text (GTK_LABEL (self->status_label), text);
}

static void
on_client_changed (QmClient *client,
                   gpointer  user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  /* All rows after a change of state: the window may have been made after the first list. */
  GHashTable *changed = self->synced ? qm_client_get_changed_domains (client) : NULL;

  qm_qube_store_update (self->store, client, changed);
  sync_view (self, changed);
  self->synced = TRUE;
  update_status (self);
  update_actions (self);
}

static void
on_client_state_changed (QmClient *client,
                         gpointer  user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  switch (qm_client_get_state (client))
    {
    case QM_CLIENT_STATE_ABSENT:
      gtk_label_set_text (GTK_LABEL (self->message_title),
                          _("The Qubes service is not running"));
      gtk_label_set_text (GTK_LABEL (self->message_body),
                          _("No program owns the name org.qubes_os.Admin1 on this bus. This "
                            "window fills in as soon as qubesd starts."));
      gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "message");
      break;
    case QM_CLIENT_STATE_NO_BUS:
      gtk_label_set_text (GTK_LABEL (self->message_title), _("Cannot connect to the bus"));
      gtk_label_set_text (GTK_LABEL (self->message_body),
                          qm_client_get_error_message (client) != NULL
                          ? qm_client_get_error_message (client) : "");
      gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "message");
      break;
    case QM_CLIENT_STATE_CONNECTING:
    case QM_CLIENT_STATE_READY:
    default:
      gtk_stack_set_visible_child_name (GTK_STACK (self->stack), "list");
      break;
    }
  self->synced = FALSE;
  if (qm_client_get_state (client) != QM_CLIENT_STATE_READY)
    {
      qm_qube_store_update (self->store, client, NULL);
      sync_view (self, NULL);
    }
  update_status (self);
  update_actions (self);
}

/* ---- filtering and sorting ------------------------------------------------------------- */

static gboolean
column_visible (QmWindow *self,
                guint     index)
{
  return self->columns[index] != NULL && gtk_tree_view_column_get_visible (self->columns[index]);
}

static gboolean
row_visible (QmWindow     *self,
             GtkTreeModel *model,
             GtkTreeIter  *iter)
{
  g_autofree gchar *klass = NULL;
  g_autofree gchar *power = NULL;
  gboolean internal, provides_network;
  guint i;

  gtk_tree_model_get (model, iter, QM_COL_CLASS, &klass, QM_COL_POWER_STATE, &power,
                      QM_COL_INTERNAL, &internal, QM_COL_PROVIDES_NETWORK, &provides_network, -1);
  if (klass == NULL)
    return FALSE;
  if (internal && !self->show_internal)
    return FALSE;

  if (g_strcmp0 (self->filter, "running") == 0 && g_strcmp0 (power, "Halted") == 0)
    return FALSE;
  if (g_strcmp0 (self->filter, "halted") == 0 && g_strcmp0 (power, "Halted") != 0)
    return FALSE;
  if (g_strcmp0 (self->filter, "network") == 0 && !provides_network)
    return FALSE;
  if (g_strcmp0 (self->filter, "templates") == 0 && g_strcmp0 (klass, "TemplateVM") != 0)
    return FALSE;
  if (g_strcmp0 (self->filter, "standalones") == 0 && g_strcmp0 (klass, "StandaloneVM") != 0)
    return FALSE;
  if (g_strcmp0 (self->filter, "user") == 0
      && (g_strcmp0 (klass, "AdminVM") == 0 || g_strcmp0 (klass, "TemplateVM") == 0
          || provides_network))
    return FALSE;

  if (self->search_casefold == NULL || self->search_casefold[0] == '\0')
    return TRUE;
  for (i = 0; i < N_VIEW_COLUMNS; i++)
    {
      g_autofree gchar *text = NULL;
      g_autofree gchar *folded = NULL;

      if (column_defs[i].text_column < 0 || !column_visible (self, i))
        continue;
      gtk_tree_model_get (model, iter, column_defs[i].text_column, &text, -1);
      if (text == NULL)
        continue;
      folded = g_utf8_casefold (text, -1);
      if (strstr (folded, self->search_casefold) != NULL)
        return TRUE;
    }
  return FALSE;
}

/* A header is shown while one of its qubes is. */
static gboolean
filter_visible (GtkTreeModel *model,
                GtkTreeIter  *iter,
                gpointer      user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  gboolean is_group = FALSE;
  GtkTreeIter child;
  gboolean valid;

  gtk_tree_model_get (model, iter, VIEW_COL_IS_GROUP, &is_group, -1);
  if (!is_group)
    return row_visible (self, model, iter);
  for (valid = gtk_tree_model_iter_children (model, &child, iter); valid;
       valid = gtk_tree_model_iter_next (model, &child))
    if (row_visible (self, model, &child))
      return TRUE;
  return FALSE;
}

static void
refilter (QmWindow *self)
{
  gtk_tree_model_filter_refilter (GTK_TREE_MODEL_FILTER (self->filter_model));
  expand_groups (self);
  update_status (self);
}

typedef struct
{
  QmWindow        *self;
  const ColumnDef *def;
} SortContext;

/* Headers sort by their group (label index, then name; "no ..." last) whatever the column and
 * order: the sort model reverses what this says when descending, so it is reversed here too. */
static gint
compare_groups (QmWindow     *self,
                GtkTreeModel *model,
                GtkTreeIter  *a,
                GtkTreeIter  *b)
{
  g_autofree gchar *ta = NULL, *tb = NULL, *ka = NULL, *kb = NULL;
  gint oa = 0, ob = 0, result, id;
  GtkSortType order = GTK_SORT_ASCENDING;

  gtk_tree_model_get (model, a, VIEW_COL_GROUP_ORDER, &oa, QM_COL_NAME, &ta, -1);
  gtk_tree_model_get (model, b, VIEW_COL_GROUP_ORDER, &ob, QM_COL_NAME, &tb, -1);
  result = (oa > ob) - (oa < ob);
  if (result == 0)
    {
      ka = g_utf8_collate_key_for_filename (ta != NULL ? ta : "", -1);
      kb = g_utf8_collate_key_for_filename (tb != NULL ? tb : "", -1);
      result = strcmp (ka, kb);
    }
  if (self->sort_model != NULL
      && gtk_tree_sortable_get_sort_column_id (GTK_TREE_SORTABLE (self->sort_model), &id, &order)
      && order == GTK_SORT_DESCENDING)
    result = -result;
  return result;
}

static gint
compare_rows (GtkTreeModel *model,
              GtkTreeIter  *a,
              GtkTreeIter  *b,
              gpointer      user_data)
{
  const SortContext *context = user_data;
  const ColumnDef *def = context->def;
  gboolean group_a = FALSE, group_b = FALSE;
  gint result = 0;

  gtk_tree_model_get (model, a, VIEW_COL_IS_GROUP, &group_a, -1);
  gtk_tree_model_get (model, b, VIEW_COL_IS_GROUP, &group_b, -1);
  if (group_a || group_b)
    return compare_groups (context->self, model, a, b);

  switch (def->sort_kind)
    {
    case SORT_TEXT:
      {
        g_autofree gchar *sa = NULL, *sb = NULL;

        g_autofree gchar *ka = NULL, *kb = NULL;

        gtk_tree_model_get (model, a, def->sort_column, &sa, -1);
        gtk_tree_model_get (model, b, def->sort_column, &sb, -1);
        /* Numbers inside names and addresses sort as numbers: work-2 before work-10. */
        ka = g_utf8_collate_key_for_filename (sa != NULL ? sa : "", -1);
        kb = g_utf8_collate_key_for_filename (sb != NULL ? sb : "", -1);
        result = strcmp (ka, kb);
        break;
      }
    case SORT_INT:
    case SORT_BOOL:
      {
        gint ia = 0, ib = 0;

        gtk_tree_model_get (model, a, def->sort_column, &ia, -1);
        gtk_tree_model_get (model, b, def->sort_column, &ib, -1);
        result = (ia > ib) - (ia < ib);
        break;
      }
    case SORT_INT64:
      {
        gint64 la = 0, lb = 0;

        gtk_tree_model_get (model, a, def->sort_column, &la, -1);
        gtk_tree_model_get (model, b, def->sort_column, &lb, -1);
        result = (la > lb) - (la < lb);
        break;
      }
    default:
      break;
    }

  if (result == 0 && def->sort_column != QM_COL_NAME)
    {
      g_autofree gchar *na = NULL, *nb = NULL;

      gtk_tree_model_get (model, a, QM_COL_NAME, &na, -1);
      gtk_tree_model_get (model, b, QM_COL_NAME, &nb, -1);
      result = g_strcmp0 (na, nb);
    }
  return result;
}

static void
on_sort_changed (GtkTreeSortable *sortable,
                 gpointer         user_data)
{
  gint id;
  GtkSortType order;

  if (!gtk_tree_sortable_get_sort_column_id (sortable, &id, &order)
      || id < 0 || (guint) id >= N_VIEW_COLUMNS)
    return;
  qm_prefs_set_string ("sort-column", column_defs[id].id);
  qm_prefs_set_boolean ("sort-descending", order == GTK_SORT_DESCENDING);
}

static void
on_search_changed (GtkSearchEntry *entry,
                   gpointer        user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  g_free (self->search_casefold);
  self->search_casefold = g_utf8_casefold (gtk_entry_get_text (GTK_ENTRY (entry)), -1);
  refilter (self);
}

/* ---- columns --------------------------------------------------------------------------- */

static void
save_hidden_columns (QmWindow *self)
{
  g_autoptr(GPtrArray) hidden = g_ptr_array_new ();
  guint i;

  for (i = 0; i < N_VIEW_COLUMNS; i++)
    if (!gtk_tree_view_column_get_visible (self->columns[i]))
      g_ptr_array_add (hidden, (gpointer) column_defs[i].id);
  g_ptr_array_add (hidden, NULL);
  qm_prefs_set_strv ("hidden-columns", (const gchar *const *) hidden->pdata);
}

static void
change_column_state (GSimpleAction *action,
                     GVariant      *state,
                     gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *name = g_action_get_name (G_ACTION (action));
  guint i;

  for (i = 0; i < N_VIEW_COLUMNS; i++)
    if (g_strcmp0 (name + strlen ("col-"), column_defs[i].id) == 0)
      {
        gtk_tree_view_column_set_visible (self->columns[i], g_variant_get_boolean (state));
        g_simple_action_set_state (action, state);
        save_hidden_columns (self);
        refilter (self);
        return;
      }
}

static GMenuModel *
build_columns_menu (void)
{
  GMenu *menu = g_menu_new ();
  guint i;

  for (i = 0; i < N_VIEW_COLUMNS; i++)
    {
      g_autofree gchar *action = g_strdup_printf ("win.col-%s", column_defs[i].id);

      g_menu_append (menu, _(column_defs[i].title), action);
    }
  return G_MENU_MODEL (menu);
}

static gboolean
on_header_button_press (GtkWidget      *button,
                        GdkEventButton *event,
                        gpointer        user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autoptr(GMenuModel) model = NULL;
  GtkWidget *menu;

  if (event->type != GDK_BUTTON_PRESS || event->button != GDK_BUTTON_SECONDARY)
    return GDK_EVENT_PROPAGATE;
  model = build_columns_menu ();
  menu = gtk_menu_new_from_model (model);
  gtk_menu_attach_to_widget (GTK_MENU (menu), GTK_WIDGET (self), NULL);
  gtk_menu_popup_at_pointer (GTK_MENU (menu), (GdkEvent *) event);
  return GDK_EVENT_STOP;
}

static void
on_backup_toggled (GtkCellRendererToggle *renderer,
                   gchar                 *path_string,
                   gpointer               user_data);

static GtkTreeViewColumn *
create_column (QmWindow        *self,
               const ColumnDef *def)
{
  GtkTreeViewColumn *column = gtk_tree_view_column_new ();
  GtkCellRenderer *renderer;

  gtk_tree_view_column_set_title (column, _(def->title));
  gtk_tree_view_column_set_resizable (column, TRUE);
  gtk_tree_view_column_set_reorderable (column, TRUE);

  if (g_str_equal (def->id, "label"))
    {
      renderer = gtk_cell_renderer_pixbuf_new ();
      gtk_tree_view_column_pack_start (column, renderer, FALSE);
      gtk_tree_view_column_add_attribute (column, renderer, "pixbuf", QM_COL_LABEL_PIXBUF);
    }
  else if (g_str_equal (def->id, "state"))
    {
      renderer = gtk_cell_renderer_pixbuf_new ();
      gtk_tree_view_column_pack_start (column, renderer, FALSE);
      gtk_tree_view_column_add_attribute (column, renderer, "icon-name", QM_COL_STATE_ICON);
      renderer = gtk_cell_renderer_pixbuf_new ();
      gtk_tree_view_column_pack_start (column, renderer, FALSE);
      gtk_tree_view_column_add_attribute (column, renderer, "icon-name", QM_COL_BADGE_ICON);
      renderer = gtk_cell_renderer_text_new ();
      gtk_tree_view_column_pack_start (column, renderer, TRUE);
      gtk_tree_view_column_add_attribute (column, renderer, "text", QM_COL_STATE_TEXT);
    }
  else if (def->sort_kind == SORT_BOOL)
    {
      renderer = gtk_cell_renderer_toggle_new ();
      gtk_tree_view_column_pack_start (column, renderer, FALSE);
      gtk_tree_view_column_add_attribute (column, renderer, "active", def->sort_column);
      gtk_tree_view_column_add_attribute (column, renderer, "visible", VIEW_COL_IS_QUBE);
      if (g_str_equal (def->id, "include-in-backups"))
        g_signal_connect (renderer, "toggled", G_CALLBACK (on_backup_toggled), self);
      else
        gtk_cell_renderer_toggle_set_activatable (GTK_CELL_RENDERER_TOGGLE (renderer), FALSE);
    }
  else
    {
      renderer = gtk_cell_renderer_text_new ();
      gtk_tree_view_column_pack_start (column, renderer, TRUE);
      gtk_tree_view_column_add_attribute (column, renderer, "text",
                                          def->shown_column > 0 ? def->shown_column
                                          : def->text_column >= 0 ? def->text_column
                                                                  : def->sort_column);
      if (def->shown_column > 0)
        gtk_cell_renderer_set_alignment (renderer, 1.0, 0.5);
      if (g_str_equal (def->id, "name"))
        g_object_set (renderer, "weight", PANGO_WEIGHT_BOLD, NULL);
    }
  return column;
}

static void
add_columns (QmWindow *self)
{
  g_auto(GStrv) hidden = qm_prefs_get_strv ("hidden-columns");
  g_autofree gchar *sort_id = qm_prefs_get_string ("sort-column");
  gint sort_index = 1;
  guint i;

  for (i = 0; i < N_VIEW_COLUMNS; i++)
    {
      const ColumnDef *def = &column_defs[i];
      gboolean visible = !g_strv_contains ((const gchar *const *) hidden, def->id);
      g_autofree gchar *action_name = g_strdup_printf ("col-%s", def->id);
      GSimpleAction *action;
      GtkWidget *button;

      self->columns[i] = create_column (self, def);
      gtk_tree_view_column_set_visible (self->columns[i], visible);
      gtk_tree_view_column_set_sort_column_id (self->columns[i], (gint) i);
      {
        SortContext *context = g_new0 (SortContext, 1);

        context->self = self;
        context->def = def;
        gtk_tree_sortable_set_sort_func (GTK_TREE_SORTABLE (self->sort_model), (gint) i,
                                         compare_rows, context, g_free);
      }
      gtk_tree_view_append_column (GTK_TREE_VIEW (self->tree_view), self->columns[i]);
      button = gtk_tree_view_column_get_button (self->columns[i]);
      if (button != NULL)
        g_signal_connect (button, "button-press-event", G_CALLBACK (on_header_button_press),
                          self);

      action = g_simple_action_new_stateful (action_name, NULL, g_variant_new_boolean (visible));
      g_signal_connect (action, "change-state", G_CALLBACK (change_column_state), self);
      g_action_map_add_action (G_ACTION_MAP (self), G_ACTION (action));
      g_object_unref (action);

      if (g_strcmp0 (sort_id, def->id) == 0)
        sort_index = (gint) i;
    }
  gtk_tree_sortable_set_sort_column_id (GTK_TREE_SORTABLE (self->sort_model), sort_index,
                                        qm_prefs_get_boolean ("sort-descending")
                                        ? GTK_SORT_DESCENDING : GTK_SORT_ASCENDING);
  g_signal_connect (self->sort_model, "sort-column-changed", G_CALLBACK (on_sort_changed), self);
}

/* ---- actions --------------------------------------------------------------------------- */

typedef struct
{
  QmWindow *self;
  gchar    *what;
} CallData;

static CallData *
call_data_new (QmWindow    *self,
               const gchar *what)
{
  CallData *data = g_new0 (CallData, 1);

  data->self = g_object_ref (self);
  data->what = g_strdup (what);
  return data;
}

static void
call_data_free (CallData *data)
{
  g_object_unref (data->self);
  g_free (data->what);
  g_free (data);
}

static void
simple_call_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  CallData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  if (reply == NULL && !g_cancellable_is_cancelled (data->self->cancellable))
    qm_error_show (GTK_WINDOW (data->self), data->what, error);
  call_data_free (data);
}

static void
on_backup_toggled (GtkCellRendererToggle *renderer,
                   gchar                 *path_string,
                   gpointer               user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autoptr(GtkTreePath) path = gtk_tree_path_new_from_string (path_string);
  g_autofree gchar *object_path = NULL;
  g_autofree gchar *name = NULL;
  g_autofree gchar *what = NULL;
  GtkTreeIter iter;
  gboolean active;

  if (!gtk_tree_model_get_iter (self->sort_model, &iter, path))
    return;
  gtk_tree_model_get (self->sort_model, &iter, QM_COL_PATH, &object_path, QM_COL_NAME, &name,
                      QM_COL_INCLUDE_IN_BACKUPS, &active, -1);
  if (object_path == NULL)
    return;
  what = g_strdup_printf (_("Cannot change whether backups include %s"), name);
  /* The row changes when qubesd announces the new value, not before. */
  qm_client_call (self->client, object_path, "org.qubes_os.Admin1.Domain", "SetProperty",
                  g_variant_new ("(ss)", "include_in_backups", active ? "False" : "True"),
                  self->cancellable, simple_call_done, call_data_new (self, what));
}

static void
create_activated (GSimpleAction *action,
                  GVariant      *parameter,
                  gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  gtk_widget_show (GTK_WIDGET (qm_create_dialog_new (GTK_WINDOW (self), self->client)));
}

static void
on_settings_destroy (GtkWidget *window,
                     gpointer   user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *path = g_object_get_data (G_OBJECT (window), "qm-path");

  if (self->settings_windows != NULL && path != NULL
      && g_hash_table_lookup (self->settings_windows, path) == window)
    g_hash_table_remove (self->settings_windows, path);
}

static void
open_settings (QmWindow    *self,
               const gchar *path)
{
  QmSettingsWindow *window = g_hash_table_lookup (self->settings_windows, path);

  if (window == NULL)
    {
      window = qm_settings_window_new (GTK_WINDOW (self), self->client, path);
      if (window == NULL)
        return;
      g_hash_table_insert (self->settings_windows, g_strdup (path), window);
      g_object_set_data_full (G_OBJECT (window), "qm-path", g_strdup (path), g_free);
      g_signal_connect_object (window, "destroy", G_CALLBACK (on_settings_destroy), self, 0);
    }
  gtk_window_present (GTK_WINDOW (window));
}

static void
settings_activated (GSimpleAction *action,
                    GVariant      *parameter,
                    gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autofree gchar *path = selected_path (self);

  if (path != NULL)
    open_settings (self, path);
}

static void
on_remove_entry_changed (GtkEntry *entry,
                         gpointer  user_data)
{
  GtkDialog *dialog = GTK_DIALOG (user_data);
  const gchar *name = g_object_get_data (G_OBJECT (dialog), "qm-name");

  gtk_dialog_set_response_sensitive (dialog, GTK_RESPONSE_ACCEPT,
                                     g_strcmp0 (gtk_entry_get_text (entry), name) == 0);
}

static void
on_remove_response (GtkDialog *dialog,
                    gint       response,
                    gpointer   user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *name = g_object_get_data (G_OBJECT (dialog), "qm-name");
  const gchar *path = g_object_get_data (G_OBJECT (dialog), "qm-path");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autofree gchar *what = g_strdup_printf (_("Cannot remove %s"), name);

      qm_client_call (self->client, path, "org.qubes_os.Admin1.Domain", "Remove", NULL,
                      self->cancellable, simple_call_done, call_data_new (self, what));
    }
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

/* The D-Bus property's value of a qube reference (a path), as a name; NULL for none. */
static const gchar *
proxy_reference (QmWindow    *self,
                 QmObject    *object,
                 const gchar *property)
{
  g_autofree gchar *dbus_name = qm_property_dbus_name (property);
  const gchar *path;

  if (g_str_equal (property, "template"))
    path = qm_object_has_interface (object, "AppVM")
           ? qm_object_get_string (object, "AppVM", "Template")
           : qm_object_get_string (object, "DispVM", "Template");
  else
    path = qm_object_get_string (object, "QubesVM", dbus_name);
  return qm_client_domain_name (self->client, path);
}

/* What uses the qube, from the client's model: one line per qube (its properties that name it,
 * explicitly or through their default) and per global default. Empty when nothing does. */
static GPtrArray *
dependants (QmWindow    *self,
            const gchar *target_path,
            const gchar *target)
{
  static const gchar *const properties[] = { "netvm", "template", "default_dispvm",
                                             "management_dispvm", "guivm", "audiovm" };
  GPtrArray *lines = g_ptr_array_new_with_free_func (g_free);
  GList *domains = qm_client_get_domains (self->client), *l;
  QmObject *manager = qm_client_get_manager (self->client);
  guint i;

  for (l = domains; l != NULL; l = l->next)
    {
      const gchar *path = qm_object_get_path (l->data);
      const gchar *name = qm_object_get_string (l->data, "Domain", "Name");
      g_autoptr(GString) uses = g_string_new (NULL);

      if (g_strcmp0 (path, target_path) == 0)
        continue;
      for (i = 0; i < G_N_ELEMENTS (properties); i++)
        {
          gboolean is_default = FALSE;
          const gchar *value = NULL;

          if (!qm_client_get_property_info (self->client, path, properties[i], &is_default,
                                            &value))
            value = proxy_reference (self, l->data, properties[i]);
          if (g_strcmp0 (value, target) != 0)
            continue;
          if (uses->len > 0)
            g_string_append (uses, ", ");
          if (is_default)
            /* TRANSLATORS: a property of a qube that names another through its default */
            g_string_append_printf (uses, _("%s (by default)"), properties[i]);
          else
            g_string_append (uses, properties[i]);
        }
      if (uses->len > 0)
        g_ptr_array_add (lines, g_strdup_printf ("%s: %s", name, uses->str));
    }
  g_list_free_full (domains, g_object_unref);

  if (manager != NULL)
    {
      static const gchar *const globals[] = {
        "default_netvm", "default_template", "default_dispvm", "management_dispvm",
        "default_guivm", "default_audiovm", "clockvm", "updatevm",
      };

      for (i = 0; i < G_N_ELEMENTS (globals); i++)
        {
          g_autofree gchar *dbus_name = qm_property_dbus_name (globals[i]);

          if (g_strcmp0 (qm_object_get_string (manager, "Manager", dbus_name), target_path) == 0)
            /* TRANSLATORS: %s is a global property such as default_netvm */
            g_ptr_array_add (lines, g_strdup_printf (_("global setting %s"), globals[i]));
        }
    }
  return lines;
}

static void
remove_activated (GSimpleAction *action,
                  GVariant      *parameter,
                  gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autoptr(GPtrArray) selection = selected_qubes (self);
  g_autoptr(GPtrArray) users = NULL;
  const gchar *path, *name;
  GtkWidget *dialog, *entry, *area;

  if (selection->len != 1)
    return;
  path = ((Selected *) selection->pdata[0])->path;
  name = ((Selected *) selection->pdata[0])->name;

  /* A qube in use cannot go: say by what before asking anything. */
  users = dependants (self, path, name);
  if (users->len > 0)
    {
      g_autoptr(GString) list = g_string_new (NULL);
      guint i;

      for (i = 0; i < users->len; i++)
        g_string_append_printf (list, "\u2022 %s\n", (const gchar *) users->pdata[i]);
      dialog = gtk_message_dialog_new (GTK_WINDOW (self),
                                       GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                       GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE,
                                       _("%s cannot be removed: it is in use"), name);
      gtk_message_dialog_format_secondary_text (
        GTK_MESSAGE_DIALOG (dialog), "%s\n\n%s",
        ngettext ("This uses it; change it first:", "These use it; change them first:",
                  users->len),
        list->str);
      g_signal_connect (dialog, "response", G_CALLBACK (gtk_widget_destroy), NULL);
      gtk_widget_show (dialog);
      return;
    }

  dialog = gtk_message_dialog_new (GTK_WINDOW (self),
                                   GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                   GTK_MESSAGE_WARNING, GTK_BUTTONS_NONE,
                                   _("Remove the qube %s?"), name);
  gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog),
                                            _("Its configuration and all its files are deleted. "
                                              "This cannot be undone. Type the qube's name to "
                                              "confirm."));
  gtk_dialog_add_buttons (GTK_DIALOG (dialog), _("_Cancel"), GTK_RESPONSE_CANCEL,
                          _("_Remove"), GTK_RESPONSE_ACCEPT, NULL);
  gtk_style_context_add_class (
    gtk_widget_get_style_context (gtk_dialog_get_widget_for_response (GTK_DIALOG (dialog),
                                                                      GTK_RESPONSE_ACCEPT)),
    "destructive-action");
  gtk_dialog_set_response_sensitive (GTK_DIALOG (dialog), GTK_RESPONSE_ACCEPT, FALSE);
  g_object_set_data_full (G_OBJECT (dialog), "qm-name", g_strdup (name), g_free);
  g_object_set_data_full (G_OBJECT (dialog), "qm-path", g_strdup (path), g_free);

  entry = gtk_entry_new ();
  gtk_entry_set_placeholder_text (GTK_ENTRY (entry), name);
  atk_object_set_name (gtk_widget_get_accessible (entry), _("Name of the qube to remove"));
  area = gtk_message_dialog_get_message_area (GTK_MESSAGE_DIALOG (dialog));
  gtk_container_add (GTK_CONTAINER (area), entry);
  gtk_widget_show (entry);
  g_signal_connect (entry, "changed", G_CALLBACK (on_remove_entry_changed), dialog);
  g_signal_connect (dialog, "response", G_CALLBACK (on_remove_response), self);
  gtk_widget_show (dialog);
}

static void
clone_activated (GSimpleAction *action,
                 GVariant      *parameter,
                 gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autofree gchar *path = selected_path (self);
  QmCloneDialog *dialog;

  if (path == NULL)
    return;
  dialog = qm_clone_dialog_new (GTK_WINDOW (self), self->client, path);
  if (dialog != NULL)
    gtk_widget_show (GTK_WIDGET (dialog));
}

static void
lifecycle_call (QmWindow    *self,
                const gchar *path,
                const gchar *qube,
                const gchar *method)
{
  g_autofree gchar *what = g_strdup_printf (_("Cannot change the state of %s"), qube);
  GVariant *parameters = NULL;

  /* Shutdown does not wait: the State column follows PowerState as the qube goes down. */
  if (g_str_equal (method, "Shutdown"))
    parameters = g_variant_new ("(bb)", FALSE, FALSE);
  qm_client_call (self->client, path, "org.qubes_os.Admin1.Domain", method, parameters,
                  self->cancellable, simple_call_done, call_data_new (self, what));
}

typedef struct
{
  QmWindow *self;
  guint     subscription;
} JobWatch;

static void
job_watch_free (gpointer data)
{
  JobWatch *watch = data;

  g_object_unref (watch->self);
  g_free (watch);
}

static void
on_job_finished (GDBusConnection *connection,
                 const gchar     *sender_name,
                 const gchar     *object_path,
                 const gchar     *interface_name,
                 const gchar     *signal_name,
                 GVariant        *parameters,
                 gpointer         user_data)
{
  JobWatch *watch = user_data;
  QmWindow *self = watch->self;
  g_autoptr(GVariantIter) failures = NULL;
  g_autoptr(GString) text = g_string_new (NULL);
  const gchar *state, *qube, *error_name, *message;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa(sss))")))
    return;
  g_variant_get (parameters, "(&sa(sss))", &state, &failures);
  while (g_variant_iter_next (failures, "(&s&s&s)", &qube, &error_name, &message))
    g_string_append_printf (text, "%s%s: %s", text->len > 0 ? "\n" : "", qube, message);
  if (text->len > 0 && !g_cancellable_is_cancelled (self->cancellable))
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, text->str);

      qm_error_show (GTK_WINDOW (self), _("Some qubes did not shut down"), error);
    }
  g_dbus_connection_signal_unsubscribe (connection, watch->subscription);
}

static void
shutdown_qubes_done (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  CallData *data = user_data;
  QmWindow *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const gchar *job;
  JobWatch *watch;

  reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  if (reply == NULL)
    {
      if (!g_cancellable_is_cancelled (self->cancellable))
        qm_error_show (GTK_WINDOW (self), data->what, error);
      call_data_free (data);
      return;
    }
  /* The job replies at once; what failed comes with its Finished signal. */
  g_variant_get (reply, "(&o)", &job);
  watch = g_new0 (JobWatch, 1);
  watch->self = g_object_ref (self);
  watch->subscription = g_dbus_connection_signal_subscribe (
    qm_client_get_connection (self->client), QM_BUS_NAME, "org.qubes_os.Admin1.Job", "Finished",
    job, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_job_finished, watch, job_watch_free);
  call_data_free (data);
}

/* Running qubes that use one of names as their netvm, directly or through others. */
static GPtrArray *
network_clients (QmWindow   *self,
                 GHashTable *names)
{
  GPtrArray *clients = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) taken = g_hash_table_new (g_str_hash, g_str_equal);
  GList *domains = qm_client_get_domains (self->client), *l;
  gboolean grew = TRUE;

  while (grew)
    {
      grew = FALSE;
      for (l = domains; l != NULL; l = l->next)
        {
          const gchar *path = qm_object_get_path (l->data);
          const gchar *name = qm_object_get_string (l->data, "Domain", "Name");
          const gchar *netvm = NULL;

          if (!qm_object_has_interface (l->data, "QubesVM") || name == NULL
              || g_hash_table_contains (names, name) || g_hash_table_contains (taken, name)
              || g_strcmp0 (qm_object_get_string (l->data, "Domain", "PowerState"),
                            "Halted") == 0)
            continue;
          /* The effective netvm (a default one too), as GetAllProperties says it. */
          if (!qm_client_get_property_info (self->client, path, "netvm", NULL, &netvm))
            netvm = qm_client_domain_name (self->client,
                                           qm_object_get_string (l->data, "QubesVM", "Netvm"));
          if (netvm == NULL
              || (!g_hash_table_contains (names, netvm) && !g_hash_table_contains (taken, netvm)))
            continue;
          g_hash_table_add (taken, (gpointer) name);
          g_ptr_array_add (clients, g_strdup (name));
          grew = TRUE;
        }
    }
  g_list_free_full (domains, g_object_unref);
  return clients;
}

typedef struct
{
  gchar     *action;
  gboolean   paused;   /* pause means unpause: a selected qube is paused */
  GPtrArray *targets;  /* Selected */
  GPtrArray *clients;  /* names, shutdown only */
  GtkWidget *also_clients;
} Confirmation;

static void
confirmation_free (gpointer data)
{
  Confirmation *confirmation = data;

  g_free (confirmation->action);
  g_ptr_array_unref (confirmation->targets);
  g_clear_pointer (&confirmation->clients, g_ptr_array_unref);
  g_free (confirmation);
}

static void
run_lifecycle (QmWindow     *self,
               Confirmation *confirmation)
{
  GPtrArray *targets = confirmation->targets;
  GtkWidget *also_clients = confirmation->also_clients;
  gboolean with_clients = also_clients != NULL
                          && gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (also_clients));
  guint i;

  /* Several qubes go down as one job, which takes clients down before their netvm. */
  if (g_str_equal (confirmation->action, "shutdown") && (targets->len > 1 || with_clients))
    {
      g_autoptr(GPtrArray) names = g_ptr_array_new ();

      if (with_clients)
        for (i = 0; i < confirmation->clients->len; i++)
          g_ptr_array_add (names, confirmation->clients->pdata[i]);
      for (i = 0; i < targets->len; i++)
        g_ptr_array_add (names, ((Selected *) targets->pdata[i])->name);
      g_ptr_array_add (names, NULL);
      qm_client_call (self->client, QM_ROOT_PATH, "org.qubes_os.Admin1.Manager", "ShutdownQubes",
                      g_variant_new ("(^asb)", (gchar **) names->pdata, FALSE),
                      self->cancellable, shutdown_qubes_done,
                      call_data_new (self, _("Cannot shut the qubes down")));
      return;
    }
  for (i = 0; i < targets->len; i++)
    {
      Selected *sel = targets->pdata[i];

      lifecycle_call (self, sel->path, sel->name,
                      lifecycle_method (confirmation->action, sel, confirmation->paused));
    }
}

static void
on_confirmation_response (GtkDialog *dialog,
                          gint       response,
                          gpointer   user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  Confirmation *confirmation = g_object_get_data (G_OBJECT (dialog), "qm-confirmation");

  if (response == GTK_RESPONSE_ACCEPT)
    run_lifecycle (self, confirmation);
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

static gchar *
join_names (GPtrArray *items,
            gboolean   selected)
{
  g_autoptr(GString) text = g_string_new (NULL);
  guint i;

  for (i = 0; i < items->len; i++)
    {
      if (i > 0)
        g_string_append (text, ", ");
      g_string_append (text, selected ? ((Selected *) items->pdata[i])->name
                                      : (const gchar *) items->pdata[i]);
    }
  return g_strdup (text->str);
}

static void
confirm_lifecycle (QmWindow     *self,
                   Confirmation *confirmation)
{
  guint n = confirmation->targets->len;
  const gchar *first = ((Selected *) confirmation->targets->pdata[0])->name;
  g_autofree gchar *names = join_names (confirmation->targets, TRUE);
  g_autofree gchar *primary = NULL;
  const gchar *secondary, *button;
  GtkWidget *dialog;

  if (g_str_equal (confirmation->action, "kill"))
    {
      primary = n == 1 ? g_strdup_printf (_("Kill %s?"), first)
                       : g_strdup_printf (ngettext ("Kill %u qube?", "Kill %u qubes?", n), n);
      secondary = _("The qube stops at once, as if its power were cut: unsaved work in it is "
                    "lost.");
      button = _("_Kill");
    }
  else if (g_str_equal (confirmation->action, "restart"))
    {
      primary = n == 1 ? g_strdup_printf (_("Restart %s?"), first)
                       : g_strdup_printf (ngettext ("Restart %u qube?", "Restart %u qubes?", n), n);
      secondary = _("The qube shuts down and starts again; its programs are closed.");
      button = _("Res_tart");
    }
  else
    {
      primary = n == 1 ? g_strdup_printf (_("Shut down %s?"), first)
                       : g_strdup_printf (ngettext ("Shut down %u qube?", "Shut down %u qubes?", n),
                                          n);
      secondary = _("Its programs are asked to close.");
      button = _("Shut _Down");
    }

  dialog = gtk_message_dialog_new (GTK_WINDOW (self),
                                   GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                   GTK_MESSAGE_QUESTION, GTK_BUTTONS_NONE, "%s", primary);
  if (n > 1)
    gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s\n\n%s", names,
                                              secondary);
  else
    gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s", secondary);
  gtk_dialog_add_buttons (GTK_DIALOG (dialog), _("_Cancel"), GTK_RESPONSE_CANCEL, button,
                          GTK_RESPONSE_ACCEPT, NULL);
  gtk_dialog_set_default_response (GTK_DIALOG (dialog), GTK_RESPONSE_ACCEPT);
  if (g_str_equal (confirmation->action, "kill"))
    gtk_style_context_add_class (
      gtk_widget_get_style_context (gtk_dialog_get_widget_for_response (GTK_DIALOG (dialog),
                                                                        GTK_RESPONSE_ACCEPT)),
      "destructive-action");

  if (confirmation->clients != NULL && confirmation->clients->len > 0)
    {
      g_autofree gchar *clients = join_names (confirmation->clients, FALSE);
      g_autofree gchar *label = g_strdup_printf (
        ngettext ("Shut down first the %u running qube that uses it as network provider: %s",
                  "Shut down first the %u running qubes that use it as network provider: %s",
                  confirmation->clients->len),
        confirmation->clients->len, clients);
      GtkWidget *area = gtk_message_dialog_get_message_area (GTK_MESSAGE_DIALOG (dialog));

      /* Without them the shutdown fails: a netvm with running clients refuses to go. */
      confirmation->also_clients = gtk_check_button_new_with_label (label);
      gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (confirmation->also_clients), TRUE);
      gtk_widget_set_halign (confirmation->also_clients, GTK_ALIGN_START);
      gtk_label_set_line_wrap (GTK_LABEL (gtk_bin_get_child (GTK_BIN (confirmation->also_clients))),
                               TRUE);
      gtk_container_add (GTK_CONTAINER (area), confirmation->also_clients);
      gtk_widget_show (confirmation->also_clients);
    }

  g_object_set_data_full (G_OBJECT (dialog), "qm-confirmation", confirmation, confirmation_free);
  g_signal_connect (dialog, "response", G_CALLBACK (on_confirmation_response), self);
  gtk_widget_show (dialog);
}

static void
lifecycle_activated (GSimpleAction *action,
                     GVariant      *parameter,
                     gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *name = g_action_get_name (G_ACTION (action));
  g_autoptr(GPtrArray) selection = selected_qubes (self);
  gboolean paused = any_paused (selection);
  Confirmation *confirmation;
  guint i;

  confirmation = g_new0 (Confirmation, 1);
  confirmation->action = g_strdup (name);
  confirmation->paused = paused;
  confirmation->targets = g_ptr_array_new_with_free_func (selected_free);
  for (i = 0; i < selection->len; i++)
    if (lifecycle_method (name, selection->pdata[i], paused) != NULL)
      g_ptr_array_add (confirmation->targets, g_ptr_array_steal_index (selection, i--));
  if (confirmation->targets->len == 0)
    {
      confirmation_free (confirmation);
      return;
    }

  if (g_str_equal (name, "start") || g_str_equal (name, "pause"))
    {
      run_lifecycle (self, confirmation);
      confirmation_free (confirmation);
      return;
    }
  if (g_str_equal (name, "shutdown"))
    {
      g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

      for (i = 0; i < confirmation->targets->len; i++)
        g_hash_table_add (names, ((Selected *) confirmation->targets->pdata[i])->name);
      confirmation->clients = network_clients (self, names);
    }
  confirm_lifecycle (self, confirmation);
}

static void
find_activated (GSimpleAction *action,
                GVariant      *parameter,
                gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  gtk_widget_grab_focus (self->search_entry);
}

static void
change_show_internal (GSimpleAction *action,
                      GVariant      *state,
                      gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  self->show_internal = g_variant_get_boolean (state);
  g_simple_action_set_state (action, state);
  qm_prefs_set_boolean ("show-internal", self->show_internal);
  refilter (self);
}

static void
change_filter (GSimpleAction *action,
               GVariant      *state,
               gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *filter = g_variant_get_string (state, NULL);

  if (g_strcmp0 (self->filter, filter) == 0)
    return;
  g_free (self->filter);
  self->filter = g_strdup (filter);
  g_simple_action_set_state (action, state);
  qm_prefs_set_string ("filter", filter);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->filter_combo), filter);
  refilter (self);
}

static void
on_filter_combo_changed (GtkComboBox *combo,
                         gpointer     user_data)
{
  const gchar *id = gtk_combo_box_get_active_id (combo);

  if (id != NULL)
    g_action_group_change_action_state (G_ACTION_GROUP (user_data), "filter",
                                        g_variant_new_string (id));
}

/* ---- the tree view's own events -------------------------------------------------------- */

static GMenuModel *
build_context_menu (void)
{
  GMenu *menu = g_menu_new ();
  GMenu *section = g_menu_new ();
  guint i;

  g_menu_append (section, _("_Settings"), "win.settings");
  g_menu_append (section, _("_Clone\u2026"), "win.clone");
  g_menu_append (section, _("_Remove\u2026"), "win.remove");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (section));
  g_object_unref (section);
  section = g_menu_new ();
  for (i = 0; i < G_N_ELEMENTS (lifecycle_defs); i++)
    {
      g_autofree gchar *action = g_strdup_printf ("win.%s", lifecycle_defs[i].action);

      g_menu_append (section, _(lifecycle_defs[i].label), action);
    }
  g_menu_append_section (menu, NULL, G_MENU_MODEL (section));
  g_object_unref (section);
  return G_MENU_MODEL (menu);
}

static void
popup_context_menu (QmWindow       *self,
                    GdkEventButton *event)
{
  g_autoptr(GMenuModel) model = build_context_menu ();
  GtkWidget *menu = gtk_menu_new_from_model (model);

  gtk_menu_attach_to_widget (GTK_MENU (menu), GTK_WIDGET (self), NULL);
  if (event != NULL)
    gtk_menu_popup_at_pointer (GTK_MENU (menu), (GdkEvent *) event);
  else
    gtk_menu_popup_at_widget (GTK_MENU (menu), self->tree_view, GDK_GRAVITY_CENTER,
                              GDK_GRAVITY_NORTH_WEST, NULL);
}

static gboolean
on_tree_button_press (GtkWidget      *widget,
                      GdkEventButton *event,
                      gpointer        user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autoptr(GtkTreePath) path = NULL;

  if (event->type != GDK_BUTTON_PRESS || event->button != GDK_BUTTON_SECONDARY)
    return GDK_EVENT_PROPAGATE;
  if (gtk_tree_view_get_path_at_pos (GTK_TREE_VIEW (widget), (gint) event->x, (gint) event->y,
                                     &path, NULL, NULL, NULL))
    {
      GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (widget));

      /* A click inside the selection acts on all of it; elsewhere on the row clicked. */
      if (!gtk_tree_selection_path_is_selected (selection, path))
        {
          gtk_tree_selection_unselect_all (selection);
          gtk_tree_selection_select_path (selection, path);
        }
    }
  popup_context_menu (self, event);
  return GDK_EVENT_STOP;
}

static gboolean
on_tree_popup_menu (GtkWidget *widget,
                    gpointer   user_data)
{
  popup_context_menu (QM_WINDOW (user_data), NULL);
  return TRUE;
}

static gboolean
on_tree_key_press (GtkWidget   *widget,
                   GdkEventKey *event,
                   gpointer     user_data)
{
  /* Delete is bound here, not as a window accelerator, so that it keeps deleting text in the
   * search entry. */
  if (event->keyval == GDK_KEY_Delete
      && (event->state & gtk_accelerator_get_default_mod_mask ()) == 0)
    {
      g_action_group_activate_action (G_ACTION_GROUP (user_data), "remove", NULL);
      return GDK_EVENT_STOP;
    }
  return GDK_EVENT_PROPAGATE;
}

static void
on_row_activated (GtkTreeView       *view,
                  GtkTreePath       *path,
                  GtkTreeViewColumn *column,
                  gpointer           user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autofree gchar *object_path = NULL;
  GtkTreeIter iter;

  if (!gtk_tree_model_get_iter (self->sort_model, &iter, path))
    return;
  gtk_tree_model_get (self->sort_model, &iter, QM_COL_PATH, &object_path, -1);
  if (object_path == NULL)
    {
      /* a header: folds and unfolds */
      if (gtk_tree_view_row_expanded (view, path))
        gtk_tree_view_collapse_row (view, path);
      else
        gtk_tree_view_expand_row (view, path, FALSE);
      return;
    }
  open_settings (self, object_path);
}

static void
on_selection_changed (GtkTreeSelection *selection,
                      gpointer          user_data)
{
  update_actions (QM_WINDOW (user_data));
}

/* ---- construction ---------------------------------------------------------------------- */

GMenuModel *
qm_window_build_menubar (void)
{
  GMenu *bar = g_menu_new ();
  GMenu *menu, *section, *submenu;
  g_autoptr(GMenuModel) columns = build_columns_menu ();
  g_autoptr(GMenuModel) context = build_context_menu ();
  guint i;

  menu = g_menu_new ();
  section = g_menu_new ();
  g_menu_append (section, _("_New Qube\u2026"), "win.create");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (section));
  g_object_unref (section);
  g_menu_append_section (menu, NULL, context);
  section = g_menu_new ();
  g_menu_append (section, _("_Quit"), "app.quit");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (section));
  g_object_unref (section);
  g_menu_append_submenu (bar, _("_Qube"), G_MENU_MODEL (menu));
  g_object_unref (menu);

  menu = g_menu_new ();
  section = g_menu_new ();
  g_menu_append (section, _("_Find"), "win.find");
  g_menu_append (section, _("Show _Internal Qubes"), "win.show-internal");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (section));
  g_object_unref (section);
  submenu = g_menu_new ();
  for (i = 0; i < G_N_ELEMENTS (filter_defs); i++)
    {
      g_autoptr(GMenuItem) item = g_menu_item_new (_(filter_defs[i].title), NULL);

      g_menu_item_set_action_and_target (item, "win.filter", "s", filter_defs[i].id);
      g_menu_append_item (submenu, item);
    }
  g_menu_append_submenu (menu, _("_Show"), G_MENU_MODEL (submenu));
  g_object_unref (submenu);
  submenu = g_menu_new ();
  for (i = 0; i < G_N_ELEMENTS (group_defs); i++)
    {
      g_autoptr(GMenuItem) item = g_menu_item_new (_(group_defs[i].title), NULL);

      g_menu_item_set_action_and_target (item, "win.group-by", "s", group_defs[i].id);
      g_menu_append_item (submenu, item);
    }
  g_menu_append_submenu (menu, _("_Group by"), G_MENU_MODEL (submenu));
  g_object_unref (submenu);
  g_menu_append_submenu (menu, _("_Columns"), columns);
  g_menu_append_submenu (bar, _("_View"), G_MENU_MODEL (menu));
  g_object_unref (menu);

  return G_MENU_MODEL (bar);
}

static GtkWidget *
tool_button (const gchar *icon,
             const gchar *label,
             const gchar *action,
             const gchar *tooltip)
{
  GtkToolItem *item = gtk_tool_button_new (NULL, label);

  gtk_tool_button_set_icon_name (GTK_TOOL_BUTTON (item), icon);
  gtk_tool_button_set_use_underline (GTK_TOOL_BUTTON (item), TRUE);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (item), action);
  gtk_tool_item_set_is_important (item, TRUE);
  if (tooltip != NULL)
    gtk_widget_set_tooltip_text (GTK_WIDGET (item), tooltip);
  return GTK_WIDGET (item);
}

static GtkWidget *
build_message_page (QmWindow *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  GtkWidget *image = gtk_image_new_from_icon_name ("network-offline-symbolic", GTK_ICON_SIZE_DIALOG);

  gtk_image_set_pixel_size (GTK_IMAGE (image), 96);
  gtk_widget_set_valign (box, GTK_ALIGN_CENTER);
  gtk_widget_set_halign (box, GTK_ALIGN_CENTER);
  gtk_style_context_add_class (gtk_widget_get_style_context (image), "dim-label");
  self->message_title = gtk_label_new (NULL);
  gtk_style_context_add_class (gtk_widget_get_style_context (self->message_title), "title");
  {
    PangoAttrList *attrs = pango_attr_list_new ();

    pango_attr_list_insert (attrs, pango_attr_weight_new (PANGO_WEIGHT_BOLD));
    pango_attr_list_insert (attrs, pango_attr_scale_new (1.4));
    gtk_label_set_attributes (GTK_LABEL (self->message_title), attrs);
    pango_attr_list_unref (attrs);
  }
  self->message_body = gtk_label_new (NULL);
  gtk_label_set_line_wrap (GTK_LABEL (self->message_body), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (self->message_body), 60);
  gtk_label_set_justify (GTK_LABEL (self->message_body), GTK_JUSTIFY_CENTER);
  gtk_container_add (GTK_CONTAINER (box), image);
  gtk_container_add (GTK_CONTAINER (box), self->message_title);
  gtk_container_add (GTK_CONTAINER (box), self->message_body);
  return box;
}

static void
build_ui (QmWindow *self)
{
  GtkWidget *vbox, *toolbar, *find_bar, *scrolled, *label, *check;
  GtkToolItem *separator;
  guint i;

  vbox = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_container_add (GTK_CONTAINER (self), vbox);

  toolbar = gtk_toolbar_new ();
  gtk_toolbar_set_style (GTK_TOOLBAR (toolbar), GTK_TOOLBAR_BOTH_HORIZ);
  gtk_style_context_add_class (gtk_widget_get_style_context (toolbar),
                               GTK_STYLE_CLASS_PRIMARY_TOOLBAR);
  gtk_container_add (GTK_CONTAINER (toolbar),
                     tool_button ("list-add", _("_New"), "win.create",
                                  _("Create a new qube (Ctrl+N)")));
  gtk_container_add (GTK_CONTAINER (toolbar),
                     tool_button ("document-properties", _("S_ettings"), "win.settings",
                                  _("Settings of the selected qube (Enter)")));
  gtk_container_add (GTK_CONTAINER (toolbar),
                     tool_button ("edit-copy", _("C_lone"), "win.clone",
                                  _("Clone the selected qube (Ctrl+Shift+C)")));
  gtk_container_add (GTK_CONTAINER (toolbar),
                     tool_button ("list-remove", _("_Remove"), "win.remove",
                                  _("Remove the selected qube (Delete)")));
  separator = gtk_separator_tool_item_new ();
  gtk_container_add (GTK_CONTAINER (toolbar), GTK_WIDGET (separator));
  for (i = 0; i < G_N_ELEMENTS (lifecycle_defs); i++)
    {
      g_autofree gchar *action = g_strdup_printf ("win.%s", lifecycle_defs[i].action);

      self->lifecycle_buttons[i] = tool_button (lifecycle_defs[i].icon, _(lifecycle_defs[i].label),
                                                action, NULL);
      gtk_container_add (GTK_CONTAINER (toolbar), self->lifecycle_buttons[i]);
    }
  gtk_container_add (GTK_CONTAINER (vbox), toolbar);

  find_bar = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  g_object_set (find_bar, "margin", 6, NULL);
  self->search_entry = gtk_search_entry_new ();
  gtk_entry_set_placeholder_text (GTK_ENTRY (self->search_entry),
                                  _("Search in the visible columns"));
  atk_object_set_name (gtk_widget_get_accessible (self->search_entry), _("Search"));
  gtk_entry_set_width_chars (GTK_ENTRY (self->search_entry), 30);
  g_signal_connect (self->search_entry, "search-changed", G_CALLBACK (on_search_changed), self);
  gtk_box_pack_start (GTK_BOX (find_bar), self->search_entry, FALSE, FALSE, 0);

  label = gtk_label_new_with_mnemonic (_("Sho_w:"));
  gtk_box_pack_start (GTK_BOX (find_bar), label, FALSE, FALSE, 6);
  self->filter_combo = gtk_combo_box_text_new ();
  for (i = 0; i < G_N_ELEMENTS (filter_defs); i++)
    gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->filter_combo), filter_defs[i].id,
                               _(filter_defs[i].title));
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), self->filter_combo);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->filter_combo), self->filter);
  if (gtk_combo_box_get_active (GTK_COMBO_BOX (self->filter_combo)) < 0)
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->filter_combo), "all");
  g_signal_connect (self->filter_combo, "changed", G_CALLBACK (on_filter_combo_changed), self);
  gtk_box_pack_start (GTK_BOX (find_bar), self->filter_combo, FALSE, FALSE, 0);

  label = gtk_label_new_with_mnemonic (_("_Group by:"));
  gtk_box_pack_start (GTK_BOX (find_bar), label, FALSE, FALSE, 6);
  self->group_combo = gtk_combo_box_text_new ();
  for (i = 0; i < G_N_ELEMENTS (group_defs); i++)
    gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->group_combo), group_defs[i].id,
                               _(group_defs[i].title));
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), self->group_combo);
  atk_object_set_name (gtk_widget_get_accessible (self->group_combo), _("Group by"));
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->group_combo), self->group_by);
  g_signal_connect (self->group_combo, "changed", G_CALLBACK (on_group_combo_changed), self);
  gtk_box_pack_start (GTK_BOX (find_bar), self->group_combo, FALSE, FALSE, 0);

  check = gtk_check_button_new_with_mnemonic (_("Show _internal qubes"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (check), "win.show-internal");
  gtk_box_pack_start (GTK_BOX (find_bar), check, FALSE, FALSE, 6);

  self->status_label = gtk_label_new (NULL);
  gtk_style_context_add_class (gtk_widget_get_style_context (self->status_label), "dim-label");
  gtk_box_pack_end (GTK_BOX (find_bar), self->status_label, FALSE, FALSE, 6);
  gtk_container_add (GTK_CONTAINER (vbox), find_bar);

  self->stack = gtk_stack_new ();
  gtk_widget_set_vexpand (self->stack, TRUE);
  scrolled = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_shadow_type (GTK_SCROLLED_WINDOW (scrolled), GTK_SHADOW_IN);
  self->tree_view = gtk_tree_view_new_with_model (self->sort_model);
  atk_object_set_name (gtk_widget_get_accessible (self->tree_view), _("Qubes"));
  gtk_tree_view_set_search_column (GTK_TREE_VIEW (self->tree_view), QM_COL_NAME);
  gtk_tree_view_set_enable_search (GTK_TREE_VIEW (self->tree_view), FALSE);
  gtk_tree_view_set_grid_lines (GTK_TREE_VIEW (self->tree_view), GTK_TREE_VIEW_GRID_LINES_VERTICAL);
  gtk_tree_selection_set_mode (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->tree_view)),
                               GTK_SELECTION_MULTIPLE);
  gtk_container_add (GTK_CONTAINER (scrolled), self->tree_view);
  gtk_stack_add_named (GTK_STACK (self->stack), scrolled, "list");
  gtk_stack_add_named (GTK_STACK (self->stack), build_message_page (self), "message");
  gtk_container_add (GTK_CONTAINER (vbox), self->stack);

  add_columns (self);
  gtk_tree_view_set_expander_column (GTK_TREE_VIEW (self->tree_view), self->columns[1]);
  gtk_tree_view_set_show_expanders (GTK_TREE_VIEW (self->tree_view),
                                    g_strcmp0 (self->group_by, "none") != 0);
  gtk_tree_selection_set_select_function (
    gtk_tree_view_get_selection (GTK_TREE_VIEW (self->tree_view)), select_qubes_only, NULL, NULL);
  g_signal_connect (self->tree_view, "row-expanded", G_CALLBACK (on_row_folded), self);
  g_signal_connect (self->tree_view, "row-collapsed", G_CALLBACK (on_row_folded), self);

  g_signal_connect (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->tree_view)), "changed",
                    G_CALLBACK (on_selection_changed), self);
  g_signal_connect (self->tree_view, "button-press-event", G_CALLBACK (on_tree_button_press),
                    self);
  g_signal_connect (self->tree_view, "popup-menu", G_CALLBACK (on_tree_popup_menu), self);
  g_signal_connect (self->tree_view, "key-press-event", G_CALLBACK (on_tree_key_press), self);
  g_signal_connect (self->tree_view, "row-activated", G_CALLBACK (on_row_activated), self);
  gtk_widget_show_all (vbox);
}

static const GActionEntry win_entries[] = {
  { "create", create_activated, NULL, NULL, NULL, { 0 } },
  { "remove", remove_activated, NULL, NULL, NULL, { 0 } },
  { "clone", clone_activated, NULL, NULL, NULL, { 0 } },
  { "settings", settings_activated, NULL, NULL, NULL, { 0 } },
  { "start", lifecycle_activated, NULL, NULL, NULL, { 0 } },
  { "shutdown", lifecycle_activated, NULL, NULL, NULL, { 0 } },
  { "restart", lifecycle_activated, NULL, NULL, NULL, { 0 } },
  { "pause", lifecycle_activated, NULL, NULL, NULL, { 0 } },
  { "kill", lifecycle_activated, NULL, NULL, NULL, { 0 } },
  { "find", find_activated, NULL, NULL, NULL, { 0 } },
  { "show-internal", NULL, NULL, "false", change_show_internal, { 0 } },
  { "filter", NULL, "s", "'all'", change_filter, { 0 } },
  { "group-by", NULL, "s", "'none'", change_group_by, { 0 } },
};

static gboolean
on_delete_event (GtkWidget *widget,
                 GdkEvent  *event,
                 gpointer   user_data)
{
  gint width, height;

  gtk_window_get_size (GTK_WINDOW (widget), &width, &height);
  qm_prefs_set_int ("window-width", width);
  qm_prefs_set_int ("window-height", height);
  return GDK_EVENT_PROPAGATE;
}

QmWindow *
qm_window_new (GtkApplication *application,
               QmClient       *client)
{
  QmWindow *self = g_object_new (QM_TYPE_WINDOW, "application", application, NULL);
  g_autofree gchar *filter = qm_prefs_get_string ("filter");
  g_autofree gchar *group_by = qm_prefs_get_string ("group-by");
  gint width = qm_prefs_get_int ("window-width");
  gint height = qm_prefs_get_int ("window-height");

  self->client = g_object_ref (client);
  gtk_window_set_title (GTK_WINDOW (self), _("Qube Manager"));
  gtk_window_set_icon_name (GTK_WINDOW (self), "org.qubes_os.QubeManager");
  gtk_window_set_default_size (GTK_WINDOW (self), width > 200 ? width : 1200,
                               height > 150 ? height : 640);

  g_action_map_add_action_entries (G_ACTION_MAP (self), win_entries, G_N_ELEMENTS (win_entries),
                                   self);
  self->filter = g_strdup (filter[0] != '\0' ? filter : "all");
  self->show_internal = qm_prefs_get_boolean ("show-internal");
  self->group_by = g_strdup ("none");
  for (guint i = 0; i < G_N_ELEMENTS (group_defs); i++)
    if (g_strcmp0 (group_defs[i].id, group_by) == 0)
      {
        g_free (self->group_by);
        self->group_by = g_strdup (group_by);
      }
  g_simple_action_set_state (G_SIMPLE_ACTION (g_action_map_lookup_action (G_ACTION_MAP (self),
                                                                           "group-by")),
                             g_variant_new_string (self->group_by));
  g_simple_action_set_state (G_SIMPLE_ACTION (g_action_map_lookup_action (G_ACTION_MAP (self),
                                                                           "filter")),
                             g_variant_new_string (self->filter));
  g_simple_action_set_state (G_SIMPLE_ACTION (g_action_map_lookup_action (G_ACTION_MAP (self),
                                                                           "show-internal")),
                             g_variant_new_boolean (self->show_internal));

  self->store = qm_qube_store_new ();
  {
    GType types[VIEW_N_COLUMNS];
    gint i;

    for (i = 0; i < QM_N_COLUMNS; i++)
      types[i] = gtk_tree_model_get_column_type (GTK_TREE_MODEL (self->store), i);
    types[VIEW_COL_IS_GROUP] = G_TYPE_BOOLEAN;
    types[VIEW_COL_IS_QUBE] = G_TYPE_BOOLEAN;
    types[VIEW_COL_GROUP_KEY] = G_TYPE_STRING;
    types[VIEW_COL_GROUP_ORDER] = G_TYPE_INT;
    self->view_store = gtk_tree_store_newv (VIEW_N_COLUMNS, types);
  }
  self->filter_model = gtk_tree_model_filter_new (GTK_TREE_MODEL (self->view_store), NULL);
  gtk_tree_model_filter_set_visible_func (GTK_TREE_MODEL_FILTER (self->filter_model),
                                          filter_visible, self, NULL);
  self->sort_model = gtk_tree_model_sort_new_with_model (self->filter_model);
  build_ui (self);

  g_signal_connect (self, "delete-event", G_CALLBACK (on_delete_event), NULL);
  g_signal_connect_object (client, "changed", G_CALLBACK (on_client_changed), self, 0);
  g_signal_connect_object (client, "state-changed", G_CALLBACK (on_client_state_changed), self,
                           0);
  on_client_state_changed (client, self);
  return self;
}

GtkListStore *
qm_window_get_store (QmWindow *self)
{
  return self->store;
}

QmClient *
qm_window_get_client (QmWindow *self)
{
  return self->client;
}

static void
qm_window_dispose (GObject *object)
{
  QmWindow *self = QM_WINDOW (object);

  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_pointer (&self->settings_windows, g_hash_table_unref);
  G_OBJECT_CLASS (qm_window_parent_class)->dispose (object);
}

static void
qm_window_finalize (GObject *object)
{
  QmWindow *self = QM_WINDOW (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->sort_model);
  g_clear_object (&self->filter_model);
  g_clear_object (&self->view_store);
  g_clear_object (&self->store);
  g_clear_object (&self->client);
  g_hash_table_unref (self->view_rows);
  g_hash_table_unref (self->groups);
  g_hash_table_unref (self->collapsed);
  g_free (self->group_by);
  g_free (self->search_casefold);
  g_free (self->filter);
  G_OBJECT_CLASS (qm_window_parent_class)->finalize (object);
}

static void
qm_window_init (QmWindow *self)
{
  self->cancellable = g_cancellable_new ();
  self->settings_windows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->view_rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) g_ptr_array_unref);
  self->groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->collapsed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static void
qm_window_class_init (QmWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qm_window_dispose;
  object_class->finalize = qm_window_finalize;
}
