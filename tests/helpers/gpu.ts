/**
 * One real WebGPU engine per test file (Dawn in Node: a real GPU or SwiftShader).
 * There is no skip path: without an adapter every GPU test fails with the reason.
 */
import type { Engine } from '../../src/engine/engine.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { createNodeEngine } from '../../src/engine/node-gpu.ts';

let enginePromise: Promise<Engine> | null = null;

export function gpuEngine(): Promise<Engine> {
  enginePromise ??= createNodeEngine().catch((e: unknown) => {
    throw new Error(`GPU tests need a WebGPU adapter and none could be created: ${String(e)}`);
  });
  return enginePromise;
}

/** Read every named f32 tensor back (in order), keeping the names. */
export async function readAll<K extends string>(engine: Engine, tensors: Record<K, Tensor>): Promise<Record<K, Float32Array>> {
  const out = {} as Record<K, Float32Array>;
  for (const name of Object.keys(tensors) as K[]) out[name] = await engine.readF32(tensors[name]);
  return out;
}
