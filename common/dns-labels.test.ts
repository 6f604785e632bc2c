import test from 'ava';
import { agentIdTail, domainFrag, expandIpv6, isValidName, marathonHostname, reverseName, rfc1123Label, rfc952Label, taskIdHash, underscoreLabel, withLabelSuffix, zbase32Head } from './dns-labels.ts';

const RFC1123: [string, string, string][] = [
  ['lower-cases', 'WebApp', 'webapp'],
  ['maps . _ - to -', 'my_app.v2', 'my-app-v2'],
  ['drops other characters', 'a/b:c@d', 'abcd'],
  ['trims leading and trailing -', '--web--', 'web'],
  ['keeps leading digits', '1web', '1web'],
  ['empty when nothing is left', '!!!', ''],
  ['cuts to 63', 'a'.repeat(70), 'a'.repeat(63)],
  ['refills after trimming a - at the cut', `${'a'.repeat(62)}-${'-b'}c`, `${'a'.repeat(62)}b`],
  ['never ends with - after a refill', `${'a'.repeat(62)}--x-`, `${'a'.repeat(62)}x`],
];

for (const [title, input, expected] of RFC1123) {
  test(`rfc1123Label ${title}`, (t) => {
    t.is(rfc1123Label(input), expected);
  });
}

test('rfc952Label: 24 characters, no leading digits or hyphens', (t) => {
  t.is(rfc952Label('123-web'), 'web');
  // Cut at 24 ends in `-`: Mesos-DNS trims it and refills from what follows.
  t.is(rfc952Label('a-very-long-application-name-here'), 'a-very-long-applicationn');
  t.is(rfc952Label('x'.repeat(30)).length, 24);
});

test('domainFrag keeps dots between labels and drops empty parts (framework names)', (t) => {
  t.is(domainFrag('My.Frame_work', rfc1123Label), 'my.frame-work');
  t.is(domainFrag('a..b.!', rfc1123Label), 'a.b');
  t.is(domainFrag('/mygroup/myapp', rfc1123Label), 'mygroupmyapp');
});

test('underscoreLabel keeps _<label> within 63 characters (MD #522)', (t) => {
  t.is(underscoreLabel('web'), '_web');
  t.is(underscoreLabel('a'.repeat(63)).length, 63);
  t.is(underscoreLabel(`${'a'.repeat(61)}-b`), `_${'a'.repeat(61)}`);
});

test('withLabelSuffix shortens the label, not the suffix', (t) => {
  t.is(withLabelSuffix('web', '-abcde-s0'), 'web-abcde-s0');
  const long = withLabelSuffix('a'.repeat(63), '-abcde-s0');
  t.is(long.length, 63);
  t.true(long.endsWith('-abcde-s0'));
});

test('zbase32 head matches the zbase32 test vector (F0 BF C7 → 6n9hq)', (t) => {
  t.is(zbase32Head(Uint8Array.from([0xf0, 0xbf, 0xc7, 0x00])), '6n9hq');
  t.is(zbase32Head(Uint8Array.from([0, 0, 0, 0])), 'yyyyy');
});

test('taskIdHash is 5 zbase32 characters of SHA-1 and stable', (t) => {
  const h = taskIdHash('web.instance-1._app.1');
  t.regex(h, /^[ybndrfg8ejkmcpqxot1uwisza345h769]{5}$/);
  t.is(taskIdHash('web.instance-1._app.1'), h);
  t.not(taskIdHash('web.instance-2._app.1'), h);
});

test('agentIdTail is the last - field, lower-cased (Mesos slaveIDTail)', (t) => {
  t.is(agentIdTail('20151020-170929-16842879-5050-1-S3', rfc1123Label), 's3');
  t.is(agentIdTail('agent_1', rfc1123Label), 'agent-1');
});

test('marathonHostname reverses the path (PathId.toHostname)', (t) => {
  t.is(marathonHostname('/group/web'), 'web.group');
  t.is(marathonHostname('/a/b/c'), 'c.b.a');
  t.is(marathonHostname('/web'), 'web');
});

test('reverse names for IPv4 and IPv6', (t) => {
  t.is(reverseName('10.1.2.3'), '3.2.1.10.in-addr.arpa');
  t.is(reverseName('fd01:b::1'), `1.${'0.'.repeat(23)}b.0.0.0.1.0.d.f.ip6.arpa`);
  t.is(expandIpv6('::ffff:10.0.0.1'), '00000000000000000000ffff0a000001');
  t.is(reverseName('not-an-ip'), undefined);
});

test('isValidName', (t) => {
  t.true(isValidName('_web._tcp.marathon.mesos'));
  t.false(isValidName('-web.mesos'));
  t.false(isValidName(`${'a'.repeat(64)}.mesos`));
  t.false(isValidName('a..mesos'));
  t.false(isValidName(`${'a.'.repeat(127)}mesos`));
});
