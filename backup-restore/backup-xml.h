/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The qubes.xml inside a v4 backup, read as upstream's restore reads it (qubesadmin's
 * backup/core3.py): labels by id and by name, each qube's class, properties, features, tags and
 * device assignments, the backup-* features that say where its data is, and the save_on_stop
 * volumes of its volume-config (so that a truncated archive is noticed). */

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

typedef struct BxDomain {
        char *klass;
        char *name;
        char *label; /* a label name */
        char *template;
        char **props;    /* name, value, …: the other <property> elements in order; value "" for None */
        char **features; /* name, value, … without backup-*; "" for a feature set to False */
        char **tags;
        size_t n_devices;
        char **volumes; /* names of its save_on_stop volumes */
        bool included;
        char *backup_path; /* "vm4/" or "dom0-home/<user>" */
        uint64_t backup_size;
} BxDomain;

typedef struct BxApp {
        BxDomain *domains;
        size_t n;
        char **globals; /* name, value, … */
} BxApp;

/* Parse; on failure *error says why (malloc'ed). */
int bx_parse(const char *data, size_t len, BxApp *ret, char **error);
void bx_done(BxApp *a);
BxDomain *bx_find(const BxApp *a, const char *name);
const char *bx_prop(const BxDomain *d, const char *name); /* NULL: not set */
bool bx_has_prop(const BxDomain *d, const char *name);
const char *bx_global(const BxApp *a, const char *name);

/* A qube's firewall.xml from the archive (version 2, what R4 writes): its rules in order, each a
 * NULL-terminated name, value, … list of its <property> elements, for Firewall.SetRules (qubesd
 * checks them). *ret is a NULL-terminated array; 0, or -EINVAL with *error set. */
int bx_parse_firewall(const char *data, size_t len, char ****ret, char **error);
void bx_firewall_free(char ***rules);
