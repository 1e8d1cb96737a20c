/**
 * Primes the glue code cache of freshly deployed components in the background (see
 * `primeGlueCache` in ./glue-loader.ts), one throwaway thread at a time, so that the first request
 * to a component that never ran finds at least a partial cache. Best effort: nothing waits for it,
 * and a failure only means that the first request compiles the glue itself.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { cacheFileOf } from './glue-loader.js';

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../../dist/sandbox/glue-prime-worker.js' : './glue-prime-worker.js', import.meta.url);
/** A priming thread still running after this long is stopped, ms. */
const PRIME_TIMEOUT_MS = 10_000;

let queue: Promise<unknown> = Promise.resolve();
const queued = new Set<string>();

/**
 * Queues priming of the glue script at `scriptUrl` (its module at `glueUrl`, for stack traces),
 * unless it has a cache file (valid or not: a sandbox replaces a bad one) or is queued already.
 * @returns resolves with true when a cache file was written; never rejects
 */
export function primeGlueCacheSoon(scriptUrl: string, glueUrl: string): Promise<boolean> {
  if (queued.has(scriptUrl) || existsSync(cacheFileOf(fileURLToPath(scriptUrl)))) return Promise.resolve(false);
  queued.add(scriptUrl);
  const run = queue.then(() => primeInThread(scriptUrl, glueUrl)).finally(() => queued.delete(scriptUrl));
  queue = run;
  return run;
}

function primeInThread(scriptUrl: string, glueUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const w = new Worker(WORKER_URL, { workerData: { scriptUrl, glueUrl }, stdout: true, stderr: true });
    w.stdout.resume();
    w.stderr.resume();
    w.unref(); // never keeps the process alive
    const timer = setTimeout(() => void w.terminate(), PRIME_TIMEOUT_MS);
    timer.unref();
    const done = (written: boolean) => {
      clearTimeout(timer);
      resolve(written);
      void w.terminate();
    };
    w.once('message', (m: { written?: boolean }) => done(m.written === true));
    w.once('error', () => done(false));
    w.once('exit', () => done(false));
  });
}
