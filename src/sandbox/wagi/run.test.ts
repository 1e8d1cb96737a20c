// runWagi with real guests built here from C (clang, wasm32-wasi) and WAT (wabt npm), run in
// this test's own thread. Guest sources: test/wagi-guests/, examples/wagi-*/.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleWat, compileC } from '../../../scripts/build-wagi-examples.mjs';
import { IsolaError } from '../../errors.js';
import type { RequestHead } from '../protocol.js';
import { cgiArgv, cgiEnvironment } from './cgi.js';
import { wagiVerdict, type WagiVerdict } from './outcome.js';
import { CgiResponseParser, type CgiResponseHead } from './response.js';
import { initWagi, runWagi } from './run.js';

const repo = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const MiB = 1024 * 1024;

let dir: string;
const mods: Record<string, WebAssembly.Module> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'isola-wagi-'));
  compileC(repo('test/wagi-guests/guest.c'), join(dir, 'guest.wasm'));
  compileC(repo('examples/wagi-c/hello.c'), join(dir, 'hello-c.wasm'));
  await assembleWat(repo('examples/wagi-wat/hello.wat'), join(dir, 'hello-wat.wasm'));
  await assembleWat(repo('test/wagi-guests/trap.wat'), join(dir, 'trap.wasm'));
  await assembleWat(repo('test/wagi-guests/exit-after.wat'), join(dir, 'exit-after.wasm'));
  for (const name of ['guest', 'hello-c', 'hello-wat', 'trap', 'exit-after']) {
    mods[name] = await WebAssembly.compile(readFileSync(join(dir, `${name}.wasm`)));
  }
  await initWagi();
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface RunResult {
  head: CgiResponseHead | null;
  body: string;
  bodyBytes: number;
  stderr: string;
  exitCode: number | null;
  thrown: unknown;
  verdict: WagiVerdict;
}

/** Runs a module the way the sandbox will: stdout through the CGI parser. `stdinBytes` of zeros in 1 MiB pieces. */
function run(
  module: WebAssembly.Module,
  args: string[],
  o: { env?: Record<string, string>; files?: Record<string, string>; stdinBytes?: number; memoryMaxBytes?: number; keepBody?: boolean; maxBodyBytes?: number } = {},
): RunResult {
  let head: CgiResponseHead | null = null;
  const body: Buffer[] = [];
  let bodyBytes = 0;
  const stderr: Buffer[] = [];
  const parser = new CgiResponseParser({
    onHead: (h) => (head = h),
    onBody: (c) => {
      bodyBytes += c.length;
      if (bodyBytes > (o.maxBodyBytes ?? Infinity)) {
        throw new IsolaError('ERR_RESPONSE_BODY_TOO_LARGE', 'response body too large', { status: 500 });
      }
      if (o.keepBody !== false) body.push(Buffer.from(c));
    },
  });
  const piece = new Uint8Array(MiB);
  let left = o.stdinBytes ?? 0;
  let exitCode: number | null = null;
  let thrown: unknown = null;
  try {
    exitCode = runWagi(module, {
      args,
      env: o.env ?? {},
      files: o.files ?? {},
      readStdin(max) {
        if (left === 0) return null;
        const n = Math.min(max, left, piece.length);
        left -= n;
        return piece.subarray(0, n);
      },
      writeStdout: (c) => parser.push(c),
      writeStderr: (c) => stderr.push(Buffer.from(c)),
      memoryMaxBytes: o.memoryMaxBytes ?? 256 * MiB,
    }).exitCode;
  } catch (err) {
    thrown = err;
  }
  const verdict = wagiVerdict({ thrown, exitCode, parser });
  return { head, body: Buffer.concat(body).toString('utf8'), bodyBytes, stderr: Buffer.concat(stderr).toString('utf8'), exitCode, thrown, verdict };
}

const errorOf = (v: WagiVerdict) => (v.kind === 'ok' ? null : { kind: v.kind, code: v.error.code, status: v.error.status });

