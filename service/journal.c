/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "journal.h"

#include "util/log.h"

/* The value of key in an event's key/value list, or NULL. */
static const char *kv_get(const char *const *kv, size_t n_kv, const char *key) {
        for (size_t i = 0; i + 1 < n_kv; i += 2)
                if (streq(kv[i], key))
                        return kv[i + 1];
        return NULL;
}

static void on_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv, void *userdata) {
        const char *v;

        if (!subject) {
                const char *name = kv_get(kv, n_kv, "vm");
                if (!name)
                        return;
                if (streq(event, "domain-add")) {
                        Domain *d = app_get_domain(app, name);
                        _cleanup_free_ char *template = d ? domain_property_string(d, "template") : NULL;
                        if (d && template)
                                log_qube_info(name, "Created %s %s from %s.", qubes_class_to_string(d->klass), name,
                                              template);
                        else if (d)
                                log_qube_info(name, "Created %s %s.", qubes_class_to_string(d->klass), name);
                } else if (streq(event, "domain-delete"))
                        log_qube_info(name, "Removed %s.", name);
                return;
        }

        const char *name = subject->name;
        if (streq(event, "domain-pre-start"))
                log_qube_info(name, "Starting %s.", name);
        else if (streq(event, "domain-start"))
                log_qube_info(name, "%s is running.", name);
        else if (streq(event, "domain-start-failed"))
                log_qube_warning(name, "%s failed to start: %s", name, kv_get(kv, n_kv, "reason") ?: "unknown reason");
        else if (streq(event, "domain-pre-shutdown"))
                log_qube_info(name, "Shutting down %s%s.", name,
                              streq_ptr(kv_get(kv, n_kv, "force"), "True") ? " (forced)" : "");
        else if (streq(event, "domain-shutdown-failed"))
                log_qube_warning(name, "%s failed to shut down: %s", name,
                                 kv_get(kv, n_kv, "reason") ?: "unknown reason");
        else if (streq(event, "domain-shutdown"))
                log_qube_info(name, "%s has halted.", name);
        else if (streq(event, "domain-paused"))
                log_qube_info(name, "%s is paused.", name);
        else if (streq(event, "domain-unpaused"))
                log_qube_info(name, "%s is running again.", name);
        else if (streq(event, "domain-resumed"))
                log_qube_info(name, "%s has resumed.", name);
        else if (streq(event, "domain-import-volume") && (v = kv_get(kv, n_kv, "name")))
                log_qube_info(name, "Cloned the %s volume of %s from %s.", v, name,
                              kv_get(kv, n_kv, "source") ?: "another volume");
        else if (streq(event, "domain-volume-import-end") && (v = kv_get(kv, n_kv, "volume"))) {
                if (streq_ptr(kv_get(kv, n_kv, "success"), "True"))
                        log_qube_info(name, "Imported the %s volume of %s.", v, name);
                else
                        log_qube_warning(name, "Importing the %s volume of %s failed.", v, name);
        }
}

int journal_init(Manager *m) {
        int r = app_add_listener(m->app, on_event, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the journal lines: %m");
        return 0;
}
