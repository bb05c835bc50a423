/* qm-firewall-page.c: the Firewall page of a qube's settings
 *
 * As upstream's "Firewall rules" tab: allow all outgoing connections, or limit them to the rules
 * in the table, with DNS and ICMP allowed by two check boxes. qubesd holds one ordered list
 * (Firewall.Rules, first match wins, the stored form of firewall.xml); the page shows it as
 *
 *   the table's rules, [accept specialtarget=dns], [accept proto=icmp], final rule
 *
 * where the final rule is a bare "accept" (allow all: the table can still block) or a bare
 * "drop" (limit; also what a list without a bare last rule means, since qubesd's policy ends
 * with drop). The DNS and ICMP rules are recognised only just before the final rule (where the
 * page writes them), so a list written by qvm-firewall keeps its meaning: anything else is a row
 * of the table, in its place, with every field kept. Apply sends the whole list (SetRules) when
 * the user changed something and it differs from what qubesd holds.
 *
 * The page follows the rules while it is open: an administrator gets PropertiesChanged of the
 * Firewall interface, another user the firewall-changed Event copies; either reads Rules again
 * (once per burst). A change made elsewhere replaces what is shown unless the user has changed
 * something here or has a rule dialog open: then the page says so and offers to show the new
 * rules.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-error.h"
#include "qm-firewall-page.h"
#include "qm-firewall-rule-dialog.h"

enum
{
  COL_RULE,
  COL_ACTION,
  COL_ADDRESS,
  COL_PORT,
  COL_PROTO,
  COL_EXPIRES,
  COL_COMMENT,
};

struct _QmFirewallPage
{
  QmSettingsPage   parent_instance;

  QmClient        *client; /* from the window, at the first load */
  gchar           *path;
  GCancellable    *cancellable;
  GDBusConnection *connection; /* the signals' */
  guint            signal_ids[3];
  guint            reload_id;
  guint            tick_id;
  gboolean         loading;   /* the window waits for qm_settings_page_loaded () */
  gboolean         available; /* the qube has a firewall (not dom0) */
  gboolean         dirty;     /* the user changed something since the rules were shown */
  gboolean         updating;  /* the widgets are being set from the rules */
  gboolean         watching_client;
  guint            dialogs_open; /* a rule dialog works on a row: the rows stay as they are */
  GVariant        *current;   /* aa{ss}: the rules as qubesd last said */

  /* template children */
  GtkWidget       *absent_label;
  GtkWidget       *content_box;
  GtkWidget       *allow_radio;
  GtkWidget       *limit_radio;
  GtkWidget       *dns_check;
  GtkWidget       *icmp_check;
  GtkWidget       *hint_label;
  GtkWidget       *netvm_label;
  GtkListStore    *rules_store;
  GtkWidget       *rules_view;
  GtkWidget       *add_button;
  GtkWidget       *edit_button;
  GtkWidget       *remove_button;
  GtkWidget       *up_button;
  GtkWidget       *down_button;
  GtkWidget       *changed_box;
};

G_DEFINE_TYPE (QmFirewallPage, qm_firewall_page, QM_TYPE_SETTINGS_PAGE)

static void read_rules (QmFirewallPage *self);

/* ---- rules ------------------------------------------------------------------------------ */

static const gchar *
lookup (GVariant    *rule,
        const gchar *key)
{
  const gchar *value;

  return g_variant_lookup (rule, key, "&s", &value) ? value : NULL;
}

/* A rule of exactly these fields (NULL-terminated key, value pairs). */
static gboolean
rule_is (GVariant *rule,
         ...)
{
  va_list ap;
  const gchar *key;
  gsize n = 0;
  gboolean same = TRUE;

  va_start (ap, rule);
  while (same && (key = va_arg (ap, const gchar *)) != NULL)
    {
      const gchar *value = va_arg (ap, const gchar *);

      same = g_strcmp0 (lookup (rule, key), value) == 0;
      n++;
    }
  va_end (ap);
  return same && g_variant_n_children (rule) == n;
}

static GVariant *
bare_rule (const gchar *action)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&builder, "{ss}", "action", action);
  return g_variant_builder_end (&builder);
}

static gint
compare_keys (gconstpointer a,
              gconstpointer b)
{
  return g_strcmp0 (*(const gchar *const *) a, *(const gchar *const *) b);
}

