/**
 * The admin API (Hono on its own node:http listener, default 127.0.0.1:8788), versioned under
 * `/v1`. Every route and its rules are documented in docs/admin-api.md. Errors are JSON
 * `{"error":{"code","message"}}` with a stable `ERR_*` code (and `hint` when there is one).
 *
 * Uploads bypass Hono's body handling: the handler reads node's IncomingMessage directly so that the
 * body is streamed into the artifact store (admin-upload.ts), and a declared or streamed size over
 * `server.max_upload` is answered with 413 and `Connection: close` before the rest is read. A
 * request with `Expect: 100-continue` and an over-size `Content-Length` is refused before the
 * client sends the body.
 */
import type { Server } from 'node:http';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { GuestAbi } from '../config/types.js';
import { IsolaError, toIsolaError } from '../errors.js';
import type { ArtifactStore, MetadataStore } from '../store/types.js';
import type { Logger } from '../telemetry/log.js';
import { actorOf, authenticate, operatorOnly, tenantOrOperator, type AdminEnv } from './admin-auth.js';
import { deploymentKey, type ControlPlane } from './admin-control.js';
import { auditView, deploymentView, DEPLOY_KEYS, functionView, isObject, onlyKeys, tenantLimits, tenantView, versionView } from './admin-settings.js';
import { pumpUpload } from './admin-upload.js';
import { handleExpectContinue, listen } from './listen.js';
import { mountOps, streamTail, type OpsOptions } from './ops.js';
import { lingerAfterResponse } from './linger.js';

/** Largest JSON body the admin API reads, bytes. */
export const MAX_JSON_BODY = 1024 * 1024;
/** Content types accepted for an upload. */
const WASM_TYPES = ['application/wasm', 'application/octet-stream'];
const UPLOAD_PATH_RE = /^\/v1\/tenants\/[^/]+\/functions\/[^/]+\/versions\/?(\?|$)/;

export interface AdminOptions {
  control: ControlPlane;
  store: MetadataStore;
  artifacts: ArtifactStore;
  log: Logger;
  operatorToken: string;
  baseDomain: string;
  /** `server.max_upload`, bytes. */
  maxUploadBytes: number;
  /** `[server.tenant_limits]`. */
  tenantLimits: import('../config/types.js').TenantLimits;
  /** /healthz, /readyz, /metrics (operator token) and the tail route, when given (ops.ts). */
  ops?: OpsOptions;
}

type Env = AdminEnv & { Bindings: HttpBindings };

function errorBody(e: IsolaError): { error: Record<string, unknown> } {
  return { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(e.details ? { details: e.details } : {}) } };
}

async function readJson(c: Context<Env>): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new IsolaError('ERR_BAD_REQUEST', `the body is not valid JSON: ${(err as Error).message}`, { status: 400, user: true });
  }
  if (!isObject(body)) throw new IsolaError('ERR_BAD_REQUEST', 'the body must be a JSON object', { status: 400, user: true });
  return body;
}

const tooLarge = (max: number): IsolaError =>
  new IsolaError('ERR_UPLOAD_TOO_LARGE', `the upload is over the ${max}-byte limit (server.max_upload)`, { status: 413, user: true, hint: 'shrink the module (e.g. wasm-opt -Os), or ask the operator to raise server.max_upload' });

