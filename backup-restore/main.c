/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubes-backup-restore: restore qubes from a Qubes v4 backup archive (one made by qubesd, or by
 * upstream Qubes) through qubesd's D-Bus API.
 *
 * The archive is read once, as a stream: the header is checked against its encrypted twin (a
 * wrong passphrase stops here, before anything is created), qubes.xml is read, the qubes to
 * restore are chosen and created (templates first; a name already taken gets a -N suffix, as
 * upstream's restore does), their properties, features and tags set, and then each volume is
 * imported as its chunks go by (Volume.ImportWithSize with a pipe: never staged). An import is
 * committed only when every chunk of its file passed its MAC; if the archive turns out to be
 * damaged, truncated or tampered with, every qube created by this run is removed again. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>

#include "backup-xml.h"
#include "backup/child.h"
#include "client.h"
#include "config.h"
#include "reader.h"
#include "util/strbuf.h"
#include "util/strv.h"
#include "util/version.h"

#define MAX_NOTES 256000
#define MAX_SMALL_FILE (1024 * 1024)

typedef struct RQube {
        BxDomain *bx;
        char *name;     /* the name it gets here */
        char *template; /* the template it gets ("" for none) */
        char *problem;  /* why it is not restored */
        char *note;     /* what changes on the way (template, rename), " <-- …" each */
        char *rename_note;
        bool created, removed;
        char **volumes;     /* the new qube's volumes */
        char **files_done;  /* files of it the archive gave */
        bool drop_netvm;    /* its netvm is neither here nor in the backup: the default applies */
} RQube;

typedef struct Restore {
        Client client;
        const char *archive;
        char **only;    /* QUBE... */
        char **exclude; /* --exclude */
        bool list, verify_only, skip_conflicting, skip_dom0_home, progress, rolled_back, porcelain;
        const char *pool;
        uint64_t archive_size;
        BxApp app;
        RQube *qubes;
        size_t n_qubes;
        char **host; /* name, class pairs of the qubes here */
        char **labels;
        /* dom0's home */
        BxDomain *dom0;
        char *home_dir; /* where it goes */
        char *home_problem;
        bool home_restored;
        char **warnings;
        int last_percent;
} Restore;

static Restore *the_restore;

static void warn(Restore *R, const char *fmt, ...) _printf_(2, 3);
static void warn(Restore *R, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) >= 0)
                (void) strv_consume(&R->warnings, s);
        va_end(ap);
}

static char *xstrdup(const char *s) {
        char *p = strdup(s ? s : "");
        if (!p) {
                fputs("qubes-backup-restore: out of memory\n", stderr);
                exit(1);
        }
        return p;
}

static char *xasprintf(const char *fmt, ...) _printf_(1, 2);
static char *xasprintf(const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s) {
                fputs("qubes-backup-restore: out of memory\n", stderr);
                exit(1);
        }
        return s;
}

/* ---- what is here ----------------------------------------------------------------------------- */

static const char *host_class(Restore *R, const char *name) {
        for (char **p = R->host; p && p[0] && p[1]; p += 2)
                if (streq(p[0], name))
                        return p[1];
        return NULL;
}

static bool truthy(const char *v) {
        return v && (streq(v, "True") || streq(v, "true") || streq(v, "1"));
}

static bool host_prop_true(Restore *R, const char *qube, const char *prop) {
        _cleanup_free_ char *v = NULL;
        return client_get_property(&R->client, qube, prop, &v) >= 0 && truthy(v);
}

static RQube *rq_find(Restore *R, const char *original) {
        for (size_t i = 0; i < R->n_qubes; i++)
                if (streq(R->qubes[i].bx->name, original))
                        return &R->qubes[i];
        return NULL;
}

static bool name_taken(Restore *R, const char *name) {
        if (host_class(R, name))
                return true;
        for (size_t i = 0; i < R->n_qubes; i++)
                if (streq(R->qubes[i].bx->name, name) || (R->qubes[i].name && streq(R->qubes[i].name, name)))
                        return true;
        return false;
}

/* upstream's new_name_for_conflicting_vm(): the name cut to 29 characters, then -1, -2, … -99 */
static char *new_name(Restore *R, const char *orig) {
        _cleanup_free_ char *cut = strndup(orig, 29);
        if (!cut)
                return NULL;
        if (!name_taken(R, cut))
                return TAKE_PTR(cut);
        for (int n = 1; n < 100; n++) {
                char *s = xasprintf("%s-%d", cut, n);
                if (!name_taken(R, s))
                        return s;
                free(s);
        }
        return NULL;
}

/* ---- choosing (upstream's restore_info_verify) ---------------------------------------------------- */

