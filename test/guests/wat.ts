/**
 * A tiny WAT generator for hand-written wasi:http guests.
 *
 * A guest is the body of its `handle` function, written in WAT, with `$req` (incoming-request) and
 * `$outparam` (response-outparam) in scope and a block `$done` to leave early (`br $done`). It calls
 * canonical-ABI imports as `$<resource>.<method>` (see `IMPORTS` in wat-lib.ts) and helper functions
 * as `$<helper>` (see `HELPERS`); only what is referenced ends up in the module. Strings become
 * static data through `g.str('…')`, which yields the `(ptr, len)` operand pair.
 *
 * Every call starts from a fresh heap (the bump allocator is reset on entry), and the handler drops
 * `$req` on the way out, so one instance can serve any number of requests without growing.
 *
 * ```ts
 * const hello = guest((g) => replyText(g, 200, 'hi\n'));
 * ```
 */
import { DATA_BASE, ERROR_CODES, HELPERS, IMPORTS, type StaticData } from './wat-lib.js';

export { ERROR_CODES, IMPORTS, HELPERS, RET } from './wat-lib.js';

/** The wasi 0.2.x version guests import by default (the WIT jco 1.35 bundles). */
export const DEFAULT_WASI_VERSION = '0.2.12';

/** Options shared by every guest generator. */
export interface GuestOptions {
  /** The `@0.2.x` version on every `wasi:*` import and the export; default `DEFAULT_WASI_VERSION`. */
  wasiVersion?: string;
}

/** A WAT source generator for one guest. */
export type GuestSource = (opts?: GuestOptions) => string;

/** Core value types a local may have. */
export type ValType = 'i32' | 'i64' | 'f32' | 'f64';

