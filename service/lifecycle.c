/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Qube lifecycle with upstream's semantics: checks, exception classes and messages, and the
 * Qubes events in upstream's order (spec/admin-api.md §2.2, §3.1, §4.2). Everything here runs on
 * the loop; each libvirt call is one worker job whose done() continues the operation. A
 * finished operation calls its OpDoneFn exactly once (possibly before lifecycle_*() returns). */
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>

#include "lifecycle.h"

#include "caller-filter.h"
#include "changes.h"
#include "devices-vmm.h"
#include "firewall-vmm.h"
#include "domain-xml.h"
#include "storage/storage.h"
#include "vmm.h"

#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

#define ST_HALTED "Halted"
#define ST_TRANSIENT "Transient"
#define ST_RUNNING "Running"
#define ST_PAUSED "Paused"
#define ST_SUSPENDED "Suspended"
#define ST_HALTING "Halting"
#define ST_DYING "Dying"
#define ST_CRASHED "Crashed"

static bool state_is(const Domain *d, const char *s) {
        return streq_ptr(d->power_state, s);
}

/* A qube's power state, announced as PowerState (it is no Qubes event). */
static void set_power_state(Manager *m, Domain *d, const char *state) {
        if (streq_ptr(d->power_state, state))
                return;
        d->power_state = state;
        changes_mark_power_state(m, d->name);
}

static void fail(Manager *m, const char *name, OpDoneFn done, void *userdata, QubesErrorCode code, const char *format,
                 const char *field) {
        _cleanup_qerror_ QError e = {};
        qerror_set(&e, code, format, field);
        done(m, name, -EINVAL, &e, userdata);
}

/* upstream's exception messages carry the name as Python's repr: 'name' */
static char *repr(const char *name) {
        char *s = NULL;
        return asprintf(&s, "'%s'", name) < 0 ? NULL : s;
}

static void fail_vm(Manager *m, Domain *d, OpDoneFn done, void *userdata, QubesErrorCode code, const char *format) {
        _cleanup_free_ char *r = repr(d->name);
        fail(m, d->name, done, userdata, code, format, r ?: d->name);
}

/* Stateless runtime properties (xid, start_time) hold a value only while the qube runs. The
 * slot is never saved (qubes-xml.c skips stateless properties). */
static void set_runtime_prop(Domain *d, const char *name, const char *value) {
        const PropDef *p = domain_prop_find(d->klass, name);
        if (!p)
                return;
        if (value)
                (void) domain_property_store(d, p, value);
        else if (domain_slot(d, p)->set) {
                PropSlot *s = domain_slot_make(d, p); /* there: a set slot */
                s->value = mfree(s->value);
                s->set = false;
        }
}

static void emit_runtime_resets(Manager *m, Domain *d) {
        app_emit_event(m->app, d, "property-reset:xid", "name", "xid");
        app_emit_event(m->app, d, "property-reset:stubdom_xid", "name", "stubdom_xid");
        app_emit_event(m->app, d, "property-reset:start_time", "name", "start_time");
}

static void waiters_finish(Manager *m, const char *name, VmWaiter **list, int error, const QError *e) {
        VmWaiter *w = *list;
        *list = NULL;
        while (w) {
                VmWaiter *next = w->next;
                w->fn(m, name, error, e, w->userdata);
                free(w);
                w = next;
        }
}

static int waiter_add(VmWaiter **list, VmWaitFn fn, void *userdata) {
        VmWaiter *w = new0(VmWaiter, 1), **p = list;
        if (!w)
                return -ENOMEM;
        w->fn = fn;
        w->userdata = userdata;
        while (*p)
                p = &(*p)->next;
        *p = w;
        return 0;
}

static void waiter_remove(VmWaiter **list, void *userdata) {
        for (VmWaiter **p = list; *p; p = &(*p)->next)
                if ((*p)->userdata == userdata) {
                        VmWaiter *w = *p;
                        *p = w->next;
                        free(w);
                        return;
                }
}

/* ---- stop ------------------------------------------------------------------------------- */

static void remove_disposable(Manager *m, const char *name) {
        _cleanup_qerror_ QError e = {};
        Domain *d = app_get_domain(m->app, name);

        if (!d || d->klass != QUBES_CLASS_DISPVM || !domain_property_bool(d, "auto_cleanup"))
                return;
        if (storage_remove_domain(m->app, d, &e) < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                log_warning("Cannot remove disposable %s: %s", name, strempty(msg));
        }
}

/* libvirt says the qube is gone: upstream's domain-stopped, then domain-shutdown. */
static void vm_stopped(Manager *m, Domain *d) {
        VmRuntime *rt = vmm_runtime(m, d->name);
        _cleanup_free_ char *name = strdup(d->name);

        if (state_is(d, ST_HALTED) || !rt || !name)
                return;
        set_power_state(m, d, ST_HALTED);
        rt->xid = -1;
        rt->start_time = 0;
        rt->mem_kib = rt->mem_static_max_kib = rt->cputime_ns = 0;
        rt->prev_cpu_ns = rt->prev_sample_usec = 0;
        set_runtime_prop(d, "xid", NULL);
        set_runtime_prop(d, "start_time", NULL);
        app_emit_event0(m->app, d, "domain-stopped");
        emit_runtime_resets(m, d);
        app_emit_event0(m->app, d, "domain-shutdown");
        waiters_finish(m, name, &rt->stop_waiters, 0, NULL);
        remove_disposable(m, name);
}

/* ---- libvirt events ---------------------------------------------------------------------- */

typedef struct CheckReq {
        char *name;
        bool active, known;
} CheckReq;

static void check_work(virConnectPtr conn, void *data) {
        CheckReq *q = data;
        if (!conn)
                return;
        virDomainPtr dom = virDomainLookupByName(conn, q->name);
        if (!dom) {
                q->known = vmm_last_error_code() == VIR_ERR_NO_DOMAIN;
                return;
        }
        int a = virDomainIsActive(dom);
        q->known = a >= 0;
        q->active = a > 0;
        virDomainFree(dom);
}

static void check_done(Manager *m, void *data) {
        CheckReq *q = data;
        Domain *d = app_get_domain(m->app, q->name);
        VmRuntime *rt = d ? vmm_runtime(m, d->name) : NULL;

        if (d && rt && q->known && !q->active && !rt->starting)
                vm_stopped(m, d);
        free(q->name);
        free(q);
}

