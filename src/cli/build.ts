/**
 * `isola build <entry> [-o out.wasm] [--force]`: bundle a function written Workers-style
 * (`export default { fetch(request, env, ctx) }`, TypeScript or JavaScript, a Hono app included)
 * and build it into a wasi:http component with componentize-js. Cached by the bundle's hash.
 * Progress goes to stderr; nothing to stdout but the output's path.
 */
import type { Command } from 'commander';
import { buildFunction, defaultOutput } from '../build/index.js';

/** Options of `isola build`, as commander parses them. */
export interface BuildCommandOptions {
  out?: string;
  force?: boolean;
}

/** Registers `isola build` on the program. */
export function registerBuild(program: Command): void {
  program
    .command('build')
    .description('build a function (TypeScript or JavaScript, export default { fetch }) into a wasi:http component')
    .argument('<entry>', 'the function\'s entry module, e.g. src/index.ts')
    .option('-o, --out <file>', 'where to write the component (default: dist/<entry name>.wasm)')
    .option('--force', 'build even when the output is up to date')
    .addHelpText(
      'after',
      '\nExamples:\n  isola build src/index.ts -o dist/hello.wasm\n\n' +
        'The entry is bundled with esbuild (the SDK inlined; Node.js built-ins are errors) and built with\n' +
        'componentize-js (10-25 s). An unchanged bundle is not rebuilt. Types are not checked: run tsc --noEmit.',
    )
    .action((entry: string, opts: BuildCommandOptions) => build(entry, opts));
}

async function build(entry: string, opts: BuildCommandOptions): Promise<void> {
  const out = opts.out ?? defaultOutput(entry);
  const result = await buildFunction(entry, out, { force: opts.force === true, log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${result.out}\n`);
}
