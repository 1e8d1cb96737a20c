/** The SQLite MetadataStore: the shared conformance suite, plus what is SQLite-specific (the file survives a reopen). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeMetadataStore } from './metadata.case.js';
import { databasePath, openSqliteStore } from './sqlite.js';

const freshFile = (): string => databasePath(mkdtempSync(join(tmpdir(), 'isola-store-')));

describeMetadataStore('sqlite', async () => openSqliteStore(freshFile()));

describe('SqliteStore', () => {
  it('keeps everything across a reopen of the same file', async () => {
    const file = freshFile();
    const a = openSqliteStore(file);
    await a.createTenant({ name: 'alice', limits: { memoryBytes: 65536, maxFunctions: 1 }, tokenHash: 'h' }, 'operator');
    await a.close();
    const b = openSqliteStore(file);
    expect(await b.tenantForToken('h')).toBe('alice');
    expect(await b.check()).toEqual([]);
    await b.close();
  });
});
