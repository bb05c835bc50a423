/* qm-client.c: the Qube Manager's view of qubesd on one bus
 *
 * One GetManagedObjects (through GDBusObjectManagerClient) when qubesd appears, then signals
 * only: PropertiesChanged, InterfacesAdded/Removed and the Event signal. Everything that changes
 * marks the client dirty; "changed" is emitted at most every 100 ms, so that a storm of signals
 * costs the view one diff. What D-Bus properties cannot say (is a property at its default?) comes
 * from one Manager.GetAllDomainProperties for all qubes at start-up (one round trip instead of one
 * per qube), then from GetAllProperties of one qube when an Event says one of its properties was
 * set or reset. Figures that change all the time (CPU, memory) come from the Stats signal and are
 * kept here, never as properties; disk usage is the sum of the qube's Volume objects' Usage.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "qm-client.h"

#define FLUSH_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)
/* At most this many GetAllProperties in flight: the system bus limits pending replies per
 * connection (128 by default), and a daemon should not see 300 calls at once from one window. */
#define MAX_FETCHES_IN_FLIGHT 16

typedef struct
{
  gboolean is_default;
  gchar   *value;
} PropInfo;

typedef struct
{
  gdouble cpu_usage;
  guint64 memory_kb;
} Stats;

struct _QmClient
{
  GObject             parent_instance;

  GBusType            bus_type;
  gchar              *address;
  GDBusConnection    *connection;
  guint               watch_id;

  /* One per appearance of the name: cancelled when qubesd vanishes. */
  GCancellable       *generation;

  QmClientState       state;
  gchar              *error_message;
  GDBusObjectManager *object_manager;
  QmManager          *manager;
  gboolean            has_lifecycle;

  GHashTable         *props;        /* path -> GHashTable (property name -> PropInfo) */
  GHashTable         *in_flight;    /* path -> GINT_TO_POINTER (fetch again when done) */
  GQueue              fetch_queue;  /* paths (owned) */
  GHashTable         *queued;       /* path set, mirrors fetch_queue */
  gboolean            has_bulk;     /* the daemon has Manager.GetAllDomainProperties */
  gboolean            bulk_in_flight;
  gboolean            bulk_again;   /* a global default changed while it was in flight */
  GHashTable         *early_bulk;   /* its answer (name -> property table) when it came before
                                       the object manager */
  GHashTable         *early_events; /* paths whose properties changed before it was ready */
  guint               event_subscription;
  gboolean            early_snapshot; /* start_snapshot() ran before the name watcher spoke */

  GHashTable         *stats;        /* path -> Stats, from the last Stats signal */
  GHashTable         *disk_usage;   /* domain path -> guint64 bytes; NULL: recompute */

  guint               flush_id;
  gint64              last_flush;
  gboolean            loaded;
};

enum
{
  SIGNAL_CHANGED,
  SIGNAL_STATE_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (QmClient, qm_client, G_TYPE_OBJECT)

static void
prop_info_free (gpointer data)
{
  PropInfo *info = data;

  g_free (info->value);
  g_free (info);
}

static gboolean
is_domain_path (const gchar *path)
{
  return g_str_has_prefix (path, QM_DOMAIN_PATH_PREFIX)
         && strchr (path + strlen (QM_DOMAIN_PATH_PREFIX), '/') == NULL;
}

static gboolean
fetches_idle (QmClient *self)
{
  return !self->bulk_in_flight && g_hash_table_size (self->in_flight) == 0
         && g_queue_is_empty (&self->fetch_queue);
}

static gboolean
is_volume_path (const gchar *path)
{
  return g_str_has_prefix (path, QM_DOMAIN_PATH_PREFIX) && strstr (path, "/volume/") != NULL;
}

static void
invalidate_disk_usage (QmClient *self)
{
  g_clear_pointer (&self->disk_usage, g_hash_table_unref);
}

static gboolean
flush_cb (gpointer user_data)
{
  QmClient *self = QM_CLIENT (user_data);

  self->flush_id = 0;
  self->last_flush = g_get_monotonic_time ();
  if (self->state == QM_CLIENT_STATE_READY && fetches_idle (self))
    self->loaded = TRUE;
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  return G_SOURCE_REMOVE;
}

static void
schedule_flush (QmClient *self)
{
  gint64 now, wait_us;

  if (self->flush_id != 0)
    return;
  now = g_get_monotonic_time ();
  wait_us = self->last_flush + FLUSH_INTERVAL_US - now;
  if (wait_us <= 0)
    self->flush_id = g_idle_add_full (G_PRIORITY_DEFAULT, flush_cb, self, NULL);
  else
    self->flush_id = g_timeout_add_full (G_PRIORITY_DEFAULT, (guint) (wait_us / 1000) + 1,
                                         flush_cb, self, NULL);
}

static void
set_state (QmClient      *self,
           QmClientState  state,
           const gchar   *message)
{
  g_free (self->error_message);
  self->error_message = g_strdup (message);
  if (self->state == state)
    return;
  self->state = state;
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0);
}

