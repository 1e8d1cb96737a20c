/**
 * The lean glue (./glue.ts leanGlue) behaves like the glue jco wrote, on real guests: each guest is
 * prepared twice (ISOLA_JCO_GLUE=plain, and lean), both are run against isola's real wasi:http host
 * on one thread (no worker, no HTTP), and what they answer — response head, body bytes, end,
 * failures, error responses, what the call throws — must be identical, request after request,
 * including traps and the refusal to enter a trapped instance again.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuest, type GuestName } from '../../test/guests/index.js';
// @ts-expect-error: a plain ESM script without type declarations
import { buildExamples } from '../../scripts/build-examples.mjs';
import { Exchange } from '../sandbox/exchange.js';
import type { FromSandbox, RequestHead } from '../sandbox/protocol.js';
import { createControl } from '../sandbox/shared.js';
import { createWasiHttpHost, type WasiHttpHost } from '../sandbox/wasi-http/index.js';
import { compileArtifact, prepareArtifact } from './prepare.js';

interface Handler {
  handle(request: unknown, outparam: unknown): void;
}
interface Loaded {
  glue: string;
  host: WasiHttpHost;
  handler: Handler;
}

let dir: string;
let seq = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'isola-glue-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Prepares `wasm` with the plain or the lean glue (separate artifact caches) and instantiates it. */
async function load(wasm: string, plain: boolean): Promise<Loaded> {
  const saved = process.env.ISOLA_JCO_GLUE;
  if (plain) process.env.ISOLA_JCO_GLUE = 'plain';
  else delete process.env.ISOLA_JCO_GLUE;
  let artifact;
  try {
    artifact = await prepareArtifact(new Uint8Array(await readFile(wasm)), join(dir, plain ? 'plain' : 'lean'));
  } finally {
    if (saved === undefined) delete process.env.ISOLA_JCO_GLUE;
    else process.env.ISOLA_JCO_GLUE = saved;
  }
  const modules = await compileArtifact(artifact, 256 * 1048576);
  const glue = await readFile(new URL(artifact.glueUrl!), 'utf8');
  const host = createWasiHttpHost({ GREETING: 'hi' });
  const mod = (await import(artifact.glueUrl!)) as {
    instantiate(get: (n: string) => WebAssembly.Module, imports: unknown): Promise<Record<string, Handler>>;
  };
  const exports = await mod.instantiate((n) => modules[n]!, host.imports);
  const handler = Object.entries(exports).find(([k]) => k.startsWith('wasi:http/incoming-handler@0.2'))![1];
  return { glue, host, handler };
}

interface Req {
  method?: string;
  path?: string;
  headers?: string[];
  body?: string;
}

/** What one request produced, independent of how the bytes were split into messages. */
interface Observed {
  thrown: string | null;
  status: number | null;
  headers: string[] | null;
  body: string;
  end: boolean;
  failure: string | null;
  errorResponse: string | null;
  completed: boolean;
}

function run(l: Loaded, req: Req, port1: MessagePort, port2: MessagePort): Observed {
  const n = ++seq;
  const id = `r${n}`;
  const body = req.body === undefined ? null : Buffer.from(req.body);
  const head: RequestHead = {
    id, method: req.method ?? 'GET', scheme: 'http', authority: '127.0.0.1', pathWithQuery: req.path ?? '/x?y=1',
    rawHeaders: req.headers ?? ['Host', '127.0.0.1', 'Content-Type', 'text/x-test'], httpVersion: '1.1',
    remoteAddr: '127.0.0.1', remotePort: 1, serverName: '127.0.0.1', serverPort: 80, routePrefix: '/',
    bodyLength: body ? body.byteLength : 0, seq: n,
  } as RequestHead;
  if (body) port1.postMessage({ seq: n, chunk: new Uint8Array(body), end: true });
  const posted: FromSandbox[] = [];
  const ex = new Exchange(head, createControl(), port2, (m) => posted.push(m), 65536);
  const { request, outparam } = l.host.begin(ex);
  let thrown: string | null = null;
  try {
    l.handler.handle(request, outparam);
  } catch (err) {
    thrown = err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
  }
  l.host.end();
  const observed = { failure: ex.failure, errorResponse: ex.errorResponse, completed: ex.completed };
  ex.close(thrown === null ? { kind: 'ok' } : { kind: 'trap', message: thrown });
  let status: number | null = null;
  let headers: string[] | null = null;
  let text = '';
  let end = false;
  for (const m of posted) {
    if (m.t !== 'res') continue;
    if (m.head) ({ status, headers } = { status: m.head.status, headers: m.head.headers });
    if (m.text !== undefined) text += m.text;
    for (const c of m.body ?? []) text += Buffer.from(c).toString('latin1');
    if (m.end) end = true;
  }
  return { thrown, status, headers, body: text, end, ...observed };
}

