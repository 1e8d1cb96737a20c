/**
 * Pool policies as pure functions (STYLE.md "What this means for isola" §3): which idle sandbox
 * to hand out, whether to start another, whether to recycle an instance, which idle sandboxes to
 * stop, and which one to evict when the whole process is at capacity. The mechanism in ./pool.ts
 * and ./manager.ts applies them; these are unit-tested on plain data.
 */

/** What a policy sees of one idle sandbox. */
export interface IdleView {
  /** performance.now() when it became idle, ms. */
  idleSince: number;
}

/** Picks the most recently used idle sandbox (LIFO keeps the hottest caches busy and lets the rest age out). */
export function pickIdle<T extends IdleView>(idle: readonly T[]): T | null {
  let best: T | null = null;
  for (const s of idle) if (best === null || s.idleSince > best.idleSince) best = s;
  return best;
}

/**
 * Whether to start another sandbox for a waiting request: only when no idle one exists, fewer
 * than `maxInstances` are alive or starting, and more requests wait than sandboxes are starting
 * or recycling (those will serve waiters soon).
 *
 * `computeBound` (the function's recent requests hardly ever block in host calls, and none of its
 * sandboxes is blocked right now) caps growth at
 * {@link computeCap}`(cores)`: sandboxes past the CPUs cannot add throughput to pure computation,
 * only threads, isolates and context switches (measured here: a WAT hello saturated at
 * max_instances 4 cost ~25–35 % more CPU per request than at 2, for fewer requests per second).
 * Functions that wait (on clients, timers, backpressure) grow to `maxInstances` as before.
 */
export function shouldGrow(s: {
  idle: number; live: number; starting: number; waiting: number; maxInstances: number; recycling?: number;
  computeBound?: boolean; cores?: number;
}): boolean {
  const coming = s.starting + (s.recycling ?? 0);
  if (s.computeBound && s.live + s.starting >= computeCap(s.cores ?? 1)) return false;
  return s.idle === 0 && s.live + s.starting < s.maxInstances && s.waiting > coming;
}

/**
 * Whether a sandbox just freed should stop rather than go idle (eviction reason `surplus`): its
 * function is capped now (cappedNow) and the other live sandboxes already make up one per CPU
 * (computeCap) and `minWarm`. A pool grown while the cap was lifted (a request waited or ran long)
 * shrinks back this way as its sandboxes come free.
 */
export function isSurplus(s: { othersLive: number; minWarm: number; cores: number; capped: boolean }): boolean {
  return s.capped && s.othersLive >= Math.max(computeCap(s.cores), s.minWarm);
}

/**
 * Sandboxes a compute-bound function grows to: one per CPU. (It was at least two, so that one
 * sandbox could run while the main thread handed the other its next request; pipelining now
 * queues requests on the running sandbox, and on one core a second sandbox only halved the batches:
 * 7.5k vs 12.4k req/s for the WAT hello, bench `--quick`.) A request that runs long (longRunBound)
 * lifts the cap, so one runaway request does not hold up a one-sandbox function.
 */
export function computeCap(cores: number): number {
  return Math.max(1, cores);
}

/**
 * A request has run long once it passed this, ms, or LONG_RUN_FACTOR × the function's average CPU.
 * Well above the kernel's tick (4 ms at HZ=250): a thread's schedstat clock, read by the thread
 * itself while it runs, lags by up to a tick, so a request's CPU as seen from outside can read a
 * tick too high. At 5 ms, short JS requests (≈0.25 ms) on a busy core were taken for long ones now
 * and then, and each time the pool grew (a JS sandbox costs 100–700 ms of CPU to start) and shrank
 * again: JS hello 3.7k → 1.6k req/s on one core.
 */
export const LONG_RUN_MS = 20;
/**
 * A request long past this lifts the compute-bound cap (see FunctionPool.cappedNow), ms:
 * more than LONG_RUN_MS because growing costs a sandbox start (100–700 ms of CPU for a JS guest),
 * and a JS guest's own garbage collection makes a request run 20 ms now and then; withdrawing the
 * requests queued behind it (LONG_RUN_MS) is cheap, starting sandboxes for it is not.
 */
