/* qm-log-window.c: the journal entries about one qube
 *
 * qubesd writes each line about a qube with the journal field QUBES_VM=<qube> (lib/util/log.c,
 * log_qube_*()), so the entries about a qube are `journalctl QUBES_VM=<qube>`: this window reads
 * them with sd-journal, the last MAX_ENTRIES, and follows the journal while it is open (the
 * journal's inotify descriptor in the main loop). Reading the journal is a local read of files,
 * as journalctl does, not a call to qubesd; it takes a few milliseconds and is done in the main
 * thread.
 *
 * The journal has these entries only where qubesd runs under journald (its systemd unit); where
 * it does not (the demo and the tests run it from a terminal) it writes its lines to its
 * standard error, and the window says so instead of showing an empty list. It also says when
 * the user may read only their own journal (not root, nor in the groups systemd-journal, adm or
 * wheel).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "qm-log-window.h"

/* Entries shown at most: the last ones when the window opens, the oldest go as new ones come. */
#define MAX_ENTRIES 2000

enum
{
  COL_TIME,
  COL_PRIORITY,
  COL_MESSAGE,
};

struct _QmLogWindow
{
  GtkWindow     parent_instance;

  gchar        *qube;
  gchar        *match;        /* QUBES_VM=<qube> */
  sd_journal   *journal;
  guint         watch_id;     /* the journal's descriptor in the main loop */
  guint         timeout_id;   /* sd_journal_get_timeout (), where inotify is not enough */
  guint         count;        /* entries in the list */

  /* template children */
  GtkWidget    *info_bar;
  GtkWidget    *info_label;
  GtkWidget    *scrolled;
  GtkWidget    *tree_view;
  GtkWidget    *status_label;
  GtkListStore *entries;
};

G_DEFINE_TYPE (QmLogWindow, qm_log_window, GTK_TYPE_WINDOW)

static void
show_info (QmLogWindow    *self,
           GtkMessageType  type,
           const gchar    *text)
{
  gtk_info_bar_set_message_type (GTK_INFO_BAR (self->info_bar), type);
  gtk_label_set_text (GTK_LABEL (self->info_label), text);
  gtk_widget_set_visible (self->info_bar, text != NULL);
}

static const gchar *
priority_text (gint priority)
{
  static const gchar *const texts[] = {
    N_("emergency"), N_("alert"), N_("critical"), N_("error"),
    N_("warning"), N_("notice"), N_("info"), N_("debug"),
  };

  return priority >= 0 && priority < (gint) G_N_ELEMENTS (texts) ? _(texts[priority]) : "";
}

/* A field's value as text (the journal may hold any bytes), or NULL. */
static gchar *
entry_field (sd_journal  *journal,
             const gchar *field)
{
  const void *data;
  size_t length, prefix = strlen (field) + 1;

  if (sd_journal_get_data (journal, field, &data, &length) < 0 || length < prefix)
    return NULL;
  return g_utf8_make_valid ((const gchar *) data + prefix, (gssize) (length - prefix));
}

/* The entry the journal is at, at the end of the list. */
static void
append_entry (QmLogWindow *self)
{
  g_autofree gchar *message = entry_field (self->journal, "MESSAGE");
  g_autofree gchar *priority = entry_field (self->journal, "PRIORITY");
  g_autofree gchar *time_text = NULL;
  g_autoptr(GDateTime) time = NULL;
  uint64_t usec = 0;
  GtkTreeIter first;

  if (message == NULL)
    return;
  if (sd_journal_get_realtime_usec (self->journal, &usec) >= 0)
    time = g_date_time_new_from_unix_local ((gint64) (usec / G_USEC_PER_SEC));
  time_text = time != NULL ? g_date_time_format (time, "%Y-%m-%d %H:%M:%S") : g_strdup ("");
  gtk_list_store_insert_with_values (self->entries, NULL, -1,
                                     COL_TIME, time_text,
                                     COL_PRIORITY, priority_text (priority != NULL
                                                                  ? atoi (priority) : -1),
                                     COL_MESSAGE, message, -1);
  if (++self->count > MAX_ENTRIES
      && gtk_tree_model_get_iter_first (GTK_TREE_MODEL (self->entries), &first))
    {
      gtk_list_store_remove (self->entries, &first);
      self->count--;
    }
}

