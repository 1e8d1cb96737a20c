/**
 * Deterministic fuel metering by instrumentation (issue 6, DESIGN.md decision 2).
 *
 * `instrumentFuel` rewrites a core Wasm module with binaryen so that it counts its own work in a
 * 64-bit counter the host owns, and traps when the counter goes negative. Run it once at artifact
 * preparation; the result is cached with the artifact.
 *
 * ## Host convention
 * The instrumented module IMPORTS one mutable i64 global, `(import "isola" "fuel" (global (mut i64)))`
 * (see {@link FUEL_IMPORT}). The host creates it, sets it to the request's fuel allowance before
 * calling into the guest, and reads what is left afterwards:
 * ```ts
 * const fuel = new WebAssembly.Global({ value: 'i64', mutable: true }, 1_000_000n);
 * instance = await WebAssembly.instantiate(module, { ...imports, isola: { fuel } });
 * // ... call the guest ...
 * const used = 1_000_000n - fuel.value;   // fuel.value < 0n after a trap means: out of fuel
 * ```
 * For jco components the global goes to every instrumented core module through jco's
 * `instantiateCore` hook (add `isola: { fuel }` to the imports object it is given); for WAGI
 * through the imports object. One global may be shared by all core modules of one instance.
 * A start function runs during instantiation and is metered like any other function, so set the
 * value before instantiating. The global is exact (up to date) whenever control is outside the
 * guest: after an export returns, during every call the guest makes to an import (so also at WASI
 * `proc_exit`), and after an out-of-fuel trap (the trapping function writes it back first). After any other trap (out-of-bounds access, stack
 * overflow, `unreachable` in guest code) the count may miss the trapping function's work since its
 * last call; a trapped instance is never reused, so this only affects the report of a failed request.
 *
 * ## Cost model: what one unit of fuel is
 * One unit is one executed Wasm instruction, counted on the binaryen IR (essentially the
 * instructions of the binary: `block`, `loop`, `nop` and the structural `else`/`end` are free;
 * every other instruction, including `if`, `br*`, `call*`, `return`, costs 1). Bulk memory
 * operations (`memory.copy`, `memory.fill`, `memory.init`) cost an extra
 * `ceil(n / bulkBytesPerUnit)` for `n` bytes (default one unit per 64 bytes).
 * Counting is done by regions, not per instruction: each function body, loop body, `if` arm and
 * the code after a conditional branch starts a region, and the region's whole static cost is
 * charged when it is entered (code after a nested `if`, `block` or `loop` stays in the enclosing
 * region, since it runs whenever that region runs to its end). Two deliberate approximations make
 * the count an upper bound rather than an exact count, both bounded and both static (hence
 * deterministic):
 *  - a region that is left early (a branch out of its middle, a `return`) was still charged whole;
 *  - conditional pieces costing at most `mergeLimit` units (default 8) are charged up front with
 *    their enclosing region: an `if` whose arms differ by at most `mergeLimit` costs its dearer arm
 *    (otherwise the cheaper arm's cost is charged up front and the dearer arm pays the difference),
 *    and a piece after a conditional branch is charged as if the branch were not taken.
 * So per request, fuel = Σ over executed regions of their static cost; the same request on the
 * same module always consumes the same fuel, whatever the engine, tier or machine.
 *
 * ## Overhead work (what the instrumentation does to stay cheap)
 *  - The counter lives in a local of each function (wasmtime keeps it in a register the same way).
 *    Public functions (exported, in a table, the start function, or used as a value) keep their
 *    signature: they load the counter from the global at entry, write it back before every call to
 *    a public or imported function, `call_indirect` and `throw`, reload it after such calls and at
 *    `catch`, and write it back at the end.
 *  - Private functions (only ever called directly) get the counter as an extra last i64 parameter
 *    and hand it back as an extra last result, so calls between instrumented functions never touch
 *    memory (the global's store→load chain doubled the cost of call-heavy code such as `fib`).
 *  - Exhaustion is checked (`if (fuel < 0) unreachable`) only where unbounded work can start: at
 *    every loop header with a back edge, and at the entry of functions that can recurse (in a cycle
 *    of the direct call graph, or making indirect calls or calls to imports). Straight-line and
 *    forward-branching code only decrements, so a request may overrun its allowance by at most the
 *    straight-line work between two checks before it traps.
 *  - Loops without a back edge, `if`s and small conditional pieces add no charge of their own.
 */
import binaryen from 'binaryen';
import { IsolaError } from '../errors.js';

/** Where the instrumented module imports its fuel counter from: `(import "isola" "fuel" (global (mut i64)))`. */
export const FUEL_IMPORT = { module: 'isola', name: 'fuel' } as const;

/** Options of {@link instrumentFuel}. */
export interface FuelOptions {
  /**
   * Conditional pieces costing at most this many units are charged with their enclosing region
   * (upper-bound accounting, fewer counter updates). 0 charges every path exactly except for early
   * exits. Default 8. Must be a non-negative integer.
   */
  mergeLimit?: number;
  /**
   * Bytes per extra unit charged for `memory.copy`/`memory.fill`/`memory.init`; a power of two, or
   * 0 to charge them 1 unit like any instruction. Default 64.
   */
  bulkBytesPerUnit?: number;
  /** Validate the output with binaryen's validator too (slow on large modules; tests). Default false. */
  validate?: boolean;
}

/** What {@link instrumentFuelWithStats} did, for logs and benchmarks. */
export interface FuelStats {
  /** Functions with bodies that were instrumented. */
  functions: number;
  /** Of those, private ones (only called directly): the counter is passed in a parameter and result. */
  privateFunctions: number;
  /** Counter updates inserted (region charges and bulk-memory charges). */
  charges: number;
  /** Exhaustion checks inserted (loop headers and function entries). */
  checks: number;
  /** Calls whose operands had to be spilled to locals to keep the counter exact around them. */
  spilledCalls: number;
  /** Wall time in ms: parse, instrument, emit (and validate), total. */
  ms: { parse: number; instrument: number; emit: number; total: number };
}

