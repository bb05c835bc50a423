#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every window of the Qube Manager in English and in German (LANGUAGE=de), shot and checked.
qubesd's errors too: New Qube with a name taken shows qubesd's refusal in the manager's language.

Runs itself again inside dbus-run-session (for the accessibility bus) and xvfb-run, against a
real qubesd, the manager once with LANGUAGE=C and once with LANGUAGE=de (the build's catalogue,
--locale-dir). In each it opens, as a user does, every window and dialog: the list, New Qube,
Clone Qube, a qube's settings (every page, and the Firewall page's rule dialog), Global Settings (every page), a qube's Logs, its
Block Devices, Back Up and Restore, Remove (the confirmation, and the refusal of a qube in use), Kill, Shut down with
the qubes that use a net qube, and the page shown while qubesd is away. Each is shot into --out-dir/screenshots/en and
/de, and its words (labels, buttons, check boxes, page tabs, column headers, menus) are read
through AT-SPI; every button and field shown must have an accessible name. In German no text
of the Qube Manager's catalogue may show in English, and no word may be the same as in English
unless it is data (qube, class, label, pool and kernel names, values) or a word German shares
(msgstr equal to msgid in po/de.po). Exit 77 = skipped.
"""
import ast
import os
import re
import subprocess
import sys
import time
import warnings

warnings.simplefilter('ignore', DeprecationWarning)

try:
    import gi
    gi.require_version('Atspi', '2.0')
    from gi.repository import Atspi, GLib  # noqa: F401
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qm_atspi import find, find_app, walk  # noqa: E402
    import qm_session as S  # noqa: E402
except (ImportError, ValueError) as e:
    print(f'SKIP: python3-gi with gir1.2-atspi-2.0 is needed ({e})')
    sys.exit(77)

PO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'po', 'de.po')
LANGUAGES = (('C', 'en'), ('de', 'de'))
FIREWALL = 'org.qubes_os.Admin1.Firewall'


def read_po(path):
    """{msgid: (msgstr or '', from the Qube Manager)} of the translated and untranslated
    entries; fuzzy and obsolete ones do not count."""
    entries = {}
    for block in open(path, encoding='utf-8').read().split('\n\n'):
        lines = [l for l in block.splitlines() if not l.startswith('#~')]
        if not lines or any(l.startswith('#,') and 'fuzzy' in l for l in lines):
            continue
        gui = any(l.startswith('#:') and 'manager-gui/' in l for l in lines)
        fields, key = {}, None
        for line in lines:
            m = re.match(r'(msgid|msgid_plural|msgstr|msgstr\[0\])\s+(".*")$', line)
            if m:
                key = m.group(1)
                fields[key] = ast.literal_eval(m.group(2))
            elif line.startswith('"') and key:
                fields[key] += ast.literal_eval(line)
        if fields.get('msgid'):
            entries[fields['msgid']] = (fields.get('msgstr', fields.get('msgstr[0]', '')), gui)
    return entries


def plain(text):
    """A label as AT-SPI names it: without its mnemonic underscore."""
    return re.sub(r'_(.)', r'\1', text)


class Words:
    """The catalogue, for finding widgets by their German names and judging what shows."""

    def __init__(self, path):
        self.po = read_po(path)

    def t(self, lang, msgid):
        if lang == 'C':
            return plain(msgid)
        msgstr = self.po.get(msgid, ('', False))[0]
        assert msgstr, f'no German for {msgid!r}'
        return plain(msgstr)

    def english_only(self):
        """The Qube Manager's English texts that German shows otherwise (or not at all)."""
        return {plain(i): plain(s) if s else None for i, (s, gui) in self.po.items()
                if gui and plain(s) != plain(i)}

    def shared(self):
        """Texts German writes as English does ("Name", "NetVM")."""
        return {plain(i) for i, (s, gui) in self.po.items() if s and plain(s) == plain(i)}


def main():
    args = S.parse_args()
    if not args.locale_dir or not os.path.exists(
            os.path.join(args.locale_dir, 'de', 'LC_MESSAGES', 'qubesd.mo')):
        print(f'SKIP: no built German catalogue in {args.locale_dir}')
        sys.exit(77)
    return S.run_window_test(args, 'qm-i18n-test-', run)


