/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The text forms of the Admin API device protocol (spec/devices.md §2, §3): device identities
 * (str, repr, qrexec argument), the key='value' serialisation with its quoting and character
 * rules, the assignment payload of Assign/Attach with upstream's checks, assignment modes and
 * interface codes. Pure functions without state: qubesd checks what reaches it over D-Bus with
 * them, and the shim parses and writes the wire with the very same code. */

#include <stdbool.h>
#include <stddef.h>

#include "qubes-error.h"
#include "util/strbuf.h"

/* What DeviceInfo.device_id says when the backend gives none. */
#define DEVICE_ID_UNKNOWN "0000:0000::?******"
/* The interface code of an unknown interface, and its qrexec-argument form. */
#define DEVICE_INTERFACE_UNKNOWN "?******"
#define DEVICE_INTERFACE_UNKNOWN_QARG "_______"
/* Most devices a class may have per backend, and most assignments per qube and class: bounds
 * for what a caller can make qubesd keep. */
#define DEVICE_MAX_ASSIGNMENTS 1024
/* Longest port_id, device_id, option name or value accepted from a caller. */
#define DEVICE_MAX_FIELD 1024

/* Python's repr() of a str: 'x', or "x" when x contains ' and no ", with \\, \n, \r, \t and
 * other control characters escaped as Python does (\xNN). malloc'ed, NULL on OOM. */
char *py_str_repr(const char *s);

/* The character sets of keys (letters, digits, !#$%&()*+,-./:;<>?@[\]^_{|}~) and of values (the
 * key set, every other ASCII punctuation character, and space). */
bool device_key_char_ok(unsigned char c);
bool device_value_char_ok(unsigned char c);
/* ProtocolError "Invalid chars in property name: {…}" / "…value: {…}" (the offending characters
 * as Python prints a set of one-character strings, in code point order) when s has a character
 * outside the set. */
int device_check_key(const char *s, QError *e);
int device_check_value(const char *s, QError *e);

/* Append one item key='value' (a space first unless b is empty), ' in the value written \'.
 * Checks both sets as upstream's writer does (ProtocolError). */
int device_append_item(StrBuf *b, const char *key, const char *value, QError *e);

/* Parse a key='value' list as upstream's unpack_properties: strict ASCII (else ProtocolError with
 * Python's UnicodeDecodeError text), stripped; every key and value checked; \' unescaped. *ret is
 * key, value, key, value, …, NULL in order of first appearance, a later duplicate replacing the
 * value (Python dict). Keys keep their leading '_' (options). An empty text gives an empty list. */
int device_parse_items(const char *data, size_t len, char ***ret, QError *e);
/* The value of key in such a list, or NULL. */
const char *device_items_get(char *const *items, const char *key);

/* A device as the protocol names it: backend qube ("*": none), port, device identity ("*": any). */
typedef struct DeviceIdent {
        char *backend;
        char *port_id;
        char *device_id;
} DeviceIdent;
void device_ident_done(DeviceIdent *d);
/* qrexec argument <backend>+<port_id>[+<device_id with ':' as '+'>], spec §2 steps 1-3. The
 * backend is not looked up here. -EINVAL (e: ProtocolError) when there is no '+'. */
int device_ident_from_qarg(const char *qarg, DeviceIdent *ret, QError *e);
/* <backend>+<port_id>:<device_id> (the first token of Assigned/Attached lines). */
char *device_ident_repr(const char *backend, const char *port_id, const char *device_id);
/* <backend>:<port_id>:<device_id> (events and messages). */
char *device_ident_str(const char *backend, const char *port_id, const char *device_id);
/* The qrexec argument form of a repr (':' -> '+', ?****** -> _______, '*' -> '_'). */
char *device_ident_qarg(const char *backend, const char *port_id, const char *device_id);

/* Assignment modes. */
bool device_mode_valid(const char *mode);      /* manual, ask-to-attach, auto-attach, required */
bool device_mode_assignable(const char *mode); /* the three that are stored */

/* An Assign/Attach payload (DeviceAssignment.deserialize) checked against the device the
 * argument named: backend_domain, port_id, devclass and device_id must match or be absent
 * (device_id is taken from the payload when the argument said '*'), no other keys than mode and
 * frontend_domain, mode one of the four (default manual). Every failure is a ProtocolError with
 * upstream's message. Options are returned without their '_'. */
typedef struct DeviceAssignmentData {
        char *device_id;
        char *mode;
        char *frontend; /* NULL: the payload named none */
        char **options; /* key, value, …, NULL (never NULL itself) */
} DeviceAssignmentData;
void device_assignment_data_done(DeviceAssignmentData *a);
int device_assignment_parse(const char *payload, size_t len, const char *devclass, const DeviceIdent *expected,
                            DeviceAssignmentData *ret, QError *e);

/* Interface codes (spec §2.1, §5). */
/* Whether code (7 characters) is a valid denied-list code: [bump*][0-9a-f*]{6}. */
bool device_interface_code_valid(const char *code);
/* The canonical devices_denied value of a code list: split in 7s (QubesValueError "Invalid
 * length of interfaces='…' (is N, expected multiple of 7)"), de-duplicated, sorted, joined, and
 * checked (QubesPropertyValueError with upstream's text). */
int device_denied_canonical(const char *codes, char **ret, QError *e);
/* The message of that QubesPropertyValueError (tests and the model share it). */
#define DEVICE_DENIED_FORMAT_ERROR                                                                     \
        "Interface code list should be in the form chhhhhhchhhhhh...,where c is one of \"b\", \"u\", " \
        "\"m\", \"p\", \"*\" and h is a hexdigit or \"*\"."
/* Split a payload of codes in 7s: QubesValueError on a bad length, ProtocolError "Duplicated
 * device interfaces in payload." on a repeat. *ret is a strv of the codes in payload order. */
int device_interfaces_split_payload(const char *payload, char ***ret, QError *e);
