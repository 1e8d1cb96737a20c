/**
 * Tenancy rules for route hosts under `isola serve` (pure functions; the store and the admin API
 * apply them).
 *
 * - Every tenant owns the zone `<tenant>.<base_domain>`: its default host and every name below it.
 *   A route written without a host (`/hello/*`) is placed on the default host.
 * - Every other name at or below `base_domain` is reserved (it is, or may become, another tenant's).
 * - Any other host (a "custom host", `api.example.com`, `*.example.com`) belongs to the first tenant
 *   that routes it, for as long as one of its live deployments does; another tenant routing an
 *   overlapping host gets 409. A wildcard overlaps every name below its suffix, so `*.example.com`
 *   and `api.example.com` cannot belong to two tenants (the route table would otherwise hand one
 *   tenant's unmatched paths to the other).
 * Host names compare case-insensitively and without the port.
 */
import { checkRoute } from '../config/routes.js';
import { IsolaError } from '../errors.js';

/** A tenant name: a DNS label (RFC 1123) of lowercase letters, digits and '-', starting with a letter, 1 to 63 characters. */
export const TENANT_NAME_RE = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The host part of a route pattern as written (`Example.com:8080`), or null when it has none. */
export function routeHost(route: string): string | null {
  const slash = route.indexOf('/');
  return slash <= 0 ? null : route.slice(0, slash);
}

/** A host without its port, lower-cased: `Example.COM:8080` → `example.com`, `[::1]:80` → `[::1]`. */
export function hostname(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/**
 * Whether two host names (lower-case, no port; either may be a `*.suffix` wildcard) can match the
 * same request host. A wildcard matches names strictly below its suffix, not the suffix itself
 * (as the route table does).
 */
export function hostsOverlap(a: string, b: string): boolean {
  const wa = a.startsWith('*.');
  const wb = b.startsWith('*.');
  if (!wa && !wb) return a === b;
  if (wa && !wb) return b.endsWith(a.slice(1));
  if (!wa && wb) return a.endsWith(b.slice(1));
  return a === b || a.endsWith(b.slice(1)) || b.endsWith(a.slice(1));
}

/** The default host of a tenant: `<tenant>.<baseDomain>`. */
export function defaultHost(tenant: string, baseDomain: string): string {
  return `${tenant}.${baseDomain}`;
}

/** Whether `name` (a host name, maybe a wildcard) lies in the tenant's own zone. */
export function inTenantZone(name: string, tenant: string, baseDomain: string): boolean {
  const zone = defaultHost(tenant, baseDomain);
  return name === zone || name.endsWith('.' + zone);
}

/** Whether `name` is reserved for tenants' default zones (and so not claimable as a custom host). */
export function isReserved(name: string, baseDomain: string): boolean {
  return name === baseDomain || hostsOverlap(name, '*.' + baseDomain);
}

/**
 * Checks routes a tenant asked for and resolves them: a route without a host gets the tenant's
 * default host; repeats are dropped. Pure: claims by other tenants are checked by the store.
 * @param routes as the tenant wrote them (`/hello/*`, `api.example.com/v1/*`).
 * @returns resolved routes, each with a host, in the order given.
 * @throws IsolaError ERR_BAD_REQUEST (400) for a malformed route or an empty list;
 *   ERR_HOST_CLAIMED (409) for a host inside `baseDomain` outside the tenant's own zone.
 */
export function resolveRoutes(tenant: string, baseDomain: string, routes: readonly string[]): string[] {
  if (routes.length === 0) {
    throw new IsolaError('ERR_BAD_REQUEST', 'at least one route is required, e.g. "/hello/*"', { status: 400, user: true });
  }
  const out: string[] = [];
  const seen = new Set<string>();
  for (const route of routes) {
    const problem = typeof route === 'string' ? checkRoute(route) : 'a route must be a string';
    if (problem !== null) throw new IsolaError('ERR_BAD_REQUEST', problem, { status: 400, user: true, details: { route } });
    const host = routeHost(route);
    const resolved = host === null ? defaultHost(tenant, baseDomain) + route : host.toLowerCase() + route.slice(host.length);
    const name = hostname(routeHost(resolved)!);
    if (!inTenantZone(name, tenant, baseDomain) && isReserved(name, baseDomain)) {
      throw new IsolaError('ERR_HOST_CLAIMED', `host "${name}" is reserved: names under "${baseDomain}" belong to tenants' default hosts, and yours is "${defaultHost(tenant, baseDomain)}"`, {
        status: 409, user: true, details: { host: name }, hint: `route under ${defaultHost(tenant, baseDomain)} (or write the route without a host), or use a custom domain`,
      });
    }
    if (!seen.has(resolved)) {
      seen.add(resolved);
      out.push(resolved);
    }
  }
  return out;
}
