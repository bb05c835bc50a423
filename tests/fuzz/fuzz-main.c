/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A main() for fuzz targets built without libFuzzer: runs LLVMFuzzerTestOneInput once on each
 * file named on the command line (or each file in a named directory). The normal test build
 * uses it to replay the seed corpora, so the targets and their corpora never rot. */

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t len = 0, alloc = 0;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                if (len == alloc) {
                        alloc = alloc ? alloc * 2 : 4096;
                        uint8_t *n = realloc(buf, alloc);
                        if (!n) {
                                free(buf);
                                fclose(f);
                                return -1;
                        }
                        buf = n;
                }
                size_t got = fread(buf + len, 1, alloc - len, f);
                if (got == 0)
                        break;
                len += got;
        }
        fclose(f);
        /* an exact-size copy, so that sanitizers see reads past the input */
        uint8_t *exact = malloc(len ?: 1);
        if (!exact) {
                free(buf);
                return -1;
        }
        memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        return 0;
}

static int run_path(const char *path, unsigned *n) {
        struct stat st;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
                (*n)++;
                return run_file(path);
        }
        struct dirent **list;
        int k = scandir(path, &list, NULL, alphasort), r = 0;
        if (k < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (int i = 0; i < k; i++) {
                if (list[i]->d_name[0] != '.' && r == 0) {
                        char *p;
                        if (asprintf(&p, "%s/%s", path, list[i]->d_name) < 0)
                                r = -1;
                        else {
                                r = run_path(p, n);
                                free(p);
                        }
                }
                free(list[i]);
        }
        free(list);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned n = 0;

        for (int i = 1; i < argc; i++)
                if (run_path(argv[i], &n) < 0)
                        return 1;
        printf("%s: %u inputs, no failure\n", argv[0], n);
        return 0;
}
