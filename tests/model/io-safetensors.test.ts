import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.ts';
import { SafetensorsError, parseSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/model/safetensors.ts';
import type { HostTensor } from '../../src/model/state-dict.ts';

const tensor = (shape: number[], f: (i: number) => number): HostTensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: n }, (_, i) => f(i)) };
};

/** A safetensors file assembled by hand (any dtype, any header), independent of the writer. */
function rawFile(header: Record<string, unknown>, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function bytesOf(...arrays: ArrayBufferView[]): Uint8Array {
  const total = arrays.reduce((n, a) => n + a.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += a.byteLength;
  }
  return out;
}

/** A file with every supported dtype; values chosen to be exact in each type. */
function mixedDtypeFile(): { file: Uint8Array; expected: Record<string, number[]> } {
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00, 0x8000]); // 1, -2, 0.333251953125, 2^-24, inf, -0
  const bf16 = new Uint16Array([0x3f80, 0xc0a0, 0x4049]); // 1, -5, 3.140625
  const f64 = new Float64Array([0.5, -1e-3, 123456.75]);
  const i64 = new BigInt64Array([-3n, 0n, 511n, 1n << 40n]);
  const i32 = new Int32Array([-7, 9]);
  const u8 = new Uint8Array([0, 255, 17]);
  const bool = new Uint8Array([1, 0, 1]);
  const parts = [f16, bf16, f64, i64, i32, u8, bool];
  const names = ['f16', 'bf16', 'f64', 'i64', 'i32', 'u8', 'bool'];
  const dtypes = ['F16', 'BF16', 'F64', 'I64', 'I32', 'U8', 'BOOL'];
  const shapes = [[2, 3], [3], [3, 1], [2, 2], [2], [3], [3]];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  parts.forEach((p, k) => {
    header[names[k]] = { dtype: dtypes[k], shape: shapes[k], data_offsets: [at, at + p.byteLength] };
    at += p.byteLength;
  });
  return {
    file: rawFile(header, bytesOf(...parts)),
    expected: {
      f16: [1, -2, 0.333251953125, 2 ** -24, Infinity, -0],
      bf16: [1, -5, 3.140625],
      f64: [0.5, Math.fround(-1e-3), 123456.75],
      i64: [-3, 0, 511, 2 ** 40],
      i32: [-7, 9],
      u8: [0, 255, 17],
      bool: [1, 0, 1],
    },
  };
}

