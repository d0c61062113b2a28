/**
 * Where a recorded GPU workload spends its time, per kernel: the workload runs once normally while
 * every dispatch is noted, then each noted dispatch is replayed alone and waited for. The replays
 * do the same work on the same buffers (whose contents no longer matter), so the per-kernel sums
 * add up to about the batched time; the difference is what batching saves (or per-submit overhead).
 * Only the benchmarks patch the engine this way, on their own engine instance.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { markdownTable } from './table.ts';

export interface KernelTime {
  /** `module.entryPoint`. */
  kernel: string;
  dispatches: number;
  ms: number;
}

export interface DispatchProfile {
  /** The workload run as a normal batch (recorded, then waited for). */
  batchedMs: number;
  /** Sum of the one-by-one replays. */
  replayedMs: number;
  kernels: KernelTime[];
}

type DispatchArgs = Parameters<Engine['dispatch']>;

/** Profile `record` (which records work and may await its results) on `engine`. */
export async function profileDispatches(engine: Engine, record: () => Promise<void>): Promise<DispatchProfile> {
  const noted: DispatchArgs[] = [];
  const dispatch = engine.dispatch;
  engine.dispatch = (...args: DispatchArgs) => {
    noted.push(args);
    dispatch.apply(engine, args);
  };
  let start = performance.now();
  try {
    await record();
    await engine.sync();
  } finally {
    engine.dispatch = dispatch;
  }
  const batchedMs = performance.now() - start;
  const byKernel = new Map<string, KernelTime>();
  let replayedMs = 0;
  for (const args of noted) {
    start = performance.now();
    dispatch.apply(engine, args);
    await engine.sync();
    const ms = performance.now() - start;
    replayedMs += ms;
    const name = `${args[0].module}.${args[0].entryPoint}`;
    const entry = byKernel.get(name) ?? { kernel: name, dispatches: 0, ms: 0 };
    entry.dispatches += 1;
    entry.ms += ms;
    byKernel.set(name, entry);
  }
  return { batchedMs, replayedMs, kernels: [...byKernel.values()].sort((a, b) => b.ms - a.ms) };
}

/** A readable per-kernel table: time, share of the replayed total, dispatch count. */
export function profileTable(profile: DispatchProfile): string {
  const rows = profile.kernels.map((k) => [k.kernel, k.dispatches, (k.ms / 1000).toFixed(3), `${((100 * k.ms) / profile.replayedMs).toFixed(1)}%`]);
  rows.push(['(all, replayed one by one)', profile.kernels.reduce((n, k) => n + k.dispatches, 0), (profile.replayedMs / 1000).toFixed(3), '100%']);
  rows.push(['(the same run, batched)', '', (profile.batchedMs / 1000).toFixed(3), '']);
  return markdownTable(['kernel', 'dispatches', 's', 'share'], rows);
}

/** The profile as JSON figures (milliseconds). */
export function profileFigures(profile: DispatchProfile): Record<string, number> {
  const figures: Record<string, number> = { batched_ms: +profile.batchedMs.toFixed(1), replayed_ms: +profile.replayedMs.toFixed(1) };
  for (const k of profile.kernels) figures[k.kernel] = +k.ms.toFixed(1);
  return figures;
}
