/* qm-client.c: the Qube Manager's view of qubesd on one bus
 *
 * One GetManagedObjects when qubesd appears, kept as QmObjects (the properties of each
 * interface, no proxies: for 300 qubes GDBusObjectManagerClient built ~7,800 of them, which cost
 * about as much as the call itself), then signals only: InterfacesAdded/Removed,
 * PropertiesChanged (of watched_interfaces[]) and Stats (broadcasts), and the Event copies qubesd addresses to this
 * connection after Manager.SubscribeEvents, all subscribed to before the snapshot is asked for.
 * A change signal that arrives before the snapshot was sent before it (one sender, one
 * connection: D-Bus keeps the order), so the snapshot already holds its effect and the signal is
 * dropped. Everything that changes marks the client dirty; "changed" is emitted at most every
 * 100 ms, so that a storm of signals costs the view one diff. What D-Bus properties cannot say
 * (is a property at its default?) comes from one Manager.GetDomainProperties for all qubes at
 * start-up (one round trip instead of one per qube), then from GetAllProperties of one qube when
 * an Event says one of its properties was set or reset. The snapshot carries only a qube's Domain
 * values: the list's other columns (netvm, template, ip, ...) are taken from those same answers
 * into the qube's QmObject (fill_list_values()). Figures that change all the time (CPU,
 * memory) come from the Stats signal and are kept here, never as properties; disk usage is the
 * sum of the qube's Volume objects' Usage; the volumes are not in the root's snapshot but in
 * each qube's own GetManagedObjects, read as the qube appears (at most 16 at once). The notes
 * are read when a row first asks for them (GetNotes), and again when qubesd says they changed
 * (NotesChanged). qubesd does not announce the Usage that grows while a qube writes: the Usage
 * of a qube's volumes is read again after it starts or stops and when the window asks
 * (qm_client_refresh_disk_usage(), as upstream's Qube Manager does every minute).
 *
 * Events come only as the Subscription copies, never as broadcasts too: an administrator would
 * get each twice, and events are most of what qubesd sends while qubes start and stop. Once a
 * broadcast has come, the client asks for the property events alone (SubscribeEventNames, then
 * UnsubscribeEvents of the first subscription), so that a qube's start or stop sends it no
 * Event at all; an older qubesd without that method goes on sending every event, which the
 * GDBus filter drops before the main loop. A user
 * whom the bus policy denies the broadcasts (see "What a local user sees" in docs/dbus-api.md)
 * gets no PropertiesChanged or InterfacesAdded/Removed either; until a broadcast has come, the
 * events themselves keep the model current: an event about a qube has it read again
 * (Properties.GetAll of each of its interfaces, at most once per qube per 100 ms), one about a
 * qube not known yet has the objects read again (GetManagedObjects), domain-delete drops the
 * qube. See docs/qube-manager.md.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "qm-client.h"
#include "qm-error.h"
#include "qm-interfaces.h"

#define FLUSH_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)
/* How long the list waits for GetAllDomainProperties' answer before it shows without it. */
#define BULK_WAIT_US (500 * G_TIME_SPAN_MILLISECOND)
/* At most this many GetAllProperties in flight: the system bus limits pending replies per
 * connection (128 by default), and a daemon should not see 300 calls at once from one window. */
#define MAX_FETCHES_IN_FLIGHT 16
/* At most this many Properties.GetAll of the qubes re-read after events (see refresh_cb()). */
#define MAX_REFRESH_CALLS 32
/* At most this many GetNotes in flight. */
#define MAX_NOTES_IN_FLIGHT 16
/* At most this many reads of a qube's volumes (its GetManagedObjects) in flight. */
#define MAX_VOLUME_READS_IN_FLIGHT 16
/* The Usage of the volumes of qubes that started or stopped is read this long after. */
#define USAGE_DELAY_MS 500
/* The first line of the notes, as the list shows it, is cut after this many characters. */
#define NOTES_LINE_MAX 200

#define OBJECT_MANAGER_INTERFACE "org.freedesktop.DBus.ObjectManager"
#define PROPERTIES_INTERFACE "org.freedesktop.DBus.Properties"
#define LABEL_PATH_PREFIX QM_ROOT_PATH "/label/"
#define VOLUME_PATH_ELEMENT "/volume/"
#define MANAGER_INTERFACE QM_INTERFACE_PREFIX "Manager"
#define DOMAIN_INTERFACE QM_INTERFACE_PREFIX "Domain"
#define SUBSCRIPTION_INTERFACE QM_INTERFACE_PREFIX "Subscription"

/* What the message filter (filter_events(), in GDBus' worker thread) reads. GDBus frees it
 * when the filter can no longer run. */
typedef struct
{
  gint broadcasts_seen; /* atomic: QmClient.broadcasts_seen */
} EventFilter;

/* The interfaces whose PropertiesChanged the client takes (arg0 of its match rules): those whose
 * values the window reads from the objects, but a qube's QubesVM interface. That one changes at
 * every start and stop of a qube (Xid, StubdomXid, StartTime: nothing the window shows), as
 * often as PowerState does; its values the window shows (list_properties[]) come from the
 * qube's GetAllProperties, read again after its property events and after those of a template
 * it inherits from (qubes_inheriting()). */
static const gchar *const watched_interfaces[] = {
  "Domain", "AppVM", "DispVM", "StandaloneVM", "AdminVM", "Volume", "Label", "Manager",
};
#define N_WATCHED_INTERFACES G_N_ELEMENTS (watched_interfaces)

/* QmClient.subscriptions[]: the signals other than PropertiesChanged */
enum
{
  SUBSCRIPTION_OBJECTS,        /* InterfacesAdded/Removed */
  SUBSCRIPTION_STATS,
  SUBSCRIPTION_COPIES,         /* the Event copies addressed to this connection */
  SUBSCRIPTION_MANAGER_EVENT,  /* broadcast Events: only from a qubesd without SubscribeEvents */
  SUBSCRIPTION_DOMAIN_EVENT,
  SUBSCRIPTION_NOTES,
  N_SUBSCRIPTIONS
};

/* Set at every start and stop of a qube, and nothing the window shows depends on them: their
 * events do not have the qube's GetAllProperties read again. */
static const gchar *const volatile_properties[] = { "xid", "stubdom_xid", "start_time", NULL };

/* The property an event says was set or reset ("property-set:netvm" -> "netvm"), or NULL. */
static const gchar *
event_property (const gchar *name)
{
  static const gchar *const prefixes[] = { "property-set:", "property-reset:", "property-del:" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (prefixes); i++)
    if (g_str_has_prefix (name, prefixes[i]))
      return name + strlen (prefixes[i]);
  return NULL;
}

/* Whether an event tells a client that gets the broadcasts anything they do not: only that a
 * property was set or reset (whether it is at its default comes from GetAllProperties), but for
 * the volatile ones of a qube. Called from both threads. */
static gboolean
event_matters_with_broadcasts (const gchar *name,
                               gboolean     about_qube)
{
  const gchar *property = event_property (name);

  return property != NULL && (!about_qube || !g_strv_contains (volatile_properties, property));
}

/* In GDBus' worker thread, for every message the connection receives: once broadcasts come,
 * the Event copies that do not matter (all but a few while qubes start and stop, two thirds of
 * what qubesd sends then) are dropped here rather than each handed to the main loop. */
static GDBusMessage *
filter_events (GDBusConnection *connection,
               GDBusMessage    *message,
               gboolean         incoming,
               gpointer         user_data)
{
  EventFilter *filter = user_data;
  const gchar *interface;
  GVariant *body;
  g_autoptr(GVariant) name = NULL;

  /* qubesd's errors in the user's language (EnableErrorDetails, start_snapshot()) */
  if (incoming && g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_ERROR)
    return qm_error_translate_reply (message);
  if (!incoming || !g_atomic_int_get (&filter->broadcasts_seen)
      || g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_SIGNAL
      || g_strcmp0 (g_dbus_message_get_member (message), "Event") != 0)
    return message;
  interface = g_dbus_message_get_interface (message);
  body = g_dbus_message_get_body (message);
  if ((g_strcmp0 (interface, SUBSCRIPTION_INTERFACE) != 0
       && g_strcmp0 (interface, DOMAIN_INTERFACE) != 0
       && g_strcmp0 (interface, MANAGER_INTERFACE) != 0)
      || body == NULL || !g_variant_is_of_type (body, G_VARIANT_TYPE ("(tssa(ss))")))
    return message;
  name = g_variant_get_child_value (body, 2);
  if (event_matters_with_broadcasts (g_variant_get_string (name, NULL),
                                     g_strcmp0 (g_dbus_message_get_path (message), QM_ROOT_PATH)
                                     != 0))
    return message;
  g_object_unref (message);
  return NULL;
}

/* One qube's GetAllProperties answer (a(ssbs)), indexed by name; the strings handed out point
 * into the array, valid as long as it is kept. */
typedef struct
{
  GVariant   *array;
  GHashTable *index; /* property name (in array) -> row number + 1 */
  gint64      received; /* when the answer came (monotonic) */
} PropTable;

typedef struct
{
  gdouble cpu_usage;
  guint64 memory_kb;
} Stats;

/* The objects the window shows, by where they live; the others (pools, jobs, devices) are not
 * kept. */
typedef enum
{
  KIND_NONE,
  KIND_DOMAIN,
  KIND_VOLUME,
  KIND_LABEL,
} ObjectKind;

struct _QmClient
{
  GObject          parent_instance;

  GBusType         bus_type;
  gchar           *address;
  GDBusConnection *connection;
  guint            watch_id;

  /* One per appearance of the name: cancelled when qubesd vanishes. */
  GCancellable    *generation;

  QmClientState    state;
  gchar           *error_message;
  /* the signal subscriptions: SUBSCRIPTION_* below, then PropertiesChanged of each of
   * watched_interfaces[] */
  guint            subscriptions[N_SUBSCRIPTIONS + N_WATCHED_INTERFACES];
  gchar           *owner;          /* qubesd's unique name, once the watcher said it */
  gboolean         has_snapshot;   /* GetManagedObjects answered */
  QmObject        *manager;        /* the root object, once Properties.GetAll answered */
  GHashTable      *domains;        /* path -> QmObject */
  GPtrArray       *sorted_domains; /* those with a Domain interface, by name; NULL: sort again */
  GHashTable      *labels;         /* path -> QmObject */
  GHashTable      *volumes;        /* path -> QmObject */
  GHashTable      *domain_volumes; /* domain path -> GPtrArray of its volumes (QmObject) */
  GHashTable      *disk_usage;     /* domain path -> guint64, the sum of its volumes' Usage;
                                      missing: add up again */
  gboolean         has_lifecycle;

  GHashTable      *props;        /* path -> PropTable */
  GHashTable      *in_flight;    /* path -> GINT_TO_POINTER (fetch again when done) */
  GQueue           fetch_queue;  /* paths (owned) */
  GHashTable      *queued;       /* path set, mirrors fetch_queue */
  gboolean         has_bulk;     /* the daemon has Manager.GetAllDomainProperties */
  gboolean         has_named_bulk; /* ... and Manager.GetDomainProperties */
  gboolean         bulk_named;   /* the one in flight is GetDomainProperties */
  gboolean         bulk_in_flight;
  gboolean         bulk_again;   /* a global default changed while it was in flight */
  GHashTable      *early_bulk;   /* its answer (name -> property table) when it came before
                                    the snapshot */
  GVariant        *bulk_reply;   /* its answer being read, a slice per idle (bulk_parse_cb()) */
  gsize            bulk_next;    /* the next entry of bulk_reply to read */
  gint64           bulk_received; /* when it came: a qube's own answer after that is fresher */
  GHashTable      *bulk_tables;  /* what was read of it so far */
  guint            bulk_parse_id;
  GHashTable      *early_events; /* paths whose properties changed before the snapshot */
  gboolean         early_snapshot; /* start_snapshot() ran before the name watcher spoke */

  GHashTable      *stats;        /* path -> Stats, from the last Stats signal */

