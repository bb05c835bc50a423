/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The firewall rule grammar, its text and XML forms (spec/firewall.md §2-§5). */
#include "model/firewall.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/strv.h"

const char *const firewall_stored_keys[8] = {
        "action", "comment", "expire", "dsthost", "proto", "specialtarget", "dstports", "icmptype",
};

/* Python's datetime cannot hold a local time past the year 9999 */
#define EXPIRE_MAX INT64_C(253402300799)

void firewall_rule_done(FirewallRule *r) {
        if (!r)
                return;
        free(r->action);
        free(r->proto);
        free(r->dsthost);
        free(r->specialtarget);
        free(r->expire);
        free(r->comment);
        *r = (FirewallRule){ .icmptype = -1 };
}

Firewall *firewall_free(Firewall *fw) {
        if (!fw)
                return NULL;
        for (size_t i = 0; i < fw->n; i++)
                firewall_rule_done(&fw->rules[i]);
        free(fw->rules);
        free(fw);
        return NULL;
}

int firewall_append(Firewall *fw, FirewallRule *r) {
        FirewallRule *n = reallocarray(fw->rules, fw->n + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        fw->rules = n;
        fw->rules[fw->n++] = *r;
        *r = (FirewallRule){ .icmptype = -1 };
        return 0;
}

int firewall_new_default(Firewall **ret) {
        _cleanup_(firewall_freep) Firewall *fw = new0(Firewall, 1);
        FirewallRule r = { .icmptype = -1 };
        if (!fw)
                return -ENOMEM;
        r.action = strdup("accept");
        if (!r.action || firewall_append(fw, &r) < 0) {
                firewall_rule_done(&r);
                return -ENOMEM;
        }
        *ret = TAKE_PTR(fw);
        return 0;
}

static int dup_opt(char **dst, const char *src) {
        if (!src) {
                *dst = NULL;
                return 0;
        }
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

Firewall *firewall_copy(const Firewall *fw) {
        _cleanup_(firewall_freep) Firewall *c = new0(Firewall, 1);
        if (!c || !fw)
                return NULL;
        c->rules = new0(FirewallRule, fw->n ?: 1);
        if (!c->rules)
                return NULL;
        for (size_t i = 0; i < fw->n; i++) {
                const FirewallRule *s = &fw->rules[i];
                FirewallRule *d = &c->rules[i];
                *d = *s;
                d->action = d->proto = d->dsthost = d->specialtarget = d->expire = d->comment = NULL;
                c->n = i + 1;
                if (dup_opt(&d->action, s->action) < 0 || dup_opt(&d->proto, s->proto) < 0 ||
                    dup_opt(&d->dsthost, s->dsthost) < 0 || dup_opt(&d->specialtarget, s->specialtarget) < 0 ||
                    dup_opt(&d->expire, s->expire) < 0 || dup_opt(&d->comment, s->comment) < 0)
                        return NULL;
        }
        return TAKE_PTR(c);
}

bool firewall_equal(const Firewall *a, const Firewall *b) {
        if (!a || !b || a->n != b->n)
                return a == b;
        for (size_t i = 0; i < a->n; i++) {
                _cleanup_strv_free_ char **x = firewall_rule_stored_pairs(&a->rules[i]);
                _cleanup_strv_free_ char **y = firewall_rule_stored_pairs(&b->rules[i]);
                if (!x || !y || strv_length(x) != strv_length(y))
                        return false;
                for (size_t k = 0; x[k]; k++)
                        if (!streq(x[k], y[k]))
                                return false;
        }
        return true;
}

/* ---- one option ------------------------------------------------------------------------- */

static bool is_ascii_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool rule_charset_ok(const char *v) {
        for (; *v; v++)
                if (!is_ascii_alnum(*v) && !strchr(":;,./-_[]", *v))
                        return false;
        return true;
}

static bool comment_charset_ok(const char *v) {
        for (; *v; v++)
                if (!is_ascii_alnum(*v) && !strchr(" :;,./-_[]", *v))
                        return false;
        return true;
}

static bool all_digits(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

/* Decimal digits to a value, saturating at cap (Python's int() of long digit strings). */
static uint64_t digits_value(const char *s, uint64_t cap) {
        uint64_t v = 0;
        for (; *s; s++) {
                v = v * 10 + (uint64_t) (*s - '0');
                if (v > cap)
                        return cap + 1;
        }
        return v;
}

static int parse_choice(const char *v, const char *const *allowed, char **dst, QError *e) {
        if (!rule_charset_ok(v))
                return qerror_set(e, QERR_VALUE, "strange characters in rule");
        for (size_t i = 0; allowed[i]; i++)
                if (streq(v, allowed[i]))
                        return dup_opt(dst, v);
        return qerror_set(e, QERR_VALUE, "%s", v);
}

static bool is_ipv6(const char *s) {
        struct in6_addr a;
        return inet_pton(AF_INET6, s, &a) == 1;
}

static bool is_ipv4(const char *s) {
        struct in_addr a;
        return inet_pton(AF_INET, s, &a) == 1;
}

static int parse_dsthost(const char *v, FirewallRule *r, QError *e) {
        _cleanup_free_ char *value = NULL;
        const char *slash = strchr(v, '/');

        if (slash && strchr(slash + 1, '/'))
                return qerror_set(e, QERR_VALUE, "Too many /: %s", v);
        if (!slash) {
                if (is_ipv6(v)) {
                        r->dsttype = FW_DST_6;
                        if (asprintf(&value, "%s/128", v) < 0)
                                return -ENOMEM;
                } else if (is_ipv4(v)) {
                        r->dsttype = FW_DST_4;
                        if (asprintf(&value, "%s/32", v) < 0)
                                return -ENOMEM;
                } else {
                        for (const char *p = v; *p; p++)
                                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._", *p)))
                                        return qerror_set(e, QERR_VALUE, "Invalid hostname");
                        r->dsttype = FW_DST_NAME;
                        value = strdup(v);
                        if (!value)
                                return -ENOMEM;
                }
        } else {
                _cleanup_free_ char *host = strndup(v, (size_t) (slash - v));
                const char *prefix = slash + 1;
                if (!host)
                        return -ENOMEM;
                if (!all_digits(prefix))
                        return qerror_set(e, QERR_VALUE, "bad prefix length");
                uint64_t len = digits_value(prefix, 1000);
                if (is_ipv6(host)) {
                        if (len > 128)
                                return qerror_set(e, QERR_VALUE, "netmask for IPv6 must be <= 128");
                        r->dsttype = FW_DST_6;
                } else if (is_ipv4(host)) {
                        if (len > 32)
                                return qerror_set(e, QERR_VALUE, "netmask for IPv4 must be <= 32");
                        r->dsttype = FW_DST_4;
                } else
                        return qerror_set(e, QERR_VALUE, "Invalid IP address: %s", host);
                value = strdup(v);
                if (!value)
                        return -ENOMEM;
        }
        if (!rule_charset_ok(value))
                return qerror_set(e, QERR_VALUE, "strange characters in rule");
        r->dsthost = TAKE_PTR(value);
        return 0;
}

static int parse_port(const char *s, unsigned *ret, QError *e) {
        if (!all_digits(s))
                return qerror_set(e, QERR_VALUE, "invalid literal for int() with base 10: '%s'", s);
        uint64_t v = digits_value(s, 65535);
        if (v > 65535)
                return qerror_set(e, QERR_VALUE, "Ports out of range");
        *ret = (unsigned) v;
        return 0;
}

static int parse_dstports(const char *v, FirewallRule *r, QError *e) {
        const char *dash = strchr(v, '-');
        unsigned lo = 0, hi = 0; /* set by parse_port() on success; GCC -O3 cannot see it */
        int k;

        if (dash && strchr(dash + 1, '-'))
                return qerror_set(e, QERR_VALUE, "too many values to unpack (expected 2)");
        if (dash) {
                _cleanup_free_ char *a = strndup(v, (size_t) (dash - v));
                if (!a)
                        return -ENOMEM;
                k = parse_port(a, &lo, e);
                if (k < 0)
                        return k;
                k = parse_port(dash + 1, &hi, e);
                if (k < 0)
                        return k;
        } else {
                k = parse_port(v, &lo, e);
                if (k < 0)
                        return k;
                hi = lo;
        }
        if (lo > hi)
                return qerror_set(e, QERR_VALUE, "Invalid port range");
        r->has_ports = true;
        r->port_low = lo;
        r->port_high = hi;
        return 0;
}

static int parse_icmptype(const char *v, FirewallRule *r, QError *e) {
        if (strlen(v) > 3 || !all_digits(v))
                return qerror_set(e, QERR_VALUE, "bad ICMP type");
        uint64_t n = digits_value(v, 999);
        if (n > 255)
                return qerror_set(e, QERR_VALUE, "ICMP type out of range");
        r->icmptype = (int) n;
        return 0;
}

static int parse_expire(const char *v, FirewallRule *r, QError *e) {
        if (!rule_charset_ok(v))
                return qerror_set(e, QERR_VALUE, "strange characters in rule");
        if (!all_digits(v))
                return qerror_set(e, QERR_VALUE, "bad expiration time");
        uint64_t n = digits_value(v, (uint64_t) EXPIRE_MAX);
        if (n > (uint64_t) EXPIRE_MAX)
                return qerror_set(e, QERR_VALUE, "expiration time out of range");
        r->expire_at = (int64_t) n;
        return dup_opt(&r->expire, v);
}

static int parse_comment(const char *v, FirewallRule *r, QError *e) {
        if (!comment_charset_ok(v))
                return qerror_set(e, QERR_VALUE, "strange characters comment");
        return dup_opt(&r->comment, v);
}

static int parse_action(const char *v, FirewallRule *r, QError *e) {
        static const char *const actions[] = { "accept", "drop", NULL };
        return parse_choice(v, actions, &r->action, e);
}

static int parse_proto(const char *v, FirewallRule *r, QError *e) {
        static const char *const protos[] = { "tcp", "udp", "icmp", NULL };
        return parse_choice(v, protos, &r->proto, e);
}

static int parse_specialtarget(const char *v, FirewallRule *r, QError *e) {
        static const char *const targets[] = { "dns", NULL };
        return parse_choice(v, targets, &r->specialtarget, e);
}

static bool has_action(const FirewallRule *r) {
        return r->action;
}
static bool has_proto(const FirewallRule *r) {
        return r->proto;
}
static bool has_specialtarget(const FirewallRule *r) {
        return r->specialtarget;
}
static bool has_dsthost(const FirewallRule *r) {
        return r->dsthost;
}
static bool has_dstports(const FirewallRule *r) {
        return r->has_ports;
}
static bool has_icmptype(const FirewallRule *r) {
        return r->icmptype >= 0;
}
static bool has_expire(const FirewallRule *r) {
        return r->expire;
}
static bool has_comment(const FirewallRule *r) {
        return r->comment;
}

/* Every option of a rule: whether a rule has it already, and its parser (upstream's checks). */
static const struct {
        const char *key;
        bool (*is_set)(const FirewallRule *r);
        int (*parse)(const char *v, FirewallRule *r, QError *e);
} rule_options[] = {
        { "action", has_action, parse_action },
        { "proto", has_proto, parse_proto },
        { "specialtarget", has_specialtarget, parse_specialtarget },
        { "dsthost", has_dsthost, parse_dsthost },
        { "dstports", has_dstports, parse_dstports },
        { "icmptype", has_icmptype, parse_icmptype },
        { "expire", has_expire, parse_expire },
        { "comment", has_comment, parse_comment },
};

/* key is a stored key or an alias; "comment" only from the D-Bus form (the line grammar cuts it
 * off before). */
static int rule_set_option(FirewallRule *r, const char *key, const char *value, QError *e) {
        if (streq(key, "dst4") || streq(key, "dst6") || streq(key, "dstname"))
                key = "dsthost";
        for (size_t i = 0; i < ELEMENTSOF(rule_options); i++) {
                if (!streq(key, rule_options[i].key))
                        continue;
                if (rule_options[i].is_set(r))
                        return qerror_set(e, QERR_VALUE, "Option '%s' already set", key);
                return rule_options[i].parse(value, r, e);
        }
        return qerror_set(e, QERR_VALUE, "Unknown firewall option");
}

static int rule_check(const FirewallRule *r, QError *e) {
        if (!r->action)
                return qerror_set(e, QERR_VALUE, "Required property 'action' not set on firewall rule");
        if (r->has_ports && !(streq_ptr(r->proto, "tcp") || streq_ptr(r->proto, "udp")))
                return qerror_set(e, QERR_VALUE, "dstports valid only for 'tcp' and 'udp' protocols");
        if (r->icmptype >= 0 && !streq_ptr(r->proto, "icmp"))
                return qerror_set(e, QERR_VALUE, "icmptype valid only for 'icmp' protocol");
        return 0;
}

/* ---- the line grammar ----------------------------------------------------------------- */

/* Python's str.strip() whitespace, in ASCII */
static bool is_py_space(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

int firewall_rule_parse_line(const char *line, size_t len, FirewallRule *ret, QError *e) {
        _cleanup_free_ char *buf = malloc(len + 1);
        _cleanup_(firewall_rule_done) FirewallRule r = { .icmptype = -1 };
        char *cut, *start, *end, *p;
        int k;

        if (!buf)
                return -ENOMEM;
        /* a NUL is ASCII: it fails the character checks wherever it stands, as \x01 does */
        for (size_t i = 0; i < len; i++)
                buf[i] = line[i] ?: '\x01';
        buf[len] = 0;
        cut = strstr(buf, "comment=");
        if (cut) {
                *cut = 0;
                const char *comment = cut + strlen("comment=");
                if (!comment_charset_ok(comment))
                        return qerror_set(e, QERR_VALUE, "strange characters comment");
                if (*comment && dup_opt(&r.comment, comment) < 0)
                        return -ENOMEM;
        }
        start = buf;
        while (*start && is_py_space(*start))
                start++;
        end = start + strlen(start);
        while (end > start && is_py_space(end[-1]))
                end--;
        *end = 0;

        for (p = start;;) {
                char *sp = strchr(p, ' '), *eq;
                if (sp)
                        *sp = 0;
                eq = strchr(p, '=');
                if (!eq)
                        return qerror_set(e, QERR_VALUE, "Invalid firewall option (no '='): %s", p);
                *eq = 0;
                if (streq(p, "comment"))
                        return qerror_set(e, QERR_VALUE, "Option '%s' already set", p); /* unreachable */
                k = rule_set_option(&r, p, eq + 1, e);
                if (k < 0)
                        return k;
                if (!sp)
                        break;
                p = sp + 1;
        }
        k = rule_check(&r, e);
        if (k < 0)
                return k;
        *ret = r;
        r = (FirewallRule){ .icmptype = -1 };
        return 0;
}

/* Python's str.splitlines() separators */
static bool is_line_end(char c) {
        return c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\x1c' || c == '\x1d' || c == '\x1e';
}

int firewall_parse_text(const char *payload, size_t len, Firewall **ret, QError *e) {
        _cleanup_(firewall_freep) Firewall *fw = new0(Firewall, 1);
        const char *p = payload, *end = payload + len;
        int k;

        if (!fw)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) payload[i] >= 0x80)
                        return qerror_set(e, QERR_PROTOCOL, "Rules contains non-ASCII characters");
        if (len == 0)
                return qerror_set(e, QERR_PROTOCOL, "expected payload");
        if (len > FIREWALL_MAX_TEXT)
                return qerror_set(e, QERR_PROTOCOL, "Rules too long");
        while (p < end) {
                const char *q = p;
                FirewallRule r = { .icmptype = -1 };
                while (q < end && !is_line_end(*q))
                        q++;
                if (fw->n >= FIREWALL_MAX_RULES)
                        return qerror_set(e, QERR_VALUE, "Too many firewall rules");
                k = firewall_rule_parse_line(p, (size_t) (q - p), &r, e);
                if (k < 0)
                        return k;
                if (firewall_append(fw, &r) < 0) {
                        firewall_rule_done(&r);
                        return -ENOMEM;
                }
                if (q < end && *q == '\r' && q + 1 < end && q[1] == '\n')
                        q++;
                p = q < end ? q + 1 : q;
        }
        *ret = TAKE_PTR(fw);
        return 0;
}

int firewall_rule_from_pairs(char *const *kv, FirewallRule *ret, QError *e) {
        _cleanup_(firewall_rule_done) FirewallRule r = { .icmptype = -1 };
        int k;

        for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
                k = rule_set_option(&r, kv[i], kv[i + 1], e);
                if (k < 0)
                        return k;
        }
        k = rule_check(&r, e);
        if (k < 0)
                return k;
        *ret = r;
        r = (FirewallRule){ .icmptype = -1 };
        return 0;
}

/* ---- output forms ------------------------------------------------------------------------ */

static const char *dst_key(FirewallDstType t) {
        switch (t) {
        case FW_DST_4:
                return "dst4";
        case FW_DST_6:
                return "dst6";
        default:
                return "dsthost";
        }
}

char *firewall_rule_format_line(const FirewallRule *r) {
        _cleanup_strbuf_ StrBuf b = {};

        strbuf_append(&b, "action=");
        strbuf_append(&b, r->action);
        if (r->expire)
                strbuf_printf(&b, " expire=%s", r->expire);
        if (r->dsthost)
                strbuf_printf(&b, " %s=%s", dst_key(r->dsttype), r->dsthost);
        if (r->proto)
                strbuf_printf(&b, " proto=%s", r->proto);
        if (r->specialtarget)
                strbuf_printf(&b, " specialtarget=%s", r->specialtarget);
        if (r->has_ports)
                strbuf_printf(&b, " dstports=%u-%u", r->port_low, r->port_high);
        if (r->icmptype >= 0)
                strbuf_printf(&b, " icmptype=%d", r->icmptype);
        if (r->comment)
                strbuf_printf(&b, " comment=%s", r->comment);
        if (b.oom)
                return NULL;
        return strbuf_steal(&b);
}

bool firewall_rule_expired(const FirewallRule *r, int64_t now) {
        return r->expire && r->expire_at < now;
}

char *firewall_format_text(const Firewall *fw, int64_t now) {
        _cleanup_strbuf_ StrBuf b = {};

        strbuf_append(&b, "");
        for (size_t i = 0; i < fw->n; i++) {
                if (firewall_rule_expired(&fw->rules[i], now))
                        continue;
                _cleanup_free_ char *line = firewall_rule_format_line(&fw->rules[i]);
                if (!line)
                        return NULL;
                strbuf_append(&b, line);
                strbuf_append_c(&b, '\n');
        }
        if (b.oom)
                return NULL;
        return strbuf_steal(&b);
}

static char *ports_short(const FirewallRule *r) {
        char *s;
        if (r->port_low == r->port_high ? asprintf(&s, "%u", r->port_low) < 0
                                        : asprintf(&s, "%u-%u", r->port_low, r->port_high) < 0)
                return NULL;
        return s;
}

char **firewall_rule_stored_pairs(const FirewallRule *r) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *ports = r->has_ports ? ports_short(r) : NULL;
        char icmp[8];
        const char *values[8];

        if (r->has_ports && !ports)
                return NULL;
        snprintf(icmp, sizeof icmp, "%d", r->icmptype);
        values[0] = r->action;
        values[1] = r->comment;
        values[2] = r->expire;
        values[3] = r->dsthost;
        values[4] = r->proto;
        values[5] = r->specialtarget;
        values[6] = ports;
        values[7] = r->icmptype >= 0 ? icmp : NULL;
        l = new0(char *, 1);
        if (!l)
                return NULL;
        for (size_t i = 0; i < 8; i++) {
                if (!values[i])
                        continue;
                if (strv_extend(&l, firewall_stored_keys[i]) < 0 || strv_extend(&l, values[i]) < 0)
                        return NULL;
        }
        return TAKE_PTR(l);
}

