/**
 * `isola tail <function>`: streams a function's live logs (its access-log records and its guests'
 * stdout/stderr lines) from the admin API's Server-Sent Events route
 * `GET /v1/tenants/:tenant/functions/:name/logs`, until Ctrl-C. Under `isola serve` a tenant's token
 * reads only its own functions; `isola dev`'s admin listener needs no token. Output is JSON lines
 * (`--format json`, the default when stdout is not a terminal) or one readable line per record
 * (`--format pretty`).
 */
import type { Command } from 'commander';
import { IsolaError, type ErrorCode } from '../errors.js';
import { CLIENT_OPTIONS, DEFAULT_ADMIN_URL, functionPath, type ClientOptions } from './client.js';
import { defineCommand } from './command.js';

interface TailOptions extends ClientOptions {
  format?: string;
}

/** Registers `isola tail`. */
export function registerTail(program: Command): void {
  defineCommand<TailOptions>(program, {
    name: 'tail',
    summary: 'stream a function\'s live logs (requests and guest output) until Ctrl-C',
    args: [{ syntax: '<function>', description: 'function name' }],
    options: [
      ...CLIENT_OPTIONS.filter((o) => !o.flags.startsWith('--json')),
      { flags: '--format <format>', description: 'json (one JSON object a line) or pretty; default pretty on a terminal, else json' },
    ],
    examples: ['isola tail hello', 'isola tail hello --format json | jq \'select(.type == "request" and .status >= 500)\'', 'isola tail hello --url http://127.0.0.1:8788   # isola dev: no token needed'],
    run: ([name], opts) => tail(name!, opts),
  });
}

async function request(url: string, token: string | undefined, signal?: AbortSignal, accept = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { accept };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    return await fetch(url, { headers, signal });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new IsolaError('ERR_ADMIN_UNREACHABLE', `cannot reach the admin API at ${new URL(url).origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, {
      user: true, hint: 'is isola running? set ISOLA_URL (or --url) to its "admin on" address', cause: err,
    });
  }
}

async function apiError(res: Response): Promise<IsolaError> {
  const text = await res.text();
  let e: { code?: string; message?: string; hint?: string } | undefined;
  try {
    e = (JSON.parse(text) as { error?: typeof e }).error;
  } catch {
    /* not JSON */
  }
  const hint = res.status === 401 ? 'set ISOLA_TOKEN (or --token) to your tenant token' : e?.hint;
  return new IsolaError((e?.code ?? 'ERR_INTERNAL') as ErrorCode, e?.message ?? `HTTP ${res.status}: ${text.slice(0, 200)}`, { status: res.status, user: true, hint });
}

/** One record as a human line: `12:00:01.123 GET /hello 200 ok 3.2ms cpu 1.1ms [req_id]`, or a guest line. */
export function prettyRecord(r: Record<string, unknown>): string {
  const time = typeof r.time === 'string' ? r.time.slice(11, 23) : '';
  if (r.type === 'log') return `${time} ${String(r.stream).padEnd(6)} ${String(r.msg)}  [${String(r.req_id)}]`;
  const extra = [r.limit ? `limit=${String(r.limit)}` : '', r.reason ? `reason=${String(r.reason)}` : '', r.error_code ? String(r.error_code) : '', r.cold ? 'cold' : ''].filter(Boolean).join(' ');
  return `${time} ${String(r.method)} ${String(r.path)} ${String(r.status)} ${String(r.outcome)} ${String(r.ms)}ms cpu ${String(r.cpu_ms)}ms v${String(r.version)}${extra ? ' ' + extra : ''}  [${String(r.req_id)}]`;
}

async function tail(name: string, opts: TailOptions): Promise<void> {
  const format = opts.format ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (format !== 'json' && format !== 'pretty') throw new IsolaError('ERR_USAGE', `--format must be json or pretty, got ${format}`, { user: true });
  const base = (opts.url ?? DEFAULT_ADMIN_URL).replace(/\/+$/, '');
  let tenant = opts.tenant;
  if (!tenant) {
    const res = await request(base + '/v1/whoami', opts.token);
    if (!res.ok) throw await apiError(res);
    const me = (await res.json()) as { tenant?: string };
    if (!me.tenant) throw new IsolaError('ERR_USAGE', 'the operator token belongs to no tenant: say which one', { user: true, hint: 'pass --tenant NAME (or set ISOLA_TENANT)' });
    tenant = me.tenant;
  }
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const res = await request(`${base}${functionPath(tenant, name)}/logs`, opts.token, stop.signal, 'text/event-stream');
  if (!res.ok || !res.body) throw await apiError(res);
  process.stderr.write(`tailing ${tenant}/${name} (Ctrl-C to stop)\n`);
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let type = 'message';
        let data = '';
        for (const line of event.split('\n')) {
          if (line.startsWith('event: ')) type = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data === '') continue;
        if (type === 'dropped') {
          process.stderr.write(`warning: ${(JSON.parse(data) as { dropped: number }).dropped} records were dropped (this terminal read too slowly)\n`);
          continue;
        }
        process.stdout.write(format === 'json' ? data + '\n' : prettyRecord(JSON.parse(data) as Record<string, unknown>) + '\n');
      }
    }
  } catch (err) {
    if (!stop.signal.aborted) throw new IsolaError('ERR_ADMIN_UNREACHABLE', `the log stream broke: ${(err as Error).message}`, { user: true, cause: err });
  }
  if (!stop.signal.aborted) throw new IsolaError('ERR_ADMIN_UNREACHABLE', 'the server closed the log stream (it is stopping?)', { user: true });
  process.exit(0);
}
