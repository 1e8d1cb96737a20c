/**
 * CGI/1.1 request meta-variables and command line for WAGI guests (RFC 3875 §4), with the names
 * WAGI and Spin add (X_RAW_PATH_INFO, X_FULL_URL, X_MATCHED_ROUTE, X_CLIENT_ADDR).
 *
 * Decisions (each differs from some server in the wild, so it is written down):
 * - PATH_INFO is percent-decoded once as UTF-8; invalid escapes stay literal, invalid UTF-8 and
 *   NUL become U+FFFD (see ./text.ts). X_RAW_PATH_INFO carries the path exactly as received, so a
 *   guest can tell `%2F` from `/`. PATH_INFO is "" (not unset) when nothing follows the prefix.
 * - Header lines of one name are joined with ", " (RFC 9110 §5.3); `Cookie` lines with "; "
 *   (RFC 6265 §5.4). Values are read as UTF-8 (node hands them over as latin1).
 * - Not passed as HTTP_*: Content-Type / Content-Length (they are CONTENT_TYPE / CONTENT_LENGTH),
 *   Authorization / Proxy-Authorization (RFC 3875 §4.1.18 says the server SHOULD remove
 *   authentication fields; AUTH_TYPE/REMOTE_USER are therefore never set), Connection (§4.1.18
 *   MAY), `Proxy` (would become HTTP_PROXY, the "httpoxy" hijack of guests' HTTP clients), and any
 *   header whose name contains "_" (it would collide with the "-" form, e.g. a client-sent
 *   `X_Forwarded_For` posing as X-Forwarded-For; nginx drops them by default for the same reason).
 * - Configured env vars cannot override CGI variables: a configured name that isola reserves
 *   (every name below and any `HTTP_*`) is dropped, whether or not this request sets it, so what a
 *   guest sees never depends on which headers a client chose to send. (Spin appends its WAGI
 *   variables after the component's `environment`, leaving both in the list; which one a guest's
 *   getenv returns then depends on its libc.) Config validation should reject such names up front
 *   with {@link isReservedCgiName}.
 * - SERVER_PROTOCOL is the client's protocol ("HTTP/1.1", "HTTP/1.0"), as §4.1.16 requires.
 */
import type { RequestHead } from '../protocol.js';
import { latin1BytesAsUtf8, percentDecode } from './text.js';

/** SERVER_SOFTWARE (RFC 3875 §4.1.17). */
export const SERVER_SOFTWARE = 'isola/0.1';

const CGI_NAMES = new Set([
  'AUTH_TYPE', 'CONTENT_LENGTH', 'CONTENT_TYPE', 'GATEWAY_INTERFACE', 'PATH_INFO', 'PATH_TRANSLATED',
  'QUERY_STRING', 'REMOTE_ADDR', 'REMOTE_HOST', 'REMOTE_IDENT', 'REMOTE_USER', 'REQUEST_METHOD',
  'SCRIPT_NAME', 'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'SERVER_SOFTWARE',
  'X_RAW_PATH_INFO', 'X_FULL_URL', 'X_MATCHED_ROUTE', 'X_CLIENT_ADDR',
]);

/** Request header fields that never become HTTP_* variables (see the module doc). */
const NOT_PASSED = new Set(['authorization', 'proxy-authorization', 'connection', 'proxy', 'content-type', 'content-length']);

/**
 * true when `name` belongs to the CGI namespace isola fills in (RFC 3875 §4.1 names, WAGI's X_*
 * names, or any `HTTP_*`): a function's configured env var of that name is ignored.
 */
export function isReservedCgiName(name: string): boolean {
  return CGI_NAMES.has(name) || name.startsWith('HTTP_');
}

