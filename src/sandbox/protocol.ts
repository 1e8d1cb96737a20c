/**
 * The message protocol between the main thread and a sandbox (worker thread).
 * Code inside the sandbox imports only this module, ./shared.ts and the guest ABI hosts
 * (../shared/STYLE.md §6).
 */
import type { MessagePort } from 'node:worker_threads';
import type { GuestAbi } from '../config/types.js';

/** Everything a guest may learn about a request, sent to the sandbox in one message. */
export interface RequestHead {
  /** The request id (also returned to the client as `x-request-id`). */
  id: string;
  /** Method as sent by the client, e.g. "GET". */
  method: string;
  /** "http" or "https" as seen by the edge listener. */
  scheme: 'http' | 'https';
  /** The Host header value (authority), "" when absent. */
  authority: string;
  /** The request target as received: raw (still percent-encoded) path plus "?query" if any. */
  pathWithQuery: string;
  /** Header lines as received, flat [name, value, name, value, …] (node's rawHeaders): order and duplicates kept. */
  rawHeaders: string[];
  /** HTTP version, e.g. "1.1". */
  httpVersion: string;
  /** Client address and port. */
  remoteAddr: string;
  remotePort: number;
  /** Listener name (the Host header's host, else the bound address) and port, for CGI's SERVER_NAME/SERVER_PORT. */
  serverName: string;
  serverPort: number;
  /** The matched route's fixed prefix without a trailing slash ("" for "/*"); CGI's SCRIPT_NAME. */
  routePrefix: string;
  /** The matched route pattern as configured (WAGI's X_MATCHED_ROUTE). */
  route: string;
  /** Declared body length (content-length), or -1 when unknown (chunked); 0 when there is no body. */
  bodyLength: number;
  /** Set by the main-thread Sandbox when it posts the request: 1, 2, … per sandbox (never shown to the guest). */
  seq?: number;
}

/** A function version's settings as a sandbox needs them (the same on the main thread and inside). */
export interface GuestSettings {
  abi: GuestAbi;
  /** wasi-http: file URL of the jco glue (async instantiation mode). */
  glueUrl: string | null;
  /** wasi-http: file URL of the same glue as a classic script, loaded with a V8 code cache (./glue-loader.ts); null: import `glueUrl`. */
  glueScriptUrl: string | null;
  /** The function's name and configured environment variables (the only ones the guest sees). */
  name: string;
  env: Record<string, string>;
  argv: string[];
  files: Record<string, string>;
  /** Largest response body the guest may write, bytes. */
  maxResponseBodyBytes: number;
  /** Cap on the guest's linear memory, bytes (also written into the module's memory limits). */
  memoryBytes: number;
  /** Fuel per request for a metered artifact (modules import `isola.fuel`), or null when unmetered. */
  fuelLimit: number | null;
  /** Largest guest output (stdout+stderr) kept per request for the log, bytes. */
  maxLogBytes: number;
  /** The per-request CPU-time limit the main thread enforces, ms (the sandbox reads its clock often enough for it). */
  cpuLimitMs?: number;
}

/** What a blank sandbox is told when it is bound to a function version (once). */
export interface SandboxInit extends GuestSettings {
  /** Shared control block (see ./shared.ts). */
  control: Int32Array;
  /** Port the main thread posts request body chunks on; the sandbox reads it synchronously. */
  bodyPort: MessagePort;
  /** Compiled core modules by the names the glue asks for (wagi: one entry, "main.wasm"). */
  modules: Record<string, WebAssembly.Module>;
}

/** A body chunk or end marker on the body port (main → sandbox). */
export interface BodyMessage {
  /** The request's sequence number (RequestHead.seq); chunks of another request are discarded. */
  seq: number;
  chunk?: Uint8Array;
  /** true: the body is complete. */
  end?: boolean;
  /** The body failed (client gone, too large): the guest's next read reports an error. */
  error?: string;
}

/** Main → sandbox on the worker's own port. */
export type ToSandbox =
  /** Bind this blank sandbox to a function version and instantiate it. */
  | { t: 'bind'; init: SandboxInit }
  /**
   * Serve these requests, in order (several when the pool pipelines short requests, see
   * ../pool/policy.ts `mayPipeline`); with `recycle`, make a fresh instance after that one.
   */
  | { t: 'requests'; list: WireRequests };

