/**
 * Issue 8 under `isola dev`: after real traffic (ok, trap, a CPU-limit hit, unrouted 404s) the
 * Prometheus counters moved by exactly the expected amounts; access-log fields; guest output tagged
 * with the request's context; a guest printing 100 MB to stderr does not grow the server's memory;
 * /healthz and /readyz; `isola tail` (the real CLI) streams a function's records.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleCore } from './guests/build.js';
import { buildGuest } from './guests/index.js';
import { scrape } from './support/metrics.js';
import { CLI, startIsola, until, writeConfig, type Isola } from './support/server.js';

const CHUNK = 65536;
const CHUNKS = 1600; // 100 MiB
const SPEW_BYTES = CHUNK * CHUNKS;

/** A WAGI guest that writes CHUNKS × 64 KiB of 'x' lines to stderr, then answers 200 `spewed`. */
function spewGuest(): Promise<Uint8Array> {
  const response = 'Content-Type: text/plain\n\nspewed\n';
  return assembleCore('spew-stderr', `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 3)
  (data (i32.const 16) "${response.replace(/\n/g, '\\n')}")
  (func (export "_start") (local $i i32)
    (memory.fill (i32.const ${CHUNK}) (i32.const 120) (i32.const ${CHUNK}))
    (i32.store8 (i32.const ${2 * CHUNK - 1}) (i32.const 10))
    (i32.store (i32.const 0) (i32.const ${CHUNK}))
    (i32.store (i32.const 4) (i32.const ${CHUNK}))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $i) (i32.const ${CHUNKS})))
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $more)))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const ${Buffer.byteLength(response)}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);
}

let isola: Isola;
let admin: string;

beforeAll(async () => {
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const spewPath = join(mkdtempSync(join(tmpdir(), 'isola-spew-')), 'spew.wasm');
  writeFileSync(spewPath, await spewGuest());
  isola = await startIsola(writeConfig([
    { name: 'hello', wasm: await buildGuest('hello'), routes: ['/hello'] },
    { name: 'trap', wasm: await buildGuest('trap'), routes: ['/trap'] },
    { name: 'loop', wasm: await buildGuest('loop'), routes: ['/loop'], limits: { cpu: '200ms', timeout: '5s' } },
    { name: 'stdout', wasm: await buildGuest('stdout'), routes: ['/stdout'] },
    { name: 'spew', wasm: spewPath, routes: ['/spew'] },
  ]), ['--admin-port', '0']);
  await until(() => /admin on http:\/\/\S+/.test(isola.stderr()), 5000, 'admin line');
  admin = /admin on (http:\/\/\S+)/.exec(isola.stderr())![1]!;
});

afterAll(async () => {
  await isola?.stop();
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(isola.url + path, { headers });
const accessLog = (id: string) => isola.logs().find((l) => l.req_id === id && typeof l.status === 'number');

describe('observability (isola dev)', () => {
  it('keeps stdout as it was and prints the admin URL on stderr', () => {
    expect(isola.stdout().split('\n')[0]).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+$/);
    expect(isola.stdout()).not.toContain('admin on');
    expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('answers /healthz and /readyz', async () => {
    const h = await fetch(admin + '/healthz');
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ ok: true });
    const r = await fetch(admin + '/readyz');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ready: true, checks: { deployments: 'ok', edge: 'ok' } });
  });

  it('moves the counters by exactly the traffic sent (ok, trap, CPU limit, 404)', async () => {
    const before = await scrape(admin + '/metrics');
    for (let i = 0; i < 3; i++) expect((await get('/hello')).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await get('/trap')).status).toBe(500);
    expect((await get('/loop')).status).toBe(503);
    for (let i = 0; i < 2; i++) expect((await get('/nope')).status).toBe(404);
    const after = await scrape(admin + '/metrics');
    const delta = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
    const fn = (f: string) => ({ tenant: f, function: f });

    expect(delta('isola_requests_total', { ...fn('hello'), status_class: '2xx' })).toBe(3);
    expect(delta('isola_requests_total', { ...fn('trap'), status_class: '5xx' })).toBe(2);
    expect(delta('isola_requests_total', { ...fn('loop'), status_class: '5xx' })).toBe(1);
    expect(delta('isola_unrouted_requests_total')).toBe(2);
    expect(delta('isola_guest_traps_total', fn('trap'))).toBe(2);
    expect(delta('isola_guest_traps_total', fn('loop'))).toBe(0);
    expect(delta('isola_rejections_total', { ...fn('loop'), reason: 'cpu' })).toBe(1);
    expect(delta('isola_client_aborts_total', fn('hello'))).toBe(0);
    expect(after.count('isola_request_duration_seconds', fn('hello')) - before.count('isola_request_duration_seconds', fn('hello'))).toBe(3);
    expect(after.count('isola_request_duration_seconds', fn('trap')) - before.count('isola_request_duration_seconds', fn('trap'))).toBe(2);
    expect(delta('isola_cpu_seconds_total', fn('loop'))).toBeGreaterThanOrEqual(0.18);
    expect(delta('isola_response_body_bytes_total', fn('hello'))).toBe(3 * 'hello from wat\n'.length);

    expect(after.type('isola_requests_total')).toBe('COUNTER');
    expect(after.type('isola_request_duration_seconds')).toBe('HISTOGRAM');
    expect(after.value('isola_function_sandboxes', { ...fn('hello'), state: 'idle' })).toBeGreaterThanOrEqual(1);
    expect(after.value('isola_queue_length', fn('hello'))).toBe(0);
    expect(after.value('isola_sandboxes', { state: 'live' })).toBeGreaterThanOrEqual(5);
    expect(after.value('isola_functions')).toBe(5);
    expect(after.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(after.value('isola_build_info', { version: '0.1.0' })).toBe(1);
    // No request input ever becomes a label.
    expect(after.text).not.toContain('/nope');
  });

  it('writes one access-log line per request with every field, outcome and limit', async () => {
    const ok = await get('/hello', { 'x-request-id': 'obs-ok-1' });
    expect(ok.headers.get('x-request-id')).toBe('obs-ok-1');
    const lim = await get('/loop');
    const limId = lim.headers.get('x-request-id')!;
    expect(limId).toMatch(/^[0-9a-f]{32}$/);
    const other = (await get('/hello')).headers.get('x-request-id')!;
    expect(other).toMatch(/^[0-9a-f]{32}$/);
    expect(other).not.toBe(limId);
    await until(() => accessLog('obs-ok-1') !== undefined && accessLog(limId) !== undefined, 5000, 'access log');
    expect(accessLog('obs-ok-1')).toMatchObject({
      level: 30, msg: 'request', req_id: 'obs-ok-1', tenant: 'hello', function: 'hello', version: 1,
      method: 'GET', path: '/hello', status: 200, outcome: 'ok', req_bytes: 0, res_bytes: 15, cold: false,
      ms: expect.any(Number), queue_ms: expect.any(Number), cpu_ms: expect.any(Number), time: expect.any(String),
    });
    expect(accessLog(limId)).toMatchObject({ level: 40, function: 'loop', status: 503, outcome: 'limit', limit: 'cpu', error_code: 'ERR_CPU_LIMIT' });
    expect(isola.logs().filter((l) => l.req_id === 'obs-ok-1' && typeof l.status === 'number')).toHaveLength(1);
  });

  it('turns guest output into log lines tagged with the request', async () => {
    const res = await get('/stdout', { 'x-request-id': 'obs-out-1' });
    expect(res.status).toBe(200);
    await until(() => isola.logs().some((l) => l.req_id === 'obs-out-1' && l.stream === 'stderr'), 5000, 'guest lines');
    const lines = isola.logs().filter((l) => l.req_id === 'obs-out-1' && l.stream !== undefined);
    expect(lines).toEqual([
      expect.objectContaining({ stream: 'stdout', msg: 'to-stdout', tenant: 'stdout', function: 'stdout', version: 1 }),
      expect.objectContaining({ stream: 'stderr', msg: 'to-stderr', tenant: 'stdout', function: 'stdout', version: 1 }),
    ]);
  });

  it('drops guest output past 64 KiB a request: 100 MB of stderr does not grow server memory', async () => {
    const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${isola.proc.pid}/status`, 'utf8'))![1]) * 1024;
    const first = await get('/spew', { 'x-request-id': 'obs-spew-0' }); // warms the path
    expect(await first.text()).toBe('spewed\n');
    const base = rss();
    const before = await scrape(admin + '/metrics');
    for (let i = 1; i <= 2; i++) {
      const res = await get('/spew', { 'x-request-id': `obs-spew-${i}` });
      expect(await res.text()).toBe('spewed\n');
    }
    const grown = rss() - base;
    expect(grown).toBeLessThan(48 * 1024 * 1024); // two requests printed 200 MiB
    await until(() => isola.logs().some((l) => l.req_id === 'obs-spew-2' && l.dropped_bytes !== undefined), 5000, 'drop warning');
    const warn = isola.logs().find((l) => l.req_id === 'obs-spew-2' && l.dropped_bytes !== undefined)!;
    expect(warn.dropped_bytes).toBe(SPEW_BYTES - 64 * 1024);
    const kept = isola.logs().filter((l) => l.req_id === 'obs-spew-2' && l.stream === 'stderr');
    expect(kept.reduce((n, l) => n + String(l.msg).length + 1, 0)).toBe(64 * 1024);
    const after = await scrape(admin + '/metrics');
    const f = { tenant: 'spew', function: 'spew' };
    expect(after.value('isola_guest_output_dropped_bytes_total', f) - before.value('isola_guest_output_dropped_bytes_total', f)).toBe(2 * (SPEW_BYTES - 64 * 1024));
  });

  it('streams a function\'s records to `isola tail`, and only that function\'s', async () => {
    const proc = spawn(process.execPath, [CLI, 'tail', 'stdout', '--url', admin, '--format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      await until(() => err.includes('tailing'), 10_000, 'tail to connect');
      await get('/hello', { 'x-request-id': 'obs-tail-other' });
      await get('/stdout', { 'x-request-id': 'obs-tail-1' });
      await until(() => out.includes('"type":"request"'), 5000, 'tail records');
      const records = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records.map((r) => [r.type, r.stream ?? r.status])).toEqual([['log', 'stdout'], ['log', 'stderr'], ['request', 200]]);
      expect(records.every((r) => r.req_id === 'obs-tail-1' && r.function === 'stdout' && r.tenant === 'stdout')).toBe(true);
      expect(records[0]).toMatchObject({ msg: 'to-stdout', version: 1, time: expect.any(String) });
      expect(records[2]).toMatchObject({ method: 'GET', path: '/stdout', outcome: 'ok' });
      const m = await scrape(admin + '/metrics');
      expect(m.value('isola_tail_subscribers')).toBe(1);
    } finally {
      proc.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    const unknown = spawn(process.execPath, [CLI, 'tail', 'nope', '--url', admin], { stdio: ['ignore', 'pipe', 'pipe'] });
    let uerr = '';
    unknown.stderr.setEncoding('utf8').on('data', (d: string) => (uerr += d));
    expect(await new Promise((r) => unknown.once('exit', r))).toBe(1);
    expect(uerr).toMatch(/error\[ERR_FUNCTION_NOT_FOUND\]: no function named "nope"/);
  });
});
