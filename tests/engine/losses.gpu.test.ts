import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import {
  type InfoNceOptions,
  cosinePairLossBackward,
  cosinePairLossForward,
  infoNceBackward,
  infoNceForward,
} from '../../src/engine/ops/losses.ts';
import {
  type InfoNceDims,
  cosinePairLossBackwardRef,
  cosinePairLossRef,
  infoNceBackwardRef,
  infoNceForwardRef,
} from '../../src/engine/ops/losses.ref.ts';
import { Rng } from '../../src/data/rng.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';
import { expectBitIdentical, expectClose, finiteDifferenceGrad } from '../helpers/numeric.ts';

interface TorchInfoNce extends InfoNceDims {
  scale: number;
  symmetric: boolean;
  anchors: number[];
  candidates: number[];
  loss: number;
  dAnchors: number[];
  dCandidates: number[];
}
interface TorchPair {
  rows: number;
  h: number;
  a: number[];
  b: number[];
  labels: number[];
  loss: number;
  da: number[];
  db: number[];
}
const torchFixture = JSON.parse(readFileSync(new URL('../fixtures/training_ops/training_ops.json', import.meta.url), 'utf8')) as {
  infoNce: TorchInfoNce[];
  cosinePair: TorchPair[];
};

/** Rows of unit length (what the L2-normalisation op hands the loss). */
function unitRows(seed: number, rows: number, h: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(rows * h);
  for (let i = 0; i < rows; i++) {
    const row = Array.from({ length: h }, () => rng.normal());
    const norm = Math.hypot(...row);
    row.forEach((v, k) => (out[i * h + k] = v / norm));
  }
  return out;
}

// GPU tolerances (f32 vs float64): a logit is scale·(dot of unit vectors) with an absolute error of
// ~scale·1e-8 per term; probabilities, CE terms and the gradients (Σ over C of |dS| ≤ 2/B times unit
// rows) inherit it. The worst absolute error observed over the cases below is 6e-7; tolerance 5e-6.
const SCALE = 20;
const TOL = { atol: 5e-6, rtol: 1e-5 };

interface InfoNceRun {
  loss: number;
  probs: Float32Array;
  probsT: Float32Array | null;
  dAnchors: Float32Array;
  dCandidates: Float32Array;
}

async function runInfoNce(engine: Engine, a: Float32Array, cands: Float32Array, dims: InfoNceDims, options: InfoNceOptions, lossScale: number): Promise<InfoNceRun> {
  const { b, c, h } = dims;
  const anchors = engine.upload(a, [b, h]);
  const candidates = engine.upload(cands, [c, h]);
  const loss = engine.alloc([1]);
  const probs = engine.alloc([b, c]);
  const probsT = options.symmetric ? engine.alloc([b, b]) : null;
  const dAnchors = engine.alloc([b, h]);
  const dCandidates = engine.alloc([c, h]);
  infoNceForward(engine, anchors, candidates, loss, probs, probsT, options);
  infoNceBackward(engine, anchors, candidates, probs, probsT, dAnchors, dCandidates, options, lossScale);
  const run = {
    loss: (await engine.readF32(loss))[0],
    probs: await engine.readF32(probs),
    probsT: probsT && (await engine.readF32(probsT)),
    dAnchors: await engine.readF32(dAnchors),
    dCandidates: await engine.readF32(dCandidates),
  };
  engine.release(anchors, candidates, loss, probs, probsT, dAnchors, dCandidates);
  return run;
}

const INFONCE_CASES: [number, number, number, boolean][] = [];
for (const b of [1, 3, 7])
  for (const c of [b, 2 * b + 1])
    for (const symmetric of [false, true]) INFONCE_CASES.push([b, c, 33, symmetric]);
INFONCE_CASES.push([7, 300, 72, true], [129, 129, 40, true]);

