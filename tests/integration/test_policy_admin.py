#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""qubes-policy-admin, the policy.* qrexec services (spec admin-api.md §2.6), run as qrexec-daemon
runs a dom0 service (QREXEC_* environment, argument in argv[1], payload on stdin) against a
temporary policy directory: raw replies, "<ExceptionClass> <message>" on stderr with exit 1,
tokens, validation before writing, atomic replacement, path checks.

Environment: QUBES_POLICY_ADMIN (default: $QUBES_BUILD_DIR/qrexec-shim/policy-admin/...).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DEFAULT_POLICY_DIR = os.path.join(harness.SOURCE_DIR, 'data', 'policy.d')


def find_policy_admin():
    path = os.environ.get('QUBES_POLICY_ADMIN')
    if path:
        return path
    dirs = []
    if os.environ.get('QUBES_BUILD_DIR'):
        dirs.append(os.environ['QUBES_BUILD_DIR'])
    for build in ('build', 'build-test', 'builddir'):
        dirs.append(os.path.join(harness.SOURCE_DIR, build))
    for d in dirs:
        candidate = os.path.join(d, 'qrexec-shim', 'policy-admin', 'qubes-policy-admin')
        if os.access(candidate, os.X_OK):
            return candidate
    raise unittest.SkipTest('QUBES_POLICY_ADMIN is not set and no built qubes-policy-admin was found')


