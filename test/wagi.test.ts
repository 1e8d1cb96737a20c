/**
 * WAGI end to end (issue 3): WASI preview 1 command modules built in this run from C (clang) and
 * WAT (wabt), served CGI-style by the real `isola dev` beside wasi:http components, over real HTTP.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleWat, compileC } from '../scripts/build-wagi-examples.mjs';
import { buildGuest } from './guests/index.js';
import { rawRequest } from './support/raw.js';
import { ROOT, startIsola, until, writeConfig, type Isola } from './support/server.js';

let isola: Isola;
const url = (p: string) => isola.url + p;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isola-wagi-'));
  const w = (n: string) => join(dir, n);
  compileC(join(ROOT, 'test/wagi-guests/guest.c'), w('guest.wasm'));
  compileC(join(ROOT, 'test/wagi-guests/rules.c'), w('rules.wasm'));
  compileC(join(ROOT, 'test/wagi-guests/sleepy.c'), w('sleepy.wasm'));
  compileC(join(ROOT, 'examples/wagi-c/hello.c'), w('hello-c.wasm'));
  await assembleWat(join(ROOT, 'test/wagi-guests/trap.wat'), w('trap.wasm'));
  await assembleWat(join(ROOT, 'examples/wagi-wat/hello.wat'), w('hello-wat.wasm'));
  const component = await buildGuest('hello');
  isola = await startIsola(writeConfig([
    { name: 'cgi', wasm: w('guest.wasm'), routes: ['/cgi/*'], limits: { max_request_body: '200MiB' } },
    { name: 'rules', wasm: w('rules.wasm'), routes: ['/rules'], extra: 'abi = "wagi"' },
    { name: 'trap', wasm: w('trap.wasm'), routes: ['/trap'] },
    { name: 'sleepy', wasm: w('sleepy.wasm'), routes: ['/sleepy'] },
    { name: 'hello-c', wasm: w('hello-c.wasm'), routes: ['/c/*'] },
    { name: 'hello-wat', wasm: w('hello-wat.wasm'), routes: ['/wat'] },
    { name: 'component', wasm: component, routes: ['/component'] },
  ]));
}, 120_000);

afterAll(async () => {
  await isola?.stop();
});

const lines = async (res: Response) => (await res.text()).split('\n');

describe('CGI response rules (RFC 3875 §6)', () => {
  it.each(['lf', 'crlf'])('parses a %s header block and passes Content-Type through', async (style) => {
    const res = await fetch(url(`/rules?${style}`));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(`text/x-${style}`);
    expect(res.headers.get('x-style')).toBe(style);
    expect(await res.text()).toBe(style === 'lf' ? 'body-lf\n' : 'body-crlf\r\n');
  });

  it('uses Status: for the code', async () => {
    const res = await fetch(url('/rules?status404'));
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('nothing here\n');
  });

  it('answers 302 for a Location without Status', async () => {
    const res = await fetch(url('/rules?location'), { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://example.com/elsewhere');
  });

  it('answers 502 for output without a header block, and for a bad Status', async () => {
    for (const q of ['noheader', 'badstatus']) {
      const res = await fetch(url(`/rules?${q}`));
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_GUEST_BAD_RESPONSE');
    }
  });

  it('keeps several Set-Cookie lines separate', async () => {
    const res = await fetch(url('/rules?cookies'));
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
  });

  it('honours the guest Content-Length, and aborts when the guest writes fewer bytes', async () => {
    const ok = await fetch(url('/rules?length'));
    expect(ok.headers.get('content-length')).toBe('3');
    expect(await ok.text()).toBe('abc');
    const short = await rawRequest(isola.port, 'GET /rules?shortlength HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 5000 });
    expect(short.complete).toBe(false);
    // More than declared: the declared bytes go out as a complete response, the rest is dropped.
    const over = await rawRequest(isola.port, 'GET /rules?overlength HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeoutMs: 5000 });
    expect(over.status).toBe(200);
    expect(over.complete).toBe(true);
    expect(over.raw.subarray(over.raw.indexOf('\r\n\r\n') + 4).toString()).toBe('abc');
  });

  it('delivers the response of a guest that exits 1 after a complete head, and 500s one that exits before', async () => {
    const after = await fetch(url('/cgi/?exit1'));
    expect(after.status).toBe(200);
    expect(await after.text()).toBe('partial\n');
    const early = await fetch(url('/cgi/?exit1-early'));
    expect(early.status).toBe(500);
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe('ERR_GUEST_EXIT');
  });

  it('answers 500 ERR_GUEST_TRAP for a trap before any output, and aborts a trap after the head', async () => {
    const res = await fetch(url('/trap'));
    expect(res.status).toBe(500);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('ERR_GUEST_TRAP');
    // One clean line: no engine wrapper (JsValue(…)), no doubled error name, no host paths.
    expect(error.message).toMatch(/^The guest trapped: RuntimeError: [a-z]/);
    expect(error.message).not.toMatch(/JsValue|RuntimeError: RuntimeError|\//);
    const after = await rawRequest(isola.port, 'GET /cgi/?trap-after HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 5000 });
    expect(after.status).toBe(200);
    expect(after.complete).toBe(false);
  });

  it('sends stderr to the request log, never to stdout', async () => {
    const res = await fetch(url('/cgi/?stderr'));
    expect(await res.text()).toBe('ok\n');
    const id = res.headers.get('x-request-id');
    await until(() => isola.logs().some((l) => l.req_id === id && l.msg === 'to the log'), 5000, 'stderr log line');
    expect(isola.stdout()).not.toMatch(/to the log/);
  });
});

describe('sleeping guests', () => {
  it('lets a guest sleep (poll_oneoff on a clock) and streams what it wrote before', async () => {
    const t0 = performance.now();
    const res = await fetch(url('/sleepy'));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const firstAt = performance.now() - t0;
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    const total = performance.now() - t0;
    expect(new TextDecoder().decode(first.value)).toBe('before\n');
    expect(rest).toBe('after\n');
    expect(total).toBeGreaterThanOrEqual(280);
    expect(firstAt).toBeLessThan(total - 200); // "before" arrived while the guest slept
  });
});

describe('CGI request variables (RFC 3875 §4)', () => {
  it('builds argv from a +-separated query, decoding each word once', async () => {
    const out = await lines(await fetch(url('/cgi/x?env+hello+wor%2Bld+%C3%A9')));
    expect(out.filter((l) => l.startsWith('argv['))).toEqual(['argv[0]=cgi', 'argv[1]=env', 'argv[2]=hello', 'argv[3]=wor+ld', 'argv[4]=é']);
    expect(out).toContain('QUERY_STRING=env+hello+wor%2Bld+%C3%A9');
  });

  it('decodes PATH_INFO, keeps the raw path, and sets SCRIPT_NAME to the route prefix', async () => {
    const res = await fetch(url('/cgi/caf%C3%A9/a%20b?env'), { headers: { 'X-Custom': 'v1', 'Content-Type': 'text/x-test' }, method: 'POST', body: 'hi' });
    const out = await lines(res);
    expect(out).toContain('PATH_INFO=/café/a b');
    expect(out).toContain('X_RAW_PATH_INFO=/caf%C3%A9/a%20b');
    expect(out).toContain('SCRIPT_NAME=/cgi');
    expect(out).toContain('X_MATCHED_ROUTE=/cgi/*');
    expect(out).toContain('REQUEST_METHOD=POST');
    expect(out).toContain('CONTENT_TYPE=text/x-test');
    expect(out).toContain('CONTENT_LENGTH=2');
    expect(out).toContain('HTTP_X_CUSTOM=v1');
    expect(out).toContain('SERVER_PROTOCOL=HTTP/1.1');
    expect(out).toContain('REMOTE_ADDR=127.0.0.1');
    expect(out).toContain(`SERVER_PORT=${isola.port}`);
  });

  it('streams a 100 MB request body to stdin, counted by the guest', async () => {
    const body = Buffer.alloc(100 * 1024 * 1024, 7);
    const res = await fetch(url('/cgi/?count'), { method: 'POST', body });
    expect(await res.text()).toBe(`${body.length}\n`);
  }, 60_000);

  it('streams 100 MB of stdout to the client', async () => {
    const res = await fetch(url(`/cgi/?big+${100 * 1024 * 1024}`));
    expect(res.status).toBe(200);
    let n = 0;
    for await (const chunk of res.body!) n += (chunk as Uint8Array).byteLength;
    expect(n).toBe(100 * 1024 * 1024);
  }, 60_000);
});

describe('examples and components on the same server', () => {
  it('serves the C and WAT examples and a component concurrently', async () => {
    const jobs = Array.from({ length: 60 }, async (_, i) => {
      const path = ['/c/', '/wat', '/component'][i % 3]!;
      const res = await fetch(url(path));
      return { path, status: res.status, text: await res.text() };
    });
    for (const r of await Promise.all(jobs)) {
      expect(r.status, r.path).toBe(200);
      if (r.path === '/component') expect(r.text).toBe('hello from wat\n');
      if (r.path === '/wat') expect(r.text).toMatch(/hello/i);
    }
  }, 60_000);
});
