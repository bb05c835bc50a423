/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The group commit (docs/daemon.md, "Transactions and the group commit"): the calls whose change
 * is made wait for one save per loop iteration, then all are answered; a call that does not join
 * the group first waits for its save. */
#include "commit.h"

#include <malloc.h>

#include "bus-error.h"
#include "util/log.h"

/* More waiting calls than this are not gathered: the save runs at once. */
#define COMMIT_GROUP_MAX 256

void manager_begin(Manager *m) {
        app_txn_begin(m->app);
        if (m->commit_source)
                (void) sd_event_source_set_enabled(m->commit_source, SD_EVENT_ONESHOT);
}

/* ---- giving freed memory back ---------------------------------------------------------- */

#define TRIM_DELAY_USEC (1000 * 1000)

static int trim_now(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        m->trim_pending = false;
        (void) malloc_trim(0);
        return 0;
}

void manager_trim_later(Manager *m) {
        sd_event_source *s = NULL;

        if (m->trim_pending || !m->event)
                return;
        if (sd_event_add_time_relative(m->event, &s, CLOCK_MONOTONIC, TRIM_DELAY_USEC, 100 * 1000, trim_now, m) < 0)
                return;
        /* owned by the loop: freed when it has run or with the loop (before the Manager) */
        (void) sd_event_source_set_floating(s, true);
        sd_event_source_unref(s);
        m->trim_pending = true;
}

/* app_commit() tells us how the save went: every waiting call gets its answer. */
static void on_committed(App *app, int r, const QError *err, void *userdata) {
        Manager *m = userdata;
        sd_bus_message **l = m->awaiting;
        size_t n = m->n_awaiting;

        m->awaiting = NULL;
        m->n_awaiting = m->alloc_awaiting = 0;
        for (size_t i = 0; i < n; i++) {
                int k = r >= 0 ? sd_bus_reply_method_return(l[i], NULL) : bus_reply_qerror(m, l[i], err);
                if (k < 0)
                        log_debug_errno(k, "Cannot answer a call after the save: %m");
                sd_bus_message_unref(l[i]);
        }
        free(l);
        /* a save at hundreds of qubes churns some MiB of heap (the text, the qubes written
         * afresh): given back a moment later */
        if (hashmap_size(app->domains) >= 200)
                manager_trim_later(m);
}

static void commit_now(Manager *m) {
        _cleanup_qerror_ QError e = {};

        if (m->n_awaiting > 0) {
                (void) app_commit(m->app, &e);
                return;
        }
        /* a call opened a transaction and did not save (it failed): what it changed goes */
        if (m->app->txn_open || m->app->n_removed > 0) {
                if ((m->app->txn_changed || m->app->n_removed > 0) && app_has_uncommitted(m->app))
                        app_rollback(m->app);
                else
                        app_txn_done(m->app, true);
        }
}

static int on_commit(sd_event_source *s, void *userdata) {
        commit_now(userdata);
        return 0;
}

int manager_commit_reply(Manager *m, sd_bus_message *msg) {
        if (m->n_awaiting == m->alloc_awaiting) {
                size_t na = m->alloc_awaiting ? m->alloc_awaiting * 2 : 16;
                sd_bus_message **l = reallocarray(m->awaiting, na, sizeof(sd_bus_message *));
                if (!l) {
                        _cleanup_qerror_ QError e = {};
                        int r = manager_save(m, &e);
                        return r < 0 ? bus_reply_qerror(m, msg, &e) : sd_bus_reply_method_return(msg, NULL);
                }
                m->awaiting = l;
                m->alloc_awaiting = na;
        }
        m->awaiting[m->n_awaiting++] = sd_bus_message_ref(msg);
        if (m->n_awaiting >= COMMIT_GROUP_MAX)
                commit_now(m);
        else if (m->commit_source)
                (void) sd_event_source_set_enabled(m->commit_source, SD_EVENT_ONESHOT);
        return 1;
}

/* The writes that join a group; any other call first waits for the group's save, so what it
 * reads is durable. */
static bool joins_group(sd_bus_message *msg) {
        static const char *const members[] = {
                "SetProperty", "ResetProperty", "SetFeature", "RemoveFeature", "AddTag", "RemoveTag",
        };
        const char *member = sd_bus_message_get_member(msg);
        const char *iface = sd_bus_message_get_interface(msg);

        if (!member || !iface || !startswith(iface, QUBESD_BUS_NAME))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(members); i++)
                if (streq(member, members[i]))
                        return true;
        return false;
}

static int commit_filter(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        if (m->n_awaiting > 0 && sd_bus_message_is_method_call(msg, NULL, NULL) > 0 && !joins_group(msg))
                commit_now(m);
        return 0;
}

int manager_commit_add_filter(Manager *m, sd_bus *bus) {
        return sd_bus_add_filter(bus, NULL, commit_filter, m);
}

int manager_commit_init(Manager *m) {
        int r = sd_event_add_defer(m->event, &m->commit_source, on_commit, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the group commit: %m");
        (void) sd_event_source_set_enabled(m->commit_source, SD_EVENT_OFF);
        /* below the connections: every call that has arrived is handled before the save */
        (void) sd_event_source_set_priority(m->commit_source, SD_EVENT_PRIORITY_NORMAL + 10);
        m->app->committed = on_committed;
        m->app->committed_userdata = m;
        return 0;
}

void manager_commit_done(Manager *m) {
        if (m->n_awaiting > 0)
                commit_now(m);
        m->commit_source = sd_event_source_disable_unref(m->commit_source);
        if (m->app) {
                m->app->committed = NULL;
                m->app->committed_userdata = NULL;
        }
}
