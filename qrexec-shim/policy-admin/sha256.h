/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

void sha256(const void *data, size_t len, uint8_t out[32]);
/* Lowercase hex digest, NUL-terminated. */
void sha256_hex(const void *data, size_t len, char out[65]);
