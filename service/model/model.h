/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Qubes data model: the app (global properties, labels, pools), its domains (qubes) with
 * properties, features, tags, notes, device assignments and volume config. This layer knows
 * nothing of D-Bus or of storage: it validates, mutates, and reports every change as a Qubes event
 * to the listeners on the App (app_add_listener()), with upstream's event names and keys (spec/admin-api.md §4). Persistence is in
 * qubes-xml.c. All functions return 0 (or a positive value where documented) on success and a
 * negative errno-style value on failure; when a QError* is given, a failure that a user caused
 * fills it with the Qubes exception class and the upstream message. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "qubes-error.h"
#include "qubes-names.h"
#include "util/hashmap.h"

typedef struct App App;
typedef struct Domain Domain;
typedef struct Label Label;
typedef struct Pool Pool;
typedef struct PropDef PropDef;

/* ---- classes ---------------------------------------------------------------------------- */

/* QubesClass and its names: lib/qubes-names.h */
#define CLASS_BIT(c) (1u << (QUBES_CLASS_##c))
#define CLASSES_QUBESVM (CLASS_BIT(APPVM) | CLASS_BIT(DISPVM) | CLASS_BIT(STANDALONEVM) | CLASS_BIT(TEMPLATEVM))
#define CLASSES_ALL ((1u << _QUBES_CLASS_MAX) - 1)

/* ---- properties ------------------------------------------------------------------------- */

typedef enum PropType {
        PROP_STR, /* also untyped upstream properties: default_kernel, default_pool* */
        PROP_INT,
        PROP_BOOL,
        PROP_VM, /* reference to a qube by name, or None */
        PROP_LABEL,
        PROP_UUID,
        PROP_IPV4,
        PROP_IPV6,
        PROP_FLOAT, /* start_time */
        PROP_POOL,  /* name of an existing pool (API type word: str) */
} PropType;

enum {
        PROP_WRITE_ONCE = 1 << 0, /* settable only while at default, never reset (name, qid, uuid, dispid) */
        PROP_NO_CLONE = 1 << 1,   /* not copied by clone */
        PROP_STATELESS = 1 << 2,  /* computed; never saved; cannot be set */
        PROP_READONLY = 1 << 3,   /* upstream 'forbidden' setter (updateable, global maxmem, ...) */
        PROP_NO_RESET = 1 << 4,   /* reset refused (template) */
};

struct PropDef {
        const char *name;      /* Qubes name: "netvm" */
        const char *dbus_name; /* D-Bus property name: "Netvm" */
        PropType type;
        uint8_t load_stage; /* 2 or 4 for qubes, 3 for globals; ordering is (stage, name) */
        uint16_t flags;
        uint32_t classes; /* qube properties: CLASS_BIT()s of the classes that have it; globals: 0 */
        const char *help; /* our own words; one paragraph, no markup */
        /* The default for this holder (a Domain* or the App*): *ret is malloc'ed, NULL for None.
         * Returns 0, -ENOENT when there is no default (Get then reads "default=True" with an
         * empty value, GetDefault answers empty), or another negative error with err set. NULL
         * means "no default". */
        int (*get_default)(const void *holder, const PropDef *p, char **ret, QError *err);
        /* Property-specific validation of an already sanitised value (NULL = None for VM
         * references). *canonical receives the value to store (malloc'ed; may stay NULL to
         * store None). NULL check means: store the sanitised value as is. */
        int (*check)(void *holder, const PropDef *p, const char *value, char **canonical, QError *err);
        /* Side effects after a change (old/new are the effective values, NULL = None). */
        void (*changed)(void *holder, const PropDef *p, const char *oldvalue, const char *newvalue);
};

/* The state of one property on one holder. */
typedef struct PropSlot {
        bool set;    /* explicitly set (saved in qubes.xml) */
        char *value; /* canonical string; NULL = None */
} PropSlot;

/* Result of reading a property. */
typedef struct PropValue {
        bool is_default;
        bool has_value; /* false when unset and without a default: reads as "" */
        char *value;    /* malloc'ed; NULL for None or no value */
} PropValue;
void prop_value_done(PropValue *v);
/* Read a property of a holder (Domain* or App*): the slot's value when set, else the default.
 * slot NULL reads the default only (GetDefault). */
int prop_read(const void *holder, const PropDef *p, const PropSlot *slot, PropValue *ret, QError *err);

/* Tables (props.c). Indexes are stable within one build and used for PropSlot arrays. */
extern const PropDef domain_props[];
extern const size_t n_domain_props;
extern const PropDef global_props[];
extern const size_t n_global_props;

