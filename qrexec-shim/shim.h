/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* qubes-admin-shim: turns Admin API calls (a qrexec service invocation, or a connection on the
 * qubesd.sock-compatible socket) into D-Bus calls on qubesd and the replies back into the wire
 * format of spec/admin-api.md §1. The shim holds no Qubes state: every answer comes from qubesd,
 * except the generic checks of §1.4 and the per-method input checks that must see raw bytes
 * (D-Bus strings cannot carry them). */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "device-protocol.h"
#include "qubes-error.h"
#include "util/hashmap.h"
#include "util/listener.h"
#include "util/strbuf.h"

#define ADMIN_BUS_NAME "org.qubes_os.Admin1"
#define ADMIN_PATH "/org/qubes_os/Admin1"
#define ADMIN_DOMAIN_PREFIX "/org/qubes_os/Admin1/domain"
#define MANAGER_IFACE "org.qubes_os.Admin1.Manager"
#define DOMAIN_IFACE "org.qubes_os.Admin1.Domain"
#define POOL_IFACE "org.qubes_os.Admin1.Pool"
#define VOLUME_IFACE "org.qubes_os.Admin1.Volume"

/* Header, NUL and payload together (upstream qubesd's limit). */
#define MAX_REQUEST_SIZE 65536u
/* What one admin.Events subscriber may have queued before we start dropping events. */
#define EVENT_QUEUE_MAX (4u * 1024u * 1024u)
/* Socket door: connections at once (fewer when the descriptor limit is lower), and the time a
 * request has to arrive in full. */
#define MAX_CONNECTIONS 1024u
#define REQUEST_TIMEOUT_USEC (30u * 1000u * 1000u)

typedef struct Shim Shim;
typedef struct Client Client;
typedef struct Call Call;
typedef struct BusEntry BusEntry;
typedef struct Method Method;
typedef struct EventSub EventSub;

/* ---- wire.c: framing ------------------------------------------------------------------- */

typedef struct Request {
        char *method; /* all four point into the (modified) header */
        char *arg;
        char *src;
        char *dest;
        const char *payload;
        size_t payload_len;
} Request;

/* Splits buf (len bytes, modified in place) as qubesd.sock does. Returns 0, or -EBADMSG for a
 * framing error (which is answered with an empty reply). */
int request_parse(char *buf, size_t len, Request *ret);
/* A source or destination reference: a VM name or "uuid:<uuid>". Sets e on failure. */
int validate_ref(const char *ref, QError *e);
bool ref_is_uuid(const char *ref);
bool ref_is_dom0(const char *ref);
bool bytes_are_ascii(const char *p, size_t n);

/* Exception frame: 2\0<Type>\0<traceback>\0<format>\0(<field>\0)*. */
void wire_append_exception(StrBuf *o, QubesErrorCode code, const char *traceback, const char *format,
                           char *const *fields);
void wire_append_qerror(StrBuf *o, const QError *e);

/* ---- methods.c: the dispatch table ----------------------------------------------------- */

typedef enum Rule {
        RULE_NO,
        RULE_REQ,
        RULE_OPT,
} Rule;

typedef enum DestRule {
        DEST_ANY,
        DEST_DOM0, /* must be the AdminVM */
        DEST_VM,   /* must not be the AdminVM */
} DestRule;

/* How the generic handler passes the request to D-Bus. */
typedef enum CallArgs {
        ARGS_NONE,
        ARGS_ARG,         /* (s arg) */
        ARGS_ARG_PAYLOAD, /* (s arg, s payload) */
        ARGS_PAYLOAD,     /* (s payload) */
} CallArgs;

