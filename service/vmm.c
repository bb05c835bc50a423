/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt connection (opened, watched and reopened on a worker), the libvirt calls on the
 * worker pool, and the runtime records of qubes. What libvirt reports goes to the listener. */
#include "vmm.h"

#include <dlfcn.h>

#include "libvirt-event.h"

#include "commit.h"
#include "workers.h"
#include "util/log.h"
#include "util/strv.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- libvirt calls on the workers -------------------------------------------------------- */

/* One libvirt call: work() on a worker with its own reference to the connection (the last
 * reference may close a remote socket: dropped there, not on the loop), done() on the loop. */
typedef struct VmmCall {
        Manager *manager;
        virConnectPtr conn;
        VmmWorkFn work;
        VmmDoneFn done;
        void *data;
} VmmCall;

static void call_work(void *userdata) {
        VmmCall *c = userdata;
        if (c->work)
                c->work(c->conn, c->data);
        if (c->conn) {
                virConnectClose(c->conn);
                c->conn = NULL;
        }
}

static void call_done(void *userdata) {
        VmmCall *c = userdata;
        if (c->done)
                c->done(c->manager, c->data);
        free(c);
}

/* conn: a reference the call takes over (closed on the worker), or NULL */
static int submit(Manager *m, virConnectPtr conn, VmmWorkFn work, VmmDoneFn done, void *data) {
        VmmCall *c = new0(VmmCall, 1);
        int r;

        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->conn = conn;
        c->work = work;
        c->done = done;
        c->data = data;
        r = workers_submit(m->workers, WORK_CALL, call_work, call_done, c);
        if (r < 0)
                free(c);
        return r;
}

int vmm_submit(Manager *m, VmmWorkFn work, VmmDoneFn done, void *data) {
        Vmm *v = vmm_of(m);
        virConnectPtr conn = NULL;
        int r;

        if (v->conn && virConnectRef(v->conn) == 0)
                conn = v->conn;
        r = submit(m, conn, work, done, data);
        if (r < 0 && conn)
                virConnectClose(conn);
        return r;
}

/* ---- errors ----------------------------------------------------------------------------- */

char *vmm_last_error(void) {
        virErrorPtr e = virGetLastError();
        return strdup(e && e->message ? e->message : "unknown libvirt error");
}

int vmm_last_error_code(void) {
        virErrorPtr e = virGetLastError();
        return e ? e->code : VIR_ERR_INTERNAL_ERROR;
}

/* ---- runtime state ---------------------------------------------------------------------- */

static VmRuntime *runtime_free(VmRuntime *rt) {
        if (!rt)
                return NULL;
        free(rt->name);
        free(rt);
        return NULL;
}

VmRuntime *vmm_runtime(Manager *m, const char *name) {
        Vmm *v = vmm_of(m);
        VmRuntime *rt = hashmap_get(v->runtime, name);
        if (rt)
                return rt;
        rt = new0(VmRuntime, 1);
        if (!rt)
                return NULL;
        rt->name = strdup(name);
        rt->xid = -1;
        if (!rt->name || hashmap_put(v->runtime, rt->name, rt) < 0)
                return runtime_free(rt);
        return rt;
}

void vmm_current_state(Manager *m, Domain *d, uint64_t *mem_kib, uint64_t *mem_static_max_kib, uint64_t *cputime) {
        Vmm *v = vmm_of(m);
        VmRuntime *rt = v ? hashmap_get(v->runtime, d->name) : NULL;

        *mem_kib = *mem_static_max_kib = *cputime = 0;
        if (!rt || !domain_is_running(d))
                return;
        *mem_kib = rt->mem_kib;
        *mem_static_max_kib = rt->mem_static_max_kib;
        *cputime = rt->cputime_ns;
}

typedef struct InfoReq {
        char *name;
        char *libvirt_name;
        bool ok;
        virDomainInfo info;
        int id;
} InfoReq;

static void info_work(virConnectPtr conn, void *data) {
        InfoReq *q = data;
        if (!conn)
                return;
        virDomainPtr dom = virDomainLookupByName(conn, q->libvirt_name);
        if (!dom)
                return;
        q->ok = virDomainGetInfo(dom, &q->info) == 0;
        q->id = virDomainGetID(dom) == (unsigned) -1 ? -1 : (int) virDomainGetID(dom);
        virDomainFree(dom);
}