describe('InfoNCE', () => {
  it('float64 reference matches torch (sentence-transformers MNRL / symmetric MNRL) to 1e-12', () => {
    for (const t of torchFixture.infoNce) {
      const options = { scale: t.scale, symmetric: t.symmetric };
      const label = `B=${t.b} C=${t.c} symmetric=${t.symmetric}`;
      expect(Math.abs(infoNceForwardRef(t.anchors, t.candidates, t, options).loss - t.loss), label).toBeLessThan(1e-12);
      const grads = infoNceBackwardRef(t.anchors, t.candidates, t, options, 1);
      expectClose(grads.dAnchors, t.dAnchors, { atol: 1e-12, rtol: 1e-10 }, `${label} dAnchors`);
      expectClose(grads.dCandidates, t.dCandidates, { atol: 1e-12, rtol: 1e-10 }, `${label} dCandidates`);
    }
  });

  it('reference backward matches central finite differences (C > B, both variants)', () => {
    const dims = { b: 3, c: 5, h: 4 };
    const a = unitRows(1, dims.b, dims.h);
    const cands = unitRows(2, dims.c, dims.h);
    for (const symmetric of [false, true]) {
      const options = { scale: 5, symmetric };
      const grads = infoNceBackwardRef(a, cands, dims, options, 0.5);
      const loss = (x: ArrayLike<number>, y: ArrayLike<number>) => 0.5 * infoNceForwardRef(x, y, dims, options).loss;
      expectClose(grads.dAnchors, finiteDifferenceGrad((v) => loss(v, cands), a), { atol: 1e-8, rtol: 1e-6 }, 'dAnchors');
      expectClose(grads.dCandidates, finiteDifferenceGrad((v) => loss(a, v), cands), { atol: 1e-8, rtol: 1e-6 }, 'dCandidates');
    }
  });

  it.each(INFONCE_CASES)('GPU matches the reference: B=%i C=%i H=%i symmetric=%s', async (b, c, h, symmetric) => {
    const engine = await gpuEngine();
    const dims = { b, c, h };
    const a = unitRows(b * 100 + c, b, h);
    const cands = unitRows(b * 100 + c + 1, c, h);
    const options = { scale: SCALE, symmetric };
    const lossScale = 0.25;
    const got = await runInfoNce(engine, a, cands, dims, options, lossScale);
    const want = infoNceForwardRef(a, cands, dims, options);
    const grads = infoNceBackwardRef(a, cands, dims, options, lossScale);
    expectClose([got.loss], [want.loss], TOL, 'loss');
    expectClose(got.probs, want.probs, TOL, 'probs');
    if (symmetric) expectClose(got.probsT!, want.probsT!, TOL, 'probsT');
    expectClose(got.dAnchors, grads.dAnchors, TOL, 'dAnchors');
    expectClose(got.dCandidates, grads.dCandidates, TOL, 'dCandidates');
  });

  it('folds its per-row launches over a 2-D grid past the per-dimension workgroup limit', async () => {
    const engine = await smallGridEngine(8); // 33 rows: 33 softmax workgroups on an 8-wide grid
    const dims = { b: 33, c: 40, h: 24 };
    const a = unitRows(41, dims.b, dims.h);
    const cands = unitRows(42, dims.c, dims.h);
    const options = { scale: SCALE, symmetric: true };
    const got = await runInfoNce(engine, a, cands, dims, options, 1);
    const want = infoNceForwardRef(a, cands, dims, options);
    expectClose([got.loss], [want.loss], TOL, 'loss');
    expectClose(got.probs, want.probs, TOL, 'probs');
    expectClose(got.probsT!, want.probsT!, TOL, 'probsT');
    const grads = infoNceBackwardRef(a, cands, dims, options, 1);
    expectClose(got.dAnchors, grads.dAnchors, TOL, 'dAnchors');
    expectClose(got.dCandidates, grads.dCandidates, TOL, 'dCandidates');
    // the cosine pair kernels fold the same way
    const labels = Float32Array.from({ length: dims.b }, (_, i) => i % 2);
    const [ta, tb, tl] = [engine.upload(a, [dims.b, dims.h]), engine.upload(cands.subarray(0, dims.b * dims.h), [dims.b, dims.h]), engine.upload(labels, [dims.b])];
    const [loss, da, db] = [engine.alloc([1]), engine.alloc([dims.b, dims.h]), engine.alloc([dims.b, dims.h])];
    cosinePairLossForward(engine, ta, tb, tl, loss);
    cosinePairLossBackward(engine, ta, tb, tl, da, db, 1);
    const pairB = cands.subarray(0, dims.b * dims.h);
    expectClose(await engine.readF32(loss), [cosinePairLossRef(a, pairB, labels, dims.b, dims.h)], { atol: 1e-6, rtol: 1e-6 }, 'pair loss');
    expectClose(await engine.readF32(da), cosinePairLossBackwardRef(a, pairB, labels, dims.b, dims.h, 1).da, { atol: 1e-6, rtol: 1e-5 }, 'pair da');
    engine.destroy();
  });

  it('is deterministic (two runs bit-identical)', async () => {
    const engine = await gpuEngine();
    const dims = { b: 7, c: 15, h: 72 };
    const a = unitRows(5, dims.b, dims.h);
    const cands = unitRows(6, dims.c, dims.h);
    const options = { scale: SCALE, symmetric: true };
    const first = await runInfoNce(engine, a, cands, dims, options, 1);
    const second = await runInfoNce(engine, a, cands, dims, options, 1);
    expectBitIdentical(Float32Array.of(first.loss), Float32Array.of(second.loss), 'loss');
    expectBitIdentical(first.probs, second.probs, 'probs');
    expectBitIdentical(first.probsT!, second.probsT!, 'probsT');
    expectBitIdentical(first.dAnchors, second.dAnchors, 'dAnchors');
    expectBitIdentical(first.dCandidates, second.dCandidates, 'dCandidates');
  });

  it('rejects bad shapes and options, naming the tensor', async () => {
    const engine = await gpuEngine();
    const made: Tensor[] = [];
    const t = (...shape: number[]) => {
      const tensor = engine.alloc(shape);
      made.push(tensor);
      return tensor;
    };
    const [b, c, h] = [3, 5, 8];
    const anchors = t(b, h), candidates = t(c, h), loss = t(1), probs = t(b, c), probsT = t(b, b);
    const dA = t(b, h), dC = t(c, h);
    const sym = { scale: SCALE, symmetric: true };
    const fwd = (o: Partial<Record<'anchors' | 'candidates' | 'loss' | 'probs', Tensor>>, pT: Tensor | null = probsT, options = sym) => () =>
      infoNceForward(engine, o.anchors ?? anchors, o.candidates ?? candidates, o.loss ?? loss, o.probs ?? probs, pT, options);
    expect(fwd({ candidates: t(2, h) })).toThrow('infoNceForward: candidates has 2 rows, fewer than the 3 anchors');
    expect(fwd({ candidates: t(c, h + 1) })).toThrow('infoNceForward: candidates has shape [5, 9], expected [5, 8]');
    expect(fwd({ probs: t(b, b) })).toThrow('infoNceForward: probs has shape [3, 3], expected [3, 5]');
    expect(fwd({ loss: t(2) })).toThrow('infoNceForward: loss has shape [2], expected [1]');
    expect(fwd({}, null)).toThrow('infoNceForward: probsT [3, 3] is required when options.symmetric is true');
    expect(fwd({}, t(b, c))).toThrow('infoNceForward: probsT has shape [3, 5], expected [3, 3]');
    expect(fwd({}, probsT, { scale: SCALE, symmetric: false })).toThrow('infoNceForward: probsT must be null when options.symmetric is false');
    expect(fwd({}, probsT, { scale: Number.POSITIVE_INFINITY, symmetric: true })).toThrow('options.scale must be a finite number');
    expect(fwd({ anchors: t(b * h) })).toThrow('infoNceForward: anchors must be 2-D, got shape [24]');
    const square = t(b, b);
    expect(() => infoNceForward(engine, anchors, anchors, loss, square, square, sym)).toThrow('infoNceForward: outputs probs and probsT share one buffer');
    const bwd = (dAnchors: Tensor, dCandidates: Tensor, lossScale = 1) => () =>
      infoNceBackward(engine, anchors, candidates, probs, probsT, dAnchors, dCandidates, sym, lossScale);
    expect(bwd(t(c, h), dC)).toThrow('infoNceBackward: dAnchors has shape [5, 8], expected [3, 8]');
    expect(bwd(dA, t(b, h))).toThrow('infoNceBackward: dCandidates has shape [3, 8], expected [5, 8]');
    expect(bwd(dA, candidates)).toThrow('infoNceBackward: output dCandidates shares a buffer with input candidates');
    expect(bwd(dA, dC, Number.NaN)).toThrow('infoNceBackward: lossScale must be a finite number, got NaN');
    engine.release(...made);
  });
});

