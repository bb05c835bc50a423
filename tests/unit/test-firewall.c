/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The firewall rule grammar (service/model/firewall.c) against spec/firewall.md: every error
 * class of §3 with upstream's message, the Get form (§4), firewall.xml written and read (§5),
 * the R3 conversion, expiry. */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/firewall.h"
#include "util/fileio.h"
#include "util/strv.h"

static unsigned failures;

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

#define CHECK_STR(got, want)                                                                                  \
        do {                                                                                                  \
                const char *_g = (got), *_w = (want);                                                         \
                if (!streq_ptr(_g, _w)) {                                                                     \
                        fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, _g ?: "NULL", \
                                _w ?: "NULL");                                                                \
                        failures++;                                                                           \
                }                                                                                             \
        } while (0)

/* The Get text of a payload, or "<Class>: message". */
static char *run(const char *payload) {
        _cleanup_(firewall_freep) Firewall *fw = NULL;
        QError e = {};
        char *out;
        if (firewall_parse_text(payload, strlen(payload), &fw, &e) < 0) {
                _cleanup_free_ char *m = qerror_message(&e);
                if (asprintf(&out, "%s: %s", qubes_error_class_name(e.code), m ?: "") < 0)
                        out = NULL;
                qerror_done(&e);
                return out;
        }
        return firewall_format_text(fw, 1000000000);
}

#define CHECK_RUN(payload, want)                        \
        do {                                            \
                _cleanup_free_ char *_o = run(payload); \
                CHECK_STR(_o, want);                    \
        } while (0)

static void test_accepted(void) {
        CHECK_RUN("action=accept proto=tcp dstports=1-1024", "action=accept proto=tcp dstports=1-1024\n");
        CHECK_RUN("action=drop proto=icmp comment=No ICMP", "action=drop proto=icmp comment=No ICMP\n");
        CHECK_RUN("action=drop expire=2099450306 proto=udp", "action=drop expire=2099450306 proto=udp\n");
        CHECK_RUN("action=accept dst4=10.0.0.0/8", "action=accept dst4=10.0.0.0/8\n");
        CHECK_RUN("action=accept proto=tcp dstports=80", "action=accept proto=tcp dstports=80-80\n");
        /* client order in, server order out; bare addresses get their prefix */
        CHECK_RUN("action=accept proto=udp dsthost=1.1.1.1 dstports=53 specialtarget=dns expire=4102444800 comment=a b",
                  "action=accept expire=4102444800 dst4=1.1.1.1/32 proto=udp specialtarget=dns dstports=53-53 "
                  "comment=a b\n");
        CHECK_RUN("action=accept dsthost=2001:DB8::1", "action=accept dst6=2001:DB8::1/128\n");
        CHECK_RUN("action=accept dst6=10.1.2.3/08", "action=accept dst4=10.1.2.3/08\n");
        CHECK_RUN("action=accept dst4=example.com", "action=accept dsthost=example.com\n");
        CHECK_RUN("action=accept dstname=a-b_c.d", "action=accept dsthost=a-b_c.d\n");
        CHECK_RUN("action=accept dsthost=", "action=accept dsthost=\n");
        CHECK_RUN("action=drop proto=icmp icmptype=008", "action=drop proto=icmp icmptype=8\n");
        CHECK_RUN("  action=drop  ", "action=drop\n");
        CHECK_RUN("action=accept dsthost=1.2.3", "action=accept dsthost=1.2.3\n");
        CHECK_RUN("action=accept comment=", "action=accept\n");
        /* splitlines: every separator, a final one adds no line */
        CHECK_RUN("action=accept\r\naction=drop\raction=accept\x0b"
                  "action=drop\x0c"
                  "action=accept\x1c"
                  "action=drop\x1d"
                  "action=accept\x1e"
                  "action=drop\n",
                  "action=accept\naction=drop\naction=accept\naction=drop\naction=accept\naction=drop\naction=accept\n"
                  "action=drop\n");
        /* expired rules are left out of Get */
        CHECK_RUN("action=drop expire=999999999\naction=accept", "action=accept\n");
        CHECK_RUN("action=drop expire=1000000000\naction=accept", "action=drop expire=1000000000\naction=accept\n");
}

