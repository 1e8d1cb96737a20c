import { describe, expect, it } from 'vitest';
import { IsolaError } from '../../errors.js';
import { wagiVerdict } from './outcome.js';
import { CgiResponseError, CgiResponseParser, type CgiResponseHead, type CgiResponseProblem } from './response.js';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1');

/** Feeds `chunks` (strings are latin1) and collects what the parser hands on. */
function parse(chunks: (string | Uint8Array)[], opts: { maxHeaderBytes?: number } = {}) {
  let head: CgiResponseHead | null = null;
  const body: Buffer[] = [];
  const parser = new CgiResponseParser(
    {
      onHead: (h) => {
        expect(head).toBeNull();
        head = h;
      },
      onBody: (c) => {
        expect(head).not.toBeNull();
        body.push(Buffer.from(c));
      },
    },
    opts,
  );
  for (const c of chunks) parser.push(typeof c === 'string' ? bytes(c) : c);
  parser.end();
  return { head: head as CgiResponseHead | null, body: Buffer.concat(body).toString('latin1'), parser };
}

function problem(chunks: string[], opts: { maxHeaderBytes?: number } = {}): CgiResponseProblem {
  try {
    parse(chunks, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(CgiResponseError);
    const e = err as CgiResponseError;
    expect(e.code).toBe('ERR_GUEST_BAD_RESPONSE');
    expect(e.status).toBe(502);
    return e.problem;
  }
  throw new Error('expected a CgiResponseError');
}

/** Every way of cutting `text` into two chunks, plus one byte per chunk. */
function splits(text: string): string[][] {
  const out = [[...text]];
  for (let i = 0; i <= text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

describe('CgiResponseParser (RFC 3875 §6)', () => {
  it('parses an LF header block and passes the body on', () => {
    const { head, body } = parse(['Content-Type: text/plain\nX-A: 1\n\nhello\n']);
    expect(head).toEqual({ status: 200, statusText: '', headers: ['Content-Type', 'text/plain', 'X-A', '1'], contentLength: null });
    expect(body).toBe('hello\n');
  });

  it('parses CRLF, and a header block split anywhere across chunks', () => {
    const text = 'Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n<p>gone</p>\r\n\r\n';
    for (const chunks of splits(text)) {
      const { head, body } = parse(chunks);
      expect(head).toMatchObject({ status: 404, statusText: 'Not Found', headers: ['Content-Type', 'text/html'] });
      expect(body).toBe('<p>gone</p>\r\n\r\n');
    }
  });

  it('mixes LF and CRLF; an empty body is fine', () => {
    expect(parse(['Content-Type: a/b\r\nX: y\n\r\n']).body).toBe('');
    expect(parse(['Content-Type: a/b\n', '\n']).head?.headers).toEqual(['Content-Type', 'a/b']);
  });

  it('takes Status without a reason, and Status alone', () => {
    expect(parse(['Status: 204\n\n']).head).toMatchObject({ status: 204, statusText: '', headers: [] });
  });

  it('answers Location without Status with 302, Status wins when both are given', () => {
    expect(parse(['Location: https://example.com/x\n\n']).head).toMatchObject({ status: 302, headers: ['Location', 'https://example.com/x'] });
    expect(parse(['Location: /y\nStatus: 301 Moved\n\n']).head?.status).toBe(301);
  });

  it('takes Content-Length out of the headers and drops connection-specific fields', () => {
    const { head } = parse(['Content-Type: a/b\nContent-Length: 5\nConnection: close\nTransfer-Encoding: chunked\nSet-Cookie: a=1\nSet-Cookie: b=2\n\nhello']);
    expect(head).toMatchObject({ contentLength: 5, headers: ['Content-Type', 'a/b', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'] });
  });

  it('trims OWS around values and keeps obs-text bytes as latin1', () => {
    expect(parse(['Content-Type:\t text/plain \t\nX-Name: Zo\xc3\xab\n\n']).head?.headers).toEqual(['Content-Type', 'text/plain', 'X-Name', 'Zo\xc3\xab']);
  });

  it('rejects output without a header block (RFC 3875 §6.2)', () => {
    expect(problem([''])).toBe('no-output');
    expect(problem(['<html>hello</html>\n'])).toBe('no-header-block');
    expect(problem(['Content-Type: text/plain\n'])).toBe('no-header-block');
    expect(problem(['Content-Type: text/plain'])).toBe('no-header-block');
    expect(problem([' Content-Type: x\n\n'])).toBe('no-header-block');
  });

  it('rejects a non-header first line before it ends (fails early, in any chunking)', () => {
    const p = new CgiResponseParser({ onHead: () => {}, onBody: () => {} });
    expect(() => p.push(bytes('hello world, no header here'))).toThrow(CgiResponseError);
    expect(() => p.push(bytes('\n'))).toThrow(CgiResponseError);
    for (const chunks of splits('hello world\n\n')) expect(problem(chunks)).toBe('no-header-block');
  });

  it('rejects malformed lines, obs-fold and control characters', () => {
    expect(problem(['Content-Type: a/b\nno colon here\n\n'])).toBe('malformed-header');
    expect(problem(['Content-Type: a/b\nBad Name: x\n\n'])).toBe('malformed-header');
    expect(problem(['Content-Type: a/b\nX-A : x\n\n'])).toBe('malformed-header');
    expect(problem(['Content-Type: a/b\n: x\n\n'])).toBe('malformed-header');
    expect(problem(['Content-Type: a/b\nX-A: a\rb\n\n'])).toBe('malformed-header');
    expect(problem(['Content-Type: a/b\nX-A: a\x00b\n\n'])).toBe('malformed-header');
    expect(problem(['Content-Type: a/b\nX-A: a\n b\n\n'])).toBe('obs-fold');
    expect(problem(['Content-Type: a/b\nX-A: a\n\tb\n\n'])).toBe('obs-fold');
    expect(problem(['Content-Type: a/b\nContent-Length: 12x\n\n'])).toBe('malformed-header');
    expect(problem(['Location:\n\n'])).toBe('malformed-header');
  });

  it('rejects a bad Status', () => {
    for (const s of ['abc', '99', '1000', '600 Too High', '100 Continue', '404Not Found', '', '0404']) {
      expect(problem([`Status: ${s}\nContent-Type: a/b\n\n`]), s).toBe('bad-status');
    }
  });

  it('rejects duplicates and a block without any CGI field', () => {
    expect(problem(['Status: 200\nStatus: 404\n\n'])).toBe('duplicate-field');
    expect(problem(['Content-Type: a\nContent-Type: b\n\n'])).toBe('duplicate-field');
    expect(problem(['Content-Type: a\nContent-Length: 1\nContent-Length: 2\n\n'])).toBe('duplicate-field');
    expect(problem(['X-Only: 1\n\nbody'])).toBe('no-cgi-field');
    expect(problem(['\nbody'])).toBe('no-cgi-field');
  });

  it('caps the header block, even when it never ends', () => {
    const long = 'X-Pad: ' + 'a'.repeat(100) + '\n';
    expect(problem(['Content-Type: a/b\n', long.repeat(20), '\n'], { maxHeaderBytes: 1024 })).toBe('header-too-large');
    expect(problem(['Content-Type: a/b\nX: ' + 'a'.repeat(2000)], { maxHeaderBytes: 1024 })).toBe('header-too-large');
    expect(parse(['Content-Type: a/b\n\n'], { maxHeaderBytes: 19 }).head).not.toBeNull();
    expect(problem(['Content-Type: a/b\n\n'], { maxHeaderBytes: 18 })).toBe('header-too-large');
  });

  it('passes large bodies through in pieces without buffering', () => {
    const seen: number[] = [];
    const p = new CgiResponseParser({ onHead: () => {}, onBody: (c) => seen.push(c.length) });
    p.push(bytes('Content-Type: a/b\n\nxy'));
    const big = new Uint8Array(1 << 20);
    p.push(big);
    p.push(big);
    p.end();
    expect(seen).toEqual([2, 1 << 20, 1 << 20]);
    expect(p.bytesSeen).toBe(21 + (2 << 20));
  });

  it('stays failed after an error', () => {
    const p = new CgiResponseParser({ onHead: () => {}, onBody: () => {} });
    expect(() => p.push(bytes('nope\n'))).toThrow(CgiResponseError);
    expect(() => p.push(bytes('Content-Type: a/b\n\n'))).toThrow(CgiResponseError);
    expect(() => p.end()).toThrow(CgiResponseError);
  });
});

describe('wagiVerdict', () => {
  const parser = (headDone: boolean, output = '') => {
    const p = new CgiResponseParser({ onHead: () => {}, onBody: () => {} });
    if (headDone) p.push(bytes('Content-Type: a/b\n\n'));
    else if (output) p.push(bytes(output));
    return p;
  };
  const trap = new IsolaError('ERR_GUEST_TRAP', 'trap', { status: 500 });

  it('is ok after a complete head, whatever the exit code', () => {
    expect(wagiVerdict({ thrown: null, exitCode: 0, parser: parser(true) })).toEqual({ kind: 'ok', exitCode: 0 });
    expect(wagiVerdict({ thrown: null, exitCode: 1, parser: parser(true) })).toEqual({ kind: 'ok', exitCode: 1 });
  });
  it('gives 500 ERR_GUEST_EXIT for a non-zero exit before the head', () => {
    const v = wagiVerdict({ thrown: null, exitCode: 1, parser: parser(false, 'Content-Type: a/b\n') });
    expect(v.kind === 'error' && [v.error.code, v.error.status]).toEqual(['ERR_GUEST_EXIT', 500]);
  });
  it('gives 502 for exit 0 without a header block', () => {
    const v = wagiVerdict({ thrown: null, exitCode: 0, parser: parser(false) });
    expect(v.kind === 'error' && [v.error.code, v.error.status, (v.error as CgiResponseError).problem]).toEqual(['ERR_GUEST_BAD_RESPONSE', 502, 'no-output']);
  });
  it('passes a trap or host error through before the head and aborts after it', () => {
    expect(wagiVerdict({ thrown: trap, exitCode: null, parser: parser(false) })).toEqual({ kind: 'error', error: trap });
    expect(wagiVerdict({ thrown: trap, exitCode: null, parser: parser(true) })).toEqual({ kind: 'abort', error: trap });
    const v = wagiVerdict({ thrown: new Error('boom'), exitCode: null, parser: parser(false) });
    expect(v.kind === 'error' && v.error.code).toBe('ERR_INTERNAL');
  });
});