  /* Events (see the top of the file) */
  gboolean         has_seq;
  guint64          last_seq;      /* the last event handled: each is handled once */
  gboolean         broadcasts_seen; /* a broadcast came: PropertiesChanged and
                                       InterfacesAdded/Removed keep the model current */
  EventFilter     *filter;         /* owned by the connection */
  gboolean         events_subscribed; /* SubscribeEvents answered: every event comes */
  gboolean         events_narrowed;   /* SubscribeEventNames asked (once per appearance) */
  guint            filter_id;
  GHashTable      *stale;          /* paths to read again (Properties.GetAll) */
  GHashTable      *refreshing;     /* path -> GUINT_TO_POINTER (its GetAll calls in flight) */
  guint            refresh_calls;  /* GetAll calls in flight, all paths */
  guint            refresh_id;
  gint64           last_refresh;
  gboolean         resync_wanted;  /* GetManagedObjects again */
  gboolean         resync_in_flight;

  guint            flush_id;
  gint64           last_flush;
  gint64           ready_time;   /* when the snapshot was complete (maybe_ready()) */
  gboolean         loaded;
  /* What the next "changed" is about: the paths of the qubes whose rows may differ, or every
   * row; handed to the handlers of "changed" (qm_client_get_changed_domains()). */
  GHashTable      *dirty;
  gboolean         all_dirty;
  GHashTable      *changes;      /* during "changed": what dirty held; NULL: every row */

  /* Read on demand (see the top of the file) */
  GHashTable      *notes;          /* domain path -> first line of its notes */
  GHashTable      *notes_reading;  /* domain paths whose GetNotes is queued or in flight */
  GQueue           notes_queue;    /* domain paths (owned) waiting for a GetNotes */
  guint            notes_in_flight;
  GQueue           volumes_queue;  /* domain paths (owned) whose volumes are to be read */
  guint            volumes_in_flight;
  GHashTable      *usage_stale;    /* domain paths whose volumes' Usage is read at usage_id */
  guint            usage_id;
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
prop_table_free (gpointer data)
{
  PropTable *table = data;

  g_hash_table_unref (table->index);
  g_variant_unref (table->array);
  g_free (table);
}

static gboolean
is_domain_path (const gchar *path)
{
  return g_str_has_prefix (path, QM_DOMAIN_PATH_PREFIX)
         && strchr (path + strlen (QM_DOMAIN_PATH_PREFIX), '/') == NULL;
}

/* What lives at a path; for a volume, the length of its qube's path. */
static ObjectKind
path_kind (const gchar *path,
           gsize       *out_domain_len)
{
  const gchar *rest, *slash;

  if (g_str_has_prefix (path, LABEL_PATH_PREFIX))
    return strchr (path + strlen (LABEL_PATH_PREFIX), '/') == NULL ? KIND_LABEL : KIND_NONE;
  if (!g_str_has_prefix (path, QM_DOMAIN_PATH_PREFIX))
    return KIND_NONE;
  rest = path + strlen (QM_DOMAIN_PATH_PREFIX);
  slash = strchr (rest, '/');
  if (slash == NULL)
    return KIND_DOMAIN;
  if (!g_str_has_prefix (slash, VOLUME_PATH_ELEMENT)
      || strchr (slash + strlen (VOLUME_PATH_ELEMENT), '/') != NULL)
    return KIND_NONE;
  if (out_domain_len != NULL)
    *out_domain_len = (gsize) (slash - path);
  return KIND_VOLUME;
}

static GHashTable *
table_for_kind (QmClient   *self,
                ObjectKind  kind)
{
  switch (kind)
    {
    case KIND_DOMAIN:
      return self->domains;
    case KIND_VOLUME:
      return self->volumes;
    case KIND_LABEL:
      return self->labels;
    case KIND_NONE:
    default:
      return NULL;
    }
}

/* The object at a path, the root (Manager) included; NULL for one not kept. */
static QmObject *
lookup_object (QmClient    *self,
               const gchar *path)
{
  GHashTable *table;

  if (g_strcmp0 (path, QM_ROOT_PATH) == 0)
    return self->manager;
  table = table_for_kind (self, path_kind (path, NULL));
  return table != NULL ? g_hash_table_lookup (table, path) : NULL;
}

/* "org.qubes_os.Admin1.Domain" -> "Domain"; NULL for an interface not ours. */
static const gchar *
short_interface (const gchar *interface)
{
  if (!g_str_has_prefix (interface, QM_INTERFACE_PREFIX))
    return NULL;
  return interface + strlen (QM_INTERFACE_PREFIX);
}

/* The value paired with key in an array of pairs (a{sv}, a(ss)), read without indexing or
 * copying the rest; NULL if absent. */
static GVariant *
pair_lookup (GVariant    *pairs,
             const gchar *key)
{
  gsize i, n = g_variant_n_children (pairs);

  for (i = 0; i < n; i++)
    {
      g_autoptr(GVariant) pair = g_variant_get_child_value (pairs, i);
      g_autoptr(GVariant) name = g_variant_get_child_value (pair, 0);

      if (g_str_equal (g_variant_get_string (name, NULL), key))
        return g_variant_get_child_value (pair, 1);
    }
  return NULL;
}

/* One uint64 of an a{sv} (0 if absent or of another type). */
static guint64
dict_get_uint64 (GVariant    *dict,
                 const gchar *key)
{
  g_autoptr(GVariant) boxed = pair_lookup (dict, key);
  g_autoptr(GVariant) value = boxed != NULL ? g_variant_get_variant (boxed) : NULL;

  return value != NULL && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64)
           ? g_variant_get_uint64 (value) : 0;
}

static gboolean
fetches_idle (QmClient *self)
{
  return !self->bulk_in_flight && g_hash_table_size (self->in_flight) == 0
         && g_queue_is_empty (&self->fetch_queue);
}

static void pump_volumes (QmClient *self);

/* Whether the list is being loaded and GetAllDomainProperties' answer is still to come. */
static gboolean
bulk_awaited (QmClient *self)
{
  return !self->loaded && self->state == QM_CLIENT_STATE_READY && self->bulk_in_flight
         && self->bulk_reply == NULL && g_get_monotonic_time () < self->ready_time + BULK_WAIT_US;
}

static void schedule_flush (QmClient *self);

static gboolean
flush_cb (gpointer user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GHashTable) changes = NULL;

  self->flush_id = 0;
  /* The bulk answer came and is being read: the rows wait for it (bulk_finish() flushes)
   * rather than being filled twice, without and then with what it says. */
  if (self->bulk_reply != NULL)
    return G_SOURCE_REMOVE;
  if (bulk_awaited (self))
    {
      schedule_flush (self);
      return G_SOURCE_REMOVE;
    }
  self->last_flush = g_get_monotonic_time ();
  if (self->state == QM_CLIENT_STATE_READY && fetches_idle (self))
    {
      /* The list becomes complete: everything is news. */
      if (!self->loaded)
        {
          self->all_dirty = TRUE;
          self->loaded = TRUE;
          pump_volumes (self);
        }
    }
  if (!self->all_dirty)
    {
      changes = g_steal_pointer (&self->dirty);
      self->dirty = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    }
  else
    g_hash_table_remove_all (self->dirty);
  self->all_dirty = FALSE;
  self->changes = changes;
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  self->changes = NULL;
  return G_SOURCE_REMOVE;
}

static void
schedule_flush (QmClient *self)
{
  gint64 now, wait_us;

  now = g_get_monotonic_time ();
  wait_us = self->last_flush + FLUSH_INTERVAL_US - now;
  /* While the bulk answer is awaited at start-up, the rows wait for it longer: filled once with
   * everything rather than twice (at 1,000 qubes each time costs more than the wait). */
  if (bulk_awaited (self))
    wait_us = self->ready_time + BULK_WAIT_US - now;
  /* The spacing is for storms of changes; the moment the list becomes complete happens once
   * per snapshot and is shown at once. */
  if (!self->loaded && self->state == QM_CLIENT_STATE_READY && fetches_idle (self))
    wait_us = 0;
  if (self->flush_id != 0)
    {
      if (wait_us > 0)
        return;
      g_source_remove (self->flush_id);
    }
  /* Below GTK's redraw: a frame waiting to be painted is painted first. */
  if (wait_us <= 0)
    self->flush_id = g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, flush_cb, self, NULL);
  else
    self->flush_id = g_timeout_add_full (G_PRIORITY_DEFAULT_IDLE, (guint) (wait_us / 1000) + 1,
                                         flush_cb, self, NULL);
}

/* The row of the qube at path may differ; NULL: any row may. */
static void
mark_dirty (QmClient    *self,
            const gchar *domain_path)
{
  if (domain_path == NULL)
    self->all_dirty = TRUE;
  else if (!self->all_dirty && !g_hash_table_contains (self->dirty, domain_path))
    g_hash_table_add (self->dirty, g_strdup (domain_path));
  schedule_flush (self);
}

/* After a change of the object at path: a qube's or one of its volumes' changes that qube's
 * row; a label or a global property can change any row. */
static void
object_changed (QmClient    *self,
                const gchar *path)
{
  gsize domain_len = 0;

  switch (path_kind (path, &domain_len))
    {
    case KIND_DOMAIN:
      mark_dirty (self, path);
      break;
    case KIND_VOLUME:
      {
        g_autofree gchar *domain_path = g_strndup (path, domain_len);

        mark_dirty (self, domain_path);
        break;
      }
    case KIND_LABEL:
    case KIND_NONE:
    default:
      mark_dirty (self, NULL);
      break;
    }
}

/* After an object came or went: a qube, which other rows may name, or a label can change any
 * row, a volume its qube's; the objects not kept (jobs: two per StartQubes) none. */
static void
objects_changed (QmClient    *self,
                 const gchar *path)
{
  switch (path_kind (path, NULL))
    {
    case KIND_VOLUME:
      object_changed (self, path);
      break;
    case KIND_DOMAIN:
    case KIND_LABEL:
      mark_dirty (self, NULL);
      break;
    case KIND_NONE:
    default:
      break;
    }
}

static void
narrow_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    /* An older qubesd: every event goes on coming; filter_events() drops them. */
    g_debug ("SubscribeEventNames: %s", error->message);
  else
    /* Ends the subscription to every event (an unnamed one goes first): from the next event on
     * only the named ones come, none lost or sent twice in between. */
    g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH, MANAGER_INTERFACE,
                            "UnsubscribeEvents", g_variant_new ("(s)", ""), NULL,
                            G_DBUS_CALL_FLAGS_NONE, -1, self->generation, NULL, NULL);
  g_object_unref (self);
}

/* Once broadcasts come, the events that tell this client something are those filter_events()
 * lets through: qubesd is asked for those alone (Manager.SubscribeEventNames), so that it no
 * longer sends the rest (six or seven a qube's start or stop) only for GDBus to read and drop. */
static void
narrow_events (QmClient *self)
{
  static const gchar *const kinds[] = { "property-set:", "property-reset:", "property-del:" };
  g_autoptr(GPtrArray) names = NULL;
  guint i, k;

  if (!self->broadcasts_seen || !self->events_subscribed || self->events_narrowed)
    return;
  self->events_narrowed = TRUE;
  names = g_ptr_array_new_with_free_func (g_free);
  for (i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_ptr_array_add (names, g_strconcat (kinds[i], "*", NULL));
      for (k = 0; volatile_properties[k] != NULL; k++)
        g_ptr_array_add (names, g_strconcat ("!", kinds[i], volatile_properties[k], NULL));
    }
  g_ptr_array_add (names, NULL);
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH, MANAGER_INTERFACE,
                          "SubscribeEventNames",
                          g_variant_new ("(s^as)", "", (gchar **) names->pdata),
                          G_VARIANT_TYPE ("(t)"), G_DBUS_CALL_FLAGS_NONE, -1, self->generation,
                          narrow_done, g_object_ref (self));
}

