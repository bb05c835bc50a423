/* qm-services-page.c: the Services page of a qube's settings
 *
 * A check box per feature named service.NAME: ticked when its value is not empty. Apply sets
 * service.NAME to "1" or "" where that differs from what was read; services are never removed
 * (unticked is the explicit "off").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-services-page.h"

#define PREFIX "service."

struct _QmServicesPage
{
  QmSettingsPage  parent_instance;

  /* template children */
  GtkWidget      *services_box;
  GtkWidget      *service_entry;

  GHashTable     *services;      /* service name -> GtkCheckButton */
  GHashTable     *orig;          /* feature name (service.NAME) -> value, as read */
};

G_DEFINE_TYPE (QmServicesPage, qm_services_page, QM_TYPE_SETTINGS_PAGE)

static void
add_service_row (QmServicesPage *self,
                 const gchar    *service,
                 gboolean        enabled)
{
  GtkWidget *check = g_hash_table_lookup (self->services, service);

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
on_add_service (QmServicesPage *self)
{
  const gchar *service = gtk_entry_get_text (GTK_ENTRY (self->service_entry));

  if (service[0] == '\0')
    return;
  add_service_row (self, service, TRUE);
  gtk_entry_set_text (GTK_ENTRY (self->service_entry), "");
}

static void
qm_services_page_load (QmSettingsPage *page)
{
  QmServicesPage *self = QM_SERVICES_PAGE (page);
  QmObject *qube = qm_settings_page_get_qube (page);
  GVariant *features = qube != NULL ? qm_object_get_value (qube, "Domain", "Features",
                                                           G_VARIANT_TYPE ("a{ss}"))
                                    : NULL;
  GHashTableIter hiter;
  gpointer check;
  GVariantIter iter;
  const gchar *name, *value;

  g_hash_table_remove_all (self->orig);
  g_hash_table_iter_init (&hiter, self->services);
  while (g_hash_table_iter_next (&hiter, NULL, &check))
    gtk_widget_destroy (check);
  g_hash_table_remove_all (self->services);
  if (features != NULL)
    {
      g_variant_iter_init (&iter, features);
      while (g_variant_iter_next (&iter, "{&s&s}", &name, &value))
        if (g_str_has_prefix (name, PREFIX))
          {
            g_hash_table_insert (self->orig, g_strdup (name), g_strdup (value));
            add_service_row (self, name + strlen (PREFIX), value[0] != '\0');
          }
    }
  qm_settings_page_loaded (page, NULL);
}

static void
qm_services_page_apply (QmSettingsPage  *page,
                        QmSettingsCalls *calls)
{
  QmServicesPage *self = QM_SERVICES_PAGE (page);
  GHashTableIter hiter;
  gpointer key, check;

  g_hash_table_iter_init (&hiter, self->services);
  while (g_hash_table_iter_next (&hiter, &key, &check))
    {
      g_autofree gchar *name = g_strconcat (PREFIX, key, NULL);
      const gchar *value = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (check)) ? "1" : "";
      const gchar *orig = g_hash_table_lookup (self->orig, name);

      if (orig == NULL || g_strcmp0 (orig, value) != 0)
        {
          g_autofree gchar *what = g_strdup_printf (_("Cannot set the feature %s"), name);

          qm_settings_calls_add (calls, NULL, NULL, "SetFeature",
                                 g_variant_new ("(ss)", name, value), what);
        }
    }
}

static void
qm_services_page_finalize (GObject *object)
{
  QmServicesPage *self = QM_SERVICES_PAGE (object);

  g_hash_table_unref (self->services);
  g_hash_table_unref (self->orig);
  G_OBJECT_CLASS (qm_services_page_parent_class)->finalize (object);
}

static void
qm_services_page_init (QmServicesPage *self)
{
  self->services = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->orig = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gtk_widget_init_template (GTK_WIDGET (self));
}

static void
qm_services_page_class_init (QmServicesPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  QmSettingsPageClass *page_class = QM_SETTINGS_PAGE_CLASS (klass);

  object_class->finalize = qm_services_page_finalize;
  page_class->load = qm_services_page_load;
  page_class->apply = qm_services_page_apply;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-services-page.ui");
  gtk_widget_class_bind_template_child (widget_class, QmServicesPage, services_box);
  gtk_widget_class_bind_template_child (widget_class, QmServicesPage, service_entry);
  gtk_widget_class_bind_template_callback (widget_class, on_add_service);
}
