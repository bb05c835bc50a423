/* qm-settings-page.h: one page of a qube's settings window
 *
 * A page is a widget of its own (a template: qm-<name>-page.c and .ui) that derives from
 * QmSettingsPage and is placed in the notebook of qm-settings-window.ui. The window hands
 * every page the client and the qube (qm_settings_page_set_qube), asks it to read the qube's
 * values when it opens and after each Apply (load), and on Apply or OK asks it for the calls
 * that make qubesd hold what it shows (apply); the window makes those calls one after another
 * and reports the failures. docs/qube-manager.md says how a page is added.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "qm-client.h"

G_BEGIN_DECLS

/* The calls Apply makes, in order: the window's, then each page's in the notebook's order. */
typedef struct _QmSettingsCalls QmSettingsCalls;

#define QM_TYPE_SETTINGS_PAGE (qm_settings_page_get_type ())
G_DECLARE_DERIVABLE_TYPE (QmSettingsPage, qm_settings_page, QM, SETTINGS_PAGE, GtkBox)

struct _QmSettingsPageClass
{
  GtkBoxClass parent_class;

  /* Shows the qube's values, read from the client (qm_settings_page_get_qube) or from qubesd
   * (with qm_settings_page_get_cancellable). Calls qm_settings_page_loaded () once done, at once
   * or from a reply. The default does that at once. */
  void (*load)  (QmSettingsPage  *page);
  /* Adds to calls what makes qubesd hold what the page shows: nothing when nothing changed. */
  void (*apply) (QmSettingsPage  *page,
                 QmSettingsCalls *calls);

  gpointer padding[6];
};

/* For a page. */
QmClient     *qm_settings_page_get_client      (QmSettingsPage *self);
const gchar  *qm_settings_page_get_qube_path   (QmSettingsPage *self);
/* The qube as the client holds it now; NULL if it is gone. */
QmObject     *qm_settings_page_get_qube        (QmSettingsPage *self);
/* Cancelled when the page goes (the window closed). */
GCancellable *qm_settings_page_get_cancellable (QmSettingsPage *self);
/* Ends a load; error_message (NULL for none) is shown in the window's info bar. */
void          qm_settings_page_loaded          (QmSettingsPage *self,
                                                const gchar    *error_message);

/* One call Apply makes: a method on the qube (object_path NULL) or on another object (one of
 * its volumes, say), of the Domain interface (interface_name NULL) or another one. parameters
 * may be floating (it is sunk), NULL for none. what starts the error line when it fails
 * ("Cannot set the feature x"). */
void          qm_settings_calls_add            (QmSettingsCalls *calls,
                                                const gchar     *object_path,
                                                const gchar     *interface_name,
                                                const gchar     *method,
                                                GVariant        *parameters,
                                                const gchar     *what);

/* For the window. "loaded" (string error_message, or NULL) is emitted by
 * qm_settings_page_loaded (). */
void          qm_settings_page_set_qube        (QmSettingsPage  *self,
                                                QmClient        *client,
                                                const gchar     *object_path);
void          qm_settings_page_load            (QmSettingsPage  *self);
void          qm_settings_page_apply           (QmSettingsPage  *self,
                                                QmSettingsCalls *calls);

typedef struct
{
  gchar    *object_path;     /* NULL: the qube */
  gchar    *interface_name;  /* NULL: org.qubes_os.Admin1.Domain */
  gchar    *method;
  GVariant *parameters;      /* NULL: none */
  gchar    *what;
} QmSettingsCall;

QmSettingsCalls *qm_settings_calls_new       (void);
void             qm_settings_calls_free      (QmSettingsCalls *calls);
gboolean         qm_settings_calls_is_empty  (QmSettingsCalls *calls);
/* The next call (owned by calls), or NULL. */
QmSettingsCall  *qm_settings_calls_peek      (QmSettingsCalls *calls);
/* Drops the next call. */
void             qm_settings_calls_pop       (QmSettingsCalls *calls);
void             qm_settings_calls_clear     (QmSettingsCalls *calls);

G_END_DECLS
