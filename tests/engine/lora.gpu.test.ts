import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { dropoutForward } from '../../src/engine/ops/dropout.ts';
import { dropoutMaskRef } from '../../src/engine/ops/dropout.ref.ts';
import { type LoraDropout, loraBackward, loraForward } from '../../src/engine/ops/lora.ts';
import { type LoraDims, loraBackwardRef, loraForwardRef } from '../../src/engine/ops/lora.ref.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { dot, expectBitIdentical, expectClose, expectWithinBound, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

// Tolerance: f32 sums lose precision relative to the sum of |terms|, not to the (possibly cancelled)
// result, so each output is checked against |got − want| ≤ BOUND_RTOL · bound, where bound is the
// reference evaluated on |inputs| (Σ|terms| through both products) plus |initial value|.
// 1e-6 is ~17 f32 ulps of that bound; the worst observed is about 2e-7 · bound.
const BOUND_RTOL = 1e-6;
const SCALE = 2; // alpha / r with alpha = 2r

interface Case {
  dims: LoraDims;
  x: Float32Array;
  a: Float32Array;
  b: Float32Array;
  dy: Float32Array;
  y0: Float32Array;
  da0: Float32Array;
  db0: Float32Array;
  dx0: Float32Array;
}

function makeCase(dims: LoraDims, seed: number): Case {
  const { m, inF, outF, r } = dims;
  return {
    dims,
    x: randomArray(seed, m * inF),
    a: randomArray(seed + 1, r * inF, 1 / Math.sqrt(inF)),
    b: randomArray(seed + 2, outF * r, 1 / Math.sqrt(r)),
    dy: randomArray(seed + 3, m * outF),
    y0: randomArray(seed + 4, m * outF),
    da0: randomArray(seed + 5, r * inF),
    db0: randomArray(seed + 6, outF * r),
    dx0: randomArray(seed + 7, m * inF),
  };
}

interface GpuRun {
  y: Float32Array;
  xa: Float32Array;
  da: Float32Array;
  db: Float32Array;
  dx: Float32Array;
  scratch: Float32Array;
}

/** Forward then `backwardCalls` backward calls, with outputs starting at the case's initial values. */
async function runGpu(engine: Engine, c: Case, dropout: LoraDropout | null, backwardCalls = 1): Promise<GpuRun> {
  const { m, inF, outF, r } = c.dims;
  const x = engine.upload(c.x, [m, inF]);
  const a = engine.upload(c.a, [r, inF]);
  const b = engine.upload(c.b, [outF, r]);
  const dy = engine.upload(c.dy, [m, outF]);
  const y = engine.upload(c.y0, [m, outF]);
  const da = engine.upload(c.da0, [r, inF]);
  const db = engine.upload(c.db0, [outF, r]);
  const dx = engine.upload(c.dx0, [m, inF]);
  const xa = engine.alloc([m, r]);
  const scratch = engine.alloc([m, r]);
  loraForward(engine, x, a, b, y, xa, SCALE, dropout);
  for (let i = 0; i < backwardCalls; i++) loraBackward(engine, x, a, b, xa, dy, da, db, dx, SCALE, dropout, scratch);
  const out: GpuRun = {
    y: await engine.readF32(y),
    xa: await engine.readF32(xa),
    da: await engine.readF32(da),
    db: await engine.readF32(db),
    dx: await engine.readF32(dx),
    scratch: await engine.readF32(scratch),
  };
  engine.release(x, a, b, dy, y, da, db, dx, xa, scratch);
  return out;
}

const plus = (base: ArrayLike<number>, add: ArrayLike<number>, times = 1) => Float64Array.from(base, (v, i) => v + times * add[i]);
const abs = (v: ArrayLike<number>) => Float64Array.from(v, Math.abs);

