/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hypervisor side of qubesd: one libvirt connection, the libvirt calls (each one runs on
 * the worker pool, workers.h) and the per-qube runtime state (xid, memory and CPU figures, the
 * calls waiting for a start or a stop) that the loop answers from. What libvirt says goes to
 * its listener (lifecycle.c), which drives it. A call's work() runs on a worker with its own reference
 * to the connection and never touches the model or the bus; its done() runs on the loop
 * afterwards. */

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "manager.h"

typedef struct VmRuntime VmRuntime;
typedef struct VmmListener VmmListener;

/* work() runs on a worker; conn is NULL when there is no connection. */
typedef void (*VmmWorkFn)(virConnectPtr conn, void *data);
/* done() runs on the loop. */
typedef void (*VmmDoneFn)(Manager *m, void *data);

/* Callbacks waiting for something to happen to one qube (start finished, qube stopped). */
typedef void (*VmWaitFn)(Manager *m, const char *name, int error, const QError *e, void *userdata);
typedef struct VmWaiter {
        VmWaitFn fn;
        void *userdata;
        struct VmWaiter *next;
} VmWaiter;

struct VmRuntime {
        char *name;
        int xid;           /* -1 when not running */
        double start_time; /* 0 when not running */
        uint64_t mem_kib, mem_static_max_kib, cputime_ns;
        unsigned vcpus;
        /* an operation of ours is in progress: libvirt events about it are expected */
        bool starting, stopping_by_us;
        VmWaiter *start_waiters; /* Start calls that wait for the start in progress */
        VmWaiter *stop_waiters;  /* Shutdown(wait)/Kill calls and Restart */
        /* stats */
        uint64_t prev_cpu_ns, prev_sample_usec;
};

struct Vmm {
        Manager *manager;
        const VmmListener *listener;
        /* connection (loop only) */
        virConnectPtr conn;
        char *driver; /* "test", "qemu", "xen", … from the URI scheme */
        bool connecting;
        char **connect_waiters; /* qubes whose start waits for the connection attempt (lifecycle.c) */
        bool has_domain0;       /* the connection knows "Domain-0" (Xen): dom0's own figures */
        int lifecycle_cb_id;
        unsigned reconnect_delay_s;
        sd_event_source *reconnect_source;
        bool stopping; /* qubesd is going: nothing starts */
        /* runtime state */
        Hashmap *runtime; /* qube name -> VmRuntime* */
        sd_event_source *stats_source;
        bool stats_in_flight;
        uint64_t free_memory; /* bytes, as last asked (vmm_free_memory()); 0: unknown */
        bool host_changed;    /* the last connection changed the App's host figures */
        uint64_t host_cpu_ns_prev;
};

/* After (re)connecting: the list of active libvirt domains with their state and id. */
typedef struct VmmActive {
        char *name;
        int state; /* virDomainState */
        int id;
        uint64_t mem_kib, max_kib, cputime_ns;
        unsigned vcpus;
} VmmActive;

/* Who hears what libvirt says (lifecycle.c), on the loop. */
typedef struct VmmListener {
        /* a domain's lifecycle event (virDomainEventType and its detail) */
        void (*domain_event)(Manager *m, const char *name, int event, int detail);
        /* (re)connected: the domains active now */
        void (*connected)(Manager *m, VmmActive *active, size_t n);
        /* the connection attempt is over, connected or not */
        void (*settled)(Manager *m);
} VmmListener;

/* Start connecting (and reconnecting when the connection is lost). */
int vmm_init(Manager *m, const VmmListener *listener);
/* After the workers have stopped. */
void vmm_free(Manager *m);
static inline Vmm *vmm_of(Manager *m) {
        return m->vmm;
}
/* Queue a libvirt call; done() is always called on the loop (also when there is no connection).
 * Returns 0 or a negative error (then nothing is called). */
int vmm_submit(Manager *m, VmmWorkFn work, VmmDoneFn done, void *data);
bool vmm_connected(Manager *m);
/* The runtime record of a qube (created on demand), NULL on OOM. */
VmRuntime *vmm_runtime(Manager *m, const char *name);
/* The cached figures for GetCurrentState. */
void vmm_current_state(Manager *m, Domain *d, uint64_t *mem_kib, uint64_t *mem_static_max_kib, uint64_t *cputime);
/* Ask a worker for fresh virDomainGetInfo figures of a qube (the cache is updated later). */
void vmm_refresh_info(Manager *m, const char *name);
/* The hypervisor's free memory (virNodeGetFreeMemory, on a worker; kept in Vmm.free_memory):
 * done() gets the bytes, 0 when unknown. Returns 0 or a negative error (then done is not called). */
typedef void (*VmmFreeMemoryFn)(Manager *m, uint64_t bytes, void *userdata);
int vmm_free_memory(Manager *m, VmmFreeMemoryFn done, void *userdata);
/* "Start failed: …" and friends: the text of the last libvirt error of this thread. */
char *vmm_last_error(void);
int vmm_last_error_code(void);
/* The libvirt name of a qube. */
static inline const char *vmm_libvirt_name(const Domain *d) {
        return d->klass == QUBES_CLASS_ADMINVM ? "Domain-0" : d->name;
}