describe('runWagi with the examples', () => {
  it('runs the WAT hello', () => {
    const r = run(mods['hello-wat'], ['hello']);
    expect(r.verdict).toEqual({ kind: 'ok', exitCode: 0 });
    expect(r.head).toMatchObject({ status: 200, headers: ['Content-Type', 'text/plain'] });
    expect(r.body).toBe('hello from wat\n');
  });

  it('runs the C hello with CGI argv, env and a request body', () => {
    const head: RequestHead = {
      id: 'r', method: 'POST', scheme: 'http', authority: 'localhost:8787', pathWithQuery: '/c/caf%C3%A9?hello+wor%2Bld',
      rawHeaders: ['Host', 'localhost:8787', 'Content-Length', '11', 'Content-Type', 'text/plain'], httpVersion: '1.1',
      remoteAddr: '127.0.0.1', remotePort: 4000, serverName: 'localhost', serverPort: 8787, routePrefix: '/c', bodyLength: 11,
    };
    const r = run(mods['hello-c'], cgiArgv('hello', head, ['--x']), { env: cgiEnvironment(head, { env: { GREETING: 'hi' } }), stdinBytes: 11 });
    expect(r.verdict.kind).toBe('ok');
    expect(r.head?.headers).toEqual(['Content-Type', 'text/plain; charset=utf-8', 'X-Body-Length', '11']);
    expect(r.body).toContain('argv[0] = hello\nargv[1] = --x\nargv[2] = hello\nargv[3] = wor+ld\n');
    expect(r.body).toContain('\nPATH_INFO=/café\n');
    expect(r.body).toContain('\nX_RAW_PATH_INFO=/caf%C3%A9\n');
    expect(r.body).toContain('\nQUERY_STRING=hello+wor%2Bld\n');
    expect(r.body).toContain('\nGREETING=hi\n');
    expect(r.body).toContain('read 11 body bytes from stdin');
  });
});

