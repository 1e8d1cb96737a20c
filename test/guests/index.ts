/**
 * Named hand-written wasi:http guests for tests and benchmarks. Each export is a WAT generator;
 * `buildGuest(name)` turns one into a cached component file. All guests serve any number of requests
 * per instance unless they trap (their heap is reset on every call and they drop what they take).
 */
import { buildComponent, buildComponentFile } from './build.js';
import { guest, headers, print, replyText, respondError, TEXT_PLAIN, type GuestOptions, type GuestSource } from './wat.js';
import { RET } from './wat-lib.js';

export type { GuestOptions, GuestSource } from './wat.js';

const NL = '\n';

/** 200, `content-type: text/plain`, `content-length: 15`, body `hello from wat\n`. */
export const hello: GuestSource = (o) => guest((g) => replyText(g, 200, 'hello from wat\n'), o);

/**
 * 200 with the request body streamed back: blocking-read up to 64 KiB at a time, written with
 * check-write/write (blocking-flush while check-write permits 0 bytes). Memory stays bounded: each
 * chunk's allocation is freed before the next read. No content-length (chunked); `content-type` is
 * copied from the request when present. If the response stream fails (client gone) it stops
 * quietly, dropping the body without finish; a failed request stream traps.
 */
export const echo: GuestSource = (o) =>
  guest((g) => {
    for (const l of ['h', 'ctp', 'ctl', 'rh', 'in', 'mark', 'p', 'n']) g.local(l);
    return `
    (local.set $h (call $incoming-request.headers (local.get $req)))
    (call $header_first (local.get $h) ${g.str('content-type')}) (local.set $ctl) (local.set $ctp)
    (local.set $rh (call $fields.new))
    (if (i32.ge_s (local.get $ctl) (i32.const 0))
      (then (drop (call $hdr (local.get $rh) ${g.str('content-type')} (local.get $ctp) (local.get $ctl)))))
    (call $fields.drop (local.get $h))
    (local.set $in (call $in_stream (local.get $req)))
    (call $respond (local.get $outparam) (i32.const 200) (local.get $rh))
    (local.set $mark (call $heap_mark))
    (block $eof (loop $copy
      (call $read (local.get $in) (i32.const 65536)) (local.set $n) (local.set $p)
      (br_if $eof (i32.lt_s (local.get $n) (i32.const 0)))
      (if (call $write (local.get $p) (local.get $n))
        (then (call $in_done) (call $abort_out) (br $done)))
      (call $heap_reset (local.get $mark))
      (br $copy)))
    (call $in_done)
    (drop (call $finish))`;
  }, o);

/**
 * 200 text/plain (with content-length) whose body is `<METHOD> <path-with-query>\n` followed by one
 * `name: value\n` line per request header, in the order `fields.entries()` returns them (values are
 * copied as raw bytes).
 */
export const headersGuest: GuestSource = (o) =>
  guest((g) => {
    g.local('h');
    return `
    (call $print (call $method (local.get $req)))
    ${print(g, ' ')}
    (call $print (call $path (local.get $req)))
    ${print(g, NL)}
    (local.set $h (call $incoming-request.headers (local.get $req)))
    (call $print_pairs (call $entries (local.get $h)) ${g.str(': ')})
    (call $fields.drop (local.get $h))
    ${replyText(g, 200)}`;
  }, o);

/** 200 with two separate `set-cookie` headers (`a=1; Path=/` then `b=2; Path=/`, appended twice)
 * and body `two cookies\n`. */
export const setCookie: GuestSource = (o) =>
  guest(
    (g) =>
      replyText(g, 200, 'two cookies\n', [
        ...TEXT_PLAIN,
        ['set-cookie', 'a=1; Path=/'],
        ['set-cookie', 'b=2; Path=/'],
      ]),
    o,
  );

/** The `fields.append` attempts of `badFields`: label, header name, header value. */
export const BAD_FIELDS_CASES: ReadonlyArray<readonly [string, string, string]> = [
  ['bad-name', 'bad name', 'x'],
  ['bad-value', 'x-bad-value', 'a\nb'],
  ['connection', 'connection', 'close'],
  ['transfer-encoding', 'transfer-encoding', 'chunked'],
  ['good', 'x-good', 'yes'],
];

