/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Qubes properties (props.c): the tables (one row per property: type, classes, default, check,
 * help), the value of a property on a holder (a qube or the app) and the Admin API's rules for
 * values. Part of the model (model.h). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "qubes-error.h"
#include "qubes-names.h"
#include "util/macros.h"

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
/* The longest value of any property, in bytes (longer: QubesValueError, nothing changed). */
#define PROP_VALUE_MAX 1024

int prop_sanitize(const PropDef *p, const char *raw, size_t len, char **ret, QError *err);
/* Python-style bool words; returns 1, 0, or -EINVAL. */
int parse_bool_word(const char *s);
