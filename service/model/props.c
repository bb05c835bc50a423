/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The property tables of qubes and of the app, with their defaults, setters' checks and side
 * effects (spec/data-model.md §0-§1, spec/props-by-class.txt), and the generic Admin API
 * sanitisation of Set values (spec/admin-api.md 2.3.2). */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "device-protocol.h"
#include "model/model.h"
#include "model/props.h"
#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* ---- classes ---------------------------------------------------------------------------- */

void prop_value_done(PropValue *v) {
        if (!v)
                return;
        v->value = mfree(v->value);
        v->has_value = false;
        v->is_default = false;
}

int parse_bool_word(const char *s) {
        static const char *const no[] = { "0", "no", "false", "off" };
        static const char *const yes[] = { "1", "yes", "true", "on" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        return -EINVAL;
}

/* ---- small helpers ---------------------------------------------------------------------- */

#define QUBES_IPV6_PREFIX "fd09:24ef:4179:0000"
#define QUBES_BASE_DIR "/var/lib/qubes"

static Domain *DOM(const void *holder) {
        return (Domain *) holder;
}

static App *APP(const void *holder) {
        return (App *) holder;
}

static int ret_strdup(char **ret, const char *s) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int ret_printf(char **ret, const char *fmt, ...) _printf_(2, 3);
static int ret_printf(char **ret, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(ret, fmt, ap);
        va_end(ap);
        if (r < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

static bool domain_has_pci(const Domain *d) {
        for (size_t i = 0; i < d->n_devices; i++)
                if (streq_ptr(d->devices[i].devclass, "pci"))
                        return true;
        return false;
}

/* Chains (template, netvm) come from user data; a bound keeps a corrupted loop from hanging us. */
static size_t chain_bound(const App *app) {
        return hashmap_size(app->domains) + 2;
}

/* Upstream features.check_with_template(): the qube's own feature, else its template's, and so on. */
static const char *feature_check_with_template(Domain *d, const char *name) {
        size_t bound = chain_bound(d->app);
        for (Domain *t = d; t && bound > 0; t = domain_template(t), bound--) {
                const char *v = domain_feature_get(t, name);
                if (v)
                        return v;
        }
        return NULL;
}

/* Upstream features.check_with_netvm(): the qube's own feature, else along the netvm chain. */
static const char *feature_check_with_netvm(Domain *d, const char *name) {
        size_t bound = chain_bound(d->app);
        for (Domain *t = d; t && bound > 0; t = domain_netvm(t), bound--) {
                const char *v = domain_feature_get(t, name);
                if (v)
                        return v;
        }
        return NULL;
}

/* Feature values are strings; Python truthiness is "non-empty". */
static bool feature_true(const char *v) {
        return !isempty(v);
}

static bool domain_is_networked(Domain *d) {
        return domain_property_bool(d, "provides_network") || domain_netvm(d);
}

/* Whether 'target' appears on the netvm chain that starts at 'start' (excluding start). */
static bool netvm_chain_contains(Domain *start, Domain *target) {
        size_t bound = chain_bound(start->app);
        for (Domain *n = domain_netvm(start); n && bound > 0; n = domain_netvm(n), bound--)
                if (n == target)
                        return true;
        return false;
}

static bool slot_is_set(const Domain *d, const char *name) {
        const PropDef *p = domain_prop_find(d->klass, name);
        return p && domain_slot(d, p)->set;
}

/* The effective value of a global property; -ENOENT when it has none. */
static int global_value(App *app, const char *name, char **ret) {
        const PropDef *p = global_prop_find(name);
        PropValue v = {};
        int r;

        if (!p)
                return -ENOENT;
        r = app_property_get(app, p, &v, NULL);
        if (r < 0)
                return r;
        if (!v.has_value) {
                prop_value_done(&v);
                return -ENOENT;
        }
        *ret = TAKE_PTR(v.value);
        prop_value_done(&v);
        return 0;
}

/* Defaults that read another qube's value (template, GUI qube) recurse through that qube's own
 * default. qubes.xml or later changes may form a cycle (two qubes each other's guivm); upstream
 * would recurse until Python gives up, we stop following at a fixed depth instead. */
#define MAX_FOLLOW_DEPTH 16
static __thread unsigned follow_depth;

static bool follow_enter(void) {
        if (follow_depth >= MAX_FOLLOW_DEPTH)
                return false;
        follow_depth++;
        return true;
}

static void follow_leave(void) {
        follow_depth--;
}

/* Upstream _default_with_template(): the template's value of the same property when the qube
 * has a template and the template has a value; 1 if found, 0 if not, negative on error. */
static int value_from_template(Domain *d, const char *name, char **ret) {
        Domain *t = domain_template(d);
        const PropDef *p;
        PropValue v = {};
        int r;

        if (!t || !follow_enter())
                return 0;
        p = domain_prop_find(t->klass, name);
        if (!p) {
                follow_leave();
                return 0;
        }
        r = domain_property_get(t, p, &v, NULL);
        follow_leave();
        if (r < 0 || !v.has_value) {
                prop_value_done(&v);
                return 0;
        }
        *ret = TAKE_PTR(v.value);
        prop_value_done(&v);
        return 1;
}

static const char *holder_class_name(const void *holder, bool global) {
        return global ? "Qubes" : qubes_class_to_string(DOM(holder)->klass);
}

static bool prop_is_global(const PropDef *p) {
        return p >= global_props && p < global_props + n_global_props;
}

/* ---- defaults: literals ----------------------------------------------------------------- */

static int default_false(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, "False");
}

static int default_true(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, "True");
}

static int default_none(const void *h, const PropDef *p, char **ret, QError *err) {
        *ret = NULL;
        return 0;
}

static int default_empty(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, "");
}

static int default_minus_one(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, "-1");
}

static int default_mac(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, "00:16:3e:5e:6c:00");
}

/* ---- defaults: identity ----------------------------------------------------------------- */

/* Only dom0 has defaults for its identity; everyone else gets them at creation. */
static int default_name(const void *h, const PropDef *p, char **ret, QError *err) {
        if (DOM(h)->klass != QUBES_CLASS_ADMINVM)
                return -ENOENT;
        return ret_strdup(ret, "dom0");
}

static int default_qid(const void *h, const PropDef *p, char **ret, QError *err) {
        if (DOM(h)->klass != QUBES_CLASS_ADMINVM)
                return -ENOENT;
        return ret_strdup(ret, "0");
}

static int default_uuid(const void *h, const PropDef *p, char **ret, QError *err) {
        if (DOM(h)->klass != QUBES_CLASS_ADMINVM)
                return -ENOENT;
        return ret_strdup(ret, "00000000-0000-0000-0000-000000000000");
}

static int default_klass(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, qubes_class_to_string(DOM(h)->klass));
}

static int default_icon(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        _cleanup_free_ char *label = NULL;
        const char *kind;

        if (d->klass == QUBES_CLASS_ADMINVM)
                return ret_strdup(ret, "adminvm-black");

        label = domain_property_string(d, "label");
        if (!label)
                return -ENOENT;

        if (d->klass == QUBES_CLASS_TEMPLATEVM ||
            (domain_prop_find(d->klass, "template_for_dispvms") && domain_property_bool(d, "template_for_dispvms")))
                kind = "templatevm";
        else if (feature_true(domain_feature_get(d, "servicevm")))
                kind = "servicevm";
        else if (d->klass == QUBES_CLASS_DISPVM)
                kind = "dispvm";
        else if (d->klass == QUBES_CLASS_STANDALONEVM)
                kind = "standalonevm";
        else if (d->klass == QUBES_CLASS_REMOTEVM)
                kind = "remotevm";
        else
                kind = "appvm";

        return ret_printf(ret, "%s-%s", kind, label);
}

/* ---- defaults: QubesVM ------------------------------------------------------------------ */

static int default_with_template_or(Domain *d, const char *name, const char *fallback, char **ret) {
        int r = value_from_template(d, name, ret);
        if (r != 0)
                return r < 0 ? r : 0;
        return ret_strdup(ret, fallback);
}

static int default_with_template_or_global(Domain *d, const char *name, const char *global, char **ret) {
        int r = value_from_template(d, name, ret);
        if (r != 0)
                return r < 0 ? r : 0;
        return global_value(d->app, global, ret);
}

static int default_default_user(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_with_template_or(DOM(h), p->name, "user", ret);
}

static int default_memory(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_with_template_or(DOM(h), p->name, "400", ret);
}

static int default_vcpus(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_with_template_or(DOM(h), p->name, "2", ret);
}

static int default_kernel(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_with_template_or_global(DOM(h), p->name, "default_kernel", ret);
}

static int default_qrexec_timeout(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_with_template_or_global(DOM(h), p->name, "default_qrexec_timeout", ret);
}

static int default_shutdown_timeout(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_with_template_or_global(DOM(h), p->name, "default_shutdown_timeout", ret);
}

static int default_management_dispvm(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_with_template_or_global(DOM(h), p->name, "management_dispvm", ret);
}

static int default_virt_mode(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        if (domain_has_pci(d))
                return ret_strdup(ret, "hvm");
        return default_with_template_or(d, p->name, "pvh", ret);
}

/* Upstream features.check_with_template(name, default) read as Python truthiness: the nearest
 * value along the template chain, else the default. */
static bool feature_true_with_template(Domain *d, const char *name, bool dflt) {
        const char *v = feature_check_with_template(d, name);
        return v ? feature_true(v) : dflt;
}

