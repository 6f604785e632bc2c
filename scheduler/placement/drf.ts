/**
 * Dominant Resource Fairness across roles, as Mesos' DRF sorter computes it
 * (`src/master/allocator/sorter/drf/sorter.cpp`, shared/reference/scheduler.md §4.1):
 * a role's share is the largest, over the scalar resources the cluster has,
 * of (allocated ÷ cluster total), divided by the role's weight. The role
 * with the lowest share is served next; ties go to the role with fewer
 * tasks, then to the lower name. Roles are flat here (no hierarchy).
 * Callers pass allocations in integer thousandths (see `resources.ts`), so
 * a share does not depend on the order its tasks were summed in.
 */
import { SCALAR_NAMES, type Scalars } from './types.ts';

/** A role's weighted dominant share of `totals`. Resources the cluster has none of are skipped. */
export function dominantShare(allocated: Scalars, totals: Scalars, weight: number): number {
  let share = 0;
  for (const name of SCALAR_NAMES) {
    const total = totals[name];
    if (total > 0) share = Math.max(share, allocated[name] / total);
  }
  return share / weight;
}

export interface RoleStanding {
  readonly name: string;
  readonly share: number;
  readonly tasks: number;
}

/** DRF order: `a` before `b` when it has the lower share, then fewer tasks, then the lower name. */
export function drfCompare(a: RoleStanding, b: RoleStanding): number {
  return a.share - b.share || a.tasks - b.tasks || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
