/**
 * Deterministic fuel metering end to end (issue 6, item 2): `metering = "fuel"` instruments the
 * guest's core modules at load time; fuel per request is reported in the access log, identical
 * across runs of the same request, and limited (503 ERR_FUEL_LIMIT).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileC } from '../scripts/build-wagi-examples.mjs';
import { buildGuest } from './guests/index.js';
import { ROOT, startIsola, until, writeConfig, type Isola } from './support/server.js';

let isola: Isola;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isola-fuel-'));
  compileC(join(ROOT, 'test/wagi-guests/guest.c'), join(dir, 'guest.wasm'));
  const [hello, loop] = await Promise.all([buildGuest('headers'), buildGuest('loop')]);
  const metered = 'metering = "fuel"';
  isola = await startIsola(writeConfig([
    { name: 'headers', wasm: hello, routes: ['/headers'], extra: metered, pool: { max_requests_per_instance: 1 } },
    { name: 'loop', wasm: loop, routes: ['/loop'], extra: metered, limits: { fuel: 5_000_000, cpu: '20s' } },
    { name: 'cgi', wasm: join(dir, 'guest.wasm'), routes: ['/cgi/*'], extra: metered },
  ]));
}, 180_000);

afterAll(async () => {
  await isola?.stop();
});

const fuelOf = async (res: Response): Promise<number> => {
  await res.arrayBuffer();
  const id = res.headers.get('x-request-id');
  await until(() => isola.logs().some((l) => l.req_id === id && typeof l.status === 'number'), 5000, 'access log');
  return isola.logs().find((l) => l.req_id === id && typeof l.status === 'number')!.fuel as number;
};

describe('fuel metering', () => {
  it('reports the same fuel for the same request over 10 runs (component, fresh instance each)', async () => {
    const counts: number[] = [];
    for (let i = 0; i < 10; i++) counts.push(await fuelOf(await fetch(`${isola.url}/headers`, { headers: { 'x-same': 'yes' } })));
    expect(counts[0]).toBeGreaterThan(100);
    expect(new Set(counts).size).toBe(1);
    // More work, more fuel: a longer header list means more host calls and copying in the guest.
    const more = await fuelOf(await fetch(`${isola.url}/headers`, { headers: { 'x-same': 'yes', 'x-more': 'a'.repeat(2000) } }));
    expect(more).toBeGreaterThan(counts[0]!);
  });

  it('reports identical fuel for a WAGI module (a fresh instance per request)', async () => {
    const counts: number[] = [];
    for (let i = 0; i < 10; i++) counts.push(await fuelOf(await fetch(`${isola.url}/cgi/?count`, { method: 'POST', body: 'x'.repeat(1000) })));
    expect(counts[0]).toBeGreaterThan(1000);
    expect(new Set(counts).size).toBe(1);
  });

  it('stops a guest at limits.fuel with 503 ERR_FUEL_LIMIT', async () => {
    const t0 = performance.now();
    const res = await fetch(`${isola.url}/loop`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ERR_FUEL_LIMIT');
    expect(body.error.message).toMatch(/5000000/);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect((await fetch(`${isola.url}/headers`)).status).toBe(200);
  });
});
