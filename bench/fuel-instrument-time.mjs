#!/usr/bin/env node
// How long fuel instrumentation takes (binaryen parse, instrument, emit+validate) on real core
// modules, e.g. the SpiderMonkey core module of a componentize-js component.
//
// Usage: npm run build && node bench/fuel-instrument-time.mjs [--all] [core.wasm ...]
// Without paths it takes the largest transpiled core module under .isola/artifacts/ (written by
// `isola dev`), or all of them with --all.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { instrumentFuelWithStats } from '../dist/artifacts/fuel.js';

const all = process.argv.includes('--all');
let files = process.argv.slice(2).filter((a) => a !== '--all');
if (files.length === 0) {
  const root = '.isola/artifacts';
  try {
    for (const d of readdirSync(root)) {
      for (const f of readdirSync(join(root, d))) if (f.endsWith('.core.wasm')) files.push(join(root, d, f));
    }
  } catch {
    /* no artifacts yet */
  }
  files.sort((a, b) => statSync(b).size - statSync(a).size);
  if (!all) files = files.slice(0, 1);
}
if (files.length === 0) {
  console.error('no core modules: pass .wasm paths, or run `node dist/cli/main.js dev` once to fill .isola/artifacts');
  process.exit(1);
}
const mb = (n) => `${(n / 2 ** 20).toFixed(2)} MiB`;
for (const file of files) {
  const bytes = new Uint8Array(readFileSync(file));
  const { bytes: out, stats } = instrumentFuelWithStats(bytes);
  const { parse, instrument, emit, total } = stats.ms;
  console.log(`${file}: ${mb(bytes.length)} → ${mb(out.length)} (+${((out.length / bytes.length - 1) * 100).toFixed(1)}%); `
    + `${stats.functions} functions (${stats.privateFunctions} private), ${stats.charges} charges, ${stats.checks} checks; `
    + `parse ${parse.toFixed(0)} ms, instrument ${instrument.toFixed(0)} ms, emit+validate ${emit.toFixed(0)} ms, total ${total.toFixed(0)} ms`);
}