/* Whether the qube or a template of it announces any supported-service.* feature. */
static bool announces_services(Domain *d) {
        size_t bound = chain_bound(d->app);
        for (Domain *t = d; t && bound > 0; t = domain_template(t), bound--) {
                const char *key;
                for (size_t i = 0; hashmap_iterate(t->features, &i, &key, NULL);)
                        if (startswith(key, "supported-service."))
                                return true;
        }
        return false;
}

/* Upstream is_memory_balancing_possible(): only a hypervisor that balances (Xen with qmemman),
 * never with PCI devices, and an HVM only when its tools are there (qrexec, or any supported
 * service when qrexec is not announced, and meminfo-writer not announced as missing). */
static bool memory_balancing_possible(Domain *d) {
        _cleanup_free_ char *virt_mode = NULL;

        if (!d->app->memory_balancing || domain_has_pci(d))
                return false;
        virt_mode = domain_property_string(d, "virt_mode");
        if (streq_ptr(virt_mode, "hvm")) {
                if (!feature_true_with_template(d, "qrexec", !announces_services(d)))
                        return false;
                if (!feature_true_with_template(d, "supported-service.meminfo-writer", true))
                        return false;
        }
        return true;
}

static int default_maxmem(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        int64_t mem;
        int r;

        /* upstream reads dom0's static maximum from xenstore, 4096 when it cannot */
        if (d->klass == QUBES_CLASS_ADMINVM)
                return ret_printf(ret, "%" PRIu64, d->app->dom0_maxmem_mib ?: 4096);

        if (!memory_balancing_possible(d))
                return ret_strdup(ret, "0");

        r = value_from_template(d, p->name, ret);
        if (r != 0)
                return r < 0 ? r : 0;

        if (streq_ptr(domain_feature_get(d, "os"), "Linux"))
                mem = domain_property_int(d, "memory", 400) * 10;
        else
                mem = 4000;
        /* no more than half of the host; zero means the host size is unknown (tests): no cap */
        if (d->app->host_memory_mib > 0 && (uint64_t) mem > d->app->host_memory_mib / 2)
                mem = (int64_t) (d->app->host_memory_mib / 2);
        return ret_printf(ret, "%" PRIi64, mem);
}

static int read_kernelopts_file(App *app, const char *kernel, const char *file, char **ret) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        int r;

        if (ret_printf(&path, "%s/vm-kernels/%s/%s", strempty(app->state_dir), kernel, file) < 0)
                return -ENOMEM;
        r = read_file(path, &data, NULL);
        if (r < 0)
                return r;

        /* Python's str.strip(): surrounding whitespace goes. */
        char *s = data;
        while (*s && isspace((unsigned char) *s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                n--;
        *ret = strndup(s, n);
        return *ret ? 0 : -ENOMEM;
}

static int default_kernelopts(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        _cleanup_free_ char *kernel = NULL, *opts = NULL;
        int r;

        kernel = domain_property_string(d, "kernel");
        if (isempty(kernel))
                return ret_strdup(ret, "");
        /* A kernel name never contains '/' (checked when set); refuse to build a path otherwise. */
        if (strchr(kernel, '/') || streq(kernel, "..") || streq(kernel, "."))
                return ret_strdup(ret, "");

        if (domain_has_pci(d)) {
                const char *suffix = "";
                Domain *dom0 = app_dom0(d->app);

                if (dom0 && feature_true(domain_feature_get(dom0, "suspend-s0ix")))
                        suffix = " qubes_exp_pm_use_suspend=1";
                r = read_kernelopts_file(d->app, kernel, "default-kernelopts-pci.txt", &opts);
                if (r == -ENOMEM)
                        return r;
                return ret_printf(ret, "%s%s", r >= 0 ? opts : "", suffix);
        }

        r = value_from_template(d, p->name, ret);
        if (r != 0)
                return r < 0 ? r : 0;

        r = read_kernelopts_file(d->app, kernel, "default-kernelopts-nopci.txt", ret);
        if (r >= 0 || r == -ENOMEM)
                return r;
        return ret_strdup(ret, "swiotlb=2048");
}

static int default_appvm_default_bootmode(const void *h, const PropDef *p, char **ret, QError *err) {
        const char *v = domain_feature_get(DOM(h), "boot-mode.appvm-default");
        return ret_strdup(ret, v ?: "default");
}

static int default_bootmode(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        const char *active = feature_check_with_template(d, "boot-mode.active");

        if (!isempty(active)) {
                _cleanup_free_ char *key = NULL;
                if (ret_printf(&key, "boot-mode.kernelopts.%s", active) < 0)
                        return -ENOMEM;
                if (feature_check_with_template(d, key))
                        return ret_strdup(ret, active);
        }

        /* The nearest template that says what its qubes boot with. */
        size_t bound = chain_bound(d->app);
        for (Domain *t = domain_template(d); t && bound > 0; t = domain_template(t), bound--) {
                const PropDef *q = domain_prop_find(t->klass, "appvm_default_bootmode");
                if (q) {
                        char *v = domain_property_string(t, "appvm_default_bootmode");
                        if (v) {
                                *ret = v;
                                return 0;
                        }
                }
        }
        return ret_strdup(ret, "default");
}

static int default_include_in_backups(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        if (d->klass == QUBES_CLASS_REMOTEVM)
                return ret_strdup(ret, "False");
        if (d->klass == QUBES_CLASS_DISPVM)
                return ret_strdup(ret, domain_property_bool(d, "auto_cleanup") ? "False" : "True");
        return ret_strdup(ret, "True");
}

static int default_updateable(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, qubes_class_has_template(DOM(h)->klass) ? "False" : "True");
}

static int default_keyboard_layout(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h), *guivm = NULL;

        if (d->klass != QUBES_CLASS_ADMINVM)
                guivm = domain_property_vm(d, "guivm");
        if (guivm && guivm != d && domain_prop_find(guivm->klass, "keyboard_layout") && follow_enter()) {
                char *v = domain_property_string(guivm, "keyboard_layout");
                follow_leave();
                if (v) {
                        *ret = v;
                        return 0;
                }
        }
        return ret_strdup(ret, "us++");
}

static int default_from_global(const void *h, const char *global, char **ret) {
        int r = global_value(DOM(h)->app, global, ret);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        return r;
}

static int default_guivm(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_from_global(h, "default_guivm", ret);
}

static int default_audiovm(const void *h, const PropDef *p, char **ret, QError *err) {
        return default_from_global(h, "default_audiovm", ret);
}

static int default_default_dispvm(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        if (d->klass == QUBES_CLASS_DISPVM)
                return ret_strdup(ret, domain_template(d) ? domain_template(d)->name : NULL);
        return default_from_global(h, "default_dispvm", ret);
}

static int default_netvm(const void *h, const PropDef *p, char **ret, QError *err) {
        if (DOM(h)->klass == QUBES_CLASS_TEMPLATEVM) {
                *ret = NULL;
                return 0;
        }
        return default_from_global(h, "default_netvm", ret);
}

static int default_is_preload(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h), *t = domain_template(d);
        const char *list = t ? domain_feature_get(t, "preload-dispvm") : NULL;

        /* The template lists its preloaded disposables, space-separated. */
        if (list) {
                size_t n = strlen(d->name);
                for (const char *s = list; *s;) {
                        size_t w = strcspn(s, " ");
                        if (w == n && strncmp(s, d->name, n) == 0)
                                return ret_strdup(ret, "True");
                        s += w;
                        s += strspn(s, " ");
                }
        }
        return ret_strdup(ret, "False");
}

/* ---- defaults: network ------------------------------------------------------------------ */

/* The id that addresses derive from: dispid for disposables, qid for everyone else. */
static int64_t network_vmid(Domain *d, bool *disp) {
        *disp = d->klass == QUBES_CLASS_DISPVM;
        if (*disp)
                return domain_property_int(d, "dispid", -1);
        return d->qid;
}

static int default_ip(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        bool disp;
        int64_t id;
        const char *prefix;

        *ret = NULL;
        if (!domain_is_networked(d))
                return 0;
        id = network_vmid(d, &disp);
        if (id < 0)
                return 0;
        prefix = disp ? "10.138" : "10.137";
        if (id < 255)
                return ret_printf(ret, "%s.%" PRIi64 ".%" PRIi64, prefix, id >> 8, id & 255);
        /* Beyond 254 the host part skips .0 and .255: 254 addresses per third octet. */
        int64_t v = id - 1;
        return ret_printf(ret, "%s.%" PRIi64 ".%" PRIi64, prefix, v / 254, v % 254 + 1);
}

static bool ipv6_enabled(Domain *d) {
        return feature_true(feature_check_with_netvm(d, "ipv6"));
}

static int canonical_ipv6(const char *in, char **ret);

static int default_ip6(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        _cleanup_free_ char *raw = NULL;
        bool disp;
        int64_t id;

        *ret = NULL;
        if (!domain_is_networked(d) || !ipv6_enabled(d))
                return 0;
        id = network_vmid(d, &disp);
        if (id < 0)
                return 0;
        if (ret_printf(&raw, "%s::%s:%" PRIx64, QUBES_IPV6_PREFIX, disp ? "a8a" : "a89", (uint64_t) id) < 0)
                return -ENOMEM;
        return canonical_ipv6(raw, ret);
}

static int default_visible_ip(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        const char *fake = feature_check_with_template(d, "net.fake-ip");
        if (feature_true(fake))
                return ret_strdup(ret, fake);
        *ret = domain_property_string(d, "ip");
        return 0;
}

