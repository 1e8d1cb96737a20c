/**
 * The edge listener: a node:http request listener that matches the route table and streams the
 * exchange through a sandbox. Bodies are never wrapped in web streams: the handler reads node's
 * IncomingMessage and writes node's ServerResponse directly, which keeps the hot path short and
 * gives real backpressure. Routes are matched by Hono's RegExpRouter (./routes.ts); the listener
 * itself is a plain node:http one rather than a Hono app (the admin API is one): the app and its
 * node adaptor cost 4.1 µs of CPU per request in a same-run A/B on this machine kind (node:http
 * hello 25.7 µs, the same handler behind @hono/node-server 29.8 µs) and did nothing here.
 */
import { randomFillSync } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { toIsolaError } from '../errors.js';
import type { RequestHead } from '../sandbox/protocol.js';
import { sendError, type RunResult } from '../sandbox/sandbox.js';
import type { Logger } from '../telemetry/log.js';
import { defaultSlots } from '../scheduler/from-config.js';
import { Scheduler } from '../scheduler/scheduler.js';
import type { FunctionMetrics, Metrics } from '../telemetry/metrics.js';
import type { Abandon, Ran } from '../pool/pool.js';
import type { Deployment, Deployments } from './deployments.js';
import { lingerAfterResponse } from './linger.js';
import { handleExpectContinue, listen } from './listen.js';
import { classifyRejection, classifyRun, REQUEST_BODY_LIMIT, type Verdict } from './outcome.js';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
/** Random bytes for request ids, drawn in bulk (ID_POOL_BYTES at a time) and used 16 at a time. */
const ID_POOL_BYTES = 4096;
const idPool = Buffer.alloc(ID_POOL_BYTES);
let idOffset = ID_POOL_BYTES;

/**
 * A new request id: 32 lower-case hex digits (the shape of a W3C trace-id), 128 random bits, so ids
 * are unique and say nothing about other requests. The bits come from one randomFillSync per 256
 * ids (randomUUID cost ~0.8 µs of a ~25 µs node:http hello here).
 */
export function requestId(): string {
  if (idOffset === ID_POOL_BYTES) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  idOffset += 16;
  return idPool.toString('hex', idOffset - 16, idOffset);
}

/** Idempotent methods (RFC 9110 §9.2.2): safe to serve again. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** How many times one request is served again after its sandbox died before it began (RunResult `requeue`). */
const MAX_REQUEUES = 2;

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

/** The edge's request handler, and how many requests it is serving now. */
export interface EdgeHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  readonly inflight: number;
}

/**
 * Builds the edge request handler over the live deployments. `metrics`: where request metrics go
 * (none when absent). A failure of isola's own (a bug, never a guest's) is logged and answered
 * 500 ERR_INTERNAL, or the response is aborted when its head already went out.
 */
export function createEdgeHandler(deployments: Deployments, log: Logger, scheduler: Scheduler = defaultScheduler(), metrics: Metrics | null = null): EdgeHandler {
  let inflight = 0;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    inflight++;
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : requestId();
    dispatch(req, res, id, deployments, log, scheduler, metrics).then(
      () => {
        inflight--;
      },
      (err: unknown) => {
        inflight--;
        log.error({ err, req_id: id, method: req.method, url: req.url }, 'edge handler failed');
        sendError(res, 500, 'ERR_INTERNAL', 'internal error', id);
      },
    );
  };
  Object.defineProperty(handler, 'inflight', { get: () => inflight });
  return handler as EdgeHandler;
}

/**
 * The origin-form target and the host a request is for. An absolute-form target
 * (`GET http://host/path`, RFC 9112 §3.2.2) is accepted, and its authority wins over the Host header.
 */
function requestTarget(req: IncomingMessage): { target: string; host: string } {
  const raw = req.url ?? '/';
  if (raw.charCodeAt(0) === 47 /* "/" */) return { target: raw, host: req.headers.host ?? '' };
  const m = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(raw);
  if (!m) return { target: raw, host: req.headers.host ?? '' };
  const rest = m[2]!;
  return { target: rest.startsWith('/') ? rest : `/${rest}`, host: m[1]! };
}

/** An authority (RFC 3986 §3.2.2–3.2.3): an IP literal or a reg-name, and an optional port; no userinfo. */
const AUTHORITY_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{0,5})?$/;
/** The last Host value found valid: clients send the same one again and again. */
let lastGoodHost = '';

