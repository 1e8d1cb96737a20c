/**
 * The zod schema of `isola.toml` as written (snake_case keys). Every table is strict (an unknown key
 * is an error), every optional key gets its default here, and durations and sizes come out as
 * integer milliseconds and bytes. Checks that span several keys (unique names and routes,
 * max_instances >= min_warm, WAGI-only keys) live in checks.ts; the camelCase, absolute-path
 * resolved form is built in load.ts.
 */
import * as z from 'zod';
import { checkRoute } from './routes.js';
import { describeValue, formatBytes, parseDuration, parseSize } from './units.js';

/** A function name: lowercase letters, digits and '-', starting with a letter, 1 to 63 characters. */
export const FUNCTION_NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;
/** An environment variable name as POSIX shells accept it. */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** WebAssembly page size: linear memory grows in whole pages. */
export const WASM_PAGE_BYTES = 65536;
/** A 32-bit WebAssembly memory has at most 65536 pages (4 GiB). */
export const MAX_MEMORY_BYTES = 65536 * WASM_PAGE_BYTES;
const GIB = 1024 ** 3;

// ---- field builders ------------------------------------------------------------------------

/** Reports `message` as a custom issue at the current value (or at `path` below it). */
function issue(ctx: z.core.$RefinementCtx, message: string, path?: (string | number)[]): void {
  ctx.addIssue({ code: 'custom', message, ...(path ? { path } : {}) });
}

function duration(defaultMs: number, opts: { positive?: boolean } = {}) {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): number => {
      if (value === undefined) return defaultMs;
      const r = parseDuration(value);
      if (!r.ok) {
        issue(ctx, r.message);
        return z.NEVER;
      }
      if (opts.positive && r.value === 0) {
        issue(ctx, 'must be longer than 0 ms');
        return z.NEVER;
      }
      return r.value;
    });
}

function size(defaultBytes: number) {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): number => {
      if (value === undefined) return defaultBytes;
      const r = parseSize(value);
      if (!r.ok) {
        issue(ctx, r.message);
        return z.NEVER;
      }
      return r.value;
    });
}

function memory(defaultBytes: number) {
  return size(defaultBytes).transform((bytes, ctx): number => {
    if (bytes < WASM_PAGE_BYTES) {
      issue(ctx, `must be at least 64 KiB (one WebAssembly page), found ${bytes} bytes`);
      return z.NEVER;
    }
    if (bytes > MAX_MEMORY_BYTES) {
      issue(ctx, `must be at most 4 GiB (65536 pages, the most a 32-bit WebAssembly memory can have), found ${bytes} bytes`);
      return z.NEVER;
    }
    if (bytes % WASM_PAGE_BYTES !== 0) {
      const lower = Math.floor(bytes / WASM_PAGE_BYTES) * WASM_PAGE_BYTES;
      const upper = lower + WASM_PAGE_BYTES;
      const nearest = lower > 0 && bytes - lower < upper - bytes ? lower : upper;
      const written = formatBytes(nearest).replace(' ', '');
      issue(
        ctx,
        `${bytes} bytes is not a multiple of 64 KiB (one WebAssembly page); the nearest multiple is ${nearest} bytes ("${written}")`,
      );
      return z.NEVER;
    }
    return bytes;
  });
}

function integer(defaultValue: number, min: number, max: number, note = '') {
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
  return z
    .unknown()
    .optional()
    .transform((value, ctx): number => {
      if (value === undefined) return defaultValue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        issue(ctx, `expected an integer ${range}${note}, found ${describeValue(value)}`);
        return z.NEVER;
      }
      return value;
    });
}

function nonEmpty() {
  return z.string().min(1, { error: 'must not be empty' });
}

/** A string checked by `check`, which returns an error message or null. */
function checkedString(check: (s: string) => string | null) {
  return z.string().transform((s, ctx): string => {
    const message = check(s);
    if (message !== null) {
      issue(ctx, message);
      return z.NEVER;
    }
    return s;
  });
}

/** Error for a value that should be an array but is not (undefined: let the error map say "missing"). */
function arrayOf(what: string) {
  return (iss: z.core.$ZodRawIssue): string | undefined =>
    iss.code === 'invalid_type' && iss.input !== undefined ? `expected an array of ${what}, found ${describeValue(iss.input)}` : undefined;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/**
 * A table of string → string, each entry checked by `checkEntry` (message or null, reported at the
 * entry). Built by hand rather than with z.record so that keys such as "__proto__" stay plain keys.
 */
function stringTable(example: string, checkEntry: (key: string, value: string) => string | null) {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): Record<string, string> => {
      if (value === undefined) return {};
      if (!isTable(value)) {
        issue(ctx, `expected a table of strings such as ${example}, found ${describeValue(value)}`);
        return z.NEVER;
      }
      const entries: [string, string][] = [];
      for (const [key, v] of Object.entries(value)) {
        if (typeof v !== 'string') {
          issue(ctx, `expected a string, found ${describeValue(v)}${typeof v === 'number' || typeof v === 'boolean' ? ' (quote it)' : ''}`, [key]);
          continue;
        }
        const message = checkEntry(key, v);
        if (message !== null) issue(ctx, message, [key]);
        else entries.push([key, v]);
      }
      return Object.fromEntries(entries);
    });
}

