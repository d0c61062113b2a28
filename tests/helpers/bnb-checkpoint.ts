/**
 * Tensors as bitsandbytes saves a Linear4bit weight (QuantState.as_dict(packed=True)): packed uint8
 * [(n + 1) / 2, 1] (element 2i in the high nibble), absmax (f32, or uint8 codes when double-quantised),
 * the f32 quant maps and nested absmax, and the JSON quant_state as uint8 bytes with nested_offset a number.
 */
import { DYNAMIC_MAP, NF4_CODE, type Nf4Host } from '../../src/engine/ops/nf4.ref.ts';
import type { RawTensor } from '../../src/model/safetensors.ts';

export const f32Bytes = (values: Float32Array) => new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
export const u8Tensor = (bytes: Uint8Array, shape = [bytes.length]): RawTensor => ({ dtype: 'U8', shape, bytes });
export const f32Tensor = (values: Float32Array, shape = [values.length]): RawTensor => ({ dtype: 'F32', shape, bytes: f32Bytes(values) });

/** What bitsandbytes saves for weight `name` of shape [rows, cols] quantised as `q`; `state` overrides quant_state fields. */
export function bnbTensors(name: string, rows: number, cols: number, q: Nf4Host, state: Record<string, unknown> = {}): Map<string, RawTensor> {
  const dq = q.doubleQuant;
  const json = {
    quant_type: 'nf4',
    blocksize: 64,
    dtype: 'bfloat16',
    shape: [rows, cols],
    ...(dq ? { nested_blocksize: 256, nested_dtype: 'float32', nested_offset: dq.offset } : {}),
    ...state,
  };
  const tensors = new Map<string, RawTensor>([[name, u8Tensor(q.packed, [q.packed.length, 1])]]);
  tensors.set(`${name}.absmax`, dq ? u8Tensor(dq.codes) : f32Tensor(q.absmax));
  tensors.set(`${name}.quant_map`, f32Tensor(NF4_CODE));
  if (dq) {
    tensors.set(`${name}.nested_absmax`, f32Tensor(dq.absmaxScale));
    tensors.set(`${name}.nested_quant_map`, f32Tensor(DYNAMIC_MAP));
  }
  tensors.set(`${name}.quant_state.bitsandbytes__nf4`, u8Tensor(new TextEncoder().encode(JSON.stringify(json))));
  return tensors;
}
