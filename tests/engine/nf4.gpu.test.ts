import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { ShapeError } from '../../src/engine/errors.ts';
import type { Activation } from '../../src/engine/ops/matmul.ts';
import { matmulRef } from '../../src/engine/ops/matmul.ref.ts';
import { type Nf4Weight, nf4Dequantize, nf4Matmul, nf4MatmulInputGrad, nf4Quantize, readNf4, releaseNf4, uploadNf4 } from '../../src/engine/ops/nf4.ts';
import {
  DYNAMIC_MAP,
  NF4_CODE,
  NF4_THRESHOLDS,
  type Nf4Host,
  bytesToWords,
  dequantizeAbsmaxRef,
  nf4DequantizeRef,
  nf4QuantizeRef,
  packNibbles,
  unpackNibbles,
  wordsToBytes,
} from '../../src/engine/ops/nf4.ref.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { FIXTURES, readSafetensorsFile } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectBitIdentical, expectClose, expectWithinBound, randomArray } from '../helpers/numeric.ts';

// The fixture (tests/fixtures/nf4, made by make_nf4_fixture.py from bitsandbytes' formulas) fixes
// the codes bit for bit; dequantised values are single f32 products, compared to 1e-7 relative.
const NF4_DIR = join(FIXTURES, 'nf4');
const VALUE_TOL = { atol: 0, rtol: 1e-7 };
// Matmuls against the float64 product with the dequantised weight: as in matmul.gpu.test.ts,
// |got − want| ≤ BOUND_RTOL · (Σ|terms| + |bias| + |out_old|).
const BOUND_RTOL = 2e-6;

interface FixtureCase {
  name: string;
  shape: [number, number];
  weight: Float32Array;
  packed: Uint8Array;
  absmax: Float32Array;
  dequant: Float32Array;
  dqCodes: Uint8Array;
  dqScales: Float32Array;
  dqOffset: number;
  dqAbsmax: Float32Array;
  dqDequant: Float32Array;
}

const index = JSON.parse(readFileSync(join(NF4_DIR, 'index.json'), 'utf8')) as { cases: { name: string; file: string; shape: [number, number] }[] };
const tables = readSafetensorsFile(join(NF4_DIR, 'tables.safetensors'));
const fixtureCases: FixtureCase[] = index.cases.map((c) => {
  const t = readSafetensorsFile(join(NF4_DIR, c.file));
  const f32 = (name: string) => Float32Array.from(t.get(name)!.data);
  const u8 = (name: string) => Uint8Array.from(t.get(name)!.data);
  return {
    name: c.name,
    shape: c.shape,
    weight: f32('weight'),
    packed: u8('packed'),
    absmax: f32('absmax'),
    dequant: f32('dequant'),
    dqCodes: u8('dq_absmax_codes'),
    dqScales: f32('dq_absmax_scales'),
    dqOffset: f32('dq_absmax_offset')[0],
    dqAbsmax: f32('dq_absmax'),
    dqDequant: f32('dq_dequant'),
  };
});

function expectBytesEqual(got: Uint8Array, want: Uint8Array, label: string): void {
  expect(got.length, `${label} length`).toBe(want.length);
  const i = got.findIndex((v, j) => v !== want[j]);
  if (i >= 0) expect.fail(`${label}: byte ${i} is 0x${got[i].toString(16)}, expected 0x${want[i].toString(16)}`);
}

