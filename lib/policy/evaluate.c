/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Request normalisation, first-match evaluation, ask candidates, and the non-interactive
 * filters qubesd applies (spec/qrexec-policy.md §1.4, §1.7 – §1.10, §4). */

#include <stdarg.h>

#include "policy-internal.h"
#include "util/strbuf.h"
#include "util/strv.h"

typedef struct Request {
        const char *service;
        const char *argument; /* starts with '+' */
        const char *source;
        const char *target; /* normalised intended target */
        const QubesSystemInfo *si;
} Request;

static const QubesDomain *lookup(const QubesSystemInfo *si, const char *name) {
        return qubes_system_info_lookup(si, name);
}

/* Two spellings of a qube compare equal when they are the same string, or when one of them is
 * a uuid: and both name the same qube. */
static bool names_equal(const QubesSystemInfo *si, const char *a, const char *b) {
        if (!a || !b)
                return false;
        if (streq(a, b))
                return true;
        if (!startswith(a, "uuid:") && !startswith(b, "uuid:"))
                return false;
        const QubesDomain *x = lookup(si, a), *y = lookup(si, b);
        return x && x == y;
}

static bool has_tag(const QubesDomain *d, const char *tag) {
        return d && strv_contains(d->tags, tag);
}

/* The template a @dispvm… request value stands for: the source's default_dispvm for @dispvm. */
static const char *dispvm_template_of(const Request *req, const char *value) {
        const char *t;
        if (streq(value, "@dispvm")) {
                const QubesDomain *src = lookup(req->si, req->source);
                return src ? src->default_dispvm : NULL;
        }
        t = startswith(value, "@dispvm:");
        if (t && *t != '@')
                return t;
        return NULL;
}

static bool token_match(const Token *t, const char *value, const Request *req, bool is_source) {
        const QubesDomain *d;
        const char *tmpl;

        switch (t->kind) {
        case TOKEN_ADMINVM:
                return is_dom0ish(value);
        case TOKEN_NAME:
                return !is_dom0ish(value) && names_equal(req->si, t->text, value);
        case TOKEN_ANYVM:
                return !is_dom0ish(value);
        case TOKEN_STAR:
                return true;
        case TOKEN_DEFAULT:
                return streq(value, "@default");
        case TOKEN_TYPE:
                /* only real keys: the keyword @adminvm is not a qube name */
                d = lookup(req->si, value);
                return d && streq_ptr(d->type, t->value);
        case TOKEN_TAG:
                d = lookup(req->si, value);
                return has_tag(d, t->value);
        case TOKEN_DISPVM:
                return streq(value, "@dispvm");
        case TOKEN_DISPVM_TEMPLATE:
                /* a source is always a plain name, never a disposable request */
                if (is_source)
                        return false;
                tmpl = dispvm_template_of(req, value);
                return tmpl && names_equal(req->si, t->value, tmpl);
        case TOKEN_DISPVM_TAG:
                if (is_source)
                        return false;
                tmpl = dispvm_template_of(req, value);
                d = tmpl ? lookup(req->si, tmpl) : NULL;
                return d && d->template_for_dispvms && has_tag(d, t->value);
        }
        return false;
}

static bool rule_match_but_target(const Rule *r, const Request *req) {
        return (!r->service || streq(r->service, req->service)) &&
               (!r->argument || streq(r->argument, req->argument)) && token_match(&r->source, req->source, req, true);
}

static bool rule_match(const Rule *r, const Request *req) {
        return rule_match_but_target(r, req) && token_match(&r->target, req->target, req, false);
}

/* §1.7: what the caller asked for, as policy sees it. NULL: refused (the call is denied). */
static const char *verify_intended_target(const QubesSystemInfo *si, const char *target) {
        const char *t;

        if (isempty(target))
                return "@default";
        if (is_dom0ish(target) || streq(target, "@default") || streq(target, "@dispvm"))
                return target;
        if ((t = startswith(target, "@dispvm:"))) {
                const QubesDomain *d = *t != '@' ? lookup(si, t) : NULL;
                return d && d->template_for_dispvms ? target : NULL;
        }
        if (target[0] == '@' || streq(target, "*"))
                return NULL;
        /* an unknown qube is not an error: policy may still redirect a @default request */
        return lookup(si, target) ? target : "@default";
}

QubesPolicyDecision *qubes_policy_decision_free(QubesPolicyDecision *d) {
        if (!d)
                return NULL;
        free(d->reason);
        free(d->rule_file);
        free(d->requested_target);
        free(d->target);
        free(d->target_uuid);
        free(d->user);
        free(d->service);
        strv_free(d->targets);
        free(d->default_target);
        return mfree(d);
}

