/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A qube's firewall as a libvirt network filter (docs/daemon.md, "Firewall"). On Qubes the netvm
 * enforces the rules (QubesDB, spec/firewall.md §7); on this host libvirt's nwfilter driver does:
 * one filter per qube, the rules in order (first match wins), then a drop of everything else. */
#include "firewall-vmm.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include "model/firewall.h"
#include "vmm.h"

#include "util/log.h"
#include "util/strbuf.h"

/* The virtual DNS servers every Qubes qube is given (specialtarget=dns). */
static const char *const qubes_dns4[] = { "10.139.1.1", "10.139.1.2" };

/* The outgoing traffic of a qube in one filter rule: a protocol element and its attributes. */
static void add_rule(StrBuf *b, const char *action, int family, const char *proto, const char *addr, unsigned prefix,
                     const FirewallRule *r, bool dns_port) {
        const char *el;

        if (family == AF_INET6)
                el = !proto                 ? "all-ipv6"
                     : streq(proto, "icmp") ? "icmpv6"
                     : streq(proto, "tcp")  ? "tcp-ipv6"
                                            : "udp-ipv6";
        else
                el = !proto ? "all" : proto; /* tcp, udp, icmp */
        strbuf_printf(b, "  <rule action='%s' direction='out' priority='500'>\n    <%s", action, el);
        if (addr)
                strbuf_printf(b, " dstipaddr='%s' dstipmask='%u'", addr, prefix);
        if (proto && !streq(proto, "icmp")) {
                if (r->has_ports)
                        strbuf_printf(b, " dstportstart='%u' dstportend='%u'", r->port_low, r->port_high);
                else if (dns_port)
                        strbuf_append(b, " dstportstart='53' dstportend='53'");
        }
        if (proto && streq(proto, "icmp") && r->icmptype >= 0)
                strbuf_printf(b, " type='%d'", r->icmptype);
        strbuf_append(b, "/>\n  </rule>\n");
}

/* One rule for each family and protocol it covers. */
static void add_rule_for(StrBuf *b, const FirewallRule *r, int family, const char *addr, unsigned prefix) {
        bool dns = r->specialtarget != NULL;
        if (dns && !r->proto) {
                /* DNS is udp and tcp to port 53 */
                add_rule(b, r->action, family, "udp", addr, prefix, r, true);
                add_rule(b, r->action, family, "tcp", addr, prefix, r, true);
        } else
                add_rule(b, r->action, family, r->proto, addr, prefix, r, dns);
}

/* dsthost as given: an address and a prefix length ("10.0.0.0/8") */
static int split_net(const char *net, char **ret_addr, unsigned *ret_prefix) {
        const char *slash = strchr(net, '/');
        if (!slash)
                return -EINVAL;
        *ret_addr = strndup(net, (size_t) (slash - net));
        *ret_prefix = (unsigned) strtoul(slash + 1, NULL, 10);
        return *ret_addr ? 0 : -ENOMEM;
}

/* The filter's XML. A rule for a DNS name is made for each address the name has now (resolved
 * here, on a worker); a name that does not resolve gives no rule. */
static char *filter_xml(const char *filter, const char *uuid, const Firewall *fw) {
        _cleanup_strbuf_ StrBuf b = {};

        strbuf_printf(&b, "<filter name='%s' chain='root'>\n", filter);
        if (uuid && *uuid)
                strbuf_printf(&b, "  <uuid>%s</uuid>\n", uuid);
        for (size_t i = 0; i < fw->n; i++) {
                const FirewallRule *r = &fw->rules[i];
                if (r->dsthost && r->dsttype != FW_DST_NAME) {
                        _cleanup_free_ char *addr = NULL;
                        unsigned prefix = 0;
                        if (split_net(r->dsthost, &addr, &prefix) < 0)
                                continue;
                        add_rule_for(&b, r, r->dsttype == FW_DST_6 ? AF_INET6 : AF_INET, addr, prefix);
                } else if (r->dsthost) {
                        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
                        if (*r->dsthost && getaddrinfo(r->dsthost, NULL, &hints, &res) == 0) {
                                for (struct addrinfo *a = res; a; a = a->ai_next) {
                                        char text[INET6_ADDRSTRLEN];
                                        const void *src =
                                                a->ai_family == AF_INET6
                                                        ? (const void *) &((struct sockaddr_in6 *) a->ai_addr)
                                                                  ->sin6_addr
                                                        : (const void *) &((struct sockaddr_in *) a->ai_addr)->sin_addr;
                                        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
                                            inet_ntop(a->ai_family, src, text, sizeof text))
                                                add_rule_for(&b, r, a->ai_family, text,
                                                             a->ai_family == AF_INET6 ? 128 : 32);
                                }
                                freeaddrinfo(res);
                        } else
                                strbuf_printf(&b, "  <!-- rule %zu: %s does not resolve -->\n", i, r->dsthost);
                } else if (r->specialtarget) {
                        for (size_t k = 0; k < ELEMENTSOF(qubes_dns4); k++)
                                add_rule_for(&b, r, AF_INET, qubes_dns4[k], 32);
                } else {
                        add_rule_for(&b, r, AF_INET, NULL, 0);
                        add_rule_for(&b, r, AF_INET6, NULL, 0);
                }
        }
        /* what no rule accepted */
        strbuf_append(&b, "  <rule action='drop' direction='out' priority='1000'>\n    <all/>\n  </rule>\n");
        strbuf_append(&b, "  <rule action='drop' direction='out' priority='1000'>\n    <all-ipv6/>\n  </rule>\n");
        strbuf_append(&b, "</filter>\n");
        if (b.oom)
                return NULL;
        return strbuf_steal(&b);
}

