/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What qubes-backup-restore asks of qubesd, over its D-Bus API (docs/dbus-api.md). Every
 * function returns 0 or a negative errno; on an error reply, client_error() is its message. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

typedef struct Client {
        sd_bus *bus;
        char *error;      /* the last error's message */
        char *error_name; /* … and D-Bus name */
} Client;

typedef enum ClientBus { CLIENT_SYSTEM, CLIENT_USER, CLIENT_ADDRESS } ClientBus;

int client_open(Client *c, ClientBus kind, const char *address);
void client_close(Client *c);
const char *client_error(const Client *c);

/* Every qube: name, class (strv of pairs). */
int client_list_domains(Client *c, char ***ret);
int client_list_labels(Client *c, char ***ret);
/* A property's value ("" for None) and whether it is the default. */
int client_get_property(Client *c, const char *qube, const char *prop, char **ret);
int client_create(Client *c, const char *klass, const char *name, const char *label, const char *template,
                  const char *pool);
int client_set_property(Client *c, const char *qube, const char *prop, const char *value);
int client_set_feature(Client *c, const char *qube, const char *name, const char *value);
int client_add_tag(Client *c, const char *qube, const char *tag);
int client_set_notes(Client *c, const char *qube, const char *notes);
/* Firewall.SetRules: rules is a NULL-terminated array of name, value, …, NULL lists. */
int client_set_firewall(Client *c, const char *qube, char ***rules);
int client_remove(Client *c, const char *qube);
int client_list_volumes(Client *c, const char *qube, char ***ret);

/* A volume's size (its Size property), and growing it (Resize). */
int client_volume_size(Client *c, const char *qube, const char *volume, uint64_t *ret);
int client_volume_resize(Client *c, const char *qube, const char *volume, uint64_t size);

/* A volume import that runs while we write its data: start it with the reading end of a pipe,
 * write, close our end, then wait for qubesd's verdict. */
typedef struct ClientImport ClientImport;
int client_import_start(Client *c, const char *qube, const char *volume, int fd, uint64_t size, ClientImport **ret);
/* The import is over (success: 0); frees imp. */
int client_import_wait(Client *c, ClientImport *imp);
/* Whether qubesd has answered already (it failed early: the pipe was closed under us). */
bool client_import_answered(Client *c, ClientImport *imp);
