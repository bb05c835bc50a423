/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The policy.d language (spec/qrexec-policy.md §1.1 – §1.6). Upstream stops at the first error
 * and denies everything; we deny everything too, but go on parsing so that a linter can report
 * every broken line in one run. */

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "policy-internal.h"
#include "util/strbuf.h"
#include "util/strv.h"

/* Upstream recurses without a limit and dies of RecursionError on an include loop; any real
 * layout (policy.d → include/admin-*-ro → include/admin-*-rwx) is three levels deep. */
#define MAX_INCLUDE_DEPTH 32
#define POLICY_SUFFIX ".policy"
#define MAX_POLICY_FILE_SIZE (16u * 1024u * 1024u)

typedef struct Loader {
        QubesPolicy *p;
        const char *compat_dir;
        unsigned depth;
} Loader;

static void add_error(QubesPolicy *p, const char *file, unsigned line, const char *fmt, ...) _printf_(4, 5);
static void add_error(QubesPolicy *p, const char *file, unsigned line, const char *fmt, ...) {
        _cleanup_strbuf_ StrBuf b = {};
        va_list ap;

        if (line > 0)
                strbuf_printf(&b, "%s:%u: ", file, line);
        else
                strbuf_printf(&b, "%s: ", file);
        va_start(ap, fmt);
        strbuf_vprintf(&b, fmt, ap);
        va_end(ap);
        char *s = strbuf_steal(&b);
        if (!s || strv_consume(&p->errors, s) < 0)
                p->oom = true;
}

static const char *intern_file(QubesPolicy *p, const char *path) {
        /* rules point at the path; several rules share one copy */
        size_t n = strv_length(p->files);
        if (n > 0 && streq(p->files[n - 1], path))
                return p->files[n - 1];
        if (strv_extend(&p->files, path) < 0) {
                p->oom = true;
                return NULL;
        }
        return p->files[n];
}

bool is_dom0ish(const char *s) {
        return s && (streq(s, "dom0") || streq(s, "@adminvm") || streq(s, "uuid:" QUBES_POLICY_DOM0_UUID));
}

void token_done(Token *t) {
        if (!t)
                return;
        free(t->text);
        *t = (Token){};
}

static void token_freep(Token **t) {
        if (*t) {
                token_done(*t);
                free(*t);
        }
}

static void rule_done(Rule *r) {
        free(r->service);
        free(r->argument);
        token_done(&r->source);
        token_done(&r->target);
        token_freep(&r->redirect);
        token_freep(&r->default_target);
        free(r->user);
}

QubesPolicy *qubes_policy_free(QubesPolicy *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_rules; i++)
                rule_done(&p->rules[i]);
        free(p->rules);
        strv_free(p->files);
        strv_free(p->errors);
        return mfree(p);
}

bool qubes_policy_is_valid(const QubesPolicy *p) {
        return p && !p->oom && strv_length(p->errors) == 0;
}

char *const *qubes_policy_errors(const QubesPolicy *p) {
        static char *const empty[] = { NULL };
        return p && p->errors ? p->errors : empty;
}

size_t qubes_policy_n_rules(const QubesPolicy *p) {
        return p ? p->n_rules : 0;
}

/* ---- tokens ---- */

enum {
        CTX_SOURCE = 1 << 0,
        CTX_TARGET = 1 << 1,
        CTX_REDIRECT = 1 << 2,
};

static const char *ctx_name(unsigned ctx) {
        return ctx == CTX_SOURCE ? "source" : ctx == CTX_TARGET ? "target" : "redirect";
}

