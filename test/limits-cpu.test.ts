/**
 * Per-request limits with real hostile guests (issue 6, item 3): CPU time (the sandbox thread's own
 * clock, watched from the main thread), wall clock, and linear memory. Each stops only the guest
 * that hit it: the sandbox is replaced and the server keeps answering.
 */
import { appendFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuest } from './guests/index.js';
import { rawRequest } from './support/raw.js';
import { startIsola, until, writeConfig, type Isola } from './support/server.js';

let isola: Isola;

beforeAll(async () => {
  const [loop, spin, bomb, sleep, hello] = await Promise.all(
    (['loop', 'spin-after-head', 'memory-bomb', 'sleep', 'hello'] as const).map((n) => buildGuest(n)),
  );
  isola = await startIsola(writeConfig([
    { name: 'loop', wasm: loop, routes: ['/loop'], limits: { cpu: '300ms', timeout: '20s' } },
    { name: 'spin', wasm: spin, routes: ['/spin'], limits: { cpu: '300ms', timeout: '20s' } },
    { name: 'bomb', wasm: bomb, routes: ['/bomb'], limits: { memory: '8MiB' } },
    { name: 'sleep', wasm: sleep, routes: ['/sleep'], limits: { timeout: '300ms', cpu: '100ms' } },
    { name: 'hello', wasm: hello, routes: ['/hello'] },
  ]));
}, 120_000);

afterAll(async () => {
  await isola?.stop();
});

const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;
const accessLog = (id: string | null) => isola.logs().find((l) => l.req_id === id && typeof l.status === 'number');

describe('CPU limit', () => {
  it('stops an infinite loop at limits.cpu with 503 ERR_CPU_LIMIT, and keeps serving others', async () => {
    const t0 = performance.now();
    const [res, other] = await Promise.all([
      fetch(`${isola.url}/loop`),
      new Promise<Response>((r) => setTimeout(() => r(fetch(`${isola.url}/hello`)), 100)),
    ]);
    expect(res.status).toBe(503);
    expect(await errorOf(res)).toMatchObject({ code: 'ERR_CPU_LIMIT', message: expect.stringMatching(/300 ms/) });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(other.status).toBe(200);
    const id = res.headers.get('x-request-id');
    await until(() => accessLog(id) !== undefined, 5000, 'access log');
    expect(accessLog(id)!.cpu_ms as number).toBeGreaterThanOrEqual(250);
    // The sandbox was replaced: the function still answers (and is stopped again).
    expect((await fetch(`${isola.url}/loop`)).status).toBe(503);
  });

  it('aborts a response whose guest spins after sending the head', async () => {
    const res = await rawRequest(isola.port, 'GET /spin HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 10_000 });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toContain('spinning');
    expect(res.complete).toBe(false);
  });
});

describe('wall-clock limit', () => {
  it('answers 504 for a guest sleeping past limits.timeout, using almost no CPU', async () => {
    const res = await fetch(`${isola.url}/sleep`);
    expect(res.status).toBe(504);
    expect((await errorOf(res)).code).toBe('ERR_WALL_TIMEOUT');
    const id = res.headers.get('x-request-id');
    await until(() => accessLog(id) !== undefined, 5000, 'access log');
    expect(accessLog(id)!.cpu_ms as number).toBeLessThan(100); // blocked, not burning: the CPU limit did not fire
  });
});

describe('JS heap limit of a sandbox', () => {
  it('stops a guest that piles up host resources with 503 ERR_MEMORY_LIMIT, and the server survives', async () => {
    const wasm = await buildGuest('fields-bomb');
    const config = writeConfig([{ name: 'pile', wasm, routes: ['/pile'], limits: { cpu: '30s', timeout: '30s' } }]);
    appendFileSync(config, '\n[sandboxes]\nheap = "48MiB"\n');
    const other = await startIsola(config);
    try {
      const res = await fetch(`${other.url}/pile`);
      expect(res.status).toBe(503);
      const err = await errorOf(res);
      expect(err.code).toBe('ERR_MEMORY_LIMIT');
      expect(err.message).toMatch(/JS heap/);
      expect((await fetch(`${other.url}/pile`)).status).toBe(503); // replaced, and stopped again
    } finally {
      await other.stop();
    }
  }, 60_000);
});

describe('memory limit', () => {
  it('stops a memory.grow bomb at limits.memory with 503 ERR_MEMORY_LIMIT', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${isola.url}/bomb`);
      expect(res.status).toBe(503);
      const err = await errorOf(res);
      expect(err.code).toBe('ERR_MEMORY_LIMIT');
      expect(err.message).toMatch(/8388608 bytes/);
    }
    expect((await fetch(`${isola.url}/hello`)).status).toBe(200);
  });
});
