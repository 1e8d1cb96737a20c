/**
 * Builds the scheduler from the resolved config: run slots (0 = one per CPU core), the recent-CPU
 * half-life, the longest wait, and each `[tenants.<name>]` CPU budget and weight.
 */
import { availableParallelism } from 'node:os';
import type { IsolaConfig } from '../config/types.js';
import { Scheduler, type TenantPolicy } from './scheduler.js';

/**
 * Run slots when `scheduler.slots` is 0: four per core. A slot is held for a whole request, also
 * while its guest waits on I/O, so one per core let two slow streams stall a tenant's other requests.
 */
export function defaultSlots(): number {
  return 4 * availableParallelism();
}

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
    slots: config.scheduler.slots > 0 ? config.scheduler.slots : defaultSlots(),
    halfLifeMs: config.scheduler.halfLifeMs,
    maxWaitMs: config.scheduler.maxWaitMs,
    policyOf: (tenant) => policies.get(tenant) ?? null,
  });
}