/* Returns NULL on success, or a message (static or in *buf) on error. */
static const char *token_parse(const char *text, unsigned ctx, Token *ret, char **buf) {
        static const struct {
                const char *word;
                TokenKind kind;
                unsigned ctx;
        } exact[] = {
                { "@adminvm", TOKEN_ADMINVM, CTX_SOURCE | CTX_TARGET | CTX_REDIRECT },
                { "@anyvm", TOKEN_ANYVM, CTX_SOURCE | CTX_TARGET },
                { "@default", TOKEN_DEFAULT, CTX_TARGET },
                { "@dispvm", TOKEN_DISPVM, CTX_TARGET | CTX_REDIRECT },
        }, prefix[] = {
                { "@type:", TOKEN_TYPE, CTX_SOURCE | CTX_TARGET },
                { "@tag:", TOKEN_TAG, CTX_SOURCE | CTX_TARGET },
                { "@dispvm:", TOKEN_DISPVM_TEMPLATE, CTX_SOURCE | CTX_TARGET | CTX_REDIRECT },
                { "@dispvm:@tag:", TOKEN_DISPVM_TAG, CTX_SOURCE | CTX_TARGET },
        };
        Token t = {};

        if (isempty(text)) {
                if (asprintf(buf, "invalid empty %s token", ctx_name(ctx)) < 0)
                        return "out of memory";
                return *buf;
        }

        if (is_dom0ish(text))
                t.kind = TOKEN_ADMINVM;
        else if (streq(text, "*")) {
                if (!(ctx & (CTX_SOURCE | CTX_TARGET)))
                        goto invalid;
                t.kind = TOKEN_STAR;
        } else if (text[0] != '@')
                t.kind = TOKEN_NAME;
        else {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(exact) && !found; i++)
                        if ((exact[i].ctx & ctx) && streq(text, exact[i].word)) {
                                t.kind = exact[i].kind;
                                found = true;
                        }
                for (size_t i = 0; i < ELEMENTSOF(prefix) && !found; i++) {
                        const char *v;
                        if (!(prefix[i].ctx & ctx) || !(v = startswith(text, prefix[i].word)))
                                continue;
                        if (!*v) {
                                if (asprintf(buf, "invalid empty %s token: '%s'", prefix[i].word, text) < 0)
                                        return "out of memory";
                                return *buf;
                        }
                        /* a longer prefix (@dispvm:@tag:) may still take it */
                        if (*v == '@')
                                continue;
                        t.kind = prefix[i].kind;
                        found = true;
                }
                if (!found)
                        goto invalid;
        }

        t.text = strdup(text);
        if (!t.text)
                return "out of memory";
        t.value = t.text;
        switch (t.kind) {
        case TOKEN_TYPE:
                t.value += STRLEN("@type:");
                break;
        case TOKEN_TAG:
                t.value += STRLEN("@tag:");
                break;
        case TOKEN_DISPVM_TEMPLATE:
                t.value += STRLEN("@dispvm:");
                break;
        case TOKEN_DISPVM_TAG:
                t.value += STRLEN("@dispvm:@tag:");
                break;
        default:
                break;
        }
        *ret = t;
        return NULL;

invalid:
        if (asprintf(buf, "invalid %s token: '%s'", ctx_name(ctx), text) < 0)
                return "out of memory";
        return *buf;
}

/* ---- rules ---- */

static bool rpcname_char(char c, bool allow_plus) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_' || (allow_plus && c == '+');
}

static const char *validate_service_and_argument(const char *service, const char *argument, char **buf) {
        bool any_service = streq(service, "*");

        if (!any_service)
                for (const char *c = service; *c; c++)
                        if (!rpcname_char(*c, false)) {
                                if (asprintf(buf, "service '%s' contains invalid characters: '%c'", service, *c) < 0)
                                        return "out of memory";
                                return *buf;
                        }
        if (streq(argument, "*"))
                return NULL;
        for (const char *c = argument; *c; c++)
                if (!rpcname_char(*c, true)) {
                        if (asprintf(buf, "argument '%s' contains invalid characters: '%c'", argument, *c) < 0)
                                return "out of memory";
                        return *buf;
                }
        if (argument[0] != '+') {
                if (asprintf(buf, "argument '%s' does not start with +", argument) < 0)
                        return "out of memory";
                return *buf;
        }
        if (any_service)
                return "only * argument allowed for * service";
        return NULL;
}

static int policy_append_rule(QubesPolicy *p, Rule *r) {
        if (p->n_rules == p->n_alloc) {
                size_t n = p->n_alloc ? p->n_alloc * 2 : 64;
                Rule *a = realloc(p->rules, n * sizeof(Rule));
                if (!a)
                        return -ENOMEM;
                p->rules = a;
                p->n_alloc = n;
        }
        p->rules[p->n_rules++] = *r;
        *r = (Rule){};
        return 0;
}

