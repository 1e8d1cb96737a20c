/**
 * Route patterns and the route table: which function serves a request, by host and path.
 *
 * A pattern is `[host]/path`, e.g. `/hello`, `/hello/*`, `example.com/api/*`, `*.example.com/*`,
 * `localhost:8080/`. The path is matched against the raw request path (before percent-decoding,
 * so `%2F` never acts as a separator); `/x/*` also matches `/x` itself (as Spin does). A host
 * without a port matches any port.
 *
 * Precedence — the most specific route wins, compared in this order:
 *  1. host: an exact host beats a wildcard host (`*.example.com`; a longer suffix beats a shorter
 *     one), which beats a route with no host;
 *  2. path: an exact path beats a wildcard path; between wildcards the longer prefix wins.
 * When the most specific host has no route for the path, the next host class is tried.
 * Path matching uses Hono's RegExpRouter.
 */
import { RegExpRouter } from 'hono/router/reg-exp-router';

export interface RoutePattern {
  /** As written in config. */
  source: string;
  /** Lower-cased host (may start with `*.`, may end with `:port`), or null for any host. */
  host: string | null;
  /** The path, without the trailing `/*` of a wildcard. */
  path: string;
  wildcard: boolean;
  /** The fixed prefix without a trailing slash ("" for `/*`): CGI's SCRIPT_NAME. */
  prefix: string;
}

