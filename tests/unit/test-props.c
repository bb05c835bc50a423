/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Property tables, sanitisation, defaults and setter checks (service/model/props.c), against
 * spec/props-by-class.txt, spec/admin-api.md 2.3 and the example qubes.xml. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "util/fileio.h"
#include "util/strv.h"

#ifndef EXAMPLE_XML
#ifdef QUBES_TEST_DATA_DIR
#define EXAMPLE_XML QUBES_TEST_DATA_DIR "/example-qubes.xml"
#else
#define EXAMPLE_XML "tests/data/example-qubes.xml"
#endif
#endif

static int failures;
static int checks;

#define CHECK(cond, ...)                                                                   \
        do {                                                                               \
                checks++;                                                                  \
                if (!(cond)) {                                                             \
                        failures++;                                                        \
                        fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                      \
                        fputc('\n', stderr);                                               \
                }                                                                          \
        } while (0)

static const char *or_null(const char *s) {
        return s ?: "(null)";
}

#define CHECK_STR(got, want) CHECK(streq_ptr((got), (want)), "got '%s', want '%s'", or_null(got), or_null(want))

/* ---- tables ---------------------------------------------------------------------------- */

/* Each class's properties in Admin API order (load stage, then name), as listed per class in
 * spec/props-by-class.txt; the AppVM list is also vector 7.2.12 of spec/admin-api.md. */
static const char *const class_lists[_QUBES_CLASS_MAX] = {
        [QUBES_CLASS_ADMINVM] = "devices_denied icon include_in_backups keyboard_layout klass label maxmem name "
                                "qid updateable uuid default_dispvm",
        [QUBES_CLASS_APPVM] =
                "autostart backup_timestamp debug default_user devices_denied dns gateway gateway6 icon "
                "include_in_backups installed_by_rpm ip ip6 kernel keyboard_layout klass label mac maxmem memory "
                "name provides_network qid qrexec_timeout shutdown_timeout start_time stubdom_mem stubdom_uuid "
                "stubdom_xid template_for_dispvms updateable uuid vcpus virt_mode visible_gateway visible_gateway6 "
                "visible_ip visible_ip6 visible_netmask xid audiovm bootmode default_dispvm guivm kernelopts "
                "management_dispvm netvm template",
        [QUBES_CLASS_DISPVM] =
                "auto_cleanup autostart backup_timestamp debug default_user devices_denied dispid dns gateway "
                "gateway6 icon include_in_backups installed_by_rpm ip ip6 is_preload kernel keyboard_layout klass "
                "label mac maxmem memory name provides_network qid qrexec_timeout shutdown_timeout start_time "
                "stubdom_mem stubdom_uuid stubdom_xid updateable uuid vcpus virt_mode visible_gateway "
                "visible_gateway6 visible_ip visible_ip6 visible_netmask xid audiovm bootmode default_dispvm guivm "
                "kernelopts management_dispvm netvm template",
        [QUBES_CLASS_REMOTEVM] = "icon include_in_backups klass label name qid remote_name transport_rpc uuid relayvm",
        [QUBES_CLASS_STANDALONEVM] =
                "autostart backup_timestamp debug default_user devices_denied dns gateway gateway6 icon "
                "include_in_backups installed_by_rpm ip ip6 kernel keyboard_layout klass label mac maxmem memory "
                "name provides_network qid qrexec_timeout shutdown_timeout start_time stubdom_mem stubdom_uuid "
                "stubdom_xid template_for_dispvms updateable uuid vcpus virt_mode visible_gateway visible_gateway6 "
                "visible_ip visible_ip6 visible_netmask xid audiovm bootmode default_dispvm guivm kernelopts "
                "management_dispvm netvm",
        [QUBES_CLASS_TEMPLATEVM] =
                "autostart backup_timestamp debug default_user devices_denied dns gateway gateway6 icon "
                "include_in_backups installed_by_rpm ip ip6 kernel keyboard_layout klass label mac maxmem memory "
                "name provides_network qid qrexec_timeout shutdown_timeout start_time stubdom_mem stubdom_uuid "
                "stubdom_xid updateable uuid vcpus virt_mode visible_gateway visible_gateway6 visible_ip visible_ip6 "
                "visible_netmask xid appvm_default_bootmode audiovm bootmode default_dispvm guivm kernelopts "
                "management_dispvm netvm",
};

static const char *const global_list =
        "check_updates_vm clockvm default_audiovm default_dispvm default_guivm default_kernel default_netvm "
        "default_pool default_pool_kernel default_pool_private default_pool_root default_pool_volatile "
        "default_qrexec_timeout default_shutdown_timeout default_template management_dispvm maxmem no_cpus "
        "stats_interval updatevm";

static char *join_names(const PropDef *const *l) {
        size_t n = 0;
        for (const PropDef *const *p = l; *p; p++)
                n += strlen((*p)->name) + 1;
        char *s = calloc(n + 1, 1);
        if (!s)
                abort();
        for (const PropDef *const *p = l; *p; p++) {
                if (p != l)
                        strcat(s, " ");
                strcat(s, (*p)->name);
        }
        return s;
}

static size_t count_words(const char *s) {
        size_t n = 0;
        for (bool in = false; *s; s++) {
                if (*s != ' ' && !in)
                        n++;
                in = *s != ' ';
        }
        return n;
}

static void camel(const char *name, char *buf) {
        bool up = true;
        for (; *name; name++) {
                if (*name == '_') {
                        up = true;
                        continue;
                }
                *buf++ = up ? (char) (*name >= 'a' && *name <= 'z' ? *name - 32 : *name) : *name;
                up = false;
        }
        *buf = '\0';
}

