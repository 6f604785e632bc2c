import test from 'ava';
import fc from 'fast-check';
import { planAttempts, UpstreamHealth } from './health.ts';

const U = (key: string) => ({ key });

test('failure scores decay by half-life, unlike Spartan\'s counters; successes take half off', (t) => {
  const health = new UpstreamHealth({ halfLifeMs: 30_000 });
  t.is(health.score('a', 0), 0);
  health.recordFailure('a', 0);
  health.recordFailure('a', 0);
  t.is(health.score('a', 0), 2);
  t.is(health.score('a', 30_000), 1);
  t.is(health.score('a', 90_000), 0.25);
  health.recordSuccess('a', 90_000);
  t.is(health.score('a', 90_000), 0.125);
  health.recordSuccess('b', 0);
  t.is(health.score('b', 0), 0, 'success on a healthy upstream stays 0');
});

test('fewer than 3 upstreams: all asked at once; 3 or more: the 2 healthiest, the rest as fallbacks', (t) => {
  t.deepEqual(planAttempts([U('a'), U('b')], () => 5, Math.random), { first: [U('a'), U('b')], fallbacks: [] });
  const scores: Record<string, number> = { a: 3.2, b: 0, c: 1.5, d: 0.4 };
  const plan = planAttempts([U('a'), U('b'), U('c'), U('d')], (k) => scores[k]!, () => 0.5);
  t.deepEqual(new Set(plan.first.map((u) => u.key)), new Set(['b', 'd']), 'bucket 0 (scores below 0.5) first');
  t.deepEqual(plan.fallbacks.map((u) => u.key), ['c', 'a']);
});

test('a failed upstream comes back after one half-life (its score rounds to 0)', (t) => {
  const health = new UpstreamHealth({ halfLifeMs: 30_000 });
  const ups = [U('dead'), U('x'), U('y')];
  health.recordFailure('dead', 0);
  const chosenAt = (ms: number) => planAttempts(ups, (k) => health.score(k, ms), Math.random).first.some((u) => u.key === 'dead');
  t.false(chosenAt(1_000));
  t.false(chosenAt(29_000));
  // After one half-life its score is 0.5: same bucket as the healthy ones, so picked at random again.
  let picked = 0;
  for (let i = 0; i < 200; i++) if (chosenAt(31_000)) picked++;
  t.true(picked > 80 && picked < 190, `picked ${picked}/200`);
});

test('property: the plan is a permutation, first has min(2, n) or all n < 3, and never ranks a higher bucket first', (t) => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 1, maxLength: 8 }), (scores) => {
      const ups = scores.map((_, i) => U(String(i)));
      const plan = planAttempts(ups, (k) => scores[Number(k)]!, Math.random);
      const order = [...plan.first, ...plan.fallbacks].map((u) => Number(u.key));
      if ([...order].sort((a, b) => a - b).join() !== ups.map((_, i) => i).join()) return false;
      if (ups.length < 3) return plan.first.length === ups.length;
      if (plan.first.length !== 2) return false;
      const buckets = order.map((i) => Math.round(scores[i]!));
      return buckets.every((b, i) => i === 0 || buckets[i - 1]! <= b);
    }),
  );
  t.pass('property held');
});
