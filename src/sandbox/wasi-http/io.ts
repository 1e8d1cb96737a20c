/**
 * `wasi:io` (error, poll, streams) for the sandbox. Streams are synchronous for the guest: a
 * blocking call blocks only this sandbox thread (Atomics.wait inside ../exchange.ts), never the
 * main thread. Stream errors are returned as the WIT `stream-error` variant (`closed`, or
 * `last-operation-failed` carrying an `error` resource), per wasi:io 0.2 streams.wit.
 */
import { BodyError, EMPTY, EOF, type Exchange } from '../exchange.js';
import { blockOn } from '../blocking.js';

/** `wasi:io/error.error`: an opaque error with a debug string. */
export class IoError {
  constructor(readonly message: string) {}
  toDebugString(): string {
    return this.message;
  }
}

type StreamError = { tag: 'closed' } | { tag: 'last-operation-failed'; val: IoError };
type StreamResult<T> = T | { tag: 'err'; val: StreamError };
const CLOSED: { tag: 'err'; val: StreamError } = { tag: 'err', val: { tag: 'closed' } };
const failed = (message: string): { tag: 'err'; val: StreamError } => ({
  tag: 'err',
  val: { tag: 'last-operation-failed', val: new IoError(message) },
});

/** `wasi:io/poll.pollable`: readiness is a predicate; blocking waits on the exchange's signal word. */
export class Pollable {
  constructor(
    private readonly isReady: () => boolean,
    /** Absolute monotonic deadline in ns for clock pollables; null for I/O pollables. */
    readonly deadlineNs: bigint | null,
    private readonly exchange: Exchange | null,
  ) {}

  ready(): boolean {
    return this.isReady();
  }

  block(): void {
    poll([this]);
  }

  /** The exchange whose signal wakes this pollable, if any. */
  get source(): Exchange | null {
    return this.exchange;
  }
}

/** Current monotonic time, ns. */
export const nowNs = (): bigint => process.hrtime.bigint();

/**
 * `wasi:io/poll.poll`: returns the indices of the ready pollables, waiting until at least one is
 * ready. Traps (throws) on an empty list, per the spec. Waits on the exchange's signal word so that
 * request data, response credit and aborts wake it; clock deadlines bound each wait.
 */
export function poll(list: Pollable[]): Uint32Array {
  if (list.length === 0) throw new Error('poll: empty list of pollables');
  for (;;) {
    const ready: number[] = [];
    let deadline: bigint | null = null;
    let exchange: Exchange | null = null;
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (p.ready()) ready.push(i);
      if (p.deadlineNs !== null && (deadline === null || p.deadlineNs < deadline)) deadline = p.deadlineNs;
      exchange ??= p.source;
    }
    if (ready.length > 0) return Uint32Array.from(ready);
    const waitMs = deadline === null ? 1000 : Math.max(0, Number(deadline - nowNs()) / 1e6);
    if (exchange) exchange.sleep(waitMs);
    else blockOn(SLEEPER, 0, 0, waitMs);
  }
}
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/** The request body as a `wasi:io/streams.input-stream`. Also used for stdin (a body that is always at EOF). */
export class InputStream {
  constructor(private readonly exchange: Exchange | null) {}

  read(len: bigint): StreamResult<Uint8Array> {
    return this.#read(len, false);
  }

  blockingRead(len: bigint): StreamResult<Uint8Array> {
    return this.#read(len, true);
  }

  skip(len: bigint): StreamResult<bigint> {
    const r = this.#read(len, false);
    return r instanceof Uint8Array ? BigInt(r.byteLength) : r;
  }

  blockingSkip(len: bigint): StreamResult<bigint> {
    const r = this.#read(len, true);
    return r instanceof Uint8Array ? BigInt(r.byteLength) : r;
  }

  subscribe(): Pollable {
    const ex = this.exchange;
    return new Pollable(() => (ex ? ex.readReady() : true), null, ex);
  }

  #read(len: bigint, block: boolean): StreamResult<Uint8Array> {
    if (!this.exchange) return CLOSED;
    const max = len > 0x7fffffffn ? 0x7fffffff : Number(len);
    const r = this.exchange.read(max, block);
    if (r === EOF) return CLOSED;
    if (r === EMPTY) return new Uint8Array(0);
    if (r instanceof BodyError) return failed(r.message);
    return r;
  }
}

/** Where an output stream's bytes go: the response body, or a log capture (stdout/stderr). */
export interface OutputSink {
  /** Bytes writable now without waiting. */
  capacity(): number;
  /** Takes the bytes (may wait if the guest ignored capacity); returns an error message on failure. */
  write(bytes: Uint8Array): string | null;
  /** Makes everything written so far travel (may wait); returns an error message on failure. */
  flush(block: boolean): string | null;
  /** Null while open, else why it is closed. */
  closedReason(): string | null;
  readonly exchange: Exchange | null;
}

/** `wasi:io/streams.output-stream` over an OutputSink. */
export class OutputStream {
  constructor(private readonly sink: OutputSink) {}

  checkWrite(): StreamResult<bigint> {
    const closed = this.sink.closedReason();
    if (closed !== null) return failed(closed);
    return BigInt(this.sink.capacity());
  }

  write(contents: Uint8Array): StreamResult<undefined> {
    const closed = this.sink.closedReason();
    if (closed !== null) return failed(closed);
    const err = this.sink.write(contents);
    return err === null ? undefined : failed(err);
  }

  blockingWriteAndFlush(contents: Uint8Array): StreamResult<undefined> {
    const r = this.write(contents);
    if (r !== undefined) return r;
    return this.blockingFlush();
  }

  flush(): StreamResult<undefined> {
    const closed = this.sink.closedReason();
    if (closed !== null) return failed(closed);
    const err = this.sink.flush(false);
    return err === null ? undefined : failed(err);
  }

  blockingFlush(): StreamResult<undefined> {
    const closed = this.sink.closedReason();
    if (closed !== null) return failed(closed);
    const err = this.sink.flush(true);
    return err === null ? undefined : failed(err);
  }

  subscribe(): Pollable {
    const sink = this.sink;
    return new Pollable(() => sink.closedReason() !== null || sink.capacity() > 0, null, sink.exchange);
  }

  writeZeroes(len: bigint): StreamResult<undefined> {
    return this.write(new Uint8Array(Number(len)));
  }

  blockingWriteZeroesAndFlush(len: bigint): StreamResult<undefined> {
    return this.blockingWriteAndFlush(new Uint8Array(Number(len)));
  }

  splice(src: InputStream, len: bigint): StreamResult<bigint> {
    return this.#splice(src, len, false);
  }

  blockingSplice(src: InputStream, len: bigint): StreamResult<bigint> {
    return this.#splice(src, len, true);
  }

  #splice(src: InputStream, len: bigint, block: boolean): StreamResult<bigint> {
    const cap = BigInt(Math.max(1, this.sink.capacity()));
    const r = block ? src.blockingRead(len < cap ? len : cap) : src.read(len < cap ? len : cap);
    if (!(r instanceof Uint8Array)) return r;
    const w = this.write(r);
    return w === undefined ? BigInt(r.byteLength) : w;
  }
}
