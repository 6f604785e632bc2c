import test from 'ava';
import { Registry } from 'prom-client';
import { hotHistogram } from './metrics.ts';

test('hot histogram: cumulative buckets, sum and count per label, in the Prometheus text format; one per registry', async (t) => {
  const registry = new Registry();
  const spec = { name: 'x_seconds', help: 'x', labelName: 'upstream', buckets: [0.01, 0.001, 0.1] };
  const h = hotHistogram(registry, spec);
  t.is(hotHistogram(registry, spec), h, 'the same registry gives the same histogram');
  const a = h.cell('10.0.0.1:53');
  for (const v of [0.0005, 0.005, 0.05, 5]) a.observe(v);
  h.cell('10.0.0.2:53').observe(0.002);
  const text = await registry.metrics();
  t.true(text.includes('# TYPE x_seconds histogram'));
  for (const [le, n] of [['0.001', 1], ['0.01', 2], ['0.1', 3], ['+Inf', 4]] as const) t.regex(text, new RegExp(`x_seconds_bucket\\{upstream="10\\.0\\.0\\.1:53",le="${le.replace('+', '\\+')}"\\} ${n}`));
  t.regex(text, /x_seconds_sum\{upstream="10\.0\.0\.1:53"\} 5\.0555/);
  t.regex(text, /x_seconds_count\{upstream="10\.0\.0\.2:53"\} 1/);
  registry.resetMetrics();
  t.false((await registry.metrics()).includes('x_seconds_count{'));
});
