/**
 * The ADS server (envoy.service.discovery.v3.AggregatedDiscoveryService):
 * state-of-the-world `StreamAggregatedResources` and incremental
 * `DeltaAggregatedResources`, serving the current {@link Snapshot} to every
 * stream. It reads only snapshots (go-control-plane's split); the translator
 * and the source build them.
 *
 * Protocol rules (../../../shared/reference/xds.md section 1, and the
 * grpc-js-xds calibration), each with a test in server.test.ts:
 * - a nonce per response, per stream; SotW requests with a stale nonce are
 *   ignored (counted), delta ones still change subscriptions;
 * - an ACK or NACK is the request echoing the pending nonce; a NACK is
 *   `error_detail` set, never a version comparison (grpc-js NACKs carry the
 *   new version). A NACKed response is recorded as what the node has, so it
 *   is never sent again: the next send needs a changed resource;
 * - wildcard (`*`, or the legacy empty first request) only for LDS and CDS;
 *   an empty RDS/EDS list means nothing;
 * - names asked for before they exist are kept and sent when they appear;
 * - SotW LDS and CDS responses always hold the full set the node may see
 *   (a missing name deletes it on the client); RDS and EDS responses hold
 *   what changed;
 * - types go out in the order CDS, EDS, LDS, RDS, SDS, one response at a
 *   time per stream, each waiting for the previous one's ACK or NACK (the
 *   Consul model), so a route never names a cluster the node lacks;
 * - a request with an empty nonce (new stream, reconnect with an old
 *   version) gets a full answer, whatever version it claims;
 * - responses are spliced from each resource's shared encoded frames.
 * Limits: request size (`maxRequestBytes`, gRPC RESOURCE_EXHAUSTED), names
 * per type per stream, streams per server, requests queued before the token
 * is verified. A stream that breaks a limit ends; the others go on.
 */
import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { StrataError, isStrataError } from '../../common/errors.ts';
import { identityKey, type NodeIdentity, type XdsAuthenticator } from './identity.ts';
import type { XdsMetrics } from './metrics.ts';
import { adsPackageDefinition, isTypeUrl, TYPE, TYPE_SHORT, type TypeUrl } from './protos.ts';
import { frame, type EncodedResource, type Snapshot } from './snapshot.ts';
import type { Flavor } from './translate.ts';

/** The order types are pushed in: clusters and endpoints before the listeners and routes that use them. */
export const PUSH_ORDER: readonly TypeUrl[] = [TYPE.cluster, TYPE.endpoint, TYPE.listener, TYPE.route, TYPE.secret];
const FULL_STATE: ReadonlySet<TypeUrl> = new Set([TYPE.listener, TYPE.cluster]);
/** Above this many changed names, a stream re-compares everything it holds instead of tracking names. */
const DIRTY_LIMIT = 256;

export interface XdsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/**
 * Per-identity secrets (SDS): a node's workload certificate depends on who
 * it is, so secrets come from here rather than from the shared snapshot.
 * `resourcesFor` returns `undefined` while they are being made, then calls
 * `onChange` with the identity's {@link identityKey}; it calls it again
 * whenever they change (rotation). The map returned must not be altered.
 */
export interface SecretSource {
  resourcesFor(identity: NodeIdentity): ReadonlyMap<string, EncodedResource> | undefined;
  retain(identity: NodeIdentity): void;
  release(identity: NodeIdentity): void;
  onChange: ((key: string) => void) | undefined;
}

export interface XdsServerOptions {
  readonly authenticate: XdsAuthenticator;
  /** Where secrets come from; without it, secrets are the snapshot's (none from the translator). */
  readonly secrets?: SecretSource;
  readonly metrics: XdsMetrics;
  readonly logger?: XdsLogger;
  /** Streams served at once (default 10,000). */
  readonly maxStreams?: number;
  /** Names one stream may subscribe per type (default 100,000). */
  readonly maxNamesPerType?: number;
  /** Largest discovery request accepted (default 1 MiB). */
  readonly maxRequestBytes?: number;
}

