// Types of scripts/build-wagi-examples.mjs, for the TypeScript tests that import it.
/** clang flags for a WASI preview 1 command. */
export declare const CLANG_WASI: string[];
/** Compiles one C file to a wasm32-wasi command module at `out` (clang). Throws on failure. */
export declare function compileC(src: string, out: string, flags?: string[]): void;
/** Assembles one WAT file to Wasm at `out` (wabt npm). Throws on a syntax error. */
export declare function assembleWat(src: string, out: string): Promise<void>;
