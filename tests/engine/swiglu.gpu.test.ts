import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { swigluBackward, swigluForward, swigluFusedBackward, swigluFusedForward } from '../../src/engine/ops/swiglu.ts';
import { interleaveGateUp, swigluBackwardRef, swigluForwardRef } from '../../src/engine/ops/swiglu.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

/** Gates spread wide (σ = 4, some past ±10) so both tails of the sigmoid are exercised. */
function inputs(rows: number, inter: number, seed: number) {
  return { gate: randomArray(seed, rows * inter, 4), up: randomArray(seed + 1, rows * inter), dOut: randomArray(seed + 2, rows * inter) };
}

async function runSeparate(engine: Engine, rows: number, inter: number, data: ReturnType<typeof inputs>) {
  const shape = [rows, inter];
  const [gate, up, dOut] = [data.gate, data.up, data.dOut].map((v) => engine.upload(v, shape));
  const [out, dGate, dUp] = [0, 1, 2].map(() => engine.alloc(shape));
  swigluForward(engine, gate, up, out);
  swigluBackward(engine, gate, up, dOut, dGate, dUp);
  const got = { out: await engine.readF32(out), dGate: await engine.readF32(dGate), dUp: await engine.readF32(dUp) };
  engine.release(gate, up, dOut, out, dGate, dUp);
  return got;
}

async function runFused(engine: Engine, rows: number, inter: number, data: ReturnType<typeof inputs>) {
  const gateUp = engine.upload(Float32Array.from(interleaveGateUp(data.gate, data.up, inter)), [rows, 2 * inter]);
  const dOut = engine.upload(data.dOut, [rows, inter]);
  const out = engine.alloc([rows, inter]);
  const dGateUp = engine.alloc([rows, 2 * inter]);
  swigluFusedForward(engine, gateUp, out);
  swigluFusedBackward(engine, gateUp, dOut, dGateUp);
  const got = { out: await engine.readF32(out), dGateUp: await engine.readF32(dGateUp) };
  engine.release(gateUp, dOut, out, dGateUp);
  return got;
}

// f32 exp and division: a few ulps of each value.
const TOL = { atol: 1e-6, rtol: 2e-6 };

async function expectBothLayoutsMatch(engine: Engine, rows: number, inter: number, seed: number) {
  const data = inputs(rows, inter, seed);
  const out = swigluForwardRef(data.gate, data.up);
  const back = swigluBackwardRef(data.gate, data.up, data.dOut);
  const separate = await runSeparate(engine, rows, inter, data);
  expectClose(separate.out, out, TOL, 'out');
  expectClose(separate.dGate, back.dGate, TOL, 'dGate');
  expectClose(separate.dUp, back.dUp, TOL, 'dUp');
  const fused = await runFused(engine, rows, inter, data);
  expectClose(fused.out, out, TOL, 'fused out');
  expectClose(fused.dGateUp, interleaveGateUp(back.dGate, back.dUp, inter), TOL, 'fused dGateUp');
}

describe('SwiGLU', () => {
  it.each([
    [1, 1],
    [3, 5],
    [17, 96],
    [2, 1001],
  ])('separate and fused gate_up layouts match the float64 reference, rows=%i inter=%i', async (rows, inter) => {
    await expectBothLayoutsMatch(await gpuEngine(), rows, inter, rows * 7 + inter);
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    await expectBothLayoutsMatch(engine, 23, 100, 4); // 2300 elements: 9 workgroups on a 3×3 grid
    engine.destroy();
  });

  it('rejects mismatched shapes, an odd fused width and in-place use, naming the tensor', async () => {
    const engine = await gpuEngine();
    const a = engine.alloc([3, 4]);
    const b = engine.alloc([3, 4]);
    const wide = engine.alloc([3, 8]);
    const odd = engine.alloc([3, 5]);
    expect(() => swigluForward(engine, a, odd, b)).toThrow(/swigluForward: up has shape \[3, 5\], expected \[3, 4\]/);
    expect(() => swigluForward(engine, a, b, a)).toThrow(/output out shares a buffer with input gate/);
    expect(() => swigluBackward(engine, a, b, a, wide, b)).toThrow(/swigluBackward: dGate has shape \[3, 8\]/);
    expect(() => swigluFusedForward(engine, odd, a)).toThrow(/swigluFusedForward: gateUp has 5 columns; the fused gate_up layout needs an even count/);
    expect(() => swigluFusedForward(engine, wide, odd)).toThrow(/out has shape \[3, 5\], expected \[3, 4\]/);
    expect(() => swigluFusedBackward(engine, wide, a, wide)).toThrow(/output dGateUp shares a buffer with input gateUp/);
    engine.release(a, b, wide, odd);
  });
});