interface Status {
  readonly code?: number;
  readonly message?: string;
}
interface NodeMsg {
  readonly id?: string;
  readonly cluster?: string;
  readonly user_agent_name?: string;
  /** protobufjs's built-in Struct keeps its camelCase field names (`stringValue`) even with keepCase. */
  readonly metadata?: { readonly fields?: Readonly<Record<string, { readonly stringValue?: string; readonly string_value?: string }>> };
}
interface SotwRequest {
  /** resource_names as raw protobuf fields, when the request came through {@link splitSotwRequest}. */
  readonly namesBytes?: Buffer;
  readonly version_info?: string;
  readonly node?: NodeMsg;
  readonly resource_names?: readonly string[];
  readonly type_url?: string;
  readonly response_nonce?: string;
  readonly error_detail?: Status;
}
interface DeltaRequest {
  readonly node?: NodeMsg;
  readonly type_url?: string;
  readonly resource_names_subscribe?: readonly string[];
  readonly resource_names_unsubscribe?: readonly string[];
  readonly initial_resource_versions?: Readonly<Record<string, string>>;
  readonly response_nonce?: string;
  readonly error_detail?: Status;
}

type Variant = 'sotw' | 'delta';
type AnyCall = grpc.ServerDuplexStream<SotwRequest | DeltaRequest, Buffer>;

/** What one stream holds for one type. */
class TypeState {
  everRequested = false;
  wildcard = false;
  readonly names = new Set<string>();
  /** What the node has (or was sent and NACKed): name → version. */
  readonly sent = new Map<string, string>();
  /** Names to look at on the next pump; `dirtyAll` = look at everything. */
  readonly dirty = new Set<string>();
  dirtyAll = false;
  /** Names to send even if the node has their version (newly subscribed). */
  readonly force = new Set<string>();
  /** Answer in full (empty-nonce request). */
  forceFull = false;
  /** Nonce of the response awaiting its ACK or NACK. */
  pendingNonce: string | undefined;
  /** The snapshot version of the pending response. */
  pendingVersion = '';
  pendingTriggeredAtMs = 0;
  lastNonce: string | undefined;
  /** SotW: digest of the last request's raw resource_names. */
  namesDigest: string | undefined;
  nacks = 0;
  lastError: string | undefined;
}

export interface StreamInfo {
  readonly id: number;
  readonly variant: Variant;
  readonly nodeId: string | undefined;
  readonly uid: string | undefined;
  readonly flavor: Flavor;
  readonly pending: readonly string[];
  readonly nacks: Readonly<Record<string, number>>;
}

class Stream {
  readonly id: number;
  readonly variant: Variant;
  readonly call: AnyCall;
  readonly types = new Map<TypeUrl, TypeState>();
  identity: NodeIdentity | undefined;
  nodeId: string | undefined;
  flavor: Flavor = 'envoy';
  #nonce = 0;
  readonly #nonceSalt = randomBytes(3).toString('hex');
  queued: (SotwRequest | DeltaRequest)[] = [];
  authStarted = false;
  closed = false;
  /** Set on a per-type service's streams (SDS): every other type is ignored. */
  onlyType: TypeUrl | undefined;

  constructor(id: number, variant: Variant, call: AnyCall) {
    this.id = id;
    this.variant = variant;
    this.call = call;
  }

  nextNonce(): string {
    return `${this.#nonceSalt}${(++this.#nonce).toString(36)}`;
  }

  state(typeUrl: TypeUrl): TypeState {
    let s = this.types.get(typeUrl);
    if (!s) {
      s = new TypeState();
      this.types.set(typeUrl, s);
    }
    return s;
  }

  info(): StreamInfo {
    const pending: string[] = [];
    const nacks: Record<string, number> = {};
    for (const [t, s] of this.types) {
      if (s.pendingNonce) pending.push(TYPE_SHORT[t]);
      if (s.nacks > 0) nacks[TYPE_SHORT[t]] = s.nacks;
    }
    return { id: this.id, variant: this.variant, nodeId: this.nodeId, uid: this.identity?.uid, flavor: this.flavor, pending, nacks };
  }
}

function readVarint(buf: Buffer, pos: number): [number, number] {
  let n = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++]!;
    n += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [n, pos];
  }
  throw new Error('varint too long');
}