/* A stop event may be stale (a quick restart): ask libvirt before acting on it. */
static void verify_stopped(Manager *m, const char *name) {
        CheckReq *q = new0(CheckReq, 1);
        if (!q)
                return;
        q->name = strdup(name);
        if (!q->name || vmm_submit(m, check_work, check_done, q) < 0) {
                free(q->name);
                free(q);
        }
}

static void on_domain_event(Manager *m, const char *name, int event, int detail) {
        Domain *d = app_get_domain(m->app, name);
        VmRuntime *rt;

        if (!d || d->klass == QUBES_CLASS_ADMINVM)
                return; /* not a qube (libvirt's own "test" domain), or dom0 */
        rt = vmm_runtime(m, d->name);
        if (!rt || rt->starting)
                return; /* the start in progress reports for itself */

        switch (event) {
        case VIR_DOMAIN_EVENT_STARTED:
                /* started outside qubesd: no Qubes events, as upstream */
                if (state_is(d, ST_HALTED))
                        set_power_state(m, d, ST_RUNNING);
                break;
        case VIR_DOMAIN_EVENT_SUSPENDED:
                if (state_is(d, ST_RUNNING) || state_is(d, ST_TRANSIENT)) {
                        set_power_state(m, d, ST_PAUSED);
                        app_emit_event0(m->app, d, "domain-paused");
                }
                break;
        case VIR_DOMAIN_EVENT_PMSUSPENDED:
                if (!state_is(d, ST_HALTED))
                        set_power_state(m, d, ST_SUSPENDED);
                break;
        case VIR_DOMAIN_EVENT_RESUMED:
                if (state_is(d, ST_PAUSED)) {
                        set_power_state(m, d, ST_RUNNING);
                        app_emit_event0(m->app, d, "domain-unpaused");
                }
                break;
        case VIR_DOMAIN_EVENT_SHUTDOWN:
                if (!state_is(d, ST_HALTED))
                        set_power_state(m, d, ST_HALTING);
                break;
        case VIR_DOMAIN_EVENT_CRASHED:
                if (!state_is(d, ST_HALTED))
                        set_power_state(m, d, ST_CRASHED);
                break;
        case VIR_DOMAIN_EVENT_STOPPED:
                if (!state_is(d, ST_HALTED))
                        verify_stopped(m, d->name);
                return;
        default:
                return;
        }
        if (!state_is(d, ST_HALTED))
                vmm_refresh_info(m, d->name);
}

static const char *state_from_libvirt(int state) {
        switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:
                return ST_RUNNING;
        case VIR_DOMAIN_PAUSED:
                return ST_PAUSED;
        case VIR_DOMAIN_SHUTDOWN:
                return ST_HALTING;
        case VIR_DOMAIN_CRASHED:
                return ST_CRASHED;
        case VIR_DOMAIN_PMSUSPENDED:
                return ST_SUSPENDED;
        default:
                return ST_HALTED;
        }
}

static void on_connected(Manager *m, VmmActive *active, size_t n) {
        size_t i = 0;
        void *v;
        char buf[32];

        /* the host figures now come from the hypervisor (vmm.c): what depends on them, when
         * they changed */
        bool host_changed = vmm_of(m)->host_changed;
        if (host_changed) {
                changes_mark_dirty(m, NULL, global_prop_find("maxmem"), false, false);
                changes_mark_dirty(m, NULL, global_prop_find("no_cpus"), false, false);
        }
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                Domain *d = v;
                VmmActive *a = NULL;
                VmRuntime *rt;

                if (host_changed && (d->klass == QUBES_CLASS_ADMINVM || m->app->memory_balancing))
                        changes_mark_dirty(m, d->name, domain_prop_find(d->klass, "maxmem"), false, false);

                if (d->klass == QUBES_CLASS_REMOTEVM)
                        continue;
                for (size_t k = 0; k < n; k++)
                        if (streq(active[k].name, vmm_libvirt_name(d)))
                                a = &active[k];
                rt = vmm_runtime(m, d->name);
                if (!rt)
                        continue;
                if (d->klass == QUBES_CLASS_ADMINVM) {
                        if (a) {
                                rt->mem_kib = a->mem_kib;
                                rt->mem_static_max_kib = a->max_kib;
                                rt->cputime_ns = a->cputime_ns;
                                rt->vcpus = a->vcpus;
                        }
                        continue;
                }
                if (rt->starting)
                        continue;
                if (!a) {
                        /* it stopped while we were not connected */
                        if (!state_is(d, ST_HALTED))
                                vm_stopped(m, d);
                        continue;
                }
                rt->xid = a->id;
                rt->mem_kib = a->mem_kib;
                rt->mem_static_max_kib = a->max_kib;
                rt->cputime_ns = a->cputime_ns;
                rt->vcpus = a->vcpus;
                snprintf(buf, sizeof buf, "%d", a->id);
                set_runtime_prop(d, "xid", buf);
                set_power_state(m, d, state_from_libvirt(a->state));
        }
        devices_vmm_resync(m);  /* devices: what the running qubes have attached */
        firewall_vmm_resync(m); /* each qube's network filter */
}

/* ---- start ------------------------------------------------------------------------------ */

typedef struct SpawnReq {
        char *name;
        char *xml;
        char *error;
        int id;
        virDomainInfo info;
        bool ok, info_ok;
} SpawnReq;

static void spawn_req_free(SpawnReq *q) {
        free(q->name);
        free(q->xml);
        free(q->error);
        free(q);
}

static void start_failed(Manager *m, Domain *d, QubesErrorCode code, const char *reason) {
        VmRuntime *rt = vmm_runtime(m, d->name);
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *name = strdup(d->name);

        log_warning("vm.%s: Start failed: %s", d->name, reason);
        app_emit_event(m->app, d, "domain-start-failed", "reason", reason);
        qerror_set(&e, code, "%s", reason);
        if (rt) {
                rt->starting = false;
                waiters_finish(m, name ?: "", &rt->start_waiters, -EINVAL, &e);
        }
}

static char *start_failed_message(Manager *m, const char *err) {
        char *s = NULL;
        /* upstream names the libxl log; other drivers log under their own name */
        bool xen = streq(vmm_of(m)->driver, "xen");
        int r = asprintf(&s, "Start failed: %s%s", err,
                         xen ? ", see /var/log/libvirt/libxl/libxl-driver.log for details" : "");
        return r < 0 ? NULL : s;
}

