/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qubes.xml load and save time with 50, 200 and 1000 synthetic qubes, through the model library
 * the daemon runs. Prints one line per (size, operation): median and spread over repeated runs.
 *
 * usage: bench-model [--runs N] [--sizes 50,200,1000] [--dir DIR]
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

typedef struct Stats {
        double median, p10, p90, min, max;
} Stats;

static Stats stats_of(double *v, size_t n) {
        qsort(v, n, sizeof(double), cmp_double);
        Stats s = {
                .median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2,
                .p10 = v[(n - 1) / 10],
                .p90 = v[(n - 1) * 9 / 10],
                .min = v[0],
                .max = v[n - 1],
        };
        return s;
}

static void print_stats(int n_qubes, const char *what, double *v, size_t n, size_t bytes) {
        Stats s = stats_of(v, n);
        printf("  %5d qubes  %-22s median %8.3f ms   p10 %8.3f   p90 %8.3f   min %8.3f   max %8.3f", n_qubes, what,
               s.median, s.p10, s.p90, s.min, s.max);
        if (bytes)
                printf("   (%zu KiB)", bytes / 1024);
        printf("   [%zu runs]\n", n);
}

static const char *const label_names[] = { "red", "orange", "yellow", "green", "gray", "blue", "purple", "black" };

/* A qubes.xml in upstream's schema: dom0, one template, one netvm and n-2 AppVMs with features,
 * tags and volume-config, like a real system of that size. */