static void info_done(Manager *m, void *data) {
        InfoReq *q = data;
        Domain *d = app_get_domain(m->app, q->name);
        VmRuntime *rt;

        if (q->ok && d && (rt = vmm_runtime(m, d->name))) {
                rt->mem_kib = q->info.memory;
                rt->mem_static_max_kib = q->info.maxMem;
                rt->cputime_ns = q->info.cpuTime;
                rt->vcpus = q->info.nrVirtCpu;
        }
        free(q->name);
        free(q->libvirt_name);
        free(q);
}

void vmm_refresh_info(Manager *m, const char *name) {
        Domain *d = app_get_domain(m->app, name);
        if (!d || !vmm_connected(m))
                return;
        InfoReq *q = new0(InfoReq, 1);
        if (!q)
                return;
        q->name = strdup(name);
        q->libvirt_name = strdup(vmm_libvirt_name(d));
        if (!q->name || !q->libvirt_name || vmm_submit(m, info_work, info_done, q) < 0) {
                free(q->name);
                free(q->libvirt_name);
                free(q);
        }
}

typedef struct FreeReq {
        VmmFreeMemoryFn done;
        void *userdata;
        unsigned long long bytes;
} FreeReq;

static void free_work(virConnectPtr conn, void *data) {
        FreeReq *q = data;
        if (conn)
                q->bytes = virNodeGetFreeMemory(conn);
}

static void free_done(Manager *m, void *data) {
        FreeReq *q = data;
        if (vmm_of(m))
                vmm_of(m)->free_memory = q->bytes;
        q->done(m, q->bytes, q->userdata);
        free(q);
}

int vmm_free_memory(Manager *m, VmmFreeMemoryFn done, void *userdata) {
        FreeReq *q = new0(FreeReq, 1);
        int r;

        if (!q)
                return -ENOMEM;
        q->done = done;
        q->userdata = userdata;
        r = vmm_submit(m, free_work, free_done, q);
        if (r < 0)
                free(q);
        return r;
}

/* ---- connection ------------------------------------------------------------------------- */

bool vmm_connected(Manager *m) {
        Vmm *v = vmm_of(m);
        return v && v->conn;
}

/* Never prompt: qubesd runs unattended. A connection that needs credentials fails. */
static int auth_refuse(virConnectCredentialPtr cred, unsigned ncred, void *cbdata) {
        return -1;
}

typedef struct OpenReq {
        Manager *manager;
        char *uri;
        virConnectPtr conn;
        char *error;
        int cb_id;
        bool has_domain0;
        unsigned long dom0_max_kib;
        unsigned long long node_mem_kib;
        unsigned node_cpus;
        VmmActive *active;
        size_t n_active;
} OpenReq;

static void on_libvirt_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
        /* dispatched by libvirt from our event loop implementation: we are on the loop */
        Manager *m = opaque;
        const char *name = virDomainGetName(dom);
        if (name && m->vmm)
                m->vmm->listener->domain_event(m, name, event, detail);
}

static void schedule_reconnect(Manager *m);

static void on_libvirt_close(virConnectPtr conn, int reason, void *opaque) {
        Manager *m = opaque;
        Vmm *v = vmm_of(m);

        if (!v || conn != v->conn)
                return;
        log_warning("The libvirt connection to %s was closed (reason %d); reconnecting.", m->config.libvirt_uri,
                    reason);
        /* the last reference goes in a worker: closing may block */
        v->conn = NULL;
        if (submit(m, conn, NULL, NULL, NULL) < 0)
                virConnectClose(conn);
        v->reconnect_delay_s = 1;
        schedule_reconnect(m);
}

