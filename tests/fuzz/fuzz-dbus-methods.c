/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: qubesd's D-Bus methods, the real handlers, in-process. A whole daemon
 * (daemon_new(): the model loaded from tests/data/example-qubes.xml into a state directory on
 * /dev/shm, libvirt's test driver, the workers, polkit never asked: we are root) serves one end
 * of a socket pair as its bus connection (BUS_FD); the fuzzer holds the other end. Each input
 * picks an object (the Manager, qubes of every class, labels, pools, volumes, a job, paths of
 * objects that do not exist), one of the methods its introspection lists (any interface,
 * sd-bus's own included), and arguments drawn from the input along the method's signature (now
 * and then a wrong signature), from the fuzzer's connection (root) or, now and then, from a second
 * one over qubesd's private socket acting for the qube "work" (SetCallerIdentity: the qrexec
 * policy of data/policy.d filters its listings); the call is sent and the loop runs until the reply came (or a
 * short time passed: a start or a job answers later, and the next input goes on).
 *
 * Checks beyond "no crash, no sanitizer report": every reply is a return or a D-Bus error, never
 * a dropped connection, and an error is a Qubes error or one of the protocol errors sd-bus
 * answers with, never org.freedesktop.DBus.Error.Failed / NoMemory or an errno name. Every
 * RESET_EVERY inputs the daemon is freed and built again on a fresh copy of the state, so that
 * what inputs remove or break does not narrow the search for long.
 *
 * Left out: methods that reach outside the state directory (AddPool: any dir_path;
 * StartBackup, ExecuteBackup: archives and qrexec calls into qubes). */

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "manager.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RESET_EVERY 2000u
#define REPLY_WAIT_USEC (250 * 1000ULL)
#define MAX_DEPTH 6
#define MAX_ITEMS 4
#define MAX_INPUT 4096
#define PING_EVERY 64u

typedef struct FuzzMethod {
        char *path, *iface, *name, *sig;
} FuzzMethod;

static struct {
        bool ready;
        char state_dir[64];
        Manager *m;
        sd_bus *client;
        sd_bus *qube; /* over qubesd's private socket, acting for the qube "work" (SetCallerIdentity) */
        FuzzMethod *methods;
        size_t n_methods;
        int null_fd;
        unsigned inputs;
} F = { .null_fd = -1 };

/* ---- the input, read front to back ---------------------------------------------------------- */

typedef struct Input {
        const uint8_t *p;
        size_t left;
} Input;

static uint8_t take_u8(Input *in) {
        if (in->left == 0)
                return 0;
        in->left--;
        return *in->p++;
}

static uint64_t take_u64(Input *in, unsigned bytes) {
        uint64_t v = 0;
        for (unsigned i = 0; i < bytes; i++)
                v = v << 8 | take_u8(in);
        return v;
}

static const char *const WORDS[] = {
        "",
        "dom0",
        "work",
        "sys-net",
        "sys-firewall",
        "fedora-42",
        "default-dvm",
        "disp1234",
        "no-such-vm",
        "uuid:",
        "red",
        "green",
        "black",
        "varlibqubes",
        "linux-kernel",
        "private",
        "root",
        "volatile",
        "kernel",
        "netvm",
        "label",
        "template",
        "memory",
        "maxmem",
        "vcpus",
        "kernelopts",
        "default_user",
        "qrexec_timeout",
        "provides_network",
        "template_for_dispvms",
        "default_dispvm",
        "autostart",
        "debug",
        "include_in_backups",
        "AppVM",
        "TemplateVM",
        "StandaloneVM",
        "DispVM",
        "RemoteVM",
        "AdminVM",
        "pci",
        "block",
        "usb",
        "mic",
        "dom0:00_14.3",
        "required",
        "auto-attach",
        "ask-to-attach",
        "file",
        "0x123456",
        "-1",
        "0",
        "1",
        "True",
        "False",
        "..",
        "../x",
        "a b",
        "x/y",
        "@anyvm",
        "@tag:x",
        "service.x",
        "internal",
        "created-by-dom0",
        "*",
        "1073741824",
        "9223372036854775808",
};

/* A string: a word, or bytes of the input made printable (sd-bus refuses invalid UTF-8, and
 * what it refuses never reaches the handlers). */
static char *take_string(Input *in) {
        uint8_t b = take_u8(in);
        if (b < 0xa0)
                return strdup(WORDS[b % ELEMENTSOF(WORDS)]);
        size_t n = take_u8(in);
        if (b >= 0xf8)
                n = n * 64; /* now and then a long one */
        char *s = malloc(n + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                uint8_t c = take_u8(in);
                s[i] = c == '\n' || (c >= 0x20 && c < 0x7f) ? (char) c : c == 0 ? 'x' : '_';
        }
        s[n] = 0;
        return s;
}

static const char *take_path(Input *in) {
        static const char *const extra[] = { "/", "/org/qubes_os/Admin1/domain", "/org/qubes_os/Admin1/domain/nope",
                                             "/org/freedesktop/DBus" };
        uint8_t b = take_u8(in);
        if (b >= 0xf0 || F.n_methods == 0)
                return extra[b % ELEMENTSOF(extra)];
        return F.methods[(b * 7u + take_u8(in)) % F.n_methods].path;
}

/* The end of the complete type starting at sig. */
static const char *type_end(const char *sig) {
        switch (*sig) {
        case 'a':
                return type_end(sig + 1);
        case '(':
        case '{': {
                char close = *sig == '(' ? ')' : '}';
                sig++;
                while (*sig && *sig != close)
                        sig = type_end(sig);
                return *sig ? sig + 1 : sig;
        }
        case 0:
                return sig;
        default:
                return sig + 1;
        }
}

static int append_value(sd_bus_message *msg, const char *sig, const char *end, Input *in, unsigned depth);

static int append_types(sd_bus_message *msg, const char *sig, const char *end, Input *in, unsigned depth) {
        while (sig < end) {
                const char *next = type_end(sig);
                int r = append_value(msg, sig, next, in, depth);
                if (r < 0)
                        return r;
                sig = next;
        }
        return 0;
}

static int append_value(sd_bus_message *msg, const char *sig, const char *end, Input *in, unsigned depth) {
        char inner[256];
        int r;

        if (depth > MAX_DEPTH || (size_t) (end - sig) >= sizeof inner)
                return -E2BIG;
        switch (*sig) {
        case 's': {
                _cleanup_free_ char *s = take_string(in);
                return s ? sd_bus_message_append_basic(msg, 's', s) : -ENOMEM;
        }
        case 'o':
                return sd_bus_message_append_basic(msg, 'o', take_path(in));
        case 'g': {
                static const char *const sigs[] = { "", "s", "a{sv}", "x", "(ii)", "as" };
                return sd_bus_message_append_basic(msg, 'g', sigs[take_u8(in) % ELEMENTSOF(sigs)]);
        }
        case 'b': {
                int v = take_u8(in) & 1;
                return sd_bus_message_append_basic(msg, 'b', &v);
        }
        case 'y': {
                uint8_t v = take_u8(in);
                return sd_bus_message_append_basic(msg, 'y', &v);
        }
        case 'n':
        case 'q': {
                uint16_t v = (uint16_t) take_u64(in, 2);
                return sd_bus_message_append_basic(msg, *sig, &v);
        }
        case 'i':
        case 'u': {
                uint32_t v = (uint32_t) take_u64(in, 4);
                return sd_bus_message_append_basic(msg, *sig, &v);
        }
        case 'x':
        case 't': {
                uint64_t v = take_u64(in, 8);
                return sd_bus_message_append_basic(msg, *sig, &v);
        }
        case 'd': {
                static const double ds[] = { 0.0, -1.0, 1e308, 0.5, 5e-324 };
                double v = ds[take_u8(in) % ELEMENTSOF(ds)];
                return sd_bus_message_append_basic(msg, 'd', &v);
        }
        case 'h':
                return sd_bus_message_append_basic(msg, 'h', &F.null_fd);
        case 'v': {
                static const char *const types[] = { "s", "x", "b", "o", "as", "a{ss}", "(ss)", "t", "a(ss)" };
                const char *t = types[take_u8(in) % ELEMENTSOF(types)];
                r = sd_bus_message_open_container(msg, 'v', t);
                if (r < 0)
                        return r;
                r = append_value(msg, t, t + strlen(t), in, depth + 1);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(msg);
        }
        case 'a': {
                const char *elem = sig + 1;
                unsigned n = take_u8(in) % (MAX_ITEMS + 1);
                memcpy(inner, elem, (size_t) (end - elem));
                inner[end - elem] = 0;
                r = sd_bus_message_open_container(msg, 'a', inner);
                if (r < 0)
                        return r;
                for (unsigned i = 0; i < n; i++) {
                        r = append_value(msg, elem, end, in, depth + 1);
                        if (r < 0)
                                return r;
                }
                return sd_bus_message_close_container(msg);
        }
        case '(':
        case '{':
                memcpy(inner, sig + 1, (size_t) (end - sig - 2));
                inner[end - sig - 2] = 0;
                r = sd_bus_message_open_container(msg, *sig == '(' ? 'r' : 'e', inner);
                if (r < 0)
                        return r;
                r = append_types(msg, sig + 1, end - 1, in, depth + 1);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(msg);
        default:
                return -EINVAL;
        }
}

/* ---- the daemon and the methods it has ------------------------------------------------------ */

typedef struct Pending {
        bool done;
        const FuzzMethod *fm;
        const char *path;
} Pending;

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        Pending *p = userdata;
        p->done = true;
        if (!e)
                return 0;
        /* a Qubes error, or what sd-bus answers for a call it cannot dispatch */
        static const char *const fine[] = {
                "org.freedesktop.DBus.Error.InvalidArgs",      "org.freedesktop.DBus.Error.UnknownMethod",
                "org.freedesktop.DBus.Error.UnknownObject",    "org.freedesktop.DBus.Error.UnknownInterface",
                "org.freedesktop.DBus.Error.UnknownProperty",  "org.freedesktop.DBus.Error.PropertyReadOnly",
                "org.freedesktop.DBus.Error.InvalidSignature", "org.freedesktop.DBus.Error.NotSupported",
                "org.freedesktop.DBus.Error.AccessDenied",
        };
        if (startswith(e->name, "org.qubes_os.Admin1.Error."))
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(fine); i++)
                if (streq(e->name, fine[i]))
                        return 0;
        fprintf(stderr, "fuzz-dbus-methods: %s.%s on %s answered %s: %s\n", p->fm->iface, p->fm->name, p->path, e->name,
                strempty(e->message));
        abort();
}