/* The rule's fields sorted by key: two rules compare equal whatever order they came in. */
static GVariant *
canonical_rule (GVariant *rule)
{
  g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  GVariantBuilder builder;
  GVariantIter iter;
  gchar *key;

  /* copies: a "&s" of a child that is not serialised dies with the child (g_variant_lookup
   * serialises the rule) */
  g_variant_iter_init (&iter, rule);
  while (g_variant_iter_next (&iter, "{ss}", &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_keys);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{ss}"));
  for (guint i = 0; i < keys->len; i++)
    g_variant_builder_add (&builder, "{ss}", keys->pdata[i], lookup (rule, keys->pdata[i]));
  return g_variant_builder_end (&builder);
}

static gboolean
rules_equal (GVariant *a,
             GVariant *b)
{
  gsize n = g_variant_n_children (a);

  if (n != g_variant_n_children (b))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) ra = g_variant_get_child_value (a, i);
      g_autoptr(GVariant) rb = g_variant_get_child_value (b, i);
      g_autoptr(GVariant) ca = g_variant_ref_sink (canonical_rule (ra));
      g_autoptr(GVariant) cb = g_variant_ref_sink (canonical_rule (rb));

      if (!g_variant_equal (ca, cb))
        return FALSE;
    }
  return TRUE;
}

/* ---- showing ---------------------------------------------------------------------------- */

static gchar *
expires_text (const gchar *expire)
{
  gint64 when, left;

  if (expire == NULL)
    return g_strdup ("");
  when = g_ascii_strtoll (expire, NULL, 10);
  left = when - g_get_real_time () / G_USEC_PER_SEC;
  if (left <= 0)
    return g_strdup (_("expired"));
  if (left < 60)
    /* TRANSLATORS: the time left until a firewall rule is removed, in seconds */
    return g_strdup_printf (_("in %d s"), (gint) left);
  left = (left + 59) / 60;
  if (left < 60)
    /* TRANSLATORS: the time left until a firewall rule is removed, in minutes */
    return g_strdup_printf (_("in %d min"), (gint) left);
  if (left < 24 * 60)
    /* TRANSLATORS: the time left until a firewall rule is removed, hours and minutes */
    return g_strdup_printf (_("in %d h %d min"), (gint) (left / 60), (gint) (left % 60));
  {
    g_autoptr(GDateTime) date = g_date_time_new_from_unix_local (when);

    /* TRANSLATORS: the date a firewall rule is removed (g_date_time_format) */
    return date != NULL ? g_date_time_format (date, _("%Y-%m-%d %H:%M")) : g_strdup (expire);
  }
}

static void
set_row (QmFirewallPage *self,
         GtkTreeIter    *iter,
         GVariant       *rule)
{
  const gchar *action = lookup (rule, "action");
  const gchar *host = lookup (rule, "dsthost");
  const gchar *proto = lookup (rule, "proto");
  const gchar *ports = lookup (rule, "dstports");
  const gchar *icmptype = lookup (rule, "icmptype");
  const gchar *comment = lookup (rule, "comment");
  g_autofree gchar *address = NULL, *port = NULL, *expires = NULL;

  if (g_strcmp0 (lookup (rule, "specialtarget"), "dns") == 0)
    /* TRANSLATORS: a rule's address: the qube's DNS servers (and the host, if any) */
    address = host != NULL ? g_strdup_printf (_("DNS servers, %s"), host)
                           : g_strdup (_("DNS servers"));
  else
    address = g_strdup (host != NULL ? host : _("any"));
  if (ports != NULL)
    port = g_strdup (ports);
  else if (icmptype != NULL)
    /* TRANSLATORS: an ICMP type in the Port or service column */
    port = g_strdup_printf (_("type %s"), icmptype);
  else
    port = g_strdup (_("any"));
  expires = expires_text (lookup (rule, "expire"));
  gtk_list_store_set (self->rules_store, iter,
                      COL_RULE, rule,
                      COL_ACTION, g_strcmp0 (action, "drop") == 0 ? _("Block") : _("Allow"),
                      COL_ADDRESS, address,
                      COL_PORT, port,
                      COL_PROTO, g_strcmp0 (proto, "tcp") == 0 ? _("TCP")
                                 : g_strcmp0 (proto, "udp") == 0 ? _("UDP")
                                 : g_strcmp0 (proto, "icmp") == 0 ? _("ICMP")
                                 : _("any"),
                      COL_EXPIRES, expires,
                      COL_COMMENT, comment != NULL ? comment : "",
                      -1);
}

