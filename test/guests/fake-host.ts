/**
 * A fake wasi:http host at the core-ABI level, for unit-testing the guests' WAT logic without a
 * component runtime: it instantiates the *core* module (from `assembleCore`) with plain JS imports
 * that implement the subset of wasi:http / wasi:io / wasi:cli the guests call, with permissive
 * semantics (no header validation, status codes accepted). It checks what the canonical ABI and
 * WASI require of a guest — writes within check-write permits, blocking writes ≤ 4096 bytes, no use
 * of dropped handles — and records violations instead of throwing mid-call.
 */

/** A request to feed the guest. */
export interface FakeRequest {
  /** Method name; the nine standard ones map to their variant case, anything else to `other`. */
  method?: string;
  pathWithQuery?: string;
  headers?: Array<[string, string]>;
  /** Request body chunks, yielded one per blocking-read (split further if larger than asked). */
  body?: Iterable<Uint8Array>;
}

/** What the guest did with one request. */
export interface FakeResponse {
  /** Set by response-outparam.set(ok). */
  status?: number;
  headers: Array<[string, string]>;
  /** Set by response-outparam.set(err): the error-code case index and internal-error message. */
  error?: { code: number; message?: string };
  /** Body bytes, unless `onBody` was given. */
  body: Uint8Array;
  bodyLength: number;
  finished: boolean;
  stdout: string;
  stderr: string;
  /** Canonical-ABI / WASI rule breaks observed. */
  violations: string[];
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
/** The check-write permits handed out in turn (0 forces the guest through blocking-flush). */
const PERMITS = [65536n, 0n, 4096n, 100000n, 1n];
const enc = new TextEncoder();
const dec = new TextDecoder();

type Res =
  | { t: 'fields'; list: Array<[string, Uint8Array]> }
  | { t: 'pollable' }
  | { t: 'request' }
  | { t: 'in-body' }
  | { t: 'in-stream'; chunks: Iterator<Uint8Array>; rest?: Uint8Array }
  | { t: 'outparam' }
  | { t: 'response'; status: number; headers: number }
  | { t: 'out-body' }
  | { t: 'out-stream'; target: 'body' | 'stdout' | 'stderr'; permit: bigint; turn: number };

/** Runs one guest core module against fake host imports. */
export class FakeHost {
  private readonly handles = new Map<number, Res>();
  private nextHandle = 1;
  private instance!: WebAssembly.Instance;
  private cur!: FakeResponse;
  private req: FakeRequest = {};
  private onBody: ((chunk: Uint8Array) => void) | undefined;
  private chunks: Uint8Array[] = [];

  /** Compiles and instantiates a core module produced by `assembleCore`. */
  static async load(core: Uint8Array): Promise<FakeHost> {
    const host = new FakeHost();
    const mod = await WebAssembly.compile(new Uint8Array(core));
    host.instance = await WebAssembly.instantiate(mod, host.imports(mod));
    return host;
  }

  /** Bytes of guest linear memory now. */
  get memoryBytes(): number {
    return this.memory().buffer.byteLength;
  }

  /** Handles the guest still owns (or leaked) after its calls. */
  get liveHandles(): number {
    return this.handles.size;
  }

  /** Calls the guest's handle export with `req`; body chunks go to `onBody` if given. */
  call(req: FakeRequest = {}, onBody?: (chunk: Uint8Array) => void): FakeResponse {
    this.req = req;
    this.onBody = onBody;
    this.chunks = [];
    this.cur = { headers: [], body: new Uint8Array(), bodyLength: 0, finished: false, stdout: '', stderr: '', violations: [] };
    const handle = Object.entries(this.instance.exports).find(([k]) => k.startsWith('wasi:http/incoming-handler@'))?.[1];
    if (typeof handle !== 'function') throw new Error('no incoming-handler export');
    try {
      handle(this.add({ t: 'request' }), this.add({ t: 'outparam' }));
    } finally {
      this.cur.body = Buffer.concat(this.chunks);
    }
    return this.cur;
  }

