import { describe, expect, it } from 'vitest';
import { checkRoute, routeIdentity } from './routes.js';

describe('checkRoute', () => {
  it.each([
    '/',
    '/*',
    '/hello',
    '/hello/*',
    '/hello/',
    '/a/b/c.txt',
    '/%7Euser',
    'example.com/',
    'example.com/api/*',
    '*.example.com/*',
    'localhost:8080/x',
    '127.0.0.1/x',
    '[::1]:8080/x',
    '[2001:db8::1]/x',
    'a-b.c_d.example/x',
  ])('accepts %j', (route) => {
    expect(checkRoute(route)).toBeNull();
  });

  it.each([
    ['', /cannot be empty/],
    ['hello', /has no path/],
    ['example.com', /has no path.*"example.com\/\*"/],
    ['*', /to match every path on every host, write "\/\*"/],
    ['*/x', /a host of "\*" is not needed/],
    ['/a*', /only allowed as a trailing "\/\*"/],
    ['/a/*/b', /only allowed as a trailing/],
    ['/**', /only allowed as a trailing/],
    ['/x?y', /query string/],
    ['/x#y', /fragment/],
    ['/a b', /whitespace/],
    ['-bad.com/x', /not a valid host/],
    ['a.*.com/x', /not a valid host/],
    ['*.*.com/x', /not a valid host/],
    ['host:/x', /not a valid host/],
    ['host:123456/x', /not a valid host/],
    ['host:0/x', /port 0 is out of range/],
    ['host:70000/x', /port 70000 is out of range/],
    ['[::1/x', /not a valid host/],
  ])('rejects %j', (route, expected) => {
    expect(checkRoute(route)).toMatch(expected);
  });
});

describe('routeIdentity', () => {
  it('ignores the case of the host only', () => {
    expect(routeIdentity('Example.COM/Api')).toBe('example.com/Api');
    expect(routeIdentity('/Api')).toBe('/Api');
  });
});
