/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "constraints.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "caller-filter.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* One rule per line: CALLER PROPERTY TARGET VALUE...
 *
 * Rules are kept in file order (files sorted by name); the first rule whose caller, property and
 * target match decides. A set of rules with any error refuses every constrained call (fail
 * closed, as the qrexec policy does): a typo must not silently lift a restriction. */

#define CONSTRAINTS_FILE_MAX (1024 * 1024)
#define CONSTRAINTS_RELOAD_DELAY_USEC (100 * 1000)

typedef enum TokenKind {
        TOKEN_NAME,    /* a qube by name (dom0 and @adminvm are the name "dom0") */
        TOKEN_TAG,     /* @tag:T */
        TOKEN_TYPE,    /* @type:T */
        TOKEN_ANYVM,   /* @anyvm: every qube but dom0 */
        TOKEN_NONE,    /* @none: the empty value (None) */
        TOKEN_DEFAULT, /* @default: reset */
        TOKEN_LITERAL, /* a value of a property that is not a qube reference, compared as sent */
} TokenKind;

typedef struct Token {
        TokenKind kind;
        char *arg;        /* name, tag or literal; NULL otherwise */
        QubesClass klass; /* TOKEN_TYPE */
} Token;

typedef struct Rule {
        Token caller;
        char *property;
        PropType type;
        Token target;
        Token *values;
        size_t n_values;
        char *file; /* for the log */
        unsigned line;
} Rule;

typedef struct RuleSet {
        Rule *rules;
        size_t n_rules;
        char **errors; /* "FILE:LINE: message"; non-empty: every constrained call is refused */
} RuleSet;

struct Constraints {
        char *dir;
        RuleSet *set; /* NULL: not read yet, or changed on disk since */
        sd_event_source *watch;
        sd_event_source *reload_timer;
};

static Constraints *state(Manager *m) {
        return m->constraints;
}

static void token_done(Token *t) {
        t->arg = mfree(t->arg);
}

static void rule_done(Rule *r) {
        token_done(&r->caller);
        token_done(&r->target);
        for (size_t i = 0; i < r->n_values; i++)
                token_done(&r->values[i]);
        free(r->values);
        free(r->property);
        free(r->file);
}

static RuleSet *rule_set_free(RuleSet *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_rules; i++)
                rule_done(&s->rules[i]);
        free(s->rules);
        strv_free(s->errors);
        free(s);
        return NULL;
}

/* ---- parsing ------------------------------------------------------------------------------ */

typedef enum TokenRole {
        ROLE_QUBE,      /* CALLER, TARGET */
        ROLE_VM_VALUE,  /* a VALUE of a qube reference property */
        ROLE_LIT_VALUE, /* a VALUE of any other property */
} TokenRole;

static bool valid_name(const char *s) {
        return streq(s, "dom0") || validate_vm_name(s, NULL) >= 0;
}

/* Returns NULL on success, else a static message. */
static const char *parse_token(const char *word, TokenRole role, Token *ret) {
        const char *arg;

        *ret = (Token){};
        if ((arg = startswith(word, "@tag:"))) {
                if (role == ROLE_LIT_VALUE)
                        return "@tag: only applies to properties that name a qube";
                if (validate_tag(arg, NULL) < 0)
                        return "invalid tag";
                ret->kind = TOKEN_TAG;
                ret->arg = strdup(arg);
                return ret->arg ? NULL : "out of memory";
        }
        if ((arg = startswith(word, "@type:"))) {
                if (role == ROLE_LIT_VALUE)
                        return "@type: only applies to properties that name a qube";
                ret->klass = qubes_class_from_string(arg);
                if (ret->klass == _QUBES_CLASS_INVALID)
                        return "unknown qube class after @type:";
                ret->kind = TOKEN_TYPE;
                return NULL;
        }
        if (streq(word, "@anyvm")) {
                if (role == ROLE_LIT_VALUE)
                        return "@anyvm only applies to properties that name a qube";
                ret->kind = TOKEN_ANYVM;
                return NULL;
        }
        if (streq(word, "@adminvm"))
                word = "dom0";
        else if (streq(word, "@none") || streq(word, "@default")) {
                if (role == ROLE_QUBE)
                        return "@none and @default are values, not qubes";
                ret->kind = streq(word, "@none") ? TOKEN_NONE : TOKEN_DEFAULT;
                return NULL;
        } else if (word[0] == '@')
                return "unknown keyword (expected @tag:, @type:, @anyvm, @adminvm, @none or @default)";
        if (role == ROLE_LIT_VALUE) {
                ret->kind = TOKEN_LITERAL;
        } else {
                if (!valid_name(word))
                        return "invalid qube name";
                ret->kind = TOKEN_NAME;
        }
        ret->arg = strdup(word);
        return ret->arg ? NULL : "out of memory";
}