/* ---- GetAllProperties per qube ---------------------------------------------------------- */

static void pump_fetches (QmClient *self);

/* A GetAllProperties array (a(ssbs)) as a table property name -> PropInfo. */
static GHashTable *
props_table_new (GVariant *array)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, prop_info_free);
  GVariantIter iter;
  const gchar *name, *type, *value;
  gboolean is_default;

  g_variant_iter_init (&iter, array);
  while (g_variant_iter_next (&iter, "(&s&sb&s)", &name, &type, &is_default, &value))
    {
      PropInfo *info = g_new0 (PropInfo, 1);

      info->is_default = is_default;
      info->value = g_strdup (value);
      g_hash_table_insert (table, g_strdup (name), info);
    }
  return table;
}

typedef struct
{
  QmClient *self;
  gchar    *path;
} FetchData;

static void
fetch_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  FetchData *data = user_data;
  QmClient *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GDBusInterface) domain = NULL;
  gpointer again;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    goto out;

  again = g_hash_table_lookup (self->in_flight, data->path);
  g_hash_table_remove (self->in_flight, data->path);

  if (self->object_manager != NULL)
    domain = g_dbus_object_manager_get_interface (self->object_manager, data->path,
                                                  "org.qubes_os.Admin1.Domain");
  /* A reply for a qube removed meanwhile is dropped. */
  if (reply != NULL && domain != NULL)
    {
      g_autoptr(GVariant) array = g_variant_get_child_value (reply, 0);

      g_hash_table_insert (self->props, g_strdup (data->path), props_table_new (array));
    }
  else if (error != NULL)
    g_debug ("GetAllProperties %s: %s", data->path, error->message);

  if (again != NULL && g_hash_table_contains (self->props, data->path))
    {
      g_hash_table_add (self->queued, g_strdup (data->path));
      g_queue_push_tail (&self->fetch_queue, g_strdup (data->path));
    }
  pump_fetches (self);
  schedule_flush (self);

out:
  g_object_unref (data->self);
  g_free (data->path);
  g_free (data);
}

static void
pump_fetches (QmClient *self)
{
  while (g_hash_table_size (self->in_flight) < MAX_FETCHES_IN_FLIGHT
         && !g_queue_is_empty (&self->fetch_queue))
    {
      gchar *path = g_queue_pop_head (&self->fetch_queue);
      FetchData *data;

      g_hash_table_remove (self->queued, path);
      data = g_new0 (FetchData, 1);
      data->self = g_object_ref (self);
      data->path = g_strdup (path);
      g_hash_table_insert (self->in_flight, path, NULL);
      g_dbus_connection_call (self->connection, QM_BUS_NAME, path,
                              "org.qubes_os.Admin1.Domain", "GetAllProperties", NULL,
                              G_VARIANT_TYPE ("(a(ssbs))"), G_DBUS_CALL_FLAGS_NONE, -1,
                              self->generation, fetch_done, data);
    }
}

static void
request_props (QmClient    *self,
               const gchar *path)
{
  if (g_hash_table_contains (self->in_flight, path))
    {
      g_hash_table_insert (self->in_flight, g_strdup (path), GINT_TO_POINTER (TRUE));
      return;
    }
  if (g_hash_table_contains (self->queued, path))
    return;
  g_hash_table_add (self->queued, g_strdup (path));
  g_queue_push_tail (&self->fetch_queue, g_strdup (path));
  pump_fetches (self);
}

static void request_bulk (QmClient *self);

static void
request_all_props (QmClient *self)
{
  GList *objects, *l;

  if (self->has_bulk)
    {
      request_bulk (self);
      return;
    }
  if (self->object_manager == NULL)
    return;
  objects = g_dbus_object_manager_get_objects (self->object_manager);
  for (l = objects; l != NULL; l = l->next)
    {
      const gchar *path = g_dbus_object_get_object_path (l->data);

      if (is_domain_path (path))
        request_props (self, path);
    }
  g_list_free_full (objects, g_object_unref);
}

/* ---- GetAllDomainProperties: every qube in one call ------------------------------------- */

static void apply_bulk (QmClient   *self,
                        GHashTable *tables);

