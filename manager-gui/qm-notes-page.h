/* qm-notes-page.h: the Notes page of a qube's settings (GetNotes, SetNotes)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qm-settings-page.h"

G_BEGIN_DECLS

#define QM_TYPE_NOTES_PAGE (qm_notes_page_get_type ())
G_DECLARE_FINAL_TYPE (QmNotesPage, qm_notes_page, QM, NOTES_PAGE, QmSettingsPage)

G_END_DECLS
