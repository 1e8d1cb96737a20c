// Scenario 1: hello throughput and latency. Every peer is started once, warmed up, then loaded in
// interleaved rounds (the order rotates each round) so drift on a shared machine hits all alike.
// Ratios are taken within a round (peer req/s ÷ node:http req/s of the same round), then the
// median over rounds is reported with its min–max.
import { loadAvg, rssSampler, treeCpuMicros, treeRss } from '../lib/proc.mjs';
import { runLoad } from '../lib/load.mjs';
import { isolaConfig, startIsola, startJcoServe, startNodeHttp, startWorkerd } from '../lib/peers.mjs';
import { median, summary } from '../lib/stats.mjs';
import path from 'node:path';
import { BUILD } from '../lib/setup.mjs';

/** The peers of the hello scenario, in table order. */
export function helloPeers(a) {
  const isola = (id, label, wasm, logLevel = 'warn', extra = {}) => ({
    id,
    label,
    kind: 'isola',
    path: '/hello',
    start: (cpus) => startIsola(isolaConfig(`hello-${id.replace('isola', 'sut')}.toml`, [{ name: 'hello', wasm, routes: ['/hello'], pool: extra.pool }]), { cpus, logLevel, stderrFile: path.join(BUILD, 'logs', `${id.replace('isola', 'sut')}.log`) }),
    ...extra,
  });
  const peers = [
    { id: 'node-http', label: 'node:http hello (ceiling)', kind: 'node', path: '/', start: (cpus) => startNodeHttp('hello', { cpus }) },
    isola('isola-wat', 'isola + WAT hello component (7.5 KB)', a.watHello),
    isola('isola-wat-info', 'isola + WAT hello, log level info', a.watHello, 'info'),
    isola('isola-wat-1', 'isola + WAT hello, max_instances = 1', a.watHello, 'warn', { pool: { max_instances: 1 } }),
    isola('isola-js', 'isola + componentize-js hello (13 MB)', a.jsHello),
  ];
  if (a.wagiWat) peers.push(isola('isola-wagi', 'isola + WAGI module (WAT)', a.wagiWat));
  if (a.jcoBin) peers.push({ id: 'jco-serve', label: 'jco serve + componentize-js hello', kind: 'jco', path: '/', start: (cpus) => startJcoServe(a.jcoBin, a.jsHello, { cpus }) });
  if (a.workerdBin) {
    peers.push({ id: 'workerd-js', label: 'workerd, JS hello', kind: 'workerd', path: '/', start: (cpus) => startWorkerd(a.workerdBin, a.workerdDir, { wasm: false, cpus }) });
    peers.push({ id: 'workerd-wasm', label: 'workerd, JS + Wasm hello', kind: 'workerd', path: '/', start: (cpus) => startWorkerd(a.workerdBin, a.workerdDir, { wasm: true, cpus }) });
  }
  return peers;
}

/**
 * Runs the scenario. opts: { gen, seconds, warmupSeconds, rounds, connections, serverCpus,
 * loadCpus, log }. Returns { peers: [{ id, label, status, runs, rps, p50, p99, cpuPerReq, rss,
 * vsNode, vsWorkerd }] }.
 */
