import { describe, expect, it } from 'vitest';
import { Fields, latin1 } from './fields.js';

describe('latin1', () => {
  it("decodes like Buffer#toString('latin1'), short and long, views and heap copies", () => {
    const all = new Uint8Array(256).map((_, i) => i);
    for (const bytes of [new Uint8Array(0), all.subarray(0, 40), all, all.subarray(200), new Uint8Array(1000).fill(0xe9), all.slice(3, 9)]) {
      expect(latin1(bytes)).toBe(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'));
    }
  });

  it('gives toRaw the header values byte for byte', () => {
    const f = Fields.fromList([['X-A', new Uint8Array([0x61, 0xe9, 0x09, 0x62])], ['x-b', new Uint8Array(300).fill(0x7a)]]);
    if (!(f instanceof Fields)) throw new Error('fields rejected');
    expect(f.toRaw()).toEqual(['x-a', 'a\u00e9\tb', 'x-b', 'z'.repeat(300)]);
  });
});
