/**
 * The placement core's ports and values: the read-only {@link ClusterStateView}
 * it decides from, the {@link Plan} it returns, and the {@link PlanSink} an
 * applier implements. Nothing here does I/O.
 *
 * The view's records are the state model's own (`control-plane/model/schemas.ts`),
 * narrowed with `Pick` to the fields placement reads, so a stored `Agent`,
 * `Task`, `App` or `Role` can be passed as is.
 */
import type { Agent, App, Constraint, Resources, Role, Task } from '../../control-plane/model/schemas.ts';

/** What placement reads of an agent. */
export type PlacementAgent = Pick<
  Agent,
  'id' | 'hostname' | 'region' | 'zone' | 'attributes' | 'resources' | 'reservations' | 'health' | 'maintenance'
>;
/** What placement reads of a task: where it runs and what it holds. */
export type PlacementTask = Pick<Task, 'id' | 'appId' | 'agentId' | 'state' | 'ports' | 'resources' | 'role'>;
/** What placement reads of an app. */
export type PlacementApp = Pick<
  App,
  | 'id'
  | 'instances'
  | 'cpus'
  | 'mem'
  | 'disk'
  | 'gpus'
  | 'role'
  | 'acceptedResourceRoles'
  | 'constraints'
  | 'portDefinitions'
  | 'requirePorts'
  | 'networks'
  | 'container'
>;
/** What placement reads of a role. Roles absent from the view have weight 1 and no quota. */
export type PlacementRole = Pick<Role, 'name' | 'weight' | 'quota'>;

/**
 * A consistent, read-only snapshot of the cluster. Placement never mutates
 * it (callers may pass frozen records) and reads nothing else.
 */
export interface ClusterStateView {
  readonly agents: readonly PlacementAgent[];
  /** Every task the scheduler knows; terminal ones are ignored. */
  readonly tasks: readonly PlacementTask[];
  readonly apps: readonly PlacementApp[];
  readonly roles: readonly PlacementRole[];
}

export const PLACEMENT_STRATEGIES = ['spread', 'binpack'] as const;
export type PlacementStrategy = (typeof PLACEMENT_STRATEGIES)[number];

export interface PlanOptions {
  /**
   * `spread` (default): an app's instances go to the agents holding fewest of
   * them, then to the least-loaded agent. `binpack`: the most-loaded agent
   * that fits (Borg/Nomad best fit).
   */
  readonly strategy?: PlacementStrategy;
  /**
   * Instances to place now, per app id. Absent for an app: its `instances`
   * minus its non-terminal tasks (never below 0). A deployment step sets it
   * to place, say, a rolling upgrade's new instances beside the old ones.
   * Apps not in the view are ignored.
   */
  readonly launch?: Readonly<Record<string, number>>;
}

/** The four scalar resources, in the model's units (MB for memory and disk). */
export type Scalars = Resources;
export const SCALAR_NAMES = ['cpus', 'memMb', 'diskMb', 'gpus'] as const satisfies readonly (keyof Scalars)[];
export type ScalarName = (typeof SCALAR_NAMES)[number];

/** One new task: which app, where, what it holds. */
export interface Placement {
  readonly appId: string;
  readonly agentId: string;
  readonly hostname: string;
  /** The role the resources are allocated to (the app's role). */
  readonly role: string;
  readonly resources: Scalars;
  /** Host ports, in the order of the app's port definitions / host-port mappings. */
  readonly ports: readonly number[];
}

/** What an instance lacked on the agent that came closest (the one with the fewest missing kinds). */
export interface Missing {
  readonly cpus?: number;
  readonly memMb?: number;
  readonly diskMb?: number;
  readonly gpus?: number;
  /** How many more dynamic host ports were needed. */
  readonly ports?: number;
  /** Fixed host ports (requirePorts or a fixed hostPort) already taken or outside the agent's ranges. */
  readonly hostPorts?: readonly number[];
}

/**
 * Why instances were not placed. Expected outcomes are values, never
 * exceptions; a deployment shows them as why it waits.
 * - `no-agents`: no agent is placeable (all unreachable, unhealthy, draining or drained, or none at all).
 * - `no-resources-for-roles`: `acceptedResourceRoles` names neither the app's role nor `*`.
 * - `quota`: placing one more would exceed the role's quota limit by `exceeded`.
 * - `constraint`: every placeable agent fails one of the app's constraints; `constraint`
 *   is the one that turned away the most agents (`agents` of them).
 * - `insufficient`: agents meet the constraints but none has room; `missing` is the
 *   shortfall on the closest one (`agentId`).
 */
export type UnplacedReason =
  | { readonly kind: 'no-agents' }
  | { readonly kind: 'no-resources-for-roles'; readonly acceptedResourceRoles: readonly string[] }
  | { readonly kind: 'quota'; readonly role: string; readonly exceeded: Partial<Scalars> }
  | { readonly kind: 'constraint'; readonly constraint: Constraint; readonly agents: number }
  | { readonly kind: 'insufficient'; readonly agentId: string; readonly missing: Missing };

export interface Unplaced {
  readonly appId: string;
  /** How many of the wanted instances were not placed. */
  readonly instances: number;
  readonly reason: UnplacedReason;
}

/** A role's weighted dominant share (Mesos DRF) before and after the plan. */
export interface RoleShare {
  readonly role: string;
  readonly weight: number;
  readonly before: number;
  readonly after: number;
}

/**
 * The outcome of one placement round: new tasks to launch (in decision
 * order) and, per app, what could not be placed and why. Applying it is
 * someone else's job ({@link PlanSink}).
 */
export interface Plan {
  readonly placements: readonly Placement[];
  /** Sorted by app id. */
  readonly unplaced: readonly Unplaced[];
  /** Every role that holds resources or asked for some, sorted by name. */
  readonly shares: readonly RoleShare[];
}

/** What an applier did with a plan: placements may be refused when the state moved on (optimistic concurrency, as Omega/Nomad). */
export interface PlanResult {
  readonly applied: readonly Placement[];
  readonly refused: readonly { readonly placement: Placement; readonly reason: string }[];
}

/**
 * The port through which plans leave the placement core (Nomad's `Planner`).
 * An applier checks each placement against the current state, writes the
 * tasks it accepts and reports the rest as refused; it never throws for a
 * refused placement.
 */
export interface PlanSink {
  submitPlan(plan: Plan): Promise<PlanResult>;
}