static int default_visible_ip6(const void *h, const PropDef *p, char **ret, QError *err) {
        *ret = domain_property_string(DOM(h), "ip6");
        return 0;
}

static int default_gateway(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        *ret = domain_property_bool(d, "provides_network") ? domain_property_string(d, "visible_ip") : NULL;
        return 0;
}

static int default_gateway6(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h);
        *ret = NULL;
        if (ipv6_enabled(d) && domain_property_bool(d, "provides_network"))
                *ret = domain_property_string(d, "visible_ip6");
        return 0;
}

static int default_visible_gateway(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h), *netvm;
        const char *fake = feature_check_with_template(d, "net.fake-gateway");
        if (feature_true(fake))
                return ret_strdup(ret, fake);
        netvm = domain_netvm(d);
        *ret = netvm ? domain_property_string(netvm, "gateway") : NULL;
        return 0;
}

static int default_visible_gateway6(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h), *netvm;
        *ret = NULL;
        if (!ipv6_enabled(d))
                return 0;
        netvm = domain_netvm(d);
        if (netvm)
                *ret = domain_property_string(netvm, "gateway6");
        return 0;
}

static int default_visible_netmask(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *d = DOM(h), *netvm;
        const char *fake = feature_check_with_template(d, "net.fake-netmask");
        if (feature_true(fake))
                return ret_strdup(ret, fake);
        netvm = domain_netvm(d);
        return ret_strdup(ret, netvm && domain_is_networked(netvm) ? "255.255.255.255" : NULL);
}

static int default_dns(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, domain_is_networked(DOM(h)) ? "10.139.1.1 10.139.1.2" : NULL);
}

/* ---- defaults: globals ------------------------------------------------------------------ */

static int default_g_dom0(const void *h, const PropDef *p, char **ret, QError *err) {
        Domain *dom0 = app_dom0(APP(h));
        return ret_strdup(ret, dom0 ? dom0->name : NULL);
}

static int default_g_60(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, "60");
}

static int default_g_3(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_strdup(ret, "3");
}

static int default_g_maxmem(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_printf(ret, "%" PRIu64, APP(h)->host_memory_mib);
}

static int default_g_no_cpus(const void *h, const PropDef *p, char **ret, QError *err) {
        return ret_printf(ret, "%u", APP(h)->host_cpus);
}

static const char *pool_config(const Pool *pool, const char *key) {
        /* key, value pairs */
        for (char **k = pool->config; k && k[0] && k[1]; k += 2)
                if (streq(k[0], key))
                        return k[1];
        return NULL;
}

static int default_g_pool(const void *h, const PropDef *p, char **ret, QError *err) {
        App *app = APP(h);

        if (app_find_pool(app, "default"))
                return ret_strdup(ret, "default");

        /* Otherwise the file pool that holds the qubes' directory. */
        for (size_t i = 0; i < app->n_pools; i++) {
                Pool *pool = app->pools[i];
                const char *dir;

                if (!streq_ptr(pool->driver, "file") && !streq_ptr(pool->driver, "file-reflink"))
                        continue;
                dir = pool_config(pool, "dir_path");
                if (dir && ((app->state_dir && streq(dir, app->state_dir)) || streq(dir, QUBES_BASE_DIR)))
                        return ret_strdup(ret, pool->name);
        }
        return -ENOENT;
}

static int default_g_pool_sub(const void *h, const PropDef *p, char **ret, QError *err) {
        return global_value(APP(h), "default_pool", ret);
}

/* ---- checks ----------------------------------------------------------------------------- */

static int check_forbidden(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        return qerror_set(err, QERR_PROPERTY_VALUE, "property '%s' on %s instance cannot be set", p->name,
                          holder_class_name(h, prop_is_global(p)));
}

/* AdminVM's identity and maxmem are fixed; the same rows are writable (once) for the others. */
static int check_adminvm_forbidden(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        if (DOM(h)->klass == QUBES_CLASS_ADMINVM)
                return check_forbidden(h, p, value, canonical, err);
        return ret_strdup(canonical, value);
}

static int check_qid(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        char *end;
        long long v;

        if (DOM(h)->klass == QUBES_CLASS_ADMINVM)
                return check_forbidden(h, p, value, canonical, err);
        errno = 0;
        v = value ? strtoll(value, &end, 10) : -1;
        if (!value || errno != 0 || *end || v < 0 || v > QUBES_MAX_QID)
                return qerror_set(err, QERR_VALUE, "qid value must be between 0 and qubes.config.max_qid");
        return ret_strdup(canonical, value);
}

static bool int_is_positive(const char *v) {
        return v && v[0] != '-' && !streq(v, "0");
}

static int check_positive(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        if (!int_is_positive(value))
                return qerror_set(err, QERR_PROPERTY_VALUE, "%s must be positive", p->name);
        return ret_strdup(canonical, value);
}

static int check_maxmem(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        if (DOM(h)->klass == QUBES_CLASS_ADMINVM)
                return check_forbidden(h, p, value, canonical, err);
        if (!value || value[0] == '-')
                return qerror_set(err, QERR_PROPERTY_VALUE, "%s must be positive or zero", p->name);
        return ret_strdup(canonical, value);
}

static int check_label(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Label *l = app_find_label(DOM(h)->app, strempty(value));
        if (!l)
                return qerror_set(err, QERR_LABEL_NOT_FOUND, "Label does not exist: %s", strempty(value));
        return ret_strdup(canonical, l->name);
}

/* Every qube reference must name an existing qube; *ret gets it (NULL for None). */
static int resolve_vm(App *app, const PropDef *p, const char *value, bool allow_none, const char *holder_name,
                      Domain **ret, QError *err) {
        *ret = NULL;
        if (!value) {
                if (!allow_none)
                        return qerror_set(err, QERR_PROPERTY_VALUE, "Invalid value None for property '%s' of %s",
                                          p->name, holder_name);
                return 0;
        }
        *ret = app_get_domain(app, value);
        if (!*ret)
                return qerror_set(err, QERR_PROPERTY_VALUE, "Can't set %s to non-existing qube %s", p->name, value);
        return 0;
}

static int canonical_vm(Domain *vm, char **canonical) {
        return ret_strdup(canonical, vm ? vm->name : NULL);
}

static int check_vm(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *d = DOM(h), *vm;
        int r = resolve_vm(d->app, p, value, true, d->name, &vm, err);
        if (r < 0)
                return r;
        return canonical_vm(vm, canonical);
}

static int check_g_vm(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *vm;
        int r = resolve_vm(APP(h), p, value, true, "Qubes", &vm, err);
        if (r < 0)
                return r;
        return canonical_vm(vm, canonical);
}

static bool is_disposable_template(Domain *vm) {
        return domain_prop_find(vm->klass, "template_for_dispvms") && domain_property_bool(vm, "template_for_dispvms");
}

static int require_disposable_template(const PropDef *p, Domain *vm, QError *err) {
        if (vm && !is_disposable_template(vm))
                return qerror_set(err, QERR_PROPERTY_VALUE,
                                  "Qube %s cannot be used as %s: it is not a disposable template "
                                  "(template_for_dispvms is False)",
                                  vm->name, p->name);
        return 0;
}

static int check_dispvm_ref(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *d = DOM(h), *vm;
        int r = resolve_vm(d->app, p, value, true, d->name, &vm, err);
        if (r < 0)
                return r;
        r = require_disposable_template(p, vm, err);
        if (r < 0)
                return r;
        return canonical_vm(vm, canonical);
}

static int check_g_dispvm_ref(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *vm;
        int r = resolve_vm(APP(h), p, value, true, "Qubes", &vm, err);
        if (r < 0)
                return r;
        r = require_disposable_template(p, vm, err);
        if (r < 0)
                return r;
        return canonical_vm(vm, canonical);
}

static int check_g_default_template(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *vm;
        int r = resolve_vm(APP(h), p, value, true, "Qubes", &vm, err);
        if (r < 0)
                return r;
        if (vm && vm->klass != QUBES_CLASS_TEMPLATEVM)
                return qerror_set(err, QERR_PROPERTY_VALUE,
                                  "wrong VM class: domains['%s'] is of type %s and not TemplateVM", vm->name,
                                  qubes_class_to_string(vm->klass));
        return canonical_vm(vm, canonical);
}

static int check_netvm(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *d = DOM(h), *vm;
        int r = resolve_vm(d->app, p, value, true, d->name, &vm, err);
        if (r < 0)
                return r;
        if (vm) {
                if (!domain_prop_find(vm->klass, "provides_network") || !domain_property_bool(vm, "provides_network"))
                        return qerror_set(err, QERR_VALUE, "The %s qube does not provide network", vm->name);
                if (vm == d || netvm_chain_contains(vm, d))
                        return qerror_set(err, QERR_VALUE, "Loops in network are unsupported");
                if (domain_is_running(d) && !domain_is_running(vm))
                        return qerror_set(err, QERR_VM_NOT_STARTED, "Cannot dynamically attach to stopped NetVM: '%s'",
                                          vm->name);
        }
        return canonical_vm(vm, canonical);
}

static int check_g_default_netvm(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        App *app = APP(h);
        Domain *vm, *d;
        const char *key;
        void *v;
        int r;

        r = resolve_vm(app, p, value, true, "Qubes", &vm, err);
        if (r < 0)
                return r;
        /* Qubes that follow the default must not end up behind themselves. */
        if (vm)
                for (size_t i = 0; hashmap_iterate(app->domains, &i, &key, &v);) {
                        d = v;
                        if (!domain_prop_find(d->klass, "netvm") || slot_is_set(d, "netvm"))
                                continue;
                        if (vm == d || netvm_chain_contains(vm, d))
                                return qerror_set(err, QERR_PROPERTY_VALUE, "Network loop on '%s'", d->name);
                }
        return canonical_vm(vm, canonical);
}

