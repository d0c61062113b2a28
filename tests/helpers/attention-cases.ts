/**
 * What the attention kernel tests share (BERT's tests/engine/attention.gpu.test.ts and the decoders'
 * causal-attention.gpu.test.ts): the padding masks, seeded inputs, the cases of awkward sizes both
 * kernels must get right, and the output checks.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { expectBitIdentical, expectClose, randomArray, type Tolerance } from './numeric.ts';

export interface AttentionSizes {
  batch: number;
  seq: number;
  heads: number;
  /** K/V heads of grouped-query attention; BERT's attention has one per query head. */
  kvHeads?: number;
  headDim: number;
}

/** Mask [B, T] from per-sequence [first, end) spans of real tokens (right padding: first 0; left padding: end T). */
export function spanMask(seq: number, spans: [number, number][]): Float32Array {
  return Float32Array.from({ length: spans.length * seq }, (_, i) => {
    const [first, end] = spans[Math.floor(i / seq)];
    return i % seq >= first && i % seq < end ? 1 : 0;
  });
}

/** Mask [B, T]: sequence b has lengths[b] real tokens, then padding to the end. */
export function paddingMask(seq: number, lengths: number[]): Float32Array {
  return spanMask(seq, lengths.map((n) => [0, n]));
}

/** Seeded unit-normal q, dContext [B, T, heads·D] and k, v [B, T, kvHeads·D], with the given mask. */
export function attentionInputs(sizes: AttentionSizes, mask: Float32Array, seed: number) {
  const { batch, seq, heads, kvHeads = heads, headDim } = sizes;
  const nq = batch * seq * heads * headDim;
  const nkv = batch * seq * kvHeads * headDim;
  return {
    q: randomArray(seed, nq),
    k: randomArray(seed + 1, nkv),
    v: randomArray(seed + 2, nkv),
    dContext: randomArray(seed + 3, nq),
    mask,
  };
}

/** The inputs uploaded, and the outputs both kernels write allocated: context, dq as q, dk, dv as k. */
export function attentionTensors(engine: Engine, sizes: AttentionSizes, data: ReturnType<typeof attentionInputs>) {
  const { batch, seq, heads, kvHeads = heads, headDim } = sizes;
  const qShape = [batch, seq, heads * headDim];
  const kvShape = [batch, seq, kvHeads * headDim];
  return {
    q: engine.upload(data.q, qShape),
    k: engine.upload(data.k, kvShape),
    v: engine.upload(data.v, kvShape),
    dContext: engine.upload(data.dContext, qShape),
    mask: engine.upload(data.mask, [batch, seq]),
    context: engine.alloc(qShape),
    dq: engine.alloc(qShape),
    dk: engine.alloc(kvShape),
    dv: engine.alloc(kvShape),
  };
}

/**
 * Sizes every attention kernel must get right, each with its sequences' real lengths (right
 * padding): a single token, odd sizes everywhere, and more rows than one workgroup with a sequence
 * of one real token.
 */
export const awkwardSizes: { label: string; sizes: AttentionSizes; lengths: number[] }[] = [
  { label: 'one token', sizes: { batch: 1, seq: 1, heads: 1, headDim: 1 }, lengths: [1] },
  { label: 'odd sizes, right padding', sizes: { batch: 2, seq: 7, heads: 3, headDim: 5 }, lengths: [7, 4] },
  { label: 'more rows than a workgroup, a one-token sequence', sizes: { batch: 3, seq: 33, heads: 2, headDim: 8 }, lengths: [33, 1, 20] },
];

/**
 * Unit-normal inputs and f32 dot products of ≤ 256 terms: the largest errors seen were 1.1e-6 for
 * context and gradients (of size up to ~10), so outputs compare to 5e-6 + 1e-6·|expected| unless
 * `tolerances` names another for them.
 */
export function expectOutputsClose<K extends string>(
  got: Record<K, ArrayLike<number>>,
  expected: Record<K, ArrayLike<number>>,
  tolerances: Partial<Record<K, Tolerance>> = {},
): void {
  for (const name of Object.keys(expected) as K[]) {
    expectClose(got[name], expected[name], tolerances[name] ?? { atol: 5e-6, rtol: 1e-6 }, name);
  }
}

/** Two runs give bit-identical outputs. */
export async function expectDeterministic(run: () => Promise<Record<string, Float32Array>>): Promise<void> {
  const first = await run();
  const second = await run();
  for (const name of Object.keys(first)) expectBitIdentical(first[name], second[name], name);
}
