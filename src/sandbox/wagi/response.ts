/**
 * Streaming parser of a CGI response on a guest's stdout (RFC 3875 §6).
 *
 * stdout must start with a header block that ends at the first empty line (LF or CRLF, found even
 * when split across chunks); every byte after it is the body, handed on as it arrives.
 * - `Status: 404 Not Found` sets the status (§6.3.3): three digits 200–599, reason optional. 1xx
 *   is rejected: an interim status cannot be the final answer to the client.
 * - `Location:` without `Status:` gives 302 (§6.2.3/§6.2.4; a local path is NOT re-dispatched
 *   internally as §6.2.2 describes, it goes to the client as a redirect, as in Spin).
 * - At least one of Content-Type, Location, Status must be present (§6.2). Each may appear once.
 * - Other fields pass through in order, names checked as RFC 9110 §5.6.2 tokens, values as
 *   field-value chars (§5.5), obs-fold rejected (RFC 9112 §5.2). Values are returned as latin1
 *   strings (one char per byte), which is how node writes them back out.
 * - `Content-Length` is taken out of the headers into `contentLength` (digits only): the server
 *   frames the body and decides whether to trust it. Connection-specific fields (Connection,
 *   Keep-Alive, Transfer-Encoding, TE, Trailer, Upgrade, Proxy-Connection) are dropped (§6.3.4:
 *   the script MUST NOT send them, the server MAY remove them).
 *
 * Every violation is a {@link CgiResponseError}: code `ERR_GUEST_BAD_RESPONSE`, HTTP 502, with a
 * `problem` saying which rule broke. A body without a header block (a first line that is not a
 * header field, or output with no empty line at EOF) is `no-header-block` (§6.2 requires the
 * header block). How this combines with traps and exit codes: see ./outcome.ts.
 */
import { IsolaError } from '../../errors.js';

/** Largest header block accepted by default, bytes (terminating empty line included). */
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;

/** Which CGI response rule the guest broke. */
export type CgiResponseProblem =
  | 'no-output' // stdout empty at EOF
  | 'no-header-block' // first line not a header field, or EOF before the empty line
  | 'header-too-large' // header block longer than maxHeaderBytes
  | 'malformed-header' // bad name, bad value chars, stray CR, missing ":"
  | 'obs-fold' // a line starting with SP/HTAB (RFC 9112 §5.2)
  | 'bad-status' // Status not 3 digits in 200–599
  | 'duplicate-field' // Status, Location, Content-Type or differing Content-Length twice
  | 'no-cgi-field'; // none of Content-Type, Location, Status

/** A guest's stdout broke the CGI response rules: 502 `ERR_GUEST_BAD_RESPONSE`. */
export class CgiResponseError extends IsolaError {
  readonly problem: CgiResponseProblem;
  constructor(problem: CgiResponseProblem, message: string, details?: Record<string, unknown>) {
    super('ERR_GUEST_BAD_RESPONSE', message, {
      status: 502,
      user: true,
      hint: 'A WAGI guest must print header lines (at least Content-Type, Location or Status), then an empty line, then the body (RFC 3875 §6).',
      details: { problem, ...details },
    });
    this.problem = problem;
  }
}

/** The parsed head. `headers` is flat [name, value, …] in the guest's order (node's rawHeaders shape). */
export interface CgiResponseHead {
  status: number;
  /** Reason phrase from `Status:`, "" when none was given. */
  statusText: string;
  headers: string[];
  /** The guest's Content-Length, bytes, or null; never part of `headers`. */
  contentLength: number | null;
}

/** Where the parser delivers its results, in order: one onHead, then onBody per body piece. */
export interface CgiResponseSink {
  onHead(head: CgiResponseHead): void;
  /** A piece of body: a view into the pushed chunk, valid only during the call (copy to keep). */
  onBody(chunk: Uint8Array): void;
}

const DROPPED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection']);

// RFC 9110 §5.6.2 tchar
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 §5.5 field-value chars: VCHAR, obs-text, SP, HTAB
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function excerpt(line: string): string {
  return JSON.stringify(line.length > 80 ? line.slice(0, 80) + '…' : line);
}

/**
 * Feed it stdout as it arrives: `push(chunk)` for every chunk, `end()` at EOF. Throws
 * {@link CgiResponseError} from `push` as soon as a rule is broken (so a bad guest can be stopped
 * early) and from `end` when no complete header block was seen; once it has thrown, every later
 * call throws the same error. Body bytes are passed on without copying once the head is done.
 */
export class CgiResponseParser {
  private readonly sink: CgiResponseSink;
  private readonly maxHeaderBytes: number;
  /** Bytes of the header block not yet ending in LF (a partial line). */
  private pending: Uint8Array = new Uint8Array(0);
  private headerBytes = 0;
  private lineNo = 0;
  private fields: [string, string][] = [];
  private failed: CgiResponseError | null = null;
  /** true once onHead was called. */
  headDone = false;
  /** Total stdout bytes pushed so far. */
  bytesSeen = 0;

  /** @param opts.maxHeaderBytes cap on the header block, bytes (default 64 KiB). */
  constructor(sink: CgiResponseSink, opts: { maxHeaderBytes?: number } = {}) {
    this.sink = sink;
    this.maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  }

  /** Takes the next stdout chunk (any size, may be empty). Throws CgiResponseError. */
  push(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    this.bytesSeen += chunk.length;
    if (this.headDone) {
      if (chunk.length > 0) this.sink.onBody(chunk);
      return;
    }
    try {
      this.scanHeader(chunk);
    } catch (err) {
      if (err instanceof CgiResponseError) this.failed = err;
      throw err;
    }
  }