/** Runs the same requests through the plain and the lean glue; returns both sequences of outcomes. */
async function compare(wasm: string, reqs: Req[]): Promise<{ plain: Observed[]; lean: Observed[]; leanGlue: string; plainGlue: string }> {
  const { port1, port2 } = new MessageChannel();
  try {
    const plain = await load(wasm, true);
    const lean = await load(wasm, false);
    expect(plain.glue.includes('__isola')).toBe(false);
    return {
      plain: reqs.map((r) => run(plain, r, port1, port2)),
      lean: reqs.map((r) => run(lean, r, port1, port2)),
      leanGlue: lean.glue,
      plainGlue: plain.glue,
    };
  } finally {
    port1.close();
    port2.close();
  }
}

/** Every transform of leanGlue applied to this glue (asserted without printing 200 KB of glue on failure). */
function expectFullyLean(glue: string, plain: string): void {
  const has = (s: string) => glue.includes(s);
  expect(has('const task = __isolaNoTask;'), 'directHostCalls').toBe(plain.includes('const _trampoline'));
  expect(has('isola: direct synchronous export call'), 'directExportCalls').toBe(true);
  expect(has('createNewCurrentTask({\n      componentIdx: 0,\n      isAsync: false'), 'export task').toBe(false);
  expect(has('_createdReps.add('), 'dropCreatedReps').toBe(false);
  expect(/new Uint8Array\(memory\d+\.buffer\.slice\(/.test(glue), 'fastByteCopies').toBe(false);
  expect(has('__isolaBytes(memory0, '), 'fastByteCopies').toBe(/\.buffer\.slice\(/.test(plain));
}

const GET: Req = {};
const POST: Req = { method: 'POST', body: 'some request body\n', headers: ['Host', 'h', 'Content-Type', 'text/x-test', 'X-Bytes', 'a\u00e9b'] };

describe('lean glue on WAT guests', () => {
  const cases: Array<[GuestName, Req[], (o: Observed[]) => void]> = [
    ['hello', [GET, GET, GET], (o) => {
      expect(o.map((x) => x.status)).toEqual([200, 200, 200]);
      expect(o[2]!.body).toBe('hello from wat\n');
      expect(o[2]!.end).toBe(true);
    }],
    ['echo', [POST, GET, POST], (o) => {
      expect(o[0]!.body).toBe('some request body\n');
      expect(o[0]!.headers).toEqual(['content-type', 'text/x-test']);
    }],
    ['headers', [POST, GET], (o) => expect(o[0]!.body).toContain('x-bytes: a\u00e9b\n')],
    ['set-cookie', [GET, GET], (o) => expect(o[0]!.status).toBe(200)],
    ['bad-fields', [GET, GET], (o) => expect(o[0]!.thrown).toBeNull()],
    ['bad-status', [GET, GET], () => {}],
    ['trap', [GET, GET], (o) => {
      expect(o[0]!.thrown).toMatch(/^RuntimeError: .*unreachable/);
      expect(o[1]!.thrown).toMatch(/cannot enter component instance/);
    }],
    ['trap-after-head', [GET, GET], (o) => {
      expect(o[0]!.thrown).toMatch(/^RuntimeError/);
      expect(o[0]!.status).toBe(200);
      expect(o[1]!.thrown).toMatch(/cannot enter component instance/);
    }],
    ['no-response', [GET, GET], (o) => expect(o[0]!.status).toBeNull()],
    ['error-response', [GET, GET], (o) => expect(o[0]!.errorResponse).not.toBeNull()],
    ['unfinished-body', [GET, GET], (o) => expect(o[0]!.completed).toBe(false)],
    ['short-body', [GET, GET], (o) => expect(o[0]!.failure).toMatch(/content-length/)],
    ['long-body', [GET, GET], (o) => expect(o[0]!.failure).toMatch(/content-length/)],
    ['stdout', [GET, GET], (o) => expect(o[0]!.status).toBe(200)],
    ['env', [GET, GET], (o) => expect(o[0]!.body).toContain('GREETING')],
    ['counter', [GET, GET, GET, GET], (o) => {
      expect(o.map((x) => x.status)).toEqual([201, 202, null, null]);
      expect(o[2]!.thrown).toMatch(/^RuntimeError: .*unreachable/);
      expect(o[3]!.thrown).toMatch(/cannot enter component instance/);
    }],
  ];
  it.each(cases)('%s answers exactly as with the plain glue', { timeout: 60_000 }, async (name, reqs, check) => {
    const { plain, lean, leanGlue, plainGlue } = await compare(await buildGuest(name), reqs);
    expectFullyLean(leanGlue, plainGlue);
    expect(lean).toEqual(plain);
    check(lean);
  });
});

describe('lean glue on a componentize-js guest', () => {
  it('examples/echo answers exactly as with the plain glue', { timeout: 180_000 }, async () => {
    const [echo] = (await buildExamples(['echo'])) as Array<{ out: string }>;
    const reqs: Req[] = [POST, GET, { ...POST, method: 'PUT', path: '/echo/a?b' }];
    const { plain, lean, leanGlue, plainGlue } = await compare(echo!.out, reqs);
    expectFullyLean(leanGlue, plainGlue);
    expect(lean).toEqual(plain);
    expect(lean[0]!.status).toBe(200);
    expect(lean[0]!.body).toContain('some request body');
    expect(lean.every((o) => o.thrown === null)).toBe(true);
  });
});
