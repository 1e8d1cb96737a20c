/**
 * `isola dev` as a user runs it: config errors, the listening line and route list, and a graceful
 * stop that lets an in-flight request finish.
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildGuest } from './guests/index.js';
import { parse, rawRequest } from './support/raw.js';
import { CLI, startIsola, writeConfig } from './support/server.js';

describe('isola dev', () => {
  it('prints the listening URL and each route with its function, most specific first', async () => {
    const hello = await buildGuest('hello');
    const isola = await startIsola(writeConfig([
      { name: 'any', wasm: hello, routes: ['/*'] },
      { name: 'api', wasm: hello, routes: ['example.com/api/*', '/api/v1'] },
    ]));
    try {
      const lines = isola.stdout().trim().split('\n');
      expect(lines[0]).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+$/);
      expect(lines.slice(1).map((l) => l.trim())).toEqual([
        'example.com/api/* -> api (wasi-http)',
        '/api/v1 -> api (wasi-http)',
        '/* -> any (wasi-http)',
      ]);
    } finally {
      await isola.stop();
    }
  });

  it('reports every config problem with its line, and exits 1', () => {
    const config = writeConfig([]);
    writeFileSync(config, '[server]\nport = "x"\n\n[[functions]]\nname = "Bad Name"\nroutes = ["nope"]\nwasm = "a.wasm"\ncolour = 1\n');
    const r = spawnSync(process.execPath, [CLI, 'dev', '--config', config], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/isola\.toml:2:\d+: error: server\.port/);
    expect(r.stderr).toMatch(/isola\.toml:5:\d+: error: functions\[0\]\.name/);
    expect(r.stderr).toMatch(/isola\.toml:6:\d+: error: functions\[0\]\.routes/);
    expect(r.stderr).toMatch(/isola\.toml:8:\d+: error: functions\[0\]\.colour/);
    expect(r.stdout).toBe('');
  });

  it('rejects a module that is not Wasm with a clear error naming the function', () => {
    const config = writeConfig([{ name: 'junk', wasm: CLI, routes: ['/'] }]);
    const r = spawnSync(process.execPath, [CLI, 'dev', '--config', config], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ERR_WASM_INVALID.*function "junk".*not a WebAssembly binary/);
  });

  it('finishes in-flight requests on SIGTERM, refuses new connections, and exits 0', async () => {
    const echo = await buildGuest('echo');
    const isola = await startIsola(writeConfig([{ name: 'echo', wasm: echo, routes: ['/*'] }], { drain_timeout: '10s' }));
    const sock = connect(isola.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const chunks: Buffer[] = [];
    sock.on('data', (d) => chunks.push(d));
    const closed = new Promise((r) => sock.once('close', r));
    sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello');
    await new Promise((r) => setTimeout(r, 200));
    const exit = isola.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    await expect(rawRequest(isola.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 1000 })).rejects.toThrow();
    sock.write('world');
    await closed;
    const res = parse(Buffer.concat(chunks), false);
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.body.toString()).toBe('helloworld');
    expect(await exit).toBe(0);
  });
});
