/**
 * The test IdP `oidc-provider` ships no types (and @types/oidc-provider lags
 * its major versions); the tests use only this much of it.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
  }
}
