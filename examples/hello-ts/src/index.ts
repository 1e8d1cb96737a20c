/**
 * hello-ts: the smallest isola function written with the SDK, Workers-style.
 *
 * GET /hello-ts            → "Hello from isola (TypeScript)!" plus $GREETING
 * GET /hello-ts?name=Ada   → "Hello, Ada!" …
 */
import type { Env, ExecutionContext } from '@isola/sdk';

export default {
  async fetch(request: Request, env: Env, _ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const name = url.searchParams.get('name');
    const lines = [name ? `Hello, ${name}!` : 'Hello from isola (TypeScript)!'];
    if (env.GREETING) lines.push(env.GREETING);
    return new Response(`${lines.join('\n')}\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  },
};