static char *synthetic_xml(int n, const char *pool_dir) {
        _cleanup_strbuf_ StrBuf b = {};
        strbuf_append(&b, "<qubes>\n  <labels>\n");
        static const char *const colors[] = { "0xcc0000", "0xf57900", "0xedd400", "0x73d216",
                                              "0x555555", "0x3465a4", "0x75507b", "0x000000" };
        for (int i = 0; i < 8; i++)
                strbuf_printf(&b, "    <label id=\"label-%d\" color=\"%s\">%s</label>\n", i + 1, colors[i],
                              label_names[i]);
        strbuf_printf(&b,
                      "  </labels>\n  <pools>\n"
                      "    <pool name=\"varlibqubes\" dir_path=\"%s\" driver=\"file\" revisions_to_keep=\"1\" "
                      "ephemeral_volatile=\"False\"/>\n"
                      "    <pool name=\"linux-kernel\" dir_path=\"%s/vm-kernels\" driver=\"linux-kernel\"/>\n"
                      "  </pools>\n  <properties>\n"
                      "    <property name=\"default_kernel\">6.6.1-1.fc37</property>\n"
                      "    <property name=\"default_netvm\">sys-net</property>\n"
                      "    <property name=\"default_template\">tpl</property>\n"
                      "  </properties>\n  <domains>\n"
                      "    <domain id=\"domain-0\" class=\"AdminVM\">\n      <properties>\n"
                      "        <property name=\"label\">black</property>\n      </properties>\n"
                      "      <features/>\n      <tags/>\n    </domain>\n",
                      pool_dir, pool_dir);
        for (int qid = 1; qid < n; qid++) {
                char name[32];
                const char *klass = "AppVM";
                if (qid == 1)
                        snprintf(name, sizeof name, "tpl");
                else if (qid == 2)
                        snprintf(name, sizeof name, "sys-net");
                else
                        snprintf(name, sizeof name, "qube-%05d", qid);
                if (qid == 1)
                        klass = "TemplateVM";
                const char *dir = qid == 1 ? "vm-templates" : "appvms";
                strbuf_printf(&b,
                              "    <domain id=\"domain-%d\" class=\"%s\">\n      <properties>\n"
                              "        <property name=\"label\">%s</property>\n"
                              "        <property name=\"memory\">%d</property>\n"
                              "        <property name=\"name\">%s</property>\n",
                              qid, klass, label_names[qid % 8], 400 + qid % 7 * 100, name);
                if (qid == 2)
                        strbuf_append(&b, "        <property name=\"provides_network\">True</property>\n");
                strbuf_printf(&b,
                              "        <property name=\"qid\">%d</property>\n"
                              "        <property name=\"uuid\">%08x-1111-4222-8333-%012d</property>\n",
                              qid, (unsigned) qid * 2654435761u, qid);
                if (qid == 2)
                        strbuf_append(&b, "        <property name=\"netvm\"></property>\n");
                if (qid != 1)
                        strbuf_append(&b, "        <property name=\"template\">tpl</property>\n");
                strbuf_append(&b, "      </properties>\n      <features>\n");
                strbuf_printf(&b, "        <feature name=\"service.cups\">%d</feature>\n", qid % 2);
                strbuf_append(&b, "        <feature name=\"gui\">1</feature>\n      </features>\n      <tags>\n"
                                  "        <tag name=\"audiovm-dom0\"/>\n        <tag name=\"guivm-dom0\"/>\n");
                strbuf_printf(&b, "        <tag name=\"group-%d\"/>\n      </tags>\n      <volume-config>\n", qid % 10);
                if (qid == 1)
                        strbuf_printf(&b,
                                      "        <volume name=\"root\" pool=\"varlibqubes\" vid=\"%s/%s/root\" "
                                      "revisions_to_keep=\"1\" rw=\"True\" save_on_stop=\"True\" "
                                      "snap_on_start=\"False\" size=\"10737418240\"/>\n",
                                      dir, name);
                else
                        strbuf_printf(
                                &b,
                                "        <volume name=\"root\" pool=\"varlibqubes\" vid=\"%s/%s/root\" "
                                "revisions_to_keep=\"0\" rw=\"True\" save_on_stop=\"False\" snap_on_start=\"True\" "
                                "size=\"10737418240\" source=\"vm-templates/tpl/root\"/>\n",
                                dir, name);
                strbuf_printf(&b,
                              "        <volume name=\"private\" pool=\"varlibqubes\" vid=\"%s/%s/private\" "
                              "revisions_to_keep=\"1\" rw=\"True\" save_on_stop=\"True\" snap_on_start=\"False\" "
                              "size=\"2147483648\"/>\n"
                              "        <volume name=\"volatile\" pool=\"varlibqubes\" vid=\"%s/%s/volatile\" "
                              "revisions_to_keep=\"0\" rw=\"True\" save_on_stop=\"False\" snap_on_start=\"False\" "
                              "size=\"10737418240\"/>\n"
                              "        <volume name=\"kernel\" pool=\"linux-kernel\" vid=\"6.6.1-1.fc37\" "
                              "revisions_to_keep=\"0\" rw=\"False\" save_on_stop=\"False\" snap_on_start=\"False\"/>\n"
                              "      </volume-config>\n    </domain>\n",
                              dir, name, dir, name);
        }
        strbuf_append(&b, "  </domains>\n</qubes>\n");
        return strbuf_steal(&b);
}

static int load_app(const char *dir, App **ret) {
        _cleanup_app_free_ App *app = NULL;
        _cleanup_qerror_ QError err = {};
        int r = app_new(dir, &app);
        if (r < 0)
                return r;
        r = app_load(app, &err);
        if (r < 0) {
                _cleanup_free_ char *msg = qerror_message(&err);
                fprintf(stderr, "bench-model: loading %s/qubes.xml failed: %s\n", dir, strempty(msg));
                return r;
        }
        *ret = TAKE_PTR(app);
        return 0;
}

