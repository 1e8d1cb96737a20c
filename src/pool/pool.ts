/**
 * A function version's pool of sandboxes: pre-warms `min_warm`, hands out idle sandboxes, grows
 * towards `max_instances` when requests wait (a cold start; a blank sandbox from the global pool
 * when there is one), queues the rest in a bounded FIFO (full, or waiting past `queue_timeout` →
 * 503 + Retry-After), recycles instances per `max_requests_per_instance` off the critical path,
 * stops sandboxes idle past `idle_timeout`, and replaces any that die. Policies: ./policy.ts;
 * process-wide caps and blank sandboxes: ./manager.ts.
 */
import type { PoolConfig } from '../config/types.js';
import { IsolaError } from '../errors.js';
import type { Sandbox, SandboxSpec } from '../sandbox/sandbox.js';
import type { SandboxManager } from './manager.js';
import { availableParallelism } from 'node:os';
import { BLOCKED_MS, blockingShare, cappedNow, CAP_LIFT_RUN_MS, computeBoundAfter, cpuAverage, isSurplus, longRunBound, mayPipeline, PIPELINE_CPU_MS, PIPELINE_DEPTH, pickIdle, pickPipelined, shouldGrow, shouldRecycle, toEvict } from './policy.js';

/** CPUs this process may run on (the affinity mask: `taskset` narrows it). */
const CORES = availableParallelism();
/** How often growth held back by the compute-bound cap is reconsidered while requests wait, ms. */
const CAP_RECHECK_MS = 20;

/** Pool state for telemetry (issue 8 exports it). */
export interface PoolStats {
  idle: number;
  busy: number;
  starting: number;
  recycling: number;
  waiting: number;
  /** Sandboxes made on demand for a waiting request. */
  coldStarts: number;
  /** Requests that found an idle sandbox at once. */
  warmStarts: number;
  /** Requests queued behind others on a busy sandbox (policy.mayPipeline, pickPipelined). */
  pipelined: number;
  recycles: number;
  evictions: { idle: number; lru: number; surplus: number };
  /** Requests refused: queue full, or waited past queue_timeout. */
  rejected: { queueFull: number; queueTimeout: number };
  /** Requests that waited, total and longest wait, ms. */
  queueWaits: number;
  queueWaitMsTotal: number;
  queueWaitMsMax: number;
  /** Share of recent requests that blocked in host calls (0–1); see policy.computeBoundAfter for the marks. */
  blockingShare: number;
  /** Average CPU per request, ms (policy.cpuAverage); 0 until a request ran. */
  cpuMsAverage: number;
}

/** What the pool learns from a request that ran (RunResult's fields). */
export interface Ran {
  /** Time its guest waited in host calls, ms. */
  blockedMs: number;
  /** CPU time it used, ns. */
  cpuNs: number;
  /** It was stopped at its CPU or wall-clock limit (then only its CPU counts, not its blocked time). */
  limit?: boolean;
}

/** What `acquire` hands out. */
export interface Acquired {
  sandbox: Sandbox;
  /** How long the request waited for it, ms (0 when one was idle). */
  waitedMs: number;
  /** true when the request waited for a sandbox to be created. */
  cold: boolean;
}

/** Something that happened in a pool, for logs and telemetry. */
export type PoolEvent =
  | { type: 'start'; cold: boolean; fromBlank: boolean; ms: number }
  | { type: 'evict'; reason: 'idle' | 'lru' | 'surplus' }
  | { type: 'recycle' }
  | { type: 'reject'; reason: 'queue-full' | 'queue-timeout' };

interface Waiter {
  resolve: (a: Acquired) => void;
  reject: (e: unknown) => void;
  since: number;
  cold: boolean;
  onAbort: (() => void) | null;
  signal: Abandon | undefined;
  /** The request has no body (it may be pipelined). */
  bodyless: boolean;
}

/**
 * What `acquire` needs of a cancellation: AbortSignal fits, and so does a lighter object (the edge
 * makes one per queued request; an AbortController costs several µs on a saturated server).
 */