int qubes_policy_split_call(const char *call, char **service, char **argument) {
        _cleanup_free_ char *s = NULL, *a = NULL;
        const char *plus = strchr(call, '+');

        s = plus ? strndup(call, (size_t) (plus - call)) : strdup(call);
        a = strdup(plus ? plus : "+");
        if (!s || !a)
                return -ENOMEM;
        *service = TAKE_PTR(s);
        *argument = TAKE_PTR(a);
        return 0;
}

static int deny(QubesPolicyDecision *d, bool notify, const char *fmt, ...) _printf_(3, 4);
static int deny(QubesPolicyDecision *d, bool notify, const char *fmt, ...) {
        va_list ap;
        char *s;

        d->result = QUBES_POLICY_DENY;
        d->notify = notify;
        d->target = mfree(d->target);
        d->target_uuid = mfree(d->target_uuid);
        d->user = mfree(d->user);
        d->service = mfree(d->service);
        d->targets = strv_free(d->targets);
        d->default_target = mfree(d->default_target);
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return -ENOMEM;
        free(d->reason);
        d->reason = s;
        return 0;
}

static bool allow_no_autostart(const QubesSystemInfo *si, const char *target) {
        const QubesDomain *d;
        if (is_dom0ish(target))
                return true;
        if (startswith(target, "@dispvm"))
                return false;
        d = lookup(si, target);
        return d && streq_ptr(d->power_state, "Running");
}

/* Add (or with remove, take away) one concrete target to the ask candidate set. */
static int set_update(char ***set, const char *value, bool remove) {
        char **l = *set;
        size_t n = strv_length(l);

        for (size_t i = 0; i < n; i++)
                if (streq(l[i], value)) {
                        if (remove) {
                                free(l[i]);
                                memmove(l + i, l + i + 1, (n - i) * sizeof(char *));
                        }
                        return 0;
                }
        return remove ? 0 : strv_extend(set, value);
}

static int dispvm_entry(char ***out, const char *tmpl) {
        char *s;
        if (asprintf(&s, "@dispvm:%s", tmpl) < 0)
                return -ENOMEM;
        return strv_consume(out, s);
}

/* All concrete targets a token stands for (§1.9, expansion); uuid spellings become names. */
static int token_expand(const Token *t, const QubesSystemInfo *si, char ***out) {
        const QubesDomain *d;
        int r = 0;

        switch (t->kind) {
        case TOKEN_NAME:
                d = lookup(si, t->text);
                return d ? strv_extend(out, d->name) : 0;
        case TOKEN_ADMINVM:
                return strv_extend(out, "@adminvm");
        case TOKEN_STAR:
        case TOKEN_ANYVM:
                for (size_t i = 0; i < si->n && r >= 0; i++) {
                        d = si->domains[i];
                        if (t->kind == TOKEN_STAR || !streq_ptr(d->type, "AdminVM"))
                                r = strv_extend(out, d->name);
                        if (r >= 0 && d->template_for_dispvms)
                                r = dispvm_entry(out, d->name);
                }
                return r < 0 ? r : strv_extend(out, "@dispvm");
        case TOKEN_DEFAULT:
                return 0;
        case TOKEN_TYPE:
        case TOKEN_TAG:
                for (size_t i = 0; i < si->n && r >= 0; i++) {
                        d = si->domains[i];
                        if (t->kind == TOKEN_TYPE ? streq_ptr(d->type, t->value) : has_tag(d, t->value))
                                r = strv_extend(out, d->name);
                }
                return r;
        case TOKEN_DISPVM:
                return strv_extend(out, "@dispvm");
        case TOKEN_DISPVM_TEMPLATE:
                d = lookup(si, t->value);
                return d && d->template_for_dispvms ? dispvm_entry(out, d->name) : 0;
        case TOKEN_DISPVM_TAG:
                for (size_t i = 0; i < si->n && r >= 0; i++) {
                        d = si->domains[i];
                        if (d->template_for_dispvms && has_tag(d, t->value))
                                r = dispvm_entry(out, d->name);
                }
                return r;
        }
        return 0;
}

static bool target_is_internal(const QubesSystemInfo *si, const char *target) {
        const char *t = startswith(target, "@dispvm:");
        const QubesDomain *d = lookup(si, t ? t : target);
        return d && d->internal;
}

/* §1.9: iterate from the last rule to the first so that the earliest rule decides, as first
 * match does. */
