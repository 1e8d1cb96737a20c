import { stat } from 'node:fs/promises';
import { componentWit, print, transpile } from '@bytecodealliance/jco';
import { describe, expect, it } from 'vitest';
import { assembleCore, buildComponent, buildComponentFile } from './build.js';
import { FakeHost, type FakeRequest } from './fake-host.js';
import {
  BAD_FIELDS_CASES,
  BIG_RESPONSE_PATTERN,
  buildGuest,
  buildGuestBytes,
  guestNames,
  guests,
  type GuestName,
} from './index.js';
import { guest, replyText } from './wat.js';

/** Interfaces of `wasi:http/proxy` (what any wasi:http host offers). */
const PROXY = new Set([
  'wasi:http/types', 'wasi:http/outgoing-handler', 'wasi:io/error', 'wasi:io/streams', 'wasi:io/poll',
  'wasi:clocks/monotonic-clock', 'wasi:clocks/wall-clock', 'wasi:random/random',
  'wasi:cli/stdout', 'wasi:cli/stderr', 'wasi:cli/stdin',
]);
/** Imports beyond the core set (`wasi:http/types`, `wasi:io/*`) that a guest should have. */
const CLI: Partial<Record<GuestName, string[]>> = {
  stdout: ['wasi:cli/stderr', 'wasi:cli/stdout'],
  'short-body': ['wasi:cli/stderr'],
  'long-body': ['wasi:cli/stderr'],
  env: ['wasi:cli/environment'],
};
const SLOW = 60_000;

