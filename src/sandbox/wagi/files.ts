/**
 * Copies a function's configured `files` (guest path → host path) into a @wasmer/wasi MemFS, the
 * only filesystem a WAGI guest sees. Host folders are copied recursively; symbolic links and
 * special files inside them are skipped (never followed), so nothing outside the configured paths
 * is reachable. The configured host path itself may be a link (the config author chose it).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { MemFS } from '@wasmer/wasi';
import { IsolaError } from '../../errors.js';

function badGuestPath(guestPath: string): IsolaError {
  return new IsolaError('ERR_CONFIG_INVALID', `files: guest path ${JSON.stringify(guestPath)} must be absolute and normalized (no ".", ".." or trailing "/")`, {
    status: 500,
    user: true,
    details: { guestPath },
  });
}

function ensureDir(fs: MemFS, dir: string, made: Set<string>): void {
  if (dir === '/' || made.has(dir)) return;
  ensureDir(fs, posix.dirname(dir), made);
  try {
    fs.createDir(dir);
  } catch {
    // exists already (several mappings share a parent)
  }
  made.add(dir);
}

function copyFile(fs: MemFS, guestPath: string, hostPath: string, made: Set<string>): number {
  ensureDir(fs, posix.dirname(guestPath), made);
  const bytes = readFileSync(hostPath);
  const file = fs.open(guestPath, { read: true, write: true, create: true, truncate: true });
  try {
    file.write(bytes);
  } finally {
    file.free();
  }
  return bytes.length;
}

function copyDir(fs: MemFS, guestDir: string, hostDir: string, made: Set<string>): number {
  ensureDir(fs, guestDir, made);
  let total = 0;
  for (const entry of readdirSync(hostDir, { withFileTypes: true })) {
    const guestPath = posix.join(guestDir, entry.name);
    const hostPath = join(hostDir, entry.name);
    if (entry.isDirectory()) total += copyDir(fs, guestPath, hostPath, made);
    else if (entry.isFile()) total += copyFile(fs, guestPath, hostPath, made);
  }
  return total;
}

/**
 * Copies every mapping of `files` into `fs`. Returns the bytes copied.
 * Throws IsolaError `ERR_CONFIG_INVALID` (user) for a guest path that is not absolute and
 * normalized, or a host path that cannot be read.
 */
export function copyFilesIn(fs: MemFS, files: Record<string, string>): number {
  const made = new Set<string>();
  let total = 0;
  for (const [guestPath, hostPath] of Object.entries(files)) {
    if (!guestPath.startsWith('/') || posix.normalize(guestPath) !== guestPath || (guestPath.length > 1 && guestPath.endsWith('/'))) {
      throw badGuestPath(guestPath);
    }
    try {
      total += statSync(hostPath).isDirectory()
        ? copyDir(fs, guestPath, hostPath, made)
        : copyFile(fs, guestPath, hostPath, made);
    } catch (err) {
      if (err instanceof IsolaError) throw err;
      throw new IsolaError('ERR_CONFIG_INVALID', `files: cannot read ${hostPath} (for ${guestPath}): ${(err as Error).message}`, {
        status: 500,
        user: true,
        details: { guestPath, hostPath },
        cause: err,
      });
    }
  }
  return total;
}
