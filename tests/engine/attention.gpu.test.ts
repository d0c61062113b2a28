import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { type AttentionShape, attentionBackward, attentionForward, attentionForwardTiled, attentionProbs } from '../../src/engine/ops/attention.ts';
import { attentionBackwardRef, attentionForwardRef } from '../../src/engine/ops/attention.ref.ts';
import { attentionInputs, attentionTensors, awkwardSizes, expectDeterministic, expectOutputsClose, paddingMask } from '../helpers/attention-cases.ts';
import { gpuEngine, readAll } from '../helpers/gpu.ts';
import { expectAttentionMatchesTorch, layerOpsFixture } from '../helpers/layer-ops-fixture.ts';
import { dot, expectClose, finiteDifferenceGrad } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

function inputs(shape: AttentionShape, lengths: number[], seed: number) {
  return attentionInputs(shape, paddingMask(shape.seq, lengths), seed);
}

async function runAttention(engine: Engine, shape: AttentionShape, data: ReturnType<typeof inputs>) {
  const { q, k, v, dContext, mask, context, dq, dk, dv } = attentionTensors(engine, shape, data);
  const probs = engine.alloc([shape.batch, shape.heads, shape.seq, shape.seq]);
  attentionForward(engine, q, k, v, mask, context, probs, shape);
  attentionBackward(engine, q, k, v, probs, dContext, dq, dk, dv, shape);
  const out = await readAll(engine, { context, probs, dq, dk, dv });
  engine.release(q, k, v, dContext, mask, context, probs, dq, dk, dv);
  return out;
}

/** Scores are ~N(0, 1) (unit inputs, 1/√D scaling); the largest error seen in probabilities was 3e-7, so they compare to 1e-6. */
function expectMatchesReference(got: Awaited<ReturnType<typeof runAttention>>, shape: AttentionShape, data: ReturnType<typeof inputs>) {
  const ref = attentionForwardRef(data.q, data.k, data.v, data.mask, shape);
  const back = attentionBackwardRef(data.q, data.k, data.v, ref.probs, data.dContext, shape);
  expectOutputsClose(got, { probs: ref.probs, context: ref.context, dq: back.dq, dk: back.dk, dv: back.dv }, { probs: { atol: 1e-6, rtol: 0 } });
}

/** Every probability of a padded key is exactly 0 in sequences with at least one real token. */
function expectPaddedKeysExactlyZero(probs: Float32Array, shape: AttentionShape, lengths: number[]) {
  const { batch, seq, heads } = shape;
  for (let b = 0; b < batch; b++) {
    if (lengths[b] === 0) continue;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seq; i++) {
        for (let j = lengths[b]; j < seq; j++) {
          const p = probs[((b * heads + h) * seq + i) * seq + j];
          if (p !== 0) expect.fail(`probs[${b}, ${h}, ${i}, ${j}] = ${p} for a padded key`);
        }
      }
    }
  }
}

