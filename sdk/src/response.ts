/**
 * Fetch `Response` → wasi:http outgoing-response: status, headers (every `set-cookie` as its own
 * field line), then the body streamed chunk by chunk, each chunk flushed so that a client sees it
 * as soon as the function produces it.
 *
 * A body that is the request's own untouched body (`new Response(request.body)`) is spliced
 * host-side instead of passing through JavaScript: componentize-js keeps every buffer written from
 * JavaScript allocated until the handler returns, so a body written from JS costs guest memory
 * equal to its size, while a spliced one costs none.
 */
import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.10';
import type { OutputStream } from 'wasi:io/streams@0.2.10';
import { headerBytes } from './bytes.ts';
import { isStreamClosed, READ_CHUNK, type RequestBody } from './request.ts';

/**
 * Fields a wasi:http host refuses in a response (hop-by-hop, RFC 9110 §7.6.1), dropped rather
 * than failing the response, as Workers does with the connection-level headers it manages itself.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/** Statuses whose responses never have a body (RFC 9110 §6.4.1, §15.3.6, §15.4.5). */
export const NO_BODY_STATUS = new Set([204, 205, 304]);

/** The response's field lines in order: each set-cookie separate, other repeats joined by ", ". */
export function headerList(headers: Headers): Array<[string, string]> {
  const list: Array<[string, string]> = [];
  const hasGetSetCookie = typeof headers.getSetCookie === 'function';
  for (const [name, value] of headers) {
    if (hasGetSetCookie && name === 'set-cookie') continue;
    list.push([name, value]);
  }
  if (hasGetSetCookie) for (const cookie of headers.getSetCookie()) list.push(['set-cookie', cookie]);
  return list;
}

/**
 * The response's headers as wasi:http fields, hop-by-hop ones dropped (and content-length
 * when `bodiless`: the answer to HEAD, or a 204/205/304).
 *
 * @throws TypeError naming the header when the host refuses one (invalid syntax)
 */
export function toFields(headers: Headers, bodiless = false): Fields {
  const fields = new Fields();
  for (const [name, value] of headerList(headers)) {
    if (HOP_BY_HOP.has(name)) continue;
    // A HEAD/204/304 answer carries no body; wasi:http hosts check content-length against the
    // bytes written, so the (optional, RFC 9110 §8.6) length of the body not sent is left out.
    if (bodiless && name === 'content-length') continue;
    try {
      fields.append(name, headerBytes(value));
    } catch (err) {
      const tag = (err as { payload?: { tag?: string } }).payload?.tag ?? String(err);
      throw new TypeError(`the host refused response header ${JSON.stringify(name)} (${tag})`);
    }
  }
  return fields;
}

/** Writes all of `bytes`: as much as check-write allows, waiting for room when it allows none. */
function writeAll(output: OutputStream, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) {
    const room = Number(output.checkWrite());
    if (room === 0) {
      const ready = output.subscribe();
      ready.block();
      ready[Symbol.dispose]();
      continue;
    }
    const n = Math.min(room, bytes.length - offset);
    output.write(offset === 0 && n === bytes.length ? bytes : bytes.subarray(offset, offset + n));
    offset += n;
  }
}

/** Moves the rest of the request body to `output` host-side (no copy through the guest). */
function spliceRequestBody(output: OutputStream, body: RequestBody): void {
  const input = body.hostStream();
  if (input === undefined) return;
  for (;;) {
    try {
      output.blockingSplice(input, BigInt(READ_CHUNK));
    } catch (err) {
      if (isStreamClosed(err)) {
        body.ended = true;
        return;
      }
      throw err;
    }
  }
}

/**
 * Sends `response` as the answer to the wasi:http request: sets the response-outparam (the head
 * goes out), then streams the body and finishes it.
 *
 * @param fields the response's headers, from {@link toFields}
 * @param method the request method (a HEAD response gets no body)
 * @param requestBody the request's body, spliced when the response body is that same stream
 * @throws whatever reading the body throws (an error in the user's stream), after the head was
 *   sent; the outgoing body is then dropped unfinished, which makes the host abort the response.
 */
export async function sendResponse(
  outparam: ResponseOutparam,
  response: Response,
  fields: Fields,
  method: string,
  requestBody: RequestBody,
): Promise<void> {
  const outgoing = new OutgoingResponse(fields);
  outgoing.setStatusCode(response.status);
  const body = outgoing.body();
  ResponseOutparam.set(outparam, { tag: 'ok', val: outgoing });
  const output = body.write();
  let finished = false;
  try {
    const source = response.body;
    if (source !== null) {
      if (method === 'HEAD' || NO_BODY_STATUS.has(response.status)) {
        // Never sent: release it (its underlying source's cancel runs, as in Workers).
        await source.cancel().catch(() => {});
      } else if (source === requestBody.stream && requestBody.pulled === 0) {
        spliceRequestBody(output, requestBody);
      } else {
        const reader = source.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (!(value instanceof Uint8Array)) {
            throw new TypeError(`a response body chunk must be a Uint8Array, got ${Object.prototype.toString.call(value)}`);
          }
          writeAll(output, value);
          // Send it now: a chunk produced over time reaches the client at once. (blocking-flush,
          // not flush: a host may only start sending on a blocking flush, and it returns as soon
          // as the host has room again.)
          output.blockingFlush();
        }
      }
    }
    output[Symbol.dispose]();
    // finish takes the body over, even when it fails (a content-length mismatch).
    finished = true;
    OutgoingBody.finish(body, undefined);
  } finally {
    if (!finished) {
      // Dropping the body unfinished tells the host the response is incomplete: it aborts it.
      output[Symbol.dispose]();
      body[Symbol.dispose]();
    }
  }
}

/** Whether `err` is a wasi:io stream error (the client went away, the host closed the body). */
export function isStreamError(err: unknown): boolean {
  const tag = (err as { payload?: { tag?: string } } | null)?.payload?.tag;
  return tag === 'closed' || tag === 'last-operation-failed';
}

/** Answers 500 text/plain before any head was sent (the handler threw or returned no Response). */
export function sendInternalError(outparam: ResponseOutparam): void {
  const bytes = new TextEncoder().encode('Internal Server Error\n');
  const fields = new Fields();
  fields.append('content-type', headerBytes('text/plain; charset=utf-8'));
  fields.append('content-length', headerBytes(String(bytes.length)));
  const outgoing = new OutgoingResponse(fields);
  outgoing.setStatusCode(500);
  const body = outgoing.body();
  ResponseOutparam.set(outparam, { tag: 'ok', val: outgoing });
  const output = body.write();
  writeAll(output, bytes);
  output[Symbol.dispose]();
  OutgoingBody.finish(body, undefined);
}