describe('safetensors', () => {
  it('round-trips float32 tensors and metadata; the data section starts 8-byte aligned', () => {
    const tensors = new Map([
      ['a.weight', tensor([3, 5], (i) => i * 0.25 - 1)],
      ['b', tensor([7], (i) => Math.sin(i))],
      ['scalar', tensor([], () => 42)],
      ['empty', tensor([0, 4], () => 0)],
    ]);
    const file = writeSafetensors(tensors, { format: 'pt', note: 'x' });
    const headerLength = new DataView(file.buffer).getUint32(0, true);
    expect((8 + headerLength) % 8).toBe(0);
    const parsed = parseSafetensors(file);
    expect(parsed.metadata).toEqual({ format: 'pt', note: 'x' });
    expect([...parsed.tensors.keys()]).toEqual([...tensors.keys()]);
    for (const [name, t] of tensors) {
      expect(parsed.tensors.get(name)?.shape).toEqual(t.shape);
      expect(parsed.tensors.get(name)?.data).toEqual(t.data);
    }
  });

  it('converts F16, BF16, F64 and integer/bool tensors to float32 exactly', () => {
    const { file, expected } = mixedDtypeFile();
    const parsed = parseSafetensors(file);
    for (const [name, values] of Object.entries(expected)) expect(Array.from(parsed.tensors.get(name)!.data), name).toEqual(values);
    expect(parsed.tensors.get('f16')?.shape).toEqual([2, 3]);
  });

  it('reads data at an unaligned offset (header length not a multiple of 4)', () => {
    const data = new Float32Array([1.5, -2.25, 3]);
    const header = { x: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } };
    const pad = (5 - (JSON.stringify(header).length % 4)) % 4; // header length ≡ 1 (mod 4)
    const file = rawFile(header, bytesOf(data), pad);
    expect((8 + new DataView(file.buffer).getUint32(0, true)) % 4).not.toBe(0);
    expect(Array.from(parseSafetensors(file).tensors.get('x')!.data)).toEqual([1.5, -2.25, 3]);
  });

  const f32 = (offsets: unknown, shape: unknown = [2], dtype: unknown = 'F32') => ({ dtype, shape, data_offsets: offsets });
  const bad: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /too short/],
    ['header past the end', (() => { const b = new Uint8Array(16); new DataView(b.buffer).setUint32(0, 100, true); return b; })(), /runs past the end of the file/],
    ['huge header length', (() => { const b = new Uint8Array(16); new DataView(b.buffer).setUint32(4, 1, true); return b; })(), /over the 100000000-byte limit/],
    ['not JSON', rawFile({}, new Uint8Array()).map((b, i) => (i === 8 ? 0x5b : b)), /not a JSON object/],
    ['invalid JSON', (() => { const f = rawFile({ a: f32([0, 8]) }, new Uint8Array(8)); f[12] = 0x7d; return f; })(), /not valid JSON/],
    ['bad UTF-8', (() => { const f = rawFile({ a: f32([0, 8]) }, new Uint8Array(8)); f[11] = 0xff; return f; })(), /not valid UTF-8/],
    ['unknown dtype', rawFile({ a: f32([0, 8], [2], 'Q7') }, new Uint8Array(8)), /dtype "Q7" is unknown/],
    ['fp8 dtype', rawFile({ a: f32([0, 2], [2], 'F8_E4M3') }, new Uint8Array(2)), /dtype "F8_E4M3" is not supported/],
    ['offset past data', rawFile({ a: f32([0, 16], [4]) }, new Uint8Array(8)), /run past the 8 data bytes/],
    ['size mismatch', rawFile({ a: f32([0, 8], [3]) }, new Uint8Array(8)), /needs 12 bytes, data_offsets give 8/],
    ['overlap', rawFile({ a: f32([0, 8]), b: f32([4, 12]) }, new Uint8Array(12)), /overlap/],
    ['hole', rawFile({ a: f32([0, 8]), b: f32([12, 20]) }, new Uint8Array(20)), /4 bytes before tensor "b" at offset 8 belong to no tensor/],
    ['trailing bytes', rawFile({ a: f32([0, 8]) }, new Uint8Array(12)), /cover 8 data bytes but the file has 12/],
    ['negative shape', rawFile({ a: f32([0, 8], [-2]) }, new Uint8Array(8)), /shape must be a list of non-negative integers/],
    ['fractional offsets', rawFile({ a: f32([0, 7.5]) }, new Uint8Array(8)), /data_offsets must be \[begin, end\]/],
    ['reversed offsets', rawFile({ a: f32([8, 0]), b: f32([0, 8]) }, new Uint8Array(8)), /end before they begin/],
    ['metadata not strings', rawFile({ __metadata__: { n: 1 }, a: f32([0, 8]) }, new Uint8Array(8)), /__metadata__\["n"\] must be a string/],
    ['entry not an object', rawFile({ a: [1, 2] }, new Uint8Array(0)), /tensor "a": entry must be an object/],
    ['overflowing shape', rawFile({ a: f32([0, 8], [2 ** 40, 2 ** 40]) }, new Uint8Array(8)), /needs .* bytes, data_offsets give 8/],
  ];
  it.each(bad)('rejects %s with a clear error', (_, file, message) => {
    expect(() => parseSafetensors(file, 'x.safetensors')).toThrow(SafetensorsError);
    expect(() => parseSafetensors(file, 'x.safetensors')).toThrow(message);
  });

  it('refuses to write a tensor whose data does not match its shape', () => {
    expect(() => writeSafetensors(new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]]))).toThrow(/shape \[2, 2\] needs 4 values, has 3/);
  });
});

/**
 * Mutation fuzzing: every mutated file must either parse to a consistent result (each tensor's
 * data length equals its shape's size) or throw a SafetensorsError; nothing else (RangeError from
 * a typed array, TypeError, a hang) is acceptable.
 */
