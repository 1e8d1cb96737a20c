/**
 * `isola dev --watch`: rebuild a function when one of its `[functions.build] watch` files changes,
 * and swap the new version in without dropping a request.
 *
 * - Changes are debounced (a save that touches several files is one rebuild) and builds run one at
 *   a time; a change during a build queues exactly one more build of that function.
 * - The new version is prepared and warmed before the route table is swapped (Deployments.stage +
 *   upsert); requests already running finish on the old version, whose pool then drains and stops.
 * - A failed build, or a build the runtime rejects, leaves the last good version serving; the
 *   error is printed. A build whose output did not change swaps nothing.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { FunctionConfig } from '../config/types.js';
import { IsolaError } from '../errors.js';
import { compileGlob, type Glob } from '../build/glob.js';
import type { Deployments } from '../server/deployments.js';
import { runBuilds } from './builds.js';

/** Options of {@link watchFunctions}. */
export interface WatchOptions {
  functions: FunctionConfig[];
  deployments: Deployments;
  /** How long a replaced version may finish its running requests, ms. */
  drainMs: number;
  /** Receives each human-readable line (dev prints them on stderr). */
  say: (line: string) => void;
  /** Quiet period after the last change before rebuilding, ms (default 150). */
  debounceMs?: number;
}

/** A running watch; `close` stops watching (a build already running finishes). */
export interface WatchHandle {
  /** Resolves when every rebuild queued so far is done (for tests and shutdown). */
  idle(): Promise<void>;
  close(): void;
}

interface Watched {
  fn: FunctionConfig;
  globs: Glob[];
  timer: NodeJS.Timeout | undefined;
  /** A rebuild is queued and has not started yet. */
  queued: boolean;
  /** The first changed file since the last rebuild started (shown in the message). */
  changed: string | undefined;
}

/** sha256 of a file, or undefined when it cannot be read. */
async function digest(path: string): Promise<string | undefined> {
  try {
    return createHash('sha256').update(await readFile(path)).digest('hex');
  } catch {
    return undefined;
  }
}

/** The nearest existing directory at or above `path` (a file's directory for a file). */
async function existingDir(path: string): Promise<string> {
  for (let p = path; ; p = dirname(p)) {
    try {
      if ((await stat(p)).isDirectory()) return p;
    } catch {
      // not there (yet): look higher
    }
    if (dirname(p) === p) return p;
  }
}

/** Whether a changed path is never a build input: temp files of atomic writes, VCS internals. */
function ignored(path: string): boolean {
  return path.includes('.tmp-') || path.includes(`${sep}.git${sep}`);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Starts watching the functions that have `build.watch` globs (others are listed as not watched).
 *
 * @returns a handle; watching goes on until `close`
 */
export async function watchFunctions(opts: WatchOptions): Promise<WatchHandle> {
  const { deployments, drainMs, say, debounceMs = 150 } = opts;
  const watched: Watched[] = [];
  for (const fn of opts.functions) {
    if (!fn.build) continue;
    if (fn.build.watch.length === 0) {
      say(`watch: ${fn.name} has no [functions.build] watch globs; it is not rebuilt on change`);
      continue;
    }
    watched.push({ fn, globs: fn.build.watch.map(compileGlob), timer: undefined, queued: false, changed: undefined });
  }

  // One recursive watcher per distinct root directory (a root inside another root is dropped).
  const roots = [...new Set(await Promise.all(watched.flatMap((w) => w.globs.map((g) => existingDir(g.base)))))].sort();
  const distinct = roots.filter((r, i) => !roots.slice(0, i).some((outer) => r === outer || r.startsWith(outer.endsWith(sep) ? outer : outer + sep)));

  let queue: Promise<void> = Promise.resolve();
  let closed = false;

  const rebuild = async (w: Watched): Promise<void> => {
    w.queued = false;
    const fn = w.fn;
    const changed = w.changed ? relative(fn.build!.cwd, w.changed) || w.changed : 'a watched file';
    w.changed = undefined;
    const started = performance.now();
    say(`watch: ${changed} changed; rebuilding ${fn.name}…`);
    const before = await digest(fn.wasm);
    try {
      await runBuilds([fn], true, say);
    } catch (err) {
      say(`watch: build of ${fn.name} failed${err instanceof IsolaError ? `: ${err.message}` : `: ${String(err)}`}`);
      say(`watch: still serving the last good version of ${fn.name}`);
      return;
    }
    if ((await digest(fn.wasm)) === before) {
      say(`watch: ${fn.name} rebuilt in ${seconds(performance.now() - started)}; the component is unchanged, nothing to swap`);
      return;
    }
    try {
      const next = await deployments.stage(fn, fn.name, null);
      void deployments.upsert(next, drainMs).catch((err: unknown) => say(`watch: draining the old ${fn.name}: ${String(err)}`));
    } catch (err) {
      say(`watch: the new build of ${fn.name} cannot be served: ${err instanceof Error ? err.message : String(err)}`);
      say(`watch: still serving the last good version of ${fn.name}`);
      return;
    }
    say(`watch: ${fn.name} updated in ${seconds(performance.now() - started)}; new requests get the new version`);
  };

  const onChange = (path: string): void => {
    if (closed || ignored(path)) return;
    const unix = path.split(sep).join('/');
    for (const w of watched) {
      if (path === w.fn.wasm || !w.globs.some((g) => g.matches(unix))) continue;
      w.changed ??= path;
      if (w.queued) continue;
      clearTimeout(w.timer);
      w.timer = setTimeout(() => {
        if (closed || w.queued) return;
        w.queued = true;
        queue = queue.then(() => rebuild(w)).catch((err: unknown) => say(`watch: ${String(err)}`));
      }, debounceMs);
    }
  };

  // Node 20's recursive fs.watch on Linux watches each file's inode: an editor that saves by
  // renaming a new file over the old one (vim, `sed -i`, "safe write") leaves it watching the dead
  // inode. So after every event the root's watcher is made anew (debounced), on the current files.
  const watchers = new Map<string, FSWatcher>();
  const rewatch = new Map<string, NodeJS.Timeout>();
  const watchRoot = (root: string): void => {
    try {
      const watcher = watch(root, { recursive: true }, (_event, filename) => {
        if (filename) onChange(join(root, filename.toString()));
        clearTimeout(rewatch.get(root));
        rewatch.set(root, setTimeout(() => {
          if (closed) return;
          watchers.get(root)?.close();
          watchRoot(root);
        }, debounceMs));
      });
      watcher.on('error', (err) => say(`watch: stopped watching ${root}: ${err.message}`));
      watchers.set(root, watcher);
    } catch (err) {
      say(`watch: cannot watch ${root}: ${(err as Error).message}`);
    }
  };
  for (const root of distinct) watchRoot(root);
  for (const w of watched) say(`watch: ${w.fn.name} rebuilds when ${w.fn.build!.watch.map((g) => relative(w.fn.build!.cwd, g) || '.').join(', ')} change`);

  return {
    idle: async () => {
      await queue;
    },
    close: () => {
      closed = true;
      for (const w of watched) clearTimeout(w.timer);
      for (const t of rewatch.values()) clearTimeout(t);
      for (const watcher of watchers.values()) watcher.close();
    },
  };
}
