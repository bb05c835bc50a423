/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A small strict JSON (RFC 8259) reader producing a tree; enough for the system-info document.
 * Objects keep their members in document order; duplicate keys are rejected because the
 * document comes across a trust boundary and a later duplicate must not silently win. */

#include <stdbool.h>
#include <stddef.h>

typedef enum JsonType {
        JSON_NULL,
        JSON_BOOL,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
} JsonType;

typedef struct JsonValue JsonValue;
struct JsonValue {
        JsonType type;
        bool boolean;
        double number;
        char *string;      /* JSON_STRING (NUL-free, UTF-8); JSON_NUMBER: its text */
        size_t n;          /* array / object: number of items */
        JsonValue **items; /* array items, object values */
        char **keys;       /* object keys */
};

/* 0, or -EINVAL with a message in *error ("offset N: …"), or -ENOMEM. */
int json_parse(const char *text, size_t len, JsonValue **ret, char **error);
JsonValue *json_free(JsonValue *v);
const JsonValue *json_object_get(const JsonValue *o, const char *key);
const char *json_type_name(JsonType t);

static inline void json_freep(JsonValue **v) {
        if (*v)
                json_free(*v);
}
