/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A qube's firewall enforced on this host: one libvirt network filter per qube
 * (qubes-fw-<name>), defined from its rules, referenced by the qube's network interface in its
 * domain XML (domain-xml.c), redefined when the rules change or expire, undefined when the qube
 * goes. Where the connected libvirt has no nwfilter driver (the test driver) this says so once
 * and the rules are still kept and served. */

#include "manager.h"

/* Define (or redefine) the qube's filter from its current rules, on the workers. */
void firewall_vmm_apply(Manager *m, Domain *d);
/* Undefine the filter of a qube that is gone. */
void firewall_vmm_forget(Manager *m, const char *name);
/* After every (re)connection: every qube's filter defined again (lifecycle.c). */
void firewall_vmm_resync(Manager *m);
/* "qubes-fw-<qube>", malloc'ed. */
char *firewall_vmm_filter_name(const char *qube);