/* GetAllDomainProperties' answer as qube name -> property table. */
static GHashTable *
bulk_tables_new (GVariant *reply)
{
  GHashTable *tables = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify) g_hash_table_unref);
  g_autoptr(GVariant) dict = g_variant_get_child_value (reply, 0);
  GVariantIter iter;
  const gchar *name;
  GVariant *array;

  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_next (&iter, "{&s@a(ssbs)}", &name, &array))
    {
      g_hash_table_insert (tables, g_strdup (name), props_table_new (array));
      g_variant_unref (array);
    }
  return tables;
}

static void
bulk_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  self->bulk_in_flight = FALSE;

  if (reply != NULL)
    {
      g_autoptr(GHashTable) tables = bulk_tables_new (reply);

      /* Sent alongside GetManagedObjects, it usually comes first: kept (already parsed, while
       * the proxies are still being built) until the objects are there to map names. */
      if (self->object_manager == NULL)
        {
          g_clear_pointer (&self->early_bulk, g_hash_table_unref);
          self->early_bulk = g_steal_pointer (&tables);
        }
      else
        apply_bulk (self, tables);
    }
  else if (error != NULL)
    {
      /* An older qubesd: one GetAllProperties per qube, as before. */
      g_debug ("GetAllDomainProperties: %s", error->message);
      self->has_bulk = FALSE;
      self->bulk_again = FALSE;
      request_all_props (self);
    }

  if (self->bulk_again)
    {
      self->bulk_again = FALSE;
      request_bulk (self);
    }
  schedule_flush (self);
  g_object_unref (self);
}

static void
apply_bulk (QmClient   *self,
            GHashTable *tables)
{
  GList *domains = qm_client_get_domains (self), *l;

  /* Names map to paths through the objects themselves: no second copy of the escaping. */
  for (l = domains; l != NULL; l = l->next)
    {
      const gchar *path = g_dbus_object_get_object_path (l->data);
      const gchar *name = qm_domain_get_name (qm_object_peek_domain (l->data));
      gpointer key, table;

      /* A qube fetched one by one meanwhile has the fresher answer; one the answer did not
       * cover (added meanwhile) is fetched one by one. */
      if (g_hash_table_contains (self->in_flight, path))
        continue;
      if (g_hash_table_steal_extended (tables, name, &key, &table))
        {
          g_hash_table_insert (self->props, g_strdup (path), table);
          g_free (key);
        }
      else
        request_props (self, path);
    }
  g_list_free_full (domains, g_object_unref);
}

static void
request_bulk (QmClient *self)
{
  if (self->bulk_in_flight)
    {
      self->bulk_again = TRUE;
      return;
    }
  self->bulk_in_flight = TRUE;
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH,
                          "org.qubes_os.Admin1.Manager", "GetAllDomainProperties", NULL,
                          G_VARIANT_TYPE ("(a{sa(ssbs)})"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->generation, bulk_done, g_object_ref (self));
}

/* ---- signals from the object manager --------------------------------------------------- */

static void
handle_event (QmClient    *self,
              const gchar *path,
              GVariant    *parameters)
{
  const gchar *name;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(tssa(ss))")))
    return;
  g_variant_get (parameters, "(t&s&s@a(ss))", NULL, NULL, &name, NULL);
  if (!g_str_has_prefix (name, "property-set:") && !g_str_has_prefix (name, "property-reset:")
      && !g_str_has_prefix (name, "property-del:"))
    return;

  if (path == NULL)
    /* A global default changed: any qube at its default may now show another value. */
    request_all_props (self);
  else if (self->object_manager == NULL)
    g_hash_table_add (self->early_events, g_strdup (path));
  else
    request_props (self, path);
}

/* Events are watched on the connection from the moment qubesd appears, before the snapshot is
 * asked for: a property set between the snapshot and the object manager being ready is not
 * missed. */
static void
on_event_signal (GDBusConnection *connection,
                 const gchar     *sender_name,
                 const gchar     *object_path,
                 const gchar     *interface_name,
                 const gchar     *signal_name,
                 GVariant        *parameters,
                 gpointer         user_data)
{
  QmClient *self = QM_CLIENT (user_data);

  if (g_strcmp0 (interface_name, "org.qubes_os.Admin1.Manager") == 0)
    handle_event (self, NULL, parameters);
  else if (g_strcmp0 (interface_name, "org.qubes_os.Admin1.Domain") == 0
           && is_domain_path (object_path))
    handle_event (self, object_path, parameters);
}

static void
on_object_added (GDBusObjectManager *manager,
                 GDBusObject        *object,
                 gpointer            user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  const gchar *path = g_dbus_object_get_object_path (object);

  if (is_domain_path (path))
    {
      self->loaded = FALSE;
      /* Objects added before the first bulk answer are covered by it. */
      if (!self->bulk_in_flight)
        request_props (self, path);
    }
  else if (is_volume_path (path))
    invalidate_disk_usage (self);
  schedule_flush (self);
}

