/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* The libvirt domain XML of a qube for the connected driver (domain-xml.c): "test", "qemu" or
 * "xen". NULL with err set when the qube cannot be described. */
char *domain_libvirt_xml(Manager *m, Domain *d, const char *driver, QError *err);

/* admin.vm.Console: the console's pty in a live domain XML (XPath
 * string(/domain/devices/console/@tty)); "" when it has none, NULL on a parse error or OOM. */
char *domain_xml_console_tty(const char *xml);
