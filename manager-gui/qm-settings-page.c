/* qm-settings-page.c: one page of a qube's settings window, and the calls Apply makes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "qm-settings-page.h"

typedef struct
{
  QmClient     *client;
  gchar        *qube_path;
  GCancellable *cancellable;
} QmSettingsPagePrivate;

G_DEFINE_TYPE_WITH_PRIVATE (QmSettingsPage, qm_settings_page, GTK_TYPE_BOX)

enum
{
  SIGNAL_LOADED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

void
qm_settings_page_set_qube (QmSettingsPage *self,
                           QmClient       *client,
                           const gchar    *object_path)
{
  QmSettingsPagePrivate *priv = qm_settings_page_get_instance_private (self);

  g_return_if_fail (QM_IS_SETTINGS_PAGE (self));
  g_return_if_fail (QM_IS_CLIENT (client));
  g_return_if_fail (object_path != NULL);

  g_set_object (&priv->client, client);
  g_free (priv->qube_path);
  priv->qube_path = g_strdup (object_path);
}

QmClient *
qm_settings_page_get_client (QmSettingsPage *self)
{
  QmSettingsPagePrivate *priv = qm_settings_page_get_instance_private (self);

  g_return_val_if_fail (QM_IS_SETTINGS_PAGE (self), NULL);

  return priv->client;
}

const gchar *
qm_settings_page_get_qube_path (QmSettingsPage *self)
{
  QmSettingsPagePrivate *priv = qm_settings_page_get_instance_private (self);

  g_return_val_if_fail (QM_IS_SETTINGS_PAGE (self), NULL);

  return priv->qube_path;
}

QmObject *
qm_settings_page_get_qube (QmSettingsPage *self)
{
  QmSettingsPagePrivate *priv = qm_settings_page_get_instance_private (self);

  g_return_val_if_fail (QM_IS_SETTINGS_PAGE (self), NULL);

  if (priv->client == NULL || priv->qube_path == NULL)
    return NULL;
  return qm_client_lookup_domain (priv->client, priv->qube_path);
}

GCancellable *
qm_settings_page_get_cancellable (QmSettingsPage *self)
{
  QmSettingsPagePrivate *priv = qm_settings_page_get_instance_private (self);

  g_return_val_if_fail (QM_IS_SETTINGS_PAGE (self), NULL);

  return priv->cancellable;
}

void
qm_settings_page_load (QmSettingsPage *self)
{
  g_return_if_fail (QM_IS_SETTINGS_PAGE (self));

  QM_SETTINGS_PAGE_GET_CLASS (self)->load (self);
}

void
qm_settings_page_loaded (QmSettingsPage *self,
                         const gchar    *error_message)
{
  g_return_if_fail (QM_IS_SETTINGS_PAGE (self));

  g_signal_emit (self, signals[SIGNAL_LOADED], 0, error_message);
}

void
qm_settings_page_apply (QmSettingsPage  *self,
                        QmSettingsCalls *calls)
{
  g_return_if_fail (QM_IS_SETTINGS_PAGE (self));
  g_return_if_fail (calls != NULL);

  if (QM_SETTINGS_PAGE_GET_CLASS (self)->apply != NULL)
    QM_SETTINGS_PAGE_GET_CLASS (self)->apply (self, calls);
}

static void
qm_settings_page_real_load (QmSettingsPage *self)
{
  qm_settings_page_loaded (self, NULL);
}

static void
qm_settings_page_dispose (GObject *object)
{
  QmSettingsPagePrivate *priv = qm_settings_page_get_instance_private (QM_SETTINGS_PAGE (object));

  g_cancellable_cancel (priv->cancellable);
  g_clear_object (&priv->client);
  G_OBJECT_CLASS (qm_settings_page_parent_class)->dispose (object);
}

static void
qm_settings_page_finalize (GObject *object)
{
  QmSettingsPagePrivate *priv = qm_settings_page_get_instance_private (QM_SETTINGS_PAGE (object));

  g_clear_object (&priv->cancellable);
  g_free (priv->qube_path);
  G_OBJECT_CLASS (qm_settings_page_parent_class)->finalize (object);
}

static void
qm_settings_page_init (QmSettingsPage *self)
{
  QmSettingsPagePrivate *priv = qm_settings_page_get_instance_private (self);

  priv->cancellable = g_cancellable_new ();
}

static void
qm_settings_page_class_init (QmSettingsPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qm_settings_page_dispose;
  object_class->finalize = qm_settings_page_finalize;
  klass->load = qm_settings_page_real_load;

  /* QmSettingsPage::loaded: error_message (NULL for none), for the window. */
  signals[SIGNAL_LOADED] = g_signal_new ("loaded", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                         0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

/* ---- the calls Apply makes ------------------------------------------------------------- */

struct _QmSettingsCalls
{
  GQueue queue;
};

static void
call_free (QmSettingsCall *call)
{
  g_free (call->object_path);
  g_free (call->interface_name);
  g_free (call->method);
  if (call->parameters != NULL)
    g_variant_unref (call->parameters);
  g_free (call->what);
  g_free (call);
}

void
qm_settings_calls_add (QmSettingsCalls *calls,
                       const gchar     *object_path,
                       const gchar     *interface_name,
                       const gchar     *method,
                       GVariant        *parameters,
                       const gchar     *what)
{
  QmSettingsCall *call;

  g_return_if_fail (calls != NULL);
  g_return_if_fail (method != NULL);

  call = g_new0 (QmSettingsCall, 1);
  call->object_path = g_strdup (object_path);
  call->interface_name = g_strdup (interface_name);
  call->method = g_strdup (method);
  call->parameters = parameters != NULL ? g_variant_ref_sink (parameters) : NULL;
  call->what = g_strdup (what);
  g_queue_push_tail (&calls->queue, call);
}

QmSettingsCalls *
qm_settings_calls_new (void)
{
  QmSettingsCalls *calls = g_new0 (QmSettingsCalls, 1);

  g_queue_init (&calls->queue);
  return calls;
}

void
qm_settings_calls_free (QmSettingsCalls *calls)
{
  if (calls == NULL)
    return;
  qm_settings_calls_clear (calls);
  g_free (calls);
}

gboolean
qm_settings_calls_is_empty (QmSettingsCalls *calls)
{
  return g_queue_is_empty (&calls->queue);
}

QmSettingsCall *
qm_settings_calls_peek (QmSettingsCalls *calls)
{
  return g_queue_peek_head (&calls->queue);
}

void
qm_settings_calls_pop (QmSettingsCalls *calls)
{
  QmSettingsCall *call = g_queue_pop_head (&calls->queue);

  if (call != NULL)
    call_free (call);
}

void
qm_settings_calls_clear (QmSettingsCalls *calls)
{
  g_queue_clear_full (&calls->queue, (GDestroyNotify) call_free);
}
