/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvirt's event loop implementation on sd-event.
 *
 * libvirt calls the add/update/remove functions from any thread: from the loop (while it
 * dispatches a callback) and from the workers that run blocking libvirt calls (opening a remote
 * connection adds a handle for its socket). sd-event is not thread-safe, so the handles and
 * timeouts live in our own table under a mutex, and only the loop thread touches sd-event
 * sources: a change made on the loop is applied at once, a change made elsewhere wakes the loop
 * through an eventfd and is applied there. Dispatch always re-reads the table, so a source that
 * is still armed for a handle another thread just removed or muted never calls libvirt back.
 * libvirt's free callbacks run from a later loop iteration, never from inside remove, as its
 * documentation asks. */
#include "libvirt-event.h"

#include <libvirt/libvirt.h>
#include <stdlib.h>
#include <unistd.h>

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "util/log.h"

typedef struct LvHandle {
        int watch;
        int fd;
        int events; /* VIR_EVENT_HANDLE_* wanted now */
        virEventHandleCallback cb;
        void *opaque;
        virFreeCallback ff;
        sd_event_source *source;
        bool deleted, changed;
} LvHandle;

typedef struct LvTimeout {
        int timer;
        int frequency; /* ms; -1 disabled */
        virEventTimeoutCallback cb;
        void *opaque;
        virFreeCallback ff;
        sd_event_source *source;
        bool deleted, changed;
} LvTimeout;

static struct {
        pthread_mutex_t lock;
        sd_event *event;
        pthread_t loop_thread;
        int wake_fd;
        bool wake_pending;
        sd_event_source *wake_source;
        LvHandle **handles;
        size_t n_handles;
        LvTimeout **timeouts;
        size_t n_timeouts;
        int next_watch, next_timer;
} lv = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .wake_fd = -EBADF,
        .next_watch = 1,
        .next_timer = 1,
};

static bool on_loop_thread(void) {
        return lv.event && pthread_equal(pthread_self(), lv.loop_thread);
}

static uint32_t vir_to_epoll(int events) {
        uint32_t e = 0;
        if (events & VIR_EVENT_HANDLE_READABLE)
                e |= EPOLLIN;
        if (events & VIR_EVENT_HANDLE_WRITABLE)
                e |= EPOLLOUT;
        return e;
}

static int epoll_to_vir(uint32_t e) {
        int events = 0;
        if (e & EPOLLIN)
                events |= VIR_EVENT_HANDLE_READABLE;
        if (e & EPOLLOUT)
                events |= VIR_EVENT_HANDLE_WRITABLE;
        if (e & EPOLLERR)
                events |= VIR_EVENT_HANDLE_ERROR;
        if (e & EPOLLHUP)
                events |= VIR_EVENT_HANDLE_HANGUP;
        return events;
}

/* Called with the lock held. */
static void wake_loop(void) {
        uint64_t one = 1;
        if (lv.wake_pending || lv.wake_fd < 0)
                return;
        if (write(lv.wake_fd, &one, sizeof one) == sizeof one)
                lv.wake_pending = true;
}

static LvHandle *find_handle(int watch) {
        for (size_t i = 0; i < lv.n_handles; i++)
                if (lv.handles[i]->watch == watch)
                        return lv.handles[i];
        return NULL;
}

