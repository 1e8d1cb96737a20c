/**
 * The jco glue of a component artifact as a classic script (`guest.script.js` beside `guest.mjs`),
 * so that sandboxes can load it with a V8 code cache (../sandbox/glue-loader.ts): Node 20 has no
 * compile cache for ES modules, and a fresh thread compiling the glue module costs a small
 * component's first request most of its time (issue 5).
 *
 * The script evaluates to a function returning the module's exports; nothing else changes but a
 * stand-in for `WebAssembly.promising` (see PRELUDE; jco's `--instantiation async` glue has no
 * static imports and is strict, as a module is). Lines keep their numbers, so stack traces of
 * guest traps point at the same glue lines.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** File name of the script form in an artifact folder (the number changes with the transform). */
export const GLUE_SCRIPT_FILE = 'guest.script.1.js';

/**
 * Runs before the glue, on its first line. jco's glue calls `WebAssembly.promising` (JSPI) inside
 * a try/catch and falls back when it throws; Node 20 has no JSPI, and V8 words the TypeError of
 * calling a missing function ("… is not a function") by re-parsing the whole calling function —
 * jco's ~2,000-line instantiation body, ~1.5 ms of every instantiation. A stand-in that throws
 * itself takes the same fallback without the re-parse. Shadowing `WebAssembly` keeps the stand-in
 * inside the glue.
 */
const PRELUDE =
  "const WebAssembly = typeof globalThis.WebAssembly.promising === 'function' ? globalThis.WebAssembly : " +
  "Object.create(globalThis.WebAssembly, { promising: { value: function promising() { throw new TypeError('WebAssembly.promising is not available'); } } });";
const EXPORT_INSTANTIATE = 'export function instantiate(';
const EXPORT_UTIL = 'export const _util =';

/**
 * The glue module's source as a classic script evaluating to a function that returns the module's
 * exports (`instantiate`, and `_util` when present); null when the source is not of the expected
 * shape (a static import, any other export), which leaves the sandbox importing the module.
 * @param glueUrl the module's URL, substituted for `import.meta.url`
 */
export function glueScriptSource(src: string, glueUrl: string): string | null {
  if (/^\s*import[\s{*'"]/m.test(src)) return null;
  const exports = src.match(/^export\b.*$/gm) ?? [];
  const known = exports.every((l) => l.startsWith(EXPORT_INSTANTIATE) || l.startsWith(EXPORT_UTIL));
  if (!known || !exports.some((l) => l.startsWith(EXPORT_INSTANTIATE))) return null;
  const hasUtil = exports.some((l) => l.startsWith(EXPORT_UTIL));
  const body = src
    .replace(/^export function instantiate\(/m, 'function instantiate(')
    .replace(/^export const _util =/m, 'const _util =')
    .replaceAll('import.meta.url', JSON.stringify(glueUrl));
  return `(function () { 'use strict'; ${PRELUDE} ${body}\nreturn { instantiate${hasUtil ? ', _util' : ''} };\n})`;
}

/** The last line of a script form: its body's length and sha256, so a damaged file is noticed. */
const TRAILER = /\n\/\/# isola-glue-script bytes=(\d+) sha256=([0-9a-f]{64})\n$/;

/** `body` with its verification trailer (see TRAILER). */
function sealed(body: string): string {
  const bytes = Buffer.byteLength(body);
  return `${body}\n//# isola-glue-script bytes=${bytes} sha256=${createHash('sha256').update(body).digest('hex')}\n`;
}

/** true when `text` is a whole script form: trailer present, length and sha256 matching. */
export function isSealedScript(text: string): boolean {
  const m = TRAILER.exec(text);
  if (!m) return false;
  const body = text.slice(0, m.index);
  return Buffer.byteLength(body) === Number(m[1]) && createHash('sha256').update(body).digest('hex') === m[2];
}

/**
 * Makes sure the artifact folder `dir` holds the script form of its glue `glueFile`: written to a
 * temporary file, fsync'd and renamed into place, so readers never see half of it; an existing
 * one that is truncated, empty or altered (its trailer's length and sha256 no longer match) is
 * written again.
 * @returns the script's file URL, or null when the glue's shape does not allow one
 * @throws when the glue cannot be read or the folder cannot be written
 */
export async function ensureGlueScript(dir: string, glueFile: string): Promise<string | null> {
  const file = join(dir, GLUE_SCRIPT_FILE);
  const url = pathToFileURL(file).href;
  try {
    // Every function of one artifact asks (1,000 functions at a start): a file unchanged since
    // this process checked it is not read and hashed again. Only files last written over a
    // second before the check are remembered: timestamps are coarse, and a rewrite within the
    // same tick as the write before it could otherwise keep its size and mtime.
    const st = await stat(file, { bigint: true });
    const id = `${st.size}:${st.mtimeNs}`;
    if (checked.get(file) === id) return url;
    if (isSealedScript(await readFile(file, 'utf8'))) {
      if (Number(st.mtimeNs / 1_000_000n) < Date.now() - 1000) checked.set(file, id);
      return url;
    }
  } catch {
    /* not written yet */
  }
  const glueUrl = pathToFileURL(join(dir, glueFile)).href;
  const script = glueScriptSource(await readFile(join(dir, glueFile), 'utf8'), glueUrl);
  if (script === null) return null;
  const tmp = `${file}.${process.pid}-${Date.now()}.tmp`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(sealed(script));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return url;
}

/** Script forms this process has found sealed, by path: their size and mtime (ns) then. */
const checked = new Map<string, string>();
