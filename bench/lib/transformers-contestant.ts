/**
 * The peer: @huggingface/transformers (onnxruntime-web) on the ONNX export of the same weights,
 * local files only, fp32; a run is the model forward + mean pooling (transformers.js's own), with
 * last_hidden_state brought back to the CPU as transformers.js does by default. Browser pages only.
 */
import { AutoModel, Tensor, env, mean_pooling } from '@huggingface/transformers';
import type { Contestant } from './contest.ts';

export type PeerDevice = 'webgpu' | 'wasm';

export interface PeerSetup {
  /** URL of the folder holding model folders (env.localModelPath), ending in '/'. */
  modelsUrl: string;
  /** URL of onnxruntime-web's dist folder, ending in '/' (nothing is fetched from a CDN). */
  ortUrl: string;
  /** Model folder name under modelsUrl (with config.json and onnx/model.onnx). */
  model: string;
}

export interface PeerContestant extends Contestant {
  readonly loadMs: number;
  readonly runtime: { ortVersions: Record<string, string>; wasmThreads: number | null; crossOriginIsolated: boolean };
}

export async function transformersContestant(device: PeerDevice, setup: PeerSetup): Promise<PeerContestant> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = setup.modelsUrl;
  env.useBrowserCache = false;
  const onnx = env.backends.onnx as { wasm: { wasmPaths: unknown; numThreads?: number }; versions?: Record<string, string> };
  onnx.wasm.wasmPaths = { mjs: `${setup.ortUrl}ort-wasm-simd-threaded.asyncify.mjs`, wasm: `${setup.ortUrl}ort-wasm-simd-threaded.asyncify.wasm` };
  const start = performance.now();
  const model = await AutoModel.from_pretrained(setup.model, { device, dtype: 'fp32' });
  const loadMs = performance.now() - start;
  return {
    name: `transformers.js ${device}`,
    loadMs,
    runtime: { ortVersions: onnx.versions ?? {}, wasmThreads: onnx.wasm.numThreads ?? null, crossOriginIsolated: globalThis.crossOriginIsolated ?? false },
    async run(batch) {
      const dims = [batch.batch, batch.seq];
      const int64 = (values: ArrayLike<number>) => new Tensor('int64', BigInt64Array.from(Array.from(values), BigInt), dims);
      const attentionMask = int64(batch.attentionMask);
      const { last_hidden_state } = await model({ input_ids: int64(batch.inputIds), attention_mask: attentionMask, token_type_ids: int64(batch.tokenTypeIds) });
      return mean_pooling(last_hidden_state, attentionMask).data as Float32Array;
    },
    async dispose() {
      await model.dispose();
    },
  };
}
