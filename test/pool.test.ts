/**
 * The instance pool end to end (issue 5): real `isola dev`, real guests, the pool observed through
 * its debug log events (`pool start|evict|recycle|reject`) and the access log's `cold`/`queue_ms`.
 */
import { request } from 'node:http';
import { availableParallelism } from 'node:os';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildGuest } from './guests/index.js';
import { startIsola, until, writeConfig, type FunctionSpec, type Isola } from './support/server.js';

let hello: string;
let counter: string;
let big: string;
let isola: Isola | null = null;

beforeAll(async () => {
  hello = await buildGuest('hello');
  counter = await buildGuest('counter');
  big = await buildGuest('big-response');
}, 120_000);

afterEach(async () => {
  await isola?.stop();
  isola = null;
});

const start = async (fns: FunctionSpec[], sandboxes: Record<string, number> = {}) => {
  const config = writeConfig(fns);
  if (Object.keys(sandboxes).length > 0) {
    const { appendFileSync } = await import('node:fs');
    appendFileSync(config, '\n[sandboxes]\n' + Object.entries(sandboxes).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
  }
  isola = await startIsola(config, [], { ISOLA_LOG_LEVEL: 'debug' });
  return isola;
};
const events = (i: Isola, fn: string, type: string) => i.logs().filter((l) => l.function === fn && l.event === type);
const access = (i: Isola, id: string | null) => i.logs().find((l) => l.req_id === id && typeof l.status === 'number');

describe('pre-warming and blank sandboxes', () => {
  it('pre-warms min_warm so the first request is warm', async () => {
    const i = await start([{ name: 'warm', wasm: hello, routes: ['/'], pool: { min_warm: 1 } }]);
    const res = await fetch(i.url);
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id');
    await until(() => access(i, id) !== undefined, 5000, 'access log');
    expect(access(i, id)).toMatchObject({ cold: false, queue_ms: 0 });
    expect(events(i, 'warm', 'start')).toMatchObject([{ cold: false }]);
  });

  it('serves a min_warm = 0 function cold from a blank sandbox (no thread start)', async () => {
    const i = await start([{ name: 'lazy', wasm: hello, routes: ['/'], pool: { min_warm: 0 } }], { blank: 2 });
    await new Promise((r) => setTimeout(r, 500)); // let the blank sandboxes come up
    const res = await fetch(i.url);
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id');
    await until(() => access(i, id) !== undefined, 5000, 'access log');
    expect(access(i, id)).toMatchObject({ cold: true });
    expect(events(i, 'lazy', 'start')).toMatchObject([{ cold: true, fromBlank: true }]);
  });
});

describe('eviction', () => {
  it('stops a sandbox idle past idle_timeout, down to min_warm', async () => {
    const i = await start([{ name: 'idle', wasm: hello, routes: ['/'], pool: { min_warm: 0, idle_timeout: '200ms' } }]);
    expect((await fetch(i.url)).status).toBe(200);
    await until(() => events(i, 'idle', 'evict').length === 1, 5000, 'idle eviction');
    expect(events(i, 'idle', 'evict')[0]).toMatchObject({ reason: 'idle' });
    const res = await fetch(i.url);
    const id = res.headers.get('x-request-id');
    await until(() => access(i, id) !== undefined, 5000, 'access log');
    expect(access(i, id)).toMatchObject({ cold: true });
  });

  it('evicts the least recently used idle sandbox of any function at the global cap', async () => {
    const fns = ['a', 'b', 'c'].map((n) => ({ name: n, wasm: hello, routes: [`/${n}`], pool: { min_warm: 0 } }));
    const i = await start(fns, { max: 2, blank: 0 });
    // Each request's access-log line is written after its sandbox went back to the pool.
    const served = async (n: string) => {
      const res = await fetch(`${i.url}/${n}`);
      expect(res.status).toBe(200);
      const id = res.headers.get('x-request-id');
      await until(() => access(i, id) !== undefined, 5000, 'access log');
    };
    await served('a');
    await served('b');
    await served('a'); // a is now more recent than b
    await served('c'); // needs room: b goes
    await until(() => i.logs().some((l) => l.event === 'evict'), 5000, 'lru eviction');
    expect(i.logs().filter((l) => l.event === 'evict').map((l) => [l.function, l.reason])).toEqual([['b', 'lru']]);
  });
});

describe('global cap', () => {
  it('never has more live sandboxes than [sandboxes] max, blank ones included', async () => {
    const fns = ['a', 'b', 'c', 'd'].map((n) => ({ name: n, wasm: hello, routes: [`/${n}`], pool: { min_warm: 0 } }));
    const i = await start(fns, { max: 3, blank: 1 });
    await until(() => /admin on (http:\/\/\S+)/.test(i.stderr()), 5000, 'admin line');
    const admin = /admin on (http:\/\/\S+)/.exec(i.stderr())![1]!;
    const live = async () => Number(/^isola_sandboxes\{state="live"\} (\d+)/m.exec(await (await fetch(`${admin}/metrics`)).text())![1]);
    for (const n of ['a', 'b', 'c', 'd', 'a']) {
      expect((await fetch(`${i.url}/${n}`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 150)); // let blank refills happen
      expect(await live()).toBeLessThanOrEqual(3);
    }
  });
});

describe('reuse policy', () => {
  it.each([
    [0, [201, 202, 500, 201, 202]],
    [1, [201, 201, 201, 201, 201]],
    [2, [201, 202, 201, 202, 201]],
  ])('max_requests_per_instance = %i', async (max, want) => {
    const i = await start([{ name: 'counter', wasm: counter, routes: ['/'], pool: { min_warm: 1, max_instances: 1, max_requests_per_instance: max } }]);
    const got: number[] = [];
    for (let k = 0; k < 5; k++) got.push((await fetch(i.url)).status);
    expect(got).toEqual(want);
  });
});

describe('load and queueing', () => {
  it('20 concurrent requests against max_instances = 2 all complete or get 503 + Retry-After, and the pool recovers', async () => {
    const i = await start([{
      name: 'big', wasm: big, routes: ['/*'],
      pool: { min_warm: 1, max_instances: 2, max_queue: 4, queue_timeout: '20s' },
    }]);
    const n = 8 * 1024 * 1024;
    const results = await Promise.all(Array.from({ length: 20 }, async () => {
      const res = await fetch(`${i.url}/?n=${n}`);
      const body = await res.arrayBuffer();
      return { status: res.status, len: body.byteLength, retry: res.headers.get('retry-after') };
    }));
    for (const r of results) {
      if (r.status === 200) expect(r.len).toBe(n);
      else expect(r).toMatchObject({ status: 503, retry: '1' });
    }
    const ok = results.filter((r) => r.status === 200).length;
    // At least the warm sandbox's request plus the 4 queued ones (the second sandbox may still be starting when the burst lands).
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(results.length - ok).toBeGreaterThan(0); // the queue bound did bite
    expect(events(i, 'big', 'start').length).toBeLessThanOrEqual(2);
    // Recovered: a fresh request is served at once.
    const res = await fetch(`${i.url}/?n=10`);
    expect(res.status).toBe(200);
  }, 60_000);

  it('queue_timeout runs from each request\'s own arrival: 503 + Retry-After, one after the other', async () => {
    const sleeper = await buildGuest('sleep');
    const i = await start([{
      name: 'nap', wasm: sleeper, routes: ['/*'],
      pool: { min_warm: 1, max_instances: 1, max_queue: 10, queue_timeout: '400ms' }, limits: { timeout: '2s' },
    }]);
    const busy = fetch(i.url).then((r) => r.status); // holds the only sandbox until the 2 s limit
    await new Promise((r) => setTimeout(r, 150));
    const timed = async () => {
      const t0 = performance.now();
      const res = await fetch(i.url);
      return { status: res.status, retry: res.headers.get('retry-after'), body: await res.json(), waited: performance.now() - t0 };
    };
    const a = timed();
    await new Promise((r) => setTimeout(r, 250)); // b joins while a still waits
    const b = timed();
    const [ra, rb] = await Promise.all([a, b]);
    for (const r of [ra, rb]) {
      expect(r).toMatchObject({ status: 503, retry: '1', body: { error: { code: 'ERR_OVERLOADED' } } });
      expect(r.body.error.message).toContain('queue_timeout');
      expect(r.waited).toBeGreaterThanOrEqual(380); // not refused early with the one before it
      expect(r.waited).toBeLessThan(1500);
    }
    expect(await busy).toBe(504);
    // The queue is empty again and the sandbox was replaced: the next request waits for nobody.
    expect((await fetch(i.url).then((r) => r.status))).toBe(504);
  }, 30_000);

  it('a compute-bound function grows only to one sandbox per CPU; one that waits on its clients grows on', async () => {
    const cap = availableParallelism();
    const echo = await buildGuest('echo');
    const i = await start([
      { name: 'cpu', wasm: hello, routes: ['/cpu'], pool: { min_warm: 1, max_instances: cap + 4, max_queue: 256 } },
      { name: 'io', wasm: echo, routes: ['/io'], pool: { min_warm: 1, max_instances: cap + 4, max_queue: 256, queue_timeout: '1s' } },
    ]);
    const burst = async () => {
      const got = await Promise.all(Array.from({ length: 24 }, () => fetch(`${i.url}/cpu`).then((r) => r.status)));
      expect(got.every((s) => s === 200)).toBe(true);
    };
    // A new function starts out taken as compute-bound (until a request waits or runs long): even
    // a burst before anything is known starts no sandbox past the CPUs, so none is stopped later.
    await burst();
    // A history of requests that never wait, for both (their blocking share stays at 0).
    for (let k = 0; k < 170; k++) {
      expect((await fetch(`${i.url}/cpu`)).status).toBe(200);
      expect((await fetch(`${i.url}/io`)).status).toBe(200);
    }
    for (let round = 0; round < 3; round++) await burst();
    expect(events(i, 'cpu', 'start').length).toBeLessThanOrEqual(cap); // min_warm's start included
    expect(events(i, 'cpu', 'evict')).toEqual([]);
    // Now `io` gets requests whose body arrives 1.5 s late (longer than its queue_timeout): its
    // sandboxes block in the body read at once, so the pool grows past the cap right away instead
    // of queueing them behind the compute-bound history until they time out.
    const slowPost = () => new Promise<number>((resolve, reject) => {
      const req = request(`${i.url}/io`, { method: 'POST', headers: { 'content-type': 'text/plain' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write('first ');
      setTimeout(() => req.end('second'), 1500);
    });
    const slow = await Promise.all(Array.from({ length: cap + 3 }, slowPost));
    expect(slow).toEqual(Array.from({ length: cap + 3 }, () => 200));
    expect(events(i, 'io', 'start').length).toBeGreaterThan(cap);
  }, 60_000);

  it('on a new function, first requests that run long lift the cap: the others get sandboxes of their own', async () => {
    // Nothing is known of the function yet (no request has finished), so it is taken as
    // compute-bound: one sandbox per CPU. One runaway per CPU fills them; requests sent after
    // must not wait for the runaways' 3 s limit.
    const cap = availableParallelism();
    const path = await buildGuest('path');
    const i = await start([{ name: 'p', wasm: path, routes: ['/*'], limits: { timeout: '3s' }, pool: { min_warm: 1, max_instances: cap + 3 } }]);
    let spinsDone = false;
    const spins = Promise.all(Array.from({ length: cap }, (_, n) => fetch(`${i.url}/spin/${n}`).then((r) => r.status))).finally(() => (spinsDone = true));
    await new Promise((r) => setTimeout(r, 50));
    const others = await Promise.all(Array.from({ length: 3 }, async (_, n) => {
      const res = await fetch(`${i.url}/ok/${n}`);
      return { status: res.status, body: await res.text(), spinsDone };
    }));
    others.forEach((o, n) => expect(o).toEqual({ status: 200, body: `/ok/${n}\n`, spinsDone: false }));
    expect(await spins).toEqual(Array.from({ length: cap }, () => 504));
  }, 30_000);

  it('a client that gives up while queued leaves the queue and frees nothing twice', async () => {
    const i = await start([{ name: 'one', wasm: big, routes: ['/*'], pool: { min_warm: 1, max_instances: 1, max_queue: 10 } }]);
    // Occupy the only sandbox with a response the client reads slowly.
    const slow = request(`${i.url}/?n=${64 * 1024 * 1024}`);
    const slowDone = new Promise<void>((resolve) => {
      slow.on('response', (res) => {
        res.pause();
        setTimeout(() => { res.resume(); res.on('end', resolve); }, 1000);
      });
    });
    slow.end();
    await new Promise((r) => setTimeout(r, 200));
    // Five clients queue, then give up.
    const quitters = Array.from({ length: 5 }, () => {
      const req = request(`${i.url}/?n=10`);
      req.on('error', () => {});
      req.end();
      return req;
    });
    await new Promise((r) => setTimeout(r, 200));
    for (const q of quitters) q.destroy();
    await slowDone;
    // The sandbox comes back to a queue with nobody in it: the next request is served at once.
    const t0 = performance.now();
    const res = await fetch(`${i.url}/?n=10`);
    expect(res.status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(events(i, 'one', 'start').length).toBe(1);
  }, 30_000);
});
