/**
 * The main-thread side of a sandbox: starts the worker thread, hands it requests, pumps the
 * request body into it and its response out to the client, with backpressure both ways, and
 * turns every way a guest can fail into the right HTTP outcome (DESIGN.md decision 5):
 * before the response head, a 5xx JSON error with the request id; after it, an aborted response
 * (the socket is destroyed, never a clean end, per RFC 9112 §6.3 / §8).
 *
 * The main thread never runs guest code. A sandbox serves one request at a time; the pool may
 * queue short bodyless requests on a busy sandbox (pipelining, ../pool/policy.ts `mayPipeline`),
 * which then serves them in order. Requests are posted once per event-loop turn per sandbox, so
 * requests parsed in one turn cross to the thread in one message (one wake-up).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { IsolaError, type ErrorCode } from '../errors.js';
import { packRequests, unpackResponse, type BodyMessage, type FromSandbox, type GuestOutcome, type GuestSettings, type RequestHead, type SandboxInit, type WireResponse } from './protocol.js';
import { ThreadClock } from './cpu.js';
import {
  ABORTED, BLOCKED, BODY_WINDOW_BYTES, CPU_BASE, CURRENT, REQ_PAUSED, REQ_QUEUED, RESP_INFLIGHT, WALL_BASE, WITHDRAWN, createControl, signal, wallMicros, wideSlots,
} from './shared.js';

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../../dist/sandbox/worker.js' : './worker.js', import.meta.url);

/** What a sandbox is started with: the prepared artifact plus the function's settings. */
export interface SandboxSpec extends GuestSettings {
  /** Compiled core modules, or null until first needed (see `compile`). */
  modules: Record<string, WebAssembly.Module> | null;
  /** Compiles the modules (called when the first sandbox of the function is made). */
  compile?: () => Promise<Record<string, WebAssembly.Module>>;
}

/** Per-request limits the main thread enforces. */
export interface RunLimits {
  /** Wall-clock deadline, ms: past it the worker is terminated (504 before the head). */
  timeoutMs: number;
  /** CPU-time limit, ms of the sandbox thread's CPU: past it the worker is terminated (503 before the head). */
  cpuMs: number;
  /** Largest request body, bytes: larger gets 413 (before the head) and the guest's read fails. */
  maxRequestBodyBytes: number;
}

/** How a request ended, for the access log and the pool. */
export interface RunResult {
  status: number;
  /**
   * ok | a GuestOutcome kind | timeout | cpu | memory | crashed | client-abort | body-too-large; or
   * `requeue`: the sandbox died (another request's limit, a crash) before this request's response
   * began, so nothing reached the client and the caller serves it again on another sandbox.
   */
  outcome: string;
  message?: string;
  /** The error code of a failure (ERR_FUEL_LIMIT, ERR_CPU_LIMIT, …), when there is one. */
  code?: string;
  requestBytes: number;
  responseBytes: number;
  /** The sandbox can take another request (false: the pool must discard it). */
  reusable: boolean;
  /** The sandbox is making a fresh instance; it becomes idle again on its own ('ready'). */
  recycling?: boolean;
  /** Guest output captured during the request. */
  log?: { stdout: string; stderr: string; dropped: number };
  /** CPU time of the sandbox thread for this request, ns (at least up to the limit when stopped for CPU). */
  cpuNs: number;
  /** Wall time the guest spent blocked in host calls (waiting on the client, timers, backpressure), ms; 0 when unknown. */
  blockedMs: number;
  /** Fuel used, for metered functions. */
  fuel?: number;
}

/**
 * A sandbox's life: `spawning` (thread starting) → `blank` (no function) → `binding` (instantiating
 * its function) → `idle` ⇄ `busy` → (`recycling`: a fresh instance is being made after a trap, an
 * exit, or the reuse policy) → `idle` … → `dead` (terminated or crashed; never comes back).
 */
export type SandboxState = 'spawning' | 'blank' | 'binding' | 'idle' | 'busy' | 'recycling' | 'dead';