static void spawn_work(virConnectPtr conn, void *data) {
        SpawnReq *q = data;
        if (!conn) {
                q->error = strdup("no connection to the hypervisor");
                return;
        }
        /* Transient, as upstream: the definition lives only while the qube runs. Upstream
         * creates Xen domains paused to fill QubesDB before they run; until QubesDB exists here
         * there is nothing to do in between, so the domain starts running at once. */
        virDomainPtr dom = virDomainCreateXML(conn, q->xml, 0);
        if (!dom) {
                q->error = vmm_last_error();
                return;
        }
        q->ok = true;
        unsigned id = virDomainGetID(dom);
        q->id = id == (unsigned) -1 ? -1 : (int) id;
        q->info_ok = virDomainGetInfo(dom, &q->info) == 0;
        virDomainFree(dom);
}

/* The qube was removed while it started (its netvm first, or libvirt): whoever waits for the
 * start gets an answer (found by test_hostile: Start and Remove sent together). */
static void start_gone(Manager *m, const char *name) {
        VmRuntime *rt = hashmap_get(vmm_of(m)->runtime, name);
        _cleanup_qerror_ QError gone = {};

        if (!rt)
                return;
        qerror_set(&gone, QERR_VM_NOT_FOUND, "No such domain: '%s'", name);
        rt->starting = false;
        waiters_finish(m, name, &rt->start_waiters, -ENOENT, &gone);
}

static void spawn_done(Manager *m, void *data) {
        SpawnReq *q = data;
        Domain *d = app_get_domain(m->app, q->name);
        VmRuntime *rt = d ? vmm_runtime(m, d->name) : NULL;
        char buf[64];

        if (!d || !rt) {
                if (!d)
                        start_gone(m, q->name);
                spawn_req_free(q);
                return;
        }
        if (!q->ok) {
                _cleanup_free_ char *msg = start_failed_message(m, strempty(q->error));
                start_failed(m, d, QERR_QUBES_EXCEPTION, msg ?: "Start failed");
                spawn_req_free(q);
                return;
        }

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rt->xid = q->id;
        rt->start_time = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
        if (q->info_ok) {
                rt->mem_kib = q->info.memory;
                rt->mem_static_max_kib = q->info.maxMem;
                rt->cputime_ns = q->info.cpuTime;
                rt->vcpus = q->info.nrVirtCpu;
        }
        snprintf(buf, sizeof buf, "%d", q->id);
        set_runtime_prop(d, "xid", buf);
        snprintf(buf, sizeof buf, "%.2f", rt->start_time);
        set_runtime_prop(d, "start_time", buf);
        /* running, but not yet announced as started (upstream: qrexec not connected yet) */
        set_power_state(m, d, ST_TRANSIENT);
        emit_runtime_resets(m, d);
        app_emit_event(m->app, d, "domain-spawn", "start_guid", "True");
        /* Hook: QubesDB entries and the qrexec daemon come here once they exist. */
        set_power_state(m, d, ST_RUNNING);
        app_emit_event(m->app, d, "domain-start", "start_guid", "True");
        rt->starting = false;
        waiters_finish(m, q->name, &rt->start_waiters, 0, NULL);
        spawn_req_free(q);
}

static void start_spawn(Manager *m, Domain *d) {
        _cleanup_qerror_ QError e = {};
        SpawnReq *q;

        q = new0(SpawnReq, 1);
        if (!q)
                return start_failed(m, d, QERR_QUBES_EXCEPTION, "Start failed: out of memory");
        q->name = strdup(d->name);
        q->xml = domain_libvirt_xml(m, d, vmm_of(m)->driver, &e);
        if (!q->name || !q->xml) {
                _cleanup_free_ char *msg = qerror_message(&e);
                spawn_req_free(q);
                return start_failed(m, d, QERR_QUBES_EXCEPTION,
                                    msg ?: "Start failed: cannot build the libvirt domain XML");
        }
        if (streq(vmm_of(m)->driver, "qemu")) {
                _cleanup_free_ char *logs = NULL;
                if (asprintf(&logs, "%s/vm-logs", m->app->state_dir) >= 0)
                        (void) mkdir(logs, 0755);
        }
        app_emit_event(m->app, d, "domain-pre-spawn", "start_guid", "True");
        if (vmm_submit(m, spawn_work, spawn_done, q) < 0) {
                spawn_req_free(q);
                start_failed(m, d, QERR_QUBES_EXCEPTION, "Start failed: out of memory");
        }
}

static void on_netvm_started(Manager *m, const char *netvm, int error, const QError *e, void *userdata) {
        _cleanup_free_ char *name = userdata;
        Domain *d = app_get_domain(m->app, name);

        if (!d)
                return start_gone(m, name);
        if (error < 0) {
                _cleanup_free_ char *msg = e ? qerror_message(e) : NULL;
                return start_failed(m, d, e ? e->code : QERR_QUBES_EXCEPTION, msg ?: "Start failed");
        }
        start_spawn(m, d);
}

static void start_waiter_adapter(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        void **pair = userdata;
        OpDoneFn done = (OpDoneFn) pair[0];
        void *ud = pair[1];
        free(pair);
        done(m, name, error, e, ud);
}

bool lifecycle_is_starting(Manager *m, const Domain *d) {
        Vmm *v = vmm_of(m);
        VmRuntime *rt = v ? hashmap_get(v->runtime, d->name) : NULL;
        return rt && rt->starting;
}

/* The most vcpus a qube may start with (QEMU's limit for x86 with x2APIC; Xen's are lower). */
#define VCPUS_MAX 4096

static int start_continue(Manager *m, Domain *d);

