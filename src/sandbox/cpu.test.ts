import { describe, expect, it } from 'vitest';
import { ThreadClock, parseFirstField } from './cpu.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

describe('parseFirstField', () => {
  it.each([
    ['123456789 42 7\n', 123456789n],
    ['0 0 0\n', 0n],
    ['999999999999999 1 1\n', 999999999999999n],
    ['1234567890123456789 1 1\n', 1234567890123456789n],
    ['77\n', 77n],
    ['5', 5n],
  ])('reads the first field of %j', (text, want) => {
    const b = bytes(text + 'garbage after n');
    expect(parseFirstField(b, text.length)).toBe(want);
  });

  it('throws on a field that is not a decimal number', () => {
    expect(() => parseFirstField(bytes(' 1 2'), 4)).toThrow(SyntaxError);
    expect(() => parseFirstField(bytes('12x 3'), 5)).toThrow(SyntaxError);
  });
});

describe('ThreadClock.self', () => {
  it('reads a clock that never goes backwards and advances with work', () => {
    const clock = ThreadClock.self();
    const a = clock.now();
    const until = performance.now() + 30;
    while (performance.now() < until); // burn ~30 ms of CPU
    const b = clock.now();
    expect(b).toBeGreaterThan(a);
    if (clock.isCpu) expect(Number(b - a) / 1e6).toBeGreaterThan(5); // ticks every ≤ 10 ms
    clock.close();
  });
});