describe('safetensors fuzzing', () => {
  const seeds = [
    writeSafetensors(new Map([['w', tensor([4, 3], (i) => i - 6)], ['b', tensor([3], (i) => i)], ['s', tensor([], () => 1)]]), { format: 'pt' }),
    mixedDtypeFile().file,
  ];

  function mutate(rng: Rng, original: Uint8Array): Uint8Array {
    const file = original.slice();
    const headerLength = new DataView(file.buffer).getUint32(0, true);
    switch (rng.int(6)) {
      case 0: // random byte flips anywhere
        for (let k = 1 + rng.int(8); k > 0; k--) file[rng.int(file.length)] ^= 1 << rng.int(8);
        return file;
      case 1: // flips inside the JSON header, where they matter most
        for (let k = 1 + rng.int(4); k > 0; k--) file[8 + rng.int(headerLength)] = 32 + rng.int(95);
        return file;
      case 2: // truncation
        return file.subarray(0, rng.int(file.length));
      case 3: { // header length field set to something else
        const view = new DataView(file.buffer);
        const choices = [rng.nextU32(), headerLength + rng.int(17) - 8, 0, file.length, 0xffffffff];
        view.setUint32(0, choices[rng.int(choices.length)] >>> 0, true);
        if (rng.int(4) === 0) view.setUint32(4, rng.nextU32(), true);
        return file;
      }
      case 4: { // structured edit of one header field, re-serialised
        const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLength))) as Record<string, Record<string, unknown>>;
        const names = Object.keys(header).filter((n) => n !== '__metadata__');
        const entry = header[names[rng.int(names.length)]];
        const values: unknown[] = [-1, 0, 1, 2 ** 31, 2 ** 53, 1.5, 'x', null, [], [1], [0, 0], [1, 2, 3], {}, 'F32', 'BF16', 'I64', 'F8_E5M2', [2 ** 30, 2 ** 30]];
        const field = ['dtype', 'shape', 'data_offsets', 'extra'][rng.int(4)];
        if (field === 'data_offsets' && rng.int(2) === 0 && Array.isArray(entry.data_offsets)) {
          const o = [...(entry.data_offsets as number[])];
          o[rng.int(2)] += rng.int(9) - 4;
          entry.data_offsets = o;
        } else entry[field] = values[rng.int(values.length)];
        if (rng.int(5) === 0) header.__metadata__ = values[rng.int(values.length)] as Record<string, unknown>;
        const data = file.subarray(8 + headerLength);
        return rawFile(header, data, rng.int(9));
      }
      default: { // garbage appended or spliced in
        const extra = Uint8Array.from({ length: 1 + rng.int(32) }, () => rng.int(256));
        const at = rng.int(file.length + 1);
        return bytesOf(file.subarray(0, at), extra, file.subarray(at));
      }
    }
  }

  it('20000 mutated files: each parses consistently or throws SafetensorsError, none slow (no hang)', () => {
    const rng = new Rng(20240611);
    let parsed = 0;
    let rejected = 0;
    let slowest = 0;
    const messages = new Set<string>();
    for (let k = 0; k < 20000; k++) {
      const file = mutate(rng, seeds[k % seeds.length]);
      const start = performance.now();
      try {
        const result = parseSafetensors(file, 'fuzz');
        for (const [name, t] of result.tensors) {
          if (!(t.data instanceof Float32Array) || t.data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Error(`inconsistent tensor ${name}`);
        }
        // Whatever parsed must also have a header that validates on its own.
        readSafetensorsHeader(file, 'fuzz');
        parsed++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`mutation ${k} raised ${String(e)} instead of a SafetensorsError`);
        messages.add(e.message.replace(/"[^"]*"/g, 'S').replace(/\d+/g, 'N').slice(0, 50));
        rejected++;
      }
      slowest = Math.max(slowest, performance.now() - start);
    }
    console.log(`safetensors fuzz: ${parsed} parsed, ${rejected} rejected, ${messages.size} distinct error kinds, slowest ${slowest.toFixed(2)} ms`);
    expect(parsed + rejected).toBe(20000);
    expect(parsed).toBeGreaterThan(100); // flips in tensor data still parse
    expect(rejected).toBeGreaterThan(5000);
    expect(slowest).toBeLessThan(1000); // 2-core shared CI machine: a bound on hangs, not a benchmark
  });
});
