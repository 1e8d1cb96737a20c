/**
 * Pool policies as pure functions (STYLE.md "What this means for isola" §3): which idle sandbox
 * to hand out, whether to start another, and which idle sandboxes to stop. The mechanism in
 * ./pool.ts applies them; these are unit-tested on plain data.
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
 * than `maxInstances` are alive or starting, and more requests wait than sandboxes are starting.
 */
export function shouldGrow(s: { idle: number; live: number; starting: number; waiting: number; maxInstances: number }): boolean {
  return s.idle === 0 && s.live + s.starting < s.maxInstances && s.waiting > s.starting;
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