static const char *const action_names[] = {
        [ACTION_DENY] = "deny",
        [ACTION_ALLOW] = "allow",
        [ACTION_ASK] = "ask",
};

/* Build a rule from its fields (service and argument come from the line, or from
 * !include-service for the old syntax); the first error, in upstream's order of checks, is
 * reported. */
static void rule_add(Loader *l, const char *service, const char *argument, char **fields, size_t n_fields,
                     const char *file, unsigned line) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_(rule_done) Rule r = {};
        const char *e;
        int action = -1;

        if (n_fields < 3) {
                add_error(l->p, file, line, "wrong number of fields");
                return;
        }
        e = validate_service_and_argument(service, argument, &buf);
        if (e)
                goto fail;
        if (!streq(service, "*") && !(r.service = strdup(service)))
                goto oom;
        if (!streq(argument, "*") && !(r.argument = strdup(argument)))
                goto oom;

        e = token_parse(fields[0], CTX_SOURCE, &r.source, &buf);
        if (e)
                goto fail;
        e = token_parse(fields[1], CTX_TARGET, &r.target, &buf);
        if (e)
                goto fail;

        for (size_t i = 0; i < ELEMENTSOF(action_names); i++)
                if (streq(fields[2], action_names[i]))
                        action = (int) i;
        if (action < 0) {
                if (asprintf(&buf, "invalid action: %s", fields[2]) < 0)
                        goto oom;
                e = buf;
                goto fail;
        }
        r.action = (Action) action;
        r.notify = r.action == ACTION_DENY;
        r.autostart = true;

        /* parameters: syntax and duplicates first, then booleans, then validity per action */
        const char *keys[16] = {}, *values[16] = {};
        size_t n_params = 0;
        for (size_t i = 3; i < n_fields; i++) {
                char *eq = strchr(fields[i], '=');
                if (!eq) {
                        if (asprintf(&buf, "invalid action parameter syntax: '%s'", fields[i]) < 0)
                                goto oom;
                        e = buf;
                        goto fail;
                }
                *eq = 0;
                for (size_t j = 0; j < n_params; j++)
                        if (streq(keys[j], fields[i])) {
                                if (asprintf(&buf, "parameter given twice: '%s'", fields[i]) < 0)
                                        goto oom;
                                e = buf;
                                goto fail;
                        }
                if (n_params == ELEMENTSOF(keys)) {
                        e = "too many action parameters";
                        goto fail;
                }
                keys[n_params] = fields[i];
                values[n_params++] = eq + 1;
        }
        for (size_t i = 0; i < n_params; i++)
                if ((streq(keys[i], "notify") || streq(keys[i], "autostart")) && !streq(values[i], "yes") &&
                    !streq(values[i], "no")) {
                        if (asprintf(&buf, "'%s' is '%s', but can be only 'yes' or 'no'", keys[i], values[i]) < 0)
                                goto oom;
                        e = buf;
                        goto fail;
                }
        for (size_t i = 0; i < n_params; i++) {
                const char *k = keys[i], *v = values[i];
                bool ok = streq(k, "notify") ||
                          (r.action != ACTION_DENY &&
                           (streq(k, "target") || streq(k, "user") || streq(k, "autostart"))) ||
                          (r.action == ACTION_ASK && streq(k, "default_target"));
                if (!ok) {
                        if (asprintf(&buf, "invalid parameter for action %s: '%s'", action_names[r.action], k) < 0)
                                goto oom;
                        e = buf;
                        goto fail;
                }
                if (streq(k, "notify"))
                        r.notify = streq(v, "yes");
                else if (streq(k, "autostart"))
                        r.autostart = streq(v, "yes");
                else if (streq(k, "user")) {
                        if (!isempty(v) && !(r.user = strdup(v)))
                                goto oom;
                } else {
                        Token **slot = streq(k, "target") ? &r.redirect : &r.default_target;
                        *slot = new0(Token, 1);
                        if (!*slot)
                                goto oom;
                        e = token_parse(v, CTX_REDIRECT, *slot, &buf);
                        if (e) {
                                free(*slot);
                                *slot = NULL;
                                goto fail;
                        }
                }
        }

        if (r.target.kind == TOKEN_DEFAULT && r.action == ACTION_ALLOW && !r.redirect) {
                e = "allow action for @default rule must specify target= option";
                goto fail;
        }

        r.file = intern_file(l->p, file);
        r.line = line;
        if (!r.file || policy_append_rule(l->p, &r) < 0)
                goto oom;
        return;

