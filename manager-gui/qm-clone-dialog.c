/* qm-clone-dialog.c: the dialog that clones a qube
 *
 * A clone is made by the client, one call after another, each allowing interactive
 * authorization: GetAllProperties of the source and its firewall rules (Properties.Get: the
 * snapshot does not carry them); CreateDomain with its class, label and template;
 * SetProperty of every property set explicitly on the source (is_default false) that a caller
 * may set (not read-only in the interface XML, not write-once); SetFeature of its features;
 * AddTag of its tags but created-by-*; Firewall.SetRules with its firewall rules (unless they
 * are the default, allow all); then, for each volume saved on stop, Volume.CloneFrom on
 * the source's volume for a token and Volume.CloneTo with it on the clone's. The progress bar
 * follows the steps (and the bytes copied, from the clone's volume's ImportBytesDone). When a
 * step fails or the user stops, the half-made clone is removed and the error stays in the
 * dialog.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "qm-clone-dialog.h"
#include "qm-error.h"

#define FIREWALL_INTERFACE "org.qubes_os.Admin1.Firewall"

typedef enum
{
  STEP_CALL,    /* a method on the clone */
  STEP_VOLUME,  /* CloneFrom on the source's volume, then CloneTo on the clone's */
} StepKind;

typedef struct
{
  StepKind  kind;
  gchar    *interface_name;
  gchar    *method;
  GVariant *parameters;
  gchar    *volume;       /* STEP_VOLUME: its name */
  gchar    *source_path;  /* STEP_VOLUME: the source's volume */
  gchar    *what;         /* shown while it runs, and in the error */
} Step;

struct _QmCloneDialog
{
  GtkDialog     parent_instance;

  QmClient     *client;
  GCancellable *cancellable;   /* the dialog's life: cancels the replies' handling */
  gchar        *source_path;
  gchar        *source_name;
  gchar        *klass;

  /* template children */
  GtkWidget    *info_bar;
  GtkWidget    *error_label;
  GtkWidget    *intro_label;
  GtkWidget    *name_entry;
  GtkWidget    *progress;
  GtkWidget    *clone_button;

  gboolean      busy;
  gboolean      stop;          /* the user asked to stop: the clone is removed */
  gchar        *clone_name;
  gchar        *clone_path;    /* set once CreateDomain answered */
  GQueue        steps;
  guint         n_steps;
  guint         n_done;
  gchar        *current_volume; /* the clone's volume CloneTo fills */
  guint         progress_watch;
};

G_DEFINE_TYPE (QmCloneDialog, qm_clone_dialog, GTK_TYPE_DIALOG)

static void
step_free (Step *step)
{
  g_free (step->interface_name);
  g_free (step->method);
  if (step->parameters != NULL)
    g_variant_unref (step->parameters);
  g_free (step->volume);
  g_free (step->source_path);
  g_free (step->what);
  g_free (step);
}

static void
add_step (QmCloneDialog *self,
          const gchar   *interface_name,
          const gchar   *method,
          GVariant      *parameters,
          gchar         *what)
{
  Step *step = g_new0 (Step, 1);

  step->kind = STEP_CALL;
  step->interface_name = g_strdup (interface_name);
  step->method = g_strdup (method);
  step->parameters = g_variant_ref_sink (parameters);
  step->what = what;
  g_queue_push_tail (&self->steps, step);
}

static void
show_error (QmCloneDialog *self,
            const gchar   *text)
{
  gtk_label_set_text (GTK_LABEL (self->error_label), text);
  gtk_widget_show (self->info_bar);
}

static gboolean
name_taken (QmCloneDialog *self,
            const gchar   *name)
{
  return qm_client_lookup_domain_by_name (self->client, name) != NULL;
}

static void
update_sensitivity (QmCloneDialog *self)
{
  const gchar *name = gtk_entry_get_text (GTK_ENTRY (self->name_entry));
  gboolean valid = name[0] != '\0' && strlen (name) <= 31 && g_ascii_isalpha (name[0]);
  const gchar *p;

  for (p = name; valid && *p != '\0'; p++)
    valid = g_ascii_isalnum (*p) || *p == '-' || *p == '_' || *p == '.';
  gtk_widget_set_sensitive (self->clone_button, !self->busy && valid && !name_taken (self, name));
  gtk_widget_set_sensitive (self->name_entry, !self->busy);
}

