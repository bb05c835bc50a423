/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "model/system-info.h"

#include "model/model.h"
#include "util/strbuf.h"

/* The system information document the qrexec policy engine evaluates requests against
 * (spec qrexec-policy.md §3, admin-api.md 2.5 internal.GetSystemInfo): Python's json.dumps
 * layout with its default separators, keys in upstream's order. */

static void json_string(StrBuf *b, const char *s) {
        strbuf_append_c(b, '"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                switch (*p) {
                case '"':
                        strbuf_append(b, "\\\"");
                        break;
                case '\\':
                        strbuf_append(b, "\\\\");
                        break;
                case '\n':
                        strbuf_append(b, "\\n");
                        break;
                case '\r':
                        strbuf_append(b, "\\r");
                        break;
                case '\t':
                        strbuf_append(b, "\\t");
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                strbuf_printf(b, "\\u%04x", *p);
                        else
                                strbuf_append_c(b, (char) *p);
                }
        }
        strbuf_append_c(b, '"');
}

static void json_string_or_null(StrBuf *b, const char *s) {
        if (s)
                json_string(b, s);
        else
                strbuf_append(b, "null");
}

static void domain_entry(StrBuf *b, Domain *d) {
        _cleanup_free_ const char **tags = domain_tags_sorted(d);
        _cleanup_free_ char *default_dispvm = domain_property_string(d, "default_dispvm");
        _cleanup_free_ char *icon = domain_property_string(d, "icon");
        _cleanup_free_ char *label = domain_property_string(d, "label");
        _cleanup_free_ char *guivm = domain_property_string(d, "guivm");
        _cleanup_free_ char *relayvm = domain_property_string(d, "relayvm");
        _cleanup_free_ char *transport_rpc = domain_property_string(d, "transport_rpc");
        Label *l = label ? app_find_label(d->app, label) : NULL;
        bool running = d->klass == QUBES_CLASS_ADMINVM || d->klass == QUBES_CLASS_REMOTEVM;

        json_string(b, d->name);
        strbuf_append(b, ": {\"internal\": ");
        json_string_or_null(b, domain_feature_get(d, "internal"));
        strbuf_append(b, ", \"tags\": [");
        for (const char **t = tags; t && *t; t++) {
                if (t != tags)
                        strbuf_append(b, ", ");
                json_string(b, *t);
        }
        strbuf_append(b, "], \"type\": ");
        json_string(b, qubes_class_to_string(d->klass));
        strbuf_printf(b, ", \"template_for_dispvms\": %s, \"default_dispvm\": ",
                      domain_property_bool(d, "template_for_dispvms") ? "true" : "false");
        json_string_or_null(b, default_dispvm);
        strbuf_append(b, ", \"icon\": ");
        json_string_or_null(b, icon);
        strbuf_append(b, ", \"label\": ");
        json_string_or_null(b, l ? l->color : NULL);
        strbuf_append(b, ", \"guivm\": ");
        json_string_or_null(b, guivm);
        strbuf_append(b, ", \"relayvm\": ");
        json_string_or_null(b, relayvm);
        strbuf_append(b, ", \"transport_rpc\": ");
        json_string_or_null(b, transport_rpc);
        strbuf_append(b, ", \"power_state\": ");
        json_string(b, running ? "Running" : strempty(d->power_state));
        strbuf_append(b, ", \"uuid\": ");
        json_string(b, d->uuid);
        strbuf_append_c(b, '}');
}

char *app_system_info_json(App *app) {
        _cleanup_strbuf_ StrBuf b = {};
        _cleanup_free_ Domain **list = app_domains_sorted(app, NULL);

        if (!list)
                return NULL;
        strbuf_append(&b, "{\"domains\": {");
        for (Domain **d = list; *d; d++) {
                if (d != list)
                        strbuf_append(&b, ", ");
                domain_entry(&b, *d);
        }
        strbuf_append(&b, "}}");
        return strbuf_steal(&b);
}
