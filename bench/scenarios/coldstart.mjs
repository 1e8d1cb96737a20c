// Scenario 2: cold start.
//  a) process start → `listening` → first response, for a small and a JS component, with the
//     artifact cache warm (transpiled glue reused) and with an empty data_dir (JS: jco transpile).
//  b) first request to a never-used function with min_warm = 0, without blank sandboxes
//     ([sandboxes] blank = 0: the request pays for a worker thread start plus instantiation) and
//     with one ready (blank = copies + 1: instantiation only). Several copies of the function are
//     deployed in one process; each gets exactly one first request, sent on an already-open
//     keep-alive connection, 100 ms apart. The RSS growth over those first requests (blank = 0)
//     gives the memory of one more warm sandbox. The copies share one artifact, which served in
//     the priming run, so its glue's code cache exists (as after a restart, a redeploy of the same
//     bytes, or a function's second sandbox). The WAT rows are repeated with a component that
//     never ran: each copy is its own variant of the hello (distinct bytes), in an empty data_dir,
//     so no code cache exists before its first request.
import http from 'node:http';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isolaConfig, startIsola } from '../lib/peers.mjs';
import { BUILD } from '../lib/setup.mjs';
import { loadAvg, treeRss } from '../lib/proc.mjs';
import { summary } from '../lib/stats.mjs';

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One GET on the shared keep-alive connection: { status, us }. */
function timedGet(url) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, us: Number(process.hrtime.bigint() - t0) / 1000 }));
      })
      .on('error', reject);
  });
}

async function startToFirstResponse(wasm, { reps, serverCpus, freshData, log, label }) {
  const listen = [];
  const first = [];
  for (let i = 0; i < reps; i++) {
    const dataDir = freshData ? path.join(BUILD, `cold-data-${i}`) : path.join(BUILD, 'sut-data');
    if (freshData) rmSync(dataDir, { recursive: true, force: true });
    const cfg = isolaConfig(`cold-start-${i}.toml`, [{ name: 'hello', wasm, routes: ['/hello'] }], { dataDir });
    const t0 = performance.now();
    const s = await startIsola(cfg, { cpus: serverCpus, stderrFile: path.join(BUILD, 'logs', `${path.basename(cfg, '.toml')}.log`) });
    const t1 = performance.now();
    let r;
    let t2;
    try {
      r = await fetch(s.base + '/hello');
      await r.arrayBuffer();
      t2 = performance.now();
    } finally {
      await s.proc.stop();
    }
    if (freshData) rmSync(dataDir, { recursive: true, force: true });
    if (r.status !== 200) throw new Error(`${label}: first response ${r.status}`);
    listen.push((t1 - t0) * 1000);
    first.push((t2 - t0) * 1000);
    log(`  ${label} run ${i + 1}: listening after ${(t1 - t0).toFixed(0)} ms, first response after ${(t2 - t0).toFixed(0)} ms`);
  }
  return { listen: summary(listen), first: summary(first) };
}

/** p50 and p99 (nearest rank) of latencies in µs. */
function pct(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { p50: at(0.5), p99: at(0.99), n: s.length };
}

/**
 * First requests to `copies` functions with min_warm = 0; `wasms` gives each copy its component
 * (cycled); the always-warm reference function serves `warmWasm`. `dataDir` defaults to the
 * shared one (artifacts and code caches from earlier runs); given, it starts and ends empty.
 */
