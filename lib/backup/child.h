/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Child processes of a backup or a restore (the compression filter, GNU tar for dom0's home,
 * the qrexec runner): posix_spawn, never fork, since qubesd has threads. Each child gets an empty
 * signal mask, default dispositions and its own process group, so that stopping it also stops
 * what it started (the runner's service). */

#include <stdbool.h>
#include <sys/types.h>

typedef struct Child {
        pid_t pid;  /* 0: none */
        int in_fd;  /* our end of the child's stdin, or -1 */
        int out_fd; /* our end of the child's stdout, or -1 */
        int err_fd; /* our end of the child's stderr, or -1 */
} Child;

#define CHILD_NULL ((Child){ .pid = 0, .in_fd = -1, .out_fd = -1, .err_fd = -1 })

/* What each of the child's stdin, stdout and stderr is: CHILD_PIPE (a new pipe, our end
 * returned in the Child, close-on-exec and non-blocking when nonblock), CHILD_NULL_FD
 * (/dev/null), or a descriptor of ours. */
#define CHILD_PIPE (-100)
#define CHILD_NULL_FD (-101)

/* argv[0] is looked up on PATH unless it has a '/'. env NULL: ours. Returns 0 or -errno (the
 * program could not be started: -ENOENT when it does not exist). */
int child_spawn(char *const argv[], char *const env[], int stdin_fd, int stdout_fd, int stderr_fd, bool nonblock,
                Child *ret);
/* Wait for the child: its exit status, or 128 + signal. Closes our ends. */
int child_wait(Child *c);
/* SIGKILL to its process group, then child_wait(). No-op for no child. */
void child_kill(Child *c);
/* Close our end of its stdin (EOF for the child). */
void child_close_stdin(Child *c);
