/**
 * Every wait a guest's host call makes in the sandbox thread goes through {@link blockOn}, which
 * adds the wall time it slept to a per-thread tally. The tally, taken once per request, tells
 * the pool whether requests wait on something (the client, a timer, backpressure) or only
 * compute: extra sandboxes help the first kind and only add overhead to the second (see
 * `shouldGrow` in ../pool/policy.ts). While a wait lasts, the control block's BLOCKED word is 1,
 * so the pool also sees requests that are blocked now, before they finish.
 */

import { BLOCKED } from './shared.js';

let blockedMs = 0;
/** The sandbox's control block, whose BLOCKED word says "blocked right now" to the pool. */
let control: Int32Array | null = null;

/** Called before every wait: the sandbox sends the messages it was holding (see worker.ts). */
let beforeBlock: (() => void) | null = null;

/** Sets what runs before every wait (the sandbox's flush of held messages). */
export function setBeforeBlock(fn: () => void): void {
  beforeBlock = fn;
}

/** Publishes the blocked state in this control block from now on (the sandbox's, at bind). */
export function publishBlockedIn(ctl: Int32Array): void {
  control = ctl;
}

/**
 * `Atomics.wait(array, index, value, timeoutMs)`, counted as blocked time and shown in the
 * control block's BLOCKED word while it lasts. Returns what Atomics.wait returns
 * ("ok" | "not-equal" | "timed-out").
 */
export function blockOn(array: Int32Array, index: number, value: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
  beforeBlock?.();
  const t0 = performance.now();
  if (control) Atomics.store(control, BLOCKED, 1);
  const r = Atomics.wait(array, index, value, timeoutMs);
  if (control) Atomics.store(control, BLOCKED, 0);
  blockedMs += performance.now() - t0;
  return r;
}

/** Wall time spent in {@link blockOn} since the last call, ms; resets the tally. */
export function takeBlockedMs(): number {
  const ms = blockedMs;
  blockedMs = 0;
  return ms;
}