/** Compare forward and one backward call (outputs start at the case's initial values) with the reference. */
async function expectMatchesReference(c: Case, dropout: LoraDropout | null): Promise<void> {
  const engine = await gpuEngine();
  const got = await runGpu(engine, c, dropout);
  const fwd = loraForwardRef(c.x, c.a, c.b, c.dims, SCALE, dropout);
  const bwd = loraBackwardRef(c.x, c.a, c.b, c.dy, c.dims, SCALE, dropout);
  const fwdBound = loraForwardRef(abs(c.x), abs(c.a), abs(c.b), c.dims, SCALE, dropout);
  const bwdBound = loraBackwardRef(abs(c.x), abs(c.a), abs(c.b), abs(c.dy), c.dims, SCALE, dropout);
  expectWithinBound(got.xa, fwd.xa, fwdBound.xa, BOUND_RTOL, 'xa');
  expectWithinBound(got.y, plus(c.y0, fwd.delta), plus(abs(c.y0), fwdBound.delta), BOUND_RTOL, 'y');
  expectWithinBound(got.scratch, bwd.scratch, bwdBound.scratch, BOUND_RTOL, 'scratch');
  expectWithinBound(got.da, plus(c.da0, bwd.da), plus(abs(c.da0), bwdBound.da), BOUND_RTOL, 'da');
  expectWithinBound(got.db, plus(c.db0, bwd.db), plus(abs(c.db0), bwdBound.db), BOUND_RTOL, 'db');
  expectWithinBound(got.dx, plus(c.dx0, bwd.dx), plus(abs(c.dx0), bwdBound.dx), BOUND_RTOL, 'dx');
}

const SHAPES: [number, number, number, number][] = [];
for (const m of [1, 7, 33, 129])
  for (const [inF, outF] of [
    [72, 200],
    [200, 72],
  ])
    for (const r of [1, 4, 16]) SHAPES.push([m, inF, outF, r]);