/** The last authority given to `hostName`, and its host. */
let lastAuthority = '';
let lastHostName = '';

/** The host of an authority, without its port (CGI's SERVER_NAME); the last one is remembered. */
function hostName(authority: string): string {
  if (authority !== lastAuthority) {
    lastHostName = authority.replace(/:\d+$/, '');
    lastAuthority = authority;
  }
  return lastHostName;
}

/**
 * Why a request is malformed (answered 400 before routing), or null: a target that is neither
 * origin-form nor absolute-form (`OPTIONS *` too), a backslash or a dot-segment in the path (a
 * WHATWG URL parser, as in every JS guest, reads "\\" as "/" and resolves dot-segments, so the path
 * would match one route and be served as another), or a Host that is missing (RFC 9112 §3.2) or not an authority (it is matched against host routes
 * and handed to the guest, whose URL parser would read it differently).
 */
function badRequest(target: string, path: string, host: string): string | null {
  if (target.charCodeAt(0) !== 47 /* "/" */) return 'the request target must be a path (origin-form) or an absolute http URL (RFC 9112 §3.2)';
  if (path.includes('\\')) return 'the request path has a backslash; send "/" (RFC 3986 §3.3)';
  if (hasDotSegment(path)) return 'the request path has a "." or ".." segment; send it normalized (RFC 3986 §5.2.4)';
  if (host === '') return 'the request has no Host header (RFC 9112 §3.2)';
  if (host === lastGoodHost) return null;
  if (!AUTHORITY_RE.test(host)) return 'the Host header is not a valid authority (RFC 9112 §3.2, RFC 3986 §3.2)';
  lastGoodHost = host;
  return null;
}

/**
 * true when a raw path has a "." or ".." segment (also percent-encoded). Routes match raw paths,
 * so such a path could match one route while the guest, normalizing, reads another; curl and
 * browsers normalize before sending, so isola refuses them rather than guess.
 */
function hasDotSegment(path: string): boolean {
  if (!path.includes('.') && !path.includes('%2')) return false;
  for (const seg of path.split('/')) {
    const s = seg.replace(/%2e/gi, '.');
    if (s === '.' || s === '..') return true;
  }
  return false;
}

