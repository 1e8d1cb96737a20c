/**
 * Telling a component from a core module by its preamble (Wasm core spec §5.5.16; component-model
 * Binary.md: magic `\0asm`, then version 1 layer 0 for core modules, version 0x0d layer 1 for
 * components).
 */
export type WasmKind = 'core-module' | 'component';

/** Returns the binary's kind, or null when the bytes are not Wasm at all. */
export function wasmKind(bytes: Uint8Array): WasmKind | null {
  if (bytes.byteLength < 8) return null;
  if (bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) return null;
  const version = bytes[4]! | (bytes[5]! << 8);
  const layer = bytes[6]! | (bytes[7]! << 8);
  if (version === 1 && layer === 0) return 'core-module';
  if (layer === 1) return 'component';
  return null;
}

/**
 * Parses the `world` block of the WIT that jco's `componentWit` prints for a component and returns
 * its imports and exports as written (`wasi:http/types@0.2.12`, or `name: func(...)` for inline items).
 */
export function worldItems(wit: string): { imports: string[]; exports: string[] } {
  const imports: string[] = [];
  const exports: string[] = [];
  const world = /world\s+[\w-]+\s*\{([\s\S]*?)\n\}/.exec(wit);
  if (!world) return { imports, exports };
  for (const raw of world[1]!.split('\n')) {
    const line = raw.trim();
    const m = /^(import|export)\s+(.+?);?$/.exec(line);
    if (!m) continue;
    (m[1] === 'import' ? imports : exports).push(m[2]!.replace(/;$/, ''));
  }
  return { imports, exports };
}

/** Splits `wasi:http/types@0.2.12` into the interface (`wasi:http/types`) and version (`0.2.12`). */
export function splitVersion(item: string): { name: string; version: string | null } {
  const at = item.lastIndexOf('@');
  if (at <= 0) return { name: item, version: null };
  return { name: item.slice(0, at), version: item.slice(at + 1) };
}
