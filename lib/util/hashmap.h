/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A string-keyed hash map that iterates in insertion order (as Python's dict does, which is the
 * order upstream uses for features). Keys are not copied: the key pointer must stay valid while
 * the entry exists, which is natural when the key lives inside the value. */
typedef struct Hashmap Hashmap;

Hashmap *hashmap_new(void);
Hashmap *hashmap_free(Hashmap *h); /* frees the map only; accepts NULL; returns NULL */
/* 0 on success, -EEXIST if the key is present, -ENOMEM. */
int hashmap_put(Hashmap *h, const char *key, void *value);
/* Insert or replace (keeps the old position when replacing). Returns 0 or -ENOMEM. */
int hashmap_replace(Hashmap *h, const char *key, void *value);
void *hashmap_get(const Hashmap *h, const char *key);
bool hashmap_contains(const Hashmap *h, const char *key);
/* Removes the key and returns its value (NULL if absent). Order of the rest is kept. */
void *hashmap_remove(Hashmap *h, const char *key);
size_t hashmap_size(const Hashmap *h);
/* Iterate in insertion order: size_t i = 0; while (hashmap_iterate(h, &i, &k, &v)) ... */
bool hashmap_iterate(const Hashmap *h, size_t *i, const char **key, void **value);
/* Sorted array of the keys (byte order), NULL-terminated, to free with free() (not the keys). */
const char **hashmap_sorted_keys(const Hashmap *h);

#include "util/macros.h"
DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free);
#define _cleanup_hashmap_free_ _cleanup_(hashmap_freep)
