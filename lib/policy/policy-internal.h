/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "policy.h"

#include "util/macros.h"

/* A qube specification as written in a policy column or parameter (§1.4). */
typedef enum TokenKind {
        TOKEN_NAME,            /* a literal qube name or uuid:<UUID> (not dom0-ish) */
        TOKEN_ADMINVM,         /* dom0, @adminvm, uuid:00000000-… */
        TOKEN_ANYVM,           /* @anyvm */
        TOKEN_STAR,            /* * */
        TOKEN_DEFAULT,         /* @default */
        TOKEN_TYPE,            /* @type:VALUE */
        TOKEN_TAG,             /* @tag:VALUE */
        TOKEN_DISPVM,          /* @dispvm */
        TOKEN_DISPVM_TEMPLATE, /* @dispvm:VALUE */
        TOKEN_DISPVM_TAG,      /* @dispvm:@tag:VALUE */
} TokenKind;

typedef struct Token {
        TokenKind kind;
        char *text;        /* as written */
        const char *value; /* points into text: name, type, tag or template */
} Token;

typedef enum Action {
        ACTION_DENY,
        ACTION_ALLOW,
        ACTION_ASK,
} Action;

typedef struct Rule {
        char *service;  /* NULL: * */
        char *argument; /* NULL: *; otherwise starts with '+' */
        Token source, target;
        Action action;
        Token *redirect;       /* target= */
        Token *default_target; /* default_target= (ask) */
        char *user;
        bool notify, autostart;
        const char *file; /* owned by the policy's file list */
        unsigned line;
} Rule;

struct QubesPolicy {
        Rule *rules;
        size_t n_rules, n_alloc;
        char **files; /* every path read, owns the strings Rule.file points to */
        char **errors;
        bool oom;
};

struct QubesSystemInfo {
        QubesDomain **domains;
        size_t n, n_alloc;
        void *by_key;     /* Hashmap: name and "uuid:<UUID>" → QubesDomain */
        char **uuid_keys; /* storage for the "uuid:…" keys */
};

bool is_dom0ish(const char *s);
void token_done(Token *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(QubesPolicy *, qubes_policy_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QubesSystemInfo *, qubes_system_info_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QubesDomain *, qubes_domain_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QubesPolicyDecision *, qubes_policy_decision_free);