/** Status and error code for each way a guest can fail before sending its head. */
const FAILURE_STATUS: Record<string, [number, ErrorCode]> = {
  trap: [500, 'ERR_GUEST_TRAP'],
  exit: [500, 'ERR_GUEST_EXIT'],
  'no-response': [502, 'ERR_GUEST_NO_RESPONSE'],
  'error-response': [502, 'ERR_GUEST_ERROR_RESPONSE'],
  'bad-response': [502, 'ERR_GUEST_BAD_RESPONSE'],
  'unfinished-body': [502, 'ERR_GUEST_BAD_RESPONSE'],
  crashed: [500, 'ERR_SANDBOX_CRASHED'],
  timeout: [504, 'ERR_WALL_TIMEOUT'],
  cpu: [503, 'ERR_CPU_LIMIT'],
  memory: [503, 'ERR_MEMORY_LIMIT'],
  'body-too-large': [413, 'ERR_REQUEST_BODY_TOO_LARGE'],
};

/** The content-length in flat header lines, or -1 (absent, or not a plain number). */
function contentLengthOf(headers: string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === 'content-length') {
      const n = Number(headers[i + 1]);
      return Number.isSafeInteger(n) && n >= 0 ? n : -1;
    }
  }
  return -1;
}

/** true when flat header lines [name, value, …] have a field named `name` (lower-case), any case. */
function hasField(headers: string[], name: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === name) return true;
  return false;
}

/** Bytes in a list of body chunks. */
function byteLength(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  return n;
}

/** Body bytes a 'res' message carries, as chunks or as a latin1 string (one char per byte). */
function bodyBytes(msg: { body?: readonly Uint8Array[]; text?: string }): number {
  return msg.text !== undefined ? msg.text.length : msg.body ? byteLength(msg.body) : 0;
}

/**
 * true when isola may add a Content-Length to a guest's response: not to a HEAD request (its body
 * bytes are dropped in the sandbox, so their count is unknown here) nor to a 1xx, 204 or 304
 * response (RFC 9110 §8.6).
 */
function mayDeclareLength(status: number, method: string): boolean {
  return method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304;
}

/** Writes isola's JSON error body (`{error:{code,message,request_id}}`) as a complete response. */
export function sendError(res: ServerResponse, status: number, code: ErrorCode, message: string, requestId: string, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy(); // too late for a clean error: abort
    return;
  }
  const body = JSON.stringify(new IsolaError(code, message).toJSON(requestId));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
    ...extra,
  });
  res.end(body);
}

let nextSandboxId = 1;
/** How often a sandbox with queued requests looks whether the one it runs has run long, ms. */
const GUARD_MS = 5;

export class Sandbox {
  readonly id = nextSandboxId++;
  /** The function version it is bound to (null while blank). */
  spec: SandboxSpec | null = null;
  state: SandboxState = 'spawning';
  /** Requests served by the current instance (for the reuse policy). */
  served = 0;
  /** performance.now() when it last became idle (for idle and LRU eviction). */
  idleSince = performance.now();
  /** Memory it last reported: JS heap + linear memories, bytes. */
  memory = 0;
  /** The worker thread's Linux tid (0 when unknown). */
  tid = 0;
  private clock_: ThreadClock | null = null;
  private readonly worker: Worker;
  private readonly control = createControl();
  /** The control block's i64 slots (CPU_BASE, WALL_BASE). */
  private readonly slots = wideSlots(this.control);
  private readonly bodyPort: MessagePort;
  private readonly guestPort: MessagePort;
  /** Requests posted and not yet done, oldest first (more than one only when pipelined). */
  private readonly runs: ActiveRun[] = [];
  /** The last request sequence number given out (RequestHead.seq). */
  private seq = 0;
  /** Requests waiting for this event-loop turn's post (see `run`). */
  private outbox: Array<{ head: RequestHead; recycle: boolean }> = [];
  /** The watchdog for the limits of whichever request the thread is running (see `watchdog`). */
  private watch: NodeJS.Timeout | null = null;
  /** Looks for a long request while others are queued behind it (see `guard`). */
  private guardTimer: NodeJS.Timeout | null = null;
  /**
   * Running time (wall and CPU) past which the request this sandbox runs counts as long, ms: the
   * requests queued behind it are then withdrawn and served elsewhere. Set by the pool
   * (policy.longRunBound for the function).
   */
  longRunMs = Infinity;
  private waiting: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  private deathHandlers: Array<() => void> = [];
  /** Called when a recycling sandbox is ready again. */
  onReady: ((sb: Sandbox) => void) | null = null;

