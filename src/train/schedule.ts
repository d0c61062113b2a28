/**
 * Learning rate for 0-based optimizer step `step`: linear warmup, then linear decay to 0 at
 * `totalSteps`, exactly as transformers' get_linear_schedule_with_warmup (so step 0 of a warmup has lr 0).
 */
export function learningRate(step: number, peak: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return (peak * step) / Math.max(1, warmupSteps);
  return peak * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
}
