/**
 * The IAM API at /acs/api/v1 with DC/OS Bouncer's paths and JSON: users and
 * service accounts (`/users`), groups and their members (`/groups`), ACLs and
 * grants (`/acls`), and the permission query
 * `GET /acls/{rid}/users/{uid}/{action}` → `{allowed}`.
 *
 * Permissions: reading needs `read` on `dcos:adminrouter:acs`, changing needs
 * `full` on it (DC/OS: every IAM endpoint but `/auth` is the superuser's;
 * whoever may change the IAM can make themselves superuser, so treat
 * `full` on it as such). A read-only auditor role is Strata's addition.
 *
 * A rid in a path is URL-encoded (`dcos:service:marathon:marathon:services:%2Fdev`);
 * the double encoding the DC/OS docs show for curl (`%252F`) is accepted too.
 */
import { Gauge } from 'prom-client';
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { ACTIONS, PRINCIPAL_ID_PATTERN, PublicKeyPem, RID_PATTERN, type Action, type Group, type Principal } from '../../model/schemas.ts';
import { allows } from '../../../security/iam.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';

/** DC/OS's Admin Router resource for the IAM API. */
export const IAM_RID = 'dcos:adminrouter:acs';
const READ = requires(IAM_RID, 'read');
const WRITE = requires(IAM_RID, 'full');
const BASE = '/acs/api/v1';

const Uid = Type.String({ pattern: PRINCIPAL_ID_PATTERN });
const ActionName = Type.Enum(ACTIONS);
const UidParams = Type.Object({ uid: Uid });
const GidParams = Type.Object({ gid: Uid });
const RidParams = Type.Object({ rid: Type.String({ minLength: 1, maxLength: 2048 }) });
const Description = Type.String({ maxLength: 1024 });

/** A rid from a path segment: fastify decoded it once; `%252F` arrives as `%2F` and is decoded again. */
export function ridFromPath(raw: string): string {
  let rid = raw;
  if (rid.includes('%')) {
    try {
      rid = decodeURIComponent(rid);
    } catch {
      throw new StrataError('API_BAD_REQUEST', `resource id ${JSON.stringify(raw)} is not validly URL-encoded`);
    }
  }
  if (!new RegExp(RID_PATTERN, 'u').test(rid) || rid.length > 512) {
    throw new StrataError('API_BAD_REQUEST', `resource id ${JSON.stringify(rid.slice(0, 120))} is invalid: expected dcos:<part>:<part>... such as dcos:service:marathon:marathon:services:/dev (no spaces)`);
  }
  return rid;
}

const userUrl = (uid: string): string => `${BASE}/users/${encodeURIComponent(uid)}`;
const groupUrl = (gid: string): string => `${BASE}/groups/${encodeURIComponent(gid)}`;
const aclUrl = (rid: string): string => `${BASE}/acls/${encodeURIComponent(rid)}`;

export function userView(p: Principal): Record<string, unknown> {
  return {
    uid: p.uid,
    url: userUrl(p.uid),
    description: p.description ?? '',
    is_remote: p.kind === 'user' && p.provider !== undefined,
    is_service: p.kind === 'service',
    provider_type: p.kind === 'user' && p.provider ? p.provider.type : 'internal',
    provider_id: p.kind === 'user' && p.provider ? p.provider.id : '',
    ...(p.kind === 'service' ? { public_key: p.publicKey } : {}),
    disabled: p.disabled ?? false,
  };
}

const groupView = (g: Group): Record<string, unknown> => ({ gid: g.gid, url: groupUrl(g.gid), description: g.description ?? '', provider_type: g.provider?.type ?? 'internal' });

const actionsView = (rid: string, who: string, actions: readonly Action[]): { name: Action; url: string }[] =>
  actions.map((name) => ({ name, url: `${aclUrl(rid)}/${who}/${name}` }));