static gboolean
selected_row (QmFirewallPage *self,
              GtkTreeIter    *iter)
{
  GtkTreeSelection *selection = gtk_tree_view_get_selection (GTK_TREE_VIEW (self->rules_view));

  return gtk_tree_selection_get_selected (selection, NULL, iter);
}

static void
update_sensitivity (QmFirewallPage *self)
{
  gboolean limit = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->limit_radio));
  GtkTreeModel *model = GTK_TREE_MODEL (self->rules_store);
  GtkTreeIter iter, other;
  gboolean have = selected_row (self, &iter);

  gtk_widget_set_sensitive (self->dns_check, limit);
  gtk_widget_set_sensitive (self->icmp_check, limit);
  gtk_label_set_text (GTK_LABEL (self->hint_label),
                      limit ? _("The first rule that matches a connection decides; what no rule "
                                "allows is blocked.")
                            : _("The first rule that matches a connection decides; what no rule "
                                "blocks is allowed."));
  gtk_widget_set_sensitive (self->edit_button, have);
  gtk_widget_set_sensitive (self->remove_button, have);
  other = iter;
  gtk_widget_set_sensitive (self->up_button, have && gtk_tree_model_iter_previous (model, &other));
  other = iter;
  gtk_widget_set_sensitive (self->down_button, have && gtk_tree_model_iter_next (model, &other));
}

static gboolean
tick (gpointer user_data)
{
  QmFirewallPage *self = user_data;
  GtkTreeModel *model = GTK_TREE_MODEL (self->rules_store);
  GtkTreeIter iter;
  gboolean valid, any = FALSE;

  for (valid = gtk_tree_model_get_iter_first (model, &iter); valid;
       valid = gtk_tree_model_iter_next (model, &iter))
    {
      g_autoptr(GVariant) rule = NULL;
      g_autofree gchar *shown = NULL, *text = NULL;
      const gchar *expire;

      gtk_tree_model_get (model, &iter, COL_RULE, &rule, COL_EXPIRES, &shown, -1);
      expire = lookup (rule, "expire");
      if (expire == NULL)
        continue;
      any = TRUE;
      text = expires_text (expire);
      if (g_strcmp0 (text, shown) != 0)
        gtk_list_store_set (self->rules_store, &iter, COL_EXPIRES, text, -1);
    }
  if (!any)
    self->tick_id = 0;
  return any ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* The remaining time counts down while a rule with an expiry is shown. */
static void
watch_expiry (QmFirewallPage *self)
{
  if (self->tick_id == 0)
    self->tick_id = g_timeout_add_seconds (1, tick, self);
}

static void
show_rules (QmFirewallPage *self,
            GVariant       *rules)
{
  gsize n = g_variant_n_children (rules);
  gboolean limit = TRUE, dns = FALSE, icmp = FALSE;
  g_autofree gchar *keep = NULL;
  GtkTreeIter iter;

  if (n > 0)
    {
      g_autoptr(GVariant) last = g_variant_get_child_value (rules, n - 1);

      if (g_variant_n_children (last) == 1 && lookup (last, "action") != NULL)
        {
          limit = g_strcmp0 (lookup (last, "action"), "accept") != 0;
          n--;
        }
    }
  /* the two check boxes, just before the final rule */
  while (limit && n > 0)
    {
      g_autoptr(GVariant) rule = g_variant_get_child_value (rules, n - 1);

      if (!dns && rule_is (rule, "action", "accept", "specialtarget", "dns", NULL))
        dns = TRUE;
      else if (!icmp && rule_is (rule, "action", "accept", "proto", "icmp", NULL))
        icmp = TRUE;
      else
        break;
      n--;
    }
  if (!limit)
    /* what "limit" would start from */
    dns = icmp = TRUE;

  /* the selection survives (the same place in the list) */
  if (selected_row (self, &iter))
    keep = gtk_tree_model_get_string_from_iter (GTK_TREE_MODEL (self->rules_store), &iter);

  self->updating = TRUE;
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (limit ? self->limit_radio : self->allow_radio),
                                TRUE);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->dns_check), dns);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->icmp_check), icmp);
  gtk_list_store_clear (self->rules_store);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) rule = g_variant_get_child_value (rules, i);

      gtk_list_store_append (self->rules_store, &iter);
      set_row (self, &iter, rule);
      if (lookup (rule, "expire") != NULL)
        watch_expiry (self);
    }
  if (keep != NULL
      && gtk_tree_model_get_iter_from_string (GTK_TREE_MODEL (self->rules_store), &iter, keep))
    gtk_tree_selection_select_iter (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->rules_view)),
                                    &iter);
  self->updating = FALSE;
  self->dirty = FALSE;
  gtk_widget_hide (self->changed_box);
  update_sensitivity (self);
}

