/* qm-object.c: one object of qubesd as the Qube Manager last saw it
 *
 * A GDBusProxy per interface costs a GObject, a property cache and a lock each: with 300 qubes
 * and their volumes that was ~7,800 proxies built before the first row. This is one GObject per
 * object and one table per interface, filled from GetManagedObjects and the signals by QmClient.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "qm-object.h"

/* One interface's properties: the a{sv} as received, made a table on the first read (most
 * Volume objects are never read but for one figure). */
typedef struct
{
  GVariant   *dict;
  GHashTable *table; /* property name -> GVariant */
} Interface;

struct _QmObject
{
  GObject     parent_instance;

  gchar      *path;
  GHashTable *interfaces; /* short interface name -> Interface */
};

G_DEFINE_TYPE (QmObject, qm_object, G_TYPE_OBJECT)

static void
interface_free (gpointer data)
{
  Interface *iface = data;

  g_clear_pointer (&iface->dict, g_variant_unref);
  g_clear_pointer (&iface->table, g_hash_table_unref);
  g_free (iface);
}

static GHashTable *
interface_table (Interface *iface)
{
  gsize i, n;

  if (iface->table != NULL)
    return iface->table;
  iface->table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) g_variant_unref);
  /* By index rather than with a format string: this runs ~15,000 times at start-up. */
  n = g_variant_n_children (iface->dict);
  for (i = 0; i < n; i++)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (iface->dict, i);
      g_autoptr(GVariant) key = g_variant_get_child_value (entry, 0);
      g_autoptr(GVariant) boxed = g_variant_get_child_value (entry, 1);

      g_hash_table_insert (iface->table, g_variant_dup_string (key, NULL),
                           g_variant_get_variant (boxed));
    }
  g_clear_pointer (&iface->dict, g_variant_unref);
  return iface->table;
}

static GHashTable *
lookup_table (QmObject    *self,
              const gchar *interface)
{
  Interface *iface = g_hash_table_lookup (self->interfaces, interface);

  return iface != NULL ? interface_table (iface) : NULL;
}

QmObject *
qm_object_new (const gchar *path)
{
  QmObject *self = g_object_new (QM_TYPE_OBJECT, NULL);

  self->path = g_strdup (path);
  return self;
}

void
qm_object_set_interface (QmObject    *self,
                         const gchar *interface,
                         GVariant    *properties)
{
  Interface *iface = g_new0 (Interface, 1);

  iface->dict = g_variant_ref (properties);
  /* Interface names come from the contract: a small set, interned once. */
  g_hash_table_insert (self->interfaces, (gpointer) g_intern_string (interface), iface);
}

void
qm_object_remove_interface (QmObject    *self,
                            const gchar *interface)
{
  g_hash_table_remove (self->interfaces, interface);
}

gboolean
qm_object_is_empty (QmObject *self)
{
  return g_hash_table_size (self->interfaces) == 0;
}

const gchar **
qm_object_list_interfaces (QmObject *self,
                           guint    *out_n)
{
  return (const gchar **) g_hash_table_get_keys_as_array (self->interfaces, out_n);
}

gboolean
qm_object_update (QmObject           *self,
                  const gchar        *interface,
                  GVariant           *changed,
                  const gchar *const *invalidated)
{
  GHashTable *table = lookup_table (self, interface);
  GVariantIter iter;
  gchar *name;
  GVariant *value;
  guint i;

  if (table == NULL)
    return FALSE;
  g_variant_iter_init (&iter, changed);
  while (g_variant_iter_next (&iter, "{sv}", &name, &value))
    g_hash_table_insert (table, name, value);
  for (i = 0; invalidated != NULL && invalidated[i] != NULL; i++)
    g_hash_table_remove (table, invalidated[i]);
  return TRUE;
}

gboolean
qm_object_set_value (QmObject    *self,
                     const gchar *interface,
                     const gchar *property,
                     GVariant    *value,
                     gboolean     overwrite)
{
  GHashTable *table = lookup_table (self, interface);

  /* taken: a floating value or the caller's reference */
  g_variant_take_ref (value);
  if (table == NULL || (!overwrite && g_hash_table_contains (table, property)))
    {
      g_variant_unref (value);
      return FALSE;
    }
  g_hash_table_insert (table, g_strdup (property), value);
  return TRUE;
}

const gchar *
qm_object_get_path (QmObject *self)
{
  return self->path;
}

gboolean
qm_object_has_interface (QmObject    *self,
                         const gchar *interface)
{
  return g_hash_table_contains (self->interfaces, interface);
}

GVariant *
qm_object_get_value (QmObject           *self,
                     const gchar        *interface,
                     const gchar        *property,
                     const GVariantType *type)
{
  GHashTable *table = lookup_table (self, interface);
  GVariant *value = table != NULL ? g_hash_table_lookup (table, property) : NULL;

  /* A daemon newer than this contract may change a type: absent rather than a crash. */
  if (value == NULL || (type != NULL && !g_variant_is_of_type (value, type)))
    return NULL;
  return value;
}

const gchar *
qm_object_get_string (QmObject    *self,
                      const gchar *interface,
                      const gchar *property)
{
  GVariant *value = qm_object_get_value (self, interface, property, NULL);

  if (value == NULL
      || !(g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
           || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH)))
    return NULL;
  return g_variant_get_string (value, NULL);
}

gboolean
qm_object_get_boolean (QmObject    *self,
                       const gchar *interface,
                       const gchar *property)
{
  GVariant *value = qm_object_get_value (self, interface, property, G_VARIANT_TYPE_BOOLEAN);

  return value != NULL && g_variant_get_boolean (value);
}

gint32
qm_object_get_int32 (QmObject    *self,
                     const gchar *interface,
                     const gchar *property)
{
  GVariant *value = qm_object_get_value (self, interface, property, G_VARIANT_TYPE_INT32);

  return value != NULL ? g_variant_get_int32 (value) : 0;
}

gint64
qm_object_get_int64 (QmObject    *self,
                     const gchar *interface,
                     const gchar *property)
{
  GVariant *value = qm_object_get_value (self, interface, property, G_VARIANT_TYPE_INT64);

  return value != NULL ? g_variant_get_int64 (value) : 0;
}

guint64
qm_object_get_uint64 (QmObject    *self,
                      const gchar *interface,
                      const gchar *property)
{
  GVariant *value = qm_object_get_value (self, interface, property, G_VARIANT_TYPE_UINT64);

  return value != NULL ? g_variant_get_uint64 (value) : 0;
}

static void
qm_object_finalize (GObject *object)
{
  QmObject *self = QM_OBJECT (object);

  g_free (self->path);
  g_hash_table_unref (self->interfaces);
  G_OBJECT_CLASS (qm_object_parent_class)->finalize (object);
}

static void
qm_object_init (QmObject *self)
{
  self->interfaces = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, interface_free);
}

static void
qm_object_class_init (QmObjectClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = qm_object_finalize;
}
