/**
 * Who is calling the admin API. A request carries `Authorization: Bearer <token>`; the token is
 * either the operator's (from `ISOLA_OPERATOR_TOKEN` or `server.operator_token`, compared in
 * constant time) or a tenant's (looked up by its sha256; only hashes are stored).
 *
 * Rules (the authorization matrix in test/admin-authz.test.ts checks every route against them):
 * - no token, or a token nobody has → 401 ERR_UNAUTHORIZED (with `WWW-Authenticate: Bearer`);
 * - operator-only routes (tenants, the global audit log) with a tenant token → 403 ERR_FORBIDDEN;
 * - `/v1/tenants/:tenant/…` with another tenant's token → 403 ERR_FORBIDDEN, whether or not that
 *   tenant exists (so tokens cannot probe for tenant names); the operator may act on any tenant.
 */
import type { MiddlewareHandler } from 'hono';
import { IsolaError } from '../errors.js';
import { hashToken, tokenMatches } from '../store/tokens.js';
import type { Actor, MetadataStore } from '../store/types.js';

/** The caller, once authenticated. */
export type Principal = { role: 'operator' } | { role: 'tenant'; tenant: string };

/** Hono variables the admin app sets. */
export interface AdminEnv {
  Variables: { principal: Principal };
}

/** The audit log's name for a principal. */
export function actorOf(p: Principal): Actor {
  return p.role === 'operator' ? 'operator' : `tenant:${p.tenant}`;
}

const unauthorized = (message: string): IsolaError =>
  new IsolaError('ERR_UNAUTHORIZED', message, { status: 401, user: true, hint: 'send Authorization: Bearer <token> (the CLI reads ISOLA_TOKEN or --token)' });

/** Resolves the bearer token to a Principal, or throws 401. */
export function authenticate(store: MetadataStore, operatorToken: string): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (header === undefined) throw unauthorized('missing bearer token');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw unauthorized('the Authorization header must be "Bearer <token>"');
    const token = m[1]!;
    if (tokenMatches(token, operatorToken)) c.set('principal', { role: 'operator' });
    else {
      const tenant = await store.tenantForToken(hashToken(token));
      if (tenant === null) throw unauthorized('the token is not valid (it may have belonged to a deleted tenant)');
      c.set('principal', { role: 'tenant', tenant });
    }
    await next();
  };
}

/** Lets only the operator through (403 for tenants). */
export const operatorOnly: MiddlewareHandler<AdminEnv> = async (c, next) => {
  if (c.get('principal').role !== 'operator') {
    throw new IsolaError('ERR_FORBIDDEN', 'only the operator may do this', { status: 403, user: true });
  }
  await next();
};

/** Lets through the operator and the tenant named by the `:tenant` path parameter (403 for others). */
export const tenantOrOperator: MiddlewareHandler<AdminEnv> = async (c, next) => {
  const p = c.get('principal');
  if (p.role === 'tenant' && p.tenant !== c.req.param('tenant')) {
    throw new IsolaError('ERR_FORBIDDEN', 'your token does not give access to this tenant', { status: 403, user: true });
  }
  await next();
};