static void test_refused(void) {
        CHECK_RUN("", "ProtocolError: expected payload");
        CHECK_RUN("action=accept dstports=1-1024 comment=\xc4\x85",
                  "ProtocolError: Rules contains non-ASCII characters");
        CHECK_RUN("action=accept proto=x\xff", "ProtocolError: Rules contains non-ASCII characters");
        CHECK_RUN("action=accept protoxyz=tcp", "QubesValueError: Unknown firewall option");
        CHECK_RUN("action=accept comment2=x", "QubesValueError: Unknown firewall option");
        CHECK_RUN("proto=tcp", "QubesValueError: Required property 'action' not set on firewall rule");
        CHECK_RUN("action=accept dstports=80", "QubesValueError: dstports valid only for 'tcp' and 'udp' protocols");
        CHECK_RUN("action=accept proto=icmp dstports=80",
                  "QubesValueError: dstports valid only for 'tcp' and 'udp' protocols");
        CHECK_RUN("action=accept icmptype=8", "QubesValueError: icmptype valid only for 'icmp' protocol");
        CHECK_RUN("action=accept\n\naction=drop", "QubesValueError: Invalid firewall option (no '='): ");
        CHECK_RUN("\n", "QubesValueError: Invalid firewall option (no '='): ");
        CHECK_RUN("comment=only", "QubesValueError: Invalid firewall option (no '='): ");
        CHECK_RUN("action=accept  proto=tcp", "QubesValueError: Invalid firewall option (no '='): ");
        CHECK_RUN("action=accept tail", "QubesValueError: Invalid firewall option (no '='): tail");
        CHECK_RUN("action=accept action=drop", "QubesValueError: Option 'action' already set");
        CHECK_RUN("action=accept dst4=1.1.1.1 dst6=::1", "QubesValueError: Option 'dsthost' already set");
        CHECK_RUN("action=accept dst4=1.1.1.1 dsthost=a", "QubesValueError: Option 'dsthost' already set");
        CHECK_RUN("action=accept proto=tcp proto=udp", "QubesValueError: Option 'proto' already set");
        CHECK_RUN("action=ACCEPT", "QubesValueError: ACCEPT");
        CHECK_RUN("action=accept proto=TCP", "QubesValueError: TCP");
        CHECK_RUN("action=accept specialtarget=ntp", "QubesValueError: ntp");
        CHECK_RUN("action=", "QubesValueError: ");
        CHECK_RUN("action=accept\tproto=tcp", "QubesValueError: strange characters in rule");
        CHECK_RUN("action=accept proto=tcp!", "QubesValueError: strange characters in rule");
        CHECK_RUN("action=accept comment=<b>", "QubesValueError: strange characters comment");
        CHECK_RUN("action=accept comment=x comment=y", "QubesValueError: strange characters comment");
        CHECK_RUN("action=accept comment=tab\there", "QubesValueError: strange characters comment");
        CHECK_RUN("action=accept dsthost=1.2.3.4/8/8", "QubesValueError: Too many /: 1.2.3.4/8/8");
        CHECK_RUN("action=accept dsthost=Example.com", "QubesValueError: Invalid hostname");
        CHECK_RUN("action=accept dsthost=1.2.3.4/", "QubesValueError: bad prefix length");
        CHECK_RUN("action=accept dsthost=1.2.3.4/-1", "QubesValueError: bad prefix length");
        CHECK_RUN("action=accept dsthost=::/129", "QubesValueError: netmask for IPv6 must be <= 128");
        CHECK_RUN("action=accept dsthost=1.2.3.4/33", "QubesValueError: netmask for IPv4 must be <= 32");
        CHECK_RUN("action=accept dsthost=a.b/24", "QubesValueError: Invalid IP address: a.b");
        CHECK_RUN("action=accept proto=tcp dstports=65536", "QubesValueError: Ports out of range");
        CHECK_RUN("action=accept proto=tcp dstports=99999999999999999999", "QubesValueError: Ports out of range");
        CHECK_RUN("action=accept proto=tcp dstports=81-80", "QubesValueError: Invalid port range");
        CHECK_RUN("action=accept proto=tcp dstports=1-2-3", "QubesValueError: too many values to unpack (expected 2)");
        CHECK_RUN("action=accept proto=tcp dstports=x", "QubesValueError: invalid literal for int() with base 10: 'x'");
        CHECK_RUN("action=accept proto=tcp dstports=", "QubesValueError: invalid literal for int() with base 10: ''");
        CHECK_RUN("action=accept proto=icmp icmptype=1000", "QubesValueError: bad ICMP type");
        CHECK_RUN("action=accept proto=icmp icmptype=-1", "QubesValueError: bad ICMP type");
        CHECK_RUN("action=accept proto=icmp icmptype=256", "QubesValueError: ICMP type out of range");
        CHECK_RUN("action=accept expire=+60", "QubesValueError: strange characters in rule");
        CHECK_RUN("action=accept expire=soon", "QubesValueError: bad expiration time");
        CHECK_RUN("action=accept expire=", "QubesValueError: bad expiration time");
        CHECK_RUN("action=accept expire=99999999999999999999", "QubesValueError: expiration time out of range");
        /* one bad line refuses the whole payload */
        CHECK_RUN("action=accept\naction=drop proto=tcp dstports=80\naction=bogus", "QubesValueError: bogus");
        /* a NUL is ASCII, and fails the character checks */
        {
                _cleanup_(firewall_freep) Firewall *fw = NULL;
                QError e = {};
                CHECK(firewall_parse_text("action=accept\0", 14, &fw, &e) < 0 && e.code == QERR_VALUE);
                qerror_done(&e);
        }
}