function checkFunctionName(name: string): string | null {
  if (FUNCTION_NAME_RE.test(name)) return null;
  const lower = name.toLowerCase();
  const hint = lower !== name && FUNCTION_NAME_RE.test(lower) ? ` (try "${lower}")` : '';
  return `${JSON.stringify(name)} is not a valid function name: use 1 to 63 lowercase letters, digits and "-", starting with a letter${hint}`;
}

/** A DNS name of lowercase labels (RFC 1123), no port, no wildcard: tenants get `<tenant>.<base_domain>`. */
export const BASE_DOMAIN_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** Shortest operator token accepted, characters (16 random bytes hex-encoded would be 32). */
export const MIN_OPERATOR_TOKEN_LENGTH = 16;

function checkBaseDomain(domain: string): string | null {
  if (BASE_DOMAIN_RE.test(domain) && domain.length <= 200) return null;
  const lower = domain.toLowerCase();
  const hint = lower !== domain && BASE_DOMAIN_RE.test(lower) ? ` (try "${lower}")` : '';
  return `${JSON.stringify(domain)} is not a valid base domain: write a lowercase DNS name without port or wildcard, such as "localhost" or "fn.example.com"${hint}`;
}

function checkOperatorToken(token: string): string | null {
  if (/\s/.test(token)) return 'operator_token must not contain whitespace';
  if (token.length < MIN_OPERATOR_TOKEN_LENGTH) {
    return `operator_token must be at least ${MIN_OPERATOR_TOKEN_LENGTH} characters (found ${token.length}); generate one with: openssl rand -hex 32`;
  }
  return null;
}

function checkEnvEntry(name: string): string | null {
  return ENV_NAME_RE.test(name)
    ? null
    : `${JSON.stringify(name)} is not a valid environment variable name: use letters, digits and "_", not starting with a digit`;
}

function checkFileEntry(guestPath: string, hostPath: string): string | null {
  if (!guestPath.startsWith('/')) return `guest path ${JSON.stringify(guestPath)} must be absolute (start with "/")`;
  if (guestPath.split('/').some((part) => part === '..' || part === '.')) {
    return `guest path ${JSON.stringify(guestPath)} must not contain "." or ".." segments`;
  }
  if (hostPath === '') return 'host path must not be empty';
  return null;
}

/** A `build.watch` glob: not empty, `/` as the separator, `{a,b}` groups closed and not nested. */
function checkWatchGlob(glob: string): string | null {
  if (glob.trim() === '') return 'a watch glob must not be empty';
  if (glob.includes('\\')) return `watch glob ${JSON.stringify(glob)} must use "/" as the separator (no "\\")`;
  let open = false;
  for (const ch of glob) {
    if (ch === '{') {
      if (open) return `watch glob ${JSON.stringify(glob)} nests "{…}" groups, which are not supported`;
      open = true;
    } else if (ch === '}') {
      if (!open) return `watch glob ${JSON.stringify(glob)} has a "}" without "{"`;
      open = false;
    }
  }
  return open ? `watch glob ${JSON.stringify(glob)} has a "{" without "}"` : null;
}

// ---- tables ---------------------------------------------------------------------------------

/** Defaults for new tenants under `isola serve` (the operator may set others per tenant). */
const tenantLimitsShape = {
  memory: memory(128 * 1024 ** 2),
  max_functions: integer(100, 1, Number.MAX_SAFE_INTEGER),
  max_instances: integer(8, 1, Number.MAX_SAFE_INTEGER),
};

const serverShape = {
  host: nonEmpty().default('127.0.0.1'),
  port: integer(8787, 0, 65535, ' (0 picks a free port)'),
  data_dir: nonEmpty().optional(),
  drain_timeout: duration(10_000),
  admin_host: nonEmpty().default('127.0.0.1'),
  admin_port: integer(8788, 0, 65535, ' (0 picks a free port)'),
  base_domain: checkedString(checkBaseDomain).default('localhost'),
  operator_token: checkedString(checkOperatorToken).optional(),
  max_upload: size(64 * 1024 ** 2).transform((bytes, ctx): number => {
    if (bytes === 0) {
      issue(ctx, 'must be more than 0 bytes');
      return z.NEVER;
    }
    return bytes;
  }),
  tenant_limits: z.strictObject(tenantLimitsShape).prefault({}),
};

const buildShape = {
  command: nonEmpty(),
  cwd: nonEmpty().optional(),
  watch: z.array(checkedString(checkWatchGlob), { error: arrayOf('glob strings such as watch = ["src/**"]') }).default([]),
};

const limitsShape = {
  max_request_body: size(GIB),
  max_response_body: size(GIB),
  timeout: duration(30_000, { positive: true }),
  cpu: duration(10_000, { positive: true }),
  fuel: integer(10_000_000_000, 1, Number.MAX_SAFE_INTEGER),
  memory: memory(128 * 1024 ** 2),
};

