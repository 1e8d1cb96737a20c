/**
 * isola's logger: pino, JSON lines on stderr (stdout stays free for the CLI's own messages).
 * Level from `ISOLA_LOG_LEVEL` (default "info"); "silent" turns logging off.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Creates the process logger. `destination` defaults to fd 2 (stderr). */
export function createLogger(options: { level?: string; destination?: number | string } = {}): Logger {
  const level = options.level ?? process.env.ISOLA_LOG_LEVEL ?? 'info';
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: options.destination ?? 2, sync: false }));
}
