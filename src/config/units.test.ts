import { describe, expect, it } from 'vitest';
import { describeValue, formatBytes, MAX_DURATION_MS, parseDuration, parseSize } from './units.js';

function value(r: ReturnType<typeof parseDuration>): number {
  if (!r.ok) throw new Error(r.message);
  return r.value;
}
function message(r: ReturnType<typeof parseDuration>): string {
  if (r.ok) throw new Error(`expected an error, got ${r.value}`);
  return r.message;
}

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [30000, 30000],
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1.5s', 1500],
    ['0.5m', 30_000],
    ['0.001s', 1],
    [' 2 s ', 2000],
    ['0h', 0],
    [MAX_DURATION_MS, MAX_DURATION_MS],
  ])('%j is %d ms', (input, ms) => {
    expect(value(parseDuration(input))).toBe(ms);
  });

  it.each([
    ['30x', /unknown unit "x" in "30x"; accepted units: ms, s, m, h/],
    ['30S', /did you mean "s"\? units are case-sensitive/],
    ['10 seconds', /did you mean "s"\?/],
    ['5 mins', /did you mean "m"\?/],
    ['500', /"500" has no unit; write "500ms"/],
    ['1.0005s', /not a whole number of milliseconds/],
    ['-1s', /cannot be negative/],
    [-5, /cannot be negative/],
    [1.5, /1.5 is not a whole number of milliseconds/],
    ['.5s', /is not a duration/],
    ['s', /is not a duration/],
    ['', /is not a duration/],
    [true, /found boolean true/],
    [Infinity, /found Infinity/],
    [NaN, /found NaN/],
    ['25d', /unknown unit "d"/],
    [MAX_DURATION_MS + 1, /too large; the most allowed is 2147483647 ms/],
    ['600h', /too large/],
  ])('%j is rejected', (input, expected) => {
    expect(message(parseDuration(input))).toMatch(expected);
  });
});

describe('parseSize', () => {
  it.each([
    [0, 0],
    [1048576, 1048576],
    ['10B', 10],
    ['1KB', 1000],
    ['1MB', 1_000_000],
    ['2GB', 2_000_000_000],
    ['1KiB', 1024],
    ['1MiB', 1024 ** 2],
    ['1GiB', 1024 ** 3],
    ['1.5KiB', 1536],
    ['1.1KB', 1100], // exact: not 1100.0000000000002
    ['0.5GiB', 512 * 1024 ** 2],
    ['128 MiB', 128 * 1024 ** 2],
  ])('%j is %d bytes', (input, bytes) => {
    expect(value(parseSize(input))).toBe(bytes);
  });

  it.each([
    ['1TB', /unknown unit "TB" in "1TB"; accepted units: B, KB, MB, GB, KiB, MiB, GiB/],
    ['1mib', /did you mean "MiB"\?/],
    ['1kb', /did you mean "KB"\?/],
    ['1.5B', /not a whole number of bytes/],
    ['1024', /has no unit; write "1024B"/],
    [-1, /cannot be negative/],
    [1.5, /not a whole number of bytes/],
    [[1], /expected a size: .*, found an array/],
    [{}, /found a table/],
    ['9999999GiB', /too large/],
  ])('%j is rejected', (input, expected) => {
    expect(message(parseSize(input))).toMatch(expected);
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1000, '1000 B'],
    [1024, '1 KiB'],
    [65536, '64 KiB'],
    [128 * 1024 ** 2, '128 MiB'],
    [1024 ** 3, '1 GiB'],
    [1536 * 1024, '1536 KiB'],
  ])('%d is %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('describeValue', () => {
  it('names TOML types', () => {
    expect(describeValue('x')).toBe('the string "x"');
    expect(describeValue(5)).toBe('integer 5');
    expect(describeValue(0.5)).toBe('float 0.5');
    expect(describeValue(false)).toBe('boolean false');
    expect(describeValue([])).toBe('an array');
    expect(describeValue({})).toBe('a table');
    expect(describeValue('a'.repeat(50))).toBe(`the string "${'a'.repeat(37)}..."`);
  });
});