static void test_tables(void) {
        static const size_t counts[_QUBES_CLASS_MAX] = {
                [QUBES_CLASS_ADMINVM] = 12,  [QUBES_CLASS_APPVM] = 48,        [QUBES_CLASS_DISPVM] = 50,
                [QUBES_CLASS_REMOTEVM] = 10, [QUBES_CLASS_STANDALONEVM] = 47, [QUBES_CLASS_TEMPLATEVM] = 47,
        };

        for (int c = 0; c < _QUBES_CLASS_MAX; c++) {
                const PropDef *const *l = domain_props_of_class((QubesClass) c);
                char *got = join_names(l);
                CHECK_STR(got, class_lists[c]);
                CHECK(count_words(got) == counts[c], "%s has %zu properties", qubes_class_to_string(c),
                      count_words(got));
                free(got);
                /* Every property of the table that the class does not list must be unknown to it. */
                for (size_t i = 0; i < n_domain_props; i++) {
                        char pad[64];
                        snprintf(pad, sizeof pad, " %s ", domain_props[i].name);
                        char *hay;
                        if (asprintf(&hay, " %s ", class_lists[c]) < 0)
                                abort();
                        bool listed = strstr(hay, pad);
                        free(hay);
                        CHECK((domain_prop_find((QubesClass) c, domain_props[i].name) != NULL) == listed, "%s.%s",
                              qubes_class_to_string(c), domain_props[i].name);
                }
        }
        CHECK(n_domain_props == 55, "n_domain_props = %zu", n_domain_props);

        char *g = join_names(global_props_ordered());
        CHECK_STR(g, global_list);
        free(g);
        CHECK(n_global_props == 20, "n_global_props = %zu", n_global_props);

        /* The union: one row per name, and the rows the brief singles out. */
        for (size_t i = 0; i < n_domain_props; i++)
                for (size_t j = i + 1; j < n_domain_props; j++)
                        CHECK(!streq(domain_props[i].name, domain_props[j].name), "duplicate %s", domain_props[i].name);
        CHECK(domain_prop_find(QUBES_CLASS_APPVM, "template") && domain_prop_find(QUBES_CLASS_DISPVM, "template") &&
                      !domain_prop_find(QUBES_CLASS_TEMPLATEVM, "template") &&
                      !domain_prop_find(QUBES_CLASS_STANDALONEVM, "template"),
              "template classes");
        CHECK(domain_prop_find(QUBES_CLASS_STANDALONEVM, "template_for_dispvms") &&
                      !domain_prop_find(QUBES_CLASS_DISPVM, "template_for_dispvms"),
              "template_for_dispvms classes");
        CHECK(!domain_prop_find(QUBES_CLASS_APPVM, "appvm_default_bootmode"), "appvm_default_bootmode");
        CHECK(!domain_prop_find(QUBES_CLASS_APPVM, "no_such"), "unknown");
        CHECK(!domain_prop_find(_QUBES_CLASS_INVALID, "name"), "invalid class");

        /* Classes. */
        CHECK_STR(qubes_class_to_string(QUBES_CLASS_STANDALONEVM), "StandaloneVM");
        CHECK(qubes_class_from_string("DispVM") == QUBES_CLASS_DISPVM, "DispVM");
        CHECK(qubes_class_from_string("dispvm") == _QUBES_CLASS_INVALID, "case-sensitive");
        CHECK(qubes_class_from_string(NULL) == _QUBES_CLASS_INVALID, "NULL");
        CHECK(qubes_class_has_template(QUBES_CLASS_APPVM) && qubes_class_has_template(QUBES_CLASS_DISPVM) &&
                      !qubes_class_has_template(QUBES_CLASS_TEMPLATEVM),
              "has_template");

        /* D-Bus names. */
        for (size_t i = 0; i < n_domain_props; i++) {
                char want[64];
                camel(domain_props[i].name, want);
                CHECK_STR(domain_props[i].dbus_name, want);
                CHECK(domain_props[i].help && strlen(domain_props[i].help) > 10, "help of %s", domain_props[i].name);
                CHECK(domain_props[i].load_stage == 2 || domain_props[i].load_stage == 4, "stage of %s",
                      domain_props[i].name);
        }
        for (size_t i = 0; i < n_global_props; i++) {
                char want[64];
                camel(global_props[i].name, want);
                CHECK_STR(global_props[i].dbus_name, want);
                CHECK(global_props[i].load_stage == 3, "stage of %s", global_props[i].name);
                CHECK(global_props[i].classes == 0, "classes of %s", global_props[i].name);
        }
        CHECK_STR(domain_prop_find(QUBES_CLASS_APPVM, "netvm")->dbus_name, "Netvm");
        CHECK_STR(domain_prop_find(QUBES_CLASS_APPVM, "default_dispvm")->dbus_name, "DefaultDispvm");
        CHECK_STR(domain_prop_find(QUBES_CLASS_APPVM, "ip6")->dbus_name, "Ip6");
        CHECK(domain_prop_find_dbus(QUBES_CLASS_APPVM, "TemplateForDispvms") ==
                      domain_prop_find(QUBES_CLASS_APPVM, "template_for_dispvms"),
              "by D-Bus name");
        CHECK(!domain_prop_find_dbus(QUBES_CLASS_TEMPLATEVM, "Template"), "TemplateVM has no Template");
        CHECK(global_prop_find_dbus("DefaultPoolKernel") == global_prop_find("default_pool_kernel"), "global dbus");
        CHECK(!global_prop_find("netvm") && !global_prop_find_dbus("Netvm"), "netvm is not global");
        CHECK(domain_prop_index(domain_prop_find(QUBES_CLASS_APPVM, "autostart")) < n_domain_props, "index");

        /* Type words (admin-api.md 2.3.1). */
        static const struct {
                QubesClass c;
                const char *name, *word;
        } words[] = {
                { QUBES_CLASS_APPVM, "label", "label" },      { QUBES_CLASS_APPVM, "netvm", "vm" },
                { QUBES_CLASS_APPVM, "template", "vm" },      { QUBES_CLASS_APPVM, "vcpus", "int" },
                { QUBES_CLASS_APPVM, "autostart", "bool" },   { QUBES_CLASS_APPVM, "uuid", "str" },
                { QUBES_CLASS_APPVM, "ip", "str" },           { QUBES_CLASS_APPVM, "ip6", "str" },
                { QUBES_CLASS_APPVM, "start_time", "str" },   { QUBES_CLASS_APPVM, "klass", "str" },
                { QUBES_CLASS_APPVM, "xid", "int" },          { QUBES_CLASS_ADMINVM, "name", "str" },
                { QUBES_CLASS_DISPVM, "is_preload", "bool" }, { QUBES_CLASS_REMOTEVM, "relayvm", "vm" },
        };
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                CHECK_STR(prop_type_word(domain_prop_find(words[i].c, words[i].name)), words[i].word);
        CHECK_STR(prop_type_word(global_prop_find("default_pool")), "str");
        CHECK_STR(prop_type_word(global_prop_find("default_kernel")), "str");
        CHECK_STR(prop_type_word(global_prop_find("default_template")), "vm");
        CHECK_STR(prop_type_word(global_prop_find("check_updates_vm")), "bool");
        CHECK_STR(prop_type_word(global_prop_find("no_cpus")), "int");

        /* Flags. */
        static const char *const wo[] = { "name", "qid", "uuid", "dispid" };
        for (size_t i = 0; i < ELEMENTSOF(wo); i++) {
                const PropDef *p = domain_prop_find(QUBES_CLASS_DISPVM, wo[i]);
                CHECK((p->flags & (PROP_WRITE_ONCE | PROP_NO_CLONE)) == (PROP_WRITE_ONCE | PROP_NO_CLONE), "%s", wo[i]);
        }
        static const char *const stateless[] = { "klass",
                                                 "icon",
                                                 "xid",
                                                 "stubdom_uuid",
                                                 "stubdom_xid",
                                                 "start_time",
                                                 "visible_ip",
                                                 "visible_ip6",
                                                 "visible_gateway",
                                                 "visible_gateway6",
                                                 "visible_netmask",
                                                 "gateway",
                                                 "gateway6",
                                                 "dns",
                                                 "is_preload" };
        size_t n_stateless = 0;
        for (size_t i = 0; i < n_domain_props; i++)
                n_stateless += !!(domain_props[i].flags & PROP_STATELESS);
        CHECK(n_stateless == ELEMENTSOF(stateless), "%zu stateless", n_stateless);
        for (size_t i = 0; i < ELEMENTSOF(stateless); i++)
                CHECK(domain_prop_find(QUBES_CLASS_DISPVM, stateless[i])->flags & PROP_STATELESS, "%s", stateless[i]);
        CHECK(domain_prop_find(QUBES_CLASS_APPVM, "template")->flags & PROP_NO_RESET, "template no reset");
        CHECK(!(domain_prop_find(QUBES_CLASS_APPVM, "netvm")->flags & PROP_NO_RESET), "netvm resets");

        const PropDef *maxmem = domain_prop_find(QUBES_CLASS_ADMINVM, "maxmem");
        CHECK(prop_is_readonly_for(maxmem, QUBES_CLASS_ADMINVM), "dom0 maxmem");
        CHECK(!prop_is_readonly_for(maxmem, QUBES_CLASS_APPVM), "AppVM maxmem");
        CHECK(prop_is_readonly_for(domain_prop_find(QUBES_CLASS_ADMINVM, "name"), QUBES_CLASS_ADMINVM), "dom0 name");
        CHECK(!prop_is_readonly_for(domain_prop_find(QUBES_CLASS_APPVM, "name"), QUBES_CLASS_APPVM), "name");
        CHECK(prop_is_readonly_for(domain_prop_find(QUBES_CLASS_APPVM, "updateable"), QUBES_CLASS_APPVM), "updateable");
        CHECK(prop_is_readonly_for(domain_prop_find(QUBES_CLASS_APPVM, "klass"), QUBES_CLASS_APPVM), "klass");
        CHECK(!prop_is_readonly_for(domain_prop_find(QUBES_CLASS_ADMINVM, "label"), QUBES_CLASS_ADMINVM), "label");
        CHECK(prop_is_readonly_for(global_prop_find("no_cpus"), QUBES_CLASS_APPVM), "no_cpus");
        CHECK(prop_is_readonly_for(global_prop_find("maxmem"), QUBES_CLASS_APPVM), "global maxmem");
        CHECK(!prop_is_readonly_for(global_prop_find("clockvm"), QUBES_CLASS_ADMINVM), "clockvm");
}

