// A wasi:http guest that echoes the request.
//
// - Request without a body: 200 application/json {"method","path","headers":[[name, value], …]}.
// - Request with a body: 200, the body streamed back unchanged, with the request's content-type.
//
// "Has a body" is decided by reading it: a request whose body ends before its first byte counts as
// having none. Exports `incomingHandler` explicitly so that one instance can serve many requests.
//
// Memory stays bounded whatever the body size: the first chunk (at most 64 KiB) is read into the
// guest with blocking-read, and the rest is moved host-side with blocking-splice. (Writing every
// chunk from JS would not be bounded: componentize-js 0.23's bindings keep each buffer passed to
// `write` allocated until the handler returns, so memory would grow with the body.)

import { Fields, IncomingBody, OutgoingBody, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.10';

const CHUNK = 64 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether `err` is wasi:io's stream-error `closed` (the end of the stream). */
function isClosed(err) {
  return err?.payload?.tag === 'closed';
}

/** Reads the next non-empty chunk of `input`, or returns undefined at the end of the stream. */
function readChunk(input) {
  for (;;) {
    let chunk;
    try {
      chunk = input.blockingRead(BigInt(CHUNK));
    } catch (err) {
      if (isClosed(err)) return undefined;
      throw err;
    }
    if (chunk.length > 0) return chunk;
  }
}

/** Writes all of `bytes` to `output`: as much as check-write allows, waiting when it allows none. */
function writeAll(output, bytes) {
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
    output.write(bytes.subarray(offset, offset + n));
    offset += n;
  }
}

/** Moves everything left in `input` to `output`, host-side, without copying it into the guest. */
function spliceAll(output, input) {
  for (;;) {
    try {
      output.blockingSplice(input, BigInt(CHUNK));
    } catch (err) {
      if (isClosed(err)) return;
      throw err;
    }
  }
}

/** Returns the request method as text (GET, POST, …, or an extension method's own name). */
function methodName(request) {
  const method = request.method();
  return method.tag === 'other' ? method.val : method.tag.toUpperCase();
}

/** Sends the response head (status, [name, string] headers), then lets `writeBody` write the body. */
function respond(responseOutparam, status, headerList, writeBody) {
  const headers = Fields.fromList(headerList.map(([name, value]) => [name, encoder.encode(value)]));
  const response = new OutgoingResponse(headers);
  response.setStatusCode(status);
  const body = response.body();
  ResponseOutparam.set(responseOutparam, { tag: 'ok', val: response });
  const output = body.write();
  writeBody(output);
  output.blockingFlush();
  output[Symbol.dispose]();
  OutgoingBody.finish(body, undefined);
}

/** The wasi:http/incoming-handler export: called once per request. */
export const incomingHandler = {
  /**
   * Echoes the request: its body when it has one, else a JSON description of it.
   *
   * @param {IncomingRequest} request the request to echo
   * @param {ResponseOutparam} responseOutparam where the response is delivered
   */
  handle(request, responseOutparam) {
    const requestHeaders = request.headers();
    const headers = requestHeaders.entries().map(([name, value]) => [name, decoder.decode(value)]);
    requestHeaders[Symbol.dispose]();

    const requestBody = request.consume();
    const input = requestBody.stream();
    const first = readChunk(input);

    if (first === undefined) {
      const description = { method: methodName(request), path: request.pathWithQuery() ?? '/', headers };
      const json = encoder.encode(`${JSON.stringify(description)}\n`);
      const head = [['content-type', 'application/json'], ['content-length', String(json.length)]];
      respond(responseOutparam, 200, head, (output) => writeAll(output, json));
    } else {
      const contentType = headers.filter(([name]) => name.toLowerCase() === 'content-type');
      respond(responseOutparam, 200, contentType, (output) => {
        writeAll(output, first);
        spliceAll(output, input);
      });
    }

    input[Symbol.dispose]();
    IncomingBody.finish(requestBody)[Symbol.dispose]();
  },
};
