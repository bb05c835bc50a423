/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Preloaded disposables, the model's part: counts, lists and upstream's checks on the
 * preload-dispvm* features (spec/console-preload.md §4.1). */
#include <ctype.h>
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dispvm.h"
#include "model/model.h"
#include "util/strbuf.h"
#include "util/strv.h"

bool dispvm_is_template(Domain *d) {
        return d && domain_prop_find(d->klass, "template_for_dispvms") &&
               domain_property_bool(d, "template_for_dispvms");
}

static bool all_digits(const char *s) {
        for (; *s; s++)
                if (!isdigit((unsigned char) *s))
                        return false;
        return true;
}

/* A digits-only feature value as a count ("" and anything else are 0), capped. */
static int64_t count_of(const char *v) {
        if (isempty(v) || !all_digits(v))
                return 0;
        if (strlen(v) > 6)
                return DISPVM_PRELOAD_MAX;
        int64_t n = strtoll(v, NULL, 10);
        return n > DISPVM_PRELOAD_MAX ? DISPVM_PRELOAD_MAX : n;
}

bool dispvm_preload_global_applies(Domain *tpl) {
        Domain *dom0 = app_dom0(tpl->app);
        const PropDef *p = global_prop_find("default_dispvm");
        PropValue v = {};
        bool r = false;

        if (!dom0 || !domain_feature_get(dom0, "preload-dispvm-max") || !p)
                return false;
        if (app_property_get(tpl->app, p, &v, NULL) >= 0 && v.has_value && streq_ptr(v.value, tpl->name))
                r = true;
        prop_value_done(&v);
        return r;
}

int64_t dispvm_preload_max(Domain *tpl) {
        if (!dispvm_is_template(tpl))
                return 0;
        if (dispvm_preload_global_applies(tpl))
                return count_of(domain_feature_get(app_dom0(tpl->app), "preload-dispvm-max"));
        return count_of(domain_feature_get(tpl, "preload-dispvm-max"));
}

static char **split_words(const char *s) {
        _cleanup_strv_free_ char **l = new0(char *, 1);

        if (!l)
                return NULL;
        while (s && *s) {
                size_t skip = strspn(s, " \t\n\r\v\f"), n;
                s += skip;
                n = strcspn(s, " \t\n\r\v\f");
                if (n == 0)
                        break;
                char *w = strndup(s, n);
                if (!w || strv_consume(&l, w) < 0)
                        return NULL;
                s += n;
        }
        return TAKE_PTR(l);
}

char **dispvm_preload_list(Domain *tpl) {
        return split_words(domain_feature_get(tpl, "preload-dispvm"));
}

/* features.check_with_template() */
static const char *feature_with_template(Domain *d, const char *name) {
        size_t bound = hashmap_size(d->app->domains) + 2;
        for (Domain *t = d; t && bound > 0; t = domain_template(t), bound--) {
                const char *v = domain_feature_get(t, name);
                if (v)
                        return v;
        }
        return NULL;
}

int dispvm_preload_supported(Domain *tpl, QError *err) {
        static const char *const rpcs[] = { "qubes.WaitForRunningSystem", "qubes.WaitForSession" };
        _cleanup_strbuf_ StrBuf missing = {};

        if (isempty(feature_with_template(tpl, "qrexec")))
                return qerror_set(err, QERR_VALUE, "Qube does not support qrexec");
        for (size_t i = 0; i < ELEMENTSOF(rpcs); i++) {
                _cleanup_free_ char *key = NULL;
                if (asprintf(&key, "supported-rpc.%s", rpcs[i]) < 0)
                        return -ENOMEM;
                if (isempty(feature_with_template(tpl, key))) {
                        strbuf_append(&missing, missing.len ? ", " : "");
                        strbuf_append(&missing, rpcs[i]);
                }
        }
        if (missing.oom)
                return -ENOMEM;
        if (missing.len)
                return qerror_set(err, QERR_VALUE, "Qube does not support the RPC(s) '%s'", missing.buf);
        return 0;
}

static bool is_number(const char *v) {
        char *end;
        if (isempty(v) || isspace((unsigned char) v[0]))
                return false;
        errno = 0;
        (void) strtod(v, &end);
        return errno == 0 && *end == 0 && strspn(v, "0123456789.-+eE") == strlen(v);
}

