/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backup/profile.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <yaml.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

void backup_profile_done(BackupProfile *p) {
        free(p->name);
        free(p->destination_vm);
        free(p->destination_path);
        strv_free(p->include);
        strv_free(p->exclude);
        free(p->compression_filter);
        if (p->passphrase_text) {
                explicit_bzero(p->passphrase_text, p->passphrase_len);
                free(p->passphrase_text);
        }
        free(p->passphrase_vm);
        *p = (BackupProfile){};
}

char *backup_profile_path(const char *config_dir, const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/backup/%s.conf", config_dir, name) < 0)
                return NULL;
        return p;
}

/* ---- PyYAML's typing of scalars (YAML 1.1 resolvers of its safe loader) ------------------- */

typedef enum YType { Y_NULL, Y_BOOL, Y_INT, Y_FLOAT, Y_STR, Y_SEQ, Y_MAP, Y_OTHER } YType;

static bool all_in(const char *s, const char *set) {
        for (; *s; s++)
                if (!strchr(set, *s))
                        return false;
        return true;
}

static bool is_int_text(const char *s) {
        if (*s == '-' || *s == '+')
                s++;
        if (!*s)
                return false;
        if (startswith(s, "0b"))
                return s[2] && all_in(s + 2, "01_");
        if (startswith(s, "0x"))
                return s[2] && all_in(s + 2, "0123456789abcdefABCDEF_");
        if (s[0] == '0')
                return all_in(s, "01234567_");
        if (s[0] < '1' || s[0] > '9')
                return false;
        /* decimal, or sexagesimal (190:20:30) */
        return all_in(s, "0123456789_:");
}

static bool is_float_text(const char *s) {
        static const char *const special[] = { ".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN" };
        const char *t = s;
        if (*t == '-' || *t == '+')
                t++;
        for (size_t i = 0; i < ELEMENTSOF(special); i++)
                if (streq(t, special[i]) && (t == s || i < 3))
                        return true;
        /* [0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?, or sexagesimal with a fraction */
        bool digits = false, dot = false;
        for (; *t; t++) {
                if ((*t >= '0' && *t <= '9') || *t == '_' || *t == ':')
                        digits = true;
                else if (*t == '.' && !dot)
                        dot = true;
                else if ((*t == 'e' || *t == 'E') && dot && (t[1] == '-' || t[1] == '+') && t[2]) {
                        t += 2;
                        return all_in(t, "0123456789") && digits;
                } else
                        return false;
        }
        return dot && (digits || true);
}

static YType scalar_type(const yaml_node_t *n) {
        const char *tag = (const char *) n->tag;
        const char *v = (const char *) n->data.scalar.value;

        if (tag && !streq(tag, YAML_DEFAULT_SCALAR_TAG) && !streq(tag, "!")) {
                if (streq(tag, YAML_NULL_TAG))
                        return Y_NULL;
                if (streq(tag, YAML_BOOL_TAG))
                        return Y_BOOL;
                if (streq(tag, YAML_INT_TAG))
                        return Y_INT;
                if (streq(tag, YAML_FLOAT_TAG))
                        return Y_FLOAT;
                if (streq(tag, YAML_STR_TAG))
                        return Y_STR;
                return Y_OTHER;
        }
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && streq(tag, "!")))
                return Y_STR;
        static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
        static const char *const bools[] = { "yes",   "Yes",   "YES",   "no", "No", "NO", "true", "True", "TRUE",
                                             "false", "False", "FALSE", "on", "On", "ON", "off",  "Off",  "OFF" };
        for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
                if (streq(v, nulls[i]))
                        return Y_NULL;
        for (size_t i = 0; i < ELEMENTSOF(bools); i++)
                if (streq(v, bools[i]))
                        return Y_BOOL;
        if (is_int_text(v))
                return Y_INT;
        if (v[0] && is_float_text(v) && !streq(v, "."))
                return Y_FLOAT;
        return Y_STR;
}