  private constructor(maxHeapMb?: number) {
    const channel = new MessageChannel();
    this.bodyPort = channel.port1;
    this.guestPort = channel.port2;
    this.worker = new Worker(WORKER_URL, {
      stdout: true,
      stderr: true,
      resourceLimits: maxHeapMb ? { maxOldGenerationSizeMb: maxHeapMb } : undefined,
    });
    // Anything the worker's JS prints (not the guest: guest output is captured per request) is drained, never shown.
    this.worker.stdout.resume();
    this.worker.stderr.resume();
    this.worker.on('message', (msg: FromSandbox | WireResponse) => this.onMessage(msg));
    this.worker.on('error', (err) => {
      const oom = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.died(oom ? 'the sandbox ran out of JS heap ([sandboxes] heap)' : `sandbox error: ${err.message}`, oom);
    });
    this.worker.on('exit', () => this.died('sandbox exited'));
  }

  private onMessage(wire: FromSandbox | WireResponse): void {
    const msg = Array.isArray(wire) ? unpackResponse(wire) : wire;
    switch (msg.t) {
      case 'blank':
        this.memory = msg.memory;
        this.tid = msg.tid;
        this.state = 'blank';
        this.settle();
        return;
      case 'batch':
        for (const m of msg.msgs) this.onMessage(m);
        return;
      case 'ready':
        this.memory = msg.memory;
        // A fresh instance; pipelined requests already posted will be its first.
        this.served = this.runs.length;
        if (this.state === 'binding' || this.state === 'recycling') {
          const recycled = this.state === 'recycling';
          this.state = 'idle';
          this.idleSince = performance.now();
          this.settle();
          if (recycled) this.onReady?.(this);
        }
        return;
      case 'init-error': {
        const err = new IsolaError(msg.code as ErrorCode, `cannot instantiate ${this.spec?.name ?? 'sandbox'}: ${msg.message}`, { status: 500 });
        this.settle(err);
        void this.terminate();
        return;
      }
      default:
        for (const r of this.runs) {
          if (r.seq === msg.seq) {
            r.onMessage(msg);
            return;
          }
        }
        // A withdrawn request the thread had begun after all: its answer goes nowhere, its bytes' credit back.
        const n = msg.t === 'res' ? bodyBytes(msg) : 0;
        if (n > 0) {
          Atomics.sub(this.control, RESP_INFLIGHT, n);
          signal(this.control);
        }
    }
  }

  private settle(err?: unknown): void {
    const w = this.waiting;
    this.waiting = null;
    if (!w) return;
    if (err) w.reject(err);
    else w.resolve();
  }

