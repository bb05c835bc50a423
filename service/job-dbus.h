/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Jobs: every long operation is one Job object, /org/qubes_os/Admin1/job/<n>, on the
 * org.qubes_os.Admin1.Job interface (dbus-interfaces/), seen by those who see all its qubes.
 * The work itself runs wherever it runs (libvirt calls, a copy on the worker pool); the job is
 * how clients follow it: Operation, Caller, Qubes, State, Progress (and BytesDone/BytesTotal for
 * data), Cancel(), and Finished at the end.
 *
 *         Job *j;
 *         r = job_new(m, &(JobSpec){ .operation = "Import", .caller = auth_caller_qube(m, msg),
 *                                    .qubes = STRV_MAKE(d->name), .action = AUTH_STORAGE,
 *                                    .bytes = true, .cancel = on_cancel, .userdata = op }, &j);
 *         job_progress(j, done, total);       // from any thread; announced every 250 ms
 *         job_finish(j, &error);              // or NULL: succeeded (j goes away later: forget it)
 *
 * Everything here runs on the loop but job_progress() and the counter of job_done_counter(). */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "bus-object.h"
#include "qubes-error.h"

typedef struct Manager Manager;
typedef struct Job Job;

/* Cancel(): ask the work to stop (it ends with job_finish() as usual, usually with an error). */
typedef void (*JobCancelFn)(Job *j, void *userdata);
/* The job announced new progress (the loop; at most every 250 ms). */
typedef void (*JobProgressFn)(Job *j, void *userdata);

typedef struct JobSpec {
        const char *operation; /* the method that made it: "StartQubes", "Import", …: Operation */
        const char *caller;    /* on whose behalf: "dom0", or a qube calling through qrexec: Caller */
        char *const *qubes;    /* the qubes it is about (NULL-terminated): Qubes */
        AuthAction action;     /* what Cancel() asks of the caller, on each qube of the job */
        bool bytes;            /* progress counts bytes (BytesDone, BytesTotal) rather than steps */
        JobCancelFn cancel;    /* NULL: the job cannot be cancelled */
        JobProgressFn progress_changed;
        void *userdata; /* for cancel and progress_changed */
} JobSpec;

/* A new running job, announced (InterfacesAdded) at once. */
int job_new(Manager *m, const JobSpec *spec, Job **ret);
const char *job_path(const Job *j);
/* done of total steps or bytes. Callable from a worker thread. */
void job_progress(Job *j, uint64_t done, uint64_t total);
/* The counter of what is done, for a worker that counts as it copies (total: job_progress()). */
_Atomic uint64_t *job_done_counter(Job *j);
uint64_t job_done(const Job *j);
uint64_t job_total(const Job *j);
/* One qube of a set operation failed, with e or (e not set) a plain negative errno; the others
 * go on (Finished lists each failure). */
int job_add_failure(Job *j, const char *qube, const QError *e, int error);
/* The job is over: succeeded, unless e is set (a failure of the job's first qube) or failures
 * were added. Announces State and Progress, sends Finished; the object stays five minutes (a
 * client slow to subscribe can still read the outcome), then goes (InterfacesRemoved) and is
 * freed: the caller forgets j here. */
void job_finish(Job *j, const QError *e);

/* qubesd stops: ask every running job to stop (before the workers are stopped). */
void jobs_cancel_all(Manager *m);
void jobs_free(Manager *m);

/* /org/qubes_os/Admin1/job/<n> */
extern const BusObjectImplementation job_object;
