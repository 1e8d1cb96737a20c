// Builds (or finds) everything the benchmarks serve: isola's dist, the WAT test guests (bundled
// from test/guests with esbuild, since Node 20 cannot import .ts), the JS example components, the
// WAGI examples, and the workerd peer's files.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH = path.join(ROOT, 'bench');
export const BUILD = path.join(BENCH, '.build');
export const at = (...p) => path.join(ROOT, ...p);

/**
 * A bench script's usage text: its leading `//` comment (after the `#!` line), without the
 * slashes. `moduleUrl`: the script's import.meta.url.
 */
export function headerText(moduleUrl) {
  const lines = readFileSync(new URL(moduleUrl), 'utf8').split('\n').slice(1);
  const end = lines.findIndex((l) => !l.startsWith('//'));
  return lines.slice(0, end < 0 ? lines.length : end).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n';
}

function run(cmd, args, label) {
  process.stderr.write(`  building ${label}…\n`);
  execFileSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The isola CLI entry the benchmarks run (set by prepare). */
export let ISOLA_CLI = at('dist/cli/main.js');
/** What was benchmarked: { source, commit }. */
export let ISOLA_BUILD = { source: 'dist', commit: null };

/**
 * Builds isola for the benchmark. 'head' (default): the committed HEAD's src/ compiled into
 * bench/.build/sut-<commit>/ — other engineers' rebuilds of dist/ cannot change or crash a
 * server mid-run, and the numbers belong to a commit. 'dist': a snapshot copy of the working
 * tree's current dist/ (uncommitted changes included). Any other value is a git revision, built
 * like HEAD (for A/B comparisons of two commits).
 */
export function buildIsola(which) {
  const rev = which === 'head' || which === 'dist' ? 'HEAD' : which;
  const commit = execFileSync('git', ['rev-parse', '--short', `${rev}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
  if (which === 'dist') {
    if (!existsSync(at('dist/cli/main.js'))) run('npm', ['run', 'build'], 'isola (npm run build)');
    const dir = path.join(BUILD, 'sut-dist');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    cpSync(at('dist'), path.join(dir, 'dist'), { recursive: true });
    copyFileSync(at('package.json'), path.join(dir, 'package.json'));
    ISOLA_CLI = path.join(dir, 'dist/cli/main.js');
    ISOLA_BUILD = { source: 'working-tree dist/ (snapshot)', commit: `${commit}+worktree` };
    return;
  }
  const dir = path.join(BUILD, `sut-${commit}`);
  if (!existsSync(path.join(dir, 'dist/cli/main.js'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    process.stderr.write(`  building isola ${commit} (git archive + tsc)…\n`);
    execFileSync('sh', ['-c', `git archive ${commit} src tsconfig.json package.json | tar -x -C '${dir}'`], { cwd: ROOT });
    try {
      execFileSync(at('node_modules/.bin/tsc'), ['-p', path.join(dir, 'tsconfig.json')], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    } catch (e) {
      // An older commit may not type-check against today's node_modules; tsc still emits.
      if (!existsSync(path.join(dir, 'dist/cli/main.js'))) throw e;
    }
  }
  ISOLA_CLI = path.join(dir, 'dist/cli/main.js');
  ISOLA_BUILD = { source: rev === 'HEAD' ? 'committed HEAD, built apart' : `commit ${which}, built apart`, commit };
}

/** Returns the paths of every artifact; `log` gets progress lines. Throws with a hint on failure. */
export async function prepare({ isola = 'head' } = {}) {
  mkdirSync(BUILD, { recursive: true });
  buildIsola(isola);

  // WAT guests: bundle test/guests/index.ts into the repo (so its packages resolve), then build.
  const bundle = path.join(BUILD, 'guests.mjs');
  run(at('node_modules/.bin/esbuild'), [
    'bench/lib/guests-entry.mjs', '--bundle', '--platform=node', '--format=esm', '--packages=external',
    `--outfile=${bundle}`, '--log-level=warning',
  ], 'WAT guests bundle');
  const guests = await import(bundle);
  const watHello = await guests.buildGuest('hello');
  const watEcho = await guests.buildGuest('echo');

  // JS example components (componentize-js, ~25 s each when not cached).
  for (const name of ['hello', 'echo']) {
    if (!existsSync(at(`examples/${name}/${name}.wasm`))) run('node', ['scripts/build-examples.mjs', name], `examples/${name} (componentize-js, ~25 s)`);
  }

  // WAGI examples: WAT needs only wabt; C needs clang + wasi-libc.
  let wagiWat = at('examples/wagi-wat/hello.wasm');
  let wagiC = at('examples/wagi-c/hello.wasm');
  if ((!existsSync(wagiWat) || !existsSync(wagiC)) && existsSync(at('scripts/build-wagi-examples.mjs'))) {
    try {
      run('node', ['scripts/build-wagi-examples.mjs'], 'WAGI examples');
    } catch (e) {
      process.stderr.write(`  WAGI examples did not build (${e.message.split('\n')[0]})\n`);
    }
  }
  if (!existsSync(wagiWat)) wagiWat = null;
  if (!existsSync(wagiC)) wagiC = null;

  // workerd peer: JS files copied, the Wasm assembled from WAT.
  const wd = path.join(BUILD, 'workerd');
  mkdirSync(wd, { recursive: true });
  for (const f of ['hello.js', 'hello-wasm.js']) copyFileSync(path.join(BENCH, 'servers/workerd', f), path.join(wd, f));
  const { default: wabtInit } = await import('wabt');
  const wabt = await wabtInit();
  const mod = wabt.parseWat('hello.wat', readFileSync(path.join(BENCH, 'servers/workerd/hello.wat'), 'utf8'), { bulk_memory: true });
  mod.resolveNames();
  mod.validate();
  writeFileSync(path.join(wd, 'hello.wasm'), mod.toBinary({}).buffer);
  mod.destroy();

  const workerd = at('node_modules/workerd/bin/workerd');
  return {
    guests,
    watHello,
    watEcho,
    jsHello: at('examples/hello/hello.wasm'),
    jsEcho: at('examples/echo/echo.wasm'),
    wagiWat,
    wagiC,
    workerdBin: existsSync(workerd) ? workerd : null,
    workerdDir: wd,
    jcoBin: existsSync(at('node_modules/@bytecodealliance/jco/dist/jco.js')) ? at('node_modules/@bytecodealliance/jco/dist/jco.js') : null,
  };
}
