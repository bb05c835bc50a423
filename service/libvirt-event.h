/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libvirt's event loop on sd-event (libvirt-event.c): libvirt's handles and timeouts are
 * sd-event sources, so its callbacks (domain events, keepalives) run on qubesd's loop. Register
 * before any connection is opened, or libvirt never delivers events. */

#include <systemd/sd-event.h>

int libvirt_event_register(sd_event *event);
void libvirt_event_flush(void);
void libvirt_event_unregister(void);
