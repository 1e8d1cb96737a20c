/**
 * A raw HTTP/1.1 client over a TCP socket, for the tests that must see exactly what went over the
 * wire (header line order, duplicate lines, a body that stops short, a connection that is cut).
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  /** Header lines in wire order: [name, value]. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** true when the body ended as framed (content-length reached or last chunk seen). */
  complete: boolean;
  /** The raw bytes received. */
  raw: Buffer;
}

/** Sends `request` (bytes as written) and reads until the server closes or the response is complete. */
export function rawRequest(port: number, request: string | Buffer, opts: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const timer = setTimeout(() => finish(), opts.timeoutMs ?? 10_000);
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      try {
        resolve(parse(Buffer.concat(chunks), opts.head === true));
      } catch (e) {
        reject(e);
      }
    };
    sock.on('data', (d) => {
      chunks.push(d);
      try {
        if (parse(Buffer.concat(chunks), opts.head === true).complete) finish();
      } catch {
        /* incomplete head so far */
      }
    });
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', (e) => (done ? undefined : chunks.length ? finish() : reject(e)));
    sock.write(request);
  });
}

/** Parses a raw response; throws when the head is incomplete. */
export function parse(raw: Buffer, isHead: boolean): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error('incomplete head');
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers = lines.slice(1).map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()] as [string, string];
  });
  const rest = raw.subarray(end + 4);
  const get = (n: string) => headers.find(([k]) => k.toLowerCase() === n)?.[1];
  const cl = get('content-length');
  if (isHead || status === 204 || status === 304) return { status, headers, body: rest, complete: true, raw };
  if (cl !== undefined) {
    const n = Number(cl);
    return { status, headers, body: rest.subarray(0, n), complete: rest.length >= n, raw };
  }
  if (get('transfer-encoding')?.toLowerCase() === 'chunked') {
    const out: Buffer[] = [];
    let i = 0;
    for (;;) {
      const nl = rest.indexOf('\r\n', i);
      if (nl < 0) return { status, headers, body: Buffer.concat(out), complete: false, raw };
      const size = parseInt(rest.subarray(i, nl).toString('latin1'), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(out), complete: rest.indexOf('\r\n\r\n', nl - 2) >= 0 || rest.length >= nl + 4, raw };
      if (rest.length < nl + 2 + size + 2) return { status, headers, body: Buffer.concat(out), complete: false, raw };
      out.push(rest.subarray(nl + 2, nl + 2 + size));
      i = nl + 2 + size + 2;
    }
  }
  return { status, headers, body: rest, complete: false, raw };
}
