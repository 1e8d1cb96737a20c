// Preload (node --import) for `isola dev` that counts, on the main thread, the messages posted to
// sandbox workers and the messages received from them, and appends the totals to
// $ISOLA_BENCH_COUNT_FILE on exit. Used by bench/profile.mjs to report messages per request.
import { isMainThread, Worker } from 'node:worker_threads';
import { appendFileSync } from 'node:fs';

if (isMainThread && process.env.ISOLA_BENCH_COUNT_FILE) {
  const counts = { toSandbox: 0, fromSandbox: 0 };
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (...args) {
    counts.toSandbox++;
    return post.apply(this, args);
  };
  const emit = Worker.prototype.emit;
  Worker.prototype.emit = function (name, ...args) {
    if (name === 'message') counts.fromSandbox++;
    return emit.call(this, name, ...args);
  };
  // Snapshot on demand: SIGUSR2 writes the counts so far (the bench reads before/after a window).
  process.on('SIGUSR2', () => appendFileSync(process.env.ISOLA_BENCH_COUNT_FILE, JSON.stringify(counts) + '\n'));
}
