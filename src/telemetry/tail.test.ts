import { describe, expect, it } from 'vitest';
import { TailHub, type TailSink } from './tail.js';

/** A sink whose socket never drains (a client that stopped reading). */
class StuckSink implements TailSink {
  chunks: string[] = [];
  writableLength = 0;
  ended = false;
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    this.writableLength += chunk.length;
    return false;
  }
  end(): void {
    this.ended = true;
  }
}

describe('TailHub', () => {
  it('is inactive, and publishing a no-op, while nobody subscribes', () => {
    const hub = new TailHub();
    const c = hub.channel('alice/hello');
    expect(c.active).toBe(false);
    c.publish('log', { msg: 'x' });
    const sink = new StuckSink();
    const stop = hub.subscribe('alice/hello', sink);
    expect(c.active).toBe(true);
    stop();
    expect(c.active).toBe(false);
    expect(hub.channel('alice/hello')).toBe(c);
  });

  it('sends each record as an SSE event to subscribers of that key only', () => {
    const hub = new TailHub();
    const a = new StuckSink();
    const b = new StuckSink();
    hub.subscribe('alice/hello', a);
    hub.subscribe('bob/hello', b);
    hub.channel('alice/hello').publish('request', { status: 200 });
    expect(a.chunks.slice(1)).toEqual(['event: request\ndata: {"status":200}\n\n']);
    expect(b.chunks).toHaveLength(1); // only the opening comment
  });

  it('drops records for a slow subscriber beyond its buffer, counts them, and says so once it catches up', () => {
    const hub = new TailHub(1000);
    const sink = new StuckSink();
    hub.subscribe('f', sink);
    const c = hub.channel('f');
    for (let i = 0; i < 100; i++) c.publish('log', { msg: 'y'.repeat(50) });
    expect(sink.writableLength).toBeLessThanOrEqual(1000);
    expect(hub.droppedRecords).toBeGreaterThan(80);
    const dropped = hub.droppedRecords;
    sink.writableLength = 0; // the client read everything
    c.publish('log', { msg: 'z' });
    expect(sink.chunks.at(-2)).toBe(`event: dropped\ndata: {"dropped":${dropped}}\n\n`);
    expect(sink.chunks.at(-1)).toContain('"msg":"z"');
  });

  it('ends every stream on closeAll', () => {
    const hub = new TailHub();
    const sink = new StuckSink();
    hub.subscribe('f', sink);
    hub.closeAll();
    expect(sink.ended).toBe(true);
    expect(hub.subscribers).toBe(0);
  });
});
