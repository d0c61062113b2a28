/** Loop unrolling for WGSL sources (the tiled matmul kernels), for the compilers that need it. */
import type { AdapterDescription } from '../engine.ts';

/**
 * Expand every loop marked `// @unroll` (`for (var i = 0u; i < 8u; i++) { body }`, or `i < NAME` with
 * NAME one of `constants`) into its copies `{ body }` with i replaced by 0u, 1u, ...; loops inside
 * an expanded body are expanded in turn. With constant indices, CPU Vulkan drivers (SwiftShader)
 * keep the matmul's accumulators in registers and read the staged tile with plain loads instead of
 * per-lane gathers.
 */
export function unrollLoops(source: string, constants: Readonly<Record<string, number>> = {}): string {
  const marker = /\/\/ @unroll\s*\n\s*for \(var (\w+) = 0u; \1 < (?:(\d+)u|(\w+)); \1\+\+\) \{/;
  let out = source;
  for (let m = marker.exec(out); m; m = marker.exec(out)) {
    const [header, name, literal, constant] = m;
    const count = literal !== undefined ? Number(literal) : constants[constant];
    if (count === undefined) throw new Error(`unrollLoops: the loop over ${name} runs to ${constant}, which is not among the constants given`);
    const bodyStart = m.index + header.length;
    let end = bodyStart;
    for (let depth = 1; depth > 0; end++) {
      if (end >= out.length) throw new Error(`unrollLoops: the loop over ${name} has no closing brace`);
      if (out[end] === '{') depth++;
      else if (out[end] === '}') depth--;
    }
    const body = out.slice(bodyStart, end - 1);
    const variable = new RegExp(`\\b${name}\\b`, 'g');
    const copies = Array.from({ length: count }, (_, i) => `{${body.replace(variable, `${i}u`)}}`);
    out = out.slice(0, m.index) + copies.join('\n') + out.slice(end);
  }
  return out;
}

/**
 * Whether this adapter's shader compiler wants the marked loops expanded in the source: SwiftShader's
 * Subzero does not unroll them itself (and then spills the accumulators). LLVM (lavapipe) and GPU
 * compilers unroll constant loops on their own, and lavapipe compiles the expanded matmul for minutes
 * (its coroutine pass over a 2,600-line kernel with barriers), so they get the loops as written.
 */
export function wantsUnrolledLoops(adapter: Pick<AdapterDescription, 'architecture' | 'description'>): boolean {
  return /swiftshader/i.test(`${adapter.architecture} ${adapter.description}`);
}
