/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* model/firewall.c on hostile input: the whole admin.vm.firewall.Set payload (ASCII check, line
 * split, every line's grammar) and the same bytes as a firewall.xml. Whatever parses must come
 * back the same through each written form: the Get text parses to the same rules, the XML
 * document loads to the same rules, and the stored pairs (D-Bus) build the same rules. Nothing
 * may crash or leak. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "model/firewall.h"
#include "util/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trips(const Firewall *fw) {
        _cleanup_free_ char *text = firewall_format_text(fw, 0), *xml = firewall_to_xml(fw, 0);
        _cleanup_(firewall_freep) Firewall *from_text = NULL, *from_xml = NULL, *from_pairs = NULL;
        QError e = {};

        assert(text && xml);
        if (fw->n > 0) {
                assert(firewall_parse_text(text, strlen(text), &from_text, &e) >= 0);
                assert(firewall_equal(fw, from_text));
        }
        assert(firewall_from_xml(xml, strlen(xml), &from_xml, &e) >= 0);
        assert(firewall_equal(fw, from_xml));
        from_pairs = calloc(1, sizeof *from_pairs);
        assert(from_pairs);
        for (size_t i = 0; i < fw->n; i++) {
                _cleanup_strv_free_ char **kv = firewall_rule_stored_pairs(&fw->rules[i]);
                FirewallRule r = { .icmptype = -1 };
                assert(kv && firewall_rule_from_pairs(kv, &r, &e) >= 0);
                assert(firewall_append(from_pairs, &r) >= 0);
        }
        assert(firewall_equal(fw, from_pairs));
        qerror_done(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(firewall_freep) Firewall *fw = NULL, *doc = NULL;
        QError e = {};

        if (firewall_parse_text((const char *) data, size, &fw, &e) >= 0)
                round_trips(fw);
        qerror_done(&e);
        if (firewall_from_xml((const char *) data, size, &doc, &e) >= 0)
                round_trips(doc);
        qerror_done(&e);
        return 0;
}
