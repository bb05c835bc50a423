/* qm-window.c: the Qube Manager's main window
 *
 * The window (qm-window.ui) is shown before anything is known about qubesd and fills in as the
 * client reports changes (coalesced; see qm-client.c). The list is a GtkListStore diffed in
 * place (qm-qube-store.c); the tree view shows it through a QmQubeView (qm-qube-view.c), which
 * groups, filters, searches and sorts it, diffing too, so selection, folding and scroll position
 * survive every update. The window owns what is the tree view's: its columns (from the view's
 * table), folding, selection, and the actions on the selected qubes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-backup-dialog.h"
#include "qm-clone-dialog.h"
#include "qm-console.h"
#include "qm-create-dialog.h"
#include "qm-restore-dialog.h"
#include "qm-error.h"
#include "qm-global-settings.h"
#include "qm-log-window.h"
#include "qm-prefs.h"
#include "qm-qube-store.h"
#include "qm-qube-view.h"
#include "qm-block-dialog.h"
#include "qm-settings-window.h"
#include "qm-window.h"

/* The lifecycle actions, in the toolbar's order; ui_id is the button in qm-window.ui. */
static const struct
{
  const gchar *action;
  const gchar *label;
  const gchar *ui_id;
} lifecycle_defs[] = {
  { "start", N_("_Start"), "start_button" },
  { "shutdown", N_("Shut _down"), "shutdown_button" },
  { "restart", N_("Res_tart"), "restart_button" },
  { "pause", N_("_Pause"), "pause_button" },
  { "kill", N_("_Kill"), "kill_button" },
};

#define PAUSE_INDEX 3

struct _QmWindow
{
  GtkApplicationWindow parent_instance;

  QmClient            *client;
  GCancellable        *cancellable;
  GtkListStore        *store;
  QmQubeView          *view;
  GtkTreeModel        *model;        /* the view's, which the tree view shows */
  GHashTable          *collapsed;    /* keys of the groups the user folded */
  gboolean             synced;       /* the store holds every row the client had */

  /* template children */
  GtkWidget           *stack;
  GtkWidget           *tree_view;
  GtkWidget           *search_entry;
  GtkWidget           *filter_combo;
  GtkWidget           *group_combo;
  GtkWidget           *status_label;
  GtkWidget           *message_title;
  GtkWidget           *message_body;
  GtkWidget           *lifecycle_buttons[G_N_ELEMENTS (lifecycle_defs)];

  GtkTreeViewColumn  **columns;      /* one per column of the view's table */
  GHashTable          *settings_windows; /* object path -> QmSettingsWindow */
  guint                usage_timer;  /* reads the disk usage of the running qubes again */
  GtkWidget           *global_settings;
  gchar               *settings_wanted; /* a qube just made, whose settings open once known */
  gint64               settings_wanted_until;
};

/* As upstream's Qube Manager: the disk usage of running qubes is read again every minute while
 * the window is active, every five otherwise, and when it becomes active. */
