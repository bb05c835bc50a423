#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""qubes-qrexec-run (the qrexec-client-vm-compatible local runner) acting for a management qube
against a real qubesd and qubes-admin-shim: the policy is evaluated by the runner (system info
from qubesd over the bus), an allowed call runs the service from a private services directory,
where admin.vm.List is the shim binary (an executable service, spec qrexec-policy.md §2.3) and
admin.label.List / admin.vm.CurrentState are symlinks to the shim's --listen socket (a socket
service, as /etc/qubes-rpc/admin.* -> qubesd.sock upstream). Exit codes: §2.5.

Every test runs twice (harness.over_each_route): the shim calling qubesd through the bus
(RunnerTests_bus) and over qubesd's private socket (RunnerTests_private); the runner itself asks
for the system information on the bus either way.

Environment: QUBESD, QUBES_BUILD_DIR (for qubes-qrexec-run, qubes-admin-shim and
qubes-policy-admin; QUBES_QREXEC_RUN overrides the runner).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_shim  # noqa: E402


def find_build_binary(env, *parts):
    path = os.environ.get(env)
    if path:
        return path
    shim = test_shim.find_shim()
    build = os.path.dirname(os.path.dirname(os.path.abspath(shim)))
    candidate = os.path.join(build, *parts)
    if os.access(candidate, os.X_OK):
        return candidate
    raise unittest.SkipTest('%s is not set and %s was not built' % (env, parts[-1]))


POLICY = """\
admin.vm.List * test-vm1 @adminvm allow target=dom0
admin.vm.List * test-vm1 test-vm1 allow target=dom0
admin.vm.List * test-vm1 dom0 allow
admin.vm.CurrentState * test-vm1 test-vm1 allow target=dom0
admin.label.List * test-vm1 dom0 allow
test.Script * test-vm1 @adminvm allow target=dom0
test.Script * test-vm1 @default allow target=dom0
test.Script * test-vm1 dom0 allow
test.Missing * test-vm1 dom0 allow
test.NotExec * test-vm1 dom0 allow
test.Ask * test-vm1 dom0 ask default_target=dom0
test.Vm * test-vm1 test-template allow
policy.List * test-vm1 dom0 allow
"""

SCRIPT = """\
#!/bin/sh
echo "argc=$#"
for a in "$@"; do echo "argv=$a"; done
echo "argv0=$0"
env | grep '^QREXEC' | sort
echo "stdin=$(cat)"
echo "to stderr" >&2
[ "$1" = fail ] && exit 3
exit 0
"""


