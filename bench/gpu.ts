// `npm run bench -- gpu [--quick] [--models minilm_l6,bge_small,bert_base,bert_large] [--budget-s 420]`
//
// The GPU benchmark kit, for a real GPU (about 5 minutes on a discrete one, within 8): on random
// weights made in memory (no downloads, no torch),
// 1. per kernel, GFLOP/s and GB/s at the BERT-base, BERT-large and 0.5B-decoder (hidden 896,
//    intermediate 4864) shapes over 2048 tokens: the f32 and NF4 matmuls of a layer's projections
//    (Y = X·Wᵀ), LayerNorm, L2 normalisation and attention (16 sequences of 128);
// 2. embeddings/s (batch 32 × 128 tokens, forward + mean pooling + read-back, NF4 and f32 base) for
//    the MiniLM-L6, BGE-small, BERT-base and BERT-large shapes, with peak GPU memory;
// 3. QLoRA training pairs/s (32 pairs × 128 tokens per step, bench/lib/training.ts) for the same
//    shapes, with peak GPU memory.
// --quick shrinks every size (64 tokens per kernel, batch 4 × 16 tokens, 4 training pairs) so a CPU
// driver (SwiftShader, lavapipe) finishes in minutes. Kernel figures are medians of 3 timed batches of
// repeated launches (after one launch that compiles); model figures are medians of timed runs after
// one warm-up, each cell repeating until its share of --budget-s is spent. The last line is one JSON
// object with every figure. The transformers.js comparison of `bench -- embed` needs an ONNX export
// made by torch and is not part of this kit.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Engine } from '../src/engine/engine.ts';
import { createNodeEngine } from '../src/engine/node-gpu.ts';
import { attentionForward } from '../src/engine/ops/attention.ts';
import { l2NormalizeForward } from '../src/engine/ops/l2norm.ts';
import { layerNormForward } from '../src/engine/ops/layernorm.ts';
import { matmul } from '../src/engine/ops/matmul.ts';
import { nf4Matmul, nf4Quantize, releaseNf4 } from '../src/engine/ops/nf4.ts';
import { reductionVariant } from '../src/engine/ops/reductions.ts';
import { Rng } from '../src/data/rng.ts';
import { numel } from '../src/engine/tensor.ts';
import { engineContestant } from './lib/engine-contestant.ts';
import { randomBertFiles } from './lib/random-model.ts';
import { BERT_BASE, BERT_LARGE, BGE_SMALL, type BenchShape, MINILM_L6, benchTokenBatch } from './lib/shapes.ts';
import { median, timeRuns } from './lib/stats.ts';
import { markdownTable, mib } from './lib/table.ts';
import { benchTrainer } from './lib/training.ts';

const MODELS: readonly BenchShape[] = [MINILM_L6, BGE_SMALL, BERT_BASE, BERT_LARGE];
/** Layer shapes of the kernel figures: hidden, intermediate, attention heads. */
const LAYER_SHAPES = [
  { key: 'bert_base', hidden: 768, intermediate: 3072, heads: 12 },
  { key: 'bert_large', hidden: 1024, intermediate: 4096, heads: 16 },
  { key: 'decoder_0_5b', hidden: 896, intermediate: 4864, heads: 14 },
];
const SIZES = {
  full: { tokens: 2048, attentionSeq: 128, embedBatch: 32, embedSeq: 128, trainPairs: 32, trainSeq: 128, kernelRunMs: 200 },
  quick: { tokens: 64, attentionSeq: 32, embedBatch: 4, embedSeq: 16, trainPairs: 4, trainSeq: 16, kernelRunMs: 50 },
};
type Sizes = (typeof SIZES)['full'];
const WEIGHT_SEED = 5;
const MAX_MODEL_RUNS = 5;

const log = (line: string) => process.stderr.write(`${line}\n`);

interface KernelRow {
  layer: string;
  /** JSON key part, e.g. 'nf4_matmul_up'. */
  id: string;
  kernel: string;
  ms: number;
  flops: number;
  bytes: number;
}

/** Median milliseconds per launch: one compiling launch sizes a batch of repeats, timed 3 times. */
async function timeLaunch(engine: Engine, launch: () => void, targetMs: number): Promise<number> {
  const t0 = performance.now();
  launch();
  await engine.sync();
  const repeats = Math.max(1, Math.min(200, Math.round(targetMs / Math.max(performance.now() - t0, 0.01))));
  const perLaunch: number[] = [];
  for (let run = 0; run < 3; run++) {
    const start = performance.now();
    for (let i = 0; i < repeats; i++) launch();
    await engine.sync();
    perLaunch.push((performance.now() - start) / repeats);
  }
  return median(perLaunch);
}

function randomTensor(engine: Engine, rng: Rng, shape: number[], scale: number) {
  return engine.upload(Float32Array.from({ length: numel(shape) }, () => rng.normal() * scale), shape);
}