export interface Abandon {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

const overloaded = (message: string) => new IsolaError('ERR_OVERLOADED', message, { status: 503 });
const shuttingDown = () => new IsolaError('ERR_SHUTTING_DOWN', 'the function is being replaced or the server is stopping', { status: 503 });

export class FunctionPool {
  private readonly idle: Sandbox[] = [];
  /** Busy sandboxes, each with the number of requests handed out on it and not yet released (> 1: pipelined). */
  private readonly busy = new Map<Sandbox, number>();
  private readonly recycling = new Set<Sandbox>();
  private starting = 0;
  /** Requests waiting for a sandbox, oldest first (so they also time out in this order). */
  private readonly waiters: Waiter[] = [];
  /** One timer for the whole queue, due when the oldest waiter's queue_timeout ends. */
  private queueTimer: NodeJS.Timeout | null = null;
  /**
   * Share of recent requests that blocked in host calls (policy.blockingShare). Starts at 0 with
   * the function taken as compute-bound: a new function grows only to one sandbox per CPU while
   * none of its requests waits or runs long (either lifts the cap for WAIT_COOLDOWN_MS; a busy
   * sandbox blocked in a host call does so within CAP_RECHECK_MS, see cappedNow). Assuming the
   * opposite, a burst on a just-deployed function grew the pool to max_instances on one CPU,
   * binding and refilling sandboxes it then stopped as surplus: WAT hello's first second after
   * start 0.5–1.1k vs 1.7–2.5k req/s with one sandbox.
   */
  private blocking = 0;
  /** The function's requests hardly ever wait (policy.computeBoundAfter, with hysteresis). */
  private computeBound = true;
  /** Average CPU per request, ms (policy.cpuAverage); Infinity until known. */
  private cpuMs = Infinity;
  /** When a request of this function last waited in a host call (performance.now(), ms). */
  private lastWait = -Infinity;
  /** Re-checks growth while it is held back only by the compute-bound cap (see grow()). */
  private capTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private lastStartError: unknown = null;
  private memorySeen = 0;
  private readonly stats = {
    coldStarts: 0, warmStarts: 0, pipelined: 0, recycles: 0,
    evictions: { idle: 0, lru: 0, surplus: 0 }, rejected: { queueFull: 0, queueTimeout: 0 },
    queueWaits: 0, queueWaitMsTotal: 0, queueWaitMsMax: 0,
  };

  /**
   * @param events called for every PoolEvent (start, evict, recycle, reject), synchronously.
   */
  constructor(
    readonly spec: SandboxSpec,
    readonly config: PoolConfig,
    private readonly manager: SandboxManager,
    private readonly events: (e: PoolEvent) => void = () => {},
  ) {
    manager.register(this);
  }

  private get live(): number {
    return this.idle.length + this.busy.size + this.recycling.size;
  }

  /**
   * Starts sandboxes until `min_warm` are alive, as far as the process-wide caps allow without
   * evicting other functions. Rejects (IsolaError) when a sandbox cannot be instantiated: the
   * function is broken.
   */
  async warm(): Promise<void> {
    const starts: Array<Promise<void>> = [];
    while (this.live + this.starting < this.config.minWarm && this.manager.reserve(this, false)) {
      starts.push(this.startOne(false));
    }
    await Promise.all(starts);
  }

  /**
   * An idle sandbox now; for a request without a body (`bodyless`), else possibly a busy sandbox
   * to queue it on (policy.mayPipeline, pickPipelined); or null. No allocation on this path.
   */
  tryAcquire(bodyless = false): Sandbox | null {
    if (this.closed || this.waiters.length > 0) return null;
    const sb = pickIdle(this.idle);
    if (!sb) return bodyless && this.busy.size > 0 ? this.pipelined() : null;
    this.idle.splice(this.idle.indexOf(sb), 1);
    this.busy.set(sb, 1);
    this.stats.warmStarts++;
    return sb;
  }

  /** A busy sandbox to queue one more request on (policy.mayPipeline, pickPipelined), or null. */
  private pipelined(): Sandbox | null {
    if (!this.mayPipeline()) return null;
    const sb = pickPipelined(this.busy);
    if (sb) this.queueOn(sb);
    return sb;
  }

  /** Counts one more request handed out on busy sandbox `sb` (pipelined), and tells it when a request runs long. */
  private queueOn(sb: Sandbox): void {
    this.busy.set(sb, this.busy.get(sb)! + 1);
    this.stats.pipelined++;
    sb.longRunMs = longRunBound(this.cpuMs);
  }

  /** policy.mayPipeline for this function now (wasi-http functions only: WAGI instances are per request anyway). */
  private mayPipeline(): boolean {
    if (!(this.cpuMs < PIPELINE_CPU_MS) || this.spec.abi !== 'wasi-http') return false;
    const canGrow = shouldGrow({
      idle: 0, live: this.live, starting: this.starting, recycling: this.recycling.size, waiting: this.waiters.length + 1,
      maxInstances: this.config.maxInstances, cores: CORES, computeBound: true,
    });
    return mayPipeline({ capped: !canGrow && this.cappedNow(), canGrow, cpuMs: this.cpuMs });
  }

