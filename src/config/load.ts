/**
 * `isola.toml` → IsolaConfig (types.ts): parse (smol-toml), validate (schema.ts with zod, then
 * checks.ts), apply defaults and resolve paths. Every problem is reported at once as a Diagnostic
 * with the line and column of the key concerned (locate.ts).
 */
import { readFileSync } from 'node:fs';
import nodePath from 'node:path';
import { parse, TomlError } from 'smol-toml';
import type * as z from 'zod';
import { IsolaError } from '../errors.js';
import { crossChecks, type Finding } from './checks.js';
import { formatDiagnostics, sortDiagnostics, type Diagnostic } from './diagnostics.js';
import { formatKeyPath, KeyLocator, type KeyPath } from './locate.js';
import { routeIdentity } from './routes.js';
import { errorMap, KNOWN_KEYS, rawConfigSchema, type RawConfig } from './schema.js';
import type { IsolaConfig } from './types.js';

export { formatDiagnostics } from './diagnostics.js';
export type { Diagnostic } from './diagnostics.js';

export interface ParseConfigOptions {
  /** Absolute path of the file the text came from; copied to `config.path` (null for text built in code). */
  path: string | null;
  /** Absolute directory that relative paths (wasm, data_dir, build.cwd, files host paths) resolve against. */
  baseDir: string;
}

export interface ParseConfigResult {
  /** The resolved config, or null when any diagnostic is an error. */
  config: IsolaConfig | null;
  /** Every error and warning, sorted by position (unlocated ones last). */
  diagnostics: Diagnostic[];
}

/**
 * Parses and validates the text of an `isola.toml`. Pure: reads no files, never throws on bad input.
 *
 * Reports every problem at once: a TOML syntax error (then nothing else can be checked: one
 * diagnostic with key "" and the parser's line and column), unknown keys, wrong types, bad values
 * (durations → ms, sizes → bytes, route patterns, names), and cross-key problems (duplicate names or
 * routes, max_instances < min_warm). Warnings (no functions; argv/files on a wasi-http function) do
 * not prevent a config.
 * @returns `{config, diagnostics}`; `config` is null exactly when some diagnostic is an error.
 */
export function parseConfig(text: string, opts: ParseConfigOptions): ParseConfigResult {
  return parseInternal(text, opts).result;
}

export interface LoadConfigOptions {
  /** Called with the warnings (and their formatted text) when the config is valid but has some. */
  onWarnings?: (warnings: Diagnostic[], formatted: string) => void;
}

/**
 * Reads, parses and validates a config file; relative paths in it resolve against its directory.
 * @param file path of the `isola.toml` (relative to the process's working directory, or absolute).
 * @returns the resolved config (`config.path` is the file's absolute path).
 * @throws IsolaError `ERR_CONFIG_NOT_FOUND` (user) when the file is missing, is a directory or cannot be read.
 * @throws IsolaError `ERR_CONFIG_PARSE` (user) on a TOML syntax error; message has line, column and a caret;
 *   `details: {path, line, column, diagnostics}`.
 * @throws IsolaError `ERR_CONFIG_INVALID` (user) when validation finds errors; the message is every
 *   diagnostic formatted by formatDiagnostics; `details: {path, diagnostics}`.
 */
export function loadConfig(file: string, opts: LoadConfigOptions = {}): IsolaConfig {
  const abs = nodePath.resolve(file);
  const shown = displayName(abs);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? `config file not found: ${shown}`
        : code === 'EISDIR'
          ? `${shown} is a directory, not a config file`
          : `cannot read config file ${shown}: ${(err as Error).message}`;
    throw new IsolaError('ERR_CONFIG_NOT_FOUND', message, {
      user: true,
      hint: 'create an isola.toml (keys are described in docs/config.md) or give the path of an existing one',
      details: { path: abs },
      cause: err,
    });
  }

  const { result, syntaxError, source } = parseInternal(text, { path: abs, baseDir: nodePath.dirname(abs) });
  const formatted = formatDiagnostics(result.diagnostics, shown, source);
  if (syntaxError) {
    const [d] = result.diagnostics;
    throw new IsolaError('ERR_CONFIG_PARSE', formatted, {
      user: true,
      hint: 'fix the TOML syntax at the position shown (https://toml.io/en/v1.0.0)',
      details: { path: abs, line: d.line, column: d.column, diagnostics: result.diagnostics },
    });
  }
  if (result.config === null) {
    throw new IsolaError('ERR_CONFIG_INVALID', formatted, {
      user: true,
      hint: 'every key of isola.toml is described in docs/config.md',
      details: { path: abs, diagnostics: result.diagnostics },
    });
  }
  if (result.diagnostics.length > 0) opts.onWarnings?.(result.diagnostics, formatted);
  return result.config;
}

// ---- internals --------------------------------------------------------------------------------

function parseInternal(
  input: string,
  opts: ParseConfigOptions,
): { result: ParseConfigResult; syntaxError: boolean; source: string } {
  const source = input.startsWith('\uFEFF') ? input.slice(1) : input;
  let raw: Record<string, unknown>;
  try {
    raw = parse(source);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const message = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
    const diagnostic: Diagnostic = { severity: 'error', key: '', line: err.line, column: err.column, message: `invalid TOML: ${message}` };
    return { result: { config: null, diagnostics: [diagnostic] }, syntaxError: true, source };
  }

  const locator = new KeyLocator(source);
  const lineOf = (path: KeyPath): number | null => locator.locate(path)?.line ?? null;
  const findings: Finding[] = [];
  const parsed = rawConfigSchema.safeParse(raw, { error: errorMap });
  if (!parsed.success) findings.push(...parsed.error.issues.flatMap(issueToFindings));
  findings.push(...crossChecks(raw, lineOf));

  const diagnostics = sortDiagnostics(
    findings.map((f) => {
      const at = locator.locateNearest(f.path);
      return { severity: f.severity, key: formatKeyPath(f.path), line: at?.line ?? null, column: at?.column ?? null, message: f.message };
    }),
  );
  const hasErrors = diagnostics.some((d) => d.severity === 'error');
  const config = parsed.success && !hasErrors ? resolve(parsed.data, opts) : null;
  return { result: { config, diagnostics }, syntaxError: false, source };
}

