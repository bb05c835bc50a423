/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Volumes of qubes (volume.c): a volume config resolved into a StorageVolume, admin.vm.volume.*
 * on the model, a qube created and removed with its data, the start/stop steps of the lifecycle.
 * Part of storage (storage.h). */

#include "storage/driver.h"

/* ---- volumes (volume.c) ------------------------------------------------------------------ */

/* Resolve a qube's volume: QubesVolumeNotFoundError, QubesPoolNotFoundError. */
int storage_volume_get(App *app, Domain *d, const char *name, StorageVolume *ret, QError *e);
void storage_volume_done(StorageVolume *v);
int storage_volume_copy(const StorageVolume *src, StorageVolume *dst);

/* The driver's current_size and usage, read from disk now (every call); dirs as for
 * vol_stat_in() (may be NULL). */
void storage_volume_sizes(const StorageVolume *v, VolDirs *dirs, uint64_t *ret_size, uint64_t *ret_usage);
/* admin.vm.volume.Info text (data-model.md 5.4, exact order). */
char *storage_volume_info(const StorageVolume *v);
int storage_volume_list_revisions(const StorageVolume *v, char ***ret);
/* The Admin API Set/Revert/Resize on the model (the qube on the loop). Each validates the
 * string form as upstream does and saves nothing (the caller saves qubes.xml). */
int storage_volume_set_revisions_to_keep(App *app, Domain *d, const char *vol, const char *value, QError *e);
int storage_volume_set_rw(App *app, Domain *d, const char *vol, const char *value, QError *e);
int storage_volume_set_ephemeral(App *app, Domain *d, const char *vol, const char *value, QError *e);
int storage_volume_resize(App *app, Domain *d, const char *vol, const char *value, QError *e);

/* A qube with its data (admin.vm.Create, CreateDisposable): app_create_domain(), and the data
 * of every volume made before the qube is announced (domain-add); a failure leaves neither. */
int storage_create_domain(App *app, const CreateParams *params, Domain **ret, QError *e);
/* The same, with prepare() making more of the new qube (its properties, tags) in the same
 * transaction, before it is announced; a failure of prepare() leaves nothing. */
typedef int (*StoragePrepareFn)(Domain *d, void *userdata, QError *e);
int storage_create_domain_with(App *app, const CreateParams *params, StoragePrepareFn prepare, void *userdata,
                               Domain **ret, QError *e);
/* Both are transactions of their own (app_commit): Create makes the files, then saves, and a
 * failed save removes the files; Remove deletes the data, notes.txt and the qube's directory
 * only once qubes.xml without the qube is durable (a failed save leaves everything as it was).
 * *ret / d are valid only on success. */
int storage_remove_domain(App *app, Domain *d, QError *e);
/* What a removal could not delete is noted (the qube's name, in the state directory) and
 * removed at the next start, when no qube of that name exists. */
void storage_note_leftovers(App *app, const char *name);
void storage_cleanup_leftovers(App *app);

/* Start/stop hooks for the lifecycle code. storage_domain_volumes() takes a snapshot of every
 * volume of d (on the loop); storage_volumes_start() prepares them for a start (snapshot on
 * start: reflink/copy of the source, a fresh volatile image, the running copy of save_on_stop
 * volumes) and storage_volumes_stop() commits save_on_stop volumes (keeping revisions_to_keep
 * old revisions, the oldest pruned) and discards the rest. Both are blocking: call them from a
 * worker thread. A failed start undoes the volumes already started. */
int storage_domain_volumes(App *app, Domain *d, StorageVolume **ret, size_t *ret_n, QError *e);
int storage_volumes_start(StorageVolume *v, size_t n, QError *e);
int storage_volumes_stop(StorageVolume *v, size_t n, QError *e);
void storage_volumes_free(StorageVolume *v, size_t n);

static inline void storage_volume_donep(StorageVolume *v) {
        storage_volume_done(v);
}