static int check_template(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *d = DOM(h), *vm;
        const char *key;
        void *v;
        int r;

        r = resolve_vm(d->app, p, value, false, d->name, &vm, err);
        if (r < 0)
                return r;

        if (d->klass == QUBES_CLASS_DISPVM) {
                if (!is_disposable_template(vm))
                        return qerror_set(err, QERR_PROPERTY_VALUE,
                                          "template for disposable must have template_for_dispvms=True");
                return canonical_vm(vm, canonical);
        }

        if (vm->klass != QUBES_CLASS_TEMPLATEVM)
                return qerror_set(err, QERR_PROPERTY_VALUE,
                                  "wrong VM class: domains['%s'] is of type %s and not TemplateVM", vm->name,
                                  qubes_class_to_string(vm->klass));
        if (vm != domain_template(d)) {
                if (domain_is_running(d))
                        return qerror_set(err, QERR_VM_NOT_HALTED, "Cannot change template while qube is running");
                for (size_t i = 0; hashmap_iterate(d->app->domains, &i, &key, &v);) {
                        Domain *disp = v;
                        if (disp->klass != QUBES_CLASS_DISPVM || domain_template(disp) != d)
                                continue;
                        if (domain_is_running(disp) && !domain_property_bool(disp, "is_preload"))
                                return qerror_set(err, QERR_VM_NOT_HALTED,
                                                  "Cannot change template while there are running disposables "
                                                  "based on this disposable template");
                }
        }
        return canonical_vm(vm, canonical);
}