  private memory(): WebAssembly.Memory {
    return this.instance.exports.memory as WebAssembly.Memory;
  }
  private view(): DataView {
    return new DataView(this.memory().buffer);
  }
  private bytes(p: number, l: number): Uint8Array {
    return new Uint8Array(this.memory().buffer, p, l).slice();
  }
  private str(p: number, l: number): string {
    return dec.decode(this.bytes(p, l));
  }
  /** Copies bytes into guest memory through its cabi_realloc; returns the pointer. */
  private put(b: Uint8Array, align = 1): number {
    const realloc = this.instance.exports.cabi_realloc as (a: number, b: number, c: number, d: number) => number;
    const p = realloc(0, 0, align, b.length);
    new Uint8Array(this.memory().buffer).set(b, p);
    return p;
  }
  private add(r: Res): number {
    const h = this.nextHandle++;
    this.handles.set(h, r);
    return h;
  }
  private get<T extends Res['t']>(h: number, t: T): Extract<Res, { t: T }> {
    const r = this.handles.get(h);
    if (r?.t !== t) throw new Error(`handle ${h} is ${r ? r.t : 'not live'}, expected ${t}`);
    return r as Extract<Res, { t: T }>;
  }
  private take<T extends Res['t']>(h: number, t: T): Extract<Res, { t: T }> {
    const r = this.get(h, t);
    this.handles.delete(h);
    return r;
  }
  /** Writes a list of (string, bytes) records to guest memory; returns (ptr, count). */
  private putPairs(list: Array<[string, Uint8Array]>): [number, number] {
    const recs = new Uint8Array(list.length * 16);
    const dv = new DataView(recs.buffer);
    list.forEach(([n, v], k) => {
      const nb = enc.encode(n);
      dv.setUint32(k * 16, this.put(nb), true);
      dv.setUint32(k * 16 + 4, nb.length, true);
      dv.setUint32(k * 16 + 8, this.put(v), true);
      dv.setUint32(k * 16 + 12, v.length, true);
    });
    return [this.put(recs, 4), list.length];
  }
  private emit(target: 'body' | 'stdout' | 'stderr', b: Uint8Array): void {
    if (target === 'stdout') this.cur.stdout += dec.decode(b);
    else if (target === 'stderr') this.cur.stderr += dec.decode(b);
    else {
      this.cur.bodyLength += b.length;
      if (this.onBody) this.onBody(b);
      else this.chunks.push(b);
    }
  }

