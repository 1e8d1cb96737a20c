/**
 * Every wait a guest's host call makes in the sandbox thread goes through {@link blockOn}, which
 * adds the wall time it slept to a per-thread tally. The tally, taken once per request, tells
 * the pool whether requests wait on something (the client, a timer, backpressure) or only
 * compute: extra sandboxes help the first kind and only add overhead to the second (see
 * `shouldGrow` in ../pool/policy.ts).
 */

let blockedMs = 0;

/**
 * `Atomics.wait(array, index, value, timeoutMs)`, counted as blocked time. Returns what
 * Atomics.wait returns ("ok" | "not-equal" | "timed-out").
 */
export function blockOn(array: Int32Array, index: number, value: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
  const t0 = performance.now();
  const r = Atomics.wait(array, index, value, timeoutMs);
  blockedMs += performance.now() - t0;
  return r;
}

/** Wall time spent in {@link blockOn} since the last call, ms; resets the tally. */
export function takeBlockedMs(): number {
  const ms = blockedMs;
  blockedMs = 0;
  return ms;
}
