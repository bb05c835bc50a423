/* qm-qube-view.h: what the qube list shows of the store: grouped, filtered, searched, sorted
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-qube-store.h"

G_BEGIN_DECLS

/* The view's model has the store's columns (QmColumn) and these. */
enum
{
  QM_VIEW_COL_IS_GROUP = QM_N_COLUMNS, /* b: a group's header row */
  QM_VIEW_COL_IS_QUBE,                 /* b: a qube's row */
  QM_VIEW_COL_GROUP_KEY,               /* s: the header's group ("" for the "no ..." group) */
  QM_VIEW_COL_GROUP_ORDER,             /* i: headers sort by this, then by title */
  QM_VIEW_N_COLUMNS
};

typedef enum
{
  QM_SORT_TEXT,   /* as file names: work-2 before work-10 */
  QM_SORT_INT,
  QM_SORT_INT64,
  QM_SORT_BOOL,   /* shown as a check box */
} QmSortKind;

/* One column of the list. Its index in the table is its sort column id in the view's model. */
typedef struct
{
  const gchar *id;           /* in the settings (hidden-columns, sort-column) and "win.col-<id>" */
  const gchar *title;        /* untranslated, marked with N_() */
  gint         sort_column;  /* QmColumn */
  QmSortKind   sort_kind;
  gint         text_column;  /* what the cell shows and the search matches; -1 for none */
  gint         shown_column; /* what the cell shows when text_column is -1; 0 for none */
} QmViewColumn;

/* A choice of View > Show or View > Group by. */
typedef struct
{
  const gchar *id;           /* in the settings and the action's target */
  const gchar *title;        /* untranslated, marked with N_() */
} QmViewChoice;

const QmViewColumn *qm_qube_view_get_columns    (guint       *n_columns);
/* The index of the column with that id, or -1. */
gint                qm_qube_view_column_index   (const gchar *id);
const QmViewChoice *qm_qube_view_get_filters    (guint       *n_filters);
const QmViewChoice *qm_qube_view_get_groupings  (guint       *n_groupings);

#define QM_TYPE_QUBE_VIEW (qm_qube_view_get_type ())
G_DECLARE_FINAL_TYPE (QmQubeView, qm_qube_view, QM, QUBE_VIEW, GObject)

/* A view of store, flat ("none"), with every qube shown but the internal ones, unsorted. */
QmQubeView   *qm_qube_view_new                (GtkListStore *store);
/* What a GtkTreeView shows: a GtkTreeModelSort (sortable by column index) over a filter over
 * the grouped copy of the store. Owned by the view. */
GtkTreeModel *qm_qube_view_get_model          (QmQubeView   *self);

/* Brings the view in line with the store after qm_qube_store_update (): the rows of the qubes
 * whose object paths are in changed (a set), or every row if it is NULL. Only what differs
 * changes, so selection, folding and scroll position survive. */
void          qm_qube_view_sync               (QmQubeView   *self,
                                               GHashTable   *changed);

/* One of qm_qube_view_get_groupings ()'s ids. The rows are made again: FALSE (nothing done)
 * when the id is unknown or already the grouping. */
gboolean      qm_qube_view_set_group_by       (QmQubeView   *self,
                                               const gchar  *group_by);
const gchar  *qm_qube_view_get_group_by       (QmQubeView   *self);
/* One of qm_qube_view_get_filters ()'s ids. */
void          qm_qube_view_set_filter         (QmQubeView   *self,
                                               const gchar  *filter);
void          qm_qube_view_set_show_internal  (QmQubeView   *self,
                                               gboolean      show_internal);
/* Shows the qubes with text (case-folded) in one of the searched columns; "" shows all. */
void          qm_qube_view_set_search         (QmQubeView   *self,
                                               const gchar  *text);
/* Whether the search looks in a column (the window: the visible ones). None is at first. */
void          qm_qube_view_set_column_searched (QmQubeView  *self,
                                                guint        column,
                                                gboolean     searched);

/* The qubes shown, each once however many groups it is in. */
gint          qm_qube_view_count_shown        (QmQubeView   *self);
/* The rows of a qube in the view's model (several when grouped by tag), as GtkTreePaths; free
 * with g_list_free_full (list, (GDestroyNotify) gtk_tree_path_free). */
GList        *qm_qube_view_get_paths          (QmQubeView   *self,
                                               const gchar  *object_path);

G_END_DECLS
