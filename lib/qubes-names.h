/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "qubes-error.h"

/* Alphabetical, which is also admin.vmclass.List order. */
typedef enum QubesClass {
        QUBES_CLASS_ADMINVM,
        QUBES_CLASS_APPVM,
        QUBES_CLASS_DISPVM,
        QUBES_CLASS_REMOTEVM,
        QUBES_CLASS_STANDALONEVM,
        QUBES_CLASS_TEMPLATEVM,
        _QUBES_CLASS_MAX,
        _QUBES_CLASS_INVALID = -1,
} QubesClass;

const char *qubes_class_to_string(QubesClass c);
QubesClass qubes_class_from_string(const char *s);
/* Classes that have a 'template' property (AppVM, DispVM). */
bool qubes_class_has_template(QubesClass c);

/* Upstream's checks, with its messages (QubesValueError and friends). 0 or a filled err. */
int validate_vm_name(const char *name, QError *err);
/* creating: the stricter rules of admin.label.Create (not all digits, at most LABEL_NAME_MAX). */
#define LABEL_NAME_MAX 64
int validate_label_name(const char *name, bool creating, QError *err);
int validate_label_color(const char *color, QError *err);
/* The colour as stored: without the whitespace Python's strip() removes (malloc'ed). */
char *label_color_strip(const char *color);
#define TAG_MAX 255
int validate_tag(const char *tag, QError *err);
/* The canonical 8-4-4-4-12 lowercase form. */
bool uuid_syntax_valid(const char *s);