static int check_preload_list(Domain *d, const char *value, QError *err) {
        _cleanup_strv_free_ char **new = split_words(value), **old = dispvm_preload_list(d);
        size_t n_new = strv_length(new), n_old = strv_length(old);
        int64_t max = dispvm_preload_max(d);
        _cleanup_strbuf_ StrBuf bad = {};

        if (!new || !old)
                return -ENOMEM;
        if ((int64_t) n_new > ((int64_t) n_old > max ? (int64_t) n_old : max)) {
                char a[32], b[32], c[32];
                /* QError formats take strings only */
                snprintf(a, sizeof a, "%zu", n_new);
                snprintf(b, sizeof b, "%zu", n_old);
                snprintf(c, sizeof c, "%" PRIi64, max);
                return qerror_set(err, QERR_VALUE,
                                  "Invalid preload-dispvm value: can't increment: qube count (%s) is either bigger "
                                  "than old count (%s) or preload-dispvm-max (%s)",
                                  a, b, c);
        }
        for (size_t i = 0; i < n_new; i++)
                for (size_t k = 0; k < i; k++)
                        if (streq(new[i], new[k]))
                                return qerror_set(err, QERR_VALUE, "Invalid preload-dispvm value: duplicates: %s",
                                                  new[i]);
        for (size_t i = 0; i < n_new; i++) {
                Domain *q;
                if (strv_contains(old, new[i]))
                        continue;
                q = app_get_domain(d->app, new[i]);
                if (!q || q->klass != QUBES_CLASS_DISPVM || domain_template(q) != d) {
                        strbuf_append(&bad, bad.len ? ", " : "");
                        strbuf_append(&bad, new[i]);
                }
        }
        if (bad.oom)
                return -ENOMEM;
        if (bad.len)
                return qerror_set(err, QERR_VALUE, "Invalid preload-dispvm value: not disposables of this template: %s",
                                  bad.buf);
        return 0;
}

int dispvm_feature_check(Domain *d, const char *name, const char *value, QError *err) {
        bool dom0 = d->klass == QUBES_CLASS_ADMINVM;
        int r;

        if (!startswith(name, "preload-dispvm"))
                return 0;
        if (streq(name, "preload-dispvm-max")) {
                if (!dom0) {
                        r = dispvm_preload_supported(d, err);
                        if (r < 0)
                                return r;
                }
                if (!all_digits(value))
                        return qerror_set(err, QERR_VALUE, "Invalid preload-dispvm-max value: not a digit");
        } else if (streq(name, "preload-dispvm") && !dom0)
                return check_preload_list(d, value, err);
        else if (streq(name, "preload-dispvm-delay")) {
                if (!is_number(value))
                        return qerror_set(err, QERR_VALUE,
                                          "Invalid preload-dispvm-delay value: not an integer or float");
        } else if (streq(name, "preload-dispvm-threshold") && dom0) {
                if (!all_digits(value))
                        return qerror_set(err, QERR_VALUE, "Invalid preload-dispvm-threshold value: not a digit");
        }
        return 0;
}

bool dispvm_preload_outdated(Domain *disp, Domain *tpl) {
        const PropDef *const *props = domain_props_of_class(disp->klass);

        for (; props && *props; props++) {
                const PropDef *p = *props, *tp;
                bool dset, tset;

                if (p->flags & (PROP_NO_CLONE | PROP_STATELESS | PROP_WRITE_ONCE | PROP_READONLY))
                        continue;
                if (streq(p->name, "template") || streq(p->name, "auto_cleanup"))
                        continue;
                tp = domain_prop_find(tpl->klass, p->name);
                dset = domain_slot(disp, p)->set;
                tset = tp && domain_slot(tpl, tp)->set;
                if (dset != tset)
                        return true;
                if (dset && !streq_ptr(domain_slot(disp, p)->value, domain_slot(tpl, tp)->value))
                        return true;
        }
        VolumeConfig *dp = domain_volume_config(disp, "private"), *tp = domain_volume_config(tpl, "private");
        if (dp && tp && !streq_ptr(volume_config_get(dp, "size"), volume_config_get(tp, "size")))
                return true;
        VolumeConfig *dr = domain_volume_config(disp, "root"), *tr = domain_volume_config(tpl, "root");
        if (dr && tr && !streq_ptr(volume_config_get(dr, "source"), volume_config_get(tr, "source")))
                return true;
        return false;
}