static void plan(Restore *R) {
        _cleanup_free_ char *default_template = NULL, *default_dispvm = NULL;
        (void) client_get_property(&R->client, NULL, "default_template", &default_template);
        (void) client_get_property(&R->client, NULL, "default_dispvm", &default_dispvm);

        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                if (R->only && !strv_contains(R->only, q->bx->name))
                        q->problem = xstrdup("not chosen");
                else if (strv_contains(R->exclude, q->bx->name))
                        q->problem = xstrdup("excluded");
        }
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                if (q->problem)
                        continue;
                if (!R->verify_only && host_class(R, q->bx->name)) {
                        if (R->skip_conflicting)
                                q->problem = xasprintf("a qube named %s exists already", q->bx->name);
                        else {
                                _cleanup_free_ char *n = new_name(R, q->bx->name);
                                if (n) {
                                        q->rename_note = xasprintf("Will be renamed to '%s'", n);
                                        free(q->name);
                                        q->name = TAKE_PTR(n);
                                } else
                                        q->problem = xasprintf("a qube named %s exists already, and so do its "
                                                               "renamed forms",
                                                               q->bx->name);
                        }
                }
        }
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                bool disp = streq(q->bx->klass, "DispVM");
                if (q->problem || !q->bx->template)
                        continue;
                const char *t = q->bx->template;
                const char *hc = host_class(R, t);
                bool on_host = hc && (disp ? host_prop_true(R, t, "template_for_dispvms") : streq(hc, "TemplateVM"));
                RQube *bt = rq_find(R, t);
                bool in_backup = bt && !bt->problem &&
                                 (disp ? truthy(bx_prop(bt->bx, "template_for_dispvms"))
                                       : streq(bt->bx->klass, "TemplateVM"));
                if (in_backup) {
                        free(q->template);
                        q->template = xstrdup(bt->name);
                } else if (!on_host) {
                        const char *dflt = disp ? default_dispvm : default_template;
                        if (!isempty(dflt)) {
                                free(q->template);
                                q->template = xstrdup(dflt);
                                free(q->note);
                                q->note = xasprintf("Template change to '%s'", dflt);
                        } else
                                q->problem = xasprintf("its template %s is neither here nor in the backup", t);
                }
        }
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                const char *netvm = bx_prop(q->bx, "netvm");
                if (q->problem || isempty(netvm))
                        continue;
                bool on_host = host_class(R, netvm) && host_prop_true(R, netvm, "provides_network");
                RQube *bn = rq_find(R, netvm);
                bool in_backup = bn && !bn->problem && truthy(bx_prop(bn->bx, "provides_network"));
                if (!on_host && !in_backup)
                        q->drop_netvm = true;
        }
}

/* --porcelain: one line per qube, tab-separated: qube, name, class, template, label, the name it
 * gets, and why it is not restored ("-" when nothing applies); "home" and its state for dom0. */
static void print_porcelain(Restore *R) {
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                printf("qube\t%s\t%s\t%s\t%s\t%s\t%s\n", q->bx->name, q->bx->klass, q->bx->template ?: "-",
                       q->bx->label, q->problem ? "-" : q->name, q->problem ?: "-");
        }
        if (R->dom0)
                printf("home\t%s\n", R->home_problem ?: "restore");
        fflush(stdout);
}

static void print_summary(Restore *R) {
        static const char *const heads[] = { "name", "type", "template", "netvm", "label" };
        size_t width[5];
        for (size_t k = 0; k < 5; k++)
                width[k] = strlen(heads[k]);
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                const char *netvm = bx_prop(q->bx, "netvm");
                const char *cells[] = { q->bx->name, q->bx->klass, q->bx->template ?: "n/a",
                                        !bx_has_prop(q->bx, "netvm") || q->drop_netvm ? "(default)"
                                        : isempty(netvm)                             ? "-"
                                                                                     : netvm,
                                        q->bx->label };
                for (size_t k = 0; k < 5; k++)
                        if (strlen(cells[k]) > width[k])
                                width[k] = strlen(cells[k]);
        }
        printf("The following VMs are included in the backup:\n\n");
        for (size_t k = 0; k < 5; k++) {
                for (size_t c = 0; c < width[k] + 2; c++)
                        putchar('-');
                putchar('+');
        }
        putchar('\n');
        for (size_t k = 0; k < 5; k++)
                printf("%*s |", (int) width[k] + 1, heads[k]);
        putchar('\n');
        for (size_t k = 0; k < 5; k++) {
                for (size_t c = 0; c < width[k] + 2; c++)
                        putchar('-');
                putchar('+');
        }
        putchar('\n');
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                const char *netvm = bx_prop(q->bx, "netvm");
                const char *cells[] = { q->bx->name, q->bx->klass, q->bx->template ?: "n/a",
                                        !bx_has_prop(q->bx, "netvm") || q->drop_netvm ? "(default)"
                                        : isempty(netvm)                             ? "-"
                                                                                     : netvm,
                                        q->bx->label };
                for (size_t k = 0; k < 5; k++)
                        printf("%*s |", (int) width[k] + 1, cells[k]);
                /* as upstream: a template change, then a rename */
                if (q->problem)
                        printf(" <-- not restored: %s", q->problem);
                if (!q->problem && q->note)
                        printf(" <-- %s", q->note);
                if (!q->problem && q->rename_note)
                        printf(" <-- %s", q->rename_note);
                putchar('\n');
        }
        if (R->dom0)
                printf("%*s | %s\n", (int) width[0] + 1, "dom0",
                       R->home_problem ? R->home_problem : R->verify_only ? "its home, checked" : "its home");
        putchar('\n');
        fflush(stdout);
}