static void
saw_broadcast (QmClient *self)
{
  if (self->broadcasts_seen)
    return;
  self->broadcasts_seen = TRUE;
  g_atomic_int_set (&self->filter->broadcasts_seen, TRUE);
  narrow_events (self);
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
  self->all_dirty = TRUE;
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0);
}

/* ---- GetAllProperties per qube ---------------------------------------------------------- */

static void pump_fetches (QmClient *self);

/* A GetAllProperties array (a(ssbs)) as a table. Only the names are read now: at start-up this
 * runs for every property of every qube, and a few per qube are ever looked up. */
static PropTable *
prop_table_new (GVariant *array)
{
  PropTable *table = g_new0 (PropTable, 1);
  gsize i, n = g_variant_n_children (array);

  table->array = g_variant_ref (array);
  table->received = g_get_monotonic_time ();
  table->index = g_hash_table_new (g_str_hash, g_str_equal);
  for (i = 0; i < n; i++)
    {
      g_autoptr(GVariant) row = g_variant_get_child_value (array, i);
      const gchar *name;

      g_variant_get_child (row, 0, "&s", &name);
      g_hash_table_insert (table->index, (gpointer) name, GSIZE_TO_POINTER (i + 1));
    }
  return table;
}

/* A property's value in a GetAllProperties table, or NULL. */
static const gchar *
prop_table_value (PropTable   *table,
                  const gchar *property,
                  gboolean    *out_is_default)
{
  gsize row_number = GPOINTER_TO_SIZE (g_hash_table_lookup (table->index, property));
  g_autoptr(GVariant) row = NULL;
  const gchar *value;

  if (row_number == 0)
    return NULL;
  row = g_variant_get_child_value (table->array, row_number - 1);
  if (out_is_default != NULL)
    {
      g_autoptr(GVariant) is_default = g_variant_get_child_value (row, 2);

      *out_is_default = g_variant_get_boolean (is_default);
    }
  /* By index, not with a format string (this runs a dozen times per qube at start-up); the
   * string points into table->array. */
  {
    g_autoptr(GVariant) text = g_variant_get_child_value (row, 3);

    value = g_variant_get_string (text, NULL);
  }
  return value;
}

/* What the list shows of a qube beyond its Domain interface, which is all the root's snapshot
 * carries of a qube (docs/dbus-api.md, "The snapshot"): taken from its GetAllProperties answer
 * (GetAllDomainProperties' at start-up) into the interface that has it, typed as the D-Bus
 * property is (a qube as its object path, "/" for none), so that every reader reads the QmObject
 * as before. The reads after events keep these values current, and PropertiesChanged those of
 * the watched interfaces. Only what the window reads from the objects (the settings window
 * reads the qube's own answers). */
typedef struct
{
  const gchar *name;          /* the qubes property */
  const gchar *dbus_name;
  gchar        type;          /* 'o' (a qube), 'b', 'x' or 's' */
  const gchar *interfaces[3]; /* the first one the object has holds it */
} ListProperty;

static const ListProperty list_properties[] = {
  { "netvm", "Netvm", 'o', { "QubesVM" } },
  { "template", "Template", 'o', { "AppVM", "DispVM" } },
  { "template_for_dispvms", "TemplateForDispvms", 'b', { "AppVM", "StandaloneVM" } },
  { "ip", "Ip", 's', { "QubesVM" } },
  { "virt_mode", "VirtMode", 's', { "QubesVM" } },
  { "provides_network", "ProvidesNetwork", 'b', { "QubesVM" } },
  { "backup_timestamp", "BackupTimestamp", 'x', { "QubesVM" } },
  { "default_dispvm", "DefaultDispvm", 'o', { "QubesVM", "AdminVM" } },
};

/* A qube's name as the object path a D-Bus property gives ("/" for none); paths (name -> path,
 * may be NULL) keeps those made: a thousand qubes name the same few. */
static GVariant *
qube_path_value (const gchar *name,
                 GHashTable  *paths)
{
  GVariant *value = paths != NULL ? g_hash_table_lookup (paths, name) : NULL;
  g_autofree gchar *encoded = NULL;
  g_autofree gchar *path = NULL;

  if (value != NULL)
    return g_variant_ref (value);
  encoded = name[0] != '\0' ? qm_path_encode (name) : NULL;
  path = encoded != NULL ? g_strconcat (QM_DOMAIN_PATH_PREFIX, encoded, NULL) : NULL;
  value = g_variant_ref_sink (g_variant_new_object_path (
    path != NULL && g_variant_is_object_path (path) ? path : "/"));
  if (paths != NULL)
    g_hash_table_insert (paths, g_strdup (name), g_variant_ref (value));
  return value;
}

static GVariant *
list_value (const ListProperty *property,
            const gchar        *value,
            GHashTable         *paths)
{
  switch (property->type)
    {
    case 'o':
      return qube_path_value (value, paths);
    case 'b':
      return g_variant_new_boolean (g_str_equal (value, "True"));
    case 'x':
      return g_variant_new_int64 (g_ascii_strtoll (value, NULL, 10));
    default:
      return g_variant_new_string (value);
    }
}

static gboolean
is_watched (const gchar *interface)
{
  gsize i;

  for (i = 0; i < N_WATCHED_INTERFACES; i++)
    if (g_str_equal (watched_interfaces[i], interface))
      return TRUE;
  return FALSE;
}

/* With overwrite, the table is newer than anything the object holds (an answer comes after
 * every signal sent before it); without, a value the object has (from a signal) is kept. A value
 * of an interface whose PropertiesChanged the client does not take came from an older answer
 * (the caller has checked that the qube's own answer is not newer) and is replaced, once
 * broadcasts come (before, the client reads whole interfaces after events). */
static void
fill_list_values (QmClient    *self,
                  const gchar *path,
                  PropTable   *table,
                  gboolean     overwrite,
                  GHashTable  *paths)
{
  QmObject *object = g_hash_table_lookup (self->domains, path);
  gsize i, j;

  if (object == NULL)
    return;
  for (i = 0; i < G_N_ELEMENTS (list_properties); i++)
    {
      const ListProperty *property = &list_properties[i];
      const gchar *value = prop_table_value (table, property->name, NULL);

      if (value == NULL)
        continue;
      for (j = 0; j < G_N_ELEMENTS (property->interfaces) && property->interfaces[j] != NULL; j++)
        if (qm_object_has_interface (object, property->interfaces[j]))
          {
            qm_object_set_value (object, property->interfaces[j], property->dbus_name,
                                 list_value (property, value, paths),
                                 overwrite
                                 || (self->broadcasts_seen
                                     && !is_watched (property->interfaces[j])));
            break;
          }
    }
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
  gpointer again;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    goto out;

  again = g_hash_table_lookup (self->in_flight, data->path);
  g_hash_table_remove (self->in_flight, data->path);

  /* A reply for a qube removed meanwhile is dropped. */
  if (reply != NULL && qm_client_lookup_domain (self, data->path) != NULL)
    {
      g_autoptr(GVariant) array = g_variant_get_child_value (reply, 0);
      PropTable *table = prop_table_new (array);

      g_hash_table_insert (self->props, g_strdup (data->path), table);
      fill_list_values (self, data->path, table, TRUE, NULL);
    }
  else if (error != NULL)
    g_debug ("GetAllProperties %s: %s", data->path, error->message);

  if (again != NULL && g_hash_table_contains (self->props, data->path))
    {
      g_hash_table_add (self->queued, g_strdup (data->path));
      g_queue_push_tail (&self->fetch_queue, g_strdup (data->path));
    }
  pump_fetches (self);
  mark_dirty (self, data->path);

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

static void request_all_props (QmClient *self);

/* The template a qube is based on (AppVM, DispVM), as the client holds it; NULL for none. */
static QmObject *
template_of (QmClient *self,
             QmObject *object)
{
  const gchar *path = qm_object_get_string (object, "AppVM", "Template");

  if (path == NULL)
    path = qm_object_get_string (object, "DispVM", "Template");
  return path != NULL ? qm_client_lookup_domain (self, path) : NULL;
}

/* After a property of the qube at path was set or reset (property: its name; NULL: any): when
 * the qube passes defaults down its template chain (a template, a disposable template), the
 * qubes based on it read again, if the property is one of the QubesVM values the list shows.
 * qubesd announces such inherited changes (a template's virt_mode) by PropertiesChanged on each
 * of those qubes' QubesVM interface only, which the client does not take (watched_interfaces[]). */
static void
request_inheriting (QmClient    *self,
                    const gchar *path,
                    const gchar *property)
{
  QmObject *subject = qm_client_lookup_domain (self, path);
  GHashTableIter iter;
  gpointer key, value;
  gboolean shown = property == NULL;
  g_autoptr(GPtrArray) inheriting = NULL;
  gsize i;

  for (i = 0; !shown && i < G_N_ELEMENTS (list_properties); i++)
    shown = g_str_equal (list_properties[i].name, property)
            && g_str_equal (list_properties[i].interfaces[0], "QubesVM");
  if (!shown || subject == NULL
      || !(g_strcmp0 (qm_object_get_string (subject, "Domain", "Klass"), "TemplateVM") == 0
           || qm_object_get_boolean (subject, "AppVM", "TemplateForDispvms")
           || qm_object_get_boolean (subject, "StandaloneVM", "TemplateForDispvms")))
    return;
  inheriting = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, self->domains);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      QmObject *t = value;
      guint depth;

      /* bounded as qubesd bounds it: qube -> disposable template -> template */
      for (depth = 0; t != NULL && depth < 8; depth++)
        if ((t = template_of (self, t)) == subject)
          {
            g_ptr_array_add (inheriting, key);
            break;
          }
    }
  /* The template of hundreds of qubes: one call for all of them rather than one each. */
  if (self->has_bulk && inheriting->len > 2 * MAX_FETCHES_IN_FLIGHT)
    request_all_props (self);
  else
    for (i = 0; i < inheriting->len; i++)
      request_props (self, inheriting->pdata[i]);
}

static void request_bulk (QmClient *self);

static void
request_all_props (QmClient *self)
{
  GHashTableIter iter;
  gpointer path;

  if (self->has_bulk)
    {
      request_bulk (self);
      return;
    }
  g_hash_table_iter_init (&iter, self->domains);
  while (g_hash_table_iter_next (&iter, &path, NULL))
    request_props (self, path);
}

/* ---- GetDomainProperties: every qube in one call ---------------------------------------- */

static void apply_bulk (QmClient   *self,
                        GHashTable *tables);

/* The main loop's time one slice of GetAllDomainProperties' answer may take. */
#define BULK_SLICE_US 4000

static void bulk_finish (QmClient   *self,
                         GHashTable *tables);

/* Reads GetAllDomainProperties' answer into qube name -> property table, a slice at a time at
 * idle priority: at 1,000 qubes it is a good part of the start-up's work, and meanwhile the
 * window paints and answers. */
static gboolean
bulk_parse_cb (gpointer user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  gsize n = g_variant_n_children (self->bulk_reply);
  gint64 until = g_get_monotonic_time () + BULK_SLICE_US;
  g_autoptr(GHashTable) tables = NULL;

  while (self->bulk_next < n)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (self->bulk_reply, self->bulk_next);
      g_autoptr(GVariant) name = g_variant_get_child_value (entry, 0);
      g_autoptr(GVariant) array = g_variant_get_child_value (entry, 1);

      PropTable *table = prop_table_new (array);

      table->received = self->bulk_received;
      g_hash_table_insert (self->bulk_tables, g_variant_dup_string (name, NULL), table);
      self->bulk_next++;
      if (self->bulk_next % 16 == 0 && g_get_monotonic_time () >= until)
        return G_SOURCE_CONTINUE;
    }
  self->bulk_parse_id = 0;
  g_clear_pointer (&self->bulk_reply, g_variant_unref);
  tables = g_steal_pointer (&self->bulk_tables);
  bulk_finish (self, tables);
  return G_SOURCE_REMOVE;
}