async function kernelRows(engine: Engine, sizes: Sizes): Promise<KernelRow[]> {
  const rows: KernelRow[] = [];
  const M = sizes.tokens;
  for (const layer of LAYER_SHAPES) {
    const rng = new Rng(layer.hidden);
    const add = async (id: string, kernel: string, flops: number, bytes: number, launch: () => void) => {
      const ms = await timeLaunch(engine, launch, sizes.kernelRunMs);
      rows.push({ layer: layer.key, id, kernel, ms, flops, bytes });
      log(`${layer.key} ${kernel}: ${ms.toFixed(3)} ms`);
    };
    for (const [K, N, name] of [
      [layer.hidden, layer.hidden, 'attention'],
      [layer.hidden, layer.intermediate, 'up'],
      [layer.intermediate, layer.hidden, 'down'],
    ] as const) {
      const x = randomTensor(engine, rng, [M, K], 1);
      const w = randomTensor(engine, rng, [N, K], 1 / Math.sqrt(K));
      const y = engine.alloc([M, N]);
      const q = await nf4Quantize(engine, w);
      const flops = 2 * M * N * K;
      const activations = 4 * (M * K + M * N);
      await add(`f32_matmul_${name}`, `f32 matmul, ${name} projection ${M}×${K}·(${N}×${K})ᵀ`, flops, activations + 4 * N * K, () => matmul(engine, x, w, y, { transB: true }));
      const nf4Bytes = 4 * (numel(q.packed.shape) + numel(q.absmax.shape));
      await add(`nf4_matmul_${name}`, `nf4 matmul, ${name} projection ${M}×${K}·(${N}×${K})ᵀ`, flops, activations + nf4Bytes, () => nf4Matmul(engine, x, q, y));
      releaseNf4(engine, q);
      engine.release(x, w, y);
    }
    const h = layer.hidden;
    const x = randomTensor(engine, rng, [M, h], 1);
    const gamma = randomTensor(engine, rng, [h], 1);
    const beta = randomTensor(engine, rng, [h], 1);
    const y = engine.alloc([M, h]);
    const stats = [engine.alloc([M]), engine.alloc([M])];
    // Read x (twice: mean, then variance and output), γ, β; write y, mean, rstd.
    await add('layernorm', `layernorm ${M}×${h}`, 8 * M * h, 4 * (3 * M * h + 2 * h + 2 * M), () => layerNormForward(engine, x, gamma, beta, y, stats[0], stats[1], 1e-12));
    await add('l2_normalize', `l2 normalise ${M}×${h}`, 3 * M * h, 4 * (3 * M * h + M), () => l2NormalizeForward(engine, x, y, stats[0]));
    const seq = sizes.attentionSeq;
    const shape = { batch: M / seq, seq, heads: layer.heads, headDim: h / layer.heads };
    const [k, v] = [randomTensor(engine, rng, [M, h], 1), randomTensor(engine, rng, [M, h], 1)];
    const mask = engine.upload(new Float32Array(M).fill(1), [shape.batch, seq]);
    const probs = engine.alloc([shape.batch, layer.heads, seq, seq]);
    // Scores and context (2 FLOPs per MAC each) plus the scores recomputed by the second pass.
    const attentionFlops = 3 * 2 * shape.batch * seq * seq * h;
    await add('attention', `attention ${shape.batch}×${seq} tokens, ${layer.heads} heads`, attentionFlops, 4 * (4 * M * h + shape.batch * layer.heads * seq * seq), () =>
      attentionForward(engine, x, k, v, mask, y, probs, shape),
    );
    engine.release(x, gamma, beta, y, ...stats, k, v, mask, probs);
    engine.trimPool();
  }
  return rows;
}

interface ModelRow {
  model: BenchShape;
  /** JSON key part: 'embed_nf4', 'embed_f32' or 'train'. */
  id: string;
  what: string;
  perSecond: number;
  runs: number;
  peakBytes: number;
}

