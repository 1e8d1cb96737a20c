import { describe, expect, it } from 'vitest';
import type { RequestHead } from '../protocol.js';
import { cgiArgv, cgiEnvironment, isReservedCgiName, searchWords } from './cgi.js';
import { latin1BytesAsUtf8, percentDecode } from './text.js';

function head(over: Partial<RequestHead> = {}): RequestHead {
  return {
    id: 'r1',
    method: 'GET',
    scheme: 'http',
    authority: 'example.com:8787',
    pathWithQuery: '/app/rest?x=1',
    rawHeaders: ['Host', 'example.com:8787', 'Accept', '*/*'],
    httpVersion: '1.1',
    remoteAddr: '127.0.0.1',
    remotePort: 50000,
    serverName: 'example.com',
    serverPort: 8787,
    routePrefix: '/app',
    bodyLength: 0,
    ...over,
  };
}

/** node hands the request target and header values over as latin1: one char per byte. */
const asNode = (utf8: string): string => Buffer.from(utf8, 'utf8').toString('latin1');

describe('percentDecode', () => {
  it('decodes escapes once, as UTF-8', () => {
    expect(percentDecode('/a%20b/%C3%A9t%C3%A9')).toBe('/a b/été');
    expect(percentDecode('%2541')).toBe('%41');
    expect(percentDecode('a+b')).toBe('a+b');
  });
  it('keeps invalid escapes literally and replaces invalid UTF-8', () => {
    expect(percentDecode('%zz%4')).toBe('%zz%4');
    expect(percentDecode('100%')).toBe('100%');
    expect(percentDecode('%FFx')).toBe('\uFFFDx');
  });
  it('reads latin1-carried bytes as UTF-8', () => {
    expect(latin1BytesAsUtf8(asNode('ünïcode'))).toBe('ünïcode');
    expect(latin1BytesAsUtf8('plain')).toBe('plain');
  });
});

