/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a backup profile means for the qubes of today: the qubes selected (spec/backup.md §3),
 * each with its files in archive order (§4.4), their sizes, the Info table, and the qubes.xml
 * that goes into the archive (§4.5).
 *
 * A plan is made on the event loop (backup_plan_new: everything it needs from the model is
 * copied out) and used on a worker thread (measuring, the archive qubes.xml, writing): it holds
 * no pointer into the model. */

#include <stdbool.h>
#include <stdint.h>

#include "backup/profile.h"
#include "backup/scrypt-file.h"
#include "model/model.h"
#include "storage/storage.h"

typedef enum BackupFileKind {
        BACKUP_FILE_VOLUME, /* a save_on_stop volume: <volume>.img */
        BACKUP_FILE_PLAIN,  /* firewall.xml, notes.txt */
        BACKUP_FILE_EMPTY,  /* "empty": a qube with nothing else */
        BACKUP_FILE_HOME,   /* dom0's home directory (GNU tar) */
} BackupFileKind;

typedef struct BackupFile {
        BackupFileKind kind;
        char *name; /* in the archive, below the qube's subdir */
        char *path; /* PLAIN, HOME */
        StorageVolume volume;
        uint64_t size; /* what Info and progress count: the space it takes on disk */
} BackupFile;

typedef struct BackupQube {
        char *name;
        int64_t qid;
        bool is_dom0, is_template, updateable;
        bool running;            /* when the plan was made */
        bool snapshots_disabled; /* running, and a volume has revisions_to_keep -1 */
        bool cannot_snapshot;    /* running, and its pool cannot snapshot a volume (measured) */
        char *subdir;            /* "vm<qid>/" or "dom0-home/" */
        BackupFile *files;
        size_t n_files;
        uint64_t size;
} BackupQube;

typedef struct BackupPlan {
        char *profile;
        BackupQube *qubes; /* selection order, dom0 last */
        size_t n_qubes;
        char **not_selected; /* sorted */
        uint64_t total;
        char *destination_vm; /* NULL: dom0 */
        char *destination_path;
        bool compressed;
        char *filter;
        ScryptParams kdf;
        /* Execute: the store as it is now, for the archive's qubes.xml */
        char *state_dir;
        char *store_xml;
        size_t store_xml_len;
        bool measured;
} BackupPlan;

/* On the loop. Checks the destination ("Invalid destination_vm specified in backup profile"),
 * for Execute the passphrase keys (§2), selects the qubes and lists their files. */
int backup_plan_new(App *app, const BackupProfile *p, bool for_execute, BackupPlan **ret, QError *e);
BackupPlan *backup_plan_free(BackupPlan *plan);
/* Blocking (a worker): sizes of every file (stat, a walk of dom0's home), whether running
 * qubes' volumes can be snapshotted, dom0's home directory. */
int backup_plan_measure(BackupPlan *plan, QError *e);
/* The Info table (§3), after measuring. */
char *backup_plan_summary(const BackupPlan *plan);
/* The archive's qubes.xml (§4.5), after measuring: a private copy of the store with the
 * backup-* features. Thread-safe (it touches no shared model). */
int backup_plan_archive_xml(const BackupPlan *plan, char **ret, size_t *ret_len, QError *e);
/* upstream's size_to_human() */
char *backup_size_to_human(uint64_t size);

/* storage: the committed data of a save_on_stop volume, for reading during a backup; for a
 * qube that runs, data it cannot change (a reflink copy, or an image it does not write), else
 * QubesVMNotHaltedError. *ret_fd is -1 for a volume whose image was never made (it is then empty:
 * holes of its configured size). Blocking. */
int backup_volume_open(const StorageVolume *v, bool running, int *ret_fd, QError *e);
/* Whether backup_volume_open() can serve a running qube's volume. Blocking. */
bool backup_volume_can_snapshot(const StorageVolume *v);

DEFINE_TRIVIAL_CLEANUP_FUNC(BackupPlan *, backup_plan_free);
