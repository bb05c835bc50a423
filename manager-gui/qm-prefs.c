/* qm-prefs.c: remembered choices (GSettings, or a key file when the schema is not installed)
 *
 * Running from a build tree without GSETTINGS_SCHEMA_DIR must not abort (GSettings does when a
 * schema is missing), so the schema is looked up first; without it the same keys live in
 * $XDG_CONFIG_HOME/qube-manager/settings.ini with the defaults below (keep them in step with
 * org.qubes_os.QubeManager.gschema.xml).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>

#include "qm-prefs.h"

#define GROUP "QubeManager"

static GSettings *settings;
static GKeyFile *keyfile;
static gchar *keyfile_path;

static void
ensure (void)
{
  GSettingsSchemaSource *source;
  g_autoptr(GSettingsSchema) schema = NULL;

  if (settings != NULL || keyfile != NULL)
    return;
  source = g_settings_schema_source_get_default ();
  if (source != NULL)
    schema = g_settings_schema_source_lookup (source, QM_SCHEMA_ID, TRUE);
  if (schema != NULL)
    {
      settings = g_settings_new (QM_SCHEMA_ID);
      return;
    }

  keyfile = g_key_file_new ();
  keyfile_path = g_build_filename (g_get_user_config_dir (), "qube-manager", "settings.ini",
                                   NULL);
  if (!g_key_file_load_from_file (keyfile, keyfile_path, G_KEY_FILE_KEEP_COMMENTS, NULL))
    {
      static const gchar *const hidden[] = { "internal", "default-dispvm", "virt-mode", "tags",
                                             NULL };

      g_key_file_set_string_list (keyfile, GROUP, "hidden-columns", hidden,
                                  g_strv_length ((gchar **) hidden));
      g_key_file_set_string (keyfile, GROUP, "sort-column", "name");
      g_key_file_set_boolean (keyfile, GROUP, "sort-descending", FALSE);
      g_key_file_set_string (keyfile, GROUP, "filter", "all");
      g_key_file_set_boolean (keyfile, GROUP, "show-internal", FALSE);
      g_key_file_set_string (keyfile, GROUP, "group-by", "none");
      g_key_file_set_integer (keyfile, GROUP, "window-width", 1200);
      g_key_file_set_integer (keyfile, GROUP, "window-height", 640);
    }
}

static void
save_keyfile (void)
{
  g_autofree gchar *dir = g_path_get_dirname (keyfile_path);
  g_autoptr(GError) error = NULL;

  if (g_mkdir_with_parents (dir, 0700) != 0
      || !g_key_file_save_to_file (keyfile, keyfile_path, &error))
    g_debug ("cannot save %s: %s", keyfile_path, error != NULL ? error->message : "mkdir");
}

gchar **
qm_prefs_get_strv (const gchar *key)
{
  gchar **value;

  ensure ();
  if (settings != NULL)
    return g_settings_get_strv (settings, key);
  value = g_key_file_get_string_list (keyfile, GROUP, key, NULL, NULL);
  return value != NULL ? value : g_new0 (gchar *, 1);
}

void
qm_prefs_set_strv (const gchar        *key,
                   const gchar *const *value)
{
  ensure ();
  if (settings != NULL)
    {
      g_settings_set_strv (settings, key, value);
      return;
    }
  g_key_file_set_string_list (keyfile, GROUP, key, value, g_strv_length ((gchar **) value));
  save_keyfile ();
}

gchar *
qm_prefs_get_string (const gchar *key)
{
  gchar *value;

  ensure ();
  if (settings != NULL)
    return g_settings_get_string (settings, key);
  value = g_key_file_get_string (keyfile, GROUP, key, NULL);
  return value != NULL ? value : g_strdup ("");
}

void
qm_prefs_set_string (const gchar *key,
                     const gchar *value)
{
  ensure ();
  if (settings != NULL)
    {
      g_settings_set_string (settings, key, value);
      return;
    }
  g_key_file_set_string (keyfile, GROUP, key, value);
  save_keyfile ();
}

gboolean
qm_prefs_get_boolean (const gchar *key)
{
  ensure ();
  if (settings != NULL)
    return g_settings_get_boolean (settings, key);
  return g_key_file_get_boolean (keyfile, GROUP, key, NULL);
}

void
qm_prefs_set_boolean (const gchar *key,
                      gboolean     value)
{
  ensure ();
  if (settings != NULL)
    {
      g_settings_set_boolean (settings, key, value);
      return;
    }
  g_key_file_set_boolean (keyfile, GROUP, key, value);
  save_keyfile ();
}

gint
qm_prefs_get_int (const gchar *key)
{
  ensure ();
  if (settings != NULL)
    return g_settings_get_int (settings, key);
  return g_key_file_get_integer (keyfile, GROUP, key, NULL);
}

void
qm_prefs_set_int (const gchar *key,
                  gint         value)
{
  ensure ();
  if (settings != NULL)
    {
      g_settings_set_int (settings, key, value);
      return;
    }
  g_key_file_set_integer (keyfile, GROUP, key, value);
  save_keyfile ();
}