def click(window, name, role='push button'):
    acc = find(window, role=role, name=name)
    S.wait_until(lambda: S.sensitive(acc), f'{name} sensitive')
    S.do_action(acc, 'click')


def gone(acc):
    S.wait_until(lambda: not S.showing(acc), 'the window closed')


def tabs(window):
    tab_list = find(window, role='page tab list')
    return tab_list, tab_list.get_child_count()


class Visit:
    """One run of the manager in one language: every window, its words and its picture."""

    def __init__(self, args, words, lang, tag, bus, restart_qubesd):
        self.args, self.words, self.lang, self.bus = args, words, lang, bus
        self.shots = os.path.join(args.out_dir, 'screenshots', tag)
        self.restart_qubesd = restart_qubesd
        self.texts = {}
        self.unnamed = {}
        self.n = 0

    def t(self, msgid):
        return self.words.t(self.lang, msgid)

    def keep(self, name, root):
        self.n += 1
        time.sleep(0.3)   # drawn
        S.screenshot(self.shots, f'{self.n:02d}-{name}.png')
        self.texts.setdefault(name, set()).update(S.texts(root))
        # a button or field without a name is silent to a screen reader
        unnamed = [a.get_role_name() for a in walk(root)
                   if a.get_role_name() in ('push button', 'toggle button', 'check box',
                                            'spin button', 'text', 'combo box')
                   and S.showing(a) and not a.get_name()]
        if unnamed:
            self.unnamed[name] = unnamed

    def firewall_rule(self, app, window):
        """The Firewall page's rule dialog, editing work's first rule (a qubesd without the
        Firewall interface shows no rules: nothing to open)."""
        rules = [a for a in walk(window) if a.get_role_name() == 'table'
                 and a.get_name() == self.t('Firewall rules')]
        if not rules or not S.showing(rules[0]) or rules[0].get_n_rows() == 0:
            return
        rules[0].clear_selection()
        rules[0].add_row_selection(0)
        click(window, self.t('_Edit…'))
        dialog = find(app, role='dialog', name=self.t('Edit Firewall Rule'))
        self.keep('firewall-rule', dialog)
        click(dialog, self.t('_Cancel'))
        gone(dialog)

    def run(self, app):
        t = self.t
        frame = find(app, role='frame', name=t('Qube Manager'))
        table = find(frame, role='tree table', name=t('Qubes'))
        S.wait_until(lambda: S.row_of(table, 'work', t('Name')) is not None, 'the list', 10)
        self.keep('list', frame)

        click(frame, t('_New'))
        dialog = find(app, role='dialog', name=t('New Qube'))
        self.keep('new-qube', dialog)
        # qubesd's refusal in the manager's language: its format translated, the name put in
        find(dialog, role='text', name=t('Name')).set_text_contents('work')
        click(dialog, t('C_reate'))
        find(dialog, role='label', name=t('Cannot create the qube') + '\n'
             + t('Qube already exists: %s') % 'work')
        self.keep('new-qube-refused', dialog)
        click(dialog, t('_Cancel'))
        gone(dialog)

        select(table, 'work', t('Name'))
        click(frame, t('C_lone'))
        dialog = find(app, role='dialog', name=t('Clone Qube'))
        self.keep('clone', dialog)
        click(dialog, t('_Cancel'))
        gone(dialog)

        select(table, 'work', t('Name'))
        click(frame, t('S_ettings'))
        window = find(app, role='frame', name=t('%s: Settings') % 'work')
        apply = find(window, role='push button', name=t('_Apply'))
        S.wait_until(lambda: S.sensitive(apply), 'the settings read', 10)
        tab_list, count = tabs(window)
        for i in range(count):
            tab_list.select_child(i)
            self.keep(f'settings-{i}', window)
            if tab_list.get_child_at_index(i).get_name() == t('F_irewall'):
                self.firewall_rule(app, window)
        click(window, t('_Cancel'))
        gone(window)

        S.menu_item(app, t('_System'), t('_Global Settings'))
        window = find(app, role='frame', name=t('Global Settings'))
        ok = find(window, role='push button', name=t('_OK'))
        S.wait_until(lambda: S.sensitive(ok), 'the global settings read', 10)
        tab_list, count = tabs(window)
        for i in range(count):
            tab_list.select_child(i)
            self.keep(f'global-settings-{i}', window)
        click(window, t('_Cancel'))
        gone(window)

        select(table, 'work', t('Name'))
        S.menu_item(app, t('_Qube'), t('_Logs'))
        window = find(app, role='frame', name=t('%s: Logs') % 'work')
        find(window, role='table', name=t('Journal entries'))
        self.keep('logs', window)
        click(window, t('_Close'))
        gone(window)

        select(table, 'work', t('Name'))
        click(frame, t('_Devices'))
        dialog = find(app, role='dialog', name=t('%s: Block Devices') % 'work')
        find(dialog, role='table', name=t('Block devices'))
        self.keep('block-devices', dialog)
        click(dialog, t('_Close'))
        gone(dialog)

        click(frame, t('Back _Up'))
        dialog = find(app, role='dialog', name=t('Back Up Qubes'))
        backup_table = find(dialog, role='table', name=t('Qubes to back up'))
        S.wait_until(lambda: backup_table.get_n_rows() > 0, 'the qubes to back up', 10)
        self.keep('backup', dialog)
        click(dialog, t('_Close'))
        gone(dialog)

        click(frame, t('Res_tore'))
        dialog = find(app, role='dialog', name=t('Restore Qubes'))
        self.keep('restore', dialog)
        click(dialog, t('_Close'))
        gone(dialog)

        select(table, 'fedora-42', t('Name'))
        click(frame, t('_Remove'))
        alert = find(app, role='alert')
        self.keep('remove-in-use', alert)
        S.do_action([a for a in walk(alert) if a.get_role_name() == 'push button'][0], 'click')
        gone(alert)

        select(table, 'spare', t('Name'))
        click(frame, t('_Remove'))
        alert = find(app, role='alert')
        self.keep('remove', alert)
        click(alert, t('_Cancel'))
        gone(alert)

        self.bus.call(S.ROOT + '/domain/work', S.DOMAIN, 'Start')
        select(table, 'work', t('Name'))
        click(frame, t('_Kill'))
        alert = find(app, role='alert')
        self.keep('kill', alert)
        click(alert, t('_Cancel'))
        gone(alert)

        select(table, 'sys-net', t('Name'))
        click(frame, t('Shut _down'))
        alert = find(app, role='alert')
        find(alert, role='check box')
        self.keep('shutdown-with-clients', alert)
        click(alert, t('_Cancel'))
        gone(alert)
        for qube in ('work', 'sys_2dnet'):
            self.bus.call(f'{S.ROOT}/domain/{qube}', S.DOMAIN, 'Kill')

        def away():
            find(frame, role='label', name=t('The Qubes service is not running'), timeout=10)
            self.keep('qubesd-away', frame)
        self.restart_qubesd(away)
        S.wait_until(lambda: S.row_of(table, 'work', t('Name')) is not None,
                     'the list after qubesd returned', 10)


