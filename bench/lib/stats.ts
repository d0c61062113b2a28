/** Timing helpers shared by the benchmarks (Node and browser pages). */

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Time `run` up to `reps` times (milliseconds each), stopping early once `budgetMs` is spent, but
 * always at least once: on a CPU-emulated GPU one big forward can take a minute.
 */
export async function timeRuns(run: () => Promise<void>, reps: number, budgetMs: number): Promise<number[]> {
  const times: number[] = [];
  const start = performance.now();
  while (times.length < reps) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
    const spent = performance.now() - start;
    if (spent + median(times) > budgetMs) break;
  }
  return times;
}

/** CPU time of this Node process in milliseconds (user + system, all threads: Dawn's SwiftShader included). */
export function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
