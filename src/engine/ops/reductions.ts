/**
 * Which reduction helpers a kernel module is built on: the shared-memory trees (row-reduce.wgsl,
 * reduce.wgsl), or their subgroup variants where the device has the `subgroups` feature (createEngine
 * turns it on when the adapter offers it). The choice is made per engine when a kernel is launched;
 * both variants keep the helpers' interface, so the kernels' own WGSL is shared.
 */
import reduceSubgroupSource from '../../../shaders/reduce-subgroup.wgsl?raw';
import reduceSource from '../../../shaders/reduce.wgsl?raw';
import rowReduceSubgroupSource from '../../../shaders/row-reduce-subgroup.wgsl?raw';
import rowReduceSource from '../../../shaders/row-reduce.wgsl?raw';
import type { Engine, KernelSpec, StorageAccess } from '../engine.ts';

export type ReductionVariant = 'shared' | 'subgroup';

export function reductionVariant(engine: Engine): ReductionVariant {
  return engine.device.features.has('subgroups') ? 'subgroup' : 'shared';
}

/** Module name of a kernel family's variant: 'layernorm' or 'layernorm-subgroup'. */
export function variantModule(module: string, variant: ReductionVariant): string {
  return variant === 'subgroup' ? `${module}-subgroup` : module;
}

/** A kernel's spec per variant; `spec(engine)` picks the one the device can run. */
export type VariantKernel = (engine: Engine) => KernelSpec;

function variantFamily(module: string, sources: Record<ReductionVariant, string>) {
  return (entryPoint: string, storage: StorageAccess[]): VariantKernel => {
    const specs = {
      shared: { module, source: sources.shared, entryPoint, storage },
      subgroup: { module: variantModule(module, 'subgroup'), source: sources.subgroup, entryPoint, storage },
    };
    return (engine) => specs[reductionVariant(engine)];
  };
}

/** Kernels over rows (row_slot / row_sum): `source` is appended to the row-reduction helpers. */
export function rowKernelFamily(module: string, source: string) {
  return variantFamily(module, { shared: rowReduceSource + source, subgroup: rowReduceSubgroupSource + source });
}

/** Rows each workgroup of a row kernel serves (ROWS_PER_WG of the variant). */
export function rowsPerWorkgroup(engine: Engine): number {
  return reductionVariant(engine) === 'subgroup' ? 1 : 16;
}

/** Kernels of @workgroup_size(256) reducing over the workgroup (workgroup_sum / workgroup_max). */
export function workgroupKernelFamily(module: string, source: string) {
  return variantFamily(module, { shared: reduceSource + source, subgroup: reduceSubgroupSource + source });
}
