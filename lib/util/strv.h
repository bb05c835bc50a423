/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "util/macros.h"

/* NULL-terminated arrays of malloc'ed strings. */
char **strv_free(char **l);
size_t strv_length(char *const *l);
/* Appends a copy of s. Returns 0 or -ENOMEM (l unchanged then). */
int strv_extend(char ***l, const char *s);
/* Appends s itself (takes ownership on success). */
int strv_consume(char ***l, char *s);
char **strv_copy(char *const *l);
bool strv_contains(char *const *l, const char *s);
void strv_sort(char **l);
#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)

DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)
