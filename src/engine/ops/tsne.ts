/**
 * Exact t-SNE gradient and optimiser step on the GPU (shaders/tsne.wgsl).
 *
 * One iteration is three dispatches, recorded without readbacks:
 *   tsneForces  attraction over the sparse P, exact O(N²) repulsion and per-point kernel sums
 *   tsneReduce  Z = Σ_{i≠j} w_ij and the embedding's mean, by a fixed-order reduction
 *   tsneUpdate  gradient 4(αA − R/Z), gains, momentum, recentring
 */
import source from '../../../shaders/tsne.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, type KernelSpec, Params, ceilDiv } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { expectDims, expectShape } from './check.ts';

/** Threads per workgroup of the force and update kernels, and points per shared-memory tile. */
export const TSNE_WORKGROUP = 64;
/** Points per thread in the force kernel (ROWS in tsne.wgsl). */
const TSNE_ROWS = 8;

/** Symmetric affinities P in CSR form: row i's neighbours are cols[rowPtr[i] .. rowPtr[i+1]). */
export interface TsneAffinities {
  readonly n: number;
  readonly rowPtr: Uint32Array;
  readonly cols: Uint32Array;
  readonly values: Float32Array;
}

/** P on the GPU: u32 row pointers [n+1], u32 columns [nnz], f32 values [nnz]. */
export interface TsneAffinityTensors {
  readonly n: number;
  readonly rowPtr: Tensor;
  readonly cols: Tensor;
  readonly values: Tensor;
}

/** Hyperparameters of one optimiser step. */
export interface TsneStep {
  exaggeration: number;
  momentum: number;
  learningRate: number;
  minGain: number;
}

function spec(entryPoint: string, dim: number, storage: KernelSpec['storage']): KernelSpec {
  return { module: 'tsne', source, entryPoint, storage, constants: { WG: TSNE_WORKGROUP, DIM: dim } };
}

function embeddingDim(op: string, y: Tensor): { n: number; dim: number } {
  if (y.shape.length !== 2 || (y.shape[1] !== 2 && y.shape[1] !== 3)) {
    throw new ShapeError(`${op}: y must have shape [n, 2] or [n, 3], got [${y.shape.join(', ')}]`);
  }
  const [n, dim] = y.shape;
  expectDims(op, { n });
  return { n, dim };
}

function params(n: number, step?: TsneStep): ArrayBuffer {
  const p = new Params().u32(n);
  if (step) p.f32(step.exaggeration, step.momentum, step.learningRate, step.minGain);
  else p.f32(0, 0, 0, 0);
  return p.build();
}

/** Upload CSR affinities, checking their structure. */
export function uploadAffinities(engine: Engine, p: TsneAffinities): TsneAffinityTensors {
  const { n, rowPtr, cols, values } = p;
  expectDims('uploadAffinities', { n });
  if (rowPtr.length !== n + 1) throw new ShapeError(`uploadAffinities: rowPtr has ${rowPtr.length} entries, expected n + 1 = ${n + 1}`);
  const nnz = rowPtr[n];
  if (rowPtr[0] !== 0 || cols.length !== nnz || values.length !== nnz) {
    throw new ShapeError(`uploadAffinities: rowPtr must start at 0 and end at cols.length = values.length (got ${rowPtr[0]}..${nnz}, ${cols.length}, ${values.length})`);
  }
  for (let i = 0; i < n; i++) {
    if (rowPtr[i + 1] < rowPtr[i]) throw new ShapeError(`uploadAffinities: rowPtr decreases at row ${i}`);
  }
  for (let e = 0; e < nnz; e++) {
    if (cols[e] >= n) throw new ShapeError(`uploadAffinities: column ${cols[e]} at entry ${e} is out of range for n = ${n}`);
  }
  // Zero-length buffers are not allowed: an empty P (n = 1) gets one unused slot.
  const size = Math.max(nnz, 1);
  return {
    n,
    rowPtr: engine.upload(rowPtr, [n + 1], 'u32'),
    cols: engine.upload(nnz ? cols : new Uint32Array(1), [size], 'u32'),
    values: engine.upload(nnz ? values : new Float32Array(1), [size], 'f32'),
  };
}

export function releaseAffinities(engine: Engine, p: TsneAffinityTensors): void {
  engine.release(p.rowPtr, p.cols, p.values);
}

/** attr_i = Σ_j p_ij w_ij (y_i − y_j), rep_i = Σ_j w_ij² (y_i − y_j), z_i = Σ_{j≠i} w_ij. */
export function tsneForces(engine: Engine, y: Tensor, p: TsneAffinityTensors, attr: Tensor, rep: Tensor, z: Tensor): void {
  const op = 'tsneForces';
  const { n, dim } = embeddingDim(op, y);
  if (p.n !== n) throw new ShapeError(`${op}: affinities are for ${p.n} points, y has ${n}`);
  expectShape(op, 'attr', attr, [n, dim]);
  expectShape(op, 'rep', rep, [n, dim]);
  expectShape(op, 'z', z, [n]);
  engine.dispatch(
    spec(dim === 2 ? 'tsne_forces_2d' : 'tsne_forces_3d', dim, ['read', 'read', 'read', 'read', 'read_write', 'read_write', 'read_write']),
    params(n),
    [y.buffer, p.rowPtr.buffer, p.cols.buffer, p.values.buffer, attr.buffer, rep.buffer, z.buffer],
    [ceilDiv(n, TSNE_WORKGROUP * TSNE_ROWS)],
  );
}

/** stats = [Σ_i z_i, mean of y (dim values, then zeros)]: one workgroup, fixed order. */
export function tsneReduce(engine: Engine, z: Tensor, y: Tensor, stats: Tensor): void {
  const op = 'tsneReduce';
  const { n, dim } = embeddingDim(op, y);
  expectShape(op, 'z', z, [n]);
  expectShape(op, 'stats', stats, [4]);
  engine.dispatch(spec('tsne_reduce', dim, ['read', 'read', 'read_write']), params(n), [z.buffer, y.buffer, stats.buffer], [1]);
}

/** One step of gradient descent with momentum and gains, in place on y, velocity and gains. */
export function tsneUpdate(engine: Engine, y: Tensor, attr: Tensor, rep: Tensor, stats: Tensor, velocity: Tensor, gains: Tensor, step: TsneStep): void {
  const op = 'tsneUpdate';
  const { n, dim } = embeddingDim(op, y);
  for (const [name, t] of [['attr', attr], ['rep', rep], ['velocity', velocity], ['gains', gains]] as const) expectShape(op, name, t, [n, dim]);
  expectShape(op, 'stats', stats, [4]);
  for (const [name, v] of Object.entries(step)) {
    if (!Number.isFinite(v)) throw new ShapeError(`${op}: step.${name} must be a finite number, got ${v}`);
  }
  engine.dispatch(
    spec('tsne_update', dim, ['read_write', 'read', 'read', 'read', 'read_write', 'read_write']),
    params(n, step),
    [y.buffer, attr.buffer, rep.buffer, stats.buffer, velocity.buffer, gains.buffer],
    [ceilDiv(n * dim, TSNE_WORKGROUP)],
  );
}