static void
on_object_removed (GDBusObjectManager *manager,
                   GDBusObject        *object,
                   gpointer            user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  const gchar *path = g_dbus_object_get_object_path (object);

  g_hash_table_remove (self->props, path);
  g_hash_table_remove (self->stats, path);
  if (is_volume_path (path))
    invalidate_disk_usage (self);
  schedule_flush (self);
}

static void
on_interface_changed (GDBusObjectManager *manager,
                      GDBusObject        *object,
                      GDBusInterface     *iface,
                      gpointer            user_data)
{
  QmClient *self = QM_CLIENT (user_data);

  if (is_volume_path (g_dbus_object_get_object_path (object)))
    invalidate_disk_usage (self);
  schedule_flush (self);
}

static void
on_properties_changed (GDBusObjectManagerClient *manager,
                       GDBusObjectProxy         *object_proxy,
                       GDBusProxy               *interface_proxy,
                       GVariant                 *changed_properties,
                       const gchar * const      *invalidated_properties,
                       gpointer                  user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  const gchar *path = g_dbus_object_get_object_path (G_DBUS_OBJECT (object_proxy));

  if (QM_IS_VOLUME (interface_proxy))
    invalidate_disk_usage (self);
  else if (QM_IS_DOMAIN (interface_proxy)
           && g_variant_lookup (changed_properties, "PowerState", "&s", NULL))
    {
      const gchar *power = qm_domain_get_power_state (QM_DOMAIN (interface_proxy));

      /* Figures of a qube that stopped are no longer true. */
      if (g_strcmp0 (power, "Running") != 0 && g_strcmp0 (power, "Paused") != 0)
        g_hash_table_remove (self->stats, path);
    }
  schedule_flush (self);
}

static void
handle_stats (QmClient    *self,
              const gchar *path,
              GVariant    *parameters)
{
  GVariantIter *iter;
  const gchar *key, *value;
  Stats *stats;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(a(ss))")))
    return;
  stats = g_hash_table_lookup (self->stats, path);
  if (stats == NULL)
    {
      stats = g_new0 (Stats, 1);
      g_hash_table_insert (self->stats, g_strdup (path), stats);
    }
  g_variant_get (parameters, "(a(ss))", &iter);
  while (g_variant_iter_next (iter, "(&s&s)", &key, &value))
    {
      if (g_str_equal (key, "cpu_usage"))
        stats->cpu_usage = g_ascii_strtod (value, NULL);
      else if (g_str_equal (key, "memory_kb"))
        stats->memory_kb = g_ascii_strtoull (value, NULL, 10);
    }
  g_variant_iter_free (iter);
  schedule_flush (self);
}

static void
on_proxy_signal (GDBusObjectManagerClient *manager,
                 GDBusObjectProxy         *object_proxy,
                 GDBusProxy               *interface_proxy,
                 const gchar              *sender_name,
                 const gchar              *signal_name,
                 GVariant                 *parameters,
                 gpointer                  user_data)
{
  const gchar *path = g_dbus_object_get_object_path (G_DBUS_OBJECT (object_proxy));

  if (g_strcmp0 (signal_name, "Stats") == 0)
    handle_stats (QM_CLIENT (user_data), path, parameters);
}

/* ---- appearance and disappearance of qubesd --------------------------------------------- */

static void
introspect_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  const gchar *xml;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply != NULL)
    {
      g_variant_get (reply, "(&s)", &xml);
      node = g_dbus_node_info_new_for_xml (xml, NULL);
    }
  if (node != NULL)
    {
      GDBusInterfaceInfo *info = g_dbus_node_info_lookup_interface (node,
                                                                    "org.qubes_os.Admin1.Domain");

      self->has_lifecycle = info != NULL
                            && g_dbus_interface_info_lookup_method (info, "Start") != NULL;
      g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0);
    }
  g_object_unref (self);
}

static void
maybe_ready (QmClient *self)
{

  GHashTableIter iter;
  gpointer path;

  if (self->object_manager == NULL || self->manager == NULL)
    return;

  set_state (self, QM_CLIENT_STATE_READY, NULL);
  if (self->early_bulk != NULL)
    {
      apply_bulk (self, self->early_bulk);
      g_clear_pointer (&self->early_bulk, g_hash_table_unref);
    }
  else if (!self->bulk_in_flight)
    request_all_props (self);
  g_hash_table_iter_init (&iter, self->early_events);
  while (g_hash_table_iter_next (&iter, &path, NULL))
    request_props (self, path);
  g_hash_table_remove_all (self->early_events);
  schedule_flush (self);

  /* Lifecycle methods come with a later issue: offer them only when the daemon has them. */
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_DOMAIN_PATH_PREFIX "dom0",
                          "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                          G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, self->generation,
                          introspect_done, g_object_ref (self));
}