int lifecycle_start(Manager *m, Domain *d, OpDoneFn done, void *userdata) {
        VmRuntime *rt;
        void **pair;

        if (d->klass == QUBES_CLASS_ADMINVM) {
                fail_vm(m, d, done, userdata, QERR_VM_NOT_HALTED, "Domain is not powered off: %s");
                return 0;
        }
        if (d->klass == QUBES_CLASS_REMOTEVM) {
                fail_vm(m, d, done, userdata, QERR_VM_ERROR, "Cannot start a RemoteVM: %s");
                return 0;
        }
        rt = vmm_runtime(m, d->name);
        pair = new0(void *, 2);
        if (!rt || !pair) {
                free(pair);
                return -ENOMEM;
        }
        pair[0] = (void *) done;
        pair[1] = userdata;
        if (waiter_add(&rt->start_waiters, start_waiter_adapter, pair) < 0) {
                free(pair);
                return -ENOMEM;
        }
        if (rt->starting)
                return 0; /* upstream's startup lock: wait for the start in progress */
        /* intentionally not "running": also Paused, Crashed, Halting mean nothing to do */
        if (!state_is(d, ST_HALTED)) {
                waiters_finish(m, d->name, &rt->start_waiters, 0, NULL);
                return 0;
        }
        rt->starting = true;

        /* Upstream takes any positive vcpus; a hypervisor cannot run more than a few thousand,
         * and libvirt's test driver allocates them all first (2^31 of them took qubesd's memory
         * to 24 GB: found by test_hostile). */
        int64_t vcpus = domain_property_int(d, "vcpus", 1);
        if (vcpus > VCPUS_MAX) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "Start failed: vcpus is %" PRId64 ", more than a qube can have (%d)", vcpus,
                             VCPUS_MAX) < 0)
                        return -ENOMEM;
                start_failed(m, d, QERR_QUBES_EXCEPTION, msg);
                return 0;
        }
        const char *prohibit = domain_feature_get(d, "prohibit-start");
        if (!isempty(prohibit)) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "Qube start is prohibited. Rationale: %s", prohibit) < 0)
                        return -ENOMEM;
                start_failed(m, d, QERR_QUBES_EXCEPTION, msg);
                return 0;
        }
        if (qubes_class_has_template(d->klass) && !domain_template(d)) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "Template for the qube '%s' not specified", d->name) < 0)
                        return -ENOMEM;
                start_failed(m, d, QERR_NO_TEMPLATE, msg);
                return 0;
        }

        app_emit_event(m->app, d, "domain-pre-start", "start_guid", "True", "mem_required", NULL);

        if (!vmm_connected(m) && vmm_of(m)->connecting) {
                /* qubesd has just started (or is reconnecting): the start waits for the attempt */
                if (strv_extend(&vmm_of(m)->connect_waiters, d->name) < 0)
                        return -ENOMEM;
                return 0;
        }
        return start_continue(m, d);
}

static void on_settled(Manager *m) {
        _cleanup_strv_free_ char **names = TAKE_PTR(vmm_of(m)->connect_waiters);

        if (vmm_of(m)->stopping)
                return; /* qubesd is going: nothing starts */
        for (char **n = names; n && *n; n++) {
                Domain *d = app_get_domain(m->app, *n);
                if (!d)
                        start_gone(m, *n); /* removed while the start waited: its callers get an answer */
                else if (start_continue(m, d) < 0)
                        start_failed(m, d, QERR_QUBES_EXCEPTION, "Start failed: out of memory");
        }
        if (m->hypervisor_settled) {
                void (*settled)(Manager *) = m->hypervisor_settled;
                m->hypervisor_settled = NULL; /* the first attempt only */
                settled(m);
        }
}

static int start_continue(Manager *m, Domain *d) {
        if (!vmm_connected(m)) {
                _cleanup_free_ char *msg = start_failed_message(m, "no connection to the hypervisor");
                start_failed(m, d, QERR_QUBES_EXCEPTION, msg ?: "Start failed");
                return 0;
        }
        Domain *netvm = domain_netvm(d);
        if (netvm && netvm->klass != QUBES_CLASS_ADMINVM && !domain_is_running(netvm)) {
                char *name = strdup(d->name);
                if (!name)
                        return -ENOMEM;
                return lifecycle_start(m, netvm, on_netvm_started, name);
        }
        start_spawn(m, d);
        return 0;
}

/* ---- shutdown, kill --------------------------------------------------------------------- */

/* One Shutdown(wait)/Kill call waiting for the stop: finished once, by whichever comes first
 * (the stop, the libvirt error, the timeout). Two owners: the worker request and the waiter. */
typedef struct StopCall {
        unsigned refs;
        bool finished, wait, kill;
        Manager *manager;
        char *name;
        OpDoneFn done;
        void *userdata;
        sd_event_source *timer;
        /* worker side */
        char *error;
        int error_code;
} StopCall;

static void stop_call_unref(StopCall *c) {
        if (--c->refs > 0)
                return;
        sd_event_source_disable_unref(c->timer);
        free(c->name);
        free(c->error);
        free(c);
}

static void stop_call_finish(StopCall *c, int error, const QError *e) {
        if (c->finished)
                return;
        c->finished = true;
        c->timer = sd_event_source_disable_unref(c->timer);
        c->done(c->manager, c->name, error, e, c->userdata);
}

static void stop_waiter(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        StopCall *c = userdata;
        stop_call_finish(c, error, e);
        stop_call_unref(c);
}

static int on_shutdown_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        StopCall *c = userdata;
        Manager *m = c->manager;
        Domain *d = app_get_domain(m->app, c->name);
        VmRuntime *rt = vmm_runtime(m, c->name);
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *r = repr(c->name), *msg = NULL;

        qerror_set(&e, QERR_VM_SHUTDOWN_TIMEOUT, "Domain shutdown timed out: %s", r ?: c->name);
        msg = qerror_message(&e);
        if (d)
                app_emit_event(m->app, d, "domain-shutdown-failed", "reason", msg ?: "");
        stop_call_finish(c, -ETIMEDOUT, &e);
        if (rt)
                waiter_remove(&rt->stop_waiters, c);
        stop_call_unref(c); /* the waiter's reference */
        return 0;
}

static void stop_work(virConnectPtr conn, void *data) {
        StopCall *c = data;
        if (!conn) {
                c->error = strdup("no connection to the hypervisor");
                c->error_code = VIR_ERR_INTERNAL_ERROR;
                return;
        }
        virDomainPtr dom = virDomainLookupByName(conn, c->name);
        int r = dom ? (c->kill ? virDomainDestroy(dom) : virDomainShutdown(dom)) : -1;
        if (r < 0) {
                c->error = vmm_last_error();
                c->error_code = vmm_last_error_code();
        }
        if (dom)
                virDomainFree(dom);
}

static void stop_done(Manager *m, void *data) {
        StopCall *c = data;
        Domain *d = app_get_domain(m->app, c->name);
        VmRuntime *rt = vmm_runtime(m, c->name);

        if (c->error && (c->error_code == VIR_ERR_NO_DOMAIN || c->error_code == VIR_ERR_OPERATION_INVALID)) {
                /* it stopped in the meantime: what the caller wanted */
                if (d && !state_is(d, ST_HALTED))
                        vm_stopped(m, d);
                if (!c->kill || !d)
                        stop_call_finish(c, 0, NULL);
        } else if (c->error) {
                _cleanup_qerror_ QError e = {};
                _cleanup_free_ char *msg = NULL;
                qerror_set(&e, QERR_QUBES_EXCEPTION, c->kill ? "Kill failed: %s" : "Shutdown failed: %s", c->error);
                msg = qerror_message(&e);
                if (d && !c->kill)
                        app_emit_event(m->app, d, "domain-shutdown-failed", "reason", msg ?: "");
                if (rt && (c->wait || c->kill) && !c->finished) {
                        waiter_remove(&rt->stop_waiters, c);
                        stop_call_unref(c);
                }
                stop_call_finish(c, -EIO, &e);
        } else if (c->kill) {
                /* destroyed: report the stop now instead of waiting for the event (which is then
                 * a no-op), as upstream's kill waits for it */
                if (d)
                        vm_stopped(m, d);
        } else if (!c->wait)
                stop_call_finish(c, 0, NULL);
        stop_call_unref(c);
}

