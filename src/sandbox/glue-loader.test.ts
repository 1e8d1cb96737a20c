/**
 * The glue's script form and its code cache, on a real jco glue (the WAT hello component, prepared
 * as isola prepares uploads) instantiated against isola's own wasi:http host. Every load runs in a
 * fresh worker thread, as in a sandbox: within one isolate V8 finds a script it compiled before in
 * its own compilation cache and never looks at the cached data.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Script } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestBytes } from '../../test/guests/index.js';
import { GLUE_SCRIPT_FILE, glueScriptSource, isSealedScript } from '../artifacts/glue-script.js';
import { compileArtifact, prepareArtifact, type Artifact } from '../artifacts/prepare.js';
import { cacheFileOf } from './glue-loader.js';
import { primeGlueCacheSoon } from './glue-prime.js';

let dir: string;
let artifact: Artifact;
let modules: Record<string, WebAssembly.Module>;
let cacheFile: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'isola-glue-'));
  artifact = await prepareArtifact(await buildGuestBytes('hello'), dir);
  modules = await compileArtifact(artifact, 16 * 1024 * 1024);
  cacheFile = cacheFileOf(fileURLToPath(artifact.glueScriptUrl!));
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** In a fresh thread (the built dist/ modules, as a sandbox runs them). */
const THREAD = `
import { parentPort, workerData } from 'node:worker_threads';
const { dist, scriptUrl, glueUrl, modules, save } = workerData;
const { loadGlue } = await import(dist + '/sandbox/glue-loader.js');
const { createWasiHttpHost } = await import(dist + '/sandbox/wasi-http/index.js');
const loaded = loadGlue(scriptUrl, glueUrl);
const exports = loaded.glue.instantiate((n) => modules[n], createWasiHttpHost({}).imports, (m, imports) => new WebAssembly.Instance(m, imports));
const handler = exports instanceof Promise ? null : exports['wasi:http/incoming-handler@0.2.12'];
const saved = save ? [loaded.saveCache(), loaded.saveCache()] : [];
parentPort.postMessage({ cache: loaded.cache, sync: !(exports instanceof Promise), handler: typeof handler?.handle, saved });
`;

/**
 * Loads the glue in a fresh thread and instantiates the component with synchronous core
 * instantiation; `save` then calls saveCache twice. Returns how the cache was used.
 */
async function loadAndInstantiate(save = true): Promise<{ cache: string; saved: boolean[] }> {
  const dist = new URL('../../dist', import.meta.url).href;
  const w = new Worker(THREAD, { eval: true, workerData: { dist, scriptUrl: artifact.glueScriptUrl, glueUrl: artifact.glueUrl, modules, save } });
  try {
    const r = await new Promise<{ cache: string; sync: boolean; handler: string; saved: boolean[] }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(r.sync).toBe(true); // synchronous core instantiation makes jco's instantiation synchronous too
    expect(r.handler).toBe('function');
    return r;
  } finally {
    await w.terminate();
  }
}

/** A cache file with isola's header (magic + sha256) around `data`. */
function wrap(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from('ISOLAGC1'), createHash('sha256').update(data).digest(), data]);
}

describe('glue script form', () => {
  it('is written at artifact preparation, keeps line numbers, and replaces import.meta.url', () => {
    expect(artifact.glueScriptUrl).toMatch(new RegExp(`/${GLUE_SCRIPT_FILE.replaceAll('.', '\\.')}$`));
    const glue = readFileSync(fileURLToPath(artifact.glueUrl!), 'utf8');
    const script = readFileSync(fileURLToPath(artifact.glueScriptUrl!), 'utf8');
    expect(script.split('\n').length).toBe(glue.split('\n').length + 4); // the wrapper's return and closing lines, the seal line
    expect(isSealedScript(script)).toBe(true);
    expect(script).not.toContain('import.meta');
    expect(script).not.toMatch(/^export /m);
  });

  it('is refused for glue of another shape (the sandbox then imports the module)', () => {
    expect(glueScriptSource("import x from 'y';\nexport function instantiate() {}", 'file:///g.mjs')).toBeNull();
    expect(glueScriptSource('export function instantiate() {}\nexport const other = 1;', 'file:///g.mjs')).toBeNull();
    expect(glueScriptSource('export default function () {}', 'file:///g.mjs')).toBeNull();
    expect(glueScriptSource('export function instantiate() { return import.meta.url; }', 'file:///g.mjs')).toContain('"file:///g.mjs"');
  });
});

describe('glue code cache', () => {
  it('is written after first use and accepted by the next load', async () => {
    rmSync(cacheFile, { force: true });
    expect(await loadAndInstantiate()).toMatchObject({ cache: 'none', saved: [true, false] }); // written once
    expect(readFileSync(cacheFile).subarray(0, 8).toString()).toBe('ISOLAGC1');
    expect(await loadAndInstantiate()).toMatchObject({ cache: 'hit', saved: [false, false] }); // a hit is not rewritten
  });

  it.each([
    ['empty', () => Buffer.alloc(0)],
    ['truncated', () => readFileSync(cacheFile).subarray(0, 100)],
    ['garbage', () => Buffer.from('not a cache at all, not even close'.repeat(10))],
    ['one flipped byte', () => {
      const b = Buffer.from(readFileSync(cacheFile));
      b[b.length - 10]! ^= 0xff;
      return b;
    }],
  ])('ignores a %s cache file and replaces it', async (_label, make) => {
    await loadAndInstantiate(); // makes sure a good one exists to start from
    writeFileSync(cacheFile, make());
    expect(await loadAndInstantiate()).toMatchObject({ cache: 'invalid', saved: [true, false] });
    expect((await loadAndInstantiate(false)).cache).toBe('hit');
  });

  it('ignores V8 data that V8 rejects (another V8 version, another source) and replaces it', async () => {
    // V8's own header: a version hash at bytes 4..8; any other V8 version writes another one.
    const good = readFileSync(cacheFile).subarray(40);
    const otherVersion = Buffer.from(good);
    otherVersion.writeUInt32LE(otherVersion.readUInt32LE(4) ^ 0x5a5a5a5a, 4);
    const otherSource = new Script('(function () { return 42; })').createCachedData();
    for (const data of [otherVersion, otherSource]) {
      writeFileSync(cacheFile, wrap(data));
      expect(await loadAndInstantiate()).toMatchObject({ cache: 'rejected', saved: [true, false] });
      expect((await loadAndInstantiate(false)).cache).toBe('hit');
    }
  });

  it('is primed without a request (partial), replaced by a full one when saveCache is called, and not primed again', async () => {
    rmSync(cacheFile, { force: true });
    expect(await primeGlueCacheSoon(artifact.glueScriptUrl!, artifact.glueUrl!)).toBe(true);
    expect(readFileSync(cacheFile).subarray(0, 8).toString()).toBe('ISOLAGC0');
    expect(await loadAndInstantiate()).toMatchObject({ cache: 'partial', saved: [true, false] });
    expect(readFileSync(cacheFile).subarray(0, 8).toString()).toBe('ISOLAGC1');
    expect(await loadAndInstantiate()).toMatchObject({ cache: 'hit' });
    expect(await primeGlueCacheSoon(artifact.glueScriptUrl!, artifact.glueUrl!)).toBe(false); // a cache exists
  });

  it('is named for the V8 version and architecture, so another Node never reads it', () => {
    expect(cacheFile).toContain(`${process.arch}-v8-${process.versions.v8}`);
    expect(existsSync(cacheFile)).toBe(true);
  });
});