/* Drops an answer being read (tear_down(), finalize). */
static void
bulk_parse_cancel (QmClient *self)
{
  if (self->bulk_parse_id != 0)
    g_source_remove (self->bulk_parse_id);
  self->bulk_parse_id = 0;
  g_clear_pointer (&self->bulk_reply, g_variant_unref);
  g_clear_pointer (&self->bulk_tables, g_hash_table_unref);
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

  if (reply != NULL)
    {
      /* Still "in flight" (the list is not complete) until it is read. */
      bulk_parse_cancel (self);
      self->bulk_reply = g_variant_get_child_value (reply, 0);
      self->bulk_next = 0;
      self->bulk_received = g_get_monotonic_time ();
      self->bulk_tables = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                 prop_table_free);
      self->bulk_parse_id = g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, bulk_parse_cb, self, NULL);
      g_object_unref (self);
      return;
    }
  self->bulk_in_flight = FALSE;
  if (error != NULL && self->bulk_named)
    {
      /* An older qubesd: every property of every qube. */
      g_debug ("GetDomainProperties: %s", error->message);
      self->has_named_bulk = FALSE;
      self->bulk_again = FALSE;
      request_bulk (self);
      g_object_unref (self);
      return;
    }
  if (error != NULL)
    {
      /* Older still: one GetAllProperties per qube, as before. */
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
  mark_dirty (self, NULL);
  g_object_unref (self);
}

/* GetAllDomainProperties' answer, read. */
static void
bulk_finish (QmClient   *self,
             GHashTable *tables)
{
  self->bulk_in_flight = FALSE;
  /* Kept (already read) until the objects are there to map names to paths. */
  if (!self->has_snapshot)
    {
      g_clear_pointer (&self->early_bulk, g_hash_table_unref);
      self->early_bulk = g_hash_table_ref (tables);
    }
  else
    apply_bulk (self, tables);
  if (self->bulk_again)
    {
      self->bulk_again = FALSE;
      request_bulk (self);
    }
  mark_dirty (self, NULL);
}

static void
apply_bulk (QmClient   *self,
            GHashTable *tables)
{
  GHashTableIter iter;
  gpointer path, object;
  g_autoptr(GHashTable) paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                        (GDestroyNotify) g_variant_unref);

  /* Names map to paths through the objects themselves: no second copy of the escaping. */
  g_hash_table_iter_init (&iter, self->domains);
  while (g_hash_table_iter_next (&iter, &path, &object))
    {
      const gchar *name = qm_object_get_string (object, "Domain", "Name");
      PropTable *own = g_hash_table_lookup (self->props, path);
      gpointer key, table;

      /* A qube fetched one by one meanwhile has the fresher answer; one the answer did not
       * cover (added meanwhile) is fetched one by one. */
      if (name == NULL || g_hash_table_contains (self->in_flight, path))
        continue;
      /* ... and so has one whose own answer came while this one was being read */
      if (own != NULL && own->received > self->bulk_received)
        continue;
      if (g_hash_table_steal_extended (tables, name, &key, &table))
        {
          g_hash_table_insert (self->props, g_strdup (path), table);
          fill_list_values (self, path, table, FALSE, paths);
          g_free (key);
        }
      else
        request_props (self, path);
    }
}

/* What the window reads from the property tables (list_properties[], and what
 * qm_client_get_property_info () is asked: the qube references of the list and of the window's
 * "used by"): all GetDomainProperties is asked for, a seventh of a qube's properties. A qube's
 * own GetAllProperties answer has them all. */
static const gchar *const table_properties[] = {
  "netvm", "template", "template_for_dispvms", "ip", "virt_mode", "provides_network",
  "backup_timestamp", "default_dispvm", "management_dispvm", "guivm", "audiovm", NULL,
};

static void
request_bulk (QmClient *self)
{
  if (self->bulk_in_flight)
    {
      self->bulk_again = TRUE;
      return;
    }
  self->bulk_in_flight = TRUE;
  self->bulk_named = self->has_named_bulk;
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH,
                          "org.qubes_os.Admin1.Manager",
                          self->bulk_named ? "GetDomainProperties" : "GetAllDomainProperties",
                          self->bulk_named
                            ? g_variant_new ("(^as)", (gchar **) table_properties)
                            : NULL,
                          G_VARIANT_TYPE ("(a{sa(ssbs)})"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->generation, bulk_done, g_object_ref (self));
}

/* ---- the objects: snapshot and signals -------------------------------------------------- */

static void queue_volumes (QmClient    *self,
                           const gchar *domain_path);

static void
domain_added (QmClient    *self,
              const gchar *path)
{
  g_clear_pointer (&self->sorted_domains, g_ptr_array_unref);
  /* The root's snapshot leaves the volumes out: each qube's own GetManagedObjects has them. */
  queue_volumes (self, path);
  /* The snapshot's qubes are covered by the bulk answer and maybe_ready(). */
  if (!self->has_snapshot)
    return;
  self->loaded = FALSE;
  if (!self->bulk_in_flight)
    request_props (self, path);
}

static void
domain_removed (QmClient    *self,
                const gchar *path)
{
  g_clear_pointer (&self->sorted_domains, g_ptr_array_unref);
  g_hash_table_remove (self->props, path);
  g_hash_table_remove (self->stats, path);
  g_hash_table_remove (self->notes, path);
}

static void mark_usage_stale (QmClient    *self,
                              const gchar *domain_path);

/* After a change of the object at path: if a volume, its qube's sum is added up again. */
static void
invalidate_disk_usage (QmClient    *self,
                       const gchar *path)
{
  gsize domain_len = 0;

  if (path_kind (path, &domain_len) == KIND_VOLUME)
    {
      g_autofree gchar *domain_path = g_strndup (path, domain_len);

      g_hash_table_remove (self->disk_usage, domain_path);
    }
}

/* Interfaces of one object (a{sa{sv}}), from the snapshot or InterfacesAdded. */
static void
add_interfaces (QmClient    *self,
                const gchar *path,
                GVariant    *interfaces)
{
  gsize domain_len = 0;
  ObjectKind kind = path_kind (path, &domain_len);
  GHashTable *table = table_for_kind (self, kind);
  QmObject *object;
  gboolean is_new = FALSE, was_domain;
  gsize i, n;

  if (table == NULL)
    return;
  object = g_hash_table_lookup (table, path);
  if (object == NULL)
    {
      object = qm_object_new (path);
      g_hash_table_insert (table, g_strdup (path), object);
      is_new = TRUE;
    }
  was_domain = qm_object_has_interface (object, "Domain");

  n = g_variant_n_children (interfaces);
  for (i = 0; i < n; i++)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (interfaces, i);
      g_autoptr(GVariant) name = g_variant_get_child_value (entry, 0);
      g_autoptr(GVariant) properties = g_variant_get_child_value (entry, 1);
      const gchar *interface = short_interface (g_variant_get_string (name, NULL));

      if (interface == NULL)
        continue;
      qm_object_set_interface (object, interface, properties);
      /* The snapshot's volumes are read for their Usage only: added up here, their properties
       * are never indexed unless a window asks for them. */
      if (kind == KIND_VOLUME && g_str_equal (interface, "Volume") && !self->has_snapshot)
        {
          g_autofree gchar *domain_path = g_strndup (path, domain_len);
          guint64 *sum = g_hash_table_lookup (self->disk_usage, domain_path);

          if (sum == NULL)
            {
              sum = g_new0 (guint64, 1);
              g_hash_table_insert (self->disk_usage, g_steal_pointer (&domain_path), sum);
            }
          *sum += dict_get_uint64 (properties, "Usage");
        }
    }

  if (kind == KIND_DOMAIN && !was_domain && qm_object_has_interface (object, "Domain"))
    domain_added (self, path);
  /* Read again (GetManagedObjects after events): its interfaces but Domain came empty. */
  else if (kind == KIND_DOMAIN && self->has_snapshot)
    {
      PropTable *own = g_hash_table_lookup (self->props, path);

      if (own != NULL)
        fill_list_values (self, path, own, FALSE, NULL);
    }
  if (kind == KIND_VOLUME && self->has_snapshot)
    invalidate_disk_usage (self, path);
  if (kind == KIND_VOLUME && is_new)
    {
      g_autofree gchar *domain_path = g_strndup (path, domain_len);
      GPtrArray *list = g_hash_table_lookup (self->domain_volumes, domain_path);

      if (list == NULL)
        {
          list = g_ptr_array_new_with_free_func (g_object_unref);
          g_hash_table_insert (self->domain_volumes, g_steal_pointer (&domain_path), list);
        }
      g_ptr_array_add (list, g_object_ref (object));
    }
}

static void
remove_interfaces (QmClient           *self,
                   const gchar        *path,
                   const gchar *const *interfaces)
{
  gsize domain_len = 0;
  ObjectKind kind = path_kind (path, &domain_len);
  GHashTable *table = table_for_kind (self, kind);
  QmObject *object = table != NULL ? g_hash_table_lookup (table, path) : NULL;
  gboolean was_domain;
  guint i;

  if (object == NULL)
    return;
  was_domain = qm_object_has_interface (object, "Domain");
  for (i = 0; interfaces[i] != NULL; i++)
    {
      const gchar *interface = short_interface (interfaces[i]);

      if (interface != NULL)
        qm_object_remove_interface (object, interface);
    }
  if (kind == KIND_DOMAIN && was_domain && !qm_object_has_interface (object, "Domain"))
    domain_removed (self, path);
  invalidate_disk_usage (self, path);
  if (!qm_object_is_empty (object))
    return;
  if (kind == KIND_VOLUME)
    {
      g_autofree gchar *domain_path = g_strndup (path, domain_len);
      GPtrArray *list = g_hash_table_lookup (self->domain_volumes, domain_path);

      if (list != NULL && g_ptr_array_remove (list, object) && list->len == 0)
        g_hash_table_remove (self->domain_volumes, domain_path);
    }
  g_hash_table_remove (table, path);
}

typedef struct
{
  QmClient *self;
  QmObject *object;
  gchar    *interface; /* short name */
} RefetchData;

static void
refetch_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  RefetchData *data = user_data;
  QmClient *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply != NULL)
    {
      g_autoptr(GVariant) changed = g_variant_get_child_value (reply, 0);

      /* Applied only to the object still at that path: one removed meanwhile is gone. */
      if (lookup_object (self, qm_object_get_path (data->object)) == data->object
          && qm_object_update (data->object, data->interface, changed, NULL))
        {
          invalidate_disk_usage (self, qm_object_get_path (data->object));
          object_changed (self, qm_object_get_path (data->object));
        }
    }
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_debug ("GetAll %s: %s", qm_object_get_path (data->object), error->message);
  g_object_unref (data->self);
  g_object_unref (data->object);
  g_free (data->interface);
  g_free (data);
}

static void
properties_changed (QmClient    *self,
                    const gchar *path,
                    GVariant    *parameters)
{
  g_autoptr(GVariant) interface_value = g_variant_get_child_value (parameters, 0);
  g_autoptr(GVariant) changed = g_variant_get_child_value (parameters, 1);
  g_autoptr(GVariant) invalidated_value = g_variant_get_child_value (parameters, 2);
  const gchar *full_interface, *interface;
  g_autofree const gchar **invalidated = NULL;
  QmObject *object;

  /* Child by child: a format string with "&" has GVariant serialise the whole message first,
   * which was a tenth of the window's CPU while qubes start and stop. */
  full_interface = g_variant_get_string (interface_value, NULL);
  invalidated = g_variant_get_strv (invalidated_value, NULL);
  interface = short_interface (full_interface);
  object = lookup_object (self, path);
  if (interface == NULL || object == NULL
      || !qm_object_update (object, interface, changed, invalidated))
    return;
  invalidate_disk_usage (self, path);

  /* Invalidated: the signal says it changed, not its value; read it again. */
  if (invalidated[0] != NULL)
    {
      RefetchData *data = g_new0 (RefetchData, 1);

      data->self = g_object_ref (self);
      data->object = g_object_ref (object);
      data->interface = g_strdup (interface);
      g_dbus_connection_call (self->connection, QM_BUS_NAME, path, PROPERTIES_INTERFACE,
                              "GetAll", g_variant_new ("(s)", full_interface),
                              G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                              self->generation, refetch_done, data);
    }

  if (g_str_equal (interface, "Domain") && g_variant_lookup (changed, "PowerState", "&s", NULL))
    {
      const gchar *power = qm_object_get_string (object, "Domain", "PowerState");

      /* Figures of a qube that stopped are no longer true. */
      if (g_strcmp0 (power, "Running") != 0 && g_strcmp0 (power, "Paused") != 0)
        g_hash_table_remove (self->stats, path);
      /* Its volumes changed as it started (snapshots) or stopped (commits). */
      mark_usage_stale (self, path);
    }
  object_changed (self, path);
}