fail:
        add_error(l->p, file, line, "%s", e);
        return;
oom:
        l->p->oom = true;
}

/* ---- files ---- */

static int split_fields(char *line, char ***ret) {
        _cleanup_strv_free_ char **fields = NULL;
        char *s = line;

        for (;;) {
                while (*s && isspace((unsigned char) *s))
                        s++;
                if (!*s)
                        break;
                char *start = s;
                while (*s && !isspace((unsigned char) *s))
                        s++;
                char *f = strndup(start, (size_t) (s - start));
                if (!f || strv_consume(&fields, f) < 0)
                        return -ENOMEM;
        }
        if (!fields && !(fields = new0(char *, 1)))
                return -ENOMEM;
        *ret = TAKE_PTR(fields);
        return 0;
}

static char *strip(char *s) {
        size_t n;
        while (*s && isspace((unsigned char) *s))
                s++;
        n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                s[--n] = 0;
        return s;
}

static int read_text_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, alloc = 0;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        for (;;) {
                if (alloc - len < 4096) {
                        if (alloc >= MAX_POLICY_FILE_SIZE)
                                return -EFBIG;
                        alloc = alloc ? alloc * 2 : 8192;
                        char *n = realloc(buf, alloc + 1);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                }
                size_t k = fread(buf + len, 1, alloc - len, f);
                len += k;
                if (k == 0) {
                        if (ferror(f))
                                return -EIO;
                        break;
                }
        }
        if (!buf && !(buf = strdup("")))
                return -ENOMEM;
        buf[len] = 0;
        /* a NUL would silently cut a line short; upstream refuses such a file too (decode error) */
        if (strlen(buf) != len)
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Include paths are relative to the top-level policy directory, not to the including file. */
static char *resolve_path(const char *base_dir, const char *path) {
        char *s;
        if (path[0] == '/')
                return strdup(path);
        if (asprintf(&s, "%s/%s", base_dir ? base_dir : ".", path) < 0)
                return NULL;
        return s;
}

static bool is_regular_file(const char *path) {
        struct stat st;
        return stat(path, &st) >= 0 && S_ISREG(st.st_mode);
}

static bool is_directory(const char *path) {
        struct stat st;
        return stat(path, &st) >= 0 && S_ISDIR(st.st_mode);
}

static void load_file(Loader *l, const char *path, const char *base_dir, bool old_syntax, const char *service,
                      const char *argument, const char *from_file, unsigned from_line);

static void load_text(Loader *l, char *text, const char *path, const char *base_dir, bool old_syntax,
                      const char *service, const char *argument);

static void handle_include(Loader *l, const char *included, const char *base_dir, bool old_syntax, const char *service,
                           const char *argument, const char *file, unsigned line) {
        _cleanup_free_ char *path = resolve_path(base_dir, included);
        if (!path) {
                l->p->oom = true;
                return;
        }
        if (!is_regular_file(path)) {
                add_error(l->p, file, line, "not a file: %s", path);
                return;
        }
        load_file(l, path, base_dir, old_syntax, service, argument, file, line);
}

/* The files of a directory that policy considers (§1.1), sorted; bad names are errors. */
static int list_policy_dir(Loader *l, const char *dir, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        DIR *d = opendir(dir);
        struct dirent *de;
        int r = 0;

        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *full = NULL;
                const char *n = de->d_name;

                if (n[0] == '.' || !endswith(n, POLICY_SUFFIX))
                        continue;
                if (asprintf(&full, "%s/%s", dir, n) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (!is_regular_file(full))
                        continue;
                bool bad = false;
                for (const char *c = n; *c; c++)
                        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || *c == '_' || *c == '.' ||
                              *c == '-'))
                                bad = true;
                if (bad) {
                        add_error(l->p, full, 0, "invalid filename (only 0-9 a-z _ . - are allowed)");
                        continue;
                }
                if (strv_extend(&names, n) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        if (r < 0)
                return r;
        if (!names && !(names = new0(char *, 1)))
                return -ENOMEM;
        strv_sort(names);
        *ret = TAKE_PTR(names);
        return 0;
}

