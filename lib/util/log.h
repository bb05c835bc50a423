/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <syslog.h>

#include "util/macros.h"

void log_set_max_level(int level);
int log_get_max_level(void);

/* Where a line goes is decided once, at the first line:
 *  - stderr is the journal (systemd's JOURNAL_STREAM names stderr's device:inode): the line is
 *    sent to journald with structured fields (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_*,
 *    ERRNO, and QUBES_VM when it is about a qube), so that `journalctl QUBES_VM=work` finds it;
 *    if journald cannot be reached, the line goes to stderr with a "<N>" priority prefix;
 *  - anything else (a terminal, a file, a pipe): the message alone, plus "(file:line func)" at
 *    the debug level.
 * Every function returns -abs(error), so that `return log_error_errno(r, "…: %m");` works; %m
 * is the error passed in. */
int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...)
        _printf_(6, 7);
/* The same about one qube: QUBES_VM=<qube> in the journal (qube may be NULL). */
int log_internal_qube(int level, int error, const char *qube, const char *file, int line, const char *func,
                      const char *fmt, ...) _printf_(7, 8);

#define log_full_errno(level, error, ...) log_internal(level, error, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
#define log_oom() log_full_errno(LOG_ERR, ENOMEM, "Out of memory.")

/* Lines about one qube (a start, a shutdown, a refused call from it): the message says what
 * happened in words; the qube's name also travels as the journal field QUBES_VM. */
#define log_qube_full_errno(level, error, qube, ...) \
        log_internal_qube(level, error, qube, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_qube_debug(qube, ...) log_qube_full_errno(LOG_DEBUG, 0, qube, __VA_ARGS__)
#define log_qube_info(qube, ...) log_qube_full_errno(LOG_INFO, 0, qube, __VA_ARGS__)
#define log_qube_notice(qube, ...) log_qube_full_errno(LOG_NOTICE, 0, qube, __VA_ARGS__)
#define log_qube_warning(qube, ...) log_qube_full_errno(LOG_WARNING, 0, qube, __VA_ARGS__)
#define log_qube_error(qube, ...) log_qube_full_errno(LOG_ERR, 0, qube, __VA_ARGS__)
#define log_qube_warning_errno(qube, e, ...) log_qube_full_errno(LOG_WARNING, e, qube, __VA_ARGS__)
#define log_qube_error_errno(qube, e, ...) log_qube_full_errno(LOG_ERR, e, qube, __VA_ARGS__)
