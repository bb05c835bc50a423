/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/hashmap.h"

#include <stdint.h>

typedef struct Entry {
        const char *key; /* NULL for a removed entry */
        void *value;
        uint32_t hash;
} Entry;

struct Hashmap {
        Entry *entries; /* insertion order, with holes for removed entries */
        size_t n_entries, n_alloc, n_live;
        int32_t *index; /* open addressing over entry indexes; -1 empty, -2 deleted */
        size_t n_index; /* power of two */
};

static uint32_t hash_string(const char *s) {
        /* FNV-1a: keys here are short qube/feature names supplied by trusted-length inputs. */
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 16777619u;
        return h;
}

Hashmap *hashmap_new(void) {
        return calloc(1, sizeof(Hashmap));
}

Hashmap *hashmap_free(Hashmap *h) {
        if (!h)
                return NULL;
        free(h->entries);
        free(h->index);
        free(h);
        return NULL;
}

static int32_t *find_slot(const Hashmap *h, const char *key, uint32_t hash, bool for_insert) {
        if (h->n_index == 0)
                return NULL;
        size_t mask = h->n_index - 1;
        int32_t *tomb = NULL;
        for (size_t i = hash & mask;; i = (i + 1) & mask) {
                int32_t *slot = &h->index[i];
                if (*slot == -1)
                        return for_insert ? (tomb ?: slot) : NULL;
                if (*slot == -2) {
                        if (!tomb)
                                tomb = slot;
                        continue;
                }
                const Entry *e = &h->entries[*slot];
                if (e->hash == hash && streq(e->key, key))
                        return slot;
        }
}

static int rebuild(Hashmap *h, size_t want_index) {
        /* Compact the entry array, then rebuild the index. */
        size_t j = 0;
        for (size_t i = 0; i < h->n_entries; i++)
                if (h->entries[i].key)
                        h->entries[j++] = h->entries[i];
        h->n_entries = j;

        int32_t *idx = malloc(sizeof(int32_t) * want_index);
        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < want_index; i++)
                idx[i] = -1;
        free(h->index);
        h->index = idx;
        h->n_index = want_index;
        for (size_t i = 0; i < h->n_entries; i++) {
                size_t mask = want_index - 1;
                size_t k = h->entries[i].hash & mask;
                while (idx[k] != -1)
                        k = (k + 1) & mask;
                idx[k] = (int32_t) i;
        }
        return 0;
}

static int ensure_room(Hashmap *h) {
        if (h->n_entries + 1 > h->n_alloc) {
                if (h->n_live * 2 < h->n_entries && h->n_entries > 8) {
                        int r = rebuild(h, h->n_index);
                        if (r < 0)
                                return r;
                } else {
                        size_t n = h->n_alloc ? h->n_alloc * 2 : 4; /* most maps are a qube's few features or tags */
                        Entry *e = realloc(h->entries, n * sizeof(Entry));
                        if (!e)
                                return -ENOMEM;
                        h->entries = e;
                        h->n_alloc = n;
                }
        }
        /* keep the index at most half full (counting removed entries, which still occupy slots) */
        if ((h->n_entries + 1) * 2 > h->n_index) {
                size_t n = h->n_index ? h->n_index : 8;
                while ((h->n_live + 1) * 4 > n)
                        n *= 2;
                int r = rebuild(h, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

int hashmap_put(Hashmap *h, const char *key, void *value) {
        uint32_t hash = hash_string(key);
        int32_t *slot = find_slot(h, key, hash, false);
        if (slot)
                return -EEXIST;
        int r = ensure_room(h);
        if (r < 0)
                return r;
        slot = find_slot(h, key, hash, true);
        h->entries[h->n_entries] = (Entry){ .key = key, .value = value, .hash = hash };
        *slot = (int32_t) h->n_entries++;
        h->n_live++;
        return 0;
}

int hashmap_replace(Hashmap *h, const char *key, void *value) {
        int32_t *slot = find_slot(h, key, hash_string(key), false);
        if (slot) {
                h->entries[*slot].value = value;
                h->entries[*slot].key = key;
                return 0;
        }
        return hashmap_put(h, key, value);
}

void *hashmap_get(const Hashmap *h, const char *key) {
        if (!h)
                return NULL;
        int32_t *slot = find_slot(h, key, hash_string(key), false);
        return slot ? h->entries[*slot].value : NULL;
}

bool hashmap_contains(const Hashmap *h, const char *key) {
        return h && find_slot(h, key, hash_string(key), false);
}

void *hashmap_remove(Hashmap *h, const char *key) {
        if (!h)
                return NULL;
        int32_t *slot = find_slot(h, key, hash_string(key), false);
        if (!slot)
                return NULL;
        Entry *e = &h->entries[*slot];
        void *v = e->value;
        e->key = NULL;
        e->value = NULL;
        *slot = -2;
        h->n_live--;
        return v;
}

size_t hashmap_size(const Hashmap *h) {
        return h ? h->n_live : 0;
}

bool hashmap_iterate(const Hashmap *h, size_t *i, const char **key, void **value) {
        if (!h)
                return false;
        while (*i < h->n_entries) {
                const Entry *e = &h->entries[(*i)++];
                if (!e->key)
                        continue;
                if (key)
                        *key = e->key;
                if (value)
                        *value = e->value;
                return true;
        }
        return false;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

const char **hashmap_sorted_keys(const Hashmap *h) {
        size_t n = hashmap_size(h), j = 0, i = 0;
        const char **keys = malloc(sizeof(char *) * (n + 1));
        if (!keys)
                return NULL;
        const char *k;
        while (hashmap_iterate(h, &i, &k, NULL))
                keys[j++] = k;
        keys[j] = NULL;
        qsort(keys, j, sizeof(char *), cmp_str);
        return keys;
}
