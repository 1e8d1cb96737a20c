/**
 * @isola/sdk — write an isola function the way Cloudflare Workers, Deno Deploy and Hono do:
 *
 * ```ts
 * import type { Env, ExecutionContext } from '@isola/sdk';
 *
 * export default {
 *   async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
 *     return new Response(`Hello from ${new URL(request.url).pathname}\n`);
 *   },
 * };
 * ```
 *
 * `isola build src/index.ts -o fn.wasm` bundles the module (this SDK inlined) and builds a standard
 * `wasi:http/proxy` component; the adapter (./adapter.ts) turns each incoming wasi:http request into
 * a `Request`, calls `fetch`, and streams the `Response` back. A Hono app works unchanged as the
 * default export (`export default app`), since a Hono app is an object with a `fetch` method.
 *
 * Everything here is plain Web API code: it runs in the guest (StarlingMonkey) and in Node alike.
 */

/**
 * The function's environment: the variables configured for it (`env = { … }` in isola.toml), by
 * name. The guest sees these and nothing of the host's environment. Matches Workers' `env` for
 * plain-text variables (isola has no bindings to KV, R2 or D1).
 */
export type Env = Record<string, string>;

/**
 * The per-request context, the third argument of `fetch` (Workers' `ExecutionContext`).
 */
export interface ExecutionContext {
  /**
   * Keeps the function running after the response is complete until `promise` settles (e.g. to
   * flush logs). The response is sent first; the instance serves no other request meanwhile, and
   * the work still counts towards the request's time limit. A rejection is logged, never thrown.
   */
  waitUntil(promise: Promise<unknown>): void;
  /**
   * Workers forwards the request to the origin when the handler throws; isola has no origin, so
   * this only exists for compatibility: a throwing handler still yields a 500.
   */
  passThroughOnException(): void;
  /** Workers' per-invocation properties; always an empty object on isola. */
  readonly props: Record<string, unknown>;
}

/**
 * A module's default export: an object with a `fetch` method (Workers' `ExportedHandler`). It may
 * return a Response or a Promise of one; throwing (or rejecting) yields a 500 and logs the error.
 */
export interface ExportedHandler<E = Env> {
  fetch(request: Request, env: E, ctx: ExecutionContext): Response | Promise<Response>;
}

/** The `fetch` function itself; a module may also `export default` a bare function of this shape. */
export type FetchHandler<E = Env> = (request: Request, env: E, ctx: ExecutionContext) => Response | Promise<Response>;

/**
 * Returns `handler` unchanged, typed: `export default defineHandler({ fetch(req, env) { … } })`
 * gives `req`, `env` and `ctx` their types without annotations.
 */
export function defineHandler<E = Env>(handler: ExportedHandler<E>): ExportedHandler<E> {
  return handler;
}

/** Headers given to the helpers below: anything the Headers constructor accepts. */
type HeadersInput = ConstructorParameters<typeof Headers>[0];

function withDefaultType(init: ResponseInit | undefined, type: string): ResponseInit {
  const headers = new Headers(init?.headers as HeadersInput);
  if (!headers.has('content-type')) headers.set('content-type', type);
  return { ...init, headers };
}

/**
 * A JSON response: `JSON.stringify(data)` with `content-type: application/json; charset=utf-8`
 * (unless `init.headers` sets one), status 200 unless `init.status` says otherwise.
 *
 * @example return json({ ok: true }, { status: 201 });
 * @throws TypeError when `data` cannot be serialised (a BigInt, a cycle).
 */
export function json(data: unknown, init?: ResponseInit): Response {
  return new Response(JSON.stringify(data), withDefaultType(init, 'application/json; charset=utf-8'));
}

/**
 * A plain-text response (`content-type: text/plain; charset=utf-8` unless set), status 200 unless
 * `init.status` says otherwise.
 *
 * @example return text('not found\n', { status: 404 });
 */
export function text(body: string, init?: ResponseInit): Response {
  return new Response(body, withDefaultType(init, 'text/plain; charset=utf-8'));
}

/**
 * An HTML response (`content-type: text/html; charset=utf-8` unless set).
 *
 * @example return html('<h1>hi</h1>');
 */
export function html(body: string, init?: ResponseInit): Response {
  return new Response(body, withDefaultType(init, 'text/html; charset=utf-8'));
}

/** What {@link stream} accepts: strings (sent as UTF-8) and byte arrays, sync or async. */
export type ChunkSource = Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>;

/**
 * A ReadableStream of bytes that pulls one chunk at a time from `source` (a generator, an array,
 * any iterable); strings are encoded as UTF-8. Each chunk is sent to the client as soon as the
 * function produces it, so a generator that awaits between chunks streams them over time.
 * Cancelling the stream (the client went away) calls the iterator's `return`.
 *
 * @example
 * async function* ticks() { for (let i = 0; i < 3; i++) { yield `tick ${i}\n`; await sleep(100); } }
 * return new Response(stream(ticks()), { headers: { 'content-type': 'text/plain' } });
 */
export function stream(source: ChunkSource): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const iterator: Iterator<string | Uint8Array> | AsyncIterator<string | Uint8Array> =
    Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await iterator.next();
        if (next.done) {
          controller.close();
          return;
        }
        const chunk = next.value;
        if (typeof chunk === 'string') controller.enqueue(encoder.encode(chunk));
        else if (chunk instanceof Uint8Array) controller.enqueue(chunk);
        else throw new TypeError(`stream(): chunks must be strings or Uint8Arrays, got ${typeof chunk}`);
      },
      async cancel(reason) {
        await iterator.return?.(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Resolves after `ms` milliseconds (a `setTimeout` promise). Inside a guest, time spent waiting
 * counts towards the request's wall-clock limit but uses no CPU.
 *
 * @example await sleep(250);
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
