/* qm-features-page.c: the Features page of a qube's settings
 *
 * The qube's features but the service.* ones (the Services page has those), as an editable
 * list. Apply removes the features that left the list and sets the ones that are new or
 * changed; a row with an empty name is ignored.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "qm-features-page.h"

#define SERVICE_PREFIX "service."

enum
{
  COL_NAME,
  COL_VALUE,
};

struct _QmFeaturesPage
{
  QmSettingsPage  parent_instance;

  /* template children */
  GtkListStore   *features_store;
  GtkWidget      *features_view;

  GHashTable     *orig;          /* name -> value, as read */
};

G_DEFINE_TYPE (QmFeaturesPage, qm_features_page, QM_TYPE_SETTINGS_PAGE)

static void
edited (QmFeaturesPage *self,
        const gchar    *path_string,
        gint            column,
        const gchar    *new_text)
{
  GtkTreeIter iter;

  if (gtk_tree_model_get_iter_from_string (GTK_TREE_MODEL (self->features_store), &iter,
                                           path_string))
    gtk_list_store_set (self->features_store, &iter, column, new_text, -1);
}

static void
on_name_edited (GtkCellRendererText *renderer,
                gchar               *path_string,
                gchar               *new_text,
                QmFeaturesPage      *self)
{
  edited (self, path_string, COL_NAME, new_text);
}

static void
on_value_edited (GtkCellRendererText *renderer,
                 gchar               *path_string,
                 gchar               *new_text,
                 QmFeaturesPage      *self)
{
  edited (self, path_string, COL_VALUE, new_text);
}

static void
on_add_feature (QmFeaturesPage *self)
{
  GtkTreeIter iter;
  g_autoptr(GtkTreePath) path = NULL;

  gtk_list_store_insert_with_values (self->features_store, &iter, -1, COL_NAME, "", COL_VALUE,
                                     "", -1);
  path = gtk_tree_model_get_path (GTK_TREE_MODEL (self->features_store), &iter);
  gtk_tree_view_set_cursor (GTK_TREE_VIEW (self->features_view), path,
                            gtk_tree_view_get_column (GTK_TREE_VIEW (self->features_view), 0),
                            TRUE);
}

static void
on_remove_feature (QmFeaturesPage *self)
{
  GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->features_view));
  GtkTreeIter iter;

  if (gtk_tree_selection_get_selected (selection, NULL, &iter))
    gtk_list_store_remove (self->features_store, &iter);
}

static void
qm_features_page_load (QmSettingsPage *page)
{
  QmFeaturesPage *self = QM_FEATURES_PAGE (page);
  QmObject *qube = qm_settings_page_get_qube (page);
  GVariant *features = qube != NULL ? qm_object_get_value (qube, "Domain", "Features",
                                                           G_VARIANT_TYPE ("a{ss}"))
                                    : NULL;
  GVariantIter iter;
  const gchar *name, *value;

  g_hash_table_remove_all (self->orig);
  gtk_list_store_clear (self->features_store);
  if (features != NULL)
    {
      g_variant_iter_init (&iter, features);
      while (g_variant_iter_next (&iter, "{&s&s}", &name, &value))
        if (!g_str_has_prefix (name, SERVICE_PREFIX))
          {
            g_hash_table_insert (self->orig, g_strdup (name), g_strdup (value));
            gtk_list_store_insert_with_values (self->features_store, NULL, -1, COL_NAME, name,
                                               COL_VALUE, value, -1);
          }
    }
  qm_settings_page_loaded (page, NULL);
}

static void
qm_features_page_apply (QmSettingsPage  *page,
                        QmSettingsCalls *calls)
{
  QmFeaturesPage *self = QM_FEATURES_PAGE (page);
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

      gtk_tree_model_get (model, &iter, COL_NAME, &name, COL_VALUE, &val, -1);
      if (name == NULL || name[0] == '\0')
        {
          g_free (name);
          g_free (val);
          continue;
        }
      g_hash_table_insert (wanted, name, val != NULL ? val : g_strdup (""));
    }

  g_hash_table_iter_init (&hiter, self->orig);
  while (g_hash_table_iter_next (&hiter, &key, NULL))
    if (!g_hash_table_contains (wanted, key))
      {
        g_autofree gchar *what = g_strdup_printf (_("Cannot remove the feature %s"),
                                                  (gchar *) key);

        qm_settings_calls_add (calls, NULL, NULL, "RemoveFeature", g_variant_new ("(s)", key),
                               what);
      }
  g_hash_table_iter_init (&hiter, wanted);
  while (g_hash_table_iter_next (&hiter, &key, &value))
    {
      const gchar *orig = g_hash_table_lookup (self->orig, key);

      if (orig == NULL || g_strcmp0 (orig, value) != 0)
        {
          g_autofree gchar *what = g_strdup_printf (_("Cannot set the feature %s"),
                                                    (gchar *) key);

          qm_settings_calls_add (calls, NULL, NULL, "SetFeature",
                                 g_variant_new ("(ss)", key, value), what);
        }
    }
}

static void
qm_features_page_finalize (GObject *object)
{
  QmFeaturesPage *self = QM_FEATURES_PAGE (object);

  g_hash_table_unref (self->orig);
  G_OBJECT_CLASS (qm_features_page_parent_class)->finalize (object);
}

static void
qm_features_page_init (QmFeaturesPage *self)
{
  self->orig = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gtk_widget_init_template (GTK_WIDGET (self));
}

static void
qm_features_page_class_init (QmFeaturesPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  QmSettingsPageClass *page_class = QM_SETTINGS_PAGE_CLASS (klass);

  object_class->finalize = qm_features_page_finalize;
  page_class->load = qm_features_page_load;
  page_class->apply = qm_features_page_apply;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-features-page.ui");
  gtk_widget_class_bind_template_child (widget_class, QmFeaturesPage, features_store);
  gtk_widget_class_bind_template_child (widget_class, QmFeaturesPage, features_view);
  gtk_widget_class_bind_template_callback (widget_class, on_name_edited);
  gtk_widget_class_bind_template_callback (widget_class, on_value_edited);
  gtk_widget_class_bind_template_callback (widget_class, on_add_feature);
  gtk_widget_class_bind_template_callback (widget_class, on_remove_feature);
}
