/**
 * wasi:http incoming-request → Fetch `Request`: method, URL (scheme + authority + path-with-query),
 * headers in the order they arrived, and a body that is a ReadableStream reading the request's
 * input-stream in chunks, only when the handler reads it (so an unread body costs nothing).
 */
import { IncomingBody, type IncomingRequest, type Method, type Scheme } from 'wasi:http/types@0.2.10';
import type { InputStream } from 'wasi:io/streams@0.2.10';
import { latin1 } from './bytes.ts';

/** Largest chunk read from the host at once, bytes. */
export const READ_CHUNK = 64 * 1024;

/** Whether `err` is wasi:io's `closed` stream error (the end of the stream). */
export function isStreamClosed(err: unknown): boolean {
  return (err as { payload?: { tag?: string } } | null)?.payload?.tag === 'closed';
}

/** The method as the Fetch API spells it: GET, POST, …, or an extension method's own name. */
export function methodName(method: Method): string {
  return method.tag === 'other' ? method.val : method.tag.toUpperCase();
}

/** The URL scheme ("http", "https", or another scheme's own name); http when the host gave none. */
export function schemeName(scheme: Scheme | undefined): string {
  if (scheme === undefined || scheme.tag === 'HTTP') return 'http';
  if (scheme.tag === 'HTTPS') return 'https';
  return scheme.val.toLowerCase();
}

/**
 * The incoming request's body, owned by the adapter: a ReadableStream over the host stream, the
 * host stream itself (for splicing a passthrough body), and cleanup in wasi's drop order.
 */
export class RequestBody {
  private body: IncomingBody | undefined;
  private input: InputStream | undefined;
  /** Chunks handed to JavaScript so far (0 means the stream is untouched and may be spliced). */
  pulled = 0;
  /** Whether the host stream reached its end. */
  ended = false;
  /** The Fetch-visible body (null for GET and HEAD, whose bodies the Fetch API forbids). */
  readonly stream: ReadableStream<Uint8Array> | null;

  constructor(request: IncomingRequest, hasBody: boolean) {
    this.body = request.consume();
    this.stream = hasBody
      ? new ReadableStream<Uint8Array>(
          {
            pull: (controller) => {
              const chunk = this.read();
              if (chunk === undefined) controller.close();
              else controller.enqueue(chunk);
            },
            cancel: () => this.close(),
          },
          // Pull nothing until the handler reads: an untouched body can still be spliced.
          { highWaterMark: 0 },
        )
      : null;
  }

  /** The host input-stream (opened on first use); undefined after close. */
  hostStream(): InputStream | undefined {
    if (this.input === undefined && this.body !== undefined) this.input = this.body.stream();
    return this.input;
  }

  /** Reads the next non-empty chunk (at most READ_CHUNK bytes), or undefined at the end. */
  read(): Uint8Array | undefined {
    const input = this.hostStream();
    if (input === undefined || this.ended) return undefined;
    for (;;) {
      let chunk: Uint8Array;
      try {
        chunk = input.blockingRead(BigInt(READ_CHUNK));
      } catch (err) {
        if (isStreamClosed(err)) {
          this.ended = true;
          return undefined;
        }
        throw err;
      }
      if (chunk.length > 0) {
        this.pulled++;
        return chunk;
      }
    }
  }

  /** Releases the host stream and body (stream first: it is the body's child). Idempotent. */
  close(): void {
    this.input?.[Symbol.dispose]();
    this.input = undefined;
    const body = this.body;
    this.body = undefined;
    if (body !== undefined) IncomingBody.finish(body)[Symbol.dispose]();
  }
}

/**
 * Builds the Fetch Request for an incoming wasi:http request. Header values are byte strings
 * (see bytes.ts); the URL's host is the request's authority (from the Host header), or
 * "localhost" when the host gave none.
 *
 * @returns the Request and the RequestBody the adapter must close after the response
 */
export function toRequest(incoming: IncomingRequest): { request: Request; body: RequestBody } {
  const method = methodName(incoming.method());
  const url = `${schemeName(incoming.scheme())}://${incoming.authority() || 'localhost'}${incoming.pathWithQuery() ?? '/'}`;
  const fields = incoming.headers();
  const headers = new Headers();
  for (const [name, value] of fields.entries()) headers.append(name, latin1(value));
  fields[Symbol.dispose]();
  const body = new RequestBody(incoming, method !== 'GET' && method !== 'HEAD');
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  if (body.stream !== null) {
    init.body = body.stream;
    init.duplex = 'half';
  }
  const request = new Request(url, init);
  // The engine's Request drops `host` as a forbidden request header (browser rules); Workers code
  // reads it (request.headers.get('host')), so expose the full, ordered list the host sent.
  if (!request.headers.has('host') && headers.has('host')) {
    try {
      Object.defineProperty(request, 'headers', { value: headers, enumerable: true });
    } catch {
      /* keep the engine's headers */
    }
  }
  return { request, body };
}