function issueToFindings(iss: z.core.$ZodIssue): Finding[] {
  const path = iss.path.map((seg) => (typeof seg === 'symbol' ? String(seg) : seg));
  if (iss.code === 'unrecognized_keys') {
    return iss.keys.map((key) => ({ severity: 'error', path: [...path, key], message: unknownKeyMessage(path, key) }));
  }
  return [{ severity: 'error', path, message: iss.message }];
}

function unknownKeyMessage(tablePath: KeyPath, key: string): string {
  const kind = tablePath.filter((seg) => typeof seg === 'string').join('.');
  const known = KNOWN_KEYS[kind] ?? [];
  const suggestion = closest(key, known);
  if (suggestion !== null) return `unknown key ${JSON.stringify(key)}; did you mean "${suggestion}"?`;
  return known.length > 0 ? `unknown key ${JSON.stringify(key)}; expected one of: ${known.join(', ')}` : `unknown key ${JSON.stringify(key)}`;
}

/** The known key a misspelt or camelCased key most likely meant, or null. */
function closest(key: string, known: readonly string[]): string | null {
  const snake = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/-/g, '_').toLowerCase();
  const exact = known.find((k) => k === snake);
  if (exact !== undefined) return exact;
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(snake, k);
    if (d < bestDistance && d <= Math.min(2, Math.floor(k.length / 3))) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * Builds the resolved form: camelCase keys, absolute paths, null for absent optional tables, and
 * each function's routes without repeats (a repeat is only a warning).
 */
function resolve(raw: RawConfig, opts: ParseConfigOptions): IsolaConfig {
  const abs = (p: string): string => nodePath.resolve(opts.baseDir, p);
  return {
    path: opts.path,
    server: {
      host: raw.server.host,
      port: raw.server.port,
      dataDir: abs(raw.server.data_dir ?? '.isola'),
      drainTimeoutMs: raw.server.drain_timeout,
      adminHost: raw.server.admin_host,
      adminPort: raw.server.admin_port,
      baseDomain: raw.server.base_domain,
      operatorToken: raw.server.operator_token ?? null,
      maxUploadBytes: raw.server.max_upload,
      tenantLimits: {
        memoryBytes: raw.server.tenant_limits.memory,
        maxFunctions: raw.server.tenant_limits.max_functions,
        maxInstances: raw.server.tenant_limits.max_instances,
      },
    },
    scheduler: {
      slots: raw.scheduler.slots,
      halfLifeMs: raw.scheduler.half_life,
      maxWaitMs: raw.scheduler.max_wait,
    },
    tenants: Object.fromEntries(Object.entries(raw.tenants).map(([name, t]) => [name, {
      cpuBudgetMsPerSec: t.cpu_budget < 0 ? null : t.cpu_budget,
      burstMs: t.burst,
      weight: t.weight,
      overBudget: t.over_budget,
    }])),
    sandboxes: {
      max: raw.sandboxes.max,
      memoryBytes: raw.sandboxes.memory,
      blank: raw.sandboxes.blank,
      heapBytes: raw.sandboxes.heap,
    },
    functions: raw.functions.map((f) => ({
      name: f.name,
      tenant: f.tenant ?? null,
      wasm: abs(f.wasm),
      build: f.build ? resolveBuild(f.build, abs) : null,
      abi: f.abi ?? null,
      metering: f.metering,
      routes: f.routes.filter((r, k) => f.routes.findIndex((other) => routeIdentity(other) === routeIdentity(r)) === k),
      env: f.env,
      argv: f.argv,
      files: Object.fromEntries(Object.entries(f.files).map(([guest, host]) => [guest, abs(host)])),
      limits: {
        maxRequestBodyBytes: f.limits.max_request_body,
        maxResponseBodyBytes: f.limits.max_response_body,
        timeoutMs: f.limits.timeout,
        cpuMs: f.limits.cpu,
        fuel: f.limits.fuel,
        memoryBytes: f.limits.memory,
      },
      pool: {
        minWarm: f.pool.min_warm,
        maxInstances: f.pool.max_instances,
        idleTimeoutMs: f.pool.idle_timeout,
        maxRequestsPerInstance: f.pool.max_requests_per_instance,
        maxQueue: f.pool.max_queue,
        queueTimeoutMs: f.pool.queue_timeout,
      },
    })),
  };
}

/** The resolved `[functions.build]`: cwd made absolute, watch globs made absolute against it. */
function resolveBuild(build: NonNullable<RawConfig['functions'][number]['build']>, abs: (p: string) => string): IsolaConfig['functions'][number]['build'] {
  const cwd = abs(build.cwd ?? '.');
  return { command: build.command, cwd, watch: build.watch.map((glob) => nodePath.posix.resolve(cwd.split(nodePath.sep).join('/'), glob)) };
}

/** The file as a user would name it: relative to the working directory when inside it, else absolute. */
function displayName(abs: string): string {
  const rel = nodePath.relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') && !nodePath.isAbsolute(rel) ? rel : abs;
}