describe('runWagi exit codes and traps', () => {
  it('exit(1) after a complete response: the response stands (C and WAT)', () => {
    const c = run(mods.guest, ['g', 'exit1']);
    expect(c.exitCode).toBe(1);
    expect(c.verdict).toEqual({ kind: 'ok', exitCode: 1 });
    expect(c.body).toBe('partial\n');
    const wat = run(mods['exit-after'], ['w']);
    expect(wat.verdict).toEqual({ kind: 'ok', exitCode: 1 });
    expect(wat.head).toMatchObject({ status: 404, statusText: 'Not Found' });
    expect(wat.body).toBe('no such thing\n');
  });

  it('exit(1) before any output is 500 ERR_GUEST_EXIT', () => {
    const r = run(mods.guest, ['g', 'exit1-early']);
    expect(r.exitCode).toBe(1);
    expect(errorOf(r.verdict)).toEqual({ kind: 'error', code: 'ERR_GUEST_EXIT', status: 500 });
  });

  it('a trap before output is 500 ERR_GUEST_TRAP (C and WAT)', () => {
    for (const r of [run(mods.guest, ['g', 'trap']), run(mods.trap, ['t'])]) {
      expect(r.thrown).toBeInstanceOf(IsolaError);
      expect((r.thrown as IsolaError).message).toMatch(/unreachable/);
      expect(r.bodyBytes).toBe(0);
      expect(errorOf(r.verdict)).toEqual({ kind: 'error', code: 'ERR_GUEST_TRAP', status: 500 });
    }
  });

  it('a trap after the head aborts the response', () => {
    const r = run(mods.guest, ['g', 'trap-after']);
    expect(r.body).toBe('before the trap\n');
    expect(errorOf(r.verdict)).toEqual({ kind: 'abort', code: 'ERR_GUEST_TRAP', status: 500 });
  });

  it('stderr goes to writeStderr, not stdout', () => {
    const r = run(mods.guest, ['g', 'stderr']);
    expect(r.stderr).toBe('to the log\n');
    expect(r.body).toBe('ok\n');
  });

  it('a module that is not a WASI command is refused', async () => {
    const empty = await WebAssembly.compile(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    expect(() => runWagi(empty, { args: [], env: {}, files: {}, readStdin: () => null, writeStdout() {}, writeStderr() {}, memoryMaxBytes: MiB }))
      .toThrow(expect.objectContaining({ code: 'ERR_WASM_NOT_WASI_COMMAND' }));
  });
});

describe('runWagi streaming and limits', () => {
  it('streams a 100 MB request body through stdin in bounded memory', () => {
    const before = process.memoryUsage();
    const t = performance.now();
    const r = run(mods.guest, ['g', 'count'], { stdinBytes: 100 * MiB });
    const ms = performance.now() - t;
    expect(r.verdict.kind).toBe('ok');
    expect(r.body).toBe(`${100 * MiB}\n`);
    const after = process.memoryUsage();
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(32 * MiB);
    expect(after.rss - before.rss).toBeLessThan(64 * MiB);
    expect(ms).toBeLessThan(10_000);
  });

  it('streams 100 MB of stdout as the guest writes it, in bounded memory', () => {
    const before = process.memoryUsage();
    const r = run(mods.guest, ['g', 'big', String(100 * MiB)], { keepBody: false });
    expect(r.verdict).toEqual({ kind: 'ok', exitCode: 0 });
    expect(r.bodyBytes).toBe(100 * MiB);
    const after = process.memoryUsage();
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(32 * MiB);
    expect(after.rss - before.rss).toBeLessThan(64 * MiB);
  });

  it('stops the guest when the caller refuses more output (response cap)', () => {
    const r = run(mods.guest, ['g', 'big', String(100 * MiB)], { keepBody: false, maxBodyBytes: MiB });
    expect(r.bodyBytes).toBeLessThanOrEqual(MiB + 65536);
    expect(errorOf(r.verdict)).toEqual({ kind: 'abort', code: 'ERR_RESPONSE_BODY_TOO_LARGE', status: 500 });
  });

  it('stops a guest whose memory grows past memoryMaxBytes', () => {
    const r = run(mods.guest, ['g', 'grow', String(64 * MiB)], { memoryMaxBytes: 16 * MiB });
    expect(errorOf(r.verdict)).toEqual({ kind: 'error', code: 'ERR_MEMORY_LIMIT', status: 503 });
    expect((r.thrown as Error).message).toMatch(/exceeds its cap/);
    expect(run(mods.guest, ['g', 'grow', String(4 * MiB)], { memoryMaxBytes: 16 * MiB }).body).toBe('grown 1024\n');
  });
});

describe('runWagi files', () => {
  it('shows the configured files read-only, and nothing else of the host', () => {
    const host = join(dir, 'files');
    mkdirSync(join(host, 'sub'), { recursive: true });
    writeFileSync(join(host, 'a.txt'), 'alpha\n');
    writeFileSync(join(host, 'sub', 'b.txt'), 'beta\n');
    writeFileSync(join(dir, 'outside.txt'), 'secret\n');
    symlinkSync(join(dir, 'outside.txt'), join(host, 'link.txt'));
    const r = run(mods.guest, ['g', 'files'], { files: { '/data': host } });
    expect(r.verdict.kind).toBe('ok');
    const lines = r.body.trim().split('\n');
    expect(lines).toEqual([
      'open /data/a.txt r: ok alpha',
      'open /data/sub/b.txt r: ok beta',
      'open /data/a.txt w: Read-only file system',
      'open /data/a.txt a: Read-only file system',
      'open /data/a.txt r+: Read-only file system',
      'open /data/new.txt w: Read-only file system',
      'open /data/link.txt r: No such file or directory',
      'open /etc/passwd r: No such file or directory',
      expect.stringMatching(/^open \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd r: (No such file or directory|Capabilities insufficient)/),
      'mkdir /data/x: Read-only file system',
      'unlink /data/a.txt: Read-only file system',
      'rename: Read-only file system',
      'list /: data',
      expect.stringMatching(/^list \/data: (a\.txt sub|sub a\.txt)$/),
      'open /data/a.txt r: ok alpha',
    ]);
    expect(readFileSync(join(host, 'a.txt'), 'utf8')).toBe('alpha\n');
  });

  it('refuses a relative guest path', () => {
    const r = run(mods.guest, ['g', 'files'], { files: { 'data': dir } });
    expect(errorOf(r.verdict)).toEqual({ kind: 'error', code: 'ERR_CONFIG_INVALID', status: 500 });
  });
});