def select(table, name, name_column):
    r = S.wait_until(lambda: S.row_of(table, name, name_column) is not None, f'{name} listed', 10)
    r = S.row_of(table, name, name_column)
    table.clear_selection()
    table.add_row_selection(r)


def data_words(bus):
    """What the windows show that is data, the same in every language."""
    # the virtualization modes are names, PVH in any language
    words = {'dom0', 'PVH', 'HVM', 'PV'}
    for name, klass, _, uuid, path in bus.call(S.ROOT, S.MANAGER, 'ListDomains')[0]:
        words |= {name, klass, uuid}
        for prop, _, _, value in bus.call(path, S.DOMAIN, 'GetAllProperties')[0]:
            words.add(value)
        words |= {f[len('service.'):] for f in bus.call(path, S.DOMAIN, 'ListFeatures')[0]
                  if f.startswith('service.')}
    for name, klass, _, uuid, path in bus.call(S.ROOT, S.MANAGER, 'ListDomains')[0]:
        try:
            rules = bus.call(path, S.PROPERTIES, 'Get', '(ss)', (FIREWALL, 'Rules'))[0]
        except GLib.Error:
            continue   # dom0, or a qubesd without firewall
        words |= {value for rule in rules for value in rule.values()}
    words |= {label[0] for label in bus.call(S.ROOT, S.MANAGER, 'ListLabels')[0]}
    words |= {pool[0] for pool in bus.call(S.ROOT, S.MANAGER, 'ListPools')[0]}
    words |= set(S.KERNELS)
    # dom0's devices as the Devices page and the Block Devices window show them: port, vendor and
    # product (or name), and the two together in the page's list of devices to assign
    for devclass in ('pci', 'block'):
        for port, _, items in bus.call(S.ROOT + '/domain/dom0', 'org.qubes_os.Admin1.DomainDevices',
                                       'ListAvailableDevices', '(s)', (devclass,))[0]:
            items = dict(items)
            vendor, product, name = items.get('vendor'), items.get('product'), items.get('name')
            desc = f'{vendor} {product}' if vendor and product else (product or name or vendor or '')
            words |= {f'dom0:{port}', port, desc, f'dom0:{port}  {desc}'}
    return words


