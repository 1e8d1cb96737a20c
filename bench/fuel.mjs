#!/usr/bin/env node
// Fuel metering overhead on a CPU-bound C suite (issue 6 target: geometric mean ≤ ×1.3).
//
// Builds bench/fuel/*.c with Debian clang for wasm32-wasi (-O2), instruments each module with
// dist/artifacts/fuel.js, and runs both versions' `_start` under a minimal WASI preview 1 stub
// (fd_write to a buffer, proc_exit; everything else answers ENOSYS), alternating, best of N fresh
// instances each. Checks that outputs are identical and that the fuel count is the same on every
// run, then prints per-program ratios and their geometric mean.
//
// Usage: npm run build && node bench/fuel.mjs [--runs N] [--merge K] [--only name,name] [--json]
import { closeSync, mkdirSync, openSync, readdirSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileC } from '../scripts/build-wagi-examples.mjs';
import { instrumentFuelWithStats } from '../dist/artifacts/fuel.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(opt('runs', 7));
const merge = opt('merge', undefined);
const only = opt('only', '')?.split(',').filter(Boolean) ?? [];
const json = args.includes('--json');

const srcDir = fileURLToPath(new URL('./fuel/', import.meta.url));
const outDir = join(tmpdir(), 'isola-bench-fuel');
mkdirSync(outDir, { recursive: true });

class Exit extends Error {
  constructor(code) {
    super(`exit ${code}`);
    this.code = code;
  }
}

/** A WASI preview 1 import object just big enough for printf and exit. */
function wasiStub(getMemory, out) {
  const decoder = new TextDecoder();
  const fns = {
    fd_write(fd, iovs, count, written) {
      const view = new DataView(getMemory().buffer);
      let n = 0;
      for (let i = 0; i < count; i++) {
        const ptr = view.getUint32(iovs + 8 * i, true);
        const len = view.getUint32(iovs + 8 * i + 4, true);
        out.push(decoder.decode(new Uint8Array(getMemory().buffer, ptr, len)));
        n += len;
      }
      view.setUint32(written, n, true);
      return 0;
    },
    proc_exit(code) {
      throw new Exit(code);
    },
  };
  return new Proxy(fns, { get: (t, name) => t[name] ?? (() => 52 /* ENOSYS */) });
}

// This thread's CPU time (Linux): other processes on a loaded machine inflate wall time, not this.
let schedstat = -1;
try { schedstat = openSync('/proc/thread-self/schedstat', 'r'); } catch { /* not Linux: wall time only */ }
const statBuf = Buffer.alloc(128);
function cpuMs() {
  if (schedstat < 0) return NaN;
  const n = readSync(schedstat, statBuf, 0, statBuf.length, 0);
  return Number(statBuf.toString('latin1', 0, n).split(' ')[0]) / 1e6;
}

/** Runs `_start` on a fresh instance; returns [wall ms, stdout, fuel used or null, thread CPU ms]. */
async function run(module, metered) {
  const out = [];
  let memory;
  const fuel = new WebAssembly.Global({ value: 'i64', mutable: true }, 1n << 62n);
  const imports = { wasi_snapshot_preview1: wasiStub(() => memory, out) };
  if (metered) imports.isola = { fuel };
  const instance = await WebAssembly.instantiate(module, imports);
  memory = instance.exports.memory;
  const c = cpuMs();
  const t = performance.now();
  try {
    instance.exports._start();
  } catch (err) {
    if (!(err instanceof Exit) || err.code !== 0) throw err;
  }
  const ms = performance.now() - t;
  const cpu = cpuMs() - c;
  return [ms, out.join(''), metered ? (1n << 62n) - fuel.value : null, cpu];
}

const programs = readdirSync(srcDir).filter((f) => f.endsWith('.c')).map((f) => basename(f, '.c'))
  .filter((p) => only.length === 0 || only.includes(p)).sort();
const rows = [];
for (const name of programs) {
  const wasmPath = join(outDir, `${name}.wasm`);
  compileC(join(srcDir, `${name}.c`), wasmPath);
  const bytes = new Uint8Array(await readFile(wasmPath));
  const { bytes: metered, stats } = instrumentFuelWithStats(bytes, merge === undefined ? {} : { mergeLimit: Number(merge) });
  const base = await WebAssembly.compile(bytes);
  const fuelMod = await WebAssembly.compile(metered);
  let bestBase = Infinity;
  let bestFuel = Infinity;
  let cpuBase = Infinity;
  let cpuFuel = Infinity;
  let expected = null;
  const fuels = new Set();
  for (let i = 0; i < runs; i++) {
    const [tb, ob, , cb] = await run(base, false);
    const [tf, of, used, cf] = await run(fuelMod, true);
    cpuBase = Math.min(cpuBase, cb);
    cpuFuel = Math.min(cpuFuel, cf);
    expected ??= ob;
    if (ob !== expected || of !== expected) throw new Error(`${name}: output differs:\n${ob}\n${of}`);
    fuels.add(used);
    bestBase = Math.min(bestBase, tb);
    bestFuel = Math.min(bestFuel, tf);
  }
  if (fuels.size !== 1) throw new Error(`${name}: fuel differs between runs: ${[...fuels].join(', ')}`);
  const fuel = [...fuels][0];
  rows.push({
    name, baseMs: bestBase, fuelMs: bestFuel, ratio: bestFuel / bestBase, fuel: Number(fuel),
    cpuBaseMs: cpuBase, cpuFuelMs: cpuFuel, cpuRatio: cpuFuel / cpuBase,
    sizeIn: bytes.length, sizeOut: metered.length, instrumentMs: stats.ms.total, charges: stats.charges, checks: stats.checks,
    output: expected.trim(),
  });
}

const gm = (key) => Math.exp(rows.reduce((s, r) => s + Math.log(r[key]), 0) / rows.length);
const geomean = gm('ratio');
const cpuGeomean = gm('cpuRatio');
if (json) {
  console.log(JSON.stringify({ runs, mergeLimit: merge === undefined ? 'default' : Number(merge), node: process.version, rows, geomean, cpuGeomean }, null, 2));
} else {
  const pad = (s, n) => String(s).padStart(n);
  console.log(`fuel metering overhead: best of ${runs} fresh instances, ${process.version}, mergeLimit ${merge ?? 'default'}`);
  console.log(`${'program'.padEnd(8)}${pad('plain ms', 10)}${pad('fuel ms', 10)}${pad('ratio', 8)}${pad('cpu ratio', 11)}${pad('fuel units', 14)}${pad('units/ns', 10)}${pad('size', 8)}${pad('instr ms', 10)}`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(8)}${pad(r.baseMs.toFixed(1), 10)}${pad(r.fuelMs.toFixed(1), 10)}${pad(`×${r.ratio.toFixed(3)}`, 8)}${pad(`×${r.cpuRatio.toFixed(3)}`, 11)}`
      + `${pad(r.fuel.toLocaleString('en'), 14)}${pad((r.fuel / (r.baseMs * 1e6)).toFixed(2), 10)}`
      + `${pad(`+${((r.sizeOut / r.sizeIn - 1) * 100).toFixed(0)}%`, 8)}${pad(r.instrumentMs.toFixed(0), 10)}`);
  }
  console.log(`geometric mean ×${geomean.toFixed(3)} wall, ×${cpuGeomean.toFixed(3)} thread CPU (target ≤ ×1.3: ${geomean <= 1.3 ? 'met' : 'NOT met'})`);
}
