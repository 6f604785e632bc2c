/** DC/OS-compatible login and key publication at /acs/api/v1/auth. */
import { Type } from 'typebox';
import type { ApiContext, ApiInstance } from '../context.ts';
import { PUBLIC } from '../permissions.ts';

const LoginBody = Type.Object(
  {
    uid: Type.String({ minLength: 1, maxLength: 256 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);

export function authRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.post('/acs/api/v1/auth/login', {
    config: { permission: PUBLIC },
    schema: {
      summary: 'Log in with uid and password; returns an auth token (JWT)',
      body: LoginBody,
      response: { 200: Type.Object({ token: Type.String() }) },
    },
  }, async (request) => {
    const principal = await ctx.iam.login(request.body.uid, request.body.password);
    const { token } = await ctx.tokens.issue(principal.uid);
    return { token };
  });

  app.get('/acs/api/v1/auth/jwks', {
    config: { permission: PUBLIC },
    schema: { summary: 'Public keys that verify auth tokens (RFC 7517)' },
  }, async () => ctx.tokens.jwks());
}
