/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Backup profiles: <config-dir>/backup/<name>.conf, YAML read with libyaml with PyYAML's
 * safe-loader typing of plain scalars (spec/backup.md §2). Parsing knows nothing of the model:
 * names are resolved when the backup is planned (plan.h). Every error is a QError with
 * upstream's class and message where upstream has one (docs/compatibility.md lists ours). */

#include <stdbool.h>
#include <stddef.h>

#include "qubes-error.h"

#define BACKUP_PROFILE_MAX_SIZE (1024 * 1024)

typedef struct BackupProfile {
        char *name;
        char *destination_vm;
        char *destination_path;
        bool include_default; /* include: null, every qube with include_in_backups */
        char **include;       /* entries with '$' turned into '@' */
        char **exclude;
        bool compressed;
        char *compression_filter; /* "gzip" unless compression names a program */
        bool has_passphrase_text;
        char *passphrase_text;
        size_t passphrase_len;
        char *passphrase_vm;
        unsigned scrypt_log_n; /* qubesd's own key scrypt_logn; 0: the default */
} BackupProfile;

void backup_profile_done(BackupProfile *p);

/* The profile file's path (malloc'ed). */
char *backup_profile_path(const char *config_dir, const char *name);
/* Read and parse a profile. QubesBackupProfileNotFoundError when there is no such file. */
int backup_profile_load(const char *config_dir, const char *name, BackupProfile *ret, QError *e);
/* Parse profile text (name for messages). */
int backup_profile_parse(const char *name, const char *text, size_t len, BackupProfile *ret, QError *e);
/* A name for a profile qubesd writes: letters, digits, '_', '-', '.', not starting with '.',
 * at most 200 characters (profiles others wrote may have any name without '/'). */
bool backup_profile_name_valid(const char *name);
/* The profiles in <config-dir>/backup (names without .conf), sorted. */
int backup_profile_list(const char *config_dir, char ***ret);
/* YAML for a profile, keys in the order yaml.safe_dump writes them (qvm-backup's): compression,
 * destination_path, destination_vm, exclude, include, passphrase_text, passphrase_vm,
 * scrypt_logn. Strings that would read back as something else are quoted. */
char *backup_profile_to_yaml(const BackupProfile *p);
/* Write it (validated by parsing it back), mode 0600, atomically; the directory is made. */
int backup_profile_save(const char *config_dir, const BackupProfile *p, QError *e);
int backup_profile_remove(const char *config_dir, const char *name, QError *e);

/* The passphrase check of §2 for Execute: passphrase_text, else passphrase_vm, else the error
 * "you need to specify passphrase_text or passphrase_vm". */
int backup_profile_check_passphrase(const BackupProfile *p, QError *e);
/* A passphrase given by a qube's qubes.BackupPassphrase service: stripped of surrounding
 * whitespace; a newline inside is a ProtocolError. *ret is malloc'ed. */
int backup_passphrase_from_service(const char *out, size_t len, char **ret, size_t *ret_len, QError *e);
/* Whether an include/exclude entry matches a qube: its name, @tag:<tag>, @type:<Class>. */
typedef bool (*BackupHasTagFn)(const void *qube, const char *tag);
bool backup_entry_matches(const char *entry, const char *name, const char *klass, BackupHasTagFn has_tag,
                          const void *qube);