describe('attention', () => {
  it.each([
    ...awkwardSizes.map((c): [AttentionShape, number[]] => [c.sizes, c.lengths]),
    [{ batch: 5, seq: 7, heads: 3, headDim: 24 }, [7, 6, 5, 3, 1]],
    [{ batch: 1, seq: 129, heads: 1, headDim: 3 }, [100]],
    [{ batch: 2, seq: 9, heads: 2, headDim: 256 }, [9, 2]],
    [{ batch: 2, seq: 17, heads: 12, headDim: 64 }, [17, 11]],
  ] as [AttentionShape, number[]][])('forward and backward match the float64 reference, %o, lengths %o', async (shape, lengths) => {
    const data = inputs(shape, lengths, shape.seq * 7 + shape.headDim);
    const got = await runAttention(await gpuEngine(), shape, data);
    expectMatchesReference(got, shape, data);
    expectPaddedKeysExactlyZero(got.probs, shape, lengths);
  });

  it('a sequence with no real token attends uniformly, as Hugging Face BERT does', async () => {
    const shape = { batch: 2, seq: 6, heads: 2, headDim: 4 };
    const lengths = [0, 4];
    const data = inputs(shape, lengths, 3);
    const got = await runAttention(await gpuEngine(), shape, data);
    const uniform = got.probs.subarray(0, shape.heads * shape.seq * shape.seq);
    expectClose(uniform, new Float64Array(uniform.length).fill(Math.fround(1 / 6)), { atol: 0, rtol: 0 }, 'uniform probs');
    expectMatchesReference(got, shape, data);
    expectPaddedKeysExactlyZero(got.probs, shape, lengths);
  });

  it.each(layerOpsFixture.attention)('float64 reference matches torch (Hugging Face BERT attention, committed fixture), lengths $lengths', (c) => {
    const shape = { batch: c.batch, seq: c.seq, heads: c.heads, headDim: c.headDim };
    const ref = attentionForwardRef(c.q, c.k, c.v, c.mask, shape);
    expectAttentionMatchesTorch(ref, attentionBackwardRef(c.q, c.k, c.v, ref.probs, c.dContext, shape), c);
  });

  it('float64 backward matches central finite differences (q, k, v), with padded tails', () => {
    const shape = { batch: 2, seq: 5, heads: 2, headDim: 3 };
    const data = inputs(shape, [5, 3], 8);
    const loss = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) =>
      dot(attentionForwardRef(q, k, v, data.mask, shape).context, data.dContext);
    const ref = attentionForwardRef(data.q, data.k, data.v, data.mask, shape);
    const back = attentionBackwardRef(data.q, data.k, data.v, ref.probs, data.dContext, shape);
    const tol = { atol: 1e-7, rtol: 1e-6 };
    expectClose(back.dq, finiteDifferenceGrad((q) => loss(q, data.k, data.v), data.q), tol, 'dq');
    expectClose(back.dk, finiteDifferenceGrad((k) => loss(data.q, k, data.v), data.k), tol, 'dk');
    expectClose(back.dv, finiteDifferenceGrad((v) => loss(data.q, data.k, v), data.v), tol, 'dv');
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    const shape = { batch: 2, seq: 31, heads: 5, headDim: 2 }; // 310 rows: 5 workgroups of 64, a 3x2 grid
    const data = inputs(shape, [31, 17], 21);
    expectMatchesReference(await runAttention(engine, shape, data), shape, data);
    engine.destroy();
  });

  it('is deterministic: two runs are bit-identical', async () => {
    const shape = { batch: 3, seq: 21, heads: 4, headDim: 16 };
    const data = inputs(shape, [21, 13, 2], 4);
    await expectDeterministic(async () => runAttention(await gpuEngine(), shape, data));
  });

  it('accepts q/k/v/context viewed as [B·T, heads·D]', async () => {
    const engine = await gpuEngine();
    const shape = { batch: 2, seq: 5, heads: 3, headDim: 4 };
    const data = inputs(shape, [5, 2], 12);
    const flat = [10, 12];
    const q = engine.upload(data.q, flat);
    const k = engine.upload(data.k, flat);
    const v = engine.upload(data.v, flat);
    const mask = engine.upload(data.mask, [2, 5]);
    const context = engine.alloc(flat);
    const probs = engine.alloc([2, 3, 5, 5]);
    attentionForward(engine, q, k, v, mask, context, probs, shape);
    const ref = attentionForwardRef(data.q, data.k, data.v, data.mask, shape);
    expectClose(await engine.readF32(context), ref.context, { atol: 5e-6, rtol: 1e-6 }, 'context');
    engine.release(q, k, v, mask, context, probs);
  });

  it('rejects bad shapes and in-place use, naming the tensor or limit', async () => {
    const engine = await gpuEngine();
    const shape = { batch: 2, seq: 3, heads: 2, headDim: 4 };
    const q = engine.alloc([2, 3, 8]);
    const k = engine.alloc([2, 3, 8]);
    const v = engine.alloc([2, 3, 8]);
    const context = engine.alloc([2, 3, 8]);
    const mask = engine.alloc([2, 3]);
    const probs = engine.alloc([2, 2, 3, 3]);
    const wrongTokens = engine.alloc([2, 3, 9]);
    const wrongProbs = engine.alloc([2, 2, 3, 4]);
    const wrongMask = engine.alloc([3, 2]);
    expect(() => attentionForward(engine, q, wrongTokens, v, mask, context, probs, shape)).toThrow(
      /attentionForward: k has shape \[2, 3, 9\], expected \[batch, seq, heads·headDim\] = \[2, 3, 8\]/,
    );
    expect(() => attentionForward(engine, q, k, v, wrongMask, context, probs, shape)).toThrow(/mask has shape \[3, 2\], expected \[2, 3\]/);
    expect(() => attentionForward(engine, q, k, v, mask, context, wrongProbs, shape)).toThrow(/probs has shape \[2, 2, 3, 4\], expected \[2, 2, 3, 3\]/);
    expect(() => attentionForward(engine, q, k, v, mask, q, probs, shape)).toThrow(/output context shares a buffer with input q/);
    expect(() => attentionForward(engine, q, k, v, mask, context, probs, { ...shape, headDim: 2.5 })).toThrow(/headDim must be a positive integer/);
    expect(() => attentionForward(engine, q, k, v, mask, context, probs, { batch: 1, seq: 1, heads: 1, headDim: 257 })).toThrow(
      /headDim 257 exceeds the attention kernels' limit of 256/,
    );
    expect(() => attentionBackward(engine, q, k, v, probs, context, wrongTokens, k, v, shape)).toThrow(/attentionBackward: dq has shape \[2, 3, 9\]/);
    expect(() => attentionBackward(engine, q, k, v, probs, context, context, q, v, shape)).toThrow(/output(s)? .*share/);
    engine.release(q, k, v, context, mask, probs, wrongTokens, wrongProbs, wrongMask);
  });
});