/**
 * Never traps on header errors. Calls `fields.append` on a fresh `fields` for each of
 * `BAD_FIELDS_CASES`, then once on the (immutable) request headers (label `immutable`, header
 * `x-immutable: 1`), and responds 200 text/plain with one line per attempt:
 * `<label>: ok` or `<label>: err(<invalid-syntax|forbidden|immutable>)`.
 */
export const badFields: GuestSource = (o) =>
  guest((g) => {
    g.local('f');
    g.local('rh');
    const attempt = (label: string, target: string, name: string, value: string): string => `
    ${print(g, `${label}: `)}
    (call $print_append_result (call $try_append (local.get ${target}) ${g.str(name)} ${g.str(value)}))
    ${print(g, NL)}`;
    return `
    (local.set $f (call $fields.new))
    ${BAD_FIELDS_CASES.map(([label, n, v]) => attempt(label, '$f', n, v)).join('')}
    (call $fields.drop (local.get $f))
    (local.set $rh (call $incoming-request.headers (local.get $req)))
    ${attempt('immutable', '$rh', 'x-immutable', '1')}
    (call $fields.drop (local.get $rh))
    ${replyText(g, 200)}`;
  }, o);

/**
 * On a scratch outgoing-response, tries `set-status-code(99)` then `set-status-code(600)`, and
 * responds 200 text/plain with `set-status-code 99: ok|err\nset-status-code 600: ok|err\n`.
 */
export const badStatus: GuestSource = (o) =>
  guest((g) => {
    g.local('r');
    const attempt = (code: number): string => `
    ${print(g, `set-status-code ${code}: `)}
    (call $print_ok_err (call $outgoing-response.set-status-code (local.get $r) (i32.const ${code})))
    ${print(g, NL)}`;
    return `
    (local.set $r (call $outgoing-response.new (call $fields.new)))
    ${attempt(99)}${attempt(600)}
    (call $outgoing-response.drop (local.get $r))
    ${replyText(g, 200)}`;
  }, o);

/** Executes `unreachable` first thing: traps before any response exists. */
export const trap: GuestSource = (o) => guest(() => 'unreachable', o);

/**
 * Sets the response (200, text/plain, no content-length), writes `partial body\n`, blocking-flushes,
 * then executes `unreachable`: the host must abort the response, never end it cleanly.
 */
export const trapAfterHead: GuestSource = (o) =>
  guest(
    (g) => `
    (call $respond (local.get $outparam) (i32.const 200) ${headers(g, TEXT_PLAIN)})
    (drop (call $write ${g.str('partial body\n')}))
    (drop (call $flush))
    ${nap(g)}
    unreachable`,
    o,
  );

/**
 * Sets the response (200, text/plain, no content-length), writes `unsized body\n` and finishes
 * the body without a flush: the whole response reaches the host at once, with no length declared.
 */
export const unsized: GuestSource = (o) =>
  guest(
    (g) => `
    (call $respond (local.get $outparam) (i32.const 200) ${headers(g, TEXT_PLAIN)})
    (drop (call $write ${g.str('unsized body\n')}))
    (call $output-stream.drop (global.get $out))
    (call $outgoing-body.finish (global.get $out_body) (i32.const 0) (i32.const 0) (i32.const ${RET}))`,
    o,
  );

/** Returns from handle without calling response-outparam.set (the outparam is neither set nor dropped). */
export const noResponse: GuestSource = (o) => guest(() => '', o);

/** Sets the response-outparam to the error `error-code.internal-error("isola test: deliberate internal-error")`. */
export const errorResponse: GuestSource = (o) =>
  guest((g) => respondError(g, 'internal-error', 'isola test: deliberate internal-error'), o);