static YType node_type(const yaml_node_t *n) {
        if (!n)
                return Y_NULL;
        switch (n->type) {
        case YAML_SCALAR_NODE:
                return scalar_type(n);
        case YAML_SEQUENCE_NODE:
                return Y_SEQ;
        case YAML_MAPPING_NODE:
                return Y_MAP;
        default:
                return Y_OTHER;
        }
}

/* Python truth of a scalar of type t (compression: bool(value)). */
static bool scalar_truth(const yaml_node_t *n, YType t) {
        const char *v = (const char *) n->data.scalar.value;
        switch (t) {
        case Y_NULL:
                return false;
        case Y_BOOL:
                return strchr("yYtToO", v[0]) && !(v[0] == 'o' && (v[1] == 'f' || v[1] == 'F')) &&
                       !(v[0] == 'O' && (v[1] == 'f' || v[1] == 'F'));
        case Y_INT:
        case Y_FLOAT:
                /* zero in any of its spellings is false */
                for (const char *p = v; *p; p++)
                        if (*p >= '1' && *p <= '9')
                                return true;
                        else if ((*p == 'x' || *p == 'b' || *p == 'e' || *p == 'E') && p != v)
                                continue;
                return strstr(v, "inf") || strstr(v, "Inf") || strstr(v, "INF") || strstr(v, "nan") ||
                       strstr(v, "NaN") || strstr(v, "NAN");
        default:
                return v[0] != 0;
        }
}

/* ---- the profile ----------------------------------------------------------------------------- */

static int invalid(QError *e, const char *what) {
        return qerror_set(e, QERR_QUBES_EXCEPTION, "Invalid backup profile - %s", what);
}

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key) {
        yaml_node_t *found = NULL;
        /* the last of duplicate keys wins, as in PyYAML */
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE && scalar_type(k) == Y_STR &&
                    streq((const char *) k->data.scalar.value, key))
                        found = yaml_document_get_node(doc, p->value);
        }
        return found;
}

static bool map_has(yaml_document_t *doc, yaml_node_t *map, const char *key) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE && scalar_type(k) == Y_STR &&
                    streq((const char *) k->data.scalar.value, key))
                        return true;
        }
        return false;
}

/* A string value (a scalar that PyYAML would give as str). */
static int get_string(yaml_node_t *n, const char *key, char **ret, QError *e) {
        YType t = node_type(n);
        if (t != Y_STR) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "'%s' must be a string", key) < 0)
                        return -ENOMEM;
                return invalid(e, msg);
        }
        *ret = strdup((const char *) n->data.scalar.value);
        if (!*ret)
                return -ENOMEM;
        if (strlen(*ret) != n->data.scalar.length)
                return invalid(e, "NUL character in a value");
        return 0;
}

