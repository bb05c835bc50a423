/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The model layer on its own: creating, finding, changing and removing qubes, labels,
 * properties, features, tags and notes, with the events each change reports. */
#include <stdarg.h>
#include <sys/stat.h>

#include "model/model.h"
#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/strv.h"

static int failures;

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

#define CHECK_STREQ(a, b)                                                                               \
        do {                                                                                            \
                const char *_a = (a), *_b = (b);                                                        \
                if (!streq_ptr(_a, _b)) {                                                               \
                        fprintf(stderr, "%s:%d: %s: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a, \
                                _a ? _a : "(null)", _b ? _b : "(null)");                                \
                        failures++;                                                                     \
                }                                                                                       \
        } while (0)

/* Checks that a call failed with this exception class and message, then clears the error. */
static void check_error(int line, int r, QError *err, QubesErrorCode code, const char *message, bool prefix) {
        _cleanup_free_ char *m = NULL;

        if (r >= 0) {
                fprintf(stderr, "%s:%d: call succeeded, want %s \"%s\"\n", __FILE__, line, qubes_error_class_name(code),
                        message);
                failures++;
                return;
        }
        m = err->code != QERR_NONE ? qerror_message(err) : NULL;
        if (err->code != code || !m || (prefix ? !startswith(m, message) : !streq(m, message))) {
                fprintf(stderr, "%s:%d: got %s \"%s\" (r=%d), want %s \"%s\"\n", __FILE__, line,
                        err->code != QERR_NONE ? qubes_error_class_name(err->code) : "no error", strempty(m), r,
                        qubes_error_class_name(code), message);
                failures++;
        }
        qerror_done(err);
}
#define CHECK_ERROR(call, code, message) check_error(__LINE__, (call), &err, code, message, false)
#define CHECK_ERROR_PREFIX(call, code, message) check_error(__LINE__, (call), &err, code, message, true)

#define CHECK_OK(call)                                                                                             \
        do {                                                                                                       \
                int _r = (call);                                                                                   \
                if (_r < 0) {                                                                                      \
                        _cleanup_free_ char *_m = err.code != QERR_NONE ? qerror_message(&err) : NULL;             \
                        fprintf(stderr, "%s:%d: %s failed: %d %s\n", __FILE__, __LINE__, #call, _r, strempty(_m)); \
                        failures++;                                                                                \
                        qerror_done(&err);                                                                         \
                }                                                                                                  \
        } while (0)

/* ---- event capture: each event as "subject|event|k=v|k=v" -------------------------------- */

static char **events;

static void on_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv, void *userdata) {
        _cleanup_strbuf_ StrBuf b = {};

        strbuf_printf(&b, "%s|%s", subject ? subject->name : "", event);
        for (size_t i = 0; i + 1 < n_kv; i += 2)
                strbuf_printf(&b, "|%s=%s", kv[i], kv[i + 1] ?: "None");
        strv_consume(&events, strbuf_steal(&b));
}

static void events_clear(void) {
        events = strv_free(events);
}

static void check_events(int line, const char *const *want) {
        size_t n = strv_length(events), m = 0;
        while (want[m])
                m++;
        bool ok = n == m;
        for (size_t i = 0; ok && i < n; i++)
                ok = streq(events[i], want[i]);
        if (!ok) {
                fprintf(stderr, "%s:%d: events differ\n  got:\n", __FILE__, line);
                for (size_t i = 0; i < n; i++)
                        fprintf(stderr, "    %s\n", events[i]);
                fprintf(stderr, "  want:\n");
                for (size_t i = 0; i < m; i++)
                        fprintf(stderr, "    %s\n", want[i]);
                failures++;
        }
        events_clear();
}
#define CHECK_EVENTS(...) check_events(__LINE__, (const char *const[]){ __VA_ARGS__, NULL })

static bool has_event(const char *e) {
        return strv_contains(events, e);
}

/* ---- helpers ----------------------------------------------------------------------------- */

static Domain *create(App *app, QubesClass klass, const char *name, const char *label, const char *tpl,
                      const char *creator, QError *err) {
        CreateParams p = { .klass = klass, .name = name, .label = label, .template_name = tpl, .creator = creator };
        Domain *d = NULL;
        if (app_create_domain(app, &p, &d, err) < 0)
                return NULL;
        return d;
}

static const char *vol_attr(Domain *d, const char *vol, const char *key) {
        for (size_t i = 0; i < d->n_volumes; i++) {
                if (!streq(d->volumes[i].name, vol))
                        continue;
                for (char **a = d->volumes[i].attrs; a && a[0] && a[1]; a += 2)
                        if (streq(a[0], key))
                                return a[1];
        }
        return NULL;
}

static char *vol_keys(Domain *d, const char *vol) {
        _cleanup_strbuf_ StrBuf b = {};
        for (size_t i = 0; i < d->n_volumes; i++) {
                if (!streq(d->volumes[i].name, vol))
                        continue;
                for (char **a = d->volumes[i].attrs; a && a[0] && a[1]; a += 2)
                        strbuf_printf(&b, "%s%s", b.len ? " " : "", a[0]);
        }
        return strbuf_steal(&b);
}

static char *get_prop(Domain *d, const char *name, bool *is_default) {
        const PropDef *p = domain_prop_find(d->klass, name);
        PropValue v = {};
        if (!p || domain_property_get(d, p, &v, NULL) < 0)
                return strdup("<error>");
        if (is_default)
                *is_default = v.is_default;
        return v.value ? v.value : strdup("");
}

static char *tags_joined(Domain *d) {
        _cleanup_strbuf_ StrBuf b = {};
        const char **t = domain_tags_sorted(d);
        for (size_t i = 0; t && t[i]; i++)
                strbuf_printf(&b, "%s%s", i ? " " : "", t[i]);
        free(t);
        return strbuf_steal(&b);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_defaults(App *app) {
        Domain *dom0 = app_dom0(app);

        CHECK(app->n_labels == 8);
        CHECK_STREQ(app->labels[0]->name, "red");
        CHECK_STREQ(app->labels[4]->color, "0x555555");
        CHECK_STREQ(app->labels[7]->name, "black");
        CHECK(app->n_pools == 2);
        CHECK_STREQ(app->pools[0]->name, "varlibqubes");
        CHECK_STREQ(app->pools[0]->driver, "file");
        CHECK_STREQ(app->pools[0]->config[0], "dir_path");
        CHECK_STREQ(app->pools[0]->config[1], app->state_dir);
        CHECK_STREQ(app->pools[0]->config[2], "revisions_to_keep");
        CHECK_STREQ(app->pools[0]->config[4], "ephemeral_volatile");
        CHECK_STREQ(app->pools[0]->config[5], "False");
        CHECK_STREQ(app->pools[1]->name, "linux-kernel");
        CHECK(app->xml_path && endswith(app->xml_path, "/qubes.xml"));
        CHECK(app->host_cpus >= 1 && app->host_memory_mib > 0);

        const PropDef *p = global_prop_find("default_pool_kernel");
        CHECK(p && app->props[global_prop_index(p)].set);

        CHECK(dom0 && streq(dom0->name, "dom0") && dom0->qid == 0 && dom0->klass == QUBES_CLASS_ADMINVM);
        CHECK_STREQ(dom0->uuid, "00000000-0000-0000-0000-000000000000");
        CHECK_STREQ(dom0->power_state, "Running");
        CHECK(domain_is_running(dom0));
        _cleanup_free_ char *label = get_prop(dom0, "label", NULL);
        CHECK_STREQ(label, "black");
        _cleanup_free_ char *name = get_prop(dom0, "name", NULL);
        CHECK_STREQ(name, "dom0");
        CHECK(app_get_domain_by_qid(app, 0) == dom0);
        CHECK(app_get_domain_by_uuid(app, "00000000-0000-0000-0000-000000000000") == dom0);
}

static void test_names(void) {
        QError err = {};

        CHECK_ERROR(validate_vm_name("abcdefghijabcdefghijabcdefghijab", &err), QERR_VALUE,
                    "VM name must be shorter than 32 characters");
        CHECK(validate_vm_name("abcdefghijabcdefghijabcdefghija", NULL) == 0);
        CHECK_ERROR(validate_vm_name(".test", &err), QERR_VALUE,
                    "VM name cannot start with hyphen, underscore, dot or numbers");
        CHECK_ERROR(validate_vm_name("1abc", &err), QERR_VALUE,
                    "VM name cannot start with hyphen, underscore, dot or numbers");
        CHECK_ERROR(validate_vm_name("a b", &err), QERR_VALUE, "VM name contains illegal characters");
        CHECK_ERROR(validate_vm_name("", &err), QERR_VALUE, "VM name contains illegal characters");
        CHECK_ERROR(validate_vm_name("caf\xc3\xa9", &err), QERR_VALUE, "VM name contains illegal characters");
        CHECK_ERROR(validate_vm_name("Domain-0", &err), QERR_VALUE, "VM name cannot be 'Domain-0'");
        CHECK_ERROR(validate_vm_name("none", &err), QERR_VALUE, "VM name cannot be 'none' nor 'default'");
        CHECK_ERROR(validate_vm_name("default", &err), QERR_VALUE, "VM name cannot be 'none' nor 'default'");
        CHECK_ERROR(validate_vm_name("sys-net-dm", &err), QERR_VALUE, "VM name cannot end with -dm");
        CHECK(validate_vm_name("sys-net.v2_x", NULL) == 0);
}

static void test_create(App *app) {
        QError err = {};
        Domain *tpl, *work, *dvm, *disp, *sa;

        events_clear();
        tpl = create(app, QUBES_CLASS_TEMPLATEVM, "fedora-42", "black", NULL, NULL, &err);
        CHECK(tpl);
        if (!tpl)
                return;
        CHECK(tpl->qid == 1);
        CHECK(strlen(tpl->uuid) == 36 && tpl->uuid[14] == '4');
        CHECK(app_get_domain_by_uuid(app, tpl->uuid) == tpl);
        CHECK_STREQ(tpl->power_state, "Halted");
        CHECK(!domain_is_running(tpl));
        /* tags as they are added, then the qube itself */
        CHECK_EVENTS("fedora-42|domain-tag-add:guivm-dom0|tag=guivm-dom0",
                     "fedora-42|domain-tag-add:audiovm-dom0|tag=audiovm-dom0", "|domain-add|vm=fedora-42");
        _cleanup_free_ char *keys = vol_keys(tpl, "root");
        CHECK_STREQ(keys, "pool vid revisions_to_keep rw save_on_stop snap_on_start size");
        CHECK_STREQ(vol_attr(tpl, "root", "vid"), "vm-templates/fedora-42/root");
        CHECK_STREQ(vol_attr(tpl, "root", "revisions_to_keep"), "1");
        CHECK_STREQ(vol_attr(tpl, "private", "size"), "2147483648");
        CHECK_STREQ(vol_attr(tpl, "volatile", "revisions_to_keep"), "0");
        CHECK_STREQ(vol_attr(tpl, "kernel", "pool"), "linux-kernel");
        CHECK_STREQ(vol_attr(tpl, "kernel", "rw"), "False");
        CHECK(tpl->n_volumes == 4 && streq(tpl->volumes[3].name, "kernel"));
        _cleanup_free_ char *qid = get_prop(tpl, "qid", NULL), *uuid = get_prop(tpl, "uuid", NULL);
        CHECK_STREQ(qid, "1");
        CHECK_STREQ(uuid, tpl->uuid);

        /* no template given and no default_template */
        CHECK_ERROR(create(app, QUBES_CLASS_APPVM, "work", "blue", NULL, NULL, &err) ? 0 : -EINVAL, QERR_VALUE,
                    "Template for the qube not specified, nor default template set.");

        events_clear();
        CHECK_OK(app_property_set(app, "default_template", "fedora-42", strlen("fedora-42"), &err));
        CHECK_EVENTS("|property-pre-set:default_template|name=default_template|newvalue=fedora-42",
                     "|property-set:default_template|name=default_template|newvalue=fedora-42");

        work = create(app, QUBES_CLASS_APPVM, "work", "blue", NULL, "dom0", &err);
        CHECK(work);
        if (!work)
                return;
        CHECK(work->qid == 2);
        _cleanup_free_ char *t = get_prop(work, "template", NULL), *tags = tags_joined(work);
        CHECK_STREQ(t, "fedora-42");
        CHECK_STREQ(tags, "audiovm-dom0 created-by-dom0 guivm-dom0");
        CHECK(has_event("work|domain-tag-add:created-by-dom0|tag=created-by-dom0"));
        CHECK_STREQ(events[strv_length(events) - 1], "|domain-add|vm=work");
        events_clear();
        CHECK_STREQ(vol_attr(work, "root", "source"), "vm-templates/fedora-42/root");
        CHECK_STREQ(vol_attr(work, "root", "snap_on_start"), "True");
        CHECK_STREQ(vol_attr(work, "root", "revisions_to_keep"), "0");
        CHECK_STREQ(vol_attr(work, "root", "size"), "10737418240");
        _cleanup_free_ char *rkeys = vol_keys(work, "root");
        CHECK_STREQ(rkeys, "pool vid revisions_to_keep rw save_on_stop snap_on_start size source");
        CHECK_STREQ(vol_attr(work, "private", "vid"), "appvms/work/private");
        CHECK_STREQ(vol_attr(work, "private", "revisions_to_keep"), "1");
        CHECK(!vol_attr(work, "kernel", "vid")); /* no default_kernel in this system */

        /* errors, in upstream's order */
        CHECK_ERROR(create(app, QUBES_CLASS_APPVM, "work", "nolabel", "no-such", NULL, &err) ? 0 : -EINVAL,
                    QERR_VM_ALREADY_EXISTS, "Qube already exists: work");
        CHECK_ERROR(create(app, QUBES_CLASS_APPVM, "work2", "nolabel", "no-such", NULL, &err) ? 0 : -EINVAL,
                    QERR_VM_NOT_FOUND, "No such domain: 'no-such'");
        CHECK_ERROR(create(app, QUBES_CLASS_APPVM, "work2", "nolabel", NULL, NULL, &err) ? 0 : -EINVAL,
                    QERR_LABEL_NOT_FOUND, "Label does not exist: nolabel");
        CHECK_ERROR(create(app, QUBES_CLASS_APPVM, ".work2", "red", NULL, NULL, &err) ? 0 : -EINVAL, QERR_VALUE,
                    "VM name cannot start with hyphen, underscore, dot or numbers");
        CHECK_ERROR(create(app, QUBES_CLASS_APPVM, "work2", "red", "work", NULL, &err) ? 0 : -EINVAL, QERR_VALUE,
                    "wrong VM class: domains['work'] is of type AppVM and not TemplateVM");
        {
                CreateParams p = { .klass = QUBES_CLASS_APPVM, .name = "work2", .label = "red", .pool = "nopool" };
                CHECK_ERROR(app_create_domain(app, &p, NULL, &err), QERR_QUBES_EXCEPTION,
                            "Unknown storage pool nopool");
        }
        CHECK(!app_get_domain(app, "work2"));
        CHECK(strv_length(events) == 0);

        /* a pool for everything movable; the snapshot root stays with its origin */
        {
                char *vp[] = { (char *) "volatile", (char *) "linux-kernel", NULL };
                CreateParams p = { .klass = QUBES_CLASS_APPVM, .name = "pooled", .label = "red", .volume_pools = vp };
                Domain *d = NULL;
                CHECK_OK(app_create_domain(app, &p, &d, &err));
                if (d) {
                        CHECK_STREQ(vol_attr(d, "volatile", "pool"), "linux-kernel");
                        CHECK_STREQ(vol_attr(d, "private", "pool"), "varlibqubes");
                        CHECK_STREQ(vol_attr(d, "root", "pool"), "varlibqubes");
                        CHECK_OK(app_remove_domain(app, d, &err));
                }
                events_clear();
        }

        dvm = create(app, QUBES_CLASS_APPVM, "default-dvm", "red", "fedora-42", NULL, &err);
        CHECK(dvm && dvm->qid == 3);
        if (!dvm)
                return;
        /* not a disposable template yet */
        CHECK_ERROR(create(app, QUBES_CLASS_DISPVM, NULL, "red", "default-dvm", NULL, &err) ? 0 : -EINVAL,
                    QERR_QUBES_EXCEPTION,
                    "Refusing to create disposable out of app qube which has template_for_dispvms=False");
        CHECK_OK(domain_property_set(dvm, "template_for_dispvms", "True", 4, &err));
        CHECK_OK(domain_feature_set(dvm, "fromdvm", "1", &err));
        /* upstream's checks first: what preloading waits for must be announced */
        CHECK_ERROR(domain_feature_set(dvm, "preload-dispvm-max", "2", &err), QERR_VALUE,
                    "Qube does not support qrexec");
        CHECK_OK(domain_feature_set(dvm, "qrexec", "1", &err));
        CHECK_ERROR(domain_feature_set(dvm, "preload-dispvm-max", "2", &err), QERR_VALUE,
                    "Qube does not support the RPC(s) 'qubes.WaitForRunningSystem, qubes.WaitForSession'");
        CHECK_OK(domain_feature_set(dvm, "supported-rpc.qubes.WaitForRunningSystem", "1", &err));
        CHECK_OK(domain_feature_set(dvm, "supported-rpc.qubes.WaitForSession", "1", &err));
        CHECK_ERROR(domain_feature_set(dvm, "preload-dispvm-max", "2x", &err), QERR_VALUE,
                    "Invalid preload-dispvm-max value: not a digit");
        CHECK_ERROR(domain_feature_set(dvm, "preload-dispvm", "a b c", &err), QERR_VALUE,
                    "Invalid preload-dispvm value: can't increment: qube count (3) is either bigger than old "
                    "count (0) or preload-dispvm-max (0)");
        CHECK_OK(domain_feature_set(dvm, "preload-dispvm-max", "2", &err));
        CHECK_ERROR(domain_feature_set(dvm, "preload-dispvm", "a a", &err), QERR_VALUE,
                    "Invalid preload-dispvm value: duplicates: a");
        CHECK_ERROR(domain_feature_set(dvm, "preload-dispvm", "work", &err), QERR_VALUE,
                    "Invalid preload-dispvm value: not disposables of this template: work");
        events_clear();

        disp = create(app, QUBES_CLASS_DISPVM, NULL, "red", "default-dvm", NULL, &err);
        CHECK(disp);
        if (!disp)
                return;
        CHECK(disp->qid == 4);
        CHECK(startswith(disp->name, "disp"));
        _cleanup_free_ char *dispid = get_prop(disp, "dispid", NULL), *want = NULL;
        CHECK(asprintf(&want, "disp%s", dispid) > 0);
        CHECK_STREQ(disp->name, want);
        _cleanup_free_ char *dt = get_prop(disp, "template", NULL);
        CHECK_STREQ(dt, "default-dvm");
        CHECK_STREQ(vol_attr(disp, "root", "source"), "vm-templates/fedora-42/root");
        CHECK_STREQ(vol_attr(disp, "private", "source"), "appvms/default-dvm/private");
        CHECK_STREQ(vol_attr(disp, "private", "snap_on_start"), "True");
        CHECK_STREQ(vol_attr(disp, "private", "save_on_stop"), "False");
        CHECK_STREQ(vol_attr(disp, "private", "revisions_to_keep"), "0");
        CHECK_STREQ(vol_attr(disp, "volatile", "size"), "12884901888");
        _cleanup_free_ char *v2 = vol_attr(disp, "root", "vid") ? strdup(vol_attr(disp, "root", "vid")) : NULL;
        CHECK(v2 && endswith(v2, "/root") && startswith(v2, "appvms/disp"));
        /* copied from its template: features but the preload ones */
        CHECK_STREQ(domain_feature_get(disp, "fromdvm"), "1");
        CHECK(!domain_feature_get(disp, "preload-dispvm-max"));
        CHECK(domain_has_tag(disp, "guivm-dom0"));
        events_clear();

        /* with check_updates_vm False new qubes say so */
        CHECK_OK(app_property_set(app, "check_updates_vm", "false", 5, &err));
        sa = create(app, QUBES_CLASS_STANDALONEVM, "Zeta", "green", NULL, NULL, &err);
        CHECK(sa);
        if (sa) {
                CHECK_STREQ(domain_feature_get(sa, "check-updates"), "");
                CHECK_STREQ(vol_attr(sa, "root", "vid"), "appvms/Zeta/root");
                CHECK_STREQ(vol_attr(sa, "root", "save_on_stop"), "True");
                CHECK(!vol_attr(sa, "root", "source"));
        }
        CHECK_OK(app_property_reset(app, "check_updates_vm", &err));
        Domain *anon = create(app, QUBES_CLASS_APPVM, "anon", "purple", NULL, NULL, &err);
        CHECK(anon && !domain_feature_get(anon, "check-updates"));
        CHECK_ERROR(create(app, QUBES_CLASS_STANDALONEVM, "x", "red", "fedora-42", NULL, &err) ? 0 : -EINVAL,
                    QERR_PROTOCOL, "StandaloneVM cannot be based on template");
        events_clear();
}

static void test_lookup(App *app) {
        QError err = {};
        Domain *d = NULL, *work = app_get_domain(app, "work");
        _cleanup_free_ char *ref = NULL;
        size_t n = 0;

        CHECK_OK(app_resolve_domain(app, "work", &d, &err));
        CHECK(d == work);
        CHECK(asprintf(&ref, "uuid:%s", work->uuid) > 0);
        d = NULL;
        CHECK_OK(app_resolve_domain(app, ref, &d, &err));
        CHECK(d == work);
        CHECK_ERROR(app_resolve_domain(app, "uuid:1234", &d, &err), QERR_VM_INVALID_UUID,
                    "VM UUID is not valid: '1234'");
        CHECK_ERROR(app_resolve_domain(app, "uuid:0000000-0000-0000-0000-0000000000000", &d, &err),
                    QERR_VM_INVALID_UUID, "VM UUID is not valid: '0000000-0000-0000-0000-0000000000000'");
        CHECK_ERROR(app_resolve_domain(app, "uuid:ABCDEF00-0000-0000-0000-000000000000", &d, &err),
                    QERR_VM_INVALID_UUID, "VM UUID is not valid: 'ABCDEF00-0000-0000-0000-000000000000'");
        CHECK_ERROR(app_resolve_domain(app, "uuid:abcdef00-0000-0000-0000-000000000000", &d, &err), QERR_VM_NOT_FOUND,
                    "No such domain: 'uuid:abcdef00-0000-0000-0000-000000000000'");
        CHECK_ERROR(app_resolve_domain(app, ".test", &d, &err), QERR_VALUE,
                    "VM name cannot start with hyphen, underscore, dot or numbers");
        CHECK_ERROR(app_resolve_domain(app, "no-such-vm", &d, &err), QERR_VM_NOT_FOUND, "No such domain: 'no-such-vm'");

        Domain **l = app_domains_sorted(app, &n);
        CHECK(l && n == hashmap_size(app->domains));
        if (l && n >= 3) {
                CHECK_STREQ(l[0]->name, "dom0");
                CHECK_STREQ(l[1]->name, "Zeta"); /* byte order: upper case first */
                CHECK_STREQ(l[2]->name, "anon");
                for (size_t i = 2; i < n; i++)
                        CHECK(strcmp(l[i - 1]->name, l[i]->name) < 0);
                CHECK(l[n] == NULL);
        }
        free(l);
}

static void test_properties(App *app) {
        QError err = {};
        Domain *work = app_get_domain(app, "work");
        bool is_default = false;

        events_clear();
        _cleanup_free_ char *v0 = get_prop(work, "vcpus", &is_default);
        CHECK_STREQ(v0, "2");
        CHECK(is_default);

        /* vector 7.2.15 */
        CHECK_OK(domain_property_set(work, "vcpus", "4", 1, &err));
        _cleanup_free_ char *v1 = get_prop(work, "vcpus", &is_default);
        CHECK_STREQ(v1, "4");
        CHECK(!is_default);
        CHECK_OK(domain_property_reset(work, "vcpus", &err));
        CHECK_EVENTS("work|property-pre-set:vcpus|name=vcpus|newvalue=4|oldvalue=2",
                     "work|property-set:vcpus|name=vcpus|newvalue=4|oldvalue=2",
                     "work|property-pre-reset:vcpus|name=vcpus|oldvalue=4",
                     "work|property-pre-del:vcpus|name=vcpus|oldvalue=4",
                     "work|property-reset:vcpus|name=vcpus|oldvalue=4",
                     "work|property-del:vcpus|name=vcpus|oldvalue=4");
        _cleanup_free_ char *v2 = get_prop(work, "vcpus", &is_default);
        CHECK_STREQ(v2, "2");
        CHECK(is_default);

        /* resetting what is not set changes nothing and says nothing */
        CHECK_OK(domain_property_reset(work, "vcpus", &err));
        CHECK(strv_length(events) == 0);

        /* a property without any value: oldvalue is left out; None travels as NULL */
        CHECK_OK(domain_property_set(work, "backup_timestamp", "17", 2, &err));
        CHECK_EVENTS("work|property-pre-set:backup_timestamp|name=backup_timestamp|newvalue=17|oldvalue=None",
                     "work|property-set:backup_timestamp|name=backup_timestamp|newvalue=17|oldvalue=None");
        CHECK_OK(domain_property_reset(work, "backup_timestamp", &err));
        events_clear();

        CHECK_ERROR(domain_property_set(work, "no-such", "1", 1, &err), QERR_NO_SUCH_PROPERTY,
                    "Invalid property 'no-such' of work");
        CHECK_ERROR(domain_property_reset(work, "no-such", &err), QERR_NO_SUCH_PROPERTY,
                    "Invalid property 'no-such' of work");
        CHECK_ERROR(domain_property_set(work, "vcpus", "abc", 3, &err), QERR_VALUE,
                    "Failed to parse property value as int");
        CHECK_ERROR(domain_property_set(work, "autostart", "maybe", 5, &err), QERR_VALUE,
                    "Invalid literal for boolean property: 'maybe'");
        CHECK_ERROR(domain_property_set(work, "klass", "AppVM", 5, &err), QERR_PROPERTY_VALUE,
                    "property 'klass' on AppVM instance cannot be set");
        CHECK_ERROR(domain_property_set(work, "qid", "7", 1, &err), QERR_PROPERTY_VALUE,
                    "property 'qid' is write-once and already set");
        CHECK_ERROR(domain_property_reset(work, "name", &err), QERR_PROPERTY_VALUE,
                    "property 'name' is write-once and already set");
        CHECK_ERROR(domain_property_reset(work, "template", &err), QERR_VALUE, "Cannot unset template");
        CHECK_ERROR(domain_property_set(work, "label", "nolabel", 7, &err), QERR_LABEL_NOT_FOUND,
                    "Label does not exist: nolabel");
        CHECK_ERROR(domain_property_set(work, "netvm", "no-such-vm", 10, &err), QERR_PROPERTY_VALUE,
                    "Can't set netvm to non-existing qube no-such-vm");
        CHECK(strv_length(events) == 0);

        /* convenience readers */
        CHECK(domain_template(work) == app_get_domain(app, "fedora-42"));
        CHECK(domain_netvm(work) == NULL);
        CHECK(domain_property_int(work, "vcpus", -1) == 2);
        CHECK(domain_property_int(work, "backup_timestamp", -5) == -5);
        CHECK(!domain_property_bool(work, "autostart"));
        CHECK(domain_template(app_dom0(app)) == NULL);

        /* globals */
        const PropDef *p = global_prop_find("default_qrexec_timeout");
        PropValue pv = {};
        CHECK_OK(app_property_get(app, p, &pv, &err));
        CHECK(pv.is_default && streq_ptr(pv.value, "60"));
        prop_value_done(&pv);
        CHECK_OK(app_property_set(app, "default_qrexec_timeout", "90", 2, &err));
        CHECK_OK(app_property_reset(app, "default_qrexec_timeout", &err));
        CHECK_EVENTS("|property-pre-set:default_qrexec_timeout|name=default_qrexec_timeout|newvalue=90|oldvalue=60",
                     "|property-set:default_qrexec_timeout|name=default_qrexec_timeout|newvalue=90|oldvalue=60",
                     "|property-pre-reset:default_qrexec_timeout|name=default_qrexec_timeout|oldvalue=90",
                     "|property-pre-del:default_qrexec_timeout|name=default_qrexec_timeout|oldvalue=90",
                     "|property-reset:default_qrexec_timeout|name=default_qrexec_timeout|oldvalue=90",
                     "|property-del:default_qrexec_timeout|name=default_qrexec_timeout|oldvalue=90");
        CHECK_ERROR_PREFIX(app_property_set(app, "nope", "1", 1, &err), QERR_NO_SUCH_PROPERTY,
                           "Invalid property 'nope' of <qubes.app.Qubes object>");
        CHECK_ERROR(app_property_set(app, "maxmem", "1", 1, &err), QERR_PROPERTY_VALUE,
                    "property 'maxmem' on Qubes instance cannot be set");
        p = global_prop_find("default_template");
        CHECK_OK(app_property_get_default(app, p, &pv, &err));
        CHECK(pv.is_default && !pv.has_value);
        prop_value_done(&pv);
        events_clear();
}

static void test_features(App *app) {
        QError err = {};
        Domain *work = app_get_domain(app, "work"), *tpl = app_get_domain(app, "fedora-42");
        const char *v = NULL;

        events_clear();
        CHECK_OK(domain_feature_set(work, "evfeat", "v1", &err));
        CHECK_OK(domain_feature_set(work, "evfeat", "v2", &err));
        CHECK_OK(domain_feature_remove(work, "evfeat", &err));
        CHECK_EVENTS("work|domain-feature-pre-set:evfeat|feature=evfeat|value=v1",
                     "work|domain-feature-set:evfeat|feature=evfeat|value=v1",
                     "work|domain-feature-pre-set:evfeat|feature=evfeat|value=v2|oldvalue=v1",
                     "work|domain-feature-set:evfeat|feature=evfeat|value=v2|oldvalue=v1",
                     "work|domain-feature-pre-delete:evfeat|feature=evfeat",
                     "work|domain-feature-delete:evfeat|feature=evfeat");
        CHECK(!domain_feature_get(work, "evfeat"));

        CHECK_ERROR(domain_feature_set(work, "a/b", "x", &err), QERR_PROTOCOL,
                    "feature name contains illegal characters");
        CHECK_ERROR(domain_feature_set(work, "", "x", &err), QERR_PROTOCOL, "feature name contains illegal characters");
        {
                /* bounds over D-Bus, where no request limit applies */
                char *big = malloc(65538);
                CHECK(big);
                memset(big, 'v', 65537);
                big[65537] = 0;
                CHECK_ERROR(domain_feature_set(work, "big", big, &err), QERR_PROTOCOL,
                            "big value longer than 65536 characters");
                big[65536] = 0;
                CHECK(domain_feature_set(work, "big", big, &err) >= 0);
                CHECK(domain_feature_remove(work, "big", &err) >= 0);
                big[256] = 0;
                CHECK_ERROR(domain_feature_set(work, big, "x", &err), QERR_PROTOCOL,
                            "feature name longer than 255 characters");
                CHECK_ERROR(domain_tag_add(work, big, &err), QERR_INVALID_TAG, "tag longer than 255 characters");
                free(big);
        }
        CHECK_ERROR(domain_feature_set(work, "f2", "a\nb", &err), QERR_PROTOCOL,
                    "f2 value contains illegal characters");
        CHECK_ERROR(domain_feature_set(work, "f2", "\x7f", &err), QERR_PROTOCOL,
                    "f2 value contains illegal characters");
        CHECK_ERROR(domain_feature_set(work, "service.", "1", &err), QERR_VALUE, "Service name cannot be empty");
        CHECK_ERROR(domain_feature_set(work, "service..", "1", &err), QERR_VALUE,
                    "Service name cannot be \".\" or \"..\"");
        CHECK_ERROR(domain_feature_set(work, "service.0123456789012345678901234567890123456789012345678", "1", &err),
                    QERR_VALUE, "Service name must not exceed 48 bytes");
        CHECK_OK(domain_feature_set(work, "service.app-dispvm.0123456789012345678901234567890123456789", "1", &err));
        CHECK_OK(domain_feature_set(work, "empty", "", &err));
        CHECK_STREQ(domain_feature_get(work, "empty"), "");
        CHECK_ERROR(domain_feature_remove(work, "nope", &err), QERR_FEATURE_NOT_FOUND,
                    "Feature not set for domain work: nope");
        events_clear();

        /* the walks of feature.CheckWith* */
        CHECK_OK(domain_feature_store(tpl, "os", "Linux"));
        CHECK_OK(domain_feature_check(work, "os", FEATURE_CHECK_TEMPLATE, &v, &err));
        CHECK_STREQ(v, "Linux");
        CHECK_ERROR(domain_feature_check(work, "os", FEATURE_CHECK_ADMINVM, &v, &err), QERR_FEATURE_NOT_FOUND,
                    "Feature not set for domain work: os");
        CHECK_OK(domain_feature_store(app_dom0(app), "gui-default", "1"));
        CHECK_OK(domain_feature_check(work, "gui-default", FEATURE_CHECK_TEMPLATE_AND_ADMINVM, &v, &err));
        CHECK_STREQ(v, "1");
        CHECK_OK(domain_feature_check(work, "gui-default", FEATURE_CHECK_ADMINVM, &v, &err));
        CHECK_ERROR(domain_feature_check(work, "gui-default", FEATURE_CHECK_NETVM, &v, &err), QERR_FEATURE_NOT_FOUND,
                    "Feature not set for domain work: gui-default");
        CHECK_OK(domain_feature_store(work, "os", "Other"));
        CHECK_OK(domain_feature_check(work, "os", FEATURE_CHECK_TEMPLATE, &v, &err));
        CHECK_STREQ(v, "Other");
        CHECK(strv_length(events) == 0);
}

static void test_tags(App *app) {
        QError err = {};
        Domain *work = app_get_domain(app, "work");

        events_clear();
        CHECK_OK(domain_tag_add(work, "evtag", &err));
        CHECK_OK(domain_tag_add(work, "evtag", &err));
        CHECK_OK(domain_tag_add(work, "a-tag", &err));
        CHECK_OK(domain_tag_remove(work, "a-tag", &err));
        CHECK_EVENTS("work|domain-tag-add:evtag|tag=evtag", "work|domain-tag-add:a-tag|tag=a-tag",
                     "work|domain-tag-delete:a-tag|tag=a-tag");
        CHECK(domain_has_tag(work, "evtag") && !domain_has_tag(work, "a-tag"));
        CHECK_ERROR(domain_tag_add(work, "a.b", &err), QERR_INVALID_TAG, "disallowed characters");
        CHECK_ERROR(domain_tag_add(work, "", &err), QERR_INVALID_TAG, "tag cannot be empty");
        CHECK_ERROR(domain_tag_remove(work, "t2", &err), QERR_TAG_NOT_FOUND, "Tag not set for domain work: t2");
        _cleanup_free_ char *t = tags_joined(work);
        CHECK_STREQ(t, "audiovm-dom0 created-by-dom0 evtag guivm-dom0");
        CHECK(strv_length(events) == 0);
}

static void test_labels(App *app) {
        QError err = {};
        Label *l = NULL;

        CHECK(app_find_label(app, "blue") == app->labels[5]);
        CHECK(app_find_label(app, "1") == app->labels[0]);
        CHECK(app_find_label(app, "label-6") == app->labels[5]);
        CHECK(!app_find_label(app, "label-x"));
        CHECK(!app_find_label(app, "99"));
        CHECK(!app_find_label(app, "cyan"));

        CHECK_OK(app_create_label(app, "cyan", "0x00ffff", &l, &err));
        CHECK(l && l->index == 9 && streq(l->name, "cyan"));
        CHECK_OK(app_create_label(app, "teal", " 0x008080\n", &l, &err));
        CHECK(l && l->index == 10 && streq(l->color, "0x008080"));
        CHECK(app->n_labels == 10 && app->labels[9]->index == 10);
        CHECK_ERROR(app_create_label(app, "red", "0x123456", NULL, &err), QERR_LABEL_IN_USE,
                    "Label is still in use: 'red'");
        CHECK_ERROR(app_create_label(app, "123", "0x123456", NULL, &err), QERR_INVALID_LABEL,
                    "Label must not be a digit");
        {
                /* a label is a D-Bus object listed to everyone: its name is bounded */
                char long_name[66];
                memset(long_name, 'l', 65);
                long_name[65] = 0;
                CHECK_ERROR(app_create_label(app, long_name, "0x123456", NULL, &err), QERR_INVALID_LABEL,
                            "Label name must be at most 64 characters");
                long_name[64] = 0;
                Label *ok = NULL;
                CHECK(app_create_label(app, long_name, "0x123456", &ok, &err) >= 0);
                CHECK(app_remove_label(app, long_name, &err) >= 0);
        }
        CHECK_ERROR(app_create_label(app, "a/b", "0x123456", NULL, &err), QERR_INVALID_LABEL,
                    "Label must be in safe set: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
        CHECK_ERROR(app_create_label(app, "", "0x123456", NULL, &err), QERR_INVALID_LABEL, "Label name must be set");
        CHECK_ERROR(app_create_label(app, "cyan2", "ffffff", NULL, &err), QERR_INVALID_LABEL_VALUE,
                    "Label value must have length of 8");
        CHECK_ERROR(app_create_label(app, "cyan2", "", NULL, &err), QERR_INVALID_LABEL_VALUE,
                    "Label value must be set");
        CHECK_ERROR(app_create_label(app, "cyan2", "0x\xc3\xa9\xc3\xa9\xc3\xa9", NULL, &err), QERR_INVALID_LABEL_VALUE,
                    "Label value must be encoded in ASCII");
        CHECK_ERROR(app_create_label(app, "cyan2", "00ffffff", NULL, &err), QERR_INVALID_LABEL_VALUE,
                    "Label value must start with: 0x");
        CHECK_ERROR(app_create_label(app, "cyan2", "0xgggggg", NULL, &err), QERR_INVALID_LABEL_VALUE,
                    "Label value must only contain hexadecimal digits after prefix: 0123456789abcdefABCDEF");
        CHECK(app->n_labels == 10);

        CHECK_ERROR(app_remove_label(app, "red", &err), QERR_PROTOCOL, "Can only remove custom labels");
        CHECK_ERROR(app_remove_label(app, "nolabel", &err), QERR_LABEL_NOT_FOUND, "Label does not exist: nolabel");
        Domain *anon = app_get_domain(app, "anon");
        CHECK_OK(domain_property_set(anon, "label", "cyan", 4, &err));
        CHECK_ERROR(app_remove_label(app, "cyan", &err), QERR_LABEL_IN_USE, "Label is still in use: 'cyan'");
        CHECK_OK(domain_property_set(anon, "label", "purple", 6, &err));
        CHECK_OK(app_remove_label(app, "cyan", &err));
        CHECK(!app_find_label(app, "cyan") && app->n_labels == 9);
        /* a new label still goes above the highest one */
        CHECK_OK(app_create_label(app, "cyan", "0x00ffff", &l, &err));
        CHECK(l && l->index == 11);
        CHECK_OK(app_add_label(app, 9, "nine", "0x090909"));
        CHECK(app->labels[8]->index == 9 && app->labels[9]->index == 10 && app->labels[10]->index == 11);
        CHECK(app_add_label(app, 9, "again", "0x090909") == -EEXIST);
        events_clear();
}

static void test_notes(App *app) {
        QError err = {};
        Domain *work = app_get_domain(app, "work"), *tpl = app_get_domain(app, "fedora-42");
        _cleanup_free_ char *n0 = NULL, *n1 = NULL, *dir = domain_dir(tpl), *want = NULL, *big = NULL;

        CHECK(asprintf(&want, "%s/vm-templates/fedora-42", app->state_dir) > 0);
        CHECK_STREQ(dir, want);

        CHECK_OK(domain_notes_get(work, &n0, &err));
        CHECK_STREQ(n0, "");

        const char in[] =
                "hello\tworld\n\x01\xe2\x80\x8b\xef\xbb\xbf\xc2\x85 caf\xc3\xa9 \xf0\x9f\x98\x80\r\x7f\xef\xbf\xbe";
        CHECK_OK(domain_notes_set(work, in, strlen(in), &err));
        CHECK_OK(domain_notes_get(work, &n1, &err));
        CHECK_STREQ(n1, "hello\tworld\n____ caf\xc3\xa9 \xf0\x9f\x98\x80___");

        CHECK_ERROR(domain_notes_set(work, "ok\xff", 3, &err), QERR_PROTOCOL,
                    "Unable to sanitise qube notes: 'utf-8' codec can't decode byte 0xff in position 2: invalid start "
                    "byte");
        CHECK_ERROR(domain_notes_set(work, "\xed\xa0\x80", 3, &err), QERR_PROTOCOL,
                    "Unable to sanitise qube notes: 'utf-8' codec can't decode byte 0xed in position 0: invalid "
                    "continuation byte");
        CHECK_ERROR(domain_notes_set(work, "ab\xe2\x80", 4, &err), QERR_PROTOCOL,
                    "Unable to sanitise qube notes: 'utf-8' codec can't decode byte 0xe2 in position 2: unexpected end "
                    "of data");
        big = malloc(256001);
        if (big) {
                memset(big, 'a', 256001);
                CHECK_ERROR(domain_notes_set(work, big, 256001, &err), QERR_PROTOCOL,
                            "Maximum note size is 256000 bytes (256001 bytes received)");
                CHECK_OK(domain_notes_set(work, big, 256000, &err));
        }
        /* a failed set leaves the old notes */
        _cleanup_free_ char *n2 = NULL;
        CHECK_OK(domain_notes_get(work, &n2, &err));
        CHECK(n2 && strlen(n2) == 256000);
        CHECK_OK(domain_notes_set(work, "", 0, &err));
}

static void test_remove(App *app) {
        QError err = {};
        Domain *tpl = app_get_domain(app, "fedora-42"), *dvm = app_get_domain(app, "default-dvm");
        Domain *work = app_get_domain(app, "work"), *disp = NULL;
        size_t i = 0;
        void *v;

        while (hashmap_iterate(app->domains, &i, NULL, &v))
                if (((Domain *) v)->klass == QUBES_CLASS_DISPVM)
                        disp = v;
        CHECK(disp);
        events_clear();

        CHECK_ERROR(app_remove_domain(app, app_dom0(app), &err), QERR_VM_IN_USE, "'dom0' cannot be removed");
        /* a global refers to it */
        CHECK_ERROR(app_remove_domain(app, tpl, &err), QERR_VM_IN_USE,
                    "Domain is in use: 'fedora-42';  see 'journalctl -u qubesd -e' in dom0 for details");
        /* a disposable's template */
        CHECK_ERROR(app_remove_domain(app, dvm, &err), QERR_VM_IN_USE,
                    "Domain is in use: 'default-dvm';  see 'journalctl -u qubesd -e' in dom0 for details");
        CHECK(strv_length(events) == 0);

        work->power_state = "Running";
        CHECK_ERROR(app_remove_domain(app, work, &err), QERR_VM_NOT_HALTED, "Domain is not powered off: 'work'");
        work->power_state = "Halted";
        CHECK_OK(domain_property_set(work, "installed_by_rpm", "True", 4, &err));
        CHECK_ERROR(app_remove_domain(app, work, &err), QERR_VM_IN_USE, "VM installed by package manager: work");
        CHECK_OK(domain_property_reset(work, "installed_by_rpm", &err));

        /* a device assignment backed by it */
        Domain *anon = app_get_domain(app, "anon");
        work->devices = new0(DeviceAssignment, 1);
        if (work->devices) {
                work->n_devices = 1;
                work->devices[0] = (DeviceAssignment){ .devclass = strdup("block"),
                                                       .backend = strdup("anon"),
                                                       .port_id = strdup("sda"),
                                                       .mode = strdup("required"),
                                                       .identity = strdup("*") };
                CHECK_ERROR(app_remove_domain(app, anon, &err), QERR_VM_IN_USE,
                            "VM has devices assigned to other VMs: sda");
        }
        events_clear();

        /* the notes stay until storage_remove_domain() has the qubes.xml without the qube durable */
        _cleanup_free_ char *dir = domain_dir(disp), *notes = NULL, *name = strdup(disp->name), *pre = NULL,
                            *del = NULL;
        CHECK(asprintf(&notes, "%s/notes.txt", dir) > 0);
        CHECK_OK(domain_notes_set(disp, "bye", 3, &err));
        CHECK(access(notes, F_OK) == 0);
        CHECK_OK(app_remove_domain(app, disp, &err));
        CHECK(asprintf(&pre, "|domain-pre-delete|vm=%s", name) > 0 && asprintf(&del, "|domain-delete|vm=%s", name) > 0);
        CHECK_EVENTS(pre, del);
        CHECK(!app_get_domain(app, name));
        CHECK(access(notes, F_OK) == 0);

        /* now the disposable template can go, and its qid is taken again */
        int64_t qid = dvm->qid;
        _cleanup_free_ char *uuid = strdup(dvm->uuid);
        CHECK_OK(app_remove_domain(app, dvm, &err));
        CHECK(!app_get_domain(app, "default-dvm") && !app_get_domain_by_uuid(app, uuid) &&
              !app_get_domain_by_qid(app, qid));
        Domain *again = create(app, QUBES_CLASS_APPVM, "again", "red", NULL, NULL, &err);
        CHECK(again && again->qid == qid);

        /* a global that points at a removed qube is reset: clockvm */
        CHECK_OK(app_property_set(app, "clockvm", "again", 5, &err));
        CHECK_ERROR(app_remove_domain(app, again, &err), QERR_VM_IN_USE,
                    "Domain is in use: 'again';  see 'journalctl -u qubesd -e' in dom0 for details");
        CHECK_OK(app_property_reset(app, "clockvm", &err));
        events_clear();
        CHECK_OK(app_remove_domain(app, again, &err));
        CHECK_EVENTS("|domain-pre-delete|vm=again", "|domain-delete|vm=again");
}

/* What the model built must survive qubes.xml (written and read by qubes-xml.c). */
static void test_xml_round_trip(App *app) {
        QError err = {};
        _cleanup_free_ char *xml = app_to_xml(app), *xml2 = NULL;
        _cleanup_app_free_ App *copy = NULL;

        CHECK(xml);
        if (!xml || app_new(app->state_dir, &copy) < 0)
                return;
        CHECK_OK(app_load_from_memory(copy, xml, strlen(xml), "test.xml", &err));
        CHECK(hashmap_size(copy->domains) == hashmap_size(app->domains));
        Domain *w = app_get_domain(copy, "work");
        CHECK(w && w->qid == 2);
        if (w) {
                CHECK_STREQ(w->uuid, app_get_domain(app, "work")->uuid);
                CHECK_STREQ(vol_attr(w, "root", "source"), "vm-templates/fedora-42/root");
                CHECK(domain_has_tag(w, "created-by-dom0"));
                CHECK_STREQ(domain_feature_get(w, "empty"), "");
        }
        CHECK(copy->n_labels == app->n_labels);
        xml2 = app_to_xml(copy);
        CHECK_STREQ(xml2, xml);
}

int main(void) {
        char tmpl[] = "/tmp/test-model-XXXXXX";
        App *app = NULL;
        int r;

        if (!mkdtemp(tmpl)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        r = app_new(tmpl, &app);
        if (r < 0) {
                fprintf(stderr, "app_new: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        CHECK(app_add_listener(app, on_event, NULL) == 0);
        r = app_init_default(app);
        if (r < 0) {
                fprintf(stderr, "app_init_default: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        CHECK(strv_length(events) == 0);

        test_defaults(app);
        test_names();
        test_create(app);
        test_lookup(app);
        test_properties(app);
        test_features(app);
        test_tags(app);
        test_labels(app);
        test_notes(app);
        test_remove(app);
        test_xml_round_trip(app);

        app_free(app);
        events_clear();

        char cmd[sizeof tmpl + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmpl);

        if (failures) {
                fprintf(stderr, "%d check(s) failed\n", failures);
                return EXIT_FAILURE;
        }
        printf("test-model: all checks passed\n");
        return EXIT_SUCCESS;
}