/** A response head: status and header lines flat [name, value, …] in the guest's order. */
export interface ResponseHead {
  status: number;
  headers: string[];
}

/** How a request ended inside the sandbox. */
export interface GuestOutcome {
  /** "ok"; or which rule the guest broke. */
  kind: 'ok' | 'trap' | 'no-response' | 'error-response' | 'unfinished-body' | 'exit' | 'bad-response' | 'aborted' | 'withdrawn';
  /** Human-readable detail for logs and 5xx bodies. */
  message?: string;
  /** The instance must not be reused (it trapped or exited); the sandbox makes a fresh one. */
  discard?: boolean;
  /** CPU time the sandbox thread spent on the request, ns (see ./cpu.ts). */
  cpuNs?: number;
  /** Wall time the guest spent blocked in host calls (body reads, backpressure, timers), ms (./blocking.ts). */
  blockedMs?: number;
  /** Fuel the request used (metered functions only). */
  fuel?: number;
  /** Overrides the status and error code the main thread answers with when nothing was sent yet. */
  status?: number;
  code?: string;
}

/** Sandbox → main. One message can carry several parts, so a small response is one message. */
export type FromSandbox =
  /** The thread is up and unbound (a blank sandbox). */
  | { t: 'blank'; memory: number; tid: number }
  /** An instance is ready for a request (after bind, and after each recycle). `memory`: bytes in use (JS heap + linear memories). */
  | { t: 'ready'; memory: number }
  | { t: 'init-error'; message: string; code: string }
  | {
      t: 'res';
      /** The request's sequence number (RequestHead.seq). */
      seq: number;
      /** The response head, sent once, before any body. */
      head?: ResponseHead;
      /** Body bytes (already counted in RESP_INFLIGHT by the sandbox). */
      body?: Uint8Array[];
      /**
       * Or the same as a latin1 string, one char per byte: how small bodies travel (see
       * exchange.ts TEXT_BYTES), written to the socket as a string with the response head.
       */
      text?: string;
      /** The body finished cleanly (finish called, length correct). */
      end?: boolean;
      /** The request is over for the guest. The sandbox is free, unless it recycles (then 'ready' follows). */
      done?: GuestOutcome;
      /** With done: the sandbox is making a fresh instance (trap, exit, or reuse policy); wait for 'ready'. */
      recycling?: boolean;
      /** Guest stdout/stderr captured during the request (bounded), and how many bytes were dropped. */
      log?: { stdout: string; stderr: string; dropped: number };
    }
  | { t: 'credit'; seq: number }
  /** Several of the above, in order: responses of pipelined requests travel together (one wake-up). */
  | { t: 'batch'; msgs: Array<FromSandbox | WireResponse> };

/** A 'res' message as it travels: see `packResponse`. */
type ResMessage = Extract<FromSandbox, { t: 'res' }>;

// ---- wire forms ---------------------------------------------------------------------------------
// The two messages every request crosses threads in (its head to the sandbox, its response back)
// travel as flat arrays in a fixed order, not as objects: V8's structured clone writes every
// property name of every object and the receiver rebuilds each object key by key through map
// transitions, which on a WAT hello was ~3 µs per request across both threads (perf);
// strings and numbers in an array cost a fraction of that.

/** Request heads with their reuse flag, REQUEST_SLOTS values each (see `packRequests`). */
export type WireRequests = Array<string | number | boolean | string[]>;
const REQUEST_SLOTS = 16;

/** Appends requests to a flat wire list (the order of `unpackRequests`). */
export function packRequests(list: ReadonlyArray<{ head: RequestHead; recycle: boolean }>): WireRequests {
  const out: WireRequests = [];
  for (const { head: h, recycle } of list) {
    out.push(h.id, h.method, h.scheme, h.authority, h.pathWithQuery, h.rawHeaders, h.httpVersion, h.remoteAddr, h.remotePort,
      h.serverName, h.serverPort, h.routePrefix, h.route, h.bodyLength, h.seq ?? 0, recycle);
  }
  return out;
}