describe('guest components', () => {
  it.each(guestNames)('%s is a valid component exporting wasi:http/incoming-handler@0.2.x', { timeout: SLOW }, async (name) => {
    const bytes = await buildGuestBytes(name);
    expect((await print(bytes)).startsWith('(component')).toBe(true);
    const wit = await componentWit(bytes);
    expect(wit).toMatch(/export wasi:http\/incoming-handler@0\.2\.\d+;/);
    // transpile validates the whole component, as the server's artifact preparation will.
    const out = await transpile(bytes, { name, instantiation: 'async', noTypescript: true, quiet: true });
    expect(out.exports.map(([n]) => n)).toContain('wasi:http/incoming-handler@0.2.12');
    expect(out.imports).toContain('wasi:http/types');
    const cli = out.imports.filter((i) => i.startsWith('wasi:cli/')).sort();
    expect(cli).toEqual(CLI[name] ?? []);
    for (const i of out.imports) if (name !== 'env') expect(PROXY.has(i), `${name} imports ${i}`).toBe(true);
  });

  it('caches by content: same WAT → same file, not rewritten', { timeout: SLOW }, async () => {
    const wat = guests.hello();
    const a = await buildComponentFile('hello', wat);
    const before = (await stat(a)).mtimeMs;
    const b = await buildComponentFile('hello', wat);
    expect(b).toBe(a);
    expect((await stat(b)).mtimeMs).toBe(before);
    expect(await buildGuest('hello')).toBe(a);
    const other = await buildComponentFile('hello', guest((g) => replyText(g, 200, 'other\n')));
    expect(other).not.toBe(a);
  });

  it('labels imports and export with the requested wasi 0.2.x version', { timeout: SLOW }, async () => {
    const wit = await componentWit(await buildComponent('hello-0.2.0', guests.hello({ wasiVersion: '0.2.0' })));
    expect(wit).toContain('export wasi:http/incoming-handler@0.2.0;');
    expect(wit).toContain('import wasi:http/types@0.2.0;');
  });

  it('reports WAT errors with the guest name', async () => {
    await expect(buildComponent('broken', '(module (func $f (call $nope)))')).rejects.toThrow(/guest broken: invalid WAT/);
  });

  it('pulls in only the helpers and imports a guest references', () => {
    const wat = guests.trap();
    expect(wat).not.toContain('$print');
    expect(wat.match(/\(import /g)).toHaveLength(1); // the request drop of the handler epilogue
    const hello = guests.hello();
    expect(hello.match(/"hello from wat\\0a"/g)).toHaveLength(1);
  });
});

/** Runs guest `name`'s core module in the fake host. */
async function fake(name: GuestName): Promise<FakeHost> {
  return FakeHost.load(await assembleCore(name, guests[name]()));
}
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('guest logic on a fake core-ABI host', () => {
  it('hello: fixed reply with content-length, reusable without growing or leaking', async () => {
    const host = await fake('hello');
    const mem = host.memoryBytes;
    for (let k = 0; k < 1000; k++) {
      const r = host.call();
      expect(r.violations).toEqual([]);
      expect(r.finished).toBe(true);
      if (k === 0) {
        expect(r.status).toBe(200);
        expect(r.headers).toEqual([['content-type', 'text/plain'], ['content-length', '15']]);
        expect(text(r.body)).toBe('hello from wat\n');
      }
    }
    expect(host.memoryBytes).toBe(mem);
    expect(host.liveHandles).toBe(0);
  });

  it('echo: streams 64 MiB through bounded memory, copying content-type', async () => {
    const host = await fake('echo');
    const chunk = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 255);
    const req: FakeRequest = { method: 'POST', headers: [['Content-Type', 'application/x-test']], body: Array(64).fill(chunk) };
    let seen = 0;
    let same = true;
    const r = host.call(req, (b) => {
      for (let i = 0; i < b.length; i += 997) if (b[i] !== chunk[(seen + i) % chunk.length]) same = false;
      seen += b.length;
    });
    expect(r.violations).toEqual([]);
    expect(r.headers).toEqual([['content-type', 'application/x-test']]);
    expect(r.bodyLength).toBe(64 << 20);
    expect(same).toBe(true);
    expect(r.finished).toBe(true);
    expect(host.memoryBytes).toBeLessThanOrEqual(4 * 65536);
    expect(host.liveHandles).toBe(0);
    expect(text(host.call({ body: [new TextEncoder().encode('hi')] }).body)).toBe('hi');
  });

  it('headers: method, path-with-query and every header in order', async () => {
    const r = (await fake('headers')).call({ method: 'PROPFIND', pathWithQuery: '/a?b=1', headers: [['x-a', '1'], ['x-b', 'two']] });
    expect(text(r.body)).toBe('PROPFIND /a?b=1\nx-a: 1\nx-b: two\n');
    expect(r.headers).toContainEqual(['content-length', String(r.bodyLength)]);
  });

  it('set-cookie: two separate set-cookie fields', async () => {
    const r = (await fake('set-cookie')).call();
    expect(r.headers.filter(([n]) => n === 'set-cookie')).toEqual([['set-cookie', 'a=1; Path=/'], ['set-cookie', 'b=2; Path=/']]);
  });

  it('bad-fields and bad-status report per attempt (all ok on a permissive host)', async () => {
    const f = (await fake('bad-fields')).call();
    expect(text(f.body)).toBe([...BAD_FIELDS_CASES.map(([l]) => l), 'immutable'].map((l) => `${l}: ok\n`).join(''));
    const s = (await fake('bad-status')).call();
    expect(text(s.body)).toBe('set-status-code 99: ok\nset-status-code 600: ok\n');
    expect(s.status).toBe(200);
  });

  it('big-response: ?n= bytes of the pattern, chunked or with content-length', async () => {
    const host = await fake('big-response');
    const r = host.call({ pathWithQuery: '/big?x=1&n=1000003' });
    expect(r.violations).toEqual([]);
    expect(r.bodyLength).toBe(1000003);
    expect(r.body.every((b, i) => b === BIG_RESPONSE_PATTERN.charCodeAt(i % 16))).toBe(true);
    expect(r.headers.some(([n]) => n === 'content-length')).toBe(false);
    const cl = host.call({ pathWithQuery: '/?n=10&cl' });
    expect(cl.headers).toContainEqual(['content-length', '10']);
    expect(text(cl.body)).toBe('0123456789');
    expect(host.call({ pathWithQuery: '/?n=0' }).bodyLength).toBe(0);
  });

  it('failure guests fail the way their docstrings say', async () => {
    await expect((async () => (await fake('trap')).call())()).rejects.toThrow(WebAssembly.RuntimeError);
    const head = await fake('trap-after-head');
    expect(() => head.call()).toThrow(WebAssembly.RuntimeError);
    const none = (await fake('no-response')).call();
    expect(none.status).toBeUndefined();
    expect(none.error).toBeUndefined();
    const err = (await fake('error-response')).call();
    expect(err.error).toEqual({ code: 38, message: 'isola test: deliberate internal-error' });
    const unfinished = await fake('unfinished-body');
    const u = unfinished.call();
    expect([text(u.body), u.finished, unfinished.liveHandles]).toEqual(['unfinished\n', false, 1]);
    unfinished.call({ pathWithQuery: '/?drop-body' });
    expect(unfinished.liveHandles).toBe(1); // only the first call's body is still alive
    const short = (await fake('short-body')).call();
    expect([text(short.body), short.stderr]).toEqual(['0123456789', 'short-body: finish=ok\n']);
    const long = (await fake('long-body')).call();
    expect(long.stderr).toBe('long-body: write=ok finish=ok\n');
  });

  it('stdout and env', async () => {
    const s = (await fake('stdout')).call();
    expect([s.stdout, s.stderr, text(s.body)]).toEqual(['to-stdout\n', 'to-stderr\n', 'ok']);
    expect(text((await fake('env')).call().body)).toBe('FAKE_HOST=1\nEMPTY=\n');
  });
});