/* The property's definition in any class that has it. */
static const PropDef *find_property(const char *name) {
        for (int c = 0; c < _QUBES_CLASS_MAX; c++) {
                const PropDef *p = domain_prop_find((QubesClass) c, name);
                if (p)
                        return p;
        }
        return NULL;
}

static int add_error(RuleSet *s, const char *file, unsigned line, const char *msg) {
        char *e = NULL;
        int r = line ? asprintf(&e, "%s:%u: %s", file, line, msg) : asprintf(&e, "%s: %s", file, msg);
        if (r < 0)
                return -ENOMEM;
        return strv_consume(&s->errors, e);
}

static int parse_line(RuleSet *s, const char *file, unsigned lineno, char *line) {
        _cleanup_free_ char **words = NULL;
        size_t n = 0;
        char *save = NULL, *w;
        const char *msg = NULL;
        Rule rule = {};

        char *hash = strchr(line, '#');
        if (hash)
                *hash = '\0';
        for (w = strtok_r(line, " \t\r\n\v\f", &save); w; w = strtok_r(NULL, " \t\r\n\v\f", &save)) {
                char **l = realloc(words, sizeof(char *) * (n + 1));
                if (!l)
                        return -ENOMEM;
                words = l;
                words[n++] = w;
        }
        if (n == 0)
                return 0;
        if (n < 4)
                return add_error(s, file, lineno, "expected CALLER PROPERTY TARGET VALUE...");

        const PropDef *p = find_property(words[1]);
        if (!p)
                return add_error(s, file, lineno, "unknown qube property");
        if (p->flags & (PROP_STATELESS | PROP_READONLY))
                return add_error(s, file, lineno, "the property cannot be set");

        msg = parse_token(words[0], ROLE_QUBE, &rule.caller);
        if (!msg)
                msg = parse_token(words[2], ROLE_QUBE, &rule.target);
        if (!msg) {
                rule.values = new0(Token, n - 3);
                if (!rule.values)
                        msg = "out of memory";
        }
        for (size_t i = 3; !msg && i < n; i++) {
                msg = parse_token(words[i], p->type == PROP_VM ? ROLE_VM_VALUE : ROLE_LIT_VALUE,
                                  &rule.values[rule.n_values]);
                if (!msg)
                        rule.n_values++;
        }
        if (!msg) {
                rule.property = strdup(p->name);
                rule.file = strdup(file);
                rule.type = p->type;
                rule.line = lineno;
                if (!rule.property || !rule.file)
                        msg = "out of memory";
        }
        if (msg) {
                rule_done(&rule);
                return streq(msg, "out of memory") ? -ENOMEM : add_error(s, file, lineno, msg);
        }
        Rule *rules = realloc(s->rules, sizeof(Rule) * (s->n_rules + 1));
        if (!rules) {
                rule_done(&rule);
                return -ENOMEM;
        }
        s->rules = rules;
        s->rules[s->n_rules++] = rule;
        return 0;
}