describe('cosine pair loss', () => {
  const labelsFor = (rows: number) => Float32Array.from({ length: rows }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);

  it('float64 reference matches torch (CosineSimilarityLoss on normalised embeddings) to 1e-12', () => {
    for (const t of torchFixture.cosinePair) {
      expect(Math.abs(cosinePairLossRef(t.a, t.b, t.labels, t.rows, t.h) - t.loss)).toBeLessThan(1e-12);
      const grads = cosinePairLossBackwardRef(t.a, t.b, t.labels, t.rows, t.h, 1);
      expectClose(grads.da, t.da, { atol: 1e-12, rtol: 1e-10 }, 'da');
      expectClose(grads.db, t.db, { atol: 1e-12, rtol: 1e-10 }, 'db');
    }
  });

  it('reference backward matches central finite differences', () => {
    const [rows, h] = [3, 5];
    const a = unitRows(7, rows, h);
    const b = unitRows(8, rows, h);
    const labels = labelsFor(rows);
    const grads = cosinePairLossBackwardRef(a, b, labels, rows, h, 0.5);
    const loss = (x: ArrayLike<number>, y: ArrayLike<number>) => 0.5 * cosinePairLossRef(x, y, labels, rows, h);
    expectClose(grads.da, finiteDifferenceGrad((v) => loss(v, b), a), { atol: 1e-9, rtol: 1e-6 }, 'da');
    expectClose(grads.db, finiteDifferenceGrad((v) => loss(a, v), b), { atol: 1e-9, rtol: 1e-6 }, 'db');
  });

  it.each([
    [1, 33],
    [3, 72],
    [7, 300],
    [129, 33],
  ])('GPU matches the reference and is deterministic: B=%i H=%i', async (rows, h) => {
    const engine = await gpuEngine();
    const av = unitRows(rows, rows, h);
    const bv = unitRows(rows + 1, rows, h);
    const lv = labelsFor(rows);
    const [a, b, labels] = [engine.upload(av, [rows, h]), engine.upload(bv, [rows, h]), engine.upload(lv, [rows])];
    const [loss, da, db] = [engine.alloc([1]), engine.alloc([rows, h]), engine.alloc([rows, h])];
    const runs = [];
    for (let i = 0; i < 2; i++) {
      cosinePairLossForward(engine, a, b, labels, loss);
      cosinePairLossBackward(engine, a, b, labels, da, db, 0.25);
      runs.push({ loss: await engine.readF32(loss), da: await engine.readF32(da), db: await engine.readF32(db) });
    }
    const grads = cosinePairLossBackwardRef(av, bv, lv, rows, h, 0.25);
    // A dot of unit vectors in f32 is off by ~1e-7; the loss and (d − label) inherit it (worst observed 4e-8).
    expectClose(runs[0].loss, [cosinePairLossRef(av, bv, lv, rows, h)], { atol: 1e-6, rtol: 1e-6 }, 'loss');
    expectClose(runs[0].da, grads.da, { atol: 1e-6, rtol: 1e-5 }, 'da');
    expectClose(runs[0].db, grads.db, { atol: 1e-6, rtol: 1e-5 }, 'db');
    for (const key of ['loss', 'da', 'db'] as const) expectBitIdentical(runs[0][key], runs[1][key], key);
    engine.release(a, b, labels, loss, da, db);
  });

  it('rejects bad shapes, naming the tensor', async () => {
    const engine = await gpuEngine();
    const [a, b, labels, loss, da, db] = [engine.alloc([3, 8]), engine.alloc([3, 8]), engine.alloc([3]), engine.alloc([1]), engine.alloc([3, 8]), engine.alloc([3, 8])];
    const wrong = [engine.alloc([3, 7]), engine.alloc([4]), engine.alloc([2, 8])];
    expect(() => cosinePairLossForward(engine, a, wrong[0], labels, loss)).toThrow('cosinePairLossForward: b has shape [3, 7], expected [3, 8]');
    expect(() => cosinePairLossForward(engine, a, b, wrong[1], loss)).toThrow('cosinePairLossForward: labels has shape [4], expected [3]');
    expect(() => cosinePairLossForward(engine, a, b, labels, labels)).toThrow('cosinePairLossForward: loss has shape [3], expected [1]');
    expect(() => cosinePairLossBackward(engine, a, b, labels, wrong[2], db, 1)).toThrow('cosinePairLossBackward: da has shape [2, 8], expected [3, 8]');
    expect(() => cosinePairLossBackward(engine, a, b, labels, da, a, 1)).toThrow('cosinePairLossBackward: output db shares a buffer with input a');
    engine.release(a, b, labels, loss, da, db, ...wrong);
  });
});