@harness.over_each_route
class RunnerTests(unittest.TestCase):
    ROUTE = 'bus'

    def setUp(self):
        self.runner = find_build_binary('QUBES_QREXEC_RUN', 'qrexec-shim', 'runner', 'qubes-qrexec-run')
        self.policy_admin = find_build_binary('QUBES_POLICY_ADMIN', 'qrexec-shim', 'policy-admin',
                                              'qubes-policy-admin')
        self.shim = test_shim.find_shim()
        self.tmp = tempfile.mkdtemp(prefix='qubes-runner-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

        self.policy_dir = os.path.join(self.tmp, 'policy.d')
        os.makedirs(os.path.join(self.policy_dir, 'include'))
        with open(os.path.join(self.policy_dir, '30-test.policy'), 'w') as f:
            f.write(POLICY)

        self.d = harness.Daemon(test_shim.FIXTURE_XML, extra_args=['--policy-dir=' + self.policy_dir],
                                route=self.ROUTE)
        self.addCleanup(self.d.cleanup)
        self.d.start()
        self.route_check = None
        test_shim.watch_the_route(self)
        self.door = test_shim.SocketDoor(self.shim, self.d)
        self.addCleanup(self.door.stop)

        # the services directory: both kinds of entries
        self.rpc = os.path.join(self.tmp, 'qubes-rpc')
        os.makedirs(self.rpc)
        os.symlink(self.shim, os.path.join(self.rpc, 'admin.vm.List'))
        os.symlink(self.door.path, os.path.join(self.rpc, 'admin.label.List'))
        os.symlink(self.door.path, os.path.join(self.rpc, 'admin.vm.CurrentState'))
        self.script = os.path.join(self.rpc, 'test.Script')
        with open(self.script, 'w') as f:
            f.write(SCRIPT)
        os.chmod(self.script, 0o755)
        os.symlink(self.script, os.path.join(self.rpc, 'test.Ask'))
        with open(os.path.join(self.rpc, 'test.NotExec'), 'w') as f:
            f.write(SCRIPT)
        with open(os.path.join(self.rpc, 'policy.List'), 'w') as f:
            f.write('#!/bin/sh\nexec %s --policy-dir=%s "$@"\n' % (self.policy_admin, self.policy_dir))
        os.chmod(os.path.join(self.rpc, 'policy.List'), 0o755)

    def tearDown(self):
        if self.route_check:
            self.route_check()
        if self.d.proc is not None:
            status = self.d.stop()
            self.assertEqual(status, 0, 'qubesd exited with status %s:\n%s' % (status, self.d.log_tail()))

    def run_vm(self, *args, source='test-vm1', stdin=b'', env=None, options=()):
        # the shim, started as a service, finds qubesd on the "system" bus, or over the private
        # socket the route names
        e = self.d.shim_env()
        if env:
            e.update(env)
        argv = [self.runner, '--policy-dir=' + self.policy_dir, '--services-dir=' + self.rpc,
                '--bus-address=' + self.d.address]
        if source is not None:
            argv.append('--source=' + source)
        argv += list(options) + list(args)
        r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                           timeout=30, cwd=self.tmp)
        return r.returncode, r.stdout, r.stderr.decode(errors='replace')

    def names(self, reply):
        self.assertTrue(reply.startswith(b'0\x00'), reply)
        return [line.split(' ')[0] for line in reply[2:].decode().splitlines()]

    def script_output(self, out):
        lines = out.decode().splitlines()
        env = {}
        argv = []
        for line in lines:
            if line.startswith('QREXEC'):
                k, _, v = line.partition('=')
                env[k] = v
            elif line.startswith('argv='):
                argv.append(line[5:])
        return lines, env, argv

    # --- admin.* through the shim ---------------------------------------------------------

    def test_vm_list_executable_service(self):
        status, out, err = self.run_vm('dom0', 'admin.vm.List')
        self.assertEqual(status, 0, err)
        self.assertEqual(self.names(out), ['dom0', 'test-vm1'], 'test-template must be hidden from test-vm1')

    def test_vm_list_keyword_target_and_env_source(self):
        status, out, err = self.run_vm('@adminvm', 'admin.vm.List', source=None,
                                       env={'QREXEC_SOURCE': 'test-vm1'})
        self.assertEqual(status, 0, err)
        self.assertEqual(self.names(out), ['dom0', 'test-vm1'])
        # the legacy '$' spelling of keywords
        status, out, err = self.run_vm('$adminvm', 'admin.vm.List', source=None,
                                       env={'QUBES_RUNNER_SOURCE': 'test-vm1'})
        self.assertEqual(status, 0, err)
        self.assertEqual(self.names(out), ['dom0', 'test-vm1'])

    def test_system_info_from_the_system_bus(self):
        # no --bus-address: the runner asks qubesd on DBUS_SYSTEM_BUS_ADDRESS
        e = self.d.shim_env()
        r = subprocess.run([self.runner, '--policy-dir=' + self.policy_dir, '--services-dir=' + self.rpc,
                            '--source=test-vm1', 'dom0', 'admin.vm.List'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.names(r.stdout), ['dom0', 'test-vm1'])

    def test_vm_list_redirected_from_a_qube_target(self):
        # "qrexec-client-vm test-vm1 admin.vm.List" is sent to dom0 with target=dom0: the
        # shim gets the requested target (test-vm1) and lists just it
        status, out, err = self.run_vm('test-vm1', 'admin.vm.List')
        self.assertEqual(status, 0, err)
        self.assertEqual(self.names(out), ['test-vm1'])

    def test_socket_service(self):
        status, out, err = self.run_vm('dom0', 'admin.label.List')
        self.assertEqual(status, 0, err)
        self.assertTrue(out.startswith(b'0\x00'), out)
        self.assertIn('red', out[2:].decode().splitlines())
        status, out, err = self.run_vm('test-vm1', 'admin.vm.CurrentState')
        self.assertEqual(status, 0, err)
        self.assertTrue(out.startswith(b'0\x00'), out)
        self.assertIn(b'power_state=Halted', out)

    def test_socket_service_exception_exits_0(self):
        # qubesd's exception is in the reply; a socket service has no exit code of its own
        status, out, err = self.run_vm('dom0', 'admin.label.List+bogus')
        self.assertEqual(status, 0, err)
        self.assertTrue(out.startswith(b'2\x00'), out)

    def test_denied(self):
        for args, kw in ((('dom0', 'admin.vm.Kill'), {}),
                         (('dom0', 'admin.vm.List'), {'source': 'test-template'}),
                         (('dom0', 'admin.vm.List'), {'source': 'dom0'}),
                         (('test-template', 'admin.vm.List'), {}),
                         (('dom0', ''), {}),
                         (('dom0', '+arg'), {})):
            status, out, err = self.run_vm(*args, **kw)
            self.assertEqual(status, 126, (args, kw, err))
            self.assertEqual(out, b'', (args, kw))
            self.assertIn('Request refused', err, (args, kw))

    # --- executable services: argv, environment, stdin, exit codes -------------------------

    def test_script_argument_and_environment(self):
        status, out, err = self.run_vm('dom0', 'test.Script+some-arg', stdin=b'payload',
                                       env={'QREXEC_FOO': 'x', 'QREXEC_AGENT_PID': '42'})
        self.assertEqual(status, 0, err)
        lines, env, argv = self.script_output(out)
        self.assertEqual(argv, ['some-arg'])
        self.assertIn('argv0=' + self.script, lines)
        self.assertEqual(env, {
            'QREXEC_AGENT_PID': '42',
            'QREXEC_REMOTE_DOMAIN': 'test-vm1',
            'QREXEC_SERVICE_FULL_NAME': 'test.Script+some-arg',
            'QREXEC_SERVICE_ARGUMENT': 'some-arg',
            'QREXEC_REQUESTED_TARGET_TYPE': 'name',
            'QREXEC_REQUESTED_TARGET': 'dom0',
        })
        self.assertIn('stdin=payload', lines)
        self.assertNotIn('to stderr', err, 'a dom0 service\'s stderr is not forwarded')

    def test_script_without_argument_and_keywords(self):
        status, out, err = self.run_vm('@adminvm', 'test.Script')
        self.assertEqual(status, 0, err)
        lines, env, argv = self.script_output(out)
        self.assertIn('argc=0', lines)
        self.assertEqual(env['QREXEC_SERVICE_FULL_NAME'], 'test.Script+')
        self.assertEqual(env['QREXEC_SERVICE_ARGUMENT'], '')
        self.assertEqual(env['QREXEC_REQUESTED_TARGET_TYPE'], 'keyword')
        self.assertEqual(env['QREXEC_REQUESTED_TARGET_KEYWORD'], 'adminvm')
        self.assertNotIn('QREXEC_REQUESTED_TARGET', env)
        # empty target: @default, allowed by the policy with target=dom0
        status, out, err = self.run_vm('', 'test.Script+')
        self.assertEqual(status, 0, err)
        lines, env, argv = self.script_output(out)
        self.assertIn('argc=0', lines)
        self.assertEqual(env['QREXEC_REQUESTED_TARGET_KEYWORD'], 'default')

    def test_argument_sanitised(self):
        status, out, err = self.run_vm('dom0', 'test.Script+a/b c+d')
        self.assertEqual(status, 0, err)
        lines, env, argv = self.script_output(out)
        self.assertEqual(argv, ['a_b_c+d'])
        self.assertEqual(env['QREXEC_SERVICE_FULL_NAME'], 'test.Script+a_b_c+d')

    def test_argument_starting_with_dash_is_not_an_option(self):
        status, out, err = self.run_vm('dom0', 'test.Script+--help')
        self.assertEqual(status, 0, err)
        self.assertEqual(self.script_output(out)[2], ['--help'])

    def test_exit_codes(self):
        status, out, err = self.run_vm('dom0', 'test.Script+fail')
        self.assertEqual(status, 3, err)
        self.assertEqual(self.run_vm('dom0', 'test.Missing')[0], 127)
        self.assertEqual(self.run_vm('dom0', 'test.NotExec')[0], 125)
        status, out, err = self.run_vm('test-template', 'test.Vm')
        self.assertEqual(status, 125, 'only dom0 targets are supported')
        self.assertIn('only calls to dom0', err)
        self.assertEqual(self.run_vm()[0], 2, 'usage error')
        self.assertEqual(self.run_vm('dom0')[0], 2, 'usage error')
        self.assertEqual(self.run_vm('dom0', 'x', options=['--no-such-option'])[0], 2)
        status, out, err = self.run_vm(options=['--help'])
        self.assertEqual(status, 0)
        self.assertIn(b'TARGET SERVICE', out)

    def test_ask(self):
        status, out, err = self.run_vm('dom0', 'test.Ask')
        self.assertEqual(status, 126)
        self.assertIn('Request refused', err)
        status, out, err = self.run_vm('dom0', 'test.Ask', options=['--assume-yes'])
        self.assertEqual(status, 0, err)
        self.assertIn('argc=0', out.decode())
        status, out, err = self.run_vm('dom0', 'test.Ask', options=['--assume-yes-target=dom0'])
        self.assertEqual(status, 0, err)
        status, out, err = self.run_vm('dom0', 'test.Ask', options=['--assume-yes-target=test-template'])
        self.assertEqual(status, 126)

    def test_local_program(self):
        outfile = os.path.join(self.tmp, 'out')
        status, out, err = self.run_vm('dom0', 'test.Script+x', 'sh', '-c',
                                       'echo from-local; exec >&-; cat > %s; exit 5' % outfile)
        self.assertEqual(status, 5, err)
        self.assertEqual(out, b'')
        with open(outfile) as f:
            text = f.read()
        self.assertIn('argv=x', text)
        self.assertIn('stdin=from-local', text)

    def test_prefix_data(self):
        status, out, err = self.run_vm('dom0', 'test.Script', stdin=b'rest', options=['--prefix-data=first-'])
        self.assertEqual(status, 0, err)
        self.assertIn('stdin=first-rest', out.decode().splitlines())

    def test_service_stderr_option(self):
        status, out, err = self.run_vm('dom0', 'test.Script', options=['--service-stderr=inherit'])
        self.assertEqual(status, 0)
        self.assertIn('to stderr', err)
        log = os.path.join(self.tmp, 'svc.log')
        status, out, err = self.run_vm('dom0', 'test.Script', options=['--service-stderr=' + log])
        self.assertEqual(status, 0)
        with open(log) as f:
            self.assertIn('to stderr', f.read())

    def test_policy_admin_through_the_runner(self):
        status, out, err = self.run_vm('dom0', 'policy.List')
        self.assertEqual(status, 0, err)
        self.assertEqual(out, b'30-test\n')


load_tests = harness.load_tests

if __name__ == '__main__':
    harness.main()
