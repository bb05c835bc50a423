/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* our CODE_* fields are those of the caller, not of this file */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;

enum {
        TARGET_UNKNOWN,
        TARGET_JOURNAL,        /* journald's native protocol, with fields */
        TARGET_JOURNAL_STREAM, /* journald's stream on stderr: "<N>" prefixes */
        TARGET_STDERR,         /* a terminal, a file: the message alone */
};
static int target = TARGET_UNKNOWN;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

/* systemd sets JOURNAL_STREAM=<dev>:<ino> when it connects stdout/stderr to journald; a child
 * whose stderr was redirected elsewhere inherits the variable, hence the comparison. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        uint64_t dev, ino;
        struct stat st;
        int n = 0;

        if (!e || sscanf(e, "%" SCNu64 ":%" SCNu64 "%n", &dev, &ino, &n) != 2 || e[n] != 0)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (uint64_t) st.st_dev == dev && (uint64_t) st.st_ino == ino;
}

static int log_target(void) {
        int t = __atomic_load_n(&target, __ATOMIC_RELAXED);
        if (t == TARGET_UNKNOWN) {
                if (!stderr_is_journal())
                        t = TARGET_STDERR;
                else
                        /* sd_journal_sendv() drops lines silently when the socket is absent */
                        t = access("/run/systemd/journal/socket", W_OK) == 0 ? TARGET_JOURNAL : TARGET_JOURNAL_STREAM;
                __atomic_store_n(&target, t, __ATOMIC_RELAXED);
        }
        return t;
}

static bool journal_send(int level, int e, const char *qube, const char *file, int line, const char *func,
                         const char *msg) {
        char prio[16], code_line[32], errno_field[32];
        _cleanup_free_ char *message = NULL, *ident = NULL, *code_file = NULL, *code_func = NULL, *vm = NULL;
        struct iovec iov[8];
        size_t n = 0;

#define FIELD(var, ...)                                        \
        do {                                                   \
                if (asprintf(&var, __VA_ARGS__) < 0)           \
                        return false;                          \
                iov[n++] = (struct iovec){ var, strlen(var) }; \
        } while (0)
        FIELD(message, "MESSAGE=%s", msg);
        FIELD(ident, "SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
        FIELD(code_file, "CODE_FILE=%s", file);
        FIELD(code_func, "CODE_FUNC=%s", func);
        if (qube)
                FIELD(vm, "QUBES_VM=%s", qube);
#undef FIELD
        snprintf(prio, sizeof prio, "PRIORITY=%i", level);
        iov[n++] = (struct iovec){ prio, strlen(prio) };
        snprintf(code_line, sizeof code_line, "CODE_LINE=%i", line);
        iov[n++] = (struct iovec){ code_line, strlen(code_line) };
        if (e > 0) {
                snprintf(errno_field, sizeof errno_field, "ERRNO=%i", e);
                iov[n++] = (struct iovec){ errno_field, strlen(errno_field) };
        }
        return sd_journal_sendv(iov, (int) n) >= 0;
}

static int log_dispatch(int level, int error, const char *qube, const char *file, int line, const char *func,
                        const char *fmt, va_list ap) {
        int e = error < 0 ? -error : error;

        if (level > max_level)
                return -e;

        int saved = errno;
        char buf[2048];
        /* %m in fmt refers to the error passed in, not to whatever errno is now. */
        errno = e;
        vsnprintf(buf, sizeof buf, fmt, ap);

        int t = log_target();
        if (t == TARGET_JOURNAL && journal_send(level, e, qube, file, line, func, buf))
                t = TARGET_UNKNOWN; /* sent */
        if (t == TARGET_JOURNAL || t == TARGET_JOURNAL_STREAM)
                /* journald's stream on stderr understands priority prefixes */
                fprintf(stderr, "<%d>%s\n", level, buf);
        else if (t == TARGET_STDERR && max_level >= LOG_DEBUG)
                fprintf(stderr, "%s (%s:%d %s)\n", buf, file, line, func);
        else if (t == TARGET_STDERR)
                fprintf(stderr, "%s\n", buf);
        errno = saved;
        return -e;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_dispatch(level, error, NULL, file, line, func, fmt, ap);
        va_end(ap);
        return r;
}

int log_internal_qube(int level, int error, const char *qube, const char *file, int line, const char *func,
                      const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_dispatch(level, error, qube, file, line, func, fmt, ap);
        va_end(ap);
        return r;
}