export const CAP_LIFT_RUN_MS = 100;
export const LONG_RUN_FACTOR = 10;

/**
 * The running time past which a request of a function whose requests average `cpuMsAverage` of
 * CPU counts as running long, ms: longer than `floorMs` (LONG_RUN_MS; CAP_LIFT_RUN_MS for lifting
 * the cap) and LONG_RUN_FACTOR × the average; Infinity while the average is unknown. The pool and
 * the sandbox hold a request's wall time and then its CPU time against it (both must be long,
 * Sandbox.runsLongerThan). Past LONG_RUN_MS nothing more is queued behind it and the requests
 * queued behind it are withdrawn; past CAP_LIFT_RUN_MS its sandbox counts as one that waits, so
 * the compute-bound cap is lifted (for WAIT_COOLDOWN_MS) and other requests get another sandbox.
 */
export function longRunBound(cpuMsAverage: number, floorMs = LONG_RUN_MS): number {
  return Math.max(floorMs, LONG_RUN_FACTOR * cpuMsAverage);
}

/**
 * The running share of a function's requests that blocked in host calls (an exponentially
 * weighted average, weight `1/64` per request): `next = share + (blocked - share) / 64`, where a
 * request counts as blocked when it waited at least `BLOCKED_MS`. A pool starts at 0, compute-bound
 * (FunctionPool.blocking), so it starts capped at one sandbox per CPU. The share moves slowly; what
 * lifts the cap at once, for WAIT_COOLDOWN_MS, is any request that waits or runs long (cappedNow):
 * a function that waits grows as soon as it does.
 */
export function blockingShare(share: number, blockedMs: number): number {
  const next = share + ((blockedMs >= BLOCKED_MS ? 1 : 0) - share) / 64;
  return next < 1e-6 ? 0 : next; // no denormal tail (the gauge would print 1.6e-322)
}
/** A request that waited this long in host calls, in total, counts as blocking (ms). */
export const BLOCKED_MS = 0.5;
/** A function becomes compute-bound when its blocking share falls under this… */
export const COMPUTE_BOUND_BELOW = 0.1;
/** …and stops being compute-bound only when the share rises over this (hysteresis: no flapping). */
export const COMPUTE_BOUND_UNTIL = 0.2;

/**
 * Whether a function is compute-bound after its blocking share moved to `share` (`was`: before).
 * The gap between the two marks keeps a mixed workload near one mark from starting and stopping
 * sandboxes over and over.
 */
export function computeBoundAfter(was: boolean, share: number): boolean {
  return was ? share < COMPUTE_BOUND_UNTIL : share < COMPUTE_BOUND_BELOW;
}

/**
 * Whether growth is capped now: compute-bound by history (computeBoundAfter) and no request of
 * the function waited in a host call for `WAIT_COOLDOWN_MS` (`msSinceWait`, counting sandboxes
 * blocked right now as 0). The cool-down is what keeps a workload that waits only now and then
 * from starting sandboxes when one waits and stopping them as surplus when none does.
 */
export function cappedNow(s: { computeBound: boolean; msSinceWait: number }): boolean {
  return s.computeBound && s.msSinceWait >= WAIT_COOLDOWN_MS;
}
/** How long after its last waiting request a function may be capped again, ms. */
export const WAIT_COOLDOWN_MS = 5_000;

/**
 * Most requests handed out on one busy sandbox at once (the one it runs included). Measured on
 * one core, WAT hello: 8 → 12.7k req/s, 16 → 17.2k (wrk -c32, sequential windows); 16 → 32 +8.9 %
 * with wrk -c32 and +37 % with -c64 (both builds loaded at once, bench/ab.mjs): requests past the
 * depth wait in the pool's queue and reach the thread one cycle later. At most 32: the control
 * block's ABORTED word has a bit per request in flight (../sandbox/shared.ts).
 */
