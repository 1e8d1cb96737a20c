/**
 * Per-function limits that issue 2 configures: linear memory is capped by rewriting the module's
 * memory limits, so a memory.grow bomb is stopped at the cap instead of eating the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildComponentFile } from './guests/build.js';
import { guest, replyText } from './guests/wat.js';
import { startIsola, writeConfig, type Isola } from './support/server.js';

const CAP_PAGES = 32; // 2 MiB

/** Grows memory one page at a time until memory.grow fails; 200 when it stopped within the cap, else traps. */
const growBomb = guest((g) => `
    (block $full (loop $grow
      (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (br_if $full (i32.gt_u (memory.size) (i32.const 70000)))
      (br $grow)))
    (if (i32.gt_u (memory.size) (i32.const ${CAP_PAGES})) (then unreachable))
    ${replyText(g, 200, 'capped\n')}`);

let isola: Isola;

beforeAll(async () => {
  const wasm = await buildComponentFile('grow-bomb', growBomb);
  isola = await startIsola(writeConfig([{ name: 'bomb', wasm, routes: ['/bomb'], limits: { memory: `${CAP_PAGES * 64}KiB` } }]));
}, 120_000);

afterAll(async () => {
  await isola?.stop();
});

describe('memory limit', () => {
  it('stops memory.grow at limits.memory', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${isola.url}/bomb`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('capped\n');
    }
  });
});

describe('memory limit below the module minimum', () => {
  it('refuses to start the function and says why', async () => {
    const wasm = await buildComponentFile('grow-bomb', growBomb);
    const config = writeConfig([{ name: 'tiny', wasm, routes: ['/'], limits: { memory: '64KiB' } }]);
    // Our guests need 1 page of static data + heap at least; a cap of one page still fits, so use a module needing more.
    const big = guest((g) => replyText(g, 200, 'x'.repeat(70_000)));
    const bigWasm = await buildComponentFile('big-data', big);
    const config2 = writeConfig([{ name: 'big', wasm: bigWasm, routes: ['/'], limits: { memory: '64KiB' } }]);
    await expect(startIsola(config2)).rejects.toThrow(/function "big".*over the 65536-byte limit/s);
    // The small one fits in one page and starts.
    const ok = await startIsola(config);
    await ok.stop();
  });
});
