/* qm-console.c: "Open console", a qube's serial console in a terminal emulator
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gi18n.h>

#include "qm-console.h"
#include "qm-error.h"

typedef struct
{
  GtkWindow *parent;
  gchar     *name;
} ConsoleCall;

/* Terminal emulators in the order they are tried, with the option after which the command and
 * its arguments follow. x-terminal-emulator is Debian's choice of the user's terminal. */
static const struct
{
  const gchar *program;
  const gchar *exec_option;
} terminals[] = {
  { "x-terminal-emulator", "-e" },
  { "gnome-terminal", "--" },
  { "konsole", "-e" },
  { "xfce4-terminal", "-x" },
  { "xterm", "-e" },
};

static void
console_call_free (ConsoleCall *call)
{
  g_object_unref (call->parent);
  g_free (call->name);
  g_free (call);
}

static void
show_message (GtkWindow   *parent,
              const gchar *primary,
              const gchar *secondary)
{
  GtkWidget *dialog = gtk_message_dialog_new (parent, GTK_DIALOG_DESTROY_WITH_PARENT | GTK_DIALOG_MODAL,
                                              GTK_MESSAGE_INFO, GTK_BUTTONS_CLOSE, "%s", primary);

  gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s", secondary);
  g_signal_connect (dialog, "response", G_CALLBACK (gtk_widget_destroy), NULL);
  gtk_widget_show (dialog);
}

static void
open_in_terminal (ConsoleCall *call,
                  const gchar *pty)
{
  g_autofree gchar *primary = g_strdup_printf (_("Cannot open the console of %s"), call->name);
  g_autofree gchar *socat = g_find_program_in_path ("socat");
  g_autofree gchar *terminal = NULL;
  g_autofree gchar *target = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *exec_option = NULL;
  guint i;

  if (pty[0] == '\0')
    {
      show_message (call->parent, primary, _("The hypervisor gives this qube no console terminal."));
      return;
    }
  for (i = 0; i < G_N_ELEMENTS (terminals) && terminal == NULL; i++)
    {
      terminal = g_find_program_in_path (terminals[i].program);
      exec_option = terminals[i].exec_option;
    }
  if (terminal == NULL || socat == NULL)
    {
      g_autofree gchar *secondary = g_strdup_printf (
        terminal == NULL
          ? _("No terminal emulator is installed (x-terminal-emulator, gnome-terminal, konsole, "
              "xfce4-terminal or xterm). The console is the terminal %s.")
          : _("socat is not installed. The console is the terminal %s."),
        pty);

      show_message (call->parent, primary, secondary);
      return;
    }
  target = g_strdup_printf ("OPEN:%s", pty);
  {
    const gchar *argv[] = { terminal, exec_option, socat, "-,rawer", target, NULL };

    if (!g_spawn_async (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, &error))
      qm_error_show (call->parent, primary, error);
  }
}

static void
on_console_reply (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  ConsoleCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = qm_client_call_finish (QM_CLIENT (source), result, &error);

  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_autofree gchar *primary = g_strdup_printf (_("Cannot open the console of %s"), call->name);

          qm_error_show (call->parent, primary, error);
        }
    }
  else
    {
      const gchar *pty = NULL;

      g_variant_get (reply, "(&s)", &pty);
      open_in_terminal (call, pty);
    }
  console_call_free (call);
}

void
qm_console_open (GtkWindow    *parent,
                 QmClient     *client,
                 const gchar  *object_path,
                 const gchar  *name,
                 GCancellable *cancellable)
{
  ConsoleCall *call = g_new0 (ConsoleCall, 1);

  call->parent = g_object_ref (parent);
  call->name = g_strdup (name);
  qm_client_call (client, object_path, "org.qubes_os.Admin1.Domain", "GetConsole", NULL, cancellable,
                  on_console_reply, call);
}