static void handle_include_dir(Loader *l, const char *included, const char *base_dir, const char *file, unsigned line) {
        _cleanup_free_ char *path = resolve_path(base_dir, included);
        _cleanup_strv_free_ char **names = NULL;
        int r;

        if (!path) {
                l->p->oom = true;
                return;
        }
        if (!is_directory(path)) {
                add_error(l->p, file, line, "not a directory: %s", path);
                return;
        }
        r = list_policy_dir(l, path, &names);
        if (r < 0) {
                add_error(l->p, file, line, "cannot read directory %s: %s", path, strerror(-r));
                return;
        }
        STRV_FOREACH(n, names) {
                _cleanup_free_ char *full = NULL;
                if (asprintf(&full, "%s/%s", path, *n) < 0) {
                        l->p->oom = true;
                        return;
                }
                load_file(l, full, base_dir, false, NULL, NULL, file, line);
        }
}

typedef struct CompatEntry {
        char *name, *service, *argument; /* argument NULL: the argument-less file */
} CompatEntry;

static int compat_cmp(const void *a, const void *b) {
        const CompatEntry *x = a, *y = b;
        int c = strcmp(x->service, y->service);
        if (c != 0)
                return c;
        /* argument-specific files first, the catch-all file of the service last */
        if (!x->argument != !y->argument)
                return x->argument ? -1 : 1;
        return strcmp(x->name, y->name);
}

static void handle_compat40(Loader *l, const char *file, unsigned line) {
        const char *dir = l->compat_dir ? l->compat_dir : QUBES_POLICY_COMPAT_DIR;
        CompatEntry *entries = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;

        d = opendir(dir);
        if (!d) {
                /* no legacy files at all is the normal case on a fresh system */
                if (errno != ENOENT)
                        add_error(l->p, file, line, "cannot read %s: %s", dir, strerror(errno));
                return;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *full = NULL;
                const char *nm = de->d_name;
                bool bad = false;

                if (nm[0] == '.' || endswith(nm, ".rpmsave") || endswith(nm, ".rpmnew") || endswith(nm, ".swp"))
                        continue;
                for (const char *c = nm; *c; c++)
                        if (!rpcname_char(*c, true))
                                bad = true;
                if (bad || asprintf(&full, "%s/%s", dir, nm) < 0 || !is_regular_file(full))
                        continue;
                CompatEntry *a = realloc(entries, (n + 1) * sizeof(CompatEntry));
                if (!a)
                        goto oom;
                entries = a;
                CompatEntry *e = &entries[n];
                *e = (CompatEntry){};
                n++;
                e->name = strdup(nm);
                if (!e->name)
                        goto oom;
                if (qubes_policy_split_call(nm, &e->service, &e->argument) < 0)
                        goto oom;
                if (!strchr(nm, '+'))
                        e->argument = mfree(e->argument);
        }
        closedir(d);
        d = NULL;
        if (n > 0)
                qsort(entries, n, sizeof(CompatEntry), compat_cmp);

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *full = NULL;
                const char *arg = entries[i].argument ? entries[i].argument : "*";
                _cleanup_free_ char *buf = NULL;
                const char *e = validate_service_and_argument(entries[i].service, arg, &buf);

                if (asprintf(&full, "%s/%s", dir, entries[i].name) < 0)
                        goto oom;
                if (e) {
                        add_error(l->p, full, 0, "%s", e);
                        continue;
                }
                load_file(l, full, dir, true, entries[i].service, arg, file, line);
                if (entries[i].argument) {
                        /* an argument-specific legacy file was complete: nothing below may allow */
                        char f1[] = "@anyvm", f2[] = "@anyvm", f3[] = "@adminvm", f4[] = "deny";
                        char *deny1[] = { f1, f2, f4, NULL }, *deny2[] = { f1, f3, f4, NULL };
                        rule_add(l, entries[i].service, arg, deny1, 3, full, 0);
                        rule_add(l, entries[i].service, arg, deny2, 3, full, 0);
                }
        }
        goto done;
