/**
 * Starts the real `isola dev` (the built CLI, a child process) on an ephemeral loopback port with
 * a generated isola.toml, and gives tests its URL and its log lines. Nothing is mocked: requests go
 * over real TCP to node:http, through the sandboxes, into real Wasm guests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');

export interface FunctionSpec {
  name: string;
  wasm: string;
  routes: string[];
  /** Extra TOML lines for the function's table (e.g. `env = { A = "1" }`). */
  extra?: string;
  limits?: Record<string, string | number>;
  pool?: Record<string, string | number>;
}

export interface Isola {
  url: string;
  port: number;
  proc: ChildProcess;
  /** Everything the process wrote to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines (pino) so far. */
  logs(): Array<Record<string, unknown>>;
  /** Sends SIGTERM and waits for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const toml = (v: string | number): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));

/** Writes an isola.toml for `functions` into a fresh temp dir and returns its path. */
export function writeConfig(functions: FunctionSpec[], server: Record<string, string | number> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'isola-test-'));
  const lines = ['[server]', 'host = "127.0.0.1"', 'port = 0', `data_dir = ${JSON.stringify(join(dir, 'data'))}`];
  for (const [k, v] of Object.entries(server)) lines.push(`${k} = ${toml(v)}`);
  for (const f of functions) {
    lines.push('', '[[functions]]', `name = ${JSON.stringify(f.name)}`, `wasm = ${JSON.stringify(f.wasm)}`, `routes = ${JSON.stringify(f.routes)}`);
    if (f.extra) lines.push(f.extra);
    if (f.limits) {
      lines.push(`[functions.limits]`);
      for (const [k, v] of Object.entries(f.limits)) lines.push(`${k} = ${toml(v)}`);
    }
    if (f.pool) {
      lines.push(`[functions.pool]`);
      for (const [k, v] of Object.entries(f.pool)) lines.push(`${k} = ${toml(v)}`);
    }
  }
  const path = join(dir, 'isola.toml');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

/**
 * Starts `isola dev --config <file> --port 0` and resolves once it prints its listening line.
 * `startMs` bounds the wait (default 60 s; more when isola must build a guest first).
 */
export async function startIsola(configPath: string, args: string[] = [], env: Record<string, string> = {}, startMs = 60_000): Promise<Isola> {
  const proc = spawn(process.execPath, [CLI, 'dev', '--config', configPath, '--port', '0', ...args], {
    env: { ...process.env, ISOLA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`isola did not start in ${startMs / 1000} s\nstdout: ${out}\nstderr: ${err}`)), startMs);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`isola exited with ${code} before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    url,
    port: Number(new URL(url).port),
    proc,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      err.split('\n').filter((l) => l.startsWith('{')).map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      }),
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Waits until `pred` holds (polling every 20 ms) or throws after `ms`. */
export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Reads a streamed response body to its end: the decoded text, and when (Date.now(), ms) each
 * chunk arrived — for checking that a guest's output reaches the client over time.
 */
export async function readArrivals(res: Response): Promise<{ text: string; arrivals: number[] }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const arrivals: number[] = [];
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    arrivals.push(Date.now());
    text += decoder.decode(value, { stream: true });
  }
  return { text, arrivals };
}
