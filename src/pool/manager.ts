/**
 * The global pool: every sandbox of the process. It keeps a few blank sandboxes (threads started
 * but not bound to any function, so a function's first request pays only for instantiation, not
 * a thread start — ~30 ms here), enforces the process-wide caps on live sandboxes and on their
 * measured memory, and when full evicts the least recently used idle sandbox of any function
 * (pool/policy.ts `pickVictim`). Function pools (./pool.ts) ask it for new sandboxes.
 */
import type { SandboxesConfig } from '../config/types.js';
import { Sandbox, type SandboxSpec } from '../sandbox/sandbox.js';
import { fits, pickVictim } from './policy.js';

/** How long after a blank sandbox is bound its replacement starts, ms (see create()). */
const REFILL_DELAY_MS = 50;

/** What the manager needs from a function pool. */
export interface ManagedPool {
  /** Idle sandboxes that may be evicted, with whether the pool stays at min_warm without each. */
  evictionCandidates(): Array<{ sandbox: Sandbox; idleSince: number; aboveMinWarm: boolean }>;
  /** Removes an idle sandbox the manager is about to stop (eviction reason "lru"). */
  evict(sb: Sandbox): void;
  /** Capacity freed up: start sandboxes for waiting requests if useful. */
  onCapacity(): void;
  /** Typical memory of one of its sandboxes, bytes (measured; 0 when unknown). */
  memoryEstimate(): number;
}

/** Global counters for telemetry. */
export interface ManagerStats {
  live: number;
  blank: number;
  starting: number;
  memoryBytes: number;
  maxSandboxes: number;
  maxMemoryBytes: number;
  lruEvictions: number;
  blankBinds: number;
  threadStarts: number;
}

export class SandboxManager {
  private readonly all = new Set<Sandbox>();
  private readonly blanks: Sandbox[] = [];
  /** Sandboxes being spawned or bound (counted against the caps). */
  private starting = 0;
  private readonly pools = new Set<ManagedPool>();
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;
  readonly stats = { lruEvictions: 0, blankBinds: 0, threadStarts: 0 };
  /** Memory of a blank sandbox as last measured, bytes. */
  private blankMemory = 0;

  private get heapMb(): number {
    return Math.max(16, Math.floor(this.config.heapBytes / (1024 * 1024)));
  }

  constructor(readonly config: SandboxesConfig) {
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
    this.refillBlanks();
  }

  /** Adds a function pool (it will be asked for victims and told about freed capacity). */
  register(pool: ManagedPool & { sweep(now: number): void }): void {
    this.pools.add(pool);
  }

  unregister(pool: ManagedPool): void {
    this.pools.delete(pool);
  }

  private get memory(): number {
    let n = 0;
    for (const sb of this.all) n += sb.memory;
    return n + this.starting * this.blankMemory;
  }

  /**
   * Reserves room for one more sandbox of `pool`. With `evict`, makes room by stopping the least
   * recently used idle sandbox of any function (or a spare blank one). Returns false when there is no room.
   */
  reserve(pool: ManagedPool, evict: boolean): boolean {
    if (this.closed) return false;
    const estimate = Math.max(pool.memoryEstimate(), this.blankMemory);
    for (;;) {
      const live = this.all.size + this.starting;
      // A blank sandbox is already counted: binding it needs no new room.
      if (this.blanks.length > 0) return true;
      if (fits({ live, memory: this.memory, estimate, max: this.config.max, maxMemory: this.config.memoryBytes })) {
        return true;
      }
      if (!evict || !this.evictOne()) return false;
    }
  }

  /** Stops the LRU idle sandbox of any function; false when none is idle. */
  private evictOne(): boolean {
    const candidates: Array<{ sandbox: Sandbox; idleSince: number; aboveMinWarm: boolean; pool: ManagedPool }> = [];
    for (const p of this.pools) for (const c of p.evictionCandidates()) candidates.push({ ...c, pool: p });
    const victim = pickVictim(candidates);
    if (!victim) return false;
    victim.pool.evict(victim.sandbox);
    this.stats.lruEvictions++;
    this.forget(victim.sandbox);
    // Stop it after the caller's bookkeeping: its death handlers re-enter pools (capacity freed).
    queueMicrotask(() => void victim.sandbox.terminate());
    return true;
  }