static void
update_status (QmLogWindow *self)
{
  g_autofree gchar *text = NULL;

  /* TRANSLATORS: %d entries of the journal, %s the field they match, e.g. QUBES_VM=work */
  text = g_strdup_printf (ngettext ("%d entry with %s; new ones appear as they are written",
                                    "%d entries with %s; new ones appear as they are written",
                                    self->count),
                          self->count, self->match);
  gtk_label_set_text (GTK_LABEL (self->status_label), text);
}

static gboolean
at_bottom (QmLogWindow *self)
{
  GtkAdjustment *adjustment
    = gtk_scrolled_window_get_vadjustment (GTK_SCROLLED_WINDOW (self->scrolled));

  return gtk_adjustment_get_value (adjustment) + gtk_adjustment_get_page_size (adjustment)
         >= gtk_adjustment_get_upper (adjustment) - 1;
}

static void
scroll_to_end (QmLogWindow *self)
{
  g_autoptr(GtkTreePath) path = NULL;

  if (self->count == 0)
    return;
  path = gtk_tree_path_new_from_indices ((gint) self->count - 1, -1);
  gtk_tree_view_scroll_to_cell (GTK_TREE_VIEW (self->tree_view), path, NULL, FALSE, 0, 0);
}

static void watch_journal (QmLogWindow *self);

/* The entries written since the last read. */
static void
read_new_entries (QmLogWindow *self)
{
  gboolean follow = at_bottom (self);
  guint before = self->count;

  while (sd_journal_next (self->journal) > 0)
    append_entry (self);
  if (self->count != before)
    {
      if (self->count > 0)
        show_info (self, GTK_MESSAGE_INFO, NULL);
      update_status (self);
      if (follow)
        scroll_to_end (self);
    }
}

