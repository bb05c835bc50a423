/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of libqubes-policy's C API: the strict JSON system-info reader, the evaluation
 * API, and the admin.vm.List / admin.Events filters of spec/qrexec-policy.md §4. The language
 * itself is covered by vectors.txt through the tools. */

#include "policy/policy.h"

#include "util/macros.h"

static int failures;

#define check(expr)                                                                              \
        do {                                                                                     \
                if (!(expr)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

static void test_json(void) {
        static const char *const bad[] = {
                "",
                "{",
                "{\"domains\": {}} x",
                "{\"domains\": {\"a\": {\"type\": 1}}}",
                "{\"domains\": {\"a\": {\"type\": \"AppVM\", \"tags\": \"x\"}}}",
                "{\"domains\": {\"a\": {\"type\": \"AppVM\", \"tags\": [1]}}}",
                "{\"domains\": {\"a\": {\"type\": \"AppVM\", \"template_for_dispvms\": \"yes\"}}}",
                "{\"domains\": {\"a\": {}, \"a\": {}}}",
                "{\"domains\": []}",
                "{\"other\": {}}",
                "{\"domains\": {\"a\": {\"type\": \"App\\u0000VM\"}}}",
                "{\"domains\": {\"a\": {\"type\": \"\\ud800\"}}}",
                "{\"domains\": {\"a\": {\"type\": \"AppVM\",}}}",
                "{\"domains\": {\"a\": {\"type\": 'AppVM'}}}",
                "{\"domains\": {\"a\": {\"type\": \"AppVM\", \"uuid\": \"u\"}, \"b\": {\"uuid\": \"u\"}}}",
                "{\"domains\": {\"a\": {\"label\": 01}}}",
                "{\"domains\": {\"a\": {\"label\": \"\xff\"}}}",
                "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                QubesSystemInfo *si = NULL;
                char *error = NULL;
                int r = qubes_system_info_from_json(bad[i], strlen(bad[i]), &si, &error);
                if (r != -EINVAL)
                        fprintf(stderr, "accepted bad document %zu: %s\n", i, bad[i]);
                check(r == -EINVAL);
                check(error != NULL);
                check(si == NULL);
                free(error);
        }

        const char *good =
                " {\"domains\": {\"d\\u00e9j\\u00e0\": {\"type\": \"AppVM\", \"tags\": [\"a\", \"b\"],"
                " \"internal\": \"1\", \"default_dispvm\": null, \"uuid\": \"x-y\", \"extra\": [1, 2.5e3, true, {}],"
                " \"template_for_dispvms\": true, \"power_state\": \"Running\"}}} \n";
        QubesSystemInfo *si = NULL;
        check(qubes_system_info_from_json(good, strlen(good), &si, NULL) == 0);
        const QubesDomain *d = qubes_system_info_lookup(si, "d\xc3\xa9j\xc3\xa0");
        check(d != NULL);
        check(d && d == qubes_system_info_lookup(si, "uuid:x-y"));
        check(d && d->internal && d->template_for_dispvms && !d->default_dispvm);
        check(d && d->tags && streq(d->tags[1], "b"));
        check(qubes_system_info_size(si) == 1);
        qubes_system_info_free(si);
}

static QubesSystemInfo *load_fixture(const char *name) {
        char path[4096];
        QubesSystemInfo *si = NULL;
        char *error = NULL;

        snprintf(path, sizeof path, "%s/%s", POLICY_TEST_DIR, name);
        if (qubes_system_info_load_file(path, &si, &error) < 0) {
                fprintf(stderr, "cannot load %s: %s\n", path, strempty(error));
                exit(1);
        }
        return si;
}

static void test_evaluate_api(void) {
        QubesSystemInfo *si = load_fixture("system-info-upstream.json");
        QubesPolicy *p = NULL;
        QubesPolicyDecision *d = NULL;

        check(qubes_system_info_size(si) == 19);
        check(qubes_policy_load_string("svc +a test-vm1 @anyvm allow target=dom0 user=u\n"
                                       "svc * test-vm1 @anyvm ask default_target=test-vm2\n",
                                       "mem", NULL, &p) == 0);
        check(qubes_policy_n_rules(p) == 2);

        check(qubes_policy_evaluate(p, si, "test-vm1", "test-vm2", "svc", "+a", &d) == 0);
        check(d->result == QUBES_POLICY_ALLOW);
        check(streq_ptr(d->target, "dom0") && streq_ptr(d->requested_target, "test-vm2"));
        check(streq_ptr(d->user, "u") && d->autostart && !d->notify && d->rule_line == 1);
        d = qubes_policy_decision_free(d);

        check(qubes_policy_evaluate(p, si, "test-vm1", "test-vm2", "svc", NULL, &d) == 0);
        check(d->result == QUBES_POLICY_ASK);
        check(streq_ptr(d->default_target, "test-vm2") && d->targets && d->rule_line == 2);
        d = qubes_policy_decision_free(d);
        /* ask is not allow for the non-interactive check */
        check(!qubes_policy_check(p, si, "test-vm1", "test-vm2", "svc", "+"));
        check(qubes_policy_check(p, si, "test-vm1", "test-vm2", "svc", "+a"));
        /* no policy or no system info: deny, never crash */
        check(!qubes_policy_check(NULL, si, "test-vm1", "test-vm2", "svc", "+a"));
        check(!qubes_policy_check(p, NULL, "test-vm1", "test-vm2", "svc", "+a"));
        p = qubes_policy_free(p);

        char *service = NULL, *argument = NULL;
        check(qubes_policy_split_call("a.b+c+d", &service, &argument) == 0);
        check(streq(service, "a.b") && streq(argument, "+c+d"));
        free(service);
        free(argument);
        check(qubes_policy_split_call("a.b", &service, &argument) == 0);
        check(streq(service, "a.b") && streq(argument, "+"));
        free(service);
        free(argument);

        /* an error makes the whole policy deny, and says where */
        check(qubes_policy_load_string("* * @anyvm @anyvm allow\nsvc * @anyvm @anyvm allow x\n", "mem", NULL, &p) ==
              -EINVAL);
        check(!qubes_policy_is_valid(p));
        check(qubes_policy_errors(p)[0] && startswith(qubes_policy_errors(p)[0], "mem:2: "));
        check(!qubes_policy_check(p, si, "test-vm1", "test-vm2", "other", "+"));
        p = qubes_policy_free(p);
        qubes_system_info_free(si);
}

/* §4 / upstream test_002_vm_list_filter: a caller sees dom0 and itself. */
static void test_filters(void) {
        QubesSystemInfo *si = load_fixture("system-info-upstream.json");
        QubesPolicy *p = NULL;
        size_t seen = 0;

        check(qubes_policy_load_string("admin.vm.List * @anyvm @adminvm allow\n"
                                       "admin.vm.List * @anyvm test-vm1 allow\n"
                                       "admin.Events +domain-start @anyvm @tag:tag2 allow\n"
                                       "admin.Events +property-set_netvm test-vm1 test-vm1 allow\n"
                                       "admin.Events +domain-add test-vm1 @adminvm allow\n"
                                       "admin.Events +connection-established * * deny\n"
                                       "admin.Events * test-vm1 test-vm3 ask\n",
                                       "mem", NULL, &p) == 0);
        for (size_t i = 0; i < qubes_system_info_size(si); i++) {
                const QubesDomain *d = qubes_system_info_get(si, i);
                bool ok = qubes_policy_vm_list_allowed(p, si, "test-vm1", d->name, NULL);
                check(ok == (streq(d->name, "dom0") || streq(d->name, "test-vm1")));
                seen += ok;
        }
        check(seen == 2);
        check(qubes_policy_vm_list_allowed(p, si, "test-vm1", "test-vm1", "x"));
        check(!qubes_policy_vm_list_allowed(p, si, "test-vm2", "test-vm3", NULL));

        check(qubes_policy_event_allowed(p, si, "test-vm2", "domain-start", "test-vm1"));
        check(!qubes_policy_event_allowed(p, si, "test-vm2", "domain-start", "test-vm3"));
        check(qubes_policy_event_allowed(p, si, "test-vm1", "property-set:netvm", "test-vm1"));
        check(!qubes_policy_event_allowed(p, si, "test-vm2", "property-set:netvm", "test-vm1"));
        /* system events without a vm argument are checked against @adminvm */
        check(qubes_policy_event_allowed(p, si, "test-vm1", "domain-add", NULL));
        check(!qubes_policy_event_allowed(p, si, "test-vm2", "domain-add", NULL));
        /* ask never lets an event through */
        check(!qubes_policy_event_allowed(p, si, "test-vm1", "domain-shutdown", "test-vm3"));
        qubes_policy_free(p);
        qubes_system_info_free(si);
}

int main(void) {
        test_json();
        test_evaluate_api();
        test_filters();
        if (failures)
                fprintf(stderr, "%d checks failed\n", failures);
        else
                printf("all checks passed\n");
        return failures ? 1 : 0;
}
