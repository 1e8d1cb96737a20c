/**
 * isola's logger: pino, JSON lines on stderr (stdout stays free for the CLI's own messages).
 * Level from `ISOLA_LOG_LEVEL` (default "info"); "silent" turns logging off. Format from
 * `ISOLA_LOG_FORMAT`: "json" (default) or "pretty" (pino-pretty: one coloured line per record);
 * `isola dev` asks for pretty when stderr is a terminal, so `isola dev 2>&1 | jq` still gets JSON.
 *
 * Request logging (server/edge.ts) follows pino's "bind once" rule: each deployment has a child
 * logger with `tenant`, `function` and `version` serialised at creation, and each request a child of
 * that with its `req_id`, made only when the request logs.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { IsolaError } from '../errors.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export type { Logger };

/** How log records are written: JSON lines, or pino-pretty's human-readable lines. */
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  /** Default `ISOLA_LOG_LEVEL`, else "info". */
  level?: string;
  /** File descriptor or path; default 2 (stderr). */
  destination?: number | string;
  /**
   * "pretty" or "json"; `ISOLA_LOG_FORMAT` overrides it when set, and the default is "json".
   * `isola dev` passes "pretty" when stderr is a TTY.
   */
  format?: LogFormat;
}

/** The format `ISOLA_LOG_FORMAT` asks for, or `fallback` when it is unset or not recognised. */
export function logFormat(fallback: LogFormat = 'json'): LogFormat {
  const env = process.env.ISOLA_LOG_FORMAT;
  return env === 'json' || env === 'pretty' ? env : fallback;
}

/** Creates the process logger (see the module docstring). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.ISOLA_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(level)) {
    throw new IsolaError('ERR_USAGE', `ISOLA_LOG_LEVEL must be one of ${LEVELS.join(', ')}; got "${level}"`, { user: true });
  }
  const dest = options.destination ?? 2;
  let stream: DestinationStream;
  if (logFormat(options.format ?? 'json') === 'pretty') {
    stream = pretty({
      destination: dest,
      sync: true,
      colorize: typeof dest === 'number' ? pretty.isColorSupported : false,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      singleLine: true,
    });
  } else {
    stream = pino.destination({ dest, sync: false });
  }
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