static int bench_size(const char *base, int n, int runs) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/n%d", base, n);
        int r = mkdir_p(dir, 0755);
        if (r < 0) {
                fprintf(stderr, "bench-model: mkdir %s: %s\n", dir, strerror(-r));
                return r;
        }
        _cleanup_free_ char *xml = synthetic_xml(n, dir);
        if (!xml)
                return -ENOMEM;
        char path[4200];
        snprintf(path, sizeof path, "%s/qubes.xml", dir);
        r = write_file_atomic(path, xml, strlen(xml), 0660);
        if (r < 0) {
                fprintf(stderr, "bench-model: writing %s: %s\n", path, strerror(-r));
                return r;
        }

        double *load = calloc(runs, sizeof(double)), *ser = calloc(runs, sizeof(double)),
               *save = calloc(runs, sizeof(double)), *save1 = calloc(runs, sizeof(double));
        if (!load || !ser || !save || !save1)
                return -ENOMEM;
        size_t bytes = 0;

        for (int i = 0; i < runs; i++) {
                App *app = NULL;
                double t0 = now_ms();
                r = load_app(dir, &app);
                load[i] = now_ms() - t0;
                if (r < 0)
                        goto out;
                if (i == 0 && hashmap_size(app->domains) != (size_t) n) {
                        fprintf(stderr, "bench-model: loaded %zu qubes, expected %d\n", hashmap_size(app->domains), n);
                        app_free(app);
                        r = -EINVAL;
                        goto out;
                }

                t0 = now_ms();
                char *s = app_to_xml(app);
                ser[i] = now_ms() - t0;
                if (!s) {
                        app_free(app);
                        r = -ENOMEM;
                        goto out;
                }
                bytes = strlen(s);
                free(s);

                _cleanup_qerror_ QError err = {};
                t0 = now_ms();
                r = app_save(app, &err);
                save[i] = now_ms() - t0;
                if (r >= 0) {
                        /* what a durable Set pays in the model: one qube changed, saved again */
                        Domain *one = app_get_domain(app, "sys-net");
                        if (one)
                                domain_mark_changed(one);
                        t0 = now_ms();
                        r = app_save(app, &err);
                        save1[i] = now_ms() - t0;
                }
                app_free(app);
                if (r < 0) {
                        _cleanup_free_ char *msg = qerror_message(&err);
                        fprintf(stderr, "bench-model: saving failed: %s (%s)\n", strempty(msg), strerror(-r));
                        goto out;
                }
        }
        print_stats(n, "load (parse+adopt)", load, runs, bytes);
        print_stats(n, "serialise", ser, runs, 0);
        print_stats(n, "save (durable)", save, runs, 0);
        print_stats(n, "save after one change", save1, runs, 0);
        r = 0;
out:
        free(load);
        free(ser);
        free(save);
        free(save1);
        return r;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        return remove(path) < 0 ? -errno : 0;
}

static int rm_rf(const char *path) {
        return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv) {
        int runs = 21;
        const char *sizes = "50,200,1000";
        const char *base = NULL;
        static const struct option options[] = { { "runs", required_argument, NULL, 'r' },
                                                 { "sizes", required_argument, NULL, 's' },
                                                 { "dir", required_argument, NULL, 'd' },
                                                 { "help", no_argument, NULL, 'h' },
                                                 {} };
        int c;
        while ((c = getopt_long(argc, argv, "r:s:d:h", options, NULL)) >= 0)
                switch (c) {
                case 'r':
                        runs = atoi(optarg);
                        if (runs < 1)
                                runs = 1;
                        break;
                case 's':
                        sizes = optarg;
                        break;
                case 'd':
                        base = optarg;
                        break;
                case 'h':
                        printf("usage: %s [--runs N] [--sizes 50,200,1000] [--dir DIR]\n", argv[0]);
                        return 0;
                default:
                        return 2;
                }

        char tmpl[] = "/tmp/qubesd-bench-XXXXXX";
        bool own_dir = false;
        if (!base) {
                /* /tmp may be a tmpfs; --dir puts the files on the disk qubes.xml would live on */
                base = mkdtemp(tmpl);
                if (!base) {
                        perror("mkdtemp");
                        return 1;
                }
                own_dir = true;
        }
        log_set_max_level(LOG_WARNING);

        printf("qubes.xml load/save (model library), %d runs per size, files in %s\n", runs, base);
        int ret = 0;
        _cleanup_free_ char *list = strdup(sizes);
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int n = atoi(tok);
                if (n < 3 || n > QUBES_MAX_QID) {
                        fprintf(stderr, "bench-model: size %s out of range 3..%d\n", tok, QUBES_MAX_QID);
                        ret = 2;
                        continue;
                }
                if (bench_size(base, n, runs) < 0)
                        ret = 1;
        }
        if (own_dir)
                rm_rf(base);
        return ret;
}
