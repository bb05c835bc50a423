/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "model/model.h"
#include "util/hashmap.h"

#define QUBESD_BUS_NAME "org.qubes_os.Admin1"
#define QUBESD_SYSTEM_PRIVATE_SOCKET "/run/qubesd/private"
#define QUBESD_ROOT_PATH "/org/qubes_os/Admin1"
#define QUBESD_DOMAIN_PREFIX "/org/qubes_os/Admin1/domain"
#define QUBESD_LABEL_PREFIX "/org/qubes_os/Admin1/label"
#define QUBESD_IFACE_MANAGER "org.qubes_os.Admin1.Manager"
#define QUBESD_IFACE_DOMAIN "org.qubes_os.Admin1.Domain"
#define QUBESD_IFACE_QUBESVM "org.qubes_os.Admin1.QubesVM"
#define QUBESD_IFACE_LABEL "org.qubes_os.Admin1.Label"
/* The interface of the Event copies addressed to one subscriber (Manager.SubscribeEvents): not a
 * broadcast, so the bus policy can let everyone receive these and only administrators the rest. */
#define QUBESD_IFACE_SUBSCRIPTION "org.qubes_os.Admin1.Subscription"

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
        uid_t *trusted_uids;        /* --trusted-user: besides root and our own user */
        size_t n_trusted_uids;
        gid_t private_socket_gid;    /* --private-socket-group: may connect (0660); 0: root only (0600) */
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

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        App *app;
        ManagerConfig config;
        uint64_t event_seq;
        Hashmap *callers; /* unique bus name -> Caller* */
        Hashmap *dirty;   /* qube name or "" -> DirtyObject* */
        sd_event_source *flush_source;
        /* generated vtables (class interfaces and the Manager's global properties) */
        sd_bus_vtable *vtables[_QUBES_CLASS_MAX + 3];
        uid_t own_uid;
        unsigned auth_queries; /* auth.c: polkit queries in flight, all callers together */
        uint64_t auth_counter; /* auth.c: cancellation ids */
        void *vmm;             /* Vmm* (vmm.h): libvirt connection, workers, runtime state */
        void *caller_filter;   /* caller-filter.c: qrexec policy for per-caller listings and events */
        void *constraints;     /* constraints.c: value constraints for qrexec callers */
        /* private-bus.c: direct connections */
        void *private_connections;
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

/* Paths. */
char *domain_bus_path(const Domain *d);
/* The qube whose object path is path (exactly; not a sub-object), or NULL. */
Domain *domain_of_bus_path(App *app, const char *path);
char *label_bus_path(const Label *l);

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

/* The Event signal for one Qubes event (not yet sent). destination NULL: the broadcast (on the
 * Domain or Manager interface); else the copy addressed to that peer (Subscription interface). */
int manager_new_event_signal(Manager *m, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                             uint64_t seq, const char *destination, sd_bus_message **ret);
/* The Admin API event callback (installed as App.event_cb). */
void manager_on_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv, void *userdata);

/* private-bus.c */
int private_bus_listen(Manager *m, const char *path);
void private_bus_done(Manager *m);
/* Register every object on a bus connection (the bus, or a private connection). */
int manager_register_objects(Manager *m, sd_bus *bus);

/* bus objects (manager-dbus.c, domain-dbus.c, label-dbus.c) */
int manager_dbus_register(Manager *m, sd_bus *bus);
int domain_dbus_register(Manager *m, sd_bus *bus);
int label_dbus_register(Manager *m, sd_bus *bus);
/* The D-Bus interface that carries a property of a qube of class c. */
const char *domain_prop_interface(const PropDef *p, QubesClass c);
const char *qubes_class_interface(QubesClass c);

DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
