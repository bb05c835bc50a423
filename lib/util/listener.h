/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A listening socket on sd-event that a client cannot turn into a busy loop or a flood of log
 * lines: at most max connections at once (past that the listener waits and new clients wait in
 * the kernel's backlog), and when accept() fails for want of descriptors or memory (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM) or for any other reason, the listener rests for a short back-off
 * instead of being woken at once again. Each kind of trouble is logged at most once a minute
 * (the next line says how many times it happened in between). */

#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct Listener Listener;

/* fd: the accepted connection (non-blocking, close-on-exec), the callback's from then on. Return
 * 0 when the connection is kept (it holds one of the max places until listener_release()), or a
 * negative errno when it was refused (the callback closed fd). */
typedef int (*ListenerAcceptFn)(Listener *l, int fd, void *userdata);

/* Back-off after a failed accept(). */
#define LISTENER_BACKOFF_USEC (250 * 1000ULL)

/* Watches fd (not owned) on event. what names the socket in log lines. max 0: no limit. */
int listener_new(sd_event *event, int fd, const char *what, unsigned max, ListenerAcceptFn cb, void *userdata,
                 Listener **ret);
Listener *listener_free(Listener *l);
/* A connection that listener_new's callback kept has ended. */
void listener_release(Listener *l);
unsigned listener_connections(const Listener *l);

/* A log line at most once a minute: returns whether to write it now, and in *ret_suppressed how
 * many were held back since the last one. */
typedef struct LogLimit {
        uint64_t last_usec;
        unsigned suppressed;
        bool logged;
} LogLimit;
bool log_limit_ok(LogLimit *l, sd_event *event, unsigned *ret_suppressed);
/* "" or " (N more times since the last such line)", for the line log_limit_ok() allowed
 * (a static buffer: use it at once). */
const char *log_limit_suffix(unsigned suppressed);
