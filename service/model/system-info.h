/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "model/app.h"

/* system-info.c: the JSON document of internal.GetSystemInfo (qrexec policy input). */
char *app_system_info_json(App *app);
