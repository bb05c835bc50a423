/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-qube firewall on the bus: org.qubes_os.Admin1.Firewall, the rules of each qube in
 * memory and in firewall.xml, the expiry timer, firewall-changed (spec/firewall.md;
 * docs/dbus-api.md "Firewall"). */
#include "firewall-dbus.h"

#include <time.h>

#include "auth.h"
#include "bus-error.h"
#include "bus-names.h"
#include "firewall-vmm.h"

#include "util/fileio.h"
#include "util/log.h"
#include "util/strv.h"

struct FirewallState {
        sd_event_source *timer; /* the earliest expiry of any qube's rules */
        int64_t timer_at;       /* when it fires (UNIX seconds), 0: disarmed */
};

static int64_t now_seconds(void) {
        return (int64_t) time(NULL);
}

static char *firewall_path(const Domain *d) {
        _cleanup_free_ char *dir = domain_dir(d);
        char *p;
        if (!dir || asprintf(&p, "%s/firewall.xml", dir) < 0)
                return NULL;
        return p;
}

const Firewall *firewall_of(Manager *m, Domain *d) {
        if (d->firewall)
                return d->firewall;
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *path = firewall_path(d);
        Firewall *fw = NULL;
        int r = path ? firewall_load(path, &fw, &e) : -ENOMEM;
        if (r < 0) {
                _cleanup_free_ char *msg = qerror_message(&e);
                /* fail closed: a file we cannot read must not become "accept everything" */
                log_qube_error(d->name,
                               "Cannot load %s: %s; the qube's firewall drops everything until its rules are set",
                               strempty(path), msg ?: strerror(-r));
                fw = new0(Firewall, 1);
                if (!fw)
                        return NULL;
        }
        d->firewall = fw;
        return fw;
}

/* ---- expiry -------------------------------------------------------------------------------- */

static void arm_timer(Manager *m);

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int64_t now = now_seconds();
        _cleanup_free_ Domain **l = NULL;
        size_t n;

        m->firewall->timer_at = 0;
        l = app_domains_sorted(m->app, &n);
        for (size_t i = 0; l && i < n; i++) {
                Domain *d = l[i];
                _cleanup_qerror_ QError e = {};
                int64_t first = d->firewall ? firewall_next_expiry(d->firewall, 0) : 0;
                if (first == 0 || first >= now)
                        continue;
                Firewall *fw = firewall_copy(d->firewall);
                if (!fw)
                        continue;
                firewall_drop_expired(fw, now);
                if (firewall_replace(m, d, fw, &e) < 0) {
                        _cleanup_free_ char *msg = qerror_message(&e);
                        log_qube_error(d->name, "Cannot remove the expired firewall rules: %s", strempty(msg));
                }
        }
        arm_timer(m);
        return 0;
}

/* The earliest expiry of every loaded list. A rule expiring at T is gone once T < now, so at
 * T + 1 s. */
static void arm_timer(Manager *m) {
        FirewallState *st = m->firewall;
        int64_t best = 0, now = now_seconds();
        _cleanup_free_ Domain **l = NULL;
        size_t n;

        if (!st)
                return;
        l = app_domains_sorted(m->app, &n);
        for (size_t i = 0; l && i < n; i++) {
                if (!l[i]->firewall)
                        continue;
                int64_t t = firewall_next_expiry(l[i]->firewall, 0);
                if (t && (best == 0 || t < best))
                        best = t;
        }
        if (best == 0) {
                if (st->timer)
                        (void) sd_event_source_set_enabled(st->timer, SD_EVENT_OFF);
                st->timer_at = 0;
                return;
        }
        uint64_t at = (uint64_t) (best < now ? now : best + 1) * UINT64_C(1000000);
        if (!st->timer) {
                if (sd_event_add_time(m->event, &st->timer, CLOCK_REALTIME, at, 1000, on_expiry, m) < 0) {
                        log_error("Cannot arm the firewall expiry timer");
                        return;
                }
                (void) sd_event_source_set_description(st->timer, "firewall-expiry");
        } else {
                (void) sd_event_source_set_time(st->timer, at);
                (void) sd_event_source_set_enabled(st->timer, SD_EVENT_ONESHOT);
        }
        st->timer_at = best;
}