type Ptr = number;
type Fn = (...args: number[]) => number;

const C = binaryen as unknown as Record<string, Fn>;
function fn(name: string): Fn {
  const f = C[`_Binaryen${name}`];
  if (typeof f !== 'function') throw new Error(`binaryen lacks _Binaryen${name}`);
  return f;
}

// Low-level binaryen C API (raw pointers; names are interned, so a name pointer identifies it).
const getId = fn('ExpressionGetId');
const getType = fn('ExpressionGetType');
const blockGetName = fn('BlockGetName');
const blockNum = fn('BlockGetNumChildren');
const blockGet = fn('BlockGetChildAt');
const blockSet = fn('BlockSetChildAt');
const blockInsert = fn('BlockInsertChildAt');
const ifGetCond = fn('IfGetCondition');
const ifSetCond = fn('IfSetCondition');
const ifGetTrue = fn('IfGetIfTrue');
const ifSetTrue = fn('IfSetIfTrue');
const ifGetFalse = fn('IfGetIfFalse');
const ifSetFalse = fn('IfSetIfFalse');
const loopGetName = fn('LoopGetName');
const loopGetBody = fn('LoopGetBody');
const loopSetBody = fn('LoopSetBody');
const brGetName = fn('BreakGetName');
const brGetCond = fn('BreakGetCondition');
const brSetCond = fn('BreakSetCondition');
const brGetValue = fn('BreakGetValue');
const brSetValue = fn('BreakSetValue');
const swNum = fn('SwitchGetNumNames');
const swGetName = fn('SwitchGetNameAt');
const swGetDefault = fn('SwitchGetDefaultName');
const swGetCond = fn('SwitchGetCondition');
const swSetCond = fn('SwitchSetCondition');
const swGetValue = fn('SwitchGetValue');
const swSetValue = fn('SwitchSetValue');
const retGetValue = fn('ReturnGetValue');
const retSetValue = fn('ReturnSetValue');
const callGetTarget = fn('CallGetTarget');
const callIsReturn = fn('CallIsReturn');
const ciIsReturn = fn('CallIndirectIsReturn');
const crIsReturn = fn('CallRefIsReturn');
const tryGetBody = fn('TryGetBody');
const trySetBody = fn('TrySetBody');
const tryNumCatches = fn('TryGetNumCatchBodies');
const tryGetCatch = fn('TryGetCatchBodyAt');
const trySetCatch = fn('TrySetCatchBodyAt');
const tryNumTags = fn('TryGetNumCatchTags');
const funcGetBody = fn('FunctionGetBody');
const funcSetBody = fn('FunctionSetBody');
const funcAddVar = fn('FunctionAddVar');
const funcGetName = fn('FunctionGetName');
const funcGetResults = fn('FunctionGetResults');
const funcGetParams = fn('FunctionGetParams');
const funcNumVars = fn('FunctionGetNumVars');
const funcGetVar = fn('FunctionGetVar');
const localGetIndex = fn('LocalGetGetIndex');
const localGetSetIndex = fn('LocalGetSetIndex');
const localSetIndex = fn('LocalSetGetIndex');
const localSetSetIndex = fn('LocalSetSetIndex');
const callAppend = fn('CallAppendOperand');
const setType = fn('ExpressionSetType');
const numExports = fn('GetNumExports');
const exportAt = fn('GetExportByIndex');
const exportKind = fn('ExportGetKind');
const exportValue = fn('ExportGetValue');
const numElemSegments = fn('GetNumElementSegments');
const elemSegmentAt = fn('GetElementSegmentByIndex');
const elemLength = fn('ElementSegmentGetLength');
const elemData = fn('ElementSegmentGetData');
const globalInit = fn('GlobalGetInitExpr');
const refFuncName = fn('RefFuncGetFunc');
const getStartFn = fn('GetStart');
const globalImportModule = fn('GlobalImportGetModule');

/** Expression ids by name and names by id (from binaryen's `_Binaryen<Name>Id()` functions). */
const ID: Record<string, number> = {};
const ID_NAME = new Map<number, string>();
for (const key of Object.keys(C)) {
  const m = /^_Binaryen(\w+)Id$/.exec(key);
  const f = C[key];
  if (m && typeof f === 'function' && f.length === 0) {
    const id = f();
    ID[m[1]!] = id;
    ID_NAME.set(id, m[1]!);
  }
}

/** Operand lists: [count, get, set] for expressions with a variable number of operands. */
type Operands = [Fn, Fn, Fn];
const operandsOf = (name: string): Operands => [fn(`${name}GetNumOperands`), fn(`${name}GetOperandAt`), fn(`${name}SetOperandAt`)];
const CALL_OPS = operandsOf('Call');
const CALL_INDIRECT_OPS = operandsOf('CallIndirect');
const CALL_REF_OPS = operandsOf('CallRef');
const THROW_OPS = operandsOf('Throw');
const TUPLE_OPS = operandsOf('TupleMake');
const CI_TARGET: [Fn, Fn] = [fn('CallIndirectGetTarget'), fn('CallIndirectSetTarget')];
const CR_TARGET: [Fn, Fn] = [fn('CallRefGetTarget'), fn('CallRefSetTarget')];

/**
 * Expressions with a fixed list of children, in evaluation order: id → [getter, setter] pairs
 * (a getter returning 0 means the optional child is absent). Leaves have an empty list.
 */
const FIXED = new Map<number, Array<[Fn, Fn]>>();
function fixed(name: string, children: string[]): void {
  const id = ID[name];
  if (id === undefined) return;
  FIXED.set(id, children.map((c) => [fn(`${name}Get${c}`), fn(`${name}Set${c}`)]));
}
for (const leaf of ['Nop', 'Const', 'LocalGet', 'GlobalGet', 'MemorySize', 'Unreachable', 'Pop', 'RefNull',
  'RefFunc', 'TableSize', 'DataDrop', 'ElemDrop', 'AtomicFence', 'Pause']) fixed(leaf, []);