describe('LoRA forward/backward', () => {
  it.each(SHAPES)('matches the reference without dropout: M=%i in=%i out=%i r=%i', async (m, inF, outF, r) => {
    await expectMatchesReference(makeCase({ m, inF, outF, r }, m * 1000 + inF + r), null);
  });

  it.each([
    [1, 72, 200, 4],
    [33, 200, 72, 16],
    [129, 72, 200, 1],
  ])('matches the reference with dropout p=0.1: M=%i in=%i out=%i r=%i', async (m, inF, outF, r) => {
    await expectMatchesReference(makeCase({ m, inF, outF, r }, 77 + m), { p: 0.1, seed: 4242 });
  });

  it('with an index offset, matches the reference whose mask is drawn at that offset', async () => {
    await expectMatchesReference(makeCase({ m: 33, inF: 72, outF: 200, r: 4 }, 12), { p: 0.2, seed: 4242, indexOffset: 5 * 72 });
  });

  it.each([
    [33, 72, 200, 64],
    [7, 200, 72, 80], // r over one 64-column tile
    [129, 72, 72, 3],
    [7, 1030, 72, 4], // xa and dy·B split along k=in (4 splits), summed by lora_narrow_finish
    [600, 72, 200, 16], // dA and dB split along k=M (2 splits)
  ])('matches the reference at other ranks and split reductions: M=%i in=%i out=%i r=%i', async (m, inF, outF, r) => {
    await expectMatchesReference(makeCase({ m, inF, outF, r }, 5 + r), { p: 0.25, seed: 9 });
  });

  it('reference backward matches central finite differences (with and without dropout)', () => {
    const dims = { m: 3, inF: 5, outF: 4, r: 2 };
    const c = makeCase(dims, 31);
    for (const dropout of [null, { p: 0.3, seed: 8 }]) {
      const grads = loraBackwardRef(c.x, c.a, c.b, c.dy, dims, SCALE, dropout);
      const loss = (x: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>) =>
        dot(loraForwardRef(x, a, b, dims, SCALE, dropout).delta, c.dy);
      const tol = { atol: 1e-7, rtol: 1e-6 };
      expectClose(grads.dx, finiteDifferenceGrad((v) => loss(v, c.a, c.b), c.x), tol, 'dx');
      expectClose(grads.da, finiteDifferenceGrad((v) => loss(c.x, v, c.b), c.a), tol, 'da');
      expectClose(grads.db, finiteDifferenceGrad((v) => loss(c.x, c.a, v), c.b), tol, 'db');
    }
  });

  it('gradients accumulate across backward calls (gradient accumulation)', async () => {
    const engine = await gpuEngine();
    const c = makeCase({ m: 33, inF: 72, outF: 200, r: 4 }, 3);
    const dropout = { p: 0.1, seed: 3 };
    const got = await runGpu(engine, c, dropout, 2);
    const bwd = loraBackwardRef(c.x, c.a, c.b, c.dy, c.dims, SCALE, dropout);
    const bound = loraBackwardRef(abs(c.x), abs(c.a), abs(c.b), abs(c.dy), c.dims, SCALE, dropout);
    expectWithinBound(got.da, plus(c.da0, bwd.da, 2), plus(abs(c.da0), bound.da, 2), BOUND_RTOL, 'da after two calls');
    expectWithinBound(got.db, plus(c.db0, bwd.db, 2), plus(abs(c.db0), bound.db, 2), BOUND_RTOL, 'db after two calls');
    expectWithinBound(got.dx, plus(c.dx0, bwd.dx, 2), plus(abs(c.dx0), bound.dx, 2), BOUND_RTOL, 'dx after two calls');
  });

  it('dropout uses exactly the CPU mask: xa and dA equal runs on dropoutForward(x), dx is zero where dropped', async () => {
    const engine = await gpuEngine();
    const dims = { m: 33, inF: 200, outF: 72, r: 16 };
    const c = makeCase(dims, 12);
    const dropout = { p: 0.1, seed: 777 };
    const x = engine.upload(c.x, [dims.m, dims.inF]);
    const dropped = engine.alloc([dims.m, dims.inF]);
    dropoutForward(engine, x, dropped, dropout.p, dropout.seed);
    const droppedCase = { ...c, x: await engine.readF32(dropped) };
    engine.release(x, dropped);
    const masked = await runGpu(engine, { ...c, dx0: new Float32Array(c.dx0.length) }, dropout);
    const premasked = await runGpu(engine, droppedCase, null);
    expectBitIdentical(masked.xa, premasked.xa, 'xa');
    expectBitIdentical(masked.da, premasked.da, 'da');
    const mask = dropoutMaskRef(c.x.length, dropout.p, dropout.seed);
    const wrong = masked.dx.findIndex((v, i) => (v !== 0) !== (mask[i] === 1));
    expect(wrong, 'first dx element whose zero pattern disagrees with the CPU mask').toBe(-1);
  });

  it('same seed gives bit-identical results (determinism); another seed another mask', async () => {
    const engine = await gpuEngine();
    const c = makeCase({ m: 129, inF: 72, outF: 200, r: 16 }, 50);
    const first = await runGpu(engine, c, { p: 0.1, seed: 1 });
    const second = await runGpu(engine, c, { p: 0.1, seed: 1 });
    for (const key of ['y', 'xa', 'da', 'db', 'dx', 'scratch'] as const) expectBitIdentical(first[key], second[key], key);
    const other = await runGpu(engine, { ...c, dx0: new Float32Array(c.dx0.length) }, { p: 0.1, seed: 2 });
    const zeroFirst = (await runGpu(engine, { ...c, dx0: new Float32Array(c.dx0.length) }, { p: 0.1, seed: 1 })).dx;
    const differing = zeroFirst.reduce((s, v, i) => s + ((v === 0) !== (other.dx[i] === 0) ? 1 : 0), 0);
    expect(differing).toBeGreaterThan(0.1 * zeroFirst.length); // expected 18%
  });

  it('p = 0 dropout equals no dropout', async () => {
    const engine = await gpuEngine();
    const c = makeCase({ m: 7, inF: 72, outF: 200, r: 4 }, 8);
    const none = await runGpu(engine, c, null);
    const zero = await runGpu(engine, c, { p: 0, seed: 5 });
    for (const key of ['y', 'xa', 'da', 'db', 'dx'] as const) expectBitIdentical(none[key], zero[key], key);
  });

  it('rejects mismatched shapes, naming the tensor', async () => {
    const engine = await gpuEngine();
    const t = (...shape: number[]): Tensor => engine.alloc(shape);
    const [m, inF, outF, r] = [7, 72, 200, 4];
    const x = t(m, inF), a = t(r, inF), b = t(outF, r), y = t(m, outF), xa = t(m, r);
    const dy = t(m, outF), da = t(r, inF), db = t(outF, r), dx = t(m, inF), scratch = t(m, r);
    const fwd = (over: Partial<Record<string, Tensor>>, scale = SCALE, dropout: LoraDropout | null = null) => () =>
      loraForward(engine, over.x ?? x, over.a ?? a, over.b ?? b, over.y ?? y, over.xa ?? xa, scale, dropout);
    const bwd = (over: Partial<Record<string, Tensor | null>>) => () =>
      loraBackward(engine, x, a, b, over.xa ?? xa, over.dy ?? dy, over.da ?? da, over.db ?? db, over.dx === undefined ? dx : over.dx, SCALE, null, over.scratch ?? scratch);
    const bad: Tensor[] = [];
    const keep = (tensor: Tensor) => (bad.push(tensor), tensor);
    expect(fwd({ a: keep(t(r, 70)) })).toThrow('loraForward: a has shape [4, 70], expected [4, 72]');
    expect(fwd({ b: keep(t(outF, 5)) })).toThrow('loraForward: b has shape [200, 5], expected [200, 4]');
    expect(fwd({ y: keep(t(m, 199)) })).toThrow('loraForward: y has shape [7, 199], expected [7, 200]');
    expect(fwd({ xa: keep(t(m + 1, r)) })).toThrow('loraForward: xa has shape [8, 4], expected [7, 4]');
    expect(fwd({ x: keep(t(m * inF)) })).toThrow('loraForward: x must be 2-D, got shape [504]');
    expect(fwd({ y: x })).toThrow(/loraForward: y has shape \[7, 72\]/);
    expect(fwd({ xa: { ...xa, buffer: y.buffer } })).toThrow('loraForward: outputs y and xa share one buffer');
    expect(fwd({}, Number.NaN)).toThrow('loraForward: scale must be a finite number, got NaN');
    expect(fwd({}, SCALE, { p: 1.5, seed: 1 })).toThrow('loraForward: dropout p must be in [0, 1), got 1.5');
    expect(bwd({ dy: keep(t(m, inF)) })).toThrow('loraBackward: dy has shape [7, 72], expected [7, 200]');
    expect(bwd({ da: keep(t(inF, r)) })).toThrow('loraBackward: da has shape [72, 4], expected [4, 72]');
    expect(bwd({ db: keep(t(r, outF)) })).toThrow('loraBackward: db has shape [4, 200], expected [200, 4]');
    expect(bwd({ dx: keep(t(m, outF)) })).toThrow('loraBackward: dx has shape [7, 200], expected [7, 72]');
    expect(bwd({ scratch: keep(t(m, r + 1)) })).toThrow('loraBackward: scratch has shape [7, 5], expected [7, 4]');
    expect(bwd({ xa: keep(t(m, r, 1)) })).toThrow('loraBackward: xa has shape [7, 4, 1], expected [7, 4]');
    expect(bwd({ scratch: xa })).toThrow('loraBackward: output scratch shares a buffer with input xa; it cannot be computed in place');
    expect(bwd({ dx: null })).not.toThrow();
    engine.release(x, a, b, y, xa, dy, da, db, dx, scratch, ...bad);
  });
});
