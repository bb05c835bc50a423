/* qm-qube-store.h: one row per qube, updated by diffing so that selection survives
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

typedef enum
{
  QM_COL_PATH,                 /* s: object path, the row's key */
  QM_COL_LABEL_PIXBUF,         /* GdkPixbuf: colour swatch */
  QM_COL_LABEL_NAME,           /* s */
  QM_COL_LABEL_INDEX,          /* i */
  QM_COL_NAME,                 /* s */
  QM_COL_POWER_STATE,          /* s: PowerState as the daemon says it */
  QM_COL_STATE_ICON,           /* s: icon name */
  QM_COL_STATE_TEXT,           /* s: translated state and badges */
  QM_COL_STATE_ORDER,          /* i */
  QM_COL_BADGE_ICON,           /* s: updates-available / prohibit-start, or NULL */
  QM_COL_CLASS,                /* s */
  QM_COL_TEMPLATE,             /* s */
  QM_COL_NETVM,                /* s: "default (sys-firewall)" when at its default */
  QM_COL_DISK,                 /* s: sum of the volumes' Usage */
  QM_COL_CPU,                  /* s: from the Stats signal, "" when not running */
  QM_COL_MEMORY,               /* s: from the Stats signal, "" when not running */
  QM_COL_INTERNAL,             /* b */
  QM_COL_IP,                   /* s */
  QM_COL_INCLUDE_IN_BACKUPS,   /* b */
  QM_COL_LAST_BACKUP,          /* s */
  QM_COL_LAST_BACKUP_TS,       /* x */
  QM_COL_DEFAULT_DISPVM,       /* s */
  QM_COL_TEMPLATE_FOR_DISPVMS, /* b */
  QM_COL_VIRT_MODE,            /* s */
  QM_COL_TAGS,                 /* s */
  QM_COL_PROVIDES_NETWORK,     /* b */
  QM_COL_DISK_BYTES,           /* x: sort key of QM_COL_DISK, -1 when unknown */
  QM_COL_CPU_PERCENT,          /* i: sort key of QM_COL_CPU, -1 when not running */
  QM_COL_MEMORY_KB,            /* x: sort key of QM_COL_MEMORY, -1 when not running */
  QM_COL_NETVM_NAME,           /* s: the effective netvm's name, "" for none (grouping key) */
  QM_COL_NOTES,                /* s: the first line of the notes; "" until read, or hidden */
  QM_N_COLUMNS
} QmColumn;

GtkListStore *qm_qube_store_new     (void);
/* Brings the store in line with the client: adds, removes and changes only what differs, in
 * the rows of the qubes whose object paths are in changed (a set), or in all rows if it is
 * NULL. */
void          qm_qube_store_update  (GtkListStore *store,
                                     QmClient     *client,
                                     GHashTable   *changed);
gboolean      qm_qube_store_lookup  (GtkListStore *store,
                                     const gchar  *object_path,
                                     GtkTreeIter  *iter);
/* Whether the rows hold the notes (each qube's are read from qubesd the first time): FALSE at
 * first. Takes effect at the next update of each row. */
void          qm_qube_store_set_notes_shown (GtkListStore *store,
                                             gboolean      shown);

/* "2024-05-01 14:03" in local time, "" for 0 (never). */
gchar        *qm_format_timestamp   (gint64        timestamp);
const gchar  *qm_power_state_text   (const gchar  *power_state);
GdkPixbuf    *qm_label_swatch       (const gchar  *color);

G_END_DECLS