/** The requests of a flat wire list, in order. */
export function unpackRequests(w: WireRequests): Array<{ head: RequestHead; recycle: boolean }> {
  const out: Array<{ head: RequestHead; recycle: boolean }> = [];
  for (let i = 0; i + REQUEST_SLOTS <= w.length; i += REQUEST_SLOTS) {
    const head: RequestHead = {
      id: w[i] as string,
      method: w[i + 1] as string,
      scheme: w[i + 2] as 'http' | 'https',
      authority: w[i + 3] as string,
      pathWithQuery: w[i + 4] as string,
      rawHeaders: w[i + 5] as string[],
      httpVersion: w[i + 6] as string,
      remoteAddr: w[i + 7] as string,
      remotePort: w[i + 8] as number,
      serverName: w[i + 9] as string,
      serverPort: w[i + 10] as number,
      routePrefix: w[i + 11] as string,
      route: w[i + 12] as string,
      bodyLength: w[i + 13] as number,
      seq: w[i + 14] as number,
    };
    out.push({ head, recycle: w[i + 15] as boolean });
  }
  return out;
}

/**
 * A 'res' message on the wire: [seq, status, headers, body or text, end, done, recycling, log],
 * where status/headers are 0/null without a head and done is null or
 * [kind, cpuNs, blockedMs, fuel, message, discard, status, code].
 */
export type WireResponse = unknown[];

/** true when the names K cover every key of T, else false. */
type Covers<T, K extends ReadonlyArray<keyof T>> = [Exclude<keyof T, K[number]>] extends [never] ? true : false;
type Assert<T extends true> = T;
/**
 * Compile-time checks that the wire forms carry every field: a field added to GuestOutcome, to the
 * 'res' message or to RequestHead fails to compile here until it is added to the list and to the
 * pack/unpack functions.
 */
export type WireCarriesOutcome = Assert<Covers<GuestOutcome, ['kind', 'cpuNs', 'blockedMs', 'fuel', 'message', 'discard', 'status', 'code']>>;
export type WireCarriesResponse = Assert<Covers<ResMessage, ['t', 'seq', 'head', 'body', 'text', 'end', 'done', 'recycling', 'log']>>;
export type WireCarriesRequest = Assert<Covers<RequestHead, ['id', 'method', 'scheme', 'authority', 'pathWithQuery', 'rawHeaders',
  'httpVersion', 'remoteAddr', 'remotePort', 'serverName', 'serverPort', 'routePrefix', 'route', 'bodyLength', 'seq']>>;

/** The wire form of a 'res' message (see WireResponse). */
export function packResponse(m: ResMessage): WireResponse {
  const d = m.done;
  return [
    m.seq,
    m.head ? m.head.status : 0,
    m.head ? m.head.headers : null,
    m.text ?? m.body ?? null,
    m.end === true,
    d ? [d.kind, d.cpuNs, d.blockedMs, d.fuel, d.message, d.discard, d.status, d.code] : null,
    m.recycling === true,
    m.log ?? null,
  ];
}

/** The 'res' message of a WireResponse (absent parts are left out, as the sandbox made it). */
export function unpackResponse(w: WireResponse): ResMessage {
  const headers = w[2] as string[] | null;
  const d = w[5] as unknown[] | null;
  const m: ResMessage = {
    t: 'res',
    seq: w[0] as number,
    head: headers === null ? undefined : { status: w[1] as number, headers },
    body: w[3] === null || typeof w[3] === 'string' ? undefined : (w[3] as Uint8Array[]),
    text: typeof w[3] === 'string' ? w[3] : undefined,
    end: w[4] === true ? true : undefined,
    done: d === null ? undefined : {
      kind: d[0] as GuestOutcome['kind'],
      cpuNs: d[1] as number | undefined,
      blockedMs: d[2] as number | undefined,
      fuel: d[3] as number | undefined,
      message: d[4] as string | undefined,
      discard: d[5] as boolean | undefined,
      status: d[6] as number | undefined,
      code: d[7] as string | undefined,
    },
    recycling: w[6] === true ? true : undefined,
    log: (w[7] as ResMessage['log'] | null) ?? undefined,
  };
  return m;
}
