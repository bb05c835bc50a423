/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "model/system-info.h"

#include <jansson.h>

#include "model/model.h"

/* The system information document the qrexec policy engine evaluates requests against
 * (spec qrexec-policy.md §3, admin-api.md 2.5 internal.GetSystemInfo), as upstream's
 * json.dumps() writes it: keys in upstream's order, ", " and ": " as separators (Jansson's
 * default layout), non-ASCII escaped. */

/* Each setter steals the new value; a NULL value (out of memory, or a string that is not
 * UTF-8) makes the whole document fail. */
static bool set_string_or_null(json_t *o, const char *key, const char *s) {
        return json_object_set_new(o, key, s ? json_string(s) : json_null()) == 0;
}

static json_t *domain_entry(Domain *d) {
        _cleanup_(json_decrefp) json_t *o = json_object(), *tags = json_array();
        _cleanup_free_ const char **tag_list = domain_tags_sorted(d);
        _cleanup_free_ char *default_dispvm = domain_property_string(d, "default_dispvm");
        _cleanup_free_ char *icon = domain_property_string(d, "icon");
        _cleanup_free_ char *label = domain_property_string(d, "label");
        _cleanup_free_ char *guivm = domain_property_string(d, "guivm");
        _cleanup_free_ char *relayvm = domain_property_string(d, "relayvm");
        _cleanup_free_ char *transport_rpc = domain_property_string(d, "transport_rpc");
        Label *l = label ? app_find_label(d->app, label) : NULL;
        bool running = d->klass == QUBES_CLASS_ADMINVM || d->klass == QUBES_CLASS_REMOTEVM;

        if (!o || !tags || !tag_list)
                return NULL;
        for (const char **t = tag_list; *t; t++)
                if (json_array_append_new(tags, json_string(*t)) < 0)
                        return NULL;
        if (!set_string_or_null(o, "internal", domain_feature_get(d, "internal")) ||
            json_object_set_new(o, "tags", TAKE_PTR(tags)) < 0 ||
            !set_string_or_null(o, "type", qubes_class_to_string(d->klass)) ||
            json_object_set_new(o, "template_for_dispvms",
                                json_boolean(domain_property_bool(d, "template_for_dispvms"))) < 0 ||
            !set_string_or_null(o, "default_dispvm", default_dispvm) || !set_string_or_null(o, "icon", icon) ||
            !set_string_or_null(o, "label", l ? l->color : NULL) || !set_string_or_null(o, "guivm", guivm) ||
            !set_string_or_null(o, "relayvm", relayvm) || !set_string_or_null(o, "transport_rpc", transport_rpc) ||
            !set_string_or_null(o, "power_state", running ? "Running" : strempty(d->power_state)) ||
            !set_string_or_null(o, "uuid", strempty(d->uuid)))
                return NULL;
        return TAKE_PTR(o);
}

char *app_system_info_json(App *app) {
        _cleanup_free_ Domain **list = app_domains_sorted(app, NULL);
        _cleanup_(json_decrefp) json_t *root = json_object(), *domains = json_object();

        if (!list || !root || !domains)
                return NULL;
        for (Domain **d = list; *d; d++)
                if (json_object_set_new(domains, (*d)->name, domain_entry(*d)) < 0)
                        return NULL;
        if (json_object_set_new(root, "domains", TAKE_PTR(domains)) < 0)
                return NULL;
        return json_dumps(root, JSON_ENSURE_ASCII);
}
