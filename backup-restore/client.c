/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "client.h"

#include <inttypes.h>
#include <stdio.h>

#include "util/macros.h"
#include "util/strv.h"

#define BUS_NAME "org.qubes_os.Admin1"
#define ROOT "/org/qubes_os/Admin1"
#define MANAGER "org.qubes_os.Admin1.Manager"
#define DOMAIN "org.qubes_os.Admin1.Domain"
#define VOLUME "org.qubes_os.Admin1.Volume"
#define CALL_TIMEOUT (UINT64_C(600) * 1000000)

int client_open(Client *c, ClientBus kind, const char *address) {
        int r;
        *c = (Client){};
        switch (kind) {
        case CLIENT_SYSTEM:
                return sd_bus_open_system(&c->bus);
        case CLIENT_USER:
                return sd_bus_open_user(&c->bus);
        case CLIENT_ADDRESS:
                r = sd_bus_new(&c->bus);
                if (r >= 0)
                        r = sd_bus_set_address(c->bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(c->bus, true);
                if (r >= 0)
                        r = sd_bus_start(c->bus);
                return r;
        }
        return -EINVAL;
}

void client_close(Client *c) {
        sd_bus_flush_close_unref(c->bus);
        free(c->error);
        free(c->error_name);
        *c = (Client){};
}

const char *client_error(const Client *c) {
        return c->error ?: "unknown error";
}

static int set_error(Client *c, const sd_bus_error *e, int r) {
        free(c->error);
        free(c->error_name);
        c->error_name = e && e->name ? strdup(e->name) : NULL;
        if (e && e->message)
                c->error = strdup(e->message);
        else if (asprintf(&c->error, "%s", strerror(r < 0 ? -r : EIO)) < 0)
                c->error = NULL;
        return r < 0 ? r : -EIO;
}

static char *domain_path(const char *qube) {
        char *p = NULL;
        if (sd_bus_path_encode(ROOT "/domain", qube, &p) < 0)
                return NULL;
        return p;
}

/* A call with its arguments built by fill(); the reply in *ret (may be NULL). */
static int call(Client *c, const char *path, const char *iface, const char *method, sd_bus_message **ret,
                const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, path, iface, method);
        if (r < 0)
                return set_error(c, NULL, r);
        if (types && *types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return set_error(c, NULL, r);
        }
        r = sd_bus_call(c->bus, m, CALL_TIMEOUT, &e, &reply);
        if (r < 0) {
                r = set_error(c, &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        if (ret)
                *ret = TAKE_PTR(reply);
        return 0;
}

int client_list_domains(Client *c, char ***ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **l = NULL;
        const char *name, *klass, *state, *uuid, *path;
        int r = call(c, ROOT, MANAGER, "ListDomains", &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(sssso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssso)", &name, &klass, &state, &uuid, &path)) > 0)
                if (strv_extend(&l, name) < 0 || strv_extend(&l, klass) < 0)
                        return -ENOMEM;
        if (r < 0)
                return set_error(c, NULL, r);
        *ret = l ? TAKE_PTR(l) : new0(char *, 1);
        return *ret ? 0 : -ENOMEM;
}

int client_list_labels(Client *c, char ***ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **l = NULL;
        const char *name, *color, *path;
        int idx;
        int r = call(c, ROOT, MANAGER, "ListLabels", &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(siso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(siso)", &name, &idx, &color, &path)) > 0)
                if (strv_extend(&l, name) < 0)
                        return -ENOMEM;
        if (r < 0)
                return set_error(c, NULL, r);
        *ret = l ? TAKE_PTR(l) : new0(char *, 1);
        return *ret ? 0 : -ENOMEM;
}

int client_get_property(Client *c, const char *qube, const char *prop, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = qube ? domain_path(qube) : NULL;
        const char *type, *value;
        int is_default, r;

        if (qube && !path)
                return -ENOMEM;
        r = call(c, path ?: ROOT, qube ? DOMAIN : MANAGER, "GetProperty", &reply, "s", prop);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "sbs", &type, &is_default, &value);
        if (r < 0)
                return set_error(c, NULL, r);
        *ret = strdup(value);
        return *ret ? 0 : -ENOMEM;
}

int client_create(Client *c, const char *klass, const char *name, const char *label, const char *template,
                  const char *pool) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, ROOT, MANAGER, "CreateDomain");
        if (r >= 0)
                r = sd_bus_message_append(m, "ssss", klass, name, label, strempty(template));
        if (r >= 0)
                r = pool ? sd_bus_message_append(m, "a{ss}", 1, "pool", pool) : sd_bus_message_append(m, "a{ss}", 0);
        if (r < 0)
                return set_error(c, NULL, r);
        r = sd_bus_call(c->bus, m, CALL_TIMEOUT, &e, &reply);
        if (r < 0) {
                r = set_error(c, &e, r);
                sd_bus_error_free(&e);
        }
        return r;
}

#define DOMAIN_CALL(c, qube, method, types, ...)                                        \
        ({                                                                              \
                _cleanup_free_ char *_p = domain_path(qube);                            \
                _p ? call(c, _p, DOMAIN, method, NULL, types, __VA_ARGS__) : -ENOMEM; \
        })

int client_set_property(Client *c, const char *qube, const char *prop, const char *value) {
        return DOMAIN_CALL(c, qube, "SetProperty", "ss", prop, value);
}

int client_set_feature(Client *c, const char *qube, const char *name, const char *value) {
        return DOMAIN_CALL(c, qube, "SetFeature", "ss", name, value);
}

int client_add_tag(Client *c, const char *qube, const char *tag) {
        return DOMAIN_CALL(c, qube, "AddTag", "s", tag);
}

int client_set_notes(Client *c, const char *qube, const char *notes) {
        return DOMAIN_CALL(c, qube, "SetNotes", "s", notes);
}

int client_set_firewall(Client *c, const char *qube, char ***rules) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *p = domain_path(qube);
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (!p)
                return -ENOMEM;
        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, p, "org.qubes_os.Admin1.Firewall", "SetRules");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "a{ss}");
        for (size_t i = 0; r >= 0 && rules[i]; i++) {
                r = sd_bus_message_open_container(m, 'a', "{ss}");
                for (size_t k = 0; r >= 0 && rules[i][k] && rules[i][k + 1]; k += 2)
                        r = sd_bus_message_append(m, "{ss}", rules[i][k], rules[i][k + 1]);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return set_error(c, NULL, r);
        r = sd_bus_call(c->bus, m, CALL_TIMEOUT, &e, &reply);
        if (r < 0) {
                r = set_error(c, &e, r);
                sd_bus_error_free(&e);
        }
        return r;
}

