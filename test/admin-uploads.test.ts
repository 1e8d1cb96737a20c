/**
 * Bad uploads (issue 4): each gets a precise 4xx with a stable code, and nothing is stored (no
 * version, no function, no artifact file, no temporary file). Over-size bodies are refused with 413
 * as soon as the size is known, without reading the rest. Concurrent uploads of the same and of
 * different functions are numbered without gaps or repeats.
 */
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleCore, buildComponent } from './guests/build.js';
import { buildGuestBytes } from './guests/index.js';
import { Api, OPERATOR, startServe, tempDataDir, wagiText, type Serve } from './support/serve.js';

const MAX_UPLOAD = 256 * 1024;
let server: Serve;
let alice: Api;
let op: Api;

beforeAll(async () => {
  const dir = tempDataDir();
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(join(dir, '..'), { recursive: true });
  const config = join(dir, '..', 'isola.toml');
  writeFileSync(config, `[server]\nmax_upload = ${MAX_UPLOAD}\n[server.tenant_limits]\nmemory = "1MiB"\n`);
  server = await startServe(dir, { args: ['--config', config] });
  op = new Api(server.admin, OPERATOR);
  alice = new Api(server.admin, await op.createTenant('alice'));
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

/** Asserts the store holds nothing for alice/bad: no function, no artifact, no temp file. */
async function nothingStored(): Promise<void> {
  expect((await alice.req('GET', '/v1/tenants/alice/functions/bad')).status).toBe(404);
  const blobs = join(server.dataDir, 'blobs');
  expect(readdirSync(join(blobs, 'sha256'))).toEqual([]);
  expect(readdirSync(join(blobs, 'tmp'))).toEqual([]);
}

const noHandlerWorld = {
  witSource: 'package test:other;\n\nworld other {\n  export run: func();\n}\n',
  world: 'other',
};

describe('bad uploads', () => {
  const cases: Array<[string, () => Promise<Uint8Array>, number, string, RegExp]> = [
    ['an empty body', async () => new Uint8Array(0), 400, 'ERR_UPLOAD_EMPTY', /the upload is empty/],
    ['random bytes', async () => new Uint8Array(Array.from({ length: 1000 }, (_, i) => (i * 7919) % 251)), 400, 'ERR_WASM_INVALID', /not a WebAssembly binary/],
    ['a truncated component', async () => (await buildGuestBytes('hello')).subarray(0, 3000), 400, 'ERR_WASM_INVALID', /invalid component/],
    ['a truncated core module', async () => (await wagiText('x')).subarray(0, 60), 400, 'ERR_WASM_INVALID', /invalid core module/],
    ['a component without the incoming handler', () => buildComponent('no-handler', '(module (func (export "run")))', { world: noHandlerWorld }), 400, 'ERR_WASM_NO_HANDLER', /does not export wasi:http\/incoming-handler@0\.2\.x \(it exports: run/],
    ['a core module that is not a WASI command', () => assembleCore('no-start', '(module (memory (export "memory") 1) (func (export "main")))'), 400, 'ERR_WASM_NOT_WASI_COMMAND', /does not export a `_start` function/],
    ['a module importing what isola does not offer', () => assembleCore('foreign', '(module (import "env" "launch_missiles" (func)) (memory (export "memory") 1) (func (export "_start")))'), 400, 'ERR_WASM_UNKNOWN_IMPORT', /env\.launch_missiles/],
    ['a module needing more memory than the tenant may have', () => wagiText('big\n', 17), 400, 'ERR_WASM_MEMORY_LIMIT', /needs at least 1114112 bytes of memory, over the 1048576-byte limit/],
    ['a body over max_upload', async () => new Uint8Array(MAX_UPLOAD + 1), 413, 'ERR_UPLOAD_TOO_LARGE', /over the 262144-byte limit/],
  ];
  for (const [what, bytes, status, code, message] of cases) {
    it(`${what} → ${status} ${code}, nothing stored`, async () => {
      const r = await alice.upload('alice', 'bad', await bytes());
      expect(r.status).toBe(status);
      expect(r.json.error.code).toBe(code);
      expect(r.json.error.message).toMatch(message);
      await nothingStored();
    });
  }

  it('a wrong content type → 415 ERR_UPLOAD_CONTENT_TYPE', async () => {
    const r = await alice.req('POST', '/v1/tenants/alice/functions/bad/versions', await wagiText('x'), { 'content-type': 'text/plain' });
    expect(r.status).toBe(415);
    expect(r.json.error.code).toBe('ERR_UPLOAD_CONTENT_TYPE');
    await nothingStored();
  });

  it('a forced ABI that does not match the bytes → 400 ERR_ABI_MISMATCH', async () => {
    const r = await alice.upload('alice', 'bad', await wagiText('x'), '?abi=wasi-http');
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('ERR_ABI_MISMATCH');
    await nothingStored();
  });

  it('a chunked body over max_upload is cut off with 413 without reading the rest', async () => {
    const sock = connect(Number(new URL(server.admin).port), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const received: Buffer[] = [];
    sock.on('data', (d) => received.push(d));
    sock.on('error', () => {});
    const closed = new Promise((r) => sock.once('close', r));
    sock.write(`POST /v1/tenants/alice/functions/bad/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nContent-Type: application/wasm\r\nTransfer-Encoding: chunked\r\n\r\n`);
    // Keep sending 64 KiB chunks until the server answers; it must answer long before 64 MiB.
    const chunk = Buffer.alloc(64 * 1024);
    let sent = 0;
    while (received.length === 0 && sent < 64 * 1024 * 1024 && !sock.destroyed) {
      const ok = sock.write(`${chunk.length.toString(16)}\r\n`) && sock.write(chunk) && sock.write('\r\n');
      sent += chunk.length;
      if (!ok) await Promise.race([new Promise((r) => sock.once('drain', r)), new Promise((r) => setTimeout(r, 50))]);
    }
    await closed;
    const text = Buffer.concat(received).toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toMatch(/connection: close/i);
    expect(text).toMatch(/ERR_UPLOAD_TOO_LARGE/);
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    await nothingStored();
  });

  it('a declared Content-Length over max_upload with Expect: 100-continue → 413 before any byte is sent', async () => {
    const sock = connect(Number(new URL(server.admin).port), '127.0.0.1');
    const received: Buffer[] = [];
    sock.on('data', (d) => received.push(d));
    const closed = new Promise((r) => sock.once('close', r));
    sock.write(`POST /v1/tenants/alice/functions/bad/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nContent-Type: application/wasm\r\nContent-Length: ${1024 ** 3}\r\nExpect: 100-continue\r\n\r\n`);
    await closed;
    const text = Buffer.concat(received).toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).not.toMatch(/100 Continue/);
    await nothingStored();
  });
});

describe('concurrent uploads', () => {
  it('numbers versions of one function without gaps or repeats, and keeps other functions apart', async () => {
    const bodies = await Promise.all(Array.from({ length: 6 }, (_, i) => wagiText(`c${i % 3}\n`)));
    const results = await Promise.all([
      ...bodies.map((b) => alice.upload('alice', 'same', b)),
      ...bodies.slice(0, 3).map((b, i) => alice.upload('alice', `other-${i}`, b)),
    ]);
    expect(results.map((r) => r.status)).toEqual(Array(9).fill(201));
    const same = results.slice(0, 6).map((r) => r.json.version.version as number).sort();
    expect(same).toEqual([1, 2, 3, 4, 5, 6]);
    expect(results.slice(6).map((r) => r.json.version.version)).toEqual([1, 1, 1]);
    // Identical bytes are stored once.
    expect(readdirSync(join(server.dataDir, 'blobs', 'sha256')).length).toBe(3);
    expect(readdirSync(join(server.dataDir, 'blobs', 'tmp'))).toEqual([]);
  });
});