  /**
   * Makes a sandbox bound to `spec`: binds a blank one when there is one (no thread start), else
   * starts a thread. Call after a successful `reserve`. Rejects with the bind error (IsolaError).
   */
  async create(spec: SandboxSpec): Promise<{ sandbox: Sandbox; fromBlank: boolean }> {
    // A blank sandbox is counted in `all` already; a new thread counts as `starting` until tracked.
    const blank = this.blanks.pop();
    if (blank) {
      this.stats.blankBinds++;
      try {
        await blank.bind(spec);
      } catch (err) {
        void blank.terminate();
        throw err;
      } finally {
        // Later: the thread start (~0.5–2 ms of this thread for `new Worker`, then tens of ms of
        // the new thread's own start-up) must not compete with the request waiting for this
        // sandbox — on a single CPU it would take a share of it (measured: a first request right
        // after a deploy took ~14 ms instead of a few).
        setTimeout(() => this.refillBlanks(), REFILL_DELAY_MS).unref();
      }
      return { sandbox: blank, fromBlank: true };
    }
    this.starting++;
    this.stats.threadStarts++;
    let sb: Sandbox | undefined;
    try {
      sb = await Sandbox.spawn(this.heapMb);
      await sb.bind(spec);
    } catch (err) {
      this.starting--;
      if (sb) void sb.terminate();
      throw err;
    }
    this.starting--;
    this.track(sb);
    this.refillBlanks(); // after the new sandbox is counted, so a refill cannot overshoot the cap
    return { sandbox: sb, fromBlank: false };
  }

  private track(sb: Sandbox): void {
    this.all.add(sb);
    sb.onDeath(() => {
      this.forget(sb);
      this.capacityFreed();
    });
  }

  private forget(sb: Sandbox): void {
    this.all.delete(sb);
    const i = this.blanks.indexOf(sb);
    if (i >= 0) this.blanks.splice(i, 1);
  }

  private capacityFreed(): void {
    if (this.closed) return;
    for (const p of this.pools) p.onCapacity();
    this.refillBlanks();
  }

  /** Keeps `config.blank` blank sandboxes, when there is room for them without evicting anything. */
  private refillBlanks(): void {
    if (this.closed) return;
    const want = this.config.blank - this.blanks.length - this.spawningBlanks;
    for (let i = 0; i < want; i++) {
      const live = this.all.size + this.starting;
      if (!fits({ live, memory: this.memory, estimate: this.blankMemory, max: this.config.max, maxMemory: this.config.memoryBytes })) return;
      this.spawningBlanks++;
      this.starting++;
      Sandbox.spawn(this.heapMb).then(
        (sb) => {
          this.spawningBlanks--;
          this.starting--;
          if (this.closed) {
            void sb.terminate();
            return;
          }
          this.blankMemory = Math.max(this.blankMemory, sb.memory);
          this.blanks.push(sb);
          this.track(sb);
        },
        () => {
          this.spawningBlanks--;
          this.starting--;
        },
      );
    }
  }
  private spawningBlanks = 0;

  /** Every second: each pool stops sandboxes idle past its idle_timeout. */
  private sweep(): void {
    const now = performance.now();
    for (const p of this.pools) (p as ManagedPool & { sweep(now: number): void }).sweep(now);
  }

  /** Global state for telemetry. */
  snapshot(): ManagerStats {
    return {
      live: this.all.size,
      blank: this.blanks.length,
      starting: this.starting,
      memoryBytes: this.memory,
      maxSandboxes: this.config.max,
      maxMemoryBytes: this.config.memoryBytes,
      ...this.stats,
    };
  }

  /** Stops the blank sandboxes and stops making new ones (function pools close themselves). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.all(this.blanks.splice(0).map((sb) => sb.terminate()));
  }
}
