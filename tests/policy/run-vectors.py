#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run the policy vectors (vectors.txt) through qubes-policy-query and qubes-policy-lint.

File format, one directive per line ('#' at column 0 outside a file body is a comment):

  policy NAME [sysinfo=upstream|demo] [compat]   start a vector set (fresh policy directory)
  file PATH                                      the lines up to 'end' are the file (PATH relative
  ...                                            to the policy dir; 'compat/NAME' goes to the
  end                                            !compat-4.0 directory)
  default-policy                                 copy data/policy.d (the shipped admin policy) in
  req SOURCE TARGET SERVICE[+ARG]                a request (shell quoting: '' is an empty target)
  = allow TARGET REQUESTED [user=U] [autostart=False] [service=S]
  = deny [notify=no]
  = ask T1 T2 ... [default=T]
  > key=value                                    or spell the expected output line by line
  lint-ok                                        qubes-policy-lint must accept the set
  lint-error FILE:LINE [TEXT]                    lint must report this error (TEXT: a substring)

'= allow' fills in target_uuid from the fixture, as the policy daemon reports it.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile


def uuid_of(sysinfo, target):
    if target in ('dom0', '@adminvm') or target.startswith('uuid:00000000-0000-0000-0000-000000000000'):
        return None
    if target.startswith('@dispvm:'):
        tmpl = target[len('@dispvm:'):]
        return '@dispvm:uuid:' + lookup(sysinfo, tmpl)['uuid']
    return 'uuid:' + lookup(sysinfo, target)['uuid']


def lookup(sysinfo, name):
    doms = sysinfo['domains']
    if name in doms:
        return doms[name]
    for d in doms.values():
        if 'uuid:' + d['uuid'] == name:
            return d
    raise KeyError(name)


def expand(line, sysinfo):
    words = line.split()
    kind, rest = words[0], words[1:]
    opts = dict(w.split('=', 1) for w in rest if '=' in w)
    pos = [w for w in rest if '=' not in w]
    if kind == 'deny':
        return ['result=deny'], {'notify': opts.get('notify', 'yes')}
    if kind == 'ask':
        out = ['result=ask', 'targets=' + ' '.join(pos)]
        if 'default' in opts:
            out.append('default_target=' + opts['default'])
        extra = {'notify': opts['notify']} if 'notify' in opts else {}
        return out, extra
    if kind == 'allow':
        target, requested = pos
        out = ['result=allow', 'user=' + opts.get('user', 'DEFAULT'), 'target=' + target]
        u = uuid_of(sysinfo, target)
        if u and 'service' not in opts:
            out.append('target_uuid=' + u)
        elif 'service' in opts:
            out.append('target_uuid=' + opts['target_uuid'])
        out.append('autostart=' + opts.get('autostart', 'True'))
        out.append('requested_target=' + requested)
        if 'service' in opts:
            out.append('service=' + opts['service'])
        extra = {'notify': opts['notify']} if 'notify' in opts else {}
        return out, extra
    raise ValueError('bad expectation: ' + line)