static void
set_progress (QmCloneDialog *self,
              const gchar   *text,
              gdouble        within_step)
{
  gdouble fraction = self->n_steps > 0
                     ? (self->n_done + CLAMP (within_step, 0.0, 1.0)) / (self->n_steps + 1.0)
                     : 0.0;

  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->progress), fraction);
  if (text != NULL)
    gtk_progress_bar_set_text (GTK_PROGRESS_BAR (self->progress), text);
}

/* ---- the end ------------------------------------------------------------------------------ */

static void
finish (QmCloneDialog *self)
{
  gint width;

  self->busy = FALSE;
  g_queue_clear_full (&self->steps, (GDestroyNotify) step_free);
  g_clear_pointer (&self->clone_path, g_free);
  gtk_widget_hide (self->progress);
  /* A mapped window keeps its size when its content shrinks: whether it had grown for the
   * progress bar and the error at once depended on when a frame fell between the two. */
  gtk_window_get_size (GTK_WINDOW (self), &width, NULL);
  gtk_window_resize (GTK_WINDOW (self), width, 1);
  update_sensitivity (self);
}

static void
removed (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  QmCloneDialog *self = QM_CLONE_DIALOG (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);

  if (!g_cancellable_is_cancelled (self->cancellable))
    {
      if (reply == NULL)
        {
          g_autofree gchar *text = qm_error_describe (error);
          g_autofree gchar *full = g_strdup_printf (
            _("%s\nThe partial clone %s could not be removed: %s"),
            gtk_label_get_text (GTK_LABEL (self->error_label)), self->clone_name,
            text != NULL ? text : _("not authorized"));

          show_error (self, full);
        }
      finish (self);
    }
  g_object_unref (self);
}

/* Stops with an error (NULL when the user stopped or dismissed a prompt) and removes the
 * half-made clone. */
static void
fail (QmCloneDialog *self,
      const gchar   *what,
      const GError  *error)
{
  g_autofree gchar *text = qm_error_describe (error);

  if (text != NULL)
    {
      g_autofree gchar *full = g_strdup_printf ("%s: %s", what, text);

      show_error (self, full);
    }
  else if (self->stop)
    show_error (self, _("Cloning stopped."));
  else
    gtk_widget_hide (self->info_bar);

  if (self->clone_path == NULL)
    {
      finish (self);
      return;
    }
  set_progress (self, _("Removing the partial clone\u2026"), 0);
  qm_client_call (self->client, self->clone_path, "org.qubes_os.Admin1.Domain", "Remove", NULL,
                  NULL, removed, g_object_ref (self));
}

/* ---- the steps ---------------------------------------------------------------------------- */

static void run_next_step (QmCloneDialog *self);

static void
unwatch_progress (QmCloneDialog *self)
{
  if (self->progress_watch != 0)
    g_dbus_connection_signal_unsubscribe (qm_client_get_connection (self->client),
                                          self->progress_watch);
  self->progress_watch = 0;
  g_clear_pointer (&self->current_volume, g_free);
}

static void
on_volume_progress (GDBusConnection *connection,
                    const gchar     *sender_name,
                    const gchar     *object_path,
                    const gchar     *interface_name,
                    const gchar     *signal_name,
                    GVariant        *parameters,
                    gpointer         user_data)
{
  QmCloneDialog *self = QM_CLONE_DIALOG (user_data);
  g_autoptr(GVariant) changed = NULL;
  const gchar *iface;
  guint64 done = 0, total = 0;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;
  g_variant_get (parameters, "(&s@a{sv}as)", &iface, &changed, NULL);
  if (g_strcmp0 (iface, "org.qubes_os.Admin1.Volume") != 0
      || !g_variant_lookup (changed, "ImportBytesDone", "t", &done))
    return;
  if (!g_variant_lookup (changed, "ImportBytesTotal", "t", &total))
    {
      QmObject *volume = qm_client_lookup_volume (self->client, self->clone_path,
                                                  self->current_volume);

      total = volume != NULL ? qm_object_get_uint64 (volume, "Volume", "ImportBytesTotal") : 0;
    }
  if (total > 0)
    set_progress (self, NULL, (gdouble) done / (gdouble) total);
}