#define USAGE_INTERVAL_ACTIVE_S 60
#define USAGE_INTERVAL_INACTIVE_S 300

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

      if (!gtk_tree_model_get_iter (self->model, &iter, l->data))
        continue;
      sel = g_new0 (Selected, 1);
      gtk_tree_model_get (self->model, &iter, QM_COL_PATH, &sel->path, QM_COL_NAME,
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
  g_autoptr(GPtrArray) selection = NULL;
  gboolean ready, lifecycle, one, paused;
  guint i, j;

  if (self->client == NULL) /* the window is being built */
    return;
  selection = selected_qubes (self);
  ready = qm_client_get_state (self->client) == QM_CLIENT_STATE_READY;
  lifecycle = ready && qm_client_has_lifecycle (self->client);
  one = selection->len == 1;
  paused = any_paused (selection);

  enable_action (self, "create", ready);
  enable_action (self, "remove", ready && one && !is_admin (selection->pdata[0]));
  enable_action (self, "settings", ready && one);
  enable_action (self, "logs", ready && one);
  enable_action (self, "global-settings", ready);
  enable_action (self, "console", lifecycle && one && !is_admin (selection->pdata[0])
                                  && !is_halted (selection->pdata[0]));
  enable_action (self, "devices", ready && one && !is_admin (selection->pdata[0]));
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

static gboolean
is_grouped (QmWindow *self)
{
  return !g_str_equal (qm_qube_view_get_group_by (self->view), "none");
}

/* Unfolds every header the user did not fold. */
static void
expand_groups (QmWindow *self)
{
  GtkTreeIter iter;
  gboolean valid;

  if (!is_grouped (self))
    return;
  for (valid = gtk_tree_model_get_iter_first (self->model, &iter); valid;
       valid = gtk_tree_model_iter_next (self->model, &iter))
    {
      g_autofree gchar *key = NULL;
      g_autoptr(GtkTreePath) path = NULL;
      gboolean is_group = FALSE;

      gtk_tree_model_get (self->model, &iter, QM_VIEW_COL_IS_GROUP, &is_group,
                          QM_VIEW_COL_GROUP_KEY, &key, -1);
      if (!is_group || g_hash_table_contains (self->collapsed, key))
        continue;
      path = gtk_tree_model_get_path (self->model, &iter);
      if (!gtk_tree_view_row_expanded (GTK_TREE_VIEW (self->tree_view), path))
        gtk_tree_view_expand_row (GTK_TREE_VIEW (self->tree_view), path, FALSE);
    }
}

static void
on_row_folded (GtkTreeView *view,
               GtkTreeIter *iter,
               GtkTreePath *path,
               QmWindow    *self)
{
  g_autofree gchar *key = NULL;
  GtkTreeIter it = *iter;

  gtk_tree_model_get (self->model, &it, QM_VIEW_COL_GROUP_KEY, &key, -1);
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
    gtk_tree_model_get (model, &iter, QM_VIEW_COL_IS_GROUP, &is_group, -1);
  return !is_group;
}

/* Regroups from scratch; the selected qubes stay selected. */
static void
regroup (QmWindow    *self,
         const gchar *group_by)
{
  g_autoptr(GPtrArray) selection = selected_qubes (self);
  GtkTreeSelection *tree_selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->tree_view));
  guint i;

  gtk_tree_view_set_show_expanders (GTK_TREE_VIEW (self->tree_view),
                                    !g_str_equal (group_by, "none"));
  if (!qm_qube_view_set_group_by (self->view, group_by))
    return;
  expand_groups (self);
  for (i = 0; i < selection->len; i++)
    {
      GList *paths = qm_qube_view_get_paths (self->view, ((Selected *) selection->pdata[i])->path);
      GList *l;

      for (l = paths; l != NULL; l = l->next)
        gtk_tree_selection_select_path (tree_selection, l->data);
      g_list_free_full (paths, (GDestroyNotify) gtk_tree_path_free);
    }
}

static void
change_group_by (GSimpleAction *action,
                 GVariant      *state,
                 gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *by = g_variant_get_string (state, NULL);
  const QmViewChoice *groupings;
  guint i, n;
  gboolean known = FALSE;

  groupings = qm_qube_view_get_groupings (&n);
  for (i = 0; i < n; i++)
    known |= g_str_equal (groupings[i].id, by);
  if (!known || g_strcmp0 (qm_qube_view_get_group_by (self->view), by) == 0)
    return;
  g_simple_action_set_state (action, state);
  qm_prefs_set_string ("group-by", by);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->group_combo), by);
  regroup (self, by);
}

static void
on_group_combo_changed (GtkComboBox *combo,
                        QmWindow    *self)
{
  const gchar *id = gtk_combo_box_get_active_id (combo);

  if (id != NULL)
    g_action_group_change_action_state (G_ACTION_GROUP (self), "group-by",
                                        g_variant_new_string (id));
}

/* ---- state of the client --------------------------------------------------------------- */

static void
update_status (QmWindow *self)
{
  gint total, shown;
  g_autofree gchar *text = NULL;

  if (self->client == NULL) /* the window is being built */
    return;
  total = gtk_tree_model_iter_n_children (GTK_TREE_MODEL (self->store), NULL);
  shown = qm_qube_view_count_shown (self->view);
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

/* The store, then the view, then what depends on the rows shown. */
static void
update_rows (QmWindow   *self,
             GHashTable *changed)
{
  qm_qube_store_update (self->store, self->client, changed);
  qm_qube_view_sync (self->view, changed);
  expand_groups (self);
}

static void open_settings (QmWindow    *self,
                           const gchar *path);

static void
on_client_changed (QmClient *client,
                   gpointer  user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  if (self->settings_wanted != NULL)
    {
      g_autofree gchar *path = g_steal_pointer (&self->settings_wanted);

      if (qm_client_lookup_domain (client, path) != NULL)
        open_settings (self, path);
      else if (g_get_monotonic_time () < self->settings_wanted_until)
        self->settings_wanted = g_steal_pointer (&path);
    }
  /* All rows after a change of state: the window may have been made after the first list. */
  GHashTable *changed = self->synced ? qm_client_get_changed_domains (client) : NULL;

  update_rows (self, changed);
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
      update_rows (self, NULL);
    }
  update_status (self);
  update_actions (self);
}


