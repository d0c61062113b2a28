/** A GPU buffer viewed as a dense row-major array. */
export type DType = 'f32' | 'u32' | 'i32';

export interface Tensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Typed array constructor for a dtype. */
export function arrayFor(dtype: DType, data: ArrayBuffer): Float32Array | Uint32Array | Int32Array {
  switch (dtype) {
    case 'f32':
      return new Float32Array(data);
    case 'u32':
      return new Uint32Array(data);
    case 'i32':
      return new Int32Array(data);
  }
}