async function modelRows(engine: Engine, sizes: Sizes, models: BenchShape[], cellBudgetMs: number): Promise<ModelRow[]> {
  const rows: ModelRow[] = [];
  for (const model of models) {
    const t0 = performance.now();
    const files = randomBertFiles(model.config, WEIGHT_SEED);
    log(`${model.label}: random weights in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const batch = benchTokenBatch(sizes.embedBatch, sizes.embedSeq, model.config.vocab_size, 1000);
    for (const base of ['nf4', 'f32'] as const) {
      const ours = await engineContestant(engine, files, base);
      engine.trimPool();
      engine.peakBytes = engine.liveBytes;
      await ours.run(batch);
      const times = await timeRuns(async () => void (await ours.run(batch)), MAX_MODEL_RUNS, cellBudgetMs);
      const perSecond = sizes.embedBatch / (median(times) / 1000);
      rows.push({ model, id: `embed_${base}`, what: `embeddings/s, ${base} base`, perSecond, runs: times.length, peakBytes: engine.peakBytes });
      log(`${model.label} ${base} embed: ${perSecond.toFixed(2)}/s`);
      ours.dispose();
    }
    const training = await benchTrainer(engine, files);
    try {
      const step = training.batch(sizes.trainPairs, sizes.trainSeq);
      engine.trimPool();
      engine.peakBytes = engine.liveBytes;
      await training.trainer.trainStep([step]);
      const times = await timeRuns(async () => void (await training.trainer.trainStep([step])), MAX_MODEL_RUNS, cellBudgetMs);
      const perSecond = sizes.trainPairs / (median(times) / 1000);
      rows.push({ model, id: 'train', what: 'training pairs/s, nf4 base', perSecond, runs: times.length, peakBytes: engine.peakBytes });
      log(`${model.label} train: ${perSecond.toFixed(2)} pairs/s`);
    } finally {
      training.release();
    }
  }
  return rows;
}

export default async function bench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { quick: { type: 'boolean', default: false }, models: { type: 'string' }, 'budget-s': { type: 'string', default: '420' } },
  });
  const budgetS = Number(values['budget-s']);
  if (!(budgetS > 0)) throw new Error(`--budget-s must be a positive number of seconds, got ${values['budget-s']}`);
  const keys = values.models?.split(',').map((k) => k.trim()) ?? MODELS.map((m) => m.key);
  const models = keys.map((key) => {
    const model = MODELS.find((m) => m.key === key);
    if (!model) throw new Error(`--models: unknown model shape "${key}" (known: ${MODELS.map((m) => m.key).join(', ')})`);
    return model;
  });
  const sizes = values.quick ? SIZES.quick : SIZES.full;
  const started = performance.now();
  const loadBefore = loadavg()[0];
  const engine = await createNodeEngine();
  const adapter = engine.adapter;
  log(`GPU: ${adapter.vendor} ${adapter.architecture} ${adapter.description}${adapter.software ? ' (software)' : ''}`);

  const kernels = await kernelRows(engine, sizes);
  // The models share what is left of the budget: 3 cells each (nf4 and f32 embeddings, training).
  const spentMs = performance.now() - started;
  const cellBudgetMs = Math.max(0, budgetS * 1000 - spentMs) / (3 * models.length);
  const modelFigures = await modelRows(engine, sizes, models, cellBudgetMs);
  const reductions = reductionVariant(engine);
  engine.destroy();

  const gflops = (r: KernelRow) => r.flops / 1e6 / r.ms;
  const gbs = (r: KernelRow) => r.bytes / 1e6 / r.ms;
  console.log(`GPU: ${adapter.vendor} ${adapter.architecture} ${adapter.description}`.trim());
  console.log(`reductions: ${reductions} variant; sizes: ${values.quick ? 'quick' : 'full'} ${JSON.stringify(sizes)}`);
  console.log(markdownTable(['layer shape', 'kernel', 'ms', 'GFLOP/s', 'GB/s'], kernels.map((r) => [r.layer, r.kernel, r.ms.toFixed(3), gflops(r).toPrecision(3), gbs(r).toPrecision(3)])));
  console.log(markdownTable(['model', 'figure', 'per second', 'timed runs', 'peak GPU MiB'], modelFigures.map((r) => [r.model.label, r.what, r.perSecond.toPrecision(3), r.runs, mib(r.peakBytes)])));

  const result: Record<string, unknown> = {
    name: 'gpu',
    adapter: adapter.description || `${adapter.vendor} ${adapter.architecture}`,
    software_adapter: adapter.software,
    reductions,
    quick: values.quick,
    sizes,
    transformers_js: 'not run: it needs an ONNX export of the weights, made by torch (bench -- embed)',
  };
  for (const r of kernels) {
    const key = `${r.layer}_${r.id}`;
    result[`${key}_gflop_per_s`] = +gflops(r).toPrecision(4);
    result[`${key}_gb_per_s`] = +gbs(r).toPrecision(4);
  }
  for (const r of modelFigures) {
    // e.g. bert_large_embed_nf4_per_s (embeddings/s), bert_large_train_per_s (pairs/s)
    result[`${r.model.key}_${r.id}_per_s`] = +r.perSecond.toPrecision(4);
    result[`${r.model.key}_${r.id}_peak_bytes`] = r.peakBytes;
  }
  result.load_average_before = +loadBefore.toFixed(2);
  result.load_average_after = +loadavg()[0].toFixed(2);
  result.wall_s = +((performance.now() - started) / 1000).toFixed(1);
  console.log(JSON.stringify(result));
}
