#!/usr/bin/env node
// isola's benchmark suite (issue 9): isola against the runtimes users would pick instead, side by
// side in one run. Prints Markdown tables and writes bench/results/latest.json (+ latest.md).
//
//   npm run bench                 full run (~12 min): hello 10 rounds of 3 s runs, noisy 3 rounds of
//                                 10 s, 1 GiB streaming
//   npm run bench -- --quick      short run (~4 min): hello 5 rounds of 2 s (2 s of warm-up),
//                                 noisy 3 rounds of 3 s, 256 MiB streaming
//   options: --only hello,cold,deploy,stream,noisy,density,fuel  --seconds N  --rounds N (both: every
//            scenario)  --connections N  --no-pin
//            --isola head|dist|<rev> (default head: the committed HEAD built apart from the working tree)
//            --report FILE (re-render a saved latest.json, run nothing)
//
// Numbers drift on a shared machine: read the ratios (taken within one round), not the absolutes.
// Benchmarks are never test assertions.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pickLoadGenerator } from './lib/load.mjs';
import { hasTaskset, loadAvg } from './lib/proc.mjs';
import { BENCH, BUILD, ROOT, prepare } from './lib/setup.mjs';
import * as setup from './lib/setup.mjs';
import { rmSync } from 'node:fs';
import { fmtInt, fmtMiB, fmtMs, fmtRange, fmtRatio, mdTable } from './lib/stats.mjs';
import { runHello } from './scenarios/hello.mjs';
import { runColdStart } from './scenarios/coldstart.mjs';
import { runStreaming } from './scenarios/streaming.mjs';
import { runMetering } from './scenarios/metering.mjs';
import { runNoisy } from './scenarios/noisy.mjs';
import { runDensity } from './scenarios/density.mjs';
import { runDeploy } from './scenarios/deploy.mjs';

