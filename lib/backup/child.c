/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "backup/child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/macros.h"

extern char **environ;

static void close_fd(int *fd) {
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

int child_spawn(char *const argv[], char *const env[], int stdin_fd, int stdout_fd, int stderr_fd, bool nonblock,
                Child *ret) {
        int fds[3] = { stdin_fd, stdout_fd, stderr_fd };
        int ours[3] = { -1, -1, -1 }, theirs[3] = { -1, -1, -1 };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, dflt;
        pid_t pid;
        int r;

        *ret = CHILD_NULL;
        for (int i = 0; i < 3; i++) {
                if (fds[i] == CHILD_PIPE) {
                        int p[2];
                        if (pipe2(p, O_CLOEXEC) < 0) {
                                r = -errno;
                                goto fail;
                        }
                        /* stdin: the child reads p[0]; stdout/stderr: the child writes p[1] */
                        theirs[i] = i == 0 ? p[0] : p[1];
                        ours[i] = i == 0 ? p[1] : p[0];
                        if (nonblock)
                                (void) fcntl(ours[i], F_SETFL, fcntl(ours[i], F_GETFL) | O_NONBLOCK);
                } else if (fds[i] == CHILD_NULL_FD) {
                        theirs[i] = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
                        if (theirs[i] < 0) {
                                r = -errno;
                                goto fail;
                        }
                } else {
                        theirs[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                        if (theirs[i] < 0) {
                                r = -errno;
                                goto fail;
                        }
                }
        }

        posix_spawn_file_actions_init(&fa);
        for (int i = 0; i < 3; i++)
                posix_spawn_file_actions_adddup2(&fa, theirs[i], i);
        posix_spawnattr_init(&attr);
        sigemptyset(&none);
        sigemptyset(&dflt);
        sigaddset(&dflt, SIGPIPE);
        sigaddset(&dflt, SIGTERM);
        sigaddset(&dflt, SIGINT);
        sigaddset(&dflt, SIGCHLD);
        sigaddset(&dflt, SIGHUP);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &dflt);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP |
                                                POSIX_SPAWN_USEVFORK);
        r = strchr(argv[0], '/') ? posix_spawn(&pid, argv[0], &fa, &attr, argv, env ?: environ)
                                 : posix_spawnp(&pid, argv[0], &fa, &attr, argv, env ?: environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0) {
                r = -r;
                goto fail;
        }
        for (int i = 0; i < 3; i++)
                close_fd(&theirs[i]);
        *ret = (Child){ .pid = pid, .in_fd = ours[0], .out_fd = ours[1], .err_fd = ours[2] };
        return 0;
fail:
        for (int i = 0; i < 3; i++) {
                close_fd(&theirs[i]);
                close_fd(&ours[i]);
        }
        return r;
}

void child_close_stdin(Child *c) {
        close_fd(&c->in_fd);
}

int child_wait(Child *c) {
        int status = 0, r;

        close_fd(&c->in_fd);
        close_fd(&c->out_fd);
        close_fd(&c->err_fd);
        if (c->pid <= 0)
                return 0;
        while (waitpid(c->pid, &status, 0) < 0)
                if (errno != EINTR) {
                        c->pid = 0;
                        return 127;
                }
        c->pid = 0;
        if (WIFEXITED(status))
                r = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
                r = 128 + WTERMSIG(status);
        else
                r = 127;
        return r;
}

void child_kill(Child *c) {
        if (c->pid > 0)
                (void) kill(-c->pid, SIGKILL);
        (void) child_wait(c);
}
