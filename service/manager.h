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
        BUS_FD, /* a connection already open, to one peer (bus_fd): the fuzzer's; no bus name */
} BusKind;

typedef struct ManagerConfig {
        BusKind bus_kind;
        const char *bus_address;
        int bus_fd; /* BUS_FD */
        const char *state_dir;
        const char *libvirt_uri;
        bool debug;
        char **policy_dirs;         /* qrexec policy directories (NULL: the system's) */
        const char *private_socket; /* direct-connection socket for trusted clients, or NULL */
        uid_t *trusted_uids;        /* --trusted-user: besides root and our own user */
        size_t n_trusted_uids;
        gid_t private_socket_gid;         /* --private-socket-group: may connect (0660); 0: root only (0600) */
        unsigned private_max_connections; /* --private-max-connections (0: the default) */
        uint64_t private_timeout_usec;    /* --private-timeout: a handshake not done by then is dropped */
        const char *constraints_dir;      /* value constraints (constraints.c); NULL: the default */
        const char *config_dir;           /* /etc/qubes: backup profiles in backup/ (backup-dbus.c) */
        const char *qrexec_runner;        /* what calls a qube's qrexec service (backups); NULL: on PATH */
        bool init;                        /* --init: no qubes.xml yet means a new system, not an error */
} ManagerConfig;

#define QUBESD_PRIVATE_MAX_CONNECTIONS 1024u
#define QUBESD_PRIVATE_TIMEOUT_USEC (30u * 1000u * 1000u)
#define QUBESD_DEFAULT_CONSTRAINTS_DIR "/etc/qubes/constraints.d"

/* A peer that calls us: on the bus, by its unique name; on a private connection, by that
 * connection's description. */
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
        /* auth.c: what a local user sees is kept per (uid, login session): a bus peer names its
         * group, a group Caller ("view:<uid>:<session>") holds the answers and counts its peers */
        char *group;
        unsigned n_peers;
        /* auth.c: the peer's process (from the bus) and its start time (/proc, in clock ticks
         * since boot; 0: not known), polkit's unix-process subject for the questions about what
         * its group sees */
        pid_t pid;
        uint64_t start_time;
        bool ahead; /* the group's answers are being asked for ahead of any listing */
} Caller;

/* The parts, each declared in its own header; the Manager holds them. */
typedef struct BackupManager BackupManager;
typedef struct CallerFilter CallerFilter;
typedef struct Changes Changes;
typedef struct Constraints Constraints;
typedef struct Devices Devices;
typedef struct FirewallState FirewallState;
typedef struct Preload Preload;
typedef struct PrivateBus PrivateBus;
typedef struct StorageBus StorageBus;
typedef struct Vmm Vmm;
typedef struct Workers Workers;

/* The daemon: one per process, built by daemon.c. Every part reaches the others through it. */
typedef struct Manager {
        ManagerConfig config;
        sd_event *event;
        sd_bus *bus;
        App *app;
        uid_t own_uid;

        /* the bus layer */
        BusVtableCache vtables; /* the vtables built at start-up (class interfaces, the Manager's globals) */
        const BusObjectImplementation *tree; /* the object tree registered (manager-dbus.c), for snapshot.c */
        sd_bus **connections; /* besides the bus, the connections that serve the object tree and get every
                                  * signal (private-bus.c adds and removes them) */
        size_t n_connections;
        uint64_t event_seq;      /* the sequence number of the last Event */
        Changes *changes;        /* changes.c: coalesced PropertiesChanged */
        char *listing;           /* manager-dbus.c: ListDomainsText for callers who see every qube, until a
                                  * qube comes, goes or changes power state (NULL: to be built) */
        PrivateBus *private_bus; /* private-bus.c: the private socket and its connections */

        /* who calls, and what they may do */
        Hashmap *callers;      /* Caller key -> Caller* */
        unsigned auth_queries; /* auth.c: polkit queries in flight, all callers together */
        uint64_t auth_counter; /* auth.c: cancellation ids */
        /* auth.c: polkit answered a question about what the peer sees (caller-filter.c sends the
         * events that waited for it) */
        void (*view_answered)(struct Manager *m, const char *peer);
        CallerFilter *caller_filter; /* caller-filter.c: qrexec policy for per-caller listings and events */
        Constraints *constraints;    /* constraints.c: value constraints for qrexec callers */

        /* long work */
        Workers *workers; /* workers.c: the threads for blocking work */
        Hashmap *jobs;    /* job-dbus.c: job number (decimal) -> Job* */
        unsigned next_job;
        Vmm *vmm;            /* vmm.c: the libvirt connection, runtime state of qubes */
        StorageBus *storage; /* storage-dbus.c: clone tokens, the data operations in progress */
        Devices *devices;    /* devices-vmm.h: the devices there are, what is attached, hotplug */
        Preload *preload;    /* preload.c: preloaded disposables */
        /* lifecycle.c: the first attempt to reach the hypervisor is over (preload.c fills then) */
        void (*hypervisor_settled)(struct Manager *m);
        BackupManager *backup;   /* backup-dbus.c: the running backups */
        FirewallState *firewall; /* firewall-dbus.c: the expiry timer */
        int firewall_nwfilter;   /* firewall-vmm.c: 1 filters work, -1 the connection has none (said once), 0 unknown */
        Hashmap *filter_calls;   /* firewall-vmm.c: qube name -> its filter call in flight (one at a time) */

        /* commit.c: the group commit. Calls whose change is made wait here for the one save
         * that holds all of them (once per loop iteration, or before a call that is not such a
         * write runs, so that no reader sees a change that is not durable). */
        sd_bus_message **awaiting; /* the calls to answer after the next save */
        size_t n_awaiting, alloc_awaiting;
        sd_event_source *commit_source;
        bool trim_pending; /* commit.c: a malloc_trim() is due in a moment (floating timer) */
} Manager;

/* Make the changes made so far durable now (a transaction: on failure the model returns to the
 * last saved qubes.xml and the events are dropped). Returns 0 or fills err. */
int manager_save(Manager *m, QError *err);
/* The text of ListDomainsText changes (a qube came, went or changed power state). */
void manager_listing_changed(Manager *m);

/* The key of the peer that sent msg (Caller.unique_name), and its Caller if it has one. */
const char *manager_caller_key(sd_bus_message *msg);
Caller *manager_caller(Manager *m, sd_bus_message *msg);

/* The Event signal for one Qubes event on bus (not yet sent). destination NULL: the broadcast (on
 * the Domain or Manager interface); else the copy addressed to that peer (Subscription interface;
 * on a private connection the copy for that connection). */
int manager_new_event_signal(sd_bus *bus, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                             uint64_t seq, const char *destination, sd_bus_message **ret);
/* The "Event" signal, shared by the Manager and Domain interfaces. */
#define EVENT_SIGNAL_VTABLE \
        SD_BUS_SIGNAL_WITH_ARGS("Event", SD_BUS_ARGS("t", sequence, "s", subject, "s", name, "a(ss)", arguments), 0)

/* Signals go to the bus and to each private connection (but those that act for someone else,
 * having called SetCallerIdentity: they subscribe): one message per connection, built by send()
 * for that connection. The emit functions below do this for the usual signals. */
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
