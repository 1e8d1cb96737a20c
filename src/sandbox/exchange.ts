/**
 * The sandbox side of one request: reads request body chunks from the body port (blocking with
 * `Atomics.wait`), batches response bytes into messages to the main thread, and applies
 * backpressure both ways through the shared control block (./shared.ts).
 *
 * Runs inside the sandbox thread only. Guest ABI hosts (wasi-http, wagi) sit on top of it.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { BodyMessage, FromSandbox, GuestOutcome, RequestHead, ResponseHead } from './protocol.js';
import {
  ABORTED, BODY_WINDOW_BYTES, FLUSH_BYTES, REQ_PAUSED, REQ_QUEUED, RESP_INFLIGHT, SIGNAL,
} from './shared.js';
import { blockOn } from './blocking.js';

/** Posts a message to the main thread (parentPort.postMessage with a transfer list). */
export type Post = (msg: FromSandbox, transfer?: ArrayBuffer[]) => void;

/** A read from the request body: bytes, the end of the body, nothing yet, or a failure. */
export type ReadResult = Uint8Array | typeof EOF | typeof EMPTY | BodyError;
export const EOF = Symbol('eof');
export const EMPTY = Symbol('empty');
export class BodyError {
  constructor(readonly message: string) {}
}

/** Longest single wait before re-checking the abort flag, ms. */
const WAIT_SLICE_MS = 1000;
/**
 * A guest's flush in the first COALESCE_MS of a request, before its response head went out, waits
 * for the next message (the handler returning, a blocking wait, 64 KiB of body, or a later flush):
 * a small response then crosses threads as one message with its head, body, end and outcome,
 * instead of three. Once the head is out, every flush goes at once (streaming).
 */
const COALESCE_MS = 1;

/** Response chunks from this size on are transferred to the main thread rather than copied, bytes. */
const TRANSFER_BYTES = 4096;

/**
 * A response whose pending body is at most this many bytes when it is flushed travels as a latin1
 * string (FromSandbox `text`), not as byte arrays: no ArrayBuffer to allocate and clone on either
 * side, and node writes a string body together with the response head in one write, bytes.
 */
const TEXT_BYTES = 1024;
/** Up to this size a Uint8Array may live on V8's heap, where reading `.buffer` would move it off, bytes. */
const ON_HEAP_BYTES = 64;

/** Body chunks as a latin1 string, one char per byte (exactly the bytes: not TextDecoder's windows-1252). */
function latin1(chunks: readonly Uint8Array[]): string {
  let s = '';
  for (const c of chunks) {
    s += c.byteLength <= ON_HEAP_BYTES
      ? String.fromCharCode.apply(null, c as unknown as number[])
      : Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1');
  }
  return s;
}

/** Guest output decoder, shared: each decode is whole (no streaming state between calls). */
const UTF8 = new TextDecoder();

export class Exchange {
  readonly head: RequestHead;
  /** Status and headers once the guest has set them (not yet sent while `headSent` is false). */
  private responseHead: ResponseHead | null = null;
  private headSent = false;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private ended = false;
  /** true once the body was finished correctly (end recorded), even if already flushed. */
  completed = false;
  /** Response body bytes the guest has written (for length checks), bytes. */
  written = 0;
  private bodyDone = false;
  private bodyError: string | null = null;
  private partial: Uint8Array | null = null;
  private closed = false;
  private recycling = false;
  /** Why the response body is corrupted (the main thread aborts it), or null. */
  failure: string | null = null;
  /** Set when the response body went over `limits.max_response_body` (the guest is then stopped). */
  responseTooLarge = false;
  /** Set when the guest answered `response-outparam.set(err(…))`. */
  errorResponse: string | null = null;
  private stdout: string[] = [];
  private stderr: string[] = [];
  private logBytes = 0;
  private logDropped = 0;

  /** The request's sequence number in its sandbox (RequestHead.seq), and its bit in ABORTED. */
  private readonly seq: number;
  private readonly abortBit: number;