def run(args, tmp, procs):
    words = Words(PO)
    S.prepare_state(args, tmp)
    address, bus = S.start_bus(tmp, procs)
    state = {'qubesd': S.start_qubesd(args, tmp, address, procs)}
    bus.call(S.ROOT, S.MANAGER, 'CreateDomain', '(ssssa{ss})', ('AppVM', 'spare', 'blue', '', {}))
    try:
        # rules on work's Firewall page: a host, a network that expires, DNS, ICMP, limit
        bus.call(S.ROOT + '/domain/work', FIREWALL, 'SetRules', '(aa{ss})', ([
            {'action': 'accept', 'dsthost': 'qubes-os.org', 'proto': 'tcp', 'dstports': '443',
             'comment': 'Updates'},
            {'action': 'drop', 'dsthost': '192.0.2.0/24', 'expire': str(int(time.time()) + 7200)},
            {'action': 'accept', 'specialtarget': 'dns'}, {'action': 'accept', 'proto': 'icmp'},
            {'action': 'drop'}],))
    except GLib.Error as e:
        print(f'no firewall rules on work: {e.message}')
    data = data_words(bus)

    def restart_qubesd(while_away):
        state['qubesd'].terminate()
        state['qubesd'].wait(10)
        while_away()
        state['qubesd'] = S.start_qubesd(args, tmp, address, procs)

    seen = {}
    for lang, tag in LANGUAGES:
        manager = subprocess.Popen([args.qube_manager, f'--bus-address={address}'],
                                   env=S.manager_env(args, tmp, lang))
        procs.append(manager)
        app = find_app('qube-manager')
        visit = Visit(args, words, lang, tag, bus, restart_qubesd)
        visit.run(app)
        seen[tag] = visit.texts
        assert not visit.unnamed, f'{tag}: without an accessible name: {visit.unnamed}'
        print(f'{tag}: {visit.n} screenshots of {len(visit.texts)} windows')
        assert manager.poll() is None, 'qube-manager exited'
        manager.terminate()
        manager.wait(10)
        procs.remove(manager)

    assert seen['en'].keys() == seen['de'].keys(), (seen['en'].keys(), seen['de'].keys())
    english_only = words.english_only()
    shared = words.shared()
    problems = []
    for window in seen['en']:
        en, de = seen['en'][window], seen['de'][window]
        for text in sorted(de):
            if text in english_only:
                problems.append(f'{window}: {text!r} is English (German: '
                                f'{english_only[text]!r})')
        for text in sorted(en & de):
            if text in data or text in shared or not re.search(r'[A-Za-z]{2}', text):
                continue
            if text in english_only:
                continue   # already reported
            problems.append(f'{window}: {text!r} is the same in English and German')
    assert not problems, 'not German:\n  ' + '\n  '.join(problems)
    print('German: every window has German words only, but for data and shared words')


if __name__ == '__main__':
    try:
        main()
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