/* ---- sanitisation ---------------------------------------------------------------------- */

static void expect_ok(QubesClass c, const char *name, const char *in, size_t len, const char *want) {
        const PropDef *p = c == _QUBES_CLASS_INVALID ? global_prop_find(name) : domain_prop_find(c, name);
        _cleanup_qerror_ QError e = {};
        char *out = (char *) 1;
        int r = prop_sanitize(p, in, len, &out, &e);
        _cleanup_free_ char *msg = qerror_message(&e);
        CHECK(r == 0, "sanitize %s '%s' failed: %s", name, in, strempty(msg));
        if (r == 0) {
                CHECK_STR(out, want);
                free(out);
        }
}

static void expect_err(QubesClass c, const char *name, const char *in, size_t len, QubesErrorCode code,
                       const char *want) {
        const PropDef *p = c == _QUBES_CLASS_INVALID ? global_prop_find(name) : domain_prop_find(c, name);
        _cleanup_qerror_ QError e = {};
        char *out = NULL;
        int r = prop_sanitize(p, in, len, &out, &e);
        CHECK(r < 0, "sanitize %s accepted '%s' as '%s'", name, in, strempty(out));
        if (r >= 0) {
                free(out);
                return;
        }
        CHECK(e.code == code, "sanitize %s '%s': class %s", name, in, qubes_error_class_name(e.code));
        if (want) {
                _cleanup_free_ char *msg = qerror_message(&e);
                CHECK_STR(msg, want);
        }
}

#define OK(c, name, in, want) expect_ok(QUBES_CLASS_##c, name, in, strlen(in), want)
#define ERR(c, name, in, code, want) expect_err(QUBES_CLASS_##c, name, in, strlen(in), QERR_##code, want)

