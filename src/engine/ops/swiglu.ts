/**
 * SwiGLU (silu(gate)·up, the Llama-family MLP activation), forward and backward, on separate gate
 * and up projections [rows, inter] or on Phi-3's fused gate_up_proj output [rows, 2·inter]
 * (gate first). See shaders/swiglu.wgsl. The backward recomputes the sigmoid instead of saving it.
 */
import source from '../../../shaders/swiglu.wgsl?raw';
import type { Engine } from '../engine.ts';
import { Params } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';
import { expectMatrix, expectShape } from './check.ts';
import { dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';

const kernel = kernelFamily('swiglu', source);
const FORWARD = kernel('swiglu_forward', ['read', 'read', 'read_write']);
const BACKWARD = kernel('swiglu_backward', ['read', 'read', 'read', 'read_write', 'read_write']);
const FUSED_FORWARD = kernel('swiglu_fused_forward', ['read', 'read_write']);
const FUSED_BACKWARD = kernel('swiglu_fused_backward', ['read', 'read', 'read_write']);

function launch(engine: Engine, spec: typeof FORWARD, rows: number, inter: number, buffers: Tensor[]): void {
  dispatchPerElement(engine, spec, new Params().u32(rows, inter).build(), buffers.map((t) => t.buffer), rows * inter);
}

/** out = silu(gate)·up, all [rows, inter]. */
export function swigluForward(engine: Engine, gate: Tensor, up: Tensor, out: Tensor): void {
  const op = 'swigluForward';
  const [rows, inter] = expectMatrix(op, 'gate', gate);
  expectShape(op, 'up', up, [rows, inter]);
  expectShape(op, 'out', out, [rows, inter]);
  expectDistinct(op, { out }, { gate, up });
  launch(engine, FORWARD, rows, inter, [gate, up, out]);
}

/** dGate and dUp (overwritten) from dOut. */
export function swigluBackward(engine: Engine, gate: Tensor, up: Tensor, dOut: Tensor, dGate: Tensor, dUp: Tensor): void {
  const op = 'swigluBackward';
  const [rows, inter] = expectMatrix(op, 'gate', gate);
  for (const [name, t] of Object.entries({ up, dOut, dGate, dUp })) expectShape(op, name, t, [rows, inter]);
  expectDistinct(op, { dGate, dUp }, { gate, up, dOut });
  launch(engine, BACKWARD, rows, inter, [gate, up, dOut, dGate, dUp]);
}

/** gateUp [rows, 2·inter]; returns [rows, inter]. */
function fusedDims(op: string, gateUp: Tensor): [number, number] {
  const [rows, width] = expectMatrix(op, 'gateUp', gateUp);
  if (width % 2 !== 0) throw new ShapeError(`${op}: gateUp has ${width} columns; the fused gate_up layout needs an even count (gate, then up)`);
  return [rows, width / 2];
}

/** out [rows, inter] = silu(gate)·up with gate = gateUp[:, :inter], up = gateUp[:, inter:] (Phi-3's chunk(2)). */
export function swigluFusedForward(engine: Engine, gateUp: Tensor, out: Tensor): void {
  const op = 'swigluFusedForward';
  const [rows, inter] = fusedDims(op, gateUp);
  expectShape(op, 'out', out, [rows, inter]);
  expectDistinct(op, { out }, { gateUp });
  launch(engine, FUSED_FORWARD, rows, inter, [gateUp, out]);
}

/** dGateUp [rows, 2·inter] (overwritten; dGate then dUp in each row) from dOut [rows, inter]. */
export function swigluFusedBackward(engine: Engine, gateUp: Tensor, dOut: Tensor, dGateUp: Tensor): void {
  const op = 'swigluFusedBackward';
  const [rows, inter] = fusedDims(op, gateUp);
  expectShape(op, 'dOut', dOut, [rows, inter]);
  expectShape(op, 'dGateUp', dGateUp, [rows, 2 * inter]);
  expectDistinct(op, { dGateUp }, { gateUp, dOut });
  launch(engine, FUSED_BACKWARD, rows, inter, [gateUp, dOut, dGateUp]);
}
