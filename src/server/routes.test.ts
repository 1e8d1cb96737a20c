import { describe, expect, it } from 'vitest';
import { RouteTable, parseRoute, type RoutePattern } from './routes.js';

const table = (...routes: string[]) =>
  new RouteTable(routes.map((r) => ({ route: parseRoute(r) as RoutePattern, target: r })));

describe('parseRoute', () => {
  it('splits host, path, wildcard and prefix', () => {
    expect(parseRoute('/hello/*')).toMatchObject({ host: null, path: '/hello', wildcard: true, prefix: '/hello' });
    expect(parseRoute('/*')).toMatchObject({ host: null, wildcard: true, prefix: '' });
    expect(parseRoute('Example.COM/api/*')).toMatchObject({ host: 'example.com', path: '/api', wildcard: true });
    expect(parseRoute('[::1]:8080/x')).toMatchObject({ host: '[::1]:8080', path: '/x', wildcard: false, prefix: '/x' });
    expect(parseRoute('/a/')).toMatchObject({ path: '/a/', prefix: '/a', wildcard: false });
  });

  it('rejects patterns it cannot match literally', () => {
    for (const bad of ['hello', '/a*b', '/:id', '/a?b', '*/x']) expect(typeof parseRoute(bad)).toBe('string');
  });
});

describe('RouteTable precedence: most specific wins', () => {
  const t = table('/*', '/api/*', '/api/v1/*', '/api/v1/users', 'example.com/*', '*.example.com/api/*', 'a.example.com/api/*');

  it.each([
    ['other.test', '/', '/*'],
    ['other.test', '/api', '/api/*'],
    ['other.test', '/api/x', '/api/*'],
    ['other.test', '/api/v1/x', '/api/v1/*'],
    ['other.test', '/api/v1/users', '/api/v1/users'],
    ['other.test', '/apix', '/*'],
    ['example.com', '/api/v1/users', 'example.com/*'],
    ['example.com:8787', '/x', 'example.com/*'],
    ['b.example.com', '/api/x', '*.example.com/api/*'],
    ['b.example.com', '/other', '/*'],
    ['a.example.com', '/api/x', 'a.example.com/api/*'],
    ['A.Example.Com', '/api/x', 'a.example.com/api/*'],
    ['example.com', '/api/x', 'example.com/*'],
  ])('%s%s → %s', (host, path, want) => {
    expect(t.match(host, path)?.target).toBe(want);
  });

  it('matches the raw path: an encoded slash is not a separator', () => {
    expect(table('/a/b').match('h', '/a%2Fb')).toBeNull();
  });

  it('returns null when nothing matches', () => {
    expect(table('/a').match('h', '/b')).toBeNull();
    expect(table('example.com/a').match('other.com', '/a')).toBeNull();
  });

  it('respects a port in the host pattern', () => {
    const p = table('localhost:8080/x');
    expect(p.match('localhost:8080', '/x')?.target).toBe('localhost:8080/x');
    expect(p.match('localhost:9090', '/x')).toBeNull();
  });

  it('lists entries most specific first', () => {
    expect(t.entries.map((e) => e.target)).toEqual([
      'a.example.com/api/*', 'example.com/*', '*.example.com/api/*', '/api/v1/users', '/api/v1/*', '/api/*', '/*',
    ]);
  });
});

describe('RouteTable built from the table it replaces', () => {
  const entry = (r: string, target: object) => ({ route: parseRoute(r) as RoutePattern, target });
  const v1 = { v: 1 };
  const v2 = { v: 2 };
  const other = { v: 'other' };
  const first = new RouteTable([entry('a.test/x', v1), entry('b.test/*', other), entry('/shared', other)]);

  it('routes by the new entries where a host changed, and keeps the rest', () => {
    const next = new RouteTable([entry('a.test/x', v2), entry('a.test/y/*', v2), entry('b.test/*', other), entry('/shared', other)], first);
    expect(next.match('a.test', '/x')?.target).toBe(v2);
    expect(next.match('a.test', '/y/z')?.target).toBe(v2);
    expect(next.match('b.test', '/anything')?.target).toBe(other);
    expect(next.match('c.test', '/shared')?.target).toBe(other);
    expect(first.match('a.test', '/x')?.target).toBe(v1); // the old table is unchanged
    expect(first.match('a.test', '/y/z')).toBeNull();
  });

  it('drops routes that are gone, even when the host keeps others', () => {
    const next = new RouteTable([entry('a.test/x', v1)], first);
    expect(next.match('a.test', '/x')?.target).toBe(v1);
    expect(next.match('b.test', '/anything')).toBeNull();
    expect(next.match('c.test', '/shared')).toBeNull();
  });

  it('reuses the bucket of a host whose routes and targets are unchanged', () => {
    type Buckets = { buckets: Map<string, unknown> };
    const next = new RouteTable([entry('a.test/x', v2), entry('b.test/*', other), entry('/shared', other)], first);
    const before = (first as unknown as Buckets).buckets;
    const after = (next as unknown as Buckets).buckets;
    expect(after.get('b.test')).toBe(before.get('b.test'));
    expect(after.get('')).toBe(before.get(''));
    expect(after.get('a.test')).not.toBe(before.get('a.test'));
  });
});
