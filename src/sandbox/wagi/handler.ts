/**
 * WAGI requests inside a sandbox (issue 3). Placeholder until the CGI runner lands: answers every
 * request with a 501 so a misconfigured function fails loudly instead of hanging.
 */
import { Exchange, type Post } from '../exchange.js';
import type { RequestHead, SandboxInit } from '../protocol.js';

/** Runs one WAGI request to completion (synchronously, on the sandbox thread). */
export function runWagiRequest(init: SandboxInit, head: RequestHead, post: Post): void {
  const ex = new Exchange(head, init.control, init.bodyPort, post, init.maxLogBytes);
  const body = new TextEncoder().encode('{"error":{"code":"ERR_INTERNAL","message":"WAGI is not implemented yet"}}');
  ex.setHead({ status: 501, headers: ['content-type', 'application/json'] });
  ex.write(body);
  ex.end();
  ex.close({ kind: 'ok' });
}
