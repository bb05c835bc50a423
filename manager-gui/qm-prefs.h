/* qm-prefs.h: remembered choices (GSettings, or a key file when the schema is not installed)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QM_SCHEMA_ID "org.qubes_os.QubeManager"

gchar   **qm_prefs_get_strv    (const gchar        *key);
void      qm_prefs_set_strv    (const gchar        *key,
                                const gchar *const *value);
gchar    *qm_prefs_get_string  (const gchar        *key);
void      qm_prefs_set_string  (const gchar        *key,
                                const gchar        *value);
gboolean  qm_prefs_get_boolean (const gchar        *key);
void      qm_prefs_set_boolean (const gchar        *key,
                                gboolean            value);
gint      qm_prefs_get_int     (const gchar        *key);
void      qm_prefs_set_int     (const gchar        *key,
                                gint                value);

G_END_DECLS