/* What the page shows, as the list qubesd is to hold. */
static GVariant *
build_rules (QmFirewallPage *self)
{
  GtkTreeModel *model = GTK_TREE_MODEL (self->rules_store);
  gboolean limit = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->limit_radio));
  GVariantBuilder builder;
  GtkTreeIter iter;
  gboolean valid;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{ss}"));
  for (valid = gtk_tree_model_get_iter_first (model, &iter); valid;
       valid = gtk_tree_model_iter_next (model, &iter))
    {
      g_autoptr(GVariant) rule = NULL;

      gtk_tree_model_get (model, &iter, COL_RULE, &rule, -1);
      g_variant_builder_add_value (&builder, rule);
    }
  if (limit)
    {
      if (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->dns_check)))
        g_variant_builder_add_parsed (&builder, "{'action': 'accept', 'specialtarget': 'dns'}");
      if (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->icmp_check)))
        g_variant_builder_add_parsed (&builder, "{'action': 'accept', 'proto': 'icmp'}");
    }
  g_variant_builder_add_value (&builder, bare_rule (limit ? "drop" : "accept"));
  return g_variant_builder_end (&builder);
}

static void
changed_here (QmFirewallPage *self)
{
  if (self->updating)
    return;
  self->dirty = TRUE;
  update_sensitivity (self);
}

/* ---- reading ---------------------------------------------------------------------------- */

static void
end_load (QmFirewallPage *self,
          const gchar    *error_message)
{
  if (!self->loading)
    return;
  self->loading = FALSE;
  qm_settings_page_loaded (QM_SETTINGS_PAGE (self), error_message);
}

static void
set_available (QmFirewallPage *self,
               const gchar    *why_not)
{
  self->available = why_not == NULL;
  gtk_widget_set_visible (self->absent_label, why_not != NULL);
  gtk_label_set_text (GTK_LABEL (self->absent_label), why_not != NULL ? why_not : "");
  gtk_widget_set_visible (self->content_box, why_not == NULL);
}

static void
rules_read (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  QmFirewallPage *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &error);
  g_autoptr(GVariant) boxed = NULL, rules = NULL;

  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_autofree gchar *remote = g_dbus_error_get_remote_error (error);

          if (g_strcmp0 (remote, "org.freedesktop.DBus.Error.UnknownInterface") == 0
              || g_strcmp0 (remote, "org.freedesktop.DBus.Error.UnknownProperty") == 0
              || g_strcmp0 (remote, "org.freedesktop.DBus.Error.UnknownObject") == 0
              || g_strcmp0 (remote, "org.freedesktop.DBus.Error.UnknownMethod") == 0)
            {
              QmObject *qube = qm_settings_page_get_qube (QM_SETTINGS_PAGE (self));

              set_available (self, qube != NULL && qm_object_has_interface (qube, "AdminVM")
                                     ? _("dom0 has no firewall: it has no network.")
                                     : _("This qube has no firewall."));
              end_load (self, NULL);
            }
          else
            {
              g_autofree gchar *text = qm_error_describe (error);
              g_autofree gchar *full = g_strdup_printf (_("The firewall cannot be read: %s"),
                                                        text != NULL ? text : error->message);

              set_available (self, full);
              end_load (self, NULL);
            }
        }
      g_object_unref (self);
      return;
    }
  g_variant_get (reply, "(v)", &boxed);
  if (!g_variant_is_of_type (boxed, G_VARIANT_TYPE ("aa{ss}")))
    {
      set_available (self, _("This qube has no firewall."));
      end_load (self, NULL);
      g_object_unref (self);
      return;
    }
  rules = g_variant_ref (boxed);
  set_available (self, NULL);
  if (self->loading)
    {
      /* the window's load (at opening, after Apply): what qubesd holds, whatever was here */
      g_clear_pointer (&self->current, g_variant_unref);
      self->current = g_variant_ref (rules);
      show_rules (self, rules);
      end_load (self, NULL);
    }
  else if (self->current == NULL || !rules_equal (rules, self->current))
    {
      /* changed elsewhere */
      g_clear_pointer (&self->current, g_variant_unref);
      self->current = g_variant_ref (rules);
      if (!self->dirty && self->dialogs_open == 0)
        show_rules (self, rules);
      else
        gtk_widget_show (self->changed_box);
    }
  g_object_unref (self);
}

