/**
 * The edge listener: node:http via @hono/node-server, a Hono app whose one handler matches the
 * route table and streams the exchange through a sandbox. Bodies are never wrapped in web streams:
 * the handler reads node's IncomingMessage and writes node's ServerResponse directly (Hono's
 * `RESPONSE_ALREADY_SENT`), which keeps the hot path short and gives real backpressure.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { IsolaError, toIsolaError } from '../errors.js';
import type { RequestHead } from '../sandbox/protocol.js';
import { sendError } from '../sandbox/sandbox.js';
import type { Logger } from '../telemetry/log.js';
import { Scheduler } from '../scheduler/scheduler.js';
import type { Deployments } from './deployments.js';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export interface EdgeServer {
  server: Server;
  /** The bound address, e.g. http://127.0.0.1:8787 (IPv6 in brackets). */
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish for up to `drainMs`, then closes everything. */
  close(drainMs: number): Promise<void>;
}

/** Parses content-length / transfer-encoding into RequestHead.bodyLength (-1 unknown, 0 none). */
function bodyLength(req: IncomingMessage): number {
  if (req.headers['transfer-encoding'] !== undefined) return -1;
  const cl = req.headers['content-length'];
  if (cl === undefined) return 0;
  const n = Number(cl);
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

/** Builds the edge Hono app over the live deployments. */
export function createEdgeApp(deployments: Deployments, log: Logger, scheduler: Scheduler = defaultScheduler()): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  let inflight = 0;
  app.all('*', async (c) => {
    inflight++;
    try {
      await dispatch(c.env.incoming, c.env.outgoing, deployments, log, scheduler);
    } finally {
      inflight--;
    }
    return RESPONSE_ALREADY_SENT;
  });
  Object.defineProperty(app, 'inflight', { get: () => inflight });
  return app;
}

/** A scheduler with one run slot per core, no budgets, equal weights. */
export function defaultScheduler(): Scheduler {
  return new Scheduler({ slots: availableParallelism() });
}

