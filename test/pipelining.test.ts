/**
 * Pipelining end to end (issue 5's throughput work): short bodyless requests of a compute-bound
 * function at its sandbox cap queue on a busy sandbox and cross to its thread in batches. Real
 * `isola dev`, the WAT `path` guest (answers its own path; `/spin…` loops forever), real HTTP on
 * loopback. A new function starts out taken as compute-bound (capped, so pipelinable); each test
 * first sends a few sequential requests so that its average CPU per request is known.
 */
import { availableParallelism } from 'node:os';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildGuest } from './guests/index.js';
import { scrape } from './support/metrics.js';
import { startIsola, until, writeConfig, type Isola } from './support/server.js';

let pathGuest: string;
let isola: Isola | null = null;
let admin = '';

beforeAll(async () => {
  pathGuest = await buildGuest('path');
}, 120_000);

afterEach(async () => {
  await isola?.stop();
  isola = null;
});

async function start(limits: Record<string, string>, pool: Record<string, number> = { min_warm: 1, max_instances: 1 }): Promise<Isola> {
  const config = writeConfig([{ name: 'p', wasm: pathGuest, routes: ['/*'], limits, pool }]);
  isola = await startIsola(config, ['--admin-port', '0']);
  await until(() => /admin on http:\/\/\S+/.test(isola!.stderr()), 5000, 'admin line');
  admin = /admin on (http:\/\/\S+)/.exec(isola.stderr())![1]!;
  return isola;
}

async function get(i: Isola, path: string): Promise<{ status: number; body: string; code?: string }> {
  // fetch opens a connection per request in flight (no per-origin limit), so concurrent requests really are concurrent.
  const res = await fetch(i.url + path);
  const body = await res.text();
  const code = res.status >= 400 ? (JSON.parse(body) as { error: { code: string } }).error.code : undefined;
  return { status: res.status, body, code };
}

/** Sequential requests: the function's average CPU per request becomes known (pipelining needs it under 1 ms). */
async function warmUp(i: Isola): Promise<void> {
  for (let n = 0; n < 50; n++) expect((await get(i, `/warm/${n}`)).status).toBe(200);
}

const pipelined = async () => (await scrape(admin + '/metrics')).value('isola_pipelined_requests_total', { tenant: 'p', function: 'p' });

