/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Preloaded disposables, the model's part (dispvm.c): how many a disposable template keeps
 * (its preload-dispvm-max, or dom0's for the global default_dispvm), the list of those it has
 * (preload-dispvm), and the checks upstream makes before the preload-dispvm* features change
 * (spec/console-preload.md §4.1). The life cycle itself is the service's (service/preload.c). */

#include "model/domain.h"

/* Upstream never bounds preload-dispvm-max; qubesd keeps at most this many of one template. */
#define DISPVM_PRELOAD_MAX 64

bool dispvm_is_template(Domain *d);
/* The number of preloaded disposables tpl keeps (0 when it is no disposable template), capped at
 * DISPVM_PRELOAD_MAX. */
int64_t dispvm_preload_max(Domain *tpl);
/* Whether dom0's preload-dispvm-max decides for tpl (tpl is the global default_dispvm and dom0
 * has the feature, even "0"). */
bool dispvm_preload_global_applies(Domain *tpl);
/* The names in tpl's preload-dispvm feature, in order (malloc'ed strv, maybe empty; NULL on OOM). */
char **dispvm_preload_list(Domain *tpl);
/* QubesValueError when tpl cannot host preloaded disposables: no qrexec, or the RPCs upstream
 * waits for (qubes.WaitForRunningSystem, qubes.WaitForSession) not announced, through its
 * templates. */
int dispvm_preload_supported(Domain *tpl, QError *err);
/* Upstream's checks before a feature of these names is set on d (domain_feature_set calls it). */
int dispvm_feature_check(Domain *d, const char *name, const char *value, QError *err);
/* A preloaded disposable no longer matches its template (upstream's "outdated" as far as the
 * model can tell: a property the template sets differs, the private volume's size, the root's
 * source). */
bool dispvm_preload_outdated(Domain *disp, Domain *tpl);
