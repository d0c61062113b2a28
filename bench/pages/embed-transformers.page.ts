/**
 * The peer embedding workload: @huggingface/transformers (onnxruntime-web) on the ONNX export of the
 * benchmark model, local files only, fp32, timing model forward + mean pooling after a warm-up run
 * at the same shape.
 */
import { AutoModel, Tensor, env, mean_pooling } from '@huggingface/transformers';
import { report } from '../../tests/browser/pages/report.ts';
import { benchParams } from '../lib/page.ts';
import { median, timeRuns } from '../lib/stats.ts';
import type { PeerEmbedResult, PeerEmbedParams } from '../lib/embed-types.ts';

report(async (): Promise<PeerEmbedResult> => {
  const params = benchParams<PeerEmbedParams>();
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = params.modelsUrl;
  env.useBrowserCache = false;
  const onnx = env.backends.onnx as { wasm: { wasmPaths: unknown; numThreads?: number }; versions?: Record<string, string> };
  onnx.wasm.wasmPaths = { mjs: `${params.ortUrl}ort-wasm-simd-threaded.asyncify.mjs`, wasm: `${params.ortUrl}ort-wasm-simd-threaded.asyncify.wasm` };

  let start = performance.now();
  const model = await AutoModel.from_pretrained(params.model, { device: params.device, dtype: 'fp32' });
  const loadMs = performance.now() - start;
  console.log(`transformers.js ${params.device}: model loaded in ${(loadMs / 1000).toFixed(1)} s`);

  const shapes: PeerEmbedResult['shapes'] = [];
  for (const shape of params.shapes) {
    const dims = [shape.batch, shape.seq];
    const int64 = (values: number[]) => new Tensor('int64', BigInt64Array.from(values, BigInt), dims);
    const feeds = {
      input_ids: int64(shape.inputIds),
      attention_mask: int64(shape.attentionMask),
      token_type_ids: int64(shape.tokenTypeIds),
    };
    let embeddings: Float32Array | null = null;
    const forward = async () => {
      const { last_hidden_state } = await model(feeds);
      embeddings = mean_pooling(last_hidden_state, feeds.attention_mask).data as Float32Array;
    };
    start = performance.now();
    await forward();
    const warmupMs = performance.now() - start;
    const timesMs = await timeRuns(forward, params.reps, params.budgetMs);
    console.log(`transformers.js ${params.device} seq ${shape.seq}: warm-up ${(warmupMs / 1000).toFixed(1)} s, median ${(median(timesMs) / 1000).toFixed(2)} s over ${timesMs.length}`);
    shapes.push({ seq: shape.seq, batch: shape.batch, warmupMs, timesMs, embeddings: Array.from(embeddings!) });
  }
  await model.dispose();
  return {
    device: params.device,
    loadMs,
    ortVersions: onnx.versions ?? {},
    wasmThreads: onnx.wasm.numThreads ?? null,
    crossOriginIsolated: globalThis.crossOriginIsolated ?? false,
    shapes,
  };
});