describe('pipelining', () => {
  it('queues concurrent short requests on the busy sandbox and answers each with its own response', async () => {
    const i = await start({});
    await warmUp(i);
    expect(await pipelined()).toBe(0); // sequential requests always find the sandbox idle
    const paths = Array.from({ length: 64 }, (_, n) => `/r/${n}?q=${n}`);
    const answers = await Promise.all(paths.map((p) => get(i, p)));
    answers.forEach((a, n) => expect(a).toEqual({ status: 200, body: `${paths[n]}\n`, code: undefined }));
    expect(await pipelined()).toBeGreaterThan(0);
  }, 60_000);

  it('never pipelines requests with a body', async () => {
    const i = await start({});
    await warmUp(i);
    const answers = await Promise.all(Array.from({ length: 32 }, async (_, n) => {
      const res = await fetch(`${i.url}/post/${n}`, { method: 'POST', body: 'x'.repeat(100) });
      return { status: res.status, body: await res.text() };
    }));
    answers.forEach((a, n) => expect(a).toEqual({ status: 200, body: `/post/${n}\n` }));
    expect(await pipelined()).toBe(0);
  }, 60_000);

  it.each([
    ['CPU', { cpu: '150ms', timeout: '10s' }, 503, 'ERR_CPU_LIMIT'],
    ['wall-clock', { cpu: '10s', timeout: '300ms' }, 504, 'ERR_WALL_TIMEOUT'],
  ] as const)('stops a runaway request at its %s limit; the requests queued with it on its sandbox are served again elsewhere', async (_, limits, status, code) => {
    const i = await start(limits);
    await warmUp(i);
    // All at once, the runaway one among them: those that find the sandbox busy queue on it, behind
    // or before the runaway one. On a loaded machine the requests may trickle in after the runaway
    // one has run long (then nothing queues behind it), so the scene is played until some did.
    let queued = false;
    for (let attempt = 0; attempt < 5 && !queued; attempt++) {
      const before = await pipelined();
      const paths = Array.from({ length: 12 }, (_, n) => `/with/${attempt}/${n}`);
      const sent = paths.map((p) => get(i, p));
      sent.splice(4, 0, get(i, '/spin'));
      const answers = await Promise.all(sent);
      const [spin] = answers.splice(4, 1);
      expect(spin).toMatchObject({ status, code });
      answers.forEach((a, n) => expect(a).toEqual({ status: 200, body: `${paths[n]}\n`, code: undefined }));
      queued = (await pipelined()) > before;
      if (!queued) await warmUp(i); // the limit raised the average CPU: short requests bring it down
    }
    expect(queued).toBe(true);
    // The pool is whole again: the next requests are served as usual.
    for (let n = 0; n < 5; n++) expect(await get(i, `/again/${n}`)).toEqual({ status: 200, body: `/again/${n}\n`, code: undefined });
    const log = i.logs().find((l) => l.path === '/spin' && typeof l.status === 'number');
    expect(log).toMatchObject({ status, error_code: code });
  }, 60_000);

  it('queues nothing behind a request that has run long, and lifts the sandbox cap for the others', async () => {
    const i = await start({ cpu: '3s', timeout: '5s' }, { min_warm: 1, max_instances: 4 });
    await warmUp(i);
    const before = await pipelined();
    let spinDone = false;
    const spin = get(i, '/spin').finally(() => (spinDone = true));
    await new Promise((r) => setTimeout(r, 400)); // the runaway request has now run long (policy.CAP_LIFT_RUN_MS)
    const paths = Array.from({ length: 12 }, (_, n) => `/later/${n}`);
    const answers = await Promise.all(paths.map((p) => get(i, p)));
    expect(spinDone).toBe(false); // served by other sandboxes while the runaway one still runs
    answers.forEach((a, n) => expect(a).toEqual({ status: 200, body: `${paths[n]}\n`, code: undefined }));
    expect(await pipelined()).toBe(before);
    expect(await spin).toMatchObject({ status: 503, code: 'ERR_CPU_LIMIT' });
  }, 60_000);

  it('serves concurrent requests of a function with max_requests_per_instance (instances replaced mid-batch)', async () => {
    const i = await start({}, { min_warm: 1, max_instances: 1, max_requests_per_instance: 5 });
    await warmUp(i);
    const paths = Array.from({ length: 64 }, (_, n) => `/r/${n}`);
    const answers = await Promise.all(paths.map((p) => get(i, p)));
    answers.forEach((a, n) => expect(a).toEqual({ status: 200, body: `${paths[n]}\n`, code: undefined }));
  }, 60_000);

  it('answers the requests that arrive among several runaway ones (a request served again is not queued behind another)', async () => {
    const i = await start({ timeout: '1s' });
    await warmUp(i);
    const sent: Array<Promise<{ status: number; body: string; code?: string }>> = [];
    for (const p of ['/spin1', '/q/a', '/spin2', '/q/b', '/spin3', '/q/c']) {
      sent.push(get(i, p));
      await new Promise((r) => setTimeout(r, 5));
    }
    const answers = await Promise.all(sent);
    expect(answers.filter((_, n) => n % 2 === 0).map((a) => a.code)).toEqual(['ERR_WALL_TIMEOUT', 'ERR_WALL_TIMEOUT', 'ERR_WALL_TIMEOUT']);
    expect(answers.filter((_, n) => n % 2 === 1)).toEqual(['/q/a', '/q/b', '/q/c'].map((p) => ({ status: 200, body: `${p}\n`, code: undefined })));
  }, 60_000);

  it('keeps a request whose response has begun when it withdraws the ones queued behind a long one', async () => {
    // `/nap/a` sends its head, naps, then finishes; its end is held back in the sandbox while the
    // runaway `/spin/x` queued behind it runs. Withdrawing the requests behind the runaway must
    // leave `/nap/a` alone: handing it back would fail it as crashed and kill the sandbox, and
    // with it the runaway before its own limit (seen in the bench: a 500 "terminated").
    for (let attempt = 0; attempt < 8; attempt++) {
      // A fresh server each time: a played-out scene leaves the pool uncapped for 5 s (/nap waited,
      // the runaway ran long), so the next one would not be pipelined at all.
      await isola?.stop();
      const i = await start({ timeout: '2s' });
      await warmUp(i);
      // Concurrent: the sandbox is busy with the first ones, the rest queue on it in this order.
      const first = Array.from({ length: 4 }, (_, n) => get(i, `/r/${attempt}/${n}`));
      const nap = get(i, `/nap/${attempt}`);
      const spin = get(i, `/spin/${attempt}`);
      const behind = get(i, `/q/${attempt}`);
      for (const [n, a] of (await Promise.all(first)).entries()) expect(a).toEqual({ status: 200, body: `/r/${attempt}/${n}\n`, code: undefined });
      expect(await nap).toEqual({ status: 200, body: `/nap/${attempt}\n`, code: undefined });
      expect(await behind).toEqual({ status: 200, body: `/q/${attempt}\n`, code: undefined });
      expect(await spin).toMatchObject({ status: 504, code: 'ERR_WALL_TIMEOUT' });
      // The scene: /nap ran on the sandbox (not handed back) and /q, behind the runaway, was. On
      // a loaded machine the requests may arrive in another order (/nap napping before /spin
      // arrives lifts the cap: /spin then waits in the pool's queue); then it is played again.
      const paths = [`/nap/${attempt}`, `/spin/${attempt}`, `/q/${attempt}`];
      await until(() => paths.every((p) => i.logs().some((l) => l.path === p)), 5000, 'access lines');
      const requeued = (p: string) => i.logs().some((l) => l.path === p && (l.requeues as number) >= 1);
      if (requeued(`/q/${attempt}`) && !requeued(`/nap/${attempt}`)) return;
    }
    throw new Error('the scene never played: /nap served on the sandbox, /q withdrawn from behind the runaway');
  }, 120_000);

  it('charges each request of a batch its own share of the CPU (cpu_ms in the access log)', async () => {
    const i = await start({});
    await warmUp(i);
    await Promise.all(Array.from({ length: 64 }, (_, n) => get(i, `/cpu/${n}`)));
    await until(() => i.logs().filter((l) => String(l.path).startsWith('/cpu/') && typeof l.cpu_ms === 'number').length === 64, 5000, 'access lines');
    const cpu = i.logs().filter((l) => String(l.path).startsWith('/cpu/')).map((l) => l.cpu_ms as number);
    // Without sharing, requests run back to back see the thread's CPU clock move only now and then: most read 0.
    expect(cpu.filter((c) => c === 0).length).toBeLessThan(8);
  }, 60_000);

  it('withdraws the requests queued behind one that turns out to run long, and serves them elsewhere at once', async () => {
    const cap = availableParallelism(); // sandboxes of a compute-bound function: one per CPU
    const i = await start({ cpu: '4s', timeout: '20s' }, { min_warm: cap, max_instances: cap + 2 });
    let served = false;
    for (let attempt = 0; attempt < 5 && !served; attempt++) {
      await warmUp(i);
      let spinDone = false;
      const spin = get(i, `/spin/${attempt}`).finally(() => (spinDone = true));
      const paths = Array.from({ length: 15 }, (_, n) => `/behind/${attempt}/${n}`);
      const answers = await Promise.all(paths.map((p) => get(i, p)));
      expect(spinDone).toBe(false); // all answered while the runaway still runs (it stops at 4 s of CPU)
      answers.forEach((a, n) => expect(a).toEqual({ status: 200, body: `${paths[n]}\n`, code: undefined }));
      expect(await spin).toMatchObject({ status: 503, code: 'ERR_CPU_LIMIT' });
      // Some were queued behind the runaway one and withdrawn (on a loaded machine they may all
      // have gone elsewhere; then the scene is played again).
      served = i.logs().some((l) => String(l.path).startsWith(`/behind/${attempt}/`) && (l.requeues as number) >= 1);
    }
    expect(served).toBe(true);
  }, 120_000);
});