export function iamRoutes(app: ApiInstance, ctx: ApiContext): void {
  const { iam } = ctx;
  new Gauge({
    name: 'strata_iam_principals',
    help: 'IAM principals, by kind (user, service)',
    labelNames: ['kind'],
    registers: [ctx.metrics.registry],
    collect() {
      const s = iam.stats();
      if (!s) return;
      this.set({ kind: 'user' }, s.users);
      this.set({ kind: 'service' }, s.serviceAccounts);
    },
  });
  new Gauge({ name: 'strata_iam_groups', help: 'IAM groups', registers: [ctx.metrics.registry], collect() { const s = iam.stats(); if (s) this.set(s.groups); } });
  new Gauge({
    name: 'strata_iam_revoked_tokens',
    help: 'Auth tokens revoked before their expiry and not yet expired (swept after exp)',
    registers: [ctx.metrics.registry],
    collect() {
      const s = iam.stats();
      if (s) this.set(s.revokedTokens);
    },
  });
  const descriptions = async (): Promise<Map<string, string>> => new Map((await iam.listAcls()).map((a) => [a.rid, a.description]));
  const mustPrincipal = async (uid: string): Promise<Principal> => {
    const p = (await iam.readPrincipal(uid))?.value;
    if (!p) throw new StrataError('RECORD_NOT_FOUND', `no user or service account ${JSON.stringify(uid)}`);
    return p;
  };
  const mustGroup = async (gid: string): Promise<Group> => {
    const g = (await iam.readGroup(gid))?.value;
    if (!g) throw new StrataError('RECORD_NOT_FOUND', `no group ${JSON.stringify(gid)}`);
    return g;
  };

  // Users and service accounts ------------------------------------------------

  app.get(`${BASE}/users`, {
    config: { permission: READ },
    schema: {
      summary: 'List users and service accounts (?type=user|service to narrow)',
      querystring: Type.Object({ type: Type.Optional(Type.Enum(['user', 'service'])) }, { additionalProperties: false }),
    },
  }, async (request) => {
    const wanted = request.query.type;
    const all = await iam.listPrincipals();
    return { array: all.filter((p) => wanted === undefined || p.kind === wanted).map(userView) };
  });

  app.get(`${BASE}/users/:uid`, { config: { permission: READ }, schema: { summary: 'One user or service account', params: UidParams } }, async (request) =>
    userView(await mustPrincipal(request.params.uid)),
  );

  app.put(`${BASE}/users/:uid`, {
    config: { permission: WRITE },
    schema: {
      summary: 'Create a user ({password}) or a service account ({public_key}: PEM SPKI, RSA >= 2048 bits or EC P-256)',
      params: UidParams,
      body: Type.Object(
        { description: Type.Optional(Description), password: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })), public_key: Type.Optional(PublicKeyPem) },
        { additionalProperties: false },
      ),
    },
  }, async (request, reply) => {
    const { uid } = request.params;
    const { description, password, public_key: publicKey } = request.body;
    if ((password === undefined) === (publicKey === undefined)) {
      throw new StrataError('API_BAD_REQUEST', 'give exactly one of "password" (a user) or "public_key" (a service account)', {
        details: [{ path: '/password', errors: ['exactly one of password and public_key is required'] }],
      });
    }
    if (password !== undefined) await iam.createUser(uid, { password, ...(description === undefined ? {} : { description }) });
    else await iam.createServiceAccount(uid, { publicKey: publicKey!, ...(description === undefined ? {} : { description }) });
    return reply.code(201).send();
  });

  app.patch(`${BASE}/users/:uid`, {
    config: { permission: WRITE },
    schema: {
      summary: 'Change a description, password, public key, or disable/enable (disabling revokes every token)',
      params: UidParams,
      body: Type.Object(
        {
          description: Type.Optional(Description),
          password: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
          public_key: Type.Optional(PublicKeyPem),
          disabled: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false, minProperties: 1 },
      ),
    },
  }, async (request, reply) => {
    const b = request.body;
    await iam.updatePrincipal(request.params.uid, {
      ...(b.description === undefined ? {} : { description: b.description }),
      ...(b.password === undefined ? {} : { password: b.password }),
      ...(b.public_key === undefined ? {} : { publicKey: b.public_key }),
      ...(b.disabled === undefined ? {} : { disabled: b.disabled }),
    });
    return reply.code(204).send();
  });

  app.delete(`${BASE}/users/:uid`, {
    config: { permission: WRITE },
    schema: { summary: 'Delete a user or service account; its tokens stop working at once', params: UidParams },
  }, async (request, reply) => {
    await iam.deletePrincipal(request.params.uid);
    return reply.code(204).send();
  });

  app.post(`${BASE}/users/:uid/revoke-tokens`, {
    config: { permission: WRITE },
    schema: { summary: 'Revoke every token issued to this principal so far (it may log in again)', params: UidParams },
  }, async (request, reply) => {
    await iam.revokeTokensOf(request.params.uid);
    return reply.code(204).send();
  });

  app.get(`${BASE}/users/:uid/groups`, { config: { permission: READ }, schema: { summary: 'The groups a principal belongs to', params: UidParams } }, async (request) => {
    const p = await mustPrincipal(request.params.uid);
    const groups = new Map((await iam.listGroups()).map((g) => [g.gid, g]));
    return {
      array: (p.groups ?? []).flatMap((gid) => {
        const g = groups.get(gid);
        return g ? [{ membershipurl: `${groupUrl(gid)}/users/${encodeURIComponent(p.uid)}`, group: groupView(g) }] : [];
      }),
    };
  });

  app.get(`${BASE}/users/:uid/permissions`, {
    config: { permission: READ },
    schema: { summary: 'A principal\'s permissions: granted directly, and through each group', params: UidParams },
  }, async (request) => {
    const p = await mustPrincipal(request.params.uid);
    const acls = await descriptions();
    const who = `users/${encodeURIComponent(p.uid)}`;
    const direct = p.permissions.map((x) => ({ rid: x.rid, url: aclUrl(x.rid), aclurl: aclUrl(x.rid), description: acls.get(x.rid) ?? '', actions: actionsView(x.rid, who, x.actions) }));
    const groups = [];
    for (const gid of p.groups ?? []) {
      const g = (await iam.readGroup(gid))?.value;
      for (const x of g?.permissions ?? []) {
        groups.push({ rid: x.rid, url: aclUrl(x.rid), aclurl: aclUrl(x.rid), description: acls.get(x.rid) ?? '', gid, groupurl: groupUrl(gid), actions: actionsView(x.rid, `groups/${encodeURIComponent(gid)}`, x.actions) });
      }
    }
    return { direct, groups };
  });

  // Groups ---------------------------------------------------------------------

  app.get(`${BASE}/groups`, { config: { permission: READ }, schema: { summary: 'List groups' } }, async () => ({ array: (await iam.listGroups()).map(groupView) }));

  app.get(`${BASE}/groups/:gid`, { config: { permission: READ }, schema: { summary: 'One group', params: GidParams } }, async (request) =>
    groupView(await mustGroup(request.params.gid)),
  );

  app.put(`${BASE}/groups/:gid`, {
    config: { permission: WRITE },
    schema: { summary: 'Create a group', params: GidParams, body: Type.Object({ description: Type.Optional(Description) }, { additionalProperties: false }) },
  }, async (request, reply) => {
    await iam.createGroup(request.params.gid, request.body.description);
    return reply.code(201).send();
  });

  app.patch(`${BASE}/groups/:gid`, {
    config: { permission: WRITE },
    schema: { summary: 'Change a group\'s description', params: GidParams, body: Type.Object({ description: Description }, { additionalProperties: false }) },
  }, async (request, reply) => {
    await iam.updateGroup(request.params.gid, request.body.description);
    return reply.code(204).send();
  });

  app.delete(`${BASE}/groups/:gid`, {
    config: { permission: WRITE },
    schema: { summary: 'Delete a group (its members leave it; its permissions go with it)', params: GidParams },
  }, async (request, reply) => {
    await iam.deleteGroup(request.params.gid);
    return reply.code(204).send();
  });

  app.get(`${BASE}/groups/:gid/users`, { config: { permission: READ }, schema: { summary: 'A group\'s members', params: GidParams } }, async (request) => {
    const g = await mustGroup(request.params.gid);
    return { array: (await iam.members(g.gid)).map((p) => ({ membershipurl: `${groupUrl(g.gid)}/users/${encodeURIComponent(p.uid)}`, user: userView(p) })) };
  });

  const MemberParams = Type.Object({ gid: Uid, uid: Uid });
  app.put(`${BASE}/groups/:gid/users/:uid`, {
    config: { permission: WRITE },
    schema: { summary: 'Add a member (it holds the group\'s permissions from now on)', params: MemberParams },
  }, async (request, reply) => {
    await iam.addMember(request.params.gid, request.params.uid);
    return reply.code(204).send();
  });

  app.delete(`${BASE}/groups/:gid/users/:uid`, {
    config: { permission: WRITE },
    schema: { summary: 'Remove a member', params: MemberParams },
  }, async (request, reply) => {
    await mustGroup(request.params.gid);
    await iam.removeMember(request.params.gid, request.params.uid);
    return reply.code(204).send();
  });

  app.get(`${BASE}/groups/:gid/permissions`, { config: { permission: READ }, schema: { summary: 'A group\'s permissions', params: GidParams } }, async (request) => {
    const g = await mustGroup(request.params.gid);
    const acls = await descriptions();
    const who = `groups/${encodeURIComponent(g.gid)}`;
    return { array: g.permissions.map((x) => ({ rid: x.rid, url: aclUrl(x.rid), aclurl: aclUrl(x.rid), description: acls.get(x.rid) ?? '', actions: actionsView(x.rid, who, x.actions) })) };
  });

  // ACLs -----------------------------------------------------------------------

  app.get(`${BASE}/acls`, { config: { permission: READ }, schema: { summary: 'List ACLs (resources permissions are granted on)' } }, async () => ({
    array: (await iam.listAcls()).map((a) => ({ rid: a.rid, url: aclUrl(a.rid), description: a.description })),
  }));

  app.get(`${BASE}/acls/:rid`, { config: { permission: READ }, schema: { summary: 'One ACL', params: RidParams } }, async (request) => {
    const rid = ridFromPath(request.params.rid);
    const acl = await iam.readAcl(rid);
    if (!acl) throw new StrataError('IAM_ACL_NOT_FOUND', `no ACL for ${rid}`);
    return { rid, url: aclUrl(rid), description: acl.description };
  });

  app.put(`${BASE}/acls/:rid`, {
    config: { permission: WRITE },
    schema: { summary: 'Create an ACL (409 if it exists: DC/OS scripts ignore that)', params: RidParams, body: Type.Object({ description: Description }, { additionalProperties: false }) },
  }, async (request, reply) => {
    await iam.createAcl(ridFromPath(request.params.rid), request.body.description);
    return reply.code(201).send();
  });

  app.patch(`${BASE}/acls/:rid`, {
    config: { permission: WRITE },
    schema: { summary: 'Change an ACL\'s description', params: RidParams, body: Type.Object({ description: Description }, { additionalProperties: false }) },
  }, async (request, reply) => {
    const rid = ridFromPath(request.params.rid);
    if (!(await iam.readAcl(rid))) throw new StrataError('IAM_ACL_NOT_FOUND', `no ACL for ${rid}`);
    await iam.updateAcl(rid, request.body.description);
    return reply.code(204).send();
  });

  app.delete(`${BASE}/acls/:rid`, {
    config: { permission: WRITE },
    schema: { summary: 'Delete an ACL and every grant on it', params: RidParams },
  }, async (request, reply) => {
    await iam.deleteAcl(ridFromPath(request.params.rid));
    return reply.code(204).send();
  });

  app.get(`${BASE}/acls/:rid/permissions`, { config: { permission: READ }, schema: { summary: 'Who holds what on this rid (directly granted)', params: RidParams } }, async (request) => {
    const rid = ridFromPath(request.params.rid);
    const [principals, groups] = await Promise.all([iam.listPrincipals(), iam.listGroups()]);
    const users = principals.flatMap((p) => {
      const x = p.permissions.find((q) => q.rid === rid);
      const who = `users/${encodeURIComponent(p.uid)}`;
      return x ? [{ uid: p.uid, userurl: userUrl(p.uid), description: p.description ?? '', actions: actionsView(rid, who, x.actions) }] : [];
    });
    const groupEntries = groups.flatMap((g) => {
      const x = g.permissions.find((q) => q.rid === rid);
      const who = `groups/${encodeURIComponent(g.gid)}`;
      return x ? [{ gid: g.gid, groupurl: groupUrl(g.gid), description: g.description ?? '', actions: actionsView(rid, who, x.actions) }] : [];
    });
    return { users, groups: groupEntries };
  });

  for (const kind of ['users', 'groups'] as const) {
    const idName = kind === 'users' ? 'uid' : 'gid';
    const Params = Type.Object({ rid: RidParams.properties.rid, [idName]: Uid } as { rid: typeof RidParams.properties.rid; uid: typeof Uid });
    const ActionParams = Type.Object({ rid: RidParams.properties.rid, [idName]: Uid, action: ActionName } as { rid: typeof RidParams.properties.rid; uid: typeof Uid; action: typeof ActionName });
    const idOf = (params: Record<string, string>): string => params[idName]!;
    const grantee = (id: string) => (kind === 'users' ? { uid: id } : { gid: id });
    const holder = async (id: string): Promise<{ permissions: readonly { rid: string; actions: readonly Action[] }[] }> => (kind === 'users' ? mustPrincipal(id) : mustGroup(id));

    app.get(`${BASE}/acls/:rid/${kind}/:${idName}`, {
      config: { permission: READ },
      schema: { summary: `The actions granted on this rid to one of the ${kind} (directly)`, params: Params },
    }, async (request) => {
      const rid = ridFromPath(request.params.rid);
      const id = idOf(request.params as Record<string, string>);
      const x = (await holder(id)).permissions.find((q) => q.rid === rid);
      return { actions: actionsView(rid, `${kind}/${encodeURIComponent(id)}`, x?.actions ?? []) };
    });

    app.get(`${BASE}/acls/:rid/${kind}/:${idName}/:action`, {
      config: { permission: READ },
      schema: {
        summary: kind === 'users'
          ? 'Is this user allowed the action on the rid? (superuser, groups and group-path inheritance included: the decision the API enforces)'
          : 'Does this group hold the action on the rid (or on a group path above it)?',
        params: ActionParams,
        response: { 200: Type.Object({ allowed: Type.Boolean() }) },
      },
    }, async (request) => {
      const rid = ridFromPath(request.params.rid);
      const id = idOf(request.params as Record<string, string>);
      if (kind === 'users') {
        await mustPrincipal(id);
        const effective = (await iam.getPrincipal(id))!;
        return { allowed: allows(effective, rid, request.params.action) };
      }
      const g = await mustGroup(id);
      return { allowed: allows({ uid: g.gid, kind: 'user', permissions: g.permissions }, rid, request.params.action) };
    });

    app.put(`${BASE}/acls/:rid/${kind}/:${idName}/:action`, {
      config: { permission: WRITE },
      schema: { summary: `Grant the action on the rid to one of the ${kind} (the ACL must exist)`, params: ActionParams },
    }, async (request, reply) => {
      await iam.grant(grantee(idOf(request.params as Record<string, string>)), ridFromPath(request.params.rid), request.params.action);
      return reply.code(204).send();
    });

    app.delete(`${BASE}/acls/:rid/${kind}/:${idName}/:action`, {
      config: { permission: WRITE },
      schema: { summary: `Take the action on the rid back from one of the ${kind}`, params: ActionParams },
    }, async (request, reply) => {
      const rid = ridFromPath(request.params.rid);
      const id = idOf(request.params as Record<string, string>);
      await holder(id);
      await iam.revoke(grantee(id), rid, request.params.action);
      return reply.code(204).send();
    });
  }
}
