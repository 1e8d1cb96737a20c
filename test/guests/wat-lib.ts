/**
 * The canonical-ABI vocabulary of hand-written guests: the core imports a wasi:http 0.2.x component
 * lowers (legacy `module@version` / `[method]resource.name` naming, which `componentNew` accepts),
 * the fixed memory layout, and a library of small WAT helper functions.
 *
 * Everything here is text. `wat.ts` pulls in only the imports and helpers a guest references
 * (by scanning for `$name`), so a component imports exactly the interfaces its guest uses.
 *
 * Conventions: a handle is one i32; strings and lists are (ptr, len); results wider than one value
 * are written to a return area, here the fixed scratch area `RET` (tag byte at +0, payload at +4, or
 * at +8 when the payload holds a 64-bit field). Helpers read `RET` right after each call and never
 * keep a value in it across another call.
 */

/** Scratch return area for lowered results (the finish() error-code result needs 40 bytes). */
export const RET = 16;
/** 32-byte scratch buffer for number formatting; digits are written backwards from `NUMBUF_END`. */
export const NUMBUF_END = 160;
/** First address of the interned static data (strings, tables); the heap starts after it. */
export const DATA_BASE = 256;

/** What a helper generator may ask of the module being built: interned static data. */
export interface StaticData {
  /** WAT operands `(i32.const ptr) (i32.const len)` of `s` as UTF-8 bytes in static data. */
  str(s: string): string;
  /** Address of `s` interned in static data. */
  addr(s: string): number;
  /** Places raw bytes in static data (aligned to `align`) and returns their address. */
  data(bytes: Uint8Array, align?: number): number;
}

/** One core import: interface (without version), field name, WAT signature. */
export interface CoreImport {
  iface: string;
  field: string;
  sig: string;
}

const HTTP = 'wasi:http/types';
const IO = 'wasi:io/streams';
const i = (n: number): string => (n === 0 ? '' : `(param${' i32'.repeat(n)})`);
const imp = (iface: string, field: string, sig: string): CoreImport => ({ iface, field, sig });

/**
 * Every core import a guest may call, by WAT id (`$fields.append` calls `IMPORTS['fields.append']`).
 * Signatures come from `componentEmbed({dummy: true})` + `print` of the proxy world.
 */
