// Fuel instrumentation on real modules: WAT assembled with wabt and C compiled with Debian clang
// (wasm32-wasi). Checks determinism, exhaustion traps, monotonicity, and that outputs are unchanged.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wabtInit from 'wabt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileC } from '../../scripts/build-wagi-examples.mjs';
import { IsolaError } from '../errors.js';
import { FUEL_IMPORT, instrumentFuel, instrumentFuelWithStats, type FuelOptions } from './fuel.js';

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
let wabt: Wabt;
let dir: string;

function wat(text: string): Uint8Array {
  const mod = wabt.parseWat('test.wat', text, { bulk_memory: true, reference_types: true, multi_value: true });
  try {
    mod.resolveNames();
    mod.validate();
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}

/** A C file compiled as a library (exports only, no libc start-up). */
function cLibrary(name: string, source: string): Uint8Array {
  const src = join(dir, `${name}.c`);
  writeFileSync(src, source);
  compileC(src, join(dir, `${name}.wasm`), ['-nostartfiles', '-Wl,--no-entry']);
  return new Uint8Array(readFileSync(join(dir, `${name}.wasm`)));
}

/** A C file compiled as a WASI command (`_start`, libc, memory export). */
function cCommand(name: string, source: string): Uint8Array {
  const src = join(dir, `${name}.c`);
  writeFileSync(src, source);
  compileC(src, join(dir, `${name}.wasm`));
  return new Uint8Array(readFileSync(join(dir, `${name}.wasm`)));
}

const LOTS = 1n << 60n;

interface Metered {
  instance: WebAssembly.Instance;
  fuel: WebAssembly.Global;
  /** Fuel used since the last reset. */
  used(): bigint;
  reset(to?: bigint): void;
}

async function meter(bytes: Uint8Array, imports: WebAssembly.Imports = {}, start = LOTS): Promise<Metered> {
  const fuel = new WebAssembly.Global({ value: 'i64', mutable: true }, start);
  const { instance } = await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>, { ...imports, [FUEL_IMPORT.module]: { [FUEL_IMPORT.name]: fuel } });
  let base = start;
  return {
    instance, fuel,
    used: () => base - (fuel.value as bigint),
    reset(to = LOTS) { base = to; fuel.value = to; },
  };
}

type Exports = Record<string, (...args: number[]) => number>;
const exportsOf = (i: WebAssembly.Instance): Exports => i.exports as unknown as Exports;

/** Calls `fn` on `runs` fresh instances; returns the fuel each run used. */
async function fuelPerRun(bytes: Uint8Array, fn: string, args: number[], runs = 10): Promise<bigint[]> {
  const out: bigint[] = [];
  for (let i = 0; i < runs; i++) {
    const m = await meter(bytes);
    exportsOf(m.instance)[fn]!(...args);
    out.push(m.used());
  }
  return out;
}

const LOOP_WAT = `
(module
  (memory (export "memory") 1)
  ;; loop-heavy: sum of i*i for i < n, with a branch in the body
  (func (export "squares") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.and (local.get $i) (i32.const 1))
          (then (local.set $s (i32.add (local.get $s) (i32.mul (local.get $i) (local.get $i)))))
          (else (local.set $s (i32.sub (local.get $s) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $s))
  ;; function-heavy: naive recursion, no loops at all
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "spin") (loop $forever (br $forever)))
  (func (export "fill") (param $n i32) (memory.fill (i32.const 0) (i32.const 7) (local.get $n)))
)`;

const C_LIB = `
#include <stdint.h>
// function-heavy
__attribute__((export_name("fib"))) uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
// loop-heavy: a small hash over a generated buffer, nested loops and data-dependent branches
static uint8_t buf[65536];
__attribute__((export_name("hash"))) uint32_t hash(uint32_t n) {
  uint32_t x = 2463534242u, h = 2166136261u;
  if (n > sizeof buf) n = sizeof buf;
  for (uint32_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; buf[i] = (uint8_t)x; }
  for (int round = 0; round < 4; round++)
    for (uint32_t i = 0; i < n; i++) { h = (h ^ buf[i]) * 16777619u; if (h & 1) h += round; }
  return h;
}
// bubble sort: quadratic, branchy
static int32_t v[4096];
__attribute__((export_name("sort"))) int32_t sort(uint32_t n) {
  uint32_t x = 88172645u;
  if (n > 4096) n = 4096;
  for (uint32_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; v[i] = (int32_t)(x % 100000u); }
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j + 1 < n - i; j++)
      if (v[j] > v[j + 1]) { int32_t t = v[j]; v[j] = v[j + 1]; v[j + 1] = t; }
  return n ? v[0] * 7 + v[n / 2] * 3 + v[n - 1] : 0;
}
`;