/* ---- the model kept current by events alone ------------------------------------------- */

static void schedule_refresh (QmClient *self);

/* Drops an object and what the client knows of it, as an InterfacesRemoved of all its
 * interfaces would. */
static void
drop_object (QmClient    *self,
             const gchar *path)
{
  GHashTable *table = table_for_kind (self, path_kind (path, NULL));
  QmObject *found = table != NULL ? g_hash_table_lookup (table, path) : NULL;
  g_autoptr(QmObject) object = found != NULL ? g_object_ref (found) : NULL;
  g_autofree const gchar **names = NULL;
  g_autoptr(GPtrArray) full = NULL;
  guint i, n = 0;

  if (object == NULL)
    return;
  names = qm_object_list_interfaces (object, &n);
  full = g_ptr_array_new_with_free_func (g_free);
  for (i = 0; i < n; i++)
    g_ptr_array_add (full, g_strconcat (QM_INTERFACE_PREFIX, names[i], NULL));
  g_ptr_array_add (full, NULL);
  remove_interfaces (self, path, (const gchar *const *) full->pdata);
  /* An object with interfaces not ours left is dropped all the same. */
  if (g_hash_table_lookup (table, path) == object)
    g_hash_table_remove (table, path);
}

static void
drop_domain (QmClient    *self,
             const gchar *path)
{
  GPtrArray *list = g_hash_table_lookup (self->domain_volumes, path);
  g_autoptr(GPtrArray) volumes = g_ptr_array_new_with_free_func (g_free);
  guint i;

  for (i = 0; list != NULL && i < list->len; i++)
    g_ptr_array_add (volumes, g_strdup (qm_object_get_path (list->pdata[i])));
  for (i = 0; i < volumes->len; i++)
    drop_object (self, volumes->pdata[i]);
  drop_object (self, path);
}

typedef struct
{
  QmClient *self;
  QmObject *object;
  gchar    *interface; /* short name */
} RefreshData;

static void
refresh_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  RefreshData *data = user_data;
  QmClient *self = data->self;
  const gchar *path = qm_object_get_path (data->object);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint left;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  /* Cancelled: qubesd went away and the counters were reset with everything else. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    goto out;

  self->refresh_calls--;
  left = GPOINTER_TO_UINT (g_hash_table_lookup (self->refreshing, path)) - 1;
  if (left > 0)
    g_hash_table_insert (self->refreshing, g_strdup (path), GUINT_TO_POINTER (left));
  else
    g_hash_table_remove (self->refreshing, path);

  /* Replies and signals come in the order qubesd sent them: what a reply says is newer than
   * what came before it. Applied only to the object still at that path. */
  if (reply != NULL && lookup_object (self, path) == data->object)
    {
      g_autoptr(GVariant) properties = g_variant_get_child_value (reply, 0);

      qm_object_set_interface (data->object, data->interface, properties);
      if (g_str_equal (data->interface, "Domain"))
        {
          const gchar *power = qm_object_get_string (data->object, "Domain", "PowerState");

          if (g_strcmp0 (power, "Running") != 0 && g_strcmp0 (power, "Paused") != 0)
            g_hash_table_remove (self->stats, path);
        }
      object_changed (self, path);
    }
  else if (error != NULL)
    {
      g_autofree gchar *remote = g_dbus_error_get_remote_error (error);

      /* No longer there for this user: a qube that lost the tag that gave it to them (its
       * domain-tag-delete is the last event about it they get), or removed meanwhile. Reading
       * the objects again drops it, with its volumes. */
      if (g_strcmp0 (remote, "org.freedesktop.DBus.Error.UnknownObject") == 0)
        self->resync_wanted = TRUE;
      else
        g_debug ("GetAll %s %s: %s", path, data->interface, error->message);
    }

  if (g_hash_table_size (self->stale) > 0 || self->resync_wanted)
    schedule_refresh (self);

out:
  g_object_unref (data->self);
  g_object_unref (data->object);
  g_free (data->interface);
  g_free (data);
}

static void resync_done (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data);

/* Reads again what events said changed: at most once per 100 ms, so that the events of a qube
 * starting (half a dozen in a few ms) cost one read. */
static gboolean
refresh_cb (gpointer user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  GHashTableIter iter;
  gpointer path;

  self->refresh_id = 0;
  self->last_refresh = g_get_monotonic_time ();
  if (self->resync_wanted && !self->resync_in_flight)
    {
      self->resync_wanted = FALSE;
      self->resync_in_flight = TRUE;
      g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH,
                              OBJECT_MANAGER_INTERFACE, "GetManagedObjects", NULL,
                              G_VARIANT_TYPE ("(a{oa{sa{sv}}})"), G_DBUS_CALL_FLAGS_NONE, -1,
                              self->generation, resync_done, g_object_ref (self));
    }

  g_hash_table_iter_init (&iter, self->stale);
  while (g_hash_table_iter_next (&iter, &path, NULL)
         && self->refresh_calls < MAX_REFRESH_CALLS)
    {
      QmObject *object;
      g_autofree const gchar **interfaces = NULL;
      guint i, n = 0;

      /* One read at a time per object: the one in flight may predate the event. This one
       * stays stale and is read when that one is done. */
      if (g_hash_table_contains (self->refreshing, path))
        continue;
      object = lookup_object (self, path);
      if (object != NULL)
        interfaces = qm_object_list_interfaces (object, &n);
      for (i = 0; i < n; i++)
        {
          RefreshData *data = g_new0 (RefreshData, 1);
          g_autofree gchar *full = g_strconcat (QM_INTERFACE_PREFIX, interfaces[i], NULL);

          data->self = g_object_ref (self);
          data->object = g_object_ref (object);
          data->interface = g_strdup (interfaces[i]);
          g_dbus_connection_call (self->connection, QM_BUS_NAME, path, PROPERTIES_INTERFACE,
                                  "GetAll", g_variant_new ("(s)", full),
                                  G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                                  self->generation, refresh_done, data);
        }
      if (n > 0)
        {
          g_hash_table_insert (self->refreshing, g_strdup (path), GUINT_TO_POINTER (n));
          self->refresh_calls += n;
        }
      g_hash_table_iter_remove (&iter);
    }
  return G_SOURCE_REMOVE;
}

static void
schedule_refresh (QmClient *self)
{
  gint64 wait_us;

  if (self->refresh_id != 0)
    return;
  wait_us = self->last_refresh + FLUSH_INTERVAL_US - g_get_monotonic_time ();
  if (wait_us <= 0)
    self->refresh_id = g_idle_add_full (G_PRIORITY_DEFAULT, refresh_cb, self, NULL);
  else
    self->refresh_id = g_timeout_add_full (G_PRIORITY_DEFAULT, (guint) (wait_us / 1000) + 1,
                                           refresh_cb, self, NULL);
}

static void
mark_stale (QmClient    *self,
            const gchar *path)
{
  if (!g_hash_table_contains (self->stale, path))
    g_hash_table_add (self->stale, g_strdup (path));
  schedule_refresh (self);
}

static void
want_resync (QmClient *self)
{
  self->resync_wanted = TRUE;
  schedule_refresh (self);
}

/* A fresh GetManagedObjects: objects new to the client are added (a qube just created, or one
 * the user was just allowed to see), the others replaced, and the ones no longer listed
 * dropped. */
static void
resync_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) objects = NULL;
  g_autoptr(GHashTable) listed = NULL;
  g_autoptr(GPtrArray) gone = NULL;
  GHashTable *tables[3];
  GHashTableIter iter;
  gpointer path;
  gsize i, n;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (self);
      return;
    }
  self->resync_in_flight = FALSE;
  if (reply == NULL)
    g_debug ("GetManagedObjects: %s", error->message);
  else
    {
      listed = g_hash_table_new (g_str_hash, g_str_equal);
      objects = g_variant_get_child_value (reply, 0);
      n = g_variant_n_children (objects);
      for (i = 0; i < n; i++)
        {
          g_autoptr(GVariant) entry = g_variant_get_child_value (objects, i);
          g_autoptr(GVariant) object_path = g_variant_get_child_value (entry, 0);
          g_autoptr(GVariant) interfaces = g_variant_get_child_value (entry, 1);
          const gchar *p = g_variant_get_string (object_path, NULL);

          add_interfaces (self, p, interfaces);
          /* Points into the reply, kept until the end. */
          g_hash_table_add (listed, (gpointer) p);
        }
      gone = g_ptr_array_new_with_free_func (g_free);
      tables[0] = self->volumes;
      tables[1] = self->domains;
      tables[2] = self->labels;
      for (i = 0; i < G_N_ELEMENTS (tables); i++)
        {
          g_hash_table_iter_init (&iter, tables[i]);
          while (g_hash_table_iter_next (&iter, &path, NULL))
            {
              gsize domain_len = 0;
              g_autofree gchar *domain_path = NULL;

              /* The root's snapshot has no volumes: they go with their qube. */
              if (path_kind (path, &domain_len) == KIND_VOLUME)
                domain_path = g_strndup (path, domain_len);
              if (!g_hash_table_contains (listed, domain_path != NULL ? domain_path : path))
                g_ptr_array_add (gone, g_strdup (path));
            }
        }
      for (i = 0; i < gone->len; i++)
        drop_object (self, gone->pdata[i]);
      mark_dirty (self, NULL);
    }
  if (self->resync_wanted || g_hash_table_size (self->stale) > 0)
    schedule_refresh (self);
  g_object_unref (self);
}

/* The value of one key of an event's arguments or a Stats signal's (a(ss)), or NULL. */
static gchar *
event_argument (GVariant    *arguments,
                const gchar *key)
{
  g_autoptr(GVariant) v = pair_lookup (arguments, key);

  return v != NULL ? g_variant_dup_string (v, NULL) : NULL;
}

/* "domain-pre-start", "property-pre-set:netvm": what is announced has not happened yet. */
static gboolean
is_pre_event (const gchar *name)
{
  const gchar *colon = strchr (name, ':');
  gsize len = colon != NULL ? (gsize) (colon - name) : strlen (name);

  return g_strstr_len (name, (gssize) len, "-pre-") != NULL;
}

/* An event no broadcast accompanies (see the top of the file): what it is about is read again. */
static void
event_without_broadcast (QmClient    *self,
                         const gchar *path,
                         const gchar *name,
                         GVariant    *arguments)
{
  if (is_pre_event (name))
    return;
  if (path != NULL)
    {
      /* Any event of a qube can change what a row shows (state, features, tags, properties);
       * one about a qube not known has just become visible. */
      if (qm_client_lookup_domain (self, path) != NULL)
        mark_stale (self, path);
      else
        want_resync (self);
      return;
    }
  if (g_str_equal (name, "domain-delete"))
    {
      g_autofree gchar *vm = event_argument (arguments, "vm");
      g_autofree gchar *encoded = vm != NULL ? qm_path_encode (vm) : NULL;
      g_autofree gchar *domain_path = encoded != NULL
                                      ? g_strconcat (QM_DOMAIN_PATH_PREFIX, encoded, NULL)
                                      : NULL;

      if (domain_path != NULL && qm_client_lookup_domain (self, domain_path) != NULL)
        {
          drop_domain (self, domain_path);
          mark_dirty (self, NULL);
        }
    }
  else if (g_str_equal (name, "domain-add"))
    {
      g_autofree gchar *vm = event_argument (arguments, "vm");

      if (vm == NULL || qm_client_lookup_domain_by_name (self, vm) == NULL)
        want_resync (self);
    }
  else if (g_str_has_prefix (name, "property-"))
    /* A global property: the Manager's D-Bus properties. */
    mark_stale (self, QM_ROOT_PATH);
}