  private until(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** Starts a blank sandbox (a worker thread with no function yet); resolves once it is up (~30 ms). */
  static async spawn(maxHeapMb?: number): Promise<Sandbox> {
    const sb = new Sandbox(maxHeapMb);
    await sb.until();
    return sb;
  }

  /**
   * Binds a blank sandbox to a function version and resolves once its instance is ready.
   * Rejects with IsolaError (ERR_WASM_INVALID when the guest cannot be instantiated, ERR_SANDBOX_CRASHED).
   */
  async bind(spec: SandboxSpec): Promise<void> {
    if (this.state !== 'blank') throw new Error(`sandbox ${this.id} is ${this.state}, not blank`);
    if (!spec.modules) {
      if (!spec.compile) throw new Error(`sandbox spec of ${spec.name} has no modules`);
      spec.modules = await spec.compile();
    }
    this.spec = spec;
    this.state = 'binding';
    const { modules, compile: _compile, ...settings } = spec;
    const init: SandboxInit = { ...settings, modules: modules!, control: this.control, bodyPort: this.guestPort };
    const ready = this.until();
    this.worker.postMessage({ t: 'bind', init }, [this.guestPort]);
    await ready;
  }

  /** Spawns and binds: a cold start including the thread. */
  static async start(spec: SandboxSpec): Promise<Sandbox> {
    const sb = await Sandbox.spawn();
    try {
      await sb.bind(spec);
    } catch (err) {
      void sb.terminate();
      throw err;
    }
    return sb;
  }

  /** true while this sandbox's guest is blocked in a host call (waiting on the client, a timer, backpressure). */
  blockedNow(): boolean {
    return Atomics.load(this.control, BLOCKED) === 1;
  }

  /**
   * true when the thread's current request has run longer than `ms` in wall-clock time and in CPU
   * time (wall first: it is cheap; CPU because on a crowded core a short request can be long on the
   * wall clock alone).
   */
  runsLongerThan(ms: number): boolean {
    return this.runningMs() > ms && Number(this.cpuInRequest()) / 1e6 > ms;
  }

  /** How long the thread has been running its current request, ms (wall clock); 0 when it runs none. */
  runningMs(): number {
    const head = this.runs[0];
    if (!head || Atomics.load(this.control, CURRENT) < head.seq) return 0;
    const began = this.slots[WALL_BASE]!;
    return began === 0n ? 0 : Number(wallMicros() - began) / 1000;
  }

  /** CPU the worker thread has used since its current request began, ns (read from the main thread). */
  cpuInRequest(): bigint {
    this.clock_ ??= ThreadClock.ofThread(this.tid);
    return this.clock_.now() - this.slots[CPU_BASE]!;
  }

  /** Calls `fn` once when the worker is gone (crash, terminate). */
  onDeath(fn: () => void): void {
    this.deathHandlers.push(fn);
  }

  /**
   * The thread is gone. The request it was running (CURRENT) fails as crashed (or out of memory);
   * every other request still posted to it is handed back to its caller (`requeue`) unless part
   * of its response already went out: those it had not begun, and those it finished but whose
   * responses were still held in the thread (see worker.ts), lost with it.
   */
  private died(reason: string, outOfMemory = false): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    this.settle(new IsolaError('ERR_SANDBOX_CRASHED', reason));
    this.clock_?.close();
    if (this.watch) clearTimeout(this.watch);
    this.watch = null;
    if (this.guardTimer) clearTimeout(this.guardTimer);
    this.guardTimer = null;
    this.outbox = [];
    const current = Atomics.load(this.control, CURRENT);
    for (const r of this.runs.slice()) {
      if (r.seq === current) r.fail(outOfMemory ? 'memory' : 'crashed', reason);
      else r.requeue(reason);
    }
    for (const fn of this.deathHandlers.splice(0)) fn();
  }

  /** Stops the worker (2–8 ms even when the guest spins). Safe to call twice. */
  async terminate(): Promise<void> {
    this.died('terminated');
    await this.worker.terminate();
  }

  /** Requests posted to this sandbox and not yet done. */
  get queued(): number {
    return this.runs.length;
  }

  /**
   * true when another request may be queued behind the ones this sandbox is serving (pipelining):
   * it is busy only with requests without a body, none of which makes a fresh instance after it,
   * and the one it runs has not run long (longRunMs, wall clock).
   */
  get pipelinable(): boolean {
    if (this.state !== 'busy' || this.runs.length === 0 || this.runningMs() > this.longRunMs) return false;
    for (const r of this.runs) if (r.head.bodyLength !== 0 || r.recycle) return false;
    return true;
  }

