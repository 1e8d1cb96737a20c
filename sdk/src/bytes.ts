/**
 * Header bytes ↔ strings. HTTP field values are bytes; the Fetch API exposes them as "byte
 * strings" (one UTF-16 code unit per byte, as browsers and Workers do), so the adapter maps bytes
 * to code units 0–255 and back, without guessing an encoding.
 */

/** Decodes bytes as latin-1 (byte n → code unit n). */
export function latin1(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

const utf8 = new TextEncoder();

/**
 * Encodes a header value: code units 0–255 become one byte each (the inverse of {@link latin1});
 * a value holding any code unit above 255 (which Headers should have refused) is sent as UTF-8.
 */
export function headerBytes(value: string): Uint8Array {
  const bytes = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit > 255) return utf8.encode(value);
    bytes[i] = unit;
  }
  return bytes;
}