const encoder = new TextEncoder();
const align = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Escapes bytes for a WAT string literal. */
function watBytes(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) {
    s += b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b.toString(16).padStart(2, '0')}`;
  }
  return s;
}

/** Collects a guest's static data, locals and extra functions, then emits the whole module. */
export class Guest implements StaticData {
  /** The wasi 0.2.x version of imports and export. */
  readonly wasiVersion: string;
  private readonly strings = new Map<string, number>();
  private readonly segments: Array<{ addr: number; bytes: Uint8Array }> = [];
  private next = DATA_BASE;
  private readonly locals = new Map<string, ValType>();
  private readonly funcs: string[] = [];

  /** Starts an empty guest module. */
  constructor(opts: GuestOptions = {}) {
    this.wasiVersion = opts.wasiVersion ?? DEFAULT_WASI_VERSION;
    if (!/^0\.2\.\d+$/.test(this.wasiVersion)) throw new Error(`wasiVersion must be 0.2.x, got ${this.wasiVersion}`);
  }

  /** Places raw bytes in static data (aligned to `alignTo`) and returns their address. */
  data(bytes: Uint8Array, alignTo = 4): number {
    const addr = align(this.next, alignTo);
    this.segments.push({ addr, bytes });
    this.next = addr + bytes.length;
    return addr;
  }

  /** Address of `s` (UTF-8) in static data; equal strings share one copy. */
  addr(s: string): number {
    let a = this.strings.get(s);
    if (a === undefined) {
      a = this.data(encoder.encode(s), 1);
      this.strings.set(s, a);
    }
    return a;
  }

  /** `(i32.const ptr) (i32.const len)`: the operands of string `s`. */
  str(s: string): string {
    return `(i32.const ${this.addr(s)}) (i32.const ${encoder.encode(s).length})`;
  }

  /** Declares a local of the handler (idempotent) and returns its WAT name, `$name`. */
  local(name: string, type: ValType = 'i32'): string {
    const prev = this.locals.get(name);
    if (prev !== undefined && prev !== type) throw new Error(`local $${name} redeclared as ${type}`);
    this.locals.set(name, type);
    return `$${name}`;
  }

  /** Adds an extra `(func …)` to the module; its references are resolved like the handler's. */
  func(wat: string): void {
    this.funcs.push(wat);
  }

  /** Emits the complete module: imports, memory, globals, helpers, handler, static data. */
  module(body: string): string {
    const v = this.wasiVersion;
    const locals = [...this.locals].map(([n, t]) => `(local $${n} ${t})`).join(' ');
    const handler = `(func $handle (export "wasi:http/incoming-handler@${v}#handle") (param $req i32) (param $outparam i32)
    ${locals}
    (global.set $heap (global.get $heap_base))
    (global.set $tb (i32.const 0)) (global.set $tb_len (i32.const 0)) (global.set $tb_cap (i32.const 0))
    (block $done
${body}
    )
    (call $incoming-request.drop (local.get $req)))`;

    // Pull in helpers and imports transitively, by the `$names` the code mentions.
    const code: string[] = [handler, ...this.funcs];
    const helpers = new Set<string>();
    const imports = new Set<string>();
    const scan = (text: string): void => {
      for (const [, id] of text.matchAll(/\$([A-Za-z0-9_.\-]+)/g)) {
        if (id === undefined) continue;
        if (Object.hasOwn(HELPERS, id) && !helpers.has(id)) {
          helpers.add(id);
          const fn = HELPERS[id];
          if (fn === undefined) continue;
          const text2 = fn(this);
          code.push(text2);
          scan(text2);
        } else if (Object.hasOwn(IMPORTS, id)) {
          imports.add(id);
        }
      }
    };
    scan('$cabi_realloc');
    for (const c of [...code]) scan(c);

    const heapBase = align(this.next, 16);
    const pages = Math.max(1, Math.ceil(heapBase / 65536));
    const importLines = [...imports].sort().map((id) => {
      const imp = IMPORTS[id];
      if (imp === undefined) throw new Error(`unknown import ${id}`);
      return `  (import "${imp.iface}@${v}" "${imp.field}" (func $${id} ${imp.sig}))`;
    });
    const dataLines = this.segments.map((s) => `  (data (i32.const ${s.addr}) "${watBytes(s.bytes)}")`);
    return [
      '(module',
      ...importLines,
      `  (memory (export "memory") ${pages})`,
      `  (global $heap_base i32 (i32.const ${heapBase}))`,
      `  (global $heap (mut i32) (i32.const ${heapBase}))`,
      ...['tb', 'tb_len', 'tb_cap', 'out', 'out_body', 'in', 'in_body'].map((g) => `  (global $${g} (mut i32) (i32.const 0))`),
      ...code.map((c) => `  ${c}`),
      ...dataLines,
      ')',
      '',
    ].join('\n');
  }
}

/**
 * Builds a guest's WAT: `body` receives the `Guest` (for `str`, `local`, `func`) and returns the
 * handler body. Example: `guest((g) => replyText(g, 200, 'hi\n'))`.
 */
export function guest(body: (g: Guest) => string, opts?: GuestOptions): string {
  const g = new Guest(opts);
  const text = body(g);
  return g.module(text);
}

/** WAT expression for a new `fields` holding `pairs` in order (appended; traps on a header error). */
export function headers(g: Guest, pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs.reduce((acc, [n, v]) => `(call $hdr ${acc} ${g.str(n)} ${g.str(v)})`, '(call $fields.new)');
}

/** WAT statement appending `text` to the text buffer. */
export function print(g: Guest, text: string): string {
  return `(call $print ${g.str(text)})`;
}

/** `content-type: text/plain`, the default header of text replies. */
export const TEXT_PLAIN: ReadonlyArray<readonly [string, string]> = [['content-type', 'text/plain']];

/**
 * WAT statements that respond `status` with `text` appended to whatever was printed before, as a
 * body with `content-length`, plus `extra` headers (default: a text/plain content-type), and finish.
 */
export function replyText(
  g: Guest,
  status: number,
  text = '',
  extra: ReadonlyArray<readonly [string, string]> = TEXT_PLAIN,
): string {
  return `${text ? print(g, text) : ''}
    (call $reply_text (local.get $outparam) (i32.const ${status}) ${headers(g, extra)})`;
}

/** WAT statement that sets the response-outparam to `error-code.<code>`. Only `internal-error`
 * takes a message; any other payload is sent empty (every option `none`). */
export function respondError(g: Guest, code: (typeof ERROR_CODES)[number], message?: string): string {
  const tag = ERROR_CODES.indexOf(code);
  if (message !== undefined && code !== 'internal-error') throw new Error('only internal-error carries a message here');
  const [some, ptr, len] = message === undefined ? [0, 0, 0] : [1, g.addr(message), encoder.encode(message).length];
  return `(call $response-outparam.set (local.get $outparam) (i32.const 1) (i32.const ${tag})
      (i32.const ${some}) (i64.const ${ptr}) (i32.const ${len}) (i32.const 0) (i32.const 0) (i32.const 0))`;
}
