/**
 * Crash safety (issue 4): `isola serve` is killed with SIGKILL in the middle of concurrent uploads
 * and deploys, again and again. After every restart:
 * - the SQLite file passes `integrity_check` and `foreign_key_check`, and every live route belongs
 *   to a live deployment (the store's own `check`);
 * - every artifact file hashes to its name, every version's artifact exists, no temporary file is
 *   left, and no artifact exists that no version refers to;
 * - every acknowledged upload is listed with its digest, every acknowledged deployment is live or
 *   was superseded by a later one, and every live deployment serves its version's bytes.
 * Bounded: ITERATIONS kills, each after 250–1250 ms of load.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Api, OPERATOR, edgeGet, startServe, tempDataDir, wagiText, type Serve } from './support/serve.js';

const ITERATIONS = 6;
const TENANTS = ['a', 'b'];
const FUNCTIONS = ['f0', 'f1', 'f2'];
const dataDir = tempDataDir();
let server: Serve | null = null;

afterAll(async () => {
  await server?.stop('SIGKILL');
});

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface Acked {
  /** tenant/fn → version → digest, for every acknowledged upload. */
  versions: Map<string, Map<number, string>>;
  /** tenant/fn → id of the newest acknowledged deployment. */
  deployments: Map<string, number>;
}

async function verify(s: Serve, tokens: Record<string, string>, acked: Acked, bodies: Map<string, string>): Promise<void> {
  // The store file.
  const db = new Database(join(s.dataDir, 'isola.db'), { readonly: true, fileMustExist: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    const orphanRoutes = db.prepare('SELECT count(*) AS n FROM routes r LEFT JOIN live l ON l.tenant = r.tenant AND l.function = r.function WHERE l.deployment IS NULL').get() as { n: number };
    expect(orphanRoutes.n).toBe(0);
    const digests = new Set((db.prepare('SELECT DISTINCT digest FROM versions').all() as Array<{ digest: string }>).map((r) => r.digest));
    // The artifact files: complete, referenced, no leftovers.
    const blobDir = join(s.dataDir, 'blobs', 'sha256');
    const files = readdirSync(blobDir);
    for (const f of files) expect(await fileDigest(join(blobDir, f))).toBe(f.replace(/\.wasm$/, ''));
    for (const d of digests) expect(existsSync(join(blobDir, `${d}.wasm`)), `artifact of ${d}`).toBe(true);
    expect(files.length).toBe(digests.size);
    expect(readdirSync(join(s.dataDir, 'blobs', 'tmp'))).toEqual([]);
  } finally {
    db.close();
  }
  // What was acknowledged is there, and what is live serves.
  for (const tenant of TENANTS) {
    const api = new Api(s.admin, tokens[tenant]!);
    for (const fn of FUNCTIONS) {
      const key = `${tenant}/${fn}`;
      const r = await api.req('GET', `/v1/tenants/${tenant}/functions/${fn}/versions`);
      const ackedVersions = acked.versions.get(key);
      if (!ackedVersions) continue;
      expect(r.status).toBe(200);
      const listed = new Map<number, string>(r.json.versions.map((v: { version: number; digest: string }) => [v.version, v.digest]));
      for (const [v, digest] of ackedVersions) expect(listed.get(v), `${key}@${v}`).toBe(digest);
      const f = await api.req('GET', `/v1/tenants/${tenant}/functions/${fn}`);
      const live = f.json.function.live as { id: number; version: number } | null;
      const ackedDeployment = acked.deployments.get(key);
      if (ackedDeployment !== undefined) {
        expect(live, `${key} live`).not.toBeNull();
        expect(live!.id).toBeGreaterThanOrEqual(ackedDeployment);
      }
      if (live) {
        const res = await edgeGet(s.edgePort, `${tenant}.localhost`, `/${fn}`);
        expect(res, key).toEqual({ status: 200, body: bodies.get(listed.get(live.version)!) });
      }
    }
  }
}

describe('SIGKILL during uploads and deploys', () => {
  it(`loses nothing acknowledged and shows nothing half-written over ${ITERATIONS} kills`, async () => {
    // Every upload is distinct bytes, so every kill can land between an artifact's rename and its
    // version row (the window that leaves an unreferenced artifact for start-up to collect).
    const bodies = new Map<string, string>();
    const guest = async (text: string): Promise<Uint8Array> => {
      const g = await wagiText(text);
      bodies.set(sha256(g), text);
      return g;
    };
    const acked: Acked = { versions: new Map(), deployments: new Map() };
    const tokens: Record<string, string> = {};
    let acks = 0;

    server = await startServe(dataDir);
    const op = new Api(server.admin, OPERATOR);
    for (const t of TENANTS) tokens[t] = await op.createTenant(t);

    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const s = server;
      let stop = false;
      const worker = async (w: number): Promise<void> => {
        const tenant = TENANTS[w % TENANTS.length]!;
        const api = new Api(s.admin, tokens[tenant]!);
        for (let i = 0; !stop; i++) {
          const fn = FUNCTIONS[(w + i) % FUNCTIONS.length]!;
          const key = `${tenant}/${fn}`;
          try {
            const g = await guest(`${key} ${iteration}.${w}.${i}\n`);
            const up = await api.upload(tenant, fn, g);
            if (up.status !== 201) throw new Error(`upload ${up.status} ${JSON.stringify(up.json)}`);
            const versions = acked.versions.get(key) ?? new Map<number, string>();
            versions.set(up.json.version.version, up.json.version.digest);
            acked.versions.set(key, versions);
            acks++;
            const dep = await api.deploy(tenant, fn, { version: up.json.version.version, pool: { min_warm: 0 } });
            if (dep.status !== 201) throw new Error(`deploy ${dep.status} ${JSON.stringify(dep.json)}`);
            acked.deployments.set(key, Math.max(acked.deployments.get(key) ?? 0, dep.json.deployment.id));
            acks++;
          } catch (err) {
            if (stop) return; // the server was killed under us: expected
            throw err;
          }
        }
      };
      const workers = [0, 1, 2, 3].map(worker);
      await new Promise((r) => setTimeout(r, 250 + Math.floor(Math.random() * 1000)));
      stop = true;
      expect(await s.stop('SIGKILL')).toBeNull();
      await Promise.all(workers);
      server = await startServe(dataDir);
      if (process.env.CRASH_DEBUG) console.log(`iteration ${iteration}: ${acks} acks; restart log:`, server.stderr().split('\n').filter((l) => /removed|restored/.test(l)).join('\n'));
      await verify(server, tokens, acked, bodies);
    }
    expect(acks).toBeGreaterThan(ITERATIONS * 2);
    expect(await server.stop()).toBe(0);
    server = null;
  }, 120_000);
});
