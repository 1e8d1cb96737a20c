/**
 * What the edge and admin listeners share: answering `Expect: 100-continue` (RFC 9110 §10.1.1)
 * through a refusal check, and listening with the bound address reported as a URL and a clear
 * user error (with a hint when the port is taken).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IsolaError } from '../errors.js';

/**
 * Handles `Expect: 100-continue`: `refuse(req, res)` may answer the request itself (e.g. 413
 * before an oversize body is sent) and return true; otherwise the client is told to continue and
 * the request is served as usual.
 */
export function handleExpectContinue(server: Server, refuse: (req: IncomingMessage, res: ServerResponse) => boolean): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (refuse(req, res)) return;
    res.writeContinue();
    server.emit('request', req, res);
  });
}

/**
 * Listens on host:port (0 = a free port) and resolves with the bound URL (IPv6 in brackets) and
 * port. Rejects with IsolaError ERR_INTERNAL (user) naming `label`, with a hint when the port is taken.
 */
export function listen(server: Server, host: string, port: number, label: string): Promise<{ url: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      reject(new IsolaError('ERR_INTERNAL', `cannot listen on ${host}:${port}${label ? ` (${label})` : ''}: ${err.message}`, {
        user: true, cause: err, hint: inUse ? 'another server uses that port: stop it, or pick another port (0 = any free port)' : undefined,
      }));
    });
    server.listen(port, host, () => {
      const addr = server.address() as AddressInfo;
      const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({ url: `http://${hostPart}:${addr.port}`, port: addr.port });
    });
  });
}
