import { describe, expect, it } from 'vitest';
import { formatKeyPath, KeyLocator, type KeyPath } from './locate.js';

/** Locates `path` in `source` as "line:column", or null. */
function at(source: string, path: KeyPath): string | null {
  const pos = new KeyLocator(source).locate(path);
  return pos ? `${pos.line}:${pos.column}` : null;
}

describe('KeyLocator', () => {
  it('finds top-level keys and keys under table headers', () => {
    const src = 'title = "x"\n\n[server]\n  port = 1\nhost="h"\n';
    expect(at(src, ['title'])).toBe('1:1');
    expect(at(src, ['server'])).toBe('3:2');
    expect(at(src, ['server', 'port'])).toBe('4:3');
    expect(at(src, ['server', 'host'])).toBe('5:1');
    expect(at(src, ['port'])).toBeNull();
  });

  it('indexes arrays of tables and the tables under them', () => {
    const src = [
      '[[functions]]', // 1
      'name = "a"',
      '[functions.limits]',
      'timeout = "1s"',
      '[[functions]]', // 5
      'name = "b"',
      '[functions.pool]',
      'min_warm = 0',
    ].join('\n');
    expect(at(src, ['functions'])).toBe('1:3');
    expect(at(src, ['functions', 0])).toBe('1:3');
    expect(at(src, ['functions', 0, 'name'])).toBe('2:1');
    expect(at(src, ['functions', 0, 'limits'])).toBe('3:12');
    expect(at(src, ['functions', 0, 'limits', 'timeout'])).toBe('4:1');
    expect(at(src, ['functions', 1])).toBe('5:3');
    expect(at(src, ['functions', 1, 'name'])).toBe('6:1');
    expect(at(src, ['functions', 1, 'pool', 'min_warm'])).toBe('8:1');
    expect(at(src, ['functions', 1, 'limits'])).toBeNull();
  });

  it('counts nested arrays of tables per parent element', () => {
    const src = '[[a]]\n[[a.b]]\nx = 1\n[[a.b]]\nx = 2\n[[a]]\n[[a.b]]\nx = 3\n';
    expect(at(src, ['a', 0, 'b', 1, 'x'])).toBe('5:1');
    expect(at(src, ['a', 1, 'b', 0, 'x'])).toBe('8:1');
    expect(at(src, ['a', 1, 'b', 1])).toBeNull();
  });

  it('follows dotted keys, with spaces and quotes', () => {
    const src = '[f]\nlimits . "time out".x = 1\n\'lit.eral\' = 2\n';
    expect(at(src, ['f', 'limits'])).toBe('2:1');
    expect(at(src, ['f', 'limits', 'time out'])).toBe('2:10');
    expect(at(src, ['f', 'limits', 'time out', 'x'])).toBe('2:21');
    expect(at(src, ['f', 'lit.eral'])).toBe('3:1');
  });

  it('decodes escapes in quoted keys', () => {
    expect(at('"a\\u0062" = 1\n"q\\"" = 2\n', ['ab'])).toBe('1:1');
    expect(at('"a\\u0062" = 1\n"q\\"" = 2\n', ['q"'])).toBe('2:1');
  });

  it('looks inside inline tables and arrays, including arrays of inline tables', () => {
    const src = [
      'env = { A = "1", "B C" = { d = 2 } }',
      'functions = [',
      '  { name = "x", routes = ["/a", "/b"] },',
      '  # a comment with = and [brackets]',
      '  { name = "y",',
      '    routes = [',
      '      "/c", # trailing comment',
      '      "/d",',
      '    ] },',
      ']',
      'after = 1',
    ].join('\n');
    expect(at(src, ['env', 'A'])).toBe('1:9');
    expect(at(src, ['env', 'B C', 'd'])).toBe('1:28');
    expect(at(src, ['functions', 0])).toBe('3:3');
    expect(at(src, ['functions', 0, 'name'])).toBe('3:5');
    expect(at(src, ['functions', 0, 'routes', 1])).toBe('3:33');
    expect(at(src, ['functions', 1, 'name'])).toBe('5:5');
    expect(at(src, ['functions', 1, 'routes', 0])).toBe('7:7');
    expect(at(src, ['functions', 1, 'routes', 1])).toBe('8:7');
    expect(at(src, ['after'])).toBe('11:1');
  });

  it('is not fooled by strings and comments that look like TOML', () => {
    const src = [
      's = "[not.a.table] # x = 1"',
      "l = 'x = \"y\"'",
      'm = """',
      '[fake]',
      'k = "\\"""" "',
      '"""',
      "n = '''",
      "[fake2] ''''",
      '# [fake3]',
      'real = 1',
      'd = 1979-05-27 07:32:00Z',
      'e = [1979-05-27 07:32:00, 2]',
      'last = true',
    ].join('\n');
    const loc = new KeyLocator(src);
    expect(loc.locate(['fake'])).toBeNull();
    expect(loc.locate(['fake2'])).toBeNull();
    expect(loc.locate(['fake3'])).toBeNull();
    expect(at(src, ['real'])).toBe('10:1');
    expect(at(src, ['e', 1])).toBe('12:27');
    expect(at(src, ['last'])).toBe('13:1');
  });

  it('handles CRLF line endings', () => {
    expect(at('[server]\r\nport = 1\r\n', ['server', 'port'])).toBe('2:1');
  });

  it('falls back to the nearest written ancestor', () => {
    const loc = new KeyLocator('[[functions]]\nname = "a"\n[functions.limits]\n');
    expect(loc.locateNearest(['functions', 0, 'wasm'])).toEqual({ line: 1, column: 3 });
    expect(loc.locateNearest(['functions', 0, 'limits', 'timeout'])).toEqual({ line: 3, column: 12 });
    expect(loc.locateNearest(['server', 'port'])).toBeNull();
    expect(loc.locateNearest([])).toBeNull();
  });

  it('terminates on text that is not TOML', () => {
    for (const junk of ['[', '[[', 'a = [', 'a = {', '"', '= = =', 'a = """', 'x.\n', '[a.]\n', '\\']) {
      expect(() => new KeyLocator(junk)).not.toThrow();
    }
  });
});

describe('formatKeyPath', () => {
  it('writes paths as a user would', () => {
    expect(formatKeyPath(['functions', 1, 'limits', 'timeout'])).toBe('functions[1].limits.timeout');
    expect(formatKeyPath(['functions', 0, 'files', '/static'])).toBe('functions[0].files["/static"]');
    expect(formatKeyPath(['a b', 'c'])).toBe('["a b"].c');
    expect(formatKeyPath([])).toBe('');
  });
});