export const PIPELINE_DEPTH = 32;
/** Pipelining is for functions whose requests take less CPU than this on average, ms. */
export const PIPELINE_CPU_MS = 1;

/**
 * Whether a bodyless request that finds no idle sandbox may be queued on a busy one (pipelining)
 * rather than wait in the pool's queue. Only for a function capped now (`capped`: cappedNow, so
 * its requests do not wait on anything), that may not grow (`canGrow`: shouldGrow for one more
 * waiting request), and whose requests average under PIPELINE_CPU_MS of CPU (`cpuMs`). Such a
 * request would wait for one of these sandboxes anyway; queued on the sandbox, it crosses to the
 * thread in one message with the others of its event-loop turn, and the thread answers them
 * together: one wake-up of each thread per batch instead of per request, which on a saturated core
 * is most of the hand-off's cost (bench/micro/handoff.mjs).
 */
export function mayPipeline(s: { capped: boolean; canGrow: boolean; cpuMs: number }): boolean {
  return s.capped && !s.canGrow && s.cpuMs < PIPELINE_CPU_MS;
}

/**
 * The busy sandbox to queue a request on: the pipelinable one (serving only bodyless requests,
 * none recycling after it) with the fewest requests handed out, fewer than PIPELINE_DEPTH; or null.
 * `busy`: [sandbox, requests handed out on it].
 */
export function pickPipelined<T extends { pipelinable: boolean }>(busy: Iterable<[T, number]>): T | null {
  let best: T | null = null;
  let fewest = PIPELINE_DEPTH;
  for (const [sb, n] of busy) {
    if (n < fewest && sb.pipelinable) {
      best = sb;
      fewest = n;
    }
  }
  return best;
}

/**
 * The running average of a function's CPU per request, ms (weight 1/16 per request; the first
 * request sets it). Pipelining reads it (mayPipeline).
 */
export function cpuAverage(avg: number, cpuMs: number): number {
  return Number.isFinite(avg) ? avg + (cpuMs - avg) / 16 : cpuMs;
}

/**
 * Whether the instance must be replaced after the request it is about to serve (wasmtime's
 * `max_instance_reuse_count`): `served` counts that request; 0 = never, 1 = a fresh instance per request.
 */
export function shouldRecycle(served: number, maxRequestsPerInstance: number): boolean {
  return maxRequestsPerInstance > 0 && served >= maxRequestsPerInstance;
}

/** The idle sandboxes to stop now: those idle longer than `idleTimeoutMs`, oldest first, keeping `minWarm` alive. */
export function toEvict<T extends IdleView>(idle: readonly T[], live: number, minWarm: number, idleTimeoutMs: number, now: number): T[] {
  const spare = live - minWarm;
  if (spare <= 0) return [];
  return idle
    .filter((s) => now - s.idleSince >= idleTimeoutMs)
    .sort((a, b) => a.idleSince - b.idleSince)
    .slice(0, spare);
}

/** An eviction candidate across all functions when the process is at capacity. */
export interface VictimView extends IdleView {
  /** true when its pool would still have at least `min_warm` live sandboxes without it. */
  aboveMinWarm: boolean;
}

/**
 * The least recently used idle sandbox of any function, preferring pools above their `min_warm`
 * (min_warm is kept while capacity allows, but yields to a function that has nothing).
 */
export function pickVictim<T extends VictimView>(candidates: readonly T[]): T | null {
  let best: T | null = null;
  for (const c of candidates) {
    if (best === null) best = c;
    else if (c.aboveMinWarm !== best.aboveMinWarm) {
      if (c.aboveMinWarm) best = c;
    } else if (c.idleSince < best.idleSince) best = c;
  }
  return best;
}

/** Whether one more sandbox of about `estimate` bytes fits within the process-wide caps. */
export function fits(s: { live: number; memory: number; estimate: number; max: number; maxMemory: number }): boolean {
  return s.live + 1 <= s.max && s.memory + s.estimate <= s.maxMemory;
}