oom:
        l->p->oom = true;
done:
        if (d)
                closedir(d);
        for (size_t i = 0; i < n; i++) {
                free(entries[i].name);
                free(entries[i].service);
                free(entries[i].argument);
        }
        free(entries);
}

static void load_text(Loader *l, char *text, const char *path, const char *base_dir, bool old_syntax,
                      const char *service, const char *argument) {
        unsigned lineno = 0;
        char *next = text;

        while (next) {
                _cleanup_strv_free_ char **fields = NULL;
                _cleanup_free_ char *copy = NULL;
                char *line = next;

                next = strchr(next, '\n');
                if (next)
                        *next++ = 0;
                else if (!*line)
                        break;
                lineno++;

                line = strip(line);
                if (!*line || line[0] == '#')
                        continue;

                if (old_syntax) {
                        /* the compatibility substitutions of the R4.0 per-service format */
                        _cleanup_strbuf_ StrBuf b = {};
                        for (const char *c = line; *c; c++) {
                                if (startswith(c, "$include:")) {
                                        strbuf_append(&b, "!include ");
                                        c += STRLEN("$include:") - 1;
                                } else if (*c == '$')
                                        strbuf_append_c(&b, '@');
                                else if (*c == ',')
                                        strbuf_append_c(&b, ' ');
                                else
                                        strbuf_append_c(&b, *c);
                        }
                        copy = strbuf_steal(&b);
                        if (!copy)
                                goto oom;
                        line = copy;
                }

                if (split_fields(line, &fields) < 0)
                        goto oom;
                size_t n = strv_length(fields);

                if (line[0] == '!') {
                        const char *dir = fields[0];
                        if (old_syntax) {
                                if (!streq(dir, "!include"))
                                        add_error(l->p, path, lineno, "invalid directive");
                                else if (n != 2)
                                        add_error(l->p, path, lineno, "invalid number of params");
                                else
                                        handle_include(l, fields[1], base_dir, true, service, argument, path, lineno);
                        } else if (streq(dir, "!include")) {
                                if (n != 2)
                                        add_error(l->p, path, lineno, "invalid number of params");
                                else
                                        handle_include(l, fields[1], base_dir, false, NULL, NULL, path, lineno);
                        } else if (streq(dir, "!include-dir")) {
                                if (n != 2)
                                        add_error(l->p, path, lineno, "invalid number of params");
                                else
                                        handle_include_dir(l, fields[1], base_dir, path, lineno);
                        } else if (streq(dir, "!include-service")) {
                                _cleanup_free_ char *buf = NULL;
                                const char *e;
                                if (n != 4)
                                        add_error(l->p, path, lineno, "invalid number of params");
                                else if ((e = validate_service_and_argument(fields[1], fields[2], &buf)))
                                        add_error(l->p, path, lineno, "%s", e);
                                else
                                        handle_include(l, fields[3], base_dir, true, fields[1], fields[2], path,
                                                       lineno);
                        } else if (streq(dir, "!compat-4.0")) {
                                if (n != 1)
                                        add_error(l->p, path, lineno, "invalid number of params");
                                else
                                        handle_compat40(l, path, lineno);
                        } else
                                add_error(l->p, path, lineno, "invalid directive");
                        continue;
                }

                if (old_syntax)
                        rule_add(l, service, argument, fields, n, path, lineno);
                else if (n < 5)
                        add_error(l->p, path, lineno, "wrong number of fields");
                else
                        rule_add(l, fields[0], fields[1], fields + 2, n - 2, path, lineno);
        }
        return;
oom:
        l->p->oom = true;
}