int client_remove(Client *c, const char *qube) {
        _cleanup_free_ char *p = domain_path(qube);
        return p ? call(c, p, DOMAIN, "Remove", NULL, NULL) : -ENOMEM;
}

int client_list_volumes(Client *c, const char *qube, char ***ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **l = NULL;
        const char *name, *path;
        int r = call(c, ROOT, MANAGER, "ListVolumes", &reply, "s", qube);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0)
                if (strv_extend(&l, name) < 0)
                        return -ENOMEM;
        if (r < 0)
                return set_error(c, NULL, r);
        *ret = l ? TAKE_PTR(l) : new0(char *, 1);
        return *ret ? 0 : -ENOMEM;
}

struct ClientImport {
        sd_bus_slot *slot;
        bool answered;
        int result;
        char *error, *error_name;
};

static int on_import_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ClientImport *imp = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        imp->answered = true;
        imp->result = e ? -EIO : 0;
        if (e) {
                imp->error = strdup(e->message ?: "the import failed");
                imp->error_name = e->name ? strdup(e->name) : NULL;
        }
        return 0;
}

static char *volume_path(const char *qube, const char *volume) {
        char *path = NULL;
        return sd_bus_path_encode_many(&path, ROOT "/domain/%/volume/%", qube, volume) < 0 ? NULL : path;
}

int client_volume_size(Client *c, const char *qube, const char *volume, uint64_t *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = volume_path(qube, volume);
        int r;

        if (!path)
                return -ENOMEM;
        r = call(c, path, "org.freedesktop.DBus.Properties", "Get", &reply, "ss", VOLUME, "Size");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "v", "t", ret);
        return r < 0 ? set_error(c, NULL, r) : 0;
}

int client_volume_resize(Client *c, const char *qube, const char *volume, uint64_t size) {
        _cleanup_free_ char *path = volume_path(qube, volume);
        char num[32];

        if (!path)
                return -ENOMEM;
        snprintf(num, sizeof num, "%" PRIu64, size);
        return call(c, path, VOLUME, "Resize", NULL, "s", num);
}

int client_import_start(Client *c, const char *qube, const char *volume, int fd, uint64_t size, ClientImport **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = volume_path(qube, volume);
        char num[32];
        ClientImport *imp;
        int r;

        if (!path)
                return -ENOMEM;
        imp = new0(ClientImport, 1);
        if (!imp)
                return -ENOMEM;
        snprintf(num, sizeof num, "%" PRIu64, size);
        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, path, VOLUME, "ImportWithSize");
        if (r >= 0)
                r = sd_bus_message_append(m, "hs", fd, num);
        if (r >= 0)
                r = sd_bus_call_async(c->bus, &imp->slot, m, on_import_reply, imp, UINT64_MAX);
        if (r < 0) {
                free(imp);
                return set_error(c, NULL, r);
        }
        /* make sure it is on its way before we start writing */
        (void) sd_bus_flush(c->bus);
        *ret = imp;
        return 0;
}

bool client_import_answered(Client *c, ClientImport *imp) {
        while (sd_bus_process(c->bus, NULL) > 0)
                ;
        return imp->answered;
}

int client_import_wait(Client *c, ClientImport *imp) {
        int r;
        while (!imp->answered) {
                r = sd_bus_process(c->bus, NULL);
                if (r < 0)
                        break;
                if (r > 0)
                        continue;
                r = sd_bus_wait(c->bus, UINT64_MAX);
                if (r < 0)
                        break;
        }
        if (!imp->answered) {
                r = set_error(c, NULL, -ECONNRESET);
        } else if (imp->result < 0) {
                sd_bus_error e = { .name = imp->error_name, .message = imp->error };
                r = set_error(c, &e, -EIO);
        } else
                r = 0;
        sd_bus_slot_unref(imp->slot);
        free(imp->error);
        free(imp->error_name);
        free(imp);
        return r;
}
