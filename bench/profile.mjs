#!/usr/bin/env node
// Where does isola's time go per request? Starts `isola dev` under `node --cpu-prof` (one profile
// per thread: main + each sandbox worker) with a hello function, loads it with wrk, and reports
// for the load window only:
//   - per thread, real CPU time from /proc/<pid>/task/<tid>/schedstat and context switches
//     (voluntary / involuntary) per request;
//   - per profile (main thread, sandbox threads), busy time per request by category and the top
//     functions. V8's profiler samples wall time: a thread preempted by the scheduler is charged to
//     whatever it was running, so busy time ≥ CPU time on a loaded machine; compare with schedstat.
//
//   node bench/profile.mjs [--guest wat|js|wagi] [--seconds N] [--max-instances N] [--connections N]
//                          [--no-pin] [--isola head|dist|<git rev>] [--no-cpu-prof] [--node-arg <flag>]…
// Profiles are kept under bench/profiles/<stamp>-<guest>/ (gitignored) for chrome://inspect or
// speedscope.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { byCategory, loadProfile, topFunctions } from './lib/cpuprofile.mjs';
import { pickLoadGenerator, runLoad } from './lib/load.mjs';
import { isolaConfig, startIsola } from './lib/peers.mjs';
import { hasTaskset, loadAvg } from './lib/proc.mjs';
import { BENCH, prepare } from './lib/setup.mjs';
import * as setup from './lib/setup.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const guest = opt('guest', 'wat');
const seconds = Number(opt('seconds', '10'));
const maxInstances = Number(opt('max-instances', '4'));
const connections = Number(opt('connections', '32'));
const pin = !args.includes('--no-pin') && hasTaskset;
/** `--node-arg <flag>` (repeatable): extra node/V8 flags for the profiled server, for A/B runs. */
const extraNodeArgs = args.flatMap((a, i) => (a === '--node-arg' ? [args[i + 1]] : []));

function threads(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const vol = Number(st.match(/^voluntary_ctxt_switches:\s+(\d+)/m)[1]);
      const invol = Number(st.match(/^nonvoluntary_ctxt_switches:\s+(\d+)/m)[1]);
      out.set(Number(tid), { runNs: run, waitNs: wait, vol, invol });
    } catch {}
  }
  return out;
}

