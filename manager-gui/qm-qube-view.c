/* qm-qube-view.c: what the qube list shows of the store: grouped, filtered, searched, sorted
 *
 * The store (qm-qube-store.c) has one row per qube. The view copies its rows into a
 * GtkTreeStore, flat or under one header row per group (View > Group by), and stacks a
 * GtkTreeModelFilter (View > Show, internal qubes, the search) and a GtkTreeModelSort on it.
 * The copy is kept in step by diffing, like the store, so that rows, and with them the tree
 * view's selection, folding and scroll position, survive every update. A qube with several tags
 * has one row under each.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-qube-view.h"

static const QmViewColumn columns[] = {
  { "label", N_("Label"), QM_COL_LABEL_INDEX, QM_SORT_INT, QM_COL_LABEL_NAME },
  { "name", N_("Name"), QM_COL_NAME, QM_SORT_TEXT, QM_COL_NAME },
  { "state", N_("State"), QM_COL_STATE_ORDER, QM_SORT_INT, QM_COL_STATE_TEXT },
  { "class", N_("Class"), QM_COL_CLASS, QM_SORT_TEXT, QM_COL_CLASS },
  { "template", N_("Template"), QM_COL_TEMPLATE, QM_SORT_TEXT, QM_COL_TEMPLATE },
  { "netvm", N_("NetVM"), QM_COL_NETVM, QM_SORT_TEXT, QM_COL_NETVM },
  { "disk", N_("Disk usage"), QM_COL_DISK_BYTES, QM_SORT_INT64, -1, QM_COL_DISK },
  { "cpu", N_("CPU"), QM_COL_CPU_PERCENT, QM_SORT_INT, -1, QM_COL_CPU },
  { "memory", N_("Memory"), QM_COL_MEMORY_KB, QM_SORT_INT64, -1, QM_COL_MEMORY },
  { "internal", N_("Internal"), QM_COL_INTERNAL, QM_SORT_BOOL, -1 },
  { "ip", N_("IP"), QM_COL_IP, QM_SORT_TEXT, QM_COL_IP },
  { "include-in-backups", N_("Include in backups"), QM_COL_INCLUDE_IN_BACKUPS, QM_SORT_BOOL, -1 },
  { "last-backup", N_("Last backup"), QM_COL_LAST_BACKUP_TS, QM_SORT_INT64, QM_COL_LAST_BACKUP },
  { "default-dispvm", N_("Default disposable template"), QM_COL_DEFAULT_DISPVM, QM_SORT_TEXT,
    QM_COL_DEFAULT_DISPVM },
  { "template-for-dispvms", N_("Disposable template"), QM_COL_TEMPLATE_FOR_DISPVMS,
    QM_SORT_BOOL, -1 },
  { "virt-mode", N_("Virt mode"), QM_COL_VIRT_MODE, QM_SORT_TEXT, QM_COL_VIRT_MODE },
  { "tags", N_("Tags"), QM_COL_TAGS, QM_SORT_TEXT, QM_COL_TAGS },
  { "notes", N_("Notes"), QM_COL_NOTES, QM_SORT_TEXT, QM_COL_NOTES },
};

#define N_VIEW_COLUMNS G_N_ELEMENTS (columns)

static const QmViewChoice filters[] = {
  { "all", N_("All qubes") },
  { "running", N_("Running") },
  { "halted", N_("Halted") },
  { "network", N_("Network providers") },
  { "templates", N_("Templates") },
  { "standalones", N_("Standalones") },
  { "user", N_("User qubes") },
};

static const QmViewChoice groupings[] = {
  { "none", N_("No grouping") },
  { "template", N_("Template") },
  { "netvm", N_("NetVM") },
  { "label", N_("Label") },
  { "tag", N_("Tag") },
};

struct _QmQubeView
{
  GObject       parent_instance;

  GtkListStore *store;
  GType         types[QM_VIEW_N_COLUMNS]; /* of view_store's columns */
  GtkTreeStore *view_store;  /* the store's rows, grouped */
  GtkTreeModel *filter_model;
  GtkTreeModel *sort_model;
  GHashTable   *view_rows;   /* object path -> GPtrArray of ViewEntry */
  GHashTable   *groups;      /* group key -> GtkTreeIter (header row) */
  GHashTable   *collate_keys; /* text -> its collation key (collate_key()) */

  const gchar  *group_by;    /* an id of groupings[] */
  gchar        *filter;
  gboolean      show_internal;
  gchar        *search_casefold;
  gboolean      searched[N_VIEW_COLUMNS];
};

