/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/version.h"

#include <stdio.h>
#include <string.h>

#include "config.h"

int version_print(const char *program) {
        if (strcmp(program, "qubesd") == 0)
                printf("qubesd %s\n", PACKAGE_VERSION);
        else
                printf("%s (qubesd) %s\n", program, PACKAGE_VERSION);
        return fflush(stdout) == 0 ? 0 : 1;
}