  constructor(
    head: RequestHead,
    private readonly control: Int32Array,
    private readonly bodyPort: MessagePort,
    private readonly post: Post,
    private readonly maxLogBytes: number,
    /** When the request began (performance.now(), ms): a flush in its first COALESCE_MS waits. */
    private readonly startedAt = performance.now(),
  ) {
    this.head = head;
    this.seq = head.seq ?? 0;
    this.abortBit = head.seq === undefined ? 0 : 1 << (head.seq & 31);
    if (head.bodyLength === 0) this.bodyDone = true;
  }

  /** true once the client went away (the main thread set this request's bit in ABORTED). */
  get aborted(): boolean {
    return (Atomics.load(this.control, ABORTED) & this.abortBit) !== 0;
  }

  /** true once the request is over for the guest (handler returned); every later stream call fails. */
  get isClosed(): boolean {
    return this.closed;
  }

  // ---- request body ---------------------------------------------------------------------------

  /**
   * Reads up to `max` bytes of the request body. With `block` false it never waits (EMPTY when no
   * data is there yet); with `block` true it waits until at least one byte, the end, or a failure.
   */
  read(max: number, block: boolean): ReadResult {
    if (max <= 0) return new Uint8Array(0);
    for (;;) {
      if (this.partial) {
        const p = this.partial;
        if (p.byteLength <= max) {
          this.partial = null;
          return p;
        }
        this.partial = p.subarray(max);
        return p.subarray(0, max);
      }
      if (this.bodyError !== null) return new BodyError(this.bodyError);
      if (this.bodyDone) return EOF;
      if (this.closed) return new BodyError('request is over');
      const seq = Atomics.load(this.control, SIGNAL);
      if (this.takeBodyMessage()) continue;
      if (this.aborted) return new BodyError('client disconnected');
      if (!block) return EMPTY;
      this.flush();
      blockOn(this.control, SIGNAL, seq, WAIT_SLICE_MS);
    }
  }

  /** true when a read would not block (data, end or error available). */
  readReady(): boolean {
    if (this.partial || this.bodyDone || this.bodyError !== null || this.closed || this.aborted) return true;
    return this.takeBodyMessage();
  }

  private takeBodyMessage(): boolean {
    for (;;) {
      const m = receiveMessageOnPort(this.bodyPort);
      if (m === undefined) return false;
      const msg = m.message as BodyMessage;
      if (msg.seq !== this.seq) continue; // leftover of an earlier request
      if (msg.chunk) {
        const left = Atomics.sub(this.control, REQ_QUEUED, msg.chunk.byteLength) - msg.chunk.byteLength;
        if (left < BODY_WINDOW_BYTES / 2 && Atomics.compareExchange(this.control, REQ_PAUSED, 1, 0) === 1) {
          this.post({ t: 'credit', seq: this.seq });
        }
        if (msg.chunk.byteLength > 0) this.partial = msg.chunk;
      }
      if (msg.end) this.bodyDone = true;
      if (msg.error !== undefined) this.bodyError = msg.error;
      if (this.partial || msg.end || msg.error !== undefined) return true;
    }
  }

  // ---- response -------------------------------------------------------------------------------

  /** Records the response head; it is sent with the first flush. Throws when set twice. */
  setHead(head: ResponseHead): void {
    if (this.responseHead) throw new Error('response head already set');
    this.responseHead = head;
  }

  /** Marks the response body corrupted: it will be aborted, never ended cleanly. The first reason wins. */
  fail(reason: string): void {
    this.failure ??= reason;
    this.ended = this.completed = false;
  }

  /** Records that the guest set the outparam to an error instead of a response. */
  setError(description: string): void {
    this.errorResponse = description;
  }

  get hasHead(): boolean {
    return this.responseHead !== null;
  }

  /** Bytes the guest may write now without waiting (the flow-control window minus what is in flight). */
  capacity(): number {
    const inflight = Atomics.load(this.control, RESP_INFLIGHT);
    return Math.max(0, BODY_WINDOW_BYTES - inflight - this.pendingBytes);
  }

  /**
   * Queues response body bytes. Never waits unless the guest ignored `capacity()` and the window
   * is overfull, in which case it waits for room so memory stays bounded. HEAD responses count
   * the bytes but drop them (RFC 9110 §9.3.2).
   */
  write(bytes: Uint8Array): void {
    this.written += bytes.byteLength;
    if (this.head.method === 'HEAD' || bytes.byteLength === 0) return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.byteLength;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    if (Atomics.load(this.control, RESP_INFLIGHT) + this.pendingBytes > BODY_WINDOW_BYTES) this.waitForCapacity();
  }