/* ---- creating ---------------------------------------------------------------------------------- */

static int order_rank(const RQube *q) {
        if (streq(q->bx->klass, "TemplateVM"))
                return 0;
        if (truthy(bx_prop(q->bx, "template_for_dispvms")))
                return 1;
        return 2;
}

static bool label_exists(Restore *R, const char *label) {
        return strv_contains(R->labels, label);
}

static void create_all(Restore *R) {
        for (int rank = 0; rank <= 2; rank++)
                for (size_t i = 0; i < R->n_qubes; i++) {
                        RQube *q = &R->qubes[i];
                        if (q->problem || order_rank(q) != rank)
                                continue;
                        const char *label = label_exists(R, q->bx->label) ? q->bx->label : "red";
                        if (!streq(label, q->bx->label))
                                warn(R, "%s: there is no label %s here; it is red", q->name, q->bx->label);
                        if (client_create(&R->client, q->bx->klass, q->name, label, q->template, R->pool) < 0) {
                                q->problem = xasprintf("cannot create it: %s", client_error(&R->client));
                                continue;
                        }
                        q->created = true;
                        if (!R->porcelain)
                                fprintf(stderr, "-> Restoring %s...\n", q->name);
                        const char *tfd = bx_prop(q->bx, "template_for_dispvms");
                        if (tfd && client_set_property(&R->client, q->name, "template_for_dispvms", tfd) < 0)
                                warn(R, "%s: template_for_dispvms: %s", q->name, client_error(&R->client));
                        if (client_list_volumes(&R->client, q->name, &q->volumes) < 0)
                                warn(R, "%s: cannot list its volumes: %s", q->name, client_error(&R->client));
                }
        static const char *const later[] = { "dispid", "template_for_dispvms", "template", "netvm", "default_dispvm",
                                             "installed_by_rpm" };
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                if (!q->created)
                        continue;
                for (char **p = q->bx->props; p && p[0] && p[1]; p += 2) {
                        bool skip = false;
                        for (size_t k = 0; k < ELEMENTSOF(later); k++)
                                skip = skip || streq(p[0], later[k]);
                        if (!skip && client_set_property(&R->client, q->name, p[0], p[1]) < 0)
                                warn(R, "%s: property %s = %s: %s", q->name, p[0], p[1], client_error(&R->client));
                }
                for (char **f = q->bx->features; f && f[0] && f[1]; f += 2)
                        if (client_set_feature(&R->client, q->name, f[0], f[1]) < 0)
                                warn(R, "%s: feature %s: %s", q->name, f[0], client_error(&R->client));
                STRV_FOREACH(t, q->bx->tags)
                        if (client_add_tag(&R->client, q->name, *t) < 0)
                                warn(R, "%s: tag %s: %s", q->name, *t, client_error(&R->client));
                if (q->bx->n_devices)
                        warn(R, "%s: %zu device assignment(s) not restored: this qubesd has no device API yet", q->name,
                             q->bx->n_devices);
        }
        /* references to other qubes last: they may have been renamed */
        static const char *const refs[] = { "netvm", "default_dispvm" };
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                if (!q->created)
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(refs); k++) {
                        const char *v = bx_prop(q->bx, refs[k]);
                        if (!v || (k == 0 && q->drop_netvm))
                                continue;
                        RQube *other = *v ? rq_find(R, v) : NULL;
                        const char *value = other && other->created ? other->name : v;
                        if (client_set_property(&R->client, q->name, refs[k], value) < 0)
                                warn(R, "%s: property %s = %s: %s", q->name, refs[k], value, client_error(&R->client));
                }
        }
}

/* Remove what this run created: the archive cannot be trusted, or it is incomplete. */
static void rollback(Restore *R) {
        R->rolled_back = true;
        for (size_t i = R->n_qubes; i-- > 0;) {
                RQube *q = &R->qubes[i];
                if (!q->created)
                        continue;
                if (client_remove(&R->client, q->name) < 0)
                        fprintf(stderr, "qubes-backup-restore: cannot remove %s again: %s\n", q->name,
                                client_error(&R->client));
                else {
                        q->created = false;
                        q->removed = true;
                }
        }
}

/* ---- sinks ---------------------------------------------------------------------------------------- */

typedef struct VolumeSink {
        FileSink s;
        Restore *R;
        RQube *q;
        char *file;
        char *volume;
        int fd;
        ClientImport *imp;
        bool began;
        bool holes_only; /* nothing to import: the new volume is all zeros already */
} VolumeSink;

