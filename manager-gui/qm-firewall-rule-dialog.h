/* qm-firewall-rule-dialog.h: the dialog that adds or edits one firewall rule
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QM_TYPE_FIREWALL_RULE_DIALOG (qm_firewall_rule_dialog_get_type ())
G_DECLARE_FINAL_TYPE (QmFirewallRuleDialog, qm_firewall_rule_dialog, QM, FIREWALL_RULE_DIALOG,
                      GtkDialog)

/* A dialog for a new rule (rule NULL) or to edit rule (a{ss}, the stored form of the Firewall
 * interface's Rules). It checks what the user wrote before it emits
 * QmFirewallRuleDialog::rule-chosen (GVariant a{ss}) and closes; Cancel closes it without.
 * QmFirewallRuleDialog::closing is emitted as it closes, either way. */
QmFirewallRuleDialog *qm_firewall_rule_dialog_new (GtkWindow *parent,
                                                   GVariant  *rule);

/* The checks, also for the page's tests. Each returns TRUE and the stored form in *out, or
 * FALSE and a message for the user in *out. */
gboolean qm_firewall_check_address (const gchar  *text,
                                    gchar       **out);
/* proto is "tcp" or "udp": a port, a range "N-M" or a service name (/etc/services). */
gboolean qm_firewall_check_ports   (const gchar  *text,
                                    const gchar  *proto,
                                    gchar       **out);
gboolean qm_firewall_check_icmp    (const gchar  *text,
                                    gchar       **out);
gboolean qm_firewall_check_comment (const gchar  *text,
                                    gchar       **out);

G_END_DECLS
