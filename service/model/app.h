/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The app (app.c): every qube, the labels, the pools, the global properties, the events and who
 * hears them. Part of the model (model.h). */

#include <time.h>

#include "model/domain.h"
#include "model/props.h"
#include "util/hashmap.h"

/* ---- labels, pools ---------------------------------------------------------------------- */

struct Label {
        int index; /* 1..8 default, above 8 custom */
        char *name;
        char *color; /* "0xRRGGBB" */
        void *userdata;
};

struct Pool {
        char *name;
        char *driver;
        char **config; /* key, value, key, value, …, NULL: the XML attributes other than name/driver, in order */
};

/* ---- the app ---------------------------------------------------------------------------- */

typedef void (*AppEventCallback)(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv,
                                 void *userdata);
typedef struct AppListener {
        AppEventCallback fn;
        void *userdata;
} AppListener;

struct App {
        char *state_dir;          /* vm dirs (appvms/, vm-templates/) and notes live here */
        char *xml_path;           /* <state_dir>/qubes.xml */
        Hashmap *domains;         /* name -> Domain* */
        Hashmap *domains_by_uuid; /* uuid -> Domain* */
        Domain **by_qid;          /* QUBES_MAX_QID + 1 entries */
        Domain **sorted;          /* app_domains_sorted() order, NULL-terminated; NULL when stale */
        Label **labels;           /* sorted by index */
        size_t n_labels;
        Pool **pools; /* in qubes.xml order */
        size_t n_pools;
        PropSlot *props; /* n_global_props slots */
        /* host facts used by defaults (global maxmem, no_cpus, qube maxmem): the hypervisor's
         * node (virNodeGetInfo) once connected, this machine's until then */
        uint64_t host_memory_mib;
        unsigned host_cpus;
        /* the hypervisor can balance qubes' memory (Xen; upstream's is_memory_balancing_possible()
         * is false everywhere else, so every qube's maxmem defaults to 0 there) */
        bool memory_balancing;
        /* dom0's maximum memory as the hypervisor reports it (Xen's Domain-0), 0 when unknown */
        uint64_t dom0_maxmem_mib;
        /* who hears the events, in the order they were added */
        AppListener *listeners;
        size_t n_listeners;
        /* qubes.xml bookkeeping (qubes-xml.c) */
        struct timespec xml_mtime; /* mtime of the file as we last read or wrote it */
        bool xml_loaded;

        /* The transaction (app_txn_begin() … app_commit()): what is durable, what waits for it. */
        /* qubes.xml as last written or read, open: a rollback reads it back. The descriptor keeps
         * that inode readable after a later rename over the path (or removal, or chmod), so the
         * text need not be held in memory; -1 when nothing was read or written yet. */
        int durable_fd;
        char *durable_globals;      /* its labels, pools and global properties as we write them */
        bool txn_open;              /* events wait in queued until the commit */
        bool txn_changed;           /* the open transaction changed something (an event, a mark) */
        bool dispatching;           /* the commit's events are being heard */
        struct QueuedEvent *queued; /* the events of the open transaction, in order */
        size_t n_queued, alloc_queued;
        Domain **removed; /* qubes removed since the last commit: freed after it, back on a rollback */
        size_t n_removed;
        /* told after every commit and rollback (r < 0: rolled back, err says why) */
        void (*committed)(App *app, int r, const QError *err, void *userdata);
        void *committed_userdata;
};

#define QUBES_MAX_QID 10000

int app_new(const char *state_dir, App **ret);
App *app_free(App *app);
/* A fresh system: the 8 labels, pools "varlibqubes" (file, at state_dir) and "linux-kernel"
 * (state_dir/vm-kernels), dom0. Used when no qubes.xml exists yet. */
int app_init_default(App *app);
Domain *app_get_domain(const App *app, const char *name);
Domain *app_get_domain_by_uuid(const App *app, const char *uuid);
Domain *app_get_domain_by_qid(const App *app, int64_t qid);
Domain *app_dom0(const App *app);
/* Admin API reference: a name or "uuid:<uuid>" (spec admin-api.md 1.2). */
int app_resolve_domain(const App *app, const char *ref, Domain **ret, QError *err);
/* The error for a qube that does not exist (also given for one the caller may not see). */
int app_set_domain_not_found(QError *err, const char *ref);
/* dom0 first, then by the bytes of the name. malloc'ed NULL-terminated array. */
Domain **app_domains_sorted(const App *app, size_t *ret_n);
/* Forget the cached order (after a qube is added or removed). */
void app_domains_changed(App *app);
/* VM name rules (spec data-model.md 1.1), QubesValueError with upstream's messages. */
/* Add a domain object during load or create (no events, no validation beyond uniqueness). */
int app_add_domain(App *app, QubesClass klass, const char *name, int64_t qid, const char *uuid, Domain **ret);
/* admin.vm.Create: validates, allocates the qid, uuid, label, template, volume config,
 * adds created-by-<creator> (if creator non-NULL) and the automatic tags, emits domain-add. */