static int vs_write(VolumeSink *v, const uint8_t *p, size_t n) {
        while (n > 0) {
                if (reader_cancelled)
                        return -EINTR;
                ssize_t k = write(v->fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        /* qubesd stopped reading: it says why */
                        int r = client_import_wait(&v->R->client, v->imp);
                        v->imp = NULL;
                        v->s.error = xasprintf("%s: the import of volume %s failed: %s", v->q->name, v->volume,
                                               r < 0 ? client_error(&v->R->client) : strerror(errno));
                        return -EIO;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int vs_begin(FileSink *s, const TarMember *m) {
        VolumeSink *v = (VolumeSink *) s;
        int p[2];
        if (v->began)
                return 1; /* one member per file */
        v->began = true;
        if (m->sparse && m->stored == 0) {
                /* Nothing but holes (a volume never written): the qube this run created has an
                 * empty volume already, so instead of pushing its size in zeros through qubesd,
                 * only grow it to the size it had. A volume bigger than that cannot shrink: it
                 * is imported as usual. */
                uint64_t size;
                int r = client_volume_size(&v->R->client, v->q->name, v->volume, &size);
                if (r >= 0 && size <= m->size) {
                        if (size < m->size)
                                r = client_volume_resize(&v->R->client, v->q->name, v->volume, m->size);
                        if (r < 0) {
                                v->s.error = xasprintf("%s: cannot resize volume %s: %s", v->q->name, v->volume,
                                                       client_error(&v->R->client));
                                return r;
                        }
                        v->holes_only = true;
                        return 0;
                }
        }
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        int r = client_import_start(&v->R->client, v->q->name, v->volume, p[0], m->size, &v->imp);
        close(p[0]);
        if (r < 0) {
                close(p[1]);
                v->s.error = xasprintf("%s: cannot import volume %s: %s", v->q->name, v->volume,
                                       client_error(&v->R->client));
                return r;
        }
        v->fd = p[1];
        return 0;
}

static int vs_data(FileSink *s, const uint8_t *p, size_t n) {
        VolumeSink *v = (VolumeSink *) s;
        if (v->holes_only) {
                v->s.error = xasprintf("%s: volume %s has data its sparse map does not announce", v->q->name,
                                       v->volume);
                return -EBADMSG;
        }
        return vs_write(v, p, n);
}

static int vs_hole(FileSink *s, uint64_t n) {
        static const uint8_t zeros[65536];
        if (((VolumeSink *) s)->holes_only)
                return 0;
        while (n > 0) {
                size_t k = n < sizeof zeros ? (size_t) n : sizeof zeros;
                int r = vs_write((VolumeSink *) s, zeros, k);
                if (r < 0)
                        return r;
                n -= k;
        }
        return 0;
}

/* qubesd commits an import at the end of its data: the end comes only once every chunk was
 * verified. Otherwise one byte too many makes it throw the import away. */
static int vs_finish(FileSink *s, bool ok) {
        VolumeSink *v = (VolumeSink *) s;
        int r = 0;
        if (v->fd >= 0) {
                if (!ok)
                        (void) !write(v->fd, "", 1);
                close(v->fd);
                v->fd = -1;
        }
        if (v->imp) {
                r = client_import_wait(&v->R->client, v->imp);
                v->imp = NULL;
                if (ok && r < 0)
                        v->s.error = xasprintf("%s: the import of volume %s failed: %s", v->q->name, v->volume,
                                               client_error(&v->R->client));
        }
        if (ok && r >= 0 && v->began)
                (void) strv_extend(&v->q->files_done, v->file);
        return ok ? r : 0;
}

static void vs_destroy(FileSink *s) {
        VolumeSink *v = (VolumeSink *) s;
        if (v->fd >= 0)
                close(v->fd);
        free(v->file);
        free(v->volume);
        free(v->s.error);
        free(v);
}

typedef enum SmallKind { SMALL_NOTES, SMALL_FIREWALL, SMALL_APPMENUS } SmallKind;

typedef struct SmallSink {
        FileSink s;
        Restore *R;
        RQube *q;
        char *file;
        SmallKind kind;
        StrBuf data;
        bool began;
} SmallSink;

static int ss_begin(FileSink *s, const TarMember *m) {
        SmallSink *x = (SmallSink *) s;
        if (x->began)
                return 1;
        x->began = true;
        return 0;
}

static int ss_data(FileSink *s, const uint8_t *p, size_t n) {
        SmallSink *x = (SmallSink *) s;
        if (x->data.len + n > (x->kind == SMALL_NOTES ? MAX_NOTES : MAX_SMALL_FILE)) {
                x->s.error = xasprintf("%s: %s is too large", x->q->name, x->file);
                return -EFBIG;
        }
        strbuf_append_n(&x->data, (const char *) p, n);
        return x->data.oom ? -ENOMEM : 0;
}

static int ss_finish(FileSink *s, bool ok) {
        SmallSink *x = (SmallSink *) s;
        if (!ok || !x->began)
                return 0;
        (void) strv_extend(&x->q->files_done, x->file);
        const char *text = x->data.buf ?: "";
        switch (x->kind) {
        case SMALL_NOTES:
                if (strlen(text) != x->data.len || client_set_notes(&x->R->client, x->q->name, text) < 0)
                        warn(x->R, "%s: notes not restored: %s", x->q->name,
                             strlen(text) != x->data.len ? "a NUL byte in them" : client_error(&x->R->client));
                break;
        case SMALL_FIREWALL: {
                /* as upstream's restore: the rules read from the file, set through the API */
                char ***rules = NULL;
                _cleanup_free_ char *why = NULL;
                if (bx_parse_firewall(text, x->data.len, &rules, &why) < 0)
                        warn(x->R, "%s: firewall rules not restored: %s", x->q->name, why ?: "out of memory");
                else if (client_set_firewall(&x->R->client, x->q->name,
                                             /* no rule (every one had expired) drops everything: so does one drop */
                                             rules[0] ? rules : (char **[]){ (char *[]){ "action", "drop", NULL }, NULL }) < 0)
                        warn(x->R, "%s: firewall rules not restored: %s", x->q->name, client_error(&x->R->client));
                bx_firewall_free(rules);
                break;
        }
        case SMALL_APPMENUS: {
                /* one entry a line, as upstream: the feature menu-items, space-separated */
                _cleanup_strbuf_ StrBuf items = {};
                char *save = NULL;
                _cleanup_free_ char *copy = xstrdup(text);
                for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                        if (items.len)
                                strbuf_append_c(&items, ' ');
                        strbuf_append(&items, l);
                }
                if (client_set_feature(&x->R->client, x->q->name, "menu-items", items.buf ?: "") < 0)
                        warn(x->R, "%s: menu items: %s", x->q->name, client_error(&x->R->client));
                break;
        }
        }
        return 0;
}

static void ss_destroy(FileSink *s) {
        SmallSink *x = (SmallSink *) s;
        strbuf_done(&x->data);
        free(x->file);
        free(x->s.error);
        free(x);
}

typedef struct HomeSink {
        FileSink s;
        Restore *R;
        Child tar;
        char *dir;
        bool failed;
} HomeSink;

static int hs_raw(FileSink *s, const uint8_t *p, size_t n) {
        HomeSink *h = (HomeSink *) s;
        while (n > 0 && !h->failed) {
                ssize_t k = write(h->tar.in_fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        h->failed = true;
                        break;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static void remove_tree(const char *dir) {
        char *argv[] = { (char *) "rm", (char *) "-rf", (char *) "--", (char *) dir, NULL };
        Child c;
        if (child_spawn(argv, NULL, CHILD_NULL_FD, CHILD_NULL_FD, CHILD_NULL_FD, false, &c) >= 0)
                (void) child_wait(&c);
}

static int hs_finish(FileSink *s, bool ok) {
        HomeSink *h = (HomeSink *) s;
        child_close_stdin(&h->tar);
        int status = child_wait(&h->tar);
        if (ok && !h->failed && status == 0) {
                h->R->home_restored = true;
                return 0;
        }
        remove_tree(h->dir);
        if (ok)
                warn(h->R, "dom0's home not restored: tar exited with status %d", status);
        return 0;
}

static void hs_destroy(FileSink *s) {
        HomeSink *h = (HomeSink *) s;
        child_kill(&h->tar);
        free(h->dir);
        free(h->s.error);
        free(h);
}

/* Which sink takes a file of the archive (NULL: none, it is skipped). */
static int on_file_begin(void *userdata, const char *base, FileSink **ret) {
        Restore *R = userdata;
        *ret = NULL;
        if (R->verify_only || R->list)
                return 0;
        if (R->dom0 && !R->home_problem && streq_ptr(base, R->dom0->backup_path)) {
                HomeSink *h = new0(HomeSink, 1);
                if (!h)
                        return -ENOMEM;
                h->R = R;
                h->tar = CHILD_NULL;
                h->dir = xstrdup(R->home_dir);
                if (mkdir(h->dir, 0700) < 0) {
                        warn(R, "dom0's home not restored: cannot create %s: %s", h->dir, strerror(errno));
                        free(h->dir);
                        free(h);
                        return 0;
                }
                char *argv[] = { (char *) "tar", (char *) "-C", h->dir, (char *) "-x", NULL };
                if (child_spawn(argv, NULL, CHILD_PIPE, CHILD_NULL_FD, CHILD_NULL_FD, false, &h->tar) < 0) {
                        warn(R, "dom0's home not restored: cannot run tar");
                        remove_tree(h->dir);
                        free(h->dir);
                        free(h);
                        return 0;
                }
                h->s = (FileSink){ .raw = true, .raw_data = hs_raw, .finish = hs_finish, .destroy = hs_destroy };
                *ret = &h->s;
                return 0;
        }
        for (size_t i = 0; i < R->n_qubes; i++) {
                RQube *q = &R->qubes[i];
                const char *file = q->bx->backup_path ? startswith(base, q->bx->backup_path) : NULL;
                if (!file || !q->created)
                        continue;
                if (endswith(file, ".img")) {
                        _cleanup_free_ char *vol = strndup(file, strlen(file) - 4);
                        if (!vol || !strv_contains(q->volumes, vol)) {
                                warn(R, "%s: %s skipped: the restored qube has no volume of that name", q->name, file);
                                return 0;
                        }
                        VolumeSink *v = new0(VolumeSink, 1);
                        if (!v)
                                return -ENOMEM;
                        *v = (VolumeSink){ .R = R, .q = q, .fd = -1, .file = xstrdup(file), .volume = TAKE_PTR(vol) };
                        v->s = (FileSink){ .begin = vs_begin,
                                          .data = vs_data,
                                          .hole = vs_hole,
                                          .finish = vs_finish,
                                          .destroy = vs_destroy };
                        *ret = &v->s;
                        return 0;
                }
                SmallKind kind;
                if (streq(file, "notes.txt"))
                        kind = SMALL_NOTES;
                else if (streq(file, "firewall.xml"))
                        kind = SMALL_FIREWALL;
                else if (streq(file, "whitelisted-appmenus.list"))
                        kind = SMALL_APPMENUS;
                else {
                        if (!streq(file, "empty"))
                                warn(R, "%s: %s skipped: not a file a qube's backup holds", q->name, file);
                        return 0;
                }
                SmallSink *x = new0(SmallSink, 1);
                if (!x)
                        return -ENOMEM;
                *x = (SmallSink){ .R = R, .q = q, .kind = kind, .file = xstrdup(file) };
                x->s = (FileSink){ .begin = ss_begin, .data = ss_data, .finish = ss_finish, .destroy = ss_destroy };
                *ret = &x->s;
                return 0;
        }
        return 0;
}

/* ---- the archive's metadata ------------------------------------------------------------------------ */

static int on_metadata(void *userdata, const BackupHeader *h, const char *xml, size_t len) {
        Restore *R = userdata;
        _cleanup_free_ char *err = NULL;

        if (bx_parse(xml, len, &R->app, &err) < 0) {
                fprintf(stderr, "qubes-backup-restore: %s\n", err ?: "cannot read the backup's qubes.xml");
                return -EBADMSG;
        }
        if (client_list_domains(&R->client, &R->host) < 0 || client_list_labels(&R->client, &R->labels) < 0) {
                fprintf(stderr, "qubes-backup-restore: qubesd: %s\n", client_error(&R->client));
                return -EIO;
        }
        for (size_t i = 0; i < R->app.n; i++) {
                BxDomain *d = &R->app.domains[i];
                if (!d->included)
                        continue;
                if (streq(d->klass, "AdminVM")) {
                        R->dom0 = d;
                        continue;
                }
                RQube *l = realloc(R->qubes, (R->n_qubes + 1) * sizeof(RQube));
                if (!l)
                        return -ENOMEM;
                R->qubes = l;
                R->qubes[R->n_qubes++] = (RQube){ .bx = d, .name = xstrdup(d->name), .template = xstrdup(d->template) };
        }
        if (R->dom0) {
                const char *home = getenv("HOME");
                char stamp[64];
                time_t now = time(NULL);
                struct tm tm;
                strftime(stamp, sizeof stamp, "home-restore-%Y-%m-%d-%H%M%S", localtime_r(&now, &tm));
                if (R->skip_dom0_home || (R->only && !strv_contains(R->only, "dom0")) ||
                    strv_contains(R->exclude, "dom0"))
                        R->home_problem = xstrdup("its home: not chosen");
                else if (isempty(home))
                        R->home_problem = xstrdup("its home: not restored, $HOME is not set");
                else
                        R->home_dir = xasprintf("%s/%s", home, stamp);
        }
        plan(R);
        if (R->porcelain)
                print_porcelain(R);
        else
                print_summary(R);
        if (R->list)
                return RESTORE_STOP;
        if (R->verify_only && !R->porcelain)
                fprintf(stderr, "The archive will be verified; nothing will be restored.\n");
        else
                create_all(R);
        return 0;
}

static void on_progress(void *userdata, uint64_t bytes) {
        Restore *R = userdata;
        if (!R->progress || !R->archive_size)
                return;
        int pct = (int) (bytes * 100 / R->archive_size);
        if (pct != R->last_percent) {
                if (R->porcelain) {
                        printf("progress\t%d\n", pct);
                        fflush(stdout);
                } else
                        fprintf(stderr, "\r%s the archive... %d%%", R->verify_only ? "Verifying" : "Restoring from",
                                pct);
                R->last_percent = pct;
        }
}

/* ---- the program -------------------------------------------------------------------------------------- */

static void on_signal(int sig) {
        reader_cancelled = 1;
}

static char *read_passphrase(const char *file) {
        StrBuf b = {};
        FILE *f = NULL;
        bool tty = false;
        struct termios old, quiet;
        int c;

        if (file)
                f = streq(file, "-") ? stdin : fopen(file, "re");
        else {
                f = fopen("/dev/tty", "r+e");
                if (f && tcgetattr(fileno(f), &old) == 0) {
                        tty = true;
                        quiet = old;
                        quiet.c_lflag &= ~(tcflag_t) ECHO;
                        (void) tcsetattr(fileno(f), TCSAFLUSH, &quiet);
                        fputs("Please enter the passphrase to verify and (if encrypted) decrypt the backup: ", stderr);
                }
        }
        if (!f)
                return NULL;
        while ((c = fgetc(f)) != EOF && c != '\n')
                strbuf_append_c(&b, (char) c);
        if (tty) {
                (void) tcsetattr(fileno(f), TCSAFLUSH, &old);
                fputc('\n', stderr);
        }
        if (f != stdin)
                fclose(f);
        /* upstream: readline().rstrip() */
        while (b.len > 0 && strchr(" \t\r\n\v\f", b.buf[b.len - 1]))
                b.buf[--b.len] = 0;
        return b.oom ? NULL : strbuf_steal(&b) ?: strdup("");
}

static void help(void) {
        printf("Usage: qubes-backup-restore [OPTIONS] ARCHIVE [QUBE...]\n\n"
               "Restore qubes from a Qubes backup (format 4: qubesd's, or upstream Qubes 4.x's) through\n"
               "qubesd. ARCHIVE is a file, or - for standard input. Without QUBE, every qube in it.\n\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "     --system | --user | --bus-address=ADDR   Where qubesd is (default: the system bus)\n"
               "  -p --passphrase-file=FILE  Read the passphrase from FILE (- for standard input); default:\n"
               "                             ask on the terminal\n"
               "  -l --list                  Show what the archive holds and stop\n"
               "     --verify-only           Read and check the whole archive, restore nothing\n"
               "  -x --exclude=QUBE          Do not restore QUBE (repeatable; dom0: its home)\n"
               "     --skip-conflicting      Skip a qube whose name is taken (default: restore it as NAME-N)\n"
               "     --skip-dom0-home        Do not restore dom0's home (default: into $HOME/home-restore-DATE)\n"
               "     --pool=POOL             Create the restored qubes' volumes in POOL\n"
               "     --compression-filter=PROG  Decompress with PROG, whatever the archive says\n"
               "     --progress              Show progress on standard error (default on a terminal)\n"
               "     --porcelain             Output for programs, one tab-separated record a line:\n"
               "                             qube NAME CLASS TEMPLATE LABEL NEW-NAME|- PROBLEM|-;\n"
               "                             home STATE; progress PERCENT; restored NAME NEW-NAME;\n"
               "                             skipped NAME REASON; verified NAME; warning TEXT; error TEXT\n\n"
               "Exit status: 0 restored (or verified) in full; 3 some qubes were skipped (see the\n"
               "report); 1 the archive or qubesd failed, and nothing of this run is left; 2 usage.\n");
}

int main(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SYSTEM,
                ARG_USER,
                ARG_BUS_ADDRESS,
                ARG_VERIFY_ONLY,
                ARG_SKIP_CONFLICTING,
                ARG_SKIP_DOM0_HOME,
                ARG_POOL,
                ARG_FILTER,
                ARG_PROGRESS,
                ARG_PORCELAIN,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "user", no_argument, NULL, ARG_USER },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "passphrase-file", required_argument, NULL, 'p' },
                { "list", no_argument, NULL, 'l' },
                { "verify-only", no_argument, NULL, ARG_VERIFY_ONLY },
                { "exclude", required_argument, NULL, 'x' },
                { "skip-conflicting", no_argument, NULL, ARG_SKIP_CONFLICTING },
                { "skip-dom0-home", no_argument, NULL, ARG_SKIP_DOM0_HOME },
                { "pool", required_argument, NULL, ARG_POOL },
                { "compression-filter", required_argument, NULL, ARG_FILTER },
                { "progress", no_argument, NULL, ARG_PROGRESS },
                { "porcelain", no_argument, NULL, ARG_PORCELAIN },
                {},
        };
        Restore R = { .last_percent = -1 };
        ClientBus bus_kind = CLIENT_SYSTEM;
        const char *address = NULL, *pass_file = NULL, *filter = NULL;
        _cleanup_free_ char *passphrase = NULL, *error = NULL;
        int c, r, fd = -1, ret = 0;

        the_restore = &R;
        R.progress = isatty(STDERR_FILENO);
        while ((c = getopt_long(argc, argv, "hp:lx:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        return version_print("qubes-backup-restore");
                case ARG_SYSTEM:
                        bus_kind = CLIENT_SYSTEM;
                        break;
                case ARG_USER:
                        bus_kind = CLIENT_USER;
                        break;
                case ARG_BUS_ADDRESS:
                        bus_kind = CLIENT_ADDRESS;
                        address = optarg;
                        break;
                case 'p':
                        pass_file = optarg;
                        break;
                case 'l':
                        R.list = true;
                        break;
                case ARG_VERIFY_ONLY:
                        R.verify_only = true;
                        break;
                case 'x':
                        if (strv_extend(&R.exclude, optarg) < 0)
                                return 1;
                        break;
                case ARG_SKIP_CONFLICTING:
                        R.skip_conflicting = true;
                        break;
                case ARG_SKIP_DOM0_HOME:
                        R.skip_dom0_home = true;
                        break;
                case ARG_POOL:
                        R.pool = optarg;
                        break;
                case ARG_FILTER:
                        filter = optarg;
                        break;
                case ARG_PROGRESS:
                        R.progress = true;
                        break;
                case ARG_PORCELAIN:
                        R.porcelain = true;
                        break;
                default:
                        return 2;
                }
        if (optind >= argc) {
                fprintf(stderr, "qubes-backup-restore: which archive? (see --help)\n");
                return 2;
        }
        R.archive = argv[optind];
        for (int i = optind + 1; i < argc; i++)
                if (strv_extend(&R.only, argv[i]) < 0)
                        return 1;

        fd = streq(R.archive, "-") ? STDIN_FILENO : open(R.archive, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "qubes-backup-restore: %s: %s\n", R.archive, strerror(errno));
                ret = 1;
                goto finish;
        }
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                R.archive_size = (uint64_t) st.st_size;
        passphrase = read_passphrase(pass_file);
        if (!passphrase) {
                fprintf(stderr, "qubes-backup-restore: no passphrase: give one with --passphrase-file%s\n",
                        pass_file ? "" : " (there is no terminal to ask on)");
                ret = 1;
                goto finish;
        }
        if (R.porcelain)
                R.progress = !R.list;
        /* SIGTERM and SIGINT stop the restore cleanly: what it created is removed again */
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGINT, &sa, NULL);
        r = client_open(&R.client, bus_kind, address);
        if (r < 0) {
                fprintf(stderr, "qubes-backup-restore: cannot connect to the bus: %s\n", strerror(-r));
                ret = 1;
                goto finish;
        }

        ReaderOptions opts = { .passphrase = passphrase, .force_filter = filter, .verify_chunks_of_skipped = R.verify_only };
        ReaderHandlers h = { .metadata = on_metadata, .file_begin = on_file_begin, .progress = on_progress };
        r = reader_run(fd, &opts, &h, &R, &error);
        if (R.progress && !R.porcelain && R.last_percent >= 0)
                fputc('\n', stderr);
        explicit_bzero(passphrase, strlen(passphrase));

        if (r == RESTORE_STOP)
                r = 0;
        /* every file each restored qube had must have come */
        for (size_t i = 0; r >= 0 && i < R.n_qubes; i++) {
                RQube *q = &R.qubes[i];
                if (!q->created)
                        continue;
                STRV_FOREACH(v, q->bx->volumes) {
                        _cleanup_free_ char *file = xasprintf("%s.img", *v);
                        if (strv_contains(q->volumes, *v) && !strv_contains(q->files_done, file)) {
                                error = xasprintf("the archive is truncated or damaged: it has no %s%s", q->bx->backup_path,
                                                  file);
                                r = -EBADMSG;
                                break;
                        }
                }
        }
        if (r < 0) {
                if (R.porcelain)
                        printf("error\t%s\n", error ?: strerror(-r));
                fprintf(stderr, "qubes-backup-restore: %s\n", error ?: strerror(-r));
                rollback(&R);
                ret = 1;
        }

        /* the report */
        if (!R.list && !R.rolled_back) {
                bool skipped = false;
                for (size_t i = 0; i < R.n_qubes; i++) {
                        RQube *q = &R.qubes[i];
                        if (q->created) {
                                if (R.porcelain)
                                        printf("restored\t%s\t%s\n", q->bx->name, q->name);
                                else
                                        printf("Restored %s%s%s\n", q->bx->name,
                                               streq(q->name, q->bx->name) ? "" : " as ",
                                               streq(q->name, q->bx->name) ? "" : q->name);
                        } else if (q->problem && !streq(q->problem, "not chosen")) {
                                printf(R.porcelain ? "skipped\t%s\t%s\n" : "Skipped %s: %s\n", q->bx->name, q->problem);
                                skipped = true;
                        } else if (R.verify_only && !q->problem)
                                printf(R.porcelain ? "verified\t%s\n" : "Verified %s\n", q->bx->name);
                }
                if (R.home_restored)
                        printf(R.porcelain ? "restored\tdom0\t%s\n" : "Restored dom0's home into %s\n", R.home_dir);
                STRV_FOREACH(w, R.warnings) {
                        printf(R.porcelain ? "warning\t%s\n" : "Not restored: %s\n", *w);
                        skipped = true;
                }
                if (skipped && ret == 0)
                        ret = 3;
        } else if (R.rolled_back) {
                bool any = false;
                for (size_t i = 0; i < R.n_qubes; i++)
                        any = any || R.qubes[i].removed;
                if (!R.porcelain)
                        printf("Nothing was restored%s.\n",
                               any ? ": the qubes this run had created were removed again" : "");
        }

finish:
        for (size_t i = 0; i < R.n_qubes; i++) {
                free(R.qubes[i].name);
                free(R.qubes[i].template);
                free(R.qubes[i].problem);
                free(R.qubes[i].note);
                free(R.qubes[i].rename_note);
                strv_free(R.qubes[i].volumes);
                strv_free(R.qubes[i].files_done);
        }
        free(R.qubes);
        bx_done(&R.app);
        strv_free(R.host);
        strv_free(R.labels);
        strv_free(R.only);
        strv_free(R.exclude);
        strv_free(R.warnings);
        free(R.home_dir);
        free(R.home_problem);
        client_close(&R.client);
        if (fd >= 0 && fd != STDIN_FILENO)
                close(fd);
        return ret;
}
