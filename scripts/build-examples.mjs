#!/usr/bin/env node
// Builds the bundled JavaScript and TypeScript example functions into components:
//
//   node scripts/build-examples.mjs [--force] [name…]
//
// builds examples/<name>/index.js or examples/<name>/src/index.ts → examples/<name>/<name>.wasm
// for each name given, or for every example folder that has one when none is. Unchanged examples
// are not rebuilt (see build-component.mjs for the cache).

import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildComponent } from './build-component.mjs';

/** The examples directory of this checkout. */
export const EXAMPLES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'examples');

/** The entry files an example folder may have, in order of preference. */
const ENTRIES = ['index.js', 'src/index.ts'];

/**
 * The entry of example `name` (absolute path), or undefined when it has none.
 *
 * @param {string} name a folder under examples/
 * @returns {string | undefined}
 */
export function exampleEntry(name) {
  return ENTRIES.map((e) => join(EXAMPLES_DIR, name, e)).find((p) => existsSync(p));
}

/**
 * Lists the JS/TS examples: the folders under examples/ that hold an index.js or src/index.ts.
 *
 * @returns {Promise<string[]>} sorted names
 */
export async function listExamples() {
  const entries = await readdir(EXAMPLES_DIR, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && exampleEntry(e.name) !== undefined)
    .map((e) => e.name)
    .sort();
}

/**
 * Builds the named examples (all when `names` is empty), one after the other.
 *
 * @param {string[]} [names] example names (folders under examples/)
 * @param {{ force?: boolean, log?: (line: string) => void }} [options] passed to buildComponent
 * @returns {Promise<Array<{ name: string, out: string, built: boolean, hash: string, ms: number, bytes: number }>>}
 * @throws {Error} for the first example that does not build (an IsolaError naming file and line) or does not exist
 */
export async function buildExamples(names = [], options = {}) {
  const wanted = names.length > 0 ? names : await listExamples();
  const results = [];
  for (const name of wanted) {
    const entry = /^[A-Za-z0-9._-]+$/.test(name) ? exampleEntry(name) : undefined;
    if (entry === undefined) throw new Error(`no such example: ${name} (expected examples/${name}/index.js or src/index.ts)`);
    const result = await buildComponent(entry, join(EXAMPLES_DIR, name, `${name}.wasm`), options);
    results.push({ name, ...result });
  }
  return results;
}

/** Command-line entry: `build-examples.mjs [--force] [name…]`. */
async function main(argv) {
  const force = argv.includes('--force');
  const names = argv.filter((a) => a !== '--force');
  try {
    const started = performance.now();
    const results = await buildExamples(names, { force, log: (line) => console.error(line) });
    const built = results.filter((r) => r.built).length;
    console.error(
      `${results.length} example(s), ${built} built, ${results.length - built} up to date, ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    return 0;
  } catch (err) {
    console.error(`build-examples: ${err?.user || !err?.stack ? (err?.message ?? err) : err.stack}`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
