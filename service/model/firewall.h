/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A qube's firewall (spec/firewall.md): an ordered list of rules, first match wins, an implicit
 * final drop. The rule grammar of admin.vm.firewall.Set, the Get form, the stored firewall.xml
 * form (and the R3 one read on load) live here and nowhere else: the shim passes bytes through
 * and qubesd's D-Bus methods call these. No D-Bus, no libvirt: unit tests and the fuzz target
 * link it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qubes-error.h"

typedef enum FirewallDstType {
        FW_DST_NONE,
        FW_DST_4,    /* dst4=: an IPv4 network, kept with its /len */
        FW_DST_6,    /* dst6=: an IPv6 network, kept with its /len */
        FW_DST_NAME, /* dsthost=: a DNS name */
} FirewallDstType;

typedef struct FirewallRule {
        char *action;  /* "accept" or "drop"; always set in a valid rule */
        char *proto;   /* "tcp", "udp", "icmp" or NULL */
        char *dsthost; /* normalised (bare IPs get /32 or /128), or NULL */
        FirewallDstType dsttype;
        bool has_ports;
        unsigned port_low, port_high;
        int icmptype;        /* -1: none */
        char *specialtarget; /* "dns" or NULL */
        char *expire;        /* the digits as given, or NULL */
        int64_t expire_at;   /* its value (UNIX seconds) */
        char *comment;       /* or NULL */
} FirewallRule;

typedef struct Firewall {
        FirewallRule *rules;
        size_t n;
} Firewall;

/* The keys of a rule in its stored (firewall.xml, D-Bus) form, in firewall.xml's order. */
extern const char *const firewall_stored_keys[8];

#define FIREWALL_MAX_RULES 4096
#define FIREWALL_MAX_TEXT (1024 * 1024)

void firewall_rule_done(FirewallRule *r);
Firewall *firewall_free(Firewall *fw);
DEFINE_TRIVIAL_CLEANUP_FUNC(Firewall *, firewall_free);

/* The list of a qube without firewall.xml: one rule action=accept. */
int firewall_new_default(Firewall **ret);
Firewall *firewall_copy(const Firewall *fw);
bool firewall_equal(const Firewall *a, const Firewall *b);

/* One rule line of admin.vm.firewall.Set (spec §3.1), the line without its separator. Errors:
 * QubesValueError with upstream's ValueError text. */
int firewall_rule_parse_line(const char *line, size_t len, FirewallRule *ret, QError *e);
/* A whole Set payload: ASCII (else ProtocolError "Rules contains non-ASCII characters"), split as
 * Python's splitlines, every line parsed before anything is returned. An empty payload is
 * ProtocolError "expected payload", as the Admin API answers it. */
int firewall_parse_text(const char *payload, size_t len, Firewall **ret, QError *e);
/* A rule from key/value pairs (kv: key, value, …, NULL) in the stored form (D-Bus SetRules):
 * the same checks as a line, the keys of firewall_stored_keys (and the aliases dst4, dst6,
 * dstname). */
int firewall_rule_from_pairs(char *const *kv, FirewallRule *ret, QError *e);
/* Append a rule (taken over; *r is cleared). */
int firewall_append(Firewall *fw, FirewallRule *r);

/* The admin.vm.firewall.Get reply: one line per rule not expired at now, each ending in \n. */
char *firewall_format_text(const Firewall *fw, int64_t now);
/* One rule's line in the Get form, without \n. */
char *firewall_rule_format_line(const FirewallRule *r);
/* The stored form of a rule as pairs key, value, …, NULL (firewall.xml order). */
char **firewall_rule_stored_pairs(const FirewallRule *r);

bool firewall_rule_expired(const FirewallRule *r, int64_t now);
/* Drop the rules expired at now; returns how many went. */
size_t firewall_drop_expired(Firewall *fw, int64_t now);
/* The earliest expiry of a rule not yet expired at now, or 0 if none. */
int64_t firewall_next_expiry(const Firewall *fw, int64_t now);

/* firewall.xml (spec §5). The document of the rules not expired at now, exactly upstream's
 * layout. */
char *firewall_to_xml(const Firewall *fw, int64_t now);
/* Parse a firewall.xml document (version 2, or the R3 QubesFirewallRules converted). */
int firewall_from_xml(const char *data, size_t len, Firewall **ret, QError *e);
/* Load path: a missing file gives the default list. */
int firewall_load(const char *path, Firewall **ret, QError *e);
/* Write path durably (temporary file, fsync, rename, directory fsync), mode 0664. Errors:
 * QubesException "firewall save error: <text>". */
int firewall_save(const char *path, const Firewall *fw, int64_t now, QError *e);