static void
object_manager_ready (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GError) error = NULL;
  GDBusObjectManager *om;

  om = qm_object_manager_client_new_finish (result, &error);
  if (om == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        set_state (self, QM_CLIENT_STATE_ABSENT, error->message);
      g_object_unref (self);
      return;
    }
  self->object_manager = om;
  g_signal_connect (om, "object-added", G_CALLBACK (on_object_added), self);
  g_signal_connect (om, "object-removed", G_CALLBACK (on_object_removed), self);
  g_signal_connect (om, "interface-added", G_CALLBACK (on_interface_changed), self);
  g_signal_connect (om, "interface-removed", G_CALLBACK (on_interface_changed), self);
  g_signal_connect (om, "interface-proxy-properties-changed",
                    G_CALLBACK (on_properties_changed), self);
  g_signal_connect (om, "interface-proxy-signal", G_CALLBACK (on_proxy_signal), self);
  maybe_ready (self);
  g_object_unref (self);
}

static void
manager_proxy_ready (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GError) error = NULL;
  QmManager *manager;

  manager = qm_manager_proxy_new_finish (result, &error);
  if (manager == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        set_state (self, QM_CLIENT_STATE_ABSENT, error->message);
      g_object_unref (self);
      return;
    }
  self->manager = manager;
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (manager), G_MAXINT);
  maybe_ready (self);
  g_object_unref (self);
}

static void
tear_down (QmClient *self)
{
  g_cancellable_cancel (self->generation);
  g_clear_object (&self->generation);
  self->generation = g_cancellable_new ();

  if (self->object_manager != NULL)
    g_signal_handlers_disconnect_by_data (self->object_manager, self);
  g_clear_object (&self->object_manager);
  if (self->manager != NULL)
    g_signal_handlers_disconnect_by_data (self->manager, self);
  g_clear_object (&self->manager);

  g_hash_table_remove_all (self->props);
  g_hash_table_remove_all (self->in_flight);
  g_hash_table_remove_all (self->queued);
  g_queue_clear_full (&self->fetch_queue, g_free);
  g_hash_table_remove_all (self->stats);
  g_hash_table_remove_all (self->early_events);
  g_clear_pointer (&self->early_bulk, g_hash_table_unref);
  if (self->event_subscription != 0 && self->connection != NULL)
    g_dbus_connection_signal_unsubscribe (self->connection, self->event_subscription);
  self->event_subscription = 0;
  invalidate_disk_usage (self);
  self->has_bulk = TRUE;
  self->bulk_in_flight = FALSE;
  self->bulk_again = FALSE;
  self->has_lifecycle = FALSE;
  self->loaded = FALSE;
}

/* Asks for the snapshot: the Manager proxy, the object manager (GetManagedObjects, in a worker
 * thread) and every qube's properties in one call, all at once. */
static void
start_snapshot (QmClient *self)
{
  set_state (self, QM_CLIENT_STATE_CONNECTING, NULL);
  qm_manager_proxy_new (self->connection, G_DBUS_PROXY_FLAGS_NONE, QM_BUS_NAME, QM_ROOT_PATH,
                        self->generation, manager_proxy_ready, g_object_ref (self));
  self->event_subscription = g_dbus_connection_signal_subscribe (
    self->connection, QM_BUS_NAME, NULL, "Event", NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
    on_event_signal, self, NULL);
  qm_object_manager_client_new (self->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                QM_BUS_NAME, QM_ROOT_PATH, self->generation,
                                object_manager_ready, g_object_ref (self));
  /* In parallel with GetManagedObjects: the daemon answers it while this client builds the
   * proxies of the snapshot. */
  request_bulk (self);
}

static void
name_appeared (GDBusConnection *connection,
               const gchar     *name,
               const gchar     *name_owner,
               gpointer         user_data)
{
  QmClient *self = QM_CLIENT (user_data);

  /* The snapshot asked for at start-up is for this owner. */
  if (self->early_snapshot)
    {
      self->early_snapshot = FALSE;
      return;
    }
  tear_down (self);
  start_snapshot (self);
}

static void
name_vanished (GDBusConnection *connection,
               const gchar     *name,
               gpointer         user_data)
{
  QmClient *self = QM_CLIENT (user_data);

  self->early_snapshot = FALSE;
  tear_down (self);
  if (connection == NULL)
    set_state (self, QM_CLIENT_STATE_NO_BUS, NULL);
  else
    set_state (self, QM_CLIENT_STATE_ABSENT, NULL);
  schedule_flush (self);
}