/* Lookup by Qubes name; NULL when that class has no such property. */
const PropDef *domain_prop_find(QubesClass klass, const char *name);
const PropDef *domain_prop_find_dbus(QubesClass klass, const char *dbus_name);
const PropDef *global_prop_find(const char *name);
const PropDef *global_prop_find_dbus(const char *dbus_name);
static inline size_t domain_prop_index(const PropDef *p) {
        return (size_t) (p - domain_props);
}
static inline size_t global_prop_index(const PropDef *p) {
        return (size_t) (p - global_props);
}
/* The properties of a class, or the globals, in Admin API order ((load_stage, name)),
 * NULL-terminated; static storage. */
const PropDef *const *domain_props_of_class(QubesClass klass);
const PropDef *const *global_props_ordered(void);
/* Whether Set must refuse p on a holder of class c with QubesPropertyValueError "property
 * '<name>' on <Class> instance cannot be set" (upstream's 'forbidden' setter): PROP_READONLY and
 * PROP_STATELESS rows, and dom0's fixed name, qid, uuid, maxmem, icon and klass. Test it before
 * the write-once rule. Pass the class of any qube for globals (only the flags count there). */
bool prop_is_readonly_for(const PropDef *p, QubesClass c);
/* "str", "int", "bool", "vm" or "label": the Admin API type word. */
const char *prop_type_word(const PropDef *p);
/* The generic Admin API sanitisation of a Set value by type (spec admin-api.md 2.3.2 step 2),
 * on raw bytes: ASCII, bool words (canonical "True"/"False"), int() (canonical decimal),
 * UUID/IP parsing, printable characters for str, VM name rules for references ("" -> None).
 * *ret is malloc'ed (NULL for None). */
int prop_sanitize(const PropDef *p, const char *raw, size_t len, char **ret, QError *err);
/* Python-style bool words; returns 1, 0, or -EINVAL. */
int parse_bool_word(const char *s);

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

/* ---- domains ---------------------------------------------------------------------------- */

typedef struct Feature {
        char *name; /* key of Domain.features */
        char *value;
} Feature;

typedef struct VolumeConfig {
        char *name;   /* root, private, volatile, kernel, … */
        char **attrs; /* key, value, …, NULL in XML attribute order (pool, vid, revisions_to_keep, …) */
} VolumeConfig;

typedef struct DeviceAssignment {
        char *devclass;
        char *backend; /* backend qube name */
        char *port_id;
        char *mode;     /* required | auto-attach | ask-to-attach */
        char *identity; /* device_id or "*" */
        char **options; /* key, value, …, NULL */
} DeviceAssignment;

struct Domain {
        App *app;
        QubesClass klass;
        char *name; /* never changes after creation */
        int64_t qid;
        char uuid[37];
        PropSlot *props;   /* n_domain_props slots, only those of props of this class are used */
        Hashmap *features; /* name -> Feature*, insertion order */
        Hashmap *tags;     /* tag -> (char*) the tag itself, owned */
        VolumeConfig *volumes;
        size_t n_volumes;
        DeviceAssignment *devices;
        size_t n_devices;
        char **device_classes;   /* classes with a <devices> element (kept for round trips) */
        const char *power_state; /* "Halted", "Running", … (static strings) */
        void *userdata;          /* owned by the bus layer */
        char *xml_cache;         /* this qube's <domain> element as last serialised, or NULL */
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
        /* host facts used by defaults (global maxmem, no_cpus, qube maxmem) */
        uint64_t host_memory_mib;
        unsigned host_cpus;
        /* who hears the events, in the order they were added */
        AppListener *listeners;
        size_t n_listeners;
        /* qubes.xml bookkeeping (qubes-xml.c) */
        struct timespec xml_mtime; /* mtime of the file as we last read or wrote it */
        bool xml_loaded;
};

#define QUBES_MAX_QID 10000

/* app.c */
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
/* Events: kv holds n_kv/2 key/value pairs (a NULL value is sent as "None"). */
void app_emit_eventv(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv);
#define app_emit_event(app, subject, event, ...)                                   \
        app_emit_eventv(app, subject, event, (const char *const[]){ __VA_ARGS__ }, \
                        ELEMENTSOF(((const char *const[]){ __VA_ARGS__ })))
#define app_emit_event0(app, subject, event) app_emit_eventv(app, subject, event, NULL, 0)

/* domain.c */
Domain *domain_free(Domain *d);
/* Every change to what qubes.xml holds of a qube (properties, features, tags, devices, volume
 * config) must either emit an event on that qube (app_emit_eventv does this) or call this:
 * saving reuses each qube's last serialised element until then. */
