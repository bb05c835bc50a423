/* qm-firewall-rule-dialog.c: the dialog that adds or edits one firewall rule
 *
 * What the rule does (allow or block), to which address (an IP address, a network or a host
 * name; empty for any), which protocol, which port or service (TCP, UDP) or ICMP type, until
 * when, and a comment. OK checks every field as qubesd's grammar does (spec: the firewall
 * rules), so that what the user wrote wrong is said here, next to the field, and nothing is
 * sent; the page makes the call on Apply, where qubesd checks again. A field of the rule that
 * the dialog does not show (specialtarget) is kept as it was.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <arpa/inet.h>
#include <glib/gi18n.h>
#include <netdb.h>
#include <string.h>

#include "qm-error.h"
#include "qm-firewall-rule-dialog.h"

#define MAX_MINUTES (366 * 24 * 60)

struct _QmFirewallRuleDialog
{
  GtkDialog     parent_instance;

  GVariant     *rule;           /* as given, or NULL for a new one */
  gboolean      expire_touched; /* the user changed the expiry */

  /* template children */
  GtkWidget    *info_bar;
  GtkWidget    *error_label;
  GtkWidget    *action_combo;
  GtkWidget    *address_entry;
  GtkWidget    *proto_combo;
  GtkWidget    *port_title;
  GtkWidget    *port_entry;
  GtkWidget    *expire_check;
  GtkWidget    *expire_spin;
  GtkWidget    *comment_entry;
};

G_DEFINE_TYPE (QmFirewallRuleDialog, qm_firewall_rule_dialog, GTK_TYPE_DIALOG)

