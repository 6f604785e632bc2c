/** The placement core's public surface: `plan()` and its types, the `PlanSink` port, and the recording fake. */
export { plan } from './plan.ts';
export { RecordingPlanSink, type RecordingPlanSinkOptions } from './recorder.ts';
export { compileConstraint, fieldValue, meetsConstraint } from './constraints.ts';
export { dominantShare } from './drf.ts';
export * from './types.ts';
