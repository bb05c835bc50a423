/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The device protocol's text forms (lib/device-protocol.c) against spec/devices.md: identities in
 * their three forms, the key='value' serialisation and every quoting and character case, the
 * assignment payload checks with upstream's messages, interface code lists. */

#include "device-protocol.h"
#include "util/strv.h"

static unsigned failures;

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

#define CHECK_STR(got, want)                                                                                    \
        do {                                                                                                    \
                const char *_g = (got), *_w = (want);                                                           \
                if (!streq_ptr(_g, _w)) {                                                                       \
                        fprintf(stderr, "%s:%d: got %s%s%s, want %s%s%s\n", __FILE__, __LINE__, _g ? "\"" : "", \
                                _g ?: "NULL", _g ? "\"" : "", _w ? "\"" : "", _w ?: "NULL", _w ? "\"" : "");    \
                        failures++;                                                                             \
                }                                                                                               \
        } while (0)

/* The message of an error, as a client shows it (static buffer). */
static const char *msg(const QError *e) {
        static char buf[1024];
        _cleanup_free_ char *m = qerror_message(e);
        snprintf(buf, sizeof buf, "%s", m ?: "(none)");
        return buf;
}

static void test_py_repr(void) {
        const struct {
                const char *in, *out;
        } cases[] = {
                { "abc", "'abc'" },
                { "it's", "\"it's\"" },
                { "a\"b'c", "'a\"b\\'c'" },
                { "back\\slash", "'back\\\\slash'" },
                { "tab\tnl\ncr\r", "'tab\\tnl\\ncr\\r'" },
                { "\x01\x7f", "'\\x01\\x7f'" },
                { "", "''" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *r = py_str_repr(cases[i].in);
                CHECK_STR(r, cases[i].out);
        }
}

static void test_qarg(void) {
        const struct {
                const char *qarg, *backend, *port, *devid;
        } cases[] = {
                /* the spec's examples */
                { "sys-usb+2-1+1234+5678+serial+u030101", "sys-usb", "2-1", "1234:5678:serial:u030101" },
                { "dom0+00_14.0+8086+a36d++p0c0330", "dom0", "00_14.0", "8086:a36d::p0c0330" },
                /* _ for any backend, port or device; the unknown interface */
                { "_+_+1234+5678++u030101", "*", "*", "1234:5678::u030101" },
                { "dom0+sda", "dom0", "sda", "*" },
                { "dom0+sda+_", "dom0", "sda", "*" },
                { "dom0+sda+", "dom0", "sda", "*" },
                { "dom0+00_14.0+0000+0000++_______", "dom0", "00_14.0", DEVICE_ID_UNKNOWN },
                { "dom0+x+a________", "dom0", "x", "a?******_" },
                { "dom0+loop0++0", "dom0", "loop0", ":0" },
                { "dom0+sda1++None+1", "dom0", "sda1", ":None:1" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(device_ident_done) DeviceIdent d = {};
                _cleanup_qerror_ QError e = {};
                CHECK(device_ident_from_qarg(cases[i].qarg, &d, &e) == 0);
                CHECK_STR(d.backend, cases[i].backend);
                CHECK_STR(d.port_id, cases[i].port);
                CHECK_STR(d.device_id, cases[i].devid);
        }

        _cleanup_(device_ident_done) DeviceIdent d = {};
        _cleanup_qerror_ QError e = {};
        CHECK(device_ident_from_qarg("dom0", &d, &e) < 0 && e.code == QERR_PROTOCOL);

        /* the other way: what qvm-device sends (repr_for_qarg) */
        _cleanup_free_ char *a = device_ident_qarg("dom0", "00_14.0", "8086:a36d::p0c0330");
        CHECK_STR(a, "dom0+00_14.0+8086+a36d++p0c0330");
        _cleanup_free_ char *b = device_ident_qarg("sys-usb", "2-1", "1234:5678:serial:u030101");
        CHECK_STR(b, "sys-usb+2-1+1234+5678+serial+u030101");
        _cleanup_free_ char *c = device_ident_qarg(NULL, "*", DEVICE_ID_UNKNOWN);
        CHECK_STR(c, "_+_+0000+0000++_______");
        _cleanup_free_ char *r = device_ident_repr("dom0", "sda", "*");
        CHECK_STR(r, "dom0+sda:*");
        _cleanup_free_ char *s = device_ident_str("dom0", "00_14.0", "8086:a36d::p0c0330");
        CHECK_STR(s, "dom0:00_14.0:8086:a36d::p0c0330");
}

static void test_serialise(void) {
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_qerror_ QError e = {};

        CHECK(device_append_item(&b, "device_id", "8086:a36d::p0c0330", &e) == 0);
        CHECK(device_append_item(&b, "name", "it's", &e) == 0);
        CHECK(device_append_item(&b, "_opt", "a b\"c`~", &e) == 0);
        CHECK(device_append_item(&b, "empty", "", &e) == 0);
        CHECK_STR(b.buf, "device_id='8086:a36d::p0c0330' name='it\\'s' _opt='a b\"c`~' empty=''");

        /* characters the writer refuses, with upstream's message (a Python set of strings) */
        const struct {
                const char *key, *value, *message;
        } bad[] = {
                { "a b", "x", "Invalid chars in property name: {' '}" },
                { "a=b", "x", "Invalid chars in property name: {'='}" },
                { "it's", "x", "Invalid chars in property name: {\"'\"}" },
                { "a\"`", "x", "Invalid chars in property name: {'\"', '`'}" },
                { "ok", "new\nline", "Invalid chars in property value: {'\\n'}" },
                { "ok", "tab\tand\x7f", "Invalid chars in property value: {'\\t', '\\x7f'}" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_strbuf_ StrBuf o = {};
                _cleanup_qerror_ QError f = {};
                CHECK(device_append_item(&o, bad[i].key, bad[i].value, &f) < 0);
                CHECK(f.code == QERR_PROTOCOL);
                CHECK_STR(msg(&f), bad[i].message);
        }
}

static char *parse_join(const char *text, size_t len, QError *e) {
        _cleanup_strv_free_ char **items = NULL;
        _cleanup_strbuf_ StrBuf b = {};
        if (device_parse_items(text, len, &items, e) < 0)
                return NULL;
        for (size_t i = 0; items[i] && items[i + 1]; i += 2)
                strbuf_printf(&b, "[%s]=[%s]", items[i], items[i + 1]);
        return b.buf ? strbuf_steal(&b) : strdup("");
}

static void test_parse(void) {
        const struct {
                const char *in, *out;
        } ok[] = {
                { "a='1' b='2'", "[a]=[1][b]=[2]" },
                { "  a='1' b='2'\n", "[a]=[1][b]=[2]" },
                { "", "" },
                { " \t\n", "" },
                { "name='it\\'s' x='y'", "[name]=[it's][x]=[y]" },
                /* a value may hold "' ": the chunk splits at its last one */
                { "name='a' b' x='1'", "[name]=[a' b][x]=[1]" },
                { "a='' b=''", "[a]=[][b]=[]" },
                /* duplicates: the later value, the first place */
                { "a='1' b='2' a='3'", "[a]=[3][b]=[2]" },
                { "_opt='v' mode='required'", "[_opt]=[v][mode]=[required]" },
                /* no =' at all: a key with an empty value, as upstream */
                { "abc", "[abc]=[]" },
                /* the last value loses its last character, whatever it is */
                { "a='12", "[a]=[1]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_qerror_ QError e = {};
                _cleanup_free_ char *got = parse_join(ok[i].in, strlen(ok[i].in), &e);
                if (!got)
                        fprintf(stderr, "parse of %s failed: %s\n", ok[i].in, msg(&e));
                CHECK_STR(got, ok[i].out);
        }

        const struct {
                const char *in;
                size_t len;
                const char *message;
        } bad[] = {
                { "a b='1'", 0, "Invalid chars in property name: {' '}" },
                { "a='1'  b='2'", 0, "Invalid chars in property name: {' '}" },
                { "a='x\ty'", 0, "Invalid chars in property value: {'\\t'}" },
                { "a='1' b\"='2'", 0, "Invalid chars in property name: {'\"'}" },
                { "a='\xc3\xa9'", 0, "'ascii' codec can't decode byte 0xc3 in position 3: ordinal not in range(128)" },
                { "a='1\0'", 6, "Invalid chars in property value: {'\\x00'}" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_qerror_ QError e = {};
                _cleanup_free_ char *got = parse_join(bad[i].in, bad[i].len ?: strlen(bad[i].in), &e);
                CHECK(!got);
                CHECK(e.code == QERR_PROTOCOL);
                CHECK_STR(msg(&e), bad[i].message);
        }
}

static void test_round_trip(void) {
        /* whatever the writer accepts comes back the same through the parser */
        const char *values[] = { "plain", "it's", "a ' b", "' ", "x='y'", "\\'", "'", "''", "end'", "a\\" };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                _cleanup_strbuf_ StrBuf b = {};
                _cleanup_qerror_ QError e = {};
                _cleanup_strv_free_ char **items = NULL;
                CHECK(device_append_item(&b, "k", values[i], &e) == 0);
                CHECK(device_append_item(&b, "z", "1", &e) == 0);
                CHECK(device_parse_items(b.buf, b.len, &items, &e) == 0);
                CHECK_STR(device_items_get(items, "z"), "1");
                CHECK_STR(device_items_get(items, "k"), values[i]);
        }
}

static void test_assignment(void) {
        DeviceIdent loop0 = { .backend = (char *) "dom0", .port_id = (char *) "loop0", .device_id = (char *) ":0" };
        DeviceIdent any = { .backend = (char *) "dom0", .port_id = (char *) "loop0", .device_id = (char *) "*" };
        DeviceIdent nobackend = { .backend = (char *) "*", .port_id = (char *) "*", .device_id = (char *) ":0" };
        const char *full = "device_id=':0' port_id='loop0' devclass='block' backend_domain='dom0' mode='auto-attach' "
                           "frontend_domain='work' _read-only='yes' _frontend-dev='xvdj'";
        {
                _cleanup_(device_assignment_data_done) DeviceAssignmentData a = {};
                _cleanup_qerror_ QError e = {};
                CHECK(device_assignment_parse(full, strlen(full), "block", &loop0, &a, &e) == 0);
                CHECK_STR(a.device_id, ":0");
                CHECK_STR(a.mode, "auto-attach");
                CHECK_STR(a.frontend, "work");
                CHECK(strv_length(a.options) == 4);
                CHECK_STR(device_items_get(a.options, "read-only"), "yes");
                CHECK_STR(device_items_get(a.options, "frontend-dev"), "xvdj");
        }
        {
                /* an empty payload: manual, the argument's identity, no frontend, no options */
                _cleanup_(device_assignment_data_done) DeviceAssignmentData a = {};
                _cleanup_qerror_ QError e = {};
                CHECK(device_assignment_parse("", 0, "block", &loop0, &a, &e) == 0);
                CHECK_STR(a.mode, "manual");
                CHECK_STR(a.device_id, ":0");
                CHECK(!a.frontend && a.options && !a.options[0]);
        }
        {
                /* the argument said any device: the payload's identity is taken */
                _cleanup_(device_assignment_data_done) DeviceAssignmentData a = {};
                _cleanup_qerror_ QError e = {};
                const char *p = "device_id=':7' mode='required'";
                CHECK(device_assignment_parse(p, strlen(p), "block", &any, &a, &e) == 0);
                CHECK_STR(a.device_id, ":7");
        }
        const struct {
                const char *payload;
                const DeviceIdent *expected;
                const char *message;
        } bad[] = {
                { "backend_domain='sys-usb'", &loop0, "Got device exposed by sys-usbwhen expected devices from dom0." },
                { "port_id='loop1'", &loop0, "Got device from port: loop1 when expected port: loop0." },
                { "devclass='pci'", &loop0, "Got pci device when expected block." },
                { "device_id=':1'", &loop0, "Unrecognized device identity ':1' expected ':0'" },
                /* the order: backend before class */
                { "devclass='pci' backend_domain='x'", &loop0,
                  "Got device exposed by xwhen expected devices from dom0." },
                { "mode='manual' required='yes'", &loop0,
                  "DeviceAssignment.__init__() got an unexpected keyword argument 'required'" },
                { "mode='sometimes'", &loop0, "'sometimes' is not a valid AssignmentMode" },
                { "frontend_domain='work'", &nobackend, "Cannot determine backend domain" },
                { "a b='1'", &loop0, "Invalid chars in property name: {' '}" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(device_assignment_data_done) DeviceAssignmentData a = {};
                _cleanup_qerror_ QError e = {};
                CHECK(device_assignment_parse(bad[i].payload, strlen(bad[i].payload), "block", bad[i].expected, &a,
                                              &e) < 0);
                CHECK(e.code == QERR_PROTOCOL);
                CHECK_STR(msg(&e), bad[i].message);
        }
        CHECK(device_mode_valid("manual") && !device_mode_assignable("manual"));
        CHECK(device_mode_assignable("required") && device_mode_assignable("auto-attach") &&
              device_mode_assignable("ask-to-attach") && !device_mode_valid("Required"));
}

static void test_interfaces(void) {
        _cleanup_qerror_ QError e = {};
        _cleanup_free_ char *c = NULL;

        CHECK(device_denied_canonical("u030101p0c0330u030101b******", &c, &e) == 0);
        CHECK_STR(c, "b******p0c0330u030101");
        c = mfree(c);
        CHECK(device_denied_canonical("", &c, &e) == 0);
        CHECK_STR(c, "");

        const struct {
                const char *in;
                QubesErrorCode code;
                const char *message;
        } bad[] = {
                { "u0301", QERR_VALUE, "Invalid length of interfaces='u0301' (is 5, expected multiple of 7)" },
                { "it's", QERR_VALUE, "Invalid length of interfaces=\"it's\" (is 4, expected multiple of 7)" },
                { "x030101", QERR_PROPERTY_VALUE, DEVICE_DENIED_FORMAT_ERROR },
                { "u0A0101", QERR_PROPERTY_VALUE, DEVICE_DENIED_FORMAT_ERROR },
                { "?******", QERR_PROPERTY_VALUE, DEVICE_DENIED_FORMAT_ERROR },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_qerror_ QError f = {};
                _cleanup_free_ char *d = NULL;
                CHECK(device_denied_canonical(bad[i].in, &d, &f) < 0);
                CHECK(f.code == bad[i].code);
                CHECK_STR(msg(&f), bad[i].message);
        }

        _cleanup_strv_free_ char **l = NULL;
        _cleanup_qerror_ QError g = {};
        CHECK(device_interfaces_split_payload("u030101p0c0330", &l, &g) == 0 && strv_length(l) == 2);
        _cleanup_strv_free_ char **l2 = NULL;
        _cleanup_qerror_ QError h = {};
        CHECK(device_interfaces_split_payload("u030101u030101", &l2, &h) < 0 && h.code == QERR_PROTOCOL);
        CHECK_STR(msg(&h), "Duplicated device interfaces in payload.");
}

int main(void) {
        test_py_repr();
        test_qarg();
        test_serialise();
        test_parse();
        test_round_trip();
        test_assignment();
        test_interfaces();
        if (failures) {
                fprintf(stderr, "%u checks failed\n", failures);
                return EXIT_FAILURE;
        }
        printf("ok\n");
        return EXIT_SUCCESS;
}