size_t firewall_drop_expired(Firewall *fw, int64_t now) {
        size_t k = 0, dropped = 0;
        for (size_t i = 0; i < fw->n; i++) {
                if (firewall_rule_expired(&fw->rules[i], now)) {
                        firewall_rule_done(&fw->rules[i]);
                        dropped++;
                        continue;
                }
                fw->rules[k++] = fw->rules[i];
        }
        fw->n = k;
        return dropped;
}

int64_t firewall_next_expiry(const Firewall *fw, int64_t now) {
        int64_t best = 0;
        for (size_t i = 0; fw && i < fw->n; i++) {
                const FirewallRule *r = &fw->rules[i];
                if (!r->expire || firewall_rule_expired(r, now))
                        continue;
                if (best == 0 || r->expire_at < best)
                        best = r->expire_at;
        }
        return best;
}

/* ---- firewall.xml ------------------------------------------------------------------------ */

char *firewall_to_xml(const Firewall *fw, int64_t now) {
        _cleanup_strbuf_ StrBuf b = {};
        size_t kept = 0;

        for (size_t i = 0; i < fw->n; i++)
                if (!firewall_rule_expired(&fw->rules[i], now))
                        kept++;
        strbuf_append(&b, "<firewall version=\"2\">\n");
        if (kept == 0)
                strbuf_append(&b, "  <rules/>\n");
        else {
                strbuf_append(&b, "  <rules>\n");
                for (size_t i = 0; i < fw->n; i++) {
                        if (firewall_rule_expired(&fw->rules[i], now))
                                continue;
                        _cleanup_strv_free_ char **kv = firewall_rule_stored_pairs(&fw->rules[i]);
                        if (!kv)
                                return NULL;
                        strbuf_append(&b, "    <rule>\n      <properties>\n");
                        for (size_t k = 0; kv[k]; k += 2) {
                                strbuf_append(&b, "        <property name=\"");
                                strbuf_append(&b, kv[k]);
                                strbuf_append(&b, "\">");
                                strbuf_append_xml_escaped(&b, kv[k + 1]);
                                strbuf_append(&b, "</property>\n");
                        }
                        strbuf_append(&b, "      </properties>\n    </rule>\n");
                }
                strbuf_append(&b, "  </rules>\n");
        }
        strbuf_append(&b, "</firewall>\n");
        if (b.oom)
                return NULL;
        return strbuf_steal(&b);
}

