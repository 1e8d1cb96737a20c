#!/usr/bin/env node
// Throughput A/B that this machine's noise cannot swamp: two hello servers are loaded at the same
// time, both pinned to CPU 0 and given equal CPU shares (a cpu cgroup each; else the kernel's
// autogroup, one per server session), each by its own wrk on CPU 1. A window's ratio B ÷ A is
// taken between requests served in the same instant, so the 2× speed swings of this VM (which make
// back-to-back 3 s windows disagree by ±30 %) hit both sides alike. An A/A run of node:http or of
// one isola build gives B ÷ A of 0.99–1.07 (median 1.01–1.02) here: read differences under ~3 %
// as noise. With equal shares, req/s ÷ req/s is the inverse ratio of CPU per request, which is
// what a one-core throughput ratio measures when each runs alone. It is not the bench's target
// method: a server that suffers from sharing a core (workerd here: 55–65 µs per request alone,
// 70–120 µs shared) is measured at a disadvantage, so compare isola builds and flags with it, and
// node:http as a reference.
//
//   node bench/ab.mjs <A> <B> [--guest wat|js|wagi] [--windows N] [--seconds S] [--warmup S] [--connections N]
//   A, B: node-http | workerd-js | isola[@<git rev>|@dist][+<node or V8 flag>…]
//   e.g.  node bench/ab.mjs isola@f5c5636 isola@HEAD        two commits
//         node bench/ab.mjs isola isola+--max-semi-space-size=32
//         node bench/ab.mjs node-http isola                isola's share of the node:http ceiling
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pickLoadGenerator, runLoad } from './lib/load.mjs';
import { isolaConfig, startIsola, startNodeHttp, startWorkerd } from './lib/peers.mjs';
import { processTree, treeCpuMicros } from './lib/proc.mjs';
import { summary } from './lib/stats.mjs';
import * as setup from './lib/setup.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const specs = args.filter((x, i) => !x.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
if (specs.length !== 2) {
  process.stderr.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 20).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(2);
}
const guest = opt('guest', 'wat');
const windows = Number(opt('windows', '10'));
const seconds = Number(opt('seconds', '3'));
const connections = Number(opt('connections', '32'));
const warmup = Number(opt('warmup', '5'));

/** A side: { label, start(cpus) → { proc, base }, path }. Builds the isola revision it names. */
async function side(spec, artifacts) {
  if (spec === 'node-http') return { label: spec, path: '/', start: (cpus) => startNodeHttp('hello', { cpus }) };
  if (spec === 'workerd-js') {
    if (!artifacts.workerdBin) throw new Error('workerd is not installed (npm install)');
    return { label: spec, path: '/', start: (cpus) => startWorkerd(artifacts.workerdBin, artifacts.workerdDir, { wasm: false, cpus }) };
  }
  const m = /^isola(?:@([^+]+))?((?:\+[^+]+)*)$/.exec(spec);
  if (!m) throw new Error(`unknown side "${spec}": node-http, workerd-js or isola[@<rev>|@dist][+<flag>…]`);
  const rev = m[1] ?? 'head';
  const nodeArgs = m[2] ? m[2].slice(1).split('+') : [];
  setup.buildIsola(rev); // bench/.build/sut-<commit>/, built when missing
  const cli = setup.ISOLA_CLI;
  const label = `${spec === 'isola' ? 'isola' : spec} (${setup.ISOLA_BUILD.commit})`;
  const wasm = { wat: artifacts.watHello, js: artifacts.jsHello, wagi: artifacts.wagiWat }[guest];
  if (!wasm) throw new Error(`no ${guest} hello guest here (--guest wat|js|wagi)`);
  const file = `ab-${spec.replace(/[^A-Za-z0-9.@-]+/g, '_')}.toml`;
  return {
    label,
    path: '/hello',
    start: (cpus) => startIsola(isolaConfig(file, [{ name: 'hello', wasm, routes: ['/hello'] }]), { cpus, nodeArgs, env: { BENCH_SUT_CLI: cli } }),
  };
}

/**
 * Equal CPU shares for the two servers: a cpu cgroup each (v2 `cpu.weight`, else v1 `cpu.shares`).
 * Returns { how, place(pid tree), remove() }; without cgroups (no permission), each server being its
 * own session (setsid) is enough where autogroup is on.
 */