/* include / exclude: a list of strings, '$' replaced by '@' (the old syntax). */
static int get_list(yaml_document_t *doc, yaml_node_t *n, const char *key, char ***ret, QError *e) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *msg = NULL;

        if (node_type(n) != Y_SEQ) {
                if (asprintf(&msg, "'%s' must be a list of qube names, @tag:<tag> or @type:<class>", key) < 0)
                        return -ENOMEM;
                return invalid(e, msg);
        }
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
                yaml_node_t *item = yaml_document_get_node(doc, *i);
                char *s = NULL;
                if (node_type(item) != Y_STR && node_type(item) != Y_INT && node_type(item) != Y_BOOL &&
                    node_type(item) != Y_FLOAT) {
                        if (asprintf(&msg, "'%s' must be a list of qube names, @tag:<tag> or @type:<class>", key) < 0)
                                return -ENOMEM;
                        return invalid(e, msg);
                }
                s = strdup((const char *) item->data.scalar.value);
                if (!s)
                        return -ENOMEM;
                for (char *c = s; *c; c++)
                        if (*c == '$')
                                *c = '@';
                int r = strv_consume(&l, s);
                if (r < 0)
                        return r;
        }
        if (!l) {
                l = new0(char *, 1);
                if (!l)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* What may name a filter program (and be written in the backup header). */
static bool filter_name_valid(const char *s) {
        return !isempty(s) && strlen(s) <= 64 &&
               all_in(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
}

int backup_profile_parse(const char *name, const char *text, size_t len, BackupProfile *ret, QError *e) {
        yaml_parser_t parser;
        yaml_document_t doc;
        BackupProfile p = { .compressed = true };
        yaml_node_t *root, *n;
        int r;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
        if (!yaml_parser_load(&parser, &doc)) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "not valid YAML: %s at line %zu, column %zu", strempty(parser.problem),
                             parser.problem_mark.line + 1, parser.problem_mark.column + 1) < 0)
                        msg = NULL;
                yaml_parser_delete(&parser);
                return invalid(e, msg ?: "not valid YAML");
        }
        yaml_parser_delete(&parser);

        root = yaml_document_get_root_node(&doc);
        if (!root || root->type != YAML_MAPPING_NODE) {
                r = invalid(e, "the file must hold a mapping of keys to values");
                goto finish;
        }

        p.name = strdup(name);
        if (!p.name) {
                r = -ENOMEM;
                goto finish;
        }
        /* upstream reads these three first, in this order: a missing one is a KeyError */
        static const char *const required[] = { "destination_vm", "destination_path", "include" };
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!map_has(&doc, root, required[i])) {
                        r = qerror_set(e, QERR_QUBES_EXCEPTION, "Invalid backup profile - missing '%s'", required[i]);
                        goto finish;
                }
        n = map_get(&doc, root, "include");
        if (node_type(n) == Y_NULL)
                p.include_default = true;
        else if ((r = get_list(&doc, n, "include", &p.include, e)) < 0)
                goto finish;
        n = map_get(&doc, root, "exclude");
        if (node_type(n) == Y_NULL) {
                /* missing, or `exclude:` with no value (upstream crashes on the latter) */
                p.exclude = new0(char *, 1);
                if (!p.exclude) {
                        r = -ENOMEM;
                        goto finish;
                }
        } else if ((r = get_list(&doc, n, "exclude", &p.exclude, e)) < 0)
                goto finish;

        if (map_has(&doc, root, "compression")) {
                n = map_get(&doc, root, "compression");
                YType t = node_type(n);
                if (t == Y_STR) {
                        const char *v = (const char *) n->data.scalar.value;
                        p.compressed = v[0] != 0;
                        if (p.compressed && !filter_name_valid(v)) {
                                _cleanup_free_ char *msg = NULL;
                                if (asprintf(&msg,
                                             "compression must be true, false or the name of a filter program "
                                             "(letters, digits and '-'), not '%s'",
                                             v) < 0)
                                        msg = NULL;
                                r = invalid(e, msg ?: "bad compression");
                                goto finish;
                        }
                        if (p.compressed) {
                                p.compression_filter = strdup(v);
                                if (!p.compression_filter) {
                                        r = -ENOMEM;
                                        goto finish;
                                }
                        }
                } else if (t == Y_NULL || t == Y_BOOL || t == Y_INT || t == Y_FLOAT)
                        p.compressed = t != Y_NULL && scalar_truth(n, t);
                else {
                        r = invalid(e, "compression must be true, false or the name of a filter program");
                        goto finish;
                }
        }
        if (!p.compression_filter) {
                p.compression_filter = strdup("gzip");
                if (!p.compression_filter) {
                        r = -ENOMEM;
                        goto finish;
                }
        }

        r = get_string(map_get(&doc, root, "destination_vm"), "destination_vm", &p.destination_vm, e);
        if (r < 0) {
                /* not a name: no qube has it (upstream's lookup fails the same way) */
                qerror_done(e);
                r = qerror_set(e, QERR_QUBES_EXCEPTION, "Invalid destination_vm specified in backup profile");
                goto finish;
        }
        r = get_string(map_get(&doc, root, "destination_path"), "destination_path", &p.destination_path, e);
        if (r < 0)
                goto finish;

        if (map_has(&doc, root, "passphrase_text")) {
                n = map_get(&doc, root, "passphrase_text");
                YType t = node_type(n);
                if (t == Y_STR || t == Y_INT || t == Y_FLOAT || t == Y_BOOL) {
                        /* the text as written: a number-looking passphrase is still that text */
                        p.passphrase_text = strndup((const char *) n->data.scalar.value, n->data.scalar.length);
                        if (!p.passphrase_text) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        p.passphrase_len = n->data.scalar.length;
                        if (strlen(p.passphrase_text) != p.passphrase_len) {
                                r = invalid(e, "NUL character in a value");
                                goto finish;
                        }
                        p.has_passphrase_text = true;
                } else if (t != Y_NULL) {
                        r = invalid(e, "'passphrase_text' must be a string");
                        goto finish;
                }
        }
        if (map_has(&doc, root, "passphrase_vm")) {
                n = map_get(&doc, root, "passphrase_vm");
                if (node_type(n) == Y_STR) {
                        p.passphrase_vm = strdup((const char *) n->data.scalar.value);
                        if (!p.passphrase_vm) {
                                r = -ENOMEM;
                                goto finish;
                        }
                } else if (node_type(n) != Y_NULL) {
                        /* a name no qube can have */
                        p.passphrase_vm = strdup("");
                        if (!p.passphrase_vm) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
        }

        if (map_has(&doc, root, "scrypt_logn")) {
                n = map_get(&doc, root, "scrypt_logn");
                char *end = NULL;
                long v = node_type(n) == Y_INT ? strtol((const char *) n->data.scalar.value, &end, 10) : 0;
                if (node_type(n) != Y_INT || *end || v < 10 || v > 22) {
                        r = invalid(e, "scrypt_logn must be a whole number from 10 to 22");
                        goto finish;
                }
                p.scrypt_log_n = (unsigned) v;
        }

        *ret = p;
        p = (BackupProfile){};
        r = 0;
finish:
        yaml_document_delete(&doc);
        backup_profile_done(&p);
        return r;
}