static void test_sanitize(void) {
        /* bool words, any case */
        CHECK(parse_bool_word("YES") == 1 && parse_bool_word("On") == 1 && parse_bool_word("1") == 1 &&
                      parse_bool_word("tRuE") == 1,
              "true words");
        CHECK(parse_bool_word("no") == 0 && parse_bool_word("OFF") == 0 && parse_bool_word("0") == 0 &&
                      parse_bool_word("False") == 0,
              "false words");
        CHECK(parse_bool_word("") < 0 && parse_bool_word("2") < 0 && parse_bool_word(" yes") < 0 &&
                      parse_bool_word(NULL) < 0,
              "bad words");
        OK(APPVM, "autostart", "yes", "True");
        OK(APPVM, "autostart", "OFF", "False");
        OK(APPVM, "autostart", "1", "True");
        ERR(APPVM, "autostart", "maybe", VALUE, "Invalid literal for boolean property: 'maybe'");
        ERR(APPVM, "autostart", "", VALUE, "Invalid literal for boolean property: ''");
        ERR(APPVM, "autostart", "it's", VALUE, "Invalid literal for boolean property: \"it's\"");
        ERR(APPVM, "autostart", "a\nb", VALUE, "Invalid literal for boolean property: 'a\\nb'");
        expect_ok(_QUBES_CLASS_INVALID, "check_updates_vm", "true", 4, "True");

        /* int() */
        OK(APPVM, "vcpus", "42", "42");
        OK(APPVM, "vcpus", " 42\n", "42");
        OK(APPVM, "vcpus", "+7", "7");
        OK(APPVM, "vcpus", "-0", "0");
        OK(APPVM, "vcpus", "007", "7");
        OK(APPVM, "vcpus", "1_000", "1000");
        OK(APPVM, "vcpus", "-12", "-12");
        OK(APPVM, "backup_timestamp", "9223372036854775807", "9223372036854775807");
        OK(APPVM, "backup_timestamp", "-9223372036854775808", "-9223372036854775808");
        static const char *const bad_ints[] = { "abc",
                                                "",
                                                " ",
                                                "_1",
                                                "1_",
                                                "1__0",
                                                "0x10",
                                                "1.5",
                                                "+",
                                                "- 1",
                                                "1 2",
                                                "9223372036854775808",
                                                "99999999999999999999999" };
        for (size_t i = 0; i < ELEMENTSOF(bad_ints); i++)
                ERR(APPVM, "vcpus", bad_ints[i], VALUE, "Failed to parse property value as int");

        /* ASCII first */
        ERR(APPVM, "vcpus", "4\xc3\xa9", VALUE, "Non-ASCII bytes in property value");
        ERR(APPVM, "kernelopts", "caf\xc3\xa9", VALUE, "Non-ASCII bytes in property value");
        ERR(APPVM, "autostart", "\xff", VALUE, "Non-ASCII bytes in property value");
        ERR(APPVM, "uuid", "\x80", VALUE, "Non-ASCII bytes in property value");

        /* str: string.printable */
        OK(APPVM, "kernelopts", "a\tb\nc\r\x0b\x0c ~", "a\tb\nc\r\x0b\x0c ~");
        OK(APPVM, "kernelopts", "", "");
        ERR(APPVM, "kernelopts",
            "a\x01"
            "b",
            VALUE, "Invalid characters in property value");
        ERR(APPVM, "kernelopts", "\x7f", VALUE, "Invalid characters in property value");
        expect_err(QUBES_CLASS_APPVM, "kernelopts", "a\0b", 3, QERR_VALUE, "Invalid characters in property value");
        OK(APPVM, "label", "red", "red");
        expect_ok(_QUBES_CLASS_INVALID, "default_pool", "varlibqubes", 11, "varlibqubes");
        expect_ok(_QUBES_CLASS_INVALID, "default_kernel", "6.6.1-1.fc37", 12, "6.6.1-1.fc37");

        /* UUID */
        OK(APPVM, "uuid", "9DFAFB72-1385-4334-BAC3-6A7D75D5769C", "9dfafb72-1385-4334-bac3-6a7d75d5769c");
        OK(APPVM, "uuid", "{9dfafb7213854334bac36a7d75d5769c}", "9dfafb72-1385-4334-bac3-6a7d75d5769c");
        OK(APPVM, "uuid", "urn:uuid:9dfafb72-1385-4334-bac3-6a7d75d5769c", "9dfafb72-1385-4334-bac3-6a7d75d5769c");
        ERR(APPVM, "uuid", "9dfafb72-1385-4334-bac3-6a7d75d5769", VALUE, "Failed to parse property value as UUID");
        ERR(APPVM, "uuid", "9dfafb72-1385-4334-bac3-6a7d75d5769cc", VALUE, "Failed to parse property value as UUID");
        ERR(APPVM, "uuid", "g dfafb72-1385-4334-bac3-6a7d75d5769c", VALUE, "Failed to parse property value as UUID");

        /* IPv4 / IPv6 */
        OK(APPVM, "ip", "10.137.0.4", "10.137.0.4");
        ERR(APPVM, "ip", "10.137.0.04", VALUE, "Failed to parse property value as IPv4Address");
        ERR(APPVM, "ip", "10.137.0", VALUE, "Failed to parse property value as IPv4Address");
        ERR(APPVM, "ip", "10.137.0.256", VALUE, "Failed to parse property value as IPv4Address");
        ERR(APPVM, "ip", " 10.137.0.4", VALUE, "Failed to parse property value as IPv4Address");
        OK(APPVM, "ip6", "FD09:24EF:4179:0000:0000:0000:0A89:0004", "fd09:24ef:4179::a89:4");
        OK(APPVM, "ip6", "::", "::");
        OK(APPVM, "ip6", "::1", "::1");
        OK(APPVM, "ip6", "1:0:0:1:0:0:0:1", "1:0:0:1::1");
        OK(APPVM, "ip6", "1:0:0:2:3:0:0:4", "1::2:3:0:0:4");
        OK(APPVM, "ip6", "1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0");
        OK(APPVM, "ip6", "fe80::", "fe80::");
        ERR(APPVM, "ip6", "fe80:::1", VALUE, "Failed to parse property value as IPv6Address");
        ERR(APPVM, "ip6", "10.1.2.3", VALUE, "Failed to parse property value as IPv6Address");

        /* qube references */
        const PropDef *netvm = domain_prop_find(QUBES_CLASS_APPVM, "netvm");
        _cleanup_qerror_ QError e = {};
        char *out = (char *) 1;
        CHECK(prop_sanitize(netvm, "", 0, &out, &e) == 0 && out == NULL, "empty netvm is None");
        OK(APPVM, "netvm", "sys-net", "sys-net");
        expect_ok(_QUBES_CLASS_INVALID, "default_netvm", "sys-net", 7, "sys-net");
        ERR(APPVM, "netvm", "sys-n\xc3\xa9t", VALUE, "");
        ERR(APPVM, "netvm", ".net", VALUE, "VM name cannot start with hyphen, underscore, dot or numbers");
        ERR(APPVM, "netvm", "a/b", VALUE, "VM name contains illegal characters");
        ERR(APPVM, "netvm", "this-name-is-much-too-long-for-a-qube", VALUE, NULL);
        ERR(APPVM, "template", "none", VALUE, NULL);
        expect_err(QUBES_CLASS_APPVM, "netvm", "a\0b", 3, QERR_VALUE, NULL);
}

