import test from 'ava';
import { StrataError } from '../common/errors.ts';
import { runLeaderRounds } from './leader-rounds.ts';
import type { RecordView } from './model/records.ts';
import type { Leadership } from './store/election.ts';

/** A view whose changes the test fires by hand, and a leadership the test ends. */
function fakes(): { view: RecordView<unknown> & { change(): void; closed: boolean }; leadership: Leadership & { end(): void; resigned: boolean } } {
  const listeners = new Set<() => void>();
  let endView!: () => void;
  const ended = new Promise<void>((resolve) => {
    endView = resolve;
  });
  const view = {
    closed: false,
    subscribe(l: () => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    change() {
      for (const l of listeners) l();
    },
    ended,
    close() {
      view.closed = true;
      endView();
    },
  } as unknown as RecordView<unknown> & { change(): void; closed: boolean };
  const abort = new AbortController();
  const leadership = {
    signal: abort.signal,
    resigned: false,
    async resign() {
      leadership.resigned = true;
    },
    end() {
      abort.abort();
      view.close();
    },
  } as unknown as Leadership & { end(): void; resigned: boolean };
  return { view, leadership };
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
};

test('rounds: a change wakes one, "again" repeats at once, a failure is retried, a time schedules one, the end closes the views', async (t) => {
  const { view, leadership } = fakes();
  const errors: string[] = [];
  let calls = 0;
  const results: ('again' | 'fail' | number | undefined)[] = ['again', undefined, 'fail', undefined, Date.now() + 30, undefined];
  const done = runLeaderRounds({
    leadership,
    log: { error: (_obj, msg) => errors.push(msg) },
    what: 'test',
    views: [view],
    retryMs: 10,
    round: async () => {
      const r = results[calls++];
      if (r === 'fail') throw new Error('boom');
      return r;
    },
  });
  await until(() => calls >= 2);
  t.is(calls, 2, 'the first round, then again at once');
  view.change();
  await until(() => calls >= 4);
  t.is(calls, 4, 'a change: a round that fails, retried once');
  t.deepEqual(errors, ['test round failed; retrying in 0.01 s']);
  view.change();
  await until(() => calls >= 6);
  t.is(calls, 6, 'a round asking for a later time gets it without a change');
  leadership.end();
  await done;
  t.true(view.closed);
  t.false(leadership.resigned);
});

test('rounds: a fenced write ends them without a retry', async (t) => {
  const { view, leadership } = fakes();
  let calls = 0;
  const done = runLeaderRounds({
    leadership,
    log: { error: () => t.fail('a fenced write is no error') },
    what: 'test',
    views: [view],
    retryMs: 5,
    round: async () => {
      calls++;
      throw new StrataError('STORE_FENCED', 'deposed');
    },
  });
  await new Promise((r) => setTimeout(r, 50));
  t.is(calls, 1);
  leadership.end();
  await done;
});
