/* qm-object.h: one object of qubesd as the Qube Manager last saw it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Interfaces are named without this prefix: "Domain", "QubesVM", "AppVM", "Label", "Volume". */
#define QM_INTERFACE_PREFIX "org.qubes_os.Admin1."

#define QM_TYPE_OBJECT (qm_object_get_type ())
G_DECLARE_FINAL_TYPE (QmObject, qm_object, QM, OBJECT, GObject)

/* Not a proxy: a path and, per interface, the properties GetManagedObjects and the signals
 * said. The client updates it in place; getters return what it holds now (transfer none). */
const gchar *qm_object_get_path      (QmObject    *self);
gboolean     qm_object_has_interface (QmObject    *self,
                                      const gchar *interface);
/* The value, or NULL when the object does not have it or it is not of that type (NULL: any). */
GVariant    *qm_object_get_value     (QmObject           *self,
                                      const gchar        *interface,
                                      const gchar        *property,
                                      const GVariantType *type);
/* "s" or "o"; NULL when absent or of another type. */
const gchar *qm_object_get_string    (QmObject    *self,
                                      const gchar *interface,
                                      const gchar *property);
/* 0 / FALSE when absent or of another type. */
gboolean     qm_object_get_boolean   (QmObject    *self,
                                      const gchar *interface,
                                      const gchar *property);
gint32       qm_object_get_int32     (QmObject    *self,
                                      const gchar *interface,
                                      const gchar *property);
gint64       qm_object_get_int64     (QmObject    *self,
                                      const gchar *interface,
                                      const gchar *property);
guint64      qm_object_get_uint64    (QmObject    *self,
                                      const gchar *interface,
                                      const gchar *property);

/* For QmClient, which owns the objects. */
QmObject    *qm_object_new              (const gchar *path);
/* Replaces what the object knew of that interface with an a{sv}. */
void         qm_object_set_interface    (QmObject    *self,
                                         const gchar *interface,
                                         GVariant    *properties);
void         qm_object_remove_interface (QmObject    *self,
                                         const gchar *interface);
gboolean     qm_object_is_empty         (QmObject    *self);
/* The short names of the object's interfaces (interned strings); free the array with g_free. */
const gchar **qm_object_list_interfaces (QmObject    *self,
                                         guint       *out_n);
/* PropertiesChanged: changed (a{sv}) set, invalidated dropped. FALSE when the object lacks the
 * interface (nothing done). */
gboolean     qm_object_update           (QmObject           *self,
                                         const gchar        *interface,
                                         GVariant           *changed,
                                         const gchar *const *invalidated);
/* One value of an interface the object has, taken from elsewhere (the snapshot carries only a
 * qube's Domain values: see qm-client.c, fill_list_values()); with overwrite FALSE, a value the
 * object already has is kept. value is taken (floating, or the caller's reference). FALSE when
 * the object lacks the interface or kept its value. */
gboolean     qm_object_set_value        (QmObject           *self,
                                         const gchar        *interface,
                                         const gchar        *property,
                                         GVariant           *value,
                                         gboolean            overwrite);

G_END_DECLS
