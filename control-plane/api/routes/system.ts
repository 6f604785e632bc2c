/** Process-level routes: health, metrics, OpenAPI, version, leader. */
import { Type } from 'typebox';
import type { ApiContext, ApiInstance } from '../context.ts';
import { PUBLIC, requires } from '../permissions.ts';
import { LeaderInfo } from '../../model/schemas.ts';

export const STRATA_VERSION = '0.1.0';

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  role: Type.Union([Type.Literal('leader'), Type.Literal('standby'), Type.Literal('agent')]),
  version: Type.String(),
  store: Type.Object({ backend: Type.String(), status: Type.String(), detail: Type.Optional(Type.String()) }),
});

export function systemRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.get('/health', {
    config: { permission: PUBLIC },
    schema: { summary: 'Health of this process and its store', response: { 200: Health, 503: Health } },
  }, async (_request, reply) => {
    const store = ctx.store.health();
    const status = store.status === 'ok' ? 'ok' : 'degraded';
    return reply.code(status === 'ok' ? 200 : 503).send({ status, role: ctx.role(), version: STRATA_VERSION, store });
  });

  app.get('/metrics', {
    config: { permission: requires('dcos:adminrouter:ops:metrics', 'read') },
    schema: { summary: 'Prometheus metrics (text exposition format)' },
  }, async (_request, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.get('/openapi.json', {
    config: { permission: PUBLIC },
    schema: { summary: 'The OpenAPI document of this API', hide: true },
  }, async () => app.swagger());

  app.get('/dcos-metadata/dcos-version.json', {
    config: { permission: PUBLIC },
    schema: {
      summary: 'Version metadata, as DC/OS serves it',
      response: { 200: Type.Object({ version: Type.String(), 'dcos-variant': Type.String(), 'dcos-image-commit': Type.String(), 'bootstrap-id': Type.String() }) },
    },
  }, async () => ({ version: STRATA_VERSION, 'dcos-variant': 'strata', 'dcos-image-commit': 'unknown', 'bootstrap-id': 'unknown' }));

  app.get('/v1/leader', {
    config: { permission: requires('dcos:adminrouter:ops:mesos', 'read') },
    schema: {
      summary: 'The leading master: who it is, where its API listens, its fencing token',
      response: { 200: LeaderInfo },
    },
  }, async () => ctx.leader());
}