int backup_profile_load(const char *config_dir, const char *name, BackupProfile *ret, QError *e) {
        _cleanup_free_ char *path = backup_profile_path(config_dir, name), *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t len = 0;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENAMETOOLONG || errno == ENOTDIR)
                        return qerror_set(e, QERR_BACKUP_PROFILE_NOT_FOUND, "Backup profile does not exist: %s", name);
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot read backup profile %s: %s", name, strerror(errno));
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot read backup profile %s: %s", name,
                                  "not a regular file");
        if (st.st_size > BACKUP_PROFILE_MAX_SIZE)
                return invalid(e, "the file is larger than 1 MiB");
        text = malloc((size_t) st.st_size + 1);
        if (!text)
                return -ENOMEM;
        while (len < (size_t) st.st_size) {
                ssize_t k = read(fd, text + len, (size_t) st.st_size - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot read backup profile %s: %s", name,
                                          strerror(errno));
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        text[len] = 0;
        return backup_profile_parse(name, text, len, ret, e);
}

int backup_profile_check_passphrase(const BackupProfile *p, QError *e) {
        if (p->has_passphrase_text || p->passphrase_vm)
                return 0;
        return qerror_set(e, QERR_QUBES_EXCEPTION,
                          "Invalid backup profile - you need to specify passphrase_text or passphrase_vm");
}

int backup_passphrase_from_service(const char *out, size_t len, char **ret, size_t *ret_len, QError *e) {
        /* bytes.strip(): ASCII whitespace */
        const char *ws = " \t\n\r\v\f";
        while (len > 0 && strchr(ws, out[0]) && out[0])
                out++, len--;
        while (len > 0 && strchr(ws, out[len - 1]) && out[len - 1])
                len--;
        if (memchr(out, '\n', len))
                return qerror_set(e, QERR_PROTOCOL, "Passphrase must not contain newline character");
        *ret = malloc(len + 1);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, out, len);
        (*ret)[len] = 0;
        *ret_len = len;
        return 0;
}