fixed('LocalSet', ['Value']);
fixed('GlobalSet', ['Value']);
fixed('Load', ['Ptr']);
fixed('Store', ['Ptr', 'Value']);
fixed('AtomicRMW', ['Ptr', 'Value']);
fixed('AtomicCmpxchg', ['Ptr', 'Expected', 'Replacement']);
fixed('AtomicWait', ['Ptr', 'Expected', 'Timeout']);
fixed('AtomicNotify', ['Ptr', 'NotifyCount']);
fixed('SIMDExtract', ['Vec']);
fixed('SIMDReplace', ['Vec', 'Value']);
fixed('SIMDShuffle', ['Left', 'Right']);
fixed('SIMDTernary', ['A', 'B', 'C']);
fixed('SIMDShift', ['Vec', 'Shift']);
fixed('SIMDLoad', ['Ptr']);
fixed('SIMDLoadStoreLane', ['Ptr', 'Vec']);
fixed('MemoryInit', ['Dest', 'Offset', 'Size']);
fixed('MemoryCopy', ['Dest', 'Source', 'Size']);
fixed('MemoryFill', ['Dest', 'Value', 'Size']);
fixed('Unary', ['Value']);
fixed('Binary', ['Left', 'Right']);
fixed('Select', ['IfTrue', 'IfFalse', 'Condition']);
fixed('Drop', ['Value']);
fixed('MemoryGrow', ['Delta']);
fixed('RefIsNull', ['Value']);
fixed('RefEq', ['Left', 'Right']);
fixed('RefAs', ['Value']);
fixed('TableGet', ['Index']);
fixed('TableSet', ['Index', 'Value']);
fixed('TableGrow', ['Value', 'Delta']);
fixed('TupleExtract', ['Tuple']);

const BULK_SIZE = new Map<number, [Fn, Fn]>([
  [ID.MemoryCopy!, [fn('MemoryCopyGetSize'), fn('MemoryCopySetSize')]],
  [ID.MemoryFill!, [fn('MemoryFillGetSize'), fn('MemoryFillSetSize')]],
  [ID.MemoryInit!, [fn('MemoryInitGetSize'), fn('MemoryInitSetSize')]],
]);

const NO_TARGET = Infinity;

/** Fuel charged when a region is entered; materialized as a counter update at the region's start. */
interface Region {
  cost: number;
}

interface Label {
  depth: number;
  hits: number;
}

/** A loop whose header check can go if one of `callees`, called on every iteration, checks at its entry. */
interface PendingLoop {
  loop: Ptr;
  cost: number;
  callees: Ptr[];
}

interface PendingFunction {
  func: Ptr;
  name: Ptr;
  /** Private: takes the counter as an extra last parameter and returns it as an extra last result. */
  priv: boolean;
  extraVars: number[];
  body: Ptr;
  entryCost: number;
  fuel: number;
  callees: Ptr[];
  needsEntryCheck: boolean;
  loops: PendingLoop[];
}

const u = (n: number): string => ID_NAME.get(n) ?? `#${n}`;

/** Thrown inside the walk when a function first thought private turns out to be referenced otherwise. */
class MustBePublic extends Error {
  constructor(readonly fn: Ptr) {
    super('function must keep its signature');
  }
}

/** Instruments one module: created per call, holds the binaryen module and per-function state. */
class Instrumenter {
  private readonly m: binaryen.Module;
  private readonly global: string;
  private readonly mergeLimit: number;
  private readonly bulkShift: number; // -1: bulk operations cost 1
  readonly stats = { functions: 0, privateFunctions: 0, charges: 0, checks: 0, spilledCalls: 0 };

  // per function
  private func: Ptr = 0;
  private fuel = 0; // index of the counter local
  private temps = new Map<number, number>(); // type → reusable temp local
  private labels = new Map<Ptr, Label>();
  private lastMin = NO_TARGET; // smallest label depth a visited expression may branch to (-1: leaves the function)
  private callees: Ptr[] = [];
  private recursive = false; // calls indirectly or calls an import
  private loop: { region: Region; callees: Ptr[] } | null = null; // innermost loop being visited
  private loops: PendingLoop[] = [];

  private priv = false; // the current function is private (counter in a parameter)
  private shiftFrom = -1; // private: local indices from here move up by one (the counter parameter)
  private nextLocal = 0;
  private extraVars: number[] = [];
  private readonly privateFns: Set<Ptr>;

  constructor(m: binaryen.Module, global: string, mergeLimit: number, bulkShift: number, privateFns: Set<Ptr>) {
    this.privateFns = privateFns;
    this.m = m;
    this.global = global;
    this.mergeLimit = mergeLimit;
    this.bulkShift = bulkShift;
  }

  // ---- counter code -------------------------------------------------------------------------

  private getF(): Ptr {
    return this.m.local.get(this.fuel, binaryen.i64);
  }
  /** `fuel -= cost` (plus `if (fuel < 0) { global = fuel; unreachable }` when `check`). */
  private charge(cost: number, check: boolean): Ptr {
    const m = this.m;
    this.stats.charges++;
    const sub = m.i64.sub(this.getF(), m.i64.const(cost));
    if (!check) return m.local.set(this.fuel, sub);
    this.stats.checks++;
    return m.if(
      m.i64.lt_s(m.local.tee(this.fuel, sub, binaryen.i64), m.i64.const(0)),
      m.block(null, [m.global.set(this.global, this.getF()), m.unreachable()], binaryen.unreachable),
    );
  }
  private store(): Ptr {
    return this.m.global.set(this.global, this.getF());
  }
  private load(): Ptr {
    return this.m.local.set(this.fuel, this.m.global.get(this.global, binaryen.i64));
  }
  /** A new local of `type` in the current function (numbered for its final, possibly private, form). */
  private addLocal(type: number): number {
    if (!this.priv) return funcAddVar(this.func, type);
    this.extraVars.push(type);
    return this.nextLocal++;
  }
  private temp(type: number): number {
    let t = this.temps.get(type);
    if (t === undefined) {
      t = this.addLocal(type);
      this.temps.set(type, t);
    }
    return t;
  }
  /** Puts `pre` before `expr`, keeping `expr`'s value and type. */
  private prepend(pre: Ptr, expr: Ptr): Ptr {
    if (getId(expr) === ID.Block) {
      blockInsert(expr, 0, pre);
      return expr;
    }
    return this.m.block(null, [pre, expr], binaryen.auto);
  }