export const IMPORTS: Record<string, CoreImport> = {
  'clock.subscribe-duration': imp('wasi:clocks/monotonic-clock', 'subscribe-duration', '(param i64) (result i32)'),
  'pollable.block': imp('wasi:io/poll', '[method]pollable.block', i(1)),
  'pollable.drop': imp('wasi:io/poll', '[resource-drop]pollable', i(1)),
  'fields.new': imp(HTTP, '[constructor]fields', '(result i32)'),
  'fields.from-list': imp(HTTP, '[static]fields.from-list', i(3)),
  'fields.get': imp(HTTP, '[method]fields.get', i(4)),
  'fields.set': imp(HTTP, '[method]fields.set', i(6)),
  'fields.append': imp(HTTP, '[method]fields.append', i(6)),
  'fields.entries': imp(HTTP, '[method]fields.entries', i(2)),
  'fields.drop': imp(HTTP, '[resource-drop]fields', i(1)),
  'incoming-request.method': imp(HTTP, '[method]incoming-request.method', i(2)),
  'incoming-request.path-with-query': imp(HTTP, '[method]incoming-request.path-with-query', i(2)),
  'incoming-request.headers': imp(HTTP, '[method]incoming-request.headers', `${i(1)} (result i32)`),
  'incoming-request.consume': imp(HTTP, '[method]incoming-request.consume', i(2)),
  'incoming-request.drop': imp(HTTP, '[resource-drop]incoming-request', i(1)),
  'incoming-body.stream': imp(HTTP, '[method]incoming-body.stream', i(2)),
  'incoming-body.drop': imp(HTTP, '[resource-drop]incoming-body', i(1)),
  'outgoing-response.new': imp(HTTP, '[constructor]outgoing-response', `${i(1)} (result i32)`),
  'outgoing-response.set-status-code': imp(HTTP, '[method]outgoing-response.set-status-code', `${i(2)} (result i32)`),
  'outgoing-response.body': imp(HTTP, '[method]outgoing-response.body', i(2)),
  'outgoing-response.drop': imp(HTTP, '[resource-drop]outgoing-response', i(1)),
  'outgoing-body.write': imp(HTTP, '[method]outgoing-body.write', i(2)),
  'outgoing-body.finish': imp(HTTP, '[static]outgoing-body.finish', i(4)),
  'outgoing-body.drop': imp(HTTP, '[resource-drop]outgoing-body', i(1)),
  // (outparam, result tag, then error-code flattened: case, i32, i64, i32 x4) or ok: (…, 0, response, 0…)
  'response-outparam.set': imp(HTTP, '[static]response-outparam.set', '(param i32 i32 i32 i32 i64 i32 i32 i32 i32)'),
  'response-outparam.drop': imp(HTTP, '[resource-drop]response-outparam', i(1)),
  'input-stream.read': imp(IO, '[method]input-stream.read', '(param i32 i64 i32)'),
  'input-stream.blocking-read': imp(IO, '[method]input-stream.blocking-read', '(param i32 i64 i32)'),
  'input-stream.drop': imp(IO, '[resource-drop]input-stream', i(1)),
  'output-stream.check-write': imp(IO, '[method]output-stream.check-write', i(2)),
  'output-stream.write': imp(IO, '[method]output-stream.write', i(4)),
  'output-stream.blocking-write-and-flush': imp(IO, '[method]output-stream.blocking-write-and-flush', i(4)),
  'output-stream.flush': imp(IO, '[method]output-stream.flush', i(2)),
  'output-stream.blocking-flush': imp(IO, '[method]output-stream.blocking-flush', i(2)),
  'output-stream.drop': imp(IO, '[resource-drop]output-stream', i(1)),
  'error.drop': imp('wasi:io/error', '[resource-drop]error', i(1)),
  'stdout.get': imp('wasi:cli/stdout', 'get-stdout', '(result i32)'),
  'stderr.get': imp('wasi:cli/stderr', 'get-stderr', '(result i32)'),
  'environment.get': imp('wasi:cli/environment', 'get-environment', i(1)),
};

/** The cases of `wasi:http/types.error-code`, in declaration order (the index is the ABI tag). */
export const ERROR_CODES = [
  'DNS-timeout', 'DNS-error', 'destination-not-found', 'destination-unavailable',
  'destination-IP-prohibited', 'destination-IP-unroutable', 'connection-refused',
  'connection-terminated', 'connection-timeout', 'connection-read-timeout',
  'connection-write-timeout', 'connection-limit-reached', 'TLS-protocol-error',
  'TLS-certificate-error', 'TLS-alert-received', 'HTTP-request-denied',
  'HTTP-request-length-required', 'HTTP-request-body-size', 'HTTP-request-method-invalid',
  'HTTP-request-URI-invalid', 'HTTP-request-URI-too-long', 'HTTP-request-header-section-size',
  'HTTP-request-header-size', 'HTTP-request-trailer-section-size', 'HTTP-request-trailer-size',
  'HTTP-response-incomplete', 'HTTP-response-header-section-size', 'HTTP-response-header-size',
  'HTTP-response-body-size', 'HTTP-response-trailer-section-size', 'HTTP-response-trailer-size',
  'HTTP-response-transfer-coding', 'HTTP-response-content-coding', 'HTTP-response-timeout',
  'HTTP-upgrade-failed', 'HTTP-protocol-error', 'loop-detected', 'configuration-error',
  'internal-error',
] as const;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const R = (off = 0): string => `(i32.const ${RET + off})`;
/** `(if <cond> (then unreachable))` */
const trapIf = (cond: string): string => `(if ${cond} (then unreachable))`;

/**
 * Helper functions, by name (called as `$name`). Each generator returns one `(func …)`.
 * Handles of the current response body live in globals `$out` (output-stream) and `$out_body`;
 * of the request body in `$in` and `$in_body`. Text printed with `$print` accumulates in a
 * growable buffer (`$tb`, `$tb_len`) on the heap until `$reply_text` / `$flush_text` sends it.
 */