char *firewall_vmm_filter_name(const char *qube) {
        char *s;
        if (asprintf(&s, "qubes-fw-%s", qube) < 0)
                return NULL;
        return s;
}

/* ---- the libvirt calls ----------------------------------------------------------------------- */

typedef struct FilterCall {
        char *qube, *filter, *uuid;
        Firewall *fw; /* a snapshot of the rules; NULL: undefine */
        bool no_connection;
        int error_code;
        char *error;
        struct FilterCall *next; /* the qube's next call, waiting for this one (submit()) */
} FilterCall;

static void filter_call_free(FilterCall *c) {
        if (!c)
                return;
        filter_call_free(c->next);
        free(c->qube);
        free(c->filter);
        free(c->uuid);
        firewall_free(c->fw);
        free(c->error);
        free(c);
}

static void filter_work(virConnectPtr conn, void *data) {
        FilterCall *c = data;
        virNWFilterPtr f;

        if (!conn) {
                c->no_connection = true;
                return;
        }
        if (!c->fw) {
                f = virNWFilterLookupByName(conn, c->filter);
                if (f) {
                        if (virNWFilterUndefine(f) < 0) {
                                c->error_code = vmm_last_error_code();
                                c->error = vmm_last_error();
                        }
                        virNWFilterFree(f);
                }
                return;
        }
        _cleanup_free_ char *xml = filter_xml(c->filter, c->uuid, c->fw);
        if (!xml) {
                c->error_code = VIR_ERR_NO_MEMORY;
                return;
        }
        f = virNWFilterDefineXML(conn, xml);
        if (!f) {
                c->error_code = vmm_last_error_code();
                c->error = vmm_last_error();
                return;
        }
        virNWFilterFree(f);
}

static int start_call(Manager *m, FilterCall *c);

static void filter_done(Manager *m, void *data) {
        FilterCall *c = data;
        FilterCall *next = TAKE_PTR(c->next);

        (void) hashmap_remove(m->filter_calls, c->qube);
        if (next && start_call(m, next) < 0) {
                log_qube_error(next->qube, "Cannot update the network filter: out of memory");
                filter_call_free(next);
        }
        if (c->no_connection)
                ; /* applied again once connected (firewall_vmm_resync) */
        else if (c->error_code == VIR_ERR_NO_SUPPORT) {
                if (m->firewall_nwfilter >= 0)
                        log_notice("The hypervisor connection (%s) has no network filters: firewall rules are kept and "
                                   "served, not enforced on this host",
                                   vmm_of(m) && vmm_of(m)->driver ? vmm_of(m)->driver : "libvirt");
                m->firewall_nwfilter = -1;
        } else if (c->error_code)
                log_qube_error(c->qube, "Cannot %s the network filter %s: %s", c->fw ? "define" : "undefine", c->filter,
                               strempty(c->error));
        else {
                m->firewall_nwfilter = 1;
                log_qube_debug(c->qube, "Network filter %s %s", c->filter, c->fw ? "defined" : "undefined");
        }
        filter_call_free(c);
}

/* In flight: the qube's entry in m->filter_calls until filter_done(). */
static int start_call(Manager *m, FilterCall *c) {
        if (!m->filter_calls && !(m->filter_calls = hashmap_new()))
                return -ENOMEM;
        if (hashmap_put(m->filter_calls, c->qube, c) < 0)
                return -ENOMEM;
        if (vmm_submit(m, filter_work, filter_done, c) < 0) {
                (void) hashmap_remove(m->filter_calls, c->qube);
                return -ENOMEM;
        }
        return 0;
}

/* One call per qube at a time: two calls for one qube on two workers could reach libvirtd in
 * either order and leave the older rules in force (two SetRules in a row, or a resync beside a
 * SetRules). A call made while one for the same qube is in flight waits as its next; a newer one
 * replaces it, since only the latest rules matter. */
static void submit(Manager *m, const char *qube, const char *uuid, const Firewall *fw) {
        FilterCall *c, *busy;

        if (m->firewall_nwfilter < 0 || !vmm_of(m))
                return; /* said once: this connection has no filters */
        c = new0(FilterCall, 1);
        if (!c)
                goto oom;
        c->qube = strdup(qube);
        c->filter = firewall_vmm_filter_name(qube);
        c->uuid = uuid ? strdup(uuid) : NULL;
        if (fw)
                c->fw = firewall_copy(fw);
        if (!c->qube || !c->filter || (uuid && !c->uuid) || (fw && !c->fw))
                goto oom;
        busy = m->filter_calls ? hashmap_get(m->filter_calls, qube) : NULL;
        if (busy) {
                filter_call_free(busy->next);
                busy->next = c;
                return;
        }
        if (start_call(m, c) < 0)
                goto oom;
        return;
oom:
        filter_call_free(c);
        log_qube_error(qube, "Cannot update the network filter: out of memory");
}

void firewall_vmm_apply(Manager *m, Domain *d) {
        if (d->klass == QUBES_CLASS_ADMINVM || !d->firewall)
                return;
        submit(m, d->name, d->uuid, d->firewall);
}

void firewall_vmm_forget(Manager *m, const char *name) {
        submit(m, name, NULL, NULL);
}

void firewall_vmm_resync(Manager *m) {
        size_t i = 0;
        void *v;

        m->firewall_nwfilter = 0; /* a new connection: perhaps another driver */
        while (hashmap_iterate(m->app->domains, &i, NULL, &v))
                firewall_vmm_apply(m, v);
}