/* The running qubes whose netvm is d, comma-separated in qubes.xml order (upstream's
 * connected_vms); returns how many (negative on OOM). */
static int running_clients(Manager *m, Domain *d, char **ret) {
        _cleanup_free_ Domain **all = app_domains_sorted(m->app, NULL);
        _cleanup_strbuf_ StrBuf b = {};
        int n = 0;

        *ret = NULL;
        if (!all)
                return -ENOMEM;
        for (Domain **o = all; *o; o++)
                if (*o != d && domain_is_running(*o) && domain_netvm(*o) == d) {
                        strbuf_append(&b, n++ ? ", " : "");
                        strbuf_append(&b, (*o)->name);
                }
        if (n == 0)
                return 0;
        if (b.oom)
                return -ENOMEM;
        *ret = strbuf_steal(&b);
        return *ret ? n : -ENOMEM;
}

static int stop_common(Manager *m, Domain *d, bool kill, bool force, bool wait, OpDoneFn done, void *userdata) {
        VmRuntime *rt = vmm_runtime(m, d->name);
        StopCall *c;

        if (d->klass == QUBES_CLASS_ADMINVM || d->klass == QUBES_CLASS_REMOTEVM) {
                fail_vm(m, d, done, userdata, QERR_VM_ERROR, "Cannot stop this qube: %s");
                return 0;
        }
        if (!rt)
                return -ENOMEM;
        if (state_is(d, ST_HALTED) || rt->starting) {
                /* a starting qube is "Halted" until it spawns: nothing to stop yet, as upstream */
                fail_vm(m, d, done, userdata, QERR_VM_NOT_STARTED, "Domain is powered off: %s");
                return 0;
        }
        c = new0(StopCall, 1);
        if (!c)
                return -ENOMEM;
        c->refs = 1;
        c->manager = m;
        c->kill = kill;
        c->wait = wait || kill;
        c->done = done;
        c->userdata = userdata;
        c->name = strdup(d->name);
        if (!c->name) {
                free(c);
                return -ENOMEM;
        }
        if (!kill) {
                _cleanup_free_ char *clients = NULL;

                app_emit_event(m->app, d, "domain-pre-shutdown", "force", force ? "True" : "False");
                /* upstream's domain-pre-shutdown handler of a netvm: not while its clients run */
                if (!force && running_clients(m, d, &clients) > 0) {
                        _cleanup_qerror_ QError e = {};
                        _cleanup_free_ char *msg = NULL;

                        qerror_set(&e, QERR_VM_IN_USE, "There are other VMs connected to this VM: %s", clients);
                        msg = qerror_message(&e);
                        app_emit_event(m->app, d, "domain-shutdown-failed", "reason", msg ?: "");
                        done(m, d->name, -EBUSY, &e, userdata);
                        stop_call_unref(c);
                        return 0;
                }
        } else
                log_qube_info(d->name, "Killing %s.", d->name); /* no Qubes event says it (journal.c) */
        if (c->wait) {
                if (waiter_add(&rt->stop_waiters, stop_waiter, c) < 0) {
                        stop_call_unref(c);
                        return -ENOMEM;
                }
                c->refs++;
        }
        if (wait && !kill) {
                uint64_t now;
                int64_t timeout = domain_property_int(d, "shutdown_timeout", 60);
                if (timeout <= 0)
                        timeout = 60;
                if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) >= 0)
                        (void) sd_event_add_time(m->event, &c->timer, CLOCK_MONOTONIC,
                                                 now + (uint64_t) timeout * 1000000ULL, 0, on_shutdown_timeout, c);
        }
        if (vmm_submit(m, stop_work, stop_done, c) < 0) {
                _cleanup_qerror_ QError e = {};
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Out of memory");
                if (c->wait) {
                        waiter_remove(&rt->stop_waiters, c);
                        stop_call_unref(c);
                }
                stop_call_finish(c, -ENOMEM, &e);
                stop_call_unref(c);
        }
        return 0;
}

int lifecycle_shutdown(Manager *m, Domain *d, bool force, bool wait, OpDoneFn done, void *userdata) {
        return stop_common(m, d, false, force, wait, done, userdata);
}

int lifecycle_kill(Manager *m, Domain *d, OpDoneFn done, void *userdata) {
        return stop_common(m, d, true, true, true, done, userdata);
}

/* ---- pause, unpause, suspend, resume ------------------------------------------------------ */

typedef enum SimpleOp { OP_PAUSE, OP_UNPAUSE, OP_SUSPEND, OP_RESUME } SimpleOp;

typedef struct SimpleCall {
        SimpleOp op;
        char *name;
        OpDoneFn done;
        void *userdata;
        char *error;
        bool pm; /* suspend: the guest did a real S3 suspend (else it was paused) */
} SimpleCall;

static void simple_work(virConnectPtr conn, void *data) {
        SimpleCall *c = data;
        virDomainPtr dom;
        int r = -1;

        if (!conn) {
                c->error = strdup("no connection to the hypervisor");
                return;
        }
        dom = virDomainLookupByName(conn, c->name);
        if (dom) {
                switch (c->op) {
                case OP_PAUSE:
                        r = virDomainSuspend(dom);
                        break;
                case OP_UNPAUSE:
                        r = virDomainResume(dom);
                        break;
                case OP_SUSPEND:
                        r = virDomainPMSuspendForDuration(dom, VIR_NODE_SUSPEND_TARGET_MEM, 0, 0);
                        if (r == 0)
                                c->pm = true;
                        else {
                                int code = vmm_last_error_code();
                                /* no S3 support inside: pause it, as upstream */
                                if (code == VIR_ERR_OPERATION_UNSUPPORTED || code == VIR_ERR_NO_SUPPORT ||
                                    code == VIR_ERR_AGENT_UNRESPONSIVE || code == VIR_ERR_ARGUMENT_UNSUPPORTED)
                                        r = virDomainSuspend(dom);
                        }
                        break;
                case OP_RESUME:
                        r = virDomainPMWakeup(dom, 0);
                        break;
                }
        }
        if (r < 0)
                c->error = vmm_last_error();
        if (dom)
                virDomainFree(dom);
}

