/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/log.h"

#include <stdarg.h>

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...) {
        int e = error < 0 ? -error : error;

        if (level > max_level)
                return -e;

        int saved = errno;
        char buf[2048];
        va_list ap;
        va_start(ap, fmt);
        /* %m in fmt refers to the error passed in, not to whatever errno is now. */
        errno = e;
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (max_level >= LOG_DEBUG)
                fprintf(stderr, "<%d>%s (%s:%d %s)\n", level, buf, file, line, func);
        else
                fprintf(stderr, "<%d>%s\n", level, buf);
        errno = saved;
        return -e;
}