/* Runs the loop until *done or timeout; false if the time ran out. */
static bool run_until(bool *done, uint64_t timeout) {
        uint64_t start = 0, now = 0;
        sd_event *e = F.m->event;
        (void) sd_event_now(e, CLOCK_MONOTONIC, &start);
        while (!*done) {
                /* sd-bus (252) leaves what arrived with the handshake unprocessed until more
                 * comes: push both ends */
                while (sd_bus_process(F.client, NULL) > 0 || (F.qube && sd_bus_process(F.qube, NULL) > 0))
                        ;
                if (*done)
                        break;
                if (sd_event_run(e, 10 * 1000) < 0)
                        abort();
                (void) sd_event_now(e, CLOCK_MONOTONIC, &now);
                if (now > start + timeout)
                        return false;
        }
        return true;
}

typedef struct Wait {
        bool done;
        sd_bus_message *reply;
} Wait;

static int on_setup_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Wait *w = userdata;
        w->done = true;
        w->reply = sd_bus_message_ref(reply);
        return 0;
}

/* A call during set-up (on bus, with one string argument or none): its reply (the caller unrefs
 * it), or NULL. */
static sd_bus_message *call_on(sd_bus *bus, const char *path, const char *iface, const char *member, const char *arg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        Wait w = {};
        if (sd_bus_message_new_method_call(bus, &msg, NULL, path, iface, member) < 0 ||
            (arg && sd_bus_message_append_basic(msg, 's', arg) < 0) ||
            sd_bus_call_async(bus, &slot, msg, on_setup_reply, &w, 0) < 0)
                return NULL;
        if (!run_until(&w.done, 30 * 1000 * 1000ULL) || sd_bus_message_is_method_error(w.reply, NULL))
                return sd_bus_message_unref(w.reply);
        return w.reply;
}