static void
read_rules (QmFirewallPage *self)
{
  if (self->connection == NULL)
    {
      set_available (self, _("This qube has no firewall."));
      end_load (self, NULL);
      return;
    }
  g_dbus_connection_call (self->connection, QM_BUS_NAME, self->path,
                          "org.freedesktop.DBus.Properties", "Get",
                          g_variant_new ("(ss)", QM_FIREWALL_INTERFACE, "Rules"),
                          G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable,
                          rules_read, g_object_ref (self));
}

static gboolean
reload_cb (gpointer user_data)
{
  QmFirewallPage *self = user_data;

  self->reload_id = 0;
  read_rules (self);
  return G_SOURCE_REMOVE;
}

/* The qube's rules changed: an administrator learns it from the broadcast PropertiesChanged,
 * another user from the firewall-changed Event copies. */
static void
on_signal (GDBusConnection *connection,
           const gchar     *sender_name,
           const gchar     *object_path,
           const gchar     *interface_name,
           const gchar     *signal_name,
           GVariant        *parameters,
           gpointer         user_data)
{
  QmFirewallPage *self = user_data;

  if (g_strcmp0 (object_path, self->path) != 0)
    return;
  if (g_str_equal (signal_name, "Event"))
    {
      const gchar *name;

      if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(tssa(ss))")))
        return;
      g_variant_get_child (parameters, 2, "&s", &name);
      if (!g_str_equal (name, "firewall-changed"))
        return;
    }
  if (self->reload_id == 0)
    self->reload_id = g_timeout_add (50, reload_cb, self);
}

/* A qube without a net qube has no traffic for its rules to act on: said, as upstream's tab
 * says it, and kept current (the client's "changed"). */
static void
update_netvm_note (QmFirewallPage *self)
{
  QmObject *qube = qm_settings_page_get_qube (QM_SETTINGS_PAGE (self));
  const gchar *netvm = qube != NULL ? qm_object_get_string (qube, "QubesVM", "Netvm") : NULL;

  gtk_widget_set_visible (self->netvm_label,
                          netvm != NULL && qm_client_domain_name (self->client, netvm) == NULL);
}

static void
on_client_changed (QmClient       *client,
                   QmFirewallPage *self)
{
  GHashTable *changed = qm_client_get_changed_domains (client);

  if (changed == NULL || g_hash_table_contains (changed, self->path))
    update_netvm_note (self);
}

/* ---- changing --------------------------------------------------------------------------- */

static void
on_mode_toggled (QmFirewallPage *self)
{
  changed_here (self);
}

static void
on_toggle_toggled (QmFirewallPage *self)
{
  changed_here (self);
}

static void
on_rule_added (QmFirewallRuleDialog *dialog,
               GVariant             *rule,
               QmFirewallPage       *self)
{
  GtkTreeIter iter;

  gtk_list_store_append (self->rules_store, &iter);
  set_row (self, &iter, rule);
  if (lookup (rule, "expire") != NULL)
    watch_expiry (self);
  gtk_tree_selection_select_iter (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->rules_view)),
                                  &iter);
  changed_here (self);
}

static void
on_rule_edited (QmFirewallRuleDialog *dialog,
                GVariant             *rule,
                QmFirewallPage       *self)
{
  GtkTreeRowReference *ref = g_object_get_data (G_OBJECT (dialog), "qm-row");
  g_autoptr(GtkTreePath) path = ref != NULL ? gtk_tree_row_reference_get_path (ref) : NULL;
  GtkTreeIter iter;

  /* the row went meanwhile (Show the New Rules): the edit becomes a new rule */
  if (path == NULL || !gtk_tree_model_get_iter (GTK_TREE_MODEL (self->rules_store), &iter, path))
    {
      on_rule_added (dialog, rule, self);
      return;
    }
  set_row (self, &iter, rule);
  if (lookup (rule, "expire") != NULL)
    watch_expiry (self);
  changed_here (self);
}

