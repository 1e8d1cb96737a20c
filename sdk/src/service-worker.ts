/**
 * Workers' older "service worker" syntax, for samples written that way:
 *
 * ```js
 * addEventListener('fetch', (event) => {
 *   event.respondWith(new Response('hi'));
 * });
 * ```
 *
 * The adapter installs {@link installServiceWorkerShim} before the guest module runs, so a `fetch`
 * listener is captured here instead of reaching StarlingMonkey's own fetch-event machinery (which
 * answers only one request per instance); the adapter then calls it through the same explicit
 * `incomingHandler` export as a module-syntax handler. As in Workers' service-worker syntax, the
 * function's variables are also globals (set before the first event is dispatched).
 */
import type { Env, ExecutionContext, ExportedHandler } from './index.ts';

/** The event a `fetch` listener receives (Workers' `FetchEvent`, as far as isola offers it). */
export interface IsolaFetchEvent {
  readonly type: 'fetch';
  readonly request: Request;
  /** Sets the answer; must be called synchronously, once, while the listener runs. */
  respondWith(response: Response | Promise<Response>): void;
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}

type FetchListener = (event: IsolaFetchEvent) => void;

let listener: FetchListener | undefined;

/** Replaces the global `addEventListener` so that `fetch` listeners are kept here (once). */
export function installServiceWorkerShim(): void {
  const global = globalThis as { addEventListener?: (...args: unknown[]) => unknown; isolaShimmed?: true };
  if (global.isolaShimmed) return;
  const original = global.addEventListener;
  Object.defineProperty(global, 'isolaShimmed', { value: true });
  global.addEventListener = function addEventListener(type: unknown, handler: unknown, ...rest: unknown[]): unknown {
    if (type === 'fetch' && handler !== null && handler !== undefined) {
      const h = handler as FetchListener | { handleEvent: FetchListener };
      listener = typeof h === 'function' ? h : (event) => h.handleEvent(event);
      return undefined;
    }
    return original?.call(globalThis, type, handler, ...rest);
  };
}

/** Whether the guest registered a `fetch` listener. */
export function hasFetchListener(): boolean {
  return listener !== undefined;
}

let globalsSet = false;

/**
 * The registered listener as a module-style handler: each request dispatches one event and
 * resolves with what `respondWith` was given.
 *
 * @throws (from fetch) TypeError when the listener returns without calling `respondWith`;
 *   DOMException InvalidStateError when it calls `respondWith` twice
 */
export function serviceWorkerHandler(): ExportedHandler<Env> {
  const registered = listener!;
  return {
    fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
      if (!globalsSet) {
        globalsSet = true;
        for (const [name, value] of Object.entries(env)) if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
      }
      return new Promise<Response>((resolve, reject) => {
        let answered = false;
        let dispatching = true;
        const event: IsolaFetchEvent = {
          type: 'fetch',
          request,
          respondWith(response) {
            if (!dispatching) throw new DOMException('respondWith must be called while the fetch listener runs', 'InvalidStateError');
            if (answered) throw new DOMException('respondWith was already called', 'InvalidStateError');
            answered = true;
            Promise.resolve(response).then(resolve, reject);
          },
          waitUntil: (promise) => ctx.waitUntil(promise),
          passThroughOnException: () => ctx.passThroughOnException(),
        };
        try {
          registered(event);
        } catch (err) {
          if (!answered) reject(err);
          else console.error('Uncaught (in fetch listener)', err);
        } finally {
          dispatching = false;
        }
        if (!answered) reject(new TypeError('the fetch event listener returned without calling event.respondWith()'));
      });
    },
  };
}