  // ---- walk ------------------------------------------------------------------------------------

  /**
   * Visits `e` at nesting `depth`, charging its unconditional cost to `r` and inserting charges for
   * its conditional parts. Returns the expression to put in `e`'s place (itself, or a wrapper);
   * leaves in `lastMin` the smallest depth of a label it may branch to.
   */
  private visit(e: Ptr, depth: number, r: Region): Ptr {
    const id = getId(e);
    switch (id) {
      case ID.Block: return this.visitBlock(e, depth, r);
      case ID.If: return this.visitIf(e, depth, r);
      case ID.Loop: return this.visitLoop(e, depth, r);
      case ID.Break: {
        let min = NO_TARGET;
        const v = brGetValue(e);
        if (v) { const n = this.visit(v, depth + 1, r); if (n !== v) brSetValue(e, n); min = this.lastMin; }
        const c = brGetCond(e);
        if (c) { const n = this.visit(c, depth + 1, r); if (n !== c) brSetCond(e, n); min = Math.min(min, this.lastMin); }
        r.cost += 1;
        this.lastMin = Math.min(min, this.target(brGetName(e)));
        return e;
      }
      case ID.Switch: {
        let min = NO_TARGET;
        const v = swGetValue(e);
        if (v) { const n = this.visit(v, depth + 1, r); if (n !== v) swSetValue(e, n); min = this.lastMin; }
        const c = swGetCond(e);
        const n = this.visit(c, depth + 1, r);
        if (n !== c) swSetCond(e, n);
        min = Math.min(min, this.lastMin);
        r.cost += 1;
        const count = swNum(e);
        for (let i = 0; i < count; i++) min = Math.min(min, this.target(swGetName(e, i)));
        this.lastMin = Math.min(min, this.target(swGetDefault(e)));
        return e;
      }
      case ID.Call: {
        const target = callGetTarget(e);
        this.callees.push(target);
        if (this.loop && this.loop.region === r) this.loop.callees.push(target); // runs on every iteration
        const isReturn = callIsReturn(e) !== 0;
        if (this.privateFns.has(target)) return this.visitPrivateCall(e, depth, r, target, isReturn);
        if (isReturn && this.priv) throw new MustBePublic(this.func ? funcGetName(this.func) : 0);
        return this.visitCall(e, depth, r, CALL_OPS, null, isReturn);
      }
      case ID.CallIndirect:
        this.recursive = true;
        return this.visitCall(e, depth, r, CALL_INDIRECT_OPS, CI_TARGET, ciIsReturn(e) !== 0);
      case ID.CallRef:
        this.recursive = true;
        return this.visitCall(e, depth, r, CALL_REF_OPS, CR_TARGET, crIsReturn(e) !== 0);
      case ID.Return: {
        const v = retGetValue(e);
        const before = this.stats.charges;
        if (v) { const n = this.visit(v, depth + 1, r); if (n !== v) retSetValue(e, n); }
        r.cost += 1;
        this.lastMin = -1;
        if (this.priv) {
          // Private: the counter travels back as the last result (evaluated after the value).
          retSetValue(e, this.withFuel(retGetValue(e)));
          return e;
        }
        if (v && this.stats.charges !== before) {
          // The value's evaluation changed the counter: write it back after the value.
          const t = this.addLocal(getType(retGetValue(e)));
          const set = this.m.local.set(t, retGetValue(e));
          retSetValue(e, this.m.local.get(t, getType(retGetValue(e))));
          this.stats.spilledCalls++;
          return this.m.block(null, [set, this.store(), e], binaryen.unreachable);
        }
        return this.m.block(null, [this.store(), e], binaryen.unreachable);
      }
      case ID.Throw: {
        const before = this.stats.charges;
        this.visitOperands(e, depth, r, THROW_OPS);
        r.cost += 1;
        const spilled = this.stats.charges !== before ? this.spill(e, THROW_OPS, null) : [];
        this.lastMin = -1;
        return this.m.block(null, [...spilled, this.store(), e], binaryen.unreachable);
      }
      case ID.Rethrow:
        r.cost += 1;
        this.lastMin = -1;
        return this.m.block(null, [this.store(), e], binaryen.unreachable);
      case ID.Try: return this.visitTry(e, depth, r);
      case ID.TupleMake:
        this.visitOperands(e, depth, r, TUPLE_OPS);
        r.cost += 1;
        return e;
      default: {
        const kids = FIXED.get(id);
        if (kids === undefined) {
          throw new IsolaError('ERR_WASM_INVALID', `fuel metering does not support the ${u(id)} instruction`, {
            status: 400, user: true, details: { instruction: u(id) },
            hint: 'deploy this function without metering = "fuel"',
          });
        }
        let min = NO_TARGET;
        for (const [get, set] of kids) {
          const c = get(e);
          if (!c) continue;
          const n = this.visit(c, depth + 1, r);
          if (n !== c) set(e, n);
          if (this.lastMin < min) min = this.lastMin;
        }
        if (id !== ID.Nop) r.cost += 1;
        this.lastMin = min;
        if (id === ID.RefFunc && this.privateFns.has(refFuncName(e))) throw new MustBePublic(refFuncName(e));
        if (this.shiftFrom >= 0) {
          if (id === ID.LocalGet) { const i = localGetIndex(e); if (i >= this.shiftFrom) localGetSetIndex(e, i + 1); }
          else if (id === ID.LocalSet) { const i = localSetIndex(e); if (i >= this.shiftFrom) localSetSetIndex(e, i + 1); }
        }
        if (this.bulkShift >= 0 && getType(e) !== binaryen.unreachable) {
          const size = BULK_SIZE.get(id);
          if (size) return this.chargeBulk(e, size);
        }
        return e;
      }
    }
  }

