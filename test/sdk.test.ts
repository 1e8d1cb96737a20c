/**
 * Web API behaviour inside SDK guests, end to end: one guest (test/sdk-guest/index.ts, built with
 * `isola build`'s engine and cached) exercises a Web API behind each path; the real `isola dev`
 * serves it and the tests talk real HTTP to it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from './support/raw.js';
import { buildSdkGuest } from './support/sdk-build.js';
import { readArrivals, startIsola, writeConfig, type Isola } from './support/server.js';

let isola: Isola;
let base: string;

beforeAll(async () => {
  const { out } = await buildSdkGuest('test/sdk-guest/index.ts', 'sdk-guest');
  const { out: sw } = await buildSdkGuest('test/sdk-guest/service-worker.js', 'sdk-service-worker');
  isola = await startIsola(writeConfig([
    { name: 'sw', wasm: sw, routes: ['/sw/*'], extra: 'env = { GREETING = "hi" }' },
    {
      name: 'sdk',
      wasm: out,
      routes: ['/*'],
      extra: 'env = { GREETING = "hi", EMPTY = "", "WITH_EQUALS" = "a=b" }',
      // A small memory cap: bodies that stream through must not accumulate in the guest.
      limits: { memory: '96MiB', max_request_body: '1GiB' },
      pool: { min_warm: 1, max_instances: 2 },
    },
  ]));
  base = isola.url;
}, 300_000);

afterAll(async () => {
  await isola?.stop();
});

/** Fetches a path of the test guest. */
function get(path: string, init?: RequestInit): Promise<Response> {
  return fetch(`${base}${path}`, init);
}