/** Builds the admin Hono app. */
export function createAdminApp(o: AdminOptions): Hono<Env> {
  const app = new Hono<Env>();
  const { control, store } = o;
  const json = bodyLimit({
    maxSize: MAX_JSON_BODY,
    onError: () => {
      throw new IsolaError('ERR_BAD_REQUEST', `JSON bodies are limited to ${MAX_JSON_BODY} bytes`, { status: 413, user: true });
    },
  });

  app.onError((err, c) => {
    const e = toIsolaError(err);
    if (!e.user || e.status >= 500) o.log.error({ err: e.message, code: e.code, stack: err instanceof Error ? err.stack : undefined }, 'admin request failed');
    const headers: Record<string, string> = {};
    if (e.status === 401) headers['www-authenticate'] = 'Bearer realm="isola"';
    // An unread request body (e.g. an upload refused before it was read) is not drained: close instead.
    if (e.status === 413 || !c.env.incoming.complete) {
      headers.connection = 'close';
      lingerAfterResponse(c.env.outgoing); // so the client reads this answer before the close
    }
    return c.json(errorBody(e), e.status as ContentfulStatusCode, headers);
  });
  app.notFound((c) => c.json(errorBody(new IsolaError('ERR_NOT_FOUND', `no admin route ${c.req.method} ${c.req.path}`, { status: 404, user: true, hint: 'the routes are listed in docs/admin-api.md' })), 404));

  app.get('/v1/health', (c) => c.json({ ok: true }));
  if (o.ops) {
    const auth = authenticate(store, o.operatorToken);
    mountOps(app, o.ops, (c, next) => auth(c, async () => {
      await operatorOnly(c, next);
    }));
  }

  const v1 = new Hono<Env>();
  v1.use('*', authenticate(store, o.operatorToken));

  v1.get('/whoami', (c) => {
    const p = c.get('principal');
    return c.json(p.role === 'operator' ? { role: 'operator' } : { role: 'tenant', tenant: p.tenant, default_host: `${p.tenant}.${o.baseDomain}` });
  });

  // ---- operator ----
  v1.post('/tenants', operatorOnly, json, async (c) => {
    const body = await readJson(c);
    onlyKeys(body, ['name', 'limits'], 'a tenant');
    const limits = tenantLimits(body.limits, o.tenantLimits);
    const { tenant, token } = await control.createTenant(body.name as string, limits, actorOf(c.get('principal')));
    return c.json({ tenant: tenantView(tenant, o.baseDomain), token }, 201);
  });
  v1.get('/tenants', operatorOnly, async (c) => c.json({ tenants: (await store.listTenants()).map((t) => tenantView(t, o.baseDomain)) }));
  v1.delete('/tenants/:tenant', operatorOnly, async (c) => {
    await control.deleteTenant(c.req.param('tenant'), actorOf(c.get('principal')));
    return c.json({ deleted: c.req.param('tenant') });
  });
  v1.get('/audit', operatorOnly, async (c) => c.json({ entries: (await store.auditLog({ limit: limitParam(c.req.query('limit')) })).map(auditView) }));

  // ---- a tenant (its owner or the operator) ----
  v1.get('/tenants/:tenant', tenantOrOperator, async (c) => c.json({ tenant: tenantView(await control.tenant(c.req.param('tenant')), o.baseDomain) }));
  v1.post('/tenants/:tenant/tokens', tenantOrOperator, async (c) => {
    const token = await control.createToken(c.req.param('tenant'), actorOf(c.get('principal')));
    return c.json({ token }, 201);
  });
  v1.get('/tenants/:tenant/audit', tenantOrOperator, async (c) => {
    const tenant = (await control.tenant(c.req.param('tenant'))).name;
    return c.json({ entries: (await store.auditLog({ tenant, limit: limitParam(c.req.query('limit')) })).map(auditView) });
  });
  v1.get('/tenants/:tenant/functions', tenantOrOperator, async (c) => {
    const tenant = (await control.tenant(c.req.param('tenant'))).name;
    return c.json({ functions: (await store.listFunctions(tenant)).map(functionView) });
  });
  v1.get('/tenants/:tenant/functions/:name', tenantOrOperator, async (c) => {
    const { tenant, name } = c.req.param();
    await control.tenant(tenant);
    const f = await store.getFunction(tenant, name);
    if (!f) throw new IsolaError('ERR_FUNCTION_NOT_FOUND', `no function named "${name}"`, { status: 404, user: true });
    return c.json({ function: functionView(f) });
  });
  v1.delete('/tenants/:tenant/functions/:name', tenantOrOperator, async (c) => {
    const { tenant, name } = c.req.param();
    await control.tenant(tenant);
    await control.deleteFunction(tenant, name, actorOf(c.get('principal')));
    return c.json({ deleted: name });
  });
  v1.post('/tenants/:tenant/functions/:name/versions', tenantOrOperator, async (c) => {
    const { tenant, name } = c.req.param();
    const req = c.env.incoming;
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (!WASM_TYPES.includes(type)) {
      throw new IsolaError('ERR_UPLOAD_CONTENT_TYPE', `expected Content-Type: application/wasm, got ${type === '' ? 'none' : type}`, { status: 415, user: true, hint: 'send the .wasm bytes as the body with Content-Type: application/wasm' });
    }
    const abi = c.req.query('abi') ?? null;
    if (abi !== null && abi !== 'wasi-http' && abi !== 'wagi') {
      throw new IsolaError('ERR_BAD_REQUEST', `abi must be "wasi-http" or "wagi" (or left out to detect it), got "${abi}"`, { status: 400, user: true });
    }
    const message = c.req.query('message') ?? null;
    if (message !== null && message.length > 1000) throw new IsolaError('ERR_BAD_REQUEST', 'message is limited to 1000 characters', { status: 400, user: true });
    const declared = req.headers['content-length'] === undefined ? null : Number(req.headers['content-length']);
    if (declared !== null && declared > o.maxUploadBytes) throw tooLarge(o.maxUploadBytes);
    await control.tenant(tenant);
    const upload = await o.artifacts.begin();
    let result;
    try {
      result = await pumpUpload(req, upload, o.maxUploadBytes);
    } catch (err) {
      await upload.abort();
      throw err;
    }
    if (result !== 'complete') {
      await upload.abort();
      if (result === 'too-large') throw tooLarge(o.maxUploadBytes);
      throw new IsolaError('ERR_BAD_REQUEST', 'the client closed the connection before the upload ended', { status: 400, user: true });
    }
    const version = await control.addVersion(tenant, name, upload, { abi: abi as GuestAbi | null, message }, actorOf(c.get('principal')));
    return c.json({ version: versionView(version) }, 201);
  });
  v1.get('/tenants/:tenant/functions/:name/versions', tenantOrOperator, async (c) => {
    const { tenant, name } = c.req.param();
    await control.tenant(tenant);
    const f = await store.getFunction(tenant, name);
    if (!f) throw new IsolaError('ERR_FUNCTION_NOT_FOUND', `no function named "${name}"`, { status: 404, user: true });
    return c.json({ versions: (await store.listVersions(tenant, name)).map(versionView), live_version: f.live?.version ?? null });
  });
  v1.get('/tenants/:tenant/functions/:name/versions/:version', tenantOrOperator, async (c) => {
    const { tenant, name, version } = c.req.param();
    await control.tenant(tenant);
    const n = Number(version);
    const v = Number.isSafeInteger(n) && n > 0 ? await store.getVersion(tenant, name, n) : null;
    if (!v) throw new IsolaError('ERR_VERSION_NOT_FOUND', `function "${name}" has no version ${version}`, { status: 404, user: true });
    return c.json({ version: versionView(v) });
  });
  v1.post('/tenants/:tenant/functions/:name/deployments', tenantOrOperator, json, async (c) => {
    const { tenant, name } = c.req.param();
    const body = await readJson(c);
    onlyKeys(body, DEPLOY_KEYS, 'a deployment');
    const d = await control.deploy(tenant, name, body, actorOf(c.get('principal')));
    return c.json({ deployment: deploymentView(d) }, 201);
  });
  v1.get('/tenants/:tenant/functions/:name/deployments', tenantOrOperator, async (c) => {
    const { tenant, name } = c.req.param();
    await control.tenant(tenant);
    if (!(await store.getFunction(tenant, name))) throw new IsolaError('ERR_FUNCTION_NOT_FOUND', `no function named "${name}"`, { status: 404, user: true });
    return c.json({ deployments: (await store.listDeployments(tenant, name)).map(deploymentView) });
  });
  const ops = o.ops;
  if (ops) {
    v1.get('/tenants/:tenant/functions/:name/logs', tenantOrOperator, async (c) => {
      const { tenant, name } = c.req.param();
      await control.tenant(tenant);
      if (!(await store.getFunction(tenant, name))) throw new IsolaError('ERR_FUNCTION_NOT_FOUND', `no function named "${name}"`, { status: 404, user: true });
      return streamTail(c.env.outgoing, ops.tail, deploymentKey(tenant, name));
    });
  }
  v1.post('/tenants/:tenant/functions/:name/rollback', tenantOrOperator, async (c) => {
    const { tenant, name } = c.req.param();
    const d = await control.rollback(tenant, name, actorOf(c.get('principal')));
    return c.json({ deployment: deploymentView(d) }, 201);
  });

  app.route('/v1', v1);
  return app;
}

