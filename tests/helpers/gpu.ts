/**
 * One real WebGPU engine per test file (Dawn in Node: a real GPU or SwiftShader).
 * There is no skip path: without an adapter every GPU test fails with the reason.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { createNodeEngine } from '../../src/engine/node-gpu.ts';

let enginePromise: Promise<Engine> | null = null;

export function gpuEngine(): Promise<Engine> {
  enginePromise ??= createNodeEngine().catch((e: unknown) => {
    throw new Error(`GPU tests need a WebGPU adapter and none could be created: ${String(e)}`);
  });
  return enginePromise;
}
