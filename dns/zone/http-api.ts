/**
 * The Mesos-DNS HTTP API (MD `resolver/resolver.go`: `/v1/version`,
 * `/v1/config`, `/v1/hosts/{host}`, `/v1/hosts/{host}/ports`,
 * `/v1/services/{service}`, `/v1/enumerate`, `/v1/axfr`) in Mesos-DNS's
 * JSON shapes, read from the same zones the DNS answers come from.
 *
 * `registerMesosDnsApi(app, {prefix, reader, permission})` mounts it
 * anywhere: the master mounts it at the Admin Router path `/mesos_dns`
 * (rid `dcos:adminrouter:ops:mesos-dns`, action `full`, as Admin Router
 * checks it) through {@link mesosDnsRoutes}; a standalone DNS HTTP listener
 * can mount it at `''` (so `/v1/...`, Mesos-DNS's own paths).
 *
 * Differences from Mesos-DNS: `/v1/hosts/{host}/ports` answers (Mesos-DNS
 * said 501 "To be implemented"): the SRV records whose target is the host;
 * `/v1/hosts` lists AAAA addresses too; before the first state sync every
 * route but `/v1/version` and `/v1/config` answers 503 `DNS_ZONE_NOT_SYNCED`
 * instead of an empty zone.
 */
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { StrataError } from '../../common/errors.ts';
import type { ApiContext, ApiInstance, RouteModule } from '../../control-plane/api/context.ts';
import { send } from '../../control-plane/api/errors.ts';
import { requires, type RoutePermission } from '../../control-plane/api/permissions.ts';
import { STRATA_VERSION } from '../../control-plane/api/routes/system.ts';
import type { ZoneReader } from './authority.ts';
import { zoneOptionsFromConfig, type ZoneOptionsInput } from './options.ts';
import { StoreAuthority } from './store-feed.ts';
import type { ResourceRecord } from './types.ts';

/** Admin Router's resource id for `/mesos_dns/` (it accepts only `full`). */
export const MESOS_DNS_RID = 'dcos:adminrouter:ops:mesos-dns';
/** Where Admin Router serves Mesos-DNS's API on a master. */
export const MESOS_DNS_PREFIX = '/mesos_dns';

export interface MesosDnsApiOptions {
  /** Path prefix: `/mesos_dns` on the master, `''` on a standalone listener. */
  readonly prefix: string;
  /** The zones to read (a function, so they can be opened on first use). */
  readonly reader: () => ZoneReader | Promise<ZoneReader>;
  readonly permission: RoutePermission;
}

const Version = Type.Object({ Service: Type.String(), Version: Type.String(), URL: Type.String() });
const Config = Type.Object({
  RefreshSeconds: Type.Integer(),
  TTL: Type.Integer(),
  Domain: Type.String(),
  Masters: Type.Array(Type.String()),
  IPSources: Type.Array(Type.String()),
  EnforceRFC952: Type.Boolean(),
  SOAMname: Type.String(),
  SOARname: Type.String(),
  SOASerial: Type.Integer(),
  SOARefresh: Type.Integer(),
  SOARetry: Type.Integer(),
  SOAExpire: Type.Integer(),
  SOAMinttl: Type.Integer(),
  SRVRecordDefaultWeight: Type.Integer(),
  EnumerationOn: Type.Boolean(),
  IncludeStartingTasks: Type.Boolean({ description: 'Strata: STAGING/STARTING tasks get records too' }),
  HealthyOnly: Type.Boolean({ description: 'Strata: RUNNING tasks need passing health checks' }),
  PTRRecords: Type.Boolean({ description: 'Strata: PTR records for task and agent addresses' }),
  ReverseZones: Type.Array(Type.String()),
  ThisDcos: Type.Boolean({ description: 'Strata: thisdcos.directory zones served' }),
});
const Host = Type.Object({ host: Type.String(), ip: Type.String() });
const Service = Type.Object({ service: Type.String(), host: Type.String(), ip: Type.String(), port: Type.String() });
const EnumerableRecord = Type.Object({ name: Type.String(), host: Type.String(), rtype: Type.String() });
const Enumeration = Type.Object({
  frameworks: Type.Array(
    Type.Object({
      tasks: Type.Array(Type.Object({ name: Type.String(), id: Type.String(), records: Type.Array(EnumerableRecord) })),
      name: Type.String(),
    }),
  ),
});
const RecordSet = Type.Record(Type.String(), Type.Array(Type.String()));
const Axfr = Type.Object({
  TTL: Type.Integer(),
  Serial: Type.Integer(),
  RefreshSeconds: Type.Integer(),
  Mname: Type.String(),
  Rname: Type.String(),
  Domain: Type.String(),
  Records: Type.Object({ As: RecordSet, AAAAs: RecordSet, SRVs: RecordSet }),
});
/** A name (at most 253 characters, a trailing dot, Mesos-DNS's `.*` wildcards) and an optional `/ports`. */
const WildcardParam = Type.String({ maxLength: 300 });