/* ---- filtering and sorting ------------------------------------------------------------- */

/* After a change of what the view shows: headers may have appeared, the count changed. */
static void
refiltered (QmWindow *self)
{
  expand_groups (self);
  update_status (self);
}

static void
on_sort_changed (GtkTreeSortable *sortable,
                 QmWindow        *self)
{
  const QmViewColumn *columns;
  guint n_columns;
  gint id;
  GtkSortType order;

  columns = qm_qube_view_get_columns (&n_columns);
  if (!gtk_tree_sortable_get_sort_column_id (sortable, &id, &order)
      || id < 0 || (guint) id >= n_columns)
    return;
  qm_prefs_set_string ("sort-column", columns[id].id);
  qm_prefs_set_boolean ("sort-descending", order == GTK_SORT_DESCENDING);
}

static void
on_search_changed (GtkSearchEntry *entry,
                   QmWindow       *self)
{
  qm_qube_view_set_search (self->view, gtk_entry_get_text (GTK_ENTRY (entry)));
  refiltered (self);
}

/* ---- columns --------------------------------------------------------------------------- */

static void
save_hidden_columns (QmWindow *self)
{
  g_autoptr(GPtrArray) hidden = g_ptr_array_new ();
  const QmViewColumn *columns;
  guint i, n_columns;

  columns = qm_qube_view_get_columns (&n_columns);
  for (i = 0; i < n_columns; i++)
    if (!gtk_tree_view_column_get_visible (self->columns[i]))
      g_ptr_array_add (hidden, (gpointer) columns[i].id);
  g_ptr_array_add (hidden, NULL);
  qm_prefs_set_strv ("hidden-columns", (const gchar *const *) hidden->pdata);
}

/* A column shown or hidden; the search looks in the visible columns only. */
static void
change_column_state (GSimpleAction *action,
                     GVariant      *state,
                     gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  gint i = qm_qube_view_column_index (g_action_get_name (G_ACTION (action)) + strlen ("col-"));
  gboolean visible = g_variant_get_boolean (state);
  guint n_columns;

  if (i < 0)
    return;
  gtk_tree_view_column_set_visible (self->columns[i], visible);
  g_simple_action_set_state (action, state);
  save_hidden_columns (self);
  if (g_str_equal (qm_qube_view_get_columns (&n_columns)[i].id, "notes"))
    {
      /* the notes are read only while they are shown */
      qm_qube_store_set_notes_shown (self->store, visible);
      if (visible && self->client != NULL)
        update_rows (self, NULL);
    }
  qm_qube_view_set_column_searched (self->view, (guint) i, visible);
  refiltered (self);
}

