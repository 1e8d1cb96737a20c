#!/usr/bin/env node
// Builds the bundled JS example functions into components:
//
//   node scripts/build-examples.mjs [--force] [name…]
//
// builds examples/<name>/index.js → examples/<name>/<name>.wasm for each name given, or for every
// examples/<name>/ that has an index.js when none is. Unchanged examples are not rebuilt (see
// build-component.mjs for the cache).

import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BuildError, buildComponent } from './build-component.mjs';

/** The examples directory of this checkout. */
export const EXAMPLES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'examples');

/**
 * Lists the JS examples: the names of the folders under examples/ that hold an index.js.
 *
 * @returns {Promise<string[]>} sorted names
 */
export async function listExamples() {
  const entries = await readdir(EXAMPLES_DIR, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && existsSync(join(EXAMPLES_DIR, e.name, 'index.js')))
    .map((e) => e.name)
    .sort();
}

/**
 * Builds the named examples (all when `names` is empty), one after the other.
 *
 * @param {string[]} [names] example names (folders under examples/)
 * @param {{ force?: boolean, log?: (line: string) => void }} [options] passed to buildComponent
 * @returns {Promise<Array<{ name: string, out: string, built: boolean, hash: string, ms: number, bytes: number }>>}
 * @throws {BuildError} for the first example that does not build (or does not exist)
 */
export async function buildExamples(names = [], options = {}) {
  const wanted = names.length > 0 ? names : await listExamples();
  const results = [];
  for (const name of wanted) {
    const entry = join(EXAMPLES_DIR, name, 'index.js');
    if (!/^[A-Za-z0-9._-]+$/.test(name) || !existsSync(entry)) {
      throw new BuildError(entry, `no such example: ${name}`);
    }
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
    if (err instanceof BuildError) {
      console.error(`build-examples: failed to build ${err.entry}:\n${err.detail}`);
    } else {
      console.error(`build-examples: ${err?.stack ?? err}`);
    }
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