static bool node_is(const xmlNode *n, const char *name) {
        return n->type == XML_ELEMENT_NODE && streq((const char *) n->name, name);
}

static char *attr(const xmlNode *n, const char *name) {
        xmlChar *v = xmlGetProp(n, (const xmlChar *) name);
        char *s = v ? strdup((const char *) v) : NULL;
        xmlFree(v);
        return s;
}

static int load_v2(xmlNode *root, Firewall *fw, QError *e) {
        for (xmlNode *rules = root->children; rules; rules = rules->next) {
                if (!node_is(rules, "rules"))
                        continue;
                for (xmlNode *rule = rules->children; rule; rule = rule->next) {
                        _cleanup_strv_free_ char **kv = NULL;
                        FirewallRule r = { .icmptype = -1 };
                        int k;

                        if (!node_is(rule, "rule"))
                                continue;
                        for (xmlNode *props = rule->children; props; props = props->next) {
                                if (!node_is(props, "properties"))
                                        continue;
                                for (xmlNode *p = props->children; p; p = p->next) {
                                        if (!node_is(p, "property"))
                                                continue;
                                        _cleanup_free_ char *name = attr(p, "name");
                                        xmlChar *text = xmlNodeGetContent(p);
                                        k = name && text ? 0 : -ENOMEM;
                                        if (k >= 0)
                                                k = strv_extend(&kv, name);
                                        if (k >= 0)
                                                k = strv_extend(&kv, (const char *) text);
                                        xmlFree(text);
                                        if (k < 0)
                                                return qerror_set(e, QERR_VM_ERROR, "Invalid firewall.xml: %s",
                                                                  "a property without a name");
                                }
                        }
                        if (fw->n >= FIREWALL_MAX_RULES)
                                return qerror_set(e, QERR_VM_ERROR, "Invalid firewall.xml: %s", "too many rules");
                        k = firewall_rule_from_pairs(kv, &r, e);
                        if (k < 0)
                                return k;
                        if (firewall_append(fw, &r) < 0) {
                                firewall_rule_done(&r);
                                return -ENOMEM;
                        }
                }
        }
        return 0;
}

