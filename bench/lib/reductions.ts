/**
 * Subgroup vs shared-memory row reductions (src/engine/ops/reductions.ts) at BERT-base shapes: the
 * same kernels on two engines of one adapter, one with the `subgroups` feature and one without
 * (EngineOptions.withoutFeatures), timed in alternation within each run; medians over the runs.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { l2NormalizeForward } from '../../src/engine/ops/l2norm.ts';
import { layerNormBackward, layerNormForward } from '../../src/engine/ops/layernorm.ts';
import { cosinePairLossForward } from '../../src/engine/ops/losses.ts';
import { reductionVariant } from '../../src/engine/ops/reductions.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { Rng } from '../../src/data/rng.ts';
import { median } from './stats.ts';

/** BERT-base: 16 sequences × 128 tokens of hidden size 768. */
export const REDUCTION_SHAPE = { rows: 2048, hidden: 768 };
const TARGET_RUN_MS = 300;

export const REDUCTION_KERNELS = ['layernorm_forward', 'layernorm_backward', 'l2norm_forward', 'cosine_pair_loss_forward'] as const;
export type ReductionKernel = (typeof REDUCTION_KERNELS)[number];

export interface ReductionTiming {
  /** Median milliseconds per launch. */
  subgroup_ms: number;
  plain_ms: number;
  /** plain_ms / subgroup_ms: above 1 when the subgroup variant is faster. */
  ratio_subgroup_vs_plain: number;
}

/** One engine's launches of every kernel on its own copies of the same data. */
function launches(engine: Engine): { run: Record<ReductionKernel, () => void>; release: () => void } {
  const { rows, hidden } = REDUCTION_SHAPE;
  const rng = new Rng(7);
  const upload = (shape: number[], scale = 1, offset = 0) =>
    engine.upload(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => offset + rng.normal() * scale), shape);
  const x = upload([rows, hidden]);
  const dy = upload([rows, hidden]);
  const other = upload([rows, hidden]);
  const gamma = upload([hidden], 0.1, 1);
  const beta = upload([hidden], 0.1);
  const labels = upload([rows], 0.5);
  const y = engine.alloc([rows, hidden]);
  const dx = engine.alloc([rows, hidden]);
  const mean = engine.alloc([rows]);
  const rstd = engine.alloc([rows]);
  const norms = engine.alloc([rows]);
  const loss = engine.alloc([1]);
  const tensors: Tensor[] = [x, dy, other, gamma, beta, labels, y, dx, mean, rstd, norms, loss];
  return {
    run: {
      layernorm_forward: () => layerNormForward(engine, x, gamma, beta, y, mean, rstd, 1e-12),
      layernorm_backward: () => layerNormBackward(engine, x, gamma, mean, rstd, dy, dx),
      l2norm_forward: () => l2NormalizeForward(engine, x, y, norms),
      cosine_pair_loss_forward: () => cosinePairLossForward(engine, x, other, labels, loss),
    },
    release: () => engine.release(...tensors),
  };
}

/** Median wall time per launch of each kernel on both engines, alternating which goes first. */
export async function timeReductions(subgroup: Engine, plain: Engine, runs: number): Promise<Record<ReductionKernel, ReductionTiming>> {
  if (reductionVariant(subgroup) !== 'subgroup' || reductionVariant(plain) !== 'shared') {
    throw new Error('timeReductions: the first engine must have the subgroups feature and the second must not');
  }
  const engines = [
    { name: 'subgroup', engine: subgroup, ...launches(subgroup) },
    { name: 'plain', engine: plain, ...launches(plain) },
  ];
  const result = {} as Record<ReductionKernel, ReductionTiming>;
  for (const kernel of REDUCTION_KERNELS) {
    // On each engine an untimed launch compiles the pipeline, and a second one sizes the batch of repeats.
    const repeats = new Map<string, number>();
    for (const e of engines) {
      e.run[kernel]();
      await e.engine.sync();
      const t0 = performance.now();
      e.run[kernel]();
      await e.engine.sync();
      repeats.set(e.name, Math.max(1, Math.min(200, Math.round(TARGET_RUN_MS / (performance.now() - t0)))));
    }
    const ms = new Map<string, number[]>(engines.map((e) => [e.name, []]));
    for (let r = 0; r < runs; r++) {
      for (const e of r % 2 === 0 ? engines : [...engines].reverse()) {
        const reps = repeats.get(e.name)!;
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) e.run[kernel]();
        await e.engine.sync();
        ms.get(e.name)!.push((performance.now() - t0) / reps);
      }
    }
    const subgroupMs = median(ms.get('subgroup')!);
    const plainMs = median(ms.get('plain')!);
    result[kernel] = { subgroup_ms: subgroupMs, plain_ms: plainMs, ratio_subgroup_vs_plain: plainMs / subgroupMs };
  }
  for (const e of engines) e.release();
  return result;
}
