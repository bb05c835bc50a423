/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus-object.h"
#include "manager.h"

/* Backups on the bus: the Manager's StartBackup, ExecuteBackup, BackupInfo, CancelBackup and the
 * backup profile methods; each backup is a Job (job-dbus.h). The work itself is service/backup/
 * (profiles, plans, the archive writer), on the workers. */

#define QUBESD_DEFAULT_CONFIG_DIR "/etc/qubes"
#define QUBESD_DEFAULT_QREXEC_RUNNER "qubes-qrexec-run"

/* The running backups' table, once. */
int backup_dbus_init(Manager *m);
/* At exit, after the workers stopped (every backup has ended by then). */
void backup_dbus_done(Manager *m);
/* The backup methods: a second vtable on the Manager interface. */
extern const BusObjectImplementation backup_object;
