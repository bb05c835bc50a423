/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-names.h"
#include "bus-object.h"
#include "model/model.h"
#include "util/hashmap.h"

#define QUBESD_SYSTEM_PRIVATE_SOCKET "/run/qubesd/private"

typedef enum BusKind {
        BUS_SYSTEM,
        BUS_USER,
        BUS_ADDRESS,
} BusKind;

typedef struct ManagerConfig {
        BusKind bus_kind;
        const char *bus_address;
        const char *state_dir;
        const char *libvirt_uri;
        bool debug;
        char **policy_dirs;         /* qrexec policy directories (NULL: the system's) */
        const char *private_socket; /* direct-connection socket for trusted clients, or NULL */
        uid_t *trusted_uids;        /* --trusted-uid: besides root and our own user */
        size_t n_trusted_uids;
        const char *constraints_dir; /* value constraints (constraints.c); NULL: the default */
} ManagerConfig;

#define QUBESD_DEFAULT_CONSTRAINTS_DIR "/etc/qubes/constraints.d"

/* Pending PropertiesChanged for one object, flushed once per loop iteration. */
typedef struct DirtyObject {
        char *name;     /* qube name, or NULL for the Manager */
        uint8_t *props; /* one flag per domain_props[] / global_props[] entry */
        bool features, tags;
        bool power_state; /* PowerState (lifecycle) */
} DirtyObject;

typedef struct Caller {
        char *unique_name; /* key */
        char *qube;        /* identity declared with SetCallerIdentity, or NULL */
        uid_t uid;
        bool uid_known;
        bool error_details; /* error replies carry (message, format, fields) */
        /* auth.c: polkit answers and the CheckAuthorization calls in flight for this peer */
        Hashmap *verdicts; /* "action qube tags interactive" -> AuthVerdict* */
        Hashmap *queries;  /* same keys -> AuthQuery* */
        unsigned n_held;   /* calls held until their query is answered */
} Caller;

typedef struct Workers Workers;
typedef struct StorageBus StorageBus;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        App *app;
        ManagerConfig config;
        uint64_t event_seq;
        Hashmap *callers; /* unique bus name -> Caller* */
        Hashmap *dirty;   /* qube name or "" -> DirtyObject* */
        sd_event_source *flush_source;
        /* the vtables built at start-up (class interfaces, the Manager's global properties) */
        BusVtableCache vtables;
        /* the connections besides the bus that serve the object tree and get every signal
         * (private-bus.c adds and removes them) */
        sd_bus **connections;
        size_t n_connections;
        uid_t own_uid;
        unsigned auth_queries; /* auth.c: polkit queries in flight, all callers together */
        uint64_t auth_counter; /* auth.c: cancellation ids */
        Workers *workers;      /* the worker threads for blocking work (workers.h) */
        Hashmap *jobs;         /* job-dbus.c: job number (decimal) -> Job* */
        unsigned next_job;
        void *vmm;           /* Vmm* (vmm.h): libvirt connection, runtime state */
        StorageBus *storage; /* storage-dbus.c: clone tokens, the data operations in progress */
        void *caller_filter; /* caller-filter.c: qrexec policy for per-caller listings and events */
        void *constraints;   /* constraints.c: value constraints for qrexec callers */
        /* private-bus.c: direct connections */
        void *private_connections; /* PrivateConnection list */
        sd_event_source *private_source;
        char *private_path;
        uint64_t private_counter;
        /* manager-dbus.c: ListDomainsText for callers who see every qube, until a qube comes,
         * goes or changes power state (NULL: to be built) */
        char *listing;
} Manager;

int manager_new(const ManagerConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
int manager_run(Manager *m);

/* Save qubes.xml after a change. Returns 0 or fills err. */
int manager_save(Manager *m, QError *err);

/* Mark properties for the coalesced PropertiesChanged. name is a qube name or NULL for the
 * Manager; prop NULL means only features/tags flags. */
void manager_mark_dirty(Manager *m, const char *name, const PropDef *prop, bool features, bool tags);

/* Announce PowerState of a qube with the coalesced PropertiesChanged. */
void manager_mark_power_state_dirty(Manager *m, const char *name);
/* The text of ListDomainsText changes (a qube came, went or changed power state). */
void manager_listing_changed(Manager *m);
/* vmm.c: libvirt, the worker pool and the lifecycle objects; after the bus objects, before the
 * bus name. */
int vmm_init(Manager *m);
void vmm_free(Manager *m);
/* The cached memory/CPU figures of a qube (vmm.c). */
void vmm_current_state(Manager *m, Domain *d, uint64_t *mem_kib, uint64_t *mem_static_max_kib, uint64_t *cputime);

/* The Event signal for one Qubes event on bus (not yet sent). destination NULL: the broadcast (on
 * the Domain or Manager interface); else the copy addressed to that peer (Subscription interface;
 * on a private connection the copy for that connection). */
int manager_new_event_signal(sd_bus *bus, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                             uint64_t seq, const char *destination, sd_bus_message **ret);

/* The "Event" signal, shared by the Manager and Domain interfaces. */
#define EVENT_SIGNAL_VTABLE \
        SD_BUS_SIGNAL_WITH_ARGS("Event", SD_BUS_ARGS("t", sequence, "s", subject, "s", name, "a(ss)", arguments), 0)

/* Signals go to the bus and to each private connection: one message per connection, built by
 * send() for that connection. The emit functions below do this for the usual signals. */
typedef int (*BusSendFn)(sd_bus *bus, void *userdata);
void manager_send_everywhere(Manager *m, BusSendFn send, void *userdata, const char *what);
void manager_emit_properties_changed_strv(Manager *m, const char *path, const char *interface, char **names);
#define manager_emit_properties_changed(m, path, interface, ...) \
        manager_emit_properties_changed_strv(m, path, interface, (char *[]){ __VA_ARGS__, NULL })
void manager_emit_object_added(Manager *m, const char *path);
void manager_emit_object_removed(Manager *m, const char *path);
/* Connections besides the bus (private-bus.c). */
int manager_add_connection(Manager *m, sd_bus *bus);
void manager_remove_connection(Manager *m, sd_bus *bus);
/* The Manager, from inside a handler, getter, setter, find function or enumerator of the object
 * tree (the userdata of its registration). Take it on entry, before anything else: sd-bus forgets
 * it once the callback emits a signal built from vtables (PropertiesChanged, InterfacesAdded/
 * Removed); pass it on to helpers. */
static inline Manager *bus_manager(sd_bus *bus) {
        return bus_registration_userdata(bus);
}
static inline Manager *call_manager(sd_bus_message *msg) {
        return bus_manager(sd_bus_message_get_bus(msg));
}
/* The bus layer's listener of model events (Event signals, PropertiesChanged, ObjectManager). */
void manager_on_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv, void *userdata);

/* private-bus.c */
int private_bus_listen(Manager *m, const char *path);
void private_bus_done(Manager *m);

DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
