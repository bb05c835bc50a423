/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The --version answer of every program of the package: "PROGRAM (qubesd) VERSION" on stdout
 * (just "qubesd VERSION" for the daemon), the version being meson's project version. Returns 0,
 * the exit status, so that an option handler can say `return version_print("qubesd");`. */
int version_print(const char *program);