describe('NF4 format tables', () => {
  it('NF4 values, thresholds and the dynamic map equal bitsandbytes’ (fixture tables, bit for bit)', () => {
    expectBitIdentical(NF4_CODE, Float32Array.from(tables.get('nf4_code')!.data), 'nf4_code');
    expectBitIdentical(NF4_THRESHOLDS, Float32Array.from(tables.get('nf4_thresholds')!.data), 'thresholds');
    expectBitIdentical(DYNAMIC_MAP, Float32Array.from(tables.get('dynamic_map_signed')!.data), 'dynamic map');
  });

  it('the dynamic map is create_dynamic_map(signed=True) to within 1.5 float32 ulps', () => {
    // Exact-arithmetic formula: for exponent i = 0..6, the 2^i midpoints of linspace(0.1, 1, 2^i + 1)
    // scaled by ±10^(i−6), plus 0 and 1.
    const formula = [0, 1];
    for (let i = 0; i < 7; i++) {
      const n = 2 ** i + 1;
      for (let j = 0; j + 1 < n; j++) {
        const mean = (0.1 + (0.9 * j) / (n - 1) + 0.1 + (0.9 * (j + 1)) / (n - 1)) / 2;
        formula.push(10 ** (i - 6) * mean, -(10 ** (i - 6)) * mean);
      }
    }
    formula.sort((a, b) => a - b);
    // torch's float32 arithmetic leaves entries up to one ulp from the correctly rounded value, which
    // is itself within half an ulp (≤ 2⁻²⁴ relative) of the exact one.
    expectClose(DYNAMIC_MAP, formula, { atol: 0, rtol: 1.5 * 2 ** -23 }, 'dynamic map vs formula');
  });

  it('byte packing: element 2i in the high nibble, u32 words little-endian', () => {
    const codes = [1, 2, 3, 4, 5];
    const bytes = packNibbles(codes, 7);
    expect([...bytes]).toEqual([0x12, 0x34, 0x57]);
    expect([...unpackNibbles(bytes, 5)]).toEqual(codes);
    const words = bytesToWords(bytes, 0x77);
    expect([...words]).toEqual([0x77573412]);
    expect([...wordsToBytes(words, 3)]).toEqual([0x12, 0x34, 0x57]);
  });
});

describe.each(fixtureCases)('NF4 fixture $name $shape', (c) => {
  it('the reference reproduces the fixture bit for bit', () => {
    const q = nf4QuantizeRef(c.weight);
    expectBytesEqual(q.packed, c.packed, 'packed');
    expectBitIdentical(q.absmax, c.absmax, 'absmax');
    expectBitIdentical(nf4DequantizeRef(q), c.dequant, 'dequant');
    const dq = nf4QuantizeRef(c.weight, { doubleQuant: true, offset: c.dqOffset });
    expectBytesEqual(dq.doubleQuant!.codes, c.dqCodes, 'double-quant codes');
    expectBitIdentical(dq.doubleQuant!.absmaxScale, c.dqScales, 'double-quant scales');
    expectBitIdentical(dq.absmax, c.dqAbsmax, 'dequantised absmax');
    expectBitIdentical(nf4DequantizeRef(dq), c.dqDequant, 'dequant with double quant');
  });

  it('GPU quantise: packed codes and absmax bit for bit; GPU dequantise to 1e-7', async () => {
    const engine = await gpuEngine();
    const w = engine.upload(c.weight, c.shape);
    const q = await nf4Quantize(engine, w);
    const host = await readNf4(engine, q);
    expectBytesEqual(host.packed, c.packed, 'packed');
    expectBitIdentical(host.absmax, c.absmax, 'absmax');
    const out = engine.alloc(c.shape);
    nf4Dequantize(engine, q, out);
    expectClose(await engine.readF32(out), c.dequant, VALUE_TOL, 'dequant');
    engine.release(w, out);
    releaseNf4(engine, q);
  });

  it('GPU double quantisation: offset within 2 ulps, codes bit for bit, scales and dequantise as the reference', async () => {
    const engine = await gpuEngine();
    const w = engine.upload(c.weight, c.shape);
    const q = await nf4Quantize(engine, w, { doubleQuant: true });
    // The GPU sums absmax in another order than torch's mean: allow 2 ulps.
    const offset = q.doubleQuant!.offset;
    expect(Math.abs(offset - c.dqOffset)).toBeLessThanOrEqual(2 * 2 ** -23 * Math.abs(c.dqOffset));
    const host = await readNf4(engine, q);
    expectBytesEqual(host.packed, c.packed, 'packed');
    expectBytesEqual(host.doubleQuant!.codes, c.dqCodes, 'double-quant codes');
    // Scales and dequantised values depend on the offset: compare with the reference at the GPU's offset.
    const ref = nf4QuantizeRef(c.weight, { doubleQuant: true, offset });
    expectBitIdentical(host.doubleQuant!.absmaxScale, ref.doubleQuant!.absmaxScale, 'double-quant scales');
    const out = engine.alloc(c.shape);
    nf4Dequantize(engine, q, out);
    expectClose(await engine.readF32(out), nf4DequantizeRef(ref), VALUE_TOL, 'dequant with double quant');
    engine.release(w, out);
    releaseNf4(engine, q);
  });

  it('bitsandbytes arrays uploaded as they are dequantise to the fixture values', async () => {
    const engine = await gpuEngine();
    const n = c.weight.length;
    const plain: Nf4Host = { numel: n, packed: c.packed, absmax: c.absmax, doubleQuant: null };
    const dqArrays = { codes: c.dqCodes, absmaxScale: c.dqScales, offset: c.dqOffset };
    const nested: Nf4Host = { numel: n, packed: c.packed, absmax: dequantizeAbsmaxRef(dqArrays), doubleQuant: dqArrays };
    for (const [host, want, label] of [
      [plain, c.dequant, 'plain'],
      [nested, c.dqDequant, 'double quant'],
    ] as const) {
      const q = uploadNf4(engine, c.shape, host);
      const out = engine.alloc(c.shape);
      nf4Dequantize(engine, q, out);
      expectClose(await engine.readF32(out), want, VALUE_TOL, label);
      engine.release(out);
      releaseNf4(engine, q);
    }
  });
});