static GtkWindow *
toplevel (QmFirewallPage *self)
{
  GtkWidget *top = gtk_widget_get_toplevel (GTK_WIDGET (self));

  return GTK_IS_WINDOW (top) ? GTK_WINDOW (top) : NULL;
}

static void
on_dialog_closing (QmFirewallPage *self)
{
  self->dialogs_open--;
  /* cancelled, with news from elsewhere kept back meanwhile: nothing of the user's to keep */
  if (self->dialogs_open == 0 && !self->dirty && self->current != NULL
      && gtk_widget_get_visible (self->changed_box))
    show_rules (self, self->current);
}

static void
watch_dialog (QmFirewallPage       *self,
              QmFirewallRuleDialog *dialog)
{
  self->dialogs_open++;
  g_signal_connect_object (dialog, "closing", G_CALLBACK (on_dialog_closing), self,
                           G_CONNECT_SWAPPED);
}

static void
on_add_clicked (QmFirewallPage *self)
{
  QmFirewallRuleDialog *dialog = qm_firewall_rule_dialog_new (toplevel (self), NULL);

  watch_dialog (self, dialog);
  g_signal_connect_object (dialog, "rule-chosen", G_CALLBACK (on_rule_added), self, 0);
  gtk_widget_show (GTK_WIDGET (dialog));
}

static void
on_edit_clicked (QmFirewallPage *self)
{
  g_autoptr(GVariant) rule = NULL;
  g_autoptr(GtkTreePath) path = NULL;
  QmFirewallRuleDialog *dialog;
  GtkTreeIter iter;

  if (!selected_row (self, &iter))
    return;
  gtk_tree_model_get (GTK_TREE_MODEL (self->rules_store), &iter, COL_RULE, &rule, -1);
  path = gtk_tree_model_get_path (GTK_TREE_MODEL (self->rules_store), &iter);
  dialog = qm_firewall_rule_dialog_new (toplevel (self), rule);
  g_object_set_data_full (G_OBJECT (dialog), "qm-row",
                          gtk_tree_row_reference_new (GTK_TREE_MODEL (self->rules_store), path),
                          (GDestroyNotify) gtk_tree_row_reference_free);
  watch_dialog (self, dialog);
  g_signal_connect_object (dialog, "rule-chosen", G_CALLBACK (on_rule_edited), self, 0);
  gtk_widget_show (GTK_WIDGET (dialog));
}

static void
on_row_activated (QmFirewallPage *self)
{
  on_edit_clicked (self);
}

static void
on_remove_clicked (QmFirewallPage *self)
{
  GtkTreeIter iter;

  if (!selected_row (self, &iter))
    return;
  gtk_list_store_remove (self->rules_store, &iter);
  changed_here (self);
}

static void
move (QmFirewallPage *self,
      gboolean        up)
{
  GtkTreeModel *model = GTK_TREE_MODEL (self->rules_store);
  GtkTreeIter iter, other;

  if (!selected_row (self, &iter))
    return;
  other = iter;
  if (!(up ? gtk_tree_model_iter_previous (model, &other) : gtk_tree_model_iter_next (model, &other)))
    return;
  gtk_list_store_swap (self->rules_store, &iter, &other);
  changed_here (self);
}

static void
on_up_clicked (QmFirewallPage *self)
{
  move (self, TRUE);
}

static void
on_down_clicked (QmFirewallPage *self)
{
  move (self, FALSE);
}

static void
on_discard_clicked (QmFirewallPage *self)
{
  if (self->current != NULL)
    show_rules (self, self->current);
}

/* ---- the page --------------------------------------------------------------------------- */

/* The window's load, at opening and after each Apply: the first one also starts following the
 * qube's changes. */
