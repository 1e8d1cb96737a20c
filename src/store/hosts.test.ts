/** Tenancy rules for hosts: overlap, reservation of the base domain, resolving host-less routes. */
import { describe, expect, it } from 'vitest';
import { hostname, hostsOverlap, isReserved, resolveRoutes } from './hosts.js';

describe('hostsOverlap', () => {
  it.each([
    ['a.com', 'a.com', true],
    ['a.com', 'b.com', false],
    ['*.a.com', 'x.a.com', true],
    ['*.a.com', 'a.com', false],
    ['*.a.com', 'y.x.a.com', true],
    ['*.a.com', '*.x.a.com', true],
    ['*.a.com', '*.b.com', false],
    ['*.a.com', 'xa.com', false],
  ])('%s / %s → %s', (a, b, want) => {
    expect(hostsOverlap(a, b)).toBe(want);
    expect(hostsOverlap(b, a)).toBe(want);
  });
});

describe('hostname', () => {
  it('drops the port and lower-cases', () => {
    expect(hostname('API.Example.com:8080')).toBe('api.example.com');
    expect(hostname('[::1]:80')).toBe('[::1]');
    expect(hostname('*.x.com')).toBe('*.x.com');
  });
});

describe('resolveRoutes', () => {
  it('puts a route without a host on the tenant default host, keeps custom hosts, drops repeats', () => {
    expect(resolveRoutes('alice', 'localhost', ['/hello/*', 'API.example.com/v1', '/hello/*', 'x.alice.localhost/'])).toEqual([
      'alice.localhost/hello/*', 'api.example.com/v1', 'x.alice.localhost/',
    ]);
  });

  it('refuses names under the base domain outside the tenant zone, with 409 ERR_HOST_CLAIMED', () => {
    for (const r of ['bob.localhost/*', 'localhost/x', '*.localhost/*', 'y.bob.localhost/']) {
      expect(() => resolveRoutes('alice', 'localhost', [r])).toThrow(expect.objectContaining({ code: 'ERR_HOST_CLAIMED', status: 409 }));
    }
    expect(isReserved('*.com', 'fn.example.com')).toBe(true);
  });

  it('refuses malformed routes and an empty list with 400', () => {
    expect(() => resolveRoutes('alice', 'localhost', [])).toThrow(expect.objectContaining({ code: 'ERR_BAD_REQUEST', status: 400 }));
    expect(() => resolveRoutes('alice', 'localhost', ['nope'])).toThrow(expect.objectContaining({ code: 'ERR_BAD_REQUEST' }));
  });
});