static const char every_field_xml[] = "<firewall version=\"2\">\n"
                                      "  <rules>\n"
                                      "    <rule>\n"
                                      "      <properties>\n"
                                      "        <property name=\"action\">accept</property>\n"
                                      "        <property name=\"comment\">Web, site</property>\n"
                                      "        <property name=\"expire\">4102444800</property>\n"
                                      "        <property name=\"dsthost\">192.168.0.0/24</property>\n"
                                      "        <property name=\"proto\">tcp</property>\n"
                                      "        <property name=\"dstports\">443</property>\n"
                                      "      </properties>\n"
                                      "    </rule>\n"
                                      "    <rule>\n"
                                      "      <properties>\n"
                                      "        <property name=\"action\">drop</property>\n"
                                      "      </properties>\n"
                                      "    </rule>\n"
                                      "  </rules>\n"
                                      "</firewall>\n";

static void test_xml(void) {
        _cleanup_(firewall_freep) Firewall *fw = NULL, *back = NULL, *def = NULL, *r3 = NULL;
        _cleanup_free_ char *xml = NULL, *text = NULL, *empty = NULL, *r3text = NULL;
        const char *payload = "action=accept proto=tcp dsthost=192.168.0.0/24 dstports=443 expire=4102444800 "
                              "comment=Web, site\naction=drop expire=100\naction=drop";
        QError e = {};

        CHECK(firewall_parse_text(payload, strlen(payload), &fw, &e) >= 0);
        xml = firewall_to_xml(fw, 1000);
        CHECK_STR(xml, every_field_xml); /* the expired rule is not written */
        CHECK(firewall_from_xml(xml, strlen(xml), &back, &e) >= 0);
        text = back ? firewall_format_text(back, 0) : NULL;
        CHECK_STR(text,
                  "action=accept expire=4102444800 dst4=192.168.0.0/24 proto=tcp dstports=443-443 comment=Web, site\n"
                  "action=drop\n");
        CHECK(firewall_drop_expired(fw, 1000) == 1 && fw->n == 2);
        CHECK(firewall_next_expiry(fw, 0) == INT64_C(4102444800));

        /* every rule expired: <rules/>, which reads back as an empty list (drop everything) */
        _cleanup_(firewall_freep) Firewall *gone = NULL;
        CHECK(firewall_parse_text("action=drop expire=100", 22, &gone, &e) >= 0);
        empty = gone ? firewall_to_xml(gone, 1000) : NULL;
        CHECK_STR(empty, "<firewall version=\"2\">\n  <rules/>\n</firewall>\n");
        _cleanup_(firewall_freep) Firewall *none = NULL;
        CHECK(empty && firewall_from_xml(empty, strlen(empty), &none, &e) >= 0 && none->n == 0);
        _cleanup_free_ char *nonetext = none ? firewall_format_text(none, 0) : NULL;
        CHECK_STR(nonetext, "");

        CHECK(firewall_new_default(&def) >= 0 && def->n == 1);
        _cleanup_free_ char *deftext = def ? firewall_format_text(def, 0) : NULL;
        CHECK_STR(deftext, "action=accept\n");

        /* R3 */
        const char *r3xml = "<QubesFirewallRules policy=\"allow\" dns=\"deny\" icmp=\"allow\">"
                            "<rule address=\"192.168.1.0\" netmask=\"24\" proto=\"tcp\" port=\"80\" toport=\"81\"/>"
                            "<rule address=\"10.0.0.1\" proto=\"any\"/>"
                            "<rule port=\"22\"/>"
                            "</QubesFirewallRules>";
        CHECK(firewall_from_xml(r3xml, strlen(r3xml), &r3, &e) >= 0);
        r3text = r3 ? firewall_format_text(r3, 0) : NULL;
        CHECK_STR(r3text, "action=drop specialtarget=dns\n"
                          "action=accept proto=icmp\n"
                          "action=drop dst4=192.168.1.0/24 proto=tcp dstports=80-81\n"
                          "action=drop dst4=10.0.0.1/32\n"
                          "action=drop proto=tcp dstports=22-22\n"
                          "action=accept\n");

        /* versions */
        _cleanup_(firewall_freep) Firewall *bad = NULL;
        const char *v3 = "<firewall version=\"3\"><rules/></firewall>";
        CHECK(firewall_from_xml(v3, strlen(v3), &bad, &e) < 0 && e.code == QERR_VM_ERROR);
        _cleanup_free_ char *m = qerror_message(&e);
        CHECK_STR(m, "Unsupported firewall.xml version: 3");
        qerror_done(&e);
        const char *badrule = "<firewall version=\"2\"><rules><rule><properties><property name=\"action\">maybe"
                              "</property></properties></rule></rules></firewall>";
        CHECK(firewall_from_xml(badrule, strlen(badrule), &bad, &e) < 0);
        qerror_done(&e);
        CHECK(firewall_from_xml("<firewall", 9, &bad, &e) < 0 && e.code == QERR_VM_ERROR);
        qerror_done(&e);
}

