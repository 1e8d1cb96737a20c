/**
 * `wasi:http/types` resources for the incoming-handler side (wasi:http 0.2.x types.wit), plus the
 * outgoing-request resources, which exist but are denied (`HTTP-request-denied`) until outbound
 * HTTP lands.
 *
 * Rules enforced here (each has a test in test/http-correctness.test.ts):
 * - `set-status-code` accepts 100–599 only (RFC 9110 §15); anything else returns the WIT error.
 * - `response-outparam.set` may be called once; the second call traps.
 * - an `outgoing-body` whose response declared `content-length` must be written exactly that many
 *   bytes: a write past it fails, and `finish` with fewer fails (wasi:http types.wit `finish`);
 *   the main thread aborts such a response rather than ending it cleanly (RFC 9112 §6.3).
 * - an `outgoing-body` dropped without `finish` marks the response corrupted (types.wit).
 */
import type { Exchange } from '../exchange.js';
import { Fields, latin1 } from './fields.js';
import { InputStream, IoError, OutputStream, Pollable, type OutputSink } from './io.js';

export type Method =
  | { tag: 'get' } | { tag: 'head' } | { tag: 'post' } | { tag: 'put' } | { tag: 'delete' }
  | { tag: 'connect' } | { tag: 'options' } | { tag: 'trace' } | { tag: 'patch' } | { tag: 'other'; val: string };

/** WIT `error-code` (only the cases isola produces are spelled out). */
export type ErrorCode = { tag: string; val?: unknown };

const METHODS: Record<string, Method> = {
  GET: { tag: 'get' }, HEAD: { tag: 'head' }, POST: { tag: 'post' }, PUT: { tag: 'put' },
  DELETE: { tag: 'delete' }, CONNECT: { tag: 'connect' }, OPTIONS: { tag: 'options' },
  TRACE: { tag: 'trace' }, PATCH: { tag: 'patch' },
};

type Err<E = undefined> = { tag: 'err'; val: E };
const ERR: Err = { tag: 'err', val: undefined };

export class IncomingRequest {
  #consumed = false;
  #headers: Fields | null = null;
  constructor(readonly exchange: Exchange) {}