static GMenuModel *
build_columns_menu (void)
{
  GMenu *menu = g_menu_new ();
  const QmViewColumn *columns;
  guint i, n_columns;

  columns = qm_qube_view_get_columns (&n_columns);
  for (i = 0; i < n_columns; i++)
    {
      g_autofree gchar *action = g_strdup_printf ("win.col-%s", columns[i].id);

      g_menu_append (menu, _(columns[i].title), action);
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

/* How wide a column starts, in characters of its cells' text: every column has a fixed width
 * (the user may drag it), so that the tree view can run in fixed-height mode and never
 * measures a row's cells, at 1,000 rows the most of its work at start-up and at each change. */
static gint
column_width_chars (const QmViewColumn *def)
{
  static const struct
  {
    const gchar *id;
    gint         chars;
  } widths[] = {
    { "label", 3 },        { "name", 22 },     { "state", 22 },       { "class", 13 },
    { "template", 18 },    { "netvm", 24 },    { "disk", 10 },        { "cpu", 6 },
    { "memory", 10 },      { "ip", 14 },       { "last-backup", 16 }, { "default-dispvm", 24 },
    { "virt-mode", 8 },    { "tags", 20 },     { "notes", 24 },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (widths); i++)
    if (g_str_equal (widths[i].id, def->id))
      return widths[i].chars;
  return 4; /* a check box */
}

/* The column's starting width in pixels: the wider of its title and its cells' text. */
static gint
column_width (QmWindow           *self,
              const QmViewColumn *def)
{
  PangoContext *context = gtk_widget_get_pango_context (self->tree_view);
  PangoFontMetrics *metrics = pango_context_get_metrics (context, NULL, NULL);
  g_autoptr(PangoLayout) title = gtk_widget_create_pango_layout (self->tree_view, _(def->title));
  gint char_width = PANGO_PIXELS (pango_font_metrics_get_approximate_char_width (metrics));
  gint title_width = 0;
  gint cells;

  pango_font_metrics_unref (metrics);
  pango_layout_get_pixel_size (title, &title_width, NULL);
  cells = column_width_chars (def) * MAX (char_width, 1);
  if (g_str_equal (def->id, "state"))
    cells += 2 * 20; /* the state and badge icons */
  /* the sort arrow and the header's padding */
  return MAX (title_width + 32, cells + 12);
}

/* A column's cells: label swatch, state icons and text, a check box for booleans, else text
 * (right-aligned when it shows a figure). */
static GtkTreeViewColumn *
create_column (QmWindow           *self,
               const QmViewColumn *def)
{
  GtkTreeViewColumn *column = gtk_tree_view_column_new ();
  GtkCellRenderer *renderer;

  gtk_tree_view_column_set_title (column, _(def->title));
  gtk_tree_view_column_set_resizable (column, TRUE);
  gtk_tree_view_column_set_reorderable (column, TRUE);
  gtk_tree_view_column_set_sizing (column, GTK_TREE_VIEW_COLUMN_FIXED);
  gtk_tree_view_column_set_fixed_width (column, column_width (self, def));

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
      g_object_set (renderer, "ellipsize", PANGO_ELLIPSIZE_END, NULL);
      gtk_tree_view_column_pack_start (column, renderer, TRUE);
      gtk_tree_view_column_add_attribute (column, renderer, "text", QM_COL_STATE_TEXT);
    }
  else if (def->sort_kind == QM_SORT_BOOL)
    {
      renderer = gtk_cell_renderer_toggle_new ();
      gtk_tree_view_column_pack_start (column, renderer, FALSE);
      gtk_tree_view_column_add_attribute (column, renderer, "active", def->sort_column);
      gtk_tree_view_column_add_attribute (column, renderer, "visible", QM_VIEW_COL_IS_QUBE);
      if (g_str_equal (def->id, "include-in-backups"))
        g_signal_connect (renderer, "toggled", G_CALLBACK (on_backup_toggled), self);
      else
        gtk_cell_renderer_toggle_set_activatable (GTK_CELL_RENDERER_TOGGLE (renderer), FALSE);
    }
  else
    {
      /* cut with an ellipsis rather than clipped when wider than the column */
      renderer = gtk_cell_renderer_text_new ();
      g_object_set (renderer, "ellipsize", PANGO_ELLIPSIZE_END, NULL);
      gtk_tree_view_column_pack_start (column, renderer, TRUE);
      gtk_tree_view_column_add_attribute (column, renderer, "text",
                                          def->shown_column > 0 ? def->shown_column
                                          : def->text_column >= 0 ? def->text_column
                                                                  : def->sort_column);
      if (def->shown_column > 0)
        gtk_cell_renderer_set_alignment (renderer, 1.0, 0.5);
      if (g_str_equal (def->id, "name"))
        g_object_set (renderer, "weight", PANGO_WEIGHT_BOLD, NULL);
      if (g_str_equal (def->id, "notes"))
        g_object_set (renderer, "width-chars", 24, NULL);
    }
  return column;
}

/* The view made its models again (a full list into an empty view): the tree view shows the
 * new ones, sorted as before. */
static void
on_model_replaced (QmQubeView *view,
                   QmWindow   *self)
{
  g_signal_handlers_disconnect_by_func (self->model, on_sort_changed, self);
  self->model = qm_qube_view_get_model (view);
  gtk_tree_view_set_model (GTK_TREE_VIEW (self->tree_view), self->model);
  g_signal_connect (self->model, "sort-column-changed", G_CALLBACK (on_sort_changed), self);
}

/* One tree view column and one "win.col-<id>" action per column of the view's table, shown as
 * the settings say; the list sorted as they say. */
static void
add_columns (QmWindow *self)
{
  g_auto(GStrv) hidden = qm_prefs_get_strv ("hidden-columns");
  g_autofree gchar *sort_id = qm_prefs_get_string ("sort-column");
  const QmViewColumn *columns;
  guint i, n_columns;
  gint sort_index;

  columns = qm_qube_view_get_columns (&n_columns);
  self->columns = g_new0 (GtkTreeViewColumn *, n_columns);
  for (i = 0; i < n_columns; i++)
    {
      const QmViewColumn *def = &columns[i];
      gboolean visible = !g_strv_contains ((const gchar *const *) hidden, def->id);
      g_autofree gchar *action_name = g_strdup_printf ("col-%s", def->id);
      GSimpleAction *action;
      GtkWidget *button;

      self->columns[i] = create_column (self, def);
      gtk_tree_view_column_set_visible (self->columns[i], visible);
      if (g_str_equal (def->id, "notes"))
        qm_qube_store_set_notes_shown (self->store, visible);
      gtk_tree_view_column_set_sort_column_id (self->columns[i], (gint) i);
      qm_qube_view_set_column_searched (self->view, i, visible);
      gtk_tree_view_append_column (GTK_TREE_VIEW (self->tree_view), self->columns[i]);
      button = gtk_tree_view_column_get_button (self->columns[i]);
      if (button != NULL)
        g_signal_connect (button, "button-press-event", G_CALLBACK (on_header_button_press),
                          self);

      action = g_simple_action_new_stateful (action_name, NULL, g_variant_new_boolean (visible));
      g_signal_connect (action, "change-state", G_CALLBACK (change_column_state), self);
      g_action_map_add_action (G_ACTION_MAP (self), G_ACTION (action));
      g_object_unref (action);
    }
  sort_index = qm_qube_view_column_index (sort_id);
  gtk_tree_sortable_set_sort_column_id (GTK_TREE_SORTABLE (self->model),
                                        sort_index >= 0 ? sort_index
                                                        : qm_qube_view_column_index ("name"),
                                        qm_prefs_get_boolean ("sort-descending")
                                        ? GTK_SORT_DESCENDING : GTK_SORT_ASCENDING);
  g_signal_connect (self->model, "sort-column-changed", G_CALLBACK (on_sort_changed), self);
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

  if (!gtk_tree_model_get_iter (self->model, &iter, path))
    return;
  gtk_tree_model_get (self->model, &iter, QM_COL_PATH, &object_path, QM_COL_NAME, &name,
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

/* issue 17: the Backup and Restore windows (qm-backup-dialog.c, qm-restore-dialog.c) */
static void
backup_activated (GSimpleAction *action,
                  GVariant      *parameter,
                  gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  gtk_widget_show (GTK_WIDGET (qm_backup_dialog_new (GTK_WINDOW (self), self->client)));
}

static void
restore_activated (GSimpleAction *action,
                   GVariant      *parameter,
                   gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  gtk_widget_show (GTK_WIDGET (qm_restore_dialog_new (GTK_WINDOW (self), self->client)));
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

/* The settings of a qube given by its path (the New Qube dialog's "open the settings"): the
 * list may not know the qube yet (a user without broadcasts reads it after an event), so they
 * open when it does, if that is within a few seconds. */
static void
open_settings_activated (GSimpleAction *action,
                         GVariant      *parameter,
                         gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *path = g_variant_get_string (parameter, NULL);

  g_clear_pointer (&self->settings_wanted, g_free);
  if (qm_client_lookup_domain (self->client, path) != NULL)
    {
      open_settings (self, path);
      return;
    }
  self->settings_wanted = g_strdup (path);
  self->settings_wanted_until = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
}

static void
logs_activated (GSimpleAction *action,
                GVariant      *parameter,
                gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autoptr(GPtrArray) selection = selected_qubes (self);

  if (selection->len != 1)
    return;
  gtk_window_present (GTK_WINDOW (qm_log_window_new (GTK_WINDOW (self),
                                                     ((Selected *) selection->pdata[0])->name)));
}

static void
global_settings_activated (GSimpleAction *action,
                           GVariant      *parameter,
                           gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  /* one at a time: a second would apply what the first does not show */
  if (self->global_settings == NULL)
    {
      self->global_settings = GTK_WIDGET (qm_global_settings_new (GTK_WINDOW (self),
                                                                  self->client));
      g_object_add_weak_pointer (G_OBJECT (self->global_settings),
                                 (gpointer *) &self->global_settings);
    }
  gtk_window_present (GTK_WINDOW (self->global_settings));
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

/* devices: dom0's block devices for the selected qube (qm-block-dialog.c) */
static void
devices_activated (GSimpleAction *action,
                   GVariant      *parameter,
                   gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autofree gchar *path = selected_path (self);
  GtkWidget *dialog = path != NULL ? qm_block_dialog_new (GTK_WINDOW (self), self->client, path)
                                   : NULL;

  if (dialog != NULL)
    gtk_window_present (GTK_WINDOW (dialog));
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
console_activated (GSimpleAction *action,
                   GVariant      *parameter,
                   gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  g_autoptr(GPtrArray) selection = selected_qubes (self);
  Selected *sel;

  if (selection->len != 1)
    return;
  sel = selection->pdata[0];
  qm_console_open (GTK_WINDOW (self), self->client, sel->path, sel->name, self->cancellable);
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

  g_simple_action_set_state (action, state);
  qm_prefs_set_boolean ("show-internal", g_variant_get_boolean (state));
  qm_qube_view_set_show_internal (self->view, g_variant_get_boolean (state));
  refiltered (self);
}

static void
change_filter (GSimpleAction *action,
               GVariant      *state,
               gpointer       user_data)
{
  QmWindow *self = QM_WINDOW (user_data);
  const gchar *filter = g_variant_get_string (state, NULL);
  g_autoptr(GVariant) current = g_action_get_state (G_ACTION (action));

  if (g_variant_equal (current, state))
    return;
  g_simple_action_set_state (action, state);
  qm_prefs_set_string ("filter", filter);
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->filter_combo), filter);
  qm_qube_view_set_filter (self->view, filter);
  refiltered (self);
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
  g_menu_append (section, _("_Block Devices\u2026"), "win.devices");
  g_menu_append (section, _("_Clone\u2026"), "win.clone");
  g_menu_append (section, _("_Remove\u2026"), "win.remove");
  g_menu_append (section, _("Open _console"), "win.console");
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
  section = g_menu_new ();
  g_menu_append (section, _("_Logs"), "win.logs");
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

  if (!gtk_tree_model_get_iter (self->model, &iter, path))
    return;
  gtk_tree_model_get (self->model, &iter, QM_COL_PATH, &object_path, -1);
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
  const QmViewChoice *choices;
  guint i, n;

  menu = g_menu_new ();
  section = g_menu_new ();
  g_menu_append (section, _("_New Qube\u2026"), "win.create");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (section));
  g_object_unref (section);
  section = g_menu_new ();
  g_menu_append (section, _("_Back Up Qubes\u2026"), "win.backup");
  g_menu_append (section, _("Re_store Qubes\u2026"), "win.restore");
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
  choices = qm_qube_view_get_filters (&n);
  for (i = 0; i < n; i++)
    {
      g_autoptr(GMenuItem) item = g_menu_item_new (_(choices[i].title), NULL);

      g_menu_item_set_action_and_target (item, "win.filter", "s", choices[i].id);
      g_menu_append_item (submenu, item);
    }
  g_menu_append_submenu (menu, _("_Show"), G_MENU_MODEL (submenu));
  g_object_unref (submenu);
  submenu = g_menu_new ();
  choices = qm_qube_view_get_groupings (&n);
  for (i = 0; i < n; i++)
    {
      g_autoptr(GMenuItem) item = g_menu_item_new (_(choices[i].title), NULL);

      g_menu_item_set_action_and_target (item, "win.group-by", "s", choices[i].id);
      g_menu_append_item (submenu, item);
    }
  g_menu_append_submenu (menu, _("_Group by"), G_MENU_MODEL (submenu));
  g_object_unref (submenu);
  g_menu_append_submenu (menu, _("_Columns"), columns);
  g_menu_append_submenu (bar, _("_View"), G_MENU_MODEL (menu));
  g_object_unref (menu);

  menu = g_menu_new ();
  g_menu_append (menu, _("_Global Settings"), "win.global-settings");
  g_menu_append_submenu (bar, _("_System"), G_MENU_MODEL (menu));
  g_object_unref (menu);

  return G_MENU_MODEL (bar);
}

static const GActionEntry win_entries[] = {
  { "create", create_activated, NULL, NULL, NULL, { 0 } },
  { "remove", remove_activated, NULL, NULL, NULL, { 0 } },
  { "clone", clone_activated, NULL, NULL, NULL, { 0 } },
  { "console", console_activated, NULL, NULL, NULL, { 0 } },
  { "settings", settings_activated, NULL, NULL, NULL, { 0 } },
  { "open-settings", open_settings_activated, "o", NULL, NULL, { 0 } },
  { "logs", logs_activated, NULL, NULL, NULL, { 0 } },
  { "global-settings", global_settings_activated, NULL, NULL, NULL, { 0 } },
  { "devices", devices_activated, NULL, NULL, NULL, { 0 } },
  { "backup", backup_activated, NULL, NULL, NULL, { 0 } },
  { "restore", restore_activated, NULL, NULL, NULL, { 0 } },
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
usage_timer_cb (gpointer user_data)
{
  QmWindow *self = QM_WINDOW (user_data);

  if (self->client != NULL)
    qm_client_refresh_disk_usage (self->client, NULL);
  return G_SOURCE_CONTINUE;
}

static void
on_active_changed (QmWindow   *self,
                   GParamSpec *pspec,
                   gpointer    user_data)
{
  gboolean active = gtk_window_is_active (GTK_WINDOW (self));

  if (self->usage_timer != 0)
    g_source_remove (self->usage_timer);
  self->usage_timer = g_timeout_add_seconds (active ? USAGE_INTERVAL_ACTIVE_S
                                                    : USAGE_INTERVAL_INACTIVE_S,
                                             usage_timer_cb, self);
  if (active && self->client != NULL)
    qm_client_refresh_disk_usage (self->client, NULL);
}

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

static void
set_action_state (QmWindow    *self,
                  const gchar *name,
                  GVariant    *state)
{
  g_simple_action_set_state (G_SIMPLE_ACTION (g_action_map_lookup_action (G_ACTION_MAP (self),
                                                                           name)),
                             state);
}

/* What the settings say: View > Show, Group by and Show internal qubes, the window's size. */
static void
load_prefs (QmWindow *self)
{
  g_autofree gchar *filter = qm_prefs_get_string ("filter");
  g_autofree gchar *group_by = qm_prefs_get_string ("group-by");
  gboolean show_internal = qm_prefs_get_boolean ("show-internal");
  gint width = qm_prefs_get_int ("window-width");
  gint height = qm_prefs_get_int ("window-height");
  const gchar *filter_id = filter[0] != '\0' ? filter : "all";

  gtk_window_set_default_size (GTK_WINDOW (self), width > 200 ? width : 1200,
                               height > 150 ? height : 640);

  /* The actions first: the combo boxes then tell them what they already know. */
  qm_qube_view_set_group_by (self->view, group_by);
  qm_qube_view_set_filter (self->view, filter_id);
  qm_qube_view_set_show_internal (self->view, show_internal);
  set_action_state (self, "group-by",
                    g_variant_new_string (qm_qube_view_get_group_by (self->view)));
  set_action_state (self, "filter", g_variant_new_string (filter_id));
  set_action_state (self, "show-internal", g_variant_new_boolean (show_internal));

  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->filter_combo), filter_id);
  if (gtk_combo_box_get_active (GTK_COMBO_BOX (self->filter_combo)) < 0)
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->filter_combo), "all");
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->group_combo),
                               qm_qube_view_get_group_by (self->view));
  gtk_tree_view_set_show_expanders (GTK_TREE_VIEW (self->tree_view), is_grouped (self));
}