  /** `value` (absent, single or tuple) followed by the counter, as one (tuple) value. */
  private withFuel(value: Ptr): Ptr {
    const m = this.m;
    if (!value) return this.getF();
    const type = getType(value);
    if (type === binaryen.unreachable) return value;
    if (type === binaryen.none) return m.block(null, [value, this.getF()], binaryen.i64);
    const types = binaryen.expandType(type);
    if (types.length === 1) return m.tuple.make([value, this.getF()]);
    const t = this.addLocal(type);
    const parts = types.map((_, i) => m.tuple.extract(m.local.get(t, type), i));
    return m.block(null, [m.local.set(t, value), m.tuple.make([...parts, this.getF()])], binaryen.auto);
  }

  private target(name: Ptr): number {
    const l = this.labels.get(name);
    if (l === undefined) return -1; // not a label we know: be conservative
    l.hits++;
    return l.depth;
  }

  private enterLabel(name: Ptr, depth: number): Label | undefined {
    if (!name) return undefined;
    const prev = this.labels.get(name);
    this.labels.set(name, { depth, hits: 0 });
    return prev;
  }
  private leaveLabel(name: Ptr, prev: Label | undefined): Label | undefined {
    if (!name) return undefined;
    const mine = this.labels.get(name);
    if (prev) this.labels.set(name, prev);
    else this.labels.delete(name);
    return mine;
  }

  private visitBlock(e: Ptr, depth: number, r: Region): Ptr {
    const name = blockGetName(e);
    const prev = this.enterLabel(name, depth);
    const count = blockNum(e);
    let cur = r;
    let segments: Array<[number, Region]> | null = null;
    let min = NO_TARGET;
    for (let i = 0; i < count; i++) {
      const c = blockGet(e, i);
      const n = this.visit(c, depth + 1, cur);
      if (n !== c) blockSet(e, i, n);
      const m = this.lastMin;
      if (m < min) min = m;
      if (m <= depth && i < count - 1) {
        // The child may branch away: what follows in this block runs conditionally.
        cur = { cost: 0 };
        (segments ??= []).push([i + 1, cur]);
      }
    }
    this.leaveLabel(name, prev);
    if (segments) {
      for (let j = segments.length - 1; j >= 0; j--) {
        const [index, seg] = segments[j]!;
        if (seg.cost === 0) continue;
        const outer = j > 0 ? segments[j - 1]![1] : r;
        if (seg.cost <= this.mergeLimit) outer.cost += seg.cost;
        else blockInsert(e, index, this.charge(seg.cost, false));
      }
    }
    this.lastMin = min;
    return e;
  }

  private visitIf(e: Ptr, depth: number, r: Region): Ptr {
    const cond = ifGetCond(e);
    let n = this.visit(cond, depth + 1, r);
    if (n !== cond) ifSetCond(e, n);
    let min = this.lastMin;
    r.cost += 1;
    const t: Region = { cost: 0 };
    const yes = ifGetTrue(e);
    n = this.visit(yes, depth + 1, t);
    if (n !== yes) ifSetTrue(e, n);
    if (this.lastMin < min) min = this.lastMin;
    const f: Region = { cost: 0 };
    const no = ifGetFalse(e);
    if (no) {
      n = this.visit(no, depth + 1, f);
      if (n !== no) ifSetFalse(e, n);
      if (this.lastMin < min) min = this.lastMin;
    }
    const lo = Math.min(t.cost, f.cost);
    const hi = Math.max(t.cost, f.cost);
    if (hi - lo <= this.mergeLimit) {
      r.cost += hi;
    } else {
      // Both arms pay `lo` up front; the dearer arm pays the difference itself.
      r.cost += lo;
      if (t.cost > f.cost) ifSetTrue(e, this.prepend(this.charge(hi - lo, false), ifGetTrue(e)));
      else if (no) ifSetFalse(e, this.prepend(this.charge(hi - lo, false), ifGetFalse(e)));
      else ifSetFalse(e, this.charge(hi - lo, false));
    }
    this.lastMin = min;
    return e;
  }

  private visitLoop(e: Ptr, depth: number, r: Region): Ptr {
    const name = loopGetName(e);
    const prev = this.enterLabel(name, depth);
    const body = loopGetBody(e);
    const region: Region = { cost: 0 };
    const outer = this.loop;
    const ctx = { region, callees: [] as Ptr[] };
    this.loop = ctx;
    const n = this.visit(body, depth + 1, region);
    this.loop = outer;
    if (n !== body) loopSetBody(e, n);
    const min = this.lastMin;
    const label = this.leaveLabel(name, prev);
    if (label && label.hits > 0) {
      // Decided in finish(): the check goes if a callee called on every iteration checks anyway.
      if (ctx.callees.length > 0) this.loops.push({ loop: e, cost: region.cost, callees: ctx.callees });
      else loopSetBody(e, this.prepend(this.charge(region.cost, true), loopGetBody(e)));
    } else {
      r.cost += region.cost; // no back edge: runs once, like a block
    }
    this.lastMin = min;
    return e;
  }

  private visitTry(e: Ptr, depth: number, r: Region): Ptr {
    let min = NO_TARGET;
    const body = tryGetBody(e);
    const n = this.visit(body, depth + 1, r);
    if (n !== body) trySetBody(e, n);
    min = Math.min(min, this.lastMin);
    const catches = tryNumCatches(e);
    const tags = tryNumTags(e);
    for (let i = 0; i < catches; i++) {
      const region: Region = { cost: 0 };
      const c = tryGetCatch(e, i);
      const v = this.visit(c, depth + 1, region);
      min = Math.min(min, this.lastMin);
      // The thrower wrote the counter back: reload it, then pay for the handler. A tagged catch
      // begins with a `pop` of the exception that must stay first, so the code goes after the
      // handler's first expression there.
      const code = [this.load(), ...(region.cost > 0 ? [this.charge(region.cost, false)] : [])];
      let out: Ptr;
      if (i >= tags) {
        out = this.prepend(code.length > 1 ? this.m.block(null, code, binaryen.none) : code[0]!, v);
      } else if (getId(v) === ID.Block && blockNum(v) > 0) {
        for (let k = code.length - 1; k >= 0; k--) blockInsert(v, 1, code[k]!);
        out = v;
      } else {
        const type = getType(v);
        if (type === binaryen.none || type === binaryen.unreachable) {
          out = this.m.block(null, [v, ...code], binaryen.auto);
        } else {
          const t = this.addLocal(type);
          out = this.m.block(null, [this.m.local.set(t, v), ...code, this.m.local.get(t, type)], type);
        }
      }
      if (out !== c) trySetCatch(e, i, out);
    }
    r.cost += 1;
    this.lastMin = min;
    return e;
  }

