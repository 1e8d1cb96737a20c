#!/usr/bin/env node
// Throughput A/B that this machine's noise cannot swamp: two hello servers are loaded at the same
// time, both pinned to CPU 0 and given equal CPU shares (a cpu cgroup each; else the kernel's
// autogroup, one per server session), each by its own wrk on CPU 1. A window's ratio B ÷ A is
// taken between requests served in the same instant, so the 2× speed swings of this VM (which make
// back-to-back 3 s windows disagree by ±30 %) hit both sides alike. A/A runs here gave medians of
// 0.99–1.02 over 6–10 windows, single windows 0.86–1.15: read a median difference under ~5 % as
// noise, and take more windows for less. With equal shares, req/s ÷ req/s is the inverse ratio of
// CPU per request, which is what a one-core throughput ratio measures when each runs alone. It is
// not the bench's target method: a server that suffers from sharing a core (workerd here: 55–65 µs
// per request alone, 70–120 µs shared) is measured at a disadvantage, so compare isola builds and
// flags with it, and node:http as a reference.
//
//   node bench/ab.mjs <A> <B> [--guest wat|js|wagi] [--windows N] [--seconds S] [--warmup S] [--connections N]
//   A, B: node-http | workerd-js | isola[@<git rev>|@dist][+<node or V8 flag>…]
//         bare `isola` is the committed HEAD, built apart like any revision; `isola@dist` is a copy
//         of the working tree's dist/ as it is (run `npm run build` first)
//   e.g.  node bench/ab.mjs isola@f5c5636 isola              a commit against HEAD
//         node bench/ab.mjs isola isola+--max-semi-space-size=32
//         node bench/ab.mjs node-http isola                  isola's share of the node:http ceiling
//   Defaults: --guest wat, 10 windows of 3 s after 5 s of warm-up, 32 connections per side.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pickLoadGenerator, runLoad } from './lib/load.mjs';
import { isolaConfig, startIsola, startNodeHttp, startWorkerd } from './lib/peers.mjs';
import { isRunning, processTree, treeCpuMicros } from './lib/proc.mjs';
import { summary } from './lib/stats.mjs';
import * as setup from './lib/setup.mjs';

/** The header above, as usage text. */
const usage = () => setup.headerText(import.meta.url);