function parseArgs(argv) {
  const o = { quick: false, only: null, pin: true, isola: 'head' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => argv[++i];
    if (a === '--quick') o.quick = true;
    else if (a === '--no-pin') o.pin = false;
    else if (a === '--isola') o.isola = val();
    else if (a === '--report') o.report = val();
    else if (a === '--only') o.only = new Set(val().split(','));
    else if (a === '--seconds') o.seconds = Number(val());
    else if (a === '--rounds') o.rounds = Number(val());
    else if (a === '--connections') o.connections = Number(val());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(setup.headerText(import.meta.url));
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  // The hello scenario takes many short rounds: this machine's speed swings by up to 2× within
  // seconds (node:http 27k–49k req/s in consecutive 3 s windows), so a ratio between two peers is
  // noisy per round, and a median over 3 rounds could not settle a 20 % difference. Same load time.
  o.helloSeconds = o.seconds ?? (o.quick ? 2 : 3);
  o.helloRounds = o.rounds ?? (o.quick ? 5 : 10);
  o.seconds ??= o.quick ? 3 : 10;
  o.warmupSeconds = o.quick ? 2 : 3;
  o.rounds ??= 3;
  o.connections ??= 32;
  o.streamBytes = o.quick ? 256 * 1048576 : 1024 * 1048576;
  o.streamReps = 3;
  return o;
}

const log = (line) => process.stderr.write(line + '\n');
const sh = (cmd) => {
  try {
    return execFileSync('sh', ['-c', cmd], { encoding: 'utf8', cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
};

function machine(gen, pin) {
  const pkg = (p) => {
    try {
      return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', p, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    distro: sh(". /etc/os-release && echo $PRETTY_NAME"),
    node: process.version,
    loadGenerator: `${gen.name} ${gen.version}`,
    workerd: sh(`${path.join(ROOT, 'node_modules/workerd/bin/workerd')} --version`),
    jco: pkg('@bytecodealliance/jco'),
    commit: setup.ISOLA_BUILD.commit,
    isolaSource: setup.ISOLA_BUILD.source,
    pinning: pin ? 'server on CPU 0; load generator and the bench\'s own clients on CPU 1 (taskset)' : 'none',
  };
}

const target = (name, met, measured) => [name, measured, met === null ? 'not yet' : met ? '**met**' : '**not met**'];
/** A target's ratio with three decimals (two would print 0.497 as 0.50× beside a 0.5× threshold). */
const fmtRatio3 = (r) => fmtRatio(r, 3);
/**
 * A ratio target: met on the median; flagged inconclusive when the threshold lies inside the
 * middle half of the rounds (q1–q3; min–max with fewer than 4 rounds).
 */
function ratioTarget(name, s, ok, fmt = fmtRatio3) {
  if (!s || !Number.isFinite(s.median)) return [name, '–', 'not yet'];
  const met = ok(s.median);
  const [lo, hi] = s.n >= 4 && Number.isFinite(s.q1) ? [s.q1, s.q3] : [s.min, s.max];
  const mixed = ok(lo) !== ok(hi);
  return [name, fmtRange(s, fmt, true), `${met ? '**met**' : '**not met**'}${mixed ? ' (rounds disagree: inconclusive)' : ''}`];
}

function helloTable(h) {
  const rows = h.peers.map((p) => {
    if (p.status !== 'ok') return [p.label, p.status === 'not yet' ? `not yet (${p.note})` : `error: ${p.note}`, '', '', '', '', '', ''];
    const flag = p.non2xx || p.errors ? ` ⚠ ${p.non2xx} non-2xx, ${p.errors} errors` : '';
    return [
      p.label,
      fmtRange(p.rps, fmtInt) + flag,
      fmtRange(p.p50, fmtMs),
      fmtRange(p.p99, fmtMs),
      fmtRange(p.cpuPerReqUs, (x) => `${Math.round(x)}`),
      fmtMiB(p.rssBytes),
      p.vsNode ? fmtRange(p.vsNode, fmtRatio) : '–',
      p.vsWorkerd ? fmtRange(p.vsWorkerd, fmtRatio) : '–',
    ];
  });
  return mdTable(['server', 'req/s', 'p50', 'p99', 'server CPU µs/req', 'RSS after', '× node:http', '× workerd JS'], rows);
}

function coldTable(c) {
  const r = (label, s) => [label, fmtRange(s, fmtMs)];
  // First requests: p50 / p99 over the copies (nearest rank: p99 is the slowest of fewer than 100).
  const f = (label, x) => [label, x?.coldPct ? `p50 ${fmtMs(x.coldPct.p50)} / p99 ${fmtMs(x.coldPct.p99)} (n = ${x.coldPct.n}; min ${fmtMs(x.cold.min)})` : fmtRange(x?.cold, fmtMs)];
  return mdTable(['what', 'time, median (min–max)'], [
    r('isola start → listening, WAT hello (artifact cached)', c.startWat.listen),
    r('isola start → first response, WAT hello (artifact cached)', c.startWat.first),
    r('isola start → listening, JS hello (artifact cached)', c.startJs.listen),
    r('isola start → first response, JS hello (artifact cached)', c.startJs.first),
    r('isola start → first response, JS hello, empty artifact cache (jco transpile)', c.startJsFresh.first),
    f('first request, never-used WAT hello, min_warm = 0, no blank sandbox (thread start + instantiate)', c.firstWat),
    f('first request, never-used WAT hello, min_warm = 0, blank sandbox ready (instantiate)', c.firstWatBlank),
    ...(c.firstWatNew ? [
      f('first request, WAT hello never run before (own bytes, no code cache), no blank sandbox', c.firstWatNew),
      f('first request, WAT hello never run before (own bytes, no code cache), blank sandbox ready', c.firstWatNewBlank),
    ] : []),
    f('first request, never-used JS hello, min_warm = 0, no blank sandbox', c.firstJs),
    f('first request, never-used JS hello, min_warm = 0, blank sandbox ready', c.firstJsBlank),
    r('warm request, same connection (reference)', c.firstWat.warm),
    ['deploy → first response', 'see "Deploy → first response" (`--only deploy`)'],
    ['instance creation alone, small / JS component', 'not measured yet (pool start events carry ms: isola_sandbox_start_duration_seconds)'],
  ]);
}

function deployTable(d) {
  const f = (x) => `p50 ${fmtMs(x.firstPct.p50)} / p99 ${fmtMs(x.firstPct.p99)} (n = ${d.n}; min ${fmtMs(x.first.min)})`;
  const w = (x) => (x.warmPct ? `p50 ${fmtMs(x.warmPct.p50)} / p99 ${fmtMs(x.warmPct.p99)} (n = ${d.n}; min ${fmtMs(x.warm.min)})` : '–');
  return mdTable(['what', 'time'], [
    ['first response right after the deploy\'s 201, default pool (min_warm = 1: the deploy bound a sandbox)', f(d.minWarmDefault)],
    ['first response right after the deploy\'s 201, min_warm = 0 (the request takes a blank sandbox)', f(d.minWarm0)],
    ['reference: the same function, warm, right after an admin API call (after a 150 ms pause), default pool', w(d.minWarmDefault)],
    ['reference: node:http hello, one request after a 150 ms pause', d.nodeAfterPause ? `p50 ${fmtMs(d.nodeAfterPause.pct.p50)} / p99 ${fmtMs(d.nodeAfterPause.pct.p99)} (n = ${d.n})` : '–'],
    ['upload (POST …/versions: validate, store, transpile), default pool', fmtRange(d.minWarmDefault.upload, fmtMs)],
    ['deploy (POST …/deployments: prime the code cache, warm min_warm, commit), default pool', fmtRange(d.minWarmDefault.deploy, fmtMs)],
    ['deploy, min_warm = 0', fmtRange(d.minWarm0.deploy, fmtMs)],
  ]);
}

function streamTable(s) {
  return mdTable(['server', 'body', 'MiB/s', 'RSS before', 'peak RSS (sampled)', 'VmHWM', 'echoed intact'], s.map((p) => [
    p.label, fmtMiB(p.bytes), fmtRange(p.mibPerS, (x) => x.toFixed(0)), fmtMiB(p.rssBeforeBytes), fmtMiB(p.rssPeakBytes), fmtMiB(p.hwmBytes), p.ok ? 'yes' : '**no**',
  ]));
}

function targetsTable(res, o) {
  const h = res.hello?.peers ?? [];
  const get = (id) => h.find((p) => p.id === id && p.status === 'ok');
  const rows = [];
  const wat = get('isola-wat');
  const js = get('isola-js');
  if (res.hello) {
    rows.push(ratioTarget('small-component hello ≥ 0.5× node:http', wat?.vsNode, (x) => x >= 0.5));
    rows.push(ratioTarget('small-component hello ahead of workerd (JS hello)', wat?.vsWorkerd, (x) => x > 1));
    rows.push(ratioTarget('JS component ≥ 5× jco serve (reused instance)', js?.vsJco, (x) => x >= 5));
  }
  if (res.cold) {
    const b = res.cold.firstWatBlank;
    const p50 = b.coldPct ? { median: b.coldPct.p50, min: b.coldPct.p50, max: b.coldPct.p50, n: 1 } : b.cold;
    rows.push(ratioTarget('first request to a small component with a blank sandbox: p50 < 5 ms (never-used function, min_warm = 0)', p50, (x) => x < 5000, fmtMs));
  }
  if (res.deploy) {
    const at = (x) => ({ median: x.firstPct.p50, min: x.firstPct.p50, max: x.firstPct.p50, n: 1 });
    rows.push(ratioTarget('first request to a just-deployed small component: p50 < 5 ms (default pool: the deploy binds a blank sandbox)', at(res.deploy.minWarmDefault), (x) => x < 5000, fmtMs));
    rows.push(ratioTarget('first request to a just-deployed small component: p50 < 5 ms (min_warm = 0: the request binds a blank sandbox)', at(res.deploy.minWarm0), (x) => x < 5000, fmtMs));
  }
  if (res.stream) {
    const isola = res.stream.filter((p) => p.id.startsWith('isola'));
    const worst = Math.max(...isola.map((p) => p.rssPeakBytes));
    const full = o.streamBytes >= 2 ** 30;
    rows.push(target(`1 GiB echo: server RSS < 300 MB (issue 2)${full ? '' : ' — quick run streams 256 MiB'}`, isola.every((p) => p.ok) ? worst < 300e6 : false, `peak ${fmtMiB(worst)}`));
  }
  if (res.fuel?.status === 'ok') rows.push(target('fuel metering overhead ≤ ×1.3 (geometric mean, thread CPU)', res.fuel.cpuGeomean <= 1.3, `${fmtRatio(res.fuel.cpuGeomean)} (wall ${fmtRatio(res.fuel.geomean)})`));
  else rows.push(['fuel metering overhead ≤ ×1.3', '–', 'not run']);
  if (res.noisy && !res.noisy.error) {
    const row = ratioTarget('noisy neighbour: light tenant p99 beside the hog ≤ 2× alone', res.noisy.p99Ratio, (x) => x <= 2);
    if (res.noisy.beside.non2xx) row[2] = `**not met** (${res.noisy.beside.non2xx} non-2xx)`;
    rows.push(row);
  }
  else rows.push(['noisy neighbour: light tenant p99 ≤ 2× alone', '–', 'not run']);
  return mdTable(['target', 'measured', 'status'], rows);
}


/** The Markdown report of one run (also re-rendered from a saved JSON with --report FILE). */
function render(res, o, info, started) {
  const loads = [
    ...(res.hello?.peers.flatMap((p) => p.runs?.map((r) => r.load1) ?? []) ?? []),
    ...(res.stream?.flatMap((p) => p.runs.map((r) => r.load1)) ?? []),
    ...(res.noisy?.rounds ? [...res.noisy.rounds.alone, ...res.noisy.rounds.beside].map((r) => r.load1) : []),
    ...(res.cold ? [res.cold.load1] : []),
  ];
  const md = [
    `## isola benchmarks — ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (${o.quick ? 'quick' : 'full'} run)`,
    '',
    `Machine: ${info.cpu}, ${info.cores} cores, ${info.memGiB} GiB; ${info.distro} (${info.os}); Node ${info.node}; ${info.loadGenerator}; workerd ${info.workerd}; jco ${info.jco}; isola ${info.commit} (${info.isolaSource}). Pinning: ${info.pinning}.`,
    `Load: wrk -t1 -c${o.connections}, ${o.helloSeconds} s per run after a ${o.warmupSeconds} s warm-up, ${o.helloRounds} rounds with the peers interleaved (noisy neighbour: ${o.rounds} rounds of ${o.seconds} s); median (min–max) over rounds; ratios taken within each round. 1-minute load average before the runs: ${loads.length ? `${Math.min(...loads)}–${Math.max(...loads)}` : '–'}.`,
    '',
  ];
  if (res.hello) md.push('### Hello: throughput and latency', '', helloTable(res.hello), '');
  if (res.cold) md.push('### Cold start', '', coldTable(res.cold), '');
  if (res.deploy) md.push(`### Deploy → first response (isola serve, admin API, load ${res.deploy.load1})`, '', deployTable(res.deploy), '');
  if (res.stream) md.push('### Body streaming (POST echoed back)', '', streamTable(res.stream), '');
  if (res.fuel?.status === 'ok') {
    md.push('### Fuel metering overhead (bench/fuel.mjs, CPU-bound C, best of ' + res.fuel.runs + ' fresh instances)', '', mdTable(['program', 'plain ms', 'fuel ms', '× wall', '× thread CPU'], [
      ...res.fuel.rows.map((r) => [r.name, r.baseMs.toFixed(1), r.fuelMs.toFixed(1), fmtRatio(r.ratio), fmtRatio(r.cpuRatio)]),
      ['**geometric mean**', '', '', `**${fmtRatio(res.fuel.geomean)}**`, `**${fmtRatio(res.fuel.cpuGeomean)}**`],
    ]), '');
  }
  if (res.noisy && !res.noisy.error) {
    const n = res.noisy;
    md.push(`### Noisy neighbour (tenant "hog": 16 requests in flight, ~${n.hogMs} ms CPU each; tenant "light": WAT hello on 4 connections)`, '', mdTable(['light tenant', 'req/s', 'p50', 'p99', 'non-2xx'], [
      ['alone', fmtRange(n.alone.rps, fmtInt), fmtRange(n.alone.p50, fmtMs), fmtRange(n.alone.p99, fmtMs), String(n.alone.non2xx)],
      [`beside the hog (hog: ${fmtRange(n.hog.rps, (x) => x.toFixed(1))} req/s, ${n.hog.non2xx} non-2xx)`, fmtRange(n.beside.rps, fmtInt), fmtRange(n.beside.p50, fmtMs), fmtRange(n.beside.p99, fmtMs), String(n.beside.non2xx)],
    ]), '');
  }
  md.push('### Not yet measured', '', mdTable(['scenario', 'status'], [
    ...(res.fuel?.status === 'ok' ? [] : [['metering: CPU-bound C suite (sha256, nbody, sort, fib) with and without fuel', res.fuel?.note ? `${res.fuel.status}: ${res.fuel.note}` : 'not run']]),
    ...(res.noisy && !res.noisy.error ? [] : [['noisy neighbour: light tenant p50/p99 alone and beside a CPU hog', res.noisy?.error ? `error: ${res.noisy.error}` : 'not run']]),
    ...(res.density && !res.density.error ? [] : [['density: functions deployed / kept warm within a memory budget', res.density?.error ? `error: ${res.density.error}` : 'not run']]),
  ]), '');
  if (res.density && !res.density.error) {
    const d = res.density;
    const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    md.push(`### Density (${d.deployed} WAT hello functions deployed, min_warm = 0, [sandboxes] max = ${d.maxSandboxes})`, '', mdTable(['what', 'measured'], [
      ['start → listening', `${Math.round(d.startMs)} ms`],
      ['RSS, nothing warm', mib(d.idleRss)],
      [`RSS after one request to each of ${d.touched} functions (≤ ${d.maxSandboxes} sandboxes live, LRU evictions)`, mib(d.busyRss)],
      ['RSS per warm sandbox', mib(d.rssPerSandboxBytes)],
      ['first request to a function, p50 / p99', `${d.firstRequestMs.p50.toFixed(1)} / ${d.firstRequestMs.p99.toFixed(1)} ms`],
      ['first request again after its sandbox and compiled code were evicted, p50', `${d.afterEvictionMs.p50.toFixed(1)} ms`],
      ['non-200 answers', String(d.bad)],
    ]), '');
  }
  if (res.cold) {
    md.push('### Density (what can be measured today)', '', mdTable(['what', 'measured'], [
      [`RSS growth per warm sandbox, WAT hello (${res.cold.firstWat.sandboxes} sandboxes started in one process)`, fmtMiB(res.cold.firstWat.rssPerSandboxBytes)],
      [`RSS growth per warm sandbox, JS hello (${res.cold.firstJs.sandboxes} sandboxes)`, fmtMiB(res.cold.firstJs.rssPerSandboxBytes)],
    ]), '');
  }
  md.push('### Targets', '', targetsTable(res, o), '');
  return md.join('\n');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.report) {
    // Re-render a saved run (e.g. after changing the tables) without running anything.
    const saved = JSON.parse(readFileSync(o.report, 'utf8'));
    process.stdout.write(render(saved.results, { ...saved.options, only: null }, saved.machine, new Date(saved.started)) + '\n');
    return;
  }
  const want = (s) => !o.only || o.only.has(s);
  const gen = await pickLoadGenerator();
  if (!gen) {
    log('No load generator: install wrk (apt-get install wrk) or autocannon (npm install --no-save autocannon).');
    process.exit(1);
  }
  const pin = o.pin && hasTaskset && os.cpus().length >= 2;
  const serverCpus = pin ? '0' : undefined;
  const loadCpus = pin ? '1' : undefined;
  rmSync(path.join(BUILD, 'logs'), { recursive: true, force: true });
  mkdirSync(path.join(BUILD, 'logs'), { recursive: true });
  log(`isola bench: ${o.quick ? 'quick' : 'full'} run, hello ${o.helloSeconds} s × ${o.helloRounds} rounds, noisy ${o.seconds} s × ${o.rounds} rounds, ${o.connections} connections, ${gen.name}; ${pin ? 'server CPU 0, load CPU 1' : 'unpinned'}`);
  log(`load average before: ${loadAvg().join(' ')}`);
  log('preparing artifacts…');
  const artifacts = await prepare({ isola: o.isola });
  // This process is a client too (cold start, deploy → first response): it runs on the load
  // generator's CPU, never beside the server (children it starts are pinned explicitly).
  if (pin) execFileSync('taskset', ['-a', '-p', '-c', loadCpus, String(process.pid)], { stdio: 'ignore' });
  const info = machine(gen, pin);
  log(`isola under test: ${info.commit} (${info.isolaSource})`);
  const started = new Date();
  const res = {};
  if (want('hello')) {
    log('scenario: hello throughput and latency');
    res.hello = await runHello(artifacts, { gen, seconds: o.helloSeconds, warmupSeconds: o.warmupSeconds, rounds: o.helloRounds, connections: o.connections, serverCpus, loadCpus, log });
  }
  if (want('cold')) {
    log('scenario: cold start');
    res.cold = await runColdStart(artifacts, { quick: o.quick, serverCpus, log });
  }
  if (want('deploy')) {
    log('scenario: deploy → first response (isola serve, admin API)');
    try {
      res.deploy = await runDeploy(artifacts, { quick: o.quick, serverCpus, log });
    } catch (e) {
      log(`  deploy failed: ${e.message.split('\n')[0]}`);
    }
  }
  if (want('stream')) {
    log('scenario: body streaming');
    res.stream = await runStreaming(artifacts, { bytes: o.streamBytes, reps: o.streamReps, serverCpus, loadCpus, log });
  }
  if (want('noisy')) {
    log('scenario: noisy neighbour');
    try {
      res.noisy = await runNoisy(artifacts.guests, artifacts, { gen, seconds: o.seconds, rounds: o.rounds, serverCpus, loadCpus, log });
    } catch (e) {
      log(`  noisy neighbour failed: ${e.message.split('\n')[0]}`);
      res.noisy = { error: e.message.split('\n')[0] };
    }
  }
  if (want('density')) {
    log('scenario: density (many functions, bounded sandboxes)');
    try {
      res.density = await runDensity(artifacts, { quick: o.quick, serverCpus, log });
    } catch (e) {
      log(`  density failed: ${e.message.split('\n')[0]}`);
      res.density = { error: e.message.split('\n')[0] };
    }
  }
  if (want('fuel')) {
    log('scenario: fuel metering overhead (bench/fuel.mjs)');
    res.fuel = await runMetering({ quick: o.quick, serverCpus, log });
  }
  const text = render(res, o, info, started);

  process.stdout.write(text + '\n');
  const dir = path.join(BENCH, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ started: started.toISOString(), options: { ...o, only: o.only ? [...o.only] : null }, machine: info, results: res }, null, 2));
  writeFileSync(path.join(dir, 'latest.md'), text + '\n');
  log(`wrote bench/results/latest.json and latest.md`);
}

main().catch((e) => {
  log(e.stack ?? String(e));
  process.exit(1);
});
