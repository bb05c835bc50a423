/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The names every layer checks the same way: qube classes, qube names, labels, tags and uuids
 * (spec/admin-api.md, spec/data-model.md). qubesd checks them before it changes anything; the shim
 * checks the ones upstream checks before it calls anything, with the same messages. */
#include "qubes-names.h"

#include <ctype.h>

#include "util/macros.h"

static const char *const class_names[_QUBES_CLASS_MAX] = {
        [QUBES_CLASS_ADMINVM] = "AdminVM",
        [QUBES_CLASS_APPVM] = "AppVM",
        [QUBES_CLASS_DISPVM] = "DispVM",
        [QUBES_CLASS_REMOTEVM] = "RemoteVM",
        [QUBES_CLASS_STANDALONEVM] = "StandaloneVM",
        [QUBES_CLASS_TEMPLATEVM] = "TemplateVM",
};

const char *qubes_class_to_string(QubesClass c) {
        if (c < 0 || c >= _QUBES_CLASS_MAX)
                return NULL;
        return class_names[c];
}

QubesClass qubes_class_from_string(const char *s) {
        if (!s)
                return _QUBES_CLASS_INVALID;
        for (int i = 0; i < _QUBES_CLASS_MAX; i++)
                if (streq(class_names[i], s))
                        return (QubesClass) i;
        return _QUBES_CLASS_INVALID;
}

bool qubes_class_has_template(QubesClass c) {
        return c == QUBES_CLASS_APPVM || c == QUBES_CLASS_DISPVM;
}

int validate_vm_name(const char *name, QError *err) {
        size_t len = strlen(name);

        if (len > 31)
                return qerror_set(err, QERR_VALUE, "VM name must be shorter than 32 characters");
        if ((name[0] >= '0' && name[0] <= '9') || name[0] == '_' || name[0] == '.' || name[0] == '-')
                return qerror_set(err, QERR_VALUE, "VM name cannot start with hyphen, underscore, dot or numbers");
        bool ok = len > 0 && ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'));
        for (size_t i = 1; ok && i < len; i++)
                ok = isascii((unsigned char) name[i]) && (isalnum((unsigned char) name[i]) || strchr("_.-", name[i]));
        if (!ok)
                return qerror_set(err, QERR_VALUE, "VM name contains illegal characters");
        if (streq(name, "Domain-0"))
                return qerror_set(err, QERR_VALUE, "VM name cannot be 'Domain-0'");
        if (streq(name, "none") || streq(name, "default"))
                return qerror_set(err, QERR_VALUE, "VM name cannot be 'none' nor 'default'");
        if (endswith(name, "-dm"))
                return qerror_set(err, QERR_VALUE, "VM name cannot end with -dm");
        return 0;
}

#define LABEL_SAFE_SET "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

int validate_label_name(const char *name, bool creating, QError *err) {
        if (isempty(name))
                return qerror_set(err, QERR_INVALID_LABEL, "Label name must be set");
        if (strspn(name, LABEL_SAFE_SET) != strlen(name))
                /* LABEL_SAFE_SET written out: xgettext does not expand macros */
                return qerror_set(err, QERR_INVALID_LABEL,
                                  "Label must be in safe set: "
                                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
        if (creating && strspn(name, "0123456789") == strlen(name))
                return qerror_set(err, QERR_INVALID_LABEL, "Label must not be a digit");
        /* Not an upstream rule: a label is a D-Bus object and travels in every listing, so a
         * caller may not make one too big to list (a 300 kB name broke ListLabels). */
        _Static_assert(LABEL_NAME_MAX == 64, "the message below says 64 (written out for xgettext)");
        if (creating && strlen(name) > LABEL_NAME_MAX)
                return qerror_set(err, QERR_INVALID_LABEL, "Label name must be at most 64 characters");
        return 0;
}

static bool py_isspace(char c) {
        /* what Python's str.strip() removes within ASCII */
        return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* The colour without surrounding whitespace (malloc'ed). */
char *label_color_strip(const char *color) {
        const char *s = color, *e = color + strlen(color);
        while (s < e && py_isspace(*s))
                s++;
        while (e > s && py_isspace(e[-1]))
                e--;
        return strndup(s, (size_t) (e - s));
}

int validate_label_color(const char *color, QError *err) {
        _cleanup_free_ char *c = NULL;

        if (isempty(color))
                return qerror_set(err, QERR_INVALID_LABEL_VALUE, "Label value must be set");
        for (const unsigned char *p = (const unsigned char *) color; *p; p++)
                if (*p >= 0x80)
                        return qerror_set(err, QERR_INVALID_LABEL_VALUE, "Label value must be encoded in ASCII");
        c = label_color_strip(color);
        if (!c)
                return -ENOMEM;
        if (strlen(c) != 8)
                return qerror_set(err, QERR_INVALID_LABEL_VALUE, "Label value must have length of 8");
        if (!startswith(c, "0x"))
                return qerror_set(err, QERR_INVALID_LABEL_VALUE, "Label value must start with: 0x");
        if (strspn(c + 2, "0123456789abcdefABCDEF") != 6)
                return qerror_set(err, QERR_INVALID_LABEL_VALUE,
                                  "Label value must only contain hexadecimal digits after prefix: "
                                  "0123456789abcdefABCDEF");
        return 0;
}

int validate_tag(const char *tag, QError *err) {
        if (isempty(tag))
                return qerror_set(err, QERR_INVALID_TAG, "tag cannot be empty");
        if (strlen(tag) > TAG_MAX)
                return qerror_set(err, QERR_INVALID_TAG, "tag longer than 255 characters");
        if (strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen(tag))
                return qerror_set(err, QERR_INVALID_TAG, "disallowed characters");
        return 0;
}

bool uuid_syntax_valid(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        }
        return true;
}
