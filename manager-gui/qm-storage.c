/* qm-storage.c: the storage pools and the installed kernels, as qubesd lists them
 *
 * The kernels a qube can boot are the volumes of the linux-kernel pools (upstream's
 * /var/lib/qubes/vm-kernels/VERSION); the settings window, the global settings and the New
 * Qube dialog offer them and the pools from one load.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-storage.h"

#define MANAGER_INTERFACE QM_INTERFACE_PREFIX "Manager"
#define POOL_INTERFACE QM_INTERFACE_PREFIX "Pool"

static void
pool_free (gpointer data)
{
  QmPool *pool = data;

  g_free (pool->name);
  g_free (pool->driver);
  g_free (pool);
}

void
qm_storage_free (QmStorage *storage)
{
  if (storage == NULL)
    return;
  g_ptr_array_unref (storage->pools);
  g_ptr_array_unref (storage->kernels);
  g_free (storage);
}

gboolean
qm_pool_holds_images (const QmPool *pool)
{
  return g_strcmp0 (pool->driver, QM_KERNEL_POOL_DRIVER) != 0;
}

typedef struct
{
  QmStorage *storage;
  guint      pending;  /* ListVolumes calls in flight */
  GError    *error;    /* the first failure */
} LoadData;

static void
load_data_free (gpointer data)
{
  LoadData *load = data;

  qm_storage_free (load->storage);
  g_clear_error (&load->error);
  g_free (load);
}

static gint
compare_versions (gconstpointer a,
                  gconstpointer b)
{
  return strverscmp (*(const gchar *const *) a, *(const gchar *const *) b);
}

static void
load_finish (GTask *task)
{
  LoadData *load = g_task_get_task_data (task);
  guint i;

  if (load->error != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&load->error));
      return;
    }
  g_ptr_array_sort (load->storage->kernels, compare_versions);
  /* two kernel pools may hold the same version: once is enough */
  for (i = 1; i < load->storage->kernels->len;)
    if (g_str_equal (load->storage->kernels->pdata[i], load->storage->kernels->pdata[i - 1]))
      g_ptr_array_remove_index (load->storage->kernels, i);
    else
      i++;
  g_task_return_pointer (task, g_steal_pointer (&load->storage),
                         (GDestroyNotify) qm_storage_free);
}

static void
volumes_listed (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LoadData *load = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);

  if (reply != NULL)
    {
      g_autoptr(GVariantIter) iter = NULL;
      const gchar *vid;

      g_variant_get (reply, "(as)", &iter);
      while (g_variant_iter_next (iter, "&s", &vid))
        if (vid[0] != '\0')
          g_ptr_array_add (load->storage->kernels, g_strdup (vid));
    }
  else if (load->error == NULL)
    load->error = g_steal_pointer (&error);
  if (--load->pending == 0)
    load_finish (task);
}

static void
pools_listed (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LoadData *load = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);
  g_autoptr(GVariantIter) iter = NULL;
  const gchar *name, *driver, *path;

  if (reply == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_variant_get (reply, "(a(sso))", &iter);
  while (g_variant_iter_next (iter, "(&s&s&o)", &name, &driver, &path))
    {
      QmPool *pool = g_new0 (QmPool, 1);

      pool->name = g_strdup (name);
      pool->driver = g_strdup (driver);
      g_ptr_array_add (load->storage->pools, pool);
      if (g_str_equal (driver, QM_KERNEL_POOL_DRIVER))
        {
          load->pending++;
          g_dbus_connection_call (G_DBUS_CONNECTION (source), QM_BUS_NAME, path, POOL_INTERFACE,
                                  "ListVolumes", NULL, G_VARIANT_TYPE ("(as)"),
                                  G_DBUS_CALL_FLAGS_NONE, -1, g_task_get_cancellable (task),
                                  volumes_listed, g_object_ref (task));
        }
    }
  if (load->pending == 0)
    load_finish (task);
}

void
qm_storage_load_async (QmClient            *client,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  GTask *task = g_task_new (client, cancellable, callback, user_data);
  LoadData *load = g_new0 (LoadData, 1);
  GDBusConnection *connection = qm_client_get_connection (client);

  load->storage = g_new0 (QmStorage, 1);
  load->storage->pools = g_ptr_array_new_with_free_func (pool_free);
  load->storage->kernels = g_ptr_array_new_with_free_func (g_free);
  g_task_set_task_data (task, load, load_data_free);
  g_task_set_source_tag (task, qm_storage_load_async);
  if (connection == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                               _("Not connected to qubesd"));
      g_object_unref (task);
      return;
    }
  g_dbus_connection_call (connection, QM_BUS_NAME, QM_ROOT_PATH, MANAGER_INTERFACE, "ListPools",
                          NULL, G_VARIANT_TYPE ("(a(sso))"), G_DBUS_CALL_FLAGS_NONE, -1,
                          cancellable, pools_listed, task);
}

QmStorage *
qm_storage_load_finish (GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (G_IS_TASK (result), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