static gboolean
on_journal_changed (gint         fd,
                    GIOCondition condition,
                    gpointer     user_data)
{
  QmLogWindow *self = QM_LOG_WINDOW (user_data);

  if (sd_journal_process (self->journal) >= 0)
    read_new_entries (self);
  watch_journal (self);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_journal_timeout (gpointer user_data)
{
  QmLogWindow *self = QM_LOG_WINDOW (user_data);

  self->timeout_id = 0;
  if (sd_journal_process (self->journal) >= 0)
    read_new_entries (self);
  watch_journal (self);
  return G_SOURCE_REMOVE;
}

/* The journal's descriptor wakes the window when entries are written; where it cannot (files on
 * a network file system), sd_journal_get_timeout () says when to look again. */
static void
watch_journal (QmLogWindow *self)
{
  uint64_t timeout = UINT64_MAX;
  gint fd;

  if (self->watch_id == 0)
    {
      fd = sd_journal_get_fd (self->journal);
      if (fd >= 0)
        self->watch_id = g_unix_fd_add (fd, G_IO_IN, on_journal_changed, self);
    }
  if (self->timeout_id == 0 && sd_journal_get_timeout (self->journal, &timeout) >= 0
      && timeout != UINT64_MAX)
    {
      uint64_t now = (uint64_t) g_get_monotonic_time ();
      guint ms = timeout > now ? (guint) MIN ((timeout - now) / 1000 + 1, 60000) : 0;

      self->timeout_id = g_timeout_add (ms, on_journal_timeout, self);
    }
}

/* Root and the groups journald gives the system journal to read everything; anyone else only
 * their own journal. */
static gboolean
reads_system_journal (void)
{
  static const gchar *const groups[] = { "systemd-journal", "adm", "wheel" };
  guint i;

  if (geteuid () == 0)
    return TRUE;
  for (i = 0; i < G_N_ELEMENTS (groups); i++)
    {
      struct group *group = getgrnam (groups[i]);

      if (group != NULL && (getegid () == group->gr_gid || group_member (group->gr_gid)))
        return TRUE;
    }
  return FALSE;
}

/* Whether qubesd wrote anything to this journal: without, it runs outside journald. */
static gboolean
journal_has_qubesd (sd_journal *journal)
{
  gboolean found;

  if (sd_journal_add_match (journal, "SYSLOG_IDENTIFIER=qubesd", 0) < 0)
    return FALSE;
  found = sd_journal_seek_tail (journal) >= 0 && sd_journal_previous (journal) > 0;
  sd_journal_flush_matches (journal);
  return found;
}

static void
open_journal (QmLogWindow *self)
{
  gboolean has_qubesd;
  gint r;

  r = sd_journal_open (&self->journal, SD_JOURNAL_LOCAL_ONLY);
  if (r < 0)
    {
      g_autofree gchar *text = g_strdup_printf (_("The journal cannot be read: %s"),
                                                g_strerror (-r));

      self->journal = NULL;
      show_info (self, GTK_MESSAGE_ERROR, text);
      return;
    }
  has_qubesd = journal_has_qubesd (self->journal);
  if (sd_journal_add_match (self->journal, self->match, 0) < 0
      || sd_journal_seek_tail (self->journal) < 0)
    {
      show_info (self, GTK_MESSAGE_ERROR, _("The journal cannot be read."));
      return;
    }
  /* the last MAX_ENTRIES, oldest first */
  if (sd_journal_previous_skip (self->journal, MAX_ENTRIES) > 0)
    {
      append_entry (self);
      while (sd_journal_next (self->journal) > 0)
        append_entry (self);
    }
  else
    sd_journal_seek_tail (self->journal);
  update_status (self);
  scroll_to_end (self);
  watch_journal (self);

  if (self->count > 0)
    show_info (self, GTK_MESSAGE_INFO, NULL);
  else if (!reads_system_journal ())
    show_info (self, GTK_MESSAGE_WARNING,
               _("You can read only your own journal, not the system's, which holds what qubesd "
                 "logs. Members of the groups systemd-journal and adm can read it."));
  else if (!has_qubesd)
    {
      g_autofree gchar *text = NULL;

      text = g_strdup_printf (_("qubesd's messages are not in the journal of this system: it does "
                                "not run under journald here (the demo and the tests start it "
                                "from a terminal, and it writes its messages to its standard "
                                "error). This window shows the journal entries about %s, which "
                                "qubesd writes when it runs as a systemd service; new ones "
                                "appear here as they are written."),
                              self->qube);
      show_info (self, GTK_MESSAGE_WARNING, text);
    }
  else
    {
      g_autofree gchar *text = g_strdup_printf (_("The journal has no entries about %s yet; "
                                                  "new ones appear here as they are written."),
                                                self->qube);

      show_info (self, GTK_MESSAGE_INFO, text);
    }
}

static void
on_close (QmLogWindow *self)
{
  gtk_widget_destroy (GTK_WIDGET (self));
}

QmLogWindow *
qm_log_window_new (GtkWindow   *parent,
                   const gchar *qube)
{
  QmLogWindow *self = g_object_new (QM_TYPE_LOG_WINDOW, "transient-for", parent, NULL);
  g_autofree gchar *title = NULL;

  self->qube = g_strdup (qube);
  self->match = g_strdup_printf ("QUBES_VM=%s", qube);
  /* TRANSLATORS: window title, %s is the qube's name */
  title = g_strdup_printf (_("%s: Logs"), qube);
  gtk_window_set_title (GTK_WINDOW (self), title);
  open_journal (self);
  return self;
}

static void
qm_log_window_dispose (GObject *object)
{
  QmLogWindow *self = QM_LOG_WINDOW (object);

  if (self->watch_id != 0)
    g_source_remove (self->watch_id);
  self->watch_id = 0;
  if (self->timeout_id != 0)
    g_source_remove (self->timeout_id);
  self->timeout_id = 0;
  g_clear_pointer (&self->journal, sd_journal_close);
  G_OBJECT_CLASS (qm_log_window_parent_class)->dispose (object);
}

static void
qm_log_window_finalize (GObject *object)
{
  QmLogWindow *self = QM_LOG_WINDOW (object);

  g_free (self->qube);
  g_free (self->match);
  G_OBJECT_CLASS (qm_log_window_parent_class)->finalize (object);
}

static void
qm_log_window_init (QmLogWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

static void
qm_log_window_class_init (QmLogWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qm_log_window_dispose;
  object_class->finalize = qm_log_window_finalize;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/qubes_os/QubeManager/qm-log-window.ui");
  gtk_widget_class_bind_template_child (widget_class, QmLogWindow, info_bar);
  gtk_widget_class_bind_template_child (widget_class, QmLogWindow, info_label);
  gtk_widget_class_bind_template_child (widget_class, QmLogWindow, scrolled);
  gtk_widget_class_bind_template_child (widget_class, QmLogWindow, tree_view);
  gtk_widget_class_bind_template_child (widget_class, QmLogWindow, status_label);
  gtk_widget_class_bind_template_child (widget_class, QmLogWindow, entries);
  gtk_widget_class_bind_template_callback (widget_class, on_close);
}