static int append_pairs_rule(Firewall *fw, char **kv, QError *e) {
        FirewallRule r = { .icmptype = -1 };
        int k = firewall_rule_from_pairs(kv, &r, e);
        if (k < 0)
                return k;
        if (firewall_append(fw, &r) < 0) {
                firewall_rule_done(&r);
                return -ENOMEM;
        }
        return 0;
}

static const char *r3_action(xmlNode *root, const char *key, const char *policy) {
        _cleanup_free_ char *v = attr(root, key);
        return streq(v ?: policy, "allow") ? "accept" : "drop";
}

/* R3's QubesFirewallRules (spec §5, "R3 conversion") */
static int load_v1(xmlNode *root, Firewall *fw, QError *e) {
        _cleanup_free_ char *policy = attr(root, "policy");
        const char *pol = policy ?: "deny";
        int k;

        char *dns[] = { (char *) "action", (char *) r3_action(root, "dns", pol), (char *) "specialtarget",
                        (char *) "dns", NULL };
        k = append_pairs_rule(fw, dns, e);
        if (k < 0)
                return k;
        char *icmp[] = { (char *) "action", (char *) r3_action(root, "icmp", pol), (char *) "proto", (char *) "icmp",
                         NULL };
        k = append_pairs_rule(fw, icmp, e);
        if (k < 0)
                return k;

        const char *rule_action = streq(pol, "allow") ? "drop" : "accept";
        for (xmlNode *n = root->children; n; n = n->next) {
                _cleanup_free_ char *address = NULL, *netmask = NULL, *proto = NULL, *port = NULL, *toport = NULL,
                                    *expire = NULL, *host = NULL, *ports = NULL;
                _cleanup_strv_free_ char **kv = NULL;

                if (n->type != XML_ELEMENT_NODE)
                        continue;
                if (fw->n >= FIREWALL_MAX_RULES)
                        return qerror_set(e, QERR_VM_ERROR, "Invalid firewall.xml: %s", "too many rules");
                address = attr(n, "address");
                netmask = attr(n, "netmask");
                proto = attr(n, "proto");
                port = attr(n, "port");
                toport = attr(n, "toport");
                expire = attr(n, "expire");
                if (strv_extend(&kv, "action") < 0 || strv_extend(&kv, rule_action) < 0)
                        return -ENOMEM;
                if (address) {
                        if (asprintf(&host, "%s/%s", address, netmask ?: "32") < 0)
                                return -ENOMEM;
                        if (strv_extend(&kv, "dsthost") < 0 || strv_extend(&kv, host) < 0)
                                return -ENOMEM;
                }
                if (proto && streq(proto, "any"))
                        proto = mfree(proto);
                if (port && !proto && !(proto = strdup("tcp")))
                        return -ENOMEM;
                if (proto && (strv_extend(&kv, "proto") < 0 || strv_extend(&kv, proto) < 0))
                        return -ENOMEM;
                if (port) {
                        if (toport ? asprintf(&ports, "%s-%s", port, toport) < 0 : !(ports = strdup(port)))
                                return -ENOMEM;
                        if (strv_extend(&kv, "dstports") < 0 || strv_extend(&kv, ports) < 0)
                                return -ENOMEM;
                }
                if (expire && (strv_extend(&kv, "expire") < 0 || strv_extend(&kv, expire) < 0))
                        return -ENOMEM;
                k = append_pairs_rule(fw, kv, e);
                if (k < 0)
                        return k;
        }
        if (streq(pol, "allow")) {
                char *all[] = { (char *) "action", (char *) "accept", NULL };
                k = append_pairs_rule(fw, all, e);
                if (k < 0)
                        return k;
        }
        return 0;
}

