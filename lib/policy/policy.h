/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libqubes-policy: the qrexec policy.d language (spec/qrexec-policy.md §1), the system information
 * it is evaluated against (§3) and the per-caller filters qubesd applies to admin.vm.List and
 * admin.Events (§4). No GLib: qubesd and the small tools link it alike (libc, lib/util and
 * Jansson for the system information document).
 *
 * Every function returning int returns 0 (or a positive count) on success and a negative errno on
 * failure. Objects are freed with their *_free() function, which accepts NULL and returns NULL. */

#include <stdbool.h>
#include <stddef.h>

#define QUBES_POLICY_DIR "/etc/qubes/policy.d"
#define QUBES_POLICY_RUN_DIR "/run/qubes/policy.d"
#define QUBES_POLICY_COMPAT_DIR "/etc/qubes-rpc/policy"
#define QUBES_POLICY_DOM0_UUID "00000000-0000-0000-0000-000000000000"

/* ---- System information (§3) ---- */

typedef struct QubesDomain {
        char *name;
        char *type;  /* class: AdminVM, AppVM, TemplateVM, StandaloneVM, DispVM, RemoteVM */
        char **tags; /* NULL-terminated, may be NULL */
        bool template_for_dispvms;
        char *default_dispvm; /* NULL: none */
        char *icon;
        char *label; /* the colour, e.g. 0xcc0000 */
        char *guivm;
        char *relayvm;       /* RemoteVM only */
        char *transport_rpc; /* RemoteVM only */
        bool internal;       /* the "internal" feature is truthy */
        char *power_state;   /* Running, Halted, ... */
        char *uuid;          /* lowercase, without the "uuid:" prefix */
} QubesDomain;

typedef struct QubesSystemInfo QubesSystemInfo;

QubesSystemInfo *qubes_system_info_new(void);
QubesSystemInfo *qubes_system_info_free(QubesSystemInfo *si);
/* Allocates an empty domain called name, to be filled in and passed to qubes_system_info_add(). */
QubesDomain *qubes_domain_new(const char *name);
QubesDomain *qubes_domain_free(QubesDomain *d);
/* Takes ownership of d (also on failure). -EEXIST if the name or the uuid is taken. */
int qubes_system_info_add(QubesSystemInfo *si, QubesDomain *d);
/* Look a qube up by name or by "uuid:<UUID>". NULL if there is none. */
const QubesDomain *qubes_system_info_lookup(const QubesSystemInfo *si, const char *name);
size_t qubes_system_info_size(const QubesSystemInfo *si);
/* The i-th qube in insertion order (JSON document order). */
const QubesDomain *qubes_system_info_get(const QubesSystemInfo *si, size_t i);

/* Parse the JSON document of §3 ({"domains": {name: {...}}}), strictly: malformed JSON, a
 * missing "domains" object or a field of the wrong type is -EINVAL with a message in *error
 * (which the caller frees; may be NULL). Unknown fields are ignored. */
int qubes_system_info_from_json(const char *json, size_t len, QubesSystemInfo **ret, char **error);
int qubes_system_info_load_file(const char *path, QubesSystemInfo **ret, char **error);

/* ---- Policy (§1) ---- */

typedef struct QubesPolicyConfig {
        /* Policy directories, highest priority first; a basename present in several is taken
         * from the first. NULL: { QUBES_POLICY_RUN_DIR, QUBES_POLICY_DIR }. */
        const char *const *dirs;
        /* Where !compat-4.0 reads legacy per-service files; NULL: QUBES_POLICY_COMPAT_DIR. */
        const char *compat_dir;
} QubesPolicyConfig;

typedef struct QubesPolicy QubesPolicy;

/* Load and parse every policy file. *ret is set whenever the return value is 0 or -EINVAL:
 * with -EINVAL the policy holds the errors ("FILE:LINE: message", in the order found; the parser
 * goes on after an error so that a linter sees them all) and denies every request, as upstream
 * does. Other negative values (-ENOMEM) leave *ret NULL. cfg may be NULL. */
