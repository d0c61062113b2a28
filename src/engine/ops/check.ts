/** Shape and size checks shared by kernel launchers: every mismatch is named before dispatch. */
import { ShapeError } from '../errors.ts';
import { type DType, type Tensor, numel, shapeString } from '../tensor.ts';

/** Throw unless `t` has exactly `shape` (and dtype). */
export function expectShape(op: string, name: string, t: Tensor, shape: readonly number[], dtype: DType = 'f32'): void {
  if (t.dtype !== dtype) throw new ShapeError(`${op}: ${name} must be ${dtype}, got ${t.dtype}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${op}: ${name} has shape ${shapeString(t.shape)}, expected ${shapeString(shape)}`);
  }
  if (t.buffer.size < numel(shape) * 4) {
    throw new ShapeError(`${op}: ${name}'s buffer holds ${t.buffer.size} bytes, needs ${numel(shape) * 4}`);
  }
}

/** Throw unless every dimension is a positive integer. */
export function expectDims(op: string, dims: Record<string, number>): void {
  for (const [name, value] of Object.entries(dims)) {
    if (!Number.isInteger(value) || value <= 0) throw new ShapeError(`${op}: ${name} must be a positive integer, got ${value}`);
  }
}

/** Throw unless two tensors have the same shape. */
export function expectSameShape(op: string, names: [string, string], a: Tensor, b: Tensor): void {
  expectShape(op, names[1], b, a.shape, b.dtype);
}

/** Throw unless `t` is a 2-D f32 tensor; returns [rows, cols]. */
export function expectMatrix(op: string, name: string, t: Tensor): [number, number] {
  if (t.dtype !== 'f32') throw new ShapeError(`${op}: ${name} must be f32, got ${t.dtype}`);
  if (t.shape.length !== 2) throw new ShapeError(`${op}: ${name} must be 2-D, got shape ${shapeString(t.shape)}`);
  const [rows, cols] = t.shape;
  expectShape(op, name, t, [rows, cols]);
  return [rows, cols];
}

/** Tokens of width `width` as [batch, seq, width], or the same memory viewed as [batch·seq, width]. */
export function expectTokens(op: string, name: string, t: Tensor, batch: number, seq: number, width: number, widthName = 'heads·headDim'): void {
  const flat = t.shape.length === 2 && t.shape[0] === batch * seq && t.shape[1] === width;
  if (!flat && (t.shape.length !== 3 || t.shape[0] !== batch || t.shape[1] !== seq || t.shape[2] !== width)) {
    throw new ShapeError(
      `${op}: ${name} has shape ${shapeString(t.shape)}, expected [batch, seq, ${widthName}] = ${shapeString([batch, seq, width])} (or ${shapeString([batch * seq, width])})`,
    );
  }
  expectShape(op, name, t, t.shape);
}
