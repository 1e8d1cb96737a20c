#!/usr/bin/env node
// Builds the WAGI examples (examples/wagi-c, examples/wagi-wat) and exports the two build steps
// for tests that build their guests from source (src/sandbox/wagi/run.test.ts):
//   compileC   C → wasm32-wasi command module with Debian's clang + wasi-libc
//              (apt: clang lld wasi-libc libclang-rt-14-dev-wasm32)
//   assembleWat WAT → Wasm with the `wabt` npm package (no system wabt needed)
// Usage: node scripts/build-wagi-examples.mjs [wagi-c] [wagi-wat]   (both when none is named)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

/** true when Debian's clang for wasm32-wasi can be run. */
function hasClang() {
  try {
    execFileSync('clang', ['--version'], { stdio: 'ignore' });
    return existsSync('/usr/include/wasm32-wasi/stdio.h');
  } catch {
    return false;
  }
}

/** The clang command line for a WASI preview 1 command (as in FACTS.md). */
export const CLANG_WASI = ['--target=wasm32-wasi', '--sysroot=/usr', '-O2'];

/**
 * Compiles one C file to a WASI command module at `out`. `flags` are appended (e.g.
 * `-Wl,--max-memory=67108864` to declare a memory maximum). Throws with clang's stderr on failure,
 * or a hint when clang is missing.
 */
export function compileC(src, out, flags = []) {
  try {
    execFileSync('clang', [...CLANG_WASI, ...flags, '-o', out, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (err.code === 'ENOENT') {
      throw new Error('clang not found: install clang lld wasi-libc libclang-rt-14-dev-wasm32 (Debian)');
    }
    throw new Error(`clang failed on ${src}:\n${err.stderr?.toString() ?? err.message}`);
  }
}

let wabt;
/** Assembles one WAT file to Wasm at `out` with the wabt npm package. Throws on a syntax error. */
export async function assembleWat(src, out) {
  wabt ??= await wabtInit();
  const mod = wabt.parseWat(basename(src), readFileSync(src, 'utf8'));
  try {
    mod.resolveNames();
    mod.validate();
    writeFileSync(out, mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = new URL('../examples/', import.meta.url);
  const at = (p) => fileURLToPath(new URL(p, root));
  const wanted = process.argv.slice(2);
  const want = (name) => wanted.length === 0 || wanted.includes(name);
  if (want('wagi-c')) {
    if (hasClang()) {
      // 64 MiB declared maximum: the guest's memory cap travels in the module itself.
      compileC(at('wagi-c/hello.c'), at('wagi-c/hello.wasm'), ['-Wl,--max-memory=67108864', '-s']);
      console.log('built examples/wagi-c/hello.wasm');
    } else if (existsSync(at('wagi-c/hello.wasm'))) {
      console.log('clang not found: using the committed examples/wagi-c/hello.wasm (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 to rebuild it)');
    } else {
      console.error('clang not found: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32');
      process.exit(1);
    }
  }
  if (want('wagi-wat')) {
    await assembleWat(at('wagi-wat/hello.wat'), at('wagi-wat/hello.wasm'));
    console.log('built examples/wagi-wat/hello.wasm');
  }
}