  method(): Method {
    return METHODS[this.exchange.head.method] ?? { tag: 'other', val: this.exchange.head.method };
  }
  pathWithQuery(): string | undefined {
    return this.exchange.head.pathWithQuery;
  }
  scheme(): { tag: 'HTTP' } | { tag: 'HTTPS' } {
    return this.exchange.head.scheme === 'https' ? { tag: 'HTTPS' } : { tag: 'HTTP' };
  }
  authority(): string | undefined {
    return this.exchange.head.authority || undefined;
  }
  headers(): Fields {
    return (this.#headers ??= Fields.fromRaw(this.exchange.head.rawHeaders));
  }
  consume(): IncomingBody | Err {
    if (this.#consumed) return ERR;
    this.#consumed = true;
    return new IncomingBody(this.exchange);
  }
}

export class IncomingBody {
  #streamTaken = false;
  constructor(private readonly exchange: Exchange) {}

  stream(): InputStream | Err {
    if (this.#streamTaken) return ERR;
    this.#streamTaken = true;
    return new InputStream(this.exchange);
  }
  static finish(_body: IncomingBody): FutureTrailers {
    return new FutureTrailers();
  }
}

/** Trailers of an incoming body: isola's HTTP/1.1 edge passes none, so this is always ready with none. */
export class FutureTrailers {
  #taken = false;
  subscribe(): Pollable {
    return new Pollable(() => true, null, null);
  }
  get(): undefined | { tag: 'ok'; val: { tag: 'ok'; val: undefined } } | Err {
    if (this.#taken) return ERR;
    this.#taken = true;
    return { tag: 'ok', val: { tag: 'ok', val: undefined } };
  }
}

export class OutgoingResponse {
  status = 200;
  #bodyTaken = false;
  readonly fields: Fields;
  constructor(headers: Fields) {
    this.fields = headers.freeze();
  }
  statusCode(): number {
    return this.status;
  }
  setStatusCode(code: number): undefined | Err {
    if (!Number.isInteger(code) || code < 100 || code > 599) return ERR;
    this.status = code;
    return undefined;
  }
  headers(): Fields {
    return this.fields;
  }
  body(): OutgoingBody | Err {
    if (this.#bodyTaken) return ERR;
    this.#bodyTaken = true;
    return (this.outgoingBody = new OutgoingBody(this));
  }
  /** The body taken with body(), if any (so the outparam can bind it to the exchange when set). */
  outgoingBody: OutgoingBody | null = null;
}

/** Parses a content-length header the guest set: a single non-negative integer, else null (none/invalid). */
function declaredLength(fields: Fields): number | null | 'invalid' {
  const values = fields.get('content-length');
  if (values.length === 0) return null;
  const text = latin1(values[0]!).trim();
  for (let i = 1; i < values.length; i++) if (latin1(values[i]!).trim() !== text) return 'invalid';
  if (!/^\d{1,15}$/.test(text)) return 'invalid';
  return Number(text);
}

export class OutgoingBody {
  exchange: Exchange | null = null;
  #streamTaken = false;
  #finished = false;
  #dropped = false;
  /** Bytes written before the response was handed to the outparam (sent once it is). */
  #early: Uint8Array[] = [];
  #written = 0;
  readonly #declared: number | null | 'invalid';
  constructor(readonly response: OutgoingResponse) {
    this.#declared = declaredLength(response.fields);
  }

  /** Called when the response is handed to the outparam: earlier writes move to the exchange. */
  bind(exchange: Exchange): void {
    this.exchange = exchange;
    for (const c of this.#early) exchange.write(c);
    this.#early = [];
    if (this.#finished) {
      const problem = this.#lengthProblem();
      if (problem) exchange.fail(problem);
      else exchange.end();
    }
  }

  /**
   * Why the body breaks its content-length, or null. A response to HEAD, and a 204 or 304, carry
   * the length of a body they do not send (RFC 9110 §8.6, §9.3.2, §15.4.5), so they are not checked;
   * before the response is handed over the method is not known yet and bind() checks again.
   */
  #lengthProblem(): string | null {
    if (typeof this.#declared !== 'number' || this.#declared === this.#written) return null;
    const status = this.response.status;
    if (this.exchange?.head.method === 'HEAD' || status === 204 || status === 304) return null;
    return `content-length is ${this.#declared} but ${this.#written} bytes were written`;
  }

  write(): OutputStream | Err {
    if (this.#streamTaken) return ERR;
    this.#streamTaken = true;
    return new OutputStream(new BodySink(this));
  }

  static finish(body: OutgoingBody, _trailers: Fields | undefined): undefined | Err<ErrorCode> {
    return body.#finish();
  }

  #finish(): undefined | Err<ErrorCode> {
    if (this.#finished) return { tag: 'err', val: { tag: 'internal-error', val: 'body already finished' } };
    this.#finished = true;
    if (!this.exchange) return undefined; // checked when the response is handed over (bind)
    const problem = this.#lengthProblem();
    if (problem) {
      this.exchange.fail(problem);
      return { tag: 'err', val: { tag: 'HTTP-response-body-size', val: BigInt(this.#written) } };
    }
    this.exchange.end();
    return undefined;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** true when the guest dropped the body without finishing it (the response is corrupted). */
  get droppedUnfinished(): boolean {
    return this.#dropped;
  }

  [Symbol.dispose](): void {
    if (!this.#finished) {
      this.#dropped = true;
      this.exchange?.fail('outgoing-body dropped without finish');
    }
  }

  /** Takes body bytes; returns why not, or null. */
  take(bytes: Uint8Array): string | null {
    if (this.#finished) return 'body finished';
    if (typeof this.#declared === 'number' && this.#written + bytes.byteLength > this.#declared && this.exchange?.head.method !== 'HEAD') {
      return `write past content-length ${this.#declared}`;
    }
    if (this.#written + bytes.byteLength > maxResponseBodyBytes) {
      const msg = `response body over the ${maxResponseBodyBytes}-byte limit (limits.max_response_body)`;
      this.exchange?.fail(msg);
      if (this.exchange) this.exchange.responseTooLarge = true;
      return msg;
    }
    this.#written += bytes.byteLength;
    if (this.exchange) this.exchange.write(bytes);
    else this.#early.push(bytes);
    return null;
  }
}

/** The output-stream side of an outgoing body. */
class BodySink implements OutputSink {
  constructor(private readonly body: OutgoingBody) {}
  get exchange(): Exchange | null {
    return this.body.exchange;
  }
  capacity(): number {
    const ex = this.body.exchange;
    return ex ? ex.capacity() : 1 << 16;
  }
  write(bytes: Uint8Array): string | null {
    return this.body.take(bytes);
  }
  flush(block: boolean): string | null {
    const ex = this.body.exchange;
    // Both flushes hand the bytes to the main thread (wasi:io: flush "requests a flush"; a flush
    // early in a request may ride with the next message, see Exchange.requestFlush); the blocking
    // one also waits while the window is full.
    if (!ex) return this.closedReason();
    if (block && ex.overWindow) ex.waitForCapacity();
    else ex.requestFlush();
    return this.closedReason();
  }
  closedReason(): string | null {
    if (this.body.finished) return 'body finished';
    const ex = this.body.exchange;
    if (!ex) return null;
    if (ex.isClosed) return 'request is over';
    if (ex.aborted) return 'client disconnected';
    return null;
  }
}

/** Largest response body, bytes; set by the sandbox at start from the function's limits. */
let maxResponseBodyBytes = Number.MAX_SAFE_INTEGER;
export function setMaxResponseBodyBytes(n: number): void {
  maxResponseBodyBytes = n;
}

export class ResponseOutparam {
  #set = false;
  constructor(readonly exchange: Exchange) {}

  static set(param: ResponseOutparam, response: { tag: 'ok'; val: OutgoingResponse } | { tag: 'err'; val: ErrorCode }): void {
    if (param.#set) throw new Error('response-outparam.set called twice');
    param.#set = true;
    const ex = param.exchange;
    if (response.tag === 'err') {
      ex.setError(describeErrorCode(response.val));
      return;
    }
    const res = response.val;
    ex.setHead({ status: res.status, headers: res.fields.toRaw() });
    res.outgoingBody?.bind(ex);
  }

  sendInformational(_status: number, _headers: Fields): undefined | Err<ErrorCode> {
    return { tag: 'err', val: { tag: 'internal-error', val: 'informational responses are not supported' } };
  }
}

/** A readable description of a WIT error-code for logs and 5xx bodies. */
export function describeErrorCode(code: ErrorCode): string {
  if (code.val === undefined || code.val === null) return code.tag;
  return `${code.tag}: ${typeof code.val === 'object' ? JSON.stringify(code.val, (_k, v) => (typeof v === 'bigint' ? String(v) : v)) : String(code.val)}`;
}

/** `wasi:http/types.http-error-code`: isola's I/O errors carry no HTTP error code. */
export function httpErrorCode(_err: IoError): undefined {
  return undefined;
}

const DENIED: Err<ErrorCode> = { tag: 'err', val: { tag: 'HTTP-request-denied' } };

/** Outbound HTTP is denied for now: the resources exist so guests link, and `handle` says denied. */
export class OutgoingRequest {
  constructor(readonly fields: Fields) {}
  body(): Err { return ERR; }
  method(): Method { return { tag: 'get' }; }
  setMethod(): Err { return ERR; }
  pathWithQuery(): undefined { return undefined; }
  setPathWithQuery(): Err { return ERR; }
  scheme(): undefined { return undefined; }
  setScheme(): Err { return ERR; }
  authority(): undefined { return undefined; }
  setAuthority(): Err { return ERR; }
  headers(): Fields { return this.fields; }
}
export class RequestOptions {
  connectTimeout(): undefined { return undefined; }
  setConnectTimeout(): Err { return ERR; }
  firstByteTimeout(): undefined { return undefined; }
  setFirstByteTimeout(): Err { return ERR; }
  betweenBytesTimeout(): undefined { return undefined; }
  setBetweenBytesTimeout(): Err { return ERR; }
}
export class IncomingResponse {
  status(): number { return 0; }
  headers(): Fields { return new Fields().freeze(); }
  consume(): Err { return ERR; }
}
export class FutureIncomingResponse {
  subscribe(): Pollable { return new Pollable(() => true, null, null); }
  get(): undefined { return undefined; }
}
/** `wasi:http/outgoing-handler.handle`: always `HTTP-request-denied` (outbound HTTP is not offered yet). */
export function outgoingHandle(): Err<ErrorCode> {
  return DENIED;
}
