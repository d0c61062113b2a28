/**
 * The NF4 format of bitsandbytes (quantize_4bit with quant_type 'nf4', blocksize 64, optional
 * compress_statistics) in plain TypeScript: its tables, the byte packing, and reference quantise /
 * dequantise. bitsandbytes defines the format by float32 arithmetic (a float32 reciprocal of absmax,
 * float32 threshold comparisons, float32 products), so this reference reproduces that arithmetic
 * exactly with Math.fround rather than in float64: its codes are bit-identical to bitsandbytes'.
 *
 * Layout: a weight (PyTorch Linear [out, in]) is flattened row-major and cut into blocks of 64; each
 * block has absmax = max |w| (f32) and every element the 4-bit code of x = w · fround(1/absmax).
 * Byte i holds element 2i in its high nibble and 2i + 1 in its low nibble; an odd count pads one zero
 * element. Double quantisation stores absmax − offset (offset = mean absmax) as 8-bit codes of the
 * signed dynamic map, blockwise over 256 absmax values with an f32 scale per block.
 */

export const NF4_BLOCK = 64;
export const ABSMAX_BLOCK = 256;

/** bitsandbytes' NF4 values; index = code. Every entry is an exact float32. */
export const NF4_CODE = Float32Array.of(
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
);

/**
 * The 15 decision thresholds of bitsandbytes' dQuantizeNF4, ascending, as float32 bit patterns: the
 * kernel's decimal literals rounded once to float32 (going through float64 would move 4 of them by
 * an ulp). code(x) = number of thresholds t with x > t.
 */
export const NF4_THRESHOLD_BITS = Uint32Array.of(
  0xbf591cd9, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
  0x3df64863, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d03, 0x3f248daf, 0x3f5c89d9,
);
export const NF4_THRESHOLDS = new Float32Array(NF4_THRESHOLD_BITS.buffer);

/**
 * Entries 128..255 of bitsandbytes' create_dynamic_map(signed=True) as float32 bits; entries 0..126
 * are their negations (entry i = −entry 254 − i) and entry 127 is 0. bitsandbytes builds the map
 * with torch float32 linspace, whose last-bit rounding depends on torch's vectorised kernel, so the
 * values are kept as torch produced them rather than re-derived (90 of the 256 entries differ by one
 * ulp from the formula evaluated exactly). The NF4 fixture test checks them against torch's table.
 */
const DYNAMIC_MAP_POSITIVE_BITS = Uint32Array.of(
  0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
  0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
  0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
  0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
  0x3c68f5c3, 0x3c8b851f, 0x3ca28f5c, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae13, 0x3cfeb852, 0x3d0ae147,
  0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
  0x3d728f5d, 0x3d7e147a, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
  0x3da75c28, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f5, 0x3dc9eb85, 0x3ddb3334,
  0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e359999, 0x3e440000, 0x3e526666, 0x3e60cccd,
  0x3e6f3334, 0x3e7d999a, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
  0x3eb13332, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53332, 0x3edc6666, 0x3ee3999a,
  0x3eeacccc, 0x3ef20000, 0x3ef93334, 0x3f003333, 0x3f03cccd, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
  0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243333, 0x3f27cccd, 0x3f2b6667,
  0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6667, 0x3f410000, 0x3f44999a, 0x3f483333,
  0x3f4bcccc, 0x3f4f6666, 0x3f530000, 0x3f569999, 0x3f5a3333, 0x3f5dcccc, 0x3f616666, 0x3f650000,
  0x3f68999a, 0x3f6c3333, 0x3f6fcccc, 0x3f736666, 0x3f770000, 0x3f7a9999, 0x3f7e3333, 0x3f800000,
);

/** The 256 sorted float32 values of bitsandbytes' signed dynamic map (8-bit codes of double quantisation). */
export const DYNAMIC_MAP = (() => {
  const positive = new Float32Array(DYNAMIC_MAP_POSITIVE_BITS.buffer);
  const map = new Float32Array(256);
  for (let i = 0; i < 128; i++) map[128 + i] = positive[i];
  for (let i = 0; i < 127; i++) map[i] = -positive[126 - i];
  return map;
})();

/** The NF4 code of a float32 value (dQuantizeNF4's tree: strict '>', so NaN codes to 0). */
export function nf4Code(x: number): number {
  let code = 0;
  for (const t of NF4_THRESHOLDS) if (x > t) code++;
  return code;
}

/**
 * bitsandbytes' dQuantize<0> on the dynamic map: a 7-step binary search from pivot 127, then a
 * float32 midpoint comparison with the last bracket. Not always the nearest entry when x sits on a
 * float32 midpoint; NaN gives 0.
 */
export function dynamicCode(x: number): number {
  const map = DYNAMIC_MAP;
  let pivot = 127;
  let upperPivot = 255;
  let lowerPivot = 0;
  let lower = -1;
  let upper = 1;
  let val = map[pivot];
  for (let step = 64; step > 0; step >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = map[pivot];
  }
  if (upperPivot === 255) upper = map[255];
  if (lowerPivot === 0) lower = map[0];
  if (x > val) return x > Math.fround((upper + val) * 0.5) ? upperPivot : pivot;
  return x < Math.fround((lower + val) * 0.5) ? lowerPivot : pivot;
}

/** Per block of `block` values (zero-padded): absmax and the float32 reciprocal bitsandbytes scales by. */
function blockAbsmax(values: ArrayLike<number>, block: number): { absmax: Float32Array; reciprocal: Float32Array } {
  const blocks = Math.ceil(values.length / block);
  const absmax = new Float32Array(blocks);
  for (let i = 0; i < values.length; i++) {
    const b = Math.floor(i / block);
    absmax[b] = Math.max(absmax[b], Math.abs(Math.fround(values[i])));
  }
  return { absmax, reciprocal: Float32Array.from(absmax, (a) => Math.fround(1 / a)) };
}

