/**
 * Cold starts on blank sandboxes (issue 5's cold-start target), end to end: functions with
 * `min_warm = 0` keep their small core modules' bytes from deploy on, blank sandboxes load the jco
 * glue as a script with a V8 code cache beside the artifact (primed at deploy, rewritten after a
 * first request), and every guest failure still ends as it does on a warm sandbox.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildComponentFile } from './guests/build.js';
import { buildGuest } from './guests/index.js';
import { guest, replyText } from './guests/wat.js';
import { assembleWat } from '../scripts/build-wagi-examples.mjs';
import { ROOT, startIsola, until, writeConfig, type Isola } from './support/server.js';

let isola: Isola;
let artifactsDir: string;
/** The hello artifact's folder name (sha256 of the component). */
let helloDigest: string;

beforeAll(async () => {
  const [hello, trap, loop, bomb] = await Promise.all(['hello', 'trap', 'loop', 'memory-bomb'].map((n) => buildGuest(n as 'hello')));
  helloDigest = createHash('sha256').update(readFileSync(hello!)).digest('hex');
  const wagi = join(mkdtempSync(join(tmpdir(), 'isola-cold-')), 'hello.wasm');
  await assembleWat(join(ROOT, 'examples/wagi-wat/hello.wat'), wagi);
  const lazy = { min_warm: 0 };
  const config = writeConfig([
    ...['a', 'b', 'c', 'd', 'e'].map((n) => ({ name: `hello-${n}`, wasm: hello!, routes: [`/${n}`], pool: lazy })),
    { name: 'trap', wasm: trap!, routes: ['/trap'], pool: lazy },
    { name: 'loop', wasm: loop!, routes: ['/loop'], pool: lazy, extra: 'metering = "fuel"', limits: { fuel: 5_000_000, cpu: '20s' } },
    { name: 'bomb', wasm: bomb!, routes: ['/bomb'], pool: lazy, limits: { memory: '8MiB' } },
    { name: 'wagi', wasm: wagi, routes: ['/wagi'], pool: lazy },
  ]);
  appendFileSync(config, '\n[sandboxes]\nblank = 3\n');
  artifactsDir = join(dirname(config), 'data', 'artifacts');
  isola = await startIsola(config, [], { ISOLA_LOG_LEVEL: 'debug' });
}, 180_000);

afterAll(async () => {
  await isola?.stop();
});

/** The hello artifact's code cache files, as paths. */
const cacheFiles = (): string[] =>
  readdirSync(join(artifactsDir, helloDigest)).filter((f) => f.endsWith('.cache')).map((f) => join(artifactsDir, helloDigest, f));
const starts = (fn: string) => isola.logs().filter((l) => l.function === fn && l.event === 'start');
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

describe('first request on a blank sandbox', () => {
  it('serves it from the glue code cache primed at start, which the sandboxes keep as it is', async () => {
    await new Promise((r) => setTimeout(r, 1000)); // let the blank sandboxes come up
    // Primed (ISOLAGC0) in the background at start (min_warm = 0), before any request.
    const magic = () => cacheFiles().map((f) => readFileSync(f).subarray(0, 8).toString());
    await until(() => magic()[0] === 'ISOLAGC0', 5000, 'a primed code cache file');
    const primed = readFileSync(cacheFiles()[0]!);
    const res = await fetch(`${isola.url}/a`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello from wat\n');
    await until(() => starts('hello-a').length > 0, 5000, 'pool start event'); // logs arrive on their own time
    expect(starts('hello-a')).toMatchObject([{ cold: true, fromBlank: true }]);
    const again = await fetch(`${isola.url}/b`); // same artifact, another function: a new sandbox
    expect(again.status).toBe(200);
    expect(await again.text()).toBe('hello from wat\n');
    await new Promise((r) => setTimeout(r, 300)); // a sandbox that rewrote the cache would have by now
    expect(cacheFiles()).toHaveLength(1);
    expect(readFileSync(cacheFiles()[0]!).equals(primed)).toBe(true);
  });

  it('ignores a corrupt code cache and replaces it', async () => {
    expect(cacheFiles()).toHaveLength(1);
    const file = cacheFiles()[0]!;
    writeFileSync(file, Buffer.from('ISOLAGC1 but then nothing that checks out'));
    await new Promise((r) => setTimeout(r, 300)); // a blank sandbox to take
    const res = await fetch(`${isola.url}/c`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello from wat\n');
    await until(() => readFileSync(file).length > 1000, 5000, 'a rewritten cache');
    const d = await fetch(`${isola.url}/d`);
    expect(d.status).toBe(200);
  });

  it('falls back to the glue module when the script form was damaged after the server checked it', async () => {
    const script = join(artifactsDir, helloDigest, 'guest.script.1.js');
    truncateSync(script, 5000);
    await new Promise((r) => setTimeout(r, 300)); // a blank sandbox to take
    const res = await fetch(`${isola.url}/e`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello from wat\n');
  });

  it('answers a trap with 500 ERR_GUEST_TRAP, and again on the recycled instance', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${isola.url}/trap`);
      expect(res.status).toBe(500);
      expect((await errorOf(res)).code).toBe('ERR_GUEST_TRAP');
    }
  });

  it('stops a metered guest at limits.fuel with 503 ERR_FUEL_LIMIT', async () => {
    const res = await fetch(`${isola.url}/loop`);
    expect(res.status).toBe(503);
    expect(await errorOf(res)).toMatchObject({ code: 'ERR_FUEL_LIMIT', message: expect.stringMatching(/5000000/) });
  });

  it('stops a memory.grow bomb at limits.memory with 503 ERR_MEMORY_LIMIT', async () => {
    const res = await fetch(`${isola.url}/bomb`);
    expect(res.status).toBe(503);
    expect(await errorOf(res)).toMatchObject({ code: 'ERR_MEMORY_LIMIT', message: expect.stringMatching(/8388608 bytes/) });
  });
});

describe('a WAGI module with min_warm = 0', () => {
  it('is compiled from the bytes kept at deploy and answers', async () => {
    const res = await fetch(`${isola.url}/wagi`);
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBeGreaterThan(0);
  });
});

describe('deploying a min_warm = 0 function', () => {
  it('still refuses a module whose memory does not fit limits.memory, and says why', async () => {
    const bigWasm = await buildComponentFile('big-data', guest((g) => replyText(g, 200, 'x'.repeat(70_000))));
    const config = writeConfig([{ name: 'big', wasm: bigWasm, routes: ['/'], pool: { min_warm: 0 }, limits: { memory: '64KiB' } }]);
    await expect(startIsola(config)).rejects.toThrow(/function "big".*over the 65536-byte limit/s);
  });

  it('still refuses bytes that are not WebAssembly', async () => {
    const dir = dirname(writeConfig([]));
    const junk = join(dir, 'junk.wasm');
    writeFileSync(junk, 'not wasm at all');
    await expect(startIsola(writeConfig([{ name: 'junk', wasm: junk, routes: ['/'], pool: { min_warm: 0 } }]))).rejects.toThrow(/ERR_WASM_INVALID|not a WebAssembly binary/);
  });
});