static void
qm_firewall_page_load (QmSettingsPage *page)
{
  QmFirewallPage *self = QM_FIREWALL_PAGE (page);

  if (self->client == NULL)
    {
      self->client = g_object_ref (qm_settings_page_get_client (page));
      self->path = g_strdup (qm_settings_page_get_qube_path (page));
      self->cancellable = g_object_ref (qm_settings_page_get_cancellable (page));
      self->connection = qm_client_get_connection (self->client);
      if (self->connection != NULL)
        {
          g_object_ref (self->connection);
          self->signal_ids[0] = g_dbus_connection_signal_subscribe (
            self->connection, QM_BUS_NAME, "org.freedesktop.DBus.Properties",
            "PropertiesChanged", self->path, QM_FIREWALL_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE,
            on_signal, self, NULL);
          /* the client has subscribed to the events addressed to this connection */
          self->signal_ids[1] = g_dbus_connection_signal_subscribe (
            self->connection, QM_BUS_NAME, "org.qubes_os.Admin1.Subscription", "Event",
            self->path, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, self, NULL);
          self->signal_ids[2] = g_dbus_connection_signal_subscribe (
            self->connection, QM_BUS_NAME, "org.qubes_os.Admin1.Domain", "Event", self->path,
            NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, self, NULL);
        }
    }
  if (!self->watching_client)
    {
      self->watching_client = TRUE;
      g_signal_connect_object (self->client, "changed", G_CALLBACK (on_client_changed), self, 0);
    }
  update_netvm_note (self);
  if (self->loading)
    return; /* the read on its way ends this load too */
  self->loading = TRUE;
  read_rules (self);
}

static void
qm_firewall_page_apply (QmSettingsPage  *page,
                        QmSettingsCalls *calls)
{
  QmFirewallPage *self = QM_FIREWALL_PAGE (page);
  g_autoptr(GVariant) rules = NULL;

  if (!self->available || !self->dirty)
    return;
  rules = g_variant_ref_sink (build_rules (self));
  if (self->current != NULL && rules_equal (rules, self->current))
    return;
  qm_settings_calls_add (calls, NULL, QM_FIREWALL_INTERFACE, "SetRules",
                         g_variant_new ("(@aa{ss})", rules), _("Cannot change the firewall"));
}

static void
qm_firewall_page_dispose (GObject *object)
{
  QmFirewallPage *self = QM_FIREWALL_PAGE (object);

  g_cancellable_cancel (self->cancellable);
  for (guint i = 0; i < G_N_ELEMENTS (self->signal_ids); i++)
    if (self->signal_ids[i] != 0)
      g_dbus_connection_signal_unsubscribe (self->connection, self->signal_ids[i]);
  memset (self->signal_ids, 0, sizeof self->signal_ids);
  g_clear_object (&self->connection);
  g_clear_handle_id (&self->reload_id, g_source_remove);
  g_clear_handle_id (&self->tick_id, g_source_remove);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_firewall_page_parent_class)->dispose (object);
}

static void
qm_firewall_page_finalize (GObject *object)
{
  QmFirewallPage *self = QM_FIREWALL_PAGE (object);

  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->current, g_variant_unref);
  g_free (self->path);
  G_OBJECT_CLASS (qm_firewall_page_parent_class)->finalize (object);
}

static void
qm_firewall_page_init (QmFirewallPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  g_signal_connect_swapped (gtk_tree_view_get_selection (GTK_TREE_VIEW (self->rules_view)),
                            "changed", G_CALLBACK (update_sensitivity), self);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->allow_radio), TRUE);
  update_sensitivity (self);
}

static void
qm_firewall_page_class_init (QmFirewallPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  QmSettingsPageClass *page_class = QM_SETTINGS_PAGE_CLASS (klass);

  object_class->dispose = qm_firewall_page_dispose;
  object_class->finalize = qm_firewall_page_finalize;
  page_class->load = qm_firewall_page_load;
  page_class->apply = qm_firewall_page_apply;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-firewall-page.ui");
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, absent_label);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, content_box);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, allow_radio);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, limit_radio);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, dns_check);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, icmp_check);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, hint_label);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, netvm_label);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, rules_store);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, rules_view);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, add_button);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, edit_button);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, remove_button);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, up_button);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, down_button);
  gtk_widget_class_bind_template_child (widget_class, QmFirewallPage, changed_box);
  gtk_widget_class_bind_template_callback (widget_class, on_mode_toggled);
  gtk_widget_class_bind_template_callback (widget_class, on_toggle_toggled);
  gtk_widget_class_bind_template_callback (widget_class, on_row_activated);
  gtk_widget_class_bind_template_callback (widget_class, on_add_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_edit_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_remove_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_up_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_down_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_discard_clicked);
}