static void load_file(Loader *l, const char *path, const char *base_dir, bool old_syntax, const char *service,
                      const char *argument, const char *from_file, unsigned from_line) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (l->depth >= MAX_INCLUDE_DEPTH) {
                add_error(l->p, from_file ? from_file : path, from_line,
                          "includes nested deeper than %d levels (an include loop?): %s", MAX_INCLUDE_DEPTH, path);
                return;
        }
        r = read_text_file(path, &text);
        if (r == -ENOMEM) {
                l->p->oom = true;
                return;
        }
        if (r < 0) {
                if (from_file)
                        add_error(l->p, from_file, from_line, "cannot read %s: %s", path,
                                  r == -EBADMSG ? "NUL byte in file" : strerror(-r));
                else
                        add_error(l->p, path, 0, "cannot read file: %s",
                                  r == -EBADMSG ? "NUL byte in file" : strerror(-r));
                return;
        }
        l->depth++;
        load_text(l, text, path, base_dir, old_syntax, service, argument);
        l->depth--;
}

typedef struct TopFile {
        char *name, *dir;
} TopFile;

static int topfile_cmp(const void *a, const void *b) {
        return strcmp(((const TopFile *) a)->name, ((const TopFile *) b)->name);
}

int qubes_policy_load(const QubesPolicyConfig *cfg, QubesPolicy **ret) {
        static const char *const default_dirs[] = { QUBES_POLICY_RUN_DIR, QUBES_POLICY_DIR, NULL };
        _cleanup_(qubes_policy_freep) QubesPolicy *p = NULL;
        const char *const *dirs = cfg && cfg->dirs ? cfg->dirs : default_dirs;
        TopFile *top = NULL;
        size_t n_top = 0;
        Loader l;
        int r = 0;

        p = new0(QubesPolicy, 1);
        if (!p)
                return -ENOMEM;
        l = (Loader){ .p = p, .compat_dir = cfg ? cfg->compat_dir : NULL };

        /* pool the files of all directories by basename; the first directory wins */
        for (const char *const *dir = dirs; *dir; dir++) {
                _cleanup_strv_free_ char **names = NULL;

                r = list_policy_dir(&l, *dir, &names);
                if (r == -ENOMEM)
                        goto finish;
                if (r == -ENOENT) {
                        /* a directory that does not exist holds no rules (/run/qubes/policy.d
                         * before anything put a file there); one we cannot read is broken */
                        r = 0;
                        continue;
                }
                if (r < 0) {
                        add_error(p, *dir, 0, "cannot read policy directory: %s", strerror(-r));
                        r = 0;
                        continue;
                }
                STRV_FOREACH(n, names) {
                        bool seen = false;
                        for (size_t i = 0; i < n_top; i++)
                                if (streq(top[i].name, *n))
                                        seen = true;
                        if (seen)
                                continue;
                        TopFile *a = realloc(top, (n_top + 1) * sizeof(TopFile));
                        if (!a) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        top = a;
                        top[n_top].name = strdup(*n);
                        top[n_top].dir = strdup(*dir);
                        n_top++;
                        if (!top[n_top - 1].name || !top[n_top - 1].dir) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
        }
        if (n_top > 0)
                qsort(top, n_top, sizeof(TopFile), topfile_cmp);
        for (size_t i = 0; i < n_top; i++) {
                _cleanup_free_ char *full = NULL;
                if (asprintf(&full, "%s/%s", top[i].dir, top[i].name) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
                load_file(&l, full, top[i].dir, false, NULL, NULL, NULL, 0);
        }

finish:
        for (size_t i = 0; i < n_top; i++) {
                free(top[i].name);
                free(top[i].dir);
        }
        free(top);
        if (r < 0)
                return r;
        if (p->oom)
                return -ENOMEM;
        r = qubes_policy_is_valid(p) ? 0 : -EINVAL;
        *ret = TAKE_PTR(p);
        return r;
}

int qubes_policy_load_string(const char *text, const char *name, const char *base_dir, QubesPolicy **ret) {
        _cleanup_(qubes_policy_freep) QubesPolicy *p = NULL;
        _cleanup_free_ char *copy = NULL;
        Loader l;
        int r;

        p = new0(QubesPolicy, 1);
        copy = strdup(text);
        if (!p || !copy)
                return -ENOMEM;
        l = (Loader){ .p = p, .depth = 1 };
        load_text(&l, copy, name ? name : "<string>", base_dir, false, NULL, NULL);
        if (p->oom)
                return -ENOMEM;
        r = qubes_policy_is_valid(p) ? 0 : -EINVAL;
        *ret = TAKE_PTR(p);
        return r;
}