  private imports(mod: WebAssembly.Module): WebAssembly.Imports {
    const ok = (ret: number): void => this.view().setUint8(ret, 0);
    const impl: Record<string, (...a: never[]) => unknown> = {
      '[constructor]fields': () => this.add({ t: 'fields', list: [] }),
      '[method]fields.append': (h: number, np: number, nl: number, vp: number, vl: number, ret: number) => {
        this.get(h, 'fields').list.push([this.str(np, nl), this.bytes(vp, vl)]);
        ok(ret);
      },
      '[method]fields.get': (h: number, np: number, nl: number, ret: number) => {
        const name = this.str(np, nl).toLowerCase();
        const vals = this.get(h, 'fields').list.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
        const recs = new DataView(new ArrayBuffer(vals.length * 8));
        vals.forEach((v, k) => {
          recs.setUint32(k * 8, this.put(v), true);
          recs.setUint32(k * 8 + 4, v.length, true);
        });
        const p = this.put(new Uint8Array(recs.buffer), 4);
        this.view().setUint32(ret, p, true);
        this.view().setUint32(ret + 4, vals.length, true);
      },
      '[method]fields.entries': (h: number, ret: number) => {
        const [p, n] = this.putPairs(this.get(h, 'fields').list);
        this.view().setUint32(ret, p, true);
        this.view().setUint32(ret + 4, n, true);
      },
      '[resource-drop]fields': (h: number) => void this.take(h, 'fields'),
      '[method]incoming-request.method': (h: number, ret: number) => {
        this.get(h, 'request');
        const m = this.req.method ?? 'GET';
        const tag = METHODS.indexOf(m);
        if (tag >= 0) return this.view().setUint8(ret, tag);
        const b = enc.encode(m);
        const p = this.put(b);
        this.view().setUint8(ret, 9);
        this.view().setUint32(ret + 4, p, true);
        this.view().setUint32(ret + 8, b.length, true);
      },
      '[method]incoming-request.path-with-query': (h: number, ret: number) => {
        this.get(h, 'request');
        const b = enc.encode(this.req.pathWithQuery ?? '/');
        const p = this.put(b);
        this.view().setUint8(ret, 1);
        this.view().setUint32(ret + 4, p, true);
        this.view().setUint32(ret + 8, b.length, true);
      },
      '[method]incoming-request.headers': (h: number) => {
        this.get(h, 'request');
        return this.add({ t: 'fields', list: (this.req.headers ?? []).map(([n, v]) => [n, enc.encode(v)]) });
      },
      '[method]incoming-request.consume': (h: number, ret: number) => {
        this.get(h, 'request');
        ok(ret);
        this.view().setUint32(ret + 4, this.add({ t: 'in-body' }), true);
      },
      '[resource-drop]incoming-request': (h: number) => {
        this.take(h, 'request');
        if ([...this.handles.values()].some((r) => r.t === 'in-body' || r.t === 'in-stream'))
          this.cur.violations.push('request dropped before its body');
      },
      '[method]incoming-body.stream': (h: number, ret: number) => {
        this.get(h, 'in-body');
        ok(ret);
        const s = this.add({ t: 'in-stream', chunks: (this.req.body ?? [])[Symbol.iterator]() });
        this.view().setUint32(ret + 4, s, true);
      },
      '[resource-drop]incoming-body': (h: number) => {
        this.take(h, 'in-body');
        if ([...this.handles.values()].some((r) => r.t === 'in-stream')) this.cur.violations.push('body dropped before its stream');
      },
      '[method]input-stream.blocking-read': (h: number, len: bigint, ret: number) => {
        const s = this.get(h, 'in-stream');
        let chunk = s.rest;
        while (chunk === undefined || chunk.length === 0) {
          const n = s.chunks.next();
          if (n.done) {
            this.view().setUint8(ret, 1);
            this.view().setUint8(ret + 4, 1); // closed
            return;
          }
          chunk = n.value;
        }
        const take = Math.min(chunk.length, Number(len));
        s.rest = chunk.subarray(take);
        const p = this.put(chunk.subarray(0, take));
        ok(ret);
        this.view().setUint32(ret + 4, p, true);
        this.view().setUint32(ret + 8, take, true);
      },
      '[resource-drop]input-stream': (h: number) => void this.take(h, 'in-stream'),
      '[constructor]outgoing-response': (headers: number) => {
        this.get(headers, 'fields');
        return this.add({ t: 'response', status: 200, headers });
      },
      '[method]outgoing-response.set-status-code': (h: number, code: number) => {
        this.get(h, 'response').status = code;
        return 0;
      },
      '[method]outgoing-response.body': (h: number, ret: number) => {
        this.get(h, 'response');
        ok(ret);
        this.view().setUint32(ret + 4, this.add({ t: 'out-body' }), true);
      },
      '[resource-drop]outgoing-response': (h: number) => void this.take(h, 'response'),
      '[static]response-outparam.set': (op: number, tag: number, a: number, b: number, c: bigint, d: number) => {
        this.take(op, 'outparam');
        if (tag !== 0) {
          this.cur.error = { code: a, ...(a === 38 && b === 1 ? { message: this.str(Number(c), d) } : {}) };
          return;
        }
        const r = this.take(a, 'response');
        this.cur.status = r.status;
        this.cur.headers = this.take(r.headers, 'fields').list.map(([n, v]) => [n, dec.decode(v)]);
      },
      '[method]outgoing-body.write': (h: number, ret: number) => {
        this.get(h, 'out-body');
        ok(ret);
        this.view().setUint32(ret + 4, this.add({ t: 'out-stream', target: 'body', permit: 0n, turn: 0 }), true);
      },
      '[static]outgoing-body.finish': (h: number, hasTrailers: number, _t: number, ret: number) => {
        this.take(h, 'out-body');
        if (hasTrailers) this.cur.violations.push('unexpected trailers');
        if ([...this.handles.values()].some((r) => r.t === 'out-stream' && r.target === 'body'))
          this.cur.violations.push('finish before the body stream was dropped');
        this.cur.finished = true;
        ok(ret);
      },
      '[resource-drop]outgoing-body': (h: number) => void this.take(h, 'out-body'),
      '[method]output-stream.check-write': (h: number, ret: number) => {
        const s = this.get(h, 'out-stream');
        s.permit = PERMITS[s.turn++ % PERMITS.length] ?? 0n;
        ok(ret);
        this.view().setBigUint64(ret + 8, s.permit, true);
      },
      '[method]output-stream.write': (h: number, p: number, l: number, ret: number) => {
        const s = this.get(h, 'out-stream');
        if (BigInt(l) > s.permit) this.cur.violations.push(`write of ${l} bytes with a check-write permit of ${s.permit}`);
        s.permit -= BigInt(Math.min(l, Number(s.permit)));
        this.emit(s.target, this.bytes(p, l));
        ok(ret);
      },
      '[method]output-stream.blocking-write-and-flush': (h: number, p: number, l: number, ret: number) => {
        const s = this.get(h, 'out-stream');
        if (l > 4096) this.cur.violations.push(`blocking-write-and-flush of ${l} bytes`);
        this.emit(s.target, this.bytes(p, l));
        ok(ret);
      },
      '[method]output-stream.blocking-flush': (h: number, ret: number) => {
        this.get(h, 'out-stream');
        ok(ret);
      },
      '[resource-drop]output-stream': (h: number) => void this.take(h, 'out-stream'),
      '[resource-drop]error': (h: number) => void this.handles.delete(h),
      // Clock pollables: time does not pass in the fake host, so a pollable is ready at once.
      'subscribe-duration': () => this.add({ t: 'pollable' }),
      '[method]pollable.block': (h: number) => void this.get(h, 'pollable'),
      '[resource-drop]pollable': (h: number) => void this.take(h, 'pollable'),
      'get-stdout': () => this.add({ t: 'out-stream', target: 'stdout', permit: 0n, turn: 0 }),
      'get-stderr': () => this.add({ t: 'out-stream', target: 'stderr', permit: 0n, turn: 0 }),
      'get-environment': (ret: number) => {
        const [p, n] = this.putPairs([['FAKE_HOST', enc.encode('1')], ['EMPTY', new Uint8Array()]]);
        this.view().setUint32(ret, p, true);
        this.view().setUint32(ret + 4, n, true);
      },
    };
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    for (const { module, name } of WebAssembly.Module.imports(mod)) {
      const f = impl[name];
      if (f === undefined) throw new Error(`fake host lacks ${module} ${name}`);
      (imports[module] ??= {})[name] = f as (...a: unknown[]) => unknown;
    }
    return imports;
  }
}
