#!/usr/bin/env node
// Micro-benchmark behind a profile finding: the sandbox-side cost of one wasi:http request with
// no threads and no HTTP — isola's own host (from the benchmarked build) and the jco glue of a
// guest, called in a loop on one thread. Counts the host calls the guest makes per request and the
// CPU per request, so the glue's per-call overhead can be read off.
//
// Tied to isola's internals (prepareArtifact, compileArtifact, Exchange, createWasiHttpHost as of
// the benchmarked commit): it may need updating when those change.
//
//   node bench/micro/guest-call.mjs [wat|js] [requests] [--isola head|dist|<rev>] [--cpu-prof <file>]
//   --cpu-prof writes a V8 CPU profile (50 µs sampling) of the measured loop only, and prints self
//   time per request by category (guest Wasm, jco glue, isola host, GC, other).
//   (run `npm run bench` once first; default --isola head: the committed HEAD built apart; `dist`
//   measures the working tree's dist/ — run `npm run build` first)
import { MessageChannel } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as setup from '../lib/setup.mjs';

const argv = process.argv.slice(2);
const at = argv.indexOf('--isola');
const isola = at >= 0 ? argv.splice(at, 2)[1] : 'head';
const pa = argv.indexOf('--cpu-prof');
const profFile = pa >= 0 ? argv.splice(pa, 2)[1] : null;
const which = argv[0] ?? 'wat';
const n = Number(argv[1] ?? 20000);
const a = await setup.prepare({ isola });
const dist = path.dirname(path.dirname(setup.ISOLA_CLI));
const imp = (p) => import(pathToFileURL(path.join(dist, p)).href);
const { prepareArtifact, compileArtifact } = await imp('artifacts/prepare.js');
const { Exchange } = await imp('sandbox/exchange.js');
const { createControl } = await imp('sandbox/shared.js');
const { createWasiHttpHost } = await imp('sandbox/wasi-http/index.js');

const wasm = which === 'js' ? a.jsHello : a.watHello;
const artifact = await prepareArtifact(new Uint8Array(readFileSync(wasm)), path.join(setup.BUILD, 'sut-data', 'artifacts'));
const modules = await compileArtifact(artifact, 128 * 1048576);
const host = createWasiHttpHost({});

// Count every host call the glue makes (functions and resource methods of the imports object).
let calls = 0;
const counted = {};
for (const [iface, members] of Object.entries(host.imports)) {
  counted[iface] = {};
  for (const [name, v] of Object.entries(members)) {
    if (typeof v !== 'function') {
      counted[iface][name] = v;
      continue;
    }
    if (/^[A-Z]/.test(name)) {
      // A resource class: count its prototype and static methods.
      for (const target of [v.prototype, v]) {
        for (const key of Object.getOwnPropertyNames(target)) {
          if (key === 'constructor' || key === 'prototype' || key === 'length' || key === 'name') continue;
          const d = Object.getOwnPropertyDescriptor(target, key);
          if (typeof d.value !== 'function') continue;
          const f = d.value;
          Object.defineProperty(target, key, { ...d, value: function (...args) { calls++; return f.apply(this, args); } });
        }
      }
      counted[iface][name] = v;
    } else {
      counted[iface][name] = (...args) => {
        calls++;
        return v(...args);
      };
    }
  }
}

const glue = await import(artifact.glueUrl);
const exports = await glue.instantiate((name) => modules[name], counted);
const handler = Object.entries(exports).find(([k]) => k.startsWith('wasi:http/incoming-handler@0.2'))?.[1] ?? exports.incomingHandler;
const { port1, port2 } = new MessageChannel();
const control = createControl();
let posted = 0;
const post = () => posted++;
const head = {
  id: 'r', method: 'GET', scheme: 'http', authority: '127.0.0.1', pathWithQuery: '/hello',
  rawHeaders: ['Host', '127.0.0.1', 'User-Agent', 'wrk'], httpVersion: '1.1', remoteAddr: '127.0.0.1', remotePort: 1,
  serverName: '127.0.0.1', serverPort: 80, routePrefix: '/hello', bodyLength: 0,
};
function one() {
  const ex = new Exchange(head, control, port2, post, 65536);
  const { request, outparam } = host.begin(ex);
  handler.handle(request, outparam);
  host.end();
  ex.close({ kind: 'ok' });
}
for (let i = 0; i < 2000; i++) one(); // warm-up (JIT)
calls = 0;
posted = 0;
let session = null;
if (profFile) {
  const { Session } = await import('node:inspector/promises');
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 50 });
  await session.post('Profiler.start');
}
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < n; i++) one();
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
let categories;
if (session) {
  const { profile } = await session.post('Profiler.stop');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(profFile, JSON.stringify(profile));
  const { loadProfile, byCategory } = await import('../lib/cpuprofile.mjs');
  const rules = [
    ['jco glue', (fn, url) => /\/artifacts\/[0-9a-f]+\/.*\.m?js$/.test(url)],
    ['guest Wasm', (fn, url) => url.startsWith('wasm://')],
    ['isola host', (fn, url) => url.includes('/dist/sandbox/')],
  ];
  const { rows } = byCategory(loadProfile({ parsed: profile }), rules);
  categories = Object.fromEntries(rows.filter(([c]) => c !== 'idle').slice(0, 8).map(([c, us]) => [c, +(us / n).toFixed(2)]));
}
console.log(JSON.stringify({
  guest: which, requests: n, usPerRequest: +((ms * 1000) / n).toFixed(2), cpuUsPerRequest: +((cpu.user + cpu.system) / n).toFixed(2),
  hostCallsPerRequest: +(calls / n).toFixed(1), postsPerRequest: +(posted / n).toFixed(2),
  ...(categories ? { selfUsPerRequestByCategory: categories } : {}),
}));
port1.close();
port2.close();
