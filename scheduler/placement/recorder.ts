/**
 * A fake {@link PlanSink} for tests (Nomad's `Harness`): it records every
 * submitted plan and applies each placement unless `refuse` says otherwise.
 * Tests assert on `plans` and `results`.
 */
import type { Placement, Plan, PlanResult, PlanSink } from './types.ts';

export interface RecordingPlanSinkOptions {
  /** Return a reason to refuse a placement (e.g. to simulate a state that moved on); undefined applies it. */
  readonly refuse?: (placement: Placement, plan: Plan) => string | undefined;
}

export class RecordingPlanSink implements PlanSink {
  readonly plans: Plan[] = [];
  readonly results: PlanResult[] = [];
  readonly #refuse: RecordingPlanSinkOptions['refuse'];

  constructor(options: RecordingPlanSinkOptions = {}) {
    this.#refuse = options.refuse;
  }

  submitPlan(plan: Plan): Promise<PlanResult> {
    this.plans.push(plan);
    const applied: Placement[] = [];
    const refused: { placement: Placement; reason: string }[] = [];
    for (const placement of plan.placements) {
      const reason = this.#refuse?.(placement, plan);
      if (reason === undefined) applied.push(placement);
      else refused.push({ placement, reason });
    }
    const result: PlanResult = { applied, refused };
    this.results.push(result);
    return Promise.resolve(result);
  }

  /** Every placement applied so far, in order. */
  get applied(): Placement[] {
    return this.results.flatMap((r) => [...r.applied]);
  }
}

