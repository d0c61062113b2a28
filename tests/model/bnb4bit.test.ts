/**
 * bitsandbytes pre-quantised 4-bit weights: a checkpoint is written here in bitsandbytes' serialised
 * form (QuantState.as_dict(packed=True): packed uint8 [(n + 1) / 2, 1] with element 2i in the high
 * nibble, uint8 absmax codes, f32 quant maps and nested absmax, the JSON quant_state as uint8 bytes
 * with nested_offset as a number) from the reference quantiser, read back through safetensors, and
 * mapped onto the engine's Nf4Host: bytes equal, dequantised values bit-identical.
 */
import { describe, expect, it } from 'vitest';
import { DYNAMIC_MAP, NF4_CODE, type Nf4Host, nf4DequantizeRef, nf4QuantizeRef } from '../../src/engine/ops/nf4.ref.ts';
import { Rng } from '../../src/engine/rng.ts';
import { bnbNf4Weight, bnbStateNames, isBnbStateTensor, isBnbWeight } from '../../src/model/bnb4bit.ts';
import { decodeToFloat32 } from '../../src/model/dtypes.ts';
import { type RawTensor, readSafetensorsHeader, writeRawSafetensors } from '../../src/model/safetensors.ts';

const f32Bytes = (values: Float32Array) => new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
const u8 = (bytes: Uint8Array, shape = [bytes.length]): RawTensor => ({ dtype: 'U8', shape, bytes });
const f32 = (values: Float32Array): RawTensor => ({ dtype: 'F32', shape: [values.length], bytes: f32Bytes(values) });

/** What bitsandbytes saves for one Linear4bit weight of shape [rows, cols] quantised as `q`. */
function bnbTensors(name: string, rows: number, cols: number, q: Nf4Host, state: Record<string, unknown> = {}): Map<string, RawTensor> {
  const dq = q.doubleQuant;
  const json = {
    quant_type: 'nf4',
    blocksize: 64,
    dtype: 'bfloat16',
    shape: [rows, cols],
    ...(dq ? { nested_blocksize: 256, nested_dtype: 'float32', nested_offset: dq.offset } : {}),
    ...state,
  };
  const tensors = new Map<string, RawTensor>([[name, u8(q.packed, [q.packed.length, 1])]]);
  tensors.set(`${name}.absmax`, dq ? u8(dq.codes) : f32(q.absmax));
  tensors.set(`${name}.quant_map`, f32(NF4_CODE));
  if (dq) {
    tensors.set(`${name}.nested_absmax`, f32(dq.absmaxScale));
    tensors.set(`${name}.nested_quant_map`, f32(DYNAMIC_MAP));
  }
  tensors.set(`${name}.quant_state.bitsandbytes__nf4`, u8(new TextEncoder().encode(JSON.stringify(json))));
  return tensors;
}

/** Through a safetensors file and back, as a loader sees it. */
function roundTrip(tensors: Map<string, RawTensor>): (name: string) => RawTensor | undefined {
  const file = writeRawSafetensors(tensors);
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
    expect(bnbStateNames(NAME, has).every(isBnbStateTensor)).toBe(true);
    expect(bnbStateNames(NAME, has)).toHaveLength(5);
    expect(isBnbStateTensor(NAME)).toBe(false);
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
    const otherMap = bnbTensors(NAME, 4, 64, q);
    const map = DYNAMIC_MAP.slice();
    map[200] += 1e-3;
    otherMap.set(`${NAME}.nested_quant_map`, f32(map));
    expect(mapped(otherMap)).toThrow(/nested_quant_map entry 200/);
    const fp4 = bnbTensors(NAME, 4, 64, q);
    fp4.set(`${NAME}.quant_state.bitsandbytes__fp4`, u8(new Uint8Array(2)));
    expect(mapped(fp4)).toThrow(/fp4 is not supported/);
    const missing = bnbTensors(NAME, 4, 64, q);
    missing.delete(`${NAME}.nested_absmax`);
    expect(mapped(missing)).toThrow(`${NAME}.nested_absmax is missing`);
  });
});
