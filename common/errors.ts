/**
 * The one registry of Strata's error codes. Every error a user can see carries
 * one of these stable codes (fastify's `FST_ERR_*` pattern): callers branch on
 * `code`, never on message text. `docs/errors.md` lists every code; a test
 * keeps the two in step.
 */

export interface ErrorSpec {
  /** HTTP status the API answers with when this error reaches a route. */
  readonly httpStatus: number;
  /** One line: what the code means, for docs/errors.md. */
  readonly summary: string;
}

export const ERROR_CODES = {
  // configuration
  CONFIG_INVALID: { httpStatus: 500, summary: 'A configuration value is missing or wrong; the message names the field.' },
  // store
  STORE_KEY_INVALID: { httpStatus: 400, summary: 'A store key is empty, too long, not valid UTF-8, or has a forbidden character.' },
  STORE_VALUE_TOO_LARGE: { httpStatus: 413, summary: 'A store value exceeds the size limit.' },
  STORE_VALUE_INVALID: { httpStatus: 400, summary: 'A store value is not a valid UTF-8 string.' },
  STORE_TXN_TOO_LARGE: { httpStatus: 400, summary: 'A transaction has more operations than the store allows.' },
  STORE_TXN_INVALID: { httpStatus: 400, summary: 'A transaction operation is malformed.' },
  STORE_SESSION_INVALID: { httpStatus: 409, summary: 'The session does not exist or has expired.' },
  STORE_SESSION_TTL_INVALID: { httpStatus: 400, summary: 'A session TTL is outside the range the backend supports.' },
  STORE_FENCED: { httpStatus: 409, summary: 'A leader write was refused because the writer is no longer the leader.' },
  STORE_UNAVAILABLE: { httpStatus: 503, summary: 'The state store cannot be reached; the call may be retried.' },
  STORE_CLOSED: { httpStatus: 503, summary: 'The store was closed.' },
  STORE_DATA_CORRUPT: { httpStatus: 500, summary: 'A data file is corrupt, foreign or from an unknown version; it was left untouched.' },
  STORE_BACKEND_UNKNOWN: { httpStatus: 500, summary: 'No store backend is registered under that name.' },
  STORE_PROTOCOL: { httpStatus: 502, summary: 'The store backend answered in a way the protocol does not allow.' },
  // records
  RECORD_INVALID: { httpStatus: 422, summary: 'A cluster-state record failed schema validation; the details list every field.' },
  RECORD_NOT_FOUND: { httpStatus: 404, summary: 'No record exists under that id.' },
  RECORD_CONFLICT: { httpStatus: 409, summary: 'The record changed since it was read (check-and-set failed).' },
  RECORD_ID_INVALID: { httpStatus: 400, summary: 'A record id is malformed for its kind (e.g. not an absolute Marathon path); the message says which rule it breaks.' },
  RECORD_UNDECODABLE: { httpStatus: 500, summary: 'A record in the store is not valid JSON or fails its schema; reads report it instead of using it.' },
  // networks
  NETWORK_CONFLICT: { httpStatus: 409, summary: 'An overlay network overlaps another (or the VTEP range), reuses a VNI, or already exists; the details name each conflict.' },
  NETWORK_IN_USE: { httpStatus: 409, summary: 'The network cannot be removed or re-addressed while apps ask for it or tasks run on it; the message says which.' },
  // overlay
  OVERLAY_EXHAUSTED: { httpStatus: 409, summary: 'An overlay pool has nothing free: no subnet of the network for an agent, no VTEP address, or no container IP in the agent\'s subnet; the message names the network and the agent.' },
  OVERLAY_NO_LEASE: { httpStatus: 409, summary: 'The agent has no overlay lease, or its lease has no subnet of that network (it must PUT /networking/api/v1/agents/{id}/overlay first).' },
  OVERLAY_CONTENDED: { httpStatus: 503, summary: 'An overlay allocation lost its check-and-set race too many times in a row; retry.' },
  OVERLAY_NETLINK: { httpStatus: 500, summary: 'The kernel refused a netlink request (the details carry errno, its name and the operation); or the netlink socket failed.' },
  OVERLAY_NETNS: { httpStatus: 500, summary: 'A task\'s network namespace could not be created, entered or removed (the details carry errno), or the strata_netns addon is not built (`npm run build:native`).' },
  OVERLAY_ATTACH: { httpStatus: 500, summary: 'A container could not be attached to an overlay network: the agent\'s overlay is off or not ready, the network has no bridge here, or the kernel refused a step (the message names it).' },
  // kernel load balancer, agent-side followers
  DATAPLANE_NFT: { httpStatus: 500, summary: 'nft refused a load balancer transaction, did not finish it in time, or could not run; nothing of the transaction was applied (details.nftOutput has what nft said).' },
  MASTER_UNREACHABLE: { httpStatus: 503, summary: 'An agent-side call found its master down or silent; the next master (if any) is asked next time. The message names the master and the path.' },
  // API
  API_BAD_REQUEST: { httpStatus: 400, summary: 'The request body, query or path failed validation; the details list every wrong field.' },
  API_NOT_FOUND: { httpStatus: 404, summary: 'No route matches the method and path.' },
  API_UNAUTHENTICATED: { httpStatus: 401, summary: 'No valid token was presented.' },
  API_FORBIDDEN: { httpStatus: 403, summary: 'The caller lacks the permission the route requires.' },
  API_CSRF_REFUSED: { httpStatus: 403, summary: 'A request to the API authenticated only by the auth cookie changes state (not GET/HEAD/OPTIONS), or a login, came from another origin than the host it was sent to (or named none); send the token in the Authorization header, or the request from the same origin (the web UI does).' },
  API_INTERNAL: { httpStatus: 500, summary: 'An unexpected server error; the log has the details.' },
  API_PAYLOAD_TOO_LARGE: { httpStatus: 413, summary: 'The request body is larger than the server accepts.' },
  API_TOO_MANY_REQUESTS: { httpStatus: 429, summary: 'Too many requests of this kind are waiting (e.g. logins); retry later.' },
  API_UNSUPPORTED_MEDIA: { httpStatus: 415, summary: 'The request body is not JSON.' },
  // auth
  AUTH_LOGIN_FAILED: { httpStatus: 401, summary: 'The uid or password is wrong (the two are not told apart).' },
  AUTH_TOKEN_INVALID: { httpStatus: 401, summary: 'The token is malformed, expired, or signed by a key or algorithm not allowed.' },
  AUTH_TOKEN_REVOKED: { httpStatus: 401, summary: 'The token was revoked before it expired (logout, or its principal was disabled, deleted or had its tokens revoked); log in again.' },
  AUTH_LOGIN_TOKEN_REJECTED: { httpStatus: 401, summary: 'A service login token verified but breaks a rule: it lives longer than 10 minutes, has expired, names another uid, or was already used.' },
  // iam
  IAM_PRINCIPAL_KIND: { httpStatus: 400, summary: 'The operation does not fit the principal\'s kind (a password for a service account, a public key for a user).' },
  IAM_LAST_SUPERUSER: { httpStatus: 409, summary: 'The change would leave no enabled principal holding dcos:superuser (nobody could administer the cluster); grant it to another principal first.' },
  IAM_ACL_NOT_FOUND: { httpStatus: 404, summary: 'No ACL exists for that resource id: create it with PUT /acs/api/v1/acls/{rid} before granting on it.' },
  // external identity providers
  IDP_NOT_CONFIGURED: { httpStatus: 404, summary: 'No such identity provider is configured (LDAP: PUT /acs/api/v1/ldap/config; OIDC, SAML: PUT /acs/api/v1/auth/{oidc,saml}/providers/{id}), or it lacks the part the operation needs (LDAP group-search).' },
  IDP_UNAVAILABLE: { httpStatus: 502, summary: 'The identity provider could not be reached or answered wrongly (connection, TLS or StartTLS failure, a lookup bind refused, a search matching several entries, discovery failed); the message says which.' },
  IDP_RESPONSE_REJECTED: { httpStatus: 401, summary: 'An OIDC or SAML answer failed a check (state or login expired/used, signature, issuer, audience, recipient, expiry, nonce, InResponseTo, a replayed assertion, a missing uid claim); the message says which.' },
  IDP_USER_CONFLICT: { httpStatus: 409, summary: 'The uid an external provider names belongs to a local user or to another provider\'s user; it is not taken over.' },
  // ca
  CA_CSR_INVALID: { httpStatus: 400, summary: 'The certificate request is not a readable PKCS#10 CSR, or its self-signature does not verify.' },
  CA_CSR_REJECTED: { httpStatus: 422, summary: 'The CA refuses what the request asks for: CA:true or certificate signing, names the caller does not own, a key type or size not allowed, or a lifetime over the maximum.' },
  CA_NOT_READY: { httpStatus: 503, summary: 'The cluster CA has not been created yet (the first master creates it at start).' },
  // secrets
  SECRET_NOT_FOUND: { httpStatus: 404, summary: 'No secret exists at that path of the store.' },
  SECRET_EXISTS: { httpStatus: 409, summary: 'PUT /secrets/v1/secret/{store}/{path} named a secret that already exists (change it with PATCH).' },
  SECRET_STORE_NOT_FOUND: { httpStatus: 404, summary: 'No secret store has that name (there is one: `default`).' },
  SECRET_DECRYPT_FAILED: { httpStatus: 500, summary: 'A stored secret did not decrypt: its ciphertext or key was altered, or the key-encryption key of its version is missing or wrong.' },
  SECRET_KEK_INVALID: { httpStatus: 500, summary: 'The key-encryption key file is unreadable, malformed, too open (not 0600) or lacks the current version; the message names the problem.' },
  SECRET_NOT_ALLOWED: { httpStatus: 403, summary: 'A task\'s app refers to a secret outside its path (an app may use secrets at its own path or above it) or to none; the message names the secret.' },
  // mTLS between components
  MTLS_REQUIRED: { httpStatus: 403, summary: 'With security.mtls=strict, internal routes (agent registration, task polls and status, the DNS feed, overlay leases) take only mTLS connections with a client certificate from the cluster CA; enrol first (POST /v1/agents/{id}/certificate).' },
  MTLS_IDENTITY_MISMATCH: { httpStatus: 403, summary: 'The verified client certificate names another component than the request claims (the agent id in the path must be the certificate\'s spiffe://<td>/agent/<id>).' },
  MTLS_OFF: { httpStatus: 409, summary: 'mTLS between components is off on this master (security.mtls=off): it issues no component certificates.' },
  // Marathon API and deployments
  APP_EXISTS: { httpStatus: 409, summary: 'POST /v2/apps named an app that already exists (change it with PUT or PATCH).' },
  APP_LOCKED: { httpStatus: 409, summary: 'The app is locked by a deployment that has not finished; the body lists the deployments; ?force=true overrides.' },
  GROUP_EXISTS: { httpStatus: 409, summary: 'POST /v2/groups named a group that already holds apps (change it with PUT /v2/groups/<id>).' },
  APP_SERVICE_PORT_TAKEN: { httpStatus: 409, summary: 'An app names a service port another app holds; the details give the field, the port and its holder (0 gets a free one).' },
  APP_SERVICE_PORTS_EXHAUSTED: { httpStatus: 409, summary: 'No service port is free in 10000-20000 for a port 0 of the app.' },
  TASK_LOG_AGENT_UNAVAILABLE: { httpStatus: 502, summary: 'A task\'s log could not be read: its agent is unknown, cannot be reached, or refused the master\'s request; the message says which.' },
  TASK_LOG_GONE: { httpStatus: 410, summary: 'The task is known but its sandbox (and so its log) is no longer on its agent.' },
  DEPLOYMENT_DEPENDENCY_CYCLE: { httpStatus: 422, summary: 'The apps\' dependencies would form a cycle; the message names the apps in it.' },
  // gateway
  GATEWAY_NO_ROUTE: { httpStatus: 404, summary: 'The gateway serves no such path (see the gateway README for its route classes), or /service/<app> names no app.' },
  GATEWAY_CSRF_REFUSED: { httpStatus: 403, summary: 'A request authenticated only by the auth cookie changes state (not GET/HEAD/OPTIONS) but its Origin (or Referer) is not the gateway\'s own origin; send the token in the Authorization header, or the request from the gateway\'s origin.' },
  GATEWAY_UPSTREAM_UNAVAILABLE: { httpStatus: 502, summary: 'The gateway could not connect to the upstream (refused, reset or connect timeout); the message names the route class and the upstream.' },
  GATEWAY_NO_HEALTHY_TASK: { httpStatus: 503, summary: 'The app behind /service/<app> has no running, healthy task with the port the gateway proxies to; the message says how many tasks it has and why none serves.' },
  GATEWAY_UPSTREAM_TIMEOUT: { httpStatus: 504, summary: 'The upstream accepted the connection but sent no response headers within gateway.upstreamTimeoutMs.' },
  // processes
  PROCESS_LEADER_LOST: { httpStatus: 503, summary: 'This master lost leadership and is stepping down.' },
  // executor (tasks on an agent)
  EXECUTOR_SPEC_INVALID: { httpStatus: 400, summary: 'A task launch spec is malformed (neither or both of cmd and args, or a task id that is not a safe directory name).' },
  EXECUTOR_TASK_EXISTS: { httpStatus: 409, summary: 'A task with that id was already launched on this agent.' },
  EXECUTOR_TASK_NOT_FOUND: { httpStatus: 404, summary: 'No task with that id is known on this agent.' },
  EXECUTOR_LOG_RANGE_INVALID: { httpStatus: 400, summary: 'A task log read named an unknown stream or rotated file, or a negative offset or length.' },
  EXECUTOR_CLOSED: { httpStatus: 503, summary: 'The executor was closed; it launches no more tasks.' },
  // dns
  DNS_OPTIONS_INVALID: { httpStatus: 500, summary: 'A DNS zone option is missing or wrong (domain, TTL, SOA field, IP source, master address); the message names it.' },
  DNS_ZONE_NOT_SYNCED: { httpStatus: 503, summary: 'The DNS zones have not received the cluster state yet (the DNS server answers SERVFAIL meanwhile); retry shortly.' },
  DNS_RECORD_INVALID: { httpStatus: 500, summary: 'A zone produced a record the DNS codec cannot encode (bad address, label over 63 bytes, name over 255); the query gets SERVFAIL.' },
  DNS_PLUGIN_UNKNOWN: { httpStatus: 500, summary: 'The DNS handler chain names a plugin that is not registered.' },
  DNS_UPSTREAM_INVALID: { httpStatus: 500, summary: 'A DNS upstream or forward-zone server is not an `ip` or `ip:port` address; the message names it.' },
  DNS_LISTEN_FAILED: { httpStatus: 500, summary: 'The DNS server could not bind its UDP or TCP address (in use, or port 53 without privileges).' },
  // xds
  XDS_SNAPSHOT_INCONSISTENT: { httpStatus: 500, summary: 'A translated xDS snapshot failed the consistency check (a route to a missing cluster, an EDS cluster without endpoints, ...); the previous snapshot stays served and the details list every problem.' },
  XDS_UNAUTHENTICATED: { httpStatus: 401, summary: 'An xDS stream carried no valid token (metadata "authorization: Bearer <jwt>") or its principal is unknown or disabled; the stream ends with gRPC UNAUTHENTICATED.' },
  XDS_REQUEST_INVALID: { httpStatus: 400, summary: 'An xDS discovery request was malformed, too large, named too many resources or an unknown type URL; the message names what was wrong.' },
  XDS_STREAM_LIMIT: { httpStatus: 503, summary: 'The xDS server already serves its maximum number of streams (xds.maxStreams); the stream ends with gRPC RESOURCE_EXHAUSTED and the client retries.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorOptions {
  readonly cause?: unknown;
  /** Machine-readable extra facts (e.g. the list of invalid fields). */
  readonly details?: unknown;
}

/** An error with a stable code from {@link ERROR_CODES}. */
export class StrataError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StrataError';
    this.code = code;
    this.httpStatus = ERROR_CODES[code].httpStatus;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isStrataError(err: unknown, code?: ErrorCode): err is StrataError {
  return err instanceof StrataError && (code === undefined || err.code === code);
}
