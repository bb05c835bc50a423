/* qm-client.h: the Qube Manager's view of qubesd on one bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "qm-object.h"

G_BEGIN_DECLS

#define QM_BUS_NAME "org.qubes_os.Admin1"
#define QM_ROOT_PATH "/org/qubes_os/Admin1"
#define QM_DOMAIN_PATH_PREFIX QM_ROOT_PATH "/domain/"

#define QM_TYPE_CLIENT (qm_client_get_type ())
G_DECLARE_FINAL_TYPE (QmClient, qm_client, QM, CLIENT, GObject)

typedef enum
{
  QM_CLIENT_STATE_CONNECTING,  /* waiting for the bus or the first snapshot */
  QM_CLIENT_STATE_ABSENT,      /* qubesd does not own its name on this bus */
  QM_CLIENT_STATE_NO_BUS,      /* the bus itself cannot be reached */
  QM_CLIENT_STATE_READY,       /* the client holds a snapshot */
} QmClientState;

QmClient           *qm_client_new                  (GBusType     bus_type,
                                                    const gchar *address);
QmClientState       qm_client_get_state            (QmClient    *self);
/* How a helper program reaches the same bus: "--bus-address=ADDR", "--user" or "--system". */
gchar              *qm_client_get_bus_option       (QmClient    *self);
const gchar        *qm_client_get_error_message    (QmClient    *self);
gboolean            qm_client_is_loaded            (QmClient    *self);
/* While "changed" is emitted: the object paths of the qubes whose rows may differ since the
 * last "changed" (added, removed or changed), or NULL when any row may. */
GHashTable         *qm_client_get_changed_domains  (QmClient    *self);
gboolean            qm_client_has_lifecycle        (QmClient    *self);
GDBusConnection    *qm_client_get_connection       (QmClient    *self);
/* The root object (its "Manager" interface), or NULL before the snapshot. */
QmObject           *qm_client_get_manager          (QmClient    *self);

/* Every qube (QmObject with a "Domain" interface), sorted by name; free the list with
 * g_list_free_full (list, g_object_unref). */
GList              *qm_client_get_domains          (QmClient    *self);
QmObject           *qm_client_lookup_domain        (QmClient    *self,
                                                    const gchar *object_path);
QmObject           *qm_client_lookup_domain_by_name (QmClient   *self,
                                                    const gchar *name);
/* The name of the qube at a path, or NULL for "/" or an unknown path. */
const gchar        *qm_client_domain_name          (QmClient    *self,
                                                    const gchar *object_path);
/* Labels (QmObject with a "Label" interface) sorted by index; free with
 * g_list_free_full (list, g_object_unref). */
GList              *qm_client_get_labels           (QmClient    *self);
QmObject           *qm_client_lookup_label         (QmClient    *self,
                                                    const gchar *object_path);

/* What GetAllProperties said about a qube's property (is_default and value), once fetched.
 * Returns FALSE while unknown. */
gboolean            qm_client_get_property_info    (QmClient    *self,
                                                    const gchar *object_path,
                                                    const gchar *property,
                                                    gboolean    *out_is_default,
                                                    const gchar **out_value);

/* The last Stats signal of a running qube (cpu_usage in % of its vCPUs, memory_kb). Returns
 * FALSE when none came since it started. */
gboolean            qm_client_get_stats            (QmClient    *self,
                                                    const gchar *object_path,
                                                    gdouble     *out_cpu_usage,
                                                    guint64     *out_memory_kb);
/* The sum of the Usage of the qube's volumes; FALSE when it has none. */
gboolean            qm_client_get_disk_usage       (QmClient    *self,
                                                    const gchar *object_path,
                                                    guint64     *out_bytes);

/* The first line of the qube's notes that is not blank, "" for none. qubesd announces no change
 * of notes: they are read (GetNotes) the first time they are asked for, NULL is returned until
 * they come, and then the qube is in the next "changed". */
const gchar        *qm_client_get_notes            (QmClient    *self,
                                                    const gchar *object_path);
/* The qube's notes as a window just read or wrote them. */
void                qm_client_set_notes            (QmClient    *self,
                                                    const gchar *object_path,
                                                    const gchar *notes);
/* Reads the qube's notes again, if they were read before: after a change this window made
 * (qubesd announces none). */
void                qm_client_refresh_notes        (QmClient    *self,
                                                    const gchar *object_path);
/* Reads the Usage of the qube's volumes again (NULL: of every running or paused qube); a
 * change is in the next "changed". The client does it by itself after a qube starts or
 * stops. */
void                qm_client_refresh_disk_usage   (QmClient    *self,
                                                    const gchar *object_path);

/* A call that changes state: allows interactive authorization, and has no timeout (the user
 * may take as long as they need to authenticate). */
void                qm_client_call                 (QmClient            *self,
                                                    const gchar         *object_path,
                                                    const gchar         *interface_name,
                                                    const gchar         *method,
                                                    GVariant            *parameters,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
GVariant           *qm_client_call_finish          (QmClient            *self,
                                                    GAsyncResult        *result,
                                                    GError             **error);

/* Whether a caller may set a qube property (Qubes name, e.g. "netvm"): FALSE for the ones whose
 * D-Bus property is read-only in the interface XML and for the write-once identity ones. */
gboolean            qm_property_is_writable        (const gchar *property);
/* The D-Bus property name of a Qubes property: "default_dispvm" -> "DefaultDispvm". */
gchar              *qm_property_dbus_name          (const gchar *property);
/* One path element the way sd_bus_path_encode writes it ("sys-net" -> "sys_2dnet"). */
gchar              *qm_path_encode                 (const gchar *element);

/* The qube's volumes (QmObject with a "Volume" interface, referenced), sorted by name; free
 * with g_list_free_full (list, g_object_unref). */
GList              *qm_client_get_volumes          (QmClient    *self,
                                                    const gchar *domain_path);
QmObject           *qm_client_lookup_volume        (QmClient    *self,
                                                    const gchar *domain_path,
                                                    const gchar *volume_name);

G_END_DECLS