  /**
   * Hands queued bodyless requests, oldest first, to busy sandbox `sb` while pipelining is allowed
   * and it has room (PIPELINE_DEPTH): under sustained load requests queue in the pool, and without
   * this each sandbox would get them one per wake-up again.
   */
  private topUp(sb: Sandbox): void {
    if (!this.busy.has(sb) || !this.waiters[0]?.bodyless || !sb.pipelinable || !this.mayPipeline()) return;
    while (this.busy.get(sb)! < PIPELINE_DEPTH && this.waiters[0]?.bodyless) {
      const w = this.waiters.shift()!;
      this.queueOn(sb);
      this.resolveWaiter(sb, w);
    }
    if (this.waiters.length === 0) this.armQueueTimer();
  }

  /**
   * Resolves with a sandbox, now or when one frees up or is created. Rejects with IsolaError:
   * ERR_OVERLOADED (503) when the queue is full or the wait passes `queue_timeout`;
   * ERR_SHUTTING_DOWN (503) when the pool closes; the start error when no sandbox can be created;
   * an AbortError-like IsolaError when `signal` aborts (the client left the queue).
   */
  acquire(signal?: Abandon, bodyless = false): Promise<Acquired> {
    // `bodyless`: the request has no body, so it may be queued on a busy sandbox (pipelining).
    if (this.closed) return Promise.reject(shuttingDown());
    const sb = this.tryAcquire(bodyless);
    if (sb) return Promise.resolve({ sandbox: sb, waitedMs: 0, cold: false });
    if (this.waiters.length >= this.config.maxQueue) {
      this.stats.rejected.queueFull++;
      this.events({ type: 'reject', reason: 'queue-full' });
      return Promise.reject(overloaded(`${this.spec.name}: ${this.waiters.length} requests already waiting (max_queue)`));
    }
    return new Promise<Acquired>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, since: performance.now(), cold: false, signal, onAbort: null, bodyless };
      if (signal) {
        waiter.onAbort = () => {
          this.dropWaiter(waiter);
          reject(new IsolaError('ERR_SHUTTING_DOWN', 'client left the queue', { status: 499 }));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
      this.queueTimer ??= setTimeout(this.expireWaiters, this.config.queueTimeoutMs);
      this.grow();
    });
  }

  /**
   * The queue timer: refuses every waiter whose queue_timeout has passed (503 ERR_OVERLOADED),
   * then re-arms for the oldest one left. One timer per pool instead of one per queued request.
   */
  private readonly expireWaiters = (): void => {
    this.queueTimer = null;
    const now = performance.now();
    const limit = this.config.queueTimeoutMs;
    while (this.waiters.length > 0 && now - this.waiters[0]!.since >= limit) {
      const w = this.waiters[0]!;
      this.dropWaiter(w);
      this.stats.rejected.queueTimeout++;
      this.events({ type: 'reject', reason: 'queue-timeout' });
      w.reject(overloaded(`${this.spec.name}: no sandbox free within ${limit} ms (queue_timeout)`));
    }
    this.armQueueTimer();
  };

  /** Arms the queue timer for the oldest waiter, or clears it when nobody waits. */
  private armQueueTimer(): void {
    if (this.queueTimer) clearTimeout(this.queueTimer);
    this.queueTimer = null;
    const oldest = this.waiters[0];
    if (oldest) this.queueTimer = setTimeout(this.expireWaiters, Math.max(1, oldest.since + this.config.queueTimeoutMs - performance.now()));
  }

  /** true when the sandbox must make a fresh instance after the request it is about to serve. */
  recycleAfter(sb: Sandbox): boolean {
    return shouldRecycle(sb.served + 1, this.config.maxRequestsPerInstance);
  }

