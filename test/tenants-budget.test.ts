/**
 * Per-tenant CPU budgets (issue 6, item 4) under `isola dev`, with tenants declared in isola.toml:
 * a tenant that spent its budget gets 429 + Retry-After while another tenant is served.
 */
import { appendFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuest } from './guests/index.js';
import { startIsola, until, writeConfig, type Isola } from './support/server.js';

let isola: Isola;

beforeAll(async () => {
  const [loop, hello] = await Promise.all([buildGuest('loop'), buildGuest('hello')]);
  const config = writeConfig([
    { name: 'burner', wasm: loop, routes: ['/burn'], extra: 'tenant = "greedy"', limits: { cpu: '150ms' } },
    { name: 'greeter', wasm: hello, routes: ['/hello'], extra: 'tenant = "polite"' },
  ]);
  appendFileSync(config, '\n[tenants.greedy]\ncpu_budget = "20ms"\nburst = "100ms"\n\n[tenants.polite]\ncpu_budget = "20ms"\nburst = "100ms"\n');
  isola = await startIsola(config);
}, 120_000);

afterAll(async () => {
  await isola?.stop();
});

describe('CPU budgets', () => {
  it('answers 429 with Retry-After to a tenant over its budget, while another tenant is served', async () => {
    // 150 ms of CPU against a 100 ms burst: the tenant is now in debt.
    const first = await fetch(`${isola.url}/burn`);
    expect(first.status).toBe(503);
    const over = await fetch(`${isola.url}/burn`);
    expect(over.status).toBe(429);
    const body = (await over.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ERR_TENANT_BUDGET');
    expect(body.error.message).toMatch(/greedy/);
    // Debt of ~50 ms at 20 ms/s: a couple of seconds.
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(over.headers.get('retry-after'))).toBeLessThanOrEqual(5);
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${isola.url}/hello`);
      expect(res.status).toBe(200);
    }
    await until(() => isola.logs().filter((l) => l.tenant === 'polite' && l.status === 200).length === 5, 5000, 'access logs');
  });
});