  private visitOperands(e: Ptr, depth: number, r: Region, [count, get, set]: Operands): number {
    let min = NO_TARGET;
    const n = count(e);
    for (let i = 0; i < n; i++) {
      const c = get(e, i);
      const v = this.visit(c, depth + 1, r);
      if (v !== c) set(e, i, v);
      if (this.lastMin < min) min = this.lastMin;
    }
    return min;
  }

  /** Moves `e`'s operands (and call target) into fresh locals; returns the `local.set`s to run first. */
  private spill(e: Ptr, [count, get, set]: Operands, target: [Fn, Fn] | null): Ptr[] {
    const out: Ptr[] = [];
    const n = count(e);
    const move = (c: Ptr, put: (p: Ptr) => void): void => {
      const type = getType(c);
      const t = this.addLocal(type);
      out.push(this.m.local.set(t, c));
      put(this.m.local.get(t, type));
    };
    for (let i = 0; i < n; i++) move(get(e, i), (p) => set(e, i, p));
    if (target) move(target[0](e), (p) => target[1](e, p));
    this.stats.spilledCalls++;
    return out;
  }

  private visitCall(e: Ptr, depth: number, r: Region, ops: Operands, target: [Fn, Fn] | null, isReturn: boolean): Ptr {
    const before = this.stats.charges;
    let min = this.visitOperands(e, depth, r, ops);
    if (target) {
      const c = target[0](e);
      const v = this.visit(c, depth + 1, r);
      if (v !== c) target[1](e, v);
      if (this.lastMin < min) min = this.lastMin;
    }
    r.cost += 1;
    const type = getType(e);
    this.lastMin = isReturn ? -1 : min;
    if (type === binaryen.unreachable && !isReturn) return e; // an operand never returns: the call is dead
    // Write the counter back before the call. If evaluating the operands changed the counter, the
    // write must come after them, so spill them to locals first.
    const pre = this.stats.charges !== before ? this.spill(e, ops, target) : [];
    pre.push(this.store());
    if (isReturn) return this.m.block(null, [...pre, e], binaryen.unreachable);
    if (type === binaryen.none) return this.m.block(null, [...pre, e, this.load()], binaryen.none);
    const t = this.temp(type);
    return this.m.block(null, [...pre, this.m.local.set(t, e), this.load(), this.m.local.get(t, type)], type);
  }

  /**
   * A direct call to a private function: pass the counter as the last argument (evaluated after
   * the others, so no write-back or spill is needed) and take it back from the last result.
   */
  private visitPrivateCall(e: Ptr, depth: number, r: Region, target: Ptr, isReturn: boolean): Ptr {
    const m = this.m;
    if (isReturn && !this.priv) throw new MustBePublic(target);
    this.lastMin = this.visitOperands(e, depth, r, CALL_OPS);
    r.cost += 1;
    if (isReturn) this.lastMin = -1;
    const type = getType(e);
    callAppend(e, this.getF());
    if (isReturn || type === binaryen.unreachable) return e;
    if (type === binaryen.none) {
      setType(e, binaryen.i64);
      return m.local.set(this.fuel, e);
    }
    const types = binaryen.expandType(type);
    const tuple = binaryen.createType([...types, binaryen.i64]);
    setType(e, tuple);
    const t = this.temp(tuple);
    const get = (i: number): Ptr => m.tuple.extract(m.local.get(t, tuple), i);
    const value = types.length === 1 ? get(0) : m.tuple.make(types.map((_, i) => get(i)));
    return m.block(null, [m.local.set(t, e), m.local.set(this.fuel, get(types.length)), value], type);
  }

  /** Adds `ceil(size / bulkBytesPerUnit)` to the counter after a bulk memory operation. */
  private chargeBulk(e: Ptr, [get, set]: [Fn, Fn]): Ptr {
    const m = this.m;
    const size = get(e);
    const type = getType(size);
    const t = this.temp(type);
    set(e, m.local.tee(t, size, type));
    let n = m.local.get(t, type);
    if (type === binaryen.i32) n = m.i64.extend_u(n);
    const units = this.bulkShift === 0 ? n
      : m.i64.shr_u(m.i64.add(n, m.i64.const((1 << this.bulkShift) - 1)), m.i64.const(this.bulkShift));
    this.stats.charges++;
    return m.block(null, [e, m.local.set(this.fuel, m.i64.sub(this.getF(), units))], binaryen.none);
  }

  /** Instruments one defined function's body; its entry charge is added later by {@link finish}. */
  instrument(func: Ptr): PendingFunction {
    this.func = func;
    const name = funcGetName(func);
    this.priv = this.privateFns.has(name);
    this.extraVars = [];
    if (this.priv) {
      const params = binaryen.expandType(funcGetParams(func)).length;
      this.fuel = params;
      this.shiftFrom = params;
      this.nextLocal = params + 1 + funcNumVars(func);
    } else {
      this.shiftFrom = -1;
      this.fuel = funcAddVar(func, binaryen.i64);
    }
    this.temps = new Map();
    this.labels = new Map();
    this.callees = [];
    this.recursive = false;
    this.loop = null;
    this.loops = [];
    const entry: Region = { cost: 0 };
    const body = funcGetBody(func);
    const n = this.visit(body, 0, entry);
    this.stats.functions++;
    if (this.priv) this.stats.privateFunctions++;
    return {
      func, name, priv: this.priv, extraVars: this.extraVars, body: n, entryCost: entry.cost, fuel: this.fuel,
      callees: this.callees, needsEntryCheck: this.recursive, loops: this.loops,
    };
  }