  /**
   * Serves one HTTP exchange with this sandbox. Resolves when the guest is done with it (the
   * response may still be draining to the socket). Never rejects: every failure becomes a RunResult.
   * `recycle`: make a fresh instance after this request (the reuse policy); the sandbox is then
   * `recycling` until its new instance is ready (`onReady`). The sandbox must be idle, or busy
   * with a request that has no body (it then runs after the ones before it; the pool decides
   * when, see `pipelinable`).
   */
  run(head: RequestHead, req: IncomingMessage, res: ServerResponse, limits: RunLimits, recycle = false): Promise<RunResult> {
    const first = this.runs.length === 0;
    if (first ? this.state !== 'idle' : !(this.state === 'busy' && head.bodyLength === 0)) {
      throw new Error(`sandbox ${this.id} is ${this.state} with ${this.runs.length} requests`);
    }
    this.state = 'busy';
    this.served++;
    head.seq = ++this.seq;
    if (first) {
      Atomics.store(this.control, REQ_QUEUED, 0);
      Atomics.store(this.control, REQ_PAUSED, 0);
    }
    return new Promise<RunResult>((resolve) => {
      const run = new ActiveRun(this, head, req, res, limits, recycle, this.control, this.bodyPort, (result) => {
        const i = this.runs.indexOf(run);
        if (i >= 0) this.runs.splice(i, 1);
        if (this.runs.length === 0) {
          if (this.watch) clearTimeout(this.watch);
          this.watch = null;
          if (this.state === 'busy') {
            if (result.recycling) this.state = 'recycling';
            else if (result.reusable) {
              this.state = 'idle';
              this.idleSince = performance.now();
            } else void this.terminate();
          }
        } else if (!result.reusable && !result.recycling && this.state !== 'dead') void this.terminate();
        resolve(result);
      });
      this.runs.push(run);
      if (this.outbox.length === 0) setImmediate(this.postRequests);
      this.outbox.push({ head, recycle });
      run.start();
      if (first) this.watch = setTimeout(this.watchdog, Math.min(limits.cpuMs, limits.timeoutMs));
      else this.guardTimer ??= setTimeout(this.guard, GUARD_MS);
    });
  }

  /**
   * While requests are queued behind the one the thread runs: once that one has run long (longRunMs,
   * in wall-clock and in CPU time), the others are withdrawn and handed back to their callers to be
   * served elsewhere (`requeue`), instead of waiting for it to end or hit its limit. Those the
   * thread already finished (their answers held in it) go too; idempotent requests only are ever
   * queued (see ../server/edge.ts), so serving one again is allowed (RFC 9110 §9.2.2). One whose
   * response has begun is never handed back (it would fail as crashed and take the sandbox down):
   * the thread sends its end without holding it (worker.ts `partlySent`).
   */
  private readonly guard = (): void => {
    this.guardTimer = null;
    if (this.runs.length < 2 || this.state === 'dead') return;
    if (this.runsLongerThan(this.longRunMs)) {
      Atomics.store(this.control, WITHDRAWN, this.seq);
      const current = Atomics.load(this.control, CURRENT);
      this.outbox = [];
      // One whose response has begun stays: it ran before the long one, and its end comes as
      // soon as the thread has it (or the request fails if the sandbox dies).
      for (const r of this.runs.slice()) if (r.seq !== current && !r.begun) r.requeue('withdrawn from a sandbox busy with a long request');
      return;
    }
    this.guardTimer = setTimeout(this.guard, GUARD_MS);
  };

  /** Posts the requests of this event-loop turn, as one message. */
  private readonly postRequests = (): void => {
    const list = this.outbox;
    this.outbox = [];
    if (list.length > 0 && this.state !== 'dead') this.worker.postMessage({ t: 'requests', list: packRequests(list) });
  };

