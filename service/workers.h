/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one pool of worker threads: the blocking work of the daemon (libvirt calls, volume data
 * copies, …) runs here, never on the loop. work() runs on a worker thread and must not touch the
 * model or the bus: it gets everything it needs in data (snapshots, file descriptors) and leaves
 * its results there; done() runs on the loop afterwards and may touch everything.
 *
 * Two classes of work share the pool: WORK_CALL, short blocking calls (libvirt), and WORK_DATA,
 * long data copies (imports, clones, backups). Data work holds at most WORKERS_DATA_MAX threads
 * at once and waits in its queue beyond that, so a long copy never starves the libvirt calls:
 * they always have WORKERS_MAX - WORKERS_DATA_MAX threads. Threads are started when work comes
 * and every thread is busy, up to WORKERS_MAX. */

#include <stdbool.h>
#include <systemd/sd-event.h>

#define WORKERS_MAX 6
#define WORKERS_DATA_MAX 2
/* Workers run this much nicer than the loop (its calls come first). */
#define WORKERS_NICE 5
/* The done() callbacks run in one loop iteration at most (the rest in the next ones). */
#define WORKERS_DONE_PER_ITERATION 2

typedef struct Workers Workers;

typedef enum WorkClass {
        WORK_CALL, /* a blocking call that returns soon (libvirt) */
        WORK_DATA, /* a long copy: at most WORKERS_DATA_MAX at once */
} WorkClass;

typedef void (*WorkFn)(void *data);     /* on a worker thread */
typedef void (*WorkDoneFn)(void *data); /* on the loop, after work() */

int workers_new(sd_event *event, Workers **ret);
/* Queue work; done() is always called on the loop. Returns 0, or -ENOMEM or -ESHUTDOWN (the
 * pool is stopping) and then nothing is called. */
int workers_submit(Workers *w, WorkClass c, WorkFn work, WorkDoneFn done, void *data);
/* Let the workers finish what is queued, wait for them, and run the done() of everything that
 * finished. Cancel long work first (jobs_cancel_all()). Nothing may be submitted afterwards. */
void workers_stop(Workers *w);
Workers *workers_free(Workers *w); /* stops first; accepts NULL */