function limitParam(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new IsolaError('ERR_BAD_REQUEST', 'limit must be a positive integer', { status: 400, user: true });
  return n;
}

export interface AdminServer {
  server: Server;
  /** e.g. http://127.0.0.1:8788 */
  url: string;
  port: number;
  /** Stops accepting and closes every connection once in-flight requests end (or after `drainMs`). */
  close(drainMs: number): Promise<void>;
}

/** Starts the admin listener. Rejects (IsolaError, user) when the address is taken. */
export async function startAdmin(options: AdminOptions & { host: string; port: number }): Promise<AdminServer> {
  const app = createAdminApp(options);
  const server = createAdaptorServer({ fetch: app.fetch, autoCleanupIncoming: false, overrideGlobalObjects: false }) as Server;
  handleExpectContinue(server, (req, res) => {
    const declared = Number(req.headers['content-length']);
    if (!(req.method === 'POST' && UPLOAD_PATH_RE.test(req.url ?? '') && Number.isFinite(declared) && declared > options.maxUploadBytes)) return false;
    const body = JSON.stringify(errorBody(tooLarge(options.maxUploadBytes)));
    res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
    return true;
  });
  const { url, port } = await listen(server, options.host, options.port, 'admin');
  return {
    server,
    url,
    port,
    close: async (drainMs) => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), drainMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
