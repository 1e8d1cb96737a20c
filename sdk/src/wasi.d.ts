/**
 * The slice of the WASI 0.2 interfaces the adapter uses, as componentize-js's bindings expose them
 * to JavaScript inside the guest: resources are classes, `result<T, E>` returns T or throws an
 * Error whose `payload` is E, `option<T>` is T | undefined, `u64` is bigint, `list<u8>` Uint8Array.
 *
 * The version in the module names is the one componentize-js 0.23's engine exports; `isola build`
 * rewrites `wasi:*@0.2.x` imports to the engine's own version, so these names only have to be
 * some 0.2.x release.
 */

declare module 'wasi:io/poll@0.2.10' {
  /** Something a guest can wait for (readiness of a stream, a timer). */
  export class Pollable {
    /** Blocks until ready. */
    block(): void;
    /** Whether it is ready now. */
    ready(): boolean;
    [Symbol.dispose](): void;
  }
}

declare module 'wasi:io/streams@0.2.10' {
  import type { Pollable } from 'wasi:io/poll@0.2.10';

  /** A byte source; reads throw `{ payload: { tag: 'closed' } }` at its end. */
  export class InputStream {
    /** Up to `len` bytes; waits until at least one byte or the end. */
    blockingRead(len: bigint): Uint8Array;
    subscribe(): Pollable;
    [Symbol.dispose](): void;
  }

  /** A byte sink with backpressure: `checkWrite` says how many bytes `write` may take now. */
  export class OutputStream {
    checkWrite(): bigint;
    write(contents: Uint8Array): void;
    /** Writes at most 4096 bytes and waits until they are flushed. */
    blockingWriteAndFlush(contents: Uint8Array): void;
    blockingFlush(): void;
    /** Moves up to `len` bytes from `src` host-side; returns how many moved. */
    blockingSplice(src: InputStream, len: bigint): bigint;
    subscribe(): Pollable;
    [Symbol.dispose](): void;
  }
}

declare module 'wasi:http/types@0.2.10' {
  import type { InputStream, OutputStream } from 'wasi:io/streams@0.2.10';

  export type Method =
    | { tag: 'get' | 'head' | 'post' | 'put' | 'delete' | 'connect' | 'options' | 'trace' | 'patch' }
    | { tag: 'other'; val: string };

  export type Scheme = { tag: 'HTTP' } | { tag: 'HTTPS' } | { tag: 'other'; val: string };

  /** wasi:http's error-code variant (only the cases the adapter produces are spelled out). */
  export type ErrorCode = { tag: 'internal-error'; val: string | undefined } | { tag: string; val?: unknown };

  /** A header or trailer list; throws `{ payload: { tag: 'invalid-syntax' | 'forbidden' | 'immutable' } }`. */
  export class Fields {
    constructor();
    static fromList(entries: Array<[string, Uint8Array]>): Fields;
    append(name: string, value: Uint8Array): void;
    entries(): Array<[string, Uint8Array]>;
    [Symbol.dispose](): void;
  }

  export class IncomingRequest {
    method(): Method;
    pathWithQuery(): string | undefined;
    scheme(): Scheme | undefined;
    authority(): string | undefined;
    /** An immutable child of the request: dispose before the request. */
    headers(): Fields;
    /** The body; may be taken once. */
    consume(): IncomingBody;
    [Symbol.dispose](): void;
  }

  export class FutureTrailers {
    [Symbol.dispose](): void;
  }

  export class IncomingBody {
    /** The body's bytes; a child of the body: dispose before finishing the body. */
    stream(): InputStream;
    static finish(body: IncomingBody): FutureTrailers;
    [Symbol.dispose](): void;
  }

  export class OutgoingResponse {
    constructor(headers: Fields);
    setStatusCode(status: number): void;
    /** The body; may be taken once. */
    body(): OutgoingBody;
    [Symbol.dispose](): void;
  }

  export class OutgoingBody {
    /** The body's byte sink; a child of the body: dispose before finishing the body. */
    write(): OutputStream;
    /** Completes the body; dropping a body without finishing it aborts the response. */
    static finish(body: OutgoingBody, trailers: Fields | undefined): void;
    [Symbol.dispose](): void;
  }

  export class ResponseOutparam {
    static set(param: ResponseOutparam, response: { tag: 'ok'; val: OutgoingResponse } | { tag: 'err'; val: ErrorCode }): void;
  }
}

declare module 'wasi:cli/environment@0.2.10' {
  /** The function's environment variables, as [name, value] pairs. */
  export function getEnvironment(): Array<[string, string]>;
}
