import { describe, expect, it } from 'vitest';
import { IsolaError } from '../errors.js';
import { compileCoreModules } from './prepare.js';

/** The smallest valid core module: the preamble and version, no sections. */
const EMPTY_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

describe('compileCoreModules', () => {
  it('compiles every module synchronously, by file name', () => {
    const modules = compileCoreModules({ 'a.wasm': EMPTY_MODULE, 'b.wasm': EMPTY_MODULE });
    expect(Object.keys(modules)).toEqual(['a.wasm', 'b.wasm']);
    expect(modules['a.wasm']).toBeInstanceOf(WebAssembly.Module);
  });

  it('names the module that does not compile (ERR_WASM_INVALID, 400)', () => {
    const bad = new Uint8Array([...EMPTY_MODULE, 0x01, 0x05]); // a type section cut short
    let err: unknown;
    try {
      compileCoreModules({ 'good.wasm': EMPTY_MODULE, 'guest.core2.wasm': bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IsolaError);
    expect(err).toMatchObject({ code: 'ERR_WASM_INVALID', status: 400, message: expect.stringMatching(/guest\.core2\.wasm does not compile/) });
  });
});

describe('the artifact cache', () => {
  it('makes an artifact again when its meta.json or a core module is truncated, or its folder is half there', async () => {
    const { mkdtempSync, readFileSync, rmSync, truncateSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { buildGuestBytes } = await import('../../test/guests/index.js');
    const { prepareArtifact } = await import('./prepare.js');
    const dir = mkdtempSync(join(tmpdir(), 'isola-prepare-'));
    try {
      const bytes = await buildGuestBytes('hello');
      const first = await prepareArtifact(bytes, dir);
      const meta = join(first.dir, 'meta.json');
      const good = readFileSync(meta, 'utf8');
      truncateSync(meta, 20);
      const again = await prepareArtifact(bytes, dir);
      expect(again.digest).toBe(first.digest);
      expect(readFileSync(meta, 'utf8')).toBe(good);
      rmSync(meta);
      await prepareArtifact(bytes, dir);
      expect(readFileSync(meta, 'utf8')).toBe(good);
      // A core module cut short (a crash while the cache was written, a full disk) is noticed too.
      const core = join(first.dir, JSON.parse(good).coreFiles[0]);
      const whole = readFileSync(core);
      truncateSync(core, 100);
      await prepareArtifact(bytes, dir);
      expect(readFileSync(core)).toEqual(whole);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