/* ---- the example system ---------------------------------------------------------------- */

static App *app;

static char *get(const char *vm, const char *name, bool *is_default) {
        Domain *d = app_get_domain(app, vm);
        CHECK(d, "no qube %s", vm);
        if (!d)
                return NULL;
        const PropDef *p = domain_prop_find(d->klass, name);
        CHECK(p, "%s has no %s", vm, name);
        if (!p)
                return NULL;
        _cleanup_qerror_ QError e = {};
        PropValue v = {};
        int r = domain_property_get(d, p, &v, &e);
        CHECK(r >= 0, "get %s.%s: %d", vm, name, r);
        if (is_default)
                *is_default = v.is_default;
        char *s = v.has_value ? (v.value ?: strdup("")) : strdup("<no value>");
        v.value = NULL;
        prop_value_done(&v);
        return s;
}

static void expect_prop(const char *vm, const char *name, const char *want, int want_default) {
        bool is_default = false;
        _cleanup_free_ char *got = get(vm, name, &is_default);
        CHECK(streq_ptr(got, want), "%s.%s = '%s', want '%s'", vm, name, strempty(got), want);
        if (want_default >= 0)
                CHECK(is_default == (bool) want_default, "%s.%s default=%d", vm, name, is_default);
}

static void expect_global(const char *name, const char *want, int want_default) {
        const PropDef *p = global_prop_find(name);
        PropValue v = {};
        int r = app_property_get(app, p, &v, NULL);
        CHECK(r >= 0, "get %s", name);
        const char *got = v.has_value ? strempty(v.value) : "<no value>";
        CHECK(streq(got, want), "global %s = '%s', want '%s'", name, got, want);
        if (want_default >= 0)
                CHECK(v.is_default == (bool) want_default, "global %s default=%d", name, v.is_default);
        prop_value_done(&v);
}

static void expect_set(const char *vm, const char *name, const char *value, QubesErrorCode code, const char *msg) {
        Domain *d = app_get_domain(app, vm);
        _cleanup_qerror_ QError e = {};
        int r = domain_property_set(d, name, value, strlen(value), &e);
        _cleanup_free_ char *got = qerror_message(&e);
        if (code == QERR_NONE) {
                CHECK(r >= 0, "set %s.%s='%s' failed: %s", vm, name, value, strempty(got));
                return;
        }
        CHECK(r < 0, "set %s.%s='%s' accepted", vm, name, value);
        CHECK(e.code == code, "set %s.%s='%s': %s (%s)", vm, name, value, qubes_error_class_name(e.code),
              strempty(got));
        if (msg)
                CHECK_STR(got, msg);
}

static void expect_global_set(const char *name, const char *value, QubesErrorCode code, const char *msg) {
        _cleanup_qerror_ QError e = {};
        int r = app_property_set(app, name, value, strlen(value), &e);
        _cleanup_free_ char *got = qerror_message(&e);
        if (code == QERR_NONE) {
                CHECK(r >= 0, "set %s='%s' failed: %s", name, value, strempty(got));
                return;
        }
        CHECK(r < 0, "set %s='%s' accepted", name, value);
        CHECK(e.code == code, "set %s='%s': %s (%s)", name, value, qubes_error_class_name(e.code), strempty(got));
        if (msg)
                CHECK_STR(got, msg);
}

