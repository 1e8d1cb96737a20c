// Scenario: density (issue 5). Many functions deployed in one process with a bounded number of
// sandboxes: N copies of the WAT hello, each its own function on its own route, min_warm = 0,
// under [sandboxes] max = M. Reports start-up time and RSS with nothing warm, then after one
// request to each of K distinct functions (at most M sandboxes stay live; the rest are evicted,
// least recently used first), the RSS per warm sandbox, and the first-request latency of a
// function whose compiled code was dropped with its last sandbox (recompiled on demand).
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { isolaConfig, startIsola } from '../lib/peers.mjs';
import { treeRss } from '../lib/proc.mjs';
import { pct } from '../lib/stats.mjs';

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** p50 and p99 of latencies in ms. */
function get(url) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
      })
      .on('error', reject);
  });
}

/** Runs the density scenario; returns the figures printed in BENCHMARKS.md. */
export async function runDensity(artifacts, { quick, serverCpus, log }) {
  const deployed = quick ? 300 : 1000;
  const maxSandboxes = 16;
  const touched = quick ? 60 : 200;
  const fns = Array.from({ length: deployed }, (_, i) => ({
    name: `f${i}`, wasm: artifacts.watHello, routes: [`/f${i}`], pool: { min_warm: 0 },
  }));
  const cfg = isolaConfig('density.toml', fns, { sandboxes: { max: maxSandboxes, blank: 1 } });
  const t0 = performance.now();
  const { proc, base } = await startIsola(cfg, { cpus: serverCpus });
  const startMs = performance.now() - t0;
  try {
    await sleep(500);
    const idleRss = treeRss(proc.pid);
    const first = [];
    let bad = 0;
    for (let i = 0; i < touched; i++) {
      const r = await get(`${base}/f${i}`);
      if (r.status !== 200) bad++;
      first.push(r.ms);
    }
    await sleep(300);
    const busyRss = treeRss(proc.pid);
    // Touch the earliest functions again: their sandboxes (and compiled code) were evicted.
    const again = [];
    for (let i = 0; i < 20; i++) again.push((await get(`${base}/f${i}`)).ms);
    const perSandbox = (busyRss - idleRss) / Math.min(maxSandboxes, touched);
    log(`  ${deployed} functions deployed: start ${Math.round(startMs)} ms, idle RSS ${(idleRss / 2 ** 20).toFixed(0)} MiB; after ${touched} distinct functions (max ${maxSandboxes} sandboxes) RSS ${(busyRss / 2 ** 20).toFixed(0)} MiB`);
    return {
      deployed, maxSandboxes, touched, startMs, idleRss, busyRss, rssPerSandboxBytes: perSandbox, bad,
      firstRequestMs: pct(first), afterEvictionMs: pct(again),
    };
  } finally {
    await proc.stop();
  }
}