/** A scheduler with the default run slots (four per core), no budgets, equal weights. */
export function defaultScheduler(): Scheduler {
  return new Scheduler({ slots: defaultSlots() });
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** What the access log says about a request that did not run (refused, or stopped at the door). */
interface Refusal {
  status: number;
  verdict: Verdict;
  code: string;
  message: string;
  waitedMs: number;
}

async function dispatch(req: IncomingMessage, res: ServerResponse, id: string, deployments: Deployments, log: Logger, scheduler: Scheduler, metrics: Metrics | null, rerouted = false, startedAt?: number): Promise<void> {
  const started = startedAt ?? performance.now();
  const { target, host } = requestTarget(req);
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const bad = badRequest(target, path, host);
  if (bad) {
    sendError(res, 400, 'ERR_BAD_REQUEST', bad, id);
    log.info({ req_id: id, method: req.method, host, path, status: 400, outcome: 'bad-request' }, bad);
    return;
  }
  const match = deployments.table.match(host, path);
  if (!match) {
    sendError(res, 404, 'ERR_ROUTE_NOT_FOUND', `no route for ${host}${path}`, id);
    metrics?.unroutedRequest();
    log.info({ req_id: id, method: req.method, host, path, status: 404, outcome: 'no-route', ms: round3(performance.now() - started) }, 'no route');
    return;
  }
  const d = match.target;
  const length = bodyLength(req);
  if (length > d.limits.maxRequestBodyBytes) {
    const message = `request body of ${length} bytes is over the ${d.limits.maxRequestBodyBytes}-byte limit`;
    lingerAfterResponse(res);
    sendError(res, 413, 'ERR_REQUEST_BODY_TOO_LARGE', message, id, { connection: 'close' });
    refused(d, id, req.method ?? 'GET', path, started, { status: 413, verdict: REQUEST_BODY_LIMIT, code: 'ERR_REQUEST_BODY_TOO_LARGE', message, waitedMs: 0 });
    return;
  }
  const tenant = d.owner;
  // Admission: the tenant's CPU budget (429 + Retry-After when in debt, or a wait when configured).
  try {
    const refill = scheduler.checkBudget(tenant);
    if (refill) await refill;
  } catch (err) {
    const e = toIsolaError(err);
    const retry = String((e.details?.retryAfter as number | undefined) ?? 1);
    sendError(res, e.status, e.code, e.message, id, { 'retry-after': retry });
    refused(d, id, req.method ?? 'GET', path, started, { status: e.status, verdict: classifyRejection(e.code, e.message), code: e.code, message: e.message, waitedMs: 0 });
    return;
  }
  // Only bodyless requests of idempotent methods may be queued on a busy sandbox: one whose sandbox
  // dies may be served again even if it had run (its held answer was lost with the thread), which
  // RFC 9110 §9.2.2 allows for idempotent methods only.
  const pipelinable = length === 0 && IDEMPOTENT.has(req.method ?? '');
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
    serverName: hostName(host) || (sock.localAddress ?? ''),
    serverPort: sock.localPort ?? 0,
    routePrefix: match.route.prefix,
    route: match.route.source,
    bodyLength: length,
  };
  let waitedMs = 0;
  let cold = false;
  let result: RunResult;
  let servedAgain = 0;
  // A request whose sandbox died before its response began (another request's limit, a crash) is
  // served again on another sandbox, up to MAX_REQUEUES times (RunResult outcome `requeue`).
  for (let requeues = 0; ; requeues++) {
    // A request served again is never queued behind others: it was just behind a failing one.
    const mayQueue = pipelinable && requeues === 0;
    let sandbox = d.pool.tryAcquire(mayQueue);
    if (!sandbox) {
      // Slow path: wait in the function's queue; a client that gives up leaves the queue.
      const gone = new ClientGone();
      const onClose = gone.abort;
      res.once('close', onClose);
      const t0 = performance.now();
      try {
        let waited: number;
        ({ sandbox, waitedMs: waited, cold } = await d.pool.acquire(gone, mayQueue));
        waitedMs += waited;
      } catch (err) {
        const e = toIsolaError(err);
        const waited = waitedMs + performance.now() - t0;
        if (gone.aborted || res.destroyed) {
          refused(d, id, head.method, path, started, { status: 0, verdict: CLIENT_ABORT, code: '', message: 'the client left while queued', waitedMs: waited });
          return;
        }
        const now = deployments.get(d.key);
        if (e.code === 'ERR_SHUTTING_DOWN' && !rerouted && now !== undefined && now !== d) {
          // The version this request matched was replaced (a deploy) while it waited: route it again.
          res.off('close', onClose);
          return dispatch(req, res, id, deployments, log, scheduler, metrics, true, started);
        }
        if (!res.headersSent) sendError(res, e.status, e.code, e.message, id, e.status === 503 ? { 'retry-after': '1' } : undefined);
        refused(d, id, head.method, path, started, { status: e.status, verdict: classifyRejection(e.code, e.message), code: e.code, message: e.message, waitedMs: waited });
        return;
      } finally {
        res.off('close', onClose);
      }
      d.metrics?.queued(waitedMs);
    }
    if (res.destroyed || res.writableEnded) {
      // The client gave up while the sandbox was on its way: it goes straight back.
      d.pool.release(sandbox);
      refused(d, id, head.method, path, started, { status: 0, verdict: CLIENT_ABORT, code: '', message: 'the client left while queued', waitedMs });
      return;
    }
    // A run slot, shared fairly between tenants (least recent CPU first); a request queued on a
    // busy sandbox (pipelined) runs on the slot of the requests before it.
    const behind = sandbox.state === 'busy';
    const slot = behind ? null : scheduler.enter(tenant);
    if (slot) {
      try {
        await slot;
      } catch (err) {
        d.pool.release(sandbox);
        const e = toIsolaError(err);
        sendError(res, e.status, e.code, e.message, id, { 'retry-after': '1' });
        refused(d, id, head.method, path, started, { status: e.status, verdict: classifyRejection(e.code, e.message), code: e.code, message: e.message, waitedMs });
        return;
      }
    }
    const recycle = d.pool.recycleAfter(sandbox);
    result = await sandbox.run(head, req, res, { timeoutMs: d.limits.timeoutMs, cpuMs: d.limits.cpuMs, maxRequestBodyBytes: d.limits.maxRequestBodyBytes }, recycle);
    d.pool.release(sandbox, ranToEnd(result));
    scheduler.leave(tenant, result.cpuNs, behind);
    if (result.outcome !== 'requeue') break;
    servedAgain++;
    if (res.destroyed) {
      result = { ...result, status: 0, outcome: 'client-abort' };
      break;
    }
    if (requeues >= MAX_REQUEUES) {
      sendError(res, 500, 'ERR_SANDBOX_CRASHED', result.message ?? 'sandbox crashed', id);
      result = { ...result, status: 500, outcome: 'crashed', code: 'ERR_SANDBOX_CRASHED' };
      break;
    }
  }
  if (result.outcome === 'body-too-large') lingerAfterResponse(res);
  const ms = performance.now() - started;
  const verdict = classifyRun(result.outcome, result.code, result.message);
  const m = d.metrics;
  if (m) {
    m.request(result.status, ms / 1000, result.cpuNs, result.requestBytes, result.responseBytes, result.fuel);
    count(m, verdict);
  }
  if (result.log) guestOutput(d, d.log.child({ req_id: id }), id, result.log);
  const ok = verdict.outcome === 'ok';
  const tail = d.tail?.active ? d.tail : null;
  // The access line is built only when someone reads it (log level, `isola tail`).
  if (!tail && !d.log.isLevelEnabled(ok ? 'info' : 'warn')) return;
  const entry: AccessEntry = {
    req_id: id, method: head.method, path, status: result.status, outcome: verdict.outcome,
    ms: round3(ms), req_bytes: result.requestBytes, res_bytes: result.responseBytes, queue_ms: round3(waitedMs), cold,
    cpu_ms: Math.round(result.cpuNs / 1000) / 1000,
  };
  if (result.fuel !== undefined) entry.fuel = result.fuel;
  if (servedAgain > 0) entry.requeues = servedAgain;
  if (ok) d.log.info(entry, 'request');
  else {
    if (verdict.limit) entry.limit = verdict.limit;
    if (result.code) entry.error_code = result.code;
    if (result.message) entry.err = result.message;
    d.log.warn(entry, 'request failed');
  }
  if (tail) tail.publish('request', { time: new Date().toISOString(), type: 'request', tenant, function: d.name, version: d.version, ...entry });
}

