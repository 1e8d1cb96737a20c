/**
 * The adapter `isola build` links in front of every guest: it exports wasi:http's
 * `incomingHandler` and calls the module's Workers-style `fetch(request, env, ctx)` for each
 * request.
 *
 * It exports `incomingHandler` explicitly rather than using StarlingMonkey's
 * `addEventListener('fetch')`, because a fetch-event guest answers only one request per instance
 * (an open StarlingMonkey bug), which would make every request a cold start.
 *
 * Per request: build the Request (request.ts), call the handler, send the Response (response.ts),
 * then wait for `ctx.waitUntil` promises. A handler that throws or returns something other than a
 * Response gets a 500 and the error in the function's log (stderr), like Workers' "Worker threw
 * exception"; an error after the head aborts the response. The instance stays usable either way.
 */
import { getEnvironment } from 'wasi:cli/environment@0.2.10';
import type { IncomingRequest, ResponseOutparam } from 'wasi:http/types@0.2.10';
import { describeError, RequestContext } from './context.ts';
import type { Env, ExportedHandler } from './index.ts';
import { installOutboundFetch } from './outbound.ts';
import { toRequest } from './request.ts';
import { hasFetchListener, installServiceWorkerShim, serviceWorkerHandler } from './service-worker.ts';
import { isStreamError, NO_BODY_STATUS, sendInternalError, sendResponse, toFields } from './response.ts';
import type { Fields } from 'wasi:http/types@0.2.10';

/** wasi:http/incoming-handler's export, as componentize-js expects it. */
export interface IncomingHandler {
  handle(request: IncomingRequest, outparam: ResponseOutparam): void | Promise<void>;
}

/** What a guest module may export (its namespace object). */
export interface GuestModule {
  default?: unknown;
  incomingHandler?: IncomingHandler;
}

// Before the guest module runs (the generated entry imports this module first): capture a
// service-worker-style `addEventListener('fetch', …)` instead of letting the engine take it.
installServiceWorkerShim();

let cachedEnv: Env | undefined;

/**
 * The function's environment variables as an object. Read on first use, not at module load:
 * module top level runs at build time (componentize-js pre-initialises the module), when the
 * function's variables are not known yet.
 */
export function functionEnv(): Env {
  if (cachedEnv === undefined) {
    const env: Env = {};
    for (const [name, value] of getEnvironment()) env[name] = value;
    cachedEnv = env;
  }
  return cachedEnv;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object with keys [${Object.keys(value as object).join(', ')}]`;
  return typeof value;
}

/**
 * The handler a module exports: `export default { fetch }` (Workers; also a Hono app), a bare
 * `export default function (request, env, ctx)`, or — with no default export — a listener
 * registered with `addEventListener('fetch', …)` (Workers' service-worker syntax).
 *
 * @throws TypeError naming what was found when the module exports neither; the build runs the
 *   module's top level, so this surfaces as a build error.
 */
export function findHandler(mod: GuestModule, entry: string): ExportedHandler<Env> {
  const candidate = mod.default;
  if (typeof candidate === 'function') {
    const fn = candidate as ExportedHandler<Env>['fetch'];
    return { fetch: (request, env, ctx) => fn(request, env, ctx) };
  }
  if (candidate !== null && typeof candidate === 'object' && typeof (candidate as { fetch?: unknown }).fetch === 'function') {
    return candidate as ExportedHandler<Env>;
  }
  if (candidate === undefined && hasFetchListener()) return serviceWorkerHandler();
  throw new TypeError(
    `${entry} must export a fetch handler: \`export default { fetch(request, env, ctx) { … } }\`, ` +
      `a Hono app (\`export default app\`), \`export default function (request, env, ctx) { … }\`, ` +
      `or register one with \`addEventListener('fetch', (event) => event.respondWith(…))\`; ` +
      `its default export is ${candidate === undefined ? 'missing' : describeValue(candidate)}`,
  );
}

/**
 * Answers one wasi:http request with `handler`: see the module comment for the behaviour.
 * Never throws: every failure becomes a 500 (before the head) or an aborted response (after).
 */
export async function handleRequest(handler: ExportedHandler<Env>, incoming: IncomingRequest, outparam: ResponseOutparam): Promise<void> {
  const { request, body } = toRequest(incoming);
  const ctx = new RequestContext();
  try {
    let response: Response;
    let fields: Fields;
    try {
      const result: unknown = await handler.fetch(request, functionEnv(), ctx);
      if (!(result instanceof Response)) {
        throw new TypeError(`the fetch handler returned ${describeValue(result)}, expected a Response`);
      }
      response = result;
      if (response.type === 'error') throw new TypeError('the fetch handler returned Response.error()');
      fields = toFields(response.headers, request.method === 'HEAD' || NO_BODY_STATUS.has(response.status));
    } catch (err) {
      console.error(`Uncaught (in fetch handler) ${describeError(err)}`);
      sendInternalError(outparam);
      return;
    }
    try {
      await sendResponse(outparam, response, fields, request.method, body);
    } catch (err) {
      // A stream error means the client went away or the host ended the body: nothing to report.
      if (!isStreamError(err)) console.error(`Uncaught (while streaming the response; aborted) ${describeError(err)}`);
    }
  } finally {
    body.close();
    await ctx.settle();
  }
}

/**
 * The `incomingHandler` export for a guest module: its own `incomingHandler` when it has one (a
 * guest written against wasi:http directly passes through untouched), else an adapter calling
 * its fetch handler. Also replaces the global `fetch` with one whose failures explain that isola
 * denies outbound HTTP (outbound.ts).
 *
 * @param mod the module's namespace (`import * as mod from './index.ts'`)
 * @param entry the entry's path, for error messages
 */
export function adapt(mod: GuestModule, entry: string): IncomingHandler {
  if (mod.incomingHandler !== undefined) return mod.incomingHandler;
  installOutboundFetch();
  const handler = findHandler(mod, entry);
  return { handle: (incoming, outparam) => handleRequest(handler, incoming, outparam) };
}