G_DEFINE_TYPE (QmQubeView, qm_qube_view, G_TYPE_OBJECT)

enum
{
  SIGNAL_MODEL_REPLACED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* A full sync into an empty view (the first list, a new grouping) of at least this many qubes
 * fills a new view store that nothing listens to yet, then stacks new filter and sort models on
 * it: row by row, the filter, the sort model and the tree view would each handle every insert
 * (the sort model with a binary search and a shift of the rows after it). */
#define REBUILD_MIN_ROWS 64

static void build_models (QmQubeView   *self,
                          GtkTreeModel *old_sort);

const QmViewColumn *
qm_qube_view_get_columns (guint *n_columns)
{
  *n_columns = N_VIEW_COLUMNS;
  return columns;
}

gint
qm_qube_view_column_index (const gchar *id)
{
  guint i;

  for (i = 0; i < N_VIEW_COLUMNS; i++)
    if (g_strcmp0 (columns[i].id, id) == 0)
      return (gint) i;
  return -1;
}

const QmViewChoice *
qm_qube_view_get_filters (guint *n_filters)
{
  *n_filters = G_N_ELEMENTS (filters);
  return filters;
}

const QmViewChoice *
qm_qube_view_get_groupings (guint *n_groupings)
{
  *n_groupings = G_N_ELEMENTS (groupings);
  return groupings;
}

/* ---- grouping -------------------------------------------------------------------------- */

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
row_group_keys (QmQubeView   *self,
                GtkTreeModel *model,
                GtkTreeIter  *iter)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func (group_key_free);
  const gchar *by = self->group_by;
  g_autofree gchar *value = NULL;