enum
{
  SIGNAL_RULE_CHOSEN,
  SIGNAL_CLOSING,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* ---- the checks --------------------------------------------------------------------------- */

static gboolean
all_digits (const gchar *text)
{
  if (*text == '\0')
    return FALSE;
  for (; *text != '\0'; text++)
    if (!g_ascii_isdigit (*text))
      return FALSE;
  return TRUE;
}

static gboolean
is_ipv4 (const gchar *text)
{
  struct in_addr addr;
  guint dots = 0;

  for (const gchar *p = text; *p != '\0'; p++)
    dots += *p == '.';
  return dots == 3 && inet_pton (AF_INET, text, &addr) == 1;
}

static gboolean
is_ipv6 (const gchar *text)
{
  struct in6_addr addr;

  return inet_pton (AF_INET6, text, &addr) == 1;
}

gboolean
qm_firewall_check_address (const gchar  *text,
                           gchar       **out)
{
  g_autofree gchar *address = g_strstrip (g_strdup (text));
  const gchar *slash = strchr (address, '/');

  if (slash != NULL)
    {
      g_autofree gchar *host = g_strndup (address, slash - address);
      const gchar *prefix = slash + 1;
      guint max;

      if (strchr (prefix, '/') != NULL || !all_digits (prefix) || strlen (prefix) > 3)
        {
          *out = g_strdup_printf (_("“%s” is not a network: write it as 10.0.0.0/8."), address);
          return FALSE;
        }
      if (is_ipv6 (host))
        max = 128;
      else if (is_ipv4 (host))
        max = 32;
      else
        {
          *out = g_strdup_printf (_("“%s” is not an IP address: a network is an address and "
                                    "a prefix length, as in 10.0.0.0/8."), host);
          return FALSE;
        }
      if (g_ascii_strtoull (prefix, NULL, 10) > max)
        {
          *out = g_strdup_printf (_("The prefix length of %s must be at most %u."), host, max);
          return FALSE;
        }
      *out = g_steal_pointer (&address);
      return TRUE;
    }
  if (is_ipv6 (address) || is_ipv4 (address))
    {
      *out = g_steal_pointer (&address);
      return TRUE;
    }
  /* a host name: qubesd takes lower case only, and names have no case */
  {
    g_autofree gchar *name = g_ascii_strdown (address, -1);

    for (const gchar *p = name; *p != '\0'; p++)
      if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.' && *p != '_')
        {
          *out = g_strdup_printf (_("“%s” is not an IP address, a network or a host name."),
                                  address);
          return FALSE;
        }
    *out = g_steal_pointer (&name);
    return TRUE;
  }
}

static gboolean
parse_port (const gchar *text,
            guint       *port)
{
  if (!all_digits (text) || strlen (text) > 5)
    return FALSE;
  *port = (guint) g_ascii_strtoull (text, NULL, 10);
  return *port <= 65535;
}

gboolean
qm_firewall_check_ports (const gchar  *text,
                         const gchar  *proto,
                         gchar       **out)
{
  g_autofree gchar *ports = g_strstrip (g_strdup (text));
  const gchar *dash = strchr (ports, '-');
  guint low, high;

  if (dash != NULL)
    {
      g_autofree gchar *first = g_strndup (ports, dash - ports);

      if (parse_port (first, &low) && parse_port (dash + 1, &high))
        {
          if (low > high)
            {
              *out = g_strdup_printf (_("The range %s ends before it starts."), ports);
              return FALSE;
            }
          *out = g_strdup_printf ("%u-%u", low, high);
          return TRUE;
        }
    }
  else if (parse_port (ports, &low))
    {
      *out = g_strdup_printf ("%u", low);
      return TRUE;
    }
  else if (ports[0] != '\0' && !g_ascii_isdigit (ports[0]))
    {
      /* a service: its port in /etc/services */
      struct servent *service = getservbyname (ports, proto);

      if (service != NULL)
        {
          *out = g_strdup_printf ("%u", (guint) ntohs ((guint16) service->s_port));
          return TRUE;
        }
    }
  *out = g_strdup_printf (_("“%s” is not a port (0 to 65535), a range of ports (8000-8080) or "
                            "the name of a service (https)."), ports);
  return FALSE;
}

gboolean
qm_firewall_check_icmp (const gchar  *text,
                        gchar       **out)
{
  g_autofree gchar *type = g_strstrip (g_strdup (text));

  if (!all_digits (type) || strlen (type) > 3 || g_ascii_strtoull (type, NULL, 10) > 255)
    {
      *out = g_strdup_printf (_("“%s” is not an ICMP type (0 to 255)."), type);
      return FALSE;
    }
  *out = g_strdup_printf ("%u", (guint) g_ascii_strtoull (type, NULL, 10));
  return TRUE;
}

gboolean
qm_firewall_check_comment (const gchar  *text,
                           gchar       **out)
{
  for (const gchar *p = text; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr (" :;,./-_[]", *p) == NULL)
      {
        *out = g_strdup (_("A comment may have only the letters A to Z, digits, spaces and "
                           ": ; , . / - _ [ ]."));
        return FALSE;
      }
  *out = g_strdup (text);
  return TRUE;
}

/* ---- the dialog --------------------------------------------------------------------------- */

static void
show_error (QmFirewallRuleDialog *self,
            const gchar          *text,
            GtkWidget            *field)
{
  gtk_label_set_text (GTK_LABEL (self->error_label), text);
  gtk_widget_show (self->info_bar);
  if (field != NULL)
    gtk_widget_grab_focus (field);
}

static const gchar *
proto (QmFirewallRuleDialog *self)
{
  const gchar *id = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->proto_combo));

  /* "any" is no proto field */
  return id != NULL && !g_str_equal (id, "any") ? id : "";
}

static void
update_sensitivity (QmFirewallRuleDialog *self)
{
  const gchar *p = proto (self);
  gboolean icmp = g_str_equal (p, "icmp");

  gtk_widget_set_sensitive (self->port_entry, p[0] != '\0');
  gtk_widget_set_sensitive (self->port_title, p[0] != '\0');
  gtk_label_set_text_with_mnemonic (GTK_LABEL (self->port_title),
                                    icmp ? _("ICMP _type:") : _("_Port or service:"));
  atk_object_set_name (gtk_widget_get_accessible (self->port_entry),
                       gtk_label_get_text (GTK_LABEL (self->port_title)));
  gtk_widget_set_sensitive (self->expire_spin,
                            gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->expire_check)));
}

static void
on_proto_changed (QmFirewallRuleDialog *self)
{
  update_sensitivity (self);
}

static void
on_expire_changed (QmFirewallRuleDialog *self)
{
  self->expire_touched = TRUE;
  update_sensitivity (self);
}

