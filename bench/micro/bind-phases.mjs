#!/usr/bin/env node
// Micro-benchmark behind issue 5's cold-start target: what binding a blank sandbox to a
// never-used function costs, by phase, without HTTP. Over `reps` fresh threads each:
//  (1) isola's own Sandbox from the benchmarked build: compile the core modules as a cold start
//      does (main thread), then `bind` (post the modules, the sandbox loads the glue and
//      instantiates, `ready` comes back);
//  (2) a replica of the sandbox side of a bind and a first request, in a plain worker that loaded
//      the same modules first (as a blank sandbox has): the host object, loading the glue (the
//      script with its code cache when the build has one, else import()), jco's instantiation,
//      and the first request's Exchange + handler call.
// (2) runs with each code cache state the build knows: none, primed (partial), full.
//
// Tied to isola's internals (prepareArtifact, compileArtifact, Sandbox, createWasiHttpHost,
// Exchange, glue-loader as of the benchmarked commit): it may need updating when those change.
//
//   node bench/micro/bind-phases.mjs [wat|js] [reps] [--isola head|dist|<rev>]
import { Worker } from 'node:worker_threads';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as setup from '../lib/setup.mjs';

const args = process.argv.slice(2);
const isolaAt = args.indexOf('--isola');
const isola = isolaAt >= 0 ? args.splice(isolaAt, 2)[1] : 'head';
const which = args[0] ?? 'wat';
const reps = Number(args[1] ?? 10);
const a = await setup.prepare({ isola });
const dist = path.dirname(path.dirname(setup.ISOLA_CLI));
const distUrl = pathToFileURL(dist).href;
const imp = (p) => import(`${distUrl}/${p}`);
const { prepareArtifact, compileArtifact } = await imp('artifacts/prepare.js');
const { Sandbox } = await imp('sandbox/sandbox.js');
const hasLoader = existsSync(path.join(dist, 'sandbox/glue-loader.js'));
const loader = hasLoader ? await imp('sandbox/glue-loader.js') : null;
const prime = hasLoader ? await imp('sandbox/glue-prime.js') : null;