int firewall_from_xml(const char *data, size_t len, Firewall **ret, QError *e) {
        _cleanup_(firewall_freep) Firewall *fw = new0(Firewall, 1);
        _cleanup_free_ char *version = NULL;
        xmlDoc *doc;
        xmlNode *root;
        int k;

        if (!fw)
                return -ENOMEM;
        if (len > INT32_MAX)
                return qerror_set(e, QERR_VM_ERROR, "Invalid firewall.xml: %s", "too large");
        doc = xmlReadMemory(data, (int) len, "firewall.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc)
                return qerror_set(e, QERR_VM_ERROR, "Invalid firewall.xml: %s", "not well-formed XML");
        root = xmlDocGetRootElement(doc);
        if (!root) {
                xmlFreeDoc(doc);
                return qerror_set(e, QERR_VM_ERROR, "Invalid firewall.xml: %s", "no root element");
        }
        version = attr(root, "version");
        if (!version || streq(version, "1"))
                k = load_v1(root, fw, e);
        else if (streq(version, "2"))
                k = load_v2(root, fw, e);
        else
                k = qerror_set(e, QERR_VM_ERROR, "Unsupported firewall.xml version: %s", version);
        xmlFreeDoc(doc);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(fw);
        return 0;
}

int firewall_load(const char *path, Firewall **ret, QError *e) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int k = read_file(path, &data, &len);
        if (k == -ENOENT)
                return firewall_new_default(ret);
        if (k < 0)
                return qerror_set(e, QERR_VM_ERROR, "Unable to read firewall.xml: %s", strerror(-k));
        return firewall_from_xml(data, len, ret, e);
}

int firewall_save(const char *path, const Firewall *fw, int64_t now, QError *e) {
        _cleanup_free_ char *xml = firewall_to_xml(fw, now);
        int k;
        if (!xml)
                return -ENOMEM;
        k = write_file_atomic(path, xml, strlen(xml), 0664);
        if (k < 0)
                return qerror_set(e, QERR_QUBES_EXCEPTION, "firewall save error: %s", strerror(-k));
        return 0;
}