  /**
   * One timer per sandbox for the limits of the request its thread is running now (CURRENT in the
   * control block, with that request's CPU and wall-clock start): past the CPU limit (`cpuMs`, the
   * thread's CPU since CPU_BASE) or the wall-clock limit (`timeoutMs`, since WALL_BASE; counted from
   * the post while the request has not begun), that request fails and the sandbox is terminated.
   * CPU time never exceeds wall time, so the next look is after the smaller of the time still
   * allowed by each limit. When a late timer finds both limits passed, the CPU limit (the lower
   * one) is reported.
   */
  private readonly watchdog = (): void => {
    this.watch = null;
    const head = this.runs[0];
    if (!head || this.state === 'dead') return;
    const { cpuMs, timeoutMs } = head.limits;
    const current = Atomics.load(this.control, CURRENT);
    let run: ActiveRun | undefined;
    let wallMs: number;
    let cpuLeft = Infinity;
    if (current < head.seq) {
      // Not begun yet: still in transit, or the thread is making a fresh instance.
      run = head;
      wallMs = performance.now() - head.postedAt;
    } else {
      run = this.runs.find((r) => r.seq === current);
      const began = this.slots[WALL_BASE]!;
      if (!run || began === 0n) {
        // Done with `current` (its end is on its way); the next one is about to begin.
        this.watch = setTimeout(this.watchdog, 1);
        return;
      }
      if (cpuMs < timeoutMs) {
        const used = Number(this.cpuInRequest()) / 1e6;
        if (used >= cpuMs) {
          run.fail('cpu', `CPU time limit of ${cpuMs} ms reached`);
          return;
        }
        cpuLeft = Math.max(1, cpuMs - used);
      }
      wallMs = Math.min(performance.now() - run.postedAt, Number(wallMicros() - began) / 1000);
    }
    const wallLeft = timeoutMs - wallMs;
    if (wallLeft <= 0.5) {
      run.fail('timeout', `no response within ${timeoutMs} ms`);
      return;
    }
    this.watch = setTimeout(this.watchdog, Math.min(wallLeft, cpuLeft));
  };

  /** @internal used by ActiveRun on deadline */
  kill(): void {
    void this.terminate();
  }
}

/** One request posted to one sandbox (main-thread side). */
class ActiveRun {
  private headSent = false;
  private finished = false;
  private requestBytes = 0;
  private responseBytes = 0;
  /** Response bytes handed to the socket whose write has not completed (their credit is still out), bytes. */
  private unconfirmed = 0;
  private bodyDone = false;
  /** The request's sequence number in its sandbox. */
  readonly seq: number;
  /** performance.now() when it was posted (its wall-clock limit counts from here until it begins). */
  readonly postedAt = performance.now();

  constructor(
    private readonly sandbox: Sandbox,
    readonly head: RequestHead,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly limits: RunLimits,
    /** A fresh instance is made after this request (the reuse policy). */
    readonly recycle: boolean,
    private readonly ctl: Int32Array,
    private readonly bodyPort: MessagePort,
    private readonly done: (r: RunResult) => void,
  ) {
    this.seq = head.seq!;
  }