bool backup_entry_matches(const char *entry, const char *name, const char *klass, BackupHasTagFn has_tag,
                          const void *qube) {
        const char *rest;
        if ((rest = startswith(entry, "@tag:")))
                return has_tag(qube, rest);
        if ((rest = startswith(entry, "@type:")))
                return streq(rest, klass);
        return streq(entry, name);
}

/* ---- writing ------------------------------------------------------------------------------- */

bool backup_profile_name_valid(const char *name) {
        return !isempty(name) && name[0] != '.' && strlen(name) <= 200 &&
               all_in(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.");
}

int backup_profile_list(const char *config_dir, char ***ret) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_strv_free_ char **l = NULL;
        DIR *d;
        struct dirent *de;

        if (asprintf(&dir, "%s/backup", config_dir) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                if (errno != ENOENT)
                        return -errno;
        } else {
                while ((de = readdir(d))) {
                        size_t n = strlen(de->d_name);
                        if (n <= 5 || de->d_name[0] == '.' || !endswith(de->d_name, ".conf"))
                                continue;
                        if (strv_consume(&l, strndup(de->d_name, n - 5)) < 0) {
                                closedir(d);
                                return -ENOMEM;
                        }
                }
                closedir(d);
        }
        if (l)
                strv_sort(l);
        *ret = l ? TAKE_PTR(l) : new0(char *, 1);
        return *ret ? 0 : -ENOMEM;
}

static int yaml_write(void *data, unsigned char *buffer, size_t size) {
        strbuf_append_n(data, (const char *) buffer, size);
        return 1;
}

/* A string scalar: plain when PyYAML would read it back as that string, else single-quoted. */
static int emit_string(yaml_emitter_t *em, const char *s) {
        yaml_event_t ev;
        yaml_node_t probe = { .type = YAML_SCALAR_NODE };
        probe.data.scalar.value = (yaml_char_t *) s;
        probe.data.scalar.length = strlen(s);
        probe.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
        bool plain = scalar_type(&probe) == Y_STR && s[0];
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *) s, (int) strlen(s), plain, 1,
                                     plain ? YAML_ANY_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE);
        return yaml_emitter_emit(em, &ev) ? 0 : -EIO;
}

static int emit_plain(yaml_emitter_t *em, const char *s) {
        yaml_event_t ev;
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *) s, (int) strlen(s), 1, 0,
                                     YAML_PLAIN_SCALAR_STYLE);
        return yaml_emitter_emit(em, &ev) ? 0 : -EIO;
}

static int emit_list(yaml_emitter_t *em, char **l) {
        yaml_event_t ev;
        int r = 0;
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(em, &ev))
                return -EIO;
        STRV_FOREACH(i, l)
                if (r >= 0)
                        r = emit_string(em, *i);
        yaml_sequence_end_event_initialize(&ev);
        return r >= 0 && yaml_emitter_emit(em, &ev) ? r : -EIO;
}