  /** A guest asked for a flush: send now, or coalesce it (see COALESCE_MS). */
  requestFlush(): void {
    if (this.headSent || performance.now() - this.startedAt >= COALESCE_MS) this.flush();
  }

  /** true when more response bytes are in flight or pending than the window allows. */
  get overWindow(): boolean {
    return Atomics.load(this.control, RESP_INFLIGHT) + this.pendingBytes >= BODY_WINDOW_BYTES;
  }

  /** Blocks until the window has room (or the request is aborted). Flushes first. */
  waitForCapacity(): void {
    this.flush();
    for (;;) {
      if (this.aborted || this.closed) return;
      const seq = Atomics.load(this.control, SIGNAL);
      if (Atomics.load(this.control, RESP_INFLIGHT) < BODY_WINDOW_BYTES) return;
      blockOn(this.control, SIGNAL, seq, WAIT_SLICE_MS);
    }
  }

  /** Marks the body complete; the end travels with the next flush. */
  end(): void {
    if (this.failure === null) this.ended = this.completed = true;
  }

  /** Sends what is pending (head, body bytes, end) to the main thread, as one message. */
  flush(done?: GuestOutcome): void {
    if (!this.responseHead && !done) return;
    const msg: FromSandbox & { t: 'res' } = { t: 'res', seq: this.seq };
    const transfer: ArrayBuffer[] = [];
    if (this.responseHead && !this.headSent) {
      msg.head = this.responseHead;
      this.headSent = true;
    }
    if (this.pendingBytes > 0) {
      if (this.pendingBytes <= TEXT_BYTES) msg.text = latin1(this.pending);
      else {
        msg.body = this.pending;
        for (const c of this.pending) {
          // Only big chunks are worth transferring; reading `.buffer` of a small on-heap array
          // would also move it off the heap for nothing (copying it is cheaper).
          if (c.byteLength >= TRANSFER_BYTES && c.byteOffset === 0 && c.byteLength === c.buffer.byteLength && c.buffer instanceof ArrayBuffer) transfer.push(c.buffer);
        }
      }
      Atomics.add(this.control, RESP_INFLIGHT, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    if (this.ended) {
      msg.end = true;
      this.ended = false;
    }
    if (done) {
      msg.done = done;
      if (this.recycling) msg.recycling = true;
      if (this.logBytes > 0 || this.logDropped > 0) {
        msg.log = { stdout: this.stdout.join(''), stderr: this.stderr.join(''), dropped: this.logDropped };
      }
    }
    if (msg.head || msg.body || msg.text !== undefined || msg.end || msg.done) this.post(msg, transfer);
  }

  /** Ends the request for the guest: flushes everything with the outcome; later stream calls fail. */
  close(outcome: GuestOutcome, recycling = false): void {
    if (outcome.kind !== 'ok' && !this.headSent) {
      // Nothing reached the client yet: drop the half response so the main thread can answer 5xx.
      this.responseHead = null;
      this.pending = [];
      this.pendingBytes = 0;
      this.ended = false;
    }
    this.recycling = recycling;
    this.flush(outcome);
    this.closed = true;
  }

  // ---- guest output ---------------------------------------------------------------------------

  /** Captures guest stdout/stderr for the request's log, up to maxLogBytes; the rest is counted and dropped. */
  log(stream: 'stdout' | 'stderr', bytes: Uint8Array): void {
    const room = this.maxLogBytes - this.logBytes;
    const take = Math.min(room, bytes.byteLength);
    if (take > 0) {
      const text = UTF8.decode(bytes.subarray(0, take));
      (stream === 'stdout' ? this.stdout : this.stderr).push(text);
      this.logBytes += take;
    }
    this.logDropped += bytes.byteLength - take;
  }

  /** Blocks the sandbox thread up to `ms` (flushing first), waking early on any signal. */
  sleep(ms: number): void {
    this.flush();
    const seq = Atomics.load(this.control, SIGNAL);
    blockOn(this.control, SIGNAL, seq, Math.max(0, ms));
  }
}
