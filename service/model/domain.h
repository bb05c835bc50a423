/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A qube (domain.c): its properties, features, tags, notes, volume config and device
 * assignments. Part of the model (model.h). */

#include "model/props.h"
#include "util/hashmap.h"

/* ---- domains ---------------------------------------------------------------------------- */

typedef struct Feature {
        char *name; /* key of Domain.features */
        char *value;
} Feature;

typedef struct VolumeConfig {
        char *name; /* root, private, volatile, kernel, … */
        /* key, value, …, NULL in XML attribute order (pool, vid, revisions_to_keep, …); packed
         * (volume_attrs_pack(): the strings in the array's allocation), freed with free() */
        char **attrs;
} VolumeConfig;

typedef struct DeviceAssignment {
        char *devclass;
        char *backend; /* backend qube name; NULL: any backend ("*" on the wire) */
        char *port_id;
        char *mode;     /* required | auto-attach | ask-to-attach */
        char *identity; /* device_id or "*" */
        char **options; /* key, value, …, NULL */
        /* devices: made by an Admin API Assign whose payload named no frontend_domain, which
         * upstream lists without one until qubes.xml is loaded again (never saved) */
        bool no_frontend;
} DeviceAssignment;
/* Free the fields (devices/: assignments taken out of a qube). */
void device_assignment_done(DeviceAssignment *a);

struct Domain {
        App *app;
        QubesClass klass;
        char *name; /* never changes after creation */
        int64_t qid;
        char uuid[37];
        /* The slots of the properties ever written on this qube (most stay at their defaults):
         * bit i of props_present for domain_props[i], props[] in index order, each slot its own
         * allocation (a pointer from domain_slot_make() holds until domain_free()). Read with
         * domain_slot(), write with domain_slot_make(). */
        uint64_t props_present;
        PropSlot **props;
        Hashmap *features; /* name -> Feature*, insertion order */
        Hashmap *tags;     /* tag -> (char*) the tag itself, owned */
        VolumeConfig *volumes;
        size_t n_volumes;
        DeviceAssignment *devices;
        size_t n_devices;
        char **device_classes;   /* classes with a <devices> element (kept for round trips) */
        const char *power_state; /* "Halted", "Running", … (static strings) */
        void *userdata;          /* owned by the bus layer */
        /* where this qube's <domain> element is in the durable file (App.durable_fd) as the last
         * save wrote it; xml_len 0: not known, or changed since (domain_mark_changed) */
        uint32_t xml_off, xml_len;
        struct Firewall *firewall; /* model/firewall.h: the rules, once loaded (firewall-dbus.c) */
        bool changed;              /* changed since the last commit (app_commit) */
};

Domain *domain_free(Domain *d);
/* The slot of p on d; a slot never written reads as not set (a shared empty slot). */
const PropSlot *domain_slot(const Domain *d, const PropDef *p);
/* The slot of p on d, made if it was not there; NULL when out of memory. */
PropSlot *domain_slot_make(Domain *d, const PropDef *p);
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
/* A copy of a NULL-terminated string array in one allocation (free() it), or NULL. */
char **volume_attrs_pack(char *const *strv);
/* A volume id (the vid of a volume, a kernel version): relative, components of
 * [A-Za-z0-9_.+-], no "." or "..", no empty component, at most 1024 bytes. */
bool volume_vid_valid(const char *vid);
