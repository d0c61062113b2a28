import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { l2NormalizeBackward, l2NormalizeForward } from '../../src/engine/ops/l2norm.ts';
import { l2NormalizeBackwardRef, l2NormalizeForwardRef } from '../../src/engine/ops/l2norm.ref.ts';
import { rowsPerWorkgroup } from '../../src/engine/ops/reductions.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { layerOpsFixture } from '../helpers/layer-ops-fixture.ts';
import { dot, expectBitIdentical, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

function inputs(rows: number, width: number, seed: number) {
  return { x: randomArray(seed, rows * width, 3), dy: randomArray(seed + 1, rows * width) };
}

async function runL2Normalize(engine: Engine, rows: number, width: number, data: ReturnType<typeof inputs>) {
  const x = engine.upload(data.x, [rows, width]);
  const dy = engine.upload(data.dy, [rows, width]);
  const y = engine.alloc([rows, width]);
  const norms = engine.alloc([rows]);
  const dx = engine.alloc([rows, width]);
  l2NormalizeForward(engine, x, y, norms);
  l2NormalizeBackward(engine, y, norms, dy, dx);
  const out = { y: await engine.readF32(y), norms: await engine.readF32(norms), dx: await engine.readF32(dx) };
  engine.release(x, dy, y, norms, dx);
  return out;
}

/**
 * Tolerances: norms are f32 sums of ≤ 1025 squares (relative 1e-6; largest error seen 1.1e-7);
 * y has unit norm (5e-7 absolute; seen 1.4e-7); dx = (dy − y(y·dy))/||x|| scales with 1/||x||,
 * so it is compared multiplied by the norm (2e-6; seen 6.4e-7).
 */
function expectMatchesReference(got: Awaited<ReturnType<typeof runL2Normalize>>, rows: number, width: number, data: ReturnType<typeof inputs>) {
  const ref = l2NormalizeForwardRef(data.x, width);
  const dx = l2NormalizeBackwardRef(ref.y, ref.norms, data.dy, width);
  const timesNorm = (v: ArrayLike<number>) => Float64Array.from(v, (value, i) => value * Math.max(ref.norms[Math.floor(i / width)], 1e-12));
  expectClose(got.norms, ref.norms, { atol: 1e-30, rtol: 1e-6 }, 'norms');
  expectClose(got.y, ref.y, { atol: 5e-7, rtol: 1e-6 }, 'y');
  expectClose(timesNorm(got.dx), timesNorm(dx), { atol: 2e-6, rtol: 1e-6 }, 'dx·||x||');
}

describe('L2 normalisation', () => {
  it.each([
    [1, 1],
    [7, 72],
    [33, 200],
    [129, 7],
    [5, 1025],
    [70_001, 3],
  ])('forward and backward match the float64 reference, rows=%i width=%i', async (rows, width) => {
    const data = inputs(rows, width, rows + width);
    expectMatchesReference(await runL2Normalize(await gpuEngine(), rows, width, data), rows, width, data);
  });

  it('clamps norms below 1e-12 as torch.nn.functional.normalize does (zero and tiny rows)', async () => {
    const rows = 3;
    const width = 9;
    const data = inputs(rows, width, 4);
    data.x.fill(0, 0, width); // zero row: y = 0, dx = dy / 1e-12
    for (let j = width; j < 2 * width; j++) data.x[j] = 1e-14 * (j % 3 - 1); // norm ~5e-14 < 1e-12
    const got = await runL2Normalize(await gpuEngine(), rows, width, data);
    expectMatchesReference(got, rows, width, data);
    expect(got.y.subarray(0, width).every((v) => v === 0)).toBe(true);
    expectClose(got.dx.subarray(0, 2 * width), data.dy.subarray(0, 2 * width).map((v) => v / 1e-12), { atol: 0, rtol: 1e-6 }, 'clamped dx');
  });

  it.each(layerOpsFixture.l2norm)('float64 reference matches torch F.normalize (committed fixture; zero and tiny rows), $rows x $width', (c) => {
    const ref = l2NormalizeForwardRef(c.x, c.width);
    const tol = { atol: 1e-12, rtol: 1e-12 };
    expectClose(ref.y, c.y, tol, 'y');
    expectClose(l2NormalizeBackwardRef(ref.y, ref.norms, c.dy, c.width), c.dx, tol, 'dx');
  });

  it('float64 backward matches central finite differences', () => {
    const rows = 4;
    const width = 7;
    const data = inputs(rows, width, 10);
    const ref = l2NormalizeForwardRef(data.x, width);
    const fd = finiteDifferenceGrad((x) => dot(l2NormalizeForwardRef(x, width).y, data.dy), data.x);
    expectClose(l2NormalizeBackwardRef(ref.y, ref.norms, data.dy, width), fd, { atol: 1e-8, rtol: 1e-6 }, 'dx');
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    const rows = rowsPerWorkgroup(engine) * 4 + 1; // 5 workgroups (16 rows, or 1 with subgroups): a 3x2 grid with one idle workgroup
    const data = inputs(rows, 33, 12);
    expectMatchesReference(await runL2Normalize(engine, rows, 33, data), rows, 33, data);
    engine.destroy();
  });

  it('is deterministic: two runs are bit-identical', async () => {
    const data = inputs(100, 200, 3);
    const first = await runL2Normalize(await gpuEngine(), 100, 200, data);
    const second = await runL2Normalize(await gpuEngine(), 100, 200, data);
    for (const key of ['y', 'norms', 'dx'] as const) expectBitIdentical(first[key], second[key], key);
  });

  it('rejects bad shapes and in-place use, naming the tensor', async () => {
    const engine = await gpuEngine();
    const x = engine.alloc([4, 6]);
    const y = engine.alloc([4, 6]);
    const norms = engine.alloc([4]);
    const wrongNorms = engine.alloc([6]);
    const wrongRows = engine.alloc([6, 4]);
    expect(() => l2NormalizeForward(engine, x, wrongRows, norms)).toThrow(/l2NormalizeForward: y has shape \[6, 4\], expected \[4, 6\]/);
    expect(() => l2NormalizeForward(engine, x, y, wrongNorms)).toThrow(/norms has shape \[6\], expected \[4\]/);
    expect(() => l2NormalizeForward(engine, x, x, norms)).toThrow(/output y shares a buffer with input x/);
    expect(() => l2NormalizeForward(engine, norms, y, norms)).toThrow(/x must be \[rows, width\], got shape \[4\]/);
    expect(() => l2NormalizeBackward(engine, y, norms, x, wrongRows)).toThrow(/l2NormalizeBackward: dx has shape \[6, 4\], expected \[4, 6\]/);
    expect(() => l2NormalizeBackward(engine, y, norms, x, x)).toThrow(/output dx shares a buffer with input dy/);
    engine.release(x, y, norms, wrongNorms, wrongRows);
  });
});
