#!/usr/bin/env node
// Builds a JavaScript or TypeScript guest into a wasi:http component:
//
//   node scripts/build-component.mjs <entry> <out.wasm> [--force]
//
// A thin wrapper over `isola build` (the compiled src/build/ in dist/, so run `npm run build`
// first): the entry is bundled with esbuild (the SDK's adapter in front: a Workers-style
// `export default { fetch }` or an explicit `incomingHandler` export both work), then built with
// componentize-js 0.23 against the engine's wasi:http version. Builds are cached by the bundle's
// hash (a custom section `isola:build-hash` in the output, plus a shared cache of recent builds).

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildFunction } from '../dist/build/index.js';

/**
 * Builds `entry` into a component at `out`, unless `out` already holds a build of the same bundle.
 *
 * @param {string} entry path of the guest's entry module (.js or .ts)
 * @param {string} out path of the component to write
 * @param {{ force?: boolean, log?: (line: string) => void }} [options] `force` rebuilds even when
 *   up to date; `log` receives progress lines (default: none)
 * @returns {Promise<{ out: string, built: boolean, hash: string, ms: number, bytes: number }>}
 *   `built` is false when the output was up to date or copied from the shared cache
 * @throws {import('../dist/errors.js').IsolaError} ERR_BUILD_FAILED naming the file and line
 */
export async function buildComponent(entry, out, options = {}) {
  const r = await buildFunction(entry, out, options);
  return { out: r.out, built: r.status === 'built', hash: r.hash, ms: r.ms, bytes: r.bytes };
}

/** Command-line entry: `build-component.mjs <entry> <out.wasm> [--force]`. */
async function main(argv) {
  const force = argv.includes('--force');
  const args = argv.filter((a) => a !== '--force');
  if (args.length !== 2) {
    console.error('usage: node scripts/build-component.mjs <entry> <out.wasm> [--force]');
    return 2;
  }
  try {
    await buildComponent(args[0], args[1], { force, log: (line) => console.error(line) });
    return 0;
  } catch (err) {
    console.error(`build-component: ${err?.user ? err.message : (err?.stack ?? err)}`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