typedef struct CreateParams {
        QubesClass klass;
        const char *name;
        const char *label;
        const char *template_name; /* NULL: the class default (default_template) */
        const char *pool;          /* NULL or pool for all non-snapshot volumes */
        char **volume_pools;       /* volume, pool, …, NULL ("pool:<volume>=") */
        const char *creator;       /* calling qube, for created-by-<creator> */
} CreateParams;
int app_create_domain(App *app, const CreateParams *params, Domain **ret, QError *err);
/* The same in two steps, for a layer above that makes more of a new qube (storage: its volume
 * data) before the qube is announced: begin does everything but the event (the qube exists,
 * unannounced); then commit emits domain-add, or abort makes it vanish without a trace. */
int app_create_domain_begin(App *app, const CreateParams *params, Domain **ret, QError *err);
void app_create_domain_commit(App *app, Domain *d);
void app_create_domain_abort(App *app, Domain *d);
/* admin.vm.Remove: refused for dom0, installed_by_rpm, or while referenced. Emits
 * domain-pre-delete then domain-delete. Frees the domain. */
int app_remove_domain(App *app, Domain *d, QError *err);

/* Labels (upstream lookup: by index "label-N" or N, then by name). */
Label *app_find_label(const App *app, const char *name_or_index);
int app_create_label(App *app, const char *name, const char *color, Label **ret, QError *err);
int app_remove_label(App *app, const char *name, QError *err);
int app_add_label(App *app, int index, const char *name, const char *color); /* load */

Pool *app_find_pool(const App *app, const char *name);
int app_add_pool(App *app, const char *name, const char *driver, char *const *config); /* load */
/* Drop a pool from the app (no checks, no events: storage_pool_remove() does those). */
int app_remove_pool(App *app, const char *name);

/* Global properties. */
int app_property_get(App *app, const PropDef *p, PropValue *ret, QError *err);
int app_property_get_default(App *app, const PropDef *p, PropValue *ret, QError *err);
int app_property_set(App *app, const char *name, const char *raw, size_t len, QError *err);
int app_property_reset(App *app, const char *name, QError *err);

/* Listeners hear every event, in the order they were added (a subsystem adds itself when it
 * starts and removes itself when it stops). */
int app_add_listener(App *app, AppEventCallback fn, void *userdata);
void app_remove_listener(App *app, AppEventCallback fn, void *userdata);
/* Transactions. A change becomes visible as events only once qubes.xml holding it is durable:
 * between app_txn_begin() and the commit the events wait; app_commit() (qubes-xml.c) saves, then
 * sends them, or, when the save fails, returns the model exactly to the last durable qubes.xml
 * (app_rollback()) and drops them. A rollback also undoes changes made outside a transaction
 * that were never saved. */
void app_txn_begin(App *app);
int app_commit(App *app, QError *err);
void app_rollback(App *app);
/* After a commit, nothing waits: the removed qubes are freed, the queued events sent. */
void app_txn_done(App *app, bool committed);
/* Something is not durable yet (a qube changed, came or went, or a global changed). */
bool app_has_uncommitted(App *app);
/* Take a qube out of the app's indexes without freeing it, or put one (back) in (rollback). */
void app_forget_domain(App *app, Domain *d);
int app_adopt_domain(App *app, Domain *d);
/* A qube removed in the transaction being committed (listeners of domain-pre-delete look it up). */
Domain *app_get_domain_removed(const App *app, const char *name);
/* A qube as clients know it: while the commit's events are heard, a qube it removed is still
 * there (its objects are announced gone with their interfaces). */
Domain *app_get_domain_announced(const App *app, const char *name);

/* Events: kv holds n_kv/2 key/value pairs (a NULL value is sent as "None"). */
void app_emit_eventv(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv);
#define app_emit_event(app, subject, event, ...)                                   \
        app_emit_eventv(app, subject, event, (const char *const[]){ __VA_ARGS__ }, \
                        ELEMENTSOF(((const char *const[]){ __VA_ARGS__ })))
#define app_emit_event0(app, subject, event) app_emit_eventv(app, subject, event, NULL, 0)

DEFINE_TRIVIAL_CLEANUP_FUNC(App *, app_free);
#define _cleanup_app_free_ _cleanup_(app_freep)