/**
 * Sets the response (200, text/plain, no content-length), writes `unfinished\n`, flushes, drops the
 * output stream and returns without outgoing-body.finish. The outgoing-body handle is left alive,
 * or, with `?drop-body` in the query, dropped (the WASI signal for a corrupted body).
 */
export const unfinishedBody: GuestSource = (o) =>
  guest((g) => {
    for (const l of ['pp', 'pl', 'qp', 'ql']) g.local(l);
    return `
    (call $path (local.get $req)) (local.set $pl) (local.set $pp)
    (call $query (local.get $pp) (local.get $pl) ${g.str('drop-body')}) (local.set $ql) (local.set $qp)
    (call $respond (local.get $outparam) (i32.const 200) ${headers(g, TEXT_PLAIN)})
    (drop (call $write ${g.str('unfinished\n')}))
    (drop (call $flush))
    (call $output-stream.drop (global.get $out))
    (if (i32.ge_s (local.get $ql) (i32.const 0)) (then (call $outgoing-body.drop (global.get $out_body))))`;
  }, o);

/**
 * 200 with `content-length: 100` but a body of only the 10 bytes `0123456789`, then finish.
 * Logs `short-body: finish=ok|err\n` to stderr.
 */
export const shortBody: GuestSource = (o) =>
  guest(
    (g) => `
    (call $respond (local.get $outparam) (i32.const 200) ${headers(g, [...TEXT_PLAIN, ['content-length', '100']])})
    (drop (call $write ${g.str('0123456789')}))
    ${print(g, 'short-body: finish=')}
    (call $print_ok_err (call $finish))
    ${print(g, NL)}
    (call $print_to_stderr)`,
    o,
  );

/**
 * 200 with `content-length: 5`, then one write of the 10 bytes `0123456789` (check-write/write),
 * then finish. Logs `long-body: write=ok|err finish=ok|err\n` to stderr.
 */
export const longBody: GuestSource = (o) =>
  guest(
    (g) => `
    (call $respond (local.get $outparam) (i32.const 200) ${headers(g, [...TEXT_PLAIN, ['content-length', '5']])})
    ${print(g, 'long-body: write=')}
    (call $print_ok_err (call $write ${g.str('0123456789')}))
    ${print(g, ' finish=')}
    (call $print_ok_err (call $finish))
    ${print(g, NL)}
    (call $print_to_stderr)`,
    o,
  );

/** Byte i of a `bigResponse` body is `BIG_RESPONSE_PATTERN[i % 16]`. */
export const BIG_RESPONSE_PATTERN = '0123456789abcdef';
/** Body size of `bigResponse` without `?n=`: 1 GiB. */
export const BIG_RESPONSE_DEFAULT = 1 << 30;

/**
 * 200 `application/octet-stream`, a body of N bytes (`?n=<decimal>`, default 1 GiB) of the repeated
 * `BIG_RESPONSE_PATTERN`, streamed in writes of up to 64 KiB that obey check-write, then finish.
 * Chunked unless the query also has `cl` (`?n=100&cl`), which adds `content-length: N`. If the
 * stream fails (client gone) it stops, dropping the body without finish.
 */
export const bigResponse: GuestSource = (o) =>
  guest((g) => {
    for (const l of ['pp', 'pl', 'qp', 'ql', 'buf', 'c', 'h']) g.local(l);
    g.local('n', 'i64');
    return `
    (call $path (local.get $req)) (local.set $pl) (local.set $pp)
    (local.set $n (i64.const ${BIG_RESPONSE_DEFAULT}))
    (call $query (local.get $pp) (local.get $pl) ${g.str('n')}) (local.set $ql) (local.set $qp)
    (if (i32.ge_s (local.get $ql) (i32.const 0))
      (then (local.set $n (call $parse_u64 (local.get $qp) (local.get $ql)))))
    (local.set $h ${headers(g, [['content-type', 'application/octet-stream']])})
    (call $query (local.get $pp) (local.get $pl) ${g.str('cl')}) (local.set $ql) (local.set $qp)
    (if (i32.ge_s (local.get $ql) (i32.const 0))
      (then (drop (call $hdr (local.get $h) ${g.str('content-length')} (call $fmt_u64 (local.get $n))))))
    (local.set $buf (call $alloc (i32.const 65536) (i32.const 16)))
    (call $fill_pattern (local.get $buf) (i32.const 65536) ${g.str(BIG_RESPONSE_PATTERN)})
    (call $respond (local.get $outparam) (i32.const 200) (local.get $h))
    (block $end (loop $chunk
      (br_if $end (i64.eqz (local.get $n)))
      (local.set $c (if (result i32) (i64.lt_u (local.get $n) (i64.const 65536))
        (then (i32.wrap_i64 (local.get $n))) (else (i32.const 65536))))
      (if (call $write (local.get $buf) (local.get $c)) (then (call $abort_out) (br $done)))
      (local.set $n (i64.sub (local.get $n) (i64.extend_i32_u (local.get $c))))
      (br $chunk)))
    (drop (call $finish))`;
  }, o);