/**
 * What the pool learns from a run (FunctionPool.release): the guest's blocked time and CPU when it
 * ran to its end, and the CPU of one stopped at its CPU or wall-clock limit (so a runaway request
 * raises the function's average and ends pipelining for it); nothing for the rest.
 */
function ranToEnd(r: RunResult): Ran | undefined {
  if (r.outcome === 'ok') return r;
  if (r.outcome === 'cpu' || r.outcome === 'timeout') return { blockedMs: 0, cpuNs: r.cpuNs, limit: true };
  return undefined;
}

/**
 * The cancellation a queued request hands the pool (see FunctionPool.acquire): aborted when the
 * client closes the connection. An AbortController does the same at several µs a request.
 */
class ClientGone implements Abandon {
  aborted = false;
  private listener: (() => void) | null = null;
  readonly abort = (): void => {
    if (this.aborted) return;
    this.aborted = true;
    const fn = this.listener;
    this.listener = null;
    fn?.();
  };
  addEventListener(_type: 'abort', listener: () => void): void {
    this.listener = listener;
  }
  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = null;
  }
}

/** One access-log line's fields (tenant, function and version are bound on the logger). */
interface AccessEntry {
  req_id: string;
  method: string;
  path: string;
  status: number;
  outcome: Verdict['outcome'];
  limit?: string;
  reason?: string;
  error_code?: string;
  err?: string;
  ms: number;
  req_bytes: number;
  res_bytes: number;
  queue_ms: number;
  cold: boolean;
  cpu_ms: number;
  fuel?: number;
  /** Times the request was served again on another sandbox (its first was withdrawn or died with it). */
  requeues?: number;
}

const CLIENT_ABORT: Verdict = { outcome: 'client-abort' };