static int parse_file(RuleSet *s, int dir_fd, const char *name) {
        _cleanup_free_ char *line = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t cap = 0;
        unsigned lineno = 0;
        struct stat st;
        ssize_t len;
        int fd, r;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return add_error(s, name, 0, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONSTRAINTS_FILE_MAX) {
                close(fd);
                return add_error(s, name, 0, "not a regular file of at most 1 MiB");
        }
        f = fdopen(fd, "re");
        if (!f) {
                close(fd);
                return -ENOMEM;
        }
        while ((len = getline(&line, &cap, f)) >= 0) {
                lineno++;
                if (memchr(line, '\0', (size_t) len))
                        r = add_error(s, name, lineno, "NUL byte in line");
                else
                        r = parse_line(s, name, lineno, line);
                if (r < 0)
                        return r;
        }
        if (ferror(f))
                return add_error(s, name, 0, "read error");
        return 0;
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Read every *.conf in dir, sorted by name. A missing directory is an empty set. */
static int rule_set_load(const char *dir, RuleSet **ret) {
        RuleSet *s = new0(RuleSet, 1);
        _cleanup_strv_free_ char **names = NULL;
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (!s)
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                if (errno != ENOENT)
                        r = add_error(s, dir, 0, strerror(errno));
                goto done;
        }
        while ((errno = 0, de = readdir(d))) {
                if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf"))
                        continue;
                r = strv_extend(&names, de->d_name);
                if (r < 0)
                        break;
        }
        if (r >= 0 && errno != 0)
                r = add_error(s, dir, 0, strerror(errno));
        if (r >= 0 && names) {
                qsort(names, strv_length(names), sizeof(char *), name_cmp);
                for (char **n = names; *n && r >= 0; n++)
                        r = parse_file(s, dirfd(d), *n);
        }
        closedir(d);
done:
        if (r < 0) {
                rule_set_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

/* ---- state and reload ---------------------------------------------------------------------- */

static RuleSet *current(Manager *m) {
        Constraints *st = state(m);
        int r;

        if (!st)
                return NULL;
        if (!st->set) {
                r = rule_set_load(st->dir, &st->set);
                if (r < 0) {
                        log_warning_errno(r, "Cannot read the value constraints in %s: %m", st->dir);
                        return NULL; /* refused: see constraints_check */
                }
                for (char **e = st->set->errors; e && *e; e++)
                        log_warning("Value constraints: %s/%s", st->dir, *e);
                if (st->set->errors && st->set->errors[0])
                        log_warning("The value constraints in %s have errors: qubes other than dom0 may "
                                    "change no property of any qube until they are fixed.",
                                    st->dir);
                else
                        log_debug("Value constraints: %zu rules from %s.", st->set->n_rules, st->dir);
        }
        return st->set;
}

static int on_reload_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        (void) current(m); /* read now, so that errors reach the log without waiting for a call */
        return 0;
}

static int on_dir_changed(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        Manager *m = userdata;
        Constraints *st = state(m);
        int r;

        if (!st)
                return 0;
        /* forget the rules now (a call in the meantime reads the files again), and re-read them
         * shortly after the burst of events an editor or a package manager makes */
        st->set = rule_set_free(st->set);
        if (st->reload_timer) {
                r = sd_event_source_set_time_relative(st->reload_timer, CONSTRAINTS_RELOAD_DELAY_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(st->reload_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(m->event, &st->reload_timer, CLOCK_MONOTONIC,
                                               CONSTRAINTS_RELOAD_DELAY_USEC, 0, on_reload_timer, m);
        if (r < 0)
                log_debug_errno(r, "Cannot schedule re-reading the value constraints: %m");
        return 0;
}

int constraints_init(Manager *m) {
        Constraints *st = new0(Constraints, 1);
        int r;

        if (!st)
                return log_oom();
        m->constraints = st;
        st->dir = strdup(m->config.constraints_dir ?: QUBESD_DEFAULT_CONSTRAINTS_DIR);
        if (!st->dir)
                return log_oom();
        r = sd_event_add_inotify(m->event, &st->watch, st->dir,
                                 IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB |
                                         IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR,
                                 on_dir_changed, m);
        if (r < 0)
                log_debug_errno(r, "Not watching %s for value constraints: %m", st->dir);
        (void) current(m);
        return 0;
}

void constraints_done(Manager *m) {
        Constraints *st = state(m);
        if (!st)
                return;
        rule_set_free(st->set);
        sd_event_source_unref(st->watch);
        sd_event_source_unref(st->reload_timer);
        free(st->dir);
        free(st);
        m->constraints = NULL;
}

/* ---- matching ------------------------------------------------------------------------------ */

/* Does a qube token match the qube called name (q: its Domain, NULL if there is none)? */
static bool token_matches_qube(const Token *t, const char *name, const Domain *q) {
        switch (t->kind) {
        case TOKEN_NAME:
                return streq(t->arg, name);
        case TOKEN_TAG:
                return q && domain_has_tag(q, t->arg);
        case TOKEN_TYPE:
                return q && q->klass == t->klass;
        case TOKEN_ANYVM:
                return !streq(name, "dom0");
        default:
                return false;
        }
}

static const Rule *find_rule(RuleSet *s, App *app, const char *caller, const char *property, const Domain *target) {
        const Domain *cq = app_get_domain(app, caller);
        for (size_t i = 0; i < s->n_rules; i++) {
                const Rule *r = &s->rules[i];
                if (streq(r->property, property) && token_matches_qube(&r->caller, caller, cq) &&
                    token_matches_qube(&r->target, target->name, target))
                        return r;
        }
        return NULL;
}

/* Does the rule allow value (NULL: reset)? */
static bool rule_allows(const Rule *rule, App *app, const char *value) {
        const Domain *q = NULL;
        const char *name = value;

        if (rule->type == PROP_VM && !isempty(value)) {
                _cleanup_qerror_ QError ignored = {};
                Domain *d = NULL;
                if (app_resolve_domain(app, value, &d, &ignored) >= 0 && d) {
                        q = d;
                        name = d->name; /* a uuid: reference counts as the qube's name */
                }
        }
        for (size_t i = 0; i < rule->n_values; i++) {
                const Token *t = &rule->values[i];
                switch (t->kind) {
                case TOKEN_DEFAULT:
                        if (!value)
                                return true;
                        break;
                case TOKEN_NONE:
                        if (value && isempty(value))
                                return true;
                        break;
                case TOKEN_LITERAL:
                        if (value && streq(value, t->arg))
                                return true;
                        break;
                default:
                        if (!isempty(value) && token_matches_qube(t, name, q))
                                return true;
                }
        }
        return false;
}

/* The qube the caller acts for, or NULL for dom0 and local callers (never constrained). */
static const char *constrained_caller(Manager *m, sd_bus_message *msg) {
        const char *caller = msg ? auth_caller_qube(m, msg) : "dom0";
        return streq(caller, "dom0") ? NULL : caller;
}

int constraints_check(Manager *m, sd_bus_message *msg, Domain *d, const char *property, const char *value, QError *e) {
        const char *caller;
        RuleSet *s;

        if (!d || !state(m))
                return 0;
        caller = constrained_caller(m, msg);
        if (!caller)
                return 0;
        s = current(m);
        if (!s || (s->errors && s->errors[0])) {
                qerror_set(e, QERR_PERMISSION_DENIED,
                           "Changing %s of %s is refused: the value constraints cannot be read or have errors",
                           property, d->name);
                return -EPERM;
        }
        const Rule *rule = find_rule(s, m->app, caller, property, d);
        if (!rule || rule_allows(rule, m->app, value))
                return 0;
        log_debug("Value constraints: %s may not %s %s of %s%s%s (%s/%s:%u).", caller, value ? "set" : "reset",
                  property, d->name, value ? " to " : "", strempty(value), state(m)->dir, rule->file, rule->line);
        if (value)
                qerror_set(e, QERR_PERMISSION_DENIED,
                           "Setting %s of %s to '%s' is not allowed by the value constraints for %s", property, d->name,
                           value, caller);
        else
                qerror_set(e, QERR_PERMISSION_DENIED,
                           "Resetting %s of %s to its default is not allowed by the value constraints for %s", property,
                           d->name, caller);
        return -EPERM;
}

/* ---- Domain.GetAllowedValues ----------------------------------------------------------------- */

static int allowed_values(Manager *m, const char *caller, const Rule *rule, char ***ret) {
        _cleanup_strv_free_ char **l = new0(char *, 1);
        bool none = false, dflt = false;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < rule->n_values; i++) {
                none = none || rule->values[i].kind == TOKEN_NONE;
                dflt = dflt || rule->values[i].kind == TOKEN_DEFAULT;
        }
        if (none && strv_extend(&l, "") < 0)
                return -ENOMEM;
        if (rule->type == PROP_VM) {
                /* the qubes that match now and that the caller may see in its listings */
                FilterContext *f = filter_context_new(m, caller);
                _cleanup_free_ Domain **sorted = app_domains_sorted(m->app, NULL);
                int r = 0;
                if (!sorted || !f) {
                        filter_context_free(f);
                        return -ENOMEM;
                }
                for (Domain **q = sorted; *q && r >= 0; q++) {
                        if (!filter_domain_visible(f, *q))
                                continue;
                        for (size_t i = 0; i < rule->n_values; i++)
                                if (token_matches_qube(&rule->values[i], (*q)->name, *q)) {
                                        r = strv_extend(&l, (*q)->name);
                                        break;
                                }
                }
                filter_context_free(f);
                if (r < 0)
                        return r;
        } else
                for (size_t i = 0; i < rule->n_values; i++)
                        if (rule->values[i].kind == TOKEN_LITERAL && strv_extend(&l, rule->values[i].arg) < 0)
                                return -ENOMEM;
        if (dflt && strv_extend(&l, "@default") < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

int constraints_allowed_values(Manager *m, sd_bus_message *msg, Domain *d, const char *property, bool *ret_constrained,
                               char ***ret_values) {
        const char *caller = constrained_caller(m, msg);
        const Rule *rule = NULL;
        bool broken = false;

        *ret_values = NULL;
        if (caller) {
                RuleSet *s = current(m);
                broken = !s || (s->errors && s->errors[0]);
                if (!broken)
                        rule = find_rule(s, m->app, caller, property, d);
        }
        *ret_constrained = broken || rule;
        /* broken rules: nothing is allowed */
        if (!rule) {
                *ret_values = new0(char *, 1);
                return *ret_values ? 0 : -ENOMEM;
        }
        return allowed_values(m, caller, rule, ret_values);
}
