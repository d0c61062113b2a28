import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import type { RopeConfig } from '../../src/engine/ops/rope-frequencies.ts';
import { ropeInverseFrequencies } from '../../src/engine/ops/rope-frequencies.ts';
import { createRopeTable, ropeBackward, ropeForward, uploadRopePositions } from '../../src/engine/ops/rope.ts';
import { ropeRef } from '../../src/engine/ops/rope.ref.ts';
import { Rng } from '../../src/data/rng.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

const LLAMA3: RopeConfig['scaling'] = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 32 };

async function runRope(engine: Engine, config: RopeConfig, tablePositions: number, positions: number[], heads: number, seed: number) {
  const rows = positions.length;
  const width = heads * config.headDim;
  const data = { x: randomArray(seed, rows * width), dy: randomArray(seed + 1, rows * width) };
  const table = createRopeTable(engine, config, tablePositions);
  const pos = uploadRopePositions(engine, table, positions);
  const x = engine.upload(data.x, [rows, width]);
  const dy = engine.upload(data.dy, [rows, width]);
  const y = engine.alloc([rows, width]);
  const dx = engine.alloc([rows, width]);
  ropeForward(engine, x, pos, table, y, heads);
  ropeBackward(engine, dy, pos, table, dx, heads);
  const got = { y: await engine.readF32(y), dx: await engine.readF32(dx) };
  engine.release(table.cosSin, pos, x, dy, y, dx);
  const invFreq = ropeInverseFrequencies(config);
  // The table's f32 cos/sin carry the only rounding (≤ 6e-8 relative) beyond the products.
  const tol = { atol: 1e-6, rtol: 1e-6 };
  expectClose(got.y, ropeRef(data.x, positions, invFreq, heads), tol, 'y');
  expectClose(got.dx, ropeRef(data.dy, positions, invFreq, heads, true), tol, 'dx');
}

function randomPositions(seed: number, rows: number, below: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: rows }, () => rng.int(below));
}

describe('RoPE', () => {
  it.each([
    [1, 1, 2, undefined],
    [7, 3, 6, undefined],
    [33, 5, 64, undefined],
    [9, 2, 32, LLAMA3],
  ])('forward and backward match the float64 reference, rows=%i heads=%i D=%i scaling=%o', async (rows, heads, headDim, scaling) => {
    const config = { headDim, theta: 500_000, scaling };
    await runRope(await gpuEngine(), config, 4096, randomPositions(rows, rows, 4096), heads, rows + headDim);
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    // 35 rows × 4 heads × 16 pairs = 2240 pairs: 9 workgroups of 256 on a 3×3 grid, the last partly idle.
    await runRope(engine, { headDim: 32, theta: 10_000 }, 64, randomPositions(3, 35, 64), 4, 5);
    engine.destroy();
  });

  it('rejects positions past the table, wrong shapes and in-place use, naming the problem', async () => {
    const engine = await gpuEngine();
    const table = createRopeTable(engine, { headDim: 4, theta: 10_000 }, 8);
    expect(() => uploadRopePositions(engine, table, [0, 8])).toThrow(/position 8 of row 1 is not an integer in \[0, 8\)/);
    expect(() => uploadRopePositions(engine, table, [0.5])).toThrow(/position 0.5 of row 0/);
    const pos = uploadRopePositions(engine, table, [1, 2, 3]);
    const x = engine.alloc([3, 8]);
    const y = engine.alloc([3, 8]);
    const odd = engine.alloc([3, 6]);
    const fewRows = engine.alloc([2, 8]);
    expect(() => ropeForward(engine, odd, pos, table, y, 2)).toThrow(/ropeForward: x has shape \[3, 6\], expected \[\.\.\., heads·headDim\] = \[\.\.\., 8\]/);
    expect(() => ropeForward(engine, fewRows, pos, table, fewRows, 2)).toThrow(/positions has shape \[3\], expected \[2\]/);
    expect(() => ropeForward(engine, x, pos, table, x, 2)).toThrow(/output y shares a buffer with input x/);
    expect(() => ropeBackward(engine, x, pos, table, odd, 2)).toThrow(/ropeBackward: dx has shape \[3, 6\], expected \[3, 8\]/);
    expect(() => ropeForward(engine, x, pos, table, y, 0)).toThrow(/heads must be a positive integer/);
    engine.release(table.cosSin, pos, x, y, odd, fewRows);
  });
});
