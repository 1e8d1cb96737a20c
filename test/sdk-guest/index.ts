/**
 * The test guest for the SDK: one function that exercises a Web API behind each path, so that one
 * componentize build covers every behaviour test in test/sdk.test.ts. Written the way a Workers
 * user would, against the SDK's types.
 */
import { defineHandler, json, sleep, stream, text, type Env } from '@isola/sdk';

const encoder = new TextEncoder();

/** Reads a stream to the end, counting chunks and bytes. */
async function drain(body: ReadableStream<Uint8Array>): Promise<{ chunks: number; bytes: number }> {
  const reader = body.getReader();
  let chunks = 0;
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { chunks, bytes };
    chunks++;
    bytes += value.length;
  }
}

/** Serves one route; `undefined` = not found. */
async function route(request: Request, env: Env, ctx: { waitUntil(p: Promise<unknown>): void }): Promise<Response | undefined> {
  const url = new URL(request.url);
  switch (url.pathname) {
    case '/request':
      return json({ method: request.method, url: request.url, headers: [...request.headers], hasBody: request.body !== null });
    case '/body/text':
      return text(`${request.method} ${await request.text()}`);
    case '/body/json': {
      const data = (await request.json()) as Record<string, unknown>;
      return json({ received: data, keys: Object.keys(data) });
    }
    case '/body/array-buffer': {
      const buf = await request.arrayBuffer();
      const bytes = new Uint8Array(buf);
      let sum = 0;
      for (const b of bytes) sum = (sum + b) % 65536;
      return json({ type: buf.constructor.name, byteLength: buf.byteLength, sum });
    }
    case '/body/stream':
      return json(request.body ? await drain(request.body) : { chunks: 0, bytes: 0 });
    case '/body/echo':
      return new Response(request.body, { headers: { 'content-type': request.headers.get('content-type') ?? 'application/octet-stream' } });
    case '/cookies': {
      const headers = new Headers({ 'content-type': 'text/plain' });
      headers.append('set-cookie', 'a=1; Path=/; HttpOnly');
      headers.append('set-cookie', 'b=2; Max-Age=60');
      headers.append('set-cookie', 'c=3, with comma; Secure');
      headers.append('x-multi', 'one');
      headers.append('x-multi', 'two');
      return new Response('cookies\n', { status: 201, statusText: 'Created', headers });
    }
    case '/status':
      return new Response(null, { status: Number(url.searchParams.get('code') ?? '200') });
    case '/stream': {
      const n = Number(url.searchParams.get('n') ?? '3');
      const delay = Number(url.searchParams.get('ms') ?? '100');
      async function* chunks() {
        for (let i = 0; i < n; i++) {
          if (i > 0) await sleep(delay);
          yield `chunk ${i} at ${Date.now()}\n`;
        }
      }
      return new Response(stream(chunks()), { headers: { 'content-type': 'text/plain' } });
    }
    case '/stream/raw': {
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (i === 3) return controller.close();
          if (i > 0) await new Promise((r) => setTimeout(r, 50));
          controller.enqueue(encoder.encode(`raw ${i++}\n`));
        },
      });
      return new Response(body);
    }
    case '/stream/error': {
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (i++ === 0) controller.enqueue(encoder.encode('partial\n'));
          else controller.error(new Error('stream broke'));
        },
      });
      return new Response(body);
    }
    case '/big': {
      const size = Number(url.searchParams.get('bytes') ?? '1048576');
      return new Response(new Uint8Array(size).fill(120));
    }
    case '/url': {
      const target = new URL(url.searchParams.get('u') ?? '/a/../b?x=1&x=2&y=%C3%A9#frag', 'https://example.com:8443/base/');
      const params = new URLSearchParams({ q: 'a b&c', emoji: '✓' });
      params.append('q', 'second');
      params.sort();
      return json({
        href: target.href, origin: target.origin, host: target.host, pathname: target.pathname,
        search: target.search, hash: target.hash, x: target.searchParams.getAll('x'), y: target.searchParams.get('y'),
        params: params.toString(), parsed: [...new URLSearchParams('a=1&b=%20two&a=3')],
        requestQuery: Object.fromEntries(url.searchParams),
      });
    }
    case '/encoding': {
      const input = url.searchParams.get('s') ?? 'héllo ✓ 😀';
      const bytes = encoder.encode(input);
      const decoder = new TextDecoder();
      const split = decoder.decode(bytes.subarray(0, 2), { stream: true }) + decoder.decode(bytes.subarray(2));
      return json({
        bytes: Array.from(bytes), length: bytes.length, roundTrip: new TextDecoder().decode(bytes), split,
        fatal: (() => { try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xff])); return 'accepted'; } catch (e) { return (e as Error).name; } })(),
        replaced: new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0x62])),
        btoa: btoa('hi'), atob: atob('aGk='),
      });
    }
    case '/random': {
      const a = new Uint8Array(16);
      const b = new Uint32Array(4);
      crypto.getRandomValues(a);
      crypto.getRandomValues(b);
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode('abc')));
      return json({ a: Array.from(a), b: Array.from(b), uuid: crypto.randomUUID(), sha256: Array.from(digest.subarray(0, 4)), math: Math.random() });
    }
    case '/log':
      console.log(`log line from ${url.searchParams.get('id') ?? 'guest'}`, { n: 1 });
      console.error('error line from guest');
      console.warn('warn line from guest');
      return text('logged\n');
    case '/fetch':
      try {
        const r = await fetch(url.searchParams.get('to') ?? 'http://example.com/');
        return json({ ok: true, status: r.status });
      } catch (err) {
        const e = err as Error;
        return json({ ok: false, name: e.name, message: e.message, isTypeError: e instanceof TypeError }, { status: 502 });
      }
    case '/env':
      return json(env);
    case '/throw':
      throw new Error('boom from the handler');
    case '/not-a-response':
      return 'oops' as unknown as Response;
    case '/wait-until': {
      const id = url.searchParams.get('id') ?? 'x';
      ctx.waitUntil(sleep(50).then(() => console.log(`waitUntil done ${id}`)));
      return text('scheduled\n');
    }
    case '/globals':
      return json(Object.fromEntries(['Request', 'Response', 'Headers', 'ReadableStream', 'WritableStream', 'TransformStream', 'TextEncoder', 'TextDecoder', 'URL', 'URLSearchParams', 'crypto', 'console', 'fetch', 'setTimeout', 'clearTimeout', 'queueMicrotask', 'structuredClone', 'atob', 'btoa', 'AbortController', 'Blob', 'FormData', 'performance'].map((n) => [n, typeof (globalThis as Record<string, unknown>)[n]])));
    case '/headers/hop':
      return new Response('hop\n', { headers: { connection: 'close', 'keep-alive': 'timeout=5', 'x-kept': 'yes' } });
    // Patterns from Workers' examples, unmodified in spirit:
    case '/transform': {
      // Stream a body written by a task that keeps running after the handler returned.
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      void (async () => {
        for (let i = 0; i < 3; i++) {
          await writer.write(encoder.encode(`part ${i}\n`));
          await sleep(30);
        }
        await writer.close();
      })();
      return new Response(readable, { headers: { 'content-type': 'text/plain' } });
    }
    case '/redirect':
      return Response.redirect(`${url.origin}/request?from=redirect`, 301);
    case '/modify': {
      // "Alter headers": copy a response, then change its headers.
      const original = new Response('original body\n', { headers: { 'x-original': '1' } });
      const copy = new Response(original.body, original);
      copy.headers.set('x-added', 'yes');
      copy.headers.delete('x-original');
      return copy;
    }
    case '/cors':
      if (request.method === 'OPTIONS') {
        return new Response(null, {
          status: 204,
          headers: { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET,POST,OPTIONS', 'access-control-max-age': '86400' },
        });
      }
      return json({ cors: true }, { headers: { 'access-control-allow-origin': '*' } });
    case '/form': {
      const form = await request.formData();
      return json([...form].map(([k, v]) => [k, typeof v === 'string' ? v : 'file']));
    }
    default:
      return undefined;
  }
}

export default defineHandler({
  async fetch(request, env, ctx) {
    return (await route(request, env, ctx)) ?? text(`no route for ${new URL(request.url).pathname}\n`, { status: 404 });
  },
});
