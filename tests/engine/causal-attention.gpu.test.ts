import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import {
  type CausalAttentionShape,
  appendKvCache,
  causalAttentionBackward,
  causalAttentionForward,
  createKvCache,
  decodeAttentionForward,
} from '../../src/engine/ops/causal-attention.ts';
import { causalAttentionBackwardRef, causalAttentionForwardRef } from '../../src/engine/ops/causal-attention.ref.ts';
import { attentionInputs, attentionTensors, awkwardSizes, expectDeterministic, expectOutputsClose, spanMask } from '../helpers/attention-cases.ts';
import { gpuEngine, readAll } from '../helpers/gpu.ts';
import { expectClose, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

function inputs(shape: CausalAttentionShape, spans: [number, number][], seed: number) {
  return attentionInputs(shape, spanMask(shape.seq, spans), seed);
}

async function runAttention(engine: Engine, shape: CausalAttentionShape, data: ReturnType<typeof inputs>) {
  const { q, k, v, dContext, mask, context, dq, dk, dv } = attentionTensors(engine, shape, data);
  const lse = engine.alloc([shape.batch, shape.heads, shape.seq]);
  causalAttentionForward(engine, q, k, v, mask, context, lse, shape);
  causalAttentionBackward(engine, q, k, v, mask, context, lse, dContext, dq, dk, dv, shape);
  const out = await readAll(engine, { context, lse, dq, dk, dv });
  engine.release(q, k, v, dContext, mask, context, lse, dq, dk, dv);
  return out;
}

/** dk/dv sum over a query group (up to 3 heads × 130 rows), so they get a tolerance growing with the count of terms. */
function expectMatchesReference(got: Awaited<ReturnType<typeof runAttention>>, shape: CausalAttentionShape, data: ReturnType<typeof inputs>) {
  const ref = causalAttentionForwardRef(data.q, data.k, data.v, data.mask, shape);
  const back = causalAttentionBackwardRef(data.q, data.k, data.v, ref.probs, data.dContext, shape);
  const sumTol = { atol: 5e-6 * Math.sqrt((shape.heads / shape.kvHeads) * shape.seq), rtol: 1e-6 };
  expectOutputsClose(got, { context: ref.context, lse: ref.lse, dq: back.dq, dk: back.dk, dv: back.dv }, { dk: sumTol, dv: sumTol });
}

describe('grouped-query causal attention', () => {
  it.each<[string, CausalAttentionShape, [number, number][]]>([
    // BERT's awkward sizes with one K/V head per query head (no grouping)
    ...awkwardSizes.map((c): [string, CausalAttentionShape, [number, number][]] => [
      c.label,
      { ...c.sizes, kvHeads: c.sizes.heads },
      c.lengths.map((n): [number, number] => [0, n]),
    ]),
    ['2 query heads per K/V head, right padding', { batch: 2, seq: 5, heads: 4, kvHeads: 2, headDim: 3 }, [[0, 5], [0, 3]]],
    ['3 query heads per K/V head, left padding (rows that see no key)', { batch: 3, seq: 7, heads: 6, kvHeads: 2, headDim: 8 }, [[0, 7], [4, 7], [2, 7]]],
    ['multi-query (one K/V head), D=64', { batch: 1, seq: 33, heads: 4, kvHeads: 1, headDim: 64 }, [[0, 33]]],
  ])('forward and backward match the float64 reference: %s', async (_, shape, spans) => {
    const data = inputs(shape, spans, shape.seq * 13 + shape.heads);
    expectMatchesReference(await runAttention(await gpuEngine(), shape, data), shape, data);
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    // 4 heads × 130 rows = 520 query rows: 9 workgroups of 64 on a 3×3 grid; 260 key rows: 5 on 3×2.
    const shape = { batch: 1, seq: 130, heads: 4, kvHeads: 2, headDim: 4 };
    const data = inputs(shape, [[0, 121]], 3);
    expectMatchesReference(await runAttention(engine, shape, data), shape, data);
    engine.destroy();
  });

  it('is deterministic: two runs are bit-identical', async () => {
    const shape = { batch: 2, seq: 40, heads: 4, kvHeads: 2, headDim: 16 };
    const data = inputs(shape, [[0, 40], [0, 25]], 8);
    await expectDeterministic(async () => runAttention(await gpuEngine(), shape, data));
  });

  it('KV cache: a prefill then one decoded token attend the cache as the float64 reference does', async () => {
    const engine = await gpuEngine();
    const batch = 2;
    const capacity = 9;
    const heads = 4;
    const kvHeads = 2;
    const headDim = 6;
    const cache = createKvCache(engine, { batch, capacity, kvHeads, headDim });
    const kvWidth = kvHeads * headDim;
    const cacheK = new Float32Array(batch * capacity * kvWidth);
    const cacheV = new Float32Array(cacheK.length);
    const mask = spanMask(capacity, [[0, capacity], [2, capacity]]); // sequence 1 is left-padded by two
    const maskTensor = engine.upload(mask, [batch, capacity]);
    // Prefill 5 tokens at rows 0..4, then decode 1 token at row 5.
    for (const [start, count, seed] of [[0, 5, 10], [5, 1, 20]]) {
      const k = randomArray(seed, batch * count * kvWidth);
      const v = randomArray(seed + 1, k.length);
      const q = randomArray(seed + 2, batch * count * heads * headDim);
      for (let b = 0; b < batch; b++) {
        cacheK.set(k.subarray(b * count * kvWidth, (b + 1) * count * kvWidth), (b * capacity + start) * kvWidth);
        cacheV.set(v.subarray(b * count * kvWidth, (b + 1) * count * kvWidth), (b * capacity + start) * kvWidth);
      }
      const [kT, vT] = [k, v].map((x) => engine.upload(x, [batch, count, kvWidth]));
      const qT = engine.upload(q, [batch, count, heads * headDim]);
      const context = engine.alloc([batch, count, heads * headDim]);
      appendKvCache(engine, cache, kT, vT, start);
      decodeAttentionForward(engine, qT, cache, maskTensor, context, heads, start);
      const ref = causalAttentionForwardRef(q, cacheK, cacheV, mask, { batch, seq: count, heads, kvHeads, headDim }, { length: capacity, offset: start });
      expectClose(await engine.readF32(context), ref.context, { atol: 5e-6, rtol: 1e-6 }, `context at ${start}`);
      engine.release(kT, vT, qT, context);
    }
    expectClose(await engine.readF32(cache.k), cacheK, { atol: 0, rtol: 0 }, 'cached k');
    expectClose(await engine.readF32(cache.v), cacheV, { atol: 0, rtol: 0 }, 'cached v');
    engine.release(cache.k, cache.v, maskTensor);
  });

  it('rejects bad head counts, mismatched shapes, a full cache and in-place use, naming the problem', async () => {
    const engine = await gpuEngine();
    const shape = { batch: 1, seq: 3, heads: 4, kvHeads: 2, headDim: 2 };
    const q = engine.alloc([1, 3, 8]);
    const k = engine.alloc([1, 3, 4]);
    const v = engine.alloc([1, 3, 4]);
    const mask = engine.alloc([1, 3]);
    const context = engine.alloc([1, 3, 8]);
    const lse = engine.alloc([1, 4, 3]);
    expect(() => causalAttentionForward(engine, q, k, v, mask, context, lse, { ...shape, kvHeads: 3 })).toThrow(/heads \(4\) must be a multiple of kvHeads \(3\)/);
    expect(() => causalAttentionForward(engine, q, q, v, mask, context, lse, shape)).toThrow(
      /causalAttentionForward: k has shape \[1, 3, 8\], expected \[batch, seq, kvHeads·headDim\] = \[1, 3, 4\]/,
    );
    expect(() => causalAttentionForward(engine, q, k, v, mask, context, mask, shape)).toThrow(/lse has shape \[1, 3\], expected \[1, 4, 3\]/);
    expect(() => causalAttentionForward(engine, q, k, v, mask, q, lse, shape)).toThrow(/output context shares a buffer with input q/);
    expect(() => causalAttentionForward(engine, q, k, v, mask, context, lse, { ...shape, headDim: 300 })).toThrow(/headDim 300 exceeds/);
    expect(() => causalAttentionBackward(engine, q, k, v, mask, context, lse, context, q, k, v, shape)).toThrow(/output dq shares a buffer with input q/);
    const cache = createKvCache(engine, { batch: 1, capacity: 4, kvHeads: 2, headDim: 2 });
    expect(() => appendKvCache(engine, cache, k, v, 2)).toThrow(/appendKvCache: rows 2\.\.4 do not fit the KV cache's capacity of 4/);
    expect(() => decodeAttentionForward(engine, q, cache, mask, context, 4, 0)).toThrow(/decodeAttentionForward: mask has shape \[1, 3\], expected \[1, 4\]/);
    engine.release(q, k, v, mask, context, lse, cache.k, cache.v);
  });
});
