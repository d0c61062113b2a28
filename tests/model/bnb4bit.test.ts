/**
 * bitsandbytes pre-quantised 4-bit weights: a checkpoint is written here in bitsandbytes' serialised
 * form (QuantState.as_dict(packed=True): packed uint8 [(n + 1) / 2, 1] with element 2i in the high
 * nibble, uint8 absmax codes, f32 quant maps and nested absmax, the JSON quant_state as uint8 bytes
 * with nested_offset as a number; tests/helpers/bnb-checkpoint.ts) from the reference quantiser, read back through safetensors, and
 * mapped onto the engine's Nf4Host: bytes equal, dequantised values bit-identical.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DYNAMIC_MAP, NF4_CODE, nf4DequantizeRef, nf4QuantizeRef } from '../../src/engine/ops/nf4.ref.ts';
import { Rng } from '../../src/engine/rng.ts';
import { bnbNf4Weight, bnbStateNames, isBnbWeight } from '../../src/model/bnb4bit.ts';
import { decodeToFloat32 } from '../../src/model/dtypes.ts';
import { type RawTensor, parseSafetensors, readSafetensorsHeader, writeRawSafetensors } from '../../src/model/safetensors.ts';
import { bnbTensors, f32Bytes, f32Tensor, u8Tensor } from '../helpers/bnb-checkpoint.ts';

/** Through a safetensors file and back, as a loader sees it. */
function roundTrip(tensors: Map<string, RawTensor>): (name: string) => RawTensor | undefined {
  return roundTripBytes(writeRawSafetensors(tensors));
}

function roundTripBytes(file: Uint8Array): (name: string) => RawTensor | undefined {
  const { entries, dataStart } = readSafetensorsHeader(file);
  const read = new Map(entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape, bytes: file.subarray(dataStart + e.begin, dataStart + e.end) }]));
  return (name) => read.get(name);
}

const randomWeight = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * 0.02);
};

const NAME = 'model.layers.0.self_attn.q_proj.weight';