static void
step_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  QmCloneDialog *self = QM_CLONE_DIALOG (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  Step *step;

  if (g_cancellable_is_cancelled (self->cancellable))
    {
      g_object_unref (self);
      return;
    }
  unwatch_progress (self);
  step = g_queue_pop_head (&self->steps);
  if (reply == NULL || self->stop)
    {
      fail (self, step->what, error);
      step_free (step);
      g_object_unref (self);
      return;
    }
  step_free (step);
  self->n_done++;
  run_next_step (self);
  g_object_unref (self);
}

static void
token_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  QmCloneDialog *self = QM_CLONE_DIALOG (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  Step *step;
  const gchar *token;
  g_autofree gchar *encoded = NULL;
  g_autofree gchar *volume_path = NULL;

  if (g_cancellable_is_cancelled (self->cancellable))
    {
      g_object_unref (self);
      return;
    }
  step = g_queue_peek_head (&self->steps);
  if (reply == NULL || self->stop)
    {
      g_queue_pop_head (&self->steps);
      fail (self, step->what, error);
      step_free (step);
      g_object_unref (self);
      return;
    }
  g_variant_get (reply, "(&s)", &token);
  encoded = qm_path_encode (step->volume);
  volume_path = g_strdup_printf ("%s/volume/%s", self->clone_path, encoded);
  self->current_volume = g_strdup (step->volume);
  self->progress_watch = g_dbus_connection_signal_subscribe (
    qm_client_get_connection (self->client), QM_BUS_NAME, "org.freedesktop.DBus.Properties",
    "PropertiesChanged", volume_path, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_volume_progress, self,
    NULL);
  qm_client_call (self->client, volume_path, "org.qubes_os.Admin1.Volume", "CloneTo",
                  g_variant_new ("(s)", token), self->cancellable, step_done,
                  g_object_ref (self));
  g_object_unref (self);
}

static void
run_next_step (QmCloneDialog *self)
{
  Step *step = g_queue_peek_head (&self->steps);

  if (step == NULL)
    {
      /* done */
      gtk_widget_destroy (GTK_WIDGET (self));
      return;
    }
  set_progress (self, step->what, 0);
  if (step->kind == STEP_VOLUME)
    qm_client_call (self->client, step->source_path, "org.qubes_os.Admin1.Volume", "CloneFrom",
                    NULL, self->cancellable, token_done, g_object_ref (self));
  else
    qm_client_call (self->client, self->clone_path, step->interface_name, step->method,
                    g_variant_ref (step->parameters), self->cancellable, step_done,
                    g_object_ref (self));
}

/* ---- planning --------------------------------------------------------------------------- */

/* The one rule of a qube without firewall.xml: allow everything. */
static gboolean
default_firewall (GVariant *rules)
{
  g_autoptr(GVariant) rule = g_variant_get_child_value (rules, 0);
  const gchar *action;

  return g_variant_n_children (rule) == 1 && g_variant_lookup (rule, "action", "&s", &action)
         && g_str_equal (action, "accept");
}

