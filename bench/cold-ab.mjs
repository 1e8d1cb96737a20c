#!/usr/bin/env node
// A/B of issue 5's cold-start target: first requests to never-used functions (min_warm = 0) with a
// blank sandbox ready, for two or more isola builds in interleaved rounds (the order flips every
// round), so that both see the same machine load. Per build and round: one server with 10 copies
// of the WAT hello sharing one artifact (its glue code cache exists after the first round), and
// one with 10 distinct variants in an empty data_dir (components that never ran). Prints p50, p90
// and p99 (nearest rank) of the client's time per first request on a kept-alive connection.
//
//   node bench/cold-ab.mjs <rev> <rev> [...]    env: ROUNDS (default 4), NOPIN=1 (do not pin the servers to CPU 0)
import http from 'node:http';
import path from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as setup from './lib/setup.mjs';
import { isolaConfig, startIsola } from './lib/peers.mjs';

const builds = {};
let a;
for (const rev of process.argv.slice(2)) {
  a = await setup.prepare({ isola: rev }); // builds bench/.build/sut-<commit>/ (git archive + tsc) if needed
  builds[rev] = setup.ISOLA_CLI;
}
if (Object.keys(builds).length < 2) throw new Error('usage: node bench/cold-ab.mjs <rev> <rev> [...]');
const rounds = Number(process.env.ROUNDS ?? 4);
const copies = 10;
const cpus = process.env.NOPIN ? undefined : '0';
const variants = await Promise.all(Array.from({ length: copies }, (_, i) => a.guests.buildHelloVariant(100 + i)));
async function run(cli, kind) {
  const fresh = path.join(setup.BUILD, 'ab-fresh');
  const wasms = kind === 'new' ? variants : [a.watHello];
  const fns = [{ name: 'warm', wasm: a.watHello, routes: ['/warm'], pool: { min_warm: 1 } }];
  for (let i = 0; i < copies; i++) fns.push({ name: `f${i}`, wasm: wasms[i % wasms.length], routes: [`/f${i}`], pool: { min_warm: 0 } });
  if (kind === 'new') rmSync(fresh, { recursive: true, force: true });
  const cfg = isolaConfig('ab-cold.toml', fns, { sandboxes: { blank: copies + 1 }, ...(kind === 'new' ? { dataDir: fresh } : {}) });
  const s = await startIsola(cfg, { cpus, env: { BENCH_SUT_CLI: cli } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (url) => new Promise((res, rej) => { const t0 = process.hrtime.bigint(); http.get(url, { agent }, (r) => { r.resume(); r.on('end', () => res({ status: r.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 })); }).on('error', rej); });
  const out = [];
  try {
    for (let i = 0; i < 20; i++) await get(s.base + '/warm');
    await sleep(2000);
    for (let i = 0; i < copies; i++) { await sleep(100); const r = await get(`${s.base}/f${i}`); if (r.status !== 200) throw new Error(`status ${r.status}`); out.push(r.ms); }
  } finally { agent.destroy(); await s.proc.stop(); }
  return out;
}
const res = {};
for (let r = 0; r < rounds; r++) {
  const order = Object.keys(builds); if (r % 2) order.reverse();
  for (const kind of ['cached', 'new']) for (const rev of order) {
    const k = `${rev} ${kind}`;
    (res[k] ??= []).push(...await run(builds[rev], kind));
  }
  process.stderr.write(`round ${r + 1} done, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}\n`);
}
const pct = (xs, q) => { const s = [...xs].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]; };
for (const [k, xs] of Object.entries(res)) console.log(`${k.padEnd(22)} n=${xs.length}  p50 ${pct(xs, 0.5).toFixed(1)} ms  p90 ${pct(xs, 0.9).toFixed(1)}  p99 ${pct(xs, 0.99).toFixed(1)}  min ${Math.min(...xs).toFixed(1)}`);