int qubes_policy_load(const QubesPolicyConfig *cfg, QubesPolicy **ret);
/* Parse a single file's text as the only policy file (tests, policy editors). base_dir resolves
 * relative !include paths (NULL: the current directory); name is used in messages. */
int qubes_policy_load_string(const char *text, const char *name, const char *base_dir, QubesPolicy **ret);
QubesPolicy *qubes_policy_free(QubesPolicy *p);
bool qubes_policy_is_valid(const QubesPolicy *p);
/* NULL-terminated list of error messages (empty list when valid). */
char *const *qubes_policy_errors(const QubesPolicy *p);
size_t qubes_policy_n_rules(const QubesPolicy *p);

/* ---- Evaluation (§1.7 – §1.9) ---- */

typedef enum QubesPolicyResult {
        QUBES_POLICY_DENY,
        QUBES_POLICY_ALLOW,
        QUBES_POLICY_ASK,
} QubesPolicyResult;

typedef struct QubesPolicyDecision {
        QubesPolicyResult result;
        bool notify;     /* tell the GUI qube (deny notifies by default) */
        char *reason;    /* why, for logs; always set */
        char *rule_file; /* the matching rule, NULL if none matched */
        unsigned rule_line;
        char *requested_target; /* the normalised intended target (NULL if refused) */

        /* allow */
        char *target;      /* final target: dom0, a name, uuid:…, @dispvm:TEMPLATE, or the relay qube */
        char *target_uuid; /* uuid:<UUID>, @dispvm:uuid:<UUID>; NULL for dom0 */
        char *user;        /* NULL: DEFAULT */
        bool autostart;
        char *service; /* RemoteVM relay: <transport_rpc>+<remote>+<service><argument> */

        /* ask */
        char **targets;       /* candidates, byte-sorted, NULL-terminated */
        char *default_target; /* NULL: no default */
} QubesPolicyDecision;

QubesPolicyDecision *qubes_policy_decision_free(QubesPolicyDecision *d);

/* Split "SERVICE[+ARG]" at the first '+': *argument keeps its '+' and is "+" when there is none. */
int qubes_policy_split_call(const char *call, char **service, char **argument);

/* Evaluate one request. argument starts with '+' (NULL means "+"); target "" or NULL means
 * @default. A NULL policy or system info denies. Only -ENOMEM is an error: every refusal is a
 * decision with result QUBES_POLICY_DENY and a reason. */
int qubes_policy_evaluate(const QubesPolicy *p, const QubesSystemInfo *si, const char *source, const char *target,
                          const char *service, const char *argument, QubesPolicyDecision **ret);

/* Non-interactive check (§4): true only when the request would be allowed; ask, deny, an invalid
 * policy and out-of-memory all count as not allowed. argument as above. */
bool qubes_policy_check(const QubesPolicy *p, const QubesSystemInfo *si, const char *source, const char *target,
                        const char *service, const char *argument);

/* admin.vm.List filter: may caller see candidate? (request admin.vm.List +arg caller candidate;
 * arg is the call's argument without '+', normally NULL). */
bool qubes_policy_vm_list_allowed(const QubesPolicy *p, const QubesSystemInfo *si, const char *caller,
                                  const char *candidate, const char *arg);

/* admin.Events filter: may caller receive event about subject? subject is the qube the event is
 * about (for system events the "vm" argument's name), NULL for other system events (→ @adminvm).
 * The argument is '+' and the event name with every ':' replaced by '_'. */
bool qubes_policy_event_allowed(const QubesPolicy *p, const QubesSystemInfo *si, const char *caller, const char *event,
                                const char *subject);

/* Print a decision in the key=value format of §1.10, result= first (FILE*: stdio). With verbose,
 * also notify=, reason= and rule=. */
#include <stdio.h>
void qubes_policy_decision_print(const QubesPolicyDecision *d, FILE *f, bool verbose);