static void test_defaults(void) {
        /* work (AppVM, qid 4): props-by-class.txt samples */
        expect_prop("work", "memory", "800", false);
        expect_prop("work", "vcpus", "2", true);
        expect_prop("work", "ip", "10.137.0.4", true);
        expect_prop("work", "visible_ip", "10.137.0.4", true);
        expect_prop("work", "visible_gateway", "10.137.0.2", true);
        expect_prop("work", "visible_netmask", "255.255.255.255", true);
        expect_prop("work", "gateway", "", true);
        expect_prop("work", "ip6", "", true);
        expect_prop("work", "dns", "10.139.1.1 10.139.1.2", true);
        expect_prop("work", "icon", "appvm-blue", true);
        expect_prop("work", "klass", "AppVM", true);
        expect_prop("work", "kernel", "6.6.1-1.fc37", true);
        expect_prop("work", "kernelopts", "swiotlb=2048", true);
        expect_prop("work", "maxmem", "4000", true);
        expect_prop("work", "updateable", "False", true);
        expect_prop("work", "default_user", "user", true);
        expect_prop("work", "netvm", "sys-net", true);
        expect_prop("work", "template", "fedora-42", false);
        expect_prop("work", "audiovm", "dom0", true);
        expect_prop("work", "guivm", "dom0", true);
        expect_prop("work", "default_dispvm", "default-dvm", true);
        expect_prop("work", "management_dispvm", "", true);
        expect_prop("work", "keyboard_layout", "us++", true);
        expect_prop("work", "mac", "00:16:3e:5e:6c:00", true);
        expect_prop("work", "virt_mode", "pvh", true);
        expect_prop("work", "xid", "-1", true);
        expect_prop("work", "stubdom_xid", "-1", true);
        expect_prop("work", "stubdom_uuid", "", true);
        expect_prop("work", "start_time", "", true);
        expect_prop("work", "stubdom_mem", "", true);
        expect_prop("work", "backup_timestamp", "", true);
        expect_prop("work", "bootmode", "default", true);
        expect_prop("work", "include_in_backups", "True", true);
        expect_prop("work", "qrexec_timeout", "60", true);
        expect_prop("work", "shutdown_timeout", "60", true);
        expect_prop("work", "template_for_dispvms", "False", true);
        expect_prop("work", "provides_network", "False", true);
        expect_prop("work", "devices_denied", "", true);
        expect_prop("work", "name", "work", false);
        expect_prop("work", "qid", "4", false);
        expect_prop("work", "label", "blue", false);

        /* disp1234 (DispVM of default-dvm) */
        expect_prop("disp1234", "ip", "10.138.4.218", true);
        expect_prop("disp1234", "visible_ip", "10.138.4.218", true);
        expect_prop("disp1234", "icon", "dispvm-red", true);
        expect_prop("disp1234", "default_dispvm", "default-dvm", true);
        expect_prop("disp1234", "memory", "400", true);
        expect_prop("disp1234", "include_in_backups", "True", true);
        expect_prop("disp1234", "is_preload", "False", true);
        expect_prop("disp1234", "netvm", "sys-net", true);
        expect_prop("disp1234", "updateable", "False", true);
        expect_prop("disp1234", "dispid", "1234", false);
        expect_prop("disp1234", "kernel", "6.6.1-1.fc37", true);

        /* sys-net: provides network, netvm explicitly None, a PCI device */
        expect_prop("sys-net", "ip", "10.137.0.2", true);
        expect_prop("sys-net", "visible_ip", "10.137.0.2", true);
        expect_prop("sys-net", "gateway", "10.137.0.2", true);
        expect_prop("sys-net", "visible_gateway", "", true);
        expect_prop("sys-net", "visible_netmask", "", true);
        expect_prop("sys-net", "dns", "10.139.1.1 10.139.1.2", true);
        expect_prop("sys-net", "netvm", "", false);
        expect_prop("sys-net", "icon", "servicevm-red", true);
        expect_prop("sys-net", "maxmem", "0", true);
        expect_prop("sys-net", "virt_mode", "hvm", true);
        expect_prop("sys-net", "kernelopts", "", true);

        expect_prop("default-dvm", "icon", "templatevm-red", true);
        expect_prop("default-dvm", "template_for_dispvms", "True", false);

        /* fedora-42 (TemplateVM) */
        expect_prop("fedora-42", "icon", "templatevm-black", true);
        expect_prop("fedora-42", "updateable", "True", true);
        expect_prop("fedora-42", "netvm", "", true);
        expect_prop("fedora-42", "ip", "", true);
        expect_prop("fedora-42", "dns", "", true);
        expect_prop("fedora-42", "visible_netmask", "", true);
        expect_prop("fedora-42", "memory", "400", true);
        expect_prop("fedora-42", "maxmem", "4000", true);
        expect_prop("fedora-42", "appvm_default_bootmode", "default", true);

        /* dom0 */
        expect_prop("dom0", "name", "dom0", -1);
        expect_prop("dom0", "qid", "0", -1);
        expect_prop("dom0", "uuid", "00000000-0000-0000-0000-000000000000", -1);
        expect_prop("dom0", "maxmem", "4096", true);
        expect_prop("dom0", "icon", "adminvm-black", true);
        expect_prop("dom0", "klass", "AdminVM", true);
        expect_prop("dom0", "label", "black", false);
        expect_prop("dom0", "keyboard_layout", "us++", true);
        expect_prop("dom0", "default_dispvm", "default-dvm", true);
        expect_prop("dom0", "updateable", "True", true);
        expect_prop("dom0", "include_in_backups", "True", true);
        expect_prop("dom0", "devices_denied", "", true);

        /* globals */
        expect_global("default_pool", "varlibqubes", true);
        expect_global("default_pool_kernel", "linux-kernel", false);
        expect_global("default_pool_private", "varlibqubes", true);
        expect_global("default_pool_root", "varlibqubes", true);
        expect_global("default_pool_volatile", "varlibqubes", true);
        expect_global("default_guivm", "dom0", true);
        expect_global("default_audiovm", "dom0", true);
        expect_global("default_netvm", "sys-net", false);
        expect_global("default_template", "fedora-42", false);
        expect_global("default_dispvm", "default-dvm", false);
        expect_global("management_dispvm", "", true);
        expect_global("updatevm", "sys-net", false);
        expect_global("clockvm", "sys-net", false);
        expect_global("default_kernel", "6.6.1-1.fc37", false);
        expect_global("default_qrexec_timeout", "60", true);
        expect_global("default_shutdown_timeout", "60", true);
        expect_global("stats_interval", "3", true);
        expect_global("check_updates_vm", "True", true);
        expect_global("maxmem", "16000", true);
        expect_global("no_cpus", "4", true);
}

/* Upstream's _default_maxmem(): 0 unless the hypervisor balances memory (Xen); there, not with
 * PCI devices, and an HVM only with its tools; the host's half as a cap; the template's value. */
static void test_maxmem_rules(void) {
        Domain *work = app_get_domain(app, "work");
        Domain *tpl = app_get_domain(app, "fedora-42");

        /* not Xen: nothing balances, whatever the qube */
        app->memory_balancing = false;
        expect_prop("work", "maxmem", "0", true);
        expect_prop("fedora-42", "maxmem", "0", true);
        expect_prop("disp1234", "maxmem", "0", true);
        expect_prop("dom0", "maxmem", "4096", true);
        app->memory_balancing = true;

        /* Linux: ten times memory (work has 800), capped at half the host (16000 / 2) */
        CHECK(domain_feature_set(work, "os", "Linux", NULL) >= 0, "set os");
        expect_prop("work", "maxmem", "4000", true); /* the template's value comes first */
        CHECK(domain_feature_set(tpl, "os", "Linux", NULL) >= 0, "set os");
        expect_prop("fedora-42", "maxmem", "4000", true); /* 400 * 10 */
        CHECK(domain_property_set(tpl, "memory", "1000", 4, NULL) >= 0, "memory");
        expect_prop("fedora-42", "maxmem", "8000", true);
        expect_prop("work", "maxmem", "8000", true);
        app->host_memory_mib = 6000;
        expect_prop("fedora-42", "maxmem", "3000", true);
        app->host_memory_mib = 16000;
        CHECK(domain_property_reset(tpl, "memory", NULL) >= 0, "reset memory");

        /* HVM: qrexec, or any supported service when qrexec is not announced */
        CHECK(domain_property_set(work, "virt_mode", "hvm", 3, NULL) >= 0, "virt_mode");
        expect_prop("work", "maxmem", "4000", true); /* nothing announced: qrexec assumed */
        CHECK(domain_feature_set(tpl, "supported-service.foo", "1", NULL) >= 0, "service");
        expect_prop("work", "maxmem", "0", true); /* services but no qrexec: no tools */
        CHECK(domain_feature_set(work, "qrexec", "1", NULL) >= 0, "qrexec");
        expect_prop("work", "maxmem", "4000", true);
        CHECK(domain_feature_set(tpl, "supported-service.meminfo-writer", "", NULL) >= 0, "meminfo-writer");
        expect_prop("work", "maxmem", "0", true);
        CHECK(domain_feature_remove(tpl, "supported-service.meminfo-writer", NULL) >= 0, "rm");
        CHECK(domain_feature_set(work, "qrexec", "", NULL) >= 0, "qrexec off");
        expect_prop("work", "maxmem", "0", true);
        CHECK(domain_feature_remove(work, "qrexec", NULL) >= 0, "rm");
        CHECK(domain_feature_remove(tpl, "supported-service.foo", NULL) >= 0, "rm");
        CHECK(domain_property_reset(work, "virt_mode", NULL) >= 0, "reset virt_mode");
        CHECK(domain_feature_remove(work, "os", NULL) >= 0, "rm");
        CHECK(domain_feature_remove(tpl, "os", NULL) >= 0, "rm");
        expect_prop("work", "maxmem", "4000", true);

        /* dom0: what the hypervisor says of Domain-0 */
        app->dom0_maxmem_mib = 2048;
        expect_prop("dom0", "maxmem", "2048", true);
        app->dom0_maxmem_mib = 0;
}