interface ProductCase {
  rows: number;
  outF: number;
  inF: number;
  doubleQuant: boolean;
  bias?: boolean;
  activation?: Activation;
  accumulate?: boolean;
}

const abs = (x: ArrayLike<number>) => Float64Array.from(x, Math.abs);

/** Quantise on the GPU, check y = x·Wᵀ and dx = dy·W against float64 products with the dequantised W. */
async function checkProducts(c: ProductCase, seed: number): Promise<void> {
  const engine = await gpuEngine();
  const ws = randomArray(seed, c.outF * c.inF, 0.05);
  const xs = randomArray(seed + 1, c.rows * c.inF);
  const dys = randomArray(seed + 2, c.rows * c.outF);
  const biasValues = c.bias ? randomArray(seed + 3, c.outF) : undefined;
  const y0 = randomArray(seed + 4, c.rows * c.outF);
  const dx0 = randomArray(seed + 5, c.rows * c.inF);
  const w = engine.upload(ws, [c.outF, c.inF]);
  const q = await nf4Quantize(engine, w, { doubleQuant: c.doubleQuant });
  engine.release(w);
  const wq = nf4DequantizeRef(await readNf4(engine, q));
  const x = engine.upload(xs, [c.rows, c.inF]);
  const dy = engine.upload(dys, [c.rows, c.outF]);
  const y = engine.upload(y0, [c.rows, c.outF]);
  const dx = engine.upload(dx0, [c.rows, c.inF]);
  const bias = biasValues ? engine.upload(biasValues, [c.outF]) : undefined;
  nf4Matmul(engine, x, q, y, { bias, activation: c.activation, accumulate: c.accumulate });
  nf4MatmulInputGrad(engine, dy, q, dx, { accumulate: c.accumulate });
  const fwd = { batch: 1, M: c.rows, N: c.outF, K: c.inF };
  const bwd = { batch: 1, M: c.rows, N: c.inF, K: c.outF };
  const acc = (v: Float32Array) => (c.accumulate ? v : undefined);
  expectWithinBound(
    await engine.readF32(y),
    matmulRef(xs, wq, fwd, { transB: true, bias: biasValues, activation: c.activation, accumulate: acc(y0) }),
    matmulRef(abs(xs), abs(wq), fwd, { transB: true, bias: biasValues && abs(biasValues), accumulate: c.accumulate ? abs(y0) : undefined }),
    BOUND_RTOL,
    'y = x·Wᵀ',
  );
  expectWithinBound(
    await engine.readF32(dx),
    matmulRef(dys, wq, bwd, { accumulate: acc(dx0) }),
    matmulRef(abs(dys), abs(wq), bwd, { accumulate: c.accumulate ? abs(dx0) : undefined }),
    BOUND_RTOL,
    'dx = dy·W',
  );
  engine.release(x, dy, y, dx, bias);
  releaseNf4(engine, q);
}