/* ---- changes ------------------------------------------------------------------------------- */

static void announce(Manager *m, Domain *d) {
        _cleanup_free_ char *path = domain_bus_path(d);
        app_emit_eventv(m->app, d, "firewall-changed", NULL, 0);
        if (path)
                manager_emit_properties_changed(m, path, QUBESD_IFACE_FIREWALL, "Rules");
}

int firewall_replace(Manager *m, Domain *d, Firewall *fw, QError *e) {
        _cleanup_(firewall_freep) Firewall *owned = fw;
        _cleanup_free_ char *dir = domain_dir(d), *path = firewall_path(d);
        int64_t now = now_seconds();
        int r;

        if (!dir || !path)
                return -ENOMEM;
        firewall_drop_expired(owned, now);
        r = mkdir_p(dir, 0775);
        if (r < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "firewall save error: %s", strerror(-r));
        r = firewall_save(path, owned, now, e);
        if (r < 0)
                return r;
        firewall_free(d->firewall);
        d->firewall = TAKE_PTR(owned);
        announce(m, d);
        firewall_vmm_apply(m, d);
        arm_timer(m);
        return 0;
}

/* ---- the interface ------------------------------------------------------------------------- */

static int append_rule(sd_bus_message *reply, const FirewallRule *r) {
        _cleanup_strv_free_ char **kv = firewall_rule_stored_pairs(r);
        int k;
        if (!kv)
                return -ENOMEM;
        k = sd_bus_message_open_container(reply, 'a', "{ss}");
        for (size_t i = 0; k >= 0 && kv[i]; i += 2)
                k = sd_bus_message_append(reply, "{ss}", kv[i], kv[i + 1]);
        if (k < 0)
                return k;
        return sd_bus_message_close_container(reply);
}