const wasm = which === 'js' ? a.jsHello : a.watHello;
const cacheDir = mkdtempSync(path.join(setup.BUILD, 'bind-phases-'));
const artifact = await prepareArtifact(new Uint8Array(readFileSync(wasm)), cacheDir);
const cacheFile = artifact.glueScriptUrl ? loader.cacheFileOf(fileURLToPath(artifact.glueScriptUrl)) : null;
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const row = (label, xs) => console.log(`${label.padEnd(44)} median ${median(xs).toFixed(2).padStart(6)} ms  (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`);
console.log(`isola ${setup.ISOLA_BUILD.commit} (${setup.ISOLA_BUILD.source}), ${which} guest, ${reps} fresh threads per row, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);

const REPLICA = `
import { parentPort, workerData, MessageChannel } from 'node:worker_threads';
const { dist } = workerData;
const imp = (p) => import(dist + '/' + p);
process.env = { ...process.env };
const [{ createWasiHttpHost }, { Exchange }, , { createControl }, loader] = await Promise.all([
  imp('sandbox/wasi-http/index.js'), imp('sandbox/exchange.js'), imp('sandbox/cpu.js'), imp('sandbox/shared.js'),
  imp('sandbox/glue-loader.js').catch(() => null),
]);
// What a blank sandbox of the benchmarked build warms before a bind (builds before the glue
// loader warmed nothing).
if (loader?.warmGlueLoader) {
  createWasiHttpHost({});
  performance.now();
  loader.warmGlueLoader();
  new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])), {});
  new WebAssembly.Global({ value: 'i32', mutable: true }, 0);
}
parentPort.once('message', async ({ glueUrl, scriptUrl, modules, save }) => {
  const t = [performance.now()];
  const mark = () => t.push(performance.now());
  const host = createWasiHttpHost({});
  mark();
  const loaded = scriptUrl && loader ? loader.loadGlue(scriptUrl, glueUrl) : { glue: await import(glueUrl), cache: 'import' };
  mark();
  const exports = await loaded.glue.instantiate((n) => modules[n], host.imports, (m, i) => new WebAssembly.Instance(m, i));
  mark();
  const handler = Object.entries(exports).find(([k]) => k.startsWith('wasi:http/incoming-handler@0.2'))[1];
  const { port1, port2 } = new MessageChannel();
  const head = { id: 'r', method: 'GET', scheme: 'http', authority: '127.0.0.1', pathWithQuery: '/', rawHeaders: ['Host', '127.0.0.1'],
    httpVersion: '1.1', remoteAddr: '127.0.0.1', remotePort: 1, serverName: '127.0.0.1', serverPort: 80, routePrefix: '', route: '/', bodyLength: 0 };
  const ex = new Exchange(head, createControl(), port2, () => {}, 65536);
  const { request, outparam } = host.begin(ex);
  handler.handle(request, outparam);
  host.end();
  ex.close({ kind: 'ok' }, false);
  mark();
  if (save) loaded.saveCache?.();
  port1.close();
  port2.close();
  parentPort.postMessage({ cache: loaded.cache, ms: t.slice(1).map((x, i) => x - t[i]) });
});
parentPort.postMessage('up');
`;
const modules = await compileArtifact(artifact, 128 * 1048576);
/** One replica thread: bind + first request; `save` writes the full cache after it, as a sandbox does. */
async function replica(save) {
  const w = new Worker(REPLICA, { eval: true, workerData: { dist: distUrl } });
  await new Promise((r) => w.once('message', r));
  await new Promise((r) => setTimeout(r, 100));
  w.postMessage({ glueUrl: artifact.glueUrl, scriptUrl: artifact.glueScriptUrl, modules, save });
  const m = await new Promise((r, j) => { w.once('message', r); w.once('error', j); });
  await w.terminate();
  return m;
}
const states = !cacheFile ? ['import'] : ['none', 'primed', 'full'];
for (const state of states) {
  const ph = [[], [], [], []];
  const seen = new Set();
  if (cacheFile) rmSync(cacheFile, { force: true });
  if (state === 'primed') await prime.primeGlueCacheSoon(artifact.glueScriptUrl, artifact.glueUrl);
  if (state === 'full') await replica(true);
  for (let i = 0; i < reps; i++) {
    const m = await replica(false);
    m.ms.forEach((x, k) => ph[k].push(x));
    seen.add(m.cache);
  }
  console.log(`(2) replica, code cache ${state} (loader saw: ${[...seen].join(', ')})`);
  row('    host object', ph[0]);
  row('    load glue', ph[1]);
  row('    instantiate', ph[2]);
  row('    first request (Exchange + handle)', ph[3]);
  row('    total', ph[0].map((_, k) => ph[0][k] + ph[1][k] + ph[2][k] + ph[3][k]));
}

// (1) isola's Sandbox (with the full code cache the last row of (2) left, when the build has one).
const compile = [];
const bind = [];
for (let i = 0; i < reps; i++) {
  const t0 = performance.now();
  const mods = await compileArtifact(artifact, 128 * 1048576);
  compile.push(performance.now() - t0);
  const sb = await Sandbox.spawn(256);
  await new Promise((r) => setTimeout(r, 200)); // let the new thread settle, as a blank sandbox has
  const t1 = performance.now();
  await sb.bind({
    abi: artifact.abi, glueUrl: artifact.glueUrl, glueScriptUrl: artifact.glueScriptUrl ?? null, name: 'x', env: {}, argv: [], files: {}, modules: mods,
    maxResponseBodyBytes: 1 << 20, memoryBytes: 128 * 1048576, fuelLimit: null, maxLogBytes: 65536,
  });
  bind.push(performance.now() - t1);
  await sb.terminate();
}
row('(1) main: compileArtifact (files + async)', compile);
row('(1) Sandbox#bind: blank → ready', bind);
rmSync(cacheDir, { recursive: true, force: true });
