/**
 * Versioned, encoded snapshots. The builder turns a translation into the
 * bytes every stream shares: each resource is encoded once per content
 * (keyed by its JSON fingerprint) into the `Any` and the two frames the
 * server splices into responses (a `DiscoveryResponse.resources` entry and a
 * `DeltaDiscoveryResponse.resources` entry), so a response is a
 * `Buffer.concat` of shared buffers and nothing is re-marshalled per stream
 * (go-control-plane #238).
 *
 * A snapshot is checked for consistency before it is returned; an
 * inconsistent one is refused (`XDS_SNAPSHOT_INCONSISTENT`) and the server
 * keeps serving the previous one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { StrataError } from '../../common/errors.ts';
import { checkConsistency } from './consistency.ts';
import { encodeMessage, TYPE_URLS, type TypeUrl } from './protos.ts';
import type { Flavor, Translation, TranslateIssue, XdsResource } from './translate.ts';

export interface EncodedResource {
  readonly typeUrl: TypeUrl;
  readonly name: string;
  /** Content hash of the encoded message: the delta `version`, stable across masters and restarts. */
  readonly version: string;
  readonly owners: ReadonlySet<string>;
  readonly flavor?: Flavor;
  /** `DiscoveryResponse` field 2 (an Any), framed. */
  readonly sotwFrame: Buffer;
  /** `DeltaDiscoveryResponse` field 2 (a `Resource` with name, version and the Any), framed. */
  readonly deltaFrame: Buffer;
  /** Size of the encoded resource message. */
  readonly bytes: number;
}

export interface Snapshot {
  /** `<process prefix>-<n>`: never reused by another process (go-control-plane's `WithVersionPrefix`). */
  readonly version: string;
  readonly resources: ReadonlyMap<TypeUrl, ReadonlyMap<string, EncodedResource>>;
  /** Names added, changed (content or owners) or removed since the previous snapshot, by type. */
  readonly changed: ReadonlyMap<TypeUrl, ReadonlySet<string>>;
  /** Translation issues (bad labels, skipped routes): served anyway, reported. */
  readonly issues: readonly TranslateIssue[];
  /** When the first state change this snapshot reflects was seen (ms since epoch; convergence is measured from it). */
  readonly triggeredAtMs: number;
  readonly totalBytes: number;
}

// Protobuf wire helpers: length-delimited fields only.
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field: tag (field << 3 | 2), length, bytes. */
export function frame(field: number, bytes: Uint8Array | string): Buffer {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return Buffer.concat([varint((field << 3) | 2), varint(b.length), b]);
}

/** Encode one resource into the shared frames the server splices (used by the builder and by per-node secrets). */
export function encodeResource(r: Pick<XdsResource, 'typeUrl' | 'name' | 'value' | 'owners' | 'flavor'>): EncodedResource {
  const bytes = encodeMessage(r.typeUrl, r.value);
  const version = createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
  const any = Buffer.concat([frame(1, r.typeUrl), frame(2, bytes)]);
  return {
    typeUrl: r.typeUrl, name: r.name, version, owners: new Set(r.owners), ...(r.flavor ? { flavor: r.flavor } : {}),
    sotwFrame: frame(2, any),
    // Resource: version = 1, resource = 2, name = 3.
    deltaFrame: frame(2, Buffer.concat([frame(1, version), frame(2, any), frame(3, r.name)])),
    bytes: bytes.length,
  };
}

interface CacheEntry {
  /** The translated resource this entry encodes: the same object again means nothing to redo. */
  readonly source: XdsResource;
  readonly fingerprint: string;
  readonly ownersKey: string;
  readonly resource: EncodedResource;
}

export class SnapshotBuilder {
  readonly #prefix: string;
  #n = 0;
  #cache = new Map<string, CacheEntry>();
  #previous: Snapshot | undefined;

  constructor(options: { versionPrefix?: string } = {}) {
    this.#prefix = options.versionPrefix ?? randomBytes(4).toString('hex');
  }

  get current(): Snapshot | undefined {
    return this.#previous;
  }

  /**
   * Encode `translation` into the next snapshot, reusing the encoding of
   * every unchanged resource. Throws `XDS_SNAPSHOT_INCONSISTENT` (listing
   * the problems) without changing the builder's state.
   */
  build(translation: Translation, triggeredAtMs = Date.now()): Snapshot {
    const problems = checkConsistency(translation.resources);
    if (problems.length > 0) {
      throw new StrataError('XDS_SNAPSHOT_INCONSISTENT', `the snapshot is inconsistent: ${problems.slice(0, 3).map((p) => `${p.name}: ${p.message}`).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`, { details: problems });
    }
    const cache = new Map<string, CacheEntry>();
    const resources = new Map<TypeUrl, Map<string, EncodedResource>>();
    const changed = new Map<TypeUrl, Set<string>>();
    let totalBytes = 0;
    for (const typeUrl of TYPE_URLS) {
      const out = new Map<string, EncodedResource>();
      const diff = new Set<string>();
      for (const [name, r] of translation.resources.get(typeUrl) ?? []) {
        const key = `${typeUrl}\n${name}`;
        const old = this.#cache.get(key);
        if (old && old.source === r) {
          cache.set(key, old);
          out.set(name, old.resource);
          totalBytes += old.resource.bytes;
          continue;
        }
        const fingerprint = JSON.stringify(r.value);
        const ownersKey = `${[...r.owners].sort().join('\n')}\n${r.flavor ?? ''}`;
        let entry: CacheEntry;
        if (old && old.fingerprint === fingerprint) {
          entry = old.ownersKey === ownersKey ? { ...old, source: r } : { source: r, fingerprint, ownersKey, resource: { ...old.resource, owners: new Set(r.owners), ...(r.flavor ? { flavor: r.flavor } : {}) } };
        } else {
          entry = { source: r, fingerprint, ownersKey, resource: encodeResource({ ...r, name }) };
        }
        if (!old || old.resource !== entry.resource) diff.add(name);
        cache.set(key, entry);
        out.set(name, entry.resource);
        totalBytes += entry.resource.bytes;
      }
      for (const name of this.#previous?.resources.get(typeUrl)?.keys() ?? []) if (!out.has(name)) diff.add(name);
      resources.set(typeUrl, out);
      if (diff.size > 0) changed.set(typeUrl, diff);
    }
    this.#cache = cache;
    const snapshot: Snapshot = {
      version: changed.size > 0 || !this.#previous ? `${this.#prefix}-${++this.#n}` : this.#previous.version,
      resources, changed, issues: translation.issues, triggeredAtMs, totalBytes,
    };
    this.#previous = snapshot;
    return snapshot;
  }
}
