/**
 * Worker-thread entry for `primeGlueCache` (./glue-loader.ts): a throwaway thread, so the glue's
 * top level never runs on the main thread. Input: workerData = `{ scriptUrl, glueUrl }`; output:
 * one message, `{ written }` or `{ error }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { primeGlueCache } from './glue-loader.js';

const { scriptUrl, glueUrl } = workerData as { scriptUrl: string; glueUrl: string };
try {
  parentPort!.postMessage({ written: primeGlueCache(scriptUrl, glueUrl) });
} catch (err) {
  parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
}
