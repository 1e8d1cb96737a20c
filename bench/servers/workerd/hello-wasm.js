// workerd peer: JS + Wasm. The greeting comes out of a tiny core module (hello.wasm, from
// hello.wat): `hello()` writes it into linear memory and returns its length.
import mod from './hello.wasm';

const instance = new WebAssembly.Instance(mod, {});
const { memory, hello } = instance.exports;

export default {
  fetch() {
    const len = hello();
    const bytes = new Uint8Array(memory.buffer, 0, len).slice();
    return new Response(bytes, { headers: { 'content-type': 'text/plain' } });
  },
};