/* ---- public ----------------------------------------------------------------------------- */

QmClient *
qm_client_new (GBusType     bus_type,
               const gchar *address)
{
  QmClient *self = g_object_new (QM_TYPE_CLIENT, NULL);
  g_autoptr(GError) error = NULL;

  self->bus_type = bus_type;
  self->address = g_strdup (address);
  /* Connecting to a local bus is quick, and done before the window exists it lets qubesd
   * answer the snapshot while GTK builds the window: at start-up that is most of the wait
   * for a long list. The calls themselves stay asynchronous. */
  if (address != NULL)
    self->connection = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  else
    self->connection = g_bus_get_sync (bus_type, NULL, &error);
  if (self->connection == NULL)
    {
      set_state (self, QM_CLIENT_STATE_NO_BUS, error->message);
      return self;
    }
  /* Asked for before knowing whether qubesd runs: if it does not, the watcher says so and
   * throws this away. */
  start_snapshot (self);
  self->early_snapshot = TRUE;
  self->watch_id = g_bus_watch_name_on_connection (self->connection, QM_BUS_NAME,
                                                   G_BUS_NAME_WATCHER_FLAGS_NONE, name_appeared,
                                                   name_vanished, self, NULL);
  return self;
}

QmClientState
qm_client_get_state (QmClient *self)
{
  return self->state;
}

const gchar *
qm_client_get_error_message (QmClient *self)
{
  return self->error_message;
}

gboolean
qm_client_is_loaded (QmClient *self)
{
  return self->loaded;
}

gboolean
qm_client_has_lifecycle (QmClient *self)
{
  return self->has_lifecycle;
}

GDBusConnection *
qm_client_get_connection (QmClient *self)
{
  return self->connection;
}

QmManager *
qm_client_get_manager (QmClient *self)
{
  return self->manager;
}

static gint
compare_domains (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (qm_domain_get_name (qm_object_peek_domain ((QmObject *) a)),
                    qm_domain_get_name (qm_object_peek_domain ((QmObject *) b)));
}

GList *
qm_client_get_domains (QmClient *self)
{
  GList *objects, *l, *result = NULL;

  if (self->object_manager == NULL)
    return NULL;
  objects = g_dbus_object_manager_get_objects (self->object_manager);
  for (l = objects; l != NULL; l = l->next)
    {
      if (qm_object_peek_domain (l->data) != NULL
          && is_domain_path (g_dbus_object_get_object_path (l->data)))
        result = g_list_prepend (result, g_object_ref (l->data));
    }
  g_list_free_full (objects, g_object_unref);
  return g_list_sort (result, compare_domains);
}

QmObject *
qm_client_lookup_domain (QmClient    *self,
                         const gchar *object_path)
{
  g_autoptr(GDBusObject) object = NULL;

  if (self->object_manager == NULL || object_path == NULL || !g_variant_is_object_path (object_path))
    return NULL;
  object = g_dbus_object_manager_get_object (self->object_manager, object_path);
  if (object == NULL || qm_object_peek_domain (QM_OBJECT (object)) == NULL)
    return NULL;
  /* the object manager keeps it alive */
  return QM_OBJECT (object);
}

QmObject *
qm_client_lookup_domain_by_name (QmClient    *self,
                                 const gchar *name)
{
  GList *domains, *l;
  QmObject *found = NULL;

  domains = qm_client_get_domains (self);
  for (l = domains; l != NULL; l = l->next)
    if (g_strcmp0 (qm_domain_get_name (qm_object_peek_domain (l->data)), name) == 0)
      {
        found = l->data;
        break;
      }
  g_list_free_full (domains, g_object_unref);
  return found;
}

const gchar *
qm_client_domain_name (QmClient    *self,
                       const gchar *object_path)
{
  QmObject *object = qm_client_lookup_domain (self, object_path);

  return object != NULL ? qm_domain_get_name (qm_object_peek_domain (object)) : NULL;
}

static gint
compare_labels (gconstpointer a,
                gconstpointer b)
{
  return qm_label_get_index ((QmLabel *) a) - qm_label_get_index ((QmLabel *) b);
}

GList *
qm_client_get_labels (QmClient *self)
{
  GList *objects, *l, *result = NULL;

  if (self->object_manager == NULL)
    return NULL;
  objects = g_dbus_object_manager_get_objects (self->object_manager);
  for (l = objects; l != NULL; l = l->next)
    {
      QmLabel *label = qm_object_peek_label (l->data);

      if (label != NULL)
        result = g_list_prepend (result, g_object_ref (label));
    }
  g_list_free_full (objects, g_object_unref);
  return g_list_sort (result, compare_labels);
}