static void test_files(void) {
        char dir[] = "/tmp/test-firewall-XXXXXX";
        _cleanup_free_ char *path = NULL, *data = NULL;
        _cleanup_(firewall_freep) Firewall *fw = NULL, *loaded = NULL;
        struct stat st;
        QError e = {};

        CHECK(mkdtemp(dir));
        CHECK(asprintf(&path, "%s/firewall.xml", dir) >= 0);
        /* no file: the default, nothing written */
        CHECK(firewall_load(path, &fw, &e) >= 0 && fw->n == 1 && streq(fw->rules[0].action, "accept"));
        CHECK(access(path, F_OK) < 0);
        CHECK(firewall_save(path, fw, 0, &e) >= 0);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0664);
        CHECK(read_file(path, &data, NULL) >= 0);
        CHECK_STR(data, "<firewall version=\"2\">\n  <rules>\n    <rule>\n      <properties>\n"
                        "        <property name=\"action\">accept</property>\n      </properties>\n    </rule>\n"
                        "  </rules>\n</firewall>\n");
        CHECK(firewall_load(path, &loaded, &e) >= 0 && firewall_equal(fw, loaded));
        /* a save that cannot happen says why */
        _cleanup_free_ char *nowhere = NULL;
        CHECK(asprintf(&nowhere, "%s/missing/firewall.xml", dir) >= 0);
        CHECK(firewall_save(nowhere, fw, 0, &e) < 0 && e.code == QERR_QUBES_EXCEPTION);
        _cleanup_free_ char *m = qerror_message(&e);
        CHECK_STR(m, "firewall save error: No such file or directory");
        qerror_done(&e);
        (void) unlink(path);
        (void) rmdir(dir);
}

static void test_pairs(void) {
        char *kv[] = { (char *) "proto",    (char *) "tcp",    (char *) "dst4",
                       (char *) "10.0.0.1", (char *) "action", (char *) "accept",
                       (char *) "dstports", (char *) "80-80",  NULL };
        FirewallRule r = { .icmptype = -1 };
        QError e = {};

        CHECK(firewall_rule_from_pairs(kv, &r, &e) >= 0);
        _cleanup_strv_free_ char **stored = firewall_rule_stored_pairs(&r);
        CHECK(stored && strv_length(stored) == 8);
        if (stored && strv_length(stored) == 8) {
                CHECK_STR(stored[0], "action");
                CHECK_STR(stored[2], "dsthost");
                CHECK_STR(stored[3], "10.0.0.1/32");
                CHECK_STR(stored[6], "dstports");
                CHECK_STR(stored[7], "80");
        }
        firewall_rule_done(&r);
        char *bad[] = { (char *) "action", (char *) "accept", (char *) "comment", (char *) "a\nb", NULL };
        CHECK(firewall_rule_from_pairs(bad, &r, &e) < 0 && e.code == QERR_VALUE);
        qerror_done(&e);
}

int main(void) {
        test_accepted();
        test_refused();
        test_xml();
        test_files();
        test_pairs();
        if (failures) {
                fprintf(stderr, "%u check(s) failed\n", failures);
                return 1;
        }
        printf("test-firewall: all checks passed\n");
        return 0;
}