static void simple_done(Manager *m, void *data) {
        SimpleCall *c = data;
        Domain *d = app_get_domain(m->app, c->name);
        _cleanup_qerror_ QError e = {};

        if (c->error) {
                static const char *const what[] = { "Pause", "Unpause", "Suspend", "Resume" };
                _cleanup_free_ char *fmt = NULL;
                if (asprintf(&fmt, "%s failed: %%s", what[c->op]) >= 0)
                        qerror_set(&e, QERR_QUBES_EXCEPTION, fmt, c->error);
                c->done(m, c->name, -EIO, &e, c->userdata);
        } else {
                /* the libvirt event may have come first; the state makes sure of one event */
                if (d)
                        switch (c->op) {
                        case OP_PAUSE:
                                on_domain_event(m, d->name, VIR_DOMAIN_EVENT_SUSPENDED, 0);
                                break;
                        case OP_UNPAUSE:
                                on_domain_event(m, d->name, VIR_DOMAIN_EVENT_RESUMED, 0);
                                break;
                        case OP_SUSPEND:
                                on_domain_event(m, d->name,
                                                c->pm ? VIR_DOMAIN_EVENT_PMSUSPENDED : VIR_DOMAIN_EVENT_SUSPENDED, 0);
                                break;
                        case OP_RESUME:
                                if (state_is(d, ST_SUSPENDED)) {
                                        set_power_state(m, d, ST_RUNNING);
                                        app_emit_event0(m->app, d, "domain-resumed");
                                }
                                break;
                        }
                c->done(m, c->name, 0, NULL, c->userdata);
        }
        free(c->name);
        free(c->error);
        free(c);
}

static int simple_submit(Manager *m, Domain *d, SimpleOp op, OpDoneFn done, void *userdata) {
        SimpleCall *c = new0(SimpleCall, 1);
        if (!c)
                return -ENOMEM;
        c->op = op;
        c->done = done;
        c->userdata = userdata;
        c->name = strdup(d->name);
        if (!c->name || vmm_submit(m, simple_work, simple_done, c) < 0) {
                free(c->name);
                free(c);
                return -ENOMEM;
        }
        return 0;
}

static bool not_local(Manager *m, Domain *d, OpDoneFn done, void *userdata) {
        if (d->klass != QUBES_CLASS_ADMINVM && d->klass != QUBES_CLASS_REMOTEVM)
                return false;
        fail_vm(m, d, done, userdata, QERR_VM_ERROR, "Operation not supported on this qube: %s");
        return true;
}

int lifecycle_pause(Manager *m, Domain *d, OpDoneFn done, void *userdata) {
        if (not_local(m, d, done, userdata))
                return 0;
        if (state_is(d, ST_HALTED)) {
                fail_vm(m, d, done, userdata, QERR_VM_NOT_RUNNING,
                        "Domain not running (either powered off or paused): %s");
                return 0;
        }
        app_emit_event0(m->app, d, "domain-pre-paused");
        return simple_submit(m, d, OP_PAUSE, done, userdata);
}

int lifecycle_unpause(Manager *m, Domain *d, OpDoneFn done, void *userdata) {
        if (not_local(m, d, done, userdata))
                return 0;
        if (!state_is(d, ST_PAUSED)) {
                fail_vm(m, d, done, userdata, QERR_VM_NOT_PAUSED, "Domain is not paused: %s");
                return 0;
        }
        app_emit_event0(m->app, d, "domain-pre-unpaused");
        return simple_submit(m, d, OP_UNPAUSE, done, userdata);
}

int lifecycle_suspend(Manager *m, Domain *d, OpDoneFn done, void *userdata) {
        if (not_local(m, d, done, userdata))
                return 0;
        if (state_is(d, ST_HALTED)) {
                fail_vm(m, d, done, userdata, QERR_VM_NOT_RUNNING,
                        "Domain not running (either powered off or paused): %s");
                return 0;
        }
        return simple_submit(m, d, OP_SUSPEND, done, userdata);
}

int lifecycle_resume(Manager *m, Domain *d, OpDoneFn done, void *userdata) {
        if (state_is(d, ST_SUSPENDED))
                return simple_submit(m, d, OP_RESUME, done, userdata);
        return lifecycle_unpause(m, d, done, userdata);
}

/* ---- console ---------------------------------------------------------------------------- */

typedef struct ConsoleCall {
        char *name;
        ConsoleDoneFn done;
        void *userdata;
        char *tty;
        char *error;
        bool gone;
} ConsoleCall;

static void console_work(virConnectPtr conn, void *data) {
        ConsoleCall *c = data;
        virDomainPtr dom;
        char *xml;

        if (!conn) {
                c->error = strdup("no connection to the hypervisor");
                return;
        }
        dom = virDomainLookupByName(conn, c->name);
        if (!dom) {
                if (vmm_last_error_code() == VIR_ERR_NO_DOMAIN)
                        c->gone = true;
                else
                        c->error = vmm_last_error();
                return;
        }
        if (virDomainIsActive(dom) == 0)
                c->gone = true;
        else if ((xml = virDomainGetXMLDesc(dom, 0))) {
                c->tty = domain_xml_console_tty(xml);
                if (!c->tty)
                        c->error = strdup("cannot read the domain's XML");
                free(xml);
        } else
                c->error = vmm_last_error();
        virDomainFree(dom);
}

static void console_done(Manager *m, void *data) {
        ConsoleCall *c = data;
        _cleanup_qerror_ QError e = {};

        if (c->gone) {
                _cleanup_free_ char *r = repr(c->name);
                qerror_set(&e, QERR_VM_NOT_RUNNING, "Domain not running (either powered off or paused): %s",
                           r ?: c->name);
                c->done(m, c->name, -ESRCH, &e, NULL, c->userdata);
        } else if (c->error || !c->tty) {
                qerror_set(&e, QERR_QUBES_EXCEPTION, "Console failed: %s", strempty(c->error));
                c->done(m, c->name, -EIO, &e, NULL, c->userdata);
        } else
                c->done(m, c->name, 0, NULL, c->tty, c->userdata);
        free(c->name);
        free(c->tty);
        free(c->error);
        free(c);
}