def token(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


USER_POLICY = b'test.Service * @anyvm @adminvm allow\n'


class PolicyAdminTests(unittest.TestCase):
    def setUp(self):
        self.binary = find_policy_admin()
        self.tmp = tempfile.mkdtemp(prefix='qubes-policy-admin-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, 'policy.d')
        shutil.copytree(DEFAULT_POLICY_DIR, self.dir)
        self.write('30-user.policy', USER_POLICY)
        # validation works in a scratch directory of its own: it must leave nothing behind
        self.scratch = os.path.join(self.tmp, 'scratch')
        os.makedirs(self.scratch)

    def write(self, name, data):
        with open(os.path.join(self.dir, name), 'wb') as f:
            f.write(data)

    def read(self, name):
        with open(os.path.join(self.dir, name), 'rb') as f:
            return f.read()

    def call(self, service, arg='', payload=b'', src='mgmt'):
        """Run the service as qrexec-daemon would: (exit status, stdout, stderr)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env.update({
            'QREXEC_SERVICE_FULL_NAME': service + '+' + arg,
            'QREXEC_SERVICE_ARGUMENT': arg,
            'QREXEC_REMOTE_DOMAIN': src,
            'QREXEC_REQUESTED_TARGET_TYPE': 'name',
            'QREXEC_REQUESTED_TARGET': 'dom0',
            'TMPDIR': self.scratch,
        })
        argv = ['/etc/qubes-rpc/' + service] + ([arg] if arg else []) + ['--policy-dir=' + self.dir]
        r = subprocess.run(argv, executable=self.binary, env=env, input=payload, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(os.listdir(self.scratch), [], 'validation left files behind')
        return r.returncode, r.stdout, r.stderr.decode(errors='replace')

    def ok(self, *args, **kw):
        status, out, err = self.call(*args, **kw)
        self.assertEqual(status, 0, err)
        self.assertEqual(err, '')
        return out

    def refused(self, klass, *args, **kw):
        status, out, err = self.call(*args, **kw)
        self.assertEqual(status, 1, (args, out, err))
        self.assertEqual(out, b'')
        self.assertTrue(err.startswith(klass + ' '), (args, err))
        return err

    def files(self, sub=''):
        return sorted(os.listdir(os.path.join(self.dir, sub)))

    # --- List / Get ---------------------------------------------------------------------

    def test_list(self):
        self.assertEqual(self.ok('policy.List'), b'30-user\n90-admin-default\n')
        self.write('notes.txt', b'not a policy file')
        self.assertEqual(self.ok('policy.List'), b'30-user\n90-admin-default\n')
        self.assertEqual(self.ok('policy.include.List'),
                         b'admin-global-ro\nadmin-global-rwx\nadmin-local-ro\nadmin-local-rwx\n')
        self.assertIn('Unexpected argument', self.refused('PolicyAdminException', 'policy.List', 'x'))
        self.assertIn('Unexpected payload', self.refused('PolicyAdminException', 'policy.List', payload=b'x'))

    def test_get(self):
        self.assertEqual(self.ok('policy.Get', '30-user'), token(USER_POLICY).encode() + b'\n' + USER_POLICY)
        data = self.read('include/admin-local-rwx')
        self.assertEqual(self.ok('policy.include.Get', 'admin-local-rwx'), token(data).encode() + b'\n' + data)
        self.assertIn('Not found', self.refused('PolicyAdminException', 'policy.Get', 'nope'))
        # an include file is not a policy.Get name and vice versa
        self.refused('PolicyAdminException', 'policy.Get', 'admin-local-rwx')
        self.refused('PolicyAdminException', 'policy.include.Get', '30-user')

    def test_unknown_method(self):
        self.assertIn('unrecognized method', self.refused('PolicyAdminException', 'policy.Frobnicate'))

    # --- Replace ------------------------------------------------------------------------

    def test_replace_with_tokens(self):
        new = b'test.Service * @anyvm @adminvm deny\n'
        self.assertEqual(self.ok('policy.Replace', '30-user', b'any\n' + new), b'')
        self.assertEqual(self.read('30-user.policy'), new)
        # the current token works once; after the change it is stale
        current = token(new).encode()
        newer = b'test.Service * @anyvm @adminvm allow\n'
        self.ok('policy.Replace', '30-user', current + b'\n' + newer)
        self.assertEqual(self.read('30-user.policy'), newer)
        self.assertIn('Token mismatch',
                      self.refused('PolicyAdminTokenException', 'policy.Replace', '30-user', current + b'\n' + new))
        self.assertEqual(self.read('30-user.policy'), newer)
        # new: only for a file that does not exist yet
        self.refused('PolicyAdminTokenException', 'policy.Replace', '30-user', b'new\n' + new)
        self.assertEqual(self.read('30-user.policy'), newer)
        self.ok('policy.Replace', '40-more', b'new\n' + new)
        self.assertEqual(self.read('40-more.policy'), new)
        self.assertEqual(self.ok('policy.List'), b'30-user\n40-more\n90-admin-default\n')
        # a sha256 token for a file that does not exist, garbage tokens, no token line
        self.refused('PolicyAdminTokenException', 'policy.Replace', '50-none', current + b'\n' + new)
        self.refused('PolicyAdminException', 'policy.Replace', '30-user', b'whatever\n' + new)
        self.assertIn('token', self.refused('PolicyAdminException', 'policy.Replace', '30-user', b'any'))
        self.assertEqual(self.files(), ['30-user.policy', '40-more.policy', '90-admin-default.policy', 'include'])

    def test_replace_refuses_invalid_policy(self):
        before = self.read('30-user.policy')
        for bad in (b'test.Service * @anyvm @adminvm allowww\n',
                    b'test.Service * @anyvm\n',
                    b'!include include/does-not-exist\n',
                    b'test.Service * @anyvm @adminvm allow\n\xff\xfe\n',
                    b'test.Service * @anyvm @adminvm allow\x00\n'):
            err = self.refused('PolicyAdminException', 'policy.Replace', '30-user', b'any\n' + bad)
            self.assertIn('validation failed', err)
            self.assertEqual(self.read('30-user.policy'), before)
        # nothing else appeared (no temporary file left)
        self.assertEqual(self.files(), ['30-user.policy', '90-admin-default.policy', 'include'])
        # the error names the file and the line
        err = self.refused('PolicyAdminException', 'policy.Replace', '30-user',
                           b'any\n# comment\ntest.Service * @anyvm @adminvm allowww\n')
        self.assertIn('30-user.policy:2', err)
        # a file name the policy loader would refuse (upper case) is refused too
        self.refused('PolicyAdminException', 'policy.Replace', 'Upper', b'new\n' + USER_POLICY)
        self.assertNotIn('Upper.policy', self.files())

    def test_replace_valid_include(self):
        # a valid !include of an existing include file
        self.ok('policy.Replace', '30-user', b'any\n!include include/admin-local-ro\n')

    def test_include_replace_and_validation_in_context(self):
        # admin-local-rwx is used through !include-service: old per-service syntax
        old = self.read('include/admin-local-rwx')
        self.ok('policy.include.Replace', 'admin-local-rwx', b'any\nmgmt @adminvm allow,target=dom0\n')
        self.assertEqual(self.read('include/admin-local-rwx'), b'mgmt @adminvm allow,target=dom0\n')
        err = self.refused('PolicyAdminException', 'policy.include.Replace', 'admin-local-rwx',
                           b'any\nmgmt @adminvm bogus\n')
        self.assertIn('admin-local-rwx:1', err)
        self.assertEqual(self.read('include/admin-local-rwx'), b'mgmt @adminvm allow,target=dom0\n')
        self.assertNotEqual(old, self.read('include/admin-local-rwx'))
        # a new include file nobody includes yet: any content that parses
        self.ok('policy.include.Replace', 'extra', b'new\ntest.X * @anyvm @adminvm deny\n')
        self.assertIn(b'extra\n', self.ok('policy.include.List'))
        data = self.read('include/extra')
        self.assertEqual(self.ok('policy.include.Get', 'extra'), token(data).encode() + b'\n' + data)

    # --- Remove -------------------------------------------------------------------------

    def test_remove(self):
        self.refused('PolicyAdminTokenException', 'policy.Remove', '30-user', b'sha256:' + b'0' * 64)
        self.refused('PolicyAdminTokenException', 'policy.Remove', '30-user', b'new')
        self.assertIn('30-user.policy', self.files())
        self.ok('policy.Remove', '30-user', token(USER_POLICY).encode())
        self.assertNotIn('30-user.policy', self.files())
        self.assertIn('Not found', self.refused('PolicyAdminException', 'policy.Remove', '30-user', b'any'))
        self.write('31-other.policy', USER_POLICY)
        self.ok('policy.Remove', '31-other', b'any')
        self.assertEqual(self.ok('policy.List'), b'90-admin-default\n')

    def test_include_remove(self):
        # still included by 90-admin-default: removing it would break the policy
        err = self.refused('PolicyAdminException', 'policy.include.Remove', 'admin-local-rwx', b'any')
        self.assertIn('validation failed', err)
        self.assertIn('admin-local-rwx', self.files('include'))
        self.ok('policy.include.Replace', 'extra', b'new\ntest.X * @anyvm @adminvm deny\n')
        self.ok('policy.include.Remove', 'extra', b'any')
        self.assertNotIn('extra', self.files('include'))

    # --- GetFiles -----------------------------------------------------------------------

    def test_get_files(self):
        self.write('20-star.policy', b'* * mgmt @adminvm deny\n')
        self.assertEqual(self.ok('policy.GetFiles', 'test.Service'), b'20-star\n30-user\n')
        self.assertEqual(self.ok('policy.GetFiles', 'other.Service'), b'20-star\n')
        self.ok('policy.include.Replace', 'admin-local-rwx', b'any\nmgmt @adminvm allow,target=dom0\n')
        self.assertEqual(self.ok('policy.GetFiles', 'admin.vm.Start'), b'20-star\nadmin-local-rwx\n')
        self.refused('PolicyAdminException', 'policy.GetFiles')
        self.refused('PolicyAdminException', 'policy.GetFiles', 'a+b')

    # --- names --------------------------------------------------------------------------

    def test_path_traversal_refused(self):
        outside = os.path.join(self.tmp, 'secret.policy')
        with open(outside, 'wb') as f:
            f.write(b'secret')
        os.symlink(outside, os.path.join(self.dir, 'link.policy'))
        os.symlink(outside, os.path.join(self.dir, 'include', 'link'))
        for service, payload in (('policy.Get', b''), ('policy.include.Get', b''),
                                 ('policy.Replace', b'any\n' + USER_POLICY),
                                 ('policy.include.Replace', b'any\n' + USER_POLICY),
                                 ('policy.Remove', b'any'), ('policy.include.Remove', b'any')):
            for name in ('..', '.', '..policy', 'a.b', 'link', '..+x', '.hidden', ''):
                status, out, err = self.call(service, name, payload)
                self.assertIn(status, (1,), (service, name, err))
                self.assertEqual(out, b'', (service, name))
                self.assertNotIn('secret', out.decode(errors='replace'))
        with open(outside, 'rb') as f:
            self.assertEqual(f.read(), b'secret')
        self.assertTrue(os.path.islink(os.path.join(self.dir, 'link.policy')))

    def test_argument_in_argv_only(self):
        # the older spelling: no QREXEC_SERVICE_FULL_NAME, the service from argv[0]
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        env.update({'QREXEC_REMOTE_DOMAIN': 'dom0', 'TMPDIR': self.scratch})
        r = subprocess.run(['/etc/qubes-rpc/policy.Get', '30-user', '--policy-dir=' + self.dir],
                           executable=self.binary, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith(USER_POLICY))

    def test_version_is_for_humans_only(self):
        # at a shell (no QREXEC_* variable): the program's name and version
        env = {k: v for k, v in os.environ.items() if not k.startswith('QREXEC')}
        for argv0 in ('qubes-policy-admin', '/etc/qubes-rpc/policy.List'):
            r = subprocess.run([argv0, '--version'], executable=self.binary, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout.decode(), r'^qubes-policy-admin \(qubesd\) [0-9][^ ]*\n$')
        # from a qube, "--version" is the argument of the call, refused like any other name
        self.write('--version.policy', b'')
        status, out, err = self.call('policy.Get', '--version')
        self.assertNotIn(b'qubesd', out)
        self.assertEqual(status, 0, err)
        self.assertTrue(out.startswith(b'sha256:'), out)
        self.refused('PolicyAdminException', 'policy.List', '--version')


if __name__ == '__main__':
    harness.main()