QmLabel *
qm_client_lookup_label (QmClient    *self,
                        const gchar *object_path)
{
  g_autoptr(GDBusObject) object = NULL;

  if (self->object_manager == NULL || object_path == NULL || !g_variant_is_object_path (object_path))
    return NULL;
  object = g_dbus_object_manager_get_object (self->object_manager, object_path);
  return object != NULL ? qm_object_peek_label (QM_OBJECT (object)) : NULL;
}

gboolean
qm_client_get_property_info (QmClient     *self,
                             const gchar  *object_path,
                             const gchar  *property,
                             gboolean     *out_is_default,
                             const gchar **out_value)
{
  GHashTable *table = g_hash_table_lookup (self->props, object_path);
  PropInfo *info;

  if (table == NULL || (info = g_hash_table_lookup (table, property)) == NULL)
    return FALSE;
  if (out_is_default != NULL)
    *out_is_default = info->is_default;
  if (out_value != NULL)
    *out_value = info->value;
  return TRUE;
}

gboolean
qm_client_get_stats (QmClient    *self,
                     const gchar *object_path,
                     gdouble     *out_cpu_usage,
                     guint64     *out_memory_kb)
{
  Stats *stats = g_hash_table_lookup (self->stats, object_path);

  if (stats == NULL)
    return FALSE;
  if (out_cpu_usage != NULL)
    *out_cpu_usage = stats->cpu_usage;
  if (out_memory_kb != NULL)
    *out_memory_kb = stats->memory_kb;
  return TRUE;
}

gboolean
qm_client_get_disk_usage (QmClient    *self,
                          const gchar *object_path,
                          guint64     *out_bytes)
{
  guint64 *bytes;

  if (self->object_manager == NULL)
    return FALSE;
  if (self->disk_usage == NULL)
    {
      GList *objects = g_dbus_object_manager_get_objects (self->object_manager), *l;

      self->disk_usage = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      for (l = objects; l != NULL; l = l->next)
        {
          QmVolume *volume = qm_object_peek_volume (l->data);
          const gchar *domain;
          guint64 *sum;

          if (volume == NULL || (domain = qm_volume_get_domain (volume)) == NULL)
            continue;
          sum = g_hash_table_lookup (self->disk_usage, domain);
          if (sum == NULL)
            {
              sum = g_new0 (guint64, 1);
              g_hash_table_insert (self->disk_usage, g_strdup (domain), sum);
            }
          *sum += qm_volume_get_usage (volume);
        }
      g_list_free_full (objects, g_object_unref);
    }
  bytes = g_hash_table_lookup (self->disk_usage, object_path);
  if (bytes == NULL)
    return FALSE;
  if (out_bytes != NULL)
    *out_bytes = *bytes;
  return TRUE;
}

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  GVariant *reply;

  if (G_IS_DBUS_PROXY (source))
    reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);
  else
    reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
}

void
qm_client_call (QmClient            *self,
                const gchar         *object_path,
                const gchar         *interface_name,
                const gchar         *method,
                GVariant            *parameters,
                GCancellable        *cancellable,
                GAsyncReadyCallback  callback,
                gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GDBusInterface) iface = NULL;

  if (self->connection == NULL)
    {
      if (parameters != NULL)
        g_variant_unref (g_variant_ref_sink (parameters));
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                               "%s", "not connected");
      g_object_unref (task);
      return;
    }

  if (g_strcmp0 (object_path, QM_ROOT_PATH) == 0 && self->manager != NULL
      && g_strcmp0 (interface_name, "org.qubes_os.Admin1.Manager") == 0)
    iface = g_object_ref (G_DBUS_INTERFACE (self->manager));
  else if (self->object_manager != NULL)
    iface = g_dbus_object_manager_get_interface (self->object_manager, object_path,
                                                 interface_name);

  /* Interactive authorization can take as long as the user needs: no timeout. */
  if (iface != NULL)
    g_dbus_proxy_call (G_DBUS_PROXY (iface), method, parameters,
                       G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, G_MAXINT, cancellable,
                       call_done, task);
  else
    g_dbus_connection_call (self->connection, QM_BUS_NAME, object_path, interface_name, method,
                            parameters, NULL, G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION,
                            G_MAXINT, cancellable, call_done, task);
}