int lifecycle_console(Manager *m, Domain *d, ConsoleDoneFn done, void *userdata) {
        ConsoleCall *c;

        /* dom0 always runs, and its libvirt XML has no console tty: upstream answers "" */
        if (d->klass == QUBES_CLASS_ADMINVM) {
                done(m, d->name, 0, NULL, "", userdata);
                return 0;
        }
        /* libvirt's idea of running: active domains (paused ones too), not Halted/Crashed/Dying */
        if (d->klass == QUBES_CLASS_REMOTEVM || state_is(d, ST_HALTED) || state_is(d, ST_CRASHED) ||
            state_is(d, ST_DYING)) {
                _cleanup_qerror_ QError e = {};
                _cleanup_free_ char *r = repr(d->name);
                qerror_set(&e, QERR_VM_NOT_RUNNING, "Domain not running (either powered off or paused): %s",
                           r ?: d->name);
                done(m, d->name, -ESRCH, &e, NULL, userdata);
                return 0;
        }
        c = new0(ConsoleCall, 1);
        if (!c)
                return -ENOMEM;
        c->done = done;
        c->userdata = userdata;
        c->name = strdup(vmm_libvirt_name(d));
        if (!c->name || vmm_submit(m, console_work, console_done, c) < 0) {
                free(c->name);
                free(c);
                return -ENOMEM;
        }
        return 0;
}

/* ---- restart ---------------------------------------------------------------------------- */

typedef struct RestartCall {
        OpDoneFn done;
        void *userdata;
} RestartCall;

static void restart_started(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        RestartCall *c = userdata;
        c->done(m, name, error, e, c->userdata);
        free(c);
}

static void restart_stopped(Manager *m, const char *name, int error, const QError *e, void *userdata) {
        RestartCall *c = userdata;
        Domain *d = app_get_domain(m->app, name);
        int r;

        if (error < 0 || !d) {
                c->done(m, name, error < 0 ? error : -ENOENT, e, c->userdata);
                free(c);
                return;
        }
        r = lifecycle_start(m, d, restart_started, c);
        if (r < 0) {
                c->done(m, name, r, NULL, c->userdata);
                free(c);
        }
}

int lifecycle_restart(Manager *m, Domain *d, OpDoneFn done, void *userdata) {
        RestartCall *c;
        int r;

        if (not_local(m, d, done, userdata))
                return 0;
        /* it is removed when it stops: there would be nothing left to start, and the call would
         * never be answered (found by test_hostile) */
        if (d->klass == QUBES_CLASS_DISPVM && domain_property_bool(d, "auto_cleanup") && !state_is(d, ST_HALTED)) {
                fail_vm(m, d, done, userdata, QERR_VM_ERROR,
                        "Cannot restart a disposable that is removed when it stops (auto_cleanup): %s");
                return 0;
        }
        c = new0(RestartCall, 1);
        if (!c)
                return -ENOMEM;
        c->done = done;
        c->userdata = userdata;
        if (state_is(d, ST_HALTED))
                r = lifecycle_start(m, d, restart_started, c);
        else
                r = lifecycle_shutdown(m, d, false, true, restart_stopped, c);
        if (r < 0)
                free(c);
        return r;
}

/* ---- stats ------------------------------------------------------------------------------ */

typedef struct StatsRec {
        char *name;
        uint64_t cpu_ns, balloon_cur, balloon_max, balloon_unused;
        unsigned vcpus;
        int state;
        bool has_balloon, has_unused;
} StatsRec;

typedef struct StatsReq {
        StatsRec *recs;
        size_t n;
        uint64_t sample_usec;
} StatsReq;