/* Event(t sequence, s subject, s name, a(ss) arguments), from the Subscription copy or (an
 * older qubesd without SubscribeEvents) the broadcast; path is NULL for the Manager's. */
static void
handle_event (QmClient    *self,
              const gchar *path,
              GVariant    *parameters,
              gboolean     broadcast)
{
  g_autoptr(GVariant) name_value = NULL;
  g_autoptr(GVariant) arguments = NULL;
  const gchar *name;
  guint64 seq;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(tssa(ss))")))
    return;
  /* Child by child: a format with "&s" would have GVariant serialise the whole message. */
  g_variant_get_child (parameters, 0, "t", &seq);
  /* Each event once: an administrator may get it both ways (an older daemon, or a broadcast
   * match added after SubscribeEvents failed), and one sender's signals come in order. */
  if (self->has_seq && seq <= self->last_seq)
    return;
  self->has_seq = TRUE;
  self->last_seq = seq;
  if (broadcast)
    saw_broadcast (self);
  name_value = g_variant_get_child_value (parameters, 2);
  name = g_variant_get_string (name_value, NULL);

  if (event_matters_with_broadcasts (name, path != NULL))
    {
      if (path == NULL)
        /* A global default changed: any qube at its default may now show another value. */
        request_all_props (self);
      else if (!self->has_snapshot)
        g_hash_table_add (self->early_events, g_strdup (path));
      else if (qm_client_lookup_domain (self, path) != NULL)
        {
          request_props (self, path);
          request_inheriting (self, path, event_property (name));
        }
    }

  /* Before the snapshot: it is newer than the event. */
  if (self->broadcasts_seen || !self->has_snapshot)
    return;
  arguments = g_variant_get_child_value (parameters, 3);
  event_without_broadcast (self, path, name, arguments);
}

static void
handle_stats (QmClient    *self,
              const gchar *path,
              GVariant    *parameters)
{
  g_autoptr(GVariant) pairs = NULL;
  g_autofree gchar *cpu_usage = NULL;
  g_autofree gchar *memory_kb = NULL;
  Stats *stats;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(a(ss))"))
      || qm_client_lookup_domain (self, path) == NULL)
    return;
  stats = g_hash_table_lookup (self->stats, path);
  if (stats == NULL)
    {
      stats = g_new0 (Stats, 1);
      g_hash_table_insert (self->stats, g_strdup (path), stats);
    }
  pairs = g_variant_get_child_value (parameters, 0);
  if ((cpu_usage = event_argument (pairs, "cpu_usage")) != NULL)
    stats->cpu_usage = g_ascii_strtod (cpu_usage, NULL);
  if ((memory_kb = event_argument (pairs, "memory_kb")) != NULL)
    stats->memory_kb = g_ascii_strtoull (memory_kb, NULL, 10);
  mark_dirty (self, path);
}

/* Every signal of qubesd comes here, from the moment it appears, before the snapshot is asked
 * for: nothing is lost between the snapshot and the stream. */
static void
on_signal (GDBusConnection *connection,
           const gchar     *sender_name,
           const gchar     *object_path,
           const gchar     *interface_name,
           const gchar     *signal_name,
           GVariant        *parameters,
           gpointer         user_data)
{
  QmClient *self = QM_CLIENT (user_data);

  /* A GLib without the fix for CVE-2024-34397 matches a well-known sender name against any
   * sender: a unicast signal from another peer must not pass for qubesd's. */
  if (self->owner != NULL && g_strcmp0 (sender_name, self->owner) != 0)
    return;
  if (g_str_equal (signal_name, "Event"))
    {
      /* NULL: the Manager's */
      const gchar *subject = g_strcmp0 (object_path, QM_ROOT_PATH) == 0 ? NULL : object_path;

      if (subject != NULL && !is_domain_path (subject))
        return;
      if (g_strcmp0 (interface_name, SUBSCRIPTION_INTERFACE) == 0)
        handle_event (self, subject, parameters, FALSE);
      else if (g_strcmp0 (interface_name, subject == NULL ? MANAGER_INTERFACE : DOMAIN_INTERFACE)
               == 0)
        handle_event (self, subject, parameters, TRUE);
      return;
    }
  /* The Stats and NotesChanged copies of a user who gets no broadcasts (not a broadcast
   * itself) */
  if (g_strcmp0 (interface_name, SUBSCRIPTION_INTERFACE) == 0)
    {
      if (g_str_equal (signal_name, "Stats") && is_domain_path (object_path))
        handle_stats (self, object_path, parameters);
      else if (g_str_equal (signal_name, "NotesChanged") && is_domain_path (object_path))
        qm_client_refresh_notes (self, object_path);
      return;
    }
  saw_broadcast (self);
  if (g_str_equal (signal_name, "Stats"))
    {
      if (g_strcmp0 (interface_name, DOMAIN_INTERFACE) == 0)
        handle_stats (self, object_path, parameters);
      return;
    }
  /* the notes a row shows are read again (the others when a row asks) */
  if (g_str_equal (signal_name, "NotesChanged"))
    {
      if (g_strcmp0 (interface_name, DOMAIN_INTERFACE) == 0 && is_domain_path (object_path))
        qm_client_refresh_notes (self, object_path);
      return;
    }
  /* Sent before the snapshot: already in it. */
  if (!self->has_snapshot)
    return;

  if (g_strcmp0 (interface_name, PROPERTIES_INTERFACE) == 0
      && g_str_equal (signal_name, "PropertiesChanged")
      && g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv}as)")))
    properties_changed (self, object_path, parameters);
  else if (g_strcmp0 (interface_name, OBJECT_MANAGER_INTERFACE) == 0
           && g_strcmp0 (object_path, QM_ROOT_PATH) == 0)
    {
      if (g_str_equal (signal_name, "InterfacesAdded")
          && g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(oa{sa{sv}})")))
        {
          const gchar *path;
          g_autoptr(GVariant) interfaces = NULL;

          g_variant_get (parameters, "(&o@a{sa{sv}})", &path, &interfaces);
          add_interfaces (self, path, interfaces);
          objects_changed (self, path);
        }
      else if (g_str_equal (signal_name, "InterfacesRemoved")
               && g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(oas)")))
        {
          const gchar *path;
          g_autofree const gchar **interfaces = NULL;

          g_variant_get (parameters, "(&o^a&s)", &path, &interfaces);
          remove_interfaces (self, path, interfaces);
          objects_changed (self, path);
        }
    }
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

  if (!self->has_snapshot || self->manager == NULL)
    return;

  set_state (self, QM_CLIENT_STATE_READY, NULL);
  /* The bulk answer usually follows soon: a partial list ("Loading…") shows only when it
   * takes longer than BULK_WAIT_US, rather than a second diff right after (schedule_flush()). */
  self->last_flush = g_get_monotonic_time ();
  self->ready_time = self->last_flush;
  if (self->early_bulk != NULL)
    {
      apply_bulk (self, self->early_bulk);
      g_clear_pointer (&self->early_bulk, g_hash_table_unref);
    }
  else if (!self->bulk_in_flight)
    request_all_props (self);
  g_hash_table_iter_init (&iter, self->early_events);
  while (g_hash_table_iter_next (&iter, &path, NULL))
    {
      request_props (self, path);
      request_inheriting (self, path, NULL);
    }
  g_hash_table_remove_all (self->early_events);
  mark_dirty (self, NULL);

  /* Lifecycle methods come with a later issue: offer them only when the daemon has them. */
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_DOMAIN_PATH_PREFIX "dom0",
                          "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                          G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, self->generation,
                          introspect_done, g_object_ref (self));
}

static void
snapshot_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) objects = NULL;
  gsize i, n;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        set_state (self, QM_CLIENT_STATE_ABSENT, error->message);
      g_object_unref (self);
      return;
    }

  /* By index: a format string per element costs more than the rest of the walk. */
  objects = g_variant_get_child_value (reply, 0);
  n = g_variant_n_children (objects);
  for (i = 0; i < n; i++)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (objects, i);
      g_autoptr(GVariant) path = g_variant_get_child_value (entry, 0);
      g_autoptr(GVariant) interfaces = g_variant_get_child_value (entry, 1);

      add_interfaces (self, g_variant_get_string (path, NULL), interfaces);
    }
  self->has_snapshot = TRUE;
  maybe_ready (self);
  g_object_unref (self);
}

static void
manager_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) properties = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        set_state (self, QM_CLIENT_STATE_ABSENT, error->message);
      g_object_unref (self);
      return;
    }
  properties = g_variant_get_child_value (reply, 0);
  self->manager = qm_object_new (QM_ROOT_PATH);
  qm_object_set_interface (self->manager, "Manager", properties);
  maybe_ready (self);
  g_object_unref (self);
}

static void
tear_down (QmClient *self)
{
  guint i;

  g_cancellable_cancel (self->generation);
  g_clear_object (&self->generation);
  self->generation = g_cancellable_new ();

  for (i = 0; i < G_N_ELEMENTS (self->subscriptions); i++)
    {
      if (self->subscriptions[i] != 0 && self->connection != NULL)
        g_dbus_connection_signal_unsubscribe (self->connection, self->subscriptions[i]);
      self->subscriptions[i] = 0;
    }
  g_clear_pointer (&self->owner, g_free);
  self->has_snapshot = FALSE;
  g_clear_object (&self->manager);
  g_hash_table_remove_all (self->domains);
  g_clear_pointer (&self->sorted_domains, g_ptr_array_unref);
  g_hash_table_remove_all (self->labels);
  g_hash_table_remove_all (self->volumes);
  g_hash_table_remove_all (self->domain_volumes);
  g_hash_table_remove_all (self->disk_usage);
  g_hash_table_remove_all (self->notes);
  g_hash_table_remove_all (self->notes_reading);
  g_queue_clear_full (&self->notes_queue, g_free);
  self->notes_in_flight = 0;
  g_queue_clear_full (&self->volumes_queue, g_free);
  self->volumes_in_flight = 0;
  g_hash_table_remove_all (self->usage_stale);
  if (self->usage_id != 0)
    g_source_remove (self->usage_id);
  self->usage_id = 0;

  g_hash_table_remove_all (self->props);
  g_hash_table_remove_all (self->in_flight);
  g_hash_table_remove_all (self->queued);
  g_queue_clear_full (&self->fetch_queue, g_free);
  g_hash_table_remove_all (self->stats);
  g_hash_table_remove_all (self->early_events);
  g_clear_pointer (&self->early_bulk, g_hash_table_unref);
  bulk_parse_cancel (self);
  self->has_bulk = TRUE;
  self->has_named_bulk = TRUE;
  self->bulk_in_flight = FALSE;
  self->bulk_again = FALSE;
  self->has_lifecycle = FALSE;
  self->loaded = FALSE;

  self->has_seq = FALSE;
  self->last_seq = 0;
  self->broadcasts_seen = FALSE;
  self->events_subscribed = FALSE;
  self->events_narrowed = FALSE;
  if (self->filter != NULL)
    g_atomic_int_set (&self->filter->broadcasts_seen, FALSE);
  g_hash_table_remove_all (self->stale);
  g_hash_table_remove_all (self->refreshing);
  self->refresh_calls = 0;
  if (self->refresh_id != 0)
    g_source_remove (self->refresh_id);
  self->refresh_id = 0;
  self->resync_wanted = FALSE;
  self->resync_in_flight = FALSE;
  self->all_dirty = TRUE;
}