/** Fails with a one-line message (and exit code 2 for bad usage), never a stack trace. */
function die(message, code = 1) {
  process.stderr.write(`bench/ab.mjs: ${message}\n`);
  process.exit(code);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      guest: { type: 'string', default: 'wat' },
      windows: { type: 'string', default: '10' },
      seconds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '5' },
      connections: { type: 'string', default: '32' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (e) {
  die(`${e.message}\n\n${usage()}`, 2);
}
if (parsed.values.help) {
  process.stdout.write(usage());
  process.exit(0);
}
if (parsed.positionals.length !== 2) die(`two sides are needed, got ${parsed.positionals.length}\n\n${usage()}`, 2);
/** A positive whole number from option `name`, or exit 2. */
function count(name) {
  const v = parsed.values[name];
  if (!/^[1-9][0-9]*$/.test(v)) die(`--${name} must be a positive whole number, got "${v}"`, 2);
  return Number(v);
}
const windows = count('windows');
const seconds = count('seconds');
const warmup = count('warmup');
const connections = count('connections');
const guest = parsed.values.guest;
if (!['wat', 'js', 'wagi'].includes(guest)) die(`--guest must be wat, js or wagi, got "${guest}"`, 2);
const SIDE_RE = /^isola(?:@([^+]+))?((?:\+[^+]+)*)$/;
for (const spec of parsed.positionals) {
  if (spec !== 'node-http' && spec !== 'workerd-js' && !SIDE_RE.test(spec)) die(`unknown side "${spec}": node-http, workerd-js or isola[@<rev>|@dist][+<flag>…]`, 2);
}
const anyIsola = parsed.positionals.some((x) => x.startsWith('isola'));
if (!anyIsola && guest !== 'wat') process.stderr.write(`bench/ab.mjs: --guest ${guest} applies to isola sides only; neither side is isola\n`);

/** A side: { label, start(cpus) → { proc, base }, path }. Builds the isola revision it names. */
async function side(spec, artifacts) {
  if (spec === 'node-http') return { label: spec, path: '/', start: (cpus) => startNodeHttp('hello', { cpus }) };
  if (spec === 'workerd-js') {
    if (!artifacts.workerdBin) throw new Error('workerd is not installed (npm install)');
    return { label: spec, path: '/', start: (cpus) => startWorkerd(artifacts.workerdBin, artifacts.workerdDir, { wasm: false, cpus }) };
  }
  const m = SIDE_RE.exec(spec);
  const rev = m[1] ?? 'head';
  const nodeArgs = m[2] ? m[2].slice(1).split('+') : [];
  try {
    setup.buildIsola(rev); // bench/.build/sut-<commit>/, built when missing
  } catch (e) {
    const why = String(e.stderr ?? e.message).split('\n').find((l) => l.trim() !== '') ?? '';
    die(`cannot build isola "${rev}" for side "${spec}": ${why.trim()}`);
  }
  const cli = setup.ISOLA_CLI;
  const label = `${spec === 'isola' ? 'isola' : spec} (${setup.ISOLA_BUILD.commit})`;
  const wasm = { wat: artifacts.watHello, js: artifacts.jsHello, wagi: artifacts.wagiWat }[guest];
  if (!wasm) die(`no ${guest} hello guest was built here (the WAGI example needs wabt; see BENCHMARKS.md)`);
  const file = `ab-${spec.replace(/[^A-Za-z0-9.@-]+/g, '_')}.toml`;
  return {
    label,
    path: '/hello',
    start: (cpus) => startIsola(isolaConfig(file, [{ name: 'hello', wasm, routes: ['/hello'] }]), { cpus, nodeArgs, env: { BENCH_SUT_CLI: cli } }),
  };
}

/**
 * Removes cgroup `dir`, first SIGKILLing what is left in it when `kill`; waits up to 2 s for it to
 * empty (synchronously: this also runs in an exit handler). Never throws.
 */
function removeGroup(dir, kill) {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 100; i++) {
    let pids = [];
    try {
      pids = readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return; // gone already
    }
    if (pids.length === 0) {
      try {
        rmdirSync(dir);
      } catch {}
      return;
    }
    if (kill) {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
    Atomics.wait(pause, 0, 0, 20);
  }
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
  // Groups left by a run that was killed (named after its pid): what still runs in them is stopped.
  for (const root of [v2, v1]) {
    let names = [];
    try {
      names = readdirSync(root).filter((n) => /^isola-ab-\d+-[ab]$/.test(n));
    } catch {}
    for (const name of names) {
      const owner = Number(name.split('-')[2]);
      if (owner !== process.pid && isRunning(owner)) continue; // another run, still going
      removeGroup(path.join(root, name), true);
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
    /** Removes the groups once their processes are gone (waits up to 2 s); never throws. */
    remove() {
      for (const dir of made.splice(0)) removeGroup(dir, false);
    },
  };
}

const artifacts = await setup.prepare();
const gen = await pickLoadGenerator();
if (gen?.name !== 'wrk') die('needs wrk (apt-get install wrk): two load generators run at once, off the server core');
const sides = [await side(parsed.positionals[0], artifacts), await side(parsed.positionals[1], artifacts)];
if (sides[0].label === sides[1].label) sides[1].label += ' (2)';
const cg = shares();
// Interrupted (SIGINT, SIGTERM, SIGHUP: bench/lib/proc.mjs stops the servers and exits), the groups go too.
process.on('exit', () => cg.remove());
const servers = [];
let failed = null;
try {
  for (const [i, s] of sides.entries()) {
    const srv = await s.start('0');
    servers.push(srv);
    s.url = srv.base + s.path;
    s.pid = srv.proc.pid;
    const r = await fetch(s.url);
    await r.text();
    if (r.status !== 200) throw new Error(`${s.label} answered ${r.status} to ${s.url}`);
    s.shares = cg.place(i === 0 ? 'a' : 'b', s.pid);
  }
  process.stdout.write(`A = ${sides[0].label}, B = ${sides[1].label}; ${anyIsola ? `guest ${guest}; ` : ''}both on CPU 0 (${sides[0].shares}), wrk -t1 -c${connections} each on CPU 1, ${windows} windows of ${seconds} s\n`);
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
  const middle = s.n >= 4 ? `middle half ${f(s.q1)}–${f(s.q3)}, ` : '';
  process.stdout.write(`B ÷ A req/s: median ${f(s.median)} (${middle}min–max ${f(s.min)}–${f(s.max)}, ${s.n} windows)\n`);
} catch (e) {
  failed = e;
} finally {
  for (const srv of servers) await srv.proc.stop();
  cg.remove();
}
if (failed) die(String(failed.message).split('\n')[0]);