QmWindow *
qm_window_new (GtkApplication *application,
               QmClient       *client)
{
  QmWindow *self = g_object_new (QM_TYPE_WINDOW, "application", application, NULL);

  self->client = g_object_ref (client);
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
  /* the window may outlive this one a moment (calls in flight hold it) */
  if (self->global_settings != NULL)
    g_object_remove_weak_pointer (G_OBJECT (self->global_settings),
                                  (gpointer *) &self->global_settings);
  self->global_settings = NULL;
  if (self->usage_timer != 0)
    g_source_remove (self->usage_timer);
  self->usage_timer = 0;
  G_OBJECT_CLASS (qm_window_parent_class)->dispose (object);
}

static void
qm_window_finalize (GObject *object)
{
  QmWindow *self = QM_WINDOW (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->view);
  g_clear_object (&self->store);
  g_clear_object (&self->client);
  g_hash_table_unref (self->collapsed);
  g_free (self->columns);
  g_free (self->settings_wanted);
  G_OBJECT_CLASS (qm_window_parent_class)->finalize (object);
}

static void
qm_window_init (QmWindow *self)
{
  const QmViewChoice *choices;
  guint i, n;

  self->cancellable = g_cancellable_new ();
  self->settings_windows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->collapsed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_action_map_add_action_entries (G_ACTION_MAP (self), win_entries, G_N_ELEMENTS (win_entries),
                                   self);

  gtk_widget_init_template (GTK_WIDGET (self));

  choices = qm_qube_view_get_filters (&n);
  for (i = 0; i < n; i++)
    gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->filter_combo), choices[i].id,
                               _(choices[i].title));
  choices = qm_qube_view_get_groupings (&n);
  for (i = 0; i < n; i++)
    gtk_combo_box_text_append (GTK_COMBO_BOX_TEXT (self->group_combo), choices[i].id,
                               _(choices[i].title));

  self->store = qm_qube_store_new ();
  self->view = qm_qube_view_new (self->store);
  self->model = qm_qube_view_get_model (self->view);
  gtk_tree_view_set_model (GTK_TREE_VIEW (self->tree_view), self->model);
  g_signal_connect (self->view, "model-replaced", G_CALLBACK (on_model_replaced), self);
  gtk_tree_view_set_search_column (GTK_TREE_VIEW (self->tree_view), QM_COL_NAME);
  gtk_tree_selection_set_select_function (
    gtk_tree_view_get_selection (GTK_TREE_VIEW (self->tree_view)), select_qubes_only, NULL, NULL);
  add_columns (self);
  gtk_tree_view_set_expander_column (GTK_TREE_VIEW (self->tree_view),
                                     self->columns[qm_qube_view_column_index ("name")]);
  /* Every row is as high as the others, every column of fixed width (create_column()). */
  gtk_tree_view_set_fixed_height_mode (GTK_TREE_VIEW (self->tree_view), TRUE);
  load_prefs (self);
  g_signal_connect (self, "notify::is-active", G_CALLBACK (on_active_changed), NULL);
  on_active_changed (self, NULL, NULL);
}