/* The rule the fields describe, or NULL after saying what is wrong. */
static GVariant *
build_rule (QmFirewallRuleDialog *self)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a{ss}"));
  const gchar *action = gtk_combo_box_get_active_id (GTK_COMBO_BOX (self->action_combo));
  const gchar *address = gtk_entry_get_text (GTK_ENTRY (self->address_entry));
  const gchar *port = gtk_entry_get_text (GTK_ENTRY (self->port_entry));
  const gchar *comment = gtk_entry_get_text (GTK_ENTRY (self->comment_entry));
  const gchar *p = proto (self);
  const gchar *kept;
  g_autofree gchar *value = NULL;

  g_variant_builder_add (&builder, "{ss}", "action", action != NULL ? action : "accept");
  {
    g_autofree gchar *trimmed = g_strstrip (g_strdup (address));

    if (trimmed[0] != '\0')
      {
        if (!qm_firewall_check_address (trimmed, &value))
          {
            show_error (self, value, self->address_entry);
            return NULL;
          }
        g_variant_builder_add (&builder, "{ss}", "dsthost", value);
        g_clear_pointer (&value, g_free);
      }
  }
  if (p[0] != '\0')
    g_variant_builder_add (&builder, "{ss}", "proto", p);
  {
    g_autofree gchar *trimmed = g_strstrip (g_strdup (port));

    if (p[0] != '\0' && trimmed[0] != '\0')
      {
        gboolean icmp = g_str_equal (p, "icmp");

        if (!(icmp ? qm_firewall_check_icmp (trimmed, &value)
                   : qm_firewall_check_ports (trimmed, p, &value)))
          {
            show_error (self, value, self->port_entry);
            return NULL;
          }
        g_variant_builder_add (&builder, "{ss}", icmp ? "icmptype" : "dstports", value);
        g_clear_pointer (&value, g_free);
      }
  }
  if (self->rule != NULL && g_variant_lookup (self->rule, "specialtarget", "&s", &kept))
    g_variant_builder_add (&builder, "{ss}", "specialtarget", kept);
  if (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->expire_check)))
    {
      if (!self->expire_touched && self->rule != NULL
          && g_variant_lookup (self->rule, "expire", "&s", &kept))
        g_variant_builder_add (&builder, "{ss}", "expire", kept);
      else
        {
          gint64 minutes = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->expire_spin));
          g_autofree gchar *when = g_strdup_printf (
            "%" G_GINT64_FORMAT, g_get_real_time () / G_USEC_PER_SEC + minutes * 60);

          g_variant_builder_add (&builder, "{ss}", "expire", when);
        }
    }
  if (comment[0] != '\0')
    {
      if (!qm_firewall_check_comment (comment, &value))
        {
          show_error (self, value, self->comment_entry);
          return NULL;
        }
      g_variant_builder_add (&builder, "{ss}", "comment", value);
    }
  return g_variant_builder_end (&builder);
}

static void
qm_firewall_rule_dialog_response (GtkDialog *dialog,
                                  gint       response)
{
  QmFirewallRuleDialog *self = QM_FIREWALL_RULE_DIALOG (dialog);

  if (response == GTK_RESPONSE_OK)
    {
      g_autoptr(GVariant) rule = build_rule (self);

      if (rule == NULL)
        return;
      g_variant_ref_sink (rule);
      g_signal_emit (self, signals[SIGNAL_RULE_CHOSEN], 0, rule);
    }
  g_signal_emit (self, signals[SIGNAL_CLOSING], 0);
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

static void
show_rule (QmFirewallRuleDialog *self)
{
  const gchar *value;

  if (self->rule == NULL)
    {
      gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->action_combo), "accept");
      gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->proto_combo), "tcp");
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->expire_spin), 60);
      return;
    }
  if (g_variant_lookup (self->rule, "action", "&s", &value))
    gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->action_combo), value);
  if (g_variant_lookup (self->rule, "dsthost", "&s", &value))
    gtk_entry_set_text (GTK_ENTRY (self->address_entry), value);
  if (!g_variant_lookup (self->rule, "proto", "&s", &value))
    value = "any";
  gtk_combo_box_set_active_id (GTK_COMBO_BOX (self->proto_combo), value);
  if (g_variant_lookup (self->rule, "dstports", "&s", &value)
      || g_variant_lookup (self->rule, "icmptype", "&s", &value))
    gtk_entry_set_text (GTK_ENTRY (self->port_entry), value);
  if (g_variant_lookup (self->rule, "expire", "&s", &value))
    {
      gint64 left = g_ascii_strtoll (value, NULL, 10) - g_get_real_time () / G_USEC_PER_SEC;

      gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->expire_check), TRUE);
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->expire_spin),
                                 CLAMP ((left + 59) / 60, 1, MAX_MINUTES));
    }
  else
    gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->expire_spin), 60);
  if (g_variant_lookup (self->rule, "comment", "&s", &value))
    gtk_entry_set_text (GTK_ENTRY (self->comment_entry), value);
}

