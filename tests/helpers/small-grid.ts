/**
 * An engine whose maxComputeWorkgroupsPerDimension is lowered, so tests can make launches fold over
 * a 2-D grid at small sizes (the real limit, 65535, needs millions of rows to reach). Only the
 * engine's view of the limit changes; the device is real, and dispatch still rejects any count
 * over the lowered limit, so a launch that forgot to fold fails.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { testEngine } from './gpu.ts';

export async function smallGridEngine(maxWorkgroupsPerDimension: number): Promise<Engine> {
  const engine = await testEngine();
  const limits: Record<string, number> = {};
  for (const name in engine.limits) limits[name] = (engine.limits as unknown as Record<string, number>)[name];
  limits.maxComputeWorkgroupsPerDimension = maxWorkgroupsPerDimension;
  (engine as { limits: GPUSupportedLimits }).limits = limits as unknown as GPUSupportedLimits;
  return engine;
}