class Runner:
    def __init__(self, args):
        self.args = args
        self.failures = 0
        self.count = 0
        self.lint_count = 0
        self.tmp = tempfile.mkdtemp(prefix='policy-vectors-')
        self.sysinfo_files = {
            'upstream': os.path.join(args.data, 'system-info-upstream.json'),
            'demo': os.path.join(args.data, 'system-info-demo.json'),
        }
        self.sysinfo = {k: json.load(open(v)) for k, v in self.sysinfo_files.items()}

    def fail(self, where, msg):
        self.failures += 1
        print('FAIL %s: %s' % (where, msg))

    def new_set(self, name, opts):
        self.name = name
        self.si = opts.get('sysinfo', 'upstream')
        self.dir = os.path.join(self.tmp, name, 'policy.d')
        self.compat = os.path.join(self.tmp, name, 'compat')
        os.makedirs(self.dir)
        os.makedirs(self.compat)

    def write(self, path, text):
        if path.startswith('compat/'):
            full = os.path.join(self.compat, path[len('compat/'):])
        else:
            full = os.path.join(self.dir, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, 'w') as f:
            f.write(text)

    def query(self, where, argv, expected, extra):
        self.count += 1
        cmd = [self.args.query, '--verbose', '--policy-dir', self.dir, '--compat-dir', self.compat,
               '--system-info', self.sysinfo_files[self.si]] + ['--'] + argv
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        lines = p.stdout.splitlines()
        plain = [l for l in lines if l.split('=', 1)[0] not in ('notify', 'rule', 'reason')]
        verbose = dict(l.split('=', 1) for l in lines if l.split('=', 1)[0] in ('notify', 'rule', 'reason'))
        if plain != expected:
            self.fail(where, '%s\n  expected: %r\n  got:      %r\n  reason: %s\n  stderr: %s' % (
                ' '.join(shlex.quote(a) for a in argv), expected, plain, verbose.get('reason'), p.stderr.strip()))
            return
        for k, v in extra.items():
            if verbose.get(k) != v:
                self.fail(where, '%s: %s=%r expected, got %r' % (' '.join(argv), k, v, verbose.get(k)))

    def lint(self):
        p = subprocess.run([self.args.lint, '--policy-dir', self.dir, '--compat-dir', self.compat],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        return p.returncode, p.stdout

    def run(self, path):
        with open(path) as f:
            lines = f.read().split('\n')
        i = 0
        pending = None  # (where, argv, expected lines, extra)

        def flush():
            nonlocal pending
            if pending:
                self.query(*pending)
            pending = None

        while i < len(lines):
            line = lines[i]
            where = '%s:%d' % (os.path.basename(path), i + 1)
            i += 1
            if not line.strip() or line.startswith('#'):
                continue
            word, _, rest = line.strip().partition(' ')
            if word == 'policy':
                flush()
                parts = rest.split()
                opts = dict(p.split('=', 1) if '=' in p else (p, True) for p in parts[1:])
                self.new_set(parts[0], opts)
            elif word == 'file':
                flush()
                body = []
                while lines[i] != 'end':
                    body.append(lines[i])
                    i += 1
                i += 1
                self.write(rest.strip(), '\n'.join(body) + ('\n' if body else ''))
            elif word == 'default-policy':
                flush()
                shutil.copytree(self.args.default_policy, self.dir, dirs_exist_ok=True)
            elif word == 'req':
                flush()
                pending = (where, shlex.split(rest), [], {})
            elif word == '=':
                exp, extra = expand(rest, self.sysinfo[self.si])
                pending[2].extend(exp)
                pending[3].update(extra)
            elif word == '>':
                pending[2].append(rest.strip())
            elif word == 'lint-ok':
                flush()
                self.lint_count += 1
                rc, out = self.lint()
                if rc != 0:
                    self.fail(where, 'lint failed on a valid set:\n' + out)
            elif word == 'lint-error':
                flush()
                self.lint_count += 1
                loc, _, text = rest.partition(' ')
                rc, out = self.lint()
                prefix = os.path.join(self.dir, loc) + ':'
                ok = rc == 1 and any(l.startswith(prefix) and text.strip() in l for l in out.splitlines())
                if not ok:
                    self.fail(where, 'lint: expected %s %r, got rc=%d:\n%s' % (loc, text, rc, out))
            else:
                self.fail(where, 'bad directive: ' + line)
        flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--query', required=True)
    ap.add_argument('--lint', required=True)
    ap.add_argument('--data', required=True)
    ap.add_argument('--default-policy', required=True)
    ap.add_argument('--keep', action='store_true')
    args = ap.parse_args()
    r = Runner(args)
    try:
        r.run(os.path.join(args.data, 'vectors.txt'))
    finally:
        if not args.keep:
            shutil.rmtree(r.tmp)
    print('%d requests, %d lint checks, %d failures' % (r.count, r.lint_count, r.failures))
    return 1 if r.failures else 0


if __name__ == '__main__':
    sys.exit(main())
