/**
 * Caps a core module's linear memory by rewriting the limits in its memory section (Wasm core
 * spec §5.5.8 memory section, §5.3.8 limits): the maximum becomes min(declared maximum, cap).
 * `resourceLimits` bounds only a worker's JS heap, not Wasm memory (FACTS.md), and componentize-js
 * output declares no maximum, so this is what stops a `memory.grow` bomb: growth past the cap
 * fails (returns -1) inside the guest, which typically traps.
 *
 * Imported memories are left alone (they belong to the module that defines them).
 */
import { IsolaError } from '../errors.js';

const PAGE = 65536;

function readU32(b: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    const byte = b[pos++]!;
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result >>> 0, pos];
    shift += 7;
    if (shift > 35) throw new Error('bad LEB128');
  }
}

function writeU32(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/**
 * Returns `bytes` with every defined 32-bit memory capped at `capBytes` (rounded down to pages).
 * Throws IsolaError ERR_WASM_INVALID (400) when a memory's minimum already exceeds the cap.
 * Returns the input unchanged when there is no memory section.
 */
export function capMemory(bytes: Uint8Array, capBytes: number): Uint8Array {
  const capPages = Math.floor(capBytes / PAGE);
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos]!;
    const [size, bodyStart] = readU32(bytes, pos + 1);
    const bodyEnd = bodyStart + size;
    if (id === 5) {
      let p = bodyStart;
      const [count, afterCount] = readU32(bytes, p);
      p = afterCount;
      const body: number[] = writeU32(count);
      for (let i = 0; i < count; i++) {
        const flags = bytes[p++]!;
        if (flags & 0x04) return bytes; // memory64: leave alone
        const [min, afterMin] = readU32(bytes, p);
        p = afterMin;
        let max: number | null = null;
        if (flags & 0x01) {
          const [m, afterMax] = readU32(bytes, p);
          max = m;
          p = afterMax;
        }
        if (min > capPages) {
          throw new IsolaError('ERR_WASM_INVALID', `the module needs at least ${min * PAGE} bytes of memory, over the ${capPages * PAGE}-byte limit`, {
            status: 400, user: true, hint: 'raise limits.memory or shrink the module\'s initial memory',
          });
        }
        const newMax = max === null ? capPages : Math.min(max, capPages);
        body.push(flags | 0x01, ...writeU32(min), ...writeU32(newMax));
      }
      const section = [5, ...writeU32(body.length), ...body];
      const out = new Uint8Array(pos + section.length + (bytes.length - bodyEnd));
      out.set(bytes.subarray(0, pos), 0);
      out.set(section, pos);
      out.set(bytes.subarray(bodyEnd), pos + section.length);
      return out;
    }
    pos = bodyEnd;
  }
  return bytes;
}