/** Counts a verdict in the function's outcome metrics. */
function count(m: FunctionMetrics, v: Verdict): void {
  if (v.reason) m.rejected(v.reason);
  else if (v.outcome === 'trap') m.trapped();
  else if (v.outcome === 'client-abort') m.clientAborted();
  else if (v.guestError) m.guestError(v.guestError);
}

/** Logs, counts and tails a request that never reached the guest. */
function refused(d: Deployment, id: string, method: string, path: string, started: number, r: Refusal): void {
  const ms = performance.now() - started;
  if (d.metrics) {
    d.metrics.request(r.status, ms / 1000, 0, 0, 0, undefined);
    count(d.metrics, r.verdict);
  }
  const entry: AccessEntry = {
    req_id: id, method, path, status: r.status, outcome: r.verdict.outcome,
    ms: round3(ms), req_bytes: 0, res_bytes: 0, queue_ms: round3(r.waitedMs), cold: false, cpu_ms: 0,
  };
  if (r.verdict.limit) entry.limit = r.verdict.limit;
  else if (r.verdict.reason) entry.reason = r.verdict.reason;
  if (r.code) entry.error_code = r.code;
  entry.err = r.message;
  d.log.warn(entry, 'request refused');
  if (d.tail?.active) d.tail.publish('request', { time: new Date().toISOString(), type: 'request', tenant: d.owner, function: d.name, version: d.version, ...entry });
}

/** Guest stdout/stderr as log lines (and tail records), plus a warning with the dropped count. */
function guestOutput(d: Deployment, rlog: Logger, id: string, out: { stdout: string; stderr: string; dropped: number }): void {
  const tail = d.tail?.active ? d.tail : null;
  for (const [stream, text] of [['stdout', out.stdout], ['stderr', out.stderr]] as const) {
    if (!text) continue;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      rlog.info({ stream }, line);
      tail?.publish('log', { time: new Date().toISOString(), type: 'log', req_id: id, tenant: d.owner, function: d.name, version: d.version, stream, msg: line });
    }
  }
  if (out.dropped > 0) {
    d.metrics?.outputDropped(out.dropped);
    rlog.warn({ dropped_bytes: out.dropped }, 'guest output over the per-request limit was dropped');
    tail?.publish('log', { time: new Date().toISOString(), type: 'log', req_id: id, tenant: d.owner, function: d.name, version: d.version, stream: 'isola', msg: `${out.dropped} bytes of guest output over the per-request limit were dropped` });
  }
}

/** Starts the edge listener on host:port (0 = a free port). Rejects when the address is taken. */
export async function startEdge(options: { host: string; port: number; deployments: Deployments; log: Logger; scheduler?: Scheduler; metrics?: Metrics }): Promise<EdgeServer> {
  const handler = createEdgeHandler(options.deployments, options.log, options.scheduler, options.metrics ?? null);
  const server = createServer(handler);
  server.keepAliveTimeout = 5_000;
  // A client gets 10 s to send its request head (node's default is 60 s): slow-header clients
  // cost a socket each; bodies are bounded by each function's wall-clock limit once dispatched.
  server.headersTimeout = 10_000;
  // `Expect: 100-continue` (RFC 9110 §10.1.1): refuse a declared body over the route's limit before
  // the client sends it; otherwise say 100 Continue and serve the request as usual.
  handleExpectContinue(server, (req, res) => {
    const { target, host } = requestTarget(req);
    const q = target.indexOf('?');
    const d = options.deployments.table.match(host, q < 0 ? target : target.slice(0, q))?.target;
    const length = bodyLength(req);
    if (!d || length <= d.limits.maxRequestBodyBytes) return false;
    lingerAfterResponse(res);
    sendError(res, 413, 'ERR_REQUEST_BODY_TOO_LARGE', `request body of ${length} bytes is over the ${d.limits.maxRequestBodyBytes}-byte limit`, requestId(), { connection: 'close' });
    return true;
  });
  const { url, port } = await listen(server, options.host, options.port, '');
  return { server, url, port, close: (drainMs) => closeServer(server, handler, drainMs) };
}

async function closeServer(server: Server, handler: EdgeHandler, drainMs: number): Promise<void> {
  const closed = new Promise<void>((r) => server.close(() => r()));
  server.closeIdleConnections();
  const deadline = Date.now() + drainMs;
  while (handler.inflight > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    server.closeIdleConnections();
  }
  server.closeAllConnections();
  await closed;
}
