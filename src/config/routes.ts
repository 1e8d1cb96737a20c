/**
 * Syntax of a route pattern as written in `isola.toml`: an optional host, then a path.
 *
 *   route := [host] path
 *   host  := ["*."] name ["." name]* [":" port]  |  "[" ipv6 "]" [":" port]
 *   path  := "/" chars* ["/*"]          chars: anything but whitespace, "*", "?", "#", ":", "{", "}", "(", ")"
 *
 * Examples: "/hello", "/hello/*", "/*", "example.com/api/*", "*.example.com/", "localhost:8080/x",
 * "[::1]:8080/x". Matching is the server's job; this only says whether a pattern is well formed.
 */

const NAME = '[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?';
const HOST_RE = new RegExp(`^(?:(?:\\*\\.)?${NAME}(?:\\.${NAME})*|\\[[0-9A-Fa-f:.]+\\])(?::(\\d{1,5}))?$`);
const HOST_FORMS = 'a name ("example.com"), a wildcard ("*.example.com") or an IPv6 literal ("[::1]"), optionally with a port (":8080")';

/**
 * Checks one route pattern.
 * @returns null when well formed, else a one-line message saying what is wrong and how to write it.
 */
export function checkRoute(route: string): string | null {
  if (route === '') return 'a route cannot be empty; write a path such as "/hello" or "/hello/*"';
  if (/\s/.test(route)) return `route ${JSON.stringify(route)} contains whitespace`;
  const q = route.search(/[?#]/);
  if (q >= 0) {
    const what = route[q] === '?' ? 'a query string' : 'a fragment';
    return `route ${JSON.stringify(route)} contains ${what}; routes match the path only, remove "${route.slice(q)}"`;
  }
  const slash = route.indexOf('/');
  if (slash < 0) {
    if (route === '*') return 'route "*" has no path; to match every path on every host, write "/*"';
    return `route ${JSON.stringify(route)} has no path; a route is a path starting with "/", optionally after a host (e.g. "${route}/*")`;
  }
  const host = route.slice(0, slash);
  const path = route.slice(slash);
  if (host !== '') {
    const m = HOST_RE.exec(host);
    if (!m) {
      if (host === '*') return `route ${JSON.stringify(route)}: a host of "*" is not needed; a route without a host matches every host (write "${path}")`;
      return `route ${JSON.stringify(route)}: ${JSON.stringify(host)} is not a valid host; write ${HOST_FORMS}`;
    }
    const port = m[1] === undefined ? null : Number(m[1]);
    if (port !== null && (port < 1 || port > 65535)) {
      return `route ${JSON.stringify(route)}: port ${m[1]} is out of range (1..65535)`;
    }
  }
  const base = path.endsWith('/*') ? path.slice(0, -2) : path;
  if (base.includes('*')) {
    return `route ${JSON.stringify(route)}: "*" is only allowed as a trailing "/*" (match a path prefix) or a leading "*." in the host`;
  }
  const special = /[:{}()]/.exec(base);
  if (special) {
    return `route ${JSON.stringify(route)}: ${JSON.stringify(special[0])} is not allowed in a route path (paths are literal; only a trailing "/*" matches a prefix)`;
  }
  return null;
}

/** The identity of a well-formed route for duplicate detection: host names are case-insensitive. */
export function routeIdentity(route: string): string {
  const slash = route.indexOf('/');
  return slash < 0 ? route : route.slice(0, slash).toLowerCase() + route.slice(slash);
}