/* Everything to do on the clone once it exists. */
static void
plan_steps (QmCloneDialog *self,
            GVariant      *properties,
            GVariant      *rules)
{
  static const gchar *const given[] = { "label", "template", NULL };
  QmObject *source = qm_client_lookup_domain (self->client, self->source_path);
  GVariant *features = source != NULL ? qm_object_get_value (source, "Domain", "Features",
                                                             G_VARIANT_TYPE ("a{ss}"))
                                      : NULL;
  GVariant *tags_value = source != NULL ? qm_object_get_value (source, "Domain", "Tags",
                                                               G_VARIANT_TYPE_STRING_ARRAY)
                                        : NULL;
  g_autofree const gchar **tags = tags_value != NULL ? g_variant_get_strv (tags_value, NULL)
                                                     : NULL;
  GList *volumes, *l;
  GVariantIter iter;
  const gchar *name, *type, *value;
  gboolean is_default;
  guint i;

  g_variant_iter_init (&iter, properties);
  while (g_variant_iter_next (&iter, "(&s&sb&s)", &name, &type, &is_default, &value))
    {
      if (is_default || g_strv_contains (given, name) || !qm_property_is_writable (name))
        continue;
      add_step (self, "org.qubes_os.Admin1.Domain", "SetProperty",
                g_variant_new ("(ss)", name, value),
                g_strdup_printf (_("Setting the property %s"), name));
    }
  if (features != NULL)
    {
      g_variant_iter_init (&iter, features);
      while (g_variant_iter_next (&iter, "{&s&s}", &name, &value))
        add_step (self, "org.qubes_os.Admin1.Domain", "SetFeature",
                  g_variant_new ("(ss)", name, value),
                  g_strdup_printf (_("Setting the feature %s"), name));
    }
  for (i = 0; tags != NULL && tags[i] != NULL; i++)
    if (!g_str_has_prefix (tags[i], "created-by-"))
      add_step (self, "org.qubes_os.Admin1.Domain", "AddTag", g_variant_new ("(s)", tags[i]),
                g_strdup_printf (_("Adding the tag %s"), tags[i]));

  /* The firewall, as upstream's clone copies it (admin.vm.firewall.Get, then Set): unless it is
   * the default (allow all), which the clone has already, so that copying a qube needs the
   * firewall action only when there is something to copy. Every rule expired: drop all. */
  if (rules != NULL && !(g_variant_n_children (rules) == 1 && default_firewall (rules)))
    add_step (self, FIREWALL_INTERFACE, "SetRules",
              g_variant_n_children (rules) > 0
                ? g_variant_new ("(@aa{ss})", rules)
                : g_variant_new_parsed ("([{'action': 'drop'}],)"),
              g_strdup (_("Copying the firewall rules")));

  volumes = qm_client_get_volumes (self->client, self->source_path);
  for (l = volumes; l != NULL; l = l->next)
    {
      Step *step;

      if (!qm_object_get_boolean (l->data, "Volume", "SaveOnStop"))
        continue;
      step = g_new0 (Step, 1);
      step->kind = STEP_VOLUME;
      step->volume = g_strdup (qm_object_get_string (l->data, "Volume", "Name"));
      step->source_path = g_strdup (qm_object_get_path (l->data));
      step->what = g_strdup_printf (_("Copying the volume %s"), step->volume);
      g_queue_push_tail (&self->steps, step);
    }
  g_list_free_full (volumes, g_object_unref);
  self->n_steps = g_queue_get_length (&self->steps) + 1;
  self->n_done = 1;
}

typedef struct
{
  QmCloneDialog *self;
  GVariant      *properties;
  GVariant      *rules; /* aa{ss}, or NULL: the source has no firewall */
} CreateData;

static void
created (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  CreateData *data = user_data;
  QmCloneDialog *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);

  if (g_cancellable_is_cancelled (self->cancellable))
    goto out;
  if (reply == NULL)
    {
      g_autofree gchar *what = g_strdup_printf (_("Cannot create %s"), self->clone_name);

      fail (self, what, error);
      goto out;
    }
  g_variant_get (reply, "(o)", &self->clone_path);
  if (self->stop)
    {
      fail (self, NULL, NULL);
      goto out;
    }
  plan_steps (self, data->properties, data->rules);
  run_next_step (self);

out:
  g_variant_unref (data->properties);
  g_clear_pointer (&data->rules, g_variant_unref);
  g_object_unref (data->self);
  g_free (data);
}

static const gchar *
lookup_property (GVariant    *properties,
                 const gchar *wanted)
{
  GVariantIter iter;
  const gchar *name, *type, *value;
  gboolean is_default;

  g_variant_iter_init (&iter, properties);
  while (g_variant_iter_next (&iter, "(&s&sb&s)", &name, &type, &is_default, &value))
    if (g_str_equal (name, wanted))
      return value;
  return NULL;
}

