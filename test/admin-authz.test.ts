/**
 * The authorization matrix (issue 4): every admin route × {operator, owner, other tenant, bad
 * token, no token}. Rules (src/server/admin-auth.ts): no or unknown token → 401 with
 * `WWW-Authenticate: Bearer`; tenant routes with another tenant's token → 403; operator routes with
 * a tenant token → 403; the operator may act on any tenant. A refused request changes nothing.
 * Each allowed mutation acts on resources made for that one cell, so cells do not interfere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api, OPERATOR, startServe, tempDataDir, wagiText, type Serve } from './support/serve.js';

type Who = 'operator' | 'owner' | 'other' | 'bad' | 'none';
const WHO: Who[] = ['operator', 'owner', 'other', 'bad', 'none'];

let server: Serve;
let op: Api;
let wasm: Uint8Array;
const api: Partial<Record<Who, Api>> = {};
let cell = 0;

beforeAll(async () => {
  wasm = await wagiText('ok\n');
  server = await startServe(tempDataDir());
  op = new Api(server.admin, OPERATOR);
  api.operator = op;
  api.owner = new Api(server.admin, await op.createTenant('alice'));
  api.other = new Api(server.admin, await op.createTenant('bob'));
  api.bad = new Api(server.admin, 'isola_' + 'A'.repeat(43));
  api.none = new Api(server.admin, null);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

/** A function of alice's, fresh for one cell, with `deploys` deployments (each of a new version). */
async function freshFunction(deploys: number): Promise<string> {
  const name = `f${++cell}`;
  expect((await op.upload('alice', name, wasm)).status).toBe(201);
  for (let i = 0; i < deploys; i++) {
    if (i > 0) expect((await op.upload('alice', name, wasm)).status).toBe(201);
    expect((await op.deploy('alice', name, { pool: { min_warm: 0 } })).status).toBe(201);
  }
  return name;
}

interface Route {
  method: string;
  /** Builds the path (and creates what the cell needs). */
  path: () => Promise<string>;
  body?: () => unknown;
  /** Who may: 'public' (anyone), 'any' (any valid token), 'operator', 'tenant' (owner or operator). */
  access: 'public' | 'any' | 'operator' | 'tenant';
  /** Success status. */
  ok: number;
}

const fn = (deploys = 0) => async () => `/v1/tenants/alice/functions/${await freshFunction(deploys)}`;
const ROUTES: Record<string, Route> = {
  'GET /v1/health': { method: 'GET', path: async () => '/v1/health', access: 'public', ok: 200 },
  'GET /v1/whoami': { method: 'GET', path: async () => '/v1/whoami', access: 'any', ok: 200 },
  'POST /v1/tenants': { method: 'POST', path: async () => '/v1/tenants', body: () => ({ name: `t${++cell}` }), access: 'operator', ok: 201 },
  'GET /v1/tenants': { method: 'GET', path: async () => '/v1/tenants', access: 'operator', ok: 200 },
  'DELETE /v1/tenants/:tenant': {
    method: 'DELETE', access: 'operator', ok: 200,
    path: async () => {
      const name = `victim${++cell}`;
      await op.createTenant(name);
      return `/v1/tenants/${name}`;
    },
  },
  'GET /v1/audit': { method: 'GET', path: async () => '/v1/audit', access: 'operator', ok: 200 },
  'GET /v1/tenants/:tenant': { method: 'GET', path: async () => '/v1/tenants/alice', access: 'tenant', ok: 200 },
  'POST /v1/tenants/:tenant/tokens': { method: 'POST', path: async () => '/v1/tenants/alice/tokens', access: 'tenant', ok: 201 },
  'GET /v1/tenants/:tenant/audit': { method: 'GET', path: async () => '/v1/tenants/alice/audit', access: 'tenant', ok: 200 },
  'GET /v1/tenants/:tenant/functions': { method: 'GET', path: async () => '/v1/tenants/alice/functions', access: 'tenant', ok: 200 },
  'GET /v1/tenants/:tenant/functions/:name': { method: 'GET', path: fn(), access: 'tenant', ok: 200 },
  'DELETE /v1/tenants/:tenant/functions/:name': { method: 'DELETE', path: fn(1), access: 'tenant', ok: 200 },
  'POST /v1/tenants/:tenant/functions/:name/versions': { method: 'POST', path: async () => `${await fn()()}/versions`, body: () => wasm, access: 'tenant', ok: 201 },
  'GET /v1/tenants/:tenant/functions/:name/versions': { method: 'GET', path: async () => `${await fn()()}/versions`, access: 'tenant', ok: 200 },
  'GET /v1/tenants/:tenant/functions/:name/versions/:version': { method: 'GET', path: async () => `${await fn()()}/versions/1`, access: 'tenant', ok: 200 },
  'POST /v1/tenants/:tenant/functions/:name/deployments': { method: 'POST', path: async () => `${await fn()()}/deployments`, body: () => ({ pool: { min_warm: 0 } }), access: 'tenant', ok: 201 },
  'GET /v1/tenants/:tenant/functions/:name/deployments': { method: 'GET', path: async () => `${await fn(1)()}/deployments`, access: 'tenant', ok: 200 },
  'POST /v1/tenants/:tenant/functions/:name/rollback': { method: 'POST', path: async () => `${await fn(2)()}/rollback`, access: 'tenant', ok: 201 },
};

