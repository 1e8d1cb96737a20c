/**
 * Scheduling policies as pure functions with deterministic inputs (STYLE.md §3):
 * per-tenant CPU budgets (a token bucket of CPU milliseconds), the recent-CPU score that orders
 * tenants (exponentially decayed CPU time divided by weight: least attained service first, a
 * weighted fair queueing discipline), and the admission rule for run slots (work-conserving, with
 * each active tenant guaranteed its fair share of slots even when others hold them all).
 */

/** A tenant's CPU allowance: `ratePerSec` ms of CPU per second of wall time, up to `burstMs` saved up. */
export interface Budget {
  ratePerSec: number;
  burstMs: number;
}

/** A token bucket of CPU ms. `tokens` may go negative: a request's CPU is charged after it ran. */
export interface Bucket {
  tokens: number;
  /** Wall time of the last refill, ms. */
  at: number;
}

/** A full bucket at time `now`. */
export function fullBucket(budget: Budget, now: number): Bucket {
  return { tokens: budget.burstMs, at: now };
}

/** The bucket refilled up to `now` (never above the burst). */
export function refill(b: Bucket, budget: Budget, now: number): Bucket {
  const tokens = Math.min(budget.burstMs, b.tokens + ((now - b.at) / 1000) * budget.ratePerSec);
  return { tokens, at: Math.max(now, b.at) };
}

/** The bucket after charging `cpuMs` of CPU. */
export function charge(b: Bucket, cpuMs: number): Bucket {
  return { tokens: b.tokens - cpuMs, at: b.at };
}

/**
 * Whether a request may start: only while the bucket is not in debt. When not, also how long
 * until it is (ms, for Retry-After), at the budget's refill rate.
 */
export function admitBudget(b: Bucket, budget: Budget): { ok: true } | { ok: false; retryAfterMs: number } {
  if (b.tokens >= 0) return { ok: true };
  if (budget.ratePerSec <= 0) return { ok: false, retryAfterMs: Number.POSITIVE_INFINITY };
  return { ok: false, retryAfterMs: Math.ceil((-b.tokens / budget.ratePerSec) * 1000) };
}

/** Recent CPU use, decayed exponentially with `halfLifeMs` (ms of CPU, as of time `at`). */
export interface Usage {
  cpuMs: number;
  at: number;
}

/** `u` decayed to time `now`. */
export function decay(u: Usage, now: number, halfLifeMs: number): Usage {
  if (now <= u.at) return u;
  return { cpuMs: u.cpuMs * Math.pow(0.5, (now - u.at) / halfLifeMs), at: now };
}

/** A tenant with requests waiting for a run slot. */
export interface Contender {
  tenant: string;
  /** Recent CPU, already decayed to now, ms. */
  recentCpuMs: number;
  /** Share weight (default 1): a tenant of weight 2 gets twice the CPU of one of weight 1. */
  weight: number;
  /** When its oldest waiting request arrived, ms (ties go to the oldest). */
  oldest: number;
  /** Run slots it holds now. */
  running: number;
}

/**
 * The next tenant to get a free run slot: the least recent CPU per unit of weight (so a tenant that
 * burns CPU gets its share and no more), ties broken by fewest running, then oldest waiting.
 */
export function pickNext(contenders: readonly Contender[]): Contender | null {
  let best: Contender | null = null;
  for (const c of contenders) {
    if (best === null) {
      best = c;
      continue;
    }
    const a = c.recentCpuMs / c.weight;
    const b = best.recentCpuMs / best.weight;
    if (a < b || (a === b && (c.running < best.running || (c.running === best.running && c.oldest < best.oldest)))) best = c;
  }
  return best;
}

/**
 * Whether a tenant's request may take a run slot now. Work-conserving: yes while any slot is free.
 * When all are taken, a tenant still below its fair share (slots × weight / total weight of active
 * tenants, at least 1) is let in anyway — over-subscribing by at most one slot per active tenant —
 * so a light tenant never waits behind a heavy one's long requests.
 */
export function mayRun(s: { running: number; totalRunning: number; slots: number; weight: number; activeWeight: number }): boolean {
  if (s.totalRunning < s.slots) return true;
  const share = Math.max(1, Math.floor((s.slots * s.weight) / Math.max(s.weight, s.activeWeight)));
  return s.running < share;
}
