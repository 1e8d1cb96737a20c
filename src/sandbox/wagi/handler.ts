/**
 * One WAGI request inside a sandbox: a fresh instance of the compiled core module per request
 * (WAGI semantics), CGI/1.1 environment and argv (./cgi.ts), the request body on stdin, stdout
 * parsed as a CGI response (./response.ts) and streamed to the client as the guest writes it,
 * stderr into the request's log. How each ending becomes an HTTP answer is ./outcome.ts's table.
 *
 * A guest-declared Content-Length is enforced: more bytes stop the guest, fewer abort the response.
 */
import { IsolaError } from '../../errors.js';
import { BodyError, EOF, Exchange, type Post } from '../exchange.js';
import type { GuestOutcome, RequestHead, SandboxInit } from '../protocol.js';
import { cgiArgv, cgiEnvironment } from './cgi.js';
import { wagiVerdict } from './outcome.js';
import { CgiResponseParser } from './response.js';
import { runWagi } from './run.js';
import { takeBlockedMs } from '../blocking.js';

/** Thrown from the stdout callback to stop a guest that wrote past its Content-Length. */
const OVERFLOW = new Error('past Content-Length');

/** The fuel counter metered modules import (one per sandbox thread, reset per request). */
let fuelCounter: WebAssembly.Global | null = null;

/** Runs one WAGI request to completion (synchronously, on the sandbox thread). */
export function runWagiRequest(init: SandboxInit, head: RequestHead, post: Post, cpuSinceLast: () => number): void {
  const module = init.modules['main.wasm'] ?? Object.values(init.modules)[0]!;
  const ex = new Exchange(head, init.control, init.bodyPort, post, init.maxLogBytes);
  let declared: number | null = null;
  let written = 0;
  const parser = new CgiResponseParser({
    onHead(h) {
      declared = h.contentLength;
      const headers = declared === null ? h.headers : [...h.headers, 'content-length', String(declared)];
      ex.setHead({ status: h.status, headers });
    },
    onBody(chunk) {
      if (declared !== null && written + chunk.byteLength > declared) {
        // The declared length is complete: send it, drop the rest, and stop the guest (RFC 9112 §6.3:
        // bytes past Content-Length are not part of the response).
        const fits = chunk.subarray(0, declared - written);
        written = declared;
        if (fits.byteLength > 0) ex.write(fits.slice());
        overflowed = true;
        throw OVERFLOW;
      }
      written += chunk.byteLength;
      if (written > init.maxResponseBodyBytes) {
        throw new IsolaError('ERR_RESPONSE_BODY_TOO_LARGE', `response body over the ${init.maxResponseBodyBytes}-byte limit`, { status: 500 });
      }
      ex.write(chunk);
    },
  });
  let thrown: unknown = null;
  let exitCode: number | null = null;
  let overflowed = false;
  const limit = init.fuelLimit === null ? null : BigInt(init.fuelLimit);
  fuelCounter ??= limit === null ? null : new WebAssembly.Global({ value: 'i64', mutable: true }, 0n);
  if (fuelCounter && limit !== null) fuelCounter.value = limit;
  try {
    ({ exitCode } = runWagi(module, {
      args: cgiArgv(init.name, head, init.argv),
      env: cgiEnvironment(head, { env: init.env, matchedRoute: head.route }),
      files: init.files,
      memoryMaxBytes: init.memoryBytes,
      fuel: fuelCounter ?? undefined,
      readStdin(max) {
        const r = ex.read(max, true);
        if (r === EOF) return null;
        if (r instanceof BodyError) throw new IsolaError('ERR_INTERNAL', `request body: ${r.message}`, { status: 400 });
        return r as Uint8Array;
      },
      writeStdout(chunk) {
        if (ex.aborted) throw new IsolaError('ERR_INTERNAL', 'client disconnected', { status: 499 });
        // The view points into guest memory: copy once; body pieces are views of this copy.
        parser.push(chunk.slice());
        // Stream as the guest writes: each fd_write to stdout goes out now (wasi-libc buffers
        // stdout, so a typical response is one or two writes).
        ex.flush();
      },
      writeStderr(chunk) {
        ex.log('stderr', chunk);
      },
      sleepUntil(deadlineNs) {
        // Sleeping flushes what the guest wrote first (streaming), and wakes early to notice a gone client.
        for (;;) {
          const left = Number(deadlineNs - process.hrtime.bigint()) / 1e6;
          if (left <= 0) return;
          if (ex.aborted) throw new IsolaError('ERR_INTERNAL', 'client disconnected', { status: 499 });
          ex.sleep(left);
        }
      },
    }));
  } catch (err) {
    thrown = err;
  }
  const outOfFuel = fuelCounter !== null && (fuelCounter.value as bigint) < 0n;
  if (outOfFuel && thrown !== null) {
    thrown = new IsolaError('ERR_FUEL_LIMIT', `fuel limit of ${init.fuelLimit} reached`, { status: 503 });
  }
  if (overflowed && thrown === OVERFLOW) {
    thrown = null; // a complete response: the guest was stopped only because it wrote past it
    exitCode = 0;
  }
  const verdict = wagiVerdict({ thrown, exitCode, parser });
  let outcome: GuestOutcome;
  if (verdict.kind === 'ok') {
    if (declared !== null && written !== declared) {
      ex.fail(`Content-Length is ${declared} but the guest wrote ${written} bytes`);
      outcome = { kind: 'bad-response', message: `Content-Length is ${declared} but the guest wrote ${written} bytes` };
    } else {
      ex.end();
      outcome = overflowed
        ? { kind: 'ok', message: `the guest wrote past its Content-Length of ${declared} bytes; the extra bytes were dropped` }
        : verdict.exitCode === 0 ? { kind: 'ok' } : { kind: 'ok', message: `exit code ${verdict.exitCode} after a complete response` };
    }
  } else {
    const e = verdict.error;
    if (verdict.kind === 'abort') ex.fail(e.message);
    const kind: GuestOutcome['kind'] = e.code === 'ERR_GUEST_TRAP' || e.code === 'ERR_FUEL_LIMIT' || e.code === 'ERR_MEMORY_LIMIT' ? 'trap' : e.code === 'ERR_GUEST_EXIT' ? 'exit' : 'bad-response';
    outcome = { kind, message: e.message, status: e.status, code: e.code };
  }
  outcome.cpuNs = cpuSinceLast();
  outcome.blockedMs = takeBlockedMs();
  if (fuelCounter && limit !== null) outcome.fuel = Number(limit - (fuelCounter.value as bigint));
  ex.close(outcome);
}
