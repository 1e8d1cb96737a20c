/**
 * A function version's pool of sandboxes: pre-warms `minWarm`, hands out idle sandboxes, starts
 * more up to `maxInstances` when requests wait (a cold start), queues the rest in a bounded FIFO,
 * stops sandboxes idle past `idleTimeoutMs`, and replaces any that die. Policies live in ./policy.ts.
 */
import type { PoolConfig } from '../config/types.js';
import { IsolaError } from '../errors.js';
import { Sandbox, type SandboxSpec } from '../sandbox/sandbox.js';
import { pickIdle, shouldGrow, toEvict } from './policy.js';

/** Pool state for telemetry. */
export interface PoolStats {
  idle: number;
  busy: number;
  starting: number;
  waiting: number;
  coldStarts: number;
  evictions: number;
}

interface Waiter {
  resolve: (s: Sandbox) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

export interface PoolOptions {
  /** Most requests that may wait for a sandbox; more get 503 (default 256). */
  maxQueue?: number;
  /** Longest wait for a sandbox, ms; then 503 (default 10000). */
  queueTimeoutMs?: number;
}

export class FunctionPool {
  private readonly idle: Sandbox[] = [];
  private readonly busy = new Set<Sandbox>();
  private starting = 0;
  private readonly waiters: Waiter[] = [];
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private lastStartError: unknown = null;
  readonly stats = { coldStarts: 0, evictions: 0 };
  private readonly maxQueue: number;
  private readonly queueTimeoutMs: number;

  constructor(readonly spec: SandboxSpec, readonly config: PoolConfig, options: PoolOptions = {}) {
    this.maxQueue = options.maxQueue ?? 256;
    this.queueTimeoutMs = options.queueTimeoutMs ?? 10_000;
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, Math.max(50, config.idleTimeoutMs / 4)));
    this.sweeper.unref();
  }

  /** Starts sandboxes until `minWarm` are alive. Rejects (IsolaError) if the first cannot start: the function is broken. */
  async warm(): Promise<void> {
    const need = this.config.minWarm - (this.idle.length + this.busy.size + this.starting);
    const starts: Array<Promise<void>> = [];
    for (let i = 0; i < need; i++) starts.push(this.startOne(false));
    await Promise.all(starts);
  }

  /**
   * Resolves with an idle sandbox, now or when one frees up or starts.
   * Rejects with IsolaError ERR_OVERLOADED (503) when the queue is full or the wait is too long,
   * ERR_SHUTTING_DOWN when the pool is closed, or the start error when sandboxes cannot start.
   */
  acquire(): Promise<Sandbox> {
    if (this.closed) return Promise.reject(new IsolaError('ERR_SHUTTING_DOWN', 'function is being replaced or the server is stopping', { status: 503 }));
    const sb = this.takeIdle();
    if (sb) return Promise.resolve(sb);
    if (this.waiters.length >= this.maxQueue) {
      return Promise.reject(new IsolaError('ERR_OVERLOADED', `${this.spec.name}: ${this.waiters.length} requests already waiting`, { status: 503 }));
    }
    return new Promise<Sandbox>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.removeWaiter(waiter);
          reject(new IsolaError('ERR_OVERLOADED', `${this.spec.name}: no sandbox free within ${this.queueTimeoutMs} ms`, { status: 503 }));
        }, this.queueTimeoutMs),
      };
      this.waiters.push(waiter);
      this.grow();
    });
  }

  /** Gives a sandbox back after a request. Dead or non-reusable sandboxes are dropped (and replaced as needed). */
  release(sb: Sandbox): void {
    this.busy.delete(sb);
    if (sb.state !== 'idle' || this.closed) {
      if (sb.state !== 'dead') void sb.terminate();
      this.refill();
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      sb.state = 'idle';
      this.hand(sb, w);
      return;
    }
    this.idle.push(sb);
  }

  /** Pool state for telemetry. */
  snapshot(): PoolStats {
    return {
      idle: this.idle.length,
      busy: this.busy.size,
      starting: this.starting,
      waiting: this.waiters.length,
      coldStarts: this.stats.coldStarts,
      evictions: this.stats.evictions,
    };
  }

  /** Stops taking requests; waits for busy sandboxes up to `drainMs`, then stops every sandbox. */
  async close(drainMs = 0): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new IsolaError('ERR_SHUTTING_DOWN', 'function is being replaced or the server is stopping', { status: 503 }));
    }
    const deadline = Date.now() + drainMs;
    while (this.busy.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.all([...this.idle.splice(0), ...this.busy].map((s) => s.terminate()));
  }

  private takeIdle(): Sandbox | null {
    const sb = pickIdle(this.idle);
    if (!sb) return null;
    this.idle.splice(this.idle.indexOf(sb), 1);
    this.busy.add(sb);
    return sb;
  }

  private hand(sb: Sandbox, w: Waiter): void {
    this.busy.add(sb);
    w.resolve(sb);
  }

  private removeWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private grow(): void {
    while (shouldGrow({
      idle: this.idle.length,
      live: this.idle.length + this.busy.size,
      starting: this.starting,
      waiting: this.waiters.length,
      maxInstances: this.config.maxInstances,
    })) {
      void this.startOne(true).catch(() => {});
    }
  }

  private refill(): void {
    if (this.closed) return;
    if (this.waiters.length > 0) this.grow();
    else if (this.idle.length + this.busy.size + this.starting < this.config.minWarm) void this.warm().catch(() => {});
  }

  private async startOne(cold: boolean): Promise<void> {
    this.starting++;
    if (cold) this.stats.coldStarts++;
    let sb: Sandbox;
    try {
      sb = await Sandbox.start(this.spec);
    } catch (err) {
      this.starting--;
      this.lastStartError = err;
      // Nothing can start: fail the waiters rather than letting them time out.
      if (this.idle.length + this.busy.size + this.starting === 0) {
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(err);
        }
      }
      throw err;
    }
    this.starting--;
    sb.onDeath(() => this.forget(sb));
    if (this.closed) {
      void sb.terminate();
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      this.hand(sb, w);
    } else this.idle.push(sb);
  }

  private forget(sb: Sandbox): void {
    const i = this.idle.indexOf(sb);
    if (i >= 0) this.idle.splice(i, 1);
    if (!this.busy.has(sb)) this.refill();
  }

  private sweep(): void {
    const live = this.idle.length + this.busy.size;
    for (const sb of toEvict(this.idle, live, this.config.minWarm, this.config.idleTimeoutMs, performance.now())) {
      this.idle.splice(this.idle.indexOf(sb), 1);
      this.stats.evictions++;
      void sb.terminate();
    }
  }

  /** The last error a sandbox start failed with (for diagnostics). */
  get startError(): unknown {
    return this.lastStartError;
  }
}