static sd_bus_message *call_setup(const char *path, const char *iface, const char *member) {
        return call_on(F.client, path, iface, member, NULL);
}

static bool left_out(const char *iface, const char *name) {
        return streq(iface, "org.qubes_os.Admin1.Manager") &&
               (streq(name, "AddPool") || streq(name, "StartBackup") || streq(name, "ExecuteBackup"));
}

/* The methods of the object at path, from its introspection (the object's own view of itself:
 * interfaces of every class, sd-bus's standard ones). */
static void add_methods(const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                call_setup(path, "org.freedesktop.DBus.Introspectable", "Introspect");
        const char *xml = NULL;
        if (!reply || sd_bus_message_read(reply, "s", &xml) < 0)
                return;
        /* the introspection data is sd-bus's own, one element per line: read it line by line */
        _cleanup_free_ char *iface = NULL, *name = NULL;
        _cleanup_strbuf_ StrBuf sig = {};
        for (const char *line = xml; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t) (eol - line) : strlen(line);
                _cleanup_free_ char *l = strndup(line, len);
                line = eol ? eol + 1 : NULL;
                if (!l)
                        abort();
                char *q, *v;
                if ((q = strstr(l, "<interface name=\"")) && (v = q + 17) && strchr(v, '"')) {
                        *strchr(v, '"') = 0;
                        if (free_and_strdup(&iface, v) < 0)
                                abort();
                } else if ((q = strstr(l, "<method name=\"")) && (v = q + 14) && strchr(v, '"')) {
                        bool single = strstr(v, "/>") != NULL;
                        *strchr(v, '"') = 0;
                        if (free_and_strdup(&name, v) < 0)
                                abort();
                        strbuf_reset(&sig);
                        if (!single)
                                continue;
                        goto method_end;
                } else if (name && (q = strstr(l, "<arg type=\"")) && (v = q + 11) && strchr(v, '"')) {
                        bool out = strstr(v, "direction=\"out\"") != NULL;
                        *strchr(v, '"') = 0;
                        if (!out)
                                strbuf_append(&sig, v);
                } else if (name && strstr(l, "</method>"))
                        goto method_end;
                continue;
        method_end:
                if (iface && !left_out(iface, name)) {
                        FuzzMethod *a = realloc(F.methods, sizeof(*a) * (F.n_methods + 1));
                        if (!a)
                                abort();
                        F.methods = a;
                        a[F.n_methods++] =
                                (FuzzMethod){ strdup(path), strdup(iface), strdup(name), strdup(sig.buf ?: "") };
                }
                name = mfree(name);
        }
}

