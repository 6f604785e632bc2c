/**
 * Test support for the xDS server (used by the tests beside it and by the
 * benchmark): record builders, a mesh fixture (embedded in-memory store,
 * tokens, IAM, snapshot source and server on 127.0.0.1:0), tiny gRPC
 * backends that answer with their own name, and a raw ADS client built from
 * the Envoy protos for what the real gRPC client cannot express (delta,
 * wildcard, NACK on demand, stale nonces).
 */
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { withAppDefaults } from '../model/app-defaults.ts';
import { Records } from '../model/records.ts';
import type { App, AppDefinition, Task } from '../model/schemas.ts';
import { openEmbeddedStore } from '../store/embedded/embedded-store.ts';
import type { StateStore } from '../store/port.ts';
import { Iam } from '../../security/iam.ts';
import { TokenService } from '../../security/tokens.ts';
import type { Permission } from '../../security/iam.ts';
import { tokenAuthenticator } from './identity.ts';
import { createXdsMetrics, type XdsMetrics } from './metrics.ts';
import { adsPackageDefinition, decodeMessage } from './protos.ts';
import { XdsServer } from './server.ts';
import { openSnapshotSource, type SnapshotSource } from './source.ts';

export const VERSION = '2026-01-01T00:00:00.000Z';

export function app(def: Omit<AppDefinition, 'id'> & { id: string }): App {
  return withAppDefaults({ cmd: 'sleep 1000', cpus: 0.1, mem: 32, ...def } as AppDefinition, { version: VERSION });
}

/** An app publishing one named VIP on one port (`/web` → `VIP_0: "/web:80"`). */
export function vipApp(id: string, options: { vip?: string; port?: number; labels?: Record<string, string>; instances?: number } = {}): App {
  return app({
    id,
    instances: options.instances ?? 1,
    labels: options.labels ?? {},
    portDefinitions: [{ port: 0, protocol: 'tcp', name: 'grpc', labels: { VIP_0: `${options.vip ?? id}:${options.port ?? 80}` } }],
  } as AppDefinition & { id: string });
}

export function task(id: string, appId: string, port: number, options: { state?: Task['state']; host?: string; healthy?: boolean[] } = {}): Task {
  const now = VERSION;
  return {
    id, appId, agentId: 'agent-1', host: options.host ?? '127.0.0.1', state: options.state ?? 'RUNNING',
    stagedAt: now, startedAt: now, stateChangedAt: now, ports: [port], servicePorts: [], ipAddresses: [],
    healthCheckResults: (options.healthy ?? []).map((alive) => ({ alive, consecutiveFailures: alive ? 0 : 3 })),
    version: VERSION, resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  };
}

export interface MeshFixture {
  readonly store: StateStore;
  readonly records: Records;
  readonly tokens: TokenService;
  readonly iam: Iam;
  readonly metrics: XdsMetrics;
  readonly registry: Registry;
  server: XdsServer;
  source: SnapshotSource;
  port: number;
  /** A token for a new principal holding exactly `permissions` (superuser when omitted). */
  token(uid: string, permissions?: readonly Permission[]): Promise<string>;
  /** Stop the server and source and start new ones on the same port (a control-plane restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startMeshFixture(options: { debounceMs?: number; maxStreams?: number; maxRequestBytes?: number } = {}): Promise<MeshFixture> {
  const store = await openEmbeddedStore({ path: ':memory:' });
  const records = new Records(store);
  const tokens = await TokenService.open(records, { issuer: 'strata', audience: 'strata', tokenTtlSeconds: 3600, algorithm: 'ES256' });
  const iam = new Iam(records);
  const start = async (port: number): Promise<{ server: XdsServer; source: SnapshotSource; port: number; registry: Registry; metrics: XdsMetrics }> => {
    const registry = new Registry();
    const metrics = createXdsMetrics(registry);
    const server = new XdsServer({
      authenticate: tokenAuthenticator({ tokens, iam }), metrics,
      ...(options.maxStreams !== undefined ? { maxStreams: options.maxStreams } : {}),
      ...(options.maxRequestBytes !== undefined ? { maxRequestBytes: options.maxRequestBytes } : {}),
    });
    const source = await openSnapshotSource({ records, sink: server, metrics, debounceMs: options.debounceMs ?? 10 });
    const bound = await server.listen('127.0.0.1', port);
    return { server, source, port: bound, registry, metrics };
  };
  const first = await start(0);
  const fixture: MeshFixture = {
    store, records, tokens, iam, metrics: first.metrics, registry: first.registry,
    server: first.server, source: first.source, port: first.port,
    async token(uid, permissions) {
      await iam.createPrincipal({ uid, kind: 'user', permissions: [...(permissions ?? [{ rid: 'dcos:superuser', actions: ['full'] }])] });
      return (await tokens.issue(uid)).token;
    },
    async restart() {
      fixture.source.close();
      await fixture.server.close();
      const next = await start(fixture.port);
      fixture.server = next.server;
      fixture.source = next.source;
    },
    async close() {
      fixture.source.close();
      await fixture.server.close();
      await store.close();
    },
  };
  return fixture;
}

// --- tiny gRPC backends -----------------------------------------------------

const identity = (b: unknown): Buffer => b as Buffer;
export const WHO_SERVICE = {
  Who: { path: '/strata.test.Echo/Who', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity, originalName: 'who' },
} satisfies grpc.ServiceDefinition;

export interface Backend {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A gRPC server on 127.0.0.1:0 answering `Who` with its name. */
export async function startBackend(name: string): Promise<Backend> {
  const server = new grpc.Server();
  server.addService(WHO_SERVICE, { Who: (_call: unknown, cb: (err: null, value: Buffer) => void) => cb(null, Buffer.from(name)) });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { name, port, close: () => new Promise((resolve) => server.tryShutdown(() => resolve())) };
}

export const WhoClient = grpc.makeGenericClientConstructor(WHO_SERVICE, 'Echo');

/** One `Who` call; resolves with the backend's name. */
export function who(client: grpc.Client, metadata = new grpc.Metadata(), deadlineMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    (client as unknown as { Who: (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void }).Who(
      Buffer.alloc(0), metadata, { deadline: Date.now() + deadlineMs },
      (err, res) => (err ? reject(err) : resolve(res!.toString())),
    );
  });
}