  /** Marks EOF. Throws CgiResponseError when the header block is missing or incomplete. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.headDone) return;
    this.failed =
      this.bytesSeen === 0
        ? new CgiResponseError('no-output', 'The guest wrote nothing to stdout')
        : new CgiResponseError('no-header-block', 'The guest output ended before the empty line that ends the CGI header block');
    throw this.failed;
  }

  private scanHeader(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.pending.length > 0) {
      buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending);
      buf.set(chunk, this.pending.length);
    }
    let start = 0;
    for (;;) {
      const lf = buf.indexOf(0x0a, start);
      if (lf < 0) break;
      this.headerBytes += lf + 1 - start;
      if (this.headerBytes > this.maxHeaderBytes) this.tooLarge();
      const end = lf > start && buf[lf - 1] === 0x0d ? lf - 1 : lf;
      if (end === start) {
        this.finishHead();
        if (lf + 1 < buf.length) this.sink.onBody(buf.subarray(lf + 1));
        this.pending = new Uint8Array(0);
        return;
      }
      this.line(Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1'));
      start = lf + 1;
    }
    this.pending = buf.slice(start);
    if (this.headerBytes + this.pending.length > this.maxHeaderBytes) this.tooLarge();
    // Fail early when the very first line can already be seen not to be a header field.
    if (this.lineNo === 0 && this.pending.length > 0 && !this.couldBeFieldStart(this.pending)) {
      throw this.notAHeader(Buffer.from(this.pending).toString('latin1'));
    }
  }

  /** Whether a partial first line can still become "Name:…" (or an empty line: a lone CR). */
  private couldBeFieldStart(bytes: Uint8Array): boolean {
    const colon = bytes.indexOf(0x3a);
    let nameEnd = colon < 0 ? bytes.length : colon;
    if (colon < 0 && bytes[nameEnd - 1] === 0x0d) nameEnd--; // CR of a CRLF split across chunks
    if (nameEnd === 0) return colon < 0;
    return TCHAR.test(Buffer.from(bytes.subarray(0, nameEnd)).toString('latin1'));
  }

  private tooLarge(): never {
    throw new CgiResponseError('header-too-large', `The CGI header block exceeds ${this.maxHeaderBytes} bytes`, {
      maxHeaderBytes: this.maxHeaderBytes,
    });
  }

  private notAHeader(text: string): CgiResponseError {
    return new CgiResponseError('no-header-block', 'The guest output does not start with a CGI header field', { line: 1, text: excerpt(text) });
  }

  private line(text: string): void {
    this.lineNo++;
    const where = { line: this.lineNo, text: excerpt(text) };
    if (text[0] === ' ' || text[0] === '\t') {
      if (this.lineNo === 1) throw this.notAHeader(text);
      throw new CgiResponseError('obs-fold', `Header line ${this.lineNo} is a folded continuation line (obs-fold), which is not allowed`, where);
    }
    const colon = text.indexOf(':');
    const name = colon < 0 ? text : text.slice(0, colon);
    if (colon < 0 || !TCHAR.test(name)) {
      if (this.lineNo === 1) throw this.notAHeader(text);
      throw new CgiResponseError('malformed-header', `Header line ${this.lineNo} is not "Name: value"`, where);
    }
    const value = text.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) {
      throw new CgiResponseError('malformed-header', `Header line ${this.lineNo} has a control character in its value`, where);
    }
    this.fields.push([name, value]);
  }

  private finishHead(): void {
    let status: number | null = null;
    let statusText = '';
    let location: string | null = null;
    let contentType = false;
    let contentLength: number | null = null;
    const headers: string[] = [];
    const once = (seen: boolean, name: string): void => {
      if (seen) throw new CgiResponseError('duplicate-field', `The CGI header block has more than one ${name} field`);
    };
    for (const [name, value] of this.fields) {
      const lower = name.toLowerCase();
      if (lower === 'status') {
        once(status !== null, 'Status');
        const m = /^([0-9]{3})(?:[ \t]+(.*))?$/.exec(value);
        const code = m ? Number(m[1]) : NaN;
        if (!m || code < 200 || code > 599) {
          throw new CgiResponseError('bad-status', 'Status must be a three-digit code from 200 to 599, optionally followed by a reason phrase', { value: excerpt(value) });
        }
        status = code;
        statusText = m[2] ?? '';
      } else if (lower === 'content-length') {
        if (!/^[0-9]{1,15}$/.test(value)) throw new CgiResponseError('malformed-header', 'Content-Length must be decimal digits', { value: excerpt(value) });
        if (contentLength !== null && contentLength !== Number(value)) once(true, 'Content-Length');
        contentLength = Number(value);
      } else if (DROPPED.has(lower)) {
        continue;
      } else {
        if (lower === 'location') {
          once(location !== null, 'Location');
          if (value === '') throw new CgiResponseError('malformed-header', 'Location must not be empty');
          location = value;
        } else if (lower === 'content-type') {
          once(contentType, 'Content-Type');
          contentType = true;
        }
        headers.push(name, value);
      }
    }
    if (status === null && location === null && !contentType) {
      throw new CgiResponseError('no-cgi-field', 'The CGI header block has none of Content-Type, Location or Status');
    }
    this.headDone = true;
    this.fields = [];
    this.sink.onHead({ status: status ?? (location !== null ? 302 : 200), statusText, headers, contentLength });
  }
}