static void discover(void) {
        static const char *const fixed[] = {
                "/org/qubes_os/Admin1",
                "/org/qubes_os/Admin1/label/red",
                "/org/qubes_os/Admin1/pool/varlibqubes",
                "/org/qubes_os/Admin1/pool/linux_2dkernel",
                "/org/qubes_os/Admin1/domain/work/volume/private",
                "/org/qubes_os/Admin1/domain/work/volume/root",
                "/org/qubes_os/Admin1/domain/fedora_2d42/volume/root",
                "/org/qubes_os/Admin1/domain/no_2dsuch_2dvm",
                "/org/qubes_os/Admin1/domain",
                "/",
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                add_methods(fixed[i]);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                call_setup("/org/qubes_os/Admin1", "org.qubes_os.Admin1.Manager", "ListDomains");
        const char *name, *klass, *state, *uuid, *path;
        if (!reply || sd_bus_message_enter_container(reply, 'a', "(sssso)") < 0)
                abort();
        while (sd_bus_message_read(reply, "(sssso)", &name, &klass, &state, &uuid, &path) > 0)
                add_methods(path);
        if (F.n_methods < 100) {
                fprintf(stderr, "fuzz-dbus-methods: only %zu methods found\n", F.n_methods);
                abort();
        }
}

static void daemon_down(void) {
        F.client = sd_bus_flush_close_unref(F.client);
        F.qube = sd_bus_flush_close_unref(F.qube);
        F.m = daemon_free(F.m);
        if (F.state_dir[0]) {
                _cleanup_free_ char *cmd = NULL;
                /* what the inputs made there: pools, volumes, qubes.xml; no shell quoting needed
                 * (mkdtemp's name) */
                if (asprintf(&cmd, "rm -rf '%s'", F.state_dir) >= 0 && system(cmd) != 0)
                        fprintf(stderr, "fuzz-dbus-methods: cannot remove %s\n", F.state_dir);
                F.state_dir[0] = 0;
        }
}

static void daemon_up(void) {
        _cleanup_free_ char *xml = NULL, *text = NULL, *path = NULL, *private = NULL, *address = NULL;
        int sv[2];

        snprintf(F.state_dir, sizeof F.state_dir, "/dev/shm/qubesd-fuzz-XXXXXX");
        if (!mkdtemp(F.state_dir))
                abort();
        /* the example system, its pools moved into the state directory (as the tests do) */
        if (read_file(FUZZ_EXAMPLE_XML, &xml, NULL) < 0)
                abort();
        StrBuf b = {};
        for (const char *p = xml, *hit; *p; p = hit + strlen("dir_path=\"/var/lib/qubes")) {
                hit = strstr(p, "dir_path=\"/var/lib/qubes");
                if (!hit) {
                        strbuf_append(&b, p);
                        break;
                }
                strbuf_append_n(&b, p, (size_t) (hit - p));
                strbuf_printf(&b, "dir_path=\"%s", F.state_dir);
        }
        text = strbuf_steal(&b);
        if (!text || asprintf(&path, "%s/qubes.xml", F.state_dir) < 0 ||
            write_file_atomic(path, text, strlen(text), 0644) < 0)
                abort();

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                abort();
        static char *policy_dirs[] = { (char *) FUZZ_POLICY_DIR, NULL };
        if (asprintf(&private, "%s/private", F.state_dir) < 0 || asprintf(&address, "unix:path=%s", private) < 0)
                abort();
        ManagerConfig config = {
                .bus_kind = BUS_FD,
                .bus_fd = sv[0],
                .state_dir = F.state_dir,
                .libvirt_uri = "test:///default",
                .policy_dirs = policy_dirs,
                .private_socket = private,
                .constraints_dir = "/nonexistent/qubesd-fuzz-constraints",
                .config_dir = F.state_dir,
                .qrexec_runner = "/bin/false",
        };
        if (daemon_new(&config, &F.m) < 0)
                abort();

        sd_id128_t id;
        if (sd_bus_new(&F.client) < 0 || sd_bus_set_fd(F.client, sv[1], sv[1]) < 0 || sd_id128_randomize(&id) < 0 ||
            sd_bus_set_server(F.client, 1, id) < 0 || sd_bus_start(F.client) < 0 ||
            sd_bus_attach_event(F.client, F.m->event, 0) < 0)
                abort();
        /* the handshake first: a call that arrives in the same read as the end of it would wait
         * for more input (sd-bus 252, see service/private-bus.c) */
        for (unsigned i = 0; sd_bus_is_ready(F.client) <= 0 || sd_bus_is_ready(F.m->bus) <= 0; i++) {
                if (i > 5000)
                        abort();
                while (sd_bus_process(F.client, NULL) > 0 || sd_bus_process(F.m->bus, NULL) > 0)
                        ;
                (void) sd_event_run(F.m->event, 1000);
        }
        /* a second caller, acting for a qube: the qrexec filters and value constraints */
        if (sd_bus_new(&F.qube) < 0 || sd_bus_set_address(F.qube, address) < 0 || sd_bus_start(F.qube) < 0 ||
            sd_bus_attach_event(F.qube, F.m->event, 0) < 0)
                abort();
        for (unsigned i = 0; sd_bus_is_ready(F.qube) <= 0; i++) {
                if (i > 5000)
                        abort();
                while (sd_bus_process(F.qube, NULL) > 0)
                        ;
                (void) sd_event_run(F.m->event, 1000);
        }
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *ok =
                call_on(F.qube, "/org/qubes_os/Admin1", "org.qubes_os.Admin1.Manager", "SetCallerIdentity", "work");
        if (!ok)
                abort();
        if (F.n_methods == 0)
                discover();
}

static void cleanup(void) {
        daemon_down();
        for (size_t i = 0; i < F.n_methods; i++) {
                free(F.methods[i].path);
                free(F.methods[i].iface);
                free(F.methods[i].name);
                free(F.methods[i].sig);
        }
        free(F.methods);
        if (F.null_fd >= 0)
                close(F.null_fd);
}

static void init(void) {
        log_set_max_level(getenv("FUZZ_DEBUG") ? LOG_DEBUG : LOG_CRIT);
        F.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (F.null_fd < 0)
                abort();
        daemon_up();
        atexit(cleanup);
        F.ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Input in = { data, size };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;

        if (size > MAX_INPUT)
                return 0;
        if (!F.ready)
                init();
        if (++F.inputs % RESET_EVERY == 0) {
                daemon_down();
                daemon_up();
        }

        const FuzzMethod *fm = &F.methods[take_u64(&in, 2) % F.n_methods];
        uint8_t how = take_u8(&in);
        const char *path = fm->path;
        if (how >= 0xf0)
                path = take_path(&in);                          /* the method on another object */
        sd_bus *bus = (how & 0x60) == 0x60 ? F.qube : F.client; /* now and then as the qube "work" */
        if (sd_bus_message_new_method_call(bus, &msg, NULL, path, fm->iface, fm->name) < 0)
                abort();
        const char *sig = fm->sig;
        char wrong[256];
        if ((how & 0x0f) == 0x0f) {
                /* a wrong signature: one more argument, or one fewer */
                snprintf(wrong, sizeof wrong, "%s%s", sig, how & 0x10 ? "s" : "");
                if (!(how & 0x10) && *sig)
                        wrong[type_end(sig) - sig] = 0;
                sig = wrong;
        }
        if (append_types(msg, sig, sig + strlen(sig), &in, 0) < 0)
                return 0; /* sd-bus refused to build it: it never leaves the client */
        Pending p = { .fm = fm, .path = path };
        if (sd_bus_call_async(bus, &slot, msg, on_reply, &p, 0) < 0)
                abort();
        bool answered = run_until(&p.done, REPLY_WAIT_USEC);
        if (getenv("FUZZ_DEBUG"))
                fprintf(stderr, "fuzz-dbus-methods: %s.%s on %s(%s): %s\n", fm->iface, fm->name, path, sig,
                        answered ? "answered" : "no answer yet");
        if (F.inputs % PING_EVERY == 0) {
                /* the loop still turns: a handler that blocked it, or waits on itself, shows here */
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *pong =
                        call_on(F.client, "/org/qubes_os/Admin1", "org.freedesktop.DBus.Peer", "Ping", NULL);
                if (!pong) {
                        fprintf(stderr, "fuzz-dbus-methods: qubesd stopped answering after %s.%s on %s\n", fm->iface,
                                fm->name, path);
                        abort();
                }
        }
        if (sd_bus_is_open(F.client) <= 0 || sd_bus_is_open(F.qube) <= 0) {
                fprintf(stderr, "fuzz-dbus-methods: qubesd closed the connection after %s.%s on %s\n", fm->iface,
                        fm->name, path);
                abort();
        }
        return 0;
}