/* How the generic handler turns the D-Bus reply into the OK body. */
typedef enum ReplyFormat {
        FMT_EMPTY,         /* () */
        FMT_STRING,        /* s, verbatim */
        FMT_LINES,         /* as, one per line */
        FMT_BOOL01,        /* b as 1 or 0 */
        FMT_PROPERTY,      /* (s type, b is_default, s value) */
        FMT_BYTES,         /* ay, verbatim (qubesd wrote the payload) */
        FMT_PROPERTY_DEF,  /* (b has_default, s type, s value) */
        FMT_LABEL_NAMES,   /* a(siso) */
        FMT_LABEL_COLOR,   /* (o, s, i, s) */
        FMT_LABEL_INDEX,   /* (o, s, i, s) */
        FMT_CURRENT_STATE, /* (t, t, t, s) */
        FMT_POOL_NAMES,    /* a(sso): the names, one per line */
        FMT_POOL_DRIVERS,  /* a(sas): "<driver> <param> <param>\n" */
        FMT_VOLUME_NAMES,  /* a(so): the names, one per line */
} ReplyFormat;

struct Method {
        const char *name;
        DestRule dest;
        Rule arg, payload;
        /* Checks that need only the request (run before any bus traffic). NULL: none. */
        int (*check)(Call *c, QError *e);
        /* Sends the D-Bus call(s). NULL: the generic one-call handler below. */
        int (*start)(Call *c);
        bool on_manager; /* the generic handler calls the Manager, not the destination qube */
        const char *member;
        CallArgs args;
        ReplyFormat fmt;
        const char *extra; /* handler-specific: the class of admin.vm.Create.<class> */
        const char *iface; /* the generic handler's interface when not the Manager's or Domain's */
        bool no_timeout;   /* the call may take long (starts, data copies): no D-Bus timeout */
        bool signals;      /* a stream of signals: needs the bus, not qubesd's private socket */
};

const Method *method_find(const char *name);
/* NULL-terminated iteration for the installer and tests. */
const Method *method_next(size_t *i);

/* ---- call.c: one request, the bus cache ------------------------------------------------ */

/* Where qubesd --system listens for direct connections (service/main.c). */
#define QUBESD_SYSTEM_PRIVATE_SOCKET "/run/qubesd/private"

struct Shim {
        sd_event *event;
        char *bus_address; /* NULL: the system bus (DBUS_SYSTEM_BUS_ADDRESS applies) */
        bool user_bus;
        char *private_socket;        /* qubesd's direct-connection socket for calls, or NULL */
        bool private_socket_guessed; /* the default one, because it exists: the bus if it refuses */
        Hashmap *buses;              /* source -> BusEntry* (socket door: identity holds per connection) */
        size_t event_queue_max;
        unsigned n_clients;
        Listener *listener; /* socket door */
        unsigned max_connections;
        uint64_t request_timeout_usec;
        unsigned n_dropped_idle;
        LogLimit idle_log;
};

typedef enum BusState {
        BUS_IDENTIFYING,
        BUS_READY,
        BUS_DEAD,
} BusState;

struct BusEntry {
        unsigned n_ref;
        Shim *shim;
        char *source;
        char *key;   /* in shim->buses: the source, prefixed for event connections */
        bool direct; /* a private connection to qubesd (calls only: it carries no signals) */
        sd_bus *bus;
        char *owner; /* unique name of the qubesd we identified ourselves to */
        BusState state;
        sd_bus_slot *slot;
        Call *waiting; /* calls queued until the identity is confirmed */
        bool cached;   /* held by shim->buses */
};

BusEntry *bus_entry_ref(BusEntry *b);
BusEntry *bus_entry_unref(BusEntry *b);
void bus_entry_evict(BusEntry *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusEntry *, bus_entry_unref);

