/**
 * Checks that span several keys of `isola.toml`. They read the raw parsed TOML (not zod's output)
 * so they run even when other keys have errors: every problem is reported in one pass. Each check
 * looks only at values that are individually valid, so it never repeats a schema error.
 */
import { formatKeyPath, type KeyPath } from './locate.js';
import { checkRoute, routeIdentity } from './routes.js';
import { FUNCTION_NAME_RE } from './schema.js';

/** A problem found at a key path, before it is given a line and column. */
export interface Finding {
  severity: 'error' | 'warning';
  path: KeyPath;
  message: string;
}

/** The line where a path is written in the source, or null. */
export type LineOf = (path: KeyPath) => number | null;

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function validInt(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min;
}

/**
 * Runs the cross-key checks on a parsed (not yet validated) TOML document.
 * @param raw what smol-toml returned.
 * @param lineOf where another key is written, so a message can point at it.
 * @returns findings in document order (errors and warnings); empty when all is well.
 */
export function crossChecks(raw: Record<string, unknown>, lineOf: LineOf): Finding[] {
  const findings: Finding[] = [];
  const lineSuffix = (path: KeyPath, prefix: string): string => {
    const line = lineOf(path);
    return line === null ? '' : `${prefix}line ${line}`;
  };
  const functions = raw.functions;
  if (functions === undefined || (Array.isArray(functions) && functions.length === 0)) {
    findings.push({
      severity: 'warning',
      path: ['functions'],
      message: 'no functions are defined; add a [[functions]] table with name, wasm and routes',
    });
  }
  if (!Array.isArray(functions)) return findings;

  const names = new Map<string, number>();
  const routes = new Map<string, { fn: number; index: number; route: string }>();
  const label = (fn: number): string => {
    const f = functions[fn];
    return isTable(f) && typeof f.name === 'string' && FUNCTION_NAME_RE.test(f.name)
      ? JSON.stringify(f.name)
      : `functions[${fn}]`;
  };

  functions.forEach((f: unknown, i) => {
    if (!isTable(f)) return;
    const at = (...rest: (string | number)[]): KeyPath => ['functions', i, ...rest];

    if (typeof f.name === 'string' && FUNCTION_NAME_RE.test(f.name)) {
      const first = names.get(f.name);
      if (first === undefined) names.set(f.name, i);
      else {
        findings.push({
          severity: 'error',
          path: at('name'),
          message: `function name ${JSON.stringify(f.name)} is already used by functions[${first}]${lineSuffix(['functions', first, 'name'], ' on ')}; names must be unique`,
        });
      }
    }

    if (Array.isArray(f.routes)) {
      f.routes.forEach((route: unknown, j) => {
        if (typeof route !== 'string' || checkRoute(route) !== null) return;
        const id = routeIdentity(route);
        const first = routes.get(id);
        if (first === undefined) routes.set(id, { fn: i, index: j, route });
        else if (first.fn === i) {
          findings.push({
            severity: 'warning',
            path: at('routes', j),
            message: `route ${JSON.stringify(route)} is listed twice in this function; the repeat is ignored`,
          });
        } else {
          const firstPath = ['functions', first.fn, 'routes', first.index];
          findings.push({
            severity: 'error',
            path: at('routes', j),
            message:
              `route ${JSON.stringify(route)}${first.route === route ? '' : ` (the same as ${JSON.stringify(first.route)})`} ` +
              `is claimed by two functions: ${label(first.fn)} (at ${formatKeyPath(firstPath)}${lineSuffix(firstPath, ', ')}) ` +
              `and ${label(i)}; a route can belong to only one function`,
          });
        }
      });
    }

    if (isTable(f.pool)) {
      const pool = f.pool;
      const minWarm = pool.min_warm === undefined ? 1 : pool.min_warm;
      const maxInstances = pool.max_instances === undefined ? 4 : pool.max_instances;
      if (validInt(minWarm, 0) && validInt(maxInstances, 1) && maxInstances < minWarm) {
        findings.push(
          pool.max_instances !== undefined
            ? {
                severity: 'error',
                path: at('pool', 'max_instances'),
                message: `max_instances (${maxInstances}) must be at least min_warm (${minWarm})`,
              }
            : {
                severity: 'error',
                path: at('pool', 'min_warm'),
                message: `min_warm (${minWarm}) is more than max_instances (4 by default); lower min_warm or set max_instances`,
              },
        );
      }
    }

    if (f.abi === 'wasi-http') {
      for (const key of ['argv', 'files'] as const) {
        if (f[key] === undefined) continue;
        findings.push({
          severity: 'warning',
          path: at(key),
          message: `${key} is only used by WAGI guests and this function's abi is "wasi-http", so it is ignored`,
        });
      }
    }
  });
  return findings;
}