describe('NF4 matmuls (decoded in the loop)', () => {
  it.each([
    { rows: 1, outF: 1, inF: 1, doubleQuant: false },
    { rows: 7, outF: 33, inF: 129, doubleQuant: false },
    { rows: 33, outF: 7, inF: 200, doubleQuant: true },
    { rows: 129, outF: 70, inF: 33, doubleQuant: true, bias: true },
    { rows: 65, outF: 129, inF: 64, doubleQuant: false, bias: true, activation: 'gelu' as const },
    { rows: 33, outF: 65, inF: 72, doubleQuant: true, bias: true, activation: 'gelu' as const, accumulate: true },
    { rows: 20, outF: 300, inF: 260, doubleQuant: true, accumulate: true },
  ])('y = x·Wᵀ and dx = dy·W match the reference: $rows rows, W [$outF, $inF], double quant $doubleQuant', async (c) => {
    await checkProducts(c, c.rows * 7 + c.inF);
  });

  it('allocates nothing: the f32 weight is never materialised', async () => {
    const engine = await gpuEngine();
    const w = engine.upload(randomArray(81, 256 * 320, 0.05), [256, 320]);
    const q = await nf4Quantize(engine, w, { doubleQuant: true });
    engine.release(w);
    const x = engine.upload(randomArray(82, 3 * 320), [3, 320]);
    const y = engine.alloc([3, 256]);
    const dx = engine.alloc([3, 320]);
    nf4Matmul(engine, x, q, y);
    await engine.sync();
    const live = engine.liveBytes;
    const peak = engine.peakBytes;
    nf4Matmul(engine, x, q, y, { accumulate: true });
    nf4MatmulInputGrad(engine, y, q, dx);
    await engine.sync();
    expect(engine.liveBytes).toBe(live);
    expect(engine.peakBytes).toBe(peak);
    engine.release(x, y, dx);
    releaseNf4(engine, q);
  });

  it('is deterministic: quantisation and both products are bit-identical across runs', async () => {
    const engine = await gpuEngine();
    const ws = randomArray(91, 70 * 129, 0.05);
    const run = async (): Promise<{ packed: Uint8Array; codes: Uint8Array; y: Float32Array; dx: Float32Array }> => {
      const w = engine.upload(ws, [70, 129]);
      const q = await nf4Quantize(engine, w, { doubleQuant: true });
      const x = engine.upload(randomArray(92, 33 * 129), [33, 129]);
      const y = engine.alloc([33, 70]);
      const dx = engine.alloc([33, 129]);
      nf4Matmul(engine, x, q, y, { activation: 'gelu' });
      nf4MatmulInputGrad(engine, y, q, dx);
      const host = await readNf4(engine, q);
      const result = { packed: host.packed, codes: host.doubleQuant!.codes, y: await engine.readF32(y), dx: await engine.readF32(dx) };
      engine.release(w, x, y, dx);
      releaseNf4(engine, q);
      return result;
    };
    const first = await run();
    const second = await run();
    expectBytesEqual(second.packed, first.packed, 'packed');
    expectBytesEqual(second.codes, first.codes, 'double-quant codes');
    expectBitIdentical(second.y, first.y, 'y');
    expectBitIdentical(second.dx, first.dx, 'dx');
  });

  it('names the tensor and the shapes on bad input', async () => {
    const engine = await gpuEngine();
    const w = engine.upload(randomArray(101, 5 * 7), [5, 7]);
    const q: Nf4Weight = await nf4Quantize(engine, w);
    const x = engine.alloc([3, 7]);
    const y = engine.alloc([3, 5]);
    const wrongX = engine.alloc([3, 5]);
    const wrongY = engine.alloc([3, 6]);
    const bias = engine.alloc([7]);
    const vector = engine.alloc([35]);
    const attempt = (f: () => void | Promise<unknown>) => () => f();
    expect(attempt(() => nf4Matmul(engine, wrongX, q, y))).toThrow(ShapeError);
    expect(attempt(() => nf4Matmul(engine, wrongX, q, y))).toThrow('nf4Matmul: x has shape [3, 5] but the weight is [5, 7]: expected 7 columns');
    expect(attempt(() => nf4Matmul(engine, x, q, wrongY))).toThrow('nf4Matmul: y has shape [3, 6], expected [3, 5]');
    expect(attempt(() => nf4Matmul(engine, x, q, y, { bias }))).toThrow('nf4Matmul: bias has shape [7], expected [5]');
    expect(attempt(() => nf4MatmulInputGrad(engine, x, q, y))).toThrow('nf4MatmulInputGrad: dy has shape [3, 7] but the weight is [5, 7]: expected 5 columns');
    expect(attempt(() => nf4Dequantize(engine, q, vector))).toThrow('nf4Dequantize: out has shape [35], expected [5, 7]');
    const truncated: Nf4Weight = { ...q, packed: { ...q.packed, shape: [2] } as Tensor };
    expect(attempt(() => nf4Dequantize(engine, truncated, w))).toThrow('nf4Dequantize: q.packed has shape [2], expected [5]');
    await expect(nf4Quantize(engine, vector)).rejects.toThrow('nf4Quantize: w must be 2-D, got shape [35]');
    engine.release(w, x, y, wrongX, wrongY, bias, vector);
    releaseNf4(engine, q);
  });
});