  /**
   * Takes a sandbox back after a request (one call per request handed out; a sandbox with
   * pipelined requests still to serve stays busy). Dead ones are dropped (and replaced as needed).
   * `ran`: what the request's guest did (RunResult.blockedMs, cpuNs), when it ran to the end.
   */
  release(sb: Sandbox, ran?: Ran): void {
    if (ran !== undefined) {
      if (!ran.limit) {
        const { blockedMs } = ran;
        if (blockedMs >= BLOCKED_MS) this.lastWait = performance.now();
        this.blocking = blockingShare(this.blocking, blockedMs);
        this.computeBound = computeBoundAfter(this.computeBound, this.blocking);
      }
      this.cpuMs = cpuAverage(this.cpuMs, ran.cpuNs / 1e6);
    }
    const handed = this.busy.get(sb) ?? 1;
    if (handed > 1) {
      this.busy.set(sb, handed - 1);
      if (this.waiters.length > 0) this.topUp(sb);
      return;
    }
    this.busy.delete(sb);
    this.memorySeen = Math.max(this.memorySeen, sb.memory);
    if (this.closed) {
      void sb.terminate();
      return;
    }
    if (sb.state === 'recycling') {
      this.stats.recycles++;
      this.events({ type: 'recycle' });
      this.recycling.add(sb);
      sb.onReady = (ready) => {
        this.recycling.delete(ready);
        this.becameIdle(ready);
      };
      return;
    }
    if (sb.state !== 'idle') {
      if (sb.state !== 'dead') void sb.terminate();
      this.refill();
      return;
    }
    if (isSurplus({ othersLive: this.live, minWarm: this.config.minWarm, cores: CORES, capped: this.cappedNow() })) {
      // Grown while a request waited or ran long (the cap was lifted): one sandbox per CPU is
      // all computation can use, so the extra ones go as they come free once it is capped again.
      this.stats.evictions.surplus++;
      this.events({ type: 'evict', reason: 'surplus' });
      void sb.terminate();
      return;
    }
    this.becameIdle(sb);
  }

  /**
   * Whether growth is capped now (policy.cappedNow): compute-bound by its recent history, and none
   * of its requests waited in the last WAIT_COOLDOWN_MS (busy sandboxes blocked right now count,
   * and so do those whose request has run long in wall and CPU time, policy.longRunBound with
   * CAP_LIFT_RUN_MS): a function whose requests just started waiting (long uploads, long polls) or
   * one runaway request is not held to the cap, and one that waits now and then does not flap.
   */
  private cappedNow(): boolean {
    if (!this.computeBound) return false;
    const now = performance.now();
    // Until a request has finished the average is unknown: then CAP_LIFT_RUN_MS alone is the
    // bound, or a new function's first request running long would hold up every other request.
    const longRun = longRunBound(Number.isFinite(this.cpuMs) ? this.cpuMs : 0, CAP_LIFT_RUN_MS);
    for (const sb of this.busy.keys()) {
      if (sb.blockedNow() || sb.runsLongerThan(longRun)) {
        this.lastWait = now;
        break;
      }
    }
    return cappedNow({ computeBound: true, msSinceWait: now - this.lastWait });
  }

  private becameIdle(sb: Sandbox): void {
    if (this.closed) {
      void sb.terminate();
      return;
    }
    const w = this.waiters.shift();
    if (!w) {
      this.idle.push(sb);
      return;
    }
    this.busy.set(sb, 1);
    this.resolveWaiter(sb, w);
    // Once the waiter's request is posted (its continuation runs first), more may queue behind it.
    if (w.bodyless && this.waiters.length > 0) queueMicrotask(() => this.topUp(sb));
  }

  private resolveWaiter(sb: Sandbox, w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    const waitedMs = performance.now() - w.since;
    this.stats.queueWaits++;
    this.stats.queueWaitMsTotal += waitedMs;
    this.stats.queueWaitMsMax = Math.max(this.stats.queueWaitMsMax, waitedMs);
    w.resolve({ sandbox: sb, waitedMs, cold: w.cold });
  }

  private dropWaiter(w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
    if (this.waiters.length === 0 && this.queueTimer) {
      clearTimeout(this.queueTimer);
      this.queueTimer = null;
    }
  }

  private growing = false;

  private grow(): void {
    if (this.growing) return; // reserve() may evict, and an eviction re-enters through onCapacity
    this.growing = true;
    try {
      this.growLoop();
    } finally {
      this.growing = false;
    }
  }

  private growLoop(): void {
    for (;;) {
      if (this.closed) return;
      const s = {
        idle: this.idle.length,
        live: this.live,
        starting: this.starting,
        recycling: this.recycling.size,
        waiting: this.waiters.length,
        maxInstances: this.config.maxInstances,
        cores: CORES,
      };
      if (!shouldGrow(s)) return;
      if (!shouldGrow({ ...s, computeBound: this.cappedNow() })) {
        // Held back only by the compute-bound cap: look again shortly, in case the busy
        // sandboxes start waiting (their requests then no longer need the CPU).
        this.capTimer ??= setTimeout(() => {
          this.capTimer = null;
          if (this.waiters.length > 0) this.grow();
        }, CAP_RECHECK_MS);
        return;
      }
      if (!this.manager.reserve(this, true)) return;
      const next = this.waiters[this.starting];
      if (next) next.cold = true;
      void this.startOne(true).catch(() => {});
    }
  }