describe('attention tiled over K/V (flash-style forward, probs recomputed for the backward)', () => {
  async function runTiled(engine: Engine, shape: AttentionShape, data: ReturnType<typeof inputs>) {
    const { batch, seq, heads, headDim } = shape;
    const tokens = [batch, seq, heads * headDim];
    const [q, k, v] = [data.q, data.k, data.v].map((x) => engine.upload(x, tokens));
    const mask = engine.upload(data.mask, [batch, seq]);
    const context = engine.alloc(tokens);
    const stats = engine.alloc([batch, heads, seq, 2]);
    const probs = engine.alloc([batch, heads, seq, seq]);
    attentionForwardTiled(engine, { q, k, v, mask }, { context, stats }, shape);
    attentionProbs(engine, q, k, mask, stats, probs, shape);
    const out = { context: await engine.readF32(context), probs: await engine.readF32(probs) };
    engine.release(q, k, v, mask, context, stats, probs);
    return out;
  }

  // Seq 512 and odd lengths; partial K/V tiles and query tiles, padded tails, a sequence with no
  // real token (uniform attention), and the largest head dimension the tiled kernel takes.
  it.each([
    { shape: { batch: 1, seq: 512, heads: 1, headDim: 4 }, lengths: [500] },
    { shape: { batch: 2, seq: 7, heads: 3, headDim: 5 }, lengths: [7, 3] },
    { shape: { batch: 2, seq: 130, heads: 2, headDim: 64 }, lengths: [129, 0] },
    { shape: { batch: 1, seq: 33, heads: 1, headDim: 128 }, lengths: [20] },
  ])('matches the float64 reference: $shape.batch × $shape.seq, $shape.heads heads of $shape.headDim, lengths $lengths', async ({ shape, lengths }) => {
    const data = inputs(shape, lengths, shape.seq);
    const got = await runTiled(await gpuEngine(), shape, data);
    const ref = attentionForwardRef(data.q, data.k, data.v, data.mask, shape);
    expectClose(got.context, ref.context, { atol: 5e-6, rtol: 1e-6 }, 'context');
    expectClose(got.probs, ref.probs, { atol: 1e-6, rtol: 0 }, 'recomputed probs');
    expectPaddedKeysExactlyZero(got.probs, shape, lengths);
  });

  it('rejects a head dimension over its limit of 128, naming it', async () => {
    const engine = await gpuEngine();
    const shape = { batch: 1, seq: 2, heads: 1, headDim: 129 };
    const t = engine.alloc([1, 2, 129]);
    const mask = engine.alloc([1, 2]);
    const stats = engine.alloc([1, 1, 2, 2]);
    const context = engine.alloc([1, 2, 129]);
    expect(() => attentionForwardTiled(engine, { q: t, k: t, v: t, mask }, { context, stats }, shape)).toThrow(
      "attentionForwardTiled: headDim 129 exceeds the tiled kernel's limit of 128",
    );
    engine.release(t, mask, stats, context);
  });
});