describe('bitsandbytes 4-bit weights', () => {
  it('packs element 2i in the high nibble, as the file holds it', () => {
    // w = the NF4 table itself: absmax 1, so element i has code i mod 16.
    const w = Float32Array.from({ length: 64 }, (_, i) => NF4_CODE[i % 16]);
    const codes = Array.from({ length: 64 }, (_, i) => i % 16);
    const bnbPacked = Uint8Array.from({ length: 32 }, (_, i) => (codes[2 * i] << 4) | codes[2 * i + 1]);
    const q = { numel: 64, packed: bnbPacked, absmax: Float32Array.of(1), doubleQuant: null };
    const { shape, host } = bnbNf4Weight(NAME, roundTrip(bnbTensors(NAME, 2, 32, q)));
    expect(shape).toEqual([2, 32]);
    expect(host.packed).toEqual(nf4QuantizeRef(w).packed);
    expect(nf4DequantizeRef(host)).toEqual(w);
  });

  it('double-quantised (several 256-blocks of absmax): codes, scales and offset map bit-exactly', () => {
    const [rows, cols] = [130, 256];
    const w = randomWeight(rows * cols, 7);
    const q = nf4QuantizeRef(w, { doubleQuant: true });
    const get = roundTrip(bnbTensors(NAME, rows, cols, q));
    const { shape, host } = bnbNf4Weight(NAME, get);
    expect(shape).toEqual([rows, cols]);
    expect(host.packed).toEqual(q.packed);
    expect(host.doubleQuant?.codes).toEqual(q.doubleQuant?.codes);
    expect(host.doubleQuant?.absmaxScale).toEqual(q.doubleQuant?.absmaxScale);
    expect(host.doubleQuant?.offset).toBe(q.doubleQuant?.offset);
    expect(new Uint32Array(nf4DequantizeRef(host).buffer)).toEqual(new Uint32Array(nf4DequantizeRef(q).buffer));
    // The state tensors are recognised as such and listed with the weight.
    const has = (n: string) => get(n) !== undefined;
    expect(isBnbWeight(NAME, has)).toBe(true);
    expect(bnbStateNames(NAME, has)).toEqual(['absmax', 'quant_map', 'nested_absmax', 'nested_quant_map', 'quant_state.bitsandbytes__nf4'].map((s) => `${NAME}.${s}`));
    expect(isBnbWeight('model.norm.weight', has)).toBe(false);
  });

  it('plain f32 absmax, and an odd element count', () => {
    const [rows, cols] = [3, 33];
    const w = randomWeight(rows * cols, 3);
    const q = nf4QuantizeRef(w);
    const { host } = bnbNf4Weight(NAME, roundTrip(bnbTensors(NAME, rows, cols, q)));
    expect(host.doubleQuant).toBeNull();
    expect(host.absmax).toEqual(q.absmax);
    expect(decodeToFloat32('F32', f32Bytes(nf4DequantizeRef(host)), rows * cols)).toEqual(nf4DequantizeRef(q));
  });

  it('refuses what the kernels do not decode, naming the weight and the field', () => {
    const q = nf4QuantizeRef(randomWeight(4 * 64, 1), { doubleQuant: true });
    const mapped = (tensors: Map<string, RawTensor>) => () => bnbNf4Weight(NAME, roundTrip(tensors));
    expect(mapped(bnbTensors(NAME, 4, 64, q, { blocksize: 128 }))).toThrow(`bitsandbytes 4-bit weight ${NAME}: blocksize 128 is not supported`);
    expect(mapped(bnbTensors(NAME, 4, 64, q, { quant_type: 'fp4' }))).toThrow(/quant_type "fp4" is not supported/);
    expect(mapped(bnbTensors(NAME, 4, 64, q, { nested_blocksize: 128 }))).toThrow(/nested_blocksize 128 is not supported/);
    expect(mapped(bnbTensors(NAME, 4, 32, q))).toThrow(/packed weight must be 64 U8 bytes for shape \[4, 32\]/);
    const otherTable = bnbTensors(NAME, 4, 64, q);
    const table = NF4_CODE.slice();
    table[3] += 1e-3;
    otherTable.set(`${NAME}.quant_map`, f32Tensor(table));
    expect(mapped(otherTable)).toThrow(/quant_map is not the NF4 table the kernels decode with/);
    const fp4 = bnbTensors(NAME, 4, 64, q);
    fp4.set(`${NAME}.quant_state.bitsandbytes__fp4`, u8Tensor(new Uint8Array(2)));
    expect(mapped(fp4)).toThrow(/fp4 is not supported/);
    const missing = bnbTensors(NAME, 4, 64, q);
    missing.delete(`${NAME}.nested_absmax`);
    expect(mapped(missing)).toThrow(`${NAME}.nested_absmax is missing`);
  });

  it('the Python fixture (bitsandbytes\' as_dict(packed=True) from the formulas in nf4.py): dequantises to its expected values bit for bit', () => {
    const dir = join(import.meta.dirname, '../fixtures/bnb4bit');
    const file = new Uint8Array(readFileSync(join(dir, 'model.safetensors')));
    const expected = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'expected.safetensors')))).tensors;
    const get = roundTripBytes(file);
    for (const [name, shape, nested] of [
      ['model.layers.0.self_attn.q_proj.weight', [131, 129], true],
      ['model.layers.0.mlp.down_proj.weight', [7, 33], false],
    ] as const) {
      const { shape: got, host } = bnbNf4Weight(name, get);
      expect(got).toEqual(shape);
      expect(host.doubleQuant !== null).toBe(nested);
      const want = expected.get(`${name}.dequantized`)?.data as Float32Array;
      expect(new Uint32Array(nf4DequantizeRef(host).buffer), name).toEqual(new Uint32Array(want.buffer.slice(want.byteOffset, want.byteOffset + want.byteLength)));
      // And the TypeScript quantiser, given the file's offset, writes the same bytes.
      const original = expected.get(`${name}.original`)?.data as Float32Array;
      const ours = nf4QuantizeRef(original, { doubleQuant: nested, offset: host.doubleQuant?.offset });
      expect(ours.packed).toEqual(host.packed);
      expect(ours.doubleQuant?.codes).toEqual(host.doubleQuant?.codes);
    }
  });

  it('a nested map other than the kernels\' one: absmax decoded with the file\'s map and kept in f32, exact', () => {
    const [rows, cols] = [130, 256];
    const q = nf4QuantizeRef(randomWeight(rows * cols, 11), { doubleQuant: true });
    const tensors = bnbTensors(NAME, rows, cols, q);
    const map = DYNAMIC_MAP.slice();
    for (let i = 130; i < 255; i += 7) map[i] = Math.fround(map[i] * (1 + 2 ** -20));
    tensors.set(`${NAME}.nested_quant_map`, f32Tensor(map));
    const { host } = bnbNf4Weight(NAME, roundTrip(tensors));
    expect(host.doubleQuant).toBeNull();
    const dq = q.doubleQuant as NonNullable<typeof q.doubleQuant>;
    const absmax = Float32Array.from(dq.codes, (c, i) => Math.fround(Math.fround(map[c] * dq.absmaxScale[Math.floor(i / 256)]) + dq.offset));
    expect(host.absmax).toEqual(absmax);
    expect(host.absmax).not.toEqual(q.absmax);
    expect(host.packed).toEqual(q.packed);
  });
});
