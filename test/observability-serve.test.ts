/**
 * Issue 8 under `isola serve`: `isola tail` reads only the caller tenant's lines (two tenants with a
 * function of the same name), /metrics needs the operator token and labels series by tenant,
 * /healthz and /readyz answer without a token, and the access log carries the store's version.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestBytes } from './guests/index.js';
import { scrape } from './support/metrics.js';
import { Api, OPERATOR, edgeGet, startServe, tempDataDir, type Serve } from './support/serve.js';
import { CLI, until } from './support/server.js';

let server: Serve;
let aliceToken: string;
let bobToken: string;

beforeAll(async () => {
  const stdout = await buildGuestBytes('stdout');
  server = await startServe(tempDataDir());
  const op = new Api(server.admin, OPERATOR);
  aliceToken = await op.createTenant('alice');
  bobToken = await op.createTenant('bob');
  for (const [tenant, token] of [['alice', aliceToken], ['bob', bobToken]] as const) {
    const api = new Api(server.admin, token);
    expect((await api.upload(tenant, 'hello', stdout)).status).toBe(201);
    if (tenant === 'alice') expect((await api.upload(tenant, 'hello', stdout, '?message=second')).status).toBe(201);
    expect((await api.deploy(tenant, 'hello', { routes: ['/hello'] })).status).toBe(201);
  }
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

function startTail(token: string, fn = 'hello'): { out: () => string; err: () => string; exited: Promise<number | null>; kill: () => void } {
  const proc = spawn(process.execPath, [CLI, 'tail', fn, '--format', 'json'], {
    env: { ...process.env, ISOLA_URL: server.admin, ISOLA_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { out: () => out, err: () => err, exited, kill: () => proc.kill('SIGINT') };
}

describe('observability (isola serve)', () => {
  it('tails only the caller tenant\'s function, with the store\'s version', async () => {
    const tail = startTail(aliceToken);
    try {
      await until(() => tail.err().includes('tailing alice/hello'), 10_000, 'tail to connect');
      for (let i = 0; i < 3; i++) {
        expect((await edgeGet(server.edgePort, 'bob.localhost', '/hello')).status).toBe(200);
        expect((await edgeGet(server.edgePort, 'alice.localhost', '/hello')).status).toBe(200);
      }
      await until(() => tail.out().split('\n').filter((l) => l.includes('"type":"request"')).length === 3, 5000, 'three request records');
      const records = tail.out().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records).toHaveLength(9); // per request: stdout line, stderr line, access record
      expect(new Set(records.map((r) => r.tenant))).toEqual(new Set(['alice']));
      expect(records.every((r) => r.function === 'hello' && r.version === 2)).toBe(true);
    } finally {
      tail.kill();
    }
    expect(await tail.exited).toBe(0);
  });

  it('refuses to tail another tenant\'s function, or without a token', async () => {
    const r = await fetch(`${server.admin}/v1/tenants/alice/functions/hello/logs`, { headers: { authorization: `Bearer ${bobToken}` } });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('ERR_FORBIDDEN');
    expect((await fetch(`${server.admin}/v1/tenants/alice/functions/hello/logs`)).status).toBe(401);
    expect((await fetch(`${server.admin}/v1/tenants/alice/functions/nope/logs`, { headers: { authorization: `Bearer ${aliceToken}` } })).status).toBe(404);
  });

  it('serves /metrics to the operator only, labelled by tenant', async () => {
    expect((await fetch(`${server.admin}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.admin}/metrics`, { headers: { authorization: `Bearer ${aliceToken}` } })).status).toBe(403);
    const before = await scrape(`${server.admin}/metrics`, OPERATOR);
    await edgeGet(server.edgePort, 'alice.localhost', '/hello');
    const a = { tenant: 'alice', function: 'hello', status_class: '2xx' };
    const b = { tenant: 'bob', function: 'hello', status_class: '2xx' };
    // The request is counted when its sandbox reports done, which can be just after the client has the response.
    let after = await scrape(`${server.admin}/metrics`, OPERATOR);
    for (let i = 0; i < 50 && after.value('isola_requests_total', a) === before.value('isola_requests_total', a); i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await scrape(`${server.admin}/metrics`, OPERATOR);
    }
    expect(after.value('isola_requests_total', a) - before.value('isola_requests_total', a)).toBe(1);
    expect(after.value('isola_requests_total', b) - before.value('isola_requests_total', b)).toBe(0);
    expect(after.value('isola_functions')).toBe(2);
  });

  it('answers /healthz and /readyz without a token', async () => {
    expect(await (await fetch(`${server.admin}/healthz`)).json()).toEqual({ ok: true });
    const r = await fetch(`${server.admin}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ready: true, checks: { store: 'ok', listeners: 'ok' } });
  });
});
