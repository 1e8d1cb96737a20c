/**
 * Builds SDK guests for the tests with `isola build`'s engine (dist/build, compiled by `npm test`'s
 * pretest), into stable paths under node_modules/.cache/isola-test so that an unchanged guest is
 * never rebuilt: the output's build-hash section, then the shared component cache, answer first.
 */
import { join } from 'node:path';
import { ROOT } from './server.js';

/** Where the tests keep their built guests and scratch projects (gitignored, under node_modules). */
export const TEST_CACHE = join(ROOT, 'node_modules', '.cache', 'isola-test');

interface BuildResult {
  out: string;
  status: 'built' | 'cached' | 'up-to-date';
  ms: number;
}

/** Builds `entry` (relative to the repo root) into TEST_CACHE/<name>.wasm; returns the result. */
export async function buildSdkGuest(entry: string, name: string): Promise<BuildResult> {
  const { buildFunction } = (await import(join(ROOT, 'dist', 'build', 'index.js'))) as {
    buildFunction(entry: string, out: string, opts?: { cwd?: string }): Promise<BuildResult>;
  };
  return buildFunction(join(ROOT, entry), join(TEST_CACHE, `${name}.wasm`), { cwd: ROOT });
}