/**
 * Split a DiscoveryRequest: field 3 (resource_names) stays raw bytes, the
 * other fields are decoded by `decodeRest`. Throws on malformed framing
 * (gRPC then ends the stream with INTERNAL).
 */
export function splitSotwRequest(buf: Buffer, decodeRest: (b: Buffer) => SotwRequest): SotwRequest {
  const names: Buffer[] = [];
  const rest: Buffer[] = [];
  // Encoders write repeated fields together: then the names are one slice of the request, not a copy.
  let namesStart = -1;
  let namesEnd = -1;
  let contiguous = true;
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    let tag: number;
    [tag, pos] = readVarint(buf, pos);
    const wire = tag & 7;
    if (wire === 0) [, pos] = readVarint(buf, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len: number;
      [len, pos] = readVarint(buf, pos);
      pos += len;
    } else throw new Error(`wire type ${wire} is not valid`);
    if (pos > buf.length) throw new Error('a field runs past the end of the message');
    if (tag >>> 3 === 3 && wire === 2) {
      if (namesStart < 0) namesStart = start;
      else if (namesEnd !== start) contiguous = false;
      namesEnd = pos;
      names.push(buf.subarray(start, pos));
    } else rest.push(buf.subarray(start, pos));
  }
  const namesBytes = names.length === 0 ? Buffer.alloc(0) : contiguous ? buf.subarray(namesStart, namesEnd) : Buffer.concat(names);
  return { ...decodeRest(rest.length === 1 ? rest[0]! : Buffer.concat(rest)), namesBytes };
}

/** The strings of raw repeated field 3 entries (as {@link splitSotwRequest} keeps them). */
export function decodeNames(bytes: Buffer): string[] {
  const out: string[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    let len: number;
    [, pos] = readVarint(bytes, pos);
    [len, pos] = readVarint(bytes, pos);
    out.push(bytes.toString('utf8', pos, pos + len));
    pos += len;
  }
  return out;
}

/** The node metadata key a bootstrap puts the token under, for clients that cannot send call metadata. */
export const NODE_TOKEN_KEY = 'STRATA_TOKEN';

function nodeToken(node: NodeMsg | undefined): string | undefined {
  const field = node?.metadata?.fields?.[NODE_TOKEN_KEY];
  const token = field?.stringValue ?? field?.string_value;
  return token === undefined ? undefined : `Bearer ${token}`;
}

function flavorOf(node: NodeMsg | undefined): Flavor {
  return /^grpc/i.test(node?.user_agent_name ?? '') ? 'grpc' : 'envoy';
}

const EMPTY: ReadonlyMap<string, EncodedResource> = new Map();

export class XdsServer {
  readonly #options: XdsServerOptions;
  readonly #streams = new Set<Stream>();
  #snapshot: Snapshot | undefined;
  #nextId = 0;
  #server: grpc.Server | undefined;
  /** Called after each ACK or NACK, with the snapshot version of the response it answers (tests and the benchmark wait on it). */
  onAck: ((info: { stream: StreamInfo; typeUrl: TypeUrl; version: string; nack: boolean }) => void) | undefined;

  constructor(options: XdsServerOptions) {
    this.#options = options;
    if (options.secrets) options.secrets.onChange = (key) => this.#secretsChanged(key);
  }

