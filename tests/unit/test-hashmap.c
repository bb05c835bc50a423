/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tests of lib/util/hashmap.c: the string map that keeps insertion order (features are listed
 * in the order they were set, as upstream's dict does). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"

static int failures = 0;

#define CHECK(cond, ...)                                                                         \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                            \
                        fputc('\n', stderr);                                                     \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

/* Keys must outlive their entries: the tests keep them in arrays of fixed strings. */
static char *xstrdup(const char *s) {
        char *p = strdup(s);
        assert(p);
        return p;
}

/* The keys of h in iteration order, joined with spaces (malloc'ed). */
static char *keys_in_order(const Hashmap *h) {
        size_t cap = 64, len = 0, i = 0;
        char *out = malloc(cap);
        assert(out);
        out[0] = '\0';
        const char *k;
        while (hashmap_iterate(h, &i, &k, NULL)) {
                size_t kl = strlen(k);
                while (len + kl + 2 > cap) {
                        cap *= 2;
                        out = realloc(out, cap);
                        assert(out);
                }
                if (len > 0)
                        out[len++] = ' ';
                memcpy(out + len, k, kl + 1);
                len += kl;
        }
        return out;
}

static void test_empty(void) {
        Hashmap *h = hashmap_new();
        assert(h);
        CHECK(hashmap_size(h) == 0, "new map has %zu entries", hashmap_size(h));
        CHECK(hashmap_get(h, "x") == NULL, "get on an empty map found something");
        CHECK(!hashmap_contains(h, "x"), "contains on an empty map");
        CHECK(hashmap_remove(h, "x") == NULL, "remove on an empty map returned something");
        size_t i = 0;
        CHECK(!hashmap_iterate(h, &i, NULL, NULL), "iterating an empty map yields an entry");
        const char **keys = hashmap_sorted_keys(h);
        CHECK(keys && keys[0] == NULL, "sorted keys of an empty map are not empty");
        free(keys);
        hashmap_free(h);

        /* NULL is accepted where the header says so. */
        CHECK(hashmap_free(NULL) == NULL, "hashmap_free(NULL)");
        CHECK(hashmap_size(NULL) == 0, "hashmap_size(NULL)");
        CHECK(hashmap_get(NULL, "x") == NULL, "hashmap_get(NULL)");
        CHECK(!hashmap_contains(NULL, "x"), "hashmap_contains(NULL)");
        i = 0;
        CHECK(!hashmap_iterate(NULL, &i, NULL, NULL), "hashmap_iterate(NULL)");
}

static void test_put_get_replace(void) {
        _cleanup_hashmap_free_ Hashmap *h = hashmap_new();
        int a = 1, b = 2, c = 3;
        CHECK(hashmap_put(h, "alpha", &a) == 0, "put alpha");
        CHECK(hashmap_put(h, "beta", &b) == 0, "put beta");
        CHECK(hashmap_put(h, "alpha", &c) == -EEXIST, "a second put of a key must give -EEXIST");
        CHECK(hashmap_get(h, "alpha") == &a, "a refused put changed the value");
        CHECK(hashmap_size(h) == 2, "size %zu, expected 2", hashmap_size(h));

        /* replace keeps the position of an existing key and appends a new one */
        CHECK(hashmap_replace(h, "alpha", &c) == 0, "replace alpha");
        CHECK(hashmap_get(h, "alpha") == &c, "replace did not change the value");
        CHECK(hashmap_replace(h, "gamma", &a) == 0, "replace of a new key");
        _cleanup_free_ char *order = keys_in_order(h);
        CHECK(streq(order, "alpha beta gamma"), "order after replace: '%s'", order);

        /* the empty string is a key like any other */
        CHECK(hashmap_put(h, "", &b) == 0, "put of the empty key");
        CHECK(hashmap_get(h, "") == &b, "get of the empty key");
        CHECK(hashmap_contains(h, ""), "contains of the empty key");

        /* a NULL value is stored, and contains() tells it from absence */
        CHECK(hashmap_put(h, "nothing", NULL) == 0, "put of a NULL value");
        CHECK(hashmap_contains(h, "nothing"), "contains of a key with a NULL value");
        CHECK(!hashmap_contains(h, "nothing2"), "contains of an absent key");
        CHECK(hashmap_size(h) == 5, "size %zu, expected 5", hashmap_size(h));
}

static void test_order_after_removals(void) {
        _cleanup_hashmap_free_ Hashmap *h = hashmap_new();
        static const char *const names[] = { "service.cups", "servicevm",       "os",       "gui",     "qrexec",
                                             "vmexec",       "appmenus-dispvm", "internal", "stubdom", "menu-items" };
        int vals[ELEMENTSOF(names)];
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                vals[i] = (int) i;
                CHECK(hashmap_put(h, names[i], &vals[i]) == 0, "put %s", names[i]);
        }
        CHECK(hashmap_remove(h, "os") == &vals[2], "remove returns the value");
        CHECK(hashmap_remove(h, "os") == NULL, "a second remove finds nothing");
        CHECK(hashmap_remove(h, "service.cups") == &vals[0], "remove of the first key");
        CHECK(hashmap_remove(h, "menu-items") == &vals[9], "remove of the last key");
        _cleanup_free_ char *o1 = keys_in_order(h);
        CHECK(streq(o1, "servicevm gui qrexec vmexec appmenus-dispvm internal stubdom"), "order after removals: '%s'",
              o1);

        /* a removed key put again goes to the end, like a Python dict */
        CHECK(hashmap_put(h, "os", &vals[2]) == 0, "put os again");
        CHECK(hashmap_put(h, "service.cups", &vals[0]) == 0, "put service.cups again");
        _cleanup_free_ char *o2 = keys_in_order(h);
        CHECK(streq(o2, "servicevm gui qrexec vmexec appmenus-dispvm internal stubdom os service.cups"),
              "order after re-insertion: '%s'", o2);
        CHECK(hashmap_size(h) == 9, "size %zu, expected 9", hashmap_size(h));

        /* many removals and insertions (forcing the entry array to compact) keep the order */
        char keybuf[64][16];
        for (int round = 0; round < 50; round++) {
                for (int j = 0; j < 64; j++) {
                        snprintf(keybuf[j], sizeof keybuf[j], "k%d", j);
                        if (round > 0)
                                CHECK(hashmap_remove(h, keybuf[j]) != NULL, "round %d: remove %s", round, keybuf[j]);
                }
                for (int j = 0; j < 64; j++)
                        CHECK(hashmap_put(h, keybuf[j], &vals[0]) == 0, "round %d: put %s", round, keybuf[j]);
        }
        size_t i = 0, n = 0;
        const char *k;
        /* the nine survivors first, in their order, then k0..k63 */
        static const char *const survivors[] = { "servicevm", "gui",     "qrexec", "vmexec",      "appmenus-dispvm",
                                                 "internal",  "stubdom", "os",     "service.cups" };
        while (hashmap_iterate(h, &i, &k, NULL)) {
                char want[32];
                const char *w = want;
                if (n < ELEMENTSOF(survivors))
                        w = survivors[n];
                else
                        snprintf(want, sizeof want, "k%zu", n - ELEMENTSOF(survivors));
                CHECK(streq(k, w), "entry %zu is '%s', expected '%s'", n, k, w);
                n++;
        }
        CHECK(n == 9 + 64, "iterated %zu entries, expected %d", n, 9 + 64);
        CHECK(hashmap_size(h) == 9 + 64, "size %zu", hashmap_size(h));
}

