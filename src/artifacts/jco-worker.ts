/**
 * Child-process entry that runs jco (its wasm-tools and bindgen are large Wasm programs: ~3 s and
 * ~100 MB+ for a componentize-js component) outside the server process, so serving goes on
 * meanwhile and the memory is returned when the process exits. Input: one IPC message
 * `{ op: 'wit' | 'transpile', bytes }` (advanced serialization); output: `{ wit }`, `{ files }`, or
 * `{ error }` (the message jco threw).
 */
process.once('message', (msg: { op: 'wit' | 'transpile'; bytes: Uint8Array }) => {
  void run(msg).then((reply) => process.send!(reply));
});

async function run({ op, bytes }: { op: 'wit' | 'transpile'; bytes: Uint8Array }): Promise<Record<string, unknown>> {
  try {
    const jco = await import('@bytecodealliance/jco');
    if (op === 'wit') return { wit: await jco.componentWit(bytes) };
    const out = await jco.transpile(bytes, { name: 'guest', instantiation: 'async', noTypescript: true, quiet: true });
    return { files: out.files };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