static guint
subscribe_arg0 (QmClient    *self,
                const gchar *interface,
                const gchar *member,
                const gchar *path,
                const gchar *arg0)
{
  return g_dbus_connection_signal_subscribe (self->connection, QM_BUS_NAME, interface, member,
                                             path, arg0, G_DBUS_SIGNAL_FLAGS_NONE, on_signal,
                                             self, NULL);
}

static guint
subscribe (QmClient    *self,
           const gchar *interface,
           const gchar *member,
           const gchar *path)
{
  return subscribe_arg0 (self, interface, member, path, NULL);
}

static void
subscribe_done (GObject      *source,
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
  if (reply == NULL)
    {
      /* An older qubesd: its broadcasts, as before (what was sent meanwhile is lost). */
      g_debug ("SubscribeEvents: %s", error->message);
      self->subscriptions[SUBSCRIPTION_MANAGER_EVENT] = subscribe (self, MANAGER_INTERFACE, "Event",
                                                                    QM_ROOT_PATH);
      self->subscriptions[SUBSCRIPTION_DOMAIN_EVENT] = subscribe (self, DOMAIN_INTERFACE, "Event",
                                                                   NULL);
    }
  else
    {
      self->events_subscribed = TRUE;
      if (self->has_snapshot && !self->broadcasts_seen)
        /* Answered after the snapshot (polkit answered in another order): events in between
         * reached neither. Without broadcasts nothing else says what they changed. */
        want_resync (self);
      narrow_events (self);
    }
  g_object_unref (self);
}

/* Subscribes to qubesd's signals, then asks for the snapshot: every object (GetManagedObjects),
 * the Manager's properties and every qube's properties in one call, all at once. */
static void
start_snapshot (QmClient *self)
{
  guint i;

  set_state (self, QM_CLIENT_STATE_CONNECTING, NULL);
  /* Errors with their format and fields, for translation (qm_error_translate_reply()): first,
   * so that it holds for every later call. An older qubesd refuses; its errors stay English. */
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH, MANAGER_INTERFACE,
                          "EnableErrorDetails", NULL, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL,
                          NULL);
  /* The broadcasts the model needs, and the Event copies addressed to this connection (no
   * match rule brings those: they come anyway; the subscription hands them to on_signal). The
   * broadcast Events are left out: see the top of the file. */
  /* PropertiesChanged of the interfaces the window reads (watched_interfaces[]): the bus daemon
   * sends the window no other. */
  for (i = 0; i < N_WATCHED_INTERFACES; i++)
    {
      g_autofree gchar *interface = g_strconcat (QM_INTERFACE_PREFIX, watched_interfaces[i], NULL);

      self->subscriptions[N_SUBSCRIPTIONS + i] = subscribe_arg0 (self, PROPERTIES_INTERFACE,
                                                                 "PropertiesChanged", NULL, interface);
    }
  self->subscriptions[SUBSCRIPTION_OBJECTS] = subscribe (self, OBJECT_MANAGER_INTERFACE, NULL,
                                                         QM_ROOT_PATH);
  self->subscriptions[SUBSCRIPTION_STATS] = subscribe (self, DOMAIN_INTERFACE, "Stats", NULL);
  self->subscriptions[SUBSCRIPTION_COPIES] = subscribe (self, SUBSCRIPTION_INTERFACE, NULL, NULL);
  self->subscriptions[SUBSCRIPTION_NOTES] = subscribe (self, DOMAIN_INTERFACE, "NotesChanged", NULL);
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH, MANAGER_INTERFACE,
                          "SubscribeEvents", g_variant_new ("(s)", ""), G_VARIANT_TYPE ("(t)"),
                          G_DBUS_CALL_FLAGS_NONE, -1, self->generation, subscribe_done,
                          g_object_ref (self));
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH, OBJECT_MANAGER_INTERFACE,
                          "GetManagedObjects", NULL, G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                          G_DBUS_CALL_FLAGS_NONE, -1, self->generation, snapshot_done,
                          g_object_ref (self));
  g_dbus_connection_call (self->connection, QM_BUS_NAME, QM_ROOT_PATH, PROPERTIES_INTERFACE,
                          "GetAll", g_variant_new ("(s)", "org.qubes_os.Admin1.Manager"),
                          G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                          self->generation, manager_done, g_object_ref (self));
  request_bulk (self);
}

static void
name_appeared (GDBusConnection *connection,
               const gchar     *name,
               const gchar     *name_owner,
               gpointer         user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  gboolean early = self->early_snapshot;

  self->early_snapshot = FALSE;
  /* The snapshot asked for at start-up is for this owner, unless it failed: qubesd took the
   * name between that call and the watcher's. */
  if (!early || self->state == QM_CLIENT_STATE_ABSENT)
    {
      tear_down (self);
      start_snapshot (self);
    }
  g_free (self->owner);
  self->owner = g_strdup (name_owner);
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
  mark_dirty (self, NULL);
}

/* ---- public ----------------------------------------------------------------------------- */

gchar *
qm_client_get_bus_option (QmClient *self)
{
  if (self->address != NULL)
    return g_strdup_printf ("--bus-address=%s", self->address);
  return g_strdup (self->bus_type == G_BUS_TYPE_SESSION ? "--user" : "--system");
}

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
  self->filter = g_new0 (EventFilter, 1);
  self->filter_id = g_dbus_connection_add_filter (self->connection, filter_events, self->filter,
                                                  g_free);
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

GHashTable *
qm_client_get_changed_domains (QmClient *self)
{
  return self->changes;
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

QmObject *
qm_client_get_manager (QmClient *self)
{
  return self->manager;
}

static gint
compare_domains (gconstpointer a,
                 gconstpointer b)
{
  QmObject *x = *(QmObject **) a, *y = *(QmObject **) b;

  return g_strcmp0 (qm_object_get_string (x, "Domain", "Name"),
                    qm_object_get_string (y, "Domain", "Name"));
}

GList *
qm_client_get_domains (QmClient *self)
{
  GList *result = NULL;
  guint i;

  /* Names never change: sorted again only when a qube comes or goes. */
  if (self->sorted_domains == NULL)
    {
      GHashTableIter iter;
      gpointer object;

      self->sorted_domains = g_ptr_array_new_with_free_func (g_object_unref);
      g_hash_table_iter_init (&iter, self->domains);
      while (g_hash_table_iter_next (&iter, NULL, &object))
        if (qm_object_has_interface (object, "Domain"))
          g_ptr_array_add (self->sorted_domains, g_object_ref (object));
      g_ptr_array_sort (self->sorted_domains, compare_domains);
    }
  for (i = self->sorted_domains->len; i > 0; i--)
    result = g_list_prepend (result, g_object_ref (self->sorted_domains->pdata[i - 1]));
  return result;
}

QmObject *
qm_client_lookup_domain (QmClient    *self,
                         const gchar *object_path)
{
  QmObject *object;

  if (object_path == NULL)
    return NULL;
  object = g_hash_table_lookup (self->domains, object_path);
  return object != NULL && qm_object_has_interface (object, "Domain") ? object : NULL;
}

QmObject *
qm_client_lookup_domain_by_name (QmClient    *self,
                                 const gchar *name)
{
  GHashTableIter iter;
  gpointer object;

  g_hash_table_iter_init (&iter, self->domains);
  while (g_hash_table_iter_next (&iter, NULL, &object))
    if (g_strcmp0 (qm_object_get_string (object, "Domain", "Name"), name) == 0)
      return object;
  return NULL;
}

const gchar *
qm_client_domain_name (QmClient    *self,
                       const gchar *object_path)
{
  QmObject *object = qm_client_lookup_domain (self, object_path);

  return object != NULL ? qm_object_get_string (object, "Domain", "Name") : NULL;
}

static gint
compare_labels (gconstpointer a,
                gconstpointer b)
{
  return qm_object_get_int32 ((QmObject *) a, "Label", "Index")
         - qm_object_get_int32 ((QmObject *) b, "Label", "Index");
}

GList *
qm_client_get_labels (QmClient *self)
{
  GHashTableIter iter;
  gpointer object;
  GList *result = NULL;

  g_hash_table_iter_init (&iter, self->labels);
  while (g_hash_table_iter_next (&iter, NULL, &object))
    if (qm_object_has_interface (object, "Label"))
      result = g_list_prepend (result, g_object_ref (object));
  return g_list_sort (result, compare_labels);
}

QmObject *
qm_client_lookup_label (QmClient    *self,
                        const gchar *object_path)
{
  QmObject *object;

  if (object_path == NULL)
    return NULL;
  object = g_hash_table_lookup (self->labels, object_path);
  return object != NULL && qm_object_has_interface (object, "Label") ? object : NULL;
}

gboolean
qm_client_get_property_info (QmClient     *self,
                             const gchar  *object_path,
                             const gchar  *property,
                             gboolean     *out_is_default,
                             const gchar **out_value)
{
  PropTable *table = g_hash_table_lookup (self->props, object_path);
  const gchar *value = table != NULL ? prop_table_value (table, property, out_is_default) : NULL;

  if (value == NULL)
    return FALSE;
  if (out_value != NULL)
    *out_value = value;
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
  GPtrArray *list = g_hash_table_lookup (self->domain_volumes, object_path);
  guint64 *sum;
  guint i;

  if (list == NULL)
    return FALSE;
  sum = g_hash_table_lookup (self->disk_usage, object_path);
  if (sum == NULL)
    {
      sum = g_new0 (guint64, 1);
      for (i = 0; i < list->len; i++)
        *sum += qm_object_get_uint64 (list->pdata[i], "Volume", "Usage");
      g_hash_table_insert (self->disk_usage, g_strdup (object_path), sum);
    }
  if (out_bytes != NULL)
    *out_bytes = *sum;
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

  if (self->connection == NULL)
    {
      if (parameters != NULL)
        g_variant_unref (g_variant_ref_sink (parameters));
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                               "%s", "not connected");
      g_object_unref (task);
      return;
    }
  /* Interactive authorization can take as long as the user needs: no timeout. */
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
  /* The contract (dbus-interfaces/), compiled in by gdbus-codegen --interface-info-body. */
  const GDBusInterfaceInfo *infos[] = {
    &qm_domain_interface, &qm_qubes_vm_interface, &qm_app_vm_interface,
    &qm_disp_vm_interface, &qm_standalone_vm_interface, &qm_template_vm_interface,
    &qm_admin_vm_interface, &qm_remote_vm_interface,
  };
  g_autofree gchar *dbus_name = NULL;
  guint i;

  if (g_strv_contains (write_once, property))
    return FALSE;
  dbus_name = qm_property_dbus_name (property);
  for (i = 0; i < G_N_ELEMENTS (infos); i++)
    {
      GDBusPropertyInfo *const *p;

      for (p = infos[i]->properties; p != NULL && *p != NULL; p++)
        if (g_str_equal ((*p)->name, dbus_name))
          return ((*p)->flags & G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE) != 0;
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
  return g_strcmp0 (qm_object_get_string ((QmObject *) a, "Volume", "Name"),
                    qm_object_get_string ((QmObject *) b, "Volume", "Name"));
}

GList *
qm_client_get_volumes (QmClient    *self,
                       const gchar *domain_path)
{
  GPtrArray *list = g_hash_table_lookup (self->domain_volumes, domain_path);
  GList *result = NULL;
  guint i;

  for (i = 0; list != NULL && i < list->len; i++)
    if (qm_object_has_interface (list->pdata[i], "Volume"))
      result = g_list_prepend (result, g_object_ref (list->pdata[i]));
  return g_list_sort (result, compare_volumes);
}

QmObject *
qm_client_lookup_volume (QmClient    *self,
                         const gchar *domain_path,
                         const gchar *volume_name)
{
  GPtrArray *list = g_hash_table_lookup (self->domain_volumes, domain_path);
  guint i;

  for (i = 0; list != NULL && i < list->len; i++)
    if (g_strcmp0 (qm_object_get_string (list->pdata[i], "Volume", "Name"), volume_name) == 0)
      return list->pdata[i];
  return NULL;
}

/* ---- read on demand: notes and disk usage ---------------------------------------------- */

/* The first line that is not blank, without the white space around it, cut to a length the
 * list can show. */
static gchar *
notes_first_line (const gchar *notes)
{
  const gchar *line = notes, *end;
  gchar *text;

  while (line != NULL && *line != '\0')
    {
      end = strchr (line, '\n');
      if (end == NULL)
        end = line + strlen (line);
      while (line < end && g_ascii_isspace (*line))
        line++;
      if (line < end)
        {
          glong length;

          while (end > line && g_ascii_isspace (end[-1]))
            end--;
          text = g_strndup (line, (gsize) (end - line));
          length = g_utf8_strlen (text, -1);
          if (!g_utf8_validate (text, -1, NULL) || length <= NOTES_LINE_MAX)
            return text;
          line = g_utf8_offset_to_pointer (text, NOTES_LINE_MAX);
          text[line - text] = '\0';
          return text;
        }
      line = *end != '\0' ? end + 1 : end;
    }
  return g_strdup ("");
}

static void
store_notes (QmClient    *self,
             const gchar *path,
             const gchar *notes)
{
  g_autofree gchar *line = notes_first_line (notes);
  const gchar *old = g_hash_table_lookup (self->notes, path);

  if (g_strcmp0 (old, line) == 0)
    return;
  g_hash_table_insert (self->notes, g_strdup (path), g_steal_pointer (&line));
  mark_dirty (self, path);
}

typedef struct
{
  QmClient *self;
  gchar    *path;
} PathCall;

static void
path_call_free (PathCall *call)
{
  g_object_unref (call->self);
  g_free (call->path);
  g_free (call);
}

static void pump_notes (QmClient *self);

static void
notes_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  PathCall *call = user_data;
  QmClient *self = call->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);

  /* Cancelled: qubesd went away, and with it what was known (tear_down ()). */
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      const gchar *notes = "";

      self->notes_in_flight--;
      g_hash_table_remove (self->notes_reading, call->path);
      if (reply != NULL)
        g_variant_get (reply, "(&s)", &notes);
      else
        g_debug ("GetNotes %s: %s", call->path, error->message);
      /* Not asked again after a failure: an empty cell rather than a loop. */
      if (g_hash_table_contains (self->domains, call->path))
        store_notes (self, call->path, notes);
      pump_notes (self);
    }
  path_call_free (call);
}