async function dispatch(req: IncomingMessage, res: ServerResponse, deployments: Deployments, log: Logger, scheduler: Scheduler): Promise<void> {
  const started = performance.now();
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const host = req.headers.host ?? '';
  const match = path.startsWith('/') ? deployments.table.match(host, path) : null;
  if (!match) {
    sendError(res, 404, 'ERR_ROUTE_NOT_FOUND', `no route for ${host}${path}`, id);
    log.info({ req_id: id, method: req.method, path, status: 404 }, 'no route');
    return;
  }
  const d = match.target;
  const length = bodyLength(req);
  if (length > d.limits.maxRequestBodyBytes) {
    sendError(res, 413, 'ERR_REQUEST_BODY_TOO_LARGE', `request body of ${length} bytes is over the ${d.limits.maxRequestBodyBytes}-byte limit`, id, { connection: 'close' });
    log.info({ req_id: id, function: d.key, method: req.method, path, status: 413 }, 'request body too large');
    return;
  }
  const tenant = d.tenant ?? d.config.tenant ?? 'default';
  // Admission: the tenant's CPU budget (429 + Retry-After when in debt, or a wait when configured).
  try {
    const refill = scheduler.checkBudget(tenant);
    if (refill) await refill;
  } catch (err) {
    const e = toIsolaError(err);
    const retry = String((e.details?.retryAfter as number | undefined) ?? 1);
    sendError(res, e.status, e.code, e.message, id, { 'retry-after': retry });
    log.warn({ req_id: id, tenant, function: d.name, status: e.status, code: e.code }, 'over budget');
    return;
  }
  let sandbox = d.pool.tryAcquire();
  let waitedMs = 0;
  let cold = false;
  if (!sandbox) {
    // Slow path: wait in the function's queue; a client that gives up leaves the queue.
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once('close', onClose);
    try {
      ({ sandbox, waitedMs, cold } = await d.pool.acquire(gone.signal));
    } catch (err) {
      const e = toIsolaError(err);
      if (!res.headersSent && !res.destroyed) {
        sendError(res, e.status, e.code, e.message, id, e.status === 503 ? { 'retry-after': '1' } : undefined);
      }
      log.warn({ req_id: id, function: d.name, status: e.status, code: e.code, err: e.message }, 'no sandbox');
      return;
    } finally {
      res.off('close', onClose);
    }
  }
  if (res.destroyed || res.writableEnded) {
    // The client gave up while the sandbox was on its way: it goes straight back.
    d.pool.release(sandbox);
    return;
  }
  const sock = req.socket;
  const head: RequestHead = {
    id,
    method: req.method ?? 'GET',
    scheme: 'http',
    authority: host,
    pathWithQuery: target,
    rawHeaders: req.rawHeaders,
    httpVersion: req.httpVersion,
    remoteAddr: sock.remoteAddress ?? '',
    remotePort: sock.remotePort ?? 0,
    serverName: host.replace(/:\d+$/, '') || (sock.localAddress ?? ''),
    serverPort: sock.localPort ?? 0,
    routePrefix: match.route.prefix,
    route: match.route.source,
    bodyLength: length,
  };
  // A run slot, shared fairly between tenants (least recent CPU first).
  const slot = scheduler.enter(tenant);
  if (slot) {
    try {
      await slot;
    } catch (err) {
      d.pool.release(sandbox);
      const e = toIsolaError(err);
      sendError(res, e.status, e.code, e.message, id, { 'retry-after': '1' });
      return;
    }
  }
  const recycle = d.pool.recycleAfter(sandbox);
  const result = await sandbox.run(head, req, res, { timeoutMs: d.limits.timeoutMs, cpuMs: d.limits.cpuMs, maxRequestBodyBytes: d.limits.maxRequestBodyBytes }, recycle);
  d.pool.release(sandbox);
  scheduler.leave(tenant, result.cpuNs);
  const ms = Math.round((performance.now() - started) * 1000) / 1000;
  if (result.log) logGuestOutput(log, id, d.key, result.log);
  const entry = {
    req_id: id, tenant, function: d.key, method: head.method, path, status: result.status, outcome: result.outcome,
    ms, req_bytes: result.requestBytes, res_bytes: result.responseBytes, queue_ms: Math.round(waitedMs * 1000) / 1000, cold,
    cpu_ms: Math.round(result.cpuNs / 1000) / 1000,
    ...(result.fuel !== undefined ? { fuel: result.fuel } : {}),
  };
  if (result.outcome === 'ok') log.info(entry, 'request');
  else log.warn({ ...entry, err: result.message }, 'request failed');
}

function logGuestOutput(log: Logger, id: string, fn: string, out: { stdout: string; stderr: string; dropped: number }): void {
  for (const [stream, text] of [['stdout', out.stdout], ['stderr', out.stderr]] as const) {
    if (!text) continue;
    for (const line of text.split('\n')) if (line !== '') log.info({ req_id: id, function: fn, stream }, line);
  }
  if (out.dropped > 0) log.warn({ req_id: id, function: fn, dropped_bytes: out.dropped }, 'guest output over the per-request limit was dropped');
}

/** Starts the edge listener on host:port (0 = a free port). Rejects when the address is taken. */
export function startEdge(options: { host: string; port: number; deployments: Deployments; log: Logger; scheduler?: Scheduler }): Promise<EdgeServer> {
  const app = createEdgeApp(options.deployments, options.log, options.scheduler);
  const server = createAdaptorServer({ fetch: app.fetch, autoCleanupIncoming: false, overrideGlobalObjects: false }) as Server;
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new IsolaError('ERR_INTERNAL', `cannot listen on ${options.host}:${options.port}: ${err.message}`, { user: true, cause: err })));
    server.listen(options.port, options.host, () => {
      const addr = server.address() as AddressInfo;
      const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({
        server,
        url: `http://${hostPart}:${addr.port}`,
        port: addr.port,
        close: (drainMs) => closeServer(server, app, drainMs),
      });
    });
  });
}

async function closeServer(server: Server, app: object, drainMs: number): Promise<void> {
  const closed = new Promise<void>((r) => server.close(() => r()));
  server.closeIdleConnections();
  const deadline = Date.now() + drainMs;
  const inflight = () => (app as { inflight: number }).inflight;
  while (inflight() > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    server.closeIdleConnections();
  }
  server.closeAllConnections();
  await closed;
}