const poolShape = {
  min_warm: integer(1, 0, Number.MAX_SAFE_INTEGER),
  max_instances: integer(4, 1, Number.MAX_SAFE_INTEGER),
  idle_timeout: duration(300_000),
  max_requests_per_instance: integer(0, 0, Number.MAX_SAFE_INTEGER, ' (0 = no limit; 1 = a fresh instance per request)'),
  max_queue: integer(256, 0, Number.MAX_SAFE_INTEGER),
  queue_timeout: duration(10_000),
};

/** A tenant's share of the CPU (`[tenants.<name>]`; under `isola serve` the operator sets these per tenant). */
const tenantShape = {
  cpu_budget: duration(-1),
  burst: duration(1000),
  weight: integer(1, 1, 1000),
  over_budget: z.enum(['reject', 'wait']).default('reject'),
};

/** How guests share the CPU. */
const schedulerShape = {
  slots: integer(0, 0, 4096, ' (0 = one per CPU core)'),
  half_life: duration(1000, { positive: true }),
  max_wait: duration(30_000),
};

/** All sandboxes of the process together (the global pool). */
const sandboxesShape = {
  max: integer(64, 1, Number.MAX_SAFE_INTEGER),
  memory: size(4 * GIB),
  blank: integer(2, 0, Number.MAX_SAFE_INTEGER),
  heap: size(256 * 1024 ** 2),
};

const functionShape = {
  name: checkedString(checkFunctionName),
  tenant: checkedString(checkFunctionName).optional(),
  wasm: nonEmpty(),
  abi: z.enum(['wasi-http', 'wagi']).optional(),
  metering: z.enum(['none', 'fuel']).default('none'),
  routes: z.array(checkedString(checkRoute), { error: arrayOf('route strings such as routes = ["/hello", "/hello/*"]') }).min(1, { error: 'at least one route is required, e.g. routes = ["/hello/*"]' }),
  env: stringTable('env = { GREETING = "hi" }', checkEnvEntry),
  argv: z.array(z.string(), { error: arrayOf('strings such as argv = ["--verbose"]') }).default([]),
  files: stringTable('files = { "/static" = "public" }', checkFileEntry),
  build: z.strictObject(buildShape).optional(),
  limits: z.strictObject(limitsShape).prefault({}),
  pool: z.strictObject(poolShape).prefault({}),
};

const rootShape = {
  server: z.strictObject(serverShape).prefault({}),
  sandboxes: z.strictObject(sandboxesShape).prefault({}),
  scheduler: z.strictObject(schedulerShape).prefault({}),
  tenants: z.record(checkedString(checkFunctionName), z.strictObject(tenantShape)).default({}),
  functions: z
    .array(z.strictObject(functionShape), {
      error: (iss) =>
        iss.code === 'invalid_type' && iss.input !== undefined
          ? `expected an array of tables (write each function under a [[functions]] header), found ${describeValue(iss.input)}`
          : undefined,
    })
    .default([]),
};

/** The whole file. Parse with `{ error: errorMap }` for isola's wording of type errors. */
export const rawConfigSchema = z.strictObject(rootShape);

/** What rawConfigSchema produces: snake_case, defaults applied, durations in ms, sizes in bytes. */
export type RawConfig = z.output<typeof rawConfigSchema>;

/**
 * Keys allowed in each kind of table, for "did you mean" hints. The kind of a table is its path
 * with array indexes dropped: "" (top level), "server", "functions", "functions.limits", ….
 */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(rootShape),
  server: Object.keys(serverShape),
  'server.tenant_limits': Object.keys(tenantLimitsShape),
  functions: Object.keys(functionShape),
  'functions.build': Object.keys(buildShape),
  'functions.limits': Object.keys(limitsShape),
  'functions.pool': Object.keys(poolShape),
  sandboxes: Object.keys(sandboxesShape),
  scheduler: Object.keys(schedulerShape),
};

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'a boolean',
  object: 'a table',
  array: 'an array',
};

/**
 * Per-parse zod error map: isola's wording for the issues zod raises itself (wrong type, missing
 * key, bad enum value). Returns undefined for issues that already carry a message.
 */
export const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) {
      const key = iss.path?.[iss.path.length - 1];
      return typeof key === 'string' ? `required key ${JSON.stringify(key)} is missing` : 'a value is required';
    }
    const expected = TYPE_NAMES[iss.expected] ?? iss.expected;
    return `expected ${expected}, found ${describeValue(iss.input)}`;
  }
  if (iss.code === 'invalid_value') {
    const options = iss.values.map((v) => JSON.stringify(v)).join(' or ');
    const omit = iss.path?.[iss.path.length - 1] === 'abi' ? ' (or leave abi out to detect it from the module)' : '';
    return `expected ${options}${omit}, found ${describeValue(iss.input)}`;
  }
  return undefined;
};