static void test_remove_all_then_reuse(void) {
        _cleanup_hashmap_free_ Hashmap *h = hashmap_new();
        static const char *const names[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l" };
        int v = 0;
        for (int round = 0; round < 20; round++) {
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        CHECK(hashmap_put(h, names[i], &v) == 0, "round %d put %s", round, names[i]);
                CHECK(hashmap_size(h) == ELEMENTSOF(names), "round %d size %zu", round, hashmap_size(h));
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        CHECK(hashmap_remove(h, names[i]) == &v, "round %d remove %s", round, names[i]);
                CHECK(hashmap_size(h) == 0, "round %d size after removing all: %zu", round, hashmap_size(h));
                size_t it = 0;
                CHECK(!hashmap_iterate(h, &it, NULL, NULL), "round %d: emptied map still iterates", round);
        }
}

static void test_sorted_keys(void) {
        _cleanup_hashmap_free_ Hashmap *h = hashmap_new();
        static const char *const names[] = { "work", "sys-net", "dom0", "Zeta", "default-dvm", "sys-firewall", "a" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                CHECK(hashmap_put(h, names[i], NULL) == 0, "put %s", names[i]);
        hashmap_remove(h, "a");
        _cleanup_free_ const char **keys = hashmap_sorted_keys(h);
        static const char *const want[] = { "Zeta", "default-dvm", "dom0", "sys-firewall", "sys-net", "work" };
        size_t n = 0;
        for (; keys[n]; n++)
                if (n < ELEMENTSOF(want))
                        CHECK(streq(keys[n], want[n]), "sorted key %zu is '%s', expected '%s'", n, keys[n], want[n]);
        CHECK(n == ELEMENTSOF(want), "%zu sorted keys, expected %zu", n, ELEMENTSOF(want));
}

/* Keys whose hashes collide in the low bits still work (probing across tombstones). */
static void test_colliding_probes(void) {
        _cleanup_hashmap_free_ Hashmap *h = hashmap_new();
        enum { N = 2000 };
        char **keys = calloc(N, sizeof(char *));
        assert(keys);
        for (int i = 0; i < N; i++) {
                char buf[32];
                snprintf(buf, sizeof buf, "tag-%d", i);
                keys[i] = xstrdup(buf);
                CHECK(hashmap_put(h, keys[i], keys[i]) == 0, "put %s", keys[i]);
        }
        /* remove every other key, then look up all of them */
        for (int i = 0; i < N; i += 2)
                CHECK(hashmap_remove(h, keys[i]) == keys[i], "remove %s", keys[i]);
        for (int i = 0; i < N; i++) {
                void *v = hashmap_get(h, keys[i]);
                if (i % 2 == 0)
                        CHECK(v == NULL, "removed %s still found", keys[i]);
                else
                        CHECK(v == keys[i], "%s lost after removals", keys[i]);
        }
        for (int i = 0; i < N; i++)
                free(keys[i]);
        free(keys);
}

static void test_growth_100k(void) {
        enum { N = 100000 };
        _cleanup_hashmap_free_ Hashmap *h = hashmap_new();
        char **keys = calloc(N, sizeof(char *));
        assert(keys);
        for (size_t i = 0; i < N; i++) {
                char buf[32];
                snprintf(buf, sizeof buf, "qube-%zu", i);
                keys[i] = xstrdup(buf);
                int r = hashmap_put(h, keys[i], keys[i]);
                if (r != 0) {
                        CHECK(r == 0, "put %s gave %d", keys[i], r);
                        break;
                }
        }
        CHECK(hashmap_size(h) == N, "size %zu after %d puts", hashmap_size(h), N);

        size_t missing = 0;
        for (size_t i = 0; i < N; i++)
                if (hashmap_get(h, keys[i]) != keys[i])
                        missing++;
        CHECK(missing == 0, "%zu of %d keys not found after growth", missing, N);
        CHECK(!hashmap_contains(h, "qube-100000"), "a key never put is found");

        /* insertion order survives all the rehashing */
        size_t it = 0, n = 0, out_of_order = 0;
        const char *k;
        void *v;
        while (hashmap_iterate(h, &it, &k, &v)) {
                if (n >= N || k != keys[n] || v != keys[n])
                        out_of_order++;
                n++;
        }
        CHECK(n == N && out_of_order == 0, "iterated %zu entries, %zu out of order", n, out_of_order);

        /* remove the odd ones (a lot of tombstones), grow again, and check order and lookups */
        for (size_t i = 1; i < N; i += 2)
                CHECK(hashmap_remove(h, keys[i]) == keys[i], "remove %s", keys[i]);
        CHECK(hashmap_size(h) == N / 2, "size %zu after removing half", hashmap_size(h));
        for (size_t i = 1; i < N; i += 2)
                CHECK(hashmap_put(h, keys[i], keys[i]) == 0, "put %s again", keys[i]);
        CHECK(hashmap_size(h) == N, "size %zu after putting back", hashmap_size(h));

        it = 0;
        n = 0;
        out_of_order = 0;
        while (hashmap_iterate(h, &it, &k, NULL)) {
                /* evens first in order, then odds in order */
                size_t want = n < N / 2 ? 2 * n : 2 * (n - N / 2) + 1;
                if (k != keys[want])
                        out_of_order++;
                n++;
        }
        CHECK(n == N && out_of_order == 0, "after re-insertion: %zu entries, %zu out of order", n, out_of_order);

        missing = 0;
        for (size_t i = 0; i < N; i++)
                if (hashmap_get(h, keys[i]) != keys[i])
                        missing++;
        CHECK(missing == 0, "%zu keys not found after re-insertion", missing);

        _cleanup_free_ const char **sorted = hashmap_sorted_keys(h);
        size_t ns = 0, unsorted = 0;
        for (; sorted && sorted[ns]; ns++)
                if (ns > 0 && strcmp(sorted[ns - 1], sorted[ns]) >= 0)
                        unsorted++;
        CHECK(ns == N && unsorted == 0, "sorted keys: %zu, %zu out of order", ns, unsorted);

        hashmap_free(TAKE_PTR(h));
        for (size_t i = 0; i < N; i++)
                free(keys[i]);
        free(keys);
}

int main(void) {
        test_empty();
        test_put_get_replace();
        test_order_after_removals();
        test_remove_all_then_reuse();
        test_sorted_keys();
        test_colliding_probes();
        test_growth_100k();
        if (failures) {
                fprintf(stderr, "test-hashmap: %d check(s) failed\n", failures);
                return EXIT_FAILURE;
        }
        printf("test-hashmap: all checks passed\n");
        return EXIT_SUCCESS;
}
