// esbuild entry for the benchmark's WAT guests: test/guests (TypeScript) plus a CPU-burning guest
// for the noisy-neighbour scenario. Bundled by setup.mjs into bench/.build/guests.mjs.
export * from '../../test/guests/index.ts';
import { guest, replyText } from '../../test/guests/wat.ts';
import { buildComponentFile } from '../../test/guests/build.ts';

/**
 * Builds a guest that counts a local down from `iterations` (a CPU-bound loop with no host calls),
 * then answers 200 text/plain `burnt\n`. Returns the cached component's path.
 */
export function buildBurnGuest(iterations) {
  const wat = guest((g) => {
    g.local('i');
    g.local('acc');
    return `
    (local.set $i (i32.const ${iterations | 0}))
    (loop $spin
      (local.set $acc (i32.add (local.get $acc) (i32.xor (local.get $i) (local.get $acc))))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $spin (i32.gt_s (local.get $i) (i32.const 0))))
    (if (i32.eq (local.get $acc) (i32.const 12345)) (then (unreachable)))
    ${replyText(g, 200, 'burnt\n')}`;
  });
  return buildComponentFile(`burn-${iterations}`, wat);
}

/**
 * Builds the WAT hello answering `hello <n>\n`: the same guest as `hello` in distinct bytes, so
 * each variant is its own artifact (for first requests to a component that never ran). Returns
 * the cached component's path.
 */
export function buildHelloVariant(n) {
  return buildComponentFile(`hello-variant-${n}`, guest((g) => replyText(g, 200, `hello ${n}\n`)));
}
