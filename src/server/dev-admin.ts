/**
 * `isola dev`'s admin listener (default 127.0.0.1:8788): the operational routes of ./ops.ts
 * (/healthz, /readyz, /metrics) and live logs for `isola tail`, without authentication — `isola dev`
 * has one implicit tenant and listens on loopback by default.
 *
 * Routes:
 * - `GET /v1/whoami` → `{"role":"dev","tenant":"dev"}` (what `isola tail` asks when given no tenant);
 * - `GET /v1/tenants/:tenant/functions/:name/logs` → SSE stream of the function's records; the
 *   tenant segment is not checked (any value works), 404 ERR_FUNCTION_NOT_FOUND for a name that
 *   is not served.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { IsolaError } from '../errors.js';
import type { Deployments } from './deployments.js';
import { mountOps, streamTail, type OpsOptions } from './ops.js';

/** The implicit tenant name `isola dev` reports. */
export const DEV_TENANT = 'dev';

/** Builds the dev admin app. */
export function createDevAdminApp(deployments: Deployments, ops: OpsOptions): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  const notFound = (message: string, hint?: string) => ({ error: { code: 'ERR_NOT_FOUND', message, ...(hint ? { hint } : {}) } });
  mountOps(app, ops);
  app.get('/v1/whoami', (c) => c.json({ role: 'dev', tenant: DEV_TENANT }));
  app.get('/v1/tenants/:tenant/functions/:name/logs', (c) => {
    const name = c.req.param('name');
    if (!deployments.get(name)) {
      const known = deployments.list().map((d) => d.name).sort();
      return c.json({ error: { code: 'ERR_FUNCTION_NOT_FOUND', message: `no function named "${name}"`, hint: `isola dev serves: ${known.join(', ') || 'nothing'}` } }, 404);
    }
    return streamTail(c.env.outgoing, ops.tail, name);
  });
  app.notFound((c) => c.json(notFound(`no admin route ${c.req.method} ${c.req.path}`, 'isola dev\'s admin listener serves /healthz, /readyz, /metrics and /v1/tenants/dev/functions/NAME/logs'), 404));
  return app;
}

export interface DevAdminServer {
  url: string;
  port: number;
  /** Ends tail streams and closes the listener. */
  close(): Promise<void>;
}

/**
 * Starts the dev admin listener. Rejects with IsolaError (user) when the address is taken; with
 * `fallback`, a taken port is replaced by a free one instead (the default port when the user did
 * not ask for it).
 */
export async function startDevAdmin(o: { host: string; port: number; fallback: boolean; deployments: Deployments; ops: OpsOptions }): Promise<DevAdminServer> {
  const app = createDevAdminApp(o.deployments, o.ops);
  const listen = (port: number): Promise<Server> => {
    const server = createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: false }) as Server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, o.host, () => resolve(server));
    });
  };
  let server: Server;
  try {
    server = await listen(o.port);
  } catch (err) {
    if (!o.fallback || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
      throw new IsolaError('ERR_USAGE', `cannot listen on ${o.host}:${o.port} (admin): ${(err as Error).message}`, { user: true, hint: 'pass --admin-port 0 for a free port', cause: err });
    }
    server = await listen(0);
  }
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${hostPart}:${addr.port}`,
    port: addr.port,
    close: async () => {
      o.ops.tail.closeAll();
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
    },
  };
}
