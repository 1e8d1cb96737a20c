/**
 * The scheduler (DESIGN.md request path): per-tenant CPU budgets, checked before a request is
 * admitted (429 + Retry-After when a tenant is in debt, or a bounded wait when configured), and
 * run slots shared fairly between tenants: at most `slots` guests run at once (about one per core)
 * unless a tenant below its fair share needs one, and when slots free up, waiting tenants are
 * served least-recent-CPU first (./policy.ts). CPU is charged after each request from the sandbox
 * thread's measured CPU time.
 */
import { IsolaError } from '../errors.js';
import {
  admitBudget, charge, decay, fullBucket, mayRun, pickNext, refill,
  type Bucket, type Budget, type Contender, type Usage,
} from './policy.js';

/** A tenant's scheduling settings. */
export interface TenantPolicy {
  /** CPU budget, or null for none. */
  budget: Budget | null;
  /** Share weight (default 1). */
  weight: number;
  /** Over budget: reject with 429 (default), or wait for the bucket to refill (bounded by `maxWaitMs`). */
  overBudget: 'reject' | 'wait';
}

export interface SchedulerOptions {
  /** Guests running at once before tenants queue (default: the number of CPU cores). */
  slots: number;
  /** Half-life of the recent-CPU score, ms (default 1000). */
  halfLifeMs?: number;
  /** Longest wait for a run slot or a budget refill, ms (default 30000); then 503 / 429. */
  maxWaitMs?: number;
  /** A tenant's settings; unknown tenants get no budget and weight 1. */
  policyOf?: (tenant: string) => TenantPolicy | null;
}

interface TenantState {
  running: number;
  waiting: Array<{ resolve: () => void; reject: (e: unknown) => void; since: number; timer: NodeJS.Timeout }>;
  usage: Usage;
  bucket: Bucket | null;
  /** Totals for telemetry: CPU ms charged, requests, rejections. */
  cpuMsTotal: number;
  requests: number;
  rejected: number;
}

const DEFAULT_POLICY: TenantPolicy = { budget: null, weight: 1, overBudget: 'reject' };

export class Scheduler {
  private readonly tenants = new Map<string, TenantState>();
  private totalRunning = 0;
  private readonly halfLifeMs: number;
  private readonly maxWaitMs: number;

  constructor(private readonly options: SchedulerOptions) {
    this.halfLifeMs = options.halfLifeMs ?? 1000;
    this.maxWaitMs = options.maxWaitMs ?? 30_000;
  }

  private policy(tenant: string): TenantPolicy {
    return this.options.policyOf?.(tenant) ?? DEFAULT_POLICY;
  }

  private state(tenant: string): TenantState {
    let s = this.tenants.get(tenant);
    if (!s) {
      s = { running: 0, waiting: [], usage: { cpuMs: 0, at: Date.now() }, bucket: null, cpuMsTotal: 0, requests: 0, rejected: 0 };
      this.tenants.set(tenant, s);
    }
    return s;
  }

