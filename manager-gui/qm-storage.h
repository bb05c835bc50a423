/* qm-storage.h: the storage pools and the installed kernels, as qubesd lists them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "qm-client.h"

G_BEGIN_DECLS

#define QM_KERNEL_POOL_DRIVER "linux-kernel"

typedef struct
{
  gchar *name;
  gchar *driver;   /* file, file-reflink, linux-kernel, ... */
} QmPool;

typedef struct
{
  GPtrArray *pools;    /* QmPool, in qubesd's order (Manager.ListPools) */
  GPtrArray *kernels;  /* gchar *: the volumes of the linux-kernel pools (the kernel versions
                          installed), each once, oldest version first */
} QmStorage;

/* Manager.ListPools, then Pool.ListVolumes of each linux-kernel pool. */
void       qm_storage_load_async  (QmClient            *client,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);
QmStorage *qm_storage_load_finish (GAsyncResult        *result,
                                   GError             **error);
void       qm_storage_free        (QmStorage           *storage);
/* Whether a pool can hold the volumes of a new qube (root, private, volatile): not a kernel
 * pool. */
gboolean   qm_pool_holds_images   (const QmPool        *pool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QmStorage, qm_storage_free)

G_END_DECLS
