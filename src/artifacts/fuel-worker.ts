/**
 * Worker-thread entry that runs fuel instrumentation (binaryen, seconds on a large module) off the
 * main thread, so serving and deploys go on meanwhile. Input: workerData = the core module bytes;
 * output: one message, `{ bytes }` or `{ error: { code, message, status } }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { IsolaError } from '../errors.js';
import { instrumentFuel } from './fuel.js';

try {
  const bytes = instrumentFuel(workerData as Uint8Array);
  parentPort!.postMessage({ bytes }, [bytes.buffer as ArrayBuffer]);
} catch (err) {
  const e = err instanceof IsolaError ? err : new IsolaError('ERR_INTERNAL', err instanceof Error ? err.message : String(err));
  parentPort!.postMessage({ error: { code: e.code, message: e.message, status: e.status, user: e.user } });
}
