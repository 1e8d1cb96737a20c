import { describe, expect, it } from 'vitest';
import { compileGlob } from './glob.js';

describe('compileGlob', () => {
  it.each([
    ['/p/src/**', '/p/src/index.ts', true],
    ['/p/src/**', '/p/src/a/b/c.ts', true],
    ['/p/src/**', '/p/srcx/a.ts', false],
    ['/p/src/**', '/p/other/a.ts', false],
    ['/p/src/**/*.ts', '/p/src/a.ts', true],
    ['/p/src/**/*.ts', '/p/src/a/b.ts', true],
    ['/p/src/**/*.ts', '/p/src/a/b.js', false],
    ['/p/src/*.ts', '/p/src/a.ts', true],
    ['/p/src/*.ts', '/p/src/a/b.ts', false],
    ['/p/src/?.ts', '/p/src/a.ts', true],
    ['/p/src/?.ts', '/p/src/ab.ts', false],
    ['/p/lib/**/*.{js,ts}', '/p/lib/x/y.js', true],
    ['/p/lib/**/*.{js,ts}', '/p/lib/y.ts', true],
    ['/p/lib/**/*.{js,ts}', '/p/lib/y.tsx', false],
    ['/p/{src,lib}/*.ts', '/p/lib/a.ts', true],
    ['/p/a.b/*.ts', '/p/aXb/c.ts', false],
    ['/p/shared', '/p/shared', true],
    ['/p/shared', '/p/shared/deep/x.ts', true],
    ['/p/shared', '/p/shared2/x.ts', false],
    ['/p/index.ts', '/p/index.ts', true],
    ['/p/**', '/p/node_modules/x/y.js', true],
  ])('%s matches %s: %s', (glob, path, expected) => {
    expect(compileGlob(glob).matches(path)).toBe(expected);
  });

  it.each([
    ['/p/src/**/*.ts', '/p/src'],
    ['/p/{src,lib}/*.ts', '/p'],
    ['/p/index.ts', '/p/index.ts'],
    ['/p/shared/', '/p/shared'],
    ['/**', '/'],
  ])('the base of %s is %s', (glob, base) => {
    expect(compileGlob(glob).base).toBe(base);
  });
});
