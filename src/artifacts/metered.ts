/**
 * The fuel-metered variant of an artifact (`metering = "fuel"`): every core module instrumented
 * by ./fuel.ts, in a worker thread, cached beside the plain artifact as `<digest>.fuel/` (written
 * to a temporary folder and renamed, like the plain one).
 */
import { Worker } from 'node:worker_threads';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IsolaError, type ErrorCode } from '../errors.js';
import { withGlueScript, type Artifact } from './prepare.js';

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../../dist/artifacts/fuel-worker.js' : './fuel-worker.js', import.meta.url);

/** Instruments one core module in a worker thread. Rejects with the instrumenter's IsolaError. */
export function instrumentInWorker(bytes: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER_URL, { workerData: bytes, stdout: true, stderr: true });
    w.stdout.resume();
    w.stderr.resume(); // binaryen warns about unknown name subsections on componentize-js output
    w.once('message', (m: { bytes?: Uint8Array; error?: { code: string; message: string; status: number; user: boolean } }) => {
      if (m.bytes) resolve(m.bytes);
      else reject(new IsolaError(m.error!.code as ErrorCode, `fuel instrumentation: ${m.error!.message}`, { status: m.error!.status, user: m.error!.user }));
      void w.terminate();
    });
    w.once('error', (err) => reject(new IsolaError('ERR_INTERNAL', `fuel instrumentation crashed: ${err.message}`)));
  });
}

const inflight = new Map<string, Promise<Artifact>>();

/** Returns the metered variant of `artifact` (preparing and caching it on first use). */
export function meteredArtifact(artifact: Artifact, cacheDir: string): Promise<Artifact> {
  const dir = join(cacheDir, `${artifact.digest}.fuel`);
  let p = inflight.get(dir);
  if (!p) {
    p = prepareMetered(artifact, dir, cacheDir).finally(() => inflight.delete(dir));
    inflight.set(dir, p);
  }
  return p;
}

async function prepareMetered(artifact: Artifact, dir: string, cacheDir: string): Promise<Artifact> {
  const metered = (d: string): Promise<Artifact> => withGlueScript({
    ...artifact,
    dir: d,
    glueUrl: artifact.glueUrl === null ? null : pathToFileURL(join(d, 'guest.mjs')).href,
    glueScriptUrl: null,
  });
  try {
    await readFile(join(dir, 'meta.json'));
    return await metered(dir);
  } catch {
    /* not cached yet */
  }
  const tmp = join(cacheDir, `.tmp-${artifact.digest}.fuel-${process.pid}-${Date.now()}`);
  await mkdir(tmp, { recursive: true });
  try {
    for (const f of artifact.coreFiles) {
      await writeFile(join(tmp, f), await instrumentInWorker(await readFile(join(artifact.dir, f))));
    }
    if (artifact.glueUrl !== null) await copyFile(join(artifact.dir, 'guest.mjs'), join(tmp, 'guest.mjs'));
    await copyFile(join(artifact.dir, 'meta.json'), join(tmp, 'meta.json'));
    try {
      await rename(tmp, dir);
    } catch (err) {
      try {
        await readFile(join(dir, 'meta.json')); // another process won the race
      } catch {
        throw err;
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return metered(dir);
}
