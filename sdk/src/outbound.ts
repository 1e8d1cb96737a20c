/**
 * Outbound `fetch()`. isola does not offer outbound HTTP yet: its host answers every outgoing
 * request with wasi:http's `HTTP-request-denied`, which StarlingMonkey reports only as "An error
 * occurred while using the host API". This wraps the global `fetch` so that the rejection says what
 * happened, as a TypeError (what Workers' fetch rejects with on a network failure), with the
 * engine's error as `cause`. On a host that allows outbound HTTP, fetch works unchanged.
 */

/** The wording used for an outbound request the host did not complete. */
export function outboundFailure(method: string, url: string): string {
  return (
    `fetch(${method} ${url}) failed: the host refused or could not complete the outbound request. ` +
    'isola does not offer outbound HTTP yet (every outgoing request is denied with HTTP-request-denied).'
  );
}

/** Describes fetch's first argument as "METHOD url" parts. */
function target(input: RequestInfo | URL, init: RequestInit | undefined): [string, string] {
  if (input instanceof Request) return [init?.method ?? input.method, input.url];
  return [(init?.method ?? 'GET').toUpperCase(), String(input)];
}

/** Replaces `globalThis.fetch` with the wrapper (once; later calls do nothing). */
export function installOutboundFetch(): void {
  const native = globalThis.fetch as typeof fetch & { isolaWrapped?: true };
  if (typeof native !== 'function' || native.isolaWrapped) return;
  const wrapped = async function fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    try {
      return await native(input, init);
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      const [method, url] = target(input, init);
      throw new TypeError(outboundFailure(method, url), { cause: err });
    }
  };
  Object.defineProperty(wrapped, 'isolaWrapped', { value: true });
  globalThis.fetch = wrapped;
}
