/**
 * The SDK's helpers (sdk/src/index.ts) are plain Web API code: run them under Node's own
 * Request/Response/ReadableStream here, as they run inside the guest.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineHandler, html, json, sleep, stream, text } from '../sdk/src/index.ts';
import { ROOT } from './support/server.js';

describe('@isola/sdk helpers', () => {
  it('json() serialises with a JSON content type, keeping init', async () => {
    const res = json({ a: [1, 'b'] }, { status: 201, headers: { 'x-a': '1' } });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('x-a')).toBe('1');
    expect(await res.json()).toEqual({ a: [1, 'b'] });
  });

  it('text() and html() set their content types unless given one', async () => {
    expect(text('hi').headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(html('<p>').headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(text('x', { headers: { 'content-type': 'text/csv' } }).headers.get('content-type')).toBe('text/csv');
    expect(await text('héllo', { status: 404 }).text()).toBe('héllo');
  });

  it('stream() turns sync and async iterables of strings and bytes into a byte stream, pulled lazily', async () => {
    const produced: number[] = [];
    async function* gen() {
      for (let i = 0; i < 3; i++) {
        produced.push(i);
        yield i === 1 ? new Uint8Array([104, 105]) : `${i}`;
        await sleep(1);
      }
    }
    const body = stream(gen());
    expect(produced).toEqual([]);
    expect(await new Response(body).text()).toBe('0hi2');
    expect(await new Response(stream(['a', 'b'])).text()).toBe('ab');
  });

  it('stream() rejects chunks that are neither strings nor bytes', async () => {
    await expect(new Response(stream([42 as unknown as string])).text()).rejects.toThrow(/chunks must be strings or Uint8Arrays/);
  });

  it('stream() cancel ends the generator', async () => {
    let finished = false;
    function* gen() {
      try {
        for (;;) yield 'x';
      } finally {
        finished = true;
      }
    }
    const body = stream(gen());
    const reader = body.getReader();
    await reader.read();
    await reader.cancel();
    expect(finished).toBe(true);
  });

  it('defineHandler() returns the handler unchanged', () => {
    const handler = { fetch: () => new Response('x') };
    expect(defineHandler(handler)).toBe(handler);
  });
});

describe('types', () => {
  it.each(['sdk', 'examples'])('%s type-checks (tsc -p)', (project) => {
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, project)], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);
});