static int get_rules(sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
                     void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        const Firewall *fw = firewall_of(bus_registration_userdata(bus), d);
        int64_t now = now_seconds();
        int r;

        if (!fw)
                return -ENOMEM;
        r = sd_bus_message_open_container(reply, 'a', "a{ss}");
        for (size_t i = 0; r >= 0 && i < fw->n; i++)
                if (!firewall_rule_expired(&fw->rules[i], now))
                        r = append_rule(reply, &fw->rules[i]);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int read_rules(sd_bus_message *msg, Firewall **ret, QError *e) {
        _cleanup_(firewall_freep) Firewall *fw = new0(Firewall, 1);
        int r;

        if (!fw)
                return -ENOMEM;
        r = sd_bus_message_enter_container(msg, 'a', "a{ss}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'a', "{ss}")) > 0) {
                _cleanup_strv_free_ char **kv = new0(char *, 1);
                _cleanup_(firewall_rule_done) FirewallRule rule = { .icmptype = -1 };
                const char *k, *v;

                if (!kv)
                        return -ENOMEM;
                while ((r = sd_bus_message_read(msg, "{ss}", &k, &v)) > 0)
                        if (strv_extend(&kv, k) < 0 || strv_extend(&kv, v) < 0)
                                return -ENOMEM;
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
                if (fw->n >= FIREWALL_MAX_RULES)
                        return qerror_set(e, QERR_VALUE, "Too many firewall rules");
                r = firewall_rule_from_pairs(kv, &rule, e);
                if (r < 0)
                        return r;
                r = firewall_append(fw, &rule);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        if (fw->n == 0)
                return qerror_set(e, QERR_VALUE,
                                  "A firewall needs at least one rule (a single rule action=drop blocks everything)");
        *ret = TAKE_PTR(fw);
        return 0;
}

static int method_set_rules(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {}, e = {};
        Firewall *fw = NULL;
        int r = auth_check(m, msg, AUTH_FIREWALL, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1; /* refused, or held until polkit answers */
        r = read_rules(msg, &fw, &e);
        if (r >= 0)
                r = firewall_replace(m, d, fw, &e);
        if (r < 0)
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_set_rules_text(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {}, e = {};
        Firewall *fw = NULL;
        const char *text;
        int r = auth_check(m, msg, AUTH_FIREWALL, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1;
        r = sd_bus_message_read(msg, "s", &text);
        if (r < 0)
                return r;
        r = firewall_parse_text(text, strlen(text), &fw, &e);
        if (r >= 0)
                r = firewall_replace(m, d, fw, &e);
        if (r < 0) {
                if (qerror_is_set(&e) && e.code == QERR_VALUE) {
                        _cleanup_free_ char *why = qerror_message(&e);
                        log_qube_notice(d->name, "Firewall rules refused: %s", strempty(why));
                }
                return qerror_is_set(&e) ? bus_reply_qerror(m, msg, &e) : r;
        }
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_get_rules_text(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        int r = auth_check(m, msg, AUTH_READ, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1;
        const Firewall *fw = firewall_of(m, d);
        _cleanup_free_ char *text = fw ? firewall_format_text(fw, now_seconds()) : NULL;
        if (!text)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", text);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        Manager *m = call_manager(msg);
        _cleanup_qerror_ QError denied = {};
        int r = auth_check(m, msg, AUTH_FIREWALL, d, &denied);
        if (r <= 0)
                return r < 0 ? bus_reply_qerror(m, msg, &denied) : 1;
        if (!firewall_of(m, d))
                return -ENOMEM;
        app_emit_eventv(m->app, d, "firewall-changed", NULL, 0);
        firewall_vmm_apply(m, d);
        return sd_bus_reply_method_return(msg, NULL);
}

static const sd_bus_vtable firewall_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Rules", "aa{ss}", get_rules, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("SetRules", SD_BUS_ARGS("aa{ss}", rules), SD_BUS_NO_RESULT, method_set_rules,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetRulesText", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text), method_get_rules_text, 0),
        SD_BUS_METHOD_WITH_ARGS("SetRulesText", SD_BUS_ARGS("s", payload), SD_BUS_NO_RESULT, method_set_rules_text,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* Every qube but dom0: upstream's firewall methods refuse the AdminVM. */
static int firewall_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                         sd_bus_error *error) {
        Manager *m = userdata;
        Domain *d = domain_of_bus_path(m->app, path);
        if (!d || d->klass == QUBES_CLASS_ADMINVM)
                return 0;
        *found = d;
        return 1;
}

const BusObjectImplementation firewall_object = {
        .path = QUBESD_DOMAIN_PREFIX,
        .interface = QUBESD_IFACE_FIREWALL,
        .fallback_vtables = BUS_FALLBACK_VTABLES({ .vtable = firewall_vtable, .find = firewall_find }),
};

/* ---- the model's listener, start and end ----------------------------------------------------- */

static void on_model_event(App *app, Domain *d, const char *event, const char *const *kv, size_t n_kv, void *userdata) {
        Manager *m = userdata;
        if (streq(event, "domain-delete"))
                for (size_t i = 0; i + 1 < n_kv; i += 2)
                        if (streq(kv[i], "vm"))
                                firewall_vmm_forget(m, kv[i + 1]);
}

int firewall_dbus_init(Manager *m) {
        _cleanup_free_ Domain **l = NULL;
        size_t n;
        int r;

        m->firewall = new0(FirewallState, 1);
        if (!m->firewall)
                return log_oom();
        l = app_domains_sorted(m->app, &n);
        for (size_t i = 0; l && i < n; i++)
                if (l[i]->klass != QUBES_CLASS_ADMINVM)
                        (void) firewall_of(m, l[i]);
        r = app_add_listener(m->app, on_model_event, m);
        if (r < 0)
                return log_oom();
        arm_timer(m);
        return 0;
}

void firewall_dbus_done(Manager *m) {
        if (!m->firewall)
                return;
        app_remove_listener(m->app, on_model_event, m);
        sd_event_source_disable_unref(m->firewall->timer);
        free(m->firewall);
        m->firewall = NULL;
}
