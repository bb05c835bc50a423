/* qm-console.h: "Open console", a qube's serial console in a terminal emulator
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

/* Asks qubesd for the qube's console pty (Domain.GetConsole) and opens it in the first terminal
 * emulator found (x-terminal-emulator, gnome-terminal, konsole, xfce4-terminal, xterm) running
 * socat on the pty. Without a terminal or socat, or when the qube has no pty, a message says so
 * and names the pty. Errors from qubesd are shown as any failed action. */
void qm_console_open (GtkWindow    *parent,
                      QmClient     *client,
                      const gchar  *object_path,
                      const gchar  *name,
                      GCancellable *cancellable);

G_END_DECLS