/** Spins forever (`loop br`) before responding: only a deadline or fuel can stop it. */
export const loop: GuestSource = (o) => guest(() => '(loop $forever (br $forever))', o);

/** Writes `to-stdout\n` to wasi:cli stdout and `to-stderr\n` to stderr, then responds 200 text/plain `ok`. */
export const stdout: GuestSource = (o) =>
  guest(
    (g) => `
    (call $log_stdout ${g.str('to-stdout\n')})
    (call $log_stderr ${g.str('to-stderr\n')})
    ${replyText(g, 200, 'ok')}`,
    o,
  );

/** 200 text/plain listing wasi:cli/environment get-environment as `NAME=value\n` lines, in order. */
export const env: GuestSource = (o) =>
  guest(
    (g) => `
    (call $print_pairs (call $env) ${g.str('=')})
    ${replyText(g, 200)}`,
    o,
  );

/**
 * A guest with state: a counter in linear memory, answered as status 200+n on its n-th request
 * (empty body), and a trap on its 3rd. Shows whether an instance is reused, recycled, or fresh.
 */
export const counter: GuestSource = (o) =>
  guest((g) => {
    const cell = g.data(new Uint8Array(4));
    g.local('c');
    g.local('rh');
    return `
    (local.set $c (i32.add (i32.load (i32.const ${cell})) (i32.const 1)))
    (i32.store (i32.const ${cell}) (local.get $c))
    (if (i32.eq (local.get $c) (i32.const 3)) (then unreachable))
    (local.set $rh (call $fields.new))
    (call $respond (local.get $outparam) (i32.add (i32.const 200) (local.get $c)) (local.get $rh))
    (drop (call $finish))`;
  }, o);

/** Blocks 10 s on a monotonic-clock pollable (wasi:io/poll block), then responds 200 `slept`: for the wall-clock limit. */
export const sleep: GuestSource = (o) =>
  guest((g) => {
    g.local('p');
    return `
    (local.set $p (call $clock.subscribe-duration (i64.const 10000000000)))
    (call $pollable.block (local.get $p))
    (call $pollable.drop (local.get $p))
    ${replyText(g, 200, 'slept')}`;
  }, o);

/** Sends the head and `spinning\n` (flushed), then spins forever: a CPU limit hit after the head. */
export const spinAfterHead: GuestSource = (o) =>
  guest(
    (g) => `
    (call $respond (local.get $outparam) (i32.const 200) ${headers(g, TEXT_PLAIN)})
    (drop (call $write ${g.str('spinning\n')}))
    (drop (call $flush))
    ${nap(g)}
    (loop $forever (br $forever))`,
    o,
  );

/**
 * Sets the response (200, text/plain, and `x-bytes: é`, bytes c3 a9), naps so its head goes out on
 * its own, then writes `body\n` and finishes: header bytes must reach the client as the guest set them.
 */
export const headFirst: GuestSource = (o) =>
  guest(
    (g) => `
    (call $respond (local.get $outparam) (i32.const 200) ${headers(g, [...TEXT_PLAIN, ['x-bytes', '\u00e9']])})
    ${nap(g)}
    (drop (call $write ${g.str('body\n')}))
    (drop (call $finish))`,
    o,
  );

