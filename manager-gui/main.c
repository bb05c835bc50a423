/* main.c: qube-manager [--system|--user|--bus-address=ADDR]
 *
 * --self-test prints the model after the first full load and every change after it (for the
 * tests); --bench prints the time to the first paint and to the full list, then quits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <sys/resource.h>

#include "qm-client.h"
#include "qm-qube-store.h"
#include "qm-window.h"

static gboolean opt_system;
static gboolean opt_user;
static gchar *opt_address;
static gboolean opt_self_test;
static gboolean opt_bench;
static gboolean opt_version;

static gint64 start_time;
static gint64 first_paint_time;
static gint64 loaded_time;
static gboolean full_list_painted;
static GHashTable *dumped_rows; /* path -> last printed line */

static const GOptionEntry options[] = {
  { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system,
    N_("Connect to qubesd on the system bus (the default)"), NULL },
  { "user", 0, 0, G_OPTION_ARG_NONE, &opt_user,
    N_("Connect to qubesd on the session bus"), NULL },
  { "bus-address", 0, 0, G_OPTION_ARG_STRING, &opt_address,
    N_("Connect to qubesd on the bus at ADDRESS"), N_("ADDRESS") },
  { "self-test", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_self_test,
    "Print the list after the first full load and every change after it", NULL },
  { "bench", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &opt_bench,
    "Print the time to the first paint and to the full list, then quit", NULL },
  { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Print the version and exit"), NULL },
  { NULL, 0, 0, 0, NULL, NULL, NULL }
};

static gchar *
row_line (GtkTreeModel *model,
          GtkTreeIter  *iter)
{
  g_autofree gchar *name = NULL, *label = NULL, *power = NULL, *klass = NULL;
  g_autofree gchar *template_name = NULL, *netvm = NULL, *dispvm = NULL, *state = NULL;
  g_autofree gchar *ip = NULL, *virt_mode = NULL;
  gboolean backups, internal;

  gtk_tree_model_get (model, iter, QM_COL_NAME, &name, QM_COL_LABEL_NAME, &label,
                      QM_COL_POWER_STATE, &power, QM_COL_CLASS, &klass,
                      QM_COL_TEMPLATE, &template_name, QM_COL_NETVM, &netvm,
                      QM_COL_DEFAULT_DISPVM, &dispvm, QM_COL_STATE_TEXT, &state,
                      QM_COL_INCLUDE_IN_BACKUPS, &backups, QM_COL_INTERNAL, &internal,
                      QM_COL_IP, &ip, QM_COL_VIRT_MODE, &virt_mode, -1);
  return g_strdup_printf ("ROW\t%s\tlabel=%s\tstate=%s\tclass=%s\ttemplate=%s\tnetvm=%s\t"
                          "backups=%s\tinternal=%s\tdefault_dispvm=%s\tstate_text=%s\tip=%s\t"
                          "virt_mode=%s",
                          name, label, power, klass, template_name != NULL ? template_name : "",
                          netvm, backups ? "yes" : "no", internal ? "yes" : "no", dispvm, state,
                          ip != NULL ? ip : "", virt_mode != NULL ? virt_mode : "");
}

static void
self_test_dump (QmClient *client,
                gpointer  user_data)
{
  QmWindow *window = QM_WINDOW (user_data);
  GtkTreeModel *model = GTK_TREE_MODEL (qm_window_get_store (window));
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter hiter;
  gpointer key;
  GtkTreeIter iter;
  gboolean valid, first = dumped_rows == NULL;

  /* While qubesd is away the list is empty: print that too (as GONE rows). */
  if (!qm_client_is_loaded (client)
      && (qm_client_get_state (client) == QM_CLIENT_STATE_READY || first))
    return;
  if (first)
    {
      dumped_rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      printf ("LOADED\t%d\n", gtk_tree_model_iter_n_children (model, NULL));
    }
  for (valid = gtk_tree_model_get_iter_first (model, &iter); valid;
       valid = gtk_tree_model_iter_next (model, &iter))
    {
      gchar *path = NULL;
      gchar *line = row_line (model, &iter);

      gtk_tree_model_get (model, &iter, QM_COL_PATH, &path, -1);
      g_hash_table_add (seen, g_strdup (path));
      if (g_strcmp0 (g_hash_table_lookup (dumped_rows, path), line) != 0)
        {
          printf ("%s\n", line);
          g_hash_table_insert (dumped_rows, path, line);
        }
      else
        {
          g_free (path);
          g_free (line);
        }
    }
  g_hash_table_iter_init (&hiter, dumped_rows);
  while (g_hash_table_iter_next (&hiter, &key, NULL))
    if (!g_hash_table_contains (seen, key))
      {
        printf ("GONE\t%s\n", (const gchar *) key);
        g_hash_table_iter_remove (&hiter);
      }
  printf ("END\t%s\n", qm_client_is_loaded (client) ? "loaded" : "absent");
  fflush (stdout);
}

static gboolean
bench_after_draw (GtkWidget *widget,
                  cairo_t   *cr,
                  gpointer   user_data)
{
  QmWindow *window = QM_WINDOW (user_data);
  gint64 now = g_get_monotonic_time ();
  struct rusage usage;

  if (first_paint_time == 0)
    first_paint_time = now;
  if (loaded_time != 0 && !full_list_painted)
    {
      full_list_painted = TRUE;
      printf ("first-paint-ms\t%.1f\n", (first_paint_time - start_time) / 1000.0);
      printf ("full-list-ms\t%.1f\n", (now - start_time) / 1000.0);
      if (getrusage (RUSAGE_SELF, &usage) == 0)
        printf ("full-list-cpu-ms\t%.1f\n",
                (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0
                + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0);
      printf ("qubes\t%d\n",
              gtk_tree_model_iter_n_children (GTK_TREE_MODEL (qm_window_get_store (window)),
                                              NULL));
      fflush (stdout);
      g_application_quit (G_APPLICATION (gtk_window_get_application (GTK_WINDOW (window))));
    }
  return FALSE;
}

static void
bench_changed (QmClient *client,
               gpointer  user_data)
{
  if (loaded_time == 0 && qm_client_is_loaded (client))
    {
      loaded_time = g_get_monotonic_time ();
      gtk_widget_queue_draw (GTK_WIDGET (user_data));
    }
}

static void
activate (GtkApplication *application,
          gpointer        user_data)
{
  QmClient *client = QM_CLIENT (user_data);
  QmWindow *window;
  GList *windows = gtk_application_get_windows (application);

  if (windows != NULL)
    {
      gtk_window_present (windows->data);
      return;
    }
  window = qm_window_new (application, client);
  if (opt_self_test)
    g_signal_connect_object (client, "changed", G_CALLBACK (self_test_dump), window,
                             G_CONNECT_AFTER);
  if (opt_bench)
    {
      g_signal_connect_object (client, "changed", G_CALLBACK (bench_changed), window,
                               G_CONNECT_AFTER);
      g_signal_connect_after (window, "draw", G_CALLBACK (bench_after_draw), window);
    }
  gtk_window_present (GTK_WINDOW (window));
}

static void
quit_activated (GSimpleAction *action,
                GVariant      *parameter,
                gpointer       user_data)
{
  g_application_quit (G_APPLICATION (user_data));
}

static void
startup (GtkApplication *application,
         gpointer        user_data)
{
  static const GActionEntry app_entries[] = {
    { "quit", quit_activated, NULL, NULL, NULL, { 0 } },
  };
  static const struct
  {
    const gchar *action;
    const gchar *accels[2];
  } accels[] = {
    { "app.quit", { "<Control>q", NULL } },
    { "win.create", { "<Control>n", NULL } },
    { "win.settings", { "<Alt>Return", NULL } },
    { "win.clone", { "<Control><Shift>c", NULL } },
    { "win.find", { "<Control>f", NULL } },
    { "win.start", { "<Control>r", NULL } },
    { "win.shutdown", { "<Control>d", NULL } },
    { "win.restart", { "<Control><Shift>r", NULL } },
    { "win.pause", { "<Control>p", NULL } },
    { "win.kill", { "<Control>k", NULL } },
  };
  g_autoptr(GMenuModel) menubar = qm_window_build_menubar ();
  guint i;

  g_action_map_add_action_entries (G_ACTION_MAP (application), app_entries,
                                   G_N_ELEMENTS (app_entries), application);
  for (i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (application, accels[i].action, accels[i].accels);
  gtk_application_set_menubar (application, menubar);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GtkApplication) application = NULL;
  g_autoptr(QmClient) client = NULL;
  const gchar *localedir;
  gboolean gl_set, ok;

  start_time = g_get_monotonic_time ();
  setlocale (LC_ALL, "");
  localedir = g_getenv ("QUBE_MANAGER_LOCALEDIR");
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  /* No OpenGL: GDK's X11 back-end otherwise loads the GL library and driver as it opens the
   * display, to choose visuals for GL (a tenth of a second under Xvfb, a third of GDK's set-up);
   * the window draws nothing with GL. Read by GTK's option group as the options are parsed;
   * not passed on to what the window starts. A GDK_GL the user set is left as it is. */
  gl_set = g_getenv ("GDK_GL") == NULL && g_setenv ("GDK_GL", "disable", FALSE);
  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, _("Manage the qubes of a Qubes OS system through "
                                           "qubesd."));
  g_option_context_add_main_entries (context, options, GETTEXT_PACKAGE);
  g_option_context_add_group (context, gtk_get_option_group (FALSE));
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (opt_version)
    {
      printf ("qube-manager (qubesd) %s\n", PACKAGE_VERSION);
      return 0;
    }
  if ((opt_system + opt_user + (opt_address != NULL)) > 1)
    {
      g_printerr ("%s\n", _("Choose one of --system, --user and --bus-address."));
      return 2;
    }
  /* Before the display is opened (GDK's set-up is a good part of the start-up time): qubesd
   * answers the snapshot meanwhile. Nothing here needs GTK; the replies wait for the main loop. */
  client = qm_client_new (opt_user ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, opt_address);
  ok = gtk_init_check (&argc, &argv);
  if (gl_set)
    g_unsetenv ("GDK_GL");
  if (!ok)
    {
      g_printerr ("%s\n", _("Cannot open the display."));
      return 1;
    }

  /* Non-unique: one manager per bus may run, and the tests run several. */
  application = gtk_application_new ("org.qubes_os.QubeManager", G_APPLICATION_NON_UNIQUE);
  g_signal_connect (application, "startup", G_CALLBACK (startup), NULL);
  g_signal_connect (application, "activate", G_CALLBACK (activate), client);
  return g_application_run (G_APPLICATION (application), 1, argv);
}