const C_COMMAND = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static unsigned collatz(unsigned long long n) { unsigned s = 0; while (n != 1) { n = n & 1 ? 3 * n + 1 : n / 2; s++; } return s; }
int main(void) {
  char *p = malloc(1000);
  unsigned best = 0, arg = 0;
  for (unsigned i = 1; i < 20000; i++) { unsigned s = collatz(i); if (s > best) { best = s; arg = i; } }
  memset(p, 'x', 999); p[999] = 0;
  printf("collatz %u %u %zu\\n", arg, best, strlen(p));
  return 0;
}
`;

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Runs a WASI command's `_start` with a minimal preview 1 stub; returns stdout and fuel used (null if unmetered). */
async function runCommand(bytes: Uint8Array, metered: boolean): Promise<{ stdout: string; fuel: bigint | null }> {
  let memory: WebAssembly.Memory | undefined;
  const chunks: string[] = [];
  const fns: Record<string, (...a: number[]) => number> = {
    fd_write(_fd, iovs, count, written) {
      const view = new DataView(memory!.buffer);
      let n = 0;
      for (let i = 0; i < count; i++) {
        const ptr = view.getUint32(iovs + 8 * i, true);
        const len = view.getUint32(iovs + 8 * i + 4, true);
        chunks.push(new TextDecoder().decode(new Uint8Array(memory!.buffer, ptr, len)));
        n += len;
      }
      view.setUint32(written, n, true);
      return 0;
    },
    proc_exit(code) {
      throw new Exit(code);
    },
  };
  const wasi = new Proxy(fns, { get: (t, name: string) => t[name] ?? (() => 52) });
  const fuel = new WebAssembly.Global({ value: 'i64', mutable: true }, LOTS);
  const imports: WebAssembly.Imports = { wasi_snapshot_preview1: wasi };
  if (metered) imports[FUEL_IMPORT.module] = { [FUEL_IMPORT.name]: fuel };
  const { instance } = await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>, imports);
  memory = instance.exports.memory as WebAssembly.Memory;
  try {
    (instance.exports._start as () => void)();
  } catch (err) {
    if (!(err instanceof Exit) || err.code !== 0) throw err;
  }
  return { stdout: chunks.join(''), fuel: metered ? LOTS - (fuel.value as bigint) : null };
}

beforeAll(async () => {
  wabt = await wabtInit();
  dir = mkdtempSync(join(tmpdir(), 'isola-fuel-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('instrumentFuel on WAT modules', () => {
  let plain: Uint8Array;
  let metered: Uint8Array;
  beforeAll(() => {
    plain = wat(LOOP_WAT);
    metered = instrumentFuel(plain, { validate: true });
  });

  it('imports isola.fuel as a mutable i64 global and keeps the exports', () => {
    const mod = new WebAssembly.Module(metered as Uint8Array<ArrayBuffer>);
    expect(WebAssembly.Module.imports(mod)).toContainEqual({ module: 'isola', name: 'fuel', kind: 'global' });
    expect(WebAssembly.Module.exports(mod).map((e) => e.name).sort()).toEqual(['fib', 'fill', 'memory', 'spin', 'squares']);
  });

  it('counts the same fuel on every run (loop-heavy and function-heavy)', async () => {
    for (const [fn, arg] of [['squares', 5000], ['fib', 18]] as const) {
      const runs = await fuelPerRun(metered, fn, [arg]);
      expect(new Set(runs).size).toBe(1);
      expect(runs[0]).toBeGreaterThan(0n);
    }
  });

  it('returns what the original returns', async () => {
    const { instance } = await WebAssembly.instantiate(plain as Uint8Array<ArrayBuffer>);
    const m = await meter(metered);
    for (const n of [0, 1, 2, 7, 100, 12345]) expect(exportsOf(m.instance).squares!(n)).toBe(exportsOf(instance).squares!(n));
    for (const n of [0, 1, 2, 10, 20]) expect(exportsOf(m.instance).fib!(n)).toBe(exportsOf(instance).fib!(n));
  });

  it('uses more fuel for more work', async () => {
    const m = await meter(metered);
    for (const fn of ['squares', 'fib'] as const) {
      let last = -1n;
      for (const n of fn === 'fib' ? [0, 2, 5, 10, 15, 20] : [0, 1, 10, 100, 1000, 10000]) {
        m.reset();
        exportsOf(m.instance)[fn]!(n);
        expect(m.used()).toBeGreaterThan(last);
        last = m.used();
      }
    }
    // A loop iteration costs the same every time: linear in n.
    const at = async (n: number): Promise<bigint> => (await fuelPerRun(metered, 'squares', [n], 1))[0]!;
    const [a, b, c] = [await at(1000), await at(2000), await at(3000)];
    expect(c - b).toBe(b - a);
  });

  it('traps an endless loop when the fuel runs out, leaving the counter negative', async () => {
    const m = await meter(metered, {}, 100_000n);
    expect(() => exportsOf(m.instance).spin!()).toThrow(WebAssembly.RuntimeError);
    expect(m.fuel.value).toBeLessThan(0n);
    expect(m.fuel.value).toBeGreaterThan(-100n); // overrun bounded by one loop iteration
  });

  it('traps a finite loop or a deep recursion given too little fuel, and not given enough', async () => {
    for (const [fn, arg] of [['squares', 100_000], ['fib', 25]] as const) {
      const [need] = await fuelPerRun(metered, fn, [arg], 1);
      const short = await meter(metered, {}, need! / 2n);
      expect(() => exportsOf(short.instance)[fn]!(arg)).toThrow(WebAssembly.RuntimeError);
      expect(short.fuel.value).toBeLessThan(0n);
      const exact = await meter(metered, {}, need!);
      expect(() => exportsOf(exact.instance)[fn]!(arg)).not.toThrow();
      expect(exact.fuel.value).toBe(0n);
    }
  });

  it('charges bulk memory by size', async () => {
    const m = await meter(metered);
    const cost = (n: number): bigint => { m.reset(); exportsOf(m.instance).fill!(n); return m.used(); };
    expect(cost(64 * 1000) - cost(0)).toBe(1000n);
    expect(cost(65)).toBe(cost(0) + 2n);
  });
});

describe('module shapes', () => {
  it('keeps start functions, imports, exported globals and tables working; fuel is exact during import calls', async () => {
    const bytes = wat(`
      (module
        (import "env" "probe" (func $probe (param i32)))
        (import "env" "base" (global $base i32))
        (global $g (export "g") (mut i32) (i32.const 0))
        (table (export "table") 2 funcref)
        (elem (i32.const 0) $inc $dbl)
        (memory (export "memory") 1 2)
        (data (i32.const 8) "hi")
        (type $t (func (param i32) (result i32)))
        (func $inc (type $t) (i32.add (local.get 0) (i32.const 1)))
        (func $dbl (type $t) (i32.mul (local.get 0) (i32.const 2)))
        (func $init (global.set $g (i32.add (global.get $base) (i32.load8_u (i32.const 8)))))
        (start $init)
        (func (export "apply") (param i32 i32) (result i32)
          (call $probe (i32.const 1))
          (call_indirect (type $t) (local.get 1) (local.get 0))))`);
    const metered = instrumentFuel(bytes, { validate: true });
    const seen: bigint[] = [];
    let fuel!: WebAssembly.Global;
    const m = await meter(metered, { env: { probe: () => seen.push(fuel.value as bigint), base: 100 } });
    fuel = m.fuel;
    expect(m.used()).toBeGreaterThan(0n); // the start function ran, metered
    const e = m.instance.exports as Record<string, unknown>;
    expect((e.g as WebAssembly.Global).value).toBe(100 + 'h'.charCodeAt(0));
    expect((e.table as WebAssembly.Table).length).toBe(2);
    const apply = e.apply as (a: number, b: number) => number;
    m.reset();
    expect(apply(1, 21)).toBe(42);
    const total = m.used();
    // The host saw the counter already charged for the work before the import call, not after it.
    expect(LOTS - seen[0]!).toBeGreaterThan(0n);
    expect(LOTS - seen[0]!).toBeLessThan(total);
    m.reset();
    expect(apply(0, 41)).toBe(42);
    expect(m.used()).toBe(total); // $inc and $dbl cost the same
  });

  it('passes the counter through private functions (void, single and multi-value results, tail of a chain)', async () => {
    const src = `
      (module
        (global $acc (mut i32) (i32.const 0))
        (func $bump (param i32) (global.set $acc (i32.add (global.get $acc) (local.get 0))))
        (func $pair (param i32) (result i32 i32) (local $k i32)
          (local.set $k (i32.mul (local.get 0) (i32.const 3)))
          (if (i32.gt_u (local.get 0) (i32.const 100)) (then (return (local.get $k) (i32.const 1))))
          (local.get $k) (i32.const 0))
        (func $sum (param $n i32) (result i32) (local $i i32) (local $s i32)
          (loop $l
            (call $bump (local.get $i))
            (local.set $s (i32.add (local.get $s) (call $pair (local.get $i)) (i32.add)))
            (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
          (local.get $s))
        (func (export "run") (param i32) (result i32)
          (i32.add (call $sum (local.get 0)) (global.get $acc))))`;
    const bytes = wat(src);
    const { bytes: metered, stats } = instrumentFuelWithStats(bytes, { validate: true });
    expect(stats.privateFunctions).toBe(3);
    for (const n of [1, 50, 200]) {
      const runs = await fuelPerRun(metered, 'run', [n], 3);
      expect(new Set(runs).size).toBe(1);
      const { instance } = await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>); // $acc is state
      const m = await meter(metered);
      expect(exportsOf(m.instance).run!(n)).toBe(exportsOf(instance).run!(n));
    }
    const [small] = await fuelPerRun(metered, 'run', [100], 1);
    const [large] = await fuelPerRun(metered, 'run', [200], 1);
    expect(large!).toBeGreaterThan(small!);
    const short = await meter(metered, {}, small! / 2n);
    expect(() => exportsOf(short.instance).run!(100)).toThrow(WebAssembly.RuntimeError);
    expect(short.fuel.value).toBeLessThan(0n); // the trap wrote the private counter back
  });

  it('keeps the signature of a function used as a value (ref.func in code)', async () => {
    const bytes = wat(`
      (module
        (type $t (func (result i32)))
        (table $tab 1 funcref)
        (elem declare func $seven)
        (func $seven (result i32) (i32.const 7))
        (func (export "go") (result i32)
          (table.set $tab (i32.const 0) (ref.func $seven))
          (call_indirect $tab (type $t) (i32.const 0))))`);
    const { bytes: metered, stats } = instrumentFuelWithStats(bytes, { validate: true });
    expect(stats.privateFunctions).toBe(0);
    const m = await meter(metered);
    expect(exportsOf(m.instance).go!()).toBe(7);
  });

  // Node 20's V8 has no multi-memory, so modules using it are rejected before binaryen sees them.
  it('handles bulk memory, reference types and multi-value', async () => {
    const bytes = wat(`
      (module
        (memory 1)
        (data $d "abcd")
        (table $t 4 funcref)
        (elem declare func $two)
        (func $two (result i32 i32) (i32.const 40) (i32.const 2))
        (func (export "go") (result i32)
          (memory.init $d (i32.const 0) (i32.const 0) (i32.const 4))
          (memory.copy (i32.const 16) (i32.const 0) (i32.const 4))
          (data.drop $d)
          (table.set $t (i32.const 1) (ref.func $two))
          (i32.add
            (i32.add (call $two))
            (i32.add (i32.load (i32.const 16)) (i32.eqz (ref.is_null (table.get $t (i32.const 1))))))))`);
    const metered = instrumentFuel(bytes, { validate: true });
    const { instance } = await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>);
    const m = await meter(metered);
    expect(exportsOf(m.instance).go!()).toBe(exportsOf(instance).go!());
  });

  it('rejects components, garbage, and modules instrumented already', () => {
    const expectInvalid = (f: () => unknown): void => {
      try {
        f();
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(IsolaError);
        expect((err as IsolaError).code).toBe('ERR_WASM_INVALID');
      }
    };
    expectInvalid(() => instrumentFuel(new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0])));
    expectInvalid(() => instrumentFuel(new Uint8Array([1, 2, 3])));
    expectInvalid(() => instrumentFuel(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x0a, 0xff])));
    expectInvalid(() => instrumentFuel(instrumentFuel(wat('(module (func (export "f")))'))));
    expect(() => instrumentFuel(wat('(module)'), { bulkBytesPerUnit: 3 })).toThrow(RangeError);
  });
});

describe('instrumentFuel on C compiled by clang (wasm32-wasi -O2)', () => {
  let lib: Uint8Array;
  let meteredLib: Uint8Array;
  beforeAll(() => {
    lib = cLibrary('lib', C_LIB);
    meteredLib = instrumentFuel(lib, { validate: true });
  });

  it('counts the same fuel over 10 runs, function-heavy and loop-heavy', async () => {
    for (const [fn, arg] of [['fib', 20], ['hash', 20000], ['sort', 300]] as const) {
      const runs = await fuelPerRun(meteredLib, fn, [arg]);
      expect(new Set(runs).size, `${fn}: ${runs.join(' ')}`).toBe(1);
    }
  });

  it('returns what the original returns', async () => {
    const { instance } = await WebAssembly.instantiate(lib as Uint8Array<ArrayBuffer>);
    for (const [fn, args] of [['fib', [0, 1, 15, 22]], ['hash', [0, 1, 999, 65536]], ['sort', [0, 1, 2, 500]]] as const) {
      for (const a of args) {
        const m = await meter(meteredLib);
        expect(exportsOf(m.instance)[fn]!(a), `${fn}(${a})`).toBe(exportsOf(instance)[fn]!(a));
      }
    }
  });

  it('uses more fuel for more work', async () => {
    for (const [fn, args] of [['fib', [1, 5, 10, 15, 20]], ['hash', [0, 10, 100, 1000, 10000]], ['sort', [0, 10, 50, 200, 400]]] as const) {
      let last = -1n;
      for (const a of args) {
        const [used] = await fuelPerRun(meteredLib, fn, [a], 1);
        expect(used!, `${fn}(${a})`).toBeGreaterThan(last);
        last = used!;
      }
    }
  });

  it('stops a long computation when the fuel runs out', async () => {
    const m = await meter(meteredLib, {}, 1_000_000n);
    expect(() => exportsOf(m.instance).sort!(4096)).toThrow(WebAssembly.RuntimeError);
    expect(m.fuel.value).toBeLessThan(0n);
    const f = await meter(meteredLib, {}, 1_000_000n);
    expect(() => exportsOf(f.instance).fib!(40)).toThrow(WebAssembly.RuntimeError);
  });

  it('keeps a WASI command (_start, libc, memory) working with identical output and fuel', async () => {
    const cmd = cCommand('cmd', C_COMMAND);
    const meteredCmd = instrumentFuel(cmd, { validate: true });
    const want = await runCommand(cmd, false);
    expect(want.stdout).toMatch(/^collatz \d+ \d+ 999\n$/);
    const fuels = new Set<bigint | null>();
    for (let i = 0; i < 10; i++) {
      const got = await runCommand(meteredCmd, true);
      expect(got.stdout).toBe(want.stdout);
      fuels.add(got.fuel);
    }
    expect(fuels.size).toBe(1);
  });

  it('exact accounting (mergeLimit 0) never charges more than the default', async () => {
    const opts: FuelOptions = { mergeLimit: 0 };
    const exact = instrumentFuel(lib, opts);
    for (const [fn, arg] of [['hash', 5000], ['sort', 200]] as const) {
      const [a] = await fuelPerRun(exact, fn, [arg], 1);
      const [b] = await fuelPerRun(meteredLib, fn, [arg], 1);
      expect(a!).toBeLessThanOrEqual(b!);
    }
    const { stats } = instrumentFuelWithStats(lib);
    expect(stats.functions).toBeGreaterThan(0);
    expect(stats.checks).toBeGreaterThan(0);
  });
});
