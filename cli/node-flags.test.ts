import test from 'ava';
import { DEFAULT_SEMI_SPACE_MB, EXPOSE_GC, isServerVerb, reexecFlags, semiSpaceFlags } from './node-flags.ts';

test('server verbs get the small young generation; other verbs run as they are', (t) => {
  const flag = `--max-semi-space-size=${DEFAULT_SEMI_SPACE_MB}`;
  for (const args of [['up'], ['master', '--store-backend', 'etcd'], ['agent', '--agent-master-url', 'http://m:8080']]) {
    t.deepEqual(reexecFlags({ args, execArgv: [], env: {} }), [flag, EXPOSE_GC], args.join(' '));
  }
  for (const args of [[], ['agent', 'list'], ['app', 'list'], ['dns', 'lookup', 'leader.mesos']]) {
    t.is(reexecFlags({ args, execArgv: [], env: {} }), undefined, args.join(' '));
  }
  t.true(isServerVerb(['agent']));
  t.false(isServerVerb(['agent', 'list']));
});

test('a semi-space size already given wins; STRATA_NODE_SEMI_SPACE_MB sets it, 0 leaves V8 default, bad values are refused by name', (t) => {
  t.deepEqual(reexecFlags({ args: ['up'], execArgv: ['--max-semi-space-size=8'], env: {} }), [EXPOSE_GC]);
  t.deepEqual(reexecFlags({ args: ['up'], execArgv: [], env: { NODE_OPTIONS: '--max_semi_space_size=4' } }), [EXPOSE_GC]);
  t.is(reexecFlags({ args: ['up'], execArgv: ['--max-semi-space-size=8', '--expose-gc'], env: {} }), undefined, 'both given: no re-execution');
  t.deepEqual(semiSpaceFlags({ STRATA_NODE_SEMI_SPACE_MB: '16' }), ['--max-semi-space-size=16']);
  t.deepEqual(semiSpaceFlags({ STRATA_NODE_SEMI_SPACE_MB: '0' }), []);
  t.deepEqual(reexecFlags({ args: ['up'], execArgv: [], env: { STRATA_NODE_SEMI_SPACE_MB: '0' } }), [EXPOSE_GC]);
  for (const bad of ['-1', '65', '2.5', 'big']) {
    t.throws(() => semiSpaceFlags({ STRATA_NODE_SEMI_SPACE_MB: bad }), { message: /STRATA_NODE_SEMI_SPACE_MB/ }, bad);
  }
});