  private refill(): void {
    if (this.closed) return;
    if (this.waiters.length > 0) this.grow();
    else if (this.live + this.starting < this.config.minWarm) void this.warm().catch(() => {});
  }

  private async startOne(cold: boolean): Promise<void> {
    this.starting++;
    if (cold) this.stats.coldStarts++;
    let sb: Sandbox;
    const t0 = performance.now();
    try {
      const made = await this.manager.create(this.spec);
      sb = made.sandbox;
      this.events({ type: 'start', cold, fromBlank: made.fromBlank, ms: performance.now() - t0 });
    } catch (err) {
      this.starting--;
      this.lastStartError = err;
      // Nothing can start: fail the waiters now rather than letting them time out.
      if (this.live + this.starting === 0) {
        for (const w of this.waiters.splice(0)) {
          this.dropWaiter(w);
          w.reject(err);
        }
      }
      throw err;
    }
    this.starting--;
    this.memorySeen = Math.max(this.memorySeen, sb.memory);
    sb.onDeath(() => this.forget(sb));
    this.becameIdle(sb);
  }

  private forget(sb: Sandbox): void {
    const i = this.idle.indexOf(sb);
    if (i >= 0) this.idle.splice(i, 1);
    this.recycling.delete(sb);
    if (!this.busy.has(sb)) this.refill();
    // No sandbox left: let the compiled code go (recompiled on the next cold start) so that many
    // deployed functions cost memory only while they have sandboxes.
    if (this.live + this.starting === 0 && this.spec.compile) this.spec.modules = null;
  }

  // ---- ManagedPool -------------------------------------------------------------------------

  /** @internal */
  evictionCandidates(): Array<{ sandbox: Sandbox; idleSince: number; aboveMinWarm: boolean }> {
    const above = this.live > this.config.minWarm;
    return this.idle.map((sandbox) => ({ sandbox, idleSince: sandbox.idleSince, aboveMinWarm: above }));
  }

  /** @internal */
  evict(sb: Sandbox): void {
    const i = this.idle.indexOf(sb);
    if (i >= 0) this.idle.splice(i, 1);
    this.stats.evictions.lru++;
    this.events({ type: 'evict', reason: 'lru' });
  }

  /** @internal */
  onCapacity(): void {
    if (this.waiters.length > 0) this.grow();
  }

  /** @internal */
  memoryEstimate(): number {
    return this.memorySeen;
  }

  /** @internal Stops sandboxes idle past idle_timeout (called every second by the manager). */
  sweep(now: number): void {
    for (const sb of toEvict(this.idle, this.live, this.config.minWarm, this.config.idleTimeoutMs, now)) {
      this.idle.splice(this.idle.indexOf(sb), 1);
      this.stats.evictions.idle++;
      this.events({ type: 'evict', reason: 'idle' });
      void sb.terminate();
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Pool state for telemetry. */
  snapshot(): PoolStats {
    return {
      idle: this.idle.length,
      busy: this.busy.size,
      starting: this.starting,
      recycling: this.recycling.size,
      waiting: this.waiters.length,
      ...this.stats,
      evictions: { ...this.stats.evictions },
      rejected: { ...this.stats.rejected },
      blockingShare: this.blocking,
      cpuMsAverage: Number.isFinite(this.cpuMs) ? this.cpuMs : 0,
    };
  }

  /** Stops taking requests; waits for busy sandboxes up to `drainMs`, then stops every sandbox. */
  async close(drainMs = 0): Promise<void> {
    this.closed = true;
    if (this.capTimer) clearTimeout(this.capTimer);
    this.capTimer = null;
    this.manager.unregister(this);
    for (const w of this.waiters.splice(0)) {
      this.dropWaiter(w);
      w.reject(shuttingDown());
    }
    const deadline = Date.now() + drainMs;
    while (this.busy.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.all([...this.idle.splice(0), ...this.busy.keys(), ...this.recycling].map((s) => s.terminate()));
  }

  /** The last error a sandbox start failed with (for diagnostics). */
  get startError(): unknown {
    return this.lastStartError;
  }
}