QmFirewallRuleDialog *
qm_firewall_rule_dialog_new (GtkWindow *parent,
                             GVariant  *rule)
{
  QmFirewallRuleDialog *self;

  /* use-header-bar is a construct property: the template cannot set it */
  self = g_object_new (QM_TYPE_FIREWALL_RULE_DIALOG, "use-header-bar", FALSE, "transient-for",
                       parent, NULL);
  gtk_window_set_title (GTK_WINDOW (self), rule != NULL ? _("Edit Firewall Rule")
                                                        : _("Add Firewall Rule"));
  self->rule = rule != NULL ? g_variant_ref (rule) : NULL;
  show_rule (self);
  /* what show_rule set is not the user's */
  self->expire_touched = FALSE;
  update_sensitivity (self);
  return self;
}

static void
qm_firewall_rule_dialog_finalize (GObject *object)
{
  QmFirewallRuleDialog *self = QM_FIREWALL_RULE_DIALOG (object);

  g_clear_pointer (&self->rule, g_variant_unref);
  G_OBJECT_CLASS (qm_firewall_rule_dialog_parent_class)->finalize (object);
}

static void
qm_firewall_rule_dialog_init (QmFirewallRuleDialog *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  qm_error_name_info_bar_close (GTK_INFO_BAR (self->info_bar));
  gtk_spin_button_set_range (GTK_SPIN_BUTTON (self->expire_spin), 1, MAX_MINUTES);
  gtk_spin_button_set_increments (GTK_SPIN_BUTTON (self->expire_spin), 1, 60);
  gtk_dialog_set_default_response (GTK_DIALOG (self), GTK_RESPONSE_OK);
  /* entries are named after their titles, as a screen reader says them (GTK 3 does not) */
  for (guint i = 0; i < 2; i++)
    {
      GtkWidget *entry = i == 0 ? self->address_entry : self->comment_entry;
      GList *labels = gtk_widget_list_mnemonic_labels (entry);

      if (labels != NULL)
        atk_object_set_name (gtk_widget_get_accessible (entry),
                             gtk_label_get_text (GTK_LABEL (labels->data)));
      g_list_free (labels);
    }
}

static void
qm_firewall_rule_dialog_class_init (QmFirewallRuleDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkDialogClass *dialog_class = GTK_DIALOG_CLASS (klass);

  object_class->finalize = qm_firewall_rule_dialog_finalize;
  dialog_class->response = qm_firewall_rule_dialog_response;

  /* QmFirewallRuleDialog::rule-chosen: the rule (a{ss}), checked, as OK closes the dialog. */
  signals[SIGNAL_RULE_CHOSEN] = g_signal_new ("rule-chosen", G_TYPE_FROM_CLASS (klass),
                                              G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                              G_TYPE_NONE, 1, G_TYPE_VARIANT);

  /* QmFirewallRuleDialog::closing: OK (after rule-chosen) or Cancel closes the dialog now. */
  signals[SIGNAL_CLOSING] = g_signal_new ("closing", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  gtk_widget_class_set_template_from_resource (
    widget_class, "/org/qubes_os/QubeManager/qm-firewall-rule-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, info_bar);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, error_label);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, action_combo);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, address_entry);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, proto_combo);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, port_title);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, port_entry);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, expire_check);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, expire_spin);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallRuleDialog, comment_entry);
  gtk_widget_class_bind_template_callback (widget_class, on_proto_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_expire_changed);
}
