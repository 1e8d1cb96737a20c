/**
 * The bundled JS examples (examples/hello, examples/echo) build into real wasi:http components with
 * the project's own script (scripts/build-examples.mjs; a cache hit is fine), and each output is a
 * component that exports wasi:http/incoming-handler@0.2.x.
 */
import { readFile } from 'node:fs/promises';
import { componentWit, transpile } from '@bytecodealliance/jco';
import { beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ESM script without type declarations
import { buildExamples } from '../scripts/build-examples.mjs';

const EXAMPLES = ['hello', 'echo'];

interface BuildResult {
  name: string;
  out: string;
  built: boolean;
  ms: number;
}

let results: BuildResult[] = [];

beforeAll(async () => {
  results = await buildExamples(EXAMPLES);
}, 120_000);

describe.each(EXAMPLES)('examples/%s', (name) => {
  /** The build result of this example. */
  const result = () => {
    const r = results.find((x) => x.name === name);
    if (!r) throw new Error(`${name} was not built`);
    return r;
  };

  it('is a component that exports wasi:http/incoming-handler@0.2.x', async () => {
    const bytes = await readFile(result().out);
    const { exports, imports } = await transpile(bytes, { name, instantiation: { tag: 'async' } });
    const exported = exports.map(([exportName]) => exportName);
    expect(exported.some((e) => /^wasi:http\/incoming-handler@0\.2\.\d+$/.test(e))).toBe(true);
    expect(imports).toContain('wasi:http/types');
    // Only standard WASI interfaces: nothing a wasi:http host could not offer.
    expect(imports.filter((i) => !i.startsWith('wasi:'))).toEqual([]);
  }, 120_000);

  it('imports wasi:http at the version it exports (the engine’s)', async () => {
    const wit = await componentWit(await readFile(result().out));
    const exported = /export wasi:http\/incoming-handler@(0\.2\.\d+);/.exec(wit)?.[1];
    expect(exported).toBeDefined();
    expect(wit).toContain(`import wasi:http/types@${exported};`);
  }, 120_000);

  it('is not rebuilt when unchanged', async () => {
    const [again] = await buildExamples([name]);
    expect(again.built).toBe(false);
    expect(again.out).toBe(result().out);
  }, 120_000);
});
