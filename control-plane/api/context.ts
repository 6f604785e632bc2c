/**
 * What route modules see: the context a process hands to the API, and the
 * fastify instance type with the TypeBox type provider. Kept apart from
 * app.ts so route modules and the builder do not import each other.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { StrataConfig } from '../config/schema.ts';
import type { Records } from '../model/records.ts';
import type { LeaderInfo } from '../model/schemas.ts';
import type { StateStore } from '../store/port.ts';
import type { ClusterCa } from '../../security/ca/authority.ts';
import type { Iam } from '../../security/iam.ts';
import type { SecretVault } from '../../security/secrets/vault.ts';
import type { TokenService } from '../../security/tokens.ts';
import type { MtlsServerContext } from '../../security/mtls/server.ts';
import type { ApiMetrics } from './metrics.ts';

export type { LeaderInfo } from '../model/schemas.ts';

/** What routes may use. Owned by the process that builds the app. */
export interface ApiContext {
  readonly config: Readonly<StrataConfig>;
  readonly store: StateStore;
  readonly records: Records;
  readonly tokens: TokenService;
  readonly iam: Iam;
  /** The cluster CA; absent in contexts built without one (its routes then answer `CA_NOT_READY`). */
  readonly ca?: ClusterCa;
  /** The secret store; absent in contexts built without one (its routes then answer `SECRET_STORE_NOT_FOUND`). */
  readonly secrets?: SecretVault;
  readonly metrics: ApiMetrics;
  /** Component mTLS on this master (absent: off; see `security/mtls`). */
  readonly mtls?: MtlsServerContext;
  role(): 'leader' | 'standby';
  /** The current leader; throws `RECORD_NOT_FOUND` while there is none. */
  leader(): Promise<LeaderInfo>;
}

export type ApiInstance = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** A group of routes: registered in order by {@link buildApi}. */
export type RouteModule = (app: ApiInstance, ctx: ApiContext) => void;