export const HELPERS: Record<string, (d: StaticData) => string> = {
  /** Bump allocation, growing memory as needed; traps if memory cannot grow. */
  alloc: () => `(func $alloc (param $size i32) (param $align i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then ${trapIf(`(i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have))
                (i32.const 65535)) (i32.const 16))) (i32.const -1))`)}))
    (global.set $heap (local.get $end))
    (local.get $p))`,
  /** Canonical ABI realloc on the bump heap: shrinking keeps the block, growing copies. */
  cabi_realloc: () => `(func $cabi_realloc (export "cabi_realloc")
      (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
    (local $p i32)
    (if (i32.and (i32.ne (local.get $old) (i32.const 0)) (i32.le_u (local.get $new_size) (local.get $old_size)))
      (then (return (local.get $old))))
    (local.set $p (call $alloc (local.get $new_size) (local.get $align)))
    (if (local.get $old) (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (local.get $p))`,
  /** Current heap top, to free everything allocated after it with `$heap_reset`. */
  heap_mark: () => `(func $heap_mark (result i32) (global.get $heap))`,
  /** Frees everything allocated since `$heap_mark` returned `$p`. */
  heap_reset: () => `(func $heap_reset (param $p i32) (global.set $heap (local.get $p)))`,
  /** fields.append that traps on error; returns the fields handle so calls nest. */
  hdr: () => `(func $hdr (param $h i32) (param $n i32) (param $nl i32) (param $v i32) (param $vl i32) (result i32)
    (call $fields.append (local.get $h) (local.get $n) (local.get $nl) (local.get $v) (local.get $vl) ${R()})
    ${trapIf(`(i32.load8_u ${R()})`)}
    (local.get $h))`,
  /** fields.append returning 0 on ok, else 1 + header-error case (1 invalid-syntax, 2 forbidden, 3 immutable). */
  try_append: () => `(func $try_append (param $h i32) (param $n i32) (param $nl i32) (param $v i32) (param $vl i32) (result i32)
    (call $fields.append (local.get $h) (local.get $n) (local.get $nl) (local.get $v) (local.get $vl) ${R()})
    (if (result i32) (i32.load8_u ${R()})
      (then (i32.add (i32.const 1) (i32.load8_u ${R(1)}))) (else (i32.const 0))))`,
  /** Prints a `$try_append` result: `ok` or `err(<header-error case>)`. */
  print_append_result: (d) => `(func $print_append_result (param $r i32)
    (if (i32.eqz (local.get $r)) (then (call $print ${d.str('ok')}) (return)))
    (call $print ${d.str('err(')})
    (if (i32.eq (local.get $r) (i32.const 1)) (then (call $print ${d.str('invalid-syntax')})))
    (if (i32.eq (local.get $r) (i32.const 2)) (then (call $print ${d.str('forbidden')})))
    (if (i32.eq (local.get $r) (i32.const 3)) (then (call $print ${d.str('immutable')})))
    (call $print ${d.str(')')}))`,
  /** Prints `ok` for 0, `err` otherwise. */
  print_ok_err: (d) => `(func $print_ok_err (param $r i32)
    (if (local.get $r) (then (call $print ${d.str('err')})) (else (call $print ${d.str('ok')}))))`,
  /** First value of header `name` in `fields`: (ptr, len), len = -1 if absent. */
  header_first: () => `(func $header_first (param $h i32) (param $n i32) (param $nl i32) (result i32 i32)
    (local $e i32)
    (call $fields.get (local.get $h) (local.get $n) (local.get $nl) ${R()})
    (if (i32.eqz (i32.load ${R(4)})) (then (return (i32.const 0) (i32.const -1))))
    (local.set $e (i32.load ${R()}))
    (i32.load (local.get $e)) (i32.load offset=4 (local.get $e)))`,
  /** fields.entries as (ptr, count) of 16-byte (name ptr, name len, value ptr, value len) records. */
  entries: () => `(func $entries (param $h i32) (result i32 i32)
    (call $fields.entries (local.get $h) ${R()})
    (i32.load ${R()}) (i32.load ${R(4)}))`,
  /** wasi:cli/environment get-environment as (ptr, count) of 16-byte (name, value) records. */
  env: () => `(func $env (result i32 i32)
    (call $environment.get ${R()})
    (i32.load ${R()}) (i32.load ${R(4)}))`,
  /** Prints each 16-byte (string, bytes) record as `name<sep>value\\n`. */
  print_pairs: (d) => `(func $print_pairs (param $p i32) (param $n i32) (param $sep i32) (param $sepl i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (call $print (i32.load (local.get $p)) (i32.load offset=4 (local.get $p)))
      (call $print (local.get $sep) (local.get $sepl))
      (call $print (i32.load offset=8 (local.get $p)) (i32.load offset=12 (local.get $p)))
      (call $print ${d.str('\n')})
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l))))`,
  /** The request method as (ptr, len): a static name, or the `other(string)` payload. */
  method: (d) => {
    const table = new Uint8Array(METHODS.length * 8);
    const view = new DataView(table.buffer);
    METHODS.forEach((m, k) => {
      view.setUint32(k * 8, d.addr(m), true);
      view.setUint32(k * 8 + 4, m.length, true);
    });
    const t = d.data(table, 4);
    return `(func $method (param $req i32) (result i32 i32)
    (local $tag i32)
    (call $incoming-request.method (local.get $req) ${R()})
    (local.set $tag (i32.load8_u ${R()}))
    (if (i32.eq (local.get $tag) (i32.const 9))
      (then (return (i32.load ${R(4)}) (i32.load ${R(8)}))))
    (local.set $tag (i32.add (i32.const ${t}) (i32.shl (local.get $tag) (i32.const 3))))
    (i32.load (local.get $tag)) (i32.load offset=4 (local.get $tag)))`;
  },
  /** path-with-query as (ptr, len); ("", 0) when absent. */
  path: () => `(func $path (param $req i32) (result i32 i32)
    (call $incoming-request.path-with-query (local.get $req) ${R()})
    (if (i32.eqz (i32.load8_u ${R()})) (then (return (i32.const 0) (i32.const 0))))
    (i32.load ${R(4)}) (i32.load ${R(8)}))`,
  /** 1 if bytes [p, p+l) start with [k, k+kl). */
  starts_with: () => `(func $starts_with (param $p i32) (param $l i32) (param $k i32) (param $kl i32) (result i32)
    (if (i32.gt_u (local.get $kl) (local.get $l)) (then (return (i32.const 0))))
    (block $no (loop $l
      (if (i32.eqz (local.get $kl)) (then (return (i32.const 1))))
      (br_if $no (i32.ne (i32.load8_u (local.get $p)) (i32.load8_u (local.get $k))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (local.set $kl (i32.sub (local.get $kl) (i32.const 1)))
      (br $l)))
    (i32.const 0))`,
  /** Value of query parameter `key` in a path-with-query: (ptr, len); len = -1 if absent, 0 for `?key`. */
  query: () => `(func $query (param $p i32) (param $l i32) (param $k i32) (param $kl i32) (result i32 i32)
    (local $i i32) (local $end i32) (local $start i32) (local $j i32)
    (local.set $end (i32.add (local.get $p) (local.get $l)))
    (local.set $i (local.get $p))
    (block $found (loop $scan
      (if (i32.ge_u (local.get $i) (local.get $end)) (then (return (i32.const 0) (i32.const -1))))
      (br_if $found (i32.eq (i32.load8_u (local.get $i)) (i32.const 63)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $scan)))
    (loop $param
      (local.set $start (i32.add (local.get $i) (i32.const 1)))
      (local.set $j (local.get $start))
      (block $pend (loop $ps
        (br_if $pend (i32.ge_u (local.get $j) (local.get $end)))
        (br_if $pend (i32.eq (i32.load8_u (local.get $j)) (i32.const 38)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $ps)))
      (if (call $starts_with (local.get $start) (i32.sub (local.get $j) (local.get $start)) (local.get $k) (local.get $kl))
        (then
          (local.set $i (i32.add (local.get $start) (local.get $kl)))
          (if (i32.eq (local.get $i) (local.get $j)) (then (return (local.get $i) (i32.const 0))))
          (if (i32.eq (i32.load8_u (local.get $i)) (i32.const 61))
            (then (return (i32.add (local.get $i) (i32.const 1))
                          (i32.sub (i32.sub (local.get $j) (local.get $i)) (i32.const 1)))))))
      (if (i32.ge_u (local.get $j) (local.get $end)) (then (return (i32.const 0) (i32.const -1))))
      (local.set $i (local.get $j))
      (br $param))
    unreachable)`,
  /** Leading decimal digits of [p, p+l) as u64 (0 if none). */
  parse_u64: () => `(func $parse_u64 (param $p i32) (param $l i32) (result i64)
    (local $v i64) (local $c i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $l)))
      (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
      (br_if $done (i32.gt_u (local.get $c) (i32.const 9)))
      (local.set $v (i64.add (i64.mul (local.get $v) (i64.const 10)) (i64.extend_i32_u (local.get $c))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $l (i32.sub (local.get $l) (i32.const 1)))
      (br $l)))
    (local.get $v))`,
  /** Decimal text of `v` in the number scratch buffer: (ptr, len), valid until the next call. */
  fmt_u64: () => `(func $fmt_u64 (param $v i64) (result i32 i32)
    (local $p i32)
    (local.set $p (i32.const ${NUMBUF_END}))
    (loop $l
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $l (i64.ne (local.get $v) (i64.const 0))))
    (local.get $p) (i32.sub (i32.const ${NUMBUF_END}) (local.get $p)))`,
  /** Appends bytes to the text buffer, growing it on the heap (in place when it is the top block). */
  print: () => `(func $print (param $p i32) (param $l i32)
    (local $need i32) (local $cap i32) (local $nb i32)
    (local.set $need (i32.add (global.get $tb_len) (local.get $l)))
    (if (i32.gt_u (local.get $need) (global.get $tb_cap))
      (then
        (local.set $cap (i32.shl (global.get $tb_cap) (i32.const 1)))
        (if (i32.lt_u (local.get $cap) (local.get $need)) (then (local.set $cap (local.get $need))))
        (if (i32.lt_u (local.get $cap) (i32.const 1024)) (then (local.set $cap (i32.const 1024))))
        (if (i32.and (i32.ne (global.get $tb_cap) (i32.const 0))
                     (i32.eq (i32.add (global.get $tb) (global.get $tb_cap)) (global.get $heap)))
          (then (drop (call $alloc (i32.sub (local.get $cap) (global.get $tb_cap)) (i32.const 1))))
          (else
            (local.set $nb (call $alloc (local.get $cap) (i32.const 1)))
            (memory.copy (local.get $nb) (global.get $tb) (global.get $tb_len))
            (global.set $tb (local.get $nb))))
        (global.set $tb_cap (local.get $cap))))
    (memory.copy (i32.add (global.get $tb) (global.get $tb_len)) (local.get $p) (local.get $l))
    (global.set $tb_len (local.get $need)))`,
  /** Prints `v` in decimal. */
  print_u64: () => `(func $print_u64 (param $v i64) (call $print (call $fmt_u64 (local.get $v))))`,
  /** Prints `v` in decimal. */
  print_u32: () => `(func $print_u32 (param $v i32) (call $print (call $fmt_u64 (i64.extend_i32_u (local.get $v)))))`,
  /** If a stream-error (tag byte at `$p`) is last-operation-failed, drops its io error handle. */
  drop_stream_error: () => `(func $drop_stream_error (param $p i32)
    (if (i32.eqz (i32.load8_u (local.get $p))) (then (call $error.drop (i32.load offset=4 (local.get $p))))))`,
  /** Writes all bytes, obeying check-write (blocking-flush while it permits 0). 0 = ok, 1 = stream error. */
  write_all: () => `(func $write_all (param $s i32) (param $p i32) (param $len i32) (result i32)
    (local $n i64) (local $c i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $len)))
      (call $output-stream.check-write (local.get $s) ${R()})
      (if (i32.load8_u ${R()}) (then (call $drop_stream_error ${R(8)}) (return (i32.const 1))))
      (local.set $n (i64.load ${R(8)}))
      (if (i64.eqz (local.get $n))
        (then
          (call $output-stream.blocking-flush (local.get $s) ${R()})
          (if (i32.load8_u ${R()}) (then (call $drop_stream_error ${R(4)}) (return (i32.const 1))))
          (br $l)))
      (local.set $c (if (result i32) (i64.lt_u (local.get $n) (i64.extend_i32_u (local.get $len)))
        (then (i32.wrap_i64 (local.get $n))) (else (local.get $len))))
      (call $output-stream.write (local.get $s) (local.get $p) (local.get $c) ${R()})
      (if (i32.load8_u ${R()}) (then (call $drop_stream_error ${R(4)}) (return (i32.const 1))))
      (local.set $p (i32.add (local.get $p) (local.get $c)))
      (local.set $len (i32.sub (local.get $len) (local.get $c)))
      (br $l)))
    (i32.const 0))`,
  /** Writes all bytes with blocking-write-and-flush in chunks of at most 4096. 0 = ok, 1 = error. */
  write_blocking: () => `(func $write_blocking (param $s i32) (param $p i32) (param $len i32) (result i32)
    (local $c i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $len)))
      (local.set $c (select (local.get $len) (i32.const 4096) (i32.lt_u (local.get $len) (i32.const 4096))))
      (call $output-stream.blocking-write-and-flush (local.get $s) (local.get $p) (local.get $c) ${R()})
      (if (i32.load8_u ${R()}) (then (call $drop_stream_error ${R(4)}) (return (i32.const 1))))
      (local.set $p (i32.add (local.get $p) (local.get $c)))
      (local.set $len (i32.sub (local.get $len) (local.get $c)))
      (br $l)))
    (i32.const 0))`,
  /** Writes to stdout (blocking), ignoring errors. */
  log_stdout: () => `(func $log_stdout (param $p i32) (param $l i32)
    (local $s i32)
    (local.set $s (call $stdout.get))
    (drop (call $write_blocking (local.get $s) (local.get $p) (local.get $l)))
    (call $output-stream.drop (local.get $s)))`,
  /** Writes to stderr (blocking), ignoring errors. */
  log_stderr: () => `(func $log_stderr (param $p i32) (param $l i32)
    (local $s i32)
    (local.set $s (call $stderr.get))
    (drop (call $write_blocking (local.get $s) (local.get $p) (local.get $l)))
    (call $output-stream.drop (local.get $s)))`,
  /** Sends the text buffer to stderr and empties it. */
  print_to_stderr: () => `(func $print_to_stderr
    (call $log_stderr (global.get $tb) (global.get $tb_len))
    (global.set $tb_len (i32.const 0)))`,
  /** Builds the response (status, headers: owned), takes its body and stream into `$out_body`/`$out`,
   * and sets the outparam; traps on any error. Write with `$write`, end with `$finish`. */
  respond: () => `(func $respond (param $op i32) (param $status i32) (param $headers i32)
    (local $resp i32)
    (local.set $resp (call $outgoing-response.new (local.get $headers)))
    ${trapIf('(call $outgoing-response.set-status-code (local.get $resp) (local.get $status))')}
    (call $outgoing-response.body (local.get $resp) ${R()})
    ${trapIf(`(i32.load8_u ${R()})`)}
    (global.set $out_body (i32.load ${R(4)}))
    (call $outgoing-body.write (global.get $out_body) ${R()})
    ${trapIf(`(i32.load8_u ${R()})`)}
    (global.set $out (i32.load ${R(4)}))
    (call $response-outparam.set (local.get $op) (i32.const 0) (local.get $resp)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))`,
  /** Writes bytes to the response body stream (`$write_all` on `$out`): 0 = ok, 1 = error. */
  write: () => `(func $write (param $p i32) (param $l i32) (result i32)
    (call $write_all (global.get $out) (local.get $p) (local.get $l)))`,
  /** blocking-flush of `$out`: 0 = ok, 1 = error. */
  flush: () => `(func $flush (result i32)
    (call $output-stream.blocking-flush (global.get $out) ${R()})
    (if (i32.load8_u ${R()}) (then (call $drop_stream_error ${R(4)}) (return (i32.const 1))))
    (i32.const 0))`,
  /** Writes the text buffer to `$out` and empties it: 0 = ok, 1 = error. */
  flush_text: () => `(func $flush_text (result i32)
    (local $r i32)
    (local.set $r (call $write (global.get $tb) (global.get $tb_len)))
    (global.set $tb_len (i32.const 0))
    (local.get $r))`,
  /** Flushes, drops `$out`, then outgoing-body.finish(`$out_body`, no trailers): 0 = ok, 1 = error. */
  finish: () => `(func $finish (result i32)
    (drop (call $flush))
    (call $output-stream.drop (global.get $out))
    (call $outgoing-body.finish (global.get $out_body) (i32.const 0) (i32.const 0) ${R()})
    (i32.load8_u ${R()}))`,
  /** Abandons the response body: drops `$out` and `$out_body` without finish (the host must abort). */
  abort_out: () => `(func $abort_out
    (call $output-stream.drop (global.get $out))
    (call $outgoing-body.drop (global.get $out_body)))`,
  /** Responds with the text buffer as body, adding `content-length`; finish errors are ignored. */
  reply_text: (d) => `(func $reply_text (param $op i32) (param $status i32) (param $headers i32)
    (drop (call $hdr (local.get $headers) ${d.str('content-length')}
      (call $fmt_u64 (i64.extend_i32_u (global.get $tb_len)))))
    (call $respond (local.get $op) (local.get $status) (local.get $headers))
    (if (call $flush_text) (then (call $abort_out) (return)))
    (drop (call $finish)))`,
  /** consume + stream of the request body; keeps both handles in `$in_body`/`$in`; returns the stream. */
  in_stream: () => `(func $in_stream (param $req i32) (result i32)
    (call $incoming-request.consume (local.get $req) ${R()})
    ${trapIf(`(i32.load8_u ${R()})`)}
    (global.set $in_body (i32.load ${R(4)}))
    (call $incoming-body.stream (global.get $in_body) ${R()})
    ${trapIf(`(i32.load8_u ${R()})`)}
    (global.set $in (i32.load ${R(4)}))
    (global.get $in))`,
  /** Drops the request body stream, then the body. */
  in_done: () => `(func $in_done
    (call $input-stream.drop (global.get $in))
    (call $incoming-body.drop (global.get $in_body)))`,
  /** blocking-read of up to `$max` bytes: (ptr, len) on the heap; len = -1 at end of stream.
   * Traps if the stream failed (last-operation-failed). */
  read: () => `(func $read (param $s i32) (param $max i32) (result i32 i32)
    (call $input-stream.blocking-read (local.get $s) (i64.extend_i32_u (local.get $max)) ${R()})
    (if (i32.load8_u ${R()})
      (then
        ${trapIf(`(i32.eqz (i32.load8_u ${R(4)}))`)}
        (return (i32.const 0) (i32.const -1))))
    (i32.load ${R(4)}) (i32.load ${R(8)}))`,
  /** Fills [dst, dst+total) with repetitions of [src, src+srclen) (copy, then doubling copies). */
  fill_pattern: () => `(func $fill_pattern (param $dst i32) (param $total i32) (param $src i32) (param $srclen i32)
    (local $have i32) (local $c i32)
    (local.set $have (select (local.get $srclen) (local.get $total) (i32.lt_u (local.get $srclen) (local.get $total))))
    (memory.copy (local.get $dst) (local.get $src) (local.get $have))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $have) (local.get $total)))
      (local.set $c (i32.sub (local.get $total) (local.get $have)))
      (if (i32.gt_u (local.get $c) (local.get $have)) (then (local.set $c (local.get $have))))
      (memory.copy (i32.add (local.get $dst) (local.get $have)) (local.get $dst) (local.get $c))
      (local.set $have (i32.add (local.get $have) (local.get $c)))
      (br $l))))`,
};