void domain_mark_changed(Domain *d);
int domain_property_get(Domain *d, const PropDef *p, PropValue *ret, QError *err);
int domain_property_get_default(Domain *d, const PropDef *p, PropValue *ret, QError *err);
/* Full Admin API semantics: lookup (QubesNoSuchPropertyError), sanitise, read-only and
 * write-once rules, check, property-pre-set / property-set events, side effects. */
int domain_property_set(Domain *d, const char *name, const char *raw, size_t len, QError *err);
int domain_property_reset(Domain *d, const char *name, QError *err);
/* Store without events or checks (loading, creation). value NULL = None. */
int domain_property_store(Domain *d, const PropDef *p, const char *value);
/* Convenience for the model itself: effective value as a string (NULL = None/none). */
char *domain_property_string(Domain *d, const char *name);
Domain *domain_property_vm(Domain *d, const char *name); /* the referenced qube, or NULL */
bool domain_property_bool(Domain *d, const char *name);
int64_t domain_property_int(Domain *d, const char *name, int64_t fallback);
Domain *domain_template(Domain *d); /* NULL if the class has no template or it is unset */
Domain *domain_netvm(Domain *d);
bool domain_is_running(const Domain *d);

const char *domain_feature_get(Domain *d, const char *name); /* NULL when absent */
int domain_feature_set(Domain *d, const char *name, const char *value, QError *err);
int domain_feature_remove(Domain *d, const char *name, QError *err);
int domain_feature_store(Domain *d, const char *name, const char *value); /* load: no events */
typedef enum FeatureCheck {
        FEATURE_CHECK_TEMPLATE,
        FEATURE_CHECK_NETVM,
        FEATURE_CHECK_ADMINVM,
        FEATURE_CHECK_TEMPLATE_AND_ADMINVM,
} FeatureCheck;
/* *ret points into the model (valid until the next change). QubesFeatureNotFoundError if none. */
int domain_feature_check(Domain *d, const char *name, FeatureCheck how, const char **ret, QError *err);

bool domain_has_tag(const Domain *d, const char *tag);
int domain_tag_add(Domain *d, const char *tag, QError *err);    /* no-op if present */
int domain_tag_remove(Domain *d, const char *tag, QError *err); /* QubesTagNotFoundError */
int domain_tag_store(Domain *d, const char *tag);
const char **domain_tags_sorted(const Domain *d); /* malloc'ed array, strings owned by d */

/* Notes live in <state_dir>/<appvms|vm-templates>/<name>/notes.txt, as upstream. */
int domain_notes_get(Domain *d, char **ret, QError *err);
int domain_notes_set(Domain *d, const char *text, size_t len, QError *err);
char *domain_dir(const Domain *d); /* <state_dir>/appvms/<name> or vm-templates/<name> */

/* A qube's volume config by volume name, or NULL; its attributes (qubes.xml's <volume>: pool, vid,
 * revisions_to_keep, …); set keeps upstream's attribute order. */
VolumeConfig *domain_volume_config(Domain *d, const char *name);
const char *volume_config_get(const VolumeConfig *vc, const char *key);
int volume_config_set(VolumeConfig *vc, const char *key, const char *value);
/* A volume id (the vid of a volume, a kernel version): relative, components of
 * [A-Za-z0-9_.+-], no "." or "..", no empty component, at most 1024 bytes. */
bool volume_vid_valid(const char *vid);

/* system-info.c: the JSON document of internal.GetSystemInfo (qrexec policy input). */
char *app_system_info_json(App *app);

/* qubes-xml.c */
/* Load app->xml_path. A missing file is not an error: returns 0 and leaves the app empty
 * (the caller then runs app_init_default). A malformed file is refused with a message naming
 * the line and what is wrong, in err (QubesException). */
int app_load(App *app, QError *err);
/* Save durably and atomically (temp file, fsync, rename, fsync dir) under lockf, refusing if
 * someone else modified the file since we read or wrote it. */
int app_save(App *app, QError *err);
/* Serialise to a string (used by app_save, tests and benchmarks). */
char *app_to_xml(App *app);
/* Parse from memory (tests, fuzzing); path is used in messages only. */
int app_load_from_memory(App *app, const char *data, size_t len, const char *path, QError *err);

#include "util/macros.h"
DEFINE_TRIVIAL_CLEANUP_FUNC(App *, app_free);
#define _cleanup_app_free_ _cleanup_(app_freep)