static void
qm_window_class_init (QmWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  guint i;

  object_class->dispose = qm_window_dispose;
  object_class->finalize = qm_window_finalize;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-window.ui");
  gtk_widget_class_bind_template_child (widget_class, QmWindow, stack);
  gtk_widget_class_bind_template_child (widget_class, QmWindow, tree_view);
  gtk_widget_class_bind_template_child (widget_class, QmWindow, search_entry);
  gtk_widget_class_bind_template_child (widget_class, QmWindow, filter_combo);
  gtk_widget_class_bind_template_child (widget_class, QmWindow, group_combo);
  gtk_widget_class_bind_template_child (widget_class, QmWindow, status_label);
  gtk_widget_class_bind_template_child (widget_class, QmWindow, message_title);
  gtk_widget_class_bind_template_child (widget_class, QmWindow, message_body);
  for (i = 0; i < G_N_ELEMENTS (lifecycle_defs); i++)
    gtk_widget_class_bind_template_child_full (widget_class, lifecycle_defs[i].ui_id, FALSE,
                                               G_STRUCT_OFFSET (QmWindow, lifecycle_buttons)
                                               + i * sizeof (GtkWidget *));

  gtk_widget_class_bind_template_callback (widget_class, on_delete_event);
  gtk_widget_class_bind_template_callback (widget_class, on_search_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_filter_combo_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_group_combo_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_row_folded);
  gtk_widget_class_bind_template_callback (widget_class, on_tree_button_press);
  gtk_widget_class_bind_template_callback (widget_class, on_tree_popup_menu);
  gtk_widget_class_bind_template_callback (widget_class, on_tree_key_press);
  gtk_widget_class_bind_template_callback (widget_class, on_row_activated);
  gtk_widget_class_bind_template_callback (widget_class, on_selection_changed);
}