/** A body of `size` bytes with a recognisable pattern. */
function pattern(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

describe('Request', () => {
  it('has the method, the full URL (scheme, authority, path, query) and the headers in order', async () => {
    const res = await get('/request?a=1&b=%20x', { headers: { 'x-one': '1', 'X-Two': 'two', 'x-dup': 'a' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { method: string; url: string; headers: Array<[string, string]>; hasBody: boolean };
    expect(body.method).toBe('GET');
    expect(body.url).toBe(`${base}/request?a=1&b=%20x`);
    expect(body.headers).toContainEqual(['x-one', '1']);
    expect(body.headers.find(([n]) => n === 'host')?.[1]).toBe(new URL(base).host); // Workers code reads request.headers.get('host')
    expect(body.headers).toContainEqual(['x-two', 'two']);
    expect(body.hasBody).toBe(false);
  });

  it('joins repeated request headers and keeps extension methods', async () => {
    const r = await rawRequest(isola.port, 'PURGE /request HTTP/1.1\r\nHost: fn.test\r\nX-Dup: a\r\nX-Dup: b\r\nContent-Length: 0\r\n\r\n');
    const body = JSON.parse(r.body.toString()) as { method: string; url: string; headers: Array<[string, string]> };
    expect(body.method).toBe('PURGE');
    expect(body.url).toBe('http://fn.test/request');
    expect(body.headers).toContainEqual(['x-dup', 'a, b']);
  });

  it('reads the body as text', async () => {
    const res = await get('/body/text', { method: 'POST', body: 'héllo wörld' });
    expect(await res.text()).toBe('POST héllo wörld');
  });

  it('reads the body as JSON', async () => {
    const res = await get('/body/json', { method: 'PUT', body: JSON.stringify({ a: 1, b: [true, null] }), headers: { 'content-type': 'application/json' } });
    expect(await res.json()).toEqual({ received: { a: 1, b: [true, null] }, keys: ['a', 'b'] });
  });

  it('reads the body as an ArrayBuffer, byte for byte', async () => {
    const bytes = pattern(300_000);
    let sum = 0;
    for (const b of bytes) sum = (sum + b) % 65536;
    const res = await get('/body/array-buffer', { method: 'POST', body: bytes });
    expect(await res.json()).toEqual({ type: 'ArrayBuffer', byteLength: 300_000, sum });
  });

  it('reads the body as a stream, in chunks, in bounded memory (150 MB through a 96 MiB guest)', async () => {
    const size = 150 * 1024 * 1024;
    const res = await get('/body/stream', { method: 'POST', body: new Uint8Array(size) });
    const { chunks, bytes } = (await res.json()) as { chunks: number; bytes: number };
    expect(bytes).toBe(size);
    expect(chunks).toBeGreaterThan(size / (64 * 1024) - 1);
  }, 60_000);

  it('reads form data', async () => {
    const res = await get('/form', { method: 'POST', body: new URLSearchParams({ a: '1', b: 'two words' }) });
    expect(await res.json()).toEqual([['a', '1'], ['b', 'two words']]);
  });
});

describe('Response', () => {
  it('sends status, statusText-free status line, every set-cookie as its own field line, joined repeats', async () => {
    const r = await rawRequest(isola.port, 'GET /cookies HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.status).toBe(201);
    const cookies = r.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v);
    expect(cookies).toEqual(['a=1; Path=/; HttpOnly', 'b=2; Max-Age=60', 'c=3, with comma; Secure']);
    expect(r.headers.find(([n]) => n.toLowerCase() === 'x-multi')?.[1]).toBe('one, two');
    expect(r.body.toString()).toBe('cookies\n');
  });

  it('Headers.getSetCookie on the client sees the three cookies', async () => {
    const res = await get('/cookies');
    expect(res.headers.getSetCookie()).toHaveLength(3);
  });

  it('answers HEAD with the head only, and 204 without a body', async () => {
    const head = await rawRequest(isola.port, 'HEAD /cookies HTTP/1.1\r\nHost: x\r\n\r\n', { head: true });
    expect(head.status).toBe(201);
    expect(head.body.length).toBe(0);
    expect(head.headers.filter(([n]) => n === 'set-cookie')).toHaveLength(3);
    const none = await get('/status?code=204');
    expect(none.status).toBe(204);
    expect(await none.text()).toBe('');
    expect((await get('/status?code=418')).status).toBe(418);
  });

  it('drops hop-by-hop headers instead of failing', async () => {
    const r = await rawRequest(isola.port, 'GET /headers/hop HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.status).toBe(200);
    expect(r.headers).toContainEqual(['x-kept', 'yes']);
    expect(r.headers.filter(([n, v]) => n.toLowerCase() === 'connection' && v === 'close')).toEqual([]);
    expect(r.body.toString()).toBe('hop\n');
  });

  it('streams a ReadableStream body chunk by chunk as it is produced', async () => {
    const res = await get('/stream?n=4&ms=250');
    const { text, arrivals } = await readArrivals(res);
    expect(text.trim().split('\n').map((l) => l.split(' at ')[0])).toEqual(['chunk 0', 'chunk 1', 'chunk 2', 'chunk 3']);
    // The first chunk arrives long before the last one was produced (~750 ms later).
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(500);
  });

  it('streams a raw ReadableStream whose pull() awaits timers', async () => {
    expect(await (await get('/stream/raw')).text()).toBe('raw 0\nraw 1\nraw 2\n');
  });

  it('aborts the response (never a clean end) when the body stream errors after the head', async () => {
    const r = await rawRequest(isola.port, 'GET /stream/error HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(r.body.toString()).toContain('partial');
  });

  it('echoes a 128 MiB request body spliced host-side, in bounded guest memory', async () => {
    const size = 128 * 1024 * 1024;
    const body = pattern(size);
    const res = await get('/body/echo', { method: 'POST', body, headers: { 'content-type': 'application/x-test' } });
    expect(res.headers.get('content-type')).toBe('application/x-test');
    const echoed = new Uint8Array(await res.arrayBuffer());
    expect(echoed.length).toBe(size);
    expect(Buffer.from(echoed).equals(Buffer.from(body))).toBe(true);
  }, 60_000);

  it('sends a 5 MB generated body intact', async () => {
    const res = await get('/big?bytes=5000000');
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBe(5_000_000);
    expect(bytes.every((b) => b === 120)).toBe(true);
  });
});

describe('Workers example patterns', () => {
  it('streams a TransformStream written by a task that outlives the handler', async () => {
    expect(await (await get('/transform')).text()).toBe('part 0\npart 1\npart 2\n');
  });

  it('redirects with Response.redirect', async () => {
    const res = await get('/redirect', { redirect: 'manual' });
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe(`${base}/request?from=redirect`);
  });

  it('copies a response and alters its headers', async () => {
    const res = await get('/modify');
    expect(res.headers.get('x-added')).toBe('yes');
    expect(res.headers.get('x-original')).toBeNull();
    expect(await res.text()).toBe('original body\n');
  });

  it('answers a CORS preflight and the request after it', async () => {
    const pre = await get('/cors', { method: 'OPTIONS', headers: { origin: 'https://a.test', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toBe('GET,POST,OPTIONS');
    const res = await get('/cors', { headers: { origin: 'https://a.test' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual({ cors: true });
  });
});

describe('service-worker syntax (addEventListener(\'fetch\'))', () => {
  it('answers every request through the listener, with variables as globals and waitUntil', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await (await get(`/sw/x${i}`)).text()).toBe(`Hello worker! GET /sw/x${i} hi\n`);
    }
    expect(await (await get('/sw/post', { method: 'POST', body: 'data' })).text()).toBe('Hello worker! POST /sw/post hi data\n');
    await until(() => isola.logs().some((l) => l.function === 'sw' && l.msg === 'sw waitUntil ran'));
  });

  it('answers 500 when the listener does not call respondWith, and keeps serving', async () => {
    const res = await get('/sw/no-respond');
    expect(res.status).toBe(500);
    await until(() => isola.logs().some((l) => l.function === 'sw' && typeof l.msg === 'string' && l.msg.includes('without calling event.respondWith()')));
    expect((await get('/sw/again')).status).toBe(200);
  });
});

describe('URL, encoding, crypto', () => {
  it('parses and serialises URL and URLSearchParams as the WHATWG URL standard says', async () => {
    const res = await get('/url?x=%20y&z');
    expect(await res.json()).toEqual({
      href: 'https://example.com:8443/b?x=1&x=2&y=%C3%A9#frag',
      origin: 'https://example.com:8443',
      host: 'example.com:8443',
      pathname: '/b',
      search: '?x=1&x=2&y=%C3%A9',
      hash: '#frag',
      x: ['1', '2'],
      y: 'é',
      params: 'emoji=%E2%9C%93&q=a+b%26c&q=second',
      parsed: [['a', '1'], ['b', ' two'], ['a', '3']],
      requestQuery: { x: ' y', z: '' },
    });
  });

  it('encodes and decodes UTF-8 with TextEncoder/TextDecoder (streaming, fatal, replacement)', async () => {
    const body = (await (await get(`/encoding?s=${encodeURIComponent('héllo ✓ 😀')}`)).json()) as Record<string, unknown>;
    expect(body.bytes).toEqual([...Buffer.from('héllo ✓ 😀')]);
    expect(body.roundTrip).toBe('héllo ✓ 😀');
    expect(body.split).toBe('héllo ✓ 😀');
    expect(body.fatal).toBe('TypeError');
    expect(body.replaced).toBe('a\uFFFDb');
    expect([body.btoa, body.atob]).toEqual(['aGk=', 'hi']);
  });

  it('fills crypto.getRandomValues with fresh random bytes, and has randomUUID and subtle.digest', async () => {
    const one = (await (await get('/random')).json()) as { a: number[]; b: number[]; uuid: string; sha256: number[] };
    const two = (await (await get('/random')).json()) as { a: number[]; uuid: string };
    expect(one.a).toHaveLength(16);
    expect(one.a).not.toEqual(two.a);
    expect(new Set(one.a).size).toBeGreaterThan(4);
    expect(one.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(one.uuid).not.toBe(two.uuid);
    expect(one.sha256).toEqual([0xba, 0x78, 0x16, 0xbf]);
  });
});

describe('the function environment', () => {
  it('gives env the function\'s configured variables, and only those', async () => {
    expect(await (await get('/env')).json()).toEqual({ GREETING: 'hi', EMPTY: '', WITH_EQUALS: 'a=b' });
  });

  it('sends console.log to the function\'s log, tagged with the request id', async () => {
    const res = await get('/log?id=t-log-1');
    expect(await res.text()).toBe('logged\n');
    const id = res.headers.get('x-request-id');
    const mine = () => isola.logs().filter((l) => l.req_id === id && l.function === 'sdk');
    await until(() => mine().length >= 3);
    expect(mine()).toContainEqual(expect.objectContaining({ stream: 'stdout', msg: 'log line from t-log-1 { n: 1 }' }));
    expect(mine()).toContainEqual(expect.objectContaining({ stream: 'stderr', msg: 'error line from guest' }));
  });

  it('fails outbound fetch() with a TypeError that says outbound HTTP is not offered', async () => {
    const res = await get('/fetch?to=http://127.0.0.1:9/');
    expect(res.status).toBe(502);
    const body = (await res.json()) as { ok: boolean; name: string; message: string; isTypeError: boolean };
    expect(body.ok).toBe(false);
    expect(body.isTypeError).toBe(true);
    expect(body.message).toContain('fetch(GET http://127.0.0.1:9/) failed');
    expect(body.message).toContain('isola does not offer outbound HTTP yet');
  });

  it('runs ctx.waitUntil work after the response, before the sandbox takes the next request', async () => {
    const res = await get('/wait-until?id=w1');
    expect(await res.text()).toBe('scheduled\n');
    await until(() => isola.logs().some((l) => l.msg === 'waitUntil done w1'));
  });

  it('answers 500 and logs the error when the handler throws or returns a non-Response; the instance stays usable', async () => {
    for (const path of ['/throw', '/not-a-response']) {
      const res = await get(path);
      expect(res.status).toBe(500);
      expect(await res.text()).toBe('Internal Server Error\n');
      const id = res.headers.get('x-request-id');
      await until(() => isola.logs().some((l) => l.req_id === id && typeof l.msg === 'string' && l.msg.startsWith('Uncaught (in fetch handler)')));
    }
    expect(isola.logs().some((l) => typeof l.msg === 'string' && l.msg.includes('boom from the handler'))).toBe(true);
    expect((await get('/status?code=200')).status).toBe(200);
  });

  it('serves many requests from one instance (no fetch-event one-shot)', async () => {
    const statuses = [];
    for (let i = 0; i < 20; i++) statuses.push((await get('/status?code=200')).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(isola.logs().filter((l) => l.outcome === 'trap')).toEqual([]);
  });

  it('provides the Web API globals a Workers handler expects', async () => {
    const globals = (await (await get('/globals')).json()) as Record<string, string>;
    for (const [name, type] of Object.entries(globals)) expect(`${name}: ${type}`).not.toBe(`${name}: undefined`);
  });
});

/** Waits until `pred` holds (polling every 20 ms) or fails after 5 s. */
async function until(pred: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
