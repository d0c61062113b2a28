/**
 * Frozen matrices (embedding tables, LayerNorm parameters) as kernels read them: in f32, or in f16
 * packed two per u32 (half.wgsl; half the memory, arithmetic still f32), and split into row blocks
 * that each fit one storage binding, so BERT-large's 28,895 × 1,024 word embeddings load on a device
 * that grants only WebGPU's default 128 MiB binding.
 */
import type { BufferFit, Engine } from './engine.ts';
import { DeviceLimitError, ShapeError } from './errors.ts';
import { HALF_MAX, packHalfRef } from './ops/half.ref.ts';
import { type Tensor, shapeString } from './tensor.ts';

export type StoragePrecision = 'f32' | 'f16';

/** Rows firstRow.. firstRow + rows - 1, in one buffer: f32 [rows, cols], or f16 as u32 [ceil(rows·cols / 2)]. */
export interface StoredBlock {
  readonly firstRow: number;
  readonly rows: number;
  readonly data: Tensor;
}

export interface StoredMatrix {
  /** The weight's name, for errors. */
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly precision: StoragePrecision;
  /** In row order, covering every row once. */
  readonly blocks: readonly StoredBlock[];
}

/** Bytes of a block of `rows` rows. */
export function storedBlockBytes(rows: number, cols: number, precision: StoragePrecision): number {
  return precision === 'f32' ? rows * cols * 4 : Math.ceil((rows * cols) / 2) * 4;
}

/** Rows of one block: as many as a binding of `limit` bytes holds. */
export function storedBlockRows(name: string, cols: number, precision: StoragePrecision, limit: number): number {
  const rowsPerBlock = precision === 'f32' ? Math.floor(limit / (cols * 4)) : Math.floor((Math.floor(limit / 4) * 2) / cols);
  if (rowsPerBlock === 0) {
    throw new DeviceLimitError(
      `${name}: one row of ${cols} ${precision} values needs ${storedBlockBytes(1, cols, precision)} bytes, over this device's storage binding limit of ${limit} bytes`,
    );
  }
  return rowsPerBlock;
}

/**
 * Upload `values` ([rows, cols] row-major) in blocks of as many rows as one binding of this engine
 * holds; `fit` as Engine.alloc's ('exact' for what is held for a model's life).
 */
export function storeMatrix(engine: Engine, name: string, values: Float32Array, shape: readonly [number, number], precision: StoragePrecision, fit: BufferFit = 'pooled'): StoredMatrix {
  const [rows, cols] = shape;
  if (values.length !== rows * cols) throw new ShapeError(`${name}: ${values.length} values do not fill shape ${shapeString(shape)}`);
  if (precision === 'f16') expectHalfRange(name, values, cols);
  const rowsPerBlock = storedBlockRows(name, cols, precision, engine.maxBindingBytes);
  const blocks: StoredBlock[] = [];
  for (let firstRow = 0; firstRow < rows; firstRow += rowsPerBlock) {
    const blockRows = Math.min(rowsPerBlock, rows - firstRow);
    const part = values.subarray(firstRow * cols, (firstRow + blockRows) * cols);
    const blockName = `${name} rows ${firstRow}..${firstRow + blockRows - 1}`;
    const data =
      precision === 'f32'
        ? engine.upload(part, [blockRows, cols], 'f32', blockName, fit)
        : engine.upload(packHalfRef(part), [Math.ceil(part.length / 2)], 'u32', blockName, fit);
    blocks.push({ firstRow, rows: blockRows, data });
  }
  return { name, rows, cols, precision, blocks };
}

/** An f32 tensor already on the GPU ([rows, cols], or [n] as one row) as a one-block stored matrix. */
export function storedView(name: string, t: Tensor): StoredMatrix {
  if (t.dtype !== 'f32' || t.shape.length < 1 || t.shape.length > 2) throw new ShapeError(`${name} must be an f32 vector or matrix, got ${t.dtype} ${shapeString(t.shape)}`);
  const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]];
  return { name, rows, cols, precision: 'f32', blocks: [{ firstRow: 0, rows, data: t }] };
}

/** The single block of a matrix a kernel binds whole, or an error naming the matrix. */
export function singleBlock(op: string, m: StoredMatrix): Tensor {
  if (m.blocks.length !== 1) {
    throw new DeviceLimitError(`${op}: ${m.name} [${m.rows}, ${m.cols}] is split into ${m.blocks.length} blocks, and this kernel binds it whole`);
  }
  return m.blocks[0].data;
}

export function releaseStored(engine: Engine, ...matrices: StoredMatrix[]): void {
  for (const m of matrices) for (const block of m.blocks) engine.release(block.data);
}

/** f16 holds finite values up to ±65504; a weight past that must stay f32. */
function expectHalfRange(name: string, values: Float32Array, cols: number): void {
  for (let i = 0; i < values.length; i++) {
    if (Math.abs(values[i]) > HALF_MAX) {
      throw new ShapeError(
        `${name}: value ${values[i]} at [${Math.floor(i / cols)}, ${i % cols}] is outside half precision's range (±${HALF_MAX}); store this model's base parts in f32`,
      );
    }
  }
}