  if (g_str_equal (by, "template") || g_str_equal (by, "netvm"))
    {
      gboolean template = g_str_equal (by, "template");

      gtk_tree_model_get (model, iter, template ? QM_COL_TEMPLATE : QM_COL_NETVM_NAME, &value, -1);
      if (value != NULL && value[0] != '\0')
        add_group_key (keys, value, value, 0, NULL);
      else
        add_group_key (keys, "", template ? _("No template") : _("No network"), 1, NULL);
    }
  else if (g_str_equal (by, "label"))
    {
      g_autoptr(GdkPixbuf) pixbuf = NULL;
      gint index = 0;

      gtk_tree_model_get (model, iter, QM_COL_LABEL_NAME, &value, QM_COL_LABEL_INDEX, &index,
                          QM_COL_LABEL_PIXBUF, &pixbuf, -1);
      add_group_key (keys, value != NULL ? value : "", value != NULL ? value : "", index, pixbuf);
    }
  else if (g_str_equal (by, "tag"))
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
values_equal (const GValue *a,
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
copy_row (QmQubeView  *self,
          GtkTreeIter *src,
          GtkTreeIter *dest)
{
  gint cols[QM_VIEW_N_COLUMNS];
  GValue values[QM_VIEW_N_COLUMNS];
  gint n = 0, i;

  memset (values, 0, sizeof values);
  for (i = 0; i < QM_N_COLUMNS; i++)
    {
      GValue current = G_VALUE_INIT;

      gtk_tree_model_get_value (GTK_TREE_MODEL (self->store), src, i, &values[n]);
      gtk_tree_model_get_value (GTK_TREE_MODEL (self->view_store), dest, i, &current);
      if (values_equal (&current, &values[n]))
        {
          g_value_unset (&current);
          g_value_unset (&values[n]);
          continue;
        }
      g_value_unset (&current);
      cols[n++] = i;
    }
  if (n > 0)
    gtk_tree_store_set_valuesv (self->view_store, dest, cols, values, n);
  for (i = 0; i < n; i++)
    g_value_unset (&values[i]);
}

/* Adds a copy of a row of the store under parent, with all its values at once: one
 * row-inserted, which the filter, the sort model and the tree view each handle once. */
static void
insert_row (QmQubeView  *self,
            GtkTreeIter *src,
            GtkTreeIter *parent,
            GtkTreeIter *dest)
{
  gint cols[QM_N_COLUMNS + 1];
  GValue values[QM_N_COLUMNS + 1];
  gint i;

  memset (values, 0, sizeof values);
  for (i = 0; i < QM_N_COLUMNS; i++)
    {
      gtk_tree_model_get_value (GTK_TREE_MODEL (self->store), src, i, &values[i]);
      cols[i] = i;
    }
  g_value_init (&values[i], G_TYPE_BOOLEAN);
  g_value_set_boolean (&values[i], TRUE);
  cols[i] = QM_VIEW_COL_IS_QUBE;
  gtk_tree_store_insert_with_valuesv (self->view_store, dest, parent, -1, cols, values,
                                      QM_N_COLUMNS + 1);
  for (i = 0; i <= QM_N_COLUMNS; i++)
    g_value_unset (&values[i]);
}

static GtkTreeIter *
ensure_group (QmQubeView *self,
              GroupKey   *key)
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
                                     QM_VIEW_COL_IS_GROUP, TRUE,
                                     QM_VIEW_COL_GROUP_KEY, key->key,
                                     QM_VIEW_COL_GROUP_ORDER, key->order,
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

/* Removes the view rows of the qube at path. */
static void
forget_view_rows (QmQubeView  *self,
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
sync_row (QmQubeView  *self,
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

          copy_row (self, iter, &entry->iter);
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
      insert_row (self, iter, group->key != NULL ? ensure_group (self, group) : NULL,
                  &entry->iter);
      touch_group (touched, entry->key);
      g_ptr_array_add (entries, entry);
    }
  g_hash_table_insert (self->view_rows, g_strdup (path), entries);
}

void
qm_qube_view_sync (QmQubeView *self,
                   GHashTable *changed)
{
  GtkTreeModel *src = GTK_TREE_MODEL (self->store);
  g_autoptr(GHashTable) touched = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GtkTreeModel) old_sort = NULL;
  g_autoptr(GtkTreeModel) old_filter = NULL;
  g_autoptr(GtkTreeStore) old_store = NULL;
  GHashTableIter hiter;
  gpointer key, value;
  GtkTreeIter iter;
  gboolean valid;

  g_return_if_fail (QM_IS_QUBE_VIEW (self));

  if (changed == NULL
      && gtk_tree_model_iter_n_children (GTK_TREE_MODEL (self->view_store), NULL) == 0
      && gtk_tree_model_iter_n_children (src, NULL) >= REBUILD_MIN_ROWS)
    {
      old_sort = g_steal_pointer (&self->sort_model);
      old_filter = g_steal_pointer (&self->filter_model);
      old_store = g_steal_pointer (&self->view_store);
      self->view_store = gtk_tree_store_newv (QM_VIEW_N_COLUMNS, self->types);
      g_hash_table_remove_all (self->view_rows);
      g_hash_table_remove_all (self->groups);
    }

  if (changed != NULL)
    {
      g_hash_table_iter_init (&hiter, changed);
      while (g_hash_table_iter_next (&hiter, &key, NULL))
        {
          if (qm_qube_store_lookup (self->store, key, &iter))
            sync_row (self, key, &iter, touched);
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
          sync_row (self, path, &iter, touched);
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

  if (old_sort != NULL)
    {
      build_models (self, old_sort);
      /* The window shows the new models before the old ones go (at the end of this scope). */
      g_signal_emit (self, signals[SIGNAL_MODEL_REPLACED], 0);
    }
}

gboolean
qm_qube_view_set_group_by (QmQubeView  *self,
                           const gchar *group_by)
{
  guint i;

  g_return_val_if_fail (QM_IS_QUBE_VIEW (self), FALSE);

  for (i = 0; i < G_N_ELEMENTS (groupings); i++)
    if (g_strcmp0 (groupings[i].id, group_by) == 0)
      break;
  if (i == G_N_ELEMENTS (groupings) || self->group_by == groupings[i].id)
    return FALSE;
  self->group_by = groupings[i].id;
  g_hash_table_remove_all (self->view_rows);
  g_hash_table_remove_all (self->groups);
  gtk_tree_store_clear (self->view_store);
  qm_qube_view_sync (self, NULL);
  return TRUE;
}

const gchar *
qm_qube_view_get_group_by (QmQubeView *self)
{
  g_return_val_if_fail (QM_IS_QUBE_VIEW (self), NULL);

  return self->group_by;
}

/* ---- filtering ------------------------------------------------------------------------- */

static gboolean
row_visible (QmQubeView   *self,
             GtkTreeModel *model,
             GtkTreeIter  *iter)
{
  g_autofree gchar *klass = NULL;
  g_autofree gchar *power = NULL;
  gboolean internal, provides_network;
  const gchar *filter = self->filter;
  guint i;

  gtk_tree_model_get (model, iter, QM_COL_CLASS, &klass, QM_COL_POWER_STATE, &power,
                      QM_COL_INTERNAL, &internal, QM_COL_PROVIDES_NETWORK, &provides_network, -1);
  if (klass == NULL)
    return FALSE;
  if (internal && !self->show_internal)
    return FALSE;

  if (g_str_equal (filter, "running") && g_strcmp0 (power, "Halted") == 0)
    return FALSE;
  if (g_str_equal (filter, "halted") && g_strcmp0 (power, "Halted") != 0)
    return FALSE;
  if (g_str_equal (filter, "network") && !provides_network)
    return FALSE;
  if (g_str_equal (filter, "templates") && g_strcmp0 (klass, "TemplateVM") != 0)
    return FALSE;
  if (g_str_equal (filter, "standalones") && g_strcmp0 (klass, "StandaloneVM") != 0)
    return FALSE;
  if (g_str_equal (filter, "user")
      && (g_strcmp0 (klass, "AdminVM") == 0 || g_strcmp0 (klass, "TemplateVM") == 0
          || provides_network))
    return FALSE;

  if (self->search_casefold == NULL || self->search_casefold[0] == '\0')
    return TRUE;
  for (i = 0; i < N_VIEW_COLUMNS; i++)
    {
      g_autofree gchar *text = NULL;
      g_autofree gchar *folded = NULL;

      if (columns[i].text_column < 0 || !self->searched[i])
        continue;
      gtk_tree_model_get (model, iter, columns[i].text_column, &text, -1);
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
  QmQubeView *self = user_data;
  gboolean is_group = FALSE;
  GtkTreeIter child;
  gboolean valid;

  gtk_tree_model_get (model, iter, QM_VIEW_COL_IS_GROUP, &is_group, -1);
  if (!is_group)
    return row_visible (self, model, iter);
  for (valid = gtk_tree_model_iter_children (model, &child, iter); valid;
       valid = gtk_tree_model_iter_next (model, &child))
    if (row_visible (self, model, &child))
      return TRUE;
  return FALSE;
}

static void
refilter (QmQubeView *self)
{
  gtk_tree_model_filter_refilter (GTK_TREE_MODEL_FILTER (self->filter_model));
}

void
qm_qube_view_set_filter (QmQubeView  *self,
                         const gchar *filter)
{
  g_return_if_fail (QM_IS_QUBE_VIEW (self));

  if (g_strcmp0 (self->filter, filter) == 0)
    return;
  g_free (self->filter);
  self->filter = g_strdup (filter != NULL ? filter : "all");
  refilter (self);
}

void
qm_qube_view_set_show_internal (QmQubeView *self,
                                gboolean    show_internal)
{
  g_return_if_fail (QM_IS_QUBE_VIEW (self));

  self->show_internal = show_internal;
  refilter (self);
}

void
qm_qube_view_set_search (QmQubeView  *self,
                         const gchar *text)
{
  g_return_if_fail (QM_IS_QUBE_VIEW (self));

  g_free (self->search_casefold);
  self->search_casefold = g_utf8_casefold (text != NULL ? text : "", -1);
  refilter (self);
}

void
qm_qube_view_set_column_searched (QmQubeView *self,
                                  guint       column,
                                  gboolean    searched)
{
  g_return_if_fail (QM_IS_QUBE_VIEW (self));
  g_return_if_fail (column < N_VIEW_COLUMNS);

  if (!self->searched[column] == !searched)
    return;
  self->searched[column] = searched;
  if (self->search_casefold != NULL && self->search_casefold[0] != '\0')
    refilter (self);
}

gint
qm_qube_view_count_shown (QmQubeView *self)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GtkTreeModel *model = self->filter_model;
  GtkTreeIter iter, child;
  gboolean valid, more;

  g_return_val_if_fail (QM_IS_QUBE_VIEW (self), 0);

  /* Flat: each row a qube, and the filter knows how many it shows (the status line asks at
   * every change; at 1,000 qubes the walk below was a tenth of the window's work then). */
  if (g_str_equal (self->group_by, "none"))
    return gtk_tree_model_iter_n_children (model, NULL);
  for (valid = gtk_tree_model_get_iter_first (model, &iter); valid;
       valid = gtk_tree_model_iter_next (model, &iter))
    {
      gchar *path = NULL;

      gtk_tree_model_get (model, &iter, QM_COL_PATH, &path, -1);
      if (path != NULL)
        g_hash_table_add (seen, path);
      for (more = gtk_tree_model_iter_children (model, &child, &iter); more;
           more = gtk_tree_model_iter_next (model, &child))
        {
          path = NULL;
          gtk_tree_model_get (model, &child, QM_COL_PATH, &path, -1);
          if (path != NULL)
            g_hash_table_add (seen, path);
        }
    }
  return (gint) g_hash_table_size (seen);
}

GList *
qm_qube_view_get_paths (QmQubeView  *self,
                        const gchar *object_path)
{
  GPtrArray *entries;
  GList *paths = NULL;
  guint i;

  g_return_val_if_fail (QM_IS_QUBE_VIEW (self), NULL);

  entries = g_hash_table_lookup (self->view_rows, object_path);
  for (i = 0; entries != NULL && i < entries->len; i++)
    {
      ViewEntry *entry = entries->pdata[i];
      GtkTreeIter filter_iter, sort_iter;

      if (!gtk_tree_model_filter_convert_child_iter_to_iter (
            GTK_TREE_MODEL_FILTER (self->filter_model), &filter_iter, &entry->iter))
        continue;
      gtk_tree_model_sort_convert_child_iter_to_iter (GTK_TREE_MODEL_SORT (self->sort_model),
                                                      &sort_iter, &filter_iter);
      paths = g_list_prepend (paths, gtk_tree_model_get_path (self->sort_model, &sort_iter));
    }
  return g_list_reverse (paths);
}

/* ---- sorting --------------------------------------------------------------------------- */

typedef struct
{
  QmQubeView         *self;
  const QmViewColumn *column;
} SortContext;

/* Sorting compares a changed row with about log2 (rows) others, each time both texts' collation
 * keys: they are kept here, by text, rather than made (allocated, normalised) at every compare.
 * Emptied when it has grown past a few times the texts a list of 1,000 qubes shows. */
#define COLLATE_CACHE_MAX 20000

static const gchar *
collate_key (QmQubeView  *self,
             const gchar *text)
{
  const gchar *key;

  if (text == NULL)
    text = "";
  key = g_hash_table_lookup (self->collate_keys, text);
  if (key != NULL)
    return key;
  key = g_utf8_collate_key_for_filename (text, -1);
  g_hash_table_insert (self->collate_keys, g_strdup (text), (gpointer) key);
  return key;
}

/* Before a compare, never between its two collate_key (): the first key stays valid. */
static void
collate_keys_trim (QmQubeView *self)
{
  if (g_hash_table_size (self->collate_keys) >= COLLATE_CACHE_MAX)
    g_hash_table_remove_all (self->collate_keys);
}

/* Headers sort by their group (label index, then name; "no ..." last) whatever the column and
 * order: the sort model reverses what this says when descending, so it is reversed here too. */
static gint
compare_groups (QmQubeView   *self,
                GtkTreeModel *model,
                GtkTreeIter  *a,
                GtkTreeIter  *b)
{
  g_autofree gchar *ta = NULL, *tb = NULL;
  gint oa = 0, ob = 0, result, id;
  GtkSortType order = GTK_SORT_ASCENDING;

  gtk_tree_model_get (model, a, QM_VIEW_COL_GROUP_ORDER, &oa, QM_COL_NAME, &ta, -1);
  gtk_tree_model_get (model, b, QM_VIEW_COL_GROUP_ORDER, &ob, QM_COL_NAME, &tb, -1);
  result = (oa > ob) - (oa < ob);
  collate_keys_trim (self);
  if (result == 0)
    result = strcmp (collate_key (self, ta), collate_key (self, tb));
  if (gtk_tree_sortable_get_sort_column_id (GTK_TREE_SORTABLE (self->sort_model), &id, &order)
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
  const QmViewColumn *column = context->column;
  gboolean group_a = FALSE, group_b = FALSE;
  gint result = 0;

  gtk_tree_model_get (model, a, QM_VIEW_COL_IS_GROUP, &group_a, -1);
  gtk_tree_model_get (model, b, QM_VIEW_COL_IS_GROUP, &group_b, -1);
  if (group_a || group_b)
    return compare_groups (context->self, model, a, b);

  switch (column->sort_kind)
    {
    case QM_SORT_TEXT:
      {
        g_autofree gchar *sa = NULL, *sb = NULL;

        gtk_tree_model_get (model, a, column->sort_column, &sa, -1);
        gtk_tree_model_get (model, b, column->sort_column, &sb, -1);
        /* Numbers inside names and addresses sort as numbers: work-2 before work-10. */
        collate_keys_trim (context->self);
        result = strcmp (collate_key (context->self, sa), collate_key (context->self, sb));
        break;
      }
    case QM_SORT_INT:
    case QM_SORT_BOOL:
      {
        gint ia = 0, ib = 0;

        gtk_tree_model_get (model, a, column->sort_column, &ia, -1);
        gtk_tree_model_get (model, b, column->sort_column, &ib, -1);
        result = (ia > ib) - (ia < ib);
        break;
      }
    case QM_SORT_INT64:
      {
        gint64 la = 0, lb = 0;

        gtk_tree_model_get (model, a, column->sort_column, &la, -1);
        gtk_tree_model_get (model, b, column->sort_column, &lb, -1);
        result = (la > lb) - (la < lb);
        break;
      }
    default:
      break;
    }

  if (result == 0 && column->sort_column != QM_COL_NAME)
    {
      g_autofree gchar *na = NULL, *nb = NULL;

      gtk_tree_model_get (model, a, QM_COL_NAME, &na, -1);
      gtk_tree_model_get (model, b, QM_COL_NAME, &nb, -1);
      result = g_strcmp0 (na, nb);
    }
  return result;
}

/* ---- construction ---------------------------------------------------------------------- */

QmQubeView *
qm_qube_view_new (GtkListStore *store)
{
  QmQubeView *self;
  guint i;

  g_return_val_if_fail (GTK_IS_LIST_STORE (store), NULL);

  self = g_object_new (QM_TYPE_QUBE_VIEW, NULL);
  self->store = g_object_ref (store);
  for (i = 0; i < QM_N_COLUMNS; i++)
    self->types[i] = gtk_tree_model_get_column_type (GTK_TREE_MODEL (store), (gint) i);
  self->types[QM_VIEW_COL_IS_GROUP] = G_TYPE_BOOLEAN;
  self->types[QM_VIEW_COL_IS_QUBE] = G_TYPE_BOOLEAN;
  self->types[QM_VIEW_COL_GROUP_KEY] = G_TYPE_STRING;
  self->types[QM_VIEW_COL_GROUP_ORDER] = G_TYPE_INT;
  self->view_store = gtk_tree_store_newv (QM_VIEW_N_COLUMNS, self->types);
  build_models (self, NULL);
  return self;
}

/* The filter and sort models on view_store, sorted as old_sort was (if any). */
static void
build_models (QmQubeView   *self,
              GtkTreeModel *old_sort)
{
  gint sort_id;
  GtkSortType order;
  guint i;

  self->filter_model = gtk_tree_model_filter_new (GTK_TREE_MODEL (self->view_store), NULL);
  gtk_tree_model_filter_set_visible_func (GTK_TREE_MODEL_FILTER (self->filter_model),
                                          filter_visible, self, NULL);
  self->sort_model = gtk_tree_model_sort_new_with_model (self->filter_model);
  for (i = 0; i < N_VIEW_COLUMNS; i++)
    {
      SortContext *context = g_new0 (SortContext, 1);

      context->self = self;
      context->column = &columns[i];
      gtk_tree_sortable_set_sort_func (GTK_TREE_SORTABLE (self->sort_model), (gint) i,
                                       compare_rows, context, g_free);
    }
  if (old_sort != NULL
      && gtk_tree_sortable_get_sort_column_id (GTK_TREE_SORTABLE (old_sort), &sort_id, &order))
    gtk_tree_sortable_set_sort_column_id (GTK_TREE_SORTABLE (self->sort_model), sort_id, order);
}

GtkTreeModel *
qm_qube_view_get_model (QmQubeView *self)
{
  g_return_val_if_fail (QM_IS_QUBE_VIEW (self), NULL);

  return self->sort_model;
}

static void
qm_qube_view_finalize (GObject *object)
{
  QmQubeView *self = QM_QUBE_VIEW (object);

  g_clear_object (&self->sort_model);
  g_clear_object (&self->filter_model);
  g_clear_object (&self->view_store);
  g_clear_object (&self->store);
  g_hash_table_unref (self->view_rows);
  g_hash_table_unref (self->groups);
  g_hash_table_unref (self->collate_keys);
  g_free (self->filter);
  g_free (self->search_casefold);
  G_OBJECT_CLASS (qm_qube_view_parent_class)->finalize (object);
}

static void
qm_qube_view_init (QmQubeView *self)
{
  self->view_rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) g_ptr_array_unref);
  self->groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->collate_keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->group_by = groupings[0].id;
  self->filter = g_strdup ("all");
}

static void
qm_qube_view_class_init (QmQubeViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qm_qube_view_finalize;

  /* The models of qm_qube_view_get_model () were replaced by new ones (see
   * REBUILD_MIN_ROWS): a tree view should show the new one. */
  signals[SIGNAL_MODEL_REPLACED] =
    g_signal_new ("model-replaced", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 0);
}