static void stats_work(virConnectPtr conn, void *data) {
        StatsReq *q = data;
        virDomainStatsRecordPtr *records = NULL;
        int n;

        if (!conn)
                return;
        n = virConnectGetAllDomainStats(conn,
                                        VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON |
                                                VIR_DOMAIN_STATS_VCPU,
                                        &records, VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE);
        if (n >= 0) {
                q->recs = calloc(n ?: 1, sizeof(StatsRec));
                for (int i = 0; q->recs && i < n; i++) {
                        StatsRec *s = &q->recs[q->n];
                        const char *name = virDomainGetName(records[i]->dom);
                        if (!name || !(s->name = strdup(name)))
                                continue;
                        for (int k = 0; k < records[i]->nparams; k++) {
                                virTypedParameterPtr p = &records[i]->params[k];
                                if (streq(p->field, "cpu.time"))
                                        s->cpu_ns = p->value.ul;
                                else if (streq(p->field, "balloon.current")) {
                                        s->balloon_cur = p->value.ul;
                                        s->has_balloon = true;
                                } else if (streq(p->field, "balloon.maximum"))
                                        s->balloon_max = p->value.ul;
                                else if (streq(p->field, "balloon.unused")) {
                                        s->balloon_unused = p->value.ul;
                                        s->has_unused = true;
                                } else if (streq(p->field, "vcpu.current"))
                                        s->vcpus = p->value.ui;
                                else if (streq(p->field, "state.state"))
                                        s->state = p->value.i;
                        }
                        q->n++;
                }
                virDomainStatsRecordListFree(records);
        } else {
                /* drivers without bulk stats: one virDomainGetInfo per active domain */
                virDomainPtr *doms = NULL;
                n = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
                if (n < 0)
                        return;
                q->recs = calloc(n ?: 1, sizeof(StatsRec));
                for (int i = 0; i < n; i++) {
                        virDomainInfo info;
                        const char *name = virDomainGetName(doms[i]);
                        if (q->recs && name && virDomainGetInfo(doms[i], &info) == 0) {
                                StatsRec *s = &q->recs[q->n];
                                if ((s->name = strdup(name))) {
                                        s->cpu_ns = info.cpuTime;
                                        s->balloon_cur = info.memory;
                                        s->balloon_max = info.maxMem;
                                        s->has_balloon = true;
                                        s->vcpus = info.nrVirtCpu;
                                        s->state = info.state;
                                        q->n++;
                                }
                        }
                        virDomainFree(doms[i]);
                }
                free(doms);
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        q->sample_usec = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

typedef struct StatsSignal {
        const char *path, *dest;
        char (*v)[32];
} StatsSignal;

static int send_stats(sd_bus *bus, void *userdata) {
        StatsSignal *s = userdata;
        char(*v)[32] = s->v;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        int r = sd_bus_message_new_signal(bus, &sig, s->path, s->dest ? QUBESD_IFACE_SUBSCRIPTION : QUBESD_IFACE_DOMAIN,
                                          "Stats");
        if (r >= 0 && s->dest && sd_bus_is_bus_client(bus) > 0)
                r = sd_bus_message_set_destination(sig, s->dest);
        if (r >= 0)
                r = sd_bus_message_append(sig, "a(ss)", 7, "memory_kb", v[0], "memory_assigned_total", v[1],
                                          "memory_assigned_usable", v[2], "memory_with_swap_used", v[3], "cpu_time",
                                          v[4], "cpu_usage", v[5], "online_vcpus", v[6]);
        if (r >= 0)
                r = sd_bus_send(bus, sig, NULL);
        return r;
}

static int send_stats_copy(sd_bus *bus, const char *destination, void *userdata) {
        StatsSignal copy = *(StatsSignal *) userdata;
        copy.dest = destination;
        return send_stats(bus, &copy);
}

static void emit_stats(Manager *m, Domain *d, const StatsRec *s, VmRuntime *rt, uint64_t sample_usec) {
        _cleanup_free_ char *path = domain_bus_path(d);
        uint64_t mem = s->has_balloon ? s->balloon_cur : rt->mem_kib;
        uint64_t with_swap = s->has_unused && s->balloon_unused <= mem ? mem - s->balloon_unused : mem;
        unsigned vcpus = s->vcpus ?: (rt->vcpus ?: 1);
        uint64_t usage = 0;
        char v[7][32];

        if (rt->prev_sample_usec > 0 && sample_usec > rt->prev_sample_usec && s->cpu_ns >= rt->prev_cpu_ns) {
                double elapsed_ns = (double) (sample_usec - rt->prev_sample_usec) * 1000.0;
                usage = (uint64_t) ((double) (s->cpu_ns - rt->prev_cpu_ns) * 100.0 / elapsed_ns / vcpus);
                if (usage > 100)
                        usage = 100;
        }
        rt->prev_cpu_ns = s->cpu_ns;
        rt->prev_sample_usec = sample_usec;
        rt->cputime_ns = s->cpu_ns;
        if (s->has_balloon) {
                rt->mem_kib = s->balloon_cur;
                if (s->balloon_max)
                        rt->mem_static_max_kib = s->balloon_max;
        }
        if (!path)
                return;
        /* upstream's key order (spec/admin-api.md §5, vector 7.2.20) */
        snprintf(v[0], sizeof v[0], "%" PRIu64, mem);
        snprintf(v[1], sizeof v[1], "%" PRIu64, mem);
        snprintf(v[2], sizeof v[2], "%" PRIu64, mem);
        snprintf(v[3], sizeof v[3], "%" PRIu64, with_swap);
        snprintf(v[4], sizeof v[4], "%" PRIu64, (uint64_t) (s->cpu_ns / 1000000ULL));
        snprintf(v[5], sizeof v[5], "%" PRIu64, usage);
        snprintf(v[6], sizeof v[6], "%u", vcpus);
        /* the broadcast, then a copy for each subscriber who sees the qube but gets no
         * broadcasts (the same arguments, on the Subscription interface) */
        StatsSignal sig = { path, NULL, v };
        manager_send_everywhere(m, send_stats, &sig, "Stats");
        caller_filter_send_copies(m, d, send_stats_copy, &sig);
}

static void stats_done(Manager *m, void *data) {
        StatsReq *q = data;
        Vmm *v = vmm_of(m);

        v->stats_in_flight = false;
        for (size_t i = 0; i < q->n; i++) {
                StatsRec *s = &q->recs[i];
                Domain *d = streq(s->name, "Domain-0") ? app_dom0(m->app) : app_get_domain(m->app, s->name);
                VmRuntime *rt;
                if (d && (rt = vmm_runtime(m, d->name)) && domain_is_running(d))
                        emit_stats(m, d, s, rt, q->sample_usec);
                free(s->name);
        }
        free(q->recs);
        free(q);
}

static bool any_running(Manager *m) {
        size_t i = 0;
        void *v;
        if (vmm_of(m)->has_domain0)
                return true;
        while (hashmap_iterate(m->app->domains, &i, NULL, &v)) {
                Domain *d = v;
                if (d->klass != QUBES_CLASS_ADMINVM && d->klass != QUBES_CLASS_REMOTEVM && domain_is_running(d))
                        return true;
        }
        return false;
}

static int on_stats_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void arm_stats(Manager *m) {
        Vmm *v = vmm_of(m);
        const PropDef *p = global_prop_find("stats_interval");
        PropValue pv = {};
        int64_t interval = 3;
        uint64_t now;

        if (p && app_property_get(m->app, p, &pv, NULL) >= 0 && pv.value) {
                char *end;
                long long x = strtoll(pv.value, &end, 10);
                if (*end == 0 && x > 0)
                        interval = x;
        }
        prop_value_done(&pv);
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (!v->stats_source)
                (void) sd_event_add_time(m->event, &v->stats_source, CLOCK_MONOTONIC,
                                         now + (uint64_t) interval * 1000000ULL, 0, on_stats_timer, m);
        else {
                (void) sd_event_source_set_time(v->stats_source, now + (uint64_t) interval * 1000000ULL);
                (void) sd_event_source_set_enabled(v->stats_source, SD_EVENT_ONESHOT);
        }
}

static void stats_tick(Manager *m) {
        Vmm *v = vmm_of(m);
        /* one bulk call per interval, only while something runs and the previous answer is in */
        if (vmm_connected(m) && !v->stats_in_flight && any_running(m)) {
                StatsReq *q = new0(StatsReq, 1);
                if (q && vmm_submit(m, stats_work, stats_done, q) == 0)
                        v->stats_in_flight = true;
                else
                        free(q);
        }
        arm_stats(m);
}

static int on_stats_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        stats_tick(userdata);
        return 0;
}

static const VmmListener listener = {
        .domain_event = on_domain_event,
        .connected = on_connected,
        .settled = on_settled,
};

int lifecycle_init(Manager *m) {
        int r = vmm_init(m, &listener);
        if (r < 0)
                return r;
        stats_tick(m); /* arms the stats timer */
        return 0;
}

void lifecycle_done(Manager *m) {
        Vmm *v = vmm_of(m);
        size_t i = 0;
        void *val;
        _cleanup_qerror_ QError e = {};

        if (!v)
                return;
        /* the workers have stopped: whoever still waits for a start or a stop gets an answer */
        v->stopping = true;
        qerror_set(&e, QERR_QUBES_EXCEPTION, "qubesd is shutting down");
        while (hashmap_iterate(v->runtime, &i, NULL, &val)) {
                VmRuntime *rt = val;
                waiters_finish(m, rt->name, &rt->start_waiters, -ECANCELED, &e);
                waiters_finish(m, rt->name, &rt->stop_waiters, -ECANCELED, &e);
        }
        vmm_free(m);
}