  /**
   * Wraps a function's body: load the counter, pay the entry region (checked if it may recurse),
   * run, store. Adds the loop headers left pending; `checks(name)` says whether a function checks at entry.
   */
  finish(p: PendingFunction, check: boolean, checks: (name: Ptr) => boolean): void {
    const m = this.m;
    this.func = p.func;
    this.fuel = p.fuel;
    this.priv = p.priv;
    this.extraVars = p.extraVars;
    if (p.priv) this.nextLocal = binaryen.expandType(funcGetParams(p.func)).length + 1 + funcNumVars(p.func) + p.extraVars.length;
    for (const l of p.loops) {
      const elide = l.callees.some(checks);
      if (elide && l.cost === 0) continue;
      loopSetBody(l.loop, this.prepend(this.charge(l.cost, !elide), loopGetBody(l.loop)));
    }
    const results = funcGetResults(p.func);
    if (p.priv) {
      // The counter arrives as the last parameter and leaves as the last result.
      const entry = p.entryCost > 0 || check ? [this.charge(p.entryCost, check)] : [];
      const body = entry.length > 0 ? m.block(null, [...entry, p.body], binaryen.auto) : p.body;
      const info = binaryen.getFunctionInfo(p.func);
      const params = binaryen.createType([...binaryen.expandType(info.params), binaryen.i64]);
      const newResults = binaryen.createType([...binaryen.expandType(results), binaryen.i64]);
      const wrapped = this.withFuel(body);
      const vars = [...Array.from({ length: funcNumVars(p.func) }, (_, i) => funcGetVar(p.func, i)), ...p.extraVars];
      m.removeFunction(info.name);
      m.addFunction(info.name, params, newResults, vars, wrapped);
      return;
    }
    const pre = [this.load()];
    if (p.entryCost > 0 || check) pre.push(this.charge(p.entryCost, check));
    let body: Ptr;
    if (results === binaryen.none) {
      body = m.block(null, [...pre, p.body, this.store()], binaryen.none);
    } else {
      const t = funcAddVar(p.func, results);
      body = m.block(null, [...pre, m.local.set(t, p.body), this.store(), m.local.get(t, results)], results);
    }
    funcSetBody(p.func, body);
  }
}

/** Functions on a cycle of the direct call graph (Tarjan's SCC algorithm, iterative). */
function onCycles(pending: PendingFunction[]): boolean[] {
  const index = new Map<Ptr, number>();
  pending.forEach((p, i) => index.set(p.name, i));
  const succ = pending.map((p) => p.callees.map((c) => index.get(c) ?? -1).filter((i) => i >= 0));
  const n = pending.length;
  const order = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const result = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (order[root] !== -1) continue;
    const work: Array<[number, number]> = [[root, 0]];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const [v, k] = top;
      const edges = succ[v]!;
      if (k < edges.length) {
        top[1]++;
        const w = edges[k]!;
        if (w === v) result[v] = true;
        if (order[w] === -1) {
          order[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          work.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v]!, order[w]!);
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]![0];
        low[parent] = Math.min(low[parent]!, low[v]!);
      }
      if (low[v] === order[v]) {
        const scc: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = 0;
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1) for (const x of scc) result[x] = true;
      }
    }
  }
  return result;
}

function invalid(message: string, details?: Record<string, unknown>): IsolaError {
  return new IsolaError('ERR_WASM_INVALID', message, { status: 400, user: true, details });
}

/** True when the module has a custom section called `name` (to keep the function names). */
function hasCustomSection(bytes: Uint8Array, name: string): boolean {
  let pos = 8;
  const leb = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (pos < bytes.length) {
    const id = bytes[pos++]!;
    const size = leb();
    const start = pos;
    if (id === 0) {
      const len = leb();
      if (len === name.length && new TextDecoder().decode(bytes.subarray(pos, pos + len)) === name) return true;
    }
    pos = start + size;
  }
  return false;
}

/**
 * Instruments a core Wasm module for deterministic fuel metering and returns the new module's
 * bytes; the input is not modified. The result imports `isola.fuel` (a mutable i64 global, see
 * {@link FUEL_IMPORT}), decrements it by the cost model in this module's docstring, and traps
 * with `unreachable` (leaving the global negative) when it runs out. Exports, other imports,
 * memories, tables, the start function and custom sections are kept.
 *
 * Time: roughly linear in code size, dominated by binaryen's parser and writer (about 8 s for the
 * 13 MB SpiderMonkey core module of a componentize-js component; milliseconds for small modules).
 * Run it once per artifact, off the request path.
 *
 * Throws IsolaError `ERR_WASM_INVALID` (400, user error) when the bytes are not a valid core module
 * (components must be transpiled first), when the module already imports `isola.fuel`, or when
 * it uses an instruction the metering cannot see into (GC, stringref, typed continuations, the
 * `try_table`/`throw_ref` exception handling and `table.fill`/`table.copy`/`table.init`); and
 * IsolaError `ERR_INTERNAL` if the instrumented module fails validation (a bug here).
 */
export function instrumentFuel(bytes: Uint8Array, opts: FuelOptions = {}): Uint8Array {
  return instrumentFuelWithStats(bytes, opts).bytes;
}

