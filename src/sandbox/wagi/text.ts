/**
 * Byte/text helpers for the CGI layer: percent-decoding (RFC 3986 §2.1) and recovering the bytes
 * node's HTTP parser handed us as latin1 strings.
 */

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30; // 0-9
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10; // a-f, A-F
  return -1;
}

/**
 * Percent-decodes `text` once (RFC 3986 §2.1) and reads the resulting bytes as UTF-8.
 *
 * - Every `%XX` with two hex digits becomes the byte 0xXX; `+` is NOT a space (that is form
 *   encoding, not URI encoding).
 * - An invalid escape (`%` not followed by two hex digits, e.g. `%zz`, a trailing `%`) is kept
 *   literally, as WHATWG URL and Spin's percent-decoder do; nothing is rejected.
 * - Byte sequences that are not valid UTF-8 (e.g. `%FF`) become U+FFFD, like Spin's
 *   `decode_utf8_lossy`; callers that need the exact bytes keep the raw (encoded) form beside it.
 * Never throws.
 */
export function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  const input = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(input.length);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i];
    if (byte === 0x25 && i + 2 < input.length) {
      const hi = hexValue(input[i + 1]);
      const lo = hexValue(input[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[n++] = byte;
  }
  return utf8.decode(out.subarray(0, n));
}

/**
 * node's HTTP parser gives header values and the request target as latin1 strings: one char per
 * byte. Clients send UTF-8 there, so this turns such a string back into its bytes and reads them
 * as UTF-8 (invalid sequences → U+FFFD). Pure-ASCII strings, and strings that already hold chars
 * above U+00FF (not from node's parser), are returned unchanged.
 */
export function latin1BytesAsUtf8(value: string): string {
  let high = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0xff) return value;
    if (c >= 0x80) high = true;
  }
  return high ? utf8.decode(Buffer.from(value, 'latin1')) : value;
}
