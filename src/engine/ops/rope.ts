/**
 * Rotary position embedding (rotate-half, as Hugging Face Llama), forward and backward (the inverse
 * rotation). See shaders/rope.wgsl. The cos/sin table is computed once on the CPU
 * (rope-frequencies.ts, Llama 3 scaling included) and positions are uploaded once per batch; both
 * serve every layer's q and k.
 */
import source from '../../../shaders/rope.wgsl?raw';
import { ShapeError } from '../errors.ts';
import type { Engine } from '../engine.ts';
import { Params } from '../engine.ts';
import { type Tensor, numel, shapeString } from '../tensor.ts';
import { expectDims, expectShape } from './check.ts';
import { dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';
import { type RopeConfig, ropeInverseFrequencies, ropeTableValues } from './rope-frequencies.ts';

const kernel = kernelFamily('rope', source);
const FORWARD = kernel('rope_forward', ['read', 'read', 'read', 'read_write']);
const BACKWARD = kernel('rope_backward', ['read', 'read', 'read', 'read_write']);

/** cos/sin of every position below `positions` for one head size ([positions, headDim] on the GPU). */
export interface RopeTable {
  readonly cosSin: Tensor;
  readonly headDim: number;
  readonly positions: number;
}

export function createRopeTable(engine: Engine, config: RopeConfig, positions: number): RopeTable {
  expectDims('createRopeTable', { positions });
  const values = ropeTableValues(ropeInverseFrequencies(config), positions);
  return { cosSin: engine.upload(values, [positions, config.headDim]), headDim: config.headDim, positions };
}

/** The position of each token row (u32), checked against the table so the kernels never read past it. */
export function uploadRopePositions(engine: Engine, table: RopeTable, positions: ArrayLike<number>): Tensor {
  for (let row = 0; row < positions.length; row++) {
    const p = positions[row];
    if (!Number.isInteger(p) || p < 0 || p >= table.positions) {
      throw new ShapeError(`uploadRopePositions: position ${p} of row ${row} is not an integer in [0, ${table.positions}) (the RoPE table's length)`);
    }
  }
  return engine.upload(Uint32Array.from(positions), [positions.length], 'u32');
}

/** x's rows: the product of all but the last dimension, which must be heads·headDim. */
function tokenRows(op: string, name: string, x: Tensor, heads: number, headDim: number): number {
  const width = heads * headDim;
  if (x.shape.length < 2 || x.shape[x.shape.length - 1] !== width) {
    throw new ShapeError(`${op}: ${name} has shape ${shapeString(x.shape)}, expected [..., heads·headDim] = [..., ${width}]`);
  }
  expectShape(op, name, x, x.shape);
  return numel(x.shape) / width;
}

function rotate(op: string, spec: typeof FORWARD, engine: Engine, input: [string, Tensor], positions: Tensor, table: RopeTable, output: [string, Tensor], heads: number): void {
  expectDims(op, { heads });
  const [inName, x] = input;
  const [outName, y] = output;
  const rows = tokenRows(op, inName, x, heads, table.headDim);
  expectShape(op, outName, y, x.shape);
  expectShape(op, 'positions', positions, [rows], 'u32');
  expectDistinct(op, { [outName]: y }, { [inName]: x, positions, table: table.cosSin });
  const params = new Params().u32(rows, heads, table.headDim / 2, table.positions).build();
  dispatchPerElement(engine, spec, params, [x.buffer, positions.buffer, table.cosSin.buffer, y.buffer], (rows * heads * table.headDim) / 2);
}

/** y = RoPE(x) for x [..., heads·headDim] with one position per row (positions from uploadRopePositions). */
export function ropeForward(engine: Engine, x: Tensor, positions: Tensor, table: RopeTable, y: Tensor, heads: number): void {
  rotate('ropeForward', FORWARD, engine, ['x', x], positions, table, ['y', y], heads);
}

/** dx = RoPE⁻¹(dy): the rotation is orthogonal, so its backward turns by the opposite angle. */
export function ropeBackward(engine: Engine, dy: Tensor, positions: Tensor, table: RopeTable, dx: Tensor, heads: number): void {
  rotate('ropeBackward', BACKWARD, engine, ['dy', dy], positions, table, ['dx', dx], heads);
}