/** Splits the request target into raw path and raw query (without "?"). */
function splitTarget(head: RequestHead): { path: string; query: string } {
  const target = latin1BytesAsUtf8(head.pathWithQuery);
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/**
 * The raw path after the route prefix. When the raw path does not literally start with the
 * prefix (the router matched a decoded path, e.g. prefix "/é" for "/%C3%A9/x"), as many path
 * segments as the prefix has are dropped instead.
 */
function rawPathInfo(path: string, prefix: string): string {
  if (prefix === '') return path;
  if (path === prefix) return '';
  if (path.startsWith(prefix + '/')) return path.slice(prefix.length);
  const segments = prefix.split('/').length - 1;
  const parts = path.split('/');
  return parts.length > segments + 1 ? '/' + parts.slice(segments + 1).join('/') : '';
}

function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/**
 * The environment of one WAGI run: the function's configured vars plus the CGI meta-variables of
 * RFC 3875 §4.1 for `head` (which win, see the module doc).
 *
 * Set always: REQUEST_METHOD (§4.1.12), SCRIPT_NAME = head.routePrefix (§4.1.13), PATH_INFO
 * (§4.1.5, decoded), X_RAW_PATH_INFO (raw), QUERY_STRING (§4.1.7, still encoded, "" when absent),
 * SERVER_NAME / SERVER_PORT (§4.1.14–15), SERVER_PROTOCOL (§4.1.16), SERVER_SOFTWARE (§4.1.17),
 * GATEWAY_INTERFACE "CGI/1.1" (§4.1.4), REMOTE_ADDR and REMOTE_HOST = the address (§4.1.8–9: no
 * reverse lookup), X_CLIENT_ADDR ("addr:port", Spin), X_FULL_URL (scheme://authority/target).
 * Set when known: CONTENT_LENGTH (§4.1.2: only when the request has a body of declared length; a
 * chunked body of unknown length has none, the guest reads stdin to EOF), CONTENT_TYPE (§4.1.3),
 * PATH_TRANSLATED (= PATH_INFO, as in WAGI, when PATH_INFO is not empty; §4.1.6),
 * X_MATCHED_ROUTE (the route pattern, when the caller passes `fn.matchedRoute`), one HTTP_* per
 * request header (§4.1.18). Never throws.
 */
export function cgiEnvironment(
  head: RequestHead,
  fn: { env: Record<string, string>; matchedRoute?: string },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(fn.env)) {
    if (!isReservedCgiName(name)) env[name] = value;
  }

  let contentType: string | undefined;
  let hasContentLength = false;
  const raw = head.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    const value = latin1BytesAsUtf8(raw[i + 1]);
    if (lower === 'content-type') contentType = contentType === undefined ? value : `${contentType}, ${value}`;
    if (lower === 'content-length') hasContentLength = true;
    if (NOT_PASSED.has(lower) || lower.includes('_')) continue;
    const name = 'HTTP_' + lower.toUpperCase().replaceAll('-', '_');
    const previous = env[name];
    env[name] = previous === undefined ? value : previous + (lower === 'cookie' ? '; ' : ', ') + value;
  }

  const { path, query } = splitTarget(head);
  const rawInfo = rawPathInfo(path, head.routePrefix);
  const pathInfo = percentDecode(rawInfo).replaceAll('\0', '\uFFFD');
  const authority = head.authority !== '' ? head.authority : hostPort(head.serverName, head.serverPort);

  env.REQUEST_METHOD = head.method;
  env.SCRIPT_NAME = head.routePrefix;
  env.PATH_INFO = pathInfo;
  env.X_RAW_PATH_INFO = rawInfo;
  if (pathInfo !== '') env.PATH_TRANSLATED = pathInfo;
  env.QUERY_STRING = query;
  if (head.bodyLength > 0 || (head.bodyLength === 0 && hasContentLength)) {
    env.CONTENT_LENGTH = String(head.bodyLength);
  }
  if (contentType !== undefined) env.CONTENT_TYPE = contentType;
  env.SERVER_NAME = head.serverName;
  env.SERVER_PORT = String(head.serverPort);
  env.SERVER_PROTOCOL = `HTTP/${head.httpVersion || '1.1'}`;
  env.SERVER_SOFTWARE = SERVER_SOFTWARE;
  env.GATEWAY_INTERFACE = 'CGI/1.1';
  env.REMOTE_ADDR = head.remoteAddr;
  env.REMOTE_HOST = head.remoteAddr;
  env.X_CLIENT_ADDR = hostPort(head.remoteAddr, head.remotePort);
  env.X_FULL_URL = `${head.scheme}://${authority}${latin1BytesAsUtf8(head.pathWithQuery)}`;
  if (fn.matchedRoute !== undefined) env.X_MATCHED_ROUTE = fn.matchedRoute;
  return env;
}

/**
 * The search words of a query string (RFC 3875 §4.4): only when the query contains no unencoded
 * "=" is it a search-string; it is split at each unencoded "+" (empty words are dropped, the
 * grammar allows none), then each word is percent-decoded exactly once and never split again, so
 * "%2B" yields a literal "+" inside a word and "%20" a space. When a word would hold a NUL (it
 * cannot be a C argv string), no words at all are produced, as §4.4 requires ("MUST NOT generate
 * any command line information"). Never throws.
 */
export function searchWords(query: string): string[] {
  if (query === '' || query.includes('=')) return [];
  const words = query.split('+').filter((w) => w !== '').map(percentDecode);
  return words.some((w) => w.includes('\0')) ? [] : words;
}

/**
 * argv of one WAGI run (RFC 3875 §4.4): `[name, ...defaults, ...searchWords(query)]`, i.e. the
 * function name as argv[0], then the configured `argv` defaults, then the query's search words
 * when it is a search-string (no unencoded "="); for `?a=1&b=2` argv is `[name, ...defaults]`.
 * Example: `/f?hello+wor%2Bld+%C3%A9` → `[name, ...defaults, "hello", "wor+ld", "é"]`.
 * Never throws.
 */
export function cgiArgv(name: string, head: RequestHead, defaults: string[]): string[] {
  return [name, ...defaults, ...searchWords(splitTarget(head).query)];
}
