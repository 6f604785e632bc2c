/**
 * Marathon constraints (`[field, operator, value?]`) as pure checks of one
 * agent against the app's instances so far. Semantics follow Marathon's
 * `Constraints.scala` (shared/reference/scheduler.md §1.2):
 *
 * - Fields: `hostname` / `@hostname`, `@region`, `@zone`; anything else is an
 *   agent attribute. Values compare as strings (attributes are stored in
 *   Marathon's text form); an agent lacking the field matches only `UNLIKE`.
 * - `UNIQUE`: no instance of the app has this value yet.
 * - `CLUSTER v`: the value is `v`. `CLUSTER`: the first instance goes anywhere
 *   the field is set, later ones to the value the earlier ones have.
 * - `LIKE v` / `UNLIKE v`: `v` matches / does not match the whole value.
 * - `MAX_PER n`: fewer than `n` instances have this value.
 * - `IS v`: equality; numbers compare at three decimals (`0.8` is `0.8001`).
 * - `GROUP_BY [n]` (Marathon 1.11's targets, without its divide by zero):
 *   `k` = `n`, or when absent the number of distinct values among placeable
 *   agents. A value is accepted while it holds fewer than ⌈instances ÷ k⌉ of
 *   the app's instances, and a value not used yet only while fewer than `k`
 *   values are used. With `k` = 0 no agent carries the field, so none matches.
 *
 * "Instances" are the app's non-terminal tasks plus what this plan placed.
 */
import type { Constraint } from '../../control-plane/model/schemas.ts';
import type { PlacementAgent } from './types.ts';

/** A constraint parsed once per plan. An invalid one (bad regex or count) matches no agent. */
export interface CompiledConstraint {
  readonly source: Constraint;
  readonly field: string;
  readonly operator: string;
  readonly value: string | undefined;
  readonly regex: RegExp | undefined;
  /** MAX_PER / GROUP_BY count. */
  readonly count: number | undefined;
  readonly invalid: boolean;
}

/** What a check needs to know about the app's instances for one constraint field. */
export interface FieldContext {
  /** Value → how many of the app's instances sit on agents with that value. */
  readonly counts: ReadonlyMap<string, number>;
  /** The app's target instance count (GROUP_BY). */
  readonly instances: number;
  /** Distinct values of the field among placeable agents (GROUP_BY without a count). */
  readonly distinctValues: number;
}

const POSITIVE_INT = /^[1-9][0-9]*$/;
const NUMBER = /^-?[0-9]+(?:\.[0-9]+)?$/;

/** Parse a constraint; never throws. */
export function compileConstraint(source: Constraint): CompiledConstraint {
  const [field = '', operator = '', value] = source;
  let regex: RegExp | undefined;
  let count: number | undefined;
  let invalid = false;
  switch (operator) {
    case 'LIKE':
    case 'UNLIKE':
      if (value === undefined) invalid = true;
      else {
        try {
          // Java's String.matches: the whole value (the API validates the same way).
          regex = new RegExp(`^(?:${value})$`);
        } catch {
          invalid = true;
        }
      }
      break;
    case 'MAX_PER':
      if (value === undefined || !POSITIVE_INT.test(value)) invalid = true;
      else count = Number(value);
      break;
    case 'GROUP_BY':
      if (value !== undefined) {
        if (POSITIVE_INT.test(value)) count = Number(value);
        else invalid = true;
      }
      break;
    case 'IS':
      if (value === undefined) invalid = true;
      break;
    case 'UNIQUE':
    case 'CLUSTER':
      break;
    default:
      invalid = true;
  }
  return { source, field, operator, value, regex, count, invalid };
}

/** The canonical field name (`@hostname` and `hostname` are one field). */
export function canonicalField(field: string): string {
  return field === '@hostname' ? 'hostname' : field;
}

/** The agent's value for a constraint field; `undefined` when the agent lacks it. */
export function fieldValue(agent: PlacementAgent, field: string): string | undefined {
  switch (canonicalField(field)) {
    case 'hostname':
      return agent.hostname;
    case '@region':
      return agent.region;
    case '@zone':
      return agent.zone;
    default:
      return Object.hasOwn(agent.attributes, field) ? agent.attributes[field] : undefined;
  }
}

function isEqual(a: string, b: string): boolean {
  if (a === b) return true;
  if (NUMBER.test(a) && NUMBER.test(b)) return Math.round(Number(a) * 1000) === Math.round(Number(b) * 1000);
  return false;
}

/** Does an agent whose field value is `value` meet `c`, given the app's instances so far? */
export function meetsConstraint(c: CompiledConstraint, value: string | undefined, ctx: FieldContext): boolean {
  if (c.invalid) return false;
  if (value === undefined) return c.operator === 'UNLIKE';
  const here = ctx.counts.get(value) ?? 0;
  switch (c.operator) {
    case 'UNIQUE':
      return here === 0;
    case 'CLUSTER':
      if (c.value !== undefined) return isEqual(value, c.value);
      // Every earlier instance must share this value (an empty map: the first instance).
      for (const v of ctx.counts.keys()) if (v !== value) return false;
      return true;
    case 'LIKE':
      return c.regex!.test(value);
    case 'UNLIKE':
      return !c.regex!.test(value);
    case 'MAX_PER':
      return here < c.count!;
    case 'IS':
      return isEqual(value, c.value!);
    case 'GROUP_BY': {
      const k = c.count ?? ctx.distinctValues;
      if (k <= 0) return false;
      const perGroup = Math.ceil(Math.max(ctx.instances, 1) / k);
      if (here === 0 && ctx.counts.size >= k) return false;
      return here < perGroup;
    }
    default:
      return false;
  }
}
