/**
 * Starts the real `isola serve` (the built CLI, a child process) on ephemeral loopback ports with a
 * data directory of the test's choosing, and talks to it: the admin API over real HTTP (`Api`), the
 * edge with an explicit Host header (`edgeGet`), the CLI as a child process (`cli`). Nothing is
 * mocked: the store is the real SQLite file under the data directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleCore } from '../guests/build.js';
import { CLI } from './server.js';

/** The operator token every test server is started with. */
export const OPERATOR = 'test-operator-token-0123456789abcdef';

export interface Serve {
  edge: string;
  admin: string;
  edgePort: number;
  dataDir: string;
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A fresh data directory. */
export function tempDataDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'isola-serve-')), 'data');
}

/** Starts `isola serve --port 0 --admin-port 0 --data-dir <dataDir>`; resolves once it prints both listening lines. */
export async function startServe(dataDir: string, opts: { args?: string[]; env?: Record<string, string> } = {}): Promise<Serve> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--admin-port', '0', '--data-dir', dataDir, ...(opts.args ?? [])], {
    env: { ...process.env, ISOLA_LOG_LEVEL: 'info', ISOLA_OPERATOR_TOKEN: OPERATOR, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: tmpdir(),
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const [edge, admin] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`isola serve did not start in 60 s\nstdout: ${out}\nstderr: ${err}`)), 60_000);
    const check = (): void => {
      const e = /listening on (http:\/\/\S+)/.exec(out);
      const a = /admin on (http:\/\/\S+)/.exec(out);
      if (e && a) {
        clearTimeout(timer);
        resolve([e[1]!, a[1]!]);
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`isola serve exited with ${code} before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return {
    edge, admin, edgePort: Number(new URL(edge).port), dataDir, proc,
    stdout: () => out,
    stderr: () => err,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** The admin API with one token (or none). */
export class Api {
  constructor(readonly base: string, readonly token: string | null) {}

  /** Sends a request; a Uint8Array body goes as application/wasm, anything else as JSON. */
  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    const h: Record<string, string> = { ...headers };
    if (this.token !== null) h.authorization = `Bearer ${this.token}`;
    let payload: string | Uint8Array | undefined;
    if (body instanceof Uint8Array) {
      h['content-type'] ??= 'application/wasm';
      payload = body;
    } else if (body !== undefined) {
      h['content-type'] ??= 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(this.base + path, { method, headers: h, body: payload as BodyInit | undefined });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = { raw: text };
    }
    return { status: res.status, headers: res.headers, json };
  }

  /** Creates a tenant (operator) and returns its token. */
  async createTenant(name: string, limits?: Record<string, unknown>): Promise<string> {
    const r = await this.req('POST', '/v1/tenants', { name, ...(limits ? { limits } : {}) });
    if (r.status !== 201) throw new Error(`create tenant ${name}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json.token as string;
  }

  /** Uploads a version; returns the response. */
  upload(tenant: string, fn: string, bytes: Uint8Array, query = ''): Promise<ApiResponse> {
    return this.req('POST', `/v1/tenants/${tenant}/functions/${fn}/versions${query}`, bytes);
  }

  /** Deploys (body as the API takes it); returns the response. */
  deploy(tenant: string, fn: string, body: Record<string, unknown> = {}): Promise<ApiResponse> {
    return this.req('POST', `/v1/tenants/${tenant}/functions/${fn}/deployments`, body);
  }
}

/** GET `path` on the edge with a Host header; resolves with status and body text. */
export function edgeGet(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Runs the CLI synchronously with `args` and extra environment. */
export function cli(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ISOLA_LOG_LEVEL: 'silent', ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A WAGI guest (a WASI preview 1 command, built here from WAT) whose response is 200 text/plain
 * with `body`. `memoryPages` sets its memory minimum (64 KiB pages).
 */
export function wagiText(body: string, memoryPages = 1): Promise<Uint8Array> {
  const response = `Content-Type: text/plain\n\n${body}`;
  const len = Buffer.byteLength(response);
  const escaped = [...Buffer.from(response)].map((b) => '\\' + b.toString(16).padStart(2, '0')).join('');
  return assembleCore(`wagi-text`, `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") ${memoryPages})
  (data (i32.const 16) "${escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const ${len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);
}
