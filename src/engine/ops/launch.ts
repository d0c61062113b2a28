/**
 * Launch plumbing shared by the transformer layer ops: launches folded over a 2-D grid (so counts
 * past maxComputeWorkgroupsPerDimension still run) and a check that outputs do not share a buffer
 * with inputs (WebGPU rejects a buffer bound both read-only and writable in one dispatch).
 *
 * A folded kernel recovers its linear workgroup index as wid.x + wid.y * nwg.x
 * (@builtin(num_workgroups)) and returns when its work item is past the end.
 */
import { ShapeError } from '../errors.ts';
import { type Engine, type KernelSpec, type StorageAccess, ceilDiv, grid1d } from '../engine.ts';
import type { Tensor } from '../tensor.ts';

/** Kernel specs of one WGSL module: `kernel(entryPoint, storage)`. */
export function kernelFamily(module: string, source: string): (entryPoint: string, storage: StorageAccess[]) => KernelSpec {
  return (entryPoint, storage) => ({ module, source, entryPoint, storage });
}

/** Record `workgroups` workgroups of a kernel, folded over x and y. */
export function dispatchFolded(engine: Engine, spec: KernelSpec, params: ArrayBuffer, buffers: readonly GPUBuffer[], workgroups: number): void {
  engine.dispatch(spec, params, buffers, grid1d(workgroups, engine.limits.maxComputeWorkgroupsPerDimension));
}

/** Workgroup size of every kernel launched with dispatchPerElement. */
export const ELEMENT_WORKGROUP = 256;

/**
 * Record a one-invocation-per-element kernel of workgroup_size(256) over `n` elements; the kernel's
 * index is gid.x + gid.y * nwg.x * 256.
 */
export function dispatchPerElement(engine: Engine, spec: KernelSpec, params: ArrayBuffer, buffers: readonly GPUBuffer[], n: number): void {
  dispatchFolded(engine, spec, params, buffers, ceilDiv(n, ELEMENT_WORKGROUP));
}

/** Throw unless no output shares a buffer with an input or with another output. */
export function expectDistinct(op: string, outputs: Record<string, Tensor>, inputs: Record<string, Tensor>): void {
  const seen = new Map<GPUBuffer, string>();
  for (const [name, t] of Object.entries(outputs)) {
    const other = seen.get(t.buffer);
    if (other) throw new ShapeError(`${op}: outputs ${other} and ${name} share one buffer`);
    seen.set(t.buffer, name);
  }
  for (const [name, t] of Object.entries(inputs)) {
    const out = seen.get(t.buffer);
    if (out) throw new ShapeError(`${op}: output ${out} shares a buffer with input ${name}; it cannot be computed in place`);
  }
}
