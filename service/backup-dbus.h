/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* Backups on the bus: the Manager's StartBackup, BackupInfo and CancelBackup, and the backup
 * Job objects (/org/qubes_os/Admin1/job/<n>, org.qubes_os.Admin1.Job). The work itself is
 * service/backup/ (profiles, plans, the archive writer), run on threads of its own. */

#define QUBESD_DEFAULT_CONFIG_DIR "/etc/qubes"
#define QUBESD_DEFAULT_QREXEC_RUNNER "qubes-qrexec-run"

/* The objects and methods on one connection (the bus, or a private connection); the state is
 * made on the first call. */
int backup_dbus_register(Manager *m, sd_bus *bus);
/* At exit: running backups are cancelled and waited for. */
void backup_dbus_done(Manager *m);
