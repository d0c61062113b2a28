import { describe, expect, it } from 'vitest';
import { add } from '../../src/engine/ops/elementwise.ts';
import { addRef } from '../../src/engine/ops/elementwise.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectBitIdentical, expectClose, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

// f32 addition is correctly rounded, so the GPU must equal the float64 sum rounded to f32 exactly.
const exactly = { atol: 0, rtol: 0 };
const roundedToF32 = (v: Float64Array) => Float32Array.from(v);

describe('add', () => {
  it.each([1, 7, 33, 129, 70_001])('out = a + b matches the reference exactly, n=%i', async (n) => {
    const engine = await gpuEngine();
    const as = randomArray(n, n);
    const bs = randomArray(n + 7, n, 100);
    const a = engine.upload(as, [n]);
    const b = engine.upload(bs, [n]);
    const out = engine.alloc([n]);
    add(engine, a, b, out);
    expectClose(await engine.readF32(out), roundedToF32(addRef(as, bs)), exactly, 'out');
    engine.release(a, b, out);
  });

  it('adds in place when out is a or b', async () => {
    const engine = await gpuEngine();
    const as = randomArray(1, 3 * 33);
    const bs = randomArray(2, 3 * 33);
    const expected = roundedToF32(addRef(as, bs));
    const a = engine.upload(as, [3, 33]);
    const b = engine.upload(bs, [3, 33]);
    add(engine, a, b, a);
    expectClose(await engine.readF32(a), expected, exactly, 'out = a');
    engine.write(a, as);
    add(engine, a, b, b);
    expectClose(await engine.readF32(b), expected, exactly, 'out = b');
    engine.release(a, b);
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    const n = 256 * 4 + 1; // 5 workgroups: a 3x2 grid with one idle workgroup
    const as = randomArray(3, n);
    const bs = randomArray(4, n);
    const a = engine.upload(as, [n]);
    const b = engine.upload(bs, [n]);
    const out = engine.alloc([n]);
    add(engine, a, b, out);
    expectClose(await engine.readF32(out), roundedToF32(addRef(as, bs)), exactly, 'out');
    add(engine, a, b, a);
    expectClose(await engine.readF32(a), roundedToF32(addRef(as, bs)), exactly, 'out = a');
    engine.destroy();
  });

  it('is deterministic and rejects mismatched shapes, naming the tensor', async () => {
    const engine = await gpuEngine();
    const a = engine.upload(randomArray(5, 24), [4, 6]);
    const b = engine.upload(randomArray(6, 24), [4, 6]);
    const out = engine.alloc([4, 6]);
    add(engine, a, b, out);
    const first = await engine.readF32(out);
    add(engine, a, b, out);
    expectBitIdentical(first, await engine.readF32(out), 'out');
    const wrong = engine.alloc([6, 4]);
    const ids = engine.alloc([4, 6], 'u32');
    expect(() => add(engine, a, wrong, out)).toThrow(/add: b has shape \[6, 4\], expected \[4, 6\]/);
    expect(() => add(engine, a, b, wrong)).toThrow(/add: out has shape \[6, 4\], expected \[4, 6\]/);
    expect(() => add(engine, ids, b, out)).toThrow(/add: a must be f32, got u32/);
    expect(() => add(engine, a, a, a)).toThrow(/a, b and out are all the same tensor/);
    engine.release(a, b, out, wrong, ids);
  });
});
