/**
 * Builds the scheduler from the resolved config: run slots (0 = one per CPU core), the recent-CPU
 * half-life, the longest wait, and each `[tenants.<name>]` CPU budget and weight.
 */
import { availableParallelism } from 'node:os';
import type { IsolaConfig } from '../config/types.js';
import { Scheduler, type TenantPolicy } from './scheduler.js';

/** The scheduler for `config`; tenants not listed get no budget and weight 1. */
export function schedulerFor(config: Pick<IsolaConfig, 'scheduler' | 'tenants'>): Scheduler {
  const policies = new Map<string, TenantPolicy>();
  for (const [name, t] of Object.entries(config.tenants)) {
    policies.set(name, {
      budget: t.cpuBudgetMsPerSec === null ? null : { ratePerSec: t.cpuBudgetMsPerSec, burstMs: t.burstMs },
      weight: t.weight,
      overBudget: t.overBudget,
    });
  }
  return new Scheduler({
    slots: config.scheduler.slots > 0 ? config.scheduler.slots : availableParallelism(),
    halfLifeMs: config.scheduler.halfLifeMs,
    maxWaitMs: config.scheduler.maxWaitMs,
    policyOf: (tenant) => policies.get(tenant) ?? null,
  });
}
