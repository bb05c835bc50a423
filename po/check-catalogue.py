#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The catalogue is complete and current (meson test po-catalogue).

1. po/POTFILES.in lists every source file with translatable text (_( "…" ), N_( "…" ), C_( ),
   translatable="yes", an Admin API error format qerror_set(e, code, "…"), a polkit actions or
   desktop file), and every file it lists exists.
2. po/qubesd.pot is not stale: xgettext run now over POTFILES.in (the arguments of po/meson.build)
   finds the same messages (context, msgid, plural; line numbers and dates do not count).
3. Every language in po/LINGUAS translates every one of those messages, none fuzzy; `msgfmt -c`
   accepts it; and a translated error format keeps its %s fields (a client substitutes them in
   order).

Fix: `meson compile -C <build> qubesd-pot qubesd-update-po`, then translate what is new.
"""
import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile

SKIP_DIRS = {'.git', 'po', 'tests', 'docs', 'bench', 'subprojects'}
MARKERS = [
    re.compile(r'(?<![A-Za-z0-9_])N?_\s*\(\s*"'),
    re.compile(r'(?<![A-Za-z0-9_])N?C_\s*\(\s*"'),
    re.compile(r'translatable\s*=\s*"yes"'),
    # the format is the third argument: a literal there, not a declaration or a variable
    re.compile(r'(?<![A-Za-z0-9_])qerror_set(?:_repr)?\s*\(\s*[^,;()]+,\s*[^,;()]+,\s*"'),
]
ALWAYS = ('.policy.in', '.desktop.in', '.gschema.xml', '.metainfo.xml.in')


def translatable_files(root):
    found = set()
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        # build directories (meson's, wherever they are) and what is not shipped text
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith('build')
                   and not os.path.exists(os.path.join(top, d, 'meson-private'))]
        for name in files:
            rel = os.path.normpath(os.path.join(rel_top, name))
            if name.endswith(ALWAYS):
                found.add(rel)
                continue
            if not name.endswith(('.c', '.h', '.ui')):
                continue
            text = open(os.path.join(top, name), encoding='utf-8', errors='replace').read()
            if any(m.search(text) for m in MARKERS):
                found.add(rel)
    return found


def read_po(path):
    """{(msgctxt, msgid, msgid_plural): (flags, [msgstr…])} without the header and obsolete
    entries."""
    entries = {}
    with open(path, encoding='utf-8') as f:
        text = f.read()
    for block in text.split('\n\n'):
        lines = [l for l in block.splitlines() if l.strip() and not l.startswith('#~')]
        fields, key, flags = {}, None, set()
        for line in lines:
            if line.startswith('#,'):
                flags |= {f.strip() for f in line[2:].split(',')}
            m = re.match(r'(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?)\s+(".*")$', line)
            if m:
                key = m.group(1)
                fields[key] = ast.literal_eval(m.group(2))
            elif line.startswith('"') and key:
                fields[key] += ast.literal_eval(line)
        if not fields.get('msgid'):
            continue
        strs = [v for k, v in sorted(fields.items()) if k.startswith('msgstr')]
        entries[(fields.get('msgctxt'), fields['msgid'], fields.get('msgid_plural'))] = (flags, strs)
    return entries


def show(key):
    ctxt, msgid, plural = key
    return (f'[{ctxt}] ' if ctxt else '') + repr(msgid) + (f' / {plural!r}' if plural else '')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--source-root', required=True)
    ap.add_argument('--xgettext', required=True)
    ap.add_argument('--msgfmt', required=True)
    ap.add_argument('--datadirs', default='')
    ap.add_argument('xgettext_args', nargs='*')
    a = ap.parse_args()
    root = os.path.abspath(a.source_root)
    po_dir = os.path.join(root, 'po')
    problems = []

    listed = [l.strip() for l in open(os.path.join(po_dir, 'POTFILES.in'), encoding='utf-8')
              if l.strip() and not l.startswith('#')]
    for f in listed:
        if not os.path.isfile(os.path.join(root, f)):
            problems.append(f'po/POTFILES.in lists {f}, which does not exist')
    for f in sorted(translatable_files(root) - set(listed)):
        problems.append(f'{f} has translatable text but is not in po/POTFILES.in')

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        if a.datadirs:
            env['GETTEXTDATADIRS'] = a.datadirs
        r = subprocess.run([a.xgettext, '--package-name=qubesd', '-p', tmp, '-f',
                            os.path.join(po_dir, 'POTFILES.in'), '-D', root, '-o', 'fresh.pot']
                           + a.xgettext_args, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        fresh = read_po(os.path.join(tmp, 'fresh.pot'))
    committed = read_po(os.path.join(po_dir, 'qubesd.pot'))
    stale = False
    for key in sorted(set(fresh) - set(committed), key=show):
        problems.append(f'po/qubesd.pot lacks {show(key)}')
        stale = True
    for key in sorted(set(committed) - set(fresh), key=show):
        problems.append(f'po/qubesd.pot still has {show(key)}, which no source has')
        stale = True

    langs = [l.strip() for l in open(os.path.join(po_dir, 'LINGUAS'), encoding='utf-8')
             if l.strip() and not l.startswith('#')]
    for lang in langs:
        path = os.path.join(po_dir, lang + '.po')
        r = subprocess.run([a.msgfmt, '-c', '-o', os.devnull, path], capture_output=True, text=True)
        if r.returncode != 0:
            problems.append(f'msgfmt -c po/{lang}.po fails:\n{r.stderr}')
        po = read_po(path)
        for key in sorted(fresh, key=show):
            flags, strs = po.get(key, (set(), []))
            if key not in po or not strs or not all(strs):
                problems.append(f'po/{lang}.po does not translate {show(key)}')
            elif 'fuzzy' in flags:
                problems.append(f'po/{lang}.po has a fuzzy translation of {show(key)}')
            elif 'no-c-format' in fresh[key][0] and any(s.count('%s') != key[1].count('%s')
                                                        for s in strs):
                problems.append(f'po/{lang}.po: the translation of {show(key)} does not keep its '
                                f'{key[1].count("%s")} %s fields')

    for p in problems:
        print(p)
    if problems:
        if stale:
            print('\nRegenerate: meson compile -C <build> qubesd-pot qubesd-update-po')
        print(f'\n{len(problems)} problem(s)')
        return 1
    print(f'{len(listed)} files listed, {len(fresh)} messages, translated in: {" ".join(langs)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