/** Mesos-DNS `cleanWild`, lower case, and the absolute form with its trailing dot. */
function clean(name: string): string {
  const n = name.replaceAll('.*', '').toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

const dotted = (name: string): string => `${name}.`;

function addressesOf(reader: ZoneReader, name: string): string[] {
  return reader.recordsAt(name).flatMap((r) => (r.type === 'A' || r.type === 'AAAA' ? [r.address] : []));
}

async function synced(options: MesosDnsApiOptions): Promise<ZoneReader> {
  const reader = await options.reader();
  if (!reader.synced) throw new StrataError('DNS_ZONE_NOT_SYNCED', 'the DNS zones have not received the cluster state yet; retry shortly');
  return reader;
}

function serviceRows(reader: ZoneReader, service: string, records: readonly ResourceRecord[]): { service: string; host: string; ip: string; port: string }[] {
  return records.flatMap((r) => (r.type === 'SRV' ? [{ service, host: dotted(r.target), ip: addressesOf(reader, r.target)[0] ?? '', port: String(r.port) }] : []));
}

/** Coded errors answered here, so a bare fastify app (no Strata error handler) answers them the same way. */
async function coded<T>(reply: FastifyReply, handler: () => Promise<T>): Promise<T | FastifyReply> {
  try {
    return await handler();
  } catch (err) {
    if (err instanceof StrataError) return send(reply, err);
    throw err;
  }
}

export function registerMesosDnsApi(app: ApiInstance, options: MesosDnsApiOptions): void {
  const p = options.prefix;
  const config = { permission: options.permission };
  const tags = ['mesos-dns'];

  app.get(`${p}/v1/version`, { config, schema: { tags, summary: 'Mesos-DNS version (Mesos-DNS shape)', response: { 200: Version } } }, async () => ({
    Service: 'Mesos-DNS',
    Version: `strata-${STRATA_VERSION}`,
    URL: 'https://github.com/mesosphere/mesos-dns',
  }));

  app.get(`${p}/v1/config`, { config, schema: { tags, summary: 'The zone options, under Mesos-DNS config names', response: { 200: Config } } }, async () => {
    const reader = await options.reader();
    const o = reader.options;
    return {
      RefreshSeconds: o.refreshSeconds,
      TTL: o.ttlSeconds,
      Domain: o.domain,
      Masters: [...o.masters],
      IPSources: [...o.ipSources],
      EnforceRFC952: o.enforceRfc952,
      SOAMname: dotted(o.soa.mname),
      SOARname: dotted(o.soa.rname),
      SOASerial: reader.serial % 2 ** 32,
      SOARefresh: o.soa.refreshSeconds,
      SOARetry: o.soa.retrySeconds,
      SOAExpire: o.soa.expireSeconds,
      SOAMinttl: o.soa.minimumSeconds,
      SRVRecordDefaultWeight: o.srvWeight,
      EnumerationOn: o.enumerationOn,
      IncludeStartingTasks: o.includeStartingTasks,
      HealthyOnly: o.healthyOnly,
      PTRRecords: o.ptrRecords,
      ReverseZones: [...o.reverseZones],
      ThisDcos: o.thisDcos.enabled,
    };
  });

  // Wildcards, not `:host`: a parametric segment is limited to 100 characters (fastify's maxParamLength), names to 253.
  app.get(
    `${p}/v1/hosts/*`,
    {
      config,
      schema: {
        tags,
        summary: '`/v1/hosts/{host}`: A and AAAA records of a name, [{host, ip}] ([{host:"", ip:""}] when none); `/v1/hosts/{host}/ports`: SRV records that target it, [{service, host, ip, port}]',
        params: Type.Object({ '*': WildcardParam }),
        // One shape for both answers ({host, ip} rows; ports rows add service and port): a union would serialise by the first branch.
        response: { 200: Type.Array(Type.Object({ ...Host.properties, service: Type.Optional(Type.String()), port: Type.Optional(Type.String()) })) },
      },
    },
    async (request, reply) => coded(reply, async () => {
      const path = request.params['*'];
      const ports = path.endsWith('/ports');
      const name = clean(ports ? path.slice(0, -'/ports'.length) : path);
      if (name === '' || name.includes('/')) throw new StrataError('API_NOT_FOUND', `no route GET ${p}/v1/hosts/${path}: expected /v1/hosts/{host} or /v1/hosts/{host}/ports`);
      const reader = await synced(options);
      if (!ports) {
        const rows = addressesOf(reader, name).map((ip) => ({ host: dotted(name), ip }));
        return rows.length > 0 ? rows : [{ host: '', ip: '' }];
      }
      const ip = addressesOf(reader, name)[0] ?? '';
      const rows = reader.srvRecordsTo(name).flatMap((r) => (r.type === 'SRV' ? [{ service: dotted(r.name), host: dotted(name), ip, port: String(r.port) }] : []));
      return rows.length > 0 ? rows : [{ service: '', host: '', ip: '', port: '' }];
    }),
  );

  app.get(
    `${p}/v1/services/*`,
    { config, schema: { tags, summary: '`/v1/services/{service}`: SRV records of a name, [{service, host, ip, port}] (one empty row when none)', params: Type.Object({ '*': WildcardParam }), response: { 200: Type.Array(Service) } } },
    async (request, reply) => coded(reply, async () => {
      const service = request.params['*'];
      if (service === '' || service.includes('/')) throw new StrataError('API_NOT_FOUND', `no route GET ${p}/v1/services/${service}: expected /v1/services/{service}`);
      const reader = await synced(options);
      const rows = serviceRows(reader, service, reader.recordsAt(clean(service), 'SRV'));
      return rows.length > 0 ? rows : [{ service: '', host: '', ip: '', port: '' }];
    }),
  );

  app.get(`${p}/v1/enumerate`, { config, schema: { tags, summary: 'Every published task with its records, by framework', response: { 200: Enumeration } } }, async (_request, reply) => coded(reply, async () => {
    const reader = await synced(options);
    if (!reader.options.enumerationOn) throw new StrataError('API_NOT_FOUND', 'enumeration is off (enumerationOn: false)');
    const { frameworks } = reader.enumerate();
    return { frameworks: frameworks.map((f) => ({ name: f.name, tasks: f.tasks.map((task) => ({ name: task.name, id: task.id, records: [...task.records] })) })) };
  }));

  app.get(`${p}/v1/axfr`, { config, schema: { tags, summary: 'The mesos zone as Mesos-DNS transfers it (A, AAAA, SRV by name)', response: { 200: Axfr } } }, async (_request, reply) => coded(reply, async () => {
    const reader = await synced(options);
    const o = reader.options;
    if (!o.enumerationOn) throw new StrataError('API_NOT_FOUND', 'enumeration is off (enumerationOn: false)');
    const As: Record<string, string[]> = {};
    const AAAAs: Record<string, string[]> = {};
    const SRVs: Record<string, string[]> = {};
    const add = (set: Record<string, string[]>, name: string, value: string): void => {
      (set[dotted(name)] ??= []).push(value);
    };
    for (const r of reader.mesosRecords()) {
      if (r.type === 'A') add(As, r.name, r.address);
      else if (r.type === 'AAAA') add(AAAAs, r.name, r.address);
      else if (r.type === 'SRV') add(SRVs, r.name, `${dotted(r.target)}:${r.port}`);
    }
    return {
      TTL: o.ttlSeconds,
      Serial: reader.serial % 2 ** 32,
      RefreshSeconds: o.refreshSeconds,
      Mname: dotted(o.soa.mname),
      Rname: dotted(o.soa.rname),
      Domain: o.domain,
      Records: { As, AAAAs, SRVs },
    };
  }));
}

export interface MesosDnsRoutesOptions {
  /** Read these zones (e.g. the DNS server's own authority). Default: open a {@link StoreAuthority} over the master's store on first use, closed with the app. */
  readonly reader?: ZoneReader;
  /** Options of the zones opened by default. */
  readonly zone?: ZoneOptionsInput;
}

/** The master's route module: the Mesos-DNS API under `/mesos_dns/v1/...`, guarded by `dcos:adminrouter:ops:mesos-dns`. */
export function mesosDnsRoutes(routeOptions: MesosDnsRoutesOptions = {}): RouteModule {
  return (app: ApiInstance, ctx: ApiContext) => {
    let opening: Promise<ZoneReader> | undefined;
    let opened: StoreAuthority | undefined;
    const reader = (): ZoneReader | Promise<ZoneReader> => {
      if (routeOptions.reader) return routeOptions.reader;
      opening ??= (async () => {
        const authority = new StoreAuthority(ctx.records, {
          zone: routeOptions.zone ?? zoneOptionsFromConfig(ctx.config.dns),
          metrics: ctx.metrics.registry,
          onError: (err) => app.log.error({ err }, 'dns zone view listener failed'),
          onInvalid: (invalid) => app.log.warn({ key: invalid.key, err: invalid.error.message }, 'unusable record left out of the DNS zones'),
        });
        opened = authority;
        await authority.start();
        return authority;
      })();
      // A failed open (the store unreachable) is retried by the next request.
      opening.catch(() => {
        opened?.close();
        opened = undefined;
        opening = undefined;
      });
      return opening;
    };
    app.addHook('onClose', async () => opened?.close());
    registerMesosDnsApi(app, { prefix: MESOS_DNS_PREFIX, reader, permission: requires(MESOS_DNS_RID, 'full') });
  };
}
