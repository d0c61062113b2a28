/**
 * Weights of checkpoints bitsandbytes already quantised (the `*-bnb-4bit` repos), used as they are.
 * bitsandbytes saves a Linear4bit weight `W` as QuantState.as_dict(packed=True):
 *
 * - `W`: the packed codes, uint8 [(n + 1) / 2, 1], element 2i in the high nibble;
 * - `W.absmax`: per 64-block, f32, or with double quantisation the uint8 codes of absmax − offset;
 * - `W.quant_map`: the 16 NF4 values (f32);
 * - with double quantisation, `W.nested_absmax` (f32 per 256 absmax values) and `W.nested_quant_map`
 *   (the 256-entry signed dynamic map, f32);
 * - `W.quant_state.bitsandbytes__nf4`: uint8 bytes of a JSON object holding the rest: quant_type,
 *   blocksize, dtype, shape and, when nested, nested_blocksize, nested_dtype and nested_offset.
 *
 * The engine's NF4 layout (engine/ops/nf4.ref.ts) is bitsandbytes' own, so these arrays map onto an
 * Nf4Host without touching a code; what the kernels do not decode (fp4, other block sizes, another
 * NF4 table) is refused rather than converted. A nested map other than the kernels' is not refused:
 * the absmax it decodes to is kept as f32 (0.375 more bits per weight), which stays exact.
 */
import { ABSMAX_BLOCK, DYNAMIC_MAP, NF4_BLOCK, NF4_CODE, type Nf4Host, dequantizeAbsmaxRef } from '../engine/ops/nf4.ref.ts';
import { decodeToFloat32 } from './dtypes.ts';
import type { RawTensor } from './safetensors.ts';
import { shapeSize } from './state-dict.ts';

/** Whether `name` is a bitsandbytes-quantised weight, judged by its quant_state companion. */
export const isBnbWeight = (name: string, has: (name: string) => boolean) =>
  has(`${name}.quant_state.bitsandbytes__nf4`) || has(`${name}.quant_state.bitsandbytes__fp4`);

/** The quantised weight's state tensors, by their full names (what a loader must read with it). */
export function bnbStateNames(name: string, has: (name: string) => boolean): string[] {
  return ['absmax', 'quant_map', 'nested_absmax', 'nested_quant_map', 'quant_state.bitsandbytes__nf4', 'quant_state.bitsandbytes__fp4']
    .map((suffix) => `${name}.${suffix}`)
    .filter(has);
}

const sameBits = (a: Float32Array, b: Float32Array) => {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/**
 * The bitsandbytes NF4 weight `name` as the engine's Nf4Host and its [out, in] shape. `get` returns a
 * checkpoint tensor by full name (undefined when absent).
 */
export function bnbNf4Weight(name: string, get: (name: string) => RawTensor | undefined): { shape: [number, number]; host: Nf4Host } {
  const fail = (why: string): never => {
    throw new Error(`bitsandbytes 4-bit weight ${name}: ${why}`);
  };
  if (get(`${name}.quant_state.bitsandbytes__fp4`)) fail('quant_type fp4 is not supported (only nf4)');
  const need = (suffix: string): RawTensor => get(`${name}.${suffix}`) ?? fail(`${name}.${suffix} is missing`);
  const f32 = (suffix: string, length: number): Float32Array => {
    const t = need(suffix);
    if (t.dtype !== 'F32' || shapeSize(t.shape) !== length) fail(`${suffix} must be ${length} F32 values, got ${t.dtype} [${t.shape.join(', ')}]`);
    return decodeToFloat32('F32', t.bytes, length);
  };
  const stateBytes = need('quant_state.bitsandbytes__nf4');
  if (stateBytes.dtype !== 'U8') fail(`quant_state must be U8 bytes of JSON, got ${stateBytes.dtype}`);
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(stateBytes.bytes));
  } catch (e) {
    return fail(`quant_state is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof state !== 'object' || state === null || Array.isArray(state)) fail('quant_state must be a JSON object');
  if (state.quant_type !== 'nf4') fail(`quant_type ${JSON.stringify(state.quant_type)} is not supported (only "nf4")`);
  if (state.blocksize !== NF4_BLOCK) fail(`blocksize ${JSON.stringify(state.blocksize)} is not supported (the NF4 kernels decode blocks of ${NF4_BLOCK})`);
  const shape = state.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    fail(`quant_state shape must be [out, in] of a Linear weight, got ${JSON.stringify(shape)}`);
  }
  const [rows, cols] = shape as [number, number];
  const numel = rows * cols;
  const blocks = Math.ceil(numel / NF4_BLOCK);

  const weight = get(name) ?? fail('the packed weight itself is missing');
  if (weight.dtype !== 'U8' || shapeSize(weight.shape) !== Math.ceil(numel / 2)) {
    fail(`the packed weight must be ${Math.ceil(numel / 2)} U8 bytes for shape [${rows}, ${cols}], got ${weight.dtype} [${weight.shape.join(', ')}]`);
  }
  if (!sameBits(f32('quant_map', 16), NF4_CODE)) fail('quant_map is not the NF4 table the kernels decode with');
  const packed = weight.bytes.slice();
  if (state.nested_blocksize === undefined) return { shape: [rows, cols], host: { numel, packed, absmax: f32('absmax', blocks), doubleQuant: null } };

  if (state.nested_blocksize !== ABSMAX_BLOCK) fail(`nested_blocksize ${JSON.stringify(state.nested_blocksize)} is not supported (only ${ABSMAX_BLOCK})`);
  const offset = state.nested_offset;
  if (typeof offset !== 'number' || !Number.isFinite(offset)) fail(`nested_offset must be a finite number, got ${JSON.stringify(offset)}`);
  const codes = need('absmax');
  if (codes.dtype !== 'U8' || shapeSize(codes.shape) !== blocks) fail(`absmax of a double-quantised weight must be ${blocks} U8 codes, got ${codes.dtype} [${codes.shape.join(', ')}]`);
  const doubleQuant = { codes: codes.bytes.slice(), absmaxScale: f32('nested_absmax', Math.ceil(blocks / ABSMAX_BLOCK)), offset: Math.fround(offset as number) };
  const nestedMap = f32('nested_quant_map', 256);
  if (sameBits(nestedMap, DYNAMIC_MAP)) return { shape: [rows, cols], host: { numel, packed, absmax: dequantizeAbsmaxRef(doubleQuant), doubleQuant } };
  // A map the kernels do not hold (another torch may round its linspace differently): the absmax it
  // gives is kept in f32 instead, so every value still dequantises exactly as the file says.
  return { shape: [rows, cols], host: { numel, packed, absmax: dequantizeAbsmaxRef(doubleQuant, nestedMap), doubleQuant: null } };
}
