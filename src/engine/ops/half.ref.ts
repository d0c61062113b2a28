/**
 * Host-side half precision, the reference for half.wgsl and the packer of frozen base parts:
 * f32 → IEEE binary16 rounded to nearest (ties to even), and back (exact). Two halves per u32,
 * element 2k in the low 16 bits, as WGSL's pack2x16float lays them out.
 */

/** Largest finite f16. */
export const HALF_MAX = 65504;

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** binary16 bits of x (first rounded to f32, as a GPU's f32 input is), round to nearest even; past ±65504 gives ±Infinity. */
export function halfBits(x: number): number {
  f32[0] = x;
  return halfFromF32Bits(f32Bits[0]);
}

/** binary16 bits of the f32 with these bits (integer arithmetic only: packing a large table stays fast). */
function halfFromF32Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  // Normal results keep 10 of the 23 mantissa bits; subnormal ones (e <= 0) shift the implicit 1 in too.
  const full = e > 0 ? mantissa : mantissa | 0x800000;
  const shift = e > 0 ? 13 : 14 - e;
  if (shift > 24) return sign;
  let m = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (m & 1) === 1)) m++;
  // A carry out of the mantissa moves to the next exponent (and from subnormal to normal) by itself.
  return e > 0 ? sign | ((e << 10) + m) : sign | m;
}

/** The value of binary16 bits. */
export function halfValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Pack values two per u32 (an odd count leaves the last high half 0). */
export function packHalfRef(values: ArrayLike<number>): Uint32Array {
  const floats = values instanceof Float32Array ? values : Float32Array.from(values);
  const bits = new Uint32Array(floats.buffer, floats.byteOffset, floats.length);
  const packed = new Uint32Array(Math.ceil(bits.length / 2));
  const pairs = bits.length >> 1;
  for (let k = 0; k < pairs; k++) packed[k] = halfFromF32Bits(bits[2 * k]) | (halfFromF32Bits(bits[2 * k + 1]) << 16);
  if (bits.length & 1) packed[pairs] = halfFromF32Bits(bits[bits.length - 1]);
  return packed;
}

/** The first n values of a packed array. */
export function unpackHalfRef(packed: Uint32Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = halfValue((packed[i >> 1] >>> (16 * (i & 1))) & 0xffff);
  return out;
}