function shares() {
  const v2 = '/sys/fs/cgroup';
  const v1 = '/sys/fs/cgroup/cpu';
  const made = [];
  const tryMake = (dir, file, value) => {
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, file), value);
      made.push(dir);
      return dir;
    } catch {
      return null;
    }
  };
  let make = null;
  let how = null;
  // Groups left by an earlier run that was killed: rmdir removes only empty ones.
  for (const root of [v2, v1]) {
    let names = [];
    try {
      names = readdirSync(root).filter((n) => n.startsWith('isola-ab-'));
    } catch {}
    for (const name of names) {
      try {
        rmdirSync(path.join(root, name));
      } catch {}
    }
  }
  if (existsSync(path.join(v2, 'cgroup.controllers')) && readFileSync(path.join(v2, 'cgroup.controllers'), 'utf8').includes('cpu')) {
    try {
      writeFileSync(path.join(v2, 'cgroup.subtree_control'), '+cpu');
    } catch {}
    make = (name) => tryMake(path.join(v2, name), 'cpu.weight', '100');
    how = 'cgroup v2 cpu.weight';
  } else if (existsSync(path.join(v1, 'cpu.shares'))) {
    make = (name) => tryMake(path.join(v1, name), 'cpu.shares', '1024');
    how = 'cgroup v1 cpu.shares';
  }
  const autogroup = (() => {
    try {
      return readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
    } catch {
      return false;
    }
  })();
  return {
    place(name, pid) {
      const dir = make?.(`isola-ab-${process.pid}-${name}`);
      if (!dir) return autogroup ? 'autogroup (a session per server)' : 'none: threads compete one by one';
      for (const p of processTree(pid)) writeFileSync(path.join(dir, 'cgroup.procs'), String(p));
      return how;
    },
    remove() {
      for (const dir of made) {
        try {
          rmdirSync(dir);
        } catch {}
      }
    },
  };
}

const artifacts = await setup.prepare();
const gen = await pickLoadGenerator();
if (gen?.name !== 'wrk') throw new Error('bench/ab.mjs needs wrk (apt-get install wrk): two load generators must run at once, off the server core');
const sides = [await side(specs[0], artifacts), await side(specs[1], artifacts)];
if (sides[0].label === sides[1].label) sides[1].label += ' (2)';
const cg = shares();
const servers = [];
try {
  for (const [i, s] of sides.entries()) {
    const srv = await s.start('0');
    servers.push(srv);
    s.url = srv.base + s.path;
    s.pid = srv.proc.pid;
    const r = await fetch(s.url);
    await r.text();
    if (r.status !== 200) throw new Error(`${s.label} answered ${r.status}`);
    s.shares = cg.place(i === 0 ? 'a' : 'b', s.pid);
  }
  process.stdout.write(`A = ${sides[0].label}, B = ${sides[1].label}; guest ${guest}; both on CPU 0 (${sides[0].shares}), wrk -t1 -c${connections} each on CPU 1, ${windows} windows of ${seconds} s\n`);
  // V8 is still compiling and growing heaps in a new server's first seconds: warm both up together.
  await Promise.all(sides.map((s) => runLoad(gen, s.url, { seconds: warmup, connections, cpus: '1' })));
  const ratios = [];
  for (let w = 0; w < windows; w++) {
    const c0 = sides.map((s) => treeCpuMicros(s.pid));
    const t0 = performance.now();
    const r = await Promise.all(sides.map((s) => runLoad(gen, s.url, { seconds, connections, cpus: '1' })));
    const wallUs = (performance.now() - t0) * 1000;
    const cpu = sides.map((s, i) => treeCpuMicros(s.pid) - c0[i]);
    const ratio = r[1].rps / r[0].rps;
    ratios.push(ratio);
    const bad = r.some((x) => x.non2xx || x.errors) ? `  non-2xx ${r.map((x) => x.non2xx).join('/')} errors ${r.map((x) => x.errors).join('/')}` : '';
    const col = (i) => `${Math.round(r[i].rps).toString().padStart(6)} req/s ${(cpu[i] / r[i].requests).toFixed(1).padStart(6)} µs/req share ${(cpu[i] / wallUs).toFixed(2)}`;
    process.stdout.write(`  window ${String(w + 1).padStart(2)}  A ${col(0)}   B ${col(1)}   B÷A ${ratio.toFixed(3)}${bad}\n`);
  }
  const s = summary(ratios);
  const f = (x) => x.toFixed(3);
  process.stdout.write(`B ÷ A req/s: median ${f(s.median)} (middle half ${f(s.q1)}–${f(s.q3)}, min–max ${f(s.min)}–${f(s.max)}, ${s.n} windows)\n`);
} finally {
  for (const srv of servers) await srv.proc.stop();
  cg.remove();
}
