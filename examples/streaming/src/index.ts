/**
 * streaming: a response whose body is produced over time. Each chunk is sent to the client as soon
 * as the function enqueues it, with the function waiting between chunks (a ReadableStream whose
 * pull() awaits a timer).
 *
 * GET /stream                 → 5 lines, 200 ms apart (text/plain)
 * GET /stream?count=10&ms=50  → 10 lines, 50 ms apart (count ≤ 100, ms ≤ 2000)
 * GET /stream/sse             → the same as server-sent events (text/event-stream)
 *
 * Try: curl -N http://127.0.0.1:8787/stream
 */
import type { Env } from '@isola/sdk';

const encoder = new TextEncoder();

function clamp(value: string | null, fallback: number, max: number): number {
  const n = Number(value ?? fallback);
  return Number.isInteger(n) && n >= 0 ? Math.min(n, max) : fallback;
}

/** A stream of `count` chunks made by `line(i)`, `ms` apart. */
function ticker(count: number, ms: number, line: (i: number) => string): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i >= count) {
        controller.close();
        return;
      }
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      controller.enqueue(encoder.encode(line(i)));
      i++;
    },
  });
}

export default {
  fetch(request: Request, _env: Env): Response {
    const url = new URL(request.url);
    const count = clamp(url.searchParams.get('count'), 5, 100);
    const ms = clamp(url.searchParams.get('ms'), 200, 2000);
    const started = Date.now();
    if (url.pathname.endsWith('/sse')) {
      const body = ticker(count, ms, (i) => `id: ${i}\ndata: {"tick":${i},"elapsed_ms":${Date.now() - started}}\n\n`);
      return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
    }
    const body = ticker(count, ms, (i) => `tick ${i + 1}/${count} after ${Date.now() - started} ms\n`);
    return new Response(body, { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  },
};