static void
pump_notes (QmClient *self)
{
  while (self->notes_in_flight < MAX_NOTES_IN_FLIGHT && !g_queue_is_empty (&self->notes_queue))
    {
      gchar *path = g_queue_pop_head (&self->notes_queue);
      PathCall *call;

      if (!g_hash_table_contains (self->domains, path))
        {
          g_hash_table_remove (self->notes_reading, path);
          g_free (path);
          continue;
        }
      call = g_new0 (PathCall, 1);
      call->self = g_object_ref (self);
      call->path = path;
      self->notes_in_flight++;
      g_dbus_connection_call (self->connection, QM_BUS_NAME, path, DOMAIN_INTERFACE, "GetNotes",
                              NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1,
                              self->generation, notes_done, call);
    }
}

static void pump_volumes (QmClient *self);

/* A qube's GetManagedObjects: its volumes (the root's snapshot leaves them out, see
 * docs/dbus-api.md "The snapshot"), added as InterfacesAdded would add them. */
static void
volumes_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  PathCall *call = user_data;
  QmClient *self = call->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);

  /* Cancelled: qubesd went away, and with it what was known (tear_down ()). */
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      self->volumes_in_flight--;
      if (reply == NULL)
        g_debug ("GetManagedObjects %s: %s", call->path, error->message);
      else if (g_hash_table_contains (self->domains, call->path))
        {
          g_autoptr(GVariant) objects = g_variant_get_child_value (reply, 0);
          gsize i, n = g_variant_n_children (objects);

          for (i = 0; i < n; i++)
            {
              g_autoptr(GVariant) entry = g_variant_get_child_value (objects, i);
              g_autoptr(GVariant) path = g_variant_get_child_value (entry, 0);
              g_autoptr(GVariant) interfaces = g_variant_get_child_value (entry, 1);
              const gchar *p = g_variant_get_string (path, NULL);

              if (path_kind (p, NULL) == KIND_VOLUME)
                add_interfaces (self, p, interfaces);
            }
          g_hash_table_remove (self->disk_usage, call->path);
          mark_dirty (self, call->path);
        }
      pump_volumes (self);
    }
  path_call_free (call);
}

/* Not before the list is complete: at 1,000 qubes the answers are as much to read as the
 * bulk answer, and the list first shows without the disk usage rather than later with it. */
static void
pump_volumes (QmClient *self)
{
  while (self->loaded && self->volumes_in_flight < MAX_VOLUME_READS_IN_FLIGHT
         && !g_queue_is_empty (&self->volumes_queue))
    {
      gchar *path = g_queue_pop_head (&self->volumes_queue);
      PathCall *call;

      if (!g_hash_table_contains (self->domains, path))
        {
          g_free (path);
          continue;
        }
      call = g_new0 (PathCall, 1);
      call->self = g_object_ref (self);
      call->path = path;
      self->volumes_in_flight++;
      g_dbus_connection_call (self->connection, QM_BUS_NAME, path, OBJECT_MANAGER_INTERFACE,
                              "GetManagedObjects", NULL, G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                              G_DBUS_CALL_FLAGS_NONE, -1, self->generation, volumes_done, call);
    }
}

static void
queue_volumes (QmClient    *self,
               const gchar *domain_path)
{
  if (self->connection == NULL)
    return;
  g_queue_push_tail (&self->volumes_queue, g_strdup (domain_path));
  pump_volumes (self);
}

const gchar *
qm_client_get_notes (QmClient    *self,
                     const gchar *object_path)
{
  const gchar *line = g_hash_table_lookup (self->notes, object_path);

  if (line != NULL || self->state != QM_CLIENT_STATE_READY || self->connection == NULL
      || !g_hash_table_contains (self->domains, object_path)
      || g_hash_table_contains (self->notes_reading, object_path))
    return line;
  g_hash_table_add (self->notes_reading, g_strdup (object_path));
  g_queue_push_tail (&self->notes_queue, g_strdup (object_path));
  pump_notes (self);
  return NULL;
}

void
qm_client_set_notes (QmClient    *self,
                     const gchar *object_path,
                     const gchar *notes)
{
  if (g_hash_table_contains (self->domains, object_path))
    store_notes (self, object_path, notes != NULL ? notes : "");
}

void
qm_client_refresh_notes (QmClient    *self,
                         const gchar *object_path)
{
  if (!g_hash_table_contains (self->notes, object_path)
      || g_hash_table_contains (self->notes_reading, object_path))
    return;
  g_hash_table_add (self->notes_reading, g_strdup (object_path));
  g_queue_push_tail (&self->notes_queue, g_strdup (object_path));
  pump_notes (self);
}

static void
usage_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  PathCall *call = user_data; /* the volume's path */
  QmClient *self = call->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);
  QmObject *volume = reply != NULL ? g_hash_table_lookup (self->volumes, call->path) : NULL;

  if (volume != NULL)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (reply, 0);
      g_autoptr(GVariant) usage = g_variant_get_variant (boxed);

      if (g_variant_is_of_type (usage, G_VARIANT_TYPE_UINT64)
          && g_variant_get_uint64 (usage) != qm_object_get_uint64 (volume, "Volume", "Usage"))
        {
          GVariantBuilder changed;

          g_variant_builder_init (&changed, G_VARIANT_TYPE_VARDICT);
          g_variant_builder_add (&changed, "{sv}", "Usage", usage);
          qm_object_update (volume, "Volume", g_variant_builder_end (&changed), NULL);
          invalidate_disk_usage (self, call->path);
          object_changed (self, call->path);
        }
    }
  path_call_free (call);
}

static void
read_usage (QmClient    *self,
            const gchar *domain_path)
{
  GPtrArray *list = g_hash_table_lookup (self->domain_volumes, domain_path);
  guint i;

  for (i = 0; list != NULL && i < list->len; i++)
    {
      PathCall *call;

      if (!qm_object_has_interface (list->pdata[i], "Volume"))
        continue;
      call = g_new0 (PathCall, 1);
      call->self = g_object_ref (self);
      call->path = g_strdup (qm_object_get_path (list->pdata[i]));
      g_dbus_connection_call (self->connection, QM_BUS_NAME, call->path, PROPERTIES_INTERFACE,
                              "Get", g_variant_new ("(ss)", QM_INTERFACE_PREFIX "Volume", "Usage"),
                              G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, -1,
                              self->generation, usage_done, call);
    }
}

static gboolean
usage_cb (gpointer user_data)
{
  QmClient *self = QM_CLIENT (user_data);
  GHashTableIter iter;
  gpointer path;

  self->usage_id = 0;
  g_hash_table_iter_init (&iter, self->usage_stale);
  while (g_hash_table_iter_next (&iter, &path, NULL))
    read_usage (self, path);
  g_hash_table_remove_all (self->usage_stale);
  return G_SOURCE_REMOVE;
}

/* The qube's volumes are read again soon: the qubes that start or stop together in one read. */
static void
mark_usage_stale (QmClient    *self,
                  const gchar *domain_path)
{
  if (self->connection == NULL)
    return;
  g_hash_table_add (self->usage_stale, g_strdup (domain_path));
  if (self->usage_id == 0)
    self->usage_id = g_timeout_add (USAGE_DELAY_MS, usage_cb, self);
}

void
qm_client_refresh_disk_usage (QmClient    *self,
                              const gchar *object_path)
{
  GHashTableIter iter;
  gpointer path, object;

  if (self->state != QM_CLIENT_STATE_READY || self->connection == NULL)
    return;
  if (object_path != NULL)
    {
      read_usage (self, object_path);
      return;
    }
  g_hash_table_iter_init (&iter, self->domains);
  while (g_hash_table_iter_next (&iter, &path, &object))
    {
      const gchar *power = qm_object_get_string (object, "Domain", "PowerState");

      if (g_strcmp0 (power, "Running") == 0 || g_strcmp0 (power, "Paused") == 0)
        read_usage (self, path);
    }
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
  /* GDBus frees the filter's data once it cannot run any more. */
  if (self->filter_id != 0)
    g_dbus_connection_remove_filter (self->connection, self->filter_id);
  self->filter = NULL;
  g_cancellable_cancel (self->generation);
  g_clear_object (&self->generation);
  g_clear_object (&self->connection);
  g_hash_table_unref (self->domains);
  g_hash_table_unref (self->labels);
  g_hash_table_unref (self->volumes);
  g_hash_table_unref (self->domain_volumes);
  g_hash_table_unref (self->disk_usage);
  g_hash_table_unref (self->props);
  g_hash_table_unref (self->in_flight);
  g_hash_table_unref (self->queued);
  g_hash_table_unref (self->stats);
  g_hash_table_unref (self->early_events);
  g_hash_table_unref (self->stale);
  g_hash_table_unref (self->refreshing);
  g_hash_table_unref (self->dirty);
  g_hash_table_unref (self->notes);
  g_hash_table_unref (self->notes_reading);
  g_hash_table_unref (self->usage_stale);
  g_free (self->address);
  g_free (self->error_message);
  G_OBJECT_CLASS (qm_client_parent_class)->finalize (object);
}

static void
qm_client_init (QmClient *self)
{
  self->state = QM_CLIENT_STATE_CONNECTING;
  self->generation = g_cancellable_new ();
  self->domains = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->volumes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->domain_volumes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                (GDestroyNotify) g_ptr_array_unref);
  self->disk_usage = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->props = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, prop_table_free);
  self->in_flight = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->queued = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->stats = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->early_events = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->stale = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->refreshing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->dirty = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->notes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->notes_reading = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&self->notes_queue);
  g_queue_init (&self->volumes_queue);
  self->usage_stale = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->all_dirty = TRUE;
  self->has_bulk = TRUE;
  self->has_named_bulk = TRUE;
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