  start(): void {
    this.res.on('close', this.onClose);
    if (this.head.bodyLength === 0) {
      this.bodyDone = true;
      return;
    }
    this.req.on('data', this.onData);
    this.req.on('end', this.onEnd);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.finished || this.bodyDone) return;
    this.requestBytes += chunk.byteLength;
    if (this.requestBytes > this.limits.maxRequestBodyBytes) {
      this.bodyDone = true;
      this.post({ seq: this.seq, error: 'request body too large' });
      this.req.pause();
      if (!this.headSent) this.fail('body-too-large', `request body over the ${this.limits.maxRequestBodyBytes}-byte limit`);
      return;
    }
    const copy = new Uint8Array(chunk); // own buffer: chunk may be a view into a shared pool
    Atomics.add(this.ctl, REQ_QUEUED, copy.byteLength);
    this.bodyPort.postMessage({ seq: this.seq, chunk: copy } satisfies BodyMessage, [copy.buffer]);
    signal(this.ctl);
    if (Atomics.load(this.ctl, REQ_QUEUED) > BODY_WINDOW_BYTES) {
      Atomics.store(this.ctl, REQ_PAUSED, 1);
      this.req.pause();
      // The sandbox may have drained everything between our add and the store: re-check.
      if (Atomics.load(this.ctl, REQ_QUEUED) < BODY_WINDOW_BYTES / 2 && Atomics.compareExchange(this.ctl, REQ_PAUSED, 1, 0) === 1) {
        this.req.resume();
      }
    }
  };

  private readonly onEnd = (): void => {
    if (this.finished || this.bodyDone) return;
    this.bodyDone = true;
    this.post({ seq: this.seq, end: true });
  };

  private readonly onClose = (): void => {
    // The response closed: either it finished, or the client went away mid-exchange.
    if (this.finished) return;
    // After res.end() the response is the socket's to deliver: a client that closes once it has read
    // it (before the write callback runs) did not abort anything.
    if (!this.res.writableFinished && !this.ended) {
      this.clientGone = true;
      // A client that had every byte the guest's content-length announced may close before the
      // guest calls finish: the response is complete, so the guest is left to finish it normally.
      if (this.declaredLength >= 0 && this.responseBytes >= this.declaredLength) {
        if (!this.bodyDone) this.post({ seq: this.seq, error: 'client disconnected' });
        return;
      }
      Atomics.or(this.ctl, ABORTED, 1 << (this.seq & 31));
      if (!this.bodyDone) this.post({ seq: this.seq, error: 'client disconnected' });
      signal(this.ctl);
    }
  };
  private clientGone = false;

  private post(msg: BodyMessage): void {
    this.bodyPort.postMessage(msg);
    signal(this.ctl);
  }

  onMessage(msg: FromSandbox): void {
    if (msg.t === 'credit') {
      if (!this.finished) this.req.resume();
      return;
    }
    if (msg.t !== 'res' || this.finished) return;
    const res = this.res;
    const text = msg.text;
    const n = bodyBytes(msg);
    if (msg.head && !this.clientGone) {
      const headers = msg.head.headers;
      const status = msg.head.status;
      // The request id travels back, unless the guest set its own x-request-id (then one line, not two).
      if (!hasField(headers, 'x-request-id')) headers.push('x-request-id', this.head.id);
      this.declaredLength = contentLengthOf(headers);
      if (msg.end && this.declaredLength < 0 && mayDeclareLength(status, this.head.method) && !hasField(headers, 'content-length')) {
        // The whole response came at once: it goes out with its length (RFC 9112 §6.3), not chunked.
        headers.push('content-length', String(n));
        this.declaredLength = n;
      }
      res.writeHead(status, headers);
      // A head on its own (the guest flushed before writing a body) goes out now, for streaming
      // clients; as latin1 like every other write (node's flushHeaders() would send it as UTF-8,
      // turning each header byte ≥ 0x80 into two).
      if (!msg.body && text === undefined && !msg.end && !msg.done) res.write('', 'latin1');
      this.headSent = true;
      this.status = status;
    }
    const end = msg.end === true && !this.clientGone;
    if (msg.body || text !== undefined) {
      this.responseBytes += n;
      if (this.clientGone) Atomics.sub(this.ctl, RESP_INFLIGHT, n);
      else {
        const chunks = msg.body ?? [];
        for (let i = 0; i < chunks.length - 1; i++) res.write(chunks[i]);
        // Credit returns when the socket has taken the bytes (the last write's callback), or
        // when the request ends, whichever is first (see finish): with the request's end in this
        // same message, finish gives it back at once and the write needs no callback.
        this.unconfirmed += n;
        const onWritten = msg.done
          ? undefined
          : (): void => {
              if (!this.finished) {
                this.unconfirmed -= n;
                Atomics.sub(this.ctl, RESP_INFLIGHT, n);
                signal(this.ctl);
              }
            };
        // A string body (text) goes out with the head in one write (node's OutgoingMessage._send);
        // the encoding is ignored for a chunk of bytes.
        const last = text ?? chunks[chunks.length - 1]!;
        if (end) res.end(last, 'latin1', onWritten);
        else res.write(last, 'latin1', onWritten);
      }
    } else if (end) res.end();
    if (end) this.ended = true;
    if (msg.done) this.complete(msg.done, msg.log, msg.recycling, msg.end === true);
  }
  private status = 0;
  /** The content-length the guest declared, or -1. */
  private declaredLength = -1;
  private ended = false;

  private complete(outcome: GuestOutcome, log?: RunResult['log'], recycling?: boolean, bodyEnded = false): void {
    if (outcome.kind === 'withdrawn') {
      // The thread found it withdrawn as it was about to begin it (see Sandbox.guard).
      this.requeue(outcome.message ?? 'withdrawn');
      return;
    }
    let kind: string = outcome.kind;
    // A client that closed as the guest finished a complete response (e.g. once it had read
    // Content-Length bytes, before the end reached us) did not abort it.
    const gotAll = this.declaredLength >= 0 && this.responseBytes >= this.declaredLength;
    if (this.clientGone && !(outcome.kind === 'ok' && (bodyEnded || gotAll) && this.headSent)) kind = 'client-abort';
    else if (!this.ended) {
      if (this.headSent) this.res.destroy(); // abort: never a clean end for a broken body
      else {
        const [status, code] = outcome.status && outcome.code
          ? [outcome.status, outcome.code as ErrorCode]
          : FAILURE_STATUS[outcome.kind] ?? [500, 'ERR_INTERNAL' as ErrorCode];
        sendError(this.res, status, code, outcome.message ?? outcome.kind, this.head.id);
        this.status = status;
      }
    }
    this.finish({
      status: this.status,
      outcome: kind,
      message: outcome.message,
      code: outcome.code ?? (kind === 'ok' || kind === 'client-abort' ? undefined : FAILURE_STATUS[kind]?.[1]),
      requestBytes: this.requestBytes,
      responseBytes: this.responseBytes,
      reusable: !outcome.discard || recycling === true,
      cpuNs: outcome.cpuNs ?? 0,
      blockedMs: outcome.blockedMs ?? 0,
      fuel: outcome.fuel,
      recycling,
      log,
    });
  }

  /** Ends the exchange from the main thread's side (deadline, crash, body too large). */
  fail(kind: 'timeout' | 'cpu' | 'memory' | 'crashed' | 'body-too-large', message: string): void {
    if (this.finished) return;
    const reusable = kind === 'body-too-large' ? false : false;
    if (!this.clientGone) {
      if (this.headSent) this.res.destroy();
      else {
        const [status, code] = FAILURE_STATUS[kind]!;
        sendError(this.res, status, code, message, this.head.id, kind === 'body-too-large' ? { connection: 'close' } : undefined);
        this.status = status;
      }
    }
    const dead = kind === 'crashed' || kind === 'memory';
    const cpuNs = dead ? 0 : Number(this.sandbox.cpuInRequest());
    this.finish({ status: this.status, outcome: kind, message, code: FAILURE_STATUS[kind]![1], requestBytes: this.requestBytes, responseBytes: this.responseBytes, reusable, cpuNs, blockedMs: 0 });
    // After finish: killing re-enters fail('crashed') through the death handler, which must be a no-op.
    if (!dead) this.sandbox.kill();
  }

  /** true once any of the request's body was read or any of its response went out: it cannot be served again. */
  get begun(): boolean {
    return this.headSent || this.responseBytes > 0 || this.requestBytes > 0;
  }

  /**
   * The sandbox died with this request still posted (see Sandbox.died): served again elsewhere
   * when nothing of its response went out, else it fails as crashed.
   */
  requeue(reason: string): void {
    if (this.finished) return;
    if (this.begun) {
      this.fail('crashed', reason);
      return;
    }
    // `reusable`: handing a request back says nothing against the sandbox (it may still be serving
    // the long request the others were withdrawn from).
    this.finish({ status: 0, outcome: 'requeue', message: reason, requestBytes: 0, responseBytes: 0, reusable: true, cpuNs: 0, blockedMs: 0 });
  }

  private finish(result: RunResult): void {
    this.finished = true;
    Atomics.and(this.ctl, ABORTED, ~(1 << (this.seq & 31))); // the bit is free for a later request
    if (this.unconfirmed > 0) {
      // Bytes still on their way to the socket are this request's; they no longer hold back the sandbox's next ones.
      Atomics.sub(this.ctl, RESP_INFLIGHT, this.unconfirmed);
      this.unconfirmed = 0;
      signal(this.ctl);
    }
    if (this.head.bodyLength !== 0) {
      this.req.off('data', this.onData);
      this.req.off('end', this.onEnd);
    }
    this.res.off('close', this.onClose);
    this.done(result);
  }
}