function expected(route: Route, who: Who): number {
  if (route.access === 'public') return route.ok;
  if (who === 'bad' || who === 'none') return 401;
  if (route.access === 'any' || who === 'operator') return route.ok;
  if (route.access === 'operator') return 403;
  return who === 'owner' ? route.ok : 403;
}

describe('authorization matrix', () => {
  for (const [name, route] of Object.entries(ROUTES)) {
    for (const who of WHO) {
      const want = expected(route, who);
      it(`${name} as ${who} → ${want}`, async () => {
        const path = await route.path();
        const auditBefore = (await op.req('GET', '/v1/audit?limit=1')).json.entries[0]?.id;
        const r = await api[who]!.req(route.method, path, route.body?.());
        expect(r.status, JSON.stringify(r.json)).toBe(want);
        if (want === 401) {
          expect(r.json.error.code).toBe('ERR_UNAUTHORIZED');
          expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
        }
        if (want === 403) expect(r.json.error.code).toBe('ERR_FORBIDDEN');
        if (want === 401 || want === 403) {
          // Refused: nothing was written (the audit log records every change).
          expect((await op.req('GET', '/v1/audit?limit=1')).json.entries[0]?.id).toBe(auditBefore);
        }
      });
    }
  }

  it('gives 403, not 404, for a tenant that does not exist (tokens cannot probe names)', async () => {
    const r = await api.owner!.req('GET', '/v1/tenants/nobody/functions');
    expect(r.status).toBe(403);
    expect((await op.req('GET', '/v1/tenants/nobody/functions')).status).toBe(404);
  });

  it('rejects a malformed Authorization header with 401', async () => {
    const r = await api.none!.req('GET', '/v1/whoami', undefined, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(r.status).toBe(401);
    expect(r.json.error.message).toMatch(/Bearer <token>/);
  });

  it('answers an unknown route with 404 ERR_NOT_FOUND in the JSON error shape', async () => {
    const r = await op.req('GET', '/v2/nothing');
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ error: { code: 'ERR_NOT_FOUND' } });
  });

  it('stops accepting a deleted tenant\'s tokens', async () => {
    const token = await op.createTenant('gone');
    const gone = new Api(server.admin, token);
    expect((await gone.req('GET', '/v1/whoami')).status).toBe(200);
    expect((await op.req('DELETE', '/v1/tenants/gone')).status).toBe(200);
    expect((await gone.req('GET', '/v1/whoami')).status).toBe(401);
  });
});