/* Creates the clone once the source's properties and firewall rules are read. */
static void
create_clone (CreateData *data)
{
  QmCloneDialog *self = data->self;
  const gchar *label = lookup_property (data->properties, "label");
  const gchar *template_name = lookup_property (data->properties, "template");

  set_progress (self, _("Creating the clone"), 0);
  qm_client_call (self->client, QM_ROOT_PATH, "org.qubes_os.Admin1.Manager", "CreateDomain",
                  g_variant_new ("(ssss@a{ss})", self->klass, self->clone_name,
                                 label != NULL ? label : "red",
                                 template_name != NULL ? template_name : "",
                                 g_variant_new_array (G_VARIANT_TYPE ("{ss}"), NULL, 0)),
                  self->cancellable, created, data);
}

/* Fails the clone: what could not be read of the source. */
static void
read_failed (CreateData   *data,
             const GError *error)
{
  QmCloneDialog *self = data->self;
  g_autofree gchar *what = g_strdup_printf (_("Cannot read the properties of %s"),
                                            self->source_name);

  fail (self, what, error);
  g_clear_pointer (&data->properties, g_variant_unref);
  g_clear_pointer (&data->rules, g_variant_unref);
  g_object_unref (self);
  g_free (data);
}

/* The source's firewall rules, read when the clone is made (the snapshot does not carry them). */
static void
rules_read (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  CreateData *data = user_data;
  QmCloneDialog *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  g_autoptr(GVariant) boxed = NULL;

  if (g_cancellable_is_cancelled (self->cancellable))
    {
      g_clear_pointer (&data->properties, g_variant_unref);
      g_object_unref (self);
      g_free (data);
      return;
    }
  if (reply == NULL || self->stop)
    {
      read_failed (data, error);
      return;
    }
  g_variant_get (reply, "(v)", &boxed);
  if (!g_variant_is_of_type (boxed, G_VARIANT_TYPE ("aa{ss}")))
    {
      g_autoptr(GError) bad = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                                   "Rules: not aa{ss}");

      read_failed (data, bad);
      return;
    }
  data->rules = g_steal_pointer (&boxed);
  create_clone (data);
}

static void
properties_read (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  QmCloneDialog *self = QM_CLONE_DIALOG (user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);
  QmObject *object;
  CreateData *data;

  if (g_cancellable_is_cancelled (self->cancellable))
    {
      g_object_unref (self);
      return;
    }
  data = g_new0 (CreateData, 1);
  data->self = self;  /* takes the reference */
  if (reply == NULL || self->stop)
    {
      read_failed (data, error);
      return;
    }
  data->properties = g_variant_get_child_value (reply, 0);
  object = qm_client_lookup_domain (self->client, self->source_path);
  if (object == NULL || !qm_object_has_interface (object, "Firewall"))
    {
      create_clone (data);
      return;
    }
  qm_client_call (self->client, self->source_path, "org.freedesktop.DBus.Properties", "Get",
                  g_variant_new ("(ss)", FIREWALL_INTERFACE, "Rules"), self->cancellable,
                  rules_read, data);
}

static void
start_clone (QmCloneDialog *self)
{
  g_free (self->clone_name);
  self->clone_name = g_strdup (gtk_entry_get_text (GTK_ENTRY (self->name_entry)));
  self->busy = TRUE;
  self->stop = FALSE;
  self->n_steps = 1;
  self->n_done = 0;
  gtk_widget_hide (self->info_bar);
  gtk_widget_show (self->progress);
  set_progress (self, _("Reading the source qube"), 0);
  update_sensitivity (self);
  qm_client_call (self->client, self->source_path, "org.qubes_os.Admin1.Domain",
                  "GetAllProperties", NULL, self->cancellable, properties_read,
                  g_object_ref (self));
}

/* Clone starts; anything else (Cancel, Escape, closing the window, which GtkDialog turns into
 * GTK_RESPONSE_DELETE_EVENT) closes, or while cloning stops: the partial clone must be removed
 * first. */
