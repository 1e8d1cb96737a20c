/**
 * The admin API client behind `isola tenants|deploy|versions|rollback|delete|functions`. The server
 * URL and token come from `--url`/`--token` or `ISOLA_URL`/`ISOLA_TOKEN` (default URL
 * http://127.0.0.1:8788); the tenant from `--tenant`/`ISOLA_TENANT`, else from the token
 * (`GET /v1/whoami`). API errors become IsolaErrors with the server's code and message plus a hint
 * on how to fix them.
 */
import { IsolaError, type ErrorCode } from '../errors.js';
import type { OptionSpec } from './command.js';

/** Default admin API address (`server.admin_host`:`server.admin_port` defaults). */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8788';

/** Options every client command takes. */
export interface ClientOptions {
  url?: string;
  token?: string;
  tenant?: string;
  json?: boolean;
}

/** The option specs behind ClientOptions, for CommandSpec.options. */
export const CLIENT_OPTIONS: OptionSpec[] = [
  { flags: '--url <url>', description: `admin API URL (default ${DEFAULT_ADMIN_URL})`, env: 'ISOLA_URL' },
  { flags: '--token <token>', description: 'API token: a tenant\'s, or the operator\'s', env: 'ISOLA_TOKEN' },
  { flags: '--tenant <name>', description: 'act on this tenant (default: the token\'s own; needed with the operator token)', env: 'ISOLA_TENANT' },
  { flags: '--json', description: 'print the API\'s JSON response instead of text' },
];

/** Hints the CLI adds to API errors, by code. */
const HINTS: Partial<Record<ErrorCode, string>> = {
  ERR_UNAUTHORIZED: 'set ISOLA_TOKEN (or --token) to the token `isola tenants create` printed, or to the operator token',
  ERR_FORBIDDEN: 'this needs another token: tenant commands need the tenant\'s token (or the operator\'s with --tenant); `isola tenants` needs the operator\'s',
  ERR_FUNCTION_NOT_FOUND: 'list your functions with `isola functions`',
  ERR_TENANT_NOT_FOUND: 'list tenants with `isola tenants list` (operator token)',
  ERR_HOST_CLAIMED: 'route under your default host (write routes without a host, e.g. --route "/api/*"), or pick a host nobody else routes',
  ERR_UPLOAD_TOO_LARGE: 'shrink the module (e.g. wasm-opt -Os), or ask the operator to raise server.max_upload',
};

/** A thin JSON client of the admin API. */
export class AdminClient {
  readonly url: string;
  private readonly token: string;

  /** @throws IsolaError ERR_USAGE when no token is given. */
  constructor(opts: ClientOptions) {
    this.url = (opts.url ?? DEFAULT_ADMIN_URL).replace(/\/+$/, '');
    if (!opts.token) {
      throw new IsolaError('ERR_USAGE', 'no API token', { user: true, hint: 'set ISOLA_TOKEN or pass --token (a tenant token is printed once by `isola tenants create`)' });
    }
    this.token = opts.token;
  }

  /**
   * Sends a request and returns the parsed JSON body.
   * @throws IsolaError with the API's code and message (plus a hint), or ERR_ADMIN_UNREACHABLE.
   */
  async request<T = Record<string, unknown>>(method: string, path: string, body?: { json: unknown } | { wasm: Uint8Array }): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    let payload: string | Uint8Array | undefined;
    if (body && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body) {
      headers['content-type'] = 'application/wasm';
      payload = body.wasm;
    }
    let res: Response;
    try {
      res = await fetch(this.url + path, { method, headers, body: payload as BodyInit | undefined });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new IsolaError('ERR_ADMIN_UNREACHABLE', `cannot reach the admin API at ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, {
        user: true, hint: 'is `isola serve` running? set ISOLA_URL (or --url) to its "admin on" address', cause: err,
      });
    }
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      /* not JSON */
    }
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string; hint?: string } } | null)?.error;
      const code = (e?.code ?? 'ERR_INTERNAL') as ErrorCode;
      throw new IsolaError(code, e?.message ?? `HTTP ${res.status} from ${method} ${path}: ${text.slice(0, 200)}`, {
        status: res.status, user: true, hint: HINTS[code] ?? e?.hint,
      });
    }
    return parsed as T;
  }

  /** The tenant to act on: `--tenant`, else the token's own. @throws ERR_USAGE for the operator token without --tenant. */
  async tenant(opts: ClientOptions): Promise<string> {
    if (opts.tenant) return opts.tenant;
    const me = await this.request<{ role: string; tenant?: string }>('GET', '/v1/whoami');
    if (me.tenant) return me.tenant;
    throw new IsolaError('ERR_USAGE', 'the operator token belongs to no tenant: say which one', { user: true, hint: 'pass --tenant NAME (or set ISOLA_TENANT)' });
  }
}

/** `/v1/tenants/<tenant>/functions[/<name>]` with both parts escaped. */
export function functionPath(tenant: string, name?: string): string {
  return `/v1/tenants/${encodeURIComponent(tenant)}/functions${name === undefined ? '' : '/' + encodeURIComponent(name)}`;
}

/** Prints `value` as JSON when --json, else the lines from `text()`. */
export function output(opts: ClientOptions, value: unknown, text: () => string[]): void {
  process.stdout.write(opts.json ? JSON.stringify(value, null, 2) + '\n' : text().map((l) => l + '\n').join(''));
}

/** Formats rows as aligned columns (the first row is the header). */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** Bytes as a short human string: 1536 → "1.5 KiB". */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}