const ROUTE_RE = /^(?<host>(?:\*\.)?(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?)?(?<path>\/[^\s*?#:{}()]*)?$/;

/** Parses a route pattern; returns an error message instead when it is not one. */
export function parseRoute(source: string): RoutePattern | string {
  const wildcard = source.endsWith('/*');
  const m = ROUTE_RE.exec(wildcard ? source.slice(0, -2) : source);
  if (!m?.groups || (!wildcard && !m.groups.path)) {
    return `invalid route "${source}": expected [host]/path with an optional trailing "/*" (e.g. "/hello/*", "example.com/api/*")`;
  }
  const host = m.groups.host;
  const path = m.groups.path || '/';
  const prefix = path.endsWith('/') ? path.slice(0, -1) : path;
  return { source, host: host ? host.toLowerCase() : null, path: wildcard ? (prefix || '/') : path, wildcard, prefix };
}

/** Sort key: larger is more specific (see the module docstring). */
function specificity(r: RoutePattern): [number, number, number, number] {
  const hostRank = r.host === null ? 0 : r.host.startsWith('*.') ? 1 : 2;
  const hostLen = r.host?.length ?? 0;
  return [hostRank, hostLen, r.wildcard ? 0 : 1, r.path.length];
}

/** Compares two routes for precedence: negative when `a` wins. */
export function comparePrecedence(a: RoutePattern, b: RoutePattern): number {
  const ka = specificity(a);
  const kb = specificity(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return kb[i]! - ka[i]!;
  return 0;
}

interface Bucket<T> {
  router: RegExpRouter<[RoutePattern, T]>;
  /** The routes it was made from, in precedence order. */
  list: Array<RouteMatch<T>>;
}

/** A match: the route and the value it maps to. */
export interface RouteMatch<T> {
  route: RoutePattern;
  target: T;
}

/**
 * An immutable route table. Build a new one and swap the reference to change routes atomically.
 *
 * Each host's routes form a bucket whose matcher (one regular expression, Hono's RegExpRouter) is
 * built when the table is made, not on the first request after a change: a first request to a
 * just-deployed function would otherwise pay for it (issue 5). A bucket whose routes and targets
 * are unchanged since the `previous` table is reused as it is, so a deploy rebuilds only the
 * buckets of the hosts it touched.
 */
export class RouteTable<T> {
  private readonly exact = new Map<string, Bucket<T>>();
  private readonly wildcardHosts: Array<{ suffix: string; port: string | null; bucket: Bucket<T> }> = [];
  private readonly anyHost: Bucket<T> | null;
  /** Every bucket by host (`""` for routes with no host), for reuse by the next table. */
  private readonly buckets = new Map<string, Bucket<T>>();
  readonly entries: ReadonlyArray<RouteMatch<T>>;

  /**
   * @param entries routes and their targets, in any order (precedence sorts them)
   * @param previous the table this one replaces: its buckets whose entries (route sources and
   *   targets, by identity) are unchanged are reused
   */
  constructor(entries: Array<RouteMatch<T>>, previous?: RouteTable<T>) {
    const sorted = [...entries].sort((a, b) => comparePrecedence(a.route, b.route));
    this.entries = sorted;
    const any: Array<RouteMatch<T>> = [];
    const byHost = new Map<string, Array<RouteMatch<T>>>();
    for (const e of sorted) {
      if (e.route.host === null) any.push(e);
      else {
        const list = byHost.get(e.route.host) ?? [];
        list.push(e);
        byHost.set(e.route.host, list);
      }
    }
    const bucketOf = (host: string, list: Array<RouteMatch<T>>): Bucket<T> => {
      const old = previous?.buckets.get(host);
      const bucket = old && sameEntries(old.list, list) ? old : makeBucket(list);
      this.buckets.set(host, bucket);
      return bucket;
    };
    for (const [host, list] of byHost) {
      const bucket = bucketOf(host, list);
      if (host.startsWith('*.')) {
        const [name, port] = splitPort(host.slice(1));
        this.wildcardHosts.push({ suffix: name, port, bucket });
      } else this.exact.set(host, bucket);
    }
    this.wildcardHosts.sort((a, b) => b.suffix.length - a.suffix.length || (b.port ? 1 : 0) - (a.port ? 1 : 0));
    this.anyHost = any.length > 0 ? bucketOf('', any) : null;
  }

  /** Finds the route for a Host header value and a raw path (no query), or null. */
  match(hostHeader: string, path: string): RouteMatch<T> | null {
    const host = hostHeader.toLowerCase();
    if (this.exact.size > 0 || this.wildcardHosts.length > 0) {
      const [name] = splitPort(host);
      const hit = lookup(this.exact.get(host), path) ?? (name !== host ? lookup(this.exact.get(name), path) : null);
      if (hit) return hit;
      for (const w of this.wildcardHosts) {
        if (name.endsWith(w.suffix) && name.length > w.suffix.length && (w.port === null || host === name + ':' + w.port)) {
          const m = lookup(w.bucket, path);
          if (m) return m;
        }
      }
    }
    return lookup(this.anyHost ?? undefined, path);
  }
}

function makeBucket<T>(list: Array<RouteMatch<T>>): Bucket<T> {
  const router = new RegExpRouter<[RoutePattern, T]>();
  for (const e of list) {
    const p = e.route.wildcard ? (e.route.prefix === '' ? '/*' : `${e.route.prefix}/*`) : e.route.path;
    router.add('ALL', p, [e.route, e.target]);
  }
  router.match('ALL', '/'); // builds the matcher now (RegExpRouter builds it on its first match)
  return { router, list };
}

/** true when two precedence-sorted route lists have the same route sources and targets. */
function sameEntries<T>(a: Array<RouteMatch<T>>, b: Array<RouteMatch<T>>): boolean {
  return a.length === b.length && a.every((e, i) => e.route.source === b[i]!.route.source && e.target === b[i]!.target);
}

function lookup<T>(bucket: Bucket<T> | undefined, path: string): RouteMatch<T> | null {
  if (!bucket) return null;
  const [handlers] = bucket.router.match('ALL', path);
  const first = handlers[0];
  if (!first) return null;
  const [route, target] = first[0];
  return { route, target };
}

function splitPort(host: string): [string, string | null] {
  const m = /^(.*?)(?::(\d+))?$/.exec(host)!;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return [host.slice(0, end + 1), host[end + 1] === ':' ? host.slice(end + 2) : null];
  }
  return [m[1]!, m[2] ?? null];
}