  /**
   * Checks the tenant's CPU budget. Returns null when the request may go on, or a promise that
   * resolves when it may (overBudget = "wait"). Throws IsolaError ERR_TENANT_BUDGET (429, with
   * `details.retryAfterMs`) when the tenant is in debt and rejects.
   */
  checkBudget(tenant: string): Promise<void> | null {
    const p = this.policy(tenant);
    if (!p.budget) return null;
    const s = this.state(tenant);
    const now = Date.now();
    s.bucket = s.bucket ? refill(s.bucket, p.budget, now) : fullBucket(p.budget, now);
    const verdict = admitBudget(s.bucket, p.budget);
    if (verdict.ok) return null;
    if (p.overBudget === 'wait' && verdict.retryAfterMs <= this.maxWaitMs) {
      return new Promise((r) => setTimeout(r, verdict.retryAfterMs).unref());
    }
    s.rejected++;
    const seconds = Number.isFinite(verdict.retryAfterMs) ? Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)) : 60;
    throw new IsolaError('ERR_TENANT_BUDGET', `tenant "${tenant}" is over its CPU budget of ${p.budget.ratePerSec} ms/s; retry in ${seconds} s`, {
      status: 429, user: true, details: { retryAfterMs: verdict.retryAfterMs, retryAfter: seconds },
    });
  }

  /**
   * Takes a run slot for the tenant: at once (returns null) when the policy allows, else a promise
   * resolved in fair order. Rejects with IsolaError ERR_OVERLOADED (503) after `maxWaitMs`.
   * Every successful enter must be followed by exactly one `leave`.
   *
   * A request queued behind others on a busy sandbox (pipelining, ../pool/policy.ts mayPipeline)
   * takes no slot: it runs only after the sandbox's earlier requests, on the slot they hold.
   * It calls only `leave(tenant, cpuNs, true)`.
   */
  enter(tenant: string): Promise<void> | null {
    const s = this.state(tenant);
    if (s.waiting.length === 0 && this.allowed(tenant, s)) {
      s.running++;
      this.totalRunning++;
      return null;
    }
    return new Promise<void>((resolve, reject) => {
      const w = {
        resolve,
        reject,
        since: performance.now(),
        timer: setTimeout(() => {
          const i = s.waiting.indexOf(w);
          if (i >= 0) s.waiting.splice(i, 1);
          reject(new IsolaError('ERR_OVERLOADED', `tenant "${tenant}": no run slot within ${this.maxWaitMs} ms`, { status: 503 }));
        }, this.maxWaitMs),
      };
      s.waiting.push(w);
    });
  }

  /**
   * Gives a run slot back and charges `cpuNs` of measured CPU to the tenant. `behind`: the request
   * was pipelined and took no slot (see `enter`); it is only charged.
   */
  leave(tenant: string, cpuNs: number, behind = false): void {
    const s = this.state(tenant);
    if (!behind) {
      s.running--;
      this.totalRunning--;
    }
    const cpuMs = cpuNs / 1e6;
    const now = Date.now();
    s.usage = decay(s.usage, now, this.halfLifeMs);
    s.usage = { cpuMs: s.usage.cpuMs + cpuMs, at: now };
    s.cpuMsTotal += cpuMs;
    s.requests++;
    const p = this.policy(tenant);
    if (p.budget) s.bucket = charge(s.bucket ? refill(s.bucket, p.budget, now) : fullBucket(p.budget, now), cpuMs);
    this.dispatch();
  }

  private allowed(tenant: string, s: TenantState): boolean {
    if (this.totalRunning < this.options.slots) return true;
    let activeWeight = 0;
    for (const [t, st] of this.tenants) if (st.running > 0 || st.waiting.length > 0 || t === tenant) activeWeight += this.policy(t).weight;
    return mayRun({ running: s.running, totalRunning: this.totalRunning, slots: this.options.slots, weight: this.policy(tenant).weight, activeWeight });
  }

  /** Hands free slots to waiting tenants, least recent CPU first. */
  private dispatch(): void {
    for (;;) {
      const now = Date.now();
      const contenders: Contender[] = [];
      for (const [tenant, s] of this.tenants) {
        if (s.waiting.length === 0) continue;
        s.usage = decay(s.usage, now, this.halfLifeMs);
        contenders.push({ tenant, recentCpuMs: s.usage.cpuMs, weight: this.policy(tenant).weight, oldest: s.waiting[0]!.since, running: s.running });
      }
      const next = pickNext(contenders.filter((c) => this.allowed(c.tenant, this.tenants.get(c.tenant)!)));
      if (!next) return;
      const s = this.tenants.get(next.tenant)!;
      const w = s.waiting.shift()!;
      clearTimeout(w.timer);
      s.running++;
      this.totalRunning++;
      w.resolve();
    }
  }

  /** Per-tenant state for telemetry. */
  snapshot(): Record<string, { running: number; waiting: number; recentCpuMs: number; cpuMsTotal: number; requests: number; rejected: number; budgetTokensMs: number | null }> {
    const out: ReturnType<Scheduler['snapshot']> = {};
    const now = Date.now();
    for (const [t, s] of this.tenants) {
      out[t] = {
        running: s.running,
        waiting: s.waiting.length,
        recentCpuMs: decay(s.usage, now, this.halfLifeMs).cpuMs,
        cpuMsTotal: s.cpuMsTotal,
        requests: s.requests,
        rejected: s.rejected,
        budgetTokensMs: s.bucket?.tokens ?? null,
      };
    }
    return out;
  }
}