static void test_kernelopts_file(const char *state_dir) {
        _cleanup_free_ char *dir = NULL, *file = NULL;
        if (asprintf(&dir, "%s/vm-kernels/6.6.1-1.fc37", state_dir) < 0 ||
            asprintf(&file, "%s/default-kernelopts-nopci.txt", dir) < 0)
                abort();
        CHECK(mkdir_p(dir, 0755) >= 0, "mkdir %s", dir);
        CHECK(write_file_atomic(file, "  nopat quiet\n", 14, 0644) >= 0, "write %s", file);
        expect_prop("work", "kernelopts", "nopat quiet", true);
        expect_prop("fedora-42", "kernelopts", "nopat quiet", true);
        expect_prop("sys-net", "kernelopts", "", true);
}

static bool has_tag(const char *vm, const char *tag) {
        return domain_has_tag(app_get_domain(app, vm), tag);
}

static void test_checks(void) {
        expect_set("work", "netvm", "no-such-vm", QERR_PROPERTY_VALUE,
                   "Can't set netvm to non-existing qube no-such-vm");
        expect_set("work", "netvm", "fedora-42", QERR_VALUE, "The fedora-42 qube does not provide network");
        expect_set("sys-net", "netvm", "sys-net", QERR_VALUE, "Loops in network are unsupported");
        expect_set("work", "vcpus", "0", QERR_PROPERTY_VALUE, "vcpus must be positive");
        expect_set("work", "memory", "-5", QERR_PROPERTY_VALUE, "memory must be positive");
        expect_set("work", "maxmem", "-1", QERR_PROPERTY_VALUE, "maxmem must be positive or zero");
        expect_set("work", "maxmem", "0", QERR_NONE, NULL);
        expect_set("work", "label", "nolabel", QERR_LABEL_NOT_FOUND, "Label does not exist: nolabel");
        expect_set("work", "label", "1", QERR_NONE, NULL);
        expect_prop("work", "label", "red", false);
        expect_set("work", "label", "label-6", QERR_NONE, NULL);
        expect_prop("work", "label", "blue", false);
        expect_set("work", "virt_mode", "HVM", QERR_NONE, NULL);
        expect_prop("work", "virt_mode", "hvm", false);
        expect_prop("work", "maxmem", "0", false);
        expect_set("work", "virt_mode", "kvm", QERR_PROPERTY_VALUE,
                   "Invalid virtualization mode, supported values: hvm, pv, pvh");
        expect_set("sys-net", "virt_mode", "pvh", QERR_PROPERTY_VALUE,
                   "pvh mode can't be set if pci devices are assigned");
        expect_set("work", "mac", "00:16:3E:5E:6C:01", QERR_NONE, NULL);
        expect_prop("work", "mac", "00:16:3e:5e:6c:01", false);
        expect_set("work", "mac", "00:16:3e:5e:6c", QERR_VALUE, "Invalid MAC address value");
        expect_set("work", "kernel", "a/b", QERR_PROPERTY_VALUE, "Kernel name cannot contain '/'");
        expect_set("work", "kernel", "9.9", QERR_PROPERTY_VALUE, "Kernel '9.9' not installed");
        expect_global_set("default_kernel", "9.9", QERR_PROPERTY_VALUE, "Kernel '9.9' not installed");
        expect_set("work", "kernel", "", QERR_NONE, NULL);
        expect_prop("work", "kernel", "", false);
        expect_prop("work", "kernelopts", "", true);
        char long_opts[600];
        memset(long_opts, 'x', 513);
        long_opts[513] = '\0';
        expect_set("work", "kernelopts", long_opts, QERR_PROPERTY_VALUE, "Kernelopts value too long (512 chars max)");
        long_opts[512] = '\0';
        expect_set("work", "kernelopts", long_opts, QERR_NONE, NULL);
        expect_set("work", "default_user", "us er", QERR_PROPERTY_VALUE,
                   "Username can contain only those characters: "
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+,.");
        expect_set("work", "keyboard_layout", "de+nodeadkeys+", QERR_NONE, NULL);
        expect_set("work", "keyboard_layout", "de", QERR_PROPERTY_VALUE,
                   "invalid number of keyboard layout parameters");
        expect_set("work", "keyboard_layout", "d3++", QERR_PROPERTY_VALUE, "Invalid keyboard layout provided");
        expect_set("work", "keyboard_layout", "++", QERR_PROPERTY_VALUE, "Invalid keyboard layout provided");
        expect_set("work", "keyboard_layout", "de+a.b+", QERR_PROPERTY_VALUE, "Invalid layout variant provided");
        expect_set("work", "keyboard_layout", "de++a;b", QERR_PROPERTY_VALUE, "Invalid layout options provided");
        expect_set("work", "devices_denied", "u03****p0900**p0900**", QERR_NONE, NULL);
        expect_prop("work", "devices_denied", "p0900**u03****", false);
        expect_set("work", "devices_denied", "x03****", QERR_PROPERTY_VALUE,
                   "Interface code list should be in the form chhhhhhchhhhhh...,where c is one of \"b\", \"u\", "
                   "\"m\", \"p\", \"*\" and h is a hexdigit or \"*\".");
        /* devices: upstream's setter splits the list first (DeviceInterface.from_str_bulk) */
        expect_set("work", "devices_denied", "u03***", QERR_VALUE,
                   "Invalid length of interfaces='u03***' (is 6, expected multiple of 7)");
        expect_set("work", "qrexec_timeout", "0", QERR_PROPERTY_VALUE, "qrexec_timeout must be positive");
        expect_set("work", "klass", "TemplateVM", QERR_PROPERTY_VALUE,
                   "property 'klass' on AppVM instance cannot be set");
        expect_set("work", "updateable", "True", QERR_PROPERTY_VALUE,
                   "property 'updateable' on AppVM instance cannot be set");
        expect_set("dom0", "maxmem", "100", QERR_PROPERTY_VALUE, "property 'maxmem' on AdminVM instance cannot be set");
        expect_set("work", "template", "work", QERR_PROPERTY_VALUE,
                   "wrong VM class: domains['work'] is of type AppVM and not TemplateVM");
        expect_set("work", "template", "", QERR_PROPERTY_VALUE, NULL);
        expect_set("disp1234", "template", "fedora-42", QERR_PROPERTY_VALUE,
                   "template for disposable must have template_for_dispvms=True");
        expect_set("work", "default_dispvm", "work", QERR_PROPERTY_VALUE, NULL);
        expect_set("work", "default_dispvm", "default-dvm", QERR_NONE, NULL);
        expect_set("default-dvm", "template_for_dispvms", "False", QERR_VM_IN_USE, NULL);
        expect_set("sys-net", "provides_network", "False", QERR_VALUE,
                   "The qube is still used by other qubes, change theirs 'netvm' first");
        expect_set("work", "guivm", "nope", QERR_PROPERTY_VALUE, "Can't set guivm to non-existing qube nope");

        /* side effects */
        expect_set("work", "guivm", "sys-net", QERR_NONE, NULL);
        CHECK(has_tag("work", "guivm-sys-net") && !has_tag("work", "guivm-dom0"), "guivm tag follows");
        CHECK(has_tag("work", "audiovm-dom0"), "audiovm tag kept");
        expect_set("work", "audiovm", "", QERR_NONE, NULL);
        CHECK(!has_tag("work", "audiovm-dom0"), "audiovm tag dropped with None");
        expect_set("work", "provides_network", "True", QERR_NONE, NULL);
        CHECK(streq_ptr(domain_feature_get(app_get_domain(app, "work"), "servicevm"), "1"), "servicevm set");
        expect_prop("work", "gateway", "10.137.0.4", true);
        expect_set("work", "provides_network", "False", QERR_NONE, NULL);
        CHECK(!domain_feature_get(app_get_domain(app, "work"), "servicevm"), "servicevm removed");

        expect_global_set("clockvm", "work", QERR_NONE, NULL);
        CHECK(streq_ptr(domain_feature_get(app_get_domain(app, "work"), "service.clocksync"), "1"), "clocksync on");
        CHECK(!domain_feature_get(app_get_domain(app, "sys-net"), "service.clocksync"), "clocksync moved");
        expect_global_set("clockvm", "nope", QERR_PROPERTY_VALUE, "Can't set clockvm to non-existing qube nope");
        expect_global_set("default_pool", "nope", QERR_PROPERTY_VALUE, "No such storage pool");
        expect_global_set("default_pool", "linux-kernel", QERR_NONE, NULL);
        expect_global("default_pool_root", "linux-kernel", true);
        expect_global_set("default_template", "work", QERR_PROPERTY_VALUE,
                          "wrong VM class: domains['work'] is of type AppVM and not TemplateVM");
        expect_global_set("default_dispvm", "work", QERR_PROPERTY_VALUE, NULL);
        expect_global_set("no_cpus", "3", QERR_PROPERTY_VALUE, "property 'no_cpus' on Qubes instance cannot be set");

        expect_set("disp1234", "provides_network", "True", QERR_NONE, NULL);
        expect_global_set("default_netvm", "disp1234", QERR_PROPERTY_VALUE, "Network loop on 'disp1234'");

        expect_global_set("default_guivm", "sys-net", QERR_NONE, NULL);
        CHECK(has_tag("fedora-42", "guivm-sys-net") && !has_tag("fedora-42", "guivm-dom0"), "default guivm tags");
        CHECK(has_tag("work", "guivm-sys-net"), "explicit guivm kept");

        /* Two qubes that are each other's GUI qube: the keyboard layout default must still end. */
        expect_set("sys-net", "guivm", "work", QERR_NONE, NULL);
        expect_prop("work", "keyboard_layout", "de+nodeadkeys+", false);
        expect_set("work", "keyboard_layout", "", QERR_PROPERTY_VALUE, NULL);
        CHECK(domain_property_reset(app_get_domain(app, "work"), "keyboard_layout", NULL) >= 0, "reset layout");
        expect_prop("work", "keyboard_layout", "us++", true);
        expect_prop("sys-net", "keyboard_layout", "us++", true);
}

int main(int argc, char **argv) {
        _cleanup_free_ char *xml = NULL;
        char state_dir[] = "/tmp/test-props-XXXXXX";
        size_t len;
        int r;

        test_tables();
        test_sanitize();

        const char *path = argc > 1 ? argv[1] : EXAMPLE_XML;
        r = read_file(path, &xml, &len);
        CHECK(r >= 0, "cannot read %s (pass its path as the first argument)", path);
        if (r >= 0 && mkdtemp(state_dir)) {
                _cleanup_qerror_ QError e = {};
                CHECK(app_new(state_dir, &app) >= 0, "app_new");
                app->host_memory_mib = 16000;
                app->host_cpus = 4;
                app->memory_balancing = true; /* upstream's figures were taken on Xen */
                r = app_load_from_memory(app, xml, len, path, &e);
                _cleanup_free_ char *msg = qerror_message(&e);
                CHECK(r >= 0, "load %s: %s", path, strempty(msg));
                if (r >= 0) {
                        test_defaults();
                        test_maxmem_rules();
                        test_kernelopts_file(state_dir);
                        test_checks();
                }
                app = app_free(app);
                _cleanup_free_ char *cmd = NULL;
                if (asprintf(&cmd, "rm -rf '%s'", state_dir) >= 0 && system(cmd) != 0)
                        fprintf(stderr, "could not remove %s\n", state_dir);
        }

        if (failures) {
                fprintf(stderr, "%d of %d checks failed\n", failures, checks);
                return EXIT_FAILURE;
        }
        printf("all %d checks passed\n", checks);
        return EXIT_SUCCESS;
}