GVariant *
qm_client_call_finish (QmClient      *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- properties and paths -------------------------------------------------------------- */

gchar *
qm_property_dbus_name (const gchar *property)
{
  GString *out = g_string_new (NULL);
  gboolean upper = TRUE;
  const gchar *p;

  for (p = property; *p != '\0'; p++)
    {
      if (*p == '_')
        {
          upper = TRUE;
          continue;
        }
      g_string_append_c (out, upper ? g_ascii_toupper (*p) : *p);
      upper = FALSE;
    }
  return g_string_free (out, FALSE);
}

gboolean
qm_property_is_writable (const gchar *property)
{
  /* Identity properties are write-once: set when the qube is made, never after. */
  static const gchar *const write_once[] = { "name", "qid", "uuid", "dispid", "klass", NULL };
  GDBusInterfaceInfo *infos[] = {
    qm_domain_interface_info (), qm_qubes_vm_interface_info (), qm_app_vm_interface_info (),
    qm_disp_vm_interface_info (), qm_standalone_vm_interface_info (),
    qm_template_vm_interface_info (), qm_admin_vm_interface_info (),
    qm_remote_vm_interface_info (),
  };
  g_autofree gchar *dbus_name = NULL;
  guint i;

  if (g_strv_contains (write_once, property))
    return FALSE;
  dbus_name = qm_property_dbus_name (property);
  for (i = 0; i < G_N_ELEMENTS (infos); i++)
    {
      GDBusPropertyInfo *info = g_dbus_interface_info_lookup_property (infos[i], dbus_name);

      if (info != NULL)
        return (info->flags & G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE) != 0;
    }
  /* Not on the bus as a D-Bus property (a newer daemon's): SetProperty will say. */
  return TRUE;
}

gchar *
qm_path_encode (const gchar *element)
{
  GString *out = g_string_new (NULL);
  const guchar *p;

  if (element == NULL || element[0] == '\0')
    return g_strdup ("_");
  for (p = (const guchar *) element; *p != '\0'; p++)
    {
      if (g_ascii_isalnum (*p))
        g_string_append_c (out, (gchar) *p);
      else
        g_string_append_printf (out, "_%02x", *p);
    }
  return g_string_free (out, FALSE);
}

static gint
compare_volumes (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (qm_volume_get_name ((QmVolume *) a), qm_volume_get_name ((QmVolume *) b));
}

GList *
qm_client_get_volumes (QmClient    *self,
                       const gchar *domain_path)
{
  GList *objects, *l, *result = NULL;

  if (self->object_manager == NULL)
    return NULL;
  objects = g_dbus_object_manager_get_objects (self->object_manager);
  for (l = objects; l != NULL; l = l->next)
    {
      QmVolume *volume = qm_object_peek_volume (l->data);

      if (volume != NULL && g_strcmp0 (qm_volume_get_domain (volume), domain_path) == 0)
        result = g_list_prepend (result, g_object_ref (volume));
    }
  g_list_free_full (objects, g_object_unref);
  return g_list_sort (result, compare_volumes);
}

QmVolume *
qm_client_lookup_volume (QmClient    *self,
                         const gchar *domain_path,
                         const gchar *volume_name)
{
  GList *volumes = qm_client_get_volumes (self, domain_path), *l;
  QmVolume *found = NULL;

  for (l = volumes; l != NULL; l = l->next)
    if (g_strcmp0 (qm_volume_get_name (l->data), volume_name) == 0)
      {
        found = l->data;
        break;
      }
  g_list_free_full (volumes, g_object_unref);
  /* the object manager keeps it alive */
  return found;
}

/* ---- GObject ---------------------------------------------------------------------------- */

static void
qm_client_finalize (GObject *object)
{
  QmClient *self = QM_CLIENT (object);

  if (self->flush_id != 0)
    g_source_remove (self->flush_id);
  if (self->watch_id != 0)
    g_bus_unwatch_name (self->watch_id);
  tear_down (self);
  g_cancellable_cancel (self->generation);
  g_clear_object (&self->generation);
  g_clear_object (&self->connection);
  g_hash_table_unref (self->props);
  g_hash_table_unref (self->in_flight);
  g_hash_table_unref (self->queued);
  g_hash_table_unref (self->stats);
  g_hash_table_unref (self->early_events);
  g_free (self->address);
  g_free (self->error_message);
  G_OBJECT_CLASS (qm_client_parent_class)->finalize (object);
}

static void
qm_client_init (QmClient *self)
{
  self->state = QM_CLIENT_STATE_CONNECTING;
  self->generation = g_cancellable_new ();
  self->props = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_hash_table_unref);
  self->in_flight = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->queued = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->stats = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->early_events = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->has_bulk = TRUE;
  g_queue_init (&self->fetch_queue);
}

static void
qm_client_class_init (QmClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qm_client_finalize;

  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 0);
  signals[SIGNAL_STATE_CHANGED] = g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 0);
}