/** {@link instrumentFuel}, also returning what was inserted and how long each phase took (ms). Same errors. */
export function instrumentFuelWithStats(bytes: Uint8Array, opts: FuelOptions = {}): { bytes: Uint8Array; stats: FuelStats } {
  const mergeLimit = opts.mergeLimit ?? 8;
  const bulk = opts.bulkBytesPerUnit ?? 64;
  if (!Number.isInteger(mergeLimit) || mergeLimit < 0) throw new RangeError('mergeLimit must be a non-negative integer');
  if (!Number.isInteger(bulk) || bulk < 0 || (bulk & (bulk - 1)) !== 0) throw new RangeError('bulkBytesPerUnit must be 0 or a power of two');
  const bulkShift = bulk === 0 ? -1 : Math.log2(bulk);

  const t0 = performance.now();
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw invalid('not a WebAssembly module');
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw invalid('fuel instrumentation takes a core module; transpile components first (jco) and instrument their core modules');
  }
  // binaryen aborts on malformed input; let V8 reject it first.
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) throw invalid('the module does not validate');

  const forcedPublic = new Set<string>();
  for (;;) {
    try {
      return instrumentOnce(bytes, opts, mergeLimit, bulkShift, forcedPublic, t0);
    } catch (err) {
      // A function used as a value (ref.func in code) or in a mismatched tail call keeps its
      // signature: start again with it public. Rare (not produced by C compilers).
      if (!(err instanceof MustBePublicNamed) || forcedPublic.has(err.name)) throw err instanceof MustBePublicNamed ? new IsolaError('ERR_INTERNAL', 'fuel instrumentation did not converge') : err;
      forcedPublic.add(err.name);
    }
  }
}

class MustBePublicNamed extends Error {
  constructor(override readonly name: string) {
    super(`function ${name} must keep its signature`);
  }
}

/**
 * Functions whose signature may change (private): defined, not exported, not in an element
 * segment, not the start function, not a ref.func in a global initializer, not in `forced`.
 */
function privateFunctions(m: binaryen.Module, forced: Set<string>): Set<Ptr> {
  const pub = new Set<Ptr>();
  const mod = (m as unknown as { ptr: number }).ptr;
  for (let i = 0, n = numExports(mod); i < n; i++) {
    const ex = exportAt(mod, i);
    if (exportKind(ex) === binaryen.ExternalFunction) pub.add(exportValue(ex));
  }
  for (let i = 0, n = numElemSegments(mod); i < n; i++) {
    const seg = elemSegmentAt(mod, i);
    for (let k = 0, len = elemLength(seg); k < len; k++) pub.add(elemData(seg, k));
  }
  for (let i = 0, n = m.getNumGlobals(); i < n; i++) {
    const init = globalInit(m.getGlobalByIndex(i));
    if (init && getId(init) === ID.RefFunc) pub.add(refFuncName(init));
  }
  const start = getStartFn(mod);
  if (start) pub.add(funcGetName(start));
  const out = new Set<Ptr>();
  for (let i = 0, n = m.getNumFunctions(); i < n; i++) {
    const f = m.getFunctionByIndex(i);
    const name = funcGetName(f);
    if (!funcGetBody(f) || pub.has(name)) continue;
    if (forced.size > 0 && forced.has(binaryen.getFunctionInfo(f).name)) continue;
    out.add(name);
  }
  return out;
}

function nameOf(m: binaryen.Module, ptr: Ptr): string {
  for (let i = 0, n = m.getNumFunctions(); i < n; i++) {
    const f = m.getFunctionByIndex(i);
    if (funcGetName(f) === ptr) return binaryen.getFunctionInfo(f).name;
  }
  throw new Error('unknown function');
}

function instrumentOnce(bytes: Uint8Array, opts: FuelOptions, mergeLimit: number, bulkShift: number, forcedPublic: Set<string>, t0: number): { bytes: Uint8Array; stats: FuelStats } {
  const m = binaryen.readBinaryWithFeatures(bytes, binaryen.Features.All);
  try {
    const t1 = performance.now();
    for (let i = 0; i < m.getNumGlobals(); i++) {
      const g = m.getGlobalByIndex(i);
      if (!globalImportModule(g)) continue;
      const info = binaryen.getGlobalInfo(g);
      if (info.module === FUEL_IMPORT.module && info.base === FUEL_IMPORT.name) {
        throw invalid(`the module already imports ${FUEL_IMPORT.module}.${FUEL_IMPORT.name} (instrumented twice?)`);
      }
    }
    let global = 'isola$fuel';
    for (let k = 0; m.getGlobal(global); k++) global = `isola$fuel${k}`;
    m.addGlobalImport(global, FUEL_IMPORT.module, FUEL_IMPORT.name, binaryen.i64, true);

    const ins = new Instrumenter(m, global, mergeLimit, bulkShift, privateFunctions(m, forcedPublic));
    const pending: PendingFunction[] = [];
    const count = m.getNumFunctions();
    const imported = new Set<Ptr>();
    for (let i = 0; i < count; i++) {
      const f = m.getFunctionByIndex(i);
      if (!funcGetBody(f)) {
        imported.add(funcGetName(f));
        continue;
      }
      try {
        pending.push(ins.instrument(f));
      } catch (err) {
        if (err instanceof MustBePublic) throw new MustBePublicNamed(nameOf(m, err.fn));
        throw err;
      }
    }
    const cyclic = onCycles(pending);
    const checked = new Set<Ptr>();
    const checks = pending.map((p, i) => {
      const check = cyclic[i]! || p.needsEntryCheck || p.callees.some((c) => imported.has(c));
      if (check) checked.add(p.name);
      return check;
    });
    const checksAtEntry = (name: Ptr): boolean => checked.has(name);
    pending.forEach((p, i) => ins.finish(p, checks[i]!, checksAtEntry));
    const t2 = performance.now();

    const keepNames = hasCustomSection(bytes, 'name');
    const debug = binaryen.getDebugInfo();
    binaryen.setDebugInfo(keepNames);
    let out: Uint8Array;
    try {
      out = m.emitBinary();
    } finally {
      binaryen.setDebugInfo(debug);
    }
    if (opts.validate && !m.validate()) throw new IsolaError('ERR_INTERNAL', 'fuel instrumentation produced an invalid module (binaryen)');
    if (!WebAssembly.validate(out as Uint8Array<ArrayBuffer>)) throw new IsolaError('ERR_INTERNAL', 'fuel instrumentation produced an invalid module');
    const t3 = performance.now();
    return {
      bytes: out,
      stats: { ...ins.stats, ms: { parse: t1 - t0, instrument: t2 - t1, emit: t3 - t2, total: t3 - t0 } },
    };
  } finally {
    m.dispose();
  }
}
