/* qm-firewall-page.h: the Firewall page of a qube's settings (Firewall.Rules, SetRules)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qm-settings-page.h"

G_BEGIN_DECLS

#define QM_TYPE_FIREWALL_PAGE (qm_firewall_page_get_type ())
G_DECLARE_FINAL_TYPE (QmFirewallPage, qm_firewall_page, QM, FIREWALL_PAGE, QmSettingsPage)

#define QM_FIREWALL_INTERFACE "org.qubes_os.Admin1.Firewall"

G_END_DECLS
