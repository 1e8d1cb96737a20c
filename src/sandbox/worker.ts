/**
 * The sandbox: a worker thread that hosts one instance of one function version and runs one
 * request at a time (DESIGN.md decision 1). It never touches the network; the main thread feeds it
 * request heads (messages), body chunks (the body port) and signals (the shared control block).
 *
 * A guest that traps or exits is never called again: the instance is discarded and a fresh one is
 * made from the same compiled modules before the next request.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Exchange, type Post } from './exchange.js';
import type { FromSandbox, GuestOutcome, SandboxInit, ToSandbox, RequestHead } from './protocol.js';
import { GuestExit } from './wasi-http/cli.js';
import { setMaxResponseBodyBytes } from './wasi-http/http.js';
import { createWasiHttpHost } from './wasi-http/index.js';
import { runWagiRequest } from './wagi/handler.js';
import { initWagi } from './wagi/run.js';

// jco's glue reads process.env.JCO_DEBUG on every host call; node's env object is an interceptor
// (~140 ns a read). The guest never sees the host environment, so a plain copy is all we need.
process.env = { ...process.env };

const init = workerData as SandboxInit;
const port = parentPort!;
const post: Post = (msg: FromSandbox, transfer?: ArrayBuffer[]) => port.postMessage(msg, transfer ?? []);

interface Handler {
  handle(request: unknown, outparam: unknown): void;
}

const host = createWasiHttpHost(init.env);
setMaxResponseBodyBytes(init.maxResponseBodyBytes);
let handler: Handler | null = null;
let glue: { instantiate: (get: (name: string) => WebAssembly.Module, imports: unknown) => Promise<Record<string, unknown>> } | null = null;

async function instantiate(): Promise<void> {
  if (init.abi === 'wagi') return initWagi(); // each WAGI request gets a fresh instance (WAGI semantics)
  glue ??= (await import(init.glueUrl!)) as typeof glue;
  const exports = await glue!.instantiate((name) => {
    const m = init.modules[name];
    if (!m) throw new Error(`glue asked for unknown core module ${name}`);
    return m;
  }, host.imports);
  const found = Object.entries(exports).find(([k]) => k.startsWith('wasi:http/incoming-handler@0.2'));
  const h = (found?.[1] ?? exports.incomingHandler) as Handler | undefined;
  if (!h || typeof h.handle !== 'function') throw new Error('component does not export wasi:http/incoming-handler');
  handler = h;
}

function judge(ex: Exchange): GuestOutcome {
  if (ex.errorResponse !== null) return { kind: 'error-response', message: `guest answered with an error: ${ex.errorResponse}` };
  if (!ex.hasHead) return { kind: 'no-response', message: 'guest returned without setting a response' };
  if (ex.failure !== null) return { kind: 'bad-response', message: ex.failure };
  if (!ex.completed) return { kind: 'unfinished-body', message: 'guest returned without finishing the response body' };
  return { kind: 'ok' };
}

function runWasiHttp(head: RequestHead): boolean {
  const ex = new Exchange(head, init.control, init.bodyPort, post, init.maxLogBytes);
  const { request, outparam } = host.begin(ex);
  let outcome: GuestOutcome;
  try {
    handler!.handle(request, outparam);
    outcome = judge(ex);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    outcome = err instanceof GuestExit
      ? { kind: 'exit', message, discard: true }
      : { kind: 'trap', message: `guest trapped: ${message}`, discard: true };
  }
  host.end();
  ex.close(outcome);
  return outcome.discard === true;
}

let chain: Promise<void> = Promise.resolve();
port.on('message', (msg: ToSandbox) => {
  if (msg.t !== 'request') return;
  chain = chain.then(async () => {
    if (init.abi === 'wagi') {
      runWagiRequest(init, msg.head, post);
      return;
    }
    if (!handler) await instantiate();
    if (runWasiHttp(msg.head)) {
      handler = null;
      await instantiate();
    }
  }).catch((err: unknown) => {
    // Instantiation failed after a discard: tell the main thread this sandbox is unusable.
    post({ t: 'init-error', message: err instanceof Error ? err.message : String(err), code: 'ERR_SANDBOX_CRASHED' });
  });
});

instantiate().then(
  () => post({ t: 'ready' }),
  (err: unknown) => post({ t: 'init-error', message: err instanceof Error ? err.message : String(err), code: 'ERR_WASM_INVALID' }),
);
