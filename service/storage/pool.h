/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Pools and drivers (pool.c): the driver table, admin.pool.*, and the checks of sizes, names
 * and tokens. Part of storage (storage.h). */

#include "storage/driver.h"

/* ---- drivers and pools (pool.c) ---------------------------------------------------------- */

extern const StorageDriver storage_driver_file;
extern const StorageDriver storage_driver_reflink;
extern const StorageDriver storage_driver_kernel;
/* NULL-terminated, ListDrivers order. */
extern const StorageDriver *const storage_drivers[];
const StorageDriver *storage_driver_find(const char *name);

const char *pool_config_get(const Pool *p, const char *key);
int pool_config_set(Pool *p, const char *key, const char *value);

/* admin.pool.Add: config is key, value, … (NULL-terminated, in the caller's order, name
 * included). Validates (upstream messages), sets the pool up, adds it, emits pool-add. */
int storage_pool_add(App *app, const char *driver, char *const *config, Pool **ret, QError *e);
/* admin.pool.Remove: QubesPoolNotFoundError, QubesPoolInUseError; emits pool-pre-delete, pool-delete. */
int storage_pool_remove(App *app, const char *name, QError *e);
bool storage_pool_in_use(App *app, const Pool *p);
/* admin.pool.Set.*: the Admin API string forms. */
int storage_pool_set_revisions_to_keep(App *app, Pool *p, const char *value, QError *e);
int storage_pool_set_ephemeral_volatile(App *app, Pool *p, const char *value, QError *e);
/* admin.pool.Info and UsageDetails text (key=value\n lines). */
char *storage_pool_info(App *app, const Pool *p);
/* At start-up, as upstream's setup_pools(): each pool's directories are made (file pools: the
 * pool's own, appvms/ and vm-templates/). A failure is logged; the pool stays. */
void storage_pools_setup(App *app);
char *storage_pool_usage_details(const Pool *p);
/* Filesystem figures of a dir pool; false when not known. */
bool storage_pool_size_usage(const Pool *p, uint64_t *size, uint64_t *usage);
/* admin.pool.volume.List */
int storage_pool_list_vids(App *app, const Pool *p, char ***ret);

/* ---- validation (pool.c) ----------------------------------------------------------------- */

/* Upstream validate_number: digits (optional '-' when allow_negative), at most 19 digits, no
 * spurious leading zero. name is the lower-case field name ("volume size"); messages are
 * ProtocolError "<Name> contains non ASCII digits" etc. */
int storage_validate_number(const char *s, const char *name, bool allow_negative, int64_t *ret, QError *e);
/* A size: validate_number, then at most STORAGE_MAX_SIZE (QubesValueError). */
int storage_parse_size(const char *s, const char *name, uint64_t *ret, QError *e);
bool storage_pool_name_valid(const char *name);
bool storage_revision_valid(const char *rev);
bool storage_token_valid(const char *token);
/* 32 characters of [A-Za-z0-9] from getrandom(). */
int storage_token_new(char ret[STORAGE_TOKEN_LEN + 1]);
