/**
 * Live logs for `isola tail`: an in-process publish/subscribe of log records per function.
 *
 * - One `TailChannel` per function key (`<tenant>/<name>` under `isola serve`, the name under
 *   `isola dev`), made once and kept on the deployment, so the hot path asks `channel.active` (a
 *   field read) before building anything: nothing is allocated when nobody tails.
 * - A record is serialised once (one Server-Sent Events frame) and the same string goes to every
 *   subscriber.
 * - A subscriber never slows the server: each has a bounded buffer (the socket's pending bytes);
 *   when a client reads too slowly, records are dropped and counted, and the client gets a
 *   `dropped` event with the count once it catches up.
 *
 * Who may subscribe to which key is decided by the admin API (a tenant only to its own functions).
 */

/** Where a subscriber's frames go (node's ServerResponse satisfies it). */
export interface TailSink {
  write(chunk: string): boolean;
  /** Bytes accepted by `write` but not yet handed to the socket. */
  readonly writableLength: number;
  end(): void;
}

/** Most bytes queued for one subscriber before its records are dropped. */
export const TAIL_BUFFER_BYTES = 256 * 1024;

/** One SSE frame: `event: <type>` and one `data:` line of JSON. */
function frame(type: string, json: string): string {
  return `event: ${type}\ndata: ${json}\n\n`;
}

class Subscriber {
  dropped = 0;
  constructor(readonly sink: TailSink, private readonly limit: number, private readonly onDrop: (n: number) => void) {}

  send(text: string): void {
    const sink = this.sink;
    if (sink.writableLength + text.length > this.limit) {
      this.dropped++;
      this.onDrop(1);
      return;
    }
    if (this.dropped > 0) {
      sink.write(frame('dropped', `{"dropped":${this.dropped}}`));
      this.dropped = 0;
    }
    sink.write(text);
  }
}

/** The subscribers of one function's logs. */
export class TailChannel {
  /** True while someone subscribes: check it before building a record. */
  active = false;
  private readonly subs = new Set<Subscriber>();

  constructor(readonly key: string, private readonly hub: TailHub) {}

  /**
   * Sends `record` (a plain object; serialised once) as an SSE event of type `type` to every
   * subscriber. Cheap no-op when nobody subscribes.
   */
  publish(type: string, record: object): void {
    if (!this.active) return;
    const text = frame(type, JSON.stringify(record));
    for (const s of this.subs) s.send(text);
  }

  /** @internal */
  add(s: Subscriber): void {
    this.subs.add(s);
    this.active = true;
  }

  /** @internal */
  delete(s: Subscriber): void {
    this.subs.delete(s);
    this.active = this.subs.size > 0;
  }

  /** How many subscribers are connected. */
  get size(): number {
    return this.subs.size;
  }

  /** @internal */
  get members(): Iterable<Subscriber> {
    return this.subs;
  }
}

/** Every function's channel, and the counts telemetry exports. */
export class TailHub {
  private readonly channels = new Map<string, TailChannel>();
  /** Records dropped because a subscriber read too slowly, since start. */
  droppedRecords = 0;

  private heartbeatTimer: NodeJS.Timeout | null = null;

  /**
   * @param bufferBytes per-subscriber bound (default TAIL_BUFFER_BYTES)
   * @param heartbeatMs how often idle streams get an SSE comment while anyone subscribes (default 15 s)
   */
  constructor(private readonly bufferBytes = TAIL_BUFFER_BYTES, private readonly heartbeatMs = 15_000) {}

  /**
   * The channel of a function key, created on first use and kept for the process's life (one small
   * object per function key ever deployed), so deployments can hold it.
   */
  channel(key: string): TailChannel {
    let c = this.channels.get(key);
    if (!c) {
      c = new TailChannel(key, this);
      this.channels.set(key, c);
    }
    return c;
  }

  /**
   * Subscribes `sink` to `key`'s records. Returns the function that unsubscribes (call it when the
   * client disconnects). Sends an initial comment so that clients see the stream is open.
   */
  subscribe(key: string, sink: TailSink): () => void {
    const channel = this.channel(key);
    const sub = new Subscriber(sink, this.bufferBytes, (n) => (this.droppedRecords += n));
    channel.add(sub);
    sink.write(`: tailing ${key}\n\n`);
    this.heartbeatTimer ??= setInterval(() => this.heartbeat(), this.heartbeatMs).unref();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      channel.delete(sub);
      if (this.subscribers === 0 && this.heartbeatTimer) {
        clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = null;
      }
    };
  }

  /** Connected subscribers, over every function. */
  get subscribers(): number {
    let n = 0;
    for (const c of this.channels.values()) n += c.size;
    return n;
  }

  /** Writes an SSE comment to every subscriber (keeps idle connections and proxies from timing out). */
  heartbeat(): void {
    for (const c of this.channels.values()) for (const s of c.members) if (s.sink.writableLength < this.bufferBytes) s.sink.write(': ping\n\n');
  }

  /** Ends every subscriber's stream (server shutdown), so that draining does not wait for them. */
  closeAll(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    for (const c of this.channels.values()) {
      for (const s of [...c.members]) {
        c.delete(s);
        s.sink.end();
      }
    }
  }
}
