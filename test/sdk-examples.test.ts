/**
 * The SDK examples (examples/hello-ts, hono-api, streaming) built from source with the real
 * `isola build` command (cached: an unchanged bundle is not rebuilt), served by the real
 * `isola dev`, checked over HTTP.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, readArrivals, startIsola, writeConfig, type Isola } from './support/server.js';

const EXAMPLES = ['hello-ts', 'hono-api', 'streaming'] as const;

/** Runs `isola build` for an example; resolves with its stdout/stderr, rejects on a non-zero exit. */
function isolaBuild(name: string): Promise<{ stdout: string; stderr: string }> {
  const args = [CLI, 'build', `examples/${name}/src/index.ts`, '-o', `examples/${name}/${name}.wasm`];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('exit', (code) => (code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`isola build ${name} exited ${code}\n${stderr}`))));
  });
}

let isola: Isola;

beforeAll(async () => {
  for (const name of EXAMPLES) {
    const { stdout } = await isolaBuild(name);
    expect(stdout.trim()).toBe(join(ROOT, 'examples', name, `${name}.wasm`));
  }
  isola = await startIsola(writeConfig([
    { name: 'hello-ts', wasm: join(ROOT, 'examples/hello-ts/hello-ts.wasm'), routes: ['/hello-ts', '/hello-ts/*'], extra: 'env = { GREETING = "Welcome to isola." }' },
    { name: 'hono-api', wasm: join(ROOT, 'examples/hono-api/hono-api.wasm'), routes: ['/api', '/api/*'], pool: { min_warm: 1, max_instances: 1 } },
    { name: 'streaming', wasm: join(ROOT, 'examples/streaming/streaming.wasm'), routes: ['/stream', '/stream/*'] },
  ]));
}, 300_000);

afterAll(async () => {
  await isola?.stop();
});

describe('isola build', () => {
  it('does not rebuild an unchanged example', async () => {
    const { stderr } = await isolaBuild('hello-ts');
    expect(stderr).toMatch(/is up to date/);
  });
});

describe('examples/hello-ts', () => {
  it('greets, with the query parameter and $GREETING', async () => {
    const res = await fetch(`${isola.url}/hello-ts?name=Ada`);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('Hello, Ada!\nWelcome to isola.\n');
    expect(await (await fetch(`${isola.url}/hello-ts`)).text()).toBe('Hello from isola (TypeScript)!\nWelcome to isola.\n');
  });
});

describe('examples/hono-api (a Hono app as the default export)', () => {
  const api = (path: string, init?: RequestInit) => fetch(`${isola.url}/api${path}`, init);
  const post = (body: unknown) => api('/todos', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  it('routes inside the guest: create, read, filter, update, delete', async () => {
    const created = await post({ title: ' write docs ' });
    expect(created.status).toBe(201);
    const todo = (await created.json()) as { id: number; title: string; done: boolean };
    expect(todo).toMatchObject({ title: 'write docs', done: false });
    expect(created.headers.get('location')).toBe(`/api/todos/${todo.id}`);

    expect(await (await api(`/todos/${todo.id}`)).json()).toEqual(todo);
    const patched = await api(`/todos/${todo.id}`, { method: 'PATCH', body: JSON.stringify({ done: true }) });
    expect(await patched.json()).toEqual({ ...todo, done: true });
    const done = (await (await api('/todos?done=true')).json()) as Array<{ id: number }>;
    expect(done.map((t) => t.id)).toContain(todo.id);
    expect((await api(`/todos/${todo.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/todos/${todo.id}`)).status).toBe(404);
  });

  it('answers errors as JSON: 400 for bad input, 404 for unknown routes', async () => {
    const bad = await post({ title: 3 });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: '"title" must be a non-empty string' });
    const notJson = await api('/todos', { method: 'POST', body: 'nope' });
    expect(notJson.status).toBe(400);
    const missing = await api('/nowhere');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no route for GET /api/nowhere' });
  });

  it('sees the request through c.req: method, URL, headers', async () => {
    const res = await api('/whoami', { headers: { 'user-agent': 'isola-test' } });
    expect(await res.json()).toEqual({ method: 'GET', url: `${isola.url}/api/whoami`, userAgent: 'isola-test', env: [] });
  });
});

describe('examples/streaming', () => {
  it('sends each line as it is produced, over time', async () => {
    const res = await fetch(`${isola.url}/stream?count=4&ms=200`);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const { text, arrivals } = await readArrivals(res);
    const lines = text.trim().split('\n');
    expect(lines.map((l) => l.split(' after ')[0])).toEqual(['tick 1/4', 'tick 2/4', 'tick 3/4', 'tick 4/4']);
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(400);
  });

  it('streams server-sent events', async () => {
    const res = await fetch(`${isola.url}/stream/sse?count=2&ms=10`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text).toMatch(/^id: 0\ndata: \{"tick":0,"elapsed_ms":\d+\}\n\nid: 1\ndata: \{"tick":1,"elapsed_ms":\d+\}\n\n$/);
  });
});