describe('cgiEnvironment (RFC 3875 §4.1)', () => {
  it('sets the CGI meta-variables', () => {
    const env = cgiEnvironment(head(), { env: {} });
    expect(env).toMatchObject({
      REQUEST_METHOD: 'GET',
      SCRIPT_NAME: '/app',
      PATH_INFO: '/rest',
      X_RAW_PATH_INFO: '/rest',
      PATH_TRANSLATED: '/rest',
      QUERY_STRING: 'x=1',
      SERVER_NAME: 'example.com',
      SERVER_PORT: '8787',
      SERVER_PROTOCOL: 'HTTP/1.1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_HOST: '127.0.0.1',
      X_CLIENT_ADDR: '127.0.0.1:50000',
      X_FULL_URL: 'http://example.com:8787/app/rest?x=1',
      HTTP_HOST: 'example.com:8787',
      HTTP_ACCEPT: '*/*',
    });
    expect(env.SERVER_SOFTWARE).toMatch(/^isola\//);
    expect(env).not.toHaveProperty('CONTENT_LENGTH');
    expect(env).not.toHaveProperty('CONTENT_TYPE');
    expect(env).not.toHaveProperty('X_MATCHED_ROUTE');
  });

  it('decodes a non-ASCII, percent-encoded PATH_INFO and keeps the raw one', () => {
    const env = cgiEnvironment(head({ pathWithQuery: '/app/caf%C3%A9/a%2Fb%20c' }), { env: {} });
    expect(env.PATH_INFO).toBe('/café/a/b c');
    expect(env.X_RAW_PATH_INFO).toBe('/caf%C3%A9/a%2Fb%20c');
  });

  it('reads raw UTF-8 path bytes, invalid escapes literally, NUL as U+FFFD', () => {
    const env = cgiEnvironment(head({ pathWithQuery: asNode('/app/ü/%zz/%00/%FF') }), { env: {} });
    expect(env.PATH_INFO).toBe('/ü/%zz/\uFFFD/\uFFFD');
    expect(env.X_RAW_PATH_INFO).toBe('/ü/%zz/%00/%FF');
  });

  it('strips a prefix matched in decoded form by segments', () => {
    const env = cgiEnvironment(head({ pathWithQuery: '/caf%C3%A9/x', routePrefix: '/café' }), { env: {} });
    expect(env.PATH_INFO).toBe('/x');
  });

  it('gives an empty PATH_INFO at the prefix and the whole path for "/*"', () => {
    expect(cgiEnvironment(head({ pathWithQuery: '/app' }), { env: {} })).toMatchObject({ PATH_INFO: '', QUERY_STRING: '' });
    expect(cgiEnvironment(head({ pathWithQuery: '/app' }), { env: {} })).not.toHaveProperty('PATH_TRANSLATED');
    expect(cgiEnvironment(head({ routePrefix: '', pathWithQuery: '/a/b' }), { env: {} })).toMatchObject({ SCRIPT_NAME: '', PATH_INFO: '/a/b' });
  });

  it('sets CONTENT_LENGTH only for a body of known length, and CONTENT_TYPE', () => {
    const post = head({ method: 'POST', bodyLength: 5, rawHeaders: ['Content-Type', 'text/plain', 'Content-Length', '5'] });
    const env = cgiEnvironment(post, { env: {} });
    expect(env).toMatchObject({ CONTENT_LENGTH: '5', CONTENT_TYPE: 'text/plain' });
    expect(env).not.toHaveProperty('HTTP_CONTENT_TYPE');
    expect(env).not.toHaveProperty('HTTP_CONTENT_LENGTH');
    expect(cgiEnvironment(head({ bodyLength: -1, rawHeaders: ['Transfer-Encoding', 'chunked'] }), { env: {} })).not.toHaveProperty('CONTENT_LENGTH');
    expect(cgiEnvironment(head({ bodyLength: 0, rawHeaders: ['Content-Length', '0'] }), { env: {} }).CONTENT_LENGTH).toBe('0');
  });

  it('joins repeated headers with ", " and cookies with "; "', () => {
    const env = cgiEnvironment(head({ rawHeaders: ['Accept', 'a/b', 'X-Many', '1', 'x-many', '2', 'Cookie', 'a=1', 'cookie', 'b=2'] }), { env: {} });
    expect(env.HTTP_X_MANY).toBe('1, 2');
    expect(env.HTTP_COOKIE).toBe('a=1; b=2');
  });

  it('does not pass credentials, Connection, Proxy or underscore names', () => {
    const env = cgiEnvironment(head({
      rawHeaders: ['Authorization', 'Basic eA==', 'Proxy-Authorization', 'x', 'Connection', 'close', 'Proxy', 'http://evil', 'X_Forwarded_For', '6.6.6.6', 'X-Forwarded-For', '1.2.3.4'],
    }), { env: {} });
    for (const name of ['HTTP_AUTHORIZATION', 'HTTP_PROXY_AUTHORIZATION', 'HTTP_CONNECTION', 'HTTP_PROXY', 'AUTH_TYPE', 'REMOTE_USER']) {
      expect(env).not.toHaveProperty(name);
    }
    expect(env.HTTP_X_FORWARDED_FOR).toBe('1.2.3.4');
  });

  it('reads UTF-8 header values carried as latin1', () => {
    expect(cgiEnvironment(head({ rawHeaders: ['X-Name', asNode('Zoë')] }), { env: {} }).HTTP_X_NAME).toBe('Zoë');
  });

  it('adds configured vars but never lets them override CGI names', () => {
    const env = cgiEnvironment(head(), { env: { GREETING: 'hi', PATH_INFO: '/forged', HTTP_X_SECRET: 's', REMOTE_USER: 'root' } });
    expect(env.GREETING).toBe('hi');
    expect(env.PATH_INFO).toBe('/rest');
    expect(env).not.toHaveProperty('HTTP_X_SECRET');
    expect(env).not.toHaveProperty('REMOTE_USER');
    expect(isReservedCgiName('HTTP_ANYTHING')).toBe(true);
    expect(isReservedCgiName('GREETING')).toBe(false);
  });

  it('formats IPv6 client addresses, falls back to SERVER_NAME:PORT without Host, sets X_MATCHED_ROUTE', () => {
    const env = cgiEnvironment(head({ remoteAddr: '::1', authority: '', scheme: 'https', httpVersion: '1.0' }), { env: {}, matchedRoute: '/app/*' });
    expect(env.X_CLIENT_ADDR).toBe('[::1]:50000');
    expect(env.X_FULL_URL).toBe('https://example.com:8787/app/rest?x=1');
    expect(env.SERVER_PROTOCOL).toBe('HTTP/1.0');
    expect(env.X_MATCHED_ROUTE).toBe('/app/*');
  });
});

describe('cgiArgv (RFC 3875 §4.4)', () => {
  const argv = (target: string, defaults: string[] = []) => cgiArgv('fn', head({ pathWithQuery: target }), defaults);

  it('splits a search-string on "+" and decodes each word once', () => {
    expect(argv('/app?hello+wor%2Bld+%C3%A9t%C3%A9+a%20b+%2541')).toEqual(['fn', 'hello', 'wor+ld', 'été', 'a b', '%41']);
  });
  it('puts the configured defaults between the name and the words', () => {
    expect(argv('/app?x+y', ['--mode', 'fast'])).toEqual(['fn', '--mode', 'fast', 'x', 'y']);
  });
  it('gives no words when the query has an unencoded "="', () => {
    expect(argv('/app?a=1&b=2', ['d'])).toEqual(['fn', 'd']);
    expect(argv('/app?a+b=c')).toEqual(['fn']);
    expect(argv('/app?a%3Db')).toEqual(['fn', 'a=b']);
  });
  it('gives no words for no or empty query, drops empty words', () => {
    expect(argv('/app')).toEqual(['fn']);
    expect(argv('/app?')).toEqual(['fn']);
    expect(argv('/app?+a++b+')).toEqual(['fn', 'a', 'b']);
  });
  it('gives no words at all when one would hold a NUL', () => {
    expect(searchWords('a+b%00c')).toEqual([]);
  });
  it('keeps invalid escapes literally', () => {
    expect(searchWords('100%+%zz')).toEqual(['100%', '%zz']);
  });
});