static void
qm_clone_dialog_response (GtkDialog *dialog,
                          gint       response)
{
  QmCloneDialog *self = QM_CLONE_DIALOG (dialog);

  if (response == GTK_RESPONSE_ACCEPT)
    {
      if (!self->busy)
        start_clone (self);
      return;
    }
  if (self->busy)
    {
      /* The step running finishes first (a volume's copy is asked to stop); then the partial
       * clone is removed. */
      self->stop = TRUE;
      if (self->current_volume != NULL && self->clone_path != NULL)
        {
          g_autofree gchar *encoded = qm_path_encode (self->current_volume);
          g_autofree gchar *path = g_strdup_printf ("%s/volume/%s", self->clone_path, encoded);

          qm_client_call (self->client, path, "org.qubes_os.Admin1.Volume", "CancelImport", NULL,
                          NULL, NULL, NULL);
        }
      set_progress (self, _("Stopping\u2026"), 0);
      return;
    }
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

/* ---- construction --------------------------------------------------------------------------- */

QmCloneDialog *
qm_clone_dialog_new (GtkWindow   *parent,
                     QmClient    *client,
                     const gchar *source_path)
{
  QmObject *object = qm_client_lookup_domain (client, source_path);
  QmCloneDialog *self;
  g_autofree gchar *text = NULL;
  g_autofree gchar *suggestion = NULL;
  guint n;

  if (object == NULL)
    return NULL;
  /* use-header-bar is a construct property: the template cannot set it */
  self = g_object_new (QM_TYPE_CLONE_DIALOG, "use-header-bar", FALSE, "transient-for", parent,
                       NULL);
  self->client = g_object_ref (client);
  self->source_path = g_strdup (source_path);
  self->source_name = g_strdup (qm_object_get_string (object, "Domain", "Name"));
  self->klass = g_strdup (qm_object_get_string (object, "Domain", "Klass"));

  /* TRANSLATORS: %s is the qube cloned */
  text = g_strdup_printf (_("A copy of %s: its properties, features, tags, firewall rules and "
                            "the data of its disks."), self->source_name);
  gtk_label_set_text (GTK_LABEL (self->intro_label), text);

  /* A free name to start from: NAME-clone, NAME-clone-2, ... */
  suggestion = g_strdup_printf ("%s-clone", self->source_name);
  for (n = 2; name_taken (self, suggestion) && n < 1000; n++)
    {
      g_free (suggestion);
      suggestion = g_strdup_printf ("%s-clone-%u", self->source_name, n);
    }
  gtk_entry_set_text (GTK_ENTRY (self->name_entry), suggestion);
  update_sensitivity (self);
  return self;
}

static void
qm_clone_dialog_dispose (GObject *object)
{
  QmCloneDialog *self = QM_CLONE_DIALOG (object);

  g_cancellable_cancel (self->cancellable);
  if (self->client != NULL)
    unwatch_progress (self);
  g_queue_clear_full (&self->steps, (GDestroyNotify) step_free);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (qm_clone_dialog_parent_class)->dispose (object);
}

static void
qm_clone_dialog_finalize (GObject *object)
{
  QmCloneDialog *self = QM_CLONE_DIALOG (object);

  g_clear_object (&self->cancellable);
  g_free (self->source_path);
  g_free (self->source_name);
  g_free (self->klass);
  g_free (self->clone_name);
  g_free (self->clone_path);
  g_free (self->current_volume);
  G_OBJECT_CLASS (qm_clone_dialog_parent_class)->finalize (object);
}

static void
qm_clone_dialog_init (QmCloneDialog *self)
{
  self->cancellable = g_cancellable_new ();
  g_queue_init (&self->steps);
  gtk_widget_init_template (GTK_WIDGET (self));
  qm_error_name_info_bar_close (GTK_INFO_BAR (self->info_bar));
}

static void
qm_clone_dialog_class_init (QmCloneDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkDialogClass *dialog_class = GTK_DIALOG_CLASS (klass);

  object_class->dispose = qm_clone_dialog_dispose;
  object_class->finalize = qm_clone_dialog_finalize;
  dialog_class->response = qm_clone_dialog_response;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-clone-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, QmCloneDialog, info_bar);
  gtk_widget_class_bind_template_child (widget_class, QmCloneDialog, error_label);
  gtk_widget_class_bind_template_child (widget_class, QmCloneDialog, intro_label);
  gtk_widget_class_bind_template_child (widget_class, QmCloneDialog, name_entry);
  gtk_widget_class_bind_template_child (widget_class, QmCloneDialog, progress);
  gtk_widget_class_bind_template_child (widget_class, QmCloneDialog, clone_button);
  gtk_widget_class_bind_template_callback (widget_class, update_sensitivity);
}