export async function runHello(artifacts, opts) {
  const { gen, seconds, warmupSeconds, rounds, connections, serverCpus, loadCpus, log } = opts;
  const peers = helloPeers(artifacts);
  const live = [];
  try {
    for (const p of peers) {
      log(`  starting ${p.label}`);
      try {
        const s = await p.start(serverCpus);
        p.server = s;
        p.url = s.base + p.path;
        const r = await fetch(p.url);
        const text = await r.text();
        live.push(s);
        if (r.status === 501) {
          p.status = 'not yet';
          p.note = `answers 501: ${text.slice(0, 80)}`;
          await s.proc.stop();
        } else if (r.status !== 200) {
          p.status = 'error';
          p.note = `probe answered ${r.status}: ${text.slice(0, 120)}`;
          await s.proc.stop();
        } else {
          p.status = 'ok';
          p.runs = [];
          p.rssIdle = treeRss(s.proc.pid);
        }
      } catch (e) {
        p.status = 'error';
        p.note = e.message.split('\n')[0];
      }
    }
    const active = peers.filter((p) => p.status === 'ok');
    for (const p of active) {
      log(`  warm-up ${p.id} (${warmupSeconds} s)`);
      await runLoad(gen, p.url, { seconds: warmupSeconds, connections, cpus: loadCpus });
    }
    for (let round = 0; round < rounds; round++) {
      const order = active.map((_, i) => active[(i + round) % active.length]);
      for (const p of order) {
        if (p.status !== 'ok') continue;
        const load = loadAvg();
        const pid = p.server.proc.pid;
        // CPU the other peers (idle now, all on the server CPU) use during this run: a neighbour's
        // late garbage collection or timers would be charged to this peer's window.
        const others = active.filter((o) => o !== p && o.status === 'ok');
        const othersCpu = () => others.reduce((n, o) => n + treeCpuMicros(o.server.proc.pid), 0);
        const othersCpu0 = othersCpu();
        const cpu0 = treeCpuMicros(pid);
        const sampler = rssSampler(pid, 250);
        let r;
        try {
          r = await runLoad(gen, p.url, { seconds, connections, cpus: loadCpus });
        } catch (e) {
          sampler.stop();
          p.status = 'error';
          const c = p.server.proc.child;
          const exit = c.exitCode !== null || c.signalCode !== null ? ` (server exited: ${c.exitCode ?? c.signalCode})` : '';
          p.note = `round ${round + 1}: ${e.message.split('\n')[1] || e.message.split('\n')[0]}${exit}`;
          log(`  ${p.id} FAILED: ${p.note}`);
          continue;
        }
        const cpu1 = treeCpuMicros(pid);
        const othersCpuMs = (othersCpu() - othersCpu0) / 1000;
        const rssPeak = sampler.stop();
        if (p.server.proc.child.exitCode !== null || p.server.proc.child.signalCode !== null) {
          p.status = 'error';
          p.note = `round ${round + 1}: the server exited during the run (${p.server.proc.child.exitCode ?? p.server.proc.child.signalCode})`;
          log(`  ${p.id} FAILED: ${p.note}`);
          continue;
        }
        const run = { round, load1: load[0], ...r, cpuPerReqUs: (cpu1 - cpu0) / r.requests, rssBytes: treeRss(pid), rssPeakBytes: rssPeak, othersCpuMs };
        p.runs.push(run);
        log(`  round ${round + 1}/${rounds} ${p.id.padEnd(15)} ${Math.round(r.rps).toString().padStart(6)} req/s  p99 ${(r.p99_us / 1000).toFixed(2)} ms  cpu ${run.cpuPerReqUs.toFixed(0)} µs/req  others ${othersCpuMs.toFixed(0)} ms  load ${load[0]}${r.non2xx || r.errors ? `  non-2xx ${r.non2xx} errors ${r.errors}` : ''}`);
      }
    }
  } finally {
    for (const s of live) await s.proc.stop();
  }
  const byId = Object.fromEntries(peers.map((p) => [p.id, p]));
  const ratioTo = (p, refId) => {
    const ref = byId[refId];
    if (!ref || ref.status !== 'ok' || p.status !== 'ok') return null;
    return summary(p.runs.map((r) => r.rps / ref.runs.find((x) => x.round === r.round).rps));
  };
  return {
    peers: peers.map((p) => ({
      id: p.id,
      label: p.label,
      status: p.status,
      note: p.note,
      runs: p.runs,
      rssIdleBytes: p.rssIdle,
      ...(p.status === 'ok'
        ? {
            rps: summary(p.runs.map((r) => r.rps)),
            p50: summary(p.runs.map((r) => r.p50_us)),
            p99: summary(p.runs.map((r) => r.p99_us)),
            cpuPerReqUs: summary(p.runs.map((r) => r.cpuPerReqUs)),
            rssBytes: median(p.runs.map((r) => r.rssBytes)),
            rssPeakBytes: Math.max(...p.runs.map((r) => r.rssPeakBytes)),
            non2xx: p.runs.reduce((n, r) => n + r.non2xx, 0),
            errors: p.runs.reduce((n, r) => n + r.errors, 0),
            vsNode: ratioTo(p, 'node-http'),
            vsWorkerd: ratioTo(p, 'workerd-js'),
            vsJco: ratioTo(p, 'jco-serve'),
          }
        : {}),
    })),
  };
}