async function firstRequests(wasms, { copies, serverCpus, log, label, blank, dataDir, warmWasm = wasms[0] }) {
  const fns = [{ name: 'warm', wasm: warmWasm, routes: ['/warm'], pool: { min_warm: 1 } }];
  for (let i = 0; i < copies; i++) fns.push({ name: `f${i}`, wasm: wasms[i % wasms.length], routes: [`/f${i}`], pool: { min_warm: 0 } });
  // blank = 0: every first request starts a thread; blank = copies + 1: a blank sandbox is always ready.
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  const cfg = isolaConfig(`cold-first-${label}.toml`, fns, { sandboxes: { blank }, ...(dataDir ? { dataDir } : {}) });
  const s = await startIsola(cfg, { cpus: serverCpus, stderrFile: path.join(BUILD, 'logs', `${path.basename(cfg, '.toml')}.log`) });
  const cold = [];
  const warm = [];
  let rssBefore;
  let rssAfter;
  try {
    for (let i = 0; i < 20; i++) warm.push((await timedGet(s.base + '/warm')).us); // opens the connection, warms the path
    // Let start-up work settle (blank sandboxes are started in the background after `listening`).
    await sleep(blank > 0 ? 2000 : 300);
    rssBefore = treeRss(s.proc.pid);
    for (let i = 0; i < copies; i++) {
      await sleep(100);
      const r = await timedGet(`${s.base}/f${i}`);
      if (r.status !== 200) throw new Error(`${label} /f${i}: ${r.status}`);
      cold.push(r.us);
    }
    await sleep(300);
    rssAfter = treeRss(s.proc.pid);
  } finally {
    agent.destroy();
    await s.proc.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
  const p = pct(cold);
  log(`  ${label}: first requests ${cold.map((u) => (u / 1000).toFixed(1)).join(', ')} ms (p50 ${(p.p50 / 1000).toFixed(1)}, p99 ${(p.p99 / 1000).toFixed(1)})`);
  // Each first request left one more warm sandbox behind: the RSS growth per sandbox.
  return { cold: summary(cold), coldPct: p, warm: summary(warm.slice(5)), rssPerSandboxBytes: (rssAfter - rssBefore) / copies, sandboxes: copies };
}

export async function runColdStart(a, { quick, serverCpus, log }) {
  const load1 = loadAvg()[0];
  const reps = quick ? 3 : 5;
  const out = { load1 };
  // Prime the artifact cache (transpiled glue) so the "cached" rows really are.
  for (const wasm of [a.watHello, a.jsHello]) {
    const s = await startIsola(isolaConfig('cold-prime.toml', [{ name: 'hello', wasm, routes: ['/hello'] }]), { cpus: serverCpus });
    await s.proc.stop();
  }
  out.startWat = await startToFirstResponse(a.watHello, { reps, serverCpus, log, label: 'start→first response, WAT hello' });
  out.startJs = await startToFirstResponse(a.jsHello, { reps, serverCpus, log, label: 'start→first response, JS hello' });
  out.startJsFresh = await startToFirstResponse(a.jsHello, { reps: quick ? 1 : 3, serverCpus, freshData: true, log, label: 'start→first response, JS hello, empty artifact cache' });
  const wc = quick ? 10 : 20;
  const jc = quick ? 3 : 6;
  out.firstWat = await firstRequests([a.watHello], { copies: wc, serverCpus, log, label: 'wat', blank: 0 });
  out.firstJs = await firstRequests([a.jsHello], { copies: jc, serverCpus, log, label: 'js', blank: 0 });
  out.firstWatBlank = await firstRequests([a.watHello], { copies: wc, serverCpus, log, label: 'wat-blank', blank: wc + 1 });
  out.firstJsBlank = await firstRequests([a.jsHello], { copies: jc, serverCpus, log, label: 'js-blank', blank: jc + 1 });
  // A component that never ran: distinct bytes per copy, empty data_dir (transpiled at start).
  const variants = await Promise.all(Array.from({ length: wc }, (_, i) => a.guests.buildHelloVariant(i)));
  const fresh = path.join(BUILD, 'cold-data-fresh');
  out.firstWatNew = await firstRequests(variants, { copies: wc, serverCpus, log, label: 'wat-new', blank: 0, dataDir: fresh, warmWasm: a.watHello });
  out.firstWatNewBlank = await firstRequests(variants, { copies: wc, serverCpus, log, label: 'wat-new-blank', blank: wc + 1, dataDir: fresh, warmWasm: a.watHello });
  return out;
}