static int collect_targets_for_ask(const QubesPolicy *p, const Request *req, char ***ret) {
        _cleanup_strv_free_ char **set = NULL, **result = NULL;
        const QubesDomain *src = lookup(req->si, req->source);
        int r;

        for (size_t i = p->n_rules; i-- > 0;) {
                const Rule *rule = &p->rules[i];
                _cleanup_strv_free_ char **exp = NULL;

                if (!rule_match_but_target(rule, req))
                        continue;
                r = token_expand(rule->redirect ? rule->redirect : &rule->target, req->si, &exp);
                if (r < 0)
                        return r;
                STRV_FOREACH(e, exp) {
                        r = set_update(&set, *e, rule->action == ACTION_DENY);
                        if (r < 0)
                                return r;
                }
        }

        STRV_FOREACH(e, set) {
                _cleanup_free_ char *v = NULL;

                if (streq(*e, "@dispvm")) {
                        if (!src || !src->default_dispvm)
                                continue;
                        if (asprintf(&v, "@dispvm:%s", src->default_dispvm) < 0)
                                return -ENOMEM;
                } else if (streq(*e, "@adminvm"))
                        v = strdup("dom0");
                else
                        v = strdup(*e);
                if (!v)
                        return -ENOMEM;
                /* no loopback calls; internal qubes are never offered */
                if (names_equal(req->si, v, req->source) || (is_dom0ish(v) && is_dom0ish(req->source)) ||
                    target_is_internal(req->si, v))
                        continue;
                r = set_update(&result, v, false);
                if (r < 0)
                        return r;
        }
        if (!result && !(result = new0(char *, 1)))
                return -ENOMEM;
        *ret = TAKE_PTR(result);
        return 0;
}

/* A redirect as an ask candidate or default: the concrete spelling the ask dialog offers. */
static char *ask_target_value(const Request *req, const Token *t) {
        const QubesDomain *d;
        char *s;

        if (t->kind == TOKEN_ADMINVM)
                return strdup("dom0");
        if (t->kind == TOKEN_DISPVM) {
                d = lookup(req->si, req->source);
                if (!d || !d->default_dispvm)
                        return strdup("");
                return asprintf(&s, "@dispvm:%s", d->default_dispvm) < 0 ? NULL : s;
        }
        if (t->kind == TOKEN_DISPVM_TEMPLATE) {
                d = lookup(req->si, t->value);
                return asprintf(&s, "@dispvm:%s", d ? d->name : t->value) < 0 ? NULL : s;
        }
        d = lookup(req->si, t->text);
        return strdup(d ? d->name : t->text);
}