const RULES = [
  ['jco glue (transpiled guest.mjs)', (fn, url) => /\/artifacts\/[0-9a-f]+\/.*\.m?js$/.test(url)],
  ['guest Wasm', (fn, url) => url.startsWith('wasm://')],
  ['isola wasi:http host (dist/sandbox/wasi-http)', (fn, url) => url.includes('/dist/sandbox/wasi-http/')],
  ['isola WAGI host (dist/sandbox/wagi)', (fn, url) => url.includes('/dist/sandbox/wagi/')],
  ['isola sandbox (dist/sandbox)', (fn, url) => url.includes('/dist/sandbox/')],
  ['isola edge (dist/server)', (fn, url) => url.includes('/dist/server/')],
  ['isola pool (dist/pool)', (fn, url) => url.includes('/dist/pool/')],
  ['isola other (dist)', (fn, url) => url.includes('/dist/')],
  ['postMessage (native: serialize + wake the other thread)', (fn, url) => !url && fn === 'postMessage'],
  ['socket writev (native)', (fn, url) => !url && (fn === 'writev' || fn === 'writeUtf8String' || fn === 'writeBuffer')],
  ['node:http', (fn, url) => /^node:_http_|^node:http$/.test(url)],
  ['node net/streams', (fn, url) => /^node:(net|internal\/stream_base_commons|internal\/streams)/.test(url)],
  ['node events/timers/ticks', (fn, url) => /^node:(events|timers|internal\/process\/task_queues|internal\/timers|internal\/event_target|internal\/per_context\/messageport)/.test(url) || (!url && fn === 'runMicrotasks')],
  ['node worker/MessagePort JS', (fn, url) => /^node:internal\/worker/.test(url)],
  ['hono + @hono/node-server', (fn, url) => /node_modules\/(hono|@hono\/node-server)\//.test(url)],
  ['pino (logging)', (fn, url) => /node_modules\/(pino|sonic-boom|fast-redact|quick-format-unescaped|on-exit-leak-free|thread-stream)/.test(url)],
];

function windowProfile(file, t0us, t1us) {
  // Keep only samples in [t0, t1] (both clocks are CLOCK_MONOTONIC µs).
  const raw = JSON.parse(readFileSync(file, 'utf8'));
  let t = raw.startTime;
  const keepSamples = [];
  const keepDeltas = [];
  for (let i = 0; i < raw.samples.length; i++) {
    t += raw.timeDeltas[i];
    const next = raw.timeDeltas[i + 1] ?? 0;
    if (t >= t0us && t + next <= t1us) {
      keepSamples.push(raw.samples[i]);
      keepDeltas.push(next);
    }
  }
  // loadProfile reads the delta after each sample; rebuild a profile of just the window.
  const p = { ...raw, samples: keepSamples, timeDeltas: [0, ...keepDeltas], startTime: t0us, endTime: t1us };
  return loadProfile({ parsed: p });
}

/**
 * Starts isola (min_warm = 0 and no blank sandboxes, so the threads that appear after start are
 * exactly the sandboxes), warms it up, loads it.
 */
async function measure(gen, wasm, { nodeArgs = [], stderrFile, countFile } = {}) {
  nodeArgs = [...extraNodeArgs, ...nodeArgs];
  const cfg = isolaConfig(`profile-${guest}.toml`, [{ name: 'hello', wasm, routes: ['/hello'], pool: { min_warm: 0, max_instances: maxInstances } }], { sandboxes: { blank: 0 } });
  if (countFile) nodeArgs = [...nodeArgs, '--import', path.join(BENCH, 'micro', 'count-messages.mjs')];
  const s = await startIsola(cfg, { cpus: pin ? '0' : undefined, nodeArgs, stderrFile, env: countFile ? { ISOLA_BENCH_COUNT_FILE: countFile } : {} });
  const pid = s.proc.pid;
  const url = s.base + '/hello';
  try {
    await sleep(200);
    const base = new Set(threads(pid).keys());
    const probe = await fetch(url);
    await probe.text();
    if (probe.status !== 200) throw new Error(`probe: ${probe.status}`);
    await runLoad(gen, url, { seconds: 2, connections, cpus: pin ? '1' : undefined }); // warm-up, grows the pool
    const load = loadAvg();
    if (countFile) process.kill(pid, 'SIGUSR2');
    const before = threads(pid);
    const t0 = Number(process.hrtime.bigint() / 1000n);
    const r = await runLoad(gen, url, { seconds, connections, cpus: pin ? '1' : undefined });
    const t1 = Number(process.hrtime.bigint() / 1000n);
    const after = threads(pid);
    if (countFile) {
      process.kill(pid, 'SIGUSR2');
      await sleep(200);
    }
    const sandboxTids = [...after.keys()].filter((t) => !base.has(t));
    return { pid, load, before, after, r, t0, t1, sandboxTids };
  } finally {
    await s.proc.stop(15_000);
  }
}

async function main() {
  const gen = await pickLoadGenerator();
  const a = await prepare({ isola: opt('isola', 'head') });
  const wasm = { wat: a.watHello, js: a.jsHello, wagi: a.wagiWat }[guest];
  if (!wasm) throw new Error(`unknown or unavailable guest ${guest}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const dir = path.join(BENCH, 'profiles', `${stamp}-${guest}`);
  mkdirSync(dir, { recursive: true });
  const out = [];
  const say = (l = '') => out.push(l);
  say(`# isola ${setup.ISOLA_BUILD.commit} hello profile: guest ${guest}, max_instances ${maxInstances}, wrk -c${connections} ${seconds} s${pin ? ', server CPU 0 / wrk CPU 1' : ', unpinned'}`);

  // Phase 1, no profiler (V8's sampler adds a thread per profiled isolate): real CPU per thread.
  {
    const countFile = path.join(dir, 'messages.jsonl');
    const { pid, load, before, after, r, sandboxTids } = await measure(gen, wasm, { countFile });
    const n = r.requests;
    const counts = readFileSync(countFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    say(`## Real CPU per request by thread (schedstat), no profiler`);
    say(`load average before: ${load.join(' ')}; ${Math.round(r.rps)} req/s, p50 ${(r.p50_us / 1000).toFixed(2)} ms, p99 ${(r.p99_us / 1000).toFixed(2)} ms`);
    say('');
    say('| thread | CPU µs/req | runnable but waiting µs/req | voluntary cs/req | involuntary cs/req |');
    say('| --- | --- | --- | --- | --- |');
    const delta = (tid) => {
      const b = before.get(tid) ?? { runNs: 0, waitNs: 0, vol: 0, invol: 0 };
      const x = after.get(tid);
      return { run: (x.runNs - b.runNs) / 1000 / n, wait: (x.waitNs - b.waitNs) / 1000 / n, vol: (x.vol - b.vol) / n, invol: (x.invol - b.invol) / n };
    };
    const groups = {
      'main (event loop)': [pid],
      [`sandbox workers (${sandboxTids.length})`]: sandboxTids,
    };
    // The rest: V8's platform workers (concurrent GC, compiler), the libuv pool, the inspector.
    groups['other (V8 GC/compiler helpers, libuv pool)'] = [...after.keys()].filter((t) => t !== pid && !sandboxTids.includes(t));
    let totalCpu = 0;
    for (const [name, tids] of Object.entries(groups)) {
      const d = tids.map(delta).reduce((acc, x) => ({ run: acc.run + x.run, wait: acc.wait + x.wait, vol: acc.vol + x.vol, invol: acc.invol + x.invol }), { run: 0, wait: 0, vol: 0, invol: 0 });
      totalCpu += d.run;
      say(`| ${name} | ${d.run.toFixed(1)} | ${d.wait.toFixed(1)} | ${d.vol.toFixed(2)} | ${d.invol.toFixed(2)} |`);
    }
    say(`| **all threads** | **${totalCpu.toFixed(1)}** | | | |`);
    say();
    if (counts.length === 2) {
      const per = (k) => ((counts[1][k] - counts[0][k]) / n).toFixed(2);
      say(`messages per request on the worker channel: ${per('toSandbox')} main → sandbox, ${per('fromSandbox')} sandbox → main (body-port messages not counted)`);
      say();
    }
  }

  if (args.includes('--no-cpu-prof')) {
    process.stdout.write(out.join('\n') + '\n');
    return;
  }
  // Phase 2, under --cpu-prof: where the sampled (wall) time goes, load window only.
  const { r, t0, t1, load } = await measure(gen, wasm, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`], stderrFile: path.join(dir, 'isola.stderr') });
  const n = r.requests;
  say(`## Sampled profiles (--cpu-prof), load window only`);
  say(`load average before: ${load.join(' ')}; ${Math.round(r.rps)} req/s under the profiler`);
  say();
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const merged = { main: [], sandbox: [] };
  for (const f of files) {
    const threadId = Number(f.split('.').at(-3));
    merged[threadId === 0 ? 'main' : 'sandbox'].push(windowProfile(path.join(dir, f), t0, t1));
  }
  for (const [which, profs] of Object.entries(merged)) {
    if (!profs.length) continue;
    const cats = new Map();
    let busy = 0;
    const fns = new Map();
    for (const p of profs) {
      const c = byCategory(p, RULES);
      busy += c.busy;
      for (const [k, v] of c.rows) if (k !== 'idle') cats.set(k, (cats.get(k) ?? 0) + v);
      for (const [k, v] of topFunctions(p, 200)) fns.set(k, (fns.get(k) ?? 0) + v);
    }
    say(`### ${which} thread${profs.length > 1 ? `s (${profs.length} profiles summed)` : ''}: busy (sampled, wall) ${(busy / n).toFixed(1)} µs/req`);
    say('| category | µs/req | share of busy |');
    say('| --- | --- | --- |');
    for (const [k, v] of [...cats].sort((x, y) => y[1] - x[1]).slice(0, 16)) say(`| ${k} | ${(v / n).toFixed(1)} | ${((100 * v) / busy).toFixed(1)}% |`);
    say();
    say('top functions (self):');
    say('```');
    for (const [k, v] of [...fns].filter(([k]) => !k.startsWith('(idle)')).sort((x, y) => y[1] - x[1]).slice(0, 20)) say(`${(v / n).toFixed(1).padStart(7)} µs/req ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k.replace(/file:\/\/\S*\/artifacts\/([0-9a-f]{8})[0-9a-f]*\//, 'artifacts/$1…/')}`);
    say('```');
    say();
  }
  say(`profiles: ${path.relative(process.cwd(), dir)}/`);
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write((e.stack ?? String(e)) + '\n');
  process.exit(1);
});