static LvTimeout *find_timeout(int timer) {
        for (size_t i = 0; i < lv.n_timeouts; i++)
                if (lv.timeouts[i]->timer == timer)
                        return lv.timeouts[i];
        return NULL;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        int watch = (int) (intptr_t) userdata, events;
        virEventHandleCallback cb;
        void *opaque;

        pthread_mutex_lock(&lv.lock);
        LvHandle *h = find_handle(watch);
        if (!h || h->deleted || h->events == 0) {
                pthread_mutex_unlock(&lv.lock);
                return 0;
        }
        cb = h->cb;
        opaque = h->opaque;
        /* errors and hang-ups are always reported, as libvirt's own loop does */
        events = epoll_to_vir(revents) & (h->events | VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP);
        pthread_mutex_unlock(&lv.lock);
        if (events)
                cb(watch, fd, events, opaque);
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static void arm_timeout(LvTimeout *t) {
        if (!t->source)
                return;
        if (t->frequency < 0) {
                (void) sd_event_source_set_enabled(t->source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(t->source, now_usec() + (uint64_t) t->frequency * 1000ULL);
        (void) sd_event_source_set_enabled(t->source, SD_EVENT_ONESHOT);
}

static int on_time(sd_event_source *s, uint64_t usec, void *userdata) {
        int timer = (int) (intptr_t) userdata;
        virEventTimeoutCallback cb;
        void *opaque;

        pthread_mutex_lock(&lv.lock);
        LvTimeout *t = find_timeout(timer);
        if (!t || t->deleted || t->frequency < 0) {
                pthread_mutex_unlock(&lv.lock);
                return 0;
        }
        cb = t->cb;
        opaque = t->opaque;
        /* re-arm first: the callback may change the frequency itself */
        arm_timeout(t);
        pthread_mutex_unlock(&lv.lock);
        cb(timer, opaque);
        return 0;
}

/* Loop thread, lock held: bring the sd-event sources in line with the table. Entries that
 * were removed are unlinked into *dead (their free callbacks run outside the lock). */
static void sync_locked(LvHandle ***dead_h, size_t *n_dead_h, LvTimeout ***dead_t, size_t *n_dead_t) {
        size_t k = 0;

        for (size_t i = 0; i < lv.n_handles; i++) {
                LvHandle *h = lv.handles[i];
                if (h->deleted) {
                        h->source = sd_event_source_disable_unref(h->source);
                        if (dead_h) {
                                LvHandle **n = realloc(*dead_h, (*n_dead_h + 1) * sizeof(LvHandle *));
                                if (n) {
                                        n[(*n_dead_h)++] = h;
                                        *dead_h = n;
                                        continue;
                                }
                        }
                        lv.handles[k++] = h; /* keep it for the next pass */
                        continue;
                }
                lv.handles[k++] = h;
                if (!h->changed)
                        continue;
                h->changed = false;
                if (!h->source) {
                        int r = sd_event_add_io(lv.event, &h->source, h->fd, vir_to_epoll(h->events), on_io,
                                                (void *) (intptr_t) h->watch);
                        if (r < 0) {
                                log_warning_errno(r, "Cannot watch libvirt fd %d: %m", h->fd);
                                continue;
                        }
                        (void) sd_event_source_set_description(h->source, "libvirt-io");
                } else
                        (void) sd_event_source_set_io_events(h->source, vir_to_epoll(h->events));
                (void) sd_event_source_set_enabled(h->source, h->events ? SD_EVENT_ON : SD_EVENT_OFF);
        }
        lv.n_handles = k;

        k = 0;
        for (size_t i = 0; i < lv.n_timeouts; i++) {
                LvTimeout *t = lv.timeouts[i];
                if (t->deleted) {
                        t->source = sd_event_source_disable_unref(t->source);
                        if (dead_t) {
                                LvTimeout **n = realloc(*dead_t, (*n_dead_t + 1) * sizeof(LvTimeout *));
                                if (n) {
                                        n[(*n_dead_t)++] = t;
                                        *dead_t = n;
                                        continue;
                                }
                        }
                        lv.timeouts[k++] = t;
                        continue;
                }
                lv.timeouts[k++] = t;
                if (!t->changed)
                        continue;
                t->changed = false;
                if (!t->source) {
                        int r = sd_event_add_time(lv.event, &t->source, CLOCK_MONOTONIC, UINT64_MAX, 0, on_time,
                                                  (void *) (intptr_t) t->timer);
                        if (r < 0) {
                                log_warning_errno(r, "Cannot add a libvirt timer: %m");
                                continue;
                        }
                        (void) sd_event_source_set_description(t->source, "libvirt-timer");
                }
                arm_timeout(t);
        }
        lv.n_timeouts = k;
}

static void sync_and_free(void) {
        _cleanup_free_ LvHandle **dead_h = NULL;
        _cleanup_free_ LvTimeout **dead_t = NULL;
        size_t n_dead_h = 0, n_dead_t = 0;

        pthread_mutex_lock(&lv.lock);
        sync_locked(&dead_h, &n_dead_h, &dead_t, &n_dead_t);
        pthread_mutex_unlock(&lv.lock);

        for (size_t i = 0; i < n_dead_h; i++) {
                if (dead_h[i]->ff)
                        dead_h[i]->ff(dead_h[i]->opaque);
                free(dead_h[i]);
        }
        for (size_t i = 0; i < n_dead_t; i++) {
                if (dead_t[i]->ff)
                        dead_t[i]->ff(dead_t[i]->opaque);
                free(dead_t[i]);
        }
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t v;
        (void) read(fd, &v, sizeof v);
        pthread_mutex_lock(&lv.lock);
        lv.wake_pending = false;
        pthread_mutex_unlock(&lv.lock);
        sync_and_free();
        return 0;
}

/* After a change (lock held): on the loop apply it now, except frees, which wait for the wake
 * handler (a later dispatch); elsewhere wake the loop. */
static void changed_locked(bool needs_free) {
        if (!lv.event)
                return; /* shut down: nothing is dispatched any more */
        if (on_loop_thread()) {
                sync_locked(NULL, NULL, NULL, NULL);
                if (!needs_free)
                        return;
        }
        wake_loop();
}

static int lv_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff) {
        LvHandle *h = new0(LvHandle, 1);
        if (!h)
                return -1;
        *h = (LvHandle){ .fd = fd, .events = events, .cb = cb, .opaque = opaque, .ff = ff, .changed = true };
        pthread_mutex_lock(&lv.lock);
        LvHandle **n = realloc(lv.handles, (lv.n_handles + 1) * sizeof(LvHandle *));
        if (!n) {
                pthread_mutex_unlock(&lv.lock);
                free(h);
                return -1;
        }
        lv.handles = n;
        h->watch = lv.next_watch++;
        lv.handles[lv.n_handles++] = h;
        int watch = h->watch;
        changed_locked(false);
        pthread_mutex_unlock(&lv.lock);
        return watch;
}

static void lv_update_handle(int watch, int events) {
        pthread_mutex_lock(&lv.lock);
        LvHandle *h = find_handle(watch);
        if (h && !h->deleted && h->events != events) {
                h->events = events;
                h->changed = true;
                changed_locked(false);
        }
        pthread_mutex_unlock(&lv.lock);
}

static int lv_remove_handle(int watch) {
        int r = -1;
        pthread_mutex_lock(&lv.lock);
        LvHandle *h = find_handle(watch);
        if (h && !h->deleted) {
                h->deleted = true;
                h->events = 0;
                changed_locked(true);
                r = 0;
        }
        pthread_mutex_unlock(&lv.lock);
        return r;
}

static int lv_add_timeout(int frequency, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff) {
        LvTimeout *t = new0(LvTimeout, 1);
        if (!t)
                return -1;
        *t = (LvTimeout){ .frequency = frequency, .cb = cb, .opaque = opaque, .ff = ff, .changed = true };
        pthread_mutex_lock(&lv.lock);
        LvTimeout **n = realloc(lv.timeouts, (lv.n_timeouts + 1) * sizeof(LvTimeout *));
        if (!n) {
                pthread_mutex_unlock(&lv.lock);
                free(t);
                return -1;
        }
        lv.timeouts = n;
        t->timer = lv.next_timer++;
        lv.timeouts[lv.n_timeouts++] = t;
        int timer = t->timer;
        changed_locked(false);
        pthread_mutex_unlock(&lv.lock);
        return timer;
}

static void lv_update_timeout(int timer, int frequency) {
        pthread_mutex_lock(&lv.lock);
        LvTimeout *t = find_timeout(timer);
        if (t && !t->deleted) {
                /* like libvirt's own loop: an update restarts the period */
                t->frequency = frequency;
                t->changed = true;
                changed_locked(false);
        }
        pthread_mutex_unlock(&lv.lock);
}

static int lv_remove_timeout(int timer) {
        int r = -1;
        pthread_mutex_lock(&lv.lock);
        LvTimeout *t = find_timeout(timer);
        if (t && !t->deleted) {
                t->deleted = true;
                t->frequency = -1;
                changed_locked(true);
                r = 0;
        }
        pthread_mutex_unlock(&lv.lock);
        return r;
}

int libvirt_event_register(sd_event *event) {
        int r;

        if (lv.event)
                return 0; /* once per process: libvirt keeps the first implementation anyway */
        lv.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (lv.wake_fd < 0)
                return -errno;
        r = sd_event_add_io(event, &lv.wake_source, lv.wake_fd, EPOLLIN, on_wake, NULL);
        if (r < 0)
                return r;
        /* before any other source: changes made by workers are in place before dispatch */
        (void) sd_event_source_set_priority(lv.wake_source, SD_EVENT_PRIORITY_IMPORTANT);
        (void) sd_event_source_set_description(lv.wake_source, "libvirt-wake");
        lv.event = sd_event_ref(event);
        lv.loop_thread = pthread_self();
        virEventRegisterImpl(lv_add_handle, lv_update_handle, lv_remove_handle, lv_add_timeout, lv_update_timeout,
                             lv_remove_timeout);
        return 0;
}

void libvirt_event_flush(void) {
        if (lv.event)
                sync_and_free();
}

void libvirt_event_unregister(void) {
        pthread_mutex_lock(&lv.lock);
        for (size_t i = 0; i < lv.n_handles; i++)
                lv.handles[i]->source = sd_event_source_disable_unref(lv.handles[i]->source);
        for (size_t i = 0; i < lv.n_timeouts; i++)
                lv.timeouts[i]->source = sd_event_source_disable_unref(lv.timeouts[i]->source);
        lv.wake_source = sd_event_source_disable_unref(lv.wake_source);
        lv.event = sd_event_unref(lv.event);
        if (lv.wake_fd >= 0)
                close(lv.wake_fd);
        lv.wake_fd = -EBADF;
        pthread_mutex_unlock(&lv.lock);
        /* the table itself stays: libvirt may still call remove for what it added */
}
