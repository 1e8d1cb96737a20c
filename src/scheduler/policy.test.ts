import { describe, expect, it } from 'vitest';
import { admitBudget, charge, decay, fullBucket, mayRun, pickNext, refill, type Budget, type Contender } from './policy.js';

const budget: Budget = { ratePerSec: 100, burstMs: 500 };

describe('CPU budget token bucket', () => {
  it('starts full, is charged after the fact, and refills at the rate up to the burst', () => {
    let b = fullBucket(budget, 0);
    expect(admitBudget(b, budget)).toEqual({ ok: true });
    b = charge(b, 700); // one long request may overdraw
    expect(b.tokens).toBe(-200);
    expect(admitBudget(b, budget)).toEqual({ ok: false, retryAfterMs: 2000 });
    b = refill(b, budget, 1000);
    expect(b.tokens).toBe(-100);
    b = refill(b, budget, 2000);
    expect(admitBudget(b, budget)).toEqual({ ok: true });
    b = refill(b, budget, 60_000);
    expect(b.tokens).toBe(500);
  });

  it('never refills with a zero rate', () => {
    const zero = { ratePerSec: 0, burstMs: 0 };
    expect(admitBudget(charge(fullBucket(zero, 0), 1), zero)).toEqual({ ok: false, retryAfterMs: Infinity });
  });
});

describe('decay', () => {
  it('halves recent CPU every half-life', () => {
    expect(decay({ cpuMs: 800, at: 0 }, 2000, 1000).cpuMs).toBe(200);
    expect(decay({ cpuMs: 800, at: 5 }, 0, 1000).cpuMs).toBe(800);
  });
});

describe('pickNext: weighted least recent CPU first', () => {
  const c = (tenant: string, recentCpuMs: number, extra: Partial<Contender> = {}): Contender => ({ tenant, recentCpuMs, weight: 1, oldest: 0, running: 0, ...extra });
  it('prefers the tenant that used least CPU recently', () => {
    expect(pickNext([c('heavy', 900), c('light', 5)])?.tenant).toBe('light');
  });
  it('divides by weight', () => {
    expect(pickNext([c('a', 100, { weight: 4 }), c('b', 30)])?.tenant).toBe('a');
  });
  it('breaks ties by fewer running, then oldest waiting', () => {
    expect(pickNext([c('a', 0, { running: 2 }), c('b', 0, { running: 1 })])?.tenant).toBe('b');
    expect(pickNext([c('a', 0, { oldest: 5 }), c('b', 0, { oldest: 3 })])?.tenant).toBe('b');
  });
  it('is null with nobody waiting', () => expect(pickNext([])).toBeNull());

  it('gives a CPU-heavy tenant its share and no more over a simulated run', () => {
    // Two tenants always waiting; each grant costs the tenant's request CPU; decay half-life 1 s.
    const cost: Record<string, number> = { heavy: 200, light: 2 };
    const used: Record<string, number> = { heavy: 0, light: 0 };
    const recent: Record<string, { cpuMs: number; at: number }> = { heavy: { cpuMs: 0, at: 0 }, light: { cpuMs: 0, at: 0 } };
    let now = 0;
    for (let i = 0; i < 400; i++) {
      const next = pickNext(Object.keys(cost).map((t) => c(t, decay(recent[t]!, now, 1000).cpuMs)))!;
      recent[next.tenant] = { cpuMs: decay(recent[next.tenant]!, now, 1000).cpuMs + cost[next.tenant]!, at: now };
      used[next.tenant]! += cost[next.tenant]!;
      now += cost[next.tenant]!;
    }
    // Least attained service equalises CPU: neither gets more than ~its half of the time both want it.
    const share = used.heavy! / (used.heavy! + used.light!);
    expect(share).toBeGreaterThan(0.4);
    expect(share).toBeLessThan(0.6);
  });
});

describe('mayRun', () => {
  it('is work-conserving while slots are free', () => {
    expect(mayRun({ running: 5, totalRunning: 1, slots: 2, weight: 1, activeWeight: 2 })).toBe(true);
  });
  it('lets a tenant below its fair share in when slots are full', () => {
    expect(mayRun({ running: 0, totalRunning: 2, slots: 2, weight: 1, activeWeight: 2 })).toBe(true);
    expect(mayRun({ running: 1, totalRunning: 2, slots: 2, weight: 1, activeWeight: 2 })).toBe(false);
  });
  it('a lone tenant over all slots waits', () => {
    expect(mayRun({ running: 2, totalRunning: 2, slots: 2, weight: 1, activeWeight: 1 })).toBe(false);
  });
  it('weights the share', () => {
    expect(mayRun({ running: 2, totalRunning: 4, slots: 4, weight: 3, activeWeight: 4 })).toBe(true);
    expect(mayRun({ running: 1, totalRunning: 4, slots: 4, weight: 1, activeWeight: 4 })).toBe(false);
  });
});
