/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Devices in the model (service/devices/): assignments with upstream's checks, messages and
 * events, their qubes.xml form and round trips, the registry's view of what appears and goes,
 * and the discovery of this machine's own PCI and block devices through sd-device. */
#include <dirent.h>
#include <sys/stat.h>

#include "config.h"
#include "devices/devices.h"
#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/strv.h"

static int failures;

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

#define CHECK_STREQ(a, b)                                                                               \
        do {                                                                                            \
                const char *_a = (a), *_b = (b);                                                        \
                if (!streq_ptr(_a, _b)) {                                                               \
                        fprintf(stderr, "%s:%d: %s: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a, \
                                _a ? _a : "(null)", _b ? _b : "(null)");                                \
                        failures++;                                                                     \
                }                                                                                       \
        } while (0)

#define ASSERT(cond)                                                                                 \
        do {                                                                                         \
                if (!(cond)) {                                                                       \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
                        exit(EXIT_FAILURE);                                                          \
                }                                                                                    \
        } while (0)

static char tmpdir[] = "/tmp/test-devices.XXXXXX";
static char **events;

static void on_event(App *app, Domain *subject, const char *event, const char *const *kv, size_t n_kv, void *userdata) {
        _cleanup_strbuf_ StrBuf b = {};
        strbuf_printf(&b, "%s|%s", subject ? subject->name : "", event);
        for (size_t i = 0; i + 1 < n_kv; i += 2)
                strbuf_printf(&b, "|%s=%s", kv[i], kv[i + 1] ?: "None");
        strv_consume(&events, strbuf_steal(&b));
}

static char *joined_events(void) {
        _cleanup_strbuf_ StrBuf b = {};
        STRV_FOREACH(e, events) {
                strbuf_append(&b, *e);
                strbuf_append_c(&b, '\n');
        }
        events = strv_free(events);
        return b.buf ? strbuf_steal(&b) : strdup("");
}

static const char *message(QError *e) {
        static char buf[512];
        _cleanup_free_ char *m = qerror_message(e);
        snprintf(buf, sizeof buf, "%s", m ?: "");
        qerror_done(e);
        return buf;
}

static App *load_fixture(void) {
        App *app = NULL;
        _cleanup_free_ char *data = NULL;
        _cleanup_qerror_ QError e = {};
        ASSERT(read_file(QUBES_SOURCE_DIR "/tests/data/example-qubes.xml", &data, NULL) >= 0);
        ASSERT(app_new(tmpdir, &app) >= 0);
        ASSERT(app_load_from_memory(app, data, strlen(data), "qubes.xml", &e) >= 0);
        ASSERT(app_add_listener(app, on_event, NULL) >= 0);
        return app;
}

static void test_assign(void) {
        _cleanup_app_free_ App *app = load_fixture();
        Domain *work = app_get_domain(app, "work");
        QError e = {};
        char *opts[] = { (char *) "read-only", (char *) "yes", NULL };
        ASSERT(work);

        /* manual cannot be stored */
        CHECK(domain_device_assign(work, "block", "dom0", "loop0", ":0", "manual", NULL, true, &e) < 0);
        CHECK(e.code == QERR_VALUE);
        CHECK_STREQ(message(&e), "Only auto-attachable devices can be assigned.");

        CHECK(domain_device_assign(work, "block", "dom0", "loop0", ":0", "auto-attach", opts, true, &e) == 0);
        domain_device_assign_commit(work);
        _cleanup_free_ char *ev = joined_events();
        CHECK_STREQ(ev, "work|device-pre-assign:block|device=dom0:loop0::0|options={'read-only': 'yes'}\n"
                        "work|device-assign:block|device=dom0:loop0::0|options={'read-only': 'yes'}\n");
        CHECK(work->n_devices == 1 && strv_contains(work->device_classes, "block"));

        /* the same again: a KeyError subclass, its message in quotes */
        CHECK(domain_device_assign(work, "block", "dom0", "loop0", ":0", "required", NULL, true, &e) < 0);
        CHECK(e.code == QERR_DEVICE_ALREADY_ASSIGNED);
        CHECK_STREQ(message(&e), "'block device dom0:loop0::0 already assigned to work'");
        /* another identity on the same port, and any device on it, coexist */
        CHECK(domain_device_assign(work, "block", "dom0", "loop0", "*", "ask-to-attach", NULL, false, &e) == 0);
        CHECK(work->devices[1].no_frontend);
        events = strv_free(events);

        /* Set.assignment */
        char *old = NULL;
        CHECK(domain_device_set_mode(work, "block", "dom0", "loop9", ":9", "required", &old, &e) < 0);
        CHECK(e.code == QERR_VALUE);
        CHECK_STREQ(message(&e), "Device dom0:loop9::9 not assigned to work");
        CHECK(domain_device_set_mode(work, "block", "dom0", "loop0", ":0", "auto-attach", &old, &e) == 0 && !old);
        _cleanup_free_ char *none = joined_events();
        CHECK_STREQ(none, "");
        CHECK(domain_device_set_mode(work, "block", "dom0", "loop0", ":0", "required", &old, &e) == 0);
        CHECK_STREQ(old, "auto-attach");
        free(old);
        domain_device_set_mode_commit(work, "block", "dom0", "loop0", ":0");
        _cleanup_free_ char *ev2 = joined_events();
        CHECK_STREQ(ev2, "work|device-pre-assign:block|device=dom0:loop0::0|options={'read-only': 'yes'}\n"
                         "work|device-assignment-changed:block|device=dom0:loop0::0\n");

        /* Unassign: '*' matches only '*' */
        DeviceAssignment taken = {};
        size_t idx;
        CHECK(domain_device_unassign(work, "block", "dom0", "loop0", ":1", &taken, &idx, &e) < 0);
        CHECK(e.code == QERR_DEVICE_NOT_ASSIGNED);
        CHECK_STREQ(message(&e), "'block device dom0:loop0::1 not assigned to work'");
        CHECK(domain_device_unassign(work, "block", "dom0", "loop0", "*", &taken, &idx, &e) == 0 && idx == 1);
        /* a failed save puts it back where it was */
        domain_device_restore(work, &taken, idx);
        CHECK(work->n_devices == 2 && streq(work->devices[1].identity, "*"));
        CHECK(domain_device_unassign(work, "block", "dom0", "loop0", "*", &taken, &idx, &e) == 0);
        domain_device_unassign_commit(work, &taken);
        _cleanup_free_ char *ev3 = joined_events();
        CHECK_STREQ(ev3, "work|device-unassign:block|device=dom0:loop0:*\n");

        /* qubes.xml: the classes in the order they were first used, each assignment as upstream
         * lays it out */
        _cleanup_free_ char *xml = app_to_xml(app);
        ASSERT(xml);
        CHECK(strstr(xml, "      <devices class=\"block\">\n"
                          "        <device backend-domain=\"dom0\" id=\"loop0\" mode=\"required\" identity=\":0\">\n"
                          "          <option name=\"read-only\">yes</option>\n"
                          "        </device>\n"
                          "      </devices>\n"
                          "      <volume-config>\n"));

        /* PCI: a qube explicitly in pvh mode cannot have one */
        CHECK(domain_property_set(work, "virt_mode", "pvh", 3, &e) == 0);
        CHECK(domain_device_assign(work, "pci", "dom0", "00_03.0", "*", "required", NULL, true, &e) < 0);
        CHECK_STREQ(message(&e), "Can't assign PCI device to VM in pvh mode");
        CHECK(domain_property_reset(work, "virt_mode", &e) == 0);
        CHECK(domain_device_assign(work, "pci", "dom0", "00_03.0", "*", "required", NULL, true, &e) == 0);
        _cleanup_free_ char *vm = domain_property_string(work, "virt_mode");
        CHECK_STREQ(vm, "hvm");
        events = strv_free(events);
}

static void test_denied(void) {
        _cleanup_app_free_ App *app = load_fixture();
        Domain *work = app_get_domain(app, "work");
        QError e = {};
        char *add[] = { (char *) "u030101", (char *) "b******", NULL };
        char *more[] = { (char *) "u030101", NULL };
        char *bad[] = { (char *) "U030101", NULL };

        CHECK(domain_devices_deny(work, add, &e) == 1);
        _cleanup_free_ char *v = domain_property_string(work, "devices_denied");
        CHECK_STREQ(v, "b******u030101");
        CHECK(domain_devices_deny(work, more, &e) == 0); /* nothing changes */
        CHECK(domain_devices_deny(work, bad, &e) < 0 && e.code == QERR_PROPERTY_VALUE);
        CHECK_STREQ(message(&e), DEVICE_DENIED_FORMAT_ERROR);
        CHECK(domain_devices_allow(work, more, false, &e) == 1);
        _cleanup_free_ char *v2 = domain_property_string(work, "devices_denied");
        CHECK_STREQ(v2, "b******");
        CHECK(domain_devices_allow(work, NULL, true, &e) == 1);
        _cleanup_free_ char *v3 = domain_property_string(work, "devices_denied");
        CHECK_STREQ(v3, "");
        /* the property setter itself */
        CHECK(domain_property_set(work, "devices_denied", "u0301", 5, &e) < 0 && e.code == QERR_VALUE);
        CHECK_STREQ(message(&e), "Invalid length of interfaces='u0301' (is 5, expected multiple of 7)");
        events = strv_free(events);
}

static void test_xml_forms(void) {
        static const char *const head =
                "<qubes>\n  <labels>\n    <label id=\"label-1\" color=\"0xcc0000\">red</label>\n  </labels>\n"
                "  <pools/>\n  <properties/>\n  <domains>\n"
                "    <domain id=\"domain-0\" class=\"AdminVM\">\n      <properties>\n"
                "        <property name=\"label\">red</property>\n      </properties>\n"
                "      <features/>\n      <tags/>\n    </domain>\n"
                "    <domain id=\"domain-1\" class=\"StandaloneVM\">\n      <properties>\n"
                "        <property name=\"label\">red</property>\n        <property name=\"name\">sa</property>\n"
                "        <property name=\"qid\">1</property>\n"
                "        <property name=\"uuid\">11111111-2222-3333-4444-555555555555</property>\n"
                "      </properties>\n      <features/>\n      <tags/>\n";
        static const char *const tail = "      <volume-config/>\n    </domain>\n  </domains>\n</qubes>\n";
        /* legacy forms on the way in */
        const char *in = "      <devices class=\"pci\">"
                         "<device backend-domain=\"dom0\" id=\"00:03.0\" identity=\"1af4:1041::p020000\">"
                         "<option name=\"identity\">1af4:1041::p020000</option>"
                         "<option name=\"permissive\">True</option></device></devices>\n"
                         "      <devices class=\"block\"><device id=\"loop0\" mode=\"auto-attach\"/></devices>\n"
                         "      <devices class=\"usb\"/>\n";
        /* and what is written: indented as lxml pretty-prints a tree built from scratch */
        const char *out = "      <devices class=\"pci\">\n"
                          "        <device backend-domain=\"dom0\" id=\"00_03.0\" mode=\"required\" "
                          "identity=\"1af4:1041::p020000\">\n"
                          "          <option name=\"permissive\">True</option>\n"
                          "        </device>\n"
                          "      </devices>\n"
                          "      <devices class=\"block\">\n"
                          "        <device id=\"loop0\" mode=\"auto-attach\" identity=\"*\"/>\n"
                          "      </devices>\n"
                          "      <devices class=\"usb\"/>\n";
        _cleanup_free_ char *a = NULL, *b = NULL, *again = NULL;
        _cleanup_app_free_ App *app = NULL, *app2 = NULL;
        _cleanup_qerror_ QError e = {};

        ASSERT(asprintf(&a, "%s%s%s", head, in, tail) >= 0 && asprintf(&b, "%s%s%s", head, out, tail) >= 0);
        ASSERT(app_new(tmpdir, &app) >= 0);
        ASSERT(app_load_from_memory(app, a, strlen(a), "qubes.xml", &e) >= 0);
        Domain *sa = app_get_domain(app, "sa");
        ASSERT(sa && sa->n_devices == 2);
        CHECK(sa->devices[1].backend == NULL); /* any backend */
        _cleanup_free_ char *x = app_to_xml(app);
        CHECK_STREQ(x, b);
        /* and back, byte for byte */
        ASSERT(app_new(tmpdir, &app2) >= 0);
        ASSERT(app_load_from_memory(app2, x, strlen(x), "qubes.xml", &e) >= 0);
        again = app_to_xml(app2);
        CHECK_STREQ(again, x);
}

static DeviceInfo *dev(const char *port, const char *id) {
        DeviceInfo *i = device_info_new("block", "dom0", port);
        ASSERT(i);
        i->device_id = strdup(id);
        return i;
}

static void test_registry(void) {
        _cleanup_(device_registry_freep) DeviceRegistry *r = NULL;
        DeviceInfo *now[3];
        ASSERT(device_registry_new(&r) >= 0);

        now[0] = dev("loop0", ":0");
        now[1] = dev("sda", ":None");
        {
                _cleanup_(device_changes_done) DeviceChanges c = {};
                CHECK(device_registry_replace(r, "block", "dom0", now, 2, &c) == 0);
                CHECK(c.n_added == 2 && c.n_removed == 0 && c.n_changed == 0);
        }
        /* loop0 goes, sda changes, loop1 comes */
        now[0] = dev("sda", ":None");
        now[0]->size = 4096;
        now[1] = dev("loop1", ":1");
        {
                _cleanup_(device_changes_done) DeviceChanges c = {};
                CHECK(device_registry_replace(r, "block", "dom0", now, 2, &c) == 0);
                CHECK(c.n_added == 1 && streq(c.added[0]->port_id, "loop1"));
                CHECK(c.n_removed == 1 && streq(c.removed[0]->port_id, "loop0"));
                CHECK(c.n_changed == 1 && c.changed[0]->size == 4096);
        }
        CHECK(device_registry_get(r, "block", "dom0", "loop0") == NULL);
        _cleanup_free_ DeviceInfo **l = device_registry_list(r, "block", "dom0");
        CHECK(l && l[0] && l[1] && !l[2] && streq(l[0]->port_id, "loop1") && streq(l[1]->port_id, "sda"));

        /* Available items in the spec's order */
        DeviceInfo *sda = device_registry_get(r, "block", "dom0", "sda");
        sda->name = strdup("QEMU HARDDISK");
        sda->serial = strdup("unknown"); /* upstream's "unknown" is left out */
        free(sda->interfaces);
        sda->interfaces = strdup("b******");
        _cleanup_strv_free_ char **items = NULL;
        CHECK(device_info_items(sda, "work", &items) == 0);
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_qerror_ QError e = {};
        for (size_t i = 0; items[i]; i += 2)
                CHECK(device_append_item(&b, items[i], items[i + 1], &e) == 0);
        CHECK_STREQ(b.buf, "device_id=':None' port_id='sda' devclass='block' backend_domain='dom0' "
                           "name='QEMU HARDDISK' attachment='work' interfaces='b******'");
}

static void test_discover(void) {
        _cleanup_strv_free_ char **sbdfs = NULL;
        DeviceInfo **l = NULL;
        size_t n = 0;

        /* PCI: every device under /sys/bus/pci/devices, with a path port and upstream's id form */
        ASSERT(devices_discover("pci", &l, &n) == 0);
        DIR *dir = opendir("/sys/bus/pci/devices");
        size_t in_sysfs = 0;
        for (struct dirent *de; dir && (de = readdir(dir));)
                if (de->d_name[0] != '.')
                        in_sysfs++;
        if (dir)
                closedir(dir);
        CHECK(n == in_sysfs);
        for (size_t i = 0; i < n; i++) {
                DeviceInfo *d = l[i];
                unsigned bus, dv, fn, v, p, c;
                char tail;
                CHECK(sscanf(d->port_id, "%2x_%2x.%1x%c", &bus, &dv, &fn, &tail) == 3 || strchr(d->port_id, '-'));
                CHECK(sscanf(d->device_id, "%4x:%4x::p%6x%c", &v, &p, &c, &tail) == 3);
                CHECK(streq(d->interfaces, strrchr(d->device_id, ':') + 1));
                CHECK_STREQ(device_items_get(d->data, "sbdf"), d->sbdf);
                /* the path and the SBDF map onto each other on this host */
                _cleanup_free_ char *back = pci_path_to_sbdf(d->port_id);
                CHECK_STREQ(back, d->sbdf);
                if (access("/usr/share/misc/pci.ids", R_OK) == 0 && v == 0x8086)
                        CHECK_STREQ(d->vendor, "Intel Corporation");
        }
        device_info_array_free(l);

        /* an old BDF id in qubes.xml becomes a path; one not on this host the root-bus form */
        _cleanup_free_ char *legacy = pci_port_from_legacy("00:1f.6");
        CHECK_STREQ(legacy, "00_1f.6");
        CHECK(pci_port_from_legacy("00_1f.6") == NULL);
        CHECK(pci_port_from_legacy("00_1c.0-00_00.0") == NULL);

        /* block: whatever is listed can be attached (no mounted, swap or held device) */
        ASSERT(devices_discover("block", &l, &n) == 0);
        for (size_t i = 0; i < n; i++) {
                CHECK(l[i]->size > 0 && l[i]->devnode && streq(l[i]->interfaces, "b******"));
                CHECK(l[i]->device_id && l[i]->device_id[0] == ':');
        }
        device_info_array_free(l);
        devices_discover_done();
}

int main(void) {
        ASSERT(mkdtemp(tmpdir));
        test_assign();
        test_denied();
        test_xml_forms();
        test_registry();
        test_discover();
        (void) rmdir(tmpdir);
        if (failures) {
                fprintf(stderr, "%d checks failed\n", failures);
                return EXIT_FAILURE;
        }
        printf("ok\n");
        return EXIT_SUCCESS;
}
