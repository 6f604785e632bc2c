/**
 * Marathon service ports: every app port (`portDefinitions[].port` in host
 * mode, `container.portMappings[].servicePort` otherwise) is a service port,
 * unique across apps. `0` asks for one: it gets the lowest free port of
 * {@link SERVICE_PORT_MIN}–{@link SERVICE_PORT_MAX} (Marathon's
 * `--local_port_min/max`), or, on an update, the port the app already had at
 * that index (so service ports are stable across updates). A port the app
 * names itself is honoured when no other app holds it; otherwise the write
 * is refused with `APP_SERVICE_PORT_TAKEN` (409).
 *
 * Pure: {@link assignServicePorts} takes the ports held now (from the
 * `servicePort` records, one per port) and returns the app with its ports
 * filled in, plus the ports to claim and release. The API writes the claims
 * (create-only) and releases in the same transaction as the app, so two
 * concurrent writers can never hold the same port: one transaction fails
 * and is retried against the new holders.
 */
import { StrataError } from '../../common/errors.ts';
import { SERVICE_PORT_MAX, SERVICE_PORT_MIN, type App } from './schemas.ts';

type Definition = Omit<App, 'version'>;

export interface ServicePortRange {
  readonly min: number;
  readonly max: number;
}

export const DEFAULT_SERVICE_PORT_RANGE: ServicePortRange = { min: SERVICE_PORT_MIN, max: SERVICE_PORT_MAX };

/** Whether the app's ports are portDefinitions (host networking) or portMappings. */
const hostMode = (app: Pick<App, 'networks'>): boolean => (app.networks[0]?.mode ?? 'host') === 'host';

/** The app's service ports, by index (0 = not assigned yet). */
export function servicePortsOf(app: Pick<App, 'networks' | 'portDefinitions' | 'container'>): number[] {
  return hostMode(app) ? app.portDefinitions.map((p) => p.port) : (app.container?.portMappings ?? []).map((m) => m.servicePort);
}

function withPorts<T extends Pick<App, 'networks' | 'portDefinitions' | 'container'>>(app: T, ports: readonly number[]): T {
  if (hostMode(app)) return { ...app, portDefinitions: app.portDefinitions.map((p, i) => ({ ...p, port: ports[i]! })) };
  if (!app.container?.portMappings) return app;
  return { ...app, container: { ...app.container, portMappings: app.container.portMappings.map((m, i) => ({ ...m, servicePort: ports[i]! })) } };
}

export interface ServicePortAssignment<T> {
  readonly app: T;
  /** Ports this write takes (create their records). */
  readonly claim: readonly number[];
  /** Ports the app held and no longer uses (delete their records). */
  readonly release: readonly number[];
}

/**
 * `next`'s service ports filled in. `held` maps every held port to its app
 * (this app's too); `previous` is the app as stored before this write.
 */
export function assignServicePorts<T extends Definition>(
  next: T,
  previous: Pick<App, 'networks' | 'portDefinitions' | 'container'> | undefined,
  held: ReadonlyMap<number, string>,
  range: ServicePortRange = DEFAULT_SERVICE_PORT_RANGE,
): ServicePortAssignment<T> {
  const appId = next.id;
  const wanted = servicePortsOf(next);
  const before = previous ? servicePortsOf(previous) : [];
  const path = hostMode(next) ? (i: number) => `/portDefinitions/${i}/port` : (i: number) => `/container/portMappings/${i}/servicePort`;
  const mine = new Set(wanted.filter((p) => p !== 0));
  for (const [i, port] of wanted.entries()) {
    const holder = held.get(port);
    if (port !== 0 && holder !== undefined && holder !== appId) {
      throw new StrataError('APP_SERVICE_PORT_TAKEN', `Requested service port ${port} (${path(i)}) is already used by app ${holder}; use 0 to get a free one`, { details: { path: path(i), port, appId: holder } });
    }
  }
  const ports = [...wanted];
  let cursor = range.min;
  for (const [i, port] of wanted.entries()) {
    if (port !== 0) continue;
    const old = before[i];
    if (old !== undefined && old !== 0 && !mine.has(old) && (held.get(old) === undefined || held.get(old) === appId)) {
      ports[i] = old;
      mine.add(old);
      continue;
    }
    while (cursor <= range.max && (held.has(cursor) || mine.has(cursor))) cursor++;
    if (cursor > range.max) {
      throw new StrataError('APP_SERVICE_PORTS_EXHAUSTED', `no free service port is left in ${range.min}-${range.max} for ${path(i)} of app ${appId}`, { details: { path: path(i), range } });
    }
    ports[i] = cursor;
    mine.add(cursor);
  }
  const claim = [...new Set(ports)].filter((p) => held.get(p) !== appId);
  const release = [...held].filter(([p, owner]) => owner === appId && !mine.has(p)).map(([p]) => p);
  return { app: withPorts(next, ports), claim, release };
}