struct Call {
        Client *client;
        BusEntry *bus;
        const Method *m;
        char *header; /* owns the strings below */
        Request req;
        char *payload_copy; /* sanitised payload, NUL-terminated, when a handler needs one */
        char *path;         /* object path of the destination (or the Manager) */
        bool dest_is_dom0;
        bool retried;
        sd_bus_slot *slot; /* the D-Bus call in flight */
        Call *next_waiting;
        int step;
        /* admin.vm.Create */
        char *create_name, *create_label, *create_pool;
        char **create_pools; /* volume, pool, … */
        /* admin.Events */
        sd_bus_slot *match_slot, *owner_slot;
        uint64_t last_seq;
        bool have_seq, overflowing, check_gaps;
        uint64_t dropped;
        EventSub *event_sub; /* a stream of a qube other than dom0: its subscription in qubesd */
        /* admin.vm.volume.Import* through the socket door: the data in the request */
        const char *data;
        size_t data_len;
        /* admin.vm.device.*: the device the argument names, the assignment the payload holds */
        DeviceIdent dev_ident;
        DeviceAssignmentData dev_assign;
};

/* Entry point of both doors: req_buf (len bytes) is the complete request; ownership of the
 * buffer passes to the call. Replies are written to client. */
void call_dispatch(Client *client, char *req_buf, size_t len);
Call *call_free(Call *c);

/* Helpers for handlers. */
int call_method(Call *c, const char *path, const char *iface, const char *member, sd_bus_message_handler_t cb,
                const char *types, ...);
/* Ends the call with an OK reply (body appended by the caller after call_reply_ok_begin). */
StrBuf *call_reply_ok_begin(Call *c);
void call_reply_end(Call *c);
void call_reply_qerror(Call *c, const QError *e);
void call_reply_error(Call *c, QubesErrorCode code, const char *format, ...);
/* Translates a D-Bus error reply (or a local errno when m is NULL). */
void call_reply_dbus_error(Call *c, sd_bus_message *m, int r);
/* Returns true (and has replied) when m is an error. */
bool call_handle_error(Call *c, sd_bus_message *m, sd_bus_error *ret_error);
int call_generic_start(Call *c);
/* Sent after the bus is ready and the destination resolved. */
void call_run(Call *c);

/* ---- methods-devices.c: admin.vm.device.* (the table's rows are in methods.c) ------------ */
int device_available_start(Call *c);
int device_assigned_check(Call *c, QError *e);
int device_assigned_start(Call *c);
int device_attached_start(Call *c);
int device_ident_check(Call *c, QError *e);
int device_assign_check(Call *c, QError *e);
int device_assign_start(Call *c);
int device_attach_start(Call *c);
int device_unassign_start(Call *c);
int device_detach_start(Call *c);
int device_set_mode_check(Call *c, QError *e);
int device_set_mode_start(Call *c);
int device_denied_list_start(Call *c);
int device_denied_check(Call *c, QError *e);
int device_denied_start(Call *c);
/* ---- methods-backup.c: admin.backup.Execute (ExecuteBackup, never retried) ------------------ */
int backup_execute_start(Call *c);

/* ---- events.c --------------------------------------------------------------------------- */
int events_start(Call *c);
/* The client's output drained (lets an overflowing stream end). */
void events_output_drained(Call *c);
/* The stream ends: its subscription in qubesd too. */
void events_call_free(Call *c);

/* ---- client.c (main.c): output of a door ----------------------------------------------- */

struct Client {
        Shim *shim;
        int in_fd, out_fd; /* the same socket for the socket door; in_fd -1 once read */
        sd_event_source *io_in, *io_out;
        sd_event_source *deadline; /* socket door: until the request has arrived */
        char *req;
        size_t req_len, req_alloc;
        bool got_eof;
        StrBuf out;
        size_t out_off;
        bool finishing; /* close once out is flushed */
        bool blocking;  /* out_fd cannot be polled: write synchronously */
        bool service_door;
        bool payload_on_stdin; /* service door, volume Import*: the data stays on stdin (fd 0) */
        bool released;         /* gone or done: output is discarded, freed soon */
        Call *call;
};

void client_write(Client *cl, const void *p, size_t n);
/* Output has been appended to cl->out directly: push it. */
void client_flush(Client *cl);
size_t client_pending(const Client *cl);
/* Flush and close (socket door) or exit (service door). */
void client_finish(Client *cl);
void client_free(Client *cl);