/** Two 4-bit codes per byte, element 2i in the high nibble; an odd count ends with `pad` in the low nibble. */
export function packNibbles(codes: ArrayLike<number>, pad: number): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < bytes.length; i++) {
    const low = 2 * i + 1 < codes.length ? codes[2 * i + 1] : pad;
    bytes[i] = (codes[2 * i] << 4) | low;
  }
  return bytes;
}

/** The first `n` 4-bit codes of packed bytes. */
export function unpackNibbles(bytes: Uint8Array, n: number): Uint8Array {
  if (bytes.length < Math.ceil(n / 2)) throw new RangeError(`unpackNibbles: ${bytes.length} bytes hold fewer than ${n} codes`);
  return Uint8Array.from({ length: n }, (_, i) => (i % 2 === 0 ? bytes[i >> 1] >> 4 : bytes[i >> 1] & 0x0f));
}

/** Bytes as little-endian u32 words (byte i is bits 8·(i mod 4) of word i/4), padded with `fill` bytes. */
export function bytesToWords(bytes: Uint8Array, fill = 0): Uint32Array {
  const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4).fill(fill);
  padded.set(bytes);
  return Uint32Array.from({ length: padded.length / 4 }, (_, i) => (padded[4 * i] | (padded[4 * i + 1] << 8) | (padded[4 * i + 2] << 16) | (padded[4 * i + 3] << 24)) >>> 0);
}

/** The first `n` bytes of little-endian u32 words. */
export function wordsToBytes(words: Uint32Array, n: number): Uint8Array {
  if (words.length * 4 < n) throw new RangeError(`wordsToBytes: ${words.length} words hold fewer than ${n} bytes`);
  return Uint8Array.from({ length: n }, (_, i) => (words[i >> 2] >>> (8 * (i & 3))) & 0xff);
}

/** An NF4-quantised weight on the CPU, in bitsandbytes' own arrays. */
export interface Nf4Host {
  numel: number;
  /** (numel + 1) / 2 bytes. */
  packed: Uint8Array;
  /**
   * f32 per 64-block: what dequantisation multiplies by. Without double quantisation the stored
   * absmax; with it, the dequantised one (map[code]·scale + offset).
   */
  absmax: Float32Array;
  doubleQuant: null | {
    /** 8-bit dynamic-map code of absmax − offset, per 64-block. */
    codes: Uint8Array;
    /** f32 per 256 absmax values. */
    absmaxScale: Float32Array;
    offset: number;
  };
}

/**
 * bitsandbytes' quantize_4bit (nf4, blocksize 64) of a flattened weight. With doubleQuant, offset is
 * mean(absmax) rounded to float32 unless given (torch's float32 mean may differ from it by an ulp;
 * pass the offset to reproduce a given quantisation).
 */
export function nf4QuantizeRef(w: ArrayLike<number>, options: { doubleQuant?: boolean; offset?: number } = {}): Nf4Host {
  const n = w.length;
  if (n === 0) throw new RangeError('nf4QuantizeRef: empty weight');
  const { absmax, reciprocal } = blockAbsmax(w, NF4_BLOCK);
  // x = w·(1/absmax) in float32; a zero block makes 0·inf = NaN, which codes to 0 as in bitsandbytes.
  const codes = Uint8Array.from({ length: n }, (_, i) => nf4Code(Math.fround(Math.fround(w[i]) * reciprocal[Math.floor(i / NF4_BLOCK)])));
  const lastBlock = absmax.length - 1;
  const pad = nf4Code(Math.fround(0 * reciprocal[lastBlock]));
  const packed = packNibbles(codes, pad);
  if (!options.doubleQuant) return { numel: n, packed, absmax, doubleQuant: null };
  const offset = Math.fround(options.offset ?? absmax.reduce((s, a) => s + a, 0) / absmax.length);
  const centred = Float32Array.from(absmax, (a) => Math.fround(a - offset));
  const scaled = blockAbsmax(centred, ABSMAX_BLOCK);
  const codes8 = Uint8Array.from(centred, (v, i) => dynamicCode(Math.fround(v * scaled.reciprocal[Math.floor(i / ABSMAX_BLOCK)])));
  const doubleQuant = { codes: codes8, absmaxScale: scaled.absmax, offset };
  return { numel: n, packed, absmax: dequantizeAbsmaxRef(doubleQuant), doubleQuant };
}

/**
 * Double-quantised absmax back to f32: map[code]·scale + offset in bitsandbytes' float32 arithmetic.
 * `map` is the dynamic map unless a checkpoint stored another (bitsandbytes saves the one it used).
 */
export function dequantizeAbsmaxRef(dq: { codes: Uint8Array; absmaxScale: Float32Array; offset: number }, map: Float32Array = DYNAMIC_MAP): Float32Array {
  return Float32Array.from(dq.codes, (c, i) => Math.fround(Math.fround(map[c] * dq.absmaxScale[Math.floor(i / ABSMAX_BLOCK)]) + dq.offset));
}

/** bitsandbytes' dequantize_4bit: NF4_CODE[code] · absmax (float32), flattened. */
export function nf4DequantizeRef(q: Nf4Host): Float32Array {
  const codes = unpackNibbles(q.packed, q.numel);
  return Float32Array.from(codes, (c, i) => Math.fround(NF4_CODE[c] * q.absmax[Math.floor(i / NF4_BLOCK)]));
}