// --- raw ADS client -----------------------------------------------------------

export interface DecodedResponse {
  readonly version_info?: string;
  readonly system_version_info?: string;
  readonly type_url: string;
  readonly nonce: string;
  /** Decoded resources (SotW: the Any's message; delta: `{name, version, value}`). */
  readonly resources: Record<string, unknown>[];
  readonly removed_resources?: string[];
}

export interface RawAdsStream {
  send(request: Record<string, unknown>): void;
  /** The next response (rejects after `ms`). */
  next(ms?: number): Promise<DecodedResponse>;
  /** Resolves with the status the stream ended with. */
  readonly ended: Promise<grpc.StatusObject | grpc.ServiceError>;
  /** Responses received and not yet taken by `next`. */
  readonly buffered: number;
  close(): void;
}

let AdsClient: grpc.ServiceClientConstructor | undefined;

export function adsClient(port: number): grpc.Client {
  AdsClient ??= (grpc.loadPackageDefinition(adsPackageDefinition()) as unknown as { envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } } }).envoy.service.discovery.v3.AggregatedDiscoveryService;
  return new AdsClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function decodeResponse(r: Record<string, unknown>, delta: boolean): DecodedResponse {
  const resources = ((r['resources'] ?? []) as Record<string, unknown>[]).map((x) => {
    if (!delta) {
      const any = x as { type_url: string; value: Buffer };
      return { '@type': any.type_url, ...decodeMessage(any.type_url, any.value) };
    }
    const res = x as { name: string; version: string; resource?: { type_url: string; value: Buffer } };
    return { name: res.name, version: res.version, value: res.resource ? decodeMessage(res.resource.type_url, res.resource.value) : undefined };
  });
  return { ...(r as object), resources } as unknown as DecodedResponse;
}

/** Open a raw StreamAggregatedResources (or Delta) stream with an optional bearer token. */
export function openAds(client: grpc.Client, options: { token?: string; delta?: boolean } = {}): RawAdsStream {
  const md = new grpc.Metadata();
  if (options.token) md.set('authorization', `Bearer ${options.token}`);
  const method = options.delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources';
  const call = (client as unknown as Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, Record<string, unknown>>>)[method]!.call(client, md);
  const queue: DecodedResponse[] = [];
  const waiters: ((r: DecodedResponse) => void)[] = [];
  call.on('data', (r: Record<string, unknown>) => {
    const decoded = decodeResponse(r, options.delta === true);
    const w = waiters.shift();
    if (w) w(decoded);
    else queue.push(decoded);
  });
  const ended = new Promise<grpc.StatusObject | grpc.ServiceError>((resolve) => {
    call.on('error', (err: grpc.ServiceError) => resolve(err));
    call.on('status', (s: grpc.StatusObject) => resolve(s));
  });
  return {
    send: (request) => call.write(request),
    next(ms = 5000) {
      const ready = queue.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(done), 1);
          reject(new Error(`no xDS response within ${ms} ms`));
        }, ms);
        const done = (r: DecodedResponse): void => {
          clearTimeout(timer);
          resolve(r);
        };
        waiters.push(done);
      });
    },
    ended,
    get buffered() {
      return queue.length;
    },
    close: () => call.cancel(),
  };
}

/** Poll until `check` passes (returns true) or `ms` elapse. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 15_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
