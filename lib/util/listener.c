/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/listener.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/log.h"
#include "util/macros.h"

#define LOG_INTERVAL_USEC (60 * 1000 * 1000ULL)

struct Listener {
        sd_event *event;
        sd_event_source *io;
        sd_event_source *retry; /* the back-off after a failed accept() */
        char *what;
        unsigned n, max;
        bool full; /* max reached: not accepting until one ends */
        LogLimit full_log, fail_log;
        ListenerAcceptFn cb;
        void *userdata;
};

bool log_limit_ok(LogLimit *l, sd_event *event, unsigned *ret_suppressed) {
        uint64_t now = 0;
        (void) sd_event_now(event, CLOCK_MONOTONIC, &now);
        if (l->logged && now < l->last_usec + LOG_INTERVAL_USEC) {
                l->suppressed++;
                return false;
        }
        *ret_suppressed = l->suppressed;
        l->suppressed = 0;
        l->last_usec = now;
        l->logged = true;
        return true;
}

const char *log_limit_suffix(unsigned suppressed) {
        static char buf[64];
        if (suppressed == 0)
                return "";
        snprintf(buf, sizeof buf, " (%u more times since the last such line)", suppressed);
        return buf;
}

static void update(Listener *l) {
        (void) sd_event_source_set_enabled(l->io, l->full || l->retry ? SD_EVENT_OFF : SD_EVENT_ON);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Listener *l = userdata;
        l->retry = sd_event_source_unref(l->retry);
        update(l);
        return 0;
}

static void back_off(Listener *l, int error) {
        unsigned suppressed = 0;
        if (log_limit_ok(&l->fail_log, l->event, &suppressed))
                log_warning_errno(error, "Cannot accept connections on %s: %m; pausing %llu ms each time%s.", l->what,
                                  LISTENER_BACKOFF_USEC / 1000, log_limit_suffix(suppressed));
        if (!l->retry && sd_event_add_time_relative(l->event, &l->retry, CLOCK_MONOTONIC, LISTENER_BACKOFF_USEC,
                                                    10 * 1000, on_retry, l) < 0)
                l->retry = NULL; /* cannot even rest: keep trying rather than stop for good */
        update(l);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Listener *l = userdata;

        for (;;) {
                if (l->max > 0 && l->n >= l->max) {
                        unsigned suppressed = 0;
                        l->full = true;
                        update(l);
                        if (log_limit_ok(&l->full_log, l->event, &suppressed))
                                log_warning("%s: %u connections, the most allowed; new ones wait for one to end%s.",
                                            l->what, l->max, log_limit_suffix(suppressed));
                        return 0;
                }
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        back_off(l, errno);
                        return 0;
                }
                l->n++;
                if (l->cb(l, cfd, l->userdata) < 0)
                        l->n--;
        }
}

int listener_new(sd_event *event, int fd, const char *what, unsigned max, ListenerAcceptFn cb, void *userdata,
                 Listener **ret) {
        Listener *l = new0(Listener, 1);
        int r;

        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(event);
        l->max = max;
        l->cb = cb;
        l->userdata = userdata;
        l->what = strdup(what);
        if (!l->what) {
                listener_free(l);
                return -ENOMEM;
        }
        r = sd_event_add_io(event, &l->io, fd, EPOLLIN, on_io, l);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

Listener *listener_free(Listener *l) {
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->retry);
        sd_event_unref(l->event);
        free(l->what);
        free(l);
        return NULL;
}

void listener_release(Listener *l) {
        if (!l || l->n == 0)
                return;
        l->n--;
        if (l->full && l->n < l->max) {
                l->full = false;
                update(l);
        }
}

unsigned listener_connections(const Listener *l) {
        return l ? l->n : 0;
}