  /** An identity's secrets changed (issued, rotated): push them to its streams. */
  #secretsChanged(key: string): void {
    for (const stream of this.#streams) {
      if (!stream.identity || identityKey(stream.identity) !== key) continue;
      const s = stream.types.get(TYPE.secret);
      if (!s?.everRequested) continue;
      s.dirtyAll = true;
      this.#pump(stream);
    }
  }

  /** What a stream may be served of a type: secrets are its identity's own; the rest is the snapshot's. */
  #resourcesOf(stream: Stream, snapshot: Snapshot, typeUrl: TypeUrl): ReadonlyMap<string, EncodedResource> {
    if (typeUrl === TYPE.secret && this.#options.secrets) return this.#options.secrets.resourcesFor(stream.identity!) ?? EMPTY;
    return snapshot.resources.get(typeUrl) ?? EMPTY;
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  streams(): StreamInfo[] {
    return [...this.#streams].map((s) => s.info());
  }

  /** Serve `snapshot` from now on: every stream is told what changed and pushed to in order. */
  setSnapshot(snapshot: Snapshot): void {
    const previous = this.#snapshot;
    if (previous === snapshot) return;
    this.#snapshot = snapshot;
    const m = this.#options.metrics;
    m.snapshotBytes.set(snapshot.totalBytes);
    for (const [t, byName] of snapshot.resources) m.snapshotResources.set({ type: TYPE_SHORT[t] }, byName.size);
    m.translationIssues.set(snapshot.issues.length);
    const start = performance.now();
    for (const stream of this.#streams) {
      if (!stream.identity) continue;
      for (const [t, s] of stream.types) {
        if (!s.everRequested) continue;
        const changed = previous ? snapshot.changed.get(t) : undefined;
        if (!previous) s.dirtyAll = true;
        else if (!changed) continue;
        else if (s.dirtyAll || changed.size > DIRTY_LIMIT) s.dirtyAll = true;
        else for (const n of changed) if (s.wildcard || s.names.has(n) || s.sent.has(n)) s.dirty.add(n);
      }
      this.#pump(stream);
    }
    m.pushSeconds.observe((performance.now() - start) / 1000);
  }

  /** The gRPC service implementation, to add to a server. */
  addTo(server: grpc.Server): void {
    const def = adsPackageDefinition()['envoy.service.discovery.v3.AggregatedDiscoveryService'] as grpc.ServiceDefinition;
    const methods: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const [name, method] of Object.entries(def)) {
      // Responses are spliced from shared encoded frames: serialize is the identity.
      methods[name] = { ...method, responseSerialize: (b: unknown) => b as Buffer };
    }
    // SotW requests repeat the whole subscription in every ACK (a thousand names from every Envoy on every
    // change): keep resource_names as raw bytes, decode only the rest, and decode the names only when
    // their digest differs from the stream's last request of that type.
    const sotw = methods['StreamAggregatedResources'];
    if (sotw) {
      const decodeRest = sotw.requestDeserialize;
      methods['StreamAggregatedResources'] = { ...sotw, requestDeserialize: (b: Buffer) => splitSotwRequest(b, decodeRest as (b: Buffer) => SotwRequest) };
    }
    server.addService(methods as grpc.ServiceDefinition, {
      StreamAggregatedResources: (call: AnyCall) => this.#open(call, 'sotw'),
      DeltaAggregatedResources: (call: AnyCall) => this.#open(call, 'delta'),
    });
    // SDS on its own service (Envoy's sds_config with api_config_source): the same streams, secrets only.
    // Secrets are per identity (the SecretSource); subscriptions to names that do not exist are kept.
    const sdsDef = adsPackageDefinition()['envoy.service.secret.v3.SecretDiscoveryService'] as grpc.ServiceDefinition;
    const sds: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const [name, method] of Object.entries(sdsDef)) sds[name] = { ...method, responseSerialize: (b: unknown) => b as Buffer };
    if (sds['StreamSecrets']) {
      const decodeRest = sds['StreamSecrets'].requestDeserialize;
      sds['StreamSecrets'] = { ...sds['StreamSecrets'], requestDeserialize: (b: Buffer) => splitSotwRequest(b, decodeRest as (b: Buffer) => SotwRequest) };
    }
    server.addService(sds as grpc.ServiceDefinition, {
      StreamSecrets: (call: AnyCall) => this.#open(call, 'sotw', TYPE.secret),
      DeltaSecrets: (call: AnyCall) => this.#open(call, 'delta', TYPE.secret),
      FetchSecrets: (_call: unknown, callback: (err: Partial<grpc.StatusObject>) => void) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'FetchSecrets (REST-style) is not served; use StreamSecrets, DeltaSecrets or ADS' }),
    });
  }

  /**
   * Listen on host:port (0 = a free port) with these credentials (default
   * plaintext); call again to add a port (the mTLS one). Resolves with the
   * bound port.
   */
  async listen(host: string, port: number, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    let server = this.#server;
    if (!server) {
      const max = this.#options.maxRequestBytes ?? 1024 * 1024;
      server = new grpc.Server({ 'grpc.max_receive_message_length': max, 'grpc.max_concurrent_streams': 1000 });
      this.addTo(server);
      this.#server = server;
    }
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const target = server;
    return new Promise<number>((resolve, reject) => target.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  }

  /** Stop listening and end every stream. */
  async close(): Promise<void> {
    for (const s of [...this.#streams]) this.#end(s, { code: grpc.status.UNAVAILABLE, details: 'the xDS server is shutting down' });
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #open(call: AnyCall, variant: Variant, onlyType?: TypeUrl): void {
    const m = this.#options.metrics;
    if (this.#streams.size >= (this.#options.maxStreams ?? 10_000)) {
      m.rejected.inc({ reason: 'stream_limit' });
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: new StrataError('XDS_STREAM_LIMIT', 'this xDS server serves its maximum number of streams; retry later').message });
      return;
    }
    const stream = new Stream(++this.#nextId, variant, call);
    if (onlyType) stream.onlyType = onlyType;
    this.#streams.add(stream);
    m.streams.inc({ variant });
    const cleanup = (): void => {
      if (stream.closed) return;
      stream.closed = true;
      this.#streams.delete(stream);
      m.streams.dec({ variant });
      if (stream.identity) this.#options.secrets?.release(stream.identity);
    };
    // On the mTLS port, the verified client certificate (grpc-js reports it only when verified).
    const peerCert = call.getAuthContext?.().sslPeerCertificate;
    const peer = peerCert ? { subjectaltname: peerCert.subjectaltname } : undefined;
    const authenticate = (authorization: string | undefined): void => {
      stream.authStarted = true;
      this.#options.authenticate(authorization, peer).then(
        (identity) => {
          if (stream.closed) return;
          stream.identity = identity;
          this.#options.secrets?.retain(identity);
          const queued = stream.queued;
          stream.queued = [];
          for (const req of queued) this.#safely(stream, req);
        },
        (err: unknown) => {
          m.rejected.inc({ reason: 'unauthenticated' });
          const unauthenticated = isStrataError(err, 'XDS_UNAUTHENTICATED');
          if (!unauthenticated) this.#options.logger?.warn({ err }, 'xDS stream authentication failed');
          this.#end(stream, {
            code: unauthenticated ? grpc.status.UNAUTHENTICATED : grpc.status.UNAVAILABLE,
            details: unauthenticated ? err.message : 'cannot verify the token now; retry',
          });
        },
      );
    };
    call.on('data', (req: SotwRequest | DeltaRequest) => {
      if (stream.closed) return;
      if (!stream.identity) {
        if (stream.queued.length >= 16) return this.#end(stream, { code: grpc.status.RESOURCE_EXHAUSTED, details: 'too many requests before the token was verified' });
        stream.queued.push(req);
        // gRPC's xDS clients cannot add call metadata: their bootstrap puts the token in node.metadata.
        if (!stream.authStarted) authenticate(nodeToken(req.node));
        return;
      }
      this.#safely(stream, req);
    });
    call.on('end', () => {
      cleanup();
      call.end();
    });
    call.on('cancelled', cleanup);
    call.on('error', cleanup);
    call.on('close', cleanup);
    const header = call.metadata.get('authorization')[0];
    if (typeof header === 'string' || peer) authenticate(typeof header === 'string' ? header : undefined);
  }

  #end(stream: Stream, status: { code: grpc.status; details: string }): void {
    if (stream.closed) return;
    stream.closed = true;
    this.#streams.delete(stream);
    this.#options.metrics.streams.dec({ variant: stream.variant });
    if (stream.identity) this.#options.secrets?.release(stream.identity);
    stream.call.emit('error', status);
  }

  /** A request never throws into gRPC: a bad one ends its own stream with INVALID_ARGUMENT. */
  #safely(stream: Stream, req: SotwRequest | DeltaRequest): void {
    try {
      if (stream.variant === 'sotw') this.#onSotw(stream, req as SotwRequest);
      else this.#onDelta(stream, req as DeltaRequest);
    } catch (err) {
      this.#options.metrics.rejected.inc({ reason: 'invalid' });
      const message = isStrataError(err) ? err.message : 'the request could not be handled';
      if (!isStrataError(err)) this.#options.logger?.warn({ err }, 'xDS request failed');
      this.#end(stream, { code: grpc.status.INVALID_ARGUMENT, details: message });
    }
  }

  #typeOf(stream: Stream, url: string | undefined): TypeUrl | undefined {
    if (stream.onlyType) {
      if (url === undefined || url === '' || url === stream.onlyType) return stream.onlyType;
    } else if (url !== undefined && isTypeUrl(url)) return url;
    this.#options.metrics.rejected.inc({ reason: 'unknown_type' });
    this.#options.logger?.debug({ stream: stream.id, typeUrl: url }, 'xDS request for an unknown type URL ignored');
    return undefined;
  }

  #node(stream: Stream, node: NodeMsg | undefined): void {
    if (node && stream.nodeId === undefined) {
      stream.nodeId = node.id ?? '';
      stream.flavor = flavorOf(node);
    }
  }

  #checkNames(names: readonly string[]): void {
    const max = this.#options.maxNamesPerType ?? 100_000;
    if (names.length > max) {
      this.#options.metrics.rejected.inc({ reason: 'too_many_names' });
      throw new StrataError('XDS_REQUEST_INVALID', `a request names ${names.length} resources; at most ${max} per type`);
    }
  }

  /** An ACK or NACK of the pending response: record it, measure convergence. */
  #acknowledge(stream: Stream, typeUrl: TypeUrl, s: TypeState, error: Status | undefined): void {
    const version = s.pendingVersion;
    const m = this.#options.metrics;
    const nack = error !== undefined && error !== null;
    if (nack) {
      s.nacks++;
      s.lastError = error.message ?? '';
      m.nacks.inc({ type: TYPE_SHORT[typeUrl] });
      this.#options.logger?.warn({ stream: stream.id, node: stream.nodeId, type: TYPE_SHORT[typeUrl], error: s.lastError }, 'xDS node rejected a response (NACK); it is not sent again until the resources change');
    } else {
      m.convergenceSeconds.observe({ type: TYPE_SHORT[typeUrl] }, Math.max(0, Date.now() - s.pendingTriggeredAtMs) / 1000);
    }
    s.pendingNonce = undefined;
    this.onAck?.({ stream: stream.info(), typeUrl, version, nack });
  }

  #onSotw(stream: Stream, req: SotwRequest): void {
    this.#node(stream, req.node);
    const typeUrl = this.#typeOf(stream, req.type_url);
    if (!typeUrl) return;
    const s = stream.state(typeUrl);
    const nonce = req.response_nonce ?? '';
    if (nonce !== '') {
      if (nonce !== s.lastNonce) {
        this.#options.metrics.rejected.inc({ reason: 'stale_nonce' });
        return; // SotW: a request for an older response is superseded
      }
      if (s.pendingNonce === nonce) this.#acknowledge(stream, typeUrl, s, req.error_detail);
    } else {
      s.forceFull = true; // new subscription or reconnect: a full answer whatever version it claims
    }
    let names: readonly string[];
    if (req.namesBytes !== undefined) {
      const digest = createHash('sha1').update(req.namesBytes).digest('base64');
      if (s.everRequested && digest === s.namesDigest && nonce !== '') {
        // The same subscription as last time: nothing to diff.
        this.#pump(stream);
        return;
      }
      s.namesDigest = digest;
      names = decodeNames(req.namesBytes);
    } else names = req.resource_names ?? [];
    this.#checkNames(names);
    const full = FULL_STATE.has(typeUrl);
    const wildcard = full && (names.includes('*') || (names.length === 0 && (!s.everRequested || s.wildcard)));
    if (wildcard && !s.wildcard) s.forceFull = true;
    s.wildcard = wildcard;
    // Names are interned to the snapshot's own strings, so a thousand streams subscribing the same names share them.
    const known = this.#snapshot?.resources.get(typeUrl);
    const next = new Set<string>();
    for (const n of names) if (n !== '*') next.add(known?.get(n)?.name ?? n);
    for (const n of s.names) {
      if (!next.has(n)) {
        s.names.delete(n);
        s.sent.delete(n); // a later re-subscribe is answered again
        s.force.delete(n);
        if (full) s.dirty.add(n);
      }
    }
    for (const n of next) {
      if (!s.names.has(n)) {
        s.names.add(n);
        s.force.add(n);
      }
    }
    s.everRequested = true;
    this.#pump(stream);
  }

  #onDelta(stream: Stream, req: DeltaRequest): void {
    this.#node(stream, req.node);
    const typeUrl = this.#typeOf(stream, req.type_url);
    if (!typeUrl) return;
    const s = stream.state(typeUrl);
    const nonce = req.response_nonce ?? '';
    if (nonce !== '' && nonce === s.pendingNonce) this.#acknowledge(stream, typeUrl, s, req.error_detail);
    else if (nonce !== '' && nonce !== s.lastNonce) this.#options.metrics.rejected.inc({ reason: 'stale_nonce' }); // still apply its subscription changes
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    this.#checkNames(subscribe);
    this.#checkNames(unsubscribe);
    const full = FULL_STATE.has(typeUrl);
    if (!s.everRequested) {
      const initial = Object.entries(req.initial_resource_versions ?? {});
      this.#checkNames(initial.map(([n]) => n));
      const known = this.#snapshot?.resources.get(typeUrl);
      for (const [n, v] of initial) s.sent.set(known?.get(n)?.name ?? n, v);
      if (full && subscribe.length === 0) s.wildcard = true; // legacy wildcard
      s.dirtyAll = true;
    }
    const known = this.#snapshot?.resources.get(typeUrl);
    for (const raw of subscribe) {
      const n = known?.get(raw)?.name ?? raw; // interned, as in SotW
      if (n === '*') {
        if (full && !s.wildcard) {
          s.wildcard = true;
          s.dirtyAll = true;
        }
        continue;
      }
      if (!s.names.has(n)) {
        s.names.add(n);
        if (s.everRequested) s.force.add(n);
        else s.dirty.add(n);
      }
    }
    for (const n of unsubscribe) {
      if (n === '*') {
        s.wildcard = false;
        s.dirtyAll = true;
        continue;
      }
      s.names.delete(n);
      s.force.delete(n);
      s.sent.delete(n);
    }
    if (s.names.size > (this.#options.maxNamesPerType ?? 100_000)) this.#checkNames([...s.names]);
    s.everRequested = true;
    this.#pump(stream);
  }

  #visible(stream: Stream, r: EncodedResource): boolean {
    if (r.typeUrl === TYPE.secret && this.#options.secrets) return true; // the identity's own
    if (r.flavor !== undefined && r.flavor !== stream.flavor) return false;
    const id = stream.identity!;
    if (id.all) return true;
    for (const o of r.owners) if (id.mayRead(o)) return true;
    return false;
  }

  #subscribed(s: TypeState, name: string): boolean {
    return s.wildcard || s.names.has(name);
  }

  /** Send the next response this stream needs, in push order, one type at a time. */
  #pump(stream: Stream): void {
    const snapshot = this.#snapshot;
    if (!snapshot || stream.closed || !stream.identity) return;
    for (const typeUrl of PUSH_ORDER) {
      const s = stream.types.get(typeUrl);
      if (!s?.everRequested) continue;
      if (s.pendingNonce !== undefined) return; // wait for its ACK before anything later
      const sent = stream.variant === 'sotw' ? this.#sendSotw(stream, snapshot, typeUrl, s) : this.#sendDelta(stream, snapshot, typeUrl, s);
      if (sent) return;
    }
  }

  #sendSotw(stream: Stream, snapshot: Snapshot, typeUrl: TypeUrl, s: TypeState): boolean {
    const all = this.#resourcesOf(stream, snapshot, typeUrl);
    const forced = s.forceFull || s.force.size > 0;
    const out: EncodedResource[] = [];
    if (FULL_STATE.has(typeUrl)) {
      let relevant = forced || s.dirtyAll;
      if (!relevant) for (const n of s.dirty) if (this.#subscribed(s, n) || s.sent.has(n)) relevant = true;
      if (!relevant) return this.#clean(s);
      if (s.wildcard) {
        for (const r of all.values()) if (this.#visible(stream, r)) out.push(r);
      } else {
        for (const n of s.names) {
          const r = all.get(n);
          if (r && this.#visible(stream, r)) out.push(r);
        }
      }
      const same = !forced && out.length === s.sent.size && out.every((r) => s.sent.get(r.name) === r.version);
      if (same) return this.#clean(s);
      s.sent.clear();
    } else {
      const candidates = s.forceFull || s.dirtyAll ? s.names : new Set([...s.dirty, ...s.force]);
      for (const n of candidates) {
        if (!s.names.has(n)) continue;
        const r = all.get(n);
        if (!r || !this.#visible(stream, r)) continue;
        if (s.forceFull || s.force.has(n) || s.sent.get(n) !== r.version) out.push(r);
      }
      if (out.length === 0) return this.#clean(s);
    }
    for (const r of out) s.sent.set(r.name, r.version);
    const askedFor = forced;
    this.#clean(s);
    const nonce = stream.nextNonce();
    // Secrets change apart from snapshots (rotation): their version is their own content.
    const version = typeUrl === TYPE.secret && this.#options.secrets ? `${snapshot.version}/${out.map((r) => r.version).join('.')}` : snapshot.version;
    const parts: Buffer[] = [frame(1, version)];
    for (const r of out) parts.push(r.sotwFrame);
    parts.push(frame(4, typeUrl), frame(5, nonce));
    return this.#write(stream, typeUrl, s, nonce, Buffer.concat(parts), askedFor ? Date.now() : snapshot.triggeredAtMs, snapshot.version);
  }

  #sendDelta(stream: Stream, snapshot: Snapshot, typeUrl: TypeUrl, s: TypeState): boolean {
    const all = this.#resourcesOf(stream, snapshot, typeUrl);
    const out: EncodedResource[] = [];
    const removed: string[] = [];
    let candidates: Iterable<string>;
    if (s.dirtyAll || s.forceFull) {
      const names = new Set<string>([...s.names, ...s.sent.keys()]);
      if (s.wildcard) for (const n of all.keys()) names.add(n);
      candidates = names;
    } else candidates = new Set([...s.dirty, ...s.force]);
    for (const n of candidates) {
      const r = all.get(n);
      const wanted = r !== undefined && this.#subscribed(s, n) && this.#visible(stream, r);
      if (wanted) {
        if (s.force.has(n) || s.sent.get(n) !== r.version) out.push(r);
      } else if (s.sent.has(n)) {
        removed.push(n);
        s.sent.delete(n);
      }
    }
    const askedFor = s.forceFull || s.force.size > 0;
    this.#clean(s);
    if (out.length === 0 && removed.length === 0) return false;
    for (const r of out) s.sent.set(r.name, r.version);
    const nonce = stream.nextNonce();
    const parts: Buffer[] = [frame(1, snapshot.version)];
    for (const r of out) parts.push(r.deltaFrame);
    parts.push(frame(4, typeUrl), frame(5, nonce));
    for (const n of removed) parts.push(frame(6, n));
    return this.#write(stream, typeUrl, s, nonce, Buffer.concat(parts), askedFor ? Date.now() : snapshot.triggeredAtMs, snapshot.version);
  }

  #clean(s: TypeState): false {
    s.dirty.clear();
    s.dirtyAll = false;
    s.force.clear();
    s.forceFull = false;
    return false;
  }

  /** `sinceMs`: when what this response answers happened (a state change, or the request). */
  #write(stream: Stream, typeUrl: TypeUrl, s: TypeState, nonce: string, bytes: Buffer, sinceMs: number, version: string): true {
    s.pendingNonce = nonce;
    s.pendingVersion = version;
    s.lastNonce = nonce;
    s.pendingTriggeredAtMs = sinceMs;
    this.#options.metrics.configBytes.inc({ type: TYPE_SHORT[typeUrl] }, bytes.length);
    stream.call.write(bytes);
    return true;
  }
}
