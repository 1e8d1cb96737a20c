// The servers the benchmarks compare: how to start each one on a loopback port and find its URL.
// Each start() returns { proc, url } where proc.pid is the process whose tree is measured.
import { createServer } from 'node:net';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BUILD, at } from './setup.mjs';
import * as setup from './setup.mjs';
import { startProcess, waitForHttp } from './proc.mjs';

/** A free loopback port (bound and released; fine for a benchmark on a quiet loopback). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const toml = (s) => JSON.stringify(s);

/**
 * Writes an isola.toml for `functions` ([{ name, wasm, routes, pool?, limits?, env? }]) and
 * returns its path. data_dir is shared by the benchmark's configs so transpiled artifacts are reused.
 */
export function isolaConfig(file, functions, { dataDir = path.join(BUILD, 'sut-data'), sandboxes } = {}) {
  const lines = ['[server]', 'host = "127.0.0.1"', 'port = 0', `data_dir = ${toml(dataDir)}`, ''];
  if (sandboxes) {
    // The process-wide pool ([sandboxes], issue 5), e.g. { blank: 0 }.
    lines.push('[sandboxes]');
    for (const [k, v] of Object.entries(sandboxes)) lines.push(`${k} = ${toml(v)}`);
    lines.push('');
  }
  for (const f of functions) {
    lines.push('[[functions]]', `name = ${toml(f.name)}`, `wasm = ${toml(f.wasm)}`, `routes = ${toml(f.routes)}`);
    if (f.tenant) lines.push(`tenant = ${toml(f.tenant)}`);
    if (f.env) lines.push(`env = { ${Object.entries(f.env).map(([k, v]) => `${k} = ${toml(v)}`).join(', ')} }`);
    for (const table of ['limits', 'pool']) {
      if (!f[table]) continue;
      lines.push(`[functions.${table}]`);
      for (const [k, v] of Object.entries(f[table])) lines.push(`${k} = ${toml(v)}`);
    }
    lines.push('');
  }
  const p = path.join(BUILD, file);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, lines.join('\n'));
  return p;
}

/** Starts `isola dev` on a config; resolves once `listening on` is printed. */
export async function startIsola(configFile, { cpus, logLevel = 'warn', nodeArgs = [], stderrFile, env } = {}) {
  const stderr = stderrFile ? openSync(stderrFile, 'w') : 'ignore';
  // Launched through sut-launch.mjs: the command line shows neither the CLI path nor `dev`.
  const proc = startProcess(process.execPath, [...nodeArgs, at('bench/lib/sut-launch.mjs')], {
    cpus,
    stderr,
    env: {
      ISOLA_LOG_LEVEL: logLevel,
      BENCH_SUT_CLI: setup.ISOLA_CLI,
      BENCH_SUT_ARGS: JSON.stringify(['dev', '--config', configFile, '--port', '0']),
      ...env,
    },
  });
  proc.label = path.basename(configFile);
  const m = await proc.waitForStdout(/listening on (http:\/\/\S+)/, 120_000);
  return { proc, base: m[1] };
}

export async function startNodeHttp(mode, { cpus } = {}) {
  const proc = startProcess(process.execPath, [at('bench/servers/node-http.mjs'), mode], { cpus });
  const m = await proc.waitForStdout(/listening on (http:\/\/\S+)/);
  return { proc, base: m[1] };
}

/** workerd serving one ES module worker (plus hello.wasm when `wasm`). */
export async function startWorkerd(bin, dir, { wasm, cpus }) {
  const port = await freePort();
  const main = wasm ? 'hello-wasm.js' : 'hello.js';
  const config = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .helloWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);

const helloWorker :Workerd.Worker = (
  modules = [
    (name = "${main}", esModule = embed "${main}"),${wasm ? '\n    (name = "hello.wasm", wasm = embed "hello.wasm"),' : ''}
  ],
  compatibilityDate = "2024-09-23",
);
`;
  const file = path.join(dir, `${wasm ? 'hello-wasm' : 'hello'}.capnp`);
  writeFileSync(file, config);
  const proc = startProcess(bin, ['serve', file], { cpus, stderr: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(base + '/', 30_000);
  return { proc, base };
}

/** `jco serve` with a component (re-transpiles at every start, ~3 s; spawns a child process). */
export async function startJcoServe(jcoBin, wasmFile, { cpus }) {
  const port = await freePort();
  const proc = startProcess(process.execPath, [jcoBin, 'serve', '--host', '127.0.0.1', '--port', String(port), wasmFile], { cpus, stderr: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(base + '/', 120_000);
  return { proc, base };
}
