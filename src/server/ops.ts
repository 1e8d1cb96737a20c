/**
 * Operational routes shared by both admin listeners (`isola serve`'s and `isola dev`'s):
 *
 * - `GET /healthz`: 200 `{"ok":true}` while the process serves HTTP at all (liveness).
 * - `GET /readyz`: 200 when every readiness check passes (store open, listeners up, pools warmed,
 *   not draining), else 503; the body names each check: `{"ready":false,"checks":{"edge":"ok",…}}`.
 * - `GET /metrics`: the Prometheus exposition (telemetry/metrics.ts).
 * - `streamTail`: a function's live logs as Server-Sent Events (telemetry/tail.ts); the caller
 *   decides which function key the client may read.
 */
import type { ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context, Hono, MiddlewareHandler } from 'hono';
import type { Metrics } from '../telemetry/metrics.js';
import type { TailHub } from '../telemetry/tail.js';

/** One readiness check: true when fine, else a short reason. */
export type ReadinessCheck = () => true | string | Promise<true | string>;

/** The readiness checks of a process, plus whether it is draining. */
export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();
  private draining = false;

  /** Adds (or replaces) a named check. */
  check(name: string, fn: ReadinessCheck): this {
    this.checks.set(name, fn);
    return this;
  }

  /** Marks the process as stopping: /readyz answers 503 from now on. */
  drain(): void {
    this.draining = true;
  }

  /** Runs every check (a throwing check fails with its message). */
  async report(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    let ready = !this.draining;
    if (this.draining) checks.draining = 'the server is stopping';
    for (const [name, fn] of this.checks) {
      let r: true | string;
      try {
        r = await fn();
      } catch (err) {
        r = err instanceof Error ? err.message : String(err);
      }
      checks[name] = r === true ? 'ok' : r;
      if (r !== true) ready = false;
    }
    return { ready, checks };
  }
}

/** What the operational routes serve. */
export interface OpsOptions {
  metrics: Metrics;
  tail: TailHub;
  readiness: Readiness;
}

/**
 * Adds /healthz, /readyz and /metrics to `app`. `guardMetrics` runs before /metrics (e.g. the
 * operator-token check of `isola serve`).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function mountOps<E extends { Bindings: HttpBindings } & Record<string, any>>(app: Hono<E>, o: OpsOptions, guardMetrics?: MiddlewareHandler<any>): void {
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    const r = await o.readiness.report();
    return c.json(r, r.ready ? 200 : 503);
  });
  const metrics = async (c: Context<E>) => {
    const text = await o.metrics.text();
    return c.body(text, 200, { 'content-type': o.metrics.contentType });
  };
  if (guardMetrics) app.get('/metrics', guardMetrics, metrics);
  else app.get('/metrics', metrics);
}

/**
 * Answers with a Server-Sent Events stream of `key`'s log records until the client disconnects
 * (or the server stops: `TailHub.closeAll`). Writes node's response (`c.env.outgoing`) directly,
 * so the hub sees the socket's real backlog; return the result from the Hono handler.
 */
export function streamTail(res: ServerResponse, hub: TailHub, key: string): Response {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
  });
  const unsubscribe = hub.subscribe(key, res);
  res.once('close', unsubscribe);
  return RESPONSE_ALREADY_SENT as Response;
}
