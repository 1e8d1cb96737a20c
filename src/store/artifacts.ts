/**
 * The embedded ArtifactStore: a version's bytes as files named by their sha256 under
 * `<data_dir>/blobs/sha256/<digest>.wasm`.
 *
 * An upload is written to `<data_dir>/blobs/tmp/` while it is hashed; `commit` fsyncs the file,
 * renames it to its digest's name and fsyncs the directory, so after a crash a digest's file is
 * either absent or complete (rename is atomic on POSIX file systems; the directory fsync makes the
 * new name durable). Identical bytes uploaded twice end as one file. Leftover temporary files are
 * deleted by `recover` at start-up.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IsolaError } from '../errors.js';
import type { ArtifactStore, ArtifactUpload } from './types.js';

const DIGEST_RE = /^[0-9a-f]{64}$/;

/** fsyncs a directory so that renames into it survive a crash. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** ArtifactStore on the local file system; see the module docstring. */
export class FsArtifactStore implements ArtifactStore {
  readonly blobDir: string;
  readonly tmpDir: string;

  /** @param root the folder to keep blobs in, e.g. `<data_dir>/blobs`. */
  constructor(root: string) {
    this.blobDir = join(root, 'sha256');
    this.tmpDir = join(root, 'tmp');
  }

  /** Creates the folders and deletes temporary files a crash left behind. Call before any upload. */
  async recover(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  private file(digest: string): string {
    if (!DIGEST_RE.test(digest)) throw new IsolaError('ERR_STORE', `not a sha256 digest: ${digest}`);
    return join(this.blobDir, `${digest}.wasm`);
  }

  async begin(): Promise<ArtifactUpload> {
    const tmp = join(this.tmpDir, `${randomBytes(12).toString('hex')}.part`);
    const fh = await open(tmp, 'wx');
    return new FsUpload(fh, tmp, (digest) => this.file(digest), this.blobDir);
  }

  async localPath(digest: string): Promise<string> {
    return this.file(digest);
  }

  async has(digest: string): Promise<boolean> {
    try {
      await stat(this.file(digest));
      return true;
    } catch {
      return false;
    }
  }

  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.blobDir);
    } catch {
      return [];
    }
    return names.filter((n) => n.endsWith('.wasm')).map((n) => n.slice(0, -5)).filter((d) => DIGEST_RE.test(d)).sort();
  }

  async remove(digest: string): Promise<void> {
    await rm(this.file(digest), { force: true });
  }

  async verify(): Promise<string[]> {
    const bad: string[] = [];
    for (const digest of await this.list()) {
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(this.file(digest))) hash.update(chunk as Buffer);
      if (hash.digest('hex') !== digest) bad.push(digest);
    }
    return bad;
  }
}

class FsUpload implements ArtifactUpload {
  private readonly hash: Hash = createHash('sha256');
  private written = 0;
  private digest: string | null = null;
  private closed = false;
  private done = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly tmp: string,
    private readonly target: (digest: string) => string,
    private readonly dir: string,
  ) {}

  get size(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    let off = 0;
    while (off < chunk.byteLength) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.byteLength - off);
      off += bytesWritten;
    }
    this.written += chunk.byteLength;
  }

  async finish(): Promise<{ digest: string; size: number; bytes: Uint8Array }> {
    this.digest ??= this.hash.digest('hex');
    const bytes = await readFile(this.tmp);
    return { digest: this.digest, size: this.written, bytes };
  }

  async commit(): Promise<void> {
    if (this.digest === null) throw new IsolaError('ERR_STORE', 'commit before finish');
    await this.fh.sync();
    await this.closeFile();
    await rename(this.tmp, this.target(this.digest));
    await syncDir(this.dir);
    this.done = true;
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.closeFile().catch(() => {});
    await rm(this.tmp, { force: true });
  }

  private async closeFile(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}
