/**
 * Receiving a version's bytes: the request body is streamed into the ArtifactStore while it is
 * hashed and counted, with backpressure (the socket is paused while a chunk is written). Once more
 * than the limit has arrived the transfer stops: the caller answers 413 with `Connection: close`,
 * so the rest of the body is never read, let alone buffered.
 */
import type { IncomingMessage } from 'node:http';
import type { ArtifactUpload } from '../store/types.js';

/** How a transfer ended. */
export type PumpResult = 'complete' | 'too-large' | 'aborted';

/**
 * Copies `req`'s body into `upload`, stopping as soon as more than `maxBytes` have arrived.
 * Resolves 'aborted' when the client went away first. Rejects when a write to the store fails.
 */
export function pumpUpload(req: IncomingMessage, upload: ArtifactUpload, maxBytes: number): Promise<PumpResult> {
  return new Promise<PumpResult>((resolve, reject) => {
    let received = 0;
    let settled = false;
    let writes: Promise<void> = Promise.resolve();
    const finish = (result: PumpResult | Error): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.byteLength;
      if (received > maxBytes) {
        req.pause();
        finish('too-large');
        return;
      }
      req.pause();
      writes = writes.then(() => upload.write(chunk)).then(
        () => {
          if (!settled) req.resume();
        },
        (err: unknown) => {
          req.pause();
          finish(err instanceof Error ? err : new Error(String(err)));
        },
      );
    };
    const onEnd = (): void => {
      void writes.then(() => finish('complete'));
    };
    const onClose = (): void => {
      if (!req.complete) finish('aborted');
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}