/** Grows linear memory a page at a time until memory.grow fails, then traps (a memory bomb). */
export const memoryBomb: GuestSource = (o) =>
  guest(
    () => `
    (block $full (loop $grow
      (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (br $grow)))
    unreachable`,
    o,
  );

/** Creates `fields` resources in a loop and never drops them: host-side objects pile up until the sandbox's JS heap cap stops it. */
export const fieldsBomb: GuestSource = (o) =>
  guest(() => `
    (loop $more
      (drop (call $fields.new))
      (br $more))`, o);

/**
 * WAT that blocks 20 ms on a monotonic-clock pollable: the host sends what the guest flushed before
 * it blocks, so a guest that naps after flushing has its response head on the wire for sure.
 */
function nap(g: { local(name: string): string }): string {
  g.local('nap');
  return `
    (local.set $nap (call $clock.subscribe-duration (i64.const 20000000)))
    (call $pollable.block (local.get $nap))
    (call $pollable.drop (local.get $nap))`;
}

/**
 * 200 text/plain whose body is the request's path with query and `\n`; a path that starts with
 * `/spin` loops forever instead (for tests of requests that share a sandbox with a runaway one),
 * and one that starts with `/nap` sets its response, naps (so its head goes out on its own), then
 * writes the same body and finishes.
 */
export const path: GuestSource = (o) =>
  guest((g) => {
    g.local('pp');
    g.local('pl');
    /** WAT statement: `body` when the path starts with the ASCII `prefix`. */
    const whenPathStarts = (prefix: string, body: string): string => {
      const bytes = [...prefix].map((c, i) => `(i32.eq (i32.load8_u offset=${i} (local.get $pp)) (i32.const ${c.charCodeAt(0)}))`);
      return `(if (i32.ge_u (local.get $pl) (i32.const ${prefix.length}))
      (then (if ${bytes.reduce((a, b) => `(i32.and ${a} ${b})`)} (then ${body}))))`;
    };
    return `
    (call $path (local.get $req)) (local.set $pl) (local.set $pp)
    ${whenPathStarts('/spin', '(loop $forever (br $forever))')}
    ${whenPathStarts('/nap', `
          (call $respond (local.get $outparam) (i32.const 200) ${headers(g, TEXT_PLAIN)})
          ${nap(g)}
          (drop (call $write (local.get $pp) (local.get $pl)))
          (drop (call $write ${g.str('\n')}))
          (drop (call $finish))
          (return)`)}
    (call $print (local.get $pp) (local.get $pl))
    ${print(g, NL)}
    ${replyText(g, 200)}`;
  }, o);

/** Every guest by its name. */
export const guests = {
  hello,
  echo,
  headers: headersGuest,
  'set-cookie': setCookie,
  'bad-fields': badFields,
  'bad-status': badStatus,
  trap,
  'trap-after-head': trapAfterHead,
  unsized,
  'no-response': noResponse,
  'error-response': errorResponse,
  'unfinished-body': unfinishedBody,
  'short-body': shortBody,
  'long-body': longBody,
  'big-response': bigResponse,
  loop,
  stdout,
  env,
  counter,
  sleep,
  'spin-after-head': spinAfterHead,
  'head-first': headFirst,
  'memory-bomb': memoryBomb,
  'fields-bomb': fieldsBomb,
  path,
} satisfies Record<string, GuestSource>;

/** The name of a guest in `guests`. */
export type GuestName = keyof typeof guests;

/** The names of all guests. */
export const guestNames = Object.keys(guests) as GuestName[];

/** Builds guest `name` (cached) and returns the absolute path of its component file. */
export function buildGuest(name: GuestName, opts?: GuestOptions): Promise<string> {
  return buildComponentFile(name, guests[name](opts));
}

/** Builds guest `name` (cached) and returns the component bytes. */
export function buildGuestBytes(name: GuestName, opts?: GuestOptions): Promise<Uint8Array> {
  return buildComponent(name, guests[name](opts));
}