static int evaluate_allow(const Rule *rule, const Request *req, QubesPolicyDecision *d) {
        const char *target = req->target;
        const QubesDomain *dom;
        _cleanup_free_ char *dispvm = NULL;

        if (rule->redirect) {
                target = verify_intended_target(req->si, rule->redirect->text);
                if (!target)
                        return deny(d, true, "target %s of the rule at %s:%u is not a template for disposables",
                                    rule->redirect->text, rule->file, rule->line);
        }
        if (streq(target, "@default"))
                return deny(d, true,
                            "policy defines 'allow' action at %s:%u but no target is specified by caller or policy",
                            rule->file, rule->line);
        if (streq(target, "@dispvm")) {
                dom = lookup(req->si, req->source);
                if (!dom || !dom->default_dispvm)
                        return deny(d, true,
                                    "policy defines 'allow' action to @dispvm at %s:%u but no DispVM base is set for "
                                    "this VM",
                                    rule->file, rule->line);
                if (asprintf(&dispvm, "@dispvm:%s", dom->default_dispvm) < 0)
                        return -ENOMEM;
                target = dispvm;
        }
        if (!rule->autostart && !allow_no_autostart(req->si, target))
                return deny(d, false, "target %s is denied because it would require autostart", target);

        d->result = QUBES_POLICY_ALLOW;
        d->notify = rule->notify;
        d->autostart = rule->autostart;
        if (rule->user && !(d->user = strdup(rule->user)))
                return -ENOMEM;

        if (is_dom0ish(target)) {
                /* every spelling of the admin qube (@adminvm, its uuid:) is reported as dom0, as
                 * upstream's policy daemon answers */
                d->target = strdup("dom0");
                return d->target ? 0 : -ENOMEM;
        }

        const char *tmpl = startswith(target, "@dispvm:");
        dom = lookup(req->si, tmpl ? tmpl : target);
        if (!dom)
                return deny(d, true, "target %s does not exist", target);
        if (tmpl) {
                d->target = strdup(target);
                if (!d->target || asprintf(&d->target_uuid, "@dispvm:uuid:%s", strempty(dom->uuid)) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (streq_ptr(dom->type, "RemoteVM")) {
                /* a RemoteVM is reached through its relay qube and a transport service; the user
                 * belongs to the remote side and is not ours to choose */
                const QubesDomain *relay = dom->relayvm ? lookup(req->si, dom->relayvm) : NULL;
                if (!relay || isempty(dom->transport_rpc))
                        return deny(d, true, "RemoteVM %s has no usable relayvm/transport_rpc", dom->name);
                d->user = mfree(d->user);
                d->target = strdup(relay->name);
                if (!d->target || asprintf(&d->target_uuid, "uuid:%s", strempty(relay->uuid)) < 0 ||
                    asprintf(&d->service, "%s+%s+%s%s", dom->transport_rpc, dom->name, req->service, req->argument) < 0)
                        return -ENOMEM;
                return 0;
        }
        d->target = strdup(target);
        if (!d->target || asprintf(&d->target_uuid, "uuid:%s", strempty(dom->uuid)) < 0)
                return -ENOMEM;
        return 0;
}

static int evaluate_ask(const QubesPolicy *p, const Rule *rule, const Request *req, QubesPolicyDecision *d) {
        _cleanup_strv_free_ char **targets = NULL;
        int r;

        if (rule->redirect) {
                char *v = ask_target_value(req, rule->redirect);
                if (!v)
                        return -ENOMEM;
                if (isempty(v))
                        free(v);
                else if ((r = strv_consume(&targets, v)) < 0)
                        return r;
        } else {
                r = collect_targets_for_ask(p, req, &targets);
                if (r < 0)
                        return r;
        }
        if (!rule->autostart)
                for (size_t i = 0; targets && targets[i];) {
                        if (allow_no_autostart(req->si, targets[i]))
                                i++;
                        else
                                set_update(&targets, targets[i], true);
                }
        if (strv_length(targets) == 0)
                return deny(d, true, "policy defines 'ask' action at %s:%u but no target is available to choose from",
                            rule->file, rule->line);
        strv_sort(targets);

        d->result = QUBES_POLICY_ASK;
        d->notify = rule->notify;
        d->autostart = rule->autostart;
        if (rule->user && !(d->user = strdup(rule->user)))
                return -ENOMEM;
        if (rule->default_target) {
                _cleanup_free_ char *v = ask_target_value(req, rule->default_target);
                if (!v)
                        return -ENOMEM;
                /* a default the user could not pick is dropped, as upstream does (with a warning) */
                if (strv_contains(targets, v))
                        d->default_target = TAKE_PTR(v);
        }
        d->targets = TAKE_PTR(targets);
        return 0;
}

/* A qube's call to itself. Upstream refuses it when it carries out an allow ("loopback qrexec
 * connection not supported"), whatever the rule; a new disposable is never the caller. dom0's
 * own calls do not go through a qube's qrexec daemon (the "star" vectors keep dom0 -> dom0). */
static bool is_loopback(const Request *req, const char *target) {
        if (!target || startswith(target, "@dispvm") || is_dom0ish(target) || is_dom0ish(req->source))
                return false;
        return names_equal(req->si, target, req->source);
}

static int evaluate(const QubesPolicy *p, const QubesSystemInfo *si, const char *source, const char *target,
                    const char *service, const char *argument, bool execute, QubesPolicyDecision **ret) {

        _cleanup_(qubes_policy_decision_freep) QubesPolicyDecision *d = NULL;
        Request req = {
                .service = strempty(service),
                .argument = isempty(argument) ? "+" : argument,
                .source = strempty(source),
                .si = si,
        };
        int r;

        d = new0(QubesPolicyDecision, 1);
        if (!d)
                return -ENOMEM;

        if (!p || !qubes_policy_is_valid(p))
                r = deny(d, true, "policy is invalid, every request is denied");
        else if (!si)
                r = deny(d, true, "no system information");
        else if (req.argument[0] != '+')
                r = deny(d, true, "argument does not start with +");
        else if (!(req.target = verify_intended_target(si, target)))
                r = deny(d, true, "invalid target: '%s'", target);
        else {
                const Rule *rule = NULL;

                d->requested_target = strdup(req.target);
                if (!d->requested_target)
                        return -ENOMEM;
                for (size_t i = 0; i < p->n_rules && !rule; i++)
                        if (rule_match(&p->rules[i], &req))
                                rule = &p->rules[i];
                if (!rule)
                        r = deny(d, true, "no matching rule found");
                else {
                        d->rule_file = strdup(rule->file);
                        d->rule_line = rule->line;
                        if (!d->rule_file)
                                return -ENOMEM;
                        switch (rule->action) {
                        case ACTION_DENY:
                                r = deny(d, rule->notify, "denied by policy %s:%u", rule->file, rule->line);
                                break;
                        case ACTION_ALLOW:
                                r = evaluate_allow(rule, &req, d);
                                if (r >= 0 && execute && d->result == QUBES_POLICY_ALLOW &&
                                    is_loopback(&req, d->target)) {
                                        r = deny(d, true, "loopback qrexec connection not supported (%s to itself)",
                                                 req.source);
                                }
                                break;
                        default:
                                r = evaluate_ask(p, rule, &req, d);
                                break;
                        }
                        if (r >= 0 && !d->reason) {
                                if (asprintf(&d->reason, "%s by policy %s:%u",
                                             d->result == QUBES_POLICY_ALLOW ? "allowed" : "ask", rule->file,
                                             rule->line) < 0) {
                                        d->reason = NULL;
                                        r = -ENOMEM;
                                }
                        }
                }
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

int qubes_policy_evaluate(const QubesPolicy *p, const QubesSystemInfo *si, const char *source, const char *target,
                          const char *service, const char *argument, QubesPolicyDecision **ret) {
        return evaluate(p, si, source, target, service, argument, true, ret);
}

bool qubes_policy_check(const QubesPolicy *p, const QubesSystemInfo *si, const char *source, const char *target,
                        const char *service, const char *argument) {

        _cleanup_(qubes_policy_decision_freep) QubesPolicyDecision *d = NULL;

        /* the filters ask whether the policy allows, as upstream's evaluate() does: a qube may
         * list and hear about itself, the loopback refusal belongs to carrying a call out */
        if (evaluate(p, si, source, target, service, argument, false, &d) < 0)
                return false;
        return d->result == QUBES_POLICY_ALLOW;
}

bool qubes_policy_vm_list_allowed(const QubesPolicy *p, const QubesSystemInfo *si, const char *caller,
                                  const char *candidate, const char *arg) {

        _cleanup_free_ char *argument = NULL;

        if (asprintf(&argument, "+%s", strempty(arg)) < 0)
                return false;
        return qubes_policy_check(p, si, caller, candidate, "admin.vm.List", argument);
}

bool qubes_policy_event_allowed(const QubesPolicy *p, const QubesSystemInfo *si, const char *caller, const char *event,
                                const char *subject) {

        _cleanup_free_ char *argument = NULL;

        if (asprintf(&argument, "+%s", strempty(event)) < 0)
                return false;
        for (char *c = argument; *c; c++)
                if (*c == ':')
                        *c = '_';
        return qubes_policy_check(p, si, caller, subject ? subject : "@adminvm", "admin.Events", argument);
}

void qubes_policy_decision_print(const QubesPolicyDecision *d, FILE *f, bool verbose) {
        switch (d->result) {
        case QUBES_POLICY_ALLOW:
                fprintf(f, "result=allow\n");
                fprintf(f, "user=%s\n", d->user ? d->user : "DEFAULT");
                fprintf(f, "target=%s\n", d->target);
                if (d->target_uuid)
                        fprintf(f, "target_uuid=%s\n", d->target_uuid);
                fprintf(f, "autostart=%s\n", d->autostart ? "True" : "False");
                fprintf(f, "requested_target=%s\n", strempty(d->requested_target));
                if (d->service)
                        fprintf(f, "service=%s\n", d->service);
                break;
        case QUBES_POLICY_ASK:
                fprintf(f, "result=ask\n");
                fprintf(f, "targets=");
                STRV_FOREACH(t, d->targets)
                        fprintf(f, "%s%s", t == d->targets ? "" : " ", *t);
                fprintf(f, "\n");
                if (d->default_target)
                        fprintf(f, "default_target=%s\n", d->default_target);
                break;
        default:
                fprintf(f, "result=deny\n");
                break;
        }
        if (verbose) {
                fprintf(f, "notify=%s\n", d->notify ? "yes" : "no");
                if (d->rule_file)
                        fprintf(f, "rule=%s:%u\n", d->rule_file, d->rule_line);
                fprintf(f, "reason=%s\n", strempty(d->reason));
        }
}