static int check_virt_mode(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        _cleanup_free_ char *v = strdup(strempty(value));
        if (!v)
                return -ENOMEM;
        for (char *c = v; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        if (!streq(v, "hvm") && !streq(v, "pv") && !streq(v, "pvh"))
                return qerror_set(err, QERR_PROPERTY_VALUE,
                                  "Invalid virtualization mode, supported values: hvm, pv, pvh");
        if (streq(v, "pvh") && domain_has_pci(DOM(h)))
                return qerror_set(err, QERR_PROPERTY_VALUE, "pvh mode can't be set if pci devices are assigned");
        *canonical = TAKE_PTR(v);
        return 0;
}

static int check_mac(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        _cleanup_free_ char *v = strdup(strempty(value));
        if (!v)
                return -ENOMEM;
        for (char *c = v; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        bool ok = strlen(v) == 17;
        for (size_t i = 0; ok && i < 17; i++)
                ok = i % 3 == 2 ? v[i] == ':' : (isdigit((unsigned char) v[i]) || (v[i] >= 'a' && v[i] <= 'f'));
        if (!ok)
                return qerror_set(err, QERR_VALUE, "Invalid MAC address value");
        *canonical = TAKE_PTR(v);
        return 0;
}

/* The directory of the kernel pool a qube's kernel comes from (its kernel volume's pool, else
 * the pool "linux-kernel", else any linux-kernel pool; upstream's fixed place when none). */
static char *kernel_pool_dir(App *app, Domain *d) {
        Pool *pool = NULL;
        const char *dir;
        char *ret = NULL;

        if (d) {
                VolumeConfig *vc = domain_volume_config(d, "kernel");
                const char *name = vc ? volume_config_get(vc, "pool") : NULL;
                pool = name ? app_find_pool(app, name) : NULL;
        }
        if (!pool || !streq_ptr(pool->driver, "linux-kernel"))
                pool = app_find_pool(app, "linux-kernel");
        for (size_t i = 0; (!pool || !streq_ptr(pool->driver, "linux-kernel")) && i < app->n_pools; i++)
                pool = app->pools[i];
        dir = pool && streq_ptr(pool->driver, "linux-kernel") ? pool_config(pool, "dir_path") : NULL;
        if (dir)
                return strdup(dir);
        if (ret_printf(&ret, "%s/vm-kernels", strempty(app->state_dir)) < 0)
                return NULL;
        return ret;
}

static int check_kernel(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        bool global = prop_is_global(p);
        _cleanup_free_ char *dir = NULL, *path = NULL;
        struct stat st;

        if (isempty(value))
                return ret_strdup(canonical, "");
        if (strchr(value, '/'))
                return qerror_set(err, QERR_PROPERTY_VALUE, "Kernel name cannot contain '/'");
        /* Stricter than upstream (any name without '/'): the name is a volume id of the kernel
         * pool, which refuses anything else, and one such volume made GetManagedObjects fail for
         * every client (found by test_hostile). */
        if (!volume_vid_valid(value))
                return qerror_set(err, QERR_PROPERTY_VALUE,
                                  "Kernel name must be letters, digits and '.', '_', '+', '-' (not '.' or '..')");
        /* upstream's pre-set check: the kernel is one of the kernel pool's volumes */
        dir = kernel_pool_dir(global ? APP(h) : DOM(h)->app, global ? NULL : DOM(h));
        if (!dir || ret_printf(&path, "%s/%s", dir, value) < 0)
                return -ENOMEM;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
                return qerror_set(err, QERR_PROPERTY_VALUE, "Kernel '%s' not installed", value);
        return ret_strdup(canonical, value);
}

static int check_kernelopts(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        if (isempty(value))
                return ret_strdup(canonical, "");
        /* The Xen boot ABI caps the command line at 1024; leave room for the common options. */
        if (strlen(value) > 512)
                return qerror_set(err, QERR_PROPERTY_VALUE, "Kernelopts value too long (512 chars max)");
        return ret_strdup(canonical, value);
}

#define USERNAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+,."

static int check_default_user(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        const char *v = strempty(value);
        if (v[strspn(v, USERNAME_CHARS)] != '\0')
                /* USERNAME_CHARS written out: xgettext does not expand macros */
                return qerror_set(err, QERR_PROPERTY_VALUE,
                                  "Username can contain only those characters: "
                                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+,.");
        return ret_strdup(canonical, v);
}

static bool all_in(const char *s, size_t n, const char *set) {
        for (size_t i = 0; i < n; i++)
                if (!s[i] || !strchr(set, s[i]))
                        return false;
        return true;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static int check_keyboard_layout(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        const char *v = strempty(value), *a, *b;

        for (const char *c = v; *c; c++)
                if ((unsigned char) *c >= 0x80)
                        return qerror_set(err, QERR_PROPERTY_VALUE, "Keyboard layouts must be ASCII");
        a = strchr(v, '+');
        b = a ? strchr(a + 1, '+') : NULL;
        if (!a || !b || strchr(b + 1, '+'))
                return qerror_set(err, QERR_PROPERTY_VALUE, "invalid number of keyboard layout parameters");
        /* layout is alphabetic and non-empty, as Python's isalpha(). */
        if (a == v || !all_in(v, (size_t) (a - v), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
                return qerror_set(err, QERR_PROPERTY_VALUE, "Invalid keyboard layout provided");
        if (!all_in(a + 1, (size_t) (b - a - 1), ALNUM "-_"))
                return qerror_set(err, QERR_PROPERTY_VALUE, "Invalid layout variant provided");
        if (!all_in(b + 1, strlen(b + 1), ALNUM "-_:,"))
                return qerror_set(err, QERR_PROPERTY_VALUE, "Invalid layout options provided");
        return ret_strdup(canonical, v);
}

/* devices: upstream's setter (split in 7s, de-duplicated, sorted, checked), shared with
 * admin.vm.device.denied.* (lib/device-protocol.c). */
static int check_devices_denied(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        return device_denied_canonical(strempty(value), canonical, err);
}

static int check_provides_network(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *d = DOM(h);
        const char *key;
        void *v;

        if (parse_bool_word(strempty(value)) == 0)
                for (size_t i = 0; hashmap_iterate(d->app->domains, &i, &key, &v);) {
                        Domain *other = v;
                        if (other != d && domain_netvm(other) == d)
                                return qerror_set(err, QERR_VALUE,
                                                  "The qube is still used by other qubes, change theirs 'netvm' first");
                }
        return ret_strdup(canonical, value);
}

static int check_template_for_dispvms(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Domain *d = DOM(h);
        App *app = d->app;
        const char *key;
        void *v;

        if (parse_bool_word(strempty(value)) != 0 || !domain_property_bool(d, "template_for_dispvms"))
                return ret_strdup(canonical, value);

        for (size_t i = 0; hashmap_iterate(app->domains, &i, &key, &v);) {
                Domain *other = v;
                if (other->klass == QUBES_CLASS_DISPVM && domain_template(other) == d &&
                    !domain_property_bool(other, "is_preload"))
                        return qerror_set(err, QERR_VM_IN_USE,
                                          "Cannot change template_for_dispvms to False while there are some "
                                          "disposables based on this disposable template");
        }

        static const char *const refs[] = { "default_dispvm", "management_dispvm" };
        for (size_t k = 0; k < ELEMENTSOF(refs); k++) {
                _cleanup_free_ char *g = NULL;
                if (global_value(app, refs[k], &g) >= 0 && streq_ptr(g, d->name))
                        return qerror_set(err, QERR_VM_IN_USE,
                                          "Cannot change template_for_dispvms to False while this qube is the "
                                          "global %s",
                                          refs[k]);
                for (size_t i = 0; hashmap_iterate(app->domains, &i, &key, &v);) {
                        Domain *other = v;
                        if (!slot_is_set(other, refs[k]))
                                continue;
                        if (domain_property_vm(other, refs[k]) == d)
                                return qerror_set(err, QERR_VM_IN_USE,
                                                  "Cannot change template_for_dispvms to False while qube %s uses "
                                                  "this qube as %s",
                                                  other->name, refs[k]);
                }
        }
        return ret_strdup(canonical, value);
}

static int check_g_pool(void *h, const PropDef *p, const char *value, char **canonical, QError *err) {
        Pool *pool = app_find_pool(APP(h), strempty(value));
        if (!pool)
                return qerror_set(err, QERR_PROPERTY_VALUE, "No such storage pool");
        return ret_strdup(canonical, pool->name);
}

/* ---- side effects ----------------------------------------------------------------------- */

/* Keep exactly one '<prefix><name>' tag on the qube, naming its current GUI/audio qube, so that
 * policies can select the qubes a given GUI domain serves. */
static void sync_vm_tag(Domain *d, const char *prefix, const char *newvalue) {
        _cleanup_free_ char *want = NULL;
        _cleanup_strv_free_ char **stale = NULL;
        const char *key;
        void *v;

        if (newvalue && ret_printf(&want, "%s%s", prefix, newvalue) < 0)
                return;

        for (size_t i = 0; hashmap_iterate(d->tags, &i, &key, &v);)
                if (startswith(key, prefix) && !streq_ptr(key, want))
                        if (strv_extend(&stale, key) < 0)
                                return;
        STRV_FOREACH(t, stale)
                (void) domain_tag_remove(d, *t, NULL);
        if (want && !domain_has_tag(d, want))
                (void) domain_tag_add(d, want, NULL);
}

static void changed_guivm(void *h, const PropDef *p, const char *oldvalue, const char *newvalue) {
        sync_vm_tag(DOM(h), "guivm-", newvalue);
}

static void changed_audiovm(void *h, const PropDef *p, const char *oldvalue, const char *newvalue) {
        sync_vm_tag(DOM(h), "audiovm-", newvalue);
}

static void sync_default_followers(App *app, const char *prop, const char *prefix, const char *newvalue) {
        const char *key;
        void *v;

        for (size_t i = 0; hashmap_iterate(app->domains, &i, &key, &v);) {
                Domain *d = v;
                if (!domain_prop_find(d->klass, prop) || slot_is_set(d, prop))
                        continue;
                sync_vm_tag(d, prefix, newvalue);
        }
}

static void changed_g_default_guivm(void *h, const PropDef *p, const char *oldvalue, const char *newvalue) {
        sync_default_followers(APP(h), "guivm", "guivm-", newvalue);
}

static void changed_g_default_audiovm(void *h, const PropDef *p, const char *oldvalue, const char *newvalue) {
        sync_default_followers(APP(h), "audiovm", "audiovm-", newvalue);
}

static void changed_g_clockvm(void *h, const PropDef *p, const char *oldvalue, const char *newvalue) {
        App *app = APP(h);
        Domain *old = oldvalue ? app_get_domain(app, oldvalue) : NULL;
        Domain *new = newvalue ? app_get_domain(app, newvalue) : NULL;

        if (old == new)
                return;
        if (old && domain_feature_get(old, "service.clocksync"))
                (void) domain_feature_remove(old, "service.clocksync", NULL);
        if (new && !feature_true(domain_feature_get(new, "service.clocksync")))
                (void) domain_feature_set(new, "service.clocksync", "1", NULL);
}

static void changed_provides_network(void *h, const PropDef *p, const char *oldvalue, const char *newvalue) {
        Domain *d = DOM(h);

        if (parse_bool_word(strempty(newvalue)) == 1) {
                if (!streq_ptr(domain_feature_get(d, "servicevm"), "1"))
                        (void) domain_feature_set(d, "servicevm", "1", NULL);
        } else if (domain_feature_get(d, "servicevm"))
                (void) domain_feature_remove(d, "servicevm", NULL);
}

/* ---- the tables ------------------------------------------------------------------------- */

#define QVM CLASSES_QUBESVM
#define QVM_ADMIN (CLASSES_QUBESVM | CLASS_BIT(ADMINVM))

#define ROW(_name, _dbus, _type, _stage, _flags, _classes, _default, _check, _changed, _help)                      \
        {                                                                                                          \
                .name = _name, .dbus_name = _dbus, .type = _type, .load_stage = _stage, .flags = _flags,           \
                .classes = _classes, .help = _help, .get_default = _default, .check = _check, .changed = _changed, \
        }

const PropDef domain_props[] = {
        /* stage 2 */
        ROW("auto_cleanup", "AutoCleanup", PROP_BOOL, 2, 0, CLASS_BIT(DISPVM), default_false, NULL, NULL,
            "Remove this disposable automatically once it shuts down."),
        ROW("autostart", "Autostart", PROP_BOOL, 2, 0, QVM, default_false, NULL, NULL,
            "Start this qube when the system boots."),
        ROW("backup_timestamp", "BackupTimestamp", PROP_INT, 2, 0, QVM, default_none, NULL, NULL,
            "When this qube was last backed up successfully, in seconds since the epoch; empty if never."),
        ROW("debug", "Debug", PROP_BOOL, 2, 0, QVM, default_false, NULL, NULL,
            "Run the qube in debug mode: a console is kept and boot diagnostics are more verbose."),
        ROW("default_user", "DefaultUser", PROP_STR, 2, 0, QVM, default_default_user, check_default_user, NULL,
            "The account commands run as inside the qube unless a caller names another one."),
        ROW("devices_denied", "DevicesDenied", PROP_STR, 2, 0, QVM_ADMIN, default_empty, check_devices_denied, NULL,
            "Device interface classes this qube must never receive, as 7-character codes (class letter and "
            "six hex digits, '*' matching anything)."),
        ROW("dispid", "Dispid", PROP_INT, 2, PROP_WRITE_ONCE | PROP_NO_CLONE, CLASS_BIT(DISPVM), NULL, NULL, NULL,
            "Internal number of this disposable, from which its name and network address are derived."),
        ROW("dns", "Dns", PROP_STR, 2, PROP_STATELESS, QVM, default_dns, check_forbidden, NULL,
            "Addresses of the DNS servers the qube is told to use, separated by spaces; empty when it has no "
            "network."),
        ROW("gateway", "Gateway", PROP_STR, 2, PROP_STATELESS, QVM, default_gateway, check_forbidden, NULL,
            "The address qubes connected to this network provider use as their gateway."),
        ROW("gateway6", "Gateway6", PROP_STR, 2, PROP_STATELESS, QVM, default_gateway6, check_forbidden, NULL,
            "The IPv6 address qubes connected to this network provider use as their gateway."),
        ROW("icon", "Icon", PROP_STR, 2, PROP_STATELESS, CLASSES_ALL, default_icon, check_forbidden, NULL,
            "Name of the icon that represents this qube, derived from its kind and label."),
        ROW("include_in_backups", "IncludeInBackups", PROP_BOOL, 2, 0, CLASSES_ALL, default_include_in_backups, NULL,
            NULL, "Whether a backup includes this qube when no explicit list of qubes is given."),
        ROW("installed_by_rpm", "InstalledByRpm", PROP_BOOL, 2, 0, QVM, default_false, NULL, NULL,
            "Set when the qube was installed from a package; such a qube is removed by removing the package."),
        ROW("ip", "Ip", PROP_IPV4, 2, 0, QVM, default_ip, NULL, NULL,
            "IPv4 address of the qube on its network; empty when it is not networked."),
        ROW("ip6", "Ip6", PROP_IPV6, 2, 0, QVM, default_ip6, NULL, NULL,
            "IPv6 address of the qube; empty unless it is networked and the ipv6 feature is enabled."),
        ROW("is_preload", "IsPreload", PROP_BOOL, 2, PROP_STATELESS, CLASS_BIT(DISPVM), default_is_preload,
            check_forbidden, NULL, "True while this disposable is one of those its template keeps started in advance."),
        ROW("kernel", "Kernel", PROP_STR, 2, 0, QVM, default_kernel, check_kernel, NULL,
            "Version of the dom0-provided kernel the qube boots; empty to boot the kernel installed inside "
            "the qube."),
        ROW("keyboard_layout", "KeyboardLayout", PROP_STR, 2, 0, QVM_ADMIN, default_keyboard_layout,
            check_keyboard_layout, NULL,
            "Keyboard layout as 'layout+variant+options'; follows the GUI qube when not set."),
        ROW("klass", "Klass", PROP_STR, 2, PROP_STATELESS, CLASSES_ALL, default_klass, check_forbidden, NULL,
            "The class of the qube, such as AppVM or TemplateVM."),
        ROW("label", "Label", PROP_LABEL, 2, 0, CLASSES_ALL, NULL, check_label, NULL,
            "The coloured label of the qube: it tints the window borders and identifies its trust level."),
        ROW("mac", "Mac", PROP_STR, 2, 0, QVM, default_mac, check_mac, NULL,
            "MAC address of the qube's virtual network card."),
        ROW("maxmem", "Maxmem", PROP_INT, 2, 0, QVM_ADMIN, default_maxmem, check_maxmem, NULL,
            "The most memory (MiB) the memory balancer may give the qube; 0 turns balancing off."),
        ROW("memory", "Memory", PROP_INT, 2, 0, QVM, default_memory, check_positive, NULL,
            "Memory (MiB) the qube starts with."),
        ROW("name", "Name", PROP_STR, 2, PROP_WRITE_ONCE | PROP_NO_CLONE, CLASSES_ALL, default_name,
            check_adminvm_forbidden, NULL, "The name of the qube; it never changes once the qube exists."),
        ROW("provides_network", "ProvidesNetwork", PROP_BOOL, 2, 0, QVM, default_false, check_provides_network,
            changed_provides_network, "Whether other qubes may use this one as their network provider (netvm)."),
        ROW("qid", "Qid", PROP_INT, 2, PROP_WRITE_ONCE | PROP_NO_CLONE, CLASSES_ALL, default_qid, check_qid, NULL,
            "Internal number of the qube, unique on this system; dom0 is 0."),
        ROW("qrexec_timeout", "QrexecTimeout", PROP_INT, 2, 0, QVM, default_qrexec_timeout, check_positive, NULL,
            "Seconds to wait for the qube's qrexec agent to answer after start before giving up."),
        ROW("remote_name", "RemoteName", PROP_STR, 2, 0, CLASS_BIT(REMOTEVM), default_none, NULL, NULL,
            "The name of this qube on the remote system it stands for."),
        ROW("shutdown_timeout", "ShutdownTimeout", PROP_INT, 2, 0, QVM, default_shutdown_timeout, check_positive, NULL,
            "Seconds a clean shutdown may take before it is reported as failed."),
        ROW("start_time", "StartTime", PROP_FLOAT, 2, PROP_STATELESS, QVM, default_none, check_forbidden, NULL,
            "When the qube was started, in seconds since the epoch; empty while it is not running."),
        ROW("stubdom_mem", "StubdomMem", PROP_INT, 2, 0, QVM, default_none, check_positive, NULL,
            "Memory (MiB) for the device-model stub domain of an HVM qube; empty for the built-in amount."),
        ROW("stubdom_uuid", "StubdomUuid", PROP_STR, 2, PROP_STATELESS, QVM, default_empty, check_forbidden, NULL,
            "UUID of the qube's stub domain while it runs; empty otherwise."),
        ROW("stubdom_xid", "StubdomXid", PROP_INT, 2, PROP_STATELESS, QVM, default_minus_one, check_forbidden, NULL,
            "Hypervisor id of the qube's stub domain while it runs; -1 otherwise."),
        ROW("template_for_dispvms", "TemplateForDispvms", PROP_BOOL, 2, 0, CLASS_BIT(APPVM) | CLASS_BIT(STANDALONEVM),
            default_false, check_template_for_dispvms, NULL,
            "Whether disposables may be started from this qube, which then acts as their template."),
        ROW("transport_rpc", "TransportRpc", PROP_STR, 2, 0, CLASS_BIT(REMOTEVM), default_none, NULL, NULL,
            "The qrexec service that carries calls to the remote system."),
        ROW("updateable", "Updateable", PROP_BOOL, 2, PROP_READONLY, QVM_ADMIN, default_updateable, check_forbidden,
            NULL, "Whether changes to the qube's root filesystem persist, so software can be installed in it."),
        ROW("uuid", "Uuid", PROP_UUID, 2, PROP_WRITE_ONCE | PROP_NO_CLONE, CLASSES_ALL, default_uuid,
            check_adminvm_forbidden, NULL, "Universally unique identifier of the qube."),
        ROW("vcpus", "Vcpus", PROP_INT, 2, 0, QVM, default_vcpus, check_positive, NULL,
            "Number of virtual CPUs the qube gets."),
        ROW("virt_mode", "VirtMode", PROP_STR, 2, 0, QVM, default_virt_mode, check_virt_mode, NULL,
            "How the qube is virtualised: pvh, pv or hvm (hvm is needed for PCI devices)."),
        ROW("visible_gateway", "VisibleGateway", PROP_STR, 2, PROP_STATELESS, QVM, default_visible_gateway,
            check_forbidden, NULL, "The gateway address as the qube itself sees it."),
        ROW("visible_gateway6", "VisibleGateway6", PROP_STR, 2, PROP_STATELESS, QVM, default_visible_gateway6,
            check_forbidden, NULL, "The IPv6 gateway address as the qube itself sees it."),
        ROW("visible_ip", "VisibleIp", PROP_STR, 2, PROP_STATELESS, QVM, default_visible_ip, check_forbidden, NULL,
            "The IPv4 address as the qube itself sees it (it can differ from ip when hidden)."),
        ROW("visible_ip6", "VisibleIp6", PROP_STR, 2, PROP_STATELESS, QVM, default_visible_ip6, check_forbidden, NULL,
            "The IPv6 address as the qube itself sees it."),
        ROW("visible_netmask", "VisibleNetmask", PROP_STR, 2, PROP_STATELESS, QVM, default_visible_netmask,
            check_forbidden, NULL, "The netmask as the qube itself sees it."),
        ROW("xid", "Xid", PROP_INT, 2, PROP_STATELESS, QVM, default_minus_one, check_forbidden, NULL,
            "Hypervisor id of the running qube; -1 when it is not running."),
        /* stage 4: references to other qubes, loaded once every qube exists */
        ROW("appvm_default_bootmode", "AppvmDefaultBootmode", PROP_STR, 4, 0, CLASS_BIT(TEMPLATEVM),
            default_appvm_default_bootmode, NULL, NULL,
            "Boot mode that qubes based on this template use unless they choose one."),
        ROW("audiovm", "Audiovm", PROP_VM, 4, 0, QVM, default_audiovm, check_vm, changed_audiovm,
            "The qube that plays and records sound for this qube; empty for none."),
        ROW("bootmode", "Bootmode", PROP_STR, 4, 0, QVM, default_bootmode, NULL, NULL,
            "Named set of extra kernel options the qube boots with."),
        ROW("default_dispvm", "DefaultDispvm", PROP_VM, 4, 0, QVM_ADMIN, default_default_dispvm, check_dispvm_ref, NULL,
            "The disposable template used when this qube asks for a new disposable."),
        ROW("guivm", "Guivm", PROP_VM, 4, 0, QVM, default_guivm, check_vm, changed_guivm,
            "The qube that shows this qube's windows; empty for none."),
        ROW("kernelopts", "Kernelopts", PROP_STR, 4, 0, QVM, default_kernelopts, check_kernelopts, NULL,
            "Extra options on the kernel command line of the qube."),
        ROW("management_dispvm", "ManagementDispvm", PROP_VM, 4, 0, QVM, default_management_dispvm, check_dispvm_ref,
            NULL, "The disposable template used for management tasks (such as configuration) of this qube."),
        ROW("netvm", "Netvm", PROP_VM, 4, 0, QVM, default_netvm, check_netvm, NULL,
            "The qube that provides network access to this one; empty for no network."),
        ROW("relayvm", "Relayvm", PROP_VM, 4, 0, CLASS_BIT(REMOTEVM), default_none, check_vm, NULL,
            "The local qube through which calls to this remote qube travel."),
        ROW("template", "Template", PROP_VM, 4, PROP_NO_RESET, CLASS_BIT(APPVM) | CLASS_BIT(DISPVM), NULL,
            check_template, NULL,
            "The qube whose root filesystem this qube starts from: a template, or for a disposable its "
            "disposable template."),
};
const size_t n_domain_props = ELEMENTSOF(domain_props);
/* a qube's slots are found through a 64-bit mask (Domain.props_present) */
_Static_assert(ELEMENTSOF(domain_props) <= 64, "more than 64 qube properties");

const PropDef global_props[] = {
        ROW("check_updates_vm", "CheckUpdatesVm", PROP_BOOL, 3, 0, 0, default_true, NULL, NULL,
            "Whether qubes check for software updates and report them."),
        ROW("clockvm", "Clockvm", PROP_VM, 3, 0, 0, default_none, check_g_vm, changed_g_clockvm,
            "The qube that synchronises the clock from the network for the whole system."),
        ROW("default_audiovm", "DefaultAudiovm", PROP_VM, 3, 0, 0, default_g_dom0, check_g_vm,
            changed_g_default_audiovm, "The sound qube of qubes that do not choose their own."),
        ROW("default_dispvm", "DefaultDispvm", PROP_VM, 3, 0, 0, default_none, check_g_dispvm_ref, NULL,
            "The disposable template used by qubes that do not choose their own."),
        ROW("default_guivm", "DefaultGuivm", PROP_VM, 3, 0, 0, default_g_dom0, check_g_vm, changed_g_default_guivm,
            "The GUI qube of qubes that do not choose their own."),
        ROW("default_kernel", "DefaultKernel", PROP_STR, 3, 0, 0, NULL, check_kernel, NULL,
            "The dom0-provided kernel of qubes that do not choose their own."),
        ROW("default_netvm", "DefaultNetvm", PROP_VM, 3, 0, 0, default_none, check_g_default_netvm, NULL,
            "The network provider of qubes that do not choose their own; empty for no network."),
        ROW("default_pool", "DefaultPool", PROP_POOL, 3, 0, 0, default_g_pool, check_g_pool, NULL,
            "The storage pool new volumes go to unless a more specific default applies."),
        ROW("default_pool_kernel", "DefaultPoolKernel", PROP_POOL, 3, 0, 0, default_g_pool_sub, check_g_pool, NULL,
            "The storage pool for new kernel volumes."),
        ROW("default_pool_private", "DefaultPoolPrivate", PROP_POOL, 3, 0, 0, default_g_pool_sub, check_g_pool, NULL,
            "The storage pool for new private volumes."),
        ROW("default_pool_root", "DefaultPoolRoot", PROP_POOL, 3, 0, 0, default_g_pool_sub, check_g_pool, NULL,
            "The storage pool for new root volumes."),
        ROW("default_pool_volatile", "DefaultPoolVolatile", PROP_POOL, 3, 0, 0, default_g_pool_sub, check_g_pool, NULL,
            "The storage pool for new volatile volumes."),
        ROW("default_qrexec_timeout", "DefaultQrexecTimeout", PROP_INT, 3, 0, 0, default_g_60, NULL, NULL,
            "Seconds a qube's qrexec agent may take to answer after start, unless the qube says otherwise."),
        ROW("default_shutdown_timeout", "DefaultShutdownTimeout", PROP_INT, 3, 0, 0, default_g_60, NULL, NULL,
            "Seconds a clean shutdown may take, unless the qube says otherwise."),
        ROW("default_template", "DefaultTemplate", PROP_VM, 3, 0, 0, NULL, check_g_default_template, NULL,
            "The template new qubes are based on when none is given."),
        ROW("management_dispvm", "ManagementDispvm", PROP_VM, 3, 0, 0, default_none, check_g_dispvm_ref, NULL,
            "The disposable template used for management tasks of qubes that do not choose their own."),
        ROW("maxmem", "Maxmem", PROP_INT, 3, PROP_READONLY, 0, default_g_maxmem, check_forbidden, NULL,
            "Total memory of the host in MiB."),
        ROW("no_cpus", "NoCpus", PROP_INT, 3, PROP_READONLY, 0, default_g_no_cpus, check_forbidden, NULL,
            "Number of CPUs of the host."),
        ROW("stats_interval", "StatsInterval", PROP_INT, 3, 0, 0, default_g_3, NULL, NULL,
            "Seconds between two reports of memory and CPU use."),
        ROW("updatevm", "Updatevm", PROP_VM, 3, 0, 0, default_none, check_g_vm, NULL,
            "The qube through which dom0 and templates download their updates."),
};
const size_t n_global_props = ELEMENTSOF(global_props);

bool prop_is_readonly_for(const PropDef *p, QubesClass c) {
        if (!p)
                return false;
        if (p->flags & (PROP_READONLY | PROP_STATELESS))
                return true;
        /* dom0's identity and memory belong to the system, not to the Admin API. */
        if (c == QUBES_CLASS_ADMINVM && !prop_is_global(p))
                return streq(p->name, "maxmem") || streq(p->name, "name") || streq(p->name, "qid") ||
                       streq(p->name, "uuid") || streq(p->name, "icon") || streq(p->name, "klass");
        return false;
}

/* ---- lookups and orders ----------------------------------------------------------------- */

/* Property reads look a row up by name on every call (the D-Bus getters by D-Bus name, the
 * defaults by Qubes name, often several levels deep): open-addressing tables of row indexes,
 * built before main() with the orders below, instead of a strcmp() over every row. */
#define LOOKUP_SLOTS 256 /* power of two, at least twice the rows of either table */

typedef struct PropIndex {
        int16_t slot[LOOKUP_SLOTS];   /* row + 1 by the key's text; 0 = empty */
        int16_t by_ptr[LOOKUP_SLOTS]; /* row + 1 by the address of the row's own string */
        bool shared_keys;             /* two rows have the same text: by_ptr is not used */
} PropIndex;

static PropIndex domain_by_name, domain_by_dbus, global_by_name, global_by_dbus;

static uint32_t name_hash(const char *s) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 16777619u;
        return h;
}

static uint32_t ptr_hash(const char *s) {
        uint64_t x = (uint64_t) (uintptr_t) s * UINT64_C(0x9E3779B97F4A7C15);
        return (uint32_t) (x >> 32);
}

static const char *row_key(const PropDef *p, bool dbus) {
        return dbus ? p->dbus_name : p->name;
}

static void index_add(PropIndex *ix, const PropDef *rows, bool dbus, size_t row) {
        const char *key = row_key(&rows[row], dbus);
        for (uint32_t i = name_hash(key);; i++) {
                int16_t k = ix->slot[i & (LOOKUP_SLOTS - 1)];
                if (k == 0) {
                        ix->slot[i & (LOOKUP_SLOTS - 1)] = (int16_t) (row + 1);
                        break;
                }
                if (streq(row_key(&rows[k - 1], dbus), key))
                        ix->shared_keys = true;
        }
        for (uint32_t i = ptr_hash(key);; i++)
                if (ix->by_ptr[i & (LOOKUP_SLOTS - 1)] == 0) {
                        ix->by_ptr[i & (LOOKUP_SLOTS - 1)] = (int16_t) (row + 1);
                        break;
                }
}

/* The first row (in table order, which is the order a key's rows sit along its probe chain)
 * with that key and one of the classes; classes 0 takes any row. The D-Bus getters pass the
 * very string of the row (sd-bus hands back the vtable's member name, which is the row's), so
 * the address is tried before the text. */
static const PropDef *index_find(const PropIndex *ix, const PropDef *rows, bool dbus, const char *key,
                                 uint32_t classes) {
        for (uint32_t i = ptr_hash(key); !ix->shared_keys; i++) {
                int16_t k = ix->by_ptr[i & (LOOKUP_SLOTS - 1)];
                if (k == 0)
                        break;
                const PropDef *p = &rows[k - 1];
                if (row_key(p, dbus) == key)
                        return !classes || (p->classes & classes) ? p : NULL;
        }
        for (uint32_t i = name_hash(key);; i++) {
                int16_t k = ix->slot[i & (LOOKUP_SLOTS - 1)];
                if (k == 0)
                        return NULL;
                const PropDef *p = &rows[k - 1];
                if ((!classes || (p->classes & classes)) && streq(row_key(p, dbus), key))
                        return p;
        }
}

const PropDef *domain_prop_find(QubesClass klass, const char *name) {
        if (!name || klass < 0 || klass >= _QUBES_CLASS_MAX)
                return NULL;
        return index_find(&domain_by_name, domain_props, false, name, 1u << klass);
}

const PropDef *domain_prop_find_dbus(QubesClass klass, const char *dbus_name) {
        if (!dbus_name || klass < 0 || klass >= _QUBES_CLASS_MAX)
                return NULL;
        return index_find(&domain_by_dbus, domain_props, true, dbus_name, 1u << klass);
}

const PropDef *global_prop_find(const char *name) {
        return name ? index_find(&global_by_name, global_props, false, name, 0) : NULL;
}

const PropDef *global_prop_find_dbus(const char *dbus_name) {
        return dbus_name ? index_find(&global_by_dbus, global_props, true, dbus_name, 0) : NULL;
}

/* Generous fixed bounds keep the ordered lists static; checked when they are built. */
#define MAX_PROPS 96

static const PropDef *class_order[_QUBES_CLASS_MAX][MAX_PROPS + 1];
static const PropDef *global_order[MAX_PROPS + 1];

static int cmp_prop(const void *a, const void *b) {
        const PropDef *x = *(const PropDef *const *) a, *y = *(const PropDef *const *) b;
        if (x->load_stage != y->load_stage)
                return x->load_stage < y->load_stage ? -1 : 1;
        return strcmp(x->name, y->name);
}

/* Built before main() so that no caller, on any thread, ever sees a half-built list. */
static void __attribute__((constructor)) build_orders(void) {
        _Static_assert(ELEMENTSOF(domain_props) <= MAX_PROPS, "raise MAX_PROPS");
        _Static_assert(ELEMENTSOF(global_props) <= MAX_PROPS, "raise MAX_PROPS");
        _Static_assert(2 * MAX_PROPS <= LOOKUP_SLOTS, "raise LOOKUP_SLOTS");

        for (size_t i = 0; i < n_domain_props; i++) {
                index_add(&domain_by_name, domain_props, false, i);
                index_add(&domain_by_dbus, domain_props, true, i);
        }
        for (size_t i = 0; i < n_global_props; i++) {
                index_add(&global_by_name, global_props, false, i);
                index_add(&global_by_dbus, global_props, true, i);
        }

        for (int c = 0; c < _QUBES_CLASS_MAX; c++) {
                size_t n = 0;
                for (size_t i = 0; i < n_domain_props; i++)
                        if (domain_props[i].classes & (1u << c))
                                class_order[c][n++] = &domain_props[i];
                qsort(class_order[c], n, sizeof(PropDef *), cmp_prop);
                class_order[c][n] = NULL;
        }
        for (size_t i = 0; i < n_global_props; i++)
                global_order[i] = &global_props[i];
        qsort(global_order, n_global_props, sizeof(PropDef *), cmp_prop);
        global_order[n_global_props] = NULL;
}

const PropDef *const *domain_props_of_class(QubesClass klass) {
        if (klass < 0 || klass >= _QUBES_CLASS_MAX)
                return NULL;
        return class_order[klass];
}

const PropDef *const *global_props_ordered(void) {
        return global_order;
}

const char *prop_type_word(const PropDef *p) {
        switch (p->type) {
        case PROP_VM:
                return "vm";
        case PROP_INT:
                return "int";
        case PROP_BOOL:
                return "bool";
        default:
                return streq(p->name, "label") ? "label" : "str";
        }
}

/* ---- sanitisation ----------------------------------------------------------------------- */

/* Python's repr() of an ASCII str, for messages that quote a rejected value as upstream does. */
static char *py_repr(const char *s, size_t len) {
        _cleanup_strbuf_ StrBuf b = {};
        bool has_single = memchr(s, '\'', len), has_double = memchr(s, '"', len);
        char q = has_single && !has_double ? '"' : '\'';

        strbuf_append_c(&b, q);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c == '\\')
                        strbuf_append(&b, "\\\\");
                else if (c == (unsigned char) q)
                        strbuf_printf(&b, "\\%c", q);
                else if (c == '\n')
                        strbuf_append(&b, "\\n");
                else if (c == '\r')
                        strbuf_append(&b, "\\r");
                else if (c == '\t')
                        strbuf_append(&b, "\\t");
                else if (c < 0x20 || c >= 0x7f)
                        strbuf_printf(&b, "\\x%02x", c);
                else
                        strbuf_append_c(&b, (char) c);
        }
        strbuf_append_c(&b, q);
        return b.oom ? NULL : strbuf_steal(&b);
}

/* The characters of Python's string.printable. */
static bool py_printable(unsigned char c) {
        return (c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

/* Python's str.strip() on ASCII: these are the whitespace characters int() skips. */
static bool py_space(unsigned char c) {
        return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* int(): surrounding whitespace, an optional sign, decimal digits with single underscores
 * between them. Values beyond 64 bits are refused: every consumer stores int64. */
static int parse_py_int(const char *s, size_t len, char **ret) {
        size_t i = 0, j = len;
        bool neg = false;
        uint64_t v = 0;
        bool any = false;

        while (i < j && py_space((unsigned char) s[i]))
                i++;
        while (j > i && py_space((unsigned char) s[j - 1]))
                j--;
        if (i < j && (s[i] == '+' || s[i] == '-'))
                neg = s[i++] == '-';
        if (i >= j)
                return -EINVAL;
        for (; i < j; i++) {
                if (s[i] == '_') {
                        if (!any || i + 1 >= j || !isdigit((unsigned char) s[i + 1]))
                                return -EINVAL;
                        continue;
                }
                if (!isdigit((unsigned char) s[i]))
                        return -EINVAL;
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (s[i] - '0');
                any = true;
        }
        if (!any)
                return -EINVAL;
        if ((!neg && v > (uint64_t) INT64_MAX) || (neg && v > (uint64_t) INT64_MAX + 1))
                return -ERANGE;
        if (neg && v != 0)
                return ret_printf(ret, "-%" PRIu64, v);
        return ret_printf(ret, "%" PRIu64, v);
}

/* uuid.UUID(): optional "urn:"/"uuid:" prefixes and braces, hyphens anywhere, 32 hex digits. */
static int parse_uuid(const char *s, char **ret) {
        _cleanup_free_ char *t = strdup(s);
        char hex[33];
        size_t n = 0;
        char *p, *e;

        if (!t)
                return -ENOMEM;
        for (const char *pfx = "urn:"; pfx; pfx = streq(pfx, "urn:") ? "uuid:" : NULL)
                while ((p = strstr(t, pfx)))
                        memmove(p, p + strlen(pfx), strlen(p + strlen(pfx)) + 1);
        p = t;
        while (*p == '{' || *p == '}')
                p++;
        e = p + strlen(p);
        while (e > p && (e[-1] == '{' || e[-1] == '}'))
                e--;
        for (; p < e; p++) {
                if (*p == '-')
                        continue;
                if (!isxdigit((unsigned char) *p) || n >= 32)
                        return -EINVAL;
                hex[n++] = (char) tolower((unsigned char) *p);
        }
        if (n != 32)
                return -EINVAL;
        hex[32] = '\0';
        return ret_printf(ret, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* ipaddress.IPv6Address's compressed form: lowercase groups without leading zeros, the
 * first longest run of two or more zero groups replaced by "::". */
static int format_ipv6(const struct in6_addr *a, char **ret) {
        unsigned g[8];
        int best = -1, best_len = 0;
        _cleanup_strbuf_ StrBuf b = {};

        for (int i = 0; i < 8; i++)
                g[i] = (unsigned) a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1];
        for (int i = 0; i < 8;) {
                if (g[i] != 0) {
                        i++;
                        continue;
                }
                int j = i;
                while (j < 8 && g[j] == 0)
                        j++;
                if (j - i > best_len) {
                        best = i;
                        best_len = j - i;
                }
                i = j;
        }
        if (best_len < 2)
                best = -1;
        for (int i = 0; i < 8; i++) {
                if (i == best) {
                        strbuf_append(&b, "::");
                        i += best_len - 1;
                        continue;
                }
                if (i > 0 && i != best + best_len)
                        strbuf_append_c(&b, ':');
                strbuf_printf(&b, "%x", g[i]);
        }
        if (b.oom)
                return -ENOMEM;
        *ret = strbuf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

static int canonical_ipv6(const char *in, char **ret) {
        struct in6_addr a;
        if (inet_pton(AF_INET6, in, &a) != 1)
                return -EINVAL;
        return format_ipv6(&a, ret);
}

static int sanitize_vm(const char *raw, size_t len, char **ret, QError *err) {
        _cleanup_free_ char *s = NULL;
        int r;

        for (size_t i = 0; i < len; i++)
                if ((unsigned char) raw[i] >= 0x80)
                        /* upstream's message is empty; qerror_setv keeps "" out of the catalogue */
                        return qerror_setv(err, QERR_VALUE, "", NULL, 0);
        if (len == 0) {
                *ret = NULL;
                return 0;
        }
        if (memchr(raw, '\0', len))
                return qerror_set(err, QERR_VALUE, "VM name contains illegal characters");
        s = strndup(raw, len);
        if (!s)
                return -ENOMEM;
        r = validate_vm_name(s, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int prop_sanitize(const PropDef *p, const char *raw, size_t len, char **ret, QError *err) {
        _cleanup_free_ char *s = NULL;
        int r;

        *ret = NULL;
        if (!raw)
                len = 0, raw = "";

        /* every value a client can give is bounded (docs/compatibility.md): qubes.xml and every
         * save stay small whatever a caller sends */
        if (len > PROP_VALUE_MAX) {
                char lenbuf[32];
                snprintf(lenbuf, sizeof lenbuf, "%zu", len);
                return qerror_set(err, QERR_VALUE, "Value of property '%s' is too long (%s bytes, at most 1024)",
                                  p->name, lenbuf);
        }

        if (p->type == PROP_VM)
                return sanitize_vm(raw, len, ret, err);

        for (size_t i = 0; i < len; i++)
                if ((unsigned char) raw[i] >= 0x80)
                        return qerror_set(err, QERR_VALUE, "Non-ASCII bytes in property value");

        switch (p->type) {
        case PROP_BOOL: {
                int b = -EINVAL;
                if (!memchr(raw, '\0', len)) {
                        s = strndup(raw, len);
                        if (!s)
                                return -ENOMEM;
                        b = parse_bool_word(s);
                }
                if (b < 0) {
                        _cleanup_free_ char *repr = py_repr(raw, len);
                        if (!repr)
                                return -ENOMEM;
                        return qerror_set(err, QERR_VALUE, "Invalid literal for boolean property: %s", repr);
                }
                return ret_strdup(ret, b ? "True" : "False");
        }

        case PROP_INT:
                r = parse_py_int(raw, len, ret);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return qerror_set(err, QERR_VALUE, "Failed to parse property value as int");
                return 0;

        case PROP_UUID:
                r = -EINVAL;
                if (!memchr(raw, '\0', len)) {
                        s = strndup(raw, len);
                        if (!s)
                                return -ENOMEM;
                        r = parse_uuid(s, ret);
                        if (r == -ENOMEM)
                                return r;
                }
                if (r < 0)
                        return qerror_set(err, QERR_VALUE, "Failed to parse property value as UUID");
                return 0;

        case PROP_IPV4: {
                struct in_addr a;
                char buf[INET_ADDRSTRLEN];

                s = strndup(raw, len);
                if (!s)
                        return -ENOMEM;
                if (memchr(raw, '\0', len) || inet_pton(AF_INET, s, &a) != 1 ||
                    !inet_ntop(AF_INET, &a, buf, sizeof(buf)))
                        return qerror_set(err, QERR_VALUE, "Failed to parse property value as IPv4Address");
                return ret_strdup(ret, buf);
        }

        case PROP_IPV6:
                r = -EINVAL;
                if (!memchr(raw, '\0', len)) {
                        s = strndup(raw, len);
                        if (!s)
                                return -ENOMEM;
                        r = canonical_ipv6(s, ret);
                        if (r == -ENOMEM)
                                return r;
                }
                if (r < 0)
                        return qerror_set(err, QERR_VALUE, "Failed to parse property value as IPv6Address");
                return 0;

        default:
                /* str, untyped, label, pool and the float start_time (never set). */
                for (size_t i = 0; i < len; i++)
                        if (!py_printable((unsigned char) raw[i]))
                                return qerror_set(err, QERR_VALUE, "Invalid characters in property value");
                *ret = strndup(raw, len);
                return *ret ? 0 : -ENOMEM;
        }
}

int prop_read(const void *holder, const PropDef *p, const PropSlot *slot, PropValue *ret, QError *err) {
        char *v = NULL;
        int r;

        if (slot && slot->set) {
                if (slot->value) {
                        v = strdup(slot->value);
                        if (!v)
                                return -ENOMEM;
                }
                *ret = (PropValue){ .is_default = false, .has_value = true, .value = v };
                return 0;
        }
        *ret = (PropValue){ .is_default = true };
        if (!p->get_default)
                return 0;
        r = p->get_default(holder, p, &v, err);
        if (r == -ENOENT)
                return 0; /* no default: reads as "default=True" with no value */
        if (r < 0)
                return r;
        ret->has_value = true;
        ret->value = v;
        return 0;
}
