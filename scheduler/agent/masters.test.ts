import test from 'ava';
import { isStrataError } from '../../common/errors.ts';
import { MasterUrls } from './masters.ts';

test('one master: a failure changes nothing', (t) => {
  const m = new MasterUrls('http://127.0.0.1:8080/');
  m.failed('http://127.0.0.1:8080');
  t.is(m.current, 'http://127.0.0.1:8080');
});

test('several masters: a failure of the current one moves to the next, round the list; a stale failure is ignored', (t) => {
  const m = new MasterUrls(' http://a:1, http://b:2/,http://c:3');
  t.deepEqual(m.all, ['http://a:1', 'http://b:2', 'http://c:3']);
  t.is(m.current, 'http://a:1');
  m.failed('http://a:1');
  t.is(m.current, 'http://b:2');
  // A call to a that started before the move fails late: not a second step.
  m.failed('http://a:1');
  t.is(m.current, 'http://b:2');
  m.failed('http://b:2');
  m.failed('http://c:3');
  t.is(m.current, 'http://a:1');
});

test('an empty list or a URL that is not http(s) is CONFIG_INVALID, naming it', (t) => {
  t.true(isStrataError(t.throws(() => new MasterUrls(' , ')), 'CONFIG_INVALID'));
  const err = t.throws(() => new MasterUrls('http://a:1,ftp://b'));
  t.true(isStrataError(err, 'CONFIG_INVALID'));
  t.regex(err.message, /ftp:\/\/b/);
});
