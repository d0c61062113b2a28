/**
 * One real WebGPU engine per test file (Dawn in Node: a real GPU or SwiftShader).
 * There is no skip path: without an adapter every GPU test fails with the reason.
 * With QLORA_LAB_GPU_LIMITS=default the engines ask for WebGPU's default limits instead of the
 * adapter's (128 MiB storage binding, 256 MiB buffer), as some devices grant: the suite's pass
 * under default limits (tests/run-tests.mjs) uses it.
 */
import type { Engine, EngineOptions } from '../../src/engine/engine.ts';
import type { Tensor } from '../../src/engine/tensor.ts';
import { createNodeEngine } from '../../src/engine/node-gpu.ts';

let enginePromise: Promise<Engine> | null = null;

/** A fresh engine with the limits QLORA_LAB_GPU_LIMITS asks for, and `options`. */
export function testEngine(options: EngineOptions = {}): Promise<Engine> {
  const limits = process.env.QLORA_LAB_GPU_LIMITS;
  if (limits !== undefined && limits !== 'default' && limits !== 'adapter') {
    throw new Error(`QLORA_LAB_GPU_LIMITS must be 'default' or 'adapter', got '${limits}'`);
  }
  return createNodeEngine({ limits, ...options });
}

export function gpuEngine(): Promise<Engine> {
  enginePromise ??= testEngine().catch((e: unknown) => {
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