static int collect_active(OpenReq *q, virConnectPtr c) {
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
        if (n < 0)
                return -1;
        q->active = calloc(n > 0 ? n : 1, sizeof(VmmActive));
        for (int i = 0; i < n; i++) {
                virDomainInfo info;
                const char *name = virDomainGetName(doms[i]);
                if (q->active && name && virDomainGetInfo(doms[i], &info) == 0) {
                        VmmActive *a = &q->active[q->n_active];
                        a->name = strdup(name);
                        if (a->name) {
                                unsigned id = virDomainGetID(doms[i]);
                                a->state = info.state;
                                a->id = id == (unsigned) -1 ? -1 : (int) id;
                                a->mem_kib = info.memory;
                                a->max_kib = info.maxMem;
                                a->cputime_ns = info.cpuTime;
                                a->vcpus = info.nrVirtCpu;
                                q->n_active++;
                                if (streq(name, "Domain-0")) {
                                        q->has_domain0 = true;
                                        q->dom0_max_kib = info.maxMem;
                                }
                        }
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        return 0;
}

static void open_work(virConnectPtr unused, void *data) {
        OpenReq *q = data;
        int credtypes[] = { VIR_CRED_AUTHNAME, VIR_CRED_PASSPHRASE, VIR_CRED_ECHOPROMPT, VIR_CRED_NOECHOPROMPT };
        virConnectAuth auth = { credtypes, ELEMENTSOF(credtypes), auth_refuse, NULL };
        virNodeInfo node;

        q->conn = virConnectOpenAuth(q->uri, &auth, 0);
        if (!q->conn) {
                q->error = vmm_last_error();
                return;
        }
        /* remote connections only; a dead daemon is noticed within ~15 s */
        (void) virConnectSetKeepAlive(q->conn, 5, 3);
        if (virNodeGetInfo(q->conn, &node) == 0) {
                q->node_mem_kib = node.memory;
                q->node_cpus = node.cpus;
        }
        /* callbacks first, then the list: what changes after the list is reported */
        q->cb_id = virConnectDomainEventRegisterAny(q->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                    VIR_DOMAIN_EVENT_CALLBACK(on_libvirt_lifecycle), q->manager, NULL);
        if (q->cb_id < 0)
                log_warning("Cannot watch libvirt lifecycle events: %s", virGetLastErrorMessage());
        (void) virConnectRegisterCloseCallback(q->conn, on_libvirt_close, q->manager, NULL);
        if (collect_active(q, q->conn) < 0)
                log_warning("Cannot list libvirt domains: %s", virGetLastErrorMessage());
}

static void open_done(Manager *m, void *data) {
        OpenReq *q = data;
        Vmm *v = vmm_of(m);

        v->connecting = false;
        if (!q->conn) {
                log_warning("Cannot connect to libvirt at %s: %s (retrying in %u s)", q->uri, strempty(q->error),
                            v->reconnect_delay_s ?: 1);
                schedule_reconnect(m);
        } else {
                log_info("Connected to libvirt at %s.", q->uri);
                v->conn = q->conn;
                v->lifecycle_cb_id = q->cb_id;
                v->has_domain0 = q->has_domain0;
                v->reconnect_delay_s = 0;
                /* The host is what the hypervisor says (upstream asks libvirt's node info too):
                 * on Xen the whole machine, not dom0; the test driver's made-up node (16 CPUs,
                 * 3 GiB) is what upstream would see on the same node. */
                uint64_t mem = m->app->host_memory_mib, dom0 = m->app->dom0_maxmem_mib;
                unsigned cpus = m->app->host_cpus;
                if (q->node_mem_kib > 0) {
                        m->app->host_memory_mib = q->node_mem_kib / 1024;
                        m->app->host_cpus = q->node_cpus;
                }
                if (q->has_domain0 && q->dom0_max_kib > 0)
                        m->app->dom0_maxmem_mib = q->dom0_max_kib / 1024;
                v->host_changed =
                        mem != m->app->host_memory_mib || cpus != m->app->host_cpus || dom0 != m->app->dom0_maxmem_mib;
                v->listener->connected(m, q->active, q->n_active);
                /* the connection's set-up and the first sync leave freed memory in the heap
                 * (0.36 MiB at 1,000 qubes after the trim of start-up) */
                manager_trim_later(m);
        }
        for (size_t i = 0; i < q->n_active; i++)
                free(q->active[i].name);
        free(q->active);
        free(q->error);
        free(q->uri);
        free(q);
        v->listener->settled(m);
}

static void start_connect(Manager *m) {
        Vmm *v = vmm_of(m);
        OpenReq *q;

        if (v->conn || v->connecting)
                return;
        q = new0(OpenReq, 1);
        if (!q)
                return (void) log_oom();
        q->manager = m;
        q->uri = strdup(m->config.libvirt_uri);
        if (!q->uri || vmm_submit(m, open_work, open_done, q) < 0) {
                free(q->uri);
                free(q);
                return (void) log_oom();
        }
        v->connecting = true;
}

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata) {
        start_connect(userdata);
        return 0;
}

static void schedule_reconnect(Manager *m) {
        Vmm *v = vmm_of(m);
        uint64_t now;

        /* back off: 1, 2, 4 … 30 s */
        v->reconnect_delay_s = v->reconnect_delay_s ? MIN(v->reconnect_delay_s * 2, 30u) : 1;
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        v->reconnect_source = sd_event_source_disable_unref(v->reconnect_source);
        (void) sd_event_add_time(m->event, &v->reconnect_source, CLOCK_MONOTONIC,
                                 now + (uint64_t) v->reconnect_delay_s * 1000000ULL, 0, on_reconnect, m);
}

static const char *driver_of_uri(const char *uri) {
        if (startswith(uri, "test:"))
                return "test";
        if (startswith(uri, "qemu") || startswith(uri, "kvm"))
                return "qemu";
        if (startswith(uri, "xen") || startswith(uri, "libxl"))
                return "xen";
        return "qemu";
}

static void silent_error(void *userdata, virErrorPtr error) {
}

/* virInitialize() starts curl for libvirt's ESX driver (never used here), and curl starts
 * libssh2, which has OpenSSL load its configuration, every algorithm and engine: libcrypto's
 * resident pages 2.9 -> 1.5 MiB without it (RSS 25.4 -> 23.9 MiB at 1,000 qubes,
 * docs/daemon.md). libssh2 initialises its crypto only at its first libssh2_init(), so a first
 * call without it makes curl's call a counted no-op; OpenSSL 3 initialises itself when something
 * uses it (a backup's scrypt and HMAC: test_backup; libvirt's libssh2 transport, which qubesd is
 * not given, was not tried). Only where libvirt brought libssh2 in already. */
static void libssh2_skip_crypto_init(void) {
        enum { LIBSSH2_INIT_NO_CRYPTO = 1 };
        void *h = dlopen("libssh2.so.1", RTLD_NOW | RTLD_NOLOAD);
        int (*init)(int);

        if (!h)
                return;
        init = (int (*)(int)) dlsym(h, "libssh2_init");
        if (init)
                (void) init(LIBSSH2_INIT_NO_CRYPTO);
        dlclose(h);
}

int vmm_init(Manager *m, const VmmListener *listener) {
        Vmm *v;
        int r;

        libssh2_skip_crypto_init();
        /* before any connection is opened, or libvirt never delivers events */
        r = libvirt_event_register(m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the libvirt event loop: %m");
        if (virInitialize() < 0)
                return log_error_errno(EIO, "Failed to initialise libvirt.");
        /* libvirt's default error handler prints to stderr; we report errors ourselves */
        virSetErrorFunc(NULL, silent_error);

        v = new0(Vmm, 1);
        if (!v)
                return log_oom();
        m->vmm = v;
        v->manager = m;
        v->listener = listener;
        v->lifecycle_cb_id = -1;
        v->runtime = hashmap_new();
        v->driver = strdup(driver_of_uri(m->config.libvirt_uri));
        if (!v->runtime || !v->driver)
                return log_oom();
        /* only Xen (with qmemman) balances memory: maxmem defaults to 0 everywhere else */
        m->app->memory_balancing = streq(v->driver, "xen");
        start_connect(m);
        return 0;
}

void vmm_free(Manager *m) {
        Vmm *v = vmm_of(m);
        size_t i = 0;
        void *val;

        if (!v)
                return;
        /* the workers have stopped (workers_stop()): no libvirt call is in flight */
        v->stopping = true;
        v->connect_waiters = strv_free(v->connect_waiters);
        v->reconnect_source = sd_event_source_disable_unref(v->reconnect_source);
        v->stats_source = sd_event_source_disable_unref(v->stats_source);
        if (v->conn) {
                /* blocking is fine now: the loop has ended */
                if (v->lifecycle_cb_id >= 0)
                        (void) virConnectDomainEventDeregisterAny(v->conn, v->lifecycle_cb_id);
                (void) virConnectUnregisterCloseCallback(v->conn, on_libvirt_close);
                virConnectClose(v->conn);
                v->conn = NULL;
        }
        libvirt_event_unregister();
        m->vmm = NULL;
        while (hashmap_iterate(v->runtime, &i, NULL, &val))
                runtime_free(val);
        hashmap_free(v->runtime);
        free(v->driver);
        free(v);
}
