/**
 * `wasi:http/types.fields`: an ordered multimap of header lines. Names are stored lower-cased
 * (as wasmtime and Spin do); values are bytes. Unlike http::HeaderMap, entries keep the exact
 * order lines were received or appended in, duplicates included.
 *
 * Validation follows RFC 9110 §5.1 (names are tokens) and §5.5 (values: visible ASCII, SP, HTAB
 * and obs-text; no CR, LF or NUL). Hop-by-hop fields (RFC 9110 §7.6.1) are forbidden, as in
 * wasmtime-wasi-http. Errors are returned as the WIT `header-error` variant, never thrown as traps.
 */

export type HeaderError = { tag: 'invalid-syntax' } | { tag: 'forbidden' } | { tag: 'immutable' };
type Result<E> = undefined | { tag: 'err'; val: E };

/** Connection-specific fields a guest may not set (RFC 9110 §7.6.1, RFC 9113 §8.2.2). */
export const FORBIDDEN_FIELDS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

const TCHAR = (() => {
  const t = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~") t[c.charCodeAt(0)] = 1;
  for (let i = 48; i <= 57; i++) t[i] = 1;
  for (let i = 65; i <= 90; i++) t[i] = 1;
  for (let i = 97; i <= 122; i++) t[i] = 1;
  return t;
})();

/** true when `name` is an RFC 9110 token (one or more tchar). */
export function isValidFieldName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** true when `value` holds only field-vchar, SP, HTAB and obs-text (no controls, CR, LF, NUL, DEL). */
export function isValidFieldValue(value: Uint8Array): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/**
 * The bytes as a latin1 string (one char per byte), as node's `Buffer#toString('latin1')`. Short
 * values are decoded in JS: reading `.buffer` of a small Uint8Array that lives in the JS heap (as
 * the glue's copies of guest bytes do) would move it to a new off-heap ArrayBuffer.
 */
export function latin1(bytes: Uint8Array): string {
  if (bytes.length > 256) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

const ERR_SYNTAX: { tag: 'err'; val: HeaderError } = { tag: 'err', val: { tag: 'invalid-syntax' } };
const ERR_FORBIDDEN: { tag: 'err'; val: HeaderError } = { tag: 'err', val: { tag: 'forbidden' } };
const ERR_IMMUTABLE: { tag: 'err'; val: HeaderError } = { tag: 'err', val: { tag: 'immutable' } };

function check(name: string, value: Uint8Array | null): Result<HeaderError> {
  if (!isValidFieldName(name)) return ERR_SYNTAX;
  if (FORBIDDEN_FIELDS.has(name.toLowerCase())) return ERR_FORBIDDEN;
  if (value !== null && !isValidFieldValue(value)) return ERR_SYNTAX;
  return undefined;
}

export class Fields {
  /** Flat [name, value, name, value, …], names lower-cased. */
  #names: string[] = [];
  #values: Uint8Array[] = [];
  #immutable = false;

  /** Builds immutable fields from node's rawHeaders (flat [name, value, …], latin1 strings). */
  static fromRaw(raw: readonly string[]): Fields {
    const f = new Fields();
    for (let i = 0; i < raw.length; i += 2) {
      f.#names.push(raw[i]!.toLowerCase());
      f.#values.push(Buffer.from(raw[i + 1]!, 'latin1'));
    }
    f.#immutable = true;
    return f;
  }

  static fromList(entries: Array<[string, Uint8Array]>): Fields | { tag: 'err'; val: HeaderError } {
    const f = new Fields();
    for (const [name, value] of entries) {
      const err = check(name, value);
      if (err) return err;
      f.#names.push(name.toLowerCase());
      f.#values.push(value);
    }
    return f;
  }

  /** Makes these fields read-only (headers of a request or of a response that was handed over). */
  freeze(): this {
    this.#immutable = true;
    return this;
  }

  get(name: string): Uint8Array[] {
    const key = name.toLowerCase();
    const out: Uint8Array[] = [];
    for (let i = 0; i < this.#names.length; i++) if (this.#names[i] === key) out.push(this.#values[i]!);
    return out;
  }

  has(name: string): boolean {
    return this.#names.includes(name.toLowerCase());
  }

  set(name: string, values: Uint8Array[]): Result<HeaderError> {
    if (this.#immutable) return ERR_IMMUTABLE;
    const err = check(name, null) ?? values.map((v) => check(name, v)).find((e) => e !== undefined);
    if (err) return err;
    this.#remove(name.toLowerCase());
    for (const v of values) {
      this.#names.push(name.toLowerCase());
      this.#values.push(v);
    }
    return undefined;
  }

  delete(name: string): Result<HeaderError> {
    if (this.#immutable) return ERR_IMMUTABLE;
    const err = check(name, null);
    if (err) return err;
    this.#remove(name.toLowerCase());
    return undefined;
  }

  append(name: string, value: Uint8Array): Result<HeaderError> {
    if (this.#immutable) return ERR_IMMUTABLE;
    const err = check(name, value);
    if (err) return err;
    this.#names.push(name.toLowerCase());
    this.#values.push(value);
    return undefined;
  }

  entries(): Array<[string, Uint8Array]> {
    const out: Array<[string, Uint8Array]> = new Array(this.#names.length);
    for (let i = 0; i < this.#names.length; i++) out[i] = [this.#names[i]!, this.#values[i]!];
    return out;
  }

  clone(): Fields {
    const f = new Fields();
    f.#names = this.#names.slice();
    f.#values = this.#values.slice();
    return f;
  }

  /** Header lines flat [name, value(latin1), …], for node's writeHead. */
  toRaw(): string[] {
    const out: string[] = new Array(this.#names.length * 2);
    for (let i = 0; i < this.#names.length; i++) {
      out[2 * i] = this.#names[i]!;
      out[2 * i + 1] = latin1(this.#values[i]!);
    }
    return out;
  }

  #remove(key: string): void {
    for (let i = this.#names.length - 1; i >= 0; i--) {
      if (this.#names[i] === key) {
        this.#names.splice(i, 1);
        this.#values.splice(i, 1);
      }
    }
  }
}
