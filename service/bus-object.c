/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-object.h"

#include <errno.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/macros.h"

void bus_vtable_cache_done(BusVtableCache *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->entries[i].vtable);
        c->entries = mfree(c->entries);
        c->n = 0;
}

const sd_bus_vtable *bus_vtable_get(const BusVtable *v, BusVtableCache *cache) {
        if (v->vtable)
                return v->vtable;
        for (size_t i = 0; i < cache->n; i++)
                if (cache->entries[i].build == v->build)
                        return cache->entries[i].vtable;
        typeof(cache->entries) e = realloc(cache->entries, sizeof(*e) * (cache->n + 1));
        if (!e)
                return NULL;
        cache->entries = e;
        sd_bus_vtable *built = v->build();
        if (!built)
                return NULL;
        e[cache->n].build = v->build;
        e[cache->n].vtable = built;
        cache->n++;
        return built;
}

int bus_add_implementation(sd_bus *bus, const BusObjectImplementation *impl, void *userdata, BusVtableCache *cache) {
        int r;

        for (const BusVtable *v = impl->vtables; v && (v->vtable || v->build); v++) {
                const sd_bus_vtable *vt = bus_vtable_get(v, cache);
                if (!vt)
                        return log_oom();
                r = sd_bus_add_object_vtable(bus, NULL, impl->path, impl->interface, vt, userdata);
                if (r < 0)
                        return log_error_errno(r, "Failed to register %s on %s: %m", impl->interface, impl->path);
        }
        for (const BusVtable *v = impl->fallback_vtables; v && (v->vtable || v->build); v++) {
                const sd_bus_vtable *vt = bus_vtable_get(v, cache);
                if (!vt)
                        return log_oom();
                r = sd_bus_add_fallback_vtable(bus, NULL, impl->path, impl->interface, vt, v->find, userdata);
                if (r < 0)
                        return log_error_errno(r, "Failed to register %s below %s: %m", impl->interface, impl->path);
        }
        if (impl->node_enumerator) {
                r = sd_bus_add_node_enumerator(bus, NULL, impl->path, impl->node_enumerator, userdata);
                if (r < 0)
                        return log_error_errno(r, "Failed to register the objects below %s: %m", impl->path);
        }
        if (impl->callback) {
                r = sd_bus_add_object(bus, NULL, impl->path, impl->callback, userdata);
                if (r < 0)
                        return log_error_errno(r, "Failed to register the methods of %s: %m", impl->path);
        }
        if (impl->fallback_callback) {
                r = sd_bus_add_fallback(bus, NULL, impl->path, impl->fallback_callback, userdata);
                if (r < 0)
                        return log_error_errno(r, "Failed to register the methods below %s: %m", impl->path);
        }
        if (impl->manager) {
                r = sd_bus_add_object_manager(bus, NULL, impl->path);
                if (r < 0)
                        return log_error_errno(r, "Failed to register the object manager at %s: %m", impl->path);
        }
        for (size_t i = 0; impl->children && impl->children[i]; i++) {
                r = bus_add_implementation(bus, impl->children[i], userdata, cache);
                if (r < 0)
                        return r;
        }
        return 0;
}
