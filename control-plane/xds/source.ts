/**
 * Where snapshots come from: views of the apps, tasks and VIP records
 * (watches, so any master can serve; no leadership needed), debounced, then
 * translated, encoded and handed to a sink (the server). At most one
 * rebuild runs per `debounceMs` window and no change waits longer than
 * `debounceMs` (plus the build): a lone change after a quiet window is built
 * at once, a burst is coalesced into one rebuild per window.
 *
 * A translation that fails the consistency check is counted, logged and
 * dropped: the previous snapshot stays served.
 */
import { isStrataError } from '../../common/errors.ts';
import { openView, type RecordView, type Records } from '../model/records.ts';
import type { App, Task, Vip } from '../model/schemas.ts';
import type { XdsMetrics } from './metrics.ts';
import type { XdsLogger } from './server.ts';
import { SnapshotBuilder, type Snapshot } from './snapshot.ts';
import { Translator, type MeshState, type TranslateOptions } from './translate.ts';

export interface SnapshotSink {
  setSnapshot(snapshot: Snapshot): void;
}

export interface SnapshotSourceOptions {
  readonly records: Records;
  readonly sink: SnapshotSink;
  readonly metrics: XdsMetrics;
  readonly logger?: XdsLogger;
  /** Longest a change waits before the rebuild that includes it (default 100). */
  readonly debounceMs?: number;
  readonly builder?: SnapshotBuilder;
  /** Translator options (mesh mTLS). */
  readonly translate?: TranslateOptions;
}

export interface SnapshotSource {
  /** The state the views hold now. */
  state(): MeshState;
  /** Rebuild at once (skipping the debounce). */
  rebuild(): Snapshot | undefined;
  close(): void;
}

/** The translator's input from the three views: tasks grouped by app. */
export function meshStateOf(apps: RecordView<App>, tasks: RecordView<Task>, vips: RecordView<Vip>): MeshState {
  const appMap = new Map<string, App>();
  for (const [id, r] of apps.records) appMap.set(id, r.value);
  const tasksByApp = new Map<string, Task[]>();
  for (const r of tasks.records.values()) {
    const list = tasksByApp.get(r.value.appId);
    if (list) list.push(r.value);
    else tasksByApp.set(r.value.appId, [r.value]);
  }
  const vipMap = new Map<string, Vip>();
  for (const [id, r] of vips.records) vipMap.set(id, r.value);
  return { apps: appMap, tasksByApp, vips: vipMap };
}

export async function openSnapshotSource(options: SnapshotSourceOptions): Promise<SnapshotSource> {
  const debounceMs = options.debounceMs ?? 100;
  const builder = options.builder ?? new SnapshotBuilder();
  const translator = new Translator(options.translate);
  const onInvalid = (what: string) => (bad: { key: string; error: Error }): void => options.logger?.warn({ key: bad.key, err: bad.error.message }, `xDS source skips an unusable ${what} record`);
  const apps = await openView(options.records, 'app', { onInvalid: onInvalid('app') });
  const tasks = await openView(options.records, 'task', { onInvalid: onInvalid('task') });
  const vips = await openView(options.records, 'vip', { onInvalid: onInvalid('vip') });
  let timer: NodeJS.Timeout | undefined;
  let firstChangeAtMs: number | undefined;
  let closed = false;

  const rebuild = (): Snapshot | undefined => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const triggeredAtMs = firstChangeAtMs ?? Date.now();
    firstChangeAtMs = undefined;
    const start = performance.now();
    try {
      const snapshot = builder.build(translator.translate(meshStateOf(apps, tasks, vips)), triggeredAtMs);
      options.metrics.rebuildSeconds.observe((performance.now() - start) / 1000);
      options.sink.setSnapshot(snapshot);
      return snapshot;
    } catch (err) {
      if (isStrataError(err, 'XDS_SNAPSHOT_INCONSISTENT')) {
        options.metrics.inconsistent.inc();
        options.logger?.warn({ err: err.message, problems: err.details }, 'xDS snapshot refused; the previous one stays served');
        return undefined;
      }
      throw err;
    }
  };
  // At most one rebuild per `debounceMs` window, and no change waits longer than that: a change after a
  // quiet window is built at once (on the next tick, so one store batch is one rebuild); changes arriving
  // within the window after a rebuild wait for its end and go out together.
  let lastBuildMs = -Infinity;
  const changed = (): void => {
    if (closed) return;
    firstChangeAtMs ??= Date.now();
    if (timer) return;
    const waitMs = Math.max(0, lastBuildMs + debounceMs - performance.now());
    timer = setTimeout(() => {
      lastBuildMs = performance.now();
      try {
        rebuild();
      } catch (err) {
        options.logger?.warn({ err }, 'xDS snapshot rebuild failed');
      }
    }, waitMs);
  };
  apps.subscribe(changed);
  tasks.subscribe(changed);
  vips.subscribe(changed);
  rebuild();
  return {
    state: () => meshStateOf(apps, tasks, vips),
    rebuild,
    close(): void {
      closed = true;
      if (timer) clearTimeout(timer);
      apps.close();
      tasks.close();
      vips.close();
    },
  };
}
