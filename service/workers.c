/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util/log.h"
#include "util/macros.h"

typedef struct Work {
        WorkClass klass;
        WorkFn work;
        WorkDoneFn done;
        void *data;
        struct Work *next;
} Work;

typedef struct WorkQueue {
        Work *head, *tail;
} WorkQueue;

struct Workers {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t threads[WORKERS_MAX];
        size_t n_threads, n_idle;
        size_t n_queued;     /* works submitted and not yet taken by a thread */
        WorkQueue queued[2]; /* by WorkClass */
        WorkQueue finished;
        unsigned n_data_running;
        bool stopping, stopped;
        int done_fd;
        sd_event_source *done_source;
};

static void queue_push(WorkQueue *q, Work *w) {
        w->next = NULL;
        if (q->tail)
                q->tail->next = w;
        else
                q->head = w;
        q->tail = w;
}

static Work *queue_pop(WorkQueue *q) {
        Work *w = q->head;
        if (w) {
                q->head = w->next;
                if (!q->head)
                        q->tail = NULL;
        }
        return w;
}

/* Under the lock: the next work this thread may take, calls first. */
static Work *take(Workers *w) {
        Work *j = queue_pop(&w->queued[WORK_CALL]);
        if (j) {
                w->n_queued--;
                return j;
        }
        if (w->n_data_running >= WORKERS_DATA_MAX)
                return NULL;
        j = queue_pop(&w->queued[WORK_DATA]);
        if (j) {
                w->n_queued--;
                w->n_data_running++;
        }
        return j;
}

static void *worker_main(void *userdata) {
        Workers *w = userdata;

        /* The loop answers the callers: a worker gives way to it when both want a core (20 qubes
         * starting on libvirt's in-process test driver kept six workers busy beside the loop). */
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (errno == 0)
                (void) setpriority(PRIO_PROCESS, 0, nice + WORKERS_NICE < 19 ? nice + WORKERS_NICE : 19);

        pthread_mutex_lock(&w->lock);
        for (;;) {
                Work *j = take(w);
                if (!j) {
                        /* stopping and nothing left that this thread may take */
                        if (w->stopping && !w->queued[WORK_CALL].head && !w->queued[WORK_DATA].head)
                                break;
                        w->n_idle++;
                        pthread_cond_wait(&w->cond, &w->lock);
                        w->n_idle--;
                        continue;
                }
                pthread_mutex_unlock(&w->lock);

                if (j->work)
                        j->work(j->data);

                pthread_mutex_lock(&w->lock);
                if (j->klass == WORK_DATA) {
                        w->n_data_running--;
                        pthread_cond_broadcast(&w->cond); /* data work may wait for this slot */
                }
                queue_push(&w->finished, j);
                uint64_t one = 1;
                (void) !write(w->done_fd, &one, sizeof one);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Runs the done() of at most max finished works (0: all); returns whether some are left. */
static bool run_done(Workers *w, size_t max) {
        Work *j, *last = NULL;
        size_t n = 0;
        bool left;

        pthread_mutex_lock(&w->lock);
        j = w->finished.head;
        for (Work *k = j; k && (max == 0 || n < max); k = k->next, n++)
                last = k;
        if (last) {
                w->finished.head = last->next;
                if (!w->finished.head)
                        w->finished.tail = NULL;
                last->next = NULL;
        } else
                j = NULL;
        left = w->finished.head;
        pthread_mutex_unlock(&w->lock);
        while (j) {
                Work *next = j->next;
                if (j->done)
                        j->done(j->data);
                free(j);
                j = next;
        }
        return left;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Workers *w = userdata;
        uint64_t n;
        (void) !read(fd, &n, sizeof n);
        /* A few per loop iteration: 20 starts finishing together are 20 rounds of events and
         * signals, and the calls that came meanwhile are answered in between. */
        if (run_done(w, WORKERS_DONE_PER_ITERATION)) {
                uint64_t one = 1;
                (void) !write(fd, &one, sizeof one);
        }
        return 0;
}

int workers_new(sd_event *event, Workers **ret) {
        Workers *w = new0(Workers, 1);
        int r;

        if (!w)
                return -ENOMEM;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->done_fd < 0) {
                r = -errno;
                workers_free(w);
                return r;
        }
        r = sd_event_add_io(event, &w->done_source, w->done_fd, EPOLLIN, on_done, w);
        if (r < 0) {
                workers_free(w);
                return r;
        }
        (void) sd_event_source_set_description(w->done_source, "workers-done");
        *ret = w;
        return 0;
}

int workers_submit(Workers *w, WorkClass c, WorkFn work, WorkDoneFn done, void *data) {
        if (w->stopping)
                return -ESHUTDOWN;
        Work *j = new0(Work, 1);
        if (!j)
                return -ENOMEM;
        j->klass = c;
        j->work = work;
        j->done = done;
        j->data = data;

        pthread_mutex_lock(&w->lock);
        queue_push(&w->queued[c], j);
        w->n_queued++;
        /* grow the pool when more works wait than threads wait for work (a thread woken but
         * not yet running still counts as waiting: it takes one of them), up to the cap */
        if (w->n_queued > w->n_idle && w->n_threads < WORKERS_MAX) {
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                pthread_attr_setstacksize(&attr, 256 * 1024);
                if (pthread_create(&w->threads[w->n_threads], &attr, worker_main, w) == 0)
                        w->n_threads++;
                else if (w->n_threads == 0)
                        log_error("Cannot start a worker thread; blocking work will wait.");
                pthread_attr_destroy(&attr);
        }
        /* one waiting thread for one work (waking them all cost the loop a context switch per
         * idle thread and submit); one that cannot take it (data at its cap) waits again, and a
         * data work that ends wakes them all */
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

void workers_stop(Workers *w) {
        if (!w || w->stopped)
                return;
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        for (size_t k = 0; k < w->n_threads; k++)
                pthread_join(w->threads[k], NULL);
        w->stopped = true;
        /* what the workers finished still gets its done(): it frees its data */
        (void) run_done(w, 0);
}

Workers *workers_free(Workers *w) {
        if (!w)
                return NULL;
        workers_stop(w);
        sd_event_source_disable_unref(w->done_source);
        if (w->done_fd >= 0)
                close(w->done_fd);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
        return NULL;
}