char *backup_profile_to_yaml(const BackupProfile *p) {
        _cleanup_strbuf_ StrBuf out = {};
        yaml_emitter_t em;
        yaml_event_t ev;
        int r = 0;

        if (!yaml_emitter_initialize(&em))
                return NULL;
        yaml_emitter_set_output(&em, yaml_write, &out);
        yaml_emitter_set_unicode(&em, 1);
        yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
        r = yaml_emitter_emit(&em, &ev) ? 0 : -EIO;
        yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
        if (r >= 0 && !yaml_emitter_emit(&em, &ev))
                r = -EIO;
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (r >= 0 && !yaml_emitter_emit(&em, &ev))
                r = -EIO;
        if (r >= 0)
                r = emit_plain(&em, "compression");
        if (r >= 0)
                r = !p->compressed                             ? emit_plain(&em, "false")
                    : streq_ptr(p->compression_filter, "gzip") ? emit_plain(&em, "true")
                                                               : emit_string(&em, p->compression_filter);
        if (r >= 0)
                r = emit_plain(&em, "destination_path");
        if (r >= 0)
                r = emit_string(&em, strempty(p->destination_path));
        if (r >= 0)
                r = emit_plain(&em, "destination_vm");
        if (r >= 0)
                r = emit_string(&em, strempty(p->destination_vm));
        if (r >= 0 && p->exclude && p->exclude[0]) {
                r = emit_plain(&em, "exclude");
                if (r >= 0)
                        r = emit_list(&em, p->exclude);
        }
        if (r >= 0)
                r = emit_plain(&em, "include");
        if (r >= 0)
                r = p->include_default ? emit_plain(&em, "null") : emit_list(&em, p->include);
        if (r >= 0 && p->has_passphrase_text) {
                r = emit_plain(&em, "passphrase_text");
                if (r >= 0)
                        r = emit_string(&em, p->passphrase_text);
        }
        if (r >= 0 && p->passphrase_vm) {
                r = emit_plain(&em, "passphrase_vm");
                if (r >= 0)
                        r = emit_string(&em, p->passphrase_vm);
        }
        if (r >= 0 && p->scrypt_log_n) {
                char n[16];
                snprintf(n, sizeof n, "%u", p->scrypt_log_n);
                r = emit_plain(&em, "scrypt_logn");
                if (r >= 0)
                        r = emit_plain(&em, n);
        }
        yaml_mapping_end_event_initialize(&ev);
        if (r >= 0 && !yaml_emitter_emit(&em, &ev))
                r = -EIO;
        yaml_document_end_event_initialize(&ev, 1);
        if (r >= 0 && !yaml_emitter_emit(&em, &ev))
                r = -EIO;
        yaml_stream_end_event_initialize(&ev);
        if (r >= 0 && !yaml_emitter_emit(&em, &ev))
                r = -EIO;
        yaml_emitter_delete(&em);
        if (r < 0 || out.oom)
                return NULL;
        return strbuf_steal(&out);
}

int backup_profile_save(const char *config_dir, const BackupProfile *p, QError *e) {
        _cleanup_free_ char *yaml = NULL, *dir = NULL, *path = NULL;
        _cleanup_(backup_profile_done) BackupProfile back = {};
        int r;

        if (!backup_profile_name_valid(p->name))
                return qerror_set(e, QERR_QUBES_EXCEPTION,
                                  "A profile name is letters, digits, '_', '-' and '.' (not first), at most 200: %s",
                                  strempty(p->name));
        yaml = backup_profile_to_yaml(p);
        if (!yaml)
                return -ENOMEM;
        /* what we write must read back as what was meant */
        r = backup_profile_parse(p->name, yaml, strlen(yaml), &back, e);
        if (r < 0)
                return r;
        if (asprintf(&dir, "%s/backup", config_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot create %s: %s", dir, strerror(-r));
        path = backup_profile_path(config_dir, p->name);
        if (!path)
                return -ENOMEM;
        /* it may hold the passphrase: root's alone */
        r = write_file_atomic(path, yaml, strlen(yaml), 0600);
        explicit_bzero(yaml, strlen(yaml));
        if (r < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot write %s: %s", path, strerror(-r));
        return 0;
}

int backup_profile_remove(const char *config_dir, const char *name, QError *e) {
        _cleanup_free_ char *path = backup_profile_path(config_dir, name);
        if (!path)
                return -ENOMEM;
        if (unlink(path) < 0) {
                if (errno == ENOENT)
                        return qerror_set(e, QERR_BACKUP_PROFILE_NOT_FOUND, "Backup profile does not exist: %s", name);
                return qerror_set(e, QERR_QUBES_EXCEPTION, "Cannot remove %s: %s", path, strerror(errno));
        }
        return 0;
}
