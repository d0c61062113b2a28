/**
 * WebGPU for Node (CLI, tests, benchmarks) through Dawn's `webgpu` package.
 *
 * On machines without a GPU, Chromium's SwiftShader Vulkan driver is added to the driver list
 * (VK_ADD_DRIVER_FILES), so a real GPU still wins when present and SwiftShader is the fallback.
 */
import { existsSync } from 'node:fs';
import { type Engine, type EngineOptions, createEngine } from './engine.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let gpuPromise: Promise<GPU> | null = null;

export function nodeGPU(): Promise<GPU> {
  gpuPromise ??= (async () => {
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    if (!process.env.VK_ICD_FILENAMES && !process.env.VK_ADD_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
      process.env.VK_ADD_DRIVER_FILES = SWIFTSHADER_ICD;
    }
    const webgpu = await import('webgpu');
    Object.assign(globalThis, webgpu.globals);
    return webgpu.create([]);
  })();
  return gpuPromise;
}

export async function createNodeEngine(options?: EngineOptions): Promise<Engine> {
  return createEngine(await nodeGPU(), options);
}
