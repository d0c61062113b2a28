/**
 * Several implementations of one workload timed side by side: after a warm-up run of each at the
 * shape, they take turns, one timed run each per round, so a machine whose load drifts (a shared
 * CPU running a software GPU) weighs on all of them alike; one whose runs have used its time budget
 * sits out the remaining rounds. Runs in Node and in browser pages.
 */
import type { TokenBatch } from '../../src/model/bert.ts';
import type { DispatchProfile } from './profile.ts';
import { median } from './stats.ts';

export interface Contestant {
  readonly name: string;
  /** Called before a shape's first run (e.g. to reset a peak-memory counter). */
  beginShape?(): void;
  /** One run of the workload; resolves with the embeddings [batch, hidden] on the host. */
  run(batch: TokenBatch): Promise<Float32Array>;
  /** Peak GPU memory over the shape's runs, for contestants that can tell. */
  peakBytes?(): number;
  /** A kernel-by-kernel replay of one run (bench/lib/profile.ts), for contestants that can. */
  profile?(batch: TokenBatch): Promise<DispatchProfile>;
  dispose(): Promise<void> | void;
}

export interface ContestantTiming {
  warmupMs: number;
  timesMs: number[];
  /** CPU milliseconds of this process per timed run, when options.cpuMs is given (Node: SwiftShader runs in the process). */
  cpuMs: number[] | null;
  /** Embeddings of the last run, row-major (for cross-checks). */
  embeddings: number[];
  peakBytes: number | null;
  profile: DispatchProfile | null;
}

export interface ContestShape {
  seq: number;
  batch: number;
  byContestant: Record<string, ContestantTiming>;
}

export interface ContestOptions {
  /** Timed rounds per shape, at most. */
  reps: number;
  /** Timed milliseconds per contestant and shape after which it sits out further rounds (it runs at least once). */
  budgetMs: number;
  profile?: boolean;
  /** A CPU clock of this process in milliseconds (Node's process.cpuUsage), to report CPU time per run. */
  cpuMs?: () => number;
}

export async function runContest(contestants: readonly Contestant[], batches: readonly TokenBatch[], options: ContestOptions, log: (line: string) => void): Promise<ContestShape[]> {
  const shapes: ContestShape[] = [];
  for (const batch of batches) {
    const timings = new Map<Contestant, ContestantTiming>();
    for (const c of contestants) {
      c.beginShape?.();
      const start = performance.now();
      const embeddings = await c.run(batch);
      const warmupMs = performance.now() - start;
      log(`${c.name}, seq ${batch.seq}: warm-up ${(warmupMs / 1000).toFixed(1)} s`);
      timings.set(c, { warmupMs, timesMs: [], cpuMs: options.cpuMs ? [] : null, embeddings: Array.from(embeddings), peakBytes: null, profile: null });
    }
    // A contestant sits out further rounds once its own timed runs have used its budget.
    const active = new Set(contestants);
    for (let round = 1; round <= options.reps && active.size > 0; round++) {
      const ran = contestants.filter((c) => active.has(c));
      for (const c of ran) {
        const start = performance.now();
        const cpuStart = options.cpuMs?.() ?? 0;
        const embeddings = await c.run(batch);
        const timing = timings.get(c)!;
        timing.timesMs.push(performance.now() - start);
        timing.cpuMs?.push(options.cpuMs!() - cpuStart);
        timing.embeddings = Array.from(embeddings);
        const spent = timing.timesMs.reduce((sum, t) => sum + t, 0);
        if (spent + median(timing.timesMs) > options.budgetMs) active.delete(c);
      }
      log(`seq ${batch.seq}, round ${round}: ${ran.map((c) => `${c.name} ${(timings.get(c)!.timesMs.at(-1)! / 1000).toFixed(2)} s`).join(', ')}`);
    }
    for (const c of contestants) {
      const timing = timings.get(c)!;
      timing.peakBytes = c.peakBytes?.() ?? null;
      if (options.profile && c.profile) timing.profile = await c.profile(batch);
    }
    shapes.push({ seq: batch.seq, batch: batch.batch, byContestant: Object.fromEntries(contestants.map((c) => [c.name, timings.get(c)!])) });
  }
  return shapes;
}
